// SPDX-License-Identifier: Apache-2.0
// The web server's request handling without sockets (actors/web/web_routes.cpp): Basic auth,
// routes, methods and their errors.
#include "actors/web/status_board.hpp"
#include "actors/web/web_routes.hpp"

#include <boost/beast/http/field.hpp>
#include <doctest/doctest.h>

#include <string>

using actormq::status_board;
using actormq::web_routes;
namespace http = boost::beast::http;

namespace {

actormq::config::security_config guest_only() {
    actormq::config::security_config s;
    s.users.push_back({"guest", "guest", {}});
    s.users.push_back({"admin", "s3cret:with:colons", {}});
    return s;
}

/// "Basic " + base64("guest:guest").
const char* guest_auth = "Basic Z3Vlc3Q6Z3Vlc3Q=";

web_routes::request get(const std::string& target, const char* auth = guest_auth) {
    web_routes::request req{http::verb::get, target, 11};
    if (auth != nullptr) {
        req.set(http::field::authorization, auth);
    }
    return req;
}

} // namespace

TEST_CASE("web_routes: base64: decodes padded input and rejects malformed input") {
    CHECK(web_routes::base64_decode("Z3Vlc3Q6Z3Vlc3Q=") == std::string{"guest:guest"});
    CHECK(web_routes::base64_decode("YQ==") == std::string{"a"});
    CHECK(web_routes::base64_decode("YWI=") == std::string{"ab"});
    CHECK(web_routes::base64_decode("YWJj") == std::string{"abc"});
    CHECK(web_routes::base64_decode("") == std::string{});
    CHECK_FALSE(web_routes::base64_decode("YWJ").has_value());  // length not a multiple of 4
    CHECK_FALSE(web_routes::base64_decode("Y=Jj").has_value()); // padding in the middle
    CHECK_FALSE(web_routes::base64_decode("YW!j").has_value()); // not in the alphabet
    CHECK_FALSE(web_routes::base64_decode("Y===").has_value()); // three padding characters
}

TEST_CASE("web_routes: since: absent is 0, a number is taken, anything else is refused") {
    CHECK(web_routes::since_of("") == uint64_t{0});
    CHECK(web_routes::since_of("since=17") == uint64_t{17});
    CHECK(web_routes::since_of("x=1&since=4") == uint64_t{4});
    CHECK_FALSE(web_routes::since_of("since=").has_value());
    CHECK_FALSE(web_routes::since_of("since=-1").has_value());
    CHECK_FALSE(web_routes::since_of("since=12abc").has_value());
    CHECK_FALSE(web_routes::since_of("since=99999999999999999999999").has_value());
}

TEST_CASE("web_routes: auth: any configured user with its password; nothing else") {
    web_routes r{guest_only()};
    CHECK(r.authorized("Basic Z3Vlc3Q6Z3Vlc3Q="));
    CHECK(r.authorized("basic  Z3Vlc3Q6Z3Vlc3Q="));                // scheme is case-insensitive
    CHECK(r.authorized("Basic YWRtaW46czNjcmV0OndpdGg6Y29sb25z")); // admin:s3cret:with:colons
    CHECK_FALSE(r.authorized(""));
    CHECK_FALSE(r.authorized("Basic Z3Vlc3Q6d3Jvbmc=")); // guest:wrong
    CHECK_FALSE(r.authorized("Basic Z3Vlc3Q="));         // guest (no colon)
    CHECK_FALSE(r.authorized("Basic bm9ib2R5Omd1ZXN0")); // nobody:guest
    CHECK_FALSE(r.authorized("Bearer Z3Vlc3Q6Z3Vlc3Q="));
    CHECK_FALSE(r.authorized("Basic %%%%"));
}

TEST_CASE("web_routes: auth: with security disabled every request is let in") {
    auto s = guest_only();
    s.security_enabled = false;
    web_routes r{s};
    CHECK(r.authorized(""));
}

TEST_CASE("web_routes: handle: each route answers with its content type") {
    web_routes r{guest_only()};
    status_board b;
    b.publish(R"({"connections":3})", "actormq_connections 3\n");
    b.add_event(1, R"({"seq":1,"kind":"started"})");

    auto page = r.handle(get("/"), b);
    CHECK(page.result() == http::status::ok);
    CHECK(page[http::field::content_type] == "text/html; charset=utf-8");
    CHECK(page.body().find("id=\"instances\"") != std::string::npos);

    auto status = r.handle(get("/api/status"), b);
    CHECK(status[http::field::content_type] == "application/json");
    CHECK(status.body() == R"({"connections":3})");

    auto events = r.handle(get("/api/events?since=0"), b);
    CHECK(events.body() == R"({"events":[{"seq":1,"kind":"started"}],"last":1})");
    CHECK(r.handle(get("/api/events?since=1"), b).body() == R"({"events":[],"last":1})");

    auto metrics = r.handle(get("/metrics"), b);
    CHECK(metrics[http::field::content_type] == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(metrics.body() == "actormq_connections 3\n");
}

TEST_CASE("web_routes: handle: 401 without credentials, 404, 405, 400 and 426") {
    web_routes r{guest_only()};
    status_board b;
    auto denied = r.handle(get("/api/status", nullptr), b);
    CHECK(denied.result() == http::status::unauthorized);
    CHECK(denied[http::field::www_authenticate] == "Basic realm=\"actormq\"");
    CHECK(r.handle(get("/nope"), b).result() == http::status::not_found);

    auto post = get("/api/status");
    post.method(http::verb::post);
    auto res = r.handle(post, b);
    CHECK(res.result() == http::status::method_not_allowed);
    CHECK(res[http::field::allow] == "GET, HEAD");

    CHECK(r.handle(get("/api/events?since=x"), b).result() == http::status::bad_request);
    CHECK(r.handle(get("/ws/events"), b).result() == http::status::upgrade_required);
}

TEST_CASE("web_routes: handle: HEAD has GET's headers and no body") {
    web_routes r{guest_only()};
    status_board b;
    b.publish(R"({"connections":3})", "");
    auto head = get("/api/status");
    head.method(http::verb::head);
    auto res = r.handle(head, b);
    CHECK(res.result() == http::status::ok);
    CHECK(res[http::field::content_length] == "17");
    CHECK(res.body().empty());
}

// Found by web_routes_fuzz (docs/fuzzing.md): error answers to HEAD kept their body, which a
// client reads as the start of the next answer on a kept-alive connection.
TEST_CASE("web_routes: handle: HEAD of an error has GET's headers and no body") {
    web_routes r{guest_only()};
    status_board b;
    for (const char* auth : {static_cast<const char*>(nullptr), guest_auth}) {
        auto head = get("/nope", auth);
        head.method(http::verb::head);
        auto res = r.handle(head, b);
        auto full = r.handle(get("/nope", auth), b);
        CHECK(res.result() == full.result());
        CHECK(res[http::field::content_length] == std::to_string(full.body().size()));
        CHECK(res[http::field::www_authenticate] == full[http::field::www_authenticate]);
        CHECK(res.keep_alive());
        CHECK(res.body().empty());
    }
}

TEST_CASE("web_routes: upgrade: only /ws/events, only with credentials, with an optional since") {
    web_routes r{guest_only()};
    auto ok = r.check_upgrade(get("/ws/events"));
    CHECK_FALSE(ok.refusal.has_value());
    CHECK_FALSE(ok.since.has_value());
    auto since = r.check_upgrade(get("/ws/events?since=12"));
    CHECK(since.since == uint64_t{12});
    CHECK(r.check_upgrade(get("/ws/events", nullptr)).refusal->result()
          == http::status::unauthorized);
    CHECK(r.check_upgrade(get("/api/status")).refusal->result() == http::status::not_found);
    CHECK(r.check_upgrade(get("/ws/events?since=x")).refusal->result()
          == http::status::bad_request);
}

TEST_CASE("web_routes: upgrade: a browser page of another origin is refused") {
    web_routes r{guest_only()};
    auto same = get("/ws/events");
    same.set(http::field::host, "127.0.0.1:8161");
    same.set(http::field::origin, "http://127.0.0.1:8161");
    CHECK_FALSE(r.check_upgrade(same).refusal.has_value());
    auto other = get("/ws/events");
    other.set(http::field::host, "127.0.0.1:8161");
    other.set(http::field::origin, "http://evil.example");
    CHECK(r.check_upgrade(other).refusal->result() == http::status::forbidden);
}
