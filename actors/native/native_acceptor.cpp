// SPDX-License-Identifier: Apache-2.0
// The native acceptor: the shared accept loop (actors/broker/accept_loop.hpp) around native
// connections, the registry of sessions kept for reattach, and the topology push.
#include "actors/native/native_acceptor.hpp"

#include "actors/native/native_connection.hpp"

namespace actormq {

native_acceptor::native_acceptor(boost::asio::io_context& ioc,
                                 std::shared_ptr<server_context> ctx,
                                 config::acceptor_config cfg,
                                 caf::actor_system& sys,
                                 server_actor server,
                                 std::shared_ptr<native_topology_feed> topology)
    : topology_(std::move(topology)) {
    auto shared_cfg = std::make_shared<const config::acceptor_config>(std::move(cfg));
    // Sessions kept for reattach, shared by every connection of this acceptor.
    auto registry = std::make_shared<native_registry>();
    // The actor system outlives every connection (docs/architecture.md, "How a node stops").
    auto make = [ctx, shared_cfg, sys = &sys, server = std::move(server), registry,
                 feed = topology_](boost::asio::ip::tcp::socket sock, uint64_t id,
                                   accept_loop<native_connection>::close_hook on_close) {
        return std::make_shared<native_connection>(std::move(sock), id, ctx, shared_cfg, *sys,
                                                   server, registry, std::move(on_close), feed);
    };
    loop_ = std::make_shared<accept_loop<native_connection>>(ioc, std::move(ctx), shared_cfg,
                                                             std::move(make));
}

std::string native_acceptor::open() {
    return loop_->open();
}

uint16_t native_acceptor::port() const {
    return loop_->port();
}

void native_acceptor::start() {
    if (topology_) {
        // §12: every change goes to every connection; each sends it only once authenticated.
        std::weak_ptr<accept_loop<native_connection>> weak = loop_;
        topology_subscription_ = topology_->subscribe([weak](const native::topology& t) {
            if (auto loop = weak.lock()) {
                loop->for_each_connection([&t](native_connection& c) { c.post_topology(t); });
            }
        });
    }
    loop_->start();
}

size_t native_acceptor::connection_count() const {
    return loop_->connection_count();
}

void native_acceptor::shutdown() {
    if (topology_ && topology_subscription_ != 0) {
        topology_->unsubscribe(topology_subscription_);
        topology_subscription_ = 0;
    }
    loop_->shutdown();
    // Detached sessions have no connection to close them; they end with the server actor,
    // which each of them monitors.
}

} // namespace actormq
