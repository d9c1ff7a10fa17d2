// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/broker/server_context.hpp"
#include "actors/fwd.hpp"
#include "actors/journal/confirm_hook.hpp"
#include "actors/journal/journal_liveness.hpp"
#include "actors/journal/journal_store.hpp"
#include "actors/replication/source.hpp"

#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace actormq {

/// Why the journal stopped: the file, the system call and errno of the failure, or what
/// else went wrong (a bug) in `what`.
struct journal_failure {
    std::string file;
    std::string op;
    int err = 0;
    std::string what;

    /// "file=PATH op=OP errno=NAME" (the fields of the journal_failed log line).
    std::string describe() const;
};

/// Everything the journal actor owns: the files, the batch being collected and the answers
/// waiting for its fsync.
struct journal_state {
    static inline const char* name = "journal";

    /// An append whose answer waits for the disk.
    struct waiter {
        caf::typed_response_promise<uint64_t> promise;
        uint64_t last_id = 0;
        /// Run just before the answer, once the append is confirmed (confirm_hook.hpp).
        confirm_hook_ptr hook;

        /// The append is confirmed: runs the hook, then answers with the last id.
        void confirm() {
            if (hook) {
                hook->fire();
            }
            promise.deliver(last_id);
        }

        /// The append is not confirmed (the journal failed or stops): answers `err` and tells
        /// the hook, for appends whose sender waits for no answer (the send lane).
        void refuse(const caf::error& err) {
            if (hook) {
                hook->refuse();
            }
            promise.deliver(err);
        }
    };

    /// How many of `ws` are producers' appends with a confirm hook (a lane SEND; a lane ACK is
    /// a consumer's): what group commit waits for (docs/journal.md, "Group commit").
    static size_t producer_hooks(const std::vector<waiter>& ws) {
        return static_cast<size_t>(std::count_if(ws.begin(), ws.end(), [](const waiter& w) {
            return w.hook != nullptr && w.hook->producer;
        }));
    }

    std::shared_ptr<server_context> ctx;
    std::unique_ptr<journal::store> store;
    uint64_t next_id = 1;
    /// Encoded records not yet written, and the records themselves (for `live`).
    std::string batch;
    std::vector<journal::record> batch_records;
    /// What in which segment still matters to recovery.
    journal::liveness live;
    uint64_t segments_reclaimed = 0;
    std::vector<waiter> waiting;
    bool flush_scheduled = false;

    // Group commit that waits for company (docs/journal.md, "Group commit"): when the first
    // record of the batch arrived, and how many appends that wait for the disk each of the
    // last two batches answered (the clients likely to come back with their next record).
    std::chrono::steady_clock::time_point batch_started{};
    std::array<size_t, 2> recent_waiters{};
    /// Of those, the appends that carried a confirm_hook: a producer's RECEIPT rides on each,
    /// so its producer is back one turnaround after the answer (gather_left).
    std::array<size_t, 2> recent_hooked{};
    /// Batches that waited for company, and the nanoseconds they waited in all.
    uint64_t gathered_batches = 0;
    uint64_t gathered_ns = 0;
    /// The batch being collected waited for company at least once.
    bool gathering = false;
    /// When the last batch was answered, and how long the journal then stood idle before the
    /// first record of the next one (idle_spin).
    std::chrono::steady_clock::time_point last_answered{};
    std::chrono::nanoseconds last_idle{std::chrono::nanoseconds::max()};
    /// The idle spell before that one.
    std::chrono::nanoseconds prev_idle{std::chrono::nanoseconds::max()};

    // Replication (docs/replication.md): the attached backup's replica, what it still needs
    // and the confirmations that wait for it.
    replication::source repl{replication::source::settings{}};
    replication::replica_actor replica;
    std::string replica_name;
    uint64_t epochs = 0;
    /// Appends on disk here, whose answers wait until the replica has batch `seq`.
    struct repl_waiter {
        waiter w;
        uint64_t seq = 0;
    };
    std::deque<repl_waiter> repl_waiting;
    bool repl_tick_scheduled = false;
    /// The backup was lost and vote-on-replication-failure is set: confirmations wait until
    /// the node's vote is won (resume) or this server stops.
    bool held_for_vote = false;
    /// The round-trip figures of backups attached before (the source starts over at attach).
    uint64_t acks_before_detach = 0;
    uint64_t ack_us_before_detach = 0;
    /// The replica's lease (docs/replication.md, "Losing the backup"): a ping is out, and
    /// when the last answer came.
    bool ping_out = false;
    std::chrono::steady_clock::time_point last_pong{};
    /// When the replica check last ran: a gap longer than the cluster's connection timeout
    /// means this process stood still (SIGSTOP, a stall), and its backup may have taken over.
    std::chrono::steady_clock::time_point last_check{};
    /// Sends a batch to the replica (set by the actor; the state has no `self`).
    std::function<void(replication::batch)> send_batch;
    /// Set when a write, sync or open failed: every later append fails too (the disk is not
    /// trusted, and a failed fdatasync may have dropped dirty pages for good).
    std::optional<journal_failure> failure;
    /// Whether the node was told about `failure` (once).
    bool failure_reported = false;

    // Figures for status and benchmarks.
    uint64_t batches = 0;
    uint64_t records_written = 0;
    uint64_t synced_appends = 0;
    uint64_t last_batch_bytes = 0;
    uint64_t last_batch_records = 0;
    std::chrono::microseconds last_sync{0};
    /// Histogram of write + sync durations over sync_bounds_seconds() (+Inf last).
    std::vector<uint64_t> sync_buckets = std::vector<uint64_t>(sync_bounds_seconds().size() + 1);
    double sync_seconds_sum = 0;

    journal_stats stats() const;

    /// Assigns ids and encodes `records` into the batch; returns the last id. Throws (and
    /// leaves the batch as it was) when encode() refuses a record.
    uint64_t add(std::vector<journal::record>& records);

    /// How much longer the batch may wait for appends that are likely on their way before it
    /// is written: while fewer appends wait for it than the larger of the last two batches
    /// answered (less those still held for the backup's acknowledgement), at most one write +
    /// fdatasync's duration (`last_sync`, capped by `gather_max`) from its first record; zero when
    /// it should go now. A batch holding as many hooked appends (producers' RECEIPTs) as the
    /// last two batches did goes now, without waiting for the rest (consumers' ACKs): those
    /// join the next batch, and the producers do not wait for them.
    std::chrono::nanoseconds gather_left(std::chrono::steady_clock::time_point now) const;

    /// Remembers how many synced appends the batch just written answered (gather_left).
    void note_answered(size_t synced, size_t hooked = 0);

    /// Whether producers' appends go without waiting for other company (gather_left); read
    /// once from ACTORMQ_JOURNAL_HOOKED_FIRST (0: off), for measuring.
    static bool hooked_first();

    /// The longest a batch ever waits for company, whatever the last fdatasync took.
    static constexpr std::chrono::microseconds gather_max{500};

    /// A batch with this many appends waiting for it never waits for more: the fdatasync is
    /// shared enough, and streams of appends (pipelined producers) must not idle the disk.
    static constexpr size_t gather_waiters_max = 32;

    /// How long the journal's thread spins (yielding) for the next append after answering a
    /// batch, before it sleeps: idle_spin_max when the last idle spell was shorter than that
    /// (appends come often, and one that finds the thread awake costs its sender no wake-up),
    /// else zero (a lone synchronous producer: spinning would only burn the CPU it needs).
    std::chrono::nanoseconds idle_spin() const;

    static constexpr std::chrono::microseconds idle_spin_max{100};

    /// The longest idle spell the thread still spins through when the last two spells were
    /// both at most this long: a synchronous producer that comes back one turnaround (its
    /// confirmation's way to the client and its next record's way back) after each answer.
    /// It then spins for the longer of the two plus a quarter.
    static std::chrono::microseconds turnaround_spin_max();

    /// Writes and syncs the batch; returns nothing or why it failed.
    std::optional<journal_failure> write_batch();

    /// Deletes every segment older than the current one that recovery no longer needs, after
    /// re-appending its live bindings and duplicate ids. Returns nothing or why it failed.
    std::optional<journal_failure> reclaim();
};

/// The behaviour of the journal actor; spawn it `caf::detached` (it blocks on fdatasync).
journal_actor::behavior_type journal_writer(journal_actor::stateful_pointer<journal_state> self,
                                            std::shared_ptr<server_context> ctx);

} // namespace actormq
