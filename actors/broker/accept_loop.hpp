// SPDX-License-Identifier: Apache-2.0
// The accept loop every protocol's acceptor shares (STOMP's `acceptor`, the native protocol's
// `native_acceptor`): one listening socket on a strand, the live connections, a bounded
// shutdown. Handlers and close hooks hold the loop itself (shared or weak), so one that runs
// after shutdown() or after its acceptor is gone never reaches freed memory.
#pragma once

#include "actors/broker/server_context.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace actormq {

/// A listening socket and its connections. `Connection` has `start()` and `post_shutdown()`.
/// Create it with std::make_shared: its handlers keep it alive while they are pending.
template <class Connection>
class accept_loop : public std::enable_shared_from_this<accept_loop<Connection>> {
public:
    using tcp = boost::asio::ip::tcp;
    /// Called by a connection, once, when it has closed.
    using close_hook = std::function<void(uint64_t id)>;
    /// Makes the connection of an accepted socket.
    using factory =
        std::function<std::shared_ptr<Connection>(tcp::socket, uint64_t id, close_hook on_close)>;

    accept_loop(boost::asio::io_context& ioc,
                std::shared_ptr<server_context> ctx,
                std::shared_ptr<const config::acceptor_config> cfg,
                factory make)
        : ioc_(ioc),
          ctx_(std::move(ctx)),
          cfg_(std::move(cfg)),
          make_(std::move(make)),
          strand_(boost::asio::make_strand(ioc)),
          socket_(strand_),
          retry_timer_(strand_) {}

    /// Binds and listens; returns an empty string or the reason it failed.
    std::string open() {
        namespace asio = boost::asio;
        boost::system::error_code ec;
        auto addr = asio::ip::make_address(cfg_->host, ec);
        if (ec) {
            return "invalid host '" + cfg_->host + "': " + ec.message();
        }
        tcp::endpoint ep{addr, cfg_->port};
        socket_.open(ep.protocol(), ec);
        if (!ec) {
            socket_.set_option(tcp::acceptor::reuse_address(true), ec);
        }
        if (!ec) {
            socket_.bind(ep, ec);
        }
        if (!ec) {
            socket_.listen(asio::socket_base::max_listen_connections, ec);
        }
        if (ec) {
            return "cannot listen on " + cfg_->host + ":" + std::to_string(cfg_->port) + ": "
                   + ec.message();
        }
        port_ = socket_.local_endpoint().port();
        return {};
    }

    /// The bound port (the OS's choice when the config said 0).
    uint16_t port() const { return port_; }

    /// The acceptor's settings, shared with every connection.
    const std::shared_ptr<const config::acceptor_config>& config() const { return cfg_; }

    /// Starts accepting.
    void start() {
        ctx_->log->info("acceptor_listening name={} protocol={} host={} port={}", cfg_->name,
                        cfg_->protocol, cfg_->host, port_);
        boost::asio::post(strand_, [self = this->shared_from_this()] { self->do_accept(); });
    }

    /// Stops accepting, closes every connection and waits (bounded) until they are closed.
    void shutdown() {
        {
            std::lock_guard<std::mutex> guard{mtx_};
            stopping_ = true;
        }
        // Closed on the strand (the socket is not thread-safe); this ends the accept loop. The
        // io threads run until every acceptor has stopped, so the posted close always runs.
        std::promise<void> closed;
        boost::asio::post(strand_, [self = this->shared_from_this(), &closed] {
            boost::system::error_code ignored;
            self->socket_.close(ignored);
            self->retry_timer_.cancel();
            closed.set_value();
        });
        closed.get_future().wait();
        std::unique_lock<std::mutex> guard{mtx_};
        for (auto& [id, c] : connections_) {
            c->post_shutdown();
        }
        if (!all_closed_.wait_for(guard, std::chrono::seconds(5),
                                  [this] { return connections_.empty(); })) {
            // Their sessions still end: each session monitors the server actor, which stops
            // next.
            ctx_->log->warn("acceptor_shutdown_timeout name={} open_connections={}", cfg_->name,
                            connections_.size());
        }
    }

    /// Connections open right now.
    size_t connection_count() const {
        std::lock_guard<std::mutex> guard{mtx_};
        return connections_.size();
    }

    /// Calls `f` with every open connection, under the loop's lock (so keep it short: post).
    template <class F>
    void for_each_connection(F f) {
        std::lock_guard<std::mutex> guard{mtx_};
        for (auto& [id, c] : connections_) {
            f(*c);
        }
    }

private:
    void do_accept() {
        namespace asio = boost::asio;
        socket_.async_accept(
            asio::make_strand(ioc_),
            asio::bind_executor(strand_, [self = this->shared_from_this()](
                                             const boost::system::error_code& ec,
                                             tcp::socket sock) {
                self->on_accept(ec, std::move(sock));
            }));
    }

    /// One accepted socket (or an accept error), on the strand.
    void on_accept(const boost::system::error_code& ec, tcp::socket sock) {
        // shutdown() closed the socket: the pending accept completes with operation_aborted
        // and the loop ends here.
        if (ec == boost::asio::error::operation_aborted || !socket_.is_open()) {
            return;
        }
        if (ec) {
            // Out of descriptors, or a client that gave up before accept: retry after a pause
            // rather than spin on an error that repeats at once.
            ctx_->log->warn("accept_failed name={} error=\"{}\"", cfg_->name, ec.message());
            retry_timer_.expires_after(std::chrono::milliseconds(100));
            retry_timer_.async_wait(
                [self = this->shared_from_this()](const boost::system::error_code& e) {
                    if (!e && self->socket_.is_open()) {
                        self->do_accept();
                    }
                });
            return;
        }
        auto id = ctx_->next_session_id.fetch_add(1, std::memory_order_relaxed);
        std::shared_ptr<Connection> conn;
        {
            std::lock_guard<std::mutex> guard{mtx_};
            if (stopping_) {
                return; // Not served: the socket closes here.
            }
            if (connections_.size() >= cfg_->max_connections) {
                ctx_->log->warn("connection_refused name={} reason=max-connections", cfg_->name);
            } else {
                std::weak_ptr<accept_loop> weak = this->shared_from_this();
                conn = make_(std::move(sock), id, [weak](uint64_t i) {
                    if (auto self = weak.lock()) {
                        self->forget(i);
                    }
                });
                connections_.emplace(id, conn);
                ctx_->connections->fetch_add(1, std::memory_order_relaxed);
            }
        }
        if (conn) {
            conn->start();
        }
        do_accept();
    }

    /// A connection closed: it leaves the table (and the node's count).
    void forget(uint64_t id) {
        std::lock_guard<std::mutex> guard{mtx_};
        if (connections_.erase(id) > 0) {
            ctx_->connections->fetch_sub(1, std::memory_order_relaxed);
        }
        if (connections_.empty()) {
            all_closed_.notify_all();
        }
    }

    boost::asio::io_context& ioc_;
    std::shared_ptr<server_context> ctx_;
    std::shared_ptr<const config::acceptor_config> cfg_;
    factory make_;
    /// The listening socket and the retry timer are touched only on this strand: with several
    /// io threads, an accept completing and shutdown() closing the socket never overlap.
    boost::asio::strand<boost::asio::io_context::executor_type> strand_;
    tcp::acceptor socket_;
    boost::asio::steady_timer retry_timer_;
    uint16_t port_ = 0;
    mutable std::mutex mtx_;
    std::condition_variable all_closed_;
    std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections_;
    /// Set by shutdown() under `mtx_`: no connection is added after it, so the ones shutdown()
    /// closes are all there are.
    bool stopping_ = false;
};

} // namespace actormq
