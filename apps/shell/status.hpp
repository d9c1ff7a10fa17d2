// SPDX-License-Identifier: Apache-2.0
#pragma once

// The parts of a node's /api/status document (docs/web.md) that the shell shows and checks.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace actormq::shell {

/// One server instance of a node: `instances[]`.
struct instance_status {
    std::string name;
    std::string role; ///< live, backup, backup-active, failing-back, paused, starting, stopped
    std::string node_id;
    bool colocated = false;
    uint64_t connections = 0;
    /// Its queues: the top-level `queues[]` for the node's own, `instances[].queues[]` else.
    uint64_t queue_count = 0;
};

/// One queue: `queues[]`, or a colocated instance's `instances[].queues[]`.
struct queue_status {
    /// The server instance that serves it (the node's own or a colocated backup).
    std::string instance;
    std::string address;
    std::string name;
    std::string routing;
    uint64_t depth = 0;
    uint64_t in_flight = 0;
    uint64_t consumers = 0;
    uint64_t enqueued_total = 0;
    uint64_t acked_total = 0;
};

/// What the shell reads from /api/status.
struct node_status {
    std::string name;
    std::string ha_policy;
    std::string ha_role;
    std::vector<instance_status> instances;
    /// Every instance's queues: the node's own first, then each colocated instance's.
    std::vector<queue_status> queues;
    uint64_t connections = 0;

    /// `instances[0].role`: the role that conditions test ("" when there is no instance).
    std::string role() const { return instances.empty() ? "" : instances.front().role; }

    /// The queue called `name` (a "/queue/" prefix is ignored), or nullptr; the node's own
    /// instance's first, then the colocated instances'.
    const queue_status* find_queue(const std::string& name) const;
};

/// Parses the JSON text; nullopt with `error` set when it is not a status document. Missing
/// fields keep their defaults, so a node with less to say still parses.
std::optional<node_status> parse_status(const std::string& json, std::string& error);

/// One event of /api/events, for display.
struct event_status {
    uint64_t seq = 0;
    std::string time;
    std::string kind;
    std::string message;
};

/// Parses `{"events":[...],"last":N}`.
std::optional<std::vector<event_status>> parse_events(const std::string& json, std::string& error);

} // namespace actormq::shell
