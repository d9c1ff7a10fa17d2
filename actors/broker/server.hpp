// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/broker/server_context.hpp"
#include "actors/fwd.hpp"

#include <map>
#include <memory>
#include <string>

namespace actormq {

/// What the server actor owns: the registry of addresses of this server instance.
struct server_state {
    static inline const char* name = "server";

    std::shared_ptr<server_context> ctx;
    std::map<std::string, address_actor> addresses;

    server_state() = default;
    server_state(const server_state&) = delete;
    server_state& operator=(const server_state&) = delete;
    /// Ends every address: they stop with their server.
    ~server_state();
};

/// The behaviour of the server actor. Addresses it spawns stop with it; one that fails stops
/// it.
server_actor::behavior_type server(server_actor::stateful_pointer<server_state> self,
                                   std::shared_ptr<server_context> ctx);

} // namespace actormq
