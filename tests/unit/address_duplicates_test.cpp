// SPDX-License-Identifier: Apache-2.0
// The duplicate-id cache of an address (actors/broker/address.cpp) against a journal that fails:
// an id stands for a stored message only once that message is on disk, a retry while the first
// copy is on its way follows the first copy's outcome, and transactions hold their ids until
// they end. The address runs in a real actor system; the journal is a stand-in that holds every
// append until the test sends it flush_atom, then answers them all with success or an error.
#include "actors/broker/address.hpp"
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

bool is(const caf::error& e, errc code) {
    return e.category() == caf::atom("actormq") && e.code() == static_cast<uint8_t>(code);
}

} // namespace

TEST_CASE("address: duplicates: a failed append forgets its ids, so the retry is stored, not "
          "confirmed as a duplicate") {
    fixture f;
    auto first = f.route(persistent_message("A", "one"));
    CHECK(f.depth() == 0);
    f.flush(true);
    auto r1 = fixture::answer(*first);
    REQUIRE_FALSE(r1);
    CHECK(is(r1.error(), errc::journal_failed));

    auto retry = f.route(persistent_message("A", "one"));
    CHECK(f.depth() == 0);
    f.flush(false);
    auto r2 = fixture::answer(*retry);
    REQUIRE(r2);
    CHECK(*r2 == route_status::routed);
    // The retry went to the journal: it is not taken for a copy of the lost message.
    CHECK(f.script->appends == 2);
    CHECK(f.depth() == 1);

    // Now it is stored: a third copy is a duplicate.
    auto again = f.route(persistent_message("A", "one"));
    auto r3 = fixture::answer(*again);
    REQUIRE(r3);
    CHECK(f.depth() == 1);
    CHECK(f.script->appends == 2);
}

TEST_CASE("address: duplicates: a retry of a message still on its way to the journal is "
          "answered only after it, and fails when it fails") {
    fixture f;
    auto first = f.route(persistent_message("B", "two"));
    auto retry = f.route(persistent_message("B", "two"));
    CHECK(f.depth() == 0);                  // barrier: both route requests are handled
    CHECK_FALSE(fixture::answered(*retry)); // no confirmation before the first is on disk
    f.flush(true);
    auto r1 = fixture::answer(*first);
    auto r2 = fixture::answer(*retry);
    CHECK(f.script->appends == 1);
    REQUIRE_FALSE(r1);
    REQUIRE_FALSE(r2);
    CHECK(is(r2.error(), errc::journal_failed));
    CHECK(f.depth() == 0);
}

TEST_CASE("address: duplicates: a retry of a message on its way is confirmed once the first is "
          "stored, and stored once") {
    fixture f;
    auto first = f.route(persistent_message("C", "three"));
    auto retry = f.route(persistent_message("C", "three"));
    CHECK(f.depth() == 0);
    CHECK_FALSE(fixture::answered(*retry));
    f.flush(false);
    auto r1 = fixture::answer(*first);
    auto r2 = fixture::answer(*retry);
    REQUIRE(r1);
    REQUIRE(r2);
    CHECK(*r2 == route_status::routed);
    CHECK(f.depth() == 1);
    CHECK(f.script->appends == 1);
}

TEST_CASE("address: duplicates: an id held by an open transaction is in flight for others; "
          "rollback frees it, commit makes it a duplicate") {
    fixture f;
    REQUIRE(f.prepare(7, persistent_message("T", "tx")) == route_status::routed);
    auto other_tx = f.prepare(8, persistent_message("T", "tx"));
    REQUIRE_FALSE(other_tx);
    CHECK(is(other_tx.error(), errc::duplicate_in_flight));
    auto plain = f.route(persistent_message("T", "tx"));
    auto rp = fixture::answer(*plain);
    REQUIRE_FALSE(rp);
    CHECK(is(rp.error(), errc::duplicate_in_flight));

    // Rolled back (or a failed commit, which the session answers with rollback): free again.
    caf::anon_send(f.addr, rollback_atom::value, uint64_t{7});
    REQUIRE(f.prepare(9, persistent_message("T", "tx")) == route_status::routed);
    caf::anon_send(f.addr, commit_atom::value, uint64_t{9});
    CHECK(f.depth() == 1);
    CHECK(f.prepare(10, persistent_message("T", "tx")) == route_status::duplicate);
    auto dup = f.route(persistent_message("T", "tx"));
    CHECK(fixture::answer(*dup) == route_status::routed);
    CHECK(f.depth() == 1);
}

TEST_CASE("address: duplicates: a transaction repeating an id still on its way to the journal "
          "gets duplicate_in_flight, not duplicate") {
    fixture f;
    auto first = f.route(persistent_message("D", "four"));
    auto tx = f.prepare(11, persistent_message("D", "four"));
    REQUIRE_FALSE(tx);
    CHECK(is(tx.error(), errc::duplicate_in_flight));
    f.flush(true);
    CHECK_FALSE(fixture::answer(*first));
    // The failed append left nothing behind: the transaction may take the id now.
    CHECK(f.prepare(12, persistent_message("D", "four")) == route_status::routed);
}
