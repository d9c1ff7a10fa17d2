// SPDX-License-Identifier: Apache-2.0
#include "actors/journal/recovery.hpp"

#include "protocol/assert.hpp"

#include <algorithm>
#include <deque>
#include <unordered_map>
#include <unordered_set>

namespace actormq {

namespace {

using journal::record;
using journal::record_type;

/// A message while replaying: its contents and the queues that still hold it.
struct live_message {
    journal::message_payload payload;
    std::vector<std::string> queues;
    uint64_t order = 0;
};

/// The payload kind a record type carries, for messages about a payload that does not decode.
const char* payload_kind(record_type t) {
    switch (t) {
        case record_type::add_queue:
        case record_type::delete_queue:
            return "queue";
        case record_type::add_message:
            return "message";
        case record_type::ack:
            return "ack";
        case record_type::prepare:
        case record_type::commit:
        case record_type::rollback:
            return "transaction";
        case record_type::duplicate_id:
            return "duplicate-id";
    }
    return "unknown";
}

/// Whether a record's payload decodes as its type says (without copying a message body).
bool payload_decodes(const record& r) {
    switch (r.type) {
        case record_type::add_queue:
        case record_type::delete_queue: {
            journal::queue_payload p;
            return journal::decode_payload(r.payload, p);
        }
        case record_type::add_message: {
            journal::message_payload p;
            return journal::decode_message_metadata(r.payload, p);
        }
        case record_type::ack: {
            journal::ack_payload p;
            return journal::decode_payload(r.payload, p);
        }
        case record_type::prepare:
        case record_type::commit:
        case record_type::rollback: {
            journal::tx_payload p;
            return journal::decode_payload(r.payload, p);
        }
        case record_type::duplicate_id: {
            journal::dup_payload p;
            return journal::decode_payload(r.payload, p);
        }
    }
    return false;
}

/// The replay's working state.
struct replay {
    recovered_state& out;
    uint32_t id_cache_size;
    bool persist_id_cache;
    std::map<std::string, recovered_queue> queues;
    std::unordered_map<uint64_t, live_message> messages;
    std::map<std::string, std::deque<std::string>> dup;
    std::unordered_map<uint64_t, std::vector<record*>> open_tx;
    uint64_t order = 0;

    void remember_dup(const std::string& address, std::string id) {
        auto& d = dup[address];
        d.push_back(std::move(id));
        if (d.size() > id_cache_size) {
            d.pop_front();
        }
    }

    void add_message(record& r) {
        journal::message_payload p;
        // step() checked the payload; a failure here is a bug in the decoders.
        ACTORMQ_ASSERT(journal::decode_payload(r.payload, p));
        out.max_message_id = std::max(out.max_message_id, p.message_id);
        if (persist_id_cache) {
            for (const auto& [k, v] : p.headers) {
                if (k == duplicate_id_header) {
                    remember_dup(p.address, v);
                    break;
                }
            }
        }
        live_message m;
        m.queues = std::move(p.queues);
        m.payload = std::move(p);
        m.order = order++;
        auto id = m.payload.message_id;
        messages[id] = std::move(m);
    }

    void ack(const record& r) {
        journal::ack_payload p;
        ACTORMQ_ASSERT(journal::decode_payload(r.payload, p));
        auto it = messages.find(p.message_id);
        if (it == messages.end()) {
            return;
        }
        auto& qs = it->second.queues;
        qs.erase(std::remove(qs.begin(), qs.end(), p.queue), qs.end());
        if (qs.empty()) {
            messages.erase(it);
        }
    }

    void queue_record(const record& r) {
        journal::queue_payload p;
        ACTORMQ_ASSERT(journal::decode_payload(r.payload, p));
        if (r.type == record_type::add_queue) {
            auto& q = queues[p.name];
            q.name = p.name;
            q.address = p.address;
            q.routing = p.routing == 1 ? routing_type::multicast : routing_type::anycast;
        } else {
            queues.erase(p.name);
        }
    }

    void duplicate(const record& r) {
        journal::dup_payload p;
        ACTORMQ_ASSERT(journal::decode_payload(r.payload, p));
        if (persist_id_cache) {
            remember_dup(p.address, std::move(p.dup_id));
        }
    }

    void apply(record& r) {
        switch (r.type) {
            case record_type::add_queue:
            case record_type::delete_queue:
                return queue_record(r);
            case record_type::add_message:
                return add_message(r);
            case record_type::ack:
                return ack(r);
            case record_type::duplicate_id:
                return duplicate(r);
            default:
                return;
        }
    }

    void transaction_end(const record& r) {
        journal::tx_payload p;
        ACTORMQ_ASSERT(journal::decode_payload(r.payload, p));
        out.max_tx_id = std::max(out.max_tx_id, p.tx_id);
        auto it = open_tx.find(p.tx_id);
        if (r.type == record_type::prepare || it == open_tx.end()) {
            return;
        }
        if (r.type == record_type::commit) {
            for (auto* rec : it->second) {
                apply(*rec);
            }
        }
        open_tx.erase(it);
    }

    /// Replays one record; false when it is corrupt and the policy says stop.
    bool step(journal::located_record& lr,
              const journal::open_result& opened,
              journal::corrupt_policy policy) {
        auto& r = lr.rec;
        out.max_record_id = std::max(out.max_record_id, r.id);
        if (!payload_decodes(r)) {
            return corrupt(lr, opened, policy);
        }
        ++out.records;
        if (r.type == record_type::commit || r.type == record_type::rollback
            || r.type == record_type::prepare) {
            transaction_end(r);
        } else if (r.tx_id != 0) {
            out.max_tx_id = std::max(out.max_tx_id, r.tx_id);
            open_tx[r.tx_id].push_back(&r);
        } else {
            apply(r);
        }
        return true;
    }

    /// A record whose CRC is good but whose payload does not decode: written by a bug, or
    /// damage the CRC happened to match. Reported like any corrupt record (store::open).
    bool corrupt(const journal::located_record& lr,
                 const journal::open_result& opened,
                 journal::corrupt_policy policy) {
        auto f = opened.files.find(lr.file_seq);
        std::string file =
            f != opened.files.end() ? f->second : "segment " + std::to_string(lr.file_seq);
        std::string reason = "the payload does not decode as a "
                             + std::string(payload_kind(lr.rec.type)) + " payload (record id "
                             + std::to_string(lr.rec.id) + ", CRC good)";
        out.corrupt.push_back({file, lr.offset, reason});
        if (policy == journal::corrupt_policy::refuse) {
            out.error = "journal record at " + file + " offset " + std::to_string(lr.offset)
                        + " is corrupt: " + reason;
            return false;
        }
        return true;
    }

    /// Hands every live message to the queues that still hold it, in journal order.
    void finish() {
        std::vector<live_message*> ordered;
        ordered.reserve(messages.size());
        for (auto& [id, m] : messages) {
            ordered.push_back(&m);
        }
        std::sort(ordered.begin(), ordered.end(),
                  [](const live_message* a, const live_message* b) { return a->order < b->order; });
        for (auto* m : ordered) {
            auto msg = std::make_shared<broker_message>();
            msg->id = m->payload.message_id;
            msg->address = std::move(m->payload.address);
            msg->destination = std::move(m->payload.destination);
            msg->headers = std::move(m->payload.headers);
            msg->body = std::move(m->payload.body);
            msg->persistent = true;
            bool held = false;
            for (const auto& qn : m->queues) {
                if (auto q = queues.find(qn); q != queues.end()) {
                    q->second.messages.push_back(msg);
                    held = true;
                }
            }
            out.messages += held ? 1 : 0;
        }
        for (auto& [name, q] : queues) {
            out.queues.push_back(std::move(q));
        }
        for (auto& [address, ids] : dup) {
            out.duplicate_ids[address].assign(ids.begin(), ids.end());
        }
        out.rolled_back_transactions = open_tx.size();
    }
};

} // namespace

recovered_state rebuild(journal::open_result& opened,
                        uint32_t id_cache_size,
                        bool persist_id_cache,
                        journal::corrupt_policy policy) {
    recovered_state out;
    out.torn_tail = opened.torn_tail;
    out.torn_file = opened.torn_file;
    out.torn_offset = opened.torn_offset;
    out.corrupt = opened.corrupt;
    out.error = opened.error;
    if (!out.error.empty()) {
        return out;
    }
    replay r{out, id_cache_size, persist_id_cache, {}, {}, {}, {}, 0};
    for (auto& lr : opened.records) {
        if (!r.step(lr, opened, policy)) {
            return out;
        }
    }
    r.finish();
    return out;
}

} // namespace actormq
