// SPDX-License-Identifier: Apache-2.0
#include "apps/shell/traffic.hpp"

#include "apps/shell/stomp_client.hpp"

#include <algorithm>
#include <map>
#include <unistd.h>
#include <unordered_set>

namespace actormq::shell {

namespace {

/// Messages written per batch; with receipts, the batch's receipts are awaited before the
/// next, which bounds what is unconfirmed at once.
constexpr uint64_t batch_max = 100;

/// Most messages a receive lets the broker have in flight to it.
constexpr uint64_t prefetch_max = 1000;

stomp::frame make_send(const send_params& p, uint64_t i, sent_message& m) {
    stomp::frame f;
    f.cmd = stomp::command::send;
    f.add("destination", p.destination);
    if (p.persistent) {
        f.add("persistent", "true");
    }
    if (!p.dup_id_prefix.empty()) {
        m.dup_id = p.dup_id_prefix + "-" + std::to_string(i);
        f.add("_AMQ_DUPL_ID", m.dup_id);
    }
    f.body = p.body.empty() ? "message " + std::to_string(i) : p.body;
    m.body = f.body;
    f.add("content-length", std::to_string(f.body.size()));
    return f;
}

/// Reads until every receipt in `pending` (receipt id -> index in `sent`) arrived, marking
/// each message confirmed as its receipt comes; "" or the reason.
std::string await_receipts(stomp_client& c,
                           std::map<std::string, size_t>& pending,
                           std::vector<sent_message>& sent,
                           std::chrono::steady_clock::time_point deadline) {
    while (!pending.empty()) {
        std::string error;
        auto f = c.read(deadline, error);
        if (!f) {
            return std::to_string(pending.size()) + " receipt(s) missing: " + error;
        }
        if (f->cmd == stomp::command::error) {
            return "ERROR from the broker: " + error_text(*f);
        }
        const auto* id = f->find("receipt-id");
        if (f->cmd == stomp::command::receipt && id != nullptr) {
            if (auto it = pending.find(*id); it != pending.end()) {
                sent[it->second].confirmed = true;
                pending.erase(it);
            }
        }
    }
    return "";
}

/// Sends the end marker with a receipt and waits for it: the marker is then behind every
/// message the queue held.
std::string send_marker(stomp_client& c,
                        const std::string& destination,
                        const std::string& marker,
                        std::chrono::steady_clock::time_point deadline) {
    stomp::frame f;
    f.cmd = stomp::command::send;
    f.add("destination", destination);
    f.body = marker;
    f.add("content-length", std::to_string(f.body.size()));
    std::vector<sent_message> sent(1);
    std::map<std::string, size_t> pending{
        {f.headers.emplace_back("receipt", c.next_receipt()).second, 0}};
    c.queue(f);
    if (auto error = c.flush(deadline); !error.empty()) {
        return error;
    }
    return await_receipts(c, pending, sent, deadline);
}

} // namespace

std::string end_marker() {
    static uint64_t n = 0;
    return "actormq-shell end of queue " + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

traffic_result send_messages(const stomp_target& t,
                             const send_params& p,
                             std::chrono::steady_clock::time_point deadline) {
    traffic_result out;
    stomp_client c;
    out.error = c.connect(t.host, t.port, t.login, t.passcode, deadline);
    if (!out.error.empty()) {
        return out;
    }
    while (out.done < p.count) {
        uint64_t n = std::min(batch_max, p.count - out.done);
        std::map<std::string, size_t> pending;
        for (uint64_t i = 0; i < n; ++i) {
            out.sent.emplace_back();
            auto f = make_send(p, out.done + i + 1, out.sent.back());
            if (p.receipts) {
                pending.emplace(f.headers.emplace_back("receipt", c.next_receipt()).second,
                                out.sent.size() - 1);
            }
            c.queue(f);
        }
        if (out.error = c.flush(deadline); !out.error.empty()) {
            return out;
        }
        if (out.error = await_receipts(c, pending, out.sent, deadline); !out.error.empty()) {
            return out;
        }
        out.done += n;
    }
    out.error = c.disconnect(deadline);
    return out;
}

traffic_result receive_messages(const stomp_target& t,
                                const receive_params& p,
                                std::chrono::steady_clock::time_point deadline) {
    traffic_result out;
    stomp_client c;
    out.error = c.connect(t.host, t.port, t.login, t.passcode, deadline);
    if (!out.error.empty() || (p.count == 0 && !p.all)) {
        return out;
    }
    std::string marker;
    if (p.all) {
        marker = end_marker();
        if (out.error = send_marker(c, p.destination, marker, deadline); !out.error.empty()) {
            out.error = "sending the end marker: " + out.error;
            return out;
        }
    }
    stomp::frame sub;
    sub.cmd = stomp::command::subscribe;
    sub.add("destination", p.destination);
    sub.add("id", "shell-1");
    sub.add("ack", "client-individual");
    sub.add("prefetch-count",
            std::to_string(p.all ? prefetch_max : std::min(prefetch_max, p.count)));
    c.queue(sub);
    if (out.error = c.flush(deadline); !out.error.empty()) {
        return out;
    }
    std::unordered_set<std::string> bodies;
    bool at_end = false;
    while (p.all ? !at_end : out.done < p.count) {
        auto f = c.read(deadline, out.error);
        if (!f) {
            out.error = "received " + std::to_string(out.done)
                        + (p.all ? " before the end marker" : " of " + std::to_string(p.count))
                        + ": " + out.error;
            return out;
        }
        if (f->cmd == stomp::command::error) {
            out.error = "ERROR from the broker: " + error_text(*f);
            return out;
        }
        if (f->cmd != stomp::command::message) {
            continue;
        }
        at_end = p.all && f->body == marker;
        if (!at_end) {
            ++out.done;
            out.received.push_back(f->body);
            bool fresh = bodies.insert(f->body).second;
            if (!fresh && p.unique) {
                out.error = "body '" + f->body.substr(0, 80) + "' arrived twice";
                return out;
            }
        }
        stomp::frame ack;
        ack.cmd = stomp::command::ack;
        const auto* id = f->find("ack");
        ack.add("id", id != nullptr ? *id : std::string{});
        c.queue(ack);
        // Acks go out in batches: one write per batch of messages, and the last one at once.
        if (at_end || out.done % batch_max == 0 || (!p.all && out.done == p.count)) {
            if (out.error = c.flush(deadline); !out.error.empty()) {
                return out;
            }
        }
    }
    out.distinct = bodies.size();
    out.error = c.disconnect(deadline);
    return out;
}

} // namespace actormq::shell
