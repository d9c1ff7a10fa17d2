// SPDX-License-Identifier: Apache-2.0
// Encoding one packet (docs/protocol.md §1): the same field lists and checks as decoding, so a
// packet encode accepts always decodes to itself.
#include "protocol/native/codec.hpp"
#include "protocol/native/fields.hpp"
#include "protocol/native/header.hpp"
#include "protocol/native/wire.hpp"

#include <limits>
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

codec_failure encode_with_body(const packet& p,
                               const std::string& body,
                               peer from,
                               const codec_limits& limits,
                               std::string& out) {
    const message* m = nullptr;
    if (auto* s = std::get_if<send>(&p.body)) {
        m = &s->msg;
    } else if (auto* d = std::get_if<deliver>(&p.body)) {
        m = &d->msg;
    }
    codec_failure failure;
    if (m == nullptr || !m->body.empty()) {
        failure.code = codec_error::bad_value;
        failure.field = "body";
        failure.type_code = static_cast<uint8_t>(p.type());
        return failure;
    }
    size_t start = out.size();
    failure = encode(p, from, limits, out);
    if (failure.code != codec_error::none) {
        return failure;
    }
    // The packet ends with the body's length, 0: it becomes the body's, and the body follows.
    size_t length = out.size() - start + body.size();
    if (length > limits.max_packet_bytes || body.size() > std::numeric_limits<uint32_t>::max()) {
        out.resize(start);
        failure.code = codec_error::packet_too_large;
        failure.field = "length";
        failure.declared = length;
        failure.allowed = limits.max_packet_bytes;
        failure.type_code = static_cast<uint8_t>(p.type());
        return failure;
    }
    wire::put_u32_at(out, out.size() - 4, static_cast<uint32_t>(body.size()));
    out.append(body);
    wire::put_u32_at(out, start + wire::length_offset, static_cast<uint32_t>(length));
    return failure;
}

} // namespace actormq::native
