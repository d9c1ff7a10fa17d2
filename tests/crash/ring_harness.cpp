// SPDX-License-Identifier: Apache-2.0
// actormq-crash --ring (docs/testing.md, "The ring mode"): a ring of three colocated nodes
// (docs/ha.md, "Colocated backups"). Each kill hits a node drawn at random; its live fails
// over to its colocated backup on the next node, it comes back and fails back, and the node
// whose backup ran in the killed process gets a new one there; only then the next kill.
// Every node id has clients of its own (producers with duplicate ids and consumers, through
// the node and its backup on the next node) and a ledger of its own; a sampler per node id
// checks that never two instances serve it at once; each node id is drained from its node at
// the end and judged as in the other modes, and the ring's verdict adds them up.
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
#include <cstring>
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

/// Each node runs one backup, colocated_backup_1, on its live's ports plus this; while a node
/// is down, a survivor runs a second one (colocated_backup_2, + 2 x this) and the stand-in's
/// backup listens on its own port + 2 x this (the live's + 3 x this).
constexpr uint16_t port_offset = 100;

/// max-backups of every node: 2, as in examples/colocated, so that while a node is down the
/// node whose backup ran there and the stand-in both get one, and the ring rebalances after
/// the failback (docs/ha.md, "Rebalancing").
constexpr int max_backups = 2;

/// From a SIGKILL to the first RECEIPT from the killed node's backup, and to the killed
/// node's neighbour serving its node id.
constexpr auto failover_max = milliseconds(30000);

/// From the starts until every node serves, and from a restart until the ring is whole again
/// (the node failed back, its backup in sync, the backup it runs for the previous node in
/// sync).
constexpr auto whole_max = milliseconds(60000);

constexpr auto log_poll = milliseconds(5);

/// Log events of docs/replication.md and docs/ha.md.
constexpr const char* live_event = "replication_live node_id=";
// Any slot: with max-backups 2 a backup may run in its host's second slot (colocated_backup_2)
// when the first is taken, e.g. by a backup that a rebalance moved there.
constexpr const char* paired_event = "replication_in_sync backup=colocated_backup_";

/// Whether the backup of node id `id` whose host's log is `log` was in sync: the last of its
/// state lines for that node id is replication_in_sync (not a failed replica, a start-over, a
/// refused or new pairing, or a wait for a live after it). A backup that lost its live and
/// votes still counts (it may take over). True for an unknown id: a takeover is awaited, as
/// before this check.
bool backup_in_sync(const std::string& log, const std::string& id) {
    if (id.empty()) {
        return true;
    }
    auto marker = " node_id=" + id + " ";
    auto in_sync = log.rfind("replication_in_sync" + marker);
    if (in_sync == std::string::npos) {
        return false;
    }
    for (const char* later :
         {"replication_replication_failed", "replication_restarting", "replication_pair_refused",
          "replication_pairing", "replication_waiting_for_live"}) {
        auto at = log.rfind(later + marker);
        if (at != std::string::npos && at > in_sync) {
            return false;
        }
    }
    return true;
}
constexpr const char* hosted_event = "colocated_instance_started instance=colocated_backup_1 live=";

size_t next(size_t n) {
    return (n + 1) % ring_size;
}

size_t prev(size_t n) {
    return (n + ring_size - 1) % ring_size;
}

/// Fixed ports below the OS's ephemeral range (a backup's port is its live's plus the
/// offset; among ephemeral ports any connection could hold it): per node a STOMP port P with
/// P + k x offset free for k up to 3, and a cluster port, all different.
struct ring_ports {
    std::array<uint16_t, ring_size> stomp{};
    std::array<uint16_t, ring_size> cluster{};

    explicit ring_ports(uint64_t seed) {
        std::mt19937_64 rng{seed ^ 0x51ed270b};
        std::uniform_int_distribution<int> pick(20000, 32000 - 3 * port_offset);
        std::set<uint16_t> taken;
        auto take = [&](bool with_offset) -> uint16_t {
            for (int tries = 0; tries < 10000; ++tries) {
                auto p = static_cast<uint16_t>(pick(rng));
                bool ok = true;
                for (int k = 0; k <= (with_offset ? 3 : 0); ++k) {
                    auto q = static_cast<uint16_t>(p + k * port_offset);
                    ok = ok && taken.count(q) == 0 && test::port_free(q);
                }
                if (ok) {
                    for (int k = 0; k <= (with_offset ? 3 : 0); ++k) {
                        taken.insert(static_cast<uint16_t>(p + k * port_offset));
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
/// max-backups 2, check-for-live-server, short waits, and the other two as static members.
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
             "max-backups = "
           + std::to_string(max_backups) + "\nbackup-port-offset = " + std::to_string(port_offset)
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
          ports_(o.seed) {
        for (size_t n = 0; n < ring_size; ++n) {
            // The clients of node n's node id. Host 0: node n; host 1: its backup on the next
            // node, up while that node's process is.
            traffic_[n] = std::make_unique<traffic>(o.producers, o.tx_producers, consumers(o));
            ctl(n).host_count = 2;
            ctl(n).hosts[1].port = static_cast<uint16_t>(ports_.stomp[n] + port_offset);
        }
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
            // Node n's runner keeps host 0 of its own node id's clients up to date.
            nodes_[n] = std::make_unique<node_runner>(s, ctl(n));
            samplers_[n].set_port(0, ports_.stomp[n]);
            samplers_[n].set_port(1, static_cast<uint16_t>(ports_.stomp[n] + port_offset));
        }
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
        for (auto& t : traffic_) {
            if (opt_.sync_sends) {
                t->sync_sends();
            }
            t->start();
        }
        // The phases count a's confirmations (the three node ids' clients run alike).
        auto phases = plan(opt_.kills, opt_.seed);
        std::mt19937_64 rng{opt_.seed};
        bool ok = true;
        for (uint32_t i = 0; ok && i < opt_.kills; ++i) {
            const char* trigger = traffic_[0]->run_phase(phases[i]);
            ok = kill_one(i, static_cast<size_t>(rng() % ring_size), trigger);
        }
        if (ok) {
            traffic_[0]->run_phase(phases.back());
        }
        for (auto& t : traffic_) {
            t->stop(!ok);
        }
        end_.drained = ok && final_check();
        return finish();
    }

private:
    node_runner& node(size_t n) { return *nodes_[n]; }

    /// What the clients of node n's node id share with the killer.
    traffic_control& ctl(size_t n) { return traffic_[n]->ctl(); }

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
        // Each log read once per check: the check is polled every few milliseconds, and a long
        // run's logs grow to megabytes.
        std::array<std::string, ring_size> logs;
        for (size_t n = 0; n < ring_size; ++n) {
            logs[n] = node(n).log_text();
        }
        for (size_t n = 0; n < ring_size; ++n) {
            if (count_in(logs[n], live_event) == 0 || count_in(logs[n], paired_event) < paired[n]
                || !in_place(n, logs)) {
                return false;
            }
        }
        return true;
    }

    /// Whether node n's backup is where n's clients look for it (host 1 of their list): the
    /// first slot of the next node, started there for n and not stopped since, and in sync by
    /// its own log (a backup pairs only once the one before it is gone); and no instance for n
    /// runs on the third node (a backup that a rebalance is moving away, docs/ha.md). `logs`:
    /// each node's current run's log.
    bool in_place(size_t n, const std::array<std::string, ring_size>& logs) {
        auto& id = node_ids_[n];
        if (id.empty()) {
            const auto& log = logs[n];
            auto at = log.find(live_event);
            if (at == std::string::npos) {
                return false;
            }
            at += std::strlen(live_event);
            id = log.substr(at, log.find_first_of(" \n", at) - at);
        }
        const auto& host = logs[next(n)];
        auto started =
            host.rfind(std::string{"colocated_instance_started instance=colocated_backup_1 live="}
                       + names[n] + " ");
        if (started == std::string::npos
            || host.find("colocated_instance_stopped instance=colocated_backup_1\n", started)
                   != std::string::npos
            || host.find("replication_in_sync node_id=" + id + " ", started) == std::string::npos) {
            return false;
        }
        // The third node's instances for n: each start needs a stop after it.
        const auto& third = logs[prev(n)];
        const std::string prefix = "colocated_instance_started instance=";
        for (auto at = third.find(prefix); at != std::string::npos;
             at = third.find(prefix, at + prefix.size())) {
            auto name_end = third.find(' ', at + prefix.size());
            auto instance = third.substr(at + prefix.size(), name_end - at - prefix.size());
            if (third.compare(name_end, 7 + std::strlen(names[n]),
                              std::string{" live="} + names[n] + " ")
                    == 0
                && third.find("colocated_instance_stopped instance=" + instance + "\n", name_end)
                       == std::string::npos) {
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
        for (size_t n = 0; n < ring_size; ++n) {
            ctl(n).hosts[1].up = true;
        }
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
        auto host = next(v);
        auto lives_before = node(host).log_count(live_event);
        // After the restart: v's backup in sync in its new run, and the previous node's (which
        // ran in v's process) in sync once more than before.
        std::array<size_t, ring_size> paired{1, 1, 1};
        paired[prev(v)] = node(prev(v)).log_count(paired_event) + 1;
        uint64_t confirmed = 0;
        for (size_t n = 0; n < ring_size; ++n) {
            confirmed += ctl(n).confirmed;
        }
        for (auto& s : samplers_) {
            s.set_fault(i + 1);
        }
        // v's clients: their first RECEIPT from v's backup on the next node ends the failover.
        ctl(v).await_receipt_from(1);
        samplers_[v].change(1, true); // v's backup may serve again in this epoch of its host
        // The previous node's backup ran in v's process.
        ctl(prev(v)).hosts[1].up = false;
        change(v);
        // A live that dropped its backup (a replica that did not answer within its lease, on a
        // starved machine) confirms alone until the backup is in sync again; killed in that
        // window it has no backup that may take over (docs/replication.md), and comes back on
        // its own journal. Read before the kill: the backup's last state line.
        bool takeover_due = backup_in_sync(node(host).log_text(), node_ids_[v]);
        auto killed_at = test_clock::now();
        if (!checks_.stop_node(node(v), SIGKILL, label)) {
            return false;
        }
        ++end_.kills;
        std::string clients = ", no takeover: its backup on " + std::string{names[host]}
                              + " was not in sync (the live had dropped it)";
        int64_t takeover_ms = -1;
        if (takeover_due) {
            if (!await(
                    failover_max,
                    label + ": " + names[host] + " serving " + names[v] + "'s node id",
                    [&] { return node(host).log_count(live_event) > lives_before; }, v)) {
                return false;
            }
            takeover_ms = ms_since(killed_at);
            if (!await(
                    failover_max,
                    label + ": a RECEIPT from " + names[v] + "'s backup on " + names[host],
                    [&] { return ctl(v).awaited_receipt().has_value(); }, v)) {
                return false;
            }
            failover_ms_.push_back(ms_since(killed_at, *ctl(v).awaited_receipt()));
            clients = ", clients on " + std::string{names[host]} + " after "
                      + std::to_string(failover_ms_.back()) + " ms";
        } else {
            ++no_takeover_;
        }
        ctl(v).awaited_host = -1;
        change(v);
        auto restart_at = test_clock::now();
        if (!node(v).start()) {
            return checks_.problem(label + ": the restart failed: " + node(v).problem());
        }
        ctl(prev(v)).hosts[1].up = true;
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

    /// Drains every node id from its node (each serves its own again), then SIGTERM to every
    /// node.
    bool final_check() {
        std::string err;
        for (size_t n = 0; n < ring_size; ++n) {
            auto e = drain(node(n).port(), traffic_[n]->book());
            if (!e.empty()) {
                err = std::string{names[n]} + "'s node id: " + e;
                checks_.problem(err);
            }
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
            buf
            + std::string{"failover (the killed node's clients, SIGKILL to first RECEIPT from its "
                          "backup): "}
            + figures(failover_ms_) + "\nfailover (in the nodes, failover_ms): "
            + figures(log_figures(end_.logs, live_event, "failover_ms="))
            + "\nring whole again (restart to every backup in sync): " + figures(whole_ms_)
            + "\nkills with the backup out of sync (no takeover due): "
            + std::to_string(no_takeover_);
        // One report per node id (its traffic and verdict); the run's figures and problems
        // with the last. Then the ring's verdict, the sum of the three.
        int status = 0;
        verdict sum;
        for (size_t n = 0; n < ring_size; ++n) {
            run_end e;
            e.kills = end_.kills;
            e.drained = end_.drained;
            if (n + 1 == ring_size) {
                e.extra = end_.extra;
                e.problems = end_.problems;
                e.logs = end_.logs;
            }
            std::printf("node id of %s (clients on %s, then its backup on %s):\n", names[n],
                        names[n], names[next(n)]);
            status |= report(opt_, *traffic_[n], std::move(e));
            auto v = traffic_[n]->book().judge(0);
            sum.confirmed += v.confirmed;
            sum.received += v.received;
            sum.lost += v.lost;
            sum.duplicated += v.duplicated;
            sum.unexpected += v.unexpected;
            sum.recovered += v.recovered;
            sum.redelivered += v.redelivered;
            sum.tx_partial += v.tx_partial;
        }
        std::printf("ring %s\n", sum.line(end_.kills).c_str());
        return status;
    }

    options opt_;
    std::string dir_;
    ring_ports ports_;
    std::array<std::unique_ptr<traffic>, ring_size> traffic_;
    std::array<std::unique_ptr<node_runner>, ring_size> nodes_;
    std::array<serving_sampler, ring_size> samplers_;
    /// Each node's node id (from its first replication_live line): it is kept across restarts.
    std::array<std::string, ring_size> node_ids_;
    /// Kills that found the killed node's backup out of sync (no takeover due).
    uint64_t no_takeover_ = 0;
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
