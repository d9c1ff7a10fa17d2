// SPDX-License-Identifier: Apache-2.0
#include "protocol/journal_format.hpp"

#include "protocol/little_endian.hpp"

#include <algorithm>
#include <stdexcept>
#include <zlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace actormq::journal {

namespace {

using le::get_u32;
using le::get_u64;
using le::put_u16;
using le::put_u32;
using le::put_u64;

// Offsets inside the record header (see the framing comment in the header).
constexpr size_t type_offset = 4;
constexpr size_t reserved_offset = 5;
constexpr size_t id_offset = 8;
constexpr size_t tx_id_offset = 16;
constexpr size_t crc_offset = 24;

// A decoder never reserves more elements than this up front, whatever count the input claims;
// beyond it the vector grows with the elements actually decoded.
constexpr size_t reserve_max = 1024;

thread_local std::string corrupt_reason;

bool known_type(uint8_t t) {
    return t >= static_cast<uint8_t>(record_type::add_queue)
           && t <= static_cast<uint8_t>(record_type::duplicate_id);
}

// commit, rollback and prepare name their transaction in the payload; queue records never
// belong to one.
bool may_carry_tx(record_type t) {
    return t == record_type::add_message || t == record_type::ack || t == record_type::duplicate_id;
}

// The CRC covers the header up to the CRC field and everything after it.
// zlib's crc32 is the same CRC-32 (the reflected 0x04C11DB7 polynomial) as Boost.CRC's
// crc_32_type, which journals written before it used, at about five times the speed
// (docs/journal.md, "Recovery time").
uint32_t record_crc(const char* data, size_t length) {
    auto crc = ::crc32(0L, Z_NULL, 0);
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(crc_offset));
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(data + record_header_bytes),
                  static_cast<uInt>(length - record_header_bytes));
    return static_cast<uint32_t>(crc);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ACTORMQ_CRC_CLMUL 1

#define ACTORMQ_CLMUL_TARGET __attribute__((target("pclmul,sse4.1")))

ACTORMQ_CLMUL_TARGET inline __m128i load(const char* at) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
}

// One fold: the lane times the constant's two halves, the next data block added in.
ACTORMQ_CLMUL_TARGET inline __m128i fold(__m128i lane, __m128i k, __m128i next) {
    __m128i lo = _mm_clmulepi64_si128(lane, k, 0x00);
    __m128i hi = _mm_clmulepi64_si128(lane, k, 0x11);
    return _mm_xor_si128(_mm_xor_si128(hi, lo), next);
}

// CRC-32 of whole 16-byte blocks by folding with carry-less multiplication, after Gopal et
// al., "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ Instruction" (Intel,
// 2009), in the bit-reflected form of zlib's CRC-32. Four 128-bit lanes fold 64 bytes per
// round by x^512 and x^576 mod P; the lanes then fold into one by x^128 and x^192 mod P, the
// remaining 16-byte blocks fold into it, and the 128 bits reduce to 64 (x^64 mod P), then to
// 32 by Barrett reduction (P and floor(x^64 / P)). `reg` is the CRC register, inverted as zlib
// keeps it internally; `size` is at least 64 and a multiple of 16.
ACTORMQ_CLMUL_TARGET uint32_t crc_fold(const char* p, size_t size, uint32_t reg) {
    const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596, 0x0154442bd4);
    const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
    const __m128i k5 = _mm_set_epi64x(0, 0x0163cd6124);
    const __m128i poly_mu = _mm_set_epi64x(0x01f7011641, 0x01db710641);
    const __m128i low32 = _mm_setr_epi32(~0, 0, ~0, 0);
    __m128i x1 = _mm_xor_si128(load(p), _mm_cvtsi32_si128(static_cast<int>(reg)));
    __m128i x2 = load(p + 16);
    __m128i x3 = load(p + 32);
    __m128i x4 = load(p + 48);
    p += 64;
    size -= 64;
    for (; size >= 64; p += 64, size -= 64) {
        x1 = fold(x1, k1k2, load(p));
        x2 = fold(x2, k1k2, load(p + 16));
        x3 = fold(x3, k1k2, load(p + 32));
        x4 = fold(x4, k1k2, load(p + 48));
    }
    x1 = fold(x1, k3k4, x2);
    x1 = fold(x1, k3k4, x3);
    x1 = fold(x1, k3k4, x4);
    for (; size >= 16; p += 16, size -= 16) {
        x1 = fold(x1, k3k4, load(p));
    }
    // 128 bits to 64.
    __m128i t = _mm_clmulepi64_si128(x1, k3k4, 0x10);
    x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), t);
    t = _mm_srli_si128(x1, 4);
    x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, low32), k5, 0x00);
    x1 = _mm_xor_si128(x1, t);
    // Barrett reduction to 32 bits.
    t = _mm_clmulepi64_si128(_mm_and_si128(x1, low32), poly_mu, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, low32), poly_mu, 0x00);
    x1 = _mm_xor_si128(x1, t);
    return static_cast<uint32_t>(_mm_extract_epi32(x1, 1));
}

bool cpu_has_clmul() {
    static const bool has = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
    return has;
}
#endif

// The CRC only decode() checks with: the same value record_crc() writes, faster.
uint32_t record_crc_check(const char* data, size_t length) {
    auto crc = crc32_update(0, data, crc_offset);
    return crc32_update(crc, data + record_header_bytes, length - record_header_bytes);
}

decode_status corrupt(std::string reason) {
    corrupt_reason = std::move(reason);
    return decode_status::corrupt;
}

// Checks every header field present in [data, data+size) that can be judged without the
// rest of the record, so that `truncated` only ever means "more bytes could make this valid".
decode_status check_header(const char* data, size_t size, uint32_t length) {
    if (length < record_header_bytes) {
        return corrupt("length " + std::to_string(length) + " is shorter than a record header");
    }
    if (length > record_max_bytes) {
        return corrupt("length " + std::to_string(length) + " exceeds the record maximum of "
                       + std::to_string(record_max_bytes) + " bytes");
    }
    if (size > type_offset && !known_type(static_cast<uint8_t>(data[type_offset]))) {
        auto t = static_cast<unsigned>(static_cast<unsigned char>(data[type_offset]));
        return corrupt("unknown record type " + std::to_string(t));
    }
    for (size_t i = reserved_offset; i < id_offset && i < size; ++i) {
        if (data[i] != 0) {
            return corrupt("reserved bytes are not zero");
        }
    }
    if (size >= crc_offset) {
        auto type = static_cast<record_type>(data[type_offset]);
        if (get_u64(data + tx_id_offset) != 0 && !may_carry_tx(type)) {
            return corrupt("record type " + std::to_string(static_cast<unsigned>(type))
                           + " may not carry a transaction id");
        }
    }
    return decode_status::ok;
}

// Reads payload fields in order; every read fails (and stays failed) on short input.
class reader {
public:
    explicit reader(std::string_view in) : in_(in) {}

    bool u8(uint8_t& out) {
        if (!take(1)) {
            return false;
        }
        out = static_cast<uint8_t>(in_[pos_ - 1]);
        return true;
    }

    bool u32(uint32_t& out) {
        if (!take(4)) {
            return false;
        }
        out = get_u32(in_.data() + pos_ - 4);
        return true;
    }

    bool u64(uint64_t& out) {
        if (!take(8)) {
            return false;
        }
        out = get_u64(in_.data() + pos_ - 8);
        return true;
    }

    bool str(std::string& out) {
        std::string_view v;
        if (!view(v)) {
            return false;
        }
        out.assign(v.data(), v.size());
        return true;
    }

    // A string left where it is: a view into the input.
    bool view(std::string_view& out) {
        uint32_t n = 0;
        if (!u32(n) || !take(n)) {
            return false;
        }
        out = in_.substr(pos_ - n, n);
        return true;
    }

    // A count of elements that each take at least `min_bytes`; a count the remaining input
    // cannot hold is rejected before anything is allocated for it.
    bool count(uint32_t& out, size_t min_bytes) {
        return u32(out) && out <= remaining() / min_bytes;
    }

    size_t remaining() const { return in_.size() - pos_; }

    bool done() const { return pos_ == in_.size(); }

private:
    bool take(size_t n) {
        if (n > remaining()) {
            return false;
        }
        pos_ += n;
        return true;
    }

    std::string_view in_;
    size_t pos_ = 0;
};

void put_str(std::string& out, std::string_view s) {
    if (s.size() > UINT32_MAX) {
        throw std::length_error("journal payload string longer than 4 GiB");
    }
    put_u32(out, static_cast<uint32_t>(s.size()));
    out.append(s);
}

void put_count(std::string& out, size_t n) {
    if (n > UINT32_MAX) {
        throw std::length_error("journal payload list longer than 2^32 elements");
    }
    put_u32(out, static_cast<uint32_t>(n));
}

} // namespace

uint32_t crc32_update(uint32_t crc, const char* data, size_t size) {
#ifdef ACTORMQ_CRC_CLMUL
    if (size >= 64 && cpu_has_clmul()) {
        size_t blocks = size & ~size_t{15};
        crc = ~crc_fold(data, blocks, ~crc);
        data += blocks;
        size -= blocks;
    }
#endif
    if (size == 0) {
        return crc;
    }
    return static_cast<uint32_t>(
        ::crc32(crc, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(size)));
}

void encode(const record& r, std::string& out) {
    auto type = static_cast<uint8_t>(r.type);
    // Refusing here keeps the promise that every encoded record decodes: a record that decode
    // would reject must never reach the disk as if it had been written.
    if (!known_type(type)) {
        throw std::invalid_argument("journal record of unknown type " + std::to_string(type));
    }
    if (r.tx_id != 0 && !may_carry_tx(r.type)) {
        throw std::invalid_argument("journal record type " + std::to_string(type)
                                    + " may not carry a transaction id");
    }
    if (r.payload.size() > record_max_bytes - record_header_bytes) {
        throw std::length_error("journal record payload of " + std::to_string(r.payload.size())
                                + " bytes exceeds the record maximum");
    }
    size_t start = out.size();
    out.reserve(start + record_header_bytes + r.payload.size());
    put_u32(out, static_cast<uint32_t>(record_header_bytes + r.payload.size()));
    out.push_back(static_cast<char>(type));
    out.push_back(0);
    put_u16(out, 0);
    put_u64(out, r.id);
    put_u64(out, r.tx_id);
    put_u32(out, 0);
    out.append(r.payload);
    uint32_t crc = record_crc(out.data() + start, out.size() - start);
    for (size_t i = 0; i < 4; ++i) {
        out[start + crc_offset + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
    }
}

// `truncated` is only "need more bytes": every byte present is consistent with a valid record
// (header fields that are present are checked first). Whether a truncated record at the end of
// a file is a torn write or damage is for the store to decide, which knows what follows.
decode_status decode(const char* data, size_t size, record& out, size_t& consumed) {
    record_view v;
    auto st = decode(data, size, v, consumed);
    if (st == decode_status::ok) {
        out.type = v.type;
        out.id = v.id;
        out.tx_id = v.tx_id;
        out.payload.assign(v.payload.data(), v.payload.size());
    }
    return st;
}

record to_record(const record_view& r) {
    return record{r.type, r.id, r.tx_id, std::string{r.payload}};
}

decode_status decode(const char* data, size_t size, record_view& out, size_t& consumed) {
    consumed = 0;
    if (size < 4) {
        return decode_status::truncated;
    }
    uint32_t length = get_u32(data);
    if (length == 0) {
        return decode_status::end;
    }
    if (auto st = check_header(data, size, length); st != decode_status::ok) {
        return st;
    }
    if (size < length) {
        return decode_status::truncated;
    }
    if (record_crc_check(data, length) != get_u32(data + crc_offset)) {
        return corrupt("CRC mismatch");
    }
    out.type = static_cast<record_type>(data[type_offset]);
    out.id = get_u64(data + id_offset);
    out.tx_id = get_u64(data + tx_id_offset);
    out.payload = std::string_view(data + record_header_bytes, length - record_header_bytes);
    consumed = length;
    return decode_status::ok;
}

std::string_view last_corrupt_reason() {
    return corrupt_reason;
}

// -- payloads -----------------------------------------------------------------------------

std::string encode_payload(const queue_payload& p) {
    std::string out;
    put_str(out, p.name);
    put_str(out, p.address);
    out.push_back(static_cast<char>(p.routing));
    return out;
}

std::string encode_payload(const message_payload& p) {
    std::string out;
    put_u64(out, p.message_id);
    put_str(out, p.address);
    put_str(out, p.destination);
    put_count(out, p.headers.size());
    for (const auto& [name, value] : p.headers) {
        put_str(out, name);
        put_str(out, value);
    }
    put_str(out, p.body);
    put_count(out, p.queues.size());
    for (const auto& q : p.queues) {
        put_str(out, q);
    }
    return out;
}

std::string encode_payload(const ack_payload& p) {
    std::string out;
    put_str(out, p.queue);
    put_u64(out, p.message_id);
    return out;
}

std::string encode_payload(const tx_payload& p) {
    std::string out;
    put_u64(out, p.tx_id);
    if (!p.xid.empty()) {
        put_str(out, p.xid);
    }
    return out;
}

std::string encode_payload(const dup_payload& p) {
    std::string out;
    put_str(out, p.address);
    put_str(out, p.dup_id);
    return out;
}

bool decode_payload(std::string_view in, queue_view& out) {
    reader r(in);
    // Only anycast (0) and multicast (1) exist; anything else is damage, not a new mode.
    return r.view(out.name) && r.view(out.address) && r.u8(out.routing) && out.routing <= 1
           && r.done();
}

bool decode_payload(std::string_view in, message_view& out) {
    reader r(in);
    uint32_t n = 0;
    if (!r.u64(out.message_id) || !r.view(out.address) || !r.view(out.destination)
        || !r.count(n, 8)) {
        return false;
    }
    out.headers.clear();
    out.headers.reserve(std::min<size_t>(n, reserve_max));
    for (uint32_t i = 0; i < n; ++i) {
        auto& [name, value] = out.headers.emplace_back();
        if (!r.view(name) || !r.view(value)) {
            return false;
        }
    }
    if (!r.view(out.body) || !r.count(n, 4)) {
        return false;
    }
    out.queues.clear();
    out.queues.reserve(std::min<size_t>(n, reserve_max));
    for (uint32_t i = 0; i < n; ++i) {
        if (!r.view(out.queues.emplace_back())) {
            return false;
        }
    }
    return r.done();
}

bool decode_payload(std::string_view in, ack_view& out) {
    reader r(in);
    return r.view(out.queue) && r.u64(out.message_id) && r.done();
}

bool decode_payload(std::string_view in, tx_payload& out) {
    reader r(in);
    if (!r.u64(out.tx_id)) {
        return false;
    }
    out.xid.clear();
    if (r.done()) {
        return true;
    }
    // An xid, when present, is not empty: one encoding per value.
    std::string_view xid;
    if (!r.view(xid) || xid.empty() || !r.done()) {
        return false;
    }
    out.xid.assign(xid);
    return true;
}

bool decode_payload(std::string_view in, dup_view& out) {
    reader r(in);
    return r.view(out.address) && r.view(out.dup_id) && r.done();
}

bool decode_payload(const record_view& r, payload_view& out) {
    switch (r.type) {
        case record_type::add_queue:
        case record_type::delete_queue:
            return decode_payload(r.payload, out.queue);
        case record_type::add_message:
            return decode_payload(r.payload, out.message);
        case record_type::ack:
            return decode_payload(r.payload, out.ack);
        case record_type::prepare:
        case record_type::commit:
        case record_type::rollback:
            return decode_payload(r.payload, out.tx);
        case record_type::duplicate_id:
            return decode_payload(r.payload, out.dup);
    }
    return false;
}

// The owned decoders copy what the in-place ones found, so both accept exactly the same bytes.

bool decode_payload(std::string_view in, queue_payload& out) {
    queue_view v;
    if (!decode_payload(in, v)) {
        return false;
    }
    out.name.assign(v.name);
    out.address.assign(v.address);
    out.routing = v.routing;
    return true;
}

namespace {

bool decode_message(std::string_view in, message_payload& out, bool with_body) {
    // One view per thread, so its vectors keep their capacity from call to call.
    thread_local message_view v;
    if (!decode_payload(in, v)) {
        return false;
    }
    out.message_id = v.message_id;
    out.address.assign(v.address);
    out.destination.assign(v.destination);
    out.headers.clear();
    out.headers.reserve(v.headers.size());
    for (const auto& [name, value] : v.headers) {
        out.headers.emplace_back(std::string{name}, std::string{value});
    }
    if (with_body) {
        out.body.assign(v.body);
    }
    out.queues.assign(v.queues.begin(), v.queues.end());
    return true;
}

} // namespace

bool decode_payload(std::string_view in, message_payload& out) {
    return decode_message(in, out, true);
}

bool decode_message_metadata(std::string_view in, message_payload& out) {
    out.body.clear();
    return decode_message(in, out, false);
}

bool decode_payload(std::string_view in, ack_payload& out) {
    ack_view v;
    if (!decode_payload(in, v)) {
        return false;
    }
    out.queue.assign(v.queue);
    out.message_id = v.message_id;
    return true;
}

bool decode_payload(std::string_view in, dup_payload& out) {
    dup_view v;
    if (!decode_payload(in, v)) {
        return false;
    }
    out.address.assign(v.address);
    out.dup_id.assign(v.dup_id);
    return true;
}

} // namespace actormq::journal
