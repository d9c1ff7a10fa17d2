// SPDX-License-Identifier: Apache-2.0
#include "protocol/stomp_codec.hpp"

#include <cstdint>
#include <cstring>
#include <optional>
#include <utility>

namespace actormq::stomp {

namespace {

// The parser erases the consumed prefix of its buffer only when it is at least this long and
// at least as long as what is left, so each byte is moved O(1) times on average.
constexpr size_t compact_min_bytes = 64 * 1024;

// An emptied buffer whose capacity is above this is given back, so one large frame does not pin
// its memory for the life of the connection.
constexpr size_t keep_capacity_max = 1024 * 1024;

// Every command, in enum order.
constexpr command all_commands[] = {
    command::connect,   command::stomp,       command::connected, command::send,
    command::subscribe, command::unsubscribe, command::ack,       command::nack,
    command::begin,     command::commit,      command::abort,     command::disconnect,
    command::message,   command::receipt,     command::error,
};

// How header names and values are escaped on the wire.
enum class escaping : uint8_t { none, v1_1, v1_2 };

// STOMP 1.2 says CONNECT and CONNECTED frames are never escaped, so that a client can talk to
// a server before they agree on a version; 1.0 has no escaping at all.
escaping escaping_for(command c, version v) {
    if (c == command::connect || c == command::connected || v == version::v1_0) {
        return escaping::none;
    }
    return v == version::v1_1 ? escaping::v1_1 : escaping::v1_2;
}

std::optional<command> command_from(std::string_view line) {
    for (command c : all_commands) {
        if (to_string(c) == line) {
            return c;
        }
    }
    return std::nullopt;
}

// Whether some command starts with `pending`; lets the parser reject junk before its EOL.
bool is_command_prefix(std::string_view pending) {
    for (command c : all_commands) {
        if (to_string(c).substr(0, pending.size()) == pending) {
            return true;
        }
    }
    return false;
}

// A CR right before the LF belongs to the EOL, not to the line.
std::string_view strip_cr(std::string_view line) {
    if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    return line;
}

// Decodes one escape sequence's second byte, or returns false if it is undefined in `mode`.
bool unescape_char(char ch, escaping mode, char& out) {
    switch (ch) {
        case 'n':
            out = '\n';
            return true;
        case 'c':
            out = ':';
            return true;
        case '\\':
            out = '\\';
            return true;
        case 'r':
            out = '\r';
            return mode == escaping::v1_2;
        default:
            return false;
    }
}

// Writes `in` with its escape sequences decoded to `out`; false on an undefined sequence.
bool unescape(std::string_view in, escaping mode, std::string& out) {
    size_t slash = mode == escaping::none ? std::string_view::npos : in.find('\\');
    if (slash == std::string_view::npos) {
        out.assign(in.data(), in.size());
        return true;
    }
    out.clear();
    out.reserve(in.size());
    size_t run = 0;
    while (slash != std::string_view::npos) {
        out.append(in.data() + run, slash - run);
        char decoded = 0;
        if (slash + 1 == in.size() || !unescape_char(in[slash + 1], mode, decoded)) {
            return false;
        }
        out += decoded;
        run = slash + 2;
        slash = in.find('\\', run);
    }
    out.append(in.data() + run, in.size() - run);
    return true;
}

// Reads a content-length: plain decimal digits only. A value above `max` is reported as
// frame_too_large; the value saturates instead of overflowing.
parse_error parse_content_length(std::string_view text, size_t max, size_t& out) {
    if (text.empty()) {
        return parse_error::bad_content_length;
    }
    size_t value = 0;
    for (char ch : text) {
        if (ch < '0' || ch > '9') {
            return parse_error::bad_content_length;
        }
        auto digit = static_cast<size_t>(ch - '0');
        if (value > max) {
            continue;
        }
        value = value > (SIZE_MAX - digit) / 10 ? SIZE_MAX : value * 10 + digit;
    }
    if (value > max) {
        return parse_error::frame_too_large;
    }
    out = value;
    return parse_error::none;
}

// The bytes that replace `ch` on the wire, or an empty view when `ch` is written as is.
std::string_view escape_of(char ch, escaping mode) {
    switch (ch) {
        case '\n':
            // Without escaping an LF would end the line and let a value inject headers.
            return mode == escaping::none ? " " : "\\n";
        case '\r':
            return mode == escaping::v1_2 ? "\\r" : "";
        case ':':
            return mode == escaping::none ? "" : "\\c";
        case '\\':
            return mode == escaping::none ? "" : "\\\\";
        default:
            return {};
    }
}

void append_escaped(std::string& out, std::string_view in, escaping mode) {
    size_t run = 0;
    for (size_t i = 0; i < in.size(); ++i) {
        auto escaped = escape_of(in[i], mode);
        if (!escaped.empty()) {
            out.append(in.data() + run, i - run);
            out.append(escaped.data(), escaped.size());
            run = i + 1;
        }
    }
    out.append(in.data() + run, in.size() - run);
}

void append_header_line(std::string& out,
                        std::string_view name,
                        std::string_view value,
                        escaping mode) {
    append_escaped(out, name, mode);
    out += ':';
    append_escaped(out, value, mode);
    // An unescaped CR at the end of the line would be read back as part of the EOL, so the
    // line gets a CRLF of its own and the reader strips only that CR.
    if (out.back() == '\r') {
        out += '\r';
    }
    out += '\n';
}

} // namespace

std::string_view to_string(parse_error e) {
    switch (e) {
        case parse_error::none:
            return "no error";
        case parse_error::frame_too_large:
            return "frame exceeds the maximum frame size";
        case parse_error::too_many_headers:
            return "frame has more headers than allowed";
        case parse_error::header_too_large:
            return "header line exceeds the maximum header line size";
        case parse_error::unknown_command:
            return "unknown command";
        case parse_error::malformed_header:
            return "header line has no ':' or contains a NUL byte";
        case parse_error::bad_escape:
            return "undefined escape sequence in header";
        case parse_error::bad_content_length:
            return "content-length is not a valid number";
        case parse_error::missing_nul:
            return "frame body is not terminated by NUL after content-length bytes";
    }
    return "unknown parse error";
}

// -- parser ---------------------------------------------------------------------------------

parser::parser(parse_limits limits) : limits_(limits) {}

void parser::feed(const char* data, size_t size) {
    if (error_ != parse_error::none || size == 0) {
        return;
    }
    if (pos_ == buf_.size()) {
        // Everything was consumed: start over without moving a byte.
        if (buf_.capacity() > keep_capacity_max) {
            std::string().swap(buf_);
        } else {
            buf_.clear();
        }
        pos_ = 0;
    } else if (pos_ >= compact_min_bytes && pos_ >= buf_.size() - pos_) {
        // All scan offsets are relative to pos_, so they survive the move.
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    buf_.append(data, size);
}

parser::status parser::next(frame& out) {
    while (error_ == parse_error::none) {
        step result = step::more;
        switch (stage_) {
            case stage::command:
                result = parse_command_line();
                break;
            case stage::headers:
                result = parse_header_line();
                break;
            case stage::body:
                result = parse_body(out);
                break;
        }
        if (result == step::more) {
            return status::need_more;
        }
        if (result == step::done) {
            return status::frame;
        }
    }
    return status::error;
}

parser::step parser::parse_command_line() {
    const char* base = buf_.data() + pos_;
    size_t avail = buf_.size() - pos_;
    auto* eol = static_cast<const char*>(std::memchr(base + scan_, '\n', avail - scan_));
    if (eol == nullptr) {
        scan_ = avail;
        if (!is_command_prefix(strip_cr(std::string_view(base, avail)))) {
            return fail(parse_error::unknown_command);
        }
        return wait_for_more();
    }
    auto length = static_cast<size_t>(eol - base);
    auto line = strip_cr(std::string_view(base, length));
    if (line.empty()) {
        // A heart-beat EOL between frames.
        pos_ += length + 1;
        scan_ = 0;
        return step::next;
    }
    auto cmd = command_from(line);
    if (!cmd) {
        return fail(parse_error::unknown_command);
    }
    cur_.cmd = *cmd;
    line_ = length + 1;
    scan_ = line_;
    stage_ = stage::headers;
    return step::next;
}

parser::step parser::parse_header_line() {
    const char* base = buf_.data() + pos_;
    size_t avail = buf_.size() - pos_;
    auto* eol = static_cast<const char*>(std::memchr(base + scan_, '\n', avail - scan_));
    size_t end = eol == nullptr ? avail : static_cast<size_t>(eol - base);
    // A NUL before the blank line means the frame ended without one; waiting for an EOL
    // would hang the client, so fail now.
    if (std::memchr(base + scan_, '\0', end - scan_) != nullptr) {
        return fail(parse_error::malformed_header);
    }
    if (eol == nullptr) {
        scan_ = avail;
        size_t pending = avail - line_;
        if (pending > 0 && base[avail - 1] == '\r') {
            --pending;
        }
        if (pending > limits_.max_header_line_bytes) {
            return fail(parse_error::header_too_large);
        }
        return wait_for_more();
    }
    auto line = strip_cr(std::string_view(base + line_, end - line_));
    line_ = end + 1;
    scan_ = line_;
    if (line.empty()) {
        return begin_body();
    }
    if (line.size() > limits_.max_header_line_bytes) {
        return fail(parse_error::header_too_large);
    }
    if (cur_.headers.size() >= limits_.max_headers) {
        return fail(parse_error::too_many_headers);
    }
    // The frame still needs at least its NUL, so reaching the limit here is already too much.
    if (end + 1 >= limits_.max_frame_bytes) {
        return fail(parse_error::frame_too_large);
    }
    return add_header(line);
}

parser::step parser::add_header(std::string_view line) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
        return fail(parse_error::malformed_header);
    }
    auto mode = escaping_for(cur_.cmd, version_);
    auto& header = cur_.headers.emplace_back();
    if (!unescape(line.substr(0, colon), mode, header.first)
        || !unescape(line.substr(colon + 1), mode, header.second)) {
        return fail(parse_error::bad_escape);
    }
    // Only the first content-length counts, as with every repeated header.
    if (!has_content_length_ && header.first == "content-length") {
        has_content_length_ = true;
        auto err = parse_content_length(header.second, limits_.max_frame_bytes, content_length_);
        if (err != parse_error::none) {
            return fail(err);
        }
    }
    return step::next;
}

parser::step parser::begin_body() {
    stage_ = stage::body;
    // With a content-length the whole frame size is known now: headers, body and the NUL.
    if (has_content_length_
        && (line_ >= limits_.max_frame_bytes
            || content_length_ >= limits_.max_frame_bytes - line_)) {
        return fail(parse_error::frame_too_large);
    }
    return step::next;
}

parser::step parser::parse_body(frame& out) {
    const char* base = buf_.data() + pos_;
    size_t avail = buf_.size() - pos_;
    size_t end = 0;
    if (has_content_length_) {
        end = line_ + content_length_;
        if (avail <= end) {
            return step::more;
        }
        if (base[end] != '\0') {
            return fail(parse_error::missing_nul);
        }
    } else {
        auto* nul = static_cast<const char*>(std::memchr(base + scan_, '\0', avail - scan_));
        if (nul == nullptr) {
            scan_ = avail;
            return wait_for_more();
        }
        end = static_cast<size_t>(nul - base);
        if (end >= limits_.max_frame_bytes) {
            return fail(parse_error::frame_too_large);
        }
    }
    cur_.body.assign(base + line_, end - line_);
    // Swapping hands the caller the frame and keeps the caller's old header vector for reuse.
    std::swap(out, cur_);
    cur_.headers.clear();
    std::string().swap(cur_.body);
    pos_ += end + 1;
    stage_ = stage::command;
    scan_ = 0;
    line_ = 0;
    content_length_ = 0;
    has_content_length_ = false;
    return step::done;
}

parser::step parser::wait_for_more() {
    size_t avail = buf_.size() - pos_;
    // An unterminated frame needs at least one more byte, so at the limit it is already over.
    if (avail > 0 && avail >= limits_.max_frame_bytes) {
        return fail(parse_error::frame_too_large);
    }
    return step::more;
}

parser::step parser::fail(parse_error e) {
    error_ = e;
    std::string().swap(buf_);
    pos_ = 0;
    cur_ = frame{};
    return step::fail;
}

// -- encoder --------------------------------------------------------------------------------

void encode(const frame& f, version v, std::string& out) {
    auto mode = escaping_for(f.cmd, v);
    size_t estimate = 16 + f.body.size();
    for (const auto& header : f.headers) {
        estimate += header.first.size() + header.second.size() + 2;
    }
    out.reserve(out.size() + estimate);
    append_command(out, f.cmd);
    for (const auto& header : f.headers) {
        append_header_line(out, header.first, header.second, mode);
    }
    append_body(out, f.body);
}

void append_header(std::string& out, std::string_view name, std::string_view value, version v) {
    append_header_line(out, name, value, escaping_for(command::send, v));
}

void append_command(std::string& out, command c) {
    out.append(to_string(c).data(), to_string(c).size());
    out += '\n';
}

void append_body(std::string& out, std::string_view body) {
    out += '\n';
    out.append(body.data(), body.size());
    out += '\0';
}

} // namespace actormq::stomp
