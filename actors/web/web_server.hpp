// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "config/node_config.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace actormq {

class status_board;

/// The node's HTTP server (docs/web.md): the status page, /api/status, /api/events, /metrics
/// and the WebSocket /ws/events, with Boost.Beast on its own io_context and thread. It only
/// reads the `status_board`, so it never touches an actor's state or blocks a CAF worker
/// (style rules 10 and 11).
class web_server {
public:
    // -- limits (docs/web.md, "Limits") ------------------------------------------------------

    /// Largest request header block (request line and fields); larger gets 431.
    static constexpr size_t header_bytes_max = 8 * 1024;

    /// Largest request body; larger gets 413.
    static constexpr size_t body_bytes_max = 64 * 1024;

    /// Events queued for one WebSocket client; a client that falls further behind is dropped.
    static constexpr size_t ws_queue_max = 256;

    /// Open HTTP and WebSocket connections at once; further connections are closed at once.
    static constexpr size_t connections_max = 256;

    /// Seconds a client may take to send a request (or stay idle between two).
    static constexpr int request_timeout_s = 30;

    // -- constructors and lifecycle ----------------------------------------------------------

    /// Takes `cfg.web` (host, port) and `cfg.security` (the users for Basic auth); logs to
    /// `log` (the "http" logger).
    web_server(const config::node_config& cfg,
               std::shared_ptr<status_board> board,
               std::shared_ptr<spdlog::logger> log);

    /// Stops the server if it runs.
    ~web_server();

    web_server(const web_server&) = delete;
    web_server& operator=(const web_server&) = delete;

    /// Binds and listens on cfg.web host:port; returns "" or the reason it could not.
    std::string open();

    /// The bound port (0 before a successful `open`).
    uint16_t port() const;

    /// Starts accepting on the server's own io_context and thread (after `open`).
    void start();

    /// Closes the listener and every HTTP and WebSocket session, then joins the thread.
    /// Idempotent.
    void stop();

    /// Opaque state (Beast stays out of this header).
    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

} // namespace actormq
