// SPDX-License-Identifier: Apache-2.0
// The ACK lane (docs/journal.md, "The ACK lane"): a client-individual ACK of a durable message
// appended to the journal from the consumer connection's thread, without the session and queue
// actors. What it must keep: the RECEIPT only after the disk; a message acknowledged and
// receipted never comes back, after SIGKILL or a consumer's loss; redelivery of everything not
// acknowledged; NACK and transactions as before; no stall when the queue learns of the ACKs
// late (a full window, a paging address).
#include "support/process_fixture.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <set>
#include <string>
#include <vector>

using namespace actormq;
using namespace actormq::test;

namespace {

/// ACKs the lane took over the node's closed connections (their `connection_ack_lane` lines).
uint64_t lane_acks(const node_process& node) {
    const std::string key = "lane_acks=";
    auto log = node.log_text();
    uint64_t n = 0;
    for (auto at = log.find(key); at != std::string::npos; at = log.find(key, at + 1)) {
        n += std::stoull(log.substr(at + key.size()));
    }
    return n;
}

/// Sends `n` persistent messages "<prefix>0".."<prefix>n-1" to `dest`, each confirmed.
void send_n(const node_process& node, const std::string& dest, size_t n, size_t from = 0) {
    stomp_client p;
    login(p, node);
    for (size_t i = from; i < from + n; ++i) {
        send_routed(p, dest, "m" + std::to_string(i), {{"persistent", "true"}});
    }
}

/// The ACK frame of MESSAGE `m`.
stomp::frame ack_of(const stomp::frame& m) {
    stomp::frame a;
    a.cmd = command::ack;
    a.add("id", *m.find("ack"));
    return a;
}

/// Whether `got` is in order, without repeats, holds all of `must` and nothing outside `may`.
void check_prefix_rule(const std::vector<std::string>& got,
                       const std::vector<std::string>& must,
                       const std::vector<std::string>& may) {
    INFO("got: ", join(got));
    std::set<std::string> seen(got.begin(), got.end());
    CHECK(seen.size() == got.size());
    for (const auto& m : must) {
        CHECK_MESSAGE(seen.count(m) == 1, m, " is missing");
    }
    for (const auto& g : got) {
        CHECK_MESSAGE(std::find(may.begin(), may.end(), g) != may.end(), g, " came back");
    }
    // In queue order: the numbers rise.
    CHECK(std::is_sorted(got.begin(), got.end(), [](const std::string& a, const std::string& b) {
        return std::stoul(a.substr(1)) < std::stoul(b.substr(1));
    }));
}

} // namespace

TEST_CASE("stomp ack lane: receipted ACKs survive SIGKILL with ACKs in flight; nothing "
          "unacknowledged is lost") {
    temp_dir d;
    const size_t n = 60;
    {
        node_process node{node_placement{d.path, "node-1.log"}, node_config()};
        REQUIRE(node.wait_ready(soon()));
        INFO(node.log_tail());
        send_n(node, "/queue/acks", n);
        {
            // m0..m9, each ACK receipted, then closed: the lane counts its ACKs at close.
            stomp_client c;
            login(c, node);
            subscribe(c, "/queue/acks", "a", "client-individual",
                      {{"activemq.prefetchSize", "10"}});
            for (size_t i = 0; i < 10; ++i) {
                auto m = expect_message(c);
                REQUIRE(m.body == "m" + std::to_string(i));
                REQUIRE(c.send_with_receipt(ack_of(m)));
            }
            c.close();
        }
        REQUIRE(log_shows(node, "lane_acks="));
        CHECK(lane_acks(node) >= 5);
        stomp_client c;
        login(c, node);
        subscribe(c, "/queue/acks", "b", "client-individual");
        auto msgs = collect_messages(c, n - 10);
        REQUIRE(msgs.size() == n - 10);
        // m10..m29: acknowledged and receipted, one at a time.
        for (size_t i = 0; i < 20; ++i) {
            REQUIRE(msgs[i].body == "m" + std::to_string(10 + i));
            REQUIRE(c.send_with_receipt(ack_of(msgs[i])));
        }
        // m30..m49: acknowledged in one write without receipts, then the node dies at once.
        std::string wire;
        for (size_t i = 20; i < 40; ++i) {
            stomp::encode(ack_of(msgs[i]), c.version(), wire);
        }
        REQUIRE(c.send_raw(wire));
        node.kill(SIGKILL);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    node_process node{node_placement{d.path, "node-2.log"}, node_config()};
    REQUIRE(node.wait_ready(soon()));
    INFO(node.log_tail());
    auto got = drain_queue(node, "/queue/acks");
    auto all = numbered(n);
    // m50..m59 were never acknowledged; m30..m49 may come back (no RECEIPT); nothing before.
    check_prefix_rule(got, std::vector<std::string>(all.begin() + 50, all.end()),
                      std::vector<std::string>(all.begin() + 30, all.end()));
}

TEST_CASE("stomp ack lane: a consumer that leaves gets back only what it did not acknowledge, "
          "once") {
    ACTORMQ_START_NODE(node, node_config());
    const size_t n = 30;
    send_n(node, "/queue/leave", n);
    {
        stomp_client c;
        login(c, node);
        subscribe(c, "/queue/leave", "s", "client-individual");
        auto msgs = collect_messages(c, n);
        REQUIRE(msgs.size() == n);
        // Every other message acknowledged (the even ones), the last one receipted, then gone.
        std::string wire;
        for (size_t i = 0; i + 2 < n; i += 2) {
            stomp::encode(ack_of(msgs[i]), c.version(), wire);
        }
        REQUIRE(c.send_raw(wire));
        REQUIRE(c.send_with_receipt(ack_of(msgs[n - 2])));
        c.close();
    }
    REQUIRE(log_shows(node, "lane_acks="));
    CHECK(lane_acks(node) >= n / 4);
    std::vector<std::string> odd;
    for (size_t i = 1; i < n; i += 2) {
        odd.push_back("m" + std::to_string(i));
    }
    CHECK(drain_queue(node, "/queue/leave") == odd);
}

TEST_CASE("stomp ack lane: NACK and a transaction's ACK of a lane delivery keep the session's "
          "way") {
    ACTORMQ_START_NODE(node, node_config());
    send_n(node, "/queue/mixed", 3);
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/mixed", "s", "client-individual");
    auto msgs = collect_messages(c, 3);
    REQUIRE(msgs.size() == 3);
    // m0 NACKed: it comes back, redelivered.
    stomp::frame nack;
    nack.cmd = command::nack;
    nack.add("id", *msgs[0].find("ack"));
    REQUIRE(c.send_with_receipt(nack));
    auto again = expect_message(c);
    CHECK(again.body == "m0");
    CHECK(header_of(again, "redelivered") == "true");
    // m1 acknowledged inside a transaction that is aborted (the ACK is dropped, the session
    // still owns the delivery), then inside one that commits.
    for (auto end : {command::abort, command::commit}) {
        REQUIRE(c.send(command::begin, {{"transaction", "t"}}, ""));
        auto a = ack_of(msgs[1]);
        a.add("transaction", "t");
        std::string wire;
        stomp::encode(a, c.version(), wire);
        REQUIRE(c.send_raw(wire));
        stomp::frame e;
        e.cmd = end;
        e.add("transaction", "t");
        REQUIRE(c.send_with_receipt(e));
    }
    // m2 and the redelivered m0 by the lane.
    REQUIRE(c.send_with_receipt(ack_of(msgs[2])));
    REQUIRE(c.send_with_receipt(ack_of(again)));
    c.close();
    CHECK(drain_queue(node, "/queue/mixed").empty());
}

TEST_CASE("stomp ack lane: a full window and a paging address are not stalled by ACKs the "
          "queue has not heard of yet") {
    temp_dir d;
    // About 20 padded messages fit under max-size-bytes; the rest is paged and comes back
    // only as the consumer's ACKs free room (the queue must hear of them without a next
    // message to take them along).
    ACTORMQ_START_NODE(node, node_placement{d.path, "node.log"}, node_config("", small_paging),
                       {"paging-directory=" + d.path + "/paging"});
    const size_t n = 80;
    {
        stomp_client p;
        login(p, node);
        for (size_t i = 0; i < n; ++i) {
            send_routed(p, "/queue/window", "m" + std::to_string(i),
                        {{"persistent", "true"}, {"pad", std::string(1000, 'p')}});
        }
    }
    REQUIRE(log_shows(node, "address_paging address=window"));
    size_t next = 0;
    size_t lines = 0;
    for (const char* prefetch : {"2", "1000"}) {
        INFO("prefetch ", prefetch);
        stomp_client c;
        login(c, node);
        subscribe(c, "/queue/window", "s", "client-individual",
                  {{"activemq.prefetchSize", prefetch}});
        // Half of them each round, each ACKed without a receipt as it comes; the next MESSAGE
        // must come all the same.
        for (size_t i = 0; i < n / 2; ++i, ++next) {
            auto m = expect_message(c);
            REQUIRE(m.body == "m" + std::to_string(next));
            std::string wire;
            stomp::encode(ack_of(m), c.version(), wire);
            REQUIRE(c.send_raw(wire));
        }
        REQUIRE(c.receipt_barrier());
        c.close();
        REQUIRE(log_shows(node, "lane_acks=", ++lines));
    }
    CHECK(lane_acks(node) >= n / 4);
    CHECK(drain_queue(node, "/queue/window").empty());
}
