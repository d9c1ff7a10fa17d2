// SPDX-License-Identifier: Apache-2.0
// The session actor: STOMP frame semantics after CONNECT (docs/architecture.md, "The durable
// path"). Handlers only dispatch; the pure parts are in session_state.cpp.
#include "actors/broker/session.hpp"

#include "actors/broker/connection.hpp"
#include "actors/broker/session_ops.hpp"
#include "actors/journal/recovery.hpp"
#include "protocol/assert.hpp"
#include "protocol/errc.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <charconv>
#include <limits>

namespace actormq {

namespace session_ops {

using stomp::command;

void settle_armed(session_ptr self, uint64_t first_seq);

/// Starts a COMMIT that waited for this session's routes and ACKs, once none is left.
void run_deferred_commit(session_ptr self) {
    auto& st = self->state;
    if (!st.commit_after || !st.outstanding.empty() || st.closing) {
        return;
    }
    auto c = std::move(*st.commit_after);
    st.commit_after.reset();
    commit(self, c.name, std::move(c.tx), std::move(c.receipt));
}

bool post_output(session_ptr self, uint64_t mark);

void flush(session_ptr self) {
    auto& st = self->state;
    if (!st.conn) {
        return;
    }
    // The session's state after this post: whatever it posts now is its output so far.
    bool idle = st.idle_but_output();
    auto mark = connection::idle_mark(++st.flushes, idle ? st.batches_taken : connection::busy);
    if (!post_output(self, mark)) {
        st.conn->set_idle_mark(mark);
    }
}

/// Posts the output and the confirmation, with `mark`; false if nothing was posted.
bool post_output(session_ptr self, uint64_t mark) {
    auto& st = self->state;
    if (!st.conn || (st.out.empty() && st.confirm_due == 0)) {
        return false;
    }
    if (st.out.empty() && !st.receipts.empty()
        && st.confirm_due < st.params.limits.read_window_bytes / 2) {
        // A confirmation alone waits for the RECEIPT that is due (or for half the read
        // window): the connection reads on while less than the window is unconfirmed, and a
        // synchronous producer's SEND (confirmed when handled) then rides with its RECEIPT
        // (posted once routed), one wake-up of the Asio thread instead of two. Without a
        // RECEIPT to wait for (fire and forget) nothing is held, so the window stays whole.
        return false;
    }
    // One post for both: each post wakes the connection's thread, and on the durable path a
    // RECEIPT and the confirmation of the SEND's bytes are due together.
    st.posted_total += st.out.size();
    st.conn->post_output(std::move(st.out), st.confirm_due, mark);
    st.out.clear();
    st.confirm_due = 0;
    return true;
}

void fail(session_ptr self,
          const std::string& message,
          const std::string& detail,
          const stomp::frame* f) {
    auto& st = self->state;
    if (st.closing) {
        return;
    }
    st.ctx->wire_log->info("session_error session={} message=\"{}\"", st.params.id, message);
    st.append_error(message, detail, f != nullptr ? f->find("receipt") : nullptr);
    st.closing = true;
    st.failed = true;
    st.inbox.clear();
    flush(self);
    if (st.conn) {
        st.conn->post_close({});
    }
}

std::string reason_of(const caf::error& e) {
    if (e.category() == caf::atom("actormq")) {
        return to_string(static_cast<errc>(e.code()));
    }
    if (e == caf::sec::request_timeout) {
        return to_string(errc::request_timeout);
    }
    return caf::to_string(e);
}

void fail_limit(session_ptr self,
                std::string_view key,
                uint64_t value,
                const std::string& detail,
                const stomp::frame* f) {
    self->state.ctx->wire_log->info("session_limit session={} key={} value={}",
                                    self->state.params.id, key, value);
    fail(self, limit_message(key, value), detail, f);
}

/// The limit an `errc::limit_reached` error names (its context: the key, then the value).
std::optional<std::string> limit_of(const caf::error& e) {
    if (e.category() != caf::atom("actormq")
        || static_cast<errc>(e.code()) != errc::limit_reached) {
        return std::nullopt;
    }
    const auto& ctx = e.context();
    if (ctx.match_elements<std::string, uint64_t>()) {
        return limit_message(ctx.get_as<std::string>(0), ctx.get_as<uint64_t>(1));
    }
    return std::string{"limit reached"};
}

/// Emits every RECEIPT whose frame and all frames before it are done.
void emit_receipts(session_ptr self) {
    auto& st = self->state;
    uint64_t low = st.low_water();
    while (!st.receipts.empty() && st.receipts.front().seq < low) {
        auto r = std::move(st.receipts.front());
        st.receipts.pop_front();
        if (!r.receipt_id.empty()) {
            st.append_receipt(r.receipt_id);
        }
        if (r.close_after) {
            flush(self);
            if (st.conn) {
                st.conn->post_close({});
            }
        }
    }
}

std::optional<std::string> receipt_of(const stomp::frame& f) {
    const auto* r = f.find("receipt");
    return r != nullptr ? std::optional<std::string>{*r} : std::nullopt;
}

void add_receipt(session_ptr self, const std::optional<std::string>& id, bool close_after) {
    if (id || close_after) {
        self->state.receipts.push_back({self->state.seq, id.value_or(""), close_after});
    }
}

void receipt_for(session_ptr self, const stomp::frame& f, bool close_after) {
    add_receipt(self, receipt_of(f), close_after);
}

void on_routed(session_ptr self,
               uint64_t first_seq,
               int64_t bytes,
               const std::string& address,
               route_status status) {
    auto& st = self->state;
    auto routed = st.outstanding.find(first_seq);
    ACTORMQ_ASSERT(routed != st.outstanding.end()); // Each batch is answered once.
    st.outstanding.erase(routed);
    settle_armed(self, first_seq);
    st.outstanding_bytes -= bytes;
    ACTORMQ_ASSERT(st.outstanding_bytes >= 0);
    if (status == route_status::full) {
        fail(self, "address '" + address + "' is full",
             "the address reached max-size-bytes and its address-full-policy is FAIL");
        return;
    }
    emit_receipts(self);
    run_deferred_commit(self);
    pump(self);
}

/// The route of batch `first_seq` was answered: a RECEIPT the journal was to post and did not
/// (its address kept the hook, or the append failed) goes back to the session's own queue,
/// with the input bytes it was to confirm.
void settle_armed(session_ptr self, uint64_t first_seq) {
    auto& st = self->state;
    if (!st.armed || st.armed->first_seq != first_seq) {
        return;
    }
    auto a = std::move(*st.armed);
    st.armed.reset();
    // The answer follows the hook's run (the journal runs it first), so `fired` is final here.
    if (a.hook->fired.load(std::memory_order_acquire)) {
        ++st.receipts_by_journal;
        return;
    }
    ++st.receipts_hook_unused;
    st.posted_total -= a.receipt_bytes;
    st.confirm_due += a.confirmed;
    // Before any later frame's receipt: the deque stays in frame order.
    auto at = std::lower_bound(
        st.receipts.begin(), st.receipts.end(), a.receipt.seq,
        [](const session_state::pending_receipt& r, uint64_t seq) { return r.seq < seq; });
    st.receipts.insert(at, std::move(a.receipt));
}

/// When the one batch about to be routed is all that the only pending RECEIPT waits for, the
/// journal may post that RECEIPT itself the moment the batch's append is confirmed (synced,
/// and held by the backup when replicating): the client hears one thread hand-off sooner
/// (journal -> connection, not journal -> scheduler worker -> connection; docs/benchmarks.md,
/// "The RECEIPT from the journal's thread"). Only then: with anything else in flight the
/// RECEIPTs could overtake each other, which the session's own queue prevents. Returns the
/// hook to send with the route, or null.
confirm_hook_ptr arm_receipt(session_ptr self) {
    auto& st = self->state;
    if (!st.ctx->journal || !st.conn || st.closing || st.armed || st.open_batches.size() != 1
        || st.outstanding.size() != 1 || st.receipts.size() != 1) {
        return nullptr;
    }
    const auto& b = st.open_batches.begin()->second;
    const auto& r = st.receipts.front();
    if (r.close_after || r.receipt_id.empty() || *st.outstanding.begin() != b.first_seq
        || r.seq < b.first_seq) {
        return nullptr;
    }
    session_state::armed_receipt a;
    a.first_seq = b.first_seq;
    a.receipt = std::move(st.receipts.front());
    st.receipts.pop_front();
    // Encoded here, in the client's version, by the session's own encoder.
    std::string bytes;
    std::swap(bytes, st.out);
    st.append_receipt(a.receipt.receipt_id);
    std::swap(bytes, st.out);
    a.receipt_bytes = bytes.size();
    // Counted as posted now, though the journal posts them later: a MESSAGE posted meanwhile
    // then gets a write mark past these bytes too, so an auto-ack credit can come late but
    // never early (on_deliver).
    st.posted_total += a.receipt_bytes;
    // The confirmation of the frames' bytes rides with the RECEIPT (flush).
    a.confirmed = st.confirm_due;
    st.confirm_due = 0;
    a.hook = std::make_shared<confirm_hook>();
    a.hook->run = [conn = st.conn, bytes = std::move(bytes), n = a.confirmed]() mutable {
        conn->post_output(std::move(bytes), n);
    };
    auto hook = a.hook;
    st.armed = std::move(a);
    return hook;
}

/// Sends every collected batch to its address.
void route_batches(session_ptr self) {
    auto& st = self->state;
    auto hook = arm_receipt(self);
    for (auto& [key, b] : st.open_batches) {
        auto first = b.first_seq;
        auto bytes = b.bytes;
        const auto& name = b.address;
        // caf::infinite on purpose: a route waits while a BLOCK address is full, for as long as
        // consumers take, and that wait is the producer's back-pressure (a timeout would turn
        // BLOCK into FAIL). It cannot keep the session alive: the session quits on closed_atom
        // (its connection closed) or on the server's down message, and an unanswered route
        // only holds back this client's later frames (docs/stomp.md, "Limits").
        auto pending = hook ? self->request(b.addr, caf::infinite, route_atom::value, b.routing,
                                            std::move(b.msgs), std::move(hook))
                            : self->request(b.addr, caf::infinite, route_atom::value, b.routing,
                                            std::move(b.msgs));
        pending.then(
            [self, first, bytes, name = name](route_status s) {
                on_routed(self, first, bytes, name, s);
                flush(self);
            },
            [self, first, name = name](caf::error& e) {
                // Not routed: a RECEIPT armed for it must not be sent by anyone.
                if (self->state.armed && self->state.armed->first_seq == first) {
                    self->state.armed.reset();
                }
                // The address was deleted (a temporary queue whose owner left): forget it,
                // so the next SEND looks it up again.
                self->state.addresses.erase(name);
                if (e == caf::sec::request_receiver_down) {
                    fail(self, "no such destination '" + name + "'", "the address was deleted");
                } else {
                    fail(self, "cannot route to '" + name + "'", reason_of(e));
                }
                flush(self);
            });
    }
    st.open_batches.clear();
}

std::string batch_key(const std::string& address, routing_type routing) {
    return address + (routing == routing_type::multicast ? "/m" : "/a");
}

/// Adds one message to the batch of its address (or to its transaction).
void add_send(session_ptr self,
              const address_actor& addr,
              const destination_ref& d,
              message_ptr msg) {
    auto& st = self->state;
    auto& b = st.open_batches[batch_key(d.address, d.routing)];
    if (b.msgs.empty()) {
        b.addr = addr;
        b.address = d.address;
        b.routing = d.routing;
        b.first_seq = st.seq;
        st.outstanding.insert(st.seq);
    }
    auto n = msg->memory_bytes();
    b.bytes += n;
    st.outstanding_bytes += n;
    b.msgs.push_back(std::move(msg));
}

/// Runs `then` with the address of `d`, looking it up first if this session has not yet.
template <class F>
void with_address(session_ptr self, const destination_ref& d, F then) {
    auto& st = self->state;
    if (auto i = st.addresses.find(d.address); i != st.addresses.end()) {
        then(i->second);
        return;
    }
    st.waiting = true;
    self->request(st.server, st.ctx->request_timeout(), lookup_atom::value, d.address, d.create)
        .then(
            [self, d, then](address_actor& a) mutable {
                auto& st = self->state;
                st.waiting = false;
                st.addresses.emplace(d.address, a);
                if (d.temporary) {
                    st.temp_addresses.insert(d.address);
                }
                then(a);
                pump(self);
                flush(self);
            },
            [self, d](caf::error& e) {
                if (auto limit = limit_of(e)) {
                    self->state.ctx->wire_log->info("session_limit session={} address={} {}",
                                                    self->state.params.id, d.address, *limit);
                    fail(self, *limit, "the node may not create the address '" + d.address + "'");
                } else {
                    fail(self, "no such destination '" + d.address + "'", reason_of(e));
                }
                flush(self);
            });
}

// -- frame handlers -------------------------------------------------------------------------

const std::string* require(session_ptr self, const stomp::frame& f, const char* header) {
    const auto* v = f.find(header);
    if (v == nullptr) {
        fail(self, std::string{"missing required header '"} + header + "'",
             std::string{stomp::to_string(f.cmd)} + " needs a '" + header + "' header", &f);
    }
    return v;
}

/// Where a frame's destination leads; on an invalid one, ERROR and nullopt.
std::optional<destination_ref>
resolve_or_fail(session_ptr self, const stomp::frame& f, const std::string& destination) {
    std::string err;
    auto d = self->state.resolve(destination, err);
    if (!d) {
        fail(self, "invalid destination", err, &f);
    }
    return d;
}

void on_send(session_ptr self, stomp::frame& f) {
    auto& st = self->state;
    const auto* dest = require(self, f, "destination");
    if (dest == nullptr) {
        return;
    }
    auto d = resolve_or_fail(self, f, *dest);
    if (!d) {
        return;
    }
    const auto* tx = f.find("transaction");
    if (tx != nullptr) {
        auto i = st.transactions.find(*tx);
        if (i == st.transactions.end()) {
            fail(self, "unknown transaction '" + *tx + "'", "SEND names a transaction not begun",
                 &f);
            return;
        }
        // The session holds these messages until COMMIT; no address counts them before.
        auto& t = i->second;
        const auto& lim = st.params.limits;
        if (t.messages + 1 > lim.max_messages_per_transaction) {
            return fail_limit(self, "max-messages-per-transaction",
                              lim.max_messages_per_transaction,
                              "transaction '" + *tx + "' already holds "
                                  + std::to_string(t.messages) + " messages",
                              &f);
        }
        if (t.body_bytes + f.body.size() > lim.max_bytes_per_transaction) {
            return fail_limit(self, "max-bytes-per-transaction", lim.max_bytes_per_transaction,
                              "transaction '" + *tx + "' holds " + std::to_string(t.body_bytes)
                                  + " body bytes; this SEND adds " + std::to_string(f.body.size()),
                              &f);
        }
        ++t.messages;
        t.body_bytes += f.body.size();
    }
    auto txid = tx != nullptr ? std::optional<std::string>{*tx} : std::nullopt;
    auto rid = receipt_of(f);
    auto msg = st.make_message(f, *d);
    // The receipt is queued after the message joined its batch, so it waits for the routing.
    with_address(self, *d, [self, d = *d, msg, txid, rid](const address_actor& a) mutable {
        auto& st = self->state;
        if (!txid) {
            add_send(self, a, d, std::move(msg));
        } else if (auto i = st.transactions.find(*txid); i != st.transactions.end()) {
            i->second.sends.push_back({a, d.address, d.routing, std::move(msg)});
        }
        add_receipt(self, rid);
    });
}

bool parse_prefetch(const stomp::frame& f, uint32_t& out) {
    const std::string* v = f.find("activemq.prefetchSize");
    if (v == nullptr) {
        v = f.find("prefetch-count");
    }
    if (v == nullptr) {
        return true;
    }
    uint32_t n = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc{} || p != v->data() + v->size() || n == 0) {
        return false;
    }
    out = n;
    return true;
}

/// The durable subscription name a SUBSCRIBE or UNSUBSCRIBE carries (Artemis' header or
/// ActiveMQ's), or nullptr.
const std::string* durable_name(const stomp::frame& f) {
    const auto* n = f.find("durable-subscription-name");
    return n != nullptr ? n : f.find("activemq.subscriptionName");
}

void on_subscribe(session_ptr self, stomp::frame& f) {
    auto& st = self->state;
    const auto* dest = require(self, f, "destination");
    if (dest == nullptr) {
        return;
    }
    const auto* idh = f.find("id");
    if (idh == nullptr && st.params.version != stomp::version::v1_0) {
        require(self, f, "id");
        return;
    }
    const auto& lim = st.params.limits;
    if (st.subs.size() >= lim.max_subscriptions_per_session) {
        return fail_limit(
            self, "max-subscriptions-per-session", lim.max_subscriptions_per_session,
            "the session already has " + std::to_string(st.subs.size()) + " subscriptions", &f);
    }
    session_state::subscription s;
    s.id = idh != nullptr ? *idh : *dest;
    s.destination = *dest;
    if (st.find_sub(s.id) != nullptr) {
        fail(self, "duplicate subscription id '" + s.id + "'", "", &f);
        return;
    }
    auto d = resolve_or_fail(self, f, *dest);
    if (!d) {
        return;
    }
    s.dest = *d;
    const auto* ack = f.find("ack");
    std::string mode = ack != nullptr ? *ack : "auto";
    if (mode == "client") {
        s.mode = ack_mode::client;
    } else if (mode == "client-individual") {
        s.mode = ack_mode::client_individual;
    } else if (mode != "auto") {
        fail(self, "invalid ack mode '" + mode + "'", "use auto, client or client-individual", &f);
        return;
    }
    s.window = st.params.default_prefetch;
    if (!parse_prefetch(f, s.window)) {
        fail(self, "invalid prefetch", "the prefetch header must be a positive integer", &f);
        return;
    }
    if (s.window > lim.max_prefetch_count) {
        // Refused rather than clamped: the client would count on a window it does not have.
        return fail_limit(self, "max-prefetch-count", lim.max_prefetch_count,
                          "the SUBSCRIBE asked for a prefetch of " + std::to_string(s.window), &f);
    }
    // Every subscription on a topic gets a queue of its own (a durable one coming back finds
    // its queue again, but is counted like a new one).
    const auto max_queues = st.ctx->config.max_auto_created_queues;
    if (d->routing == routing_type::multicast
        && st.ctx->queue_count.load(std::memory_order_relaxed) >= max_queues) {
        return fail_limit(self, "max-auto-created-queues", max_queues,
                          "the node may not create a queue for this subscription", &f);
    }
    s.key = st.next_key++;
    s.queue_name = "sub." + std::to_string(st.params.id) + "." + std::to_string(s.key);
    if (const auto* name = durable_name(f);
        name != nullptr && d->routing == routing_type::multicast) {
        if (st.params.client_id.empty()) {
            fail(self, "durable subscription needs a client-id",
                 "send a 'client-id' header with CONNECT to subscribe durably", &f);
            return;
        }
        // docs/stomp.md §5: the queue is named after the client and the subscription.
        s.durable = true;
        s.queue_name = st.params.client_id + "." + *name;
    }
    // The subscription needs the address and then its queue; later frames wait for both, and
    // the receipt is queued once the queue has the consumer.
    auto rid = receipt_of(f);
    with_address(self, *d, [self, s = std::move(s), rid](const address_actor& a) mutable {
        auto& st = self->state;
        st.waiting = true;
        s.addr = a;
        self->request(a, st.ctx->request_timeout(), bind_atom::value, s.dest.routing, s.queue_name,
                      s.durable)
            .then(
                [self, s, rid](queue_actor& q) mutable {
                    auto& st = self->state;
                    st.waiting = false;
                    s.queue = q;
                    consumer_spec spec{s.key, s.window, s.mode == ack_mode::automatic};
                    self->send(q, subscribe_atom::value, session_actor{self}, spec);
                    auto key = s.key;
                    st.subs.emplace(key, std::move(s));
                    add_receipt(self, rid);
                    pump(self);
                    flush(self);
                },
                [self, d = s.dest](caf::error& e) {
                    fail(self, "cannot subscribe to '" + d.address + "'", reason_of(e));
                    flush(self);
                });
    });
}

/// Forgets a subscription: its unacked messages go back to the queue for redelivery. A
/// non-durable topic subscription's queue goes with it; a durable one's stays unless
/// `delete_durable` (UNSUBSCRIBE naming the durable subscription).
void drop_subscription(session_ptr self,
                       session_state::subscription& s,
                       bool delete_durable = false) {
    auto& st = self->state;
    for (const auto& u : s.unacked) {
        st.ack_index.erase(u.ack_id);
    }
    if (st.params.acks) {
        // The lane must not acknowledge what the queue is about to put back.
        st.params.acks->drop_key(s.key);
    }
    if (s.dest.routing == routing_type::multicast && (!s.durable || delete_durable)) {
        self->send(s.addr, unbind_atom::value, s.queue_name);
    } else {
        self->send(s.queue, unsub_atom::value, session_actor{self}, s.key);
    }
}

void on_unsubscribe(session_ptr self, stomp::frame& f) {
    auto& st = self->state;
    const auto* id = f.find("id");
    if (id == nullptr && st.params.version == stomp::version::v1_0) {
        id = f.find("destination");
    }
    if (id == nullptr) {
        require(self, f, "id");
        return;
    }
    auto* s = st.find_sub(*id);
    if (s == nullptr) {
        fail(self, "no subscription with id '" + *id + "'", "", &f);
        return;
    }
    drop_subscription(self, *s, durable_name(f) != nullptr);
    st.subs.erase(s->key);
    receipt_for(self, f);
}

/// Makes sure a watchdog tick comes at the oldest unanswered ACK's deadline (one at a time).
void arm_watchdog(session_ptr self) {
    auto& st = self->state;
    if (st.watchdog_armed || st.ack_deadlines.empty()) {
        return;
    }
    st.watchdog_armed = true;
    auto wait = st.ack_deadlines.begin()->second - std::chrono::steady_clock::now();
    self->delayed_send(self, std::max(wait, decltype(wait)::zero()), caf::tick_atom::value);
}

/// The watchdog's tick: an ACK unanswered past request-timeout-ms fails the client as its
/// request's timeout did (the same ERROR: "acknowledgement failed", request_timeout);
/// otherwise the next tick aims at the ACK now oldest. With ACKs answered promptly the tick
/// comes about once per request-timeout-ms, not once per ACK.
void on_watchdog(session_ptr self) {
    auto& st = self->state;
    st.watchdog_armed = false;
    if (st.closing || st.ack_deadlines.empty()) {
        return;
    }
    if (st.ack_deadlines.begin()->second <= std::chrono::steady_clock::now()) {
        st.ack_deadlines.clear();
        fail(self, "acknowledgement failed", to_string(errc::request_timeout));
        flush(self);
        return;
    }
    arm_watchdog(self);
}

/// Applies one ACK or NACK now.
void apply_ack(session_ptr self, uint64_t key, uint64_t ack_id, bool nack) {
    auto& st = self->state;
    auto it = st.subs.find(key);
    if (it == st.subs.end()) {
        return;
    }
    auto& s = it->second;
    bool cumulative = !nack && s.mode == ack_mode::client;
    auto ids = st.take_acked(s, ack_id, cumulative);
    if (ids.empty()) {
        return;
    }
    if (nack) {
        self->send(s.queue, nack_atom::value, session_actor{self}, key, std::move(ids));
        return;
    }
    // Receipts after this ACK wait until the queue has made it durable.
    auto seq = st.seq;
    st.outstanding.insert(seq);
    st.ack_deadlines.emplace(seq, std::chrono::steady_clock::now() + st.ctx->request_timeout());
    arm_watchdog(self);
    // caf::infinite, bounded all the same: the queue answers once the journal has the ack, and
    // the session's watchdog (on_watchdog) fails this client with nothing confirmed once
    // request-timeout-ms passed without an answer, as a timeout per request did. A request
    // timeout would cost a wake-up of CAF's timer thread for every ACK.
    self->request(s.queue, caf::infinite, ack_atom::value, session_actor{self}, key, std::move(ids))
        .then(
            [self, seq](uint64_t) {
                auto& st = self->state;
                st.ack_deadlines.erase(seq);
                st.outstanding.erase(st.outstanding.find(seq));
                if (st.failed) {
                    return; // The watchdog failed the session meanwhile: nothing more to say.
                }
                emit_receipts(self);
                run_deferred_commit(self);
                flush(self);
            },
            [self, seq](caf::error& e) {
                self->state.ack_deadlines.erase(seq);
                fail(self, "acknowledgement failed", reason_of(e));
                flush(self);
            });
}

void on_ack(session_ptr self, stomp::frame& f, bool nack) {
    auto& st = self->state;
    uint64_t key = 0;
    uint64_t ack_id = 0;
    std::string err;
    if (!st.find_ack(f, key, ack_id, err)) {
        fail(self, err, std::string{stomp::to_string(f.cmd)} + " could not be matched", &f);
        return;
    }
    if (const auto* tx = f.find("transaction")) {
        auto i = st.transactions.find(*tx);
        if (i == st.transactions.end()) {
            fail(self, "unknown transaction '" + *tx + "'", "", &f);
            return;
        }
        i->second.acks.push_back({key, ack_id, nack});
    } else {
        apply_ack(self, key, ack_id, nack);
    }
    receipt_for(self, f);
}

void dispatch(session_ptr self, stomp::frame& f) {
    switch (f.cmd) {
        case command::send:
            return on_send(self, f);
        case command::subscribe:
            return on_subscribe(self, f);
        case command::unsubscribe:
            return on_unsubscribe(self, f);
        case command::ack:
            return on_ack(self, f, false);
        case command::nack:
            return on_ack(self, f, true);
        case command::begin:
        case command::commit:
        case command::abort:
            return on_transaction(self, f);
        case command::disconnect:
            self->state.closing = true;
            self->state.inbox.clear();
            return receipt_for(self, f, true);
        case command::connect:
        case command::stomp:
            return fail(self, "already connected", "a second CONNECT frame", &f);
        default:
            return fail(self, "unexpected command",
                        std::string{stomp::to_string(f.cmd)} + " is sent by servers only", &f);
    }
}

/// A frame with `actormq-barrier: queues` is handled only after one round trip to every queue
/// this session consumes from. A queue sends its deliveries before its answer, and CAF keeps the
/// order of the messages between two actors, so the frame's RECEIPT follows every delivery those
/// queues had made when the frame arrived (docs/stomp.md §7): a test's "nothing more arrives"
/// then holds for the queue, not only for the connection. Frames after it wait, as for any
/// frame that needs an answer.
void handle(session_ptr self, stomp::frame& f) {
    auto& st = self->state;
    const auto* barrier = f.find("actormq-barrier");
    if (barrier == nullptr || *barrier != "queues" || st.subs.empty()) {
        return dispatch(self, f);
    }
    st.waiting = true;
    auto left = std::make_shared<size_t>(st.subs.size());
    auto frame = std::make_shared<stomp::frame>(std::move(f));
    auto done = [self, left, frame] {
        if (--*left > 0) {
            return;
        }
        self->state.waiting = false;
        dispatch(self, *frame);
        pump(self);
        flush(self);
    };
    for (const auto& [key, sub] : st.subs) {
        // A queue that is gone or slow delivers nothing more to this session, so an error
        // (request-timeout-ms at most) ends the wait just as an answer does.
        self->request(sub.queue, st.ctx->request_timeout(), stats_atom::value)
            .then([done](const queue_stats&) { done(); }, [done](const caf::error&) { done(); });
    }
}

/// Takes one frame out of the inbox and counts its batch's bytes once all its frames are done.
stomp::frame take_frame(session_state& st) {
    stomp::frame f = std::move(st.inbox.front());
    st.inbox.pop_front();
    auto& b = st.batches.front();
    if (--b.first == 0) {
        st.confirm_due += b.second;
        st.batches.pop_front();
    }
    return f;
}

void pump(session_ptr self) {
    auto& st = self->state;
    while (!st.inbox.empty() && !st.waiting && !st.closing
           && st.outstanding_bytes < static_cast<int64_t>(st.params.limits.read_window_bytes)) {
        auto f = take_frame(st);
        ++st.seq;
        handle(self, f);
    }
    route_batches(self);
    emit_receipts(self);
}

// -- consumers ------------------------------------------------------------------------------

/// The ACK lane of a subscription's queue (ack_lane.hpp), if its deliveries may take it: a
/// STOMP 1.2 client-individual subscription (an ACK names one delivery by its ack id) on a
/// durable anycast queue, on a connection with a lane.
std::shared_ptr<queue_ack_lane> ack_lane_of(const session_state& st,
                                            const session_state::subscription& s) {
    if (!st.params.acks || s.mode != ack_mode::client_individual
        || st.params.version != stomp::version::v1_2 || !s.queue) {
        return nullptr;
    }
    auto lane = st.ctx->ack_lanes->find(s.queue.id());
    return lane && lane->owner == s.queue.address() ? lane : nullptr;
}

void on_deliver(session_ptr self, uint64_t key, std::vector<delivery>& batch) {
    auto& st = self->state;
    auto it = st.subs.find(key);
    if (it == st.subs.end() || st.closing) {
        return; // Unsubscribed: the queue puts in-flight messages back when it hears of it.
    }
    auto& s = it->second;
    if (!s.ack_lane_looked) {
        s.ack_lane_looked = true;
        s.ack_lane = ack_lane_of(st, s);
    }
    std::vector<std::pair<uint64_t, ack_lane_entry>> lane_entries;
    for (const auto& d : batch) {
        uint64_t ack_id = 0;
        if (s.mode != ack_mode::automatic) {
            ack_id = st.next_ack_id++;
            if (s.ack_lane && d.msg->persistent) {
                lane_entries.emplace_back(ack_id, ack_lane_entry{key, d.msg->id, s.ack_lane});
            } else {
                s.unacked.push_back({ack_id, d.msg->id});
                st.ack_index.emplace(ack_id, key);
            }
        }
        st.append_message(s, d, ack_id);
    }
    if (!lane_entries.empty()) {
        // Before the MESSAGEs are posted (flush below): the client cannot ACK one that the
        // connection does not know yet.
        st.params.acks->add(lane_entries);
    }
    if (s.mode == ack_mode::automatic) {
        auto end = st.posted_total + st.out.size();
        if (st.marks.empty() && st.conn) {
            // Before the bytes are posted (flush below), so their write cannot go unreported.
            st.conn->want_written(end);
        }
        st.marks.push_back({end, key, static_cast<uint32_t>(batch.size())});
    }
    flush(self);
}

void on_written(session_ptr self, uint64_t total) {
    auto& st = self->state;
    std::map<uint64_t, uint32_t> credits;
    while (!st.marks.empty() && st.marks.front().end_offset <= total) {
        credits[st.marks.front().key] += st.marks.front().count;
        st.marks.pop_front();
    }
    if (st.conn) {
        // The next report that matters; the bytes of every mark left were posted already, so
        // a write that passed one reports, since this never exceeds the oldest mark's end.
        st.conn->want_written(st.marks.empty() ? std::numeric_limits<uint64_t>::max()
                                               : st.marks.front().end_offset);
    }
    for (auto& [key, n] : credits) {
        if (auto it = st.subs.find(key); it != st.subs.end()) {
            self->send(it->second.queue, credit_atom::value, session_actor{self}, key, n);
        }
    }
}

void on_closed(session_ptr self) {
    auto& st = self->state;
    if (st.committing) {
        // Finish the COMMIT first: leaving it half done would strand its messages.
        st.close_deferred = true;
        return;
    }
    for (auto& [k, s] : st.subs) {
        drop_subscription(self, s);
    }
    st.subs.clear();
    for (const auto& name : st.temp_addresses) {
        self->send(st.server, remove_atom::value, name);
    }
    st.ctx->wire_log->debug("session_closed session={} user={} receipts_by_journal={} "
                            "receipts_hook_unused={}",
                            st.params.id, st.params.user, st.receipts_by_journal,
                            st.receipts_hook_unused);
    st.conn.reset();
    self->quit();
}

/// The server stopped: end now, whatever the connection or a COMMIT is doing (the addresses
/// went with the server), and close the connection if it is still open.
void on_down(session_ptr self, const caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source != st.server) {
        return;
    }
    st.ctx->wire_log->debug("session_server_down session={}", st.params.id);
    if (st.conn) {
        st.conn->post_shutdown();
        st.conn.reset();
    }
    self->quit();
}

} // namespace session_ops

using namespace session_ops;

stomp_session_actor::behavior_type session(session_ptr self,
                                           std::shared_ptr<server_context> ctx,
                                           server_actor server,
                                           std::shared_ptr<connection> conn,
                                           session_params params) {
    auto& st = self->state;
    st.ctx = std::move(ctx);
    st.server = std::move(server);
    st.conn = std::move(conn);
    st.params = std::move(params);
    // The session belongs to its server instance: when the server stops (deactivate, node
    // stop) the session ends even if its connection never reports closed_atom (an acceptor
    // whose shutdown timed out, an io_context that stopped first), so it cannot keep
    // ~actor_system waiting.
    self->monitor(st.server);
    self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
    return {
        [self](frames_atom, std::vector<stomp::frame>& frames, uint64_t bytes) {
            auto& st = self->state;
            if (st.closing) {
                return;
            }
            ++st.batches_taken;
            st.batches.emplace_back(frames.size(), bytes);
            for (auto& f : frames) {
                st.inbox.push_back(std::move(f));
            }
            pump(self);
            flush(self);
        },
        [self](deliver_atom, uint64_t key, std::vector<delivery>& batch) {
            on_deliver(self, key, batch);
        },
        [self](written_atom, uint64_t total) { on_written(self, total); },
        [self](closed_atom) { on_closed(self); },
        [self](caf::tick_atom) { on_watchdog(self); },
    };
}

} // namespace actormq
