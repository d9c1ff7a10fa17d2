// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "crash/producers.hpp"
#include "support/process.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace actormq::crash {

/// Deadlines of the node's lifecycle steps.
struct node_limits {
    std::chrono::milliseconds ready{20000}; ///< From exec to the ports file.
    std::chrono::milliseconds exit{10000};  ///< From a signal to the exit status.
};

/// The node config the harness writes: name, journal in DIR/journal, acceptor `stomp` on
/// port 0 (fixed later with --set), user guest/guest, log level info, and no address limit,
/// so that BLOCK never holds a producer back.
std::string crash_node_config(const std::string& dir);

/// The one node of a crash run: started, killed and restarted in the same directory, on the
/// same port. Each start (a "run") logs to DIR/node-<run>.log. Use it from the main thread
/// only (see `test::node_process` on the parent-death signal).
class node_runner {
public:
    /// Remembers `dir` (which must exist) and `ctl`, whose `node_up` and `port` it keeps;
    /// every run gets `sets` as `--set` overrides after the harness's own config.
    node_runner(std::string dir,
                traffic_control& ctl,
                std::vector<std::string> sets = {},
                node_limits limits = {});

    /// Starts the next run: the first on port 0, later ones on the first run's port. True
    /// once the ports file is there; `ctl.node_up` is then set. On false, `problem()` says why.
    bool start();

    /// Clears `ctl.node_up`, sends `sig` and waits for the exit; the wait status, or
    /// nullopt if the node did not exit by the deadline.
    std::optional<int> stop(int sig);

    /// Whether `status` is what `sig` should produce: killed by SIGKILL, or exit 0 on SIGTERM.
    static bool expected_exit(int sig, int status);

    /// "exit 0", "killed by signal 9", ... for reports.
    static std::string describe_status(int status);

    /// How many runs have started.
    uint32_t runs() const { return runs_; }

    /// Why the last `start` failed.
    const std::string& problem() const { return problem_; }

    /// The logs of every run so far, in order.
    std::vector<std::string> log_paths() const;

private:
    std::string dir_;
    traffic_control& ctl_;
    std::vector<std::string> sets_;
    node_limits limits_;
    std::unique_ptr<test::node_process> node_;
    uint16_t port_ = 0;
    uint32_t runs_ = 0;
    std::string problem_;
};

} // namespace actormq::crash
