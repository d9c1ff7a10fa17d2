// SPDX-License-Identifier: Apache-2.0
// The client library's write coalescing against a real node (protocol/client, docs/client.md
// "Throughput"): fire-and-forget sends, acks and credits wait in an output buffer for the next
// write or the I/O thread, and acks in delivery order become one cumulative ack. What the
// application sees must not change: every send arrives even if the application then sends
// nothing more, and exactly the acknowledged messages are gone.
#include "support/client_fixture.hpp"
#include "support/native_fixture.hpp"
#include "support/wait.hpp"

#include <actormq/client/client.hpp>
#include <actormq/client/test_seam.hpp>
#include <algorithm>
#include <thread>

namespace actormq::test {

namespace {

namespace ac = actormq::client;

ac::message text(const std::string& body) {
    ac::message m;
    m.body = body;
    m.durable = false; // blockOnNonDurableSend is false: fire and forget
    return m;
}

/// Receives until `timeout` passes without a message; the bodies in order.
std::vector<std::string> receive_all(ac::consumer& c, std::chrono::milliseconds timeout) {
    std::vector<std::string> out;
    while (auto m = c.receive(timeout)) {
        out.push_back(m->body);
        c.acknowledge(*m);
    }
    return out;
}

} // namespace

TEST_CASE("client: fire-and-forget sends leave the client without another call") {
    ACTORMQ_START_NODE(node, native_node_config());
    ac::connection_factory cf(client_url(node));
    auto reader = cf.create_connection();
    auto rs = reader->create_session();
    auto c = rs->create_consumer("batch.idle");
    reader->start();

    auto writer = cf.create_connection();
    auto p = writer->create_session()->create_producer("batch.idle");
    for (int i = 0; i < 3; ++i) {
        p->send(text("idle-" + std::to_string(i)));
    }
    // The writer makes no further call: the I/O thread must write what the sends queued.
    std::vector<std::string> got;
    REQUIRE(wait_until(in(std::chrono::seconds(10)), [&] {
        if (auto m = c->receive(std::chrono::milliseconds(50))) {
            got.push_back(m->body);
            c->acknowledge(*m);
        }
        return got.size() == 3;
    }));
    CHECK(got == std::vector<std::string>{"idle-0", "idle-1", "idle-2"});
}

TEST_CASE("client: many fire-and-forget sends arrive once and in order") {
    ACTORMQ_START_NODE(node, native_node_config());
    ac::connection_factory cf(client_url(node));
    auto writer = cf.create_connection();
    auto ws = writer->create_session();
    auto p = ws->create_producer("batch.many");
    const int n = 5000; // far more than one 64 KiB buffer and one 64 KiB producer window
    for (int i = 0; i < n; ++i) {
        p->send(text("m" + std::to_string(i)));
    }
    ws->close(); // answered after every send before it

    auto reader = cf.create_connection();
    auto c = reader->create_session()->create_consumer("batch.many");
    reader->start();
    auto got = receive_all(*c, std::chrono::milliseconds(1000));
    REQUIRE(got.size() == size_t(n));
    for (int i = 0; i < n; ++i) {
        CHECK(got[size_t(i)] == "m" + std::to_string(i));
    }
}

TEST_CASE("client: in-order acks coalesce, an out-of-order ack stays individual, and exactly the "
          "acknowledged messages are consumed") {
    ACTORMQ_START_NODE(node, native_node_config());
    ac::connection_factory cf(client_url(node));
    auto writer = cf.create_connection();
    auto ws = writer->create_session();
    auto p = ws->create_producer("batch.acks");
    for (int i = 0; i < 200; ++i) {
        p->send(text(std::to_string(i)));
    }
    ws->close();

    auto conn = cf.create_connection();
    auto s = conn->create_session();
    auto c = s->create_consumer("batch.acks");
    conn->start();
    std::vector<ac::message> got;
    while (got.size() < 200) {
        auto m = c->receive(std::chrono::seconds(10));
        REQUIRE(m.has_value());
        got.push_back(*m);
    }
    for (int i = 0; i < 100; ++i) {
        c->acknowledge(got[size_t(i)]); // in delivery order: one cumulative ack for all 100
    }
    c->acknowledge(got[150]); // out of order: individually, after the cumulative one
    c->acknowledge(got[120]);
    c->close(); // the 98 unacknowledged go back to the queue

    auto c2 = s->create_consumer("batch.acks");
    auto rest = receive_all(*c2, std::chrono::milliseconds(1000));
    std::vector<std::string> expected;
    for (int i = 100; i < 200; ++i) {
        if (i != 120 && i != 150) {
            expected.push_back(std::to_string(i));
        }
    }
    std::sort(rest.begin(), rest.end());
    std::sort(expected.begin(), expected.end());
    CHECK(rest == expected);
}

TEST_CASE("client: fire-and-forget sends right before the connection's close all arrive") {
    ACTORMQ_START_NODE(node, native_node_config());
    ac::connection_factory cf(client_url(node));
    auto writer = cf.create_connection();
    auto p = writer->create_session()->create_producer("batch.goodbye");
    // The producer is new: the session has not looked the address up yet, so when the close
    // comes most of these sends still wait behind that lookup. They must all arrive.
    for (int i = 0; i < 200; ++i) {
        p->send(text("g" + std::to_string(i)));
    }
    // No session close: the last sends and the disconnect reach the server in one read, and
    // the server must hand the sends to their session before it closes the sessions.
    writer->close();

    auto reader = cf.create_connection();
    auto c = reader->create_session()->create_consumer("batch.goodbye");
    reader->start();
    auto got = receive_all(*c, std::chrono::milliseconds(1000));
    REQUIRE(got.size() == 200);
    for (int i = 0; i < 200; ++i) {
        CHECK(got[size_t(i)] == "g" + std::to_string(i));
    }
}

TEST_CASE("client: coalesced acks are sent before the connection says goodbye") {
    ACTORMQ_START_NODE(node, native_node_config());
    ac::connection_factory cf(client_url(node));
    auto writer = cf.create_connection();
    auto ws = writer->create_session();
    auto p = ws->create_producer("batch.close");
    for (int i = 0; i < 50; ++i) {
        p->send(text(std::to_string(i)));
    }
    ws->close();

    auto conn = cf.create_connection();
    auto c = conn->create_session()->create_consumer("batch.close");
    conn->start();
    for (int i = 0; i < 30; ++i) {
        auto m = c->receive(std::chrono::seconds(10));
        REQUIRE(m.has_value());
        c->acknowledge(*m); // in order: coalesced, not written yet
    }
    conn->close(); // the server returns unacknowledged deliveries to the queue

    auto reader = cf.create_connection();
    auto c2 = reader->create_session()->create_consumer("batch.close");
    reader->start();
    auto rest = receive_all(*c2, std::chrono::milliseconds(1000));
    std::vector<std::string> expected;
    for (int i = 30; i < 50; ++i) {
        expected.push_back(std::to_string(i));
    }
    std::sort(rest.begin(), rest.end());
    std::sort(expected.begin(), expected.end());
    CHECK(rest == expected);
}

TEST_CASE("client: a busy producer and consumer write their own batches without waking the I/O "
          "threads for each") {
    // A producer writes its queued sends itself every 64 KiB and a consumer its coalesced acks
    // before it reads; the I/O thread writes only what is left. It used to be woken for the
    // first packet queued after each of those writes (about one wake per 16 sends, and a write
    // of that packet nearly alone); it now lingers while callers keep writing.
    ACTORMQ_START_NODE(node, native_node_config());
    ac::connection_factory cf(client_url(node));
    auto reader = cf.create_connection();
    auto c = reader->create_session()->create_consumer("batch.busy");
    reader->start();
    auto writer = cf.create_connection();
    auto p = writer->create_session()->create_producer("batch.busy");
    constexpr int count = 20000;
    const std::string pad(1000, 'x');
    auto wakes_before = ac::test_seam::io_wakes();
    std::vector<std::string> got;
    std::thread consumer([&] {
        while (got.size() < count) {
            auto m = c->receive(std::chrono::seconds(10));
            if (!m) {
                return;
            }
            got.push_back(m->body.substr(0, m->body.find(':')));
            c->acknowledge(*m);
        }
    });
    for (int i = 0; i < count; ++i) {
        p->send(text(std::to_string(i) + ":" + pad));
    }
    consumer.join();
    auto wakes = ac::test_seam::io_wakes() - wakes_before;
    REQUIRE(got.size() == count);
    for (int i = 0; i < count; ++i) {
        REQUIRE(got[size_t(i)] == std::to_string(i));
    }
    MESSAGE("I/O thread wakes for ", count, " messages: ", wakes);
    CHECK_MESSAGE(wakes < count / 100, "I/O thread wakes: ", wakes);
}

TEST_CASE("client: a connection held by a small read window reads again each time its sessions "
          "catch up") {
    // Sessions confirm handled input straight to the connection's counter; only a connection
    // that stopped reading for read-window-bytes is handed anything. With a 4 KiB window it
    // stops and resumes every few packets: a lost resume would stall the run.
    ACTORMQ_START_NODE(node, native_node_config("read-window-bytes = 4096\n"));
    ac::connection_factory cf(client_url(node));
    auto conn = cf.create_connection();
    auto c = conn->create_session()->create_consumer("batch.window");
    auto p = conn->create_session()->create_producer("batch.window");
    conn->start();
    constexpr int count = 3000;
    const std::string pad(1000, 'w');
    std::vector<std::string> got;
    std::thread consumer([&] {
        while (got.size() < count) {
            auto m = c->receive(std::chrono::seconds(10));
            if (!m) {
                return;
            }
            got.push_back(m->body.substr(0, m->body.find(':')));
            c->acknowledge(*m);
        }
    });
    for (int i = 0; i < count; ++i) {
        p->send(text(std::to_string(i) + ":" + pad));
    }
    consumer.join();
    REQUIRE(got.size() == count);
    for (int i = 0; i < count; ++i) {
        REQUIRE(got[size_t(i)] == std::to_string(i));
    }
}

} // namespace actormq::test
