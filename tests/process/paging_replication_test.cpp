// SPDX-License-Identifier: Apache-2.0
// Paging on a replicated pair (docs/replication.md, "Paging"): the live's page files, their
// creation and deletion and the page cursor reach the backup with the journal's records, in
// the initial sync and in the stream, so a backup that takes over (or a primary that fails
// back) serves the paged backlog: every confirmed message exactly once, in order.
#include "support/cluster_nodes.hpp"
#include "support/failover_producer.hpp"
#include "support/process_fixture.hpp"

#include <csignal>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <vector>

namespace actormq::test {

namespace {

/// A pair member that pages every address past about 24 messages of 1 KiB, into 64 KiB page
/// files (so a backlog of a few hundred spans several files and page-in deletes some), with
/// small journal segments.
std::string paging_node(const std::string& members, const std::string& policy) {
    return cluster_node(members, policy, small_paging);
}

/// The page files of `address` in the node directory `dir` (default paging directory).
std::set<std::string> page_files(const std::string& dir, const std::string& address) {
    std::set<std::string> out;
    std::error_code ec;
    for (const auto& e :
         std::filesystem::directory_iterator(dir + "/journal/paging/" + address, ec)) {
        auto name = e.path().filename().string();
        if (name.rfind("page-", 0) == 0) {
            out.insert(name);
        }
    }
    return out;
}

/// The number in "m123" (the producer's bodies, padding cut off).
long number_of(const std::string& body) {
    return std::stol(body.substr(1));
}

/// Takes `n` messages from a client-individual subscription, acking each with a receipt, so
/// each ack is confirmed when this returns.
std::vector<std::string> take_acked(stomp_client& c, size_t n) {
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) {
        auto m = expect_message(c, in(std::chrono::seconds(30)));
        stomp::frame ack;
        ack.cmd = command::ack;
        ack.add("id", *m.find("ack"));
        REQUIRE(c.send_with_receipt(ack));
        out.push_back(m.body.substr(0, m.body.find(' ')));
    }
    return out;
}

/// Everything left on `dest` at `port`, in delivery order (an end marker sent after
/// subscribing comes after the paged backlog).
std::vector<std::string> drain(uint16_t port, const std::string& dest) {
    stomp_client c;
    REQUIRE(c.connect_tcp(port));
    REQUIRE(c.connect_stomp("guest", "guest").cmd == command::connected);
    subscribe(c, dest, "d", "client-individual", {{"prefetch-count", "50"}});
    REQUIRE(send_durable(c, dest, "end"));
    std::vector<std::string> out;
    for (;;) {
        auto m = expect_message(c, in(std::chrono::seconds(30)));
        c.send(command::ack, {{"id", *m.find("ack")}});
        auto body = m.body.substr(0, m.body.find(' '));
        if (body == "end") {
            break;
        }
        out.push_back(body);
    }
    REQUIRE(c.receipt_barrier());
    return out;
}

/// `taken` then `rest` hold every confirmed message exactly once, nothing unconfirmed twice,
/// and in the order they were sent (one producer: its numbers only grow).
void check_once_in_order(const std::set<std::string>& confirmed,
                         const std::vector<std::string>& taken,
                         const std::vector<std::string>& rest) {
    std::vector<std::string> all = taken;
    all.insert(all.end(), rest.begin(), rest.end());
    std::map<std::string, int> seen;
    for (const auto& b : all) {
        ++seen[b];
    }
    for (const auto& b : confirmed) {
        CHECK_MESSAGE(seen[b] == 1, b, " arrived ", seen[b], " times");
    }
    for (const auto& [b, n] : seen) {
        CHECK_MESSAGE(n == 1, b, " arrived ", n, " times");
    }
    for (size_t i = 1; i < all.size(); ++i) {
        CHECK_MESSAGE(number_of(all[i - 1]) < number_of(all[i]), all[i - 1], " before ", all[i]);
    }
}

} // namespace

TEST_CASE("paging replication: SIGKILL of the live while an address pages under a slow "
          "consumer: the backup serves the paged backlog, every confirmed message once, in "
          "order") {
    ACTORMQ_START_NODE(live, paging_node("", replication("primary")), {"name=\"live\""});
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(live.port()); }));
    ACTORMQ_START_NODE(backup, paging_node(cluster_item(live), replication("backup")),
                       {"name=\"backup\""});
    REQUIRE(log_shows(live, "replication_in_sync backup=backup"));
    producer p("/queue/pr", {live.port(), backup.port()}, "m", 1000);
    stomp_client slow;
    login(slow, live);
    subscribe(slow, "/queue/pr", "s", "client-individual", {{"prefetch-count", "5"}});
    std::vector<std::string> taken;
    // The consumer takes 10 for every 30 or so the producer sends: the backlog grows into
    // the page files, and page-in moves the cursor and deletes files meanwhile.
    for (int round = 0; round < 8; ++round) {
        REQUIRE(p.wait_more(30));
        auto part = take_acked(slow, 10);
        taken.insert(taken.end(), part.begin(), part.end());
    }
    REQUIRE(log_shows(live, "address_paging address=pr"));
    // The backup's disk holds the live's page files, written through the stream.
    REQUIRE(wait_until(soon(), [&] {
        auto mine = page_files(live.dir(), "pr");
        return !mine.empty() && page_files(backup.dir(), "pr") == mine;
    }));
    REQUIRE(p.wait_more(50));
    live.kill(SIGKILL);
    REQUIRE(live.wait_exit(soon()).has_value());
    REQUIRE(log_shows(backup, "replication_live node_id="));
    CHECK(log_shows(backup, "address_paging address=pr resumed=true"));
    REQUIRE(p.wait_more(30));
    p.stop();
    check_once_in_order(p.confirmed(), taken, drain(backup.port(), "/queue/pr"));
}

TEST_CASE("paging replication: a backup that joins while the live has page files copies them in "
          "the initial sync and takes over with the whole backlog") {
    ACTORMQ_START_NODE(live, paging_node("", replication("primary")), {"name=\"live\""});
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(live.port()); }));
    producer p("/queue/pj", {live.port()}, "m", 1000);
    // About 300 KiB paged: five page files before the backup exists.
    REQUIRE(p.wait_more(300));
    REQUIRE(page_files(live.dir(), "pj").size() >= 3);
    std::optional<node_process> backup;
    backup.emplace(paging_node(cluster_item(live), replication("backup")),
                   std::vector<std::string>{"name=\"backup\""});
    REQUIRE(backup->wait_ready(soon()));
    INFO("backup:\n", backup->log_tail());
    REQUIRE(log_shows(live, "replication_in_sync backup=backup"));
    // The files the sync copied, and those written since, are on the backup's disk.
    REQUIRE(wait_until(
        soon(), [&] { return page_files(backup->dir(), "pj") == page_files(live.dir(), "pj"); }));
    REQUIRE(p.wait_more(50));
    live.kill(SIGKILL);
    REQUIRE(live.wait_exit(soon()).has_value());
    REQUIRE(log_shows(*backup, "replication_live node_id="));
    p.stop();
    auto rest = drain(backup->port(), "/queue/pj");
    CHECK(rest.size() >= 350);
    check_once_in_order(p.confirmed(), {}, rest);
}

TEST_CASE("paging replication: failback: the primary syncs the paged backlog from the backup "
          "that took over, takes its node id back and serves every confirmed message once, in "
          "order") {
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
    a.emplace(paging_node("", primary), a_sets(0));
    REQUIRE(a->wait_ready(soon()));
    auto a_port = a->port();
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(a_port); }));
    ACTORMQ_START_NODE(b, paging_node(cluster_item(*a), replication("backup")),
                       {"name=\"backup\""});
    REQUIRE(log_shows(b, "replication_in_sync"));
    producer p("/queue/pf", {a_port, b.port()}, "m", 1000);
    REQUIRE(p.wait_more(100));
    REQUIRE(log_shows(*a, "address_paging address=pf"));
    a->kill(SIGKILL);
    REQUIRE(a->wait_exit(soon()).has_value());
    REQUIRE(log_shows(b, "replication_live node_id="));
    // The backup that took over pages too (its own page files, replicated from now on).
    REQUIRE(p.wait_more(100));
    a.reset();
    a.emplace(paging_node(cluster_item(b), primary), a_sets(a_port));
    REQUIRE(a->wait_ready(soon()));
    INFO("restarted primary:\n", a->log_tail(), "\nbackup:\n", b.log_tail());
    REQUIRE(log_shows(*a, "replication_found_served"));
    REQUIRE(log_shows(*a, "replication_live node_id="));
    CHECK(a->log_text().find("detail=\"failback\"") != std::string::npos);
    CHECK(log_shows(*a, "address_paging address=pf resumed=true"));
    REQUIRE(wait_until(soon(), [&] { return stomp_serves(a_port); }));
    REQUIRE(p.wait_more(50));
    p.stop();
    auto rest = drain(a_port, "/queue/pf");
    CHECK(rest.size() >= 250);
    check_once_in_order(p.confirmed(), {}, rest);
    // The primary's old journal went aside with its page files.
    CHECK(std::filesystem::exists(a_dir.path + "/j/oldreplica.1/paging"));
}

} // namespace actormq::test
