// SPDX-License-Identifier: Apache-2.0
#include "actors/ha/colocation.hpp"

#include <caf/actor_cast.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/message_view.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/sec.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <tuple>

namespace actormq {

namespace {

std::shared_ptr<spdlog::logger> log() {
    return colocation_log();
}

using requester_ptr = caf::stateful_actor<backup_requester_state>*;
using phase = backup_requester_state::phase;
using settle_atom = caf::atom_constant<caf::atom("settle")>;
using rebalance_atom = caf::atom_constant<caf::atom("rebalance")>;
/// A live that refused a move may have room again: a grant's lifetime has passed.
using refused_atom = caf::atom_constant<caf::atom("refused")>;

void try_next(requester_ptr self);

/// Ends a backup this requester spawned: its host stops the instance and frees the slot.
void release(requester_ptr self,
             const caf::actor& backup,
             const std::string& host,
             const char* reason = "the primary of this node id is a member again: it pairs "
                                  "with this server and fails back") {
    log()->info("colocated_backup_released host={} primary={} reason=\"{}\"", host,
                self->state.settings.primary, reason);
    self->demonitor(backup);
    self->send(backup, cluster::release_atom::value);
}

/// A stand-in whose primary is back gives up its backup and asks for none (see
/// requester_settings::primary); true when it yields. Requests under way finish first: their
/// answers come back here.
bool yield_to_primary(requester_ptr self) {
    auto& st = self->state;
    if (!st.primary_back() || st.now == phase::asking || st.now == phase::spawning) {
        return false;
    }
    if (st.backup) {
        release(self, st.backup, st.backup_host);
        st.backup = nullptr;
        st.backup_host.clear();
    }
    st.adopted.clear();
    if (st.now != phase::yielding) {
        st.now = phase::yielding;
        if (!st.serving()) {
            return true; // a passive instance whose live is there: the usual case, no news
        }
        log()->info("colocation_yielding primary={} reason=\"the primary of this node id is a "
                    "member again\"",
                    st.settings.primary);
    }
    return true;
}

/// `backup`, in `slot` on the live at `address`, is this node's backup from now on.
void take_backup(requester_ptr self, caf::actor backup, const std::string& address, uint32_t slot) {
    auto& st = self->state;
    st.backup = std::move(backup);
    st.backup_host = address;
    st.backup_slot = slot;
    self->monitor(st.backup);
}

/// Asks the middleman to spawn a backup on `host` with grant `g` (caf-notes.md §4: the
/// asynchronous form of remote_spawn, never the blocking call on a worker); the caller handles
/// the answer.
auto request_spawn(requester_ptr self, const cluster::backup_grant& g, const caf::node_id& host) {
    auto& st = self->state;
    auto spec = st.spec;
    spec.ticket = g.ticket;
    spec.slot = g.slot;
    spec.live_node_id = st.topology.members.front().node_id;
    return self->request(st.middleman, st.settings.timeout, caf::spawn_atom::value, host,
                         std::string{cluster::colocated_actor_type},
                         caf::make_message(std::move(spec)), std::set<std::string>{});
}

/// Spawns the backup on the host that granted it, or takes the instance it handed back.
void spawn_backup(requester_ptr self,
                  const std::string& address,
                  cluster::backup_grant g,
                  caf::node_id host) {
    auto& st = self->state;
    if (st.primary_back()) {
        // Granted while the primary came back: the grant's ticket just expires on the host (an
        // instance it runs already is released, as a spawned one would be below).
        if (g.existing) {
            release(self, g.existing, address);
        }
        st.now = phase::waiting;
        yield_to_primary(self);
        return;
    }
    if (g.existing) {
        // The host runs an instance of this node id that pairs with nobody: it is this node's
        // backup, as if spawned now (docs/ha.md, "An unpaired colocated backup gives way").
        take_backup(self, std::move(g.existing), address, g.slot);
        st.now = phase::backed_up;
        log()->info("colocated_backup_started host={} host_name={} name=colocated_backup_{} "
                    "existing=true",
                    address, g.host, g.slot);
        return;
    }
    st.now = phase::spawning;
    auto name = "colocated_backup_" + std::to_string(g.slot);
    request_spawn(self, g, host)
        .then(
            [self, address, name, h = g.host, slot = g.slot](caf::strong_actor_ptr& p) {
                auto& st = self->state;
                if (!p) {
                    log()->warn("colocation_spawn_failed host={} reason=\"no actor\"", address);
                    st.now = phase::waiting;
                    try_next(self);
                    return;
                }
                if (st.primary_back()) {
                    release(self, caf::actor_cast<caf::actor>(p), address);
                    st.now = phase::waiting;
                    yield_to_primary(self);
                    return;
                }
                take_backup(self, caf::actor_cast<caf::actor>(p), address, slot);
                st.now = phase::backed_up;
                log()->info("colocated_backup_started host={} host_name={} name={}", address, h,
                            name);
            },
            [self, address](caf::error& e) {
                log()->warn("colocation_spawn_failed host={} reason=\"{}\"", address,
                            self->system().render(e));
                self->state.now = phase::waiting;
                try_next(self);
            });
}

void ask(requester_ptr self, const std::string& address) {
    auto& st = self->state;
    st.now = phase::asking;
    st.tried.insert(address);
    log()->info("colocation_request host={}", address);
    self->request(st.cluster, st.settings.timeout, cluster::backup_request_atom::value, address)
        .then(
            [self, address](cluster::backup_grant& g, caf::node_id& host) {
                spawn_backup(self, address, std::move(g), std::move(host));
            },
            [self, address](caf::error& e) {
                log()->info("colocation_request_refused host={} reason=\"{}\"", address,
                            self->system().render(e));
                self->state.now = phase::waiting;
                try_next(self);
            });
}

/// Starts (or, on a topology change, re-arms the quiet timer of) the settle wait.
void settle(requester_ptr self) {
    auto& st = self->state;
    if (st.now != phase::settling) {
        st.now = phase::settling;
        st.bound_timer = ++st.timers;
        self->delayed_send(self, st.settings.settle * 3, settle_atom::value, st.bound_timer);
        log()->info("colocation_settling wait_ms={} members_expected={}",
                    st.settings.settle.count(), st.settings.expected.size());
    }
    st.quiet_timer = ++st.timers;
    self->delayed_send(self, st.settings.settle, settle_atom::value, st.quiet_timer);
}

void try_next(requester_ptr self) {
    auto& st = self->state;
    if (st.now != phase::waiting || !st.serving() || yield_to_primary(self)) {
        return;
    }
    if (!st.backup && st.has_backup_in_topology()) {
        // A backup this node asked for before it restarted, paired with it again (failback
        // with restart-backup): nothing to ask for while it is there.
        st.now = phase::backed_up;
        st.adopted = st.backup_member();
        log()->info("colocated_backup_present member={} reason=\"a member backs up this node id\"",
                    st.adopted);
        return;
    }
    if (!st.settled) {
        if (st.settings.settle.count() > 0 && !st.cluster_settled()) {
            settle(self);
            return;
        }
        st.settled = true;
        if (st.settings.settle.count() > 0) {
            log()->info("colocation_settled reason=members");
        }
    }
    if (auto next = st.next_candidate()) {
        ask(self, *next);
        return;
    }
    ++st.rounds;
    st.tried.clear();
    if (!st.may_retry()) {
        st.now = phase::given_up;
        log()->warn("colocation_given_up rounds={} reason=\"no live node runs a backup for this "
                    "node (backup-request-retries)\"",
                    st.rounds);
        return;
    }
    st.now = phase::retry_wait;
    self->delayed_send(self, st.settings.retry_interval, caf::tick_atom::value);
}

/// The spawn of a move (see move_backup) returned `fresh` on `address`: it replaces `old`,
/// which is released, unless the requester's backup changed meanwhile (then `fresh` goes).
void moved(requester_ptr self,
           const caf::actor& old,
           const std::string& old_host,
           caf::actor fresh,
           const std::string& address,
           uint32_t slot) {
    auto& st = self->state;
    if (fresh == old) {
        return; // the host handed back the instance it runs for this node id: nothing moves
    }
    if (st.now != phase::backed_up || st.backup != old) {
        release(self, fresh, address, "the backup it was to replace changed meanwhile");
        return;
    }
    // The new backup pairs once the old one is gone: a live replicates to one backup at a
    // time, and the new one asks again after retry-replication-wait until then.
    release(self, old, old_host, "moved (rebalance)");
    for (const auto& m : st.topology.members) {
        if (m.cluster_address == old_host && old_host != address) {
            st.released_on.insert(m.name);
        }
    }
    take_backup(self, std::move(fresh), address, slot);
    log()->info("colocated_backup_moved from={} to={} name=colocated_backup_{}", old_host, address,
                slot);
}

void consider_rebalance(requester_ptr self);

/// A move to the live at `address` failed. Only a refusal (backups_full) keeps that live from
/// being asked again, until it runs fewer backups or a grant's lifetime has passed; a request
/// or a spawn that timed out (its answer lost with a dropped link: the spawned instance, if
/// any, then gives way as an unpaired one) is tried again after the next quiet retry interval.
/// That interval is armed here: the topology may not change again (the changes while the move
/// was under way armed nothing, a move being under way).
void move_failed(requester_ptr self,
                 const std::string& address,
                 const std::string& why,
                 bool refused) {
    auto& st = self->state;
    st.moving = false;
    if (!refused) {
        st.move_tried.erase(address);
    } else {
        self->delayed_send(self, colocation_grant_lifetime, refused_atom::value, address,
                           st.move_tried[address]);
    }
    log()->info("colocation_rebalance_failed host={} reason=\"{}\"", address, why);
    consider_rebalance(self);
}

/// Moves the backup this requester spawned to the live at `address` (rebalance_target()):
/// asks it, spawns there, and only then releases the old one, so a refusal or a failed spawn
/// leaves the backup where it was.
void move_backup(requester_ptr self, const std::string& address) {
    auto& st = self->state;
    st.moving = true;
    st.move_tried[address] = st.hosted_at(address);
    auto old = st.backup;
    auto old_host = st.backup_host;
    log()->info("colocation_rebalance from={} to={} reason=\"{}\"", old_host, address,
                old_host == address ? "the first slot of the ring neighbour is free"
                : st.ring_neighbour() == address
                    ? "the ring neighbour of this node is a member again"
                    : "the backup's host runs at least two backups more than another live");
    auto fail = [self, address](const std::string& why, bool refused = false) {
        move_failed(self, address, why, refused);
    };
    self->request(st.cluster, st.settings.timeout, cluster::backup_request_atom::value, address)
        .then(
            [self, address, old, old_host, fail](cluster::backup_grant& g, caf::node_id& host) {
                auto& st = self->state;
                if (st.now != phase::backed_up || st.backup != old) {
                    fail("the backup changed meanwhile"); // the grant's ticket expires
                    return;
                }
                if (g.existing) {
                    // An instance of this node id the host runs already, unpaired: the backup
                    // moves to it without a spawn.
                    st.moving = false;
                    moved(self, old, old_host, std::move(g.existing), address, g.slot);
                    return;
                }
                auto slot = g.slot;
                request_spawn(self, g, host)
                    .then(
                        [self, address, old, old_host, slot, fail](caf::strong_actor_ptr& p) {
                            if (!p) {
                                fail("no actor");
                                return;
                            }
                            self->state.moving = false;
                            moved(self, old, old_host, caf::actor_cast<caf::actor>(p), address,
                                  slot);
                        },
                        [self, fail](caf::error& e) { fail(self->system().render(e)); });
            },
            [self, fail](caf::error& e) {
                fail(self->system().render(e), e == cluster::cluster_errc::backups_full);
            });
}

/// Arms the rebalance timer when the backup should move: it fires after a retry interval in
/// which the topology did not change (each change re-arms it), so a ring in the middle of a
/// failback settles first.
void consider_rebalance(requester_ptr self) {
    auto& st = self->state;
    for (auto it = st.move_tried.begin(); it != st.move_tried.end();) {
        // A live that left and came back, or that runs fewer backups than when it was asked,
        // may have room again.
        bool again = !st.is_member(it->first) || st.hosted_at(it->first) < it->second;
        it = again ? st.move_tried.erase(it) : std::next(it);
    }
    if (!st.rebalance_target()) {
        st.rebalance_timer = 0;
        return;
    }
    st.rebalance_timer = ++st.timers;
    self->delayed_send(self, st.settings.retry_interval, rebalance_atom::value, st.rebalance_timer);
}

/// This node's old backup paired with it again (a failback: the stand-in that gave way restarts
/// as its backup, and announces the node id only once it syncs), after this requester had asked
/// for one: the live replicates to one backup, so the spawned one could never pair. It goes;
/// the old one is this node's backup.
void adopt_other_backup(requester_ptr self) {
    auto& st = self->state;
    if (st.moving || st.owner) {
        return;
    }
    if (auto other = st.other_backup_member(); !other.empty()) {
        release(self, st.backup, st.backup_host, "another member backs up this node id");
        st.backup = nullptr;
        st.adopted = other;
        log()->info("colocated_backup_present member={} reason=\"a member backs up this node "
                    "id\"",
                    st.adopted);
    }
}

/// The backup found in the topology is gone from it (its host died, or it ended): not a backup
/// starting over (which stays a member while it syncs again). Asked for again at once, as for
/// a spawned backup's down message.
void forget_lost_backup(requester_ptr self) {
    auto& st = self->state;
    if (st.now != phase::backed_up || st.backup || st.has_backup_in_topology()
        || st.is_member(st.adopted)) {
        return;
    }
    log()->warn("colocated_backup_lost member={} reason=\"no member backs up this node id any "
                "more\"",
                st.adopted);
    st.adopted.clear();
    st.settled = true;
    st.tried.clear();
    st.rounds = 0;
    st.now = phase::waiting;
}

/// A new topology: what it changes for the requester (on_topology below).
void apply_topology(requester_ptr self, cluster::topology& t) {
    auto& st = self->state;
    st.topology = std::move(t);
    if (yield_to_primary(self)) {
        return;
    }
    if (st.now == phase::yielding) {
        // The primary left again before it failed back: this node id needs a backup again.
        if (st.serving()) {
            log()->info("colocation_primary_gone primary={}", st.settings.primary);
        }
        st.now = phase::waiting;
        st.tried.clear();
        st.rounds = 0;
    }
    bool serving = st.serving();
    if (serving != st.was_serving) {
        // Each time this node starts serving (its start, a failback) the cluster settles
        // first: others may be starting too, or its old backup may be pairing with it again.
        st.settled = false;
        st.was_serving = serving;
        if (st.now == phase::settling) {
            st.now = phase::waiting;
        }
    }
    adopt_other_backup(self);
    forget_lost_backup(self);
    if (st.now == phase::settling) {
        if (!st.backup && st.has_backup_in_topology()) {
            st.now = phase::waiting; // try_next takes it as this node's backup
        } else if (st.cluster_settled()) {
            log()->info("colocation_settled reason=members");
            st.now = phase::waiting;
            st.settled = true;
        } else {
            settle(self); // the quiet time starts again
            return;
        }
    }
    try_next(self);
}

/// A new topology; whatever it changed, a backup that should move waits for a retry interval
/// without changes first.
void on_topology(requester_ptr self, cluster::topology& t) {
    apply_topology(self, t);
    consider_rebalance(self);
}

/// Among the live members other than this node (nodes, not colocated backups) that `admit`
/// accepts, the cluster address of the one with the lowest `load`, and among equals the first
/// in ring order: the names after this node's, then those before it, each ascending. nullopt
/// when there is none.
template <class Admit, class Load>
std::optional<std::string>
lowest_live(const backup_requester_state& st, const Admit& admit, const Load& load) {
    const auto& members = st.topology.members;
    if (members.empty()) {
        return std::nullopt;
    }
    const auto& me = members.front();
    std::optional<std::tuple<size_t, bool, std::string>> best;
    std::string address;
    for (size_t i = 1; i < members.size(); ++i) {
        const auto& m = members[i];
        if (m.role != "live" || is_colocated_name(m.name) || m.cluster_address.empty()
            || m.cluster_address == me.cluster_address || !admit(m)) {
            continue;
        }
        auto rank = std::make_tuple(load(m), m.name < me.name, m.name);
        if (!best || rank < *best) {
            best = std::move(rank);
            address = m.cluster_address;
        }
    }
    if (!best) {
        return std::nullopt;
    }
    return address;
}

} // namespace

std::shared_ptr<spdlog::logger> colocation_log() {
    if (auto l = spdlog::get("actors")) {
        return l;
    }
    // Without main's loggers (embedded use, the deterministic tests): a logger with no sink.
    static const auto quiet = std::make_shared<spdlog::logger>("colocation");
    return quiet;
}

bool backup_requester_state::serving() const {
    return !topology.members.empty() && topology.members.front().role == "live"
           && !topology.members.front().node_id.empty();
}

std::string backup_requester_state::backup_member() const {
    if (!serving()) {
        return {};
    }
    const auto& me = topology.members.front();
    for (size_t i = 1; i < topology.members.size(); ++i) {
        const auto& m = topology.members[i];
        // A colocated instance still announced as serving (or starting for) this node id is
        // the stand-in that gave way to this node's failback: it restarts as its backup and
        // announces that only once it syncs, so it counts from now on (docs/ha.md).
        bool giving_way = is_colocated_name(m.name) && (m.role == "live" || m.role == "starting");
        if ((m.role == "backup" || giving_way) && m.node_id == me.node_id
            && !m.cluster_address.empty()) {
            return m.cluster_address;
        }
    }
    return {};
}

std::string backup_requester_state::other_backup_member() const {
    if (!serving() || !backup) {
        return {};
    }
    const auto& me = topology.members.front();
    auto host = std::find_if(topology.members.begin(), topology.members.end(),
                             [&](const auto& m) { return m.cluster_address == backup_host; });
    if (host == topology.members.end()) {
        return {}; // the spawned backup's host left: its own down message tells
    }
    for (size_t i = 1; i < topology.members.size(); ++i) {
        const auto& m = topology.members[i];
        if (m.role == "backup" && m.node_id == me.node_id && !m.cluster_address.empty()
            && m.hosted_by != host->name && released_on.count(m.hosted_by) == 0) {
            return m.cluster_address;
        }
    }
    return {};
}

bool backup_requester_state::primary_back() const {
    return !settings.primary.empty() && is_member(settings.primary);
}

bool backup_requester_state::has_backup_in_topology() const {
    return !backup_member().empty();
}

bool backup_requester_state::is_member(const std::string& address) const {
    return !address.empty()
           && std::any_of(topology.members.begin(), topology.members.end(),
                          [&](const auto& m) { return m.cluster_address == address; });
}

bool backup_requester_state::cluster_settled() const {
    if (settings.expected.empty()) {
        return false; // nothing to count: only the quiet time tells
    }
    for (const auto& address : settings.expected) {
        auto it = std::find_if(topology.members.begin(), topology.members.end(),
                               [&](const auto& m) { return m.cluster_address == address; });
        if (it == topology.members.end()) {
            return false;
        }
    }
    for (size_t i = 1; i < topology.members.size(); ++i) {
        const auto& m = topology.members[i];
        bool pairing = is_colocated_name(m.name) && m.role == "backup" && m.node_id.empty();
        if (m.role == "starting" || m.role.empty() || pairing) {
            return false;
        }
    }
    return true;
}

size_t backup_requester_state::hosted_by(const std::string& name) const {
    return static_cast<size_t>(
        std::count_if(topology.members.begin(), topology.members.end(),
                      [&](const auto& m) { return !name.empty() && m.hosted_by == name; }));
}

size_t backup_requester_state::hosted_at(const std::string& address) const {
    auto it = std::find_if(topology.members.begin(), topology.members.end(),
                           [&](const auto& m) { return m.cluster_address == address; });
    return it == topology.members.end() || address.empty() ? 0 : hosted_by(it->name);
}

std::optional<std::string> backup_requester_state::next_candidate() const {
    // The others come in name order; asking first those named after this node, then those
    // before it, makes nodes that all start together form a ring (a asks b, b asks c, c asks a)
    // instead of all asking the first name (docs/ha.md, "Colocated backups"). A live that runs
    // fewer colocated backups goes before one that runs more, whatever its name: with
    // max-backups above 1, one node would otherwise end up with the backups of all the others.
    const auto& me = topology.members.front();
    return lowest_live(
        *this,
        [&](const cluster::member_info& m) {
            return tried.count(m.cluster_address) == 0
                   && (me.hosted_by.empty() || m.name != me.hosted_by);
        },
        [&](const cluster::member_info& m) { return hosted_by(m.name); });
}

std::optional<std::string> backup_requester_state::ring_neighbour() const {
    return lowest_live(
        *this, [](const cluster::member_info&) { return true; },
        [](const cluster::member_info&) { return size_t{0}; });
}

bool backup_requester_state::may_retry() const {
    return settings.retries < 0 || rounds <= static_cast<uint32_t>(settings.retries);
}

bool backup_requester_state::at_rest() const {
    for (size_t i = 1; i < topology.members.size(); ++i) {
        const auto& m = topology.members[i];
        if (m.role == "starting" || m.role.empty()
            || (is_colocated_name(m.name) && m.role == "live")) {
            return false;
        }
    }
    return true;
}

std::optional<std::string> backup_requester_state::rebalance_target() const {
    // Only the node's own requester moves its backup: a stand-in's backup lasts until the
    // node comes back, and one found in the topology (adopted) is not this requester's to end.
    if (!settings.primary.empty() || now != phase::backed_up || !backup || moving || !serving()
        || !at_rest()) {
        return std::nullopt;
    }
    auto host = std::find_if(topology.members.begin(), topology.members.end(),
                             [&](const auto& m) { return m.cluster_address == backup_host; });
    if (host == topology.members.end()) {
        return std::nullopt;
    }
    // The ring neighbour first: a backup that went elsewhere while its neighbour was down goes
    // back once the neighbour is a member again, so the clients' host lists (the live and its
    // backup on the next node) hold again; and a backup on the neighbour stays there.
    if (auto neighbour = ring_neighbour()) {
        if (*neighbour == backup_host) {
            // On the neighbour, but in a later slot (its first was taken when asked): the first
            // slot's ports are the ones clients list, so it moves there once that is free.
            bool first_free =
                std::none_of(topology.members.begin(), topology.members.end(), [&](const auto& m) {
                    return m.name == "colocated_backup_1" && m.hosted_by == host->name;
                });
            if (backup_slot > 1 && first_free && move_tried.count(*neighbour) == 0) {
                return neighbour;
            }
            return std::nullopt;
        }
        if (move_tried.count(*neighbour) == 0) {
            return neighbour;
        }
    }
    size_t load = hosted_by(host->name);
    return lowest_live(
        *this,
        [&](const cluster::member_info& m) {
            // Two fewer at least: a move from a host that runs one more only swaps the roles.
            return m.cluster_address != backup_host && move_tried.count(m.cluster_address) == 0
                   && hosted_by(m.name) + 2 <= load;
        },
        [&](const cluster::member_info& m) { return hosted_by(m.name); });
}

namespace {

/// The host died, or the backup could not start there: ask again, the next live first. Or the
/// stand-in's instance ended (its node stops, or it gave way for good): so does its requester;
/// a backup it runs stays, the backup of a node id that may still need it.
void on_down(requester_ptr self, const caf::down_msg& dm) {
    auto& st = self->state;
    if (st.owner && dm.source == st.owner.address()) {
        self->quit();
        return;
    }
    if (!st.backup || dm.source != st.backup.address()) {
        return;
    }
    log()->warn("colocated_backup_lost host={} reason=\"{}\"", st.backup_host,
                self->system().render(dm.reason));
    st.backup = nullptr;
    st.tried.clear();
    st.tried.insert(st.backup_host);
    st.rounds = 0;
    st.now = phase::waiting;
    try_next(self);
}

} // namespace

caf::behavior backup_requester(caf::stateful_actor<backup_requester_state>* self,
                               requester_settings settings,
                               caf::actor cluster,
                               caf::actor middleman,
                               cluster::colocated_spec spec) {
    auto& st = self->state;
    st.settings = settings;
    st.cluster = std::move(cluster);
    st.middleman = std::move(middleman);
    st.spec = std::move(spec);
    self->set_default_handler(
        [](caf::scheduled_actor*, caf::message_view& x) -> caf::result<caf::message> {
            log()->warn("unexpected_message actor=backup_requester message={}",
                        caf::to_string(x.content()));
            return caf::sec::unexpected_message;
        });
    self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
    return {
        [self](cluster::topology& t) { on_topology(self, t); },
        [self](settle_atom, uint64_t timer) {
            auto& st = self->state;
            if (st.now != phase::settling || (timer != st.quiet_timer && timer != st.bound_timer)) {
                return;
            }
            log()->info("colocation_settled reason={}",
                        timer == st.quiet_timer ? "quiet" : "bound");
            st.now = phase::waiting;
            st.settled = true;
            try_next(self);
        },
        [self](rebalance_atom, uint64_t timer) {
            auto& st = self->state;
            if (timer != st.rebalance_timer) {
                return;
            }
            st.rebalance_timer = 0;
            if (auto target = st.rebalance_target()) {
                move_backup(self, *target);
            }
        },
        [self](refused_atom, const std::string& address, size_t hosted) {
            // Still the refusal it was (not one renewed since): the live is asked again.
            auto& st = self->state;
            if (auto it = st.move_tried.find(address);
                it != st.move_tried.end() && it->second == hosted) {
                st.move_tried.erase(it);
                consider_rebalance(self);
            }
        },
        [self](caf::tick_atom) {
            if (self->state.now == phase::retry_wait) {
                self->state.now = phase::waiting;
                try_next(self);
            }
        },
    };
}

caf::behavior stand_in_requester(caf::stateful_actor<backup_requester_state>* self,
                                 requester_settings settings,
                                 caf::actor cluster,
                                 caf::actor middleman,
                                 cluster::colocated_spec spec,
                                 caf::actor owner) {
    auto b = backup_requester(self, std::move(settings), std::move(cluster), std::move(middleman),
                              std::move(spec));
    self->state.owner = std::move(owner);
    if (self->state.owner) {
        self->monitor(self->state.owner);
    }
    return b;
}

} // namespace actormq
