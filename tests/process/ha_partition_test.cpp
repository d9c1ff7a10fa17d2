// SPDX-License-Identifier: Apache-2.0
// Network partitions between real replicating nodes (docs/replication.md, "The vote"): a live
// A, its backup B and a voter V (a live-only member), every link between two nodes through a
// partition_proxy, so a test can cut any link while the processes keep running. The property
// checked: no partition yields two servers confirming for one node id, and the majority side
// keeps serving. A prober sends a durable message with a receipt to A and to B all along; once
// the backup has confirmed anything, the old live must never confirm again.
#include "apps/partition/partition_proxy.hpp"
#include "support/process_fixture.hpp"

#include <atomic>
#include <csignal>
#include <mutex>
#include <thread>

namespace actormq::test {

namespace {

std::string item(uint16_t port) {
    return "\"127.0.0.1:" + std::to_string(port) + "\"";
}

/// A node of the trio: `policy` is its [ha-policy...] table ("" for the live-only voter).
std::string trio_node(const std::string& members, const std::string& policy) {
    return node_config("",
                       policy + "\n[cluster]\nport = 0\nmembers = [" + members
                           + "]\nreconnect-interval-ms = 50\nheartbeat-interval-ms = 200\n"
                             "connection-timeout-ms = 1000\n",
                       "cluster-user = \"actormq-cluster\"\ncluster-password = \"secret\"\n"
                       "persistence-enabled = true\n");
}

std::string replication(const std::string& role) {
    return "[ha-policy.replication." + role
           + "]\nvote-on-replication-failure = true\nvote-retries = 5\nvote-retry-wait = 200\n"
             "retry-replication-wait = 200\nquorum-vote-wait = 1\n";
}

/// Sends durable probes with receipts to one node, again and again, and notes when each was
/// confirmed. A probe that gets no receipt within 2 s is given up (a node holding its
/// confirmations for a vote, or gone).
class prober {
public:
    explicit prober(uint16_t port) : port_(port), thread_([this] { run(); }) {}
    ~prober() { stop(); }
    void stop() {
        done_ = true;
        if (thread_.joinable()) {
            thread_.join();
        }
    }
    /// When the first and the last probe were confirmed (nullopt: none was).
    std::optional<test_clock::time_point> first() const {
        std::lock_guard<std::mutex> guard{mtx_};
        return first_;
    }
    std::optional<test_clock::time_point> last() const {
        std::lock_guard<std::mutex> guard{mtx_};
        return last_;
    }
    int confirmed() const { return confirmed_; }

private:
    void run() {
        int n = 0;
        while (!done_) {
            stomp_client c;
            // The node may not serve (yet, or any more): tried again at wait_until's poll
            // interval until it does or the prober stops; the test waits on what it counted.
            bool connected = false;
            wait_until(in(std::chrono::seconds(1)), [&] {
                c.close();
                connected =
                    c.connect_tcp(port_)
                    && c.connect_stomp("guest", "guest", "1.2", "0,0", in(std::chrono::seconds(2)))
                               .cmd
                           == command::connected;
                return connected || done_;
            });
            while (connected && !done_) {
                auto id = "probe-" + std::to_string(port_) + "-" + std::to_string(n++);
                if (!send_durable(c, "/queue/probe", id, in(std::chrono::seconds(2)))) {
                    break;
                }
                auto now = test_clock::now();
                std::lock_guard<std::mutex> guard{mtx_};
                first_ = first_.value_or(now);
                last_ = now;
                ++confirmed_;
            }
        }
    }

    uint16_t port_;
    std::atomic<bool> done_{false};
    std::atomic<int> confirmed_{0};
    mutable std::mutex mtx_;
    std::optional<test_clock::time_point> first_;
    std::optional<test_clock::time_point> last_;
    std::thread thread_;
};

/// The trio: voter V, live A (listing V), backup B (listing A and V), each link through a
/// proxy, B in sync with A.
struct trio {
    node_process v{trio_node("", ""), {"name=\"voter\""}};
    partition_proxy a_v{port_of(v)};
    node_process a{trio_node(item(a_v.port()), replication("primary")), {"name=\"live\""}};
    partition_proxy b_a{port_of(a)};
    partition_proxy b_v{v.port("cluster")};
    node_process b{trio_node(item(b_a.port()) + "," + item(b_v.port()), replication("backup")),
                   {"name=\"backup\""}};

    static uint16_t port_of(node_process& n) {
        REQUIRE(n.wait_ready(soon()));
        return n.port("cluster");
    }

    trio() {
        REQUIRE(b.wait_ready(soon()));
        REQUIRE(log_shows(b, "replication_in_sync"));
        REQUIRE(log_shows(b, "cluster_member_joined name=voter"));
        REQUIRE(log_shows(a, "cluster_member_joined name=voter"));
    }
};

} // namespace

TEST_CASE("partition: the live cut off from the backup and the voter stops serving, the "
          "backup takes over, and the old live never confirms after the backup did") {
    trio t;
    INFO("live log:\n", t.a.log_tail(), "\nbackup log:\n", t.b.log_tail());
    prober pa{t.a.port()};
    prober pb{t.b.port()};
    REQUIRE(wait_until(soon(), [&] { return pa.confirmed() > 20; }));
    CHECK(pb.confirmed() == 0);
    t.a_v.block();
    t.b_a.block();
    REQUIRE(log_shows(t.b, "replication_live node_id="));
    REQUIRE(log_shows(t.a, "replication_stepping_down"));
    auto status = t.a.wait_exit(soon());
    REQUIRE(status.has_value());
    CHECK(WEXITSTATUS(*status) == 1);
    REQUIRE(wait_until(soon(), [&] { return pb.confirmed() > 20; }));
    pa.stop();
    pb.stop();
    REQUIRE(pb.first().has_value());
    REQUIRE(pa.last().has_value());
    // The old live's last confirmation came before the backup's first.
    CHECK(*pa.last() < *pb.first());
    t.a_v.heal();
    t.b_a.heal();
}

TEST_CASE("partition: the backup cut off from the live while the voter sees both: the live "
          "keeps serving, the backup's vote is lost, and after the heal it pairs again") {
    trio t;
    INFO("live log:\n", t.a.log_tail(), "\nbackup log:\n", t.b.log_tail());
    prober pa{t.a.port()};
    REQUIRE(wait_until(soon(), [&] { return pa.confirmed() > 20; }));
    t.b_a.block();
    REQUIRE(log_shows(t.a, "replication_quorum_kept"));
    REQUIRE(log_shows(t.b, "replication_vote_lost"));
    // The majority side keeps serving through the partition.
    int before = pa.confirmed();
    REQUIRE(wait_until(soon(), [&] { return pa.confirmed() > before + 20; }));
    REQUIRE(log_shows(t.b, "replication_restarting"));
    t.b_a.heal();
    REQUIRE(log_shows(t.b, "replication_in_sync", 2));
    REQUIRE(log_shows(t.a, "replication_in_sync backup=backup", 2));
    pa.stop();
    CHECK(t.b.log_text().find("replication_live node_id=") == std::string::npos);
    CHECK(t.a.running());
}

TEST_CASE("partition: the voter cut off from both changes nothing") {
    trio t;
    prober pa{t.a.port()};
    REQUIRE(wait_until(soon(), [&] { return pa.confirmed() > 10; }));
    t.a_v.block();
    t.b_v.block();
    REQUIRE(log_shows(t.a, "cluster_member_left name=voter"));
    REQUIRE(log_shows(t.b, "cluster_member_left name=voter"));
    int before = pa.confirmed();
    REQUIRE(wait_until(soon(), [&] { return pa.confirmed() > before + 20; }));
    pa.stop();
    CHECK(t.b.log_text().find("replication_live_lost") == std::string::npos);
    CHECK(t.a.log_text().find("replication_backup_lost") == std::string::npos);
}

} // namespace actormq::test
