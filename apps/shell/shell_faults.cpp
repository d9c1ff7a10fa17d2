// SPDX-License-Identifier: Apache-2.0
// The shell's commands that break things on purpose and judge the outcome (docs/shell.md):
// freeze / thaw (SIGSTOP / SIGCONT), partition / heal / links (cluster links through the
// shell's proxies) and verdict (lost, duplicated and unexpected messages).
#include "apps/shell/shell.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <csignal>
#include <cstdio>

namespace actormq::shell {

using std::chrono::milliseconds;

namespace {

/// How long freeze and thaw wait for the kernel to stop or resume the process.
constexpr milliseconds signal_timeout{5000};

/// The key of a --set override ("cluster.members" of "cluster.members = [...]").
std::string set_key(const std::string& set) {
    auto eq = set.find('=');
    auto key = set.substr(0, eq);
    key.erase(key.find_last_not_of(" \t") + 1);
    key.erase(0, key.find_first_not_of(" \t"));
    return key;
}

/// The strings of a TOML array given as override text ("['a', 'b']"); nullopt when it is not
/// one (the node reports that itself).
std::optional<std::vector<std::string>> parse_members(const std::string& value) {
    try {
        auto table = toml::parse("v = " + value);
        const auto* array = table["v"].as_array();
        if (array == nullptr) {
            return std::nullopt;
        }
        std::vector<std::string> out;
        for (const auto& item : *array) {
            if (const auto* s = item.as_string()) {
                out.push_back(s->get());
            }
        }
        return out;
    } catch (const toml::parse_error&) {
        return std::nullopt;
    }
}

/// `[cluster] members` of the config file, when it has any.
std::optional<std::vector<std::string>> file_members(const std::string& path) {
    try {
        auto table = toml::parse_file(path);
        const auto* array = table["cluster"]["members"].as_array();
        if (array == nullptr) {
            return std::nullopt;
        }
        std::vector<std::string> out;
        for (const auto& item : *array) {
            if (const auto* s = item.as_string()) {
                out.push_back(s->get());
            }
        }
        return out;
    } catch (const toml::parse_error&) {
        // The node refuses the file with a better message than we could give.
        return std::nullopt;
    }
}

/// A TOML array of strings.
std::string toml_array(const std::vector<std::string>& items) {
    std::string out = "[";
    for (const auto& i : items) {
        out += (out.size() > 1 ? ", \"" : "\"") + i + "\"";
    }
    return out + "]";
}

bool is_loopback(const std::string& host) {
    return host == "127.0.0.1" || host == "localhost";
}

} // namespace

cluster_link& shell::link(const std::string& from, uint16_t port) {
    for (auto& l : links_) {
        if (l.from == from && l.target_port == port) {
            return l;
        }
    }
    cluster_link l;
    l.from = from;
    l.target_port = port;
    l.proxy = std::make_unique<partition_proxy>(port);
    links_.push_back(std::move(l));
    return links_.back();
}

std::string shell::link_target(const cluster_link& l) const {
    for (const auto& [name, e] : nodes_) {
        if (name != l.from && e.cluster_port == l.target_port) {
            return name;
        }
    }
    return "";
}

std::vector<std::string> shell::route_members(const node_entry& e, std::string& report) {
    std::vector<std::string> sets = e.sets;
    if (e.no_proxy) {
        return sets;
    }
    // The members the node will use: the last --set of cluster.members, else the file's.
    std::optional<std::vector<std::string>> members;
    auto given = std::find_if(sets.rbegin(), sets.rend(),
                              [](const std::string& s) { return set_key(s) == "cluster.members"; });
    if (given != sets.rend()) {
        members = parse_members(given->substr(given->find('=') + 1));
    } else {
        members = file_members(e.config);
    }
    if (!members) {
        return sets;
    }
    bool changed = false;
    for (auto& address : *members) {
        auto colon = address.rfind(':');
        auto port =
            colon == std::string::npos ? std::nullopt : parse_count(address.substr(colon + 1));
        // Only members on this machine; never the node itself (restart: its pinned port).
        if (!port || *port == 0 || *port > 65535 || !is_loopback(address.substr(0, colon))
            || (e.cluster_port != 0 && *port == e.cluster_port)) {
            continue;
        }
        // Every member on this machine gets a proxy, also one that is not started yet: with
        // fixed ports a node may list members that start after it, and `partition` finds the
        // far end by its port when it is asked.
        auto& l = link(e.name, static_cast<uint16_t>(*port));
        auto target = link_target(l);
        report += "  cluster link " + e.name + " -> "
                  + (target.empty() ? address : target + " (" + address + ")")
                  + " through proxy 127.0.0.1:" + std::to_string(l.proxy->port())
                  + (l.proxy->blocked() ? ", cut" : "") + "\n";
        address = "127.0.0.1:" + std::to_string(l.proxy->port());
        changed = true;
    }
    if (changed) {
        auto routed = "cluster.members=" + toml_array(*members);
        if (given != sets.rend()) {
            *given = routed;
        } else {
            sets.push_back(routed);
        }
    }
    return sets;
}

std::vector<cluster_link*> shell::links_between(const std::string& a, const std::string& b) {
    std::vector<cluster_link*> out;
    for (auto& l : links_) {
        auto to = link_target(l);
        if ((l.from == a && to == b) || (l.from == b && to == a)) {
            out.push_back(&l);
        }
    }
    return out;
}

std::string shell::cmd_freeze(const std::vector<std::string>& w, const invocation&) {
    std::string error;
    auto* e = running_child(w[0], error);
    if (e == nullptr) {
        return error;
    }
    if (e->frozen) {
        return w[0] + " is frozen already (thaw " + w[0] + ")";
    }
    e->proc->signal(SIGSTOP);
    if (!e->proc->wait_stopped(true, clock_type::now() + signal_timeout)) {
        return w[0] + " did not stop after SIGSTOP"
               + (e->proc->running() ? "" : " (" + e->proc->exit_text() + ")");
    }
    e->frozen = true;
    std::printf("froze %s (pid %d): it keeps its sockets open and answers nothing\n", w[0].c_str(),
                static_cast<int>(e->proc->pid()));
    return "";
}

std::string shell::cmd_thaw(const std::vector<std::string>& w, const invocation&) {
    std::string error;
    auto* e = running_child(w[0], error);
    if (e == nullptr) {
        return error;
    }
    if (!e->frozen) {
        return w[0] + " is not frozen";
    }
    e->proc->signal(SIGCONT);
    if (!e->proc->wait_stopped(false, clock_type::now() + signal_timeout)) {
        return w[0] + " did not resume after SIGCONT"
               + (e->proc->running() ? "" : " (" + e->proc->exit_text() + ")");
    }
    e->frozen = false;
    std::printf("thawed %s\n", w[0].c_str());
    return "";
}

std::string shell::cmd_partition(const std::vector<std::string>& w, const invocation&) {
    std::string error;
    if (find(w[0], error) == nullptr || find(w[1], error) == nullptr) {
        return error;
    }
    if (w[0] == w[1]) {
        return "partition needs two different nodes";
    }
    for (const auto& name : w) {
        if (nodes_.at(name).no_proxy) {
            return name
                   + " was started with --no-proxy: its own links to members go direct, "
                     "so the shell cannot cut them";
        }
    }
    auto between = links_between(w[0], w[1]);
    if (between.empty()) {
        return "no cluster link between " + w[0] + " and " + w[1]
               + " runs through the shell: a link gets a proxy when a node started here lists "
                 "the other's cluster address among its members (see: links)";
    }
    for (auto* l : between) {
        l->proxy->block();
    }
    std::printf("cut %zu link(s) between %s and %s: both run on and hear nothing from "
                "each other\n",
                between.size(), w[0].c_str(), w[1].c_str());
    return "";
}

std::string shell::cmd_heal(const std::vector<std::string>& w, const invocation&) {
    std::vector<cluster_link*> which;
    if (w.empty()) {
        for (auto& l : links_) {
            which.push_back(&l);
        }
    } else {
        std::string error;
        if (find(w[0], error) == nullptr || find(w[1], error) == nullptr) {
            return error;
        }
        which = links_between(w[0], w[1]);
        if (which.empty()) {
            return "no cluster link between " + w[0] + " and " + w[1] + " (see: links)";
        }
    }
    size_t healed = 0;
    for (auto* l : which) {
        if (l->proxy->blocked()) {
            l->proxy->heal();
            ++healed;
        }
    }
    std::printf("healed %zu link(s)%s\n", healed,
                w.empty() ? "" : (" between " + w[0] + " and " + w[1]).c_str());
    return "";
}

std::string shell::cmd_links(const std::vector<std::string>&, const invocation&) {
    if (links_.empty()) {
        std::printf("no proxied cluster links (a node started here that lists another one's "
                    "cluster address as a member gets one)\n");
        return "";
    }
    std::printf("%-12s %-12s %-7s %-7s %-8s %s\n", "FROM", "TO", "PROXY", "TARGET", "STATE",
                "CONNECTIONS");
    for (const auto& l : links_) {
        auto to = link_target(l);
        std::printf("%-12s %-12s %-7u %-7u %-8s %llu\n", l.from.c_str(),
                    to.empty() ? "-" : to.c_str(), static_cast<unsigned>(l.proxy->port()),
                    static_cast<unsigned>(l.target_port), l.proxy->blocked() ? "cut" : "open",
                    static_cast<unsigned long long>(l.proxy->connections()));
    }
    return "";
}

std::string shell::cmd_verdict(const std::vector<std::string>& w, const invocation&) {
    auto destination = w.empty() ? std::string{} : w[0];
    if (!ledger_.knows(destination)) {
        return destination.empty()
                   ? "nothing to judge: no send or receive ran yet"
                   : "nothing to judge on " + destination + ": no send or receive used it";
    }
    auto lines = ledger_.judge(destination);
    std::printf("%-24s %9s %9s %9s %7s %10s %10s\n", "DESTINATION", "SENT", "CONFIRMED", "RECEIVED",
                "LOST", "DUPLICATED", "UNEXPECTED");
    std::string failures;
    auto note = [&failures](const std::string& dest, uint64_t n, const char* what,
                            const std::string& example) {
        if (n > 0) {
            failures += (failures.empty() ? "" : "; ") + dest + ": " + std::to_string(n) + " "
                        + what + " (e.g. '" + example.substr(0, 60) + "')";
        }
    };
    for (const auto& v : lines) {
        std::printf(
            "%-24s %9llu %9llu %9llu %7llu %10llu %10llu\n", v.destination.c_str(),
            static_cast<unsigned long long>(v.sent), static_cast<unsigned long long>(v.confirmed),
            static_cast<unsigned long long>(v.received), static_cast<unsigned long long>(v.lost),
            static_cast<unsigned long long>(v.duplicated),
            static_cast<unsigned long long>(v.unexpected));
        note(v.destination, v.lost, "lost", v.lost_example);
        note(v.destination, v.duplicated, "duplicated", v.duplicated_example);
        note(v.destination, v.unexpected, "unexpected", v.unexpected_example);
    }
    if (!failures.empty()) {
        return "verdict failed: " + failures;
    }
    std::printf("verdict: every confirmed message arrived exactly once, nothing else arrived\n");
    return "";
}

} // namespace actormq::shell
