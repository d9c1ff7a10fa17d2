// SPDX-License-Identifier: Apache-2.0
#pragma once

// The library's side of the test seam (actormq/client/test_seam.hpp).

#include "actormq/client/test_seam.hpp"

#include <atomic>

namespace actormq::client::test_seam::detail {

/// A hook is installed: only then does a point release the connection's lock.
extern std::atomic<bool> installed;

/// True when a test installed a hook (one relaxed load when none is).
inline bool active() {
    return installed.load(std::memory_order_relaxed);
}

/// Calls the hook, if any, with `p` (the caller has released its lock).
void call(point p);

/// Wakes of an I/O thread for queued output (io_wakes()).
extern std::atomic<unsigned long long> wakes;

} // namespace actormq::client::test_seam::detail
