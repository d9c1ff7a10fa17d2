// SPDX-License-Identifier: Apache-2.0
// The native acceptor's connection phase against a real node (docs/protocol.md §2, §3, §12,
// §13, §15): hello, authenticate, topology, ping, and every refusal closing the connection
// while the node keeps serving.
#include "support/native_fixture.hpp"

namespace actormq::test {

namespace {

using native::error_code;

/// A packet header with the given fields and a body of `body_bytes` zero bytes.
std::string raw_header(uint32_t length, uint8_t type, uint32_t channel, uint64_t sequence) {
    std::string h(20, '\0');
    for (int i = 0; i < 4; ++i) {
        h[static_cast<size_t>(i)] = static_cast<char>((length >> (8 * i)) & 0xff);
        h[8 + static_cast<size_t>(i)] = static_cast<char>((channel >> (8 * i)) & 0xff);
    }
    h[4] = static_cast<char>(type);
    for (int i = 0; i < 8; ++i) {
        h[12 + static_cast<size_t>(i)] = static_cast<char>((sequence >> (8 * i)) & 0xff);
    }
    return h;
}

/// A second native client logs in and pings: the node still serves.
void expect_native_serving(const node_process& node) {
    native_client c;
    native_login(c, node);
    REQUIRE(c.send_packet(native::make_packet(native::ping{42})));
    auto p = c.receive_type(native::packet_type::pong, soon());
    REQUIRE(p.has_value());
    CHECK(std::get<native::pong>(p->body).nonce == 42);
}

} // namespace

TEST_CASE("native: connect: hello_ok, authenticated with the TTL, topology naming this node") {
    ACTORMQ_START_NODE(node, native_node_config("connection-ttl = 45000\n"));
    native_client c;
    native_login(c, node);
    CHECK(c.hello_ok_seen.version == 2); // §2: the highest both speak
    CHECK(c.hello_ok_seen.max_packet_bytes == 10 * 1024 * 1024 + 64 * 1024);
    CHECK(c.hello_ok_seen.server_name == "test");
    CHECK(c.authenticated_seen.connection_ttl_ms == 45000);
    REQUIRE(c.topology_seen.members.size() == 1);
    CHECK(c.topology_seen.members[0].live == "127.0.0.1:" + std::to_string(node.port("native")));
    CHECK(c.topology_seen.members[0].backup.empty());
    // The TTL the client asks for wins unless connection-ttl-override is set.
    native_client d;
    native_login(d, node, 1234);
    CHECK(d.authenticated_seen.connection_ttl_ms == 1234);
}

TEST_CASE("native: connect: connection-ttl-override replaces the client's TTL") {
    ACTORMQ_START_NODE(node, native_node_config("connection-ttl-override = 7000\n"));
    native_client c;
    native_login(c, node, 1234);
    CHECK(c.authenticated_seen.connection_ttl_ms == 7000);
}

TEST_CASE("native: ping: answered with pong and the same nonce") {
    ACTORMQ_START_NODE(node, native_node_config());
    expect_native_serving(node);
}

TEST_CASE("native: authenticate: a wrong password gets authentication_failed and a close") {
    ACTORMQ_START_NODE(node, native_node_config());
    native_client c;
    REQUIRE(c.connect_tcp(node.port("native")));
    CHECK_FALSE(c.login("guest", "wrong"));
    REQUIRE(c.buffered().empty());
    CHECK(c.last_error().find("error") != std::string::npos);
    native_client d;
    REQUIRE(d.connect_tcp(node.port("native")));
    REQUIRE(d.send_packet(native::make_packet(native::hello{})));
    REQUIRE(d.send_packet(native::make_packet(native::authenticate{"nobody", "x", "", 0})));
    REQUIRE(d.receive_type(native::packet_type::hello_ok, soon()).has_value());
    auto text = expect_native_error(d, error_code::authentication_failed);
    CHECK(text.find("authentication failed") != std::string::npos);
    expect_native_serving(node);
}

TEST_CASE("native: order: a packet before hello gets unexpected_packet and a close") {
    ACTORMQ_START_NODE(node, native_node_config());
    native_client c;
    REQUIRE(c.connect_tcp(node.port("native")));
    REQUIRE(c.send_packet(native::make_packet(native::ping{1})));
    auto text = expect_native_error(c, error_code::unexpected_packet);
    CHECK(text.find("hello") != std::string::npos);
    expect_native_serving(node);
}

TEST_CASE("native: order: a session packet before authenticate gets not_authenticated") {
    ACTORMQ_START_NODE(node, native_node_config());
    native_client c;
    REQUIRE(c.connect_tcp(node.port("native")));
    REQUIRE(c.send_packet(native::make_packet(native::hello{})));
    REQUIRE(c.receive_type(native::packet_type::hello_ok, soon()).has_value());
    REQUIRE(
        c.send_packet(native::make_packet(1, 1, native::create_session{"s", false, false, -1})));
    expect_native_error(c, error_code::not_authenticated);
    expect_native_serving(node);
}

TEST_CASE("native: malformed: every refusal is an error with the codec's description, then close") {
    ACTORMQ_START_NODE(node, native_node_config("max-packet-bytes = 4096\n"));
    struct bad {
        const char* what;
        std::string bytes;
        error_code code;
        const char* text;
    };
    std::string stomp = "CONNECT\naccept-version:1.2\n\n";
    stomp.push_back('\0');
    std::vector<bad> cases = {
        {"a STOMP client on the native port", stomp, error_code::malformed_packet,
         "packet_too_large"},
        {"a length below the header", raw_header(8, 1, 0, 0), error_code::malformed_packet,
         "packet_too_small"},
        {"a length above max-packet-bytes", raw_header(4097, 1, 0, 0), error_code::malformed_packet,
         "packet_too_large (4097 declared, 4096 allowed)"},
        {"an unknown type", raw_header(20, 99, 0, 0), error_code::malformed_packet, "unknown_type"},
        {"a server-only type", raw_header(20, 70, 1, 1), error_code::malformed_packet,
         "wrong_direction"},
        {"a hello cut inside its client_name length",
         raw_header(20 + 13, 1, 0, 0) + std::string("AMQN\x01\x00\x01\x00\x00\x04\x00\x00\x00", 13),
         error_code::malformed_packet, "hello: field 'client_name' at offset 32: truncated_field"},
    };
    for (const auto& b : cases) {
        CAPTURE(b.what);
        native_client c;
        REQUIRE(c.connect_tcp(node.port("native")));
        REQUIRE(c.send_raw(b.bytes));
        auto text = expect_native_error(c, b.code);
        CHECK_MESSAGE(text.find(b.text) != std::string::npos, text);
    }
    {
        // A hello without version 1 or 2 is unsupported_version (§15), not malformed.
        // The encoder refuses it, as the decoder would; patch a valid hello instead.
        std::string out;
        native::encode(native::make_packet(native::hello{}), native::peer::client,
                       native::codec_limits{}, out);
        out[24] = 3; // version_min
        out[26] = 4; // version_max
        native_client c;
        REQUIRE(c.connect_tcp(node.port("native")));
        REQUIRE(c.send_raw(out));
        expect_native_error(c, error_code::unsupported_version);
    }
    {
        // After login: a malformed body (a bool of 2) on a session packet.
        native_client c;
        native_login(c, node);
        std::string out;
        native::encode(native::make_packet(1, 1, native::create_session{"s", false, false, -1}),
                       native::peer::client, native::codec_limits{}, out);
        out[20 + 2 + 1] = 2; // `transacted` after the name "s"
        REQUIRE(c.send_raw(out));
        auto text = expect_native_error(c, error_code::malformed_packet);
        CHECK_MESSAGE(text.find("create_session: field 'transacted'") != std::string::npos, text);
    }
    expect_native_serving(node);
    expect_serving(node);
}

TEST_CASE("native: sequence: a gap in a session's stream is unexpected_packet") {
    ACTORMQ_START_NODE(node, native_node_config());
    native_client c;
    native_login(c, node);
    require_ok(c.open_session(1, "s1"), "create_session");
    REQUIRE(c.send_packet(native::make_packet(1, 5, native::start{})));
    auto text = expect_native_error(c, error_code::unexpected_packet);
    CHECK_MESSAGE(text.find("expected 2") != std::string::npos, text);
    expect_native_serving(node);
}

TEST_CASE("native: ttl: a silent connection gets disconnect connection_ttl_expired") {
    ACTORMQ_START_NODE(node, native_node_config());
    native_client c;
    native_login(c, node, 300);
    auto p = c.receive_type(native::packet_type::disconnect, soon());
    REQUIRE(p.has_value());
    CHECK(std::get<native::disconnect>(p->body).code == error_code::connection_ttl_expired);
    CHECK(c.closed_by_peer(soon()));
    // A client that pings stays connected past its TTL.
    native_client d;
    native_login(d, node, 300);
    for (uint64_t nonce = 1; nonce <= 9; ++nonce) {
        REQUIRE(d.send_packet(native::make_packet(native::ping{nonce})));
        auto pong = d.receive_type(native::packet_type::pong, soon());
        REQUIRE_MESSAGE(pong.has_value(), "no pong for ping ", nonce);
        // Still open 100 ms later: 9 rounds outlast the 300 ms TTL three times over.
        CHECK_FALSE(d.closed_by_peer(in(std::chrono::milliseconds(100))));
    }
}

} // namespace actormq::test
