// SPDX-License-Identifier: Apache-2.0
#include "apps/shell/child.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace actormq::shell {

namespace {

/// The pids of running children, for kill_all_children (a signal handler may call it, so it
/// is a fixed array of atomics rather than a container).
constexpr size_t children_max = 64;
std::array<std::atomic<pid_t>, children_max> live_pids{};

void register_pid(pid_t pid) {
    for (auto& slot : live_pids) {
        pid_t none = 0;
        if (slot.compare_exchange_strong(none, pid)) {
            return;
        }
    }
}

void unregister_pid(pid_t pid) {
    for (auto& slot : live_pids) {
        pid_t expected = pid;
        slot.compare_exchange_strong(expected, 0);
    }
}

/// The poll interval of the waits below; short, as starting and stopping are what a scenario
/// is made of.
constexpr auto poll_interval = std::chrono::milliseconds(10);

} // namespace

void kill_all_children() noexcept {
    for (auto& slot : live_pids) {
        pid_t pid = slot.exchange(0);
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            int status = 0;
            ::waitpid(pid, &status, 0);
        }
    }
}

child::child(std::string dir, std::vector<std::string> argv)
    : dir_(std::move(dir)),
      argv_(std::move(argv)) {}

std::string child::launch() {
    // A ports file left by an earlier run of this node would look like this run's.
    ::unlink((dir_ + "/ports.json").c_str());
    auto log_path = dir_ + "/node.log";
    int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        return "cannot open " + log_path + ": " + std::strerror(errno);
    }
    std::vector<char*> args;
    for (auto& a : argv_) {
        args.push_back(a.data());
    }
    args.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(log_fd);
        return std::string{"fork failed: "} + std::strerror(errno);
    }
    if (pid == 0) {
        // Only async-signal-safe calls between fork and exec: the shell has CAF threads.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) {
            ::_exit(127);
        }
        ::dup2(log_fd, STDOUT_FILENO);
        ::dup2(log_fd, STDERR_FILENO);
        int null_fd = ::open("/dev/null", O_RDONLY);
        if (null_fd >= 0) {
            ::dup2(null_fd, STDIN_FILENO);
        }
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(log_fd);
    pid_ = pid;
    register_pid(pid);
    return "";
}

bool child::reap_nowait() {
    if (status_ || pid_ <= 0) {
        return true;
    }
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        status_ = status;
        unregister_pid(pid_);
        return true;
    }
    return false;
}

bool child::running() {
    return !reap_nowait();
}

void child::signal(int sig) {
    if (running()) {
        ::kill(pid_, sig);
    }
}

bool child::wait_exit(clock_type::time_point deadline) {
    while (running()) {
        if (clock_type::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(poll_interval);
    }
    return true;
}

namespace {

/// The state letter of /proc/PID/stat ('T' stopped by a signal, 'S' sleeping, ...), or 0.
char proc_state(pid_t pid) {
    std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
    std::string text;
    std::getline(in, text);
    // "PID (COMM) STATE ...": COMM may hold blanks and parentheses, so look after the last ')'.
    auto close = text.rfind(')');
    return close != std::string::npos && close + 2 < text.size() ? text[close + 2] : '\0';
}

} // namespace

bool child::wait_stopped(bool stopped, clock_type::time_point deadline) {
    while (running()) {
        char state = proc_state(pid_);
        if ((state == 'T') == stopped) {
            return true;
        }
        if (clock_type::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(poll_interval);
    }
    return false;
}

std::string child::exit_text() const {
    if (!status_) {
        return "";
    }
    int s = *status_;
    if (WIFEXITED(s)) {
        return "exit code " + std::to_string(WEXITSTATUS(s));
    }
    if (WIFSIGNALED(s)) {
        const char* name = sigabbrev_np(WTERMSIG(s));
        return std::string{"killed by SIG"} + (name != nullptr ? name : "?");
    }
    return "status " + std::to_string(s);
}

bool child::wait_ports(clock_type::time_point deadline, std::string& error) {
    auto path = dir_ + "/ports.json";
    for (;;) {
        std::ifstream in{path};
        if (in) {
            auto j = nlohmann::json::parse(in, nullptr, false);
            if (j.is_object()) {
                ports_.clear();
                for (const auto& [name, port] : j.items()) {
                    if (port.is_number_unsigned()) {
                        ports_[name] = port.get<uint16_t>();
                    }
                }
                return true;
            }
        }
        if (!running()) {
            error = "the node exited (" + exit_text() + ") before writing its ports file";
            return false;
        }
        if (clock_type::now() >= deadline) {
            error = "no ports file " + path + " before the deadline";
            return false;
        }
        std::this_thread::sleep_for(poll_interval);
    }
}

uint16_t child::port(const std::string& name) const {
    auto it = ports_.find(name);
    return it != ports_.end() ? it->second : 0;
}

uint16_t child::stomp_port() const {
    if (auto p = port("stomp"); p != 0) {
        return p;
    }
    for (const auto& [name, port] : ports_) {
        if (name != "cluster" && name != "web") {
            return port;
        }
    }
    return 0;
}

uint64_t child::log_count(const std::string& text) const {
    std::ifstream in{dir_ + "/node.log"};
    uint64_t n = 0;
    std::string line;
    while (std::getline(in, line)) {
        n += line.find(text) != std::string::npos ? 1 : 0;
    }
    return n;
}

std::string child::log_tail(size_t lines) const {
    std::ifstream in{dir_ + "/node.log"};
    std::deque<std::string> tail;
    std::string line;
    while (std::getline(in, line)) {
        tail.push_back(std::move(line));
        if (tail.size() > lines) {
            tail.pop_front();
        }
    }
    std::string out;
    for (const auto& l : tail) {
        out += l + "\n";
    }
    return out;
}

} // namespace actormq::shell
