// SPDX-License-Identifier: Apache-2.0
#pragma once

// The replication activation's driver (docs/replication.md, "Activation"): runs
// repl_activation::machine on the scheduler. Its blocking steps go to detached io actors (the
// lock file, the server instance, moving old data aside), its replica is a detached actor of
// its own, and the cluster carries the pairing request and the vote.

#include "actors/ha/activation_driver.hpp"
#include "actors/ha/replication_activation.hpp"
#include "actors/replication/replica.hpp"
#include "cluster/cluster.hpp"

#include <caf/actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace actormq {

using repl_lost_atom = caf::atom_constant<caf::atom("rlost")>;
/// The journal's backup is in sync (docs/replication.md, "Failback").
using repl_synced_atom = caf::atom_constant<caf::atom("rsynced")>;
/// (repl_superseded_atom, member) from the host of a colocated backup: `member` announces
/// itself the backup of the node id this one was started for ("": nobody does any more);
/// (repl_superseded_atom, uint64_t) the driver's grace timer.
using repl_superseded_atom = caf::atom_constant<caf::atom("supersede")>;
using repl_prepare_atom = caf::atom_constant<caf::atom("rprepare")>;
using repl_record_atom = caf::atom_constant<caf::atom("rrecord")>;

/// What the driver cannot do as a message: log lines, the status page, the cluster's view of
/// this node, SIGTERM and the journal's held confirmations. Called on the driver's thread;
/// implementations must not block.
class replication_effects {
public:
    virtual ~replication_effects() = default;
    /// A note (log line, status, announcement). `failover_ms`: for a backup's `live` note,
    /// the time from losing the live to serving; else -1.
    virtual void note(const repl_activation::note& n, int64_t failover_ms) = 0;
    virtual void exit_process(int status) = 0;
    /// The primary kept its quorum: its journal confirms alone from now on.
    virtual void resume_journal() = 0;
    /// Spawns a replica that reports to `owner`.
    virtual caf::actor spawn_replica(const caf::actor& owner) = 0;
};

/// Bounds of the driver's requests (style rule 12).
struct replication_timeouts {
    /// A pairing request crosses two cluster actors and the live's journal.
    caf::timespan pair = std::chrono::seconds(10);
    /// How long a vote waits for its answers (quorum-vote-wait, capped by the node).
    caf::timespan vote = std::chrono::seconds(5);
    /// The replica syncs and closes its files.
    caf::timespan close = std::chrono::seconds(60);
    activation_timeouts instance;
};

struct replication_setup {
    repl_activation::settings settings;
    replication_timeouts timeouts;
    int32_t quorum_size = -1;
    /// This node's name, group-name (the live checks the group) and cluster address.
    std::string name;
    std::string group;
    std::string cluster_address;
    /// A colocated backup's live (docs/ha.md, "Colocated backups"): it pairs with the server of
    /// this node id only; "" for any live of its group.
    std::string live_node_id;
    /// The cluster facade (pairing and votes).
    caf::actor cluster;
    io_locks_actor locks;
    io_instance_actor instance;
    /// Moves old data aside: (repl_prepare_atom) -> std::string error ("" when done).
    caf::actor files;
    std::shared_ptr<replication_effects> effects;
};

struct replication_driver_state {
    static inline const char* name = "replication";
    repl_activation::machine machine{repl_activation::settings{}};
    replication_setup setup;
    caf::actor replica;
    /// When the live was lost (a backup's failover is timed from it); empty otherwise.
    std::optional<std::chrono::steady_clock::time_point> lost_at;
    /// The newest topology, and the candidates last given to the machine.
    cluster::topology topology;
    std::vector<std::string> candidates;
    /// A failback request waiting for the machine's answer.
    caf::typed_response_promise<bool> failback;
    uint64_t unexpected = 0;
    /// What the host last said supersedes this colocated backup ("" for nothing), and whether
    /// it has said so for the grace (supersede_grace()) without a change: only then is it
    /// offered to the machine, after every event, which acts on it only between pairings. The
    /// grace lets a move finish: its new instance waits unpaired until the old one, announced
    /// meanwhile, is released. `superseded_timer` numbers the grace timers.
    std::string superseded_by;
    bool superseded_due = false;
    uint64_t superseded_timer = 0;
    /// Draws the random part of a vote's retry wait after a claimed vote (seeded per driver).
    std::minstd_rand random{std::random_device{}()};
};

/// The driver. Messages: ha_start_atom, ha_stop_atom, ha_fail_atom, (ha_tick_atom, uint64_t),
/// the cluster's topology on every change, (repl_lost_atom) when the journal lost its backup,
/// (cluster::failback_atom) -> bool when the primary asks this serving backup to give way,
/// (repl_superseded_atom, std::string) for a colocated backup, and the replica's reports.
caf::behavior replication_driver(caf::stateful_actor<replication_driver_state>* self,
                                 replication_setup setup);

/// The files io actor of `directory`: (repl_prepare_atom, bool discard_record) moves old
/// segments aside, unless the directory holds a journal this server served and
/// `discard_record` is false (answer: error, held node id, held sequence);
/// (repl_record_atom) reads the activation record (error, node id, sequence);
/// (repl_record_atom, node id, sequence) writes it (error). Spawn it detached.
caf::behavior
replication_files(caf::event_based_actor* self, std::string directory, uint32_t max_saved);

} // namespace actormq
