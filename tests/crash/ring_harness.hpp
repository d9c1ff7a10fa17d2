// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "crash/options.hpp"

#include <string>

namespace actormq::crash {

/// Runs actormq-crash --ring in `dir` (which must exist): three colocated nodes a, b and c,
/// each live and each running the backup of the next (a's on b, b's on c, c's on a); SIGKILL
/// of a ring node drawn at random, its restart (failback) and the ring whole again before the
/// next; producers (duplicate ids) and consumers of every node id with the host list: the
/// node, its backup on the next; three samplers that fail the run if two instances serve one
/// node id at once; then the drain of each node id and the verdicts, one per node id and the
/// ring's sum (docs/testing.md, "The ring mode"). Returns the exit status (0 or 1).
int run_ring(const options& o, const std::string& dir);

} // namespace actormq::crash
