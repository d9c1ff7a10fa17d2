// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "support/wait.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace actormq::test {

/// How `node_process` runs the binary.
enum class node_mode : uint8_t {
    serve,        ///< `--config FILE`: start a node.
    check_config, ///< `--check-config FILE`: only check the file and exit.
};

/// One real `actormq-node` process (style rule 26) in a fresh temporary directory.
///
/// The constructor makes the directory (removed by the destructor unless the environment
/// variable ACTORMQ_KEEP_TMP is set), writes `config_toml` to DIR/node.toml unchanged and
/// starts the binary named by ACTORMQ_NODE as
/// `actormq-node --config DIR/node.toml --set ports-file=DIR/ports.json [--set EXTRA ...]`,
/// with stdout and stderr going to DIR/node.log. The destructor SIGKILLs the process if it
/// still runs and reaps it, so no test leaves a child behind.
class node_process {
public:
    /// Starts the node; throws std::runtime_error if it cannot (e.g. ACTORMQ_NODE unset).
    explicit node_process(const std::string& config_toml,
                          std::vector<std::string> extra_sets = {},
                          node_mode mode = node_mode::serve);

    ~node_process();

    node_process(const node_process&) = delete;
    node_process& operator=(const node_process&) = delete;

    /// Polls until the node has written its ports file (true), or it exited or `deadline`
    /// passed (false; the tail of node.log is printed to stderr).
    bool wait_ready(deadline_t deadline);

    /// The port the acceptor `name` listens on, as read by `wait_ready`; 0 if unknown.
    uint16_t port(const std::string& name = "stomp") const;

    /// Sends `sig` (e.g. SIGKILL, SIGTERM) to the process if it still runs.
    void kill(int sig);

    /// Polls waitpid until the process exited and returns its wait status, or nullopt once
    /// `deadline` passed (the tail of node.log is printed to stderr).
    std::optional<int> wait_exit(deadline_t deadline);

    /// Whether the process has not exited yet (reaps it if it has).
    bool running();

    /// The whole of node.log so far.
    std::string log_text() const;

    /// The last `lines` lines of node.log, for diagnostics.
    std::string log_tail(size_t lines = 40) const;

    /// The temporary directory of this node.
    const std::string& dir() const { return dir_; }

    /// The process id.
    pid_t pid() const { return pid_; }

private:
    /// Checks for exit without blocking; stores the status when the process is gone.
    bool reap_nowait();

    /// Prints `what` and the tail of node.log to stderr.
    void report(const std::string& what) const;

    std::string dir_;
    pid_t pid_ = -1;
    std::optional<int> status_;
    std::map<std::string, uint16_t> ports_;
};

} // namespace actormq::test
