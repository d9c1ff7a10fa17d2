// SPDX-License-Identifier: Apache-2.0
#pragma once

// The live's side of replication as data (docs/replication.md): which bytes the attached
// backup still needs for its initial sync, which batches it has acknowledged, and so which
// confirmations must wait for it. No I/O and no CAF: the journal actor reads the chunks it
// is told to read, sends the batches it is given and feeds back the acknowledgements.

#include "actors/replication/messages.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace actormq::replication {

/// A file of the snapshot an initial sync copies: its bytes [0, end). A journal segment, or
/// with a `path` a page file of the paging directory (docs/replication.md, "Paging").
struct extent {
    uint64_t file_seq = 0;
    uint64_t end = 0;
    std::string path;
};

/// Where the attached backup stands.
enum class sync_phase : uint8_t {
    none,      ///< no backup attached
    copying,   ///< the snapshot's chunks are being sent; the backup cannot fail over yet
    finishing, ///< every chunk was sent; confirmations now wait for the backup
    in_sync,   ///< the backup acknowledged the whole snapshot: it can take over
};

const char* to_string(sync_phase p);

class source {
public:
    using clock = std::chrono::steady_clock;

    struct settings {
        /// Bytes of one sync batch (CAF sends each message as one buffer): one chunk of a
        /// large file, or the chunks of several small ones (64 KiB page files).
        uint64_t chunk_bytes = 1024 * 1024;
        /// Sync bytes sent but not acknowledged before the next chunk waits.
        uint64_t window_bytes = 16 * 1024 * 1024;
    };

    explicit source(settings s) : settings_(s) {}

    /// A backup attached: a new epoch starts, the snapshot is what it must copy.
    void attach(uint64_t epoch, std::vector<extent> snapshot, clock::time_point now);
    /// The backup is gone (or dropped): nothing waits for it any more.
    void detach();

    sync_phase phase() const { return phase_; }
    bool attached() const { return phase_ != sync_phase::none; }
    uint64_t epoch() const { return epoch_; }
    /// Whether a confirmation must wait until the backup has the batch (the backup could take
    /// over from here on, so it must hold everything confirmed).
    bool confirm_needs_backup() const {
        return phase_ == sync_phase::finishing || phase_ == sync_phase::in_sync;
    }

    /// A batch was appended to the journal at (file_seq, offset); it goes out with the next
    /// take_batch().
    void note_write(uint64_t file_seq, uint64_t offset, std::string_view bytes);
    /// A segment was removed; chunks of it not yet sent are dropped.
    void note_remove(uint64_t file_seq);
    /// A pager's operations on its page files (file_op::page_*); they go out with the next
    /// take_batch(), in their order. A page file removed or replaced whole is dropped from
    /// what the sync still copies: the operation carries what the backup must hold.
    void note_page_ops(std::vector<file_op> ops);

    /// The operations noted since the last call as the next numbered batch, if any; an empty
    /// batch when the sync has nothing left to copy and only waits for its last batch.
    std::optional<batch> take_batch(clock::time_point now);

    /// The next chunk to read for the sync, if the window allows one: (file_seq, offset, len).
    struct chunk {
        uint64_t file_seq = 0;
        uint64_t offset = 0;
        uint64_t length = 0;
        /// A page file's chunk: the file (empty for a journal segment).
        std::string path;
    };
    /// Chunks added with add_chunk() and not yet taken count against both the window and the
    /// batch's chunk_bytes: nullopt once the batch being gathered is full.
    std::optional<chunk> next_chunk() const;
    /// The chunk's bytes as the next batch. `bytes` may be shorter than asked (the segment
    /// was cut); an empty read skips the rest of that segment.
    batch chunk_batch(const chunk& c, std::string bytes, clock::time_point now);
    /// Adds the chunk's bytes to the sync batch being gathered (as chunk_batch() reads them),
    /// so that many small files travel in one batch of up to chunk_bytes.
    void add_chunk(const chunk& c, std::string bytes);
    /// The chunks gathered by add_chunk() as the next batch, if any.
    std::optional<batch> take_chunks(clock::time_point now);

    /// The backup has every batch up to `seq` on disk. Returns true when this made it in sync.
    bool on_ack(uint64_t seq, clock::time_point now = clock::now());

    /// The highest batch number sent, and acknowledged.
    uint64_t sent() const { return next_seq_ - 1; }
    uint64_t acked() const { return acked_; }
    /// Batches and bytes sent but not acknowledged (the replication lag).
    uint64_t lag_batches() const { return sent() - acked_; }
    uint64_t lag_bytes() const { return unacked_bytes_; }
    /// From sending a batch to its acknowledgement (the replication round trip, the backup's
    /// fdatasync included): how many were measured and their sum, in microseconds.
    uint64_t acks_measured() const { return acks_measured_; }
    uint64_t ack_us_sum() const { return ack_us_sum_; }
    /// Since when the oldest unacknowledged batch waits (nullopt: none waits).
    std::optional<clock::time_point> oldest_unacked() const;
    /// Initial sync progress.
    uint64_t sync_sent() const { return sync_sent_; }
    uint64_t sync_total() const { return sync_total_; }

private:
    struct in_flight {
        uint64_t seq = 0;
        uint64_t bytes = 0;
        uint64_t sync_bytes = 0;
        clock::time_point sent;
    };

    batch make_batch(std::vector<file_op> ops, uint64_t sync_bytes, clock::time_point now);
    /// The gathered chunks (possibly none) as the next batch.
    batch gathered_batch(clock::time_point now);
    /// Moves to `finishing` once no chunk is left.
    void check_copied(batch& b);
    /// Drops what the sync still had to copy of the file (segment `file_seq`, or `path`).
    void drop_todo(uint64_t file_seq, const std::string& path);

    settings settings_;
    sync_phase phase_ = sync_phase::none;
    uint64_t epoch_ = 0;
    uint64_t next_seq_ = 1;
    uint64_t acked_ = 0;
    /// The batch whose acknowledgement completes the sync.
    uint64_t final_seq_ = 0;
    std::deque<extent> todo_;
    /// Offset reached in todo_.front().
    uint64_t todo_offset_ = 0;
    std::vector<file_op> pending_;
    std::deque<in_flight> unacked_;
    uint64_t unacked_bytes_ = 0;
    uint64_t unacked_sync_bytes_ = 0;
    uint64_t sync_sent_ = 0;
    uint64_t sync_total_ = 0;
    /// The sync batch being gathered (add_chunk) and its bytes.
    std::vector<file_op> gathered_;
    uint64_t gathered_bytes_ = 0;
    uint64_t acks_measured_ = 0;
    uint64_t ack_us_sum_ = 0;
};

} // namespace actormq::replication
