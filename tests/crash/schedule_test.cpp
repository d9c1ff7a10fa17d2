// SPDX-License-Identifier: Apache-2.0
// The fault schedules and the failover statistics of the crash harness (crash/schedule.cpp),
// and how producers report the first RECEIPT after a failover (crash/producers.hpp).
#include "crash/producers.hpp"
#include "crash/schedule.hpp"

#include <doctest/doctest.h>

using namespace actormq::crash;

TEST_CASE("crash schedule: single node: every third kill is early, a replay draws the same") {
    auto a = plan(7, 42);
    auto b = plan(7, 42);
    REQUIRE(a.size() == 8);
    for (size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].early == (i + 1 <= 7 && (i + 1) % 3 == 0));
        CHECK(a[i].count == b[i].count);
        CHECK(a[i].time == b[i].time);
        CHECK(a[i].count >= 20);
        CHECK(a[i].count <= 400);
    }
}

TEST_CASE("crash schedule: pair: a backup is only killed right after a primary kill") {
    size_t backup_kills = 0;
    for (uint64_t seed = 0; seed < 200; ++seed) {
        auto s = pair_plan(12, seed);
        REQUIRE(s.kills.size() == 12);
        CHECK(s.kills.front().target == pair_role::primary);
        for (size_t i = 1; i < s.kills.size(); ++i) {
            if (s.kills[i].target == pair_role::backup) {
                ++backup_kills;
                CHECK(s.kills[i - 1].target == pair_role::primary);
                CHECK_FALSE(s.kills[i].before.early);
            }
        }
    }
    // About one primary kill in three is followed by a backup kill.
    CHECK(backup_kills > 200 * 12 / 8);
    CHECK(backup_kills < 200 * 12 / 3);
}

TEST_CASE("crash schedule: pair: the same seed gives the same schedule") {
    auto a = pair_plan(20, 7);
    auto b = pair_plan(20, 7);
    for (size_t i = 0; i < a.kills.size(); ++i) {
        CHECK(a.kills[i].target == b.kills[i].target);
        CHECK(a.kills[i].before.count == b.kills[i].before.count);
        CHECK(a.kills[i].on_backup.time == b.kills[i].on_backup.time);
    }
    CHECK(a.tail.count == b.tail.count);
}

TEST_CASE("crash schedule: pair: the CI seed kills the backup during a failback") {
    auto s = pair_plan(4, 1);
    size_t backup_kills = 0;
    for (const auto& k : s.kills) {
        backup_kills += k.target == pair_role::backup ? 1 : 0;
    }
    CHECK(backup_kills >= 1);
}

TEST_CASE("crash failover: summary: nearest-rank percentiles and the maximum") {
    CHECK(summarize({}).line() == "failover: n=0 p50=0ms p99=0ms max=0ms");
    CHECK(summarize({7}).line() == "failover: n=1 p50=7ms p99=7ms max=7ms");
    std::vector<int64_t> ms;
    for (int64_t v = 100; v >= 1; --v) {
        ms.push_back(v);
    }
    auto s = summarize(ms);
    CHECK(s.n == 100);
    CHECK(s.p50_ms == 50);
    CHECK(s.p99_ms == 99);
    CHECK(s.max_ms == 100);
    CHECK(summarize({10, 30, 20}).p50_ms == 20);
}

TEST_CASE("crash failover: only the first RECEIPT from the awaited host counts") {
    traffic_control ctl;
    ctl.note_receipt(1);
    CHECK_FALSE(ctl.awaited_receipt());
    ctl.await_receipt_from(1);
    ctl.note_receipt(0);
    CHECK_FALSE(ctl.awaited_receipt());
    ctl.note_receipt(1);
    auto first = ctl.awaited_receipt();
    REQUIRE(first);
    ctl.note_receipt(1);
    CHECK(*ctl.awaited_receipt() == *first);
    ctl.await_receipt_from(0);
    CHECK_FALSE(ctl.awaited_receipt());
}
