// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "crash/host_link.hpp"
#include "crash/ledger.hpp"
#include "crash/traffic_control.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace actormq::crash {

/// Limits of the live consumers; every wait they do is bounded by one of these.
struct consumer_limits : link_limits {
    /// The subscription's window (`activemq.prefetchSize`): MESSAGEs the node may have
    /// delivered and not seen acknowledged. Bounds the redeliveries a kill causes.
    uint32_t prefetch = 64;
    /// Longest wait for an ACK's RECEIPT while connected, before the consumer reconnects.
    std::chrono::milliseconds stall{15000};
};

/// What one consumer saw, for the report; filled by its thread, read after the join.
struct consumer_stats : link_stats {
    uint64_t received = 0;       ///< MESSAGE frames.
    uint64_t acks = 0;           ///< ACKs written.
    uint64_t ack_receipts = 0;   ///< ACKs whose RECEIPT arrived.
    uint64_t acks_cut = 0;       ///< ACKs whose connection was lost before their RECEIPT.
    uint64_t redelivered = 0;    ///< Legitimate redeliveries (the ACK was not confirmed).
    uint64_t duplicated = 0;     ///< Deliveries after a confirmed ACK, or second copies.
    uint64_t unexpected = 0;     ///< Unreadable MESSAGEs or ones of another stream.
    std::string first_duplicate; ///< The first duplicated delivery, described, with its host.
};

/// Thread body of the live consumer of stream `s` of `book`: connects to whichever host of
/// `ctl.hosts` serves, SUBSCRIBEs to the stream's destination with `ack:client-individual`
/// and `limits.prefetch`, files every MESSAGE with `ledger::record_delivery` and ACKs it with
/// a receipt, whose arrival confirms the ACK in the ledger. After a lost connection it
/// reconnects and subscribes again; the ACKs in flight stay unconfirmed. Once
/// `ctl.consumers_stop` is set it ACKs nothing new and returns when its ACKs in flight are
/// confirmed (or at `ctl.consumers_stop_deadline`); what it has not acknowledged is left for
/// the drain.
void run_consumer(traffic_control& ctl,
                  const consumer_limits& limits,
                  ledger& book,
                  size_t s,
                  consumer_stats& stats);

} // namespace actormq::crash
