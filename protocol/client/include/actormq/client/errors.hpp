// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the client library throws and tells its failure listeners (docs/client.md "Errors").

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace actormq::client {

/// Why a call failed. The first group is the client's own (docs/protocol.md §17); `server`
/// means the server answered `fail` and `server_code()` says which wire code (§15).
enum class error_kind : uint8_t {
    unblocked,               ///< a blocking call was in flight when the connection failed over
    transaction_rolled_back, ///< commit of a transaction the failover made rollback-only
    xa_retry,                ///< XA: the commit's outcome is unknown; retry it later
    disconnected,            ///< the connection failed and every reconnect attempt failed
    connection_failed,       ///< the first connection could not be made
    timeout,                 ///< no answer within callTimeout
    closed,                  ///< the connection, session, producer or consumer is closed
    illegal_state,           ///< a call that is wrong here (commit on a session not transacted)
    server,                  ///< the server refused the request; see server_code()
};

/// A stable upper-case name, as Artemis's ("UNBLOCKED", "TRANSACTION_ROLLED_BACK").
std::string_view to_string(error_kind k);

/// Every error the library throws (or passes to an asynchronous completion).
class client_error : public std::runtime_error {
public:
    client_error(error_kind kind, std::string text, uint16_t server_code = 0)
        : std::runtime_error(std::string(to_string(kind)) + ": " + text),
          kind_(kind),
          server_code_(server_code) {}

    /// Why the call failed.
    error_kind kind() const noexcept { return kind_; }

    /// For kind() == server: the wire code of the server's `fail` (docs/protocol.md §15).
    uint16_t server_code() const noexcept { return server_code_; }

private:
    error_kind kind_;
    uint16_t server_code_;
};

/// What a failure listener is told (Artemis's FailoverEventType and JMS codes).
enum class failure_event : uint8_t {
    /// The connection failed; the client is about to reattach or fail over (before-reconnect).
    failure_detected,
    /// The client reattached to the same server or failed over to another one: work goes on.
    failover,
    /// Every attempt failed; the connection is closed and every call now fails.
    disconnect,
};

/// "FAILURE_DETECTED", "FAILOVER", "DISCONNECT".
std::string_view to_string(failure_event e);

/// A failure listener: the event and a sentence saying what happened. Called on the
/// connection's own thread: it must not block for long, and may call the library.
using failure_listener = std::function<void(failure_event, const std::string& reason)>;

} // namespace actormq::client
