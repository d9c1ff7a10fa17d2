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
    no_such_address,      ///< the address does not exist and may not be created
    auto_create_disabled, ///< auto-create-addresses / auto-create-queues is false
    // -- the journal ----------------------------------------------------------------------------
    journal_failed,      ///< a write or fsync failed; the journal refuses everything after it
    duplicate_in_flight, ///< a duplicate id whose first message is not on disk yet
    // -- limits a client reached (the key is the error's context) --------------------------------
    limit_reached, ///< a configured per-client or per-node limit was reached
    // -- requests between actors -----------------------------------------------------------------
    request_timeout, ///< an actor did not answer within its configured bound
    // -- replication (docs/replication.md) -------------------------------------------------------
    already_paired, ///< the live has a replicating backup already
    bad_request,    ///< a request between nodes that is malformed
};

/// A stable lower-case name for the error ("no_such_address").
std::string to_string(errc e);

} // namespace actormq

CAF_ERROR_CODE_ENUM(actormq::errc, "actormq")
