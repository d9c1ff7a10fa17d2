// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <caf/actor.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

namespace actormq {

/// Detached actors that a remote node may monitor (journals, watched by their backup's
/// replica; replicas, watched by their live's journal), counted until every notice of their
/// exit has gone out. CAF 0.17.6 takes an ending actor off the count that
/// actor_system::await_all_actors_done waits for *before* it runs the actor's attachables, and
/// a remote monitor's attachable puts a down message into the BASP broker's mailbox: a stop
/// that races ahead of a preempted ending thread can drain that mailbox too early, and a down
/// message that lands there once the middleman stopped keeps the actor alive, so
/// ~actor_system waits for its thread for ever (tests/crash/REPLICATION-FINDINGS.md, finding
/// 7). `track` attaches a functor right after the spawn, before the handle goes anywhere: it
/// is the actor's oldest attachable, CAF runs attachables newest first, so it runs last.
class exit_tracker {
public:
    void track(const caf::actor& a);
    /// Waits until every tracked actor's exit notices ran, at most `limit`; whether they did.
    bool await(std::chrono::milliseconds limit);

private:
    struct shared {
        std::mutex mtx;
        std::condition_variable cv;
        uint64_t open = 0; // guarded by mtx
    };
    std::shared_ptr<shared> st_ = std::make_shared<shared>();
};

} // namespace actormq
