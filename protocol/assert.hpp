// SPDX-License-Identifier: Apache-2.0
// ACTORMQ_ASSERT: invariants checked in every build type (style rule 17).
#pragma once

namespace actormq {

/// Writes "assertion_failed expr=... file=... line=..." to stderr (where every logger of the
/// node writes too), flushes it and aborts. Never returns.
[[noreturn]] void assert_failed(const char* expr, const char* file, int line) noexcept;

} // namespace actormq

/// Checks one condition, also in release builds: a programmer error ends the process with a
/// log line rather than running on with corrupt state. One condition per assert, so the line
/// names the one that failed.
#define ACTORMQ_ASSERT(cond)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            ::actormq::assert_failed(#cond, __FILE__, __LINE__);                                   \
        }                                                                                          \
    } while (false)
