// SPDX-License-Identifier: Apache-2.0
#include "actors/broker/acceptor.hpp"

#include "actors/broker/connection.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>


namespace actormq {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

acceptor::acceptor(asio::io_context& ioc, std::shared_ptr<server_context> ctx,
                   config::acceptor_config cfg, caf::actor_system& sys, server_actor server)
    : ioc_(ioc),
      ctx_(std::move(ctx)),
      cfg_(std::move(cfg)),
      sys_(sys),
      server_(std::move(server)),
      strand_(asio::make_strand(ioc)),
      socket_(strand_),
      retry_timer_(strand_) {
    registry_->counter = ctx_->connections;
}

std::string acceptor::open() {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(cfg_.host, ec);
    if (ec) {
        return "invalid host '" + cfg_.host + "': " + ec.message();
    }
    tcp::endpoint ep{addr, cfg_.port};
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
        return "cannot listen on " + cfg_.host + ":" + std::to_string(cfg_.port) + ": "
               + ec.message();
    }
    port_ = socket_.local_endpoint().port();
    return {};
}

void acceptor::start() {
    ctx_->log->info("acceptor_listening name={} protocol={} host={} port={}", cfg_.name,
                    cfg_.protocol, cfg_.host, port_);
    {
        std::lock_guard<std::mutex> guard{registry_->mtx};
        accept_loop_running_ = true;
    }
    asio::post(strand_, [this] { do_accept(); });
}

void acceptor::do_accept() {
    socket_.async_accept(asio::make_strand(ioc_),
                         asio::bind_executor(strand_, [this](const boost::system::error_code& ec,
                                                             tcp::socket sock) {
                             on_accept(ec, std::move(sock));
                         }));
}

void acceptor::on_accept(const boost::system::error_code& ec, tcp::socket sock) {
    // The loop ends when shutdown() closed the socket (the pending accept then completes with
    // operation_aborted) or set `stopping`; nothing of this object is touched afterwards.
    if (ec == asio::error::operation_aborted || !socket_.is_open()) {
        return accept_loop_ended();
    }
    if (ec) {
        // Out of descriptors, or a client that gave up before accept: wait a little instead of
        // spinning on an error that repeats at once.
        ctx_->log->warn("accept_failed name={} error=\"{}\"", cfg_.name, ec.message());
        retry_timer_.expires_after(std::chrono::milliseconds(100));
        retry_timer_.async_wait([this](const boost::system::error_code& e) {
            if (e || !socket_.is_open()) {
                return accept_loop_ended();
            }
            do_accept();
        });
        return;
    }
    auto id = ctx_->next_session_id.fetch_add(1, std::memory_order_relaxed);
    std::shared_ptr<connection> conn;
    {
        auto& reg = *registry_;
        std::lock_guard<std::mutex> guard{reg.mtx};
        if (reg.stopping) {
            // shutdown() has begun: this client is not served (its socket closes here).
        } else if (reg.connections.size() >= cfg_.max_connections) {
            ctx_->log->warn("connection_refused name={} reason=max-connections", cfg_.name);
        } else {
            conn = std::make_shared<connection>(std::move(sock), id, ctx_, cfg_, sys_, server_,
                                                [reg = registry_](uint64_t i) { reg->forget(i); });
            reg.connections.emplace(id, conn);
            reg.counter->fetch_add(1, std::memory_order_relaxed);
        }
    }
    if (conn) {
        conn->start();
    }
    do_accept();
}

void acceptor::accept_loop_ended() {
    std::lock_guard<std::mutex> guard{registry_->mtx};
    accept_loop_running_ = false;
    accept_loop_done_.notify_all();
}

void acceptor::registry::forget(uint64_t id) {
    std::lock_guard<std::mutex> guard{mtx};
    if (connections.erase(id) > 0) {
        counter->fetch_sub(1, std::memory_order_relaxed);
    }
    if (connections.empty()) {
        all_closed.notify_all();
    }
}

size_t acceptor::connection_count() const {
    std::lock_guard<std::mutex> guard{registry_->mtx};
    return registry_->connections.size();
}

void acceptor::shutdown() {
    auto& reg = *registry_;
    {
        std::lock_guard<std::mutex> guard{reg.mtx};
        reg.stopping = true;
    }
    // The socket and the timer belong to the strand. Closing them ends the accept loop: its
    // pending handler runs once more (operation_aborted) and reports the end. That always
    // happens while the io threads run, which they do until the node has stopped every
    // acceptor, so this wait cannot hang.
    asio::post(strand_, [this] {
        boost::system::error_code ignored;
        socket_.close(ignored);
        retry_timer_.cancel();
    });
    std::unique_lock<std::mutex> guard{reg.mtx};
    accept_loop_done_.wait(guard, [this] { return !accept_loop_running_; });
    // No connection is added from here on; close those there are.
    for (auto& [id, c] : reg.connections) {
        c->post_shutdown();
    }
    // Bounded: a connection that does not close in time keeps only the registry alive, never
    // this acceptor (its close hook holds the registry).
    reg.all_closed.wait_for(guard, std::chrono::seconds(5), [&reg] {
        return reg.connections.empty();
    });
}

} // namespace actormq
