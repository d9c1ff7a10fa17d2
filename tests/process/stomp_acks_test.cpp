// SPDX-License-Identifier: Apache-2.0
// Process tests of STOMP acknowledgement: ack modes, ACK/NACK in 1.0/1.1/1.2, prefetch
// windows, and redelivery of what a consumer left unacknowledged.
#include "support/process_fixture.hpp"

#include <doctest/doctest.h>

#include <cstdlib>

namespace actormq::test {

namespace {

/// Sends an ACK or NACK frame with `headers` and waits for its receipt.
void ack_frame(stomp_client& c, command cmd, header_list headers) {
    stomp::frame f;
    f.cmd = cmd;
    f.headers = std::move(headers);
    REQUIRE_MESSAGE(c.send_with_receipt(f), describe(f), " got no receipt; ",
                    c.buffered().empty() ? std::string{} : describe(c.buffered().back()));
}

/// STOMP 1.2 ACK of one MESSAGE, by its `ack` header.
void ack(stomp_client& c, const stomp::frame& m) {
    REQUIRE_MESSAGE(has_header(m, "ack"), describe(m));
    ack_frame(c, command::ack, {{"id", header_of(m, "ack")}});
}

/// STOMP 1.2 NACK of one MESSAGE, by its `ack` header.
void nack(stomp_client& c, const stomp::frame& m) {
    REQUIRE_MESSAGE(has_header(m, "ack"), describe(m));
    ack_frame(c, command::nack, {{"id", header_of(m, "ack")}});
}

/// Unsubscribes with a receipt. The session has told the queue by the time the RECEIPT is
/// out, so a consumer subscribing afterwards is behind it in the queue's mailbox.
void unsubscribe(stomp_client& c, const std::string& id) {
    ack_frame(c, command::unsubscribe, {{"id", id}});
}

/// Sends `bodies` to `destination`, each routed before the next.
void produce(const node_process& node,
             const std::string& destination,
             const std::vector<std::string>& all) {
    stomp_client p;
    login(p, node);
    for (const auto& b : all) {
        send_to(p, destination, b);
    }
    REQUIRE(p.receipt_barrier());
}

/// A new consumer on `destination` must receive exactly `expected` (in order, all flagged as
/// redelivered) and then a fresh marker message: nothing else was left in the queue.
void expect_redelivered_exactly(const node_process& node,
                                const std::string& destination,
                                const std::vector<std::string>& expected) {
    stomp_client c;
    login(c, node);
    subscribe(c, destination, "second");
    auto msgs = collect_messages(c, expected.size());
    CHECK_MESSAGE(bodies(msgs) == expected, "got ", join(bodies(msgs)), "; expected ",
                  join(expected));
    for (const auto& m : msgs) {
        CHECK_MESSAGE(header_of(m, "redelivered") == "true", describe(m));
        CHECK_MESSAGE(std::atoi(header_of(m, "delivery-count").c_str()) >= 1, describe(m));
    }
    produce(node, destination, {"marker"});
    auto next = expect_message(c);
    CHECK_MESSAGE(next.body == "marker", describe(next));
    CHECK_FALSE(has_header(next, "redelivered"));
    expect_no_more_messages(c);
}

} // namespace

TEST_CASE("stomp: ack: auto mode needs no ACK and nothing is redelivered") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/auto", "s", "auto");
    produce(node, "/queue/auto", numbered(3));
    auto msgs = collect_messages(c, 3);
    CHECK(bodies(msgs) == numbered(3));
    for (const auto& m : msgs) {
        CHECK_FALSE(has_header(m, "ack"));
    }
    unsubscribe(c, "s");
    expect_redelivered_exactly(node, "/queue/auto", {});
}

TEST_CASE("stomp: ack: client mode acknowledges every earlier message of the subscription") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/client", "s", "client");
    produce(node, "/queue/client", numbered(5));
    auto msgs = collect_messages(c, 5);
    REQUIRE(bodies(msgs) == numbered(5));
    std::set<std::string> ack_ids;
    for (const auto& m : msgs) {
        CHECK_MESSAGE(has_header(m, "ack"), describe(m));
        ack_ids.insert(header_of(m, "ack"));
    }
    CHECK(ack_ids.size() == 5);
    ack(c, msgs[2]); // m0, m1 and m2
    unsubscribe(c, "s");
    expect_redelivered_exactly(node, "/queue/client", {"m3", "m4"});
}

TEST_CASE("stomp: ack: client-individual mode acknowledges only that message") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/individual", "s", "client-individual");
    produce(node, "/queue/individual", numbered(5));
    auto msgs = collect_messages(c, 5);
    REQUIRE(bodies(msgs) == numbered(5));
    ack(c, msgs[2]);
    ack(c, msgs[4]);
    unsubscribe(c, "s");
    expect_redelivered_exactly(node, "/queue/individual", {"m0", "m1", "m3"});
}

TEST_CASE("stomp: ack: client mode acks are per subscription") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/per.a", "a", "client");
    subscribe(c, "/queue/per.b", "b", "client");
    produce(node, "/queue/per.a", {"a0", "a1"});
    produce(node, "/queue/per.b", {"b0", "b1"});
    std::vector<stomp::frame> from_a;
    std::vector<stomp::frame> from_b;
    for (auto& m : collect_messages(c, 4)) {
        (header_of(m, "subscription") == "a" ? from_a : from_b).push_back(m);
    }
    REQUIRE(bodies(from_a) == std::vector<std::string>{"a0", "a1"});
    REQUIRE(bodies(from_b) == std::vector<std::string>{"b0", "b1"});
    ack(c, from_a[1]); // a0 and a1, but nothing of b
    unsubscribe(c, "a");
    unsubscribe(c, "b");
    expect_redelivered_exactly(node, "/queue/per.a", {});
    expect_redelivered_exactly(node, "/queue/per.b", {"b0", "b1"});
}

TEST_CASE("stomp: nack: a NACKed message comes again with redelivered:true") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/nack", "s", "client-individual");
    produce(node, "/queue/nack", {"again"});
    auto first = expect_message(c);
    CHECK_FALSE(has_header(first, "redelivered"));
    nack(c, first);
    auto second = expect_message(c);
    CHECK(second.body == "again");
    CHECK(header_of(second, "message-id") == header_of(first, "message-id"));
    CHECK(header_of(second, "redelivered") == "true");
    auto count2 = std::atoi(header_of(second, "delivery-count").c_str());
    CHECK(count2 >= 1);
    nack(c, second);
    auto third = expect_message(c);
    CHECK(header_of(third, "redelivered") == "true");
    CHECK(std::atoi(header_of(third, "delivery-count").c_str()) == count2 + 1);
    ack(c, third);
    expect_no_more_messages(c);
    unsubscribe(c, "s");
    expect_redelivered_exactly(node, "/queue/nack", {});
}

TEST_CASE("stomp: ack: STOMP 1.1 acknowledges with message-id and subscription") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node, "1.1");
    subscribe(c, "/queue/v11", "s", "client-individual");
    produce(node, "/queue/v11", numbered(3));
    auto msgs = collect_messages(c, 3);
    REQUIRE(bodies(msgs) == numbered(3));
    // The ack header is STOMP 1.2's; 1.1 identifies a message by message-id + subscription.
    CHECK_FALSE(has_header(msgs[0], "ack"));
    ack_frame(c, command::ack,
              {{"message-id", header_of(msgs[1], "message-id")}, {"subscription", "s"}});
    unsubscribe(c, "s");
    expect_redelivered_exactly(node, "/queue/v11", {"m0", "m2"});
}

TEST_CASE("stomp: ack: STOMP 1.0 acknowledges with message-id") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node, "1.0");
    // STOMP 1.0: SUBSCRIBE needs no id, UNSUBSCRIBE may name the destination instead.
    REQUIRE(c.send_with_receipt([] {
        stomp::frame f;
        f.cmd = command::subscribe;
        f.add("destination", "/queue/v10");
        f.add("ack", "client");
        return f;
    }()));
    produce(node, "/queue/v10", numbered(3));
    auto msgs = collect_messages(c, 3);
    REQUIRE(bodies(msgs) == numbered(3));
    CHECK_FALSE(has_header(msgs[0], "ack"));
    ack_frame(c, command::ack, {{"message-id", header_of(msgs[1], "message-id")}});
    ack_frame(c, command::unsubscribe, {{"destination", "/queue/v10"}});
    expect_redelivered_exactly(node, "/queue/v10", {"m2"});
}

TEST_CASE("stomp: ack: an ACK its queue does not answer within request-timeout-ms gets ERROR "
          "at that timeout, and every later ACK is still watched") {
    // Every journal batch waits 1 s for company (journal-buffer-timeout), so the queue answers
    // an ACK of a persistent message after about 1 s, and request-timeout-ms is 300: the
    // session's watchdog must fail the client at 300 ms with the ERROR a timeout per request
    // gave, not wait for the late answer. Two ACKs are answered in time first (the watchdog,
    // armed for them, must neither fire early nor stop watching).
    ACTORMQ_START_NODE(node, node_config("", "",
                                         "request-timeout-ms = 300\n"
                                         "journal-buffer-timeout = 1000000000\n"));
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/slowack", "s", "client-individual");
    // Non-persistent: these ACKs have no journal record, so they are answered at once.
    send_routed(c, "/queue/slowack", "quick-1");
    send_routed(c, "/queue/slowack", "quick-2");
    for (int i = 0; i < 2; ++i) {
        ack(c, expect_message(c));
    }
    REQUIRE(send_durable(c, "/queue/slowack", "slow"));
    auto m = expect_message(c);
    REQUIRE(m.body == "slow");
    stomp::frame f;
    f.cmd = command::ack;
    f.add("id", header_of(m, "ack"));
    f.add("receipt", "slow-ack");
    auto start = std::chrono::steady_clock::now();
    REQUIRE(c.send(f));
    auto e = c.receive(soon());
    auto took = std::chrono::steady_clock::now() - start;
    REQUIRE_MESSAGE(e.has_value(), "nothing arrived (", c.last_error(), ")");
    REQUIRE_MESSAGE(e->cmd == command::error, describe(*e));
    CHECK_MESSAGE(header_of(*e, "message") == "acknowledgement failed", describe(*e));
    CHECK_MESSAGE(e->body == "request_timeout", describe(*e));
    // Not before the timeout. That it came at all proves it came before the queue's late
    // answer, which would have let the RECEIPT out instead; no upper bound on the time, which
    // the machine's load decides.
    CHECK(took >= std::chrono::milliseconds(300));
    CHECK_MESSAGE(c.closed_by_peer(soon()), "the server did not close the connection");
}

TEST_CASE("stomp: ack: ACK without id in 1.2 gets ERROR and close") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/noid", "s", "client");
    produce(node, "/queue/noid", {"x"});
    auto m = expect_message(c);
    REQUIRE(
        c.send(command::ack, {{"message-id", header_of(m, "message-id")}, {"subscription", "s"}}));
    expect_error_and_close(c, "id");
    // The unacked message is not lost with the failed connection.
    expect_redelivered_exactly(node, "/queue/noid", {"x"});
}

TEST_CASE("stomp: ack: unacked messages of an unsubscribed consumer go to another consumer") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/unsub", "s", "client-individual");
    produce(node, "/queue/unsub", numbered(10));
    auto msgs = collect_messages(c, 10);
    REQUIRE(bodies(msgs) == numbered(10));
    for (size_t i = 0; i < 10; i += 2) {
        ack(c, msgs[i]);
    }
    unsubscribe(c, "s");
    expect_redelivered_exactly(node, "/queue/unsub", {"m1", "m3", "m5", "m7", "m9"});
    // The first consumer's connection is still fine.
    CHECK(c.receipt_barrier());
}

TEST_CASE("stomp: ack: unacked messages of a disconnected consumer go to another consumer") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/disc", "s", "client");
    produce(node, "/queue/disc", numbered(10));
    auto msgs = collect_messages(c, 10);
    REQUIRE(bodies(msgs) == numbered(10));
    ack(c, msgs[4]);
    REQUIRE(c.send(command::disconnect, {{"receipt", "bye"}}));
    CHECK(c.closed_by_peer(soon()));
    expect_redelivered_exactly(node, "/queue/disc", {"m5", "m6", "m7", "m8", "m9"});
}

TEST_CASE("stomp: ack: unacked messages of a consumer whose socket dies go to another consumer") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/dies", "s", "client-individual");
    produce(node, "/queue/dies", numbered(10));
    auto msgs = collect_messages(c, 10);
    REQUIRE(bodies(msgs) == numbered(10));
    ack(c, msgs[0]);
    ack(c, msgs[9]);
    c.close_abruptly();
    expect_redelivered_exactly(node, "/queue/dies",
                               {"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"});
}

TEST_CASE("stomp: ack: in-flight messages move to the remaining consumer when one dies") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client a;
    stomp_client b;
    login(a, node);
    login(b, node);
    subscribe(a, "/queue/share", "a", "client-individual");
    subscribe(b, "/queue/share", "b", "client-individual");
    const size_t n = 20;
    produce(node, "/queue/share", numbered(n));
    // Wait until the queue has handed out everything, then kill a without acking.
    std::vector<stomp::frame> got_a;
    std::vector<stomp::frame> got_b;
    bool all = wait_until(soon(), [&] {
        while (auto f = a.receive(in(1ms))) {
            got_a.push_back(*f);
        }
        while (auto f = b.receive(in(1ms))) {
            got_b.push_back(*f);
        }
        return got_a.size() + got_b.size() >= n;
    });
    REQUIRE(all);
    REQUIRE_FALSE(got_a.empty());
    a.close_abruptly();
    for (const auto& m : got_b) {
        ack(b, m);
    }
    // b now receives exactly what a had, redelivered, and nothing is lost or duplicated.
    auto again = collect_messages(b, got_a.size());
    CHECK(bodies(again) == bodies(got_a));
    for (const auto& m : again) {
        CHECK(header_of(m, "redelivered") == "true");
    }
    std::set<std::string> all_bodies;
    for (const auto& m : got_b) {
        all_bodies.insert(m.body);
    }
    for (const auto& m : again) {
        all_bodies.insert(m.body);
    }
    CHECK(all_bodies.size() == n);
    expect_no_more_messages(b);
}

TEST_CASE("stomp: prefetch: a client-ack consumer holds at most activemq.prefetchSize unacked") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/prefetch", "s", "client", {{"activemq.prefetchSize", "2"}});
    produce(node, "/queue/prefetch", numbered(5));
    auto first = collect_messages(c, 2);
    REQUIRE(bodies(first) == std::vector<std::string>{"m0", "m1"});
    expect_no_more_messages(c);
    ack(c, first[1]); // client mode: frees both slots
    auto second = collect_messages(c, 2);
    REQUIRE(bodies(second) == std::vector<std::string>{"m2", "m3"});
    expect_no_more_messages(c);
    ack(c, second[1]);
    auto third = collect_messages(c, 1);
    REQUIRE(bodies(third) == std::vector<std::string>{"m4"});
    ack(c, third[0]);
    expect_no_more_messages(c);
}

TEST_CASE("stomp: prefetch: prefetch-count limits a client-individual consumer") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/prefetch.ind", "s", "client-individual", {{"prefetch-count", "2"}});
    produce(node, "/queue/prefetch.ind", numbered(5));
    auto first = collect_messages(c, 2);
    REQUIRE(bodies(first) == std::vector<std::string>{"m0", "m1"});
    expect_no_more_messages(c);
    ack(c, first[0]); // frees one slot only
    auto next = collect_messages(c, 1);
    REQUIRE(bodies(next) == std::vector<std::string>{"m2"});
    expect_no_more_messages(c);
}

TEST_CASE("stomp: prefetch: the prefetch of a slow consumer sends the rest to another one") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client slow;
    login(slow, node);
    subscribe(slow, "/queue/prefetch.share", "slow", "client", {{"prefetch-count", "1"}});
    stomp_client fast;
    login(fast, node);
    subscribe(fast, "/queue/prefetch.share", "fast", "auto");
    produce(node, "/queue/prefetch.share", numbered(10));
    auto held = collect_messages(slow, 1);
    REQUIRE(held.size() == 1);
    auto rest = collect_messages(fast, 9);
    CHECK(rest.size() == 9);
    expect_no_more_messages(slow);
    expect_no_more_messages(fast);
}

TEST_CASE("stomp: prefetch: the default-prefetch-count applies without a prefetch header") {
    ACTORMQ_START_NODE(node, node_config("default-prefetch-count = 3\n"));
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/prefetch.default", "s", "client-individual");
    produce(node, "/queue/prefetch.default", numbered(5));
    auto first = collect_messages(c, 3);
    REQUIRE(bodies(first) == std::vector<std::string>{"m0", "m1", "m2"});
    expect_no_more_messages(c);
}

} // namespace actormq::test
