// SPDX-License-Identifier: Apache-2.0
// The [ha-policy], [cluster] and scale-down tables (config/convert_ha.cpp): every key read, the
// reference texts' names and defaults, and errors naming file, line, column and key.
#include "support/config_text.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace actormq::config;
using namespace actormq::test::config_text;

// -- HA policy and cluster ------------------------------------------------------------------------

TEST_CASE("config: ha: the default policy is live-only without a cluster") {
    auto result = load_string(one_user, "cfg.toml");
    REQUIRE(result.config);
    CHECK(result.config->ha_policy.kind == ha_kind::live_only);
    CHECK_FALSE(result.config->cluster.enabled);
}

TEST_CASE("config: ha: a shared-store backup with a cluster loads every value") {
    auto result = load_string(ha_file, "ha.toml");
    REQUIRE_MESSAGE(result.errors.empty(), messages(result));
    const auto& c = *result.config;
    CHECK(c.ha_policy.kind == ha_kind::shared_store);
    CHECK(c.ha_policy.role == ha_role::backup);
    CHECK(c.ha_policy.failover_on_shutdown);
    CHECK_FALSE(c.ha_policy.allow_failback);
    CHECK_FALSE(c.ha_policy.restart_backup);
    CHECK(c.ha_policy.lock_poll_interval_ms == 25);
    CHECK(c.cluster.enabled);
    CHECK(c.cluster.user == "ops");
    CHECK(c.cluster.password == "s3cret");
    CHECK(c.cluster.host == "127.0.0.2");
    CHECK(c.cluster.port == 61700);
    CHECK(c.cluster.members == std::vector<std::string>{"127.0.0.1:61701", "10.0.0.5:61700"});
    CHECK(c.cluster.reconnect_interval_ms == 500);
    CHECK(c.cluster.heartbeat_interval_ms == 300);
    CHECK(c.cluster.connection_timeout_ms == 1500);
    CHECK_FALSE(c.web.enabled);
}

TEST_CASE("config: ha: master and slave are aliases of primary and backup") {
    auto master = load_string(std::string{"[ha-policy.shared-store.master]\n"
                                          "failover-on-server-shutdown = true\n"}
                                  + one_user,
                              "cfg.toml");
    REQUIRE_MESSAGE(master.errors.empty(), messages(master));
    CHECK(master.config->ha_policy.role == ha_role::primary);
    CHECK(master.config->ha_policy.failover_on_shutdown);
    auto slave = load_string(std::string{"[ha-policy.shared-store.slave]\n"} + one_user, "c.toml");
    REQUIRE_MESSAGE(slave.errors.empty(), messages(slave));
    CHECK(slave.config->ha_policy.role == ha_role::backup);
    CHECK(slave.config->ha_policy.allow_failback);
    CHECK(slave.config->ha_policy.restart_backup);
}

TEST_CASE("config: ha: every replication key is read, with the reference's names and ranges") {
    auto primary = load_string(std::string{R"(cluster-password = "p"
[ha-policy.replication.primary]
check-for-active-server = false
cluster-name = "c"
group-name = "fish"
initial-replication-sync-timeout = 30000
vote-on-replication-failure = true
quorum-size = -1
vote-retries = 12
vote-retry-wait = 2000
quorum-vote-wait = 30
retry-replication-wait = 2000
)"} + cluster_with_user,
                               "cfg.toml");
    REQUIRE_MESSAGE(primary.errors.empty(), messages(primary));
    const auto& rp = primary.config->ha_policy;
    CHECK(rp.kind == ha_kind::replication);
    CHECK(rp.role == ha_role::primary);
    CHECK(rp.replication.group_name == "fish");
    CHECK(rp.replication.vote_on_replication_failure);
    auto backup = load_string(std::string{R"(cluster-password = "p"
[ha-policy.replication.slave]
group-name = "bird"
max-saved-replicated-journals-size = 2
allow-failback = false
restart-backup = false
quorum-size = 3
)"} + cluster_with_user,
                              "cfg.toml");
    REQUIRE_MESSAGE(backup.errors.empty(), messages(backup));
    CHECK(backup.config->ha_policy.role == ha_role::backup);
    CHECK(backup.config->ha_policy.replication.quorum_size == 3);
    CHECK_FALSE(backup.config->ha_policy.allow_failback);
    // Keys of the other role, out-of-range values and wrong types name file, line and key.
    auto bad = errors_of(std::string{R"(cluster-password = "p"
[ha-policy.replication.backup]
check-for-live-server = true
quorum-size = -2
vote-retry-wait = "soon"
)"} + cluster_with_user);
    REQUIRE(bad.size() == 3);
    CHECK(bad[0].rfind("cfg.toml:3:1: ha-policy.replication.backup.check-for-live-server: "
                       "unknown key",
                       0)
          == 0);
    CHECK(bad[1].rfind("cfg.toml:4:15: ha-policy.replication.backup.quorum-size: must be between "
                       "-1 and 1000",
                       0)
          == 0);
    CHECK(bad[2].rfind("cfg.toml:5:19: ha-policy.replication.backup.vote-retry-wait: expected an "
                       "integer",
                       0)
          == 0);
    auto check =
        load_string(std::string{"cluster-password = \"p\"\n[ha-policy.replication.primary]\n"
                                "check-for-live-server = true\n"}
                        + cluster_with_user,
                    "cfg.toml");
    REQUIRE_MESSAGE(check.errors.empty(), messages(check));
    CHECK(check.config->ha_policy.replication.check_for_live_server);
    // Replication needs the cluster and the journal.
    CHECK(errors_of(std::string{"[ha-policy.replication.primary]\n"} + one_user)
          == std::vector<std::string>{
              "cfg.toml:1:1: ha-policy: ha-policy replication needs a [cluster] table: the "
              "backup finds its live, and the vote its members, through the cluster"});
}

TEST_CASE("config: ha: PAGE with replication is accepted; a paging-directory with colocated is "
          "an error naming file, line and key") {
    // Replication carries the page files (docs/replication.md, "Paging").
    auto result = load_string(std::string{"cluster-password = \"p\"\n"
                                          "[ha-policy.replication.primary]\n"
                                          "[address-settings.\"logs.#\"]\n"
                                          "address-full-policy = \"PAGE\"\n"}
                                  + cluster_with_user,
                              "cfg.toml");
    CHECK_MESSAGE(result.errors.empty(), messages(result));
    // The default paging directory lies inside the journal directory.
    REQUIRE(result.config);
    CHECK(actormq::config::paging_directory_of(result.config->journal) == "data/journal/paging");
    auto colocated = load_string(std::string{"cluster-password = \"p\"\n"
                                             "paging-directory = \"/srv/pages\"\n"
                                             "[ha-policy.colocated]\n"}
                                     + cluster_with_user,
                                 "cfg.toml");
    REQUIRE(colocated.errors.size() == 1);
    CHECK(colocated.errors[0].to_string()
          == "cfg.toml:2:20: paging-directory: cannot be set with ha-policy colocated: each "
             "colocated backup keeps its page files in its own journal directory (leave "
             "paging-directory unset)");
    // The same settings with shared-store are fine: the backup reads the same directory.
    auto shared = load_string(std::string{"[ha-policy.shared-store.primary]\n"
                                          "[address-settings.\"logs.#\"]\n"
                                          "address-full-policy = \"PAGE\"\n"}
                                  + one_user,
                              "cfg.toml");
    CHECK(shared.errors.empty());
}

TEST_CASE("config: ha: errors name file, line and key") {
    auto errors = errors_of(std::string{R"([ha-policy.shared-store.primary]
allow-failback = true
[ha-policy.live-only]
)"} + one_user);
    CHECK(errors
          == std::vector<std::string>{
              "cfg.toml:2:1: ha-policy.shared-store.primary.allow-failback: unknown key",
              "cfg.toml:3:12: ha-policy.live-only: only one of live-only, shared-store, "
              "replication or colocated may be given; 'shared-store' is already"});
    CHECK(errors_of(std::string{"[ha-policy.shared-store.backup]\nrestart-backup = 1\n"} + one_user)
          == std::vector<std::string>{"cfg.toml:2:18: ha-policy.shared-store.backup.restart-backup:"
                                      " expected a boolean, found an integer"});
    CHECK(errors_of(std::string{"[ha-policy.shared-store.leader]\n"} + one_user)
          == std::vector<std::string>{"cfg.toml:1:25: ha-policy.shared-store.leader: unknown role; "
                                      "expected primary (master) or backup (slave)"});
}

TEST_CASE("config: ha: shared-store needs persistence") {
    auto errors = errors_of(std::string{"persistence-enabled = false\n"
                                        "[ha-policy.shared-store.primary]\n"}
                            + one_user);
    CHECK(errors
          == std::vector<std::string>{"cfg.toml:1:23: persistence-enabled: must be true with "
                                      "ha-policy shared-store: the backup takes over from the "
                                      "journal"});
}

TEST_CASE("config: cluster: a password is required and members must be HOST:PORT") {
    auto errors = errors_of(std::string{"[cluster]\nmembers = [\"a:1\", \"nohost\", \":5\", "
                                        "\"b:70000\"]\npassword = \"x\"\n"}
                            + one_user);
    CHECK(errors
          == std::vector<std::string>{
              "cfg.toml:1:1: cluster-password: must be set when [cluster] is present: members "
              "prove who they are with it",
              "cfg.toml:2:19: cluster.members[1]: expected \"HOST:PORT\" with a port 1-65535, "
              "found \"nohost\"",
              "cfg.toml:2:29: cluster.members[2]: expected \"HOST:PORT\" with a port 1-65535, "
              "found \":5\"",
              "cfg.toml:2:35: cluster.members[3]: expected \"HOST:PORT\" with a port 1-65535, "
              "found \"b:70000\"",
              "cfg.toml:3:1: cluster.password: unknown key; did you mean the top-level "
              "'cluster-password'?"});
}

TEST_CASE("config: cluster: the connection timeout must cover two heart-beats") {
    auto errors = errors_of(std::string{"cluster-password = \"p\"\n[cluster]\n"
                                        "heartbeat-interval-ms = 400\n"
                                        "connection-timeout-ms = 500\n"}
                            + one_user);
    CHECK(errors
          == std::vector<std::string>{"cfg.toml:4:25: cluster.connection-timeout-ms: must be at "
                                      "least twice cluster.heartbeat-interval-ms (400), found "
                                      "500"});
}

TEST_CASE("config: ha: colocated takes the reference table's keys with Artemis's defaults and "
          "its primary and backup tables") {
    auto plain = load_string(std::string{"cluster-password = \"p\"\n[ha-policy.colocated]\n"}
                                 + cluster_with_user,
                             "cfg.toml");
    REQUIRE_MESSAGE(plain.errors.empty(), messages(plain));
    const auto& d = plain.config->ha_policy;
    CHECK(d.kind == ha_kind::colocated);
    CHECK_FALSE(d.colocated.request_backup);
    CHECK(d.colocated.max_backups == 1);
    CHECK(d.colocated.backup_request_retries == -1);
    CHECK(d.colocated.backup_request_retry_interval == 5000);
    CHECK(d.colocated.backup_port_offset == 100);
    CHECK(d.colocated.excludes.empty());
    auto full = load_string(std::string{R"(cluster-password = "p"
[ha-policy.colocated]
request-backup = true
max-backups = 3
backup-request-retries = 4
backup-request-retry-interval = 250
backup-port-offset = 10
excludes = ["stomp"]
[ha-policy.colocated.primary]
group-name = "g"
[ha-policy.colocated.slave]
quorum-size = 2
allow-failback = false
)"} + cluster_with_user,
                            "cfg.toml");
    REQUIRE_MESSAGE(full.errors.empty(), messages(full));
    const auto& c = full.config->ha_policy;
    CHECK(c.colocated.request_backup);
    CHECK(c.colocated.max_backups == 3);
    CHECK(c.colocated.backup_request_retries == 4);
    CHECK(c.colocated.backup_request_retry_interval == 250);
    CHECK(c.colocated.backup_port_offset == 10);
    CHECK(c.colocated.excludes == std::vector<std::string>{"stomp"});
    CHECK(c.replication.group_name == "g");
    CHECK(c.colocated.backup.quorum_size == 2);
    CHECK_FALSE(c.colocated.backup_allow_failback);
    CHECK(c.replication.quorum_size == -1); // the backup table does not touch the primary's
}

TEST_CASE("config: ha: colocated errors name file, line and key") {
    auto bad = errors_of(std::string{R"(cluster-password = "p"
[ha-policy.colocated]
max-backups = -1
backup-port-offset = "x"
request-backups = true
[ha-policy.colocated.backup]
check-for-live-server = true
)"} + cluster_with_user);
    REQUIRE(bad.size() == 4);
    CHECK(
        bad[0].rfind("cfg.toml:3:15: ha-policy.colocated.max-backups: must be between 0 and 100", 0)
        == 0);
    CHECK(bad[1].rfind("cfg.toml:4:22: ha-policy.colocated.backup-port-offset: expected an "
                       "integer",
                       0)
          == 0);
    CHECK(bad[2].rfind("cfg.toml:5:1: ha-policy.colocated.request-backups: unknown key", 0) == 0);
    CHECK(bad[3].rfind("cfg.toml:7:1: ha-policy.colocated.backup.check-for-live-server: unknown "
                       "key",
                       0)
          == 0);
    CHECK(errors_of(std::string{"[ha-policy.colocated]\n"} + one_user)
          == std::vector<std::string>{
              "cfg.toml:1:1: ha-policy: ha-policy colocated needs a [cluster] table: backups are "
              "asked for, and run, through the cluster"});
}

TEST_CASE("config: ha: colocated store = \"shared-store\": its primary and backup tables take "
          "the shared-store keys, in any order of the file") {
    auto plain = load_string(std::string{"cluster-password = \"p\"\n[ha-policy.colocated]\n"}
                                 + cluster_with_user,
                             "cfg.toml");
    REQUIRE_MESSAGE(plain.errors.empty(), messages(plain));
    CHECK(plain.config->ha_policy.colocated.store == colocated_store::replication);
    auto full = load_string(std::string{R"(cluster-password = "p"
paging-directory = "/shared/paging"
[ha-policy]
colocated.primary.failover-on-shutdown = true
colocated.primary.lock-poll-interval-ms = 20
colocated.store = "shared-store"
colocated.request-backup = true
[ha-policy.colocated.backup]
allow-failback = false
restart-backup = false
failover-on-server-shutdown = true
lock-poll-interval-ms = 30
)"} + cluster_with_user,
                            "cfg.toml");
    REQUIRE_MESSAGE(full.errors.empty(), messages(full));
    const auto& c = full.config->ha_policy;
    CHECK(c.kind == ha_kind::colocated);
    CHECK(c.colocated.store == colocated_store::shared_store);
    CHECK(c.colocated.request_backup);
    CHECK(c.failover_on_shutdown);
    CHECK(c.lock_poll_interval_ms == 20);
    CHECK_FALSE(c.colocated.backup_allow_failback);
    CHECK_FALSE(c.colocated.backup_restart_backup);
    CHECK(c.colocated.backup_failover_on_shutdown);
    CHECK(c.colocated.backup_lock_poll_interval_ms == 30);
    // A shared-store pair shares the paging directory too, so it may be set.
    CHECK(full.config->journal.paging_directory == "/shared/paging");
}

TEST_CASE("config: ha: colocated store errors name file, line and key; a role table rejects the "
          "other store's keys") {
    CHECK(errors_of(std::string{"cluster-password = \"p\"\n[ha-policy.colocated]\n"
                                "store = \"shared\"\n"}
                    + cluster_with_user)
          == std::vector<std::string>{"cfg.toml:3:9: ha-policy.colocated.store: unknown store "
                                      "'shared'; expected \"replication\" or \"shared-store\""});
    auto shared = errors_of(std::string{R"(cluster-password = "p"
[ha-policy.colocated]
store = "shared-store"
[ha-policy.colocated.primary]
check-for-live-server = true
[ha-policy.colocated.backup]
vote-retry-wait = 100
lock-poll-intervall-ms = 5
scale-down = {}
)"} + cluster_with_user);
    REQUIRE(shared.size() == 4);
    CHECK(shared[0]
          == "cfg.toml:5:1: ha-policy.colocated.primary.check-for-live-server: a replication "
             "key, but this colocated pair uses store = \"shared-store\"");
    CHECK(shared[1]
          == "cfg.toml:7:1: ha-policy.colocated.backup.vote-retry-wait: a replication key, but "
             "this colocated pair uses store = \"shared-store\"");
    CHECK(shared[2].rfind("cfg.toml:8:1: ha-policy.colocated.backup.lock-poll-intervall-ms: "
                          "unknown key; did you mean 'lock-poll-interval-ms'?",
                          0)
          == 0);
    CHECK(shared[3].rfind("cfg.toml:9:1: ha-policy.colocated.backup.scale-down: scale-down is "
                          "not supported for colocated backups yet",
                          0)
          == 0);
    CHECK(errors_of(std::string{"cluster-password = \"p\"\n[ha-policy.colocated.primary]\n"
                                "lock-poll-interval-ms = 5\n"}
                    + cluster_with_user)
          == std::vector<std::string>{
              "cfg.toml:3:1: ha-policy.colocated.primary.lock-poll-interval-ms: a shared-store "
              "key, but this colocated pair uses store = \"replication\""});
}

// -- scale-down (docs/ha.md, "Scale-down") --------------------------------------------------------

TEST_CASE("config: ha: scale-down is off by default; a live-only scale-down table turns it on "
          "with its keys") {
    auto plain =
        load_string(std::string{"cluster-password = \"p\"\n"} + cluster_with_user, "cfg.toml");
    REQUIRE_MESSAGE(plain.errors.empty(), messages(plain));
    const auto& d = plain.config->ha_policy.scale_down;
    CHECK_FALSE(d.enabled);
    CHECK(d.connectors.empty());
    CHECK(d.group_name.empty());
    CHECK(d.batch_messages == 1000);
    CHECK(d.batch_timeout_ms == 30000);
    auto full = load_string(std::string{R"(cluster-password = "p"
[ha-policy.live-only.scale-down]
connectors = ["127.0.0.1:7001", "10.0.0.2:7001"]
group-name = "blue"
batch-messages = 50
batch-timeout-ms = 2000
)"} + cluster_with_user,
                            "cfg.toml");
    REQUIRE_MESSAGE(full.errors.empty(), messages(full));
    const auto& c = full.config->ha_policy;
    CHECK(c.kind == ha_kind::live_only);
    CHECK(c.scale_down.enabled);
    CHECK(c.scale_down.connectors == std::vector<std::string>{"127.0.0.1:7001", "10.0.0.2:7001"});
    CHECK(c.scale_down.group_name == "blue");
    CHECK(c.scale_down.batch_messages == 50);
    CHECK(c.scale_down.batch_timeout_ms == 2000);
    auto off = load_string(std::string{"cluster-password = \"p\"\n"
                                       "[ha-policy.live-only.scale-down]\nenabled = false\n"}
                               + cluster_with_user,
                           "cfg.toml");
    REQUIRE_MESSAGE(off.errors.empty(), messages(off));
    CHECK_FALSE(off.config->ha_policy.scale_down.enabled);
}

TEST_CASE("config: ha: a shared-store or replication backup takes scale-down; a primary does "
          "not") {
    auto shared = load_string(std::string{"cluster-password = \"p\"\n"
                                          "[ha-policy.shared-store.slave.scale-down]\n"
                                          "group-name = \"g\"\n"}
                                  + cluster_with_user,
                              "cfg.toml");
    REQUIRE_MESSAGE(shared.errors.empty(), messages(shared));
    CHECK(shared.config->ha_policy.role == ha_role::backup);
    CHECK(shared.config->ha_policy.scale_down.enabled);
    CHECK(shared.config->ha_policy.scale_down.group_name == "g");
    auto repl = load_string(std::string{"cluster-password = \"p\"\n"
                                        "[ha-policy.replication.backup.scale-down]\n"}
                                + cluster_with_user,
                            "cfg.toml");
    REQUIRE_MESSAGE(repl.errors.empty(), messages(repl));
    CHECK(repl.config->ha_policy.scale_down.enabled);
    auto primary = errors_of(std::string{"cluster-password = \"p\"\n"
                                         "[ha-policy.shared-store.primary.scale-down]\n"}
                             + cluster_with_user);
    REQUIRE(primary.size() == 1);
    INFO(primary[0]);
    CHECK(
        primary[0].rfind("cfg.toml:2:33: ha-policy.shared-store.primary.scale-down: unknown key", 0)
        == 0);
}

TEST_CASE("config: ha: scale-down errors name file, line and key") {
    auto bad = errors_of(std::string{R"(cluster-password = "p"
[ha-policy.live-only.scale-down]
connectors = ["nohost"]
batch-messages = 0
group = "x"
)"} + cluster_with_user);
    REQUIRE(bad.size() == 3);
    CHECK(bad[0].rfind("cfg.toml:3:15: ha-policy.live-only.scale-down.connectors[0]: expected "
                       "\"HOST:PORT\"",
                       0)
          == 0);
    CHECK(bad[1].rfind("cfg.toml:4:18: ha-policy.live-only.scale-down.batch-messages: must be "
                       "between 1 and 100000",
                       0)
          == 0);
    CHECK(bad[2].rfind("cfg.toml:5:1: ha-policy.live-only.scale-down.group: unknown key", 0) == 0);
    CHECK(errors_of(std::string{"[ha-policy.live-only.scale-down]\n"} + one_user)
          == std::vector<std::string>{
              "cfg.toml:1:1: ha-policy: scale-down needs a [cluster] table: the messages go to "
              "another live through the cluster"});
    auto colocated = errors_of(std::string{R"(cluster-password = "p"
persistence-enabled = true
[ha-policy.colocated.backup.scale-down]
)"} + cluster_with_user);
    REQUIRE(colocated.size() == 1);
    CHECK(colocated[0].find("scale-down is not supported for colocated backups yet")
          != std::string::npos);
}

TEST_CASE("config: docs: every scale-down key has a row in docs/configuration.md") {
    std::ifstream in(ACTORMQ_SOURCE_DIR "/docs/configuration.md");
    REQUIRE(in.good());
    std::stringstream docs;
    docs << in.rdbuf();
    auto text = docs.str();
    auto start = text.find("### `[ha-policy.live-only.scale-down]`");
    REQUIRE(start != std::string::npos);
    auto section = text.substr(start, text.find("\n#", start + 1) - start);
    for (const char* key :
         {"enabled", "connectors", "group-name", "batch-messages", "batch-timeout-ms"}) {
        INFO("key: " << key);
        CHECK(section.find("| `" + std::string{key} + "` |") != std::string::npos);
    }
}
