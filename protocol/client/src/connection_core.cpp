// SPDX-License-Identifier: Apache-2.0
// The connection's runtime (docs/client.md): its life cycle, the I/O thread's connect and loop,
// the delivery thread for listeners, and what callers write (packets in each session's stream,
// the coalesced acks, a request and the wait for its answer). The packets that come in are
// handled in connection_reading.cpp, the public API's calls are in connection_calls.cpp, the
// failover machine's steps in connection_failover.cpp; what they share is in connection_io.hpp.
#include "connection_core.hpp"

#include "connection_io.hpp"
#include "test_seam_impl.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>

namespace actormq::client::detail {

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::exception_ptr error_ptr(error_kind k, const std::string& text, uint16_t code) {
    return std::make_exception_ptr(client_error(k, text, code));
}

namespace {

/// Opens a TCP connection to `target` within `timeout_ms`; -1 and `why` on failure.
int open_socket(const server_address& target, int64_t timeout_ms, std::string& why) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(target.host.c_str(), std::to_string(target.port).c_str(), &hints, &res);
    if (rc != 0) {
        why = "cannot resolve " + target.host + ": " + ::gai_strerror(rc);
        return -1;
    }
    int fd = -1;
    for (auto* a = res; a != nullptr; a = a->ai_next) {
        fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            int ready = 0;
            do {
                // A signal for the application may land on this thread: not a failure.
                ready = ::poll(&p, 1, int(timeout_ms));
            } while (ready < 0 && errno == EINTR);
            rc = ready == 1 ? 0 : -1;
            int err = rc == 0 ? 0 : ETIMEDOUT;
            socklen_t len = sizeof err;
            if (rc == 0) {
                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            }
            errno = err;
            rc = err == 0 ? 0 : -1;
        }
        if (rc == 0) {
            ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            break;
        }
        why = "connect to " + target.to_string() + ": " + std::strerror(errno);
        ::close(fd);
        fd = -1;
    }
    ::freeaddrinfo(res);
    return fd;
}

} // namespace

connection_core::connection_core(connection_options options, std::string user, std::string password)
    : options_(std::move(options)),
      user_(std::move(user)),
      password_(std::move(password)),
      machine_(options_),
      wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

connection_core::~connection_core() {
    close();
    if (zombie_fd_ >= 0) {
        ::close(zombie_fd_);
    }
    if (wake_fd_ >= 0) {
        ::close(wake_fd_);
    }
}

// -- life cycle ----------------------------------------------------------------------------------

void connection_core::open() {
    lock l(mu_);
    run(l, machine_.start(now_ms()));
    io_ = std::thread([this] { io_loop(); });
    delivery_ = std::thread([this] { delivery_loop(); });
    // Named, so that a profile or `top -H` tells the library's threads from the application's.
    ::pthread_setname_np(io_.native_handle(), "actormq-io");
    ::pthread_setname_np(delivery_.native_handle(), "actormq-deliver");
    cv_.wait(l, [this] { return first_done_; });
    if (dead_) {
        auto why = dead_->second;
        l.unlock();
        close();
        throw client_error(error_kind::connection_failed, why);
    }
}

void connection_core::close() {
    lock l(mu_);
    if (closing_) {
        l.unlock();
    } else {
        closing_ = true;
        if (fd_ >= 0 && !dead_) {
            // An orderly goodbye: the server closes the sessions at once (§15), and returns
            // what they have not acknowledged to the queues: the coalesced acks go first.
            try {
                emit_all_acks(l);
                write(native::make_packet(
                    native::disconnect{native::error_code::internal_error, "client closed", ""}));
            } catch (...) {
            }
        }
        if (fd_ >= 0) {
            ::shutdown(fd_, SHUT_RDWR);
        }
        if (!dead_) {
            dead_.emplace(error_kind::closed, "the connection is closed");
        }
        unblock_all(error_kind::closed, "the connection is closed");
        cv_.notify_all();
        delivery_cv_.notify_all();
        l.unlock();
    }
    if (io_.joinable() && io_.get_id() != std::this_thread::get_id()) {
        io_.join();
    }
    if (delivery_.joinable() && delivery_.get_id() != std::this_thread::get_id()) {
        delivery_.join();
    }
    lock l2(mu_);
    drop_socket();
}

// -- the I/O thread ------------------------------------------------------------------------------

void connection_core::io_loop() {
    lock l(mu_);
    while (!closing_) {
        if (next_connect_ && next_connect_->at_ms <= now_ms()) {
            auto target = next_connect_->target;
            next_connect_.reset();
            l.unlock();
            std::string node_id;
            std::string why;
            bool ok = try_connect(target, node_id, why);
            l.lock();
            if (closing_) {
                break;
            }
            if (ok) {
                feed(l, ev_connected{node_id, now_ms()});
                if (machine_.state() == link_state::connected && !first_done_) {
                    first_done_ = true;
                    cv_.notify_all();
                }
            } else {
                feed(l, ev_connect_failed{why, now_ms()});
            }
            continue;
        }
        if (fd_ >= 0) {
            read_socket(l);
        } else {
            auto wait_ms = next_connect_ ? next_connect_->at_ms - now_ms() : 50;
            cv_.wait_for(l, std::chrono::milliseconds(std::max<int64_t>(1, wait_ms)));
        }
        if (!closing_) {
            feed(l, ev_tick{now_ms()});
        }
    }
}

bool connection_core::try_connect(const server_address& target,
                                  std::string& node_id,
                                  std::string& why) {
    int fd = open_socket(target, std::min<int64_t>(options_.call_timeout_ms, 5000), why);
    if (fd < 0) {
        return false;
    }
    auto fail = [&](const std::string& w) {
        why = w;
        ::close(fd);
        return false;
    };
    std::string out;
    native::hello h;
    h.client_name = "actormq-cpp/0.1.0";
    native::authenticate a{user_, password_, options_.client_id,
                           uint32_t(options_.connection_ttl_ms)};
    native::encode(native::make_packet(h), native::peer::client, limits_, out);
    native::encode(native::make_packet(a), native::peer::client, limits_, out);
    if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != ssize_t(out.size())) {
        return fail("send to " + target.to_string() + ": " + std::strerror(errno));
    }
    std::string buf;
    uint16_t version = native::protocol_version;
    auto deadline = now_ms() + options_.call_timeout_ms;
    while (true) {
        native::packet p;
        size_t used = 0;
        native::codec_failure f;
        auto st = native::decode(buf.data(), buf.size(), native::peer::server, limits_, p, used, f);
        if (st == native::decode_status::error) {
            return fail(target.to_string() + ": " + f.describe());
        }
        if (st == native::decode_status::packet) {
            buf.erase(0, used);
            if (auto* ok = std::get_if<native::hello_ok>(&p.body)) {
                node_id = ok->node_id;
                version = ok->version;
            } else if (auto* e = std::get_if<native::error>(&p.body)) {
                return fail(target.to_string() + " refused: " + std::string(to_string(e->code))
                            + ": " + e->message);
            } else if (std::holds_alternative<native::authenticated>(p.body)) {
                lock l(mu_);
                if (closing_) {
                    return fail("closing");
                }
                fd_ = fd;
                rx_ = std::move(buf); // the topology may already be here
                // §2: what this server's bodies look like (create_consumer's pre_acknowledge).
                limits_.version = version;
                return true;
            }
            continue;
        }
        auto left = deadline - now_ms();
        pollfd pfd{fd, POLLIN, 0};
        int ready = left <= 0 ? 0 : ::poll(&pfd, 1, int(left));
        if (ready < 0 && errno == EINTR) {
            continue; // a signal for the application, not an answer: wait again
        }
        if (ready != 1) {
            return fail(target.to_string() + ": no answer to hello within callTimeout");
        }
        char tmp[4096];
        auto n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return fail(target.to_string() + " closed the connection during the handshake");
        }
        buf.append(tmp, size_t(n));
    }
}

void connection_core::delivery_loop() {
    lock l(mu_);
    while (true) {
        delivery_cv_.wait(l, [this] { return closing_ || !to_deliver_.empty(); });
        if (closing_) {
            return;
        }
        auto [k, m] = std::move(to_deliver_.front());
        to_deliver_.pop_front();
        auto it = consumers_.find(k);
        auto owner = sessions_.find(k.first);
        if (it == consumers_.end() || !it->second.listener || owner == sessions_.end()
            || m.generation != owner->second.generation) {
            continue;
        }
        auto listener = it->second.listener;
        bool pre_ack = it->second.pre_ack;
        l.unlock();
        try {
            listener(std::move(m));
        } catch (...) {
            // A listener's exception is the application's; the next message still comes.
        }
        l.lock();
        if (pre_ack) {
            // A listener's credit otherwise goes back with its acks (acknowledge), and a
            // pre-acknowledge consumer sends none: it goes back once the listener is done.
            auto c = consumers_.find(k);
            if (c != consumers_.end() && sessions_.count(k.first) != 0) {
                try {
                    give_credit(l, k.first, k.second, c->second);
                } catch (...) {
                    // The session closed meanwhile: no credit is owed.
                }
            }
        }
    }
}

void connection_core::close_zombie(int fd) {
    if (zombie_fd_ >= 0 && zombie_fd_ == fd) {
        ::close(fd);
        zombie_fd_ = -1;
    }
}

// -- the caller side -----------------------------------------------------------------------------

void connection_core::await_usable(lock& l) {
    if (!dead_ && machine_.state() == link_state::connected && fd_ >= 0) {
        return; // the common case, without reading the clock for a deadline
    }
    auto deadline = clock::now() + std::chrono::milliseconds(options_.call_timeout_ms);
    bool ok = cv_.wait_until(l, deadline, [this] {
        return dead_ || (machine_.state() == link_state::connected && fd_ >= 0);
    });
    if (dead_) {
        throw client_error(dead_->first, dead_->second);
    }
    if (!ok) {
        throw client_error(error_kind::timeout,
                           "the connection did not recover within callTimeout");
    }
}

connection_core::session_rt& connection_core::session_of(uint32_t channel) {
    auto it = sessions_.find(channel);
    if (it == sessions_.end() || it->second.closed) {
        throw client_error(error_kind::closed, "the session is closed");
    }
    return it->second;
}

session_record& connection_core::record_of(uint32_t channel) {
    return machine_.sessions[channel];
}

void connection_core::write(const native::packet& p) {
    std::string bytes;
    auto f = native::encode(p, native::peer::client, limits_, bytes);
    if (f.code != native::codec_error::none) {
        throw client_error(error_kind::illegal_state, "cannot encode: " + f.describe());
    }
    write_raw(bytes);
}

void connection_core::write_raw(const std::string& bytes, bool deferrable) {
    if (fd_ < 0) {
        return; // the I/O thread notices the failure and the window replays what matters
    }
    bool was_empty = out_.empty();
    out_ += bytes;
    if (!deferrable || out_.size() >= connection_io::out_flush_bytes) {
        callers_flushed_ = callers_flushed_ || deferrable;
        flush_out();
    } else if (was_empty && !io_lingering_) {
        wake_io();
    }
}

void connection_core::wake_io() {
    // The I/O thread writes deferred output when it wakes, with whatever callers queue
    // meanwhile; it flushes before each poll anyway, so it needs no wake for its own.
    if (wake_fd_ >= 0 && std::this_thread::get_id() != io_.get_id()) {
        test_seam::detail::wakes.fetch_add(1, std::memory_order_relaxed);
        uint64_t one = 1;
        (void)!::write(wake_fd_, &one, sizeof one);
    }
}

void connection_core::emit_all_acks(lock& l) {
    if (!acks_pending_) {
        return;
    }
    acks_pending_ = false;
    for (auto& [ch, s] : sessions_) {
        if (s.acks_pending && !s.closed) {
            emit_acks(l, ch);
        }
    }
}

void connection_core::emit_acks(lock& l, uint32_t channel) {
    auto s = sessions_.find(channel);
    if (s == sessions_.end() || !s->second.acks_pending) {
        return;
    }
    s->second.acks_pending = false; // first: send_stream below must not come back here
    for (auto it = consumers_.lower_bound({channel, 0});
         it != consumers_.end() && it->first.first == channel; ++it) {
        if (auto through = it->second.ack_through) {
            it->second.ack_through.reset();
            send_stream(
                l, channel,
                native::ack{it->first.second, *through, native::ack_mode::cumulative, false},
                nullptr, true);
        }
    }
}

void connection_core::flush_out() {
    if (fd_ < 0 || out_.empty()) {
        out_.clear();
        return;
    }
    size_t off = 0;
    while (off < out_.size()) {
        auto n = ::send(fd_, out_.data() + off, out_.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue; // interrupted by a signal before anything was written: write again
        }
        if (n <= 0) {
            ::shutdown(fd_, SHUT_RDWR); // the reader sees it and starts the failover
            break;
        }
        off += size_t(n);
    }
    out_.clear();
}

void connection_core::await_window_room(lock& l, session_rt& s, size_t bytes) {
    // The lock is released while waiting: the connection may fail and reattach, or fail over,
    // meanwhile.
    auto generation = s.generation;
    auto deadline = clock::now() + std::chrono::milliseconds(options_.call_timeout_ms);
    auto room = [&] {
        return dead_ || s.out.has_room(bytes);
    };
    if (!wait_input(l, deadline, room)) {
        throw client_error(error_kind::timeout, "no confirmation within callTimeout");
    }
    if (test_seam::detail::active() && !dead_) {
        // A test holds the send here, unlocked, while it fails the connection.
        l.unlock();
        test_seam::detail::call(test_seam::point::send_window_room);
        l.lock();
        if (!wait_input(l, deadline, room)) {
            throw client_error(error_kind::timeout, "no confirmation within callTimeout");
        }
    }
    if (dead_) {
        throw client_error(dead_->first, dead_->second);
    }
    if (s.generation != generation) {
        // A failover recreated the session (its numbering starts again): the packet's number
        // means nothing there.
        throw client_error(error_kind::unblocked,
                           "the session failed over while the send waited for window room");
    }
}

uint64_t connection_core::send_stream(
    lock& l, uint32_t channel, native::packet_body body, size_t* size_out, bool deferrable) {
    if (acks_pending_ && session_of(channel).acks_pending) {
        emit_acks(l, channel); // the session's earlier acks keep their place in its stream
    }
    auto& s = session_of(channel);
    auto seq = s.next_sequence;
    native::packet p{channel, seq, std::move(body)};
    std::string bytes;
    auto f = native::encode(p, native::peer::client, limits_, bytes);
    if (f.code != native::codec_error::none) {
        throw client_error(error_kind::illegal_state, "cannot encode: " + f.describe());
    }
    if (!s.out.has_room(bytes.size())) {
        await_window_room(l, s, bytes.size());
        if (s.next_sequence != seq) {
            // Another thread sent on this session meanwhile: take the next number.
            seq = s.next_sequence;
            p.sequence = seq;
            bytes.clear();
            native::encode(p, native::peer::client, limits_, bytes);
        }
    }
    ++s.next_sequence;
    if (size_out != nullptr) {
        *size_out = bytes.size();
    }
    // A detached session is reattaching: the window resends the packet after the server's
    // answer names what it has (§14). Written now, it would reach the server before the
    // packets the window resends, out of order.
    if (s.attached) {
        write_raw(bytes, deferrable);
    }
    if (s.out.enabled()) {
        s.out.keep(seq, std::move(bytes)); // without a window, no copy of every packet
    }
    return seq;
}

void connection_core::call(lock& l,
                           uint32_t channel,
                           native::packet_body body,
                           bool is_commit,
                           const key* producer,
                           bool is_xa_outcome,
                           std::vector<native::xid>* xids) {
    await_usable(l);
    size_t size = 0;
    auto seq = send_stream(l, channel, std::move(body), &size);
    if (producer != nullptr) {
        producers_[*producer].credit -= int64_t(size); // §5: the whole packet
    }
    key k{channel, seq};
    auto& p = pending_[k];
    p.is_commit = is_commit;
    p.is_xa_outcome = is_xa_outcome;
    p.waited = true;
    auto deadline = clock::now() + std::chrono::milliseconds(options_.call_timeout_ms);
    bool answered = wait_input(l, deadline, [&] { return pending_[k].done; });
    auto error = pending_[k].error;
    if (xids != nullptr) {
        *xids = std::move(pending_[k].xids);
    }
    pending_.erase(k);
    if (!answered) {
        throw client_error(error_kind::timeout, "no answer within callTimeout");
    }
    if (error) {
        std::rethrow_exception(error);
    }
}

} // namespace actormq::client::detail
