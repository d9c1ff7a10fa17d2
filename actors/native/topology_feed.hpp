// SPDX-License-Identifier: Apache-2.0
#pragma once

// What a node's native acceptors tell their clients about the cluster (docs/protocol.md §12):
// the node sets it from the cluster's topology on every change, and each native acceptor
// pushes every new value to its authenticated connections.

#include "protocol/native/packet.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

namespace actormq {

/// The current native topology of one node, shared by all its activations' native acceptors.
/// Thread-safe.
class native_topology_feed {
public:
    /// Called with every new topology; must not block (it runs under the setter's call).
    using subscriber = std::function<void(const native::topology&)>;

    /// Replaces the members and tells every subscriber. An unchanged list is ignored. The
    /// version is the wall clock in ms, or one more than the last when the clock did not move
    /// on, so that the topologies of the live and of its backup, which count separately, still
    /// compare in the order they were made (a client that failed over keeps the newest).
    void set(std::vector<native::topology_member> members);

    /// The last value set; nothing before the first `set` (no cluster).
    std::optional<native::topology> current() const;

    /// Adds `s`; returns the id `unsubscribe` takes.
    uint64_t subscribe(subscriber s);

    /// Removes a subscriber; once it returns, the subscriber is not called again.
    void unsubscribe(uint64_t id);

private:
    mutable std::mutex mtx_;
    std::optional<native::topology> current_;
    std::map<uint64_t, subscriber> subscribers_;
    uint64_t next_id_ = 1;
};

} // namespace actormq
