// SPDX-License-Identifier: Apache-2.0
#pragma once

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

/// The listening socket of a native acceptor (docs/protocol.md) on the Asio threads; creates a
/// `native_connection` per client. The same shape as STOMP's `acceptor` (a shared state that
/// outlives late handlers), plus the registry of sessions kept for reattach (§14), which every
/// connection of this acceptor shares.
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
    uint16_t port() const { return port_; }

    /// Starts accepting, and pushing every new topology to the authenticated connections.
    void start();

    /// Stops accepting, closes every connection and waits (bounded) until they are closed.
    void shutdown();

    /// Connections open right now.
    size_t connection_count() const;

    /// What the acceptor shares with its handlers and its connections.
    struct state;

private:
    std::shared_ptr<state> state_;
    uint16_t port_ = 0;
};

} // namespace actormq
