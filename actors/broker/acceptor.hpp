// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/fwd.hpp"
#include "actors/broker/server_context.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

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
    /// The live connections, shared with each connection's close hook so that a connection
    /// closing late (after a bounded shutdown gave up on it) never touches a gone acceptor.
    struct registry {
        std::mutex mtx;
        std::condition_variable all_closed;
        std::unordered_map<uint64_t, std::shared_ptr<connection>> connections;
        /// Set by shutdown() under `mtx`: no connection is added after it.
        bool stopping = false;
        std::shared_ptr<std::atomic<uint64_t>> counter;
        void forget(uint64_t id);
    };

    void do_accept();
    void on_accept(const boost::system::error_code& ec, boost::asio::ip::tcp::socket sock);
    /// Marks the accept loop as ended (on the strand) and wakes shutdown().
    void accept_loop_ended();

    boost::asio::io_context& ioc_;
    std::shared_ptr<server_context> ctx_;
    config::acceptor_config cfg_;
    caf::actor_system& sys_;
    server_actor server_;
    /// The listening socket and the retry timer are touched only on this strand.
    boost::asio::strand<boost::asio::io_context::executor_type> strand_;
    boost::asio::ip::tcp::acceptor socket_;
    boost::asio::steady_timer retry_timer_;
    uint16_t port_ = 0;
    std::shared_ptr<registry> registry_ = std::make_shared<registry>();
    /// Whether an accept or a retry wait is outstanding; guarded by registry_->mtx.
    bool accept_loop_running_ = false;
    std::condition_variable accept_loop_done_;
};

} // namespace actormq
