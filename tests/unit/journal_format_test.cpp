// SPDX-License-Identifier: Apache-2.0
#include "protocol/journal_format.hpp"

#include <boost/crc.hpp>
#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>
#include <zlib.h>

using namespace actormq::journal;
using namespace std::string_literals;

namespace {

constexpr record_type all_types[] = {
    record_type::add_queue, record_type::delete_queue, record_type::add_message,
    record_type::ack,       record_type::prepare,      record_type::commit,
    record_type::rollback,  record_type::duplicate_id,
};

bool carries_tx(record_type t) {
    return t == record_type::add_message || t == record_type::ack || t == record_type::duplicate_id;
}

std::string encoded(const record& r) {
    std::string out;
    encode(r, out);
    return out;
}

decode_status decode_all(std::string_view bytes, record& out, size_t& consumed) {
    return decode(bytes.data(), bytes.size(), out, consumed);
}

decode_status decode_all(std::string_view bytes) {
    record r;
    size_t consumed = 0;
    return decode_all(bytes, r, consumed);
}

bool same(const record& a, const record& b) {
    return a.type == b.type && a.id == b.id && a.tx_id == b.tx_id && a.payload == b.payload;
}

// A small record whose length (43) has a non-zero low byte.
record small_record() {
    return record{record_type::ack, 7, 9, "queue/a\x00\xff!"s + "abcdefghijkl"};
}

message_payload full_message() {
    message_payload p;
    p.message_id = 0x0102030405060708ULL;
    p.address = "orders";
    p.destination = "/queue/orders";
    p.headers = {
        {"content-type", "text/plain"}, {"x-empty", ""}, {"", "no name"}, {"bin", "\x00\x01\xff"s}};
    p.body = "hello\x00world"s;
    p.queues = {"orders", "orders.audit", ""};
    return p;
}

} // namespace

TEST_CASE("journal format: encode/decode: every record type round-trips") {
    for (auto type : all_types) {
        CAPTURE(static_cast<int>(type));
        record in{type, 0xfedcba9876543210ULL, carries_tx(type) ? 42u : 0u, "p\x00q"s};
        auto bytes = encoded(in);
        REQUIRE(bytes.size() == record_header_bytes + 3);
        record out;
        size_t consumed = 0;
        REQUIRE(decode_all(bytes, out, consumed) == decode_status::ok);
        CHECK(consumed == bytes.size());
        CHECK(same(in, out));
        CHECK(encoded(out) == bytes);
    }
}

TEST_CASE("journal format: encode: the header is little-endian with a CRC-32 over the rest") {
    record in{record_type::add_message, 0x0102030405060708ULL, 0x1112131415161718ULL, "xyz"};
    auto b = encoded(in);
    auto u8 = [&b](size_t i) {
        return static_cast<unsigned char>(b[i]);
    };
    CHECK(b.substr(0, 4) == "\x1f\x00\x00\x00"s); // 28 + 3 bytes
    CHECK(u8(4) == 3);
    CHECK(b.substr(5, 3) == "\x00\x00\x00"s);
    CHECK(b.substr(8, 8) == "\x08\x07\x06\x05\x04\x03\x02\x01"s);
    CHECK(b.substr(16, 8) == "\x18\x17\x16\x15\x14\x13\x12\x11"s);
    CHECK(b.substr(28) == "xyz");
    boost::crc_32_type crc;
    crc.process_bytes(b.data(), 24);
    crc.process_bytes(b.data() + 28, b.size() - 28);
    uint32_t stored = u8(24) | u8(25) << 8 | u8(26) << 16 | static_cast<uint32_t>(u8(27)) << 24;
    CHECK(stored == crc.checksum());
    // Pins the on-disk bytes (cross-checked with Python's zlib.crc32): a change here breaks
    // every existing journal.
    CHECK(stored == 0xd0e5709au);
}

TEST_CASE("journal format: encode: appends after what is already in the buffer") {
    std::string out = "prefix";
    encode(small_record(), out);
    CHECK(out.substr(0, 6) == "prefix");
    CHECK(out.substr(6) == encoded(small_record()));
}

TEST_CASE("journal format: decode: consecutive records decode one after another") {
    std::string bytes;
    std::vector<record> in = {small_record(),
                              {record_type::commit, 8, 0, ""},
                              {record_type::add_queue, 9, 0, std::string(1000, 'q')}};
    for (const auto& r : in) {
        encode(r, bytes);
    }
    bytes += std::string(16, '\0');
    size_t pos = 0;
    for (const auto& expected : in) {
        record out;
        size_t consumed = 0;
        REQUIRE(decode(bytes.data() + pos, bytes.size() - pos, out, consumed) == decode_status::ok);
        CHECK(same(out, expected));
        pos += consumed;
    }
    CHECK(decode_all(std::string_view(bytes).substr(pos)) == decode_status::end);
}

TEST_CASE("journal format: decode: a flipped bit anywhere is detected") {
    auto good = encoded(small_record());
    // Once on its own and once followed by more data, so a grown length finds bytes to read.
    for (auto tail : {""s, std::string(64, '\0'), std::string(64, 'x')}) {
        for (size_t bit = 0; bit < good.size() * 8; ++bit) {
            auto bad = good + tail;
            bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
            CAPTURE(bit);
            CAPTURE(tail.size());
            auto st = decode_all(bad);
            CHECK(st != decode_status::ok);
            if (bit >= 32) {
                CHECK(st == decode_status::corrupt);
            }
        }
    }
}

TEST_CASE("journal format: decode: a flipped bit in the length is end, truncated or corrupt") {
    // 32 bytes, so single flips reach every outcome.
    auto good = encoded(record{record_type::commit, 1, 0, "four"});
    REQUIRE(good.size() == 32);
    auto flipped = [&good](size_t byte, int mask) {
        auto bad = good;
        bad[byte] = static_cast<char>(bad[byte] ^ mask);
        return bad;
    };
    CHECK(decode_all(flipped(0, 0x20)) == decode_status::end);           // length 0
    CHECK(decode_all(flipped(0, 0x40)) == decode_status::truncated);     // 96 declared, 32 here
    CHECK(decode_all(flipped(0, 0x01) + "z") == decode_status::corrupt); // 33: CRC mismatch
    CHECK(last_corrupt_reason() == "CRC mismatch");
    CHECK(decode_all(flipped(3, 0x10)) == decode_status::corrupt);
    CHECK(last_corrupt_reason() == "length 268435488 exceeds the record maximum of 67108864 bytes");
    auto shorter = good;
    shorter[0] = 27;
    CHECK(decode_all(shorter) == decode_status::corrupt);
    CHECK(last_corrupt_reason() == "length 27 is shorter than a record header");
}

TEST_CASE("journal format: decode: a record cut at every length is truncated") {
    for (const auto& r : {small_record(), record{record_type::add_queue, 1, 0, ""},
                          record{record_type::add_message, 2, 3, std::string(300, 'm')}}) {
        auto bytes = encoded(r);
        for (size_t n = 0; n < bytes.size(); ++n) {
            CAPTURE(n);
            CHECK(decode_all(std::string_view(bytes).substr(0, n)) == decode_status::truncated);
        }
    }
}

TEST_CASE("journal format: decode: four zero bytes are the end, fewer are truncated") {
    CHECK(decode_all(""s) == decode_status::truncated);
    CHECK(decode_all("\0"s) == decode_status::truncated);
    CHECK(decode_all("\0\0\0"s) == decode_status::truncated);
    record out;
    size_t consumed = 99;
    CHECK(decode_all("\0\0\0\0"s, out, consumed) == decode_status::end);
    CHECK(consumed == 0);
    CHECK(decode_all(std::string(4096, '\0')) == decode_status::end);
}

TEST_CASE("journal format: decode: names the reason a record is corrupt") {
    auto good = encoded(small_record());
    auto with = [&good](size_t byte, char value) {
        auto bad = good;
        bad[byte] = value;
        return bad;
    };
    CHECK(decode_all(with(4, 0)) == decode_status::corrupt);
    CHECK(last_corrupt_reason() == "unknown record type 0");
    CHECK(decode_all(with(4, 9)) == decode_status::corrupt);
    CHECK(last_corrupt_reason() == "unknown record type 9");
    for (size_t byte : {5, 6, 7}) {
        CHECK(decode_all(with(byte, 1)) == decode_status::corrupt);
        CHECK(last_corrupt_reason() == "reserved bytes are not zero");
    }
    auto commit = encoded(record{record_type::commit, 1, 0, ""});
    commit[16] = 1;
    CHECK(decode_all(commit) == decode_status::corrupt);
    CHECK(last_corrupt_reason() == "record type 6 may not carry a transaction id");
    CHECK(decode_all(with(30, 'X')) == decode_status::corrupt);
    CHECK(last_corrupt_reason() == "CRC mismatch");
}

TEST_CASE("journal format: decode: a bad header field is corrupt even before the record ends") {
    auto bad = encoded(small_record());
    bad[4] = 42;
    // Five bytes are enough to know no more bytes could make this a record.
    CHECK(decode_all(std::string_view(bad).substr(0, 5)) == decode_status::corrupt);
    bad = encoded(record{record_type::prepare, 1, 0, "12345678"});
    bad[20] = 1;
    CHECK(decode_all(std::string_view(bad).substr(0, 24)) == decode_status::corrupt);
    CHECK(decode_all(std::string_view(bad).substr(0, 23)) == decode_status::truncated);
}

TEST_CASE("journal format: encode: refuses a record that decode would reject") {
    std::string out;
    CHECK_THROWS_AS(encode(record{record_type::add_queue, 1, 5, ""}, out), std::invalid_argument);
    CHECK_THROWS_AS(encode(record{record_type::commit, 1, 5, ""}, out), std::invalid_argument);
    CHECK_THROWS_AS(encode(record{static_cast<record_type>(0), 1, 0, ""}, out),
                    std::invalid_argument);
    CHECK_THROWS_AS(encode(record{static_cast<record_type>(9), 1, 0, ""}, out),
                    std::invalid_argument);
    record big{record_type::add_message, 1, 0, std::string(record_max_bytes - 27, 'b')};
    CHECK_THROWS_AS(encode(big, out), std::length_error);
    CHECK(out.empty());
    big.payload.pop_back();
    encode(big, out);
    CHECK(out.size() == record_max_bytes);
    CHECK(decode_all(out) == decode_status::ok);
}

// -- payloads -----------------------------------------------------------------------------

TEST_CASE("journal format: payloads: every kind round-trips") {
    queue_payload q{"orders", "orders.addr", 1};
    queue_payload q2;
    REQUIRE(decode_payload(encode_payload(q), q2));
    CHECK(q2.name == q.name);
    CHECK(q2.address == q.address);
    CHECK(q2.routing == 1);

    auto m = full_message();
    message_payload m2;
    REQUIRE(decode_payload(encode_payload(m), m2));
    CHECK(m2.message_id == m.message_id);
    CHECK(m2.address == m.address);
    CHECK(m2.destination == m.destination);
    CHECK(m2.headers == m.headers);
    CHECK(m2.body == m.body);
    CHECK(m2.queues == m.queues);
    CHECK(encode_payload(m2) == encode_payload(m));

    ack_payload a{"orders", 77}, a2;
    REQUIRE(decode_payload(encode_payload(a), a2));
    CHECK(a2.queue == "orders");
    CHECK(a2.message_id == 77);

    tx_payload t{0xffffffffffffffffULL}, t2;
    REQUIRE(decode_payload(encode_payload(t), t2));
    CHECK(t2.tx_id == t.tx_id);

    dup_payload d{"addr", "dup-1"}, d2;
    REQUIRE(decode_payload(encode_payload(d), d2));
    CHECK(d2.address == "addr");
    CHECK(d2.dup_id == "dup-1");
}

TEST_CASE("journal format: payloads: empty fields round-trip") {
    message_payload m, m2;
    m2.headers = {{"stale", "x"}};
    m2.queues = {"stale"};
    REQUIRE(decode_payload(encode_payload(m), m2));
    CHECK(m2.headers.empty());
    CHECK(m2.queues.empty());
    CHECK(m2.body.empty());
    CHECK(encode_payload(m).size() == 8 + 4 + 4 + 4 + 4 + 4);
}

TEST_CASE("journal format: payloads: integers and lengths are little-endian") {
    CHECK(encode_payload(tx_payload{0x0102030405060708ULL}) == "\x08\x07\x06\x05\x04\x03\x02\x01");
    CHECK(encode_payload(dup_payload{"ab", ""}) == "\x02\x00\x00\x00"s + "ab" + "\0\0\0\0"s);
    CHECK(encode_payload(queue_payload{"n", "", 1}) == "\x01\0\0\0n\0\0\0\0\x01"s);
}

namespace {

template <class Payload>
void check_rejects_bad_lengths(const Payload& p) {
    auto bytes = encode_payload(p);
    Payload out;
    REQUIRE(decode_payload(bytes, out));
    for (size_t n = 0; n < bytes.size(); ++n) {
        CAPTURE(n);
        CHECK_FALSE(decode_payload(std::string_view(bytes).substr(0, n), out));
    }
    CHECK_FALSE(decode_payload(bytes + "\0"s, out));
    CHECK_FALSE(decode_payload(bytes + "trailing", out));
}

} // namespace

TEST_CASE("journal format: decode_payload: rejects short input and trailing bytes") {
    check_rejects_bad_lengths(queue_payload{"q", "a", 0});
    check_rejects_bad_lengths(full_message());
    check_rejects_bad_lengths(ack_payload{"q", 5});
    check_rejects_bad_lengths(tx_payload{5});
    check_rejects_bad_lengths(dup_payload{"a", "d"});
}

TEST_CASE("journal format: message metadata: everything but the body, with the same checks") {
    auto m = full_message();
    auto bytes = encode_payload(m);
    message_payload meta;
    meta.body = "left over";
    REQUIRE(decode_message_metadata(bytes, meta));
    CHECK(meta.message_id == m.message_id);
    CHECK(meta.address == m.address);
    CHECK(meta.destination == m.destination);
    CHECK(meta.headers == m.headers);
    CHECK(meta.queues == m.queues);
    CHECK(meta.body.empty());
    message_payload ignored;
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
        CHECK_FALSE(decode_message_metadata(bytes.substr(0, cut), ignored));
    }
    CHECK_FALSE(decode_message_metadata(bytes + "x", ignored));
}

TEST_CASE("journal format: decode_payload: rejects huge counts and lengths without allocating") {
    message_payload m;
    // message_id, two empty strings, then 2^32-1 headers with nothing behind them.
    auto prefix = std::string(8, '\0') + std::string(8, '\0');
    CHECK_FALSE(decode_payload(prefix + "\xff\xff\xff\xff"s, m));
    // One header's worth of bytes is not enough for two.
    CHECK_FALSE(decode_payload(prefix + "\x02\0\0\0"s + std::string(8, '\0'), m));
    // Zero headers, an empty body, then a huge queue count.
    CHECK_FALSE(decode_payload(prefix + std::string(8, '\0') + "\xff\xff\xff\x7f"s, m));
    ack_payload a;
    CHECK_FALSE(decode_payload("\xff\xff\xff\xff"s + std::string(8, '\0'), a));
    dup_payload d;
    CHECK_FALSE(decode_payload("\0\0\0\0\xfe\xff\xff\xff"s + "x", d));
}

TEST_CASE("journal format: decode_payload: rejects a routing type that does not exist") {
    auto bytes = encode_payload(queue_payload{"q", "a", 1});
    bytes.back() = 2;
    queue_payload out;
    CHECK_FALSE(decode_payload(bytes, out));
}

TEST_CASE("journal format: decode_payload: one kind's bytes are not another kind") {
    ack_payload a;
    CHECK_FALSE(decode_payload(encode_payload(tx_payload{1}), a));
    tx_payload t;
    CHECK_FALSE(decode_payload(encode_payload(ack_payload{"q", 1}), t));
    queue_payload q;
    CHECK_FALSE(decode_payload(encode_payload(dup_payload{"a", "d"}), q));
}

TEST_CASE("journal format: crc32_update: equals zlib's CRC-32 for every length, offset and seed") {
    // Lengths around every block boundary of the carry-less path (64, then 16-byte steps) and
    // well past it, at every alignment, continuing from several seeds.
    std::string data(5000 + 16, '\0');
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (auto& c : data) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c = static_cast<char>(x);
    }
    for (uint32_t seed : {0u, 1u, 0xffffffffu, 0x12345678u}) {
        for (size_t offset = 0; offset < 16; offset += 5) {
            for (size_t len = 0; len <= 5000; len += (len < 300 ? 1 : 97)) {
                CAPTURE(seed);
                CAPTURE(offset);
                CAPTURE(len);
                const char* p = data.data() + offset;
                auto want = static_cast<uint32_t>(
                    ::crc32(seed, reinterpret_cast<const Bytef*>(p), static_cast<uInt>(len)));
                REQUIRE(crc32_update(seed, p, len) == want);
            }
        }
    }
}

TEST_CASE("journal format: crc32_update: a flipped bit anywhere in a long buffer changes it") {
    std::string data(4096, 'x');
    auto clean = crc32_update(0, data.data(), data.size());
    for (size_t i = 0; i < data.size(); i += 61) {
        for (int bit = 0; bit < 8; bit += 3) {
            auto copy = data;
            copy[i] = static_cast<char>(copy[i] ^ (1 << bit));
            CHECK(crc32_update(0, copy.data(), copy.size()) != clean);
        }
    }
}

TEST_CASE("journal format: a prepare record's payload carries its xid; without one it is the "
          "8-byte transaction id as before") {
    tx_payload in{42, std::string("\x41\0\0\0\x01g\x00", 7)}, out;
    auto bytes = encode_payload(in);
    REQUIRE(decode_payload(bytes, out));
    CHECK(out.tx_id == 42);
    CHECK(out.xid == in.xid);
    // Cut anywhere inside the xid, or with bytes after it: refused. (Cut right after the id
    // it is a valid payload without an xid: a prepare record is written whole or not at all.)
    for (size_t n = 9; n < bytes.size(); ++n) {
        CAPTURE(n);
        CHECK_FALSE(decode_payload(std::string_view(bytes).substr(0, n), out));
    }
    CHECK_FALSE(decode_payload(bytes + "x", out));
    CHECK(encode_payload(tx_payload{42}).size() == 8);
    REQUIRE(decode_payload(encode_payload(tx_payload{42}), out));
    CHECK(out.xid.empty());
    // An empty xid written out would be a second encoding of "none": refused.
    auto empty_xid = encode_payload(tx_payload{42}) + std::string(4, '\0');
    CHECK_FALSE(decode_payload(empty_xid, out));
}
