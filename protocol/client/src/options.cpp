// SPDX-License-Identifier: Apache-2.0
#include "actormq/client/options.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>

namespace actormq::client {

namespace {

[[noreturn]] void fail(const std::string& text) {
    throw url_error("connection URL: " + text);
}

std::string quoted(std::string_view v) {
    return "'" + std::string(v) + "'";
}

int64_t parse_integer(std::string_view name, std::string_view value, int64_t min, int64_t max) {
    std::string s(value);
    if (s.empty()) {
        fail("parameter " + std::string(name) + ": empty value, expected an integer");
    }
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (end != s.c_str() + s.size() || errno == ERANGE || !(std::isdigit(s[0]) || s[0] == '-')) {
        fail("parameter " + std::string(name) + ": " + quoted(value) + " is not an integer");
    }
    if (v < min || v > max) {
        fail("parameter " + std::string(name) + ": " + quoted(value) + " is out of range ["
             + std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    return v;
}

/// -1, or a value in [min, max].
int64_t
parse_minus_one_or(std::string_view name, std::string_view value, int64_t min, int64_t max) {
    int64_t v = parse_integer(name, value, -1, max);
    if (v != -1 && v < min) {
        fail("parameter " + std::string(name) + ": " + quoted(value) + " must be -1 or at least "
             + std::to_string(min));
    }
    return v;
}

bool parse_bool(std::string_view name, std::string_view value) {
    if (value == "true") {
        return true;
    }
    if (value == "false") {
        return false;
    }
    fail("parameter " + std::string(name) + ": " + quoted(value) + " is not true or false");
}

double parse_multiplier(std::string_view name, std::string_view value) {
    std::string s(value);
    char* end = nullptr;
    errno = 0;
    double v = s.empty() ? 0 : std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v)) {
        fail("parameter " + std::string(name) + ": " + quoted(value) + " is not a number");
    }
    if (v < 1.0) {
        fail("parameter " + std::string(name) + ": " + quoted(value) + " must be at least 1.0");
    }
    return v;
}

using setter = std::function<void(connection_options&, std::string_view name, std::string_view)>;

constexpr int64_t int32_max = 2147483647;
constexpr int64_t ms_max = int64_t{1} << 40; // about 35 years: any larger value is a typo

const std::map<std::string, setter, std::less<>>& setters() {
    static const std::map<std::string, setter, std::less<>> table = {
        {"ha",
         [](auto& o, auto n, auto v) {
             o.ha = parse_bool(n, v);
         }},
        {"reconnectAttempts",
         [](auto& o, auto n, auto v) {
             o.reconnect_attempts = int32_t(parse_integer(n, v, -1, int32_max));
         }},
        {"initialConnectAttempts",
         [](auto& o, auto n, auto v) {
             o.initial_connect_attempts = int32_t(parse_integer(n, v, -1, int32_max));
         }},
        {"retryInterval",
         [](auto& o, auto n, auto v) {
             o.retry_interval_ms = parse_integer(n, v, 1, ms_max);
         }},
        {"retryIntervalMultiplier",
         [](auto& o, auto n, auto v) {
             o.retry_interval_multiplier = parse_multiplier(n, v);
         }},
        {"maxRetryInterval",
         [](auto& o, auto n, auto v) {
             o.max_retry_interval_ms = parse_integer(n, v, 1, ms_max);
         }},
        {"clientFailureCheckPeriod",
         [](auto& o, auto n, auto v) {
             o.client_failure_check_period_ms = parse_minus_one_or(n, v, 1, ms_max);
         }},
        {"connectionTTL",
         [](auto& o, auto n, auto v) {
             o.connection_ttl_ms = parse_integer(n, v, 1, 4294967295LL); // a u32 on the wire
         }},
        {"confirmationWindowSize",
         [](auto& o, auto n, auto v) {
             o.confirmation_window_size = int32_t(parse_minus_one_or(n, v, 1, int32_max));
         }},
        {"callTimeout",
         [](auto& o, auto n, auto v) {
             o.call_timeout_ms = parse_integer(n, v, 1, ms_max);
         }},
        {"blockOnDurableSend",
         [](auto& o, auto n, auto v) {
             o.block_on_durable_send = parse_bool(n, v);
         }},
        {"blockOnNonDurableSend",
         [](auto& o, auto n, auto v) {
             o.block_on_non_durable_send = parse_bool(n, v);
         }},
        {"blockOnAcknowledge",
         [](auto& o, auto n, auto v) {
             o.block_on_acknowledge = parse_bool(n, v);
         }},
        {"preAcknowledge",
         [](auto& o, auto n, auto v) {
             o.pre_acknowledge = parse_bool(n, v);
         }},
        {"producerWindowSize",
         [](auto& o, auto n, auto v) {
             o.producer_window_size = int32_t(parse_minus_one_or(n, v, 1, int32_max));
         }},
        {"consumerWindowSize",
         [](auto& o, auto n, auto v) {
             o.consumer_window_size = int32_t(parse_integer(n, v, -1, int32_max));
         }},
        {"user",
         [](auto& o, auto, auto v) {
             o.user = std::string(v);
         }},
        {"password",
         [](auto& o, auto, auto v) {
             o.password = std::string(v);
         }},
        {"clientID",
         [](auto& o, auto, auto v) {
             o.client_id = std::string(v);
         }},
    };
    return table;
}

/// Undoes %XX escapes (a password may need them); a bad escape is an error naming `what`.
std::string unescape(std::string_view s, std::string_view what) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        auto hex = [](char c) {
            return std::isxdigit(static_cast<unsigned char>(c)) != 0;
        };
        if (i + 2 >= s.size() || !hex(s[i + 1]) || !hex(s[i + 2])) {
            fail(std::string(what) + ": bad %-escape at " + quoted(s.substr(i, 3)));
        }
        out += char(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
        i += 2;
    }
    return out;
}

server_address parse_server(std::string_view text) {
    constexpr std::string_view scheme = "tcp://";
    if (text.substr(0, scheme.size()) != scheme) {
        fail("server " + quoted(text) + ": only tcp:// is supported");
    }
    auto rest = text.substr(scheme.size());
    if (rest.find_first_of("?/") != std::string_view::npos) {
        fail("server " + quoted(text)
             + ": parameters go after the whole list, e.g. (tcp://a:1,tcp://b:2)?ha=true");
    }
    return server_address::parse(rest, "server " + quoted(text));
}

} // namespace

std::string server_address::to_string() const {
    if (host.find(':') != std::string::npos) {
        return "[" + host + "]:" + std::to_string(port);
    }
    return host + ":" + std::to_string(port);
}

server_address server_address::parse(std::string_view text, std::string_view what) {
    server_address out;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            fail(std::string(what) + ": expected [ipv6-address]:port");
        }
        out.host = std::string(text.substr(1, close - 1));
        port_text = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            fail(std::string(what) + ": no port (expected host:port)");
        }
        out.host = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
        if (out.host.find(':') != std::string::npos) {
            fail(std::string(what) + ": an IPv6 address needs brackets, [addr]:port");
        }
    }
    if (out.host.empty()) {
        fail(std::string(what) + ": empty host");
    }
    bool digits = !port_text.empty() && port_text.size() <= 5
                  && std::all_of(port_text.begin(), port_text.end(),
                                 [](char c) { return c >= '0' && c <= '9'; });
    long port = digits ? std::stol(std::string(port_text)) : 0;
    if (!digits || port < 1 || port > 65535) {
        fail(std::string(what) + ": port " + quoted(port_text) + " is not a number in [1, 65535]");
    }
    out.port = uint16_t(port);
    return out;
}

connection_options connection_options::from_url(std::string_view url) {
    connection_options o;
    if (url.empty()) {
        fail("empty");
    }
    std::string_view servers_part = url;
    std::string_view query;
    if (url.front() == '(') {
        auto close = url.find(')');
        if (close == std::string_view::npos) {
            fail("no ')' closes the server list");
        }
        servers_part = url.substr(1, close - 1);
        auto after = url.substr(close + 1);
        if (!after.empty() && after.front() != '?') {
            fail("unexpected " + quoted(after) + " after the server list");
        }
        query = after.empty() ? after : after.substr(1);
        size_t start = 0;
        while (true) {
            auto comma = servers_part.find(',', start);
            auto item = servers_part.substr(
                start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
            if (item.empty()) {
                fail("empty entry in the server list");
            }
            o.servers.push_back(parse_server(item));
            if (comma == std::string_view::npos) {
                break;
            }
            start = comma + 1;
        }
    } else {
        auto q = url.find('?');
        if (q != std::string_view::npos) {
            query = url.substr(q + 1);
            servers_part = url.substr(0, q);
        }
        o.servers.push_back(parse_server(servers_part));
    }
    std::set<std::string, std::less<>> seen;
    size_t start = 0;
    while (start < query.size()) {
        auto amp = query.find('&', start);
        auto item = query.substr(start, amp == std::string_view::npos ? std::string_view::npos
                                                                      : amp - start);
        start = amp == std::string_view::npos ? query.size() : amp + 1;
        if (item.empty()) {
            continue; // "a=1&&b=2" and a trailing '&' are harmless
        }
        auto eq = item.find('=');
        if (eq == std::string_view::npos) {
            fail("parameter " + quoted(item) + " has no value (expected name=value)");
        }
        auto name = item.substr(0, eq);
        auto it = setters().find(name);
        if (it == setters().end()) {
            fail("unknown parameter " + quoted(name));
        }
        if (!seen.insert(std::string(name)).second) {
            fail("parameter " + std::string(name) + " given twice");
        }
        auto value = unescape(item.substr(eq + 1), "parameter " + std::string(name));
        it->second(o, name, value);
    }
    if (o.max_retry_interval_ms < o.retry_interval_ms) {
        fail("parameter maxRetryInterval: " + std::to_string(o.max_retry_interval_ms)
             + " is below retryInterval " + std::to_string(o.retry_interval_ms));
    }
    return o;
}

int64_t connection_options::retry_delay_ms(uint32_t n) const {
    if (n == 0) {
        return 0;
    }
    double d = double(retry_interval_ms) * std::pow(retry_interval_multiplier, double(n - 1));
    return d >= double(max_retry_interval_ms) ? max_retry_interval_ms : int64_t(d);
}

} // namespace actormq::client
