// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/broker/ack_lane.hpp"
#include "actors/broker/server_context.hpp"
#include "actors/fwd.hpp"
#include "protocol/stomp_frame.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace actormq {

class connection;

/// A STOMP session: a session that also takes its own watchdog tick, which fails the ACKs
/// still unanswered past `request-timeout-ms` (docs/stomp.md §6). The tick is the
/// STOMP session's alone, so the native session keeps the plain interface.
using stomp_session_actor = session_actor::extend<caf::reacts_to<caf::tick_atom>>;

/// What one session may grow to (its acceptor's keys of the same names, docs/stomp.md
/// "Limits"). Defaults are those of config::acceptor_config.
struct session_limits {
    /// read-window-bytes: frame bytes routed and not yet answered before the session stops
    /// taking frames (and so, through unconfirmed bytes, the connection stops reading).
    uint64_t read_window_bytes = 256 * 1024;
    uint32_t max_transactions_per_session = 16;
    uint32_t max_messages_per_transaction = 10000;
    uint64_t max_bytes_per_transaction = 16 * 1024 * 1024;
    uint32_t max_subscriptions_per_session = 1000;
    uint32_t max_prefetch_count = 10000;
};

/// The session limits an acceptor's config sets.
session_limits limits_of_session(const config::acceptor_config& acceptor);

/// What a connection tells its session when it spawns it after CONNECT.
struct session_params {
    uint64_t id = 0;
    stomp::version version = stomp::version::v1_2;
    std::string user;
    uint32_t default_prefetch = 1000;
    std::string client_id;
    session_limits limits;
    /// What the session shares with its connection's ACK lane (ack_lane.hpp); null: no lane.
    std::shared_ptr<session_ack_lane> acks;
};

/// STOMP acknowledgement modes.
enum class ack_mode : uint8_t { automatic, client, client_individual };

/// Where a STOMP destination leads.
struct destination_ref {
    std::string address;
    routing_type routing = routing_type::anycast;
    /// Whether the session may create the address (false for other sessions' temp queues).
    bool create = true;
    /// Whether this session owns it as a temporary destination.
    bool temporary = false;
};

/// Maps a STOMP destination to an address for session `session_id` (its temporary
/// destinations carry the id); nullopt and `error` set when it is invalid.
std::optional<destination_ref>
resolve_destination(uint64_t session_id, const std::string& destination, std::string& error);

/// Builds the broker message for a SEND frame of session `session_id` (moving its body and
/// headers); draws the message id from `ctx`.
message_ptr make_broker_message(server_context& ctx,
                                uint64_t session_id,
                                stomp::frame& f,
                                const destination_ref& d);

/// Everything a session actor owns. Frames are handled strictly in order; a frame that needs
/// an answer from another actor (an address lookup, a subscription) holds back the frames
/// after it until the answer is in.
struct session_state {
    static inline const char* name = "session";

    /// A message delivered on a subscription with explicit acks and not yet acked.
    struct unacked_entry {
        uint64_t ack_id = 0;
        uint64_t msg_id = 0;
    };

    struct subscription {
        std::string id;
        uint64_t key = 0;
        std::string destination;
        destination_ref dest;
        std::string queue_name;
        address_actor addr;
        queue_actor queue;
        ack_mode mode = ack_mode::automatic;
        uint32_t window = 0;
        /// A durable topic subscription: its queue outlives the session (docs/stomp.md §5).
        bool durable = false;
        std::deque<unacked_entry> unacked;
        /// The queue's ACK lane, looked up at the first delivery; null: none (the queue is not
        /// durable anycast, or the mode is not client-individual). Deliveries of persistent
        /// messages are then registered in params.acks instead of `unacked`/`ack_index`.
        std::shared_ptr<queue_ack_lane> ack_lane;
        bool ack_lane_looked = false;
    };

    /// An ACK or NACK inside a transaction, applied at COMMIT.
    struct tx_ack {
        uint64_t key = 0;
        uint64_t ack_id = 0;
        bool nack = false;
    };

    /// A SEND inside a transaction, routed at COMMIT.
    struct tx_send {
        address_actor addr;
        std::string address;
        routing_type routing = routing_type::anycast;
        message_ptr msg;
    };

    struct transaction {
        std::vector<tx_send> sends;
        std::vector<tx_ack> acks;
        /// SENDs accepted into it and the bytes of their bodies (max-messages-per-transaction,
        /// max-bytes-per-transaction); counted when the frame is handled.
        uint64_t messages = 0;
        uint64_t body_bytes = 0;
    };

    /// Messages for one address collected while handling frames, routed as one request.
    struct route_batch {
        address_actor addr;
        std::string address;
        routing_type routing = routing_type::anycast;
        std::vector<message_ptr> msgs;
        uint64_t first_seq = 0;
        int64_t bytes = 0;
    };

    /// A RECEIPT (or the close after DISCONNECT) waiting for the frames before it.
    struct pending_receipt {
        uint64_t seq = 0;
        std::string receipt_id;
        bool close_after = false;
    };

    /// A RECEIPT the journal posts itself once its route's append is confirmed
    /// (confirm_hook.hpp; docs/journal.md, "Confirming on the journal's thread"), with the
    /// input bytes it confirms. If the hook has not run when the route is answered, the
    /// session sends both as usual.
    struct armed_receipt {
        /// The route batch it waits for (its first frame's sequence number).
        uint64_t first_seq = 0;
        pending_receipt receipt;
        uint64_t receipt_bytes = 0;
        uint64_t confirmed = 0;
        confirm_hook_ptr hook;
    };

    /// Auto-ack deliveries whose window slots return once the socket wrote them.
    struct credit_mark {
        uint64_t end_offset = 0;
        uint64_t key = 0;
        uint32_t count = 0;
    };

    std::shared_ptr<server_context> ctx;
    server_actor server;
    std::shared_ptr<connection> conn;
    session_params params;

    // Input side.
    std::deque<stomp::frame> inbox;
    /// Frames left and wire bytes of each batch the connection handed over.
    std::deque<std::pair<uint64_t, uint64_t>> batches;
    uint64_t confirm_due = 0;
    bool waiting = false;
    bool closing = false;
    /// An ERROR went out (fail): answers that come later add nothing to the output. Unlike
    /// `closing`, which DISCONNECT sets too while its RECEIPT still waits for the frames before.
    bool failed = false;
    /// A COMMIT is between its phases; the session must not quit before it ends.
    bool committing = false;
    /// The connection closed during a COMMIT: clean up once it ends.
    bool close_deferred = false;
    uint64_t seq = 0;
    /// Batches of frames the connection handed over (frames_atom messages), for the send
    /// lane's "idle" mark (connection::idle_mark), and the flushes so far (its order).
    uint64_t batches_taken = 0;
    uint32_t flushes = 0;

    // Routing and receipts.
    std::unordered_map<std::string, address_actor> addresses;
    std::set<std::string> temp_addresses;
    std::map<std::string, route_batch> open_batches;
    std::multiset<uint64_t> outstanding;
    int64_t outstanding_bytes = 0;
    std::deque<pending_receipt> receipts;
    std::optional<armed_receipt> armed;
    /// RECEIPTs the journal posted itself, and those the session sent after arming a hook
    /// that did not run (for tests and benchmarks: how often the shortcut is taken).
    uint64_t receipts_by_journal = 0;
    uint64_t receipts_hook_unused = 0;
    std::map<std::string, transaction> transactions;

    /// A COMMIT that waits for the session's earlier routes and ACKs to be answered.
    struct deferred_commit {
        std::string name;
        transaction tx;
        std::optional<std::string> receipt;
    };
    /// Set while a COMMIT waits (frames after it wait too): its prepare must find the ids of
    /// this session's earlier SENDs settled at their addresses, which the journal's RECEIPT can
    /// announce to the client before the address has heard of the append (docs/journal.md,
    /// "Confirming on the journal's thread").
    std::optional<deferred_commit> commit_after;

    // Consumers.
    std::map<uint64_t, subscription> subs;
    std::unordered_map<uint64_t, uint64_t> ack_index; ///< ack id -> subscription key
    uint64_t next_key = 1;
    uint64_t next_ack_id = 1;
    std::deque<credit_mark> marks;
    uint64_t posted_total = 0;
    /// When each ACK still waiting for its queue's answer times out, by its frame's sequence
    /// number (so the first is the oldest). One watchdog tick per session, aimed at the oldest
    /// deadline, replaces a timeout per ACK request: that one cost a wake-up of CAF's timer
    /// thread per message (docs/benchmarks.md, "One watchdog per session").
    std::map<uint64_t, std::chrono::steady_clock::time_point> ack_deadlines;
    /// A watchdog tick is on its way.
    bool watchdog_armed = false;

    // Output collected while handling one mailbox message, posted once at its end.
    std::string out;

    /// Maps a STOMP destination to an address; nullopt and `error` set when it is invalid.
    std::optional<destination_ref> resolve(const std::string& destination,
                                           std::string& error) const;

    /// Builds the broker message for a SEND frame (moving its body and headers).
    message_ptr make_message(stomp::frame& f, const destination_ref& d);

    /// Finds a subscription by its client id.
    subscription* find_sub(const std::string& id);

    /// Resolves what an ACK/NACK frame refers to; false and `error` set if it is invalid.
    bool find_ack(const stomp::frame& f, uint64_t& key, uint64_t& ack_id, std::string& error) const;

    /// Removes the acked entries from a subscription (up to and including `ack_id` in client
    /// mode, only it otherwise) and returns their message ids.
    std::vector<uint64_t> take_acked(subscription& s, uint64_t ack_id, bool cumulative);

    /// Appends a MESSAGE frame for one delivery.
    void append_message(const subscription& s, const delivery& d, uint64_t ack_id);

    /// Appends a RECEIPT frame.
    void append_receipt(const std::string& receipt_id);

    /// Appends an ERROR frame.
    void append_error(const std::string& message,
                      const std::string& detail,
                      const std::string* receipt_id);

    /// The lowest frame sequence number whose routing is still under way, or max.
    uint64_t low_water() const;

    /// Nothing of the frames handed over so far is in flight or waiting: no frame, route,
    /// ACK, RECEIPT, lookup or COMMIT (the send lane may then take the next SEND).
    bool idle() const { return idle_but_output() && confirm_due == 0 && out.empty(); }

    /// idle(), but for output not posted yet (flush posts it with the mark).
    bool idle_but_output() const {
        return inbox.empty() && !waiting && !closing && !committing && !commit_after && !armed
               && outstanding.empty() && receipts.empty() && open_batches.empty();
    }
};

/// The behaviour of a session actor.
stomp_session_actor::behavior_type
session(stomp_session_actor::stateful_pointer<session_state> self,
        std::shared_ptr<server_context> ctx,
        server_actor server,
        std::shared_ptr<connection> conn,
        session_params params);

} // namespace actormq
