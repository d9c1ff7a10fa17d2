// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "config/load.hpp"
#include "config/node_config.hpp"

#include <toml++/toml.h>

#include <string>
#include <string_view>
#include <vector>

/// Internal to config/: the step of loading that turns a parsed TOML document into structs.
namespace actormq::config::detail {

/// The file name of errors in values given by a command-line override (`--set KEY=VALUE`).
inline constexpr std::string_view override_file = "--set";

/// Converts `root` (a parsed document with the overrides already applied) into a node_config
/// and appends one config_error per problem to `errors`: unknown keys, wrong types, values out
/// of range and impossible combinations. The result is meaningful only if nothing was appended.
/// `source_name` names the file in errors for nodes that carry no position of their own.
node_config
convert(const toml::table& root, const std::string& source_name, std::vector<config_error>& errors);

/// `text` as a TOML basic string: in double quotes, with '"', '\\' and control characters escaped.
std::string quote_string(std::string_view text);

/// Renders `segment` as one part of a dotted key: bare if it only has letters, digits, '-' and
/// '_', otherwise as a quoted TOML string (so `address-settings."#"`).
std::string key_segment(std::string_view segment);

/// `prefix` + "." + key_segment(segment), or just key_segment(segment) for an empty prefix.
std::string join_key(std::string_view prefix, std::string_view segment);

} // namespace actormq::config::detail
