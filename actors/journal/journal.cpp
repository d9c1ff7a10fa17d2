// SPDX-License-Identifier: Apache-2.0
// The journal actor: group commit and recovery (docs/journal.md). It runs detached, so its
// blocking writes and fdatasync never hold a scheduler worker.
#include "actors/journal/journal.hpp"

#include "actors/journal/recovery.hpp"
#include "actors/paging/page_mirror.hpp"
#include "protocol/errc.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <set>
#include <system_error>
#include <thread>

namespace actormq {

namespace {

/// What a caught exception says about the failure: the file, call and errno of an io_error.
journal_failure failure_of(const std::exception& e, const char* fallback_op) {
    journal_failure f;
    f.what = e.what();
    if (const auto* io = dynamic_cast<const journal::io_error*>(&e)) {
        f.file = io->path();
        f.op = io->op();
        f.err = io->code().value();
    } else {
        f.op = fallback_op;
    }
    return f;
}

} // namespace

std::string journal_failure::describe() const {
    return "file=" + (file.empty() ? std::string{"-"} : file) + " op=" + op
           + " errno=" + (err != 0 ? journal::errno_name(err) : std::string{"-"});
}

uint64_t journal_state::add(std::vector<journal::record>& records) {
    // Encoded aside first: a record encode() refuses throws before anything joins the batch.
    std::string encoded;
    auto id = next_id;
    for (auto& r : records) {
        r.id = id++;
        journal::encode(r, encoded);
    }
    next_id = id;
    if (batch.empty()) {
        batch_started = std::chrono::steady_clock::now();
        if (last_answered != std::chrono::steady_clock::time_point{}) {
            prev_idle = last_idle;
            last_idle = batch_started - last_answered;
        }
    }
    batch += encoded;
    for (auto& r : records) {
        batch_records.push_back(std::move(r));
    }
    return next_id - 1;
}

std::optional<journal_failure> journal_state::write_batch() {
    auto start = std::chrono::steady_clock::now();
    try {
        auto where = store->append(batch);
        if (repl.attached()) {
            // Out before our own fdatasync, so both disks sync at the same time.
            repl.note_write(where.file_seq, where.offset, batch);
            if (auto b = repl.take_batch(std::chrono::steady_clock::now())) {
                send_batch(std::move(*b));
            }
        }
        store->sync();
        for (const auto& r : batch_records) {
            live.note(r, where.file_seq);
        }
    } catch (const std::exception& e) {
        return failure_of(e, "append");
    }
    last_batch_records = batch_records.size();
    records_written += batch_records.size();
    batch_records.clear();
    last_sync = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    double seconds = static_cast<double>(last_sync.count()) / 1e6;
    const auto& bounds = sync_bounds_seconds();
    auto bucket = std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin();
    ++sync_buckets[static_cast<size_t>(bucket)];
    sync_seconds_sum += seconds;
    last_batch_bytes = batch.size();
    ++batches;
    batch.clear();
    return std::nullopt;
}

std::chrono::nanoseconds
journal_state::gather_left(std::chrono::steady_clock::time_point now) const {
    auto expected = std::max(recent_waiters[0], recent_waiters[1]);
    // Appends confirmed here but held for the backup's acknowledgement cannot bring their
    // next record yet (docs/replication.md, "Confirmation"): nobody waits for them.
    expected -= std::min(expected, repl_waiting.size());
    // A stream (pipelined producers, hundreds of appends a batch) needs no company: its
    // records keep coming, and waiting for as many as last time would only idle the disk.
    expected = std::min(expected, gather_waiters_max);
    if (hooked_first() && !waiting.empty()) {
        // The producers whose RECEIPTs ride on this batch are all here: they go now. A
        // consumer's ACK still on its way joins the next batch (which waits for company as
        // below), instead of holding the producers back by its longer way (docs/journal.md,
        // "Group commit").
        auto hooked = producer_hooks(waiting);
        auto expected_hooked =
            std::min(std::max(recent_hooked[0], recent_hooked[1]), gather_waiters_max);
        if (hooked > 0 && hooked >= expected_hooked) {
            return std::chrono::nanoseconds{0};
        }
        if (hooked == 0 && expected_hooked > 0) {
            // Only ACKs (or other unhooked appends) so far, and producers are about: they wait
            // for the next producer's SEND, which comes within a turnaround, rather than take an
            // fdatasync of their own that the SEND would then wait behind.
            expected = std::max(expected, std::min(waiting.size() + 1, gather_waiters_max));
        }
    }
    if (waiting.empty() || waiting.size() >= expected || failure
        || batch.size() >= ctx->config.journal.journal_buffer_size) {
        return std::chrono::nanoseconds{0};
    }
    auto budget =
        std::chrono::nanoseconds{std::min<std::chrono::microseconds>(last_sync, gather_max)};
    auto waited = now - batch_started;
    return waited < budget ? budget - waited : std::chrono::nanoseconds{0};
}

bool journal_state::hooked_first() {
    static const bool on = [] {
        const char* v = std::getenv("ACTORMQ_JOURNAL_HOOKED_FIRST");
        return v == nullptr || std::strtol(v, nullptr, 10) != 0;
    }();
    return on;
}

void journal_state::note_answered(size_t synced, size_t hooked) {
    recent_waiters[1] = recent_waiters[0];
    recent_waiters[0] = synced;
    recent_hooked[1] = recent_hooked[0];
    recent_hooked[0] = hooked;
    last_answered = std::chrono::steady_clock::now();
}

std::chrono::microseconds journal_state::turnaround_spin_max() {
    // Read once: off unless ACTORMQ_JOURNAL_TURNAROUND_US names a bound. Measured, it did not
    // pay on our shared VMs (docs/benchmarks.md, "The RECEIPT from the journal's thread"); the
    // switch stays for a longer series on a quiet machine.
    static const std::chrono::microseconds max{[] {
        const char* v = std::getenv("ACTORMQ_JOURNAL_TURNAROUND_US");
        return v != nullptr ? std::strtol(v, nullptr, 10) : 0L;
    }()};
    return max;
}

std::chrono::nanoseconds journal_state::idle_spin() const {
    if (failure) {
        return std::chrono::nanoseconds{0};
    }
    if (last_idle < idle_spin_max) {
        return idle_spin_max;
    }
    auto turnaround = std::chrono::nanoseconds{turnaround_spin_max()};
    if (last_idle <= turnaround && prev_idle <= turnaround) {
        auto longer = std::max(last_idle, prev_idle);
        return std::min(turnaround, longer + longer / 4);
    }
    return std::chrono::nanoseconds{0};
}

journal_stats journal_state::stats() const {
    journal_stats s;
    if (store) {
        s.files = store->segments().size();
        s.bytes = s.files * ctx->config.journal.journal_file_size;
    }
    s.batches = batches;
    s.records = records_written;
    s.synced_appends = synced_appends;
    s.last_batch_records = last_batch_records;
    s.last_sync_us = static_cast<uint64_t>(last_sync.count());
    s.segments_reclaimed = segments_reclaimed;
    s.sync_buckets = sync_buckets;
    s.sync_seconds_sum = sync_seconds_sum;
    s.replication = replication::to_string(repl.phase());
    s.replication_sent = repl.sent();
    s.replication_acked = repl.acked();
    s.replication_lag_bytes = repl.lag_bytes();
    s.sync_sent = repl.sync_sent();
    s.sync_total = repl.sync_total();
    s.replication_acks = acks_before_detach + repl.acks_measured();
    s.replication_ack_us_sum = ack_us_before_detach + repl.ack_us_sum();
    return s;
}

std::optional<journal_failure> journal_state::reclaim() {
    try {
        auto segs = store->segments();
        auto current = store->current_segment();
        std::set<uint64_t> present(segs.begin(), segs.end());
        for (auto seg : segs) {
            if (seg >= current) {
                break;
            }
            if (!live.reclaimable(seg, present)) {
                continue;
            }
            auto forwards = live.take_forwards(seg);
            if (!forwards.empty()) {
                add(forwards);
                if (auto err = write_batch()) {
                    return err;
                }
            }
            store->remove(seg);
            repl.note_remove(seg);
            live.drop(seg);
            present.erase(seg);
            ++segments_reclaimed;
            ctx->log->debug("journal_segment_reclaimed seq={} forwarded={}", seg, forwards.size());
        }
    } catch (const std::exception& e) {
        return failure_of(e, "reclaim");
    }
    return std::nullopt;
}

namespace {

using journal_ptr = journal_actor::stateful_pointer<journal_state>;

/// The error every append gets once the journal failed.
caf::error append_error(const journal_state& st) {
    if (!st.failure) {
        return caf::make_error(errc::journal_failed, std::string{"journal not open"});
    }
    return caf::make_error(errc::journal_failed, st.failure->describe());
}

/// Latches a failure: one log line naming file, call and errno. notify_failure() then tells
/// the node, which stops this server instance and exits non-zero (docs/architecture.md,
/// "Failure model"); a shared-store backup then takes over the journal.
void fail(journal_ptr self, journal_failure f) {
    auto& st = self->state;
    if (st.failure) {
        return;
    }
    st.ctx->log->critical("journal_failed {} action=stop reason=\"{}\"", f.describe(), f.what);
    st.failure = std::move(f);
}

/// Tells the node once, after the failed batch's appends got their errors, so those answers
/// are on their way to the producers before the node starts closing connections.
void notify_failure(journal_ptr self) {
    auto& st = self->state;
    if (st.failure && !st.failure_reported && st.ctx->on_journal_failure) {
        st.failure_reported = true;
        st.ctx->on_journal_failure();
    }
}

/// Answers every append that waits for the replica: with its id (the backup is gone or
/// dropped, so this server carries on alone) or with the journal's failure.
void release_backup_waiters(journal_ptr self) {
    auto& st = self->state;
    auto waiting = std::move(st.repl_waiting);
    st.repl_waiting.clear();
    for (auto& rw : waiting) {
        if (st.failure) {
            rw.w.refuse(append_error(st));
        } else {
            rw.w.confirm();
        }
    }
}

/// Sends the sync's next chunks as far as the window allows, then (with nothing left to
/// copy) the batch that completes the sync. Chunks of small files (64 KiB page files) are
/// gathered into batches of up to the source's chunk_bytes: one message, one apply and one
/// acknowledgement for many files (docs/replication.md, "The initial sync").
void pump_sync(journal_ptr self) {
    auto& st = self->state;
    auto now = std::chrono::steady_clock::now();
    const auto paging_dir = config::paging_directory_of(st.ctx->config.journal);
    try {
        for (;;) {
            while (auto c = st.repl.next_chunk()) {
                auto bytes =
                    c->path.empty()
                        ? st.store->read_bytes(c->file_seq, c->offset, c->length)
                        : paging::read_page_chunk(paging_dir, c->path, c->offset, c->length);
                st.repl.add_chunk(*c, std::move(bytes));
            }
            auto b = st.repl.take_chunks(now);
            if (!b) {
                break;
            }
            st.send_batch(std::move(*b));
        }
    } catch (const std::exception& e) {
        fail(self, failure_of(e, "read"));
        release_backup_waiters(self);
        notify_failure(self);
        return;
    }
    if (auto b = st.repl.take_batch(now)) {
        st.send_batch(std::move(*b));
    }
}

/// Lets the backup go: confirmations stop waiting for it and this server carries on alone
/// (docs/replication.md, "Losing the backup"). The replica is told to stop, so it can never
/// take over with a journal that misses what is confirmed from now on.
void drop_replica(journal_ptr self, const char* reason) {
    auto& st = self->state;
    if (!st.replica) {
        return;
    }
    bool vote = st.ctx->config.ha_policy.replication.vote_on_replication_failure;
    if (vote) {
        // First of all: no new client from here on (see below).
        st.ctx->accepting = false;
    }
    // action=vote: confirmations wait for the node's quorum check; alone: they go on now.
    st.ctx->log->warn("replication_backup_lost backup={} phase={} reason=\"{}\" action={}",
                      st.replica_name, replication::to_string(st.repl.phase()), reason,
                      vote ? "vote" : "alone");
    self->demonitor(st.replica.address());
    self->send_exit(st.replica, caf::exit_reason::user_shutdown);
    st.replica = nullptr;
    st.ctx->replica_checked_ns = 0;
    st.acks_before_detach += st.repl.acks_measured();
    st.ack_us_before_detach += st.repl.ack_us_sum();
    st.repl.detach();
    if (vote) {
        // Nothing more is confirmed, and no new client let in, until the node knows this side
        // keeps a quorum.
        st.held_for_vote = true;
        st.ctx->accepting = false;
    } else {
        release_backup_waiters(self);
    }
    if (st.ctx->on_replication) {
        st.ctx->on_replication("backup_lost", st.replica_name);
    }
}

/// The deadline of a replica's acknowledgements: a backup that holds a batch longer than
/// initial-replication-sync-timeout is dropped. Runs every 100 ms while one is attached.
void check_replica(journal_ptr self) {
    auto& st = self->state;
    st.repl_tick_scheduled = false;
    if (!st.replica) {
        return;
    }
    auto limit = std::chrono::milliseconds(
        st.ctx->config.ha_policy.replication.initial_replication_sync_timeout);
    auto now = std::chrono::steady_clock::now();
    auto stalled = now - st.last_check;
    st.last_check = now;
    auto timeout = std::chrono::milliseconds(st.ctx->config.cluster.connection_timeout_ms);
    // Checked before the look below is published: until this server knows whether it may go
    // on, its stale look keeps new clients out (server_context::lets_clients_in).
    if (stalled > timeout) {
        // Longer than the backup waits before it calls this server lost: it may serve this
        // node id now. Nothing more is confirmed until a vote says this side may go on.
        drop_replica(self, "this server stood still longer than connection-timeout-ms");
        return;
    }
    st.ctx->replica_checked(now);
    auto oldest = st.repl.oldest_unacked();
    if (oldest && now - *oldest > limit) {
        drop_replica(self, "no acknowledgement within initial-replication-sync-timeout");
        return;
    }
    // The lease: ask the replica whether it is there, every half lease. A replica that is gone
    // answers with an error at once (its node says so); one that cannot be reached, within
    // the lease (twice the cluster's connection timeout).
    auto lease = std::chrono::milliseconds(
        2 * std::max<uint32_t>(st.ctx->config.cluster.connection_timeout_ms, 500));
    if (!st.ping_out && now - st.last_pong > lease / 2) {
        st.ping_out = true;
        auto replica = st.replica;
        self->request(replica, lease, replication::ping_atom::value)
            .then(
                [self, replica](bool) {
                    if (self->state.replica == replica) {
                        self->state.ping_out = false;
                        self->state.last_pong = std::chrono::steady_clock::now();
                    }
                },
                [self, replica](caf::error&) {
                    if (self->state.replica == replica) {
                        self->state.ping_out = false;
                        drop_replica(self, "the replica did not answer within its lease");
                    }
                });
    }
    st.repl_tick_scheduled = true;
    self->delayed_send(self, std::chrono::milliseconds(100), caf::tick_atom::value);
}

/// A backup asks to replicate this journal.
caf::result<replication::pair_reply>
attach_replica(journal_ptr self, const std::string& name, caf::actor replica) {
    auto& st = self->state;
    if (st.failure || !st.store) {
        return append_error(st);
    }
    if (st.replica) {
        return caf::make_error(errc::already_paired,
                               "backup " + st.replica_name + " replicates this server");
    }
    if (!replica) {
        return caf::make_error(errc::bad_request, std::string{"no replica"});
    }
    // Whatever is collected but not written yet goes out as an ordinary batch after this.
    std::vector<replication::extent> snapshot;
    for (auto seq : st.store->segments()) {
        auto end = st.store->end_of(seq);
        if (end > journal::segment_header_size) {
            snapshot.push_back({seq, end, {}});
        }
    }
    // The page files are part of what the backup must hold (docs/replication.md, "Paging").
    for (auto& e : paging::page_snapshot(config::paging_directory_of(st.ctx->config.journal))) {
        snapshot.push_back(std::move(e));
    }
    st.replica = caf::actor_cast<replication::replica_actor>(replica);
    st.replica_name = name;
    st.ping_out = false;
    st.last_pong = std::chrono::steady_clock::now();
    st.last_check = st.last_pong;
    st.ctx->replica_checked(st.last_check);
    self->monitor(replica);
    st.repl.attach(++st.epochs, std::move(snapshot), std::chrono::steady_clock::now());
    st.ctx->log->info("replication_backup_attached backup={} epoch={} sync_bytes={}", name,
                      st.repl.epoch(), st.repl.sync_total());
    if (st.ctx->on_replication) {
        st.ctx->on_replication("backup_attached", name);
    }
    pump_sync(self);
    if (!st.repl_tick_scheduled) {
        st.repl_tick_scheduled = true;
        self->delayed_send(self, std::chrono::milliseconds(100), caf::tick_atom::value);
    }
    return replication::pair_reply{st.ctx->node_id, st.repl.epoch(),
                                   caf::actor_cast<caf::actor>(self)};
}

/// A pager's file operations (docs/replication.md, "Paging"): they join the stream behind
/// every batch sent before, and the answer waits for the backup as a synced append's does.
caf::result<uint64_t> replicate_page_ops(journal_ptr self, std::vector<replication::file_op> ops) {
    auto& st = self->state;
    if (st.failure || !st.store) {
        return append_error(st);
    }
    st.repl.note_page_ops(std::move(ops));
    if (auto b = st.repl.take_batch(std::chrono::steady_clock::now())) {
        st.send_batch(std::move(*b));
    }
    if (!st.repl.confirm_needs_backup() && !st.held_for_vote) {
        return uint64_t{0};
    }
    auto until = st.held_for_vote ? std::numeric_limits<uint64_t>::max() : st.repl.sent();
    auto p = self->make_response_promise<uint64_t>();
    st.repl_waiting.push_back({journal_state::waiter{p, 0, nullptr}, until});
    return p;
}

/// The replica has everything up to `seq` on disk.
void on_replica_ack(journal_ptr self, uint64_t epoch, uint64_t seq) {
    auto& st = self->state;
    auto sender = self->current_sender();
    if (!st.replica || !sender || sender->address() != st.replica.address()
        || epoch != st.repl.epoch()) {
        return;
    }
    bool now_in_sync = st.repl.on_ack(seq);
    auto acked = st.repl.acked();
    while (!st.repl_waiting.empty() && st.repl_waiting.front().seq <= acked) {
        auto& rw = st.repl_waiting.front();
        rw.w.confirm();
        st.repl_waiting.pop_front();
    }
    if (now_in_sync) {
        st.ctx->log->info("replication_in_sync backup={} epoch={} batches={} bytes={}",
                          st.replica_name, epoch, acked, st.repl.sync_sent());
        if (st.ctx->on_replication) {
            st.ctx->on_replication("backup_in_sync", st.replica_name);
        }
    }
    pump_sync(self);
}

/// Spins, giving the CPU to anything else runnable, until a message is in the mailbox or
/// `until` passed; returns whether one is. While this thread spins, an append pushed into its
/// mailbox costs its sender no wake-up of this thread (a sleeping thread's wake-up costs tens
/// of µs on our VMs, docs/benchmarks.md, "Fewer hand-offs").
bool await_mail(journal_ptr self, std::chrono::steady_clock::time_point until) {
    while (self->mailbox().empty()) {
        if (std::chrono::steady_clock::now() >= until) {
            return false;
        }
        std::this_thread::yield();
    }
    return true;
}

/// Writes the batch and answers every append that waited for it.
void flush(journal_ptr self) {
    auto& st = self->state;
    st.flush_scheduled = false;
    if (st.batch.empty()) {
        return;
    }
    auto now = std::chrono::steady_clock::now();
    if (auto left = st.gather_left(now); left.count() > 0) {
        // Fewer clients wait for this batch than for the last ones, and the disk is idle:
        // those still on their way (their confirmation is out, their next record comes) share
        // this fdatasync if it waits a little. Whatever arrives meanwhile lands before the
        // flush sent here, joins the batch, and the next flush decides again.
        st.gathering = true;
        await_mail(self, now + left);
        st.gathered_ns +=
            static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::steady_clock::now() - now)
                                      .count());
        st.flush_scheduled = true;
        self->send(self, flush_atom::value);
        return;
    }
    if (st.gathering) {
        st.gathering = false;
        ++st.gathered_batches;
    }
    if (!st.failure) {
        if (auto err = st.write_batch()) {
            fail(self, std::move(*err));
        }
    }
    auto waiting = std::move(st.waiting);
    st.waiting.clear();
    st.synced_appends += waiting.size();
    st.note_answered(waiting.size(), journal_state::producer_hooks(waiting));
    // A backup that could take over must hold what is confirmed: those answers wait for
    // its acknowledgement of the batch just sent (docs/replication.md, "Confirmation").
    bool wait_for_backup = !st.failure && (st.repl.confirm_needs_backup() || st.held_for_vote);
    // Held for a vote: no acknowledgement releases these, only resume.
    auto until = st.held_for_vote ? std::numeric_limits<uint64_t>::max() : st.repl.sent();
    for (auto& w : waiting) {
        if (st.failure) {
            w.refuse(append_error(st));
        } else if (wait_for_backup) {
            st.repl_waiting.push_back({std::move(w), until});
        } else {
            w.confirm();
        }
    }
    // Answers first, then housekeeping: reclaiming never delays a confirmation.
    if (!st.failure) {
        if (auto err = st.reclaim()) {
            fail(self, std::move(*err));
        }
        // A reclaimed segment's removal goes out now, not with the next write.
        if (auto b = st.repl.take_batch(std::chrono::steady_clock::now())) {
            st.send_batch(std::move(*b));
        }
    }
    if (st.failure) {
        release_backup_waiters(self);
    }
    notify_failure(self);
    if (auto spin = st.idle_spin(); spin.count() > 0) {
        // Appends come often: wait for the next one awake rather than asleep.
        await_mail(self, std::chrono::steady_clock::now() + spin);
    }
}

/// Makes sure a flush follows the appends now in the mailbox.
void schedule_flush(journal_ptr self) {
    auto& st = self->state;
    if (st.batch.size() >= st.ctx->config.journal.journal_buffer_size) {
        flush(self);
        return;
    }
    if (st.flush_scheduled) {
        return;
    }
    st.flush_scheduled = true;
    auto timeout = std::chrono::nanoseconds(st.ctx->config.journal.journal_buffer_timeout);
    if (timeout.count() == 0) {
        // Lands behind every append already queued: those join this batch.
        self->send(self, flush_atom::value);
    } else {
        self->delayed_send(self, timeout, flush_atom::value);
    }
}

std::shared_ptr<recovered_state> recover(journal_ptr self) {
    auto& st = self->state;
    const auto& jc = st.ctx->config.journal;
    journal::store_config sc;
    sc.directory = jc.journal_directory;
    sc.file_size = jc.journal_file_size;
    sc.min_files = jc.journal_min_files;
    auto start = std::chrono::steady_clock::now();
    auto out = std::make_shared<recovered_state>();
    try {
        st.store = std::make_unique<journal::store>(sc);
        auto policy = jc.journal_corrupt_record_policy == config::corrupt_record_policy::skip
                          ? journal::corrupt_policy::skip
                          : journal::corrupt_policy::refuse;
        // One pass over the files feeds both the liveness books and the replay
        // (docs/journal.md, "Recovery phases").
        st.live = journal::liveness{jc.id_cache_size};
        journal::open_result opened;
        *out = recover_journal(*st.store, st.live,
                               recovery_options{jc.id_cache_size, jc.persist_id_cache, policy},
                               opened);
        const auto& ph = out->phases;
        st.ctx->log->info("journal_recovery_phases read={:.3f} check={:.3f} replay={:.3f} "
                          "finish={:.3f} bytes_read={}",
                          ph.read, ph.check, ph.replay, ph.finish, out->bytes_read);
        st.next_id = out->max_record_id + 1;
        // Prepared transactions are undecided, not rolled back: their records stay pinned
        // (journal_liveness) and the server's XA table lists them until a client commits or
        // rolls them back (docs/journal.md, "Prepared transactions").
        for (const auto& p : out->prepared) {
            st.ctx->xa->restore(p.xid, p.tx_id, p.addresses);
        }
        if (!out->prepared.empty()) {
            st.ctx->log->info("journal_prepared_restored transactions={}", out->prepared.size());
        }
        // Recovery rolled the others back; say so on disk too, or their records would pin
        // their segments for ever (nothing else will ever end them).
        std::vector<journal::record> ends;
        for (auto tx : st.live.open_transactions()) {
            journal::record r;
            r.type = journal::record_type::rollback;
            r.payload = journal::encode_payload(journal::tx_payload{tx});
            ends.push_back(std::move(r));
        }
        if (!ends.empty() && out->error.empty()) {
            st.add(ends);
            if (auto err = st.write_batch()) {
                out->error = err->what;
            }
        }
        if (opened.fault) {
            // Loud on purpose: a node started with the test seam armed will fail a write.
            const auto& f = *opened.fault;
            st.ctx->log->warn("journal_fault_injection_armed {}={}:{}:{}", journal::fault_env,
                              f.what == journal::injected_fault::target::write ? "write" : "sync",
                              f.nth, journal::errno_name(f.err));
        }
    } catch (const std::exception& e) {
        out->error = e.what();
    }
    out->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!out->error.empty()) {
        // Recovery failed: the activation fails (the node reports it), so this is not the
        // run-time failure path of fail().
        st.failure = journal_failure{{}, "recover", 0, out->error};
    }
    return out;
}

/// Adds records to the batch; a synchronous append is answered (and its hook run) once the
/// batch is confirmed, any other at once.
caf::result<uint64_t>
append(journal_ptr self, std::vector<journal::record>& records, bool sync, confirm_hook_ptr hook) {
    auto& st = self->state;
    if (st.failure || !st.store) {
        if (hook) {
            hook->refuse();
        }
        return append_error(st);
    }
    uint64_t last = 0;
    try {
        last = st.add(records);
    } catch (const std::exception& e) {
        // A record too large or malformed: refused alone, nothing of it was written, so the
        // journal stays healthy. Caught here because an exception would end the actor and
        // leave appends waiting on it unanswered.
        if (hook) {
            hook->refuse();
        }
        return caf::make_error(errc::journal_failed, std::string{"record refused: "} + e.what());
    }
    if (!sync) {
        // Answered now: nothing waits for the disk, so the hook's owner does its work itself.
        schedule_flush(self);
        return last;
    }
    auto p = self->make_response_promise<uint64_t>();
    st.waiting.push_back({p, last, std::move(hook)});
    schedule_flush(self);
    return p;
}

} // namespace

journal_actor::behavior_type journal_writer(journal_ptr self, std::shared_ptr<server_context> ctx) {
    self->state.ctx = std::move(ctx);
    self->state.send_batch = [self](replication::batch b) {
        self->send(self->state.replica, replication::data_atom::value, std::move(b));
    };
    self->set_down_handler([self](caf::down_msg& dm) {
        if (self->state.replica && dm.source == self->state.replica.address()) {
            drop_replica(self, "the backup's replica is gone");
        }
    });
    // Stopped (the server instance goes): every append still waiting gets an error now, so no
    // session or address waits for an answer that can no longer come (a promise dropped
    // unanswered is never answered: the requester would wait for its timeout, and the node's
    // stop with it). Nothing unanswered here was confirmed.
    self->set_exit_handler([self](caf::exit_msg& msg) {
        auto& st = self->state;
        auto refuse = [](journal_state::waiter& w) {
            w.refuse(caf::make_error(errc::journal_failed, std::string{"the server is stopping"}));
        };
        for (auto& w : st.waiting) {
            refuse(w);
        }
        st.waiting.clear();
        for (auto& rw : st.repl_waiting) {
            refuse(rw.w);
        }
        st.repl_waiting.clear();
        if (st.replica) {
            // After every batch sent: the replica's word that this journal ends (end_atom).
            self->send(st.replica, replication::end_atom::value, st.repl.epoch(), st.repl.sent());
        }
        self->quit(msg.reason);
    });
    return {
        [self](append_atom, std::vector<journal::record>& records,
               bool sync) -> caf::result<uint64_t> { return append(self, records, sync, nullptr); },
        [self](append_atom, std::vector<journal::record>& records, bool sync,
               confirm_hook_ptr& hook) -> caf::result<uint64_t> {
            return append(self, records, sync, std::move(hook));
        },
        [self](flush_atom) { flush(self); },
        [self](recover_atom) { return recover(self); },
        [self](stats_atom) { return self->state.stats(); },
        [self](replication::pair_atom, const std::string& name, const std::string&,
               caf::actor& replica) { return attach_replica(self, name, std::move(replica)); },
        [self](replication::ack_atom, uint64_t epoch, uint64_t seq) {
            on_replica_ack(self, epoch, seq);
        },
        [self](caf::tick_atom) { check_replica(self); },
        [self](replication::page_ops_atom, std::vector<replication::file_op>& ops) {
            return replicate_page_ops(self, std::move(ops));
        },
        [self](replication::resume_atom) {
            auto& st = self->state;
            if (st.held_for_vote) {
                st.held_for_vote = false;
                st.ctx->accepting = true;
                st.ctx->log->info("replication_resumed reason=\"quorum kept\" released={}",
                                  st.repl_waiting.size());
                release_backup_waiters(self);
            }
        },
    };
}

} // namespace actormq
