// SPDX-License-Identifier: Apache-2.0
#pragma once

// A connection factory's settings and the URL that names them (docs/client.md "URL").
// Parameter names and defaults are Artemis's, so a URL written for an Artemis core client
// reads the same here.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace actormq::client {

/// One server of the URL: a host (name or address, IPv6 without brackets) and a port.
struct server_address {
    std::string host;
    uint16_t port = 0;

    /// "host:port" ("[::1]:5" for IPv6), as the topology writes it.
    std::string to_string() const;
    /// Parses "host:port" or "[v6]:port"; throws url_error naming `what` on a bad one.
    static server_address parse(std::string_view text, std::string_view what);

    friend bool operator==(const server_address& a, const server_address& b) {
        return a.host == b.host && a.port == b.port;
    }
};

/// Everything a URL can set. Times are milliseconds; -1 means "none" / "forever" where noted.
struct connection_options {
    /// The servers to try for the first connection, in order (one, or a list in parentheses).
    std::vector<server_address> servers;
    /// `ha`: learn the topology and fail over to the backup (needs reconnectAttempts != 0).
    bool ha = false;
    /// `reconnectAttempts`: tries after a connection failed; 0 none, -1 forever.
    int32_t reconnect_attempts = 0;
    /// `initialConnectAttempts`: tries for the first connection; -1 forever, 0 and 1 both once.
    int32_t initial_connect_attempts = 1;
    /// `retryInterval`: wait between two tries.
    int64_t retry_interval_ms = 2000;
    /// `retryIntervalMultiplier`: each wait is the previous one times this (>= 1.0).
    double retry_interval_multiplier = 1.0;
    /// `maxRetryInterval`: the longest wait the multiplier may reach.
    int64_t max_retry_interval_ms = 2000;
    /// `clientFailureCheckPeriod`: no packet for this long is a failure; pings go every half.
    /// -1 turns the check (and the pings) off.
    int64_t client_failure_check_period_ms = 30000;
    /// `connectionTTL`: how long the server keeps this connection's sessions after it failed
    /// without a packet (docs/protocol.md §13, §14).
    int64_t connection_ttl_ms = 60000;
    /// `confirmationWindowSize`: bytes of unconfirmed packets kept for reattach; -1 none (and
    /// then there is no reattach, only failover).
    int32_t confirmation_window_size = -1;
    /// `callTimeout`: the longest a blocking call waits for the server's answer.
    int64_t call_timeout_ms = 30000;
    /// `blockOnDurableSend`: a durable send waits for the server's confirmation.
    bool block_on_durable_send = true;
    /// `blockOnNonDurableSend`: a non-durable send waits for the server's confirmation.
    bool block_on_non_durable_send = false;
    /// `blockOnAcknowledge`: an acknowledge waits until the server stored it.
    bool block_on_acknowledge = false;
    /// `preAcknowledge`: consumers are pre-acknowledge ones: the server acknowledges each
    /// message as it delivers it, acknowledge() does nothing, and a message in flight when the
    /// connection or the consumer goes is lost (docs/client.md "Pre-acknowledge").
    bool pre_acknowledge = false;
    /// `producerWindowSize`: producer credit in bytes (docs/protocol.md §5); -1 no flow control.
    int32_t producer_window_size = 64 * 1024;
    /// `consumerWindowSize`: consumer credit in bytes (§6); -1 unbounded, 0 none (pull).
    int32_t consumer_window_size = 1024 * 1024;
    /// `user` and `password`: the credentials create_connection uses when given none.
    std::string user;
    std::string password;
    /// `clientID`: the JMS client id (durable subscriptions); empty: none.
    std::string client_id;

    /// Parses a URL: `tcp://host:port?name=value&...` or `(tcp://a:1,tcp://b:2)?name=value&...`.
    /// Throws url_error whose text names the parameter (or the part of the URL) that is wrong.
    static connection_options from_url(std::string_view url);

    /// The wait before retry number `n` (n >= 1; the first try after a failure is at once):
    /// retryInterval x multiplier^(n-1), at most maxRetryInterval.
    int64_t retry_delay_ms(uint32_t n) const;
};

/// A URL the factory cannot use; what() names the parameter and the value.
class url_error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

} // namespace actormq::client
