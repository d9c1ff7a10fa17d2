// SPDX-License-Identifier: Apache-2.0
#pragma once

// The journal's on-disk record format (docs/journal.md). Pure code: no files, no actors.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace actormq::journal {

/// The kinds of records. Values are on disk: never renumber, only add.
enum class record_type : uint8_t {
    add_queue = 1,    ///< a durable queue exists (queue_payload)
    delete_queue = 2, ///< a durable queue is gone (queue_payload, only `name` used)
    add_message = 3,  ///< a durable message and the queues it was routed to (message_payload)
    ack = 4,          ///< one queue is done with one message (ack_payload)
    prepare = 5,      ///< a transaction is prepared (tx_payload)
    commit = 6,       ///< a transaction's records take effect (tx_payload)
    rollback = 7,     ///< a transaction's records are void (tx_payload)
    duplicate_id = 8, ///< a duplicate-detection id was accepted on an address (dup_payload)
};

/// One record as it is framed on disk. `id` increases by one per record across the journal.
struct record {
    record_type type = record_type::add_message;
    uint64_t id = 0;
    /// Non-zero when the record belongs to a transaction (only add_message, ack and
    /// duplicate_id may carry one; commit/rollback/prepare name theirs in tx_payload).
    uint64_t tx_id = 0;
    std::string payload;
};

/// Framing: u32 length of the whole record (header included), u8 type, u8 reserved (0),
/// u16 reserved (0), u64 id, u64 tx_id, u32 CRC-32 (zlib's crc32, the same as Boost.CRC's
/// crc_32_type) over every byte of the record except the CRC field itself, then the payload.
/// Little-endian.
constexpr size_t record_header_bytes = 4 + 1 + 1 + 2 + 8 + 8 + 4;

/// Largest record accepted when decoding (guards against a corrupt length).
constexpr size_t record_max_bytes = 64 * 1024 * 1024;

/// Appends the framed record to `out`. Throws std::invalid_argument for a record `decode` would
/// reject (unknown type, tx_id on a type that may not carry one) and std::length_error for one
/// longer than record_max_bytes, so every encoded record decodes.
void encode(const record& r, std::string& out);

/// The outcome of decoding one record from a byte range.
enum class decode_status : uint8_t {
    ok,  ///< a whole, valid record; `consumed` bytes
    end, ///< the length field is zero: no record here (pre-allocated, unwritten space)
    /// The range ends inside the record (fewer than 4 bytes count as this, never as `end`).
    /// Only "need more bytes": every header field present is checked first, so each byte
    /// present is consistent with a valid record. Whether it is a torn tail is the store's
    /// decision (store::open), which knows what follows in the file.
    truncated,
    corrupt, ///< a bad length, unknown type, non-zero reserved bytes or a CRC mismatch
};

/// Decodes the record at the start of [data, data+size).
decode_status decode(const char* data, size_t size, record& out, size_t& consumed);

/// A record decoded in place: its header fields and a view of its payload in the caller's
/// bytes (recovery reads millions of records and copies none of them whole).
struct record_view {
    record_type type = record_type::add_message;
    uint64_t id = 0;
    uint64_t tx_id = 0;
    std::string_view payload;
};

/// Decodes like `decode` above, with the same checks and statuses, without copying the payload:
/// `out.payload` points into [data, data+size).
decode_status decode(const char* data, size_t size, record_view& out, size_t& consumed);

/// An owned copy of a record decoded in place.
record to_record(const record_view& r);

/// Continues the CRC-32 `crc` over [data, data+size): the same value as zlib's
/// `crc32(crc, data, size)`, computed by carry-less multiplication (PCLMULQDQ) where the CPU has
/// it, which checks records several times faster than zlib's table loop (docs/journal.md,
/// "Recovery phases"); zlib's loop elsewhere.
uint32_t crc32_update(uint32_t crc, const char* data, size_t size);

/// A human-readable reason for the last `corrupt` result of `decode` in this thread, such as
/// "CRC mismatch" or "length 3 is shorter than a record header".
std::string_view last_corrupt_reason();

// -- payloads -----------------------------------------------------------------------------

/// add_queue / delete_queue.
struct queue_payload {
    std::string name;
    std::string address;
    uint8_t routing = 0; ///< 0 anycast, 1 multicast (actormq::routing_type)
};

/// add_message: the whole message and the queues holding it.
struct message_payload {
    uint64_t message_id = 0;
    std::string address;
    std::string destination;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::vector<std::string> queues;
};

/// ack: `queue` is done with `message_id`.
struct ack_payload {
    std::string queue;
    uint64_t message_id = 0;
};

/// prepare / commit / rollback.
struct tx_payload {
    /// A constructor, not an aggregate: most records name only the id (`tx_payload{id}`).
    tx_payload(uint64_t id = 0, std::string global_id = {})
        : tx_id(id),
          xid(std::move(global_id)) {}

    uint64_t tx_id = 0;
    /// prepare only: the transaction's global id as its protocol encodes it (an XA xid,
    /// docs/journal.md "Prepared transactions"); empty: none. On disk it follows `tx_id` as a
    /// length-prefixed string, and only when not empty, so a record without it is 8 bytes as
    /// before.
    std::string xid;
};

/// duplicate_id: `dup_id` was accepted on `address`.
struct dup_payload {
    std::string address;
    std::string dup_id;
};

/// Serialises a payload (length-prefixed strings, little-endian integers).
std::string encode_payload(const queue_payload& p);
std::string encode_payload(const message_payload& p);
std::string encode_payload(const ack_payload& p);
std::string encode_payload(const tx_payload& p);
std::string encode_payload(const dup_payload& p);

/// Deserialises a payload; false if the bytes do not form exactly one payload of that kind.
bool decode_payload(std::string_view in, queue_payload& out);
bool decode_payload(std::string_view in, message_payload& out);
bool decode_payload(std::string_view in, ack_payload& out);
bool decode_payload(std::string_view in, tx_payload& out);
bool decode_payload(std::string_view in, dup_payload& out);

/// Like decode_payload for a message, with the same checks, but leaves `out.body` empty
/// instead of copying it (for bookkeeping that needs ids, headers and queues only).
bool decode_message_metadata(std::string_view in, message_payload& out);

// -- payloads decoded in place ------------------------------------------------------------
// The same checks as decode_payload, but every string is a view into the input, so decoding
// allocates nothing once the views' vectors have grown (recovery reuses one payload_view).

/// add_queue / delete_queue, in place.
struct queue_view {
    std::string_view name;
    std::string_view address;
    uint8_t routing = 0;
};

/// add_message, in place.
struct message_view {
    uint64_t message_id = 0;
    std::string_view address;
    std::string_view destination;
    std::vector<std::pair<std::string_view, std::string_view>> headers;
    std::string_view body;
    std::vector<std::string_view> queues;
};

/// ack, in place.
struct ack_view {
    std::string_view queue;
    uint64_t message_id = 0;
};

/// duplicate_id, in place.
struct dup_view {
    std::string_view address;
    std::string_view dup_id;
};

/// Deserialises a payload in place; false if the bytes do not form exactly one payload of
/// that kind (the same rule as decode_payload).
bool decode_payload(std::string_view in, queue_view& out);
bool decode_payload(std::string_view in, message_view& out);
bool decode_payload(std::string_view in, ack_view& out);
bool decode_payload(std::string_view in, dup_view& out);

/// Any record's payload decoded in place; only the member for the record's type is set.
struct payload_view {
    queue_view queue;     ///< add_queue, delete_queue
    message_view message; ///< add_message
    ack_view ack;         ///< ack
    tx_payload tx;        ///< prepare, commit, rollback
    dup_view dup;         ///< duplicate_id
};

/// Decodes `r.payload` as `r.type` says into the matching member of `out`; false if it does
/// not decode as that kind.
bool decode_payload(const record_view& r, payload_view& out);

} // namespace actormq::journal
