// SPDX-License-Identifier: Apache-2.0
#include "crash/pair_harness.hpp"

#include "crash/drain.hpp"
#include "crash/harness_glue.hpp"
#include "crash/node_runner.hpp"
#include "crash/schedule.hpp"
#include "crash/traffic.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

namespace actormq::crash {

namespace {

using std::chrono::milliseconds;
using test::in;
using test::test_clock;

/// From a SIGKILL to the first RECEIPT from the node that took over.
constexpr auto failover_max = milliseconds(30000);

/// From a start (or a failback) until the node serves.
constexpr auto serve_max = milliseconds(30000);

/// From a restart of the primary until it logs that it waits to fail back; and from a
/// failback until the backup logs that it waits as a backup again.
constexpr auto ha_event_max = milliseconds(10000);

/// How often the harness looks at a node's log for an HA event.
constexpr auto log_poll = milliseconds(2);

/// Log events of docs/ha-spec (actormq-node's `ha_*` lines).
constexpr const char* failing_back_event = "ha_failing_back";
constexpr const char* giving_way_event = "ha_giving_way";
constexpr const char* backup_restarted_event = "ha_backup_restarted";

/// The size of the journal: its segment files (docs/journal.md) and their bytes.
struct journal_size {
    uintmax_t bytes = 0;
    size_t files = 0;
};

/// The segment files (`*.amq`) DIR holds now; one that vanishes meanwhile counts as empty.
journal_size measure(const std::string& dir) {
    journal_size out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        if (e.path().extension() != ".amq") {
            continue;
        }
        std::error_code size_ec;
        auto bytes = e.file_size(size_ec);
        out.bytes += size_ec ? 0 : bytes;
        ++out.files;
    }
    return out;
}

/// One pair-mode run: the two nodes, the producers, the schedule and the verdict.
class pair_harness {
public:
    pair_harness(const options& o, std::string dir)
        : opt_(o),
          dir_(std::move(dir)),
          traffic_(o.producers, o.tx_producers, consumers(o), o.native),
          primary_(spec(pair_role::primary), traffic_.ctl()),
          backup_(spec(pair_role::backup), traffic_.ctl()) {
        traffic_.ctl().host_count = 2;
    }

    /// Runs everything; the exit status (0 or 1).
    int run() {
        if (!start_pair()) {
            return finish();
        }
        if (opt_.sync_sends) {
            traffic_.sync_sends();
        }
        traffic_.start();
        auto schedule = pair_plan(opt_.kills, opt_.seed);
        bool ok = true;
        for (size_t i = 0; ok && i < schedule.kills.size();) {
            ok = cycle(schedule, i);
        }
        if (ok) {
            traffic_.run_phase(schedule.tail);
        }
        traffic_.stop(!ok);
        end_.drained = ok && final_check();
        return finish();
    }

private:
    /// The node in `role`: in DIR/<role>, on the shared journal DIR/journal, listing the
    /// other node's cluster address once it is known.
    node_spec spec(pair_role role) {
        node_spec s;
        s.dir = dir_ + "/" + to_string(role);
        s.log_prefix = to_string(role);
        s.host = role == pair_role::primary ? 0 : 1;
        auto journal = dir_ + "/journal";
        s.config = [this, role, journal] {
            const auto& other = role == pair_role::primary ? backup_ : primary_;
            std::vector<std::string> members;
            if (other.cluster_port() != 0) {
                members.push_back("127.0.0.1:" + std::to_string(other.cluster_port()));
            }
            return pair_node_config(role, journal, members, opt_.native);
        };
        // test::node_process points each node at its own DIR/journal; this set comes later
        // and wins, and the caller's sets come after it.
        s.sets.push_back("journal-directory=" + journal);
        s.sets.insert(s.sets.end(), opt_.sets.begin(), opt_.sets.end());
        return s;
    }

    bool problem(std::string what) { return checks_.problem(std::move(what)); }

    /// The primary first (cluster port 0), until it serves; then the backup, which learns
    /// the primary's cluster address and must stay passive.
    bool start_pair() {
        std::error_code ec;
        std::filesystem::create_directories(dir_ + "/primary", ec);
        std::filesystem::create_directories(dir_ + "/backup", ec);
        if (!primary_.start()) {
            return problem("the primary did not start: " + primary_.problem());
        }
        if (!primary_.serving(in(serve_max))) {
            return problem("the primary did not serve");
        }
        if (!backup_.start()) {
            return problem("the backup did not start: " + backup_.problem());
        }
        if (!backup_.refuses_connections()) {
            return problem("the backup accepts connections while the primary serves");
        }
        return true;
    }

    bool stop_node(node_runner& n, int sig, const std::string& when) {
        return checks_.stop_node(n, sig, when);
    }

    /// SIGKILLs `victim` (which serves) and waits for the first RECEIPT from `survivor`:
    /// the failover time in ms, or nullopt (and a problem noted).
    std::optional<int64_t>
    kill_and_fail_over(node_runner& victim, node_runner& survivor, const std::string& label) {
        auto& ctl = traffic_.ctl();
        auto before = label + ", before the SIGKILL of the " + victim.name();
        if (!alive(victim, before) || !alive(survivor, before)) {
            return std::nullopt;
        }
        ctl.await_receipt_from(survivor.host());
        auto killed_at = test_clock::now();
        if (!stop_node(victim, SIGKILL, label)) {
            return std::nullopt;
        }
        ++end_.kills;
        bool ok = test::wait_until(
            in(failover_max),
            [&] { return ctl.awaited_receipt().has_value() || survivor.exited().has_value(); },
            milliseconds(1));
        ctl.awaited_host = -1;
        if (!alive(survivor, label + ", waiting for the failover")) {
            return std::nullopt;
        }
        if (!ok) {
            problem(label + ": no RECEIPT from the " + survivor.name() + " within "
                    + std::to_string(failover_max.count()) + " ms of the SIGKILL");
            return std::nullopt;
        }
        auto ms = ms_since(killed_at, *ctl.awaited_receipt());
        failover_ms_.push_back(ms);
        return ms;
    }

    bool alive(node_runner& n, const std::string& when) { return checks_.alive(n, when); }

    /// Waits until `n`'s log holds more than `seen` lines with `event`.
    bool await_event(const node_runner& n, const char* event, size_t seen) {
        return test::wait_until(
            in(ha_event_max), [&] { return n.log_count(event) > seen; }, log_poll);
    }

    /// The head of a kill line: which kill, of whom, when, and the traffic since the last.
    std::string kill_head(size_t i, const node_runner& victim) {
        auto size = measure(dir_ + "/journal");
        journal_max_.bytes = std::max(journal_max_.bytes, size.bytes);
        journal_max_.files = std::max(journal_max_.files, size.files);
        uint64_t confirmed = traffic_.ctl().confirmed;
        char buf[160];
        std::snprintf(buf, sizeof buf, "kill %zu/%u %s after %llu confirmed (at %.2f s): +%llu",
                      i + 1, opt_.kills, victim.name().c_str(),
                      static_cast<unsigned long long>(confirmed), traffic_.seconds(),
                      static_cast<unsigned long long>(confirmed - confirmed_at_last_kill_));
        confirmed_at_last_kill_ = confirmed;
        return buf;
    }

    /// Kill i of the primary, the failover to the backup, traffic on the backup, the
    /// primary's restart, and then either the failback or (if the schedule says so) kill i+1
    /// of the backup during the failback. Advances `i` past the kills done.
    bool cycle(const pair_schedule& schedule, size_t& i) {
        const auto& k = schedule.kills[i];
        if (k.target != pair_role::primary) {
            return problem("schedule: kill " + std::to_string(i + 1) + " is not of the primary");
        }
        const char* trigger = traffic_.run_phase(k.before);
        auto head = kill_head(i, primary_);
        auto failover = kill_and_fail_over(primary_, backup_, "kill " + std::to_string(i + 1));
        if (!failover) {
            return false;
        }
        traffic_.run_phase(k.on_backup);
        // From here until the backup has given way and waits again, only the primary may
        // take new connections (see node_runner::set_reachable).
        backup_.set_reachable(false);
        size_t restarts = backup_.log_count(backup_restarted_event);
        auto restart_at = test_clock::now();
        if (!primary_.start()) {
            return problem("after kill " + std::to_string(i + 1) + ": " + primary_.problem());
        }
        std::printf("%s, trigger=%s, failover to the backup in %lld ms; primary back in %lld ms",
                    head.c_str(), trigger, static_cast<long long>(*failover),
                    static_cast<long long>(ms_since(restart_at)));
        bool backup_next =
            i + 1 < schedule.kills.size() && schedule.kills[i + 1].target == pair_role::backup;
        if (backup_next) {
            std::printf("\n");
            ++i;
            return kill_backup_in_failback(i++);
        }
        ++i;
        return fail_back(restart_at, restarts);
    }

    /// The restarted primary takes over from the backup: it serves, the backup refuses
    /// connections and then waits as a backup again.
    bool fail_back(test_clock::time_point restart_at, size_t restarts) {
        if (!primary_.serving(in(serve_max))) {
            std::printf("\n");
            return problem("the primary did not fail back within "
                           + std::to_string(serve_max.count()) + " ms");
        }
        std::printf(", failback in %lld ms\n", static_cast<long long>(ms_since(restart_at)));
        if (!await_event(backup_, backup_restarted_event, restarts)) {
            return problem("the backup did not log " + std::string{backup_restarted_event}
                           + " after the failback");
        }
        // Only now is the backup's port bound again: a probe before could meet a free port.
        if (!backup_.refuses_connections()) {
            problem("two servers: the backup accepts connections after the primary failed back");
        }
        backup_.set_reachable(true);
        return true;
    }

    /// Kill i: the backup, once the restarted primary has logged that it waits to fail back;
    /// the primary must take over. Then the backup is restarted and must stay passive.
    bool kill_backup_in_failback(size_t i) {
        if (!await_event(primary_, failing_back_event, 0)) {
            return problem("the restarted primary did not log " + std::string{failing_back_event});
        }
        size_t gave_way = backup_.log_count(giving_way_event);
        auto head = kill_head(i, backup_);
        auto failover = kill_and_fail_over(backup_, primary_, "kill " + std::to_string(i + 1));
        if (!failover) {
            return false;
        }
        // The log outlives the process; a giving-way line means the kill hit the backup
        // while it was already handing over, not while it served.
        bool giving_way = backup_.log_count(giving_way_event) > gave_way;
        auto restart_at = test_clock::now();
        if (!backup_.start()) {
            return problem("after kill " + std::to_string(i + 1) + ": " + backup_.problem());
        }
        std::printf("%s, trigger=failback%s, failover to the primary in %lld ms; backup back "
                    "in %lld ms\n",
                    head.c_str(), giving_way ? " (the backup was giving way)" : "",
                    static_cast<long long>(*failover),
                    static_cast<long long>(ms_since(restart_at)));
        if (!backup_.refuses_connections()) {
            problem("two servers: the restarted backup accepts connections");
        }
        return true;
    }

    /// SIGTERM of both (the backup first, so that it never takes over), a restart of the
    /// primary alone, the drain, SIGTERM. True if the drain completed.
    bool final_check() {
        // A failed SIGTERM is a problem, but the restart and drain still tell what survived.
        stop_node(backup_, SIGTERM, "end of traffic");
        stop_node(primary_, SIGTERM, "end of traffic");
        if (!primary_.start()) {
            return problem("final restart: " + primary_.problem());
        }
        if (!primary_.serving(in(serve_max))) {
            return problem("final restart: the primary did not serve");
        }
        auto err = drain(primary_.port(), traffic_.book());
        if (!err.empty()) {
            problem(err);
        }
        stop_node(primary_, SIGTERM, "after the drain");
        return err.empty();
    }

    int finish() {
        end_.logs = primary_.log_paths();
        auto backup_logs = backup_.log_paths();
        end_.logs.insert(end_.logs.end(), backup_logs.begin(), backup_logs.end());
        // The failover is the backup's activation (mostly the journal load) plus the
        // clients' reconnect; the activation line shows how much of it is the first.
        auto activation = summarize(log_figures(end_.logs, "ha_live ", "activation_ms="));
        char journal[160];
        std::snprintf(journal, sizeof journal,
                      "journal: max=%.1f MiB in %zu segments (at a kill); activation: n=%zu "
                      "p50=%lldms p99=%lldms max=%lldms\n",
                      static_cast<double>(journal_max_.bytes) / (1024.0 * 1024.0),
                      journal_max_.files, activation.n, static_cast<long long>(activation.p50_ms),
                      static_cast<long long>(activation.p99_ms),
                      static_cast<long long>(activation.max_ms));
        end_.extra = journal + summarize(failover_ms_).line();
        return report(opt_, traffic_, std::move(end_));
    }

    options opt_;
    std::string dir_;
    traffic traffic_;
    node_runner primary_;
    node_runner backup_;
    run_end end_;
    node_checks checks_{end_.problems, "the "};
    std::vector<int64_t> failover_ms_;
    /// The largest journal seen at a kill.
    journal_size journal_max_;
    uint64_t confirmed_at_last_kill_ = 0;
};

} // namespace

int run_pair(const options& o, const std::string& dir) {
    return pair_harness{o, dir}.run();
}

} // namespace actormq::crash
