// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "protocol/stomp_frame.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace actormq::stomp {

/// Bounds the parser enforces while reading; every one is an error when exceeded.
struct parse_limits {
    /// Largest frame (command + headers + body) in bytes, counted on the wire from the first
    /// byte of the command line through the terminating NUL.
    size_t max_frame_bytes = 10 * 1024 * 1024;
    /// Most headers in one frame.
    size_t max_headers = 1000;
    /// Longest single header line (name + ':' + value) in bytes.
    size_t max_header_line_bytes = 64 * 1024;
};

/// Why the parser rejected its input. The connection answers every one with ERROR + close.
enum class parse_error : uint8_t {
    none,
    frame_too_large,    ///< frame exceeded max_frame_bytes
    too_many_headers,   ///< more than max_headers
    header_too_large,   ///< a header line exceeded max_header_line_bytes
    unknown_command,    ///< command line is not a STOMP command
    malformed_header,   ///< header line without ':'
    bad_escape,         ///< undefined escape sequence (e.g. "\t") in a header
    bad_content_length, ///< content-length not a non-negative decimal number
    missing_nul,        ///< byte after content-length bytes of body is not NUL
};

/// A human-readable sentence for an error, used as the ERROR frame's `message` header.
std::string_view to_string(parse_error e);

/// Incremental STOMP frame parser. Bytes go in with `feed`, frames come out of `next`.
/// Never throws on network input; once it reports an error it stays in that error.
class parser {
public:
    explicit parser(parse_limits limits = {});

    /// Sets the negotiated version: it decides how header escapes are read. Until it is
    /// set (before CONNECT) and for CONNECT/CONNECTED frames, headers are not unescaped.
    void set_version(version v) { version_ = v; }

    /// Appends bytes read from the socket.
    void feed(const char* data, size_t size);

    /// The outcome of one call to `next`.
    enum class status : uint8_t { need_more, frame, error };

    /// Tries to take the next complete frame out of the buffer. Heart-beat EOLs between frames
    /// are skipped. On `status::error`, `error()` says why.
    status next(frame& out);

    /// The error that stopped the parser, or parse_error::none.
    parse_error error() const { return error_; }

    /// Bytes buffered and not yet returned as frames.
    size_t buffered() const { return buf_.size() - pos_; }

private:
    /// Which part of the frame that starts at `pos_` the parser is reading.
    enum class stage : uint8_t { command, headers, body };

    /// Outcome of one parsing step: wait for bytes, go on, a frame is out, or stop in error.
    enum class step : uint8_t { more, next, done, fail };

    /// Reads the command line, skipping heart-beat EOLs before it.
    step parse_command_line();

    /// Reads one header line, or the blank line that ends the headers.
    step parse_header_line();

    /// Splits one header line at its first ':', unescapes it and stores it in `cur_`.
    step add_header(std::string_view line);

    /// Checks the frame size once the headers are complete and enters the body stage.
    step begin_body();

    /// Reads the body and the NUL; on success moves the frame into `out`.
    step parse_body(frame& out);

    /// Waits for more bytes, unless the unterminated frame already breaks max_frame_bytes.
    step wait_for_more();

    /// Enters the error state for good and drops the buffer.
    step fail(parse_error e);

    parse_limits limits_;
    version version_ = version::v1_0;
    parse_error error_ = parse_error::none;
    std::string buf_;
    size_t pos_ = 0;
    /// Stage of the frame that starts at `pos_`.
    stage stage_ = stage::command;
    /// Offset from `pos_` up to which the current delimiter search has already looked.
    size_t scan_ = 0;
    /// Offset from `pos_` of the current header line, or of the body in the body stage.
    size_t line_ = 0;
    /// Body size from the first content-length header, if `has_content_length_`.
    size_t content_length_ = 0;
    /// Whether the current frame has a content-length header.
    bool has_content_length_ = false;
    /// The frame being read: command and headers so far.
    frame cur_;
};

/// Appends `f` encoded for version `v` to `out` (escaping header names and values for 1.1/1.2
/// except in CONNECT/CONNECTED, adding nothing else: callers set content-length themselves).
/// Where there is no escaping (1.0, CONNECT, CONNECTED) an LF in a name or value cannot be
/// written, so it is replaced by a space rather than let it end the line and inject headers.
/// A header line whose last written byte is a CR ends with CRLF, so the CR is read back.
void encode(const frame& f, version v, std::string& out);

/// Appends one escaped header line "name:value\n" for version `v` to `out` (1.0: not escaped,
/// with LF and CR handled as `encode` says).
void append_header(std::string& out, std::string_view name, std::string_view value, version v);

/// Appends the command line, e.g. "MESSAGE\n".
void append_command(std::string& out, command c);

/// Appends the blank line, the body and the terminating NUL.
void append_body(std::string& out, std::string_view body);

} // namespace actormq::stomp
