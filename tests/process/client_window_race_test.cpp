// SPDX-License-Identifier: Apache-2.0
// The race between a send that waits for confirmation-window room and a connection failure
// (docs/protocol.md §14, docs/client.md "Reattach"), driven deterministically through the
// client library's test seam (actormq/client/test_seam.hpp). A send that waits for room releases
// the connection's lock; meanwhile the connection may fail and reattach, or fail over. After a
// reattach the send must go only to the window, which resends it in order after the server's
// answer (written at once, it reached the server ahead of the packets the window resends, and
// the server failed the session's stream: "sequence N+1 ... expected N"). After a failover the
// session's numbering started again, so the send throws UNBLOCKED.
#include "apps/partition/partition_proxy.hpp"
#include "support/client_sender.hpp"
#include "support/native_fixture.hpp"
#include "support/socket.hpp"

#include <actormq/client/client.hpp>
#include <actormq/client/test_seam.hpp>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace actormq::test {

namespace {

namespace ac = actormq::client;
namespace seam = actormq::client::test_seam;

/// A point of the test seam at which the first library thread to arrive is held until the
/// test opens the gate; later arrivals pass (and are counted).
class gate {
public:
    void arrive() {
        std::unique_lock<std::mutex> l(mu_);
        if (++arrivals_ > 1) {
            return;
        }
        cv_.notify_all();
        cv_.wait(l, [this] { return open_; });
    }
    bool reached() {
        std::lock_guard<std::mutex> g(mu_);
        return arrivals_ > 0;
    }
    int arrivals() {
        std::lock_guard<std::mutex> g(mu_);
        return arrivals_;
    }
    void open() {
        std::lock_guard<std::mutex> g(mu_);
        open_ = true;
        cv_.notify_all();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    int arrivals_ = 0;
    bool open_ = false;
};

/// Installs a hook that holds the seam's points at their gates; removes it (and opens every
/// gate, so no library thread stays held) when the test ends.
struct held_points {
    gate send_room;
    gate reattach_answer;
    held_points() {
        seam::set_hook([this](seam::point p) {
            (p == seam::point::send_window_room ? send_room : reattach_answer).arrive();
        });
    }
    ~held_points() {
        send_room.open();
        reattach_answer.open();
        seam::set_hook({});
    }
};

/// Opens both gates and joins the sending thread however a test case ends (a failed
/// REQUIRE included), so no thread is left held in the client library.
struct join_at_exit {
    held_points& h;
    std::thread& t;
    ~join_at_exit() {
        h.send_room.open();
        h.reattach_answer.open();
        if (t.joinable()) {
            t.join();
        }
    }
};

ac::message text(const std::string& body) {
    ac::message m;
    m.body = body;
    m.body.resize(1000, '.'); // about an eighth of the window below each
    return m;
}

std::string body_of(const ac::message& m) {
    return m.body.substr(0, m.body.find('.'));
}

size_t count_of(const std::string& hay, const std::string& needle) {
    size_t n = 0;
    for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) {
        ++n;
    }
    return n;
}

/// The connection parameters of both tests: a window of 8 KiB (a few 1 KB sends fill it, and
/// the server confirms each half), a quick retry.
const std::string window_params = "reconnectAttempts=-1&retryInterval=50"
                                  "&confirmationWindowSize=8192&user=guest&password=guest";

} // namespace

TEST_CASE("client window race: a send that waited for window room while the connection failed "
          "goes only to the window and is resent in order after the reattach answer") {
    ACTORMQ_START_NODE(node, native_node_config());
    // Through a proxy that can drop what the client writes: the server must lack a packet the
    // window holds when the reattach comes, or writing out of order would go unnoticed.
    partition_proxy proxy{node.port("native")};
    ac::connection_factory cf("tcp://127.0.0.1:" + std::to_string(proxy.port()) + "?"
                              + window_params + "&connectionTTL=10000");
    auto conn = cf.create_connection();
    failure_events ev;
    conn->add_failure_listener([&ev](ac::failure_event e, const std::string&) { ev.record(e); });
    auto session = conn->create_session();
    auto producer = session->create_producer("wr");
    held_points held;

    // 1. Fire-and-forget sends until one waits for room and gets it: the seam holds it there,
    // its lock released, not yet numbered.
    std::atomic<int> sent{0};
    std::atomic<bool> sender_done{false};
    std::string sender_error; // written before sender_done
    std::thread sender([&] {
        try {
            for (int i = 0; !held.send_room.reached(); ++i) {
                producer->send(text("m" + std::to_string(i)));
                ++sent;
            }
        } catch (const std::exception& e) {
            sender_error = e.what();
        }
        sender_done = true;
    });
    join_at_exit joiner{held, sender};
    REQUIRE(wait_until(soon(), [&] { return held.send_room.reached() || sender_done; }));
    REQUIRE_MESSAGE(!sender_done, sender_error);
    const int before_held = sent; // m0 .. m(before_held-1) went before the held send

    // 2. The network drops everything from now on; a send of this thread goes into the window
    // and is lost on the way. The server now lacks it when the client reattaches.
    proxy.block();
    // The proxy's loop reads block() when it next turns: a connection it accepts after block()
    // proves it turned once, so everything it reads from now on is dropped.
    auto accepted = proxy.connections();
    std::string probe_error;
    int probe = connect_loopback(proxy.port(), probe_error);
    REQUIRE_MESSAGE(probe >= 0, probe_error);
    REQUIRE(wait_until(soon(), [&] { return proxy.connections() > accepted; }));
    ::close(probe);
    producer->send(text("gap"));

    // 3. The proxy closes the link: the client reconnects and asks to reattach; the seam holds
    // the server's answer, the session still detached.
    proxy.heal();
    REQUIRE(wait_until(soon(), [&] { return held.reattach_answer.reached(); }));

    // 4. The held send goes on now, during the reattach, and returns.
    held.send_room.open();
    REQUIRE(wait_until(soon(), [&] { return sender_done.load(); }));
    sender.join();
    REQUIRE_MESSAGE(sender_error.empty(), sender_error);
    REQUIRE(sent == before_held + 1);

    // 5. The answer is handled: the window resends "gap", then the held send.
    held.reattach_answer.open();
    REQUIRE(wait_until(soon(), [&] { return ev.has(ac::failure_event::failover); }));
    producer->send(durable("end")); // blocking: the stream works after the reattach
    {
        std::lock_guard<std::mutex> g(ev.mu);
        CHECK(ev.seen
              == std::vector<ac::failure_event>{ac::failure_event::failure_detected,
                                                ac::failure_event::failover});
    }
    CHECK(held.reattach_answer.arrivals() == 1); // one reattach, not a second after an error

    // Every message once, in the order sent.
    auto in = conn->create_session();
    auto consumer = in->create_consumer("wr");
    conn->start();
    std::vector<std::string> expected;
    for (int i = 0; i < before_held; ++i) {
        expected.push_back("m" + std::to_string(i));
    }
    expected.push_back("gap");
    expected.push_back("m" + std::to_string(before_held));
    expected.push_back("end");
    std::vector<std::string> got;
    while (got.size() < expected.size()) {
        auto m = consumer->receive(std::chrono::seconds(10));
        if (!m) {
            break;
        }
        consumer->acknowledge(*m);
        got.push_back(body_of(*m));
    }
    CHECK(got == expected);
    CHECK_FALSE(consumer->receive(std::chrono::milliseconds(200)).has_value());
    auto log = node.log_text();
    CHECK(count_of(log, "unexpected_packet") == 0);
    CHECK(count_of(log, "native_session_reattached") == 1);
    conn->close();
}

TEST_CASE("client window race: a send that waited for window room while the client failed over "
          "throws UNBLOCKED") {
    temp_dir store;
    std::vector<std::string> on_store{"journal-directory=" + store.path + "/journal"};
    ACTORMQ_START_NODE(primary, native_node_config("", "", pair_top("primary", "")), on_store);
    REQUIRE(wait_until(soon(), [&] { return native_serves(primary.port("native")); }));
    auto cluster_address = "\"127.0.0.1:" + std::to_string(primary.port("cluster")) + "\"";
    ACTORMQ_START_NODE(backup, native_node_config("", "", pair_top("backup", cluster_address)),
                       on_store);
    ac::connection_factory cf("tcp://127.0.0.1:" + std::to_string(primary.port("native"))
                              + "?ha=true&" + window_params);
    auto conn = cf.create_connection();
    auto expected_backup = "127.0.0.1:" + std::to_string(backup.port("native"));
    REQUIRE(wait_until(soon(), [&] { return conn->backup_server() == expected_backup; }));
    failure_events ev;
    conn->add_failure_listener([&ev](ac::failure_event e, const std::string&) { ev.record(e); });
    auto session = conn->create_session();
    auto producer = session->create_producer("wf");
    held_points held;

    std::atomic<bool> sender_done{false};
    std::optional<ac::error_kind> held_send_error; // of the send the seam held
    std::string sender_error;                      // anything else; written before sender_done
    std::thread sender([&] {
        try {
            for (int i = 0; !held.send_room.reached(); ++i) {
                try {
                    producer->send(text("m" + std::to_string(i)));
                } catch (const ac::client_error& e) {
                    if (!held.send_room.reached()) {
                        throw;
                    }
                    held_send_error = e.kind();
                }
            }
        } catch (const std::exception& e) {
            sender_error = e.what();
        }
        sender_done = true;
    });
    join_at_exit joiner{held, sender};
    REQUIRE(wait_until(soon(), [&] { return held.send_room.reached() || sender_done; }));
    REQUIRE_MESSAGE(!sender_done, sender_error);

    // The live dies while the send is held; the client fails over and recreates the session.
    primary.kill(SIGKILL);
    REQUIRE(wait_until(soon(), [&] { return ev.has(ac::failure_event::failover); }));
    CHECK(conn->current_server() == expected_backup);

    held.send_room.open();
    REQUIRE(wait_until(soon(), [&] { return sender_done.load(); }));
    sender.join();
    REQUIRE_MESSAGE(sender_error.empty(), sender_error);
    REQUIRE_MESSAGE(held_send_error.has_value(), "the held send returned as if it had worked");
    CHECK(*held_send_error == ac::error_kind::unblocked);

    // The recreated session works: its numbering was not disturbed by the held send.
    producer->send(durable("after"));
    auto in = conn->create_session();
    auto consumer = in->create_consumer("wf");
    conn->start();
    bool after_seen = false;
    while (!after_seen) {
        auto m = consumer->receive(std::chrono::seconds(10));
        REQUIRE_MESSAGE(m.has_value(), "\"after\" never arrived on the backup");
        consumer->acknowledge(*m);
        after_seen = body_of(*m) == "after";
    }
    CHECK(!ev.has(ac::failure_event::disconnect));
    CHECK(count_of(backup.log_text(), "unexpected_packet") == 0);
    conn->close();
}

} // namespace actormq::test
