// SPDX-License-Identifier: Apache-2.0
// The colocated backup requester (actors/ha/colocation.cpp) on CAF's test coordinator, every
// message stepped and time moved only by the test. Its cluster facade and its middleman are
// test actors that hold each backup request and each spawn until the test answers them
// (grant, refuse, fail), and the backup a spawn returns is a test actor the test can end. The
// rules: the requester asks only live members that are neither itself nor a colocated backup,
// each at most once per round and one at a time, in topology order; it spawns only where it was
// granted; it stops after backup-request-retries rounds; and when its backup ends it asks
// again, another live first.
#include "actors/ha/colocation.hpp"
#include "support/deterministic.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/response_promise.hpp>
#include <doctest/doctest.h>

#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace actormq;
using namespace std::chrono_literals;
using phase = backup_requester_state::phase;

namespace {

using answer_atom = caf::atom_constant<caf::atom("answer")>;

/// What the test actors saw, and the requests they hold.
struct record {
    std::vector<std::string> asked;   ///< cluster addresses, in the order asked
    std::vector<std::string> spawned; ///< the host names of the spawns requested
    std::deque<std::pair<std::string, caf::response_promise>> requests;
    std::deque<std::pair<std::string, caf::response_promise>> spawns;
    std::vector<caf::actor> backups;
    size_t most_held = 0;
};

/// A running backup: does nothing until it is ended.
caf::behavior test_backup(caf::event_based_actor*) {
    return {[](caf::tick_atom) {
    }};
}

/// The cluster facade: holds backup requests; (answer_atom, "grant"|"refuse") answers the
/// oldest.
caf::behavior test_cluster(caf::event_based_actor* self, record* r) {
    return {
        [=](cluster::backup_request_atom, const std::string& address) {
            r->asked.push_back(address);
            auto rp = self->make_response_promise();
            r->requests.emplace_back(address, rp);
            r->most_held = std::max(r->most_held, r->requests.size() + r->spawns.size());
            return rp;
        },
        [=](answer_atom, const std::string& how) {
            REQUIRE(!r->requests.empty());
            auto [address, rp] = r->requests.front();
            r->requests.pop_front();
            if (how == "grant") {
                rp.deliver(cluster::backup_grant{"host@" + address, 1, 42}, self->system().node());
            } else {
                rp.deliver(caf::make_error(cluster::cluster_errc::backups_full));
            }
        },
    };
}

/// The middleman: holds spawn requests; (answer_atom, "spawn"|"fail") answers the oldest.
caf::behavior test_middleman(caf::event_based_actor* self, record* r) {
    return {
        [=](caf::spawn_atom, const caf::node_id&, const std::string& type, const caf::message&,
            const std::set<std::string>&) {
            CHECK(type == cluster::colocated_actor_type);
            auto rp = self->make_response_promise();
            r->spawns.emplace_back(r->asked.empty() ? std::string{} : r->asked.back(), rp);
            r->spawned.push_back(r->asked.back());
            r->most_held = std::max(r->most_held, r->requests.size() + r->spawns.size());
            return rp;
        },
        [=](answer_atom, const std::string& how) {
            REQUIRE(!r->spawns.empty());
            auto rp = r->spawns.front().second;
            r->spawns.pop_front();
            if (how == "spawn") {
                auto b = self->spawn(test_backup);
                r->backups.push_back(b);
                rp.deliver(caf::actor_cast<caf::strong_actor_ptr>(b));
            } else {
                rp.deliver(caf::make_error(caf::sec::cannot_spawn_actor_from_arguments));
            }
        },
    };
}

cluster::member_info member(const std::string& name, const std::string& role, int port) {
    return cluster::member_info{name,          role == "live" ? "id-" + name : "",  role,
                                "127.0.0.1:1", "127.0.0.1:" + std::to_string(port), 1};
}

struct fixture : actormq::test::deterministic {
    record rec;
    caf::actor cluster = track(sys.spawn(test_cluster, &rec));
    caf::actor middleman = track(sys.spawn(test_middleman, &rec));
    caf::actor requester;

    explicit fixture(int32_t retries = -1) {
        requester_settings s;
        s.retries = retries;
        s.retry_interval = 5s;
        s.timeout = 10s;
        requester =
            track(sys.spawn(backup_requester, s, cluster, middleman, cluster::colocated_spec{}));
        run();
    }

    /// This node (`my_name`, live on port 100) first, then `others`.
    void show(std::vector<cluster::member_info> others,
              const std::string& my_role = "live",
              const std::string& my_name = "me") {
        cluster::topology t;
        t.members.push_back(member(my_name, my_role, 100));
        for (auto& m : others) {
            t.members.push_back(std::move(m));
        }
        caf::anon_send(requester, t);
        run();
    }

    void cluster_answers(const std::string& how) {
        caf::anon_send(cluster, answer_atom::value, how);
        run();
    }

    void middleman_answers(const std::string& how) {
        caf::anon_send(middleman, answer_atom::value, how);
        run();
    }

    const backup_requester_state& state() { return state_of<backup_requester_state>(requester); }
};

/// The live members a requester may ask in `t`, besides itself: what next_candidate() walks.
const std::vector<cluster::member_info> three_lives = {
    member("a", "live", 101), member("b", "live", 102), member("colocated_backup_1", "live", 103),
    member("c", "backup", 104), member("d", "live", 105)};

} // namespace

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
