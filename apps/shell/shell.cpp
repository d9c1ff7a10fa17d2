// SPDX-License-Identifier: Apache-2.0
#include "apps/shell/shell.hpp"

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <netinet/in.h>
#include <random>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace actormq::shell {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds start_timeout{30000};
constexpr milliseconds stop_timeout{30000};
constexpr milliseconds kill_timeout{10000};
constexpr milliseconds login_timeout{5000};
constexpr milliseconds status_timeout{2000};
/// How soon `start` asks again a node that said its management is not ready yet.
constexpr milliseconds login_retry_interval{20};

/// The deadline of a command: its --timeout, or `fallback`.
clock_type::time_point deadline_of(const invocation& inv, milliseconds fallback) {
    auto text = inv.value("timeout");
    auto ms = text ? parse_duration_ms(*text) : std::nullopt;
    return clock_type::now() + (ms ? milliseconds(*ms) : fallback);
}

bool valid_name(const std::string& name) {
    return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
    });
}

std::string make_tmp_dir() {
    std::string pattern = (fs::temp_directory_path() / "actormq-shell-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        return "";
    }
    return pattern;
}

/// A free loopback port below the kernel's ephemeral range, or 0 when none is found. The OS's
/// own choice for port 0 comes from that range, where every process's outgoing connections
/// (and other tests' listeners) take their local ports too, so a node killed and restarted on
/// the port it had could find it taken meanwhile; below the range only an explicit bind takes
/// a port.
uint16_t pick_restartable_port() {
    unsigned low = 32768;
    unsigned high = 60999;
    if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
        if (std::fscanf(f, "%u %u", &low, &high) != 2) {
            low = 32768;
        }
        std::fclose(f);
    }
    constexpr unsigned first = 10000;
    if (low <= first + 1000) {
        return 0;
    }
    static std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<unsigned> pick(first, low - 1);
    for (int attempt = 0; attempt < 50; ++attempt) {
        auto port = static_cast<uint16_t>(pick(rng));
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            return 0;
        }
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(fd);
        if (free) {
            return port;
        }
    }
    return 0;
}

/// `sets` with each "KEY.port=0" given a port from pick_restartable_port() (left 0 when none
/// is found): the node still reports its ports in its ports file as before.
std::vector<std::string> pick_ports(std::vector<std::string> sets) {
    for (auto& s : sets) {
        auto eq = s.find('=');
        if (eq == std::string::npos || s.substr(eq + 1) != "0") {
            continue;
        }
        auto key = s.substr(0, eq);
        bool is_port =
            key == "port" || (key.size() > 5 && key.compare(key.size() - 5, 5, ".port") == 0);
        if (!is_port) {
            continue;
        }
        if (auto port = pick_restartable_port(); port != 0) {
            s = key + "=" + std::to_string(port);
        }
    }
    return sets;
}

/// The --set overrides that pin a restarted node to the ports it had.
std::vector<std::string> port_pins(const child& c) {
    std::vector<std::string> out;
    for (const auto& [name, port] : c.ports()) {
        auto p = std::to_string(port);
        if (name == "cluster" || name == "web") {
            out.push_back(name + ".port=" + p);
        } else {
            out.push_back("acceptors." + name + ".port=" + p);
        }
    }
    return out;
}

} // namespace

shell::shell(shell_options opts) : opts_(std::move(opts)), tmp_(make_tmp_dir()) {}

shell::~shell() {
    kill_all_children();
    nodes_.clear();
    if (!tmp_.empty() && !opts_.keep_tmp) {
        std::error_code ignored;
        fs::remove_all(tmp_, ignored);
    } else if (!tmp_.empty()) {
        std::fprintf(stderr, "kept %s\n", tmp_.c_str());
    }
}

management& shell::mgmt() {
    if (!mgmt_) {
        mgmt_ = std::make_unique<management>();
    }
    return *mgmt_;
}

std::optional<std::string> shell::variable(const std::string& name) const {
    if (name == "TMP") {
        return tmp_;
    }
    if (name == "SCRIPT_DIR") {
        return opts_.base_dir;
    }
    if (auto dot = name.find('.'); dot != std::string::npos) {
        auto it = nodes_.find(name.substr(0, dot));
        auto what = name.substr(dot + 1);
        if (it == nodes_.end()) {
            return std::nullopt;
        }
        const auto& e = it->second;
        if (what == "host") {
            return e.host;
        }
        if (what == "pid" && e.proc) {
            return std::to_string(e.proc->pid());
        }
        if (what == "dir" && e.proc) {
            return e.proc->dir();
        }
        if (e.proc && e.proc->port(what) != 0) {
            return std::to_string(e.proc->port(what));
        }
        return std::nullopt;
    }
    const char* env = std::getenv(name.c_str());
    return env != nullptr ? std::optional<std::string>{env} : std::nullopt;
}

std::string
shell::expand_all(const invocation& inv, std::vector<std::string>& words, invocation& expanded) {
    std::string error;
    auto lookup = [this](const std::string& n) {
        return variable(n);
    };
    expanded = inv;
    expanded.options.clear();
    words.clear();
    for (const auto& w : inv.words) {
        std::string out;
        if (!expand(w, lookup, out, error)) {
            return error;
        }
        words.push_back(std::move(out));
    }
    for (const auto& [k, v] : inv.options) {
        std::string out;
        if (!expand(v, lookup, out, error)) {
            return error;
        }
        expanded.options.emplace(k, std::move(out));
    }
    expanded.words = words;
    return "";
}

std::string shell::run(const invocation& inv) {
    std::vector<std::string> w;
    invocation x;
    if (auto err = expand_all(inv, w, x); !err.empty()) {
        return err;
    }
    if (auto t = x.value("timeout"); t && !parse_duration_ms(*t)) {
        return "bad --timeout '" + *t + "' (e.g. 10s, 500ms, 2m)\nusage: " + inv.spec->usage;
    }
    using handler = std::string (shell::*)(const std::vector<std::string>&, const invocation&);
    static const std::map<std::string, handler> handlers{
        {"start", &shell::cmd_start},         {"restart", &shell::cmd_restart},
        {"connect", &shell::cmd_connect},     {"stop", &shell::cmd_stop},
        {"kill", &shell::cmd_kill},           {"login", &shell::cmd_login},
        {"freeze", &shell::cmd_freeze},       {"thaw", &shell::cmd_thaw},
        {"partition", &shell::cmd_partition}, {"heal", &shell::cmd_heal},
        {"links", &shell::cmd_links},         {"verdict", &shell::cmd_verdict},
        {"stomp-login", &shell::cmd_login},   {"nodes", &shell::cmd_nodes},
        {"queues", &shell::cmd_queues},       {"events", &shell::cmd_events},
        {"status", &shell::cmd_status},       {"send", &shell::cmd_send},
        {"receive", &shell::cmd_receive},     {"wait", &shell::cmd_wait},
        {"assert", &shell::cmd_assert},       {"log", &shell::cmd_log},
        {"help", &shell::cmd_help},           {"echo", &shell::cmd_echo},
        {"quit", &shell::cmd_quit},
    };
    // Every command of the table in script.cpp has a handler here.
    return (this->*handlers.at(inv.spec->name))(w, x);
}

std::string shell::cmd_echo(const std::vector<std::string>& w, const invocation&) {
    std::string line;
    for (const auto& word : w) {
        line += (line.empty() ? "" : " ") + word;
    }
    std::printf("%s\n", line.c_str());
    return "";
}

std::string shell::cmd_quit(const std::vector<std::string>&, const invocation&) {
    quit_ = true;
    return "";
}

node_entry* shell::find(const std::string& name, std::string& error) {
    auto it = nodes_.find(name);
    if (it == nodes_.end()) {
        error = "no node called '" + name + "' (see: nodes)";
        return nullptr;
    }
    return &it->second;
}

std::string shell::cmd_login(const std::vector<std::string>& w, const invocation& inv) {
    if (inv.spec->name == "login") {
        opts_.cluster_user = w[0];
        opts_.cluster_password = w[1];
        // New credentials: every node logs in again on its next use.
        for (auto& [name, e] : nodes_) {
            e.status_actor = nullptr;
        }
        std::printf("cluster credentials set (user %s)\n", w[0].c_str());
    } else {
        opts_.stomp_login = w[0];
        opts_.stomp_passcode = w[1];
        std::printf("STOMP login set (user %s)\n", w[0].c_str());
    }
    return "";
}

std::string shell::ensure_management(node_entry& e, bool* not_ready) {
    if (e.status_actor) {
        return "";
    }
    if (e.cluster_port == 0) {
        return e.name
               + " has no cluster port (its config has no [cluster] table), so it "
                 "cannot be managed";
    }
    if (opts_.cluster_user.empty() || opts_.cluster_password.empty()) {
        return "no cluster credentials: give --user/--password, set ACTORMQ_CLUSTER_USER and "
               "ACTORMQ_CLUSTER_PASSWORD, or run: login USER PASSWORD";
    }
    auto r = mgmt().open(e.host, e.cluster_port, opts_.cluster_user, opts_.cluster_password,
                         login_timeout);
    if (!r) {
        if (not_ready != nullptr) {
            *not_ready = r.not_ready;
        }
        return "management of " + e.name + ": " + r.error;
    }
    e.status_actor = std::move(r.value);
    return "";
}

outcome<node_status> shell::fetch_status(node_entry& e) {
    outcome<node_status> out;
    if (e.proc && !e.proc->running()) {
        e.status_actor = nullptr;
        out.error = e.name + " is not running (" + e.proc->exit_text() + ")";
        return out;
    }
    if (out.error = ensure_management(e); !out.error.empty()) {
        return out;
    }
    auto json = mgmt().status(e.status_actor, status_timeout);
    if (!json) {
        // Requests to a dead node's proxy never fail fast (caf-notes §3): log in again next time.
        e.status_actor = nullptr;
        out.error = "status of " + e.name + ": " + json.error;
        return out;
    }
    auto parsed = parse_status(json.value, out.error);
    if (parsed) {
        out.value = std::move(*parsed);
    }
    return out;
}

std::string
shell::launch(node_entry& e, const std::vector<std::string>& extra_sets, const invocation& inv) {
    auto dir = tmp_ + "/" + e.name;
    std::error_code ec;
    fs::create_directories(dir, ec);
    std::vector<std::string> argv{opts_.node_binary, "--config", e.config, "--set",
                                  "ports-file=" + dir + "/ports.json"};
    std::string links;
    for (const auto& s : route_members(e, links)) {
        argv.insert(argv.end(), {"--set", s});
    }
    for (const auto& s : extra_sets) {
        argv.insert(argv.end(), {"--set", s});
    }
    e.status_actor = nullptr;
    e.frozen = false;
    e.proc = std::make_unique<child>(dir, argv);
    if (auto err = e.proc->launch(); !err.empty()) {
        return err;
    }
    std::string error;
    if (!e.proc->wait_ports(deadline_of(inv, start_timeout), error)) {
        return e.name + ": " + error + "\nlast lines of " + dir + "/node.log:\n"
               + e.proc->log_tail(15);
    }
    e.cluster_port = e.proc->port("cluster");
    e.stomp_port = e.proc->stomp_port();
    e.native_port = e.proc->port("native");
    std::string ports;
    for (const auto& [name, port] : e.proc->ports()) {
        ports += " " + name + "=" + std::to_string(port);
    }
    std::printf("started %s (pid %d):%s\n%s", e.name.c_str(), static_cast<int>(e.proc->pid()),
                ports.c_str(), links.c_str());
    if (e.cluster_port == 0) {
        return "";
    }
    if (opts_.cluster_user.empty() || opts_.cluster_password.empty()) {
        std::printf("note: %s not managed: no cluster credentials (login USER PASSWORD)\n",
                    e.name.c_str());
        return "";
    }
    // The ports file can come a moment before the node has made its management ready (it
    // answers management_offline then): ask again until the start's deadline.
    auto deadline = deadline_of(inv, start_timeout);
    for (;;) {
        bool not_ready = false;
        auto err = ensure_management(e, &not_ready);
        if (err.empty() || !not_ready || clock_type::now() >= deadline || !e.proc->running()) {
            return err;
        }
        std::this_thread::sleep_for(login_retry_interval);
    }
}

std::string shell::cmd_start(const std::vector<std::string>& w, const invocation& inv) {
    if (!valid_name(w[0])) {
        return "bad node name '" + w[0] + "' (letters, digits, - and _)\nusage: " + inv.spec->usage;
    }
    auto it = nodes_.find(w[0]);
    if (it != nodes_.end() && (!it->second.proc || it->second.proc->running())) {
        return w[0] + " already exists; stop or kill it first, or pick another name";
    }
    fs::path config{w[1]};
    if (config.is_relative()) {
        config = fs::path{opts_.base_dir} / config;
    }
    if (!fs::is_regular_file(config)) {
        return "no config file " + config.string();
    }
    if (::access(opts_.node_binary.c_str(), X_OK) != 0) {
        return "cannot run " + opts_.node_binary + " (set ACTORMQ_NODE to the actormq-node binary)";
    }
    node_entry& e = nodes_[w[0]];
    e = node_entry{};
    e.name = w[0];
    e.config = fs::absolute(config).lexically_normal().string();
    e.sets = pick_ports(inv.values("set"));
    e.no_proxy = inv.has("no-proxy");
    return launch(e, {}, inv);
}

std::string shell::cmd_restart(const std::vector<std::string>& w, const invocation& inv) {
    std::string error;
    auto* e = find(w[0], error);
    if (e == nullptr) {
        return error;
    }
    if (!e->proc) {
        return w[0] + " was not started by this shell";
    }
    if (e->proc->running()) {
        return w[0] + " is still running (pid " + std::to_string(e->proc->pid()) + ")";
    }
    return launch(*e, port_pins(*e->proc), inv);
}

std::string shell::cmd_connect(const std::vector<std::string>& w, const invocation& inv) {
    if (!valid_name(w[0])) {
        return "bad node name '" + w[0] + "'\nusage: " + inv.spec->usage;
    }
    auto colon = w[1].rfind(':');
    auto port = colon == std::string::npos ? std::nullopt : parse_count(w[1].substr(colon + 1));
    if (!port || *port == 0 || *port > 65535) {
        return "bad address '" + w[1] + "' (HOST:PORT)\nusage: " + inv.spec->usage;
    }
    unsigned long long stomp = 0;
    if (auto text = inv.value("stomp")) {
        auto parsed = parse_count(*text);
        if (!parsed || *parsed > 65535) {
            return "bad --stomp port '" + *text + "'\nusage: " + inv.spec->usage;
        }
        stomp = *parsed;
    }
    node_entry e;
    e.name = w[0];
    e.host = w[1].substr(0, colon);
    e.cluster_port = static_cast<uint16_t>(*port);
    e.stomp_port = static_cast<uint16_t>(stomp);
    if (auto err = ensure_management(e); !err.empty()) {
        return err;
    }
    std::printf("connected to %s at %s\n", e.name.c_str(), w[1].c_str());
    nodes_[w[0]] = std::move(e);
    return "";
}

node_entry* shell::running_child(const std::string& name, std::string& error) {
    auto* e = find(name, error);
    if (e != nullptr && (!e->proc || !e->proc->running())) {
        error = name + " is not a running child of this shell";
        return nullptr;
    }
    return e;
}

std::string shell::cmd_stop(const std::vector<std::string>& w, const invocation& inv) {
    std::string error;
    auto* e = running_child(w[0], error);
    if (e == nullptr) {
        return error;
    }
    e->status_actor = nullptr;
    e->proc->signal(SIGTERM);
    if (e->frozen) {
        // A stopped process handles SIGTERM only once it runs again.
        e->proc->signal(SIGCONT);
        e->frozen = false;
    }
    if (!e->proc->wait_exit(deadline_of(inv, stop_timeout))) {
        return w[0] + " did not exit after SIGTERM before the deadline (still running, pid "
               + std::to_string(e->proc->pid()) + ")";
    }
    std::printf("stopped %s (%s)\n", w[0].c_str(), e->proc->exit_text().c_str());
    return "";
}

std::string shell::cmd_kill(const std::vector<std::string>& w, const invocation&) {
    std::string error;
    auto* e = running_child(w[0], error);
    if (e == nullptr) {
        return error;
    }
    e->status_actor = nullptr;
    e->frozen = false;
    e->proc->signal(SIGKILL);
    if (!e->proc->wait_exit(clock_type::now() + kill_timeout)) {
        return w[0] + " did not exit after SIGKILL";
    }
    std::printf("killed %s (%s)\n", w[0].c_str(), e->proc->exit_text().c_str());
    return "";
}

} // namespace actormq::shell
