// SPDX-License-Identifier: Apache-2.0
// Paging seen from outside (docs/journal.md, "Paging"): an address with
// address-full-policy = "PAGE" past max-size-bytes writes new messages to page files and reads
// them back in order; what was confirmed survives SIGKILL exactly once.
#include "support/failover_producer.hpp"
#include "support/process_fixture.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

using namespace actormq;
using namespace actormq::test;

namespace {

/// About 20 messages of `pad()` fit in memory; the rest is paged (64 KiB page files, so a few
/// hundred messages span several files).
std::string paging_config(const std::string& top = "") {
    return node_config("", small_paging, top);
}

/// Puts the page files in the test's directory, beside the journal the harness puts there.
std::vector<std::string> paging_sets(const std::string& dir) {
    return {"paging-directory=" + dir + "/paging"};
}

/// A header that makes every message about 1 KiB.
header_list padded(bool persistent = true, header_list extra = {}) {
    extra.push_back({"pad", std::string(1000, 'p')});
    if (persistent) {
        extra.push_back({"persistent", "true"});
    }
    return extra;
}

/// Sends PREFIX<i> for i in [from, to) with receipts.
void send_range(stomp_client& c,
                const std::string& dest,
                const std::string& prefix,
                size_t from,
                size_t to,
                bool persistent = true) {
    for (size_t i = from; i < to; ++i) {
        send_routed(c, dest, prefix + std::to_string(i), padded(persistent));
    }
}

std::vector<std::string> range(const std::string& prefix, size_t from, size_t to) {
    std::vector<std::string> out;
    for (size_t i = from; i < to; ++i) {
        out.push_back(prefix + std::to_string(i));
    }
    return out;
}

/// The page files of `address` under the node directory `dir`.
size_t page_files(const std::string& dir, const std::string& address) {
    size_t n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir + "/paging/" + address, ec)) {
        n += e.path().filename().string().rfind("page-", 0) == 0 ? 1 : 0;
    }
    return n;
}

/// Receives `n` messages on a client-individual subscription, acking each with a receipt (so
/// each ack is durable when this returns).
std::vector<std::string> take_acked(stomp_client& c, size_t n) {
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) {
        auto m = expect_message(c);
        stomp::frame ack;
        ack.cmd = command::ack;
        ack.add("id", *m.find("ack"));
        REQUIRE(c.send_with_receipt(ack));
        out.push_back(m.body);
    }
    return out;
}

/// Everything left on `dest`, acked: an end marker sent after subscribing comes last, since
/// paged messages come after those in memory and the marker after both.
std::vector<std::string> drain(const node_process& node, const std::string& dest) {
    return drain_queue(node, dest, {{"prefetch-count", "50"}}, padded(), std::chrono::seconds(30));
}

void kill9(node_process& node) {
    node.kill(SIGKILL);
    REQUIRE(node.wait_exit(soon()).has_value());
}

} // namespace

TEST_CASE("paging: past max-size-bytes messages go to page files and come back in order") {
    temp_dir d;
    node_process node{node_placement{d.path, "node.log"}, paging_config(), paging_sets(d.path)};
    REQUIRE(node.wait_ready(soon()));
    stomp_client c;
    login(c, node);
    send_range(c, "/queue/pg", "m", 0, 300);
    CHECK(log_shows(node, "address_paging address=pg"));
    CHECK_MESSAGE(page_files(d.path, "pg") >= 3, page_files(d.path, "pg"), " page files");
    auto got = drain(node, "/queue/pg");
    CHECK(got == range("m", 0, 300));
    // Read back whole: the address leaves paging and the files it passed are deleted.
    CHECK(log_shows(node, "address_paging_done address=pg"));
    CHECK(page_files(d.path, "pg") <= 1);
    // Not paging any more: the next messages go to memory and are delivered as before.
    send_range(c, "/queue/pg", "n", 0, 5);
    CHECK(drain(node, "/queue/pg") == range("n", 0, 5));
}

TEST_CASE("paging: a slow consumer catches up while the producer keeps paging") {
    temp_dir d;
    node_process node{node_placement{d.path, "node.log"}, paging_config(), paging_sets(d.path)};
    REQUIRE(node.wait_ready(soon()));
    stomp_client producer;
    login(producer, node);
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/slow", "s", "client-individual", {{"prefetch-count", "5"}});
    std::vector<std::string> got;
    // The producer sends 30 for every 10 the consumer takes, so the backlog grows into the
    // page files; then the consumer takes the rest.
    for (size_t round = 0; round < 20; ++round) {
        send_range(producer, "/queue/slow", "m", round * 30, round * 30 + 30);
        auto part = take_acked(consumer, 10);
        got.insert(got.end(), part.begin(), part.end());
    }
    CHECK(log_shows(node, "address_paging address=slow"));
    auto rest = take_acked(consumer, 600 - got.size());
    got.insert(got.end(), rest.begin(), rest.end());
    CHECK(got == range("m", 0, 600));
    CHECK(log_shows(node, "address_paging_done address=slow"));
}

TEST_CASE("paging: SIGKILL while paging: nothing confirmed is lost or delivered twice") {
    temp_dir d;
    {
        node_process node{node_placement{d.path, "node-1.log"}, paging_config(),
                          paging_sets(d.path)};
        REQUIRE(node.wait_ready(soon()));
        stomp_client c;
        login(c, node);
        send_range(c, "/queue/k", "m", 0, 400);
        send_range(c, "/queue/k", "n", 0, 10, false); // non-persistent: gone after a restart
        REQUIRE(page_files(d.path, "k") >= 3);
        subscribe(c, "/queue/k", "s", "client-individual", {{"prefetch-count", "10"}});
        // Past the in-memory part, into what was paged back in.
        CHECK(take_acked(c, 150) == range("m", 0, 150));
        kill9(node);
    }
    {
        node_process node{node_placement{d.path, "node-2.log"}, paging_config(),
                          paging_sets(d.path)};
        REQUIRE(node.wait_ready(soon()));
        stomp_client c;
        login(c, node);
        subscribe(c, "/queue/k", "s", "client-individual", {{"prefetch-count", "10"}});
        CHECK(take_acked(c, 100) == range("m", 150, 250));
        kill9(node);
    }
    node_process node{node_placement{d.path, "node-3.log"}, paging_config(), paging_sets(d.path)};
    REQUIRE(node.wait_ready(soon()));
    INFO(node.log_tail());
    CHECK(drain(node, "/queue/k") == range("m", 250, 400));
}

TEST_CASE("paging: duplicate ids and transactions across the page boundary, also after SIGKILL") {
    temp_dir d;
    auto dup = [](const std::string& id) {
        return padded(true, {{"_AMQ_DUPL_ID", id}});
    };
    {
        node_process node{node_placement{d.path, "node-1.log"}, paging_config(),
                          paging_sets(d.path)};
        REQUIRE(node.wait_ready(soon()));
        stomp_client c;
        login(c, node);
        send_range(c, "/queue/tx", "m", 0, 60); // the address pages from about the 20th on
        REQUIRE(log_shows(node, "address_paging address=tx"));
        send_routed(c, "/queue/tx", "dup-a", dup("id-a"));       // paged
        send_routed(c, "/queue/tx", "dup-a-again", dup("id-a")); // a duplicate: dropped
        c.send(command::begin, {{"transaction", "t1"}});
        for (int i = 0; i < 5; ++i) {
            c.send(command::send,
                   {{"destination", "/queue/tx"},
                    {"transaction", "t1"},
                    {"persistent", "true"},
                    {"pad", std::string(1000, 'p')}},
                   "tx" + std::to_string(i));
        }
        stomp::frame commit;
        commit.cmd = command::commit;
        commit.add("transaction", "t1");
        REQUIRE(c.send_with_receipt(commit));
        send_range(c, "/queue/tx", "m", 60, 80);
        kill9(node);
    }
    node_process node{node_placement{d.path, "node-2.log"}, paging_config(), paging_sets(d.path)};
    REQUIRE(node.wait_ready(soon()));
    stomp_client c;
    login(c, node);
    send_routed(c, "/queue/tx", "dup-a-after-restart", dup("id-a")); // still a duplicate
    auto got = drain(node, "/queue/tx");
    std::map<std::string, int> seen;
    for (const auto& b : got) {
        ++seen[b];
    }
    auto expected = range("m", 0, 80);
    expected.push_back("dup-a");
    for (int i = 0; i < 5; ++i) {
        expected.push_back("tx" + std::to_string(i));
    }
    CHECK(got.size() == expected.size());
    for (const auto& b : expected) {
        CHECK_MESSAGE(seen[b] == 1, b, " arrived ", seen[b], " times");
    }
    // The non-transactional messages keep their order (the transaction is delivered from
    // memory, docs/journal.md "Paging").
    std::vector<std::string> plain;
    for (const auto& b : got) {
        if (b[0] == 'm' || b == "dup-a") {
            plain.push_back(b);
        }
    }
    auto order = range("m", 0, 60);
    order.push_back("dup-a");
    auto tail = range("m", 60, 80);
    order.insert(order.end(), tail.begin(), tail.end());
    CHECK(plain == order);
}

TEST_CASE("paging: a shared-store backup serves the paged messages after the live is killed") {
    temp_dir store;
    auto sets = std::vector<std::string>{"journal-directory=" + store.path + "/journal",
                                         "paging-directory=" + store.path + "/paging"};
    node_process live{paging_config("[ha-policy.shared-store.primary]\n"), sets};
    REQUIRE(live.wait_ready(soon()));
    REQUIRE(wait_until(soon(), [&] {
        stomp_client probe;
        return probe.connect_tcp(live.port());
    }));
    {
        stomp_client c;
        login(c, live);
        send_range(c, "/queue/ha", "m", 0, 200);
    }
    REQUIRE(log_shows(live, "address_paging address=ha"));
    node_process backup{paging_config("[ha-policy.shared-store.backup]\n"), sets};
    REQUIRE(backup.wait_ready(soon()));
    REQUIRE(log_shows(backup, "ha_waiting_for_live"));
    kill9(live);
    REQUIRE(log_shows(backup, "ha_live"));
    REQUIRE(wait_until(soon(), [&] {
        stomp_client probe;
        return probe.connect_tcp(backup.port());
    }));
    INFO(backup.log_tail());
    CHECK(drain(backup, "/queue/ha") == range("m", 0, 200));
}

TEST_CASE("paging: five SIGKILLs under a producer: every confirmed message once, in order") {
    temp_dir d;
    auto start = [&](int i, uint16_t port) {
        auto sets = paging_sets(d.path);
        if (port != 0) {
            sets.push_back("acceptors.stomp.port=" + std::to_string(port));
        }
        auto node = std::make_unique<node_process>(
            node_placement{d.path, "node-" + std::to_string(i) + ".log"}, paging_config(), sets);
        REQUIRE(node->wait_ready(soon()));
        return node;
    };
    auto node = start(0, 0);
    uint16_t port = node->port();
    // Duplicate ids and resends after each kill; about 1 KiB each, so most of it is paged.
    producer p("/queue/crash", {port}, "m", 1000);
    for (int i = 1; i <= 5; ++i) {
        REQUIRE_MESSAGE(p.wait_more(120), "only ", p.count(), " confirmed");
        kill9(*node);
        node = start(i, port);
    }
    REQUIRE(p.wait_more(50));
    p.stop();
    CHECK(log_shows(*node, "address_paging address=crash"));
    auto confirmed = p.confirmed();
    auto got = drain(*node, "/queue/crash");
    std::map<std::string, int> seen;
    long last = -1;
    bool ordered = true;
    for (auto b : got) {
        b.erase(b.find_last_not_of(' ') + 1);
        ++seen[b];
        long n = std::stol(b.substr(1));
        ordered = ordered && n > last;
        last = n;
    }
    for (const auto& b : confirmed) {
        CHECK_MESSAGE(seen[b] == 1, b, " arrived ", seen[b], " times");
    }
    for (const auto& [b, n] : seen) {
        CHECK_MESSAGE(n == 1, b, " arrived ", n, " times");
    }
    CHECK(ordered);
}

TEST_CASE("paging: a paging-directory that cannot be listed stops a restart with recovered "
          "messages, naming it") {
    temp_dir d;
    // A file where the paging directory should be: listing it fails (ENOTDIR).
    std::ofstream{d.path + "/not-a-directory"} << "x";
    std::vector<std::string> sets{"paging-directory=" + d.path + "/not-a-directory"};
    {
        node_process node{node_placement{d.path, "node-1.log"}, paging_config(), sets};
        REQUIRE(node.wait_ready(soon()));
        stomp_client c;
        login(c, node);
        send_range(c, "/queue/kept", "m", 0, 3); // fits in memory: no page file
        kill9(node);
    }
    node_process node{node_placement{d.path, "node-2.log"}, paging_config(), sets};
    auto status = node.wait_exit(soon());
    REQUIRE(status.has_value());
    CHECK(*status != 0);
    INFO(node.log_tail());
    CHECK(log_shows(node, "paging_directory_failed"));
    CHECK(log_shows(node, d.path + "/not-a-directory"));
}

TEST_CASE("paging: messages sent after a restart are numbered past the paged ones, so the journal "
          "never takes two messages for one") {
    temp_dir d;
    // Run 1 pages most of /queue/pa: those messages are in page files only, not journaled.
    {
        node_process node{node_placement{d.path, "node-1.log"}, paging_config(),
                          paging_sets(d.path)};
        REQUIRE(node.wait_ready(soon()));
        stomp_client c;
        login(c, node);
        send_range(c, "/queue/pa", "a", 0, 100);
        REQUIRE(page_files(d.path, "pa") >= 1);
        kill9(node);
    }
    // Run 2 has room for everything: the pager reads pa back whole, and the page-in journals
    // each message under the id it was paged with. A consumer takes them all without acking.
    // Then new messages on /queue/pb, consumed and acked: had they been numbered from the
    // journal's largest id (below the paged ones), their records would share ids with pa's.
    auto roomy = [] {
        return node_config("", "\n[address-settings.\"#\"]\n"
                               "max-size-bytes = 10485760\n"
                               "address-full-policy = \"PAGE\"\n");
    };
    {
        node_process node{node_placement{d.path, "node-2.log"}, roomy(), paging_sets(d.path)};
        REQUIRE(node.wait_ready(soon()));
        stomp_client held;
        login(held, node);
        subscribe(held, "/queue/pa", "h", "client-individual", {{"prefetch-count", "1000"}});
        for (size_t i = 0; i < 100; ++i) {
            expect_message(held);
        }
        stomp_client c;
        login(c, node);
        send_range(c, "/queue/pb", "b", 0, 100);
        subscribe(c, "/queue/pb", "s", "client-individual", {{"prefetch-count", "1000"}});
        CHECK(take_acked(c, 100) == range("b", 0, 100));
        kill9(node);
    }
    // Run 3: every message of pa is still there (none was acked).
    node_process node{node_placement{d.path, "node-3.log"}, paging_config(), paging_sets(d.path)};
    REQUIRE(node.wait_ready(soon()));
    INFO(node.log_tail());
    CHECK(drain(node, "/queue/pa") == range("a", 0, 100));
    CHECK(drain(node, "/queue/pb").empty());
}
