// SPDX-License-Identifier: Apache-2.0
// Decoding one packet (docs/protocol.md §1, §15): the length, then the header, then the body,
// each checked as soon as its bytes are present.
#include "protocol/native/codec.hpp"
#include "protocol/native/fields.hpp"
#include "protocol/native/header.hpp"
#include "protocol/native/wire.hpp"

#include <array>
#include <utility>

namespace actormq::native {

namespace {

void set_failure(codec_failure& f,
                 codec_error e,
                 uint8_t type_code,
                 const char* field,
                 size_t offset,
                 uint64_t declared = 0,
                 uint64_t allowed = 0) {
    f = codec_failure{};
    f.code = e;
    f.type_code = type_code;
    f.field = field;
    f.offset = offset;
    f.declared = declared;
    f.allowed = allowed;
}

using body_reader = void (*)(wire::reader&, packet_body&);

template <size_t I>
void read_body(wire::reader& r, packet_body& b) {
    fields::body(r, b.emplace<I>());
}

template <size_t... I>
constexpr std::array<body_reader, sizeof...(I)> make_readers(std::index_sequence<I...>) {
    return {&read_body<I>...};
}

// One reader per alternative of packet_body, in the order of the type table (packet.cpp).
constexpr auto body_readers = make_readers(std::make_index_sequence<packet_type_count>{});

} // namespace

namespace wire {

bool check_routing(const packet_type_info* info,
                   uint32_t channel,
                   uint64_t sequence,
                   peer from,
                   codec_failure& failure) {
    auto code = static_cast<uint8_t>(info->type);
    bool allowed = from == peer::client ? info->from_client : info->from_server;
    if (!allowed) {
        set_failure(failure, codec_error::wrong_direction, code, "type", type_offset);
        return false;
    }
    bool on_zero = info->klass == channel_class::connection;
    if ((channel == 0) != on_zero) {
        set_failure(failure, codec_error::wrong_channel, code, "channel", channel_offset, channel);
        return false;
    }
    bool numbered = info->klass == channel_class::session_stream;
    if ((sequence != 0) != numbered) {
        set_failure(failure, codec_error::bad_sequence, code, "sequence", sequence_offset,
                    sequence);
        return false;
    }
    return true;
}

} // namespace wire

decode_status decode(const char* data,
                     size_t size,
                     peer from,
                     const codec_limits& limits,
                     packet& out,
                     size_t& consumed,
                     codec_failure& failure) {
    consumed = 0;
    if (size < 4) {
        return decode_status::need_more;
    }
    uint32_t length = wire::get_u32(data + wire::length_offset);
    if (length < header_bytes) {
        set_failure(failure, codec_error::packet_too_small, 0, "length", 0, length, header_bytes);
        return decode_status::error;
    }
    if (length > limits.max_packet_bytes) {
        set_failure(failure, codec_error::packet_too_large, 0, "length", 0, length,
                    limits.max_packet_bytes);
        return decode_status::error;
    }
    if (size < header_bytes) {
        return decode_status::need_more;
    }
    auto code = static_cast<uint8_t>(data[wire::type_offset]);
    const packet_type_info* info = info_for_code(code);
    if (info == nullptr) {
        set_failure(failure, codec_error::unknown_type, code, "type", wire::type_offset, code);
        return decode_status::error;
    }
    for (size_t i = wire::reserved_offset; i < wire::channel_offset; ++i) {
        if (data[i] != 0) {
            set_failure(failure, codec_error::reserved_not_zero, code, "reserved", i);
            return decode_status::error;
        }
    }
    uint32_t channel = wire::get_u32(data + wire::channel_offset);
    uint64_t sequence = wire::get_u64(data + wire::sequence_offset);
    if (!wire::check_routing(info, channel, sequence, from, failure)) {
        return decode_status::error;
    }
    if (size < length) {
        return decode_status::need_more;
    }
    wire::reader r(data + header_bytes, length - header_bytes, header_bytes, limits);
    // The type table and packet_body share their order, so the row's index picks the body.
    body_readers[body_index(*info)](r, out.body);
    r.finish();
    if (r.failed()) {
        failure = r.failure();
        failure.type_code = code;
        return decode_status::error;
    }
    out.channel = channel;
    out.sequence = sequence;
    consumed = length;
    return decode_status::packet;
}

} // namespace actormq::native
