// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "config/node_config.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace actormq {

class status_board;

/// The web server's request handling without sockets (docs/web.md, "Routes"): Basic auth,
/// routing, methods and error answers. `web_server` feeds it parsed requests; the unit tests
/// call it directly.
class web_routes {
public:
    using request = boost::beast::http::request<boost::beast::http::string_body>;
    using response = boost::beast::http::response<boost::beast::http::string_body>;

    /// What to do with a WebSocket upgrade request: refuse it with `refusal`, or accept it
    /// and first send the stored events after `since` (if the URL had `?since=N`).
    struct upgrade_decision {
        std::optional<response> refusal;
        std::optional<uint64_t> since;
    };

    /// Checks credentials against `security.users` when `security.security_enabled`.
    explicit web_routes(config::security_config security);

    /// Answers a plain (non-upgrade) request from what `board` holds.
    response handle(const request& req, const status_board& board) const;

    /// Decides on an upgrade request (only /ws/events may upgrade).
    upgrade_decision check_upgrade(const request& req) const;

    /// Whether an `Authorization` header value lets the client in.
    bool authorized(std::string_view authorization) const;

    /// A text/plain error answer: "<code> <reason>: <detail>".
    static response error(boost::beast::http::status status,
                          std::string_view detail,
                          unsigned version,
                          bool keep_alive);

    /// The `since` of a query string such as "since=5&x=y": 0 when absent, nullopt when it is
    /// not a decimal number.
    static std::optional<uint64_t> since_of(std::string_view query);

    /// Decodes standard base64 (with padding); nullopt on any invalid character or length.
    static std::optional<std::string> base64_decode(std::string_view text);

private:
    /// A 401 with `WWW-Authenticate: Basic realm="actormq"`.
    static response unauthorized(const request& req);

    config::security_config security_;
};

} // namespace actormq
