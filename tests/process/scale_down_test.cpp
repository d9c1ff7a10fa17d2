// SPDX-License-Identifier: Apache-2.0
// Scale-down with real nodes (docs/ha.md, "Scale-down"; reference text "Scaling Down"): a live
// with [ha-policy.live-only.scale-down] stopped with SIGTERM moves every durable message (the
// unacknowledged delivered ones too) and its prepared XA branches to another live of its
// cluster, tells its STOMP clients (ERROR with `scale-down-to`) and its native clients (the
// scale_down packet, then a disconnect naming the target) where it goes, and only then stops.
// The reference's order caveat holds as stated; a target killed mid-copy leaves the rest in the
// source's journal, and a second scale-down completes it without a duplicate.
#include "support/client_sender.hpp"
#include "support/native_fixture.hpp"
#include "support/process_fixture.hpp"

#include <actormq/client/client.hpp>
#include <algorithm>
#include <csignal>
#include <map>
#include <mutex>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace actormq::test {

namespace {

namespace ac = actormq::client;

std::string cluster_item(const node_process& node) {
    return "\"127.0.0.1:" + std::to_string(node.port("cluster")) + "\"";
}

/// A persistent live-only node with a native acceptor, in a cluster joining `members`;
/// `scale_down` is the body of [ha-policy.live-only.scale-down] ("" for none).
std::string live_node(const std::string& members,
                      const std::optional<std::string>& scale_down = std::nullopt) {
    std::string policy = scale_down ? "[ha-policy.live-only.scale-down]\n" + *scale_down + "\n"
                                    : std::string{"[ha-policy.live-only]\n"};
    return native_node_config("",
                              policy + "[cluster]\nport = 0\nmembers = [" + members
                                  + "]\nreconnect-interval-ms = 50\nheartbeat-interval-ms = 200\n"
                                    "connection-timeout-ms = 1000\n",
                              "cluster-password = \"secret\"\npersistence-enabled = true\n");
}

std::vector<std::string> named(const std::string& name,
                               const std::string& journal = std::string{}) {
    std::vector<std::string> out{"name=\"" + name + "\""};
    if (!journal.empty()) {
        out.push_back("journal-directory=" + journal);
    }
    return out;
}

/// The value of header `name` of `f`, or "".
std::string header(const stomp::frame& f, std::string_view name) {
    const auto* v = f.find(name);
    return v != nullptr ? *v : std::string{};
}

/// Sends each body durably to `destination`, each confirmed by a RECEIPT.
void put(const node_process& node,
         const std::string& destination,
         const std::vector<std::string>& bodies) {
    stomp_client c;
    login(c, node);
    for (const auto& b : bodies) {
        stomp::frame f;
        f.cmd = command::send;
        f.add("destination", destination);
        f.add("persistent", "true");
        f.body = b;
        REQUIRE_MESSAGE(c.send_with_receipt(f, soon()), "no receipt for ", b);
    }
}

/// Consumes everything on `destination` of `node` up to the marker "end" it sends first;
/// returns the bodies in delivery order, the marker excluded.
std::vector<std::string> drain(const node_process& node, const std::string& destination) {
    put(node, destination, {"end"});
    stomp_client c;
    login(c, node);
    subscribe(c, destination, "drain", "client-individual");
    std::vector<std::string> out;
    for (;;) {
        auto m = c.receive_cmd(command::message, in(std::chrono::seconds(20)));
        REQUIRE_MESSAGE(m.has_value(), "the drain stopped after ", out.size());
        stomp::frame ack;
        ack.cmd = command::ack;
        ack.add("id", header(*m, "ack"));
        REQUIRE(c.send(ack));
        if (m->body == "end") {
            return out;
        }
        out.push_back(m->body);
    }
}

/// Two live nodes of one cluster: `target`, then `source` with scale-down (`options`).
struct two_lives {
    std::optional<node_process> target;
    std::optional<node_process> source;

    explicit two_lives(const std::string& options = "",
                       const std::string& source_journal = std::string{},
                       const std::string& target_journal = std::string{}) {
        target.emplace(live_node(""), named("target", target_journal));
        INFO("target log:\n", target->log_tail());
        REQUIRE(target->wait_ready(soon()));
        source.emplace(live_node(cluster_item(*target), options), named("source", source_journal));
        INFO("source log:\n", source->log_tail());
        REQUIRE(source->wait_ready(soon()));
        REQUIRE(log_shows(*target, "cluster_member_joined"));
        REQUIRE(log_shows(*source, "cluster_member_joined"));
    }
};

/// The exit status of `node` once it ended (within 60 s), or -1.
int exit_code(node_process& node) {
    auto status = node.wait_exit(in(std::chrono::seconds(60)));
    return status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

std::string stomp_address(const node_process& node) {
    return "127.0.0.1:" + std::to_string(node.port("stomp"));
}

std::string native_address(const node_process& node) {
    return "127.0.0.1:" + std::to_string(node.port("native"));
}

} // namespace

TEST_CASE("scale-down: SIGTERM moves every durable message, delivered-unacknowledged ones "
          "included, to the other live; the STOMP client gets ERROR scale-down-to first") {
    two_lives n;
    auto bodies = numbered(300, "m");
    put(*n.source, "/queue/orders", bodies);
    // A consumer that holds 5 messages without acknowledging them, and stays connected.
    stomp_client held;
    login(held, *n.source);
    subscribe(held, "/queue/orders", "held", "client-individual", {{"activemq.prefetchSize", "5"}});
    auto got = collect_messages(held, 5);
    REQUIRE(got.size() == 5);

    n.source->kill(SIGTERM);
    auto err = held.receive_cmd(command::error, soon());
    REQUIRE_MESSAGE(err.has_value(), "no ERROR before the close");
    CHECK(header(*err, "message") == "the server is scaling down");
    CHECK(header(*err, "scale-down-to") == stomp_address(*n.target));
    CHECK(exit_code(*n.source) == 0);
    CHECK(log_shows(*n.source, "scale_down_done target=target messages=300"));

    auto moved = drain(*n.target, "/queue/orders");
    CHECK(moved == bodies); // one queue, in its order, each once (the held 5 back at the head)
}

TEST_CASE("scale-down: the order caveat of the reference text: the target's own messages "
          "first, then the scaled-down node's, appended (1,3,5,...,2,4,6,...)") {
    two_lives n;
    std::vector<std::string> odd, even, expected;
    // One producer spreads 1..20 over the two lives, as a client balancing over both would.
    for (int i = 1; i <= 20; ++i) {
        (i % 2 == 1 ? odd : even).push_back(std::to_string(i));
    }
    put(*n.target, "/queue/spread", odd);
    put(*n.source, "/queue/spread", even);
    n.source->kill(SIGTERM);
    REQUIRE(exit_code(*n.source) == 0);
    expected = odd;
    expected.insert(expected.end(), even.begin(), even.end());
    CHECK(join(drain(*n.target, "/queue/spread")) == join(expected));
}

TEST_CASE("scale-down: native clients get the scale_down notice naming the target's native "
          "acceptor, then a disconnect whose redirect is the same") {
    two_lives n;
    native_client c;
    native_login(c, *n.source);
    n.source->kill(SIGTERM);
    auto notice = c.receive_type(native::packet_type::scale_down, soon());
    REQUIRE_MESSAGE(notice.has_value(), "no scale_down packet (", c.last_error(), ")");
    CHECK(std::get<native::scale_down>(notice->body).target == native_address(*n.target));
    auto bye = c.receive_type(native::packet_type::disconnect, soon());
    REQUIRE(bye.has_value());
    const auto& d = std::get<native::disconnect>(bye->body);
    CHECK(d.code == native::error_code::server_stopping);
    CHECK(d.redirect == native_address(*n.target));
    CHECK(exit_code(*n.source) == 0);
}

TEST_CASE("scale-down: the client library tells its failure listener and follows to the target, "
          "where the messages it left on the source wait") {
    two_lives n;
    put(*n.source, "/queue/follow", {"a", "b", "c"});
    ac::connection_factory cf("tcp://127.0.0.1:" + std::to_string(n.source->port("native"))
                              + "?reconnectAttempts=-1&retryInterval=50"
                                "&clientFailureCheckPeriod=600000&user=guest&password=guest");
    auto conn = cf.create_connection();
    std::mutex mu;
    std::vector<std::string> reasons;
    conn->add_failure_listener([&](ac::failure_event, const std::string& why) {
        std::lock_guard<std::mutex> g(mu);
        reasons.push_back(why);
    });
    n.source->kill(SIGTERM);
    REQUIRE(exit_code(*n.source) == 0);
    REQUIRE(wait_until(soon(), [&] {
        std::lock_guard<std::mutex> g(mu);
        for (const auto& r : reasons) {
            if (r.find("scaling down to " + native_address(*n.target)) != std::string::npos) {
                return true;
            }
        }
        return false;
    }));
    // The same connection object now talks to the target.
    auto s = conn->create_session();
    auto consumer = s->create_consumer("follow");
    conn->start();
    std::vector<std::string> got;
    for (int i = 0; i < 3; ++i) {
        auto m = consumer->receive(std::chrono::seconds(10));
        REQUIRE(m.has_value());
        consumer->acknowledge(*m);
        got.push_back(m->body);
    }
    CHECK(got == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("scale-down: a prepared XA branch moves whole: the target lists it, and its commit "
          "delivers what it sent") {
    two_lives n;
    ac::xid x{0x41, "scale-gtrid", "b"};
    {
        ac::connection_factory cf("tcp://127.0.0.1:" + std::to_string(n.source->port("native"))
                                  + "?user=guest&password=guest");
        auto conn = cf.create_connection();
        auto s = conn->create_xa_session();
        auto p = s->create_producer("xa-out");
        s->xa_start(x);
        p->send(durable("x1"));
        p->send(durable("x2"));
        s->xa_end(x);
        s->xa_prepare(x);
        s->close();
        conn->close();
    }
    n.source->kill(SIGTERM);
    REQUIRE(exit_code(*n.source) == 0);
    CHECK(log_shows(*n.source, "prepared_moved=1 prepared_kept=0"));
    ac::connection_factory cf("tcp://127.0.0.1:" + std::to_string(n.target->port("native"))
                              + "?user=guest&password=guest");
    auto conn = cf.create_connection();
    auto s = conn->create_xa_session();
    auto listed = s->xa_recover();
    REQUIRE(std::find(listed.begin(), listed.end(), x) != listed.end());
    // Undecided, its messages are not delivered yet.
    CHECK(drain(*n.target, "/queue/xa-out").empty());
    s->xa_commit(x);
    CHECK(drain(*n.target, "/queue/xa-out") == std::vector<std::string>{"x1", "x2"});
}

TEST_CASE("scale-down: the target killed mid-copy: the stop fails with a clear log, the source "
          "keeps what was not confirmed, and a second scale-down completes it with no "
          "duplicate") {
    temp_dir dirs;
    auto source_journal = dirs.path + "/source";
    auto target_journal = dirs.path + "/target";
    std::optional<two_lives> n;
    n.emplace("batch-messages = 1\n", source_journal, target_journal);
    auto bodies = numbered(400, "k");
    put(*n->source, "/queue/keep", bodies);
    n->source->kill(SIGTERM);
    // Batches of one message: kill the target once it stored a few, well before the end.
    REQUIRE(log_shows(*n->target, "scale_down_batch_stored from=source seq=20 "));
    n->target->kill(SIGKILL);
    INFO("source log:\n", n->source->log_tail(60));
    INFO("target log:\n", n->target->log_tail(30));
    CHECK(exit_code(*n->source) == 1);
    CHECK(log_shows(*n->source, "scale_down_failed target=target"));
    CHECK(log_shows(*n->source, "messages_kept=true"));

    // Both come back on their journals; the source scales down to the target again.
    n->source.reset();
    n->target.reset();
    n.reset();
    two_lives again("", source_journal, target_journal);
    again.source->kill(SIGTERM);
    REQUIRE(exit_code(*again.source) == 0);
    auto moved = drain(*again.target, "/queue/keep");
    std::map<std::string, int> seen;
    for (const auto& b : moved) {
        ++seen[b];
    }
    CHECK(seen.size() == bodies.size());
    for (const auto& b : bodies) {
        CHECK_MESSAGE(seen[b] == 1, b, " came ", seen[b], " times");
    }
}

TEST_CASE("scale-down: without a live to go to the stop fails and the journal keeps every "
          "message") {
    temp_dir dirs;
    auto journal = dirs.path + "/alone";
    {
        ACTORMQ_START_NODE(alone, live_node("", std::string{}), named("alone", journal));
        put(alone, "/queue/stay", {"s1", "s2"});
        alone.kill(SIGTERM);
        CHECK(exit_code(alone) == 1);
        CHECK(log_shows(alone, "scale_down_failed reason=\"no live member to scale down to\""));
    }
    ACTORMQ_START_NODE(back, live_node(""), named("alone", journal));
    CHECK(drain(back, "/queue/stay") == std::vector<std::string>{"s1", "s2"});
}

TEST_CASE("scale-down: a shared-store backup with scale-down takes over from its killed live, "
          "then scales down to the other live at once instead of serving") {
    temp_dir store;
    ACTORMQ_START_NODE(target, live_node(""), named("target"));
    auto members = cluster_item(target);
    auto pair_node = [&](const std::string& role, const std::string& extra) {
        return native_node_config("",
                                  "[ha-policy.shared-store." + role + "]\n" + extra
                                      + "[cluster]\nport = 0\nmembers = [" + members
                                      + "]\nreconnect-interval-ms = 50\n"
                                        "heartbeat-interval-ms = 200\n"
                                        "connection-timeout-ms = 1000\n",
                                  "cluster-password = \"secret\"\npersistence-enabled = true\n");
    };
    ACTORMQ_START_NODE(primary, pair_node("primary", ""),
                       named("primary", store.path + "/journal"));
    ACTORMQ_START_NODE(backup,
                       pair_node("backup", "[ha-policy.shared-store.backup.scale-down]\n"
                                           "group-name = \"\"\n"),
                       named("backup", store.path + "/journal"));
    REQUIRE(log_shows(primary, "ha_live"));
    REQUIRE(log_shows(backup, "ha_waiting_for_live"));
    auto bodies = numbered(50, "f");
    put(primary, "/queue/failover", bodies);
    primary.kill(SIGKILL);
    REQUIRE(log_shows(backup, "scale_down_after_failover"));
    CHECK(exit_code(backup) == 0);
    CHECK(log_shows(backup, "scale_down_done target=target messages=50"));
    CHECK(drain(target, "/queue/failover") == bodies);
}

} // namespace actormq::test
