// SPDX-License-Identifier: Apache-2.0
// Paging's part of replication: the live's snapshot and chunk reads, the backup's mirror
// (docs/replication.md, "Paging").
#include "actors/paging/page_mirror.hpp"

#include "actors/storage/durable_file.hpp"
#include "protocol/page_format.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace actormq::paging {

namespace fs = std::filesystem;

using replication::file_op;
using storage::failure;

namespace {

/// Descriptors the mirror keeps open; past this, those synced are closed.
constexpr size_t open_files_max = 32;

bool plain_name(const std::string& s) {
    return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos
           && s.find('\0') == std::string::npos;
}

bool page_or_cursor(const std::string& name) {
    uint64_t n = 0;
    return name == cursor_file_name || parse_page_file_name(name, n);
}

} // namespace

std::vector<replication::extent> page_snapshot(const std::string& paging_directory) {
    std::vector<replication::extent> out;
    std::error_code ec;
    if (!fs::is_directory(paging_directory, ec)) {
        return out;
    }
    for (const auto& dir : fs::directory_iterator(paging_directory, ec)) {
        if (!dir.is_directory(ec)) {
            continue;
        }
        std::vector<std::string> names;
        for (const auto& f : fs::directory_iterator(dir.path(), ec)) {
            auto name = f.path().filename().string();
            if (page_or_cursor(name)) {
                names.push_back(name);
            }
        }
        // Page files in their order, the cursor first: the backup then has it before the
        // pages it points into, though only the sync's end makes the copy usable anyway.
        std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
            bool ca = a == cursor_file_name;
            bool cb = b == cursor_file_name;
            return ca != cb ? ca : a < b;
        });
        auto rel = dir.path().filename().string();
        for (const auto& name : names) {
            auto size = fs::file_size(dir.path() / name, ec);
            if (ec) {
                continue; // Deleted meanwhile: its removal follows in the stream.
            }
            out.push_back(replication::extent{0, size, rel + "/" + name});
        }
    }
    return out;
}

std::string read_page_chunk(const std::string& paging_directory,
                            const std::string& path,
                            uint64_t offset,
                            uint64_t length) {
    std::string out;
    int fd = ::open((paging_directory + "/" + path).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return out;
    }
    out.resize(static_cast<size_t>(length));
    size_t done = 0;
    while (done < out.size()) {
        auto n =
            ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        done += static_cast<size_t>(n);
    }
    ::close(fd);
    out.resize(done);
    return out;
}

bool valid_page_path(const std::string& path) {
    auto slash = path.find('/');
    if (slash == std::string::npos) {
        return false;
    }
    return plain_name(path.substr(0, slash)) && plain_name(path.substr(slash + 1));
}

page_mirror::page_mirror(std::string paging_directory) : root_(std::move(paging_directory)) {}

page_mirror::~page_mirror() {
    for (auto& [path, fd] : fds_) {
        ::close(fd);
    }
}

std::string page_mirror::reset(const std::string& saved_to) {
    std::error_code ec;
    fs::create_directories(root_, ec);
    if (ec) {
        return "create " + root_ + ": " + ec.message();
    }
    std::vector<fs::path> entries;
    for (const auto& e : fs::directory_iterator(root_, ec)) {
        entries.push_back(e.path());
    }
    if (ec) {
        return "list " + root_ + ": " + ec.message();
    }
    if (entries.empty()) {
        return {};
    }
    fs::path target;
    if (!saved_to.empty() && fs::is_directory(saved_to, ec)
        && !fs::exists(fs::path{saved_to} / "paging", ec)) {
        target = fs::path{saved_to} / "paging";
        fs::create_directory(target, ec);
        if (ec) {
            target.clear();
        }
    }
    for (const auto& p : entries) {
        if (!target.empty()) {
            fs::rename(p, target / p.filename(), ec);
            if (!ec) {
                continue;
            }
            // Another file system: the old pages cannot follow their journal, so they go.
        }
        fs::remove_all(p, ec);
        if (ec) {
            return "remove " + p.string() + ": " + ec.message();
        }
    }
    return storage::sync_directory(root_);
}

int page_mirror::fd_of(const std::string& path) {
    if (auto it = fds_.find(path); it != fds_.end()) {
        return it->second;
    }
    if (fds_.size() >= open_files_max) {
        for (auto it = fds_.begin(); it != fds_.end();) {
            if (dirty_files_.count(it->first) == 0) {
                ::close(it->second);
                it = fds_.erase(it);
            } else {
                ++it;
            }
        }
    }
    auto full = root_ + "/" + path;
    auto dir = full.substr(0, full.rfind('/'));
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        fs::create_directories(dir, ec);
        if (ec) {
            errno = ec.value();
            return -1;
        }
        dirty_dirs_.insert(root_);
    }
    // Created first: in an initial sync nearly every file is new, so one open each.
    int fd = ::open(full.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
        dirty_dirs_.insert(dir);
    } else if (errno == EEXIST) {
        fd = ::open(full.c_str(), O_RDWR | O_CLOEXEC);
    }
    if (fd >= 0) {
        fds_[path] = fd;
    }
    return fd;
}

void page_mirror::close_fd(const std::string& path) {
    if (auto it = fds_.find(path); it != fds_.end()) {
        ::close(it->second);
        fds_.erase(it);
    }
    dirty_files_.erase(path);
}

std::string page_mirror::apply(const file_op& op) {
    if (!valid_page_path(op.path)) {
        return "page operation with a bad path \"" + op.path + "\"";
    }
    auto full = root_ + "/" + op.path;
    auto dir = full.substr(0, full.rfind('/'));
    ++applied_;
    switch (op.kind) {
        case file_op::page_write: {
            int fd = fd_of(op.path);
            if (fd < 0) {
                return failure(full, "open", errno);
            }
            if (!storage::write_all(fd, op.bytes.data(), op.bytes.size(), op.offset)) {
                return failure(full, "pwrite", errno);
            }
            dirty_files_.insert(op.path);
            return {};
        }
        case file_op::page_replace: {
            close_fd(op.path);
            std::error_code ec;
            fs::create_directories(dir, ec);
            // replace_file syncs the file and its directory itself.
            return storage::replace_file(dir, full, op.bytes);
        }
        case file_op::page_truncate: {
            int fd = fd_of(op.path);
            if (fd < 0) {
                return failure(full, "open", errno);
            }
            if (::ftruncate(fd, static_cast<off_t>(op.offset)) != 0) {
                return failure(full, "ftruncate", errno);
            }
            dirty_files_.insert(op.path);
            return {};
        }
        case file_op::page_remove:
            close_fd(op.path);
            if (::unlink(full.c_str()) != 0 && errno != ENOENT) {
                return failure(full, "unlink", errno);
            }
            dirty_dirs_.insert(dir);
            return {};
        default:
            return "not a page operation: " + std::to_string(op.kind);
    }
}

std::string page_mirror::write_back() {
    for (const auto& path : dirty_files_) {
        auto it = fds_.find(path);
        // A hint to the kernel; a write error shows in the syncfs that sync() runs.
        if (it != fds_.end()) {
            ::sync_file_range(it->second, 0, 0, SYNC_FILE_RANGE_WRITE);
        }
    }
    fs_sync_owed_ = fs_sync_owed_ || !dirty_files_.empty() || !dirty_dirs_.empty();
    dirty_files_.clear();
    return {};
}

std::string page_mirror::sync() {
    if (fs_sync_owed_) {
        // Everything on the file system, the files and directories written since the mirror
        // began among it, reaches the disk; errors of the write-back before are reported too
        // (a descriptor's syncfs sees write errors not yet seen by anyone).
        int fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            return failure(root_, "open", errno);
        }
        int rc = ::syncfs(fd);
        int err = errno;
        ::close(fd);
        if (rc != 0) {
            return failure(root_, "syncfs", err);
        }
        fs_sync_owed_ = false;
        dirty_files_.clear();
        dirty_dirs_.clear();
        return {};
    }
    for (const auto& path : dirty_files_) {
        auto it = fds_.find(path);
        if (it != fds_.end() && ::fdatasync(it->second) != 0) {
            return failure(root_ + "/" + path, "fdatasync", errno);
        }
    }
    dirty_files_.clear();
    for (const auto& dir : dirty_dirs_) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) {
            continue;
        }
        if (auto e = storage::sync_directory(dir); !e.empty()) {
            return e;
        }
    }
    dirty_dirs_.clear();
    return {};
}

} // namespace actormq::paging
