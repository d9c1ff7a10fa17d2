// SPDX-License-Identifier: Apache-2.0
// The send lane (docs/journal.md, "The send lane"): a synchronous durable SEND appended to the
// journal from the connection's thread, without the session and address actors. What it must
// keep: the RECEIPT only after the disk, the order per producer and per queue, and today's way
// for everything it must not take (a paging address, a duplicate id, a transaction).
#include "support/process_fixture.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

using namespace actormq;
using namespace actormq::test;

namespace {

/// The sum of `key`'s values over the node's `connection_lane` lines.
uint64_t lane_count(const node_process& node, const std::string& key) {
    auto log = node.log_text();
    uint64_t n = 0;
    for (auto at = log.find(key); at != std::string::npos; at = log.find(key, at + 1)) {
        n += std::stoull(log.substr(at + key.size()));
    }
    return n;
}

/// SENDs the lane took over the node's closed connections.
uint64_t lane_sends(const node_process& node) {
    return lane_count(node, "lane_sends=");
}

/// Lane RECEIPTs the journal's thread wrote to the socket itself (the output was idle).
uint64_t lane_direct(const node_process& node) {
    return lane_count(node, "lane_direct=");
}

/// Closes `c` and waits until its connection logged what the lane took (it logs nothing when
/// the lane took nothing, so a count of `times` lines is waited for).
void close_and_settle(stomp_client& c, const node_process& node, size_t times) {
    c.close();
    CHECK(log_shows(node, "connection_lane", times));
}

/// A persistent SEND with a receipt, the lane's kind of frame, sent and confirmed.
void send_sync(stomp_client& c,
               const std::string& dest,
               const std::string& body,
               header_list extra = {}) {
    extra.push_back({"persistent", "true"});
    send_routed(c, dest, body, std::move(extra));
}

} // namespace

TEST_CASE("stomp send lane: synchronous durable SENDs take the lane and survive SIGKILL in "
          "order") {
    temp_dir d;
    const size_t n = 40;
    {
        node_process node{node_placement{d.path, "node-1.log"}, node_config()};
        REQUIRE(node.wait_ready(soon()));
        INFO(node.log_tail());
        stomp_client c;
        login(c, node);
        for (size_t i = 0; i < n; ++i) {
            send_sync(c, "/queue/lane", "m" + std::to_string(i));
        }
        close_and_settle(c, node, 1);
        // The first SEND looks the address up (the session's way); after that, each finds the
        // session idle and the lane open. A few may find the session's last answer still on
        // its way and go the session's way.
        CHECK(lane_sends(node) >= n / 2);
        // A synchronous producer reads each RECEIPT before it sends again, so the connection's
        // output is idle when the journal confirms the next lane SEND: the journal's thread
        // writes that RECEIPT itself.
        CHECK(lane_direct(node) >= n / 4);
        CHECK(lane_direct(node) <= lane_sends(node));
        node.kill(SIGKILL);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    node_process node{node_placement{d.path, "node-2.log"}, node_config()};
    REQUIRE(node.wait_ready(soon()));
    INFO(node.log_tail());
    CHECK(drain_queue(node, "/queue/lane") == numbered(n, "m"));
}

TEST_CASE("stomp send lane: frames behind a lane SEND wait for its RECEIPT, in RECEIPT and "
          "queue order") {
    // One write per round: lane SENDs (persistent, with receipt, to one queue) mixed with
    // frames the lane does not take (non-persistent, or without a receipt, to another queue).
    // The session answers those in microseconds, the journal the lane's after an fdatasync, and
    // no address orders the two queues' operations: handed straight on, they would overtake.
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    // The session's way: each address exists after it.
    send_sync(c, "/queue/mixed", "first");
    send_routed(c, "/queue/other", "first");
    std::vector<std::string> sent{"first"};
    std::vector<std::string> sent_other{"first"};
    for (int round = 0; round < 20; ++round) {
        std::string wire;
        std::vector<std::string> receipts;
        for (int i = 0; i < 6; ++i) {
            auto body = "r" + std::to_string(round) + "-" + std::to_string(i);
            bool lane = i % 2 == 0;
            stomp::frame f;
            f.cmd = command::send;
            f.add("destination", lane ? "/queue/mixed" : "/queue/other");
            f.add("persistent", lane ? "true" : "false");
            if (i != 3) {
                f.add("receipt", body);
                receipts.push_back(body);
            }
            f.body = body;
            stomp::encode(f, c.version(), wire);
            (lane ? sent : sent_other).push_back(body);
        }
        REQUIRE(c.send_raw(wire));
        for (const auto& id : receipts) {
            auto r = c.receive_cmd(command::receipt, soon());
            REQUIRE(r.has_value());
            CHECK(*r->find("receipt-id") == id);
        }
    }
    close_and_settle(c, node, 1);
    CHECK(lane_sends(node) >= 1);
    CHECK(drain_queue(node, "/queue/mixed") == sent);
    CHECK(drain_queue(node, "/queue/other") == sent_other);
}

TEST_CASE("stomp send lane: closed while its address pages, so a message sent with room "
          "under max-size-bytes still comes after the paged ones") {
    temp_dir d;
    // About 20 padded messages fit under max-size-bytes (the last one may pass it); the rest
    // is paged. Page-in starts only below three quarters of it, so after three messages are
    // consumed there is room for one more while the address is still paging: the lane, if
    // open, would put it in memory, ahead of the paged messages.
    ACTORMQ_START_NODE(node, node_placement{d.path, "node.log"}, node_config("", small_paging),
                       {"paging-directory=" + d.path + "/paging"});
    const header_list pad{{"pad", std::string(1000, 'p')}};
    stomp_client p;
    login(p, node);
    const size_t first = 40;
    for (size_t i = 0; i < first; ++i) {
        send_sync(p, "/queue/paged", "m" + std::to_string(i), pad);
    }
    REQUIRE(log_shows(node, "address_paging address=paged"));
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/paged", "s", "client-individual", {{"activemq.prefetchSize", "1"}});
    const size_t consumed = 3;
    for (size_t i = 0; i < consumed; ++i) {
        auto m = expect_message(consumer);
        CHECK(m.body == "m" + std::to_string(i));
        stomp::frame ack;
        ack.cmd = command::ack;
        ack.add("id", *m.find("ack"));
        REQUIRE(consumer.send_with_receipt(ack));
    }
    consumer.close();
    const size_t more = 5;
    for (size_t i = first; i < first + more; ++i) {
        send_sync(p, "/queue/paged", "m" + std::to_string(i), pad);
    }
    close_and_settle(p, node, 1);
    CHECK(lane_sends(node) >= 1); // it was open before the address paged
    auto got = drain_queue(node, "/queue/paged");
    auto want = numbered(first + more, "m");
    want.erase(want.begin(), want.begin() + consumed);
    CHECK(got == want);
}

TEST_CASE("stomp send lane: a SEND with a duplicate id takes the session's way and is stored "
          "once") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    for (int i = 0; i < 5; ++i) {
        send_sync(c, "/queue/dups", "p" + std::to_string(i)); // the lane is open
    }
    for (int i = 0; i < 3; ++i) {
        send_sync(c, "/queue/dups", "once", {{"_AMQ_DUPL_ID", "dup-1"}});
    }
    send_sync(c, "/queue/dups", "after");
    close_and_settle(c, node, 1);
    CHECK(lane_sends(node) >= 1);
    CHECK(drain_queue(node, "/queue/dups")
          == std::vector<std::string>{"p0", "p1", "p2", "p3", "p4", "once", "after"});
}

TEST_CASE("stomp send lane: a SEND inside a transaction takes the session's way, so ABORT "
          "drops it and COMMIT keeps its order") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    for (int i = 0; i < 3; ++i) {
        send_sync(c, "/queue/tx", "p" + std::to_string(i)); // the lane is open
    }
    auto tx_frame = [&](command cmd, const std::string& tx) {
        stomp::frame f;
        f.cmd = cmd;
        f.add("transaction", tx);
        REQUIRE(c.send_with_receipt(f));
    };
    tx_frame(command::begin, "t1");
    send_sync(c, "/queue/tx", "aborted", {{"transaction", "t1"}});
    tx_frame(command::abort, "t1");
    tx_frame(command::begin, "t2");
    send_sync(c, "/queue/tx", "committed", {{"transaction", "t2"}});
    tx_frame(command::commit, "t2");
    send_sync(c, "/queue/tx", "after");
    close_and_settle(c, node, 1);
    CHECK(lane_sends(node) >= 1);
    CHECK(drain_queue(node, "/queue/tx")
          == std::vector<std::string>{"p0", "p1", "p2", "committed", "after"});
}

TEST_CASE("stomp send lane: SIGKILL with lane SENDs in flight keeps every confirmed message, "
          "once, in order, and nothing after a gap") {
    // One write of many lane SENDs (each finds the session idle: nothing is handed to it), a
    // kill once some RECEIPTs are in: what comes back is a prefix of what was sent (the journal
    // writes in order, a cut tail loses only later records) that holds every confirmed one.
    temp_dir d;
    const size_t burst = 1000;
    std::vector<std::string> stored;
    for (int round = 0; round < 3; ++round) {
        node_process node{node_placement{d.path, "node-" + std::to_string(round) + ".log"},
                          node_config()};
        REQUIRE(node.wait_ready(soon()));
        INFO(node.log_tail());
        auto prefix = "r" + std::to_string(round) + "-";
        {
            stomp_client c;
            login(c, node);
            send_sync(c, "/queue/killed", prefix + "first"); // the address and its lane
            std::string wire;
            for (size_t i = 0; i < burst; ++i) {
                stomp::frame f;
                f.cmd = command::send;
                f.add("destination", "/queue/killed");
                f.add("persistent", "true");
                f.add("receipt", prefix + std::to_string(i));
                f.body = prefix + std::to_string(i);
                stomp::encode(f, c.version(), wire);
            }
            REQUIRE(c.send_raw(wire));
            size_t confirmed = 0;
            for (; confirmed < 10; ++confirmed) {
                auto r = c.receive_cmd(command::receipt, soon());
                REQUIRE(r.has_value());
                REQUIRE(*r->find("receipt-id") == prefix + std::to_string(confirmed));
            }
            node.kill(SIGKILL);
            REQUIRE(node.wait_exit(soon()).has_value());
            // RECEIPTs already on their way were confirmed too.
            while (auto r = c.receive_cmd(command::receipt, in(std::chrono::milliseconds(200)))) {
                CHECK(*r->find("receipt-id") == prefix + std::to_string(confirmed));
                ++confirmed;
            }
            stored.push_back(prefix + "first");
            for (size_t i = 0; i < confirmed; ++i) {
                stored.push_back(prefix + std::to_string(i));
            }
        }
        node_process again{node_placement{d.path, "node-" + std::to_string(round) + "b.log"},
                           node_config()};
        REQUIRE(again.wait_ready(soon()));
        auto got = drain_queue(again, "/queue/killed");
        // Everything confirmed, in order, then possibly some of the unconfirmed rest, in order.
        REQUIRE(got.size() >= stored.size());
        CHECK(std::vector<std::string>(got.begin(), got.begin() + stored.size()) == stored);
        // After the confirmed ones: the next numbers, without a gap.
        auto number = [&](const std::string& body) {
            return std::stoul(body.substr(prefix.size()));
        };
        for (size_t i = stored.size(); i < got.size(); ++i) {
            CHECK(number(got[i]) == number(got[i - 1]) + 1);
        }
        // The drain consumed it all: the next round starts from an empty queue.
        stored.clear();
        again.kill(SIGTERM);
        REQUIRE(again.wait_exit(soon()).has_value());
    }
}
