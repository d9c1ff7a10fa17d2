// SPDX-License-Identifier: Apache-2.0
#include "actors/replication/source.hpp"

#include <algorithm>

namespace actormq::replication {

const char* to_string(sync_phase p) {
    switch (p) {
        case sync_phase::none:
            return "none";
        case sync_phase::copying:
            return "copying";
        case sync_phase::finishing:
            return "finishing";
        case sync_phase::in_sync:
            return "in-sync";
    }
    return "unknown";
}

void source::attach(uint64_t epoch, std::vector<extent> snapshot, clock::time_point) {
    detach();
    epoch_ = epoch;
    phase_ = sync_phase::copying;
    for (const auto& e : snapshot) {
        if (e.end > 0) {
            todo_.push_back(e);
            sync_total_ += e.end;
        }
    }
}

void source::detach() {
    phase_ = sync_phase::none;
    next_seq_ = 1;
    acked_ = 0;
    final_seq_ = 0;
    todo_.clear();
    todo_offset_ = 0;
    pending_.clear();
    unacked_.clear();
    unacked_bytes_ = 0;
    unacked_sync_bytes_ = 0;
    sync_sent_ = 0;
    sync_total_ = 0;
    gathered_.clear();
    gathered_bytes_ = 0;
}

void source::note_write(uint64_t file_seq, uint64_t offset, std::string_view bytes) {
    if (!attached() || bytes.empty()) {
        return;
    }
    pending_.push_back(file_op{file_op::write, file_seq, offset, std::string{bytes}, {}});
}

void source::note_remove(uint64_t file_seq) {
    if (!attached()) {
        return;
    }
    pending_.push_back(file_op{file_op::remove, file_seq, 0, {}, {}});
    drop_todo(file_seq, {});
}

void source::note_page_ops(std::vector<file_op> ops) {
    if (!attached()) {
        return;
    }
    for (auto& op : ops) {
        if (op.kind == file_op::page_remove || op.kind == file_op::page_replace) {
            drop_todo(0, op.path);
        }
        pending_.push_back(std::move(op));
    }
}

void source::drop_todo(uint64_t file_seq, const std::string& path) {
    for (auto it = todo_.begin(); it != todo_.end();) {
        if (it->path != path || (path.empty() && it->file_seq != file_seq)) {
            ++it;
            continue;
        }
        sync_total_ -=
            std::min(sync_total_, it == todo_.begin() ? it->end - todo_offset_ : it->end);
        if (it == todo_.begin()) {
            todo_offset_ = 0;
        }
        it = todo_.erase(it);
    }
}

batch source::make_batch(std::vector<file_op> ops, uint64_t sync_bytes, clock::time_point now) {
    batch b;
    b.epoch = epoch_;
    b.seq = next_seq_++;
    b.ops = std::move(ops);
    uint64_t bytes = 0;
    for (const auto& op : b.ops) {
        bytes += op.bytes.size();
    }
    unacked_.push_back(in_flight{b.seq, bytes, sync_bytes, now});
    unacked_bytes_ += bytes;
    unacked_sync_bytes_ += sync_bytes;
    check_copied(b);
    b.sync_sent = sync_sent_;
    b.sync_total = sync_total_;
    return b;
}

void source::check_copied(batch& b) {
    if (phase_ == sync_phase::copying && todo_.empty()) {
        phase_ = sync_phase::finishing;
        final_seq_ = b.seq;
        b.sync_complete = true;
    }
}

std::optional<batch> source::take_batch(clock::time_point now) {
    // With nothing left to copy, an empty batch completes the sync even without traffic.
    bool completes = phase_ == sync_phase::copying && todo_.empty();
    if (!attached() || (pending_.empty() && !completes)) {
        return std::nullopt;
    }
    auto ops = std::move(pending_);
    pending_.clear();
    return make_batch(std::move(ops), 0, now);
}

std::optional<source::chunk> source::next_chunk() const {
    if (phase_ != sync_phase::copying || todo_.empty()
        || unacked_sync_bytes_ + gathered_bytes_ >= settings_.window_bytes
        || gathered_bytes_ >= settings_.chunk_bytes) {
        return std::nullopt;
    }
    const auto& e = todo_.front();
    return chunk{e.file_seq, todo_offset_,
                 std::min(settings_.chunk_bytes - gathered_bytes_, e.end - todo_offset_), e.path};
}

batch source::chunk_batch(const chunk& c, std::string bytes, clock::time_point now) {
    add_chunk(c, std::move(bytes));
    return gathered_batch(now);
}

std::optional<batch> source::take_chunks(clock::time_point now) {
    if (gathered_.empty()) {
        return std::nullopt;
    }
    return gathered_batch(now);
}

batch source::gathered_batch(clock::time_point now) {
    auto ops = std::move(gathered_);
    auto got = gathered_bytes_;
    gathered_.clear();
    gathered_bytes_ = 0;
    return make_batch(std::move(ops), got, now);
}

void source::add_chunk(const chunk& c, std::string bytes) {
    auto& e = todo_.front();
    uint64_t got = bytes.size();
    if (got == 0 || c.offset + got >= e.end) {
        // The segment is done (or ended early: what is missing is no longer there to copy).
        sync_total_ -= std::min(sync_total_, e.end - (c.offset + got));
        todo_.pop_front();
        todo_offset_ = 0;
    } else {
        todo_offset_ = c.offset + got;
    }
    sync_sent_ += got;
    if (got > 0) {
        auto kind = c.path.empty() ? file_op::write : file_op::page_write;
        gathered_.push_back(file_op{kind, c.file_seq, c.offset, std::move(bytes), c.path});
        gathered_bytes_ += got;
    }
}

bool source::on_ack(uint64_t seq, clock::time_point now) {
    if (!attached() || seq <= acked_ || seq >= next_seq_) {
        return false;
    }
    acked_ = seq;
    while (!unacked_.empty() && unacked_.front().seq <= seq) {
        ++acks_measured_;
        ack_us_sum_ += static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(now - unacked_.front().sent)
                .count());
        unacked_bytes_ -= unacked_.front().bytes;
        unacked_sync_bytes_ -= unacked_.front().sync_bytes;
        unacked_.pop_front();
    }
    if (phase_ == sync_phase::finishing && acked_ >= final_seq_) {
        phase_ = sync_phase::in_sync;
        return true;
    }
    return false;
}

std::optional<source::clock::time_point> source::oldest_unacked() const {
    if (unacked_.empty()) {
        return std::nullopt;
    }
    return unacked_.front().sent;
}

} // namespace actormq::replication
