// SPDX-License-Identifier: Apache-2.0
// The native session actor (docs/protocol.md §4-§11, §14). Handlers only dispatch; the pure
// parts are in native_session_state.cpp. The routing, ack and commit steps follow STOMP's
// session (actors/broker/session.cpp), copied in their shape because that file is STOMP's own.
// The XA handlers (§10) are in native_xa.cpp; what the two files share is declared in
// native_session_impl.hpp.
#include "actors/journal/recovery.hpp"
#include "actors/native/native_connection.hpp"
#include "actors/native/native_session_impl.hpp"
#include "protocol/errc.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <functional>
#include <memory>

namespace actormq {

namespace native_session_impl {

/// Posts what the handlers wrote and the input bytes that are done to the connection.
void flush(self_ptr self) {
    auto& st = self->state;
    if (!st.attached || !st.link.conn) {
        st.out.clear();
        st.confirm_due = 0;
        return;
    }
    if (st.confirm_due > 0) {
        // Straight to the connection's counter: a hand-off only if it stopped reading.
        st.link.conn->confirm(st.link, st.confirm_due);
        st.confirm_due = 0;
    }
    if (st.out.empty()) {
        return;
    }
    st.link.conn->post_output(std::move(st.out), st.link.channel, 0);
    st.out.clear();
}

/// A fatal connection error (§15): the connection sends `error` and closes, and tells this
/// session (and the others) with closed_atom.
void connection_error(self_ptr self, error_code code, std::string message) {
    auto& st = self->state;
    st.ctx->wire_log->info("native_session_error session={} code={} message=\"{}\"", st.params.id,
                           native::to_string(code), message);
    st.inbox.clear();
    if (st.attached && st.link.conn) {
        st.link.conn->post_error(code, std::move(message));
    }
}

void ok(self_ptr self, uint64_t correlation) {
    self->state.emit(native::ok{correlation});
}

void fail(self_ptr self, uint64_t correlation, error_code code, std::string message) {
    if (message.size() > 1024) {
        message.resize(1024);
    }
    self->state.ctx->wire_log->debug("native_fail session={} correlation={} code={} message=\"{}\"",
                                     self->state.params.id, correlation, native::to_string(code),
                                     message);
    self->state.emit(native::fail{correlation, code, std::move(message)});
}

/// The native code and text for an error another actor returned.
std::pair<error_code, std::string> code_of(const caf::error& e) {
    if (e.category() == caf::atom("actormq")) {
        auto c = static_cast<errc>(e.code());
        std::string text = to_string(c);
        const auto& ctx = e.context();
        if (ctx.match_elements<std::string, uint64_t>()) {
            text = limit_message(ctx.get_as<std::string>(0), ctx.get_as<uint64_t>(1));
        } else if (ctx.match_elements<std::string>()) {
            text += ": " + ctx.get_as<std::string>(0);
        }
        switch (c) {
            case errc::no_such_address:
            case errc::auto_create_disabled:
                return {error_code::no_such_address, text};
            case errc::journal_failed:
                return {error_code::journal_failed, text};
            case errc::duplicate_in_flight:
                return {error_code::duplicate_id,
                        text + " (its first copy is not stored yet; retry)"};
            case errc::limit_reached:
                return {error_code::limit_reached, text};
            case errc::request_timeout:
                return {error_code::request_timeout, text};
            default:
                return {error_code::internal_error, text};
        }
    }
    if (e == caf::sec::request_timeout) {
        return {error_code::request_timeout, "request_timeout"};
    }
    return {error_code::internal_error, caf::to_string(e)};
}

void fail_with(self_ptr self, uint64_t correlation, const caf::error& e, const std::string& what) {
    auto [code, text] = code_of(e);
    fail(self, correlation, code, what + ": " + text);
}

void fail_not_supported(self_ptr self, uint64_t correlation, const std::string& what) {
    // The protocol has no not-supported code; internal_error's text says what (§15).
    fail(self, correlation, error_code::internal_error,
         "not_supported: " + what + " is not implemented by this server yet");
}

void fail_limit(self_ptr self, uint64_t correlation, std::string_view key, uint64_t value) {
    self->state.ctx->wire_log->info("native_session_limit session={} key={} value={}",
                                    self->state.params.id, key, value);
    fail(self, correlation, error_code::limit_reached, limit_message(key, value));
}

// -- addresses ------------------------------------------------------------------------------

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

// -- consumers (§6) -------------------------------------------------------------------------

/// Sends waiting deliveries while the session is started and attached, each consumer has
/// credit and the confirmation window has room.
void pump_deliveries(self_ptr self) {
    auto& st = self->state;
    if (!st.attached || !st.started || st.closing) {
        return;
    }
    std::vector<uint32_t> too_large;
    for (auto& [id, c] : st.consumers) {
        if (!c.waiting.empty() && st.out.capacity() - st.out.size() < 4096) {
            // Room for what is likely sent now, once: appended packet by packet, the output
            // otherwise grows by doubling and copies what it holds each time.
            size_t want = 0;
            for (const auto& d : c.waiting) {
                want += d.msg->body.size() + 256;
                if (want >= 256 * 1024) {
                    break;
                }
            }
            if (!c.unbounded) {
                // No more than its credit lets go now (the last one may overdraw it).
                want = std::min(want, static_cast<size_t>(std::max<int64_t>(c.credit, 0)) + 4096);
            }
            st.out.reserve(st.out.size() + want);
        }
        while (!c.waiting.empty() && (c.unbounded || c.credit > 0)) {
            const auto& d = c.waiting.front();
            native::deliver dl;
            dl.consumer_id = id;
            dl.message_id = d.msg->id;
            dl.delivery_count = d.delivery_count;
            // The body is encoded from the shared message itself, and the packet straight into
            // the session's output: no copy of the body into a packet, nor of the packet into
            // a string of its own.
            dl.msg = to_native_message(*d.msg, false);
            native::packet p{st.link.channel, st.out_seq + 1, std::move(dl)};
            size_t start = st.out.size();
            auto f = native::encode_with_body(p, d.msg->body, native::peer::server, st.out_limits(),
                                              st.out);
            if (f.code != native::codec_error::none) {
                too_large.push_back(id);
                break;
            }
            size_t packet_bytes = st.out.size() - start;
            if (!st.window_has_room(packet_bytes)) {
                st.out.resize(start);
                return; // §14: held until the client confirms.
            }
            ++st.out_seq;
            auto size = static_cast<int64_t>(packet_bytes);
            if (st.window > 0) {
                st.kept_bytes += packet_bytes;
                st.kept.emplace_back(st.out_seq, st.out.substr(start));
            }
            if (!c.unbounded) {
                // §6: the whole packet's size; the last delivery may overdraw the credit.
                c.credit -= size;
            }
            c.unacked.push_back(d.msg->id);
            c.waiting.pop_front();
        }
    }
    for (auto id : too_large) {
        auto it = st.consumers.find(id);
        // §2: a message too large for the client closes its consumer; the queue takes the
        // message (and everything else in flight to it) back.
        st.emit(native::consumer_closed{id, error_code::limit_reached,
                                        "a message is larger than the client's max_packet_bytes"});
        self->send(it->second.queue, unsub_atom::value, session_actor{self}, it->second.key);
        st.consumer_of_key.erase(it->second.key);
        st.consumers.erase(it);
    }
}

void on_deliver(self_ptr self, uint64_t key, std::vector<delivery>& batch) {
    auto& st = self->state;
    auto k = st.consumer_of_key.find(key);
    if (k == st.consumer_of_key.end() || st.closing) {
        return; // Closed: the queue puts in-flight messages back when it hears of it.
    }
    auto& c = st.consumers[k->second];
    for (auto& d : batch) {
        c.waiting.push_back(std::move(d));
    }
    pump_deliveries(self);
    flush(self);
}

void on_create_consumer(self_ptr self, native::create_consumer& cc) {
    auto& st = self->state;
    auto seq = st.seq;
    if (st.consumers.count(cc.consumer_id) != 0) {
        return fail(self, seq, error_code::unexpected_packet,
                    "consumer " + std::to_string(cc.consumer_id) + " exists");
    }
    if (st.consumers.size() >= st.params.limits.max_consumers) {
        return fail_limit(self, seq, "max-consumers-per-session", st.params.limits.max_consumers);
    }
    if (cc.browse_only) {
        return fail_not_supported(self, seq, "a browse_only consumer");
    }
    if (!cc.filter.empty()) {
        return fail_not_supported(self, seq, "a consumer filter");
    }
    auto ref = parse_queue_name(cc.queue);
    if (!ref) {
        return fail(self, seq, error_code::no_such_queue,
                    "malformed queue name '" + cc.queue + "'");
    }
    const auto max_queues = st.ctx->config.max_auto_created_queues;
    if (ref->routing == routing_type::multicast
        && st.ctx->queue_count.load(std::memory_order_relaxed) >= max_queues) {
        return fail_limit(self, seq, "max-auto-created-queues", max_queues);
    }
    native_session_state::consumer c;
    c.id = cc.consumer_id;
    c.key = st.next_key++;
    c.ref = *ref;
    c.unbounded = cc.window_bytes < 0;
    c.credit = cc.window_bytes < 0 ? 0 : cc.window_bytes;
    with_address(
        self, ref->address, true,
        [self, c, seq](const address_actor& a) mutable {
            auto& st = self->state;
            st.waiting = true;
            c.addr = a;
            self->request(a, st.ctx->request_timeout(), bind_atom::value, c.ref.routing,
                          c.ref.queue, false)
                .then(
                    [self, c, seq](queue_actor& q) mutable {
                        auto& st = self->state;
                        st.waiting = false;
                        c.queue = q;
                        consumer_spec spec{c.key, st.params.limits.consumer_window_messages, false};
                        self->send(q, subscribe_atom::value, session_actor{self}, spec);
                        st.consumer_of_key.emplace(c.key, c.id);
                        auto id = c.id;
                        st.consumers.emplace(id, std::move(c));
                        ok(self, seq);
                        pump(self);
                        flush(self);
                    },
                    [self, seq, name = c.ref.queue](caf::error& e) {
                        self->state.waiting = false;
                        fail_with(self, seq, e, "cannot consume from '" + name + "'");
                        pump(self);
                        flush(self);
                    });
        },
        [self, seq, name = cc.queue](caf::error& e) {
            fail_with(self, seq, e, "cannot consume from '" + name + "'");
        });
}

void drop_consumer(self_ptr self, native_session_state::consumer& c) {
    self->send(c.queue, unsub_atom::value, session_actor{self}, c.key);
    self->state.consumer_of_key.erase(c.key);
}

native_session_state::consumer* find_consumer(self_ptr self, uint32_t id) {
    auto& cs = self->state.consumers;
    auto it = cs.find(id);
    if (it == cs.end()) {
        fail(self, self->state.seq, error_code::no_such_consumer,
             "no consumer " + std::to_string(id));
        return nullptr;
    }
    return &it->second;
}

// -- acks (§8) ------------------------------------------------------------------------------

/// Takes the acked message ids out of the consumer's unacked list (up to and including `id`
/// when cumulative); empty when `id` is not unacked.
std::vector<uint64_t> take_acked(native_session_state::consumer& c, uint64_t id, bool cumulative) {
    std::vector<uint64_t> ids;
    auto it = std::find(c.unacked.begin(), c.unacked.end(), id);
    if (it == c.unacked.end()) {
        return ids;
    }
    auto first = cumulative ? c.unacked.begin() : it;
    ids.assign(first, it + 1);
    c.unacked.erase(first, it + 1);
    return ids;
}

void on_ack(self_ptr self, native::ack& a) {
    auto& st = self->state;
    auto seq = st.seq;
    auto* c = find_consumer(self, a.consumer_id);
    if (c == nullptr) {
        return;
    }
    auto ids = take_acked(*c, a.message_id, a.mode == native::ack_mode::cumulative);
    if (ids.empty()) {
        return fail(self, seq, error_code::unexpected_packet,
                    "no unacknowledged message " + std::to_string(a.message_id) + " on consumer "
                        + std::to_string(a.consumer_id));
    }
    if (auto* t = st.current_tx()) {
        t->acks.push_back({c->key, c->queue, std::move(ids), session_actor{self}});
        if (a.confirm) {
            ok(self, seq);
        }
        return;
    }
    if (!a.confirm) {
        // §8: nobody waits for an unconfirmed ack, so nothing is waited for here either: one
        // message to the queue, no request, no timeout on the clock thread, no handler that a
        // dying queue could leave behind. It reaches the queue before anything this session
        // sends it later (one sender, one mailbox, in order); a queue that is gone drops it,
        // and the delivery went with its queue.
        caf::anon_send(c->queue, ack_atom::value, session_actor{self}, c->key, std::move(ids));
        return;
    }
    // Bounded: the queue answers once the journal has the ack (the journal answers itself
    // when there are records).
    self->request(c->queue, st.ctx->request_timeout(), ack_atom::value, session_actor{self}, c->key,
                  std::move(ids))
        .then(
            [self, seq](uint64_t) {
                ok(self, seq);
                flush(self);
            },
            [self, seq](caf::error& e) {
                fail_with(self, seq, e, "acknowledgement failed");
                flush(self);
            });
}

void on_nack(self_ptr self, native::nack& n) {
    auto& st = self->state;
    auto* c = find_consumer(self, n.consumer_id);
    if (c == nullptr) {
        return;
    }
    auto ids = take_acked(*c, n.message_id, false);
    if (ids.empty()) {
        return fail(self, st.seq, error_code::unexpected_packet,
                    "no unacknowledged message " + std::to_string(n.message_id) + " on consumer "
                        + std::to_string(n.consumer_id));
    }
    self->send(c->queue, nack_atom::value, session_actor{self}, c->key, std::move(ids));
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

// -- queues (§11) ---------------------------------------------------------------------------

void on_create_queue(self_ptr self, native::create_queue& cq) {
    auto& st = self->state;
    auto seq = st.seq;
    if (!cq.filter.empty()) {
        return fail_not_supported(self, seq, "a queue filter");
    }
    native_queue_ref ref;
    if (cq.route == native::routing::anycast) {
        auto address = cq.address.empty() ? cq.queue : cq.address;
        if (cq.queue != anycast_queue_name(address)) {
            return fail_not_supported(self, seq, "an anycast queue not named after its address");
        }
        ref = native_queue_ref{address, cq.queue, routing_type::anycast};
    } else {
        if (cq.address.empty()) {
            return fail(self, seq, error_code::no_such_address,
                        "a multicast queue needs an address");
        }
        ref = native_queue_ref{cq.address, cq.queue, routing_type::multicast};
    }
    const auto max_queues = st.ctx->config.max_auto_created_queues;
    if (st.ctx->queue_count.load(std::memory_order_relaxed) >= max_queues) {
        return fail_limit(self, seq, "max-auto-created-queues", max_queues);
    }
    bool durable = cq.durable && !cq.temporary;
    bool temporary = cq.temporary;
    with_address(
        self, ref.address, true,
        [self, ref, durable, temporary, seq](const address_actor& a) {
            auto& st = self->state;
            st.waiting = true;
            self->request(a, st.ctx->request_timeout(), bind_atom::value, ref.routing, ref.queue,
                          durable)
                .then(
                    [self, ref, temporary, seq](queue_actor&) {
                        auto& st = self->state;
                        st.waiting = false;
                        if (temporary) {
                            st.temp_queues.push_back(ref);
                        }
                        ok(self, seq);
                        pump(self);
                        flush(self);
                    },
                    [self, seq, ref](caf::error& e) {
                        self->state.waiting = false;
                        fail_with(self, seq, e, "cannot create queue '" + ref.queue + "'");
                        pump(self);
                        flush(self);
                    });
        },
        [self, seq, name = cq.queue](caf::error& e) {
            fail_with(self, seq, e, "cannot create queue '" + name + "'");
        });
}

/// Deletes a queue: a subscription queue leaves its address; an anycast queue goes with its
/// address (the broker's anycast queue is its address's).
void delete_queue(self_ptr self, const native_queue_ref& ref) {
    auto& st = self->state;
    if (ref.routing == routing_type::multicast) {
        if (auto it = st.addresses.find(ref.address); it != st.addresses.end()) {
            self->send(it->second, unbind_atom::value, ref.queue);
            return;
        }
        // Not known here yet: look it up without creating it.
        self->request(st.server, st.ctx->request_timeout(), lookup_atom::value, ref.address, false)
            .then([self, q = ref.queue](address_actor& a) { self->send(a, unbind_atom::value, q); },
                  [](caf::error&) {});
        return;
    }
    self->send(st.server, remove_atom::value, ref.address);
    st.addresses.erase(ref.address);
}

void on_delete_queue(self_ptr self, native::delete_queue& dq) {
    auto& st = self->state;
    auto ref = parse_queue_name(dq.queue);
    if (!ref) {
        return fail(self, st.seq, error_code::no_such_queue,
                    "malformed queue name '" + dq.queue + "'");
    }
    delete_queue(self, *ref);
    auto& tq = st.temp_queues;
    tq.erase(std::remove_if(tq.begin(), tq.end(),
                            [&](const native_queue_ref& r) {
                                return r.address == ref->address && r.queue == ref->queue;
                            }),
             tq.end());
    ok(self, st.seq);
}

// -- the session ----------------------------------------------------------------------------

/// Everything a session leaves behind goes: consumers (their deliveries return to the queues),
/// the open transaction, temporary queues, the registry entry. Then the actor quits.
void end_session(self_ptr self) {
    auto& st = self->state;
    if (st.committing) {
        // Finish the commit first: leaving it half done would strand its messages.
        st.close_deferred = true;
        st.closing = true;
        return;
    }
    st.closing = true;
    for (auto& [id, c] : st.consumers) {
        drop_consumer(self, c);
    }
    st.consumers.clear();
    st.tx = {};
    // Unprepared XA branches end with their session (their work is here); prepared ones
    // belong to the server and wait for anyone's commit or rollback (§10).
    for (const auto& key : st.ctx->xa->owned_by(self->address())) {
        forget_branch(self, key);
    }
    st.xa_work.clear();
    for (const auto& ref : st.temp_queues) {
        delete_queue(self, ref);
    }
    st.temp_queues.clear();
    if (st.window > 0 && !st.session_name.empty()) {
        st.registry->remove(st.session_name, native_session_actor{self});
    }
    if (st.attached && st.link.conn) {
        st.link.conn->post_session_ended(st.link.channel, self->address());
    }
    flush(self);
    st.ctx->wire_log->debug("native_session_closed session={} name=\"{}\"", st.params.id,
                            st.session_name);
    st.link.conn.reset();
    self->quit();
}

/// create_session (§4), the session's first packet.
void on_create_session(self_ptr self, native::create_session& cs) {
    auto& st = self->state;
    auto seq = st.seq;
    if (st.created) {
        return fail(self, seq, error_code::session_exists,
                    "channel " + std::to_string(st.link.channel) + " has a session");
    }
    auto refuse = [&](error_code code, std::string text) {
        fail(self, seq, code, std::move(text));
        end_session(self);
    };
    if (cs.xa && cs.transacted) {
        return refuse(error_code::xa_protocol,
                      "a session is transacted (local transactions) or XA, not both");
    }
    const auto max_window = st.params.limits.max_confirmation_window_bytes;
    if (cs.confirmation_window_bytes > 0
        && static_cast<uint32_t>(cs.confirmation_window_bytes) > max_window) {
        st.ctx->wire_log->info("native_session_limit session={} key=max-confirmation-window-bytes "
                               "value={}",
                               st.params.id, max_window);
        return refuse(error_code::limit_reached,
                      limit_message("max-confirmation-window-bytes", max_window));
    }
    if (cs.confirmation_window_bytes > 0
        && !st.registry->add(cs.name, {native_session_actor{self}, st.params.user})) {
        return refuse(error_code::session_exists, "a session named '" + cs.name + "' exists");
    }
    st.created = true;
    st.session_name = cs.name;
    st.transacted = cs.transacted;
    st.xa = cs.xa;
    st.window = cs.confirmation_window_bytes;
    ok(self, seq);
}

void handle(self_ptr self, native_inbound& in) {
    auto& st = self->state;
    auto& body = in.packet.body;
    auto t = in.packet.type();
    switch (t) {
        case packet_type::create_session:
            return on_create_session(self, std::get<native::create_session>(body));
        case packet_type::close_session:
            ok(self, st.seq);
            return end_session(self);
        case packet_type::create_producer:
            return on_create_producer(self, std::get<native::create_producer>(body));
        case packet_type::close_producer: {
            auto id = std::get<native::close_producer>(body).producer_id;
            if (st.producers.erase(id) == 0) {
                return fail(self, st.seq, error_code::no_such_producer,
                            "no producer " + std::to_string(id));
            }
            return ok(self, st.seq);
        }
        case packet_type::send:
            return on_send(self, std::get<native::send>(body), in.bytes);
        case packet_type::create_consumer:
            return on_create_consumer(self, std::get<native::create_consumer>(body));
        case packet_type::close_consumer: {
            auto id = std::get<native::close_consumer>(body).consumer_id;
            if (auto* c = find_consumer(self, id)) {
                drop_consumer(self, *c);
                st.consumers.erase(id);
                ok(self, st.seq);
            }
            return;
        }
        case packet_type::credit: {
            const auto& cr = std::get<native::credit>(body);
            if (auto* c = find_consumer(self, cr.consumer_id)) {
                c->credit += cr.bytes;
            }
            return;
        }
        case packet_type::ack:
            return on_ack(self, std::get<native::ack>(body));
        case packet_type::nack:
            return on_nack(self, std::get<native::nack>(body));
        case packet_type::start:
            st.started = true;
            return;
        case packet_type::stop:
            st.started = false;
            return ok(self, st.seq);
        case packet_type::commit:
        case packet_type::rollback:
            if (!st.transacted) {
                return fail(self, st.seq, error_code::not_transacted,
                            "the session is not transacted");
            }
            return t == packet_type::commit ? on_commit(self) : on_rollback(self);
        case packet_type::create_queue:
            return on_create_queue(self, std::get<native::create_queue>(body));
        case packet_type::delete_queue:
            return on_delete_queue(self, std::get<native::delete_queue>(body));
        case packet_type::xa_start:
            return on_xa_start(self, std::get<native::xa_start>(body));
        case packet_type::xa_end:
            return on_xa_end(self, std::get<native::xa_end>(body));
        case packet_type::xa_prepare:
            return on_xa_prepare(self, std::get<native::xa_prepare>(body));
        case packet_type::xa_commit:
            return on_xa_commit(self, std::get<native::xa_commit>(body));
        case packet_type::xa_rollback:
            return on_xa_rollback(self, std::get<native::xa_rollback>(body));
        case packet_type::xa_recover:
            return on_xa_recover(self);
        default:
            // The decoder lets only client stream packets through on a session's channel.
            return connection_error(self, error_code::unexpected_packet,
                                    std::string{native::to_string(t)} + " on a session channel");
    }
}

void pump(self_ptr self) {
    auto& st = self->state;
    while (!st.inbox.empty() && !st.waiting && !st.closing
           && st.outstanding_bytes < static_cast<int64_t>(st.params.limits.read_window_bytes)) {
        auto in = std::move(st.inbox.front());
        st.inbox.pop_front();
        st.confirm_due += in.bytes;
        st.seq = in.packet.sequence;
        handle(self, in);
    }
    route_batches(self);
    pump_deliveries(self);
    if (st.draining && !st.closing && st.inbox.empty() && !st.waiting && !st.committing) {
        end_session(self);
    }
}

/// The connection ended (the client's disconnect, a socket failure of a session without a
/// confirmation window, or the TTL of a detached one): the packets it handed over before are
/// still handled as usual (routed, stored, acknowledged, committed), and then the session ends
/// (pump). A client whose last sends are followed at once by its close must not lose them,
/// even when they wait for their address's lookup. Nothing is written any more.
void end_after_input(self_ptr self) {
    auto& st = self->state;
    if (st.closing || st.draining) {
        return;
    }
    st.draining = true;
    st.attached = false;
    st.link.conn.reset();
    st.out.clear();
    st.confirm_due = 0;
    pump(self);
    if (!st.closing) {
        self->delayed_send(self, st.ctx->request_timeout(), drain_timeout_atom::value);
    }
}

/// request-timeout-ms after the connection closed, the session still handles what it handed
/// over: its routes wait, typically on an address whose address-full-policy is BLOCK and that
/// nobody drains, and the packets behind them wait for those. Without a bound the session (its
/// consumers' deliveries, its memory) would stay for as long as the address stays full. The
/// routes already sent still complete at their address; the answers and the packets not
/// handled are dropped.
void on_drain_timeout(self_ptr self) {
    auto& st = self->state;
    if (!st.draining || st.closing) {
        return;
    }
    st.ctx->log->warn("native_session_drain_timeout session={} name=\"{}\" routes={} packets={} "
                      "waited_ms={}",
                      st.params.id, st.session_name, st.routes_in_flight, st.inbox.size(),
                      st.ctx->request_timeout().count());
    st.inbox.clear();
    end_session(self);
}

/// Packets from the connection: control packets at once, stream packets checked against the
/// sequence (§4, §14) and queued.
void on_packets(self_ptr self, uint64_t conn_id, std::vector<native_inbound>& batch) {
    auto& st = self->state;
    if (conn_id != st.link.conn_id || !st.attached || st.closing) {
        return; // From a connection this session left (reattached elsewhere).
    }
    for (auto& in : batch) {
        auto& p = in.packet;
        if (p.sequence == 0) {
            st.confirm_due += in.bytes;
            if (p.type() != packet_type::packets_confirmed || st.window <= 0) {
                connection_error(self, error_code::unexpected_packet,
                                 std::string{native::to_string(p.type())}
                                     + " on a session without a confirmation window");
                break;
            }
            st.confirmed(std::get<native::packets_confirmed>(p.body).last);
            continue;
        }
        if (p.sequence <= st.in_seq && st.reattached) {
            st.confirm_due += in.bytes; // §14: a replay of a packet the server has.
            continue;
        }
        if (p.sequence != st.in_seq + 1) {
            connection_error(self, error_code::unexpected_packet,
                             "sequence " + std::to_string(p.sequence) + " on channel "
                                 + std::to_string(p.channel) + ", expected "
                                 + std::to_string(st.in_seq + 1));
            break;
        }
        st.in_seq = p.sequence;
        if (p.type() == packet_type::create_session && !st.created) {
            st.window = std::get<native::create_session>(p.body).confirmation_window_bytes;
        }
        if (st.window > 0) {
            st.received_since_confirm += in.bytes;
            if (st.received_since_confirm >= static_cast<uint64_t>(st.window) / 2) {
                st.emit_control(native::packets_confirmed{st.in_seq});
                st.received_since_confirm = 0;
            }
        }
        st.inbox.push_back(std::move(in));
    }
    pump(self);
    flush(self);
}

/// The connection failed (§14): a session with a window waits for a reattach for the TTL.
void on_detach(self_ptr self, uint64_t conn_id) {
    auto& st = self->state;
    if (conn_id != st.link.conn_id || !st.attached) {
        return;
    }
    if (st.closing || st.draining) {
        return;
    }
    if (st.window <= 0 || !st.created) {
        return end_after_input(self);
    }
    st.attached = false;
    st.link.conn.reset();
    st.out.clear();
    st.confirm_due = 0;
    auto generation = ++st.detach_generation;
    st.ctx->wire_log->debug("native_session_detached session={} name=\"{}\" ttl_ms={}",
                            st.params.id, st.session_name, st.params.ttl_ms);
    self->delayed_send(self, std::chrono::milliseconds(st.params.ttl_ms), expire_atom::value,
                       generation);
}

/// reattach_session (§14): the session moves to the new connection and both sides resend
/// what the other has not received.
void on_attach(self_ptr self, native_link& link, const std::string& user, uint64_t last_received) {
    auto& st = self->state;
    if (user != st.params.user || st.closing || st.draining || !st.created) {
        native::packet p{link.channel, 0, native::session_reattached{false, 0}};
        std::string bytes;
        native::codec_limits limits;
        limits.max_packet_bytes = link.client_max_packet_bytes;
        native::encode(p, native::peer::server, limits, bytes);
        link.conn->post_session_ended(link.channel, self->address());
        link.conn->post_write(std::move(bytes));
        return;
    }
    if (st.attached && st.link.conn) {
        // The old connection is still open: it closes, and its other sessions are kept.
        st.link.conn->post_drop();
    }
    flush(self);
    st.link = std::move(link);
    st.attached = true;
    st.reattached = true;
    ++st.detach_generation;
    st.confirmed(last_received);
    st.received_since_confirm = 0;
    st.emit_control(native::session_reattached{true, st.in_seq});
    for (auto& [seq, bytes] : st.kept) {
        // The packet may move to another channel number.
        for (int i = 0; i < 4; ++i) {
            bytes[8 + static_cast<size_t>(i)] =
                static_cast<char>((st.link.channel >> (8 * i)) & 0xff);
        }
        st.out += bytes;
    }
    st.ctx->wire_log->debug("native_session_reattached session={} name=\"{}\" resent={}",
                            st.params.id, st.session_name, st.kept.size());
    pump(self);
    flush(self);
}

} // namespace native_session_impl

using namespace native_session_impl;

native_session_actor::behavior_type native_session(self_ptr self,
                                                   std::shared_ptr<server_context> ctx,
                                                   server_actor server,
                                                   std::shared_ptr<native_registry> registry,
                                                   native_link link,
                                                   native_session_params params) {
    auto& st = self->state;
    st.ctx = std::move(ctx);
    st.server = std::move(server);
    st.registry = std::move(registry);
    st.link = std::move(link);
    st.params = std::move(params);
    // The session belongs to its server instance: when the server stops, the session ends
    // even if no connection tells it (a detached session has none).
    self->monitor(st.server);
    self->set_down_handler([self](caf::down_msg& dm) {
        auto& st = self->state;
        if (dm.source != st.server) {
            return;
        }
        if (st.attached && st.link.conn) {
            st.link.conn->post_shutdown();
        }
        if (st.window > 0 && !st.session_name.empty()) {
            st.registry->remove(st.session_name, native_session_actor{self});
        }
        st.link.conn.reset();
        self->quit();
    });
    return {
        [](frames_atom, std::vector<stomp::frame>&, uint64_t) {
            // STOMP's frames never come here; the handle only extends STOMP's session.
        },
        [self](deliver_atom, uint64_t key, std::vector<delivery>& batch) {
            on_deliver(self, key, batch);
        },
        [](written_atom, uint64_t) {},
        [self](closed_atom) { end_session(self); },
        [self](npackets_atom, uint64_t conn_id, std::vector<native_inbound>& batch) {
            on_packets(self, conn_id, batch);
        },
        [self](detach_atom, uint64_t conn_id) { on_detach(self, conn_id); },
        [self](closed_atom, uint64_t conn_id) {
            if (conn_id == self->state.link.conn_id) {
                end_after_input(self);
            }
        },
        [self](attach_atom, native_link& link, const std::string& user, uint64_t last) {
            on_attach(self, link, user, last);
        },
        [self](xa_take_atom, const std::string& key) -> native_branch_work {
            return on_xa_take(self, key);
        },
        [self](drain_timeout_atom) { on_drain_timeout(self); },
        [self](expire_atom, uint64_t generation) {
            auto& st = self->state;
            if (!st.attached && generation == st.detach_generation) {
                st.ctx->wire_log->debug("native_session_expired session={} name=\"{}\"",
                                        st.params.id, st.session_name);
                end_after_input(self);
            }
        },
    };
}

} // namespace actormq
