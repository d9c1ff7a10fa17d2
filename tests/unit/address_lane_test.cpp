// SPDX-License-Identifier: Apache-2.0
// The send lane's side of an address (actors/broker/send_lane.hpp, address.cpp): every
// operation draws its id from the lane's word, an operation drawn after a lane id waits for
// the lane's message, and the switch closes while the address holds duplicate ids in flight or
// a prepared transaction. The address runs in a real actor system over a journal stand-in
// that holds every append until the test flushes it (support/held_journal.hpp).
#include "actors/broker/address.hpp"
#include "actors/broker/send_lane.hpp"
#include "protocol/errc.hpp"
#include "support/address_fixture.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <doctest/doctest.h>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

using namespace actormq;

namespace {

using test::persistent_message;
using test::wait_bound;
using fixture = test::address_fixture;

/// Routes one message without a duplicate id and waits until it is stored: the anycast queue
/// exists afterwards, so the lane may open.
void warm_up(fixture& f) {
    auto first = f.route(persistent_message("", "warm"));
    CHECK(f.depth() == 0);
    f.flush(false);
    REQUIRE(fixture::answer(*first));
}

} // namespace

TEST_CASE("address: send lane: the lane's word orders every operation; closed, enter() fails "
          "and draw() goes on past every id the lane drew") {
    address_lane lane;
    lane.usage = std::make_shared<address_usage>();
    CHECK_FALSE(lane.enter()); // closed until its address opens it
    CHECK(lane.draw() == 1);
    lane.set_open(true);
    CHECK(lane.enter() == std::optional<uint64_t>{2});
    CHECK(lane.draw() == 3);
    lane.set_open(false);
    CHECK_FALSE(lane.enter());
    CHECK(lane.draw() == 4);
    lane.retired = true;
    lane.set_open(true); // a removed address's lane never opens again
    CHECK_FALSE(lane.is_open());
}

TEST_CASE("address: send lane: a reservation never takes the address past max-size-bytes") {
    address_lane lane;
    lane.usage = std::make_shared<address_usage>();
    lane.usage->max_bytes = 1000;
    CHECK(lane.reserve(600));
    CHECK_FALSE(lane.reserve(401));
    CHECK(lane.reserve(400));
    CHECK(lane.usage->bytes == 1000);
    lane.release(600);
    CHECK(lane.usage->bytes == 400);
}

TEST_CASE("address: send lane: a route that drew its id after a lane id is answered only once "
          "the lane's message took its place") {
    fixture f;
    warm_up(f);
    auto lane = f.ctx->lanes->find("orders");
    REQUIRE(lane);
    REQUIRE(lane->is_open());
    // The lane takes a message (as a connection does) and has not handed it back yet.
    auto m = persistent_message("", "by-lane");
    REQUIRE(lane->reserve(m->memory_bytes()));
    auto id = lane->enter();
    REQUIRE(id);
    auto later = f.route(persistent_message("", "later"));
    CHECK(f.depth() == 1);
    f.flush(false);
    CHECK(f.depth() == 1); // barrier: the address has the journal's answer
    CHECK_FALSE(fixture::answered(*later));
    auto op = std::make_shared<lane_op>();
    op->id = *id;
    op->msg = m;
    op->bytes = m->memory_bytes();
    caf::anon_send(lane->owner_handle(), lane_atom::value, op);
    auto r = fixture::answer(*later);
    REQUIRE(r);
    CHECK(*r == route_status::routed);
    CHECK(f.depth() == 3);
}

TEST_CASE("address: send lane: a refused lane message gives its bytes back and lets the "
          "operations after it go") {
    fixture f;
    warm_up(f);
    auto lane = f.ctx->lanes->find("orders");
    REQUIRE(lane);
    auto before = lane->usage->bytes.load();
    auto m = persistent_message("", "lost");
    REQUIRE(lane->reserve(m->memory_bytes()));
    auto id = lane->enter();
    REQUIRE(id);
    auto later = f.route(persistent_message("", "later"));
    CHECK(f.depth() == 1); // barrier: the route's append is at the journal before the flush
    f.flush(false);
    CHECK(f.depth() == 1);
    auto op = std::make_shared<lane_op>();
    op->id = *id;
    op->bytes = m->memory_bytes();
    op->ok = false;
    caf::anon_send(lane->owner_handle(), lane_atom::value, op);
    REQUIRE(fixture::answer(*later));
    CHECK(f.depth() == 2);
    CHECK(lane->usage->bytes.load() == before + persistent_message("", "later")->memory_bytes());
}

TEST_CASE("address: send lane: closed while a duplicate id is on its way to the journal, and "
          "while a transaction is prepared") {
    fixture f;
    warm_up(f);
    auto lane = f.ctx->lanes->find("orders");
    REQUIRE(lane);
    REQUIRE(lane->is_open());
    auto dup = f.route(persistent_message("D", "dup"));
    CHECK(f.depth() == 1);
    CHECK_FALSE(lane->is_open());
    f.flush(false);
    REQUIRE(fixture::answer(*dup));
    CHECK(f.depth() == 2);
    CHECK(lane->is_open());
    REQUIRE(f.prepare(7, persistent_message("", "in-tx")));
    CHECK_FALSE(lane->is_open());
    caf::anon_send(f.addr, commit_atom::value, uint64_t{7});
    CHECK(f.depth() == 3);
    CHECK(lane->is_open());
}
