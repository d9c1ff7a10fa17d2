// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "crash/options.hpp"

#include <string>

namespace actormq::crash {

/// Runs actormq-crash --pair in `dir` (which must exist): a shared-store primary and backup,
/// each SIGKILLed while it serves so that the other takes over, then the drain and the
/// verdict (docs/testing.md, "The pair mode"). Returns the exit status (0 or 1).
int run_pair(const options& o, const std::string& dir);

} // namespace actormq::crash
