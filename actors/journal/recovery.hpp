// SPDX-License-Identifier: Apache-2.0
#pragma once

// Rebuilding a server instance from its journal (docs/journal.md, "Recovery"). Pure code: it
// turns the records the store read back into the queues, messages and duplicate ids to restore.

#include "actors/journal/journal_liveness.hpp"
#include "actors/journal/journal_store.hpp"
#include "protocol/messages.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace actormq {

/// The header a producer sets to have a message stored once (Artemis' duplicate-id header).
constexpr const char* duplicate_id_header = "_AMQ_DUPL_ID";

/// A durable queue and its messages, in queue order.
struct recovered_queue {
    std::string name;
    std::string address;
    routing_type routing = routing_type::anycast;
    std::vector<message_ptr> messages;
    /// Messages that prepared transactions routed here, by transaction id: they join the
    /// queue at its commit and go at its rollback.
    std::map<uint64_t, std::vector<message_ptr>> staged;
    /// Messages of this queue that prepared transactions acknowledged, by transaction id:
    /// never delivered; gone at the commit, back in the queue at the rollback.
    std::map<uint64_t, std::vector<message_ptr>> held;
};

/// A transaction with a prepare record and neither a commit nor a rollback record
/// (docs/journal.md, "Prepared transactions"): recovery keeps it, undecided.
struct recovered_prepared {
    uint64_t tx_id = 0;
    /// The global id its prepare record carries (an encoded XA xid).
    std::string xid;
    /// The addresses whose queues hold its staged messages or its acknowledged ones.
    std::vector<std::string> addresses;
};

/// Where recovery's time went (docs/journal.md, "Recovery phases"), in seconds.
struct recovery_phases {
    /// Reading segment files (large sequential reads).
    double read = 0;
    /// Listing and checking segment headers, then framing and CRC-checking every record.
    double check = 0;
    /// Decoding each payload once and feeding it to the liveness books and the replay.
    double replay = 0;
    /// Handing the live messages to their queues in journal order.
    double finish = 0;
};

/// What recovery needs from the config.
struct recovery_options {
    uint32_t id_cache_size = 20000;
    bool persist_id_cache = true;
    journal::corrupt_policy policy = journal::corrupt_policy::refuse;
};

/// Everything recovery found.
struct recovered_state {
    std::vector<recovered_queue> queues;
    /// Duplicate-detection ids per address, oldest first, at most id-cache-size each.
    std::map<std::string, std::vector<std::string>> duplicate_ids;
    uint64_t max_message_id = 0;
    uint64_t max_record_id = 0;
    uint64_t max_tx_id = 0;
    uint64_t records = 0;
    uint64_t messages = 0;
    /// Transactions without a COMMIT record, rolled back (prepared ones are not).
    uint64_t rolled_back_transactions = 0;
    /// Prepared transactions, undecided, by transaction id order.
    std::vector<recovered_prepared> prepared;
    /// What the store reported: a torn tail cut off, corrupt records skipped, or an error.
    bool torn_tail = false;
    std::string torn_file;
    uint64_t torn_offset = 0;
    std::vector<journal::corruption> corrupt;
    /// add_message records that reused the id of a different live message (another address or
    /// body): the later one replaced the earlier, which is lost. Never written by a correct
    /// broker; listed (at most 100, `id_collisions_total` counts all) with the later record's
    /// file and offset (a committed transaction's: its COMMIT's), so a bug that reuses ids is
    /// seen rather than silent.
    std::vector<journal::corruption> id_collisions;
    uint64_t id_collisions_total = 0;
    std::string error;
    double seconds = 0;
    /// Bytes read from segment files and the phases' times (recover_journal only).
    uint64_t bytes_read = 0;
    recovery_phases phases;
};

/// Replays records in journal order: bindings, messages, acks, committed transactions (those
/// without a commit record are dropped, except prepared ones, which are kept in `prepared`,
/// `staged` and `held`), duplicate ids (when `persist_id_cache`). A record
/// whose CRC is good but whose payload does not decode is corrupt like any other: with
/// `policy` refuse, `error` names its file and offset and nothing is rebuilt; with skip it is
/// listed in `corrupt` and left out. Never dropped without a word.
recovered_state rebuild(journal::open_result& opened,
                        uint32_t id_cache_size,
                        bool persist_id_cache,
                        journal::corrupt_policy policy = journal::corrupt_policy::refuse);

/// Opens `store` and replays it in one pass: each record is read once (segment by segment,
/// never held whole), decoded once, and fed both to `live` (the books of which segments still
/// matter) and to the replay, which builds each message once, with its body copied once from the
/// read buffer. Rebuilds exactly what `rebuild` does from `store.open(policy)`'s records. `opened`
/// receives what the store reported besides the records (torn tail, corruption, the armed
/// fault, the files).
recovered_state recover_journal(journal::store& store,
                                journal::liveness& live,
                                const recovery_options& options,
                                journal::open_result& opened);

/// The address and queue names recovery gives the anycast queue of `address`.
inline std::string anycast_queue_name(const std::string& address) {
    return address;
}

} // namespace actormq
