// SPDX-License-Identifier: Apache-2.0
// actormq-crash --ring (docs/testing.md, "The ring mode"): a ring of three colocated nodes
// (docs/ha.md, "Colocated backups"). Each kill hits a node drawn at random; its live fails
// over to its colocated backup on the next node, it comes back and fails back, and the node
// whose backup ran in the killed process gets a new one there; only then the next kill. The
// clients work on a's node id through a and its backup on b; a sampler per node id checks
// that never two instances serve it at once; the drain and verdict are those of the other
// modes.
#include "crash/ring_harness.hpp"

#include "crash/drain.hpp"
#include "crash/harness_glue.hpp"
#include "crash/node_runner.hpp"
#include "crash/schedule.hpp"
#include "crash/serving_sampler.hpp"
#include "crash/traffic.hpp"
#include "support/socket.hpp"

#include <array>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <set>

namespace actormq::crash {

namespace {

using std::chrono::milliseconds;
using test::in;
using test::test_clock;

/// Ring nodes, in ring order: node n runs the backup of node n - 1 (mod 3).
constexpr size_t ring_size = 3;
constexpr std::array<const char*, ring_size> names{"a", "b", "c"};

/// Each node runs one backup, colocated_backup_1, on its live's ports plus this.
constexpr uint16_t port_offset = 100;

/// From a SIGKILL to the first RECEIPT from a's backup (a killed), and to the killed node's
/// neighbour serving its node id.
constexpr auto failover_max = milliseconds(30000);

/// From the starts until every node serves, and from a restart until the ring is whole again
/// (the node failed back, its backup in sync, the backup it runs for the previous node in
/// sync).
constexpr auto whole_max = milliseconds(60000);

constexpr auto log_poll = milliseconds(5);

/// Log events of docs/replication.md and docs/ha.md.
constexpr const char* live_event = "replication_live node_id=";
constexpr const char* paired_event = "replication_in_sync backup=colocated_backup_1";
constexpr const char* hosted_event = "colocated_instance_started instance=colocated_backup_1 live=";

size_t next(size_t n) {
    return (n + 1) % ring_size;
}

size_t prev(size_t n) {
    return (n + ring_size - 1) % ring_size;
}

/// Fixed ports below the OS's ephemeral range (a backup's port is its live's plus the
/// offset; among ephemeral ports any connection could hold it): per node a STOMP port P with
/// P + offset free, and a cluster port, all different.
struct ring_ports {
    std::array<uint16_t, ring_size> stomp{};
    std::array<uint16_t, ring_size> cluster{};

    explicit ring_ports(uint64_t seed) {
        std::mt19937_64 rng{seed ^ 0x51ed270b};
        std::uniform_int_distribution<int> pick(20000, 32000 - port_offset);
        std::set<uint16_t> taken;
        auto take = [&](bool with_offset) -> uint16_t {
            for (int tries = 0; tries < 10000; ++tries) {
                auto p = static_cast<uint16_t>(pick(rng));
                auto q = static_cast<uint16_t>(p + port_offset);
                if (taken.count(p) == 0 && test::port_free(p)
                    && (!with_offset || (taken.count(q) == 0 && test::port_free(q)))) {
                    taken.insert(p);
                    if (with_offset) {
                        taken.insert(q);
                    }
                    return p;
                }
            }
            return 0;
        };
        for (size_t n = 0; n < ring_size; ++n) {
            stomp[n] = take(true);
            cluster[n] = take(false);
        }
    }
};

/// The config of ring node n: the single node's tables, colocated with request-backup and
/// max-backups 1, check-for-live-server, short waits, and the other two as static members.
std::string ring_node_config(const std::string& dir, size_t n, const ring_ports& ports) {
    std::string members;
    for (size_t m = 0; m < ring_size; ++m) {
        if (m != n) {
            members += std::string{members.empty() ? "" : ", "}
                       + "\"127.0.0.1:" + std::to_string(ports.cluster[m]) + "\"";
        }
    }
    const std::string waits = "vote-retry-wait = 100\nretry-replication-wait = 100\n"
                              "quorum-vote-wait = 2\n";
    return "cluster-user = \"actormq-cluster\"\n"
           "cluster-password = \"crash-ring\"\n"
           "persistence-enabled = true\n"
           + crash_node_config(dir)
           + "\n[ha-policy.colocated]\n"
             "request-backup = true\n"
             "max-backups = 1\n"
             "backup-port-offset = "
           + std::to_string(port_offset)
           + "\nbackup-request-retry-interval = 200\n"
             "backup-request-settle-ms = 3000\n"
             "[ha-policy.colocated.primary]\n"
             "check-for-live-server = true\n"
           + waits + "[ha-policy.colocated.backup]\n" + waits
           + "\n[cluster]\n"
             "host = \"127.0.0.1\"\n"
             "reconnect-interval-ms = 50\n"
             "heartbeat-interval-ms = 200\n"
             "connection-timeout-ms = 1000\n"
             "members = ["
           + members + "]\n";
}

/// One ring-mode run.
class ring_harness {
public:
    ring_harness(const options& o, std::string dir)
        : opt_(o),
          dir_(std::move(dir)),
          ports_(o.seed),
          traffic_(o.producers, o.tx_producers, consumers(o)) {
        // Host 0: a; host 1: a's backup on b, up while b's process is.
        traffic_.ctl().host_count = 2;
        for (size_t n = 0; n < ring_size; ++n) {
            node_spec s;
            s.dir = dir_ + "/" + names[n];
            s.log_prefix = names[n];
            s.host = 0;
            s.config = [this, n] {
                return ring_node_config(dir_ + "/" + names[n], n, ports_);
            };
            s.sets = {std::string{"name=\""} + names[n] + "\"",
                      "acceptors.stomp.port=" + std::to_string(ports_.stomp[n]),
                      "cluster.port=" + std::to_string(ports_.cluster[n])};
            s.sets.insert(s.sets.end(), opt_.sets.begin(), opt_.sets.end());
            // Only a's runner drives a host slot of the clients; b and c have one of their own.
            nodes_[n] = std::make_unique<node_runner>(s, n == 0 ? traffic_.ctl() : spare_[n]);
            samplers_[n].set_port(0, ports_.stomp[n]);
            samplers_[n].set_port(1, static_cast<uint16_t>(ports_.stomp[n] + port_offset));
        }
        traffic_.ctl().hosts[1].port = static_cast<uint16_t>(ports_.stomp[0] + port_offset);
    }

    int run() {
        if (ports_.stomp[ring_size - 1] == 0 || ports_.cluster[ring_size - 1] == 0) {
            checks_.problem("no free ports below 32000");
            return finish();
        }
        for (auto& s : samplers_) {
            s.start();
        }
        if (!start_ring()) {
            return finish();
        }
        traffic_.start();
        auto phases = plan(opt_.kills, opt_.seed);
        std::mt19937_64 rng{opt_.seed};
        bool ok = true;
        for (uint32_t i = 0; ok && i < opt_.kills; ++i) {
            const char* trigger = traffic_.run_phase(phases[i]);
            ok = kill_one(i, static_cast<size_t>(rng() % ring_size), trigger);
        }
        if (ok) {
            traffic_.run_phase(phases.back());
        }
        traffic_.stop(!ok);
        end_.drained = ok && final_check();
        return finish();
    }

private:
    node_runner& node(size_t n) { return *nodes_[n]; }

    /// Node n is signalled or started: a new epoch for the probes of its own port and of the
    /// backup port it hosts (the previous node's).
    void change(size_t n) {
        samplers_[n].change(0, true);
        samplers_[prev(n)].change(1, true);
    }

    /// Waits until `pred` holds or a node (other than `down`, killed) exits; false (and a
    /// problem naming `what`) if not by `limit`.
    template <class Pred>
    bool await(milliseconds limit, const std::string& what, Pred pred, size_t down = ring_size) {
        auto someone_exited = [&] {
            for (size_t n = 0; n < ring_size; ++n) {
                if (n != down && nodes_[n]->exited()) {
                    return true;
                }
            }
            return false;
        };
        bool ok = test::wait_until(
            in(limit), [&] { return pred() || someone_exited(); }, log_poll);
        for (size_t n = 0; n < ring_size; ++n) {
            if (n != down && !checks_.alive(*nodes_[n], what)) {
                return false;
            }
        }
        if (!ok || !pred()) {
            return checks_.problem(what + ": not within " + std::to_string(limit.count())
                                   + " ms (logs in " + dir_ + ")");
        }
        return true;
    }

    /// Every node serves and has at least `paired[n]` in-sync lines of its backup in its
    /// current run.
    bool whole(const std::array<size_t, ring_size>& paired) {
        for (size_t n = 0; n < ring_size; ++n) {
            if (node(n).log_count(live_event) == 0 || node(n).log_count(paired_event) < paired[n]) {
                return false;
            }
        }
        return true;
    }

    /// The three nodes one after another (each needs more than half of the cluster to serve,
    /// check-for-live-server), then the ring: every node serves and its backup, on the next
    /// node, is in sync.
    bool start_ring() {
        auto t0 = test_clock::now();
        for (size_t n = 0; n < ring_size; ++n) {
            std::error_code ec;
            std::filesystem::create_directories(dir_ + "/" + names[n], ec);
            change(n);
            if (!node(n).start()) {
                return checks_.problem(std::string{names[n]}
                                       + " did not start: " + node(n).problem());
            }
        }
        traffic_.ctl().hosts[1].up = true;
        if (!await(whole_max, "the ring's start", [&] { return whole({1, 1, 1}); })) {
            return false;
        }
        for (size_t n = 0; n < ring_size; ++n) {
            if (node(next(n)).log_count(hosted_event + std::string{names[n]}) == 0) {
                return checks_.problem(std::string{"the ring did not form a->b->c->a: "} + names[n]
                                       + "'s backup is not on " + names[next(n)]);
            }
        }
        std::printf("ring: formed in %lld ms (a->b->c->a), stomp %u/%u/%u, backups +%u\n",
                    static_cast<long long>(ms_since(t0)), ports_.stomp[0], ports_.stomp[1],
                    ports_.stomp[2], port_offset);
        return true;
    }

    /// SIGKILL of node v; its neighbour's colocated backup takes over; v comes back, fails
    /// back; the ring is whole again.
    bool kill_one(uint32_t i, size_t v, const char* trigger) {
        auto label = "kill " + std::to_string(i + 1) + " (" + names[v] + ")";
        auto& ctl = traffic_.ctl();
        auto host = next(v);
        auto lives_before = node(host).log_count(live_event);
        // After the restart: v's backup in sync in its new run, and the previous node's (which
        // ran in v's process) in sync once more than before.
        std::array<size_t, ring_size> paired{1, 1, 1};
        paired[prev(v)] = node(prev(v)).log_count(paired_event) + 1;
        uint64_t confirmed = ctl.confirmed;
        for (auto& s : samplers_) {
            s.set_fault(i + 1);
        }
        if (v == 0) {
            ctl.await_receipt_from(1);
            samplers_[0].change(1, true); // a's backup may serve again in this epoch of b
        }
        if (v == 1) {
            ctl.hosts[1].up = false;
        }
        change(v);
        auto killed_at = test_clock::now();
        if (!checks_.stop_node(node(v), SIGKILL, label)) {
            return false;
        }
        ++end_.kills;
        if (!await(
                failover_max, label + ": " + names[host] + " serving " + names[v] + "'s node id",
                [&] { return node(host).log_count(live_event) > lives_before; }, v)) {
            return false;
        }
        auto takeover_ms = ms_since(killed_at);
        std::string clients;
        if (v == 0) {
            if (!await(
                    failover_max, label + ": a RECEIPT from a's backup on b",
                    [&] { return ctl.awaited_receipt().has_value(); }, v)) {
                return false;
            }
            failover_ms_.push_back(ms_since(killed_at, *ctl.awaited_receipt()));
            ctl.awaited_host = -1;
            clients = ", clients on b after " + std::to_string(failover_ms_.back()) + " ms";
        }
        change(v);
        auto restart_at = test_clock::now();
        if (!node(v).start()) {
            return checks_.problem(label + ": the restart failed: " + node(v).problem());
        }
        if (v == 1) {
            ctl.hosts[1].up = true;
        }
        if (!await(whole_max, label + ": the ring whole again", [&] { return whole(paired); })) {
            return false;
        }
        auto whole_ms = ms_since(restart_at);
        whole_ms_.push_back(whole_ms);
        std::printf("kill %u/%u %s after %llu confirmed (trigger=%s): %s took over in %lld ms%s; "
                    "back, failed back and the ring whole in %lld ms\n",
                    i + 1, opt_.kills, names[v], static_cast<unsigned long long>(confirmed),
                    trigger, names[host], static_cast<long long>(takeover_ms), clients.c_str(),
                    static_cast<long long>(whole_ms));
        return true;
    }

    /// Drains a (which serves its node id again), then SIGTERM to every node.
    bool final_check() {
        auto err = drain(node(0).port(), traffic_.book());
        if (!err.empty()) {
            checks_.problem(err);
        }
        for (size_t n = 0; n < ring_size; ++n) {
            change(n);
            checks_.stop_node(node(n), SIGTERM, "after the drain");
        }
        return err.empty();
    }

    int finish() {
        for (auto& s : samplers_) {
            s.stop();
        }
        for (auto& n : nodes_) {
            for (auto& l : n->log_paths()) {
                end_.logs.push_back(l);
            }
        }
        std::string line;
        uint64_t samples = 0;
        uint64_t overlaps = 0;
        for (size_t n = 0; n < ring_size; ++n) {
            samples += samplers_[n].counts().samples;
            overlaps += samplers_[n].overlap_samples();
            for (const auto& o : samplers_[n].overlaps()) {
                checks_.problem(std::string{"node id of "} + names[n] + ": " + o);
            }
        }
        char buf[200];
        std::snprintf(
            buf, sizeof buf, "sampler: %llu samples of the three node ids, %llu with two servers\n",
            static_cast<unsigned long long>(samples), static_cast<unsigned long long>(overlaps));
        end_.extra =
            buf + std::string{"failover (a's clients, SIGKILL to first RECEIPT on b): "}
            + figures(failover_ms_) + "\nfailover (in the nodes, failover_ms): "
            + figures(log_figures(end_.logs, live_event, "failover_ms="))
            + "\nring whole again (restart to every backup in sync): " + figures(whole_ms_);
        return report(opt_, traffic_, std::move(end_));
    }

    options opt_;
    std::string dir_;
    ring_ports ports_;
    traffic traffic_;
    std::array<traffic_control, ring_size> spare_;
    std::array<std::unique_ptr<node_runner>, ring_size> nodes_;
    std::array<serving_sampler, ring_size> samplers_;
    run_end end_;
    node_checks checks_{end_.problems, ""};
    std::vector<int64_t> failover_ms_;
    std::vector<int64_t> whole_ms_;
};

} // namespace

int run_ring(const options& o, const std::string& dir) {
    return ring_harness{o, dir}.run();
}

} // namespace actormq::crash
