// SPDX-License-Identifier: Apache-2.0
#include "crash/node_runner.hpp"

#include <csignal>
#include <stdexcept>
#include <sys/wait.h>

namespace actormq::crash {

namespace {

/// `s` as a TOML basic string, with quotes and backslashes escaped.
std::string toml_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "\"";
}

} // namespace

std::string crash_node_config(const std::string& dir) {
    return "name = \"crash\"\n"
           "log-level = \"info\"\n"
           "journal-directory = "
           + toml_string(dir + "/journal")
           + "\n\n[acceptors.stomp]\n"
             "port = 0\n"
             "\n[security]\n"
             "allow-anonymous = false\n"
             "[security.users.guest]\n"
             "password = \"guest\"\n"
             "\n[address-settings.\"#\"]\n"
             "max-size-bytes = -1\n";
}

node_runner::node_runner(std::string dir,
                         traffic_control& ctl,
                         std::vector<std::string> sets,
                         node_limits limits)
    : dir_(std::move(dir)),
      ctl_(ctl),
      sets_(std::move(sets)),
      limits_(limits) {}

bool node_runner::start() {
    // The previous process, if any, has been stopped and reaped; dropping it frees its pid.
    node_.reset();
    test::node_placement where{dir_, "node-" + std::to_string(runs_) + ".log"};
    auto sets = sets_;
    if (port_ != 0) {
        sets.push_back("acceptors.stomp.port=" + std::to_string(port_));
    }
    ++runs_;
    try {
        node_ = std::make_unique<test::node_process>(where, crash_node_config(dir_), sets);
    } catch (const std::exception& e) {
        problem_ = e.what();
        return false;
    }
    if (!node_->wait_ready(test::in(limits_.ready))) {
        problem_ = "run " + std::to_string(runs_ - 1) + " did not become ready (see "
                   + node_->log_path() + ")";
        return false;
    }
    auto port = node_->port("stomp");
    if (port_ != 0 && port != port_) {
        problem_ = "run " + std::to_string(runs_ - 1) + " listens on port " + std::to_string(port)
                   + ", not " + std::to_string(port_);
        return false;
    }
    port_ = port;
    ctl_.port = port_;
    ctl_.node_up = true;
    return true;
}

std::optional<int> node_runner::stop(int sig) {
    ctl_.node_up = false;
    if (!node_) {
        return std::nullopt;
    }
    node_->kill(sig);
    return node_->wait_exit(test::in(limits_.exit));
}

bool node_runner::expected_exit(int sig, int status) {
    if (sig == SIGKILL) {
        return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string node_runner::describe_status(int status) {
    if (WIFEXITED(status)) {
        return "exit " + std::to_string(WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return "killed by signal " + std::to_string(WTERMSIG(status));
    }
    return "wait status " + std::to_string(status);
}

std::vector<std::string> node_runner::log_paths() const {
    std::vector<std::string> out;
    for (uint32_t r = 0; r < runs_; ++r) {
        out.push_back(dir_ + "/node-" + std::to_string(r) + ".log");
    }
    return out;
}

} // namespace actormq::crash
