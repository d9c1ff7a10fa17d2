// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the files of the native session actor share (native_session.cpp: the session, its
// packets, queues and connection; native_session_send.cpp: producers, sends and local
// transactions; native_session_consumers.cpp: consumers, deliveries and acks; native_xa.cpp:
// two-phase transactions by xid, docs/protocol.md §10). Only those files include it.

#include "actors/native/native_session.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace actormq::native_session_impl {

/// The session actor as its handlers see it.
using self_ptr = native_session_actor::stateful_pointer<native_session_state>;
using native::error_code;
using native::packet_type;

// -- native_session.cpp ---------------------------------------------------------------------

/// Posts what the handlers wrote and the input bytes that are done to the connection.
void flush(self_ptr self);

/// Answers the packet `correlation` with ok.
void ok(self_ptr self, uint64_t correlation);

/// Answers the packet `correlation` with fail (`message` cut to 1 KiB).
void fail(self_ptr self, uint64_t correlation, error_code code, std::string message);

/// The native code and text for an error another actor returned.
std::pair<error_code, std::string> code_of(const caf::error& e);

/// Answers `correlation` with limit_reached naming the config key and its value, and logs it.
void fail_limit(self_ptr self, uint64_t correlation, std::string_view key, uint64_t value);

/// Answers `correlation` with the native code of `e`, its text after `what`.
void fail_with(self_ptr self, uint64_t correlation, const caf::error& e, const std::string& what);

/// Answers `correlation` with internal_error saying the server does not implement `what` yet
/// (the protocol has no not-supported code, §15).
void fail_not_supported(self_ptr self, uint64_t correlation, const std::string& what);

/// Handles the queued packets while nothing waits, then routes and delivers what they left.
void pump(self_ptr self);

/// Ends the session (after a commit in progress): consumers, the open transaction, its
/// unprepared XA branches and temporary queues go, then the actor quits.
void end_session(self_ptr self);

/// The session ends once the packets its closed connection handed over are handled.
void end_after_input(self_ptr self);

/// Runs `then` with the address `name`, looking it up first if this session has not yet; the
/// packets after the current one wait for the answer. On an error runs `on_error`.
template <class Then, class OnError>
void with_address(
    self_ptr self, const std::string& name, bool create, Then then, OnError on_error) {
    auto& st = self->state;
    if (auto it = st.addresses.find(name); it != st.addresses.end()) {
        then(it->second);
        return;
    }
    st.waiting = true;
    self->request(st.server, st.ctx->request_timeout(), lookup_atom::value, name, create)
        .then(
            [self, name, then](address_actor& a) mutable {
                self->state.waiting = false;
                self->state.addresses.emplace(name, a);
                then(a);
                pump(self);
                flush(self);
            },
            [self, on_error](caf::error& e) mutable {
                self->state.waiting = false;
                on_error(e);
                pump(self);
                flush(self);
            });
}

// -- native_session_send.cpp ----------------------------------------------------------------

/// A transaction's sends, one group per address and routing, in the order of their first send.
using send_groups =
    std::vector<std::pair<address_actor, std::pair<routing_type, std::vector<message_ptr>>>>;

/// Stages each group at its address under `run->tx_id` (a local commit or an XA prepare: a
/// run with `waiting`, `duplicate` and `ended`), noting in `run->*staged` every address that
/// staged; `routed()` once every address answered, `failed(error)` for an error (after which
/// the run is ended and later answers are ignored).
template <class Run, class Routed, class Failed>
void stage_groups(self_ptr self,
                  const send_groups& groups,
                  const std::shared_ptr<Run>& run,
                  std::vector<address_actor> Run::*staged,
                  Routed routed,
                  Failed failed) {
    run->waiting = groups.size();
    for (const auto& [addr, batch] : groups) {
        self->request(addr, self->state.ctx->request_timeout(), route_atom::value, batch.first,
                      batch.second, run->tx_id)
            .then(
                [run, staged, routed, a = addr](route_status s) {
                    if (run->ended) {
                        return;
                    }
                    if (s == route_status::duplicate) {
                        run->duplicate = true;
                    } else {
                        ((*run).*staged).push_back(a);
                    }
                    if (--run->waiting == 0) {
                        routed();
                    }
                },
                [failed](caf::error& e) { failed(e); });
    }
}

/// Groups a transaction's sends by address and routing (their messages move out of `sends`).
send_groups group_sends(std::vector<native_session_state::tx_send>& sends);

/// Commits `tx` in one phase (§9; §10 xa_commit one_phase of the branch `xa_key`).
void start_commit(self_ptr self, native_session_state::transaction tx, std::string xa_key = {});

/// Sends every collected batch to its address.
void route_batches(self_ptr self);

/// send (§7): batched for its address, or held by the current transaction.
void on_send(self_ptr self, native::send& s, uint32_t bytes);

/// create_producer (§5), with its first credit when it has a window.
void on_create_producer(self_ptr self, native::create_producer& cp);

/// commit (§9): commits the session's transaction in one phase.
void on_commit(self_ptr self);

/// rollback (§9): the transaction's sends are dropped and its acked deliveries go back.
void on_rollback(self_ptr self);

// -- native_session_consumers.cpp -----------------------------------------------------------

/// Sends waiting deliveries while the session is started and attached, each consumer has
/// credit and the confirmation window has room.
void pump_deliveries(self_ptr self);

/// A queue's deliveries for the consumer `key`.
void on_deliver(self_ptr self, uint64_t key, std::vector<delivery>& batch);

/// create_consumer (§6): binds the consumer's queue and subscribes to it.
void on_create_consumer(self_ptr self, native::create_consumer& cc);

/// Unsubscribes the consumer `c` from its queue (its unacked deliveries return there).
void drop_consumer(self_ptr self, native_session_state::consumer& c);

/// The consumer `id`; nullptr after answering the current packet with no_such_consumer.
native_session_state::consumer* find_consumer(self_ptr self, uint32_t id);

/// ack (§8), in the current transaction, unconfirmed, or confirmed once the queue has it.
void on_ack(self_ptr self, native::ack& a);

/// nack (§8): the message goes back to its queue.
void on_nack(self_ptr self, native::nack& n);

/// Adds `n` messages of queue credit for the consumer `key` to `credits`.
void note_queue_credit(native_session_state::queue_credits& credits, uint64_t key, uint32_t n);

/// Gives each consumer's queue its credit (consumers closed meanwhile are skipped).
void give_queue_credit(self_ptr self, const native_session_state::queue_credits& credits);

/// The connection wrote everything up to the written mark `mark`: the queue credit of the
/// pre-acknowledge deliveries posted with it and before goes to the queues (§6).
void on_written(self_ptr self, uint64_t mark);

/// The session leaves its connection (detach, reattach): every pre-acknowledge credit still
/// waiting for a written mark goes to the queues now.
void release_unwritten_credit(self_ptr self);

// -- native_xa.cpp (§10) --------------------------------------------------------------------

/// Forgets an unprepared branch of this session and rolls its work back.
void forget_branch(self_ptr self, const std::string& key);

/// xa_start: binds the session to a new branch, or joins / resumes one of its own.
void on_xa_start(self_ptr self, native::xa_start& x);

/// xa_end: unbinds the bound branch (ended, rollback-only or suspended).
void on_xa_end(self_ptr self, native::xa_end& x);

/// xa_prepare of an ended branch (taken over from another session when its work is there).
void on_xa_prepare(self_ptr self, native::xa_prepare& x);

/// xa_commit of a prepared branch, or one-phase of an ended one.
void on_xa_commit(self_ptr self, native::xa_commit& x);

/// xa_rollback of a branch in any phase but active or finishing.
void on_xa_rollback(self_ptr self, native::xa_rollback& x);

/// xa_recover: the xids of the server's prepared branches.
void on_xa_recover(self_ptr self);

/// Another session takes over the unprepared branch `key`: hands over its work (null: none
/// here).
native_branch_work on_xa_take(self_ptr self, const std::string& key);

} // namespace actormq::native_session_impl
