// SPDX-License-Identifier: Apache-2.0
#pragma once

// The connection's runtime: a socket, one I/O thread that reads packets and drives the
// failover_machine, one delivery thread for message listeners, and the calls of the public
// API (client.hpp), which all go through this class under one lock.

#include "actormq/client/client.hpp"
#include "failover_machine.hpp"
#include "protocol/native/codec.hpp"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

namespace actormq::client::detail {

/// Milliseconds of the steady clock, the time the failover_machine's events carry.
int64_t now_ms();

/// A client_error of `k` with `text` (and a server's `code`), as an exception_ptr.
std::exception_ptr error_ptr(error_kind k, const std::string& text, uint16_t code = 0);

class connection_core : public std::enable_shared_from_this<connection_core> {
public:
    connection_core(connection_options options, std::string user, std::string password);
    ~connection_core();

    /// Starts the threads and waits for the first connection; throws CONNECTION_FAILED.
    void open();
    void close();

    uint32_t create_session(bool transacted, bool xa = false);
    void close_session(uint32_t channel);
    void start();
    uint32_t create_producer(uint32_t channel, const std::string& address);
    void close_producer(uint32_t channel, uint32_t id);
    void send(uint32_t channel, uint32_t id, message& m, send_completion* async);
    void set_auto_duplicate_ids(uint32_t channel, uint32_t id, bool on);
    /// `pre_ack`: a pre-acknowledge consumer or not; nullopt: as the factory's preAcknowledge.
    uint32_t create_consumer(uint32_t channel,
                             const std::string& queue,
                             const std::string& f,
                             std::optional<bool> pre_ack);
    void close_consumer(uint32_t channel, uint32_t id);
    std::optional<message> receive(uint32_t channel, uint32_t id, std::chrono::milliseconds t);
    void set_listener(uint32_t channel, uint32_t id, std::function<void(message)> l);
    void acknowledge(uint32_t channel, const message& m);
    void create_queue(uint32_t channel, native::create_queue q);
    void delete_queue(uint32_t channel, const std::string& queue);
    void commit(uint32_t channel);
    void rollback(uint32_t channel);
    bool transacted(uint32_t channel);
    void xa_start(uint32_t channel, const native::xid& x, native::xa_start_flag flag);
    void xa_end(uint32_t channel, const native::xid& x, native::xa_end_flag flag);
    void xa_prepare(uint32_t channel, const native::xid& x);
    void xa_commit(uint32_t channel, const native::xid& x, bool one_phase);
    void xa_rollback(uint32_t channel, const native::xid& x);
    std::vector<native::xid> xa_recover(uint32_t channel);
    bool xa(uint32_t channel);
    void add_failure_listener(failure_listener l);
    std::string node_id();
    std::string current_server();
    std::string backup_server();

private:
    using lock = std::unique_lock<std::mutex>;
    using clock = std::chrono::steady_clock;

    /// A request waiting for its ok / fail.
    struct pending {
        bool done = false;
        std::exception_ptr error;
        bool is_commit = false;        ///< unblocked as TRANSACTION_ROLLED_BACK
        bool is_xa_outcome = false;    ///< xa_prepare / xa_commit: unblocked as XA_RETRY
        std::vector<native::xid> xids; ///< xa_recovered's answer
        bool internal = false;         ///< part of recreating a session after failover
        send_completion completion;    ///< asynchronous send
        bool waited = false;           ///< a caller blocks on it
    };
    /// A session's runtime: sequences and windows (its record is in machine_.sessions).
    struct session_rt {
        uint64_t next_sequence = 1;
        confirmation_window out;
        confirmation_window in;
        bool attached = true;
        bool closed = false;
        uint32_t next_id = 1;
        /// The session's incarnation on a server: a failover that recreates the session
        /// gives it a new one, a reattach keeps it. Deliveries carry it.
        uint64_t generation = 1;
        /// Some consumer of this session holds a coalesced ack not yet sent (emit_acks).
        bool acks_pending = false;
    };
    struct producer_rt {
        int64_t credit = 0;
        bool auto_dup = false;
        std::string uuid;
        uint64_t counter = 0;
    };
    struct consumer_rt {
        std::deque<message> buffer;
        std::function<void(message)> listener;
        int64_t consumed_bytes = 0;
        bool closed = false;
        std::string closed_reason;
        /// Message ids delivered in this generation and not acknowledged yet, in delivery
        /// order (non-transacted sessions only): an ack of the oldest one is coalesced.
        std::deque<uint64_t> unacked;
        /// The newest of a run of in-order acks not sent yet: one cumulative ack of it stands
        /// for all of them (docs/protocol.md §8), sent before the session's next packet or by
        /// the I/O thread.
        std::optional<uint64_t> ack_through;
        /// A pre-acknowledge consumer (§6): acknowledge() does nothing, and nothing is kept
        /// in `unacked`. Against a server without pre-acknowledge (server_pre_acks) this client
        /// acks each delivery as it arrives instead (a coalesced cumulative ack), before the
        /// application sees it, which loses the same messages on a failure.
        bool pre_ack = false;
    };
    using key = std::pair<uint32_t, uint32_t>;

    // -- I/O thread (the failover_machine's events and actions: connection_failover.cpp) ---
    void io_loop();
    bool try_connect(const server_address& target, std::string& node_id, std::string& why);
    void read_socket(lock& l);
    /// Decodes and handles the packets buffered in rx_ (read_socket).
    void handle_buffered(lock& l);
    void handle_packet(lock& l, native::packet& p, size_t bytes);
    void handle_session_packet(lock& l, native::packet& p, size_t bytes);
    void feed(lock& l, const event& e);
    void run(lock& l, const std::vector<action>& actions);
    void drop_socket();
    void reattach_sessions(lock& l);
    void recreate_sessions(lock& l);
    void unblock_all(error_kind kind, const std::string& why);
    void complete(lock& l, uint32_t channel, uint64_t correlation, std::exception_ptr e);
    void delivery_loop();
    /// The socket's file descriptor is closed by whoever holds the lock, but a reader polls it
    /// without the lock: drop_socket only shuts it down then, and the reader closes it when it
    /// takes the lock again (no other socket can get its number meanwhile).
    void close_zombie(int fd);

    // -- reading on the caller's thread (docs/client.md "Threads and sockets") ---
    /// A caller that waits for input may read the socket itself now: no one reads it, the
    /// connection is up and in no failover step, and no test seam is armed.
    bool caller_may_read() const;
    /// The I/O thread leaves the socket to callers: they waited for input within the last
    /// caller_grace_ms, and nothing but a caller's read is needed for progress (no listener,
    /// no asynchronous completion waits for a read).
    bool io_yields(int64_t now) const;
    /// Waits until `ready()` or `deadline`, reading the socket on this thread whenever no one
    /// else does; returns ready(). Every wait of a caller for what the server sends goes here.
    template <class Ready>
    bool wait_input(lock& l, clock::time_point deadline, Ready ready);
    /// One poll and read of the socket on the caller's thread, at most `left` long, and the
    /// handling of what it brought, as the I/O thread's read_socket does.
    void read_as_caller(lock& l, clock::duration left);

    // -- caller side ---
    /// Waits until the connection works (failover in progress: up to callTimeout).
    void await_usable(lock& l);
    /// Waits, the lock released, until `s`'s confirmation window has room for `bytes`;
    /// throws TIMEOUT, the connection's end, or UNBLOCKED when a failover recreated the
    /// session meanwhile.
    void await_window_room(lock& l, session_rt& s, size_t bytes);
    /// Sends a stream packet on `channel`; returns its sequence.
    /// `size_out` gets the packet's bytes.
    /// `deferrable`: the packet needs no prompt answer (a send or ack without confirmation, a
    /// credit), so it may wait in the output buffer for the next write (see write_raw).
    uint64_t send_stream(lock& l,
                         uint32_t channel,
                         native::packet_body body,
                         size_t* size_out = nullptr,
                         bool deferrable = false);
    /// Sends a request and waits for its answer; throws its error.
    /// A send's packet size is taken from `producer`'s credit.
    void call(lock& l,
              uint32_t channel,
              native::packet_body body,
              bool is_commit = false,
              const std::pair<uint32_t, uint32_t>* producer = nullptr,
              bool is_xa_outcome = false,
              std::vector<native::xid>* xids = nullptr);
    /// Sends an XA prepare or commit of `x` and waits for it; the branch leaves the session's
    /// records unless the server still holds it ended here (an error other than unknown xid).
    void xa_outcome(lock& l, uint32_t channel, const native::xid& x, native::packet_body body);
    /// The XA session's record; throws ILLEGAL_STATE when the session is not XA.
    session_record& xa_record_of(uint32_t channel);
    /// Notes work (a send or an ack) of the session's transaction or bound XA branch.
    void note_work(session_record& rec);
    /// acknowledge() of `m`, delivered in an earlier generation of the session (before a
    /// failover): a transaction or bound XA branch becomes rollback-only; otherwise UNBLOCKED
    /// is thrown with blockOnAcknowledge, and nothing happens without it.
    void ack_of_lost_delivery(session_record& rec, const message& m);
    /// send() of an unconfirmed message on a session without a confirmation window: encoded
    /// from the application's message straight into out_ (no packet copy of the message).
    void send_in_place(lock& l, uint32_t channel, uint32_t id, message& m);
    void write(const native::packet& p);
    /// Queues `bytes` for the socket. A packet that is not `deferrable` goes out at once, with
    /// everything queued before it; deferrable ones are coalesced (up to out_flush_bytes) and
    /// written by the next write, by the I/O thread (woken through wake_fd_), or when the
    /// buffer is full: one syscall for many fire-and-forget sends or acks instead of one each.
    void write_raw(const std::string& bytes, bool deferrable = false);
    /// Writes out_ to the socket (under the lock).
    void flush_out();
    /// Sends the coalesced cumulative acks of `channel`'s consumers (deferrable packets).
    void emit_acks(lock& l, uint32_t channel);
    /// emit_acks for every session that has coalesced acks.
    void emit_all_acks(lock& l);
    /// Gives consumer `id` its consumed bytes back as credit once half the window is consumed
    /// (§6, as Artemis does); a no-op while not connected.
    void give_credit(lock& l, uint32_t channel, uint32_t id, consumer_rt& c);
    /// Wakes the I/O thread's poll (from another thread) so that it writes deferred output.
    void wake_io();
    session_rt& session_of(uint32_t channel);
    session_record& record_of(uint32_t channel);

    connection_options options_;
    std::string user_;
    std::string password_;
    /// limits_.version is the protocol version the server answered in hello_ok (§2).
    native::codec_limits limits_;
    /// Whether the server makes pre-acknowledge consumers itself (§2, §6: version 2 and later).
    bool server_pre_acks() const { return limits_.version >= 2; }

    std::mutex mu_;
    std::condition_variable cv_;
    /// The delivery thread's own: it waits only for to_deliver_ and closing_, so the many
    /// notifications of cv_ (credit, answers, window room) do not wake it for nothing.
    std::condition_variable delivery_cv_;
    failover_machine machine_;
    int fd_ = -1;
    std::string rx_;
    /// The live the server said it scales down to (a scale_down packet); "" when none.
    std::string scale_down_target_;
    std::string out_; ///< deferred packets not yet written (write_raw)
    /// The current read brought something callers wait for (deliveries, producer credit,
    /// window room, answers): read_socket notifies cv_ once, after releasing the lock.
    bool callers_waiting_ = false;
    /// Deliveries for listeners of the current read not yet notified (delivery_cv_).
    bool listener_deliveries_waiting_ = false;
    /// The I/O thread wrote deferred output, or callers wrote deferred output themselves since
    /// its last look, and it looks again within 1 ms: no wake needed.
    bool io_lingering_ = false;
    /// A caller wrote deferred output itself (out_flush_bytes queued, or before it read): while
    /// callers keep doing so the I/O thread lingers, so the first packet queued after each of
    /// those writes does not wake it (read_socket).
    bool callers_flushed_ = false;
    /// Rounds left in which the I/O thread lingers (looks again within 1 ms) without a write.
    int linger_rounds_ = 0;
    bool acks_pending_ = false; ///< some session has acks_pending: the I/O thread emits them
    /// Who polls and reads the socket, without the lock, at this moment.
    enum class reader_kind { none, io, caller };
    reader_kind reader_ = reader_kind::none;
    int zombie_fd_ = -1;           ///< dropped while a reader polled it: the reader closes it
    int input_waiters_ = 0;        ///< callers in wait_input
    int64_t caller_wait_ms_ = 0;   ///< when a caller last started waiting for input
    int async_pending_ = 0;        ///< asynchronous sends whose completion waits for a read
    std::vector<char> caller_rx_;  ///< the buffer of read_as_caller (one caller reads at a time)
    bool caller_handling_ = false; ///< handle_buffered runs for a caller's read
    /// A caller's read left a packet for the I/O thread in rx_ (handle_buffered): no caller
    /// reads until the I/O thread has handled it.
    bool handed_to_io_ = false;
    /// A caller's read found the socket closed or failed: the I/O thread feeds it to the
    /// failover machine (read_socket), and no caller reads meanwhile.
    std::optional<std::string> caller_read_failure_;
    int wake_fd_ = -1; ///< an eventfd that wakes the I/O thread's poll to write out_
    bool closing_ = false;
    std::optional<std::pair<error_kind, std::string>> dead_; ///< gave up: every call throws this
    bool first_done_ = false;
    std::optional<act_connect> next_connect_;
    uint64_t generation_ = 1; ///< the last generation given to a session
    bool started_ = false;
    uint32_t next_channel_ = 1;
    std::map<uint32_t, session_rt> sessions_;
    std::map<key, producer_rt> producers_;
    std::map<key, consumer_rt> consumers_;
    std::map<key, pending> pending_; ///< (channel, sequence)
    uint32_t recreating_ = 0;
    bool recreate_ok_ = true;
    uint32_t reattaching_ = 0;
    bool reattach_all_found_ = true;
    std::vector<failure_listener> failure_listeners_;
    std::vector<std::function<void()>> after_unlock_; ///< listener calls, run unlocked
    std::deque<std::pair<key, message>> to_deliver_;
    std::thread io_;
    std::thread delivery_;
};

} // namespace actormq::client::detail
