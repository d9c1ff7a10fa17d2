// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
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
    uint32_t index = 0;          ///< p or t.
    std::vector<bool> sent;      ///< Written (at least partly) to a socket at least once.
    std::vector<bool> confirmed; ///< Its RECEIPT (or its COMMIT's RECEIPT) arrived.

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

/// How far a consumer got with acknowledging one message; it only ever moves forward.
enum class ack_state : uint8_t {
    none,      ///< Never acknowledged: the broker must deliver it again.
    written,   ///< An ACK went out, but its RECEIPT never came (the node died): the ACK may
               ///< or may not have landed, so the message may or may not come back.
    confirmed, ///< The ACK's RECEIPT arrived (or the drain's closing barrier passed it): the
               ///< broker must never deliver it again.
};

/// What happened to one message at the consumers' end.
struct delivery {
    std::string message_id;          ///< The broker's `message-id` at its first delivery.
    uint32_t count = 0;              ///< MESSAGE frames that carried it (live and drain).
    uint32_t after_ack = 0;          ///< Deliveries the broker owed nobody (see `delivered`).
    ack_state ack = ack_state::none; ///< How far its acknowledgement got.
};

/// How a delivery was judged when it arrived.
enum class delivered : uint8_t {
    first,       ///< The first delivery of the message.
    redelivered, ///< Again, but its ACK was not confirmed: a legitimate redelivery.
    duplicated,  ///< Again after its ACK was confirmed, or another copy of it (a different
                 ///< `message-id`, i.e. the broker stored the duplicate id twice): a bug.
    unexpected,  ///< Unreadable, or it names another stream than the destination it came on.
};

/// What the consumers (live ones and the final drain) saw of one stream's messages, indexed
/// by k. While traffic runs the stream's one live consumer thread owns it; the drain and the
/// verdict use it after the join. Whether a message was ever sent is only checked by the
/// verdict, because the producer thread owns that while traffic runs.
struct delivery_record {
    std::vector<delivery> messages;          ///< Indexed by k.
    uint64_t received = 0;                   ///< MESSAGE frames filed here.
    uint64_t redelivered = 0;                ///< Of them, legitimate redeliveries.
    uint64_t unexpected = 0;                 ///< Of them, unreadable or of another stream.
    std::vector<std::string> unexpected_ids; ///< The first few unexpected ones, described.
};

/// The outcome of a run: what the drain found, held against what was sent and confirmed.
struct verdict {
    uint64_t lost = 0;                 ///< Confirmed, never consumed.
    uint64_t duplicated = 0;           ///< Ids delivered again after a confirmed ACK.
    uint64_t unexpected = 0;           ///< Received messages that were never sent (or unreadable).
    uint64_t recovered = 0;            ///< Ids received though never confirmed (allowed).
    uint64_t redelivered = 0;          ///< Legitimate redeliveries: frames (allowed).
    uint64_t ack_unconfirmed = 0;      ///< Ids whose ACK went out unconfirmed and that never
                                       ///< came back: consumed, as far as anyone can tell.
    uint64_t confirmed = 0;            ///< Confirmed ids.
    uint64_t received = 0;             ///< MESSAGE frames received (live consumers and drain).
    uint64_t tx_confirmed = 0;         ///< Transactions whose COMMIT got its RECEIPT.
    uint64_t tx_complete = 0;          ///< Transactions with all their messages received.
    uint64_t tx_partial = 0;           ///< Transactions with some but not all messages received.
    std::vector<std::string> lost_ids; ///< The first few lost ids.
    std::vector<std::string> duplicated_ids; ///< The first few duplicated ids (with counts).
    std::vector<std::string> unexpected_ids; ///< The first few unexpected messages.
    std::vector<std::string> partial_ids;    ///< The first few partial transactions.

    /// Whether nothing confirmed was lost, nothing duplicated or invented, no tx torn.
    bool ok() const { return lost == 0 && duplicated == 0 && unexpected == 0 && tx_partial == 0; }

    /// `verdict: lost=.. duplicated=.. unexpected=.. recovered=.. redelivered=.. confirmed=..
    /// received=.. kills=..`.
    std::string line(uint64_t kills) const;

    /// `tx: confirmed=.. complete=.. partial=..`.
    std::string tx_line() const;
};

/// Messages a stream may have: a body naming a larger k is unexpected at once, so that a
/// corrupt body cannot make a record grow without bound.
inline constexpr uint64_t stream_messages_max = uint64_t{1} << 26;

/// The streams of one run and what the consumers found in their queues.
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

    /// The index of the stream whose destination is `destination`, or nullopt.
    std::optional<size_t> stream_of(const std::string& destination) const;

    /// Files one MESSAGE that a live consumer got on stream `s`'s destination: its body must
    /// name stream `s` (else it is unexpected); sets `k`. Touches only `deliveries(s)`, so the
    /// consumer thread of stream s may call it while other threads run.
    delivered
    record_delivery(size_t s, const std::string& message_id, const std::string& body, uint64_t& k);

    /// Notes that an ACK of message k of stream `s` was written. Thread: as `record_delivery`.
    void record_ack_written(size_t s, uint64_t k);

    /// Notes that the RECEIPT of an ACK of message k of stream `s` arrived: from now on, a
    /// delivery of it is a duplicate. Thread: as `record_delivery`.
    void record_ack_confirmed(size_t s, uint64_t k);

    /// Files one MESSAGE of the final drain. Its ACK counts as confirmed at once: the drain
    /// never reconnects, and its closing receipt barrier confirms every ACK before it.
    delivered record_received(const std::string& destination,
                              const std::string& body,
                              const std::string& message_id = {});

    /// What the consumers saw of stream `s`.
    const delivery_record& deliveries(size_t s) const { return deliveries_[s]; }

    /// Matches everything; lists at most `examples_max` ids per category.
    verdict judge(size_t examples_max = 10) const;

private:
    /// The index of the stream a body names ("p=.." or "t=.."), or nullopt; sets `k`.
    std::optional<size_t> find(const std::string& body, uint64_t& k) const;

    /// Judges the messages of stream `s` into `v`.
    void judge_stream(size_t s, size_t examples_max, verdict& v) const;

    std::vector<stream_record> streams_;
    std::vector<delivery_record> deliveries_; ///< One per stream, in stream order.
    /// Drained messages on a destination that belongs to no stream.
    uint64_t stray_ = 0;
    /// The first stray messages, described; bounded so a flood cannot exhaust memory.
    std::vector<std::string> stray_examples_;
};

} // namespace actormq::crash
