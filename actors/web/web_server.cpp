// SPDX-License-Identifier: Apache-2.0
// The node's HTTP server (docs/web.md). Everything here runs on the server's one io_context
// thread except the constructor, open/start/stop (the node's main thread) and the board
// listener (the status actor's thread), which only posts to the io_context.
#include "actors/web/web_server.hpp"

#include "actors/web/status_board.hpp"
#include "actors/web/status_page.hpp"
#include "actors/web/web_routes.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

namespace actormq {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

class http_session;
class ws_session;

/// The sequence number in an event's JSON text (0 if it has none), so a WebSocket client that
/// was sent a backlog does not get the same event again from the live feed.
uint64_t seq_of(const std::string& json) {
    auto pos = json.find("\"seq\":");
    if (pos == std::string::npos) {
        return 0;
    }
    return std::strtoull(json.c_str() + pos + 6, nullptr, 10);
}

std::string peer_of(const tcp::socket& s) {
    boost::system::error_code ec;
    auto ep = s.remote_endpoint(ec);
    return ec ? std::string{"?"} : ep.address().to_string() + ":" + std::to_string(ep.port());
}

} // namespace

struct web_server::impl {
    web_routes routes;
    std::shared_ptr<status_board> board;
    std::shared_ptr<spdlog::logger> log;
    std::string host;
    uint16_t requested_port = 0;
    uint16_t bound_port = 0;
    uint64_t listener_id = 0;
    bool stopped = false;

    // -- io_context thread only ---------------------------------------------------------------
    // Declared before the io_context: sessions destroyed with its pending handlers
    // unregister themselves from these maps.
    uint64_t next_session_id = 1;
    std::map<uint64_t, std::weak_ptr<http_session>> http_sessions;
    std::map<uint64_t, std::weak_ptr<ws_session>> ws_sessions;

    std::unique_ptr<net::io_context> ioc = std::make_unique<net::io_context>(1);
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
    std::unique_ptr<tcp::acceptor> acceptor = std::make_unique<tcp::acceptor>(*ioc);
    std::unique_ptr<net::steady_timer> retry_timer = std::make_unique<net::steady_timer>(*ioc);
    std::thread thread;

    impl(web_routes r, std::shared_ptr<status_board> b, std::shared_ptr<spdlog::logger> l)
        : routes(std::move(r)),
          board(std::move(b)),
          log(std::move(l)) {}

    size_t open_sessions() const { return http_sessions.size() + ws_sessions.size(); }

    void do_accept();
    void on_accept(boost::system::error_code ec, tcp::socket socket);
    void broadcast(const std::shared_ptr<const std::string>& msg, uint64_t seq);
    void close_all();
    void shutdown();
};

namespace {

/// One WebSocket client of /ws/events: gets each new event as one text message. Incoming
/// messages are read (to see pings and the close) and ignored.
class ws_session : public std::enable_shared_from_this<ws_session> {
public:
    ws_session(web_server::impl& srv, tcp::socket socket, uint64_t id)
        : srv_(srv),
          ws_(std::move(socket)),
          id_(id),
          peer_(peer_of(beast::get_lowest_layer(ws_).socket())) {}

    ~ws_session() { srv_.ws_sessions.erase(id_); }

    /// Completes the handshake of `req`; with `since`, first sends the stored events after it.
    void run(http::request<http::string_body> req, std::optional<uint64_t> since) {
        srv_.ws_sessions[id_] = weak_from_this();
        beast::get_lowest_layer(ws_).expires_never();
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(http::field::server, "actormq"); }));
        ws_.read_message_max(4096);
        ws_.async_accept(req, [self = shared_from_this(), since](beast::error_code ec) {
            self->on_accept(ec, since);
        });
    }

    /// Queues one event; drops the client when it has `ws_queue_max` new events queued (a
    /// slow reader must not grow the server's memory without bound). Events of the backlog
    /// (`?since=N`) do not count: the board bounds them already (status_board::capacity).
    void
    deliver(const std::shared_ptr<const std::string>& msg, uint64_t seq, bool backlog = false) {
        if (closed_ || !accepted_) {
            return;
        }
        if (seq != 0 && seq <= last_seq_) {
            return;
        }
        last_seq_ = std::max(last_seq_, seq);
        if (!backlog && queue_.size() - backlog_queued_ >= web_server::ws_queue_max) {
            srv_.log->warn("ws_client_dropped peer={} reason=queue_full queued={}", peer_,
                           queue_.size());
            close();
            return;
        }
        queue_.push_back({msg, backlog});
        backlog_queued_ += backlog ? 1 : 0;
        if (queue_.size() == 1) {
            do_write();
        }
    }

    /// Closes the TCP connection; pending operations complete with errors.
    void close() {
        closed_ = true;
        boost::system::error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
    }

private:
    void on_accept(beast::error_code ec, std::optional<uint64_t> since) {
        if (ec) {
            srv_.log->debug("ws_handshake_failed peer={} reason={}", peer_, ec.message());
            return;
        }
        accepted_ = true;
        srv_.log->debug("ws_open peer={} since={}", peer_, since ? std::to_string(*since) : "-");
        if (since) {
            send_backlog(*since);
        }
        do_read();
    }

    void send_backlog(uint64_t since) {
        auto doc = nlohmann::json::parse(srv_.board->events_json(since), nullptr, false);
        if (doc.is_discarded() || !doc.contains("events")) {
            return;
        }
        for (const auto& ev : doc["events"]) {
            auto seq = ev.value("seq", uint64_t{0});
            deliver(std::make_shared<const std::string>(ev.dump()), seq, true);
        }
    }

    void do_read() {
        ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
            if (ec) {
                self->srv_.log->debug("ws_closed peer={} reason={}", self->peer_, ec.message());
                self->closed_ = true;
                return;
            }
            self->buffer_.consume(self->buffer_.size());
            self->do_read();
        });
    }

    void do_write() {
        ws_.text(true);
        ws_.async_write(net::buffer(*queue_.front().text),
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                            self->backlog_queued_ -= self->queue_.front().backlog ? 1 : 0;
                            self->queue_.pop_front();
                            if (ec) {
                                self->close();
                                return;
                            }
                            if (!self->queue_.empty() && !self->closed_) {
                                self->do_write();
                            }
                        });
    }

    web_server::impl& srv_;
    websocket::stream<beast::tcp_stream> ws_;
    beast::flat_buffer buffer_;
    /// One queued event and whether it came from the backlog.
    struct queued {
        std::shared_ptr<const std::string> text;
        bool backlog;
    };
    std::deque<queued> queue_;
    size_t backlog_queued_ = 0;
    uint64_t id_;
    uint64_t last_seq_ = 0;
    std::string peer_;
    bool accepted_ = false;
    bool closed_ = false;
};

/// One HTTP connection: reads requests (with limits and a timeout), answers them in order, and
/// hands a /ws/events upgrade over to a `ws_session`.
class http_session : public std::enable_shared_from_this<http_session> {
public:
    http_session(web_server::impl& srv, tcp::socket socket, uint64_t id)
        : srv_(srv),
          stream_(std::move(socket)),
          id_(id),
          peer_(peer_of(stream_.socket())) {}

    ~http_session() { srv_.http_sessions.erase(id_); }

    void run() {
        srv_.http_sessions[id_] = weak_from_this();
        do_read();
    }

    void close() {
        boost::system::error_code ignored;
        stream_.socket().close(ignored);
    }

private:
    void do_read() {
        parser_.emplace();
        parser_->header_limit(static_cast<uint32_t>(web_server::header_bytes_max));
        parser_->body_limit(web_server::body_bytes_max);
        stream_.expires_after(std::chrono::seconds(web_server::request_timeout_s));
        http::async_read(
            stream_, buffer_, *parser_,
            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec) {
            on_read_error(ec);
            return;
        }
        auto req = parser_->release();
        if (websocket::is_upgrade(req)) {
            upgrade(std::move(req));
            return;
        }
        auto res = srv_.routes.handle(req, *srv_.board);
        srv_.log->debug("http_request peer={} method={} target={} status={}", peer_,
                        std::string{req.method_string()}, std::string{req.target()},
                        res.result_int());
        write(std::move(res));
    }

    /// Maps a read error to an answer: limits and malformed requests get their status and
    /// the connection is closed; a closed or timed-out connection is just closed.
    void on_read_error(beast::error_code ec) {
        static const beast::error_code any_http_error = http::error::end_of_stream;
        if (ec == http::error::end_of_stream || ec == beast::error::timeout
            || ec.category() != any_http_error.category()) {
            srv_.log->debug("http_closed peer={} reason={}", peer_, ec.message());
            close();
            return;
        }
        auto status = http::status::bad_request;
        if (ec == http::error::header_limit) {
            status = http::status::request_header_fields_too_large;
        } else if (ec == http::error::body_limit) {
            status = http::status::payload_too_large;
        }
        srv_.log->debug("http_bad_request peer={} status={} reason={}", peer_,
                        static_cast<int>(status), ec.message());
        auto res = web_routes::error(status, ec.message(), 11, false);
        write(std::move(res));
    }

    void upgrade(http::request<http::string_body> req) {
        auto decision = srv_.routes.check_upgrade(req);
        if (decision.refusal) {
            write(std::move(*decision.refusal));
            return;
        }
        stream_.expires_never();
        auto ws = std::make_shared<ws_session>(srv_, stream_.release_socket(), id_);
        // The WebSocket takes this connection's id and its place in the connection count;
        // this session ends with this handler.
        srv_.http_sessions.erase(id_);
        id_ = 0;
        ws->run(std::move(req), decision.since);
    }

    void write(http::response<http::string_body> res) {
        res_ = std::make_shared<http::response<http::string_body>>(std::move(res));
        http::async_write(
            stream_, *res_,
            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_write(ec); });
    }

    void on_write(beast::error_code ec) {
        bool keep = !ec && res_->keep_alive();
        res_.reset();
        if (!keep) {
            boost::system::error_code ignored;
            stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
            close();
            return;
        }
        do_read();
    }

    web_server::impl& srv_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::shared_ptr<http::response<http::string_body>> res_;
    uint64_t id_;
    std::string peer_;
};

} // namespace

// -- web_server::impl ---------------------------------------------------------------------------

void web_server::impl::do_accept() {
    acceptor->async_accept(*ioc, [this](boost::system::error_code ec, tcp::socket socket) {
        on_accept(ec, std::move(socket));
    });
}

void web_server::impl::on_accept(boost::system::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor->is_open()) {
        return;
    }
    if (ec) {
        // E.g. out of file descriptors: try again shortly instead of spinning.
        log->warn("http_accept_failed reason={}", ec.message());
        retry_timer->expires_after(std::chrono::milliseconds(100));
        retry_timer->async_wait([this](boost::system::error_code wait_ec) {
            if (!wait_ec) {
                do_accept();
            }
        });
        return;
    }
    if (open_sessions() >= web_server::connections_max) {
        log->debug("http_refused peer={} reason=connections_max", peer_of(socket));
        boost::system::error_code ignored;
        socket.close(ignored);
    } else {
        std::make_shared<http_session>(*this, std::move(socket), next_session_id++)->run();
    }
    do_accept();
}

void web_server::impl::broadcast(const std::shared_ptr<const std::string>& msg, uint64_t seq) {
    // Delivering may close a session; collect first so the map is not changed while iterated.
    std::vector<std::shared_ptr<ws_session>> targets;
    for (auto& [id, weak] : ws_sessions) {
        if (auto s = weak.lock()) {
            targets.push_back(std::move(s));
        }
    }
    for (auto& s : targets) {
        s->deliver(msg, seq);
    }
}

void web_server::impl::close_all() {
    boost::system::error_code ignored;
    acceptor->close(ignored);
    retry_timer->cancel();
    std::vector<std::shared_ptr<http_session>> hs;
    for (auto& [id, weak] : http_sessions) {
        if (auto s = weak.lock()) {
            hs.push_back(std::move(s));
        }
    }
    std::vector<std::shared_ptr<ws_session>> ws;
    for (auto& [id, weak] : ws_sessions) {
        if (auto s = weak.lock()) {
            ws.push_back(std::move(s));
        }
    }
    for (auto& s : hs) {
        s->close();
    }
    for (auto& s : ws) {
        s->close();
    }
}

void web_server::impl::shutdown() {
    if (stopped) {
        return;
    }
    stopped = true;
    if (listener_id != 0) {
        // After this returns the listener neither runs nor is called again (status_board.cpp).
        board->unsubscribe(listener_id);
        listener_id = 0;
    }
    if (thread.joinable()) {
        net::post(*ioc, [this] {
            close_all();
            ioc->stop();
        });
        thread.join();
    }
    // Destroying the io_context destroys the pending handlers and with them the sessions.
    retry_timer.reset();
    acceptor.reset();
    work.reset();
    ioc.reset();
    log->info("web_stopped port={}", bound_port);
}

// -- web_server ---------------------------------------------------------------------------------

web_server::web_server(const config::node_config& cfg,
                       std::shared_ptr<status_board> board,
                       std::shared_ptr<spdlog::logger> log) {
    if (!log) {
        log = std::make_shared<spdlog::logger>("http",
                                               std::make_shared<spdlog::sinks::null_sink_mt>());
    }
    impl_ = std::make_unique<impl>(web_routes{cfg.security}, std::move(board), std::move(log));
    impl_->host = cfg.web.host;
    impl_->requested_port = cfg.web.port;
}

web_server::~web_server() {
    stop();
}

std::string web_server::open() {
    auto& d = *impl_;
    boost::system::error_code ec;
    auto addr = net::ip::make_address(d.host, ec);
    if (ec) {
        // Not a literal address: resolve it (on the caller's thread, once, before serving).
        tcp::resolver resolver{*d.ioc};
        auto results = resolver.resolve(d.host, std::to_string(d.requested_port), ec);
        if (ec || results.empty()) {
            return "cannot resolve web host " + d.host + ": " + ec.message();
        }
        addr = results.begin()->endpoint().address();
    }
    tcp::endpoint ep{addr, d.requested_port};
    d.acceptor->open(ep.protocol(), ec);
    if (!ec) {
        d.acceptor->set_option(net::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
        d.acceptor->bind(ep, ec);
    }
    if (!ec) {
        d.acceptor->listen(net::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        boost::system::error_code ignored;
        d.acceptor->close(ignored);
        return "cannot listen on " + d.host + ":" + std::to_string(d.requested_port) + ": "
               + ec.message();
    }
    d.bound_port = d.acceptor->local_endpoint().port();
    return "";
}

uint16_t web_server::port() const {
    return impl_->bound_port;
}

void web_server::start() {
    auto& d = *impl_;
    if (d.stopped || d.thread.joinable() || !d.acceptor->is_open()) {
        return;
    }
    impl* self = impl_.get();
    d.listener_id = d.board->subscribe([self](const std::string& json) {
        auto msg = std::make_shared<const std::string>(json);
        auto seq = seq_of(json);
        net::post(*self->ioc, [self, msg, seq] { self->broadcast(msg, seq); });
    });
    d.work.emplace(d.ioc->get_executor());
    d.do_accept();
    d.thread = std::thread{[self] {
        self->ioc->run();
    }};
    d.log->info("web_listening host={} port={}", d.host, d.bound_port);
}

void web_server::stop() {
    if (impl_) {
        impl_->shutdown();
    }
}

} // namespace actormq
