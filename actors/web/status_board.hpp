// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
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
        return std::atomic_load(&status_);
    }

    /// The latest `GET /metrics` text (Prometheus text exposition format 0.0.4).
    std::shared_ptr<const std::string> metrics_text() const {
        return std::atomic_load(&metrics_);
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
    std::shared_ptr<const std::string> status_ = std::make_shared<const std::string>("{}");
    std::shared_ptr<const std::string> metrics_ = std::make_shared<const std::string>("");
    mutable std::mutex mtx_;
    std::deque<std::pair<uint64_t, std::string>> events_;
    uint64_t next_listener_ = 1;
    std::vector<std::pair<uint64_t, std::function<void(const std::string&)>>> listeners_;
};

} // namespace actormq
