// SPDX-License-Identifier: Apache-2.0
#include "crash/node_runner.hpp"

#include "support/stomp_client.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace actormq::crash {

namespace {

/// How long a serving probe waits for CONNECTED, and how often it tries again.
constexpr auto probe_wait = std::chrono::milliseconds(2000);
constexpr auto probe_poll = std::chrono::milliseconds(2);

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

/// The acceptor, users and address settings every crash node shares.
constexpr const char* common_tables = "\n[acceptors.stomp]\n"
                                      "port = 0\n"
                                      "\n[security]\n"
                                      "allow-anonymous = false\n"
                                      "[security.users.guest]\n"
                                      "password = \"guest\"\n"
                                      "\n[address-settings.\"#\"]\n"
                                      "max-size-bytes = -1\n";

} // namespace

std::string crash_node_config(const std::string& dir) {
    return "name = \"crash\"\n"
           "log-level = \"info\"\n"
           "journal-directory = "
           + toml_string(dir + "/journal")
           // The page files go to the default, "paging" inside the journal directory: each node
           // has its own, and a colocated ring node may not name one (docs/configuration.md).
           + "\n" + common_tables;
}

const char* to_string(pair_role role) {
    return role == pair_role::primary ? "primary" : "backup";
}

std::string pair_node_config(pair_role role,
                             const std::string& journal_dir,
                             const std::vector<std::string>& members,
                             bool native_acceptor) {
    std::string list;
    for (const auto& m : members) {
        list += (list.empty() ? "" : ", ") + toml_string(m);
    }
    std::string ha = role == pair_role::primary ? "\n[ha-policy.shared-store.primary]\n"
                                                  "failover-on-shutdown = false\n"
                                                  "lock-poll-interval-ms = 10\n"
                                                : "\n[ha-policy.shared-store.backup]\n"
                                                  "failover-on-shutdown = false\n"
                                                  "allow-failback = true\n"
                                                  "restart-backup = true\n"
                                                  "lock-poll-interval-ms = 10\n";
    return "name = " + toml_string(to_string(role))
           + "\n"
             "log-level = \"info\"\n"
             "cluster-user = \"actormq-cluster\"\n"
             "cluster-password = \"crash-pair\"\n"
             "journal-directory = "
           + toml_string(journal_dir)
           + "\n"
           // Shared like the journal: the backup reads the live's page files at failover.
           + "paging-directory = " + toml_string(journal_dir + "-paging") + "\n" + common_tables
           + ha
           + "\n[cluster]\n"
             "host = \"127.0.0.1\"\n"
             "port = 0\n"
             "members = ["
           + list + "]\n"
           + (native_acceptor ? "\n[acceptors.native]\n"
                                "protocol = \"native\"\n"
                                "host = \"127.0.0.1\"\n"
                                "port = 0\n"
                              : "");
}

node_runner::node_runner(node_spec spec, traffic_control& ctl, node_limits limits)
    : spec_(std::move(spec)),
      ctl_(ctl),
      limits_(limits) {}

node_runner::node_runner(std::string dir,
                         traffic_control& ctl,
                         std::vector<std::string> sets,
                         node_limits limits)
    : ctl_(ctl),
      limits_(limits) {
    spec_.config = [dir] {
        return crash_node_config(dir);
    };
    spec_.dir = std::move(dir);
    spec_.sets = std::move(sets);
}

bool node_runner::start() {
    // The previous process, if any, has been stopped and reaped; dropping it frees its pid.
    node_.reset();
    auto run = std::to_string(runs_);
    test::node_placement where{spec_.dir, spec_.log_prefix + "-" + run + ".log"};
    auto sets = spec_.sets;
    if (port_ != 0) {
        sets.push_back("acceptors.stomp.port=" + std::to_string(port_));
    }
    if (cluster_port_ != 0) {
        sets.push_back("cluster.port=" + std::to_string(cluster_port_));
    }
    if (native_port_ != 0) {
        sets.push_back("acceptors.native.port=" + std::to_string(native_port_));
    }
    ++runs_;
    try {
        node_ = std::make_unique<test::node_process>(where, spec_.config(), sets);
    } catch (const std::exception& e) {
        problem_ = e.what();
        return false;
    }
    if (!node_->wait_ready(test::in(limits_.ready))) {
        problem_ =
            spec_.log_prefix + " run " + run + " did not start (see " + node_->log_path() + ")";
        return false;
    }
    auto port = node_->port("stomp");
    auto cluster_port = node_->port("cluster");
    auto native_port = node_->port("native");
    if (native_port_ != 0 && native_port != native_port_) {
        problem_ = spec_.log_prefix + " run " + run + " bound native " + std::to_string(native_port)
                   + ", not " + std::to_string(native_port_);
        return false;
    }
    if ((port_ != 0 && port != port_) || (cluster_port_ != 0 && cluster_port != cluster_port_)) {
        problem_ = spec_.log_prefix + " run " + run + " bound stomp " + std::to_string(port)
                   + " and cluster " + std::to_string(cluster_port) + ", not "
                   + std::to_string(port_) + " and " + std::to_string(cluster_port_);
        return false;
    }
    port_ = port;
    cluster_port_ = cluster_port;
    native_port_ = native_port;
    auto& slot = ctl_.hosts[spec_.host];
    slot.port = port_;
    slot.native_port = native_port_;
    slot.up = true;
    return true;
}

bool node_runner::serving(test::deadline_t deadline) const {
    return test::wait_until(
        deadline,
        [&] {
            if (!node_ || !ctl_.hosts[spec_.host].up) {
                return false;
            }
            test::stomp_client probe;
            if (!probe.connect_tcp(port_)) {
                return false;
            }
            auto reply = probe.connect_stomp("guest", "guest", "1.2", "0,0", test::in(probe_wait));
            return reply.cmd == stomp::command::connected;
        },
        probe_poll);
}

bool node_runner::refuses_connections() const {
    test::stomp_client probe;
    return !probe.connect_tcp(port_);
}

std::string node_runner::log_text() const {
    return node_ ? node_->log_text() : std::string{};
}

size_t count_in(const std::string& log, const std::string& text) {
    if (text.empty()) {
        return 0;
    }
    size_t n = 0;
    for (auto at = log.find(text); at != std::string::npos; at = log.find(text, at + text.size())) {
        ++n;
    }
    return n;
}

size_t node_runner::log_count(const std::string& text) const {
    return count_in(log_text(), text);
}

void node_runner::set_reachable(bool reachable) {
    ctl_.hosts[spec_.host].up = reachable && node_ && node_->running();
}

std::optional<int> node_runner::stop(int sig) {
    ctl_.hosts[spec_.host].up = false;
    if (!node_) {
        return std::nullopt;
    }
    node_->kill(sig);
    auto status = node_->wait_exit(test::in(limits_.exit));
    if (!status && sig == SIGTERM) {
        dump_stacks();
    }
    return status;
}

void node_runner::dump_stacks() {
    // A stop that hangs is a bug to find, not to wait out: keep every thread's stack (gdb, when
    // installed) beside the node's log before the harness kills it.
    auto logs = log_paths();
    if (!node_ || logs.empty() || ::access("/usr/bin/gdb", X_OK) != 0) {
        return;
    }
    auto out = logs.back() + ".stacks.txt";
    auto cmd = "/usr/bin/gdb -p " + std::to_string(node_->pid())
               + " -batch -ex 'thread apply all bt' > '" + out + "' 2>&1";
    if (std::system(cmd.c_str()) == 0) {
        std::fprintf(stderr, "stacks of %s (did not exit on SIGTERM): %s\n",
                     spec_.log_prefix.c_str(), out.c_str());
    }
}

void node_runner::signal(int sig) {
    if (node_) {
        node_->kill(sig);
    }
}

std::optional<int> node_runner::exited() {
    if (!node_ || node_->running()) {
        return std::nullopt;
    }
    // Reaped already: this returns the stored status without waiting.
    return node_->wait_exit(test::in(std::chrono::milliseconds(0)));
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
        out.push_back(spec_.dir + "/" + spec_.log_prefix + "-" + std::to_string(r) + ".log");
    }
    return out;
}

} // namespace actormq::crash
