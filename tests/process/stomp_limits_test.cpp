// SPDX-License-Identifier: Apache-2.0
// Process tests of the limits on what one client can make the server hold (docs/stomp.md,
// "Limits"; style rule 15). Each hits its limit exactly: one under is served; at the limit the
// client gets ERROR naming the key and is closed; another client is served afterwards.
#include "support/process_fixture.hpp"

#include <doctest/doctest.h>

namespace actormq::test {

namespace {

/// A CONNECT frame for guest of exactly `size` bytes on the wire (command through NUL),
/// padded with an `x-pad` header.
std::string connect_frame_of_size(size_t size) {
    std::string head = "CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\nx-pad:";
    std::string tail = "\n\n";
    tail += '\0';
    REQUIRE(size >= head.size() + tail.size());
    return head + std::string(size - head.size() - tail.size(), 'p') + tail;
}

/// A SEND frame in transaction `tx`, with a receipt when `receipt` is not empty.
stomp::frame
tx_send(const std::string& tx, const std::string& body, const std::string& receipt = "") {
    stomp::frame f;
    f.cmd = command::send;
    f.add("destination", "/queue/tx");
    f.add("transaction", tx);
    f.add("content-length", std::to_string(body.size()));
    f.body = body;
    if (!receipt.empty()) {
        f.add("receipt", receipt);
    }
    return f;
}

/// Sends BEGIN for `tx` and waits for its receipt.
void begin(stomp_client& c, const std::string& tx) {
    stomp::frame f;
    f.cmd = command::begin;
    f.add("transaction", tx);
    REQUIRE_MESSAGE(c.send_with_receipt(f), "BEGIN ", tx, " got no receipt");
}

/// Whether the node's log has a line containing `text`.
bool log_has(const node_process& node, const std::string& text) {
    return node.log_text().find(text) != std::string::npos;
}

} // namespace

TEST_CASE("stomp: limits: a CONNECT of exactly max-frame-bytes-before-connect is served, one "
          "byte more gets ERROR and close") {
    ACTORMQ_START_NODE(node, node_config("max-frame-bytes-before-connect = 1024\n"));
    {
        stomp_client c;
        REQUIRE(c.connect_tcp(node.port()));
        REQUIRE(c.send_raw(connect_frame_of_size(1024)));
        auto f = c.receive(soon());
        REQUIRE(f.has_value());
        CHECK_MESSAGE(f->cmd == command::connected, describe(*f));
    }
    stomp_client c;
    REQUIRE(c.connect_tcp(node.port()));
    REQUIRE(c.send_raw(connect_frame_of_size(1025)));
    expect_error_and_close(c, "max-frame-bytes-before-connect");
    expect_serving(node);
}

TEST_CASE("stomp: limits: by default a client that has not logged in cannot send a 1 MiB "
          "frame (max-frame-bytes-before-connect is 64 KiB)") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    REQUIRE(c.connect_tcp(node.port()));
    std::string body(1024 * 1024, 'x');
    // The server may close before it has read everything, so the write may fail part way.
    c.send_raw("CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\ncontent-length:"
               + std::to_string(body.size()) + "\n\n" + body + std::string(1, '\0'));
    expect_error_and_close(c, "limit max-frame-bytes-before-connect (65536)");
    expect_serving(node);
}

TEST_CASE("stomp: limits: BEGIN beyond max-transactions-per-session gets ERROR and close") {
    ACTORMQ_START_NODE(node, node_config("max-transactions-per-session = 2\n"));
    stomp_client c;
    login(c, node);
    begin(c, "t1");
    begin(c, "t2");
    REQUIRE(c.send(command::begin, {{"transaction", "t3"}}));
    expect_error_and_close(c, "limit max-transactions-per-session (2) reached");
    expect_serving(node);
}

TEST_CASE("stomp: limits: the SEND beyond max-messages-per-transaction gets ERROR and close") {
    ACTORMQ_START_NODE(node, node_config("max-messages-per-transaction = 3\n"));
    stomp_client c;
    login(c, node);
    begin(c, "t");
    REQUIRE(c.send(tx_send("t", "a")));
    REQUIRE(c.send(tx_send("t", "b")));
    REQUIRE(c.send_with_receipt(tx_send("t", "c")));
    REQUIRE(c.send(tx_send("t", "d")));
    expect_error_and_close(c, "limit max-messages-per-transaction (3) reached");
    expect_serving(node);
}

TEST_CASE("stomp: limits: a transaction may hold exactly max-bytes-per-transaction body bytes, "
          "one more gets ERROR and close") {
    ACTORMQ_START_NODE(node, node_config("max-bytes-per-transaction = 1000\n"));
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/tx", "s");
    stomp_client c;
    login(c, node);
    // One under: 1000 bytes commit and arrive.
    begin(c, "t1");
    REQUIRE(c.send(tx_send("t1", std::string(600, 'a'))));
    REQUIRE(c.send(tx_send("t1", std::string(400, 'b'))));
    stomp::frame commit;
    commit.cmd = command::commit;
    commit.add("transaction", "t1");
    REQUIRE(c.send_with_receipt(commit));
    CHECK(collect_messages(consumer, 2).size() == 2);
    // At the limit: 1000 bytes held, one more byte is refused.
    begin(c, "t2");
    REQUIRE(c.send_with_receipt(tx_send("t2", std::string(1000, 'c'))));
    REQUIRE(c.send(tx_send("t2", "d")));
    expect_error_and_close(c, "limit max-bytes-per-transaction (1000) reached");
    // Nothing of the refused transaction was delivered, and the node serves others.
    expect_no_more_messages(consumer);
    expect_serving(node);
}

TEST_CASE("stomp: limits: SUBSCRIBE beyond max-subscriptions-per-session gets ERROR and close") {
    ACTORMQ_START_NODE(node, node_config("max-subscriptions-per-session = 2\n"));
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/s1", "1");
    subscribe(c, "/queue/s2", "2");
    REQUIRE(c.send(command::subscribe, {{"destination", "/queue/s3"}, {"id", "3"}}));
    expect_error_and_close(c, "limit max-subscriptions-per-session (2) reached");
    expect_serving(node);
}

TEST_CASE("stomp: limits: a prefetch of max-prefetch-count is served, one more gets ERROR and "
          "close (not clamped)") {
    ACTORMQ_START_NODE(node, node_config("default-prefetch-count = 5\nmax-prefetch-count = 5\n"));
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/p", "1", "auto", {{"prefetch-count", "5"}});
    REQUIRE(c.send(command::subscribe,
                   {{"destination", "/queue/p"}, {"id", "2"}, {"prefetch-count", "6"}}));
    expect_error_and_close(c, "limit max-prefetch-count (5) reached");
    expect_serving(node);
}

TEST_CASE("stomp: limits: a SEND that would create an address beyond max-auto-created-addresses "
          "gets ERROR and close") {
    ACTORMQ_START_NODE(node, node_config("", "", "max-auto-created-addresses = 2\n"));
    stomp_client c;
    login(c, node);
    send_routed(c, "/queue/a", "1");
    send_routed(c, "/queue/b", "2");
    send_to(c, "/queue/c", "3");
    expect_error_and_close(c, "limit max-auto-created-addresses (2) reached");
    // The addresses that exist still serve other clients.
    stomp_client other;
    login(other, node);
    subscribe(other, "/queue/a", "a");
    CHECK(expect_message(other).body == "1");
    send_to(other, "/queue/a", "still here");
    CHECK(expect_message(other).body == "still here");
}

TEST_CASE("stomp: limits: a SUBSCRIBE that would create a queue beyond max-auto-created-queues "
          "gets ERROR and close") {
    ACTORMQ_START_NODE(node, node_config("", "", "max-auto-created-queues = 2\n"));
    stomp_client a;
    login(a, node);
    subscribe(a, "/topic/t", "1");
    subscribe(a, "/topic/t", "2");
    // Both subscription queues exist once each delivered a message.
    send_routed(a, "/topic/t", "x");
    CHECK(collect_messages(a, 2).size() == 2);
    stomp_client b;
    login(b, node);
    REQUIRE(b.send(command::subscribe, {{"destination", "/topic/t"}, {"id", "3"}}));
    expect_error_and_close(b, "limit max-auto-created-queues (2) reached");
    // The first client is unaffected.
    stomp_client p;
    login(p, node);
    send_routed(p, "/topic/t", "y");
    auto got = collect_messages(a, 2);
    CHECK(bodies(got) == std::vector<std::string>{"y", "y"});
}

TEST_CASE("stomp: limits: the session stops taking frames at read-window-bytes of unrouted "
          "messages") {
    // A BLOCK address that is full holds the producer's messages; with a 4 KiB window the
    // session must not take the frames behind them (it took 256 KiB whatever the config said).
    ACTORMQ_START_NODE(node, node_config("read-window-bytes = 4096\n",
                                         "[address-settings.\"full\"]\n"
                                         "max-size-bytes = 1000\n"
                                         "address-full-policy = \"BLOCK\"\n"));
    stomp_client probe_consumer;
    login(probe_consumer, node);
    subscribe(probe_consumer, "/queue/other", "o");
    stomp_client producer;
    login(producer, node);
    for (int i = 0; i < 3; ++i) {
        send_to(producer, "/queue/full", std::string(2000, 'f'));
    }
    send_to(producer, "/queue/other", "probe");
    // Under the window the probe would be routed at once; it must wait behind the full address.
    auto early = probe_consumer.receive(in(std::chrono::milliseconds(1000)));
    if (early) {
        FAIL_CHECK("the probe was routed past a full read window: ", describe(*early));
    }
    // Consuming frees the address; the held frames and the probe go through.
    stomp_client drain;
    login(drain, node);
    subscribe(drain, "/queue/full", "d");
    CHECK(collect_messages(drain, 3).size() == 3);
    auto m = expect_message(probe_consumer);
    CHECK(m.body == "probe");
}

TEST_CASE("stomp: limits: a consumer that does not read is closed at max-pending-output-bytes; "
          "one that reads is served") {
    // A long write timeout, so only the output bound can close a connection here.
    ACTORMQ_START_NODE(node, node_config("max-pending-output-bytes = 65536\n"
                                         "write-timeout-ms = 120000\n"));
    const std::string body(32 * 1024, 'm');
    const int count = 600; // ~19 MiB: more than the kernel's socket buffers hold
    // One under: a consumer with prefetch 1 never has more than one message waiting.
    stomp_client reader;
    login(reader, node);
    subscribe(reader, "/queue/ok", "r", "auto", {{"prefetch-count", "1"}});
    stomp_client stalled;
    login(stalled, node);
    subscribe(stalled, "/queue/flood", "s", "auto", {{"prefetch-count", "5000"}});
    stomp_client producer;
    login(producer, node);
    for (int i = 0; i < count; ++i) {
        send_to(producer, "/queue/flood", body);
        send_to(producer, "/queue/ok", body);
    }
    REQUIRE(producer.receipt_barrier(in(std::chrono::seconds(30))));
    REQUIRE_MESSAGE(wait_until(soon(), [&] { return log_has(node, "output_limit conn="); }),
                    "the stalled consumer was not cut off");
    // The stalled client now reads: the frames in flight, then ERROR naming the limit, then EOF.
    expect_error_and_close(stalled, "limit max-pending-output-bytes (65536) reached");
    CHECK(collect_messages(reader, count, in(std::chrono::seconds(30))).size() == count);
    expect_serving(node);
}

TEST_CASE("stomp: limits: a consumer whose socket takes nothing for write-timeout-ms is closed") {
    ACTORMQ_START_NODE(node, node_config("write-timeout-ms = 300\n"));
    const std::string body(32 * 1024, 'w');
    stomp_client stalled;
    login(stalled, node);
    subscribe(stalled, "/queue/flood", "s", "auto", {{"prefetch-count", "5000"}});
    stomp_client producer;
    login(producer, node);
    for (int i = 0; i < 600; ++i) {
        send_to(producer, "/queue/flood", body);
    }
    REQUIRE(producer.receipt_barrier(in(std::chrono::seconds(30))));
    REQUIRE_MESSAGE(wait_until(soon(), [&] { return log_has(node, "write_timeout conn="); }),
                    "the stalled consumer was not closed");
    CHECK(stalled.closed_by_peer(in(std::chrono::seconds(30))));
    expect_serving(node);
}

} // namespace actormq::test
