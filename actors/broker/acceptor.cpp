// SPDX-License-Identifier: Apache-2.0
#include "actors/broker/acceptor.hpp"

#include "actors/broker/connection.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <future>

namespace actormq {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct acceptor::state {
    state(asio::io_context& io,
          std::shared_ptr<server_context> c,
          std::shared_ptr<const config::acceptor_config> a,
          caf::actor_system& s,
          server_actor srv)
        : ioc(io),
          ctx(std::move(c)),
          cfg(std::move(a)),
          sys(s),
          server(std::move(srv)),
          socket(io) {}

    asio::io_context& ioc;
    std::shared_ptr<server_context> ctx;
    /// Shared with every connection, which reads it for its whole life.
    std::shared_ptr<const config::acceptor_config> cfg;
    caf::actor_system& sys;
    server_actor server;
    tcp::acceptor socket;
    std::mutex mtx;
    std::condition_variable all_closed;
    std::unordered_map<uint64_t, std::shared_ptr<connection>> connections;
    std::atomic<bool> stopping{false};
};

namespace {

using state_ptr = std::shared_ptr<acceptor::state>;

/// A connection's close hook: it holds the state weakly, so a connection that closes after
/// the acceptor and its state are gone does nothing.
void forget(const std::weak_ptr<acceptor::state>& weak, uint64_t id) {
    auto st = weak.lock();
    if (!st) {
        return;
    }
    std::lock_guard<std::mutex> guard{st->mtx};
    if (st->connections.erase(id) > 0) {
        st->ctx->connections->fetch_sub(1, std::memory_order_relaxed);
    }
    if (st->connections.empty()) {
        st->all_closed.notify_all();
    }
}

void do_accept(const state_ptr& st) {
    st->socket.async_accept(
        asio::make_strand(st->ioc), [st](const boost::system::error_code& ec, tcp::socket sock) {
            if (st->stopping) {
                return;
            }
            if (ec) {
                if (ec != asio::error::operation_aborted) {
                    st->ctx->log->warn("accept_failed name={} error=\"{}\"", st->cfg->name,
                                       ec.message());
                    do_accept(st);
                }
                return;
            }
            auto id = st->ctx->next_session_id.fetch_add(1, std::memory_order_relaxed);
            std::shared_ptr<connection> conn;
            {
                std::lock_guard<std::mutex> guard{st->mtx};
                if (st->connections.size() >= st->cfg->max_connections) {
                    st->ctx->log->warn("connection_refused name={} reason=max-connections",
                                       st->cfg->name);
                } else {
                    std::weak_ptr<acceptor::state> weak = st;
                    conn = std::make_shared<connection>(std::move(sock), id, st->ctx, st->cfg,
                                                        st->sys, st->server,
                                                        [weak](uint64_t i) { forget(weak, i); });
                    st->connections.emplace(id, conn);
                    st->ctx->connections->fetch_add(1, std::memory_order_relaxed);
                }
            }
            if (conn) {
                conn->start();
            }
            do_accept(st);
        });
}

} // namespace

acceptor::acceptor(asio::io_context& ioc,
                   std::shared_ptr<server_context> ctx,
                   config::acceptor_config cfg,
                   caf::actor_system& sys,
                   server_actor server)
    : state_(
        std::make_shared<state>(ioc,
                                std::move(ctx),
                                std::make_shared<const config::acceptor_config>(std::move(cfg)),
                                sys,
                                std::move(server))) {}

std::string acceptor::open() {
    const auto& cfg = *state_->cfg;
    auto& socket = state_->socket;
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(cfg.host, ec);
    if (ec) {
        return "invalid host '" + cfg.host + "': " + ec.message();
    }
    tcp::endpoint ep{addr, cfg.port};
    socket.open(ep.protocol(), ec);
    if (!ec) {
        socket.set_option(tcp::acceptor::reuse_address(true), ec);
    }
    if (!ec) {
        socket.bind(ep, ec);
    }
    if (!ec) {
        socket.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        return "cannot listen on " + cfg.host + ":" + std::to_string(cfg.port) + ": "
               + ec.message();
    }
    port_ = socket.local_endpoint().port();
    return {};
}

void acceptor::start() {
    const auto& cfg = *state_->cfg;
    state_->ctx->log->info("acceptor_listening name={} protocol={} host={} port={}", cfg.name,
                           cfg.protocol, cfg.host, port_);
    do_accept(state_);
}

const config::acceptor_config& acceptor::config() const {
    return *state_->cfg;
}

size_t acceptor::connection_count() const {
    std::lock_guard<std::mutex> guard{state_->mtx};
    return state_->connections.size();
}

void acceptor::shutdown() {
    auto st = state_;
    st->stopping = true;
    // Closed on an Asio thread (the socket is not thread-safe).
    std::promise<void> closed;
    asio::post(st->ioc, [st, &closed] {
        boost::system::error_code ignored;
        st->socket.close(ignored);
        closed.set_value();
    });
    closed.get_future().wait();
    std::unique_lock<std::mutex> guard{st->mtx};
    for (auto& [id, c] : st->connections) {
        c->post_shutdown();
    }
    if (!st->all_closed.wait_for(guard, std::chrono::seconds(5),
                                 [&st] { return st->connections.empty(); })) {
        // Their sessions still end: each session monitors the server actor, which stops next.
        st->ctx->log->warn("acceptor_shutdown_timeout name={} open_connections={}", st->cfg->name,
                           st->connections.size());
    }
}

} // namespace actormq
