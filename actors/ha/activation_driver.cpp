// SPDX-License-Identifier: Apache-2.0
#include "actors/ha/activation_driver.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/message_view.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/sec.hpp>
#include <spdlog/spdlog.h>

#include <type_traits>

namespace actormq {

namespace {

using driver_ptr = activation_actor::stateful_pointer<activation_driver_state>;

void run(driver_ptr self, const activation::actions& as);

/// Feeds one event to the machine and carries out what it answers.
void feed(driver_ptr self, const activation::event& e) {
    run(self, self->state.machine.handle(e));
}

/// What a failed lock request says in the log: the operation and CAF's reason.
std::string failure(const char* op, const caf::error& e) {
    return std::string{op} + ": " + caf::to_string(e);
}

/// Asks the lock io actor; `to_event` turns its answer into the machine's event.
template <class ToEvent>
void ask_locks(driver_ptr self, const char* op, lock_op what, lock_state s, ToEvent to_event) {
    auto& t = self->state.setup.timeouts;
    self->request(self->state.setup.locks, t.lock_request, ha_lock_atom::value, what, s)
        .then(
            [self, to_event](const lock_reply& r) { feed(self, to_event(r)); },
            [self, op](const caf::error& e) { feed(self, activation::io_failed{failure(op, e)}); });
}

/// Asks the instance io actor; its bool answer (or false on error) becomes `Event{ok}`.
template <class Event, class... Ts>
void ask_instance(driver_ptr self, caf::timespan timeout, Ts... xs) {
    self->request(self->state.setup.instance, timeout, xs...)
        .then([self](bool ok) { feed(self, Event{ok}); },
              [self](const caf::error& e) {
                  if (auto log = spdlog::get("actors")) {
                      log->error("ha_io_failed actor=io_instance error={}", caf::to_string(e));
                  }
                  feed(self, Event{false});
              });
}

/// Once every lock call sent before is done, the driver ends: whoever waits for its down
/// message may then close the lock files.
void finish(driver_ptr self) {
    self->request(self->state.setup.locks, self->state.setup.timeouts.lock_request,
                  ha_sync_atom::value)
        .then([self](bool) { self->quit(); }, [self](const caf::error&) { self->quit(); });
}

void run_one(driver_ptr self, const activation::action& a) {
    namespace act = activation;
    auto& st = self->state;
    auto& t = st.setup.timeouts;
    std::visit(
        [&](const auto& x) {
            using type = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<type, act::take_backup_lock>) {
                ask_locks(self, "take_backup_lock", lock_op::take_backup, lock_state{},
                          [](const lock_reply& r) -> act::event {
                              return act::backup_lock_result{r.taken, r.node_id};
                          });
            } else if constexpr (std::is_same_v<type, act::poll_live_lock>) {
                ask_locks(self, "poll_live_lock", lock_op::poll_live, lock_state{},
                          [](const lock_reply& r) -> act::event {
                              return act::live_lock_result{r.taken, r.state, r.node_id};
                          });
            } else if constexpr (std::is_same_v<type, act::read_state>) {
                ask_locks(
                    self, "read_state", lock_op::read_state, lock_state{},
                    [](const lock_reply& r) -> act::event { return act::state_read{r.state}; });
            } else if constexpr (std::is_same_v<type, act::write_state>) {
                auto s = x.state;
                ask_locks(self, "write_state", lock_op::write_state, s,
                          [s](const lock_reply& r) -> act::event {
                              return act::state_written{s, r.error};
                          });
            } else if constexpr (std::is_same_v<type, act::claim_node_id>) {
                ask_locks(self, "claim_node_id", lock_op::claim_node_id, lock_state{},
                          [](const lock_reply& r) -> act::event {
                              return act::node_id_claimed{r.node_id, r.error};
                          });
            } else if constexpr (std::is_same_v<type, act::load_journal>) {
                st.load_started = std::chrono::steady_clock::now();
                ask_instance<act::journal_loaded>(self, t.load, ha_load_atom::value, x.node_id);
            } else if constexpr (std::is_same_v<type, act::open_acceptors>) {
                ask_instance<act::acceptors_opened>(self, t.open, ha_open_atom::value);
            } else if constexpr (std::is_same_v<type, act::deactivate>) {
                ask_instance<act::deactivated>(self, t.close, ha_close_atom::value,
                                               x.reserve_again);
            } else if constexpr (std::is_same_v<type, act::release_locks>) {
                self->send(st.setup.locks, ha_unlock_atom::value, x.live, x.backup);
            } else if constexpr (std::is_same_v<type, act::schedule_tick>) {
                self->delayed_send(self, t.poll_interval, ha_tick_atom::value, x.generation);
            } else if constexpr (std::is_same_v<type, act::note>) {
                int64_t ms = -1;
                if (x.kind == act::note_kind::live) {
                    ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - st.load_started)
                             .count();
                }
                st.setup.effects->note(x, ms);
            } else if constexpr (std::is_same_v<type, act::exit_process>) {
                st.setup.effects->exit_process(x.status);
            } else {
                static_assert(std::is_same_v<type, act::finish>);
                finish(self);
            }
        },
        a);
}

void run(driver_ptr self, const activation::actions& as) {
    for (const auto& a : as) {
        run_one(self, a);
    }
}

} // namespace

activation_actor::behavior_type activation_driver(driver_ptr self, activation_setup setup) {
    self->state.machine = activation::activation_state{setup.settings};
    self->state.setup = std::move(setup);
    self->set_default_handler(
        [self](caf::scheduled_actor*, caf::message_view& x) -> caf::result<caf::message> {
            ++self->state.unexpected;
            if (auto log = spdlog::get("actors")) {
                log->warn("unexpected_message actor=activation message={}",
                          caf::to_string(x.content()));
            }
            return caf::sec::unexpected_message;
        });
    return {
        [self](ha_start_atom) { feed(self, activation::start{}); },
        [self](ha_tick_atom, uint64_t generation) { feed(self, activation::tick{generation}); },
        [self](ha_fail_atom) { feed(self, activation::storage_failure{}); },
        [self](ha_stop_atom) { feed(self, activation::stop_request{}); },
    };
}

io_locks_actor::behavior_type io_locks(io_locks_actor::pointer, node_manager* locks) {
    return {
        [locks](ha_lock_atom, lock_op op, lock_state s) {
            lock_reply r;
            switch (op) {
                case lock_op::take_backup:
                    r.taken = locks->try_lock_backup();
                    r.node_id = locks->node_id();
                    break;
                case lock_op::poll_live:
                    r.taken = locks->try_lock_live();
                    r.state = locks->state();
                    r.node_id = locks->node_id();
                    break;
                case lock_op::read_state:
                    r.state = locks->state();
                    break;
                case lock_op::write_state:
                    r.error = locks->set_state(s);
                    break;
                case lock_op::claim_node_id:
                    r.node_id = locks->ensure_node_id(r.error);
                    break;
            }
            return r;
        },
        [locks](ha_unlock_atom, bool live, bool backup) {
            if (live) {
                locks->unlock_live();
            }
            if (backup) {
                locks->unlock_backup();
            }
        },
        [](ha_sync_atom) { return true; },
    };
}

} // namespace actormq
