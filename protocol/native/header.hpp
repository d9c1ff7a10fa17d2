// SPDX-License-Identifier: Apache-2.0
#pragma once

// The fixed packet header (docs/protocol.md §1) and the checks on it that encode and decode
// share. Internal to the codec.

#include "protocol/native/codec.hpp"

#include <cstddef>
#include <cstdint>

namespace actormq::native::wire {

// Offsets inside the header.
constexpr size_t length_offset = 0;
constexpr size_t type_offset = 4;
constexpr size_t reserved_offset = 5; // three bytes, all 0 in version 1
constexpr size_t channel_offset = 8;
constexpr size_t sequence_offset = 12;

/// Checks a header's routing fields against the type's table row and `from`; fills `failure`
/// (field and offset) and returns false on the first problem, in header order.
bool check_routing(const packet_type_info* info,
                   uint32_t channel,
                   uint64_t sequence,
                   peer from,
                   codec_failure& failure);

} // namespace actormq::native::wire
