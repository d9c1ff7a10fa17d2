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

/// Where a node runs when the caller owns its directory, e.g. because a journal in it must
/// survive restarts (the crash harness, tests/crash/).
struct node_placement {
    /// An existing directory; `node_process` writes node.toml, ports.json and the log there
    /// and never removes it.
    std::string dir;

    /// The file name of the node's log inside `dir`, so that each restart can keep its own.
    std::string log_name = "node.log";
};

/// The whole file at `path` as bytes; empty when it cannot be read.
std::string read_file(const std::string& path);

/// One real `actormq-node` process (style rule 26), by default in a fresh temporary directory.
///
/// The constructor makes the directory (removed by the destructor unless the environment
/// variable ACTORMQ_KEEP_TMP is set), writes `config_toml` to DIR/node.toml unchanged and
/// starts the binary named by ACTORMQ_NODE as
/// `actormq-node --config DIR/node.toml --set ports-file=DIR/ports.json [--set EXTRA ...]`,
/// with stdout and stderr going to DIR/node.log. The destructor SIGKILLs the process if it
/// still runs and reaps it, so no test leaves a child behind.
///
/// Create it on a thread that lives as long as the node should: the child asks for SIGKILL
/// when its parent dies (PR_SET_PDEATHSIG), and Linux means the thread that forked it.
class node_process {
public:
    /// Starts the node; throws std::runtime_error if it cannot (e.g. ACTORMQ_NODE unset).
    explicit node_process(const std::string& config_toml,
                          std::vector<std::string> extra_sets = {},
                          node_mode mode = node_mode::serve);

    /// Starts the node in the caller's directory `where.dir`, as above but with the log in
    /// DIR/`where.log_name`; the directory is kept when this object goes. A ports.json left
    /// there by an earlier node is removed first, so `wait_ready` only sees this node's ports.
    /// To restart a node on the port it had, pass `acceptors.stomp.port=<port>` in
    /// `extra_sets` (the acceptor sets SO_REUSEADDR). Throws like the constructor above.
    node_process(const node_placement& where,
                 const std::string& config_toml,
                 std::vector<std::string> extra_sets = {});

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

    /// The whole of the node's log so far.
    std::string log_text() const;

    /// The last `lines` lines of the node's log, for diagnostics.
    std::string log_tail(size_t lines = 40) const;

    /// The directory of this node (temporary unless it was given a `node_placement`).
    const std::string& dir() const { return dir_; }

    /// The path of the node's log (stdout and stderr).
    const std::string& log_path() const { return log_path_; }

    /// The process id.
    pid_t pid() const { return pid_; }

private:
    /// Writes DIR/node.toml and forks and execs the binary with its output to `log_path_`.
    void launch(const std::string& config_toml,
                std::vector<std::string> extra_sets,
                node_mode mode);

    /// Checks for exit without blocking; stores the status when the process is gone.
    bool reap_nowait();

    /// Prints `what` and the tail of node.log to stderr.
    void report(const std::string& what) const;

    std::string dir_;
    std::string log_path_;
    bool owns_dir_ = true;
    pid_t pid_ = -1;
    std::optional<int> status_;
    std::map<std::string, uint16_t> ports_;
};

} // namespace actormq::test
