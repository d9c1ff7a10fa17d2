// SPDX-License-Identifier: Apache-2.0
// The native session actor (docs/protocol.md §4-§11, §14): the session's life, its packets in
// sequence, its queues (§11) and its connection (detach, reattach, the confirmation window).
// Handlers only dispatch; the pure parts are in native_session_state.cpp. The routing, ack and
// commit steps follow STOMP's session (actors/broker/session.cpp), copied in their shape
// because that file is STOMP's own. Producers, sends and local transactions (§5, §7, §9) are
// in native_session_send.cpp, consumers and acks (§6, §8) in native_session_consumers.cpp,
// the XA handlers (§10) in native_xa.cpp; what the files share is declared in
// native_session_impl.hpp.
#include "actors/journal/recovery.hpp"
#include "actors/native/native_connection.hpp"
#include "actors/native/native_session_impl.hpp"
#include "protocol/errc.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <memory>

namespace actormq {

namespace native_session_impl {

/// Posts what the handlers wrote and the input bytes that are done to the connection.
void flush(self_ptr self) {
    auto& st = self->state;
    if (!st.attached || !st.link.conn) {
        st.out.clear();
        st.confirm_due = 0;
        release_unwritten_credit(self);
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
    // §6: the queue's window for pre-acknowledge deliveries comes back once the connection
    // has written them, so a client that does not read holds the queue back, not memory. A
    // mark costs the connection's thread a message to this session once written, and this
    // session a credit message to each queue: so the credit is gathered over outputs and
    // marked once it reaches a quarter of the queue's window. Below that the queue still has
    // three quarters of its window to hand over, and every handover comes back here, so the
    // credit never stays behind while the queue waits for it.
    const uint64_t mark_at = std::max<uint64_t>(1, st.params.limits.consumer_window_messages / 4);
    if (!st.credit_unposted.empty() && st.credit_unposted_count >= mark_at) {
        auto mark = st.next_written_mark++;
        st.credit_unwritten.emplace_back(mark, std::move(st.credit_unposted));
        st.credit_unposted.clear();
        st.credit_unposted_count = 0;
        st.link.conn->post_output(std::move(st.out), st.link.channel, 0, native_session_actor{self},
                                  mark);
    } else {
        st.link.conn->post_output(std::move(st.out), st.link.channel, 0);
    }
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
    release_unwritten_credit(self);
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
    release_unwritten_credit(self);
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
        [self](written_atom, uint64_t mark) { on_written(self, mark); },
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
