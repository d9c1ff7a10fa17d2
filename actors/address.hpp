// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/fwd.hpp"
#include "actors/server_context.hpp"

#include <caf/typed_response_promise.hpp>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace actormq {

/// Everything an address actor owns: its queues and the producers it holds back while full.
struct address_state {
    static inline const char* name = "address";

    /// A route request waiting for space (address-full-policy BLOCK).
    struct blocked_route {
        caf::typed_response_promise<route_status> promise;
        routing_type routing;
        std::vector<message_ptr> msgs;
    };

    std::shared_ptr<server_context> ctx;
    std::string address;
    config::address_settings settings;
    std::shared_ptr<address_usage> usage;
    /// The anycast queue, named like the address, created on first anycast use.
    std::optional<queue_actor> anycast;
    /// Multicast subscription queues by name.
    std::map<std::string, queue_actor> subscriptions;
    std::deque<blocked_route> blocked;

    /// The queues a message with this routing type goes to.
    std::vector<queue_actor> targets(routing_type routing) const;
};

/// The behaviour of an address actor.
address_actor::behavior_type address(address_actor::stateful_pointer<address_state> self,
                                     std::shared_ptr<server_context> ctx, std::string name);

} // namespace actormq
