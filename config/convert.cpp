// SPDX-License-Identifier: Apache-2.0
#include "config/convert_reading.hpp"

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

namespace {

const toml::source_region* region_of(const toml::node* node) {
    return node == nullptr ? nullptr : &node->source();
}

const toml::source_region* region_of(const toml::key* key) {
    return key == nullptr ? nullptr : &key->source();
}

} // namespace

/// Reports a problem with a member's value, at the value (or its key when the value has no
/// position, as for tables created by an override).
void report(context& ctx, const member& where, std::string reason) {
    report_at(ctx, region_of(where.node), region_of(where.key), where.path, std::move(reason));
}

/// Reports a problem with the key itself (unknown keys, bad names), at the key.
void report_key(context& ctx, const member& where, std::string reason) {
    report_at(ctx, region_of(where.key), region_of(where.node), where.path, std::move(reason));
}

namespace {

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

} // namespace

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

// -- table walking --------------------------------------------------------------------------------

namespace {

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

} // namespace

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

namespace {

std::string format_double(double value) {
    std::ostringstream out;
    out << value;
    std::string text = out.str();
    if (text.find_first_of(".en") == std::string::npos) {
        text += ".0";
    }
    return text;
}

} // namespace

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

namespace {

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

// -- web ------------------------------------------------------------------------------------------

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
