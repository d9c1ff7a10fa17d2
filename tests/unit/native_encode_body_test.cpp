// SPDX-License-Identifier: Apache-2.0
// encode_with_body (protocol/native/codec.hpp): a send or deliver encoded with its body taken
// from where it lies is byte for byte what encode() writes for the packet holding that body,
// and is refused where encode() would refuse it.
#include "protocol/native/codec.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace actormq::native;

namespace {

message headers_only() {
    message m;
    m.address = "orders";
    m.durable = true;
    m.priority = 7;
    m.expiration_ms = 1700000000123;
    m.timestamp_ms = 1700000000000;
    m.duplicate_id = "dup-9";
    m.headers = {{"content-type", "text/plain"}, {"", ""}};
    return m;
}

/// encode() of `p` with `body` put into its message, appended after `prefix`.
std::string whole(packet p, const std::string& body, const std::string& prefix) {
    if (auto* s = std::get_if<send>(&p.body)) {
        s->msg.body = body;
    } else {
        std::get<deliver>(p.body).msg.body = body;
    }
    std::string out = prefix;
    REQUIRE(encode(p, peer::server, codec_limits{}, out).code == codec_error::none);
    return out;
}

} // namespace

TEST_CASE("encode_with_body: the same bytes as encode with the body in the packet") {
    for (const std::string& body :
         {std::string{}, std::string("x"), std::string("body\0with nul", 13),
          std::string(1024, 'b'), std::string(70000, 'c')}) {
        deliver d;
        d.consumer_id = 3;
        d.message_id = 99;
        d.delivery_count = 2;
        d.msg = headers_only();
        packet dp{5, 17, d};
        std::string prefix = "already queued";
        std::string out = prefix;
        REQUIRE(encode_with_body(dp, body, peer::server, codec_limits{}, out).code
                == codec_error::none);
        CHECK(out == whole(dp, body, prefix));
        // And it decodes to the packet with that body.
        packet back;
        size_t used = 0;
        codec_failure f;
        REQUIRE(decode(out.data() + prefix.size(), out.size() - prefix.size(), peer::server,
                       codec_limits{}, back, used, f)
                == decode_status::packet);
        CHECK(used == out.size() - prefix.size());
        CHECK(std::get<deliver>(back.body).msg.body == body);
        CHECK(std::get<deliver>(back.body).msg.duplicate_id == "dup-9");

        send s;
        s.producer_id = 4;
        s.msg = headers_only();
        packet sp{2, 8, s};
        std::string out2;
        std::string expected;
        REQUIRE(encode_with_body(sp, body, peer::client, codec_limits{}, out2).code
                == codec_error::none);
        s.msg.body = body;
        REQUIRE(encode(packet{2, 8, s}, peer::client, codec_limits{}, expected).code
                == codec_error::none);
        CHECK(out2 == expected);
    }
}

TEST_CASE("encode_with_body: a packet too large for the limit is refused and nothing written") {
    deliver d;
    d.msg = headers_only();
    packet p{1, 1, d};
    codec_limits small;
    small.max_packet_bytes = 4096;
    std::string out = "kept";
    auto f = encode_with_body(p, std::string(5000, 'x'), peer::server, small, out);
    CHECK(f.code == codec_error::packet_too_large);
    CHECK(out == "kept");
    // Just under the limit it goes.
    std::string probe;
    REQUIRE(encode(p, peer::server, small, probe).code == codec_error::none);
    std::string fits(4096 - probe.size(), 'y');
    CHECK(encode_with_body(p, fits, peer::server, small, out).code == codec_error::none);
    CHECK(out.size() == 4 + 4096);
}

TEST_CASE("encode_with_body: other packets, or a body already in the packet, are refused") {
    std::string out;
    CHECK(encode_with_body(make_packet(ping{1}), "x", peer::client, codec_limits{}, out).code
          == codec_error::bad_value);
    send s;
    s.msg.body = "inside";
    CHECK(encode_with_body(packet{1, 1, s}, "x", peer::client, codec_limits{}, out).code
          == codec_error::bad_value);
    CHECK(out.empty());
}
