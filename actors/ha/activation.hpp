// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/ha/node_manager.hpp"

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

// The activation of a shared-store server as data (docs/architecture.md, "Activation"): events
// in, actions out, no I/O and no CAF. The driver actor (activation_driver.hpp) turns actions
// into requests to its io actors and their answers back into events; tests feed events by hand.
// Replication adds its events (peer up/down, replica in sync, vote answers) and actions (ask
// for votes, pair, sync) as further alternatives and phases; nothing here assumes a lock file
// is the only thing that can allow an activation.

namespace actormq::activation {

// -- configuration --------------------------------------------------------------------------------

/// What the machine needs from `[ha-policy]`; the poll interval stays with the driver.
struct settings {
    /// True for a backup, false for a primary.
    bool backup = false;
    /// Stopped normally while live: leave the state `L` (true) or write `P` (false).
    bool failover_on_shutdown = false;
    /// Backup only: once live, watch the state byte and give way on `F`.
    bool allow_failback = true;
    /// Backup only: after giving way, wait as a backup again (false: exit 0).
    bool restart_backup = true;
};

// -- events ---------------------------------------------------------------------------------------

/// The driver started the machine.
struct start {};
/// A lock-poll tick; only the tick of the current generation counts (older ones are stale).
struct tick {
    uint64_t generation = 0;
};
/// Answer to take_backup_lock: whether `backup.lock` is ours now, and the node id in the file.
struct backup_lock_result {
    bool taken = false;
    std::string node_id;
};
/// Answer to poll_live_lock: whether the live lock is ours now, and the state byte and node id
/// read right after the attempt (whoever holds the lock).
struct live_lock_result {
    bool taken = false;
    lock_state state = lock_state::not_started;
    std::string node_id;
};
/// Answer to read_state.
struct state_read {
    lock_state state = lock_state::not_started;
};
/// Answer to write_state: `error` is empty when the byte is on disk.
struct state_written {
    lock_state state = lock_state::not_started;
    std::string error;
};
/// Answer to claim_node_id: the group's node id (created if the file had none), or `error`.
struct node_id_claimed {
    std::string node_id;
    std::string error;
};
/// Answer to load_journal: the journal was recovered into a new server instance (or not; the
/// io side has then stopped what it started).
struct journal_loaded {
    bool ok = false;
};
/// Answer to open_acceptors: every acceptor listens (or not; the instance was stopped).
struct acceptors_opened {
    bool ok = false;
};
/// Answer to deactivate: the instance is gone and its journal closed (`ok`), or the journal
/// did not close in time, so the live lock must stay held until the process ends.
struct deactivated {
    bool ok = true;
};
/// A request to a lock io actor failed or timed out; `what` names it for the log.
struct io_failed {
    std::string what;
};
/// The journal failed (docs/architecture.md, "Failure model"): the state stays `L` at stop.
struct storage_failure {};
/// Stop: SIGTERM, or the node's own stop after a failure.
struct stop_request {};

/// Every input of the machine.
using event = std::variant<start,
                           tick,
                           backup_lock_result,
                           live_lock_result,
                           state_read,
                           state_written,
                           node_id_claimed,
                           journal_loaded,
                           acceptors_opened,
                           deactivated,
                           io_failed,
                           storage_failure,
                           stop_request>;

// -- actions --------------------------------------------------------------------------------------

/// Try `backup.lock` without waiting; answered by backup_lock_result.
struct take_backup_lock {};
/// Try the live lock without waiting, then read the state byte; answered by live_lock_result.
struct poll_live_lock {};
/// Read the state byte; answered by state_read.
struct read_state {};
/// Write and sync the state byte; answered by state_written.
struct write_state {
    lock_state state = lock_state::not_started;
};
/// Read (or create) the node id; answered by node_id_claimed.
struct claim_node_id {};
/// Recover the journal into a new server instance; answered by journal_loaded.
struct load_journal {
    std::string node_id;
};
/// Listen on the reserved ports; answered by acceptors_opened.
struct open_acceptors {};
/// Close acceptors and connections, stop the server, wait for the journal to close; answered
/// by deactivated. `reserve_again`: hold the ports (bound, not listening) for the next turn.
struct deactivate {
    bool reserve_again = false;
};
/// Release locks (no answer; the lock io actor handles requests in order).
struct release_locks {
    bool live = false;
    bool backup = false;
};
/// Send a tick of this generation after one lock-poll interval.
struct schedule_tick {
    uint64_t generation = 0;
};

/// What a note reports; each has one log line (docs/ha.md, "Log events").
enum class note_kind : uint8_t {
    waiting_for_backup_lock, ///< another server holds backup.lock
    waiting_for_live,        ///< holds backup.lock; waits for the live lock
    paused,                  ///< found the live lock free but the state `P`
    failing_back,            ///< primary: wrote `F`, asks the serving backup to give way
    activating,              ///< holds the live lock, wrote `L`, loads the journal
    live,                    ///< serves
    activation_failed,       ///< the journal or an acceptor failed; releases and stops
    giving_way,              ///< backup: saw `F`; hands the live lock back
    gave_way,                ///< backup: the instance is gone and the live lock released
    backup_restarted,        ///< backup: waits again after giving way
    backup_exiting,          ///< backup: restart-backup is false
    failback_abandoned,      ///< backup: `F` seen, but the asking primary is gone
    stopped,                 ///< stopped while holding the live lock
    lock_write_failed,       ///< the state byte or node id could not be written: stop, exit 1
    lock_io_failed,          ///< a lock request failed or timed out: stop, exit 1
    deactivate_failed,       ///< the journal did not close: keep the live lock, exit 1
};

/// Something to log, report to the status actor and announce to the cluster.
struct note {
    note_kind kind = note_kind::live;
    std::string node_id;
    /// activating / live: what allowed the activation ("live-lock") and the state byte seen.
    std::string allowed_by;
    lock_state found = lock_state::not_started;
    /// live: a primary taking its place back from a backup.
    bool failing_back = false;
    /// stopped: the state stays `L` (a backup takes over); storage_failed says why.
    bool hand_over = false;
    bool storage_failed = false;
    /// lock_write_failed / lock_io_failed: the reason.
    std::string error;
};

/// End the process through SIGTERM, as an operator would; status 1 marks the node failed.
struct exit_process {
    int status = 0;
};
/// The machine is done; the driver may end.
struct finish {};

/// Every output of the machine; the driver carries them out in order.
using action = std::variant<take_backup_lock,
                            poll_live_lock,
                            read_state,
                            write_state,
                            claim_node_id,
                            load_journal,
                            open_acceptors,
                            deactivate,
                            release_locks,
                            schedule_tick,
                            note,
                            exit_process,
                            finish>;

using actions = std::vector<action>;

/// Where the machine is (docs/architecture.md has the table).
enum class phase : uint8_t {
    idle,                ///< not started
    waiting_backup_lock, ///< backup: polling backup.lock
    waiting_live,        ///< polling the live lock (a primary may be failing back)
    claiming,            ///< holds the live lock: node id, then `L`
    loading,             ///< the journal loads
    opening,             ///< the acceptors open
    live,                ///< serving
    giving_way,          ///< backup: deactivating before it hands the lock back
    stopping,            ///< deactivating to stop
    done,                ///< finished
};

/// The one request to an io actor in flight, if any: its answer continues the machine.
enum class pending : uint8_t {
    none,
    backup_lock_queue,    ///< backup waiting in line
    backup_lock_failback, ///< primary about to ask a serving backup to give way
    backup_lock_abandon,  ///< live backup checking whether the `F` asker is still there
    live_lock,
    state_read,
    write_failing_back,
    write_live_claim,
    write_live_abandon,
    write_paused,
    write_live_handback,
    node_id,
    load,
    open,
    deactivate,
};

const char* to_string(phase p);
const char* to_string(pending p);
const char* to_string(note_kind k);
/// One line describing an action or event, for logs and test failures.
std::string to_string(const action& a);
std::string to_string(const event& e);

bool operator==(const note& a, const note& b);

// Every action is a value: comparing two lists of actions is how the tests state behaviour.
#define ACTORMQ_ACTIVATION_EQ(type)                                                                \
    inline bool operator==(const type&, const type&) {                                             \
        return true;                                                                               \
    }
ACTORMQ_ACTIVATION_EQ(take_backup_lock)
ACTORMQ_ACTIVATION_EQ(poll_live_lock)
ACTORMQ_ACTIVATION_EQ(read_state)
ACTORMQ_ACTIVATION_EQ(claim_node_id)
ACTORMQ_ACTIVATION_EQ(open_acceptors)
ACTORMQ_ACTIVATION_EQ(finish)
#undef ACTORMQ_ACTIVATION_EQ
inline bool operator==(const write_state& a, const write_state& b) {
    return a.state == b.state;
}
inline bool operator==(const load_journal& a, const load_journal& b) {
    return a.node_id == b.node_id;
}
inline bool operator==(const deactivate& a, const deactivate& b) {
    return a.reserve_again == b.reserve_again;
}
inline bool operator==(const release_locks& a, const release_locks& b) {
    return a.live == b.live && a.backup == b.backup;
}
inline bool operator==(const schedule_tick& a, const schedule_tick& b) {
    return a.generation == b.generation;
}
inline bool operator==(const exit_process& a, const exit_process& b) {
    return a.status == b.status;
}

// -- the machine ----------------------------------------------------------------------------------

/// The shared-store activation (docs/ha.md): which lock to poll, when to claim the live lock,
/// when to load, serve, give way and stop. At most one io request is in flight at a time, so
/// each answer has exactly one meaning (`pending`); a stop that arrives meanwhile is remembered
/// and acted on when the answer comes.
class activation_state {
public:
    explicit activation_state(settings s);

    /// Feeds one event; returns what to do, in order.
    actions handle(const event& e);

    /// Where the machine is; for the status page and tests.
    phase current_phase() const { return phase_; }
    pending awaiting() const { return pending_; }
    /// Whether this server holds the live lock / backup.lock as far as the machine knows.
    bool holds_live() const { return holds_live_; }
    bool holds_backup() const { return holds_backup_; }
    /// Whether a server instance (journal, server actor) exists.
    bool instance_up() const { return instance_; }
    bool stop_requested() const { return stop_requested_; }
    /// The node id once known.
    const std::string& node_id() const { return node_id_; }
    /// The exit status asked for so far (0 unless a failure asked for 1).
    int exit_status() const { return exit_status_; }
    /// Events that arrived where the machine did not expect them (0 in a correct driver).
    uint64_t unexpected() const { return unexpected_; }

private:
    void on(const start&, actions& out);
    void on(const tick& t, actions& out);
    void on(const backup_lock_result& r, actions& out);
    void on(const live_lock_result& r, actions& out);
    void on(const state_read& r, actions& out);
    void on(const state_written& r, actions& out);
    void on(const node_id_claimed& r, actions& out);
    void on(const journal_loaded& r, actions& out);
    void on(const acceptors_opened& r, actions& out);
    void on(const deactivated& r, actions& out);
    void on(const io_failed& r, actions& out);
    void on(const storage_failure&, actions& out);
    void on(const stop_request&, actions& out);

    void queued_for_backup_lock(const backup_lock_result& r, actions& out);
    void asked_for_failback(const backup_lock_result& r, actions& out);
    void checked_failback_asker(const backup_lock_result& r, actions& out);
    /// Starts the next wait: a tick after one poll interval.
    void wait(actions& out);
    /// Sends `action` as the one request in flight.
    void request(pending p, action a, actions& out);
    /// The live lock is ours: claim the node id, write `L`, load.
    void claim(lock_state found, actions& out);
    /// Serving: watch the state byte (a backup that may fail back) or idle until stop.
    void serve(actions& out);
    /// Stop from wherever the machine is, once nothing is in flight.
    void begin_stop(actions& out);
    /// The instance is gone (or never came): write `P` if due, release, finish.
    void finish_stop(actions& out);
    /// A lock write failed or a lock request broke: stop with status 1.
    void lock_failure(note_kind kind, const std::string& error, actions& out);
    /// Releases whatever is held.
    void release_held(actions& out);
    /// Releases whatever is held and finishes.
    void release_and_finish(actions& out);
    void fail_exit(actions& out);
    note make_note(note_kind kind) const;

    settings settings_;
    phase phase_ = phase::idle;
    pending pending_ = pending::none;
    uint64_t generation_ = 0;
    bool holds_live_ = false;
    bool holds_backup_ = false;
    bool instance_ = false;
    bool stop_requested_ = false;
    bool storage_failed_ = false;
    /// Primary: wrote `F` to ask a serving backup to give way.
    bool asked_failback_ = false;
    /// Wrote `L` for this activation: a stop then writes `P` (or hands over) and logs it.
    bool marked_live_ = false;
    /// The stop's own state write (`P`, or `L` handed back) was sent.
    bool stop_written_ = false;
    /// Once-per-wait log lines.
    bool backup_wait_logged_ = false;
    bool paused_logged_ = false;
    /// The state byte seen when the live lock was taken (for `allowed_by`).
    lock_state found_ = lock_state::not_started;
    std::string node_id_;
    int exit_status_ = 0;
    uint64_t unexpected_ = 0;
};

} // namespace actormq::activation
