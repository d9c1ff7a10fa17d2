// SPDX-License-Identifier: Apache-2.0
// actormq-crash: producers send durable messages while the node is SIGKILLed and restarted on a
// seeded schedule; a final drain then checks that nothing confirmed was lost, duplicated or
// invented, and that no transaction was torn. See docs/testing.md, "The crash harness".
#include "crash/drain.hpp"
#include "crash/ledger.hpp"
#include "crash/node_runner.hpp"
#include "crash/producers.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace actormq::crash;
using actormq::test::in;
using actormq::test::test_clock;
using actormq::test::wait_until;

constexpr const char* usage =
    "usage: actormq-crash [--kills N] [--producers P] [--tx-producers T] [--seed S]\n"
    "                     [--dir DIR] [--keep] [--node PATH] [--set KEY=VALUE ...]\n"
    "  --kills N          SIGKILLs of the node (default 5)\n"
    "  --producers P      plain producers, one connection each (default 2)\n"
    "  --tx-producers T   transaction producers (default 1)\n"
    "  --seed S           seed of the fault schedule (default: random, printed)\n"
    "  --dir DIR          run in DIR (created; must be empty) and keep it\n"
    "  --keep             keep the run's directory even when the verdict is clean\n"
    "  --node PATH        the actormq-node binary (default: $ACTORMQ_NODE)\n"
    "  --set KEY=VALUE    passed to every node start as --set KEY=VALUE (repeatable)\n"
    "exit status: 0 clean verdict, 1 a failed verdict or a broker problem, 2 usage or setup\n";

/// The fewest and most further confirmations before a kill.
constexpr uint64_t kill_count_min = 20;
constexpr uint64_t kill_count_max = 400;

/// The shortest and longest traffic before a kill, in ms.
constexpr int64_t kill_ms_min = 50;
constexpr int64_t kill_ms_max = 1000;

/// How long producers may take to get their last receipts once told to stop.
constexpr auto stop_grace = std::chrono::milliseconds(15000);

/// How many offending ids a failed verdict lists per category.
constexpr size_t examples_max = 10;

struct options {
    uint32_t kills = 5;
    uint32_t producers = 2;
    uint32_t tx_producers = 1;
    uint64_t seed = 0;
    bool seed_given = false;
    std::string dir;
    bool keep = false;
    std::string node;
    std::vector<std::string> sets;
};

/// Parses a decimal number; false unless all of `s` is one.
bool parse_u64(const char* s, uint64_t& out) {
    char* end = nullptr;
    errno = 0;
    auto v = std::strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || *s == '-') {
        return false;
    }
    out = v;
    return true;
}

bool parse_u32(const char* s, uint32_t& out) {
    uint64_t v = 0;
    if (!parse_u64(s, v) || v > 100000) {
        return false;
    }
    out = static_cast<uint32_t>(v);
    return true;
}

/// Parses argv into `o`; prints what is wrong and returns false on anything else.
bool parse_cli(int argc, char** argv, options& o) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
        bool ok = true;
        if (a == "--help" || a == "-h") {
            std::fputs(usage, stdout);
            std::exit(0);
        } else if (a == "--keep") {
            o.keep = true;
            continue;
        } else if (v == nullptr) {
            ok = false;
        } else if (a == "--kills") {
            ok = parse_u32(v, o.kills);
        } else if (a == "--producers") {
            ok = parse_u32(v, o.producers);
        } else if (a == "--tx-producers") {
            ok = parse_u32(v, o.tx_producers);
        } else if (a == "--seed") {
            ok = o.seed_given = parse_u64(v, o.seed);
        } else if (a == "--dir") {
            o.dir = v;
        } else if (a == "--node") {
            o.node = v;
        } else if (a == "--set") {
            o.sets.emplace_back(v);
        } else {
            ok = false;
        }
        if (!ok) {
            std::fprintf(stderr, "actormq-crash: bad or incomplete argument '%s'\n%s", a.c_str(),
                         usage);
            return false;
        }
        ++i;
    }
    if (o.producers + o.tx_producers == 0) {
        std::fprintf(stderr, "actormq-crash: needs at least one producer\n");
        return false;
    }
    return true;
}

/// The command line that runs the same schedule again.
std::string replay_command(const options& o) {
    std::string out = "actormq-crash --kills " + std::to_string(o.kills) + " --producers "
                      + std::to_string(o.producers) + " --tx-producers "
                      + std::to_string(o.tx_producers) + " --seed " + std::to_string(o.seed);
    for (const auto& s : o.sets) {
        out += " --set '" + s + "'";
    }
    return out;
}

/// Traffic before one kill (or, for the tail, before the end), drawn from the seed before
/// the run starts, so a replay gets the same schedule whatever the threads do.
struct traffic_phase {
    bool early = false;                ///< Kill right after the restart, with no traffic wait.
    uint64_t count = 0;                ///< Kill once this many further messages are confirmed,
    std::chrono::milliseconds time{0}; ///< or once this much time has passed.
};

/// Phases 0..kills-1 end with kill 1..kills; every third kill is early. The last phase is
/// the traffic after the last kill.
std::vector<traffic_phase> plan(uint32_t kills, uint64_t seed) {
    std::mt19937_64 rng{seed};
    std::uniform_int_distribution<uint64_t> count{kill_count_min, kill_count_max};
    std::uniform_int_distribution<int64_t> ms{kill_ms_min, kill_ms_max};
    std::vector<traffic_phase> out;
    for (uint32_t i = 1; i <= kills + 1; ++i) {
        traffic_phase p;
        p.count = count(rng);
        p.time = std::chrono::milliseconds(ms(rng));
        p.early = i <= kills && i % 3 == 0;
        out.push_back(p);
    }
    return out;
}

/// One crash run: the node, the producer threads, the schedule and the verdict.
class harness {
public:
    harness(const options& o, std::string dir)
        : opt_(o),
          dir_(std::move(dir)),
          book_(o.producers, o.tx_producers),
          stats_(book_.streams().size()),
          node_(dir_, ctl_, o.sets) {}

    /// Runs everything; the exit status (0 or 1).
    int run() {
        if (!node_.start()) {
            problems_.push_back("the node did not start: " + node_.problem());
            return report(false);
        }
        start_traffic();
        auto phases = plan(opt_.kills, opt_.seed);
        bool ok = true;
        for (uint32_t i = 1; ok && i <= opt_.kills; ++i) {
            ok = kill_once(i, phases[i - 1]);
        }
        if (ok) {
            run_phase(phases.back());
        }
        stop_traffic(!ok);
        bool drained = ok && final_check();
        return report(drained);
    }

private:
    void start_traffic() {
        t0_ = test_clock::now();
        auto& streams = book_.streams();
        for (size_t i = 0; i < streams.size(); ++i) {
            auto body =
                streams[i].kind == stream_kind::plain ? run_plain_producer : run_tx_producer;
            threads_.emplace_back(body, std::ref(ctl_), std::cref(limits_), std::ref(streams[i]),
                                  std::ref(stats_[i]));
        }
    }

    void stop_traffic(bool abort) {
        ctl_.stop_deadline = in(stop_grace);
        ctl_.stop = true;
        ctl_.abort = abort;
        for (auto& t : threads_) {
            t.join();
        }
        traffic_seconds_ = seconds();
    }

    /// Lets traffic run until `p.count` further confirmations or `p.time`, whichever is
    /// first; returns which.
    const char* run_phase(const traffic_phase& p) {
        if (p.early) {
            return "restart";
        }
        uint64_t target = ctl_.confirmed + p.count;
        bool by_count = wait_until(
            in(p.time), [&] { return ctl_.confirmed >= target; }, std::chrono::milliseconds(1));
        return by_count ? "count" : "time";
    }

    double seconds() const {
        return std::chrono::duration<double>(test_clock::now() - t0_).count();
    }

    bool kill_once(uint32_t i, const traffic_phase& p) {
        const char* trigger = run_phase(p);
        uint64_t confirmed = ctl_.confirmed;
        double at = seconds();
        auto status = node_.stop(SIGKILL);
        if (!status || !node_runner::expected_exit(SIGKILL, *status)) {
            problems_.push_back(
                "kill " + std::to_string(i) + ": the node "
                + (status ? node_runner::describe_status(*status) : std::string{"did not exit"}));
            return false;
        }
        auto down = test_clock::now();
        if (!node_.start()) {
            problems_.push_back("after kill " + std::to_string(i) + ": " + node_.problem());
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
        ++kills_;
        return true;
    }

    /// Stops the node with `sig`; false (and a problem noted) unless it exits as it should.
    bool stop_node(int sig, const std::string& when) {
        auto status = node_.stop(sig);
        if (status && node_runner::expected_exit(sig, *status)) {
            return true;
        }
        problems_.push_back(
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
            problems_.push_back("final restart: " + node_.problem());
            return false;
        }
        auto err = drain(ctl_.port, book_);
        if (!err.empty()) {
            problems_.push_back(err);
        }
        stop_node(SIGTERM, "after the drain");
        return err.empty();
    }

    void print_traffic() const {
        uint64_t sent = 0;
        producer_stats sum;
        for (const auto& r : book_.streams()) {
            for (bool s : r.sent) {
                sent += s ? 1 : 0;
            }
        }
        for (const auto& s : stats_) {
            sum.connects += s.connects;
            sum.resent += s.resent;
            sum.errors += s.errors;
            sum.stalls += s.stalls;
            sum.tx_refused_as_duplicate += s.tx_refused_as_duplicate;
        }
        std::printf("traffic: sent=%llu resent=%llu connects=%llu errors=%llu stalls=%llu "
                    "tx-redo-refused-as-duplicate=%llu (for %.2f s)\n",
                    static_cast<unsigned long long>(sent),
                    static_cast<unsigned long long>(sum.resent),
                    static_cast<unsigned long long>(sum.connects),
                    static_cast<unsigned long long>(sum.errors),
                    static_cast<unsigned long long>(sum.stalls),
                    static_cast<unsigned long long>(sum.tx_refused_as_duplicate), traffic_seconds_);
        for (size_t i = 0; i < stats_.size(); ++i) {
            if (stats_[i].errors > 0 || stats_[i].gave_up) {
                std::printf("warning: the producer to %s%s: %s\n",
                            book_.streams()[i].destination().c_str(),
                            stats_[i].gave_up ? " gave up" : "", stats_[i].first_error.c_str());
            }
        }
    }

    static void print_ids(const char* what, uint64_t n, const std::vector<std::string>& ids) {
        if (n == 0) {
            return;
        }
        std::string list;
        for (const auto& id : ids) {
            list += (list.empty() ? "" : ", ") + id;
        }
        std::printf("%s (%llu, first %zu): %s\n", what, static_cast<unsigned long long>(n),
                    ids.size(), list.c_str());
    }

    int report(bool drained) {
        auto v = book_.judge(examples_max);
        print_traffic();
        std::printf("%s\n%s\n", v.line(kills_).c_str(), v.tx_line().c_str());
        if (!drained) {
            problems_.push_back("the drain did not complete: 'received' is incomplete");
        }
        for (const auto& p : problems_) {
            std::printf("problem: %s\n", p.c_str());
        }
        if (v.ok() && problems_.empty()) {
            return 0;
        }
        print_ids("lost", v.lost, v.lost_ids);
        print_ids("duplicated", v.duplicated, v.duplicated_ids);
        print_ids("unexpected", v.unexpected, v.unexpected_ids);
        print_ids("partial tx", v.tx_partial, v.partial_ids);
        for (const auto& log : node_.log_paths()) {
            std::printf("node log: %s\n", log.c_str());
        }
        std::printf("replay: %s\n", replay_command(opt_).c_str());
        return 1;
    }

    options opt_;
    std::string dir_;
    traffic_control ctl_;
    producer_limits limits_;
    ledger book_;
    std::vector<producer_stats> stats_;
    std::vector<std::thread> threads_;
    node_runner node_;
    test_clock::time_point t0_ = test_clock::now();
    double traffic_seconds_ = 0;
    uint64_t confirmed_at_last_kill_ = 0;
    uint32_t kills_ = 0;
    std::vector<std::string> problems_;
};

/// Makes the run's directory: DIR (created, must be empty) or a fresh one under /tmp.
/// Returns "" and prints why if it cannot.
std::string make_run_dir(const std::string& wanted) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (wanted.empty()) {
        std::string pattern = "/tmp/actormq-crash-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) {
            std::fprintf(stderr, "actormq-crash: mkdtemp: %s\n", std::strerror(errno));
            return {};
        }
        return pattern;
    }
    fs::create_directories(wanted, ec);
    if (ec || !fs::is_directory(wanted) || !fs::is_empty(wanted, ec)) {
        // A journal left by an earlier run would be drained as "unexpected" messages.
        std::fprintf(stderr, "actormq-crash: --dir %s must be an empty (or new) directory\n",
                     wanted.c_str());
        return {};
    }
    return fs::absolute(wanted).string();
}

/// The seed: the one given, or a fresh one from the OS.
uint64_t pick_seed(const options& o) {
    if (o.seed_given) {
        return o.seed;
    }
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

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
    std::printf("crash: seed=%llu kills=%u producers=%u tx-producers=%u dir=%s\n",
                static_cast<unsigned long long>(o.seed), o.kills, o.producers, o.tx_producers,
                dir.c_str());
    for (const auto& s : o.sets) {
        std::printf("crash: node --set %s\n", s.c_str());
    }
    int rc = harness{o, dir}.run();
    if (rc == 0 && !o.keep && o.dir.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    } else {
        std::printf("kept %s\n", dir.c_str());
    }
    return rc;
}
