// SPDX-License-Identifier: Apache-2.0
// The address actor: duplicate detection, routing to queues, max-size-bytes and the full
// policy, and the journal step of the durable path (docs/architecture.md, "The path of a SEND").
#include "actors/broker/address.hpp"

#include "actors/broker/address_ops.hpp"
#include "actors/broker/gather.hpp"
#include "actors/broker/queue.hpp"
#include "actors/journal/recovery.hpp"
#include "protocol/assert.hpp"
#include "protocol/errc.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <system_error>
#include <unordered_set>

namespace actormq {

void duplicate_cache::insert(const std::string& id) {
    if (!ids_.insert(id).second) {
        return;
    }
    order_.push_back(id);
    if (order_.size() > capacity_) {
        ids_.erase(order_.front());
        order_.pop_front();
    }
}

void duplicate_cache::erase(const std::string& id) {
    if (ids_.erase(id) != 0) {
        order_.erase(std::find(order_.begin(), order_.end(), id));
    }
}

std::vector<queue_actor> address_state::targets(routing_type routing) const {
    std::vector<queue_actor> out;
    if (routing == routing_type::anycast) {
        if (anycast) {
            out.push_back(*anycast);
        }
    } else {
        for (const auto& [n, q] : subscriptions) {
            out.push_back(q);
        }
    }
    return out;
}

std::vector<std::string> address_state::target_names(routing_type routing) const {
    std::vector<std::string> out;
    if (routing == routing_type::anycast) {
        if (anycast) {
            out.push_back(anycast_queue_name(address));
        }
    } else {
        for (const auto& [n, q] : subscriptions) {
            out.push_back(n);
        }
    }
    return out;
}

uint64_t address_state::next_op_id() {
    auto id = lane->draw();
    // Ids below it that the lane drew and the journal has not handed back yet: their places.
    for (auto k = known_through + 1; k < id; ++k) {
        ops.emplace_back();
        ops.back().id = k;
    }
    known_through = std::max(known_through, id);
    return id;
}

address_state::pending_op* address_state::op_slot(uint64_t id) {
    if (id > known_through) {
        for (auto k = known_through + 1; k <= id; ++k) {
            ops.emplace_back();
            ops.back().id = k;
        }
        known_through = id;
        return &ops.back();
    }
    for (auto i = ops.rbegin(); i != ops.rend(); ++i) {
        if (i->id == id) {
            return &*i;
        }
    }
    return nullptr;
}

bool address_state::lane_may_open() const {
    return durable && anycast && ctx->journal && ctx->config.journal.journal_sync_non_transactional
           && !paging && !opening && blocked.empty() && in_flight.empty() && held.empty();
}

const std::string* address_state::duplicate_id(const broker_message& m) {
    for (const auto& [k, v] : m.headers) {
        if (k == duplicate_id_header) {
            return &v;
        }
    }
    return nullptr;
}

std::vector<journal::record> address_state::records_for(const std::vector<message_ptr>& msgs,
                                                        routing_type routing,
                                                        uint64_t tx_id) const {
    std::vector<journal::record> out;
    // Durable: the anycast queue, and the durable subscriptions of a multicast address.
    std::vector<std::string> queues;
    if (durable && routing == routing_type::anycast) {
        queues.push_back(anycast_queue_name(address));
    } else if (durable) {
        queues.assign(durable_subscriptions.begin(), durable_subscriptions.end());
    }
    if (queues.empty()) {
        return out;
    }
    for (const auto& m : msgs) {
        if (!m->persistent) {
            continue;
        }
        journal::message_payload p{m->id, m->address, m->destination, m->headers, m->body, queues};
        journal::record r;
        r.type = journal::record_type::add_message;
        r.tx_id = tx_id;
        r.payload = journal::encode_payload(p);
        out.push_back(std::move(r));
    }
    return out;
}

namespace address_ops {

queue_actor spawn_queue(address_ptr self,
                        std::string name,
                        routing_type routing,
                        bool durable,
                        std::vector<message_ptr> initial = {},
                        std::map<uint64_t, std::vector<message_ptr>> staged = {},
                        std::map<uint64_t, std::vector<message_ptr>> held = {}) {
    auto& st = self->state;
    queue_args args{std::move(name),    st.address,        routing,         durable,
                    std::move(initial), std::move(staged), std::move(held), -1};
    if (st.settings.full_policy == config::address_full_policy::page && st.usage->max_bytes > 0) {
        // Page-in reads a quarter of max-size-bytes at a time at least: the queue says when
        // its address dropped below three quarters, not each time one message left.
        args.space_mark = st.usage->max_bytes - st.usage->max_bytes / 4;
    }
    return self->spawn<caf::linked>(queue, st.ctx, st.usage, caf::actor_cast<address_actor>(self),
                                    std::move(args));
}

/// Journals that a durable queue of this address exists.
void journal_binding(address_ptr self, const std::string& queue, routing_type routing) {
    auto& st = self->state;
    journal::record r;
    r.type = journal::record_type::add_queue;
    r.payload = journal::encode_payload(journal::queue_payload{
        queue, st.address, static_cast<uint8_t>(routing == routing_type::multicast ? 1 : 0)});
    caf::anon_send(st.ctx->journal, append_atom::value, std::vector<journal::record>{r}, false);
}

void ensure_anycast(address_ptr self) {
    auto& st = self->state;
    if (st.anycast || !st.settings.auto_create_queues) {
        return;
    }
    st.anycast =
        spawn_queue(self, anycast_queue_name(st.address), routing_type::anycast, st.durable);
    if (st.durable) {
        journal_binding(self, anycast_queue_name(st.address), routing_type::anycast);
    }
}

taken take_while_room(address_ptr self,
                      std::vector<message_ptr>& msgs,
                      size_t copies,
                      bool limited) {
    auto& st = self->state;
    int64_t used = st.usage->bytes.load(std::memory_order_relaxed);
    int64_t bytes = 0;
    size_t n = 0;
    taken out;
    std::unordered_set<std::string> batch_ids;
    for (; n < msgs.size(); ++n) {
        const auto* dup = address_state::duplicate_id(*msgs[n]);
        if (dup != nullptr && (st.duplicates.contains(*dup) || batch_ids.count(*dup) != 0)) {
            ++st.duplicates_dropped;
            continue;
        }
        if (dup != nullptr) {
            if (auto it = st.in_flight.find(*dup); it != st.in_flight.end()) {
                // route_some refused ids held by transactions before calling us.
                ACTORMQ_ASSERT(!it->second.tx);
                out.depends_on.push_back(it->second.id);
                ++st.duplicates_dropped;
                continue;
            }
        }
        if (limited && st.usage->max_bytes >= 0 && used + bytes >= st.usage->max_bytes) {
            break;
        }
        if (dup != nullptr) {
            batch_ids.insert(*dup);
            out.dup_ids.push_back(*dup);
        }
        bytes += msgs[n]->memory_bytes() * static_cast<int64_t>(copies);
        out.accepted.push_back(std::move(msgs[n]));
    }
    msgs.erase(msgs.begin(), msgs.begin() + static_cast<ptrdiff_t>(n));
    if (limited) {
        st.usage->bytes.fetch_add(bytes, std::memory_order_relaxed);
    }
    return out;
}

/// Forgets the in-flight ids `op` holds; when `stored`, they become duplicates.
void settle_ids(address_state& st, address_state::pending_op& op, bool stored) {
    for (auto& id : op.dup_ids) {
        auto it = st.in_flight.find(id);
        if (it != st.in_flight.end() && !it->second.tx && it->second.id == op.id) {
            st.in_flight.erase(it);
        }
        if (stored) {
            st.duplicates.insert(id);
        }
    }
    op.dup_ids.clear();
}

void complete_ready(address_ptr self) {
    auto& st = self->state;
    while (!st.ops.empty() && st.ops.front().ready) {
        auto op = std::move(st.ops.front());
        st.ops.pop_front();
        // Its messages are stored (or it failed and has none left): their ids are now
        // duplicates of something real.
        settle_ids(st, op, true);
        for (size_t i = 0; !op.msgs.empty() && i < op.targets.size(); ++i) {
            if (i + 1 < op.targets.size()) {
                self->send(op.targets[i], enqueue_atom::value, op.msgs);
            } else {
                self->send(op.targets[i], enqueue_atom::value, std::move(op.msgs));
            }
        }
        if (op.promise) {
            if (op.failure) {
                op.promise->deliver(*op.failure);
            } else {
                op.promise->deliver(op.status);
            }
        }
    }
    // Ids held by what just completed are settled: the lane may open again.
    st.publish_lane();
}

void op_failed(address_ptr self, uint64_t id, const caf::error& e) {
    auto& st = self->state;
    for (auto& o : st.ops) {
        if (o.id == id) {
            for (const auto& m : o.msgs) {
                st.usage->bytes -= m->memory_bytes() * static_cast<int64_t>(o.targets.size());
            }
            o.msgs.clear();
            settle_ids(st, o, false);
            o.failure = e;
            o.ready = true;
        } else if (!o.failure
                   && std::find(o.depends_on.begin(), o.depends_on.end(), id)
                          != o.depends_on.end()) {
            o.failure = e;
        }
    }
    for (auto& b : st.blocked) {
        if (!b.failure
            && std::find(b.depends_on.begin(), b.depends_on.end(), id) != b.depends_on.end()) {
            b.failure = e;
        }
    }
}

void start_op(address_ptr self,
              routing_type routing,
              std::vector<queue_actor> targets,
              taken what,
              std::optional<caf::typed_response_promise<route_status>> promise,
              route_status status,
              op_origin origin,
              confirm_hook_ptr hook) {
    auto& st = self->state;
    auto records = st.records_for(what.accepted, routing);
    address_state::pending_op op;
    op.id = st.next_op_id();
    op.targets = std::move(targets);
    op.msgs = std::move(what.accepted);
    op.promise = std::move(promise);
    op.status = status;
    op.ready = records.empty();
    op.dup_ids = std::move(what.dup_ids);
    for (const auto& d : op.dup_ids) {
        st.in_flight[d] = address_state::id_owner{false, op.id};
    }
    // Closed while ids are in flight (send_lane.hpp).
    st.publish_lane();
    op.depends_on = std::move(origin.depends_on);
    op.depends_on.insert(op.depends_on.end(), what.depends_on.begin(), what.depends_on.end());
    op.failure = std::move(origin.failure);
    auto id = op.id;
    st.ops.push_back(std::move(op));
    if (records.empty()) {
        complete_ready(self);
        return;
    }
    bool sync = st.ctx->config.journal.journal_sync_non_transactional;
    // No timeout, on purpose: the journal answers every append, with its id once the batch is
    // synced or with errc::journal_failed (latched after the first failure; its handler
    // cannot throw). It is a detached actor stopped only by deactivate(), which stops the
    // server, and the server ends its addresses, so no address outlives it waiting. A timeout here
    // would be worse than a wait: the append may still land, and answering an error while
    // forgetting the ids would let the producer's retry store the message a second time.
    // The hook goes along only when the producer's answer means exactly "this append is
    // confirmed": not when it also waits for another operation's duplicates, failed already,
    // or is not "routed" (a null hook is simply not run).
    const auto& op_now = st.ops.back();
    if (!sync || !op_now.promise || !op_now.depends_on.empty() || op_now.failure
        || op_now.status != route_status::routed) {
        hook = nullptr;
    }
    self->request(st.ctx->journal, caf::infinite, append_atom::value, std::move(records), sync,
                  std::move(hook))
        .then(
            [self, id](uint64_t) {
                for (auto& o : self->state.ops) {
                    if (o.id == id) {
                        o.ready = true;
                    }
                }
                complete_ready(self);
            },
            [self, id](caf::error& e) {
                // The journal cannot write: nothing of this batch is confirmed or delivered.
                self->state.ctx->log->error("journal_append_failed address={} error=\"{}\"",
                                            self->state.address, caf::to_string(e));
                op_failed(self, id, e);
                complete_ready(self);
            });
}

const std::string* held_by_transaction(const address_state& st,
                                       const std::vector<message_ptr>& msgs) {
    for (const auto& m : msgs) {
        const auto* dup = address_state::duplicate_id(*m);
        if (dup == nullptr) {
            continue;
        }
        auto it = st.in_flight.find(*dup);
        if (it != st.in_flight.end() && it->second.tx) {
            return dup;
        }
    }
    return nullptr;
}

std::vector<message_ptr> route_some(address_ptr self,
                                    routing_type routing,
                                    std::vector<message_ptr>& msgs,
                                    caf::typed_response_promise<route_status> p,
                                    route_status status,
                                    op_origin& origin,
                                    confirm_hook_ptr hook) {
    auto& st = self->state;
    if (const auto* id = held_by_transaction(st, msgs)) {
        // Its first copy belongs to a transaction not committed yet: whether it will be
        // stored is open, so neither "stored" nor "duplicate" would be true. The producer
        // hears so and may retry.
        p.deliver(caf::make_error(errc::duplicate_in_flight, *id));
        msgs.clear();
        return {};
    }
    if (routing == routing_type::anycast) {
        ensure_anycast(self);
    }
    auto qs = st.targets(routing);
    if (qs.empty()) {
        // Nowhere to go: dropped, as in Artemis.
        msgs.clear();
        start_op(self, routing, {}, {}, std::move(p), status, std::move(origin));
        return {};
    }
    auto what = take_while_room(self, msgs, qs.size());
    if (msgs.empty()) {
        start_op(self, routing, std::move(qs), std::move(what), std::move(p), status,
                 std::move(origin), std::move(hook));
        return {};
    }
    // A part: its producer is answered with the last part, which inherits what this waits for.
    origin.depends_on.insert(origin.depends_on.end(), what.depends_on.begin(),
                             what.depends_on.end());
    what.depends_on.clear();
    start_op(self, routing, std::move(qs), std::move(what), std::nullopt, status);
    return std::move(msgs);
}

/// Releases held-back producers, oldest first, while there is room.
void drain_blocked(address_ptr self) {
    auto& st = self->state;
    while (!st.blocked.empty()) {
        auto& b = st.blocked.front();
        op_origin origin{b.depends_on, b.failure};
        auto rest = route_some(self, b.routing, b.msgs, b.promise, route_status::routed, origin);
        if (!rest.empty()) {
            // route_some may have started operations, but never touched st.blocked.
            auto& again = st.blocked.front();
            again.msgs = std::move(rest);
            again.depends_on = std::move(origin.depends_on);
            again.failure = std::move(origin.failure);
            return;
        }
        st.blocked.pop_front();
    }
}

bool fits(const address_state& st, routing_type routing, const std::vector<message_ptr>& msgs) {
    if (st.usage->max_bytes < 0) {
        return true;
    }
    auto copies = std::max<int64_t>(1, static_cast<int64_t>(st.targets(routing).size()));
    int64_t bytes = 0;
    for (const auto& m : msgs) {
        bytes += m->memory_bytes() * copies;
    }
    return st.usage->bytes.load(std::memory_order_relaxed) + bytes <= st.usage->max_bytes;
}

caf::result<route_status> route(address_ptr self,
                                routing_type routing,
                                std::vector<message_ptr>& msgs,
                                confirm_hook_ptr hook = nullptr) {
    auto& st = self->state;
    auto policy = st.settings.full_policy;
    if (policy == config::address_full_policy::fail && !fits(st, routing, msgs)) {
        // All or nothing: the session answers the whole batch with one ERROR and sends no
        // RECEIPT for any of it, so none of it may be stored.
        return route_status::full;
    }
    auto p = self->make_response_promise<route_status>();
    if (policy == config::address_full_policy::page) {
        if (st.opening) {
            st.blocked.push_back({p, routing, std::move(msgs), {}, std::nullopt});
        } else {
            route_paged(self, routing, msgs, p, op_origin{}, std::move(hook));
        }
        return p;
    }
    if (!st.blocked.empty()) {
        // Producers already waiting go first, so a new batch never overtakes them.
        st.blocked.push_back({p, routing, std::move(msgs), {}, std::nullopt});
        st.publish_lane();
        return p;
    }
    auto status = route_status::routed;
    op_origin origin;
    auto rest = route_some(self, routing, msgs, p, status, origin, std::move(hook));
    if (rest.empty()) {
        return p;
    }
    if (policy == config::address_full_policy::drop) {
        // What fitted is on its way; the rest is dropped, and the producer hears when the
        // accepted part is done.
        rest.clear();
        start_op(self, routing, {}, {}, p, route_status::dropped, std::move(origin));
        return p;
    }
    st.ctx->log->info("address_full address={} bytes={} max={} policy=BLOCK", st.address,
                      st.usage->bytes.load(), st.usage->max_bytes);
    st.blocked.push_back(
        {p, routing, std::move(rest), std::move(origin.depends_on), std::move(origin.failure)});
    st.publish_lane();
    return p;
}

caf::result<queue_actor>
bind(address_ptr self, routing_type routing, std::string& name, bool durable) {
    auto& st = self->state;
    if (routing == routing_type::anycast) {
        ensure_anycast(self);
        if (!st.anycast) {
            return caf::make_error(errc::auto_create_disabled, st.address);
        }
        return *st.anycast;
    }
    if (auto it = st.subscriptions.find(name); it != st.subscriptions.end()) {
        return it->second; // A durable subscription coming back to its queue.
    }
    // A durable subscription's queue is journaled only when the node persists at all.
    bool persist = durable && st.durable;
    auto q = spawn_queue(self, name, routing_type::multicast, persist);
    if (durable) {
        st.durable_subscriptions.insert(name);
        if (persist) {
            journal_binding(self, name, routing_type::multicast);
        }
    }
    st.subscriptions.emplace(std::move(name), q);
    return q;
}

/// Prepares a transaction's messages: all of them, or none when one is a duplicate (its id is
/// stored, or repeats one of the transaction) or its id is held by a message not stored yet
/// (errc::duplicate_in_flight: the client may retry once that is settled). Held messages count
/// against max-size-bytes but are not refused by it (a transaction is never split;
/// docs/stomp.md §7). Their ids are held for the transaction until commit or rollback.
caf::result<route_status>
prepare_tx(address_ptr self, routing_type routing, std::vector<message_ptr>& msgs, uint64_t tx_id) {
    auto& st = self->state;
    std::unordered_set<std::string> seen;
    std::vector<std::string> ids;
    for (const auto& m : msgs) {
        const auto* dup = address_state::duplicate_id(*m);
        if (dup == nullptr) {
            continue;
        }
        if (st.duplicates.contains(*dup) || !seen.insert(*dup).second) {
            ++st.duplicates_dropped;
            return route_status::duplicate;
        }
        if (st.in_flight.count(*dup) != 0) {
            return caf::make_error(errc::duplicate_in_flight, *dup);
        }
        ids.push_back(*dup);
    }
    for (const auto& id : ids) {
        st.in_flight[id] = address_state::id_owner{true, tx_id};
    }
    st.publish_lane();
    if (routing == routing_type::anycast) {
        ensure_anycast(self);
    }
    auto& held = st.held[tx_id];
    held.targets = st.targets(routing);
    held.dup_ids = std::move(ids);
    int64_t bytes = 0;
    for (const auto& m : msgs) {
        bytes += m->memory_bytes() * static_cast<int64_t>(held.targets.size());
    }
    st.usage->bytes.fetch_add(bytes, std::memory_order_relaxed);
    auto records = st.records_for(msgs, routing, tx_id);
    if (!records.empty()) {
        // The session's commit record follows these in the journal and makes them durable.
        caf::anon_send(st.ctx->journal, append_atom::value, std::move(records), false);
    }
    held.msgs = std::move(msgs);
    // Closed while a transaction is held: its COMMIT reaches this address from the session
    // after the client has its RECEIPT, and the producer's next message must not overtake it.
    st.publish_lane();
    return route_status::routed;
}

/// Releases a prepared transaction's messages to their queues (commit: the session sends it
/// once the commit record is on disk) or drops them (rollback, also after a failed commit).
void finish_tx(address_ptr self, uint64_t tx_id, bool commit) {
    auto& st = self->state;
    auto it = st.held.find(tx_id);
    if (it == st.held.end()) {
        // Not held here: an XA branch recovery restored (its messages are staged in the
        // queues; its duplicate ids wait in in_flight), so the queues decide.
        for (auto i = st.in_flight.begin(); i != st.in_flight.end();) {
            if (i->second.tx && i->second.id == tx_id) {
                if (commit) {
                    st.duplicates.insert(i->first);
                }
                i = st.in_flight.erase(i);
            } else {
                ++i;
            }
        }
        auto qs = st.targets(routing_type::multicast);
        if (st.anycast) {
            qs.push_back(*st.anycast);
        }
        for (auto& q : qs) {
            if (commit) {
                self->send(q, commit_atom::value, tx_id);
            } else {
                self->send(q, rollback_atom::value, tx_id);
            }
        }
        return;
    }
    auto op = std::move(it->second);
    st.held.erase(it);
    for (const auto& id : op.dup_ids) {
        auto f = st.in_flight.find(id);
        if (f != st.in_flight.end() && f->second.tx && f->second.id == tx_id) {
            st.in_flight.erase(f);
        }
        if (commit) {
            st.duplicates.insert(id);
        }
    }
    op.dup_ids.clear();
    if (commit) {
        op.id = st.next_op_id();
        op.ready = true;
        st.ops.push_back(std::move(op));
        complete_ready(self);
        return;
    }
    for (const auto& m : op.msgs) {
        st.usage->bytes -= m->memory_bytes() * static_cast<int64_t>(op.targets.size());
    }
    drain_blocked(self);
}

/// The journal answered an append the send lane made for this address: the message takes its
/// place in the order of operations (send_lane.hpp), or, refused, gives back its bytes.
void on_lane_op(address_ptr self, lane_op& op) {
    auto& st = self->state;
    auto* slot = st.op_slot(op.id);
    ACTORMQ_ASSERT(slot != nullptr);
    if (op.ok && st.anycast) {
        slot->targets = {*st.anycast};
        slot->msgs = {std::move(op.msg)};
    } else {
        st.ctx->log->error("journal_append_failed address={} lane=true", st.address);
        st.lane->release(op.bytes);
    }
    slot->ready = true;
    complete_ready(self);
}

void remove_all(address_ptr self) {
    auto& st = self->state;
    // The lane never opens again, and new connections no longer find it.
    st.lane->retired = true;
    st.lane->set_open(false);
    st.ctx->lanes->remove(st.address, st.lane.get());
    for (auto& q : st.targets(routing_type::multicast)) {
        self->send(q, remove_atom::value);
    }
    if (st.anycast) {
        self->send(*st.anycast, remove_atom::value);
    }
    for (auto& b : st.blocked) {
        b.promise.deliver(route_status::dropped);
    }
    st.blocked.clear();
    self->quit();
}

} // namespace address_ops

using namespace address_ops;

address_lane_actor::behavior_type address(address_ptr self,
                                          std::shared_ptr<server_context> ctx,
                                          std::string name,
                                          std::shared_ptr<address_seed> seed) {
    auto& st = self->state;
    st.ctx = std::move(ctx);
    st.settings = st.ctx->config.settings_for(name);
    st.durable = static_cast<bool>(st.ctx->journal) && name.rfind("temp.", 0) != 0;
    st.address = std::move(name);
    st.usage = std::make_shared<address_usage>();
    st.usage->max_bytes = st.settings.max_size_bytes;
    st.lane = std::make_shared<address_lane>();
    st.lane->address = st.address;
    st.lane->queue_name = anycast_queue_name(st.address);
    st.lane->usage = st.usage;
    st.lane->owner = caf::actor_cast<caf::weak_actor_ptr>(self->ctrl());
    st.ctx->lanes->add(st.address, st.lane);
    st.duplicates = duplicate_cache{st.ctx->config.journal.id_cache_size};
    bool page = st.settings.full_policy == config::address_full_policy::page;
    std::shared_ptr<paging::open_request> open;
    // PAGE is the default policy: only an address that has a page directory (it paged before)
    // opens a pager at start, so a node with many durable queues does not start a pager thread
    // for each. The server looked for the directories before spawning the addresses.
    if (seed && page && seed->page_directory) {
        // Page files may be left from before the restart: the journal's messages wait until
        // the pager has skipped the page records they repeat (paging::page_store::open).
        open = std::make_shared<paging::open_request>();
        st.opening = true;
    }
    if (seed) {
        for (const auto& id : seed->duplicate_ids) {
            st.duplicates.insert(id);
        }
        for (auto& q : seed->queues) {
            // Recovered messages count against the address even past its maximum.
            for (const auto& m : q.messages) {
                st.usage->bytes += m->memory_bytes();
            }
            // Prepared XA branches (recovery): what they acked and what they routed here
            // count too; their duplicate ids are held for them until their outcome.
            for (const auto& part : {&q.held, &q.staged}) {
                for (const auto& [tx, msgs] : *part) {
                    for (const auto& m : msgs) {
                        st.usage->bytes += m->memory_bytes();
                        if (const auto* dup = address_state::duplicate_id(*m);
                            dup != nullptr && part == &q.staged) {
                            st.in_flight[*dup] = address_state::id_owner{true, tx};
                        }
                    }
                }
            }
            if (open) {
                open->durable_queues.insert(q.name);
                for (const auto& m : q.messages) {
                    open->seed_ids.insert(m->id);
                }
            }
            std::vector<message_ptr> initial;
            if (!open) {
                initial = std::move(q.messages);
            }
            auto h = spawn_queue(self, q.name, q.routing, st.durable, std::move(initial),
                                 std::move(q.staged), std::move(q.held));
            if (open) {
                st.seed_held.emplace_back(h, std::move(q.messages));
            }
            if (q.routing == routing_type::anycast) {
                st.anycast = h;
            } else {
                st.subscriptions.emplace(q.name, h);
                st.durable_subscriptions.insert(q.name);
            }
        }
    }
    if (open) {
        start_pager(self, std::move(open));
    }
    return {
        [self](route_atom, routing_type routing, std::vector<message_ptr>& msgs) {
            auto r = route(self, routing, msgs);
            self->state.publish_lane();
            return r;
        },
        [self](route_atom, routing_type routing, std::vector<message_ptr>& msgs,
               confirm_hook_ptr& hook) {
            auto r = route(self, routing, msgs, std::move(hook));
            self->state.publish_lane();
            return r;
        },
        [self](route_atom, routing_type routing, std::vector<message_ptr>& msgs, uint64_t tx_id) {
            return prepare_tx(self, routing, msgs, tx_id);
        },
        [self](commit_atom, uint64_t tx_id) {
            finish_tx(self, tx_id, true);
            self->state.publish_lane();
        },
        [self](rollback_atom, uint64_t tx_id) {
            finish_tx(self, tx_id, false);
            self->state.publish_lane();
        },
        [self](bind_atom, routing_type routing, std::string& name, bool durable) {
            auto r = bind(self, routing, name, durable);
            self->state.publish_lane();
            return r;
        },
        [self](lane_atom, lane_op_ptr& op) { on_lane_op(self, *op); },
        [self](unbind_atom, const std::string& name) {
            auto& subs = self->state.subscriptions;
            if (auto i = subs.find(name); i != subs.end()) {
                self->send(i->second, remove_atom::value);
                subs.erase(i);
                self->state.durable_subscriptions.erase(name);
            }
        },
        [self](space_atom) {
            if (self->state.settings.full_policy == config::address_full_policy::page) {
                maybe_page_in(self);
            } else {
                drain_blocked(self);
            }
            self->state.publish_lane();
        },
        [self](stats_atom) -> caf::result<std::vector<queue_stats>> {
            auto qs = self->state.targets(routing_type::multicast);
            if (self->state.anycast) {
                qs.push_back(*self->state.anycast);
            }
            return gather_stats<queue_stats>(self, qs, self->state.ctx->request_timeout());
        },
        [self](remove_atom) { remove_all(self); },
    };
}

} // namespace actormq
