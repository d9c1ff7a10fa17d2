// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "crash/producers.hpp"
#include "support/process.hpp"

#include <chrono>
#include <functional>
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

/// How often `text` occurs in `log` (0 for an empty `text`).
size_t count_in(const std::string& log, const std::string& text);

/// The role of a node in a shared-store live/backup pair.
enum class pair_role : uint8_t { primary, backup };

/// "primary" or "backup".
const char* to_string(pair_role role);

/// The config of one node of a shared-store pair (docs/testing.md, "The pair mode"): the
/// acceptor, users and address settings of `crash_node_config`, name "primary" or "backup",
/// the shared `journal_dir`, [ha-policy.shared-store.<role>] with allow-failback and
/// restart-backup, and a [cluster] on port 0 (fixed later with --set) that lists `members`
/// ("HOST:PORT" cluster addresses of the other node). With `native_acceptor`, also a native
/// acceptor on 127.0.0.1 port 0 (fixed later with --set), which the topology announces to
/// native clients (the native mode, docs/testing.md).
std::string pair_node_config(pair_role role,
                             const std::string& journal_dir,
                             const std::vector<std::string>& members,
                             bool native_acceptor = false);

/// What one node of a crash run is: where it lives, how it is configured and which slot of
/// the producers' host list it fills.
struct node_spec {
    /// Its directory (node.toml, ports.json, its logs); must exist.
    std::string dir;
    /// Run r logs to DIR/<log_prefix>-<r>.log.
    std::string log_prefix = "node";
    /// Its slot in `traffic_control::hosts`.
    uint32_t host = 0;
    /// The config of each start, asked for again before every start, so that it may change
    /// between runs (a primary learns its backup's cluster address).
    std::function<std::string()> config;
    /// `--set` overrides given to every run after the config.
    std::vector<std::string> sets;
};

/// One node of a crash run: started, killed and restarted in the same directory, on the same
/// ports (STOMP, and cluster if it has one). Each start (a "run") logs to its own file. Use it
/// from the main thread only (see `test::node_process` on the parent-death signal).
class node_runner {
public:
    /// Remembers `spec` and `ctl`, whose host slot `spec.host` it keeps up to date.
    node_runner(node_spec spec, traffic_control& ctl, node_limits limits = {});

    /// The single node of the classic harness: `crash_node_config(dir)`, host 0, logs
    /// node-<run>.log.
    node_runner(std::string dir,
                traffic_control& ctl,
                std::vector<std::string> sets = {},
                node_limits limits = {});

    /// Starts the next run: the first on the ports its config names (0: the OS picks), later
    /// ones on the first run's ports. True once the ports file is there: the process is up,
    /// and its host slot says so. On false, `problem()` says why.
    bool start();

    /// Polls (until `deadline`) for a STOMP CONNECT on the node's port to get CONNECTED, i.e.
    /// for the node to serve. Only while its process is up.
    bool serving(test::deadline_t deadline) const;

    /// Whether a TCP connect to the node's STOMP port is refused right now (a passive backup).
    bool refuses_connections() const;

    /// How often the current run's log contains `text` (e.g. `ha_failing_back`).
    size_t log_count(const std::string& text) const;

    /// The current run's log so far ("" before the first start).
    std::string log_text() const;

    /// Lets producers connect to the node (`reachable` and its process up) or not, without
    /// stopping it: the pair mode keeps them off a backup while it gives way, when its port
    /// is briefly closed and a loopback connect could connect to itself.
    void set_reachable(bool reachable);

    /// The node's name in reports: its log prefix ("node", "primary", "backup").
    const std::string& name() const { return spec_.log_prefix; }

    /// Its slot in `traffic_control::hosts`.
    uint32_t host() const { return spec_.host; }

    /// The STOMP port (0 before the first start).
    uint16_t port() const { return port_; }

    /// The cluster port (0 before the first start, or when the node has no [cluster]).
    uint16_t cluster_port() const { return cluster_port_; }

    /// The native acceptor's port (0 before the first start, or when the node has none).
    uint16_t native_port() const { return native_port_; }

    /// Marks its host slot down, sends `sig` and waits for the exit; the wait status, or
    /// nullopt if the node did not exit by the deadline.
    std::optional<int> stop(int sig);

    /// Sends `sig` (SIGSTOP, SIGCONT) to the current run's process if it still runs, without
    /// waiting for anything and without touching its host slot.
    void signal(int sig);

    /// The wait status if the current run's process has exited on its own (it is reaped),
    /// or nullopt while it runs (or before the first start).
    std::optional<int> exited();

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
    /// Writes every thread's stack of the running node to LOG.stacks.txt (gdb), for a stop
    /// that did not end.
    void dump_stacks();

public:
private:
    node_spec spec_;
    traffic_control& ctl_;
    node_limits limits_;
    std::unique_ptr<test::node_process> node_;
    uint16_t port_ = 0;
    uint16_t cluster_port_ = 0;
    uint16_t native_port_ = 0;
    uint32_t runs_ = 0;
    std::string problem_;
};

} // namespace actormq::crash
