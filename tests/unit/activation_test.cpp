// SPDX-License-Identifier: Apache-2.0
// The shared-store activation as data (actors/ha/activation.cpp): events in, actions out. Each
// case states one rule of docs/ha.md; the driver actor and its io actors are covered by
// tests/actors/activation_driver_test.cpp, the real lock files by the process tests.
#include "actors/ha/activation.hpp"

#include <doctest/doctest.h>

#include <string>

namespace act = actormq::activation;
using actormq::lock_state;

namespace {

/// The actions as one line ("a; b; c"), so a failed check prints what the machine did.
std::string show(const act::actions& as) {
    std::string out;
    for (const auto& a : as) {
        out += (out.empty() ? "" : "; ") + act::to_string(a);
    }
    return out;
}

act::settings backup_settings() {
    act::settings s;
    s.backup = true;
    return s;
}

act::settings primary_settings() {
    return act::settings{};
}

/// The first note of kind `k` in `as`; fails the test when there is none.
act::note note_of(const act::actions& as, act::note_kind k) {
    for (const auto& a : as) {
        if (auto n = std::get_if<act::note>(&a); n && n->kind == k) {
            return *n;
        }
    }
    FAIL("no note " << act::to_string(k) << " in " << show(as));
    return {};
}

constexpr const char* node = "11111111-2222-3333-4444-555555555555";

/// Drives a backup from start to serving: backup.lock, live lock (state `found`), node id, `L`,
/// journal, acceptors.
void activate_backup(act::activation_state& m, lock_state found = lock_state::live) {
    m.handle(act::start{});
    m.handle(act::backup_lock_result{true, node});
    m.handle(act::live_lock_result{true, found, node});
    m.handle(act::node_id_claimed{node, ""});
    m.handle(act::state_written{lock_state::live, ""});
    m.handle(act::journal_loaded{true});
    m.handle(act::acceptors_opened{true});
    REQUIRE(m.current_phase() == act::phase::live);
}

/// Drives a primary from start to serving on a fresh store.
void activate_primary(act::activation_state& m) {
    m.handle(act::start{});
    m.handle(act::live_lock_result{true, lock_state::not_started, ""});
    m.handle(act::node_id_claimed{node, ""});
    m.handle(act::state_written{lock_state::live, ""});
    m.handle(act::journal_loaded{true});
    m.handle(act::acceptors_opened{true});
    REQUIRE(m.current_phase() == act::phase::live);
}

} // namespace

TEST_CASE("activation: backup: queues on backup.lock before it polls the live lock") {
    act::activation_state m{backup_settings()};
    CHECK(show(m.handle(act::start{})) == "take_backup_lock");
    CHECK(m.current_phase() == act::phase::waiting_backup_lock);
}

TEST_CASE("activation: backup: says once that another server holds backup.lock, then polls") {
    act::activation_state m{backup_settings()};
    m.handle(act::start{});
    CHECK(show(m.handle(act::backup_lock_result{false, node}))
          == "note(waiting_for_backup_lock); schedule_tick(1)");
    CHECK(show(m.handle(act::tick{1})) == "take_backup_lock");
    CHECK(show(m.handle(act::backup_lock_result{false, node})) == "schedule_tick(2)");
}

TEST_CASE("activation: backup: next in line, it polls the live lock at once") {
    act::activation_state m{backup_settings()};
    m.handle(act::start{});
    auto out = m.handle(act::backup_lock_result{true, node});
    CHECK(show(out) == "note(waiting_for_live); poll_live_lock");
    CHECK(note_of(out, act::note_kind::waiting_for_live).node_id == node);
    CHECK(m.holds_backup());
}

TEST_CASE("activation: backup: stays passive while the live holds its lock") {
    act::activation_state m{backup_settings()};
    m.handle(act::start{});
    m.handle(act::backup_lock_result{true, node});
    CHECK(show(m.handle(act::live_lock_result{false, lock_state::live, node}))
          == "schedule_tick(1)");
    CHECK(show(m.handle(act::tick{1})) == "poll_live_lock");
    CHECK_FALSE(m.holds_live());
}

TEST_CASE("activation: backup: a free lock in state P is released again and logged once") {
    act::activation_state m{backup_settings()};
    m.handle(act::start{});
    m.handle(act::backup_lock_result{true, node});
    CHECK(show(m.handle(act::live_lock_result{true, lock_state::paused, node}))
          == "release_locks(live=1,backup=0); note(paused); schedule_tick(1)");
    CHECK_FALSE(m.holds_live());
    m.handle(act::tick{1});
    CHECK(show(m.handle(act::live_lock_result{true, lock_state::paused, node}))
          == "release_locks(live=1,backup=0); schedule_tick(2)");
}

TEST_CASE("activation: backup: a free lock in state N, L or F activates, naming the live lock") {
    for (auto found : {lock_state::not_started, lock_state::live, lock_state::failing_back}) {
        CAPTURE(static_cast<char>(found));
        act::activation_state m{backup_settings()};
        m.handle(act::start{});
        m.handle(act::backup_lock_result{true, node});
        CHECK(show(m.handle(act::live_lock_result{true, found, node})) == "claim_node_id");
        CHECK(show(m.handle(act::node_id_claimed{node, ""})) == "write_state(L)");
        auto out = m.handle(act::state_written{lock_state::live, ""});
        CHECK(show(out) == std::string{"note(activating); load_journal("} + node + ")");
        auto n = note_of(out, act::note_kind::activating);
        CHECK(n.allowed_by == "live-lock");
        CHECK(n.found == found);
    }
}

TEST_CASE("activation: backup: releases backup.lock only once it listens, then watches for F") {
    act::activation_state m{backup_settings()};
    m.handle(act::start{});
    m.handle(act::backup_lock_result{true, node});
    m.handle(act::live_lock_result{true, lock_state::live, node});
    m.handle(act::node_id_claimed{node, ""});
    m.handle(act::state_written{lock_state::live, ""});
    CHECK(show(m.handle(act::journal_loaded{true})) == "open_acceptors");
    CHECK(m.holds_backup());
    auto out = m.handle(act::acceptors_opened{true});
    CHECK(show(out) == "release_locks(live=0,backup=1); note(live); schedule_tick(1)");
    CHECK(note_of(out, act::note_kind::live).allowed_by == "live-lock");
    CHECK(m.holds_live());
    CHECK(m.instance_up());
    CHECK(show(m.handle(act::tick{1})) == "read_state");
    CHECK(show(m.handle(act::state_read{lock_state::live})) == "schedule_tick(2)");
}

TEST_CASE("activation: backup: without allow-failback a live backup does not watch the state") {
    auto s = backup_settings();
    s.allow_failback = false;
    act::activation_state m{s};
    m.handle(act::start{});
    m.handle(act::backup_lock_result{true, node});
    m.handle(act::live_lock_result{true, lock_state::live, node});
    m.handle(act::node_id_claimed{node, ""});
    m.handle(act::state_written{lock_state::live, ""});
    m.handle(act::journal_loaded{true});
    CHECK(show(m.handle(act::acceptors_opened{true}))
          == "release_locks(live=0,backup=1); note(live)");
}

TEST_CASE("activation: failback: the live backup gives way when the asker holds backup.lock") {
    act::activation_state m{backup_settings()};
    activate_backup(m);
    m.handle(act::tick{1});
    CHECK(show(m.handle(act::state_read{lock_state::failing_back})) == "take_backup_lock");
    CHECK(show(m.handle(act::backup_lock_result{false, node}))
          == "note(giving_way); deactivate(reserve=1)");
    CHECK(m.holds_live()); // not before the journal is closed
    CHECK(show(m.handle(act::deactivated{true}))
          == "release_locks(live=1,backup=0); note(gave_way); note(backup_restarted); "
             "take_backup_lock");
    CHECK(m.current_phase() == act::phase::waiting_backup_lock);
    CHECK_FALSE(m.holds_live());
}

TEST_CASE("activation: failback: with restart-backup false the backup exits 0 after giving way") {
    auto s = backup_settings();
    s.restart_backup = false;
    act::activation_state m{s};
    activate_backup(m);
    m.handle(act::tick{1});
    m.handle(act::state_read{lock_state::failing_back});
    m.handle(act::backup_lock_result{false, node});
    CHECK(show(m.handle(act::deactivated{true}))
          == "release_locks(live=1,backup=0); note(gave_way); note(backup_exiting); "
             "exit_process(0); finish");
    CHECK(m.exit_status() == 0);
}

TEST_CASE("activation: failback: F with backup.lock free means the asker died: abandon it") {
    act::activation_state m{backup_settings()};
    activate_backup(m);
    m.handle(act::tick{1});
    m.handle(act::state_read{lock_state::failing_back});
    CHECK(show(m.handle(act::backup_lock_result{true, node})) == "write_state(L)");
    CHECK(show(m.handle(act::state_written{lock_state::live, ""}))
          == "release_locks(live=0,backup=1); note(failback_abandoned); schedule_tick(2)");
    CHECK(m.current_phase() == act::phase::live);
    CHECK_FALSE(m.holds_backup());
}

TEST_CASE("activation: primary: finds a backup serving, takes backup.lock and writes F") {
    act::activation_state m{primary_settings()};
    CHECK(show(m.handle(act::start{})) == "poll_live_lock");
    CHECK(show(m.handle(act::live_lock_result{false, lock_state::live, node}))
          == "take_backup_lock");
    CHECK(show(m.handle(act::backup_lock_result{true, node})) == "write_state(F)");
    CHECK(show(m.handle(act::state_written{lock_state::failing_back, ""}))
          == "note(failing_back); schedule_tick(1)");
    // The backup gave way: the lock is free with F in it.
    m.handle(act::tick{1});
    CHECK(show(m.handle(act::live_lock_result{true, lock_state::failing_back, node}))
          == "claim_node_id");
    m.handle(act::node_id_claimed{node, ""});
    m.handle(act::state_written{lock_state::live, ""});
    m.handle(act::journal_loaded{true});
    auto out = m.handle(act::acceptors_opened{true});
    CHECK(show(out) == "release_locks(live=0,backup=1); note(live)");
    CHECK(note_of(out, act::note_kind::live).failing_back);
}

TEST_CASE("activation: primary: a lock held in state N or P is waited for, not asked to give way") {
    for (auto s : {lock_state::not_started, lock_state::paused}) {
        act::activation_state m{primary_settings()};
        m.handle(act::start{});
        CHECK(show(m.handle(act::live_lock_result{false, s, node})) == "schedule_tick(1)");
    }
}

TEST_CASE("activation: primary: another asker holding backup.lock makes it wait") {
    act::activation_state m{primary_settings()};
    m.handle(act::start{});
    m.handle(act::live_lock_result{false, lock_state::live, node});
    CHECK(show(m.handle(act::backup_lock_result{false, node})) == "schedule_tick(1)");
}

TEST_CASE("activation: primary: stopped while failing back, it writes L back and releases") {
    act::activation_state m{primary_settings()};
    m.handle(act::start{});
    m.handle(act::live_lock_result{false, lock_state::live, node});
    m.handle(act::backup_lock_result{true, node});
    m.handle(act::state_written{lock_state::failing_back, ""});
    CHECK(show(m.handle(act::stop_request{})) == "write_state(L)");
    CHECK(show(m.handle(act::state_written{lock_state::live, ""}))
          == "release_locks(live=0,backup=1); finish");
}

TEST_CASE("activation: stop: a live stopped without failover writes P after its journal closed") {
    act::activation_state m{primary_settings()};
    activate_primary(m);
    CHECK(show(m.handle(act::stop_request{})) == "deactivate(reserve=0)");
    CHECK(show(m.handle(act::deactivated{true})) == "write_state(P)");
    auto out = m.handle(act::state_written{lock_state::paused, ""});
    CHECK(show(out) == "release_locks(live=1,backup=0); note(stopped); finish");
    CHECK_FALSE(note_of(out, act::note_kind::stopped).hand_over);
    CHECK(m.exit_status() == 0);
}

TEST_CASE("activation: stop: with failover-on-shutdown the state stays L") {
    auto s = primary_settings();
    s.failover_on_shutdown = true;
    act::activation_state m{s};
    activate_primary(m);
    m.handle(act::stop_request{});
    auto out = m.handle(act::deactivated{true});
    CHECK(show(out) == "release_locks(live=1,backup=0); note(stopped); finish");
    CHECK(note_of(out, act::note_kind::stopped).hand_over);
}

TEST_CASE("activation: stop: a failed journal hands over whatever failover-on-shutdown says") {
    act::activation_state m{primary_settings()};
    activate_primary(m);
    CHECK(show(m.handle(act::storage_failure{})) == "exit_process(1)");
    CHECK(show(m.handle(act::storage_failure{})) == ""); // one SIGTERM is enough
    m.handle(act::stop_request{});
    auto out = m.handle(act::deactivated{true});
    CHECK(show(out) == "release_locks(live=1,backup=0); note(stopped); finish");
    auto n = note_of(out, act::note_kind::stopped);
    CHECK(n.hand_over);
    CHECK(n.storage_failed);
    CHECK(m.exit_status() == 1);
}

TEST_CASE("activation: stop: during the journal load it waits for the load, then stops") {
    act::activation_state m{backup_settings()};
    m.handle(act::start{});
    m.handle(act::backup_lock_result{true, node});
    m.handle(act::live_lock_result{true, lock_state::live, node});
    m.handle(act::node_id_claimed{node, ""});
    m.handle(act::state_written{lock_state::live, ""});
    CHECK(show(m.handle(act::stop_request{})) == "");
    CHECK(m.awaiting() == act::pending::load);
    // No acceptor opens for a server that is stopping.
    CHECK(show(m.handle(act::journal_loaded{true})) == "deactivate(reserve=0)");
    CHECK(show(m.handle(act::deactivated{true})) == "write_state(P)");
    CHECK(show(m.handle(act::state_written{lock_state::paused, ""}))
          == "release_locks(live=1,backup=1); note(stopped); finish");
}

TEST_CASE("activation: stop: while waiting for a lock it releases what it holds and finishes") {
    act::activation_state m{backup_settings()};
    m.handle(act::start{});
    m.handle(act::backup_lock_result{true, node});
    m.handle(act::live_lock_result{false, lock_state::live, node});
    CHECK(show(m.handle(act::stop_request{})) == "release_locks(live=0,backup=1); finish");
    CHECK(show(m.handle(act::tick{1})) == ""); // the old tick is stale
}

TEST_CASE("activation: stop: an answer in flight is awaited, then the stop goes on") {
    act::activation_state m{backup_settings()};
    m.handle(act::start{});
    m.handle(act::backup_lock_result{true, node});
    CHECK(show(m.handle(act::stop_request{})) == "");
    // The poll took the live lock meanwhile: nothing was claimed, so nothing is written.
    CHECK(show(m.handle(act::live_lock_result{true, lock_state::live, node}))
          == "release_locks(live=1,backup=1); finish");
}

TEST_CASE("activation: failure: a journal that will not load releases the locks and exits 1") {
    act::activation_state m{backup_settings()};
    m.handle(act::start{});
    m.handle(act::backup_lock_result{true, node});
    m.handle(act::live_lock_result{true, lock_state::live, node});
    m.handle(act::node_id_claimed{node, ""});
    m.handle(act::state_written{lock_state::live, ""});
    // The state stays L: another server may load it.
    CHECK(show(m.handle(act::journal_loaded{false}))
          == "note(activation_failed); exit_process(1); release_locks(live=1,backup=1); finish");
}

TEST_CASE("activation: failure: an acceptor that cannot listen fails the activation") {
    act::activation_state m{primary_settings()};
    m.handle(act::start{});
    m.handle(act::live_lock_result{true, lock_state::not_started, ""});
    m.handle(act::node_id_claimed{node, ""});
    m.handle(act::state_written{lock_state::live, ""});
    m.handle(act::journal_loaded{true});
    CHECK(show(m.handle(act::acceptors_opened{false}))
          == "note(activation_failed); exit_process(1); release_locks(live=1,backup=0); finish");
    CHECK_FALSE(m.instance_up());
}

TEST_CASE("activation: failure: a state byte that cannot be written stops before the load") {
    act::activation_state m{primary_settings()};
    m.handle(act::start{});
    m.handle(act::live_lock_result{true, lock_state::not_started, ""});
    m.handle(act::node_id_claimed{node, ""});
    auto out = m.handle(act::state_written{lock_state::live, "file=x op=fdatasync errno=EIO"});
    CHECK(show(out)
          == "note(lock_write_failed); exit_process(1); release_locks(live=1,backup=0); finish");
    CHECK(note_of(out, act::note_kind::lock_write_failed).error == "file=x op=fdatasync errno=EIO");
}

TEST_CASE("activation: failure: a live whose abandon write fails stops and hands over") {
    act::activation_state m{backup_settings()};
    activate_backup(m);
    m.handle(act::tick{1});
    m.handle(act::state_read{lock_state::failing_back});
    m.handle(act::backup_lock_result{true, node});
    CHECK(show(m.handle(act::state_written{lock_state::live, "file=x op=pwrite errno=EIO"}))
          == "note(lock_write_failed); exit_process(1); deactivate(reserve=0)");
    auto out = m.handle(act::deactivated{true});
    CHECK(show(out) == "release_locks(live=1,backup=1); note(stopped); finish");
    CHECK(note_of(out, act::note_kind::stopped).hand_over);
}

TEST_CASE("activation: failure: a lock request that times out stops the node with status 1") {
    act::activation_state m{backup_settings()};
    m.handle(act::start{});
    auto out = m.handle(act::io_failed{"take_backup_lock: request_timeout"});
    CHECK(show(out) == "note(lock_io_failed); exit_process(1); finish");
    CHECK(m.exit_status() == 1);
}

TEST_CASE("activation: failure: a journal that does not close keeps the live lock held") {
    act::activation_state m{primary_settings()};
    activate_primary(m);
    m.handle(act::stop_request{});
    // Releasing now could let a backup write beside a journal that may still write.
    CHECK(show(m.handle(act::deactivated{false}))
          == "note(deactivate_failed); exit_process(1); finish");
}

TEST_CASE("activation: ticks: a tick of an older generation does nothing") {
    act::activation_state m{backup_settings()};
    m.handle(act::start{});
    m.handle(act::backup_lock_result{false, node});
    m.handle(act::tick{1});
    m.handle(act::backup_lock_result{false, node});
    CHECK(show(m.handle(act::tick{1})) == "");
    CHECK(show(m.handle(act::tick{2})) == "take_backup_lock");
    CHECK(m.unexpected() == 0);
}

TEST_CASE("activation: answers: one that nobody asked for is counted, not acted on") {
    act::activation_state m{backup_settings()};
    m.handle(act::start{});
    CHECK(show(m.handle(act::journal_loaded{true})) == "");
    CHECK(m.unexpected() == 1);
    CHECK_FALSE(m.instance_up());
}
