// SPDX-License-Identifier: Apache-2.0
#pragma once

// The primitives of docs/protocol.md §1 (little-endian integers, strings with a u16 length,
// bodies with a u32 length, counts) as two inspectors: wire_reader checks and reads them,
// wire_writer checks and writes them. fields.hpp lists each packet's fields once for both, so
// the two directions cannot drift apart. Internal to the codec.

#include "protocol/native/codec.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

namespace actormq::native::wire {

/// Reads fields from one packet's bytes; stops at the first problem and remembers it.
class reader {
public:
    static constexpr bool reading = true;

    /// Reads the body [data, data+size) whose first byte is at `offset` in the packet.
    reader(const char* data, size_t size, size_t offset, const codec_limits& limits);

    void operator()(const char* name, uint8_t& v);
    void operator()(const char* name, uint16_t& v);
    void operator()(const char* name, uint32_t& v);
    void operator()(const char* name, uint64_t& v);
    void operator()(const char* name, int32_t& v);
    void operator()(const char* name, int64_t& v);
    /// A byte that must be 0 or 1.
    void operator()(const char* name, bool& v);
    /// A string: u16 length, at most max_string_bytes, then the bytes.
    void operator()(const char* name, std::string& v);

    /// An enumeration on the wire as its underlying type; values `is_valid` refuses are errors.
    template <class Enum, class = std::enable_if_t<std::is_enum_v<Enum>>>
    void operator()(const char* name, Enum& v) {
        std::underlying_type_t<Enum> raw{};
        (*this)(name, raw);
        v = static_cast<Enum>(raw);
        check(name, failed() || is_valid(v), codec_error::bad_value);
    }

    /// A message body: u32 length, then the bytes (bounded only by the packet).
    void blob(const char* name, std::string& v);
    /// An xid part: u8 length of at most xid_part_max_bytes, then the bytes.
    void xid_part(const char* name, std::string& v);
    /// A list's u16 entry count. Refused above `limit`, or when `n` entries of at least
    /// `min_entry_bytes` each cannot fit in the bytes left, so a count never allocates more
    /// than the packet holds.
    void count(const char* name, size_t& n, size_t limit, size_t min_entry_bytes);

    /// Fails with `e` at the field just read when `ok` is false.
    void check(const char* name, bool ok, codec_error e);
    /// Fails with trailing_bytes if bytes are left.
    void finish();

    bool failed() const { return failure_.code != codec_error::none; }
    const codec_failure& failure() const { return failure_; }
    const codec_limits& limits() const { return limits_; }

private:
    /// The next `n` bytes, or nullptr (and truncated_field) if fewer are left.
    const char* take(const char* name, size_t n);
    /// Reads `n` bytes into v after a length prefix, refusing more than `max` (too_long).
    void bytes(const char* name, std::string& v, uint64_t n, uint64_t max, codec_error too_long);
    void fail(codec_error e, const char* name, size_t offset, uint64_t declared, uint64_t allowed);

    const char* data_;
    size_t size_;
    size_t pos_ = 0;
    size_t base_;          ///< offset of data_[0] in the packet
    size_t field_pos_ = 0; ///< where the field read last starts, relative to data_
    const codec_limits& limits_;
    codec_failure failure_;
};

/// Writes fields, refusing what the reader would refuse, so encode only writes decodable bytes.
class writer {
public:
    static constexpr bool reading = false;

    /// Appends to `out`; the packet's first byte is at `packet_start` in it.
    writer(std::string& out, size_t packet_start, const codec_limits& limits);

    void operator()(const char* name, const uint8_t& v);
    void operator()(const char* name, const uint16_t& v);
    void operator()(const char* name, const uint32_t& v);
    void operator()(const char* name, const uint64_t& v);
    void operator()(const char* name, const int32_t& v);
    void operator()(const char* name, const int64_t& v);
    void operator()(const char* name, const bool& v);
    void operator()(const char* name, const std::string& v);

    template <class Enum, class = std::enable_if_t<std::is_enum_v<Enum>>>
    void operator()(const char* name, const Enum& v) {
        check(name, is_valid(v), codec_error::bad_value);
        (*this)(name, static_cast<std::underlying_type_t<Enum>>(v));
    }

    void blob(const char* name, const std::string& v);
    void xid_part(const char* name, const std::string& v);
    void count(const char* name, size_t& n, size_t limit, size_t min_entry_bytes);
    void check(const char* name, bool ok, codec_error e);
    void finish() {}

    bool failed() const { return failure_.code != codec_error::none; }
    const codec_failure& failure() const { return failure_; }
    const codec_limits& limits() const { return limits_; }

private:
    void put(uint64_t v, int bytes);
    void fail(codec_error e, const char* name, uint64_t declared, uint64_t allowed);

    std::string& out_;
    size_t start_;
    const codec_limits& limits_;
    codec_failure failure_;
};

/// Little-endian helpers for the header (decode.cpp, encode.cpp).
uint32_t get_u32(const char* p);
uint64_t get_u64(const char* p);
void put_u32_at(std::string& out, size_t at, uint32_t v);

} // namespace actormq::native::wire
