// SPDX-License-Identifier: Apache-2.0
#include "actors/broker/queue.hpp"

#include <doctest/doctest.h>

using namespace actormq;

namespace {

struct queue_fixture {
    queue_state st;
    caf::actor_addr nobody; // Consumers here have no real session; they differ by key.

    queue_fixture() {
        st.usage = std::make_shared<address_usage>();
        st.usage->max_bytes = -1;
    }

    void add(uint64_t first, uint64_t count) {
        std::vector<message_ptr> msgs;
        for (uint64_t i = first; i < first + count; ++i) {
            auto m = std::make_shared<broker_message>();
            m->id = i;
            m->body = "x";
            st.usage->bytes += m->memory_bytes();
            msgs.push_back(std::move(m));
        }
        st.enqueue(msgs);
    }

    void consumer(uint64_t key, uint32_t window, bool auto_ack) {
        st.consumers.push_back(queue_state::consumer{session_actor{}, {key, window, auto_ack}, 0});
    }

    /// Message ids handed to each consumer key in one assign() round.
    std::map<uint64_t, std::vector<uint64_t>> assign() {
        std::map<uint64_t, std::vector<uint64_t>> out;
        for (auto& [idx, batch] : st.assign()) {
            for (auto& d : batch) {
                out[st.consumers[idx].spec.key].push_back(d.msg->id);
            }
        }
        return out;
    }
};

} // namespace

TEST_CASE_FIXTURE(queue_fixture, "queue: assign: consumers take turns one message at a time") {
    consumer(1, 0, false);
    consumer(2, 0, false);
    add(1, 6);
    auto got = assign();
    CHECK(got[1] == std::vector<uint64_t>{1, 3, 5});
    CHECK(got[2] == std::vector<uint64_t>{2, 4, 6});
    CHECK(st.in_flight.size() == 6);
}

TEST_CASE_FIXTURE(queue_fixture, "queue: assign: stops at the consumer window and resumes on ack") {
    consumer(1, 2, false);
    add(1, 5);
    auto first = assign();
    CHECK(first[1] == std::vector<uint64_t>{1, 2});
    CHECK(assign().empty());
    st.ack(nobody, 1, {1});
    CHECK(assign()[1] == std::vector<uint64_t>{3});
}

TEST_CASE_FIXTURE(queue_fixture, "queue: ack: frees the address usage and counts acked") {
    consumer(1, 0, false);
    add(1, 3);
    assign();
    auto before = st.usage->bytes.load();
    st.ack(nobody, 1, {1, 2, 99});
    CHECK(st.stats.acked == 2);
    CHECK(st.usage->bytes.load() < before);
    CHECK(st.in_flight.count(3) == 1);
}

TEST_CASE_FIXTURE(queue_fixture, "queue: auto ack: a delivered message leaves the queue at once") {
    consumer(1, 10, true);
    add(1, 3);
    assign();
    CHECK(st.in_flight.empty());
    CHECK(st.stats.acked == 3);
    CHECK(st.usage->bytes.load() == 0);
    CHECK(st.consumers[0].outstanding == 3);
}

TEST_CASE_FIXTURE(queue_fixture,
                  "queue: remove consumer: its unacked messages return to the head in order") {
    consumer(1, 0, false);
    add(1, 4);
    assign();
    st.ack(nobody, 1, {2});
    st.remove_consumer(nobody, 1);
    REQUIRE(st.pending.size() == 3);
    CHECK(st.pending[0].msg->id == 1);
    CHECK(st.pending[1].msg->id == 3);
    CHECK(st.pending[2].msg->id == 4);
    CHECK(st.pending[0].delivery_count == 1);
    CHECK(st.stats.redelivered == 3);
}

TEST_CASE_FIXTURE(queue_fixture,
                  "queue: nack: the message comes back first with its count raised") {
    consumer(1, 0, false);
    add(1, 3);
    assign();
    st.nack(nobody, 1, {2});
    consumer(2, 0, false);
    st.consumers.erase(st.consumers.begin());
    auto got = assign();
    CHECK(got[2] == std::vector<uint64_t>{2});
}

TEST_CASE_FIXTURE(queue_fixture, "queue: release: notes when usage drops below the maximum") {
    st.usage->max_bytes = 100;
    st.usage->bytes = 150;
    st.release(40);
    CHECK_FALSE(st.crossed_below);
    st.release(20);
    CHECK(st.crossed_below);
}

TEST_CASE_FIXTURE(queue_fixture, "queue: assign: a deep queue is handed out in bounded rounds") {
    consumer(1, 0, true);
    add(1, 2000);
    auto got = assign();
    CHECK(got[1].size() < 2000);
    CHECK(st.more_ready);
}

TEST_CASE_FIXTURE(queue_fixture,
                  "queue: lane acks: a message leaves in flight or pending, "
                  "frees its window slot and its bytes, unknown ids ignored") {
    consumer(1, 2, false);
    add(1, 4);
    assign(); // 1 and 2 in flight, the window full
    CHECK(assign().empty());
    auto before = st.usage->bytes.load();
    st.apply_lane_acks({1, 99});
    CHECK(st.in_flight.count(1) == 0);
    CHECK(st.stats.acked == 1);
    CHECK(st.usage->bytes.load() < before);
    CHECK(assign()[1] == std::vector<uint64_t>{3});
    // The consumer left before the ack of 2 was on disk: 2 went back to pending; the lane's
    // ack then takes it out there, so it is never delivered again.
    st.remove_consumer(nobody, 1);
    REQUIRE(st.pending.size() == 3);
    st.apply_lane_acks({2});
    CHECK(st.pending.size() == 2);
    CHECK(st.pending.front().msg->id == 3);
    CHECK(st.stats.acked == 2);
}

TEST_CASE_FIXTURE(queue_fixture,
                  "queue: lane acks: needed at once only when a consumer waits "
                  "for room or the address is over its mark") {
    consumer(1, 1, false);
    add(1, 1);
    assign();
    CHECK_FALSE(st.needs_acks_now()); // window full, nothing pending
    add(2, 1);
    CHECK(st.needs_acks_now()); // window full, 2 waits
    st.apply_lane_acks({1});
    assign();
    st.apply_lane_acks({2});
    CHECK_FALSE(st.needs_acks_now());
    st.usage->max_bytes = 10;
    st.usage->bytes = 10;
    CHECK(st.needs_acks_now());
    st.space_mark = 20;
    CHECK_FALSE(st.needs_acks_now());
}
