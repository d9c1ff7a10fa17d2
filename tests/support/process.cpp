// SPDX-License-Identifier: Apache-2.0
#include "support/process.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace actormq::test {

namespace {

/// How often wait_ready and wait_exit look again.
constexpr auto poll_interval = std::chrono::milliseconds(2);

constexpr const char* node_binary_unset =
    "ACTORMQ_NODE is not set: it must name the actormq-node binary "
    "(ctest sets it; run the process tests through ctest)";

/// The binary named by ACTORMQ_NODE, or nullptr when the variable is unset or empty.
const char* node_binary() {
    const char* binary = std::getenv("ACTORMQ_NODE");
    return binary != nullptr && *binary != '\0' ? binary : nullptr;
}

std::string make_temp_dir() {
    std::string pattern = "/tmp/actormq-test-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
        throw std::runtime_error("mkdtemp failed: " + std::string{std::strerror(errno)});
    }
    return pattern;
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out{path, std::ios::trunc | std::ios::binary};
    out << text;
    if (!out) {
        throw std::runtime_error("cannot write " + path);
    }
}

/// In the child between fork and exec: only async-signal-safe calls from here on.
[[noreturn]] void
exec_child(const char* log_path, const char* binary, char* const* argv, pid_t parent) {
    // The node dies with the test process even if the test crashes before its destructors.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
        ::_exit(127);
    }
    int log = ::open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int null = ::open("/dev/null", O_RDONLY);
    if (log < 0 || null < 0 || ::dup2(null, 0) < 0 || ::dup2(log, 1) < 0 || ::dup2(log, 2) < 0) {
        ::_exit(127);
    }
    ::execv(binary, argv);
    static const char msg[] = "node_process: execv failed\n";
    [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
    ::_exit(127);
}

} // namespace

node_process::node_process(const std::string& config_toml,
                           std::vector<std::string> extra_sets,
                           node_mode mode) {
    if (node_binary() == nullptr) {
        throw std::runtime_error(node_binary_unset);
    }
    dir_ = make_temp_dir();
    log_path_ = dir_ + "/node.log";
    launch(config_toml, std::move(extra_sets), mode);
}

node_process::node_process(const node_placement& where,
                           const std::string& config_toml,
                           std::vector<std::string> extra_sets)
    : dir_(where.dir), log_path_(where.dir + "/" + where.log_name), owns_dir_(false) {
    if (node_binary() == nullptr) {
        throw std::runtime_error(node_binary_unset);
    }
    if (!std::filesystem::is_directory(dir_)) {
        throw std::runtime_error("node_process: no directory " + dir_);
    }
    std::error_code ignored;
    std::filesystem::remove(dir_ + "/ports.json", ignored);
    launch(config_toml, std::move(extra_sets), node_mode::serve);
}

void node_process::launch(const std::string& config_toml,
                          std::vector<std::string> extra_sets,
                          node_mode mode) {
    const char* binary = node_binary();
    auto config_path = dir_ + "/node.toml";
    write_file(config_path, config_toml);
    std::vector<std::string> args{binary, mode == node_mode::serve ? "--config" : "--check-config",
                                  config_path, "--set", "ports-file=" + dir_ + "/ports.json",
                                  // Each node journals in its own directory (extra sets may
                                  // still point it elsewhere).
                                  "--set", "journal-directory=" + dir_ + "/journal",
                                  // Tests run nodes side by side: no fixed web port.
                                  "--set", "web.port=0"};
    for (auto& s : extra_sets) {
        args.emplace_back("--set");
        args.push_back(std::move(s));
    }
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) {
        throw std::runtime_error("fork failed: " + std::string{std::strerror(errno)});
    }
    if (pid_ == 0) {
        exec_child(log_path_.c_str(), binary, argv.data(), parent);
    }
}

node_process::~node_process() {
    if (pid_ > 0 && !status_) {
        ::kill(pid_, SIGKILL);
        int st = 0;
        while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
        }
    }
    if (!owns_dir_) {
        return;
    }
    if (std::getenv("ACTORMQ_KEEP_TMP") != nullptr) {
        std::fprintf(stderr, "node_process: kept %s\n", dir_.c_str());
        return;
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

bool node_process::reap_nowait() {
    if (status_) {
        return true;
    }
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
        status_ = st;
        return true;
    }
    return false;
}

bool node_process::running() {
    return !reap_nowait();
}

bool node_process::wait_ready(deadline_t deadline) {
    auto path = dir_ + "/ports.json";
    bool exited = false;
    bool ok = wait_until(
        deadline,
        [&] {
            if (reap_nowait()) {
                exited = true;
                return true;
            }
            auto text = read_file(path);
            auto j = nlohmann::json::parse(text, nullptr, false);
            if (j.is_discarded() || !j.is_object() || j.empty()) {
                return false;
            }
            for (const auto& [name, port] : j.items()) {
                if (!port.is_number_unsigned()) {
                    return false;
                }
                ports_[name] = port.get<uint16_t>();
            }
            return true;
        },
        poll_interval);
    if (!ok || exited) {
        report(exited ? "node exited before it was ready" : "node not ready by the deadline");
        return false;
    }
    return true;
}

uint16_t node_process::port(const std::string& name) const {
    auto i = ports_.find(name);
    return i != ports_.end() ? i->second : 0;
}

void node_process::kill(int sig) {
    if (!reap_nowait()) {
        ::kill(pid_, sig);
    }
}

std::optional<int> node_process::wait_exit(deadline_t deadline) {
    if (wait_until(
            deadline, [&] { return reap_nowait(); }, poll_interval)) {
        return status_;
    }
    report("node did not exit by the deadline");
    return std::nullopt;
}

std::string node_process::log_text() const {
    return read_file(log_path_);
}

std::string node_process::log_tail(size_t lines) const {
    auto text = log_text();
    size_t pos = text.size();
    // Skip a final newline so it does not count as an empty last line.
    if (pos > 0 && text[pos - 1] == '\n') {
        --pos;
    }
    for (size_t n = 0; n < lines && pos > 0; ++n) {
        auto nl = text.rfind('\n', pos - 1);
        if (nl == std::string::npos) {
            pos = 0;
            break;
        }
        pos = nl;
    }
    return text.substr(pos == 0 ? 0 : pos + 1);
}

void node_process::report(const std::string& what) const {
    std::fprintf(stderr, "node_process: %s (pid %d); tail of %s:\n%s\n", what.c_str(),
                 static_cast<int>(pid_), log_path_.c_str(), log_tail().c_str());
}

std::string read_file(const std::string& path) {
    std::ifstream in{path, std::ios::binary};
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace actormq::test
