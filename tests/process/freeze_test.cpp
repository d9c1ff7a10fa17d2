// SPDX-License-Identifier: Apache-2.0
// Frozen processes (issue 10, item 9): SIGSTOP keeps a process's sockets and locks open while
// it does nothing. A frozen live server keeps its shared-store lock and nothing breaks; a frozen
// consumer holds only its prefetch window; a frozen cluster member is found by the middleman's
// heart-beat.
#include "support/cluster_nodes.hpp"
#include "support/process_fixture.hpp"

#include <atomic>
#include <csignal>
#include <map>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace actormq::test {

namespace {

/// A child process that logs in, subscribes to `queue` with client-individual acks and a
/// prefetch of `window`, tells the parent through a pipe, and then waits to be frozen or
/// killed. Returns its pid.
pid_t spawn_subscriber(uint16_t port, const std::string& queue, int window) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        stomp_client c;
        bool ok =
            c.connect_tcp(port) && c.connect_stomp("guest", "guest").cmd == command::connected;
        stomp::frame sub;
        sub.cmd = command::subscribe;
        sub.add("destination", queue);
        sub.add("id", "frozen");
        sub.add("ack", "client-individual");
        sub.add("activemq.prefetchSize", std::to_string(window));
        ok = ok && c.send_with_receipt(sub);
        char byte = ok ? 'y' : 'n';
        (void)!::write(fds[1], &byte, 1);
        for (;;) {
            ::pause(); // Until SIGSTOP / SIGKILL; it never reads its socket again.
        }
    }
    ::close(fds[1]);
    char byte = 0;
    REQUIRE(::read(fds[0], &byte, 1) == 1);
    ::close(fds[0]);
    REQUIRE_MESSAGE(byte == 'y', "the subscriber child could not subscribe");
    return pid;
}

} // namespace

TEST_CASE("freeze: shared store: a frozen live keeps its lock, the backup stays passive, and "
          "the live carries on after SIGCONT with every confirmed message") {
    temp_dir store;
    std::vector<std::string> sets{"journal-directory=" + store.path + "/journal"};
    ACTORMQ_START_NODE(primary, node_config("", "", "[ha-policy.shared-store.primary]\n"), sets);
    REQUIRE(wait_until(
        soon(), [&] { return stomp_serves(primary.port(), std::chrono::milliseconds(500)); }));
    ACTORMQ_START_NODE(backup, node_config("", "", "[ha-policy.shared-store.backup]\n"), sets);

    stomp_client producer;
    login(producer, primary);
    std::set<std::string> confirmed;
    for (int i = 0; i < 20; ++i) {
        auto body = "before-" + std::to_string(i);
        REQUIRE(send_durable(producer, "/queue/frozen", body, in(std::chrono::seconds(20))));
        confirmed.insert(body);
    }

    primary.kill(SIGSTOP);
    // A send now waits in the frozen live's socket buffer.
    stomp::frame f;
    f.cmd = command::send;
    f.add("destination", "/queue/frozen");
    f.add("persistent", "true");
    f.add("_AMQ_DUPL_ID", "during");
    f.add("receipt", "during");
    f.body = "during";
    REQUIRE(producer.send(f));
    // The observation window: the live is frozen, not gone, so its lock holds and the backup
    // must not take over at any point of it (the backup polls the lock every 10 ms).
    bool backup_served = wait_until(
        in(std::chrono::seconds(2)),
        [&] { return stomp_serves(backup.port(), std::chrono::milliseconds(500)); },
        std::chrono::milliseconds(50));
    CHECK_FALSE_MESSAGE(backup_served, "the backup activated while the live was only frozen");
    CHECK_MESSAGE(primary.running(), "the frozen live is gone");
    CHECK(backup.running());
    CHECK(backup.log_text().find("ha_activating") == std::string::npos);

    primary.kill(SIGCONT);
    auto r = producer.receive_cmd(command::receipt, soon());
    REQUIRE_MESSAGE(r.has_value(), "the send made while frozen was never confirmed");
    confirmed.insert("during");
    REQUIRE(send_durable(producer, "/queue/frozen", "after", in(std::chrono::seconds(20))));
    confirmed.insert("after");

    stomp_client consumer;
    login(consumer, primary);
    subscribe(consumer, "/queue/frozen", "s");
    auto got = collect_messages(consumer, confirmed.size());
    std::map<std::string, int> seen;
    for (const auto& m : got) {
        ++seen[m.body];
    }
    for (const auto& body : confirmed) {
        CHECK_MESSAGE(seen[body] == 1, body, " arrived ", seen[body], " times");
    }
    CHECK(got.size() == confirmed.size());
    CHECK(backup.log_text().find("ha_activating") == std::string::npos);
}

TEST_CASE("freeze: consumer: a frozen consumer holds only its prefetch window; the rest goes to "
          "the other consumer, and its window comes back when it is killed") {
    ACTORMQ_START_NODE(node, node_config());
    const int window = 5;
    const int total = 100;
    pid_t child = spawn_subscriber(node.port(), "/queue/freeze.window", window);
    ::kill(child, SIGSTOP);

    stomp_client other;
    login(other, node);
    subscribe(other, "/queue/freeze.window", "other", "auto");
    stomp_client producer;
    login(producer, node);
    for (int i = 0; i < total; ++i) {
        send_routed(producer, "/queue/freeze.window", "m" + std::to_string(i));
    }
    // Round-robin gives the frozen consumer exactly its window, the other one all the rest.
    auto first = collect_messages(other, total - window);
    CHECK(first.size() == static_cast<size_t>(total - window));

    ::kill(child, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    // The node sees the socket close and redelivers the window to the other consumer.
    auto again = collect_messages(other, window);
    REQUIRE(again.size() == static_cast<size_t>(window));
    std::set<std::string> all;
    for (const auto& m : first) {
        all.insert(m.body);
    }
    for (const auto& m : again) {
        CHECK_MESSAGE(header_of(m, "redelivered") == "true", describe(m));
        all.insert(m.body);
    }
    CHECK(all.size() == static_cast<size_t>(total));
    expect_no_more_messages(other);
}

TEST_CASE("freeze: cluster: a frozen member is taken as gone after connection-timeout-ms and "
          "joins again when it thaws") {
    auto config = [](const std::string& members) {
        return node_config("",
                           "\n[cluster]\nhost = \"127.0.0.1\"\nport = 0\nmembers = [" + members
                               + "]\nreconnect-interval-ms = 50\nheartbeat-interval-ms = 200\n"
                                 "connection-timeout-ms = 1000\n",
                           "cluster-user = \"actormq-cluster\"\ncluster-password = \"pw\"\n");
    };
    ACTORMQ_START_NODE(a, config(""), {"name=\"node-a\""});
    auto a_address = "\"127.0.0.1:" + std::to_string(a.port("cluster")) + "\"";
    ACTORMQ_START_NODE(b, config(a_address), {"name=\"node-b\""});
    auto shows = [](const node_process& n, const std::string& text) {
        return wait_until(soon(), [&] { return n.log_text().find(text) != std::string::npos; });
    };
    REQUIRE(shows(a, "cluster_member_joined name=node-b"));
    b.kill(SIGSTOP);
    // No socket closes: only the missing heart-beats tell a that b is gone.
    CHECK(shows(a, "cluster_member_left name=node-b"));
    b.kill(SIGCONT);
    auto joins = [&] {
        auto log = a.log_text();
        size_t n = 0;
        for (auto at = log.find("cluster_member_joined name=node-b"); at != std::string::npos;
             at = log.find("cluster_member_joined name=node-b", at + 1)) {
            ++n;
        }
        return n;
    };
    CHECK(wait_until(soon(), [&] { return joins() >= 2; }));
}

} // namespace actormq::test
