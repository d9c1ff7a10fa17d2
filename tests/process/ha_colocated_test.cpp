// SPDX-License-Identifier: Apache-2.0
// Colocated backups with real nodes (docs/ha.md, "Colocated backups"): a live with
// request-backup asks another live node, which runs its backup as colocated_backup_N with
// ports shifted by backup-port-offset (excludes keep theirs) and a journal directory of its
// own; max-backups refuses more; a node with the wrong cluster credentials gets nothing; and
// after a SIGKILL of the live its colocated backup serves the live's clients on the offset port.
#include "support/failover_producer.hpp"
#include "support/process_fixture.hpp"
#include "support/web_client.hpp"

#include <arpa/inet.h>
#include <csignal>
#include <filesystem>
#include <map>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sys/socket.h>
#include <unistd.h>

namespace actormq::test {

namespace {

using json = nlohmann::json;

/// Whether `port` can be bound on 127.0.0.1 right now.
bool port_free(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

/// A port P below the OS's ephemeral range (32768 and up) with P and P + offset free. A live on
/// an OS-chosen port would put its backup's offset port among the ephemeral ports, where any
/// connection on this busy machine may hold it (seen: EADDRINUSE in about 1 run of 20).
uint16_t port_pair(uint16_t offset) {
    static std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<int> pick(20000, 32000 - offset);
    for (int tries = 0; tries < 1000; ++tries) {
        auto p = static_cast<uint16_t>(pick(rng));
        if (port_free(p) && port_free(static_cast<uint16_t>(p + offset))) {
            return p;
        }
    }
    FAIL("no free port pair");
    return 0;
}

std::string item(const node_process& node) {
    return "\"127.0.0.1:" + std::to_string(node.port("cluster")) + "\"";
}

/// A node of a colocated cluster joining `members`, with `options` in [ha-policy.colocated]
/// and short replication waits in its backup table. `password` is the cluster password.
std::string colocated_node(const std::string& members,
                           const std::string& options,
                           const std::string& acceptor = "",
                           const std::string& password = "secret") {
    return node_config(acceptor,
                       "[ha-policy.colocated]\nbackup-request-retry-interval = 200\n" + options
                           + "\n[ha-policy.colocated.backup]\nvote-retry-wait = 200\n"
                             "retry-replication-wait = 200\nquorum-vote-wait = 1\n"
                             "[cluster]\nport = 0\nmembers = ["
                           + members
                           + "]\nreconnect-interval-ms = 50\nheartbeat-interval-ms = 200\n"
                             "connection-timeout-ms = 1000\n",
                       "cluster-user = \"actormq-cluster\"\ncluster-password = \"" + password
                           + "\"\npersistence-enabled = true\n");
}

json get_json(const node_process& node, const std::string& target) {
    auto c = http_exchange(node.port("web"), http_request(target), soon());
    if (c.status() != 200) {
        return json{};
    }
    return json::parse(c.body(), nullptr, false);
}

/// The role of instance `name` in the node's /api/status ("" when it has none of that name).
std::string instance_role(const node_process& node, const std::string& name) {
    auto s = get_json(node, "/api/status");
    if (!s.is_object() || !s.contains("instances")) {
        return {};
    }
    for (const auto& i : s["instances"]) {
        if (i.value("name", "") == name) {
            return i.value("role", "");
        }
    }
    return {};
}

bool serves(uint16_t port) {
    stomp_client c;
    return c.connect_tcp(port)
           && c.connect_stomp("guest", "guest", "1.2", "0,0", in(std::chrono::seconds(2))).cmd
                  == command::connected;
}

std::vector<std::string> named(const std::string& name) {
    return {"name=\"" + name + "\""};
}

/// `sets` with the stomp acceptor on `port`.
std::vector<std::string> with_port(std::vector<std::string> sets, uint16_t port) {
    sets.push_back("acceptors.stomp.port=" + std::to_string(port));
    return sets;
}

} // namespace

TEST_CASE("colocated: a live with request-backup gets colocated_backup_1 on another live node, "
          "with ports shifted by backup-port-offset and its own journal directory") {
    ACTORMQ_START_NODE(host, colocated_node("", "max-backups = 1\n"), named("host"));
    ACTORMQ_START_NODE(
        live, colocated_node(item(host), "request-backup = true\nbackup-port-offset = 101\n"),
        with_port(named("live"), port_pair(101)));
    REQUIRE(log_shows(host, "colocation_request_granted live=live"));
    REQUIRE(log_shows(live, "colocated_backup_started"));
    REQUIRE(log_shows(host, "colocated_instance_started instance=colocated_backup_1 live=live"));
    auto shifted = std::to_string(live.port() + 101);
    CHECK(host.log_text().find("stomp=127.0.0.1:" + shifted) != std::string::npos);
    REQUIRE(log_shows(live, "replication_in_sync"));
    REQUIRE(
        wait_until(soon(), [&] { return instance_role(host, "colocated_backup_1") == "backup"; }));
    CHECK(instance_role(host, "host") == "live");
    CHECK(std::filesystem::is_directory(host.dir() + "/journal/colocated_backup_1"));
    auto metrics = http_exchange(host.port("web"), http_request("/metrics"), soon()).body();
    CHECK(metrics.find("actormq_instance_live{instance=\"colocated_backup_1\",role=\"backup\","
                       "colocated=\"true\"} 0")
          != std::string::npos);
    // A backup does not serve until it takes over.
    CHECK(!serves(live.port() + 101));
}

TEST_CASE("colocated: a host refuses a request past max-backups, and the refused live asks the "
          "next live node") {
    ACTORMQ_START_NODE(host, colocated_node("", "max-backups = 1\n"), named("host"));
    ACTORMQ_START_NODE(first, colocated_node(item(host), "request-backup = true\n"),
                       named("live1"));
    REQUIRE(log_shows(host, "colocation_request_granted live=live1"));
    ACTORMQ_START_NODE(second,
                       colocated_node(item(host) + "," + item(first), "request-backup = true\n"),
                       named("live2"));
    REQUIRE(log_shows(host, "colocation_request_refused live=live2"));
    CHECK(log_shows(second, "reason=\"cluster: backups_full"));
    // The second asks the next live node in topology order (by name: host, then live1) and
    // gets its backup there.
    REQUIRE(log_shows(first, "colocated_instance_started instance=colocated_backup_1 live=live2"));
    CHECK(instance_role(host, "colocated_backup_2").empty());
}

TEST_CASE("colocated: excludes keep an acceptor's port, the others are shifted") {
    // The host listens on 127.0.0.2, so the backup may keep the live's port for stomp.
    ACTORMQ_START_NODE(host, colocated_node("", "max-backups = 1\n", "host = \"127.0.0.2\"\n"),
                       named("host"));
    ACTORMQ_START_NODE(
        live,
        colocated_node(item(host),
                       "request-backup = true\nbackup-port-offset = 105\nexcludes = [\"stomp\"]\n",
                       "\n[acceptors.other]\nport = " + std::to_string(port_pair(105)) + "\n"),
        named("live"));
    REQUIRE(log_shows(host, "colocated_instance_started instance=colocated_backup_1"));
    auto log = host.log_text();
    CHECK(log.find("stomp=127.0.0.2:" + std::to_string(live.port())) != std::string::npos);
    CHECK(log.find("other=127.0.0.2:" + std::to_string(live.port("other") + 105))
          != std::string::npos);
}

TEST_CASE("colocated: a node with the wrong cluster credentials gets no backup") {
    ACTORMQ_START_NODE(host, colocated_node("", "max-backups = 1\n"), named("host"));
    ACTORMQ_START_NODE(stranger, colocated_node(item(host), "request-backup = true\n", "", "wrong"),
                       named("stranger"));
    REQUIRE(log_shows(host, "cluster_join_refused"));
    CHECK(log_shows(stranger, "cluster_join_refused"));
    CHECK(host.log_text().find("colocation_request_granted") == std::string::npos);
    CHECK(host.log_text().find("colocated_instance_started") == std::string::npos);
}

TEST_CASE("colocated: after SIGKILL of the live its colocated backup takes over and serves the "
          "live's messages on the offset port") {
    ACTORMQ_START_NODE(host, colocated_node("", "max-backups = 1\n"), named("host"));
    ACTORMQ_START_NODE(
        live, colocated_node(item(host), "request-backup = true\nbackup-port-offset = 109\n"),
        with_port(named("live"), port_pair(109)));
    REQUIRE(log_shows(live, "replication_in_sync"));
    uint16_t offset_port = static_cast<uint16_t>(live.port() + 109);
    std::set<std::string> sent;
    {
        stomp_client c;
        login(c, live);
        for (int i = 0; i < 50; ++i) {
            auto body = "m" + std::to_string(i);
            REQUIRE(send_durable(c, "/queue/colo", body));
            sent.insert(body);
        }
    }
    live.kill(SIGKILL);
    REQUIRE(log_shows(host, "failover_ms="));
    REQUIRE(wait_until(soon(), [&] { return serves(offset_port); }));
    REQUIRE(wait_until(
        soon(), [&] { return instance_role(host, "colocated_backup_1") == "backup-active"; }));
    stomp_client c;
    REQUIRE(c.connect_tcp(offset_port));
    REQUIRE(c.connect_stomp("guest", "guest").cmd == command::connected);
    subscribe(c, "/queue/colo", "s");
    std::set<std::string> got;
    while (got.size() < sent.size()) {
        got.insert(expect_message(c).body);
    }
    CHECK(got == sent);
}

} // namespace actormq::test
