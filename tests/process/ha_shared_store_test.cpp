// SPDX-License-Identifier: Apache-2.0
// Shared-store HA with real nodes (docs/ha.md): a primary and a backup on one journal directory,
// SIGKILL and SIGTERM of the live, failback, and a backup that starts alone.
#include "support/failover_producer.hpp"
#include "support/process_fixture.hpp"

#include <atomic>
#include <csignal>
#include <filesystem>
#include <map>
#include <thread>

namespace actormq::test {

namespace {

/// The config of one server of a pair; `role` is "primary" or "backup", `options` go into its
/// [ha-policy.shared-store.ROLE] table.
std::string ha_config(const std::string& role, const std::string& options = "") {
    return node_config("", "", "[ha-policy.shared-store." + role + "]\n" + options);
}

/// The --set list that puts a node on the shared journal (and, for a restart, on its port).
std::vector<std::string> ha_sets(const temp_dir& store, uint16_t port = 0) {
    std::vector<std::string> sets{"journal-directory=" + store.path + "/journal"};
    if (port != 0) {
        sets.push_back("acceptors.stomp.port=" + std::to_string(port));
    }
    return sets;
}

/// Tries one STOMP login; returns the CONNECTED frame if `port` serves.
std::optional<stomp::frame> try_login(uint16_t port) {
    stomp_client c;
    if (!c.connect_tcp(port)) {
        return std::nullopt;
    }
    auto f = c.connect_stomp("guest", "guest", "1.2", "0,0", in(std::chrono::seconds(2)));
    if (f.cmd != command::connected) {
        return std::nullopt;
    }
    return f;
}

/// Waits until `node` serves clients; returns its CONNECTED frame.
stomp::frame wait_serving(const node_process& node, deadline_t deadline = soon()) {
    std::optional<stomp::frame> connected;
    bool ok = wait_until(deadline, [&] {
        connected = try_login(node.port());
        return connected.has_value();
    });
    INFO("tail of ", node.dir(), "/node.log:\n", node.log_tail());
    REQUIRE_MESSAGE(ok, "the node on port ", node.port(), " never served");
    return *connected;
}

/// Waits until the node's log contains `text`.
void wait_log(const node_process& node, const std::string& text) {
    bool ok = wait_until(soon(), [&] { return node.log_text().find(text) != std::string::npos; });
    INFO("tail of ", node.dir(), "/node.log:\n", node.log_tail());
    REQUIRE_MESSAGE(ok, "no '", text, "' in the log");
}

/// Sends `body` persistently to /queue/ha with a duplicate id and a receipt; true once confirmed.
bool send_confirmed(stomp_client& c, const std::string& body) {
    return send_durable(c, "/queue/ha", body, in(std::chrono::seconds(5)));
}

/// Drains /queue/ha from `port` until `end` arrives; returns how often each body came.
std::map<std::string, int> drain(uint16_t port, const std::string& end = "end") {
    stomp_client c;
    REQUIRE(c.connect_tcp(port));
    REQUIRE(c.connect_stomp("guest", "guest").cmd == command::connected);
    REQUIRE(send_confirmed(c, end));
    subscribe(c, "/queue/ha", "d");
    std::map<std::string, int> seen;
    while (seen.count(end) == 0) {
        auto m = expect_message(c);
        ++seen[m.body];
    }
    seen.erase(end);
    return seen;
}

} // namespace

TEST_CASE("ha: kill -9 of the live under load: the backup serves the same node id and "
          "nothing confirmed is lost or stored twice") {
    temp_dir store;
    ACTORMQ_START_NODE(primary, ha_config("primary"), ha_sets(store));
    auto before = wait_serving(primary);
    ACTORMQ_START_NODE(backup, ha_config("backup"), ha_sets(store));
    wait_log(backup, "ha_waiting_for_live");
    CHECK(!try_login(backup.port()).has_value());
    auto node_id = header_of(before, "node-id");
    CHECK(node_id.size() == 36);

    // One producer sends until told to stop; every send carries a duplicate id, and a send
    // that was not confirmed is sent again (same id) after reconnecting to whichever serves.
    producer p("/queue/ha", {primary.port(), backup.port()});
    CHECK_MESSAGE(p.wait_more(51), "only ", p.count(), " sends were confirmed before the kill");
    primary.kill(SIGKILL);
    auto after = wait_serving(backup);
    CHECK(header_of(after, "node-id") == node_id);
    CHECK_MESSAGE(p.wait_more(51), "only ", p.count(), " sends were confirmed in all");
    p.stop();
    auto confirmed = p.confirmed();

    auto seen = drain(backup.port());
    for (const auto& body : confirmed) {
        CHECK_MESSAGE(seen[body] == 1, body, " arrived ", seen[body], " times");
    }
    for (const auto& [body, n] : seen) {
        CHECK_MESSAGE(confirmed.count(body) == 1, body, " was never confirmed");
    }
}

TEST_CASE("ha: a backup started before any live activates by itself") {
    temp_dir store;
    ACTORMQ_START_NODE(backup, ha_config("backup"), ha_sets(store));
    auto connected = wait_serving(backup);
    CHECK(header_of(connected, "node-id").size() == 36);
    expect_serving(backup);
}

TEST_CASE("ha: SIGTERM of the live with failover-on-shutdown = true: the backup takes over") {
    temp_dir store;
    ACTORMQ_START_NODE(primary, ha_config("primary", "failover-on-shutdown = true\n"),
                       ha_sets(store));
    wait_serving(primary);
    ACTORMQ_START_NODE(backup, ha_config("backup"), ha_sets(store));
    wait_log(backup, "ha_waiting_for_live");
    {
        stomp_client c;
        login(c, primary);
        REQUIRE(send_confirmed(c, "before-stop"));
    }
    primary.kill(SIGTERM);
    auto status = primary.wait_exit(soon());
    REQUIRE(status.has_value());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    wait_serving(backup);
    auto seen = drain(backup.port());
    CHECK(seen == std::map<std::string, int>{{"before-stop", 1}});
}

TEST_CASE("ha: SIGTERM of the live without failover-on-shutdown: the backup stays passive "
          "until the live is back") {
    temp_dir store;
    ACTORMQ_START_NODE(primary, ha_config("primary"), ha_sets(store));
    wait_serving(primary);
    auto port = primary.port();
    ACTORMQ_START_NODE(backup, ha_config("backup"), ha_sets(store));
    wait_log(backup, "ha_waiting_for_live");
    {
        stomp_client c;
        login(c, primary);
        REQUIRE(send_confirmed(c, "kept"));
    }
    primary.kill(SIGTERM);
    REQUIRE(primary.wait_exit(soon()).has_value());
    wait_log(backup, "ha_paused");
    CHECK(!try_login(backup.port()).has_value());

    ACTORMQ_START_NODE(again, ha_config("primary"), ha_sets(store, port));
    wait_serving(again);
    CHECK(!try_login(backup.port()).has_value());
    auto seen = drain(again.port());
    CHECK(seen == std::map<std::string, int>{{"kept", 1}});
}

TEST_CASE("ha: failback: a restarted primary takes over and the backup waits again") {
    temp_dir store;
    ACTORMQ_START_NODE(primary, ha_config("primary"), ha_sets(store));
    auto first = wait_serving(primary);
    auto port = primary.port();
    ACTORMQ_START_NODE(backup, ha_config("backup"), ha_sets(store));
    wait_log(backup, "ha_waiting_for_live");
    primary.kill(SIGKILL);
    REQUIRE(primary.wait_exit(soon()).has_value());
    wait_serving(backup);
    {
        stomp_client c;
        login(c, backup);
        REQUIRE(send_confirmed(c, "sent-to-backup"));
    }

    ACTORMQ_START_NODE(again, ha_config("primary"), ha_sets(store, port));
    wait_log(again, "ha_failing_back");
    wait_log(backup, "ha_backup_restarted");
    auto back = wait_serving(again);
    CHECK(header_of(back, "node-id") == header_of(first, "node-id"));
    CHECK(!try_login(backup.port()).has_value());
    auto seen = drain(again.port());
    CHECK(seen == std::map<std::string, int>{{"sent-to-backup", 1}});

    // The backup is a backup again: it takes over once more when the primary dies.
    again.kill(SIGKILL);
    wait_serving(backup);
}

TEST_CASE("ha: a backup with restart-backup = false exits after giving way") {
    temp_dir store;
    ACTORMQ_START_NODE(primary, ha_config("primary"), ha_sets(store));
    wait_serving(primary);
    auto port = primary.port();
    ACTORMQ_START_NODE(backup, ha_config("backup", "restart-backup = false\n"), ha_sets(store));
    wait_log(backup, "ha_waiting_for_live");
    primary.kill(SIGKILL);
    wait_serving(backup);
    ACTORMQ_START_NODE(again, ha_config("primary"), ha_sets(store, port));
    auto status = backup.wait_exit(soon());
    REQUIRE(status.has_value());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    wait_serving(again);
}

TEST_CASE("ha: a live-only node refuses a journal directory another server holds") {
    temp_dir store;
    ACTORMQ_START_NODE(first, node_config(), ha_sets(store));
    node_process second{node_config(), ha_sets(store)};
    auto status = second.wait_exit(soon());
    REQUIRE(status.has_value());
    CHECK(WEXITSTATUS(*status) == 1);
    CHECK(second.log_text().find("journal_in_use") != std::string::npos);
}

TEST_CASE("ha: with a cluster, CONNECTED names the backup and, after failover, no one") {
    temp_dir store;
    auto top = [](const std::string& role, const std::string& members) {
        return "cluster-password = \"pair\"\n[cluster]\nport = 0\nmembers = [" + members
               + "]\n[ha-policy.shared-store." + role + "]\n";
    };
    ACTORMQ_START_NODE(primary, node_config("", "", top("primary", "")), ha_sets(store));
    wait_serving(primary);
    auto cluster_address = "\"127.0.0.1:" + std::to_string(primary.port("cluster")) + "\"";
    ACTORMQ_START_NODE(backup, node_config("", "", top("backup", cluster_address)), ha_sets(store));
    auto expected = "127.0.0.1:" + std::to_string(backup.port());
    std::optional<stomp::frame> connected;
    bool named = wait_until(soon(), [&] {
        connected = try_login(primary.port());
        return connected && header_of(*connected, "backup-connector") == expected;
    });
    INFO("tail of primary log:\n", primary.log_tail());
    CHECK_MESSAGE(named, "CONNECTED never named ", expected);

    primary.kill(SIGKILL);
    auto after = wait_serving(backup);
    CHECK(header_of(after, "node-id") == header_of(*connected, "node-id"));
    CHECK(header_of(after, "backup-connector").empty());
}

} // namespace actormq::test
