// SPDX-License-Identifier: Apache-2.0
// The native session's consuming side (docs/protocol.md §6, §8): consumers bound to their
// queues, deliveries sent within each consumer's byte credit and the confirmation window,
// and the acks and nacks that settle them. Part of the session actor of native_session.cpp,
// whose helpers (native_session_impl.hpp) it uses.
#include "actors/native/native_session_impl.hpp"

#include <caf/send.hpp>

#include <algorithm>
#include <limits>

namespace actormq::native_session_impl {

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
            if (c.pre_ack) {
                // §6: the queue acknowledged it when it handed it over; its window comes back
                // once these bytes are written (flush, on_written).
                note_queue_credit(st.credit_unposted, c.key, 1);
                ++st.credit_unposted_count;
            } else {
                c.unacked.push_back(d.msg->id);
            }
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
    c.pre_ack = cc.pre_acknowledge;
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
                        // A pre-acknowledge consumer is the queue's auto-ack consumer, as
                        // STOMP's ack:auto: the queue acknowledges (and journals the ack of a
                        // durable message) as it hands a message over (§6).
                        consumer_spec spec{c.key, st.params.limits.consumer_window_messages,
                                           c.pre_ack};
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
    if (c->pre_ack) {
        // §8: the server acknowledged every delivery of a pre-acknowledge consumer as it sent
        // it, so an ack has nothing left to do; it is answered as done, never refused.
        if (a.confirm) {
            ok(self, seq);
        }
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

void note_queue_credit(native_session_state::queue_credits& credits, uint64_t key, uint32_t n) {
    for (auto& [k, count] : credits) {
        if (k == key) {
            count += n;
            return;
        }
    }
    credits.emplace_back(key, n);
}

void give_queue_credit(self_ptr self, const native_session_state::queue_credits& credits) {
    auto& st = self->state;
    for (const auto& [key, n] : credits) {
        auto k = st.consumer_of_key.find(key);
        if (k == st.consumer_of_key.end()) {
            continue; // Closed: the queue forgot the consumer and its window.
        }
        self->send(st.consumers[k->second].queue, credit_atom::value, session_actor{self}, key, n);
    }
}

void on_written(self_ptr self, uint64_t mark) {
    auto& st = self->state;
    native_session_state::queue_credits credits;
    while (!st.credit_unwritten.empty() && st.credit_unwritten.front().first <= mark) {
        for (const auto& [key, n] : st.credit_unwritten.front().second) {
            note_queue_credit(credits, key, n);
        }
        st.credit_unwritten.pop_front();
    }
    give_queue_credit(self, credits);
}

void release_unwritten_credit(self_ptr self) {
    auto& st = self->state;
    // The connection that was to report these marks is gone or going: what it wrote is
    // written, what it did not write is lost with it (pre-acknowledge, §6), so either way the
    // queue may send more now.
    on_written(self, std::numeric_limits<uint64_t>::max());
    give_queue_credit(self, st.credit_unposted);
    st.credit_unposted.clear();
    st.credit_unposted_count = 0;
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
} // namespace actormq::native_session_impl
