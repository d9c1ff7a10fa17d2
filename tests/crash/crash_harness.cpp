// SPDX-License-Identifier: Apache-2.0
// actormq-crash: producers send durable messages while the node (or, with --pair, whichever
// node of a shared-store live/backup pair serves; with --replication, whichever node of a
// replicating pair serves; with --ring, any node of a ring of three colocated nodes) is
// SIGKILLed and restarted on a seeded schedule; a final drain
// then checks that nothing confirmed was lost, duplicated or invented, and that no
// transaction was torn. See docs/testing.md, "The crash harness".
#include "crash/drain.hpp"
#include "crash/node_runner.hpp"
#include "crash/options.hpp"
#include "crash/pair_harness.hpp"
#include "crash/replication_harness.hpp"
#include "crash/ring_harness.hpp"
#include "crash/schedule.hpp"
#include "crash/traffic.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using namespace actormq::crash;
using actormq::test::test_clock;

/// One crash run of a single node: the node, the producers, the schedule and the verdict.
class harness {
public:
    harness(const options& o, std::string dir)
        : opt_(o),
          dir_(std::move(dir)),
          traffic_(o.producers, o.tx_producers, consumers(o)),
          node_(dir_, traffic_.ctl(), o.sets) {}

    /// Runs everything; the exit status (0 or 1).
    int run() {
        if (!node_.start()) {
            end_.problems.push_back("the node did not start: " + node_.problem());
            return finish();
        }
        if (opt_.sync_sends) {
            traffic_.sync_sends();
        }
        traffic_.start();
        auto phases = plan(opt_.kills, opt_.seed);
        bool ok = true;
        for (uint32_t i = 1; ok && i <= opt_.kills; ++i) {
            ok = kill_once(i, phases[i - 1]);
        }
        if (ok) {
            traffic_.run_phase(phases.back());
        }
        traffic_.stop(!ok);
        end_.drained = ok && final_check();
        return finish();
    }

private:
    bool kill_once(uint32_t i, const traffic_phase& p) {
        const char* trigger = traffic_.run_phase(p);
        uint64_t confirmed = traffic_.ctl().confirmed;
        double at = traffic_.seconds();
        if (!stop_node(SIGKILL, "kill " + std::to_string(i))) {
            return false;
        }
        auto down = test_clock::now();
        if (!node_.start()) {
            end_.problems.push_back("after kill " + std::to_string(i) + ": " + node_.problem());
            return false;
        }
        auto back_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(test_clock::now() - down);
        std::printf("kill %u/%u after %llu confirmed (at %.2f s): +%llu since the last kill, "
                    "trigger=%s, node back in %lld ms\n",
                    i, opt_.kills, static_cast<unsigned long long>(confirmed), at,
                    static_cast<unsigned long long>(confirmed - confirmed_at_last_kill_), trigger,
                    static_cast<long long>(back_ms.count()));
        confirmed_at_last_kill_ = confirmed;
        ++end_.kills;
        return true;
    }

    /// Stops the node with `sig`; false (and a problem noted) unless it exits as it should.
    bool stop_node(int sig, const std::string& when) {
        auto status = node_.stop(sig);
        if (status && node_runner::expected_exit(sig, *status)) {
            return true;
        }
        end_.problems.push_back(
            when + ": the node "
            + (status ? node_runner::describe_status(*status) : std::string{"did not exit"})
            + " on " + (sig == SIGTERM ? "SIGTERM" : "SIGKILL"));
        return false;
    }

    /// SIGTERM, restart, drain every queue, SIGTERM. True if the drain completed.
    bool final_check() {
        // A failed SIGTERM is a problem, but the restart and drain still tell what survived.
        stop_node(SIGTERM, "end of traffic");
        if (!node_.start()) {
            end_.problems.push_back("final restart: " + node_.problem());
            return false;
        }
        auto err = drain(node_.port(), traffic_.book());
        if (!err.empty()) {
            end_.problems.push_back(err);
        }
        stop_node(SIGTERM, "after the drain");
        return err.empty();
    }

    int finish() {
        end_.logs = node_.log_paths();
        return report(opt_, traffic_, std::move(end_));
    }

    options opt_;
    std::string dir_;
    traffic traffic_;
    node_runner node_;
    run_end end_;
    uint64_t confirmed_at_last_kill_ = 0;
};

} // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    options o;
    if (!parse_cli(argc, argv, o)) {
        return 2;
    }
    if (!o.node.empty()) {
        ::setenv("ACTORMQ_NODE", o.node.c_str(), 1);
    }
    const char* node = std::getenv("ACTORMQ_NODE");
    if (node == nullptr || *node == '\0') {
        std::fprintf(stderr, "actormq-crash: name the actormq-node binary with --node PATH or "
                             "ACTORMQ_NODE\n");
        return 2;
    }
    o.seed = pick_seed(o);
    auto dir = make_run_dir(o.dir);
    if (dir.empty()) {
        return 2;
    }
    const char* mode = o.pair ? " pair=shared-store" : "";
    mode = o.replication ? " pair=replication+voter" : mode;
    mode = o.ring ? " ring=a,b,c" : mode;
    std::printf("crash: seed=%llu kills=%u producers=%u tx-producers=%u%s%s dir=%s\n",
                static_cast<unsigned long long>(o.seed), o.kills, o.producers, o.tx_producers, mode,
                consumers(o) ? " consumers=live" : "", dir.c_str());
    for (const auto& s : o.sets) {
        std::printf("crash: node --set %s\n", s.c_str());
    }
    int rc = o.pair          ? run_pair(o, dir)
             : o.replication ? run_replication(o, dir)
             : o.ring        ? run_ring(o, dir)
                             : harness{o, dir}.run();
    if (rc == 0 && !o.keep && o.dir.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    } else {
        std::printf("kept %s\n", dir.c_str());
    }
    return rc;
}
