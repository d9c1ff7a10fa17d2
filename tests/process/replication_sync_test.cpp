// SPDX-License-Identifier: Apache-2.0
// The initial sync of a replicating backup (docs/replication.md, "The initial sync"): while the
// snapshot is copied the backup acknowledges what it wrote without syncing it, so the live's
// window moves on; only the batch that completes the sync is acknowledged after everything
// is on the backup's disk. A live lost with chunks in flight leaves a partial copy that the
// backup never serves; the next pairing copies the whole journal again.
#include "support/cluster_nodes.hpp"
#include "support/failover_producer.hpp"
#include "support/process_fixture.hpp"

#include <csignal>
#include <map>
#include <optional>
#include <set>

namespace actormq::test {

namespace {

/// A pair member that pages every address past about 24 messages of 1 KiB into 64 KiB page
/// files (as the crash harness's --paging does), so the sync copies hundreds of page files.
std::string syncing_node(const std::string& members, const std::string& policy) {
    return cluster_node(members, policy, small_paging);
}

/// Everything on `dest` at `port`: how often each body (padding cut off) arrived.
std::map<std::string, int> drain(uint16_t port, const std::string& dest) {
    stomp_client c;
    REQUIRE(c.connect_tcp(port));
    REQUIRE(c.connect_stomp("guest", "guest").cmd == command::connected);
    subscribe(c, dest, "d", "client-individual", {{"prefetch-count", "50"}});
    REQUIRE(send_durable(c, dest, "end"));
    std::map<std::string, int> seen;
    for (;;) {
        auto m = expect_message(c, in(std::chrono::seconds(30)));
        c.send(command::ack, {{"id", *m.find("ack")}});
        auto body = m.body.substr(0, m.body.find(' '));
        if (body == "end") {
            break;
        }
        ++seen[body];
    }
    return seen;
}

} // namespace

TEST_CASE("replication sync: SIGKILL of the live with sync chunks in flight: the backup never "
          "serves the partial copy, syncs the whole journal from the restarted live and then "
          "takes over with every confirmed message once") {
    temp_dir live_dir;
    auto live_sets = [&](uint16_t port) {
        std::vector<std::string> sets{"name=\"live\"", "journal-directory=" + live_dir.path + "/j"};
        if (port != 0) {
            sets.push_back("acceptors.stomp.port=" + std::to_string(port));
        }
        return sets;
    };
    const std::string primary = replication("primary");
    std::optional<node_process> live;
    live.emplace(syncing_node("", primary), live_sets(0));
    REQUIRE(live->wait_ready(soon()));
    auto live_port = live->port();
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(live_port); }));
    // About 40 MiB of 32 KiB messages, nearly all paged: the copy takes more than twice the
    // live's 16 MiB window, so it waits for acknowledgements while chunks are in flight.
    std::set<std::string> confirmed;
    {
        producer p("/queue/sync", {live_port}, "m", 32 * 1024);
        REQUIRE(p.wait_more(1250, in(std::chrono::seconds(120))));
        p.stop();
        confirmed = p.confirmed();
    }
    ACTORMQ_START_NODE(backup, syncing_node(cluster_item(*live), replication("backup")),
                       {"name=\"backup\""});
    // Frozen as soon as it syncs (paired, its replica writing the first chunks): the live has
    // a window of chunks on their way, and the rest of the snapshot waits for acknowledgements.
    REQUIRE(log_shows(backup, "replication_syncing"));
    backup.kill(SIGSTOP);
    INFO("live:\n", live->log_tail(), "\nbackup:\n", backup.log_tail());
    REQUIRE_MESSAGE(backup.log_text().find("replica_in_sync") == std::string::npos,
                    "the sync completed before the backup was stopped: nothing was in flight");
    live->kill(SIGKILL);
    REQUIRE(live->wait_exit(soon()).has_value());
    backup.kill(SIGCONT);
    // The backup sees the live gone, with part of the journal: it starts over, never serves.
    REQUIRE(log_shows(backup, "replication_live_lost"));
    REQUIRE(log_shows(backup, "the live was lost before the sync completed"));
    CHECK(backup.log_text().find("detail=\"not-in-sync\"") != std::string::npos);
    CHECK(backup.log_text().find("replication_live node_id=") == std::string::npos);
    CHECK(backup.log_text().find("replica_in_sync") == std::string::npos);
    CHECK_FALSE(stomp_serves(backup.port()));
    // The live back on its journal: the backup pairs again and copies all of it, this time to
    // the end (its first and only completed sync).
    live.reset();
    live.emplace(syncing_node(cluster_item(backup), primary), live_sets(live_port));
    REQUIRE(live->wait_ready(soon()));
    REQUIRE(log_shows(*live, "replication_in_sync backup=backup"));
    REQUIRE(log_shows(backup, "replica_in_sync"));
    CHECK_FALSE(stomp_serves(backup.port()));
    // Then the live goes for good: the backup serves what the second sync copied.
    live->kill(SIGKILL);
    REQUIRE(live->wait_exit(soon()).has_value());
    REQUIRE(log_shows(backup, "replication_live node_id="));
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(backup.port()); }));
    auto seen = drain(backup.port(), "/queue/sync");
    CHECK(seen.size() >= 1250);
    for (const auto& body : confirmed) {
        auto it = seen.find(body);
        CHECK_MESSAGE((it != seen.end() && it->second == 1), body, " arrived ",
                      it == seen.end() ? 0 : it->second, " times");
    }
    for (const auto& [body, n] : seen) {
        CHECK_MESSAGE(n == 1, body, " arrived ", n, " times");
    }
}

} // namespace actormq::test
