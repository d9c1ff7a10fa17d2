// SPDX-License-Identifier: Apache-2.0
// The producers' host list (crash/producers.cpp) against two real live-only nodes: a producer
// whose node dies goes on with whichever host serves and resends what was unconfirmed. The
// nodes do not share a journal, so only the producer's behaviour is checked, not a verdict.
#include "crash/node_runner.hpp"
#include "crash/producers.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <thread>

using namespace actormq::crash;
using actormq::test::in;
using std::chrono::milliseconds;

namespace {

/// A fresh directory under /tmp, removed at the end of the test.
struct temp_dir {
    temp_dir() {
        std::string pattern = "/tmp/actormq-crash-hosts-XXXXXX";
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    std::string path;
};

/// A live-only node in DIR/<name>, filling host slot `host`.
node_spec live_only(const std::string& dir, const std::string& name, uint32_t host) {
    node_spec s;
    s.dir = dir + "/" + name;
    std::filesystem::create_directories(s.dir);
    s.log_prefix = name;
    s.host = host;
    s.config = [d = s.dir] {
        return crash_node_config(d);
    };
    return s;
}

/// Waits (bounded) for a RECEIPT from `host` from now on.
bool receipt_from(traffic_control& ctl, uint32_t host) {
    ctl.await_receipt_from(host);
    return actormq::test::wait_until(
        in(milliseconds(10000)), [&] { return ctl.awaited_receipt().has_value(); },
        milliseconds(1));
}

} // namespace

TEST_CASE("crash producers: host list: a producer moves to the host that serves") {
    temp_dir dir;
    traffic_control ctl;
    ctl.host_count = 2;
    node_runner a{live_only(dir.path, "a", 0), ctl};
    node_runner b{live_only(dir.path, "b", 1), ctl};
    REQUIRE(a.start());
    // Only host a is up: the producer must connect there and never try b's slot.
    producer_limits limits;
    ledger book{1, 0};
    producer_stats stats;
    std::thread producer{run_plain_producer, std::ref(ctl), std::cref(limits),
                         std::ref(book.streams()[0]), std::ref(stats)};
    CHECK(receipt_from(ctl, 0));
    REQUIRE(b.start());
    CHECK(a.stop(SIGKILL));
    CHECK(receipt_from(ctl, 1));
    // And back: a restarted a serves again on its port once b is gone.
    REQUIRE(a.start());
    CHECK(b.stop(SIGKILL));
    CHECK(receipt_from(ctl, 0));
    ctl.stop_deadline = in(milliseconds(10000));
    ctl.stop = true;
    producer.join();
    CHECK(stats.connects == 3);
    CHECK(stats.errors == 0);
    CHECK_FALSE(stats.gave_up);
    CHECK(stats.resent > 0);
    CHECK(a.stop(SIGTERM));
}
