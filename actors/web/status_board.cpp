// SPDX-License-Identifier: Apache-2.0
#include "actors/web/status_board.hpp"

#include <utility>

namespace actormq {

std::string status_board::events_json(uint64_t since) const {
    std::lock_guard<std::mutex> guard{mtx_};
    std::string out = "{\"events\":[";
    bool first = true;
    // The deque is ordered by seq, so the events after `since` are a suffix of it.
    auto it = events_.begin();
    while (it != events_.end() && it->first <= since) {
        ++it;
    }
    for (; it != events_.end(); ++it) {
        if (!first) {
            out += ',';
        }
        first = false;
        out += it->second;
    }
    out += "],\"last\":";
    out += std::to_string(events_.empty() ? 0 : events_.back().first);
    out += '}';
    return out;
}

uint64_t status_board::last_event() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return events_.empty() ? 0 : events_.back().first;
}

uint64_t status_board::subscribe(std::function<void(const std::string&)> listener) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto id = next_listener_++;
    listeners_.emplace_back(id, std::move(listener));
    return id;
}

void status_board::unsubscribe(uint64_t id) {
    // Listeners run under the same mutex (add_event), so once this returns the listener is
    // neither running nor called again, and its owner may go away.
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
        if (it->first == id) {
            listeners_.erase(it);
            return;
        }
    }
}

void status_board::add_event(uint64_t seq, std::string json) {
    std::lock_guard<std::mutex> guard{mtx_};
    // Sequence numbers only grow; an event out of order would break events_json's suffix
    // search and the readers' `since`, so it is dropped rather than stored.
    if (!events_.empty() && seq <= events_.back().first) {
        return;
    }
    events_.emplace_back(seq, std::move(json));
    while (events_.size() > capacity) {
        events_.pop_front();
    }
    for (const auto& entry : listeners_) {
        entry.second(events_.back().second);
    }
}

} // namespace actormq
