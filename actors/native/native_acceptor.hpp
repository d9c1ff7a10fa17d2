// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/broker/accept_loop.hpp"
#include "actors/broker/server_context.hpp"
#include "actors/fwd.hpp"
#include "actors/native/topology_feed.hpp"

#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace caf {
class actor_system;
}

namespace actormq {

class native_connection;

/// The listening socket of a native acceptor (docs/protocol.md) on the Asio threads; creates a
/// `native_connection` per client on the shared `accept_loop`, gives every connection of this
/// acceptor the registry of sessions kept for reattach (§14), and pushes each new topology to
/// them (§12).
class native_acceptor {
public:
    native_acceptor(boost::asio::io_context& ioc,
                    std::shared_ptr<server_context> ctx,
                    config::acceptor_config cfg,
                    caf::actor_system& sys,
                    server_actor server,
                    std::shared_ptr<native_topology_feed> topology = nullptr);

    /// Binds and listens; returns an empty string or the reason it failed.
    std::string open();

    /// The bound port.
    uint16_t port() const;

    /// Starts accepting, and pushing every new topology to the authenticated connections.
    void start();

    /// Stops accepting, closes every connection and waits (bounded) until they are closed.
    void shutdown();

    /// Connections open right now.
    size_t connection_count() const;

private:
    std::shared_ptr<accept_loop<native_connection>> loop_;
    /// The node's native topology (null: none), and this acceptor's subscription to it.
    std::shared_ptr<native_topology_feed> topology_;
    uint64_t topology_subscription_ = 0;
};

} // namespace actormq
