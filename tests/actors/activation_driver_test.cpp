// SPDX-License-Identifier: Apache-2.0
// The activation driver (actors/ha/activation_driver.cpp) on CAF's test coordinator. Its io
// actors are replaced by test actors over a simulated lock directory (`world`): they hold each
// request until the test answers it, and compute the answer at that moment, as the real lock
// calls would. A simulated second server ("the peer") takes, loses and hands back the locks.
// The real lock files and journal are covered by tests/process/ha_shared_store_test.cpp.
#include "actors/ha/activation_driver.hpp"
#include "support/deterministic.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <deque>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace act = actormq::activation;
using actormq::activation_actor;
using actormq::activation_driver;
using actormq::activation_driver_state;
using actormq::activation_effects;
using actormq::activation_setup;
using actormq::io_instance_actor;
using actormq::io_locks_actor;
using actormq::lock_op;
using actormq::lock_reply;
using actormq::lock_state;
using namespace std::chrono_literals;

namespace {

/// Tells a test io actor to answer its oldest held request (from inside the actor, as a
/// response promise must be delivered).
using answer_atom = caf::atom_constant<caf::atom("answer")>;
using test_locks_actor = io_locks_actor::extend<caf::reacts_to<answer_atom>>;
using test_instance_actor = io_instance_actor::extend<caf::reacts_to<answer_atom>>;

enum class who : uint8_t { nobody, us, peer };

/// The shared directory as both servers see it, and everything the test checks.
struct world {
    who live = who::nobody;
    who backup = who::nobody;
    lock_state state = lock_state::not_started;
    std::string node_id;
    bool instance = false;
    bool listening = false;
    /// Scripted faults: the next state write fails, the next journal load fails.
    bool fail_write = false;
    bool fail_load = false;

    struct held_lock {
        lock_op op;
        lock_state s;
        caf::typed_response_promise<lock_reply> rp;
    };
    enum class inst_op : uint8_t { load, open, close };
    struct held_inst {
        inst_op op;
        caf::typed_response_promise<bool> rp;
    };
    std::deque<held_lock> locks;
    std::deque<held_inst> insts;

    std::vector<act::note> notes;
    std::vector<int> exits;
    std::vector<std::string> violations;
    std::vector<std::string> trace;
    bool driver_down = false;

    void log(std::string line) { trace.push_back(std::move(line)); }
    void violated(const std::string& what) { violations.push_back(what); }
    bool noted(act::note_kind k) const {
        for (const auto& n : notes) {
            if (n.kind == k) {
                return true;
            }
        }
        return false;
    }

    /// Answers the oldest held lock request from the world as it is now.
    void answer_lock() {
        auto h = std::move(locks.front());
        locks.pop_front();
        lock_reply r;
        switch (h.op) {
            case lock_op::take_backup:
                r.taken = backup != who::peer;
                backup = r.taken ? who::us : backup;
                r.node_id = node_id;
                break;
            case lock_op::poll_live:
                r.taken = live != who::peer;
                live = r.taken ? who::us : live;
                r.state = state;
                r.node_id = node_id;
                break;
            case lock_op::read_state:
                r.state = state;
                break;
            case lock_op::write_state:
                if (fail_write) {
                    fail_write = false;
                    r.error = "file=server.lock op=fdatasync errno=EIO";
                    break;
                }
                if (h.s == lock_state::failing_back ? backup != who::us : live != who::us) {
                    violated(std::string{"wrote "} + static_cast<char>(h.s)
                             + " without the lock that allows it");
                }
                state = h.s;
                break;
            case lock_op::claim_node_id:
                if (live != who::us) {
                    violated("claimed the node id without the live lock");
                }
                node_id = node_id.empty() ? "node-1" : node_id;
                r.node_id = node_id;
                break;
        }
        log("lock answer op=" + std::to_string(static_cast<int>(h.op)));
        h.rp.deliver(r);
    }

    /// Answers the oldest held instance request.
    void answer_instance() {
        auto h = std::move(insts.front());
        insts.pop_front();
        bool ok = true;
        switch (h.op) {
            case inst_op::load:
                if (live != who::us) {
                    violated("loaded the journal without the live lock");
                }
                ok = !fail_load;
                fail_load = false;
                instance = ok;
                break;
            case inst_op::open:
                listening = instance;
                ok = instance;
                break;
            case inst_op::close:
                instance = false;
                listening = false;
                break;
        }
        log("instance answer op=" + std::to_string(static_cast<int>(h.op)));
        h.rp.deliver(ok);
    }

    /// The invariants of docs/ha.md, checked after every step.
    void check() {
        if (instance && live != who::us) {
            violated("an instance without the live lock");
        }
        if (listening && live == who::peer) {
            violated("two servers serve one node id");
        }
    }
};

test_locks_actor::behavior_type fake_locks(test_locks_actor::pointer self, world* w) {
    return {
        [w](answer_atom) {
            if (!w->locks.empty()) {
                w->answer_lock();
            }
        },
        [self, w](actormq::ha_lock_atom, lock_op op, lock_state s) {
            auto rp = self->make_response_promise<lock_reply>();
            w->locks.push_back({op, s, rp});
            return rp;
        },
        [w](actormq::ha_unlock_atom, bool live, bool backup) {
            if (live && w->instance) {
                w->violated("released the live lock while the instance is up");
            }
            if (live && w->live == who::us) {
                w->live = who::nobody;
            }
            if (backup && w->backup == who::us) {
                w->backup = who::nobody;
            }
            w->log(std::string{"unlock live="} + (live ? "1" : "0")
                   + " backup=" + (backup ? "1" : "0"));
        },
        [](actormq::ha_sync_atom) { return true; },
    };
}

test_instance_actor::behavior_type fake_instance(test_instance_actor::pointer self, world* w) {
    return {
        [w](answer_atom) {
            if (!w->insts.empty()) {
                w->answer_instance();
            }
        },
        [self, w](actormq::ha_load_atom, const std::string&) {
            auto rp = self->make_response_promise<bool>();
            w->insts.push_back({world::inst_op::load, rp});
            return rp;
        },
        [self, w](actormq::ha_open_atom) {
            auto rp = self->make_response_promise<bool>();
            w->insts.push_back({world::inst_op::open, rp});
            return rp;
        },
        [self, w](actormq::ha_close_atom, bool) {
            auto rp = self->make_response_promise<bool>();
            w->insts.push_back({world::inst_op::close, rp});
            return rp;
        },
    };
}

struct recording_effects final : activation_effects {
    world* w;
    explicit recording_effects(world* wp) : w(wp) {}
    void note(const act::note& n, int64_t) override {
        w->notes.push_back(n);
        w->log(std::string{"note "} + act::to_string(n.kind));
        if (n.kind == act::note_kind::live && !(w->listening && w->live == who::us)) {
            w->violated("said live while not listening with the live lock");
        }
        // A live stopped on purpose, without a failure, has written `P` by the time it says so.
        if (n.kind == act::note_kind::stopped && !n.hand_over && w->state != lock_state::paused) {
            w->violated("stopped without failover but the state is not P");
        }
        if (n.kind == act::note_kind::stopped && n.hand_over && w->state == lock_state::paused) {
            w->violated("handed over but wrote P");
        }
    }
    void exit_process(int status) override {
        w->exits.push_back(status);
        w->log("exit " + std::to_string(status));
    }
};

/// Sets world::driver_down when the driver ends.
caf::behavior watcher(caf::event_based_actor* self, caf::actor driver, world* w) {
    self->monitor(driver);
    self->set_down_handler([self, w](caf::down_msg&) {
        w->driver_down = true;
        self->quit();
    });
    return {[](caf::unit_t) {
    }};
}

struct fixture : actormq::test::deterministic {
    world w;
    activation_actor driver;
    test_locks_actor locks;
    test_instance_actor instance;
    caf::timespan poll = 10ms;

    void spawn(act::settings s) {
        activation_setup setup;
        setup.settings = s;
        setup.timeouts.poll_interval = poll;
        locks = track(sys.spawn(fake_locks, &w));
        instance = track(sys.spawn(fake_instance, &w));
        setup.locks = locks;
        setup.instance = instance;
        setup.effects = std::make_shared<recording_effects>(&w);
        driver = track(sys.spawn(activation_driver, std::move(setup)));
        track(sys.spawn(watcher, caf::actor_cast<caf::actor>(driver), &w));
        run();
    }
    /// Has the lock / instance io actor answer its oldest held request (one message each).
    void answer_lock() { caf::anon_send(locks, answer_atom::value); }
    void answer_instance() { caf::anon_send(instance, answer_atom::value); }
    void send_start() { caf::anon_send(driver, actormq::ha_start_atom::value); }
    void send_stop() { caf::anon_send(driver, actormq::ha_stop_atom::value); }
    uint64_t unexpected() {
        auto& st = state_of<activation_driver_state>(driver);
        return st.unexpected + st.machine.unexpected();
    }
    act::phase phase() { return state_of<activation_driver_state>(driver).machine.current_phase(); }
    /// Runs, answering every held request, until nothing moves (ticks are not fired).
    void settle() {
        do {
            run();
            while (!w.locks.empty() || !w.insts.empty()) {
                if (!w.locks.empty()) {
                    answer_lock();
                } else {
                    answer_instance();
                }
                run();
                w.check();
            }
        } while (sched.has_job());
    }
    std::string trace_tail() const {
        std::ostringstream out;
        auto from = w.trace.size() > 40 ? w.trace.size() - 40 : 0;
        for (auto i = from; i < w.trace.size(); ++i) {
            out << "\n  " << w.trace[i];
        }
        return out.str();
    }
};

act::settings backup_settings() {
    act::settings s;
    s.backup = true;
    return s;
}

} // namespace

TEST_CASE_FIXTURE(fixture,
                  "activation driver: a backup takes over when the live lock frees, "
                  "one message at a time") {
    w.live = who::peer;
    w.state = lock_state::live;
    w.node_id = "node-1";
    spawn(backup_settings());
    send_start();
    CHECK(step());       // the driver handles start and asks for backup.lock
    CHECK(step());       // the lock actor holds the request
    CHECK_FALSE(step()); // nothing else moves until it is answered
    REQUIRE(w.locks.size() == 1);
    CHECK(w.locks.front().op == lock_op::take_backup);
    answer_lock();
    CHECK(step()); // the lock actor answers: taken
    CHECK(step()); // the driver: waiting_for_live, poll the live lock
    CHECK(w.noted(act::note_kind::waiting_for_live));
    CHECK(step());
    answer_lock(); // the peer still holds it
    CHECK(step());
    CHECK(step());
    CHECK_FALSE(step()); // a tick is due, not a message
    CHECK(phase() == act::phase::waiting_live);
    w.live = who::nobody;      // the peer dies; the kernel drops its lock
    CHECK(advance(poll) == 1); // the tick, from the virtual clock
    settle();
    CHECK(w.live == who::us);
    CHECK(w.listening);
    CHECK(w.state == lock_state::live);
    CHECK(w.backup == who::nobody); // released once it listens
    CHECK(phase() == act::phase::live);
    CHECK(unexpected() == 0);
    send_stop();
    settle();
    CHECK(w.driver_down);
    CHECK(w.live == who::nobody);
    CHECK(w.state == lock_state::paused);
    CHECK(w.exits.empty());
}

TEST_CASE_FIXTURE(fixture,
                  "activation driver: stop during the journal load waits for it, then "
                  "closes and releases") {
    spawn(act::settings{});
    send_start();
    run();
    while (w.insts.empty()) {
        answer_lock();
        run();
    }
    REQUIRE(w.insts.front().op == world::inst_op::load);
    send_stop();
    run();
    CHECK_FALSE(w.driver_down); // the load is still in flight
    answer_instance();          // loaded
    run();
    REQUIRE(w.insts.size() == 1);
    CHECK(w.insts.front().op == world::inst_op::close); // never opened
    CHECK_FALSE(w.listening);
    settle();
    CHECK(w.driver_down);
    CHECK(w.live == who::nobody);
    CHECK(w.state == lock_state::paused);
    CHECK_FALSE(w.noted(act::note_kind::live));
    CHECK(w.noted(act::note_kind::stopped));
}

TEST_CASE_FIXTURE(fixture,
                  "activation driver: a lock call that never answers times out and the "
                  "node exits 1") {
    spawn(backup_settings());
    send_start();
    run();
    REQUIRE(w.locks.size() == 1);
    CHECK(advance(29s) == 0);
    CHECK(advance(1s) == 1); // the 30 s bound of a lock request
    run();
    CHECK(w.exits == std::vector<int>{1});
    CHECK(w.noted(act::note_kind::lock_io_failed));
    CHECK(w.driver_down);
}

TEST_CASE_FIXTURE(fixture,
                  "activation driver: the journal fails while live; the stop leaves the "
                  "state L for the backup") {
    spawn(act::settings{});
    send_start();
    settle();
    REQUIRE(w.listening);
    caf::anon_send(driver, actormq::ha_fail_atom::value);
    run();
    CHECK(w.exits == std::vector<int>{1});
    send_stop(); // what SIGTERM does
    settle();
    CHECK(w.driver_down);
    CHECK(w.state == lock_state::live);
    CHECK(w.live == who::nobody);
}

TEST_CASE_FIXTURE(fixture,
                  "activation driver: a failing-back primary makes the live backup give "
                  "way and wait again") {
    spawn(backup_settings());
    send_start();
    settle();
    REQUIRE(w.listening);
    w.backup = who::peer; // the primary came back: it holds backup.lock and writes F
    w.state = lock_state::failing_back;
    advance(poll);
    settle();
    CHECK(w.noted(act::note_kind::giving_way));
    CHECK_FALSE(w.listening);
    CHECK(w.live == who::nobody);
    CHECK(phase() == act::phase::waiting_backup_lock);
    CHECK(w.noted(act::note_kind::backup_restarted));
    CHECK(unexpected() == 0);
}

TEST_CASE("activation driver: random interleavings of peer loss, failback, faults and stop") {
    // Each seed draws the settings, the faults and the order in which messages run, requests
    // are answered, the peer acts and time moves. A failure names its seed: replay it with
    // ACTORMQ_SEED=<n>.
    for (auto seed : actormq::test::seeds(200)) {
        INFO("ACTORMQ_SEED=" << seed);
        fixture f;
        auto& w = f.w;
        INFO("trace:" << f.trace_tail());
        std::mt19937_64 rng{seed};
        auto chance = [&](int percent) {
            return static_cast<int>(rng() % 100) < percent;
        };
        act::settings s;
        s.backup = chance(50);
        s.failover_on_shutdown = chance(50);
        s.allow_failback = chance(70);
        s.restart_backup = chance(70);
        w.fail_write = chance(10);
        w.fail_load = chance(10);
        // Sometimes another server is live already.
        if (chance(50)) {
            w.live = who::peer;
            w.state = chance(20) ? lock_state::paused : lock_state::live;
            w.node_id = "node-1";
        }
        f.spawn(s);
        f.send_start();
        bool stopped = false;
        for (int i = 0; i < 400 && !w.driver_down; ++i) {
            auto r = rng() % 100;
            if (r < 40) {
                f.step();
            } else if (r < 60 && !w.locks.empty()) {
                f.answer_lock();
            } else if (r < 70 && !w.insts.empty()) {
                f.answer_instance();
            } else if (r < 80) {
                f.advance(f.poll);
            } else if (r < 95) {
                // The peer: dies (its locks go), starts serving on a free lock, or, as a
                // primary returning, asks the live to give way.
                auto p = rng() % 3;
                if (p == 0) {
                    w.live = w.live == who::peer ? who::nobody : w.live;
                    w.backup = w.backup == who::peer ? who::nobody : w.backup;
                    w.log("peer dies");
                } else if (p == 1 && w.live == who::nobody
                           && (s.backup || w.state != lock_state::paused)) {
                    w.live = who::peer;
                    w.state = lock_state::live;
                    w.node_id = w.node_id.empty() ? "node-1" : w.node_id;
                    w.backup = w.backup == who::peer ? who::nobody : w.backup;
                    w.log("peer serves");
                } else if (p == 2 && s.backup && w.live == who::us && w.backup == who::nobody) {
                    w.backup = who::peer;
                    w.state = lock_state::failing_back;
                    w.log("peer asks failback");
                }
            } else if (r < 98 && !stopped) {
                stopped = true;
                w.log("stop");
                f.send_stop();
            } else if (r < 100) {
                w.log("journal fails");
                caf::anon_send(f.driver, actormq::ha_fail_atom::value);
            }
            w.check();
            if (!w.driver_down) {
                REQUIRE(f.unexpected() == 0);
            }
        }
        if (!stopped) {
            f.send_stop();
            w.log("stop");
        }
        // However far it got, a stop ends the driver with everything released.
        for (int i = 0; i < 1000 && !w.driver_down; ++i) {
            f.settle();
            f.advance(f.poll);
        }
        REQUIRE(w.driver_down);
        std::string violations;
        for (const auto& v : w.violations) {
            violations += v + "; ";
        }
        CHECK(violations == "");
        CHECK(w.live != who::us);
        CHECK(w.backup != who::us);
        CHECK_FALSE(w.instance);
        CHECK_FALSE(w.listening);
        bool failure = w.noted(act::note_kind::activation_failed)
                       || w.noted(act::note_kind::lock_write_failed);
        if (failure) {
            CHECK(std::find(w.exits.begin(), w.exits.end(), 1) != w.exits.end());
        }
    }
}
