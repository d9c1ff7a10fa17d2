// SPDX-License-Identifier: Apache-2.0
#include "actors/broker/queue.hpp"

#include "protocol/assert.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>

namespace actormq {

namespace {

/// Most messages one dispatch round hands out, so a deep queue cannot monopolise a worker.
constexpr size_t dispatch_batch_max = 512;

} // namespace

void queue_state::enqueue(std::vector<message_ptr>& msgs) {
    for (auto& m : msgs) {
        pending.push_back(entry{std::move(m), 0});
    }
    stats.enqueued += msgs.size();
}

std::vector<std::pair<size_t, std::vector<delivery>>> queue_state::assign() {
    std::vector<std::pair<size_t, std::vector<delivery>>> out;
    if (consumers.empty() || pending.empty()) {
        return out;
    }
    std::vector<int> slot(consumers.size(), -1);
    size_t handed = 0;
    size_t idle_rounds = 0;
    // One message per consumer in turn; stop when a full turn finds no room.
    while (!pending.empty() && handed < dispatch_batch_max && idle_rounds < consumers.size()) {
        size_t i = next_consumer % consumers.size();
        next_consumer = i + 1;
        auto& c = consumers[i];
        if (!c.has_room()) {
            ++idle_rounds;
            continue;
        }
        idle_rounds = 0;
        entry e = std::move(pending.front());
        pending.pop_front();
        ACTORMQ_ASSERT(c.has_room()); // A consumer never holds more than its window.
        ++c.outstanding;
        ++handed;
        if (slot[i] < 0) {
            slot[i] = static_cast<int>(out.size());
            out.emplace_back(i, std::vector<delivery>{});
        }
        out[slot[i]].second.push_back(delivery{e.msg, e.delivery_count});
        if (c.spec.auto_ack) {
            ++stats.acked;
            consumed(*e.msg);
            release(e.msg->memory_bytes());
        } else {
            uint64_t id = e.msg->id;
            in_flight.emplace(id, in_flight_entry{std::move(e), c.session.address(), c.spec.key});
        }
    }
    more_ready = handed == dispatch_batch_max && !pending.empty();
    return out;
}

queue_state::consumer* queue_state::find(const caf::actor_addr& session, uint64_t key) {
    for (auto& c : consumers) {
        if (c.spec.key == key && c.session.address() == session) {
            return &c;
        }
    }
    return nullptr;
}

void queue_state::requeue(std::vector<entry> entries) {
    std::sort(entries.begin(), entries.end(),
              [](const entry& a, const entry& b) { return a.msg->id < b.msg->id; });
    for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
        ++it->delivery_count;
        pending.push_front(std::move(*it));
    }
    stats.redelivered += entries.size();
}

void queue_state::remove_consumer(const caf::actor_addr& session, uint64_t key) {
    auto it = std::find_if(consumers.begin(), consumers.end(), [&](const consumer& c) {
        return c.spec.key == key && c.session.address() == session;
    });
    if (it == consumers.end()) {
        return;
    }
    consumers.erase(it);
    std::vector<entry> back;
    for (auto i = in_flight.begin(); i != in_flight.end();) {
        if (i->second.key == key && i->second.session == session) {
            back.push_back(std::move(i->second.e));
            i = in_flight.erase(i);
        } else {
            ++i;
        }
    }
    requeue(std::move(back));
}

void queue_state::remove_session(const caf::actor_addr& session) {
    std::vector<uint64_t> keys;
    for (auto& c : consumers) {
        if (c.session.address() == session) {
            keys.push_back(c.spec.key);
        }
    }
    for (auto k : keys) {
        remove_consumer(session, k);
    }
    monitored.erase(session);
}

void queue_state::ack(const caf::actor_addr& session,
                      uint64_t key,
                      const std::vector<uint64_t>& ids) {
    auto* c = find(session, key);
    int64_t freed = 0;
    for (auto id : ids) {
        auto i = in_flight.find(id);
        if (i == in_flight.end() || i->second.session != session || i->second.key != key) {
            continue;
        }
        freed += i->second.e.msg->memory_bytes();
        consumed(*i->second.e.msg);
        in_flight.erase(i);
        ++stats.acked;
        if (c != nullptr && c->outstanding > 0) {
            --c->outstanding;
        }
    }
    release(freed);
}

void queue_state::apply_lane_acks(const std::vector<uint64_t>& ids) {
    int64_t freed = 0;
    for (auto id : ids) {
        if (auto i = in_flight.find(id); i != in_flight.end()) {
            auto* c = find(i->second.session, i->second.key);
            freed += i->second.e.msg->memory_bytes();
            in_flight.erase(i);
            ++stats.acked;
            if (c != nullptr && c->outstanding > 0) {
                --c->outstanding;
            }
            continue;
        }
        // Its consumer left while the ack record was on its way to the disk, and the message
        // came back here: the journal has it acknowledged, so it is not delivered again.
        auto p = std::find_if(pending.begin(), pending.end(),
                              [id](const entry& e) { return e.msg->id == id; });
        if (p != pending.end()) {
            freed += p->msg->memory_bytes();
            pending.erase(p);
            ++stats.acked;
        }
    }
    release(freed);
}

bool queue_state::needs_acks_now() const {
    if (usage->max_bytes >= 0) {
        int64_t mark = space_mark >= 0 ? space_mark : usage->max_bytes;
        if (usage->bytes.load(std::memory_order_relaxed) >= mark) {
            return true;
        }
    }
    if (pending.empty()) {
        return false;
    }
    return std::any_of(consumers.begin(), consumers.end(),
                       [](const consumer& c) { return !c.has_room(); });
}

void queue_state::hold(const caf::actor_addr& session,
                       uint64_t key,
                       const std::vector<uint64_t>& ids,
                       uint64_t tx_id) {
    auto* c = find(session, key);
    auto& h = held[tx_id];
    for (auto id : ids) {
        auto i = in_flight.find(id);
        if (i == in_flight.end() || i->second.session != session || i->second.key != key) {
            continue;
        }
        consumed(*i->second.e.msg);
        h.push_back(std::move(i->second.e));
        in_flight.erase(i);
        if (c != nullptr && c->outstanding > 0) {
            --c->outstanding;
        }
    }
}

void queue_state::finish_prepared(uint64_t tx_id, bool commit) {
    if (auto h = held.find(tx_id); h != held.end()) {
        auto entries = std::move(h->second);
        held.erase(h);
        if (commit) {
            int64_t freed = 0;
            for (const auto& e : entries) {
                freed += e.msg->memory_bytes();
            }
            stats.acked += entries.size();
            release(freed);
        } else {
            requeue(std::move(entries));
        }
    }
    if (auto s = staged.find(tx_id); s != staged.end()) {
        auto msgs = std::move(s->second);
        staged.erase(s);
        if (commit) {
            enqueue(msgs);
        } else {
            int64_t freed = 0;
            for (const auto& m : msgs) {
                freed += m->memory_bytes();
            }
            release(freed);
        }
    }
}

void queue_state::consumed(const broker_message& m) {
    if (!durable || !m.persistent) {
        return;
    }
    journal::record r;
    r.type = journal::record_type::ack;
    r.payload = journal::encode_payload(journal::ack_payload{stats.name, m.id});
    ack_records.push_back(std::move(r));
}

void queue_state::forget_durable() {
    if (!durable) {
        return;
    }
    // Acks for what it still holds keep the journal's liveness exact; then the binding goes.
    for (const auto& e : pending) {
        consumed(*e.msg);
    }
    for (const auto& [id, f] : in_flight) {
        consumed(*f.e.msg);
    }
    journal::record r;
    r.type = journal::record_type::delete_queue;
    r.payload = journal::encode_payload(
        journal::queue_payload{stats.name, stats.address, static_cast<uint8_t>(stats.routing)});
    ack_records.push_back(std::move(r));
    caf::anon_send(ctx->journal, append_atom::value, take_ack_records(), false);
    durable = false;
}

void queue_state::nack(const caf::actor_addr& session,
                       uint64_t key,
                       const std::vector<uint64_t>& ids) {
    auto* c = find(session, key);
    std::vector<entry> back;
    for (auto id : ids) {
        auto i = in_flight.find(id);
        if (i == in_flight.end() || i->second.session != session || i->second.key != key) {
            continue;
        }
        back.push_back(std::move(i->second.e));
        in_flight.erase(i);
        if (c != nullptr && c->outstanding > 0) {
            --c->outstanding;
        }
    }
    requeue(std::move(back));
}

void queue_state::release(int64_t bytes) {
    if (bytes == 0) {
        return;
    }
    int64_t before = usage->bytes.fetch_sub(bytes, std::memory_order_relaxed);
    // Only what was counted in is counted out: the address's usage never goes negative.
    ACTORMQ_ASSERT(before >= bytes);
    int64_t mark = space_mark >= 0 ? space_mark : usage->max_bytes;
    if (usage->max_bytes >= 0 && before >= mark && before - bytes < mark) {
        crossed_below = true;
    }
}

void queue_state::clear() {
    int64_t freed = 0;
    for (auto& e : pending) {
        freed += e.msg->memory_bytes();
    }
    for (auto& [id, f] : in_flight) {
        freed += f.e.msg->memory_bytes();
    }
    for (auto& [tx, entries] : held) {
        for (auto& e : entries) {
            freed += e.msg->memory_bytes();
        }
    }
    for (auto& [tx, msgs] : staged) {
        for (auto& m : msgs) {
            freed += m->memory_bytes();
        }
    }
    held.clear();
    staged.clear();
    pending.clear();
    in_flight.clear();
    consumers.clear();
    release(freed);
}

namespace {

using queue_ptr = queue_actor::stateful_pointer<queue_state>;

/// Hands waiting messages to consumers and tells the address when space was freed.
void dispatch(queue_ptr self) {
    auto& st = self->state;
    for (auto& [idx, batch] : st.assign()) {
        auto& c = st.consumers[idx];
        st.stats.delivered += batch.size();
        self->send(c.session, deliver_atom::value, c.spec.key, std::move(batch));
    }
    if (auto records = st.take_ack_records(); !records.empty()) {
        // Auto-acked messages: nobody waits for these records.
        caf::anon_send(st.ctx->journal, append_atom::value, std::move(records), false);
    }
    if (st.crossed_below) {
        st.crossed_below = false;
        self->send(st.owner, space_atom::value);
    }
    if (st.more_ready) {
        // Continue after the messages already in the mailbox (an empty enqueue).
        self->send(self, enqueue_atom::value, std::vector<message_ptr>{});
    } else if (st.ack_lane && st.ack_lane->settle(st.needs_acks_now())) {
        // Acknowledgements came in while this queue said it could wait for them, and now it
        // cannot: it rings its own doorbell (ack_lane.hpp).
        self->send(self, enqueue_atom::value, std::vector<message_ptr>{});
    }
}

/// The ACK lane (ack_lane.hpp) acknowledges a durable anycast queue's messages from its
/// consumers' Asio threads; the queue learns of them at the start of its next message.
void open_ack_lane(queue_ptr self) {
    auto& st = self->state;
    if (!st.durable || st.stats.routing != routing_type::anycast || !st.ctx->journal
        || !st.ctx->config.journal.journal_sync_non_transactional) {
        return;
    }
    st.ack_lane = std::make_shared<queue_ack_lane>();
    st.ack_lane->queue_name = st.stats.name;
    st.ack_lane->owner = self->address();
    st.ctx->ack_lanes->add(self->id(), st.ack_lane);
    self->attach_functor([ctx = st.ctx, id = self->id()] { ctx->ack_lanes->remove(id); });
}

/// The ack records of a transaction's ACK or prepare, marked with its id, to the journal
/// unsynced: the session's commit or prepare record follows them and makes them durable.
void append_tx_records(queue_state& st, uint64_t tx_id) {
    if (auto records = st.take_ack_records(); !records.empty()) {
        for (auto& r : records) {
            r.tx_id = tx_id;
        }
        caf::anon_send(st.ctx->journal, append_atom::value, std::move(records), false);
    }
}

/// A consumer of session `s` joins; the queue watches the session (once).
void add_consumer(queue_ptr self, session_actor& s, const consumer_spec& spec) {
    auto& st = self->state;
    if (st.monitored.insert(s.address()).second) {
        self->monitor(s);
    }
    st.consumers.push_back(queue_state::consumer{std::move(s), spec, 0});
    st.ctx->log->debug("consumer_added queue={} key={} window={} auto_ack={}", st.stats.name,
                       spec.key, spec.window, spec.auto_ack);
}

} // namespace

queue_actor::behavior_type queue(queue_ptr self,
                                 std::shared_ptr<server_context> ctx,
                                 std::shared_ptr<address_usage> usage,
                                 address_actor owner,
                                 queue_args args) {
    auto& st = self->state;
    st.ctx = std::move(ctx);
    st.usage = std::move(usage);
    st.owner = std::move(owner);
    st.stats.name = std::move(args.name);
    st.stats.address = std::move(args.address);
    st.stats.routing = args.routing;
    st.durable = args.durable;
    st.space_mark = args.space_mark;
    st.enqueue(args.initial);
    open_ack_lane(self);
    st.staged = std::move(args.staged);
    for (auto& [tx, msgs] : args.held) {
        auto& h = st.held[tx];
        for (auto& m : msgs) {
            h.push_back(queue_state::entry{std::move(m), 1}); // delivered before the restart
        }
    }
    // Counted for max-auto-created-queues while the actor lives, however it ends.
    st.ctx->queue_count.fetch_add(1, std::memory_order_relaxed);
    self->attach_functor(
        [ctx = st.ctx] { ctx->queue_count.fetch_sub(1, std::memory_order_relaxed); });
    self->set_down_handler([self](caf::down_msg& dm) {
        // What the ACK lane acknowledged first: those messages do not come back.
        self->state.take_lane_acks();
        self->state.remove_session(dm.source);
        dispatch(self);
    });
    return {
        [self](enqueue_atom, std::vector<message_ptr>& msgs) {
            self->state.take_lane_acks();
            self->state.enqueue(msgs);
            dispatch(self);
        },
        [self](subscribe_atom, session_actor& s, consumer_spec spec) {
            self->state.take_lane_acks();
            add_consumer(self, s, spec);
            dispatch(self);
        },
        [self](unsub_atom, const session_actor& s, uint64_t key) {
            self->state.take_lane_acks();
            self->state.remove_consumer(s.address(), key);
            dispatch(self);
        },
        [self](credit_atom, const session_actor& s, uint64_t key, uint32_t n) {
            self->state.take_lane_acks();
            if (auto* c = self->state.find(s.address(), key)) {
                c->outstanding -= std::min(n, c->outstanding);
            }
            dispatch(self);
        },
        [self](ack_atom, const session_actor& s, uint64_t key,
               const std::vector<uint64_t>& ids) -> caf::result<uint64_t> {
            self->state.take_lane_acks();
            auto& st = self->state;
            st.ack(s.address(), key, ids);
            auto records = st.take_ack_records();
            dispatch(self);
            if (records.empty()) {
                return uint64_t{0};
            }
            // The ACK is confirmed once its records are on disk (the confirmation rule). The
            // journal answers the session itself: the queue may be deleted meanwhile.
            bool sync = st.ctx->config.journal.journal_sync_non_transactional;
            return self->delegate(st.ctx->journal, append_atom::value, std::move(records), sync);
        },
        [self](ack_atom, const session_actor& s, uint64_t key, const std::vector<uint64_t>& ids,
               uint64_t tx_id) {
            self->state.take_lane_acks();
            self->state.ack(s.address(), key, ids);
            append_tx_records(self->state, tx_id);
            dispatch(self);
            return true;
        },
        [self](hold_atom, const session_actor& s, uint64_t key, const std::vector<uint64_t>& ids,
               uint64_t tx_id) {
            self->state.take_lane_acks();
            self->state.hold(s.address(), key, ids, tx_id);
            append_tx_records(self->state, tx_id);
            dispatch(self);
            return true;
        },
        [self](commit_atom, uint64_t tx_id) {
            self->state.take_lane_acks();
            self->state.finish_prepared(tx_id, true);
            dispatch(self);
        },
        [self](rollback_atom, uint64_t tx_id) {
            self->state.take_lane_acks();
            self->state.finish_prepared(tx_id, false);
            dispatch(self);
        },
        [self](nack_atom, const session_actor& s, uint64_t key, const std::vector<uint64_t>& ids) {
            self->state.take_lane_acks();
            self->state.nack(s.address(), key, ids);
            dispatch(self);
        },
        [self](stats_atom) -> queue_stats {
            self->state.take_lane_acks();
            auto s = self->state.stats;
            s.depth = self->state.pending.size();
            s.in_flight = self->state.in_flight.size();
            s.consumers = self->state.consumers.size();
            return s;
        },
        [self](remove_atom) {
            self->state.take_lane_acks();
            self->state.forget_durable();
            self->state.clear();
            dispatch(self);
            self->quit();
        },
    };
}

} // namespace actormq
