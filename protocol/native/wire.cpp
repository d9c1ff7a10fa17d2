// SPDX-License-Identifier: Apache-2.0
#include "protocol/native/wire.hpp"

#include <limits>

namespace actormq::native::wire {

namespace {

uint64_t get_le(const char* p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) {
        v = (v << 8) | static_cast<unsigned char>(p[i]);
    }
    return v;
}

} // namespace

uint32_t get_u32(const char* p) {
    return static_cast<uint32_t>(get_le(p, 4));
}

uint64_t get_u64(const char* p) {
    return get_le(p, 8);
}

void put_u32_at(std::string& out, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out[at + static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
    }
}

// -- reader
// ----------------------------------------------------------------------------------------

reader::reader(const char* data, size_t size, size_t offset, const codec_limits& limits)
    : data_(data),
      size_(size),
      base_(offset),
      limits_(limits) {}

void reader::fail(
    codec_error e, const char* name, size_t offset, uint64_t declared, uint64_t allowed) {
    if (failed()) {
        return;
    }
    failure_.code = e;
    failure_.field = name;
    failure_.offset = base_ + offset;
    failure_.declared = declared;
    failure_.allowed = allowed;
}

const char* reader::take(const char* name, size_t n) {
    if (failed()) {
        return nullptr;
    }
    field_pos_ = pos_;
    if (size_ - pos_ < n) {
        fail(codec_error::truncated_field, name, pos_, n, size_ - pos_);
        return nullptr;
    }
    const char* p = data_ + pos_;
    pos_ += n;
    return p;
}

void reader::operator()(const char* name, uint8_t& v) {
    if (const char* p = take(name, 1)) {
        v = static_cast<uint8_t>(get_le(p, 1));
    }
}

void reader::operator()(const char* name, uint16_t& v) {
    if (const char* p = take(name, 2)) {
        v = static_cast<uint16_t>(get_le(p, 2));
    }
}

void reader::operator()(const char* name, uint32_t& v) {
    if (const char* p = take(name, 4)) {
        v = static_cast<uint32_t>(get_le(p, 4));
    }
}

void reader::operator()(const char* name, uint64_t& v) {
    if (const char* p = take(name, 8)) {
        v = get_le(p, 8);
    }
}

void reader::operator()(const char* name, int32_t& v) {
    if (const char* p = take(name, 4)) {
        v = static_cast<int32_t>(static_cast<uint32_t>(get_le(p, 4)));
    }
}

void reader::operator()(const char* name, int64_t& v) {
    if (const char* p = take(name, 8)) {
        v = static_cast<int64_t>(get_le(p, 8));
    }
}

void reader::operator()(const char* name, bool& v) {
    uint8_t raw = 0;
    (*this)(name, raw);
    v = raw == 1;
    check(name, failed() || raw <= 1, codec_error::bad_value);
}

void reader::bytes(
    const char* name, std::string& v, uint64_t n, uint64_t max, codec_error too_long) {
    if (failed()) {
        return;
    }
    // The length prefix was just read; errors point at it, where the field starts.
    size_t at = field_pos_;
    if (n > max) {
        fail(too_long, name, at, n, max);
        return;
    }
    if (n > size_ - pos_) {
        fail(codec_error::length_mismatch, name, at, n, size_ - pos_);
        return;
    }
    v.assign(data_ + pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    field_pos_ = at;
}

void reader::operator()(const char* name, std::string& v) {
    uint16_t n = 0;
    (*this)(name, n);
    bytes(name, v, n, limits_.max_string_bytes, codec_error::string_too_long);
}

void reader::blob(const char* name, std::string& v) {
    uint32_t n = 0;
    (*this)(name, n);
    bytes(name, v, n, std::numeric_limits<uint32_t>::max(), codec_error::length_mismatch);
}

void reader::xid_part(const char* name, std::string& v) {
    uint8_t n = 0;
    (*this)(name, n);
    bytes(name, v, n, xid_part_max_bytes, codec_error::string_too_long);
}

void reader::count(const char* name, size_t& n, size_t limit, size_t min_entry_bytes) {
    uint16_t raw = 0;
    (*this)(name, raw);
    if (failed()) {
        return;
    }
    n = raw;
    if (n > limit) {
        fail(codec_error::count_too_large, name, field_pos_, n, limit);
    } else if (n > (size_ - pos_) / min_entry_bytes) {
        fail(codec_error::count_too_large, name, field_pos_, n, (size_ - pos_) / min_entry_bytes);
    }
}

void reader::check(const char* name, bool ok, codec_error e) {
    if (!ok) {
        fail(e, name, field_pos_, 0, 0);
    }
}

void reader::finish() {
    if (!failed() && pos_ != size_) {
        fail(codec_error::trailing_bytes, "", pos_, size_ - pos_, 0);
    }
}

// -- writer
// ----------------------------------------------------------------------------------------

writer::writer(std::string& out, size_t packet_start, const codec_limits& limits)
    : out_(out),
      start_(packet_start),
      limits_(limits) {}

void writer::fail(codec_error e, const char* name, uint64_t declared, uint64_t allowed) {
    if (failed()) {
        return;
    }
    failure_.code = e;
    failure_.field = name;
    failure_.offset = out_.size() - start_;
    failure_.declared = declared;
    failure_.allowed = allowed;
}

void writer::put(uint64_t v, int bytes) {
    if (failed()) {
        return;
    }
    // One append of the field's bytes, not one push_back each (a delivery has a few dozen
    // fields: the per-byte capacity checks were 2 % of the node in scenario A).
    char le[8];
    for (int i = 0; i < bytes; ++i) {
        le[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    }
    out_.append(le, static_cast<size_t>(bytes));
}

void writer::operator()(const char*, const uint8_t& v) {
    put(v, 1);
}

void writer::operator()(const char*, const uint16_t& v) {
    put(v, 2);
}

void writer::operator()(const char*, const uint32_t& v) {
    put(v, 4);
}

void writer::operator()(const char*, const uint64_t& v) {
    put(v, 8);
}

void writer::operator()(const char*, const int32_t& v) {
    put(static_cast<uint32_t>(v), 4);
}

void writer::operator()(const char*, const int64_t& v) {
    put(static_cast<uint64_t>(v), 8);
}

void writer::operator()(const char*, const bool& v) {
    put(v ? 1 : 0, 1);
}

void writer::operator()(const char* name, const std::string& v) {
    if (v.size() > limits_.max_string_bytes || v.size() > std::numeric_limits<uint16_t>::max()) {
        fail(codec_error::string_too_long, name, v.size(), limits_.max_string_bytes);
        return;
    }
    put(v.size(), 2);
    if (!failed()) {
        out_.append(v);
    }
}

void writer::blob(const char* name, const std::string& v) {
    if (v.size() > std::numeric_limits<uint32_t>::max()) {
        fail(codec_error::packet_too_large, name, v.size(), std::numeric_limits<uint32_t>::max());
        return;
    }
    put(v.size(), 4);
    if (!failed()) {
        out_.append(v);
    }
}

void writer::xid_part(const char* name, const std::string& v) {
    if (v.size() > xid_part_max_bytes) {
        fail(codec_error::string_too_long, name, v.size(), xid_part_max_bytes);
        return;
    }
    put(v.size(), 1);
    if (!failed()) {
        out_.append(v);
    }
}

void writer::count(const char* name, size_t& n, size_t limit, size_t) {
    if (n > limit || n > std::numeric_limits<uint16_t>::max()) {
        fail(codec_error::count_too_large, name, n, limit);
        return;
    }
    put(n, 2);
}

void writer::check(const char* name, bool ok, codec_error e) {
    if (!ok) {
        fail(e, name, 0, 0);
    }
}

} // namespace actormq::native::wire
