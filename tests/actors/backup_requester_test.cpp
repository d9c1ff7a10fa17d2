// SPDX-License-Identifier: Apache-2.0
// The colocated backup requester (actors/ha/colocation.cpp) on CAF's test coordinator, every
// message stepped and time moved only by the test (the rig: tests/support/requester_rig.hpp).
// Its cluster facade and its middleman are test actors that hold each backup request and each
// spawn until the test answers them (grant, refuse, fail), and the backup a spawn returns is a
// test actor the test can end. The rules: the requester asks only live members that are
// neither itself nor a colocated backup, each at most once per round and one at a time, in
// topology order; it spawns only where it was granted; it stops after backup-request-retries
// rounds; and when its backup ends it asks again, another live first. Rebalancing:
// backup_requester_rebalance_test.cpp.
#include "support/requester_rig.hpp"

#include <map>
#include <random>

using namespace actormq;
using namespace actormq::test::rig;

TEST_CASE_FIXTURE(fixture,
                  "backup requester: asks the lives in topology order, skips itself, "
                  "colocated backups and passive members, spawns where granted") {
    show(three_lives);
    REQUIRE(rec.asked == std::vector<std::string>{"127.0.0.1:101"});
    cluster_answers("refuse");
    REQUIRE(rec.asked == std::vector<std::string>{"127.0.0.1:101", "127.0.0.1:102"});
    cluster_answers("grant");
    CHECK(state().now == phase::spawning);
    REQUIRE(rec.spawned == std::vector<std::string>{"127.0.0.1:102"});
    middleman_answers("spawn");
    CHECK(state().now == phase::backed_up);
    CHECK(state().backup_host == "127.0.0.1:102");
    // A topology change while backed up asks nobody.
    show(three_lives);
    CHECK(rec.asked.size() == 2);
    CHECK(rec.most_held == 1);
}

TEST_CASE_FIXTURE(fixture,
                  "backup requester: those named after it first, then those before: "
                  "nodes that start together form a ring") {
    show({member("a", "live", 101), member("c", "live", 103), member("d", "live", 104)}, "live",
         "b");
    REQUIRE(rec.asked == std::vector<std::string>{"127.0.0.1:103"});
    cluster_answers("refuse");
    cluster_answers("refuse");
    CHECK(rec.asked == std::vector<std::string>{"127.0.0.1:103", "127.0.0.1:104", "127.0.0.1:101"});
}

TEST_CASE_FIXTURE(fixture, "backup requester: a node that does not serve asks nobody") {
    show(three_lives, "backup");
    CHECK(rec.asked.empty());
    CHECK(state().now == phase::waiting);
    show(three_lives, "live");
    CHECK(rec.asked.size() == 1);
}

TEST_CASE_FIXTURE(fixture,
                  "backup requester: when its backup ends it asks again, another live "
                  "first, and its old host last") {
    show(three_lives);
    cluster_answers("grant");
    middleman_answers("spawn");
    REQUIRE(state().now == phase::backed_up);
    caf::anon_send_exit(rec.backups.back(), caf::exit_reason::kill);
    run();
    // a (its host) is skipped in this round: b first, then d.
    REQUIRE(rec.asked.size() == 2);
    CHECK(rec.asked.back() == "127.0.0.1:102");
    cluster_answers("refuse");
    CHECK(rec.asked.back() == "127.0.0.1:105");
    cluster_answers("grant");
    middleman_answers("spawn");
    CHECK(state().now == phase::backed_up);
    CHECK(state().backup_host == "127.0.0.1:105");
}

TEST_CASE("backup requester: a failed spawn moves on; backup-request-retries rounds, then it "
          "gives up; no tick before retry-interval") {
    fixture f{1};
    f.show(three_lives);
    f.cluster_answers("grant");
    f.middleman_answers("fail");
    CHECK(f.rec.asked.size() == 2); // b after a's failed spawn
    f.cluster_answers("refuse");
    f.cluster_answers("refuse"); // d: the first round is over
    CHECK(f.state().now == phase::retry_wait);
    CHECK(f.rec.asked.size() == 3);
    f.advance(4s);
    f.run();
    CHECK(f.rec.asked.size() == 3);
    f.advance(1s);
    f.run();
    REQUIRE(f.rec.asked.size() == 4); // the second (last) round
    CHECK(f.rec.asked.back() == "127.0.0.1:101");
    f.cluster_answers("refuse");
    f.cluster_answers("refuse");
    f.cluster_answers("refuse");
    CHECK(f.state().now == phase::given_up);
    f.advance(60s);
    f.run();
    CHECK(f.rec.asked.size() == 6);
}

TEST_CASE("backup requester: seeded answers — one request at a time, each live at most once a "
          "round, a spawn only after a grant, one backup at a time, giving up after the rounds") {
    for (auto seed : actormq::test::seeds(200)) {
        INFO("replay with ACTORMQ_SEED=", seed);
        std::mt19937_64 rng{seed};
        fixture f{static_cast<int32_t>(rng() % 3)};
        f.show(three_lives);
        // Requests seen per (backup lost so far, round): nobody twice in one round.
        std::map<std::pair<size_t, uint32_t>, std::set<std::string>> rounds;
        size_t grants = 0;
        size_t killed = 0;
        for (int i = 0; i < 80 && f.state().now != phase::given_up; ++i) {
            if (!f.rec.requests.empty()) {
                const auto& who = f.rec.requests.front().first;
                CHECK(who != "127.0.0.1:100");
                CHECK(who != "127.0.0.1:103");
                CHECK(who != "127.0.0.1:104");
                CHECK(rounds[{killed, f.state().rounds}].insert(who).second);
                bool grant = rng() % 4 == 0;
                grants += grant ? 1 : 0;
                f.cluster_answers(grant ? "grant" : "refuse");
            } else if (!f.rec.spawns.empty()) {
                f.middleman_answers(rng() % 3 == 0 ? "fail" : "spawn");
            } else if (f.state().now == phase::backed_up && rng() % 2 == 0) {
                caf::anon_send_exit(f.rec.backups.back(), caf::exit_reason::kill);
                ++killed;
                f.run();
            } else {
                f.advance(5s);
                f.run();
            }
            CHECK(f.rec.most_held <= 1);
            CHECK(f.rec.spawned.size() <= grants);
            CHECK(f.rec.backups.size() - killed <= 1);
        }
        if (f.state().now == phase::given_up) {
            CHECK(f.state().rounds == static_cast<uint32_t>(f.state().settings.retries) + 1);
            CHECK(f.state().backup == nullptr);
        }
    }
}

// -- the settle wait and the choice of host -------------------------------------------------------

TEST_CASE_FIXTURE(fixture,
                  "backup requester: a live that runs no colocated backup goes before one that "
                  "runs one, whatever the ring order") {
    // "me" would ask a first (after it, by name), but a runs d's backup already.
    show({member("a", "live", 101), member("b", "live", 102), member("d", "live", 105),
          colocated("d", "a", 106)},
         "live", "c");
    CHECK(rec.asked == std::vector<std::string>{"127.0.0.1:105"});
    cluster_answers("refuse");
    CHECK(rec.asked.back() == "127.0.0.1:102"); // b before a: a hosts one
    cluster_answers("refuse");
    CHECK(rec.asked.back() == "127.0.0.1:101");
}

TEST_CASE("backup requester: settle: it waits until every configured member is there and none "
          "is starting, or the topology has been quiet for the settle time") {
    SUBCASE("configured members") {
        fixture f{-1, 2s, {"127.0.0.1:101", "127.0.0.1:102"}};
        f.show({member("a", "live", 101)});
        CHECK(f.rec.asked.empty());
        CHECK(f.state().now == phase::settling);
        f.show({member("a", "live", 101), member("b", "starting", 102)});
        CHECK(f.rec.asked.empty());
        f.show({member("a", "live", 101), member("b", "live", 102)});
        CHECK(f.rec.asked == std::vector<std::string>{"127.0.0.1:101"});
    }
    SUBCASE("a colocated backup waiting to pair holds it back; once paired with it, it is this "
            "node's backup and nobody is asked") {
        fixture f{-1, 2s, {"127.0.0.1:101"}};
        f.show({member("a", "live", 101), colocated("", "a", 106)});
        CHECK(f.state().now == phase::settling);
        f.show({member("a", "live", 101), colocated("me", "a", 106)});
        CHECK(f.state().now == phase::backed_up);
        CHECK(f.state().adopted == "127.0.0.1:106");
        // Starting over (it syncs again) is not a loss.
        f.show({member("a", "live", 101), colocated("", "a", 106)});
        CHECK(f.state().now == phase::backed_up);
        // Gone with its host: asked for again at once, elsewhere.
        f.show({member("b", "live", 102)});
        CHECK(f.rec.asked == std::vector<std::string>{"127.0.0.1:102"});
    }
    SUBCASE("quiet time, re-armed by every change; at the latest three times the settle time") {
        fixture f{-1, 2s};
        f.show({member("a", "live", 101)});
        f.advance(1500ms);
        f.run();
        f.show({member("a", "live", 101), member("b", "live", 102)});
        f.advance(1500ms);
        f.run();
        CHECK(f.rec.asked.empty()); // 3 s in, 1.5 s quiet
        f.advance(500ms);
        f.run();
        CHECK(f.rec.asked == std::vector<std::string>{"127.0.0.1:101"});
    }
    SUBCASE("bounded") {
        fixture f{-1, 2s};
        for (int i = 0; i < 4; ++i) {
            if (i % 2 == 0) {
                f.show({member("a", "live", 101)});
            } else {
                f.show({member("a", "live", 101), member("b", "starting", 102)});
            }
            f.advance(1500ms);
            f.run();
        }
        // 6 s after it began: asked, though the topology never stayed 2 s the same.
        CHECK(f.rec.asked == std::vector<std::string>{"127.0.0.1:101"});
    }
}

namespace {

/// Three nodes, each with a requester, a cluster facade that answers backup requests from the
/// hosts' books (max-backups 1) and a middleman whose spawns add the colocated backup to every
/// topology: enough of a cluster to see which ring the requesters form.
struct ring_sim : actormq::test::deterministic {
    struct node {
        std::string name;
        int port = 0;
        bool started = false;
        caf::actor requester;
        std::string granted_by; ///< the host of the last grant
        std::string backed_up_on;
        size_t hosting = 0;
    };
    std::map<std::string, node> nodes;

    static caf::behavior sim_cluster(caf::event_based_actor* self, ring_sim* sim, std::string me) {
        return {
            [=](cluster::backup_request_atom,
                const std::string& address) -> caf::result<cluster::backup_grant, caf::node_id> {
                for (auto& [name, n] : sim->nodes) {
                    if ("127.0.0.1:" + std::to_string(n.port) == address && n.started) {
                        if (n.hosting >= 1) {
                            return caf::make_error(cluster::cluster_errc::backups_full);
                        }
                        ++n.hosting;
                        sim->nodes[me].granted_by = name;
                        return {cluster::backup_grant{name, 1, 7}, self->system().node()};
                    }
                }
                return caf::make_error(cluster::cluster_errc::no_such_member);
            }};
    }

    static caf::behavior
    sim_middleman(caf::event_based_actor* self, ring_sim* sim, std::string me) {
        return {[=](caf::spawn_atom, const caf::node_id&, const std::string&, const caf::message&,
                    const std::set<std::string>&) -> caf::strong_actor_ptr {
            auto b = self->spawn(test_backup);
            sim->nodes[me].backed_up_on = sim->nodes[me].granted_by;
            sim->publish_later = true;
            return caf::actor_cast<caf::strong_actor_ptr>(b);
        }};
    }

    bool publish_later = false;

    ring_sim(std::chrono::milliseconds settle, bool static_members) {
        int port = 101;
        std::vector<std::string> all;
        for (auto name : {"a", "b", "c"}) {
            all.push_back("127.0.0.1:" + std::to_string(port));
            auto& n = nodes[name];
            n.name = name;
            n.port = port++;
        }
        for (auto& [name, n] : nodes) {
            requester_settings s;
            s.retry_interval = 5s;
            s.settle = settle;
            if (static_members) {
                for (const auto& a : all) {
                    if (a != "127.0.0.1:" + std::to_string(n.port)) {
                        s.expected.push_back(a);
                    }
                }
            }
            n.requester = track(
                sys.spawn(backup_requester, s, track(sys.spawn(sim_cluster, this, name)),
                          track(sys.spawn(sim_middleman, this, name)), cluster::colocated_spec{}));
        }
        run();
    }

    /// Every started node's topology: itself first, then the other started nodes and the
    /// colocated backups, by name.
    void publish() {
        for (auto& [name, n] : nodes) {
            if (!n.started) {
                continue;
            }
            cluster::topology t;
            t.members.push_back(member(name, "live", n.port));
            int port = 200;
            for (auto& [other, o] : nodes) {
                if (o.started && other != name) {
                    t.members.push_back(member(other, "live", o.port));
                }
                if (!o.backed_up_on.empty()) {
                    t.members.push_back(colocated(other, o.backed_up_on, port++));
                }
            }
            caf::anon_send(n.requester, t);
        }
    }

    /// Runs until idle, publishing the topology again after each spawn.
    void settle_down() {
        do {
            publish_later = false;
            run();
            if (publish_later) {
                publish();
            }
        } while (publish_later);
    }

    void start(const std::string& name) {
        nodes[name].started = true;
        publish();
        settle_down();
    }

    void wait(caf::timespan d) {
        advance(d);
        settle_down();
    }

    /// a, b and c a second apart, then ten seconds for the requests.
    void start_one_after_another() {
        start("a");
        wait(1s);
        start("b");
        wait(1s);
        start("c");
        for (int i = 0; i < 10; ++i) {
            wait(1s);
        }
    }
};

} // namespace

TEST_CASE("backup requester: three nodes started one after another form the ring a->b->c->a "
          "with the settle wait") {
    for (bool static_members : {true, false}) {
        INFO("static members: ", static_members);
        ring_sim sim{2s, static_members};
        sim.start_one_after_another();
        CHECK(sim.nodes["a"].backed_up_on == "b");
        CHECK(sim.nodes["b"].backed_up_on == "c");
        CHECK(sim.nodes["c"].backed_up_on == "a");
    }
}

TEST_CASE("backup requester: without the settle wait, nodes started one after another do not "
          "form a->b->c->a: b asks a, the only one there") {
    ring_sim sim{0s, true};
    sim.start_one_after_another();
    // b asks a (the only one there), c asks b (a hosts one already), a's retry finds b full
    // and c free.
    CHECK(sim.nodes["b"].backed_up_on == "a");
    CHECK(sim.nodes["c"].backed_up_on == "b");
    CHECK(sim.nodes["a"].backed_up_on == "c");
}

// -- the stand-in: a colocated backup that took over asks for a backup of its own ----------------

namespace {

/// A stand-in requester: colocated_backup_1 on host b, for the node id of a (cluster address
/// 127.0.0.1:101, its primary), itself at 127.0.0.1:100.
struct stand_in_fixture : requester_rig {
    caf::actor owner = sys.spawn(test_backup);

    stand_in_fixture() {
        auto s = settings();
        s.primary = "127.0.0.1:101";
        requester = track(
            sys.spawn(stand_in_requester, s, cluster, middleman, cluster::colocated_spec{}, owner));
        run();
    }

    ~stand_in_fixture() { caf::anon_send_exit(owner, caf::exit_reason::user_shutdown); }

    /// The stand-in (serving a's node id when `role` is live) first, then `others`.
    void show(std::vector<cluster::member_info> others, const std::string& role) {
        auto me = member("colocated_backup_1", role, 100);
        me.node_id = "id-a";
        me.hosted_by = "b";
        show_topology(std::move(me), std::move(others));
    }
};

/// The cluster while a is down: b (the stand-in's host), c, d, and the colocated backup of b's
/// node id on c.
std::vector<cluster::member_info> without_a() {
    return {member("b", "live", 102), member("c", "live", 103), member("d", "live", 104),
            colocated("b", "c", 106)};
}

std::vector<cluster::member_info> with_a(const std::string& role) {
    auto all = without_a();
    auto a = member("a", role, 101);
    a.node_id = "id-a";
    all.insert(all.begin(), a);
    return all;
}

} // namespace

TEST_CASE_FIXTURE(stand_in_fixture,
                  "backup requester: a stand-in asks nobody while it is a backup; once it serves "
                  "it asks, never its own host, a live without a backup first") {
    show(with_a("live"), "backup");
    show(without_a(), "backup");
    CHECK(rec.asked.empty());
    show(without_a(), "live");
    // d before c (c runs b's backup); b, its host, never.
    REQUIRE(rec.asked == std::vector<std::string>{"127.0.0.1:104"});
    cluster_answers("refuse");
    REQUIRE(rec.asked == std::vector<std::string>{"127.0.0.1:104", "127.0.0.1:103"});
    cluster_answers("refuse");
    CHECK(state().now == phase::retry_wait);
    advance(5s);
    run();
    CHECK(rec.asked.size() == 3);
    CHECK(rec.asked.back() == "127.0.0.1:104");
}

TEST_CASE_FIXTURE(stand_in_fixture,
                  "backup requester: when the stand-in's primary joins again it releases its "
                  "backup and asks nobody; if the primary leaves again it asks again") {
    show(without_a(), "live");
    cluster_answers("grant");
    middleman_answers("spawn");
    REQUIRE(state().now == phase::backed_up);
    REQUIRE(rec.backups.size() == 1);
    // a is back (checking, then syncing as the stand-in's backup): the extra backup ends, so
    // that a can pair (a live replicates to one backup at a time).
    show(with_a("starting"), "live");
    CHECK(rec.released == std::vector<size_t>{0});
    CHECK(state().now == phase::yielding);
    CHECK(state().backup == nullptr);
    show(with_a("backup"), "live");
    advance(60s);
    run();
    CHECK(rec.asked.size() == 1);
    CHECK(rec.released.size() == 1);
    // The release's down message is no loss: nothing is asked for.
    caf::anon_send_exit(rec.backups.front(), caf::exit_reason::user_shutdown);
    run();
    CHECK(rec.asked.size() == 1);
    // a failed back: the stand-in is a backup again (of a) and stays quiet.
    show(with_a("live"), "backup");
    CHECK(rec.asked.size() == 1);
    SUBCASE("a dies again before it failed back: the stand-in asks again") {
        show(with_a("backup"), "live");
        show(without_a(), "live");
        CHECK(rec.asked.size() == 2);
        CHECK(state().now == phase::asking);
    }
}

TEST_CASE_FIXTURE(stand_in_fixture,
                  "backup requester: a grant or a spawn that completes after the primary came "
                  "back leaves no backup behind") {
    show(without_a(), "live");
    SUBCASE("granted after: no spawn") {
        show(with_a("starting"), "live");
        CHECK(state().now == phase::asking);
        cluster_answers("grant");
        CHECK(rec.spawned.empty());
        CHECK(state().now == phase::yielding);
    }
    SUBCASE("spawned after: released at once") {
        cluster_answers("grant");
        show(with_a("starting"), "live");
        CHECK(state().now == phase::spawning);
        middleman_answers("spawn");
        CHECK(rec.released == std::vector<size_t>{0});
        CHECK(state().backup == nullptr);
        CHECK(state().now == phase::yielding);
    }
    advance(60s);
    run();
    CHECK(rec.asked.size() == 1);
}

TEST_CASE_FIXTURE(stand_in_fixture,
                  "backup requester: a stand-in ends with its instance, and leaves its backup "
                  "running (a node id may still need it)") {
    show(without_a(), "live");
    cluster_answers("grant");
    middleman_answers("spawn");
    REQUIRE(state().now == phase::backed_up);
    caf::anon_send_exit(owner, caf::exit_reason::user_shutdown);
    run();
    auto ptr = caf::actor_cast<caf::abstract_actor*>(requester);
    CHECK(ptr->getf(caf::abstract_actor::is_terminated_flag));
    CHECK(rec.released.empty());
}

TEST_CASE_FIXTURE(fixture,
                  "backup requester: a node's own requester has no primary: a member of its "
                  "node id never makes it yield") {
    show(three_lives);
    cluster_answers("grant");
    middleman_answers("spawn");
    show(three_lives);
    CHECK(state().now == phase::backed_up);
    CHECK(rec.released.empty());
}
