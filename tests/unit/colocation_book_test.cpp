// SPDX-License-Identifier: Apache-2.0
// A host's book of colocated backups (actors/ha/colocation.hpp, colocation_book): the slots it
// runs and has promised under max-backups, the lowest free slot first, one-time tickets that
// lapse, and a live asking again for its node id withdrawing the grant it never received.
#include "actors/ha/colocation.hpp"

#include <doctest/doctest.h>

#include <chrono>

using namespace actormq;
using namespace std::chrono_literals;

TEST_CASE("colocation book: grants up to max-backups, lowest free slot first; a ticket is "
          "redeemed once, for its slot only") {
    colocation_book book{2, 30s};
    auto a = book.reserve("h", "node-a");
    auto b = book.reserve("h", "node-b");
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->slot == 1);
    CHECK(b->slot == 2);
    CHECK(a->host == "h");
    CHECK_FALSE(book.reserve("h", "node-c")); // both slots promised
    CHECK_FALSE(book.redeem(a->ticket, 2));   // another slot's ticket
    CHECK(book.redeem(a->ticket, 1));
    CHECK_FALSE(book.redeem(a->ticket, 1)); // used
    CHECK(book.running() == 1);
    book.release(1);
    CHECK(book.running() == 0);
    auto c = book.reserve("h", "node-c");
    REQUIRE(c);
    CHECK(c->slot == 1); // the freed slot, not a third
}

TEST_CASE("colocation book: a live asking again for its node id withdraws the grant it never "
          "redeemed, so lost answers do not fill the host; other node ids' grants stay") {
    colocation_book book{2, 30s};
    auto first = book.reserve("h", "node-b");
    REQUIRE(first);
    // The answer was lost with a dropped link; b asks again, twice.
    auto second = book.reserve("h", "node-b");
    auto third = book.reserve("h", "node-b");
    REQUIRE(second);
    REQUIRE(third);
    CHECK(third->slot == 1);
    CHECK_FALSE(book.redeem(first->ticket, first->slot));
    CHECK_FALSE(book.redeem(second->ticket, second->slot));
    // Another live's grant is not touched by b's.
    auto other = book.reserve("h", "node-c");
    REQUIRE(other);
    CHECK(other->slot == 2);
    auto again = book.reserve("h", "node-b");
    REQUIRE(again);
    CHECK(book.redeem(other->ticket, other->slot));
    CHECK(book.redeem(again->ticket, again->slot));
    CHECK(book.running() == 2);
    // A running backup is not a grant: asking again for a running node id's backup does not
    // free its slot (the endpoint hands an unpaired one back instead, colocation_host.cpp).
    CHECK_FALSE(book.reserve("h", "node-b"));
}

TEST_CASE("colocation book: an unredeemed ticket lapses after its lifetime and frees its slot") {
    auto t = std::chrono::steady_clock::time_point{} + 1h;
    colocation_book book{1, 20ms, [&t] {
                             return t;
                         }};
    auto g = book.reserve("h", "node-a");
    REQUIRE(g);
    t += 20ms; // at the end of its lifetime: still held
    CHECK_FALSE(book.reserve("h", "node-b"));
    t += 1ms;
    CHECK_FALSE(book.redeem(g->ticket, g->slot));
    CHECK(book.reserve("h", "node-b"));
}
