// SPDX-License-Identifier: Apache-2.0
#include "actors/status/status.hpp"

#include "cluster/cluster.hpp"
#include "cluster/management.hpp"

#include <caf/send.hpp>
#include <spdlog/sinks/base_sink.h>

#include <algorithm>
#include <ctime>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

namespace actormq {

namespace {

using json = nlohmann::json;
using status_ptr = caf::stateful_actor<status_state>*;

/// JSON text; bytes that are not UTF-8 (a queue name can hold any) become U+FFFD instead of
/// throwing, which would end the status actor.
std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// Whether text[i..] starts a valid UTF-8 sequence; its length in `n`.
bool utf8_at(const std::string& text, size_t i, size_t& n) {
    auto b = static_cast<unsigned char>(text[i]);
    n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > text.size()) {
        return false;
    }
    for (size_t k = 1; k < n; ++k) {
        if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) {
            return false;
        }
    }
    return true;
}

/// At most `max` bytes of `text`, cut before a partial UTF-8 sequence.
std::string clip(const std::string& text, size_t max) {
    if (text.size() <= max) {
        return text;
    }
    size_t end = max;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
        --end;
    }
    return text.substr(0, end) + "…";
}

/// "2026-11-23T18:50:01.123Z"
std::string utc_now() {
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
    std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char text[40];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[48];
    std::snprintf(out, sizeof out, "%s.%03dZ", text, static_cast<int>(ms.count() % 1000));
    return out;
}

int64_t ms_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now()
                                                                 - t)
        .count();
}

const char* routing_name(routing_type r) {
    return r == routing_type::multicast ? "multicast" : "anycast";
}

const char* policy_name(const config::node_config& cfg) {
    switch (cfg.ha_policy.kind) {
        case config::ha_kind::shared_store:
            return "shared-store";
        case config::ha_kind::replication:
            return "replication";
        case config::ha_kind::colocated:
            return "colocated";
        case config::ha_kind::live_only:
            break;
    }
    return "live-only";
}

const char* ha_role_name(const config::node_config& cfg) {
    if (cfg.ha_policy.kind == config::ha_kind::live_only) {
        return "live-only";
    }
    return cfg.ha_policy.role == config::ha_role::backup ? "backup" : "primary";
}

/// A Prometheus label value: backslash, double quote and line feed escaped, and bytes that are
/// not UTF-8 replaced by '?' (one bad label would make a scrape fail for the whole target).
std::string label(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size();) {
        size_t n = 0;
        if (!utf8_at(text, i, n)) {
            out += '?';
            ++i;
            continue;
        }
        char c = text[i];
        if (n == 1 && (c == '\\' || c == '"')) {
            out += '\\';
            out += c;
        } else if (n == 1 && c == '\n') {
            out += "\\n";
        } else {
            out.append(text, i, n);
        }
        i += n;
    }
    return out;
}

/// Emits the HELP and TYPE lines of one metric family.
void family(std::ostringstream& out, const char* name, const char* type, const char* help) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

/// A family with one unlabelled series.
template <class Value>
void single(std::ostringstream& out,
            const char* name,
            const char* type,
            const char* help,
            const Value& value) {
    family(out, name, type, help);
    out << name << ' ' << value << '\n';
}

/// Notes joins and leaves between the previous member list and `t`.
void note_members(status_ptr self, const cluster::topology& t) {
    auto& st = self->state;
    std::map<std::string, std::string> now;
    json members = json::array();
    for (size_t i = 0; i < t.members.size(); ++i) {
        const auto& m = t.members[i];
        members.push_back({{"name", m.name},
                           {"node_id", m.node_id},
                           {"role", m.role},
                           {"connector", m.connector},
                           {"cluster_address", m.cluster_address},
                           {"activation_sequence", m.sequence}});
        if (i > 0) { // the first is this node itself
            now[m.cluster_address] = m.name;
        }
    }
    for (const auto& [addr, name] : now) {
        if (st.members.count(addr) == 0) {
            st.add_event("member_joined", "member " + name + " (" + addr + ") joined", -1);
        }
    }
    for (const auto& [addr, name] : st.members) {
        if (now.count(addr) == 0) {
            st.add_event("member_left", "member " + name + " (" + addr + ") left", -1);
        }
    }
    st.members = std::move(now);
    std::map<std::string, json> by_id;
    for (const auto& m : t.members) {
        if (m.node_id.empty()) {
            continue;
        }
        auto& entry = by_id[m.node_id];
        if (entry.is_null()) {
            entry = {{"node_id", m.node_id}, {"live", ""}, {"backups", json::array()}};
        }
        if (m.role == "live") {
            entry["live"] = m.connector;
        } else if (m.role == "backup") {
            entry["backups"].push_back(m.connector);
        }
    }
    json topology = json::array();
    for (auto& [id, entry] : by_id) {
        topology.push_back(std::move(entry));
    }
    st.members_doc = std::move(members);
    st.topology_doc = std::move(topology);
}

/// Asks instance `name`'s server for its queues and its journal for its figures, then calls
/// `done`. The instance may be gone (or start a new activation) before the answers come: they
/// land where `name` is then, or nowhere.
template <class Done>
void gather_one(status_ptr self, const std::string& name, Done done) {
    auto* f = self->state.figures_of(name);
    if (f == nullptr) {
        done();
        return;
    }
    auto timeout = std::chrono::milliseconds(self->state.cfg->request_timeout_ms);
    auto journal = f->journal;
    auto ask_journal = [self, name, journal, done, timeout] {
        if (!journal) {
            done();
            return;
        }
        self->request(journal, timeout, stats_atom::value)
            .then(
                [self, name, done](journal_stats& js) {
                    if (auto* g = self->state.figures_of(name)) {
                        g->journal_figures = std::move(js);
                    }
                    done();
                },
                [done](caf::error&) { done(); });
    };
    if (!f->server) {
        f->queues.clear();
        ask_journal();
        return;
    }
    self->request(f->server, timeout, stats_atom::value)
        .then(
            [self, name, ask_journal](std::vector<queue_stats>& qs) {
                if (auto* g = self->state.figures_of(name)) {
                    g->queues = std::move(qs);
                }
                ask_journal();
            },
            [ask_journal](caf::error&) { ask_journal(); });
}

/// Gathers the figures of every instance of the node (its own and the colocated ones, at
/// once), then publishes.
void gather(status_ptr self) {
    auto& st = self->state;
    if (st.gathering) {
        return;
    }
    st.gathering = true;
    std::vector<std::string> names{st.cfg->name};
    for (const auto& [name, h] : st.hosted) {
        names.push_back(name);
    }
    auto started = std::chrono::steady_clock::now();
    auto pending = std::make_shared<size_t>(names.size());
    auto done = [self, started, pending] {
        if (--*pending > 0) {
            return;
        }
        auto& s = self->state;
        s.gathering = false;
        s.publish(true);
        s.last_gather = std::chrono::steady_clock::now() - started;
    };
    for (const auto& name : names) {
        gather_one(self, name, done);
    }
}

/// The "queues" array of one instance's figures; moves its rate window when `fresh`.
json queues_json(status_state::instance_figures& f, bool fresh, double dt) {
    json qs = json::array();
    std::map<std::string, std::pair<uint64_t, uint64_t>> totals;
    for (const auto& q : f.queues) {
        auto key = q.address + "/" + q.name;
        totals[key] = {q.enqueued, q.acked};
        double in_rate = 0;
        double out_rate = 0;
        if (auto p = f.previous.find(key); p != f.previous.end() && dt > 0) {
            in_rate = static_cast<double>(q.enqueued - std::min(q.enqueued, p->second.first)) / dt;
            out_rate = static_cast<double>(q.acked - std::min(q.acked, p->second.second)) / dt;
        }
        qs.push_back({{"address", q.address},
                      {"name", q.name},
                      {"routing", routing_name(q.routing)},
                      {"depth", q.depth},
                      {"in_flight", q.in_flight},
                      {"consumers", q.consumers},
                      {"enqueued_total", q.enqueued},
                      {"delivered_total", q.delivered},
                      {"acked_total", q.acked},
                      {"redelivered_total", q.redelivered},
                      {"enqueue_rate", in_rate},
                      {"dequeue_rate", out_rate}});
    }
    if (fresh) {
        // Only a new gather moves the rate window; a publish for a role change reuses it.
        f.previous = std::move(totals);
    }
    return qs;
}

/// The "journal" object of one instance.
json journal_json(const instance_info& info, const journal_stats& j) {
    return {{"enabled", info.persistence_enabled},
            {"directory", info.journal_directory},
            {"files", j.files},
            {"bytes", j.bytes},
            {"batches_total", j.batches},
            {"records_total", j.records},
            {"synced_appends_total", j.synced_appends},
            {"last_batch_records", j.last_batch_records},
            {"last_sync_us", j.last_sync_us},
            {"segments_reclaimed_total", j.segments_reclaimed}};
}

/// The "replication" object of one instance: the live's view of its replicating backup
/// (docs/replication.md).
json replication_json(const journal_stats& j) {
    return {{"backup", j.replication},
            {"batches_sent", j.replication_sent},
            {"batches_acknowledged", j.replication_acked},
            {"lag_batches", j.replication_sent - j.replication_acked},
            {"lag_bytes", j.replication_lag_bytes},
            {"sync_bytes_sent", j.sync_sent},
            {"sync_bytes_total", j.sync_total},
            {"acks_total", j.replication_acks},
            {"ack_round_trip_us_avg",
             j.replication_acks == 0 ? 0 : j.replication_ack_us_sum / j.replication_acks}};
}

uint64_t load(const std::shared_ptr<std::atomic<uint64_t>>& counter) {
    return counter ? counter->load() : 0;
}

} // namespace

void status_state::add_event(const std::string& kind,
                             const std::string& message,
                             int64_t duration_ms) {
    // Capped: a log line can quote a 64 KiB destination, and every WebSocket client gets each.
    json e = {{"seq", next_event},
              {"time", utc_now()},
              {"kind", kind},
              {"message", clip(message, event_message_max)}};
    if (duration_ms >= 0) {
        e["duration_ms"] = duration_ms;
    }
    if (kind == "failover") {
        ++failovers;
    } else if (kind == "failback") {
        ++failbacks;
    }
    remember_ha(e);
    board->add_event(next_event, dump(e));
    ++next_event;
}

std::chrono::milliseconds status_state::gather_pause() const {
    // A gather asks every address and queue for its figures, so it grows with their number:
    // with 100,000 queues, gathering every 250 ms left clients' requests waiting behind the
    // answers (docs/benchmarks.md, "Scale on one node"). So the pause is at least four gathers
    // long: figures get older, the node stays free for its clients.
    auto pause = std::chrono::duration_cast<std::chrono::milliseconds>(4 * last_gather);
    return std::clamp(pause, status_interval, status_interval_max);
}

void status_state::remember_ha(const json& event) {
    const auto& kind = event["kind"].get_ref<const std::string&>();
    // The replication backup's vote (docs/replication.md, "The quorum vote"): asked, lost, or
    // won (then the activation follows); a live's own-quorum check that failed steps down.
    static const std::map<std::string, std::string> vote_outcomes = {
        {"vote", "asked"},
        {"vote_lost", "lost"},
        {"vote_won", "won"},
        {"quorum_kept", "quorum-kept"},
        {"stepping_down", "stepped-down"}};
    auto keep = [](json& list, json entry) {
        list.push_back(std::move(entry));
        if (list.size() > ha_history_max) {
            list.erase(list.begin());
        }
    };
    if (auto v = vote_outcomes.find(kind); v != vote_outcomes.end()) {
        if (v->second == "won" || v->second == "quorum-kept") {
            ++votes_won;
        } else if (v->second == "lost" || v->second == "stepped-down") {
            ++votes_lost;
        }
        const auto& message = event["message"].get_ref<const std::string&>();
        keep(votes, {{"seq", event["seq"]},
                     {"time", event["time"]},
                     {"outcome", v->second},
                     {"counts", counts_of(message)},
                     {"detail", message}});
    } else if (kind == "failover" || kind == "failback" || kind == "activated") {
        json entry = {{"seq", event["seq"]},
                      {"time", event["time"]},
                      {"kind", kind},
                      {"detail", event["message"]}};
        if (event.contains("duration_ms")) {
            entry["duration_ms"] = event["duration_ms"];
        }
        keep(activations, std::move(entry));
    }
}

json counts_of(const std::string& message) {
    json out = json::object();
    std::istringstream words{message};
    std::string word;
    while (words >> word) {
        auto eq = word.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == word.size()) {
            continue;
        }
        auto key = word.substr(0, eq);
        auto value = word.substr(eq + 1);
        // "peers_joined=1/2": the joined members of the configured ones.
        auto slash = value.find('/');
        auto digits = [](const std::string& d) {
            return !d.empty() && d.size() < 10
                   && std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
        };
        if (slash != std::string::npos && digits(value.substr(0, slash))
            && digits(value.substr(slash + 1))) {
            out[key] = std::stoul(value.substr(0, slash));
            out[key + "_of"] = std::stoul(value.substr(slash + 1));
        } else if (digits(value)) {
            out[key] = std::stoul(value);
        }
    }
    return out;
}

status_state::instance_figures* status_state::figures_of(const std::string& name) {
    if (name == cfg->name) {
        return &own;
    }
    auto h = hosted.find(name);
    return h == hosted.end() ? nullptr : &h->second.figures;
}

uint64_t status_state::connections_total() const {
    uint64_t n = load(own.info.connections);
    for (const auto& [name, h] : hosted) {
        n += load(h.figures.info.connections);
    }
    return n;
}

uint64_t status_state::sessions_total() const {
    uint64_t n = load(own.info.sessions);
    for (const auto& [name, h] : hosted) {
        n += load(h.figures.info.sessions);
    }
    return n;
}

std::string status_state::status_json(bool fresh) {
    auto now = std::chrono::steady_clock::now();
    double dt = std::chrono::duration<double>(now - previous_at).count();
    auto qs = queues_json(own, fresh, dt);
    auto instances = instances_json(fresh, dt);
    if (fresh) {
        previous_at = now;
    }
    const auto& j = own.journal_figures;
    json doc = {
        {"node",
         {{"name", cfg->name},
          {"version", "0.1.0"},
          {"pid", static_cast<int64_t>(::getpid())},
          {"uptime_ms", ms_since(started)},
          {"ha_policy", policy_name(*cfg)},
          {"ha_role", ha_role_name(*cfg)}}},
        {"instances", std::move(instances)},
        {"members", members_doc},
        {"topology", topology_doc},
        // Every instance's: the clients of the node as a whole.
        {"connections", connections_total()},
        {"sessions", sessions_total()},
        // The node's own instance's; a colocated one's are in its entry of "instances".
        {"queues", std::move(qs)},
        {"journal", journal_json(own.info, j)},
        {"replication", replication_json(j)},
        // The last votes and activations (docs/web.md, "HA decisions").
        {"ha",
         {{"votes", votes},
          {"votes_won_total", votes_won},
          {"votes_lost_total", votes_lost},
          {"activations", activations}}},
        {"events_last", board->last_event()},
    };
    return dump(doc);
}

json status_state::instances_json(bool fresh, double dt) {
    json out = json::array({{{"name", cfg->name},
                             {"role", role},
                             {"node_id", node_id},
                             {"colocated", false},
                             {"since_ms", ms_since(role_since)},
                             {"connections", load(own.info.connections)},
                             {"sessions", load(own.info.sessions)}}});
    for (auto& [name, h] : hosted) {
        auto& f = h.figures;
        out.push_back({{"name", name},
                       {"role", h.role},
                       {"node_id", h.node_id},
                       {"colocated", true},
                       {"since_ms", ms_since(h.since)},
                       {"connections", load(f.info.connections)},
                       {"sessions", load(f.info.sessions)},
                       {"queues", queues_json(f, fresh, dt)},
                       {"journal", journal_json(f.info, f.journal_figures)},
                       {"replication", replication_json(f.journal_figures)}});
    }
    return out;
}

std::string status_state::metrics_text() const {
    std::ostringstream out;
    // Every instance of the node with its label value: its own first, then the colocated ones.
    std::vector<std::pair<std::string, const instance_figures*>> all{{label(cfg->name), &own}};
    for (const auto& [name, h] : hosted) {
        all.emplace_back(label(name), &h.figures);
    }
    auto per_queue = [&](const char* name, const char* type, const char* help, auto value) {
        family(out, name, type, help);
        for (const auto& [inst, f] : all) {
            for (const auto& q : f->queues) {
                out << name << "{instance=\"" << inst << "\",address=\"" << label(q.address)
                    << "\",queue=\"" << label(q.name) << "\"} " << value(q) << '\n';
            }
        }
    };
    // A family with one series per instance, from its journal's figures.
    auto per_instance = [&](const char* name, const char* type, const char* help, auto value) {
        family(out, name, type, help);
        for (const auto& [inst, f] : all) {
            out << name << "{instance=\"" << inst << "\"} " << value(*f) << '\n';
        }
    };
    per_queue("actormq_queue_messages_enqueued_total", "counter", "Messages added to the queue.",
              [](const queue_stats& q) { return q.enqueued; });
    per_queue("actormq_queue_messages_delivered_total", "counter",
              "Messages handed to consumers, redeliveries included.",
              [](const queue_stats& q) { return q.delivered; });
    per_queue("actormq_queue_messages_acknowledged_total", "counter",
              "Messages acknowledged (consumed).", [](const queue_stats& q) { return q.acked; });
    per_queue("actormq_queue_depth_messages", "gauge", "Messages waiting for a consumer.",
              [](const queue_stats& q) { return q.depth; });
    per_queue("actormq_queue_in_flight_messages", "gauge", "Messages delivered, not yet acked.",
              [](const queue_stats& q) { return q.in_flight; });
    per_queue("actormq_queue_consumers", "gauge", "Consumers subscribed to the queue.",
              [](const queue_stats& q) { return q.consumers; });
    single(out, "actormq_connections", "gauge", "Client connections open, on every instance.",
           connections_total());
    single(out, "actormq_sessions", "gauge",
           "Client connections past CONNECT, with a session, on every instance.", sessions_total());
    single(out, "actormq_server_live", "gauge", "1 when this node serves clients.",
           (role == "live" || role == "backup-active" ? 1 : 0));
    single(out, "actormq_failovers_total", "counter",
           "Times this node took over as the live server of its node id from a dead or stopped "
           "live.",
           failovers);
    family(out, "actormq_instance_live", "gauge",
           "1 when the server instance serves clients; one series per instance of the node (its "
           "own and the colocated backups it hosts).");
    auto serving = [](const std::string& r) {
        return r == "live" || r == "backup-active" ? 1 : 0;
    };
    out << "actormq_instance_live{instance=\"" << label(cfg->name) << "\",role=\"" << label(role)
        << "\",colocated=\"false\"} " << serving(role) << '\n';
    for (const auto& [name, h] : hosted) {
        out << "actormq_instance_live{instance=\"" << label(name) << "\",role=\"" << label(h.role)
            << "\",colocated=\"true\"} " << serving(h.role) << '\n';
    }
    single(out, "actormq_failbacks_total", "counter",
           "Times this node became live again after a backup gave way.", failbacks);
    family(out, "actormq_votes_total", "counter",
           "Quorum votes this node decided: won (it took over), lost (it waited, or a live "
           "without its quorum stepped down).");
    out << "actormq_votes_total{outcome=\"won\"} " << votes_won << '\n';
    out << "actormq_votes_total{outcome=\"lost\"} " << votes_lost << '\n';
    using fig = instance_figures;
    per_instance("actormq_instance_connections", "gauge",
                 "Client connections open on the instance.",
                 [](const fig& f) { return load(f.info.connections); });
    per_instance("actormq_instance_sessions", "gauge",
                 "Client connections past CONNECT on the instance, with a session.",
                 [](const fig& f) { return load(f.info.sessions); });
    per_instance("actormq_journal_files", "gauge", "Journal segment files.",
                 [](const fig& f) { return f.journal_figures.files; });
    per_instance("actormq_journal_batches_total", "counter",
                 "Journal batches written (one write and one fdatasync each).",
                 [](const fig& f) { return f.journal_figures.batches; });
    per_instance("actormq_journal_records_total", "counter",
                 "Journal records written; divided by the batches, what group commit shares.",
                 [](const fig& f) { return f.journal_figures.records; });
    per_instance("actormq_journal_synced_appends_total", "counter",
                 "Appends whose sender waited for the fdatasync (confirmations), in all batches.",
                 [](const fig& f) { return f.journal_figures.synced_appends; });
    per_instance("actormq_replication_backup_in_sync", "gauge",
                 "1 when this live's replicating backup holds the whole journal.",
                 [](const fig& f) { return f.journal_figures.replication == "in-sync" ? 1 : 0; });
    per_instance("actormq_replication_lag_batches", "gauge",
                 "Batches sent to the backup and not yet on its disk.", [](const fig& f) {
                     return f.journal_figures.replication_sent
                            - f.journal_figures.replication_acked;
                 });
    per_instance("actormq_replication_lag_bytes", "gauge",
                 "Bytes sent to the backup and not yet on its disk.",
                 [](const fig& f) { return f.journal_figures.replication_lag_bytes; });
    per_instance("actormq_replication_sync_bytes_sent", "gauge",
                 "Initial sync: bytes of the journal sent to the backup so far.",
                 [](const fig& f) { return f.journal_figures.sync_sent; });
    per_instance("actormq_replication_sync_bytes_total", "gauge",
                 "Initial sync: bytes of the journal the backup needs.",
                 [](const fig& f) { return f.journal_figures.sync_total; });
    family(out, "actormq_replication_ack_round_trip_seconds", "summary",
           "From sending a batch to the backup until its acknowledgement (its fdatasync "
           "included).");
    for (const auto& [inst, f] : all) {
        const auto& j = f->journal_figures;
        out << "actormq_replication_ack_round_trip_seconds_sum{instance=\"" << inst << "\"} "
            << std::setprecision(15) << static_cast<double>(j.replication_ack_us_sum) / 1e6 << '\n';
        out << "actormq_replication_ack_round_trip_seconds_count{instance=\"" << inst << "\"} "
            << j.replication_acks << '\n';
    }
    family(out, "actormq_journal_fsync_duration_seconds", "histogram",
           "Duration of one journal batch write and fdatasync.");
    const auto& bounds = sync_bounds_seconds();
    for (const auto& [inst, f] : all) {
        const auto& j = f->journal_figures;
        uint64_t cumulative = 0;
        for (size_t i = 0; i <= bounds.size(); ++i) {
            cumulative += i < j.sync_buckets.size() ? j.sync_buckets[i] : 0;
            out << "actormq_journal_fsync_duration_seconds_bucket{instance=\"" << inst
                << "\",le=\"";
            if (i < bounds.size()) {
                out << bounds[i];
            } else {
                out << "+Inf";
            }
            out << "\"} " << cumulative << '\n';
        }
        out << "actormq_journal_fsync_duration_seconds_sum{instance=\"" << inst << "\"} "
            << std::setprecision(15) << j.sync_seconds_sum << '\n';
        out << "actormq_journal_fsync_duration_seconds_count{instance=\"" << inst << "\"} "
            << cumulative << '\n';
    }
    return out.str();
}

void status_state::publish(bool fresh) {
    auto doc = status_json(fresh);
    board->publish(std::move(doc), metrics_text());
}

namespace {

/// Forwards warn and error lines ("[logger] text") to the status actor as events.
class event_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit event_sink(caf::actor status) : status_(std::move(status)) {
        set_level(spdlog::level::warn);
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        std::string text = "[";
        text.append(msg.logger_name.data(), msg.logger_name.size());
        text += "] ";
        text.append(msg.payload.data(), msg.payload.size());
        const char* kind = msg.level >= spdlog::level::err ? "error" : "warning";
        caf::anon_send(status_, event_atom::value, std::string{kind}, std::move(text), int64_t{-1});
    }
    void flush_() override {}

private:
    caf::actor status_;
};

} // namespace

std::shared_ptr<spdlog::sinks::sink> make_event_sink(caf::actor status) {
    return std::make_shared<event_sink>(std::move(status));
}

caf::behavior status(caf::stateful_actor<status_state>* self,
                     std::shared_ptr<const config::node_config> cfg,
                     std::shared_ptr<status_board> board,
                     instance_info own) {
    auto& st = self->state;
    st.cfg = std::move(cfg);
    st.board = std::move(board);
    st.own.info = std::move(own);
    st.publish();
    self->send(self, caf::tick_atom::value);
    return {
        [self](role_atom, const std::string& instance, std::string& role, std::string& node_id) {
            auto& st = self->state;
            if (instance == st.cfg->name) {
                st.role = std::move(role);
                st.node_id = std::move(node_id);
                st.role_since = std::chrono::steady_clock::now();
            } else if (role == "gone") {
                st.hosted.erase(instance);
            } else {
                auto& h = st.hosted[instance];
                h.role = std::move(role);
                h.node_id = std::move(node_id);
                h.since = std::chrono::steady_clock::now();
            }
            st.publish();
        },
        [self](instance_atom, const std::string& instance, server_actor& srv,
               journal_actor& journal, instance_info& info) {
            auto& st = self->state;
            if (instance != st.cfg->name && st.hosted.count(instance) == 0) {
                return; // gone already: a late word of its last activation
            }
            auto& f = *st.figures_of(instance);
            f.server = std::move(srv);
            f.journal = std::move(journal);
            f.info = std::move(info);
            f.queues.clear();
            f.journal_figures = journal_stats{};
        },
        [self](event_atom, const std::string& kind, const std::string& message,
               int64_t duration_ms) { self->state.add_event(kind, message, duration_ms); },
        [self](cluster::topology& t) { note_members(self, t); },
        [self](caf::tick_atom) {
            // Nobody reads the figures (no page open, no scrape, no shell): no gather. A
            // reader after a quiet spell gets figures up to one pause old, then fresh ones.
            if (self->state.board->read_within(status_watch_window)) {
                gather(self);
            }
            self->delayed_send(self, self->state.gather_pause(), caf::tick_atom::value);
        },
        [self](caf::get_atom) { return *self->state.board->status_json(); },
        [self](cluster::events_atom, uint64_t since) {
            return self->state.board->events_json(since);
        },
    };
}

} // namespace actormq
