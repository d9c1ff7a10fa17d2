// SPDX-License-Identifier: Apache-2.0
#include "actors/broker/connection.hpp"

#include "actors/broker/ack_lane.hpp"
#include "actors/broker/read_when_readable.hpp"
#include "actors/broker/session.hpp"
#include "actors/broker/stomp_handshake.hpp"
#include "protocol/assert.hpp"
#include "protocol/errc.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include <cstdlib>
#include <cstring>

namespace actormq {

namespace asio = boost::asio;

namespace {

/// How long a closing connection keeps reading (and discarding) after it sent ERROR, so the
/// client's unread bytes do not turn the close into a reset that would swallow the ERROR.
constexpr auto linger_after_error = std::chrono::seconds(2);

stomp::parse_limits limits_of(const config::acceptor_config& a) {
    stomp::parse_limits l;
    l.max_frame_bytes = a.max_frame_bytes;
    l.max_headers = a.max_headers;
    l.max_header_line_bytes = a.max_header_line_bytes;
    return l;
}

} // namespace

connection::connection(tcp::socket socket,
                       uint64_t id,
                       std::shared_ptr<server_context> ctx,
                       std::shared_ptr<const config::acceptor_config> acceptor,
                       caf::actor_system& sys,
                       server_actor server,
                       close_hook on_close)
    : socket_(std::move(socket)),
      id_(id),
      ctx_(std::move(ctx)),
      acceptor_(std::move(acceptor)),
      sys_(sys),
      server_(std::move(server)),
      on_close_(std::move(on_close)),
      parser_(limits_of(*acceptor_)),
      connect_timer_(socket_.get_executor()),
      send_timer_(socket_.get_executor()),
      receive_timer_(socket_.get_executor()),
      write_timer_(socket_.get_executor()),
      ack_timer_(socket_.get_executor()) {
    lane_usable_ =
        static_cast<bool>(ctx_->journal) && ctx_->config.journal.journal_sync_non_transactional;
}

void connection::start() {
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    // Reads happen only once the socket is readable, and then without blocking (do_read).
    socket_.non_blocking(true, ignored);
    connect_timer_.expires_after(std::chrono::milliseconds(acceptor_->connect_timeout_ms));
    connect_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec && !self->connected_ && !self->closing_) {
            self->fail("no CONNECT frame in time", "the client sent no CONNECT or STOMP frame "
                                                   "within connect-timeout-ms");
        }
    });
    do_read();
}

void connection::post_output(std::string bytes, uint64_t confirmed) {
    asio::post(socket_.get_executor(),
               [self = shared_from_this(), b = std::move(bytes), confirmed]() mutable {
                   if (!b.empty()) {
                       self->write(std::move(b));
                   }
                   if (confirmed > 0) {
                       self->confirm(confirmed);
                   }
               });
}

void connection::post_output(std::string bytes, uint64_t confirmed, uint64_t mark) {
    asio::post(socket_.get_executor(),
               [self = shared_from_this(), b = std::move(bytes), confirmed, mark]() mutable {
                   if (!b.empty()) {
                       self->write(std::move(b));
                   }
                   self->set_idle_mark(mark);
                   if (confirmed > 0) {
                       self->confirm(confirmed);
                   }
               });
}

void connection::set_idle_mark(uint64_t mark) {
    auto cur = idle_mark_.load(std::memory_order_acquire);
    // Newer when its flush number is ahead (modulo 2^32): a post that comes late never
    // replaces what a later flush said.
    while (
        static_cast<int32_t>(static_cast<uint32_t>(mark >> 32) - static_cast<uint32_t>(cur >> 32))
        > 0) {
        if (idle_mark_.compare_exchange_weak(cur, mark, std::memory_order_acq_rel)) {
            return;
        }
    }
}

void connection::confirm(uint64_t bytes) {
    unconfirmed_bytes_ -= std::min(bytes, unconfirmed_bytes_);
    if (!reading_ && !closing_ && unconfirmed_bytes_ < acceptor_->read_window_bytes) {
        do_read();
    }
}

void connection::post_close(std::string last) {
    asio::post(socket_.get_executor(), [self = shared_from_this(), b = std::move(last)]() mutable {
        self->seal(std::move(b));
        self->close_after_write();
    });
}

void connection::post_shutdown() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
        // Scale-down (docs/ha.md): a connected client is told where this server's messages go,
        // in an ERROR whose `scale-down-to` header names the target's STOMP acceptor.
        auto to = self->ctx_->ha ? self->ctx_->ha->scale_down_stomp() : std::string{};
        if (to.empty() || !self->connected_ || self->closing_ || self->closed_) {
            self->close();
            return;
        }
        stomp::frame f;
        f.cmd = stomp::command::error;
        f.add("message", "the server is scaling down");
        f.add("scale-down-to", to);
        std::string out;
        stomp::encode(f, self->version_, out);
        self->seal(std::move(out));
        self->close_after_write();
    });
}

void connection::do_read() {
    if (reading_ || closed_) {
        return;
    }
    reading_ = true;
    read_when_readable(
        socket_, [self = shared_from_this()](const boost::system::error_code& ec, const char* data,
                                             size_t n) { self->on_read(ec, data, n); });
}

void connection::on_read(const boost::system::error_code& ec, const char* data, size_t n) {
    reading_ = false;
    if (closed_) {
        // A read that completed just before close() ran (e.g. at shutdown) must not be
        // parsed: a CONNECT in it would spawn a session nobody tells to close.
        return;
    }
    if (ec) {
        close();
        return;
    }
    read_since_check_ = true;
    // Lane SENDs the journal's thread settled while this read was pending are done before
    // the new frames are looked at (lane_in_flight_ decides whether they wait).
    collect_direct();
    if (closing_) {
        do_read(); // Discard what a client sends after ERROR until it closes.
        return;
    }
    parser_.feed(data, n);
    unhanded_bytes_ += n;
    if (!take_frames()) {
        return;
    }
    if (unconfirmed_bytes_ < acceptor_->read_window_bytes) {
        do_read();
    }
    publish_quiet();
}

/// Decodes every complete frame; returns false when the connection is failing.
void connection::hold_frame(stomp::frame f, uint64_t frame_bytes) {
    auto n = std::min(frame_bytes, unhanded_bytes_);
    unhanded_bytes_ -= n;
    held_bytes_ += n;
    unconfirmed_bytes_ += n;
    held_.push_back(std::move(f));
}

bool connection::take_frames() {
    std::vector<stomp::frame> batch;
    stomp::frame f;
    bool ok = true;
    const uint64_t before_connect_max = acceptor_->max_frame_bytes_before_connect;
    auto too_large_before_connect = [&] {
        ctx_->wire_log->info("frame_rejected conn={} reason=max-frame-bytes-before-connect "
                             "max={}",
                             id_, before_connect_max);
        fail(limit_message("max-frame-bytes-before-connect", before_connect_max),
             "a frame sent before CONNECT completed may have at most "
                 + std::to_string(before_connect_max) + " bytes");
        return false;
    };
    for (;;) {
        size_t buffered_before = parser_.buffered();
        auto st = parser_.next(f);
        if (st == stomp::parser::status::need_more) {
            break;
        }
        if (st == stomp::parser::status::error) {
            ok = false;
            break;
        }
        // The bytes this frame took (with any heart-beat EOLs before it).
        uint64_t frame_bytes = buffered_before - parser_.buffered();
        if (!connected_) {
            if (frame_bytes > before_connect_max) {
                return too_large_before_connect();
            }
            if (!on_connect(f)) {
                return false;
            }
            continue;
        }
        if (batch.empty() && held_.empty()
            && (try_lane(f, frame_bytes) || try_ack_lane(f, frame_bytes))) {
            f = stomp::frame{};
            continue;
        }
        if (lane_in_flight_ > 0 || !held_.empty()) {
            hold_frame(std::move(f), frame_bytes);
        } else {
            batch.push_back(std::move(f));
        }
        f = stomp::frame{};
    }
    if (ok && !connected_ && parser_.buffered() > before_connect_max) {
        // Everything buffered belongs to the first frame, which is not complete yet.
        return too_large_before_connect();
    }
    if (!batch.empty()) {
        auto bytes = unhanded_bytes_;
        unhanded_bytes_ = 0;
        hand_over(std::move(batch), bytes);
    }
    if (!ok) {
        auto err = parser_.error();
        ctx_->wire_log->info("frame_rejected conn={} reason=\"{}\"", id_, stomp::to_string(err));
        fail(stomp::to_string(err), "the connection is closed after a malformed frame");
    }
    return ok;
}

void connection::hand_over(std::vector<stomp::frame> batch, uint64_t bytes) {
    caf::anon_send(session_, frames_atom::value, std::move(batch), bytes);
    ++handed_batches_;
    unconfirmed_bytes_ += bytes;
}

bool connection::on_connect(stomp::frame& f) {
    ACTORMQ_ASSERT(!closed_);
    if (f.cmd != stomp::command::connect && f.cmd != stomp::command::stomp) {
        fail("expected a CONNECT or STOMP frame",
             std::string{"the first frame was "} + std::string{stomp::to_string(f.cmd)});
        return false;
    }
    auto r = negotiate(f, *acceptor_, ctx_->config.security);
    version_ = r.version;
    if (!r.accepted) {
        ctx_->wire_log->info("connect_refused conn={} reason=\"{}\"", id_, r.error);
        fail(r.error, "", r.supported_versions);
        return false;
    }
    if (!ctx_->lets_clients_in()) {
        ctx_->wire_log->info("connect_refused conn={} reason=\"quorum check\"", id_);
        fail("not serving", "this server lost its backup and is checking its quorum; try the "
                            "other servers of its group");
        return false;
    }
    connected_ = true;
    connect_timer_.cancel();
    parser_.set_version(r.version);
    session_params p{id_,         r.version,
                     r.user,      acceptor_->default_prefetch_count,
                     r.client_id, limits_of_session(*acceptor_),
                     nullptr};
    // Read once: a switch for measuring the session's way against the lane.
    static const bool ack_lane_on = [] {
        const char* v = std::getenv("ACTORMQ_ACK_LANE");
        return v == nullptr || std::strcmp(v, "0") != 0;
    }();
    if (ack_lane_on && lane_usable_ && r.version == stomp::version::v1_2) {
        acks_ = std::make_shared<session_ack_lane>();
        p.acks = acks_;
    }
    session_ = sys_.spawn(session, ctx_, server_, shared_from_this(), std::move(p));
    ctx_->sessions->fetch_add(1, std::memory_order_relaxed);
    std::string out;
    auto reply = connected_frame(r, *acceptor_, ctx_->config.name, id_);
    if (!ctx_->node_id.empty()) {
        reply.add("node-id", ctx_->node_id);
    }
    if (ctx_->ha) {
        if (auto backups = ctx_->ha->backups(); !backups.empty()) {
            reply.add("backup-connector", std::move(backups));
        }
    }
    stomp::encode(reply, r.version, out);
    write(std::move(out));
    arm_heart_beats(r.send_interval_ms, r.receive_interval_ms);
    ctx_->wire_log->debug("connected conn={} user={} version={} hb_send_ms={} hb_recv_ms={}", id_,
                          r.user, stomp::to_string(r.version), r.send_interval_ms,
                          r.receive_interval_ms);
    return true;
}

void connection::write(std::string bytes) {
    if (closed_ || out_.sealed()) {
        return;
    }
    // A direct write's rest goes first; with bytes to write the output is not idle.
    take_direct_rest();
    if (bytes.empty()) {
        if (!writing_ && out_.has_waiting()) {
            do_write();
        }
        return;
    }
    publish_direct(false);
    const uint64_t max = acceptor_->max_pending_output_bytes;
    if (pending_output() + bytes.size() > max) {
        // The client does not take its frames (style rule 15): drop the queued ones (whole
        // frames; the write in flight is finished first) and end with ERROR.
        ctx_->wire_log->info("output_limit conn={} pending={} adding={} max={}", id_,
                             pending_output(), bytes.size(), max);
        out_.drop_waiting();
        fail("limit max-pending-output-bytes (" + std::to_string(max) + ") reached",
             "the client did not read its frames fast enough; the frames not yet written were "
             "dropped");
        return;
    }
    out_.append(std::move(bytes));
    if (!writing_) {
        do_write();
    }
}

void connection::seal(std::string last) {
    if (closed_) {
        return;
    }
    take_direct_rest();
    publish_direct(false);
    if (!out_.seal(last)) {
        return;
    }
    // Not bounded by max-pending-output-bytes: it is the last frame, and the bound may be
    // what it reports.
    if (!writing_ && out_.has_waiting()) {
        do_write();
    }
}

uint64_t connection::pending_output() const {
    return out_.pending();
}

void connection::do_write() {
    writing_ = true;
    auto piece = out_.next();
    arm_write_timer();
    // write_some rather than async_write: each partial write is progress that restarts the
    // write timer, so a slow reader is not mistaken for one that stopped.
    socket_.async_write_some(asio::buffer(piece.data(), piece.size()),
                             [self = shared_from_this()](const boost::system::error_code& ec,
                                                         size_t n) { self->on_write(ec, n); });
}

void connection::on_write(const boost::system::error_code& ec, size_t n) {
    writing_ = false;
    if (ec || closed_) {
        close();
        return;
    }
    written_total_ += n;
    wrote_since_tick_ = true;
    if (!out_.advance(n)) {
        do_write();
        return;
    }
    // The session counts only the bytes it posted: the lane's RECEIPTs are left out, so a
    // report may come late, never early (an auto-ack credit must not return before its
    // MESSAGE is written).
    auto session_written = written_total_ - std::min(lane_bytes_out_, written_total_);
    if (session_ && session_written >= report_written_from_.load()) {
        caf::anon_send(session_, written_atom::value, session_written);
    }
    if (out_.has_waiting()) {
        do_write();
        return;
    }
    ++write_generation_;
    write_timer_.cancel();
    if (closing_) {
        close_after_write();
        return;
    }
    if (connected_ && !out_.sealed()) {
        publish_direct(true);
    }
}

void connection::arm_write_timer() {
    auto generation = ++write_generation_;
    write_timer_.expires_after(std::chrono::milliseconds(acceptor_->write_timeout_ms));
    write_timer_.async_wait(
        [self = shared_from_this(), generation](const boost::system::error_code& ec) {
            if (ec || generation != self->write_generation_ || !self->writing_ || self->closed_) {
                return;
            }
            // No ERROR: a client that takes no bytes would not read it either.
            self->ctx_->wire_log->info("write_timeout conn={} pending={} timeout_ms={}", self->id_,
                                       self->pending_output(), self->acceptor_->write_timeout_ms);
            self->close();
        });
}

void connection::fail(std::string_view message,
                      std::string_view detail,
                      std::string_view versions) {
    stomp::frame f;
    f.cmd = stomp::command::error;
    if (!versions.empty()) {
        f.add("version", std::string{versions});
    }
    f.add("message", std::string{message});
    f.add("content-type", "text/plain");
    f.add("content-length", std::to_string(detail.size()));
    f.body = std::string{detail};
    std::string out;
    stomp::encode(f, version_, out);
    seal(std::move(out));
    close_after_write();
}

void connection::close_after_write() {
    if (closed_ || lingering_) {
        return;
    }
    closing_ = true;
    publish_direct(false);
    if (writing_ || out_.has_waiting()) {
        return; // The write handler calls back here when the output is empty.
    }
    lingering_ = true;
    // Half-close, then read and discard until the client closes or the linger time ends.
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    connect_timer_.expires_after(linger_after_error);
    connect_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) {
            self->close();
        }
    });
    do_read();
}

void connection::close() {
    if (closed_) {
        return;
    }
    closed_ = true;
    // The journal's thread must not write to a closed socket (its number may be reused).
    publish_direct(false);
    boost::system::error_code ignored;
    connect_timer_.cancel();
    send_timer_.cancel();
    receive_timer_.cancel();
    write_timer_.cancel();
    ack_timer_.cancel();
    socket_.close(ignored);
    if (lane_sends_ > 0) {
        ctx_->wire_log->debug("connection_lane conn={} lane_sends={} lane_direct={}", id_,
                              lane_sends_, lane_direct_.load(std::memory_order_relaxed));
    }
    if (lane_acks_ > 0) {
        ctx_->wire_log->debug("connection_ack_lane conn={} lane_acks={}", id_, lane_acks_);
    }
    if (session_) {
        caf::anon_send(session_, closed_atom::value);
        session_ = nullptr;
        ctx_->sessions->fetch_sub(1, std::memory_order_relaxed);
    }
    if (on_close_) {
        on_close_(id_);
    }
}

void connection::arm_heart_beats(uint32_t send_ms, uint32_t receive_ms) {
    send_interval_ms_ = send_ms;
    receive_ttl_ms_ =
        static_cast<uint32_t>(receive_ms * acceptor_->heart_beat_to_connection_ttl_modifier);
    if (send_interval_ms_ > 0) {
        on_send_tick();
    }
    if (receive_ttl_ms_ > 0) {
        read_since_check_ = false;
        arm_receive_check();
    }
}

void connection::arm_receive_check() {
    receive_timer_.expires_after(std::chrono::milliseconds(receive_ttl_ms_));
    receive_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) {
            self->on_receive_check();
        }
    });
}

void connection::on_send_tick() {
    if (closed_ || closing_) {
        return;
    }
    collect_direct();
    publish_quiet();
    if (!wrote_since_tick_ && !writing_ && !out_.has_waiting()) {
        write("\n");
    }
    wrote_since_tick_ = false;
    send_timer_.expires_after(std::chrono::milliseconds(send_interval_ms_));
    send_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) {
            self->on_send_tick();
        }
    });
}

void connection::on_receive_check() {
    if (closed_ || closing_) {
        return;
    }
    // A connection that stopped reading for back-pressure has not heard from the client
    // because it did not listen; that is not the client's silence.
    if (!read_since_check_ && reading_) {
        ctx_->wire_log->info("heart_beat_timeout conn={} ttl_ms={}", id_, receive_ttl_ms_);
        fail("heart-beat timeout", "nothing was received from the client within the "
                                   "negotiated heart-beat interval times the TTL modifier");
        return;
    }
    read_since_check_ = false;
    arm_receive_check();
}

} // namespace actormq
