// SPDX-License-Identifier: Apache-2.0
#pragma once

// The ACK lane (docs/journal.md, "The ACK lane"): a STOMP 1.2 ACK of a client-individual
// subscription on a durable anycast queue is turned into its journal record on the consumer
// connection's Asio thread and appended from there, without the session's and the queue's
// mailboxes. Two shared objects make that possible:
//
// - `session_ack_lane`, one per STOMP connection: the deliveries the session handed to the
//   client that the lane may acknowledge (ack id -> subscription, message, queue). The session
//   registers a delivery before it posts the MESSAGE's bytes, so the client can never ACK one
//   that is not registered yet; whoever takes an entry out first (the lane on the Asio thread,
//   or the session for a NACK, a transactional ACK, an UNSUBSCRIBE) owns that acknowledgement,
//   the other finds it gone.
// - `queue_ack_lane`, one per durable anycast queue: the message ids whose ack records the
//   journal has confirmed and that the queue has not applied yet. The journal's thread adds to
//   it (the lane's confirm_hook), the queue takes everything in it at the start of every
//   message it handles, before it looks at its in-flight messages or its consumers. A doorbell
//   (an empty enqueue) is sent only when the queue needs the news soon: a consumer waits for
//   room in its window while messages are pending, the address is over its space mark, or the
//   list holds `bell_after` ids. In a steady flow the queue's next enqueue takes them along.
//
// Memory ordering: both objects are guarded by their own mutex, and nothing is read outside it
// except the counters. The mutex's release/acquire is what makes a registration visible to the
// Asio thread (registered, then the MESSAGE posted and written, then the ACK read), and an
// acknowledged id visible to the queue before anything the client does after the RECEIPT (the
// hook adds the id, then writes or posts the RECEIPT; a disconnect after it reaches the queue
// later, and the queue takes the list before it puts in-flight messages back).

#include <caf/actor_addr.hpp>
#include <caf/fwd.hpp>

#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace actormq {

/// What one durable anycast queue shares with the ACK lane.
struct queue_ack_lane {
    /// Acknowledged ids waiting beyond this many ring the doorbell even when nothing waits
    /// for them: the queue's memory and its address's size account lag by at most this much.
    static constexpr size_t bell_after = 64;

    /// The queue's name (the ack record's queue); fixed at construction.
    std::string queue_name;
    /// The queue actor (weak).
    caf::actor_addr owner;

    /// Adds `msg_id`, whose ack record is on disk (the journal's thread); true if the caller
    /// must ring the doorbell (send the queue an empty enqueue).
    bool add(uint64_t msg_id) {
        std::lock_guard<std::mutex> g{mu_};
        acked_.push_back(msg_id);
        if (bell_ || !(want_bell_ || acked_.size() >= bell_after)) {
            return false;
        }
        bell_ = true;
        return true;
    }

    /// Everything acknowledged so far (the queue, at the start of each message it handles).
    std::vector<uint64_t> take() {
        std::lock_guard<std::mutex> g{mu_};
        bell_ = false;
        return std::exchange(acked_, {});
    }

    /// The queue says whether it needs acknowledgements at once (at the end of each message
    /// it handles); true if ids came in meanwhile that it must fetch itself (a doorbell to
    /// itself), which the adder, having seen `want` false, did not ring for.
    bool settle(bool want) {
        std::lock_guard<std::mutex> g{mu_};
        want_bell_ = want;
        if (!want || acked_.empty() || bell_) {
            return false;
        }
        bell_ = true;
        return true;
    }

private:
    std::mutex mu_;
    std::vector<uint64_t> acked_;
    bool want_bell_ = false;
    /// A doorbell is on its way (cleared by take()).
    bool bell_ = false;
};

/// The ACK lanes of one server instance's queues by actor id; queues add themselves at start
/// and remove themselves when they end; sessions look them up once per subscription.
class ack_lane_registry {
public:
    void add(uint64_t queue_id, std::shared_ptr<queue_ack_lane> lane) {
        std::lock_guard<std::mutex> g{mu_};
        lanes_[queue_id] = std::move(lane);
    }

    void remove(uint64_t queue_id) {
        std::lock_guard<std::mutex> g{mu_};
        lanes_.erase(queue_id);
    }

    std::shared_ptr<queue_ack_lane> find(uint64_t queue_id) const {
        std::lock_guard<std::mutex> g{mu_};
        auto i = lanes_.find(queue_id);
        return i == lanes_.end() ? nullptr : i->second;
    }

private:
    mutable std::mutex mu_;
    std::unordered_map<uint64_t, std::shared_ptr<queue_ack_lane>> lanes_;
};

/// One delivery the ACK lane may acknowledge.
struct ack_lane_entry {
    /// The session's subscription key.
    uint64_t key = 0;
    uint64_t msg_id = 0;
    std::shared_ptr<queue_ack_lane> queue;
};

/// What one STOMP connection's session shares with the connection's ACK lane.
class session_ack_lane {
public:
    /// Registers deliveries (the session, before it posts their MESSAGEs).
    void add(const std::vector<std::pair<uint64_t, ack_lane_entry>>& entries) {
        std::lock_guard<std::mutex> g{mu_};
        for (const auto& [ack_id, e] : entries) {
            entries_.emplace(ack_id, e);
        }
    }

    /// Takes the delivery `ack_id` out; nullopt if it is not (or no longer) there.
    std::optional<ack_lane_entry> take(uint64_t ack_id) {
        std::lock_guard<std::mutex> g{mu_};
        auto i = entries_.find(ack_id);
        if (i == entries_.end()) {
            return std::nullopt;
        }
        auto e = std::move(i->second);
        entries_.erase(i);
        return e;
    }

    /// The subscription key of `ack_id`, if it is registered.
    std::optional<uint64_t> key_of(uint64_t ack_id) const {
        std::lock_guard<std::mutex> g{mu_};
        auto i = entries_.find(ack_id);
        return i == entries_.end() ? std::nullopt : std::optional<uint64_t>{i->second.key};
    }

    /// Forgets every delivery of subscription `key` (it ends; the queue puts them back).
    void drop_key(uint64_t key) {
        std::lock_guard<std::mutex> g{mu_};
        for (auto i = entries_.begin(); i != entries_.end();) {
            i = i->second.key == key ? entries_.erase(i) : std::next(i);
        }
    }

    size_t size() const {
        std::lock_guard<std::mutex> g{mu_};
        return entries_.size();
    }

private:
    mutable std::mutex mu_;
    std::unordered_map<uint64_t, ack_lane_entry> entries_;
};

} // namespace actormq
