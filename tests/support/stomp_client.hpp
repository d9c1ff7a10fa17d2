// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "protocol/stomp_codec.hpp"
#include "protocol/stomp_frame.hpp"
#include "support/wait.hpp"

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace actormq::test {

/// Header list for `stomp_client::send`, in wire order.
using header_list = std::vector<std::pair<std::string, std::string>>;

/// The value of header `name` in `f`, or "" when it has none.
std::string header_of(const stomp::frame& f, std::string_view name);

/// Whether `f` has a header called `name`.
bool has_header(const stomp::frame& f, std::string_view name);

/// A one-line description of a frame (command, headers, body size) for failure messages.
std::string describe(const stomp::frame& f);

/// A blocking STOMP client over a POSIX socket, for process tests. It speaks through the
/// project's own codec: `encode` for output, `parser` for input. Every read waits against a
/// deadline (poll), so no call can hang a test; writes wait at most `write_timeout`.
class stomp_client {
public:
    stomp_client();
    ~stomp_client();

    stomp_client(const stomp_client&) = delete;
    stomp_client& operator=(const stomp_client&) = delete;

    /// Opens a TCP connection to 127.0.0.1:`port`; false (and errno text in `last_error()`)
    /// if it cannot.
    bool connect_tcp(uint16_t port);

    /// Writes `bytes` as they are; false if the socket is closed or the write timed out.
    bool send_raw(std::string_view bytes);

    /// Encodes `f` for the negotiated version and writes it.
    bool send(const stomp::frame& f);

    /// Builds and writes a frame; adds `content-length` when `body` is not empty and the
    /// headers have none.
    bool send(stomp::command cmd, header_list headers, std::string_view body = {});

    /// Returns the next frame: first those buffered by earlier calls (`receipt_barrier`,
    /// `closed_by_peer`), then from the socket. nullopt on timeout, at EOF or after a parse
    /// error (see `parse_failed`). Heart-beat EOLs are skipped (and counted).
    std::optional<stomp::frame> receive(deadline_t deadline);

    /// Like `receive`, but only for a frame with command `cmd`; other frames met on the way
    /// stay buffered for later `receive` calls.
    std::optional<stomp::frame> receive_cmd(stomp::command cmd, deadline_t deadline);

    /// Reads (buffering any frames) until the server closes the connection: true once a read
    /// returns EOF or ECONNRESET, false if `deadline` passes first.
    bool closed_by_peer(deadline_t deadline);

    /// Whether EOF has been seen.
    bool eof() const { return eof_; }

    /// Sends CONNECT (with `accept-version` and `heart-beat` unless they are empty, and
    /// `login`/`passcode` unless `login` is empty) and waits for CONNECTED or ERROR. On
    /// CONNECTED the parser and encoder switch to the negotiated version. If nothing arrives
    /// by `deadline` it returns a frame with command ERROR and a `message` saying so.
    stomp::frame connect_stomp(const std::string& login,
                               const std::string& passcode,
                               const std::string& version = "1.2",
                               const std::string& heart_beat = "0,0",
                               deadline_t deadline = in(std::chrono::seconds(10)));

    /// Sends a no-op with a unique receipt (BEGIN and ABORT of a throwaway transaction, the
    /// ABORT with `actormq-barrier: queues`) and reads until its RECEIPT, which follows every
    /// delivery the queues this client consumes from had made when the ABORT arrived. Every
    /// frame that arrives before it stays buffered, in order, for `receive` / `buffered`. False on
    /// timeout, EOF, or an ERROR before the receipt.
    bool receipt_barrier(deadline_t deadline = in(std::chrono::seconds(10)));

    /// Sends `f` with header `receipt:<unique id>` added and waits for that RECEIPT (frames
    /// before it stay buffered). False on timeout, EOF or ERROR.
    bool send_with_receipt(stomp::frame f, deadline_t deadline = in(std::chrono::seconds(10)));

    /// Frames read from the socket but not yet returned by `receive`.
    const std::deque<stomp::frame>& buffered() const { return buffered_; }

    /// Removes and returns the buffered MESSAGE frames; other buffered frames stay.
    std::vector<stomp::frame> take_messages();

    /// A fresh receipt id, unique within this client.
    std::string next_receipt_id();

    /// Heart-beat EOLs seen so far at frame boundaries (a lower bound of all of them).
    size_t heart_beats_seen() const { return heart_beats_; }

    /// Whether the parser rejected the server's bytes.
    bool parse_failed() const { return parser_.error() != stomp::parse_error::none; }

    /// The negotiated version (1.2 until CONNECTED says otherwise).
    stomp::version version() const { return version_; }

    /// Closes the socket normally (FIN).
    void close();

    /// Closes the socket with an RST (SO_LINGER 0), as a crashed client would.
    void close_abruptly();

    /// The last socket error, for diagnostics.
    const std::string& last_error() const { return last_error_; }

    /// How long a write may block before `send_raw` gives up.
    std::chrono::milliseconds write_timeout{10000};

private:
    /// Takes one frame out of the parser, if a complete one is buffered.
    std::optional<stomp::frame> parse_one();

    /// Waits for bytes until `deadline` and feeds them to the parser; false on timeout/EOF.
    bool read_some(deadline_t deadline);

    /// Whether no more bytes can come: closed here, EOF seen, or the parser failed.
    bool dead() const { return fd_ < 0 || eof_ || parse_failed(); }

    /// Reads frames into the buffer until one is a RECEIPT with id `id`.
    bool await_receipt(const std::string& id, deadline_t deadline);

    int fd_ = -1;
    stomp::parser parser_;
    stomp::version version_ = stomp::version::v1_2;
    std::deque<stomp::frame> buffered_;
    bool eof_ = false;
    size_t heart_beats_ = 0;
    uint64_t next_receipt_ = 1;
    std::string last_error_;
};

} // namespace actormq::test
