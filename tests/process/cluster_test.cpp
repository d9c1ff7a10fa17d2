// SPDX-License-Identifier: Apache-2.0
// The cluster between real actormq-node processes: static discovery, cluster credentials and
// members that die (cluster/cluster.hpp; config keys in ../ha-spec.md, [cluster]).
#include "support/process_fixture.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <string>

namespace actormq::test {

namespace {

/// A node config with a [cluster] table on an OS-chosen port that joins `members` (TOML array
/// items, e.g. "\"127.0.0.1:61700\"") with `password`.
std::string cluster_node_config(const std::string& members,
                                const std::string& password = "change-me") {
    return node_config("",
                       "\n[cluster]\n"
                       "host = \"127.0.0.1\"\n"
                       "port = 0\n"
                       "members = ["
                           + members
                           + "]\n"
                             "reconnect-interval-ms = 50\n"
                             "heartbeat-interval-ms = 200\n"
                             "connection-timeout-ms = 1000\n",
                       "cluster-user = \"actormq-cluster\"\n"
                       "cluster-password = \""
                           + password + "\"\n");
}

/// The --set that names a node, so log lines tell the members apart.
std::string named(const std::string& name) {
    return "name=\"" + name + "\"";
}

/// The cluster address of a started node, as its ports file gives it.
std::string cluster_address(const node_process& node) {
    return "127.0.0.1:" + std::to_string(node.port("cluster"));
}

/// `address` as an item of a TOML array.
std::string item(const std::string& address) {
    return "\"" + address + "\"";
}

} // namespace

TEST_CASE("cluster: join: two nodes find each other through one member list") {
    ACTORMQ_START_NODE(a, cluster_node_config(""), {named("node-a")});
    REQUIRE(a.port("cluster") != 0);
    // b lists a; a has no members and learns of b by b's join.
    ACTORMQ_START_NODE(b, cluster_node_config(item(cluster_address(a))), {named("node-b")});
    REQUIRE(b.port("cluster") != 0);
    CHECK(log_shows(a, "cluster_member_joined name=node-b address=" + cluster_address(b)));
    CHECK(log_shows(b, "cluster_member_joined name=node-a address=" + cluster_address(a)));
}

TEST_CASE("cluster: join: a node with a wrong cluster-password is refused on both sides") {
    ACTORMQ_START_NODE(a, cluster_node_config(""), {named("node-a")});
    ACTORMQ_START_NODE(b, cluster_node_config(item(cluster_address(a))), {named("node-b")});
    REQUIRE(log_shows(a, "cluster_member_joined name=node-b"));

    ACTORMQ_START_NODE(c, cluster_node_config(item(cluster_address(a)), "not-the-password"),
                       {named("node-c")});
    std::string reason = " reason=\"bad cluster credentials\"";
    CHECK(log_shows(a, "cluster_join_refused peer=" + cluster_address(c) + reason));
    CHECK(log_shows(c, "cluster_join_refused by=" + cluster_address(a) + reason));
    CHECK(a.log_text().find("cluster_member_joined name=node-c") == std::string::npos);
    CHECK(c.log_text().find("cluster_member_joined") == std::string::npos);
    // No password ever reaches a log.
    for (const auto* node : {&a, &b, &c}) {
        CHECK(node->log_text().find("not-the-password") == std::string::npos);
        CHECK(node->log_text().find("change-me") == std::string::npos);
    }
}

TEST_CASE("cluster: leave: a SIGKILLed member is removed and joins again when restarted") {
    ACTORMQ_START_NODE(a, cluster_node_config(""), {named("node-a")});
    auto config_b = cluster_node_config(item(cluster_address(a)));
    {
        ACTORMQ_START_NODE(b, config_b, {named("node-b")});
        REQUIRE(log_shows(a, "cluster_member_joined name=node-b"));
        b.kill(SIGKILL);
        REQUIRE(b.wait_exit(soon()).has_value());
        CHECK(log_shows(a, "cluster_member_left name=node-b"));
    }
    ACTORMQ_START_NODE(b2, config_b, {named("node-b2")});
    CHECK(log_shows(a, "cluster_member_joined name=node-b2"));
}

} // namespace actormq::test
