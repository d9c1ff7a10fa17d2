// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace actormq::crash {

/// What a stream's messages are: plain SENDs or SENDs inside transactions.
enum class stream_kind : uint8_t {
    plain, ///< Producer p: message k has id "<p>-<k>" and goes to /queue/crash.<p>.
    tx,    ///< Tx producer t: message k has id "tx<t>-<k>", is in transaction k / 5, and goes
           ///< to /queue/crash.tx.<t>.
};

/// How many messages one transaction of a tx producer carries.
inline constexpr uint64_t tx_messages = 5;

/// Everything the harness knows about one producer's messages, indexed by k. The producer's
/// thread owns it while traffic runs; the main thread reads it after the join.
struct stream_record {
    stream_kind kind = stream_kind::plain;
    uint32_t index = 0;             ///< p or t.
    std::vector<bool> sent;         ///< Written (at least partly) to a socket at least once.
    std::vector<bool> confirmed;    ///< Its RECEIPT (or its COMMIT's RECEIPT) arrived.
    std::vector<uint32_t> received; ///< Times the final drain received it.

    /// The destination the messages go to.
    std::string destination() const;

    /// The duplicate-detection id of message k, which is also how reports name it.
    std::string id(uint64_t k) const;

    /// The body of message k: "p=<p> k=<k>" or "t=<t> k=<k>", padded with '.' to `size`.
    std::string body(uint64_t k, size_t size) const;

    /// Notes that message k is about to be written (sent grows as needed).
    void mark_sent(uint64_t k);

    /// Notes that message k is confirmed.
    void mark_confirmed(uint64_t k);
};

/// The outcome of a run: what the drain found, held against what was sent and confirmed.
struct verdict {
    uint64_t lost = 0;                 ///< Confirmed, never received.
    uint64_t duplicated = 0;           ///< Ids received more than once.
    uint64_t unexpected = 0;           ///< Received messages that were never sent (or unreadable).
    uint64_t recovered = 0;            ///< Ids received though never confirmed (allowed).
    uint64_t confirmed = 0;            ///< Confirmed ids.
    uint64_t received = 0;             ///< MESSAGE frames the drain received.
    uint64_t tx_confirmed = 0;         ///< Transactions whose COMMIT got its RECEIPT.
    uint64_t tx_complete = 0;          ///< Transactions with all their messages received.
    uint64_t tx_partial = 0;           ///< Transactions with some but not all messages received.
    std::vector<std::string> lost_ids; ///< The first few lost ids.
    std::vector<std::string> duplicated_ids; ///< The first few duplicated ids (with counts).
    std::vector<std::string> unexpected_ids; ///< The first few unexpected messages.
    std::vector<std::string> partial_ids;    ///< The first few partial transactions.

    /// Whether nothing confirmed was lost, nothing duplicated or invented, no tx torn.
    bool ok() const { return lost == 0 && duplicated == 0 && unexpected == 0 && tx_partial == 0; }

    /// `verdict: lost=.. duplicated=.. unexpected=.. recovered=.. confirmed=.. received=..
    /// kills=..`.
    std::string line(uint64_t kills) const;

    /// `tx: confirmed=.. complete=.. partial=..`.
    std::string tx_line() const;
};

/// The streams of one run and the messages the drain found in their queues.
class ledger {
public:
    /// One record per plain producer (p = 0..producers-1), then one per tx producer.
    ledger(uint32_t producers, uint32_t tx_producers);

    /// All records; producer threads each take theirs by reference before they start.
    std::vector<stream_record>& streams() { return streams_; }

    /// All records, for reading after the producers are done.
    const std::vector<stream_record>& streams() const { return streams_; }

    /// The destinations of every stream, in stream order.
    std::vector<std::string> destinations() const;

    /// Files one drained MESSAGE: its body names the stream and k, which must exist, have
    /// been sent, and belong to `destination`; anything else counts as unexpected.
    void record_received(const std::string& destination, const std::string& body);

    /// Matches everything; lists at most `examples_max` ids per category.
    verdict judge(size_t examples_max = 10) const;

private:
    /// The record a body names ("p=.." or "t=.."), or nullptr; sets `k`.
    stream_record* find(const std::string& body, uint64_t& k);

    std::vector<stream_record> streams_;
    uint64_t received_ = 0;
    uint64_t unexpected_ = 0;
    /// The first unexpected messages, described; bounded so a flood cannot exhaust memory.
    std::vector<std::string> unexpected_examples_;
};

} // namespace actormq::crash
