// SPDX-License-Identifier: Apache-2.0
#pragma once

// The shell's side of the management protocol (cluster/management.hpp): a blocking client that
// reaches a node's status actor through CAF's middleman with the cluster credentials.

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace actormq::shell {

/// The result of a management call: a value or the reason there is none.
template <class T>
struct outcome {
    T value{};
    std::string error; ///< "" on success
    /// The node said it cannot be managed yet (cluster_errc::management_offline: it is still
    /// starting): asking again shortly may succeed.
    bool not_ready = false;

    explicit operator bool() const { return error.empty(); }
};

/// A blocking management client; one per shell, created on first use (the actor system and
/// its middleman start then, so a shell that manages nothing starts no CAF threads).
class management {
public:
    management();
    ~management();

    management(const management&) = delete;
    management& operator=(const management&) = delete;

    /// Connects to the cluster port and logs in: returns the node's status actor. An error
    /// when the port does not answer, the credentials are refused or no reply arrives.
    outcome<caf::actor> open(const std::string& host,
                             uint16_t port,
                             const std::string& user,
                             const std::string& password,
                             std::chrono::milliseconds timeout);

    /// The node's /api/status JSON text.
    outcome<std::string> status(const caf::actor& status_actor, std::chrono::milliseconds timeout);

    /// The node's /api/events JSON text for events after `since`.
    outcome<std::string>
    events(const caf::actor& status_actor, uint64_t since, std::chrono::milliseconds timeout);

private:
    caf::actor_system_config cfg_;
    std::unique_ptr<caf::actor_system> sys_;
};

} // namespace actormq::shell
