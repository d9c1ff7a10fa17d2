// SPDX-License-Identifier: Apache-2.0
// exit_tracker (actors/ha/exit_tracker.hpp): the node's stop waits until a journal's or
// replica's exit notices have all gone out, the remote monitors' included, before it drains
// the middleman (tests/crash/REPLICATION-FINDINGS.md, finding 7).
#include "actors/ha/exit_tracker.hpp"

#include <caf/abstract_actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>

using namespace actormq;
using namespace std::chrono_literals;

TEST_CASE("exit_tracker: the wait ends only after monitors added later have been told") {
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    exit_tracker exits;
    CHECK(exits.await(0ms));

    auto worker = sys.spawn<caf::detached>([](caf::event_based_actor*) -> caf::behavior {
        return {[](int) {
        }};
    });
    exits.track(worker);
    // A monitor added after the spawn stands for a remote node's: its notice (a down message
    // into the BASP broker's mailbox) is what the stop must not overtake. The ending thread
    // is held right there until the test lets it go, as a preempted one would be.
    std::atomic<bool> remote_told{false};
    std::promise<void> go_on;
    auto held = go_on.get_future().share();
    caf::actor_cast<caf::abstract_actor*>(worker)->attach_functor([&remote_told, held] {
        held.wait();
        remote_told = true;
    });
    CHECK_FALSE(exits.await(20ms));

    caf::scoped_actor self{sys};
    self->monitor(worker);
    caf::anon_send_exit(worker, caf::exit_reason::user_shutdown);
    // The newest monitor is told first: here the actor has ended, and its count in the
    // registry is gone, but the remote monitor has not been told yet.
    self->receive([](const caf::down_msg&) {});
    CHECK_FALSE(exits.await(50ms));
    go_on.set_value();
    CHECK(exits.await(10s));
    CHECK(remote_told.load());
}
