// SPDX-License-Identifier: Apache-2.0
#pragma once

// Scale-down between nodes (docs/ha.md, "Scale-down"): what a stopping live sends another live
// of its cluster, and what it gets back.
//
//   stopping node -> its cluster facade: (scale_down_atom, target cluster address,
//       scale_down_batch, timeout ms) -> scale_down_ack
//   The cluster actor passes the batch on to the member at that address, which takes it only
//   from a joined member (one that proved the cluster credentials) and hands it to its node's
//   scale-down endpoint. The endpoint routes the messages into its own server and answers once
//   every durable one is on its disk; only then does the source acknowledge them off its own
//   journal.
//   Locally (scale_down_atom, caf::actor endpoint) registers the node's endpoint.

#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace actormq::cluster {

/// See the header comment.
using scale_down_atom = caf::atom_constant<caf::atom("scaledown")>;

/// One message as it leaves the scaled-down server.
struct scale_down_message {
    /// Its id on the source (the duplicate id the target stores is built from it).
    uint64_t source_id = 0;
    std::string address;
    std::string destination;
    /// 0 anycast, 1 multicast (actormq::routing_type).
    uint8_t routing = 0;
    /// Multicast: the subscription queues that held it on the source (bound on the target as
    /// durable subscriptions before it is routed); anycast: empty.
    std::vector<std::string> queues;
    /// Its headers, as parallel lists of names and values.
    std::vector<std::string> header_names;
    std::vector<std::string> header_values;
    std::string body;
    /// The prepared XA branch (its encoded xid) that routed it and has not decided; "" when it
    /// is an ordinary message of its queue.
    std::string xid;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scale_down_message& x) {
    return f(caf::meta::type_name("actormq::cluster::scale_down_message"), x.source_id, x.address,
             x.destination, x.routing, x.queues, x.header_names, x.header_values, x.body, x.xid);
}

/// One batch. The source sends the next only after this one's answer.
struct scale_down_batch {
    /// Who scales down (logs, and the duplicate ids: "scale-down:NODE_ID:SOURCE_ID").
    std::string source_name;
    std::string source_node_id;
    /// 1, 2, ... per scale-down.
    uint64_t seq = 0;
    std::vector<scale_down_message> messages;
    /// Prepared branches whose messages are all in this batch: the target prepares each under
    /// the same xid (a branch is never split over batches).
    std::vector<std::string> prepared_xids;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scale_down_batch& x) {
    return f(caf::meta::type_name("actormq::cluster::scale_down_batch"), x.source_name,
             x.source_node_id, x.seq, x.messages, x.prepared_xids);
}

/// The target's answer: the batch is durable there.
struct scale_down_ack {
    uint64_t seq = 0;
    /// Messages routed, and messages the target already had (a batch sent again).
    uint64_t routed = 0;
    uint64_t duplicates = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scale_down_ack& x) {
    return f(caf::meta::type_name("actormq::cluster::scale_down_ack"), x.seq, x.routed,
             x.duplicates);
}

} // namespace actormq::cluster
