// SPDX-License-Identifier: Apache-2.0
// Colocated backups with real nodes (docs/ha.md, "Colocated backups"): a live with
// request-backup asks another live node, which runs its backup as colocated_backup_N with
// ports shifted by backup-port-offset (excludes keep theirs) and a journal directory of its
// own; max-backups refuses more; a node with the wrong cluster credentials gets nothing; after
// a SIGKILL of the live its colocated backup serves the live's clients on the offset port; and
// three nodes form a ring that survives a SIGKILL of each in turn, failback included.
#include "support/cluster_nodes.hpp"
#include "support/failover_producer.hpp"
#include "support/process_fixture.hpp"
#include "support/socket.hpp"
#include "support/web_client.hpp"

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

namespace actormq::test {

namespace {

using json = nlohmann::json;

/// A port P below the OS's ephemeral range (32768 and up) with P and P + offset free. A live on
/// an OS-chosen port would put its backup's offset port among the ephemeral ports, where any
/// connection on this busy machine may hold it (seen: EADDRINUSE in about 1 run of 20).
uint16_t port_pair(uint16_t offset) {
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
std::string colocated_node(const std::string& members,
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

json get_json(const node_process& node, const std::string& target) {
    auto c = http_exchange(node.port("web"), http_request(target), soon());
    if (c.status() != 200) {
        return json{};
    }
    return json::parse(c.body(), nullptr, false);
}

/// The role of instance `name` in the node's /api/status ("" when it has none of that name).
std::string instance_role(const node_process& node, const std::string& name) {
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

std::vector<std::string> named(const std::string& name) {
    return {"name=\"" + name + "\""};
}

/// `sets` with the stomp acceptor on `port`.
std::vector<std::string> with_port(std::vector<std::string> sets, uint16_t port) {
    sets.push_back("acceptors.stomp.port=" + std::to_string(port));
    return sets;
}

} // namespace

TEST_CASE("colocated: a live with request-backup gets colocated_backup_1 on another live node, "
          "with ports shifted by backup-port-offset and its own journal directory") {
    ACTORMQ_START_NODE(host, colocated_node("", "max-backups = 1\n"), named("host"));
    ACTORMQ_START_NODE(
        live,
        colocated_node(cluster_item(host), "request-backup = true\nbackup-port-offset = 101\n"),
        with_port(named("live"), port_pair(101)));
    REQUIRE(log_shows(host, "colocation_request_granted live=live"));
    REQUIRE(log_shows(live, "colocated_backup_started"));
    REQUIRE(log_shows(host, "colocated_instance_started instance=colocated_backup_1 live=live"));
    auto shifted = std::to_string(live.port() + 101);
    CHECK(host.log_text().find("stomp=127.0.0.1:" + shifted) != std::string::npos);
    REQUIRE(log_shows(live, "replication_in_sync"));
    REQUIRE(
        wait_until(soon(), [&] { return instance_role(host, "colocated_backup_1") == "backup"; }));
    CHECK(instance_role(host, "host") == "live");
    CHECK(std::filesystem::is_directory(host.dir() + "/journal/colocated_backup_1"));
    // The passive backup's entry names its journal and has no queues: it serves none yet.
    json backup;
    auto status = get_json(host, "/api/status");
    for (const auto& i : status["instances"]) {
        if (i.value("name", "") == "colocated_backup_1") {
            backup = i;
        }
    }
    INFO("colocated instance entry: ", backup.dump());
    CHECK(backup["journal"]["enabled"] == true);
    CHECK(backup["journal"]["directory"] == host.dir() + "/journal/colocated_backup_1");
    CHECK(backup["queues"] == json::array());
    auto metrics = http_exchange(host.port("web"), http_request("/metrics"), soon()).body();
    CHECK(metrics.find("actormq_instance_live{instance=\"colocated_backup_1\",role=\"backup\","
                       "colocated=\"true\"} 0")
          != std::string::npos);
    // A backup does not serve until it takes over.
    CHECK(!stomp_serves(live.port() + 101));
}

TEST_CASE("colocated: a host refuses a request past max-backups, and the refused live asks the "
          "next live node") {
    ACTORMQ_START_NODE(host, colocated_node("", "max-backups = 1\n"), named("host"));
    ACTORMQ_START_NODE(first, colocated_node(cluster_item(host), "request-backup = true\n"),
                       named("live1"));
    REQUIRE(log_shows(host, "colocation_request_granted live=live1"));
    ACTORMQ_START_NODE(
        second,
        colocated_node(cluster_item(host) + "," + cluster_item(first), "request-backup = true\n"),
        named("live2"));
    REQUIRE(log_shows(host, "colocation_request_refused live=live2"));
    CHECK(log_shows(second, "reason=\"cluster: backups_full"));
    // The second asks the next live node in topology order (by name: host, then live1) and
    // gets its backup there.
    REQUIRE(log_shows(first, "colocated_instance_started instance=colocated_backup_1 live=live2"));
    CHECK(instance_role(host, "colocated_backup_2").empty());
}

TEST_CASE("colocated: excludes keep an acceptor's port, the others are shifted") {
    // The host listens on 127.0.0.2, so the backup may keep the live's port for stomp.
    ACTORMQ_START_NODE(host, colocated_node("", "max-backups = 1\n", "host = \"127.0.0.2\"\n"),
                       named("host"));
    ACTORMQ_START_NODE(
        live,
        colocated_node(cluster_item(host),
                       "request-backup = true\nbackup-port-offset = 105\nexcludes = [\"stomp\"]\n",
                       "\n[acceptors.other]\nport = " + std::to_string(port_pair(105)) + "\n"),
        named("live"));
    REQUIRE(log_shows(host, "colocated_instance_started instance=colocated_backup_1"));
    auto log = host.log_text();
    CHECK(log.find("stomp=127.0.0.2:" + std::to_string(live.port())) != std::string::npos);
    CHECK(log.find("other=127.0.0.2:" + std::to_string(live.port("other") + 105))
          != std::string::npos);
}

TEST_CASE("colocated: a node with the wrong cluster credentials gets no backup") {
    ACTORMQ_START_NODE(host, colocated_node("", "max-backups = 1\n"), named("host"));
    ACTORMQ_START_NODE(stranger,
                       colocated_node(cluster_item(host), "request-backup = true\n", "", "wrong"),
                       named("stranger"));
    REQUIRE(log_shows(host, "cluster_join_refused"));
    CHECK(log_shows(stranger, "cluster_join_refused"));
    CHECK(host.log_text().find("colocation_request_granted") == std::string::npos);
    CHECK(host.log_text().find("colocated_instance_started") == std::string::npos);
}

TEST_CASE("colocated: after SIGKILL of the live its colocated backup takes over and serves the "
          "live's messages on the offset port") {
    ACTORMQ_START_NODE(host, colocated_node("", "max-backups = 1\n"), named("host"));
    ACTORMQ_START_NODE(
        live,
        colocated_node(cluster_item(host), "request-backup = true\nbackup-port-offset = 109\n"),
        with_port(named("live"), port_pair(109)));
    REQUIRE(log_shows(live, "replication_in_sync"));
    uint16_t offset_port = static_cast<uint16_t>(live.port() + 109);
    std::set<std::string> sent;
    {
        stomp_client c;
        login(c, live);
        for (int i = 0; i < 50; ++i) {
            auto body = "m" + std::to_string(i);
            REQUIRE(send_durable(c, "/queue/colo", body));
            sent.insert(body);
        }
    }
    live.kill(SIGKILL);
    REQUIRE(log_shows(host, "failover_ms="));
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(offset_port); }));
    REQUIRE(wait_until(
        soon(), [&] { return instance_role(host, "colocated_backup_1") == "backup-active"; }));
    stomp_client c;
    REQUIRE(c.connect_tcp(offset_port));
    REQUIRE(c.connect_stomp("guest", "guest").cmd == command::connected);
    // The host's /api/status and /metrics show the queue the colocated instance serves, with
    // its 50 messages, under that instance (docs/web.md), and its client connection.
    json entry;
    bool shown = wait_until(soon(), [&] {
        entry = json{};
        auto s = get_json(host, "/api/status");
        if (!s.is_object()) {
            return false;
        }
        for (const auto& i : s["instances"]) {
            if (i.value("name", "") == "colocated_backup_1") {
                entry = i;
            }
        }
        if (!entry.is_object() || entry.value("connections", 0) < 1) {
            return false;
        }
        for (const auto& q : entry["queues"]) {
            if (q.value("name", "") == "colo" && q.value("depth", 0) == 50) {
                return true;
            }
        }
        return false;
    });
    INFO("colocated instance entry: ", entry.dump());
    CHECK(shown);
    CHECK(entry["journal"]["directory"].get<std::string>().find("colocated_backup_1")
          != std::string::npos);
    CHECK(entry["journal"]["enabled"] == true);
    CHECK(entry["journal"]["files"].get<uint64_t>() >= 1);
    auto own = get_json(host, "/api/status");
    for (const auto& q : own["queues"]) {
        CHECK(q.value("name", "") != "colo"); // the top-level queues are the host's own
    }
    std::string metrics;
    CHECK(wait_until(soon(), [&] {
        metrics = http_exchange(host.port("web"), http_request("/metrics"), soon()).body();
        return metrics.find("actormq_queue_depth_messages{instance=\"colocated_backup_1\","
                            "address=\"colo\",queue=\"colo\"} 50\n")
               != std::string::npos;
    }));
    CHECK(metrics.find("actormq_queue_messages_enqueued_total{instance=\"colocated_backup_1\","
                       "address=\"colo\",queue=\"colo\"} 50\n")
          != std::string::npos);
    CHECK(metrics.find("actormq_journal_files{instance=\"colocated_backup_1\"} ")
          != std::string::npos);
    CHECK(metrics.find("actormq_journal_files{instance=\"host\"} ") != std::string::npos);
    CHECK(metrics.find("actormq_instance_connections{instance=\"colocated_backup_1\"} 1\n")
          != std::string::npos);
    subscribe(c, "/queue/colo", "s");
    std::set<std::string> got;
    while (got.size() < sent.size()) {
        got.insert(expect_message(c).body);
    }
    CHECK(got == sent);
}

} // namespace actormq::test

// -- the ring (examples/colocated/, docs/ha.md "Walk-through: a ring of three") -------------------

namespace actormq::test {

namespace {

/// A free port of 20000-32000 not in `taken` (added to it).
uint16_t free_port(std::set<uint16_t>& taken) {
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
        return colocated_node(members,
                              "request-backup = true\nmax-backups = " + std::to_string(max_backups)
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
std::map<std::string, int> drain(uint16_t port, const std::string& queue) {
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

} // namespace

TEST_CASE("colocated: ring: three nodes started one after another form the ring a->b->c->a "
          "(each waits for the cluster to settle before it asks)") {
    ring r;
    for (const auto& n : r.names) {
        r.start(n);
    }
    INFO(r.tails());
    for (const auto& n : r.names) {
        REQUIRE(log_shows(r[r.next(n)],
                          "colocated_instance_started instance=colocated_backup_1 live=" + n));
    }
    REQUIRE(wait_until(in(std::chrono::seconds(30)), [&] { return r.whole(); }));
}

TEST_CASE("colocated: ring: a node that starts after the other two backed each other up gets a "
          "backup (max-backups 1): its ring predecessor moves its backup to it, which frees a "
          "slot on the first") {
    ring r;
    r.start("a");
    r.start("b");
    INFO(r.tails());
    // Without c the settle wait ends on its quiet time and a and b back each other up.
    REQUIRE(wait_until(in(std::chrono::seconds(30)), [&] {
        return r["a"].log_text().find("colocated_instance_started instance=colocated_backup_1 "
                                      "live=b")
                   != std::string::npos
               && r["b"].log_text().find("colocated_instance_started instance=colocated_backup_1 "
                                         "live=a")
                      != std::string::npos;
    }));
    r.start("c");
    INFO(r.tails());
    // c is refused by both (max-backups 1); b, whose ring neighbour c now is, moves its backup
    // there; a's slot is free and c's next request gets it.
    REQUIRE(log_shows(r["b"], "colocated_backup_moved"));
    REQUIRE(wait_until(in(std::chrono::seconds(30)), [&] { return r.balanced(); }));
    for (const auto& n : r.names) {
        CHECK(r[r.next(n)].log_text().find(
                  "colocated_instance_started instance=colocated_backup_1 live=" + n)
              != std::string::npos);
    }
}

TEST_CASE("colocated: ring: SIGKILL of each node in turn: its neighbour's colocated backup takes "
          "over, the node fails back when it returns, and the ring is whole again; every "
          "confirmed message exactly once") {
    ring r;
    INFO(r.tails());
    r.start_whole();
    // One producer per node, with the node's port and its backup's (offset) port as host list;
    // duplicate ids make every resend after a failover safe.
    std::map<std::string, std::unique_ptr<producer>> producers;
    for (const auto& n : r.names) {
        producers[n] = std::make_unique<producer>(
            "/queue/ring-" + n,
            std::vector<uint16_t>{r.stomp[n], static_cast<uint16_t>(r.stomp[n] + ring::offset)},
            n + "-");
        REQUIRE(producers[n]->wait_more(50));
    }
    for (const auto& victim : r.names) {
        CAPTURE(victim);
        auto host = r.next(victim);
        r[victim].kill(SIGKILL);
        REQUIRE(r[victim].wait_exit(soon()).has_value());
        // The neighbour's colocated backup takes over and the victim's producer carries on
        // there; the other producers do not stop.
        REQUIRE(wait_until(in(std::chrono::seconds(20)), [&] {
            return instance_role(r[host], "colocated_backup_1") == "backup-active";
        }));
        for (const auto& n : r.names) {
            REQUIRE(producers[n]->wait_more(20, in(std::chrono::seconds(20))));
        }
        // Back on its journal and ports: it syncs from the colocated backup that serves its
        // node id, takes it back, and that backup waits as its backup again.
        r.start(victim);
        REQUIRE(log_shows(r[victim], "replication_found_served"));
        REQUIRE(wait_until(in(std::chrono::seconds(30)), [&] { return r.whole(); }));
        CHECK(r[victim].log_text().find("detail=\"failback\"") != std::string::npos);
        for (const auto& n : r.names) {
            REQUIRE(producers[n]->wait_more(20, in(std::chrono::seconds(20))));
        }
    }
    for (const auto& n : r.names) {
        producers[n]->stop();
    }
    size_t confirmed = 0;
    for (const auto& n : r.names) {
        auto want = producers[n]->confirmed();
        auto seen = drain(r.stomp[n], "/queue/ring-" + n);
        confirmed += want.size();
        size_t lost = 0;
        size_t duplicated = 0;
        size_t unexpected = 0;
        for (const auto& body : want) {
            auto it = seen.find(body);
            lost += it == seen.end() ? 1 : 0;
            duplicated += it != seen.end() && it->second > 1 ? 1 : 0;
        }
        for (const auto& [body, times] : seen) {
            unexpected += want.count(body) == 0 && times > 0 ? 1 : 0;
        }
        CAPTURE(n);
        CHECK(lost == 0);
        CHECK(duplicated == 0);
        CHECK(unexpected == 0);
    }
    MESSAGE("ring: ", confirmed, " confirmed messages over three kills");
}

/// The node id instance `name` of `node` serves or backs up ("" when not shown).
std::string instance_node_id(const node_process& node, const std::string& name) {
    auto s = get_json(node, "/api/status");
    for (const auto& i : s.value("instances", json::array())) {
        if (i.value("name", "") == name) {
            return i.value("node_id", "");
        }
    }
    return {};
}

TEST_CASE("colocated: ring: a node frozen past connection-timeout-ms loses its links to both "
          "others at once; when it thaws, the backup it runs for a live neighbour does not take "
          "that neighbour's node id on its host's vote alone") {
    ring r;
    INFO(r.tails());
    r.start_whole();
    // a runs c's backup (a -> b -> c -> a: each node's backup on the next).
    auto c_id = instance_node_id(r["c"], "c");
    REQUIRE(!c_id.empty());
    REQUIRE(instance_node_id(r["a"], "colocated_backup_1") == c_id);
    auto b_left = [&] {
        return r["b"].log_text().find("cluster_member_left name=a ");
    };
    auto c_left = [&] {
        return r["c"].log_text().find("cluster_member_left name=a ");
    };
    r["a"].kill(SIGSTOP);
    // b and c drop a after connection-timeout-ms without a heart-beat, and b's backup for a
    // takes a's node id over, by b's and c's votes.
    bool dropped = wait_until(in(std::chrono::seconds(20)), [&] {
        return b_left() != std::string::npos && c_left() != std::string::npos
               && instance_role(r["b"], "colocated_backup_1") == "backup-active";
    });
    r["a"].kill(SIGCONT);
    REQUIRE(dropped);
    // Thawed, a finds its links to b and c closed; its backup for c loses its live and votes.
    // Its host a agrees c is gone (it lost c too), but b's process, lost at the same moment
    // and serving another node id, could still answer: the vote is lost, never won (its
    // counts show lives_in_process=1, unless a's own live learned first that b took its node
    // id over and answered as a live no more).
    auto marker = "node_id=" + c_id + " detail=";
    REQUIRE(wait_until(in(std::chrono::seconds(20)), [&] {
        auto text = r["a"].log_text();
        return text.find("replication_vote_lost " + marker) != std::string::npos
               || text.find("replication_activating " + marker) != std::string::npos;
    }));
    CHECK(r["a"].log_text().find("replication_activating " + marker) == std::string::npos);
    // a's own live finds b's backup serving its node id with a newer activation sequence and
    // stops (docs/replication.md); restarted, a fails back and the ring is whole again. c
    // served throughout and never had to step down.
    REQUIRE(r["a"].wait_exit(in(std::chrono::seconds(20))).has_value());
    auto first_life = r["a"].log_text();
    CHECK(first_life.find("replication_stepping_down") != std::string::npos);
    CHECK(first_life.find("replication_activating " + marker) == std::string::npos);
    CHECK(first_life.find("replication_live " + marker) == std::string::npos);
    r.start("a");
    REQUIRE(wait_until(in(std::chrono::seconds(60)), [&] { return r.whole(); }));
    CHECK(r["c"].log_text().find("replication_stepping_down") == std::string::npos);
    CHECK(instance_node_id(r["c"], "c") == c_id);
}

} // namespace actormq::test

namespace actormq::test {

TEST_CASE("colocated: with restart-backup = false the colocated backup ends after the failback, "
          "its host frees the slot, and the returning live gets a new backup there") {
    ACTORMQ_START_NODE(host, colocated_node("", "max-backups = 1\n"), named("host"));
    temp_dir journal;
    uint16_t port = port_pair(117);
    // The backup table of the live (it travels with the request): no restart after giving way.
    auto config =
        node_config("",
                    "[ha-policy.colocated]\nrequest-backup = true\nbackup-port-offset = 117\n"
                    "backup-request-retry-interval = 200\n"
                    "[ha-policy.colocated.primary]\ncheck-for-live-server = true\n"
                    "vote-retry-wait = 200\nretry-replication-wait = 200\nquorum-vote-wait = 1\n"
                    "[ha-policy.colocated.backup]\nrestart-backup = false\n"
                    "vote-retry-wait = 200\nretry-replication-wait = 200\nquorum-vote-wait = 1\n"
                    "[cluster]\nport = 0\nmembers = ["
                        + cluster_item(host)
                        + "]\nreconnect-interval-ms = 50\nheartbeat-interval-ms = 200\n"
                          "connection-timeout-ms = 1000\n",
                    "cluster-user = \"actormq-cluster\"\ncluster-password = \"secret\"\n"
                    "persistence-enabled = true\n");
    auto sets = with_port(named("live"), port);
    sets.push_back("journal-directory=" + journal.path + "/j");
    // Its backup reaches it at the cluster address it had when it asked: the live keeps it.
    std::set<uint16_t> taken{port, static_cast<uint16_t>(port + 117)};
    sets.push_back("cluster.port=" + std::to_string(free_port(taken)));
    auto live = std::make_unique<node_process>(config, sets);
    REQUIRE(live->wait_ready(soon()));
    INFO("host:\n", host.log_tail());
    REQUIRE(log_shows(*live, "replication_in_sync backup=colocated_backup_1"));
    {
        stomp_client c;
        login(c, *live);
        REQUIRE(send_durable(c, "/queue/once", "before"));
    }
    live->kill(SIGKILL);
    REQUIRE(live->wait_exit(soon()).has_value());
    REQUIRE(log_shows(host, "failover_ms="));
    live.reset();
    live = std::make_unique<node_process>(config, sets);
    REQUIRE(live->wait_ready(soon()));
    REQUIRE(log_shows(*live, "replication_found_served"));
    REQUIRE(log_shows(*live, "detail=\"failback\""));
    // The old backup ends and frees its slot; the live asks again and gets colocated_backup_1
    // once more, which syncs with it.
    REQUIRE(log_shows(host, "colocated_instance_stopped instance=colocated_backup_1"));
    REQUIRE(log_shows(host, "colocated_instance_started instance=colocated_backup_1 live=live", 2));
    REQUIRE(log_shows(*live, "replication_in_sync backup=colocated_backup_1"));
    CHECK(live->log_text().find("colocated_backup_present") == std::string::npos);
    stomp_client c;
    login(c, *live);
    subscribe(c, "/queue/once", "s");
    CHECK(expect_message(c).body == "before");
}

} // namespace actormq::test

// -- a colocated backup that took over asks for a backup of its own (docs/ha.md, "Stand-ins") ----

namespace actormq::test {

namespace {

/// Lost, duplicated and unexpected messages of `want` (the confirmed sends) in `seen`.
struct tally {
    size_t lost = 0;
    size_t duplicated = 0;
    size_t unexpected = 0;
};

tally count(const std::set<std::string>& want, const std::map<std::string, int>& seen) {
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

/// A ring with max-backups 2 under one producer per node id, whose host list names every
/// place that node id can be served: the node, its colocated backup on the next node (P +
/// offset) and the stand-in's backup on the node after (P + 3 x offset). Kills a and waits
/// until b's colocated_backup_1 serves a's node id and has its own backup, colocated_backup_2
/// on c, in sync.
struct stand_in_ring {
    ring r;
    std::map<std::string, std::unique_ptr<producer>> producers;

    explicit stand_in_ring(const std::string& store = "replication") : r(2, store) {
        r.start_whole();
        for (const auto& n : r.names) {
            auto p = r.stomp[n];
            producers[n] = std::make_unique<producer>(
                "/queue/ring-" + n,
                std::vector<uint16_t>{p, static_cast<uint16_t>(p + ring::offset),
                                      static_cast<uint16_t>(p + 3 * ring::offset)},
                n + "-");
            REQUIRE(producers[n]->wait_more(30));
        }
        r["a"].kill(SIGKILL);
        REQUIRE(r["a"].wait_exit(soon()).has_value());
        REQUIRE(wait_until(in(std::chrono::seconds(20)), [&] {
            return instance_role(r["b"], "colocated_backup_1") == "backup-active";
        }));
        // The stand-in asks c (never b, its host): c runs it as its colocated_backup_2, on
        // the stand-in's port shifted again, and b's log shows the stand-in's journal in sync.
        // (b's own requester logged the first such line when the ring formed.)
        REQUIRE(log_shows(
            r["b"], "colocated_backup_started host=127.0.0.1:" + std::to_string(r.cluster["c"]),
            2));
        REQUIRE(log_shows(r["c"], "colocated_instance_started instance=colocated_backup_2 live=a"));
        CHECK(r["c"].log_text().find("stomp=127.0.0.1:"
                                     + std::to_string(r.stomp["a"] + 3 * ring::offset))
              != std::string::npos);
        if (store_is_shared()) {
            // On a shared store the stand-in's backup waits on a's directory, whose live lock
            // the stand-in holds.
            REQUIRE(log_shows(r["c"], "journal=" + r.dirs["a"]->path + "/journal "));
            REQUIRE(wait_until(
                soon(), [&] { return instance_role(r["c"], "colocated_backup_2") == "backup"; }));
        } else {
            REQUIRE(log_shows(r["b"], "replication_in_sync backup=colocated_backup_2"));
        }
        for (const auto& n : r.names) {
            REQUIRE(producers[n]->wait_more(20, in(std::chrono::seconds(20))));
        }
    }

    bool store_is_shared() const { return r.store == "shared-store"; }

    /// Stops the producers and drains each node id's queue from `ports` (by node): every
    /// confirmed message exactly once.
    void verdict(const std::map<std::string, uint16_t>& ports) {
        for (const auto& n : r.names) {
            producers[n]->stop();
        }
        size_t confirmed = 0;
        for (const auto& n : r.names) {
            auto want = producers[n]->confirmed();
            confirmed += want.size();
            auto t = count(want, drain(ports.at(n), "/queue/ring-" + n));
            CAPTURE(n);
            CHECK(t.lost == 0);
            CHECK(t.duplicated == 0);
            CHECK(t.unexpected == 0);
        }
        MESSAGE("stand-in ring: ", confirmed, " confirmed messages");
    }
};

} // namespace

namespace {

/// A stand-in on b serves a's node id; then b is SIGKILLed too.
void second_failure(const std::string& store) {
    stand_in_ring s{store};
    auto& r = s.r;
    INFO(r.tails());
    // b dies too: b's node id fails over to its colocated backup on c, a's to the stand-in's
    // backup on c.
    r["b"].kill(SIGKILL);
    REQUIRE(r["b"].wait_exit(soon()).has_value());
    REQUIRE(wait_until(in(std::chrono::seconds(20)), [&] {
        return instance_role(r["c"], "colocated_backup_1") == "backup-active"
               && instance_role(r["c"], "colocated_backup_2") == "backup-active";
    }));
    for (const auto& n : r.names) {
        REQUIRE(s.producers[n]->wait_more(20, in(std::chrono::seconds(20))));
    }
    s.verdict({{"a", static_cast<uint16_t>(r.stomp["a"] + 3 * ring::offset)},
               {"b", static_cast<uint16_t>(r.stomp["b"] + ring::offset)},
               {"c", r.stomp["c"]}});
}

} // namespace

TEST_CASE("colocated: stand-in: a colocated backup that took over gets a backup of its own on "
          "another node; a second SIGKILL (its host) leaves every node id served, every "
          "confirmed message exactly once") {
    second_failure("replication");
}

TEST_CASE("colocated: shared store: stand-in: the stand-in's backup waits on the node's own "
          "directory on the third node; a second SIGKILL (the stand-in's host) leaves every node "
          "id served, every confirmed message exactly once") {
    second_failure("shared-store");
}

TEST_CASE("colocated: stand-in: when the node comes back the stand-in releases its backup (it "
          "ends on its host), the node fails back, the stand-in is its backup again, and the "
          "ring rebalances: each live has exactly one backup, on another node") {
    stand_in_ring s;
    auto& r = s.r;
    INFO(r.tails());
    r.start("a");
    // a joins: the stand-in ends its extra backup, so that a can pair with it (a live
    // replicates to one backup at a time); the instance on c stops and frees its slot.
    REQUIRE(log_shows(r["b"], "colocated_backup_released"));
    REQUIRE(log_shows(r["c"], "colocated_instance_released instance=colocated_backup_2"));
    REQUIRE(log_shows(r["c"], "colocated_instance_stopped instance=colocated_backup_2"));
    REQUIRE(log_shows(r["a"], "detail=\"failback\""));
    REQUIRE(log_shows(r["a"], "replication_in_sync backup=colocated_backup_1"));
    REQUIRE(wait_until(in(std::chrono::seconds(20)), [&] {
        return instance_role(r["a"], "a") == "live"
               && instance_role(r["b"], "colocated_backup_1") == "backup";
    }));
    // Nothing serves a's node id but a: not the stand-in's old backup (ended), not the
    // stand-in (a backup again).
    auto role = instance_role(r["c"], "colocated_backup_2");
    CHECK((role.empty() || role == "gone"));
    CHECK(!stomp_serves(static_cast<uint16_t>(r.stomp["a"] + 3 * ring::offset)));
    CHECK(!stomp_serves(static_cast<uint16_t>(r.stomp["a"] + ring::offset)));
    // While a was down c's backup (it ran in a's process) went to b's second slot. The ring
    // rebalances: b runs two and a none, so c moves its backup to a and b's second one ends
    // (docs/ha.md, "Rebalancing"). Then each live has one backup, on another node.
    REQUIRE(
        log_shows(r["c"], "colocation_rebalance from=127.0.0.1:" + std::to_string(r.cluster["b"])
                              + " to=127.0.0.1:" + std::to_string(r.cluster["a"])));
    REQUIRE(log_shows(r["c"], "colocated_backup_moved"));
    REQUIRE(log_shows(r["b"], "colocated_instance_stopped instance=colocated_backup_2"));
    REQUIRE(log_shows(r["a"], "colocated_instance_started instance=colocated_backup_1 live=c"));
    REQUIRE(log_shows(r["c"], "replication_in_sync backup=colocated_backup_1", 2));
    CHECK(wait_until(in(std::chrono::seconds(30)), [&] { return r.whole() && r.balanced(); }));
    for (const auto& n : r.names) {
        REQUIRE(s.producers[n]->wait_more(20, in(std::chrono::seconds(20))));
    }
    s.verdict({{"a", r.stomp["a"]}, {"b", r.stomp["b"]}, {"c", r.stomp["c"]}});
}

} // namespace actormq::test

// -- colocated backups on a shared store (docs/ha.md, "Colocated backups on a shared store") -----

namespace actormq::test {

TEST_CASE("colocated: shared store: the colocated backup opens the live's own journal directory, "
          "takes the lock after a SIGKILL of the live and serves every confirmed message "
          "exactly once; the live fails back when it returns and the backup waits again") {
    ACTORMQ_START_NODE(host, colocated_node("", "max-backups = 1\n"), named("host"));
    temp_dir where;
    uint16_t port = port_pair(119);
    std::set<uint16_t> taken{port, static_cast<uint16_t>(port + 119)};
    auto cluster_port = free_port(taken);
    // The live names its directories in the spawn request; on this machine both nodes see one
    // file system, which stands for the shared disk.
    auto config =
        node_config("",
                    "[ha-policy.colocated]\nstore = \"shared-store\"\nrequest-backup = true\n"
                    "backup-port-offset = 119\nbackup-request-retry-interval = 200\n"
                    "[ha-policy.colocated.backup]\nallow-failback = true\nrestart-backup = true\n"
                    "lock-poll-interval-ms = 10\n"
                    "[cluster]\nmembers = ["
                        + cluster_item(host)
                        + "]\nreconnect-interval-ms = 50\nheartbeat-interval-ms = 200\n"
                          "connection-timeout-ms = 1000\n",
                    "cluster-user = \"actormq-cluster\"\ncluster-password = \"secret\"\n"
                    "persistence-enabled = true\n");
    auto sets = with_port(named("live"), port);
    sets.push_back("cluster.port=" + std::to_string(cluster_port));
    auto journal = where.path + "/journal";
    auto live =
        std::make_unique<node_process>(node_placement{where.path, "node.log"}, config, sets);
    REQUIRE(live->wait_ready(soon()));
    INFO("host:\n", host.log_tail(40));
    REQUIRE(log_shows(*live, "ha_live node_id="));
    REQUIRE(log_shows(host, "colocated_instance_started instance=colocated_backup_1 live=live"));
    CHECK(host.log_text().find("journal=" + journal + " ") != std::string::npos);
    // Passive: it holds backup.lock and waits for the live lock of the shared directory.
    REQUIRE(log_shows(host, "ha_waiting_for_live"));
    REQUIRE(
        wait_until(soon(), [&] { return instance_role(host, "colocated_backup_1") == "backup"; }));
    CHECK(!stomp_serves(static_cast<uint16_t>(port + 119)));
    auto status = get_json(host, "/api/status");
    for (const auto& i : status["instances"]) {
        if (i.value("name", "") == "colocated_backup_1") {
            CHECK(i["journal"]["directory"] == journal);
        }
    }
    CHECK(!std::filesystem::exists(host.dir() + "/journal/colocated_backup_1"));
    // Its requester counts the waiting backup as its own.
    REQUIRE(log_shows(*live, "colocated_backup_started"));

    producer p{"/queue/shared-colo", std::vector<uint16_t>{port, static_cast<uint16_t>(port + 119)},
               "s-"};
    REQUIRE(p.wait_more(50));
    auto killed_at = std::chrono::steady_clock::now();
    live->kill(SIGKILL);
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(static_cast<uint16_t>(port + 119)); }));
    // For docs/benchmarks.md ("Colocated failover on a shared store"): SIGKILL to a STOMP
    // CONNECTED from the backup on the offset port.
    MESSAGE("shared-store colocated failover: SIGKILL to serving in ",
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now()
                                                                  - killed_at)
                .count(),
            " ms");
    REQUIRE(live->wait_exit(soon()).has_value());
    live.reset();
    REQUIRE(wait_until(
        soon(), [&] { return instance_role(host, "colocated_backup_1") == "backup-active"; }));
    CHECK(log_shows(host, "ha_activating node_id="));
    REQUIRE(p.wait_more(50, in(std::chrono::seconds(20))));

    // Back on its directory and ports: it finds its backup serving, asks for its place back
    // (state F), and the backup gives way and waits again.
    live = std::make_unique<node_process>(node_placement{where.path, "node2.log"}, config, sets);
    REQUIRE(live->wait_ready(soon()));
    REQUIRE(log_shows(*live, "ha_failing_back"));
    REQUIRE(log_shows(host, "ha_giving_way"));
    REQUIRE(log_shows(*live, "ha_live node_id="));
    REQUIRE(log_shows(host, "ha_backup_restarted"));
    REQUIRE(wait_until(in(std::chrono::seconds(20)), [&] {
        return instance_role(*live, "live") == "live"
               && instance_role(host, "colocated_backup_1") == "backup";
    }));
    // The backup that waits again is the returning live's: nobody is asked for another.
    REQUIRE(log_shows(*live, "colocated_backup_present"));
    CHECK(host.log_text().find("colocated_backup_2") == std::string::npos);
    REQUIRE(p.wait_more(50, in(std::chrono::seconds(20))));
    p.stop();
    auto want = p.confirmed();
    std::map<std::string, int> seen;
    {
        stomp_client c;
        REQUIRE(c.connect_tcp(port));
        REQUIRE(c.connect_stomp("guest", "guest").cmd == command::connected);
        REQUIRE(send_durable(c, "/queue/shared-colo", "end"));
        subscribe(c, "/queue/shared-colo", "d");
        while (seen.count("end") == 0) {
            ++seen[expect_message(c, in(std::chrono::seconds(30))).body];
        }
        seen.erase("end");
    }
    size_t lost = 0;
    size_t duplicated = 0;
    size_t unexpected = 0;
    for (const auto& body : want) {
        auto it = seen.find(body);
        lost += it == seen.end() ? 1 : 0;
        duplicated += it != seen.end() && it->second > 1 ? 1 : 0;
    }
    for (const auto& [body, times] : seen) {
        unexpected += want.count(body) == 0 ? 1 : 0;
    }
    MESSAGE("shared-store colocated: ", want.size(), " confirmed messages");
    CHECK(want.size() >= 150);
    CHECK(lost == 0);
    CHECK(duplicated == 0);
    CHECK(unexpected == 0);
}

} // namespace actormq::test
