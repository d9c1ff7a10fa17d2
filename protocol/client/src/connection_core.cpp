// SPDX-License-Identifier: Apache-2.0
#include "connection_core.hpp"

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
#include <random>
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

/// Deferred packets are written once this many bytes are queued (or sooner, see write_raw):
/// the size the shared bench kit's STOMP load generator coalesces its writes to.
constexpr size_t out_flush_bytes = 16 * 1024;

/// After a caller waited for input, the I/O thread leaves the socket to callers this long
/// (io_yields): a consumer that comes back to receive within it reads its deliveries itself,
/// without a hand-off between two threads per read.
constexpr int64_t caller_grace_ms = 5;

/// Rounds of 1 ms the I/O thread keeps looking again after it or a caller wrote deferred
/// output, so that callers queueing more need not wake it (read_socket).
constexpr int linger_rounds_after_write = 5;

std::string make_uuid() {
    static std::mutex mu;
    static std::mt19937_64 rng{std::random_device{}()};
    std::lock_guard<std::mutex> g(mu);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    return buf;
}

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
        if (!record_of(p.channel).transacted) {
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
        l.unlock();
        try {
            listener(std::move(m));
        } catch (...) {
            // A listener's exception is the application's; the next message still comes.
        }
        l.lock();
    }
}

void connection_core::close_zombie(int fd) {
    if (zombie_fd_ >= 0 && zombie_fd_ == fd) {
        ::close(fd);
        zombie_fd_ = -1;
    }
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

template <class Ready>
bool connection_core::wait_input(lock& l, clock::time_point deadline, Ready ready) {
    struct waiting {
        int& n;
        explicit waiting(int& count) : n(count) { ++n; }
        ~waiting() { --n; }
        waiting(const waiting&) = delete;
        waiting& operator=(const waiting&) = delete;
    } counted(input_waiters_);
    caller_wait_ms_ = now_ms();
    while (!ready()) {
        auto now = clock::now();
        if (now >= deadline) {
            return false;
        }
        if (caller_may_read()) {
            read_as_caller(l, deadline - now);
            continue;
        }
        // Someone else reads (the I/O thread, or another caller): it wakes us when the read
        // brought something, or when it leaves the socket to callers.
        cv_.wait_until(l, deadline, [&] { return ready() || caller_may_read(); });
    }
    return true;
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
    if (!deferrable || out_.size() >= out_flush_bytes) {
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

uint32_t connection_core::create_session(bool transacted, bool xa) {
    lock l(mu_);
    await_usable(l);
    auto ch = next_channel_++;
    auto& s = sessions_[ch];
    s.generation = generation_;
    s.out = confirmation_window(options_.confirmation_window_size);
    s.in = confirmation_window(options_.confirmation_window_size);
    auto& rec = record_of(ch);
    rec.name = make_uuid();
    rec.transacted = transacted;
    rec.xa = xa;
    native::create_session cs{rec.name, transacted, xa, options_.confirmation_window_size};
    try {
        call(l, ch, cs);
    } catch (...) {
        sessions_.erase(ch);
        machine_.sessions.erase(ch);
        throw;
    }
    if (started_) {
        rec.started = true;
        send_stream(l, ch, native::start{});
    }
    return ch;
}

void connection_core::close_session(uint32_t channel) {
    lock l(mu_);
    if (sessions_.count(channel) == 0 || sessions_[channel].closed || dead_) {
        return;
    }
    try {
        call(l, channel, native::close_session{});
    } catch (const client_error&) {
        // Closing is best effort: a failed connection closes the session anyway.
    }
    sessions_[channel].closed = true;
    machine_.sessions.erase(channel);
}

void connection_core::start() {
    lock l(mu_);
    await_usable(l);
    started_ = true;
    for (auto& [ch, s] : sessions_) {
        if (!s.closed && !record_of(ch).started) {
            record_of(ch).started = true;
            send_stream(l, ch, native::start{});
        }
    }
}

uint32_t connection_core::create_producer(uint32_t channel, const std::string& address) {
    lock l(mu_);
    auto id = session_of(channel).next_id++;
    call(l, channel, native::create_producer{id, address, options_.producer_window_size});
    record_of(channel).producers[id] = producer_record{address, options_.producer_window_size};
    auto& p = producers_[{channel, id}];
    p.uuid = make_uuid();
    return id;
}

void connection_core::close_producer(uint32_t channel, uint32_t id) {
    lock l(mu_);
    if (record_of(channel).producers.erase(id) == 0 || dead_) {
        return;
    }
    producers_.erase({channel, id});
    try {
        call(l, channel, native::close_producer{id});
    } catch (const client_error&) {
    }
}

void connection_core::set_auto_duplicate_ids(uint32_t channel, uint32_t id, bool on) {
    lock l(mu_);
    producers_[{channel, id}].auto_dup = on;
}

void connection_core::send(uint32_t channel, uint32_t id, message& m, send_completion* async) {
    lock l(mu_);
    await_usable(l);
    if (record_of(channel).producers.count(id) == 0) {
        throw client_error(error_kind::closed, "the producer is closed");
    }
    auto& p = producers_[{channel, id}];
    if (p.auto_dup && m.duplicate_id.empty()) {
        m.duplicate_id = p.uuid + ":" + std::to_string(++p.counter);
    }
    if (m.timestamp_ms == 0) {
        m.timestamp_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    }
    if (options_.producer_window_size >= 0) {
        bool ok = p.credit > 0; // the common case: no clock read for a deadline
        if (!ok) {
            flush_out(); // the server grants credit for what it has routed: let it have it
            auto deadline = clock::now() + std::chrono::milliseconds(options_.call_timeout_ms);
            ok = wait_input(l, deadline, [&] {
                return dead_ || producers_[{channel, id}].credit > 0;
            });
        }
        if (dead_) {
            throw client_error(dead_->first, dead_->second);
        }
        if (!ok) {
            throw client_error(error_kind::timeout, "no producer credit within callTimeout");
        }
    }
    auto& rec = record_of(channel);
    bool in_tx = rec.transacted || !rec.xa_bound.empty();
    bool confirm =
        async != nullptr
        || (!in_tx
            && (m.durable ? options_.block_on_durable_send : options_.block_on_non_durable_send));
    if (!confirm && async == nullptr) {
        auto& srt = session_of(channel);
        if (!srt.out.enabled() && srt.attached) {
            note_work(rec);
            send_in_place(l, channel, id, m);
            return;
        }
    }
    native::send s;
    s.producer_id = id;
    s.confirm = confirm;
    s.msg = native::message{m.address,      m.durable,      m.priority, m.expiration_ms,
                            m.timestamp_ms, m.duplicate_id, m.headers,  m.body};
    note_work(rec);
    // Each send's whole packet is taken from the producer's credit (§5).
    size_t size = 0;
    if (async != nullptr) {
        auto seq = send_stream(l, channel, std::move(s), &size);
        producers_[{channel, id}].credit -= int64_t(size);
        pending_[{channel, seq}].completion = std::move(*async);
        ++async_pending_; // the I/O thread reads on: the completion runs there
        return;
    }
    if (!confirm) {
        send_stream(l, channel, std::move(s), &size, true);
        producers_[{channel, id}].credit -= int64_t(size);
        return;
    }
    key k{channel, id};
    call(l, channel, std::move(s), false, &k);
}

void connection_core::send_in_place(lock& l, uint32_t channel, uint32_t id, message& m) {
    auto& s = session_of(channel);
    if (acks_pending_ && s.acks_pending) {
        emit_acks(l, channel); // the session's earlier acks keep their place in its stream
    }
    native::packet p{channel, s.next_sequence, native::send{}};
    auto& body = std::get<native::send>(p.body);
    body.producer_id = id;
    body.msg.durable = m.durable;
    body.msg.priority = m.priority;
    body.msg.expiration_ms = m.expiration_ms;
    body.msg.timestamp_ms = m.timestamp_ms;
    // The application's strings are lent to the packet while it is encoded and given back
    // after (the API leaves the message intact): no copy of the body on the way to the socket.
    struct lent {
        message& from;
        native::message& to;
        lent(message& f, native::message& t) : from(f), to(t) {
            to.address = std::move(from.address);
            to.duplicate_id = std::move(from.duplicate_id);
            to.headers = std::move(from.headers);
            to.body = std::move(from.body);
        }
        ~lent() {
            from.address = std::move(to.address);
            from.duplicate_id = std::move(to.duplicate_id);
            from.headers = std::move(to.headers);
            from.body = std::move(to.body);
        }
        lent(const lent&) = delete;
        lent& operator=(const lent&) = delete;
    };
    size_t before = out_.size();
    native::codec_failure f;
    {
        lent loan(m, body.msg);
        f = native::encode(p, native::peer::client, limits_, out_); // straight into the output
    }
    if (f.code != native::codec_error::none) {
        throw client_error(error_kind::illegal_state, "cannot encode: " + f.describe());
    }
    ++s.next_sequence;
    producers_[{channel, id}].credit -= int64_t(out_.size() - before); // §5: the whole packet
    // As write_raw with a deferrable packet: written with the next batch, by this thread once
    // out_flush_bytes are queued, or by the I/O thread.
    if (out_.size() >= out_flush_bytes) {
        callers_flushed_ = true;
        flush_out();
    } else if (before == 0 && !io_lingering_) {
        wake_io();
    }
}

uint32_t connection_core::create_consumer(uint32_t channel,
                                          const std::string& queue,
                                          const std::string& filter) {
    lock l(mu_);
    auto id = session_of(channel).next_id++;
    consumers_[{channel, id}];
    try {
        call(l, channel,
             native::create_consumer{id, queue, filter, options_.consumer_window_size, false});
    } catch (...) {
        consumers_.erase({channel, id});
        throw;
    }
    record_of(channel).consumers[id] =
        consumer_record{queue, filter, options_.consumer_window_size, false};
    return id;
}

void connection_core::close_consumer(uint32_t channel, uint32_t id) {
    lock l(mu_);
    if (record_of(channel).consumers.erase(id) == 0 || dead_) {
        return;
    }
    try {
        call(l, channel, native::close_consumer{id});
    } catch (const client_error&) {
    }
    consumers_.erase({channel, id});
}

std::optional<message>
connection_core::receive(uint32_t channel, uint32_t id, std::chrono::milliseconds t) {
    lock l(mu_);
    key k{channel, id};
    if (consumers_.count(k) == 0) {
        throw client_error(error_kind::closed, "the consumer is closed");
    }
    auto ready = [&] {
        auto it = consumers_.find(k);
        return dead_ || it == consumers_.end() || !it->second.buffer.empty() || it->second.closed;
    };
    if (!ready()) { // a message already buffered is taken without reading the clock
        wait_input(l, clock::now() + t, ready);
    }
    auto it = consumers_.find(k);
    if (it == consumers_.end() || (it->second.buffer.empty() && it->second.closed)) {
        throw client_error(error_kind::closed, "the consumer is closed");
    }
    if (it->second.buffer.empty()) {
        if (dead_) {
            throw client_error(dead_->first, dead_->second);
        }
        return std::nullopt;
    }
    auto m = std::move(it->second.buffer.front());
    it->second.buffer.pop_front();
    // Give credit back once half the window is consumed (§6), as Artemis does.
    auto window = options_.consumer_window_size;
    if (window > 0 && it->second.consumed_bytes >= window / 2 && fd_ >= 0
        && machine_.state() == link_state::connected) {
        auto bytes = uint32_t(it->second.consumed_bytes);
        it->second.consumed_bytes = 0;
        send_stream(l, channel, native::credit{id, bytes}, nullptr, true);
    }
    return m;
}

void connection_core::set_listener(uint32_t channel,
                                   uint32_t id,
                                   std::function<void(message)> listener) {
    lock l(mu_);
    auto& c = consumers_[{channel, id}];
    c.listener = std::move(listener);
    while (!c.buffer.empty()) {
        to_deliver_.emplace_back(key{channel, id}, std::move(c.buffer.front()));
        c.buffer.pop_front();
    }
    delivery_cv_.notify_all();
}

void connection_core::acknowledge(uint32_t channel, const message& m) {
    lock l(mu_);
    await_usable(l);
    auto owner = sessions_.find(channel);
    if (owner == sessions_.end()) {
        return;
    }
    auto& rec = record_of(channel);
    if (m.generation != owner->second.generation) {
        return ack_of_lost_delivery(rec, m);
    }
    bool confirm = options_.block_on_acknowledge && !rec.transacted && rec.xa_bound.empty();
    note_work(rec);
    native::ack a{m.consumer_id, m.message_id, native::ack_mode::individual, confirm};
    // Consumer credit for listeners: their messages never pass receive().
    auto c = consumers_.find({channel, m.consumer_id});
    bool coalesced = false;
    if (c != consumers_.end() && !rec.transacted) {
        auto& unacked = c->second.unacked;
        if (!confirm && !unacked.empty() && unacked.front() == m.message_id) {
            // Acks in delivery order (the common case) coalesce: a cumulative ack of the last
            // one says the same as all of them, in one packet and one request on the server.
            unacked.pop_front();
            c->second.ack_through = m.message_id;
            coalesced = true;
            if (!owner->second.acks_pending) {
                owner->second.acks_pending = true;
                if (!acks_pending_) {
                    acks_pending_ = true;
                    if (!io_lingering_) {
                        wake_io(); // else the I/O thread looks again within 1 ms anyway
                    }
                }
            }
        } else {
            auto at = std::find(unacked.begin(), unacked.end(), m.message_id);
            if (at != unacked.end()) {
                unacked.erase(at);
            }
        }
    }
    auto window = options_.consumer_window_size;
    if (c != consumers_.end() && c->second.listener && window > 0
        && c->second.consumed_bytes >= window / 2) {
        auto bytes = uint32_t(c->second.consumed_bytes);
        c->second.consumed_bytes = 0;
        send_stream(l, channel, native::credit{m.consumer_id, bytes}, nullptr, true);
    }
    if (confirm) {
        call(l, channel, a);
    } else if (!coalesced) {
        send_stream(l, channel, a, nullptr, true);
    }
}

void connection_core::ack_of_lost_delivery(session_record& rec, const message& m) {
    // The session was recreated on another server, which never delivered `m` to it: the ack
    // cannot be applied there, and that server delivers the message again (to this consumer
    // or another). Artemis's server refuses such an ack as well ("could not find reference";
    // an error with blockOnAcknowledge, and the transaction becomes rollback-only); here the
    // client knows by the generation and says so without a round trip.
    if (rec.transacted) {
        // A commit without this ack would be a partial transaction: it rolls back instead.
        rec.transaction_has_work = true;
        rec.rollback_only = true;
        return;
    }
    if (!rec.xa_bound.empty()) {
        auto& b = rec.xa_branches[rec.xa_bound];
        b.has_work = true;
        b.doomed = true; // xa_end says fail: prepare or commit rolls it back
        return;
    }
    if (options_.block_on_acknowledge) {
        // UNBLOCKED, as for a blocking ack that a failover cut off: either way the application
        // must expect the message again, and code that handles the one handles the other.
        throw client_error(error_kind::unblocked,
                           "message " + std::to_string(m.message_id)
                               + " was delivered before a failover; the server that serves now "
                                 "did not apply this acknowledgement and delivers the message "
                                 "again");
    }
    // Without blockOnAcknowledge an ack is never confirmed, so a lost one is not reported
    // either (docs/client.md "Acknowledgements and failover").
}

void connection_core::create_queue(uint32_t channel, native::create_queue q) {
    lock l(mu_);
    call(l, channel, q);
    if (q.temporary || !q.durable) {
        record_of(channel).volatile_queues.push_back(q);
    }
}

void connection_core::delete_queue(uint32_t channel, const std::string& queue) {
    lock l(mu_);
    call(l, channel, native::delete_queue{queue});
    auto& v = record_of(channel).volatile_queues;
    v.erase(std::remove_if(v.begin(), v.end(), [&](auto& q) { return q.queue == queue; }), v.end());
}

void connection_core::commit(uint32_t channel) {
    lock l(mu_);
    auto& rec = record_of(channel);
    if (!rec.transacted) {
        throw client_error(error_kind::illegal_state, "commit on a session that is not transacted");
    }
    if (rec.rollback_only) {
        // The new server never saw this transaction's work: roll back whatever it has and
        // let the application retry (docs/protocol.md §17).
        rec.rollback_only = false;
        rec.transaction_has_work = false;
        try {
            call(l, channel, native::rollback{});
        } catch (const client_error&) {
        }
        throw client_error(error_kind::transaction_rolled_back,
                           "the transaction was rolled back by a failover; retry it");
    }
    try {
        call(l, channel, native::commit{}, true);
    } catch (const client_error& e) {
        record_of(channel).transaction_has_work = false;
        record_of(channel).rollback_only = false;
        throw;
    }
    record_of(channel).transaction_has_work = false;
}

void connection_core::rollback(uint32_t channel) {
    lock l(mu_);
    auto& rec = record_of(channel);
    rec.rollback_only = false;
    rec.transaction_has_work = false;
    call(l, channel, native::rollback{});
}

bool connection_core::transacted(uint32_t channel) {
    lock l(mu_);
    return record_of(channel).transacted;
}

// -- XA (docs/protocol.md §10, §17) --------------------------------------------------------------

void connection_core::note_work(session_record& rec) {
    if (rec.transacted) {
        rec.transaction_has_work = true;
    }
    if (!rec.xa_bound.empty()) {
        rec.xa_branches[rec.xa_bound].has_work = true;
    }
}

session_record& connection_core::xa_record_of(uint32_t channel) {
    session_of(channel); // throws CLOSED
    auto& rec = record_of(channel);
    if (!rec.xa) {
        throw client_error(error_kind::illegal_state,
                           "an XA call on a session that is not XA (use create_xa_session)");
    }
    return rec;
}

bool connection_core::xa(uint32_t channel) {
    lock l(mu_);
    return record_of(channel).xa;
}

void connection_core::xa_start(uint32_t channel, const native::xid& x, native::xa_start_flag flag) {
    lock l(mu_);
    xa_record_of(channel);
    call(l, channel, native::xa_start{x, flag});
    auto& rec = record_of(channel);
    auto key = xa_key(x);
    auto& b = rec.xa_branches[key];
    b.id = x;
    b.suspended = false;
    if (flag == native::xa_start_flag::join) {
        // The branch was forgotten at its xa_end and may hold work from before: a failover
        // while it is bound must doom it, or its prepare would commit only the later part.
        b.has_work = true;
    }
    rec.xa_bound = key;
}

void connection_core::xa_end(uint32_t channel, const native::xid& x, native::xa_end_flag flag) {
    lock l(mu_);
    auto& rec = xa_record_of(channel);
    auto key = xa_key(x);
    auto it = rec.xa_branches.find(key);
    if (it != rec.xa_branches.end() && it->second.doomed) {
        // Its work was lost in a failover: the server rolls it back at prepare or commit.
        flag = native::xa_end_flag::fail;
    }
    call(l, channel, native::xa_end{x, flag});
    auto& rec2 = record_of(channel);
    if (rec2.xa_bound == key) {
        rec2.xa_bound.clear();
    }
    if (flag == native::xa_end_flag::suspend) {
        if (auto it2 = rec2.xa_branches.find(key); it2 != rec2.xa_branches.end()) {
            it2->second.suspended = true;
        }
    } else {
        // Ended: from now on any session may prepare, commit or roll it back (§10), and this
        // one is not told. Recreating it at a failover could bring back a branch finished
        // elsewhere (refused as a duplicate when it was prepared, or found rollback-only by a
        // retried commit that had committed), so it is forgotten as Artemis's client forgets
        // its xid at end; its work, when a failover loses it, makes its prepare or commit
        // answer xa_unknown_xid on the new server.
        rec2.xa_branches.erase(key);
    }
}

void connection_core::xa_prepare(uint32_t channel, const native::xid& x) {
    lock l(mu_);
    xa_outcome(l, channel, x, native::xa_prepare{x});
}

void connection_core::xa_commit(uint32_t channel, const native::xid& x, bool one_phase) {
    lock l(mu_);
    xa_outcome(l, channel, x, native::xa_commit{x, one_phase});
}

void connection_core::xa_outcome(lock& l,
                                 uint32_t channel,
                                 const native::xid& x,
                                 native::packet_body body) {
    xa_record_of(channel);
    auto key = xa_key(x);
    try {
        call(l, channel, std::move(body), false, nullptr, true);
    } catch (const client_error& e) {
        // Kept only while the server still has the branch ended here; after XA_RETRY it is
        // prepared or gone on the new server, never to be recreated from this session.
        bool kept = e.kind() == error_kind::server
                    && e.server_code() != uint16_t(native::error_code::xa_unknown_xid);
        if (!kept) {
            record_of(channel).xa_branches.erase(key);
        }
        throw;
    }
    record_of(channel).xa_branches.erase(key);
}

void connection_core::xa_rollback(uint32_t channel, const native::xid& x) {
    lock l(mu_);
    xa_record_of(channel);
    auto key = xa_key(x);
    call(l, channel, native::xa_rollback{x});
    record_of(channel).xa_branches.erase(key);
}

std::vector<native::xid> connection_core::xa_recover(uint32_t channel) {
    lock l(mu_);
    xa_record_of(channel);
    std::vector<native::xid> out;
    call(l, channel, native::xa_recover{}, false, nullptr, false, &out);
    return out;
}

void connection_core::add_failure_listener(failure_listener l2) {
    lock l(mu_);
    failure_listeners_.push_back(std::move(l2));
}

std::string connection_core::node_id() {
    lock l(mu_);
    return machine_.node_id();
}

std::string connection_core::current_server() {
    lock l(mu_);
    return machine_.current().to_string();
}

std::string connection_core::backup_server() {
    lock l(mu_);
    auto b = machine_.backup();
    return b ? b->to_string() : std::string{};
}

} // namespace actormq::client::detail
