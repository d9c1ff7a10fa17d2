// SPDX-License-Identifier: Apache-2.0
#pragma once

// Small files that must survive a crash whole (paging's page headers, the activation record):
// written through a synced temporary file and a rename. Blocking: call from io actors and
// detached actors only.

#include <cstddef>
#include <cstdint>
#include <string>

namespace actormq::storage {

/// "file=PATH op=OP errno=TEXT", the form every storage failure is logged in.
std::string failure(const std::string& file, const char* op, int err);

/// pwrite of all `size` bytes at `offset` (retried on EINTR); false with errno set.
bool write_all(int fd, const char* data, size_t size, uint64_t offset);

/// fsync of the directory `dir`, so a rename or a new file in it is durable; "" or failure().
std::string sync_directory(const std::string& dir);

/// Writes `bytes` as `path` (in `dir`) through a synced temporary file and a rename, then
/// syncs the directory: a crash leaves the old file or the new one, never half of one.
/// Returns "" or failure().
std::string replace_file(const std::string& dir, const std::string& path, const std::string& bytes);

/// Reads the whole file; false when it cannot be opened or read.
bool read_whole(const std::string& path, std::string& out);

} // namespace actormq::storage
