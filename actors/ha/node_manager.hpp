// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>

namespace actormq {

/// What the shared store's lock file says about the live server of its node id (docs/ha.md).
enum class lock_state : char {
    not_started = 'N',  ///< no server has been live on this store yet
    live = 'L',         ///< a server is live (or was, if it died: its lock is gone)
    failing_back = 'F', ///< an original live waits for the active backup to give way
    paused = 'P',       ///< the live was stopped on purpose; backups stay passive
};

/// The shared store's lock files in the journal directory: `server.lock` holds the state byte
/// and the node id, and its exclusive lock is held by the live server; `backup.lock` is held by
/// the one server waiting to become live. Locks are flock(2) locks, so the kernel releases them
/// the moment a process dies, SIGKILL included.
///
/// Every call is a short system call that never waits for a lock (the waiting is a poll in the
/// node's HA thread), but the calls touch files: never call them on a CAF scheduler worker.
class node_manager {
public:
    explicit node_manager(std::string directory);
    ~node_manager();

    node_manager(const node_manager&) = delete;
    node_manager& operator=(const node_manager&) = delete;

    /// Creates the directory and both files if missing and opens them; returns an empty string
    /// or the reason it failed.
    std::string open();

    /// Takes the live lock if nobody holds it; true if this process holds it now.
    bool try_lock_live();
    void unlock_live();
    bool holds_live() const { return live_locked_; }

    /// Takes the backup lock if nobody holds it; true if this process holds it now.
    bool try_lock_backup();
    void unlock_backup();
    bool holds_backup() const { return backup_locked_; }

    /// The state byte; `not_started` for an empty file or an unknown byte.
    lock_state state() const;

    /// Writes the state byte and syncs it. Only the holder of the live lock writes `live` or
    /// `paused`; the server waiting to fail back writes `failing_back`. Returns "" or, when the
    /// write or the sync failed, "file=PATH op=pwrite|fdatasync errno=NAME" (the caller stops
    /// the node: a state byte that may not be on disk cannot be trusted by a backup).
    [[nodiscard]] std::string set_state(lock_state s);

    /// The node id in the file, or "" if none was written yet.
    std::string node_id() const;

    /// The node id, created (a random UUID) and written if the file has none. Call only with
    /// the live lock held. Returns "" and sets `error` like set_state() when the write or its
    /// sync failed.
    std::string ensure_node_id(std::string& error);

    /// The lock files' paths, for messages.
    const std::string& path() const { return server_path_; }
    const std::string& backup_path() const { return backup_path_; }

private:
    std::string directory_;
    std::string server_path_;
    std::string backup_path_;
    int server_fd_ = -1;
    int backup_fd_ = -1;
    bool live_locked_ = false;
    bool backup_locked_ = false;
};

const char* to_string(lock_state s);

} // namespace actormq
