// SPDX-License-Identifier: Apache-2.0
#include "actors/ha/replication_activation.hpp"

#include <algorithm>
#include <variant>

namespace actormq::repl_activation {

actions machine::handle(const event& e) {
    actions out;
    std::visit([&](const auto& ev) { on(ev, out); }, e);
    return out;
}

void machine::add_note(note_kind k, std::string detail, actions& out) const {
    out.emplace_back(note{k, node_id_, std::move(detail), sequence_});
}

bool machine::answered(phase p) {
    if (phase_ != p || !busy_) {
        ++unexpected_;
        return false;
    }
    busy_ = false;
    return true;
}

bool machine::stopping_now(actions& out) {
    if (!stop_requested_) {
        return false;
    }
    begin_stop(out);
    return true;
}

void machine::fail_stop(note_kind why, const std::string& detail, actions& out) {
    exit_status_ = 1;
    add_note(why, detail, out);
    begin_stop(out);
}

void machine::timer(uint32_t ms, actions& out) {
    busy_ = false;
    out.emplace_back(schedule_tick{++generation_, ms});
}

// -- start and the backup's way to a live --------------------------------------------------------

void machine::on(const start&, actions& out) {
    if (phase_ != phase::idle) {
        ++unexpected_;
        return;
    }
    busy_ = true;
    if (settings_.backup) {
        phase_ = phase::preparing;
        out.emplace_back(prepare_directory{});
    } else {
        phase_ = phase::claiming;
        out.emplace_back(claim_node_id{});
    }
}

void machine::on(const tick& t, actions& out) {
    if (t.generation != generation_ || busy_ || stop_requested_) {
        return;
    }
    switch (phase_) {
        case phase::preparing:
            // A retry: this server has decided to be a plain backup by now.
            prepare_as_backup(out);
            break;
        case phase::voting:
            vote(out);
            break;
        case phase::waiting:
            try_pair(out);
            break;
        case phase::checking:
            start_check(out);
            break;
        case phase::in_sync:
            if (failback_) {
                ask_failback(out);
            }
            break;
        default:
            break;
    }
}

void machine::on(const candidates& c, actions& out) {
    candidates_ = c.addresses;
    if (phase_ == phase::waiting && !busy_ && !stop_requested_) {
        try_pair(out);
    }
}

void machine::on(const directory_ready& r, actions& out) {
    if (!answered(phase::preparing)) {
        return;
    }
    if (!r.error.empty()) {
        fail_stop(note_kind::storage_failed, r.error, out);
        return;
    }
    if (stopping_now(out)) {
        return;
    }
    if (!r.held_node_id.empty()) {
        // This backup served that node id and stopped before anyone took it back: its journal
        // may be the only one with what it confirmed. Ask who serves it before moving it aside.
        held_ = true;
        node_id_ = r.held_node_id;
        sequence_ = r.held_sequence;
        add_note(note_kind::held_journal, "activation sequence " + std::to_string(sequence_), out);
        start_check(out);
        return;
    }
    phase_ = phase::waiting;
    try_pair(out);
}

void machine::prepare_as_backup(actions& out) {
    phase_ = phase::preparing;
    busy_ = true;
    out.emplace_back(prepare_directory{true});
}

void machine::release_held(actions& out) {
    held_ = false;
    node_id_.clear();
    sequence_ = 0;
    prepare_as_backup(out);
}

void machine::try_pair(actions& out) {
    if (candidates_.empty()) {
        phase_ = phase::waiting;
        busy_ = false;
        if (!waiting_logged_) {
            waiting_logged_ = true;
            add_note(note_kind::waiting_for_live, {}, out);
        }
        return;
    }
    waiting_logged_ = false;
    lost_while_pairing_ = false;
    synced_early_ = false;
    pairing_with_ = candidates_.front();
    phase_ = phase::pairing;
    busy_ = true;
    replica_ = true;
    synced_ = false;
    add_note(note_kind::pairing, pairing_with_, out);
    out.emplace_back(pair_with{pairing_with_});
}

void machine::on(const paired& r, actions& out) {
    if (!answered(phase::pairing)) {
        return;
    }
    if (stopping_now(out)) {
        return;
    }
    if (lost_while_pairing_) {
        lost_while_pairing_ = false;
        start_over(note_kind::restarting, "the replica was lost while pairing", out);
        return;
    }
    if (!r.ok) {
        // Asked again after retry-replication-wait, this live or another: a refusal can be a
        // request that got lost (a timeout), and a live that has a backup by then drops out of
        // the candidates with the next topology.
        start_over(note_kind::pair_refused, pairing_with_ + ": " + r.error, out);
        return;
    }
    node_id_ = r.node_id;
    sequence_ = r.sequence;
    phase_ = phase::syncing;
    add_note(note_kind::syncing, pairing_with_, out);
    if (synced_early_) {
        on(replica_in_sync{}, out);
    }
}

void machine::on(const replica_in_sync&, actions& out) {
    if (phase_ == phase::pairing) {
        // The live's batches can overtake its answer (they take the direct way): remember.
        synced_early_ = true;
        return;
    }
    if (phase_ != phase::syncing) {
        // A report that crossed a stop or a restart: nothing to do.
        return;
    }
    synced_ = true;
    phase_ = phase::in_sync;
    add_note(note_kind::in_sync, pairing_with_, out);
    if (failback_ && !stop_requested_) {
        ask_failback(out);
    }
}

void machine::ask_failback(actions& out) {
    phase_ = phase::failing_back;
    busy_ = true;
    failback_agreed_ = false;
    lost_while_failing_back_ = false;
    add_note(note_kind::failing_back, pairing_with_, out);
    out.emplace_back(request_failback{pairing_with_});
}

void machine::on(const failback_answer& r, actions& out) {
    if (!answered(phase::failing_back)) {
        return;
    }
    if (stopping_now(out)) {
        return;
    }
    if (vote_void_) {
        vote_void_ = false;
        start_over(note_kind::restarting, "the replica failed while failing back", out);
        return;
    }
    if (r.ok) {
        failback_agreed_ = true;
        // Logged: the handover is the serving journal's end, which the replica learns from a
        // remote down message; a primary once waited for it in vain (docs/benchmarks.md, "The
        // paging ring after ..."), and this line tells which half of the handover went amiss.
        add_note(note_kind::failback_agreed, {}, out);
        if (lost_while_failing_back_) {
            take_over("failback", out);
        }
        return;
    }
    if (lost_while_failing_back_) {
        // Not a handover: the server went while it was asked. An ordinary loss, in sync.
        votes_ = 0;
        vote_void_ = false;
        phase_ = phase::voting;
        vote(out);
        return;
    }
    add_note(note_kind::failback_refused, r.error, out);
    phase_ = phase::in_sync;
    timer(settings_.vote_retry_wait_ms, out);
}

void machine::take_over(const std::string& allowed_by, actions& out) {
    allowed_by_ = allowed_by;
    add_note(note_kind::activating, allowed_by, out);
    take_over_ = true;
    phase_ = phase::closing;
    busy_ = true;
    out.emplace_back(close_replica{});
}

void machine::on(const replica_lost& r, actions& out) {
    if (phase_ == phase::pairing) {
        // The answer to the pairing request is still due; it decides (and fails or succeeds
        // into a replica that is already lost, which the next report or the vote handles).
        lost_while_pairing_ = true;
        return;
    }
    if (phase_ == phase::failing_back) {
        add_note(note_kind::live_lost, "handed over", out);
        if (busy_) {
            lost_while_failing_back_ = true; // the answer decides: handover or loss
            return;
        }
        if (stopping_now(out)) {
            return;
        }
        if (failback_agreed_) {
            take_over("failback", out);
        }
        return;
    }
    if (phase_ != phase::syncing && phase_ != phase::in_sync) {
        return;
    }
    bool may_take_over = r.synced && synced_;
    add_note(note_kind::live_lost, may_take_over ? "in-sync" : "not-in-sync", out);
    if (stopping_now(out)) {
        return;
    }
    if (!may_take_over) {
        // Part of a journal is no journal: never serve it.
        start_over(note_kind::restarting, "the live was lost before the sync completed", out);
        return;
    }
    votes_ = 0;
    vote_void_ = false;
    phase_ = phase::voting;
    vote(out);
}

void machine::on(const replica_failed& r, actions& out) {
    if (phase_ == phase::closing || phase_ == phase::stopping || phase_ == phase::done) {
        replica_ = false;
        return;
    }
    if (phase_ == phase::pairing) {
        lost_while_pairing_ = true;
        return;
    }
    if (phase_ != phase::syncing && phase_ != phase::in_sync && phase_ != phase::voting
        && phase_ != phase::failing_back) {
        return;
    }
    if (phase_ == phase::failing_back && busy_) {
        // The failback answer is still due: whatever it says, this mirror is not served.
        replica_ = false;
        synced_ = false;
        vote_void_ = true;
        add_note(note_kind::replication_failed, r.reason, out);
        return;
    }
    // The replica is gone (it quit), so there is nothing to close.
    replica_ = false;
    synced_ = false;
    if (phase_ == phase::voting && busy_) {
        // The vote's answer is still due; whatever it says, the mirror is not to be served.
        vote_void_ = true;
        add_note(note_kind::replication_failed, r.reason, out);
        return;
    }
    start_over(note_kind::replication_failed, r.reason, out);
}

void machine::start_over(note_kind why, const std::string& detail, actions& out) {
    add_note(why, detail, out);
    synced_ = false;
    take_over_ = false;
    if (replica_) {
        phase_ = phase::closing;
        busy_ = true;
        out.emplace_back(close_replica{});
        return;
    }
    phase_ = phase::preparing;
    timer(settings_.retry_replication_wait_ms, out);
}

void machine::vote(actions& out) {
    ++votes_;
    busy_ = true;
    add_note(note_kind::voting,
             "vote " + std::to_string(votes_) + " of " + std::to_string(1 + settings_.vote_retries),
             out);
    out.emplace_back(ask_vote{node_id_, question::live_gone});
}

void machine::start_check(actions& out) {
    busy_ = true;
    phase_ = phase::checking;
    add_note(note_kind::checking, {}, out);
    out.emplace_back(ask_vote{node_id_, question::start_check});
}

void machine::on_check(const vote_result& r, actions& out) {
    if (stopping_now(out)) {
        return;
    }
    if (r.served) {
        add_note(note_kind::found_served, r.summary, out);
        if (held_) {
            // Served elsewhere, so that server's journal is at least as new: be its backup.
            release_held(out);
            return;
        }
        // Someone took over this node id: its journal is newer than ours. Sync from it as a
        // backup (our old journal is moved aside), then ask for the node id back.
        failback_ = true;
        prepare_as_backup(out);
        return;
    }
    if (r.won && sequence_seen_ > sequence_) {
        // A server that is down now served this node id after this journal was last served:
        // starting on it would lose what that server confirmed. The primary waits for that
        // server (it then finds it serving and fails back); a backup holding it gives it up.
        add_note(note_kind::stale_journal,
                 "this journal's activation sequence is " + std::to_string(sequence_)
                     + ", the cluster has seen " + std::to_string(sequence_seen_) + "; "
                     + r.summary,
                 out);
        if (held_) {
            release_held(out);
            return;
        }
        timer(settings_.vote_retry_wait_ms, out);
        return;
    }
    if (r.won) {
        activate((held_ ? "newest-journal " : "no-other-server ") + r.summary, out);
        return;
    }
    // Not enough of the cluster reached to know, or another server may be taking the node id
    // over right now: never start live on a guess.
    add_note(note_kind::vote_lost, r.summary, out);
    timer(settings_.vote_retry_wait_ms + r.retry_jitter_ms, out);
}

void machine::on(const vote_result& r, actions& out) {
    if (!busy_
        || (phase_ != phase::voting && phase_ != phase::checking
            && !(own_vote_ && phase_ == phase::live))) {
        ++unexpected_;
        return;
    }
    busy_ = false;
    sequence_seen_ = std::max(sequence_seen_, r.sequence_max);
    if (phase_ == phase::checking) {
        on_check(r, out);
        return;
    }
    if (own_vote_) {
        own_vote_ = false;
        if (stopping_now(out)) {
            return;
        }
        if (r.won) {
            add_note(note_kind::quorum_kept, r.summary, out);
            out.emplace_back(resume_journal{});
            return;
        }
        add_note(note_kind::stepping_down, r.summary, out);
        exit_status_ = 1;
        phase_ = phase::stepping_down;
        busy_ = true;
        out.emplace_back(deactivate{});
        return;
    }
    if (stopping_now(out)) {
        return;
    }
    if (vote_void_) {
        vote_void_ = false;
        start_over(note_kind::restarting, "the replica failed during the vote", out);
        return;
    }
    if (r.won) {
        take_over("quorum-vote " + r.summary, out);
        return;
    }
    add_note(note_kind::vote_lost, r.summary, out);
    if (votes_ < 1 + settings_.vote_retries) {
        timer(settings_.vote_retry_wait_ms + r.retry_jitter_ms, out);
        return;
    }
    start_over(note_kind::restarting, "no quorum after " + std::to_string(votes_) + " votes", out);
}

void machine::on(const replica_closed& r, actions& out) {
    if (!busy_ || (phase_ != phase::closing && phase_ != phase::stopping)) {
        ++unexpected_;
        return;
    }
    busy_ = false;
    replica_ = false;
    if (stop_requested_ || phase_ == phase::stopping) {
        begin_stop(out);
        return;
    }
    if (take_over_ && r.ok) {
        take_over_ = false;
        activate(allowed_by_, out);
        return;
    }
    if (take_over_) {
        take_over_ = false;
        add_note(note_kind::replication_failed, "the replica could not sync its files", out);
    }
    synced_ = false;
    phase_ = phase::preparing;
    timer(settings_.retry_replication_wait_ms, out);
}

// -- serving --------------------------------------------------------------------------------------

void machine::on(const node_id_claimed& r, actions& out) {
    if (!answered(phase::claiming)) {
        return;
    }
    if (!r.error.empty()) {
        fail_stop(note_kind::storage_failed, r.error, out);
        return;
    }
    node_id_ = r.node_id;
    sequence_ = r.sequence;
    if (stopping_now(out)) {
        return;
    }
    if (settings_.check_for_live_server) {
        start_check(out);
        return;
    }
    activate("primary", out);
}

void machine::activate(const std::string& allowed_by, actions& out) {
    allowed_by_ = allowed_by;
    held_ = false;
    sequence_ = std::max(sequence_, sequence_seen_) + 1;
    phase_ = phase::loading;
    busy_ = true;
    out.emplace_back(load_journal{node_id_, sequence_});
}

void machine::on(const journal_loaded& r, actions& out) {
    if (!answered(phase::loading)) {
        return;
    }
    if (!r.ok) {
        fail_stop(note_kind::activation_failed, "journal", out);
        return;
    }
    instance_ = true;
    if (stopping_now(out)) {
        return;
    }
    phase_ = phase::opening;
    busy_ = true;
    out.emplace_back(open_acceptors{});
}

void machine::on(const acceptors_opened& r, actions& out) {
    if (!answered(phase::opening)) {
        return;
    }
    if (!r.ok) {
        // The io side stopped the instance already.
        instance_ = false;
        fail_stop(note_kind::activation_failed, "acceptor", out);
        return;
    }
    if (stopping_now(out)) {
        return;
    }
    phase_ = phase::live;
    backup_synced_ = false;
    add_note(note_kind::live, allowed_by_, out);
}

void machine::on(const backup_lost&, actions& out) {
    backup_synced_ = false;
    if (phase_ != phase::live || !settings_.vote_on_replication_failure || busy_
        || stop_requested_) {
        return;
    }
    own_vote_ = true;
    busy_ = true;
    add_note(note_kind::voting, "own quorum", out);
    out.emplace_back(ask_vote{node_id_, question::own_quorum});
}

void machine::on(const backup_synced&, actions&) {
    backup_synced_ = phase_ == phase::live;
}

void machine::on(const rival_live& r, actions& out) {
    // Busy (a vote, a failback under way): the driver tells again after that event.
    if (phase_ != phase::live || busy_ || stop_requested_) {
        return;
    }
    if (r.sequence < sequence_ || (r.sequence == sequence_ && !r.rival_keeps_on_tie)) {
        return; // the rival steps down
    }
    add_note(note_kind::stepping_down,
             r.name + " serves this node id too, with activation sequence "
                 + std::to_string(r.sequence) + " (this server: " + std::to_string(sequence_) + ")",
             out);
    exit_status_ = 1;
    phase_ = phase::stepping_down;
    busy_ = true;
    out.emplace_back(deactivate{});
}

void machine::on(const failback_requested&, actions& out) {
    // Only while the journal's backup is in sync: that backup is the primary asking. Lost a
    // moment before the request arrived, the primary would take over without what this server
    // confirmed alone since, and it restarts its pairing instead of taking the answer, so
    // nobody would serve the node id (seen: actormq-crash --paging --ring --no-consumers, the
    // live's lease on the replica ran out 200 ms before the request).
    bool can = phase_ == phase::live && !busy_ && !stop_requested_ && settings_.backup
               && settings_.allow_failback && backup_synced_;
    out.emplace_back(answer_failback{can});
    if (!can) {
        return;
    }
    add_note(note_kind::giving_way, {}, out);
    phase_ = phase::giving_way;
    busy_ = true;
    out.emplace_back(deactivate{});
}

void machine::on(const deactivated&, actions& out) {
    if (!busy_
        || (phase_ != phase::stopping && phase_ != phase::stepping_down
            && phase_ != phase::giving_way)) {
        ++unexpected_;
        return;
    }
    busy_ = false;
    instance_ = false;
    if (phase_ == phase::giving_way && !stop_requested_) {
        if (settings_.restart_backup) {
            add_note(note_kind::backup_restarted, {}, out);
            synced_ = false;
            prepare_as_backup(out);
            return;
        }
        add_note(note_kind::backup_exiting, {}, out);
    }
    begin_stop(out);
}

// -- stopping -------------------------------------------------------------------------------------

void machine::on(const superseded& r, actions& out) {
    // Only between pairings: paired, syncing or in sync it may be the backup its live keeps
    // (the other's announcement can be older than the live's choice), and a journal it holds
    // or serves is not to be dropped.
    bool unpaired = settings_.backup && !busy_ && !stop_requested_ && !held_
                    && (phase_ == phase::waiting || phase_ == phase::preparing);
    if (!unpaired) {
        return;
    }
    add_note(note_kind::superseded, r.by, out);
    begin_stop(out);
}

void machine::on(const storage_failure&, actions& out) {
    exit_status_ = 1;
    add_note(note_kind::storage_failed, "journal", out);
    on(stop_request{}, out);
}

void machine::on(const stop_request&, actions& out) {
    if (phase_ == phase::done) {
        return;
    }
    stop_requested_ = true;
    if (!busy_) {
        begin_stop(out);
    }
}

void machine::begin_stop(actions& out) {
    phase_ = phase::stopping;
    ++generation_; // every timer is stale now
    if (replica_) {
        busy_ = true;
        out.emplace_back(close_replica{});
        return;
    }
    if (instance_) {
        busy_ = true;
        out.emplace_back(deactivate{});
        return;
    }
    finish_stop(out);
}

void machine::finish_stop(actions& out) {
    phase_ = phase::done;
    add_note(note_kind::stopped, {}, out);
    if (exit_status_ != 0) {
        out.emplace_back(exit_process{exit_status_});
    }
    out.emplace_back(finish{});
}

} // namespace actormq::repl_activation
