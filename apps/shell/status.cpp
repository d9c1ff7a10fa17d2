// SPDX-License-Identifier: Apache-2.0
#include "apps/shell/status.hpp"

#include <nlohmann/json.hpp>

namespace actormq::shell {

namespace {

using json = nlohmann::json;

std::string text_of(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

uint64_t count_of(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

/// The array `key` of `j`, or an empty array.
const json& array_of(const json& j, const char* key) {
    static const json empty = json::array();
    auto it = j.find(key);
    return it != j.end() && it->is_array() ? *it : empty;
}

std::string strip_queue_prefix(const std::string& name) {
    const std::string prefix = "/queue/";
    return name.compare(0, prefix.size(), prefix) == 0 ? name.substr(prefix.size()) : name;
}

} // namespace

const queue_status* node_status::find_queue(const std::string& name) const {
    auto wanted = strip_queue_prefix(name);
    for (const auto& q : queues) {
        if (q.name == wanted) {
            return &q;
        }
    }
    return nullptr;
}

std::optional<node_status> parse_status(const std::string& text, std::string& error) {
    auto j = json::parse(text, nullptr, false);
    if (!j.is_object()) {
        error = "the status is not a JSON object";
        return std::nullopt;
    }
    node_status out;
    if (auto n = j.find("node"); n != j.end() && n->is_object()) {
        out.name = text_of(*n, "name");
        out.ha_policy = text_of(*n, "ha_policy");
        out.ha_role = text_of(*n, "ha_role");
    }
    auto add_queues = [&out](const json& list, const std::string& instance) -> uint64_t {
        uint64_t n = 0;
        for (const auto& q : list) {
            if (!q.is_object()) {
                continue;
            }
            queue_status s;
            s.instance = instance;
            s.address = text_of(q, "address");
            s.name = text_of(q, "name");
            s.routing = text_of(q, "routing");
            s.depth = count_of(q, "depth");
            s.in_flight = count_of(q, "in_flight");
            s.consumers = count_of(q, "consumers");
            s.enqueued_total = count_of(q, "enqueued_total");
            s.acked_total = count_of(q, "acked_total");
            out.queues.push_back(std::move(s));
            ++n;
        }
        return n;
    };
    // The own instance's queues are the top-level ones; a colocated instance carries its own.
    uint64_t own_queues = add_queues(array_of(j, "queues"), out.name);
    for (const auto& i : array_of(j, "instances")) {
        if (!i.is_object()) {
            continue;
        }
        instance_status s{text_of(i, "name"), text_of(i, "role"), text_of(i, "node_id")};
        auto colocated = i.find("colocated");
        s.colocated = colocated != i.end() && colocated->is_boolean() && colocated->get<bool>();
        s.connections = count_of(i, "connections");
        s.queue_count = s.colocated ? add_queues(array_of(i, "queues"), s.name) : own_queues;
        out.instances.push_back(std::move(s));
    }
    out.connections = count_of(j, "connections");
    return out;
}

std::optional<std::vector<event_status>> parse_events(const std::string& text, std::string& error) {
    auto j = json::parse(text, nullptr, false);
    if (!j.is_object()) {
        error = "the events are not a JSON object";
        return std::nullopt;
    }
    std::vector<event_status> out;
    for (const auto& e : array_of(j, "events")) {
        if (e.is_object()) {
            out.push_back({count_of(e, "seq"), text_of(e, "time"), text_of(e, "kind"),
                           text_of(e, "message")});
        }
    }
    return out;
}

} // namespace actormq::shell
