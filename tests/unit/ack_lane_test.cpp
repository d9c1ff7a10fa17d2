// SPDX-License-Identifier: Apache-2.0
// The ACK lane's shared tables (actors/broker/ack_lane.hpp; docs/journal.md, "The ACK lane"):
// who owns a delivery's acknowledgement, and when the queue's doorbell rings.
#include "actors/broker/ack_lane.hpp"

#include <doctest/doctest.h>

using namespace actormq;

TEST_CASE("ack lane: queue: no doorbell while the queue can wait, one when it cannot") {
    queue_ack_lane q;
    // Nothing waits for the news: the queue's next message takes it along.
    CHECK_FALSE(q.add(1));
    CHECK_FALSE(q.add(2));
    CHECK(q.take() == std::vector<uint64_t>{1, 2});
    // The queue now needs them at once (a consumer waits for room): the first add rings, the
    // next does not while that doorbell is on its way, and take() re-arms it.
    CHECK_FALSE(q.settle(true));
    CHECK(q.add(3));
    CHECK_FALSE(q.add(4));
    CHECK(q.take() == std::vector<uint64_t>{3, 4});
    CHECK(q.add(5));
}

TEST_CASE("ack lane: queue: ids that came while the queue said it could wait are fetched when "
          "it says it cannot") {
    queue_ack_lane q;
    CHECK_FALSE(q.settle(false));
    CHECK_FALSE(q.add(7));
    // Its window filled meanwhile: it rings for itself, once.
    CHECK(q.settle(true));
    CHECK_FALSE(q.settle(true));
    CHECK_FALSE(q.add(8));
    CHECK(q.take() == std::vector<uint64_t>{7, 8});
    CHECK_FALSE(q.settle(true)); // nothing left
}

TEST_CASE("ack lane: queue: the doorbell rings after bell_after ids however idle the queue") {
    queue_ack_lane q;
    for (uint64_t i = 1; i < queue_ack_lane::bell_after; ++i) {
        CHECK_FALSE(q.add(i));
    }
    CHECK(q.add(queue_ack_lane::bell_after));
    CHECK(q.take().size() == queue_ack_lane::bell_after);
}

TEST_CASE("ack lane: session: whoever takes a delivery first owns its acknowledgement") {
    session_ack_lane s;
    auto q = std::make_shared<queue_ack_lane>();
    s.add({{10, ack_lane_entry{1, 100, q}},
           {11, ack_lane_entry{1, 101, q}},
           {12, ack_lane_entry{2, 102, q}}});
    CHECK(s.key_of(12) == uint64_t{2});
    auto e = s.take(10);
    REQUIRE(e.has_value());
    CHECK(e->msg_id == 100);
    CHECK_FALSE(s.take(10).has_value());
    CHECK_FALSE(s.key_of(10).has_value());
    // Subscription 1 ends: the lane must not acknowledge what its queue puts back.
    s.drop_key(1);
    CHECK_FALSE(s.take(11).has_value());
    CHECK(s.size() == 1);
}
