// SPDX-License-Identifier: Apache-2.0
// Shared helpers of the process tests (tests/process/*_test.cpp): node configs, starting a node,
// and doctest-checked STOMP steps. Header-only because it uses doctest's assertion macros.
#pragma once

#include "support/process.hpp"
#include "support/stomp_client.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace actormq::test {

using namespace std::chrono_literals;
using stomp::command;

/// The deadline for anything that should happen promptly; generous, as the machine is shared.
inline deadline_t soon() {
    return in(std::chrono::seconds(10));
}

/// A node config with user guest/guest and the acceptor `stomp` on an OS-chosen port.
/// `top` goes before the first table, `acceptor` into `[acceptors.stomp]`, `tail` at the end.
inline std::string node_config(const std::string& acceptor = "",
                               const std::string& tail = "",
                               const std::string& top = "") {
    return "name = \"test\"\n"
           "log-level = \"debug\"\n"
           + top
           + "\n[acceptors.stomp]\n"
             "port = 0\n"
           + acceptor
           + "\n[security]\n"
             "allow-anonymous = false\n"
             "[security.users.guest]\n"
             "password = \"guest\"\n"
           + tail;
}

/// Address settings under which about 20 messages of 1 KiB fit in memory and the rest is paged,
/// into 64 KiB page files (so a backlog of a few hundred spans several files).
inline const std::string small_paging = "\n[address-settings.\"#\"]\n"
                                        "max-size-bytes = 24000\n"
                                        "address-full-policy = \"PAGE\"\n"
                                        "page-size-bytes = 65536\n";

/// Waits until `text` appears in the node's log at least `times` times.
inline bool log_shows(const node_process& node, const std::string& text, size_t times = 1) {
    return wait_until(soon(), [&] {
        auto log = node.log_text();
        size_t n = 0;
        for (auto at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) {
            ++n;
        }
        return n >= times;
    });
}

/// Declares `node_process var{args...}`, shows the tail of its log with any failure after
/// this point, and requires the node to be ready.
#define ACTORMQ_START_NODE(var, ...)                                                               \
    ::actormq::test::node_process var{__VA_ARGS__};                                                \
    INFO("tail of ", var.dir(), "/node.log:\n", var.log_tail());                                   \
    REQUIRE(var.wait_ready(::actormq::test::soon()))

/// Connects `c` to `node` and logs in as guest; requires CONNECTED.
inline void login(stomp_client& c,
                  const node_process& node,
                  const std::string& version = "1.2",
                  const std::string& heart_beat = "0,0") {
    REQUIRE_MESSAGE(c.connect_tcp(node.port()), c.last_error());
    auto f = c.connect_stomp("guest", "guest", version, heart_beat);
    REQUIRE_MESSAGE(f.cmd == command::connected, describe(f));
}

/// Subscribes with a receipt, so the subscription is in place when this returns.
inline void subscribe(stomp_client& c,
                      const std::string& destination,
                      const std::string& id,
                      const std::string& ack = "auto",
                      header_list extra = {}) {
    stomp::frame f;
    f.cmd = command::subscribe;
    f.add("destination", destination);
    f.add("id", id);
    f.add("ack", ack);
    for (auto& h : extra) {
        f.headers.push_back(std::move(h));
    }
    REQUIRE_MESSAGE(c.send_with_receipt(f), "SUBSCRIBE to ", destination, " got no receipt; ",
                    c.buffered().empty() ? std::string{} : describe(c.buffered().back()));
}

/// Sends one message without waiting for anything.
inline void send_to(stomp_client& c,
                    const std::string& destination,
                    const std::string& body,
                    header_list extra = {}) {
    header_list hs{{"destination", destination}};
    for (auto& h : extra) {
        hs.push_back(std::move(h));
    }
    REQUIRE_MESSAGE(c.send(command::send, std::move(hs), body), c.last_error());
}

/// Sends one message and waits for its RECEIPT, so it has been routed when this returns.
inline void send_routed(stomp_client& c,
                        const std::string& destination,
                        const std::string& body,
                        header_list extra = {}) {
    stomp::frame f;
    f.cmd = command::send;
    f.add("destination", destination);
    for (auto& h : extra) {
        f.headers.push_back(std::move(h));
    }
    f.add("content-length", std::to_string(body.size()));
    f.body = body;
    REQUIRE_MESSAGE(c.send_with_receipt(f), "SEND to ", destination, " got no receipt; ",
                    c.buffered().empty() ? std::string{} : describe(c.buffered().back()));
}

/// Sends `body` (plus `padding`) to `destination` as a persistent message whose duplicate id is
/// `body`, with a receipt; true once the RECEIPT came (the message is on disk), false on an
/// ERROR, a closed connection or the deadline.
inline bool send_durable(stomp_client& c,
                         const std::string& destination,
                         const std::string& body,
                         deadline_t deadline = soon(),
                         const std::string& padding = "") {
    stomp::frame f;
    f.cmd = command::send;
    f.add("destination", destination);
    f.add("persistent", "true");
    f.add("_AMQ_DUPL_ID", body);
    f.body = body + padding;
    return c.send_with_receipt(f, deadline);
}

/// Requires the next frame to be a MESSAGE and returns it.
inline stomp::frame expect_message(stomp_client& c, deadline_t deadline = soon()) {
    auto f = c.receive(deadline);
    REQUIRE_MESSAGE(f.has_value(), "no MESSAGE arrived (", c.last_error(), ")");
    REQUIRE_MESSAGE(f->cmd == command::message, describe(*f));
    return *f;
}

/// Everything left on `dest`, each MESSAGE acked (client-individual), in the order received:
/// an end marker sent after subscribing comes after every message already in the queue (a
/// queue is FIFO, and paged messages come after those in memory). `subscribe_extra` goes on the
/// SUBSCRIBE, `marker_extra` on the marker's SEND; each MESSAGE may take up to `each`. Ends
/// with a receipt barrier, so every ACK was handled when it returns.
inline std::vector<std::string>
drain_queue(const node_process& node,
            const std::string& dest,
            header_list subscribe_extra = {},
            header_list marker_extra = {},
            std::chrono::milliseconds each = std::chrono::seconds(10)) {
    stomp_client c;
    login(c, node);
    subscribe(c, dest, "drain", "client-individual", std::move(subscribe_extra));
    send_routed(c, dest, "__end__", std::move(marker_extra));
    std::vector<std::string> out;
    for (;;) {
        auto m = expect_message(c, in(each));
        c.send(command::ack, {{"id", *m.find("ack")}});
        if (m.body == "__end__") {
            break;
        }
        out.push_back(m.body);
    }
    REQUIRE(c.receipt_barrier());
    return out;
}

/// Receives until `n` MESSAGE frames arrived (or the deadline passed) and returns them; any
/// other frame ends the collection early and fails the test.
inline std::vector<stomp::frame>
collect_messages(stomp_client& c, size_t n, deadline_t deadline = soon()) {
    std::vector<stomp::frame> out;
    while (out.size() < n) {
        auto f = c.receive(deadline);
        if (!f) {
            break;
        }
        if (f->cmd != command::message) {
            FAIL_CHECK("expected MESSAGE, got ", describe(*f));
            break;
        }
        out.push_back(std::move(*f));
    }
    return out;
}

/// Checks that no further MESSAGE is buffered or arrives before a receipt barrier.
inline void expect_no_more_messages(stomp_client& c) {
    REQUIRE(c.receipt_barrier());
    auto extra = c.take_messages();
    CHECK_MESSAGE(extra.empty(), extra.size(), " unexpected MESSAGE(s), first: ",
                  extra.empty() ? std::string{} : describe(extra.front()));
}

/// Requires an ERROR whose `message` contains `text` and then the server closing the socket.
inline stomp::frame expect_error_and_close(stomp_client& c, const std::string& text) {
    auto f = c.receive_cmd(command::error, soon());
    REQUIRE_MESSAGE(f.has_value(), "no ERROR frame arrived (", c.last_error(), ")");
    CHECK_MESSAGE(header_of(*f, "message").find(text) != std::string::npos, describe(*f));
    CHECK_MESSAGE(c.closed_by_peer(soon()), "the server did not close the connection");
    return *f;
}

/// Proves the node still serves: a new client sends to a fresh queue and receives it back.
inline void expect_serving(const node_process& node, const std::string& queue = "/queue/alive") {
    stomp_client c;
    login(c, node);
    subscribe(c, queue, "alive");
    send_to(c, queue, "still here");
    auto m = expect_message(c);
    CHECK(m.body == "still here");
}

/// The bodies of `msgs`, in order.
inline std::vector<std::string> bodies(const std::vector<stomp::frame>& msgs) {
    std::vector<std::string> out;
    for (const auto& m : msgs) {
        out.push_back(m.body);
    }
    return out;
}

/// The strings joined with ", ", for failure messages.
inline std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) {
        out += (out.empty() ? "" : ", ") + i;
    }
    return out;
}

/// "m0", "m1", ... "m<n-1>".
inline std::vector<std::string> numbered(size_t n, const std::string& prefix = "m") {
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) {
        out.push_back(prefix + std::to_string(i));
    }
    return out;
}

} // namespace actormq::test
