// SPDX-License-Identifier: Apache-2.0
#include "actors/broker/session.hpp"

#include <doctest/doctest.h>

using namespace actormq;

namespace {

struct session_fixture {
    session_state st;

    session_fixture() {
        st.ctx = std::make_shared<server_context>();
        st.params.id = 7;
        st.params.version = stomp::version::v1_2;
    }

    session_state::subscription& sub(uint64_t key, const std::string& id, ack_mode mode) {
        auto& s = st.subs[key];
        s.key = key;
        s.id = id;
        s.mode = mode;
        return s;
    }

    void unacked(session_state::subscription& s, uint64_t ack_id, uint64_t msg_id) {
        s.unacked.push_back({ack_id, msg_id});
        st.ack_index[ack_id] = s.key;
    }
};

} // namespace

TEST_CASE_FIXTURE(session_fixture, "session: resolve: queue, topic, bare and temporary names") {
    std::string err;
    auto q = st.resolve("/queue/orders", err);
    REQUIRE(q);
    CHECK(q->address == "orders");
    CHECK(q->routing == routing_type::anycast);
    auto t = st.resolve("/topic/prices", err);
    REQUIRE(t);
    CHECK(t->routing == routing_type::multicast);
    auto b = st.resolve("jobs", err);
    REQUIRE(b);
    CHECK(b->address == "jobs");
    auto tmp = st.resolve("/temp-queue/replies", err);
    REQUIRE(tmp);
    CHECK(tmp->address == "temp.7.replies");
    CHECK(tmp->temporary);
}

TEST_CASE_FIXTURE(session_fixture, "session: resolve: others' temporary queues are never created") {
    std::string err;
    auto q = st.resolve("/queue/temp.3.replies", err);
    REQUIRE(q);
    CHECK_FALSE(q->create);
}

TEST_CASE_FIXTURE(session_fixture, "session: resolve: unknown prefixes and empty names fail") {
    std::string err;
    CHECK_FALSE(st.resolve("/exchange/x", err));
    CHECK(err.find("unknown destination prefix") != std::string::npos);
    CHECK_FALSE(st.resolve("/queue/", err));
    CHECK_FALSE(st.resolve("", err));
}

TEST_CASE_FIXTURE(session_fixture, "session: make message: reserved headers are not passed on") {
    stomp::frame f;
    f.cmd = stomp::command::send;
    f.add("destination", "/queue/a");
    f.add("receipt", "r1");
    f.add("content-type", "text/plain");
    f.add("message-id", "forged");
    f.add("reply-to", "/temp-queue/back");
    f.add("persistent", "true");
    f.body = "hi";
    std::string err;
    auto m = st.make_message(f, *st.resolve("/queue/a", err));
    CHECK(m->destination == "/queue/a");
    CHECK(m->body == "hi");
    CHECK(m->persistent);
    std::vector<std::string> names;
    for (auto& [k, v] : m->headers) {
        names.push_back(k);
        if (k == "reply-to") {
            CHECK(v == "/queue/temp.7.back");
        }
    }
    CHECK(names == std::vector<std::string>{"content-type", "reply-to", "persistent"});
}

TEST_CASE_FIXTURE(session_fixture, "session: ack: client mode takes every earlier message") {
    auto& s = sub(1, "s1", ack_mode::client);
    unacked(s, 10, 100);
    unacked(s, 11, 101);
    unacked(s, 12, 102);
    auto ids = st.take_acked(s, 11, true);
    CHECK(ids == std::vector<uint64_t>{100, 101});
    CHECK(s.unacked.size() == 1);
    CHECK(st.ack_index.count(10) == 0);
    CHECK(st.ack_index.count(12) == 1);
}

TEST_CASE_FIXTURE(session_fixture, "session: ack: client-individual takes only that message") {
    auto& s = sub(1, "s1", ack_mode::client_individual);
    unacked(s, 10, 100);
    unacked(s, 11, 101);
    CHECK(st.take_acked(s, 11, false) == std::vector<uint64_t>{101});
    CHECK(s.unacked.size() == 1);
}

TEST_CASE_FIXTURE(session_fixture, "session: find ack: each version names the message its way") {
    auto& s = sub(1, "s1", ack_mode::client_individual);
    unacked(s, 10, 100);
    stomp::frame ack12;
    ack12.cmd = stomp::command::ack;
    ack12.add("id", "10");
    uint64_t key = 0;
    uint64_t ack_id = 0;
    std::string err;
    CHECK(st.find_ack(ack12, key, ack_id, err));
    CHECK(ack_id == 10);

    st.params.version = stomp::version::v1_1;
    stomp::frame ack11;
    ack11.add("message-id", "100");
    CHECK_FALSE(st.find_ack(ack11, key, ack_id, err));
    CHECK(err == "missing required header 'subscription'");
    ack11.add("subscription", "s1");
    CHECK(st.find_ack(ack11, key, ack_id, err));
    CHECK(key == 1);

    st.params.version = stomp::version::v1_2;
    stomp::frame no_id;
    CHECK_FALSE(st.find_ack(no_id, key, ack_id, err));
    CHECK(err == "missing required header 'id'");
}

TEST_CASE_FIXTURE(session_fixture, "session: receipts: low water is the oldest routing under way") {
    CHECK(st.low_water() == std::numeric_limits<uint64_t>::max());
    st.outstanding.insert(5);
    st.outstanding.insert(3);
    CHECK(st.low_water() == 3);
}
