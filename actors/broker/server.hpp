// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/fwd.hpp"
#include "actors/broker/server_context.hpp"

#include <map>
#include <memory>
#include <string>

namespace actormq {

/// What the server actor owns: the registry of addresses of this server instance.
struct server_state {
    static inline const char* name = "server";

    std::shared_ptr<server_context> ctx;
    std::map<std::string, address_actor> addresses;
};

/// The behaviour of the server actor. Addresses it spawns are linked to it, so they stop
/// with it.
server_actor::behavior_type server(server_actor::stateful_pointer<server_state> self,
                                   std::shared_ptr<server_context> ctx);

} // namespace actormq
