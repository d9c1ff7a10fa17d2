// SPDX-License-Identifier: Apache-2.0
// The client library's automatic failover against a real shared-store pair with a cluster
// (docs/client.md "Failover", docs/protocol.md §12 and §17): the client learns the backup from
// the pushed topology, fails over by itself when the live is SIGKILLed, and with automatic
// duplicate ids every confirmed durable send is on the backup exactly once; a transaction with
// work in flight at the kill is rolled back and its retry commits once.
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

/// The --set list that puts a node on the shared journal.
std::vector<std::string> on_store(const temp_dir& store) {
    return {"journal-directory=" + store.path + "/journal"};
}

/// Drains `queue` on `port` (a plain connection, no failover) until `end` arrives; returns how
/// often each body came.
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

TEST_CASE("client failover: SIGKILL of the live; sends and a transaction go on on the backup, "
          "each stored once") {
    temp_dir store;
    ACTORMQ_START_NODE(primary, native_node_config("", "", pair_top("primary", "")),
                       on_store(store));
    REQUIRE(wait_until(soon(), [&] { return native_serves(primary.port("native")); }));
    ac::connection_factory cf("tcp://127.0.0.1:" + std::to_string(primary.port("native"))
                              + "?ha=true&reconnectAttempts=-1&retryInterval=50"
                                "&user=guest&password=guest");
    auto conn = cf.create_connection();
    failure_events ev;
    conn->add_failure_listener([&ev](ac::failure_event e, const std::string&) { ev.record(e); });
    // No backup yet: the topology after authenticated names none.
    CHECK(conn->backup_server().empty());

    // §12: the backup joins after the client connected, so only a pushed topology names it.
    auto cluster_address = "\"127.0.0.1:" + std::to_string(primary.port("cluster")) + "\"";
    ACTORMQ_START_NODE(backup, native_node_config("", "", pair_top("backup", cluster_address)),
                       on_store(store));
    auto expected_backup = "127.0.0.1:" + std::to_string(backup.port("native"));
    bool named = wait_until(soon(), [&] { return conn->backup_server() == expected_backup; });
    INFO("backup_server: ", conn->backup_server());
    REQUIRE_MESSAGE(named, "the client's topology never named the backup ", expected_backup);

    // A transaction with work in flight at the kill.
    auto tx = conn->create_session(true);
    auto tx_producer = tx->create_producer("fo-tx");
    tx_producer->set_auto_duplicate_ids(true);
    std::vector<ac::message> tx_messages{durable("t-a"), durable("t-b")};
    for (auto& m : tx_messages) {
        tx_producer->send(m);
    }

    // Durable sends in a loop, each retried after UNBLOCKED with the same duplicate id.
    auto s = conn->create_session();
    auto p = s->create_producer("fo");
    p->set_auto_duplicate_ids(true);
    retrying_sender sender{p};

    REQUIRE(wait_until(soon(), [&] { return sender.confirmed >= 20 || sender.failed; }));
    primary.kill(SIGKILL);
    bool failed_over = wait_until(soon(), [&] { return ev.has(ac::failure_event::failover); });
    REQUIRE_MESSAGE(failed_over, "the failure listener never saw FAILOVER");
    CHECK(conn->current_server() == expected_backup);
    // The backup, now live, has no backup of its own: its topology (newer than the dead
    // live's, although it counts separately) says so.
    CHECK(wait_until(soon(), [&] { return conn->backup_server().empty(); }));
    int at_failover = sender.confirmed;
    REQUIRE(
        wait_until(soon(), [&] { return sender.confirmed >= at_failover + 20 || sender.failed; }));
    sender.stop();
    REQUIRE_MESSAGE(sender.error().empty(), sender.error());
    CHECK_FALSE(ev.has(ac::failure_event::disconnect));
    int sent = sender.confirmed;

    // The transaction that had work before the failover is rollback-only.
    bool rolled_back = false;
    try {
        tx->commit();
    } catch (const ac::client_error& e) {
        rolled_back = e.kind() == ac::error_kind::transaction_rolled_back;
        INFO(e.what());
    }
    CHECK(rolled_back);
    // The retry (the same messages, so the same duplicate ids) commits.
    for (auto& m : tx_messages) {
        tx_producer->send(m);
    }
    tx->commit();
    auto end_producer = s->create_producer();
    auto end = durable("end");
    end.address = "fo";
    end_producer->send(end);
    end.address = "fo-tx";
    end_producer->send(end);
    conn->close();

    auto seen = drain(backup.port("native"), "fo", "end");
    for (int i = 0; i < sent; ++i) {
        auto body = "m" + std::to_string(i);
        CHECK_MESSAGE(seen[body] == 1, body, " was stored ", seen[body], " times");
    }
    // The send in flight when the producer stopped was confirmed too, so nothing else is there.
    CHECK(seen.size() == static_cast<size_t>(sent) + 1);
    auto tx_seen = drain(backup.port("native"), "fo-tx", "end");
    CHECK(tx_seen["t-a"] == 1);
    CHECK(tx_seen["t-b"] == 1);
    CHECK(tx_seen.size() == 3);
    MESSAGE("confirmed ", sent, " sends, ", sender.unblocked.load(), " resent after UNBLOCKED");
}

TEST_CASE("client failover: an ack of a message delivered before the failover throws UNBLOCKED "
          "(blockOnAcknowledge) or rolls the transaction back, and the backup delivers it "
          "again") {
    temp_dir store;
    ACTORMQ_START_NODE(primary, native_node_config("", "", pair_top("primary", "")),
                       on_store(store));
    REQUIRE(wait_until(soon(), [&] { return native_serves(primary.port("native")); }));
    auto cluster_address = "\"127.0.0.1:" + std::to_string(primary.port("cluster")) + "\"";
    ACTORMQ_START_NODE(backup, native_node_config("", "", pair_top("backup", cluster_address)),
                       on_store(store));
    ac::connection_factory cf("tcp://127.0.0.1:" + std::to_string(primary.port("native"))
                              + "?ha=true&reconnectAttempts=-1&retryInterval=50"
                                "&blockOnAcknowledge=true&user=guest&password=guest");
    auto conn = cf.create_connection();
    failure_events ev;
    conn->add_failure_listener([&ev](ac::failure_event e, const std::string&) { ev.record(e); });
    auto expected_backup = "127.0.0.1:" + std::to_string(backup.port("native"));
    REQUIRE(wait_until(soon(), [&] { return conn->backup_server() == expected_backup; }));
    {
        auto s = conn->create_session();
        s->create_producer("fo-ack")->send(durable("a1"));
        s->create_producer("fo-ack-tx")->send(durable("t1"));
        s->close();
    }
    auto plain = conn->create_session();
    auto c = plain->create_consumer("fo-ack");
    auto tx = conn->create_session(true);
    auto tc = tx->create_consumer("fo-ack-tx");
    conn->start();
    auto a1 = c->receive(std::chrono::seconds(10));
    auto t1 = tc->receive(std::chrono::seconds(10));
    REQUIRE(a1.has_value());
    REQUIRE(t1.has_value());

    primary.kill(SIGKILL);
    REQUIRE(wait_until(soon(), [&] { return ev.has(ac::failure_event::failover); }));
    CHECK(conn->current_server() == expected_backup);

    auto kind_of = [](const std::function<void()>& f) -> std::string {
        try {
            f();
        } catch (const ac::client_error& e) {
            INFO(e.what());
            return std::string{ac::to_string(e.kind())};
        }
        return "ok";
    };
    // The backup never delivered a1 to this session: the blocking ack says it was not applied.
    CHECK(kind_of([&] { c->acknowledge(*a1); }) == "UNBLOCKED");
    // In a transaction (which had no work at the failover) the ack cannot join it either: the
    // commit rolls back instead of committing without it.
    CHECK(kind_of([&] { tc->acknowledge(*t1); }) == "ok");
    CHECK(kind_of([&] { tx->commit(); }) == "TRANSACTION_ROLLED_BACK");
    // Both come again, and their acks now work.
    auto a1_again = c->receive(std::chrono::seconds(10));
    REQUIRE(a1_again.has_value());
    CHECK(a1_again->body == "a1");
    c->acknowledge(*a1_again);
    auto t1_again = tc->receive(std::chrono::seconds(10));
    REQUIRE(t1_again.has_value());
    CHECK(t1_again->body == "t1");
    tc->acknowledge(*t1_again);
    tx->commit();
    conn->close();
    // Nothing is left: each was acknowledged once, on the backup.
    ac::connection_factory direct("tcp://127.0.0.1:" + std::to_string(backup.port("native"))
                                  + "?user=guest&password=guest");
    auto marker = direct.create_connection();
    auto ms = marker->create_session();
    ms->create_producer("fo-ack")->send(durable("end"));
    ms->create_producer("fo-ack-tx")->send(durable("end"));
    marker->close();
    const std::map<std::string, int> only_end{{"end", 1}};
    CHECK(drain(backup.port("native"), "fo-ack", "end") == only_end);
    CHECK(drain(backup.port("native"), "fo-ack-tx", "end") == only_end);
}

} // namespace actormq::test
