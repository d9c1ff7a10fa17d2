// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace actormq::crash {

/// The command line of actormq-crash.
struct options {
    uint32_t kills = 5;        ///< SIGKILLs in the run.
    uint32_t producers = 2;    ///< Plain producers.
    uint32_t tx_producers = 1; ///< Transaction producers.
    uint64_t seed = 0;         ///< Seed of the fault schedule.
    bool seed_given = false;   ///< Whether --seed was given (else `pick_seed` draws one).
    bool pair = false;         ///< A shared-store live/backup pair instead of one node.
    /// With --pair: the producers and consumers are native clients written with the client
    /// library and `ha=true` (docs/testing.md, "The native mode").
    bool native = false;
    /// Every address pages past 64 KiB (docs/testing.md, "The paging mode"): the messages the
    /// kills hit are mostly in page files. With --replication and --ring every node pages, and
    /// the page files are replicated (docs/replication.md, "Paging").
    bool paging = false;
    /// Plain producers send synchronously without duplicate ids (traffic::sync_sends).
    bool sync_sends = false;
    /// A replicating live/backup pair and a voter (docs/testing.md, "The replication mode").
    bool replication = false;
    /// A ring of three colocated nodes (docs/testing.md, "The ring mode"): SIGKILL of a ring
    /// node at random, the clients of a's node id follow through a and its backup on b.
    bool ring = false;
    /// With --replication: network partitions (three kinds, docs/testing.md, "The replication
    /// mode"), drawn among the `kills` faults on the same seed.
    uint32_t partitions = 0;
    /// --consumers (true) or --no-consumers (false); nullopt: the mode's default.
    std::optional<bool> consumers_given;
    std::string dir;               ///< --dir, or "" for a fresh directory under /tmp.
    bool keep = false;             ///< Keep the directory after a clean verdict.
    std::string node;              ///< The actormq-node binary, or "" for $ACTORMQ_NODE.
    std::vector<std::string> sets; ///< --set overrides for every node start.
};

/// Whether live consumers run: as given, else only in the pair, replication and ring modes. The
/// single node keeps everything for the drain, so that every restart recovers a journal that
/// only grows.
inline bool consumers(const options& o) {
    return o.consumers_given.value_or(o.pair || o.replication || o.ring);
}

/// The usage text.
extern const char* const usage;

/// Parses argv into `o`; prints what is wrong and returns false on anything it does not know.
/// Prints the usage and exits 0 on --help.
bool parse_cli(int argc, char** argv, options& o);

/// The command line that runs the same schedule again.
std::string replay_command(const options& o);

/// Makes the run's directory: `wanted` (created, must be empty) or a fresh one under /tmp.
/// Returns "" and prints why if it cannot.
std::string make_run_dir(const std::string& wanted);

/// The seed: the one given, or a fresh one from the OS.
uint64_t pick_seed(const options& o);

} // namespace actormq::crash
