// SPDX-License-Identifier: Apache-2.0
// The connection's lanes (docs/journal.md, "The send lane", "The ACK lane"): a SEND or an ACK
// appended to the journal from the connection's Asio thread, and the RECEIPT written from the
// journal's thread when the output is idle. The rest of the connection is in connection.cpp.
#include "actors/broker/ack_lane.hpp"
#include "actors/broker/connection.hpp"
#include "actors/broker/send_lane.hpp"
#include "actors/journal/recovery.hpp"
#include "protocol/assert.hpp"
#include "protocol/errc.hpp"
#include "protocol/journal_format.hpp"

#include <boost/asio/post.hpp>
#include <caf/send.hpp>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>

namespace actormq {

namespace asio = boost::asio;

// -- the send lane (docs/journal.md, "The send lane") -----------------------------------------

bool connection::session_idle() const {
    auto batches = static_cast<uint32_t>(idle_mark_.load(std::memory_order_acquire));
    return lane_usable_ && session_ && !closing_ && batches != busy
           && batches == static_cast<uint32_t>(handed_batches_);
}

std::string connection::lane_candidate(const stomp::frame& f) const {
    // Only a synchronous durable SEND outside a transaction, with nothing of this session in
    // flight: everything else keeps the session's way, in order.
    if (f.cmd != stomp::command::send || !session_idle()) {
        return {};
    }
    const auto* dest = f.find("destination");
    const auto* persistent = f.find("persistent");
    if (dest == nullptr || f.find("receipt") == nullptr || persistent == nullptr
        || *persistent != "true" || f.find("transaction") != nullptr
        || f.find(duplicate_id_header) != nullptr || f.find("actormq-barrier") != nullptr) {
        return {};
    }
    return lane_address_of(*dest);
}

confirm_hook_ptr connection::lane_hook(std::shared_ptr<address_lane> lane,
                                       std::shared_ptr<lane_op> op,
                                       std::string receipt,
                                       uint64_t counted) {
    auto hook = std::make_shared<confirm_hook>();
    auto self = shared_from_this();
    // Both run on the journal's thread: the RECEIPT once the append is confirmed (synced, and
    // acknowledged by a replicating backup), the message to its address either way.
    hook->run = [self, lane, op, out = std::move(receipt), counted]() mutable {
        // The client first: written from here when the output is idle, the RECEIPT costs no
        // wake-up of the Asio thread before the client has it; the strand still does the
        // bookkeeping (the frame's bytes, frames held behind the lane) after.
        self->receipt_from_journal(std::move(out), counted, false);
        if (auto a = lane->owner_handle()) {
            caf::anon_send(a, lane_atom::value, op);
        }
    };
    hook->refused = [self, lane, op, counted] {
        op->ok = false;
        op->msg = nullptr;
        if (auto a = lane->owner_handle()) {
            caf::anon_send(a, lane_atom::value, op);
        }
        asio::post(self->socket_.get_executor(),
                   [self, name = lane->address, counted] { self->on_lane_failed(name, counted); });
    };
    return hook;
}

void connection::receipt_from_journal(std::string receipt, uint64_t counted, bool ack) {
    auto how = write_direct(receipt, counted, ack);
    if (how != direct::no) {
        receipt.clear();
    }
    if (how != direct::settled) {
        asio::post(socket_.get_executor(), [self = shared_from_this(), out = std::move(receipt),
                                            counted, how, ack]() mutable {
            if (ack) {
                self->ack_confirmed(1);
            }
            self->on_lane_done(std::move(out), counted, how == direct::no);
        });
    }
}

bool connection::try_lane(stomp::frame& f, uint64_t frame_bytes) {
    auto name = lane_candidate(f);
    if (name.empty()) {
        return false;
    }
    auto lane = ctx_->lanes->find(name);
    if (!lane || !lane->is_open()) {
        return false;
    }
    // Built from a copy: when the lane turns it down below, the frame goes to the session whole.
    stomp::frame copy = f;
    destination_ref d;
    d.address = name;
    auto m = make_broker_message(*ctx_, id_, copy, d);
    auto bytes = m->memory_bytes();
    if (!lane->reserve(bytes)) {
        return false;
    }
    auto op_id = lane->enter();
    if (!op_id) {
        lane->release(bytes);
        return false;
    }
    journal::record r;
    r.type = journal::record_type::add_message;
    r.payload = journal::encode_payload(journal::message_payload{
        m->id, m->address, m->destination, m->headers, m->body, {lane->queue_name}});
    std::string out;
    stomp::append_command(out, stomp::command::receipt);
    stomp::append_header(out, "receipt-id", *f.find("receipt"), version_);
    stomp::append_body(out, {});
    auto op = std::make_shared<lane_op>();
    op->id = *op_id;
    op->msg = std::move(m);
    op->bytes = bytes;
    // The frame's share of the bytes read (a frame begun in an earlier read was partly handed
    // over with that read's batch).
    auto counted = std::min(frame_bytes, unhanded_bytes_);
    unhanded_bytes_ -= counted;
    auto hook = lane_hook(lane, op, std::move(out), counted);
    // No answer is asked for: the hook is the answer, run or refused (or refused when the
    // message is dropped because the journal stopped, ~confirm_hook).
    caf::anon_send(ctx_->journal, append_atom::value, std::vector<journal::record>{std::move(r)},
                   true, std::move(hook));
    lane->accepted.fetch_add(1, std::memory_order_relaxed);
    ++lane_in_flight_;
    ++lane_sends_;
    unconfirmed_bytes_ += counted;
    return true;
}

// -- the ACK lane (docs/journal.md, "The ACK lane") -------------------------------------------

bool connection::try_ack_lane(stomp::frame& f, uint64_t frame_bytes) {
    // Only an ACK outside a transaction, with nothing of this session in flight (a NACK, a
    // transactional ACK and everything else keep the session's way, in order), of a delivery
    // the session registered for the lane.
    if (!acks_ || f.cmd != stomp::command::ack || f.find("transaction") != nullptr
        || f.find("actormq-barrier") != nullptr || !session_idle()) {
        return false;
    }
    const auto* id = f.find("id");
    uint64_t ack_id = 0;
    if (id == nullptr
        || std::from_chars(id->data(), id->data() + id->size(), ack_id).ec != std::errc{}) {
        return false;
    }
    auto e = acks_->take(ack_id);
    if (!e) {
        return false; // Not registered (or acknowledged already): the session answers it.
    }
    journal::record r;
    r.type = journal::record_type::ack;
    r.payload = journal::encode_payload(journal::ack_payload{e->queue->queue_name, e->msg_id});
    std::string out;
    if (const auto* receipt = f.find("receipt")) {
        stomp::append_command(out, stomp::command::receipt);
        stomp::append_header(out, "receipt-id", *receipt, version_);
        stomp::append_body(out, {});
    }
    auto counted = std::min(frame_bytes, unhanded_bytes_);
    unhanded_bytes_ -= counted;
    auto hook = ack_hook(std::move(e->queue), e->msg_id, std::move(out), counted);
    // Synchronous, as the queue's own ack append: the hook runs once the record is on disk
    // (and held by a replicating backup), or refuses.
    caf::anon_send(ctx_->journal, append_atom::value, std::vector<journal::record>{std::move(r)},
                   true, std::move(hook));
    ++lane_in_flight_;
    ++lane_acks_;
    unconfirmed_bytes_ += counted;
    ack_deadlines_.push_back(std::chrono::steady_clock::now() + ctx_->request_timeout());
    arm_ack_watchdog();
    return true;
}

void connection::ack_confirmed(uint64_t n) {
    // The journal confirms one connection's appends in the order they were made.
    for (; n > 0 && !ack_deadlines_.empty(); --n) {
        ack_deadlines_.pop_front();
    }
}

void connection::arm_ack_watchdog() {
    if (ack_watchdog_armed_ || ack_deadlines_.empty()) {
        return;
    }
    ack_watchdog_armed_ = true;
    ack_timer_.expires_at(ack_deadlines_.front());
    ack_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        self->ack_watchdog_armed_ = false;
        if (ec || self->closed_ || self->closing_) {
            return;
        }
        self->collect_direct();
        if (!self->ack_deadlines_.empty()
            && self->ack_deadlines_.front() <= std::chrono::steady_clock::now()) {
            // As the session's watchdog answers an ACK its queue did not answer in time
            // (docs/stomp.md §6): nothing is confirmed, and the connection ends.
            self->ack_deadlines_.clear();
            self->fail("acknowledgement failed", to_string(errc::request_timeout));
            return;
        }
        self->arm_ack_watchdog();
    });
}

confirm_hook_ptr connection::ack_hook(std::shared_ptr<queue_ack_lane> queue,
                                      uint64_t msg_id,
                                      std::string receipt,
                                      uint64_t counted) {
    auto hook = std::make_shared<confirm_hook>();
    // A consumer's ACK for group commit, though it has a hook (journal.md, "Producers first").
    hook->producer = false;
    auto self = shared_from_this();
    hook->run = [self, queue, msg_id, out = std::move(receipt), counted]() mutable {
        // The queue first: once the client may hear of the ACK (its RECEIPT) or act on it (a
        // disconnect), the message must not come back. The doorbell only when the queue needs
        // the news now; otherwise its next message takes it along (ack_lane.hpp).
        if (queue->add(msg_id)) {
            if (auto q = caf::actor_cast<queue_actor>(queue->owner)) {
                caf::anon_send(q, enqueue_atom::value, std::vector<message_ptr>{});
            }
        }
        if (out.empty()) {
            if (!self->settle_direct(counted)) {
                asio::post(self->socket_.get_executor(),
                           [self, counted] { self->on_ack_lane_done(counted); });
            }
            return;
        }
        self->receipt_from_journal(std::move(out), counted, true);
    };
    hook->refused = [self, counted] {
        asio::post(self->socket_.get_executor(),
                   [self, counted] { self->on_ack_lane_failed(counted); });
    };
    return hook;
}

bool connection::settle_direct(uint64_t counted) {
    std::lock_guard<std::mutex> g(direct_mu_);
    if (!direct_quiet_) {
        return false;
    }
    ++direct_done_;
    ++direct_done_acks_;
    direct_done_bytes_ += counted;
    return true;
}

void connection::on_ack_lane_done(uint64_t frame_bytes) {
    ack_confirmed(1);
    collect_direct();
    ACTORMQ_ASSERT(lane_in_flight_ > 0);
    --lane_in_flight_;
    release_held();
    confirm(frame_bytes);
    publish_quiet();
}

void connection::on_ack_lane_failed(uint64_t frame_bytes) {
    collect_direct();
    ACTORMQ_ASSERT(lane_in_flight_ > 0);
    --lane_in_flight_;
    confirm(frame_bytes);
    // As the session answers an ACK its queue could not journal: nothing is confirmed, and
    // the message comes back to the next consumer.
    fail("acknowledgement failed", to_string(errc::journal_failed));
}

connection::direct connection::write_direct(const std::string& bytes, uint64_t counted, bool ack) {
    // Read once: a switch for measuring the strand's way against this one.
    static const bool enabled = [] {
        const char* v = std::getenv("ACTORMQ_LANE_DIRECT");
        return v == nullptr || std::strcmp(v, "0") != 0;
    }();
    std::lock_guard<std::mutex> g(direct_mu_);
    if (!enabled || !direct_ok_ || direct_posts_ > 0) {
        // Counted under the lock: until the strand has written this RECEIPT, a later one
        // must not go straight to the socket and overtake it.
        ++direct_posts_;
        return direct::no;
    }
    size_t done = 0;
    while (done < bytes.size()) {
        auto n = ::send(socket_.native_handle(), bytes.data() + done, bytes.size() - done,
                        MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            done += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            break; // Full (EAGAIN) or failing: the strand's write finds out which.
        }
    }
    if (done == 0) {
        ++direct_posts_;
        return direct::no;
    }
    lane_direct_.fetch_add(1, std::memory_order_relaxed);
    if (done < bytes.size()) {
        direct_rest_.assign(bytes, done, std::string::npos);
        direct_ok_ = false;
        return direct::written;
    }
    if (!direct_quiet_) {
        return direct::written;
    }
    ++direct_done_;
    direct_done_acks_ += ack ? 1 : 0;
    direct_done_bytes_ += counted;
    return direct::settled;
}

void connection::collect_direct() {
    uint64_t sends = 0;
    uint64_t acks = 0;
    uint64_t bytes = 0;
    {
        std::lock_guard<std::mutex> g(direct_mu_);
        // Until publish_quiet says otherwise, every SEND done is posted.
        direct_quiet_ = false;
        sends = direct_done_;
        acks = direct_done_acks_;
        bytes = direct_done_bytes_;
        direct_done_ = 0;
        direct_done_acks_ = 0;
        direct_done_bytes_ = 0;
    }
    if (sends == 0) {
        return;
    }
    ACTORMQ_ASSERT(lane_in_flight_ >= sends);
    lane_in_flight_ -= sends;
    ack_confirmed(acks);
    wrote_since_tick_ = true;
    // Not confirm(): the caller decides about reading (on_read must parse its buffer first).
    unconfirmed_bytes_ -= std::min(bytes, unconfirmed_bytes_);
}

void connection::publish_quiet() {
    std::lock_guard<std::mutex> g(direct_mu_);
    direct_quiet_ = reading_ && held_.empty() && !closing_ && !closed_;
}

void connection::take_direct_rest() {
    std::lock_guard<std::mutex> g(direct_mu_);
    if (!direct_rest_.empty()) {
        lane_bytes_out_ += direct_rest_.size();
        out_.append(std::move(direct_rest_));
        direct_rest_.clear();
        direct_ok_ = false;
    }
}

void connection::publish_direct(bool ok) {
    std::lock_guard<std::mutex> g(direct_mu_);
    direct_ok_ = ok && direct_rest_.empty();
}

void connection::on_lane_done(std::string receipt, uint64_t frame_bytes, bool lane_post) {
    collect_direct();
    ACTORMQ_ASSERT(lane_in_flight_ > 0);
    --lane_in_flight_;
    if (lane_post) {
        lane_bytes_out_ += receipt.size();
        write(std::move(receipt));
        // Only now, with the RECEIPT queued (the output is not idle), may a later one go
        // straight to the socket.
        std::lock_guard<std::mutex> g(direct_mu_);
        --direct_posts_;
    } else {
        wrote_since_tick_ = true;
        write({}); // What the socket did not take of it, if anything.
    }
    release_held();
    confirm(frame_bytes);
    publish_quiet();
}

void connection::release_held() {
    if (lane_in_flight_ == 0 && !held_.empty() && session_ && !closed_) {
        auto bytes = held_bytes_;
        held_bytes_ = 0;
        unconfirmed_bytes_ -= std::min(bytes, unconfirmed_bytes_); // hand_over counts them again
        hand_over(std::move(held_), bytes);
        held_.clear();
    }
}

void connection::on_lane_failed(const std::string& address, uint64_t frame_bytes) {
    collect_direct();
    ACTORMQ_ASSERT(lane_in_flight_ > 0);
    --lane_in_flight_;
    confirm(frame_bytes);
    // As the session answers a route its address could not journal: nothing is confirmed.
    fail("cannot route to '" + address + "'", to_string(errc::journal_failed));
}

} // namespace actormq
