// SPDX-License-Identifier: Apache-2.0
// The status board (actors/web/status_board.cpp): what the status actor publishes and what the web
// server and the management requests read, from other threads.
#include "actors/web/status_board.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

using actormq::status_board;

namespace {

std::string event(uint64_t seq, const std::string& kind = "started") {
    return R"({"seq":)" + std::to_string(seq) + R"(,"kind":")" + kind + R"(","message":"m)"
           + std::to_string(seq) + R"("})";
}

std::vector<uint64_t> seqs(const std::string& events_json) {
    auto doc = nlohmann::json::parse(events_json);
    std::vector<uint64_t> out;
    for (const auto& ev : doc.at("events")) {
        out.push_back(ev.at("seq").get<uint64_t>());
    }
    return out;
}

} // namespace

TEST_CASE("status_board: before any publish: status is {}, metrics empty, no events") {
    status_board b;
    CHECK(*b.status_json() == "{}");
    CHECK(b.metrics_text()->empty());
    CHECK(b.last_event() == 0);
    CHECK(b.events_json(0) == R"({"events":[],"last":0})");
}

TEST_CASE("status_board: publish: readers see whole texts, and a held text stays valid") {
    status_board b;
    b.publish(R"({"connections":1})", "actormq_connections 1\n");
    auto held = b.status_json();
    b.publish(R"({"connections":2})", "actormq_connections 2\n");
    CHECK(*held == R"({"connections":1})");
    CHECK(*b.status_json() == R"({"connections":2})");
    CHECK(*b.metrics_text() == "actormq_connections 2\n");
}

TEST_CASE("status_board: events_json: the events after `since`, oldest first, with the last seq") {
    status_board b;
    for (uint64_t i = 1; i <= 5; ++i) {
        b.add_event(i, event(i));
    }
    CHECK(b.last_event() == 5);
    CHECK(seqs(b.events_json(0)) == std::vector<uint64_t>{1, 2, 3, 4, 5});
    CHECK(seqs(b.events_json(3)) == std::vector<uint64_t>{4, 5});
    CHECK(seqs(b.events_json(5)).empty());
    CHECK(seqs(b.events_json(99)).empty());
    auto doc = nlohmann::json::parse(b.events_json(3));
    CHECK(doc.at("last") == 5);
    CHECK(doc.at("events").at(0).at("message") == "m4");
}

TEST_CASE("status_board: capacity: keeps exactly the newest `capacity` events") {
    status_board b;
    const uint64_t total = status_board::capacity + 7;
    for (uint64_t i = 1; i <= total; ++i) {
        b.add_event(i, event(i));
    }
    auto all = seqs(b.events_json(0));
    REQUIRE(all.size() == status_board::capacity);
    CHECK(all.front() == 8);
    CHECK(all.back() == total);
    CHECK(b.last_event() == total);
}

TEST_CASE("status_board: add_event: an event whose seq does not grow is dropped") {
    status_board b;
    b.add_event(3, event(3));
    b.add_event(3, event(3, "error"));
    b.add_event(2, event(2));
    CHECK(seqs(b.events_json(0)) == std::vector<uint64_t>{3});
    CHECK(nlohmann::json::parse(b.events_json(0))["events"][0]["kind"] == "started");
}

TEST_CASE("status_board: subscribe: each listener gets each new event once; none after "
          "unsubscribe") {
    status_board b;
    std::vector<std::string> first;
    std::vector<std::string> second;
    auto id1 = b.subscribe([&](const std::string& json) { first.push_back(json); });
    auto id2 = b.subscribe([&](const std::string& json) { second.push_back(json); });
    CHECK(id1 != id2);
    b.add_event(1, event(1));
    b.unsubscribe(id1);
    b.add_event(2, event(2));
    b.unsubscribe(id2);
    b.unsubscribe(id2); // unknown ids are ignored
    b.add_event(3, event(3));
    CHECK(first == std::vector<std::string>{event(1)});
    CHECK(second == std::vector<std::string>{event(1), event(2)});
}

TEST_CASE("status_board: concurrent readers and a writer: every read is a whole document") {
    status_board b;
    std::atomic<bool> done{false};
    std::atomic<int> bad{0};
    std::thread reader{[&] {
        while (!done.load()) {
            auto s = b.status_json();
            if (*s != "{}" && !nlohmann::json::accept(*s)) {
                ++bad;
            }
            if (!nlohmann::json::accept(b.events_json(0))) {
                ++bad;
            }
        }
    }};
    for (uint64_t i = 1; i <= 2000; ++i) {
        b.publish(R"({"n":)" + std::to_string(i) + "}", "");
        b.add_event(i, event(i));
    }
    done = true;
    reader.join();
    CHECK(bad.load() == 0);
    CHECK(b.last_event() == 2000);
}
