// SPDX-License-Identifier: Apache-2.0
#pragma once

// The shell's producer and consumer (docs/shell.md, "send" and "receive"), like the Artemis
// CLI's `producer` and `consumer` commands, over one STOMP connection each.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

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
    /// Receive everything the queue holds (`count` is ignored): send an end marker to the
    /// queue first, then receive up to it. Queues are FIFO, so the marker comes after every
    /// message that was in the queue; no idle timeout guesses when the queue is empty.
    bool all = false;
};

/// One message a send wrote, for the verdict (docs/shell.md, "verdict").
struct sent_message {
    std::string body;
    std::string dup_id; ///< "" without --dup-ids
    /// Its RECEIPT came. false: written, but not confirmed (no receipt asked, or the
    /// connection failed before it came): it may or may not be stored.
    bool confirmed = false;
};

/// The outcome of a send or receive: how many, and "" or why it stopped.
struct traffic_result {
    uint64_t done = 0;
    uint64_t distinct = 0; ///< receive: distinct bodies among `done`
    std::string error;
    /// send: every message written, in order, also when the send failed part way.
    std::vector<sent_message> sent;
    /// receive: the body of every message received and acknowledged, also on failure.
    std::vector<std::string> received;
};

/// The body of the end marker of `receive ... all`: unique per shell process and call, so it
/// can never be taken for a message of the scenario or of another shell.
std::string end_marker();

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
