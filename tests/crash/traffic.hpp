// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "crash/consumers.hpp"
#include "crash/ledger.hpp"
#include "crash/options.hpp"
#include "crash/producers.hpp"
#include "crash/schedule.hpp"

#include <string>
#include <thread>
#include <vector>

namespace actormq::crash {

/// The producers and live consumers of a run: their threads, the ledger they fill and what
/// they share with the killer. Use it from the main thread.
class traffic {
public:
    /// One stream per producer, and with `consumers` one live consumer per stream; none
    /// started yet. With `native`, the clients are the native mode's (crash/native_clients.hpp).
    traffic(uint32_t producers, uint32_t tx_producers, bool consumers, bool native = false);

    traffic(const traffic&) = delete;
    traffic& operator=(const traffic&) = delete;

    /// --sync-sends: plain producers send one message at a time (each waits for its RECEIPT),
    /// without duplicate ids, and never send one again: what the broker's send lane takes
    /// (docs/journal.md, "The send lane"). Before start().
    void sync_sends() {
        limits_.window = 1;
        limits_.duplicate_ids = false;
    }

    /// Starts one thread per producer and per consumer.
    void start();

    /// Tells the producers to stop (to give up at once when `abort`), giving them a grace
    /// period for their last receipts, and joins them; then the same for the consumers and
    /// the receipts of their last ACKs.
    void stop(bool abort);

    /// Lets traffic run until `p.count` further confirmations or `p.time`, whichever is
    /// first; returns which ("count" or "time"), or "restart" at once for an early phase.
    const char* run_phase(const traffic_phase& p);

    /// Seconds since `start`.
    double seconds() const;

    /// Prints the `traffic:` line, with consumers the `consumers:` line (with counts from the
    /// verdict `v`: the drain got what the live consumers did not), and a `warning:` line per
    /// client in trouble.
    void print(const verdict& v) const;

    /// Blocking calls of native clients that threw TIMEOUT, over all clients.
    uint64_t timeouts() const;

    /// Whether live consumers run.
    bool consuming() const { return !consumer_stats_.empty(); }

    traffic_control& ctl() { return ctl_; }
    ledger& book() { return book_; }

private:
    /// The `consumers:` line.
    void print_consumers(const verdict& v, uint64_t backlog_waits) const;

    traffic_control ctl_;
    bool native_ = false;
    producer_limits limits_;
    ledger book_;
    consumer_limits consumer_limits_;
    std::vector<producer_stats> stats_;
    std::vector<consumer_stats> consumer_stats_;
    std::vector<std::thread> threads_;
    std::vector<std::thread> consumer_threads_;
    /// The largest backlog (`traffic_control::backlog`) seen while a phase ran.
    uint64_t backlog_seen_max_ = 0;
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
