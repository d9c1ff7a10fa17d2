// SPDX-License-Identifier: Apache-2.0
#pragma once

// For process tests of the native client library (tests/process/client_*_test.cpp): a durable
// message, and a thread that sends durable messages through a failover as an application
// would: a send that fails with UNBLOCKED (its answer was lost in the failover) is sent again,
// the same message with the same automatic duplicate id.

#include "support/native_client.hpp"

#include <actormq/client/client.hpp>
#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace actormq::test {

/// The top of a shared-store pair member's config: a cluster (joining `members`, TOML array
/// items) and its shared-store role.
inline std::string pair_top(const std::string& role, const std::string& members) {
    return "cluster-password = \"pair\"\n[cluster]\nport = 0\nmembers = [" + members
           + "]\n[ha-policy.shared-store." + role + "]\n";
}

/// True once a native client can log in on `port`.
inline bool native_serves(uint16_t port) {
    native_client c;
    return c.connect_tcp(port) && c.login("guest", "guest", 0);
}

/// What a failure listener saw.
struct failure_events {
    std::mutex mu;
    std::vector<client::failure_event> seen;

    void record(client::failure_event e) {
        std::lock_guard<std::mutex> g(mu);
        seen.push_back(e);
    }

    bool has(client::failure_event e) {
        std::lock_guard<std::mutex> g(mu);
        return std::find(seen.begin(), seen.end(), e) != seen.end();
    }
};

/// A durable message with `body`.
inline client::message durable(const std::string& body) {
    client::message m;
    m.body = body;
    m.durable = true;
    return m;
}

/// Sends m0, m1, ... through `producer` until stopped; the counters may be read at any time.
template <class Producer>
class retrying_sender {
public:
    explicit retrying_sender(Producer producer)
        : producer_(std::move(producer)),
          thread_([this] { run(); }) {}
    ~retrying_sender() { stop(); }

    retrying_sender(const retrying_sender&) = delete;
    retrying_sender& operator=(const retrying_sender&) = delete;

    /// Stops after the send under way and joins the thread; `error()` may be read then.
    void stop() {
        stop_ = true;
        if (thread_.joinable()) {
            thread_.join();
        }
    }

    /// Sends confirmed, and sends sent again after UNBLOCKED.
    std::atomic<int> confirmed{0};
    std::atomic<int> unblocked{0};
    /// A send failed with anything else; error() (after stop()) says what.
    std::atomic<bool> failed{false};
    const std::string& error() const { return error_; }

private:
    void run() {
        try {
            for (int i = 0; !stop_; ++i) {
                auto m = durable("m" + std::to_string(i));
                for (;;) {
                    try {
                        producer_->send(m);
                        break;
                    } catch (const client::client_error& e) {
                        if (e.kind() != client::error_kind::unblocked) {
                            throw;
                        }
                        ++unblocked; // the answer was lost in the failover: send it again
                    }
                }
                ++confirmed;
            }
        } catch (const std::exception& e) {
            error_ = e.what();
            failed = true;
        }
    }

    Producer producer_;
    std::atomic<bool> stop_{false};
    std::string error_; // written by the thread before `failed`
    std::thread thread_;
};

} // namespace actormq::test
