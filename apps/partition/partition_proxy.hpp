// SPDX-License-Identifier: Apache-2.0
#pragma once

// A network partition between two nodes, as a TCP proxy in front of a node's cluster port
// (docs/testing.md, "Partitions"; docs/shell.md, "partition"). Nodes list each other through
// proxies, so every link between two nodes runs through one; `block()` then drops every byte on it,
// both ways, while the sockets stay open (the nodes see silence, as in a real partition, and find
// out through their heart-beat timeout), and new connections hang. `heal()` closes whatever was
// open during the partition (its streams lost bytes) and forwards again, so the nodes reconnect.
//
// Why a proxy and not nft rules in a private network namespace: every node listens on
// 127.0.0.1 and connects from it, so a rule cannot tell which node a packet comes from; the
// proxy is the link between exactly two nodes.
//
// It lives here, in a library of its own beside the programs, rather than in tests/support,
// because two users link it: the process tests (tests/process/ha_partition_test.cpp) and
// actormq-shell's `partition` / `heal` (apps/shell), which ships without the tests. It needs
// nothing but POSIX sockets and a thread.

#include <cstdint>
#include <memory>

namespace actormq {

class partition_proxy {
public:
    /// Listens on 127.0.0.1 (an OS-chosen port) and forwards to 127.0.0.1:`target`.
    explicit partition_proxy(uint16_t target);
    ~partition_proxy();

    partition_proxy(const partition_proxy&) = delete;
    partition_proxy& operator=(const partition_proxy&) = delete;

    /// The port to connect to instead of the target.
    uint16_t port() const;

    /// Drops every byte from now on; connections stay open, new ones are held.
    void block();

    /// Closes every connection that was open while blocked, then forwards again.
    void heal();

    /// Connections forwarded since the start (for test messages).
    uint64_t connections() const;

    /// Whether the link is cut (between block() and heal()).
    bool blocked() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace actormq
