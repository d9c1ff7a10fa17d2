// SPDX-License-Identifier: Apache-2.0
#include "actors/broker/server.hpp"

#include "actors/broker/address.hpp"
#include "actors/broker/gather.hpp"
#include "actors/journal/recovery.hpp"
#include "protocol/errc.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace actormq {

namespace {

using server_ptr = server_actor::stateful_pointer<server_state>;

caf::result<address_actor> lookup(server_ptr self, std::string& name, bool create) {
    auto& st = self->state;
    if (auto i = st.addresses.find(name); i != st.addresses.end()) {
        return i->second;
    }
    if (!create) {
        return caf::make_error(errc::no_such_address, name);
    }
    const auto& settings = st.ctx->config.settings_for(name);
    if (!settings.auto_create_addresses) {
        return caf::make_error(errc::auto_create_disabled, name);
    }
    // The server creates every address, so this count is exact (recovered ones included).
    const auto& cfg = st.ctx->config;
    if (st.addresses.size() >= cfg.max_auto_created_addresses) {
        st.ctx->log->info("address_refused address={} reason=max-auto-created-addresses max={}",
                          name, cfg.max_auto_created_addresses);
        return caf::make_error(errc::limit_reached, std::string{"max-auto-created-addresses"},
                               uint64_t{cfg.max_auto_created_addresses});
    }
    // A new address makes its anycast queue on first use (address.cpp, ensure_anycast).
    if (settings.auto_create_queues
        && st.ctx->queue_count.load(std::memory_order_relaxed) >= cfg.max_auto_created_queues) {
        st.ctx->log->info("address_refused address={} reason=max-auto-created-queues max={}", name,
                          cfg.max_auto_created_queues);
        return caf::make_error(errc::limit_reached, std::string{"max-auto-created-queues"},
                               uint64_t{cfg.max_auto_created_queues});
    }
    auto a = self->spawn<caf::linked>(address, st.ctx, name, std::shared_ptr<address_seed>{});
    st.ctx->log->info("address_created address={}", name);
    st.addresses.emplace(std::move(name), a);
    return a;
}

/// Spawns an address for everything recovery found (queues, messages, duplicate ids).
uint64_t restore(server_ptr self, recovered_state& rs) {
    auto& st = self->state;
    std::map<std::string, std::shared_ptr<address_seed>> seeds;
    uint64_t restored = 0;
    for (auto& q : rs.queues) {
        auto& seed = seeds[q.address];
        if (!seed) {
            seed = std::make_shared<address_seed>();
        }
        restored += q.messages.size();
        seed->queues.push_back(std::move(q));
    }
    for (auto& [addr, ids] : rs.duplicate_ids) {
        auto& seed = seeds[addr];
        if (!seed) {
            seed = std::make_shared<address_seed>();
        }
        seed->duplicate_ids = std::move(ids);
    }
    for (auto& [name, seed] : seeds) {
        auto a = self->spawn<caf::linked>(address, st.ctx, name, seed);
        st.addresses.emplace(name, a);
    }
    return restored;
}

} // namespace

server_actor::behavior_type server(server_ptr self, std::shared_ptr<server_context> ctx) {
    self->state.ctx = std::move(ctx);
    return {
        [self](lookup_atom, std::string& name, bool create) {
            return lookup(self, name, create);
        },
        [self](remove_atom, const std::string& name) {
            auto& addrs = self->state.addresses;
            if (auto i = addrs.find(name); i != addrs.end()) {
                self->send(i->second, remove_atom::value);
                self->unlink_from(i->second);
                addrs.erase(i);
                self->state.ctx->log->info("address_removed address={}", name);
            }
        },
        [self](recover_atom, std::shared_ptr<recovered_state>& rs) {
            return restore(self, *rs);
        },
        [self](stats_atom) -> caf::result<std::vector<queue_stats>> {
            std::vector<address_actor> addrs;
            for (const auto& [n, a] : self->state.addresses) {
                addrs.push_back(a);
            }
            return gather_stats<std::vector<queue_stats>>(self, addrs,
                                                          self->state.ctx->request_timeout());
        },
    };
}

} // namespace actormq
