// SPDX-License-Identifier: Apache-2.0
#include "actors/address.hpp"

#include "actors/gather.hpp"
#include "actors/queue.hpp"
#include "protocol/errc.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>

namespace actormq {

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

namespace {

using address_ptr = address_actor::stateful_pointer<address_state>;

queue_actor spawn_queue(address_ptr self, std::string name, routing_type routing) {
    auto& st = self->state;
    queue_args args{std::move(name), st.address, routing};
    auto q = self->spawn<caf::linked>(queue, st.ctx, st.usage,
                                      caf::actor_cast<address_actor>(self), std::move(args));
    return q;
}

/// Hands messages from the front of `msgs` to every target queue while the address has room,
/// and removes them from `msgs`. The check is per message, so a batch cannot carry an address
/// past max-size-bytes by more than one message. A message with nowhere to go is dropped (as
/// in Artemis).
void route_while_room(address_ptr self, routing_type routing, std::vector<message_ptr>& msgs) {
    auto& st = self->state;
    if (routing == routing_type::anycast && !st.anycast && st.settings.auto_create_queues) {
        st.anycast = spawn_queue(self, st.address, routing_type::anycast);
    }
    auto qs = st.targets(routing);
    if (qs.empty()) {
        msgs.clear();
        return;
    }
    auto copies = static_cast<int64_t>(qs.size());
    int64_t used = st.usage->bytes.load(std::memory_order_relaxed);
    size_t n = 0;
    int64_t bytes = 0;
    while (n < msgs.size() && !(st.usage->max_bytes >= 0 && used + bytes >= st.usage->max_bytes)) {
        bytes += msgs[n]->memory_bytes() * copies;
        ++n;
    }
    if (n == 0) {
        return;
    }
    st.usage->bytes.fetch_add(bytes, std::memory_order_relaxed);
    std::vector<message_ptr> accepted;
    if (n == msgs.size()) {
        accepted.swap(msgs);
    } else {
        accepted.assign(std::make_move_iterator(msgs.begin()),
                        std::make_move_iterator(msgs.begin() + static_cast<ptrdiff_t>(n)));
        msgs.erase(msgs.begin(), msgs.begin() + static_cast<ptrdiff_t>(n));
    }
    for (size_t i = 0; i + 1 < qs.size(); ++i) {
        self->send(qs[i], enqueue_atom::value, accepted);
    }
    self->send(qs.back(), enqueue_atom::value, std::move(accepted));
}

/// Releases held-back producers, oldest first, while there is room.
void drain_blocked(address_ptr self) {
    auto& st = self->state;
    while (!st.blocked.empty()) {
        auto& b = st.blocked.front();
        route_while_room(self, b.routing, b.msgs);
        if (!b.msgs.empty()) {
            return;
        }
        b.promise.deliver(route_status::routed);
        st.blocked.pop_front();
    }
}

/// Whether the whole batch fits under max-size-bytes.
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

caf::result<route_status> route(address_ptr self, routing_type routing,
                                std::vector<message_ptr>& msgs) {
    auto& st = self->state;
    if (st.settings.full_policy == config::address_full_policy::fail && !fits(st, routing, msgs)) {
        // All or nothing: the session answers the whole batch with one ERROR and sends no
        // RECEIPT for any of it, so none of it may be stored.
        return route_status::full;
    }
    // Producers already waiting go first, so a new batch never overtakes them.
    if (st.blocked.empty()) {
        route_while_room(self, routing, msgs);
        if (msgs.empty()) {
            return route_status::routed;
        }
    }
    switch (st.settings.full_policy) {
        case config::address_full_policy::fail:
            return route_status::full;
        case config::address_full_policy::drop:
            return route_status::dropped;
        case config::address_full_policy::block:
            break;
    }
    if (st.blocked.empty()) {
        st.ctx->log->info("address_full address={} bytes={} max={} policy=BLOCK", st.address,
                          st.usage->bytes.load(), st.usage->max_bytes);
    }
    auto p = self->make_response_promise<route_status>();
    st.blocked.push_back({p, routing, std::move(msgs)});
    return p;
}

caf::result<queue_actor> bind(address_ptr self, routing_type routing, std::string& name) {
    auto& st = self->state;
    if (routing == routing_type::anycast) {
        if (!st.anycast) {
            if (!st.settings.auto_create_queues) {
                return caf::make_error(errc::auto_create_disabled, st.address);
            }
            st.anycast = spawn_queue(self, st.address, routing_type::anycast);
        }
        return *st.anycast;
    }
    auto q = spawn_queue(self, name, routing_type::multicast);
    st.subscriptions.emplace(std::move(name), q);
    return q;
}

} // namespace

address_actor::behavior_type address(address_ptr self, std::shared_ptr<server_context> ctx,
                                     std::string name) {
    auto& st = self->state;
    st.ctx = std::move(ctx);
    st.settings = st.ctx->config.settings_for(name);
    st.address = std::move(name);
    st.usage = std::make_shared<address_usage>();
    st.usage->max_bytes = st.settings.max_size_bytes;
    return {
        [self](route_atom, routing_type routing, std::vector<message_ptr>& msgs) {
            return route(self, routing, msgs);
        },
        [self](bind_atom, routing_type routing, std::string& name) {
            return bind(self, routing, name);
        },
        [self](unbind_atom, const std::string& name) {
            auto& subs = self->state.subscriptions;
            if (auto i = subs.find(name); i != subs.end()) {
                self->send(i->second, remove_atom::value);
                subs.erase(i);
            }
        },
        [self](space_atom) { drain_blocked(self); },
        [self](stats_atom) -> caf::result<std::vector<queue_stats>> {
            auto qs = self->state.targets(routing_type::multicast);
            if (self->state.anycast) {
                qs.push_back(*self->state.anycast);
            }
            return gather_stats<queue_stats>(self, qs, self->state.ctx->request_timeout());
        },
        [self](remove_atom) {
            for (auto& q : self->state.targets(routing_type::multicast)) {
                self->send(q, remove_atom::value);
            }
            if (self->state.anycast) {
                self->send(*self->state.anycast, remove_atom::value);
            }
            for (auto& b : self->state.blocked) {
                b.promise.deliver(route_status::dropped);
            }
            self->state.blocked.clear();
            self->quit();
        },
    };
}

} // namespace actormq
