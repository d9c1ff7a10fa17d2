// SPDX-License-Identifier: Apache-2.0
// The shared store's lock files (actors/ha/node_manager.cpp) on a real directory. flock locks
// belong to an open file, so two node_managers in one process contend like two processes would.
#include "actors/ha/node_manager.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

using actormq::lock_state;
using actormq::node_manager;

namespace {

struct store_dir {
    std::string path;
    store_dir() {
        std::string pattern = "/tmp/actormq-locks-XXXXXX";
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern + "/journal";
    }
    ~store_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(std::filesystem::path{path}.parent_path(), ignored);
    }
};

} // namespace

TEST_CASE("node_manager: live lock: one holder at a time, free again after unlock or close") {
    store_dir dir;
    node_manager a{dir.path};
    node_manager b{dir.path};
    REQUIRE(a.open().empty());
    REQUIRE(b.open().empty());
    CHECK(a.try_lock_live());
    CHECK(a.try_lock_live()); // holding it already
    CHECK_FALSE(b.try_lock_live());
    a.unlock_live();
    CHECK(b.try_lock_live());
    {
        node_manager c{dir.path};
        REQUIRE(c.open().empty());
        CHECK(c.try_lock_backup()); // the backup lock is separate from the live lock
        node_manager d{dir.path};
        REQUIRE(d.open().empty());
        CHECK_FALSE(d.try_lock_backup());
    } // c closes its file: its backup lock is gone, as when a process dies
    node_manager e{dir.path};
    REQUIRE(e.open().empty());
    CHECK(e.try_lock_backup());
}

TEST_CASE("node_manager: state and node id: a fresh store is not started and has no id") {
    store_dir dir;
    node_manager a{dir.path};
    REQUIRE(a.open().empty());
    CHECK(a.state() == lock_state::not_started);
    CHECK(a.node_id().empty());
    CHECK(a.set_state(lock_state::failing_back).empty());
    CHECK(a.node_id().empty());
    REQUIRE(a.try_lock_live());
    std::string error;
    auto id = a.ensure_node_id(error);
    CHECK(error.empty());
    CHECK(id.size() == 36);
    CHECK(a.ensure_node_id(error) == id);
    CHECK(a.set_state(lock_state::live).empty());

    node_manager b{dir.path};
    REQUIRE(b.open().empty());
    CHECK(b.node_id() == id);
    CHECK(b.state() == lock_state::live);
    CHECK(b.set_state(lock_state::paused).empty());
    CHECK(a.state() == lock_state::paused);
    CHECK(a.node_id() == id);
}

TEST_CASE("node_manager: open: an unusable directory is reported") {
    node_manager a{"/proc/actormq-cannot-create/journal"};
    auto err = a.open();
    CHECK(err.find("cannot create /proc/actormq-cannot-create/journal") == 0);
}

TEST_CASE("node_manager: set_state and ensure_node_id report a write that fails, naming file, "
          "call and errno") {
    // /dev/full accepts open, flock and reads but fails every write with ENOSPC: a lock file
    // on a full disk, without needing one.
    store_dir dir;
    std::filesystem::create_directories(dir.path);
    std::filesystem::create_symlink("/dev/full", dir.path + "/server.lock");
    node_manager a{dir.path};
    REQUIRE(a.open().empty());
    REQUIRE(a.try_lock_live());
    auto err = a.set_state(lock_state::live);
    CHECK(err == "file=" + dir.path + "/server.lock op=pwrite errno=ENOSPC");
    std::string id_error;
    CHECK(a.ensure_node_id(id_error).empty());
    CHECK(id_error == err);
}
