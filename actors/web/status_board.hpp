// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace actormq {

/// What the status actor last published, for readers on other threads (the web server, the
/// management requests): whole texts swapped in atomically, so a reader never sees a half-built
/// state and never reads an actor's state. docs/web.md documents the JSON.
class status_board {
public:
    /// The latest `GET /api/status` document (JSON text); "{}" before the first publish.
    std::shared_ptr<const std::string> status_json() const {
        note_read();
        return std::atomic_load(&status_);
    }

    /// The latest `GET /metrics` text (Prometheus text exposition format 0.0.4).
    std::shared_ptr<const std::string> metrics_text() const {
        note_read();
        return std::atomic_load(&metrics_);
    }

    /// Whether anyone read the status or the metrics within `window`. The status actor gathers
    /// figures only then: a gather asks every queue, which a node with 100,000 queues should
    /// not do four times a second for nobody (docs/web.md, "How it works").
    bool read_within(std::chrono::steady_clock::duration window) const {
        auto last = last_read_.load(std::memory_order_relaxed);
        auto now = std::chrono::steady_clock::now().time_since_epoch().count();
        return last != 0 && now - last <= window.count();
    }

    /// `{"events":[...],"last":N}`: the events with a sequence number above `since`, oldest
    /// first (at most the last `capacity` events are kept).
    std::string events_json(uint64_t since) const;

    /// The sequence number of the newest event (0: none yet).
    uint64_t last_event() const;

    /// Calls `listener` with each new event's JSON object text, on the status actor's thread:
    /// it must be cheap and thread-safe (e.g. post to an io_context). Returns an id for
    /// `unsubscribe`.
    uint64_t subscribe(std::function<void(const std::string&)> listener);
    void unsubscribe(uint64_t id);

    // -- written by the status actor only ---------------------------------------------------

    void publish(std::string status, std::string metrics) {
        std::atomic_store(&status_, std::make_shared<const std::string>(std::move(status)));
        std::atomic_store(&metrics_, std::make_shared<const std::string>(std::move(metrics)));
    }

    /// Appends one event (a JSON object text with its "seq") and tells the listeners.
    void add_event(uint64_t seq, std::string json);

    static constexpr size_t capacity = 1000;

private:
    void note_read() const {
        last_read_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                         std::memory_order_relaxed);
    }

    /// When status or metrics were last read (steady_clock ticks; 0: never).
    mutable std::atomic<std::chrono::steady_clock::rep> last_read_{0};
    std::shared_ptr<const std::string> status_ = std::make_shared<const std::string>("{}");
    std::shared_ptr<const std::string> metrics_ = std::make_shared<const std::string>("");
    mutable std::mutex mtx_;
    std::deque<std::pair<uint64_t, std::string>> events_;
    uint64_t next_listener_ = 1;
    std::vector<std::pair<uint64_t, std::function<void(const std::string&)>>> listeners_;
};

} // namespace actormq
