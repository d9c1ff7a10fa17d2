// SPDX-License-Identifier: Apache-2.0
#pragma once

// The ActorMQ native client (docs/client.md): connection factory, connection, session,
// producer and consumer, with automatic reattach and failover (docs/protocol.md §17).
//
// Thread-safety: every object may be used from any thread; calls on one connection are
// serialised by the connection's lock, so a session used by two threads at once sees its calls
// in some order (as JMS, use one session per thread for predictable transactions). Message and
// failure listeners run on the connection's own threads, never on the caller's.

#include "actormq/client/errors.hpp"
#include "actormq/client/options.hpp"

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace actormq::client {

namespace detail {
class connection_core;
} // namespace detail

/// A message to send, or one received (docs/protocol.md §7).
struct message {
    /// For a send: the address when the producer has none. Received: the address sent to.
    std::string address;
    bool durable = false;
    uint8_t priority = 4;      ///< 0..9
    int64_t expiration_ms = 0; ///< milliseconds since the epoch; 0 never expires
    int64_t timestamp_ms = 0;  ///< milliseconds since the epoch; 0: the send sets it
    /// Duplicate-detection id; a producer with automatic duplicate ids fills it when empty.
    std::string duplicate_id;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    // -- set on received messages --
    uint64_t message_id = 0;     ///< what acknowledge names
    uint32_t delivery_count = 0; ///< earlier deliveries of this message
    uint32_t consumer_id = 0;    ///< the consumer it was delivered to
    /// The session's incarnation: a failover that recreates the session starts a new one, and
    /// acks of older deliveries are not applied (the new server redelivers them; see
    /// consumer::acknowledge); a reattach keeps it.
    uint64_t generation = 0;
};

/// An XA transaction branch id (docs/protocol.md §10), as X/Open defines it.
struct xid {
    int32_t format_id = 0;
    std::string gtrid; ///< the global transaction id, 1..64 bytes
    std::string bqual; ///< the branch qualifier, 0..64 bytes

    bool operator==(const xid& o) const {
        return format_id == o.format_id && gtrid == o.gtrid && bqual == o.bqual;
    }
    bool operator!=(const xid& o) const { return !(*this == o); }
};

/// How xa_start binds the session (XAResource.start's flags).
enum class xa_start_flag : uint8_t {
    none = 0,   ///< a new branch (TMNOFLAGS)
    join = 1,   ///< an ended branch of this session again (TMJOIN)
    resume = 2, ///< a suspended branch of this session (TMRESUME)
};

/// How xa_end unbinds it (XAResource.end's flags).
enum class xa_end_flag : uint8_t {
    success = 0, ///< the work is complete (TMSUCCESS)
    fail = 1,    ///< the branch may only roll back (TMFAIL)
    suspend = 2, ///< the work pauses, to be resumed (TMSUSPEND)
};

/// How a queue's address routes (docs/protocol.md §11).
enum class routing_type : uint8_t { anycast = 0, multicast = 1 };

/// Called when an asynchronous send is answered: nullptr on success, else a client_error.
using send_completion = std::function<void(std::exception_ptr)>;

/// Sends messages to one address (or to each message's address when it has none).
class producer {
public:
    /// Sends `m`; blocks until the server confirms it when the factory's blockOnDurableSend /
    /// blockOnNonDurableSend say so (never in a transacted session: commit confirms). With
    /// automatic duplicate ids, `m.duplicate_id` is set when empty, so sending the same
    /// object again after UNBLOCKED is stored once.
    void send(message& m);
    void send(message&& m) { send(m); }
    /// Sends `m` and returns at once; `done` runs (on the connection's thread) when the
    /// server answered, with the error if any (UNBLOCKED when a failover lost the answer).
    void send_async(message& m, send_completion done);
    /// Duplicate ids "<producer-uuid>:<n>" for messages that have none (docs/client.md).
    void set_auto_duplicate_ids(bool on);
    /// Closes the producer.
    void close();

private:
    friend class session;
    producer(std::shared_ptr<detail::connection_core> c, uint32_t channel, uint32_t id);
    std::shared_ptr<detail::connection_core> core_;
    uint32_t channel_;
    uint32_t id_;
};

/// Receives messages from one queue, by receive() or by a listener.
class consumer {
public:
    /// The next message, waiting at most `timeout`; nothing if none came.
    std::optional<message> receive(std::chrono::milliseconds timeout);
    /// Hands every message to `listener` on the connection's delivery thread instead.
    void set_message_listener(std::function<void(message)> listener);
    /// Acknowledges `m` (individually); blocks until stored with blockOnAcknowledge. In a
    /// transacted session it takes effect at commit. A message delivered before a failover
    /// cannot be acknowledged (the new server delivers it again): with blockOnAcknowledge
    /// this throws UNBLOCKED; in a transaction or XA branch, that transaction can only roll
    /// back (commit throws TRANSACTION_ROLLED_BACK); otherwise nothing happens. On a
    /// pre-acknowledge consumer it does nothing: the server acknowledged `m` when it sent it.
    void acknowledge(const message& m);
    /// Closes the consumer; its unacknowledged messages go back to the queue.
    void close();

private:
    friend class session;
    consumer(std::shared_ptr<detail::connection_core> c, uint32_t channel, uint32_t id);
    std::shared_ptr<detail::connection_core> core_;
    uint32_t channel_;
    uint32_t id_;
};

/// One session: a unit of work, transacted or not.
class session {
public:
    /// A producer on `address` (empty: each message names its own).
    std::shared_ptr<producer> create_producer(const std::string& address = "");
    /// A consumer on `queue` with an optional selector; a pre-acknowledge one when the
    /// factory's preAcknowledge is true.
    std::shared_ptr<consumer> create_consumer(const std::string& queue,
                                              const std::string& filter = "");
    /// A consumer on `queue` that is pre-acknowledge (or not) whatever the factory says:
    /// the server acknowledges each message as it delivers it, acknowledge() does nothing, and
    /// messages in flight when the connection fails are lost (docs/client.md
    /// "Pre-acknowledge").
    std::shared_ptr<consumer>
    create_consumer(const std::string& queue, const std::string& filter, bool pre_acknowledge);
    /// Creates `queue` on `address` (both created if missing). Temporary and non-durable
    /// queues are recreated on the backup after a failover.
    void create_queue(const std::string& queue,
                      const std::string& address,
                      routing_type routing = routing_type::anycast,
                      bool durable = true,
                      bool temporary = false);
    /// Deletes a queue.
    void delete_queue(const std::string& queue);
    /// Commits the transaction. Throws TRANSACTION_ROLLED_BACK when a failover made it
    /// rollback-only or the server rolled it back; the session is then ready for a retry.
    void commit();
    /// Rolls the transaction back.
    void rollback();
    /// True for a transacted session.
    bool transacted() const;

    // -- XA (docs/client.md "XA"); only on a session from create_xa_session() --
    // Errors from the server are client_error kind server with server_code() the wire code:
    // 19 xa_unknown_xid (XAER_NOTA), 20 xa_protocol (XAER_PROTO), 21 xa_duplicate_xid
    // (XAER_DUPID), 22 limit_reached (max-prepared-transactions).

    /// Binds the session's following sends and acks to the branch `x`.
    void xa_start(const xid& x, xa_start_flag flag = xa_start_flag::none);
    /// Unbinds the session from `x`. A branch with work before a failover ends as fail.
    void xa_end(const xid& x, xa_end_flag flag = xa_end_flag::success);
    /// Prepares `x`: its work is on disk, undecided, and survives crashes and failovers.
    /// Throws TRANSACTION_ROLLED_BACK when the branch was rolled back instead (rollback-only
    /// after a failover or xa_end fail, a duplicate id), XA_RETRY when a failover hid the
    /// outcome (xa_recover then says whether it is prepared).
    void xa_prepare(const xid& x);
    /// Commits `x` (prepared, or with `one_phase` an ended one), from any session of any
    /// connection. XA_RETRY when a failover hid the outcome: call it again (xa_unknown_xid
    /// then means it had committed).
    void xa_commit(const xid& x, bool one_phase = false);
    /// Rolls `x` back, from any session of any connection when it is prepared.
    void xa_rollback(const xid& x);
    /// The prepared branches of the server.
    std::vector<xid> xa_recover();
    /// True for an XA session.
    bool xa() const;
    /// Closes the session, its producers and consumers.
    void close();

private:
    friend class connection;
    session(std::shared_ptr<detail::connection_core> c, uint32_t channel);
    std::shared_ptr<detail::connection_core> core_;
    uint32_t channel_;
};

/// One connection to a server (and, after failover, to its backup).
class connection {
public:
    ~connection();
    /// Opens a session.
    std::shared_ptr<session> create_session(bool transacted = false);
    /// Opens an XA session: its work inside a branch (session::xa_start) belongs to the branch,
    /// its work outside any branch is not transacted.
    std::shared_ptr<session> create_xa_session();
    /// Starts deliveries to every consumer (JMS Connection.start), now and after failover.
    void start();
    /// Adds a failure listener (FAILURE_DETECTED, FAILOVER, DISCONNECT).
    void add_failure_listener(failure_listener l);
    /// The node id of the broker group (unchanged by failover).
    std::string node_id() const;
    /// The server connected to now, "host:port".
    std::string current_server() const;
    /// The backup of this connection's group as the newest topology names it ("host:port"),
    /// the server a failover goes to; "" while none is known (docs/protocol.md §12).
    std::string backup_server() const;
    /// Closes the connection; its sessions close at once on the server.
    void close();

private:
    friend class connection_factory;
    explicit connection(std::shared_ptr<detail::connection_core> c);
    std::shared_ptr<detail::connection_core> core_;
};

/// Makes connections from a URL (docs/client.md "URL").
class connection_factory {
public:
    /// Throws url_error for a URL it cannot use.
    explicit connection_factory(std::string_view url);
    explicit connection_factory(connection_options options) : options_(std::move(options)) {}
    /// Connects (initialConnectAttempts tries) and authenticates; throws client_error
    /// CONNECTION_FAILED when it cannot. Empty credentials: the URL's.
    std::shared_ptr<connection> create_connection(const std::string& user = "",
                                                  const std::string& password = "");
    const connection_options& options() const { return options_; }

private:
    connection_options options_;
};

} // namespace actormq::client
