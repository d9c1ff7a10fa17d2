// SPDX-License-Identifier: Apache-2.0
// What the client examples (examples/client/*.cpp, docs/client.md "Examples") share: their
// command line, Ctrl-C, the run id that tells this run's messages from older ones, and the
// final count of what came back. The failover logic itself is in each example, not here.
#pragma once

#include <actormq/client/client.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <string>

namespace example {

namespace ac = actormq::client;

/// Prints one line (whole, even when the failure listener prints at the same time).
inline void say(const std::string& line) {
    static std::mutex mu;
    std::lock_guard<std::mutex> guard(mu);
    std::cout << line << std::endl;
}

/// The command line every example takes.
struct options {
    /// Where to connect: the demo primary's native acceptor (examples/shared-store/primary.toml).
    std::string server = "127.0.0.1:61617";
    /// The second server, for application_failover (the demo backup).
    std::string backup = "127.0.0.1:61618";
    std::string user = "guest";
    std::string password = "guest";
    std::string queue;
    /// Stop after this many messages (or transactions); 0: run until Ctrl-C.
    long count = 0;
};

/// Parses `--server HOST:PORT --backup HOST:PORT --queue NAME --count N --user U --password P`;
/// prints the usage and exits 2 on anything else.
inline options parse(int argc, char** argv, const std::string& default_queue) {
    options o;
    o.queue = default_queue;
    auto usage = [&] {
        std::cerr << "usage: " << argv[0]
                  << " [--server HOST:PORT] [--backup HOST:PORT] [--queue NAME] [--count N]"
                     " [--user U] [--password P]\n";
        std::exit(2);
    };
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (i + 1 >= argc) {
            usage();
        }
        std::string value = argv[++i];
        if (arg == "--server") {
            o.server = value;
        } else if (arg == "--backup") {
            o.backup = value;
        } else if (arg == "--queue") {
            o.queue = value;
        } else if (arg == "--count") {
            o.count = std::strtol(value.c_str(), nullptr, 10);
        } else if (arg == "--user") {
            o.user = value;
        } else if (arg == "--password") {
            o.password = value;
        } else {
            usage();
        }
    }
    return o;
}

/// Set by Ctrl-C (SIGINT) or SIGTERM: the example stops sending and counts what came back.
inline std::atomic<bool> stop_requested{false};

/// Installs the handler of Ctrl-C and SIGTERM.
inline void stop_on_signals() {
    auto on_signal = [](int) {
        stop_requested = true;
    };
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
}

/// True when the example should stop: a signal, or `done` reached a non-zero `count`.
inline bool should_stop(const options& o, long done) {
    return stop_requested || (o.count > 0 && done >= o.count);
}

/// A random id for this run: its messages carry it in the header `run`, so messages that older
/// runs left on the (durable) demo queues are told apart.
inline std::string make_run_id() {
    std::random_device rd;
    return std::to_string(rd()) + std::to_string(rd());
}

/// The value of header `name` in `m`, or "".
inline std::string header(const ac::message& m, const std::string& name) {
    for (const auto& [k, v] : m.headers) {
        if (k == name) {
            return v;
        }
    }
    return {};
}

/// A message of this run with `body`.
inline ac::message make_message(const std::string& run, const std::string& body, bool durable) {
    ac::message m;
    m.body = body;
    m.durable = durable;
    m.headers.emplace_back("run", run);
    return m;
}

/// How often each body of this run came back.
using tally = std::map<std::string, int>;

/// Receives from `queue` on `server` (a plain connection, no failover) until the message
/// "end" of run `run` arrives, acknowledging everything; returns how often each body of this
/// run came. Messages of older runs are consumed and counted in `older`.
inline tally
drain(const options& o, const std::string& server, const std::string& run, long& older) {
    ac::connection_factory cf("tcp://" + server + "?user=" + o.user + "&password=" + o.password);
    auto conn = cf.create_connection();
    auto session = conn->create_session();
    auto consumer = session->create_consumer(o.queue);
    conn->start();
    tally seen;
    for (;;) {
        auto m = consumer->receive(std::chrono::seconds(30));
        if (!m) {
            say("no message for 30 s before the end marker");
            break;
        }
        consumer->acknowledge(*m);
        if (header(*m, "run") != run) {
            ++older;
            continue;
        }
        if (m->body == "end") {
            break;
        }
        ++seen[m->body];
    }
    conn->close();
    return seen;
}

/// Prints "sent N, received R, lost L, duplicated D" for the bodies `prefix`0 ..
/// `prefix`(sent-1) against `seen`; returns the exit status: 0 when nothing was lost or
/// duplicated and nothing unexpected came.
inline int summary(long sent, const tally& seen, const std::string& prefix) {
    long lost = 0;
    long duplicated = 0;
    long expected_seen = 0;
    for (long i = 0; i < sent; ++i) {
        auto it = seen.find(prefix + std::to_string(i));
        if (it == seen.end()) {
            ++lost;
            continue;
        }
        ++expected_seen;
        duplicated += it->second - 1;
    }
    long unexpected = long(seen.size()) - expected_seen;
    long received = 0;
    for (const auto& [body, n] : seen) {
        received += n;
    }
    say("sent " + std::to_string(sent) + ", received " + std::to_string(received) + ", lost "
        + std::to_string(lost) + ", duplicated " + std::to_string(duplicated) + ", unexpected "
        + std::to_string(unexpected));
    return lost == 0 && duplicated == 0 && unexpected == 0 ? 0 : 1;
}

/// A failure listener that prints what it is told, e.g.
/// "failure listener: FAILOVER: failed over to 127.0.0.1:61618".
inline ac::failure_listener print_failures() {
    return [](ac::failure_event e, const std::string& why) {
        say("failure listener: " + std::string(ac::to_string(e)) + ": " + why);
    };
}

} // namespace example
