// SPDX-License-Identifier: Apache-2.0
// The native session's two-phase transactions by xid (docs/protocol.md §10): xa_start, xa_end,
// xa_prepare, xa_commit, xa_rollback and xa_recover, and the hand-over of a branch's work to
// another session. Part of the session actor of native_session.cpp, whose helpers
// (native_session_impl.hpp) they use.
#include "actors/journal/recovery.hpp"
#include "actors/native/native_session_impl.hpp"
#include "protocol/errc.hpp"

#include <functional>
#include <memory>

namespace actormq::native_session_impl {

// -- two-phase transactions (§10) -----------------------------------------------------------

namespace {

/// Returns unprepared work: acked deliveries go back to their queues, sends are dropped.
void drop_work(self_ptr self, native_session_state::transaction& tx) {
    for (auto& a : tx.acks) {
        self->send(a.queue, nack_atom::value, a.session, a.key, std::move(a.ids));
    }
    tx = {};
}

} // namespace

/// Forgets an unprepared branch of this session and rolls its work back.
void forget_branch(self_ptr self, const std::string& key) {
    auto& st = self->state;
    if (auto it = st.xa_work.find(key); it != st.xa_work.end()) {
        drop_work(self, it->second);
        st.xa_work.erase(it);
    }
    if (st.xa_bound == key) {
        st.xa_bound.clear();
    }
    st.ctx->xa->erase(key);
}

namespace {

const char* phase_name(xa_phase p) {
    switch (p) {
        case xa_phase::active:
            return "active";
        case xa_phase::suspended:
            return "suspended";
        case xa_phase::ended:
            return "ended";
        case xa_phase::rollback_only:
            return "rollback-only";
        case xa_phase::preparing:
            return "being prepared";
        case xa_phase::prepared:
            return "prepared";
        case xa_phase::finishing:
            return "being committed or rolled back";
    }
    return "unknown";
}

/// The branch `x` if it exists; otherwise answers xa_unknown_xid.
std::optional<xa_branch> find_branch(self_ptr self, const native::xid& x, const std::string& key) {
    auto b = self->state.ctx->xa->find(key);
    if (!b) {
        fail(self, self->state.seq, error_code::xa_unknown_xid,
             "no transaction branch with xid " + xid_text(x));
    }
    return b;
}

void adopt_branch(self_ptr self,
                  const std::string& key,
                  const native::xid& x,
                  const caf::actor_addr& from,
                  std::function<void()> retry);

/// Whether this session may act on the unprepared branch `b` now (its work is here). An ended
/// branch, or one ended with fail, is no longer associated with any session: X/Open XA lets
/// any thread of control prepare, commit or roll it back, and Artemis's server does so from
/// any session. With `retry` this session then takes the branch over (adopt_branch) and runs
/// `retry` (the same call again) once the work is here. A branch that is active or suspended
/// on another session, or any other branch without `retry` (join, resume), answers
/// xa_protocol (XAER_PROTO).
bool owns(self_ptr self,
          const xa_branch& b,
          const native::xid& x,
          std::function<void()> retry = nullptr) {
    if (b.owner == self->address()) {
        return true;
    }
    if (retry && (b.phase == xa_phase::ended || b.phase == xa_phase::rollback_only)) {
        adopt_branch(self, xid_key(x), x, b.owner, std::move(retry));
        return false;
    }
    fail(self, self->state.seq, error_code::xa_protocol,
         "the branch " + xid_text(x) + " is " + phase_name(b.phase)
             + " and its work is on another session: end it there first");
    return false;
}

/// Takes the unprepared branch `key` over from the session `from`: this session becomes its
/// owner and asks `from` for its work; the packets after this one wait. Then `retry` runs the
/// call again with the work here. When `from` has ended meanwhile, its work went with it (its
/// consumers' deliveries returned to their queues): the branch is rolled back (XA_RB).
void adopt_branch(self_ptr self,
                  const std::string& key,
                  const native::xid& x,
                  const caf::actor_addr& from,
                  std::function<void()> retry) {
    auto& st = self->state;
    auto seq = st.seq;
    auto owner = caf::actor_cast<native_session_actor>(from);
    if (!st.ctx->xa->take_over(key, from, self->address())) {
        return fail(self, seq, error_code::xa_protocol,
                    "the branch " + xid_text(x)
                        + " changed while this session took it over; "
                          "call again");
    }
    auto lost = [self, key, x, seq](const std::string& why) {
        auto& st = self->state;
        st.ctx->xa->erase(key);
        fail(self, seq, error_code::transaction_rolled_back,
             "the branch " + xid_text(x) + " is rolled back: " + why);
    };
    if (!owner) {
        return lost("the session that did its work has ended");
    }
    st.waiting = true;
    // Bounded by request-timeout-ms; the owner answers from its mailbox at once.
    self->request(owner, st.ctx->request_timeout(), xa_take_atom::value, key)
        .then(
            [self, key, seq, retry, lost](native_branch_work& w) {
                auto& st = self->state;
                st.waiting = false;
                if (!w) {
                    lost("the session that did its work no longer has it");
                } else {
                    st.xa_work[key] = std::move(*w);
                    st.seq = seq;
                    retry();
                }
                pump(self);
                flush(self);
            },
            [self, lost](caf::error& e) {
                self->state.waiting = false;
                lost("the session that did its work has ended (" + caf::to_string(e) + ")");
                pump(self);
                flush(self);
            });
}

bool xa_session(self_ptr self) {
    if (self->state.xa) {
        return true;
    }
    fail(self, self->state.seq, error_code::xa_protocol,
         "the session is not an XA session (create_session with xa true)");
    return false;
}

} // namespace

void on_xa_start(self_ptr self, native::xa_start& x) {
    auto& st = self->state;
    if (!xa_session(self)) {
        return;
    }
    if (!st.xa_bound.empty()) {
        return fail(self, st.seq, error_code::xa_protocol,
                    "the session is bound to the branch " + xid_text(*xid_of_key(st.xa_bound))
                        + "; xa_end it first");
    }
    auto key = xid_key(x.id);
    auto& reg = *st.ctx->xa;
    if (x.flag == native::xa_start_flag::none) {
        if (!reg.start(key, self->address())) {
            return fail(self, st.seq, error_code::xa_duplicate_xid,
                        "a transaction branch with xid " + xid_text(x.id) + " exists");
        }
        st.xa_work[key];
    } else {
        auto b = find_branch(self, x.id, key);
        if (!b || !owns(self, *b, x.id)) {
            return;
        }
        auto from = x.flag == native::xa_start_flag::join ? xa_phase::ended : xa_phase::suspended;
        if (!reg.move(key, from, xa_phase::active)) {
            return fail(self, st.seq, error_code::xa_protocol,
                        std::string{x.flag == native::xa_start_flag::join ? "join" : "resume"}
                            + " of the branch " + xid_text(x.id) + ", which is "
                            + phase_name(b->phase) + " (join needs ended, resume suspended)");
        }
    }
    st.xa_bound = key;
    ok(self, st.seq);
}

void on_xa_end(self_ptr self, native::xa_end& x) {
    auto& st = self->state;
    if (!xa_session(self)) {
        return;
    }
    auto key = xid_key(x.id);
    if (st.xa_bound != key) {
        if (auto b = find_branch(self, x.id, key)) {
            fail(self, st.seq, error_code::xa_protocol,
                 "the branch " + xid_text(x.id) + " is not bound to this session (it is "
                     + phase_name(b->phase) + ")");
        }
        return;
    }
    auto to = x.flag == native::xa_end_flag::success ? xa_phase::ended
              : x.flag == native::xa_end_flag::fail  ? xa_phase::rollback_only
                                                     : xa_phase::suspended;
    st.ctx->xa->move(key, xa_phase::active, to);
    st.xa_bound.clear();
    ok(self, st.seq);
}

namespace {

/// A prepare in progress: the branch's sends go to their addresses and its acks to their
/// queues, each tagged with the transaction id, then the prepare record seals them.
struct prepare_run {
    std::string key;
    native::xid id;
    uint64_t tx_id = 0;
    uint64_t seq = 0;
    native_session_state::transaction tx;
    std::vector<address_actor> addresses;
    std::vector<queue_actor> queues;
    size_t waiting = 0;
    bool duplicate = false;
    bool ended = false;
};

/// Ends a prepare that did not complete: whatever was staged goes, the branch is forgotten
/// (XA_RB*), and a rollback record voids the records already written.
void prepare_failed(self_ptr self,
                    const std::shared_ptr<prepare_run>& run,
                    error_code code,
                    const std::string& text) {
    auto& st = self->state;
    if (run->ended) {
        return;
    }
    run->ended = true;
    if (st.ctx->journal) {
        journal::record r;
        r.type = journal::record_type::rollback;
        r.payload = journal::encode_payload(journal::tx_payload{run->tx_id});
        caf::anon_send(st.ctx->journal, append_atom::value, std::vector<journal::record>{r}, false);
    }
    for (const auto& a : run->addresses) {
        self->send(a, rollback_atom::value, run->tx_id);
    }
    for (const auto& q : run->queues) {
        self->send(q, rollback_atom::value, run->tx_id); // held acks go back to the queue
    }
    drop_work(self, run->tx); // acks not held yet
    st.ctx->xa->erase(run->key);
    st.committing = false;
    st.waiting = false;
    fail(self, run->seq, code, text);
    if (st.close_deferred) {
        end_session(self);
        return;
    }
    pump(self);
    flush(self);
}

void prepare_record(self_ptr self, const std::shared_ptr<prepare_run>& run) {
    auto& st = self->state;
    auto done = [self, run] {
        auto& st = self->state;
        run->ended = true;
        st.ctx->xa->prepared(run->key, run->tx_id, std::move(run->addresses),
                             std::move(run->queues));
        st.ctx->wire_log->debug("native_xa_prepared session={} xid={} tx={}", st.params.id,
                                xid_text(run->id), run->tx_id);
        st.committing = false;
        st.waiting = false;
        ok(self, run->seq);
        if (st.close_deferred) {
            end_session(self);
            return;
        }
        pump(self);
        flush(self);
    };
    if (!st.ctx->journal) {
        return done();
    }
    journal::record r;
    r.type = journal::record_type::prepare;
    r.payload = journal::encode_payload(journal::tx_payload{run->tx_id, run->key});
    // Always synced: a prepared branch must survive a crash whatever journal-sync-* say.
    // Bounded by request-timeout-ms.
    self->request(st.ctx->journal, st.ctx->request_timeout(), append_atom::value,
                  std::vector<journal::record>{r}, true)
        .then([done](uint64_t) { done(); },
              [self, run](caf::error& e) {
                  auto [code, text] = code_of(e);
                  prepare_failed(self, run,
                                 code == error_code::journal_failed ? code
                                                                    : error_code::request_timeout,
                                 "the journal did not confirm the prepare record (" + text
                                     + "); the branch was rolled back");
              });
}

void prepare_acks(self_ptr self, const std::shared_ptr<prepare_run>& run) {
    auto& st = self->state;
    auto acks = std::move(run->tx.acks);
    run->tx.acks.clear();
    for (auto& a : acks) {
        ++run->waiting;
        run->queues.push_back(a.queue);
        self->request(a.queue, st.ctx->request_timeout(), hold_atom::value, a.session, a.key,
                      std::move(a.ids), run->tx_id)
            .then(
                [self, run](bool) {
                    if (--run->waiting == 0 && !run->ended) {
                        prepare_record(self, run);
                    }
                },
                [self, run](caf::error& e) {
                    auto [code, text] = code_of(e);
                    prepare_failed(self, run, error_code::transaction_rolled_back,
                                   "the branch could not be prepared: " + text);
                });
    }
    if (run->waiting == 0) {
        prepare_record(self, run);
    }
}

} // namespace

void on_xa_prepare(self_ptr self, native::xa_prepare& x) {
    auto& st = self->state;
    auto key = xid_key(x.id);
    auto b = find_branch(self, x.id, key);
    if (!b) {
        return;
    }
    auto again = [self, x]() mutable {
        on_xa_prepare(self, x);
    };
    if (b->phase == xa_phase::rollback_only) {
        if (owns(self, *b, x.id, again)) {
            forget_branch(self, key);
            fail(self, st.seq, error_code::transaction_rolled_back,
                 "the branch " + xid_text(x.id)
                     + " was marked rollback-only (xa_end with fail) and is rolled back");
        }
        return;
    }
    if (b->phase != xa_phase::ended) {
        return fail(self, st.seq, error_code::xa_protocol,
                    "the branch " + xid_text(x.id) + " is " + phase_name(b->phase)
                        + "; only an ended branch may be prepared");
    }
    if (!owns(self, *b, x.id, again)) {
        return;
    }
    auto max = st.ctx->config.max_prepared_transactions;
    if (!st.ctx->xa->reserve_prepare(key, max)) {
        return fail_limit(self, st.seq, "max-prepared-transactions", max);
    }
    auto run = std::make_shared<prepare_run>();
    run->key = key;
    run->id = x.id;
    run->tx_id = st.ctx->next_tx_id.fetch_add(1, std::memory_order_relaxed);
    run->seq = st.seq;
    run->tx = std::move(st.xa_work[key]);
    st.xa_work.erase(key);
    st.waiting = true;
    st.committing = true;
    auto groups = group_sends(run->tx.sends);
    run->tx.sends.clear();
    if (groups.empty()) {
        return prepare_acks(self, run);
    }
    stage_groups(
        self, groups, run, &prepare_run::addresses,
        [self, run] {
            if (run->duplicate) {
                return prepare_failed(
                    self, run, error_code::duplicate_id,
                    "a message of the branch carries a duplicate id ("
                        + std::string{duplicate_id_header}
                        + ") that was already accepted; the branch was rolled back");
            }
            prepare_acks(self, run);
        },
        [self, run](caf::error& e) {
            auto [code, text] = code_of(e);
            prepare_failed(self, run, error_code::transaction_rolled_back,
                           "the branch could not be prepared: " + text);
        });
}

namespace {

/// Commits or rolls back a prepared branch this session claimed (phase finishing): the
/// outcome record first (synced), then its addresses and queues release or drop what they hold.
void finish_prepared(
    self_ptr self, const std::string& key, const native::xid& id, const xa_branch& b, bool commit) {
    auto& st = self->state;
    auto seq = st.seq;
    // `after` runs once every address and queue of the branch was told, so that the answer
    // (and the next packet of this session) comes after the outcome is on its way to them: a
    // message sent after the answer must not overtake the branch's messages.
    auto apply = [self, key, id, b, commit, seq](std::function<void()> after) {
        auto& st = self->state;
        auto tell = [self, commit, tx = b.tx_id](const auto& handle) {
            if (commit) {
                self->send(handle, commit_atom::value, tx);
            } else {
                self->send(handle, rollback_atom::value, tx);
            }
        };
        for (const auto& a : b.addresses) {
            tell(a);
        }
        for (const auto& q : b.queues) {
            tell(q);
        }
        auto finish = [self, key, id, commit, seq, tx = b.tx_id, after] {
            auto& st = self->state;
            st.ctx->xa->erase(key);
            st.ctx->wire_log->debug("native_xa_{} session={} xid={} tx={}",
                                    commit ? "committed" : "rolled_back", st.params.id,
                                    xid_text(id), tx);
            ok(self, seq);
            after();
        };
        if (b.address_names.empty()) {
            return finish();
        }
        auto left = std::make_shared<size_t>(b.address_names.size());
        for (const auto& name : b.address_names) {
            // Restored by recovery: the address forwards to its queues. Bounded by
            // request-timeout-ms.
            self->request(st.server, st.ctx->request_timeout(), lookup_atom::value, name, false)
                .then(
                    [tell, finish, left](address_actor& a) {
                        tell(a);
                        if (--*left == 0) {
                            finish();
                        }
                    },
                    [self, name, finish, left](caf::error& e) {
                        self->state.ctx->log->warn("native_xa_address_lost address={} error=\"{}\"",
                                                   name, caf::to_string(e));
                        if (--*left == 0) {
                            finish();
                        }
                    });
        }
    };
    if (!st.ctx->journal) {
        return apply([] {});
    }
    journal::record r;
    r.type = commit ? journal::record_type::commit : journal::record_type::rollback;
    r.payload = journal::encode_payload(journal::tx_payload{b.tx_id});
    // Like a commit, the session waits for it and a close waits until it is settled: the
    // claimed branch must leave `finishing` either way.
    st.waiting = true;
    st.committing = true;
    auto settled = [self] {
        auto& st = self->state;
        st.waiting = false;
        st.committing = false;
        if (st.close_deferred) {
            end_session(self);
            return;
        }
        pump(self);
        flush(self);
    };
    // Bounded by request-timeout-ms.
    self->request(st.ctx->journal, st.ctx->request_timeout(), append_atom::value,
                  std::vector<journal::record>{r}, true)
        .then([apply, settled](uint64_t) { apply(settled); },
              [self, key, id, seq, commit, settled](caf::error& e) {
                  auto& st = self->state;
                  // The record may or may not be on disk: the branch stays prepared, and the
                  // same call again settles it (a second outcome record is harmless).
                  st.ctx->xa->move(key, xa_phase::finishing, xa_phase::prepared);
                  auto [code, text] = code_of(e);
                  fail(self, seq, error_code::xa_retry,
                       std::string{"the journal did not confirm the "}
                           + (commit ? "commit" : "rollback") + " record of " + xid_text(id) + " ("
                           + text + "); the branch is still prepared: retry");
                  settled();
              });
}

} // namespace

void on_xa_commit(self_ptr self, native::xa_commit& x) {
    auto& st = self->state;
    auto key = xid_key(x.id);
    auto b = find_branch(self, x.id, key);
    if (!b) {
        return;
    }
    auto& reg = *st.ctx->xa;
    auto again = [self, x]() mutable {
        on_xa_commit(self, x);
    };
    switch (b->phase) {
        case xa_phase::prepared:
            if (x.one_phase) {
                return fail(self, st.seq, error_code::xa_protocol,
                            "the branch " + xid_text(x.id)
                                + " is prepared: commit it without one_phase");
            }
            if (!reg.move(key, xa_phase::prepared, xa_phase::finishing)) {
                break; // another session got there first
            }
            return finish_prepared(self, key, x.id, *b, true);
        case xa_phase::ended:
            if (!x.one_phase) {
                return fail(self, st.seq, error_code::xa_protocol,
                            "the branch " + xid_text(x.id)
                                + " is not prepared: xa_prepare it first, or commit with "
                                  "one_phase");
            }
            if (!owns(self, *b, x.id, again)) {
                return;
            }
            if (!reg.move(key, xa_phase::ended, xa_phase::finishing)) {
                break; // answered below with the phase it is in now
            }
            {
                auto tx = std::move(st.xa_work[key]);
                st.xa_work.erase(key);
                return start_commit(self, std::move(tx), key);
            }
        case xa_phase::rollback_only:
            if (owns(self, *b, x.id, again)) {
                forget_branch(self, key);
                fail(self, st.seq, error_code::transaction_rolled_back,
                     "the branch " + xid_text(x.id)
                         + " was marked rollback-only (xa_end with fail) and is rolled back");
            }
            return;
        default:
            break;
    }
    auto now = reg.find(key);
    fail(self, st.seq, error_code::xa_protocol,
         "the branch " + xid_text(x.id) + " is " + (now ? phase_name(now->phase) : "gone")
             + "; it cannot be committed now");
}

void on_xa_rollback(self_ptr self, native::xa_rollback& x) {
    auto& st = self->state;
    auto key = xid_key(x.id);
    auto b = find_branch(self, x.id, key);
    if (!b) {
        return;
    }
    switch (b->phase) {
        case xa_phase::prepared:
            if (!st.ctx->xa->move(key, xa_phase::prepared, xa_phase::finishing)) {
                break;
            }
            return finish_prepared(self, key, x.id, *b, false);
        case xa_phase::ended:
        case xa_phase::rollback_only:
        case xa_phase::suspended:
            if (owns(self, *b, x.id, [self, x]() mutable { on_xa_rollback(self, x); })) {
                forget_branch(self, key);
                ok(self, st.seq);
            }
            return;
        default:
            break;
    }
    fail(self, st.seq, error_code::xa_protocol,
         "the branch " + xid_text(x.id) + " is " + phase_name(b->phase)
             + "; it cannot be rolled back now"
             + (b->phase == xa_phase::active ? " (xa_end it first)" : ""));
}

void on_xa_recover(self_ptr self) {
    auto& st = self->state;
    native::xa_recovered r;
    r.correlation = st.seq;
    for (const auto& key : st.ctx->xa->prepared_keys()) {
        if (r.xids.size() >= st.out_limits().max_list_entries) {
            break; // §16; the rest shows once these are finished
        }
        if (auto x = xid_of_key(key)) {
            r.xids.push_back(std::move(*x));
        }
    }
    st.emit(std::move(r));
}

/// xa_take_atom: another session took over the unprepared branch `key`; its work goes there.
native_branch_work on_xa_take(self_ptr self, const std::string& key) {
    auto& st = self->state;
    auto it = st.xa_work.find(key);
    if (it == st.xa_work.end()) {
        return nullptr;
    }
    auto work = std::make_shared<native_transaction>(std::move(it->second));
    st.xa_work.erase(it);
    return work;
}

} // namespace actormq::native_session_impl
