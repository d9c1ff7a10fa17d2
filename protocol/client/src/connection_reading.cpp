// SPDX-License-Identifier: Apache-2.0
// The packets that come in (docs/client.md "Threads and sockets"): the socket's bytes decoded
// into packets, the connection's own (ping, topology, disconnect) and each session's (answers,
// deliveries, credit, confirmations), read by the I/O thread, or by a caller that waits for
// input while no one else reads. Member functions of connection_core (connection_core.cpp has
// its life cycle and writes).
#include "connection_core.hpp"
#include "test_seam_impl.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>

namespace actormq::client::detail {

namespace {

/// After a caller waited for input, the I/O thread leaves the socket to callers this long
/// (io_yields): a consumer that comes back to receive within it reads its deliveries itself,
/// without a hand-off between two threads per read.
constexpr int64_t caller_grace_ms = 5;

/// Rounds of 1 ms the I/O thread keeps looking again after it or a caller wrote deferred
/// output, so that callers queueing more need not wake it (read_socket).
constexpr int linger_rounds_after_write = 5;

} // namespace

void connection_core::handle_buffered(lock& l) {
    // The decoded packets are erased once at the end: erasing each from the front moved the
    // rest of a 64 KiB read for every packet.
    size_t at = 0;
    while (fd_ >= 0 && at < rx_.size()) {
        native::packet p;
        size_t used = 0;
        native::codec_failure f;
        auto st = native::decode(rx_.data() + at, rx_.size() - at, native::peer::server, limits_, p,
                                 used, f);
        if (st == native::decode_status::need_more) {
            break;
        }
        if (caller_handling_
            && (st == native::decode_status::error
                || (p.channel == 0 && !std::holds_alternative<native::ping>(p.body)))) {
            // What drives the failover machine (a disconnect, an error, the topology, a
            // malformed packet) stays in rx_ for the I/O thread: failure listeners run there,
            // right after the machine's step, as when the I/O thread reads.
            handed_to_io_ = true;
            break;
        }
        if (st == native::decode_status::error) {
            feed(l,
                 ev_socket_closed{"malformed packet from the server: " + f.describe(), now_ms()});
            break; // what was decoded before still wakes its waiters (read_socket)
        }
        at += used;
        if (test_seam::detail::active()
            && std::holds_alternative<native::session_reattached>(p.body)) {
            // A test holds the reattach's answer here, unlocked, while a caller goes on.
            l.unlock();
            test_seam::detail::call(test_seam::point::reattach_answer);
            l.lock();
        }
        handle_packet(l, p, used);
        if (rx_.size() < at) {
            at = 0; // the socket was dropped meanwhile, and rx_ with it
            break;
        }
    }
    rx_.erase(0, at);
}

void connection_core::read_socket(lock& l) {
    // Packets already buffered first (the handshake may have read past authenticated, or a
    // caller's read left what the I/O thread must handle).
    handle_buffered(l);
    handed_to_io_ = false;
    if (auto why = std::exchange(caller_read_failure_, std::nullopt); why && fd_ >= 0) {
        feed(l, ev_socket_closed{*why, now_ms()}); // a caller's read found the socket's end
    }
    // One wake for everything this read brought (deliveries, credit, window room, answers),
    // not one per packet, and given once the lock is released below: a caller woken under it
    // would block on the lock at once (one more sleep and wake) while this thread writes.
    bool wake_callers = std::exchange(callers_waiting_, false);
    bool wake_delivery = std::exchange(listener_deliveries_waiting_, false);
    auto wake = [&] {
        if (wake_callers) {
            cv_.notify_all();
        }
        if (wake_delivery) {
            delivery_cv_.notify_one();
        }
    };
    if (fd_ < 0) {
        wake();
        return;
    }
    // Coalesced acks and deferred packets queued by callers go out before this thread sleeps.
    emit_all_acks(l);
    bool wrote = !out_.empty();
    flush_out();
    if (fd_ < 0) {
        wake();
        return;
    }
    // Callers that write their deferred output themselves (a producer every out_flush_bytes,
    // a consumer's acks before it reads) would otherwise wake this thread for the first packet
    // queued after each of their writes, and it would write that packet nearly alone. It keeps
    // lingering for a few rounds after they last wrote: a producer that waits a millisecond or
    // two for credit, as it does on a loaded machine, then needs no wake either.
    if (std::exchange(callers_flushed_, false) || wrote) {
        linger_rounds_ = linger_rounds_after_write;
    } else if (linger_rounds_ > 0) {
        --linger_rounds_;
    }
    wrote = linger_rounds_ > 0;
    int fd = fd_;
    auto period = options_.client_failure_check_period_ms;
    int timeout = int(period > 0 ? std::min<int64_t>(period / 4 + 1, 100) : 100);
    // While callers keep queueing deferred packets, look again within a millisecond instead
    // of being woken for each: one write for everything queued meanwhile (a deferred packet
    // waits at most that long; an idle connection is woken as before).
    io_lingering_ = wrote;
    if (wrote) {
        timeout = 1;
    }
    // Callers that wait for input read the socket themselves (wait_input): the I/O thread
    // then only writes deferred output and runs the failover machine's ticks, and looks again
    // within caller_grace_ms whether it must read once more.
    bool yield = io_yields(now_ms());
    if (yield) {
        timeout = std::min(timeout, int(caller_grace_ms));
        // One of the waiters takes the socket.
        wake_callers = wake_callers || (input_waiters_ > 0 && reader_ == reader_kind::none);
    } else {
        reader_ = reader_kind::io;
    }
    l.unlock();
    wake();
    pollfd pfd[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    pollfd* first = yield ? &pfd[1] : &pfd[0];
    nfds_t count = (yield ? 0 : 1) + (wake_fd_ >= 0 ? 1 : 0);
    int rc = ::poll(first, count, timeout);
    int poll_err = errno;
    if (rc > 0 && wake_fd_ >= 0 && (pfd[1].revents & POLLIN) != 0) {
        uint64_t ignored = 0;
        (void)!::read(wake_fd_, &ignored, sizeof ignored); // a caller queued output
    }
    bool readable = !yield && rc > 0 && pfd[0].revents != 0;
    char tmp[65536];
    ssize_t n = readable ? ::recv(fd, tmp, sizeof tmp, 0) : 0;
    int err = errno;
    l.lock();
    if (!yield) {
        reader_ = reader_kind::none;
        close_zombie(fd);
    }
    // A signal meant for the application may interrupt this thread's poll or recv (EINTR):
    // that is no failure of the connection, so read again next turn.
    bool interrupted = (rc < 0 && poll_err == EINTR) || (n < 0 && err == EINTR);
    if (fd != fd_ || closing_ || !readable || interrupted) {
        return;
    }
    if (n <= 0) {
        feed(l, ev_socket_closed{n == 0 ? "the server closed the connection"
                                        : std::string("read: ") + std::strerror(err),
                                 now_ms()});
        return;
    }
    rx_.append(tmp, size_t(n));
    feed(l, ev_packet{now_ms()});
}

void connection_core::handle_packet(lock& l, native::packet& p, size_t bytes) {
    // The time of the last packet is noted once per read (read_socket), not per packet: a
    // clock read and a pass through the failover machine for each delivery cost more than the
    // delivery's own bookkeeping.
    if (p.channel != 0) {
        handle_session_packet(l, p, bytes);
        return;
    }
    if (auto* ping = std::get_if<native::ping>(&p.body)) {
        write(native::make_packet(native::pong{ping->nonce}));
    } else if (auto* t = std::get_if<native::topology>(&p.body)) {
        feed(l, ev_topology{t->version, t->members});
    } else if (auto* sd = std::get_if<native::scale_down>(&p.body)) {
        scale_down_target_ = sd->target; // the disconnect that follows goes there
    } else if (auto* d = std::get_if<native::disconnect>(&p.body)) {
        auto target = std::exchange(scale_down_target_, std::string{});
        feed(l, ev_server_disconnect{"server said disconnect: " + std::string(to_string(d->code))
                                         + ": " + d->message
                                         + (target.empty() ? "" : "; scaling down to " + target),
                                     d->redirect.empty() ? target : d->redirect, now_ms()});
    } else if (auto* e = std::get_if<native::error>(&p.body)) {
        feed(l,
             ev_socket_closed{
                 "server error: " + std::string(to_string(e->code)) + ": " + e->message, now_ms()});
    }
}

void connection_core::handle_session_packet(lock& l, native::packet& p, size_t bytes) {
    auto it = sessions_.find(p.channel);
    if (it == sessions_.end()) {
        return;
    }
    auto& s = it->second;
    if (p.sequence != 0) {
        if (!s.in.received(p.sequence, bytes)) {
            return; // replayed after a reattach: already handled
        }
        if (auto last = s.in.confirm_to_send()) {
            write(native::make_packet(p.channel, 0, native::packets_confirmed{*last}));
        }
    }
    if (auto* ok = std::get_if<native::ok>(&p.body)) {
        complete(l, p.channel, ok->correlation, nullptr);
    } else if (auto* xr = std::get_if<native::xa_recovered>(&p.body)) {
        if (auto it = pending_.find({p.channel, xr->correlation}); it != pending_.end()) {
            it->second.xids = xr->xids;
        }
        complete(l, p.channel, xr->correlation, nullptr);
    } else if (auto* f = std::get_if<native::fail>(&p.body)) {
        auto kind = f->code == native::error_code::transaction_rolled_back
                        ? error_kind::transaction_rolled_back
                    : f->code == native::error_code::xa_retry ? error_kind::xa_retry
                                                              : error_kind::server;
        complete(l, p.channel, f->correlation,
                 error_ptr(kind, std::string(to_string(f->code)) + ": " + f->message,
                           uint16_t(f->code)));
    } else if (auto* d = std::get_if<native::deliver>(&p.body)) {
        auto c = consumers_.find({p.channel, d->consumer_id});
        if (c == consumers_.end()) {
            return;
        }
        message m;
        m.address = std::move(d->msg.address);
        m.durable = d->msg.durable;
        m.priority = d->msg.priority;
        m.expiration_ms = d->msg.expiration_ms;
        m.timestamp_ms = d->msg.timestamp_ms;
        m.duplicate_id = std::move(d->msg.duplicate_id);
        m.headers = std::move(d->msg.headers); // the packet is not used after this
        m.body = std::move(d->msg.body);
        m.message_id = d->message_id;
        m.delivery_count = d->delivery_count;
        m.consumer_id = d->consumer_id;
        m.generation = s.generation;
        c->second.consumed_bytes += int64_t(bytes);
        if (c->second.pre_ack && !server_pre_acks()) {
            // A version 1 server (§2): acknowledged here, before the application sees it, in
            // the coalesced cumulative ack of this consumer's deliveries so far.
            c->second.ack_through = d->message_id;
            if (!s.acks_pending) {
                s.acks_pending = true;
                acks_pending_ = true;
            }
        } else if (!c->second.pre_ack && !record_of(p.channel).transacted) {
            c->second.unacked.push_back(d->message_id);
        }
        // read_socket wakes the receivers (or the delivery thread) once the read is handled.
        if (c->second.listener) {
            to_deliver_.emplace_back(key{p.channel, d->consumer_id}, std::move(m));
            listener_deliveries_waiting_ = true;
        } else {
            c->second.buffer.push_back(std::move(m));
            callers_waiting_ = true;
        }
    } else if (auto* pc = std::get_if<native::producer_credit>(&p.body)) {
        producers_[{p.channel, pc->producer_id}].credit += pc->bytes;
        callers_waiting_ = true; // read_socket wakes the producers once the read is handled
    } else if (auto* cc = std::get_if<native::consumer_closed>(&p.body)) {
        auto& c = consumers_[{p.channel, cc->consumer_id}];
        c.closed = true;
        c.closed_reason = std::string(to_string(cc->code)) + ": " + cc->message;
        cv_.notify_all();
    } else if (auto* pc2 = std::get_if<native::packets_confirmed>(&p.body)) {
        s.out.confirmed(pc2->last);
        callers_waiting_ = true;
    } else if (auto* r = std::get_if<native::session_reattached>(&p.body)) {
        if (reattaching_ == 0) {
            return;
        }
        --reattaching_;
        if (r->found) {
            s.attached = true;
            for (auto& bytes2 : s.out.replay_after(r->last_received)) {
                write_raw(bytes2);
            }
        } else {
            reattach_all_found_ = false;
        }
        if (reattaching_ == 0) {
            feed(l, ev_reattached{reattach_all_found_, now_ms()});
        }
    }
}

void connection_core::complete(lock& l,
                               uint32_t channel,
                               uint64_t correlation,
                               std::exception_ptr e) {
    auto it = pending_.find({channel, correlation});
    if (it == pending_.end()) {
        return; // a fail for a request nobody waits for (an unconfirmed send)
    }
    auto& p = it->second;
    if (p.internal) {
        pending_.erase(it);
        recreate_ok_ = recreate_ok_ && e == nullptr;
        if (--recreating_ == 0) {
            feed(l, ev_recreated{recreate_ok_, now_ms()});
        }
        return;
    }
    if (p.completion) {
        auto done = std::move(p.completion);
        pending_.erase(it);
        --async_pending_;
        after_unlock_.emplace_back([done, e] { done(e); });
        return;
    }
    p.done = true;
    p.error = e;
    callers_waiting_ = true; // complete() runs in read_socket, which wakes the caller
}

// -- reading on the caller's thread --------------------------------------------------------------

bool connection_core::caller_may_read() const {
    return reader_ == reader_kind::none && fd_ >= 0 && !closing_ && !dead_
           && machine_.state() == link_state::connected && reattaching_ == 0 && recreating_ == 0
           && !handed_to_io_ && !caller_read_failure_ && !test_seam::detail::active();
}

bool connection_core::io_yields(int64_t now) const {
    if (reader_ != reader_kind::none) {
        return true; // a caller polls the socket now: one reader at a time
    }
    if (input_waiters_ == 0 && now - caller_wait_ms_ >= caller_grace_ms) {
        return false; // no caller reads: the I/O thread does, as for listeners and pings
    }
    if (async_pending_ > 0 || !after_unlock_.empty()) {
        return false; // completions and listener calls run on the I/O thread after its read
    }
    for (auto& [k, c] : consumers_) {
        if (c.listener) {
            return false; // a listener's messages must not wait for a caller's next read
        }
    }
    return caller_may_read();
}

void connection_core::read_as_caller(lock& l, clock::duration left) {
    // What this connection owes the server goes out first: coalesced acks and credit (the
    // server may wait for them before it sends what this caller waits for).
    emit_all_acks(l);
    callers_flushed_ = callers_flushed_ || !out_.empty();
    flush_out();
    if (!caller_may_read()) {
        return; // the write failed: the I/O thread handles the failure
    }
    int fd = fd_;
    reader_ = reader_kind::caller;
    if (caller_rx_.empty()) {
        caller_rx_.resize(65536);
    }
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    int timeout = int(std::clamp<int64_t>(ms, 1, 100));
    l.unlock();
    pollfd pfd{fd, POLLIN, 0};
    int rc = ::poll(&pfd, 1, timeout);
    int poll_err = errno;
    ssize_t n = rc > 0 ? ::recv(fd, caller_rx_.data(), caller_rx_.size(), 0) : 0;
    int err = errno;
    l.lock();
    reader_ = reader_kind::none;
    close_zombie(fd);
    bool interrupted = (rc < 0 && poll_err == EINTR) || (n < 0 && err == EINTR);
    if (fd != fd_ || closing_ || rc <= 0 || interrupted) {
        if (input_waiters_ > 1) {
            cv_.notify_all(); // another waiter may take the socket now
        }
        return;
    }
    if (n <= 0) {
        // The I/O thread takes the failure into the failover machine, so that the failure
        // listeners run there at once, as when it reads (read_socket).
        caller_read_failure_ = n == 0 ? "the server closed the connection"
                                      : std::string("read: ") + std::strerror(err);
        wake_io();
        return;
    }
    rx_.append(caller_rx_.data(), size_t(n));
    feed(l, ev_packet{now_ms()});
    caller_handling_ = true;
    handle_buffered(l);
    caller_handling_ = false;
    // This caller checks its own condition when it returns; the others are woken, under the
    // lock (rare: two callers waiting on one connection at once).
    if (std::exchange(callers_waiting_, false) || input_waiters_ > 1) {
        if (input_waiters_ > 1) {
            cv_.notify_all();
        }
    }
    if (std::exchange(listener_deliveries_waiting_, false)) {
        delivery_cv_.notify_one();
    }
    if (!after_unlock_.empty() || fd_ < 0 || machine_.state() != link_state::connected
        || handed_to_io_) {
        wake_io(); // listener calls and the failover's steps belong to the I/O thread
    }
}

} // namespace actormq::client::detail
