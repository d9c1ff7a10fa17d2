// SPDX-License-Identifier: Apache-2.0
// Process tests of the STOMP connection: CONNECT, version negotiation, authentication,
// heart-beats and DISCONNECT, against a real actormq-node.
#include "support/process_fixture.hpp"

#include <doctest/doctest.h>

namespace actormq::test {

namespace {

/// Connects a fresh client and returns the server's answer to CONNECT.
stomp::frame try_connect(stomp_client& c,
                         const node_process& node,
                         const std::string& login,
                         const std::string& passcode,
                         const std::string& version = "1.2") {
    REQUIRE_MESSAGE(c.connect_tcp(node.port()), c.last_error());
    return c.connect_stomp(login, passcode, version);
}

} // namespace

TEST_CASE("stomp: connect: CONNECTED names version, server, session and the acceptor heart-beat") {
    ACTORMQ_START_NODE(node, node_config("heart-beat-send-ms = 1234\n"
                                         "heart-beat-receive-ms = 5678\n"));
    stomp_client c;
    auto f = try_connect(c, node, "guest", "guest");
    REQUIRE_MESSAGE(f.cmd == command::connected, describe(f));
    CHECK(header_of(f, "version") == "1.2");
    CHECK_FALSE(header_of(f, "server").empty());
    CHECK_FALSE(header_of(f, "session").empty());
    CHECK(header_of(f, "heart-beat") == "1234,5678");
}

TEST_CASE("stomp: connect: sessions get distinct session ids") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client a;
    stomp_client b;
    auto fa = try_connect(a, node, "guest", "guest");
    auto fb = try_connect(b, node, "guest", "guest");
    REQUIRE(fa.cmd == command::connected);
    REQUIRE(fb.cmd == command::connected);
    CHECK(header_of(fa, "session") != header_of(fb, "session"));
}

TEST_CASE("stomp: connect: negotiates the highest version both sides speak") {
    ACTORMQ_START_NODE(node, node_config());
    struct expectation {
        std::string accept;
        std::string version;
    };
    for (const auto& e : std::vector<expectation>{{"1.0,1.1", "1.1"},
                                                  {"1.1,1.2", "1.2"},
                                                  {"1.2,1.0", "1.2"},
                                                  {"1.0", "1.0"},
                                                  {"1.1,2.0", "1.1"}}) {
        CAPTURE(e.accept);
        stomp_client c;
        auto f = try_connect(c, node, "guest", "guest", e.accept);
        REQUIRE_MESSAGE(f.cmd == command::connected, describe(f));
        CHECK(header_of(f, "version") == e.version);
        // STOMP 1.0 has no heart-beating; 1.1 and 1.2 answer with the server's intervals.
        CHECK(has_header(f, "heart-beat") == (e.version != "1.0"));
    }
}

TEST_CASE("stomp: connect: a CONNECT without accept-version is a STOMP 1.0 client") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    auto f = try_connect(c, node, "guest", "guest", "");
    REQUIRE_MESSAGE(f.cmd == command::connected, describe(f));
    CHECK(header_of(f, "version") == "1.0");
    CHECK_FALSE(has_header(f, "heart-beat"));
}

TEST_CASE("stomp: connect: no common version is refused with ERROR and close") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    REQUIRE(c.connect_tcp(node.port()));
    auto f = c.connect_stomp("guest", "guest", "2.0,3.1");
    REQUIRE_MESSAGE(f.cmd == command::error, describe(f));
    CHECK_FALSE(header_of(f, "message").empty());
    // STOMP 1.2, "Protocol Negotiation": the ERROR names the versions the server speaks.
    CHECK_MESSAGE(header_of(f, "version") == "1.0,1.1,1.2", describe(f));
    CHECK(c.closed_by_peer(soon()));
    expect_serving(node);
}

TEST_CASE("stomp: connect: the STOMP command is accepted like CONNECT") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    REQUIRE(c.connect_tcp(node.port()));
    REQUIRE(c.send(command::stomp, {{"accept-version", "1.2"},
                                    {"host", "localhost"},
                                    {"login", "guest"},
                                    {"passcode", "guest"}}));
    auto f = c.receive(soon());
    REQUIRE(f.has_value());
    REQUIRE_MESSAGE(f->cmd == command::connected, describe(*f));
    CHECK(header_of(*f, "version") == "1.2");
    CHECK(c.receipt_barrier());
}

TEST_CASE("stomp: auth: a wrong passcode, an unknown user or no login is refused and closed") {
    ACTORMQ_START_NODE(node, node_config());
    struct attempt {
        std::string login;
        std::string passcode;
    };
    for (const auto& a : std::vector<attempt>{{"guest", "wrong"}, {"nobody", "guest"}, {"", ""}}) {
        CAPTURE(a.login);
        CAPTURE(a.passcode);
        stomp_client c;
        auto f = try_connect(c, node, a.login, a.passcode);
        REQUIRE_MESSAGE(f.cmd == command::error, describe(f));
        CHECK_MESSAGE(header_of(f, "message").rfind("authentication failed", 0) == 0, describe(f));
        CHECK_MESSAGE(c.closed_by_peer(soon()), "the server did not close the connection");
    }
    expect_serving(node);
}

TEST_CASE("stomp: connect: frames to a STOMP 1.0 client are never escaped, ERROR at CONNECT "
          "included") {
    ACTORMQ_START_NODE(node, node_config());
    {
        // 1.0 has no escaping: the ':' of the message reaches the client as ':', not '\\c'.
        stomp_client c;
        auto f = try_connect(c, node, "guest", "wrong", "");
        REQUIRE_MESSAGE(f.cmd == command::error, describe(f));
        CHECK_MESSAGE(header_of(f, "message")
                          == "authentication failed: unknown user or wrong passcode",
                      describe(f));
    }
    {
        // After CONNECT too: a header value with ':' and '\\' goes out as it is.
        stomp_client c;
        auto f = try_connect(c, node, "guest", "guest", "");
        REQUIRE_MESSAGE(f.cmd == command::connected, describe(f));
        subscribe(c, "/queue/plain.10", "s");
        send_to(c, "/queue/plain.10", "body", {{"note", "a:b\\c"}});
        auto m = expect_message(c);
        CHECK_MESSAGE(header_of(m, "note") == "a:b\\c", describe(m));
    }
    {
        // A 1.2 client still gets its escapes (the parser undoes them).
        stomp_client c;
        auto f = try_connect(c, node, "guest", "wrong", "1.2");
        REQUIRE_MESSAGE(f.cmd == command::error, describe(f));
        CHECK(header_of(f, "message") == "authentication failed: unknown user or wrong passcode");
    }
}

TEST_CASE("stomp: auth: a CONNECT with login but no passcode is refused") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    REQUIRE(c.connect_tcp(node.port()));
    REQUIRE(c.send(command::connect, {{"accept-version", "1.2"}, {"login", "guest"}}));
    expect_error_and_close(c, "authentication failed");
}

TEST_CASE("stomp: auth: with security-enabled false every login is accepted") {
    ACTORMQ_START_NODE(node, node_config("", "", "security-enabled = false\n"));
    for (const auto& login : {"nobody", "guest", ""}) {
        CAPTURE(login);
        stomp_client c;
        auto f = try_connect(c, node, login, "whatever");
        REQUIRE_MESSAGE(f.cmd == command::connected, describe(f));
        CHECK(c.receipt_barrier());
    }
}

TEST_CASE("stomp: auth: allow-anonymous accepts a CONNECT without login") {
    ACTORMQ_START_NODE(node, node_config(), {"security.allow-anonymous=true"});
    stomp_client anonymous;
    auto f = try_connect(anonymous, node, "", "");
    REQUIRE_MESSAGE(f.cmd == command::connected, describe(f));
    CHECK(anonymous.receipt_barrier());
    // Anonymous access does not make a wrong passcode acceptable.
    stomp_client wrong;
    auto g = try_connect(wrong, node, "guest", "wrong");
    REQUIRE_MESSAGE(g.cmd == command::error, describe(g));
    CHECK(header_of(g, "message").rfind("authentication failed", 0) == 0);
}

TEST_CASE("stomp: connect: a first frame other than CONNECT gets ERROR and close") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    REQUIRE(c.connect_tcp(node.port()));
    send_to(c, "/queue/early", "too early");
    auto f = c.receive(soon());
    REQUIRE(f.has_value());
    REQUIRE_MESSAGE(f->cmd == command::error, describe(*f));
    CHECK_FALSE(header_of(*f, "message").empty());
    CHECK(c.closed_by_peer(soon()));
    expect_serving(node);
}

TEST_CASE("stomp: connect: a second CONNECT gets ERROR 'already connected' and close") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    REQUIRE(c.send(command::connect,
                   {{"accept-version", "1.2"}, {"login", "guest"}, {"passcode", "guest"}}));
    expect_error_and_close(c, "already connected");
    expect_serving(node);
}

TEST_CASE("stomp: connect: no CONNECT within connect-timeout-ms gets ERROR and close") {
    ACTORMQ_START_NODE(node, node_config("connect-timeout-ms = 300\n"));
    stomp_client c;
    REQUIRE(c.connect_tcp(node.port()));
    auto f = c.receive(soon());
    REQUIRE_MESSAGE(f.has_value(), "no ERROR after connect-timeout-ms");
    REQUIRE_MESSAGE(f->cmd == command::error, describe(*f));
    CHECK(c.closed_by_peer(soon()));
    expect_serving(node);
}

TEST_CASE("stomp: heart-beat: a silent client is closed with ERROR 'heart-beat timeout'") {
    ACTORMQ_START_NODE(node, node_config("heart-beat-receive-ms = 100\n"));
    stomp_client c;
    // The client promises a heart-beat every 200 ms (max(100, 200)), then sends nothing: the
    // server gives up after 200 ms x heart-beat-to-connection-ttl-modifier (2.0).
    login(c, node, "1.2", "200,0");
    expect_error_and_close(c, "heart-beat timeout");
    expect_serving(node);
}

TEST_CASE("stomp: heart-beat: a client that sends only EOLs stays connected") {
    ACTORMQ_START_NODE(node, node_config("heart-beat-receive-ms = 300\n"));
    stomp_client c;
    login(c, node, "1.2", "300,0");
    // For 1.5 s (several TTLs of 600 ms) the client's only traffic is an EOL every 50 ms.
    bool closed = wait_until(
        in(1500ms),
        [&] {
            c.send_raw("\n");
            return c.closed_by_peer(test_clock::now());
        },
        50ms);
    CHECK_FALSE(closed);
    CHECK_MESSAGE(c.buffered().empty(), describe(c.buffered().front()));
    CHECK(c.receipt_barrier());
}

TEST_CASE("stomp: heart-beat: the server sends EOLs at the negotiated interval") {
    ACTORMQ_START_NODE(node, node_config("heart-beat-send-ms = 100\n"));
    stomp_client c;
    login(c, node, "1.2", "0,100");
    // Every 100 ms the server sends an EOL while it has nothing else to write.
    bool seen = wait_until(soon(), [&] {
        c.closed_by_peer(in(20ms));
        return c.heart_beats_seen() >= 3;
    });
    CHECK_MESSAGE(seen, c.heart_beats_seen(), " heart-beats seen");
    CHECK(c.buffered().empty());
    CHECK_FALSE(c.eof());
}

TEST_CASE("stomp: heart-beat: the server sends none when the client asks for none") {
    ACTORMQ_START_NODE(node, node_config("heart-beat-send-ms = 50\n"));
    stomp_client c;
    login(c, node, "1.2", "0,0");
    // A negative check: in 500 ms (ten server intervals) not a single EOL may arrive.
    bool seen = wait_until(in(500ms), [&] {
        c.closed_by_peer(in(20ms));
        return c.heart_beats_seen() > 0;
    });
    CHECK_FALSE(seen);
    CHECK(c.receipt_barrier());
}

TEST_CASE("stomp: disconnect: DISCONNECT with receipt gets RECEIPT and then the server closes") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    REQUIRE(c.send(command::disconnect, {{"receipt", "bye"}}));
    auto f = c.receive(soon());
    REQUIRE(f.has_value());
    REQUIRE_MESSAGE(f->cmd == command::receipt, describe(*f));
    CHECK(header_of(*f, "receipt-id") == "bye");
    CHECK(c.closed_by_peer(soon()));
    expect_serving(node);
}

} // namespace actormq::test
