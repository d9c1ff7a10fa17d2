// SPDX-License-Identifier: Apache-2.0
#pragma once

// A small blocking STOMP 1.2 client for the shell's send and receive commands: Boost.Asio for
// the socket (every operation runs against a deadline), protocol/stomp_codec.hpp for frames.

#include "protocol/stomp_codec.hpp"
#include "protocol/stomp_frame.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace actormq::shell {

/// One blocking STOMP connection. Errors are returned as text; a call that misses its deadline
/// closes the socket, so the client is unusable afterwards.
class stomp_client {
public:
    using time_point = std::chrono::steady_clock::time_point;

    stomp_client();

    /// Opens TCP to host:port and logs in (no login header when `login` is empty); "" once
    /// CONNECTED arrived, else the reason (an ERROR frame's message, a refused connection).
    std::string connect(const std::string& host,
                        uint16_t port,
                        const std::string& login,
                        const std::string& passcode,
                        time_point deadline);

    /// Encodes `f` and appends it to the output buffer (written by `flush`).
    void queue(const stomp::frame& f);

    /// Writes the output buffer; "" or the reason.
    std::string flush(time_point deadline);

    /// The next frame from the server; nullopt with `error` set on timeout, EOF or bad bytes.
    std::optional<stomp::frame> read(time_point deadline, std::string& error);

    /// Sends DISCONNECT with a receipt and waits for it (frames before it are dropped: the
    /// server redelivers any MESSAGE not acknowledged). "" or the reason.
    std::string disconnect(time_point deadline);

    /// A receipt id unique within this client.
    std::string next_receipt() { return "shell-" + std::to_string(++receipts_); }

private:
    /// Runs the io_context until its work is done (true) or `deadline` passes (false, socket
    /// closed and the cancelled handlers run).
    bool run_until(time_point deadline);

    boost::asio::io_context ioc_;
    boost::asio::ip::tcp::socket sock_;
    stomp::parser parser_;
    stomp::version version_ = stomp::version::v1_2;
    std::string out_;
    std::array<char, 64 * 1024> in_{};
    uint64_t receipts_ = 0;
};

/// The text of an ERROR frame for messages: its `message` header and body.
std::string error_text(const stomp::frame& f);

} // namespace actormq::shell
