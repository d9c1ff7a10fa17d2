// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

#include <cstdint>
#include <string>

namespace actormq {

/// Operational errors actors return to each other; clients see `to_string` of the value.
enum class errc : uint8_t {
    none = 0,
    no_such_address,       ///< the address does not exist and may not be created
    auto_create_disabled,  ///< auto-create-addresses / auto-create-queues is false
};

/// A stable lower-case name for the error ("no_such_address").
std::string to_string(errc e);

} // namespace actormq

CAF_ERROR_CODE_ENUM(actormq::errc, "actormq")
