// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the config tests (tests/unit/config_test.cpp, config_ha_test.cpp) share: small files that
// load, and the errors of a load as "FILE:LINE:COLUMN: KEY: REASON" lines.

#include "config/load.hpp"
#include "config/node_config.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

/// Prints a list of error messages one per line, so a failed comparison shows both lists.
template <>
struct doctest::StringMaker<std::vector<std::string>> {
    static doctest::String convert(const std::vector<std::string>& lines) {
        std::string text = "{";
        for (const auto& line : lines) {
            text += "\n  " + line;
        }
        text += "\n}";
        return text.c_str();
    }
};

namespace actormq::test::config_text {

/// The smallest file that loads: security is on by default, so it needs one user.
constexpr const char* one_user = R"(
[security.users.guest]
password = "guest"
)";

/// A cluster (replication needs one) and a user; it starts with a table, so it can follow
/// another table's keys.
constexpr const char* cluster_with_user = R"(
[cluster]
[security.users.guest]
password = "guest"
)";

/// A shared-store backup with a cluster, every HA and cluster key set to a non-default value.
constexpr const char* ha_file = R"(cluster-user = "ops"
cluster-password = "s3cret"

[ha-policy.shared-store.backup]
failover-on-shutdown = true
allow-failback = false
restart-backup = false
lock-poll-interval-ms = 25

[web]
enabled = false

[cluster]
host = "127.0.0.2"
port = 61700
members = ["127.0.0.1:61701", "10.0.0.5:61700"]
reconnect-interval-ms = 500
heartbeat-interval-ms = 300
connection-timeout-ms = 1500

[security.users.guest]
password = "guest"
)";

/// Every error of `result` as "FILE:LINE:COLUMN: KEY: REASON".
inline std::vector<std::string> messages(const config::load_result& result) {
    std::vector<std::string> out;
    for (const auto& error : result.errors) {
        out.push_back(error.to_string());
    }
    return out;
}

/// Loads `text` as "cfg.toml" and returns its errors as text.
inline std::vector<std::string> errors_of(const std::string& text,
                                          const std::vector<std::string>& overrides = {}) {
    return messages(config::load_string(text, "cfg.toml", overrides));
}

/// Loads `text` (plus a user, so security is satisfied) and requires it to succeed.
inline config::node_config load_ok(const std::string& text,
                                   const std::vector<std::string>& overrides = {}) {
    auto result = config::load_string(text + one_user, "cfg.toml", overrides);
    INFO("errors: " << messages(result));
    REQUIRE(result.errors.empty());
    REQUIRE(result.config.has_value());
    return *result.config;
}

} // namespace actormq::test::config_text
