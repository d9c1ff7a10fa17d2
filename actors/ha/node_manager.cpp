// SPDX-License-Identifier: Apache-2.0
#include "actors/ha/node_manager.hpp"

#include "actors/journal/journal_store.hpp"

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <unistd.h>

namespace actormq {

namespace {

/// Layout of server.lock: the state byte, then the node id as 36 characters of UUID text.
constexpr off_t state_offset = 0;
constexpr off_t node_id_offset = 1;
constexpr size_t node_id_size = 36;

std::string errno_text() {
    return std::strerror(errno);
}

/// The fields of the failure line for a failed call on the lock file.
std::string failure(const std::string& path, const char* op, int err) {
    return "file=" + path + " op=" + op + " errno=" + journal::errno_name(err);
}

/// Writes `size` bytes at `offset` and syncs them; "" or the failure.
std::string
write_synced(int fd, const std::string& path, const char* data, size_t size, off_t offset) {
    ssize_t n = 0;
    do {
        n = ::pwrite(fd, data, size, offset);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(size)) {
        // A short write of one byte or 36 is not a case to resume: treat it as no space.
        return failure(path, "pwrite", n < 0 ? errno : ENOSPC);
    }
    if (::fdatasync(fd) != 0) {
        return failure(path, "fdatasync", errno);
    }
    return {};
}

bool try_flock(int fd) {
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EINTR) {
            return false;
        }
    }
    return true;
}

} // namespace

const char* to_string(lock_state s) {
    switch (s) {
        case lock_state::not_started:
            return "not-started";
        case lock_state::live:
            return "live";
        case lock_state::failing_back:
            return "failing-back";
        case lock_state::paused:
            return "paused";
    }
    return "unknown";
}

node_manager::node_manager(std::string directory)
    : directory_(std::move(directory)),
      server_path_(directory_ + "/server.lock"),
      backup_path_(directory_ + "/backup.lock") {}

node_manager::~node_manager() {
    for (int fd : {server_fd_, backup_fd_}) {
        if (fd >= 0) {
            ::close(fd); // releases any lock this process still holds
        }
    }
}

std::string node_manager::open() {
    std::error_code ec;
    std::filesystem::create_directories(directory_, ec);
    if (ec) {
        return "cannot create " + directory_ + ": " + ec.message();
    }
    server_fd_ = ::open(server_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (server_fd_ < 0) {
        return "cannot open " + server_path_ + ": " + errno_text();
    }
    backup_fd_ = ::open(backup_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (backup_fd_ < 0) {
        return "cannot open " + backup_path_ + ": " + errno_text();
    }
    return {};
}

bool node_manager::try_lock_live() {
    if (!live_locked_) {
        live_locked_ = try_flock(server_fd_);
    }
    return live_locked_;
}

void node_manager::unlock_live() {
    if (live_locked_) {
        ::flock(server_fd_, LOCK_UN);
        live_locked_ = false;
    }
}

bool node_manager::try_lock_backup() {
    if (!backup_locked_) {
        backup_locked_ = try_flock(backup_fd_);
    }
    return backup_locked_;
}

void node_manager::unlock_backup() {
    if (backup_locked_) {
        ::flock(backup_fd_, LOCK_UN);
        backup_locked_ = false;
    }
}

lock_state node_manager::state() const {
    char c = 0;
    if (::pread(server_fd_, &c, 1, state_offset) != 1) {
        return lock_state::not_started;
    }
    switch (c) {
        case 'L':
            return lock_state::live;
        case 'F':
            return lock_state::failing_back;
        case 'P':
            return lock_state::paused;
        default:
            return lock_state::not_started;
    }
}

std::string node_manager::set_state(lock_state s) {
    char c = static_cast<char>(s);
    return write_synced(server_fd_, server_path_, &c, 1, state_offset);
}

std::string node_manager::node_id() const {
    std::string id(node_id_size, '\0');
    auto n = ::pread(server_fd_, id.data(), node_id_size, node_id_offset);
    if (n != static_cast<ssize_t>(node_id_size) || id.find('\0') != std::string::npos) {
        return {};
    }
    return id;
}

std::string node_manager::ensure_node_id(std::string& error) {
    error.clear();
    auto id = node_id();
    if (!id.empty()) {
        return id;
    }
    id = boost::uuids::to_string(boost::uuids::random_generator{}());
    error = write_synced(server_fd_, server_path_, id.data(), id.size(), node_id_offset);
    return error.empty() ? id : std::string{};
}

} // namespace actormq
