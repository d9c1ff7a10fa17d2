// SPDX-License-Identifier: Apache-2.0
#include "actors/broker/stomp_handshake.hpp"

#include <doctest/doctest.h>

using namespace actormq;

namespace {

stomp::frame connect_frame(std::initializer_list<std::pair<std::string, std::string>> hs) {
    stomp::frame f;
    f.cmd = stomp::command::connect;
    for (const auto& [k, v] : hs) {
        f.add(k, v);
    }
    return f;
}

config::security_config guest_only() {
    config::security_config s;
    s.users.push_back({"guest", "guest", {}});
    return s;
}

} // namespace

TEST_CASE("stomp handshake: version: the highest common version wins") {
    config::acceptor_config a;
    auto r = negotiate(
        connect_frame(
            {{"accept-version", "1.0,1.2, 1.1"}, {"login", "guest"}, {"passcode", "guest"}}),
        a, guest_only());
    CHECK(r.accepted);
    CHECK(r.version == stomp::version::v1_2);
}

TEST_CASE("stomp handshake: version: no accept-version means a 1.0 client") {
    config::acceptor_config a;
    auto r = negotiate(connect_frame({{"login", "guest"}, {"passcode", "guest"}}), a, guest_only());
    CHECK(r.accepted);
    CHECK(r.version == stomp::version::v1_0);
}

TEST_CASE("stomp handshake: version: only unknown versions are refused") {
    config::acceptor_config a;
    auto r = negotiate(connect_frame({{"accept-version", "2.0,3.1"}}), a, guest_only());
    CHECK_FALSE(r.accepted);
    CHECK(r.error.find("no supported protocol version") != std::string::npos);
}

TEST_CASE("stomp handshake: login: a wrong passcode and a missing login are refused") {
    config::acceptor_config a;
    auto wrong = negotiate(
        connect_frame({{"accept-version", "1.2"}, {"login", "guest"}, {"passcode", "nope"}}), a,
        guest_only());
    CHECK_FALSE(wrong.accepted);
    CHECK(wrong.error.rfind("authentication failed", 0) == 0);
    auto missing = negotiate(connect_frame({{"accept-version", "1.2"}}), a, guest_only());
    CHECK_FALSE(missing.accepted);
    CHECK(missing.error.rfind("authentication failed", 0) == 0);
}

TEST_CASE("stomp handshake: login: anonymous runs as anonymous-user only when allowed") {
    config::acceptor_config a;
    auto sec = guest_only();
    sec.allow_anonymous = true;
    sec.anonymous_user = "visitor";
    auto r = negotiate(connect_frame({{"accept-version", "1.2"}}), a, sec);
    CHECK(r.accepted);
    CHECK(r.user == "visitor");
}

TEST_CASE("stomp handshake: login: with security disabled any login is accepted") {
    config::acceptor_config a;
    config::security_config sec;
    sec.security_enabled = false;
    auto r = negotiate(connect_frame({{"login", "who"}, {"passcode", "ever"}}), a, sec);
    CHECK(r.accepted);
    CHECK(r.user == "who");
}

TEST_CASE("stomp handshake: heart-beat: each side takes the larger of offer and wish") {
    config::acceptor_config a;
    a.heart_beat_send_ms = 1000;
    a.heart_beat_receive_ms = 3000;
    auto r = negotiate(connect_frame({{"accept-version", "1.2"},
                                      {"heart-beat", "5000,500"},
                                      {"login", "guest"},
                                      {"passcode", "guest"}}),
                       a, guest_only());
    REQUIRE(r.accepted);
    CHECK(r.send_interval_ms == 1000);    // max(server can send 1000, client wants 500)
    CHECK(r.receive_interval_ms == 5000); // max(server wants 3000, client can send 5000)
}

TEST_CASE("stomp handshake: heart-beat: zero on either side switches a direction off") {
    config::acceptor_config a;
    auto r = negotiate(connect_frame({{"accept-version", "1.2"},
                                      {"heart-beat", "0,500"},
                                      {"login", "guest"},
                                      {"passcode", "guest"}}),
                       a, guest_only());
    REQUIRE(r.accepted);
    CHECK(r.receive_interval_ms == 0);
    CHECK(r.send_interval_ms == a.heart_beat_send_ms);
}

TEST_CASE("stomp handshake: heart-beat: a malformed header is refused") {
    config::acceptor_config a;
    for (const char* bad : {"10", "a,b", "1,", ",1", "1,2,3", "-1,5"}) {
        auto r = negotiate(connect_frame({{"accept-version", "1.2"},
                                          {"heart-beat", bad},
                                          {"login", "guest"},
                                          {"passcode", "guest"}}),
                           a, guest_only());
        CHECK_MESSAGE(!r.accepted, bad);
    }
}

TEST_CASE("stomp handshake: connected: carries version, server, session and heart-beat") {
    config::acceptor_config a;
    handshake_result r;
    r.accepted = true;
    r.version = stomp::version::v1_1;
    auto f = connected_frame(r, a, "n1", 42);
    CHECK(f.cmd == stomp::command::connected);
    CHECK(*f.find("version") == "1.1");
    CHECK(f.find("server")->find("n1") != std::string::npos);
    CHECK(*f.find("session") == "42");
    CHECK(*f.find("heart-beat") == "10000,10000");
}
