// SPDX-License-Identifier: Apache-2.0
#pragma once

// Colocated backups (docs/ha.md, "Colocated backups"; cluster/colocation.hpp for the protocol):
// the host's book of the backups it runs, the endpoint that answers backup requests, and the
// requester a live with request-backup runs to get its backup started on another live node.

#include "cluster/cluster.hpp"
#include "cluster/colocation.hpp"

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/logger.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace actormq {

/// How long a host keeps a granted slot for the spawn that redeems the grant.
inline constexpr std::chrono::seconds colocation_grant_lifetime{30};

/// The backups a host runs or has promised (max-backups): read by the endpoint actor and by
/// the spawn factory, which runs on the middleman's spawn server; hence a mutex.
class colocation_book {
public:
    /// Reads the time through `now` (the steady clock; a test's own clock to see tickets lapse).
    using clock_fn = std::function<std::chrono::steady_clock::time_point()>;

    colocation_book(uint32_t max_backups,
                    std::chrono::milliseconds ticket_ttl,
                    clock_fn now = std::chrono::steady_clock::now);

    /// A slot and ticket for a new backup of `node_id`, or nullopt when max-backups are taken.
    /// An unredeemed grant for the same node id is withdrawn first: a live asks for one backup
    /// at a time, so it asks again only when it never received the earlier grant (its answer
    /// lost with a dropped link, the request timed out) and will never redeem it; kept, such
    /// grants held the slots for their whole lifetime and refused the very live they were for.
    std::optional<cluster::backup_grant> reserve(const std::string& host,
                                                 const std::string& node_id);
    /// Turns the ticket granted for `slot` into a running backup; false for an unknown,
    /// expired or already used ticket.
    bool redeem(uint64_t ticket, uint32_t slot);
    /// The backup in `slot` ended: the slot is free again.
    void release(uint32_t slot);
    /// Backups running now.
    size_t running() const;

private:
    struct promise {
        uint32_t slot;
        std::chrono::steady_clock::time_point expires;
        std::string node_id;
    };
    void expire(std::chrono::steady_clock::time_point now);
    mutable std::mutex mtx_;
    uint32_t max_;
    std::chrono::milliseconds ttl_;
    clock_fn now_;
    std::map<uint64_t, promise> promised_;
    std::set<uint32_t> running_;
    uint64_t next_ticket_;
};

/// A colocated backup this host runs for a node id and that pairs with nobody: its actor and
/// slot (an invalid actor when there is none).
struct unpaired_instance {
    caf::actor handle;
    uint32_t slot = 0;
};

/// Finds the unpaired instance of a node id (see unpaired_instance) among a host's backups.
using unpaired_finder = std::function<unpaired_instance(const std::string& node_id)>;

/// The host's endpoint: (backup_request_atom, live name, live node id) -> backup_grant (with
/// `existing` set when `find` names an unpaired instance of that node id), or
/// cluster_errc::backups_full. Registered with the node's cluster actor.
caf::behavior colocation_endpoint(caf::event_based_actor* self,
                                  std::shared_ptr<colocation_book> book,
                                  std::string host_name,
                                  unpaired_finder find);

/// The requester's settings (the [ha-policy.colocated] keys of the live).
struct requester_settings {
    /// Rounds over the live nodes after the first; -1: for ever.
    int32_t retries = -1;
    std::chrono::milliseconds retry_interval{5000};
    /// Bound of one request (to the cluster, to the middleman).
    std::chrono::milliseconds timeout{10000};
    /// The settle wait, each time this node's own instance starts serving: it asks once the
    /// topology has not changed for this long (backup-request-settle-ms), or earlier when the
    /// configured members are all there, or at the latest after three times this; 0: at once.
    std::chrono::milliseconds settle{10000};
    /// The cluster addresses of the configured static members ([cluster] members): the
    /// cluster has settled when each of them has been heard from.
    std::vector<std::string> expected;
    /// A stand-in's primary ("" for a node's own requester): the cluster address of the node
    /// whose node id the stand-in serves. While a member has that address the stand-in holds
    /// no backup and asks for none: that node came back, pairs with the stand-in and fails
    /// back, and a live pairs with one backup at a time (docs/ha.md, "Colocated backups").
    std::string primary;
};

/// The requester's state: which live it asks, which it asked this round, its backup.
struct backup_requester_state {
    static inline const char* name = "backup_requester";

    enum class phase : uint8_t {
        waiting,
        settling,
        asking,
        spawning,
        backed_up,
        retry_wait,
        given_up,
        /// A stand-in whose primary is a member again: no backup, no request.
        yielding
    };

    requester_settings settings;
    /// The node's cluster facade and the middleman actor (remote spawn).
    caf::actor cluster;
    caf::actor middleman;
    /// What every spawn carries; ticket, slot and node id are filled per request.
    cluster::colocated_spec spec;
    cluster::topology topology;
    phase now = phase::waiting;
    /// Live nodes asked in this round (cluster addresses).
    std::set<std::string> tried;
    uint32_t rounds = 0;
    caf::actor backup;
    std::string backup_host;
    /// N of the backup's colocated_backup_N on its host (0 while none).
    uint32_t backup_slot = 0;
    /// The node names of hosts this requester released a backup on: one that lingers in the
    /// topology a moment after a move is not "another member" (other_backup_member()).
    std::set<std::string> released_on;
    /// The cluster address of a backup found in the topology rather than spawned by this
    /// requester (see backup_member()); "" when none.
    std::string adopted;
    /// Whether the settle wait is over since this node last started serving (the cluster
    /// settled, or `settings.settle` passed); reset when it stops serving.
    bool settled = false;
    /// Whether the node served at the last topology (to see it start serving).
    bool was_serving = false;
    /// The settle timers in force: the quiet one (re-armed on every topology change) and the
    /// bound (armed once); numbered from `timers`, so that a stale one is ignored.
    uint64_t quiet_timer = 0;
    uint64_t bound_timer = 0;
    uint64_t timers = 0;
    /// A stand-in's instance (the colocated backup's actor): the requester ends with it.
    caf::actor owner;
    /// A move of the backup to a live that runs fewer backups is under way (see
    /// rebalance_target()); the lives asked for one since they joined (cluster addresses),
    /// each with the colocated backups it ran when asked: one that runs fewer later (an
    /// instance there ended, docs/ha.md "An unpaired colocated backup gives way") may have
    /// room again, and is asked again; so is one that refused, once a grant's lifetime
    /// (colocation_grant_lifetime) has passed: the slots it had promised to lives that never
    /// redeemed them (their answers lost) are free again with no change in the topology.
    bool moving = false;
    std::map<std::string, size_t> move_tried;
    /// The rebalance timer in force (numbered from `timers`; a stale one is ignored).
    uint64_t rebalance_timer = 0;

    /// The cluster address of a member that backs up this node's node id on another host than
    /// the backup this requester spawned (or on no host: a standalone backup); "" when none or
    /// when nothing was spawned.
    std::string other_backup_member() const;

    /// Whether this node serves (so it has a node id a backup can pair with).
    bool serving() const;
    /// The cluster address of a member that backs up this node's node id (a backup that a
    /// previous run of this node asked for, paired with it again after a failback), or of a
    /// colocated instance still announced as live or starting with it (the stand-in that gave
    /// way to this node and restarts as its backup), or "".
    std::string backup_member() const;
    /// Whether a stand-in's primary (settings.primary) is a member.
    bool primary_back() const;
    /// Whether backup_member() names one.
    bool has_backup_in_topology() const;
    /// Whether a member has the cluster address `address` ("" never).
    bool is_member(const std::string& address) const;
    /// Whether the cluster looks settled: every configured member heard from, none starting,
    /// and no colocated backup waiting to pair (its live may be this node, back again).
    bool cluster_settled() const;
    /// How many colocated backups the member named `name` runs, by the topology.
    size_t hosted_by(const std::string& name) const;
    /// The same for the member at cluster address `address` (0 when none is).
    size_t hosted_at(const std::string& address) const;
    /// The next live node to ask in this round: serving, not this node, not a colocated backup,
    /// not tried yet, not the node that runs this instance (a stand-in's host: its backup
    /// must survive that node); those hosting the fewest colocated backups first, and among
    /// them in ring order: the names after this node's, then those before it, each ascending.
    std::optional<std::string> next_candidate() const;
    /// A round ended without a backup: whether another round may start (retries).
    bool may_retry() const;
    /// Whether the ring is at rest: no member starting, and no colocated backup serving (a
    /// stand-in: a failover or a failback is under way).
    bool at_rest() const;
    /// The ring neighbour: the cluster address of the live member (not a colocated backup) whose
    /// name comes next after this node's, wrapping around to the first name; nullopt when
    /// there is no other live.
    std::optional<std::string> ring_neighbour() const;
    /// Where the node's own requester should move the backup it spawned, or nullopt (docs/ha.md,
    /// "Rebalancing"): the ring neighbour when the backup runs elsewhere and the neighbour was
    /// not asked since it joined; nothing when it runs on the neighbour; otherwise a live (not
    /// this node, not the backup's host, not asked since it joined) that runs at least two
    /// colocated backups fewer than the backup's host, those that run the fewest first, then in
    /// ring order as next_candidate(). Only while backed up by a spawned backup, at rest.
    std::optional<std::string> rebalance_target() const;
};

/// The requester. Messages: the cluster's topology on every change, (caf::tick_atom) for a
/// retry, (settle_atom, n) when a settle wait ends, (rebalance_atom, n) when the ring has been
/// at rest for a retry interval with its backup's host overloaded, and the down message of its
/// backup.
caf::behavior backup_requester(caf::stateful_actor<backup_requester_state>* self,
                               requester_settings settings,
                               caf::actor cluster,
                               caf::actor middleman,
                               cluster::colocated_spec spec);

/// The requester of a colocated backup instance, run from its start: idle while the instance
/// is a backup; once it took over its live's node id it asks for a backup of its own (a
/// stand-in), with the live's colocated settings, never on `owner`'s host, and releases that
/// backup when `settings.primary` joins again. It ends when `owner` (the instance's actor)
/// ends.
caf::behavior stand_in_requester(caf::stateful_actor<backup_requester_state>* self,
                                 requester_settings settings,
                                 caf::actor cluster,
                                 caf::actor middleman,
                                 cluster::colocated_spec spec,
                                 caf::actor owner);

/// The colocation log ("actors", or a logger with no sink without main's loggers).
std::shared_ptr<spdlog::logger> colocation_log();

/// Whether a member name is a colocated backup's (colocated_backup_N).
bool is_colocated_name(const std::string& name);

/// What supersedes the colocated backup instance at `instance_address`, started for the live
/// of `live_node_id`, by its host's topology `t` (docs/ha.md, "An unpaired colocated backup
/// gives way"): "NAME@ADDRESS" of another colocated instance that announces itself the backup
/// of that node id (never a node's own server: that is the primary syncing to fail back), or
/// "" — also when the instance announces the node id itself (paired, or serving it). The
/// instance's own machine decides whether it is unpaired.
std::string superseding_member(const cluster::topology& t,
                               const std::string& instance_address,
                               const std::string& live_node_id);

} // namespace actormq
