// SPDX-License-Identifier: Apache-2.0
#pragma once

// The page files' on-disk format (docs/journal.md, "Paging"). Pure code: no files, no actors.
// A page file is a file header followed by records back to back; the cursor file of an
// address holds cursor records only. Everything little-endian.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace actormq::paging {

/// The bytes every page and cursor file starts with: "ACTORMQP", format version (u32), zero
/// (u32).
constexpr size_t file_header_bytes = 16;

/// The file header of format version 1.
std::string file_header();

/// Whether [data, data+size) starts with a valid file header.
bool check_file_header(const char* data, size_t size);

/// Kinds of records. Values are on disk: never renumber, only add.
enum class record_type : uint8_t {
    message = 1, ///< a paged message and the queues it was routed to (page_message)
    cursor = 2,  ///< everything before (file, offset) has left the page files (page_cursor)
};

/// Framing: u32 length of the whole record (header included), u8 type, u8 flags (bit 0: the
/// message is persistent; no other bit may be set, and a cursor has none), u16 reserved (0),
/// u32 CRC-32 (zlib's) over every byte of the record except this field, then the payload.
constexpr size_t record_header_bytes = 4 + 1 + 1 + 2 + 4;

/// Largest record accepted when decoding (guards against a corrupt length).
constexpr size_t record_max_bytes = 64 * 1024 * 1024;

/// A paged message: what a queue needs to deliver it again, and the queues it was routed to.
struct page_message {
    uint64_t id = 0;
    bool persistent = false;
    std::string address;
    std::string destination;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::vector<std::string> queues;
};

/// A read position: page file number and byte offset in it.
struct page_cursor {
    uint64_t file = 0;
    uint64_t offset = 0;
};

/// Appends a framed message record to `out`. Throws std::length_error for a record longer
/// than record_max_bytes, so every encoded record decodes.
void encode(const page_message& m, std::string& out);

/// Appends a framed cursor record to `out`.
void encode(const page_cursor& c, std::string& out);

/// The outcome of decoding one record.
enum class decode_status : uint8_t {
    ok,        ///< a whole, valid record of `consumed` bytes
    end,       ///< no bytes at all: the end of the written part
    truncated, ///< the bytes end inside the record; every field present is consistent
    corrupt,   ///< a bad length, type, flag or reserved byte, a CRC mismatch or a bad payload
};

/// One decoded record: `type` says which member is set.
struct page_record {
    record_type type = record_type::message;
    page_message message;
    page_cursor cursor;
};

/// Decodes the record at the start of [data, data+size). A record whose CRC is good but whose
/// payload does not decode exactly is corrupt.
decode_status decode(const char* data, size_t size, page_record& out, size_t& consumed);

/// Why the last `corrupt` result of `decode` in this thread was corrupt ("CRC mismatch", ...).
std::string_view last_corrupt_reason();

/// The name of page file number `n`: "page-NNNNNNNNNN.amqpage".
std::string page_file_name(uint64_t n);

/// The number in a page file's name, or false when `name` is not one.
bool parse_page_file_name(std::string_view name, uint64_t& n);

/// The name of the cursor file of an address.
constexpr const char* cursor_file_name = "cursor.amqpage";

/// A directory name for `address` under paging-directory: letters, digits, '-', '_' and '.'
/// stay, every other byte (and a leading '.') becomes %XX, so any address maps to one safe,
/// distinct name.
std::string directory_name(std::string_view address);

} // namespace actormq::paging
