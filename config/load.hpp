// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "config/node_config.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace actormq::config {

/// One problem found in a config: where it is and why it is wrong.
struct config_error {
    std::string file; ///< the config file, or "--set" for a command-line override
    uint32_t line = 0;
    uint32_t column = 0;
    std::string key;  ///< the dotted key, e.g. "acceptors.stomp.port"
    std::string reason;

    /// "FILE:LINE:COLUMN: KEY: REASON", the form every config message takes.
    std::string to_string() const;
};

/// The outcome of loading: a config, or every problem found (never just the first).
struct load_result {
    std::optional<node_config> config;
    std::vector<config_error> errors;
};

/// Parses the TOML file at `path`, applies `overrides` ("dotted.key=value", value in TOML
/// syntax, a bare word taken as a string), validates, and returns the config or all errors.
load_result load_file(const std::string& path, const std::vector<std::string>& overrides = {});

/// The same for TOML text; `source_name` stands in for the file name in errors.
load_result load_string(std::string_view text, std::string_view source_name,
                        const std::vector<std::string>& overrides = {});

} // namespace actormq::config
