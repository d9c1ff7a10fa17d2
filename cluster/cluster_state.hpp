// SPDX-License-Identifier: Apache-2.0
#pragma once

// The cluster actor's state (cluster/cluster.hpp), shared by its source files: cluster.cpp
// (membership, joins, the facade) and cluster_replication.cpp (pairing, votes, failback
// requests). Nothing outside cluster/ includes it.

#include "actors/replication/messages.hpp"
#include "cluster/cluster.hpp"
#include "cluster/colocation.hpp"
#include "cluster/scale_down.hpp"

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/node_id.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>

namespace actormq::cluster::detail {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

/// One entry of cfg.members: where to join, and the member reached through it.
struct peer_entry {
    std::string host;
    uint16_t port = 0;
    /// The member this address led to; null while not joined.
    caf::actor_addr member;
    /// The address turned out to be this node (another spelling of its own address).
    bool is_self = false;
    /// A connect or join request is under way.
    bool in_flight = false;
    /// No attempt before this time (set after a refusal).
    steady::time_point retry_after{};
    /// Failed attempts in a row; only the first is logged.
    uint32_t failures = 0;
};

/// A member that has joined.
struct member_entry {
    caf::actor handle;
    member_info info;
};

/// Splits "HOST:PORT" (an IPv6 host in brackets); nullopt when it is not of that form.
inline std::optional<std::pair<std::string, uint16_t>> split_address(const std::string& address) {
    auto colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
        return std::nullopt;
    }
    std::string host = address.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    uint16_t port = 0;
    const char* first = address.data() + colon + 1;
    const char* last = address.data() + address.size();
    auto [end, ec] = std::from_chars(first, last, port);
    if (ec != std::errc{} || end != last || port == 0) {
        return std::nullopt;
    }
    return std::make_pair(std::move(host), port);
}

/// The processes (CAF nodes) this process has seen serve live node ids, and which: the
/// witnesses a vote must not do without (cluster_state::witnesses, docs/replication.md "Lives
/// in the backup's own process"). A process stays listed when its members go down without
/// stopping (SIGKILL, a cut link, a stall): it may only be cut off from this one. A node id
/// leaves its entry when its member stops (a shutdown) or a live in another process serves it
/// (taken over, or the node restarted as a new process); an entry without node ids goes.
///
/// One list per process (actor system), shared by its cluster actors: a colocated instance's
/// cluster actor joins fewer members than its host's (not the stand-ins other nodes run), and
/// its links come back at other moments than its host's, so only together do they know which
/// processes could still answer.
class live_processes {
public:
    /// The list of `sys`'s cluster actors.
    static std::shared_ptr<live_processes> of(caf::actor_system& sys) {
        static std::mutex mtx;
        static std::map<const caf::actor_system*, std::weak_ptr<live_processes>> lists;
        std::lock_guard<std::mutex> guard{mtx};
        for (auto i = lists.begin(); i != lists.end();) {
            i = i->second.expired() ? lists.erase(i) : std::next(i); // systems that ended
        }
        auto& weak = lists[&sys];
        auto list = weak.lock();
        if (!list) {
            list = std::make_shared<live_processes>();
            weak = list;
        }
        return list;
    }

    /// Records the lives among `members` (one cluster actor's): each serves its node id in
    /// its process, and no other process does any more.
    template <class Members>
    void seen(const Members& members) {
        std::lock_guard<std::mutex> guard{mtx_};
        for (const auto& [addr, m] : members) {
            if (m.info.role != "live" || m.info.node_id.empty()) {
                continue;
            }
            auto process = m.handle.node();
            for (auto i = served_.begin(); i != served_.end();) {
                if (i->first != process) {
                    i->second.erase(m.info.node_id);
                }
                i = i->second.empty() ? served_.erase(i) : std::next(i);
            }
            served_[process].insert(m.info.node_id);
        }
    }

    /// The member serving `node_id` in `process` stopped: that process no longer serves it.
    void stopped(const caf::node_id& process, const std::string& node_id) {
        std::lock_guard<std::mutex> guard{mtx_};
        auto i = served_.find(process);
        if (i != served_.end() && i->second.erase(node_id) > 0 && i->second.empty()) {
            served_.erase(i);
        }
    }

    /// How many listed processes other than `own` do not serve `node_id`.
    uint32_t witnesses(const caf::node_id& own, const std::string& node_id) const {
        std::lock_guard<std::mutex> guard{mtx_};
        uint32_t n = 0;
        for (const auto& [process, ids] : served_) {
            n += process != own && ids.count(node_id) == 0 ? 1 : 0;
        }
        return n;
    }

private:
    mutable std::mutex mtx_;
    std::map<caf::node_id, std::set<std::string>> served_;
};

/// The cluster actor's state. Methods hold the logic; the behaviour only dispatches.
struct cluster_state {
    static inline const char* name = "cluster";

    config::cluster_config config;
    member_info self_info;
    std::function<void(const topology&)> on_change;
    std::shared_ptr<spdlog::logger> log;
    /// The local facade, the only sender allowed to change `self_info`.
    caf::actor_addr facade;
    /// The node's status actor, handed to management clients (actormq-shell) that present the
    /// cluster credentials.
    caf::actor management;
    bool started = false;
    /// A tick is scheduled.
    bool tick_pending = false;
    /// cfg.members by their "HOST:PORT" text.
    std::map<std::string, peer_entry> peers;
    /// Joined members by their cluster actor.
    std::map<caf::actor_addr, member_entry> members;
    /// The live journal that pairing requests go to (docs/replication.md); invalid while this
    /// node serves nothing.
    caf::actor replication_endpoint;
    /// The node's replication driver, asked to give way on a failback request.
    caf::actor failback_endpoint;
    /// The node's colocation endpoint, asked to run a backup for a member (docs/ha.md,
    /// "Colocated backups"); invalid when the node runs none.
    caf::actor colocation_endpoint;
    /// The node's scale-down endpoint, which stores batches a stopping member sends here
    /// (docs/ha.md, "Scale-down"); invalid when the node takes none.
    caf::actor scale_down_endpoint;
    /// Scale-down batches sent to a member and not answered yet, failed when it leaves.
    std::map<uint64_t, std::pair<caf::actor_addr, caf::typed_response_promise<scale_down_ack>>>
        scale_down_waiting;
    uint64_t next_scale_down = 0;
    /// The largest number of live servers (distinct node ids) seen at once: the base of every
    /// quorum (a member that vanished still counts).
    uint32_t lives_seen_max = 0;
    /// The processes this process has seen serve lives (live_processes), set at start.
    std::shared_ptr<live_processes> lives_by_process;
    /// The highest activation sequence announced for each node id since this node started
    /// (by a server serving it or holding a journal it served): what a vote reports so that no
    /// server starts live on an older journal (docs/replication.md, "Which journal is newest").
    std::map<std::string, uint64_t> sequences_seen;

    uint64_t sequence_seen(const std::string& node_id) const {
        auto i = sequences_seen.find(node_id);
        return i == sequences_seen.end() ? 0 : i->second;
    }

    /// A "gone" answer this node gave a member about a node id (`vote`): the member may be
    /// taking that node id over right now, before its announcement reaches anyone.
    struct vote_grant {
        caf::actor_addr asker;
        std::chrono::steady_clock::time_point until;
    };
    std::map<std::string, vote_grant> grants;
    /// The members whose answer to this node's last vote about a node id granted it
    /// (release_grants gives those grants back).
    std::map<std::string, std::vector<caf::actor>> granted_by;

    /// A vote this node is counting (run_quorum), until every member asked has answered or
    /// its wait passed. `pending` holds, by cluster address, the handle whose answer is still
    /// awaited: a member that rejoins under a new handle while the vote runs (a node thawed
    /// after SIGSTOP finds its members rejoining) is asked again, and the old handle's answer,
    /// which will never come, is no longer waited for (docs/replication.md, "The vote").
    struct open_vote {
        std::shared_ptr<vote_tally> tally;
        caf::typed_response_promise<vote_tally> rp;
        std::map<std::string, caf::actor_addr> pending;
        /// Configured peers counted in tally->peers_joined.
        std::set<std::string> counted;
        uint32_t wait_ms = 0;
        std::chrono::steady_clock::time_point deadline;
    };
    std::map<uint64_t, open_vote> open_votes;
    uint64_t next_vote = 0;

    /// The member with this cluster address, or null.
    member_entry* member_at(const std::string& cluster_address) {
        for (auto& [addr, m] : members) {
            if (m.info.cluster_address == cluster_address) {
                return &m;
            }
        }
        return nullptr;
    }

    /// Whether the current message comes from a joined member's cluster actor.
    template <class Self>
    bool from_member(Self* self) const {
        auto sender = self->current_sender();
        return sender && members.count(sender->address()) > 0;
    }

    /// This node's answer to `asker` about `node_id`: whether a server other than the asker
    /// serves it. (A live checking its own quorum asks too: it must not count itself, and it
    /// learns whether its backup took over meanwhile.)
    vote_answer answer(const caf::actor_addr& asker, const std::string& node_id) const {
        vote_answer a;
        a.sequence_seen = sequence_seen(node_id);
        a.live_server = self_info.role == "live";
        a.sees_live = !node_id.empty() && a.live_server && self_info.node_id == node_id;
        for (const auto& [addr, m] : members) {
            a.sees_live = a.sees_live
                          || (addr != asker && m.info.role == "live" && m.info.node_id == node_id);
        }
        return a;
    }

    /// This node's vote for `asker` about `node_id` (docs/replication.md, "The vote"): the
    /// answer above, and one rule on top. A "gone" answer lets the asker take the node id over,
    /// but the asker's announcement ("starting" with its new activation sequence) reaches this
    /// node only after the asker counted its answers. Until then, another asker (a primary
    /// restarting, a backup holding a journal it served) would be told nobody serves the node
    /// id and could start live beside the winner. So a "gone" answer is a grant: while it
    /// stands, every other asker is told the node id is claimed (vote_answer::claimed), and
    /// decides nothing but asks again later. It stands while the asker is a member, for the
    /// asker's whole wait for answers (`wait_ms`, sent with the question) plus one remote
    /// timeout for its announcement to arrive; by then the announcement (role and sequence)
    /// speaks for it. A node asking itself holds such a grant too (run_quorum), so a server
    /// that asks it meanwhile learns the same from it.
    vote_answer vote(const caf::actor_addr& asker,
                     const std::string& node_id,
                     uint32_t wait_ms,
                     std::chrono::steady_clock::time_point now,
                     const caf::actor_addr& self_address) {
        auto a = answer(asker, node_id);
        if (a.sees_live || node_id.empty()) {
            return a;
        }
        auto g = grants.find(node_id);
        if (g != grants.end() && g->second.asker != asker && now < g->second.until
            && (g->second.asker == self_address || members.count(g->second.asker) > 0)) {
            a.claimed = true;
            return a;
        }
        grants[node_id] = vote_grant{asker, now + grant_time(wait_ms)};
        return a;
    }

    /// How long a grant stands: the asker's whole wait for answers, then one remote timeout
    /// for its announcement to arrive.
    milliseconds grant_time(uint32_t wait_ms) const {
        return milliseconds{wait_ms} + remote_timeout();
    }

    /// How long any request to another node may take: the middleman's connection timeout
    /// (a peer silent that long is given up by CAF itself), at least one second.
    milliseconds remote_timeout() const {
        return milliseconds{std::max<uint32_t>(config.connection_timeout_ms, 1000)};
    }

    /// This node followed by every joined member.
    topology current() const {
        topology t;
        t.members.push_back(self_info);
        for (const auto& [addr, m] : members) {
            t.members.push_back(m.info);
        }
        std::sort(t.members.begin() + 1, t.members.end(), [](const auto& a, const auto& b) {
            return std::tie(a.name, a.cluster_address) < std::tie(b.name, b.cluster_address);
        });
        return t;
    }

    /// Whether a joiner's credentials are this cluster's. An unset password admits no one.
    bool credentials_ok(const std::string& user, const std::string& password) const {
        bool user_ok = same_secret(user, config.user);
        bool password_ok = same_secret(password, config.password);
        return !config.password.empty() && user_ok && password_ok;
    }

    /// Takes cfg.members apart; entries that are not HOST:PORT or name this node are dropped.
    void load_peers() {
        for (const auto& address : config.members) {
            auto parts = split_address(address);
            if (!parts) {
                log->error("cluster_member_invalid address={} reason=\"not HOST:PORT\"", address);
                continue;
            }
            if (address == self_info.cluster_address) {
                continue;
            }
            auto& p = peers[address];
            p.host = parts->first;
            p.port = parts->second;
        }
    }

    /// Records that the peers at `address` lead to `member` (no more join attempts there).
    void link_peers(const std::string& address, const caf::actor_addr& member) {
        auto i = peers.find(address);
        if (i != peers.end()) {
            i->second.member = member;
            i->second.failures = 0;
        }
    }

    /// Forgets `member` in every peer entry; returns whether any must be retried now.
    bool unlink_peers(const caf::actor_addr& member) {
        bool any = false;
        for (auto& [address, p] : peers) {
            if (p.member == member) {
                p.member = caf::actor_addr{};
                p.retry_after = steady::now();
                any = true;
            }
        }
        return any;
    }

    /// Whether some configured peer is neither joined nor this node.
    bool peers_waiting() const {
        return std::any_of(peers.begin(), peers.end(),
                           [](const auto& kv) { return !kv.second.is_self && !kv.second.member; });
    }

    /// Applies a member's info; returns true when it is new or newer than what we had.
    bool apply_info(const caf::actor_addr& from, member_info info) {
        auto& m = members.at(from);
        if (info.version <= m.info.version) {
            return false;
        }
        m.info = std::move(info);
        return true;
    }

    /// This node's new info from the node: keeps the cluster address, bumps the version.
    void set_self(member_info info) {
        if (info.cluster_address.empty()) {
            info.cluster_address = self_info.cluster_address;
        }
        info.version = self_info.version + 1;
        self_info = std::move(info);
    }

    /// Member `m` left for `reason`: a live that stopped no longer serves its node id in its
    /// process; one gone for any other reason may still (live_processes).
    void note_left(const member_entry& m, const caf::error& reason) {
        bool stopped = !reason || reason == caf::exit_reason::user_shutdown
                       || reason == caf::exit_reason::normal;
        if (stopped && lives_by_process && m.info.role == "live") {
            lives_by_process->stopped(m.handle.node(), m.info.node_id);
        }
    }

    /// Processes other than `own` that could answer a vote about `node_id` as a live: those
    /// this process has seen serve another node id and not seen stop (live_processes).
    uint32_t witnesses(const caf::node_id& own, const std::string& node_id) const {
        return lives_by_process ? lives_by_process->witnesses(own, node_id) : 0;
    }

    void notify() {
        if (lives_by_process) {
            lives_by_process->seen(members);
        }
        auto t = current();
        std::set<std::string> lives;
        for (const auto& m : t.members) {
            if (m.role == "live" && !m.node_id.empty()) {
                lives.insert(m.node_id);
            }
            if (!m.node_id.empty() && m.sequence > 0) {
                auto& seen = sequences_seen[m.node_id];
                seen = std::max(seen, m.sequence);
            }
        }
        lives_seen_max = std::max(lives_seen_max, static_cast<uint32_t>(lives.size()));
        if (on_change) {
            on_change(t);
        }
    }
};

using cluster_ptr = caf::stateful_actor<cluster_state>*;

/// Asks `dest` (`xs`, within the members' timeout) and answers the current request with what
/// comes back, error included: how this actor passes a request on to another node or to the
/// node's own actors.
template <class T, class Dest, class... Ts>
caf::typed_response_promise<T> pass_on(cluster_ptr self, const Dest& dest, Ts&&... xs) {
    auto rp = self->template make_response_promise<T>();
    self->request(dest, self->state.remote_timeout(), std::forward<Ts>(xs)...)
        .then([rp](T& answer) mutable { rp.deliver(std::move(answer)); },
              [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
    return rp;
}

/// The node asks the live at a cluster address to take its replica.
caf::result<replication::pair_reply> request_pairing(cluster_ptr self,
                                                     const std::string& address,
                                                     const std::string& name,
                                                     const std::string& group,
                                                     const caf::actor& replica);
/// A joined member's backup asks to replicate the live this node serves.
caf::result<replication::pair_reply> accept_pairing(cluster_ptr self,
                                                    const std::string& name,
                                                    const std::string& group,
                                                    const caf::actor& replica);
/// Asks every joined member about `node_id`; answers with the tally.
caf::result<vote_tally> run_quorum(cluster_ptr self, const std::string& node_id, uint32_t wait_ms);
/// A member joined (or rejoined under a new handle): every vote still counting asks it too.
void ask_joined(cluster_ptr self, const member_entry& m);

/// This node's last vote about `node_id` decided nothing: drop its own grant and tell every
/// member that granted it to drop theirs, so that another server's vote is not held up.
void release_grants(cluster_ptr self, const std::string& node_id);
/// The node's primary asks the member at `address`, which serves `node_id`, to give way.
caf::result<bool>
request_failback(cluster_ptr self, const std::string& address, const std::string& node_id);
/// The node asks the member at `address` to run a colocated backup for it; answers with the
/// grant and the host's CAF node (for the remote spawn).
caf::result<caf::message> request_backup(cluster_ptr self, const std::string& address);
/// A joined member asks this node to run a colocated backup of its live `node_id`.
caf::result<backup_grant>
accept_backup_request(cluster_ptr self, const std::string& name, const std::string& node_id);
/// Sends a scale-down batch to the member at `address` (this node is stopping).
caf::result<scale_down_ack> send_scale_down(cluster_ptr self,
                                            const std::string& address,
                                            scale_down_batch batch,
                                            uint32_t timeout_ms);
/// A joined member that is stopping sends this live a scale-down batch.
caf::result<scale_down_ack>
accept_scale_down(cluster_ptr self, scale_down_batch batch, uint32_t timeout_ms);
/// A joined member asks this node, serving `node_id`, to give way: the driver decides.
caf::result<bool> accept_failback(cluster_ptr self, const std::string& node_id);

} // namespace actormq::cluster::detail
