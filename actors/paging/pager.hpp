// SPDX-License-Identifier: Apache-2.0
#pragma once

// The page store of one address (docs/journal.md, "Paging"): page files written in order,
// read back in order, and a cursor file that says what has left them. `page_store` is plain
// blocking file code; `pager` is the detached actor that runs it for an address.

#include "actors/fwd.hpp"
#include "actors/replication/messages.hpp"
#include "protocol/messages.hpp"
#include "protocol/page_format.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <spdlog/logger.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace actormq::paging {

/// What a page store needs from the config.
struct store_options {
    /// This address's directory (paging-directory / directory_name(address)).
    std::string directory;
    std::string address;
    /// A page file is closed and the next one begun once it holds this many bytes.
    uint64_t page_size_bytes = 10 * 1024 * 1024;
    /// Page files kept open at once for reading (page-max-cache-size).
    uint32_t max_open_files = 5;
    /// Whether what is on disk may be kept at open (false: persistence is off or the address
    /// is temporary, so old page files are deleted).
    bool keep = true;
    /// With ha-policy replication, the server's journal: every file operation goes to it, so
    /// it reaches the backup in order with the journal's records, and an answer waits for
    /// the backup as a journal append does (docs/replication.md, "Paging"). Null: none.
    journal_actor replicate_to;
};

/// What the owning address knows at start about what recovery already put in memory.
struct open_request {
    /// Ids of the persistent messages the journal gave back to this address's queues.
    std::unordered_set<uint64_t> seed_ids;
    /// The durable queues of this address (after a restart only those can hold anything).
    std::set<std::string> durable_queues;
};

/// What opening found.
struct open_result {
    /// Records are left to read.
    bool has_unread = false;
    /// The duplicate-detection ids of the persistent messages in the newest two page files:
    /// a crash may have come between a page write and the journal record of its ids.
    std::vector<std::string> dup_ids;
};

/// Messages read back from the page files, in page order, and where reading stopped.
struct page_batch {
    std::vector<message_ptr> msgs;
    /// The queues each message was routed to when it was paged (parallel to `msgs`).
    std::vector<std::vector<std::string>> queues;
    /// The position after the last record read: what to confirm with `moved`.
    page_cursor next;
    /// Nothing written is left to read.
    bool at_end = true;
};

/// Blocking file code of one address's page store. Not thread-safe; one pager owns it.
class page_store {
public:
    explicit page_store(store_options opts);
    ~page_store();
    page_store(const page_store&) = delete;
    page_store& operator=(const page_store&) = delete;

    /// Reads what is on disk: the page files, the last valid cursor, the newest file's written
    /// end (a torn tail is cut). Records before that end are from before this start: the
    /// non-persistent ones, those only for queues that are gone, and those the journal gave
    /// back already (`req.seed_ids`, a page-in whose cursor did not reach the disk) are
    /// skipped, and the cursor is moved past every such record at the head and synced, so the
    /// journal's copy cannot be consumed while the page copy is still ahead of the cursor.
    /// Returns "" or an error naming the file and offset.
    std::string open(open_request req);

    /// The duplicate ids open() found (see open_result).
    std::vector<std::string> take_dup_ids() { return std::move(dup_ids_); }

    /// Appends messages (with the queues they were routed to); with `sync`, syncs the files
    /// written, otherwise they stay dirty until sync(). Returns "" or an error naming the file
    /// and the call.
    std::string write(const std::vector<message_ptr>& msgs,
                      const std::vector<std::string>& queues,
                      bool sync = true);

    /// Syncs every file written since the last sync.
    std::string sync();

    /// Reads messages from the read position until `budget` bytes (memory_bytes() times the
    /// number of queues) are reached; at least one when any is left. Advances the read
    /// position, not the cursor. `error` is set when a record does not decode.
    page_batch read(int64_t budget, std::string& error);

    /// Records durably that everything before `c` has left the page files, then deletes the
    /// files wholly before it. Returns "" or an error.
    std::string moved(const page_cursor& c);

    /// Whether records are written that the read position has not passed.
    bool has_unread() const;

    /// Page files on disk now.
    size_t files() const { return files_.size(); }

    /// The file operations done since the last call, for the backup (only recorded when
    /// `replicate_to` is set): the same bytes at the same places, in their order.
    std::vector<replication::file_op> take_ops() { return std::move(ops_); }

private:
    struct file_info {
        uint64_t number = 0;
        uint64_t size = 0;
        int fd = -1;
    };

    std::string path_of(uint64_t n) const;
    std::string new_file(uint64_t n);
    int read_fd(file_info& f);
    bool skippable(const page_message& m) const;
    bool before_boundary(const page_cursor& c) const;
    /// Makes [offset, offset+need) of file `f` available in the read buffer; false at its end.
    bool fill(file_info& f, uint64_t offset, size_t need);
    std::string write_cursor(const page_cursor& c);
    void collect_dup_ids(const char* data, size_t size);
    /// Records an operation on file `name` of this address for the backup.
    void note(uint8_t kind, const std::string& name, uint64_t offset, std::string_view bytes = {});

    store_options opts_;
    std::vector<file_info> files_;
    /// Where the next read starts, and where the durable cursor is.
    page_cursor read_pos_;
    page_cursor cursor_;
    /// The written end at open: records before it are from before this start.
    page_cursor boundary_;
    open_request seed_;
    int cursor_fd_ = -1;
    uint64_t cursor_bytes_ = 0;
    std::string buffer_;
    uint64_t buffer_file_ = 0;
    uint64_t buffer_offset_ = 0;
    std::vector<std::string> dup_ids_;
    /// Files written and not synced yet.
    std::vector<uint64_t> dirty_;
    /// Where the first message of the last read batch starts.
    page_cursor first_read_;
    /// Whether operations are recorded, this directory's name, and what is recorded.
    bool replicate_ = false;
    std::string relative_;
    std::vector<replication::file_op> ops_;
};

using open_atom = caf::atom_constant<caf::atom("pgopen")>;
using write_atom = caf::atom_constant<caf::atom("pgwrite")>;
using read_atom = caf::atom_constant<caf::atom("pgread")>;
using moved_atom = caf::atom_constant<caf::atom("pgmoved")>;

} // namespace actormq::paging

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::paging::open_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::paging::open_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::paging::page_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::paging::page_cursor)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<actormq::paging::open_request>)

namespace actormq::paging {

/// The detached actor that owns one address's page store; every answer comes once the files
/// are synced. A failed file call is answered with errc::journal_failed (context: the file and
/// the call) and every later request too, as the journal does.
using pager_actor = caf::typed_actor<
    // Open the store (the first request, before any other).
    caf::replies_to<open_atom, std::shared_ptr<open_request>>::with<open_result>,
    // Page out messages routed to these queues; answered once synced.
    caf::replies_to<write_atom, std::vector<message_ptr>, std::vector<std::string>>::with<bool>,
    // Sync what was written and answer those writes (sent to itself behind queued writes).
    caf::reacts_to<flush_atom>,
    // Read back up to this many bytes.
    caf::replies_to<read_atom, int64_t>::with<page_batch>,
    // Everything before this position is in memory and journaled: record it, free files.
    caf::replies_to<moved_atom, page_cursor>::with<bool>>;

struct pager_state {
    static inline const char* name = "io_pager";
    std::unique_ptr<page_store> store;
    std::shared_ptr<spdlog::logger> log;
    /// The first failure; every later request is refused with it.
    std::string failed;
    /// A write waits for its fdatasync here and, when replicating, for the journal's answer
    /// that the backup holds it; answered in order once both came.
    struct waiting_write {
        caf::typed_response_promise<bool> promise;
        uint64_t number = 0;
        bool synced = false;
        bool replicated = true;
    };
    std::deque<waiting_write> writes;
    /// Writes done and not synced yet (one fdatasync covers them all: group commit).
    bool unsynced = false;
    uint64_t next_write = 1;
    /// Where the operations go (store_options::replicate_to).
    journal_actor journal;
};

/// The behaviour of a pager (spawn it detached: every handler blocks on files).
pager_actor::behavior_type pager(pager_actor::stateful_pointer<pager_state> self,
                                 store_options opts,
                                 std::shared_ptr<spdlog::logger> log);

/// What one look at the paging directory found (list_paging_directory).
struct directory_listing {
    /// directory_name(address) of every address that has a page directory (it paged before).
    std::vector<std::string> names;
    /// The largest message id in the newest two page files of each of them (0: none). Paged
    /// messages are not journaled, so the journal's largest id can be below theirs: new
    /// messages must be numbered past this, or a new message would share an id with a paged
    /// one and the journal would take them for one message once both are in it.
    uint64_t max_message_id = 0;
};

} // namespace actormq::paging

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::paging::directory_listing)

namespace actormq::paging {

/// Lists `paging_directory`: nothing when it does not exist; `error` is set when it, or a page
/// file in it, cannot be read. Blocking: for a detached actor.
directory_listing list_paging_directory(const std::string& paging_directory, std::string& error);

using list_atom = caf::atom_constant<caf::atom("pglist")>;

/// Lists a paging directory once (list_paging_directory), answers and ends: the server asks
/// it at start, before it spawns the recovered addresses and before any client is let in,
/// which addresses have page files and past which id to number new messages, so no address
/// looks at the disk from a scheduler worker. A directory that cannot be read is answered with
/// errc::journal_failed (context: the path and the reason).
using lister_actor =
    caf::typed_actor<caf::replies_to<list_atom, std::string>::with<directory_listing>>;

/// The behaviour of a lister (spawn it detached: it reads a directory).
lister_actor::behavior_type lister(lister_actor::pointer self);

} // namespace actormq::paging
