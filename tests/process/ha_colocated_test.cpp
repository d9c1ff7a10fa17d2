// SPDX-License-Identifier: Apache-2.0
// Colocated backups with real nodes (docs/ha.md, "Colocated backups"): a live with
// request-backup asks another live node, which runs its backup as colocated_backup_N with
// ports shifted by backup-port-offset (excludes keep theirs) and a journal directory of its
// own; max-backups refuses more; a node with the wrong cluster credentials gets nothing; after
// a SIGKILL of the live its colocated backup serves the live's clients on the offset port; with
// restart-backup = false it ends after the failback; and on a shared store it opens the live's
// own directory. The ring of three is in ha_colocated_ring_test.cpp.
#include "support/colocated_ring.hpp"

#include <csignal>
#include <filesystem>

namespace actormq::test {

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

// -- colocated backups on a shared store (docs/ha.md, "Colocated backups on a shared store") -----

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
    auto t = count(want, seen);
    MESSAGE("shared-store colocated: ", want.size(), " confirmed messages");
    CHECK(want.size() >= 150);
    CHECK(t.lost == 0);
    CHECK(t.duplicated == 0);
    CHECK(t.unexpected == 0);
}

} // namespace actormq::test
