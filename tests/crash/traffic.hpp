// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "crash/ledger.hpp"
#include "crash/options.hpp"
#include "crash/producers.hpp"
#include "crash/schedule.hpp"

#include <string>
#include <thread>
#include <vector>

namespace actormq::crash {

/// The producers of a run: their threads, the ledger they fill and what they share with the
/// killer. Use it from the main thread.
class traffic {
public:
    /// One stream per producer, none started yet.
    traffic(uint32_t producers, uint32_t tx_producers);

    traffic(const traffic&) = delete;
    traffic& operator=(const traffic&) = delete;

    /// Starts one thread per producer.
    void start();

    /// Tells the producers to stop (to give up at once when `abort`), giving them a grace
    /// period for their last receipts, and joins them.
    void stop(bool abort);

    /// Lets traffic run until `p.count` further confirmations or `p.time`, whichever is
    /// first; returns which ("count" or "time"), or "restart" at once for an early phase.
    const char* run_phase(const traffic_phase& p);

    /// Seconds since `start`.
    double seconds() const;

    /// Prints the `traffic:` line and a `warning:` line per producer in trouble.
    void print() const;

    traffic_control& ctl() { return ctl_; }
    ledger& book() { return book_; }

private:
    traffic_control ctl_;
    producer_limits limits_;
    ledger book_;
    std::vector<producer_stats> stats_;
    std::vector<std::thread> threads_;
    test::test_clock::time_point t0_ = test::test_clock::now();
    double seconds_ = 0;
};

/// What the end of a run reports besides the traffic and the verdict.
struct run_end {
    uint32_t kills = 0;                ///< SIGKILLs done.
    bool drained = false;              ///< Whether the final drain completed.
    std::vector<std::string> problems; ///< Broker problems, one `problem:` line each.
    std::vector<std::string> logs;     ///< Every node log, for a failed run.
    std::string extra;                 ///< A line printed before the verdict ("" for none).
};

/// Prints the traffic, `end.extra`, the verdict and, on a failure, the offending ids, the
/// logs and the replay command. Returns the exit status: 0 for a clean verdict without
/// problems, else 1.
int report(const options& o, traffic& t, run_end end);

} // namespace actormq::crash
