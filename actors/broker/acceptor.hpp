// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/broker/accept_loop.hpp"
#include "actors/broker/server_context.hpp"
#include "actors/fwd.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace caf {
class actor_system;
}

namespace actormq {

class connection;

/// One listening STOMP socket on the Asio threads; creates a `connection` per client. The loop
/// itself (socket, connections, shutdown) is the shared `accept_loop`.
class acceptor {
public:
    acceptor(boost::asio::io_context& ioc,
             std::shared_ptr<server_context> ctx,
             config::acceptor_config cfg,
             caf::actor_system& sys,
             server_actor server);

    /// Binds and listens; returns an empty string or the reason it failed.
    std::string open();

    /// The bound port (the OS's choice when the config said 0).
    uint16_t port() const;

    /// The acceptor's settings.
    const config::acceptor_config& config() const;

    /// Starts accepting.
    void start();

    /// Stops accepting, closes every connection and waits (bounded) until they are closed.
    void shutdown();

    /// Connections open right now.
    size_t connection_count() const;

private:
    std::shared_ptr<accept_loop<connection>> loop_;
};

} // namespace actormq
