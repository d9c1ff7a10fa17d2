// SPDX-License-Identifier: Apache-2.0
#pragma once

// The cluster actor (../shared/design.md, row "cluster"): membership of this node, static
// discovery of the configured members, and the topology (node id -> live and backup STOMP
// connectors) that the node reads to fill CONNECTED's backup-connector header.
//
// Two actors make up one cluster member:
// - the cluster actor itself, published through the middleman on [cluster] host:port. From the
//   network it accepts only a join (checked against cluster-user / cluster-password) and
//   announcements from members that have joined;
// - a local facade, whose handle `start` returns to the node. Only the facade can change this
//   node's own member info, and its handle never leaves the process, so nothing that merely
//   connects to the cluster port can rewrite what this node says about itself.

#include "config/node_config.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace spdlog {
class logger;
}

namespace actormq::cluster {

/// What one node says about itself; sent to the other members whenever it changes.
struct member_info {
    /// The node name from its config.
    std::string name;
    /// The UUID of the server it serves (live) or backs up; "" while unknown.
    std::string node_id;
    /// "live", "backup" (passive) or "starting".
    std::string role;
    /// "HOST:PORT" of its STOMP acceptor.
    std::string connector;
    /// "HOST:PORT" of its cluster port.
    std::string cluster_address;
    /// Bumped by the owning cluster actor on every change; a member keeps the highest it saw.
    uint64_t version = 0;
    /// "HOST:PORT" of each of its native-protocol acceptors (docs/protocol.md §12), in config
    /// order; empty when it has none. Last, so that brace-initialisations that end at
    /// `version` stay valid.
    std::vector<std::string> native_connectors{};
    /// Replication's group-name (docs/replication.md): a backup pairs only with a live of its
    /// group; "" for none.
    std::string group{};
    /// The activation sequence of the journal it serves, or holds as a journal it served
    /// (docs/replication.md, "Which journal is newest"); 0 for none.
    uint64_t sequence = 0;
    /// A colocated backup's host: the name of the node whose process runs it (docs/ha.md,
    /// "Colocated backups"); "" for a node's own server instance.
    std::string hosted_by{};
};

/// CAF 0.17 serialisation of `member_info`.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_info& x) {
    return f(caf::meta::type_name("actormq::cluster::member_info"), x.name, x.node_id, x.role,
             x.connector, x.cluster_address, x.version, x.native_connectors, x.group, x.sequence,
             x.hosted_by);
}

/// Every member that has joined, this node included.
struct topology {
    /// This node first, then the others ordered by name and cluster address.
    std::vector<member_info> members;

    /// The STOMP connectors of the members with role "backup" for `node_id` ("" matches none).
    std::vector<std::string> backups_of(const std::string& node_id) const;

    /// The STOMP connector of the member with role "live" for `node_id`, or "".
    std::string live_of(const std::string& node_id) const;

    /// One live/backup group as native clients see it (docs/protocol.md §12).
    struct native_group {
        std::string node_id;
        /// The first native connector of the group's live, or "".
        std::string live;
        /// The first native connector of the group's first backup, or "".
        std::string backup;
    };

    /// Every node id that a member serves or backs up, in member order (so this node's group
    /// comes first), with the native connectors of its live and backup. Members without a node
    /// id, or in role "starting", add nothing; a group with neither connector is left out.
    std::vector<native_group> native_groups() const;
};

/// CAF 0.17 serialisation of `topology`.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, topology& x) {
    return f(caf::meta::type_name("actormq::cluster::topology"), x.members);
}

/// What one member answered a quorum question about a node id.
struct vote_answer {
    /// The member serves (role "live"): only lives count in a quorum.
    bool live_server = false;
    /// It sees a server other than the asker serve that node id (itself, or a member it is
    /// connected to).
    bool sees_live = false;
    /// The highest activation sequence of that node id it has seen announced since it started.
    uint64_t sequence_seen = 0;
    /// Another server may be taking that node id over right now: this member told another
    /// asker it is gone a moment ago, or is asking about it itself (cluster_state::vote).
    /// Counts from every member, live or not.
    bool claimed = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, vote_answer& x) {
    return f(caf::meta::type_name("actormq::cluster::vote_answer"), x.live_server, x.sees_live,
             x.sequence_seen, x.claimed);
}

/// The answers to one quorum question (docs/replication.md, "The vote").
struct vote_tally {
    /// The node id asked about.
    std::string node_id;
    /// The largest number of live servers (distinct node ids) this node has seen at once.
    uint32_t lives_seen_max = 0;
    /// Members asked, and those that answered in time.
    uint32_t asked = 0;
    uint32_t answered = 0;
    /// Answers from live servers: all of them, those that see the node id served, and those
    /// that do not.
    uint32_t live_answers = 0;
    uint32_t lives_seeing = 0;
    uint32_t lives_not_seeing = 0;
    /// Of those, the answers from live servers in the asker's own process (its host, a stand-in
    /// it runs beside): they share the asker's view of the network (live_is_gone).
    uint32_t local_live_answers = 0;
    uint32_t local_lives_not_seeing = 0;
    /// Processes other than the asker's that could answer as a live when the vote began: seen
    /// serving another node id and not seen stop (cluster_state::witnesses).
    uint32_t witness_processes = 0;
    /// The members of [cluster] members (this node's own address left out), and how many of
    /// them have joined: a primary checking at start needs more than half of the configured
    /// cluster before it may conclude that nobody serves its node id.
    uint32_t peers_configured = 0;
    uint32_t peers_joined = 0;
    /// The highest activation sequence of the node id seen by this node or any member that
    /// answered.
    uint64_t sequence_max = 0;
    /// Answers that said another server may be taking the node id over right now
    /// (vote_answer::claimed): no decision to serve it is taken while any did.
    uint32_t claims = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, vote_tally& x) {
    return f(caf::meta::type_name("actormq::cluster::vote_tally"), x.node_id, x.lives_seen_max,
             x.asked, x.answered, x.live_answers, x.lives_seeing, x.lives_not_seeing,
             x.local_live_answers, x.local_lives_not_seeing, x.witness_processes,
             x.peers_configured, x.peers_joined, x.sequence_max, x.claims);
}

/// The votes a decision needs: `quorum_size` when positive, else more than half of the
/// largest number of live servers seen (at least 1).
uint32_t votes_needed(const vote_tally& t, int32_t quorum_size);

/// A backup may take over node id `t.node_id`: no live server that answered still sees it
/// served, and the backup's own vote plus the lives that agree it is gone reach
/// votes_needed(). Counting the backup itself is what lets a lone pair fail over; docs/ha.md
/// says what that risks. Lives in the backup's own process (a colocated backup's host) add
/// nothing to its own vote while a live in another process could answer: a stalled process or
/// a cut link takes their links with the backup's, so they are no second witness.
bool live_is_gone(const vote_tally& t, int32_t quorum_size);

/// A live that lost its backup still has a quorum: no other server serves its node id, and
/// itself plus the live servers that answered reach votes_needed(), lives in its own process
/// counted as for live_is_gone.
bool live_has_quorum(const vote_tally& t, int32_t quorum_size);

/// A primary checking at start (check-for-live-server) may start live: nobody that answered
/// sees its node id served, and more than half of its configured cluster (itself included)
/// answered. It never starts live on the word of a minority. Each of the three decisions also
/// needs that no answer claimed the node id (vote_answer::claimed).
bool nobody_serves(const vote_tally& t);

/// Why a member refused a join; travels back to the joiner (category "cluster").
enum class cluster_errc : uint8_t {
    none = 0,
    bad_credentials,    ///< cluster-user or cluster-password did not match
    not_a_remote_join,  ///< a join without a joiner, or from the cluster actor itself
    not_local,          ///< a request only the node itself may make came from another node
    management_offline, ///< the node's status actor is not (yet) there to be managed
    not_a_member,       ///< a pairing or vote request from a node that has not joined
    no_such_member,     ///< a pairing request names a member this node does not know
    not_serving,        ///< a pairing request reached a member that serves nothing to replicate
    wrong_group,        ///< a pairing request from a backup of another group-name
    not_hosting,        ///< a backup request reached a member that runs no colocated backups
    backups_full,       ///< a backup request reached a member that runs max-backups already
    backup_failed,      ///< a colocated backup could not start on its host (the host logs why)
    not_scaling_target, ///< a scale-down batch reached a member that serves nothing to take it
    scale_down_failed,  ///< the target could not store a scale-down batch (the text says why)
};

/// A stable lower-case name for the error ("bad_credentials").
std::string to_string(cluster_errc e);

/// The announcement of a member's new info to the others: (announce_atom, member_info).
using announce_atom = caf::atom_constant<caf::atom("announce")>;

/// Asks the cluster, through the facade, to pair this node's replica with the live at a
/// cluster address: (pair_atom, cluster address, backup name, group, replica) ->
/// replication::pair_reply. Remote: (pair_atom, name, group, replica), from a joined member.
/// Runs a quorum vote about a node id: (quorum_atom, node_id, wait in ms) -> vote_tally.
using quorum_atom = caf::atom_constant<caf::atom("quorum")>;
/// One member's answer about a node id: (vote_atom, node_id, the asker's wait in ms) ->
/// vote_answer.
using vote_atom = caf::atom_constant<caf::atom("vote")>;
/// A vote that decided nothing gives back what it was granted (cluster_state::vote): local
/// (vote_release_atom, node_id) from the node's driver, then remote (vote_release_atom,
/// node_id) to every member whose answer granted it.
using vote_release_atom = caf::atom_constant<caf::atom("vrelease")>;
/// Failback (docs/replication.md): local (failback_atom, caf::actor driver) registers the
/// node's replication driver; local (failback_atom, cluster address, node_id) -> bool asks
/// that member to give way; remote (failback_atom, node_id) -> bool is that request arriving.
using failback_atom = caf::atom_constant<caf::atom("failback")>;

/// Registers every type the cluster sends between nodes and its error category; call on the
/// config before the actor_system exists (with the middleman loaded).
void add_message_types(caf::actor_system_config& cfg);

/// What `start` did.
struct start_result {
    /// The local handle for the node: (caf::update_atom, member_info) and (caf::get_atom).
    /// Invalid when `error` is set. Stop it (`stop`, or an exit) before the actor system goes,
    /// or ~actor_system waits for the published cluster actor forever. The handle terminates
    /// only after the cluster actor, so once a monitor on it fires, on_change is never called
    /// again.
    caf::actor handle;
    /// The bound cluster port.
    uint16_t port = 0;
    /// Why the cluster could not start; "" on success.
    std::string error;
};

/// Spawns the cluster actor and publishes it on cfg.host:cfg.port (0 = the OS picks; the bound
/// port is returned). Blocking; call it from the node's main thread, never from an actor.
/// `self` is this node's initial info; an empty cluster_address becomes cfg.host:bound-port.
/// The actor then joins every entry of cfg.members (its own address skipped) and calls
/// `on_change` with the new topology after every change: a member joined, changed or left, or
/// a local update. Messages the returned handle understands:
///   (caf::update_atom, member_info) -> this node's new info, pushed to every joined member;
///   (caf::get_atom)                 -> replies with the current topology.
start_result start(caf::actor_system& sys,
                   const config::cluster_config& cfg,
                   member_info self,
                   std::function<void(const topology&)> on_change,
                   std::shared_ptr<spdlog::logger> log);

/// Stops the cluster (`handle` from `start`) and returns once it is gone, so that nothing
/// `on_change` uses is touched afterwards; waits at most 5 s. Blocking; call it from the
/// node's main thread, never from an actor. An invalid handle is ignored.
void stop(caf::actor_system& sys, const caf::actor& handle);

/// Compares two secrets in time that depends only on their lengths, not on where they differ.
bool same_secret(std::string_view a, std::string_view b);

} // namespace actormq::cluster

CAF_ERROR_CODE_ENUM(actormq::cluster::cluster_errc, "cluster")
