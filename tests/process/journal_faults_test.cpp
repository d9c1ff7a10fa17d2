// SPDX-License-Identifier: Apache-2.0
// A journal that cannot write (docs/architecture.md, "Failure model"): an fdatasync failing with
// EIO through the fault seam (ACTORMQ_TEST_JOURNAL_FAULT, docs/testing.md) makes the live of a
// shared-store pair stop and exit non-zero so its backup takes over; a real full disk (a small
// tmpfs in a private mount namespace) gives the client an ERROR, loses nothing confirmed, and
// the retry with the same duplicate id is stored exactly once after space frees.
#include "support/process_fixture.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

namespace actormq::test {

namespace {

/// Starts a node with the fault seam armed: the variable is set only while the child is forked
/// (node_process forks and execs in its constructor), so nothing else in this process sees it.
struct fault_armed {
    explicit fault_armed(const char* spec) { ::setenv("ACTORMQ_TEST_JOURNAL_FAULT", spec, 1); }
    ~fault_armed() { ::unsetenv("ACTORMQ_TEST_JOURNAL_FAULT"); }
};

std::string pair_config(const std::string& role) {
    return node_config("", "", "[ha-policy.shared-store." + role + "]\n");
}

/// Logs in on the first of `ports` that serves; false if none does.
bool connect_any(stomp_client& c, const std::vector<uint16_t>& ports) {
    for (auto port : ports) {
        c.close();
        if (c.connect_tcp(port)
            && c.connect_stomp("guest", "guest", "1.2", "0,0", in(std::chrono::seconds(2))).cmd
                   == command::connected) {
            return true;
        }
    }
    return false;
}

/// Consumes `queue` on `port` until the marker `end` (sent last) arrives; how often each
/// message came, by the duplicate id at the start of its body.
std::map<std::string, int> drain(uint16_t port, const std::string& queue, size_t id_size) {
    stomp_client c;
    REQUIRE(connect_any(c, {port}));
    REQUIRE(send_durable(c, queue, "end"));
    subscribe(c, queue, "drain");
    std::map<std::string, int> seen;
    while (seen.count("end") == 0) {
        auto m = expect_message(c);
        ++seen[m.body.substr(0, std::min(id_size, m.body.size()))];
    }
    seen.erase("end");
    return seen;
}

/// Requires a clean non-zero exit (status 1) and returns the node's log.
std::string expect_failed_exit(node_process& node) {
    auto status = node.wait_exit(soon());
    INFO("tail of ", node.log_path(), ":\n", node.log_tail());
    REQUIRE_MESSAGE(status.has_value(), "the node did not exit after its journal failed");
    CHECK_MESSAGE(WIFEXITED(*status), "the node did not exit by itself (signal?)");
    CHECK(WEXITSTATUS(*status) == 1);
    return node.log_text();
}

/// Runs the test in a private mount namespace with a small tmpfs mounted on a fresh directory,
/// so the nodes it starts (they inherit the namespace) see a real full disk. Needs root.
struct small_disk {
    std::string path;
    bool mounted = false;

    explicit small_disk(const std::string& size) {
        // Not a silent pass: without root or namespaces the test fails and says why.
        REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root (a tmpfs in a private mount "
                                          "namespace); run the process tests as root");
        REQUIRE_MESSAGE(::unshare(CLONE_NEWNS) == 0,
                        "unshare(CLONE_NEWNS): ", std::strerror(errno));
        REQUIRE_MESSAGE(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0,
                        "making / private: ", std::strerror(errno));
        std::string pattern = "/tmp/actormq-small-disk-XXXXXX";
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
        auto options = "size=" + size;
        REQUIRE_MESSAGE(::mount("tmpfs", path.c_str(), "tmpfs", 0, options.c_str()) == 0,
                        "mount tmpfs: ", std::strerror(errno));
        mounted = true;
    }

    ~small_disk() {
        if (mounted) {
            ::umount2(path.c_str(), MNT_DETACH);
        }
        ::rmdir(path.c_str());
    }

    /// Writes a filler file until the file system is full; returns its size.
    size_t fill(const std::string& name) {
        int fd = ::open((path + "/" + name).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        REQUIRE(fd >= 0);
        std::string chunk(4096, 'f');
        size_t total = 0;
        while (true) {
            auto n = ::write(fd, chunk.data(), chunk.size());
            if (n <= 0) {
                CHECK_MESSAGE(errno == ENOSPC, "filling stopped with ", std::strerror(errno));
                break;
            }
            total += static_cast<size_t>(n);
        }
        ::close(fd);
        return total;
    }
};

} // namespace

TEST_CASE("journal faults: a failing fdatasync on the live of a pair: it exits 1 naming file, "
          "call and errno, the backup takes over and serves every confirmed message once") {
    temp_dir store;
    std::vector<std::string> sets{"journal-directory=" + store.path + "/journal"};
    std::unique_ptr<node_process> primary;
    {
        // The 25th batch sync of the live fails with EIO; the backup has no fault.
        fault_armed fault{"sync:25:EIO"};
        primary = std::make_unique<node_process>(pair_config("primary"), sets);
    }
    INFO("tail of primary log:\n", primary->log_tail());
    REQUIRE(primary->wait_ready(soon()));
    ACTORMQ_START_NODE(backup, pair_config("backup"), sets);
    std::vector<uint16_t> ports{primary->port(), backup.port()};

    // One producer, one message at a time, each with a duplicate id; one that is not
    // confirmed is sent again (same id) to whichever server serves, until it is.
    constexpr int total = 60;
    std::set<std::string> confirmed;
    int retries = 0;
    stomp_client c;
    REQUIRE(wait_until(soon(), [&] { return connect_any(c, ports); }));
    for (int i = 0; i < total; ++i) {
        char id[16];
        std::snprintf(id, sizeof id, "m-%03d", i);
        bool ok = wait_until(in(std::chrono::seconds(30)), [&] {
            if (send_durable(c, "/queue/faults", id, in(std::chrono::seconds(5)))) {
                return true;
            }
            ++retries;
            connect_any(c, ports);
            return false;
        });
        REQUIRE_MESSAGE(ok, "message ", id, " was never confirmed");
        confirmed.insert(id);
    }
    CHECK(retries > 0); // the live failed under the producer

    auto log = expect_failed_exit(*primary);
    CHECK(log.find("journal_fault_injection_armed ACTORMQ_TEST_JOURNAL_FAULT=sync:25:EIO")
          != std::string::npos);
    CHECK(log.find("journal_failed file=" + store.path + "/journal/actormq-data-")
          != std::string::npos);
    CHECK(log.find("op=fdatasync errno=EIO action=stop") != std::string::npos);
    CHECK(log.find("ha_stopped") != std::string::npos);
    CHECK(backup.log_text().find("ha_live") != std::string::npos);

    auto seen = drain(backup.port(), "/queue/faults", 5);
    CHECK(seen.size() == confirmed.size());
    for (const auto& id : confirmed) {
        CAPTURE(id);
        CHECK(seen[id] == 1);
    }
}

TEST_CASE("journal faults: a full disk during a durable SEND: ERROR to that client, the node "
          "exits 1, nothing confirmed is lost, the retry is stored once after space frees") {
    small_disk disk{"2m"};
    std::vector<std::string> sets{"journal-directory=" + disk.path + "/journal",
                                  "journal-file-size=131072"};
    std::set<std::string> confirmed;
    std::string failed_id;
    // Bodies of 16 KiB: a few fill a 128 KiB segment, and the next one needs a new file.
    const std::string padding(16 * 1024, 'p');
    {
        ACTORMQ_START_NODE(node, node_config(), sets);
        stomp_client c;
        login(c, node);
        REQUIRE(send_durable(c, "/queue/full", "d-000", in(std::chrono::seconds(5)), padding));
        confirmed.insert("d-000");
        auto filler = disk.fill("filler");
        CHECK(filler > 0);
        for (int i = 1; i < 40 && failed_id.empty(); ++i) {
            char id[16];
            std::snprintf(id, sizeof id, "d-%03d", i);
            if (send_durable(c, "/queue/full", id, in(std::chrono::seconds(5)), padding)) {
                confirmed.insert(id);
            } else {
                failed_id = id;
            }
        }
        REQUIRE_MESSAGE(!failed_id.empty(), "the disk never filled up");
        auto error = c.buffered().empty() ? std::optional<stomp::frame>{}
                                          : std::optional<stomp::frame>{c.buffered().back()};
        REQUIRE_MESSAGE(error.has_value(), "no ERROR frame for the failed SEND");
        CHECK(error->cmd == command::error);
        auto log = expect_failed_exit(node);
        CHECK(log.find("errno=ENOSPC action=stop") != std::string::npos);
    }
    // Space frees; the node starts again on the same journal and the producer resends what
    // it has no receipt for and, to be sure, everything else too: each is stored once.
    REQUIRE(::unlink((disk.path + "/filler").c_str()) == 0);
    ACTORMQ_START_NODE(again, node_config(), sets);
    stomp_client c;
    login(c, again);
    REQUIRE(send_durable(c, "/queue/full", failed_id, in(std::chrono::seconds(5)), padding));
    for (const auto& id : confirmed) {
        REQUIRE(send_durable(c, "/queue/full", id, in(std::chrono::seconds(5)), padding));
    }
    auto seen = drain(again.port(), "/queue/full", 5);
    CHECK(seen.size() == confirmed.size() + 1);
    CHECK(seen[failed_id] == 1);
    for (const auto& id : confirmed) {
        CAPTURE(id);
        CHECK(seen[id] == 1);
    }
}

} // namespace actormq::test
