// SPDX-License-Identifier: Apache-2.0
#pragma once

// Paging's part of replication (docs/replication.md, "Paging"): on the live, what the initial
// sync copies of the paging directory and how its chunks are read; on the backup, the mirror
// that repeats the live's page file operations in the backup's paging directory. Plain
// blocking file code: the live's journal and the backup's replica (both detached) call it.

#include "actors/replication/messages.hpp"
#include "actors/replication/source.hpp"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace actormq::paging {

/// The page and cursor files under `paging_directory` with their sizes, as extents whose
/// `path` is "ADDRESS-DIRECTORY/FILE" (half-made `.tmp` files left out). A missing directory
/// is an empty snapshot.
std::vector<replication::extent> page_snapshot(const std::string& paging_directory);

/// Up to `length` bytes of `path` (relative to `paging_directory`) from `offset`; fewer when
/// the file is shorter, none when it is gone (the sync then skips the rest of it).
std::string read_page_chunk(const std::string& paging_directory,
                            const std::string& path,
                            uint64_t offset,
                            uint64_t length);

/// Whether `path` is one an operation may name: "DIRECTORY/FILE", two plain names, so a peer
/// can never write outside the paging directory.
bool valid_page_path(const std::string& path);

/// The backup's copy of its live's page files. Not thread-safe; the replica owns it.
class page_mirror {
public:
    explicit page_mirror(std::string paging_directory);
    ~page_mirror();
    page_mirror(const page_mirror&) = delete;
    page_mirror& operator=(const page_mirror&) = delete;

    /// Moves what the paging directory holds aside (a new mirror starts empty): into
    /// `saved_to` when that names a directory (the journal's newest `oldreplica.N`, so the old
    /// journal keeps its pages), else deletes it. Returns "" or why it failed.
    std::string reset(const std::string& saved_to);

    /// Applies one file_op::page_* operation (not synced). Returns "" or why it failed.
    std::string apply(const replication::file_op& op);

    /// Syncs every file and directory changed since the last sync. Returns "" or why not.
    /// After write_back(), one syncfs of the paging directory's file system instead of an
    /// fdatasync per file: an initial sync writes thousands of 64 KiB page files, and one
    /// fdatasync each (a synchronous inode write on ext4 without a journal) made the copy
    /// crawl on a busy disk (docs/replication.md, "The initial sync").
    std::string sync();

    /// Starts writing back the files changed since the last sync (sync_file_range, not
    /// waiting) and forgets them, so their descriptors may close; the next sync() then
    /// makes the whole file system durable. Returns "" or why not.
    std::string write_back();

    /// Operations applied since this mirror began (for the log).
    uint64_t applied() const { return applied_; }

private:
    /// The open descriptor of `path`, opened (and created, with its directory) when needed;
    /// -1 with errno set.
    int fd_of(const std::string& path);
    void close_fd(const std::string& path);

    std::string root_;
    std::map<std::string, int> fds_;
    /// Files written and directories whose entries changed since the last sync.
    std::set<std::string> dirty_files_;
    std::set<std::string> dirty_dirs_;
    /// Files were written back by write_back() and not synced: sync() syncs the file system.
    bool fs_sync_owed_ = false;
    uint64_t applied_ = 0;
};

} // namespace actormq::paging
