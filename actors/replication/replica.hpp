// SPDX-License-Identifier: Apache-2.0
#pragma once

// The backup's side of replication (docs/replication.md): the `replica` actor keeps a mirror
// of the live's journal files in the backup's journal directory, applies the live's numbered
// batches strictly in order, makes them durable (fdatasync) and only then acknowledges them.
// It runs detached: it blocks on the disk like the journal does.

#include "actors/replication/messages.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace actormq::replication {

/// What the replica tells its owner (the activation driver).
struct replica_report {
    enum kind_t : uint8_t {
        progress, ///< initial sync progress (sync_sent of sync_total bytes written)
        in_sync,  ///< the whole journal is on disk: from here on the backup can take over
        lost,     ///< the live's journal went away (crash, stop, partition, or it dropped us)
        failed,   ///< a gap, a bad epoch or a disk error: the mirror cannot be trusted
    };
    kind_t kind = progress;
    /// Whether the mirror held the whole journal when this happened (lost: may it fail over).
    bool synced = false;
    uint64_t sync_sent = 0;
    uint64_t sync_total = 0;
    /// Batches on disk and acknowledged.
    uint64_t applied = 0;
    std::string reason;
};

/// The replica's settings.
struct replica_setup {
    /// The journal directory the mirror writes (emptied of segments beforehand).
    std::string directory;
    uint64_t file_size = 10 * 1024 * 1024;
    std::string prefix = "actormq-data";
    std::string extension = "amq";
    /// The paging directory the live's page files are mirrored into (docs/replication.md,
    /// "Paging"); emptied at start (moved into the journal's newest oldreplica.N when there
    /// is one). Empty: a page operation fails the pairing.
    std::string paging_directory;
    /// Told every replica_report, as (report_atom, replica_report).
    caf::actor owner;
    std::shared_ptr<spdlog::logger> log;
};

using report_atom = caf::atom_constant<caf::atom("rreport")>;
/// Driver -> replica: sync what was applied, close the files, answer true (or an error).
using close_atom = caf::atom_constant<caf::atom("rclose")>;

/// Spawns the replica detached. Its handle goes to the live in the pairing request; the live's
/// journal then sends it batches, and the replica monitors the first sender it hears from.
caf::actor spawn_replica(caf::actor_system& sys, replica_setup setup);

/// Moves the journal segments (and the activation record) in `directory` aside into
/// `directory/oldreplica.N` (N one more
/// than the highest present), keeping at most `max_saved` such folders (the oldest go first;
/// 0 keeps none). Returns "" or why it failed. Blocking: call from an io actor.
std::string move_aside(const std::string& directory,
                       const std::string& prefix,
                       const std::string& extension,
                       uint32_t max_saved);

} // namespace actormq::replication

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::replication::replica_report)
