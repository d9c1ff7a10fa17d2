// SPDX-License-Identifier: Apache-2.0
#pragma once

// For process tests of nodes in a cluster (replication, colocation, partitions): the config
// pieces and the serving check their test files each wrote for themselves.

#include "support/process_fixture.hpp"

#include <chrono>
#include <string>

namespace actormq::test {

/// The cluster address of `node` as an item of a TOML array.
inline std::string cluster_item(const node_process& node) {
    return "\"127.0.0.1:" + std::to_string(node.port("cluster")) + "\"";
}

/// A node in a cluster (OS-chosen port, quick reconnects) that joins `members` (TOML array
/// items), with `policy` as its [ha-policy...] table, small journal files (so that a sync
/// spans several segments and the live reclaims some while it runs) and `tables` after its
/// [cluster] table.
inline std::string cluster_node(const std::string& members,
                                const std::string& policy,
                                const std::string& tables = "") {
    return node_config("",
                       policy + "\n[cluster]\nport = 0\nmembers = [" + members
                           + "]\nreconnect-interval-ms = 50\nheartbeat-interval-ms = 200\n"
                             "connection-timeout-ms = 1000\n"
                           + tables,
                       "cluster-user = \"actormq-cluster\"\ncluster-password = \"secret\"\n"
                       "persistence-enabled = true\njournal-file-size = 131072\n");
}

/// [ha-policy.replication.ROLE] with short waits, so that tests see retries quickly.
inline std::string replication(const std::string& role, const std::string& options = "") {
    return "[ha-policy.replication." + role
           + "]\nvote-retry-wait = 200\nretry-replication-wait = 200\nquorum-vote-wait = 1\n"
           + options;
}

/// One STOMP login within `wait`; true if `port` serves.
inline bool stomp_serves(uint16_t port,
                         std::chrono::milliseconds wait = std::chrono::milliseconds(2000)) {
    stomp_client c;
    return c.connect_tcp(port)
           && c.connect_stomp("guest", "guest", "1.2", "0,0", in(wait)).cmd
                  == stomp::command::connected;
}

} // namespace actormq::test
