// SPDX-License-Identifier: Apache-2.0
// Two-phase transactions by xid through the client library against real nodes
// (docs/protocol.md §10, docs/client.md "XA"): a prepared branch survives SIGKILL and a
// shared-store failover, xa_recover lists it, and its commit delivers its messages exactly once
// (its rollback delivers nothing and returns what it acknowledged); commit and rollback come
// from any connection; XA_RETRY when a failover hides a commit's outcome.
#include "support/client_sender.hpp"
#include "support/native_fixture.hpp"

#include <actormq/client/client.hpp>
#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>

namespace actormq::test {

namespace {

namespace ac = actormq::client;

std::string url(uint16_t port, const std::string& extra = "") {
    return "tcp://127.0.0.1:" + std::to_string(port) + "?user=guest&password=guest" + extra;
}

/// The --set that puts a node's journal in `dir` (kept across restarts and shared by a pair).
std::vector<std::string> journal_in(const temp_dir& dir) {
    return {"journal-directory=" + dir.path + "/journal"};
}

ac::xid make_xid(const std::string& gtrid, const std::string& bqual = "b") {
    return ac::xid{0x41, gtrid, bqual};
}

bool contains(const std::vector<ac::xid>& xs, const ac::xid& x) {
    return std::find(xs.begin(), xs.end(), x) != xs.end();
}

/// Sends durable `bodies` to `address` on a plain session, each confirmed.
void put(ac::connection& conn, const std::string& address, const std::vector<std::string>& bodies) {
    auto s = conn.create_session();
    auto p = s->create_producer(address);
    for (const auto& b : bodies) {
        p->send(durable(b));
    }
    s->close();
}

/// Sends the marker "end" to `address`, then receives (and acknowledges) everything on it up
/// to the marker; returns how often each body came, the marker excluded.
std::map<std::string, int> drain(ac::connection& conn, const std::string& address) {
    put(conn, address, {"end"});
    auto s = conn.create_session();
    auto c = s->create_consumer(address);
    conn.start();
    std::map<std::string, int> seen;
    for (;;) {
        auto m = c->receive(std::chrono::seconds(10));
        REQUIRE_MESSAGE(m.has_value(), "the drain of ", address, " stopped before its end marker");
        c->acknowledge(*m);
        if (m->body == "end") {
            break;
        }
        ++seen[m->body];
    }
    s->close();
    return seen;
}

std::map<std::string, int> once(const std::vector<std::string>& bodies) {
    std::map<std::string, int> out;
    for (const auto& b : bodies) {
        out[b] = 1;
    }
    return out;
}

/// On `conn`: an XA branch `x` that receives and acknowledges the first message of `in` and
/// sends `out_bodies` to `out`, then ends and is prepared. Returns the body it acknowledged.
std::string prepare_branch(ac::connection& conn,
                           const ac::xid& x,
                           const std::string& in,
                           const std::string& out,
                           const std::vector<std::string>& out_bodies) {
    auto s = conn.create_xa_session();
    REQUIRE(s->xa());
    auto c = s->create_consumer(in);
    auto p = s->create_producer(out);
    conn.start();
    s->xa_start(x);
    auto m = c->receive(std::chrono::seconds(10));
    REQUIRE_MESSAGE(m.has_value(), "nothing to consume on ", in);
    c->acknowledge(*m);
    for (const auto& b : out_bodies) {
        p->send(durable(b));
    }
    s->xa_end(x);
    s->xa_prepare(x);
    // The session goes: a prepared branch is the server's, not the session's.
    c->close();
    s->close();
    return m->body;
}

/// The server-side socket of the native port `port` has unread bytes (a request reached a
/// stopped server): read from /proc/net/tcp, where loopback connections show both ends.
/// The most bytes any established connection to `port` holds unread (its receive queue).
unsigned long unread_bytes_at(uint16_t port) {
    std::ifstream in("/proc/net/tcp");
    std::string line;
    std::getline(in, line); // header
    unsigned long most = 0;
    char want[8];
    std::snprintf(want, sizeof want, "%04X", port);
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string sl, local, remote, st, queues;
        f >> sl >> local >> remote >> st >> queues;
        auto colon = local.find(':');
        auto q = queues.find(':');
        if (colon == std::string::npos || q == std::string::npos || st != "01") {
            continue;
        }
        if (local.substr(colon + 1) == want) {
            most = std::max(most, std::stoul(queues.substr(q + 1), nullptr, 16));
        }
    }
    return most;
}

/// Every thread of process `pid` is stopped (state T in /proc/PID/task/TID/stat).
bool all_threads_stopped(pid_t pid) {
    auto dir = "/proc/" + std::to_string(pid) + "/task";
    std::error_code ec;
    size_t n = 0;
    for (const auto& t : std::filesystem::directory_iterator(dir, ec)) {
        std::ifstream in(t.path() / "stat");
        std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto close = stat.rfind(')');
        if (close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] != 'T') {
            return false;
        }
        ++n;
    }
    return !ec && n > 0;
}

/// A shared-store live with a cluster and its backup, both serving native clients; the client
/// `conn` (ha=true) is connected to the live and has learnt the backup.
struct pair_fixture {
    temp_dir store;
    std::unique_ptr<node_process> live;
    std::unique_ptr<node_process> backup;
    std::shared_ptr<ac::connection> conn;
    failure_events ev;
    std::string backup_address;

    pair_fixture() {
        live = std::make_unique<node_process>(native_node_config("", "", pair_top("primary", "")),
                                              journal_in(store));
        REQUIRE(live->wait_ready(soon()));
        REQUIRE(wait_until(soon(), [&] { return native_serves(live->port("native")); }));
        auto members = "\"127.0.0.1:" + std::to_string(live->port("cluster")) + "\"";
        backup = std::make_unique<node_process>(
            native_node_config("", "", pair_top("backup", members)), journal_in(store));
        REQUIRE(backup->wait_ready(soon()));
        backup_address = "127.0.0.1:" + std::to_string(backup->port("native"));
        ac::connection_factory cf(url(live->port("native"),
                                      "&ha=true&reconnectAttempts=-1&retryInterval=50"
                                      "&clientFailureCheckPeriod=60000"));
        conn = cf.create_connection();
        conn->add_failure_listener([this](ac::failure_event e, const std::string&) {
            std::lock_guard<std::mutex> g(ev.mu);
            ev.seen.push_back(e);
        });
        bool named = wait_until(soon(), [&] { return conn->backup_server() == backup_address; });
        REQUIRE_MESSAGE(named, "the client never learnt the backup ", backup_address);
    }

    ~pair_fixture() {
        if (conn) {
            conn->close();
        }
    }

    void await_failover() {
        INFO("tail of the backup's log:\n", backup->log_tail());
        bool done = wait_until(soon(), [&] { return ev.has(ac::failure_event::failover); });
        REQUIRE_MESSAGE(done, "the failure listener never saw FAILOVER");
        CHECK(conn->current_server() == backup_address);
    }
};

} // namespace

TEST_CASE("client xa: a prepared branch survives SIGKILL; recover lists it and its commit "
          "delivers each message once") {
    temp_dir journal;
    auto x = make_xid("restart-commit");
    std::string acked;
    {
        ACTORMQ_START_NODE(node, native_node_config(), journal_in(journal));
        ac::connection_factory cf(url(node.port("native")));
        auto conn = cf.create_connection();
        put(*conn, "xa-in", {"in-0", "in-1", "in-2"});
        acked = prepare_branch(*conn, x, "xa-in", "xa-out", {"out-0", "out-1"});
        CHECK(acked == "in-0");
        auto s = conn->create_xa_session();
        CHECK(contains(s->xa_recover(), x));
        node.kill(SIGKILL);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    {
        ACTORMQ_START_NODE(node, native_node_config(), journal_in(journal));
        CHECK(node.log_text().find("journal_prepared_restored transactions=1")
              != std::string::npos);
        ac::connection_factory cf(url(node.port("native")));
        auto conn = cf.create_connection();
        auto s = conn->create_xa_session();
        auto prepared = s->xa_recover();
        REQUIRE_MESSAGE(contains(prepared, x), "xa_recover does not list the prepared xid");
        CHECK(prepared.size() == 1);
        // A one-phase commit of a prepared branch is a protocol error; it stays prepared.
        try {
            s->xa_commit(x, true);
            FAIL("xa_commit one_phase of a prepared branch succeeded");
        } catch (const ac::client_error& e) {
            CHECK(e.server_code() == uint16_t(native::error_code::xa_protocol));
        }
        // Commit from a connection that never saw the branch.
        s->xa_commit(x);
        CHECK(s->xa_recover().empty());
        CHECK(drain(*conn, "xa-out") == once({"out-0", "out-1"}));
        // The acknowledged message is gone; the others are there once.
        CHECK(drain(*conn, "xa-in") == once({"in-1", "in-2"}));
        // A second commit finds nothing.
        try {
            s->xa_commit(x);
            FAIL("a second xa_commit succeeded");
        } catch (const ac::client_error& e) {
            CHECK(e.server_code() == uint16_t(native::error_code::xa_unknown_xid));
        }
        put(*conn, "xa-out", {"after"});
        node.kill(SIGKILL);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    // The commit is on disk: after another SIGKILL nothing comes back twice.
    ACTORMQ_START_NODE(node, native_node_config(), journal_in(journal));
    ac::connection_factory cf(url(node.port("native")));
    auto conn = cf.create_connection();
    CHECK(conn->create_xa_session()->xa_recover().empty());
    CHECK(drain(*conn, "xa-out") == once({"after"}));
    CHECK(drain(*conn, "xa-in").empty());
}

TEST_CASE("client xa: rollback of a recovered branch delivers nothing and returns what it "
          "acknowledged") {
    temp_dir journal;
    auto x = make_xid("restart-rollback");
    {
        ACTORMQ_START_NODE(node, native_node_config(), journal_in(journal));
        ac::connection_factory cf(url(node.port("native")));
        auto conn = cf.create_connection();
        put(*conn, "rb-in", {"in-0", "in-1"});
        CHECK(prepare_branch(*conn, x, "rb-in", "rb-out", {"out-0"}) == "in-0");
        node.kill(SIGKILL);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    {
        ACTORMQ_START_NODE(node, native_node_config(), journal_in(journal));
        ac::connection_factory cf(url(node.port("native")));
        auto conn = cf.create_connection();
        auto s = conn->create_xa_session();
        REQUIRE(contains(s->xa_recover(), x));
        // While prepared, the acknowledged message is held: only in-1 is delivered.
        auto plain = conn->create_session();
        auto c = plain->create_consumer("rb-in");
        conn->start();
        auto first = c->receive(std::chrono::seconds(10));
        REQUIRE(first.has_value());
        CHECK(first->body == "in-1");
        plain->close(); // in-1 goes back unacknowledged
        s->xa_rollback(x);
        CHECK(s->xa_recover().empty());
        CHECK(drain(*conn, "rb-out").empty());
        CHECK(drain(*conn, "rb-in") == once({"in-0", "in-1"}));
        put(*conn, "rb-in", {"in-2"});
        node.kill(SIGKILL);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    // The rollback is on disk too: nothing of the branch comes back.
    ACTORMQ_START_NODE(node, native_node_config(), journal_in(journal));
    ac::connection_factory cf(url(node.port("native")));
    auto conn = cf.create_connection();
    CHECK(conn->create_xa_session()->xa_recover().empty());
    CHECK(drain(*conn, "rb-out").empty());
    CHECK(drain(*conn, "rb-in") == once({"in-2"}));
}

TEST_CASE("client xa: commit and rollback from another connection; XA errors") {
    temp_dir journal;
    ACTORMQ_START_NODE(node, native_node_config("", "", "max-prepared-transactions = 2\n"),
                       journal_in(journal));
    ac::connection_factory cf(url(node.port("native")));
    auto a = cf.create_connection();
    auto b = cf.create_connection();
    put(*a, "o-in", {"in-0", "in-1", "in-2"});
    auto x1 = make_xid("other-1");
    auto x2 = make_xid("other-2");
    CHECK(prepare_branch(*a, x1, "o-in", "o-out", {"x1-a", "x1-b"}) == "in-0");
    CHECK(prepare_branch(*a, x2, "o-in", "o-out", {"x2-a"}) == "in-1");

    auto sb = b->create_xa_session();
    auto listed = sb->xa_recover();
    CHECK(contains(listed, x1));
    CHECK(contains(listed, x2));
    auto code_of = [](const std::function<void()>& f) -> int {
        try {
            f();
        } catch (const ac::client_error& e) {
            return e.kind() == ac::error_kind::server                    ? int(e.server_code())
                   : e.kind() == ac::error_kind::transaction_rolled_back ? -2
                                                                         : -3;
        }
        return 0;
    };
    using native::error_code;
    // The limit: a third prepared branch is refused and stays ended (rolled back here).
    auto sa = a->create_xa_session();
    auto x3 = make_xid("other-3");
    sa->xa_start(x3);
    sa->xa_end(x3);
    CHECK(code_of([&] { sa->xa_prepare(x3); }) == int(error_code::limit_reached));
    sa->xa_rollback(x3);
    // Duplicate, unknown, wrong state.
    CHECK(code_of([&] { sa->xa_start(x1); }) == int(error_code::xa_duplicate_xid));
    CHECK(code_of([&] { sb->xa_commit(make_xid("nobody")); }) == int(error_code::xa_unknown_xid));
    CHECK(code_of([&] { sb->xa_rollback(make_xid("nobody")); }) == int(error_code::xa_unknown_xid));
    auto x4 = make_xid("other-4");
    sa->xa_start(x4);
    CHECK(code_of([&] { sa->xa_prepare(x4); }) == int(error_code::xa_protocol)); // not ended
    // Still active on a: no other session may prepare or commit it.
    CHECK(code_of([&] { sb->xa_commit(x4, true); }) == int(error_code::xa_protocol));
    sa->xa_end(x4);
    CHECK(code_of([&] { sa->xa_commit(x4); }) == int(error_code::xa_protocol)); // not prepared
    // One phase on its own session commits an ended branch.
    auto pa = sa->create_producer("o-out");
    sa->xa_start(x4, ac::xa_start_flag::join);
    pa->send(durable("x4-a"));
    sa->xa_end(x4);
    sa->xa_commit(x4, true);
    // A branch ended with fail rolls back at prepare.
    auto x5 = make_xid("other-5");
    sa->xa_start(x5);
    pa->send(durable("x5-a"));
    sa->xa_end(x5, ac::xa_end_flag::fail);
    CHECK(code_of([&] { sa->xa_prepare(x5); }) == -2);
    CHECK(code_of([&] { sa->xa_rollback(x5); }) == int(error_code::xa_unknown_xid));
    // Outside a branch an XA session does not hold its sends.
    pa->send(durable("plain"));

    // Another connection commits x1 and rolls back x2.
    sb->xa_commit(x1);
    sb->xa_rollback(x2);
    CHECK(sb->xa_recover().empty());
    CHECK(drain(*b, "o-out") == once({"x1-a", "x1-b", "x4-a", "plain"}));
    CHECK(drain(*b, "o-in") == once({"in-1", "in-2"}));
}

TEST_CASE("client xa: prepared on the live, SIGKILL, committed on the backup after failover; "
          "a branch with work before the failover is rollback-only") {
    pair_fixture pair;
    auto& conn = *pair.conn;
    put(conn, "fx-in", {"in-0", "in-1"});
    auto x = make_xid("failover-commit");
    CHECK(prepare_branch(conn, x, "fx-in", "fx-out", {"out-0", "out-1"}) == "in-0");
    // A branch with work, not prepared, at the kill.
    auto s = conn.create_xa_session();
    auto p = s->create_producer("fx-out");
    auto y = make_xid("failover-lost");
    s->xa_start(y);
    p->send(durable("lost"));

    pair.live->kill(SIGKILL);
    pair.await_failover();
    auto listed = s->xa_recover();
    CHECK(contains(listed, x));
    CHECK_FALSE(contains(listed, y));
    s->xa_end(y);
    bool rolled_back = false;
    try {
        s->xa_prepare(y);
    } catch (const ac::client_error& e) {
        INFO(e.what());
        rolled_back = e.kind() == ac::error_kind::transaction_rolled_back;
    }
    CHECK(rolled_back);
    s->xa_commit(x);
    CHECK(s->xa_recover().empty());
    CHECK(drain(conn, "fx-out") == once({"out-0", "out-1"}));
    CHECK(drain(conn, "fx-in") == once({"in-1"}));
    CHECK_FALSE(pair.ev.has(ac::failure_event::disconnect));
}

TEST_CASE("client xa: a commit in flight when the live dies throws XA_RETRY; its retry on the "
          "backup commits once") {
    pair_fixture pair;
    auto& conn = *pair.conn;
    auto x = make_xid("in-flight");
    put(conn, "rt-in", {"in-0"});
    CHECK(prepare_branch(conn, x, "rt-in", "rt-out", {"out-0", "out-1"}) == "in-0");
    auto s = conn.create_xa_session();
    // Stopped, the live cannot answer: the commit is surely in flight when it dies.
    auto live_port = pair.live->port("native");
    pair.live->kill(SIGSTOP);
    // kill() returns before every thread has stopped: wait until none can read any more.
    REQUIRE(wait_until(soon(), [&] { return all_threads_stopped(pair.live->pid()); }));
    // Bytes the client sent before (batched acks, a ping) may sit unread already: the commit
    // is in flight once there are more.
    auto before = unread_bytes_at(live_port);
    auto commit = std::async(std::launch::async, [&] {
        try {
            s->xa_commit(x);
            return std::string{"ok"};
        } catch (const ac::client_error& e) {
            return std::string{ac::to_string(e.kind())} + " " + e.what();
        }
    });
    bool reached = wait_until(soon(), [&] { return unread_bytes_at(live_port) > before; });
    REQUIRE_MESSAGE(reached, "the commit never reached the stopped live");
    pair.live->kill(SIGKILL);
    auto outcome = commit.get();
    INFO(outcome);
    CHECK(outcome.rfind("XA_RETRY", 0) == 0);
    pair.await_failover();
    // The application retries by xid; recover said whether it was still prepared.
    bool still_prepared = contains(s->xa_recover(), x);
    CHECK(still_prepared); // the live never read the commit
    s->xa_commit(x);
    CHECK(drain(conn, "rt-out") == once({"out-0", "out-1"}));
    CHECK(drain(conn, "rt-in").empty());
}

TEST_CASE("client xa: another session prepares, commits one-phase or rolls back a branch "
          "that ended elsewhere; an active or suspended one is XAER_PROTO, an unknown one "
          "XAER_NOTA") {
    ACTORMQ_START_NODE(node, native_node_config());
    ac::connection_factory cf(url(node.port("native")));
    auto a = cf.create_connection();
    auto b = cf.create_connection();
    put(*a, "ad-in", {"in-0", "in-1", "in-2"});
    auto sa = a->create_xa_session();
    auto ca = sa->create_consumer("ad-in");
    auto pa = sa->create_producer("ad-out");
    a->start();
    auto sb = b->create_xa_session();
    auto code_of = [](const std::function<void()>& f) -> int {
        try {
            f();
        } catch (const ac::client_error& e) {
            INFO(e.what());
            return e.kind() == ac::error_kind::server                    ? int(e.server_code())
                   : e.kind() == ac::error_kind::transaction_rolled_back ? -2
                                                                         : -3;
        }
        return 0;
    };
    using native::error_code;
    /// On a: branch `x` acknowledges the next message of ad-in (if `ack`) and sends `body`.
    auto work = [&](const ac::xid& x, bool ack, const std::string& body) {
        sa->xa_start(x);
        if (ack) {
            auto m = ca->receive(std::chrono::seconds(10));
            REQUIRE(m.has_value());
            ca->acknowledge(*m);
        }
        pa->send(durable(body));
    };
    // Two-phase from b: prepare, listed, commit.
    auto y1 = make_xid("adopt-1");
    work(y1, true, "y1-out"); // acknowledges in-0
    sa->xa_end(y1);
    CHECK(code_of([&] { sb->xa_prepare(y1); }) == 0);
    CHECK(contains(sb->xa_recover(), y1));
    CHECK(code_of([&] { sb->xa_commit(y1); }) == 0);
    // One phase from b.
    auto y2 = make_xid("adopt-2");
    work(y2, true, "y2-out"); // acknowledges in-1
    sa->xa_end(y2);
    CHECK(code_of([&] { sb->xa_commit(y2, true); }) == 0);
    // Rollback from b: its send goes, its acknowledged in-2 returns to the queue.
    auto y3 = make_xid("adopt-3");
    work(y3, true, "y3-out");
    sa->xa_end(y3);
    CHECK(code_of([&] { sb->xa_rollback(y3); }) == 0);
    // Ended with fail: b's prepare rolls it back (XA_RB*), after which it is unknown.
    auto y4 = make_xid("adopt-4");
    work(y4, false, "y4-out");
    sa->xa_end(y4, ac::xa_end_flag::fail);
    CHECK(code_of([&] { sb->xa_prepare(y4); }) == -2);
    CHECK(code_of([&] { sb->xa_commit(y4, true); }) == int(error_code::xa_unknown_xid));
    // Active on a, then suspended on a: XAER_PROTO for b, and a can still finish it.
    auto y5 = make_xid("adopt-5");
    work(y5, false, "y5-out");
    CHECK(code_of([&] { sb->xa_prepare(y5); }) == int(error_code::xa_protocol));
    CHECK(code_of([&] { sb->xa_commit(y5, true); }) == int(error_code::xa_protocol));
    CHECK(code_of([&] { sb->xa_rollback(y5); }) == int(error_code::xa_protocol));
    sa->xa_end(y5, ac::xa_end_flag::suspend);
    CHECK(code_of([&] { sb->xa_prepare(y5); }) == int(error_code::xa_protocol));
    CHECK(code_of([&] { sb->xa_commit(y5, true); }) == int(error_code::xa_protocol));
    sa->xa_start(y5, ac::xa_start_flag::resume);
    sa->xa_end(y5);
    sa->xa_commit(y5, true);
    // Unknown.
    CHECK(code_of([&] { sb->xa_prepare(make_xid("nobody")); }) == int(error_code::xa_unknown_xid));
    CHECK(code_of([&] { sb->xa_commit(make_xid("nobody"), true); })
          == int(error_code::xa_unknown_xid));
    // An ended branch whose session closed went with it.
    auto y6 = make_xid("adopt-6");
    work(y6, false, "y6-out");
    sa->xa_end(y6);
    sa->close();
    CHECK(code_of([&] { sb->xa_commit(y6, true); }) == int(error_code::xa_unknown_xid));

    CHECK(sb->xa_recover().empty());
    CHECK(drain(*b, "ad-out") == once({"y1-out", "y2-out", "y5-out"}));
    CHECK(drain(*b, "ad-in") == once({"in-2"}));
}

TEST_CASE("client xa: a branch another session finished before the failover is not "
          "recreated on the backup by the session that did its work") {
    pair_fixture pair;
    auto& conn = *pair.conn;
    put(conn, "to-in", {"in-0", "in-1"});
    auto sa = conn.create_xa_session();
    auto ca = sa->create_consumer("to-in");
    auto pa = sa->create_producer("to-out");
    conn.start();
    auto sb = conn.create_xa_session();
    /// On sa: branch `x` acknowledges the next message of to-in and sends `body`, then ends.
    auto work = [&](const ac::xid& x, const std::string& body) {
        sa->xa_start(x);
        auto m = ca->receive(std::chrono::seconds(10));
        REQUIRE(m.has_value());
        ca->acknowledge(*m);
        pa->send(durable(body));
        sa->xa_end(x);
    };
    // sb commits one branch in one phase and prepares the other; both did their work on sa.
    auto committed = make_xid("taken-commit");
    work(committed, "c-out");
    sb->xa_commit(committed, true);
    auto prepared = make_xid("taken-prepare");
    work(prepared, "p-out");
    sb->xa_prepare(prepared);

    pair.live->kill(SIGKILL);
    // sa recreating `prepared` on the backup was refused (XAER_DUPID: the journal has it),
    // and the client retried the failover for ever.
    pair.await_failover();
    // The backup knows `committed` no more (a retried commit learns it is gone, not that it
    // rolled back: sa had recreated it there as rollback-only), and `prepared` only as prepared.
    int code = 0;
    try {
        sb->xa_commit(committed, true);
    } catch (const ac::client_error& e) {
        INFO(e.what());
        code = e.kind() == ac::error_kind::server ? int(e.server_code()) : -1;
    }
    CHECK(code == int(native::error_code::xa_unknown_xid));
    CHECK(contains(sb->xa_recover(), prepared));
    sb->xa_commit(prepared);
    CHECK(sb->xa_recover().empty());
    // sa goes on as an XA session on the backup.
    auto y = make_xid("after");
    sa->xa_start(y);
    pa->send(durable("y-out"));
    sa->xa_end(y);
    sa->xa_commit(y, true);
    ca->close(); // so that the drain of to-in gets its marker
    CHECK(drain(conn, "to-out") == once({"c-out", "p-out", "y-out"}));
    CHECK(drain(conn, "to-in").empty());
    CHECK_FALSE(pair.ev.has(ac::failure_event::disconnect));
}

namespace {

/// A replicating pair member serving native clients: [ha-policy.replication.ROLE] with short
/// waits, a cluster joining `members` (TOML array items), a persistent journal in its own
/// directory (as tests/process/ha_replication_test.cpp).
std::string replication_member(const std::string& role, const std::string& members) {
    return native_node_config(
        "",
        "[ha-policy.replication." + role
            + "]\nvote-retry-wait = 200\nretry-replication-wait = 200\nquorum-vote-wait = 1\n"
              "[cluster]\nport = 0\nmembers = ["
            + members
            + "]\nreconnect-interval-ms = 50\nheartbeat-interval-ms = 200\n"
              "connection-timeout-ms = 1000\n",
        "cluster-user = \"actormq-cluster\"\ncluster-password = \"secret\"\n"
        "persistence-enabled = true\n");
}

} // namespace

TEST_CASE("client xa: replication: a branch prepared on the live is listed by the backup after "
          "SIGKILL of the live, and its commit there delivers it once") {
    ACTORMQ_START_NODE(live, replication_member("primary", ""), {"name=\"live\""});
    REQUIRE(wait_until(soon(), [&] { return native_serves(live.port("native")); }));
    ACTORMQ_START_NODE(
        backup,
        replication_member("backup", "\"127.0.0.1:" + std::to_string(live.port("cluster")) + "\""),
        {"name=\"backup\""});
    REQUIRE(log_shows(backup, "replication_in_sync"));
    REQUIRE(log_shows(live, "replication_in_sync backup=backup"));
    const auto backup_address = "127.0.0.1:" + std::to_string(backup.port("native"));
    ac::connection_factory cf(url(live.port("native"),
                                  "&ha=true&reconnectAttempts=-1&retryInterval=50"
                                  "&clientFailureCheckPeriod=60000"));
    auto conn = cf.create_connection();
    failure_events ev;
    conn->add_failure_listener([&ev](ac::failure_event e, const std::string&) { ev.record(e); });
    bool named = wait_until(soon(), [&] { return conn->backup_server() == backup_address; });
    REQUIRE_MESSAGE(named, "the client never learnt the backup ", backup_address, " (it knows '",
                    conn->backup_server(), "')");

    put(*conn, "rx-in", {"in-0", "in-1"});
    auto x = make_xid("replicated");
    CHECK(prepare_branch(*conn, x, "rx-in", "rx-out", {"out-0", "out-1"}) == "in-0");
    live.kill(SIGKILL);
    {
        INFO("tail of the backup's log:\n", backup.log_tail());
        REQUIRE(log_shows(backup, "replication_live node_id="));
        bool failed_over = wait_until(soon(), [&] { return ev.has(ac::failure_event::failover); });
        REQUIRE_MESSAGE(failed_over, "the failure listener never saw FAILOVER");
    }
    CHECK(conn->current_server() == backup_address);
    auto s = conn->create_xa_session();
    auto listed = s->xa_recover();
    CHECK(contains(listed, x));
    s->xa_commit(x);
    CHECK(s->xa_recover().empty());
    // The branch's messages once, its acknowledged in-0 gone for good.
    CHECK(drain(*conn, "rx-out") == once({"out-0", "out-1"}));
    CHECK(drain(*conn, "rx-in") == once({"in-1"}));
    CHECK_FALSE(ev.has(ac::failure_event::disconnect));
    conn->close();
}

} // namespace actormq::test
