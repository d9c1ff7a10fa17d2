// SPDX-License-Identifier: Apache-2.0
#pragma once

// Colocated backups between nodes (docs/ha.md, "Colocated backups"): what a live asks another
// live node for, what that node answers, and what the remote spawn carries.
//
//   1. requesting node -> its cluster facade: (backup_request_atom, host cluster address)
//        -> (backup_grant, caf::node_id of the host)
//      The cluster actor passes the request on to the member at that address, which checks
//      that it comes from a joined member (who proved the cluster credentials) and hands it to
//      its node's colocation endpoint: a grant (slot N, one-time ticket), an instance of the
//      asker's node id it runs already (backup_grant::existing: step 2 is skipped), or an
//      error (not_hosting, backups_full).
//   2. requesting node -> its middleman: (spawn_atom, host node, "colocated_backup",
//      make_message(colocated_spec), {}) -> the backup instance's handle on the host. The host
//      spawns only for the cluster credentials and a ticket it granted.

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace actormq::cluster {

/// (backup_request_atom, ...): see the header comment; locally (backup_request_atom,
/// caf::actor endpoint) registers the node's colocation endpoint with its cluster actor.
using backup_request_atom = caf::atom_constant<caf::atom("bkrequest")>;

/// Sent by a requester to the backup it spawned (the actor the spawn returned): end that
/// backup instance and free its slot. A stand-in (a colocated backup that took over) sends it
/// when the primary of its node id comes back, so that the primary can pair and fail back and
/// the extra backup never outlives the server it backed up (docs/ha.md, "Colocated backups").
using release_atom = caf::atom_constant<caf::atom("bkrelease")>;

/// The name under which a node registers the backup instance's actor type (add_actor_type).
constexpr const char* colocated_actor_type = "colocated_backup";

/// A host's yes to a backup request: the backup will be colocated_backup_N, and the spawn must
/// present `ticket`. Or, when the host already runs an instance of the asker's node id that
/// pairs with nobody (its requester lost it to a dropped link, or it is a stand-in that gave
/// way and lost its pairing), that instance: `existing` is its actor (the handle a spawn would
/// have returned), N its slot, and there is no ticket and nothing to spawn (docs/ha.md, "An
/// unpaired colocated backup gives way").
struct backup_grant {
    /// The host node's name (for logs).
    std::string host;
    /// N of colocated_backup_N (1, 2, ...).
    uint32_t slot = 0;
    uint64_t ticket = 0;
    caf::actor existing{};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, backup_grant& x) {
    return f(caf::meta::type_name("actormq::cluster::backup_grant"), x.host, x.slot, x.ticket,
             x.existing);
}

/// The remote spawn's argument: who asks, with which credentials and ticket, and the live's
/// configuration (its TOML text and --set overrides, and the ports it bound).
struct colocated_spec {
    std::string user;
    std::string password;
    uint64_t ticket = 0;
    uint32_t slot = 0;
    /// The live's name, node id and cluster address.
    std::string live_name;
    std::string live_node_id;
    std::string live_cluster_address;
    /// The live's config file text and overrides, parsed again by the host.
    std::string config_text;
    std::vector<std::string> config_overrides;
    /// The live's acceptors (by name) and the ports they bound.
    std::vector<std::string> acceptor_names;
    std::vector<uint16_t> acceptor_ports;
    /// The cluster address of the node whose node id this is (its own primary): the live's
    /// own address when a node asks, the original node's when a stand-in (a colocated backup
    /// that took over) asks. The backup joins it too, and hands it on if it takes over.
    std::string primary_cluster_address;
    /// Shared store only (reference text "Configuring Directories": the requesting server
    /// names the directories): the live's journal and paging directories, absolute, on the
    /// file system both nodes share. Empty with replication (the host names its own).
    std::string journal_directory;
    std::string paging_directory;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, colocated_spec& x) {
    return f(caf::meta::type_name("actormq::cluster::colocated_spec"), x.user, x.password, x.ticket,
             x.slot, x.live_name, x.live_node_id, x.live_cluster_address, x.config_text,
             x.config_overrides, x.acceptor_names, x.acceptor_ports, x.primary_cluster_address,
             x.journal_directory, x.paging_directory);
}

} // namespace actormq::cluster
