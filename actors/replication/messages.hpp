// SPDX-License-Identifier: Apache-2.0
#pragma once

// What a live and its replicating backup send each other through CAF's middleman
// (docs/replication.md): numbered batches of file operations one way, cumulative
// acknowledgements the other. Every type here crosses nodes, so each has an inspect()
// and is registered by add_message_types() on every node.

#include <caf/actor.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace actormq::replication {

/// One operation on the live's journal files or page files, repeated on the backup's mirror.
struct file_op {
    enum kind_t : uint8_t {
        write = 0,  ///< `bytes` at `offset` of segment `file_seq` (a batch or a sync chunk)
        remove = 1, ///< segment `file_seq` was reclaimed
        // Paging (docs/replication.md, "Paging"): `path` names a file of the paging directory
        // as "ADDRESS-DIRECTORY/FILE", the same on both nodes.
        page_write = 2,    ///< `bytes` at `offset` of `path` (created if missing)
        page_replace = 3,  ///< `path` becomes `bytes` whole (a new page file, a cursor rewrite)
        page_truncate = 4, ///< `path` is cut to `offset` bytes (a torn tail cut at open)
        page_remove = 5,   ///< `path` was deleted
    };
    uint8_t kind = write;
    uint64_t file_seq = 0;
    uint64_t offset = 0;
    std::string bytes;
    /// Page operations only: the file, relative to the paging directory.
    std::string path;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, file_op& x) {
    return f(caf::meta::type_name("actormq::replication::file_op"), x.kind, x.file_seq, x.offset,
             x.bytes, x.path);
}

/// A numbered group of operations. Sequence numbers start at 1 in each epoch (one pairing)
/// and have no gaps; the backup applies batches strictly in order.
struct batch {
    uint64_t epoch = 0;
    uint64_t seq = 0;
    std::vector<file_op> ops;
    /// The last chunk of the initial sync is in this batch: once the backup has it (and
    /// everything before it) on disk, it holds the whole journal and may fail over.
    bool sync_complete = false;
    /// Of the initial sync: bytes sent so far and in all (for the progress the page shows).
    uint64_t sync_sent = 0;
    uint64_t sync_total = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch& x) {
    return f(caf::meta::type_name("actormq::replication::batch"), x.epoch, x.seq, x.ops,
             x.sync_complete, x.sync_sent, x.sync_total);
}

/// What the live answers a pairing request.
struct pair_reply {
    /// The node id the live serves; the backup takes it over at failover.
    std::string node_id;
    /// This pairing's epoch: batches of any other epoch are refused.
    uint64_t epoch = 0;
    /// The live's journal, which streams the batches and takes the acknowledgements.
    caf::actor source;
    /// The live's activation sequence (set by the live's cluster actor).
    uint64_t sequence = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pair_reply& x) {
    return f(caf::meta::type_name("actormq::replication::pair_reply"), x.node_id, x.epoch, x.source,
             x.sequence);
}

/// Backup -> live (through both cluster actors): (pair_atom, backup name, group, replica).
using pair_atom = caf::atom_constant<caf::atom("rpair")>;
/// Live journal -> replica: (data_atom, batch).
using data_atom = caf::atom_constant<caf::atom("rdata")>;
/// Replica -> live journal: (ack_atom, epoch, seq): every batch up to seq is on its disk.
using ack_atom = caf::atom_constant<caf::atom("rack")>;
/// The node registers its live journal with the cluster as the pairing endpoint:
/// (endpoint_atom, caf::actor), an invalid handle while nothing serves.
using endpoint_atom = caf::atom_constant<caf::atom("rendpoint")>;

/// Pager -> its server's journal: (page_ops_atom, std::vector<file_op>) -> uint64_t. The page
/// file operations join the replication stream behind every batch sent before; the answer
/// comes as an append's would: at once without a backup that could take over, else once the
/// backup acknowledged them (docs/replication.md, "Paging").
using page_ops_atom = caf::atom_constant<caf::atom("rpageops")>;

/// Node -> live journal: the vote after losing the backup was won; confirm alone from now on.
using resume_atom = caf::atom_constant<caf::atom("rresume")>;

/// Live journal -> replica: (ping_atom) -> true. The lease of a pairing: a replica that does
/// not answer (gone, and its down message lost with a connection that closed while this
/// process was frozen) is dropped within a bounded time even when no batch waits.
using ping_atom = caf::atom_constant<caf::atom("rping")>;

/// Live journal -> replica: (end_atom, epoch, seq) as the journal stops (a serving backup
/// giving way in a failback, a server stopping): seq is the last batch it sent. The replica
/// takes it as its live gone, as it takes the journal's down message, which alone is not
/// enough: a remote down message is sent only to the nodes the journal's node knows to hold
/// its handle, and a connection lost on one side only while the other had already reconnected
/// drops that knowledge (a primary once waited for its failback's handover for good;
/// docs/replication.md, "Failback").
using end_atom = caf::atom_constant<caf::atom("rend")>;

/// The replica as the live's journal sees it (the actor itself is dynamically typed).
using replica_actor = caf::typed_actor<caf::reacts_to<data_atom, batch>,
                                       caf::replies_to<ping_atom>::with<bool>,
                                       caf::reacts_to<end_atom, uint64_t, uint64_t>>;

/// Registers the types above; call on every node's config before the actor system exists.
void add_message_types(caf::actor_system_config& cfg);

} // namespace actormq::replication
