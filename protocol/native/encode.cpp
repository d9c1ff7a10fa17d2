// SPDX-License-Identifier: Apache-2.0
// Encoding one packet (docs/protocol.md §1): the same field lists and checks as decoding, so a
// packet encode accepts always decodes to itself.
#include "protocol/native/codec.hpp"
#include "protocol/native/fields.hpp"
#include "protocol/native/header.hpp"
#include "protocol/native/wire.hpp"

#include <variant>

namespace actormq::native {

codec_failure encode(const packet& p, peer from, const codec_limits& limits, std::string& out) {
    codec_failure failure;
    const packet_type_info* info = native::info(p.type());
    auto code = static_cast<uint8_t>(info->type);
    if (!wire::check_routing(info, p.channel, p.sequence, from, failure)) {
        return failure;
    }
    size_t start = out.size();
    // Header with a zero length; the length is patched in once the body is written.
    out.append(header_bytes, '\0');
    out[start + wire::type_offset] = static_cast<char>(code);
    for (int i = 0; i < 4; ++i) {
        out[start + wire::channel_offset + static_cast<size_t>(i)] =
            static_cast<char>((p.channel >> (8 * i)) & 0xff);
    }
    for (int i = 0; i < 8; ++i) {
        out[start + wire::sequence_offset + static_cast<size_t>(i)] =
            static_cast<char>((p.sequence >> (8 * i)) & 0xff);
    }
    wire::writer w(out, start, limits);
    // The field lists take mutable references so one list serves reading too; the writer
    // only reads through them.
    std::visit(
        [&w](const auto& body) {
            fields::body(w, const_cast<std::decay_t<decltype(body)>&>(body));
        },
        p.body);
    failure = w.failure();
    size_t length = out.size() - start;
    if (failure.code == codec_error::none && length > limits.max_packet_bytes) {
        failure.code = codec_error::packet_too_large;
        failure.field = "length";
        failure.declared = length;
        failure.allowed = limits.max_packet_bytes;
    }
    if (failure.code != codec_error::none) {
        failure.type_code = code;
        out.resize(start);
        return failure;
    }
    wire::put_u32_at(out, start + wire::length_offset, static_cast<uint32_t>(length));
    return failure;
}

} // namespace actormq::native
