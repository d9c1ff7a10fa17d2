// SPDX-License-Identifier: Apache-2.0
#pragma once

// The shell's state and its commands (docs/shell.md): the nodes it started or connected to,
// the credentials, and one method per command. main.cpp feeds it parsed lines, from readline
// or from a script.

#include "apps/partition/partition_proxy.hpp"
#include "apps/shell/child.hpp"
#include "apps/shell/ledger.hpp"
#include "apps/shell/management.hpp"
#include "apps/shell/script.hpp"
#include "apps/shell/status.hpp"

#include <caf/actor.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace actormq::shell {

/// Settings from the command line and the environment.
struct shell_options {
    std::string cluster_user;     ///< --user, ACTORMQ_CLUSTER_USER
    std::string cluster_password; ///< --password, ACTORMQ_CLUSTER_PASSWORD
    std::string stomp_login;      ///< --stomp-user, ACTORMQ_STOMP_USER
    std::string stomp_passcode;   ///< --stomp-password, ACTORMQ_STOMP_PASSWORD
    std::string node_binary;      ///< ACTORMQ_NODE, else actormq-node next to the shell
    /// Relative CONFIG paths are taken from here: the script's folder, or the working directory.
    std::string base_dir;
    bool keep_tmp = false; ///< --keep-tmp, ACTORMQ_KEEP_TMP: keep ${TMP} at exit
};

/// A node the shell knows: started by it (a child) or connected to (`connect`).
struct node_entry {
    std::string name;
    std::unique_ptr<child> proc; ///< null for a node that runs elsewhere
    std::string config;          ///< absolute path of its config (children)
    std::vector<std::string> sets;
    std::string host = "127.0.0.1";
    uint16_t cluster_port = 0;
    uint16_t stomp_port = 0;
    /// The acceptor named "native" (send / receive --native); 0: none known.
    uint16_t native_port = 0;
    caf::actor status_actor; ///< invalid until management is connected
    bool frozen = false;     ///< stopped with SIGSTOP by `freeze`
    bool no_proxy = false;   ///< `start --no-proxy`: its cluster links go direct
};

/// A cluster link the shell runs through a proxy (docs/shell.md, "partition"): `from` lists a
/// member on this machine at `target_port`, and its member address was pointed at `proxy`,
/// which forwards to that port. The node at the other end is whichever node of the shell has
/// that cluster port, so a node may list members that start after it (fixed ports).
struct cluster_link {
    std::string from;
    uint16_t target_port = 0;
    std::unique_ptr<partition_proxy> proxy;
};

/// The outcome of one condition: whether it holds and what was seen.
struct check_result {
    bool holds = false;
    std::string observed;
    /// The condition can never hold any more (e.g. the node exited): stop waiting.
    bool final = false;
};

class shell {
public:
    explicit shell(shell_options opts);

    /// Kills every child node and removes ${TMP} (unless kept).
    ~shell();

    shell(const shell&) = delete;
    shell& operator=(const shell&) = delete;

    /// Runs one parsed command; "" on success, else the reason (without location).
    std::string run(const invocation& inv);

    /// Whether `quit` ran.
    bool quit_requested() const { return quit_; }

    /// The per-run temporary directory, ${TMP}.
    const std::string& tmp_dir() const { return tmp_; }

private:
    // -- commands (shell.cpp) ---------------------------------------------------------------
    std::string cmd_start(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_restart(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_connect(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_stop(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_kill(const std::vector<std::string>& w, const invocation& inv);

    // -- commands (shell_faults.cpp) ---------------------------------------------------------
    std::string cmd_freeze(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_thaw(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_partition(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_heal(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_links(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_verdict(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_login(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_echo(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_quit(const std::vector<std::string>& w, const invocation& inv);

    // -- commands (shell_commands.cpp) --------------------------------------------------------
    std::string cmd_nodes(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_queues(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_events(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_status(const std::vector<std::string>& w, const invocation& inv);
    /// The node, COUNT and STOMP port of `send` / `receive` (w[0], w[2]); "" or the error.
    std::string traffic_args(const std::vector<std::string>& w,
                             const invocation& inv,
                             node_entry*& e,
                             uint64_t& count);
    std::string cmd_send(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_receive(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_wait(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_assert(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_log(const std::vector<std::string>& w, const invocation& inv);
    std::string cmd_help(const std::vector<std::string>& w, const invocation& inv);

    // -- helpers -------------------------------------------------------------------------------
    /// Expands ${VAR} in every word and option value.
    std::string
    expand_all(const invocation& inv, std::vector<std::string>& words, invocation& expanded);
    std::optional<std::string> variable(const std::string& name) const;

    /// The node called `name`, or nullptr with `error` set.
    node_entry* find(const std::string& name, std::string& error);
    /// find(), and the node must be a child of this shell that still runs.
    node_entry* running_child(const std::string& name, std::string& error);

    /// Launches `e`'s child with `extra_sets` after its own, waits for its ports file and
    /// connects management when the node has a cluster port and credentials are set.
    std::string
    launch(node_entry& e, const std::vector<std::string>& extra_sets, const invocation& inv);

    /// Connects management to `e` unless it already is; "" or the reason. `not_ready` (when
    /// given) tells whether the node said it is still starting.
    std::string ensure_management(node_entry& e, bool* not_ready = nullptr);

    /// The node's status, fetched now.
    outcome<node_status> fetch_status(node_entry& e);

    /// The management client, started on first use.
    management& mgmt();

    /// Evaluates a `wait` / `assert` condition once (`inv` carries its --count).
    check_result check(const std::vector<std::string>& condition, const invocation& inv);

    /// The --set list a launch of `e` passes: its own, with the cluster members that are
    /// children of this shell pointed at a proxy of the link (created on first use), so that
    /// `partition` can cut it. Adds a line per link to `report`.
    std::vector<std::string> route_members(const node_entry& e, std::string& report);

    /// The link from `from` to the cluster port `port`, created on first use.
    cluster_link& link(const std::string& from, uint16_t port);

    /// The node at the far end of `l`: the node whose cluster port is its target ("" if none).
    std::string link_target(const cluster_link& l) const;

    /// Every link between `a` and `b`, either way.
    std::vector<cluster_link*> links_between(const std::string& a, const std::string& b);

    shell_options opts_;
    std::string tmp_;
    std::map<std::string, node_entry> nodes_;
    std::unique_ptr<management> mgmt_;
    /// Proxied cluster links; their proxies' threads end with the shell.
    std::vector<cluster_link> links_;
    /// What send and receive did, for `verdict`.
    ledger ledger_;
    bool quit_ = false;
};

} // namespace actormq::shell
