// SPDX-License-Identifier: Apache-2.0
// The web server (actors/web/web_server.cpp) over real loopback sockets, fed by a status_board
// that the test fills itself: no node, no actors.
#include "actors/web/status_board.hpp"
#include "actors/web/web_server.hpp"
#include "tests/support/web_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <doctest/doctest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using actormq::status_board;
using actormq::web_server;
using actormq::test::deadline_t;
using actormq::test::guest_auth;
using actormq::test::http_exchange;
using actormq::test::http_request;
using actormq::test::in;
using actormq::test::raw_client;
using actormq::test::wait_until;
using actormq::test::ws_client;

deadline_t soon() {
    return in(std::chrono::seconds(10));
}

/// A board and a started server on 127.0.0.1 with an OS-chosen port and the user guest/guest.
struct fixture {
    std::shared_ptr<status_board> board = std::make_shared<status_board>();
    std::unique_ptr<web_server> server;

    explicit fixture(bool security = true) {
        actormq::config::node_config cfg;
        cfg.web.port = 0;
        cfg.security.security_enabled = security;
        cfg.security.users.push_back({"guest", "guest", {}});
        board->publish(R"({"node":{"name":"unit"},"connections":2})", "actormq_connections 2\n");
        server = std::make_unique<web_server>(cfg, board, nullptr);
        auto err = server->open();
        REQUIRE_MESSAGE(err.empty(), err);
        REQUIRE(server->port() != 0);
        server->start();
    }
};

/// Sends `request` on a new connection and reads the answer until the server closes.
raw_client exchange(uint16_t port, const std::string& request) {
    auto c = http_exchange(port, request, soon());
    REQUIRE(c.connected());
    CHECK_MESSAGE(c.status() != 0, "no answer; got: ", c.text());
    return c;
}

} // namespace

TEST_CASE("web_server: GET /api/status with credentials: 200 with the board's JSON") {
    fixture f;
    auto c = exchange(f.server->port(), http_request("/api/status"));
    CHECK(c.status() == 200);
    CHECK(c.text().find("Content-Type: application/json\r\n") != std::string::npos);
    auto doc = nlohmann::json::parse(c.body());
    CHECK(doc["connections"] == 2);
}

TEST_CASE("web_server: the page, /api/events and /metrics are served") {
    fixture f;
    f.board->add_event(1, R"({"seq":1,"kind":"started","message":"up"})");
    auto page = exchange(f.server->port(), http_request("/"));
    CHECK(page.status() == 200);
    CHECK(page.body().find("<!DOCTYPE html>") == 0);
    auto events = exchange(f.server->port(), http_request("/api/events?since=0"));
    CHECK(nlohmann::json::parse(events.body())["last"] == 1);
    auto metrics = exchange(f.server->port(), http_request("/metrics"));
    CHECK(metrics.text().find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
    CHECK(metrics.body() == "actormq_connections 2\n");
}

TEST_CASE("web_server: keep-alive: two requests on one connection are answered in order") {
    fixture f;
    raw_client c{f.server->port()};
    REQUIRE(c.connected());
    std::string first = "GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: ";
    first += std::string{guest_auth} + "\r\n\r\n";
    REQUIRE(c.send(first + http_request("/nope")));
    CHECK(c.read_to_close(soon()));
    auto second = c.text().find("HTTP/1.1 404");
    CHECK(c.text().find("HTTP/1.1 200") == 0);
    CHECK(second != std::string::npos);
}

TEST_CASE("web_server: errors: 401 without credentials, 404, 405 and 426") {
    fixture f;
    auto denied = exchange(f.server->port(), http_request("/api/status", nullptr));
    CHECK(denied.status() == 401);
    CHECK(denied.text().find("WWW-Authenticate: Basic realm=\"actormq\"\r\n") != std::string::npos);
    auto wrong = exchange(f.server->port(), http_request("/", "Basic Z3Vlc3Q6eA==")); // guest:x
    CHECK(wrong.status() == 401);
    CHECK(exchange(f.server->port(), http_request("/missing")).status() == 404);
    auto del = exchange(f.server->port(), http_request("/api/status", guest_auth, "DELETE"));
    CHECK(del.status() == 405);
    CHECK(del.text().find("Allow: GET, HEAD\r\n") != std::string::npos);
    CHECK(exchange(f.server->port(), http_request("/metrics", guest_auth, "BREW")).status() == 405);
    CHECK(exchange(f.server->port(), http_request("/ws/events")).status() == 426);
}

TEST_CASE("web_server: with security disabled no credentials are needed") {
    fixture f{false};
    CHECK(exchange(f.server->port(), http_request("/api/status", nullptr)).status() == 200);
}

TEST_CASE("web_server: malformed requests get 400 and the connection is closed") {
    fixture f;
    CHECK(exchange(f.server->port(), "\x01\x02garbage\r\n\r\n").status() == 400);
    CHECK(exchange(f.server->port(), "GET /api/status HTTP/9.9\r\n\r\n").status() == 400);
    CHECK(exchange(f.server->port(), "GET /api/status HTTP/1.1\r\nBad Header\r\n\r\n").status()
          == 400);
    CHECK(
        exchange(f.server->port(), "GET /api/status HTTP/1.1\r\nContent-Length: x\r\n\r\n").status()
        == 400);
    // The server still serves afterwards.
    CHECK(exchange(f.server->port(), http_request("/api/status")).status() == 200);
}

TEST_CASE("web_server: a 9 KiB header block gets 431, 8 KiB minus a little is served") {
    fixture f;
    auto big = http_request("/api/status");
    big.insert(big.size() - 2, "X-Filler: " + std::string(9 * 1024, 'a') + "\r\n");
    CHECK(exchange(f.server->port(), big).status() == 431);
    auto fits = http_request("/api/status");
    fits.insert(fits.size() - 2,
                "X-Filler: " + std::string(web_server::header_bytes_max - fits.size() - 16, 'a')
                    + "\r\n");
    REQUIRE(fits.size() < web_server::header_bytes_max);
    CHECK(exchange(f.server->port(), fits).status() == 200);
}

TEST_CASE("web_server: a body over 64 KiB gets 413; 64 KiB exactly is read") {
    fixture f;
    std::string head = "POST /api/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Authorization: "
                       + std::string{guest_auth} + "\r\nContent-Length: ";
    auto over = head + std::to_string(web_server::body_bytes_max + 1) + "\r\n\r\n";
    CHECK(exchange(f.server->port(), over).status() == 413);
    auto exact = head + std::to_string(web_server::body_bytes_max) + "\r\n\r\n"
                 + std::string(web_server::body_bytes_max, 'b');
    CHECK(exchange(f.server->port(), exact).status() == 405); // read whole, then refused
}

TEST_CASE("web_server: WebSocket: receives each event added to the board") {
    fixture f;
    ws_client ws;
    REQUIRE(ws.connect(f.server->port(), "/ws/events"));
    // The session registers when its handshake completes; events added before may be missed,
    // so keep adding until the first arrives.
    uint64_t seq = 0;
    std::optional<std::string> got;
    bool arrived = wait_until(soon(), [&] {
        ++seq;
        f.board->add_event(seq, R"({"seq":)" + std::to_string(seq) + R"(,"kind":"failover"})");
        got = ws.read(in(std::chrono::milliseconds(100)));
        return got.has_value();
    });
    REQUIRE(arrived);
    CHECK(nlohmann::json::parse(*got)["kind"] == "failover");
    f.board->add_event(seq + 1, R"({"seq":)" + std::to_string(seq + 1) + R"(,"kind":"failback"})");
    // Drain any earlier events that were still in flight, then expect the new one.
    std::optional<std::string> next;
    bool found = wait_until(soon(), [&] {
        next = ws.read(soon());
        return next && nlohmann::json::parse(*next)["seq"] == seq + 1;
    });
    CHECK(found);
    CHECK(nlohmann::json::parse(*next)["kind"] == "failback");
}

TEST_CASE("web_server: WebSocket with ?since=N: first the stored events after N, no duplicates") {
    fixture f;
    for (uint64_t i = 1; i <= 3; ++i) {
        f.board->add_event(i, R"({"seq":)" + std::to_string(i) + R"(,"kind":"started"})");
    }
    ws_client ws;
    REQUIRE(ws.connect(f.server->port(), "/ws/events?since=1"));
    std::vector<uint64_t> seqs;
    for (int i = 0; i < 2; ++i) {
        auto m = ws.read(soon());
        REQUIRE(m.has_value());
        seqs.push_back(nlohmann::json::parse(*m)["seq"].get<uint64_t>());
    }
    CHECK(seqs == std::vector<uint64_t>{2, 3});
    f.board->add_event(4, R"({"seq":4,"kind":"error"})");
    auto m = ws.read(soon());
    REQUIRE(m.has_value());
    CHECK(nlohmann::json::parse(*m)["seq"] == 4);
}

TEST_CASE("web_server: WebSocket without credentials is refused with 401") {
    fixture f;
    ws_client ws;
    CHECK_FALSE(ws.connect(f.server->port(), "/ws/events", nullptr));
    CHECK(ws.handshake_error == websocket::error::upgrade_declined);
    // The same upgrade by hand, to see the status.
    auto c = exchange(f.server->port(),
                      "GET /ws/events HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n");
    CHECK(c.status() == 401);
    CHECK(c.text().find("WWW-Authenticate: Basic realm=\"actormq\"") != std::string::npos);
}

TEST_CASE("web_server: a WebSocket client that does not read is dropped at the queue limit") {
    fixture f;
    ws_client ws;
    REQUIRE(ws.connect(f.server->port(), "/ws/events?since=0"));
    // Big events fill the socket buffers quickly; then the server's queue fills and it drops
    // the client instead of keeping everything.
    const std::string filler(16 * 1024, 'x');
    const uint64_t total = 2000;
    for (uint64_t i = 1; i <= total; ++i) {
        f.board->add_event(i, R"({"seq":)" + std::to_string(i) + R"(,"kind":"warning","message":")"
                                  + filler + "\"}");
    }
    uint64_t received = 0;
    while (ws.read(soon())) {
        ++received;
    }
    CHECK(ws.ended);
    CHECK(received < total);
}

TEST_CASE("web_server: WebSocket with ?since=0 gets a whole board's backlog, beyond the queue "
          "limit") {
    fixture f;
    const uint64_t stored = actormq::status_board::capacity;
    static_assert(actormq::status_board::capacity > web_server::ws_queue_max);
    for (uint64_t i = 1; i <= stored; ++i) {
        f.board->add_event(i, R"({"seq":)" + std::to_string(i) + R"(,"kind":"warning"})");
    }
    ws_client ws;
    REQUIRE(ws.connect(f.server->port(), "/ws/events?since=0"));
    uint64_t expected = 1;
    while (expected <= stored) {
        auto m = ws.read(soon());
        REQUIRE_MESSAGE(m.has_value(), "event ", expected, " did not arrive");
        REQUIRE(nlohmann::json::parse(*m)["seq"] == expected);
        ++expected;
    }
    f.board->add_event(stored + 1, R"({"seq":)" + std::to_string(stored + 1) + "}");
    auto m = ws.read(soon());
    REQUIRE(m.has_value());
    CHECK(nlohmann::json::parse(*m)["seq"] == stored + 1);
}

TEST_CASE("web_server: closed WebSockets give their connection slots back") {
    fixture f;
    // More WebSockets one after the other than connections_max at once.
    for (size_t i = 0; i < web_server::connections_max + 20; ++i) {
        ws_client ws;
        REQUIRE_MESSAGE(ws.connect(f.server->port(), "/ws/events"), "WebSocket ", i, ": ",
                        ws.handshake_error.message());
    }
    bool served = wait_until(soon(), [&] {
        auto c = http_exchange(f.server->port(), http_request("/api/status"), soon());
        return c.status() == 200;
    });
    CHECK(served);
}

TEST_CASE("web_server: connections_max: the connection over the limit is closed at once") {
    fixture f;
    std::vector<std::unique_ptr<raw_client>> held;
    for (size_t i = 0; i < web_server::connections_max; ++i) {
        held.push_back(std::make_unique<raw_client>(f.server->port()));
        REQUIRE(held.back()->connected());
    }
    // Once the server has taken all of them, one more is closed without an answer.
    raw_client extra{f.server->port()};
    REQUIRE(extra.connected());
    CHECK(extra.read_to_close(soon()));
    CHECK(extra.text().empty());
    held.pop_back(); // frees a slot
    bool served = wait_until(soon(), [&] {
        raw_client c{f.server->port()};
        return c.send(http_request("/api/status")) && c.read_to_close(soon()) && c.status() == 200;
    });
    CHECK(served);
}

TEST_CASE("web_server: stop closes open HTTP and WebSocket connections and is idempotent") {
    fixture f;
    raw_client idle{f.server->port()};
    REQUIRE(idle.connected());
    ws_client ws;
    REQUIRE(ws.connect(f.server->port(), "/ws/events"));
    f.server->stop();
    CHECK(idle.read_to_close(soon()));
    CHECK_FALSE(ws.read(soon()).has_value());
    CHECK(ws.ended);
    f.server->stop();
    raw_client after{f.server->port()};
    CHECK_FALSE(after.connected());
}
