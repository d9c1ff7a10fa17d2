// SPDX-License-Identifier: Apache-2.0
#pragma once

// A producer that carries on through a failover, as an application with a host list would: it
// sends numbered durable messages with duplicate ids and receipts, and after a failed send it
// reconnects to whichever of its servers serves and resends the same id. The HA tests count
// what it had confirmed against what the server that took over holds.

#include "support/process_fixture.hpp"

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace actormq::test {

/// A producer thread that sends numbered durable messages to `destination` (PREFIX0, PREFIX1, ...:
/// the duplicate id, then `padding` spaces in the body) to whichever of `ports` serves, resending
/// an unconfirmed one (same id) after reconnecting.
class producer {
public:
    producer(std::string destination,
             std::vector<uint16_t> ports,
             std::string prefix = "m",
             size_t padding = 0)
        : destination_(std::move(destination)),
          ports_(std::move(ports)),
          prefix_(std::move(prefix)),
          padding_(padding, ' '),
          thread_([this] { run(); }) {}
    ~producer() { stop(); }

    void stop() {
        done_ = true;
        if (thread_.joinable()) {
            thread_.join();
        }
    }
    int count() const { return count_; }
    std::set<std::string> confirmed() const {
        std::lock_guard<std::mutex> guard{mtx_};
        return confirmed_;
    }
    /// Waits until `n` more sends than now were confirmed.
    bool wait_more(int n, deadline_t deadline = soon()) {
        int from = count_;
        return wait_until(deadline, [&] { return count_ >= from + n; });
    }

private:
    void run() {
        stomp_client c;
        bool connected = false;
        int next = 0;
        std::string pending;
        while (!done_ || !pending.empty()) {
            if (!connected) {
                for (auto port : ports_) {
                    c.close();
                    if (c.connect_tcp(port)
                        && c.connect_stomp("guest", "guest", "1.2", "0,0",
                                           in(std::chrono::seconds(2)))
                                   .cmd
                               == command::connected) {
                        connected = true;
                        break;
                    }
                }
                if (done_ && !connected) {
                    break; // nothing serves any more; `pending` was never confirmed
                }
                continue;
            }
            if (pending.empty()) {
                pending = prefix_ + std::to_string(next++);
            }
            if (send_durable(c, destination_, pending, in(std::chrono::seconds(5)), padding_)) {
                std::lock_guard<std::mutex> guard{mtx_};
                confirmed_.insert(pending);
                ++count_;
                pending.clear();
            } else {
                connected = false;
            }
        }
    }

    std::string destination_;
    std::vector<uint16_t> ports_;
    std::string prefix_;
    std::string padding_;
    std::atomic<bool> done_{false};
    std::atomic<int> count_{0};
    mutable std::mutex mtx_;
    std::set<std::string> confirmed_;
    std::thread thread_;
};

} // namespace actormq::test
