// SPDX-License-Identifier: Apache-2.0
// Reattach after a real network cut (docs/protocol.md §14, §17; docs/client.md "Reattach"):
// the kernel destroys the client's TCP connection (`ss -K`) while the server keeps running. A
// client with a confirmation window reconnects to the same server within connectionTTL and
// reattaches its sessions, which the server kept: each side replays what the other had not
// received, so nothing is lost and nothing arrives twice, no call fails, an open transaction
// still commits, and the failure listeners see FAILURE_DETECTED then FAILOVER ("reattached").
#include "apps/partition/partition_proxy.hpp"
#include "support/native_fixture.hpp"
#include "support/net_cut.hpp"

#include <actormq/client/client.hpp>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <dirent.h>
#include <functional>
#include <map>
#include <mutex>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

namespace actormq::test {

namespace {

namespace ac = actormq::client;

/// What the failure listener saw, in order, and when.
struct events {
    std::mutex mu;
    std::vector<std::pair<ac::failure_event, std::string>> seen;
    test_clock::time_point failover_at;

    bool has(ac::failure_event e) {
        std::lock_guard<std::mutex> g(mu);
        return std::any_of(seen.begin(), seen.end(), [e](const auto& s) { return s.first == e; });
    }
};

ac::message text(const std::string& body, bool durable) {
    ac::message m;
    m.body = body;
    m.durable = durable;
    return m;
}

/// How often `needle` occurs in `hay`.
size_t count_of(const std::string& hay, const std::string& needle) {
    size_t n = 0;
    for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) {
        ++n;
    }
    return n;
}

/// The sum of the `resent=N` fields of the server's reattach lines.
long resent_by_server(const std::string& log) {
    long total = 0;
    const std::string key = "native_session_reattached";
    for (auto at = log.find(key); at != std::string::npos; at = log.find(key, at + 1)) {
        auto r = log.find("resent=", at);
        if (r != std::string::npos) {
            total += std::strtol(log.c_str() + r + 7, nullptr, 10);
        }
    }
    return total;
}

/// Sends `sig` to every thread of this process (the client library's threads among them).
int signal_every_thread(int sig) {
    int sent = 0;
    DIR* d = ::opendir("/proc/self/task");
    if (d == nullptr) {
        return 0;
    }
    while (auto* e = ::readdir(d)) {
        if (e->d_name[0] == '.') {
            continue;
        }
        auto tid = std::strtol(e->d_name, nullptr, 10);
        if (::syscall(SYS_tgkill, ::getpid(), tid, sig) == 0) {
            ++sent;
        }
    }
    ::closedir(d);
    return sent;
}

} // namespace

TEST_CASE("client reattach: the TCP connection is cut while the server runs: the client "
          "reattaches to the same sessions within connectionTTL; nothing lost, nothing twice") {
    ACTORMQ_START_NODE(node, native_node_config());
    const auto port = node.port("native");
    const auto server = "127.0.0.1:" + std::to_string(port);
    const int ttl_ms = 10000;
    // No ha: a reattach needs no backup. The window is what makes the sessions survive the cut
    // (-1 would fail over, recreating them).
    ac::connection_factory cf("tcp://" + server
                              + "?reconnectAttempts=-1&retryInterval=50"
                                "&confirmationWindowSize=65536&connectionTTL="
                              + std::to_string(ttl_ms) + "&user=guest&password=guest");
    auto conn = cf.create_connection();
    auto node_id = conn->node_id();
    events ev;
    conn->add_failure_listener([&ev](ac::failure_event e, const std::string& why) {
        std::lock_guard<std::mutex> g(ev.mu);
        ev.seen.emplace_back(e, why);
        if (e == ac::failure_event::failover) {
            ev.failover_at = test_clock::now();
        }
    });

    // A transaction with work before the cut: a reattached session still has it.
    auto tx = conn->create_session(true);
    auto tx_producer = tx->create_producer("ra-tx");
    tx_producer->send(text("t-a", true));
    tx_producer->send(text("t-b", true));

    // One session sends (non-durable without confirmation: only the window can save those
    // the cut catches; every tenth durable and blocking), another receives them as they come.
    auto out = conn->create_session();
    auto producer = out->create_producer("ra");
    auto in = conn->create_session();
    auto consumer = in->create_consumer("ra");
    conn->start();

    std::atomic<bool> stop{false};
    std::atomic<int> sent{0};
    std::atomic<bool> sender_failed{false};
    std::string sender_error; // written by the sender before sender_failed
    std::thread sender([&] {
        try {
            for (int i = 0; !stop; ++i) {
                producer->send(text("m" + std::to_string(i), i % 10 == 0));
                ++sent;
            }
            producer->send(text("end", true));
        } catch (const std::exception& e) {
            sender_error = e.what();
            sender_failed = true;
        }
    });
    std::mutex seen_mu;
    std::vector<std::string> order; // bodies in the order they arrived
    std::atomic<int> received{0};
    std::atomic<int> redelivered{0};
    std::atomic<bool> receiver_done{false};
    std::string receiver_error; // written by the receiver before receiver_done
    std::thread receiver([&] {
        try {
            for (;;) {
                auto m = consumer->receive(std::chrono::seconds(20));
                if (!m) {
                    receiver_error = "nothing arrived for 20 s";
                    break;
                }
                consumer->acknowledge(*m);
                if (m->delivery_count != 0) {
                    ++redelivered;
                }
                if (m->body == "end") {
                    break;
                }
                std::lock_guard<std::mutex> g(seen_mu);
                order.push_back(m->body);
                ++received;
            }
        } catch (const std::exception& e) {
            receiver_error = e.what();
        }
        receiver_done = true;
    });
    auto joiner = [&] {
        stop = true;
        if (sender.joinable()) {
            sender.join();
        }
        if (receiver.joinable()) {
            receiver.join();
        }
    };
    struct join_at_exit {
        std::function<void()> f;
        ~join_at_exit() { f(); }
    } guard{joiner};

    REQUIRE(wait_until(soon(), [&] { return received >= 300 || sender_failed || receiver_done; }));
    auto cut_at = test_clock::now();
    auto cut = cut_tcp_to(port);
    REQUIRE_MESSAGE(cut.destroyed == 1,
                    "ss -K must destroy exactly the client's connection (needs root and a "
                    "kernel with CONFIG_INET_DIAG_DESTROY): ",
                    cut.output);
    bool reattached = wait_until(soon(), [&] { return ev.has(ac::failure_event::failover); });
    REQUIRE_MESSAGE(reattached, "the failure listener never saw FAILOVER");
    int at_reattach = received;
    REQUIRE(wait_until(
        soon(), [&] { return received >= at_reattach + 300 || sender_failed || receiver_done; }));
    stop = true;
    sender.join();
    REQUIRE_MESSAGE(!sender_failed, sender_error);
    REQUIRE(wait_until(soon(), [&] { return receiver_done.load(); }));
    receiver.join();
    REQUIRE_MESSAGE(receiver_error.empty(), receiver_error);

    // The failure listeners: detected, then reattached to the same server, within the TTL.
    {
        std::lock_guard<std::mutex> g(ev.mu);
        REQUIRE(ev.seen.size() == 2);
        CHECK(ev.seen[0].first == ac::failure_event::failure_detected);
        CHECK(ev.seen[1].first == ac::failure_event::failover);
        CHECK_MESSAGE(ev.seen[1].second == "reattached to " + server, ev.seen[1].second);
        auto took = std::chrono::duration_cast<std::chrono::milliseconds>(ev.failover_at - cut_at);
        CHECK(took.count() < ttl_ms);
        MESSAGE("cut to reattached: ", took.count(), " ms; detected: ", ev.seen[0].second);
    }
    CHECK(conn->current_server() == server);
    CHECK(conn->node_id() == node_id);
    CHECK(node.running());

    // Every message once, in the order sent, none redelivered (a recreated session would get
    // the unacknowledged ones again).
    {
        std::lock_guard<std::mutex> g(seen_mu);
        REQUIRE(order.size() == static_cast<size_t>(sent));
        for (int i = 0; i < sent; ++i) {
            if (order[size_t(i)] != "m" + std::to_string(i)) {
                FAIL_CHECK("message ", i, " was ", order[size_t(i)]);
                break;
            }
        }
    }
    CHECK(redelivered == 0);
    // Every acknowledgement reached the server, those of messages delivered before the cut
    // too: once the consumer is closed, nothing comes back to a new one.
    in->close();
    auto again_session = conn->create_session();
    auto again = again_session->create_consumer("ra");
    auto left = again->receive(std::chrono::milliseconds(300));
    CHECK_MESSAGE(!left.has_value(), "unacknowledged after the reattach: ", left->body);
    again_session->close();

    // The transaction from before the cut commits: the server kept the session and its work.
    tx->commit();
    auto check = conn->create_session();
    auto tx_consumer = check->create_consumer("ra-tx");
    std::map<std::string, int> tx_seen;
    while (tx_seen.size() < 2) {
        auto m = tx_consumer->receive(std::chrono::seconds(10));
        REQUIRE_MESSAGE(m.has_value(), "the committed transaction's messages did not arrive");
        tx_consumer->acknowledge(*m);
        ++tx_seen[m->body];
    }
    CHECK(tx_seen["t-a"] == 1);
    CHECK(tx_seen["t-b"] == 1);
    CHECK_FALSE(tx_consumer->receive(std::chrono::milliseconds(200)).has_value());

    // The server says the same: three sessions detached and reattached, none expired.
    auto log = node.log_text();
    CHECK(count_of(log, "native_session_detached") == 3);
    CHECK(count_of(log, "native_session_reattached") == 3);
    CHECK(count_of(log, "native_session_expired") == 0);
    MESSAGE(sent.load(), " messages across the cut; the server resent ", resent_by_server(log),
            " packets on reattach");
    conn->close();
}

TEST_CASE("client reattach: a signal that interrupts the client's threads (EINTR) is not a "
          "connection failure") {
    ACTORMQ_START_NODE(node, native_node_config());
    // reconnectAttempts=0: a failure the client imagined would end the connection (DISCONNECT).
    ac::connection_factory cf("tcp://127.0.0.1:" + std::to_string(node.port("native"))
                              + "?user=guest&password=guest");
    auto conn = cf.create_connection();
    events ev;
    conn->add_failure_listener([&ev](ac::failure_event e, const std::string& why) {
        std::lock_guard<std::mutex> g(ev.mu);
        ev.seen.emplace_back(e, why);
    });
    // An application's handler without SA_RESTART, as std::signal installs on some systems:
    // the interrupted poll and recv fail with EINTR.
    struct sigaction sa {};
    struct sigaction old {};
    sa.sa_handler = [](int) {
    };
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    REQUIRE(::sigaction(SIGUSR1, &sa, &old) == 0);
    struct restore {
        struct sigaction old;
        ~restore() { ::sigaction(SIGUSR1, &old, nullptr); }
    } restore_at_exit{old};

    auto s = conn->create_session();
    auto p = s->create_producer("eintr");
    auto c = s->create_consumer("eintr");
    conn->start();
    for (int i = 0; i < 100; ++i) {
        REQUIRE(signal_every_thread(SIGUSR1) >= 3); // this thread, the I/O and delivery threads
        p->send(text("m" + std::to_string(i), true));
        auto m = c->receive(std::chrono::seconds(10));
        REQUIRE_MESSAGE(m.has_value(), "message ", i, " did not come back");
        CHECK(m->body == "m" + std::to_string(i));
        c->acknowledge(*m);
    }
    std::lock_guard<std::mutex> g(ev.mu);
    std::string heard;
    for (const auto& [e, why] : ev.seen) {
        heard += std::string(ac::to_string(e)) + ": " + why + "; ";
    }
    CHECK_MESSAGE(ev.seen.empty(), "the listener heard ", heard);
    conn->close();
}

} // namespace actormq::test

namespace actormq::test {

TEST_CASE("client reattach: a cut longer than connectionTTL: the server drops the sessions, the "
          "client finds them gone, recreates them and goes on; the transaction with work before "
          "the cut rolls back; nothing confirmed lost, nothing twice") {
    ACTORMQ_START_NODE(node, native_node_config());
    // The client's link runs through a proxy that can go silent both ways with the sockets
    // open, as a real network cut does (apps/partition/partition_proxy.hpp).
    partition_proxy proxy{node.port("native")};
    const int ttl_ms = 1000;
    ac::connection_factory cf("tcp://127.0.0.1:" + std::to_string(proxy.port())
                              + "?reconnectAttempts=-1&retryInterval=50"
                                "&confirmationWindowSize=65536&clientFailureCheckPeriod=300"
                                "&connectionTTL="
                              + std::to_string(ttl_ms) + "&user=guest&password=guest");
    auto conn = cf.create_connection();
    events ev;
    conn->add_failure_listener([&ev](ac::failure_event e, const std::string& why) {
        std::lock_guard<std::mutex> g(ev.mu);
        ev.seen.emplace_back(e, why);
    });
    auto tx = conn->create_session(true);
    tx->create_producer("ttl-q")->send(text("tx-before-the-cut", true));
    auto out = conn->create_session();
    auto producer = out->create_producer("ttl-q");
    for (int i = 0; i < 20; ++i) {
        producer->send(text("before-" + std::to_string(i), true)); // confirmed: blocking
    }

    proxy.block();
    // The client hears nothing for clientFailureCheckPeriod and gives the connection up (the
    // proxy passes its close on); the server keeps both sessions for the TTL, then ends them.
    REQUIRE(log_shows(node, "native_session_expired", 2));
    proxy.heal();
    // The client reconnects, asks to reattach, is told the sessions are gone, recreates them.
    REQUIRE(wait_until(soon(), [&] { return ev.has(ac::failure_event::failover); }));
    CHECK(!ev.has(ac::failure_event::disconnect));
    CHECK(log_shows(node, "reattach_not_found"));

    // The transaction had work before the failure: its commit is refused, then it can go again.
    bool rolled_back = false;
    try {
        tx->commit();
    } catch (const ac::client_error& e) {
        rolled_back = e.kind() == ac::error_kind::transaction_rolled_back;
    }
    CHECK(rolled_back);
    for (int i = 0; i < 20; ++i) {
        producer->send(text("after-" + std::to_string(i), true));
    }
    auto in = conn->create_session();
    auto consumer = in->create_consumer("ttl-q");
    conn->start();
    std::map<std::string, int> seen;
    while (seen.size() < 40) {
        auto m = consumer->receive(std::chrono::seconds(10));
        REQUIRE_MESSAGE(m.has_value(), "only ", seen.size(), " of 40 arrived");
        consumer->acknowledge(*m);
        ++seen[m->body];
    }
    CHECK(!consumer->receive(std::chrono::milliseconds(300)).has_value());
    for (const auto& [body, n] : seen) {
        CHECK_MESSAGE(n == 1, body, " arrived ", n, " times");
        CHECK(body.rfind("tx-", 0) != 0);
    }
    conn->close();
}

} // namespace actormq::test
