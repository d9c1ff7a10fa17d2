// SPDX-License-Identifier: Apache-2.0
#include "protocol/native/codec.hpp"

#include <array>
#include <utility>

namespace actormq::native {

namespace {

constexpr std::array<const char*, 16> error_names{
    "none",
    "packet_too_small",
    "packet_too_large",
    "unknown_type",
    "reserved_not_zero",
    "wrong_channel",
    "bad_sequence",
    "wrong_direction",
    "truncated_field",
    "length_mismatch",
    "string_too_long",
    "count_too_large",
    "bad_value",
    "trailing_bytes",
    "bad_magic",
    "unknown_version",
};

static_assert(static_cast<size_t>(codec_error::unknown_version) + 1 == error_names.size(),
              "error_names must name every codec_error");

} // namespace

std::string_view to_string(codec_error e) {
    auto i = static_cast<size_t>(e);
    return i < error_names.size() ? error_names[i] : "unknown";
}

std::string codec_failure::describe() const {
    std::string s;
    if (type_code != 0) {
        const packet_type_info* i = info_for_code(type_code);
        s += i != nullptr ? i->name : "type " + std::to_string(type_code);
        s += ": ";
    }
    if (field != nullptr && field[0] != '\0') {
        s += "field '";
        s += field;
        s += "' ";
    }
    s += "at offset " + std::to_string(offset) + ": ";
    s += to_string(code);
    if (declared != 0 || allowed != 0) {
        s +=
            " (" + std::to_string(declared) + " declared, " + std::to_string(allowed) + " allowed)";
    }
    return s;
}

decoder::decoder(peer from, codec_limits limits) : from_(from), limits_(limits) {}

void decoder::feed(const char* data, size_t size) {
    if (failure_.code != codec_error::none) {
        return;
    }
    // Drop what was already returned once it is most of the buffer, so the buffer holds at
    // most one unfinished packet plus the latest bytes.
    if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    buf_.append(data, size);
}

decode_status decoder::next(packet& out) {
    if (failure_.code != codec_error::none) {
        return decode_status::error;
    }
    size_t consumed = 0;
    decode_status st =
        decode(buf_.data() + pos_, buf_.size() - pos_, from_, limits_, out, consumed, failure_);
    if (st == decode_status::packet) {
        pos_ += consumed;
        if (pos_ == buf_.size()) {
            buf_.clear();
            pos_ = 0;
        }
    } else if (st == decode_status::error) {
        // Offsets in failure_ are from the refused packet's first byte (§15).
        buf_.clear();
        pos_ = 0;
    }
    return st;
}

} // namespace actormq::native
