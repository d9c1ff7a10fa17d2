// SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal to config/: what the readers of convert.cpp and convert_ha.cpp share — the error
// context, a table's members in file order, the scalar readers, and the field tables that map
// a key to its reader. Every reader reports its own errors (file, line, column and key) and
// leaves its output as it was on an error.

#include "config/convert.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace actormq::config::detail {

inline constexpr int64_t uint32_max = std::numeric_limits<uint32_t>::max();
inline constexpr int64_t int64_max = std::numeric_limits<int64_t>::max();

/// Where errors go while one document is converted.
struct context {
    const std::string& source_name;
    std::vector<config_error>& errors;
};

/// One member of a table: its key, its value and its full dotted name.
struct member {
    const toml::key* key = nullptr;
    const toml::node* node = nullptr;
    std::string path;
};

/// Reads one member of a table into a field of `Config`.
template <class Config>
struct field {
    std::string_view key;
    void (*read)(context&, const member&, Config&);
};

/// A key that belongs in another table, and what to suggest instead.
struct hint {
    std::string_view key;
    std::string_view suggestion;
};

// -- reporting ------------------------------------------------------------------------------------

/// Appends an error placed at the first of `first`, `second` that has a position; with neither,
/// the error names the file without a line (0:0).
void report_at(context& ctx,
               const toml::source_region* first,
               const toml::source_region* second,
               std::string path,
               std::string reason);
/// Reports a problem with a member's value, at the value (or its key when the value has no
/// position, as for tables created by an override).
void report(context& ctx, const member& where, std::string reason);
/// Reports a problem with the key itself (unknown keys, bad names), at the key.
void report_key(context& ctx, const member& where, std::string reason);
/// "expected a table, found an integer" at the member.
void report_type(context& ctx, const member& where, toml::node_type expected);
/// Whether an error about `prefix` or a key below it was reported, so that a combination check
/// does not pile a second, misleading error on a value that was already rejected.
bool has_error_under(const context& ctx, std::string_view prefix);

// -- unknown keys ---------------------------------------------------------------------------------

/// Lower case with '_' as '-', so `Max_Frame_Bytes` is recognised as `max-frame-bytes`.
std::string normalized(std::string_view key);
/// Levenshtein distance.
size_t edit_distance(std::string_view lhs, std::string_view rhs);

// -- table walking --------------------------------------------------------------------------------

/// The members of `table` in the order they were written (toml::table itself sorts by name).
std::vector<member> members_in_file_order(const toml::table& table, const std::string& prefix);
/// The member `name` of `table`, if it has one.
std::optional<member>
find_member(const toml::table& table, std::string_view name, const std::string& prefix);
/// The member's table, or nullptr after reporting that it is not one.
const toml::table* expect_table(context& ctx, const member& where);

// -- scalar readers -------------------------------------------------------------------------------

/// Reads a string; false (after reporting) when the value is not one.
bool read_string(context& ctx, const member& where, std::string& out);
/// Reads a string that must not be empty.
void read_non_empty_string(context& ctx, const member& where, std::string& out);
void read_bool(context& ctx, const member& where, bool& out);
/// "must be between MIN and MAX, found V" (or at least / at most for an open end).
std::string range_reason(int64_t value, int64_t min, int64_t max);
/// Reads a finite number of at least `min`; an integer is taken as its floating-point value.
void read_double(context& ctx, const member& where, double& out, double min);
/// Reads an array of strings.
void read_string_list(context& ctx, const member& where, std::vector<std::string>& out);

// -- templates: unknown keys, field tables, integers, generic fields ------------------------------

/// "unknown key", plus "; did you mean 'X'?" for a known key of this table within a few edits,
/// or for a key that belongs in another table.
template <class Config>
std::string unknown_reason(std::string_view unknown,
                           const std::vector<field<Config>>& fields,
                           const std::vector<hint>& hints) {
    std::string reason = "unknown key";
    std::string wanted = normalized(unknown);
    for (const auto& h : hints) {
        if (h.key == wanted) {
            return reason + "; did you mean " + std::string{h.suggestion} + "?";
        }
    }
    std::string_view best;
    size_t best_distance = std::numeric_limits<size_t>::max();
    for (const auto& f : fields) {
        size_t distance = edit_distance(wanted, f.key);
        bool close = (distance <= 2 && distance < wanted.size()) || distance * 3 <= f.key.size();
        if (close && distance < best_distance) {
            best = f.key;
            best_distance = distance;
        }
    }
    if (!best.empty()) {
        reason += "; did you mean '" + std::string{best} + "'?";
    }
    return reason;
}

/// Reads every member of `table` with the matching entry of `fields`; a key without one is
/// reported as unknown.
template <class Config>
void read_fields(context& ctx,
                 const toml::table& table,
                 const std::string& prefix,
                 const std::vector<field<Config>>& fields,
                 const std::vector<hint>& hints,
                 Config& out) {
    for (const auto& entry : members_in_file_order(table, prefix)) {
        std::string_view name = entry.key->str();
        auto it = std::find_if(fields.begin(), fields.end(),
                               [name](const field<Config>& f) { return f.key == name; });
        if (it == fields.end()) {
            report_key(ctx, entry, unknown_reason(name, fields, hints));
        } else {
            it->read(ctx, entry, out);
        }
    }
}

/// Reads an integer in [min, max]; `max` must fit `T`.
template <class T>
void read_integer(context& ctx, const member& where, T& out, int64_t min, int64_t max) {
    const auto* value = where.node->as_integer();
    if (value == nullptr) {
        report_type(ctx, where, toml::node_type::integer);
        return;
    }
    int64_t number = value->get();
    if (number < min || number > max) {
        report(ctx, where, range_reason(number, min, max));
        return;
    }
    out = static_cast<T>(number);
}

// -- generic fields -------------------------------------------------------------------------------

template <class Config, class T, T Config::*Member, int64_t Min, int64_t Max = uint32_max>
void integer_field(context& ctx, const member& where, Config& out) {
    read_integer(ctx, where, out.*Member, Min, Max);
}

template <class Config, bool Config::*Member>
void bool_field(context& ctx, const member& where, Config& out) {
    read_bool(ctx, where, out.*Member);
}

template <class Config, std::string Config::*Member>
void string_field(context& ctx, const member& where, Config& out) {
    read_string(ctx, where, out.*Member);
}

template <class Config, std::string Config::*Member>
void non_empty_string_field(context& ctx, const member& where, Config& out) {
    read_non_empty_string(ctx, where, out.*Member);
}

/// A field of a struct inside `Config` (e.g. ha_policy_config::replication), read by `Read`.
template <class Config,
          class Inner,
          Inner Config::*Sub,
          void (*Read)(context&, const member&, Inner&)>
void nested_field(context& ctx, const member& where, Config& out) {
    Read(ctx, where, out.*Sub);
}

// -- convert_ha.cpp: [ha-policy], [cluster] and the checks across them -------------------------

void read_ha_policy(context& ctx, const member& where, node_config& out);
void read_cluster(context& ctx, const member& where, node_config& out);
void read_cluster_user(context& ctx, const member& where, node_config& out);
void read_cluster_password(context& ctx, const member& where, node_config& out);
/// The combinations of [ha-policy], [cluster] and the root keys that cannot work together.
void check_ha(context& ctx, const toml::table& root, const node_config& config);

} // namespace actormq::config::detail
