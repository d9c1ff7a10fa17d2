// SPDX-License-Identifier: Apache-2.0
#pragma once

// An actormq-node that the shell started (docs/shell.md, "start"): its process, its directory
// (ports file and log) and the ports it bound.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace actormq::shell {

using clock_type = std::chrono::steady_clock;

/// One child node process.
class child {
public:
    /// `dir` holds ports.json and node.log; `argv` is the full command line.
    child(std::string dir, std::vector<std::string> argv);

    /// Forks and execs; "" or the reason it could not. The child gets SIGKILL when the shell
    /// dies (PR_SET_PDEATHSIG), so no node outlives a crashed shell.
    std::string launch();

    /// Polls until the ports file is written (true), the process exits or `deadline` passes
    /// (false, `error` says which).
    bool wait_ports(clock_type::time_point deadline, std::string& error);

    /// Sends `sig` if the process still runs.
    void signal(int sig);

    /// Polls until the process exited (true) or `deadline` passed.
    bool wait_exit(clock_type::time_point deadline);

    /// Whether the process still runs (reaps it if it exited). A frozen process runs.
    bool running();

    /// Polls /proc until the process is stopped by a signal (`stopped`, after SIGSTOP) or runs
    /// on (after SIGCONT): true, or false when `deadline` passed or the process exited.
    bool wait_stopped(bool stopped, clock_type::time_point deadline);

    /// "exit code N" / "killed by SIGKILL" once it exited; "" while it runs.
    std::string exit_text() const;

    /// The port bound by acceptor (or "cluster", "web") `name`; 0 if unknown.
    uint16_t port(const std::string& name) const;

    /// The STOMP acceptor's port: "stomp" if there is one, else the first acceptor's.
    uint16_t stomp_port() const;

    const std::map<std::string, uint16_t>& ports() const { return ports_; }

    /// The last `lines` lines of node.log.
    std::string log_tail(size_t lines) const;

    /// How many lines of node.log contain `text` (every run of this node: restarts append).
    uint64_t log_count(const std::string& text) const;

    pid_t pid() const { return pid_; }
    const std::string& dir() const { return dir_; }
    const std::vector<std::string>& argv() const { return argv_; }

private:
    bool reap_nowait();

    std::string dir_;
    std::vector<std::string> argv_;
    pid_t pid_ = -1;
    std::optional<int> status_;
    std::map<std::string, uint16_t> ports_;
};

/// Kills (SIGKILL) and reaps every child still registered; safe to call from a signal handler.
void kill_all_children() noexcept;

} // namespace actormq::shell
