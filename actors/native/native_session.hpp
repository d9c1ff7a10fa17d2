// SPDX-License-Identifier: Apache-2.0
#pragma once

// The native protocol's session actor (docs/protocol.md §4-§11, §14): one per session, many per
// connection. It speaks to the same server, address, queue and journal actors as STOMP's
// session, so a message sent by one protocol reaches consumers of the other.

#include "actors/broker/server_context.hpp"
#include "actors/fwd.hpp"
#include "protocol/native/codec.hpp"
#include "protocol/native/packet.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace actormq {

class native_connection;

/// One packet a connection hands a session, with the bytes it took on the wire.
struct native_inbound {
    native::packet packet;
    uint32_t bytes = 0;
};

/// A session's packets waiting to be handled, in order. A vector read from a head index, not
/// a deque: a packet is a few hundred bytes, so a deque allocated a block for nearly every
/// packet; this keeps its storage between batches (none is allocated once it has grown).
class native_inbox {
public:
    /// Whether no packet waits.
    bool empty() const { return head_ == items_.size(); }
    /// How many packets wait.
    size_t size() const { return items_.size() - head_; }
    /// The oldest waiting packet (not empty()).
    native_inbound& front() { return items_[head_]; }
    /// Drops the oldest waiting packet (not empty()); the storage stays for the next ones.
    void pop_front() {
        if (++head_ == items_.size()) {
            clear();
        }
    }
    /// Appends a packet behind the waiting ones.
    void push_back(native_inbound&& in) {
        if (head_ > 0 && head_ == items_.size()) {
            clear();
        } else if (head_ >= 64 && head_ * 2 >= items_.size()) {
            // Mostly handled: drop the handled front once instead of growing for ever.
            items_.erase(items_.begin(), items_.begin() + static_cast<ptrdiff_t>(head_));
            head_ = 0;
        }
        items_.push_back(std::move(in));
    }
    /// Drops every waiting packet.
    void clear() {
        items_.clear();
        head_ = 0;
    }

private:
    std::vector<native_inbound> items_;
    size_t head_ = 0;
};

/// Where a session writes: its connection and the channel it has there (§14: a reattach moves
/// a session to another connection and channel).
struct native_link {
    std::shared_ptr<native_connection> conn;
    uint64_t conn_id = 0;
    uint32_t channel = 0;
    /// The largest packet the client accepts (its hello, §2).
    uint32_t client_max_packet_bytes = 0;
    /// Input bytes the connection handed this channel's session and the session has not
    /// handled yet: the connection adds, the session subtracts (native_connection::confirm),
    /// so that a confirmation needs no hand-off to the connection's thread.
    std::shared_ptr<std::atomic<int64_t>> unconfirmed;
};

/// A send inside a transaction or XA branch, routed at commit or prepare.
struct native_tx_send {
    address_actor addr;
    std::string address;
    routing_type routing = routing_type::anycast;
    message_ptr msg;
};

/// Acks inside a transaction or XA branch, applied at commit or prepare (or returned at
/// rollback). `session` is the session whose consumer `key` received them: the queue knows a
/// delivery by both, and an XA branch may be prepared or committed by another session.
struct native_tx_ack {
    uint64_t key = 0;
    queue_actor queue;
    std::vector<uint64_t> ids;
    session_actor session;
};

/// The work of a transaction or of an unprepared XA branch.
struct native_transaction {
    std::vector<native_tx_send> sends;
    std::vector<native_tx_ack> acks;
    uint64_t messages = 0;
    uint64_t body_bytes = 0;
};

/// The work of an XA branch handed from the session that did it to the one that prepares,
/// commits or rolls it back (null: that session no longer has it).
using native_branch_work = std::shared_ptr<native_transaction>;

} // namespace actormq

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<actormq::native_inbound>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::native_link)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::native_branch_work)

namespace actormq {

using npackets_atom = caf::atom_constant<caf::atom("npackets")>;
using attach_atom = caf::atom_constant<caf::atom("attach")>;
using detach_atom = caf::atom_constant<caf::atom("detach")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;
using xa_take_atom = caf::atom_constant<caf::atom("xatake")>;
using drain_timeout_atom = caf::atom_constant<caf::atom("draintmo")>;

/// A native session. It extends STOMP's session interface so queues, which know sessions by
/// that handle, deliver to it and take its acks unchanged (frames_atom is never sent to it).
using native_session_actor = session_actor::extend<
    // Packets of this session's channel, in order, from the connection `conn_id`.
    caf::reacts_to<npackets_atom, uint64_t, std::vector<native_inbound>>,
    // The connection `conn_id` failed (socket closed, TTL): keep the session for reattach if it
    // has a confirmation window, else close it (§14).
    caf::reacts_to<detach_atom, uint64_t>,
    // The connection `conn_id` ended with disconnect, a protocol error or server shutdown:
    // close the session at once.
    caf::reacts_to<closed_atom, uint64_t>,
    // reattach_session (§14): bind to a new connection; (user, client's last_received).
    caf::reacts_to<attach_atom, native_link, std::string, uint64_t>,
    // The connection TTL after a detach has passed; the number names the detach it is for.
    caf::reacts_to<expire_atom, uint64_t>,
    // Another session took over the unprepared XA branch with this key (docs/protocol.md §10:
    // any session may prepare, commit or roll back an ended branch): hand over its work.
    caf::replies_to<xa_take_atom, std::string>::with<native_branch_work>,
    // request-timeout-ms after the connection closed: whatever still waits is dropped.
    caf::reacts_to<drain_timeout_atom>>;

/// Sessions with a confirmation window, by name, so a reattach finds them (§14). Shared by the
/// connections of one acceptor; a session removes itself when it ends.
struct native_registry {
    struct entry {
        native_session_actor session;
        std::string user;
    };
    std::mutex mtx;
    std::unordered_map<std::string, entry> sessions;

    /// The session called `name`, if any.
    std::optional<entry> find(const std::string& name) {
        std::lock_guard<std::mutex> guard{mtx};
        auto it = sessions.find(name);
        return it == sessions.end() ? std::nullopt : std::optional<entry>{it->second};
    }

    /// Registers a session; false if the name is taken by another live session.
    bool add(const std::string& name, entry e) {
        std::lock_guard<std::mutex> guard{mtx};
        return sessions.emplace(name, std::move(e)).second;
    }

    /// Forgets `name` if it is still `who`.
    void remove(const std::string& name, const native_session_actor& who) {
        std::lock_guard<std::mutex> guard{mtx};
        auto it = sessions.find(name);
        if (it != sessions.end() && it->second.session == who) {
            sessions.erase(it);
        }
    }
};

/// What one native session may grow to (its acceptor's keys, docs/configuration.md).
struct native_session_limits {
    uint64_t read_window_bytes = 256 * 1024;
    uint32_t max_producers = 1000;
    uint32_t max_consumers = 1000;
    uint32_t max_messages_per_transaction = 10000;
    uint64_t max_bytes_per_transaction = 16 * 1024 * 1024;
    uint32_t consumer_window_messages = 1000;
    uint32_t max_confirmation_window_bytes = 1024 * 1024;
};

/// The limits an acceptor's config sets for its native sessions.
native_session_limits native_limits_of(const config::acceptor_config& a);

/// What a connection gives the session it spawns for a create_session.
struct native_session_params {
    /// Server-unique, for logs and the names of its temporary queues.
    uint64_t id = 0;
    std::string user;
    /// The connection TTL: how long a detached session is kept (§14).
    uint32_t ttl_ms = 60000;
    native_session_limits limits;
};

/// Message fields the native protocol carries and broker_message keeps as STOMP headers.
namespace native_headers {
constexpr const char* persistent = "persistent";
constexpr const char* priority = "priority";
constexpr const char* expires = "expires";
constexpr const char* timestamp = "timestamp";
/// Routes a send to every subscription queue (multicast) instead of the anycast queue.
constexpr const char* routing = "_AMQ_ROUTING_TYPE";
} // namespace native_headers

/// Where a consumer's or create_queue's queue name leads: "ADDRESS::QUEUE" (Artemis' fully
/// qualified name) is the multicast subscription queue QUEUE of ADDRESS; a plain name is the
/// anycast queue of the address of that name (the broker names an anycast queue after its
/// address).
struct native_queue_ref {
    std::string address;
    std::string queue;
    routing_type routing = routing_type::anycast;
};

/// Parses a queue name; nullopt when it is malformed ("::" with an empty side).
std::optional<native_queue_ref> parse_queue_name(const std::string& name);

/// The broker message for a native send to `address`.
message_ptr to_broker_message(native::message& m,
                              const std::string& address,
                              routing_type routing,
                              uint64_t id);

/// The native message for a delivery of `m`.
native::message to_native_message(const broker_message& m, bool with_body = true);

/// The routing a native message asks for (its `_AMQ_ROUTING_TYPE` header).
routing_type routing_of(const native::message& m);

/// Everything a native session actor owns.
struct native_session_state {
    static inline const char* name = "native_session";

    struct producer {
        std::string address;
        int32_t window = -1;
        /// Credit the server granted minus the bytes of sends it received (§5).
        int64_t credit = 0;
    };

    struct consumer {
        uint32_t id = 0;
        uint64_t key = 0;
        native_queue_ref ref;
        address_actor addr;
        queue_actor queue;
        /// Byte credit (§6); ignored when `unbounded`.
        int64_t credit = 0;
        bool unbounded = false;
        /// Deliveries from the queue not yet sent (no credit, stopped, detached).
        std::deque<delivery> waiting;
        /// Message ids sent to the client and not yet acked or nacked, in delivery order.
        std::deque<uint64_t> unacked;
        /// Pre-acknowledge (§6): the queue counts a message acknowledged once it hands it
        /// over, `unacked` stays empty and the queue's window comes back once the deliveries
        /// are written to the socket (as for STOMP's ack:auto).
        bool pre_ack = false;
    };

    /// Queue credit for pre-acknowledge deliveries: (consumer key, messages).
    using queue_credits = std::vector<std::pair<uint64_t, uint32_t>>;

    using tx_send = native_tx_send;
    using tx_ack = native_tx_ack;
    using transaction = native_transaction;

    /// Sends to one address collected while handling packets, routed as one request.
    struct route_batch {
        address_actor addr;
        std::string address;
        routing_type routing = routing_type::anycast;
        std::vector<message_ptr> msgs;
        int64_t bytes = 0;
        /// Sequences of the sends in it that asked for confirmation.
        std::vector<uint64_t> confirms;
        /// Producer credit to give back once routed: (producer id, bytes).
        std::vector<std::pair<uint32_t, uint32_t>> credits;
    };

    std::shared_ptr<server_context> ctx;
    server_actor server;
    std::shared_ptr<native_registry> registry;
    native_session_params params;
    native_link link;
    bool attached = true;
    /// Bumped on every detach, so a stale TTL timer does nothing.
    uint64_t detach_generation = 0;

    // From create_session (§4).
    std::string session_name;
    bool transacted = false;
    /// An XA session (§10): work inside a branch belongs to it, work outside is not transacted.
    bool xa = false;
    /// The key (xid_key) of the branch bound to the session now; empty: none.
    std::string xa_bound;
    /// The work of each branch this session started and has not prepared or ended yet.
    std::map<std::string, transaction> xa_work;
    int32_t window = -1;
    bool created = false;

    // Streams (§14).
    uint64_t in_seq = 0;
    uint64_t out_seq = 0;
    /// Whether the session was ever reattached: only then is a replayed sequence dropped.
    bool reattached = false;
    uint64_t received_since_confirm = 0;
    std::deque<std::pair<uint64_t, std::string>> kept;
    uint64_t kept_bytes = 0;

    // Input.
    native_inbox inbox;
    uint64_t confirm_due = 0;
    bool waiting = false;
    bool closing = false;
    bool committing = false;
    bool close_deferred = false;
    /// The connection is gone but packets it handed over are still being handled; the
    /// session ends once they are (end_after_input).
    bool draining = false;
    /// Route requests sent and not answered yet (route_batches).
    uint64_t routes_in_flight = 0;
    int64_t outstanding_bytes = 0;
    /// The sequence of the packet being handled.
    uint64_t seq = 0;

    // Work.
    std::unordered_map<std::string, address_actor> addresses;
    std::map<std::string, route_batch> open_batches;
    /// The open batch the last send joined (null after route_batches); map nodes stay put.
    route_batch* last_batch = nullptr;
    std::map<uint32_t, producer> producers;
    std::map<uint32_t, consumer> consumers;
    std::unordered_map<uint64_t, uint32_t> consumer_of_key;
    uint64_t next_key = 1;
    bool started = false;
    transaction tx;
    /// Temporary queues this session created, deleted when it ends.
    std::vector<native_queue_ref> temp_queues;

    /// Output collected while handling one mailbox message, posted once at its end.
    std::string out;
    /// Queue credit of the pre-acknowledge deliveries posted without a written mark (and of
    /// those in `out`): it rides with the next output that carries a mark (flush).
    queue_credits credit_unposted;
    /// The messages counted in credit_unposted.
    uint64_t credit_unposted_count = 0;
    /// Queue credit posted with a written mark, oldest first: given to the queues once the
    /// connection reports the mark written (written_atom), or at once when the session
    /// leaves its connection.
    std::deque<std::pair<uint64_t, queue_credits>> credit_unwritten;
    uint64_t next_written_mark = 1;

    /// The codec limits for what this session writes (the client's max_packet_bytes).
    native::codec_limits out_limits() const;

    /// Whether a stream packet of `bytes` may be sent now without taking the kept bytes above
    /// the confirmation window (§14; a packet is always sent when nothing is kept).
    bool window_has_room(size_t bytes) const;

    /// Numbers, encodes, keeps (with a window) and queues for writing a stream packet. Returns
    /// the encoder's failure (then nothing was numbered or written).
    native::codec_failure emit(native::packet_body body);

    /// Encodes and queues a control packet (never numbered, never kept).
    void emit_control(native::packet_body body);

    /// Drops kept packets up to and including `last` (§14).
    void confirmed(uint64_t last);

    /// The transaction the session's sends and acks join now: the local one of a transacted
    /// session, the bound branch's in an XA session, or none.
    transaction* current_tx();
};

/// The key of an xid in the server's XA table and in the journal's prepare record: format id
/// (u32 little-endian), then gtrid and bqual, each a u8 length and its bytes.
std::string xid_key(const native::xid& x);

/// The xid of a key; nullopt when the bytes are not one.
std::optional<native::xid> xid_of_key(std::string_view key);

/// "format_id:gtrid:bqual" with the parts in hex, for texts and logs.
std::string xid_text(const native::xid& x);

/// The behaviour of a native session actor. A connection spawns it for a create_session, which
/// is the first packet it hands it.
native_session_actor::behavior_type
native_session(native_session_actor::stateful_pointer<native_session_state> self,
               std::shared_ptr<server_context> ctx,
               server_actor server,
               std::shared_ptr<native_registry> registry,
               native_link link,
               native_session_params params);

} // namespace actormq
