// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace actormq::stomp {

/// The STOMP protocol versions a connection can negotiate.
enum class version : uint8_t { v1_0, v1_1, v1_2 };

/// Returns "1.0", "1.1" or "1.2".
std::string_view to_string(version v);

/// Every STOMP command, client and server frames alike.
enum class command : uint8_t {
    connect,
    stomp,
    connected,
    send,
    subscribe,
    unsubscribe,
    ack,
    nack,
    begin,
    commit,
    abort,
    disconnect,
    message,
    receipt,
    error,
};

/// Returns the command's wire name ("SEND", ...).
std::string_view to_string(command c);

/// One decoded frame. Header names and values are unescaped; repeated headers are kept in
/// wire order, and `find` returns the first one, as STOMP 1.2 says.
struct frame {
    command cmd = command::send;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    /// Returns the value of the first header called `name`, or nullptr.
    const std::string* find(std::string_view name) const;

    /// Appends a header (no check for duplicates).
    void add(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
    }
};

} // namespace actormq::stomp
