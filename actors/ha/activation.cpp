// SPDX-License-Identifier: Apache-2.0
#include "actors/ha/activation.hpp"

#include <type_traits>

namespace actormq::activation {

namespace {

/// The live-lock holder's byte names a server that serves (or served until it died).
bool someone_serves(lock_state s) {
    return s == lock_state::live || s == lock_state::failing_back;
}

} // namespace

activation_state::activation_state(settings s) : settings_(s) {}

actions activation_state::handle(const event& e) {
    actions out;
    std::visit([&](const auto& ev) { on(ev, out); }, e);
    return out;
}

// -- waiting
// ---------------------------------------------------------------------------------------

void activation_state::on(const start&, actions& out) {
    if (phase_ != phase::idle) {
        ++unexpected_;
        return;
    }
    if (settings_.backup) {
        phase_ = phase::waiting_backup_lock;
        request(pending::backup_lock_queue, take_backup_lock{}, out);
    } else {
        phase_ = phase::waiting_live;
        request(pending::live_lock, poll_live_lock{}, out);
    }
}

void activation_state::on(const tick& t, actions& out) {
    // A tick is stale when the machine moved on since it was scheduled, or when an answer is
    // still due: polls never overlap, the next one starts from the answer's wait().
    if (t.generation != generation_ || pending_ != pending::none) {
        return;
    }
    switch (phase_) {
        case phase::waiting_backup_lock:
            request(pending::backup_lock_queue, take_backup_lock{}, out);
            break;
        case phase::waiting_live:
            request(pending::live_lock, poll_live_lock{}, out);
            break;
        case phase::live:
            request(pending::state_read, read_state{}, out);
            break;
        default:
            break;
    }
}

void activation_state::on(const backup_lock_result& r, actions& out) {
    auto was = pending_;
    pending_ = pending::none;
    if (r.taken) {
        holds_backup_ = true;
    }
    if (!r.node_id.empty() && node_id_.empty()) {
        node_id_ = r.node_id;
    }
    switch (was) {
        case pending::backup_lock_queue:
            queued_for_backup_lock(r, out);
            break;
        case pending::backup_lock_failback:
            asked_for_failback(r, out);
            break;
        case pending::backup_lock_abandon:
            checked_failback_asker(r, out);
            break;
        default:
            ++unexpected_;
            break;
    }
}

void activation_state::queued_for_backup_lock(const backup_lock_result& r, actions& out) {
    if (stop_requested_) {
        begin_stop(out);
        return;
    }
    if (!r.taken) {
        if (!backup_wait_logged_) {
            backup_wait_logged_ = true;
            out.emplace_back(make_note(note_kind::waiting_for_backup_lock));
        }
        wait(out);
        return;
    }
    // Next in line: from now on only the live lock is polled.
    phase_ = phase::waiting_live;
    paused_logged_ = false;
    out.emplace_back(make_note(note_kind::waiting_for_live));
    request(pending::live_lock, poll_live_lock{}, out);
}

void activation_state::asked_for_failback(const backup_lock_result& r, actions& out) {
    if (stop_requested_) {
        begin_stop(out);
        return;
    }
    if (!r.taken) {
        wait(out);
        return;
    }
    // Holding backup.lock is what tells the serving backup that the asker is alive.
    request(pending::write_failing_back, write_state{lock_state::failing_back}, out);
}

void activation_state::checked_failback_asker(const backup_lock_result& r, actions& out) {
    if (stop_requested_) {
        begin_stop(out);
        return;
    }
    if (!r.taken) {
        // The primary that wrote `F` holds backup.lock and waits: give the live lock back.
        out.emplace_back(make_note(note_kind::giving_way));
        phase_ = phase::giving_way;
        request(pending::deactivate, deactivate{true}, out);
        return;
    }
    // backup.lock was free: the asker died. Nobody gives way to a dead server.
    request(pending::write_live_abandon, write_state{lock_state::live}, out);
}

void activation_state::on(const live_lock_result& r, actions& out) {
    if (pending_ != pending::live_lock) {
        ++unexpected_;
        return;
    }
    pending_ = pending::none;
    if (!r.node_id.empty()) {
        node_id_ = r.node_id;
    }
    if (r.taken) {
        holds_live_ = true;
    }
    if (stop_requested_) {
        begin_stop(out);
        return;
    }
    if (r.taken) {
        if (settings_.backup && r.state == lock_state::paused) {
            // The live was stopped on purpose: stay passive until it comes back.
            holds_live_ = false;
            out.emplace_back(release_locks{true, false});
            if (!paused_logged_) {
                paused_logged_ = true;
                out.emplace_back(make_note(note_kind::paused));
            }
            wait(out);
            return;
        }
        claim(r.state, out);
        return;
    }
    if (!settings_.backup && !holds_backup_ && someone_serves(r.state)) {
        // A backup serves our node id: ask it to give way (it watches the state byte).
        request(pending::backup_lock_failback, take_backup_lock{}, out);
        return;
    }
    wait(out);
}

// -- activating
// ------------------------------------------------------------------------------------

void activation_state::claim(lock_state found, actions& out) {
    found_ = found;
    phase_ = phase::claiming;
    request(pending::node_id, claim_node_id{}, out);
}

void activation_state::on(const node_id_claimed& r, actions& out) {
    if (pending_ != pending::node_id) {
        ++unexpected_;
        return;
    }
    pending_ = pending::none;
    if (!r.error.empty()) {
        lock_failure(note_kind::lock_write_failed, r.error, out);
        return;
    }
    node_id_ = r.node_id;
    if (stop_requested_) {
        begin_stop(out);
        return;
    }
    // Say "live" at once: a `P` left while this server loads the journal would keep the
    // backup passive if this server died meanwhile.
    request(pending::write_live_claim, write_state{lock_state::live}, out);
}

void activation_state::on(const state_written& r, actions& out) {
    auto was = pending_;
    pending_ = pending::none;
    bool failed = !r.error.empty();
    switch (was) {
        case pending::write_failing_back:
            if (failed) {
                lock_failure(note_kind::lock_write_failed, r.error, out);
                return;
            }
            asked_failback_ = true;
            out.emplace_back(make_note(note_kind::failing_back));
            stop_requested_ ? begin_stop(out) : wait(out);
            return;
        case pending::write_live_claim:
            if (failed) {
                lock_failure(note_kind::lock_write_failed, r.error, out);
                return;
            }
            marked_live_ = true;
            out.emplace_back(make_note(note_kind::activating));
            if (stop_requested_) {
                begin_stop(out);
                return;
            }
            phase_ = phase::loading;
            request(pending::load, load_journal{node_id_}, out);
            return;
        case pending::write_live_abandon:
            if (failed) {
                lock_failure(note_kind::lock_write_failed, r.error, out);
                return;
            }
            holds_backup_ = false;
            out.emplace_back(release_locks{false, true});
            out.emplace_back(make_note(note_kind::failback_abandoned));
            stop_requested_ ? begin_stop(out) : wait(out);
            return;
        case pending::write_paused:
        case pending::write_live_handback:
            // The last write of a stop: a failure is reported, the stop goes on.
            if (failed) {
                auto n = make_note(note_kind::lock_write_failed);
                n.error = r.error;
                out.emplace_back(std::move(n));
                storage_failed_ = true;
                fail_exit(out);
            }
            finish_stop(out);
            return;
        default:
            ++unexpected_;
            return;
    }
}

void activation_state::on(const journal_loaded& r, actions& out) {
    if (pending_ != pending::load) {
        ++unexpected_;
        return;
    }
    pending_ = pending::none;
    if (!r.ok) {
        // Another server may do better: release the locks and leave the state `L`.
        out.emplace_back(make_note(note_kind::activation_failed));
        fail_exit(out);
        release_and_finish(out);
        return;
    }
    instance_ = true;
    if (stop_requested_) {
        begin_stop(out);
        return;
    }
    phase_ = phase::opening;
    request(pending::open, open_acceptors{}, out);
}

void activation_state::on(const acceptors_opened& r, actions& out) {
    if (pending_ != pending::open) {
        ++unexpected_;
        return;
    }
    pending_ = pending::none;
    if (!r.ok) {
        // The io side stopped the instance it could not open.
        instance_ = false;
        out.emplace_back(make_note(note_kind::activation_failed));
        fail_exit(out);
        release_and_finish(out);
        return;
    }
    phase_ = phase::live;
    if (holds_backup_) {
        // The next backup in line may queue up now.
        holds_backup_ = false;
        out.emplace_back(release_locks{false, true});
    }
    auto n = make_note(note_kind::live);
    n.failing_back = !settings_.backup && asked_failback_;
    out.emplace_back(std::move(n));
    asked_failback_ = false;
    stop_requested_ ? begin_stop(out) : serve(out);
}

// -- serving
// ---------------------------------------------------------------------------------------

void activation_state::serve(actions& out) {
    phase_ = phase::live;
    // Only a backup that allows failback has anything to watch; the rest waits for a stop.
    if (settings_.backup && settings_.allow_failback) {
        wait(out);
    }
}

void activation_state::on(const state_read& r, actions& out) {
    if (pending_ != pending::state_read) {
        ++unexpected_;
        return;
    }
    pending_ = pending::none;
    if (stop_requested_) {
        begin_stop(out);
        return;
    }
    if (r.state != lock_state::failing_back) {
        wait(out);
        return;
    }
    // The primary that asks holds backup.lock while it waits; if that lock is free, it died.
    request(pending::backup_lock_abandon, take_backup_lock{}, out);
}

void activation_state::on(const deactivated& r, actions& out) {
    if (pending_ != pending::deactivate) {
        ++unexpected_;
        return;
    }
    pending_ = pending::none;
    if (!r.ok) {
        // The journal may still write: keep the live lock until the process ends and the
        // kernel drops it.
        out.emplace_back(make_note(note_kind::deactivate_failed));
        fail_exit(out);
        holds_live_ = false;
        release_and_finish(out);
        return;
    }
    instance_ = false;
    if (phase_ == phase::stopping) {
        finish_stop(out);
        return;
    }
    // Gave way: hand the live lock to the primary.
    holds_live_ = false;
    marked_live_ = false;
    out.emplace_back(release_locks{true, false});
    out.emplace_back(make_note(note_kind::gave_way));
    if (stop_requested_) {
        release_and_finish(out);
        return;
    }
    if (!settings_.restart_backup) {
        out.emplace_back(make_note(note_kind::backup_exiting));
        out.emplace_back(exit_process{0});
        release_and_finish(out);
        return;
    }
    out.emplace_back(make_note(note_kind::backup_restarted));
    backup_wait_logged_ = false;
    phase_ = phase::waiting_backup_lock;
    request(pending::backup_lock_queue, take_backup_lock{}, out);
}

// -- failures and stop
// -----------------------------------------------------------------------------

void activation_state::on(const io_failed& r, actions& out) {
    switch (pending_) {
        case pending::none:
        case pending::load:
        case pending::open:
        case pending::deactivate:
            // These have answers of their own; an io_failed here is the driver's mistake.
            ++unexpected_;
            return;
        default:
            break;
    }
    pending_ = pending::none;
    lock_failure(note_kind::lock_io_failed, r.what, out);
}

void activation_state::on(const storage_failure&, actions& out) {
    // The node stops through SIGTERM (exit_process); the stop request follows.
    storage_failed_ = true;
    fail_exit(out);
}

void activation_state::on(const stop_request&, actions& out) {
    if (stop_requested_ || phase_ == phase::done) {
        return;
    }
    stop_requested_ = true;
    if (pending_ != pending::none) {
        return; // the answer in flight continues with the stop
    }
    if (phase_ == phase::idle) {
        release_and_finish(out);
        return;
    }
    begin_stop(out);
}

void activation_state::lock_failure(note_kind kind, const std::string& error, actions& out) {
    auto n = make_note(kind);
    n.error = error;
    out.emplace_back(std::move(n));
    // A state byte that may not be on disk cannot be trusted: stop, and leave whatever is
    // there (a backup that finds `L` takes over).
    storage_failed_ = true;
    fail_exit(out);
    stop_requested_ = true;
    begin_stop(out);
}

void activation_state::begin_stop(actions& out) {
    ++generation_; // no tick of the old phase counts any more
    phase_ = phase::stopping;
    if (instance_) {
        request(pending::deactivate, deactivate{false}, out);
        return;
    }
    finish_stop(out);
}

void activation_state::finish_stop(actions& out) {
    phase_ = phase::stopping;
    bool hand_over = settings_.failover_on_shutdown || storage_failed_;
    if (!storage_failed_ && !stop_written_) {
        if (marked_live_ && holds_live_ && !hand_over) {
            // Stopped on purpose without failover: the backup stays passive.
            stop_written_ = true;
            request(pending::write_paused, write_state{lock_state::paused}, out);
            return;
        }
        if (!marked_live_ && asked_failback_ && holds_backup_) {
            // A primary stopped while failing back hands the state back to the backup it
            // asked, so that backup keeps serving.
            stop_written_ = true;
            request(pending::write_live_handback, write_state{lock_state::live}, out);
            return;
        }
    }
    // Released first, then logged: "ha_stopped" means the lock is free (as it always did).
    bool was_live = marked_live_;
    marked_live_ = false;
    release_held(out);
    if (was_live) {
        auto n = make_note(note_kind::stopped);
        n.hand_over = hand_over;
        n.storage_failed = storage_failed_;
        out.emplace_back(std::move(n));
    }
    release_and_finish(out);
}

void activation_state::release_held(actions& out) {
    if (holds_live_ || holds_backup_) {
        out.emplace_back(release_locks{holds_live_, holds_backup_});
        holds_live_ = false;
        holds_backup_ = false;
    }
}

void activation_state::release_and_finish(actions& out) {
    release_held(out);
    ++generation_;
    phase_ = phase::done;
    out.emplace_back(finish{});
}

void activation_state::fail_exit(actions& out) {
    if (exit_status_ == 0) {
        exit_status_ = 1;
        out.emplace_back(exit_process{1});
    }
}

void activation_state::wait(actions& out) {
    ++generation_;
    out.emplace_back(schedule_tick{generation_});
}

void activation_state::request(pending p, action a, actions& out) {
    pending_ = p;
    out.push_back(std::move(a));
}

note activation_state::make_note(note_kind kind) const {
    note n;
    n.kind = kind;
    n.node_id = node_id_;
    if (kind == note_kind::activating || kind == note_kind::live) {
        // Every activation names what allowed it (../shared/design.md).
        n.allowed_by = "live-lock";
        n.found = found_;
    }
    return n;
}

// -- names
// -----------------------------------------------------------------------------------------

const char* to_string(phase p) {
    switch (p) {
        case phase::idle:
            return "idle";
        case phase::waiting_backup_lock:
            return "waiting-backup-lock";
        case phase::waiting_live:
            return "waiting-live";
        case phase::claiming:
            return "claiming";
        case phase::loading:
            return "loading";
        case phase::opening:
            return "opening";
        case phase::live:
            return "live";
        case phase::giving_way:
            return "giving-way";
        case phase::stopping:
            return "stopping";
        case phase::done:
            return "done";
    }
    return "unknown";
}

const char* to_string(pending p) {
    switch (p) {
        case pending::none:
            return "none";
        case pending::backup_lock_queue:
            return "backup-lock-queue";
        case pending::backup_lock_failback:
            return "backup-lock-failback";
        case pending::backup_lock_abandon:
            return "backup-lock-abandon";
        case pending::live_lock:
            return "live-lock";
        case pending::state_read:
            return "state-read";
        case pending::write_failing_back:
            return "write-F";
        case pending::write_live_claim:
            return "write-L-claim";
        case pending::write_live_abandon:
            return "write-L-abandon";
        case pending::write_paused:
            return "write-P";
        case pending::write_live_handback:
            return "write-L-handback";
        case pending::node_id:
            return "node-id";
        case pending::load:
            return "load";
        case pending::open:
            return "open";
        case pending::deactivate:
            return "deactivate";
    }
    return "unknown";
}

const char* to_string(note_kind k) {
    switch (k) {
        case note_kind::waiting_for_backup_lock:
            return "waiting_for_backup_lock";
        case note_kind::waiting_for_live:
            return "waiting_for_live";
        case note_kind::paused:
            return "paused";
        case note_kind::failing_back:
            return "failing_back";
        case note_kind::activating:
            return "activating";
        case note_kind::live:
            return "live";
        case note_kind::activation_failed:
            return "activation_failed";
        case note_kind::giving_way:
            return "giving_way";
        case note_kind::gave_way:
            return "gave_way";
        case note_kind::backup_restarted:
            return "backup_restarted";
        case note_kind::backup_exiting:
            return "backup_exiting";
        case note_kind::failback_abandoned:
            return "failback_abandoned";
        case note_kind::stopped:
            return "stopped";
        case note_kind::lock_write_failed:
            return "lock_write_failed";
        case note_kind::lock_io_failed:
            return "lock_io_failed";
        case note_kind::deactivate_failed:
            return "deactivate_failed";
    }
    return "unknown";
}

bool operator==(const note& a, const note& b) {
    return a.kind == b.kind && a.node_id == b.node_id && a.allowed_by == b.allowed_by
           && a.found == b.found && a.failing_back == b.failing_back && a.hand_over == b.hand_over
           && a.storage_failed == b.storage_failed && a.error == b.error;
}

std::string to_string(const action& a) {
    return std::visit(
        [](const auto& x) -> std::string {
            using t = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<t, take_backup_lock>) {
                return "take_backup_lock";
            } else if constexpr (std::is_same_v<t, poll_live_lock>) {
                return "poll_live_lock";
            } else if constexpr (std::is_same_v<t, read_state>) {
                return "read_state";
            } else if constexpr (std::is_same_v<t, write_state>) {
                return std::string{"write_state("} + static_cast<char>(x.state) + ")";
            } else if constexpr (std::is_same_v<t, claim_node_id>) {
                return "claim_node_id";
            } else if constexpr (std::is_same_v<t, load_journal>) {
                return "load_journal(" + x.node_id + ")";
            } else if constexpr (std::is_same_v<t, open_acceptors>) {
                return "open_acceptors";
            } else if constexpr (std::is_same_v<t, deactivate>) {
                return std::string{"deactivate(reserve="} + (x.reserve_again ? "1" : "0") + ")";
            } else if constexpr (std::is_same_v<t, release_locks>) {
                return std::string{"release_locks(live="} + (x.live ? "1" : "0")
                       + ",backup=" + (x.backup ? "1" : "0") + ")";
            } else if constexpr (std::is_same_v<t, schedule_tick>) {
                return "schedule_tick(" + std::to_string(x.generation) + ")";
            } else if constexpr (std::is_same_v<t, note>) {
                return std::string{"note("} + to_string(x.kind) + ")";
            } else if constexpr (std::is_same_v<t, exit_process>) {
                return "exit_process(" + std::to_string(x.status) + ")";
            } else {
                return "finish";
            }
        },
        a);
}

std::string to_string(const event& e) {
    return std::visit(
        [](const auto& x) -> std::string {
            using t = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<t, start>) {
                return "start";
            } else if constexpr (std::is_same_v<t, tick>) {
                return "tick(" + std::to_string(x.generation) + ")";
            } else if constexpr (std::is_same_v<t, backup_lock_result>) {
                return std::string{"backup_lock(taken="} + (x.taken ? "1" : "0") + ")";
            } else if constexpr (std::is_same_v<t, live_lock_result>) {
                return std::string{"live_lock(taken="} + (x.taken ? "1" : "0")
                       + ",state=" + static_cast<char>(x.state) + ")";
            } else if constexpr (std::is_same_v<t, state_read>) {
                return std::string{"state_read("} + static_cast<char>(x.state) + ")";
            } else if constexpr (std::is_same_v<t, state_written>) {
                return std::string{"state_written("} + static_cast<char>(x.state)
                       + (x.error.empty() ? "" : ",error") + ")";
            } else if constexpr (std::is_same_v<t, node_id_claimed>) {
                return "node_id_claimed(" + x.node_id + (x.error.empty() ? "" : ",error") + ")";
            } else if constexpr (std::is_same_v<t, journal_loaded>) {
                return std::string{"journal_loaded("} + (x.ok ? "ok" : "failed") + ")";
            } else if constexpr (std::is_same_v<t, acceptors_opened>) {
                return std::string{"acceptors_opened("} + (x.ok ? "ok" : "failed") + ")";
            } else if constexpr (std::is_same_v<t, deactivated>) {
                return std::string{"deactivated("} + (x.ok ? "ok" : "failed") + ")";
            } else if constexpr (std::is_same_v<t, io_failed>) {
                return "io_failed(" + x.what + ")";
            } else if constexpr (std::is_same_v<t, storage_failure>) {
                return "storage_failure";
            } else {
                return "stop_request";
            }
        },
        e);
}

} // namespace actormq::activation
