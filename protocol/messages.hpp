// SPDX-License-Identifier: Apache-2.0
#pragma once

// The vocabulary the actors of one server instance exchange. Everything here travels between
// actors of one process only; types that cross nodes will get inspect() and type IDs.

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace actormq {

/// How an address hands a message to its queues (Artemis routing types).
enum class routing_type : uint8_t {
    anycast,   ///< to one queue of the address; each message to one consumer
    multicast, ///< to every subscription queue of the address
};

/// One message as the broker stores it. Immutable once routed: queues share it.
struct broker_message {
    /// Unique per server instance, increasing in the order messages were accepted.
    uint64_t id = 0;
    /// The address it was sent to.
    std::string address;
    /// The destination as the producer named it (e.g. "/queue/orders"), echoed on delivery.
    std::string destination;
    /// Headers passed through to consumers (content-type, reply-to, application headers).
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool persistent = false;

    /// Bytes this message counts against its address's max-size-bytes.
    int64_t memory_bytes() const;
};

/// Shared, immutable handle to a message.
using message_ptr = std::shared_ptr<const broker_message>;

/// One message handed from a queue to a consumer.
struct delivery {
    message_ptr msg;
    /// How many times it was delivered before (0 on the first delivery).
    uint32_t delivery_count = 0;
};

/// The outcome of routing a batch of messages to an address.
enum class route_status : uint8_t {
    routed,  ///< every message reached its queues (or no queue, which drops it)
    dropped, ///< the address was full and its policy is DROP
    full,    ///< the address was full and its policy is FAIL
    duplicate, ///< (transactions) a message carried an already-accepted duplicate id
};

/// Everything a queue needs to know about a consumer.
struct consumer_spec {
    /// Session-unique key of the subscription; deliveries carry it back.
    uint64_t key = 0;
    /// Most messages in flight to this consumer at once; 0 = unlimited.
    uint32_t window = 0;
    /// True for STOMP `ack:auto`: a message is done once it is handed over.
    bool auto_ack = true;
};

/// A queue's figures for status pages and tests.
struct queue_stats {
    std::string name;
    std::string address;
    routing_type routing = routing_type::anycast;
    uint64_t depth = 0;        ///< messages waiting, not yet delivered
    uint64_t in_flight = 0;    ///< delivered, not yet acked
    uint64_t consumers = 0;
    uint64_t enqueued = 0;     ///< total messages added
    uint64_t delivered = 0;    ///< total messages handed to consumers (redeliveries included)
    uint64_t acked = 0;        ///< total messages acked (or auto-acked)
    uint64_t redelivered = 0;  ///< total redeliveries
};

} // namespace actormq

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::message_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<actormq::message_ptr>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<actormq::delivery>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::route_status)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::routing_type)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::consumer_spec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::queue_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<actormq::queue_stats>)

namespace actormq {

// Atoms name the verbs of local messages (at most 10 characters in CAF 0.17).
using enqueue_atom = caf::atom_constant<caf::atom("enqueue")>;
using route_atom = caf::atom_constant<caf::atom("route")>;
using lookup_atom = caf::atom_constant<caf::atom("lookup")>;
using bind_atom = caf::atom_constant<caf::atom("bind")>;
using unbind_atom = caf::atom_constant<caf::atom("unbind")>;
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using unsub_atom = caf::atom_constant<caf::atom("unsub")>;
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using credit_atom = caf::atom_constant<caf::atom("credit")>;
using ack_atom = caf::atom_constant<caf::atom("ack")>;
using nack_atom = caf::atom_constant<caf::atom("nack")>;
using space_atom = caf::atom_constant<caf::atom("space")>;
using frames_atom = caf::atom_constant<caf::atom("frames")>;
using written_atom = caf::atom_constant<caf::atom("written")>;
using closed_atom = caf::atom_constant<caf::atom("closed")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using event_atom = caf::atom_constant<caf::atom("event")>;
using remove_atom = caf::atom_constant<caf::atom("remove")>;
using append_atom = caf::atom_constant<caf::atom("append")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using recover_atom = caf::atom_constant<caf::atom("recover")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;
using rollback_atom = caf::atom_constant<caf::atom("rollback")>;
/// Hold acknowledged messages for a prepared XA transaction (queue_actor).
using hold_atom = caf::atom_constant<caf::atom("hold")>;

} // namespace actormq
