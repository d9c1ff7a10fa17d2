// SPDX-License-Identifier: Apache-2.0
// Blocking-with-deadline socket steps the test clients share (stomp_client, native_client).
#pragma once

#include "support/wait.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace actormq::test {

/// Connects to 127.0.0.1:`port` and makes the socket non-blocking with TCP_NODELAY; returns its
/// descriptor, or -1 with `error` set.
int connect_loopback(uint16_t port, std::string& error);

/// Writes all of `bytes` to the non-blocking socket `fd` (-1: not connected), waiting for room
/// until `deadline`; false with `error` set when it could not.
bool send_all(int fd, std::string_view bytes, deadline_t deadline, std::string& error);

/// Whether 127.0.0.1:`port` can be bound right now (SO_REUSEADDR, as the node's listeners).
bool port_free(uint16_t port);

} // namespace actormq::test
