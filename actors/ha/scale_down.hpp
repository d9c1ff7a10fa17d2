// SPDX-License-Identifier: Apache-2.0
#pragma once

// Scale-down (docs/ha.md, "Scale-down"; reference text "Scaling Down"). Two halves:
// - the source: a server that stops (or a backup right after it failed over) reads its own
//   journal back once its clients are closed and its actors stopped, and sends every message and
//   every undecided prepared transaction, in batches, to another live of its cluster; after each
//   batch is confirmed there, it acknowledges that batch off its own journal;
// - the target: an endpoint actor that routes each batch into the server it serves and answers
//   once every message of it is on its disk.
// Nothing is lost when the target dies mid-copy: the source acknowledges only what was confirmed,
// so its journal still holds the rest. Nothing is stored twice when a batch is sent again (after
// a restart of the source): each message carries a duplicate id built from the source's node id
// and its message id, which the target's duplicate detection refuses the second time.

#include "actors/broker/server_context.hpp"
#include "actors/fwd.hpp"
#include "cluster/cluster.hpp"
#include "cluster/scale_down.hpp"
#include "config/node_config.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace spdlog {
class logger;
}

namespace actormq {

/// The live a server scales down to: the first member of `t` (this node, `self`, left out) with
/// role "live", a node id of its own and, when `c.group_name` is set, that group; with
/// `c.connectors`, the first of them (by cluster address, in their order) that is such a member.
std::optional<cluster::member_info> pick_scale_down_target(const cluster::topology& t,
                                                           const cluster::member_info& self,
                                                           const config::scale_down_config& c);

/// The duplicate id a moved message carries on the target unless it has one of its own.
std::string scale_down_duplicate_id(const std::string& source_node_id, uint64_t source_id);

/// What the target endpoint routes into: the server its node serves now. Set when the node's
/// instance starts serving, cleared when it stops (any thread).
class scale_down_inbox {
public:
    void set(std::shared_ptr<server_context> ctx, server_actor srv) {
        std::lock_guard<std::mutex> guard{mtx_};
        ctx_ = std::move(ctx);
        srv_ = std::move(srv);
    }
    void clear() { set(nullptr, server_actor{}); }
    std::pair<std::shared_ptr<server_context>, server_actor> get() const {
        std::lock_guard<std::mutex> guard{mtx_};
        return {ctx_, srv_};
    }

private:
    mutable std::mutex mtx_;
    std::shared_ptr<server_context> ctx_;
    server_actor srv_;
};

/// The target's endpoint: (cluster::scale_down_atom, scale_down_batch) -> scale_down_ack, once
/// every message is routed and durable, or cluster_errc::scale_down_failed naming why (nothing
/// of a failed batch counts as moved; what it stored is refused as a duplicate when it comes
/// again).
caf::behavior scale_down_endpoint(caf::event_based_actor* self,
                                  std::shared_ptr<scale_down_inbox> inbox,
                                  std::shared_ptr<spdlog::logger> log);

/// What the source needs to scale down.
struct scale_down_job {
    /// The stopping server's config (its journal directory and keys).
    config::node_config cfg;
    std::shared_ptr<spdlog::logger> log;
    /// The node's cluster handle, and the member the batches go to.
    caf::actor cluster;
    cluster::member_info target;
    /// This server's name and node id.
    std::string name;
    std::string node_id;
};

/// What a scale-down did.
struct scale_down_report {
    /// Every message and movable transaction is on the target and acknowledged here.
    bool ok = false;
    /// Why not (the log line's reason).
    std::string error;
    uint64_t messages = 0;
    uint64_t batches = 0;
    uint64_t bytes = 0;
    /// Messages the target had already (a batch sent again).
    uint64_t duplicates = 0;
    uint64_t prepared_moved = 0;
    /// Prepared transactions that acknowledged messages: they stay in this journal (docs/ha.md).
    uint64_t prepared_kept = 0;
    double seconds = 0;
};

/// Reads the closed journal of `job.cfg` back and moves it to the target. Blocking (a journal
/// recovery, then one request per batch): never on a scheduler thread. The instance must be
/// stopped (its journal closed) before, so nothing changes the journal meanwhile.
scale_down_report run_scale_down(caf::actor_system& sys, const scale_down_job& job);

} // namespace actormq
