// SPDX-License-Identifier: Apache-2.0
// The journal actor: group commit and recovery (docs/journal.md). It runs detached, so its
// blocking writes and fdatasync never hold a scheduler worker.
#include "actors/journal/journal.hpp"

#include "actors/journal/recovery.hpp"
#include "protocol/errc.hpp"

#include <set>
#include <system_error>

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
        store->sync();
        for (const auto& r : batch_records) {
            live.note(r, where.file_seq);
        }
    } catch (const std::exception& e) {
        return failure_of(e, "append");
    }
    last_batch_records = batch_records.size();
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

journal_stats journal_state::stats() const {
    journal_stats s;
    if (store) {
        s.files = store->segments().size();
        s.bytes = s.files * ctx->config.journal.journal_file_size;
    }
    s.batches = batches;
    s.last_batch_records = last_batch_records;
    s.last_sync_us = static_cast<uint64_t>(last_sync.count());
    s.segments_reclaimed = segments_reclaimed;
    s.sync_buckets = sync_buckets;
    s.sync_seconds_sum = sync_seconds_sum;
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

/// Writes the batch and answers every append that waited for it.
void flush(journal_ptr self) {
    auto& st = self->state;
    st.flush_scheduled = false;
    if (st.batch.empty()) {
        return;
    }
    if (!st.failure) {
        if (auto err = st.write_batch()) {
            fail(self, std::move(*err));
        }
    }
    auto waiting = std::move(st.waiting);
    st.waiting.clear();
    for (auto& w : waiting) {
        if (!st.failure) {
            w.promise.deliver(w.last_id);
        } else {
            w.promise.deliver(append_error(st));
        }
    }
    // Answers first, then housekeeping: reclaiming never delays a confirmation.
    if (!st.failure) {
        if (auto err = st.reclaim()) {
            fail(self, std::move(*err));
        }
    }
    notify_failure(self);
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
        // Recovery rolled these back; say so on disk too, or their records would pin their
        // segments for ever (nothing else will ever end them).
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

} // namespace

journal_actor::behavior_type journal_writer(journal_ptr self, std::shared_ptr<server_context> ctx) {
    self->state.ctx = std::move(ctx);
    return {
        [self](append_atom, std::vector<journal::record>& records,
               bool sync) -> caf::result<uint64_t> {
            auto& st = self->state;
            if (st.failure || !st.store) {
                return append_error(st);
            }
            uint64_t last = 0;
            try {
                last = st.add(records);
            } catch (const std::exception& e) {
                // A record too large or malformed: refused alone, nothing of it was written,
                // so the journal stays healthy. Caught here because an exception would end the
                // actor and leave appends waiting on it unanswered.
                return caf::make_error(errc::journal_failed,
                                       std::string{"record refused: "} + e.what());
            }
            if (!sync) {
                schedule_flush(self);
                return last;
            }
            auto p = self->make_response_promise<uint64_t>();
            st.waiting.push_back({p, last});
            schedule_flush(self);
            return p;
        },
        [self](flush_atom) { flush(self); },
        [self](recover_atom) { return recover(self); },
        [self](stats_atom) { return self->state.stats(); },
    };
}

} // namespace actormq
