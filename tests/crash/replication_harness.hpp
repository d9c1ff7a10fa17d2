// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "crash/options.hpp"

#include <string>

namespace actormq::crash {

/// Runs actormq-crash --replication in `dir` (which must exist): a replicating live/backup
/// pair and a live-only voter in one cluster; SIGKILL and SIGSTOP of whichever node serves,
/// SIGKILL of the backup during its initial sync, a sampler that fails the run if both nodes
/// ever serve at once, then the drain and the verdict (docs/testing.md, "The replication
/// mode"). Returns the exit status (0 or 1).
int run_replication(const options& o, const std::string& dir);

} // namespace actormq::crash
