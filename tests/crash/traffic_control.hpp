// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "support/wait.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>

namespace actormq::crash {

/// How many nodes a host list (of a producer or consumer) can name: one, or a live/backup pair.
inline constexpr uint32_t hosts_max = 2;

/// One node in the clients' host list.
struct host_slot {
    /// Whether the node's process is up and holds its ports (its ports file is there). The
    /// killer clears it just before SIGKILL and sets it once the restarted node has written
    /// its ports file; clients only try to connect while it is set, so they never hammer a
    /// closed port (a loopback connect to a closed port in the ephemeral range can connect to
    /// itself and then hold the port the node needs). A passive backup is up but refuses
    /// connections until it activates.
    std::atomic<bool> up{false};

    /// The node's STOMP port; the same across restarts.
    std::atomic<uint16_t> port{0};

    /// The node's native port (the native mode; 0 without one); the same across restarts.
    std::atomic<uint16_t> native_port{0};
};

/// What the killer (main thread) and the producer and consumer threads share; all of it
/// atomic.
struct traffic_control {
    /// The nodes clients may connect to; only the first `host_count` are used.
    std::array<host_slot, hosts_max> hosts;

    /// 1 for a single node, 2 for a live/backup pair.
    std::atomic<uint32_t> host_count{1};

    /// Send nothing new; finish what is in flight (until `stop_deadline`), then return.
    std::atomic<bool> stop{false};

    /// Give up at once (the harness hit a problem and will not drain).
    std::atomic<bool> abort{false};

    /// When producers stop waiting for their last receipts, once `stop` is set.
    std::atomic<test::deadline_t> stop_deadline{test::deadline_t::max()};

    /// Consumers: ACK nothing new; wait for the receipts of the ACKs in flight (until
    /// `consumers_stop_deadline`), then return. Set once the producers have finished.
    std::atomic<bool> consumers_stop{false};

    /// When consumers stop waiting for their last ACK receipts, once `consumers_stop` is set.
    std::atomic<test::deadline_t> consumers_stop_deadline{test::deadline_t::max()};

    /// Messages confirmed so far, over all producers; the killer's count trigger reads it.
    std::atomic<uint64_t> confirmed{0};

    /// Messages the live consumers got for the first time, over all streams. With consumers
    /// running, `confirmed - delivered` is the backlog the producers hold below
    /// `producer_limits::backlog_max`, and with it the journal.
    std::atomic<uint64_t> delivered{0};

    /// Whether consumers run, i.e. whether producers watch the backlog.
    std::atomic<bool> consuming{false};

    /// The messages confirmed but not yet delivered to a live consumer (0 without consumers).
    uint64_t backlog() const {
        if (!consuming) {
            return 0;
        }
        uint64_t d = delivered;
        uint64_t c = confirmed;
        return c > d ? c - d : 0;
    }

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

} // namespace actormq::crash
