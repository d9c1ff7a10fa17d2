// SPDX-License-Identifier: Apache-2.0
// The calls of the public API (client.hpp) on the connection: sessions, producers and sends,
// consumers, receive, listeners and acknowledgements, queues, local transactions and XA
// (docs/protocol.md §4-§11, §17). Each takes the connection's lock and writes through
// connection_core.cpp's caller side. Member functions of connection_core.
#include "connection_core.hpp"
#include "connection_io.hpp"

#include <cstdio>
#include <mutex>
#include <random>
#include <utility>

namespace actormq::client::detail {

namespace {

/// A random 128-bit name in hex: a session's name, a producer's duplicate-id prefix.
std::string make_uuid() {
    static std::mutex mu;
    static std::mt19937_64 rng{std::random_device{}()};
    std::lock_guard<std::mutex> g(mu);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    return buf;
}

} // namespace

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
    if (out_.size() >= connection_io::out_flush_bytes) {
        callers_flushed_ = true;
        flush_out();
    } else if (before == 0 && !io_lingering_) {
        wake_io();
    }
}

uint32_t connection_core::create_consumer(uint32_t channel,
                                          const std::string& queue,
                                          const std::string& filter,
                                          std::optional<bool> pre_ack) {
    lock l(mu_);
    await_usable(l); // the server's version decides how a pre-acknowledge consumer is made
    auto id = session_of(channel).next_id++;
    bool pre = pre_ack.value_or(options_.pre_acknowledge);
    // §2, §6: a version 1 server has no pre-acknowledge; this client then acks on arrival.
    consumers_[{channel, id}].pre_ack = pre;
    try {
        call(l, channel,
             native::create_consumer{id, queue, filter, options_.consumer_window_size, false,
                                     pre && server_pre_acks()});
    } catch (...) {
        consumers_.erase({channel, id});
        throw;
    }
    record_of(channel).consumers[id] =
        consumer_record{queue, filter, options_.consumer_window_size, false, pre};
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
    give_credit(l, channel, id, it->second);
    return m;
}

void connection_core::give_credit(lock& l, uint32_t channel, uint32_t id, consumer_rt& c) {
    // Give credit back once half the window is consumed (§6), as Artemis does.
    auto window = options_.consumer_window_size;
    if (window > 0 && c.consumed_bytes >= window / 2 && fd_ >= 0
        && machine_.state() == link_state::connected) {
        auto bytes = uint32_t(c.consumed_bytes);
        c.consumed_bytes = 0;
        send_stream(l, channel, native::credit{id, bytes}, nullptr, true);
    }
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
    if (auto pre = consumers_.find({channel, m.consumer_id});
        pre != consumers_.end() && pre->second.pre_ack) {
        // §8: the server acknowledged it when it sent it (or, from a version 1 server, this
        // client did on arrival); as in Artemis, nothing is left to do, not even in a
        // transaction, and nothing waits for a failover to end.
        return;
    }
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
