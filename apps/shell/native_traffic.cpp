// SPDX-License-Identifier: Apache-2.0
#include "apps/shell/native_traffic.hpp"

#include <actormq/client/client.hpp>
#include <actormq/client/errors.hpp>
#include <algorithm>
#include <exception>
#include <unordered_set>

namespace actormq::shell {

namespace {

/// Milliseconds left until `deadline`, at least 1.
int64_t left_ms(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return std::max<int64_t>(1, left.count());
}

/// One connection as an application opens it: the URL names the blocking the command needs
/// and bounds every call by the command's deadline. No reattach and no failover: the shell
/// reports what happened and the scenario decides (docs/shell.md).
std::shared_ptr<client::connection>
open(const stomp_target& t, bool block_on_sends, std::chrono::steady_clock::time_point deadline) {
    std::string flag = block_on_sends ? "true" : "false";
    // Acknowledgements block: a receive that returned has its acks stored, as STOMP's does.
    auto url = "tcp://" + t.host + ":" + std::to_string(t.port) + "?blockOnDurableSend=" + flag
               + "&blockOnNonDurableSend=" + flag
               + "&blockOnAcknowledge=true&callTimeout=" + std::to_string(left_ms(deadline));
    client::connection_factory f{url};
    return f.create_connection(t.login, t.passcode);
}

} // namespace

std::string native_queue(const std::string& destination) {
    if (destination.compare(0, 7, "/topic/") == 0) {
        return {};
    }
    if (destination.compare(0, 7, "/queue/") == 0) {
        return destination.substr(7);
    }
    return destination;
}

traffic_result send_native(const stomp_target& t,
                           const send_params& p,
                           std::chrono::steady_clock::time_point deadline) {
    traffic_result out;
    auto queue = native_queue(p.destination);
    if (queue.empty()) {
        out.error = "--native sends to queues only (" + p.destination + " is a topic)";
        return out;
    }
    try {
        auto conn = open(t, p.receipts, deadline);
        auto producer = conn->create_session()->create_producer(queue);
        for (uint64_t i = 1; i <= p.count; ++i) {
            if (std::chrono::steady_clock::now() >= deadline) {
                out.error = "deadline passed";
                break;
            }
            client::message m;
            m.durable = p.persistent;
            m.body = p.body.empty() ? "message " + std::to_string(i) : p.body;
            sent_message s;
            s.body = m.body;
            if (!p.dup_id_prefix.empty()) {
                m.duplicate_id = p.dup_id_prefix + "-" + std::to_string(i);
                s.dup_id = m.duplicate_id;
            }
            // Recorded before the send: a send that throws may still have been stored.
            out.sent.push_back(s);
            producer->send(m);
            out.sent.back().confirmed = p.receipts;
            ++out.done;
        }
        conn->close();
    } catch (const std::exception& e) {
        out.error = e.what();
    }
    return out;
}

traffic_result receive_native(const stomp_target& t,
                              const receive_params& p,
                              std::chrono::steady_clock::time_point deadline) {
    traffic_result out;
    auto queue = native_queue(p.destination);
    if (queue.empty()) {
        out.error = "--native receives from queues only (" + p.destination + " is a topic)";
        return out;
    }
    std::unordered_set<std::string> seen;
    try {
        auto conn = open(t, true, deadline);
        auto session = conn->create_session();
        std::string marker;
        if (p.all) {
            // Behind every message the queue holds (FIFO); confirmed before the receive starts.
            marker = end_marker();
            client::message m;
            m.durable = true;
            m.body = marker;
            session->create_producer(queue)->send(m);
        }
        auto consumer = session->create_consumer(queue);
        conn->start();
        while (p.all || out.done < p.count) {
            auto m = consumer->receive(std::chrono::milliseconds(left_ms(deadline)));
            if (!m) {
                out.error = "deadline passed after " + std::to_string(out.done) + " message(s)";
                break;
            }
            consumer->acknowledge(*m);
            if (p.all && m->body == marker) {
                break;
            }
            ++out.done;
            out.received.push_back(m->body);
            if (!seen.insert(m->body).second && p.unique) {
                out.error = "'" + m->body + "' arrived twice";
                break;
            }
        }
        out.distinct = seen.size();
        conn->close();
    } catch (const std::exception& e) {
        out.distinct = seen.size();
        out.error = e.what();
    }
    return out;
}

} // namespace actormq::shell
