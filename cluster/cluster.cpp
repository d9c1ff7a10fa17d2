// SPDX-License-Identifier: Apache-2.0
#include "cluster/cluster.hpp"

#include "actors/replication/messages.hpp"
#include "cluster/cluster_state.hpp"
#include "cluster/colocation.hpp"
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

using namespace detail;

/// Facade -> cluster actor, once: the bound port; the sender becomes the trusted facade.
using start_atom = caf::atom_constant<caf::atom("start")>;

/// A refused joiner waits at least this long before it asks again, so a member with the wrong
/// password neither floods the other's log nor guesses passwords quickly.
constexpr milliseconds refused_retry_interval{3000};

/// The reason text the refusing member sends back (never the password itself).
constexpr const char* bad_credentials_text = "bad cluster credentials";

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
    auto joined = st.members.emplace(addr, member_entry{std::move(handle), std::move(info)});
    ask_joined(self, joined.first->second);
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
    // Another server instance of this process may join (a colocated backup's member), but not
    // this actor itself.
    if (!who || who.address() == self->address()) {
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
    // A cluster actor of this process other than this one is a member like any other: the
    // node's own and its colocated backups' (docs/ha.md, "Colocated backups").
    if (nid == self->node() && ptr == self->ctrl()) {
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
    // A scale-down batch waiting for this member fails now, not at its timeout.
    for (auto w = st.scale_down_waiting.begin(); w != st.scale_down_waiting.end();) {
        if (w->second.first != dm.source) {
            ++w;
            continue;
        }
        w->second.second.deliver(
            caf::make_error(cluster_errc::scale_down_failed,
                            "member " + i->second.info.name + " left the cluster"));
        w = st.scale_down_waiting.erase(w);
    }
    st.note_left(i->second, dm.reason);
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
        [=](vote_release_atom, const std::string& node_id) {
            auto& st = self->state;
            auto sender = self->current_sender();
            if (local()) {
                release_grants(self, node_id);
            } else if (sender && st.from_member(self)) {
                auto g = st.grants.find(node_id);
                if (g != st.grants.end() && g->second.asker == sender->address()) {
                    st.grants.erase(g);
                }
            }
        },
        [=](failback_atom, caf::actor& driver) {
            if (local()) {
                self->state.failback_endpoint = std::move(driver);
            }
        },
        [=](failback_atom, const std::string& address,
            const std::string& node_id) -> caf::result<bool> {
            if (!local()) {
                return caf::make_error(cluster_errc::not_local);
            }
            return request_failback(self, address, node_id);
        },
        [=](failback_atom, const std::string& node_id) -> caf::result<bool> {
            return accept_failback(self, node_id);
        },
        [=](backup_request_atom, caf::actor& endpoint) {
            if (local()) {
                self->state.colocation_endpoint = std::move(endpoint);
            }
        },
        [=](backup_request_atom, const std::string& address) -> caf::result<caf::message> {
            if (!local()) {
                return caf::make_error(cluster_errc::not_local);
            }
            return request_backup(self, address);
        },
        [=](backup_request_atom, const std::string& name, const std::string& node_id)
            -> caf::result<backup_grant> { return accept_backup_request(self, name, node_id); },
        [=](scale_down_atom, caf::actor& endpoint) {
            if (local()) {
                self->state.scale_down_endpoint = std::move(endpoint);
            }
        },
        [=](scale_down_atom, const std::string& address, scale_down_batch& batch,
            uint32_t timeout_ms) -> caf::result<scale_down_ack> {
            if (!local()) {
                return caf::make_error(cluster_errc::not_local);
            }
            return send_scale_down(self, address, std::move(batch), timeout_ms);
        },
        [=](scale_down_atom, scale_down_batch& batch,
            uint32_t timeout_ms) -> caf::result<scale_down_ack> {
            return accept_scale_down(self, std::move(batch), timeout_ms);
        },
        [=](vote_atom, const std::string& node_id, uint32_t wait_ms) -> caf::result<vote_answer> {
            if (!self->state.from_member(self)) {
                return caf::make_error(cluster_errc::not_a_member);
            }
            return self->state.vote(self->current_sender()->address(), node_id, wait_ms,
                                    std::chrono::steady_clock::now(), self->address());
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
    st.lives_by_process = live_processes::of(self->system());
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
        [=](vote_release_atom a, const std::string& node_id) { self->send(cluster, a, node_id); },
        [=](failback_atom a, caf::actor& driver) { self->send(cluster, a, std::move(driver)); },
        [=](backup_request_atom a, caf::actor& endpoint) {
            self->send(cluster, a, std::move(endpoint));
        },
        [=](backup_request_atom a, const std::string& address) {
            return self->delegate(cluster, a, address);
        },
        [=](scale_down_atom a, caf::actor& endpoint) {
            self->send(cluster, a, std::move(endpoint));
        },
        [=](scale_down_atom a, const std::string& address, scale_down_batch& batch,
            uint32_t timeout_ms) {
            return self->delegate(cluster, a, address, std::move(batch), timeout_ms);
        },
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
        case cluster_errc::not_hosting:
            return "not_hosting";
        case cluster_errc::backups_full:
            return "backups_full";
        case cluster_errc::backup_failed:
            return "backup_failed";
        case cluster_errc::not_scaling_target:
            return "not_scaling_target";
        case cluster_errc::scale_down_failed:
            return "scale_down_failed";
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
    cfg.add_message_type<backup_grant>("actormq::cluster::backup_grant");
    cfg.add_message_type<colocated_spec>("actormq::cluster::colocated_spec");
    cfg.add_message_type<scale_down_message>("actormq::cluster::scale_down_message");
    cfg.add_message_type<std::vector<scale_down_message>>(
        "std::vector<actormq::cluster::scale_down_message>");
    cfg.add_message_type<scale_down_batch>("actormq::cluster::scale_down_batch");
    cfg.add_message_type<scale_down_ack>("actormq::cluster::scale_down_ack");
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
