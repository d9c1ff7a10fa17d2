// SPDX-License-Identifier: Apache-2.0
#pragma once

// Which journal segments still matter to recovery (docs/journal.md, "Reclaiming segments").
// Pure code: the journal actor feeds it every record with the segment it went to, and asks it
// which segments can be deleted and what must be re-appended first.

#include "protocol/journal_format.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace actormq::journal {

/// Tracks live records per segment.
class liveness {
public:
    explicit liveness(size_t id_cache_size = 20000) : id_cache_size_(id_cache_size) {}

    /// Notes a record written (or recovered) in segment `seg`.
    void note(const record& r, uint64_t seg);

    /// Notes a record whose payload the caller already decoded (`p`, or null when it does not
    /// decode as its type says), so recovery decodes each record once for this and the replay.
    /// Keeps nothing that points into `r` or `p`.
    void note(const record_view& r, const payload_view* p, uint64_t seg);

    /// Transactions with records but neither a prepare, a commit nor a rollback record: what
    /// recovery rolls back. A prepared transaction is not among them (it waits for its
    /// outcome, docs/journal.md "Prepared transactions").
    std::vector<uint64_t> open_transactions() const {
        std::vector<uint64_t> ids;
        for (const auto& [id, parts] : open_tx_) {
            if (prepared_.count(id) == 0) {
                ids.push_back(id);
            }
        }
        return ids;
    }

    /// Prepared transactions not yet committed or rolled back.
    size_t prepared_count() const { return prepared_.size(); }

    /// Whether nothing in `seg` matters any more once its bindings and duplicate ids are
    /// re-appended elsewhere: no live message, no open or prepared transaction (its records
    /// and its prepare record), and no ack or commit in it that refers to a segment still in
    /// `present`.
    bool reclaimable(uint64_t seg, const std::set<uint64_t>& present) const;

    /// The records to re-append before `seg` is deleted (its live bindings and the duplicate
    /// ids it holds that are still among the last id-cache-size of their address). Forgets
    /// them in `seg`; noting the re-appended records places them in their new segment.
    std::vector<record> take_forwards(uint64_t seg);

    /// Forgets a deleted segment.
    void drop(uint64_t seg) { segs_.erase(seg); }

    /// Live messages in a segment (for tests and status).
    uint64_t live_messages(uint64_t seg) const;

private:
    struct segment {
        uint64_t live = 0;
        uint32_t open_tx = 0;
        /// Segments whose records an ack or commit here refers to.
        std::set<uint64_t> depends_on;
    };

    struct message {
        uint64_t seg = 0;
        uint32_t refs = 0;
    };

    /// A record of an open transaction and where it is.
    struct tx_part {
        record rec;
        uint64_t seg = 0;
    };

    void apply(const record_view& r, const payload_view& p, uint64_t seg);
    void add_message(const message_view& p, uint64_t seg);
    void ack(const ack_view& p, uint64_t seg);
    void remember_dup(std::string_view address, std::string_view id, uint64_t seg);
    void end_tx(const record_view& r, const tx_payload& p, uint64_t seg);

    size_t id_cache_size_;
    std::map<uint64_t, segment> segs_;
    std::unordered_map<uint64_t, message> messages_;
    /// Live queue bindings: name -> (the add_queue record, its segment).
    std::map<std::string, std::pair<record, uint64_t>> bindings_;
    /// Per address, the last id-cache-size duplicate ids and their segments.
    std::map<std::string, std::deque<std::pair<std::string, uint64_t>>, std::less<>> dups_;
    std::unordered_map<uint64_t, std::vector<tx_part>> open_tx_;
    /// Prepared transactions and the segment of their prepare record, which stays until
    /// the commit or rollback: without it recovery would roll the transaction back.
    std::unordered_map<uint64_t, uint64_t> prepared_;
};

} // namespace actormq::journal
