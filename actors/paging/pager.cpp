// SPDX-License-Identifier: Apache-2.0
// One address's page store and the detached actor that runs it (docs/journal.md, "Paging").
#include "actors/paging/pager.hpp"

#include "actors/journal/recovery.hpp"
#include "actors/storage/durable_file.hpp"
#include "protocol/errc.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace actormq::paging {

namespace fs = std::filesystem;

using storage::failure;
using storage::read_whole;
using storage::replace_file;
using storage::write_all;

namespace {

/// Bytes the read buffer asks for at least, so page-in reads the files in large pieces.
constexpr size_t read_chunk_bytes = 1024 * 1024;

/// The cursor file is rewritten from scratch once it grows past this.
constexpr uint64_t cursor_file_max_bytes = 64 * 1024;

} // namespace

page_store::page_store(store_options opts) : opts_(std::move(opts)) {
    replicate_ = static_cast<bool>(opts_.replicate_to);
    relative_ = fs::path{opts_.directory}.filename().string();
}

void page_store::note(uint8_t kind,
                      const std::string& name,
                      uint64_t offset,
                      std::string_view bytes) {
    if (replicate_) {
        ops_.push_back(
            replication::file_op{kind, 0, offset, std::string{bytes}, relative_ + "/" + name});
    }
}

page_store::~page_store() {
    for (auto& f : files_) {
        if (f.fd >= 0) {
            ::close(f.fd);
        }
    }
    if (cursor_fd_ >= 0) {
        ::close(cursor_fd_);
    }
}

std::string page_store::path_of(uint64_t n) const {
    return opts_.directory + "/" + page_file_name(n);
}

std::string page_store::new_file(uint64_t n) {
    auto path = path_of(n);
    if (auto e = replace_file(opts_.directory, path, file_header()); !e.empty()) {
        return e;
    }
    note(replication::file_op::page_replace, page_file_name(n), 0, file_header());
    file_info f;
    f.number = n;
    f.size = file_header_bytes;
    files_.push_back(f);
    return {};
}

int page_store::read_fd(file_info& f) {
    if (f.fd >= 0) {
        return f.fd;
    }
    f.fd = ::open(path_of(f.number).c_str(), O_RDWR | O_CLOEXEC);
    if (f.fd < 0) {
        return -1;
    }
    // Keep at most page-max-cache-size descriptors open: close the oldest file's, never the
    // newest one's (it is written) nor this one's.
    size_t open_fds = 0;
    for (const auto& g : files_) {
        open_fds += g.fd >= 0 ? 1 : 0;
    }
    for (auto& g : files_) {
        if (open_fds <= std::max<uint32_t>(2, opts_.max_open_files)) {
            break;
        }
        if (g.fd >= 0 && &g != &f && &g != &files_.back()) {
            ::close(g.fd);
            g.fd = -1;
            --open_fds;
        }
    }
    return f.fd;
}

bool page_store::fill(file_info& f, uint64_t offset, size_t need) {
    if (offset + need > f.size) {
        return false;
    }
    if (buffer_file_ == f.number && offset >= buffer_offset_
        && offset + need <= buffer_offset_ + buffer_.size()) {
        return true;
    }
    int fd = read_fd(f);
    if (fd < 0) {
        return false;
    }
    size_t want =
        static_cast<size_t>(std::min<uint64_t>(std::max(need, read_chunk_bytes), f.size - offset));
    buffer_.resize(want);
    size_t done = 0;
    while (done < want) {
        auto n = ::pread(fd, buffer_.data() + done, want - done, static_cast<off_t>(offset + done));
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            break;
        }
        done += static_cast<size_t>(n);
    }
    buffer_.resize(done);
    buffer_file_ = f.number;
    buffer_offset_ = offset;
    return done >= need;
}

bool page_store::before_boundary(const page_cursor& c) const {
    return c.file < boundary_.file || (c.file == boundary_.file && c.offset < boundary_.offset);
}

bool page_store::skippable(const page_message& m) const {
    if (!m.persistent || seed_.seed_ids.count(m.id) != 0) {
        return true;
    }
    return std::none_of(m.queues.begin(), m.queues.end(),
                        [&](const std::string& q) { return seed_.durable_queues.count(q) != 0; });
}

std::string page_store::write_cursor(const page_cursor& c) {
    std::string rec;
    encode(c, rec);
    auto path = opts_.directory + "/" + cursor_file_name;
    if (cursor_fd_ < 0 || cursor_bytes_ + rec.size() > cursor_file_max_bytes) {
        if (cursor_fd_ >= 0) {
            ::close(cursor_fd_);
            cursor_fd_ = -1;
        }
        auto bytes = file_header() + rec;
        if (auto e = replace_file(opts_.directory, path, bytes); !e.empty()) {
            return e;
        }
        note(replication::file_op::page_replace, cursor_file_name, 0, bytes);
        cursor_fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        if (cursor_fd_ < 0) {
            return failure(path, "open", errno);
        }
        cursor_bytes_ = bytes.size();
        cursor_ = c;
        return {};
    }
    if (!write_all(cursor_fd_, rec.data(), rec.size(), cursor_bytes_)) {
        return failure(path, "pwrite", errno);
    }
    if (::fdatasync(cursor_fd_) != 0) {
        return failure(path, "fdatasync", errno);
    }
    note(replication::file_op::page_write, cursor_file_name, cursor_bytes_, rec);
    cursor_bytes_ += rec.size();
    cursor_ = c;
    return {};
}

std::string page_store::open(open_request req) {
    seed_ = std::move(req);
    std::error_code ec;
    fs::create_directories(opts_.directory, ec);
    if (ec) {
        return "file=" + opts_.directory + " op=mkdir error=" + ec.message();
    }
    std::vector<uint64_t> numbers;
    for (const auto& entry : fs::directory_iterator(opts_.directory, ec)) {
        auto name = entry.path().filename().string();
        uint64_t n = 0;
        if (!opts_.keep || (name.size() > 4 && name.substr(name.size() - 4) == ".tmp")) {
            // Left over from a start without persistence, or a half-made file: never used.
            fs::remove(entry.path(), ec);
            if (parse_page_file_name(name, n) || name == cursor_file_name) {
                note(replication::file_op::page_remove, name, 0);
            }
        } else if (parse_page_file_name(name, n)) {
            numbers.push_back(n);
        }
    }
    std::sort(numbers.begin(), numbers.end());
    // The last valid cursor record wins; a torn tail of the cursor file is a cursor that was
    // never confirmed, so the one before it stands.
    bool have_cursor = false;
    std::string bytes;
    if (read_whole(opts_.directory + "/" + cursor_file_name, bytes)
        && check_file_header(bytes.data(), bytes.size())) {
        size_t at = file_header_bytes;
        page_record r;
        size_t used = 0;
        while (decode(bytes.data() + at, bytes.size() - at, r, used) == decode_status::ok) {
            if (r.type == record_type::cursor) {
                cursor_ = r.cursor;
                have_cursor = true;
            }
            at += used;
        }
    }
    for (auto n : numbers) {
        if (have_cursor && n < cursor_.file && n != numbers.back()) {
            // Wholly before the cursor: its deletion was interrupted.
            fs::remove(path_of(n), ec);
            note(replication::file_op::page_remove, page_file_name(n), 0);
            continue;
        }
        file_info f;
        f.number = n;
        f.size = fs::file_size(path_of(n), ec);
        if (ec) {
            return "file=" + path_of(n) + " op=stat error=" + ec.message();
        }
        files_.push_back(f);
    }
    if (files_.empty()) {
        if (auto e = new_file(have_cursor ? std::max<uint64_t>(cursor_.file, 1) : 1); !e.empty()) {
            return e;
        }
    }
    if (!have_cursor || cursor_.file < files_.front().number) {
        cursor_ = page_cursor{files_.front().number, file_header_bytes};
    }
    // Every file but the newest was synced whole before the next one began. The newest one
    // may end in a torn write, which nothing confirmed: find its written end and cut there.
    auto& last = files_.back();
    std::string content;
    if (!read_whole(path_of(last.number), content)
        || !check_file_header(content.data(), content.size())) {
        return "file=" + path_of(last.number) + " offset=0 reason=bad page file header";
    }
    size_t at = file_header_bytes;
    page_record r;
    size_t used = 0;
    decode_status status;
    while ((status = decode(content.data() + at, content.size() - at, r, used))
           == decode_status::ok) {
        at += used;
    }
    if (status != decode_status::end) {
        // A record that does not decode with a valid one after it is damage, not a torn write.
        for (size_t probe = at + 1; probe + record_header_bytes <= content.size(); ++probe) {
            if (decode(content.data() + probe, content.size() - probe, r, used)
                == decode_status::ok) {
                return "file=" + path_of(last.number) + " offset=" + std::to_string(at)
                       + " reason=corrupt page record: "
                       + std::string{status == decode_status::truncated
                                         ? std::string_view{"cut short"}
                                         : last_corrupt_reason()};
            }
        }
        int fd = read_fd(last);
        if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(at)) != 0 || ::fdatasync(fd) != 0) {
            return failure(path_of(last.number), "ftruncate", errno);
        }
        note(replication::file_op::page_truncate, page_file_name(last.number), at);
    }
    last.size = at;
    boundary_ = page_cursor{last.number, last.size};
    if (files_.size() > 1) {
        std::string previous;
        if (read_whole(path_of(files_[files_.size() - 2].number), previous)) {
            collect_dup_ids(previous.data(), previous.size());
        }
    }
    collect_dup_ids(content.data(), at);
    read_pos_ = cursor_;
    if (auto e = write_cursor(cursor_); !e.empty()) {
        return e;
    }
    // Skip what the journal already gave back at the head, and make that durable before the
    // address hands the journal's copies to consumers (see the header).
    std::string error;
    page_cursor before = read_pos_;
    auto batch = read(1, error);
    if (!error.empty()) {
        return error;
    }
    if (!batch.msgs.empty()) {
        read_pos_ = first_read_; // The first record worth delivering: leave it for page-in.
    }
    if (read_pos_.file != before.file || read_pos_.offset != before.offset) {
        return moved(read_pos_);
    }
    return {};
}

void page_store::collect_dup_ids(const char* data, size_t size) {
    size_t at = file_header_bytes;
    page_record r;
    size_t used = 0;
    while (at < size && decode(data + at, size - at, r, used) == decode_status::ok) {
        at += used;
        if (r.type != record_type::message || !r.message.persistent) {
            continue;
        }
        for (auto& [k, v] : r.message.headers) {
            if (k == duplicate_id_header) {
                dup_ids_.push_back(std::move(v));
            }
        }
    }
}

std::string page_store::sync() {
    for (auto n : dirty_) {
        for (auto& f : files_) {
            if (f.number == n && ::fdatasync(read_fd(f)) != 0) {
                return failure(path_of(n), "fdatasync", errno);
            }
        }
    }
    dirty_.clear();
    return {};
}

std::string page_store::write(const std::vector<message_ptr>& msgs,
                              const std::vector<std::string>& queues,
                              bool sync_now) {
    auto& touched = dirty_;
    std::string out;
    page_message pm;
    pm.queues = queues;
    auto flush = [&]() -> std::string {
        if (out.empty()) {
            return {};
        }
        auto& f = files_.back();
        int fd = read_fd(f);
        if (fd < 0) {
            return failure(path_of(f.number), "open", errno);
        }
        if (!write_all(fd, out.data(), out.size(), f.size)) {
            return failure(path_of(f.number), "pwrite", errno);
        }
        note(replication::file_op::page_write, page_file_name(f.number), f.size, out);
        f.size += out.size();
        if (touched.empty() || touched.back() != f.number) {
            touched.push_back(f.number);
        }
        out.clear();
        return {};
    };
    for (const auto& m : msgs) {
        pm.id = m->id;
        pm.persistent = m->persistent;
        pm.address = m->address;
        pm.destination = m->destination;
        pm.headers = m->headers;
        pm.body = m->body;
        std::string rec;
        encode(pm, rec);
        auto& f = files_.back();
        if (f.size + out.size() > file_header_bytes
            && f.size + out.size() + rec.size() > opts_.page_size_bytes) {
            if (auto e = flush(); !e.empty()) {
                return e;
            }
            // The file it leaves is synced before the next begins, so only the newest file
            // can end in a torn write.
            int fd = read_fd(files_.back());
            if (::fdatasync(fd) != 0) {
                return failure(path_of(files_.back().number), "fdatasync", errno);
            }
            touched.clear();
            if (auto e = new_file(files_.back().number + 1); !e.empty()) {
                return e;
            }
        }
        out += rec;
    }
    if (auto e = flush(); !e.empty()) {
        return e;
    }
    return sync_now ? sync() : std::string{};
}

page_batch page_store::read(int64_t budget, std::string& error) {
    page_batch out;
    int64_t bytes = 0;
    page_record r;
    if (!before_boundary(read_pos_)) {
        // Everything from before this start has been read: the filters are done.
        seed_ = open_request{};
    }
    while (bytes < budget) {
        auto it = std::find_if(files_.begin(), files_.end(),
                               [&](const file_info& f) { return f.number >= read_pos_.file; });
        if (it == files_.end()) {
            break;
        }
        if (it->number != read_pos_.file) {
            read_pos_ = page_cursor{it->number, file_header_bytes};
        }
        if (read_pos_.offset >= it->size) {
            if (std::next(it) == files_.end()) {
                break; // The written end.
            }
            read_pos_ = page_cursor{std::next(it)->number, file_header_bytes};
            continue;
        }
        auto here = read_pos_;
        if (!fill(*it, here.offset, 4)) {
            error = "file=" + path_of(it->number) + " offset=" + std::to_string(here.offset)
                    + " reason=record cut short";
            break;
        }
        const char* p = buffer_.data() + (here.offset - buffer_offset_);
        uint32_t length = static_cast<uint32_t>(static_cast<unsigned char>(p[0]))
                          | static_cast<uint32_t>(static_cast<unsigned char>(p[1])) << 8
                          | static_cast<uint32_t>(static_cast<unsigned char>(p[2])) << 16
                          | static_cast<uint32_t>(static_cast<unsigned char>(p[3])) << 24;
        size_t used = 0;
        if (length < record_header_bytes || length > record_max_bytes
            || !fill(*it, here.offset, length)
            || decode(buffer_.data() + (here.offset - buffer_offset_), length, r, used)
                   != decode_status::ok
            || r.type != record_type::message) {
            error = "file=" + path_of(it->number) + " offset=" + std::to_string(here.offset)
                    + " reason=corrupt page record";
            break;
        }
        read_pos_.offset += used;
        if (before_boundary(here) && skippable(r.message)) {
            continue;
        }
        if (out.msgs.empty()) {
            first_read_ = here;
        }
        auto m = std::make_shared<broker_message>();
        m->id = r.message.id;
        m->persistent = r.message.persistent;
        m->address = std::move(r.message.address);
        m->destination = std::move(r.message.destination);
        m->headers = std::move(r.message.headers);
        m->body = std::move(r.message.body);
        bytes +=
            m->memory_bytes() * std::max<int64_t>(1, static_cast<int64_t>(r.message.queues.size()));
        out.msgs.push_back(std::move(m));
        out.queues.push_back(std::move(r.message.queues));
    }
    out.next = read_pos_;
    out.at_end = !has_unread();
    return out;
}

bool page_store::has_unread() const {
    if (files_.empty()) {
        return false;
    }
    const auto& last = files_.back();
    return read_pos_.file < last.number || read_pos_.offset < last.size;
}

std::string page_store::moved(const page_cursor& c) {
    if (auto e = write_cursor(c); !e.empty()) {
        return e;
    }
    // Files wholly before the cursor hold nothing that is not in memory and journaled.
    while (files_.size() > 1 && files_.front().number < c.file) {
        auto& f = files_.front();
        if (f.fd >= 0) {
            ::close(f.fd);
        }
        if (::unlink(path_of(f.number).c_str()) != 0 && errno != ENOENT) {
            return failure(path_of(f.number), "unlink", errno);
        }
        note(replication::file_op::page_remove, page_file_name(f.number), 0);
        files_.erase(files_.begin());
    }
    return {};
}

namespace {

using pager_ptr = pager_actor::stateful_pointer<pager_state>;

/// Latches the first failure (every later request is refused with it) and answers every
/// waiting write with it.
caf::error refuse(pager_ptr self, const std::string& e) {
    auto& st = self->state;
    if (st.failed.empty()) {
        st.failed = e;
        st.log->error("page_failed {} action=refuse", e);
    }
    auto err = caf::make_error(errc::journal_failed, st.failed);
    auto waiting = std::move(st.writes);
    st.writes.clear();
    for (auto& w : waiting) {
        w.promise.deliver(err);
    }
    return err;
}

/// Answers the writes at the head that are synced and, when replicating, held by the backup.
void answer_writes(pager_ptr self) {
    auto& st = self->state;
    while (!st.writes.empty() && st.writes.front().synced && st.writes.front().replicated) {
        st.writes.front().promise.deliver(true);
        st.writes.pop_front();
    }
}

/// Syncs the writes not synced yet and answers those the backup holds too.
void sync_writes(pager_ptr self) {
    auto& st = self->state;
    if (!st.unsynced || !st.failed.empty()) {
        return;
    }
    st.unsynced = false;
    if (auto e = st.store->sync(); !e.empty()) {
        refuse(self, e);
        return;
    }
    for (auto& w : st.writes) {
        w.synced = true;
    }
    answer_writes(self);
}

/// Sends the store's recorded operations to the journal (docs/replication.md, "Paging");
/// `done` runs with the journal's answer: no error, or the latched failure (at once when
/// nothing is recorded or nothing is replicated). The operations leave before this pager's own
/// fdatasync, so both disks sync at the same time, as the journal's batches do.
template <class Done>
void replicate(pager_ptr self, Done done) {
    auto& st = self->state;
    auto ops = st.store->take_ops();
    if (!st.journal || ops.empty()) {
        done(caf::error{});
        return;
    }
    // No timeout: the journal answers every request (with an error once it failed or when
    // the server stops), and a confirmation held for a vote must wait as long as the vote.
    self->request(st.journal, caf::infinite, replication::page_ops_atom::value, std::move(ops))
        .then([done](uint64_t) mutable { done(caf::error{}); },
              [self, done](caf::error& e) mutable { done(refuse(self, caf::to_string(e))); });
}

} // namespace

pager_actor::behavior_type pager(pager_actor::stateful_pointer<pager_state> self,
                                 store_options opts,
                                 std::shared_ptr<spdlog::logger> log) {
    self->state.journal = opts.replicate_to;
    self->state.store = std::make_unique<page_store>(std::move(opts));
    self->state.log = std::move(log);
    return {
        [self](open_atom, std::shared_ptr<open_request>& req) -> caf::result<open_result> {
            auto& st = self->state;
            if (!st.failed.empty()) {
                return refuse(self, st.failed);
            }
            if (auto e = st.store->open(std::move(*req)); !e.empty()) {
                return refuse(self, e);
            }
            open_result r{st.store->has_unread(), st.store->take_dup_ids()};
            auto p = self->make_response_promise<open_result>();
            replicate(self, [p, r](const caf::error& e) mutable {
                if (e) {
                    p.deliver(e);
                } else {
                    p.deliver(std::move(r));
                }
            });
            return p;
        },
        [self](write_atom, const std::vector<message_ptr>& msgs,
               const std::vector<std::string>& queues) -> caf::result<bool> {
            auto& st = self->state;
            if (!st.failed.empty()) {
                return refuse(self, st.failed);
            }
            if (auto e = st.store->write(msgs, queues, false); !e.empty()) {
                return refuse(self, e);
            }
            // Group commit, as the journal does: the flush lands behind every write already in
            // the mailbox, so they all share its one fdatasync.
            if (!st.unsynced) {
                st.unsynced = true;
                self->send(self, flush_atom::value);
            }
            auto n = st.next_write++;
            st.writes.push_back({self->make_response_promise<bool>(), n, false, false});
            auto p = st.writes.back().promise;
            replicate(self, [self, n](const caf::error& e) {
                if (e) {
                    return; // refuse() answered every waiting write.
                }
                for (auto& w : self->state.writes) {
                    if (w.number == n) {
                        w.replicated = true;
                    }
                }
                answer_writes(self);
            });
            return p;
        },
        [self](flush_atom) { sync_writes(self); },
        [self](read_atom, int64_t budget) -> caf::result<page_batch> {
            // Nothing is read back, and no cursor passes it, before it is on disk: a cursor
            // beyond a torn tail would hide the records written after the cut.
            sync_writes(self);
            auto& st = self->state;
            if (!st.failed.empty()) {
                return refuse(self, st.failed);
            }
            std::string error;
            auto batch = st.store->read(budget, error);
            if (!error.empty()) {
                return refuse(self, error);
            }
            return batch;
        },
        [self](moved_atom, const page_cursor& c) -> caf::result<bool> {
            sync_writes(self);
            auto& st = self->state;
            if (!st.failed.empty()) {
                return refuse(self, st.failed);
            }
            if (auto e = st.store->moved(c); !e.empty()) {
                return refuse(self, e);
            }
            // The backup holds the cursor before the address hands the messages on: an
            // acknowledgement of one of them reaches the backup only after it.
            auto p = self->make_response_promise<bool>();
            replicate(self, [p](const caf::error& e) mutable {
                if (e) {
                    p.deliver(e);
                } else {
                    p.deliver(true);
                }
            });
            return p;
        },
    };
}

namespace {

/// The largest message id in the newest two page files of one address directory. Ids are
/// given out in SEND order and pages are written in routing order, which differs only by what
/// is on its way at once, far less than a page file: an older file holds no larger id.
uint64_t newest_ids(const fs::path& dir, std::string& error) {
    std::vector<uint64_t> numbers;
    std::error_code ec;
    for (fs::directory_iterator it{dir, ec}; !ec && it != fs::directory_iterator{};
         it.increment(ec)) {
        uint64_t n = 0;
        if (parse_page_file_name(it->path().filename().string(), n)) {
            numbers.push_back(n);
        }
    }
    if (ec) {
        error = "file=" + dir.string() + " op=readdir reason=" + ec.message();
        return 0;
    }
    std::sort(numbers.begin(), numbers.end());
    uint64_t out = 0;
    for (size_t i = numbers.size() > 2 ? numbers.size() - 2 : 0; i < numbers.size(); ++i) {
        auto path = (dir / page_file_name(numbers[i])).string();
        std::string content;
        if (!read_whole(path, content)) {
            if (errno != ENOENT) {
                error = failure(path, "read", errno);
                return 0;
            }
            continue;
        }
        size_t at = file_header_bytes;
        page_record r;
        size_t used = 0;
        // Up to the first record that does not decode: a torn tail is the pager's to cut.
        while (at < content.size()
               && decode(content.data() + at, content.size() - at, r, used) == decode_status::ok) {
            at += used;
            if (r.type == record_type::message) {
                out = std::max(out, r.message.id);
            }
        }
    }
    return out;
}

} // namespace

directory_listing list_paging_directory(const std::string& paging_directory, std::string& error) {
    directory_listing out;
    std::error_code ec;
    fs::directory_iterator it{paging_directory, ec};
    if (ec) {
        if (ec != std::errc::no_such_file_or_directory) {
            error = "file=" + paging_directory + " op=opendir reason=" + ec.message();
        }
        return out;
    }
    for (; it != fs::directory_iterator{}; it.increment(ec)) {
        if (it->is_directory(ec)) {
            out.names.push_back(it->path().filename().string());
            out.max_message_id = std::max(out.max_message_id, newest_ids(it->path(), error));
            if (!error.empty()) {
                return out;
            }
        }
    }
    if (ec) {
        error = "file=" + paging_directory + " op=readdir reason=" + ec.message();
    }
    return out;
}

lister_actor::behavior_type lister(lister_actor::pointer self) {
    return {
        [self](list_atom, const std::string& dir) -> caf::result<directory_listing> {
            self->quit();
            std::string error;
            auto listing = list_paging_directory(dir, error);
            if (!error.empty()) {
                return caf::make_error(errc::journal_failed, error);
            }
            return listing;
        },
    };
}

} // namespace actormq::paging
