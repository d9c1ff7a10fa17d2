// SPDX-License-Identifier: Apache-2.0
// The cluster's part in replication (docs/replication.md): pairing requests, quorum votes and
// failback requests between members, and the quorum arithmetic.
#include "cluster/cluster_state.hpp"

namespace actormq::cluster {

namespace detail {

/// The node asks a live (by cluster address) to take its replica: the request goes out from
/// this cluster actor, which the live's cluster actor knows as a joined member.
caf::result<replication::pair_reply> request_pairing(cluster_ptr self,
                                                     const std::string& address,
                                                     const std::string& name,
                                                     const std::string& group,
                                                     const caf::actor& replica) {
    auto& st = self->state;
    auto* m = st.member_at(address);
    if (m == nullptr) {
        return caf::make_error(cluster_errc::no_such_member, address);
    }
    return pass_on<replication::pair_reply>(self, m->handle, replication::pair_atom::value, name,
                                            group, replica);
}

/// A joined member's backup asks to replicate the live this node serves.
caf::result<replication::pair_reply> accept_pairing(cluster_ptr self,
                                                    const std::string& name,
                                                    const std::string& group,
                                                    const caf::actor& replica) {
    auto& st = self->state;
    if (!st.from_member(self)) {
        return caf::make_error(cluster_errc::not_a_member);
    }
    if (!st.replication_endpoint || st.self_info.role != "live") {
        return caf::make_error(cluster_errc::not_serving);
    }
    if (group != st.self_info.group) {
        return caf::make_error(cluster_errc::wrong_group, "backup group '" + group
                                                              + "', live group '"
                                                              + st.self_info.group + "'");
    }
    auto rp = self->make_response_promise<replication::pair_reply>();
    self->request(st.replication_endpoint, st.remote_timeout(), replication::pair_atom::value, name,
                  group, replica)
        .then(
            [rp, sequence = st.self_info.sequence](replication::pair_reply& r) mutable {
                r.sequence = sequence;
                rp.deliver(std::move(r));
            },
            [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
    return rp;
}

namespace {

/// Delivers an open vote's tally once no answer is awaited any more.
void finish_if_counted(cluster_ptr self, uint64_t id) {
    auto& votes = self->state.open_votes;
    auto v = votes.find(id);
    if (v != votes.end() && v->second.pending.empty()) {
        v->second.rp.deliver(*v->second.tally);
        votes.erase(v);
    }
}

/// Open vote `id`, if it still waits for `handle`'s answer for `address`; else null.
cluster_state::open_vote* still_pending(cluster_ptr self,
                                        uint64_t id,
                                        const std::string& address,
                                        const caf::actor_addr& handle) {
    auto& votes = self->state.open_votes;
    auto v = votes.find(id);
    if (v == votes.end()) {
        return nullptr;
    }
    auto p = v->second.pending.find(address);
    return p != v->second.pending.end() && p->second == handle ? &v->second : nullptr;
}

/// The key a member is asked under: its cluster address, which a rejoin keeps.
std::string vote_key(const member_entry& m) {
    return m.info.cluster_address.empty() ? caf::to_string(m.handle.address())
                                          : m.info.cluster_address;
}

/// Asks member `m` for its vote in open vote `id`, for what is left of the vote's wait. Only
/// the answer of the handle still pending for that address counts: a member that left and
/// rejoined is asked again, under its new handle, and its old one is not waited for.
void ask_member(cluster_ptr self, uint64_t id, const member_entry& m, milliseconds left) {
    auto& v = self->state.open_votes.at(id);
    auto address = vote_key(m);
    auto handle = m.handle.address();
    v.pending[address] = handle;
    ++v.tally->asked;
    auto node_id = v.tally->node_id;
    // The member's grant stands for the vote's whole wait, whatever is left of it here.
    self->request(m.handle, left, vote_atom::value, node_id, v.wait_ms)
        .then(
            [self, id, address, handle, node_id, member = m.handle](vote_answer& a) {
                auto v = still_pending(self, id, address, handle);
                if (v == nullptr) {
                    return;
                }
                v->pending.erase(address);
                if (!a.sees_live && !a.claimed) {
                    self->state.granted_by[node_id].push_back(member);
                }
                auto& tally = *v->tally;
                ++tally.answered;
                tally.sequence_max = std::max(tally.sequence_max, a.sequence_seen);
                tally.claims += a.claimed ? 1 : 0;
                if (a.live_server) {
                    ++tally.live_answers;
                    ++(a.sees_live ? tally.lives_seeing : tally.lives_not_seeing);
                    if (member.node() == self->node()) {
                        ++tally.local_live_answers;
                        tally.local_lives_not_seeing += a.sees_live ? 0 : 1;
                    }
                }
                finish_if_counted(self, id);
            },
            [self, id, address, handle](caf::error&) {
                auto v = still_pending(self, id, address, handle);
                if (v == nullptr) {
                    return;
                }
                v->pending.erase(address);
                finish_if_counted(self, id);
            });
}

} // namespace

/// Asks every joined member about `node_id` and answers with the tally once each answered or
/// `wait` passed (a member that does not answer counts as not answering, never as a vote).
/// Members that join while it runs are asked too (ask_joined).
caf::result<vote_tally> run_quorum(cluster_ptr self, const std::string& node_id, uint32_t wait_ms) {
    auto& st = self->state;
    auto tally = std::make_shared<vote_tally>();
    tally->node_id = node_id;
    tally->lives_seen_max = st.lives_seen_max;
    tally->witness_processes = st.witnesses(self->node(), node_id);
    tally->sequence_max = st.sequence_seen(node_id);
    // While this node asks (and until its announcement can follow), it tells other askers
    // about this node id that it may be taking it over (cluster_state::vote).
    st.grants[node_id] = cluster_state::vote_grant{self->address(), std::chrono::steady_clock::now()
                                                                        + st.grant_time(wait_ms)};
    auto rp = self->make_response_promise<vote_tally>();
    auto id = ++st.next_vote;
    auto& v = st.open_votes[id];
    v.tally = tally;
    v.rp = rp;
    v.wait_ms = wait_ms;
    v.deadline = std::chrono::steady_clock::now() + milliseconds{wait_ms};
    for (const auto& [address, p] : st.peers) {
        if (!p.is_self) {
            ++tally->peers_configured;
            if (p.member) {
                ++tally->peers_joined;
                v.counted.insert(address);
            }
        }
    }
    st.granted_by[node_id].clear();
    for (const auto& [addr, m] : st.members) {
        ask_member(self, id, m, milliseconds{wait_ms});
    }
    finish_if_counted(self, id);
    return rp;
}

void ask_joined(cluster_ptr self, const member_entry& m) {
    auto& st = self->state;
    auto now = std::chrono::steady_clock::now();
    for (auto& [id, v] : st.open_votes) {
        if (now >= v.deadline) {
            continue;
        }
        auto peer = st.peers.find(m.info.cluster_address);
        if (peer != st.peers.end() && !peer->second.is_self
            && v.counted.insert(m.info.cluster_address).second) {
            ++v.tally->peers_joined;
        }
        st.log->info("vote_ask_joined node_id={} member={}", v.tally->node_id, m.info.name);
        ask_member(self, id, m,
                   std::chrono::duration_cast<milliseconds>(v.deadline - now) + milliseconds{1});
    }
}

void release_grants(cluster_ptr self, const std::string& node_id) {
    auto& st = self->state;
    auto own = st.grants.find(node_id);
    if (own != st.grants.end() && own->second.asker == self->address()) {
        st.grants.erase(own);
    }
    auto g = st.granted_by.find(node_id);
    if (g == st.granted_by.end()) {
        return;
    }
    for (const auto& member : g->second) {
        self->send(member, vote_release_atom::value, node_id);
    }
    st.granted_by.erase(g);
}

caf::result<bool>
request_failback(cluster_ptr self, const std::string& address, const std::string& node_id) {
    auto* m = self->state.member_at(address);
    if (m == nullptr) {
        return caf::make_error(cluster_errc::no_such_member, address);
    }
    return pass_on<bool>(self, m->handle, failback_atom::value, node_id);
}

caf::result<bool> accept_failback(cluster_ptr self, const std::string& node_id) {
    auto& st = self->state;
    if (!st.from_member(self)) {
        return caf::make_error(cluster_errc::not_a_member);
    }
    if (!st.failback_endpoint || st.self_info.node_id != node_id || st.self_info.role != "live") {
        return false;
    }
    return pass_on<bool>(self, st.failback_endpoint, failback_atom::value);
}

caf::result<caf::message> request_backup(cluster_ptr self, const std::string& address) {
    auto& st = self->state;
    auto* m = st.member_at(address);
    if (m == nullptr) {
        return caf::make_error(cluster_errc::no_such_member, address);
    }
    auto host = m->handle.node();
    auto rp = self->make_response_promise();
    self->request(m->handle, st.remote_timeout(), backup_request_atom::value, st.self_info.name,
                  st.self_info.node_id)
        .then([rp, host](backup_grant& g) mutable { rp.deliver(std::move(g), host); },
              [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
    return rp;
}

caf::result<backup_grant>
accept_backup_request(cluster_ptr self, const std::string& name, const std::string& node_id) {
    auto& st = self->state;
    if (!st.from_member(self)) {
        st.log->warn("colocation_request_refused from={} reason=\"not a member\"", name);
        return caf::make_error(cluster_errc::not_a_member);
    }
    if (!st.colocation_endpoint) {
        return caf::make_error(cluster_errc::not_hosting);
    }
    return pass_on<backup_grant>(self, st.colocation_endpoint, backup_request_atom::value, name,
                                 node_id);
}

} // namespace detail

uint32_t votes_needed(const vote_tally& t, int32_t quorum_size) {
    if (quorum_size > 0) {
        return static_cast<uint32_t>(quorum_size);
    }
    return std::max<uint32_t>(t.lives_seen_max, 1) / 2 + 1;
}

namespace {

/// The asker's own vote plus `all` answers, those from lives in its own process (`local`) left
/// out while a live in another process could answer (live_is_gone).
uint32_t votes_counted(const vote_tally& t, uint32_t all, uint32_t local) {
    return 1 + (t.witness_processes > 0 ? all - local : all);
}

} // namespace

bool live_is_gone(const vote_tally& t, int32_t quorum_size) {
    return t.lives_seeing == 0 && t.claims == 0
           && votes_counted(t, t.lives_not_seeing, t.local_lives_not_seeing)
                  >= votes_needed(t, quorum_size);
}

bool nobody_serves(const vote_tally& t) {
    // Joined peers that did not answer in time say nothing: one of them may have told another
    // server the node id is gone (a grant), so only answers count towards the majority.
    auto reached = std::min(t.peers_joined, t.answered);
    return t.lives_seeing == 0 && t.claims == 0 && 2 * (reached + 1) > t.peers_configured + 1;
}

bool live_has_quorum(const vote_tally& t, int32_t quorum_size) {
    return t.lives_seeing == 0 && t.claims == 0
           && votes_counted(t, t.live_answers, t.local_live_answers)
                  >= votes_needed(t, quorum_size);
}

} // namespace actormq::cluster
