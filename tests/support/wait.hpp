// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

namespace actormq::test {

/// The clock every process-test deadline is measured on.
using test_clock = std::chrono::steady_clock;

/// A point in time on `test_clock`.
using deadline_t = test_clock::time_point;

/// Returns the deadline `d` from now, e.g. `in(std::chrono::seconds(5))`.
inline deadline_t in(std::chrono::milliseconds d) {
    return test_clock::now() + d;
}

/// Milliseconds left until `deadline`, 0 once it has passed.
inline int ms_left(deadline_t deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - test_clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

/// Polls `pred` until it returns true (then returns true) or `deadline` passes (then returns
/// false). `pred` is always evaluated at least once, and once more at the deadline. The pause
/// between polls is the only sleep the test tiers allow (style rule 27): it is not a
/// synchronisation, just the pace of re-checking a condition.
template <class Pred>
bool wait_until(deadline_t deadline,
                Pred pred,
                std::chrono::milliseconds poll_interval = std::chrono::milliseconds(5)) {
    for (;;) {
        if (pred()) {
            return true;
        }
        auto now = test_clock::now();
        if (now >= deadline) {
            return false;
        }
        poll_interval =
            std::min(poll_interval, std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
        std::this_thread::sleep_for(poll_interval);
    }
}

} // namespace actormq::test
