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
};

/// CAF 0.17 serialisation of `member_info`.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_info& x) {
    return f(caf::meta::type_name("actormq::cluster::member_info"), x.name, x.node_id, x.role,
             x.connector, x.cluster_address, x.version, x.native_connectors);
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

/// Why a member refused a join; travels back to the joiner (category "cluster").
enum class cluster_errc : uint8_t {
    none = 0,
    bad_credentials,    ///< cluster-user or cluster-password did not match
    not_a_remote_join,  ///< a join that did not come from another node's cluster actor
    not_local,          ///< a request only the node itself may make came from another node
    management_offline, ///< the node's status actor is not (yet) there to be managed
};

/// A stable lower-case name for the error ("bad_credentials").
std::string to_string(cluster_errc e);

/// The announcement of a member's new info to the others: (announce_atom, member_info).
using announce_atom = caf::atom_constant<caf::atom("announce")>;

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
