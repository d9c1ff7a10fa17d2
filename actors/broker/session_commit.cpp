// SPDX-License-Identifier: Apache-2.0
// The STOMP session's transactions (docs/stomp.md §7): BEGIN, ABORT, and a COMMIT that waits for
// the session's earlier routes and ACKs, routes its SENDs and journals its ACKs in one record,
// then answers.
#include "actors/broker/connection.hpp"
#include "actors/broker/session_ops.hpp"
#include "actors/journal/recovery.hpp"
#include "protocol/assert.hpp"
#include "protocol/errc.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <algorithm>

namespace actormq::session_ops {

using stomp::command;

// -- COMMIT (docs/stomp.md §7) ---------------------------------------------------------------

const std::string* tx_name_of(const stomp::frame& f) {
    return f.find("transaction");
}

/// One COMMIT in progress: its sends grouped by address, and how many answers are missing.
struct commit_run {
    uint64_t tx_id = 0;
    std::string name;
    std::optional<std::string> receipt;
    std::vector<session_state::tx_ack> acks;
    std::vector<std::pair<address_actor, std::pair<routing_type, std::vector<message_ptr>>>> groups;
    std::vector<address_actor> prepared;
    size_t waiting = 0;
    bool duplicate = false;
    /// commit_end ran; answers that arrive later (after a failure) are ignored.
    bool ended = false;
};

/// Ends a COMMIT: the prepared addresses release (commit) or drop (rollback) its messages.
/// A rollback goes to every address of the transaction, not only those that answered: one
/// whose answer timed out prepares later (its prepare is ahead of the rollback in its mailbox)
/// and must not hold the messages for ever. `journal_rollback` is false when the commit record
/// may be on its way to the disk (its append timed out), since the outcome is then unknown.
/// A session whose connection closed meanwhile cleans up now.
void commit_end(session_ptr self,
                const std::shared_ptr<commit_run>& run,
                bool commit,
                bool journal_rollback = true) {
    auto& st = self->state;
    if (!commit && journal_rollback && st.ctx->journal) {
        // Its prepared records end here; without this record they would pin their segment.
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
    }
    run->prepared.clear();
    run->groups.clear();
    run->ended = true;
    st.committing = false;
    st.waiting = false;
    if (st.close_deferred) {
        on_closed(self);
    }
}

/// A COMMIT that could not finish: nothing of it is released, and the client hears why.
void commit_failed(session_ptr self, const std::shared_ptr<commit_run>& run, const caf::error& e) {
    if (run->ended) {
        return; // An earlier answer of this COMMIT already failed it.
    }
    commit_end(self, run, false);
    fail(self, "transaction failed", reason_of(e));
    flush(self);
}

void commit_done(session_ptr self, const std::shared_ptr<commit_run>& run) {
    add_receipt(self, run->receipt);
    commit_end(self, run, true);
    pump(self);
    flush(self);
}

/// Phase 3: one commit record, synced; then the addresses release the messages.
void commit_record(session_ptr self, const std::shared_ptr<commit_run>& run) {
    auto& st = self->state;
    if (!st.ctx->journal) {
        return commit_done(self, run);
    }
    journal::record r;
    r.type = journal::record_type::commit;
    r.payload = journal::encode_payload(journal::tx_payload{run->tx_id});
    bool sync = st.ctx->config.journal.journal_sync_transactional;
    // Bounded by request-timeout-ms: a journal that stopped (at shutdown it drops what it
    // holds without answering) would otherwise keep this session, and ~actor_system, waiting.
    self->request(st.ctx->journal, st.ctx->request_timeout(), append_atom::value,
                  std::vector<journal::record>{r}, sync)
        .then([self, run](uint64_t) { commit_done(self, run); },
              [self, run](caf::error& e) {
                  // The commit record may still reach the disk: nothing is confirmed, the
                  // messages are released from memory, and no rollback record contradicts it.
                  commit_end(self, run, false, false);
                  fail(self, "transaction outcome unknown",
                       "the journal did not confirm the commit record (" + reason_of(e)
                           + "); the transaction may or may not be applied after a restart");
                  flush(self);
              });
}

/// Phase 2: the transaction's acks, journaled with it.
void commit_acks(session_ptr self, const std::shared_ptr<commit_run>& run) {
    auto& st = self->state;
    for (const auto& a : run->acks) {
        auto it = st.subs.find(a.key);
        if (it == st.subs.end()) {
            continue;
        }
        auto& sub = it->second;
        auto ids = st.take_acked(sub, a.ack_id, !a.nack && sub.mode == ack_mode::client);
        if (ids.empty()) {
            continue;
        }
        if (a.nack) {
            self->send(sub.queue, nack_atom::value, session_actor{self}, a.key, std::move(ids));
            continue;
        }
        ++run->waiting;
        self->request(sub.queue, st.ctx->request_timeout(), ack_atom::value, session_actor{self},
                      a.key, std::move(ids), run->tx_id)
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

/// After phase 1: roll back when an address found a duplicate, else go on with the acks.
void commit_prepared(session_ptr self, const std::shared_ptr<commit_run>& run) {
    if (!run->duplicate) {
        return commit_acks(self, run);
    }
    commit_end(self, run, false);
    fail(self, "duplicate message in transaction '" + run->name + "'",
         "a message of the transaction carries a duplicate id (" + std::string{duplicate_id_header}
             + ") that was already accepted; the transaction was rolled back");
    flush(self);
}

void commit(session_ptr self,
            const std::string& name,
            session_state::transaction tx,
            std::optional<std::string> receipt) {
    auto& st = self->state;
    auto run = std::make_shared<commit_run>();
    run->tx_id = st.ctx->next_tx_id.fetch_add(1, std::memory_order_relaxed);
    run->name = name;
    run->receipt = std::move(receipt);
    run->acks = std::move(tx.acks);
    std::map<std::string, size_t> index;
    for (auto& s : tx.sends) {
        auto [it, added] = index.emplace(batch_key(s.address, s.routing), run->groups.size());
        if (added) {
            run->groups.push_back({s.addr, {s.routing, {}}});
        }
        run->groups[it->second].second.second.push_back(std::move(s.msg));
    }
    st.waiting = true;
    st.committing = true;
    if (run->groups.empty()) {
        return commit_prepared(self, run);
    }
    run->waiting = run->groups.size();
    for (auto& [addr, batch] : run->groups) {
        // Bounded by request-timeout-ms, though the address answers at once: preparing waits
        // neither for room (a transaction is never blocked by max-size-bytes) nor for the
        // journal (the commit record is what is synced).
        self->request(addr, st.ctx->request_timeout(), route_atom::value, batch.first,
                      std::move(batch.second), run->tx_id)
            .then(
                [self, run, a = addr](route_status s) {
                    if (run->ended) {
                        return;
                    }
                    if (s == route_status::duplicate) {
                        run->duplicate = true;
                    } else {
                        run->prepared.push_back(a);
                    }
                    if (--run->waiting == 0) {
                        commit_prepared(self, run);
                    }
                },
                [self, run](caf::error& e) { commit_failed(self, run, e); });
    }
}

void on_transaction(session_ptr self, stomp::frame& f) {
    auto& st = self->state;
    const auto* tx = require(self, f, "transaction");
    if (tx == nullptr) {
        return;
    }
    auto i = st.transactions.find(*tx);
    if (f.cmd == command::begin) {
        if (i != st.transactions.end()) {
            fail(self, "transaction '" + *tx + "' already begun", "", &f);
            return;
        }
        const auto max = st.params.limits.max_transactions_per_session;
        if (st.transactions.size() >= max) {
            return fail_limit(self, "max-transactions-per-session", max,
                              "the session already has " + std::to_string(st.transactions.size())
                                  + " open transactions",
                              &f);
        }
        st.transactions.emplace(*tx, session_state::transaction{});
    } else if (i == st.transactions.end()) {
        fail(self, "unknown transaction '" + *tx + "'", "", &f);
        return;
    } else if (f.cmd == command::commit) {
        auto tx = std::move(i->second);
        st.transactions.erase(i);
        if (!st.outstanding.empty()) {
            // The session's earlier SENDs may be confirmed to the client (the journal posts a
            // RECEIPT itself) while their addresses still hold their duplicate ids in flight; a
            // prepare arriving then would fail with duplicate_in_flight where the client is owed
            // "duplicate message in transaction". Waiting for their answers (routes, ACKs)
            // settles the ids first; later frames wait behind the COMMIT as they would anyway.
            st.waiting = true;
            st.commit_after =
                session_state::deferred_commit{*tx_name_of(f), std::move(tx), receipt_of(f)};
            return;
        }
        return commit(self, *tx_name_of(f), std::move(tx), receipt_of(f));
    } else {
        st.transactions.erase(i);
    }
    receipt_for(self, f);
}

} // namespace actormq::session_ops
