// SPDX-License-Identifier: Apache-2.0
#include "actors/broker/acceptor.hpp"

#include "actors/broker/connection.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <future>

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
      socket_(ioc) {}

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
    do_accept();
}

void acceptor::do_accept() {
    socket_.async_accept(asio::make_strand(ioc_), [this](const boost::system::error_code& ec,
                                                         tcp::socket sock) {
        if (ec) {
            if (ec != asio::error::operation_aborted) {
                ctx_->log->warn("accept_failed name={} error=\"{}\"", cfg_.name, ec.message());
                do_accept();
            }
            return;
        }
        if (stopping_) {
            return;
        }
        auto id = ctx_->next_session_id.fetch_add(1, std::memory_order_relaxed);
        std::shared_ptr<connection> conn;
        {
            std::lock_guard<std::mutex> guard{mtx_};
            if (connections_.size() >= cfg_.max_connections) {
                ctx_->log->warn("connection_refused name={} reason=max-connections", cfg_.name);
            } else {
                conn = std::make_shared<connection>(std::move(sock), id, ctx_, cfg_, sys_,
                                                    server_, [this](uint64_t i) { forget(i); });
                connections_.emplace(id, conn);
                ctx_->connections->fetch_add(1, std::memory_order_relaxed);
            }
        }
        if (conn) {
            conn->start();
        }
        do_accept();
    });
}

void acceptor::forget(uint64_t id) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (connections_.erase(id) > 0) {
        ctx_->connections->fetch_sub(1, std::memory_order_relaxed);
    }
    if (connections_.empty()) {
        all_closed_.notify_all();
    }
}

size_t acceptor::connection_count() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return connections_.size();
}

void acceptor::shutdown() {
    stopping_ = true;
    // Closed on an Asio thread (the socket is not thread-safe); wait, since the caller may
    // destroy this acceptor next.
    std::promise<void> closed;
    asio::post(ioc_, [this, &closed] {
        boost::system::error_code ignored;
        socket_.close(ignored);
        closed.set_value();
    });
    closed.get_future().wait();
    std::unique_lock<std::mutex> guard{mtx_};
    for (auto& [id, c] : connections_) {
        c->post_shutdown();
    }
    all_closed_.wait_for(guard, std::chrono::seconds(5), [this] { return connections_.empty(); });
}

} // namespace actormq
