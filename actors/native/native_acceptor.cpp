// SPDX-License-Identifier: Apache-2.0
// The native acceptor: STOMP's acceptor loop (actors/broker/acceptor.cpp, copied in its shape
// because that file is STOMP's own) around native connections.
#include "actors/native/native_acceptor.hpp"

#include "actors/native/native_connection.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <condition_variable>
#include <future>
#include <mutex>
#include <unordered_map>

namespace actormq {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct native_acceptor::state {
    state(asio::io_context& io,
          std::shared_ptr<server_context> c,
          std::shared_ptr<const config::acceptor_config> a,
          caf::actor_system& s,
          server_actor srv,
          std::shared_ptr<native_topology_feed> t)
        : ioc(io),
          ctx(std::move(c)),
          cfg(std::move(a)),
          sys(s),
          server(std::move(srv)),
          topology(std::move(t)),
          strand(asio::make_strand(io)),
          socket(strand),
          retry_timer(strand) {}

    asio::io_context& ioc;
    std::shared_ptr<server_context> ctx;
    std::shared_ptr<const config::acceptor_config> cfg;
    caf::actor_system& sys;
    server_actor server;
    /// The node's native topology (null: none), and this acceptor's subscription to it.
    std::shared_ptr<native_topology_feed> topology;
    uint64_t topology_subscription = 0;
    /// Sessions kept for reattach, shared by every connection of this acceptor.
    std::shared_ptr<native_registry> registry = std::make_shared<native_registry>();
    asio::strand<asio::io_context::executor_type> strand;
    tcp::acceptor socket;
    asio::steady_timer retry_timer;
    mutable std::mutex mtx;
    std::condition_variable all_closed;
    std::unordered_map<uint64_t, std::shared_ptr<native_connection>> connections;
    bool stopping = false;
};

namespace {

using state_ptr = std::shared_ptr<native_acceptor::state>;

void forget(const std::weak_ptr<native_acceptor::state>& weak, uint64_t id) {
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

void do_accept(const state_ptr& st);

void on_accept(const state_ptr& st, const boost::system::error_code& ec, tcp::socket sock) {
    if (ec == asio::error::operation_aborted || !st->socket.is_open()) {
        return;
    }
    if (ec) {
        // Out of descriptors, or a client that gave up before accept: retry after a pause.
        st->ctx->log->warn("accept_failed name={} error=\"{}\"", st->cfg->name, ec.message());
        st->retry_timer.expires_after(std::chrono::milliseconds(100));
        st->retry_timer.async_wait([st](const boost::system::error_code& e) {
            if (!e && st->socket.is_open()) {
                do_accept(st);
            }
        });
        return;
    }
    auto id = st->ctx->next_session_id.fetch_add(1, std::memory_order_relaxed);
    std::shared_ptr<native_connection> conn;
    {
        std::lock_guard<std::mutex> guard{st->mtx};
        if (st->stopping) {
            return;
        }
        if (st->connections.size() >= st->cfg->max_connections) {
            st->ctx->log->warn("connection_refused name={} reason=max-connections", st->cfg->name);
        } else {
            std::weak_ptr<native_acceptor::state> weak = st;
            conn = std::make_shared<native_connection>(
                std::move(sock), id, st->ctx, st->cfg, st->sys, st->server, st->registry,
                [weak](uint64_t i) { forget(weak, i); }, st->topology);
            st->connections.emplace(id, conn);
            st->ctx->connections->fetch_add(1, std::memory_order_relaxed);
        }
    }
    if (conn) {
        conn->start();
    }
    do_accept(st);
}

void do_accept(const state_ptr& st) {
    st->socket.async_accept(
        asio::make_strand(st->ioc),
        asio::bind_executor(st->strand,
                            [st](const boost::system::error_code& ec, tcp::socket sock) {
                                on_accept(st, ec, std::move(sock));
                            }));
}

} // namespace

native_acceptor::native_acceptor(asio::io_context& ioc,
                                 std::shared_ptr<server_context> ctx,
                                 config::acceptor_config cfg,
                                 caf::actor_system& sys,
                                 server_actor server,
                                 std::shared_ptr<native_topology_feed> topology)
    : state_(
        std::make_shared<state>(ioc,
                                std::move(ctx),
                                std::make_shared<const config::acceptor_config>(std::move(cfg)),
                                sys,
                                std::move(server),
                                std::move(topology))) {}

std::string native_acceptor::open() {
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

void native_acceptor::start() {
    const auto& cfg = *state_->cfg;
    state_->ctx->log->info("acceptor_listening name={} protocol={} host={} port={}", cfg.name,
                           cfg.protocol, cfg.host, port_);
    if (state_->topology) {
        // §12: every change goes to every connection; each sends it only once authenticated.
        std::weak_ptr<state> weak = state_;
        state_->topology_subscription =
            state_->topology->subscribe([weak](const native::topology& t) {
                auto st = weak.lock();
                if (!st) {
                    return;
                }
                std::lock_guard<std::mutex> guard{st->mtx};
                for (auto& [id, c] : st->connections) {
                    c->post_topology(t);
                }
            });
    }
    asio::post(state_->strand, [st = state_] { do_accept(st); });
}

size_t native_acceptor::connection_count() const {
    std::lock_guard<std::mutex> guard{state_->mtx};
    return state_->connections.size();
}

void native_acceptor::shutdown() {
    auto st = state_;
    if (st->topology && st->topology_subscription != 0) {
        st->topology->unsubscribe(st->topology_subscription);
        st->topology_subscription = 0;
    }
    {
        std::lock_guard<std::mutex> guard{st->mtx};
        st->stopping = true;
    }
    std::promise<void> closed;
    asio::post(st->strand, [st, &closed] {
        boost::system::error_code ignored;
        st->socket.close(ignored);
        st->retry_timer.cancel();
        closed.set_value();
    });
    closed.get_future().wait();
    std::unique_lock<std::mutex> guard{st->mtx};
    for (auto& [id, c] : st->connections) {
        c->post_shutdown();
    }
    if (!st->all_closed.wait_for(guard, std::chrono::seconds(5),
                                 [&st] { return st->connections.empty(); })) {
        st->ctx->log->warn("acceptor_shutdown_timeout name={} open_connections={}", st->cfg->name,
                           st->connections.size());
    }
    // Detached sessions have no connection to close them; they end with the server actor,
    // which each of them monitors.
}

} // namespace actormq
