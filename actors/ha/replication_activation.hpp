// SPDX-License-Identifier: Apache-2.0
#pragma once

// The activation of a replicating server as data (docs/replication.md, "Activation"): events
// in, actions out, no I/O and no CAF, like activation.hpp is for shared store. The driver
// (replication_driver.hpp) turns actions into requests (to the cluster, the replica, the io
// actors) and their answers back into events; tests feed events by hand.
//
// A backup: moves old data aside, waits for a live of its group without a backup, pairs,
// receives the initial sync, and once in sync may take over when the live is lost, but only
// after a quorum vote says the live is gone. A primary: serves its own journal; with
// vote-on-replication-failure it stops serving when it lost its backup and has no quorum.
//
// Every activation (a primary starting live, a backup taking over, a failback) gets the next
// activation sequence of its node id, written to the journal's directory before the journal
// is loaded (docs/replication.md, "Which journal is newest"). A server whose journal has a
// lower sequence than one the cluster has seen never starts live on it, and a backup whose
// directory holds a journal it served starts live on it when nobody serves that node id and
// nobody has seen a newer one.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace actormq::repl_activation {

struct settings {
    bool backup = false;
    /// Primary: on losing the backup, keep serving only with a quorum.
    bool vote_on_replication_failure = false;
    /// Backup: after a vote that was not won, how often to ask again (then start over).
    uint32_t vote_retries = 12;
    uint32_t vote_retry_wait_ms = 2000;
    /// Backup: the wait before pairing again after the pairing or the replica failed.
    uint32_t retry_replication_wait_ms = 2000;
    /// Primary: at start, ask whether a server serves this node id; if one does, sync from it
    /// as a backup and ask it to give way (failback).
    bool check_for_live_server = false;
    /// Backup, once serving: give way when the primary asks (failback).
    bool allow_failback = true;
    /// Backup, after giving way: wait as a backup again (false: exit 0).
    bool restart_backup = true;
};

// -- events ---------------------------------------------------------------------------------------

struct start {};
/// A timer of this generation fired (older generations are stale).
struct tick {
    uint64_t generation = 0;
};
/// The lives this backup may pair with (its group, without a backup), by cluster address;
/// sent at start and on every topology change.
struct candidates {
    std::vector<std::string> addresses;
};
/// Old data moved aside (or not: `error`). When the directory held a journal this server
/// served (an activation record) and prepare_directory did not say to discard it, nothing was
/// moved and `held_node_id` / `held_sequence` name it.
struct directory_ready {
    std::string error;
    std::string held_node_id{};
    uint64_t held_sequence = 0;
};
/// The pairing request's answer: the live's node id, or why it refused.
struct paired {
    bool ok = false;
    std::string node_id;
    std::string error;
    /// The live's activation sequence.
    uint64_t sequence = 0;
};
/// The replica's reports.
struct replica_in_sync {};
struct replica_lost {
    /// Whether the mirror held the whole journal when the live went.
    bool synced = false;
};
struct replica_failed {
    std::string reason;
};
/// The replica closed its files (`ok`: everything applied is on disk).
struct replica_closed {
    bool ok = false;
};
/// A vote's outcome as the driver computed it from the tally (cluster::live_is_gone /
/// live_has_quorum); `summary` names the counts for the log and the page.
struct vote_result {
    bool won = false;
    std::string summary;
    /// A start check only: a server other than this one serves the node id.
    bool served = false;
    /// The highest activation sequence of the node id that any member answering has seen
    /// (served, or held by a server that served it).
    uint64_t sequence_max = 0;
    /// Added to the wait before the vote is asked again, when another server claimed the
    /// node id meanwhile (the driver draws it at random; tests give it by hand).
    uint32_t retry_jitter_ms = 0;
};
/// A serving backup is asked to give way (by the primary that synced from it).
struct failback_requested {};
/// The answer to request_failback: the serving server agreed to give way (or not, or it
/// could not be asked).
struct failback_answer {
    bool ok = false;
    std::string error;
};
/// Primary: node id read or created (or `error`).
struct node_id_claimed {
    std::string node_id;
    std::string error;
    /// The activation sequence recorded in the journal's directory for this node id (0: none).
    uint64_t sequence = 0;
};
struct journal_loaded {
    bool ok = false;
};
struct acceptors_opened {
    bool ok = false;
};
struct deactivated {
    bool ok = true;
};
/// Primary: the journal lost its replicating backup (and holds confirmations for the vote
/// when vote-on-replication-failure is set).
struct backup_lost {};
/// Serving: the journal holds a backup in sync (the only one a failback request can come
/// from; backup_lost ends it).
struct backup_synced {};
/// Another member announces itself live with this server's node id: two servers serve it,
/// which the votes exist to prevent (docs/replication.md, "Two servers for one node id").
/// The one whose activation sequence is lower steps down; on equal sequences the driver says
/// which one keeps serving (`rival_keeps_on_tie`, the same answer on both sides).
struct rival_live {
    std::string name;
    uint64_t sequence = 0;
    bool rival_keeps_on_tie = false;
};
/// A colocated backup that is not paired: another member announces itself the backup (paired,
/// syncing or in sync) of the node id it was started for (`by`), so its live will not pair
/// with it; it ends and its host frees the slot (docs/ha.md, "An unpaired colocated backup
/// gives way"). Acted on only between pairings; the driver tells again after other events.
struct superseded {
    std::string by;
};
struct storage_failure {};
struct stop_request {};

using event = std::variant<start,
                           tick,
                           candidates,
                           directory_ready,
                           paired,
                           replica_in_sync,
                           replica_lost,
                           replica_failed,
                           replica_closed,
                           vote_result,
                           node_id_claimed,
                           journal_loaded,
                           acceptors_opened,
                           deactivated,
                           backup_lost,
                           backup_synced,
                           rival_live,
                           failback_requested,
                           failback_answer,
                           superseded,
                           storage_failure,
                           stop_request>;

// -- actions --------------------------------------------------------------------------------------

/// Move old segments aside (oldreplica.N); answered by directory_ready. Unless
/// `discard_record`, a directory holding a journal this server served is left as it is and
/// the answer names that journal.
struct prepare_directory {
    bool discard_record = false;
};
/// Spawn a replica and ask the live at `address` to pair with it; answered by paired, then
/// the replica's reports.
struct pair_with {
    std::string address;
};
/// Close the replica (sync, close files); answered by replica_closed.
struct close_replica {};
/// What a vote asks.
enum class question : uint8_t {
    live_gone,   ///< a backup: is my live gone?
    own_quorum,  ///< a live that lost its backup: do I keep a quorum?
    start_check, ///< a primary at start (check-for-live-server): does anyone serve my id?
};

/// Ask the cluster about `node_id`; answered by vote_result.
struct ask_vote {
    std::string node_id;
    question what = question::live_gone;
};
/// Ask the server at `address` (serving this node id) to give way; answered by
/// failback_answer.
struct request_failback {
    std::string address;
};
/// Answer a failback_requested.
struct answer_failback {
    bool ok = false;
};
/// Primary: read or create the node id; answered by node_id_claimed.
struct claim_node_id {};
/// Record `sequence` as the activation of `node_id` in the journal's directory (durably),
/// then recover the journal into a new instance serving it; answered by journal_loaded.
struct load_journal {
    std::string node_id;
    uint64_t sequence = 0;
};
struct open_acceptors {};
/// Stop the instance; answered by deactivated.
struct deactivate {};
/// Primary: the vote was won, the journal confirms alone from now on.
struct resume_journal {};
struct schedule_tick {
    uint64_t generation = 0;
    uint32_t ms = 0;
};

enum class note_kind : uint8_t {
    waiting_for_live,   ///< backup: no live of its group without a backup
    pairing,            ///< backup: asking a live
    pair_refused,       ///< backup: the live said no (error)
    syncing,            ///< backup: paired, the initial sync runs
    in_sync,            ///< backup: holds the whole journal; may fail over
    live_lost,          ///< backup: the live is gone (synced or not)
    voting,             ///< a vote starts
    vote_lost,          ///< not won (summary); retries or starts over
    activating,         ///< the vote was won: loads the replicated journal (allowed_by)
    live,               ///< serves
    replication_failed, ///< backup: the replica failed; starts over
    restarting,         ///< backup: starts over (after retry-replication-wait)
    quorum_kept,        ///< primary: lost its backup, kept its quorum
    stepping_down,      ///< primary: lost its backup and its quorum: stops serving
    activation_failed,  ///< the journal or an acceptor failed
    stopped,            ///< stopped
    storage_failed,     ///< a directory or journal failure: exit 1
    checking,           ///< primary (check-for-live-server): asks who serves its node id
    found_served,       ///< primary: its node id is served elsewhere: syncs from there first
    failing_back,       ///< primary, in sync: asks the serving server to give way
    failback_refused,   ///< the serving server said no (or could not be asked); asks again
    failback_agreed,    ///< the serving server agreed; waits for its journal to end (handover)
    giving_way,         ///< backup, serving: the primary asked; stops serving
    backup_restarted,   ///< backup, after giving way: waits as a backup again
    backup_exiting,     ///< backup, after giving way: restart-backup is false
    held_journal,       ///< backup: its directory holds a journal it served; checks who serves
    stale_journal,      ///< the cluster has seen a newer journal of the node id than this one
    superseded,         ///< colocated backup, unpaired: another backs up its live; it ends
};

struct note {
    note_kind kind = note_kind::live;
    std::string node_id;
    std::string detail;
    /// The activation sequence of the journal this server serves or holds (0: none).
    uint64_t sequence = 0;
};

struct exit_process {
    int status = 0;
};
struct finish {};

using action = std::variant<prepare_directory,
                            pair_with,
                            close_replica,
                            ask_vote,
                            claim_node_id,
                            load_journal,
                            open_acceptors,
                            deactivate,
                            resume_journal,
                            request_failback,
                            answer_failback,
                            schedule_tick,
                            note,
                            exit_process,
                            finish>;
using actions = std::vector<action>;

enum class phase : uint8_t {
    idle,
    preparing, ///< backup: moving old data aside
    waiting,   ///< backup: no candidate yet
    pairing,   ///< backup: a pairing request is out
    syncing,   ///< backup: paired, not yet in sync
    in_sync,   ///< backup: may take over
    voting,    ///< backup: the live is lost; a vote (or its retry wait) is under way
    closing,   ///< backup: closing the replica (to start over or to take over)
    claiming,  ///< primary: reading the node id
    loading,
    opening,
    live,
    stepping_down, ///< primary: deactivating after a lost quorum
    checking,      ///< primary: the start check's vote
    failing_back,  ///< primary, in sync: asked the serving server to give way
    giving_way,    ///< backup, serving: deactivating for the primary
    stopping,
    done,
};

const char* to_string(phase p);
const char* to_string(note_kind k);
std::string to_string(const action& a);
std::string to_string(const event& e);

class machine {
public:
    explicit machine(settings s) : settings_(s) {}

    actions handle(const event& e);

    phase current_phase() const { return phase_; }
    const std::string& node_id() const { return node_id_; }
    bool instance_up() const { return instance_; }
    bool replica_up() const { return replica_; }
    bool in_sync() const { return synced_; }
    int exit_status() const { return exit_status_; }
    /// Events that arrived where the machine did not expect them (0 in a correct driver).
    uint64_t unexpected() const { return unexpected_; }
    /// Whether the machine made this server serve `node_id` with a vote won (backup) or as
    /// the primary: tests check no two machines ever do so at once for one node id.
    bool serving() const { return phase_ == phase::live; }
    /// Whether this machine looks for the server of its own node id (a primary failing back)
    /// rather than for a live of its group.
    bool seeks_own_node() const { return failback_; }
    /// The activation sequence of the journal this server serves or holds (0: none).
    uint64_t sequence() const { return sequence_; }

private:
    void on(const start&, actions& out);
    void on(const tick& t, actions& out);
    void on(const candidates& c, actions& out);
    void on(const directory_ready& r, actions& out);
    void on(const paired& r, actions& out);
    void on(const replica_in_sync&, actions& out);
    void on(const replica_lost& r, actions& out);
    void on(const replica_failed& r, actions& out);
    void on(const replica_closed& r, actions& out);
    void on(const vote_result& r, actions& out);
    void on(const node_id_claimed& r, actions& out);
    void on(const journal_loaded& r, actions& out);
    void on(const acceptors_opened& r, actions& out);
    void on(const deactivated& r, actions& out);
    void on(const backup_lost&, actions& out);
    void on(const backup_synced&, actions& out);
    void on(const rival_live& r, actions& out);
    void on(const failback_requested&, actions& out);
    void on(const failback_answer& r, actions& out);
    void on(const superseded& r, actions& out);
    void on(const storage_failure&, actions& out);
    void on(const stop_request&, actions& out);

    /// Backup: try the next candidate, or wait for one.
    void try_pair(actions& out);
    /// Backup: close the replica, then start over after retry-replication-wait.
    void start_over(note_kind why, const std::string& detail, actions& out);
    void vote(actions& out);
    void start_check(actions& out);
    void on_check(const vote_result& r, actions& out);
    void ask_failback(actions& out);
    void take_over(const std::string& allowed_by, actions& out);
    /// Serve `node_id_` with the next activation sequence (recorded before the journal loads).
    void activate(const std::string& allowed_by, actions& out);
    /// Move this directory's journal (and its activation record) aside, to wait for a live as
    /// a plain backup; answered by directory_ready.
    void prepare_as_backup(actions& out);
    /// A backup gives up the journal it held (served elsewhere, or stale): move it aside and
    /// wait for a live as any backup does.
    void release_held(actions& out);
    void timer(uint32_t ms, actions& out);
    void begin_stop(actions& out);
    void finish_stop(actions& out);
    /// The answer to the request of phase `p` arrived; false (and counted as unexpected) when
    /// none was due.
    bool answered(phase p);
    /// A stop that came while an answer was due: carry it out now; true if so.
    bool stopping_now(actions& out);
    /// A failure that ends this server: note it, exit status 1, stop.
    void fail_stop(note_kind why, const std::string& detail, actions& out);
    void add_note(note_kind k, std::string detail, actions& out) const;

    settings settings_;
    phase phase_ = phase::idle;
    uint64_t generation_ = 0;
    std::vector<std::string> candidates_;
    std::string pairing_with_;
    std::string node_id_;
    bool replica_ = false;
    bool synced_ = false;
    bool instance_ = false;
    bool stop_requested_ = false;
    /// An answer is due (a request of the current phase is out).
    bool busy_ = false;
    /// After closing the replica: take over (true) or start over (false).
    bool take_over_ = false;
    /// The replica reported lost or failed before the pairing was answered.
    bool lost_while_pairing_ = false;
    /// The replica reported in sync before the pairing was answered.
    bool synced_early_ = false;
    /// The replica failed while a vote was out: its answer must not make this backup serve.
    bool vote_void_ = false;
    /// Primary: a vote about its own quorum is under way.
    bool own_vote_ = false;
    /// Primary: its node id is served elsewhere; it syncs as a backup, then asks for it back.
    bool failback_ = false;
    /// Failing back: the serving server agreed; its journal going away is the handover.
    bool failback_agreed_ = false;
    /// Serving: the journal's backup is in sync (backup_synced, until backup_lost). A serving
    /// backup gives way only then: the primary that asks is that backup, and without it the
    /// server confirmed messages alone that the primary does not hold.
    bool backup_synced_ = false;
    /// Failing back: the replica reported the live lost before the answer came.
    bool lost_while_failing_back_ = false;
    /// What allowed the activation under way (for the `live` note).
    std::string allowed_by_;
    uint32_t votes_ = 0;
    /// The activation sequence of the journal served or held, and the highest one the cluster
    /// reported for the node id.
    uint64_t sequence_ = 0;
    uint64_t sequence_seen_ = 0;
    /// Backup: its directory holds a journal it served; the start check decides about it.
    bool held_ = false;
    bool waiting_logged_ = false;
    int exit_status_ = 0;
    uint64_t unexpected_ = 0;
};

} // namespace actormq::repl_activation
