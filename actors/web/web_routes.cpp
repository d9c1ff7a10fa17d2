// SPDX-License-Identifier: Apache-2.0
#include "actors/web/web_routes.hpp"

#include "actors/web/status_board.hpp"
#include "actors/web/status_page.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include <cctype>
#include <charconv>

namespace actormq {

namespace http = boost::beast::http;

namespace {

/// The routes a client may GET (docs/web.md).
enum class route { page, status, events, metrics, ws_events, none };

route route_of(std::string_view path) {
    if (path == "/" || path == "/index.html") {
        return route::page;
    }
    if (path == "/api/status") {
        return route::status;
    }
    if (path == "/api/events") {
        return route::events;
    }
    if (path == "/metrics") {
        return route::metrics;
    }
    if (path == "/ws/events") {
        return route::ws_events;
    }
    return route::none;
}

/// Splits a request target into path and query (without the '?').
std::pair<std::string_view, std::string_view> split_target(std::string_view target) {
    auto q = target.find('?');
    if (q == std::string_view::npos) {
        return {target, {}};
    }
    return {target.substr(0, q), target.substr(q + 1)};
}

/// Compares without stopping at the first difference, so the time taken does not tell how
/// much of a password was right.
bool same_secret(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    unsigned char diff = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    }
    return diff == 0;
}

/// Beast 1.74 hands out boost::string_view.
std::string_view sv(boost::beast::string_view s) {
    return {s.data(), s.size()};
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i]))
            != std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

web_routes::response
make_response(const web_routes::request& req, std::string_view content_type, std::string body) {
    web_routes::response res{http::status::ok, req.version()};
    res.set(http::field::server, "actormq");
    res.set(http::field::content_type, std::string{content_type});
    res.set(http::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

} // namespace

web_routes::web_routes(config::security_config security) : security_(std::move(security)) {}

web_routes::response web_routes::handle(const request& req, const status_board& board) const {
    if (req.method() == http::verb::head) {
        // HEAD: GET's answer, errors included, with its headers (Content-Length too) and no
        // body. The client reads no body after a HEAD answer, so a body would pass for the
        // start of the next answer on a kept-alive connection.
        auto get = req;
        get.method(http::verb::get);
        auto res = handle(get, board);
        res.body().clear();
        return res;
    }
    auto [path, query] = split_target(sv(req.target()));
    if (!authorized(sv(req[http::field::authorization]))) {
        return unauthorized(req);
    }
    auto r = route_of(path);
    if (r == route::none) {
        return error(http::status::not_found, path, req.version(), req.keep_alive());
    }
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
        auto res = error(http::status::method_not_allowed, sv(req.method_string()), req.version(),
                         req.keep_alive());
        res.set(http::field::allow, "GET, HEAD");
        return res;
    }
    switch (r) {
        case route::page:
            return make_response(req, "text/html; charset=utf-8", std::string{status_page_html});
        case route::status:
            return make_response(req, "application/json", *board.status_json());
        case route::events: {
            auto since = since_of(query);
            if (!since) {
                return error(http::status::bad_request, "since must be a decimal number",
                             req.version(), req.keep_alive());
            }
            return make_response(req, "application/json", board.events_json(*since));
        }
        case route::metrics:
            return make_response(req, "text/plain; version=0.0.4; charset=utf-8",
                                 *board.metrics_text());
        case route::ws_events: {
            auto res = error(http::status::upgrade_required, "/ws/events is a WebSocket",
                             req.version(), req.keep_alive());
            res.set(http::field::upgrade, "websocket");
            return res;
        }
        case route::none:
            break;
    }
    return error(http::status::not_found, path, req.version(), req.keep_alive());
}

/// Whether a WebSocket's Origin (if the client sent one) names the host it connected to.
static bool same_origin(std::string_view origin, std::string_view host) {
    if (origin.empty()) {
        return true; // not a browser
    }
    auto scheme = origin.find("://");
    if (scheme == std::string_view::npos) {
        return false;
    }
    return origin.substr(scheme + 3) == host;
}

web_routes::upgrade_decision web_routes::check_upgrade(const request& req) const {
    upgrade_decision d;
    auto [path, query] = split_target(sv(req.target()));
    if (!authorized(sv(req[http::field::authorization]))) {
        d.refusal = unauthorized(req);
    } else if (!same_origin(sv(req[http::field::origin]), sv(req[http::field::host]))) {
        // WebSockets are outside CORS and browsers send cached Basic credentials with them:
        // without this, any page the operator opens could read the event feed.
        d.refusal = error(http::status::forbidden, "cross-origin WebSocket refused",
                          req.version(), false);
    } else if (route_of(path) != route::ws_events) {
        d.refusal = error(http::status::not_found, path, req.version(), false);
    } else if (!query.empty()) {
        auto since = since_of(query);
        if (!since) {
            d.refusal = error(http::status::bad_request, "since must be a decimal number",
                              req.version(), false);
        } else if (query.find("since=") != std::string_view::npos) {
            d.since = since;
        }
    }
    if (d.refusal) {
        // A refused upgrade ends the connection: its Connection header asked for an upgrade,
        // not for another request.
        d.refusal->keep_alive(false);
    }
    return d;
}

bool web_routes::authorized(std::string_view authorization) const {
    if (!security_.security_enabled) {
        return true;
    }
    auto space = authorization.find(' ');
    if (space == std::string_view::npos || !iequals(authorization.substr(0, space), "basic")) {
        return false;
    }
    auto token = authorization.substr(space + 1);
    while (!token.empty() && token.front() == ' ') {
        token.remove_prefix(1);
    }
    auto decoded = base64_decode(token);
    if (!decoded) {
        return false;
    }
    auto colon = decoded->find(':');
    if (colon == std::string::npos) {
        return false;
    }
    std::string_view user{decoded->data(), colon};
    std::string_view password{decoded->data() + colon + 1, decoded->size() - colon - 1};
    bool ok = false;
    for (const auto& u : security_.users) {
        // Every user is compared in full (no short cut), so the time taken does not tell
        // which names exist.
        bool match = same_secret(user, u.name) & same_secret(password, u.password);
        ok = ok || match;
    }
    return ok;
}

web_routes::response
web_routes::error(http::status status, std::string_view detail, unsigned version, bool keep_alive) {
    response res{status, version};
    res.set(http::field::server, "actormq");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(keep_alive);
    res.body() = std::to_string(static_cast<unsigned>(status)) + " "
                 + std::string{http::obsolete_reason(status)} + ": " + std::string{detail} + "\n";
    res.prepare_payload();
    return res;
}

web_routes::response web_routes::unauthorized(const request& req) {
    auto res =
        error(http::status::unauthorized, "credentials required", req.version(), req.keep_alive());
    res.set(http::field::www_authenticate, "Basic realm=\"actormq\"");
    return res;
}

std::optional<uint64_t> web_routes::since_of(std::string_view query) {
    while (!query.empty()) {
        auto amp = query.find('&');
        auto param = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (param.substr(0, 6) != "since=") {
            continue;
        }
        auto digits = param.substr(6);
        uint64_t value = 0;
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
        if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size()) {
            return std::nullopt;
        }
        return value;
    }
    return uint64_t{0};
}

std::optional<std::string> web_routes::base64_decode(std::string_view text) {
    static constexpr std::string_view alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (text.size() % 4 != 0) {
        return std::nullopt;
    }
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    size_t pad = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '=') {
            // Padding only at the end, at most two.
            if (i + 2 < text.size()) {
                return std::nullopt;
            }
            ++pad;
            continue;
        }
        auto v = alphabet.find(c);
        if (v == std::string_view::npos || pad > 0) {
            return std::nullopt;
        }
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    return out;
}

} // namespace actormq
