// SPDX-License-Identifier: Apache-2.0
#include "actors/broker/stomp_handshake.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>

namespace actormq {

namespace {

/// Picks the highest version both sides speak; false when there is none.
bool pick_version(const std::string* accept, stomp::version& out) {
    if (accept == nullptr) {
        out = stomp::version::v1_0; // No accept-version header means a STOMP 1.0 client.
        return true;
    }
    bool found = false;
    std::string_view rest{*accept};
    while (!rest.empty()) {
        auto comma = rest.find(',');
        auto item = rest.substr(0, comma);
        while (!item.empty() && item.front() == ' ') {
            item.remove_prefix(1);
        }
        while (!item.empty() && item.back() == ' ') {
            item.remove_suffix(1);
        }
        stomp::version v{};
        bool known = true;
        if (item == "1.0") {
            v = stomp::version::v1_0;
        } else if (item == "1.1") {
            v = stomp::version::v1_1;
        } else if (item == "1.2") {
            v = stomp::version::v1_2;
        } else {
            known = false;
        }
        if (known && (!found || v > out)) {
            out = v;
            found = true;
        }
        if (comma == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(comma + 1);
    }
    return found;
}

bool parse_u32(std::string_view s, uint32_t& out) {
    while (!s.empty() && s.front() == ' ') {
        s.remove_prefix(1);
    }
    while (!s.empty() && s.back() == ' ') {
        s.remove_suffix(1);
    }
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size() && !s.empty();
}

/// Reads "cx,cy" into the two client intervals.
bool parse_heart_beat(const std::string& v, uint32_t& cx, uint32_t& cy) {
    auto comma = v.find(',');
    if (comma == std::string::npos) {
        return false;
    }
    std::string_view s{v};
    return parse_u32(s.substr(0, comma), cx) && parse_u32(s.substr(comma + 1), cy);
}

/// Checks login and passcode; fills r.user or r.error.
bool authenticate(const stomp::frame& f, const config::security_config& sec,
                  handshake_result& r) {
    const auto* login = f.find("login");
    const auto* pass = f.find("passcode");
    if (!sec.security_enabled) {
        r.user = login != nullptr ? *login : sec.anonymous_user;
        return true;
    }
    if (login == nullptr) {
        if (sec.allow_anonymous) {
            r.user = sec.anonymous_user;
            return true;
        }
        r.error = "authentication failed: a login is required";
        return false;
    }
    auto it = std::find_if(sec.users.begin(), sec.users.end(),
                           [&](const config::user_config& u) { return u.name == *login; });
    if (it == sec.users.end() || pass == nullptr || it->password != *pass) {
        r.error = "authentication failed: unknown user or wrong passcode";
        return false;
    }
    r.user = *login;
    return true;
}

} // namespace

handshake_result negotiate(const stomp::frame& f, const config::acceptor_config& acceptor,
                           const config::security_config& security) {
    handshake_result r;
    if (!pick_version(f.find("accept-version"), r.version)) {
        r.error = "no supported protocol version; this server speaks 1.0, 1.1 and 1.2";
        r.supported_versions = "1.0,1.1,1.2";
        r.version = stomp::version::v1_0;
        return r;
    }
    uint32_t cx = 0;
    uint32_t cy = 0;
    if (const auto* hb = f.find("heart-beat"); hb != nullptr && r.version != stomp::version::v1_0) {
        if (!parse_heart_beat(*hb, cx, cy)) {
            r.error = "malformed heart-beat header: expected two numbers 'cx,cy'";
            return r;
        }
    }
    if (!authenticate(f, security, r)) {
        return r;
    }
    // STOMP 1.2 "Heart-beating": each side uses the larger of what one can do and the
    // other wants; 0 on either side switches that direction off.
    if (acceptor.heart_beat_send_ms != 0 && cy != 0) {
        r.send_interval_ms = std::max(acceptor.heart_beat_send_ms, cy);
    }
    if (acceptor.heart_beat_receive_ms != 0 && cx != 0) {
        r.receive_interval_ms = std::max(acceptor.heart_beat_receive_ms, cx);
    }
    if (const auto* cid = f.find("client-id")) {
        r.client_id = *cid;
    }
    r.accepted = true;
    return r;
}

stomp::frame connected_frame(const handshake_result& r, const config::acceptor_config& acceptor,
                             const std::string& server_name, uint64_t session_id) {
    stomp::frame f;
    f.cmd = stomp::command::connected;
    f.add("version", std::string{stomp::to_string(r.version)});
    f.add("server", "ActorMQ/0.1.0 " + server_name);
    f.add("session", std::to_string(session_id));
    if (r.version != stomp::version::v1_0) {
        f.add("heart-beat", std::to_string(acceptor.heart_beat_send_ms) + ","
                                + std::to_string(acceptor.heart_beat_receive_ms));
    }
    return f;
}

} // namespace actormq
