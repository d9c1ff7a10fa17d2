// SPDX-License-Identifier: Apache-2.0
// The native session's sending side (docs/protocol.md §5, §7, §9): producers and their credit,
// sends collected in one batch per address and routed together, and the local transaction
// that holds its sends and acks until a one-phase commit stages, journals and releases them.
// Part of the session actor of native_session.cpp, whose helpers (native_session_impl.hpp)
// it uses.
#include "actors/journal/recovery.hpp"
#include "actors/native/native_session_impl.hpp"

#include <caf/send.hpp>

#include <map>
#include <memory>

namespace actormq::native_session_impl {

// -- send (§5, §7) --------------------------------------------------------------------------

std::string batch_key(const std::string& address, routing_type routing) {
    return address + (routing == routing_type::multicast ? "/m" : "/a");
}

/// Gives producers back the credit of routed sends (§5).
void grant(self_ptr self, const std::vector<std::pair<uint32_t, uint32_t>>& credits) {
    auto& st = self->state;
    std::map<uint32_t, uint64_t> sums;
    for (const auto& [pid, bytes] : credits) {
        sums[pid] += bytes;
    }
    for (const auto& [pid, bytes] : sums) {
        auto it = st.producers.find(pid);
        if (it == st.producers.end() || it->second.window <= 0) {
            continue;
        }
        it->second.credit += static_cast<int64_t>(bytes);
        st.emit(native::producer_credit{pid, static_cast<uint32_t>(bytes)});
    }
}

void on_routed(self_ptr self, const native_session_state::route_batch& b, route_status s) {
    auto& st = self->state;
    st.outstanding_bytes -= b.bytes;
    for (auto seq : b.confirms) {
        if (s == route_status::full) {
            fail(self, seq, error_code::address_full,
                 "address '" + b.address + "' is full and its address-full-policy is FAIL");
        } else {
            // routed, dropped (DROP policy) and a duplicate dropped by the address: the send
            // is done (§17.6: a resend of a stored id is answered ok).
            ok(self, seq);
        }
    }
    grant(self, b.credits);
}

/// Sends every collected batch to its address.
void route_batches(self_ptr self) {
    auto& st = self->state;
    for (auto& [key, batch] : st.open_batches) {
        auto b = std::make_shared<native_session_state::route_batch>(std::move(batch));
        auto msgs = std::move(b->msgs);
        // caf::infinite on purpose, as in STOMP's session: a route waits while a BLOCK address
        // is full, and that wait is the producer's back-pressure. It cannot keep the session
        // alive for ever: once its connection closed, the session waits for its routes at
        // most request-timeout-ms (on_drain_timeout), and it quits when the server goes down.
        ++st.routes_in_flight;
        self->request(b->addr, caf::infinite, route_atom::value, b->routing, std::move(msgs))
            .then(
                [self, b](route_status s) {
                    --self->state.routes_in_flight;
                    on_routed(self, *b, s);
                    pump(self);
                    flush(self);
                },
                [self, b](caf::error& e) {
                    auto& st = self->state;
                    --st.routes_in_flight;
                    st.outstanding_bytes -= b->bytes;
                    st.addresses.erase(b->address);
                    for (auto seq : b->confirms) {
                        fail_with(self, seq, e, "cannot route to '" + b->address + "'");
                    }
                    grant(self, b->credits);
                    pump(self);
                    flush(self);
                });
    }
    st.open_batches.clear();
    st.last_batch = nullptr;
}

void add_send(self_ptr self,
              const address_actor& addr,
              const std::string& address,
              routing_type routing,
              message_ptr msg,
              uint64_t seq,
              bool confirm,
              uint32_t producer_id,
              uint32_t bytes) {
    auto& st = self->state;
    // Consecutive sends nearly always go to the batch of the one before: found without
    // building its key (an allocation) and searching the map.
    auto* last = st.last_batch;
    auto& b = last != nullptr && last->routing == routing && last->address == address
                  ? *last
                  : st.open_batches[batch_key(address, routing)];
    st.last_batch = &b;
    if (b.msgs.empty()) {
        b.addr = addr;
        b.address = address;
        b.routing = routing;
    }
    auto n = msg->memory_bytes();
    b.bytes += n;
    st.outstanding_bytes += n;
    b.msgs.push_back(std::move(msg));
    if (confirm) {
        b.confirms.push_back(seq);
    }
    b.credits.emplace_back(producer_id, bytes);
}

void on_send(self_ptr self, native::send& s, uint32_t bytes) {
    auto& st = self->state;
    auto seq = st.seq;
    auto pit = st.producers.find(s.producer_id);
    if (pit == st.producers.end()) {
        return fail(self, seq, error_code::no_such_producer,
                    "no producer " + std::to_string(s.producer_id));
    }
    auto& prod = pit->second;
    if (prod.window > 0) {
        if (prod.credit <= 0) {
            return fail(self, seq, error_code::window_exceeded,
                        "producer " + std::to_string(s.producer_id) + " has no credit left");
        }
        prod.credit -= bytes;
    }
    const std::string& address = prod.address.empty() ? s.msg.address : prod.address;
    if (address.empty()) {
        return fail(self, seq, error_code::no_such_address,
                    "a send of an anonymous producer must name its address");
    }
    auto routing = routing_of(s.msg);
    auto body_bytes = s.msg.body.size();
    if (auto* tp = st.current_tx()) {
        auto& t = *tp;
        const auto& lim = st.params.limits;
        if (t.messages + 1 > lim.max_messages_per_transaction) {
            return fail_limit(self, seq, "max-messages-per-transaction",
                              lim.max_messages_per_transaction);
        }
        if (t.body_bytes + body_bytes > lim.max_bytes_per_transaction) {
            return fail_limit(self, seq, "max-bytes-per-transaction",
                              lim.max_bytes_per_transaction);
        }
        ++t.messages;
        t.body_bytes += body_bytes;
    }
    auto msg = to_broker_message(s.msg, address, routing,
                                 st.ctx->next_message_id.fetch_add(1, std::memory_order_relaxed));
    bool confirm = s.confirm;
    auto pid = s.producer_id;
    if (st.current_tx() == nullptr) {
        // The common case, a known address outside a transaction: batched at once, without
        // the lookup's callbacks and the copies of the address they capture.
        if (auto it = st.addresses.find(address); it != st.addresses.end()) {
            add_send(self, it->second, address, routing, std::move(msg), seq, confirm, pid, bytes);
            return;
        }
    }
    with_address(
        self, address, true,
        [self, address, routing, msg, seq, confirm, pid, bytes](const address_actor& a) mutable {
            auto& st = self->state;
            // The packets after this one waited for the lookup: the same transaction is current.
            auto* t = st.current_tx();
            if (t == nullptr) {
                add_send(self, a, address, routing, std::move(msg), seq, confirm, pid, bytes);
                return;
            }
            // Held by the session until commit (§9) or prepare (§10); its credit returns now,
            // the transaction's own limits bound what it holds.
            t->sends.push_back({a, address, routing, std::move(msg)});
            if (confirm) {
                ok(self, seq);
            }
            grant(self, {{pid, bytes}});
        },
        [self, seq, address, pid, bytes](caf::error& e) {
            fail_with(self, seq, e, "cannot send to '" + address + "'");
            grant(self, {{pid, bytes}});
        });
}

// -- producers (§5) -------------------------------------------------------------------------

void on_create_producer(self_ptr self, native::create_producer& cp) {
    auto& st = self->state;
    auto seq = st.seq;
    if (st.producers.count(cp.producer_id) != 0) {
        return fail(self, seq, error_code::unexpected_packet,
                    "producer " + std::to_string(cp.producer_id) + " exists");
    }
    if (st.producers.size() >= st.params.limits.max_producers) {
        return fail_limit(self, seq, "max-producers-per-session", st.params.limits.max_producers);
    }
    native_session_state::producer p;
    p.address = cp.address;
    p.window = cp.window_bytes;
    p.credit = cp.window_bytes > 0 ? cp.window_bytes : 0;
    st.producers.emplace(cp.producer_id, p);
    ok(self, seq);
    if (cp.window_bytes > 0) {
        st.emit(native::producer_credit{cp.producer_id, static_cast<uint32_t>(cp.window_bytes)});
    }
}

// -- local transactions (§9) ----------------------------------------------------------------

/// A transaction's sends, one group per address and routing, in the order of their first send.
send_groups group_sends(std::vector<native_session_state::tx_send>& sends) {
    send_groups groups;
    std::map<std::string, size_t> index;
    for (auto& s : sends) {
        auto [it, added] = index.emplace(batch_key(s.address, s.routing), groups.size());
        if (added) {
            groups.push_back({s.addr, {s.routing, {}}});
        }
        groups[it->second].second.second.push_back(std::move(s.msg));
    }
    return groups;
}

/// One commit in progress: its sends grouped by address, and how many answers are missing.
struct commit_run {
    uint64_t tx_id = 0;
    uint64_t seq = 0;
    std::vector<native_session_state::tx_ack> acks;
    send_groups groups;
    std::vector<address_actor> prepared;
    size_t waiting = 0;
    bool duplicate = false;
    bool ended = false;
    /// A one-phase commit of an XA branch (§10): its key, erased from the table at the end.
    std::string xa_key;
};

/// Ends a commit: the prepared addresses release (commit) or drop (rollback) its messages, as
/// STOMP's commit_end does (journal rollback record unless the commit record may be on disk).
void commit_end(self_ptr self,
                const std::shared_ptr<commit_run>& run,
                bool commit,
                bool journal_rollback = true) {
    auto& st = self->state;
    if (!commit && journal_rollback && st.ctx->journal) {
        journal::record r;
        r.type = journal::record_type::rollback;
        r.payload = journal::encode_payload(journal::tx_payload{run->tx_id});
        caf::anon_send(st.ctx->journal, append_atom::value, std::vector<journal::record>{r}, false);
    }
    if (commit) {
        for (const auto& a : run->prepared) {
            self->send(a, commit_atom::value, run->tx_id);
        }
    } else {
        for (const auto& g : run->groups) {
            self->send(g.first, rollback_atom::value, run->tx_id);
        }
        // §9: acknowledged deliveries of a transaction that did not commit return to their
        // queues. (Acks already journaled with the tx id are void without its commit record.)
        for (auto& a : run->acks) {
            self->send(a.queue, nack_atom::value, a.session, a.key, std::move(a.ids));
        }
    }
    run->prepared.clear();
    run->groups.clear();
    run->acks.clear();
    run->ended = true;
    if (!run->xa_key.empty()) {
        st.ctx->xa->erase(run->xa_key);
    }
    st.committing = false;
    st.waiting = false;
    if (st.close_deferred) {
        end_session(self);
    }
}

void commit_failed(self_ptr self, const std::shared_ptr<commit_run>& run, const caf::error& e) {
    if (run->ended) {
        return;
    }
    commit_end(self, run, false);
    auto [code, text] = code_of(e);
    fail(self, run->seq, error_code::transaction_rolled_back, "transaction failed: " + text);
    pump(self);
    flush(self);
}

void commit_record(self_ptr self, const std::shared_ptr<commit_run>& run) {
    auto& st = self->state;
    auto done = [self, run] {
        commit_end(self, run, true);
        ok(self, run->seq);
        pump(self);
        flush(self);
    };
    if (!st.ctx->journal) {
        return done();
    }
    journal::record r;
    r.type = journal::record_type::commit;
    r.payload = journal::encode_payload(journal::tx_payload{run->tx_id});
    bool sync = st.ctx->config.journal.journal_sync_transactional;
    // Bounded by request-timeout-ms, as STOMP's commit record.
    self->request(st.ctx->journal, st.ctx->request_timeout(), append_atom::value,
                  std::vector<journal::record>{r}, sync)
        .then([done](uint64_t) { done(); },
              [self, run](caf::error& e) {
                  commit_end(self, run, false, false);
                  auto [code, text] = code_of(e);
                  fail(self, run->seq,
                       code == error_code::journal_failed ? code : error_code::request_timeout,
                       "transaction outcome unknown: the journal did not confirm the commit "
                       "record ("
                           + text + ")");
                  pump(self);
                  flush(self);
              });
}

void commit_acks(self_ptr self, const std::shared_ptr<commit_run>& run) {
    auto& st = self->state;
    for (const auto& a : run->acks) {
        ++run->waiting;
        self->request(a.queue, st.ctx->request_timeout(), ack_atom::value, a.session, a.key, a.ids,
                      run->tx_id)
            .then(
                [self, run](bool) {
                    if (--run->waiting == 0 && !run->ended) {
                        commit_record(self, run);
                    }
                },
                [self, run](caf::error& e) { commit_failed(self, run, e); });
    }
    if (run->waiting == 0) {
        commit_record(self, run);
    }
}

void commit_prepared(self_ptr self, const std::shared_ptr<commit_run>& run) {
    if (!run->duplicate) {
        return commit_acks(self, run);
    }
    commit_end(self, run, false);
    // §17.6: a retried transaction whose duplicate ids are stored.
    fail(self, run->seq, error_code::duplicate_id,
         "a message of the transaction carries a duplicate id (" + std::string{duplicate_id_header}
             + ") that was already accepted; the transaction was rolled back");
    pump(self);
    flush(self);
}

/// Commits `tx` in one phase (§9; §10 xa_commit one_phase of the branch `xa_key`).
void start_commit(self_ptr self, native_session_state::transaction tx, std::string xa_key) {
    auto& st = self->state;
    auto run = std::make_shared<commit_run>();
    run->tx_id = st.ctx->next_tx_id.fetch_add(1, std::memory_order_relaxed);
    run->seq = st.seq;
    run->xa_key = std::move(xa_key);
    run->acks = std::move(tx.acks);
    run->groups = group_sends(tx.sends);
    st.waiting = true;
    st.committing = true;
    if (run->groups.empty()) {
        return commit_prepared(self, run);
    }
    stage_groups(
        self, run->groups, run, &commit_run::prepared, [self, run] { commit_prepared(self, run); },
        [self, run](caf::error& e) { commit_failed(self, run, e); });
}

void on_commit(self_ptr self) {
    auto& st = self->state;
    start_commit(self, std::exchange(st.tx, native_session_state::transaction{}));
}

void on_rollback(self_ptr self) {
    auto& st = self->state;
    auto tx = std::exchange(st.tx, native_session_state::transaction{});
    for (auto& a : tx.acks) {
        self->send(a.queue, nack_atom::value, a.session, a.key, std::move(a.ids));
    }
    ok(self, st.seq);
}
} // namespace actormq::native_session_impl
