// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "crash/consumers.hpp"
#include "crash/ledger.hpp"
#include "crash/producers.hpp"
#include "crash/traffic_control.hpp"

#include <cstddef>
#include <string>

namespace actormq::crash {

/// The connection URL of the native mode's clients: both nodes' native acceptors (from
/// `ctl.hosts`) for the first connection, `ha=true` so that the client learns the backup from
/// the topology and fails over to it, and never giving up (docs/client.md, "URL").
std::string native_url(const traffic_control& ctl);

/// Thread body of plain producer `rec.index` in the native mode, written as an application
/// would with the client library: one non-transacted session, blocking durable sends whose
/// duplicate id is the ledger's id of the message; a send that throws UNBLOCKED (a failover
/// during the call) is sent again, unchanged. Notes each confirmed send with the host that
/// confirmed it (`traffic_control::note_receipt`).
void run_native_plain_producer(traffic_control& ctl,
                               const producer_limits& limits,
                               stream_record& rec,
                               producer_stats& stats);

/// Thread body of tx producer `rec.index` in the native mode: a transacted session, five
/// durable sends with the ledger's ids and a commit; a transaction that throws
/// TRANSACTION_ROLLED_BACK or UNBLOCKED is sent again with the same ids, and a retry refused
/// with `duplicate_id` means the earlier commit had landed (the transaction is confirmed).
void run_native_tx_producer(traffic_control& ctl,
                            const producer_limits& limits,
                            stream_record& rec,
                            producer_stats& stats);

/// Thread body of the live consumer of stream `s` in the native mode: a non-transacted
/// session with `blockOnAcknowledge=true`, so that an acknowledge that returns is stored on
/// the server. An acknowledge that throws, or during which the client failed over (the
/// library then drops acks of deliveries from before the failover), leaves the message
/// "written" in the ledger: the backup may deliver it again.
void run_native_consumer(traffic_control& ctl,
                         const consumer_limits& limits,
                         ledger& book,
                         size_t s,
                         consumer_stats& stats);

} // namespace actormq::crash
