// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "config/node_config.hpp"
#include "protocol/stomp_frame.hpp"

#include <cstdint>
#include <string>

namespace actormq {

/// The outcome of a CONNECT/STOMP frame: accepted with negotiated terms, or refused.
struct handshake_result {
    bool accepted = false;
    /// The ERROR frame's `message` when refused.
    std::string error;
    /// Set when no version matched: the ERROR's `version` header, the versions this server
    /// speaks (STOMP 1.2, "Protocol Negotiation").
    std::string supported_versions;
    /// The negotiated version; STOMP 1.0 (no escaping) when none matched.
    stomp::version version = stomp::version::v1_0;
    /// The user the session runs as.
    std::string user;
    /// CONNECT's `client-id`, which names durable subscriptions (may be empty).
    std::string client_id;
    /// Milliseconds between heart-beats the server sends; 0 = none.
    uint32_t send_interval_ms = 0;
    /// Milliseconds between heart-beats the server expects; 0 = none.
    uint32_t receive_interval_ms = 0;
};

/// Negotiates version and heart-beats and checks the login of a CONNECT or STOMP frame
/// against the acceptor and security settings (STOMP 1.2 "Connecting", "Heart-beating").
handshake_result negotiate(const stomp::frame& connect, const config::acceptor_config& acceptor,
                           const config::security_config& security);

/// Builds the CONNECTED frame for an accepted handshake.
stomp::frame connected_frame(const handshake_result& r, const config::acceptor_config& acceptor,
                             const std::string& server_name, uint64_t session_id);

} // namespace actormq
