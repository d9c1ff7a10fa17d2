// SPDX-License-Identifier: Apache-2.0
#pragma once

// The client's failure and failover logic as a pure state type (docs/protocol.md §17,
// ../shared/design.md "The native client is a state machine too"): events in, actions out.
// No sockets, no threads, no clock: the connection (connection.cpp) feeds it what happened,
// with the time, and carries out what it returns. Unit tests drive it the same way.

#include "actormq/client/errors.hpp"
#include "actormq/client/options.hpp"
#include "protocol/native/packet.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace actormq::client::detail {

// -- the confirmation window (§14) ---------------------------------------------------------------

/// One direction's bookkeeping of a session with a confirmation window: the stream packets
/// sent and not yet confirmed (kept for a replay), and the received ones not yet confirmed.
class confirmation_window {
public:
    /// `size` bytes, or -1: no window (nothing is kept, nothing confirmed).
    explicit confirmation_window(int32_t size = -1) : size_(size) {}

    /// True when a window is on.
    bool enabled() const { return size_ > 0; }

    /// True when a packet of `bytes` may be sent now: no window, nothing kept (a packet larger
    /// than the window goes alone), or it fits beside what is kept.
    bool has_room(size_t bytes) const;

    /// Keeps a sent stream packet (its encoded bytes) until confirmed.
    void keep(uint64_t sequence, std::string bytes);

    /// The peer confirmed every packet up to and including `last`: drop them.
    void confirmed(uint64_t last);

    /// After a reattach: drops what the peer has (up to `last`) and returns the rest, in order,
    /// to be sent again.
    std::vector<std::string> replay_after(uint64_t last);

    /// Bytes kept.
    size_t kept_bytes() const { return kept_bytes_; }
    /// Packets kept.
    size_t kept_count() const { return kept_.size(); }

    /// A stream packet arrived. Returns false for a replayed one already received (drop it).
    /// Else records it; `confirm_to_send()` then says whether to confirm now.
    bool received(uint64_t sequence, size_t bytes);

    /// The highest stream sequence received in order.
    uint64_t last_received() const { return last_received_; }

    /// When the bytes received since the last confirmation reach half the window: the
    /// sequence to confirm (and the count restarts). Else nothing.
    std::optional<uint64_t> confirm_to_send();

    /// Forgets everything (the session was recreated: sequences start again at 1).
    void reset();

private:
    struct kept {
        uint64_t sequence;
        std::string bytes;
    };
    int32_t size_;
    std::deque<kept> kept_;
    size_t kept_bytes_ = 0;
    uint64_t last_received_ = 0;
    size_t unconfirmed_bytes_ = 0;
};

// -- what a failover recreates (§17) -------------------------------------------------------------

/// A producer as the client opened it.
struct producer_record {
    std::string address;
    int32_t window_bytes = -1;
};

/// A consumer as the client opened it.
struct consumer_record {
    std::string queue;
    std::string filter;
    int32_t window_bytes = -1;
    bool browse_only = false;
    /// Recreated as a pre-acknowledge consumer too (docs/protocol.md §6).
    bool pre_acknowledge = false;
};

/// An XA branch bound to a session, or suspended on it: one that only this session may
/// go on with (docs/client.md "XA").
struct xa_branch_record {
    native::xid id;
    /// Sends or acks joined it.
    bool has_work = false;
    /// A failover lost its work: it can only roll back.
    bool doomed = false;
    /// Ended with suspend (only this session may resume it); otherwise bound now.
    bool suspended = false;
};

/// Everything about one session that a new server must be told again.
struct session_record {
    std::string name;
    bool transacted = false;
    bool xa = false;
    bool started = false;
    std::map<uint32_t, producer_record> producers;
    std::map<uint32_t, consumer_record> consumers;
    /// Temporary and non-durable queues the session created: the backup never knew them.
    std::vector<native::create_queue> volatile_queues;
    /// The current transaction has sends or acks (a failover makes it rollback-only).
    bool transaction_has_work = false;
    /// The next commit throws TRANSACTION_ROLLED_BACK (and rolls back).
    bool rollback_only = false;
    /// XA (§10): the branches bound to this session or suspended on it, by xa_key, and the
    /// one bound now ("" none). A branch ended with success or fail is forgotten, as
    /// Artemis's client forgets its xid at end: any session may prepare, commit or roll it
    /// back from then on, so this one cannot know whether it still exists. A failover
    /// recreates the kept ones on the new server (xa_start, and xa_end with suspend for a
    /// suspended one); one with work before it is rollback-only (`doomed`: its next xa_end
    /// says fail, so the server rolls it back at prepare or commit).
    std::map<std::string, xa_branch_record> xa_branches;
    std::string xa_bound;
};

/// A stable key for an xid (format id, then each part with its length).
std::string xa_key(const native::xid& x);

/// The packet bodies that recreate `s` on a new server, in order: create_session, its
/// volatile queues, producers, consumers, its kept XA branches (xa_start, then xa_end for
/// those not bound: suspend for a suspended one, else fail when doomed and success when not),
/// and start if it was started. Their sequences are
/// 1, 2, ... in this order.
std::vector<native::packet_body> recreation_packets(const session_record& s);

// -- the machine ---------------------------------------------------------------------------------

/// Where the connection is.
enum class link_state : uint8_t {
    connecting,   ///< the first connection (initialConnectAttempts)
    connected,    ///< working
    reattaching,  ///< reconnecting to the same server to reattach its sessions (§14)
    failing_over, ///< connecting to the backup (or the same server) to recreate sessions
    closed,       ///< closed by the application, or every attempt failed
};

/// "connected", ...
const char* to_string(link_state s);

// Events: what the connection tells the machine. Times are milliseconds of a monotonic clock.

/// hello_ok and authenticated arrived from the target of the last connect action.
struct ev_connected {
    std::string node_id;
    int64_t now_ms = 0;
};
/// The last connect action failed (refused, timed out, handshake refused).
struct ev_connect_failed {
    std::string reason;
    int64_t now_ms = 0;
};
/// A topology packet arrived (§12).
struct ev_topology {
    uint64_t version = 0;
    std::vector<native::topology_member> members;
};
/// Any packet arrived (a sign of life, §13).
struct ev_packet {
    int64_t now_ms = 0;
};
/// Time passed (the connection calls it at least every ping interval).
struct ev_tick {
    int64_t now_ms = 0;
};
/// The socket closed or failed under a working connection.
struct ev_socket_closed {
    std::string reason;
    int64_t now_ms = 0;
};
/// The server said disconnect; `redirect` names where to go (its backup), if anywhere.
struct ev_server_disconnect {
    std::string reason;
    std::string redirect;
    int64_t now_ms = 0;
};
/// Every reattach_session was answered; all_found false if one session was gone.
struct ev_reattached {
    bool all_found = true;
    int64_t now_ms = 0;
};
/// The recreation of every session was answered (ok false: a request failed).
struct ev_recreated {
    bool ok = true;
    int64_t now_ms = 0;
};
/// The application closes the connection.
struct ev_close {};

using event = std::variant<ev_connected,
                           ev_connect_failed,
                           ev_topology,
                           ev_packet,
                           ev_tick,
                           ev_socket_closed,
                           ev_server_disconnect,
                           ev_reattached,
                           ev_recreated,
                           ev_close>;

// Actions: what the connection must do, in order.

/// Open a socket to `target` at `at_ms` (now or later) and do hello / authenticate.
struct act_connect {
    server_address target;
    int64_t at_ms = 0;
};
/// Close the current socket (without disconnect: the server keeps windowed sessions).
struct act_drop_socket {};
/// Send a ping (§13).
struct act_send_ping {};
/// Send reattach_session for every session and replay the windows (§14).
struct act_reattach_sessions {};
/// Recreate every session that is not attached (recreation_packets) and await the answers.
struct act_recreate_sessions {};
/// Fail the calls in flight: UNBLOCKED, commits TRANSACTION_ROLLED_BACK; transactions with
/// work are now rollback-only (already applied to the machine's sessions).
struct act_unblock {};
/// Tell the failure listeners.
struct act_notify {
    failure_event event;
    std::string reason;
};
/// Give up: every call fails with `kind` (disconnected, or connection_failed at first).
struct act_give_up {
    error_kind kind;
    std::string reason;
};

using action = std::variant<act_connect,
                            act_drop_socket,
                            act_send_ping,
                            act_reattach_sessions,
                            act_recreate_sessions,
                            act_unblock,
                            act_notify,
                            act_give_up>;

/// The connection's failure/failover state and data.
class failover_machine {
public:
    explicit failover_machine(connection_options options);

    /// The first action: connect to the URL's first server now.
    std::vector<action> start(int64_t now_ms);

    /// Feeds one event; returns the actions to take, in order.
    std::vector<action> handle(const event& e);

    link_state state() const { return state_; }
    /// The server connected to (or being tried).
    const server_address& current() const { return current_; }
    /// The node id of the group the client belongs to (from hello_ok); empty before.
    const std::string& node_id() const { return node_id_; }
    /// The newest topology (§12).
    uint64_t topology_version() const { return topology_version_; }
    const std::vector<native::topology_member>& topology() const { return topology_; }
    /// The backup of the client's group, if the topology names one.
    std::optional<server_address> backup() const;
    /// Connect attempts since the last failure (or since start).
    uint32_t attempts() const { return attempts_; }
    /// True once a connection was ever made.
    bool ever_connected() const { return ever_connected_; }
    /// Sessions by channel: what a failover recreates. The connection keeps them current.
    std::map<uint32_t, session_record> sessions;

private:
    std::vector<action> on_connected(const ev_connected& e);
    std::vector<action> on_connect_failed(const ev_connect_failed& e);
    std::vector<action>
    on_failure(const std::string& reason, const std::string& redirect, int64_t now_ms);
    std::vector<action> on_tick(int64_t now_ms);
    std::vector<action> fail_over(std::vector<action> out, int64_t at_ms);
    std::vector<action> give_up(std::vector<action> out, error_kind kind, std::string reason);
    void unblock(std::vector<action>& out);
    bool reconnects_exhausted() const;
    std::vector<server_address> failover_candidates() const;

    connection_options options_;
    link_state state_ = link_state::connecting;
    server_address current_;
    std::string node_id_;
    uint64_t topology_version_ = 0;
    std::vector<native::topology_member> topology_;
    uint32_t attempts_ = 0;
    size_t candidate_ = 0;
    bool ever_connected_ = false;
    bool awaiting_sessions_ = false;
    std::optional<server_address> redirect_;
    int64_t last_packet_ms_ = 0;
    int64_t last_ping_ms_ = 0;
};

} // namespace actormq::client::detail
