// SPDX-License-Identifier: Apache-2.0
// actormq-crash --replication (docs/testing.md, "The replication mode"): two replicating
// nodes, a and b, take turns as live and backup while a third, live-only node (the voter)
// makes the quorum vote real; faults hit whichever node serves, a sampler thread checks that
// never both serve at once, and the drain and verdict are those of the other modes.
#include "crash/replication_harness.hpp"

#include "apps/partition/partition_proxy.hpp"
#include "crash/drain.hpp"
#include "crash/harness_glue.hpp"
#include "crash/node_runner.hpp"
#include "crash/schedule.hpp"
#include "crash/serving_sampler.hpp"
#include "crash/traffic.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <random>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace actormq::crash {

namespace {

using std::chrono::milliseconds;
using test::in;
using test::test_clock;

/// From a SIGKILL or SIGSTOP of the live to the first RECEIPT from the node that took over.
constexpr auto failover_max = milliseconds(30000);

/// From the first start of a's primary until it serves.
constexpr auto serve_max = milliseconds(30000);

/// From a backup's start until it logs that it syncs, and until it logs that it is in sync.
constexpr auto sync_max = milliseconds(30000);

/// From the SIGCONT of a frozen live until it has stepped down and exited. The live notices
/// at its journal's first look after the SIGCONT (docs/replication.md, "The lease") and then
/// waits at most quorum-vote-wait for its vote; the bound is generous so that a live that
/// missed the loss of its backup still ends and the sampler reports how long it served.
constexpr auto step_down_max = milliseconds(60000);

/// From the SIGKILL of a syncing backup until the live confirms something again.
constexpr auto live_goes_on_max = milliseconds(15000);

/// From cutting a link until the partition's outcome is in the logs (the live stepped down and
/// the backup serves; the backup started over and the live kept its quorum; both saw the
/// voter leave), and from the heal until the nodes are whole again.
constexpr auto partition_max = milliseconds(30000);

/// How often the harness looks at a node's log for an event.
constexpr auto log_poll = milliseconds(2);

/// Log events of docs/replication.md (actormq-node's `replication_*` lines).
constexpr const char* syncing_event = "replication_syncing";
constexpr const char* in_sync_event = "replication_in_sync";
constexpr const char* activating_event = "replication_activating";
constexpr const char* live_event = "replication_live node_id=";
constexpr const char* stepping_down_event = "replication_stepping_down";
constexpr const char* quorum_kept_event = "replication_quorum_kept";
/// The cluster's join line for the voter: a backup that has not seen it could win a vote alone.
constexpr const char* voter_joined_event = "cluster_member_joined name=voter";
constexpr const char* voter_left_event = "cluster_member_left name=voter";
constexpr const char* restarting_event = "replication_restarting";
constexpr const char* live_lost_event = "replication_live_lost";
constexpr const char* backup_lost_event = "replication_backup_lost";
/// The live's line when a backup completed its sync with it.
constexpr const char* paired_event = "replication_in_sync backup=";

// -- the schedule ---------------------------------------------------------------------------------

enum class fault_kind : uint8_t {
    kill_live,   ///< SIGKILL of the node that serves.
    freeze_live, ///< SIGSTOP of the node that serves until the backup has taken over, SIGCONT.
    kill_sync,   ///< SIGKILL of the backup once it logs that its initial sync runs.
    cut_live,    ///< The live cut off from the backup and the voter: it steps down.
    cut_backup,  ///< The backup cut off from the live: the live keeps its quorum.
    cut_voter,   ///< The voter cut off from both: nothing changes.
};

const char* to_string(fault_kind k) {
    switch (k) {
        case fault_kind::kill_live:
            return "kill";
        case fault_kind::freeze_live:
            return "freeze";
        case fault_kind::kill_sync:
            return "sync-kill";
        case fault_kind::cut_live:
            return "cut-live";
        case fault_kind::cut_backup:
            return "cut-backup";
        case fault_kind::cut_voter:
            return "cut-voter";
    }
    return "?";
}

struct replication_fault {
    fault_kind kind = fault_kind::kill_live;
    /// Live faults and partitions: traffic once the backup is in sync (early: none).
    traffic_phase before;
};

struct replication_schedule {
    std::vector<replication_fault> faults;
    traffic_phase tail;
};

/// The traffic phases are those of the single node's `plan` (every third one early); the kinds
/// come from a second generator on the same seed: 20 % sync kills, 20 % freezes, the rest
/// kills. Each kind is drawn for every fault, so one fault never shifts the draws of the rest.
///
/// `partitions` more faults are then placed among them (each before a kill drawn from a third
/// generator, or after the last), with their own traffic phases from a fourth; their kinds come
/// in blocks of three, each block the three kinds in a drawn order, so that any three or more
/// include each kind. With no partitions the schedule is the same as without the option.
replication_schedule replication_plan(uint32_t faults, uint32_t partitions, uint64_t seed) {
    auto phases = plan(faults, seed);
    std::mt19937_64 rng{seed ^ 0x7265706c69636174ULL};
    std::uniform_int_distribution<int> percent{0, 99};
    replication_schedule out;
    for (uint32_t i = 0; i < faults; ++i) {
        int p = percent(rng);
        replication_fault f;
        f.kind = p < 20   ? fault_kind::kill_sync
                 : p < 40 ? fault_kind::freeze_live
                          : fault_kind::kill_live;
        f.before = phases[i];
        out.faults.push_back(f);
    }
    out.tail = phases.back();
    if (partitions == 0) {
        return out;
    }
    auto cut_phases = plan(partitions, seed ^ 0x7061727469746e73ULL);
    std::mt19937_64 cut_rng{seed ^ 0x6375742d6c696e6bULL};
    std::uniform_int_distribution<uint32_t> where{0, faults};
    std::vector<std::pair<uint32_t, replication_fault>> cuts;
    std::array<fault_kind, 3> kinds{fault_kind::cut_live, fault_kind::cut_backup,
                                    fault_kind::cut_voter};
    for (uint32_t i = 0; i < partitions; ++i) {
        if (i % 3 == 0) {
            std::shuffle(kinds.begin(), kinds.end(), cut_rng);
        }
        replication_fault f;
        f.kind = kinds[i % 3];
        f.before = cut_phases[i];
        cuts.emplace_back(where(cut_rng), f);
    }
    std::stable_sort(cuts.begin(), cuts.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    std::vector<replication_fault> merged;
    size_t c = 0;
    for (uint32_t k = 0; k <= faults; ++k) {
        for (; c < cuts.size() && cuts[c].first == k; ++c) {
            merged.push_back(cuts[c].second);
        }
        if (k < faults) {
            merged.push_back(out.faults[k]);
        }
    }
    out.faults = std::move(merged);
    return out;
}

// -- the configs ----------------------------------------------------------------------------------

std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "\"";
}

/// The role of a node of the pair in its next run, or the voter.
enum class repl_role : uint8_t { primary, backup, voter };

/// The single node's config (journal in DIR/journal, acceptor, users, no address limit) with
/// the cluster credentials, persistence, the replication table of `role` (none for the voter)
/// and a [cluster] on port 0 (fixed later with --set) listing `members`.
std::string replication_node_config(const std::string& dir,
                                    repl_role role,
                                    const std::vector<std::string>& members) {
    std::string list;
    for (const auto& m : members) {
        list += (list.empty() ? "" : ", ") + quoted(m);
    }
    std::string ha;
    if (role != repl_role::voter) {
        // group-name keeps the backup from pairing with the voter, which is a live without
        // a backup too.
        ha = std::string{"\n[ha-policy.replication."}
             + (role == repl_role::primary ? "primary" : "backup")
             + "]\n"
               "group-name = \"crash\"\n"
               "vote-on-replication-failure = true\n"
               "vote-retry-wait = 100\n"
               "retry-replication-wait = 100\n"
               "quorum-vote-wait = 2\n";
    }
    return "cluster-user = \"actormq-cluster\"\n"
           "cluster-password = \"crash-replication\"\n"
           "persistence-enabled = true\n"
           + crash_node_config(dir) + ha
           + "\n[cluster]\n"
             "host = \"127.0.0.1\"\n"
             "port = 0\n"
             "reconnect-interval-ms = 50\n"
             "members = ["
           + list + "]\n";
}

// -- the harness ----------------------------------------------------------------------------------

/// One replication-mode run: the three nodes, the traffic, the sampler, the schedule and the
/// verdict. Node 0 is a, node 1 is b; `live_` is the one that serves.
class replication_harness {
public:
    replication_harness(const options& o, std::string dir)
        : opt_(o),
          dir_(std::move(dir)),
          traffic_(o.producers, o.tx_producers, consumers(o)),
          a_(spec(0), traffic_.ctl()),
          b_(spec(1), traffic_.ctl()),
          voter_(spec(2), voter_ctl_) {
        traffic_.ctl().host_count = 2;
    }

    /// Runs everything; the exit status (0 or 1).
    int run() {
        if (!start_nodes()) {
            return finish();
        }
        sampler_.start();
        if (opt_.sync_sends) {
            traffic_.sync_sends();
        }
        traffic_.start();
        auto schedule = replication_plan(opt_.kills, opt_.partitions, opt_.seed);
        faults_ = static_cast<uint32_t>(schedule.faults.size());
        bool ok = true;
        for (size_t i = 0; ok && i < schedule.faults.size(); ++i) {
            sampler_.set_fault(static_cast<uint32_t>(i + 1));
            const auto& f = schedule.faults[i];
            switch (f.kind) {
                case fault_kind::kill_sync:
                    ok = kill_sync(i);
                    break;
                case fault_kind::cut_backup:
                    ok = cut_backup(i, f);
                    break;
                case fault_kind::cut_voter:
                    ok = cut_voter(i, f);
                    break;
                default:
                    ok = live_fault(i, f);
            }
        }
        if (ok) {
            ok = backup_ready("after the last fault").has_value();
        }
        if (ok) {
            traffic_.run_phase(schedule.tail);
        }
        traffic_.stop(!ok);
        end_.drained = ok && final_check();
        sampler_.stop();
        return finish();
    }

private:
    node_runner& node(size_t n) { return n == 0 ? a_ : n == 1 ? b_ : voter_; }
    node_runner& live() { return node(live_); }
    node_runner& backup() { return node(1 - live_); }

    /// Node n: in DIR/a, DIR/b or DIR/voter, each with its own journal there; the pair's
    /// nodes fill host slots 0 and 1 of the clients' list, the voter its own control. Each
    /// lists the cluster addresses of the nodes started before it through the proxies of its
    /// links (`link`), so that the harness can cut any link.
    node_spec spec(size_t n) {
        static const char* names[] = {"a", "b", "voter"};
        node_spec s;
        s.dir = dir_ + "/" + names[n];
        s.log_prefix = names[n];
        s.host = n == 2 ? 0 : static_cast<uint32_t>(n);
        s.config = [this, n, dir = s.dir] {
            std::vector<std::string> members;
            for (size_t m = 0; m < 3; ++m) {
                if (m != n && node(m).cluster_port() != 0) {
                    members.push_back("127.0.0.1:" + std::to_string(link(n, m).port()));
                }
            }
            return replication_node_config(dir, role_[n], members);
        };
        s.sets.push_back(std::string{"name="} + quoted(names[n]));
        s.sets.insert(s.sets.end(), opt_.sets.begin(), opt_.sets.end());
        return s;
    }

    /// The proxy through which node `from` reaches node `to`'s cluster port, made at its
    /// first use (`to` has started: a node keeps its ports across restarts, so the proxy
    /// stays for the whole run); blocked if the link is cut. Only nodes of the run connect
    /// through it: clients and the sampler go to the STOMP ports directly.
    partition_proxy& link(size_t from, size_t to) {
        auto& p = proxies_[{from, to}];
        if (!p) {
            p = std::make_unique<partition_proxy>(node(to).cluster_port());
            if (cut_[std::min(from, to)][std::max(from, to)]) {
                p->block();
            }
        }
        return *p;
    }

    /// Cuts (`cut` true) or heals the link between nodes x and y, both ways.
    void set_cut(size_t x, size_t y, bool cut) {
        cut_[std::min(x, y)][std::max(x, y)] = cut;
        for (auto key : {std::make_pair(x, y), std::make_pair(y, x)}) {
            auto it = proxies_.find(key);
            if (it == proxies_.end()) {
                continue;
            }
            if (cut) {
                it->second->block();
            } else {
                it->second->heal();
            }
        }
    }

    bool problem(std::string what) { return checks_.problem(std::move(what)); }

    /// The voter, then a as primary until it serves, then b as backup, which must refuse
    /// connections. Each learns the cluster addresses of those started before it.
    bool start_nodes() {
        for (const char* sub : {"/a", "/b", "/voter"}) {
            std::error_code ec;
            std::filesystem::create_directories(dir_ + sub, ec);
        }
        if (!voter_.start()) {
            return problem("the voter did not start: " + voter_.problem());
        }
        if (!a_.start()) {
            return problem("a did not start: " + a_.problem());
        }
        if (!a_.serving(in(serve_max))) {
            return problem("a (primary) did not serve");
        }
        sampler_.change(1, true);
        if (!b_.start()) {
            return problem("b did not start: " + b_.problem());
        }
        backup_started_ = test_clock::now();
        if (!b_.refuses_connections()) {
            return problem("b (backup) accepts connections while a serves");
        }
        sampler_.set_port(0, a_.port());
        sampler_.set_port(1, b_.port());
        return true;
    }

    bool alive(node_runner& n, const std::string& when) { return checks_.alive(n, when); }

    bool all_alive(const std::string& when) {
        return alive(live(), when) && alive(backup(), when) && alive(voter_, when);
    }

    bool stop_node(node_runner& n, int sig, const std::string& when) {
        return checks_.stop_node(n, sig, when);
    }

    /// Waits until `pred` holds or one of the three nodes exits; false (and a problem naming
    /// `what`) if it does not hold by `limit`.
    template <class Pred>
    bool await(milliseconds limit, const std::string& what, Pred pred) {
        bool ok = test::wait_until(
            in(limit), [&] { return pred() || a_.exited() || b_.exited() || voter_.exited(); },
            log_poll);
        if (!all_alive(what)) {
            return false;
        }
        if (!ok || !pred()) {
            auto logs = backup().log_paths();
            return problem(what + ": not within " + std::to_string(limit.count()) + " ms (logs "
                           + live().log_paths().back() + ", " + logs.back() + ")");
        }
        return true;
    }

    /// Waits for the backup's `replication_in_sync` (and that it has seen the voter, without
    /// which its vote would be its own); the ms since its start, or nullopt (a problem).
    std::optional<int64_t> backup_ready(const std::string& when) {
        auto& b = backup();
        bool ok = await(sync_max, when + ": the backup " + b.name() + " in sync", [&] {
            return b.log_count(in_sync_event) > 0 && b.log_count(voter_joined_event) > 0;
        });
        if (!ok) {
            return std::nullopt;
        }
        auto ms = ms_since(backup_started_);
        sync_ms_.push_back(ms);
        return ms;
    }

    /// The head of a fault line: which fault, of whom, when, and the traffic since the last.
    std::string fault_head(size_t i, fault_kind kind, const node_runner& victim) {
        uint64_t confirmed = traffic_.ctl().confirmed;
        char buf[200];
        std::snprintf(buf, sizeof buf,
                      "fault %zu/%u %s of %s (%s) after %llu confirmed (at %.2f s): +%llu", i + 1,
                      faults_, to_string(kind), victim.name().c_str(),
                      kind == fault_kind::kill_sync || kind == fault_kind::cut_backup ? "backup"
                      : kind == fault_kind::cut_voter                                 ? "voter"
                                                                                      : "live",
                      static_cast<unsigned long long>(confirmed), traffic_.seconds(),
                      static_cast<unsigned long long>(confirmed - confirmed_at_last_));
        confirmed_at_last_ = confirmed;
        return buf;
    }

    /// Starts node n again as a backup; false (and a problem) if it does not start.
    bool restart_as_backup(size_t n, const std::string& when, int64_t& ms) {
        role_[n] = repl_role::backup;
        auto at = test_clock::now();
        sampler_.change(n, true);
        if (!node(n).start()) {
            return problem(when + ": " + node(n).problem());
        }
        backup_started_ = test_clock::now();
        ms = ms_since(at);
        return true;
    }

    /// How every fault of a pair in sync begins: its label, the backup's sync time, the
    /// traffic phase that ran before it, and its head line.
    struct fault_start {
        std::string label;
        int64_t sync_ms = 0;
        const char* trigger = "";
        std::string head;
    };

    /// Waits until the backup is in sync, runs the fault's traffic phase, writes the head line
    /// naming `target()` and checks that every node still runs ("..., before the `what`");
    /// nullopt (with a problem noted) when a step fails. `target` is asked after the traffic
    /// phase, as the fault hits whoever has the role then.
    template <class Target>
    std::optional<fault_start>
    start_fault(size_t i, const replication_fault& f, const char* what, Target target) {
        fault_start out;
        out.label = "fault " + std::to_string(i + 1);
        auto sync_ms = backup_ready(out.label);
        if (!sync_ms) {
            return std::nullopt;
        }
        out.sync_ms = *sync_ms;
        out.trigger = traffic_.run_phase(f.before);
        out.head = fault_head(i, f.kind, target());
        if (!all_alive(out.label + ", before the " + what)) {
            return std::nullopt;
        }
        return out;
    }

    /// A fault of the live: once the backup is in sync and the traffic phase ran, SIGKILL or
    /// SIGSTOP of the live, or its links to the backup and the voter cut; the backup must
    /// take over (for a freeze or a cut, the old live must then step down); the failover time
    /// is to the first RECEIPT from the new live. The old live restarts as a backup.
    bool live_fault(size_t i, const replication_fault& f) {
        auto start = start_fault(i, f, "fault", [this]() -> const node_runner& { return live(); });
        if (!start) {
            return false;
        }
        const auto& [label, sync_ms, trigger, head] = *start;
        size_t victim_n = live_;
        auto& victim = live();
        auto& survivor = backup();
        size_t lives_before = survivor.log_count(live_event);
        auto& ctl = traffic_.ctl();
        ctl.await_receipt_from(survivor.host());
        auto fault_at = test_clock::now();
        std::string thaw;
        if (f.kind == fault_kind::kill_live) {
            sampler_.change(victim_n, true);
            if (!stop_node(victim, SIGKILL, label)) {
                return false;
            }
        } else if (f.kind == fault_kind::cut_live) {
            if (!isolate_live(victim_n, survivor, lives_before, label, thaw)) {
                return false;
            }
        } else if (!freeze(victim_n, survivor, lives_before, label, thaw)) {
            return false;
        }
        if (f.kind == fault_kind::cut_live) {
            ++partitions_[0];
        } else {
            ++end_.kills;
        }
        bool ok = test::wait_until(
            in(failover_max),
            [&] { return ctl.awaited_receipt().has_value() || survivor.exited().has_value(); },
            milliseconds(1));
        ctl.awaited_host = -1;
        if (!alive(survivor, label + ", waiting for the failover")) {
            return false;
        }
        if (!ok) {
            return problem(label + ": no RECEIPT from " + survivor.name() + " within "
                           + std::to_string(failover_max.count()) + " ms of the "
                           + to_string(f.kind));
        }
        // The new live's acceptor opens just before its driver logs the activation, so a
        // client may have its RECEIPT a moment before the line is written: wait for it.
        if (!test::wait_until(in(milliseconds(5000)), [&] {
                return survivor.log_count(activating_event) > 0
                       && survivor.log_count(live_event) > lives_before;
            })) {
            return problem(label + ": " + survivor.name() + " served without logging "
                           + activating_event + " and " + live_event);
        }
        auto failover = ms_since(fault_at, *ctl.awaited_receipt());
        (f.kind == fault_kind::cut_live ? cut_failover_ms_ : failover_ms_).push_back(failover);
        live_ = 1 - live_;
        int64_t back_ms = 0;
        if (!restart_as_backup(victim_n, "after " + label, back_ms)) {
            return false;
        }
        std::printf("%s, trigger=%s, backup in sync %lld ms after its start; failover to %s in "
                    "%lld ms%s; %s back as backup in %lld ms\n",
                    head.c_str(), trigger, static_cast<long long>(sync_ms), survivor.name().c_str(),
                    static_cast<long long>(failover), thaw.c_str(), victim.name().c_str(),
                    static_cast<long long>(back_ms));
        return true;
    }

    /// SIGSTOP of the live (node `victim_n`) until `survivor` logs that it serves, then
    /// SIGCONT: the thawed live must log `replication_stepping_down` and exit 1. `thaw` gets
    /// the figures for the fault line.
    bool freeze(size_t victim_n,
                node_runner& survivor,
                size_t lives_before,
                const std::string& label,
                std::string& thaw) {
        auto& victim = node(victim_n);
        auto frozen_at = test_clock::now();
        // Clients and probes keep off a frozen node: it would hold them until it thaws.
        victim.set_reachable(false);
        sampler_.change(victim_n, false);
        victim.signal(SIGSTOP);
        bool took_over = test::wait_until(
            in(failover_max),
            [&] {
                return survivor.log_count(live_event) > lives_before
                       || survivor.exited().has_value() || voter_.exited().has_value();
            },
            log_poll);
        auto serving_ms = ms_since(frozen_at);
        sampler_.change(victim_n, true);
        victim.signal(SIGCONT);
        if (!alive(survivor, label + ", frozen live") || !alive(voter_, label + ", frozen live")) {
            return false;
        }
        if (!took_over) {
            return problem(label + ": " + survivor.name() + " did not take over from the frozen "
                           + victim.name() + " within " + std::to_string(failover_max.count())
                           + " ms");
        }
        auto thawed_at = test_clock::now();
        bool exited = test::wait_until(
            in(step_down_max), [&] { return victim.exited().has_value(); }, log_poll);
        auto status = victim.exited();
        if (!exited || !status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 1
            || victim.log_count(stepping_down_event) == 0) {
            return problem(label + ": the thawed " + victim.name()
                           + " did not step down (exit 1 "
                             "after "
                           + stepping_down_event + ") within "
                           + std::to_string(step_down_max.count()) + " ms: "
                           + (status ? node_runner::describe_status(*status) : "still runs")
                           + " (log " + victim.log_paths().back() + ")");
        }
        char buf[160];
        std::snprintf(buf, sizeof buf,
                      " (%s served %lld ms after the SIGSTOP; %s stepped down "
                      "%lld ms after the SIGCONT)",
                      survivor.name().c_str(), static_cast<long long>(serving_ms),
                      victim.name().c_str(), static_cast<long long>(ms_since(thawed_at)));
        thaw = buf;
        return true;
    }

    /// The live (node `victim_n`) cut off from `survivor` and the voter until `survivor` logs
    /// that it serves and the old live has stepped down (`replication_stepping_down`, exit 1),
    /// then healed. `note` gets the figures for the fault line.
    bool isolate_live(size_t victim_n,
                      node_runner& survivor,
                      size_t lives_before,
                      const std::string& label,
                      std::string& note) {
        auto& victim = node(victim_n);
        auto cut_at = test_clock::now();
        set_cut(victim_n, 1 - victim_n, true);
        set_cut(victim_n, 2, true);
        std::optional<test_clock::time_point> served_at;
        std::optional<test_clock::time_point> down_at;
        test::wait_until(
            in(partition_max),
            [&] {
                if (!served_at && survivor.log_count(live_event) > lives_before) {
                    served_at = test_clock::now();
                }
                if (!down_at && victim.exited()) {
                    down_at = test_clock::now();
                }
                return (served_at && down_at) || survivor.exited().has_value()
                       || voter_.exited().has_value();
            },
            log_poll);
        set_cut(victim_n, 1 - victim_n, false);
        set_cut(victim_n, 2, false);
        if (!alive(survivor, label + ", live cut off")
            || !alive(voter_, label + ", live cut off")) {
            return false;
        }
        if (!served_at) {
            return problem(label + ": " + survivor.name() + " did not take over from the cut-off "
                           + victim.name() + " within " + std::to_string(partition_max.count())
                           + " ms (log " + survivor.log_paths().back() + ")");
        }
        auto status = victim.exited();
        if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 1
            || victim.log_count(stepping_down_event) == 0) {
            return problem(label + ": the cut-off " + victim.name()
                           + " did not step down (exit 1 after " + stepping_down_event + ") within "
                           + std::to_string(partition_max.count()) + " ms: "
                           + (status ? node_runner::describe_status(*status) : "still runs")
                           + " (log " + victim.log_paths().back() + ")");
        }
        cut_takeover_ms_.push_back(ms_since(cut_at, *served_at));
        cut_step_down_ms_.push_back(ms_since(cut_at, *down_at));
        char buf[200];
        std::snprintf(buf, sizeof buf,
                      " (%s served %lld ms after the cut; %s stepped down %lld ms after it; "
                      "healed then)",
                      survivor.name().c_str(), static_cast<long long>(cut_takeover_ms_.back()),
                      victim.name().c_str(), static_cast<long long>(cut_step_down_ms_.back()));
        note = buf;
        return true;
    }

    /// Waits (at most `live_goes_on_max`) for a RECEIPT from the live; false (and a problem).
    bool live_confirms(const std::string& label, const std::string& during) {
        auto& l = live();
        auto& ctl = traffic_.ctl();
        ctl.await_receipt_from(l.host());
        bool ok = test::wait_until(
            in(live_goes_on_max),
            [&] { return ctl.awaited_receipt().has_value() || l.exited().has_value(); },
            milliseconds(1));
        ctl.awaited_host = -1;
        if (!alive(l, label + ", " + during)) {
            return false;
        }
        if (!ok) {
            return problem(label + ": no RECEIPT from the live " + l.name() + " within "
                           + std::to_string(live_goes_on_max.count()) + " ms " + during);
        }
        return true;
    }

    /// The backup cut off from the live (the voter still sees both), once it is in sync: the
    /// live must keep its quorum (`replication_quorum_kept`) and confirm, the backup must lose
    /// its votes and start over (`replication_restarting`) and never serve; after the heal it
    /// must pair and be in sync again.
    bool cut_backup(size_t i, const replication_fault& f) {
        auto start = start_fault(i, f, "cut", [this]() -> const node_runner& { return backup(); });
        if (!start) {
            return false;
        }
        const auto& [label, sync_ms, trigger, head] = *start;
        auto& b = backup();
        auto& l = live();
        size_t kept = l.log_count(quorum_kept_event);
        size_t restarts = b.log_count(restarting_event);
        size_t b_lives = b.log_count(live_event);
        size_t synced = b.log_count(in_sync_event);
        size_t paired = l.log_count(paired_event);
        ++partitions_[1];
        auto cut_at = test_clock::now();
        set_cut(live_, 1 - live_, true);
        std::optional<test_clock::time_point> kept_at;
        std::optional<test_clock::time_point> over_at;
        bool ok = await(partition_max,
                        label + ": " + l.name() + " keeping its quorum and " + b.name()
                            + " starting over while cut off",
                        [&] {
                            if (!kept_at && l.log_count(quorum_kept_event) > kept) {
                                kept_at = test_clock::now();
                            }
                            if (!over_at && b.log_count(restarting_event) > restarts) {
                                over_at = test_clock::now();
                            }
                            return kept_at && over_at;
                        })
                  && live_confirms(label, "while its backup is cut off");
        auto healed_at = test_clock::now();
        set_cut(live_, 1 - live_, false);
        if (!ok) {
            return false;
        }
        if (b.log_count(live_event) > b_lives) {
            return problem(label + ": the cut-off backup " + b.name() + " logged " + live_event
                           + " (log " + b.log_paths().back() + ")");
        }
        if (!await(sync_max, label + ": " + b.name() + " in sync again after the heal", [&] {
                return b.log_count(in_sync_event) > synced && l.log_count(paired_event) > paired;
            })) {
            return false;
        }
        auto resync = ms_since(healed_at);
        cut_backup_kept_ms_.push_back(ms_since(cut_at, *kept_at));
        cut_backup_over_ms_.push_back(ms_since(cut_at, *over_at));
        cut_resync_ms_.push_back(resync);
        std::printf("%s, trigger=%s, backup in sync %lld ms after its start; %s kept its quorum "
                    "%lld ms after the cut and confirmed on, %s started over %lld ms after it; "
                    "healed, %s in sync again %lld ms after the heal\n",
                    head.c_str(), trigger, static_cast<long long>(sync_ms), l.name().c_str(),
                    static_cast<long long>(cut_backup_kept_ms_.back()), b.name().c_str(),
                    static_cast<long long>(cut_backup_over_ms_.back()), b.name().c_str(),
                    static_cast<long long>(resync));
        return true;
    }

    /// The voter cut off from a and b: both must see it leave, the live must go on confirming
    /// and neither may lose its peer (`replication_live_lost`, `replication_backup_lost`);
    /// after the heal both must see it join again.
    bool cut_voter(size_t i, const replication_fault& f) {
        auto start = start_fault(i, f, "cut", [this]() -> const node_runner& { return voter_; });
        if (!start) {
            return false;
        }
        const auto& [label, sync_ms, trigger, head] = *start;
        auto& b = backup();
        auto& l = live();
        size_t l_left = l.log_count(voter_left_event);
        size_t b_left = b.log_count(voter_left_event);
        size_t l_joined = l.log_count(voter_joined_event);
        size_t b_joined = b.log_count(voter_joined_event);
        size_t live_lost = b.log_count(live_lost_event);
        size_t backup_lost = l.log_count(backup_lost_event);
        ++partitions_[2];
        auto cut_at = test_clock::now();
        set_cut(2, 0, true);
        set_cut(2, 1, true);
        bool ok = await(partition_max, label + ": a and b seeing the voter leave",
                        [&] {
                            return l.log_count(voter_left_event) > l_left
                                   && b.log_count(voter_left_event) > b_left;
                        })
                  && live_confirms(label, "while the voter is cut off");
        auto left_ms = ms_since(cut_at);
        auto healed_at = test_clock::now();
        set_cut(2, 0, false);
        set_cut(2, 1, false);
        if (!ok) {
            return false;
        }
        if (!await(partition_max, label + ": a and b seeing the voter again after the heal", [&] {
                return l.log_count(voter_joined_event) > l_joined
                       && b.log_count(voter_joined_event) > b_joined;
            })) {
            return false;
        }
        auto rejoin = ms_since(healed_at);
        if (b.log_count(live_lost_event) > live_lost
            || l.log_count(backup_lost_event) > backup_lost) {
            return problem(label + ": cutting off the voter made " + b.name() + " log "
                           + live_lost_event + " or " + l.name() + " log " + backup_lost_event
                           + " (logs " + l.log_paths().back() + ", " + b.log_paths().back() + ")");
        }
        cut_voter_left_ms_.push_back(left_ms);
        cut_voter_rejoin_ms_.push_back(rejoin);
        std::printf("%s, trigger=%s, backup in sync %lld ms after its start; a and b saw it leave "
                    "and %s confirmed on within %lld ms of the cut; healed, both saw it join "
                    "again %lld ms after the heal\n",
                    head.c_str(), trigger, static_cast<long long>(sync_ms), l.name().c_str(),
                    static_cast<long long>(left_ms), static_cast<long long>(rejoin));
        return true;
    }

    /// SIGKILL of the backup once it logs that its initial sync runs; the live must go on
    /// confirming (after its own vote, since it lost its backup), and the backup restarts.
    bool kill_sync(size_t i) {
        auto label = "fault " + std::to_string(i + 1);
        auto& b = backup();
        auto& l = live();
        if (!await(sync_max, label + ": the backup " + b.name() + " syncing",
                   [&] { return b.log_count(syncing_event) > 0; })) {
            return false;
        }
        bool synced = b.log_count(in_sync_event) > 0;
        sync_kills_late_ += synced ? 1 : 0;
        auto head = fault_head(i, fault_kind::kill_sync, b);
        size_t kept = l.log_count(quorum_kept_event);
        auto& ctl = traffic_.ctl();
        ctl.await_receipt_from(l.host());
        auto killed_at = test_clock::now();
        sampler_.change(1 - live_, true);
        if (!stop_node(b, SIGKILL, label)) {
            return false;
        }
        ++end_.kills;
        bool ok = test::wait_until(
            in(live_goes_on_max),
            [&] { return ctl.awaited_receipt().has_value() || l.exited().has_value(); },
            milliseconds(1));
        ctl.awaited_host = -1;
        if (!alive(l, label + ", after the SIGKILL of the syncing backup")) {
            return false;
        }
        if (!ok) {
            return problem(label + ": no RECEIPT from the live " + l.name() + " within "
                           + std::to_string(live_goes_on_max.count())
                           + " ms of the SIGKILL of its syncing backup");
        }
        auto on_ms = ms_since(killed_at, *ctl.awaited_receipt());
        int64_t back_ms = 0;
        if (!restart_as_backup(1 - live_, "after " + label, back_ms)) {
            return false;
        }
        std::printf("%s, %s; %s went on: next RECEIPT in %lld ms%s; %s back in %lld ms\n",
                    head.c_str(),
                    synced ? "late: its sync had completed" : "during its initial sync",
                    l.name().c_str(), static_cast<long long>(on_ms),
                    l.log_count(quorum_kept_event) > kept ? " (quorum kept)" : "", b.name().c_str(),
                    static_cast<long long>(back_ms));
        return true;
    }

    /// The drain from the live (its backup in sync), then SIGTERM of the backup, the live and
    /// the voter (each must exit 0). True if the drain completed.
    bool final_check() {
        auto err = drain(live().port(), traffic_.book());
        if (!err.empty()) {
            problem(err);
        }
        sampler_.stop();
        // The backup first, so that it never takes over; then the live, which has lost its
        // backup and holds a vote of its own; the voter last.
        stop_node(backup(), SIGTERM, "after the drain");
        stop_node(live(), SIGTERM, "after the drain");
        stop_node(voter_, SIGTERM, "after the drain");
        return err.empty();
    }

    int finish() {
        for (auto* n : {&a_, &b_, &voter_}) {
            auto logs = n->log_paths();
            end_.logs.insert(end_.logs.end(), logs.begin(), logs.end());
        }
        const auto& c = sampler_.counts();
        for (const auto& o : sampler_.overlaps()) {
            end_.problems.push_back(o);
        }
        char line[400];
        std::snprintf(line, sizeof line,
                      "sampler: samples=%llu a-served=%llu b-served=%llu rounds=%llu none=%llu "
                      "both=%llu discarded=%llu overlaps=%llu\n",
                      static_cast<unsigned long long>(c.samples),
                      static_cast<unsigned long long>(c.served[0]),
                      static_cast<unsigned long long>(c.served[1]),
                      static_cast<unsigned long long>(c.rounds),
                      static_cast<unsigned long long>(c.rounds_none),
                      static_cast<unsigned long long>(c.rounds_both),
                      static_cast<unsigned long long>(c.discarded),
                      static_cast<unsigned long long>(sampler_.overlap_samples()));
        auto needed = log_figures(end_.logs, activating_event, "needed=");
        auto real = std::count_if(needed.begin(), needed.end(), [](int64_t n) { return n >= 2; });
        end_.extra = line + std::string{"sync: "} + figures(sync_ms_)
                     + " sync-kills-late=" + std::to_string(sync_kills_late_)
                     + "\nvotes: won=" + std::to_string(needed.size())
                     + " needing-2=" + std::to_string(real) + "; node failover (live lost to "
                     + "serving): " + figures(log_figures(end_.logs, live_event, "failover_ms="))
                     + "\n" + summarize(failover_ms_).line();
        if (opt_.partitions > 0) {
            end_.extra += "\npartitions: cut-live=" + std::to_string(partitions_[0])
                          + " cut-backup=" + std::to_string(partitions_[1])
                          + " cut-voter=" + std::to_string(partitions_[2])
                          + "\ncut-live: backup serving " + figures(cut_takeover_ms_)
                          + "; old live stepped down " + figures(cut_step_down_ms_)
                          + "; clients' failover " + figures(cut_failover_ms_)
                          + "\ncut-backup: quorum kept " + figures(cut_backup_kept_ms_)
                          + "; backup started over " + figures(cut_backup_over_ms_)
                          + "; in sync after the heal " + figures(cut_resync_ms_)
                          + "\ncut-voter: both saw it leave " + figures(cut_voter_left_ms_)
                          + "; joined after the heal " + figures(cut_voter_rejoin_ms_);
        }
        return report(opt_, traffic_, std::move(end_));
    }

    options opt_;
    std::string dir_;
    traffic traffic_;
    traffic_control voter_ctl_;
    /// The role of each node's next run: a starts as primary, b as backup; a node restarted
    /// after a failover is a backup from then on (failback is not built).
    std::array<repl_role, 3> role_{repl_role::primary, repl_role::backup, repl_role::voter};
    node_runner a_;
    node_runner b_;
    node_runner voter_;
    size_t live_ = 0;
    serving_sampler sampler_;
    run_end end_;
    node_checks checks_{end_.problems, ""};
    std::vector<int64_t> failover_ms_;
    std::vector<int64_t> sync_ms_;
    uint32_t sync_kills_late_ = 0;
    /// Faults in the schedule (kills and partitions).
    uint32_t faults_ = 0;
    /// The proxies of the cluster links: (from, to) is how node `from` reaches node `to`.
    std::map<std::pair<size_t, size_t>, std::unique_ptr<partition_proxy>> proxies_;
    /// cut_[x][y] (x < y): whether the link between x and y is cut.
    std::array<std::array<bool, 3>, 3> cut_{};
    /// Partitions done: cut-live, cut-backup, cut-voter.
    std::array<uint32_t, 3> partitions_{};
    /// Times to outcome (ms): cut to the backup's replication_live, to the old live's exit,
    /// to the clients' first RECEIPT from the new live.
    std::vector<int64_t> cut_takeover_ms_;
    std::vector<int64_t> cut_step_down_ms_;
    std::vector<int64_t> cut_failover_ms_;
    /// Cut to the live's quorum_kept and to the backup's restarting; heal to in sync.
    std::vector<int64_t> cut_backup_kept_ms_;
    std::vector<int64_t> cut_backup_over_ms_;
    std::vector<int64_t> cut_resync_ms_;
    /// Cut to both nodes (and the live's next RECEIPT) seeing the voter leave; heal to join.
    std::vector<int64_t> cut_voter_left_ms_;
    std::vector<int64_t> cut_voter_rejoin_ms_;
    test_clock::time_point backup_started_ = test_clock::now();
    uint64_t confirmed_at_last_ = 0;
};

} // namespace

int run_replication(const options& o, const std::string& dir) {
    return replication_harness{o, dir}.run();
}

} // namespace actormq::crash
