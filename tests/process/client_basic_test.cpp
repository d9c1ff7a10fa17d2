// SPDX-License-Identifier: Apache-2.0
// The client library (protocol/client, docs/client.md) against a real node: send and receive,
// durable sends confirmed, transactions, a listener, and STOMP and native on one queue.
#include "support/client_fixture.hpp"
#include "support/native_fixture.hpp"

#include <actormq/client/client.hpp>
#include <atomic>
#include <csignal>
#include <mutex>

namespace actormq::test {

namespace {

namespace ac = actormq::client;

ac::message text(const std::string& body, bool durable = true) {
    ac::message m;
    m.body = body;
    m.durable = durable;
    return m;
}

} // namespace

TEST_CASE("client: a durable send is confirmed and received, then acknowledged once") {
    ACTORMQ_START_NODE(node, native_node_config());
    ac::connection_factory cf(client_url(node));
    auto conn = cf.create_connection();
    CHECK_FALSE(conn->node_id().empty());
    auto s = conn->create_session();
    auto p = s->create_producer("orders");
    for (int i = 0; i < 5; ++i) {
        p->send(text("m" + std::to_string(i))); // blockOnDurableSend: returns once stored
    }
    auto c = s->create_consumer("orders");
    conn->start();
    for (int i = 0; i < 5; ++i) {
        auto m = c->receive(std::chrono::seconds(10));
        REQUIRE(m.has_value());
        CHECK(m->body == "m" + std::to_string(i));
        CHECK(m->durable);
        CHECK(m->address == "orders");
        c->acknowledge(*m);
    }
    CHECK_FALSE(c->receive(std::chrono::milliseconds(200)).has_value());
    conn->close();
    // Nothing is left: a second connection gets nothing.
    auto conn2 = cf.create_connection();
    auto s2 = conn2->create_session();
    auto c2 = s2->create_consumer("orders");
    conn2->start();
    CHECK_FALSE(c2->receive(std::chrono::milliseconds(300)).has_value());
}

TEST_CASE("client: a message sent by STOMP is received natively, and the other way round") {
    ACTORMQ_START_NODE(node, native_node_config());
    stomp_client st;
    login(st, node);
    REQUIRE(send_durable(st, "/queue/mixed", "from-stomp"));
    ac::connection_factory cf(client_url(node));
    auto conn = cf.create_connection();
    auto s = conn->create_session();
    auto c = s->create_consumer("mixed");
    conn->start();
    auto m = c->receive(std::chrono::seconds(10));
    REQUIRE(m.has_value());
    CHECK(m->body == "from-stomp");
    c->acknowledge(*m);
    c->close(); // else the anycast queue may hand the next message to it
    auto p = s->create_producer("mixed");
    p->send(text("from-native"));
    subscribe(st, "/queue/mixed", "sub-1");
    auto f = expect_message(st);
    CHECK(f.body == "from-native");
}

TEST_CASE("client: a transaction's sends appear at commit, not at rollback") {
    ACTORMQ_START_NODE(node, native_node_config());
    ac::connection_factory cf(client_url(node));
    auto conn = cf.create_connection();
    auto tx = conn->create_session(true);
    auto p = tx->create_producer("tx");
    p->send(text("rolled-back"));
    tx->rollback();
    p->send(text("committed"));
    auto plain = conn->create_session();
    auto c = plain->create_consumer("tx");
    conn->start();
    CHECK_FALSE(c->receive(std::chrono::milliseconds(300)).has_value());
    tx->commit();
    auto m = c->receive(std::chrono::seconds(10));
    REQUIRE(m.has_value());
    CHECK(m->body == "committed");
    CHECK_FALSE(c->receive(std::chrono::milliseconds(200)).has_value());
    // Not transacted: commit is refused by the client itself.
    CHECK_THROWS_AS(plain->commit(), ac::client_error);
}

TEST_CASE("client: a listener gets every message; asynchronous sends complete") {
    ACTORMQ_START_NODE(node, native_node_config());
    ac::connection_factory cf(client_url(node));
    auto conn = cf.create_connection();
    auto s = conn->create_session();
    auto c = s->create_consumer("listened");
    std::mutex mu;
    std::vector<std::string> got;
    c->set_message_listener([&](ac::message m) {
        c->acknowledge(m);
        std::lock_guard<std::mutex> g(mu);
        got.push_back(m.body);
    });
    conn->start();
    auto p = s->create_producer("listened");
    std::atomic<int> completed{0};
    std::atomic<int> failed{0};
    for (int i = 0; i < 20; ++i) {
        auto m = text("a" + std::to_string(i));
        p->send_async(m, [&](std::exception_ptr e) { (e ? failed : completed)++; });
    }
    CHECK(wait_until(soon(), [&] { return completed.load() == 20; }));
    CHECK(failed.load() == 0);
    CHECK(wait_until(soon(), [&] {
        std::lock_guard<std::mutex> g(mu);
        return got.size() == 20;
    }));
    std::lock_guard<std::mutex> g(mu);
    for (size_t i = 0; i < got.size(); ++i) {
        CHECK(got[i] == "a" + std::to_string(i));
    }
}

TEST_CASE("client: no server: CONNECTION_FAILED after initialConnectAttempts") {
    // Port 1 on loopback refuses at once.
    ac::connection_factory cf("tcp://127.0.0.1:1?initialConnectAttempts=2&retryInterval=10"
                              "&maxRetryInterval=10");
    try {
        cf.create_connection("guest", "guest");
        FAIL("connected to nothing");
    } catch (const ac::client_error& e) {
        CHECK(e.kind() == ac::error_kind::connection_failed);
        CHECK(std::string(e.what()).find("2 attempt(s)") != std::string::npos);
    }
}

TEST_CASE("client: wrong credentials: CONNECTION_FAILED naming authentication_failed") {
    ACTORMQ_START_NODE(node, native_node_config());
    ac::connection_factory cf(client_url(node));
    try {
        cf.create_connection("guest", "wrong");
        FAIL("authenticated with a wrong password");
    } catch (const ac::client_error& e) {
        CHECK(e.kind() == ac::error_kind::connection_failed);
        CHECK(std::string(e.what()).find("authentication_failed") != std::string::npos);
    }
}

} // namespace actormq::test

namespace actormq::test {

TEST_CASE("client: SIGKILL of the node with reconnectAttempts=0: FAILURE_DETECTED, DISCONNECT, "
          "and calls throw DISCONNECTED") {
    namespace ac = actormq::client;
    ACTORMQ_START_NODE(node, native_node_config());
    ac::connection_factory cf("tcp://127.0.0.1:" + std::to_string(node.port("native"))
                              + "?user=guest&password=guest");
    auto conn = cf.create_connection();
    std::mutex mu;
    std::vector<std::string> events;
    conn->add_failure_listener([&](ac::failure_event e, const std::string&) {
        std::lock_guard<std::mutex> g(mu);
        events.emplace_back(ac::to_string(e));
    });
    auto s = conn->create_session();
    auto p = s->create_producer("gone");
    node.kill(SIGKILL);
    REQUIRE(wait_until(soon(), [&] {
        std::lock_guard<std::mutex> g(mu);
        return events.size() == 2;
    }));
    {
        std::lock_guard<std::mutex> g(mu);
        CHECK(events == std::vector<std::string>{"FAILURE_DETECTED", "DISCONNECT"});
    }
    ac::message m;
    m.body = "x";
    try {
        p->send(m);
        FAIL("sent on a dead connection");
    } catch (const ac::client_error& e) {
        CHECK(e.kind() == ac::error_kind::disconnected);
    }
}

} // namespace actormq::test
