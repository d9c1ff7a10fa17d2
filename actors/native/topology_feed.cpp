// SPDX-License-Identifier: Apache-2.0
#include "actors/native/topology_feed.hpp"

#include <algorithm>
#include <chrono>

namespace actormq {

namespace {

bool same_members(const std::vector<native::topology_member>& a,
                  const std::vector<native::topology_member>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
        return x.node_id == y.node_id && x.live == y.live && x.backup == y.backup;
    });
}

} // namespace

void native_topology_feed::set(std::vector<native::topology_member> members) {
    // Subscribers are called under the lock: a subscriber only posts to an Asio strand, and
    // calling them in order under the lock keeps every acceptor's pushes in version order.
    std::lock_guard<std::mutex> guard{mtx_};
    if (current_ && same_members(current_->members, members)) {
        return;
    }
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    native::topology t;
    t.version =
        std::max<uint64_t>(static_cast<uint64_t>(now), current_ ? current_->version + 1 : 1);
    t.members = std::move(members);
    current_ = std::move(t);
    for (auto& [id, s] : subscribers_) {
        s(*current_);
    }
}

std::optional<native::topology> native_topology_feed::current() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return current_;
}

uint64_t native_topology_feed::subscribe(subscriber s) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto id = next_id_++;
    subscribers_.emplace(id, std::move(s));
    return id;
}

void native_topology_feed::unsubscribe(uint64_t id) {
    std::lock_guard<std::mutex> guard{mtx_};
    subscribers_.erase(id);
}

} // namespace actormq
