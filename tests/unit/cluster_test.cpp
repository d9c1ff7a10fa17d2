// SPDX-License-Identifier: Apache-2.0
// The cluster actor (cluster/cluster.hpp) between several actor systems in this one process,
// over real loopback sockets: joins, refusals, updates and members that leave.
#include "cluster/cluster.hpp"
#include "tests/support/wait.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <doctest/doctest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace actormq;
using namespace std::chrono_literals;
using test::in;
using test::wait_until;

namespace {

/// Keeps every formatted log line; unlike spdlog's ostream sink it can be read safely while
/// actors still write (the read takes the sink's own lock).
class capture_sink : public spdlog::sinks::base_sink<std::mutex> {
public:
    std::string text() {
        std::lock_guard<std::mutex> guard(mutex_);
        return text_;
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t buf;
        formatter_->format(msg, buf);
        text_.append(buf.data(), buf.size());
    }

    void flush_() override {}

private:
    std::string text_;
};

/// What one test member is started with.
struct member_spec {
    std::string name;
    std::vector<std::string> members;
    std::string password = "s3cret";
    uint16_t port = 0;
};

/// One cluster member: its own actor system (middleman loaded), logger and cluster actor.
/// The members used by on_change come before `sys`: ~actor_system waits for the cluster actor,
/// which may still call on_change (a member left) until then.
struct test_member {
    caf::actor_system_config cfg;
    std::shared_ptr<capture_sink> sink = std::make_shared<capture_sink>();
    std::shared_ptr<spdlog::logger> log;
    std::mutex mtx;
    cluster::topology last; // guarded by mtx; the latest topology given to on_change
    size_t changes = 0;     // guarded by mtx; how often on_change was called
    caf::actor_system sys;
    cluster::start_result started;

    static caf::actor_system_config& prepare(caf::actor_system_config& c) {
        c.load<caf::io::middleman>();
        cluster::add_message_types(c);
        c.set("scheduler.max-threads", size_t{2});
        c.set("middleman.heartbeat-interval", caf::timespan{200ms});
        c.set("middleman.connection-timeout", caf::timespan{1000ms});
        return c;
    }

    explicit test_member(const member_spec& spec) : sys(prepare(cfg)) {
        log = std::make_shared<spdlog::logger>("cluster", sink);
        log->set_level(spdlog::level::debug);
        config::cluster_config cc;
        cc.enabled = true;
        cc.port = spec.port;
        cc.members = spec.members;
        cc.reconnect_interval_ms = 50;
        cc.user = "actormq-cluster";
        cc.password = spec.password;
        cluster::member_info me{spec.name, "", "starting", "127.0.0.1:1" + spec.name, "", 0};
        started = cluster::start(
            sys, cc, me,
            [this](const cluster::topology& t) {
                std::lock_guard<std::mutex> guard(mtx);
                last = t;
                ++changes;
            },
            log);
        REQUIRE_MESSAGE(started.error.empty(), started.error);
        REQUIRE(started.port != 0);
    }

    ~test_member() { cluster::stop(sys, started.handle); }

    std::string address() const { return "127.0.0.1:" + std::to_string(started.port); }

    /// The topology as last reported to on_change.
    cluster::topology seen() {
        std::lock_guard<std::mutex> guard(mtx);
        return last;
    }

    size_t change_count() {
        std::lock_guard<std::mutex> guard(mtx);
        return changes;
    }

    /// The topology as the actor answers (caf::get_atom).
    cluster::topology asked() {
        caf::scoped_actor self{sys};
        cluster::topology out;
        self->request(started.handle, 5s, caf::get_atom::value)
            .receive([&](cluster::topology& t) { out = std::move(t); },
                     [&](caf::error& err) { FAIL_CHECK(sys.render(err)); });
        return out;
    }

    /// The info `name` announced, as this member last reported it; nullopt when not a member.
    std::optional<cluster::member_info> info_of(const std::string& name) {
        for (auto& m : seen().members) {
            if (m.name == name) {
                return m;
            }
        }
        return std::nullopt;
    }

    bool knows(const std::string& name) { return info_of(name).has_value(); }

    bool logged(const std::string& text) { return sink->text().find(text) != std::string::npos; }

    void update(cluster::member_info info) {
        caf::anon_send(started.handle, caf::update_atom::value, std::move(info));
    }
};

test::deadline_t soon() {
    return in(10s);
}

} // namespace

TEST_CASE("cluster: join: members with the right credentials see each other with their info") {
    test_member a{{"a", {}}};
    test_member b{{"b", {a.address()}}};
    REQUIRE(wait_until(soon(), [&] { return a.knows("b") && b.knows("a"); }));

    auto a_seen_by_b = *b.info_of("a");
    CHECK(a_seen_by_b.role == "starting");
    CHECK(a_seen_by_b.connector == "127.0.0.1:1a");
    CHECK(a_seen_by_b.cluster_address == a.address());
    auto b_seen_by_a = *a.info_of("b");
    CHECK(b_seen_by_a.connector == "127.0.0.1:1b");
    CHECK(b_seen_by_a.cluster_address == b.address());

    // The answer to get_atom is the same topology, this member first.
    auto t = a.asked();
    REQUIRE(t.members.size() == 2);
    CHECK(t.members[0].name == "a");
    CHECK(t.members[1].name == "b");
    CHECK(a.logged("cluster_member_joined name=b address=" + b.address()));
    CHECK(b.logged("cluster_member_joined name=a address=" + a.address()));
}

TEST_CASE("cluster: join: two members listing each other join once") {
    test_member a{{"a", {}}};
    test_member b{{"b", {a.address()}}};
    // c lists both; a and b learn of c by its joins, c of both by its own.
    test_member c{{"c", {a.address(), b.address()}}};
    REQUIRE(wait_until(soon(), [&] {
        return a.seen().members.size() == 3 && b.seen().members.size() == 3
               && c.seen().members.size() == 3;
    }));
    auto text = c.sink->text();
    CHECK(text.find("cluster_member_joined name=a") == text.rfind("cluster_member_joined name=a"));
}

TEST_CASE("cluster: update: a local update reaches every joined member") {
    test_member a{{"a", {}}};
    test_member b{{"b", {a.address()}}};
    REQUIRE(wait_until(soon(), [&] { return a.knows("b") && b.knows("a"); }));

    a.update({"a", "node-1", "live", "127.0.0.1:1a", "", 0});
    REQUIRE(wait_until(soon(), [&] { return b.seen().live_of("node-1") == "127.0.0.1:1a"; }));
    // The update keeps the cluster address the actor assigned and bumps the version.
    auto a_self = a.seen().members.front();
    CHECK(a_self.cluster_address == a.address());
    CHECK(a_self.version == 2);
    CHECK(b.info_of("a")->version == 2);

    b.update({"b", "node-1", "backup", "127.0.0.1:1b", "", 0});
    REQUIRE(wait_until(soon(), [&] {
        return a.seen().backups_of("node-1") == std::vector<std::string>{"127.0.0.1:1b"};
    }));
    CHECK(a.seen().backups_of("node-2").empty());
    CHECK(a.seen().live_of("node-1") == "127.0.0.1:1a");
}

TEST_CASE("cluster: join: a wrong password is refused and logged on both sides") {
    test_member a{{"a", {}}};
    test_member c{{"c", {a.address()}, "wrong-password"}};
    std::string reason = "reason=\"bad cluster credentials\"";
    REQUIRE(wait_until(soon(), [&] {
        return a.logged("cluster_join_refused peer=" + c.address() + " " + reason)
               && c.logged("cluster_join_refused by=" + a.address() + " " + reason);
    }));
    CHECK_FALSE(a.knows("c"));
    CHECK_FALSE(c.knows("a"));
    CHECK(a.asked().members.size() == 1);
    CHECK(c.asked().members.size() == 1);
    CHECK_FALSE(a.logged("joined"));
    // Neither password ever reaches a log.
    CHECK_FALSE(a.logged("wrong-password"));
    CHECK_FALSE(c.logged("wrong-password"));
    CHECK_FALSE(a.logged("s3cret"));
}

TEST_CASE("cluster: leave: a member whose system shuts down is removed and may come back") {
    auto b = std::make_unique<test_member>(member_spec{"b", {}});
    auto b_port = b->started.port;
    test_member a{{"a", {b->address()}}};
    REQUIRE(wait_until(soon(), [&] { return a.knows("b") && b->knows("a"); }));

    b.reset();
    REQUIRE(wait_until(soon(), [&] { return !a.knows("b"); }));
    CHECK(a.logged("cluster_member_left name=b reason="));
    CHECK(a.asked().members.size() == 1);

    // b comes back on the same port; a's reconnect attempts find it.
    b = std::make_unique<test_member>(member_spec{"b", {}, "s3cret", b_port});
    REQUIRE(wait_until(soon(), [&] { return a.knows("b") && b->knows("a"); }));
}

TEST_CASE("cluster: stop: on_change is never called once stop returned") {
    test_member a{{"a", {}}};
    auto b = std::make_unique<test_member>(member_spec{"b", {a.address()}});
    test_member c{{"c", {a.address(), b->address()}}};
    REQUIRE(wait_until(soon(), [&] { return a.knows("b") && c.knows("b"); }));

    cluster::stop(a.sys, a.started.handle);
    auto before = a.change_count();
    // b leaves; c, still running, sees it, and by then a would have seen it too.
    b.reset();
    REQUIRE(wait_until(soon(), [&] { return !c.knows("b"); }));
    CHECK(a.change_count() == before);
    CHECK(a.knows("b"));
    CHECK_FALSE(a.logged("cluster_member_left"));
    CHECK(c.logged("cluster_member_left name=b"));
}

TEST_CASE("cluster: security: an actor that has not joined cannot change what a member knows") {
    test_member a{{"a", {}}};
    test_member b{{"b", {a.address()}}};
    REQUIRE(wait_until(soon(), [&] { return a.knows("b"); }));

    // An outsider reaches a's published cluster actor without joining.
    caf::actor_system_config cfg;
    caf::actor_system outsider{test_member::prepare(cfg)};
    auto remote = outsider.middleman().remote_actor("127.0.0.1", a.started.port);
    REQUIRE(remote);
    caf::scoped_actor self{outsider};
    cluster::member_info fake{"b", "node-9", "live", "6.6.6.6:1", b.address(), 99};
    self->send(*remote, cluster::announce_atom::value, fake);
    self->send(*remote, caf::update_atom::value, fake);
    // Messages from one sender arrive in order: once get_atom is answered (refused, as the
    // asker is remote), the two above have been handled.
    bool refused = false;
    self->request(*remote, 5s, caf::get_atom::value)
        .receive([&](cluster::topology&) {}, [&](caf::error&) { refused = true; });
    CHECK(refused);
    CHECK(a.logged("cluster_announce_ignored"));
    CHECK(a.logged("cluster_update_ignored"));
    CHECK(a.info_of("b")->role == "starting");
    CHECK(a.seen().members.front().role == "starting");
    CHECK(a.asked().live_of("node-9").empty());
}

TEST_CASE("cluster: topology: backups_of and live_of pick members by role and node id") {
    cluster::topology t;
    t.members = {
        {"p", "n1", "live", "h:1", "c:1", 1},    {"b1", "n1", "backup", "h:2", "c:2", 1},
        {"b2", "n1", "backup", "h:3", "c:3", 1}, {"x", "n2", "backup", "h:4", "c:4", 1},
        {"s", "", "starting", "h:5", "c:5", 1},  {"u", "", "backup", "h:6", "c:6", 1},
    };
    CHECK(t.live_of("n1") == "h:1");
    CHECK(t.live_of("n2").empty());
    CHECK(t.backups_of("n1") == std::vector<std::string>{"h:2", "h:3"});
    CHECK(t.backups_of("n2") == std::vector<std::string>{"h:4"});
    // An unknown node id ("") matches no member, even those that do not know theirs yet.
    CHECK(t.backups_of("").empty());
    CHECK(t.live_of("").empty());
}

TEST_CASE("cluster: credentials: secrets compare equal only when identical") {
    CHECK(cluster::same_secret("change-me", "change-me"));
    CHECK(cluster::same_secret("", ""));
    CHECK_FALSE(cluster::same_secret("change-me", "change-mE"));
    CHECK_FALSE(cluster::same_secret("change-me", "change-me!"));
    CHECK_FALSE(cluster::same_secret("change-me", ""));
    CHECK_FALSE(cluster::same_secret(std::string_view("a\0b", 3), "a"));
}

namespace {

/// `m` runs a quorum vote about `node_id` (what a backup or a restarting primary does).
cluster::vote_tally quorum(test_member& m, const std::string& node_id, uint32_t wait_ms) {
    caf::scoped_actor self{m.sys};
    cluster::vote_tally out;
    self->request(m.started.handle, 5s, cluster::quorum_atom::value, node_id, wait_ms)
        .receive([&](cluster::vote_tally& t) { out = std::move(t); },
                 [&](caf::error& err) { FAIL_CHECK(m.sys.render(err)); });
    return out;
}

} // namespace

TEST_CASE("cluster: vote: a gone answer stands for its asker until its announcement can arrive") {
    // The race found by the crash harness (tests/crash/REPLICATION-FINDINGS.md, finding 6): the
    // voter told backup b that node id X is gone; before b's announcement of its take-over
    // reached the voter, a restarting a asked about X, was told nobody serves it, and started
    // live beside b.
    test_member voter{{"voter", {}}};
    auto b = std::make_unique<test_member>(member_spec{"b", {voter.address()}});
    test_member a{{"a", {voter.address(), b->address()}}};
    REQUIRE(wait_until(soon(), [&] {
        return voter.seen().members.size() == 3 && b->seen().members.size() == 3
               && a.seen().members.size() == 3;
    }));
    voter.update({"voter", "voter-id", "live", "127.0.0.1:1voter", "", 0});
    REQUIRE(wait_until(soon(), [&] { return a.seen().live_of("voter-id") == "127.0.0.1:1voter"; }));

    auto b_vote = quorum(*b, "X", 500);
    CHECK(b_vote.live_answers == 1);
    CHECK(b_vote.lives_not_seeing == 1);
    CHECK(cluster::nobody_serves(b_vote));

    // b has not announced anything yet: the voter, and b itself (it asked a moment ago), tell
    // a that X is claimed, so a decides nothing.
    auto a_vote = quorum(a, "X", 500);
    CHECK(a_vote.lives_seeing == 0);
    CHECK(a_vote.claims == 2);
    CHECK_FALSE(cluster::nobody_serves(a_vote));
    CHECK_FALSE(cluster::live_is_gone(a_vote, 0));
    // a asked too, so b's vote now meets a's claim (a's own grant, held while it asks): two
    // askers hold each other up until one gives its grants back.
    CHECK(quorum(*b, "X", 500).claims == 1);
    {
        caf::scoped_actor self{a.sys};
        self->send(a.started.handle, cluster::vote_release_atom::value, std::string{"X"});
    }
    // Once a's release reached every member, b's vote is not held up (its own grants stand).
    CHECK(wait_until(soon(), [&] { return quorum(*b, "X", 500).claims == 0; }));
    // Another node id is not covered.
    CHECK(quorum(a, "Y", 500).claims == 0);

    // b goes away: its grant goes with it (a's own questions above granted a nothing the
    // voter holds against a).
    b.reset();
    REQUIRE(wait_until(soon(), [&] { return !voter.knows("b") && !a.knows("b"); }));
    auto after = quorum(a, "X", 500);
    CHECK(after.claims == 0);
    CHECK(after.lives_not_seeing == 1);
}

TEST_CASE("cluster: vote: a grant ends after the asker's wait and one remote timeout") {
    test_member voter{{"voter", {}}};
    test_member b{{"b", {voter.address()}}};
    test_member a{{"a", {voter.address(), b.address()}}};
    REQUIRE(wait_until(
        soon(), [&] { return voter.seen().members.size() == 3 && a.seen().members.size() == 3; }));
    voter.update({"voter", "voter-id", "live", "127.0.0.1:1voter", "", 0});
    REQUIRE(wait_until(soon(), [&] { return a.seen().live_of("voter-id") == "127.0.0.1:1voter"; }));
    CHECK(cluster::nobody_serves(quorum(b, "X", 100)));
    CHECK(quorum(a, "X", 100).claims == 2);
    // b never announced a take-over (it lost, or is slow): after 100 ms + the voter's remote
    // timeout (1 s here) the voter answers from what it sees again.
    CHECK(wait_until(soon(), [&] {
        auto t = quorum(a, "X", 100);
        return t.answered == 2 && t.claims == 0;
    }));
}

namespace {

/// A stand-in for a member whose node froze: it joins like a member (same credentials, same
/// messages), then either never answers a vote (`frozen`) or answers that it sees the node id
/// served. Lets a test hold a vote open on a handle that will never answer.
struct fake_member {
    caf::actor_system_config cfg;
    caf::actor_system sys;
    std::atomic<bool> asked{false};
    /// Promises never kept: a frozen member's answers that never come.
    std::vector<caf::response_promise> held;
    std::mutex mtx;
    caf::actor handle;

    static caf::actor_system_config& prepare(caf::actor_system_config& c) {
        c.load<caf::io::middleman>();
        cluster::add_message_types(c);
        c.set("scheduler.max-threads", size_t{1});
        return c;
    }

    fake_member(bool frozen) : sys(prepare(cfg)) {
        handle = sys.spawn([this, frozen](caf::event_based_actor* self) -> caf::behavior {
            self->set_default_handler(caf::drop);
            return {
                [this, self, frozen](cluster::vote_atom, const std::string&,
                                     uint32_t) -> caf::result<cluster::vote_answer> {
                    asked = true;
                    if (frozen) {
                        std::lock_guard<std::mutex> guard(mtx);
                        held.push_back(self->make_response_promise());
                        return caf::delegated<cluster::vote_answer>{};
                    }
                    return cluster::vote_answer{true, true, 0, false};
                },
            };
        });
    }

    ~fake_member() { caf::anon_send_exit(handle, caf::exit_reason::user_shutdown); }

    /// Joins the member listening on `port` as the member at cluster address `address`.
    void join(uint16_t port, const std::string& address) {
        auto peer = sys.middleman().remote_actor("127.0.0.1", port);
        REQUIRE(peer);
        caf::scoped_actor self{sys};
        cluster::member_info me{"f", "f-id", "live", "127.0.0.1:1f", address, 0};
        self->request(*peer, 5s, caf::join_atom::value, std::string{"actormq-cluster"},
                      std::string{"s3cret"}, me, handle)
            .receive([](cluster::member_info&) {},
                     [&](caf::error& err) { FAIL_CHECK(sys.render(err)); });
    }
};

} // namespace

TEST_CASE("cluster: vote: a member that rejoins under a new handle while a vote runs is asked "
          "again") {
    // A node thawed after SIGSTOP asks the member handles it still holds; those members
    // rejoin under new handles a moment later, and the old ones never answer. The vote must
    // ask the new handle rather than wait its whole time for the old one.
    test_member a{{"a", {}}};
    fake_member frozen{true};
    frozen.join(a.started.port, "127.0.0.1:9");
    REQUIRE(wait_until(soon(), [&] { return a.knows("f"); }));

    cluster::vote_tally tally;
    std::thread asker{[&] {
        tally = quorum(a, "X", 4000);
    }};
    REQUIRE(wait_until(soon(), [&] { return frozen.asked.load(); }));
    fake_member thawed{false};
    thawed.join(a.started.port, "127.0.0.1:9");
    asker.join();
    CHECK(tally.asked == 2);
    CHECK(tally.answered == 1);
    CHECK(tally.live_answers == 1);
    CHECK(tally.lives_seeing == 1);
    CHECK(a.logged("vote_ask_joined node_id=X member=f"));
}
