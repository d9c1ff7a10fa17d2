// SPDX-License-Identifier: Apache-2.0
// actormq-node: reads its TOML config, starts one node, serves until SIGTERM or SIGINT.
#include "actors/ha/node.hpp"
#include "config/load.hpp"

#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#ifdef ACTORMQ_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <vector>

namespace {

constexpr const char* usage =
    "usage: actormq-node --config FILE [--set dotted.key=value ...]\n"
    "       actormq-node --check-config FILE [--set dotted.key=value ...]\n";

struct cli {
    std::string config_file;
    bool check_only = false;
    std::vector<std::string> overrides;
};

/// Parses argv; prints usage and returns false on anything it does not understand.
bool parse_cli(int argc, char** argv, cli& out) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        bool has_value = i + 1 < argc;
        if ((a == "--config" || a == "--check-config") && has_value) {
            out.check_only = a == "--check-config";
            out.config_file = argv[++i];
        } else if (a == "--set" && has_value) {
            out.overrides.emplace_back(argv[++i]);
        } else if (a == "--help" || a == "-h") {
            std::fputs(usage, stdout);
            std::exit(0);
        } else {
            std::fprintf(stderr, "actormq-node: unknown or incomplete argument '%s'\n%s", a.c_str(),
                         usage);
            return false;
        }
    }
    if (out.config_file.empty()) {
        std::fputs(usage, stderr);
        return false;
    }
    return true;
}

/// One logger per folder (style rule 20), all to stderr, one line per event. They write through
/// one distributing sink, so the node can add its status event sink later (docs/web.md).
void make_loggers(const std::string& level) {
    auto sink = std::make_shared<spdlog::sinks::dist_sink_mt>();
    sink->add_sink(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    for (const char* name : {"node", "actors", "protocol", "config", "cluster", "http"}) {
        auto log = std::make_shared<spdlog::logger>(name, sink);
        log->set_level(spdlog::level::from_str(level));
        log->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
        spdlog::register_logger(log);
    }
}

/// Blocks SIGINT and SIGTERM in this thread (and every thread started after) and returns
/// the set, so that main can wait for them with sigwait.
sigset_t block_stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    return set;
}

} // namespace

/// File descriptors the node may need besides its client connections: journal segments and
/// lock files, cluster links, the web server's clients, log and pipe descriptors.
constexpr rlim_t fd_reserve = 1024;

/// Raises the soft limit on open files towards what the acceptors' max-connections need (the
/// shell's default of 1024 would refuse the 1025th client with EMFILE long before
/// max-connections). Never above the hard limit, which only an administrator can raise; a
/// limit still below the need is said at start, with the way out.
void raise_fd_limit(const actormq::config::node_config& cfg,
                    const std::shared_ptr<spdlog::logger>& log) {
    rlim_t need = fd_reserve;
    for (const auto& a : cfg.acceptors) {
        need += a.max_connections;
    }
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        return;
    }
    rlim_t before = lim.rlim_cur;
    if (lim.rlim_cur < need) {
        lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? need : std::min(need, lim.rlim_max);
        if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            lim.rlim_cur = before;
        }
    }
    if (lim.rlim_cur < need) {
        log->warn("fd_limit_low soft={} hard={} needed={} reason=\"the acceptors' max-connections "
                  "plus {} for journal, cluster and web\" action=\"raise the hard limit (ulimit "
                  "-Hn, systemd LimitNOFILE) or lower max-connections\"",
                  lim.rlim_cur, lim.rlim_max, need, fd_reserve);
    } else if (lim.rlim_cur != before) {
        log->info("fd_limit_raised from={} to={}", before, lim.rlim_cur);
    }
}

namespace {

/// Which malloc this binary runs on (CMake's ACTORMQ_ALLOCATOR; docs/architecture.md), so a log
/// shows what a measurement ran on.
void log_allocator(spdlog::logger& log) {
#ifdef ACTORMQ_JEMALLOC
    const char* version = nullptr;
    size_t len = sizeof(version);
    if (mallctl("version", &version, &len, nullptr, 0) != 0 || version == nullptr) {
        version = "unknown";
    }
    log.info("node_allocator name=jemalloc version={}", version);
#else
    log.info("node_allocator name=system");
#endif
}

/// Everything durable is settled before node::stop() returns (the journal is closed and the
/// lock released by then), and stop() bounds each of its own waits (the longest: 30 s for the
/// journal to close). A stop that still hangs past all of them is a bug; this last resort
/// reports where it hung and ends the process rather than keep a backup waiting. It reads only
/// the stop report, which outlives the node.
void guard_stop(std::shared_ptr<const actormq::node::stop_report> report,
                std::shared_ptr<spdlog::logger> log) {
    std::thread([report = std::move(report), log = std::move(log)] {
        std::this_thread::sleep_for(std::chrono::seconds(45));
        // A scale-down moves the whole backlog and may take longer; it cannot hang, since each
        // of its batches fails the stop after batch-timeout-ms. The stages after it get the
        // same 45 s again.
        if (std::strcmp(report->stage.load(), "scale-down") == 0) {
            while (std::strcmp(report->stage.load(), "scale-down") == 0) {
                std::this_thread::sleep_for(std::chrono::seconds(1));
            }
            std::this_thread::sleep_for(std::chrono::seconds(45));
        }
        const char* at = report->stage.load();
        bool settled = std::strcmp(at, "running") != 0 && std::strcmp(at, "activation") != 0
                       && std::strcmp(at, "deactivate") != 0;
        log->critical("node_stop_stuck stage={} action=exit", at);
        log->flush();
        std::_Exit(report->failed ? 1 : settled ? 0 : 3);
    }).detach();
}

} // namespace

int main(int argc, char** argv) {
    cli args;
    if (!parse_cli(argc, argv, args)) {
        return 2;
    }
    auto loaded = actormq::config::load_file(args.config_file, args.overrides);
    for (const auto& e : loaded.errors) {
        std::fprintf(stderr, "%s\n", e.to_string().c_str());
    }
    if (!loaded.config) {
        std::fprintf(stderr, "actormq-node: %zu error(s) in %s; not starting\n",
                     loaded.errors.size(), args.config_file.c_str());
        return 1;
    }
    if (args.check_only) {
        std::printf("%s: ok\n", args.config_file.c_str());
        return 0;
    }
    make_loggers(loaded.config->log_level);
    auto signals = block_stop_signals();
    auto log = spdlog::get("node");
    raise_fd_limit(*loaded.config, log);
    log_allocator(*log);
    int rc = 0;
    {
        actormq::node n{std::move(*loaded.config)};
        if (n.start() != 0) {
            return 1;
        }
        int sig = 0;
        sigwait(&signals, &sig);
        log->info("node_stopping signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        guard_stop(n.report(), log);
        n.stop();
        rc = n.failed() ? 1 : 0;
    }
    log->info("node_stopped");
    spdlog::shutdown();
    return rc;
}
