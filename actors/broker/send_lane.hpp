// SPDX-License-Identifier: Apache-2.0
#pragma once

// The send lane (docs/journal.md, "The send lane"): a synchronous durable STOMP SEND whose
// session has nothing else in flight is appended to the journal from its connection's Asio
// thread, without the session's and the address's mailboxes. The address publishes what the
// Asio thread needs (an open/closed switch, its sequence of operations, its size account) in
// an `address_lane`; the journal confirms the append, posts the RECEIPT to the connection and
// hands the message to the address, which puts it in its place in its order of operations.

#include "actors/broker/server_context.hpp"
#include "actors/fwd.hpp"

#include <caf/actor_cast.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/weak_intrusive_ptr.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace actormq {

/// The journal confirmed (or refused) a message the send lane accepted for an address.
using lane_atom = caf::atom_constant<caf::atom("lane")>;

/// What the lane hands the address once the journal answered: the operation's place in the
/// address's order, the message, and the bytes the lane reserved for it.
struct lane_op {
    uint64_t id = 0;
    message_ptr msg;
    int64_t bytes = 0;
    /// False: the journal refused the append (it failed); nothing of it is stored.
    bool ok = true;
};

using lane_op_ptr = std::shared_ptr<lane_op>;

} // namespace actormq

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::lane_op_ptr)

namespace actormq {

/// An address as the send lane sees it: the address's own interface plus the lane's answer.
using address_lane_actor = address_actor::extend<caf::reacts_to<lane_atom, lane_op_ptr>>;

/// What one address publishes for the send lane. Written by the address actor; read and
/// drawn from by connections' Asio threads and the journal's thread.
///
/// `word` holds the next operation id of the address and, in its top bit, whether the lane is
/// closed. Every operation of the address draws its id here (the address's own with draw(),
/// the lane's with enter(), which fails while closed), so one atomic orders them all: an
/// operation the address starts after closing the lane (the first paged message, a producer
/// held back) has a larger id than every lane operation, and the address completes its
/// operations in id order.
struct address_lane {
    static constexpr uint64_t closed_bit = uint64_t{1} << 63;

    /// The address's name and the name of its durable anycast queue (the journal records'
    /// queue); fixed at construction.
    std::string address;
    std::string queue_name;
    /// The address's size account (the one its queues subtract from).
    std::shared_ptr<address_usage> usage;
    /// The address actor; weak, as the address owns this object.
    caf::weak_actor_ptr owner;
    std::atomic<uint64_t> word{closed_bit | 1};
    /// The address was removed: the lane never opens again.
    std::atomic<bool> retired{false};
    /// Messages the lane accepted for this address (status, tests).
    std::atomic<uint64_t> accepted{0};

    /// The address's next operation id (open or closed).
    uint64_t draw() { return word.fetch_add(1, std::memory_order_acq_rel) & ~closed_bit; }

    /// The lane's next operation id, or nullopt while the lane is closed.
    std::optional<uint64_t> enter() {
        auto w = word.load(std::memory_order_acquire);
        while ((w & closed_bit) == 0) {
            if (word.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel)) {
                return w;
            }
        }
        return std::nullopt;
    }

    /// Opens or closes the lane (the address only).
    void set_open(bool open) {
        if (open && !retired.load(std::memory_order_relaxed)) {
            word.fetch_and(~closed_bit, std::memory_order_acq_rel);
        } else {
            word.fetch_or(closed_bit, std::memory_order_acq_rel);
        }
    }

    bool is_open() const { return (word.load(std::memory_order_acquire) & closed_bit) == 0; }

    /// Counts `bytes` against max-size-bytes if they fit under it; false (nothing counted)
    /// if they do not. Stricter than the address's own check (which lets a batch pass the
    /// maximum by one message): the lane never takes the address past it.
    bool reserve(int64_t bytes) {
        auto& b = usage->bytes;
        if (usage->max_bytes < 0) {
            b.fetch_add(bytes, std::memory_order_relaxed);
            return true;
        }
        auto cur = b.load(std::memory_order_relaxed);
        while (cur + bytes <= usage->max_bytes) {
            if (b.compare_exchange_weak(cur, cur + bytes, std::memory_order_relaxed)) {
                return true;
            }
        }
        return false;
    }

    /// Gives back what reserve() counted.
    void release(int64_t bytes) { usage->bytes.fetch_sub(bytes, std::memory_order_relaxed); }

    /// The address actor, if it is still there.
    address_lane_actor owner_handle() const {
        return caf::actor_cast<address_lane_actor>(owner.lock());
    }
};

/// The anycast address a STOMP destination names when the send lane may take it: "/queue/X"
/// or a bare "X" (as session_state::resolve reads them), not a temporary one (those are not
/// durable); "" otherwise.
std::string lane_address_of(const std::string& destination);

} // namespace actormq
