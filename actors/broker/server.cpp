// SPDX-License-Identifier: Apache-2.0
#include "actors/broker/server.hpp"

#include "actors/broker/address.hpp"
#include "actors/broker/gather.hpp"
#include "actors/journal/recovery.hpp"
#include "actors/paging/pager.hpp"
#include "protocol/errc.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <set>

namespace actormq {

namespace {

using server_ptr = server_actor::stateful_pointer<server_state>;

/// An address lives and dies with its server, as if linked: the server monitors it and ends
/// every address when it ends itself (~server_state). Not a CAF link: linking scans the
/// server's list of links and monitors each time, so 100,000 addresses cost O(n^2) (creating
/// them slowed to a stop near 45,000, docs/benchmarks.md "Scale on one node"); a monitor is
/// one entry on the address's side.
address_actor
spawn_address(server_ptr self, const std::string& name, std::shared_ptr<address_seed> seed) {
    auto a = self->spawn(address, self->state.ctx, name, std::move(seed));
    self->monitor(a);
    return a;
}

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
    auto a = spawn_address(self, name, std::shared_ptr<address_seed>{});
    st.ctx->log->info("address_created address={}", name);
    st.addresses.emplace(std::move(name), a);
    return a;
}

/// Spawns an address for everything recovery found (queues, messages, duplicate ids).
caf::result<uint64_t> restore(server_ptr self, recovered_state& rs) {
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
    auto spawn_all = [self, seeds](const paging::directory_listing& paged) {
        std::set<std::string> dirs(paged.names.begin(), paged.names.end());
        // Number new messages past the paged ones (directory_listing says why); no client
        // is in yet, the node opens its acceptors once this request is answered.
        auto& next = self->state.ctx->next_message_id;
        auto n = next.load();
        while (n <= paged.max_message_id
               && !next.compare_exchange_weak(n, paged.max_message_id + 1)) {
        }
        for (const auto& [name, seed] : seeds) {
            seed->page_directory = dirs.count(paging::directory_name(name)) != 0;
            self->state.addresses.emplace(name, spawn_address(self, name, seed));
        }
    };
    // Which of them have page files from before the restart (address.cpp), and the largest
    // paged message id: one listing of the paging directory, in a detached actor, when one of
    // them pages at all.
    bool page = static_cast<bool>(st.ctx->journal)
                && std::any_of(seeds.begin(), seeds.end(), [&](const auto& kv) {
                       return st.ctx->config.settings_for(kv.first).full_policy
                              == config::address_full_policy::page;
                   });
    if (!page) {
        spawn_all({});
        return restored;
    }
    auto p = self->make_response_promise<uint64_t>();
    auto l = self->spawn<caf::detached>(paging::lister);
    // No timeout: the lister answers its one request (or ends, which fails the request).
    // await, not then: until the addresses exist the server takes no other message (a lookup
    // would create an empty address under a recovered one's name), as when this was one call.
    self->request(l, caf::infinite, paging::list_atom::value,
                  config::paging_directory_of(st.ctx->config.journal))
        .await(
            [p, spawn_all, restored](paging::directory_listing& paged) mutable {
                spawn_all(paged);
                p.deliver(restored);
            },
            [self, p](caf::error& e) mutable {
                // The journal's messages cannot go to consumers before the page records they
                // repeat are skipped, which needs the page files: the node does not start.
                self->state.ctx->log->error("paging_directory_failed error=\"{}\"",
                                            caf::to_string(e));
                p.deliver(std::move(e));
            });
    return p;
}

/// The helper that answers one stats request for the server.
using gatherer_actor =
    caf::typed_actor<caf::replies_to<stats_atom>::with<std::vector<queue_stats>>>;

/// Gathers the figures of `addrs` for one stats request and ends once it has answered (every
/// address answered or timed out).
gatherer_actor::behavior_type stats_gatherer(gatherer_actor::pointer self,
                                             std::vector<address_actor> addrs,
                                             std::chrono::milliseconds timeout) {
    return {
        [self, addrs, timeout](stats_atom) {
            return gather_stats<std::vector<queue_stats>>(self, addrs, timeout,
                                                          [self] { self->quit(); });
        },
    };
}

} // namespace

server_state::~server_state() {
    // Runs when the server actor ends, whatever ended it (CAF destroys a stateful actor's
    // state as it terminates): nothing can reach these addresses through it any more.
    for (const auto& [name, a] : addresses) {
        caf::anon_send_exit(caf::actor_cast<caf::actor>(a), caf::exit_reason::user_shutdown);
    }
}

server_actor::behavior_type server(server_ptr self, std::shared_ptr<server_context> ctx) {
    self->state.ctx = std::move(ctx);
    // An address that fails takes the server down with it, as a link did; the server's end
    // ends every address (~server_state).
    self->set_down_handler([self](caf::down_msg& dm) {
        if (dm.reason && dm.reason != caf::exit_reason::user_shutdown) {
            self->quit(dm.reason);
        }
    });
    return {
        [self](lookup_atom, std::string& name, bool create) { return lookup(self, name, create); },
        [self](remove_atom, const std::string& name) {
            auto& addrs = self->state.addresses;
            if (auto i = addrs.find(name); i != addrs.end()) {
                self->send(i->second, remove_atom::value);
                self->demonitor(i->second.address());
                addrs.erase(i);
                self->state.ctx->log->info("address_removed address={}", name);
            }
        },
        [self](recover_atom, std::shared_ptr<recovered_state>& rs) { return restore(self, *rs); },
        [self](stats_atom) -> caf::delegated<std::vector<queue_stats>> {
            std::vector<address_actor> addrs;
            addrs.reserve(self->state.addresses.size());
            for (const auto& [n, a] : self->state.addresses) {
                addrs.push_back(a);
            }
            // Asked and answered by a helper: with 100,000 addresses their answers would
            // queue in this mailbox ahead of clients' lookups (docs/benchmarks.md, "Scale on
            // one node").
            auto g =
                self->spawn(stats_gatherer, std::move(addrs), self->state.ctx->request_timeout());
            return self->delegate(g, stats_atom::value);
        },
    };
}

} // namespace actormq
