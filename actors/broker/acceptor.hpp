// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/fwd.hpp"
#include "actors/broker/server_context.hpp"

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

/// One listening socket on the Asio threads; creates a `connection` per client.
class acceptor {
public:
    acceptor(boost::asio::io_context& ioc, std::shared_ptr<server_context> ctx,
             config::acceptor_config cfg, caf::actor_system& sys, server_actor server);

    /// Binds and listens; returns an empty string or the reason it failed.
    std::string open();

    /// The bound port (the OS's choice when the config said 0).
    uint16_t port() const { return port_; }

    const config::acceptor_config& config() const { return cfg_; }

    /// Starts accepting.
    void start();

    /// Stops accepting, closes every connection and waits (bounded) until they are closed.
    void shutdown();

    /// Connections open right now.
    size_t connection_count() const;

private:
    void do_accept();
    void forget(uint64_t id);

    boost::asio::io_context& ioc_;
    std::shared_ptr<server_context> ctx_;
    config::acceptor_config cfg_;
    caf::actor_system& sys_;
    server_actor server_;
    boost::asio::ip::tcp::acceptor socket_;
    uint16_t port_ = 0;
    mutable std::mutex mtx_;
    std::condition_variable all_closed_;
    std::unordered_map<uint64_t, std::shared_ptr<connection>> connections_;
    std::atomic<bool> stopping_{false};
};

} // namespace actormq
