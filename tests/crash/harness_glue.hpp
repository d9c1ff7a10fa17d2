// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the pair, replication and ring modes of actormq-crash share around their nodes: the
// problem list with the checks that a node still runs and stops as a signal should make it,
// elapsed times, and figures read back from the nodes' logs (docs/testing.md).

#include "crash/node_runner.hpp"
#include "support/wait.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace actormq::crash {

/// Milliseconds from `from` to `to`.
int64_t ms_since(test::test_clock::time_point from,
                 test::test_clock::time_point to = test::test_clock::now());

/// The integer after `field` on every line of `logs` that holds `key` (e.g. the
/// `activation_ms=` of every `ha_live` line).
std::vector<int64_t>
log_figures(const std::vector<std::string>& logs, const std::string& key, const std::string& field);

/// "n=.. p50=..ms p99=..ms max=..ms" of `ms`.
std::string figures(std::vector<int64_t> ms);

/// A run's problem lines and the checks that add to them. `article` goes before a node's name
/// in them ("the " for "the primary"; "" for "a").
class node_checks {
public:
    node_checks(std::vector<std::string>& problems, std::string article)
        : problems_(problems),
          article_(std::move(article)) {}

    /// Notes `what`; always false, so that a step can `return problem(...)`.
    bool problem(std::string what);

    /// Whether `n`'s process still runs; if it exited on its own (a crash), a problem names
    /// its exit status and log.
    bool alive(node_runner& n, const std::string& when);

    /// Stops `n` with `sig` and waits for its exit; false (and a problem) unless it exits as
    /// `sig` should make it.
    bool stop_node(node_runner& n, int sig, const std::string& when);

private:
    std::vector<std::string>& problems_;
    std::string article_;
};

} // namespace actormq::crash
