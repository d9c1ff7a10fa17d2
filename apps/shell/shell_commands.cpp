// SPDX-License-Identifier: Apache-2.0
// The shell's commands that look at nodes (nodes, queues, events, status, log), move messages
// (send, receive) and check conditions (wait, assert).
#include "apps/shell/native_traffic.hpp"
#include "apps/shell/shell.hpp"
#include "apps/shell/traffic.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

namespace actormq::shell {

using std::chrono::milliseconds;

namespace {

constexpr milliseconds wait_timeout{30000};
constexpr milliseconds traffic_timeout{60000};
constexpr milliseconds events_timeout{2000};
/// How often `wait` asks the nodes (the status actor publishes every 250 ms).
constexpr milliseconds poll_interval{50};

clock_type::time_point deadline_of(const invocation& inv, milliseconds fallback) {
    auto text = inv.value("timeout");
    auto ms = text ? parse_duration_ms(*text) : std::nullopt;
    return clock_type::now() + (ms ? milliseconds(*ms) : fallback);
}

std::string short_id(const std::string& id) {
    return id.size() > 13 ? id.substr(0, 13) + "…" : id;
}

/// "-" for an unknown port.
std::string port_text(uint16_t port) {
    return port == 0 ? "-" : std::to_string(port);
}

} // namespace

std::string shell::cmd_nodes(const std::vector<std::string>&, const invocation&) {
    if (nodes_.empty()) {
        std::printf("no nodes (start NAME CONFIG, or connect NAME HOST:PORT)\n");
        return "";
    }
    std::printf("%-12s %-8s %-24s %-7s %-7s %-18s %-14s %-16s %5s %6s\n", "NODE", "PID", "PROCESS",
                "STOMP", "CLUSTER", "INSTANCE", "ROLE", "NODE ID", "CONNS", "QUEUES");
    for (auto& [name, e] : nodes_) {
        std::string pid = e.proc ? std::to_string(e.proc->pid()) : "-";
        std::string process = !e.proc              ? "remote " + e.host
                              : !e.proc->running() ? e.proc->exit_text()
                              : e.frozen           ? "frozen (SIGSTOP)"
                                                   : "running";
        std::printf("%-12s %-8s %-24s %-7s %-7s ", name.c_str(), pid.c_str(), process.c_str(),
                    port_text(e.stomp_port).c_str(), port_text(e.cluster_port).c_str());
        if (e.proc && !e.proc->running()) {
            std::printf("\n");
            continue;
        }
        auto st = fetch_status(e);
        if (!st) {
            std::printf("(%s)\n", st.error.c_str());
            continue;
        }
        if (st.value.instances.empty()) {
            std::printf("(no instances)\n");
        }
        bool first = true;
        for (const auto& i : st.value.instances) {
            if (!first) {
                std::printf("%-62s ", "");
            }
            first = false;
            std::printf("%-18s %-14s %-16s %5llu %6llu\n", i.name.c_str(), i.role.c_str(),
                        short_id(i.node_id).c_str(), static_cast<unsigned long long>(i.connections),
                        static_cast<unsigned long long>(i.queue_count));
        }
    }
    return "";
}

std::string shell::cmd_queues(const std::vector<std::string>& w, const invocation&) {
    std::string error;
    if (!w.empty() && find(w[0], error) == nullptr) {
        return error;
    }
    std::printf("%-12s %-18s %-24s %-9s %8s %9s %9s %10s %10s\n", "NODE", "INSTANCE", "QUEUE",
                "ROUTING", "DEPTH", "IN-FLIGHT", "CONSUMERS", "ENQUEUED", "ACKED");
    for (auto& [name, e] : nodes_) {
        if (!w.empty() && name != w[0]) {
            continue;
        }
        if (e.proc && !e.proc->running()) {
            continue;
        }
        auto st = fetch_status(e);
        if (!st) {
            std::printf("%-12s (%s)\n", name.c_str(), st.error.c_str());
            continue;
        }
        for (const auto& q : st.value.queues) {
            std::printf("%-12s %-18s %-24s %-9s %8llu %9llu %9llu %10llu %10llu\n", name.c_str(),
                        q.instance.c_str(), q.name.c_str(), q.routing.c_str(),
                        static_cast<unsigned long long>(q.depth),
                        static_cast<unsigned long long>(q.in_flight),
                        static_cast<unsigned long long>(q.consumers),
                        static_cast<unsigned long long>(q.enqueued_total),
                        static_cast<unsigned long long>(q.acked_total));
        }
    }
    return "";
}

std::string shell::cmd_events(const std::vector<std::string>& w, const invocation& inv) {
    std::string error;
    auto* e = find(w[0], error);
    if (e == nullptr) {
        return error;
    }
    auto since = inv.value("since") ? parse_count(*inv.value("since")) : 0ULL;
    if (!since) {
        return "bad --since (a number)\nusage: " + inv.spec->usage;
    }
    if (auto err = ensure_management(*e); !err.empty()) {
        return err;
    }
    auto json = mgmt().events(e->status_actor, *since, events_timeout);
    if (!json) {
        e->status_actor = nullptr;
        return "events of " + e->name + ": " + json.error;
    }
    auto events = parse_events(json.value, error);
    if (!events) {
        return error;
    }
    for (const auto& ev : *events) {
        std::printf("%5llu %s %-14s %s\n", static_cast<unsigned long long>(ev.seq), ev.time.c_str(),
                    ev.kind.c_str(), ev.message.c_str());
    }
    return "";
}

std::string shell::cmd_status(const std::vector<std::string>& w, const invocation&) {
    std::string error;
    auto* e = find(w[0], error);
    if (e == nullptr) {
        return error;
    }
    if (auto err = ensure_management(*e); !err.empty()) {
        return err;
    }
    auto json = mgmt().status(e->status_actor, events_timeout);
    if (!json) {
        e->status_actor = nullptr;
        return "status of " + e->name + ": " + json.error;
    }
    auto j = nlohmann::json::parse(json.value, nullptr, false);
    std::printf("%s\n", j.is_discarded() ? json.value.c_str() : j.dump(2).c_str());
    return "";
}

std::string shell::cmd_log(const std::vector<std::string>& w, const invocation&) {
    std::string error;
    auto* e = find(w[0], error);
    if (e == nullptr) {
        return error;
    }
    if (!e->proc) {
        return w[0] + " was not started by this shell; its log is where it runs";
    }
    auto lines = w.size() > 1 ? parse_count(w[1]) : 20ULL;
    if (!lines) {
        return "bad LINES '" + w[1] + "'\nusage: log NODE [LINES]";
    }
    std::printf("%s", e->proc->log_tail(*lines).c_str());
    return "";
}

std::string shell::traffic_args(const std::vector<std::string>& w,
                                const invocation& inv,
                                node_entry*& e,
                                uint64_t& count) {
    std::string error;
    e = find(w[0], error);
    if (e == nullptr) {
        return error;
    }
    // `receive ... all` drains the queue; parse_count refuses "all" for `send`.
    auto parsed = inv.spec->name == "receive" && w[2] == "all" ? 0ULL : parse_count(w[2]);
    if (!parsed) {
        return "bad COUNT '" + w[2] + "'\nusage: " + inv.spec->usage;
    }
    if (inv.has("native") && e->native_port == 0) {
        return w[0] + " has no acceptor named \"native\" (send and receive --native use it)";
    }
    if (!inv.has("native") && e->stomp_port == 0) {
        return w[0] + " has no known STOMP port (connect ... --stomp PORT)";
    }
    count = *parsed;
    return "";
}

std::string shell::cmd_send(const std::vector<std::string>& w, const invocation& inv) {
    node_entry* e = nullptr;
    uint64_t count = 0;
    if (auto error = traffic_args(w, inv, e, count); !error.empty()) {
        return error;
    }
    send_params p;
    p.destination = w[1];
    p.count = count;
    p.persistent = inv.has("persistent");
    p.receipts = inv.has("receipts");
    p.dup_id_prefix = inv.value("dup-ids").value_or("");
    p.body = inv.value("body").value_or("");
    bool native = inv.has("native");
    stomp_target t{e->host, native ? e->native_port : e->stomp_port, opts_.stomp_login,
                   opts_.stomp_passcode};
    auto deadline = deadline_of(inv, traffic_timeout);
    auto r = native ? send_native(t, p, deadline) : send_messages(t, p, deadline);
    for (const auto& m : r.sent) {
        ledger_.sent(p.destination, m.body, m.dup_id, m.confirmed);
    }
    if (!r.error.empty()) {
        return "send to " + w[0] + ": " + std::to_string(r.done) + " of " + w[2]
               + " sent: " + r.error;
    }
    std::printf("sent %llu message(s) to %s on %s%s%s%s\n", static_cast<unsigned long long>(r.done),
                p.destination.c_str(), w[0].c_str(), native ? " (native)" : "",
                p.persistent ? ", persistent" : "",
                p.receipts ? ", each confirmed by a receipt" : "");
    return "";
}

std::string shell::cmd_receive(const std::vector<std::string>& w, const invocation& inv) {
    node_entry* e = nullptr;
    uint64_t count = 0;
    if (auto error = traffic_args(w, inv, e, count); !error.empty()) {
        return error;
    }
    receive_params p{w[1], count, inv.has("unique"), w[2] == "all"};
    if (p.all && w[1].compare(0, 7, "/topic/") == 0) {
        return "receive ... all drains a queue; " + w[1] + " is a topic";
    }
    bool native = inv.has("native");
    stomp_target t{e->host, native ? e->native_port : e->stomp_port, opts_.stomp_login,
                   opts_.stomp_passcode};
    auto deadline = deadline_of(inv, traffic_timeout);
    auto r = native ? receive_native(t, p, deadline) : receive_messages(t, p, deadline);
    for (const auto& body : r.received) {
        ledger_.received(p.destination, body);
    }
    if (!r.error.empty()) {
        return "receive from " + w[0] + ": " + r.error;
    }
    std::printf("received %llu message(s) from %s on %s (%llu distinct)\n",
                static_cast<unsigned long long>(r.done), p.destination.c_str(), w[0].c_str(),
                static_cast<unsigned long long>(r.distinct));
    return "";
}

check_result shell::check(const std::vector<std::string>& c, const invocation& inv) {
    check_result out;
    std::string error;
    auto* e = find(c[1], error);
    if (e == nullptr) {
        out.observed = error;
        out.final = true;
        return out;
    }
    if (c[0] == "log") {
        auto want = inv.value("count") ? parse_count(*inv.value("count")) : 1ULL;
        if (!want || *want == 0) {
            out.observed = "bad --count (a number, at least 1)";
            out.final = true;
            return out;
        }
        if (!e->proc) {
            out.observed = c[1] + " was not started by this shell; its log is where it runs";
            out.final = true;
            return out;
        }
        // Ask whether it runs before reading: a node that had exited by then wrote every line
        // it ever will (restart starts a new process, and a new wait).
        bool was_running = e->proc->running();
        auto n = e->proc->log_count(c[2]);
        out.holds = n >= *want;
        out.observed = "the log of " + c[1] + " has " + std::to_string(n) + " line(s) with '" + c[2]
                       + "', expected at least " + std::to_string(*want);
        out.final = !out.holds && !was_running;
        if (out.final) {
            out.observed += " (" + c[1] + " exited: " + e->proc->exit_text() + ")";
        }
        return out;
    }
    if (c[0] == "gone") {
        if (e->proc) {
            out.holds = !e->proc->running();
            out.observed = out.holds
                               ? c[1] + " exited (" + e->proc->exit_text() + ")"
                               : c[1] + " still runs (pid " + std::to_string(e->proc->pid()) + ")";
            return out;
        }
        auto st = fetch_status(*e);
        out.holds = !st;
        out.observed = st ? c[1] + " still answers" : st.error;
        return out;
    }
    auto st = fetch_status(*e);
    if (!st) {
        out.observed = st.error;
        out.final = e->proc && !e->proc->running();
        return out;
    }
    if (c[0] == "up") {
        out.holds = true;
        out.observed = c[1] + " answers (role " + st.value.role() + ")";
    } else if (c[0] == "role") {
        out.holds = st.value.role() == c[2];
        out.observed = "role of " + c[1] + " is '" + st.value.role() + "', expected '" + c[2] + "'";
    } else {
        auto want = parse_count(c[3]);
        if (!want) {
            out.observed = "bad COUNT '" + c[3] + "'";
            out.final = true;
            return out;
        }
        const auto* q = st.value.find_queue(c[2]);
        uint64_t depth = q != nullptr ? q->depth : 0;
        out.holds = depth == *want;
        out.observed = "depth of " + c[2] + " on " + c[1] + " is " + std::to_string(depth)
                       + (q != nullptr ? "" : " (no such queue)") + ", expected " + c[3];
    }
    return out;
}

std::string shell::cmd_wait(const std::vector<std::string>& w, const invocation& inv) {
    auto start = clock_type::now();
    auto deadline = deadline_of(inv, wait_timeout);
    for (;;) {
        auto r = check(w, inv);
        if (r.holds) {
            auto ms = std::chrono::duration_cast<milliseconds>(clock_type::now() - start);
            std::printf("ok after %lld ms: %s\n", static_cast<long long>(ms.count()),
                        r.observed.c_str());
            return "";
        }
        if (r.final) {
            return "wait failed: " + r.observed;
        }
        if (clock_type::now() >= deadline) {
            auto ms = std::chrono::duration_cast<milliseconds>(clock_type::now() - start);
            return "wait timed out after " + std::to_string(ms.count()) + " ms: " + r.observed;
        }
        std::this_thread::sleep_for(poll_interval);
    }
}

std::string shell::cmd_assert(const std::vector<std::string>& w, const invocation& inv) {
    auto r = check(w, inv);
    if (!r.holds) {
        return "assert failed: " + r.observed;
    }
    std::printf("ok: %s\n", r.observed.c_str());
    return "";
}

std::string shell::cmd_help(const std::vector<std::string>& w, const invocation&) {
    if (!w.empty()) {
        const auto* spec = find_command(w[0]);
        if (spec == nullptr) {
            return "unknown command '" + w[0] + "'";
        }
        std::printf("usage: %s\n  %s\n", spec->usage.c_str(), spec->summary.c_str());
        return "";
    }
    for (const auto& c : commands()) {
        std::printf("  %-12s %s\n", c.name.c_str(), c.summary.c_str());
    }
    std::printf("help COMMAND shows its usage; docs/shell.md has examples.\n");
    return "";
}

} // namespace actormq::shell
