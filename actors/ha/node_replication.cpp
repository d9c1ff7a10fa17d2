// SPDX-License-Identifier: Apache-2.0
// The replication activation's side of the node (docs/replication.md): its effects (log lines,
// status, the cluster's view of this node, the journal's held confirmations, the replica) and
// the driver's start.
#include "actors/ha/node_impl.hpp"
#include "actors/ha/replication_driver.hpp"
#include "actors/replication/replica.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <algorithm>

namespace actormq {

/// The replication activation's effects: log lines, the status page, the cluster, SIGTERM,
/// the journal's held confirmations and the replica. Runs on the driver's thread.
struct server_instance::repl_effects final : replication_effects {
    server_instance& d;
    explicit repl_effects(server_instance& owner) : d(owner) {}

    void note(const repl_activation::note& n, int64_t failover_ms) override;
    void exit_process(int status) override { d.request_exit(status != 0); }
    void resume_journal() override {
        if (d.current && d.current->journal) {
            caf::anon_send(d.current->journal, replication::resume_atom::value);
        }
    }
    caf::actor spawn_replica(const caf::actor& owner) override {
        replication::replica_setup rs;
        rs.directory = d.cfg.journal.journal_directory;
        rs.file_size = d.cfg.journal.journal_file_size;
        // The mirror empties this directory at start. A colocated backup instance's default
        // one lies in its own journal directory; a paging-directory set explicitly would be its
        // host's (refused with ha-policy colocated at config time), so it is never touched.
        if (!d.colocated || d.cfg.journal.paging_directory.empty()) {
            rs.paging_directory = config::paging_directory_of(d.cfg.journal);
        }
        rs.owner = owner;
        rs.log = d.log;
        auto replica = replication::spawn_replica(d.sys, std::move(rs));
        d.host.exits.track(replica);
        return replica;
    }
};

void server_instance::repl_effects::note(const repl_activation::note& n, int64_t ms) {
    using k = repl_activation::note_kind;
    bool backup = d.cfg.ha_policy.role == config::ha_role::backup;
    const auto& id = n.node_id;
    auto level =
        n.kind == k::storage_failed || n.kind == k::activation_failed || n.kind == k::stepping_down
            ? spdlog::level::err
        : n.kind == k::pair_refused || n.kind == k::vote_lost || n.kind == k::replication_failed
                || n.kind == k::live_lost || n.kind == k::stale_journal
            ? spdlog::level::warn
            : spdlog::level::info;
    d.log->log(level, "replication_{} node_id={} detail=\"{}\"{}", to_string(n.kind),
               id.empty() ? "-" : id, n.detail,
               ms >= 0 ? " failover_ms=" + std::to_string(ms) : std::string{});
    switch (n.kind) {
        case k::waiting_for_live:
            d.announce("backup", "");
            d.report("backup-waiting", "");
            break;
        case k::syncing:
            d.announce("backup", id, n.sequence);
            d.report("backup-syncing", id);
            d.event("sync_started", "initial sync from " + n.detail);
            break;
        case k::in_sync:
            d.report("backup", id);
            d.event("in_sync", "holds the whole journal of node " + id);
            break;
        // Votes go to the page's "HA decisions" with their counts (docs/web.md).
        case k::voting:
            d.event("vote", n.detail);
            break;
        case k::vote_lost:
            d.event("vote_lost", n.detail);
            break;
        case k::quorum_kept:
            d.event("quorum_kept", n.detail);
            break;
        case k::activating:
            d.announce("starting", id, n.sequence);
            d.report("starting", id);
            d.event(n.detail.rfind("quorum-vote", 0) == 0 ? "vote_won" : "activating", n.detail);
            break;
        case k::live:
            d.announce("live", id, n.sequence);
            d.report(backup ? "backup-active" : "live", id);
            if (backup && ms >= 0) {
                d.event("failover",
                        "backup took over node " + id + " in " + std::to_string(ms) + " ms", ms);
                d.scale_down_after_failover();
            } else {
                d.event("activated", "live for node " + id + " (" + n.detail + ")");
            }
            break;
        case k::stepping_down:
            d.announce("starting", id, n.sequence);
            d.report("stopped", id);
            d.event("stepping_down", "lost the backup and the quorum, stops serving: " + n.detail);
            break;
        case k::restarting:
        case k::replication_failed:
        case k::pair_refused:
            d.announce("starting", "");
            d.report("backup-waiting", "");
            break;
        case k::stopped:
            d.report("stopped", id);
            break;
        // Tell the cluster which journal this server holds, so that no other server starts
        // live on an older one meanwhile (docs/replication.md, "Which journal is newest").
        case k::held_journal:
            d.announce("starting", id, n.sequence);
            d.report("starting", id);
            d.event("held_journal", "holds the journal it served for node " + id + ": " + n.detail);
            break;
        case k::stale_journal:
            d.announce("starting", id, n.sequence);
            d.event("stale_journal", n.detail);
            break;
        case k::backup_exiting:
            // restart-backup = false: a backup that gave way ends with status 0 (a colocated
            // one ends its instance, and its host frees the slot: docs/ha.md, "Colocated
            // backups"); the driver finishes its stop first.
        case k::superseded:
            // An unpaired colocated backup whose live has another: the same end (docs/ha.md,
            // "An unpaired colocated backup gives way").
            d.request_exit(false);
            break;
        default:
            break;
    }
}

void server_instance::start_replication() {
    const auto& hp = cfg.ha_policy;
    const auto& rc = hp.replication;
    if (hp.role == config::ha_role::primary && !rc.check_for_live_server) {
        // The reference text's warning: such a primary serves its node id beside the backup
        // that took over, without the messages that backup confirmed since.
        log->warn("replication_no_failback_check reason=\"check-for-live-server is false: if "
                  "the backup took over while this server was down, this start serves the node "
                  "id a second time with an older journal (docs/replication.md, Failback)\"");
    }
    spawn_io();
    repl_files = sys.spawn<caf::detached>(replication_files, cfg.journal.journal_directory,
                                          rc.max_saved_replicated_journals_size);
    replication_setup setup;
    setup.settings.backup = hp.role == config::ha_role::backup;
    setup.settings.vote_on_replication_failure = rc.vote_on_replication_failure;
    setup.settings.vote_retries = rc.vote_retries;
    setup.settings.vote_retry_wait_ms = rc.vote_retry_wait;
    setup.settings.retry_replication_wait_ms = rc.retry_replication_wait;
    setup.settings.check_for_live_server = rc.check_for_live_server;
    setup.settings.allow_failback = hp.allow_failback;
    setup.settings.restart_backup = hp.restart_backup;
    setup.quorum_size = rc.quorum_size;
    setup.timeouts.vote = std::chrono::seconds(rc.quorum_vote_wait);
    setup.timeouts.pair =
        std::chrono::milliseconds(std::max<uint32_t>(cfg.cluster.connection_timeout_ms, 1000) * 3);
    setup.name = cfg.name;
    setup.group = rc.group_name;
    setup.cluster_address = self_info.cluster_address;
    setup.live_node_id = live_node_id;
    setup.cluster = cluster;
    setup.locks = lock_io;
    setup.instance = instance_io;
    setup.files = repl_files;
    setup.effects = std::make_shared<repl_effects>(*this);
    {
        std::lock_guard<std::mutex> guard{cluster_mtx};
        repl_driver = sys.spawn(replication_driver, std::move(setup));
        caf::anon_send(repl_driver, ha_start_atom::value);
        caf::anon_send(repl_driver, last_topology);
        // A primary asking for its node id back reaches this driver through the cluster.
        caf::anon_send(cluster, cluster::failback_atom::value, repl_driver);
    }
}

} // namespace actormq
