// SPDX-License-Identifier: Apache-2.0
#pragma once

// Encoding and decoding of native packets (docs/protocol.md §1, §16). Never throws on network
// input, never reads outside the bytes it was given, never allocates more than the bytes a
// packet really holds.

#include "protocol/native/packet.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace actormq::native {

/// Bounds both directions enforce (§16). The defaults are the protocol's.
struct codec_limits {
    /// Largest packet, header included. A length field above it is an error as soon as its
    /// four bytes arrive, before anything is buffered for the packet.
    size_t max_packet_bytes = 10 * 1024 * 1024 + 64 * 1024;
    /// Longest string other than a message body (names, header names and values, texts).
    size_t max_string_bytes = 16 * 1024;
    /// Most headers in one message.
    size_t max_headers = 1024;
    /// Most entries in one list (topology members, xids).
    size_t max_list_entries = 4096;
    /// The protocol version the connection speaks (§2), which decides the fields of a body:
    /// at version 1 create_consumer has no pre_acknowledge (§6). The newest until hello_ok.
    uint16_t version = protocol_version;
};

/// Why a packet was refused (§15: the peer gets error malformed_packet and the connection
/// closes). Also what `encode` reports for a packet it would not write.
enum class codec_error : uint8_t {
    none,
    packet_too_small,  ///< the length field is below the header's 20 bytes
    packet_too_large,  ///< the length field is above max_packet_bytes
    unknown_type,      ///< the type code is not a packet type
    reserved_not_zero, ///< a reserved header byte is not 0
    wrong_channel,     ///< a connection packet off channel 0, or a session packet on it
    bad_sequence,      ///< a stream packet with sequence 0, or another packet with one
    wrong_direction,   ///< a packet type this peer may not send
    truncated_field,   ///< a fixed-size field runs past the end of the packet
    length_mismatch,   ///< a string or body declares more bytes than the packet has left
    string_too_long,   ///< a string above max_string_bytes, or an xid part above 64 bytes
    count_too_large,   ///< a count above its limit, or more entries than bytes left can hold
    bad_value,         ///< a bool not 0/1, an unknown enum value, an out-of-range number
    trailing_bytes,    ///< the packet's body has bytes after its last field
    bad_magic,         ///< hello does not start with "AMQN": not a native client
    unknown_version,   ///< hello's range has no version this code speaks, or hello_ok's
};

/// A stable lower-case name ("length_mismatch").
std::string_view to_string(codec_error e);

/// A refused packet, precisely: what, in which packet type, which field, where.
struct codec_failure {
    codec_error code = codec_error::none;
    uint8_t type_code = 0;  ///< the packet's type code (0 before the header is read)
    const char* field = ""; ///< the field's name as in docs/protocol.md ("length", "body")
    size_t offset = 0;      ///< of the field, from the packet's first byte
    /// One sentence for the error packet's text and the log, e.g. "send: field 'body' at
    /// offset 61: length_mismatch (300 bytes declared, 12 left)".
    std::string describe() const;
    /// Extra figures for describe(): what was declared and what the limit or rest was.
    uint64_t declared = 0;
    uint64_t allowed = 0;
};

/// Appends the packet's bytes to `out`. Returns codec_error::none, or the first reason the
/// decoder (with `limits`, reading what `from` sent) would refuse it; then `out` is unchanged.
/// So every packet encode writes decodes to itself.
codec_failure encode(const packet& p, peer from, const codec_limits& limits, std::string& out);

/// encode() of `p`, a send or a deliver whose message has an empty body, as if its body were
/// `body`: the body is appended from where it is, not copied into the packet first (the
/// body is the packet's last field, §5). The same checks and the same bytes as encode() of the
/// packet with that body; any other packet type, or a non-empty body in `p`, is refused
/// (bad_value) and leaves `out` unchanged.
codec_failure encode_with_body(const packet& p,
                               const std::string& body,
                               peer from,
                               const codec_limits& limits,
                               std::string& out);

/// The outcome of decoding one packet from a byte range.
enum class decode_status : uint8_t {
    packet,    ///< a whole valid packet; `consumed` bytes
    need_more, ///< every byte present is consistent with a packet; more must come
    error,     ///< the bytes can never form a valid packet; `failure` says why
};

/// Decodes the packet at the start of [data, data+size), sent by `from`. The length, then the
/// header, then the body are checked as soon as their bytes are present, so the outcome
/// depends only on the bytes, never on how they were split.
decode_status decode(const char* data,
                     size_t size,
                     peer from,
                     const codec_limits& limits,
                     packet& out,
                     size_t& consumed,
                     codec_failure& failure);

/// Incremental decoder for one connection: bytes in any split go in with `feed`, packets come
/// out of `next`. Buffers at most one unfinished packet plus the bytes of one `feed`; once it
/// reports an error it stays in it.
class decoder {
public:
    /// Reads what `from` sends, with `limits`.
    decoder(peer from, codec_limits limits = {});

    /// Appends bytes read from the socket.
    void feed(const char* data, size_t size);

    /// Reads the bodies of protocol version `v` from the next packet on (after hello, §2).
    void set_version(uint16_t v) { limits_.version = v; }

    /// Takes the next packet out of the buffer.
    decode_status next(packet& out);

    /// Why the decoder stopped; code none while it has not.
    const codec_failure& failure() const { return failure_; }

    /// Bytes buffered and not yet returned as packets.
    size_t buffered() const { return buf_.size() - pos_; }

private:
    peer from_;
    codec_limits limits_;
    std::string buf_;
    size_t pos_ = 0;
    codec_failure failure_;
};

} // namespace actormq::native
