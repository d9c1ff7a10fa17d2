// SPDX-License-Identifier: Apache-2.0
#pragma once

// The management protocol (docs/shell.md): how actormq-shell reaches a node through CAF's
// middleman. Only atoms and strings travel, so the shell needs no ActorMQ types.
//
//   1. remote_actor(HOST, CLUSTER_PORT)            -> the node's published cluster actor
//   2. request(cluster, manage_atom, user, password) -> caf::actor: the node's status actor
//      (an error "bad_credentials" when cluster-user / cluster-password do not match)
//   3. request(status, caf::get_atom)              -> std::string: the /api/status JSON
//      request(status, events_atom, uint64_t since) -> std::string: the /api/events JSON

#include <caf/atom.hpp>

namespace actormq::cluster {

using manage_atom = caf::atom_constant<caf::atom("manage")>;
using events_atom = caf::atom_constant<caf::atom("events")>;

} // namespace actormq::cluster
