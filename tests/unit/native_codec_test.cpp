// SPDX-License-Identifier: Apache-2.0
// The native protocol's codec (protocol/native/codec.hpp, docs/protocol.md §1, §15, §16): every
// packet type round-trips, any split of a stream gives the same packets, and every kind of
// malformed input is refused with the error, field and offset the docs name.
#include "protocol/native/codec.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using namespace actormq::native;

namespace {

// -- building blocks
// -------------------------------------------------------------------------------

message sample_message() {
    message m;
    m.address = "orders";
    m.durable = true;
    m.priority = 9;
    m.expiration_ms = 1700000000123;
    m.timestamp_ms = 1700000000000;
    m.duplicate_id = "dup-7";
    m.headers = {{"content-type", "text/plain"}, {"reply-to", "/queue/temp.1.r"}, {"", ""}};
    m.body = std::string("body\0with nul", 13);
    return m;
}

xid sample_xid(int n) {
    return xid{0x1234 + n, "gtrid-" + std::to_string(n), n % 2 == 0 ? "" : "bq"};
}

// One packet of every type, every field away from its default.
std::vector<packet> sample_packets() {
    std::vector<packet> v;
    v.push_back(make_packet(hello{hello_magic, 1, 3, 65536, "actormq-cpp/0.1.0"}));
    v.push_back(make_packet(hello_ok{1, 1048576, "actormq/0.1.0", "node-uuid"}));
    v.push_back(make_packet(authenticate{"guest", "secret", "client-9", 60000}));
    v.push_back(make_packet(authenticated{77, 30000}));
    v.push_back(make_packet(ping{0x0102030405060708}));
    v.push_back(make_packet(pong{0x0102030405060708}));
    v.push_back(make_packet(
        topology{5, {{"n1", "127.0.0.1:6000", "127.0.0.1:6001"}, {"n2", "10.0.0.2:6000", ""}}}));
    v.push_back(make_packet(error{error_code::malformed_packet, "bad"}));
    v.push_back(make_packet(disconnect{error_code::server_stopping, "bye", "127.0.0.1:6001"}));
    v.push_back(make_packet(3, 0, reattach_session{"session-uuid", 41}));
    v.push_back(make_packet(3, 0, session_reattached{true, 12}));
    v.push_back(make_packet(3, 0, packets_confirmed{40}));
    v.push_back(make_packet(3, 1, create_session{"session-uuid", true, true, 1048576}));
    v.push_back(make_packet(3, 2, close_session{}));
    v.push_back(make_packet(3, 3, create_producer{4, "orders", 65536}));
    v.push_back(make_packet(3, 4, close_producer{4}));
    v.push_back(make_packet(3, 5, send{4, true, sample_message()}));
    v.push_back(make_packet(3, 6, create_consumer{8, "orders", "color = 'red'", 1024, true, true}));
    v.push_back(make_packet(3, 7, close_consumer{8}));
    v.push_back(make_packet(3, 8, credit{8, 4096}));
    v.push_back(make_packet(3, 9, ack{8, 99, ack_mode::cumulative, true}));
    v.push_back(make_packet(3, 10, nack{8, 98}));
    v.push_back(make_packet(3, 11, start{}));
    v.push_back(make_packet(3, 12, stop{}));
    v.push_back(make_packet(3, 13, commit{}));
    v.push_back(make_packet(3, 14, rollback{}));
    v.push_back(make_packet(
        3, 15, create_queue{"temp.q", "temp.a", routing::multicast, true, true, "x>1"}));
    v.push_back(make_packet(3, 16, delete_queue{"temp.q"}));
    v.push_back(make_packet(3, 17, xa_start{sample_xid(1), xa_start_flag::resume}));
    v.push_back(make_packet(3, 18, xa_end{sample_xid(1), xa_end_flag::suspend}));
    v.push_back(make_packet(3, 19, xa_prepare{sample_xid(2)}));
    v.push_back(make_packet(3, 20, xa_commit{sample_xid(3), true}));
    v.push_back(make_packet(3, 21, xa_rollback{sample_xid(4)}));
    v.push_back(make_packet(3, 22, xa_recover{}));
    v.push_back(make_packet(3, 1, ok{1}));
    v.push_back(make_packet(3, 2, fail{16, error_code::transaction_rolled_back, "rollback-only"}));
    v.push_back(make_packet(3, 3, deliver{8, 99, 2, sample_message()}));
    v.push_back(make_packet(3, 4, producer_credit{4, 65536}));
    v.push_back(make_packet(3, 5, consumer_closed{8, error_code::no_such_queue, "deleted"}));
    v.push_back(make_packet(3, 6, xa_recovered{22, {sample_xid(5), sample_xid(6)}}));
    v.push_back(make_packet(scale_down{"127.0.0.1:61617", "the server is scaling down"}));
    return v;
}

// A peer that may send `p` (the server for packets both may send).
peer sender_of(const packet& p) {
    return info(p.type())->from_server ? peer::server : peer::client;
}

std::string encoded(const packet& p, peer from, const codec_limits& limits = {}) {
    std::string out;
    codec_failure f = encode(p, from, limits, out);
    REQUIRE_MESSAGE(f.code == codec_error::none, f.describe());
    return out;
}

std::string encoded(const packet& p) {
    return encoded(p, sender_of(p));
}

void put_le(std::string& out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) {
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
}

// Header bytes written by hand after docs/protocol.md §1, for packets encode would refuse.
std::string raw(uint8_t type,
                uint32_t channel,
                uint64_t sequence,
                const std::string& body,
                uint32_t length_delta = 0) {
    std::string out;
    put_le(out, header_bytes + body.size() + length_delta, 4);
    put_le(out, type, 1);
    put_le(out, 0, 3);
    put_le(out, channel, 4);
    put_le(out, sequence, 8);
    return out + body;
}

std::string str16(const std::string& s) {
    std::string out;
    put_le(out, s.size(), 2);
    return out + s;
}

struct outcome {
    decode_status status;
    codec_failure failure;
    packet pkt;
    size_t consumed;
};

outcome decode_all(const std::string& bytes, peer from, const codec_limits& limits = {}) {
    outcome o{};
    o.status = decode(bytes.data(), bytes.size(), from, limits, o.pkt, o.consumed, o.failure);
    return o;
}

// Checks that `bytes` are refused with `e` at `field` / `offset`.
void refused(const std::string& bytes,
             peer from,
             codec_error e,
             const std::string& field,
             size_t offset,
             const codec_limits& limits = {}) {
    outcome o = decode_all(bytes, from, limits);
    INFO(o.failure.describe());
    REQUIRE(o.status == decode_status::error);
    CHECK(o.failure.code == e);
    CHECK(std::string(o.failure.field) == field);
    CHECK(o.failure.offset == offset);
    CHECK(o.consumed == 0);
}

std::string stream_of(const std::vector<packet>& packets, peer from) {
    std::string s;
    for (const packet& p : packets) {
        s += encoded(p, from);
    }
    return s;
}

std::vector<packet> packets_of(peer from) {
    std::vector<packet> v;
    for (const packet& p : sample_packets()) {
        const packet_type_info* i = info(p.type());
        if (from == peer::client ? i->from_client : i->from_server) {
            v.push_back(p);
        }
    }
    return v;
}

// Feeds `s` in the pieces cut at `cuts` and returns the re-encoded packets, or an error mark.
std::string refeed(const std::string& s, const std::vector<size_t>& cuts, peer from) {
    decoder d(from);
    std::string again;
    size_t at = 0;
    auto drain = [&] {
        packet p;
        decode_status st;
        while ((st = d.next(p)) == decode_status::packet) {
            again += encoded(p, from);
        }
        REQUIRE(st == decode_status::need_more);
    };
    for (size_t cut : cuts) {
        d.feed(s.data() + at, cut - at);
        at = cut;
        drain();
    }
    d.feed(s.data() + at, s.size() - at);
    drain();
    CHECK(d.buffered() == 0);
    return again;
}

} // namespace

// -- round trips
// -------------------------------------------------------------------------------------

TEST_CASE("native codec: round trip: every packet type decodes to the bytes it was encoded from") {
    std::vector<packet> all = sample_packets();
    std::set<packet_type> types;
    for (const packet& p : all) {
        types.insert(p.type());
        std::string bytes = encoded(p);
        outcome o = decode_all(bytes, sender_of(p));
        INFO(to_string(p.type()), ": ", o.failure.describe());
        REQUIRE(o.status == decode_status::packet);
        CHECK(o.consumed == bytes.size());
        CHECK(o.pkt.type() == p.type());
        CHECK(o.pkt.channel == p.channel);
        CHECK(o.pkt.sequence == p.sequence);
        // The encoding is canonical, so equal bytes mean equal packets.
        CHECK(encoded(o.pkt) == bytes);
        // Every strict prefix is "need more", never an error.
        for (size_t n = 0; n < bytes.size(); ++n) {
            outcome part = decode_all(bytes.substr(0, n), sender_of(p));
            CHECK(part.status == decode_status::need_more);
        }
    }
    CHECK(types.size() == packet_type_count);
}

TEST_CASE("native codec: round trip: the fields of send, topology and xa_recovered survive") {
    auto o = decode_all(encoded(make_packet(3, 5, send{4, true, sample_message()})), peer::client);
    REQUIRE(o.status == decode_status::packet);
    const auto& s = std::get<send>(o.pkt.body);
    CHECK(s.producer_id == 4);
    CHECK(s.confirm);
    CHECK(s.msg.address == "orders");
    CHECK(s.msg.durable);
    CHECK(s.msg.priority == 9);
    CHECK(s.msg.expiration_ms == 1700000000123);
    CHECK(s.msg.duplicate_id == "dup-7");
    REQUIRE(s.msg.headers.size() == 3);
    CHECK(s.msg.headers[1] == header{"reply-to", "/queue/temp.1.r"});
    CHECK(s.msg.body == std::string("body\0with nul", 13));

    o = decode_all(encoded(sample_packets()[6]), peer::server);
    REQUIRE(o.status == decode_status::packet);
    const auto& t = std::get<topology>(o.pkt.body);
    CHECK(t.version == 5);
    REQUIRE(t.members.size() == 2);
    CHECK(t.members[0].backup == "127.0.0.1:6001");
    CHECK(t.members[1].backup.empty());

    o = decode_all(encoded(make_packet(3, 6, xa_recovered{22, {sample_xid(5)}})), peer::server);
    REQUIRE(o.status == decode_status::packet);
    const auto& x = std::get<xa_recovered>(o.pkt.body);
    CHECK(x.correlation == 22);
    REQUIRE(x.xids.size() == 1);
    CHECK(x.xids[0].format_id == 0x1234 + 5);
    CHECK(x.xids[0].gtrid == "gtrid-5");
    CHECK(x.xids[0].bqual == "bq");
}

TEST_CASE("native codec: wire layout: a ping is the little-endian header of §1 and its nonce") {
    std::string expected;
    put_le(expected, 28, 4); // length, header included
    put_le(expected, 5, 1);  // type ping
    put_le(expected, 0, 3);  // reserved
    put_le(expected, 0, 4);  // channel
    put_le(expected, 0, 8);  // sequence
    put_le(expected, 0x0102030405060708, 8);
    CHECK(encoded(make_packet(ping{0x0102030405060708}), peer::client) == expected);
}

// -- splits --------------------------------------------------------------------------------------

TEST_CASE("native codec: decoder: a stream fed one byte at a time gives every packet") {
    for (peer from : {peer::client, peer::server}) {
        std::string s = stream_of(packets_of(from), from);
        std::vector<size_t> cuts;
        for (size_t i = 1; i < s.size(); ++i) {
            cuts.push_back(i);
        }
        CHECK(refeed(s, cuts, from) == s);
    }
}

TEST_CASE("native codec: decoder: every 2-way split of a stream gives every packet") {
    for (peer from : {peer::client, peer::server}) {
        std::string s = stream_of(packets_of(from), from);
        for (size_t cut = 0; cut <= s.size(); ++cut) {
            INFO("cut at ", cut);
            REQUIRE(refeed(s, {cut}, from) == s);
        }
    }
}

TEST_CASE("native codec: decoder: an error stays, whatever is fed after it") {
    decoder d(peer::client);
    std::string good = encoded(make_packet(ping{1}), peer::client);
    std::string bad = raw(200, 0, 0, "");
    d.feed(good.data(), good.size());
    d.feed(bad.data(), bad.size());
    packet p;
    CHECK(d.next(p) == decode_status::packet);
    CHECK(d.next(p) == decode_status::error);
    CHECK(d.failure().code == codec_error::unknown_type);
    d.feed(good.data(), good.size());
    CHECK(d.next(p) == decode_status::error);
    CHECK(d.failure().code == codec_error::unknown_type);
}

// -- the maximum size
// ------------------------------------------------------------------------------

TEST_CASE(
    "native codec: limits: a packet of exactly max_packet_bytes is accepted, one more is not") {
    codec_limits limits;
    limits.max_packet_bytes = 4096;
    packet p = make_packet(3, 1, send{1, false, message{}});
    size_t empty = encoded(p, peer::client).size();
    std::get<send>(p.body).msg.body.assign(limits.max_packet_bytes - empty, 'x');
    std::string at = encoded(p, peer::client, limits);
    REQUIRE(at.size() == limits.max_packet_bytes);
    outcome o = decode_all(at, peer::client, limits);
    CHECK(o.status == decode_status::packet);
    CHECK(o.consumed == limits.max_packet_bytes);

    std::get<send>(p.body).msg.body.push_back('x');
    std::string out = "keep";
    codec_failure f = encode(p, peer::client, limits, out);
    CHECK(f.code == codec_error::packet_too_large);
    CHECK(out == "keep");
    std::string over = encoded(p, peer::client);
    REQUIRE(over.size() == limits.max_packet_bytes + 1);
    refused(over, peer::client, codec_error::packet_too_large, "length", 0, limits);
}

TEST_CASE("native codec: limits: an oversize length is refused from its four bytes alone") {
    decoder d(peer::client);
    std::string len;
    put_le(len, 0xffffffff, 4);
    d.feed(len.data(), 3);
    packet p;
    CHECK(d.next(p) == decode_status::need_more);
    d.feed(len.data() + 3, 1);
    CHECK(d.next(p) == decode_status::error);
    CHECK(d.failure().code == codec_error::packet_too_large);
    CHECK(d.failure().declared == 0xffffffff);
    CHECK(d.buffered() == 0);
    // A STOMP client on the native port: "CONN" read as a length is far above any limit.
    refused("CONNECT\naccept-version:1.2\n\n", peer::client, codec_error::packet_too_large,
            "length", 0);
}

// -- malformed headers
// -----------------------------------------------------------------------------

TEST_CASE("native codec: malformed: a length below the header is packet_too_small") {
    refused(raw(5, 0, 0, std::string(8, '\0'), static_cast<uint32_t>(-9)), peer::client,
            codec_error::packet_too_small, "length", 0);
    refused(std::string(4, '\0'), peer::client, codec_error::packet_too_small, "length", 0);
}

TEST_CASE("native codec: malformed: a type code that is no packet type is unknown_type") {
    for (uint8_t code : {0, 10, 23, 46, 69, 77, 255}) {
        refused(raw(code, 0, 0, ""), peer::client, codec_error::unknown_type, "type", 4);
    }
}

TEST_CASE("native codec: malformed: a reserved header byte that is not 0 is reserved_not_zero") {
    for (size_t i : {5, 6, 7}) {
        std::string b = encoded(make_packet(ping{1}), peer::client);
        b[i] = 1;
        refused(b, peer::client, codec_error::reserved_not_zero, "reserved", i);
    }
}

TEST_CASE("native codec: malformed: connection packets off channel 0 and session packets on it") {
    refused(raw(5, 7, 0, std::string(8, '\0')), peer::client, codec_error::wrong_channel, "channel",
            8);
    refused(raw(22, 0, 0, std::string(8, '\1')), peer::client, codec_error::wrong_channel,
            "channel", 8);
    refused(raw(41, 0, 1, ""), peer::client, codec_error::wrong_channel, "channel", 8);
}

TEST_CASE("native codec: malformed: stream packets need a sequence, the others must not have one") {
    refused(raw(41, 3, 0, ""), peer::client, codec_error::bad_sequence, "sequence", 12);
    refused(raw(5, 0, 9, std::string(8, '\0')), peer::client, codec_error::bad_sequence, "sequence",
            12);
    refused(raw(22, 3, 9, std::string(8, '\1')), peer::server, codec_error::bad_sequence,
            "sequence", 12);
}

TEST_CASE("native codec: malformed: a packet type the sending peer may not send") {
    std::string deliver_bytes = encoded(make_packet(3, 3, deliver{8, 99, 2, sample_message()}));
    refused(deliver_bytes, peer::client, codec_error::wrong_direction, "type", 4);
    std::string send_bytes = encoded(make_packet(3, 5, send{4, true, sample_message()}));
    refused(send_bytes, peer::server, codec_error::wrong_direction, "type", 4);
    refused(encoded(make_packet(hello{})), peer::server, codec_error::wrong_direction, "type", 4);
}

// -- malformed bodies
// --------------------------------------------------------------------------------

TEST_CASE("native codec: malformed: a fixed-size field past the packet's end is truncated_field") {
    refused(raw(5, 0, 0, std::string(7, '\0')), peer::client, codec_error::truncated_field, "nonce",
            20);
    // ack: consumer_id (4) and message_id (8) present, mode missing.
    refused(raw(38, 3, 1, std::string(12, '\0')), peer::client, codec_error::truncated_field,
            "mode", 32);
}

TEST_CASE("native codec: malformed: a string or body longer than the packet is length_mismatch") {
    // close_consumer's neighbour delete_queue: a queue name declaring 10 bytes with 3 present.
    std::string body;
    put_le(body, 10, 2);
    body += "abc";
    refused(raw(45, 3, 1, body), peer::client, codec_error::length_mismatch, "queue", 20);
    // send: every field up to the body, then a body length of 300 with 12 bytes present.
    std::string s = encoded(make_packet(3, 1, send{1, false, message{}}), peer::client);
    s.resize(s.size() - 4);
    put_le(s, 300, 4);
    size_t body_at = s.size() - 4;
    s += std::string(12, 'x');
    s.replace(0, 4, std::string());
    std::string len;
    put_le(len, s.size() + 4, 4);
    s = len + s;
    refused(s, peer::client, codec_error::length_mismatch, "body", body_at);
    outcome o = decode_all(s, peer::client);
    CHECK(o.failure.describe()
          == "send: field 'body' at offset " + std::to_string(body_at)
                 + ": length_mismatch (300 declared, 12 allowed)");
}

TEST_CASE("native codec: malformed: a string above max_string_bytes is string_too_long") {
    codec_limits limits;
    limits.max_string_bytes = 8;
    refused(raw(45, 3, 1, str16("123456789")), peer::client, codec_error::string_too_long, "queue",
            20, limits);
    // At the limit it is accepted.
    CHECK(decode_all(raw(45, 3, 1, str16("12345678")), peer::client, limits).status
          == decode_status::packet);
    // The limit applies before the bytes are looked for: 40000 declared, 2 present.
    std::string b;
    put_le(b, 40000, 2);
    refused(raw(45, 3, 1, b + "ab"), peer::client, codec_error::string_too_long, "queue", 20);
    // And encode refuses what decode would.
    std::string out;
    CHECK(encode(make_packet(3, 1, delete_queue{"123456789"}), peer::client, limits, out).code
          == codec_error::string_too_long);
    CHECK(out.empty());
}

TEST_CASE("native codec: malformed: an xid part above 64 bytes is string_too_long") {
    std::string body;
    put_le(body, 1, 4);
    put_le(body, 65, 1);
    body += std::string(65, 'g');
    put_le(body, 0, 1);
    refused(raw(52, 3, 1, body), peer::client, codec_error::string_too_long, "gtrid", 24);
    std::string out;
    xid big{1, std::string(65, 'g'), ""};
    CHECK(encode(make_packet(3, 1, xa_prepare{big}), peer::client, {}, out).code
          == codec_error::string_too_long);
}

TEST_CASE("native codec: malformed: counts above their limit or beyond the bytes left") {
    // xa_recovered claiming 4000 xids (within max_list_entries) with 6 bytes left: refused at
    // the count, before any entry is allocated or read.
    std::string body;
    put_le(body, 1, 8);
    put_le(body, 4000, 2);
    body += std::string(6, '\0');
    refused(raw(75, 3, 1, body), peer::server, codec_error::count_too_large, "xids", 28);
    outcome o = decode_all(raw(75, 3, 1, body), peer::server);
    CHECK(o.failure.declared == 4000);
    CHECK(o.failure.allowed == 1);
    // 60000 is above max_list_entries (4096) itself.
    body.clear();
    put_le(body, 1, 8);
    put_le(body, 60000, 2);
    o = decode_all(raw(75, 3, 1, body), peer::server);
    CHECK(o.failure.code == codec_error::count_too_large);
    CHECK(o.failure.allowed == 4096);
    // topology: 2 members declared, room for 1.
    std::string t;
    put_le(t, 1, 8);
    put_le(t, 2, 2);
    t += std::string(11, '\0');
    refused(raw(7, 0, 0, t), peer::server, codec_error::count_too_large, "members", 28);
    // headers above max_headers, though the bytes would fit.
    codec_limits limits;
    limits.max_headers = 2;
    message m;
    m.headers = {{"a", "1"}, {"b", "2"}, {"c", "3"}};
    std::string s = encoded(make_packet(3, 1, send{1, false, m}), peer::client);
    o = decode_all(s, peer::client, limits);
    CHECK(o.failure.code == codec_error::count_too_large);
    CHECK(std::string(o.failure.field) == "headers");
    std::string out;
    CHECK(encode(make_packet(3, 1, send{1, false, m}), peer::client, limits, out).code
          == codec_error::count_too_large);
}

TEST_CASE("native codec: malformed: out-of-range values are bad_value") {
    auto bad = [](const std::string& bytes, peer from, const std::string& field) {
        outcome o = decode_all(bytes, from);
        INFO(o.failure.describe());
        REQUIRE(o.status == decode_status::error);
        CHECK(o.failure.code == codec_error::bad_value);
        CHECK(std::string(o.failure.field) == field);
    };
    std::string b;
    // A bool that is 2 (session_reattached.found).
    b.clear();
    put_le(b, 2, 1);
    put_le(b, 0, 8);
    bad(raw(21, 3, 0, b), peer::server, "found");
    // An unknown routing type, ack mode, error code and xa flag.
    bad(raw(44, 3, 1,
            str16("q") + str16("a") + std::string(1, '\2') + std::string(2, '\0') + str16("")),
        peer::client, "routing");
    b.clear();
    put_le(b, 8, 4);
    put_le(b, 1, 8);
    put_le(b, 3, 1);
    put_le(b, 0, 1);
    bad(raw(38, 3, 1, b), peer::client, "mode");
    for (uint16_t code : {0, 29, 999}) {
        b.clear();
        put_le(b, code, 2);
        bad(raw(8, 0, 0, b + str16("x")), peer::server, "code");
    }
    b.clear();
    put_le(b, 1, 4);
    put_le(b, 1, 1);
    b += "g";
    put_le(b, 0, 1);
    put_le(b, 3, 1);
    bad(raw(50, 3, 1, b), peer::client, "flag");
    // Numbers outside their ranges, checked by encode as well.
    auto refused_by_encode = [](const packet& p, peer from) {
        std::string out;
        CHECK(encode(p, from, {}, out).code == codec_error::bad_value);
        CHECK(out.empty());
    };
    message m;
    m.priority = 10;
    refused_by_encode(make_packet(3, 1, send{1, false, m}), peer::client);
    m.priority = 4;
    m.expiration_ms = -1;
    refused_by_encode(make_packet(3, 1, send{1, false, m}), peer::client);
    refused_by_encode(make_packet(3, 1, create_producer{1, "a", -2}), peer::client);
    refused_by_encode(make_packet(3, 1, create_consumer{1, "q", "", -5, false, false}),
                      peer::client);
    refused_by_encode(make_packet(3, 1, create_session{"s", false, false, 0}), peer::client);
    refused_by_encode(make_packet(3, 1, create_session{"", false, false, -1}), peer::client);
    refused_by_encode(make_packet(3, 1, ok{0}), peer::server);
    refused_by_encode(make_packet(3, 0, packets_confirmed{0}), peer::server);
    refused_by_encode(make_packet(3, 1, xa_rollback{xid{1, "", ""}}), peer::client);
    refused_by_encode(make_packet(hello_ok{1, 1023, "s", "n"}), peer::server);
    refused_by_encode(make_packet(hello{hello_magic, 2, 1, 65536, "c"}), peer::client);
    // The same bytes the encoder refused, written by hand, are refused by the decoder.
    b.clear();
    put_le(b, 0, 8);
    bad(raw(70, 3, 1, b), peer::server, "correlation");
    b.clear();
    put_le(b, 1, 4);
    b += str16("a");
    put_le(b, static_cast<uint32_t>(-2), 4);
    bad(raw(32, 3, 1, b), peer::client, "window_bytes");
}

TEST_CASE("native codec: malformed: bytes after the last field are trailing_bytes") {
    refused(raw(5, 0, 0, std::string(9, '\0')), peer::client, codec_error::trailing_bytes, "", 28);
    refused(raw(41, 3, 1, "x"), peer::client, codec_error::trailing_bytes, "", 20);
}

TEST_CASE("native codec: version negotiation: bad magic and unknown versions are refused") {
    std::string h = encoded(make_packet(hello{}), peer::client);
    h[20] = 'X';
    refused(h, peer::client, codec_error::bad_magic, "magic", 20);
    std::string b;
    put_le(b, hello_magic, 4);
    put_le(b, 3, 2);
    put_le(b, 4, 2);
    refused(raw(1, 0, 0, b + str16("future")), peer::client, codec_error::unknown_version,
            "version_max", 26);
    b.clear();
    put_le(b, hello_magic, 4);
    put_le(b, 0, 2);
    put_le(b, 0, 2);
    refused(raw(1, 0, 0, b + str16("past")), peer::client, codec_error::unknown_version,
            "version_max", 26);
    for (uint16_t v : {0, 3}) {
        b.clear();
        put_le(b, v, 2);
        put_le(b, 1048576, 4);
        refused(raw(2, 0, 0, b + str16("s") + str16("n")), peer::server,
                codec_error::unknown_version, "version", 20);
    }
    // A range that includes version 1 or 2 is fine, whatever its ends.
    for (auto [lo, hi] : {std::pair<uint16_t, uint16_t>{1, 9}, {2, 2}, {1, 1}, {0, 1}, {2, 7}}) {
        INFO("range ", lo, "..", hi);
        CHECK(decode_all(encoded(make_packet(hello{hello_magic, lo, hi, 65536, "c"}), peer::client),
                         peer::client)
                  .status
              == decode_status::packet);
    }
    for (uint16_t v : {1, 2}) {
        CHECK(decode_all(encoded(make_packet(hello_ok{v, 1048576, "s", "n"}), peer::server),
                         peer::server)
                  .status
              == decode_status::packet);
    }
}

TEST_CASE("native codec: encode: routing fields are checked like the decoder checks them") {
    std::string out;
    CHECK(encode(make_packet(3, 0, ping{1}), peer::client, {}, out).code
          == codec_error::wrong_channel);
    CHECK(encode(make_packet(3, 0, commit{}), peer::client, {}, out).code
          == codec_error::bad_sequence);
    CHECK(encode(make_packet(3, 1, deliver{}), peer::client, {}, out).code
          == codec_error::wrong_direction);
    CHECK(out.empty());
}

// -- the spec and the code agree
// -------------------------------------------------------------------

namespace {

// The cells of every table row of docs/protocol.md whose first cell is a number.
std::vector<std::vector<std::string>> numbered_rows() {
    std::ifstream in(ACTORMQ_SOURCE_DIR "/docs/protocol.md");
    REQUIRE(in.good());
    std::vector<std::vector<std::string>> rows;
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("| ", 0) != 0) {
            continue;
        }
        std::vector<std::string> cells;
        std::stringstream ss(line.substr(1));
        std::string cell;
        while (std::getline(ss, cell, '|')) {
            size_t b = cell.find_first_not_of(' ');
            size_t e = cell.find_last_not_of(' ');
            cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
        }
        if (!cells.empty() && !cells[0].empty()
            && cells[0].find_first_not_of("0123456789") == std::string::npos) {
            rows.push_back(cells);
        }
    }
    return rows;
}

std::string unquote(const std::string& s) {
    return s.size() >= 2 && s.front() == '`' ? s.substr(1, s.size() - 2) : s;
}

} // namespace

TEST_CASE("native codec: docs: §1 lists every packet type with its code, class and senders") {
    size_t seen = 0;
    for (const auto& row : numbered_rows()) {
        bool packet_row = row.size() >= 6
                          && (row[2] == "connection" || row[2] == "control" || row[2] == "stream");
        if (!packet_row) {
            continue;
        }
        const packet_type_info* i = info_for_code(static_cast<uint8_t>(std::stoi(row[0])));
        INFO("row ", row[0], " ", row[1]);
        REQUIRE(i != nullptr);
        CHECK(unquote(row[1]) == i->name);
        const char* klass = i->klass == channel_class::connection        ? "connection"
                            : i->klass == channel_class::session_control ? "control"
                                                                         : "stream";
        CHECK(row[2] == klass);
        std::string from = i->from_client && i->from_server ? "C, S" : i->from_client ? "C" : "S";
        CHECK(row[3] == from);
        ++seen;
    }
    CHECK(seen == packet_type_count);
}

TEST_CASE("native codec: docs: §15 lists every error code with its name") {
    size_t seen = 0;
    for (const auto& row : numbered_rows()) {
        if (row.size() != 3 || row[1].empty() || row[1][0] != '`') {
            continue;
        }
        auto code = static_cast<error_code>(std::stoi(row[0]));
        INFO("row ", row[0]);
        REQUIRE(is_valid(code));
        CHECK(unquote(row[1]) == to_string(code));
        ++seen;
    }
    CHECK(seen == static_cast<size_t>(error_code::internal_error));
}

// -- version 2: create_consumer's pre_acknowledge (§2, §6) ---------------------------------------

namespace {

codec_limits at_version(uint16_t v) {
    codec_limits l;
    l.version = v;
    return l;
}

// create_consumer{8, "q", "", 1024, false, pre} on channel 3: the header, then a body of
// 4 + 3 + 2 + 4 + 1 bytes (14 at offset 20), and version 2's pre_acknowledge at offset 34.
packet consumer_packet(bool pre) {
    return make_packet(3, 1, create_consumer{8, "q", "", 1024, false, pre});
}

} // namespace

TEST_CASE("native codec: version 2: pre_acknowledge is the byte after browse_only") {
    std::string v2 = encoded(consumer_packet(true), peer::client, at_version(2));
    std::string v1 = encoded(consumer_packet(false), peer::client, at_version(1));
    REQUIRE(v2.size() == 35);
    REQUIRE(v1.size() == 34);
    CHECK(v2[34] == 1);
    // Apart from the length and the new byte, version 1's bytes are version 2's.
    CHECK(v2.substr(4, 30) == v1.substr(4, 30));
    CHECK(encoded(consumer_packet(false), peer::client, at_version(2))[34] == 0);
    // The default limits speak the newest version.
    CHECK(encoded(consumer_packet(true), peer::client) == v2);
    for (bool pre : {false, true}) {
        outcome o = decode_all(encoded(consumer_packet(pre), peer::client), peer::client);
        REQUIRE(o.status == decode_status::packet);
        CHECK(std::get<create_consumer>(o.pkt.body).pre_acknowledge == pre);
    }
    outcome o = decode_all(v1, peer::client, at_version(1));
    REQUIRE(o.status == decode_status::packet);
    CHECK_FALSE(std::get<create_consumer>(o.pkt.body).pre_acknowledge);
    CHECK(o.consumed == v1.size());
    // Every strict prefix is "need more" at both versions.
    for (size_t n = 0; n < v2.size(); ++n) {
        CHECK(decode_all(v2.substr(0, n), peer::client, at_version(2)).status
              == decode_status::need_more);
        if (n < v1.size()) {
            CHECK(decode_all(v1.substr(0, n), peer::client, at_version(1)).status
                  == decode_status::need_more);
        }
    }
}

TEST_CASE("native codec: version 2: version 1 cannot say pre_acknowledge, either way round") {
    // The encoder refuses what version 1 has no field for, and writes nothing.
    std::string out = "keep";
    codec_failure f = encode(consumer_packet(true), peer::client, at_version(1), out);
    CHECK(f.code == codec_error::bad_value);
    CHECK(std::string(f.field) == "pre_acknowledge");
    CHECK(out == "keep");
    // Version 2's bytes read as version 1 have a byte too many; version 1's read as version 2
    // lack one.
    refused(encoded(consumer_packet(false), peer::client, at_version(2)), peer::client,
            codec_error::trailing_bytes, "", 34, at_version(1));
    refused(encoded(consumer_packet(false), peer::client, at_version(1)), peer::client,
            codec_error::truncated_field, "pre_acknowledge", 34, at_version(2));
    // A bool of 2 is a bad value, as every bool.
    std::string bad = encoded(consumer_packet(true), peer::client, at_version(2));
    bad[34] = 2;
    refused(bad, peer::client, codec_error::bad_value, "pre_acknowledge", 34, at_version(2));
}

TEST_CASE("native codec: version 2: every split of a create_consumer stream, at either version") {
    for (uint16_t v : {1, 2}) {
        std::string s;
        for (bool pre : {false, true}) {
            if (!pre || v == 2) {
                s += encoded(consumer_packet(pre), peer::client, at_version(v));
            }
        }
        s += encoded(make_packet(3, 2, close_consumer{8}), peer::client, at_version(v));
        for (size_t cut = 0; cut <= s.size(); ++cut) {
            INFO("version ", v, " cut at ", cut);
            decoder d(peer::client);
            d.set_version(v);
            std::string again;
            for (auto [from, to] : {std::pair<size_t, size_t>{0, cut}, {cut, s.size()}}) {
                d.feed(s.data() + from, to - from);
                packet p;
                decode_status st;
                while ((st = d.next(p)) == decode_status::packet) {
                    again += encoded(p, peer::client, at_version(v));
                }
                REQUIRE(st == decode_status::need_more);
            }
            CHECK(again == s);
        }
    }
}

TEST_CASE("native codec: version 2: a decoder reads the version set after hello from then on") {
    // A version 1 client's hello, then its create_consumer, in one read: the server sets
    // version 1 on the decoder once it has taken the hello (native_connection::on_hello).
    std::string s = encoded(make_packet(hello{hello_magic, 1, 1, 65536, "old"}), peer::client)
                    + encoded(consumer_packet(false), peer::client, at_version(1));
    decoder d(peer::client);
    d.feed(s.data(), s.size());
    packet p;
    REQUIRE(d.next(p) == decode_status::packet);
    d.set_version(1);
    REQUIRE(d.next(p) == decode_status::packet);
    CHECK(std::get<create_consumer>(p.body).queue == "q");
    CHECK(d.buffered() == 0);
}
