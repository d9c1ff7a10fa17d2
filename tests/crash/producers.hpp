// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "crash/host_link.hpp"
#include "crash/ledger.hpp"
#include "crash/traffic_control.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace actormq::crash {

/// Limits of the producers; every wait they do is bounded by one of these.
struct producer_limits : link_limits {
    uint32_t window = 16;                   ///< SENDs in flight per plain producer.
    size_t body_bytes = 1024;               ///< Body size of every message.
    std::chrono::milliseconds stall{15000}; ///< Longest wait for a receipt when connected.
    /// With consumers running: no new message while this many confirmed messages wait for
    /// their first delivery (`traffic_control::backlog`), so that the journal stays small
    /// whatever the relative speed of producers and consumers.
    uint64_t backlog_max = 4096;
    /// Plain producers set `_AMQ_DUPL_ID` and send every unconfirmed message again after a
    /// reconnect; without (--sync-sends) a message is sent once, and one whose RECEIPT was lost
    /// may be stored or not (the ledger allows either; it must never be stored twice).
    bool duplicate_ids = true;
};

/// What one producer saw, for the report; filled by its thread, read after the join.
struct producer_stats : link_stats {
    uint64_t resent = 0; ///< Messages written again after a reconnect.
    /// Redone transactions the node refused because their ids were already accepted, i.e.
    /// whose earlier COMMIT had landed though its RECEIPT was lost; they count as confirmed.
    uint64_t tx_refused_as_duplicate = 0;
    uint64_t backlog_waits = 0; ///< Times it found the backlog full and waited.
};

/// Thread body of plain producer `rec.index`: pipelined persistent SENDs with receipts and
/// duplicate ids to `rec.destination()`; after a lost connection it reconnects to whichever
/// host of `ctl.hosts` serves and resends every unconfirmed message with its original
/// duplicate id.
void run_plain_producer(traffic_control& ctl,
                        const producer_limits& limits,
                        stream_record& rec,
                        producer_stats& stats);

/// Thread body of tx producer `rec.index`: BEGIN, `tx_messages` persistent SENDs with
/// duplicate ids, COMMIT with a receipt; a transaction cut by a lost connection is redone
/// with the same duplicate ids. The node may answer a redo whose first COMMIT had landed
/// with ERROR "duplicate message in transaction '<name>'" (it rolls the redo back, as
/// Artemis does); that ERROR confirms the transaction, so the verdict then requires all of
/// its messages.
void run_tx_producer(traffic_control& ctl,
                     const producer_limits& limits,
                     stream_record& rec,
                     producer_stats& stats);

} // namespace actormq::crash
