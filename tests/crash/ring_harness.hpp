// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "crash/options.hpp"

#include <string>

namespace actormq::crash {

/// Runs actormq-crash --ring in `dir` (which must exist): three colocated nodes a, b and c,
/// each live and each running the backup of the next (a's on b, b's on c, c's on a); SIGKILL
/// of a ring node drawn at random, its restart (failback) and the ring whole again before the
/// next; producers and consumers of a's node id with the host list a, a's backup on b; three
/// samplers that fail the run if two instances serve one node id at once; then the drain and
/// the verdict (docs/testing.md, "The ring mode"). Returns the exit status (0 or 1).
int run_ring(const options& o, const std::string& dir);

} // namespace actormq::crash
