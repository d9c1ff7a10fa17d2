// SPDX-License-Identifier: Apache-2.0
// [ha-policy] (live-only, shared store, replication, colocated; scale-down), [cluster], and the
// checks across them and the root keys (docs/configuration.md, docs/ha.md).
#include "config/convert_reading.hpp"

namespace actormq::config::detail {

namespace {

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

} // namespace

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

} // namespace actormq::config::detail
