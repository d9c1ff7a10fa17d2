// SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal to connection_core (connection_core.cpp: life cycle, the I/O thread and the caller's
// writes; connection_reading.cpp: packets in, on the I/O thread or a caller's;
// connection_calls.cpp: the public API's calls): when deferred output is written, and every
// caller's wait for what the server sends, which more than one of them instantiates.

#include "connection_core.hpp"

#include <cstddef>

namespace actormq::client::detail {

namespace connection_io {

/// Deferred packets are written once this many bytes are queued (or sooner, see write_raw).
/// A producer with the default window (64 KiB, Artemis's producerWindowSize) then writes once
/// per window, when its credit runs out, instead of four times: each write of 1 KiB sends on
/// loopback costs a sendto and wakes the node's reader, and with 16 KiB (the bench kit's
/// STOMP generator's size) the generator spent about a fifth more CPU per message in scenario
/// A (docs/benchmarks.md, "Native scenario A: the producer writes 64 KiB at a time").
constexpr size_t out_flush_bytes = 64 * 1024;

} // namespace connection_io

// connection_core::wait_input (declared and documented in connection_core.hpp): defined here
// because it is a template that connection_core.cpp and connection_calls.cpp both use.
template <class Ready>
bool connection_core::wait_input(lock& l, clock::time_point deadline, Ready ready) {
    struct waiting {
        int& n;
        explicit waiting(int& count) : n(count) { ++n; }
        ~waiting() { --n; }
        waiting(const waiting&) = delete;
        waiting& operator=(const waiting&) = delete;
    } counted(input_waiters_);
    caller_wait_ms_ = now_ms();
    while (!ready()) {
        auto now = clock::now();
        if (now >= deadline) {
            return false;
        }
        if (caller_may_read()) {
            read_as_caller(l, deadline - now);
            continue;
        }
        // Someone else reads (the I/O thread, or another caller): it wakes us when the read
        // brought something, or when it leaves the socket to callers.
        cv_.wait_until(l, deadline, [&] { return ready() || caller_may_read(); });
    }
    return true;
}

} // namespace actormq::client::detail
