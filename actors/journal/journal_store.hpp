// SPDX-License-Identifier: Apache-2.0
#pragma once

// The journal's files (docs/journal.md): append-only segments, pre-allocated, with a header.
// Blocking code: only the detached `io_journal` actor (or a test) calls it.

#include "protocol/journal_format.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace actormq::journal {

/// A failed system call on a journal file. `op` is the call ("pwrite", "fdatasync", "open",
/// ...), `path` the file and `code().value()` the errno; what() reads
/// "journal: OP PATH: STRERROR".
class io_error : public std::system_error {
public:
    io_error(int err, std::string op, std::string path);

    /// The system call that failed.
    const std::string& op() const { return op_; }

    /// The file it failed on.
    const std::string& path() const { return path_; }

private:
    std::string op_;
    std::string path_;
};

/// The symbolic name of an errno value ("EIO", "ENOSPC"), or its number as text.
std::string errno_name(int err);

/// The environment variable of the fault seam (docs/testing.md, "The journal fault seam").
constexpr const char* fault_env = "ACTORMQ_TEST_JOURNAL_FAULT";

/// A failure the fault seam injects: the `nth` write (a batch's pwrite in append()) or sync
/// (an fdatasync in sync()) since the store was opened fails with `err` instead of reaching
/// the disk. A node opens its journal once per activation.
struct injected_fault {
    enum class target : uint8_t { write, sync };
    target what = target::write;
    uint64_t nth = 1;
    int err = 0;
};

/// Parses "write:N:ERRNO" or "sync:N:ERRNO" (ERRNO a name such as EIO or ENOSPC, N >= 1);
/// on bad input returns nothing and sets `error` to why.
std::optional<injected_fault> parse_fault(const std::string& spec, std::string& error);

/// Bytes of a segment's header: a segment whose bytes end here holds no record.
constexpr uint64_t segment_header_size = 64;

/// What the store needs from the config.
struct store_config {
    std::string directory;
    /// Bytes of one segment file (journal-file-size).
    uint64_t file_size = 10 * 1024 * 1024;
    /// Files kept created and zero-filled ahead of use (journal-min-files).
    uint32_t min_files = 2;
    /// File names are PREFIX-SEQ.EXT with SEQ zero-padded to 10 digits.
    std::string prefix = "actormq-data";
    std::string extension = "amq";
};

/// What to do with a corrupt record that is not a torn tail.
enum class corrupt_policy : uint8_t {
    refuse, ///< open() fails with the exact file and offset
    skip,   ///< report it, resynchronise at the next valid record, keep going
};

/// A record found by open(), with where it is.
struct located_record {
    record rec;
    uint64_t file_seq = 0;
    uint64_t offset = 0;
};

/// A valid record as open() reads it, with where it is. `rec.payload` points into the store's
/// read buffer: it is valid only until the visitor returns.
struct record_ref {
    record_view rec;
    uint64_t file_seq = 0;
    uint64_t offset = 0;
};

/// Receives the valid records of one segment, in file order, as open() reads them (a segment
/// damaged under policy skip may come in several parts). Returning false stops open(), which
/// then fails like a refused journal (the visitor says why).
using record_visitor = std::function<bool(const std::vector<record_ref>&)>;

/// A corrupt record found by open().
struct corruption {
    std::string file;
    uint64_t offset = 0;
    std::string reason;
};

/// Everything open() found.
struct open_result {
    /// Every valid record, in journal order (file order, then offset).
    std::vector<located_record> records;
    /// Corrupt records skipped (policy skip) or the one that stopped open() (policy refuse).
    std::vector<corruption> corrupt;
    /// Set when a torn tail was cut off (file and offset of the cut).
    bool torn_tail = false;
    std::string torn_file;
    uint64_t torn_offset = 0;
    /// The path of every segment file by sequence number, so that later stages (recovery)
    /// can name the file of a record.
    std::map<uint64_t, std::string> files;
    /// The fault the seam will inject (ACTORMQ_TEST_JOURNAL_FAULT was set), for the log.
    std::optional<injected_fault> fault;
    /// Set when a record_visitor stopped open().
    bool stopped = false;
    /// Bytes read from segment files and the seconds spent in those reads (recovery phases).
    uint64_t bytes_read = 0;
    double read_seconds = 0;
    /// Non-empty when the journal cannot be opened; the exact message for the operator, e.g.
    /// "journal record at /d/actormq-data-0000000003.amq offset 4096 is corrupt: CRC mismatch".
    std::string error;
};

/// The segment files of one journal directory.
class store {
public:
    explicit store(store_config cfg);
    ~store();

    store(const store&) = delete;
    store& operator=(const store&) = delete;

    /// Creates the directory if needed, reads every segment in sequence order and prepares
    /// appending after the last valid record. Reads ACTORMQ_TEST_JOURNAL_FAULT (a malformed
    /// value is an error). Throws io_error when a system call fails. A torn tail (a damaged record
    /// in the newest segment after which no valid record follows) is cut off and zeroed silently.
    open_result open(corrupt_policy policy);

    /// Like open(policy), but hands the valid records to `visit` segment by segment as they
    /// are read instead of collecting them (`records` stays empty), so a journal of any size
    /// is read with one segment's buffer and no copy of a record. Records reach `visit` in
    /// journal order; a torn tail or a corrupt record is handled exactly as open(policy) does.
    open_result open(corrupt_policy policy, const record_visitor& visit);

    /// Where an appended batch went.
    struct placement {
        uint64_t file_seq = 0;
        uint64_t offset = 0;
    };

    /// Writes encoded records (whole records only) at the end of the journal. A batch that
    /// does not fit in the current segment starts the next one (a batch larger than a whole
    /// segment gets a segment of its own, larger than file_size). Not durable until sync().
    placement append(std::string_view bytes);

    /// Makes every appended byte durable (fdatasync; fsync of the directory after a new
    /// segment file was created).
    void sync();

    /// Deletes a segment (its records are all dead or forwarded). Never the current one.
    void remove(uint64_t file_seq);

    /// Reads back the record at a position (used when forwarding live records).
    bool read(uint64_t file_seq, uint64_t offset, record& out);

    /// The sequence numbers of the segments that hold or may hold records, oldest first.
    std::vector<uint64_t> segments() const;

    /// The segment appends go to now.
    uint64_t current_segment() const;

    /// Full path of a segment.
    std::string path_of(uint64_t file_seq) const;

    /// Bytes written into segments (headers and records), for status.
    uint64_t bytes_used() const;

    // -- replication (docs/replication.md) ------------------------------------------------------
    // The live reads its segments' bytes for a backup's initial sync; the backup keeps a mirror:
    // the same segment files, written at the same places, so that at failover a normal open()
    // of its directory finds the live's journal.

    /// Where the bytes of a segment end (its header and records); 0 for an unknown segment.
    uint64_t end_of(uint64_t file_seq) const;

    /// Reads up to `max` bytes of a segment from `offset`, never past end_of(); empty at the end.
    std::string read_bytes(uint64_t file_seq, uint64_t offset, uint64_t max);

    /// Starts an empty mirror in the directory (which must hold no segment): no segment is
    /// created until write_at() needs it. Use instead of open().
    void open_mirror();

    /// Mirror only: writes `bytes` at `offset` of segment `file_seq`, creating the segment
    /// (header, zero fill, as open() would) when it does not exist yet and growing it when the
    /// bytes pass its end. Not durable until sync().
    void write_at(uint64_t file_seq, uint64_t offset, std::string_view bytes);

    /// Mirror: starts writing back what write_at() wrote to the open segments since the last
    /// sync() (sync_file_range, not waiting for it; write_at() does so for each segment it
    /// leaves), so that the sync() that makes an initial sync durable finds little left to
    /// write. Durable only after sync().
    void start_write_back();

private:
    struct impl;
    impl* impl_;
};

} // namespace actormq::journal
