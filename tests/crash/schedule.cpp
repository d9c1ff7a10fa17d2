// SPDX-License-Identifier: Apache-2.0
#include "crash/schedule.hpp"

#include <algorithm>
#include <random>

namespace actormq::crash {

namespace {

/// The fewest and most further confirmations before a kill.
constexpr uint64_t kill_count_min = 20;
constexpr uint64_t kill_count_max = 400;

/// The shortest and longest traffic before a kill, in ms.
constexpr int64_t kill_ms_min = 50;
constexpr int64_t kill_ms_max = 1000;

/// Draws the count and time of one phase.
traffic_phase draw(std::mt19937_64& rng) {
    std::uniform_int_distribution<uint64_t> count{kill_count_min, kill_count_max};
    std::uniform_int_distribution<int64_t> ms{kill_ms_min, kill_ms_max};
    traffic_phase p;
    p.count = count(rng);
    p.time = std::chrono::milliseconds(ms(rng));
    return p;
}

/// The `p`-th percentile (0 < p <= 100) of the sorted, non-empty `sorted` by nearest rank.
int64_t nearest_rank(const std::vector<int64_t>& sorted, int p) {
    auto rank = (static_cast<size_t>(p) * sorted.size() + 99) / 100;
    return sorted[std::max<size_t>(rank, 1) - 1];
}

} // namespace

std::vector<traffic_phase> plan(uint32_t kills, uint64_t seed) {
    std::mt19937_64 rng{seed};
    std::vector<traffic_phase> out;
    for (uint32_t i = 1; i <= kills + 1; ++i) {
        auto p = draw(rng);
        p.early = i <= kills && i % 3 == 0;
        out.push_back(p);
    }
    return out;
}

pair_schedule pair_plan(uint32_t kills, uint64_t seed) {
    std::mt19937_64 rng{seed};
    std::uniform_int_distribution<int> third{0, 2};
    pair_schedule out;
    for (uint32_t i = 1; i <= kills; ++i) {
        pair_kill k;
        k.before = draw(rng);
        k.on_backup = draw(rng);
        bool after_primary = !out.kills.empty() && out.kills.back().target == pair_role::primary;
        // The coin is drawn for every kill, so one kill's outcome never shifts the draws of
        // the kills after it.
        bool hit_backup = third(rng) == 0;
        k.target = after_primary && hit_backup ? pair_role::backup : pair_role::primary;
        k.before.early = k.target == pair_role::primary && i % 3 == 0;
        out.kills.push_back(k);
    }
    out.tail = draw(rng);
    return out;
}

std::string failover_summary::line() const {
    return "failover: n=" + std::to_string(n) + " p50=" + std::to_string(p50_ms)
           + "ms p99=" + std::to_string(p99_ms) + "ms max=" + std::to_string(max_ms) + "ms";
}

failover_summary summarize(std::vector<int64_t> ms) {
    failover_summary s;
    s.n = ms.size();
    if (ms.empty()) {
        return s;
    }
    std::sort(ms.begin(), ms.end());
    s.p50_ms = nearest_rank(ms, 50);
    s.p99_ms = nearest_rank(ms, 99);
    s.max_ms = ms.back();
    return s;
}

} // namespace actormq::crash
