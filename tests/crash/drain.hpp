// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "crash/ledger.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace actormq::crash {

/// Deadlines of the final drain.
struct drain_limits {
    /// Silence on the socket after which the drain checks with a receipt barrier.
    std::chrono::milliseconds quiet{250};
    /// Consecutive quiet rounds (silence, then a barrier that brought nothing) that end it.
    uint32_t quiet_rounds = 2;
    /// The drain fails when it took nothing for this long (a backlog of hundreds of thousands
    /// of paged messages takes minutes, and that is not a failure while it moves).
    std::chrono::milliseconds total{30000};
    /// The whole drain, however much it takes.
    std::chrono::milliseconds cap{600000};
};

/// Consumes every message left in `book`'s destinations from the node on `port`: one
/// connection, one client-individual subscription per destination, an ACK for every
/// MESSAGE, each filed with `ledger::record_received`. It ends once the socket was quiet and
/// a receipt barrier brought nothing, `limits.quiet_rounds` times in a row. Returns "" when
/// it ended so, or what went wrong (the counts in `book` are then incomplete).
std::string drain(uint16_t port, ledger& book, const drain_limits& limits = {});

} // namespace actormq::crash
