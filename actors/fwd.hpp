// SPDX-License-Identifier: Apache-2.0
#pragma once

// Typed handles of the actors of one server instance (docs/architecture.md has the diagram).

#include "actors/journal/confirm_hook.hpp"
#include "actors/replication/messages.hpp"
#include "protocol/journal_format.hpp"
#include "protocol/messages.hpp"
#include "protocol/stomp_frame.hpp"

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <string>
#include <vector>

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<actormq::stomp::frame>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<actormq::journal::record>)

namespace actormq {
struct recovered_state;

/// What the journal reports to the status actor.
struct journal_stats {
    uint64_t files = 0;
    uint64_t bytes = 0;
    uint64_t batches = 0;
    /// Records written in all batches: records_total / batches is what group commit shares.
    uint64_t records = 0;
    /// Appends whose sender waits for the fdatasync (a confirmation), in all batches.
    uint64_t synced_appends = 0;
    uint64_t last_batch_records = 0;
    uint64_t last_sync_us = 0;
    uint64_t segments_reclaimed = 0;
    /// Write + fdatasync durations: counts per upper bound of `sync_bounds_seconds`, the
    /// last bucket being +Inf (cumulative counts are made by the reader).
    std::vector<uint64_t> sync_buckets;
    double sync_seconds_sum = 0;
    /// Replication (docs/replication.md): the attached backup's phase ("none", "copying",
    /// "finishing", "in-sync"), batches sent and acknowledged, bytes not yet acknowledged,
    /// and the initial sync's progress in bytes.
    std::string replication = "none";
    uint64_t replication_sent = 0;
    uint64_t replication_acked = 0;
    uint64_t replication_lag_bytes = 0;
    uint64_t sync_sent = 0;
    uint64_t sync_total = 0;
    /// Batches whose acknowledgement came back, and the sum of their round trips (µs).
    uint64_t replication_acks = 0;
    uint64_t replication_ack_us_sum = 0;
};

/// Upper bounds (seconds) of the journal's fsync histogram buckets, +Inf excluded.
inline const std::vector<double>& sync_bounds_seconds() {
    static const std::vector<double> bounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                               0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
    return bounds;
}
} // namespace actormq
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::journal_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<actormq::recovered_state>)

namespace actormq {

/// The journal (docs/journal.md): appends records in order and makes them durable in batches,
/// one write and one fdatasync per batch. Runs detached: it is the only actor that blocks.
using journal_actor = caf::typed_actor<
    // Append records (ids are assigned here). With `true` the answer comes once they are on
    // disk, with `false` once they are queued. The answer is the id of the last record.
    caf::replies_to<append_atom, std::vector<journal::record>, bool>::with<uint64_t>,
    // The same, synchronous, and the hook runs on the journal's thread once the records are
    // confirmed, just before the answer (docs/journal.md, "Confirming on the journal's thread").
    caf::replies_to<append_atom, std::vector<journal::record>, bool, confirm_hook_ptr>::with<
        uint64_t>,
    // Write and sync what has been appended (sent to itself behind queued appends).
    caf::reacts_to<flush_atom>,
    // Open the files and read everything back (once, before the node serves).
    caf::replies_to<recover_atom>::with<std::shared_ptr<recovered_state>>,
    // Figures for the status actor.
    caf::replies_to<stats_atom>::with<journal_stats>,
    // A backup asks to replicate this journal: (backup name, group, its replica). Answered
    // with the epoch and this journal's handle, or an error when a backup is attached already.
    caf::replies_to<replication::pair_atom, std::string, std::string, caf::actor>::with<
        replication::pair_reply>,
    // The replica has every batch up to this number (of this epoch) on its disk.
    caf::reacts_to<replication::ack_atom, uint64_t, uint64_t>,
    // Checks the replica's acknowledgements against their deadline (sent to itself).
    caf::reacts_to<caf::tick_atom>,
    // The vote after losing the backup was won: what waited for it is confirmed.
    caf::reacts_to<replication::resume_atom>,
    // A pager's page file operations join the replication stream; answered as a synced
    // append is (docs/replication.md, "Paging").
    caf::replies_to<replication::page_ops_atom, std::vector<replication::file_op>>::with<
        uint64_t>>;

/// One client session: fed decoded frames by its connection, deliveries by queues.
using session_actor = caf::typed_actor<
    // Frames read from the socket, in order, and how many wire bytes they took.
    caf::reacts_to<frames_atom, std::vector<stomp::frame>, uint64_t>,
    // Messages from a queue for the subscription with this key.
    caf::reacts_to<deliver_atom, uint64_t, std::vector<delivery>>,
    // The connection wrote everything up to this many bytes since it opened.
    caf::reacts_to<written_atom, uint64_t>,
    // The socket is gone (peer closed, error, heart-beat timeout or shutdown).
    caf::reacts_to<closed_atom>>;

/// One queue: ordered messages, its consumers, in-flight and redelivery.
using queue_actor = caf::typed_actor<
    caf::reacts_to<enqueue_atom, std::vector<message_ptr>>,
    caf::reacts_to<subscribe_atom, session_actor, consumer_spec>,
    caf::reacts_to<unsub_atom, session_actor, uint64_t>,
    // Return `n` window slots of an auto-ack consumer (its messages reached the socket).
    caf::reacts_to<credit_atom, session_actor, uint64_t, uint32_t>,
    // Acknowledge (consume) messages by id; answered once the acks are durable (by the
    // journal itself when there are records, so the answer survives the queue).
    caf::replies_to<ack_atom, session_actor, uint64_t, std::vector<uint64_t>>::with<uint64_t>,
    // The same inside transaction `tx_id`: journaled with it, answered once queued.
    caf::replies_to<ack_atom, session_actor, uint64_t, std::vector<uint64_t>, uint64_t>::with<bool>,
    // Refuse messages by id: they go back to the head of the queue for redelivery.
    caf::reacts_to<nack_atom, session_actor, uint64_t, std::vector<uint64_t>>,
    // A prepared XA transaction `tx_id` acknowledges messages by id: journaled with it and
    // held (never delivered again) until its commit or rollback; answered once queued.
    caf::replies_to<hold_atom, session_actor, uint64_t, std::vector<uint64_t>, uint64_t>::with<
        bool>,
    // The prepared transaction committed: its held messages are gone, its staged ones (restored
    // by recovery) join the queue.
    caf::reacts_to<commit_atom, uint64_t>,
    // It rolled back: its held messages return to the queue, its staged ones are dropped.
    caf::reacts_to<rollback_atom, uint64_t>,
    caf::replies_to<stats_atom>::with<queue_stats>,
    // Delete the queue: its messages are dropped, its consumers forgotten.
    caf::reacts_to<remove_atom>>;

/// One address: routes to its queues, enforces max-size-bytes and the full policy.
using address_actor = caf::typed_actor<
    caf::replies_to<route_atom, routing_type, std::vector<message_ptr>>::with<route_status>,
    // The same, and the hook rides with the batch's journal append when the whole batch goes
    // to the journal as one append that nothing else holds back; it is not run otherwise.
    caf::replies_to<route_atom, routing_type, std::vector<message_ptr>, confirm_hook_ptr>::with<
        route_status>,
    // Prepare the messages of transaction `tx_id`: duplicates refuse the whole batch;
    // otherwise they are journaled with the transaction and held until commit or rollback.
    caf::replies_to<route_atom, routing_type, std::vector<message_ptr>, uint64_t>::with<
        route_status>,
    caf::reacts_to<commit_atom, uint64_t>,
    caf::reacts_to<rollback_atom, uint64_t>,
    // Anycast: the address's queue (created on first use). Multicast: the subscription queue
    // with the given name, created unless a durable one (`true`) of that name exists.
    caf::replies_to<bind_atom, routing_type, std::string, bool>::with<queue_actor>,
    // Delete a subscription queue of this address (a durable one for good).
    caf::reacts_to<unbind_atom, std::string>,
    // A queue freed space after the address was full.
    caf::reacts_to<space_atom>,
    caf::replies_to<stats_atom>::with<std::vector<queue_stats>>,
    caf::reacts_to<remove_atom>>;

/// The server instance: owns the address registry and supervises its actors.
using server_actor = caf::typed_actor<
    // The address with this name; `true` creates it if config allows.
    caf::replies_to<lookup_atom, std::string, bool>::with<address_actor>,
    // Delete an address and its queues (temporary queues at disconnect).
    caf::reacts_to<remove_atom, std::string>,
    caf::replies_to<stats_atom>::with<std::vector<queue_stats>>,
    // Recreate the durable queues, messages and duplicate ids found by recovery; answers with
    // the number of messages restored.
    caf::replies_to<recover_atom, std::shared_ptr<recovered_state>>::with<uint64_t>>;

} // namespace actormq
