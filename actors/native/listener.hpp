// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the node needs of a listening acceptor, whatever protocol it speaks, and the one place
// that picks the acceptor class for an `[acceptors.NAME]` table's `protocol`.

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

/// A listening socket on the Asio threads that creates a connection per client.
class listener {
public:
    virtual ~listener() = default;

    /// Binds and listens; returns an empty string or the reason it failed.
    virtual std::string open() = 0;

    /// The bound port.
    virtual uint16_t port() const = 0;

    /// Starts accepting.
    virtual void start() = 0;

    /// Stops accepting, closes every connection and waits (bounded) until they are closed.
    virtual void shutdown() = 0;

    /// Connections open right now.
    virtual size_t connection_count() const = 0;
};

/// The acceptor for `cfg.protocol`: STOMP's `acceptor` or the native protocol's
/// `native_acceptor`, which pushes `topology` to its clients (null: it names only itself).
std::unique_ptr<listener> make_listener(boost::asio::io_context& ioc,
                                        std::shared_ptr<server_context> ctx,
                                        config::acceptor_config cfg,
                                        caf::actor_system& sys,
                                        server_actor server,
                                        std::shared_ptr<native_topology_feed> topology = nullptr);

} // namespace actormq
