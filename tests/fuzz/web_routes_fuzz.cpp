// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the web server's request handling (docs/fuzzing.md). It builds a request
// from the input and hands it to web_routes::handle and web_routes::check_upgrade, the two calls
// web_server makes, with Basic auth on and a status_board that holds a status document, metrics
// and events. It checks that
//   - the answer is 401 exactly when `authorized` refuses the Authorization header, and one of
//     the documented statuses otherwise; 200 only for GET or HEAD,
//   - the answer keeps the request's version and keep-alive, its Content-Length is its body's
//     size, and a HEAD answer (an error too) has the headers of the GET answer and no body,
//   - a JSON route answers valid JSON, and
//   - a refused upgrade closes the connection, and an accepted one is /ws/events, authorized.
// Byte 0 picks how the request is built and what happens to its Authorization header:
//   bit 0 clear: the rest is raw HTTP/1.x through Beast's parser with web_server's limits;
//   bit 0 set:   byte 1 picks the version (10, 11 or any in 1..99), and the rest is
//                "METHOD\nTARGET\nName: value\n...\n\nBODY", set without a parser, so targets
//                and methods no parser would pass;
//   bits 1-2:    keep the header, put in a valid one, remove it, or put in a wrong password
//                (so the fuzzer gets past auth without guessing base64); bit 3 picks the user;
//   bits 4-5:    keep the method, or make it GET, HEAD or POST.
#include "actors/web/status_board.hpp"
#include "actors/web/web_routes.hpp"
#include "actors/web/web_server.hpp"

#include <boost/beast/core/buffers_prefix.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/verb.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace {

using actormq::status_board;
using actormq::web_routes;
namespace http = boost::beast::http;

// Aborts, which libFuzzer reports as a crash with the input that caused it.
void require(bool ok) {
    if (!ok) {
        std::abort();
    }
}

std::string_view sv(boost::beast::string_view s) {
    return {s.data(), s.size()};
}

actormq::config::security_config security() {
    actormq::config::security_config s;
    s.users.push_back({"guest", "guest", {}});
    s.users.push_back({"admin", "s3cret:with:colons", {}});
    return s;
}

const web_routes& routes() {
    static const web_routes r{security()};
    return r;
}

const status_board& board() {
    static status_board* b = [] {
        auto* out = new status_board;
        out->publish(R"({"node":"n1","role":"live","queues":[{"name":"q","depth":3}]})",
                     "# TYPE actormq_queue_depth gauge\nactormq_queue_depth{queue=\"q\"} 3\n");
        for (uint64_t seq = 1; seq <= 5; ++seq) {
            out->add_event(seq, R"({"seq":)" + std::to_string(seq) + R"(,"event":"x"})");
        }
        return out;
    }();
    return *b;
}

// Raw HTTP through the parser web_server uses, with its limits; nullopt if it refuses.
std::optional<web_routes::request> parse_raw(std::string_view wire) {
    http::request_parser<http::string_body> p;
    p.header_limit(static_cast<uint32_t>(actormq::web_server::header_bytes_max));
    p.body_limit(actormq::web_server::body_bytes_max);
    p.eager(true);
    boost::beast::error_code ec;
    boost::asio::const_buffer buf{wire.data(), wire.size()};
    while (buf.size() > 0 && !p.is_done()) {
        auto used = p.put(buf, ec);
        if (ec == http::error::need_more) {
            break;
        }
        if (ec) {
            return std::nullopt;
        }
        buf += used;
    }
    if (!p.is_done()) {
        p.put_eof(ec);
        if (ec || !p.is_done()) {
            return std::nullopt;
        }
    }
    return p.release();
}

boost::beast::string_view bsv(std::string_view s) {
    return {s.data(), s.size()};
}

std::string_view next_line(std::string_view& rest) {
    auto nl = rest.find('\n');
    auto line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    return line;
}

// "METHOD\nTARGET\nName: value\n...\n\nBODY" set field by field, without a parser.
std::optional<web_routes::request> build(unsigned version, std::string_view rest) {
    web_routes::request req;
    try {
        req.version(version);
        req.method_string(bsv(next_line(rest)));
        req.target(bsv(next_line(rest)));
        while (!rest.empty()) {
            auto line = next_line(rest);
            if (line.empty()) {
                break;
            }
            auto colon = line.find(':');
            auto value =
                colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
            // A copy, not a view into the input: Boost 1.74's beast::iequals reads one byte
            // past a name whose last character differs from a stored one's only in case. The
            // parser's names are followed by ':' in its buffer, so web_server never sees it.
            std::string name{line.substr(0, colon)};
            req.insert(name, bsv(value));
        }
        req.body() = std::string{rest};
    } catch (const std::exception&) {
        // Beast refuses some names and values; a request it cannot hold never reaches us.
        return std::nullopt;
    }
    return req;
}

bool json_route(std::string_view target) {
    auto path = target.substr(0, target.find('?'));
    return path == "/api/status" || path == "/api/events";
}

void check_head(const web_routes::request& req, const web_routes::response& res) {
    require(res.body().empty());
    auto get = req;
    get.method(http::verb::get);
    auto full = routes().handle(get, board());
    require(full.result() == res.result());
    require(sv(full[http::field::content_length]) == sv(res[http::field::content_length]));
    require(sv(full[http::field::content_length]) == std::to_string(full.body().size()));
    require(sv(full[http::field::content_type]) == sv(res[http::field::content_type]));
}

void check_handle(const web_routes::request& req, bool authorized) {
    auto res = routes().handle(req, board());
    auto code = res.result_int();
    require(code == 200 || code == 400 || code == 401 || code == 404 || code == 405 || code == 426);
    require((code == 401) == !authorized);
    require(res.version() == req.version());
    require(res.keep_alive() == req.keep_alive());
    require(code != 200 || req.method() == http::verb::get || req.method() == http::verb::head);
    if (req.method() == http::verb::head) {
        // docs/web.md: HEAD works on every route and answers GET's headers without the body,
        // errors included (a body after a HEAD answer would be read as the next answer).
        check_head(req, res);
        return;
    }
    require(sv(res[http::field::content_length]) == std::to_string(res.body().size()));
    if (code != 200) {
        require(!res.body().empty() && res.body().back() == '\n');
    } else if (json_route(sv(req.target()))) {
        require(nlohmann::json::accept(res.body()));
    }
}

void check_upgrade(const web_routes::request& req, bool authorized) {
    auto d = routes().check_upgrade(req);
    if (d.refusal) {
        auto code = d.refusal->result_int();
        require(code == 400 || code == 401 || code == 404);
        require((code == 401) == !authorized);
        require(!d.refusal->keep_alive());
        require(!d.since);
        return;
    }
    require(authorized);
    auto target = sv(req.target());
    require(target.substr(0, target.find('?')) == "/ws/events");
}

void check_base64(std::string_view text) {
    auto decoded = web_routes::base64_decode(text);
    if (decoded) {
        require(text.size() % 4 == 0);
        require(decoded->size() <= text.size() / 4 * 3);
        require(decoded->size() + 2 >= text.size() / 4 * 3);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) {
        return 0;
    }
    std::string_view rest{reinterpret_cast<const char*>(data) + 2, size - 2};
    // Beast requires a version in 1..99 (an assert); its parser only gives 10 and 11.
    unsigned version = data[1] % 3 == 0 ? 10u : data[1] % 3 == 1 ? 11u : 1u + data[1] % 99u;
    auto req = (data[0] & 1) == 0 ? parse_raw({reinterpret_cast<const char*>(data) + 1, size - 1})
                                  : build(version, rest);
    if (!req) {
        return 0;
    }
    switch ((data[0] >> 1) & 3) {
        case 1:
            req->set(http::field::authorization, (data[0] & 8) != 0
                                                     ? "Basic Z3Vlc3Q6Z3Vlc3Q="
                                                     : "basic  YWRtaW46czNjcmV0OndpdGg6Y29sb25z");
            break;
        case 2:
            req->erase(http::field::authorization);
            break;
        case 3:
            req->set(http::field::authorization, "Basic Z3Vlc3Q6d3Jvbmc=");
            break;
        default:
            break;
    }
    switch ((data[0] >> 4) & 3) {
        case 1:
            req->method(http::verb::get);
            break;
        case 2:
            req->method(http::verb::head);
            break;
        case 3:
            req->method(http::verb::post);
            break;
        default:
            break;
    }
    auto authorization = sv((*req)[http::field::authorization]);
    bool authorized = routes().authorized(authorization);
    require(authorized == (((data[0] >> 1) & 3) == 1) || ((data[0] >> 1) & 3) == 0);
    check_handle(*req, authorized);
    check_upgrade(*req, authorized);
    check_base64(authorization.substr(authorization.find(' ') + 1));
    web_routes::since_of(sv(req->target()));
    return 0;
}
