// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/broker/ack_lane.hpp"
#include "actors/broker/server_context.hpp"
#include "actors/fwd.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace actormq {

/// Everything a queue actor owns: waiting messages in order, consumers with their windows,
/// and messages delivered but not yet acknowledged.
struct queue_state {
    static inline const char* name = "queue";

    /// A message waiting in the queue.
    struct entry {
        message_ptr msg;
        uint32_t delivery_count = 0;
    };

    /// A consumer: the session, its subscription key and its window.
    struct consumer {
        session_actor session;
        consumer_spec spec;
        /// Messages handed over and not yet acked (client modes) or credited (auto).
        uint32_t outstanding = 0;

        bool has_room() const { return spec.window == 0 || outstanding < spec.window; }
    };

    /// A delivered, unacknowledged message and who has it.
    struct in_flight_entry {
        entry e;
        caf::actor_addr session;
        uint64_t key = 0;
    };

    std::shared_ptr<server_context> ctx;
    std::shared_ptr<address_usage> usage;
    address_actor owner;
    queue_stats stats;
    std::deque<entry> pending;
    std::vector<consumer> consumers;
    size_t next_consumer = 0;
    std::unordered_map<uint64_t, in_flight_entry> in_flight;
    std::unordered_set<caf::actor_addr> monitored;
    /// Set when a release took the address from full to not full; dispatch tells the address.
    bool crossed_below = false;
    /// Set when assign stopped at its batch limit with messages and room left.
    bool more_ready = false;
    /// Whether persistent messages in this queue are journaled (acks then write records).
    bool durable = false;
    /// See queue_args::space_mark.
    int64_t space_mark = -1;
    /// Messages acknowledged by prepared XA transactions, by transaction id (never delivered
    /// until the rollback).
    std::map<uint64_t, std::vector<entry>> held;
    /// Messages prepared transactions routed here before a restart, by transaction id
    /// (recovery's `staged`), released at the commit.
    std::map<uint64_t, std::vector<message_ptr>> staged;
    /// Ack records collected while handling one message, appended once at its end.
    std::vector<journal::record> ack_records;
    /// The ACK lane's view of this queue (ack_lane.hpp); durable anycast queues only.
    std::shared_ptr<queue_ack_lane> ack_lane;

    /// Notes that this queue is done with `m` (an ack record when it is durable).
    void consumed(const broker_message& m);

    /// The ack records collected so far, leaving none behind.
    std::vector<journal::record> take_ack_records() { return std::exchange(ack_records, {}); }

    /// Journals the end of a durable queue being deleted (acks for what it holds, then its
    /// binding); afterwards the queue is no longer durable.
    void forget_durable();

    /// Adds messages at the tail.
    void enqueue(std::vector<message_ptr>& msgs);

    /// Assigns waiting messages to consumers with room, round-robin, one message at a time,
    /// and returns one batch per consumer (index into `consumers`, deliveries).
    std::vector<std::pair<size_t, std::vector<delivery>>> assign();

    /// Finds the consumer (session, key); nullptr if it is gone.
    consumer* find(const caf::actor_addr& session, uint64_t key);

    /// Removes the consumer and puts its in-flight messages back at the head, in order.
    void remove_consumer(const caf::actor_addr& session, uint64_t key);

    /// Removes every consumer of a session (it went down).
    void remove_session(const caf::actor_addr& session);

    /// Acknowledges messages: they leave the queue. Unknown ids are ignored.
    void ack(const caf::actor_addr& session, uint64_t key, const std::vector<uint64_t>& ids);

    /// Applies acknowledgements the ACK lane made durable (their records are in the journal
    /// already): each message leaves wherever it is, in flight to any consumer or, when its
    /// consumer left before the record was confirmed, back in `pending`.
    void apply_lane_acks(const std::vector<uint64_t>& ids);

    /// Takes and applies what the ACK lane made durable since the last look.
    void take_lane_acks() {
        if (ack_lane) {
            apply_lane_acks(ack_lane->take());
        }
    }

    /// Whether acknowledgements must reach this queue at once: a consumer waits for room while
    /// messages are pending, or the address holds more than its space mark.
    bool needs_acks_now() const;

    /// Moves acknowledged messages to `held[tx_id]` (with their ack records collected).
    void hold(const caf::actor_addr& session,
              uint64_t key,
              const std::vector<uint64_t>& ids,
              uint64_t tx_id);

    /// Ends the prepared transaction `tx_id` here: commit drops its held messages and enqueues
    /// its staged ones; rollback requeues the held ones and drops the staged ones.
    void finish_prepared(uint64_t tx_id, bool commit);

    /// Puts messages back at the head for redelivery.
    void nack(const caf::actor_addr& session, uint64_t key, const std::vector<uint64_t>& ids);

    /// Subtracts `bytes` from the address's usage; notes when that took it below its max.
    void release(int64_t bytes);

    /// Puts entries back at the head of `pending`, sorted by message id, counting a delivery.
    void requeue(std::vector<entry> entries);

    /// Drops everything (the queue is deleted).
    void clear();
};

/// Spawn arguments of a queue.
struct queue_args {
    std::string name;
    std::string address;
    routing_type routing = routing_type::anycast;
    bool durable = false;
    /// Messages recovered from the journal, in queue order.
    std::vector<message_ptr> initial;
    /// Recovered prepared transactions: messages they routed here, and messages of this queue
    /// they acknowledged (recovered_queue).
    std::map<uint64_t, std::vector<message_ptr>> staged;
    std::map<uint64_t, std::vector<message_ptr>> held;
    /// When not negative, the queue tells its address when the address's bytes fall below
    /// this mark instead of below max-size-bytes (PAGE: page-in reads in large pieces).
    int64_t space_mark = -1;
};

/// The behaviour of a queue actor.
queue_actor::behavior_type queue(queue_actor::stateful_pointer<queue_state> self,
                                 std::shared_ptr<server_context> ctx,
                                 std::shared_ptr<address_usage> usage,
                                 address_actor owner,
                                 queue_args args);

} // namespace actormq
