// SPDX-License-Identifier: Apache-2.0
#include "crash/harness_glue.hpp"

#include "crash/schedule.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace actormq::crash {

int64_t ms_since(test::test_clock::time_point from, test::test_clock::time_point to) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

std::vector<int64_t> log_figures(const std::vector<std::string>& logs,
                                 const std::string& key,
                                 const std::string& field) {
    std::vector<int64_t> out;
    for (const auto& path : logs) {
        std::ifstream in{path};
        for (std::string line; std::getline(in, line);) {
            auto at = line.find(key);
            at = at == std::string::npos ? at : line.find(field, at);
            if (at != std::string::npos) {
                out.push_back(std::atoll(line.c_str() + at + field.size()));
            }
        }
    }
    return out;
}

std::string figures(std::vector<int64_t> ms) {
    auto s = summarize(std::move(ms));
    char buf[120];
    std::snprintf(buf, sizeof buf, "n=%zu p50=%lldms p99=%lldms max=%lldms", s.n,
                  static_cast<long long>(s.p50_ms), static_cast<long long>(s.p99_ms),
                  static_cast<long long>(s.max_ms));
    return buf;
}

bool node_checks::problem(std::string what) {
    problems_.push_back(std::move(what));
    return false;
}

bool node_checks::alive(node_runner& n, const std::string& when) {
    auto status = n.exited();
    if (!status) {
        return true;
    }
    auto logs = n.log_paths();
    return problem(when + ": " + article_ + n.name() + " exited on its own, "
                   + node_runner::describe_status(*status) + " (log "
                   + (logs.empty() ? std::string{"?"} : logs.back()) + ")");
}

bool node_checks::stop_node(node_runner& n, int sig, const std::string& when) {
    auto status = n.stop(sig);
    if (status && node_runner::expected_exit(sig, *status)) {
        return true;
    }
    return problem(when + ": " + article_ + n.name() + " "
                   + (status ? node_runner::describe_status(*status) : "did not exit") + " on "
                   + (sig == SIGTERM ? "SIGTERM" : "SIGKILL"));
}

} // namespace actormq::crash
