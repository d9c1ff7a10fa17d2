// SPDX-License-Identifier: Apache-2.0
#include "config/convert.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>
#include <tuple>
#include <utility>

namespace actormq::config::detail {

namespace {

constexpr int64_t uint32_max = std::numeric_limits<uint32_t>::max();
constexpr int64_t int64_max = std::numeric_limits<int64_t>::max();

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
               std::string reason) {
    config_error error;
    error.file = ctx.source_name;
    const toml::source_region* region = nullptr;
    if (first != nullptr && first->begin) {
        region = first;
    } else if (second != nullptr && second->begin) {
        region = second;
    }
    if (region != nullptr) {
        if (region->path) {
            error.file = *region->path;
        }
        error.line = region->begin.line;
        error.column = region->begin.column;
    }
    error.key = std::move(path);
    error.reason = std::move(reason);
    ctx.errors.push_back(std::move(error));
}

const toml::source_region* region_of(const toml::node* node) {
    return node == nullptr ? nullptr : &node->source();
}

const toml::source_region* region_of(const toml::key* key) {
    return key == nullptr ? nullptr : &key->source();
}

/// Reports a problem with a member's value, at the value (or its key when the value has no
/// position, as for tables created by an override).
void report(context& ctx, const member& where, std::string reason) {
    report_at(ctx, region_of(where.node), region_of(where.key), where.path, std::move(reason));
}

/// Reports a problem with the key itself (unknown keys, bad names), at the key.
void report_key(context& ctx, const member& where, std::string reason) {
    report_at(ctx, region_of(where.key), region_of(where.node), where.path, std::move(reason));
}

std::string_view type_phrase(toml::node_type type) {
    switch (type) {
        case toml::node_type::none:
            return "nothing";
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a floating-point number";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
    }
    return "an unknown type";
}

void report_type(context& ctx, const member& where, toml::node_type expected) {
    std::string reason = "expected ";
    reason += type_phrase(expected);
    reason += ", found ";
    reason += type_phrase(where.node->type());
    report(ctx, where, std::move(reason));
}

/// Whether an error about `prefix` or a key below it was reported, so that a combination check
/// does not pile a second, misleading error on a value that was already rejected.
bool has_error_under(const context& ctx, std::string_view prefix) {
    return std::any_of(ctx.errors.begin(), ctx.errors.end(), [prefix](const config_error& e) {
        return std::string_view{e.key}.substr(0, prefix.size()) == prefix;
    });
}

// -- unknown keys ---------------------------------------------------------------------------------

/// Lower case with '_' as '-', so `Max_Frame_Bytes` is recognised as `max-frame-bytes`.
std::string normalized(std::string_view key) {
    std::string result;
    for (char c : key) {
        result += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return result;
}

size_t edit_distance(std::string_view lhs, std::string_view rhs) {
    std::vector<size_t> row(rhs.size() + 1);
    for (size_t j = 0; j < row.size(); ++j) {
        row[j] = j;
    }
    for (size_t i = 1; i <= lhs.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= rhs.size(); ++j) {
            size_t above = row[j];
            size_t substitute = diagonal + (lhs[i - 1] == rhs[j - 1] ? 0 : 1);
            row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
            diagonal = above;
        }
    }
    return row[rhs.size()];
}

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

// -- table walking --------------------------------------------------------------------------------

/// Sort key putting the file's keys first in file order, then keys made by overrides in the
/// order of the overrides (their line is the override's index).
std::tuple<int, uint32_t, uint32_t> file_order(const toml::key& key) {
    const auto& region = key.source();
    int origin = 2;
    if (region.begin) {
        origin = region.path && *region.path == override_file ? 1 : 0;
    }
    return {origin, region.begin.line, region.begin.column};
}

/// The members of `table` in the order they were written (toml::table itself sorts by name).
std::vector<member> members_in_file_order(const toml::table& table, const std::string& prefix) {
    std::vector<member> result;
    for (auto&& entry : table) {
        result.push_back(member{&entry.first, &entry.second, join_key(prefix, entry.first.str())});
    }
    std::stable_sort(result.begin(), result.end(), [](const member& lhs, const member& rhs) {
        return file_order(*lhs.key) < file_order(*rhs.key);
    });
    return result;
}

std::optional<member>
find_member(const toml::table& table, std::string_view name, const std::string& prefix) {
    auto it = table.find(name);
    if (it == table.end()) {
        return std::nullopt;
    }
    auto&& entry = *it;
    return member{&entry.first, &entry.second, join_key(prefix, name)};
}

const toml::table* expect_table(context& ctx, const member& where) {
    const toml::table* table = where.node->as_table();
    if (table == nullptr) {
        report_type(ctx, where, toml::node_type::table);
    }
    return table;
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

// -- scalar readers -------------------------------------------------------------------------------

bool read_string(context& ctx, const member& where, std::string& out) {
    const auto* value = where.node->as_string();
    if (value == nullptr) {
        report_type(ctx, where, toml::node_type::string);
        return false;
    }
    out = value->get();
    return true;
}

void read_non_empty_string(context& ctx, const member& where, std::string& out) {
    if (read_string(ctx, where, out) && out.empty()) {
        report(ctx, where, "must not be empty");
    }
}

void read_bool(context& ctx, const member& where, bool& out) {
    const auto* value = where.node->as_boolean();
    if (value == nullptr) {
        report_type(ctx, where, toml::node_type::boolean);
        return;
    }
    out = value->get();
}

std::string range_reason(int64_t value, int64_t min, int64_t max) {
    std::string found = ", found " + std::to_string(value);
    if (max >= uint32_max && value < min) {
        return "must be at least " + std::to_string(min) + found;
    }
    if (max >= uint32_max) {
        return "must be at most " + std::to_string(max) + found;
    }
    return "must be between " + std::to_string(min) + " and " + std::to_string(max) + found;
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

std::string format_double(double value) {
    std::ostringstream out;
    out << value;
    std::string text = out.str();
    if (text.find_first_of(".en") == std::string::npos) {
        text += ".0";
    }
    return text;
}

/// Reads a finite number of at least `min`; an integer is taken as its floating-point value.
void read_double(context& ctx, const member& where, double& out, double min) {
    double number = 0.0;
    if (const auto* value = where.node->as_floating_point()) {
        number = value->get();
    } else if (const auto* integer = where.node->as_integer()) {
        number = static_cast<double>(integer->get());
    } else {
        report_type(ctx, where, toml::node_type::floating_point);
        return;
    }
    if (!std::isfinite(number) || number < min) {
        report(ctx, where,
               "must be a finite number of at least " + format_double(min) + ", found "
                   + format_double(number));
        return;
    }
    out = number;
}

void read_string_list(context& ctx, const member& where, std::vector<std::string>& out) {
    const auto* array = where.node->as_array();
    if (array == nullptr) {
        report_type(ctx, where, toml::node_type::array);
        return;
    }
    std::vector<std::string> values;
    for (size_t i = 0; i < array->size(); ++i) {
        member item{where.key, array->get(i), where.path + "[" + std::to_string(i) + "]"};
        std::string text;
        if (read_string(ctx, item, text)) {
            values.push_back(std::move(text));
        }
    }
    out = std::move(values);
}

// -- enumerated values ----------------------------------------------------------------------------

void read_log_level(context& ctx, const member& where, node_config& out) {
    static constexpr std::string_view levels[] = {"trace", "debug",    "info", "warn",
                                                  "error", "critical", "off"};
    std::string level;
    if (!read_string(ctx, where, level)) {
        return;
    }
    if (std::find(std::begin(levels), std::end(levels), level) == std::end(levels)) {
        report(ctx, where,
               "unknown log level '" + level
                   + "'; expected one of trace, debug, info, warn, error, critical, off");
        return;
    }
    out.log_level = level;
}

void read_protocol(context& ctx, const member& where, acceptor_config& out) {
    std::string protocol;
    if (!read_string(ctx, where, protocol)) {
        return;
    }
    if (protocol != "stomp" && protocol != "native") {
        report(ctx, where,
               "unsupported protocol '" + protocol + "'; expected \"stomp\" or \"native\"");
        return;
    }
    out.protocol = protocol;
}

void read_full_policy(context& ctx, const member& where, address_settings& out) {
    std::string text;
    if (!read_string(ctx, where, text)) {
        return;
    }
    std::string upper;
    for (char c : text) {
        upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (upper == "BLOCK") {
        out.full_policy = address_full_policy::block;
    } else if (upper == "FAIL") {
        out.full_policy = address_full_policy::fail;
    } else if (upper == "DROP") {
        out.full_policy = address_full_policy::drop;
    } else if (upper == "PAGE") {
        out.full_policy = address_full_policy::page;
    } else {
        report(ctx, where, "unknown policy '" + text + "'; expected BLOCK, FAIL, DROP or PAGE");
    }
}

void read_max_size_bytes(context& ctx, const member& where, address_settings& out) {
    const auto* value = where.node->as_integer();
    if (value == nullptr) {
        report_type(ctx, where, toml::node_type::integer);
        return;
    }
    if (value->get() < -1 || value->get() == 0) {
        report(ctx, where,
               "must be -1 (unbounded) or greater than 0, found " + std::to_string(value->get()));
        return;
    }
    out.max_size_bytes = value->get();
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

// -- address settings -----------------------------------------------------------------------------

const std::vector<field<address_settings>>& address_settings_fields() {
    using S = address_settings;
    static const std::vector<field<S>> fields = {
        {"max-size-bytes", read_max_size_bytes},
        {"address-full-policy", read_full_policy},
        {"page-size-bytes",
         integer_field<S, int64_t, &S::page_size_bytes, 64 * 1024, 1024LL * 1024 * 1024>},
        {"page-max-cache-size", integer_field<S, uint32_t, &S::page_max_cache_size, 1, 1000>},
        {"auto-create-queues", bool_field<S, &S::auto_create_queues>},
        {"auto-create-addresses", bool_field<S, &S::auto_create_addresses>},
    };
    return fields;
}

/// Why `match` cannot be an address pattern, or empty if it can.
std::string match_problem(std::string_view match) {
    if (match.empty()) {
        return "an address match must not be empty";
    }
    if (match.front() == '.' || match.back() == '.' || match.find("..") != match.npos) {
        return "an address match must not have an empty word (a leading, trailing or double '.')";
    }
    return {};
}

void read_address_settings(context& ctx, const member& where, node_config& out) {
    const toml::table* table = expect_table(ctx, where);
    if (table == nullptr) {
        return;
    }
    for (const auto& entry : members_in_file_order(*table, where.path)) {
        address_settings settings;
        settings.match = entry.key->str();
        if (auto problem = match_problem(settings.match); !problem.empty()) {
            report_key(ctx, entry, std::move(problem));
            continue;
        }
        const toml::table* body = expect_table(ctx, entry);
        if (body == nullptr) {
            continue;
        }
        read_fields(ctx, *body, entry.path, address_settings_fields(), {}, settings);
        out.address_settings_list.push_back(std::move(settings));
    }
}

// -- acceptors ------------------------------------------------------------------------------------

const std::vector<field<acceptor_config>>& acceptor_fields() {
    using A = acceptor_config;
    static const std::vector<field<A>> fields = {
        {"protocol", read_protocol},
        {"host", non_empty_string_field<A, &A::host>},
        {"port", integer_field<A, uint16_t, &A::port, 0, 65535>},
        {"max-frame-bytes", integer_field<A, uint64_t, &A::max_frame_bytes, 64, int64_max>},
        {"max-headers", integer_field<A, uint32_t, &A::max_headers, 1>},
        {"max-header-line-bytes", integer_field<A, uint32_t, &A::max_header_line_bytes, 1>},
        {"heart-beat-send-ms", integer_field<A, uint32_t, &A::heart_beat_send_ms, 0>},
        {"heart-beat-receive-ms", integer_field<A, uint32_t, &A::heart_beat_receive_ms, 0>},
        {"heart-beat-to-connection-ttl-modifier",
         [](context& ctx, const member& where, A& out) {
             read_double(ctx, where, out.heart_beat_to_connection_ttl_modifier, 1.0);
         }},
        {"default-prefetch-count", integer_field<A, uint32_t, &A::default_prefetch_count, 1>},
        {"read-window-bytes", integer_field<A, uint32_t, &A::read_window_bytes, 1>},
        {"connect-timeout-ms", integer_field<A, uint32_t, &A::connect_timeout_ms, 1>},
        {"max-connections", integer_field<A, uint32_t, &A::max_connections, 1>},
        {"max-frame-bytes-before-connect",
         integer_field<A, uint64_t, &A::max_frame_bytes_before_connect, 64, int64_max>},
        {"max-transactions-per-session",
         integer_field<A, uint32_t, &A::max_transactions_per_session, 1>},
        {"max-messages-per-transaction",
         integer_field<A, uint32_t, &A::max_messages_per_transaction, 1>},
        {"max-bytes-per-transaction",
         integer_field<A, uint64_t, &A::max_bytes_per_transaction, 1, int64_max>},
        {"max-subscriptions-per-session",
         integer_field<A, uint32_t, &A::max_subscriptions_per_session, 1>},
        {"max-prefetch-count", integer_field<A, uint32_t, &A::max_prefetch_count, 1>},
        {"max-pending-output-bytes",
         integer_field<A, uint64_t, &A::max_pending_output_bytes, 1024, int64_max>},
        {"write-timeout-ms", integer_field<A, uint32_t, &A::write_timeout_ms, 1>},
        {"max-packet-bytes", integer_field<A, uint32_t, &A::max_packet_bytes, 1024>},
        {"connection-ttl", integer_field<A, uint32_t, &A::connection_ttl, 1>},
        {"connection-ttl-override",
         [](context& ctx, const member& where, A& out) {
             read_integer(ctx, where, out.connection_ttl_override, int64_t{-1}, uint32_max);
             if (out.connection_ttl_override == 0) {
                 report(ctx, where, "must be -1 (the client's TTL) or at least 1, found 0");
                 out.connection_ttl_override = -1;
             }
         }},
        {"max-sessions-per-connection",
         integer_field<A, uint32_t, &A::max_sessions_per_connection, 1>},
        {"max-producers-per-session", integer_field<A, uint32_t, &A::max_producers_per_session, 1>},
        {"max-consumers-per-session", integer_field<A, uint32_t, &A::max_consumers_per_session, 1>},
        {"max-confirmation-window-bytes",
         integer_field<A, uint32_t, &A::max_confirmation_window_bytes, 1, 0x7fffffff>},
    };
    return fields;
}

std::optional<acceptor_config> read_acceptor(context& ctx, const member& entry) {
    acceptor_config acceptor;
    acceptor.name = entry.key->str();
    if (acceptor.name.empty()) {
        report_key(ctx, entry, "an acceptor name must not be empty");
        return std::nullopt;
    }
    const toml::table* body = expect_table(ctx, entry);
    if (body == nullptr) {
        return std::nullopt;
    }
    read_fields(ctx, *body, entry.path, acceptor_fields(), {}, acceptor);
    if (acceptor.default_prefetch_count > acceptor.max_prefetch_count
        && !has_error_under(ctx, entry.path + ".")) {
        // Point at whichever of the two is written down (max-prefetch-count first).
        auto at = find_member(*body, "max-prefetch-count", entry.path);
        if (!at) {
            at = find_member(*body, "default-prefetch-count", entry.path);
        }
        report(ctx, at ? *at : entry,
               "default-prefetch-count (" + std::to_string(acceptor.default_prefetch_count)
                   + ") must not exceed max-prefetch-count ("
                   + std::to_string(acceptor.max_prefetch_count) + ")");
    }
    return acceptor;
}

bool is_any_host(std::string_view host) {
    return host == "0.0.0.0" || host == "::" || host == "[::]";
}

/// Whether binding both would fail: the same fixed port on the same host, or on a host and
/// the wildcard address that includes it. Port 0 never clashes (the OS picks a free port).
bool same_socket(const acceptor_config& lhs, const acceptor_config& rhs) {
    if (lhs.port == 0 || lhs.port != rhs.port) {
        return false;
    }
    return lhs.host == rhs.host || is_any_host(lhs.host) || is_any_host(rhs.host);
}

/// Reports `acceptor` if it would listen where an earlier one already does, at its `port` (or
/// `host`, or its table when both are defaults).
void check_clash(context& ctx,
                 const std::vector<acceptor_config>& earlier,
                 const member& entry,
                 const acceptor_config& acceptor) {
    for (const auto& other : earlier) {
        if (!same_socket(other, acceptor)) {
            continue;
        }
        member where{entry.key, entry.node, entry.path + ".port"};
        const toml::table& body = *entry.node->as_table();
        for (std::string_view name : {"port", "host"}) {
            if (auto found = find_member(body, name, entry.path)) {
                where.key = found->key;
                where.node = found->node;
                break;
            }
        }
        report(ctx, where,
               "acceptor '" + other.name + "' already listens on " + other.host + ":"
                   + std::to_string(other.port));
        return;
    }
}

void read_acceptors(context& ctx, const member& where, node_config& out) {
    const toml::table* table = expect_table(ctx, where);
    if (table == nullptr) {
        return;
    }
    if (table->empty()) {
        report(ctx, where, "no acceptor is defined, so no client could connect");
        return;
    }
    // Only acceptors read without errors take part in the clash check: a rejected port would
    // otherwise stay at its default and clash by accident.
    std::vector<acceptor_config> sound;
    for (const auto& entry : members_in_file_order(*table, where.path)) {
        size_t errors_before = ctx.errors.size();
        auto acceptor = read_acceptor(ctx, entry);
        if (!acceptor) {
            continue;
        }
        if (ctx.errors.size() == errors_before) {
            check_clash(ctx, sound, entry, *acceptor);
            sound.push_back(*acceptor);
        }
        out.acceptors.push_back(std::move(*acceptor));
    }
}

// -- security -------------------------------------------------------------------------------------

const std::vector<field<user_config>>& user_fields() {
    using U = user_config;
    static const std::vector<field<U>> fields = {
        {"password", string_field<U, &U::password>},
        {"roles",
         [](context& ctx, const member& where, U& out) {
             read_string_list(ctx, where, out.roles);
         }},
    };
    return fields;
}

void read_users(context& ctx, const member& where, security_config& out) {
    const toml::table* table = expect_table(ctx, where);
    if (table == nullptr) {
        return;
    }
    for (const auto& entry : members_in_file_order(*table, where.path)) {
        user_config user;
        user.name = entry.key->str();
        if (user.name.empty()) {
            report_key(ctx, entry, "a user name must not be empty");
            continue;
        }
        const toml::table* body = expect_table(ctx, entry);
        if (body == nullptr) {
            continue;
        }
        read_fields(ctx, *body, entry.path, user_fields(), {}, user);
        if (!body->contains("password")) {
            report_key(ctx, entry, "missing key 'password'");
        }
        out.users.push_back(std::move(user));
    }
}

const std::vector<field<security_config>>& security_fields() {
    using S = security_config;
    static const std::vector<field<S>> fields = {
        {"allow-anonymous", bool_field<S, &S::allow_anonymous>},
        {"anonymous-user", string_field<S, &S::anonymous_user>},
        {"users", read_users},
    };
    return fields;
}

void read_security(context& ctx, const member& where, node_config& out) {
    static const std::vector<hint> hints = {
        {"security-enabled", "the top-level 'security-enabled'"},
    };
    const toml::table* table = expect_table(ctx, where);
    if (table != nullptr) {
        read_fields(ctx, *table, where.path, security_fields(), hints, out.security);
    }
}

/// The checks that need several security values at once; skipped when one of them was already
/// rejected, since its default would make the message misleading.
void check_security(context& ctx, const toml::table& root, const security_config& security) {
    if (has_error_under(ctx, "security")) {
        return;
    }
    auto section = find_member(root, "security", "");
    const toml::table* table = section ? section->node->as_table() : nullptr;
    if (security.allow_anonymous && security.anonymous_user.empty()) {
        auto at = table ? find_member(*table, "anonymous-user", "security") : std::nullopt;
        member where = at ? *at : member{nullptr, nullptr, "security.anonymous-user"};
        report(ctx, where, "must not be empty when allow-anonymous is true");
    }
    if (security.security_enabled && security.users.empty() && !security.allow_anonymous) {
        // Point at the setting if it is written down, else at [security], else at no line: the
        // problem then comes from the defaults alone.
        member where{nullptr, nullptr, "security-enabled"};
        if (auto at = find_member(root, "security-enabled", "")) {
            where = *at;
        } else if (section) {
            where.key = section->key;
            where.node = section->node;
        }
        report(ctx, where,
               "security is enabled but no users are defined and allow-anonymous is false: no "
               "client could connect");
    }
}

// -- HA policy and cluster ------------------------------------------------------------------------

void read_host_ports(context& ctx, const member& where, std::vector<std::string>& out);

// -- scale-down (docs/ha.md) ----------------------------------------------------------------------

void read_scale_down_connectors(context& ctx, const member& where, scale_down_config& out) {
    read_host_ports(ctx, where, out.connectors);
}

const std::vector<field<scale_down_config>>& scale_down_fields() {
    using S = scale_down_config;
    static const std::vector<field<S>> fields = {
        {"enabled", bool_field<S, &S::enabled>},
        {"connectors", read_scale_down_connectors},
        {"group-name", string_field<S, &S::group_name>},
        {"batch-messages", integer_field<S, uint32_t, &S::batch_messages, 1, 100000>},
        {"batch-timeout-ms", integer_field<S, uint32_t, &S::batch_timeout_ms, 100, 3600000>},
    };
    return fields;
}

/// A `scale-down` table: present means enabled unless it says otherwise.
void read_scale_down(context& ctx, const member& where, ha_policy_config& out) {
    const toml::table* body = expect_table(ctx, where);
    if (body == nullptr) {
        return;
    }
    out.scale_down.enabled = true;
    read_fields(ctx, *body, where.path, scale_down_fields(), {}, out.scale_down);
}

/// [ha-policy.live-only]: only its scale-down table.
const std::vector<field<ha_policy_config>>& live_only_fields() {
    static const std::vector<field<ha_policy_config>> fields = {
        {"scale-down", read_scale_down},
    };
    return fields;
}

const std::vector<field<ha_policy_config>>& primary_fields() {
    using H = ha_policy_config;
    static const std::vector<field<H>> fields = {
        {"failover-on-shutdown", bool_field<H, &H::failover_on_shutdown>},
        // The reference table's name for the same switch.
        {"failover-on-server-shutdown", bool_field<H, &H::failover_on_shutdown>},
        {"lock-poll-interval-ms", integer_field<H, uint32_t, &H::lock_poll_interval_ms, 1, 10000>},
    };
    return fields;
}

const std::vector<field<ha_policy_config>>& backup_fields() {
    using H = ha_policy_config;
    static const std::vector<field<H>> fields = {
        {"failover-on-shutdown", bool_field<H, &H::failover_on_shutdown>},
        {"failover-on-server-shutdown", bool_field<H, &H::failover_on_shutdown>},
        {"allow-failback", bool_field<H, &H::allow_failback>},
        {"restart-backup", bool_field<H, &H::restart_backup>},
        {"lock-poll-interval-ms", integer_field<H, uint32_t, &H::lock_poll_interval_ms, 1, 10000>},
        {"scale-down", read_scale_down},
    };
    return fields;
}

/// The keys both replication roles take (reference text "All Replication Configuration").
template <class H = ha_policy_config, class R = replication_config>
std::vector<field<H>> replication_common_fields() {
    return {
        {"cluster-name", nested_field<H, R, &H::replication, string_field<R, &R::cluster_name>>},
        {"group-name", nested_field<H, R, &H::replication, string_field<R, &R::group_name>>},
        {"initial-replication-sync-timeout",
         nested_field<H, R, &H::replication,
                      integer_field<R, uint32_t, &R::initial_replication_sync_timeout, 1>>},
        {"vote-on-replication-failure",
         nested_field<H, R, &H::replication, bool_field<R, &R::vote_on_replication_failure>>},
        {"quorum-size",
         nested_field<H, R, &H::replication, integer_field<R, int32_t, &R::quorum_size, -1, 1000>>},
        {"vote-retries", nested_field<H, R, &H::replication,
                                      integer_field<R, uint32_t, &R::vote_retries, 0, 1000>>},
        {"vote-retry-wait",
         nested_field<H, R, &H::replication,
                      integer_field<R, uint32_t, &R::vote_retry_wait, 1, 3600000>>},
        {"quorum-vote-wait",
         nested_field<H, R, &H::replication,
                      integer_field<R, uint32_t, &R::quorum_vote_wait, 1, 3600>>},
        {"retry-replication-wait",
         nested_field<H, R, &H::replication,
                      integer_field<R, uint32_t, &R::retry_replication_wait, 1, 3600000>>},
    };
}

const std::vector<field<ha_policy_config>>& replication_primary_fields() {
    using H = ha_policy_config;
    using R = replication_config;
    static const std::vector<field<H>> fields = [] {
        auto f = replication_common_fields();
        f.push_back(
            {"check-for-live-server",
             nested_field<H, R, &H::replication, bool_field<R, &R::check_for_live_server>>});
        // The newer name of the same switch.
        f.push_back(
            {"check-for-active-server",
             nested_field<H, R, &H::replication, bool_field<R, &R::check_for_live_server>>});
        return f;
    }();
    return fields;
}

const std::vector<field<ha_policy_config>>& replication_backup_fields() {
    using H = ha_policy_config;
    using R = replication_config;
    static const std::vector<field<H>> fields = [] {
        auto f = replication_common_fields();
        f.push_back(
            {"max-saved-replicated-journals-size",
             nested_field<
                 H, R, &H::replication,
                 integer_field<R, uint32_t, &R::max_saved_replicated_journals_size, 0, 1000>>});
        f.push_back({"allow-failback", bool_field<H, &H::allow_failback>});
        f.push_back({"restart-backup", bool_field<H, &H::restart_backup>});
        f.push_back({"scale-down", read_scale_down});
        return f;
    }();
    return fields;
}

/// Reads the one member a policy table may have; reports a second one, or none.
const member* only_member(context& ctx,
                          const member& where,
                          const std::vector<member>& members,
                          std::string_view expected) {
    if (members.empty()) {
        report(ctx, where, "expected one of " + std::string{expected});
        return nullptr;
    }
    for (size_t i = 1; i < members.size(); ++i) {
        report_key(ctx, members[i],
                   "only one of " + std::string{expected} + " may be given; '"
                       + std::string{members[0].key->str()} + "' is already");
    }
    return &members[0];
}

/// Reads the one role table of a policy (`primary` / `master` or `backup` / `slave`) with the
/// role's fields. False when the role is missing or unknown (reported).
bool read_role(context& ctx,
               const member& where,
               const std::vector<field<ha_policy_config>>& primary,
               const std::vector<field<ha_policy_config>>& backup,
               ha_policy_config& out) {
    const toml::table* table = expect_table(ctx, where);
    if (table == nullptr) {
        return false;
    }
    auto members = members_in_file_order(*table, where.path);
    const member* role = only_member(ctx, where, members, "primary (master) or backup (slave)");
    if (role == nullptr) {
        return false;
    }
    std::string_view name = role->key->str();
    const std::vector<field<ha_policy_config>>* fields = nullptr;
    if (name == "primary" || name == "master") {
        out.role = ha_role::primary;
        fields = &primary;
    } else if (name == "backup" || name == "slave") {
        out.role = ha_role::backup;
        fields = &backup;
    } else if (name == "colocated") {
        report_key(ctx, *role, "colocated is a policy of its own: write [ha-policy.colocated]");
        return false;
    } else {
        report_key(ctx, *role, "unknown role; expected primary (master) or backup (slave)");
        return false;
    }
    if (const toml::table* body = expect_table(ctx, *role)) {
        read_fields(ctx, *body, role->path, *fields, {}, out);
    }
    return true;
}

void read_shared_store(context& ctx, const member& where, ha_policy_config& out) {
    read_role(ctx, where, primary_fields(), backup_fields(), out);
}

/// [ha-policy.replication.primary] or [ha-policy.replication.backup] (docs/replication.md).
void read_replication(context& ctx, const member& where, ha_policy_config& out) {
    read_role(ctx, where, replication_primary_fields(), replication_backup_fields(), out);
}

// -- colocated backups (docs/ha.md, "Colocated backups") ------------------------------------------

/// Reads a colocated role table with the fields of its store; a key of the other store's role
/// table is reported as such (the pair's store decides which keys apply).
void read_colocated_role(context& ctx,
                         const member& where,
                         const std::vector<field<ha_policy_config>>& fields,
                         const std::vector<field<ha_policy_config>>& other_store,
                         ha_policy_config& out) {
    const toml::table* body = expect_table(ctx, where);
    if (body == nullptr) {
        return;
    }
    bool shared = out.colocated.store == colocated_store::shared_store;
    for (const auto& entry : members_in_file_order(*body, where.path)) {
        std::string_view name = entry.key->str();
        auto has = [name](const field<ha_policy_config>& f) {
            return f.key == name;
        };
        bool ours = std::any_of(fields.begin(), fields.end(), has);
        if (!ours && std::any_of(other_store.begin(), other_store.end(), has)) {
            report_key(ctx, entry,
                       std::string{shared ? "a replication key" : "a shared-store key"}
                           + ", but this colocated pair uses store = \""
                           + (shared ? "shared-store" : "replication") + "\"");
            continue;
        }
        if (!ours) {
            report_key(ctx, entry, unknown_reason(name, fields, {}));
            continue;
        }
        std::find_if(fields.begin(), fields.end(), has)->read(ctx, entry, out);
    }
}

/// [ha-policy.colocated.primary] (alias master): this node's own server, with the primary keys
/// of the pair's store (replication's or shared-store's).
void read_colocated_primary(context& ctx, const member& where, ha_policy_config& out) {
    bool shared = out.colocated.store == colocated_store::shared_store;
    read_colocated_role(ctx, where, shared ? primary_fields() : replication_primary_fields(),
                        shared ? replication_primary_fields() : primary_fields(), out);
}

/// [ha-policy.colocated.backup] (alias slave): the backup keys (of the pair's store) of the
/// backups this node asks for; read as a backup's policy, then kept in colocated_config.
void read_colocated_backup(context& ctx, const member& where, ha_policy_config& out) {
    const toml::table* body = expect_table(ctx, where);
    if (body == nullptr) {
        return;
    }
    auto& co = out.colocated;
    bool shared = co.store == colocated_store::shared_store;
    ha_policy_config backup;
    backup.colocated.store = co.store;
    backup.replication = co.backup;
    backup.allow_failback = co.backup_allow_failback;
    backup.restart_backup = co.backup_restart_backup;
    backup.failover_on_shutdown = co.backup_failover_on_shutdown;
    backup.lock_poll_interval_ms = co.backup_lock_poll_interval_ms;
    read_colocated_role(ctx, where, shared ? backup_fields() : replication_backup_fields(),
                        shared ? replication_backup_fields() : backup_fields(), backup);
    if (auto at = find_member(*body, "scale-down", where.path)) {
        // The colocated backup's config is built on its host from the live's; scale-down does
        // not travel with it yet (docs/ha.md, "Scale-down").
        report_key(ctx, *at, "scale-down is not supported for colocated backups yet");
    }
    co.backup = backup.replication;
    co.backup_allow_failback = backup.allow_failback;
    co.backup_restart_backup = backup.restart_backup;
    co.backup_failover_on_shutdown = backup.failover_on_shutdown;
    co.backup_lock_poll_interval_ms = backup.lock_poll_interval_ms;
}

/// `store`: read before the role tables (whatever its place in the file), which take its keys.
void read_colocated_store(context& ctx, const member& where, ha_policy_config& out) {
    std::string text;
    if (!read_string(ctx, where, text)) {
        return;
    }
    if (text == "replication") {
        out.colocated.store = colocated_store::replication;
    } else if (text == "shared-store") {
        out.colocated.store = colocated_store::shared_store;
    } else {
        report(ctx, where,
               "unknown store '" + text + "'; expected \"replication\" or \"shared-store\"");
    }
}

/// In the field list so that `store` is a known key; read_colocated reads it first.
void skip_field(context&, const member&, ha_policy_config&) {}

void read_colocated_excludes(context& ctx, const member& where, colocated_config& out) {
    read_string_list(ctx, where, out.excludes);
}

const std::vector<field<ha_policy_config>>& colocated_fields() {
    using H = ha_policy_config;
    using C = colocated_config;
    static const std::vector<field<H>> fields = {
        {"store", skip_field},
        {"request-backup", nested_field<H, C, &H::colocated, bool_field<C, &C::request_backup>>},
        {"max-backups",
         nested_field<H, C, &H::colocated, integer_field<C, uint32_t, &C::max_backups, 0, 100>>},
        {"backup-request-retries",
         nested_field<H, C, &H::colocated,
                      integer_field<C, int32_t, &C::backup_request_retries, -1, 1000000>>},
        {"backup-request-retry-interval",
         nested_field<H, C, &H::colocated,
                      integer_field<C, uint32_t, &C::backup_request_retry_interval, 1, 3600000>>},
        {"backup-request-settle-ms",
         nested_field<H, C, &H::colocated,
                      integer_field<C, uint32_t, &C::backup_request_settle_ms, 0, 3600000>>},
        {"backup-port-offset",
         nested_field<H, C, &H::colocated,
                      integer_field<C, uint32_t, &C::backup_port_offset, 1, 65535>>},
        {"excludes", nested_field<H, C, &H::colocated, read_colocated_excludes>},
        {"primary", read_colocated_primary},
        {"master", read_colocated_primary},
        {"backup", read_colocated_backup},
        {"slave", read_colocated_backup},
    };
    return fields;
}

/// [ha-policy.colocated]: the node is a replicating primary that asks for, and runs, colocated
/// backups.
void read_colocated(context& ctx, const member& where, ha_policy_config& out) {
    out.kind = ha_kind::colocated;
    out.role = ha_role::primary;
    if (const toml::table* body = expect_table(ctx, where)) {
        if (auto store = find_member(*body, "store", where.path)) {
            read_colocated_store(ctx, *store, out);
        }
        read_fields(ctx, *body, where.path, colocated_fields(), {}, out);
    }
}

void read_ha_policy(context& ctx, const member& where, node_config& out) {
    const toml::table* table = expect_table(ctx, where);
    if (table == nullptr) {
        return;
    }
    auto members = members_in_file_order(*table, where.path);
    const member* policy =
        only_member(ctx, where, members, "live-only, shared-store, replication or colocated");
    if (policy == nullptr) {
        return;
    }
    std::string_view name = policy->key->str();
    if (name == "live-only") {
        out.ha_policy.kind = ha_kind::live_only;
        if (const toml::table* body = expect_table(ctx, *policy)) {
            read_fields<ha_policy_config>(ctx, *body, policy->path, live_only_fields(), {},
                                          out.ha_policy);
        }
    } else if (name == "shared-store") {
        out.ha_policy.kind = ha_kind::shared_store;
        read_shared_store(ctx, *policy, out.ha_policy);
    } else if (name == "replication") {
        out.ha_policy.kind = ha_kind::replication;
        read_replication(ctx, *policy, out.ha_policy);
    } else if (name == "colocated") {
        read_colocated(ctx, *policy, out.ha_policy);
    } else {
        report_key(ctx, *policy,
                   "unknown ha-policy; expected live-only, shared-store, replication or colocated");
    }
}

/// Reads "HOST:PORT" cluster member addresses; each needs a host and a port 1-65535.
void read_host_ports(context& ctx, const member& where, std::vector<std::string>& out) {
    std::vector<std::string> members;
    read_string_list(ctx, where, members);
    const auto* array = where.node->as_array();
    for (size_t i = 0; i < members.size() && array != nullptr; ++i) {
        const auto& text = members[i];
        auto colon = text.rfind(':');
        bool ok =
            colon != std::string::npos && colon > 0 && colon + 1 < text.size()
            && text.size() - colon - 1 <= 5
            && std::all_of(text.begin() + static_cast<std::ptrdiff_t>(colon) + 1, text.end(),
                           [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
        if (ok) {
            auto port = std::stoul(text.substr(colon + 1));
            ok = port >= 1 && port <= 65535;
        }
        if (!ok) {
            member item{where.key, array->get(i), where.path + "[" + std::to_string(i) + "]"};
            report(ctx, item, "expected \"HOST:PORT\" with a port 1-65535, found \"" + text + "\"");
        }
    }
    out = std::move(members);
}

void read_members(context& ctx, const member& where, cluster_config& out) {
    read_host_ports(ctx, where, out.members);
}

const std::vector<field<cluster_config>>& cluster_fields() {
    using C = cluster_config;
    static const std::vector<field<C>> fields = {
        {"host", non_empty_string_field<C, &C::host>},
        {"port", integer_field<C, uint16_t, &C::port, 0, 65535>},
        {"members", read_members},
        {"reconnect-interval-ms", integer_field<C, uint32_t, &C::reconnect_interval_ms, 1, 60000>},
        {"heartbeat-interval-ms", integer_field<C, uint32_t, &C::heartbeat_interval_ms, 10, 60000>},
        {"connection-timeout-ms",
         integer_field<C, uint32_t, &C::connection_timeout_ms, 50, 600000>},
    };
    return fields;
}

void read_cluster(context& ctx, const member& where, node_config& out) {
    static const std::vector<hint> hints = {
        {"user", "the top-level 'cluster-user'"},
        {"cluster-user", "the top-level 'cluster-user'"},
        {"password", "the top-level 'cluster-password'"},
        {"cluster-password", "the top-level 'cluster-password'"},
    };
    const toml::table* table = expect_table(ctx, where);
    if (table != nullptr) {
        out.cluster.enabled = true;
        read_fields(ctx, *table, where.path, cluster_fields(), hints, out.cluster);
    }
}

void read_cluster_user(context& ctx, const member& where, node_config& out) {
    read_non_empty_string(ctx, where, out.cluster.user);
}

void read_cluster_password(context& ctx, const member& where, node_config& out) {
    read_string(ctx, where, out.cluster.password);
}

const std::vector<field<web_config>>& web_fields() {
    using W = web_config;
    static const std::vector<field<W>> fields = {
        {"enabled", bool_field<W, &W::enabled>},
        {"host", non_empty_string_field<W, &W::host>},
        {"port", integer_field<W, uint16_t, &W::port, 0, 65535>},
    };
    return fields;
}

void read_web(context& ctx, const member& where, node_config& out) {
    if (const toml::table* table = expect_table(ctx, where)) {
        read_fields(ctx, *table, where.path, web_fields(), {}, out.web);
    }
}

/// [ha-policy.colocated] replicates, so it needs what replication needs.
void check_colocated(context& ctx,
                     const node_config& config,
                     const member& policy,
                     const member& persistence) {
    if (config.ha_policy.kind != ha_kind::colocated || has_error_under(ctx, "ha-policy")) {
        return;
    }
    if (!config.journal.persistence_enabled) {
        report(ctx, persistence,
               config.ha_policy.colocated.store == colocated_store::shared_store
                   ? "must be true with ha-policy colocated: the backup takes over from the "
                     "shared journal"
                   : "must be true with ha-policy colocated: the journal is what is replicated");
    }
    if (!config.cluster.enabled) {
        report(ctx, policy,
               "ha-policy colocated needs a [cluster] table: backups are asked for, and run, "
               "through the cluster");
    }
}

/// Checks across [ha-policy], [cluster] and the journal keys.
void check_ha(context& ctx, const toml::table& root, const node_config& config) {
    auto point = [&](std::initializer_list<std::string_view> names, std::string fallback) {
        for (auto name : names) {
            if (auto at = find_member(root, name, "")) {
                return *at;
            }
        }
        return member{nullptr, nullptr, std::move(fallback)};
    };
    if (config.ha_policy.kind == ha_kind::shared_store && !config.journal.persistence_enabled
        && !has_error_under(ctx, "ha-policy")) {
        report(ctx, point({"persistence-enabled"}, "persistence-enabled"),
               "must be true with ha-policy shared-store: the backup takes over from the journal");
    }
    if (config.ha_policy.kind == ha_kind::replication && !has_error_under(ctx, "ha-policy")) {
        if (!config.journal.persistence_enabled) {
            report(ctx, point({"persistence-enabled"}, "persistence-enabled"),
                   "must be true with ha-policy replication: the journal is what is replicated");
        }
        if (!config.cluster.enabled) {
            report(ctx, point({"ha-policy"}, "ha-policy"),
                   "ha-policy replication needs a [cluster] table: the backup finds its live, "
                   "and the vote its members, through the cluster");
        }
    }
    if (config.ha_policy.kind == ha_kind::colocated && !config.journal.paging_directory.empty()
        && config.ha_policy.colocated.store == colocated_store::replication
        && !has_error_under(ctx, "ha-policy")) {
        // Replication carries the page files (docs/replication.md, "Paging"). A colocated
        // backup instance takes its live's settings with its own journal directory; the default
        // paging directory lies inside it, but one set here would be its host's own.
        report(ctx, point({"paging-directory"}, "paging-directory"),
               "cannot be set with ha-policy colocated: each colocated backup keeps its page "
               "files in its own journal directory (leave paging-directory unset)");
    }
    if (config.ha_policy.scale_down.enabled && !config.cluster.enabled
        && !has_error_under(ctx, "ha-policy")) {
        report(ctx, point({"ha-policy"}, "ha-policy"),
               "scale-down needs a [cluster] table: the messages go to another live through "
               "the cluster");
    }
    check_colocated(ctx, config, point({"ha-policy"}, "ha-policy"),
                    point({"persistence-enabled"}, "persistence-enabled"));
    if (config.cluster.enabled && config.cluster.password.empty()
        && !has_error_under(ctx, "cluster-password")) {
        member where = point({"cluster-password", "cluster"}, "cluster-password");
        where.path = "cluster-password";
        report(ctx, where,
               "must be set when [cluster] is present: members prove who they are with it");
    }
    const auto& c = config.cluster;
    if (c.enabled && c.connection_timeout_ms < 2 * c.heartbeat_interval_ms
        && !has_error_under(ctx, "cluster")) {
        auto section = find_member(root, "cluster", "");
        const toml::table* table = section ? section->node->as_table() : nullptr;
        auto at = table ? find_member(*table, "connection-timeout-ms", "cluster") : std::nullopt;
        report(ctx, at ? *at : *section,
               "must be at least twice cluster.heartbeat-interval-ms ("
                   + std::to_string(c.heartbeat_interval_ms) + "), found "
                   + std::to_string(c.connection_timeout_ms));
    }
}

// -- the root table -------------------------------------------------------------------------------

void read_security_enabled(context& ctx, const member& where, node_config& out) {
    read_bool(ctx, where, out.security.security_enabled);
}

void read_corrupt_policy(context& ctx, const member& where, node_config& out) {
    std::string text;
    if (!read_string(ctx, where, text)) {
        return;
    }
    if (text == "refuse") {
        out.journal.journal_corrupt_record_policy = corrupt_record_policy::refuse;
    } else if (text == "skip") {
        out.journal.journal_corrupt_record_policy = corrupt_record_policy::skip;
    } else {
        report(ctx, where, "unknown policy '" + text + "'; expected \"refuse\" or \"skip\"");
    }
}

/// A field of the journal sub-struct, read like any top-level field.
template <class T, T journal_config::*Member>
void journal_bool(context& ctx, const member& where, node_config& out) {
    read_bool(ctx, where, out.journal.*Member);
}

template <class T, T journal_config::*Member, int64_t Min, int64_t Max = int64_max>
void journal_integer(context& ctx, const member& where, node_config& out) {
    integer_field<journal_config, T, Member, Min, Max>(ctx, where, out.journal);
}

void read_journal_directory(context& ctx, const member& where, node_config& out) {
    non_empty_string_field<journal_config, &journal_config::journal_directory>(ctx, where,
                                                                               out.journal);
}

void read_paging_directory(context& ctx, const member& where, node_config& out) {
    non_empty_string_field<journal_config, &journal_config::paging_directory>(ctx, where,
                                                                              out.journal);
}

const std::vector<field<node_config>>& root_fields() {
    using N = node_config;
    static const std::vector<field<N>> fields = {
        {"name", non_empty_string_field<N, &N::name>},
        {"log-level", read_log_level},
        {"ports-file", string_field<N, &N::ports_file>},
        {"scheduler-max-threads", integer_field<N, uint32_t, &N::scheduler_max_threads, 0, 1024>},
        {"io-threads", integer_field<N, uint32_t, &N::io_threads, 1, 64>},
        {"scheduler-moderate-poll-attempts",
         integer_field<N, uint32_t, &N::scheduler_moderate_poll_attempts, 0>},
        {"request-timeout-ms", integer_field<N, uint32_t, &N::request_timeout_ms, 1>},
        {"max-auto-created-addresses",
         integer_field<N, uint32_t, &N::max_auto_created_addresses, 1>},
        {"max-auto-created-queues", integer_field<N, uint32_t, &N::max_auto_created_queues, 1>},
        {"max-prepared-transactions", integer_field<N, uint32_t, &N::max_prepared_transactions, 1>},
        {"security-enabled", read_security_enabled},
        {"persistence-enabled", journal_bool<bool, &journal_config::persistence_enabled>},
        {"journal-directory", read_journal_directory},
        {"paging-directory", read_paging_directory},
        {"journal-file-size",
         journal_integer<uint64_t, &journal_config::journal_file_size, 64 * 1024>},
        {"journal-min-files",
         journal_integer<uint32_t, &journal_config::journal_min_files, 2, 1000>},
        {"journal-buffer-timeout",
         journal_integer<uint64_t, &journal_config::journal_buffer_timeout, 0, 1000000000>},
        {"journal-buffer-size",
         journal_integer<uint64_t, &journal_config::journal_buffer_size, 1024>},
        {"journal-sync-transactional",
         journal_bool<bool, &journal_config::journal_sync_transactional>},
        {"journal-sync-non-transactional",
         journal_bool<bool, &journal_config::journal_sync_non_transactional>},
        {"journal-corrupt-record-policy", read_corrupt_policy},
        {"id-cache-size", journal_integer<uint32_t, &journal_config::id_cache_size, 1, 10000000>},
        {"persist-id-cache", journal_bool<bool, &journal_config::persist_id_cache>},
        {"acceptors", read_acceptors},
        {"security", read_security},
        {"address-settings", read_address_settings},
        {"cluster-user", read_cluster_user},
        {"cluster-password", read_cluster_password},
        {"ha-policy", read_ha_policy},
        {"cluster", read_cluster},
        {"web", read_web},
    };
    return fields;
}

/// Keys that belong in a nested table but are easily written at the top level.
const std::vector<hint>& root_hints() {
    static const std::vector<hint> hints = {
        {"allow-anonymous", "'security.allow-anonymous'"},
        {"anonymous-user", "'security.anonymous-user'"},
        {"users", "'security.users'"},
        {"protocol", "'acceptors.NAME.protocol'"},
        {"host", "'acceptors.NAME.host'"},
        {"port", "'acceptors.NAME.port'"},
        {"max-size-bytes", "'address-settings.\"MATCH\".max-size-bytes'"},
        {"address-full-policy", "'address-settings.\"MATCH\".address-full-policy'"},
        {"page-size-bytes", "'address-settings.\"MATCH\".page-size-bytes'"},
        {"page-max-cache-size", "'address-settings.\"MATCH\".page-max-cache-size'"},
    };
    return hints;
}

} // namespace

node_config convert(const toml::table& root,
                    const std::string& source_name,
                    std::vector<config_error>& errors) {
    context ctx{source_name, errors};
    node_config config;
    config.source = source_name;
    read_fields(ctx, root, "", root_fields(), root_hints(), config);
    if (!root.contains("acceptors")) {
        acceptor_config stomp;
        stomp.name = "stomp";
        config.acceptors.push_back(std::move(stomp));
    }
    check_security(ctx, root, config.security);
    check_ha(ctx, root, config);
    return config;
}

std::string quote_string(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string quoted = "\"";
    for (char c : text) {
        auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            quoted += '\\';
            quoted += c;
        } else if (byte < 0x20 || byte == 0x7f) {
            quoted += "\\u00";
            quoted += hex[byte >> 4];
            quoted += hex[byte & 0xf];
        } else {
            quoted += c;
        }
    }
    quoted += '"';
    return quoted;
}

std::string key_segment(std::string_view segment) {
    bool bare = !segment.empty() && std::all_of(segment.begin(), segment.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    });
    return bare ? std::string{segment} : quote_string(segment);
}

std::string join_key(std::string_view prefix, std::string_view segment) {
    if (prefix.empty()) {
        return key_segment(segment);
    }
    std::string result{prefix};
    result += '.';
    result += key_segment(segment);
    return result;
}

} // namespace actormq::config::detail
