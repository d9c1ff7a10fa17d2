// SPDX-License-Identifier: Apache-2.0
// Process tests of STOMP messaging: destinations, delivery order and fairness, MESSAGE
// headers and bodies, and RECEIPT.
#include "support/process_fixture.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>

namespace actormq::test {

TEST_CASE("stomp: queue: a message sent before any consumer waits for the first one") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client producer;
    login(producer, node);
    send_routed(producer, "/queue/stored", "hello");
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/stored", "s1");
    auto m = expect_message(consumer);
    CHECK(m.body == "hello");
    CHECK(header_of(m, "subscription") == "s1");
    CHECK(header_of(m, "destination") == "/queue/stored");
}

TEST_CASE("stomp: queue: messages are delivered in the order they were sent") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/ordered", "s");
    stomp_client producer;
    login(producer, node);
    auto sent = numbered(200);
    for (const auto& b : sent) {
        send_to(producer, "/queue/ordered", b);
    }
    CHECK(bodies(collect_messages(consumer, sent.size())) == sent);
    expect_no_more_messages(consumer);
}

TEST_CASE("stomp: receipts: a queue barrier's RECEIPT follows every message its queues held") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/barrier", "s", "auto", {{"activemq.prefetchSize", "10000"}});
    stomp_client producer;
    login(producer, node);
    const size_t n = 9000;
    for (size_t i = 0; i < n; ++i) {
        send_to(producer, "/queue/barrier", "m" + std::to_string(i));
    }
    // The producer's receipt: every SEND before it has been routed, so all n messages are in
    // the queue (or its mailbox) now.
    REQUIRE(producer.receipt_barrier());
    // Without the queue round trip this RECEIPT only ordered the consumer's own frames, and
    // messages still on their way from the queue arrived after it.
    REQUIRE(consumer.receipt_barrier());
    CHECK(consumer.take_messages().size() == n);
}

TEST_CASE("stomp: receipts: after an ACK frees the window, a queue barrier's RECEIPT follows the "
          "next delivery") {
    ACTORMQ_START_NODE(node, node_config());
    const size_t n = 300;
    stomp_client producer;
    login(producer, node);
    for (size_t i = 0; i < n; ++i) {
        send_to(producer, "/queue/barrier.ack", "m" + std::to_string(i));
    }
    REQUIRE(producer.receipt_barrier());
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/barrier.ack", "s", "client-individual",
              {{"activemq.prefetchSize", "1"}});
    auto m = expect_message(consumer);
    size_t late = 0;
    for (size_t i = 1; i < n; ++i) {
        REQUIRE(consumer.send(command::ack, {{"id", header_of(m, "ack")}}));
        // The ACK reaches the queue, which then delivers the next message; the barrier's
        // RECEIPT must come after that delivery.
        REQUIRE(consumer.receipt_barrier());
        auto got = consumer.take_messages();
        if (got.size() != 1) {
            ++late;
            got = collect_messages(consumer, 1);
            REQUIRE(got.size() == 1);
        }
        CHECK(got.front().body == "m" + std::to_string(i));
        m = got.front();
    }
    CHECK_MESSAGE(late == 0, late, " of ", n - 1, " deliveries came after the barrier's RECEIPT");
}

TEST_CASE("stomp: queue: each message goes to exactly one of the consumers") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client a;
    stomp_client b;
    login(a, node);
    login(b, node);
    subscribe(a, "/queue/work", "a");
    subscribe(b, "/queue/work", "b");
    stomp_client producer;
    login(producer, node);
    const size_t n = 40;
    for (const auto& body : numbered(n)) {
        send_to(producer, "/queue/work", body);
    }
    REQUIRE(producer.receipt_barrier());
    // Both consumers together must receive all n, each exactly once.
    std::map<std::string, int> seen;
    std::set<std::string> ids;
    size_t total = 0;
    bool all = wait_until(soon(), [&] {
        for (auto* c : {&a, &b}) {
            while (auto f = c->receive(in(1ms))) {
                REQUIRE_MESSAGE(f->cmd == command::message, describe(*f));
                ++seen[f->body];
                ids.insert(header_of(*f, "message-id"));
                ++total;
            }
        }
        return total >= n;
    });
    CHECK_MESSAGE(all, total, " of ", n, " messages arrived");
    CHECK(seen.size() == n);
    CHECK(ids.size() == n);
    expect_no_more_messages(a);
    expect_no_more_messages(b);
    for (const auto& [body, count] : seen) {
        CHECK_MESSAGE(count == 1, body, " arrived ", count, " times");
    }
}

TEST_CASE("stomp: queue: consumers subscribed before the sends take exact turns") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client a;
    stomp_client b;
    login(a, node);
    login(b, node);
    subscribe(a, "/queue/fair", "a");
    subscribe(b, "/queue/fair", "b");
    stomp_client producer;
    login(producer, node);
    for (const auto& body : numbered(100)) {
        send_to(producer, "/queue/fair", body);
    }
    auto got_a = bodies(collect_messages(a, 50));
    auto got_b = bodies(collect_messages(b, 50));
    REQUIRE(got_a.size() == 50);
    REQUIRE(got_b.size() == 50);
    expect_no_more_messages(a);
    expect_no_more_messages(b);
    // Round-robin: one consumer gets m0, m2, m4, ..., the other m1, m3, m5, ...
    auto evens = std::vector<std::string>{};
    auto odds = std::vector<std::string>{};
    for (size_t i = 0; i < 100; ++i) {
        (i % 2 == 0 ? evens : odds).push_back("m" + std::to_string(i));
    }
    bool alternating = (got_a == evens && got_b == odds) || (got_a == odds && got_b == evens);
    CHECK_MESSAGE(alternating, "a got ", join(got_a), "; b got ", join(got_b));
}

TEST_CASE("stomp: topic: every subscriber gets every message sent after it subscribed") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client early;
    login(early, node);
    subscribe(early, "/topic/news", "early");
    stomp_client producer;
    login(producer, node);
    send_routed(producer, "/topic/news", "first");
    stomp_client late;
    login(late, node);
    subscribe(late, "/topic/news", "late");
    send_routed(producer, "/topic/news", "second");
    send_routed(producer, "/topic/news", "third");
    CHECK(bodies(collect_messages(early, 3))
          == std::vector<std::string>{"first", "second", "third"});
    auto late_msgs = collect_messages(late, 2);
    CHECK(bodies(late_msgs) == std::vector<std::string>{"second", "third"});
    REQUIRE_FALSE(late_msgs.empty());
    CHECK(header_of(late_msgs.front(), "subscription") == "late");
    CHECK(header_of(late_msgs.front(), "destination") == "/topic/news");
    expect_no_more_messages(early);
    expect_no_more_messages(late);
}

TEST_CASE("stomp: topic: a message sent with no subscriber is not kept") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client producer;
    login(producer, node);
    send_routed(producer, "/topic/void", "nobody listens");
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/topic/void", "s");
    send_routed(producer, "/topic/void", "now someone does");
    auto m = expect_message(consumer);
    CHECK(m.body == "now someone does");
    expect_no_more_messages(consumer);
}

TEST_CASE("stomp: topic: an unsubscribed subscriber gets nothing more") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/topic/leave", "s");
    stomp_client producer;
    login(producer, node);
    send_routed(producer, "/topic/leave", "before");
    CHECK(expect_message(consumer).body == "before");
    stomp::frame unsub;
    unsub.cmd = command::unsubscribe;
    unsub.add("id", "s");
    REQUIRE(consumer.send_with_receipt(unsub));
    send_routed(producer, "/topic/leave", "after");
    expect_no_more_messages(consumer);
}

TEST_CASE("stomp: destination: a bare name is an anycast queue") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client a;
    stomp_client b;
    login(a, node);
    login(b, node);
    subscribe(a, "plain.name", "a");
    subscribe(b, "plain.name", "b");
    stomp_client producer;
    login(producer, node);
    send_routed(producer, "plain.name", "one");
    send_routed(producer, "plain.name", "two");
    // Anycast: two messages, two consumers, each message once.
    std::vector<std::string> got;
    bool both = wait_until(soon(), [&] {
        for (auto* c : {&a, &b}) {
            if (auto f = c->receive(in(1ms))) {
                CHECK(header_of(*f, "destination") == "plain.name");
                got.push_back(f->body);
            }
        }
        return got.size() >= 2;
    });
    CHECK(both);
    std::sort(got.begin(), got.end());
    CHECK(got == std::vector<std::string>{"one", "two"});
    expect_no_more_messages(a);
    expect_no_more_messages(b);
}

TEST_CASE("stomp: destination: an unknown /prefix/ gets ERROR and close") {
    ACTORMQ_START_NODE(node, node_config());
    SUBCASE("on SEND") {
        stomp_client c;
        login(c, node);
        send_to(c, "/exchange/x", "body");
        expect_error_and_close(c, "destination");
    }
    SUBCASE("on SUBSCRIBE") {
        stomp_client c;
        login(c, node);
        REQUIRE(c.send(command::subscribe, {{"destination", "/exchange/x"}, {"id", "s"}}));
        expect_error_and_close(c, "destination");
    }
    expect_serving(node);
}

TEST_CASE("stomp: temp-queue: reply-to is rewritten and replies reach the owner") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client requester;
    auto connected = [&] {
        REQUIRE(requester.connect_tcp(node.port()));
        return requester.connect_stomp("guest", "guest");
    }();
    REQUIRE(connected.cmd == command::connected);
    auto session = header_of(connected, "session");
    subscribe(requester, "/temp-queue/replies", "replies");
    stomp_client service;
    login(service, node);
    subscribe(service, "/queue/service", "svc");
    send_to(requester, "/queue/service", "question", {{"reply-to", "/temp-queue/replies"}});
    auto request = expect_message(service);
    auto reply_to = header_of(request, "reply-to");
    CHECK(reply_to == "/queue/temp." + session + ".replies");
    send_to(service, reply_to, "answer");
    auto reply = expect_message(requester);
    CHECK(reply.body == "answer");
    CHECK(header_of(reply, "subscription") == "replies");
}

TEST_CASE("stomp: temp-queue: after the owner disconnects its queue is gone") {
    ACTORMQ_START_NODE(node, node_config());
    std::string temp_name;
    {
        stomp_client owner;
        REQUIRE(owner.connect_tcp(node.port()));
        auto connected = owner.connect_stomp("guest", "guest");
        REQUIRE(connected.cmd == command::connected);
        temp_name = "/queue/temp." + header_of(connected, "session") + ".replies";
        subscribe(owner, "/temp-queue/replies", "replies");
        stomp_client other;
        login(other, node);
        send_routed(other, temp_name, "while the owner is there");
        CHECK(expect_message(owner).body == "while the owner is there");
        REQUIRE(owner.send(command::disconnect, {{"receipt", "bye"}}));
        REQUIRE(owner.closed_by_peer(soon()));
    }
    // The queue is removed asynchronously after the owner's session ends, so a new client
    // tries until a SEND is refused (each refused client is closed by the server).
    stomp::frame error;
    bool refused = wait_until(
        soon(),
        [&] {
            stomp_client c;
            login(c, node);
            send_to(c, temp_name, "too late", {{"receipt", "late"}});
            auto f = c.receive(soon());
            REQUIRE(f.has_value());
            if (f->cmd == command::error) {
                error = *f;
                CHECK(c.closed_by_peer(soon()));
                return true;
            }
            REQUIRE_MESSAGE(f->cmd == command::receipt, describe(*f));
            return false;
        },
        20ms);
    REQUIRE(refused);
    CHECK_MESSAGE(header_of(error, "message").find("no such destination") != std::string::npos,
                  describe(error));
    expect_serving(node);
}

TEST_CASE("stomp: temp-queue: a session that sent to it before gets ERROR once it is gone") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client owner;
    REQUIRE(owner.connect_tcp(node.port()));
    auto connected = owner.connect_stomp("guest", "guest");
    REQUIRE(connected.cmd == command::connected);
    auto temp_name = "/queue/temp." + header_of(connected, "session") + ".x";
    subscribe(owner, "/temp-queue/x", "x");
    stomp_client other;
    login(other, node);
    send_routed(other, temp_name, "one");
    CHECK(expect_message(owner).body == "one");
    owner.close();
    // The same session that reached the queue before keeps sending until it is refused.
    stomp::frame error;
    bool refused = wait_until(
        soon(),
        [&] {
            stomp::frame f;
            f.cmd = command::send;
            f.add("destination", temp_name);
            if (other.send_with_receipt(f)) {
                return false;
            }
            auto e = other.receive_cmd(command::error, soon());
            REQUIRE_MESSAGE(e.has_value(), "neither RECEIPT nor ERROR (", other.last_error(), ")");
            error = *e;
            return true;
        },
        20ms);
    REQUIRE(refused);
    CHECK_MESSAGE(header_of(error, "message").find("no such destination") != std::string::npos,
                  describe(error));
    CHECK(other.closed_by_peer(soon()));
    expect_serving(node);
}

TEST_CASE("stomp: message: carries subscription, message-id, destination, content-length and "
          "the producer's own headers") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/headers", "sub-7");
    stomp_client producer;
    login(producer, node);
    REQUIRE(producer.send(command::begin, {{"transaction", "tx1"}}));
    send_to(producer, "/queue/headers", "{\"a\":1}",
            {{"content-type", "application/json"},
             {"reply-to", "/queue/answers"},
             {"x-custom", "custom value"},
             {"transaction", "tx1"},
             {"receipt", "send-1"}});
    REQUIRE(producer.send(command::commit, {{"transaction", "tx1"}}));
    auto m = expect_message(consumer);
    CHECK(header_of(m, "subscription") == "sub-7");
    CHECK_FALSE(header_of(m, "message-id").empty());
    CHECK(header_of(m, "destination") == "/queue/headers");
    CHECK(header_of(m, "content-length") == "7");
    CHECK(header_of(m, "content-type") == "application/json");
    CHECK(header_of(m, "reply-to") == "/queue/answers");
    CHECK(header_of(m, "x-custom") == "custom value");
    CHECK(m.body == "{\"a\":1}");
    // Frame-level headers of the producer's SEND are not part of the message.
    CHECK_FALSE(has_header(m, "transaction"));
    CHECK_FALSE(has_header(m, "receipt"));
    // An auto-ack subscription's messages carry no ack header and are not redelivered ones.
    CHECK_FALSE(has_header(m, "ack"));
    CHECK_FALSE(has_header(m, "redelivered"));
}

TEST_CASE("stomp: message: a body with NUL bytes arrives intact") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/binary", "s");
    stomp_client producer;
    login(producer, node);
    std::string body;
    for (int i = 0; i < 1024; ++i) {
        body += static_cast<char>(i % 256);
    }
    body += std::string("\0\0\n\0", 4);
    send_routed(producer, "/queue/binary", body);
    auto m = expect_message(consumer);
    CHECK(header_of(m, "content-length") == std::to_string(body.size()));
    CHECK(m.body.size() == body.size());
    CHECK(m.body == body);
}

TEST_CASE("stomp: message: header values with ':', '\\' and newlines round-trip in 1.2") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/escapes", "s");
    stomp_client producer;
    login(producer, node);
    const std::string value = "a:b\\c\nd";
    send_routed(producer, "/queue/escapes", "x", {{"x-tricky", value}});
    auto m = expect_message(consumer);
    CHECK(header_of(m, "x-tricky") == value);
}

TEST_CASE("stomp: message: a large body just under max-frame-bytes is delivered") {
    ACTORMQ_START_NODE(node, node_config("max-frame-bytes = 1048576\n"));
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/large", "s");
    stomp_client producer;
    login(producer, node);
    std::string body(1000 * 1000, 'z');
    send_routed(producer, "/queue/large", body);
    auto m = expect_message(consumer);
    CHECK(m.body.size() == body.size());
    CHECK(m.body == body);
}

TEST_CASE("stomp: receipt: the RECEIPT of a SEND comes after the message is routed") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client producer;
    login(producer, node);
    // The RECEIPT means the message is in its queue: a consumer arriving only afterwards,
    // on another connection, finds it there.
    send_routed(producer, "/queue/receipted", "routed");
    producer.close();
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/receipted", "s");
    CHECK(expect_message(consumer).body == "routed");
}

TEST_CASE("stomp: receipt: every frame with a receipt header gets its RECEIPT, in order") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    std::vector<stomp::frame> frames(6);
    frames[0].cmd = command::subscribe;
    frames[0].headers = {{"destination", "/queue/r"}, {"id", "s"}, {"receipt", "1"}};
    frames[1].cmd = command::send;
    frames[1].headers = {{"destination", "/queue/other"}, {"receipt", "2"}};
    frames[2].cmd = command::begin;
    frames[2].headers = {{"transaction", "t"}, {"receipt", "3"}};
    frames[3].cmd = command::commit;
    frames[3].headers = {{"transaction", "t"}, {"receipt", "4"}};
    frames[4].cmd = command::unsubscribe;
    frames[4].headers = {{"id", "s"}, {"receipt", "5"}};
    frames[5].cmd = command::disconnect;
    frames[5].headers = {{"receipt", "6"}};
    for (const auto& f : frames) {
        REQUIRE(c.send(f));
    }
    for (int i = 1; i <= 6; ++i) {
        auto r = c.receive(soon());
        REQUIRE(r.has_value());
        CHECK_MESSAGE(r->cmd == command::receipt, describe(*r));
        CHECK(header_of(*r, "receipt-id") == std::to_string(i));
    }
    CHECK(c.closed_by_peer(soon()));
}

} // namespace actormq::test
