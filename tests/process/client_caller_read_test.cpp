// SPDX-License-Identifier: Apache-2.0
// Reading on the caller's thread (docs/client.md "Threads and sockets"): a caller that waits for
// input (receive, producer credit, an answer) reads the socket itself while the I/O thread
// leaves it alone. What must hold against a real node: a receiving thread, a listener and
// asynchronous sends on one connection all progress together (the I/O thread keeps reading
// for the listener and the completions), and a caller that is reading when the server dies
// learns it at once instead of waiting out its timeout.
#include "support/client_fixture.hpp"
#include "support/native_fixture.hpp"
#include "support/wait.hpp"

#include <actormq/client/client.hpp>
#include <atomic>
#include <signal.h>
#include <thread>

namespace actormq::test {

namespace {

namespace ac = actormq::client;

ac::message text(const std::string& body, bool durable = false) {
    ac::message m;
    m.body = body;
    m.durable = durable;
    return m;
}

} // namespace

TEST_CASE("client: a receiving thread, a listener and asynchronous sends share one connection") {
    ACTORMQ_START_NODE(node, native_node_config());
    ac::connection_factory cf(client_url(node));
    auto conn = cf.create_connection();
    auto received_session = conn->create_session();
    auto received = received_session->create_consumer("caller.pull");
    auto listened_session = conn->create_session();
    auto listened = listened_session->create_consumer("caller.push");
    std::atomic<int> heard{0};
    listened->set_message_listener([&](ac::message m) {
        listened->acknowledge(m);
        heard++;
    });
    conn->start();

    const int n = 3000; // several 64 KiB batches and producer windows: credit waits read too
    std::atomic<int> pulled{0};
    std::atomic<bool> pull_failed{false};
    std::thread puller([&] {
        try {
            while (pulled < n) {
                if (auto m = received->receive(std::chrono::seconds(20))) {
                    received->acknowledge(*m);
                    pulled++;
                } else {
                    break; // nothing for 20 s: counted as a failure below
                }
            }
        } catch (...) {
            pull_failed = true;
        }
    });

    auto sending = conn->create_session();
    auto to_pull = sending->create_producer("caller.pull");
    auto to_push = sending->create_producer("caller.push");
    std::atomic<int> completed{0};
    std::atomic<int> failed{0};
    for (int i = 0; i < n; ++i) {
        auto a = text("pull-" + std::to_string(i));
        to_pull->send(a);
        auto b = text("push-" + std::to_string(i));
        if (i % 10 == 0) {
            // Confirmed asynchronously: the completion runs on the I/O thread after a read.
            to_push->send_async(b, [&](std::exception_ptr e) { (e ? failed : completed)++; });
        } else {
            to_push->send(b);
        }
    }
    puller.join();
    CHECK_FALSE(pull_failed.load());
    CHECK(pulled.load() == n);
    REQUIRE(wait_until(in(std::chrono::seconds(20)),
                       [&] { return heard.load() == n && completed.load() == n / 10; }));
    CHECK(failed.load() == 0);
}

TEST_CASE("client: a caller reading the socket when the server dies is told at once") {
    ACTORMQ_START_NODE(node, native_node_config());
    ac::connection_factory cf(client_url(node)); // no ha, no reconnect: the failure is final
    auto conn = cf.create_connection();
    auto c = conn->create_session()->create_consumer("caller.dies");
    conn->start();
    // An empty queue: the receiving thread reads the socket itself, waiting for a delivery.
    std::atomic<bool> threw{false};
    std::atomic<bool> returned{false};
    std::thread waiter([&] {
        try {
            (void)c->receive(std::chrono::seconds(60));
        } catch (const ac::client_error&) {
            threw = true;
        }
        returned = true;
    });
    // Whether it reads the socket or waits for the I/O thread to, it must learn of the end.
    node.kill(SIGKILL);
    // Far below the 60 s receive timeout: the reader saw the socket close.
    bool done = wait_until(in(std::chrono::seconds(10)), [&] { return returned.load(); });
    if (!done) {
        conn->close(); // unblocks the receive so the thread can be joined
    }
    waiter.join();
    CHECK(done);
    CHECK(threw.load());
}

} // namespace actormq::test
