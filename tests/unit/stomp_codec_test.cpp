// SPDX-License-Identifier: Apache-2.0
#include "protocol/stomp_codec.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <set>
#include <string>
#include <string_view>
#include <vector>

using namespace actormq::stomp;
using namespace std::string_literals;

namespace {

constexpr version all_versions[] = {version::v1_0, version::v1_1, version::v1_2};

constexpr command all_commands[] = {
    command::connect,   command::stomp,       command::connected, command::send,
    command::subscribe, command::unsubscribe, command::ack,       command::nack,
    command::begin,     command::commit,      command::abort,     command::disconnect,
    command::message,   command::receipt,     command::error,
};

// Renders a frame with every byte visible, so a failed CHECK shows what differs.
std::string describe(const frame& f) {
    std::string out(to_string(f.cmd));
    auto append_visible = [&out](std::string_view text) {
        for (char ch : text) {
            auto byte = static_cast<unsigned char>(ch);
            if (byte < 0x20 || byte >= 0x7f || ch == '|' || ch == '%') {
                char hex[4];
                std::snprintf(hex, sizeof hex, "%%%02x", byte);
                out += hex;
            } else {
                out += ch;
            }
        }
    };
    for (const auto& [name, value] : f.headers) {
        out += '|';
        append_visible(name);
        out += '=';
        append_visible(value);
    }
    out += "|body=";
    append_visible(f.body);
    return out;
}

std::vector<std::string> describe_all(const std::vector<frame>& frames) {
    std::vector<std::string> out;
    for (const auto& f : frames) {
        out.push_back(describe(f));
    }
    return out;
}

// What a parser produced from some input.
struct outcome {
    std::vector<frame> frames;
    parse_error error = parse_error::none;
    size_t buffered = 0;
};

// Takes every frame that is ready out of `p`.
void drain(parser& p, outcome& result) {
    frame f;
    for (;;) {
        auto st = p.next(f);
        if (st == parser::status::frame) {
            result.frames.push_back(f);
            continue;
        }
        if (st == parser::status::error) {
            result.error = p.error();
        }
        return;
    }
}

// Feeds `wire` in pieces cut at `cuts` (offsets, ascending), draining after each piece.
outcome parse_pieces(std::string_view wire,
                     const std::vector<size_t>& cuts,
                     version v = version::v1_2,
                     parse_limits limits = {}) {
    parser p{limits};
    p.set_version(v);
    outcome result;
    size_t from = 0;
    std::vector<size_t> ends = cuts;
    ends.push_back(wire.size());
    for (size_t to : ends) {
        p.feed(wire.data() + from, to - from);
        drain(p, result);
        from = to;
    }
    result.buffered = p.buffered();
    return result;
}

outcome parse(std::string_view wire, version v = version::v1_2, parse_limits limits = {}) {
    return parse_pieces(wire, {}, v, limits);
}

// Parses `wire` and expects exactly one frame and nothing left over.
frame parse_one(std::string_view wire, version v = version::v1_2) {
    auto result = parse(wire, v);
    REQUIRE(result.error == parse_error::none);
    REQUIRE(result.frames.size() == 1);
    CHECK(result.buffered == 0);
    return result.frames.front();
}

parse_error
parse_error_of(std::string_view wire, version v = version::v1_2, parse_limits limits = {}) {
    return parse(wire, v, limits).error;
}

std::string encoded(const frame& f, version v) {
    std::string out;
    encode(f, v, out);
    return out;
}

frame make_frame(command c,
                 std::vector<std::pair<std::string, std::string>> headers,
                 std::string body = {}) {
    frame f;
    f.cmd = c;
    f.headers = std::move(headers);
    f.body = std::move(body);
    return f;
}

bool headers_are_escaped(command c, version v) {
    return v != version::v1_0 && c != command::connect && c != command::connected;
}

// A stream that uses most of the grammar: heart-beats, CRLF, escapes, repeated headers,
// content-length with NULs in the body, and a body that runs to the NUL.
const std::string mixed_stream = "\n\r\n"
                                 "CONNECT\r\naccept-version:1.2\r\nhost:a\\b\r\n\r\n\0"s
                                 "\n"
                                 "SEND\ndestination:/queue/a\\cb\nx:1\nx:2\n\nhello\0"s
                                 "\r\n\n"
                                 "SEND\ncontent-length:5\nk\\\\:v\\n\n\na\0b\0c\0"s
                                 "MESSAGE\r\nsubscription:0\r\n\r\n\0"s
                                 "\n\n";

} // namespace

// -- names ----------------------------------------------------------------------------------

TEST_CASE("stomp codec: names: commands and versions print their wire names") {
    CHECK(to_string(command::connect) == "CONNECT");
    CHECK(to_string(command::stomp) == "STOMP");
    CHECK(to_string(command::connected) == "CONNECTED");
    CHECK(to_string(command::send) == "SEND");
    CHECK(to_string(command::subscribe) == "SUBSCRIBE");
    CHECK(to_string(command::unsubscribe) == "UNSUBSCRIBE");
    CHECK(to_string(command::ack) == "ACK");
    CHECK(to_string(command::nack) == "NACK");
    CHECK(to_string(command::begin) == "BEGIN");
    CHECK(to_string(command::commit) == "COMMIT");
    CHECK(to_string(command::abort) == "ABORT");
    CHECK(to_string(command::disconnect) == "DISCONNECT");
    CHECK(to_string(command::message) == "MESSAGE");
    CHECK(to_string(command::receipt) == "RECEIPT");
    CHECK(to_string(command::error) == "ERROR");
    CHECK(to_string(version::v1_0) == "1.0");
    CHECK(to_string(version::v1_1) == "1.1");
    CHECK(to_string(version::v1_2) == "1.2");
}

TEST_CASE("stomp codec: names: every parse error has its own sentence") {
    const parse_error errors[] = {
        parse_error::frame_too_large,    parse_error::too_many_headers,
        parse_error::header_too_large,   parse_error::unknown_command,
        parse_error::malformed_header,   parse_error::bad_escape,
        parse_error::bad_content_length, parse_error::missing_nul,
    };
    std::set<std::string_view> seen;
    for (auto e : errors) {
        CHECK(to_string(e).size() > 10);
        seen.insert(to_string(e));
    }
    CHECK(seen.size() == std::size(errors));
    CHECK(to_string(parse_error::frame_too_large) == "frame exceeds the maximum frame size");
    CHECK(to_string(parse_error::unknown_command) == "unknown command");
}

// -- round trips ----------------------------------------------------------------------------

TEST_CASE("stomp codec: round trip: every command survives encode then parse in every version") {
    for (auto v : all_versions) {
        for (auto c : all_commands) {
            CAPTURE(to_string(v));
            CAPTURE(to_string(c));
            auto f = make_frame(c, {{"destination", "/queue/a"}, {"receipt", "r-1"}}, "body");
            if (headers_are_escaped(c, v)) {
                f.add("we:ird\\", "line\nbreak:colon\\slash");
            }
            if (v == version::v1_2 && headers_are_escaped(c, v)) {
                f.add("cr", "a\rb");
            }
            auto wire = encoded(f, v);
            CHECK(describe(parse_one(wire, v)) == describe(f));
            auto binary = make_frame(c, {{"content-length", "3"}}, "\0\n\0"s);
            CHECK(describe(parse_one(encoded(binary, v), v)) == describe(binary));
        }
    }
}

TEST_CASE("stomp codec: round trip: a value ending in CR survives where CR is not escaped") {
    for (auto v : {version::v1_0, version::v1_1}) {
        auto f = make_frame(command::send, {{"a", "x\r"}, {"b", "\r\r"}, {"c", ""}}, "");
        auto wire = encoded(f, v);
        CHECK(wire == "SEND\na:x\r\r\nb:\r\r\r\nc:\n\n\0"s);
        CHECK(describe(parse_one(wire, v)) == describe(f));
    }
}

// -- escaping -------------------------------------------------------------------------------

TEST_CASE("stomp codec: escaping: 1.2 decodes CR, LF, colon and backslash in names and values") {
    auto f = parse_one("SEND\na\\cb\\\\:1\\r2\\n3\\c4\\\\5\n\n\0"s, version::v1_2);
    REQUIRE(f.headers.size() == 1);
    CHECK(f.headers[0].first == "a:b\\");
    CHECK(f.headers[0].second == "1\r2\n3:4\\5");
}

TEST_CASE("stomp codec: escaping: 1.1 decodes LF, colon and backslash but rejects \\r") {
    auto f = parse_one("SEND\nk:1\\n2\\c3\\\\4\n\n\0"s, version::v1_1);
    CHECK(*f.find("k") == "1\n2:3\\4");
    CHECK(parse_error_of("SEND\nk:1\\r2\n\n\0"s, version::v1_1) == parse_error::bad_escape);
}

TEST_CASE("stomp codec: escaping: 1.0 and an unset version take backslashes literally") {
    auto f = parse_one("SEND\nk:a\\nb\\tc\\\n\n\0"s, version::v1_0);
    CHECK(*f.find("k") == "a\\nb\\tc\\");
    parser fresh;
    const auto wire = "SEND\nk:a\\cb\n\n\0"s;
    fresh.feed(wire.data(), wire.size());
    frame g;
    REQUIRE(fresh.next(g) == parser::status::frame);
    CHECK(*g.find("k") == "a\\cb");
}

TEST_CASE("stomp codec: escaping: CONNECT and CONNECTED headers are never unescaped") {
    for (auto v : all_versions) {
        auto connect = parse_one("CONNECT\nlogin:a\\nb\\tc\nhost:x\\cy\n\n\0"s, v);
        CHECK(*connect.find("login") == "a\\nb\\tc");
        CHECK(*connect.find("host") == "x\\cy");
        auto connected = parse_one("CONNECTED\nserver:s\\\\1\\q\n\n\0"s, v);
        CHECK(*connected.find("server") == "s\\\\1\\q");
    }
    auto stomp = parse("STOMP\nlogin:a\\tb\n\n\0"s, version::v1_2);
    CHECK(stomp.error == parse_error::bad_escape);
}

TEST_CASE("stomp codec: escaping: the encoder escapes by version and never in CONNECT") {
    auto f = make_frame(command::send, {{"a:b\\", "x\r\ny:z\\"}});
    CHECK(encoded(f, version::v1_2) == "SEND\na\\cb\\\\:x\\r\\ny\\cz\\\\\n\n\0"s);
    CHECK(encoded(f, version::v1_1) == "SEND\na\\cb\\\\:x\r\\ny\\cz\\\\\n\n\0"s);
    auto plain = make_frame(command::send, {{"k", "a:b\\c"}});
    CHECK(encoded(plain, version::v1_0) == "SEND\nk:a:b\\c\n\n\0"s);
    for (auto v : all_versions) {
        auto connect = make_frame(command::connect, {{"passcode", "p:w\\d"}});
        CHECK(encoded(connect, v) == "CONNECT\npasscode:p:w\\d\n\n\0"s);
        auto connected = make_frame(command::connected, {{"server", "s:1\\2"}});
        CHECK(encoded(connected, v) == "CONNECTED\nserver:s:1\\2\n\n\0"s);
    }
}

TEST_CASE("stomp codec: escaping: where escaping is impossible an LF is written as a space") {
    auto f = make_frame(command::message, {{"k\n", "a\nevil:1\n\nbody"}});
    CHECK(encoded(f, version::v1_0) == "MESSAGE\nk :a evil:1  body\n\n\0"s);
    auto connected = make_frame(command::connected, {{"server", "x\ny"}});
    CHECK(encoded(connected, version::v1_2) == "CONNECTED\nserver:x y\n\n\0"s);
}

TEST_CASE("stomp codec: escaping: an undefined sequence or a lone trailing backslash fails") {
    for (auto v : {version::v1_1, version::v1_2}) {
        CHECK(parse_error_of("SEND\nk:a\\tb\n\n\0"s, v) == parse_error::bad_escape);
        CHECK(parse_error_of("SEND\nk:ab\\\n\n\0"s, v) == parse_error::bad_escape);
        CHECK(parse_error_of("SEND\nk\\x:ab\n\n\0"s, v) == parse_error::bad_escape);
    }
}

// -- headers --------------------------------------------------------------------------------

TEST_CASE("stomp codec: headers: repeated headers are all kept in order and the first wins") {
    auto f = parse_one("MESSAGE\nfoo:1\nbar:x\nfoo:2\nfoo:3\n\n\0"s);
    REQUIRE(f.headers.size() == 4);
    CHECK(f.headers[0] == std::pair<std::string, std::string>{"foo", "1"});
    CHECK(f.headers[2] == std::pair<std::string, std::string>{"foo", "2"});
    CHECK(f.headers[3] == std::pair<std::string, std::string>{"foo", "3"});
    CHECK(*f.find("foo") == "1");
    CHECK(*f.find("bar") == "x");
    CHECK(f.find("baz") == nullptr);
}

TEST_CASE("stomp codec: headers: the value is everything after the first colon") {
    auto old = parse_one("SEND\nurl:http://x:80/a\nempty:\n\n\0"s, version::v1_0);
    CHECK(*old.find("url") == "http://x:80/a");
    CHECK(*old.find("empty") == "");
    auto current = parse_one("SEND\nk:a:b\n\n\0"s, version::v1_2);
    CHECK(*current.find("k") == "a:b");
}

TEST_CASE("stomp codec: headers: only the first content-length decides the body") {
    auto f = parse_one("SEND\ncontent-length:2\ncontent-length:junk\n\nab\0"s);
    CHECK(f.body == "ab");
    CHECK(f.headers.size() == 2);
}

// -- bodies ---------------------------------------------------------------------------------

TEST_CASE("stomp codec: body: content-length takes exactly that many bytes, NULs included") {
    auto f = parse_one("SEND\ncontent-length:7\n\n\0a\0\0b\n\0\0"s);
    CHECK(f.body == "\0a\0\0b\n\0"s);
    auto empty = parse_one("SEND\ncontent-length:0\n\n\0"s);
    CHECK(empty.body.empty());
    auto zeros = parse_one("SEND\ncontent-length:0003\n\nabc\0"s);
    CHECK(zeros.body == "abc");
}

TEST_CASE("stomp codec: body: without content-length the body runs to the first NUL") {
    auto result = parse("SEND\n\nline 1\nline 2\r\n\0SEND\n\n\0"s);
    REQUIRE(result.frames.size() == 2);
    CHECK(result.frames[0].body == "line 1\nline 2\r\n");
    CHECK(result.frames[1].body.empty());
}

// -- framing --------------------------------------------------------------------------------

TEST_CASE("stomp codec: framing: CRLF line endings are accepted and the CR is not kept") {
    auto f = parse_one("SEND\r\ndestination:/q\r\nempty:\r\n\r\nbody\r\n\0"s);
    CHECK(f.cmd == command::send);
    CHECK(*f.find("destination") == "/q");
    CHECK(*f.find("empty") == "");
    CHECK(f.body == "body\r\n");
}

TEST_CASE("stomp codec: framing: heart-beat EOLs before, between and after frames are skipped") {
    auto result = parse("\n\r\n\nSEND\n\n\0\r\n\r\n\n\nACK\nid:1\n\n\0\n\r\n"s);
    CHECK(result.error == parse_error::none);
    REQUIRE(result.frames.size() == 2);
    CHECK(result.frames[0].cmd == command::send);
    CHECK(result.frames[1].cmd == command::ack);
    CHECK(result.buffered == 0);
    auto split = parse_pieces("SEND\n\n\0\r\nACK\nid:1\n\n\0"s, {8});
    CHECK(split.error == parse_error::none);
    CHECK(split.frames.size() == 2);
}

TEST_CASE("stomp codec: framing: several frames in one feed come out one per call") {
    const auto wire = "SEND\nn:1\n\na\0SEND\nn:2\n\nb\0\nSEND\nn:3\ncontent-length:1\n\nc\0"s;
    parser p;
    p.set_version(version::v1_2);
    p.feed(wire.data(), wire.size());
    frame f;
    for (const char* n : {"1", "2", "3"}) {
        REQUIRE(p.next(f) == parser::status::frame);
        CHECK(*f.find("n") == n);
    }
    CHECK(p.next(f) == parser::status::need_more);
    CHECK(p.buffered() == 0);
}

TEST_CASE("stomp codec: framing: buffered counts the bytes of an unfinished frame") {
    parser p;
    const auto wire = "\n\nSEND\nk:v\n"s;
    p.feed(wire.data(), wire.size());
    frame f;
    CHECK(p.next(f) == parser::status::need_more);
    CHECK(p.buffered() == wire.size() - 2);
}

TEST_CASE("stomp codec: parse: a frame split at every byte boundary yields the same frame") {
    auto whole = parse(mixed_stream);
    REQUIRE(whole.error == parse_error::none);
    REQUIRE(whole.frames.size() == 4);
    auto expected = describe_all(whole.frames);
    std::vector<size_t> every_byte;
    for (size_t i = 1; i < mixed_stream.size(); ++i) {
        every_byte.push_back(i);
    }
    auto bytewise = parse_pieces(mixed_stream, every_byte);
    CHECK(bytewise.error == parse_error::none);
    CHECK(describe_all(bytewise.frames) == expected);
    CHECK(bytewise.buffered == 0);
    for (size_t i = 0; i <= mixed_stream.size(); ++i) {
        for (size_t j = i; j <= mixed_stream.size(); j += 7) {
            auto split = parse_pieces(mixed_stream, {i, j});
            CAPTURE(i);
            CAPTURE(j);
            REQUIRE(split.error == parse_error::none);
            REQUIRE(describe_all(split.frames) == expected);
        }
    }
}

TEST_CASE("stomp codec: framing: a long stream in odd chunks parses every frame") {
    std::string wire;
    std::string body(1000, 'x');
    const size_t count = 3000;
    for (size_t i = 0; i < count; ++i) {
        auto f = make_frame(command::message, {{"message-id", std::to_string(i)}}, body);
        if (i % 2 == 0) {
            f.add("content-length", std::to_string(body.size()));
        }
        encode(f, version::v1_2, wire);
        wire += '\n';
    }
    parser p;
    p.set_version(version::v1_2);
    frame f;
    size_t seen = 0;
    for (size_t from = 0; from < wire.size(); from += 4093) {
        p.feed(wire.data() + from, std::min<size_t>(4093, wire.size() - from));
        while (p.next(f) == parser::status::frame) {
            REQUIRE(*f.find("message-id") == std::to_string(seen));
            REQUIRE(f.body.size() == body.size());
            ++seen;
        }
        REQUIRE(p.error() == parse_error::none);
    }
    CHECK(seen == count);
    CHECK(p.buffered() == 0);
}

// -- encoder --------------------------------------------------------------------------------

TEST_CASE("stomp codec: encode: writes command, headers, blank line, body and NUL, nothing more") {
    auto f = make_frame(command::message, {{"destination", "/q"}, {"x", "1"}}, "hi");
    CHECK(encoded(f, version::v1_2) == "MESSAGE\ndestination:/q\nx:1\n\nhi\0"s);
    std::string pieces = "prefix";
    append_command(pieces, command::message);
    append_header(pieces, "destination", "/q", version::v1_2);
    append_header(pieces, "x", "1", version::v1_2);
    append_body(pieces, "hi");
    CHECK(pieces == "prefix" + encoded(f, version::v1_2));
    std::string header;
    append_header(header, "a:b", "c\r", version::v1_2);
    CHECK(header == "a\\cb:c\\r\n");
}

// -- errors ---------------------------------------------------------------------------------

TEST_CASE("stomp codec: errors: each parse error comes from a minimal input") {
    parse_limits small;
    small.max_frame_bytes = 16;
    small.max_headers = 1;
    small.max_header_line_bytes = 4;
    CHECK(parse_error_of("SEND\n\n0123456789\0"s, version::v1_2, small)
          == parse_error::frame_too_large);
    CHECK(parse_error_of("SEND\na:1\nb:2\n\n\0"s, version::v1_2, small)
          == parse_error::too_many_headers);
    CHECK(parse_error_of("SEND\na:123\n\n\0"s, version::v1_2, small)
          == parse_error::header_too_large);
    CHECK(parse_error_of("FOO\n\n\0"s) == parse_error::unknown_command);
    CHECK(parse_error_of("SEND\nfoo\n\n\0"s) == parse_error::malformed_header);
    CHECK(parse_error_of("SEND\nk:\\t\n\n\0"s) == parse_error::bad_escape);
    CHECK(parse_error_of("SEND\ncontent-length:x\n\n\0"s) == parse_error::bad_content_length);
    CHECK(parse_error_of("SEND\ncontent-length:1\n\nab\0"s) == parse_error::missing_nul);
}

TEST_CASE("stomp codec: errors: commands are exact, upper-case and alone on their line") {
    for (auto wire : {"send\n\n\0"s, "SEND \n\n\0"s, " SEND\n\n\0"s, "SENDX\n\n\0"s,
                      "SEND\r\r\n\n\0"s, "\rSEND\n\n\0"s}) {
        CAPTURE(describe(make_frame(command::send, {}, wire)));
        CHECK(parse_error_of(wire) == parse_error::unknown_command);
    }
}

TEST_CASE("stomp codec: errors: junk that cannot start a command fails before its EOL") {
    parser p;
    p.feed("SUBSCRI", 7);
    frame f;
    CHECK(p.next(f) == parser::status::need_more);
    p.feed("P", 1);
    CHECK(p.next(f) == parser::status::error);
    CHECK(p.error() == parse_error::unknown_command);
    parser http;
    http.feed("G", 1);
    CHECK(http.next(f) == parser::status::error);
    parser partial;
    partial.feed("UNSUBSCRIB", 10);
    CHECK(partial.next(f) == parser::status::need_more);
    parser endless;
    const std::string many(64, 'A');
    endless.feed(many.data(), many.size());
    CHECK(endless.next(f) == parser::status::error);
}

TEST_CASE("stomp codec: errors: content-length must be a plain non-negative decimal") {
    for (auto value : {"", "-1", "+1", " 1", "1 ", "0x10", "1.0", "1e3", "١"}) {
        CAPTURE(value);
        auto wire = "SEND\ncontent-length:"s + value + "\n\n\0"s;
        CHECK(parse_error_of(wire) == parse_error::bad_content_length);
    }
}

TEST_CASE("stomp codec: errors: a NUL before the blank line is a malformed header at once") {
    CHECK(parse_error_of("SEND\n\0"s) == parse_error::malformed_header);
    CHECK(parse_error_of("SEND\nk:v\0"s) == parse_error::malformed_header);
    CHECK(parse_error_of("SEND\nk:v\0\n\n\0"s) == parse_error::malformed_header);
}

TEST_CASE("stomp codec: errors: the parser stays in error and ignores further input") {
    parser p;
    const auto bad = "NOPE\n\n\0"s;
    const auto good = "SEND\n\n\0"s;
    p.feed(bad.data(), bad.size());
    frame f;
    CHECK(p.next(f) == parser::status::error);
    CHECK(p.error() == parse_error::unknown_command);
    p.feed(good.data(), good.size());
    CHECK(p.next(f) == parser::status::error);
    CHECK(p.next(f) == parser::status::error);
    CHECK(p.error() == parse_error::unknown_command);
    CHECK(p.buffered() == 0);
}

// -- limits ---------------------------------------------------------------------------------

TEST_CASE("stomp codec: limits: a frame of exactly max_frame_bytes parses, one more byte fails") {
    const auto exact = "SEND\n\n"s + std::string(57, 'x') + '\0';
    REQUIRE(exact.size() == 64);
    parse_limits limits;
    limits.max_frame_bytes = 64;
    CHECK(parse(exact, version::v1_2, limits).frames.size() == 1);
    const auto over = "SEND\n\n"s + std::string(58, 'x') + '\0';
    CHECK(parse(over, version::v1_2, limits).error == parse_error::frame_too_large);
    const auto with_length = "SEND\ncontent-length:39\n\n"s + std::string(39, 'y') + '\0';
    REQUIRE(with_length.size() == 64);
    CHECK(parse(with_length, version::v1_2, limits).frames.size() == 1);
}

TEST_CASE("stomp codec: limits: an oversize content-length fails before the body arrives") {
    parse_limits limits;
    limits.max_frame_bytes = 64;
    parser p{limits};
    frame f;
    const auto huge = "SEND\ncontent-length:65\n"s;
    p.feed(huge.data(), huge.size());
    CHECK(p.next(f) == parser::status::error);
    CHECK(p.error() == parse_error::frame_too_large);
    parser q{limits};
    const auto headers = "SEND\ncontent-length:40\n\n"s;
    q.feed(headers.data(), headers.size());
    CHECK(q.next(f) == parser::status::error);
    CHECK(q.error() == parse_error::frame_too_large);
    parser r;
    const auto overflow = "SEND\ncontent-length:99999999999999999999999999\n"s;
    r.feed(overflow.data(), overflow.size());
    CHECK(r.next(f) == parser::status::error);
    CHECK(r.error() == parse_error::frame_too_large);
}

TEST_CASE("stomp codec: limits: an unterminated body fails once max_frame_bytes are buffered") {
    parse_limits limits;
    limits.max_frame_bytes = 64;
    parser p{limits};
    frame f;
    const auto start = "SEND\n\n"s + std::string(57, 'x');
    p.feed(start.data(), start.size());
    CHECK(p.next(f) == parser::status::need_more);
    p.feed("x", 1);
    CHECK(p.next(f) == parser::status::error);
    CHECK(p.error() == parse_error::frame_too_large);
    parser headers_only{limits};
    const auto lines = "SEND\n"s + std::string(20, 'h') + ":\n" + std::string(20, 'i') + ":\n"
                       + std::string(20, 'j');
    headers_only.feed(lines.data(), lines.size());
    CHECK(headers_only.next(f) == parser::status::error);
    CHECK(headers_only.error() == parse_error::frame_too_large);
}

TEST_CASE("stomp codec: limits: exactly max_headers headers parse, one more fails") {
    parse_limits limits;
    limits.max_headers = 3;
    CHECK(parse("SEND\na:1\nb:2\nc:3\n\n\0"s, version::v1_2, limits).frames.size() == 1);
    CHECK(parse("SEND\na:1\nb:2\nc:3\nd:4\n\n\0"s, version::v1_2, limits).error
          == parse_error::too_many_headers);
}

TEST_CASE("stomp codec: limits: a header line over the limit fails even before its EOL") {
    parse_limits limits;
    limits.max_header_line_bytes = 8;
    CHECK(parse("SEND\na:123456\r\n\n\0"s, version::v1_2, limits).frames.size() == 1);
    CHECK(parse("SEND\na:1234567\n\n\0"s, version::v1_2, limits).error
          == parse_error::header_too_large);
    parser p{limits};
    frame f;
    const auto almost = "SEND\na:123456\r"s;
    p.feed(almost.data(), almost.size());
    CHECK(p.next(f) == parser::status::need_more);
    p.feed("7", 1);
    CHECK(p.next(f) == parser::status::error);
    CHECK(p.error() == parse_error::header_too_large);
}
