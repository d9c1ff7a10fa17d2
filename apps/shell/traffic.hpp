// SPDX-License-Identifier: Apache-2.0
#pragma once

// The shell's producer and consumer (docs/shell.md, "send" and "receive"), like the Artemis
// CLI's `producer` and `consumer` commands, over one STOMP connection each.

#include <chrono>
#include <cstdint>
#include <string>

namespace actormq::shell {

/// Where and as whom to connect.
struct stomp_target {
    std::string host = "127.0.0.1";
    uint16_t port = 0;
    std::string login;
    std::string passcode;
};

/// What `send` does.
struct send_params {
    std::string destination;
    uint64_t count = 0;
    bool persistent = false;
    /// Each SEND asks for a RECEIPT, and the command waits for every one (with persistent,
    /// a receipt means the message is in the journal).
    bool receipts = false;
    /// When not empty, each message gets `_AMQ_DUPL_ID:<prefix>-<i>`.
    std::string dup_id_prefix;
    /// When not empty every body is this text; else "message <i>" (i from 1).
    std::string body;
};

/// What `receive` does.
struct receive_params {
    std::string destination;
    uint64_t count = 0;
    /// Fail when a body arrives twice.
    bool unique = false;
};

/// The outcome of a send or receive: how many, and "" or why it stopped.
struct traffic_result {
    uint64_t done = 0;
    uint64_t distinct = 0; ///< receive: distinct bodies among `done`
    std::string error;
};

/// Sends `p.count` messages, then DISCONNECTs with a receipt, so each message has been
/// routed when this returns.
traffic_result send_messages(const stomp_target& t,
                             const send_params& p,
                             std::chrono::steady_clock::time_point deadline);

/// Subscribes (client-individual acks) and receives and acknowledges `p.count` messages
/// before `deadline`, then DISCONNECTs with a receipt.
traffic_result receive_messages(const stomp_target& t,
                                const receive_params& p,
                                std::chrono::steady_clock::time_point deadline);

} // namespace actormq::shell
