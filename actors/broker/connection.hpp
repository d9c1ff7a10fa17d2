// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/broker/output_buffer.hpp"
#include "actors/broker/server_context.hpp"
#include "actors/broker/session.hpp"
#include "actors/fwd.hpp"
#include "protocol/stomp_codec.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>

namespace caf {
class actor_system;
}

namespace actormq {

struct address_lane;
struct lane_op;

/// One client TCP connection on an Asio thread (not an actor: docs/architecture.md
/// "Threads"). It decodes frames, handles CONNECT, and hands every later frame to its session
/// actor; it writes what the session posts back. Back-pressure: it stops reading while the
/// session has not confirmed `read-window-bytes` of frames.
/// Every member runs on the connection's strand; the `post_*` functions are the only entry
/// points for other threads.
class connection : public std::enable_shared_from_this<connection> {
public:
    using tcp = boost::asio::ip::tcp;

    /// Called on the strand once the connection has closed.
    using close_hook = std::function<void(uint64_t id)>;

    /// `acceptor` is shared with the acceptor, so the connection may outlive it.
    connection(tcp::socket socket,
               uint64_t id,
               std::shared_ptr<server_context> ctx,
               std::shared_ptr<const config::acceptor_config> acceptor,
               caf::actor_system& sys,
               server_actor server,
               close_hook on_close);

    /// Starts reading and the CONNECT timer.
    void start();

    /// Appends `bytes` to the output and writes them, then counts `confirmed` bytes of frames
    /// as done by the session (reading resumes once under the window); thread-safe. One
    /// hand-off to the connection's thread for both, because each post wakes that thread and
    /// on the durable path a RECEIPT and the confirmation of the SEND's bytes are due together.
    /// Either part may be empty.
    void post_output(std::string bytes, uint64_t confirmed);

    /// Reports the bytes written to the session (written_atom) from the first write after
    /// which `offset` bytes are written, at every write completion until the session moves the
    /// mark (thread-safe). The session sets it before it posts the bytes it waits for, so no
    /// report it needs can be missed; without a mark nothing is reported, and a write costs no
    /// wake-up of a scheduler thread (docs/benchmarks.md, "Fewer hand-offs").
    void want_written(uint64_t offset) { report_written_from_.store(offset); }

    /// The `batches` of an idle mark while the session has something in flight.
    static constexpr uint32_t busy = std::numeric_limits<uint32_t>::max();

    /// The session's idle mark of its flush number `flush`: it is idle after the first
    /// `batches` batches of frames this connection handed it (`busy` if not). The send lane
    /// may take a SEND only while the newest mark names every batch handed so far
    /// (docs/journal.md, "The send lane"). Both counts are kept modulo 2^32.
    static uint64_t idle_mark(uint32_t flush, uint64_t batches) {
        return (uint64_t{flush} << 32) | static_cast<uint32_t>(batches);
    }

    /// Takes `mark` unless a newer one (a later flush) is in already; thread-safe.
    void set_idle_mark(uint64_t mark);

    /// post_output, and `mark` (idle_mark) takes effect once the bytes are queued for writing.
    void post_output(std::string bytes, uint64_t confirmed, uint64_t mark);

    /// Writes `last` then closes (thread-safe).
    void post_close(std::string last);

    /// Closes at once, for server shutdown (thread-safe).
    void post_shutdown();

    uint64_t id() const { return id_; }

private:
    void do_read();
    void on_read(const boost::system::error_code& ec, const char* data, size_t n);
    bool take_frames();
    /// Hands a batch of frames and the wire bytes they took to the session.
    void hand_over(std::vector<stomp::frame> batch, uint64_t bytes);
    /// Keeps a frame behind a lane operation not confirmed yet: the session gets it after
    /// that one's confirmation (its RECEIPT).
    void hold_frame(stomp::frame f, uint64_t frame_bytes);
    /// Appends a SEND to the journal without the session and address actors when the send
    /// lane may take it (send_lane.hpp); false leaves `f` untouched for the session.
    bool try_lane(stomp::frame& f, uint64_t frame_bytes);
    /// The address a frame names if the lane may take it as far as the frame and the session
    /// go (its address may still say no); "" otherwise.
    std::string lane_candidate(const stomp::frame& f) const;
    /// The session has nothing in flight of the frames handed to it (its newest idle mark names
    /// every batch handed over): a lane may take the next frame without overtaking one.
    bool session_idle() const;
    /// Appends an ACK's record to the journal without the session and queue actors when the
    /// ACK lane may take it (ack_lane.hpp); false leaves `f` for the session.
    bool try_ack_lane(stomp::frame& f, uint64_t frame_bytes);
    /// The hook that confirms (or refuses) a lane ACK of `msg_id` in `queue`: the queue is told,
    /// then the RECEIPT (if any) and the `counted` input bytes go to the connection.
    confirm_hook_ptr ack_hook(std::shared_ptr<queue_ack_lane> queue,
                              uint64_t msg_id,
                              std::string receipt,
                              uint64_t counted);
    /// On the journal's thread: counts a lane ACK without a RECEIPT as done for the strand's
    /// next read when the strand is reading with nothing held (as write_direct's `settled`);
    /// false: the strand must be told.
    bool settle_direct(uint64_t counted);
    /// The journal confirmed a lane ACK without a RECEIPT (on the strand).
    void on_ack_lane_done(uint64_t frame_bytes);
    /// Frames held behind the lanes go to the session once no lane operation is left.
    void release_held();
    /// The journal refused a lane ACK: ERROR, as the session would send.
    void on_ack_lane_failed(uint64_t frame_bytes);
    /// `n` lane ACKs were confirmed: their deadlines go (on the strand).
    void ack_confirmed(uint64_t n);
    /// Aims the ACK watchdog at the oldest lane ACK's deadline (request-timeout-ms): one timer
    /// per connection, not one per ACK; an ACK the journal has not confirmed by its deadline
    /// fails the connection as the session's watchdog does (docs/stomp.md §6).
    void arm_ack_watchdog();
    /// The hook that confirms (or refuses) lane operation `op` of `lane`: the RECEIPT bytes
    /// and the `counted` input bytes to the connection, the message to its address.
    confirm_hook_ptr lane_hook(std::shared_ptr<address_lane> lane,
                               std::shared_ptr<lane_op> op,
                               std::string receipt,
                               uint64_t counted);
    /// The journal confirmed a SEND the lane took: its RECEIPT goes out, its bytes are done,
    /// and the frames held behind the lane go to the session once no lane SEND is left.
    void on_lane_done(std::string receipt, uint64_t frame_bytes, bool lane_post);
    /// What write_direct did with a lane RECEIPT.
    enum class direct { no, written, settled };
    /// On the journal's thread, once a lane operation (a SEND, or an ACK when `ack`) is
    /// confirmed: its RECEIPT straight to the socket if write_direct can, and the strand told
    /// (on_lane_done) unless write_direct settled it.
    void receipt_from_journal(std::string receipt, uint64_t counted, bool ack);
    /// On the journal's thread: writes a lane RECEIPT straight to the socket when the
    /// connection's output is idle (docs/journal.md, "The send lane"). `no`: it is not, and
    /// the RECEIPT must go the strand's way. `written`: the strand must still be told (its
    /// on_lane_done). `settled`: the strand is reading with nothing held, and takes the SEND
    /// as done (`counted` bytes of it) when it next reads (collect_direct): no post, no
    /// wake-up of the Asio thread. A part the socket did not take waits in `direct_rest_` for
    /// the strand, ahead of anything else it writes.
    direct write_direct(const std::string& bytes, uint64_t counted, bool ack = false);
    /// Takes the SENDs write_direct settled as done (on the strand).
    void collect_direct();
    /// Tells write_direct whether the strand, as it is, needs no word of a SEND done: it
    /// reads, nothing waits behind the lane, it is not closing (on the strand).
    void publish_quiet();
    /// Puts what a direct write left over ahead of the output (on the strand).
    void take_direct_rest();
    /// Publishes whether the journal's thread may write to the socket (on the strand).
    void publish_direct(bool ok);
    /// The journal refused a SEND the lane took: ERROR, as the session would send.
    void on_lane_failed(const std::string& address, uint64_t frame_bytes);
    bool on_connect(stomp::frame& f);
    void write(std::string bytes);
    /// The session is done with `bytes` of frames: reading resumes once under the window.
    void confirm(uint64_t bytes);
    /// Appends the last frame the client gets (ERROR) and drops every later write.
    void seal(std::string last);
    void do_write();
    void on_write(const boost::system::error_code& ec, size_t n);
    void arm_write_timer();
    /// Bytes held for the client: queued plus the unwritten rest of the write in flight.
    uint64_t pending_output() const;
    /// Writes an ERROR (in the client's STOMP version: never escaped for 1.0 or before a
    /// version is known) and closes after it; `versions` becomes its `version` header.
    void fail(std::string_view message, std::string_view detail, std::string_view versions = {});
    void close_after_write();
    void close();
    void arm_heart_beats(uint32_t send_ms, uint32_t receive_ms);
    void on_send_tick();
    void on_receive_check();
    void arm_receive_check();

    tcp::socket socket_;
    uint64_t id_;
    std::shared_ptr<server_context> ctx_;
    std::shared_ptr<const config::acceptor_config> acceptor_;
    caf::actor_system& sys_;
    server_actor server_;
    close_hook on_close_;
    stomp::parser parser_;
    stomp_session_actor session_;
    /// What waits to be written and the piece being written; sealed once the last frame (an
    /// ERROR) is queued, after which later writes are dropped.
    output_buffer out_;
    /// Tells a write timer that fires late which write it was armed for.
    uint64_t write_generation_ = 0;
    bool writing_ = false;
    bool reading_ = false;
    bool closing_ = false;
    bool closed_ = false;
    /// Output is flushed and the socket half-closed; waiting for the client to close.
    bool lingering_ = false;
    bool connected_ = false;
    /// The STOMP version frames to this client are encoded in: 1.0 (no escaping) until a
    /// CONNECT names another, then the negotiated one.
    stomp::version version_ = stomp::version::v1_0;
    /// Bytes read and not yet handed to the session with a batch of frames.
    uint64_t unhanded_bytes_ = 0;
    /// Bytes handed to the session and not yet confirmed.
    uint64_t unconfirmed_bytes_ = 0;
    uint64_t written_total_ = 0;
    // The send lane (docs/journal.md, "The send lane").
    /// Whether this server's journal confirms synchronous appends (the lane needs it).
    bool lane_usable_ = false;
    /// The newest idle mark (idle_mark); none yet.
    std::atomic<uint64_t> idle_mark_{idle_mark(0, busy)};
    /// frames_atom messages sent to the session.
    uint64_t handed_batches_ = 0;
    /// SENDs (and ACKs) the lanes took whose RECEIPT (or confirmation) has not come yet.
    uint64_t lane_in_flight_ = 0;
    /// Frames that came while lane SENDs were in flight and the lane could not take: they go
    /// to the session once those are confirmed, so their RECEIPTs follow the lane's.
    std::vector<stomp::frame> held_;
    uint64_t held_bytes_ = 0;
    /// RECEIPT bytes the lane wrote: the session's write marks count only its own bytes.
    uint64_t lane_bytes_out_ = 0;
    /// SENDs the lane took (logged at close, for tests and benchmarks).
    uint64_t lane_sends_ = 0;
    /// The ACK lane's table of deliveries, shared with the session (null: no lane).
    std::shared_ptr<session_ack_lane> acks_;
    /// ACKs the ACK lane took (logged at close).
    uint64_t lane_acks_ = 0;
    /// The deadlines of the lane ACKs not confirmed yet, oldest first, and their watchdog.
    std::deque<std::chrono::steady_clock::time_point> ack_deadlines_;
    bool ack_watchdog_armed_ = false;
    /// Lane RECEIPTs the journal's thread wrote to the socket itself (logged at close).
    std::atomic<uint64_t> lane_direct_{0};
    // The journal's thread may write a lane RECEIPT to the socket itself while the output is
    // idle: no byte waits or is being written, no lane RECEIPT waits in the strand's queue, the
    // connection is not closing. Guarded by direct_mu_, which the strand holds while it
    // changes any of that and while it closes the socket.
    std::mutex direct_mu_;
    bool direct_ok_ = false;
    /// Lane RECEIPTs posted to the strand and not yet written there: a direct write now would
    /// overtake them.
    uint64_t direct_posts_ = 0;
    /// What a direct write could not write; the strand writes it first.
    std::string direct_rest_;
    /// publish_quiet's word, and the SENDs (and their bytes) write_direct settled since the
    /// strand last collected them.
    bool direct_quiet_ = false;
    uint64_t direct_done_ = 0;
    /// Of those, lane ACKs.
    uint64_t direct_done_acks_ = 0;
    uint64_t direct_done_bytes_ = 0;
    /// want_written: report once written_total_ reaches it (set by the session's thread).
    std::atomic<uint64_t> report_written_from_{std::numeric_limits<uint64_t>::max()};
    bool read_since_check_ = false;
    bool wrote_since_tick_ = false;
    uint32_t send_interval_ms_ = 0;
    uint32_t receive_ttl_ms_ = 0;
    boost::asio::steady_timer connect_timer_;
    boost::asio::steady_timer send_timer_;
    boost::asio::steady_timer receive_timer_;
    boost::asio::steady_timer write_timer_;
    boost::asio::steady_timer ack_timer_;
};

} // namespace actormq
