// SPDX-License-Identifier: Apache-2.0
// The web server of a real node (docs/web.md): /api/status and /metrics follow the messages,
// Basic auth against the node's users, [web] enabled = false, and the failover event on the
// backup's WebSocket when the live of a shared-store pair is SIGKILLed.
#include "support/process_fixture.hpp"
#include "support/web_client.hpp"

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace actormq::test {

namespace {

using json = nlohmann::json;

/// GETs `target` from the node's web port; returns the parsed JSON body, or null JSON if the
/// answer was not a 200 with JSON.
json get_json(const node_process& node, const std::string& target) {
    auto c = http_exchange(node.port("web"), http_request(target), soon());
    if (c.status() != 200) {
        return json{};
    }
    return json::parse(c.body(), nullptr, false);
}

/// The /metrics text of the node ("" unless 200).
std::string get_metrics(const node_process& node) {
    auto c = http_exchange(node.port("web"), http_request("/metrics"), soon());
    return c.status() == 200 ? c.body() : std::string{};
}

/// The value of the sample `name` (with its labels) in a metrics text, or -1 if absent.
double sample(const std::string& metrics, const std::string& name) {
    auto pos = metrics.find("\n" + name + " ");
    if (pos == std::string::npos) {
        return -1;
    }
    return std::strtod(metrics.c_str() + pos + name.size() + 2, nullptr);
}

/// The entry of `queue` in a status document's queues (null JSON if absent).
json queue_of(const json& status, const std::string& queue) {
    if (!status.is_object() || !status.contains("queues")) {
        return json{};
    }
    for (const auto& q : status["queues"]) {
        if (q.value("name", "") == queue) {
            return q;
        }
    }
    return json{};
}

/// The role of the node's first instance ("" if unknown).
std::string role_of(const node_process& node) {
    auto s = get_json(node, "/api/status");
    if (!s.is_object() || !s.contains("instances") || s["instances"].empty()) {
        return "";
    }
    return s["instances"][0].value("role", "");
}

} // namespace

TEST_CASE("web: /api/status and /metrics: queue depth and counters follow the messages") {
    ACTORMQ_START_NODE(node, node_config());
    REQUIRE(node.port("web") != 0);
    // The status actor publishes every 250 ms; its first document may still say "starting".
    json first;
    bool live = wait_until(soon(), [&] {
        first = get_json(node, "/api/status");
        return first.is_object() && first.contains("instances")
               && first["instances"][0]["role"] == "live";
    });
    INFO("status: ", first.dump());
    REQUIRE(live);
    CHECK(first["node"]["name"] == "test");
    CHECK(first["instances"][0]["node_id"].get<std::string>().size() == 36);

    stomp_client producer;
    login(producer, node);
    for (int i = 0; i < 29; ++i) {
        send_to(producer, "/queue/web", "m" + std::to_string(i));
    }
    send_routed(producer, "/queue/web", "m29");
    json q;
    bool deep = wait_until(soon(), [&] {
        q = queue_of(get_json(node, "/api/status"), "web");
        return q.is_object() && q["depth"] == 30;
    });
    INFO("queue entry: ", q.dump());
    REQUIRE(deep);
    CHECK(q["enqueued_total"] == 30);
    CHECK(q["consumers"] == 0);
    std::string metrics;
    const std::string labels = "{instance=\"test\",address=\"web\",queue=\"web\"}";
    CHECK(wait_until(soon(), [&] {
        metrics = get_metrics(node);
        return sample(metrics, "actormq_queue_depth_messages" + labels) == 30;
    }));
    CHECK(sample(metrics, "actormq_queue_messages_enqueued_total" + labels) == 30);
    CHECK(sample(metrics, "actormq_connections") >= 1);
    CHECK(sample(metrics, "actormq_sessions") >= 1);
    CHECK(sample(metrics, "actormq_server_live") == 1);

    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/web", "s", "client-individual");
    auto msgs = collect_messages(consumer, 30);
    REQUIRE(msgs.size() == 30);
    CHECK(wait_until(soon(), [&] {
        q = queue_of(get_json(node, "/api/status"), "web");
        return q.is_object() && q["depth"] == 0 && q["in_flight"] == 30 && q["consumers"] == 1;
    }));
    for (const auto& m : msgs) {
        stomp::frame ack;
        ack.cmd = command::ack;
        ack.add("id", header_of(m, "ack"));
        REQUIRE(consumer.send(ack));
    }
    CHECK(wait_until(soon(), [&] {
        metrics = get_metrics(node);
        return sample(metrics, "actormq_queue_messages_acknowledged_total" + labels) == 30
               && sample(metrics, "actormq_queue_in_flight_messages" + labels) == 0;
    }));
    CHECK(sample(metrics, "actormq_queue_messages_delivered_total" + labels) == 30);
}

TEST_CASE("web: a queue name that is not UTF-8 shows as U+FFFD and the status keeps going") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    send_routed(c,
                "/queue/bad\xff"
                "name",
                "x");
    json q;
    bool shown = wait_until(soon(), [&] {
        q = queue_of(get_json(node, "/api/status"), "bad\xef\xbf\xbd"
                                                    "name");
        return q.is_object() && q["depth"] == 1;
    });
    CHECK_MESSAGE(shown, "the status never showed the queue");
    auto metrics = get_metrics(node);
    CHECK(metrics.find("queue=\"bad?name\"") != std::string::npos);
    // Still publishing afterwards: a later message shows up too.
    send_routed(c, "/queue/after", "y");
    CHECK(wait_until(soon(), [&] {
        auto a = queue_of(get_json(node, "/api/status"), "after");
        return a.is_object() && a["depth"] == 1;
    }));
}

TEST_CASE("web: auth: the node's users get in; no or wrong credentials get 401") {
    ACTORMQ_START_NODE(node, node_config());
    auto port = node.port("web");
    CHECK(http_exchange(port, http_request("/api/status"), soon()).status() == 200);
    auto denied = http_exchange(port, http_request("/api/status", nullptr), soon());
    CHECK(denied.status() == 401);
    CHECK(denied.has_header("WWW-Authenticate: Basic realm=\"actormq\""));
    CHECK(http_exchange(port, http_request("/", "Basic Z3Vlc3Q6bm9wZQ=="), soon()).status()
          == 401); // guest:nope
    CHECK(http_exchange(port, http_request("/nothing-here"), soon()).status() == 404);
}

TEST_CASE("web: [web] enabled = false: no listener and no web port in the ports file") {
    ACTORMQ_START_NODE(node, node_config("", "\n[web]\nenabled = false\n"));
    CHECK(node.port("web") == 0);
    expect_serving(node);
}

TEST_CASE("web: a shared-store pair: the backup's WebSocket gets a failover event with its "
          "duration after kill -9 of the live") {
    temp_dir store;
    std::vector<std::string> sets{"journal-directory=" + store.path + "/journal"};
    ACTORMQ_START_NODE(primary, node_config("", "", "[ha-policy.shared-store.primary]\n"), sets);
    REQUIRE(wait_until(soon(), [&] { return role_of(primary) == "live"; }));
    ACTORMQ_START_NODE(backup, node_config("", "", "[ha-policy.shared-store.backup]\n"), sets);
    REQUIRE(wait_until(soon(), [&] { return role_of(backup) == "backup"; }));

    ws_client ws;
    REQUIRE_MESSAGE(ws.connect(backup.port("web"), "/ws/events"), ws.handshake_error.message());
    auto metrics = get_metrics(backup);
    CHECK(sample(metrics, "actormq_server_live") == 0);
    CHECK(sample(metrics, "actormq_failovers_total") == 0);

    primary.kill(SIGKILL);
    json failover;
    bool seen = wait_until(soon(), [&] {
        auto m = ws.read(soon());
        if (!m) {
            return ws.ended; // nothing more will come; stop waiting
        }
        auto ev = json::parse(*m, nullptr, false);
        if (ev.is_object() && ev.value("kind", "") == "failover") {
            failover = ev;
            return true;
        }
        return false;
    });
    REQUIRE_MESSAGE(seen, "no failover event on the backup's WebSocket");
    REQUIRE(failover.is_object());
    CHECK(failover["seq"].get<uint64_t>() > 0);
    CHECK(failover["duration_ms"].get<int64_t>() >= 0);
    CHECK(failover["time"].get<std::string>().size() == 24); // 2026-11-23T18:50:01.123Z
    CHECK(wait_until(soon(), [&] { return role_of(backup) == "backup-active"; }));
    CHECK(wait_until(soon(), [&] {
        metrics = get_metrics(backup);
        return sample(metrics, "actormq_server_live") == 1
               && sample(metrics, "actormq_failovers_total") == 1;
    }));
    // The event is in the log too, for clients that poll instead.
    auto events = get_json(backup, "/api/events?since=0");
    REQUIRE(events.is_object());
    bool logged = false;
    for (const auto& ev : events["events"]) {
        logged = logged || ev["seq"] == failover["seq"];
    }
    CHECK(logged);
}

} // namespace actormq::test
