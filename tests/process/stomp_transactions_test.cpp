// SPDX-License-Identifier: Apache-2.0
// Process tests of STOMP transactions: BEGIN, COMMIT and ABORT around SEND and ACK.
#include "support/process_fixture.hpp"

#include <doctest/doctest.h>

namespace actormq::test {

namespace {

/// Sends a BEGIN, COMMIT or ABORT for `tx` and waits for its receipt.
void tx_frame(stomp_client& c, command cmd, const std::string& tx) {
    stomp::frame f;
    f.cmd = cmd;
    f.add("transaction", tx);
    REQUIRE_MESSAGE(c.send_with_receipt(f), describe(f), " got no receipt; ",
                    c.buffered().empty() ? std::string{} : describe(c.buffered().back()));
}

/// A STOMP 1.2 ACK of `m`, inside `tx` unless it is empty, with a receipt.
void ack_in(stomp_client& c, const stomp::frame& m, const std::string& tx) {
    stomp::frame f;
    f.cmd = command::ack;
    f.add("id", header_of(m, "ack"));
    if (!tx.empty()) {
        f.add("transaction", tx);
    }
    REQUIRE_MESSAGE(c.send_with_receipt(f), describe(f));
}

/// A consumer of `destination` with ack mode `ack` (and `extra` SUBSCRIBE headers).
void consume(stomp_client& c,
             const node_process& node,
             const std::string& destination,
             const std::string& ack = "auto",
             header_list extra = {}) {
    login(c, node);
    subscribe(c, destination, "s", ack, std::move(extra));
}

} // namespace

TEST_CASE("stomp: transaction: SENDs are invisible until COMMIT") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client consumer;
    consume(consumer, node, "/queue/tx.commit");
    stomp_client producer;
    login(producer, node);
    tx_frame(producer, command::begin, "t1");
    for (const auto& b : numbered(3)) {
        send_routed(producer, "/queue/tx.commit", b, {{"transaction", "t1"}});
    }
    // A message sent outside the transaction afterwards overtakes the transaction's.
    send_routed(producer, "/queue/tx.commit", "outside");
    CHECK(expect_message(consumer).body == "outside");
    expect_no_more_messages(consumer);
    tx_frame(producer, command::commit, "t1");
    CHECK(bodies(collect_messages(consumer, 3)) == numbered(3));
    expect_no_more_messages(consumer);
}

TEST_CASE("stomp: transaction: ABORT discards the SENDs") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client consumer;
    consume(consumer, node, "/queue/tx.abort");
    stomp_client producer;
    login(producer, node);
    tx_frame(producer, command::begin, "t1");
    send_routed(producer, "/queue/tx.abort", "discarded", {{"transaction", "t1"}});
    tx_frame(producer, command::abort, "t1");
    send_routed(producer, "/queue/tx.abort", "after");
    CHECK(expect_message(consumer).body == "after");
    expect_no_more_messages(consumer);
}

TEST_CASE("stomp: transaction: an ended transaction id can be begun again") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client consumer;
    consume(consumer, node, "/queue/tx.reuse");
    stomp_client producer;
    login(producer, node);
    tx_frame(producer, command::begin, "t");
    tx_frame(producer, command::abort, "t");
    tx_frame(producer, command::begin, "t");
    send_routed(producer, "/queue/tx.reuse", "second life", {{"transaction", "t"}});
    tx_frame(producer, command::commit, "t");
    CHECK(expect_message(consumer).body == "second life");
}

TEST_CASE("stomp: transaction: an open transaction is discarded when the connection ends") {
    ACTORMQ_START_NODE(node, node_config());
    {
        stomp_client producer;
        login(producer, node);
        tx_frame(producer, command::begin, "t1");
        send_routed(producer, "/queue/tx.open", "never", {{"transaction", "t1"}});
        REQUIRE(producer.send(command::disconnect, {{"receipt", "bye"}}));
        REQUIRE(producer.closed_by_peer(soon()));
    }
    stomp_client consumer;
    consume(consumer, node, "/queue/tx.open");
    stomp_client other;
    login(other, node);
    send_routed(other, "/queue/tx.open", "marker");
    CHECK(expect_message(consumer).body == "marker");
    expect_no_more_messages(consumer);
}

TEST_CASE("stomp: transaction: ACKs take effect at COMMIT") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client consumer;
    consume(consumer, node, "/queue/tx.ack", "client-individual", {{"prefetch-count", "2"}});
    stomp_client producer;
    login(producer, node);
    for (const auto& b : numbered(3)) {
        send_routed(producer, "/queue/tx.ack", b);
    }
    auto msgs = collect_messages(consumer, 2);
    REQUIRE(bodies(msgs) == std::vector<std::string>{"m0", "m1"});
    tx_frame(consumer, command::begin, "t1");
    ack_in(consumer, msgs[0], "t1");
    // The ACK is not applied yet, so the prefetch window of 2 stays full.
    expect_no_more_messages(consumer);
    tx_frame(consumer, command::commit, "t1");
    auto next = expect_message(consumer);
    CHECK(next.body == "m2");
    // m0 is acknowledged for good: only m1 and m2 come back after UNSUBSCRIBE.
    stomp::frame unsub;
    unsub.cmd = command::unsubscribe;
    unsub.add("id", "s");
    REQUIRE(consumer.send_with_receipt(unsub));
    stomp_client second;
    consume(second, node, "/queue/tx.ack");
    auto again = collect_messages(second, 2);
    CHECK(bodies(again) == std::vector<std::string>{"m1", "m2"});
    expect_no_more_messages(second);
}

TEST_CASE("stomp: transaction: ABORT leaves the transaction's ACKs unacknowledged") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client consumer;
    consume(consumer, node, "/queue/tx.ack.abort", "client-individual");
    stomp_client producer;
    login(producer, node);
    send_routed(producer, "/queue/tx.ack.abort", "m0");
    send_routed(producer, "/queue/tx.ack.abort", "m1");
    auto msgs = collect_messages(consumer, 2);
    REQUIRE(bodies(msgs) == std::vector<std::string>{"m0", "m1"});
    tx_frame(consumer, command::begin, "t1");
    ack_in(consumer, msgs[0], "t1");
    ack_in(consumer, msgs[1], "t1");
    tx_frame(consumer, command::abort, "t1");
    stomp::frame unsub;
    unsub.cmd = command::unsubscribe;
    unsub.add("id", "s");
    REQUIRE(consumer.send_with_receipt(unsub));
    stomp_client second;
    consume(second, node, "/queue/tx.ack.abort");
    auto again = collect_messages(second, 2);
    CHECK(bodies(again) == std::vector<std::string>{"m0", "m1"});
    for (const auto& m : again) {
        CHECK(header_of(m, "redelivered") == "true");
    }
    expect_no_more_messages(second);
}

TEST_CASE("stomp: transaction: COMMIT of an unknown transaction gets ERROR and close") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    REQUIRE(c.send(command::commit, {{"transaction", "never-begun"}}));
    expect_error_and_close(c, "never-begun");
    expect_serving(node);
}

TEST_CASE("stomp: transaction: ABORT of an unknown transaction gets ERROR and close") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    REQUIRE(c.send(command::abort, {{"transaction", "never-begun"}}));
    expect_error_and_close(c, "never-begun");
    expect_serving(node);
}

TEST_CASE("stomp: transaction: BEGIN twice with one id gets ERROR") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    tx_frame(c, command::begin, "dup");
    REQUIRE(c.send(command::begin, {{"transaction", "dup"}}));
    expect_error_and_close(c, "dup");
    expect_serving(node);
}

TEST_CASE("stomp: transaction: a SEND naming a transaction not begun gets ERROR") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    send_to(c, "/queue/tx.unknown", "x", {{"transaction", "ghost"}});
    expect_error_and_close(c, "ghost");
    expect_serving(node, "/queue/tx.unknown");
}

TEST_CASE("stomp: transaction: BEGIN without a transaction header gets ERROR") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    REQUIRE(c.send(command::begin, {}));
    expect_error_and_close(c, "transaction");
    expect_serving(node);
}

} // namespace actormq::test
