// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "config/node_config.hpp"

#include <atomic>
#include <memory>

namespace actormq {

struct server_instance;

/// One running actormq-node: the CAF actor system, the Asio threads serving client sockets,
/// the server instance's actors and its acceptors. Loggers "actors" and "protocol" must exist.
class node {
public:
    explicit node(config::node_config cfg);
    ~node();

    node(const node&) = delete;
    node& operator=(const node&) = delete;

    /// Binds every acceptor, writes the ports file and serves. Returns 0, or 1 when an
    /// acceptor cannot listen (the reason is logged).
    int start();

    /// Closes every connection and stops the actors; returns once they are gone.
    void stop();

    /// Whether the node stopped itself because it could not serve (exit status 1), e.g. a
    /// shared-store activation whose journal would not load.
    bool failed() const;

    /// What a watchdog may read at any time, even while the node is being destroyed: which
    /// step stop() is in ("running" before it, "actor-system" once only the actor system's own
    /// teardown is left) and whether the node failed (its exit status must then be non-zero).
    struct stop_report {
        std::atomic<const char*> stage{"running"};
        std::atomic<bool> failed{false};
    };

    /// The node's stop report; the handle outlives the node.
    std::shared_ptr<const stop_report> report() const;

    /// The inside (actors/ha/node_impl.hpp); named here so the node's source files can use it.
    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

} // namespace actormq
