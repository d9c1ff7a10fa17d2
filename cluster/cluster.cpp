// SPDX-License-Identifier: Apache-2.0
#include "cluster/cluster.hpp"

#include "actors/replication/messages.hpp"
#include "cluster/management.hpp"

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/node_id.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <tuple>

namespace actormq::cluster {

namespace {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

/// Facade -> cluster actor, once: the bound port; the sender becomes the trusted facade.
using start_atom = caf::atom_constant<caf::atom("start")>;

/// A refused joiner waits at least this long before it asks again, so a member with the wrong
/// password neither floods the other's log nor guesses passwords quickly.
constexpr milliseconds refused_retry_interval{3000};

/// The reason text the refusing member sends back (never the password itself).
constexpr const char* bad_credentials_text = "bad cluster credentials";

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
std::optional<std::pair<std::string, uint16_t>> split_address(const std::string& address) {
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

/// A short reason for logs: the sec / exit_reason name, or the system's rendering.
std::string describe(caf::actor_system& sys, const caf::error& err) {
    if (err.category() == caf::atom("system")) {
        return caf::to_string(static_cast<caf::sec>(err.code()));
    }
    if (err.category() == caf::atom("exit")) {
        return caf::to_string(static_cast<caf::exit_reason>(err.code()));
    }
    if (err.category() == caf::atom("cluster") && err.context().match_elements<std::string>()) {
        return err.context().get_as<std::string>(0);
    }
    return sys.render(err);
}

/// How a member is named in a log line: its cluster address, else its name. The text comes
/// from the other side, possibly from a stranger, so control characters become '?' and a log
/// line stays one line.
std::string label(const member_info& info) {
    std::string out = info.cluster_address.empty() ? info.name : info.cluster_address;
    for (auto& c : out) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            c = '?';
        }
    }
    return out;
}

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
    /// The largest number of live servers (distinct node ids) seen at once: the base of every
    /// quorum (a member that vanished still counts).
    uint32_t lives_seen_max = 0;

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
        a.live_server = self_info.role == "live";
        a.sees_live = !node_id.empty() && a.live_server && self_info.node_id == node_id;
        for (const auto& [addr, m] : members) {
            a.sees_live = a.sees_live
                          || (addr != asker && m.info.role == "live" && m.info.node_id == node_id);
        }
        return a;
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

    void notify() {
        auto t = current();
        std::set<std::string> lives;
        for (const auto& m : t.members) {
            if (m.role == "live" && !m.node_id.empty()) {
                lives.insert(m.node_id);
            }
        }
        lives_seen_max = std::max(lives_seen_max, static_cast<uint32_t>(lives.size()));
        if (on_change) {
            on_change(t);
        }
    }
};

using cluster_ptr = caf::stateful_actor<cluster_state>*;

/// Logs an unexpected message at warn and drops it (style rule 14).
/// What a management client (actormq-shell) gets after a login: it answers the two read-only
/// questions by asking the status actor itself, so the status actor never talks to another
/// node. It ends after `management_idle` without a request; the shell then logs in again.
constexpr std::chrono::minutes management_idle{5};

caf::behavior management_session(caf::event_based_actor* self, caf::actor status) {
    auto ask = [self, status](auto... question) {
        auto rp = self->make_response_promise<std::string>();
        self->request(status, std::chrono::seconds(5), question...)
            .then([rp](std::string& answer) mutable { rp.deliver(std::move(answer)); },
                  [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
        return rp;
    };
    return {
        [=](caf::get_atom q) { return ask(q); },
        [=](events_atom q, uint64_t since) { return ask(q, since); },
        caf::after(management_idle) >> [self] { self->quit(); },
    };
}

template <class Self>
void drop_unexpected(Self* self, const std::shared_ptr<spdlog::logger>& log) {
    self->set_default_handler([log](caf::scheduled_actor* s, caf::message_view& mv) {
        auto sender = s->current_sender();
        // Never the content: a join or manage request of an unexpected shape carries the
        // cluster password, and warnings become events on the status page.
        log->warn("cluster_unexpected_message actor={} from={} elements={}", s->name(),
                  sender ? caf::to_string(sender->address()) : std::string{"anonymous"},
                  mv.content().size());
        return caf::result<caf::message>{caf::sec::unexpected_message};
    });
}

/// Schedules the next reconnect tick unless one is pending or nothing waits.
void schedule_tick(cluster_ptr self) {
    auto& st = self->state;
    if (st.tick_pending || !st.peers_waiting()) {
        return;
    }
    st.tick_pending = true;
    self->delayed_send(self, milliseconds{st.config.reconnect_interval_ms}, caf::tick_atom::value);
}

/// Sends this node's current info to every joined member.
void announce_self(cluster_ptr self) {
    for (const auto& [addr, m] : self->state.members) {
        self->send(m.handle, announce_atom::value, self->state.self_info);
    }
}

/// Records a member (or refreshes it); returns whether the topology changed. A member with the
/// same cluster address but another actor is an earlier life of it, and goes.
bool record_member(cluster_ptr self, caf::actor handle, member_info info) {
    auto& st = self->state;
    auto addr = handle.address();
    if (st.members.count(addr) > 0) {
        return st.apply_info(addr, std::move(info));
    }
    for (auto i = st.members.begin(); i != st.members.end();) {
        if (!info.cluster_address.empty()
            && i->second.info.cluster_address == info.cluster_address) {
            st.log->info("cluster_member_left name={} reason=replaced", i->second.info.name);
            self->demonitor(i->second.handle);
            st.unlink_peers(i->first);
            i = st.members.erase(i);
        } else {
            ++i;
        }
    }
    self->monitor(handle);
    st.log->info("cluster_member_joined name={} address={}", info.name, info.cluster_address);
    st.link_peers(info.cluster_address, addr);
    st.members.emplace(addr, member_entry{std::move(handle), std::move(info)});
    return true;
}

/// A join request reached this member (the joiner's side is `on_join_reply`).
caf::result<member_info> handle_join(cluster_ptr self,
                                     const std::string& user,
                                     const std::string& password,
                                     member_info info,
                                     caf::actor who) {
    auto& st = self->state;
    if (!st.credentials_ok(user, password)) {
        st.log->warn("cluster_join_refused peer={} reason=\"{}\"", label(info),
                     bad_credentials_text);
        return caf::make_error(cluster_errc::bad_credentials, bad_credentials_text);
    }
    if (!who || who.node() == self->node()) {
        return caf::make_error(cluster_errc::not_a_remote_join);
    }
    if (record_member(self, std::move(who), std::move(info))) {
        st.notify();
    }
    return st.self_info;
}

/// A member we asked to join accepted us.
void on_join_reply(cluster_ptr self,
                   const std::string& address,
                   caf::actor peer,
                   member_info info) {
    auto& st = self->state;
    auto addr = peer.address();
    bool changed = record_member(self, peer, std::move(info));
    st.link_peers(address, addr);
    // Our info may have changed while the join was under way (the member did not know us yet
    // and so got no announcement); send the current one. Its version makes a repeat harmless.
    self->send(peer, announce_atom::value, st.self_info);
    if (changed) {
        st.notify();
    }
}

/// A connect or join attempt failed; `refused` means the member said no to our credentials.
void on_attempt_failed(cluster_ptr self,
                       const std::string& address,
                       const caf::error& err,
                       bool refused) {
    auto& st = self->state;
    auto i = st.peers.find(address);
    if (i == st.peers.end()) {
        return;
    }
    auto reason = describe(self->system(), err);
    if (refused) {
        st.log->warn("cluster_join_refused by={} reason=\"{}\"", address, reason);
        i->second.retry_after = steady::now() + refused_retry_interval;
    } else if (++i->second.failures == 1) {
        st.log->debug("cluster_member_unreachable address={} reason=\"{}\"", address, reason);
    }
    schedule_tick(self);
}

/// Asks the member behind `peer` (just connected) to let this node join.
void send_join(cluster_ptr self, const std::string& address, caf::actor peer) {
    auto& st = self->state;
    self->request(peer, st.remote_timeout(), caf::join_atom::value, st.config.user,
                  st.config.password, st.self_info, caf::actor_cast<caf::actor>(self))
        .then(
            [=](member_info& info) {
                self->state.peers[address].in_flight = false;
                on_join_reply(self, address, peer, std::move(info));
            },
            [=](caf::error& err) {
                self->state.peers[address].in_flight = false;
                bool refused = err.category() == caf::atom("cluster");
                on_attempt_failed(self, address, err, refused);
            });
}

/// The middleman connected to `address`; joins the actor published there.
void on_connected(cluster_ptr self,
                  const std::string& address,
                  const caf::node_id& nid,
                  const caf::strong_actor_ptr& ptr) {
    auto& p = self->state.peers[address];
    if (nid == self->node()) {
        // Another spelling of our own address: never try it again.
        p.in_flight = false;
        p.is_self = true;
        return;
    }
    if (!ptr) {
        p.in_flight = false;
        on_attempt_failed(self, address, caf::make_error(caf::sec::no_actor_published_at_port),
                          false);
        return;
    }
    send_join(self, address, caf::actor_cast<caf::actor>(ptr));
}

/// Starts connecting to `address` through the middleman actor (never the blocking calls).
void attempt(cluster_ptr self, const std::string& address) {
    auto& p = self->state.peers[address];
    p.in_flight = true;
    auto mm = self->system().middleman().actor_handle();
    self->request(mm, self->state.remote_timeout(), caf::connect_atom::value, p.host, p.port)
        .then([=](caf::node_id& nid, caf::strong_actor_ptr& ptr,
                  std::set<std::string>&) { on_connected(self, address, nid, ptr); },
              [=](caf::error& err) {
                  self->state.peers[address].in_flight = false;
                  on_attempt_failed(self, address, err, false);
              });
}

/// The reconnect timer: tries every configured member that is due.
void on_tick(cluster_ptr self) {
    auto& st = self->state;
    st.tick_pending = false;
    auto now = steady::now();
    for (auto& [address, p] : st.peers) {
        if (!p.is_self && !p.member && !p.in_flight && now >= p.retry_after) {
            attempt(self, address);
        }
    }
    schedule_tick(self);
}

/// A joined member's actor is gone (its node stopped, crashed or became unreachable).
void on_member_down(cluster_ptr self, const caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.members.find(dm.source);
    if (i == st.members.end()) {
        return;
    }
    st.log->info("cluster_member_left name={} reason={}", i->second.info.name,
                 describe(self->system(), dm.reason));
    st.members.erase(i);
    st.unlink_peers(dm.source);
    st.notify();
    schedule_tick(self);
}

/// The facade reports the bound port: the cluster starts joining. Returns false (and changes
/// nothing) unless the message comes from a local actor.
bool on_start(cluster_ptr self, uint16_t port) {
    auto& st = self->state;
    auto sender = self->current_sender();
    if (st.started || !sender || sender->node() != self->node()) {
        return false;
    }
    st.started = true;
    st.facade = sender->address();
    if (st.self_info.cluster_address.empty()) {
        st.self_info.cluster_address = st.config.host + ":" + std::to_string(port);
    }
    st.load_peers();
    st.log->info("cluster_listening address={} members={}", st.self_info.cluster_address,
                 st.peers.size());
    self->send(self, caf::tick_atom::value);
    st.tick_pending = true;
    return true;
}

/// A local update of this node's info (only from the facade).
void on_update(cluster_ptr self, member_info info) {
    auto& st = self->state;
    auto sender = self->current_sender();
    if (!sender || sender->address() != st.facade) {
        st.log->warn("cluster_update_ignored from={} reason=\"not the local node\"",
                     sender ? caf::to_string(sender->address()) : std::string{"anonymous"});
        return;
    }
    st.set_self(std::move(info));
    announce_self(self);
    st.notify();
}

/// A member announced its new info; others are ignored (they have not joined).
void on_announce(cluster_ptr self, member_info info) {
    auto& st = self->state;
    auto sender = self->current_sender();
    if (!sender || st.members.count(sender->address()) == 0) {
        st.log->debug("cluster_announce_ignored from={} reason=\"not a member\"",
                      sender ? caf::to_string(sender->address()) : std::string{"anonymous"});
        return;
    }
    if (st.apply_info(sender->address(), std::move(info))) {
        st.notify();
    }
}

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
    auto rp = self->make_response_promise<replication::pair_reply>();
    self->request(m->handle, st.remote_timeout(), replication::pair_atom::value, name, group,
                  replica)
        .then([rp](replication::pair_reply& r) mutable { rp.deliver(std::move(r)); },
              [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
    return rp;
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
        .then([rp](replication::pair_reply& r) mutable { rp.deliver(std::move(r)); },
              [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
    return rp;
}

/// Asks every joined member about `node_id` and answers with the tally once each answered or
/// `wait` passed (a member that does not answer counts as not answering, never as a vote).
caf::result<vote_tally> run_quorum(cluster_ptr self, const std::string& node_id, uint32_t wait_ms) {
    auto& st = self->state;
    auto tally = std::make_shared<vote_tally>();
    tally->node_id = node_id;
    tally->lives_seen_max = st.lives_seen_max;
    tally->asked = static_cast<uint32_t>(st.members.size());
    for (const auto& [address, p] : st.peers) {
        if (!p.is_self) {
            ++tally->peers_configured;
            tally->peers_joined += p.member ? 1 : 0;
        }
    }
    auto rp = self->make_response_promise<vote_tally>();
    if (st.members.empty()) {
        rp.deliver(*tally);
        return rp;
    }
    auto outstanding = std::make_shared<uint32_t>(tally->asked);
    auto done = [rp, tally, outstanding]() mutable {
        if (--*outstanding == 0) {
            rp.deliver(*tally);
        }
    };
    for (const auto& [addr, m] : st.members) {
        self->request(m.handle, milliseconds{wait_ms}, vote_atom::value, node_id)
            .then(
                [tally, done](vote_answer& a) mutable {
                    ++tally->answered;
                    if (a.live_server) {
                        ++tally->live_answers;
                        ++(a.sees_live ? tally->lives_seeing : tally->lives_not_seeing);
                    }
                    done();
                },
                [done](caf::error&) mutable { done(); });
    }
    return rp;
}

/// The cluster actor once started: the local API and the protocol between members.
caf::behavior running(cluster_ptr self) {
    // Requests the facade delegates keep their original (in-process) sender.
    auto local = [self] {
        auto sender = self->current_sender();
        return sender && sender->node() == self->node();
    };
    return {
        [=](replication::endpoint_atom, caf::actor& journal) {
            if (local()) {
                self->state.replication_endpoint = std::move(journal);
            }
        },
        [=](replication::pair_atom, const std::string& address, const std::string& name,
            const std::string& group, caf::actor& replica) -> caf::result<replication::pair_reply> {
            if (!local()) {
                return caf::make_error(cluster_errc::not_local);
            }
            return request_pairing(self, address, name, group, replica);
        },
        [=](replication::pair_atom, const std::string& name, const std::string& group,
            caf::actor& replica) -> caf::result<replication::pair_reply> {
            return accept_pairing(self, name, group, replica);
        },
        [=](quorum_atom, const std::string& node_id, uint32_t wait_ms) -> caf::result<vote_tally> {
            if (!local()) {
                return caf::make_error(cluster_errc::not_local);
            }
            return run_quorum(self, node_id, wait_ms);
        },
        [=](failback_atom, caf::actor& driver) {
            if (local()) {
                self->state.failback_endpoint = std::move(driver);
            }
        },
        [=](failback_atom, const std::string& address,
            const std::string& node_id) -> caf::result<bool> {
            auto& st = self->state;
            if (!local()) {
                return caf::make_error(cluster_errc::not_local);
            }
            auto* m = st.member_at(address);
            if (m == nullptr) {
                return caf::make_error(cluster_errc::no_such_member, address);
            }
            auto rp = self->make_response_promise<bool>();
            self->request(m->handle, st.remote_timeout(), failback_atom::value, node_id)
                .then([rp](bool ok) mutable { rp.deliver(ok); },
                      [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
            return rp;
        },
        [=](failback_atom, const std::string& node_id) -> caf::result<bool> {
            auto& st = self->state;
            if (!st.from_member(self)) {
                return caf::make_error(cluster_errc::not_a_member);
            }
            if (!st.failback_endpoint || st.self_info.node_id != node_id
                || st.self_info.role != "live") {
                return false;
            }
            auto rp = self->make_response_promise<bool>();
            self->request(st.failback_endpoint, st.remote_timeout(), failback_atom::value)
                .then([rp](bool ok) mutable { rp.deliver(ok); },
                      [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
            return rp;
        },
        [=](vote_atom, const std::string& node_id) -> caf::result<vote_answer> {
            if (!self->state.from_member(self)) {
                return caf::make_error(cluster_errc::not_a_member);
            }
            return self->state.answer(self->current_sender()->address(), node_id);
        },
        [=](caf::update_atom, member_info& info) { on_update(self, std::move(info)); },
        [=](caf::get_atom) -> caf::result<topology> {
            auto sender = self->current_sender();
            if (sender && sender->node() != self->node()) {
                return caf::make_error(cluster_errc::not_local);
            }
            return self->state.current();
        },
        [=](caf::join_atom, const std::string& user, const std::string& password, member_info& info,
            caf::actor& who) -> caf::result<member_info> {
            return handle_join(self, user, password, std::move(info), std::move(who));
        },
        [=](announce_atom, member_info& info) { on_announce(self, std::move(info)); },
        [=](manage_atom, caf::actor& status) {
            auto sender = self->current_sender();
            if (sender && sender->address() == self->state.facade) {
                self->state.management = std::move(status);
            }
        },
        [=](manage_atom, const std::string& user,
            const std::string& password) -> caf::result<caf::actor> {
            auto& st = self->state;
            auto sender = self->current_sender();
            auto from = sender ? caf::to_string(sender->node()) : std::string{"anonymous"};
            if (!st.credentials_ok(user, password)) {
                st.log->warn("management_refused from={} reason=\"bad cluster credentials\"", from);
                return caf::make_error(cluster_errc::bad_credentials);
            }
            if (!st.management) {
                return caf::make_error(cluster_errc::management_offline);
            }
            st.log->info("management_connected from={}", from);
            // A read-only session of its own, never the status actor: that one takes updates
            // from the node, and anything a remote node has once been handed stays reachable
            // over BASP by its id.
            return self->spawn<caf::linked>(management_session, st.management);
        },
        [=](caf::tick_atom) {
            if (self->current_sender() == self->ctrl()) {
                on_tick(self);
            }
        },
    };
}

/// The cluster actor. It is published before it knows its port, so until the facade reports
/// the port it only waits: every other message (an early join) stays in the mailbox and is
/// handled once the actor knows its own cluster address.
caf::behavior cluster_actor(cluster_ptr self,
                            config::cluster_config cfg,
                            member_info me,
                            std::function<void(const topology&)> on_change,
                            std::shared_ptr<spdlog::logger> log) {
    auto& st = self->state;
    st.config = std::move(cfg);
    st.self_info = std::move(me);
    // Versions start at 1, so any info a member announces is newer than "nothing known".
    st.self_info.version = std::max<uint64_t>(st.self_info.version, 1);
    st.on_change = std::move(on_change);
    st.log = std::move(log);
    self->set_default_handler(caf::skip);
    self->set_down_handler([self](caf::down_msg& dm) { on_member_down(self, dm); });
    return {
        [=](start_atom, uint16_t port) {
            if (on_start(self, port)) {
                drop_unexpected(self, self->state.log);
                self->become(running(self));
            }
        },
    };
}

/// The node's handle: forwards to the cluster actor, which trusts updates only from here.
/// Linked to the cluster actor. An exit sent here is passed on, and the facade goes only once
/// the cluster actor has, so whoever monitors the handle knows when on_change can no longer be
/// called. That takes a monitor as well as the link: an exit message from an actor also
/// unlinks the receiver from it (CAF 0.17), so the cluster actor, told to exit by the facade,
/// no longer sends the facade an exit of its own when it goes.
caf::behavior cluster_facade(caf::event_based_actor* self,
                             caf::actor cluster,
                             uint16_t port,
                             std::shared_ptr<spdlog::logger> log) {
    self->link_to(cluster);
    self->monitor(cluster);
    self->send(cluster, start_atom::value, port);
    drop_unexpected(self, log);
    self->set_down_handler([self](caf::down_msg& dm) { self->quit(dm.reason); });
    self->set_exit_handler([self, cluster](caf::exit_msg& msg) {
        if (msg.source == cluster.address()) {
            self->quit(msg.reason);
            return;
        }
        // The cluster actor ignores an exit with reason `normal`, like every CAF actor.
        caf::error reason = msg.reason ? msg.reason : caf::exit_reason::user_shutdown;
        self->send_exit(cluster, std::move(reason));
    });
    return {
        [=](caf::update_atom a, member_info& info) { self->send(cluster, a, std::move(info)); },
        [=](caf::get_atom a) { return self->delegate(cluster, a); },
        [=](manage_atom a, caf::actor& status) { self->send(cluster, a, std::move(status)); },
        [=](replication::endpoint_atom a, caf::actor& journal) {
            self->send(cluster, a, std::move(journal));
        },
        [=](replication::pair_atom a, const std::string& address, const std::string& name,
            const std::string& group, caf::actor& replica) {
            return self->delegate(cluster, a, address, name, group, std::move(replica));
        },
        [=](quorum_atom a, const std::string& node_id, uint32_t wait_ms) {
            return self->delegate(cluster, a, node_id, wait_ms);
        },
        [=](failback_atom a, caf::actor& driver) { self->send(cluster, a, std::move(driver)); },
        [=](failback_atom a, const std::string& address, const std::string& node_id) {
            return self->delegate(cluster, a, address, node_id);
        },
    };
}

} // namespace

std::vector<std::string> topology::backups_of(const std::string& node_id) const {
    std::vector<std::string> out;
    if (node_id.empty()) {
        return out;
    }
    for (const auto& m : members) {
        if (m.role == "backup" && m.node_id == node_id && !m.connector.empty()) {
            out.push_back(m.connector);
        }
    }
    return out;
}

std::string topology::live_of(const std::string& node_id) const {
    if (node_id.empty()) {
        return {};
    }
    for (const auto& m : members) {
        if (m.role == "live" && m.node_id == node_id) {
            return m.connector;
        }
    }
    return {};
}

std::vector<topology::native_group> topology::native_groups() const {
    std::vector<native_group> out;
    for (const auto& m : members) {
        if (m.node_id.empty() || m.native_connectors.empty()
            || (m.role != "live" && m.role != "backup")) {
            continue;
        }
        auto it = std::find_if(out.begin(), out.end(),
                               [&m](const native_group& g) { return g.node_id == m.node_id; });
        if (it == out.end()) {
            out.push_back(native_group{m.node_id, "", ""});
            it = std::prev(out.end());
        }
        auto& slot = m.role == "live" ? it->live : it->backup;
        if (slot.empty()) {
            slot = m.native_connectors.front();
        }
    }
    return out;
}

uint32_t votes_needed(const vote_tally& t, int32_t quorum_size) {
    if (quorum_size > 0) {
        return static_cast<uint32_t>(quorum_size);
    }
    return std::max<uint32_t>(t.lives_seen_max, 1) / 2 + 1;
}

bool live_is_gone(const vote_tally& t, int32_t quorum_size) {
    return t.lives_seeing == 0 && 1 + t.lives_not_seeing >= votes_needed(t, quorum_size);
}

bool nobody_serves(const vote_tally& t) {
    return t.lives_seeing == 0 && 2 * (t.peers_joined + 1) > t.peers_configured + 1;
}

bool live_has_quorum(const vote_tally& t, int32_t quorum_size) {
    return t.lives_seeing == 0 && 1 + t.live_answers >= votes_needed(t, quorum_size);
}

std::string to_string(cluster_errc e) {
    switch (e) {
        case cluster_errc::none:
            return "none";
        case cluster_errc::bad_credentials:
            return "bad_credentials";
        case cluster_errc::not_a_remote_join:
            return "not_a_remote_join";
        case cluster_errc::not_local:
            return "not_local";
        case cluster_errc::management_offline:
            return "management_offline";
        case cluster_errc::not_a_member:
            return "not_a_member";
        case cluster_errc::no_such_member:
            return "no_such_member";
        case cluster_errc::not_serving:
            return "not_serving";
        case cluster_errc::wrong_group:
            return "wrong_group";
    }
    return "unknown";
}

bool same_secret(std::string_view a, std::string_view b) {
    // Every byte of the longer string is looked at whatever the contents, so the time taken
    // tells an attacker nothing about how much of a guess was right.
    size_t n = std::max(a.size(), b.size());
    unsigned diff = a.size() == b.size() ? 0U : 1U;
    for (size_t i = 0; i < n; ++i) {
        auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
        auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
        diff |= static_cast<unsigned>(x ^ y);
    }
    return diff == 0;
}

void add_message_types(caf::actor_system_config& cfg) {
    cfg.add_message_type<member_info>("actormq::cluster::member_info");
    cfg.add_message_type<topology>("actormq::cluster::topology");
    cfg.add_message_type<vote_answer>("actormq::cluster::vote_answer");
    cfg.add_message_type<vote_tally>("actormq::cluster::vote_tally");
    replication::add_message_types(cfg);
    cfg.add_error_category(caf::atom("cluster"),
                           [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                               auto text = "cluster: " + to_string(static_cast<cluster_errc>(code));
                               if (ctx.match_elements<std::string>()) {
                                   text += " (" + ctx.get_as<std::string>(0) + ")";
                               }
                               return text;
                           });
}

void stop(caf::actor_system& sys, const caf::actor& handle) {
    if (!handle) {
        return;
    }
    caf::scoped_actor waiter{sys};
    waiter->monitor(handle);
    waiter->send_exit(handle, caf::exit_reason::user_shutdown);
    // Bounded: an actor that does not go within this time is left to ~actor_system.
    waiter->receive([](const caf::down_msg&) {}, caf::after(std::chrono::seconds(5)) >> [] {});
}

start_result start(caf::actor_system& sys,
                   const config::cluster_config& cfg,
                   member_info self,
                   std::function<void(const topology&)> on_change,
                   std::shared_ptr<spdlog::logger> log) {
    start_result out;
    auto actor = sys.spawn(cluster_actor, cfg, std::move(self), std::move(on_change), log);
    auto port = sys.middleman().publish(actor, cfg.port, cfg.host.c_str(), true);
    if (!port) {
        out.error = "cannot publish the cluster actor on " + cfg.host + ":"
                    + std::to_string(cfg.port) + ": " + sys.render(port.error());
        caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
        return out;
    }
    out.port = *port;
    out.handle = sys.spawn(cluster_facade, actor, *port, std::move(log));
    return out;
}

} // namespace actormq::cluster
