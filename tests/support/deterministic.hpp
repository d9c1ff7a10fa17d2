// SPDX-License-Identifier: Apache-2.0
#pragma once

// The deterministic actor tier (docs/testing.md, style rule 24): an actor system on CAF's test
// coordinator, where a test runs one message at a time and time moves only when it says so
// (../shared/caf-notes.md §8). Nothing runs on another thread and nothing waits in real time.

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

namespace actormq::test {

/// One actor system on the test coordinator. Spawn with `sys`, step with step() / run(), move
/// the virtual clock with advance(). Actors handed to track() are ended when the fixture goes,
/// and the clock is flushed, so a failed test cannot hang the destructor (caf-notes.md §8).
class deterministic {
public:
    deterministic() : sys(prepare(cfg_)), sched(coordinator(sys)) {}

    ~deterministic() {
        for (auto& a : tracked_) {
            caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
        }
        // A request that got its answer leaves its timeout in the clock; it keeps the requester
        // alive until fired. Bounded: a test actor that re-arms a timer for ever is ended above.
        for (int round = 0; round < 1000; ++round) {
            sched.run();
            if (sched.trigger_timeouts() == 0 && !sched.has_job()) {
                break;
            }
        }
    }

    deterministic(const deterministic&) = delete;
    deterministic& operator=(const deterministic&) = delete;

    /// Runs the next message of the next actor; false when nothing is queued.
    bool step() { return sched.try_run_once(); }

    /// Runs until no message is queued (timers are not fired); how many ran.
    size_t run() { return sched.run(); }

    /// Moves the virtual clock; delayed messages and request timeouts that fall due are
    /// enqueued (not yet run). Returns how many fell due.
    size_t advance(caf::timespan d) { return sched.advance_time(d); }

    /// Ends `h` with the fixture (unless it ended before).
    template <class Handle>
    Handle track(Handle h) {
        tracked_.push_back(caf::actor_cast<caf::actor>(h));
        return h;
    }

    /// The state of a stateful actor that is still alive (typed handle or caf::actor).
    template <class State, class Handle>
    State& state_of(const Handle& h) {
        auto ptr = caf::actor_cast<caf::abstract_actor*>(h);
        if constexpr (std::is_same_v<Handle, caf::actor>) {
            return dynamic_cast<caf::stateful_actor<State>&>(*ptr).state;
        } else {
            return dynamic_cast<typename Handle::template stateful_base<State>&>(*ptr).state;
        }
    }

private:
    static caf::actor_system_config& prepare(caf::actor_system_config& c) {
        c.set("scheduler.policy", caf::atom("testing"));
        c.set("logger.verbosity", caf::atom("quiet"));
        return c;
    }
    static caf::scheduler::test_coordinator& coordinator(caf::actor_system& s) {
        return dynamic_cast<caf::scheduler::test_coordinator&>(s.scheduler());
    }

    caf::actor_system_config cfg_;

public:
    caf::actor_system sys;
    caf::scheduler::test_coordinator& sched;

private:
    std::vector<caf::actor> tracked_;
};

/// The seeds of a randomised test: 1..count, or only the one in ACTORMQ_SEED (to replay a
/// failure, whose message names its seed as ACTORMQ_SEED=<n>).
inline std::vector<uint64_t> seeds(uint64_t count) {
    if (const char* env = std::getenv("ACTORMQ_SEED"); env && *env) {
        return {std::strtoull(env, nullptr, 10)};
    }
    std::vector<uint64_t> out;
    for (uint64_t s = 1; s <= count; ++s) {
        out.push_back(s);
    }
    return out;
}

} // namespace actormq::test
