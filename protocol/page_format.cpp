// SPDX-License-Identifier: Apache-2.0
#include "protocol/page_format.hpp"

#include "protocol/little_endian.hpp"

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <zlib.h>

namespace actormq::paging {

namespace {

using le::get_u32;
using le::get_u64;
using le::put_u32;
using le::put_u64;

constexpr char magic[] = "ACTORMQP";
constexpr uint32_t format_version = 1;
constexpr size_t crc_offset = 8;

thread_local std::string_view corrupt_reason;

decode_status corrupt(std::string_view reason) {
    corrupt_reason = reason;
    return decode_status::corrupt;
}

void put_str(std::string& out, std::string_view s) {
    put_u32(out, static_cast<uint32_t>(s.size()));
    out.append(s.data(), s.size());
}

uint32_t record_crc(const char* data, size_t size) {
    auto crc = ::crc32(0L, Z_NULL, 0);
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(crc_offset));
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(data + crc_offset + 4),
                  static_cast<uInt>(size - crc_offset - 4));
    return static_cast<uint32_t>(crc);
}

/// Frames `payload` as a record of `type` with `flags` at the end of `out`.
void frame(record_type type, uint8_t flags, const std::string& payload, std::string& out) {
    size_t total = record_header_bytes + payload.size();
    if (total > record_max_bytes) {
        throw std::length_error("page record longer than record_max_bytes");
    }
    size_t start = out.size();
    put_u32(out, static_cast<uint32_t>(total));
    out.push_back(static_cast<char>(type));
    out.push_back(static_cast<char>(flags));
    out.push_back(0);
    out.push_back(0);
    put_u32(out, 0);
    out += payload;
    uint32_t crc = record_crc(out.data() + start, total);
    for (int i = 0; i < 4; ++i) {
        out[start + crc_offset + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
    }
}

/// Reads the payload fields in order; every read checks the bytes left.
struct reader {
    const char* p;
    size_t left;

    bool u32(uint32_t& v) {
        if (left < 4) {
            return false;
        }
        v = get_u32(p);
        p += 4;
        left -= 4;
        return true;
    }
    bool u64(uint64_t& v) {
        if (left < 8) {
            return false;
        }
        v = get_u64(p);
        p += 8;
        left -= 8;
        return true;
    }
    bool str(std::string& s) {
        uint32_t n = 0;
        if (!u32(n) || left < n) {
            return false;
        }
        s.assign(p, n);
        p += n;
        left -= n;
        return true;
    }
    /// A count of items each at least `min_bytes` long: never more than the bytes left allow,
    /// so a corrupt count cannot make the decoder reserve gigabytes.
    bool count(uint32_t& n, size_t min_bytes) { return u32(n) && n <= left / min_bytes; }
};

bool decode_message(const char* data, size_t size, bool persistent, page_message& out) {
    reader r{data, size};
    out = page_message{};
    out.persistent = persistent;
    uint32_t n = 0;
    if (!r.u64(out.id) || !r.str(out.address) || !r.str(out.destination) || !r.count(n, 8)) {
        return false;
    }
    out.headers.resize(n);
    for (auto& [k, v] : out.headers) {
        if (!r.str(k) || !r.str(v)) {
            return false;
        }
    }
    if (!r.str(out.body) || !r.count(n, 4)) {
        return false;
    }
    out.queues.resize(n);
    for (auto& q : out.queues) {
        if (!r.str(q)) {
            return false;
        }
    }
    return r.left == 0;
}

} // namespace

std::string file_header() {
    std::string out(magic, 8);
    put_u32(out, format_version);
    put_u32(out, 0);
    return out;
}

bool check_file_header(const char* data, size_t size) {
    return size >= file_header_bytes && std::memcmp(data, magic, 8) == 0
           && get_u32(data + 8) == format_version && get_u32(data + 12) == 0;
}

void encode(const page_message& m, std::string& out) {
    std::string p;
    put_u64(p, m.id);
    put_str(p, m.address);
    put_str(p, m.destination);
    put_u32(p, static_cast<uint32_t>(m.headers.size()));
    for (const auto& [k, v] : m.headers) {
        put_str(p, k);
        put_str(p, v);
    }
    put_str(p, m.body);
    put_u32(p, static_cast<uint32_t>(m.queues.size()));
    for (const auto& q : m.queues) {
        put_str(p, q);
    }
    frame(record_type::message, m.persistent ? 1 : 0, p, out);
}

void encode(const page_cursor& c, std::string& out) {
    std::string p;
    put_u64(p, c.file);
    put_u64(p, c.offset);
    frame(record_type::cursor, 0, p, out);
}

decode_status decode(const char* data, size_t size, page_record& out, size_t& consumed) {
    consumed = 0;
    if (size == 0) {
        return decode_status::end;
    }
    // Check every header field that is present before asking for more bytes, so `truncated`
    // always means "a valid record could start here".
    if (size < 4) {
        return decode_status::truncated;
    }
    uint32_t length = get_u32(data);
    if (length < record_header_bytes) {
        return corrupt("length shorter than a record header");
    }
    if (length > record_max_bytes) {
        return corrupt("length above record_max_bytes");
    }
    if (size < 5) {
        return decode_status::truncated;
    }
    auto type = static_cast<uint8_t>(data[4]);
    if (type != static_cast<uint8_t>(record_type::message)
        && type != static_cast<uint8_t>(record_type::cursor)) {
        return corrupt("unknown record type");
    }
    if (size < 6) {
        return decode_status::truncated;
    }
    auto flags = static_cast<uint8_t>(data[5]);
    uint8_t allowed = type == static_cast<uint8_t>(record_type::message) ? 1 : 0;
    if ((flags & ~allowed) != 0) {
        return corrupt("unknown flag");
    }
    for (size_t i = 6; i < 8; ++i) {
        if (i < size && data[i] != 0) {
            return corrupt("reserved byte not zero");
        }
    }
    if (size < length) {
        return decode_status::truncated;
    }
    if (record_crc(data, length) != get_u32(data + crc_offset)) {
        return corrupt("CRC mismatch");
    }
    const char* payload = data + record_header_bytes;
    size_t payload_size = length - record_header_bytes;
    if (type == static_cast<uint8_t>(record_type::message)) {
        out.type = record_type::message;
        if (!decode_message(payload, payload_size, (flags & 1) != 0, out.message)) {
            return corrupt("message payload does not decode");
        }
    } else {
        out.type = record_type::cursor;
        if (payload_size != 16) {
            return corrupt("cursor payload is not 16 bytes");
        }
        out.cursor.file = get_u64(payload);
        out.cursor.offset = get_u64(payload + 8);
    }
    consumed = length;
    return decode_status::ok;
}

std::string_view last_corrupt_reason() {
    return corrupt_reason;
}

std::string page_file_name(uint64_t n) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "page-%010llu.amqpage", static_cast<unsigned long long>(n));
    return buf;
}

bool parse_page_file_name(std::string_view name, uint64_t& n) {
    constexpr std::string_view prefix = "page-";
    constexpr std::string_view suffix = ".amqpage";
    if (name.size() <= prefix.size() + suffix.size() || name.substr(0, prefix.size()) != prefix
        || name.substr(name.size() - suffix.size()) != suffix) {
        return false;
    }
    auto digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    if (digits.size() > 19) {
        return false;
    }
    n = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') {
            return false;
        }
        n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    return true;
}

std::string directory_name(std::string_view address) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (size_t i = 0; i < address.size(); ++i) {
        auto c = static_cast<unsigned char>(address[i]);
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || c == '-' || c == '_' || (c == '.' && i != 0);
        if (keep) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xf];
        }
    }
    return out.empty() ? std::string{"%"} : out;
}

} // namespace actormq::paging
