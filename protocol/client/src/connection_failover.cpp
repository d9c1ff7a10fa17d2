// SPDX-License-Identifier: Apache-2.0
// How the connection carries out what its failover_machine decides (docs/protocol.md §14, §17):
// connect, drop the socket, reattach or recreate the sessions, unblock the calls in flight and
// tell the failure listeners. Member functions of connection_core (connection_core.cpp,
// connection_reading.cpp and connection_calls.cpp have the rest).
#include "connection_core.hpp"

#include <sys/socket.h>
#include <unistd.h>

namespace actormq::client::detail {

void connection_core::feed(lock& l, const event& e) {
    auto actions = machine_.handle(e);
    if (actions.empty() && std::holds_alternative<ev_packet>(e)) {
        return; // only the time of the last packet changed: nothing to run, nobody to wake
    }
    run(l, actions);
}

void connection_core::run(lock& l, const std::vector<action>& actions) {
    for (auto& a : actions) {
        if (auto* c = std::get_if<act_connect>(&a)) {
            next_connect_ = *c;
        } else if (std::holds_alternative<act_drop_socket>(a)) {
            drop_socket();
        } else if (std::holds_alternative<act_send_ping>(a)) {
            write(native::make_packet(native::ping{uint64_t(now_ms())}));
        } else if (std::holds_alternative<act_reattach_sessions>(a)) {
            reattach_sessions(l);
        } else if (std::holds_alternative<act_recreate_sessions>(a)) {
            recreate_sessions(l);
        } else if (std::holds_alternative<act_unblock>(a)) {
            unblock_all(error_kind::unblocked, "the connection failed over during the call");
        } else if (auto* n = std::get_if<act_notify>(&a)) {
            for (auto& f : failure_listeners_) {
                after_unlock_.emplace_back([f, ev = n->event, why = n->reason] { f(ev, why); });
            }
        } else if (auto* g = std::get_if<act_give_up>(&a)) {
            dead_.emplace(g->kind, g->reason);
            unblock_all(g->kind, g->reason);
            first_done_ = true;
        }
    }
    cv_.notify_all();
    if (!after_unlock_.empty() && std::this_thread::get_id() == io_.get_id()) {
        // Listeners run without the lock, so they may call the library.
        auto calls = std::move(after_unlock_);
        after_unlock_.clear();
        l.unlock();
        for (auto& c : calls) {
            try {
                c();
            } catch (...) {
                // A listener's exception must not kill the I/O thread.
            }
        }
        l.lock();
    }
}

void connection_core::drop_socket() {
    if (fd_ >= 0) {
        if (reader_ != reader_kind::none && zombie_fd_ < 0) {
            // Another thread polls it without the lock: closed now, its number could name the
            // next connection's socket before that thread reads. It wakes and closes it.
            ::shutdown(fd_, SHUT_RDWR);
            zombie_fd_ = fd_;
        } else {
            ::close(fd_);
        }
        fd_ = -1;
    }
    rx_.clear();
    handed_to_io_ = false;
    caller_read_failure_.reset();
    out_.clear(); // the window replays what matters on a reattach; a failover recreates
    for (auto& [ch, s] : sessions_) {
        s.attached = false;
    }
    reattaching_ = 0;
    recreating_ = 0;
}

void connection_core::reattach_sessions(lock& l) {
    reattach_all_found_ = true;
    reattaching_ = 0;
    for (auto& [ch, s] : sessions_) {
        if (s.closed) {
            continue;
        }
        if (!s.out.enabled()) {
            reattach_all_found_ = false;
            continue;
        }
        ++reattaching_;
        write(native::make_packet(
            ch, 0, native::reattach_session{record_of(ch).name, s.in.last_received()}));
    }
    if (reattaching_ == 0) {
        feed(l, ev_reattached{reattach_all_found_, now_ms()});
    }
}

void connection_core::recreate_sessions(lock& l) {
    recreating_ = 0;
    recreate_ok_ = true;
    std::vector<std::pair<uint32_t, native::packet_body>> todo;
    for (auto& [ch, s] : sessions_) {
        if (s.closed || s.attached) {
            continue;
        }
        s.next_sequence = 1;
        // Deliveries of the old incarnation are void: the new server redelivers them. A
        // reattached session keeps its generation, so nothing of it is dropped (§14).
        s.generation = ++generation_;
        s.out.reset();
        s.in.reset();
        s.attached = true;
        s.acks_pending = false;
        auto& rec = record_of(ch);
        for (auto& [k, c] : consumers_) {
            if (k.first == ch) {
                c.buffer.clear(); // the new server redelivers them
                c.consumed_bytes = 0;
                c.unacked.clear(); // and their acks, pending or not, mean nothing there
                c.ack_through.reset();
            }
        }
        for (auto& [k, p] : producers_) {
            if (k.first == ch) {
                p.credit = 0; // the new server grants afresh
            }
        }
        for (auto& body : recreation_packets(rec)) {
            if (auto* cs = std::get_if<native::create_session>(&body)) {
                cs->confirmation_window_bytes = options_.confirmation_window_size;
            }
            if (auto* cc = std::get_if<native::create_consumer>(&body)) {
                // §2: a version 1 server has no pre-acknowledge; this client acks on arrival.
                cc->pre_acknowledge = cc->pre_acknowledge && server_pre_acks();
            }
            todo.emplace_back(ch, std::move(body));
        }
    }
    for (auto& [ch, body] : todo) {
        // `start` gets no ok (docs/protocol.md §4): waiting for one kept a started connection
        // failing over until callTimeout, and its consumers' acks timed out meanwhile.
        bool answered = !std::holds_alternative<native::start>(body);
        auto seq = send_stream(l, ch, std::move(body));
        if (answered) {
            pending_[{ch, seq}].internal = true;
            ++recreating_;
        }
    }
    if (recreating_ == 0) {
        feed(l, ev_recreated{true, now_ms()});
    }
}

void connection_core::unblock_all(error_kind kind, const std::string& why) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        auto& p = it->second;
        if (p.internal) {
            it = pending_.erase(it);
            continue;
        }
        auto k = kind;
        if (kind == error_kind::unblocked && p.is_xa_outcome) {
            k = error_kind::xa_retry; // prepared or not, committed or not: nobody knows yet
        } else if (kind == error_kind::unblocked && p.is_commit) {
            k = error_kind::transaction_rolled_back;
        }
        auto e = error_ptr(k, why);
        if (p.completion) {
            auto done = std::move(p.completion);
            --async_pending_;
            after_unlock_.emplace_back([done, e] { done(e); });
            it = pending_.erase(it);
            continue;
        }
        p.done = true;
        p.error = e;
        ++it;
    }
    cv_.notify_all();
}

} // namespace actormq::client::detail
