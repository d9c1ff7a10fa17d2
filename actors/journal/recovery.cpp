// SPDX-License-Identifier: Apache-2.0
#include "actors/journal/recovery.hpp"

#include "protocol/assert.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <functional>
#include <limits>
#include <set>
#include <unordered_map>

namespace actormq {

namespace {

using journal::record_type;
using journal::record_view;

constexpr uint32_t no_queue = std::numeric_limits<uint32_t>::max();

/// A message while replaying: the message as it will be restored (built once, its body copied
/// once from the read buffer) and the queues that still hold it, as interned queue numbers. A
/// queue named twice holds the message twice, as the journal says.
struct live_message {
    std::shared_ptr<broker_message> msg; ///< null once no queue holds it
    uint32_t first = no_queue;           ///< most messages sit in one queue: no allocation
    std::vector<uint32_t> more;

    void add(uint32_t q) {
        if (first == no_queue) {
            first = q;
        } else {
            more.push_back(q);
        }
    }

    /// Takes every occurrence of queue `q` off the message.
    void remove(uint32_t q) {
        if (first == q) {
            first = no_queue;
        }
        more.erase(std::remove(more.begin(), more.end(), q), more.end());
        if (first == no_queue && !more.empty()) {
            first = more.front();
            more.erase(more.begin());
        }
    }

    bool held() const { return first != no_queue; }
};

/// Makes the allocator's heap grow in large steps while recovery builds millions of messages.
/// Recovery runs on the journal's own thread, and glibc's per-thread arenas grow their heap by
/// exactly what an allocation lacks, one mprotect system call per new page: 325,000 calls for
/// a million 1 KiB messages, a third of the replay (docs/journal.md, "Recovery phases").
/// Allocating and freeing one block a bit larger than the step, every step's worth of
/// messages, grows the heap once per step; the freed block stays the heap's top (it is below
/// glibc's 128 KiB trim and mmap thresholds) and the next messages are carved from it. With
/// another allocator this costs one malloc and free per step.
class heap_ahead {
public:
    void note(size_t bytes) {
        since_ += bytes;
        if (since_ < step_bytes) {
            return;
        }
        since_ = 0;
        // volatile: the compiler may not drop a malloc whose block is only freed.
        void* volatile block = std::malloc(block_bytes);
        std::free(block);
    }

private:
    static constexpr size_t step_bytes = 64 * 1024;
    static constexpr size_t block_bytes = 96 * 1024;
    size_t since_ = 0;
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

/// The replay's working state. Records come in journal order through step(); finish() turns
/// what is left into the recovered queues.
struct replay {
    replay(recovered_state& o,
           const recovery_options& opts,
           journal::liveness* l,
           std::function<std::string(uint64_t)> files)
        : out(o),
          options(opts),
          live(l),
          file_of(std::move(files)) {}

    recovered_state& out;
    const recovery_options& options;
    /// The liveness books to feed, or null (rebuild() from records already read).
    journal::liveness* live;
    /// The path of a segment, for naming a corrupt record.
    std::function<std::string(uint64_t)> file_of;
    /// Where the record being replayed lies (step), for naming an id collision.
    uint64_t at_file = 0;
    uint64_t at_offset = 0;

    std::map<std::string, recovered_queue, std::less<>> queues;
    /// Queue names interned to numbers, so a message names its queues without a string each.
    std::map<std::string, uint32_t, std::less<>> queue_numbers;
    std::vector<std::string> queue_names;
    /// Messages in journal order (the order they go back into their queues), and where each
    /// id is in that list.
    std::vector<live_message> messages;
    std::unordered_map<uint64_t, size_t> by_id;
    std::map<std::string, std::deque<std::string>, std::less<>> dup;
    /// Records of transactions not yet ended, kept whole until their commit or rollback.
    std::unordered_map<uint64_t, std::vector<journal::record>> open_tx;
    /// Transactions with a prepare record and no outcome yet: their xids.
    std::map<uint64_t, std::string> prepared;
    /// Payloads whose CRC is good but which do not decode (reported after the store's).
    std::vector<journal::corruption> corrupt;
    /// Reused for every record, so decoding allocates nothing once its vectors have grown.
    journal::payload_view payload;
    journal::payload_view tx_payload;
    heap_ahead heap;

    uint32_t queue_number(std::string_view name) {
        if (auto it = queue_numbers.find(name); it != queue_numbers.end()) {
            return it->second;
        }
        auto n = static_cast<uint32_t>(queue_names.size());
        queue_names.emplace_back(name);
        queue_numbers.emplace(std::string{name}, n);
        return n;
    }

    void remember_dup(std::string_view address, std::string_view id) {
        auto it = dup.find(address);
        if (it == dup.end()) {
            it = dup.emplace(std::string{address}, std::deque<std::string>{}).first;
        }
        auto& d = it->second;
        d.emplace_back(id);
        if (d.size() > options.id_cache_size) {
            d.pop_front();
        }
    }

    static std::shared_ptr<broker_message> make_message(const journal::message_view& p) {
        auto msg = std::make_shared<broker_message>();
        msg->id = p.message_id;
        msg->address.assign(p.address);
        msg->destination.assign(p.destination);
        for (const auto& [k, v] : p.headers) {
            msg->headers.emplace_back(std::string{k}, std::string{v});
        }
        msg->body.assign(p.body);
        msg->persistent = true;
        return msg;
    }

    void add_message(const journal::message_view& p) {
        out.max_message_id = std::max(out.max_message_id, p.message_id);
        // The message, its headers and its body: roughly the payload plus the structures.
        heap.note(p.body.size() + p.address.size() + p.destination.size() + 256);
        auto msg = std::make_shared<broker_message>();
        msg->id = p.message_id;
        msg->address.assign(p.address);
        msg->destination.assign(p.destination);
        msg->headers.reserve(p.headers.size());
        for (const auto& [k, v] : p.headers) {
            msg->headers.emplace_back(std::string{k}, std::string{v});
        }
        if (options.persist_id_cache) {
            for (const auto& [k, v] : p.headers) {
                if (k == duplicate_id_header) {
                    remember_dup(p.address, v);
                    break;
                }
            }
        }
        msg->body.assign(p.body);
        msg->persistent = true;
        live_message m;
        m.msg = std::move(msg);
        for (auto q : p.queues) {
            m.add(queue_number(q));
        }
        // A second add_message with the same id replaces the first, in the later place (a
        // reclaimed segment's live message is written again as it was).
        auto [it, fresh] = by_id.try_emplace(p.message_id, messages.size());
        if (!fresh) {
            note_collision(messages[it->second], *m.msg);
            messages[it->second] = live_message{};
            it->second = messages.size();
        }
        messages.push_back(std::move(m));
    }

    /// `later` reuses the id of `earlier`, still live: the same message written again is
    /// fine; a different one is reported (recovered_state::id_collisions).
    void note_collision(const live_message& earlier, const broker_message& later) {
        if (!earlier.msg
            || (earlier.msg->address == later.address && earlier.msg->body == later.body)) {
            return;
        }
        if (++out.id_collisions_total <= 100) {
            out.id_collisions.push_back(journal::corruption{
                file_of(at_file), at_offset,
                "message id " + std::to_string(later.id) + " of address '" + later.address
                    + "' replaces a different live message of address '" + earlier.msg->address
                    + "' (lost)"});
        }
    }

    void ack(const journal::ack_view& p) {
        auto it = by_id.find(p.message_id);
        if (it == by_id.end()) {
            return;
        }
        auto& m = messages[it->second];
        if (auto q = queue_numbers.find(p.queue); q != queue_numbers.end()) {
            m.remove(q->second);
        }
        if (!m.held()) {
            m = live_message{};
            by_id.erase(it);
        }
    }

    void queue_record(record_type type, const journal::queue_view& p) {
        auto it = queues.find(p.name);
        if (type == record_type::delete_queue) {
            if (it != queues.end()) {
                queues.erase(it);
            }
            return;
        }
        if (it == queues.end()) {
            it = queues.emplace(std::string{p.name}, recovered_queue{}).first;
        }
        auto& q = it->second;
        q.name.assign(p.name);
        q.address.assign(p.address);
        q.routing = p.routing == 1 ? routing_type::multicast : routing_type::anycast;
    }

    void apply(record_type type, const journal::payload_view& p) {
        switch (type) {
            case record_type::add_queue:
            case record_type::delete_queue:
                return queue_record(type, p.queue);
            case record_type::add_message:
                return add_message(p.message);
            case record_type::ack:
                return ack(p.ack);
            case record_type::duplicate_id:
                if (options.persist_id_cache) {
                    remember_dup(p.dup.address, p.dup.dup_id);
                }
                return;
            default:
                return;
        }
    }

    void transaction_end(record_type type, const journal::tx_payload& p) {
        out.max_tx_id = std::max(out.max_tx_id, p.tx_id);
        if (type == record_type::prepare) {
            prepared[p.tx_id] = p.xid;
            return;
        }
        prepared.erase(p.tx_id);
        auto it = open_tx.find(p.tx_id);
        if (it == open_tx.end()) {
            return;
        }
        if (type == record_type::commit) {
            for (const auto& r : it->second) {
                // step() checked the payload; a failure here is a bug in the decoders.
                ACTORMQ_ASSERT(journal::decode_payload(
                    record_view{r.type, r.id, r.tx_id, r.payload}, tx_payload));
                apply(r.type, tx_payload);
            }
        }
        open_tx.erase(it);
    }

    /// Replays one record, decoding its payload once for the books and the replay; false
    /// when it is corrupt and the policy says stop.
    bool step(const record_view& r, uint64_t file_seq, uint64_t offset) {
        out.max_record_id = std::max(out.max_record_id, r.id);
        at_file = file_seq;
        at_offset = offset;
        bool decodes = journal::decode_payload(r, payload);
        if (live != nullptr) {
            live->note(r, decodes ? &payload : nullptr, file_seq);
        }
        if (!decodes) {
            return report_corrupt(r, file_seq, offset);
        }
        ++out.records;
        if (r.type == record_type::commit || r.type == record_type::rollback
            || r.type == record_type::prepare) {
            transaction_end(r.type, payload.tx);
        } else if (r.tx_id != 0) {
            out.max_tx_id = std::max(out.max_tx_id, r.tx_id);
            open_tx[r.tx_id].push_back(journal::to_record(r));
        } else {
            apply(r.type, payload);
        }
        return true;
    }

    /// A record whose CRC is good but whose payload does not decode: written by a bug, or
    /// damage the CRC happened to match. Reported like any corrupt record (store::open).
    bool report_corrupt(const record_view& r, uint64_t file_seq, uint64_t offset) {
        auto file = file_of(file_seq);
        std::string reason = "the payload does not decode as a " + std::string(payload_kind(r.type))
                             + " payload (record id " + std::to_string(r.id) + ", CRC good)";
        corrupt.push_back({file, offset, reason});
        if (options.policy == journal::corrupt_policy::refuse) {
            out.error = "journal record at " + file + " offset " + std::to_string(offset)
                        + " is corrupt: " + reason;
            return false;
        }
        return true;
    }

    /// Keeps the prepared transactions (docs/journal.md, "Prepared transactions"): their
    /// messages are staged in the queues they were routed to, and the messages they
    /// acknowledged are marked held (`held_acks`, placed by finish()). Their records leave
    /// `open_tx`, so they are not counted as rolled back.
    void keep_prepared(std::map<std::pair<std::string, uint64_t>, uint64_t>& held_acks) {
        for (auto& [tx, xid] : prepared) {
            recovered_prepared rp;
            rp.tx_id = tx;
            rp.xid = xid;
            std::set<std::string> addresses;
            auto parts = open_tx.find(tx);
            if (parts != open_tx.end()) {
                for (const auto& r : parts->second) {
                    ACTORMQ_ASSERT(journal::decode_payload(
                        record_view{r.type, r.id, r.tx_id, r.payload}, tx_payload));
                    if (r.type == record_type::add_message) {
                        const auto& m = tx_payload.message;
                        out.max_message_id = std::max(out.max_message_id, m.message_id);
                        message_ptr msg = make_message(m);
                        for (auto qn : m.queues) {
                            if (auto q = queues.find(qn); q != queues.end()) {
                                q->second.staged[tx].push_back(msg);
                                addresses.insert(q->second.address);
                            }
                        }
                    } else if (r.type == record_type::ack) {
                        const auto& a = tx_payload.ack;
                        if (auto q = queues.find(a.queue); q != queues.end()) {
                            held_acks[{std::string{a.queue}, a.message_id}] = tx;
                            addresses.insert(q->second.address);
                        }
                    }
                    // A duplicate_id record of the transaction counts only at its commit.
                }
                open_tx.erase(parts);
            }
            rp.addresses.assign(addresses.begin(), addresses.end());
            out.prepared.push_back(std::move(rp));
        }
    }

    /// Hands every live message to the queues that still hold it, in journal order.
    void finish() {
        std::map<std::pair<std::string, uint64_t>, uint64_t> held_acks;
        keep_prepared(held_acks);
        std::vector<recovered_queue*> target(queue_names.size(), nullptr);
        std::vector<size_t> counts(queue_names.size(), 0);
        for (size_t i = 0; i < queue_names.size(); ++i) {
            if (auto q = queues.find(queue_names[i]); q != queues.end()) {
                target[i] = &q->second;
            }
        }
        auto each_queue = [](const live_message& m, auto&& f) {
            f(m.first);
            for (auto q : m.more) {
                f(q);
            }
        };
        for (const auto& m : messages) {
            if (m.msg && m.held()) {
                each_queue(m, [&](uint32_t q) { ++counts[q]; });
            }
        }
        for (size_t i = 0; i < target.size(); ++i) {
            if (target[i] != nullptr) {
                target[i]->messages.reserve(target[i]->messages.size() + counts[i]);
            }
        }
        for (auto& m : messages) {
            if (!m.msg || !m.held()) {
                continue;
            }
            message_ptr msg = std::move(m.msg);
            bool held = false;
            each_queue(m, [&](uint32_t q) {
                if (target[q] == nullptr) {
                    return;
                }
                held = true;
                if (!held_acks.empty()) {
                    auto h = held_acks.find({queue_names[q], msg->id});
                    if (h != held_acks.end()) {
                        target[q]->held[h->second].push_back(msg);
                        return;
                    }
                }
                target[q]->messages.push_back(msg);
            });
            out.messages += held ? 1 : 0;
        }
        messages = {};
        by_id = {};
        for (auto& [name, q] : queues) {
            out.queues.push_back(std::move(q));
        }
        for (auto& [address, ids] : dup) {
            out.duplicate_ids[address].assign(std::make_move_iterator(ids.begin()),
                                              std::make_move_iterator(ids.end()));
        }
        out.rolled_back_transactions = open_tx.size();
    }
};

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

/// Copies what the store reported into the state; store-level corruption first, then the
/// payloads the replay found corrupt (the order rebuild() has always reported them in).
void take_store_report(recovered_state& out, const journal::open_result& opened, replay& r) {
    out.torn_tail = opened.torn_tail;
    out.torn_file = opened.torn_file;
    out.torn_offset = opened.torn_offset;
    out.corrupt = opened.corrupt;
    out.corrupt.insert(out.corrupt.end(), r.corrupt.begin(), r.corrupt.end());
}

} // namespace

recovered_state recover_journal(journal::store& store,
                                journal::liveness& live,
                                const recovery_options& options,
                                journal::open_result& opened) {
    recovered_state out;
    replay r{out, options, &live, [&store](uint64_t seq) {
                 return store.path_of(seq);
             }};
    auto start = std::chrono::steady_clock::now();
    double replay_seconds = 0;
    opened = store.open(options.policy, [&](const std::vector<journal::record_ref>& batch) {
        auto t = std::chrono::steady_clock::now();
        bool go_on = std::all_of(batch.begin(), batch.end(), [&r](const journal::record_ref& x) {
            return r.step(x.rec, x.file_seq, x.offset);
        });
        replay_seconds += seconds_since(t);
        return go_on;
    });
    out.bytes_read = opened.bytes_read;
    out.phases.read = opened.read_seconds;
    out.phases.replay = replay_seconds;
    out.phases.check = std::max(0.0, seconds_since(start) - opened.read_seconds - replay_seconds);
    take_store_report(out, opened, r);
    // A replay that stopped on a corrupt payload met it before anything the store refused
    // later in the same segment, so its error is the one to report.
    if (out.error.empty()) {
        out.error = opened.error;
    }
    if (!out.error.empty()) {
        return out;
    }
    auto t = std::chrono::steady_clock::now();
    r.finish();
    out.phases.finish = seconds_since(t);
    return out;
}

recovered_state rebuild(journal::open_result& opened,
                        uint32_t id_cache_size,
                        bool persist_id_cache,
                        journal::corrupt_policy policy) {
    recovered_state out;
    recovery_options options{id_cache_size, persist_id_cache, policy};
    replay r{out, options, nullptr, [&opened](uint64_t seq) {
                 auto f = opened.files.find(seq);
                 return f != opened.files.end() ? f->second : "segment " + std::to_string(seq);
             }};
    out.error = opened.error;
    if (out.error.empty()) {
        for (const auto& lr : opened.records) {
            record_view v{lr.rec.type, lr.rec.id, lr.rec.tx_id, lr.rec.payload};
            if (!r.step(v, lr.file_seq, lr.offset)) {
                break;
            }
        }
    }
    take_store_report(out, opened, r);
    if (out.error.empty()) {
        r.finish();
    }
    return out;
}

} // namespace actormq
