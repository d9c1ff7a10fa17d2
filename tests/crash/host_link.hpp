// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "crash/traffic_control.hpp"
#include "protocol/stomp_frame.hpp"
#include "support/stomp_client.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace actormq::crash {

/// What one client thread's connection saw, for the report; filled by its thread, read after
/// the join.
struct link_stats {
    uint64_t connects = 0; ///< Successful STOMP connects (the first one included).
    uint64_t errors = 0;   ///< ERROR frames received.
    uint64_t stalls = 0;   ///< Times no receipt came within the stall limit.
    /// Native mode: blocking calls that threw TIMEOUT (no answer, and no failover, within
    /// callTimeout). The pair fails over in well under a second, so any is a problem.
    uint64_t timeouts = 0;
    bool gave_up = false;    ///< Stopped early: no node served in time, or too many errors.
    std::string first_error; ///< The first ERROR frame or the reason it gave up.
};

/// Limits of one client connection; every wait it does is bounded by one of these.
struct link_limits {
    std::chrono::milliseconds reconnect{30000}; ///< Longest wait for a node to serve again.
    uint32_t errors_max = 20;                   ///< ERROR frames before the client gives up.
};

/// When a client thread should finish: `stop` is set and, once it is, `deadline` bounds how
/// long it may still wait for its last receipts. Both live in `traffic_control`.
struct stop_flags {
    const std::atomic<bool>& stop;
    const std::atomic<test::deadline_t>& deadline;
};

/// One client thread's STOMP connection to whichever node of the host list serves, made again
/// after every kill (docs/testing.md, "The crash harness"). Producers and consumers use it.
class host_link {
public:
    host_link(traffic_control& ctl, stop_flags stop, const link_limits& limits, link_stats& stats);

    /// Whether the client should stop trying: abort, or stopping and out of time.
    bool out_of_time() const;

    /// Connects unless connected: polls (bounded by `limits.reconnect`) the hosts that are
    /// up, the last one that served first, until one answers CONNECT with CONNECTED. False
    /// if it gave up or ran out of time.
    bool ensure();

    /// Forgets the connection (the node died, or an ERROR closed it).
    void drop();

    /// The next frame, or nullopt after a short read slice; drops the link at EOF.
    std::optional<stomp::frame> next();

    /// Writes `bytes`; drops the link and returns false when the write fails.
    bool write(const std::string& bytes);

    /// Counts an ERROR frame and drops the link (the server closes it after an ERROR).
    /// False once the client has seen too many and gives up.
    bool on_error(const stomp::frame& f);

    /// Notes that the client gives up, and why (unless an ERROR already said).
    void give_up(const std::string& why);

    /// Encodes `f` for the connection's version onto `out`.
    void encode(const stomp::frame& f, std::string& out) const;

    bool connected() const { return connected_; }

    /// The host of the current (or last) connection, an index into `ctl.hosts`.
    uint32_t host() const { return host_; }

private:
    /// One pass over the host list, starting with the host that served last.
    bool try_hosts();

    /// Connects to host `h` and sends CONNECT; true on CONNECTED.
    bool try_connect(uint32_t h);

    traffic_control& ctl_;
    stop_flags stop_;
    const link_limits& limits_;
    link_stats& stats_;
    test::stomp_client client_;
    bool connected_ = false;
    uint32_t host_ = 0;
};

/// The receipt id parsed from "<prefix><number>", or nullopt.
std::optional<uint64_t> receipt_number(const stomp::frame& f, const std::string& prefix);

} // namespace actormq::crash
