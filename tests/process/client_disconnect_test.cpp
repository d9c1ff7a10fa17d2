// SPDX-License-Identifier: Apache-2.0
// An orderly stop tells native clients where to go (docs/protocol.md §15, docs/client.md
// "Failover to the backup"): a live server stopped with SIGTERM whose backup takes over
// (failover-on-shutdown) sends every native connection `disconnect` `server_stopping` naming
// that backup, and the client library goes there at once, even without `ha` (so without the
// topology), and every confirmed durable send is on the backup exactly once.
#include "support/client_sender.hpp"
#include "support/native_fixture.hpp"

#include <actormq/client/client.hpp>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace actormq::test {

namespace {

namespace ac = actormq::client;

/// The top of one pair member's config: a cluster (joining `members`), its shared-store role
/// and whether a normal stop hands over to the backup.
std::string pair_top(const std::string& role, const std::string& members, bool hand_over) {
    return "cluster-password = \"pair\"\n[cluster]\nport = 0\nmembers = [" + members
           + "]\n[ha-policy.shared-store." + role
           + "]\nfailover-on-shutdown = " + (hand_over ? "true" : "false") + "\n";
}

/// The --set list that puts a node on the shared journal.
std::vector<std::string> on_store(const temp_dir& store) {
    return {"journal-directory=" + store.path + "/journal"};
}

/// True once a native client on `port` is told `backup` is the backup of its node id.
bool topology_names(uint16_t port, const std::string& backup) {
    native_client c;
    if (!c.connect_tcp(port) || !c.login("guest", "guest", 0)) {
        return false;
    }
    for (const auto& m : c.topology_seen.members) {
        if (m.node_id == c.hello_ok_seen.node_id && m.backup == backup) {
            return true;
        }
    }
    return false;
}

/// A shared-store pair on one journal: the primary (live) and its backup, waiting.
struct pair {
    temp_dir store;
    std::optional<node_process> primary;
    std::optional<node_process> backup;
    std::string backup_native;

    explicit pair(bool hand_over) {
        primary.emplace(native_node_config("", "", pair_top("primary", "", hand_over)),
                        on_store(store));
        INFO("tail of ", primary->dir(), "/node.log:\n", primary->log_tail());
        REQUIRE(primary->wait_ready(soon()));
        REQUIRE(wait_until(soon(), [&] { return native_serves(primary->port("native")); }));
        auto members = "\"127.0.0.1:" + std::to_string(primary->port("cluster")) + "\"";
        backup.emplace(native_node_config("", "", pair_top("backup", members, hand_over)),
                       on_store(store));
        INFO("tail of ", backup->dir(), "/node.log:\n", backup->log_tail());
        REQUIRE(backup->wait_ready(soon()));
        backup_native = "127.0.0.1:" + std::to_string(backup->port("native"));
        // The live knows its backup before anything is stopped: only then can it name it.
        REQUIRE(wait_until(soon(),
                           [&] { return topology_names(primary->port("native"), backup_native); }));
    }
};

/// What the failure listener saw, in order.
struct events {
    std::mutex mu;
    std::vector<std::pair<ac::failure_event, std::string>> seen;

    bool has(ac::failure_event e) {
        std::lock_guard<std::mutex> g(mu);
        return std::any_of(seen.begin(), seen.end(), [e](const auto& s) { return s.first == e; });
    }
    std::string reason_of(ac::failure_event e) {
        std::lock_guard<std::mutex> g(mu);
        for (auto& s : seen) {
            if (s.first == e) {
                return s.second;
            }
        }
        return {};
    }
};

/// Drains `queue` on `port` until `end` arrives; returns how often each body came.
std::map<std::string, int> drain(uint16_t port, const std::string& queue, const std::string& end) {
    ac::connection_factory cf("tcp://127.0.0.1:" + std::to_string(port)
                              + "?user=guest&password=guest");
    auto conn = cf.create_connection();
    auto s = conn->create_session();
    auto c = s->create_consumer(queue);
    conn->start();
    std::map<std::string, int> seen;
    while (seen.count(end) == 0) {
        auto m = c->receive(std::chrono::seconds(10));
        REQUIRE_MESSAGE(m.has_value(), "the drain of ", queue, " stopped before ", end);
        c->acknowledge(*m);
        ++seen[m->body];
    }
    conn->close();
    return seen;
}

} // namespace

TEST_CASE("client disconnect: SIGTERM of a live with failover-on-shutdown: its native "
          "connections get disconnect server_stopping naming the backup") {
    pair p(true);
    native_client c;
    native_login(c, *p.primary);
    p.primary->kill(SIGTERM);
    auto d = c.receive_type(native::packet_type::disconnect, soon());
    REQUIRE_MESSAGE(d.has_value(), "no disconnect before the close (", c.last_error(), ")");
    const auto& body = std::get<native::disconnect>(d->body);
    CHECK(body.code == native::error_code::server_stopping);
    CHECK(body.redirect == p.backup_native);
    CHECK(c.closed_by_peer(soon()));
    REQUIRE(p.primary->wait_exit(soon()).has_value());
    // The backup does take over: the redirect named a server that serves.
    CHECK(wait_until(soon(), [&] { return native_serves(p.backup->port("native")); }));
}

TEST_CASE("client disconnect: SIGTERM of a live without failover-on-shutdown: disconnect "
          "server_stopping names nobody (the backup stays passive)") {
    pair p(false);
    native_client c;
    native_login(c, *p.primary);
    p.primary->kill(SIGTERM);
    auto d = c.receive_type(native::packet_type::disconnect, soon());
    REQUIRE_MESSAGE(d.has_value(), "no disconnect before the close (", c.last_error(), ")");
    const auto& body = std::get<native::disconnect>(d->body);
    CHECK(body.code == native::error_code::server_stopping);
    CHECK(body.redirect.empty());
    CHECK(c.closed_by_peer(soon()));
}

TEST_CASE("client disconnect: SIGTERM of the live while a client sends: the client follows the "
          "redirect to the backup at once; every confirmed send is stored once") {
    pair p(true);
    // No ha: the client never uses the topology, so only the disconnect's redirect can take it
    // to the backup. A failure-check period far above the test's deadlines shows that nothing
    // waits for it.
    ac::connection_factory cf("tcp://127.0.0.1:" + std::to_string(p.primary->port("native"))
                              + "?reconnectAttempts=-1&retryInterval=50"
                                "&clientFailureCheckPeriod=600000&user=guest&password=guest");
    auto conn = cf.create_connection();
    events ev;
    conn->add_failure_listener([&ev](ac::failure_event e, const std::string& why) {
        std::lock_guard<std::mutex> g(ev.mu);
        ev.seen.emplace_back(e, why);
    });
    auto s = conn->create_session();
    auto producer = s->create_producer("stop-q");
    producer->set_auto_duplicate_ids(true);
    retrying_sender sender{producer};

    REQUIRE(wait_until(soon(), [&] { return sender.confirmed >= 20 || sender.failed; }));
    p.primary->kill(SIGTERM);
    bool failed_over = wait_until(soon(), [&] { return ev.has(ac::failure_event::failover); });
    REQUIRE_MESSAGE(failed_over, "the failure listener never saw FAILOVER");
    CHECK(conn->current_server() == p.backup_native);
    auto why = ev.reason_of(ac::failure_event::failure_detected);
    CHECK_MESSAGE(why.find("server_stopping") != std::string::npos, why);
    int at_failover = sender.confirmed;
    REQUIRE(
        wait_until(soon(), [&] { return sender.confirmed >= at_failover + 20 || sender.failed; }));
    sender.stop();
    REQUIRE_MESSAGE(sender.error().empty(), sender.error());
    CHECK_FALSE(ev.has(ac::failure_event::disconnect));
    int sent = sender.confirmed;
    auto end = durable("end");
    producer->send(end);
    conn->close();
    CHECK(p.primary->wait_exit(soon()).has_value());

    auto seen = drain(p.backup->port("native"), "stop-q", "end");
    for (int i = 0; i < sent; ++i) {
        auto body = "m" + std::to_string(i);
        CHECK_MESSAGE(seen[body] == 1, body, " was stored ", seen[body], " times");
    }
    // The send in flight when the sender stopped was confirmed too, so nothing else is there.
    CHECK(seen.size() == static_cast<size_t>(sent) + 1);
    MESSAGE("confirmed ", sent, " sends, ", sender.unblocked.load(), " resent after UNBLOCKED");
}

} // namespace actormq::test
