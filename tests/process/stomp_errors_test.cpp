// SPDX-License-Identifier: Apache-2.0
// Process tests of malformed and hostile input: each gets an ERROR with a clear message and a
// close, and the node goes on serving other clients.
#include "support/process_fixture.hpp"

#include <doctest/doctest.h>

#include <random>

namespace actormq::test {

namespace {

/// A frame written by hand, with the terminating NUL appended.
std::string raw_frame(const std::string& text_before_nul) {
    return text_before_nul + std::string(1, '\0');
}

/// Logs in, writes `bytes`, and expects ERROR with `message` in it, then a close; then checks
/// that the node still serves another client.
void check_rejected(const node_process& node,
                    const std::string& bytes,
                    const std::string& message,
                    const std::string& version = "1.2") {
    stomp_client c;
    login(c, node, version);
    REQUIRE(c.send_raw(bytes));
    expect_error_and_close(c, message);
    expect_serving(node);
}

/// `n` bytes from a fixed-seed PRNG, so a failure can be replayed.
std::string garbage(size_t n, uint32_t seed) {
    std::mt19937 rng{seed};
    std::uniform_int_distribution<int> byte{0, 255};
    std::string out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        out += static_cast<char>(byte(rng));
    }
    return out;
}

} // namespace

TEST_CASE("stomp: errors: a frame over max-frame-bytes with content-length is rejected") {
    ACTORMQ_START_NODE(node, node_config("max-frame-bytes = 4096\n"));
    std::string body(10000, 'b');
    check_rejected(node, raw_frame("SEND\ndestination:/queue/big\ncontent-length:10000\n\n" + body),
                   "maximum frame size");
}

TEST_CASE("stomp: errors: a frame over max-frame-bytes without content-length is rejected") {
    ACTORMQ_START_NODE(node, node_config("max-frame-bytes = 4096\n"));
    std::string body(10000, 'b');
    check_rejected(node, raw_frame("SEND\ndestination:/queue/big\n\n" + body),
                   "maximum frame size");
}

TEST_CASE("stomp: errors: a frame of exactly max-frame-bytes is accepted") {
    ACTORMQ_START_NODE(node, node_config("max-frame-bytes = 4096\n"));
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/edge", "s");
    // The limit counts from the command's first byte through the NUL: 50 bytes of command
    // and headers, 4045 of body and the NUL make 4096.
    std::string head = "SEND\ndestination:/queue/edge\ncontent-length:4045\n\n";
    std::string frame = raw_frame(head + std::string(4045, 'e'));
    REQUIRE(frame.size() == 4096);
    stomp_client producer;
    login(producer, node);
    REQUIRE(producer.send_raw(frame));
    REQUIRE(producer.receipt_barrier());
    auto m = expect_message(consumer);
    CHECK(m.body.size() == 4045);
}

TEST_CASE("stomp: errors: a frame one byte over max-frame-bytes is rejected") {
    ACTORMQ_START_NODE(node, node_config("max-frame-bytes = 4096\n"));
    std::string head = "SEND\ndestination:/queue/edge\ncontent-length:4046\n\n";
    std::string frame = raw_frame(head + std::string(4046, 'e'));
    REQUIRE(frame.size() == 4097);
    check_rejected(node, frame, "maximum frame size");
}

TEST_CASE("stomp: errors: an unknown command is rejected") {
    ACTORMQ_START_NODE(node, node_config());
    check_rejected(node, raw_frame("FOO\n\n"), "unknown command");
}

TEST_CASE("stomp: errors: a header line without ':' is rejected") {
    ACTORMQ_START_NODE(node, node_config());
    check_rejected(node, raw_frame("SEND\ndestination:/queue/a\nno-colon-here\n\nbody"), "':'");
}

TEST_CASE("stomp: errors: an undefined escape sequence in a 1.2 header is rejected") {
    ACTORMQ_START_NODE(node, node_config());
    check_rejected(node, raw_frame("SEND\ndestination:/queue/a\nx-bad:tab\\there\n\nbody"),
                   "escape");
}

TEST_CASE("stomp: errors: a content-length that is not a number is rejected") {
    ACTORMQ_START_NODE(node, node_config());
    check_rejected(node, raw_frame("SEND\ndestination:/queue/a\ncontent-length:abc\n\nbody"),
                   "content-length");
}

TEST_CASE("stomp: errors: content-length bytes not followed by NUL are rejected") {
    ACTORMQ_START_NODE(node, node_config());
    check_rejected(node, raw_frame("SEND\ndestination:/queue/a\ncontent-length:2\n\nabcd"), "NUL");
}

TEST_CASE("stomp: errors: a SEND without destination is rejected") {
    ACTORMQ_START_NODE(node, node_config());
    check_rejected(node, raw_frame("SEND\ncontent-type:text/plain\n\nbody"),
                   "missing required header 'destination'");
}

TEST_CASE("stomp: errors: a 1.2 SUBSCRIBE without id is rejected") {
    ACTORMQ_START_NODE(node, node_config());
    check_rejected(node, raw_frame("SUBSCRIBE\ndestination:/queue/a\n\n"),
                   "missing required header 'id'");
}

TEST_CASE("stomp: errors: a SUBSCRIBE with an invalid ack mode is rejected") {
    ACTORMQ_START_NODE(node, node_config());
    check_rejected(node, raw_frame("SUBSCRIBE\ndestination:/queue/a\nid:s\nack:sometimes\n\n"),
                   "invalid ack mode");
}

TEST_CASE("stomp: errors: a SUBSCRIBE with a prefetch that is not a positive number is rejected") {
    ACTORMQ_START_NODE(node, node_config());
    check_rejected(node,
                   raw_frame("SUBSCRIBE\ndestination:/queue/a\nid:s\nack:client\n"
                             "prefetch-count:0\n\n"),
                   "prefetch");
}

TEST_CASE("stomp: errors: a duplicate subscription id is rejected") {
    ACTORMQ_START_NODE(node, node_config());
    check_rejected(node,
                   raw_frame("SUBSCRIBE\ndestination:/queue/a\nid:s\n\n")
                       + raw_frame("SUBSCRIBE\ndestination:/queue/b\nid:s\n\n"),
                   "duplicate subscription");
}

TEST_CASE("stomp: errors: a server-only command from a client is rejected") {
    ACTORMQ_START_NODE(node, node_config());
    check_rejected(node, raw_frame("MESSAGE\ndestination:/queue/a\n\nbody"), "unexpected command");
}

TEST_CASE("stomp: errors: the ERROR names the receipt of the frame that caused it") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    REQUIRE(c.send_raw(raw_frame("SEND\nreceipt:77\n\nno destination")));
    auto f = expect_error_and_close(c, "destination");
    CHECK(header_of(f, "receipt-id") == "77");
}

TEST_CASE("stomp: errors: random garbage before CONNECT closes only that connection") {
    ACTORMQ_START_NODE(node, node_config());
    for (uint32_t seed : {1u, 2u, 3u}) {
        CAPTURE(seed);
        stomp_client c;
        REQUIRE(c.connect_tcp(node.port()));
        c.send_raw(garbage(4096, seed));
        CHECK(c.closed_by_peer(soon()));
        expect_serving(node);
    }
}

TEST_CASE("stomp: errors: random garbage after CONNECT closes only that connection") {
    ACTORMQ_START_NODE(node, node_config());
    for (uint32_t seed : {11u, 12u, 13u}) {
        CAPTURE(seed);
        stomp_client c;
        login(c, node);
        c.send_raw(garbage(4096, seed));
        CHECK(c.closed_by_peer(soon()));
        expect_serving(node);
    }
}

TEST_CASE("stomp: errors: clients that connect and close at once do not disturb the node") {
    ACTORMQ_START_NODE(node, node_config());
    for (int i = 0; i < 20; ++i) {
        stomp_client c;
        REQUIRE(c.connect_tcp(node.port()));
        if (i % 2 == 0) {
            c.close();
        } else {
            c.close_abruptly();
        }
    }
    // Half a CONNECT frame and then a close.
    {
        stomp_client c;
        REQUIRE(c.connect_tcp(node.port()));
        c.send_raw("CONNECT\naccept-version:1.2\nlog");
    }
    expect_serving(node);
    CHECK(node.running());
}

TEST_CASE("stomp: errors: a consumer that vanishes mid-delivery does not disturb the node") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/vanish", "s");
    stomp_client producer;
    login(producer, node);
    for (const auto& b : numbered(200)) {
        send_to(producer, "/queue/vanish", b + std::string(1000, 'v'));
    }
    consumer.close_abruptly();
    REQUIRE(producer.receipt_barrier());
    expect_serving(node);
}

} // namespace actormq::test
