// SPDX-License-Identifier: Apache-2.0
#pragma once

// The activation record (docs/replication.md, "Which journal is newest"): a small file in a
// replicating server's journal directory that says which node id the journal there was last
// served as, and with which activation sequence. Every activation writes it, durably, before
// the journal is loaded; a backup moving its data aside moves it along.

#include <cstdint>
#include <string>

namespace actormq::replication {

/// The record's file name inside the journal directory.
inline constexpr const char* activation_file_name = "activation";

struct activation_record {
    std::string node_id;
    uint64_t sequence = 0;
};

/// Reads `directory`'s record. Returns "" with `out` filled (an empty node id when there is
/// no record), or why the file could not be read or parsed (naming the file and line).
std::string read_activation(const std::string& directory, activation_record& out);

/// Writes `rec` as `directory`'s record (synced, replaced atomically); "" or why not.
std::string write_activation(const std::string& directory, const activation_record& rec);

} // namespace actormq::replication
