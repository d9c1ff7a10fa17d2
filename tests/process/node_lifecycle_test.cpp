// SPDX-License-Identifier: Apache-2.0
// Process tests of the actormq-node binary itself: startup, config errors, signals.
#include "support/process_fixture.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <sys/wait.h>

namespace actormq::test {

namespace {

/// Checks that a wait status is a normal exit with `code`.
void check_exit_code(const std::optional<int>& status, int code) {
    REQUIRE_MESSAGE(status.has_value(), "the process did not exit in time");
    REQUIRE_MESSAGE(WIFEXITED(*status), "the process did not exit normally; wait status ", *status);
    CHECK(WEXITSTATUS(*status) == code);
}

} // namespace

TEST_CASE("node: startup: the ports file names the OS-chosen port of every acceptor") {
    ACTORMQ_START_NODE(node, node_config(), {"acceptors.second.port=0"});
    CHECK(node.port("stomp") != 0);
    CHECK(node.port("second") != 0);
    CHECK(node.port("stomp") != node.port("second"));
    stomp_client a;
    login(a, node);
    stomp_client b;
    REQUIRE(b.connect_tcp(node.port("second")));
    auto f = b.connect_stomp("guest", "guest");
    REQUIRE_MESSAGE(f.cmd == command::connected, describe(f));
}

TEST_CASE("node: startup: the node runs on the malloc it was built with, and its log names it") {
    // ACTORMQ_ALLOCATOR in CMake: jemalloc by default (docs/architecture.md), or system.
    const std::string expected = ACTORMQ_NODE_ALLOCATOR;
    ACTORMQ_START_NODE(node, node_config());
    CHECK(log_shows(node, "node_allocator name=" + expected));
    auto maps = read_file("/proc/" + std::to_string(node.pid()) + "/maps");
    REQUIRE(!maps.empty());
    CHECK((maps.find("libjemalloc") != std::string::npos) == (expected == "jemalloc"));
}

TEST_CASE("node: signals: SIGTERM stops the node with exit status 0") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    subscribe(c, "/queue/sigterm", "s");
    node.kill(SIGTERM);
    check_exit_code(node.wait_exit(soon()), 0);
    CHECK(c.closed_by_peer(soon()));
}

TEST_CASE("node: signals: SIGINT stops the node with exit status 0") {
    ACTORMQ_START_NODE(node, node_config());
    node.kill(SIGINT);
    check_exit_code(node.wait_exit(soon()), 0);
}

TEST_CASE("node: signals: SIGKILL ends the node and its clients see the connection close") {
    ACTORMQ_START_NODE(node, node_config());
    stomp_client c;
    login(c, node);
    node.kill(SIGKILL);
    auto status = node.wait_exit(soon());
    REQUIRE(status.has_value());
    CHECK(WIFSIGNALED(*status));
    CHECK(c.closed_by_peer(soon()));
}

TEST_CASE("node: config: an unknown key exits 1 and the log names file, line and key") {
    node_process node{"name = \"test\"\nbogus-key = 1\n"};
    INFO("node.log:\n", node.log_text());
    check_exit_code(node.wait_exit(soon()), 1);
    CHECK(node.log_text().find("node.toml:2:1: bogus-key: unknown key") != std::string::npos);
}

TEST_CASE("node: config: an out-of-range value exits 1 and the log names file, line and key") {
    node_process node{node_config("heart-beat-to-connection-ttl-modifier = 0.5\n")};
    INFO("node.log:\n", node.log_text());
    check_exit_code(node.wait_exit(soon()), 1);
    CHECK(node.log_text().find("node.toml:") != std::string::npos);
    CHECK(node.log_text().find("acceptors.stomp.heart-beat-to-connection-ttl-modifier")
          != std::string::npos);
}

TEST_CASE("node: config: a bad --set override exits 1 and names the override") {
    node_process node{node_config(), {"io-threads=\"many\""}};
    INFO("node.log:\n", node.log_text());
    check_exit_code(node.wait_exit(soon()), 1);
    // The harness passes ports-file, journal-directory and web.port first: the test's is the 4th.
    CHECK(node.log_text().find("--set:4:") != std::string::npos);
    CHECK(node.log_text().find("io-threads") != std::string::npos);
}

TEST_CASE("node: config: --check-config exits 0 on a good file and starts nothing") {
    node_process node{node_config(), {}, node_mode::check_config};
    INFO("node.log:\n", node.log_text());
    check_exit_code(node.wait_exit(soon()), 0);
    CHECK(node.log_text().find("ok") != std::string::npos);
}

TEST_CASE("node: config: --check-config exits 1 on a file with an unknown key") {
    node_process node{"name = \"test\"\nbogus-key = 1\n", {}, node_mode::check_config};
    INFO("node.log:\n", node.log_text());
    check_exit_code(node.wait_exit(soon()), 1);
    CHECK(node.log_text().find("node.toml:2:1: bogus-key: unknown key") != std::string::npos);
}

} // namespace actormq::test
