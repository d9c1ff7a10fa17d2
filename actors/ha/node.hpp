// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "config/node_config.hpp"

#include <atomic>
#include <memory>

namespace actormq {

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

    /// Which step stop() is in ("running" before it, "actor-system" once only the actors'
    /// ends are awaited). The handle outlives the node, so a watchdog may read it at any time.
    std::shared_ptr<const std::atomic<const char*>> stop_stage() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace actormq
