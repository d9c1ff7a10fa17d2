// SPDX-License-Identifier: Apache-2.0
#pragma once

// `send --native` and `receive --native` (docs/shell.md): the same commands as over STOMP,
// written as an application writes them with the native client library (docs/client.md),
// against a node's acceptor named "native".

#include "apps/shell/traffic.hpp"

namespace actormq::shell {

/// Sends `p.count` messages to the queue `p.destination` names ("/queue/NAME", or NAME), each
/// durable with `p.persistent`; with `p.receipts` each send blocks until the server confirms
/// it (blockOnDurableSend / blockOnNonDurableSend), and only those count as confirmed.
traffic_result send_native(const stomp_target& t,
                           const send_params& p,
                           std::chrono::steady_clock::time_point deadline);

/// Receives and acknowledges `p.count` messages (or, with `p.all`, everything up to an end
/// marker sent first) from the queue `p.destination` names, before `deadline`.
traffic_result receive_native(const stomp_target& t,
                              const receive_params& p,
                              std::chrono::steady_clock::time_point deadline);

/// The native queue name of a shell destination: "/queue/NAME" -> NAME; "" for a topic.
std::string native_queue(const std::string& destination);

} // namespace actormq::shell
