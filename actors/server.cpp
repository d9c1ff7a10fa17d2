// SPDX-License-Identifier: Apache-2.0
#include "actors/server.hpp"

#include "actors/address.hpp"
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
    if (!st.ctx->config.settings_for(name).auto_create_addresses) {
        return caf::make_error(errc::auto_create_disabled, name);
    }
    auto a = self->spawn<caf::linked>(address, st.ctx, name);
    st.ctx->log->info("address_created address={}", name);
    st.addresses.emplace(std::move(name), a);
    return a;
}

/// Collects the stats of every queue of every address into one reply.
caf::result<std::vector<queue_stats>> all_stats(server_ptr self) {
    auto rp = self->make_response_promise<std::vector<queue_stats>>();
    auto& addrs = self->state.addresses;
    if (addrs.empty()) {
        rp.deliver(std::vector<queue_stats>{});
        return rp;
    }
    auto acc = std::make_shared<std::vector<queue_stats>>();
    auto left = std::make_shared<size_t>(addrs.size());
    auto done = [rp, acc, left]() mutable {
        if (--*left == 0) {
            rp.deliver(std::move(*acc));
        }
    };
    for (auto& [n, a] : addrs) {
        self->request(a, self->state.ctx->request_timeout(), stats_atom::value)
            .then(
                [acc, done](std::vector<queue_stats>& qs) mutable {
                    acc->insert(acc->end(), qs.begin(), qs.end());
                    done();
                },
                [done](caf::error&) mutable { done(); });
    }
    return rp;
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
        [self](stats_atom) { return all_stats(self); },
    };
}

} // namespace actormq
