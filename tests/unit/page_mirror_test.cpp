// SPDX-License-Identifier: Apache-2.0
// Paging's part of replication (actors/paging/page_mirror.cpp): a page store records its file
// operations, and a mirror that applies them (after a snapshot copied in chunks) holds the
// same files byte for byte (docs/replication.md, "Paging").
#include "actors/paging/page_mirror.hpp"
#include "actors/paging/pager.hpp"
#include "actors/storage/durable_file.hpp"
#include "support/temp_dir.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

using namespace actormq;
using namespace actormq::paging;
using actormq::replication::file_op;

namespace {

using scratch = actormq::test::temp_dir;

message_ptr msg(uint64_t id) {
    auto m = std::make_shared<broker_message>();
    m->id = id;
    m->persistent = true;
    m->address = "q";
    m->destination = "/queue/q";
    m->body = std::string(1000, static_cast<char>('a' + id % 26));
    return m;
}

/// Every file under `dir` (relative name -> bytes).
std::map<std::string, std::string> files_of(const std::string& dir) {
    std::map<std::string, std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
        if (e.is_regular_file()) {
            std::string bytes;
            REQUIRE(storage::read_whole(e.path().string(), bytes));
            out[std::filesystem::relative(e.path(), dir).string()] = bytes;
        }
    }
    return out;
}

/// A store that replicates (any valid handle would do: only its presence matters here).
store_options replicating(const std::string& root) {
    store_options o;
    o.directory = root + "/q";
    o.address = "q";
    o.page_size_bytes = 64 * 1024;
    return o;
}

void apply_all(page_mirror& m, const std::vector<file_op>& ops) {
    for (const auto& op : ops) {
        REQUIRE(m.apply(op) == "");
    }
    REQUIRE(m.sync() == "");
}

} // namespace

TEST_CASE("page mirror: a snapshot copied in chunks, then the store's operations, give the same "
          "files as the live's, through page-out, page-in and file deletion") {
    scratch live;
    scratch backup;
    // Before the backup exists: three page files.
    {
        page_store before{replicating(live.path)};
        REQUIRE(before.open({}) == "");
        std::vector<message_ptr> batch;
        for (uint64_t i = 1; i <= 150; ++i) {
            batch.push_back(msg(i));
        }
        REQUIRE(before.write(batch, {"q"}) == "");
        REQUIRE(before.files() >= 3);
    }
    page_mirror mirror{backup.path};
    REQUIRE(mirror.reset("") == "");
    for (const auto& e : page_snapshot(live.path)) {
        for (uint64_t at = 0; at < e.end; at += 4096) {
            auto bytes = read_page_chunk(live.path, e.path, at, 4096);
            REQUIRE(mirror.apply({file_op::page_write, 0, at, bytes, e.path}) == "");
        }
    }
    REQUIRE(mirror.sync() == "");
    CHECK(files_of(backup.path) == files_of(live.path));
    // The store reopened with a journal to replicate to: every operation is recorded.
    auto opts = replicating(live.path);
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    // Any journal_actor handle marks the store as replicating; nothing is sent to it here.
    opts.replicate_to = caf::actor_cast<journal_actor>(sys.spawn([] { return caf::behavior{}; }));
    page_store store{opts};
    open_request req;
    req.durable_queues.insert("q");
    REQUIRE(store.open(std::move(req)) == "");
    apply_all(mirror, store.take_ops());
    std::vector<message_ptr> more;
    for (uint64_t i = 151; i <= 250; ++i) {
        more.push_back(msg(i));
    }
    REQUIRE(store.write(more, {"q"}) == "");
    apply_all(mirror, store.take_ops());
    CHECK(files_of(backup.path) == files_of(live.path));
    // Page-in past the first two files: the cursor moves and the files go, on both sides.
    std::string error;
    auto got = store.read(200 * 1024, error);
    REQUIRE(error.empty());
    REQUIRE(got.msgs.size() > 100);
    REQUIRE(store.moved(got.next) == "");
    auto ops = store.take_ops();
    CHECK(std::any_of(ops.begin(), ops.end(),
                      [](const file_op& op) { return op.kind == file_op::page_remove; }));
    apply_all(mirror, ops);
    CHECK(files_of(backup.path) == files_of(live.path));
}

TEST_CASE("page mirror: an operation naming a path outside the paging directory is refused") {
    scratch backup;
    page_mirror mirror{backup.path};
    for (std::string bad : {"../x", "q/../../x", "/etc/passwd", "q", "q/", "/q", "a/b/c", "q/.."}) {
        CHECK_MESSAGE(mirror.apply({file_op::page_write, 0, 0, "x", bad}) != "", bad);
    }
    CHECK(mirror.apply({file_op::page_write, 0, 0, "x", "q/page-0000000001.amqpage"}) == "");
}

TEST_CASE("page mirror: reset moves old page files into the saved journal, or deletes them") {
    scratch s;
    auto root = s.path + "/paging";
    page_mirror mirror{root};
    REQUIRE(mirror.apply({file_op::page_replace, 0, 0, "old", "q/cursor.amqpage"}) == "");
    std::filesystem::create_directories(s.path + "/oldreplica.1");
    REQUIRE(mirror.reset(s.path + "/oldreplica.1") == "");
    CHECK(files_of(root).empty());
    CHECK(files_of(s.path + "/oldreplica.1/paging").at("q/cursor.amqpage") == "old");
    REQUIRE(mirror.apply({file_op::page_replace, 0, 0, "new", "q/cursor.amqpage"}) == "");
    REQUIRE(mirror.reset("") == "");
    CHECK(files_of(root).empty());
}

TEST_CASE("page mirror: files written back (not synced) during an initial sync are closed past "
          "the open-file limit, kept whole, and made durable by the next sync") {
    scratch s;
    page_mirror mirror{s.path + "/paging"};
    REQUIRE(mirror.reset("").empty());
    auto open_fds = [] {
        return std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                             std::filesystem::directory_iterator{});
    };
    auto fds_before = open_fds();
    // More files than the mirror keeps open (32), each written in two chunks with a
    // write-back between them, as the replica does while the sync is copied.
    std::map<std::string, std::string> want;
    for (int i = 0; i < 80; ++i) {
        auto path = "a/page-" + std::to_string(i) + ".amqpage";
        std::string bytes(3000, static_cast<char>('a' + i % 26));
        file_op first{file_op::page_write, 0, 0, bytes.substr(0, 1000), path};
        REQUIRE(mirror.apply(first).empty());
        REQUIRE(mirror.write_back().empty());
        file_op rest{file_op::page_write, 0, 1000, bytes.substr(1000), path};
        REQUIRE(mirror.apply(rest).empty());
        want[path] = bytes;
    }
    REQUIRE(mirror.write_back().empty());
    CHECK(open_fds() <= fds_before + 33);
    CHECK(mirror.sync().empty());
    CHECK(files_of(s.path + "/paging") == want);
    // After the sync nothing is owed: a later write is synced file by file again.
    REQUIRE(
        mirror.apply(file_op{file_op::page_write, 0, 3000, "tail", "a/page-0.amqpage"}).empty());
    CHECK(mirror.sync().empty());
    CHECK(files_of(s.path + "/paging")["a/page-0.amqpage"].size() == 3004);
}
