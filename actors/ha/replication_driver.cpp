// SPDX-License-Identifier: Apache-2.0
#include "actors/ha/replication_driver.hpp"

#include "actors/replication/activation_record.hpp"
#include "cluster/cluster.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/message_view.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/sec.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <tuple>
#include <type_traits>

namespace actormq {

namespace {

namespace ra = repl_activation;
using driver_ptr = caf::stateful_actor<replication_driver_state>*;

void run(driver_ptr self, const ra::actions& as);

/// The servers the machine may pair with: the server of its own node id when it fails back,
/// else the lives of its group that have no backup.
std::vector<std::string> candidates_of(const replication_driver_state& st) {
    std::vector<std::string> out;
    const auto& t = st.topology;
    const auto& m = st.machine;
    for (const auto& member : t.members) {
        if (member.cluster_address == st.setup.cluster_address || member.role != "live"
            || member.node_id.empty()) {
            continue;
        }
        // A colocated backup was asked for by one live: it pairs with that one only.
        bool fits = !st.setup.live_node_id.empty() ? member.node_id == st.setup.live_node_id
                    : m.seeks_own_node()
                        ? member.node_id == m.node_id()
                        : member.group == st.setup.group && t.backups_of(member.node_id).empty();
        if (fits) {
            out.push_back(member.cluster_address);
        }
    }
    return out;
}

/// Another member that announces itself live with the node id this server serves, if any.
std::optional<ra::rival_live> rival_of(const replication_driver_state& st) {
    const auto& m = st.machine;
    if (m.current_phase() != ra::phase::live || m.node_id().empty()) {
        return std::nullopt;
    }
    for (const auto& member : st.topology.members) {
        if (member.cluster_address != st.setup.cluster_address && member.role == "live"
            && member.node_id == m.node_id()) {
            // Both sides compare the same two addresses, so they agree on who keeps serving.
            return ra::rival_live{member.name, member.sequence,
                                  member.cluster_address < st.setup.cluster_address};
        }
    }
    return std::nullopt;
}

void feed(driver_ptr self, const ra::event& e) {
    run(self, self->state.machine.handle(e));
    // What the machine looks for may have changed with this event (a primary that found its
    // node id served now looks for that server): give it the candidates anew if they differ.
    auto& st = self->state;
    auto now = candidates_of(st);
    if (now != st.candidates) {
        st.candidates = now;
        run(self, st.machine.handle(ra::candidates{std::move(now)}));
    }
    // After every event, not only on a topology change: a machine busy when the rival
    // appeared decides once it is not.
    if (auto rival = rival_of(st)) {
        run(self, st.machine.handle(*rival));
    }
    if (st.superseded_due) {
        run(self, st.machine.handle(ra::superseded{st.superseded_by}));
    }
}

std::shared_ptr<spdlog::logger> log() {
    return spdlog::get("actors");
}

/// "gone 1 of 2 lives seen, 1 saw it served, needed 2" for logs and the page.
std::string summary(const cluster::vote_tally& t, int32_t quorum_size) {
    return "asked=" + std::to_string(t.asked) + " answered=" + std::to_string(t.answered)
           + " lives_answered=" + std::to_string(t.live_answers)
           + " lives_seeing=" + std::to_string(t.lives_seeing)
           + " lives_not_seeing=" + std::to_string(t.lives_not_seeing) + " lives_seen_max="
           + std::to_string(t.lives_seen_max) + " peers_joined=" + std::to_string(t.peers_joined)
           + "/" + std::to_string(t.peers_configured)
           + " needed=" + std::to_string(cluster::votes_needed(t, quorum_size))
           + (t.local_live_answers > 0 ? " lives_in_process=" + std::to_string(t.local_live_answers)
                                             + " witnesses=" + std::to_string(t.witness_processes)
                                       : std::string{})
           + (t.claims > 0 ? " claimed_by_another=" + std::to_string(t.claims) : std::string{});
}

template <class Event, class Handle, class... Ts>
void ask_instance(driver_ptr self, const Handle& io, caf::timespan timeout, Ts... xs) {
    self->request(io, timeout, xs...)
        .then([self](bool ok) { feed(self, Event{ok}); },
              [self](const caf::error& e) {
                  log()->error("ha_io_failed actor=io_instance error={}", caf::to_string(e));
                  feed(self, Event{false});
              });
}

void pair_with(driver_ptr self, const std::string& address) {
    auto& st = self->state;
    st.replica = st.setup.effects->spawn_replica(caf::actor_cast<caf::actor>(self));
    self->monitor(st.replica);
    self->request(st.setup.cluster, st.setup.timeouts.pair, replication::pair_atom::value, address,
                  st.setup.name, st.setup.group, st.replica)
        .then(
            [self](replication::pair_reply& r) {
                feed(self, ra::paired{true, r.node_id, {}, r.sequence});
            },
            [self](const caf::error& e) {
                feed(self, ra::paired{false, {}, self->system().render(e)});
            });
}

/// The primary's claimed node id, with the activation sequence its directory records for it.
void read_sequence(driver_ptr self, const std::string& node_id) {
    auto& st = self->state;
    self->request(st.setup.files, st.setup.timeouts.close, repl_record_atom::value)
        .then(
            [self, node_id](std::string& error, std::string& recorded, uint64_t sequence) {
                // A record of another node id (a directory reused by hand) says nothing about
                // this one.
                feed(self, ra::node_id_claimed{node_id, error, recorded == node_id ? sequence : 0});
            },
            [self, node_id](const caf::error& e) {
                feed(self, ra::node_id_claimed{node_id, caf::to_string(e)});
            });
}

/// Records the activation durably, then loads the journal: a crash in between leaves a
/// record one ahead of what served, which only makes this journal count as newer than it is
/// by one activation of itself.
void record_and_load(driver_ptr self, const ra::load_journal& x) {
    auto& st = self->state;
    auto load = [self, node_id = x.node_id] {
        auto& s = self->state;
        ask_instance<ra::journal_loaded>(self, s.setup.instance, s.setup.timeouts.instance.load,
                                         ha_load_atom::value, node_id);
    };
    self->request(st.setup.files, st.setup.timeouts.close, repl_record_atom::value, x.node_id,
                  x.sequence)
        .then(
            [self, load](std::string& error) {
                if (!error.empty()) {
                    log()->error("replication_record_failed error=\"{}\"", error);
                    feed(self, ra::journal_loaded{false});
                    return;
                }
                load();
            },
            [self](const caf::error& e) {
                log()->error("replication_record_failed error={}", caf::to_string(e));
                feed(self, ra::journal_loaded{false});
            });
}

void close_replica(driver_ptr self) {
    auto& st = self->state;
    auto replica = st.replica;
    st.replica = nullptr;
    if (!replica) {
        feed(self, ra::replica_closed{false});
        return;
    }
    self->demonitor(replica);
    self->request(replica, st.setup.timeouts.close, replication::close_atom::value)
        .then([self](bool ok) { feed(self, ra::replica_closed{ok}); },
              [self](const caf::error&) { feed(self, ra::replica_closed{false}); });
}

void ask_vote(driver_ptr self, const ra::ask_vote& v) {
    auto& st = self->state;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(st.setup.timeouts.vote);
    auto what = v.what;
    auto quorum = st.setup.quorum_size;
    // The cluster answers within `wait` (each member's answer is bounded by it); the margin
    // covers the hop to the cluster actor and back.
    self->request(st.setup.cluster, st.setup.timeouts.vote + std::chrono::seconds(1),
                  cluster::quorum_atom::value, v.node_id, static_cast<uint32_t>(wait.count()))
        .then(
            [self, what, quorum, node_id = v.node_id](cluster::vote_tally& t) {
                ra::vote_result r;
                r.summary = summary(t, quorum);
                r.sequence_max = t.sequence_max;
                switch (what) {
                    case ra::question::live_gone:
                        r.won = cluster::live_is_gone(t, quorum);
                        break;
                    case ra::question::own_quorum:
                        r.won = cluster::live_has_quorum(t, quorum);
                        break;
                    case ra::question::start_check:
                        r.served = t.lives_seeing > 0;
                        r.won = cluster::nobody_serves(t);
                        break;
                }
                if (t.claims > 0) {
                    // Two servers asking at once each hold the other up (cluster_state::vote):
                    // a random part of the retry wait keeps them from meeting again.
                    auto& st = self->state;
                    std::uniform_int_distribution<uint32_t> part{
                        0, st.setup.settings.vote_retry_wait_ms / 2};
                    r.retry_jitter_ms = part(st.random);
                }
                feed(self, r);
                // Unless the machine acts on the vote (takes the node id over, starts on its
                // journal, keeps serving), what the vote was granted would only hold up
                // another server's vote (cluster_state::vote): give it back.
                // A lost vote never is, though its start-over passes `closing` too.
                auto ph = self->state.machine.current_phase();
                if (!r.won
                    || (ph != ra::phase::closing && ph != ra::phase::loading
                        && ph != ra::phase::opening && ph != ra::phase::live)) {
                    self->send(self->state.setup.cluster, cluster::vote_release_atom::value,
                               node_id);
                }
            },
            [self, node_id = v.node_id](const caf::error& e) {
                feed(self, ra::vote_result{false, "vote failed: " + self->system().render(e)});
                self->send(self->state.setup.cluster, cluster::vote_release_atom::value, node_id);
            });
}

void run_one(driver_ptr self, const ra::action& a) {
    auto& st = self->state;
    const auto& t = st.setup.timeouts;
    std::visit(
        [&](const auto& x) {
            using type = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<type, ra::prepare_directory>) {
                self->request(st.setup.files, t.close, repl_prepare_atom::value, x.discard_record)
                    .then(
                        [self](std::string& error, std::string& held, uint64_t sequence) {
                            feed(self, ra::directory_ready{error, held, sequence});
                        },
                        [self](const caf::error& e) {
                            feed(self, ra::directory_ready{caf::to_string(e)});
                        });
            } else if constexpr (std::is_same_v<type, ra::pair_with>) {
                pair_with(self, x.address);
            } else if constexpr (std::is_same_v<type, ra::close_replica>) {
                close_replica(self);
            } else if constexpr (std::is_same_v<type, ra::ask_vote>) {
                ask_vote(self, x);
            } else if constexpr (std::is_same_v<type, ra::claim_node_id>) {
                self->request(st.setup.locks, t.instance.lock_request, ha_lock_atom::value,
                              lock_op::claim_node_id, lock_state{})
                    .then(
                        [self](const lock_reply& r) {
                            if (!r.error.empty()) {
                                feed(self, ra::node_id_claimed{r.node_id, r.error});
                                return;
                            }
                            read_sequence(self, r.node_id);
                        },
                        [self](const caf::error& e) {
                            feed(self, ra::node_id_claimed{{}, caf::to_string(e)});
                        });
            } else if constexpr (std::is_same_v<type, ra::load_journal>) {
                record_and_load(self, x);
            } else if constexpr (std::is_same_v<type, ra::open_acceptors>) {
                ask_instance<ra::acceptors_opened>(self, st.setup.instance, t.instance.open,
                                                   ha_open_atom::value);
            } else if constexpr (std::is_same_v<type, ra::deactivate>) {
                ask_instance<ra::deactivated>(self, st.setup.instance, t.instance.close,
                                              ha_close_atom::value, true);
            } else if constexpr (std::is_same_v<type, ra::resume_journal>) {
                st.setup.effects->resume_journal();
            } else if constexpr (std::is_same_v<type, ra::request_failback>) {
                self->request(st.setup.cluster, t.pair, cluster::failback_atom::value, x.address,
                              st.machine.node_id())
                    .then(
                        [self](bool ok) {
                            feed(self, ra::failback_answer{ok, "refused"});
                        },
                        [self](const caf::error& e) {
                            feed(self, ra::failback_answer{false, self->system().render(e)});
                        });
            } else if constexpr (std::is_same_v<type, ra::answer_failback>) {
                if (st.failback.pending()) {
                    st.failback.deliver(x.ok);
                }
            } else if constexpr (std::is_same_v<type, ra::schedule_tick>) {
                self->delayed_send(self, std::chrono::milliseconds(x.ms), ha_tick_atom::value,
                                   x.generation);
            } else if constexpr (std::is_same_v<type, ra::note>) {
                int64_t ms = -1;
                if (x.kind == ra::note_kind::live_lost) {
                    st.lost_at = std::chrono::steady_clock::now();
                } else if (x.kind == ra::note_kind::live && st.setup.settings.backup
                           && st.lost_at) {
                    // A failover: timed from the loss. A backup starting on a journal it held
                    // lost nothing here, so it reports no duration.
                    ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - *st.lost_at)
                             .count();
                    st.lost_at.reset();
                }
                st.setup.effects->note(x, ms);
            } else if constexpr (std::is_same_v<type, ra::exit_process>) {
                st.setup.effects->exit_process(x.status);
            } else {
                static_assert(std::is_same_v<type, ra::finish>);
                self->quit();
            }
        },
        a);
}

void run(driver_ptr self, const ra::actions& as) {
    for (const auto& a : as) {
        run_one(self, a);
    }
}

} // namespace

caf::behavior replication_driver(driver_ptr self, replication_setup setup) {
    self->state.machine = ra::machine{setup.settings};
    self->state.setup = std::move(setup);
    self->set_default_handler([self](caf::scheduled_actor*,
                                     caf::message_view& x) -> caf::result<caf::message> {
        ++self->state.unexpected;
        log()->warn("unexpected_message actor=replication message={}", caf::to_string(x.content()));
        return caf::sec::unexpected_message;
    });
    // The replica quit without a report (it failed before it could say so, or was killed).
    self->set_down_handler([self](caf::down_msg& dm) {
        if (self->state.replica && dm.source == self->state.replica.address()) {
            self->state.replica = nullptr;
            feed(self, ra::replica_failed{"the replica stopped: " + caf::to_string(dm.reason)});
        }
    });
    return {
        [self](ha_start_atom) { feed(self, ra::start{}); },
        [self](ha_tick_atom, uint64_t generation) { feed(self, ra::tick{generation}); },
        [self](ha_fail_atom) { feed(self, ra::storage_failure{}); },
        [self](ha_stop_atom) { feed(self, ra::stop_request{}); },
        [self](cluster::topology& t) {
            self->state.topology = std::move(t);
            auto now = candidates_of(self->state);
            if (now != self->state.candidates) {
                self->state.candidates = now;
                feed(self, ra::candidates{std::move(now)});
            } else if (auto rival = rival_of(self->state)) {
                feed(self, *rival);
            }
        },
        [self](cluster::failback_atom) -> caf::result<bool> {
            auto& st = self->state;
            if (st.failback.pending()) {
                return false; // one at a time
            }
            auto rp = self->make_response_promise<bool>();
            st.failback = rp;
            feed(self, ra::failback_requested{});
            if (st.failback.pending()) {
                // The machine answers every request at once; an answer not given is a no.
                st.failback.deliver(false);
            }
            return rp; // answered through st.failback
        },
        [self](repl_superseded_atom, std::string& by) {
            auto& st = self->state;
            if (by == st.superseded_by) {
                return;
            }
            st.superseded_by = std::move(by);
            st.superseded_due = false;
            ++st.superseded_timer;
            if (!st.superseded_by.empty()) {
                // Five pairing retries, and never under 5 s: a move releases the old backup
                // as soon as its new one runs.
                auto grace = std::chrono::milliseconds(
                    5 * std::max<uint32_t>(st.setup.settings.retry_replication_wait_ms, 1000));
                self->delayed_send(self, grace, repl_superseded_atom::value, st.superseded_timer);
            }
        },
        [self](repl_superseded_atom, uint64_t timer) {
            auto& st = self->state;
            if (timer == st.superseded_timer && !st.superseded_by.empty()) {
                st.superseded_due = true;
                feed(self, ra::superseded{st.superseded_by});
            }
        },
        [self](repl_lost_atom) { feed(self, ra::backup_lost{}); },
        [self](repl_synced_atom) { feed(self, ra::backup_synced{}); },
        [self](replication::report_atom, replication::replica_report& r) {
            auto sender = self->current_sender();
            if (!self->state.replica || !sender
                || sender->address() != self->state.replica.address()) {
                return; // a replica closed before
            }
            using k = replication::replica_report;
            switch (r.kind) {
                case k::progress:
                    break;
                case k::in_sync:
                    feed(self, ra::replica_in_sync{});
                    break;
                case k::lost:
                    feed(self, ra::replica_lost{r.synced});
                    break;
                case k::failed:
                    self->demonitor(self->state.replica);
                    self->state.replica = nullptr;
                    feed(self, ra::replica_failed{r.reason});
                    break;
            }
        },
    };
}

caf::behavior
replication_files(caf::event_based_actor*, std::string directory, uint32_t max_saved) {
    using held = std::tuple<std::string, std::string, uint64_t>;
    auto read = [directory]() -> held {
        replication::activation_record rec;
        auto error = replication::read_activation(directory, rec);
        return {error, rec.node_id, rec.sequence};
    };
    return {
        [directory, max_saved, read](repl_prepare_atom, bool discard_record) -> held {
            if (!discard_record) {
                auto r = read();
                if (!std::get<0>(r).empty() || !std::get<1>(r).empty()) {
                    return r; // a journal this server served: the machine decides
                }
            }
            return {replication::move_aside(directory, "actormq-data", "amq", max_saved), {}, 0};
        },
        [read](repl_record_atom) -> held { return read(); },
        [directory](repl_record_atom, const std::string& node_id, uint64_t sequence) {
            return replication::write_activation(directory, {node_id, sequence});
        },
    };
}

} // namespace actormq
