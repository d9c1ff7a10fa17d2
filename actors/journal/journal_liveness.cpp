// SPDX-License-Identifier: Apache-2.0
#include "actors/journal/journal_liveness.hpp"

#include "actors/journal/recovery.hpp"

#include <algorithm>

namespace actormq::journal {

void liveness::note(const record& r, uint64_t seg) {
    record_view v{r.type, r.id, r.tx_id, r.payload};
    payload_view p;
    bool ok = decode_payload(v, p);
    note(v, ok ? &p : nullptr, seg);
}

void liveness::note(const record_view& r, const payload_view* p, uint64_t seg) {
    auto& s = segs_[seg]; // Every segment that holds a record is known, even with nothing live.
    if (r.type == record_type::commit || r.type == record_type::rollback) {
        if (p != nullptr) {
            end_tx(r, p->tx, seg);
        }
    } else if (r.type == record_type::prepare) {
        if (p != nullptr && prepared_.emplace(p->tx.tx_id, seg).second) {
            ++s.open_tx; // the prepare record pins its segment like the records it seals
        }
    } else if (r.tx_id != 0) {
        // Kept whole (and decoded again if it commits): only open transactions are held.
        open_tx_[r.tx_id].push_back({to_record(r), seg});
        ++s.open_tx;
    } else if (p != nullptr) {
        apply(r, *p, seg);
    }
}

void liveness::apply(const record_view& r, const payload_view& p, uint64_t seg) {
    switch (r.type) {
        case record_type::add_queue:
            bindings_[std::string{p.queue.name}] = {to_record(r), seg};
            return;
        case record_type::delete_queue:
            if (auto it = bindings_.find(std::string{p.queue.name}); it != bindings_.end()) {
                bindings_.erase(it);
            }
            return;
        case record_type::add_message:
            return add_message(p.message, seg);
        case record_type::ack:
            return ack(p.ack, seg);
        case record_type::duplicate_id:
            return remember_dup(p.dup.address, p.dup.dup_id, seg);
        default:
            return;
    }
}

void liveness::add_message(const message_view& p, uint64_t seg) {
    if (p.queues.empty()) {
        return;
    }
    messages_[p.message_id] = {seg, static_cast<uint32_t>(p.queues.size())};
    ++segs_[seg].live;
    for (const auto& [k, v] : p.headers) {
        if (k == duplicate_id_header) {
            remember_dup(p.address, v, seg);
            break;
        }
    }
}

void liveness::ack(const ack_view& p, uint64_t seg) {
    auto it = messages_.find(p.message_id);
    if (it == messages_.end()) {
        return;
    }
    // Deleting this ack's segment while the message's segment stays would bring it back.
    if (it->second.seg != seg) {
        segs_[seg].depends_on.insert(it->second.seg);
    }
    if (--it->second.refs == 0) {
        --segs_[it->second.seg].live;
        messages_.erase(it);
    }
}

void liveness::remember_dup(std::string_view address, std::string_view id, uint64_t seg) {
    auto it = dups_.find(address);
    if (it == dups_.end()) {
        it = dups_.emplace(std::string{address}, std::deque<std::pair<std::string, uint64_t>>{})
                 .first;
    }
    auto& d = it->second;
    d.emplace_back(std::string{id}, seg);
    if (d.size() > id_cache_size_) {
        d.pop_front();
    }
}

void liveness::end_tx(const record_view& r, const tx_payload& p, uint64_t seg) {
    if (auto pr = prepared_.find(p.tx_id); pr != prepared_.end()) {
        --segs_[pr->second].open_tx;
        // Whichever the outcome: its record must outlive the prepare record, or recovery
        // would find the transaction prepared again.
        if (pr->second != seg) {
            segs_[seg].depends_on.insert(pr->second);
        }
        prepared_.erase(pr);
    }
    auto it = open_tx_.find(p.tx_id);
    if (it == open_tx_.end()) {
        return;
    }
    payload_view pv;
    for (auto& part : it->second) {
        --segs_[part.seg].open_tx;
        if (r.type == record_type::commit) {
            // Without this commit record the transaction's records would be rolled back.
            if (part.seg != seg) {
                segs_[seg].depends_on.insert(part.seg);
            }
            record_view v{part.rec.type, part.rec.id, part.rec.tx_id, part.rec.payload};
            if (decode_payload(v, pv)) {
                apply(v, pv, part.seg);
            }
        }
    }
    open_tx_.erase(it);
}

bool liveness::reclaimable(uint64_t seg, const std::set<uint64_t>& present) const {
    auto it = segs_.find(seg);
    if (it == segs_.end()) {
        return true;
    }
    const auto& s = it->second;
    if (s.live > 0 || s.open_tx > 0) {
        return false;
    }
    return std::none_of(s.depends_on.begin(), s.depends_on.end(),
                        [&](uint64_t d) { return d != seg && present.count(d) != 0; });
}

std::vector<record> liveness::take_forwards(uint64_t seg) {
    std::vector<record> out;
    for (auto it = bindings_.begin(); it != bindings_.end();) {
        if (it->second.second == seg) {
            out.push_back(std::move(it->second.first)); // noted again once re-appended
            it = bindings_.erase(it);
        } else {
            ++it;
        }
    }
    for (auto& [address, d] : dups_) {
        auto moved = std::stable_partition(d.begin(), d.end(),
                                           [&](const auto& e) { return e.second != seg; });
        for (auto i = moved; i != d.end(); ++i) {
            record r;
            r.type = record_type::duplicate_id;
            r.payload = encode_payload(dup_payload{address, i->first});
            out.push_back(std::move(r));
        }
        d.erase(moved, d.end());
    }
    return out;
}

uint64_t liveness::live_messages(uint64_t seg) const {
    auto it = segs_.find(seg);
    return it == segs_.end() ? 0 : it->second.live;
}

} // namespace actormq::journal
