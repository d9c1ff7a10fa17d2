// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "crash/ledger.hpp"
#include "support/wait.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace actormq::crash {

/// How many nodes a producer's host list can name: one, or a live/backup pair.
inline constexpr uint32_t hosts_max = 2;

/// One node in the producers' host list.
struct host_slot {
    /// Whether the node's process is up and holds its ports (its ports file is there). The
    /// killer clears it just before SIGKILL and sets it once the restarted node has written
    /// its ports file; producers only try to connect while it is set, so they never hammer a
    /// closed port (a loopback connect to a closed port in the ephemeral range can connect to
    /// itself and then hold the port the node needs). A passive backup is up but refuses
    /// connections until it activates.
    std::atomic<bool> up{false};

    /// The node's STOMP port; the same across restarts.
    std::atomic<uint16_t> port{0};
};

/// What the killer (main thread) and the producer threads share; all of it atomic.
struct traffic_control {
    /// The nodes producers may connect to; only the first `host_count` are used.
    std::array<host_slot, hosts_max> hosts;

    /// 1 for a single node, 2 for a live/backup pair.
    std::atomic<uint32_t> host_count{1};

    /// Send nothing new; finish what is in flight (until `stop_deadline`), then return.
    std::atomic<bool> stop{false};

    /// Give up at once (the harness hit a problem and will not drain).
    std::atomic<bool> abort{false};

    /// When producers stop waiting for their last receipts, once `stop` is set.
    std::atomic<test::deadline_t> stop_deadline{test::deadline_t::max()};

    /// Messages confirmed so far, over all producers; the killer's count trigger reads it.
    std::atomic<uint64_t> confirmed{0};

    /// The host whose first RECEIPT the killer waits for after a failover (-1: none).
    std::atomic<int32_t> awaited_host{-1};

    /// When a RECEIPT from `awaited_host` first arrived (test_clock ticks; 0: not yet).
    std::atomic<int64_t> awaited_receipt_at{0};

    /// Starts a failover measurement: from now on, the first RECEIPT from `host` is noted.
    void await_receipt_from(uint32_t host) {
        awaited_receipt_at = 0;
        awaited_host = static_cast<int32_t>(host);
    }

    /// Called by a producer for every RECEIPT it gets from `host`.
    void note_receipt(uint32_t host) {
        if (awaited_host.load() != static_cast<int32_t>(host)) {
            return;
        }
        int64_t none = 0;
        awaited_receipt_at.compare_exchange_strong(
            none, test::test_clock::now().time_since_epoch().count());
    }

    /// When the awaited RECEIPT arrived, or nullopt if it has not yet.
    std::optional<test::deadline_t> awaited_receipt() const {
        auto at = awaited_receipt_at.load();
        if (at == 0) {
            return std::nullopt;
        }
        return test::deadline_t{test::test_clock::duration{at}};
    }
};

/// Limits of the producers; every wait they do is bounded by one of these.
struct producer_limits {
    uint32_t window = 16;                       ///< SENDs in flight per plain producer.
    size_t body_bytes = 1024;                   ///< Body size of every message.
    std::chrono::milliseconds reconnect{30000}; ///< Longest wait for a node to serve again.
    std::chrono::milliseconds stall{15000};     ///< Longest wait for a receipt when connected.
    uint32_t errors_max = 20;                   ///< ERROR frames before a producer gives up.
};

/// What one producer saw, for the report; filled by its thread, read after the join.
struct producer_stats {
    uint64_t connects = 0; ///< Successful STOMP connects (the first one included).
    uint64_t resent = 0;   ///< Messages written again after a reconnect.
    uint64_t errors = 0;   ///< ERROR frames received.
    uint64_t stalls = 0;   ///< Times no receipt came within `producer_limits::stall`.
    /// Redone transactions the node refused because their ids were already accepted, i.e.
    /// whose earlier COMMIT had landed though its RECEIPT was lost; they count as confirmed.
    uint64_t tx_refused_as_duplicate = 0;
    bool gave_up = false;    ///< Stopped early: the node stayed away or too many errors.
    std::string first_error; ///< The first ERROR frame or the reason it gave up.
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
