// SPDX-License-Identifier: Apache-2.0
#include "actors/replication/replica.hpp"

#include "actors/journal/journal_store.hpp"
#include "actors/paging/page_mirror.hpp"
#include "actors/replication/activation_record.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <set>
#include <stdexcept>

namespace actormq::replication {

namespace {

namespace fs = std::filesystem;

using flush_atom = caf::atom_constant<caf::atom("rflush")>;

bool has_suffix(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size()
           && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct replica_state {
    static inline const char* name = "replica";
    replica_setup setup;
    std::unique_ptr<journal::store> store;
    /// The live's page files (null without a paging directory).
    std::unique_ptr<paging::page_mirror> pages;
    /// The live's journal, learnt from the first batch, and its epoch.
    caf::actor_addr source;
    uint64_t epoch = 0;
    /// Applied (written) and acknowledged (written and synced) batch numbers.
    uint64_t applied = 0;
    uint64_t acked = 0;
    /// The batch that completes the initial sync, once seen; and whether it is acknowledged.
    uint64_t sync_complete_seq = 0;
    bool in_sync = false;
    uint64_t sync_sent = 0;
    uint64_t sync_total = 0;
    bool flush_scheduled = false;
    bool failed = false;
    /// The live's journal ended (reported once: its end message or its down message).
    bool live_ended = false;
    /// Acknowledged batches are written but not yet synced (see flush()).
    bool sync_owed = false;
};

using replica_ptr = caf::stateful_actor<replica_state>*;

/// The newest `oldreplica.N` in the journal directory ("" when none): the journal moved aside
/// just before this replica started, whose page files go with it.
std::string newest_saved(const std::string& directory) {
    const std::string saved_prefix = "oldreplica.";
    std::error_code ec;
    uint64_t best = 0;
    for (const auto& entry : fs::directory_iterator(directory, ec)) {
        auto name = entry.path().filename().string();
        if (entry.is_directory() && name.rfind(saved_prefix, 0) == 0) {
            try {
                best = std::max<uint64_t>(best, std::stoull(name.substr(saved_prefix.size())));
            } catch (const std::exception&) {
                // Not one of ours.
            }
        }
    }
    return best == 0 ? std::string{} : directory + "/" + saved_prefix + std::to_string(best);
}

void report(replica_ptr self, replica_report::kind_t kind, std::string reason = {}) {
    auto& st = self->state;
    replica_report r;
    r.kind = kind;
    r.synced = st.in_sync;
    r.sync_sent = st.sync_sent;
    r.sync_total = st.sync_total;
    r.applied = st.acked;
    r.reason = std::move(reason);
    self->send(st.setup.owner, report_atom::value, std::move(r));
}

/// The mirror cannot be trusted any more: say why and stop; the driver starts over.
void fail(replica_ptr self, const std::string& reason) {
    auto& st = self->state;
    if (st.failed) {
        return;
    }
    st.failed = true;
    st.setup.log->error("replica_failed reason=\"{}\" applied={}", reason, st.applied);
    report(self, replica_report::failed, reason);
    st.store.reset();
    self->quit();
}

/// Whether the initial sync is still being copied: the batch that completes it has not come.
/// Nothing the live confirms waits for this backup then (docs/replication.md, "The initial
/// sync"), and the backup cannot take over, so what it acknowledges need not be on its disk yet.
bool copying(const replica_state& st) {
    return !st.in_sync && st.sync_complete_seq == 0;
}

/// Syncs what was applied, then acknowledges it: the live confirms nothing the backup's disk
/// does not hold. While the initial sync is copied (and `durable` is false) it only starts the
/// write-back and acknowledges, so the live's window moves without an fdatasync per batch;
/// the flush of the batch that completes the sync then makes all of it durable at once,
/// before the acknowledgement that puts the pair in sync.
void flush(replica_ptr self, bool durable = false) {
    auto& st = self->state;
    st.flush_scheduled = false;
    if (st.failed || (st.applied == st.acked && !(durable && st.sync_owed))) {
        return;
    }
    bool defer = copying(st) && !durable;
    auto started = std::chrono::steady_clock::now();
    try {
        if (defer) {
            st.store->start_write_back();
        } else {
            st.store->sync();
        }
    } catch (const std::exception& e) {
        fail(self, e.what());
        return;
    }
    if (st.pages) {
        if (auto e = defer ? st.pages->write_back() : st.pages->sync(); !e.empty()) {
            fail(self, e);
            return;
        }
    }
    st.sync_owed = defer;
    st.acked = st.applied;
    self->send(caf::actor_cast<caf::actor>(st.source), ack_atom::value, st.epoch, st.acked);
    if (!st.in_sync && st.sync_complete_seq != 0 && st.acked >= st.sync_complete_seq) {
        st.in_sync = true;
        // durable_ms: the sync that made the copied bytes durable at once (see above).
        st.setup.log->info("replica_in_sync epoch={} batches={} bytes={} durable_ms={}", st.epoch,
                           st.acked, st.sync_sent,
                           std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - started)
                               .count());
        report(self, replica_report::in_sync);
    } else if (!st.in_sync) {
        report(self, replica_report::progress);
    }
}

void apply(replica_ptr self, batch& b) {
    auto& st = self->state;
    if (st.failed) {
        return;
    }
    auto sender = self->current_sender();
    if (!sender) {
        return;
    }
    if (!st.source) {
        st.source = sender->address();
        st.epoch = b.epoch;
        self->monitor(sender);
        st.setup.log->info("replica_attached epoch={} live={}", st.epoch,
                           caf::to_string(sender->node()));
    } else if (sender->address() != st.source || b.epoch != st.epoch) {
        // Only the live we paired with writes here.
        st.setup.log->warn("replica_batch_refused epoch={} expected_epoch={}", b.epoch, st.epoch);
        return;
    }
    if (b.seq != st.applied + 1) {
        fail(self, "batch " + std::to_string(b.seq) + " after " + std::to_string(st.applied)
                       + " (a gap or a repeat)");
        return;
    }
    try {
        for (auto& op : b.ops) {
            if (op.kind == file_op::write) {
                st.store->write_at(op.file_seq, op.offset, op.bytes);
            } else if (op.kind == file_op::remove) {
                st.store->remove(op.file_seq);
            } else if (op.kind >= file_op::page_write && op.kind <= file_op::page_remove) {
                if (!st.pages) {
                    fail(self, "a page operation, and no paging directory to mirror it");
                    return;
                }
                if (auto e = st.pages->apply(op); !e.empty()) {
                    fail(self, e);
                    return;
                }
            } else {
                fail(self, "unknown operation " + std::to_string(op.kind));
                return;
            }
        }
    } catch (const std::exception& e) {
        fail(self, e.what());
        return;
    }
    st.applied = b.seq;
    st.sync_sent = b.sync_sent;
    st.sync_total = b.sync_total;
    if (b.sync_complete) {
        st.sync_complete_seq = b.seq;
    }
    if (!st.flush_scheduled) {
        // Lands behind every batch already queued: one fdatasync and one ack for all of them.
        st.flush_scheduled = true;
        self->send(self, flush_atom::value);
    }
}

/// The live's journal ended (its end message, or its down message: whichever comes first;
/// the other is then ignored).
void live_gone(replica_ptr self, const char* how) {
    auto& s = self->state;
    if (s.failed || s.live_ended) {
        return;
    }
    s.live_ended = true;
    // What arrived before the live went is applied; make it durable before anyone asks.
    flush(self, true);
    s.setup.log->info("replica_lost_live epoch={} applied={} in_sync={} by={}", s.epoch, s.acked,
                      s.in_sync, how);
    report(self, replica_report::lost, "the live's journal is gone");
}

caf::behavior replica(replica_ptr self, replica_setup setup) {
    auto& st = self->state;
    st.setup = std::move(setup);
    journal::store_config sc;
    sc.directory = st.setup.directory;
    sc.file_size = st.setup.file_size;
    sc.prefix = st.setup.prefix;
    sc.extension = st.setup.extension;
    try {
        st.store = std::make_unique<journal::store>(sc);
        st.store->open_mirror();
        if (!st.setup.paging_directory.empty()) {
            st.pages = std::make_unique<paging::page_mirror>(st.setup.paging_directory);
            if (auto e = st.pages->reset(newest_saved(st.setup.directory)); !e.empty()) {
                throw std::runtime_error{"paging directory: " + e};
            }
        }
    } catch (const std::exception& e) {
        st.setup.log->error("replica_failed reason=\"{}\"", e.what());
        st.failed = true;
        report(self, replica_report::failed, e.what());
        self->quit();
        return {};
    }
    self->set_down_handler([self](caf::down_msg& dm) {
        if (dm.source == self->state.source) {
            live_gone(self, "down");
        }
    });
    return {
        [self](data_atom, batch& b) { apply(self, b); },
        [self](end_atom, uint64_t epoch, uint64_t last) {
            auto& s = self->state;
            auto sender = self->current_sender();
            if (!sender || sender->address() != s.source || epoch != s.epoch) {
                return; // not this pairing's journal
            }
            if (s.applied < last) {
                // Batches the journal sent never arrived (lost with a connection): what this
                // replica holds is not the whole journal.
                fail(self, "the live's journal ended after batch " + std::to_string(last));
                return;
            }
            live_gone(self, "end");
        },
        [self](flush_atom) { flush(self); },
        [](ping_atom) { return true; },
        [self](close_atom) -> caf::result<bool> {
            auto& s = self->state;
            flush(self, true);
            bool ok = !s.failed;
            s.store.reset();
            self->quit();
            return ok;
        },
    };
}

} // namespace

caf::actor spawn_replica(caf::actor_system& sys, replica_setup setup) {
    return sys.spawn<caf::detached>(replica, std::move(setup));
}

std::string move_aside(const std::string& directory,
                       const std::string& prefix,
                       const std::string& extension,
                       uint32_t max_saved) {
    std::error_code ec;
    fs::path dir{directory};
    fs::create_directories(dir, ec);
    if (ec) {
        return "create " + directory + ": " + ec.message();
    }
    const std::string saved_prefix = "oldreplica.";
    std::vector<fs::path> segments;
    std::set<uint64_t> saved;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        auto name = entry.path().filename().string();
        if (entry.is_directory() && name.rfind(saved_prefix, 0) == 0) {
            try {
                saved.insert(std::stoull(name.substr(saved_prefix.size())));
            } catch (const std::exception&) {
                // Not one of ours: left alone.
            }
        } else if ((name.rfind(prefix + "-", 0) == 0
                    && (has_suffix(name, "." + extension) || has_suffix(name, ".tmp")))
                   || name == activation_file_name
                   || name == std::string{activation_file_name} + ".tmp") {
            // The activation record goes with the journal it describes.
            segments.push_back(entry.path());
        }
    }
    if (ec) {
        return "list " + directory + ": " + ec.message();
    }
    if (segments.empty()) {
        return {};
    }
    auto remove_oldest = [&](size_t keep) -> std::string {
        while (saved.size() > keep) {
            auto victim = dir / (saved_prefix + std::to_string(*saved.begin()));
            fs::remove_all(victim, ec);
            if (ec) {
                return "remove " + victim.string() + ": " + ec.message();
            }
            saved.erase(saved.begin());
        }
        return {};
    };
    if (max_saved == 0) {
        for (const auto& p : segments) {
            fs::remove(p, ec);
            if (ec) {
                return "remove " + p.string() + ": " + ec.message();
            }
        }
        return remove_oldest(0);
    }
    if (auto err = remove_oldest(max_saved - 1); !err.empty()) {
        return err;
    }
    auto n = saved.empty() ? 1 : *saved.rbegin() + 1;
    auto target = dir / (saved_prefix + std::to_string(n));
    fs::create_directory(target, ec);
    if (ec) {
        return "create " + target.string() + ": " + ec.message();
    }
    for (const auto& p : segments) {
        fs::rename(p, target / p.filename(), ec);
        if (ec) {
            return "move " + p.string() + ": " + ec.message();
        }
    }
    return {};
}

} // namespace actormq::replication
