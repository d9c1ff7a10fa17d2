// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "crash/node_runner.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace actormq::crash {

/// Traffic before one kill (or, for the tail, before the end), drawn from the seed before
/// the run starts, so a replay gets the same schedule whatever the threads do.
struct traffic_phase {
    bool early = false;                ///< Kill right after the restart, with no traffic wait.
    uint64_t count = 0;                ///< Kill once this many further messages are confirmed,
    std::chrono::milliseconds time{0}; ///< or once this much time has passed.
};

/// The single-node schedule: phases 0..kills-1 end with kill 1..kills; every third kill is
/// early. The last phase is the traffic after the last kill.
std::vector<traffic_phase> plan(uint32_t kills, uint64_t seed);

/// One kill of the pair mode.
struct pair_kill {
    /// The primary is killed while it serves; the backup only while it serves and the
    /// restarted primary waits to fail back, so that the primary takes over from there.
    pair_role target = pair_role::primary;
    /// Primary kills: traffic before the kill (early: none, right after the failback).
    traffic_phase before;
    /// Primary kills: traffic the backup serves before the primary is restarted.
    traffic_phase on_backup;
};

/// The pair-mode schedule: the kills, and the traffic after the last one.
struct pair_schedule {
    std::vector<pair_kill> kills;
    traffic_phase tail;
};

/// Kill 1 hits the primary. After a primary kill, the next kill (if any) hits the backup
/// during the failback with probability 1/3; after a backup kill, the next one hits the
/// primary again. Every third kill, if it hits the primary, is early.
pair_schedule pair_plan(uint32_t kills, uint64_t seed);

/// The distribution of failover times of a run.
struct failover_summary {
    size_t n = 0;
    int64_t p50_ms = 0;
    int64_t p99_ms = 0;
    int64_t max_ms = 0;

    /// `failover: n=.. p50=..ms p99=..ms max=..ms`.
    std::string line() const;
};

/// Nearest-rank percentiles of `ms` (all zero when it is empty).
failover_summary summarize(std::vector<int64_t> ms);

} // namespace actormq::crash
