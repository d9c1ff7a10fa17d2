// SPDX-License-Identifier: Apache-2.0
// The replication driver (actors/ha/replication_driver.cpp) on CAF's test coordinator, every
// message stepped. The cluster, the io actors and the replica are test actors that hold each
// request until the test answers it; the test decides, per seed, in which order the pairing
// answer, the replica's reports and the votes arrive and how each vote ends. The rules: a
// backup serves only after its replica was in sync and a vote said the live is gone, it never
// serves twice, every stop finishes, and the driver never meets a message it did not expect.
#include "actors/ha/replication_driver.hpp"
#include "support/deterministic.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <random>
#include <string>
#include <tuple>
#include <vector>

using namespace actormq;
namespace ra = actormq::repl_activation;
using namespace std::chrono_literals;

namespace {

using answer_atom = caf::atom_constant<caf::atom("answer")>;
using report_now_atom = caf::atom_constant<caf::atom("reportnow")>;

constexpr const char* live_node = "11111111-2222-3333-4444-555555555555";

/// What happened, as the test actors and the effects saw it.
struct record {
    std::vector<std::string> notes;
    bool in_sync_reported = false;
    bool vote_won = false;
    int releases = 0;
    int loads = 0;
    int replicas = 0;
    bool exited = false;
    /// The pending requests of the test cluster (pair, vote) and of the io actors.
    std::deque<std::pair<std::string, caf::response_promise>> held;
    /// How each vote ends (front first); a vote with nothing scripted is lost.
    std::deque<bool> votes;
    caf::actor replica;
};

/// Answers the oldest held request of `kind` (from inside the test cluster, as a response
/// promise is delivered by its own actor).
void deliver(record* r, const std::string& kind) {
    for (auto it = r->held.begin(); it != r->held.end(); ++it) {
        if (it->first != kind) {
            continue;
        }
        auto rp = it->second;
        r->held.erase(it);
        if (kind == "pair") {
            rp.deliver(replication::pair_reply{live_node, 1, caf::actor{}});
            return;
        }
        bool won = !r->votes.empty() && r->votes.front();
        if (!r->votes.empty()) {
            r->votes.pop_front();
        }
        r->vote_won = r->vote_won || won;
        cluster::vote_tally t;
        t.node_id = live_node;
        t.lives_seen_max = 2;
        t.lives_not_seeing = won ? 1 : 0;
        rp.deliver(t);
        return;
    }
}

/// The cluster as the driver sees it: holds pair and vote requests for the test to answer.
caf::behavior test_cluster(caf::event_based_actor* self, record* r) {
    return {
        [=](replication::pair_atom, const std::string&, const std::string&, const std::string&,
            caf::actor&) {
            auto rp = self->make_response_promise();
            r->held.emplace_back("pair", rp);
            return rp;
        },
        [=](cluster::quorum_atom, const std::string&, uint32_t) {
            auto rp = self->make_response_promise();
            r->held.emplace_back("vote", rp);
            return rp;
        },
        // A vote that decided nothing gives back what it was granted (cluster_state::vote).
        [=](cluster::vote_release_atom, const std::string&) { ++r->releases; },
        [=](answer_atom, const std::string& kind) { deliver(r, kind); },
    };
}

/// The instance, locks and files io actors in one: answers at once (their blocking work is
/// not what this test is about).
caf::behavior test_io(caf::event_based_actor*, record* r) {
    return {
        [=](ha_load_atom, const std::string& node_id) {
            CHECK(node_id == live_node);
            ++r->loads;
            return true;
        },
        [](ha_open_atom) { return true; },
        [](ha_close_atom, bool) { return true; },
        [](repl_prepare_atom, bool) {
            return std::make_tuple(std::string{}, std::string{}, uint64_t{0});
        },
        [](repl_record_atom) { return std::make_tuple(std::string{}, std::string{}, uint64_t{0}); },
        [](repl_record_atom, const std::string&, uint64_t) { return std::string{}; },
    };
}

/// A replica: closes when asked, and sends the report the test tells it to.
caf::behavior test_replica(caf::event_based_actor* self, caf::actor owner) {
    return {
        [=](replication::close_atom) {
            self->quit();
            return true;
        },
        [=](report_now_atom, uint8_t kind, bool synced) {
            replication::replica_report rep;
            rep.kind = static_cast<replication::replica_report::kind_t>(kind);
            rep.synced = synced;
            self->send(owner, replication::report_atom::value, std::move(rep));
        },
    };
}

struct test_effects final : replication_effects {
    record* r;
    caf::actor_system* sys;
    test_effects(record* rec, caf::actor_system* s) : r(rec), sys(s) {}
    void note(const ra::note& n, int64_t) override {
        r->notes.push_back(ra::to_string(n.kind));
        if (n.kind == ra::note_kind::live) {
            // The rule under test.
            CHECK(r->in_sync_reported);
            CHECK(r->vote_won);
        }
    }
    void exit_process(int) override { r->exited = true; }
    void resume_journal() override {}
    caf::actor spawn_replica(const caf::actor& owner) override {
        ++r->replicas;
        r->replica = sys->spawn(test_replica, owner);
        return r->replica;
    }
};

struct fixture : actormq::test::deterministic {
    record rec;
    caf::actor cluster = track(sys.spawn(test_cluster, &rec));
    caf::actor io = track(sys.spawn(test_io, &rec));
    caf::actor driver;

    fixture() {
        replication_setup setup;
        setup.settings.backup = true;
        setup.settings.vote_retries = 3;
        setup.cluster = cluster;
        setup.locks = caf::actor_cast<io_locks_actor>(io);
        setup.instance = caf::actor_cast<io_instance_actor>(io);
        setup.files = io;
        setup.cluster_address = "127.0.0.1:2";
        setup.effects = std::make_shared<test_effects>(&rec, &sys);
        driver = track(sys.spawn(replication_driver, std::move(setup)));
        caf::anon_send(driver, ha_start_atom::value);
        run();
    }

    /// The topology with a live of node `live_node` at 127.0.0.1:1, without a backup.
    void show_live() {
        cluster::topology t;
        t.members.push_back(cluster::member_info{"me", "", "starting", "", "127.0.0.1:2", 1});
        t.members.push_back(
            cluster::member_info{"live", live_node, "live", "127.0.0.1:9", "127.0.0.1:1", 1});
        caf::anon_send(driver, t);
    }

    /// Answers the oldest held request of `kind` and runs; false when none is held.
    bool answer(const std::string& kind) {
        bool held = std::any_of(rec.held.begin(), rec.held.end(),
                                [&](const auto& h) { return h.first == kind; });
        if (held) {
            caf::anon_send(cluster, answer_atom::value, kind);
            run();
        }
        return held;
    }

    void report(replication::replica_report::kind_t kind, bool synced) {
        if (kind == replication::replica_report::in_sync) {
            rec.in_sync_reported = true;
        }
        caf::anon_send(rec.replica, report_now_atom::value, static_cast<uint8_t>(kind), synced);
    }

    /// The backup pairs with the live, is in sync, then loses it: the vote comes next.
    void sync_then_lose_live() {
        show_live();
        run();
        answer("pair");
        run();
        report(replication::replica_report::in_sync, true);
        run();
        report(replication::replica_report::lost, true);
        run();
    }

    uint64_t unexpected() { return state_of<replication_driver_state>(driver).unexpected; }
    const ra::machine& machine() { return state_of<replication_driver_state>(driver).machine; }
};

bool noted(const record& r, const std::string& kind) {
    return std::find(r.notes.begin(), r.notes.end(), kind) != r.notes.end();
}

} // namespace

TEST_CASE_FIXTURE(fixture, "replication driver: pair, sync, lose the live, win the vote, serve") {
    CHECK(noted(rec, "waiting_for_live"));
    show_live();
    run();
    REQUIRE(answer("pair"));
    run();
    report(replication::replica_report::in_sync, true);
    run();
    CHECK(machine().in_sync());
    report(replication::replica_report::lost, true);
    run();
    rec.votes = {true};
    REQUIRE(answer("vote"));
    run();
    CHECK(rec.loads == 1);
    CHECK(machine().serving());
    CHECK(noted(rec, "live"));
    CHECK(unexpected() == 0);
    caf::anon_send(driver, ha_stop_atom::value);
    run();
}

TEST_CASE_FIXTURE(fixture,
                  "replication driver: a lost vote is retried after vote-retry-wait "
                  "on the virtual clock, and a stop in the middle finishes") {
    sync_then_lose_live();
    rec.votes = {false};
    REQUIRE(answer("vote"));
    run();
    CHECK(noted(rec, "vote_lost"));
    CHECK(rec.held.empty());
    CHECK(rec.releases == 1);
    advance(2s); // vote-retry-wait
    run();
    REQUIRE(!rec.held.empty()); // asked again
    caf::anon_send(driver, ha_stop_atom::value);
    run();
    answer("vote");
    run();
    CHECK(machine().current_phase() == ra::phase::done);
    CHECK(rec.loads == 0);
    CHECK(unexpected() == 0);
}

TEST_CASE_FIXTURE(fixture,
                  "replication driver: every lost vote gives its grants back, the last "
                  "one before the start-over too") {
    sync_then_lose_live();
    rec.votes = {false, false, false, false};
    for (int vote = 1; vote <= 4; ++vote) { // 1 + vote-retries
        CAPTURE(vote);
        REQUIRE(answer("vote"));
        run();
        CHECK(rec.releases == vote);
        advance(2s); // vote-retry-wait
        run();
    }
    // The fourth lost vote started over (the replica closes, then pairing again): its grants
    // went back all the same, or they would hold up the live's own quorum check for a while.
    CHECK(noted(rec, "restarting"));
    caf::anon_send(driver, ha_stop_atom::value);
    run();
    CHECK(unexpected() == 0);
}

TEST_CASE("replication driver: seeded orders of the pairing answer, the replica's reports and "
          "the votes") {
    int served = 0;
    for (auto seed : actormq::test::seeds(100)) {
        INFO("replay with ACTORMQ_SEED=", seed);
        fixture f;
        std::mt19937_64 rng{seed};
        auto coin = [&](int pct) {
            return std::uniform_int_distribution<int>(0, 99)(rng) < pct;
        };
        for (int i = 0; i < 8; ++i) {
            f.rec.votes.push_back(coin(40));
        }
        f.show_live();
        f.run();
        // The in-sync report may overtake the pairing answer (the batches take the direct way).
        bool early = coin(50);
        if (early) {
            f.report(replication::replica_report::in_sync, true);
            f.run();
        }
        f.answer("pair");
        f.run();
        if (!early) {
            f.report(replication::replica_report::in_sync, true);
            f.run();
        }
        f.report(replication::replica_report::lost, true);
        f.run();
        for (int step = 0; step < 40 && !f.machine().serving(); ++step) {
            if (!f.answer("vote") && !f.answer("pair")) {
                f.advance(2s);
            }
            f.run();
            if (coin(3)) {
                caf::anon_send(f.driver, ha_stop_atom::value);
                f.run();
                while (f.answer("vote") || f.answer("pair")) {
                    f.run();
                }
                break;
            }
        }
        CHECK(f.unexpected() == 0);
        CHECK(f.rec.loads <= 1);
        served += f.machine().serving() ? 1 : 0;
        caf::anon_send(f.driver, ha_stop_atom::value);
        f.run();
        while (f.answer("vote") || f.answer("pair")) {
            f.run();
        }
        CHECK(f.machine().current_phase() == ra::phase::done);
    }
    if (std::getenv("ACTORMQ_SEED") == nullptr) {
        CHECK(served > 10);
    }
}

TEST_CASE_FIXTURE(fixture,
                  "replication driver: a colocated backup superseded by its host ends only after "
                  "the hint held for the grace (five retry-replication-waits), never on a hint "
                  "withdrawn or changed before") {
    using namespace std::string_literals;
    REQUIRE(machine().current_phase() == ra::phase::waiting);
    // Said, then withdrawn within the grace (a move: the old backup released meanwhile).
    caf::anon_send(driver, repl_superseded_atom::value, "colocated_backup_2@127.0.0.1:7"s);
    run();
    advance(9s);
    run();
    caf::anon_send(driver, repl_superseded_atom::value, ""s);
    run();
    advance(5s);
    run();
    CHECK(machine().current_phase() == ra::phase::waiting);
    // Said again: the grace starts over; a change of member starts it over too.
    caf::anon_send(driver, repl_superseded_atom::value, "colocated_backup_2@127.0.0.1:7"s);
    run();
    advance(6s);
    run();
    caf::anon_send(driver, repl_superseded_atom::value, "colocated_backup_1@127.0.0.1:8"s);
    run();
    advance(6s);
    run();
    CHECK(machine().current_phase() == ra::phase::waiting);
    CHECK_FALSE(noted(rec, "superseded"));
    advance(4s); // 10 s since the last change
    run();
    CHECK(noted(rec, "superseded"));
    CHECK(machine().current_phase() == ra::phase::done);
    CHECK(unexpected() == 0);
}
