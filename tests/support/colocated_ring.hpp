// SPDX-License-Identifier: Apache-2.0
#pragma once

// For the process tests of colocated backups (tests/process/ha_colocated_test.cpp,
// ha_colocated_ring_test.cpp): node configs, /api/status lookups, the ring of three nodes a, b
// and c on fixed ports, and draining a queue to count what came back.

#include "support/cluster_nodes.hpp"
#include "support/failover_producer.hpp"
#include "support/process_fixture.hpp"
#include "support/socket.hpp"
#include "support/web_client.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace actormq::test {

using json = nlohmann::json;

/// A port P below the OS's ephemeral range (32768 and up) with P and P + offset free. A live on
/// an OS-chosen port would put its backup's offset port among the ephemeral ports, where any
/// connection on this busy machine may hold it (seen: EADDRINUSE in about 1 run of 20).
inline uint16_t port_pair(uint16_t offset) {
    static std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<int> pick(20000, 32000 - offset);
    for (int tries = 0; tries < 1000; ++tries) {
        auto p = static_cast<uint16_t>(pick(rng));
        if (port_free(p) && port_free(static_cast<uint16_t>(p + offset))) {
            return p;
        }
    }
    FAIL("no free port pair");
    return 0;
}

/// A node of a colocated cluster joining `members`, with `options` in [ha-policy.colocated]
/// and short replication waits in its backup table. `password` is the cluster password.
inline std::string colocated_node(const std::string& members,
                                  const std::string& options,
                                  const std::string& acceptor = "",
                                  const std::string& password = "secret") {
    return node_config(acceptor,
                       "[ha-policy.colocated]\nbackup-request-retry-interval = 200\n" + options
                           + "\n[ha-policy.colocated.backup]\nvote-retry-wait = 200\n"
                             "retry-replication-wait = 200\nquorum-vote-wait = 1\n"
                             "[cluster]\nport = 0\nmembers = ["
                           + members
                           + "]\nreconnect-interval-ms = 50\nheartbeat-interval-ms = 200\n"
                             "connection-timeout-ms = 1000\n",
                       "cluster-user = \"actormq-cluster\"\ncluster-password = \"" + password
                           + "\"\npersistence-enabled = true\n");
}

inline json get_json(const node_process& node, const std::string& target) {
    auto c = http_exchange(node.port("web"), http_request(target), soon());
    if (c.status() != 200) {
        return json{};
    }
    return json::parse(c.body(), nullptr, false);
}

/// The role of instance `name` in the node's /api/status ("" when it has none of that name).
inline std::string instance_role(const node_process& node, const std::string& name) {
    auto s = get_json(node, "/api/status");
    if (!s.is_object() || !s.contains("instances")) {
        return {};
    }
    for (const auto& i : s["instances"]) {
        if (i.value("name", "") == name) {
            return i.value("role", "");
        }
    }
    return {};
}

inline std::vector<std::string> named(const std::string& name) {
    return {"name=\"" + name + "\""};
}

/// `sets` with the stomp acceptor on `port`.
inline std::vector<std::string> with_port(std::vector<std::string> sets, uint16_t port) {
    sets.push_back("acceptors.stomp.port=" + std::to_string(port));
    return sets;
}

/// The node id instance `name` of `node` serves or backs up ("" when not shown).
inline std::string instance_node_id(const node_process& node, const std::string& name) {
    auto s = get_json(node, "/api/status");
    for (const auto& i : s.value("instances", json::array())) {
        if (i.value("name", "") == name) {
            return i.value("node_id", "");
        }
    }
    return {};
}

/// A free port of 20000-32000 not in `taken` (added to it).
inline uint16_t free_port(std::set<uint16_t>& taken) {
    static std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<int> pick(20000, 32000);
    for (int tries = 0; tries < 1000; ++tries) {
        auto p = static_cast<uint16_t>(pick(rng));
        if (taken.count(p) == 0 && port_free(p)) {
            taken.insert(p);
            return p;
        }
    }
    FAIL("no free port");
    return 0;
}

/// Three colocated nodes a, b and c on fixed ports (so that a restarted node comes back where
/// it was), each live with request-backup and max-backups 1, each listing the other two as
/// static members, each journal in a directory that outlives a restart.
struct ring {
    static constexpr uint16_t offset = 113;
    const std::vector<std::string> names{"a", "b", "c"};
    /// max-backups of every node.
    uint32_t max_backups = 1;
    std::map<std::string, uint16_t> stomp;
    std::map<std::string, uint16_t> cluster;
    std::map<std::string, std::unique_ptr<temp_dir>> dirs;
    std::map<std::string, std::unique_ptr<node_process>> nodes;
    std::map<std::string, int> starts;

    /// `store` of [ha-policy.colocated]: "replication" or "shared-store" (each colocated
    /// backup then opens its live's own journal directory).
    std::string store = "replication";
    /// Nodes that ask for no backup of their own (request-backup = false): they only host.
    std::set<std::string> hosts_only;

    /// With max-backups 2 a stand-in's backup listens on P + 3 x offset (its live's P + offset,
    /// shifted again as the host's colocated_backup_2): P to P + 3 x offset are kept free.
    explicit ring(uint32_t max = 1, std::string store_kind = "replication")
        : max_backups(max),
          store(std::move(store_kind)) {
        std::set<uint16_t> taken;
        for (const auto& n : names) {
            uint16_t p = 0;
            for (int tries = 0; tries < 1000 && p == 0; ++tries) {
                auto candidate = port_pair(3 * offset);
                bool ok = true;
                for (int k = 0; k <= 3; ++k) {
                    auto q = static_cast<uint16_t>(candidate + k * offset);
                    ok = ok && taken.count(q) == 0 && port_free(q);
                }
                p = ok ? candidate : 0;
            }
            REQUIRE(p != 0);
            stomp[n] = p;
            for (int k = 0; k <= 3; ++k) {
                taken.insert(static_cast<uint16_t>(p + k * offset));
            }
        }
        for (const auto& n : names) {
            cluster[n] = free_port(taken);
            dirs[n] = std::make_unique<temp_dir>();
        }
    }

    std::string config(const std::string& name) const {
        std::string members;
        for (const auto& n : names) {
            if (n != name) {
                members += (members.empty() ? "\"" : ",\"") + std::string{"127.0.0.1:"}
                           + std::to_string(cluster.at(n)) + "\"";
            }
        }
        if (store == "shared-store") {
            return node_config("",
                               "[ha-policy.colocated]\nstore = \"shared-store\"\n"
                               "request-backup = true\nmax-backups = "
                                   + std::to_string(max_backups)
                                   + "\nbackup-port-offset = " + std::to_string(offset)
                                   + "\nbackup-request-retry-interval = 200\n"
                                     "backup-request-settle-ms = 3000\n"
                                     "[ha-policy.colocated.backup]\nallow-failback = true\n"
                                     "restart-backup = true\nlock-poll-interval-ms = 10\n"
                                     "[cluster]\nport = 0\nmembers = ["
                                   + members
                                   + "]\nreconnect-interval-ms = 50\nheartbeat-interval-ms = "
                                     "200\nconnection-timeout-ms = 1000\n",
                               "cluster-user = \"actormq-cluster\"\ncluster-password = "
                               "\"secret\"\npersistence-enabled = true\n");
        }
        std::string request = hosts_only.count(name) > 0 ? "false" : "true";
        return colocated_node(members,
                              "request-backup = " + request
                                  + "\nmax-backups = " + std::to_string(max_backups)
                                  + "\nbackup-port-offset = " + std::to_string(offset)
                                  + "\nbackup-request-settle-ms = 3000\n"
                                    "[ha-policy.colocated.primary]\ncheck-for-live-server = true\n"
                                    "vote-retry-wait = 200\nretry-replication-wait = 200\n"
                                    "quorum-vote-wait = 1\n");
    }

    void start(const std::string& name) {
        nodes[name].reset();
        nodes[name] = std::make_unique<node_process>(
            config(name),
            std::vector<std::string>{"name=\"" + name + "\"",
                                     "acceptors.stomp.port=" + std::to_string(stomp[name]),
                                     "cluster.port=" + std::to_string(cluster[name]),
                                     "journal-directory=" + dirs[name]->path + "/journal"});
        ++starts[name];
        REQUIRE(nodes[name]->wait_ready(soon()));
    }

    node_process& operator[](const std::string& name) { return *nodes.at(name); }

    /// Starts a, b and c one after another and waits until the ring is whole.
    void start_whole() {
        for (const auto& n : names) {
            start(n);
        }
        REQUIRE(wait_until(in(std::chrono::seconds(30)), [&] { return whole(); }));
    }

    /// The node after `name` in the ring: the one that runs its backup.
    std::string next(const std::string& name) const {
        auto it = std::find(names.begin(), names.end(), name);
        return ++it == names.end() ? names.front() : *it;
    }

    /// The ring is whole: every node serves as live and runs one colocated backup, in sync.
    bool whole() {
        for (const auto& n : names) {
            if (!nodes[n] || instance_role(*nodes[n], n) != "live"
                || instance_role(*nodes[n], "colocated_backup_1") != "backup") {
                return false;
            }
        }
        return true;
    }

    /// Each of the three lives has exactly one colocated backup (role backup, its node id), on
    /// a node other than itself, and each node runs exactly one (docs/ha.md, "Rebalancing").
    bool balanced() {
        std::map<std::string, std::string> id_of;                   // node -> its node id
        std::map<std::string, std::vector<std::string>> backups_of; // node id -> hosts
        std::map<std::string, int> runs;                            // node -> backups it runs
        for (const auto& n : names) {
            if (!nodes[n]) {
                return false;
            }
            auto s = get_json(*nodes[n], "/api/status");
            if (!s.is_object() || !s.contains("instances")) {
                return false;
            }
            for (const auto& i : s["instances"]) {
                auto role = i.value("role", "");
                if (i.value("name", "") == n && role == "live") {
                    id_of[n] = i.value("node_id", "");
                } else if (i.value("colocated", false) && role == "backup") {
                    backups_of[i.value("node_id", "")].push_back(n);
                    ++runs[n];
                }
            }
        }
        for (const auto& n : names) {
            auto id = id_of.find(n);
            if (id == id_of.end() || id->second.empty() || backups_of[id->second].size() != 1
                || backups_of[id->second].front() == n || runs[n] != 1) {
                return false;
            }
        }
        return true;
    }

    std::string tails() {
        std::string out;
        for (const auto& n : names) {
            if (nodes[n]) {
                out += "\n--- " + n + " ---\n" + nodes[n]->log_tail(30);
            }
        }
        return out;
    }
};

/// Drains `queue` from `port`: how often each body arrived.
inline std::map<std::string, int> drain(uint16_t port, const std::string& queue) {
    stomp_client c;
    REQUIRE(c.connect_tcp(port));
    REQUIRE(c.connect_stomp("guest", "guest").cmd == command::connected);
    REQUIRE(send_durable(c, queue, "end"));
    subscribe(c, queue, "d");
    std::map<std::string, int> seen;
    while (seen.count("end") == 0) {
        ++seen[expect_message(c, in(std::chrono::seconds(30))).body];
    }
    seen.erase("end");
    return seen;
}

/// Lost, duplicated and unexpected messages of `want` (the confirmed sends) in `seen`.
struct tally {
    size_t lost = 0;
    size_t duplicated = 0;
    size_t unexpected = 0;
};

inline tally count(const std::set<std::string>& want, const std::map<std::string, int>& seen) {
    tally t;
    for (const auto& body : want) {
        auto it = seen.find(body);
        t.lost += it == seen.end() ? 1 : 0;
        t.duplicated += it != seen.end() && it->second > 1 ? 1 : 0;
    }
    for (const auto& [body, times] : seen) {
        t.unexpected += want.count(body) == 0 && times > 0 ? 1 : 0;
    }
    return t;
}

} // namespace actormq::test
