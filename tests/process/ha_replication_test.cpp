// SPDX-License-Identifier: Apache-2.0
// Replication with real nodes (docs/replication.md): a live streams its journal to a backup on
// another node; the backup syncs what exists while producers keep sending, takes over after
// SIGKILL or SIGSTOP of the live only when a quorum vote allows it, and a live that lost its
// backup and its quorum stops serving. Every confirmed message is counted.
#include "support/cluster_nodes.hpp"
#include "support/failover_producer.hpp"
#include "support/process_fixture.hpp"
#include "support/web_client.hpp"

#include <atomic>
#include <csignal>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

namespace actormq::test {

namespace {

/// Drains /queue/repl from `port`: how often each body arrived.
std::map<std::string, int> drain(uint16_t port) {
    stomp_client c;
    REQUIRE(c.connect_tcp(port));
    REQUIRE(c.connect_stomp("guest", "guest").cmd == command::connected);
    REQUIRE(send_durable(c, "/queue/repl", "end"));
    subscribe(c, "/queue/repl", "d");
    std::map<std::string, int> seen;
    while (seen.count("end") == 0) {
        auto body = expect_message(c).body;
        ++seen[body.substr(0, body.find(' '))]; // without the padding
    }
    seen.erase("end");
    return seen;
}

/// Every confirmed message arrived exactly once, and nothing else arrived.
void check_exactly_once(const std::set<std::string>& confirmed,
                        const std::map<std::string, int>& seen) {
    for (const auto& body : confirmed) {
        auto it = seen.find(body);
        CHECK_MESSAGE((it != seen.end() && it->second == 1), body, " arrived ",
                      it == seen.end() ? 0 : it->second, " times");
    }
    for (const auto& [body, n] : seen) {
        // A send cut off by the kill may be stored without its RECEIPT: it then arrives once,
        // and its retry (same duplicate id) was refused as a duplicate or confirmed.
        CHECK_MESSAGE(n == 1, body, " arrived ", n, " times");
    }
}

} // namespace

TEST_CASE("replication: a backup syncs a journal that holds messages while producers send, "
          "then takes over after SIGKILL with every confirmed message exactly once") {
    ACTORMQ_START_NODE(live, cluster_node("", replication("primary")), {"name=\"live\""});
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(live.port()); }));
    // 600 messages of 1 KiB: several 128 KiB segments, so the sync copies more than one.
    producer p("/queue/repl", {live.port()}, "m", 1024);
    REQUIRE(p.wait_more(600));
    ACTORMQ_START_NODE(backup, cluster_node(cluster_item(live), replication("backup")),
                       {"name=\"backup\""});
    REQUIRE(log_shows(backup, "replication_in_sync"));
    REQUIRE(log_shows(live, "replication_in_sync backup=backup"));
    CHECK(!stomp_serves(backup.port()));
    REQUIRE(p.wait_more(200));
    live.kill(SIGKILL);
    REQUIRE(log_shows(backup, "replication_live node_id="));
    CHECK(backup.log_text().find("replication_activating") != std::string::npos);
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(backup.port()); }));
    producer after("/queue/repl", {backup.port()}, "n");
    REQUIRE(after.wait_more(20));
    after.stop();
    p.stop();
    auto confirmed = p.confirmed();
    for (const auto& body : after.confirmed()) {
        confirmed.insert(body);
    }
    check_exactly_once(confirmed, drain(backup.port()));
}

TEST_CASE("replication: a backup without a live to pair with waits and never serves") {
    // A member that serves nothing: the backup finds no live of its group.
    ACTORMQ_START_NODE(other, cluster_node("", replication("backup")), {"name=\"other\""});
    ACTORMQ_START_NODE(backup, cluster_node(cluster_item(other), replication("backup")),
                       {"name=\"backup\""});
    REQUIRE(log_shows(backup, "replication_waiting_for_live"));
    REQUIRE(log_shows(backup, "cluster_member_joined name=other"));
    CHECK(!stomp_serves(backup.port()));
    CHECK(!stomp_serves(other.port()));
    CHECK(backup.running());
}

TEST_CASE("replication: a backup pairs only with a live of its group-name") {
    ACTORMQ_START_NODE(fish, cluster_node("", replication("primary", "group-name = \"fish\"\n")),
                       {"name=\"fish-live\""});
    ACTORMQ_START_NODE(
        bird_backup,
        cluster_node(cluster_item(fish), replication("backup", "group-name = \"bird\"\n")),
        {"name=\"bird-backup\""});
    REQUIRE(log_shows(bird_backup, "cluster_member_joined name=fish-live"));
    REQUIRE(log_shows(bird_backup, "replication_waiting_for_live"));
    ACTORMQ_START_NODE(
        fish_backup,
        cluster_node(cluster_item(fish), replication("backup", "group-name = \"fish\"\n")),
        {"name=\"fish-backup\""});
    REQUIRE(log_shows(fish_backup, "replication_in_sync"));
    REQUIRE(log_shows(fish, "replication_in_sync backup=fish-backup"));
    CHECK(bird_backup.log_text().find("replication_pairing") == std::string::npos);
}

TEST_CASE("replication: with the live and the third live frozen the backup loses its vote and "
          "stays passive, and takes over once the third live answers again") {
    ACTORMQ_START_NODE(live, cluster_node("", replication("primary")), {"name=\"live\""});
    ACTORMQ_START_NODE(third, cluster_node(cluster_item(live), ""), {"name=\"third\""});
    ACTORMQ_START_NODE(
        backup, cluster_node(cluster_item(live) + "," + cluster_item(third), replication("backup")),
        {"name=\"backup\""});
    REQUIRE(log_shows(backup, "replication_in_sync"));
    REQUIRE(log_shows(backup, "cluster_member_joined name=third"));
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(live.port()); }));
    {
        stomp_client c;
        login(c, live);
        REQUIRE(send_durable(c, "/queue/repl", "before"));
    }
    live.kill(SIGSTOP);
    third.kill(SIGSTOP);
    // The backup sees both go (heart-beat timeout), then votes alone: 1 of the 2 lives it saw.
    REQUIRE(log_shows(backup, "replication_vote_lost"));
    CHECK(!stomp_serves(backup.port()));
    third.kill(SIGCONT);
    REQUIRE(log_shows(backup, "replication_live node_id="));
    REQUIRE(stomp_serves(backup.port()));
    auto seen = drain(backup.port());
    CHECK(seen == std::map<std::string, int>{{"before", 1}});
    // The page's "HA decisions": the lost vote and the won one with their counts, then the
    // failover with its duration (docs/web.md).
    nlohmann::json ha;
    REQUIRE(wait_until(soon(), [&] {
        auto c = http_exchange(backup.port("web"), http_request("/api/status"), soon());
        ha = c.status() == 200 ? nlohmann::json::parse(c.body(), nullptr, false)["ha"]
                               : nlohmann::json{};
        return ha.is_object() && !ha["activations"].empty();
    }));
    std::map<std::string, nlohmann::json> last;
    for (const auto& v : ha["votes"]) {
        last[v["outcome"].get<std::string>()] = v;
    }
    REQUIRE(last.count("lost") == 1);
    REQUIRE(last.count("won") == 1);
    CHECK(last["lost"]["counts"]["needed"] == 2);
    CHECK(last["lost"]["counts"]["lives_not_seeing"] <= 1);
    CHECK(last["won"]["counts"]["needed"] == 2);
    CHECK(last["won"]["counts"]["lives_not_seeing"] == 1);
    CHECK(ha["votes_won_total"] == 1);
    CHECK(ha["votes_lost_total"] >= 1);
    const auto& failover = ha["activations"].back();
    CHECK(failover["kind"] == "failover");
    CHECK(failover["duration_ms"].is_number());
    auto metrics = http_exchange(backup.port("web"), http_request("/metrics"), soon()).body();
    CHECK(metrics.find("actormq_votes_total{outcome=\"won\"} 1") != std::string::npos);
    live.kill(SIGCONT);
    live.kill(SIGKILL);
}

TEST_CASE("replication: SIGSTOP of the live: the backup takes over with the third live's "
          "vote, and the thawed live finds its node id served and stops serving") {
    ACTORMQ_START_NODE(
        live, cluster_node("", replication("primary", "vote-on-replication-failure = true\n")),
        {"name=\"live\""});
    ACTORMQ_START_NODE(third, cluster_node(cluster_item(live), ""), {"name=\"third\""});
    ACTORMQ_START_NODE(
        backup, cluster_node(cluster_item(live) + "," + cluster_item(third), replication("backup")),
        {"name=\"backup\""});
    REQUIRE(log_shows(backup, "replication_in_sync"));
    REQUIRE(log_shows(backup, "cluster_member_joined name=third"));
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(live.port()); }));
    producer p("/queue/repl", {live.port(), backup.port()});
    REQUIRE(p.wait_more(100));
    live.kill(SIGSTOP);
    REQUIRE(log_shows(backup, "replication_live node_id="));
    REQUIRE(p.wait_more(50));
    live.kill(SIGCONT);
    // The live hears its replica is gone, asks, learns its node id is served elsewhere.
    REQUIRE(log_shows(live, "replication_stepping_down"));
    auto status = live.wait_exit(soon());
    REQUIRE(status.has_value());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 1);
    p.stop();
    auto seen = drain(backup.port());
    check_exactly_once(p.confirmed(), seen);
}

} // namespace actormq::test

namespace actormq::test {

TEST_CASE("replication: failback: a primary restarted with check-for-live-server syncs from the "
          "backup that took over, takes its node id back, and the backup waits as a backup") {
    temp_dir a_dir;
    auto a_sets = [&](uint16_t port) {
        std::vector<std::string> sets{"name=\"live\"", "journal-directory=" + a_dir.path + "/j"};
        if (port != 0) {
            sets.push_back("acceptors.stomp.port=" + std::to_string(port));
        }
        return sets;
    };
    const std::string primary = replication("primary", "check-for-live-server = true\n");
    std::optional<node_process> a;
    a.emplace(cluster_node("", primary), a_sets(0));
    REQUIRE(a->wait_ready(soon()));
    auto a_port = a->port();
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(a_port); }));
    ACTORMQ_START_NODE(b, cluster_node(cluster_item(*a), replication("backup")),
                       {"name=\"backup\""});
    REQUIRE(log_shows(b, "replication_in_sync"));
    producer p("/queue/repl", {a_port, b.port()});
    REQUIRE(p.wait_more(100));
    a->kill(SIGKILL);
    REQUIRE(a->wait_exit(soon()).has_value());
    REQUIRE(log_shows(b, "replication_live node_id="));
    REQUIRE(p.wait_more(100));
    // The primary comes back on its journal directory and port, and joins the backup.
    a.reset();
    a.emplace(cluster_node(cluster_item(b), primary), a_sets(a_port));
    REQUIRE(a->wait_ready(soon()));
    INFO("restarted primary:\n", a->log_tail(), "\nbackup:\n", b.log_tail());
    REQUIRE(log_shows(*a, "replication_found_served"));
    REQUIRE(log_shows(*a, "replication_live node_id="));
    CHECK(a->log_text().find("detail=\"failback\"") != std::string::npos);
    REQUIRE(log_shows(b, "replication_backup_restarted"));
    REQUIRE(log_shows(b, "replication_in_sync", 2));
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(a_port); }));
    REQUIRE(p.wait_more(100));
    p.stop();
    CHECK(!stomp_serves(b.port()));
    check_exactly_once(p.confirmed(), drain(a_port));
    // The old journal went aside, not away.
    CHECK(std::filesystem::exists(a_dir.path + "/j/oldreplica.1"));
}

} // namespace actormq::test

namespace actormq::test {

TEST_CASE("replication: a backup with restart-backup = false exits with status 0 after giving "
          "way to its primary") {
    temp_dir a_dir;
    const std::string primary = replication("primary", "check-for-live-server = true\n");
    auto sets = [&](uint16_t stomp, uint16_t cluster) {
        std::vector<std::string> s{"name=\"live\"", "journal-directory=" + a_dir.path + "/j"};
        if (stomp != 0) {
            s.push_back("acceptors.stomp.port=" + std::to_string(stomp));
            s.push_back("cluster.port=" + std::to_string(cluster));
        }
        return s;
    };
    std::optional<node_process> a;
    a.emplace(cluster_node("", primary), sets(0, 0));
    REQUIRE(a->wait_ready(soon()));
    const auto a_port = a->port();
    const auto a_cluster_port = a->port("cluster");
    ACTORMQ_START_NODE(
        b, cluster_node(cluster_item(*a), replication("backup", "restart-backup = false\n")),
        {"name=\"backup\""});
    REQUIRE(log_shows(b, "replication_in_sync"));
    a->kill(SIGKILL);
    REQUIRE(a->wait_exit(soon()).has_value());
    REQUIRE(log_shows(b, "replication_live node_id="));
    a.reset();
    a.emplace(cluster_node(cluster_item(b), primary), sets(a_port, a_cluster_port));
    REQUIRE(a->wait_ready(soon()));
    REQUIRE(log_shows(*a, "replication_live node_id="));
    REQUIRE(log_shows(b, "replication_backup_exiting"));
    auto status = b.wait_exit(soon());
    REQUIRE(status.has_value());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
}

TEST_CASE("replication: the reference's fish and bird groups: 5 lives and 6 backups pair "
          "within their groups, and the spare fish backup waits") {
    // live1-3 and backup1-4 are fish, live4-5 and backup5-6 are bird; each node lists every
    // node started before it, so every member knows every other.
    std::vector<std::unique_ptr<node_process>> nodes;
    std::string members;
    auto add = [&](const std::string& name, const std::string& role, const std::string& group) {
        nodes.push_back(std::make_unique<node_process>(
            cluster_node(members, replication(role, "group-name = \"" + group + "\"\n")),
            std::vector<std::string>{"name=\"" + name + "\""}));
        REQUIRE(nodes.back()->wait_ready(soon()));
        members += (members.empty() ? "" : ",") + cluster_item(*nodes.back());
        return nodes.back().get();
    };
    std::vector<node_process*> fish_lives{add("live1", "primary", "fish"),
                                          add("live2", "primary", "fish"),
                                          add("live3", "primary", "fish")};
    std::vector<node_process*> bird_lives{add("live4", "primary", "bird"),
                                          add("live5", "primary", "bird")};
    std::vector<node_process*> fish_backups{
        add("backup1", "backup", "fish"), add("backup2", "backup", "fish"),
        add("backup3", "backup", "fish"), add("backup4", "backup", "fish")};
    std::vector<node_process*> bird_backups{add("backup5", "backup", "bird"),
                                            add("backup6", "backup", "bird")};
    // Every live gets exactly one backup of its own group.
    for (auto* live : fish_lives) {
        REQUIRE(log_shows(*live, "replication_in_sync backup=backup"));
    }
    for (auto* live : bird_lives) {
        REQUIRE(log_shows(*live, "replication_in_sync backup=backup"));
    }
    auto paired_with = [](node_process* live) {
        auto log = live->log_text();
        auto at = log.find("replication_in_sync backup=");
        return log.substr(at + 27, log.find(' ', at + 27) - (at + 27));
    };
    std::set<std::string> fish_paired;
    for (auto* live : fish_lives) {
        auto b = paired_with(live);
        CHECK_MESSAGE((b == "backup1" || b == "backup2" || b == "backup3" || b == "backup4"), b);
        fish_paired.insert(b);
    }
    CHECK(fish_paired.size() == 3);
    std::set<std::string> bird_paired;
    for (auto* live : bird_lives) {
        auto b = paired_with(live);
        CHECK_MESSAGE((b == "backup5" || b == "backup6"), b);
        bird_paired.insert(b);
    }
    CHECK(bird_paired.size() == 2);
    // The three paired fish backups say so too (a backup logs its own in-sync line just after
    // its live does); the fish backup left over waits for a live of its group.
    int waiting = 0;
    for (size_t i = 0; i < fish_backups.size(); ++i) {
        auto* b = fish_backups[i];
        auto name = "backup" + std::to_string(i + 1);
        if (fish_paired.count(name) > 0) {
            CHECK(log_shows(*b, "replication_in_sync"));
        } else {
            ++waiting;
            CHECK(b->log_text().find("replication_in_sync") == std::string::npos);
        }
        CHECK(b->running());
    }
    CHECK(waiting == 1);
    for (auto* b : bird_backups) {
        CHECK(log_shows(*b, "replication_in_sync"));
    }
}

} // namespace actormq::test

namespace actormq::test {

TEST_CASE("replication: after the backup that took over is killed too, the restarted primary "
          "does not start on its older journal; the backup restarted on its own journal serves "
          "it, and the primary fails back from it with every confirmed message exactly once") {
    temp_dir a_dir;
    temp_dir b_dir;
    ACTORMQ_START_NODE(voter, cluster_node("", ""), {"name=\"voter\""});
    const std::string primary = replication("primary", "check-for-live-server = true\n");
    // A restarted node keeps its ports: the other members name its cluster port, clients its
    // STOMP port.
    auto sets = [](const std::string& name, const temp_dir& dir, uint16_t stomp = 0,
                   uint16_t cluster = 0) {
        std::vector<std::string> s{"name=\"" + name + "\"", "journal-directory=" + dir.path + "/j"};
        if (stomp != 0) {
            s.push_back("acceptors.stomp.port=" + std::to_string(stomp));
            s.push_back("cluster.port=" + std::to_string(cluster));
        }
        return s;
    };
    std::optional<node_process> a;
    a.emplace(cluster_node(cluster_item(voter), primary), sets("live", a_dir));
    REQUIRE(a->wait_ready(soon()));
    const auto a_port = a->port();
    const auto a_cluster = cluster_item(*a);
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(a_port); }));
    std::optional<node_process> b;
    b.emplace(cluster_node(a_cluster + "," + cluster_item(voter), replication("backup")),
              sets("backup", b_dir));
    REQUIRE(b->wait_ready(soon()));
    const auto b_port = b->port();
    const auto b_cluster = cluster_item(*b);
    REQUIRE(log_shows(*b, "replication_in_sync"));
    producer p("/queue/repl", {a_port, b_port});
    REQUIRE(p.wait_more(100));
    a->kill(SIGKILL);
    REQUIRE(a->wait_exit(soon()).has_value());
    REQUIRE(log_shows(*b, "replication_live node_id="));
    // Messages only the backup's journal holds.
    REQUIRE(p.wait_more(100));
    b->kill(SIGKILL);
    REQUIRE(b->wait_exit(soon()).has_value());
    auto confirmed_before = p.confirmed().size();
    const auto a_cluster_port = a->port("cluster");
    a.reset();
    a.emplace(cluster_node(b_cluster + "," + cluster_item(voter), primary),
              sets("live", a_dir, a_port, a_cluster_port));
    REQUIRE(a->wait_ready(soon()));
    INFO("primary:\n", a->log_tail());
    // The voter saw the backup serve with a newer activation sequence: the primary waits.
    REQUIRE(log_shows(*a, "replication_stale_journal"));
    CHECK(!stomp_serves(a_port));
    CHECK(p.confirmed().size() == confirmed_before);
    const auto b_cluster_port = b->port("cluster");
    b.reset();
    b.emplace(cluster_node(a_cluster + "," + cluster_item(voter), replication("backup")),
              sets("backup", b_dir, b_port, b_cluster_port));
    REQUIRE(b->wait_ready(soon()));
    INFO("backup:\n", b->log_tail());
    REQUIRE(log_shows(*b, "replication_held_journal"));
    REQUIRE(log_shows(*b, "replication_live node_id="));
    CHECK(b->log_text().find("detail=\"newest-journal") != std::string::npos);
    // The primary finds its node id served, syncs from the backup and takes it back.
    REQUIRE(log_shows(*a, "replication_found_served"));
    REQUIRE(log_shows(*a, "replication_live node_id="));
    CHECK(a->log_text().find("detail=\"failback\"") != std::string::npos);
    REQUIRE(log_shows(*b, "replication_backup_restarted"));
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(a_port); }));
    REQUIRE(p.wait_more(50));
    p.stop();
    check_exactly_once(p.confirmed(), drain(a_port));
    // Four activations of the node id: the primary's first start, the failover, the backup
    // starting on its journal, the failback. The status page shows the sequence per member
    // (its figures are gathered while someone reads them: the first read can be older).
    nlohmann::json self;
    REQUIRE(wait_until(soon(), [&] {
        auto c = http_exchange(a->port("web"), http_request("/api/status"), soon());
        auto members = c.status() == 200
                           ? nlohmann::json::parse(c.body(), nullptr, false)["members"]
                           : nlohmann::json{};
        self = members.is_array() && !members.empty() ? members[0] : nlohmann::json{};
        return self.is_object() && self["role"] == "live";
    }));
    CHECK(self["name"] == "live");
    CHECK(self["activation_sequence"] == 4);
}

} // namespace actormq::test
