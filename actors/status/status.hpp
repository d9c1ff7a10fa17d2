// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/fwd.hpp"
#include "actors/web/status_board.hpp"
#include "config/node_config.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/sinks/sink.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace actormq {

using role_atom = caf::atom_constant<caf::atom("role")>;
using instance_atom = caf::atom_constant<caf::atom("instance")>;

/// What the status actor knows of one server instance besides its actors: the client
/// connections and sessions open on it, counted by the acceptors and connections of its
/// activations (server_context::connections / sessions), and its journal's place.
struct instance_info {
    std::shared_ptr<std::atomic<uint64_t>> connections = std::make_shared<std::atomic<uint64_t>>(0);
    std::shared_ptr<std::atomic<uint64_t>> sessions = std::make_shared<std::atomic<uint64_t>>(0);
    bool persistence_enabled = false;
    std::string journal_directory;
};

/// The status actor's state (docs/web.md): what the node told it and what it gathered from the
/// server and journal actors on its last tick.
struct status_state {
    static inline const char* name = "status";

    std::shared_ptr<const config::node_config> cfg;
    std::shared_ptr<status_board> board;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

    /// What the status actor gathers from one server instance's activation: its actors, its
    /// connection counters and the figures of the last gather.
    struct instance_figures {
        server_actor server;
        journal_actor journal;
        /// Null counters until the instance's first activation tells them.
        instance_info info{nullptr, nullptr, false, {}};
        std::vector<queue_stats> queues;
        journal_stats journal_figures;
        /// The previous gather's enqueued / acked totals per "address/queue", for rates.
        std::map<std::string, std::pair<uint64_t, uint64_t>> previous;
    };

    /// The node's own server instance (named like the node).
    std::string role = "starting";
    std::string node_id;
    std::chrono::steady_clock::time_point role_since = started;
    instance_figures own;

    /// A colocated backup instance the node hosts (docs/ha.md, "Colocated backups").
    struct hosted_instance {
        std::string role = "starting";
        std::string node_id;
        std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
        instance_figures figures;
    };
    /// The colocated instances by name; one whose role becomes "gone" is dropped.
    std::map<std::string, hosted_instance> hosted;

    /// The figures of instance `name` (own or hosted); nullptr when it is gone.
    instance_figures* figures_of(const std::string& name);

    /// The cluster's last topology as JSON (members, topology), and member names by address
    /// (to tell joins from leaves).
    nlohmann::json members_doc = nlohmann::json::array();
    nlohmann::json topology_doc = nlohmann::json::array();
    std::map<std::string, std::string> members;

    /// When the rates' window of every instance last moved (the previous gather).
    std::chrono::steady_clock::time_point previous_at = started;

    uint64_t next_event = 1;
    uint64_t failovers = 0;
    uint64_t failbacks = 0;
    /// The last quorum votes and activations (failovers, failbacks) with their counts and
    /// durations, newest last, at most ha_history_max of each (docs/web.md, "HA decisions").
    nlohmann::json votes = nlohmann::json::array();
    nlohmann::json activations = nlohmann::json::array();
    uint64_t votes_won = 0;
    uint64_t votes_lost = 0;
    bool gathering = false;
    /// How long the last gather of queue and journal figures took.
    std::chrono::steady_clock::duration last_gather{};

    /// How long to wait before the next gather: status_interval, longer when gathers are slow.
    std::chrono::milliseconds gather_pause() const;

    /// Keeps a vote or an activation event in `votes` / `activations`.
    void remember_ha(const nlohmann::json& event);
    /// Adds an event to the board; `duration_ms` < 0 means none.
    void add_event(const std::string& kind, const std::string& message, int64_t duration_ms);
    /// Builds and publishes the status JSON and the metrics text; `fresh` after a gather (the
    /// rates' window moves only then).
    void publish(bool fresh = false);
    std::string status_json(bool fresh);
    std::string metrics_text() const;
    /// The "instances" array: the own instance first, then the colocated ones by name; a
    /// colocated one carries its queues, journal and replication figures (the own instance's
    /// are the top-level ones). `fresh` as for status_json.
    nlohmann::json instances_json(bool fresh, double dt);
    /// Client connections and sessions open on every instance of the node.
    uint64_t connections_total() const;
    uint64_t sessions_total() const;
};

/// The status actor. Messages:
///   (role_atom, instance, role, node_id)          an instance changed role ("gone": it ended)
///   (instance_atom, instance, server, journal, info)
///                                                 the actors of an instance's activation and
///                                                 its connection counters (instance_info)
///   (event_atom, kind, message, duration_ms)      an event for the log (duration -1: none)
///   (cluster::topology)                           the cluster's new topology
///   (caf::get_atom) -> std::string                the status JSON (management, shell)
///   (cluster::events_atom, since) -> std::string  the events JSON
/// `own`: the node's own instance's connection counters and journal.
caf::behavior status(caf::stateful_actor<status_state>* self,
                     std::shared_ptr<const config::node_config> cfg,
                     std::shared_ptr<status_board> board,
                     instance_info own);

/// A spdlog sink that turns every warning and error line into an event of `status`.
std::shared_ptr<spdlog::sinks::sink> make_event_sink(caf::actor status);

/// Longest event message kept (bytes); longer ones are cut at a UTF-8 boundary.
constexpr size_t event_message_max = 1024;

/// Votes and activations kept for /api/status and the page.
constexpr size_t ha_history_max = 20;

/// The "key=value" words of an HA event's message whose values are counts, as a JSON object
/// ("quorum-vote asked=2 answered=2 needed=2" -> {"asked": 2, "answered": 2, "needed": 2}).
nlohmann::json counts_of(const std::string& message);

/// Milliseconds between two publications of the status.
constexpr std::chrono::milliseconds status_interval{250};

/// How long after the last read of /api/status or /metrics (or the shell's status) the status
/// actor keeps gathering: above Prometheus' usual 15 s scrape interval.
constexpr std::chrono::seconds status_watch_window{60};

/// The longest pause between two gathers, however long they take.
constexpr std::chrono::milliseconds status_interval_max{10000};

} // namespace actormq

// Only ever sent between actors of one process (the node and its status actor).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::instance_info)
