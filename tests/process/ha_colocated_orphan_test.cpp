// SPDX-License-Identifier: Apache-2.0
// A colocated backup its live lost sight of while its host was frozen (docs/ha.md, "An
// unpaired colocated backup gives way"): the live gets another backup elsewhere; when the host
// thaws, the first instance pairs with nobody, and must neither hold its host's slot for ever
// nor keep the live's backup away from the ring neighbour; and the same for the stand-in that
// gave way, when its live stalls while it copies. Real processes, SIGSTOP past
// connection-timeout-ms.
#include "support/colocated_ring.hpp"

#include <csignal>

namespace actormq::test {

TEST_CASE("colocated: a backup lost with its frozen host, replaced on a third node, gives way "
          "when the host thaws; the live's backup comes back to its ring neighbour, in sync, "
          "and nothing confirmed is lost") {
    ring r{1};
    r.hosts_only = {"b", "c"};
    INFO(r.tails());
    for (const auto& n : r.names) {
        r.start(n);
    }
    // a's backup on b, its ring neighbour, in sync.
    std::string a_id;
    REQUIRE(wait_until(in(std::chrono::seconds(30)), [&] {
        a_id = instance_node_id(r["a"], "a");
        return !a_id.empty() && instance_node_id(r["b"], "colocated_backup_1") == a_id
               && instance_role(r["b"], "colocated_backup_1") == "backup";
    }));
    producer p{"/queue/orphan", {r.stomp["a"]}, "m-"};
    REQUIRE(p.wait_more(50));

    // b stands still past connection-timeout-ms: a loses its backup (the link, not the
    // instance) and gets another on c, which syncs. b's own live has no backup to take it over.
    auto a_log_mark = r["a"].log_text().size();
    r["b"].kill(SIGSTOP);
    bool replaced = wait_until(in(std::chrono::seconds(20)), [&] {
        return r["a"].log_text().find("colocated_backup_lost", a_log_mark) != std::string::npos
               && instance_node_id(r["c"], "colocated_backup_1") == a_id
               && instance_role(r["c"], "colocated_backup_1") == "backup";
    });
    r["b"].kill(SIGCONT);
    REQUIRE(replaced);
    REQUIRE(p.wait_more(50, in(std::chrono::seconds(20))));

    // Thawed, b's instance lost its live; a replicates to c's. Whichever way it goes (a takes
    // b's instance back while it still announces the node id and releases c's; or b's instance,
    // unpaired, gives way to c's, or is handed back to a by b when a's rebalance asks), a's
    // backup ends on b, in b's first slot, in sync, and c runs none: no instance holds a slot
    // it cannot use.
    REQUIRE(wait_until(in(std::chrono::seconds(60)), [&] {
        return instance_node_id(r["b"], "colocated_backup_1") == a_id
               && instance_role(r["b"], "colocated_backup_1") == "backup"
               && instance_role(r["c"], "colocated_backup_1").empty();
    }));
    auto a_log = r["a"].log_text().substr(a_log_mark);
    MESSAGE("a: ",
            a_log.find("reason=\"another member backs up this node id\"") != std::string::npos
                ? std::string{"took b's instance back"}
                : std::string{"moved its backup back to b"},
            "; b's first instance gave way: ",
            r["b"].log_text().find("replication_superseded") != std::string::npos,
            ", was handed back: ", a_log.find("existing=true") != std::string::npos);
    REQUIRE(p.wait_more(50, in(std::chrono::seconds(20))));

    // a served throughout: every confirmed message once.
    p.stop();
    auto want = p.confirmed();
    auto t = count(want, drain(r.stomp["a"], "/queue/orphan"));
    CHECK(t.lost == 0);
    CHECK(t.duplicated == 0);
    CHECK(t.unexpected == 0);
    CHECK(r["a"].log_text().find("replication_stepping_down") == std::string::npos);
    MESSAGE(want.size(), " confirmed messages");
}

TEST_CASE("colocated: a live that stalls while the stand-in that gave way copies its journal "
          "ends with one backup, on its ring neighbour's first slot, in sync; nothing confirmed "
          "is lost") {
    // What the paging ring showed (docs/ha.md, "An unpaired colocated backup gives way"): c
    // fails back; the stand-in on a restarts as c's backup and copies c's journal; c's process
    // stands still past connection-timeout-ms and every link drops. When c resumes, that
    // instance pairs with nobody; with max-backups 2 c may be granted a second instance, and
    // the first must not stay behind holding a's first slot. Whether c is handed the first one
    // back, or the first one gives way, depends on the order of the rejoins: either is right.
    ring r{2};
    INFO(r.tails());
    r.start_whole();
    auto c_id = instance_node_id(r["c"], "c");
    REQUIRE(!c_id.empty());
    // A journal that takes a moment to copy: 25 MB.
    std::set<std::string> want;
    {
        stomp_client c;
        REQUIRE(c.connect_tcp(r.stomp["c"]));
        REQUIRE(c.connect_stomp("guest", "guest").cmd == command::connected);
        const std::string padding(256 * 1024, 'x');
        for (int i = 0; i < 100; ++i) {
            auto body = "big-" + std::to_string(i);
            REQUIRE(send_durable(c, "/queue/big", body, soon(), padding));
            want.insert(body + padding);
        }
    }
    r["c"].kill(SIGKILL);
    REQUIRE(r["c"].wait_exit(soon()).has_value());
    REQUIRE(wait_until(in(std::chrono::seconds(20)), [&] {
        return instance_role(r["a"], "colocated_backup_1") == "backup-active";
    }));
    auto mark = r["a"].log_text().size();
    r.start("c");
    // The stand-in gave way and restarted as c's backup; it copies: c stands still now.
    auto copying = [&] {
        auto text = r["a"].log_text();
        auto restarted = text.find("replication_backup_restarted node_id=" + c_id, mark);
        return restarted != std::string::npos
               && text.find("replication_syncing node_id=" + c_id, restarted) != std::string::npos;
    };
    REQUIRE(wait_until(in(std::chrono::seconds(60)), copying, std::chrono::milliseconds(1)));
    r["c"].kill(SIGSTOP);
    auto stop_mark = r["a"].log_text().size();
    bool dropped = wait_until(in(std::chrono::seconds(20)), [&] {
        return r["a"].log_text().find("cluster_member_left name=c ", stop_mark)
               != std::string::npos;
    });
    r["c"].kill(SIGCONT);
    REQUIRE(dropped);
    // One backup for c, on a's first slot, in sync; each live has one, each node runs one.
    REQUIRE(wait_until(in(std::chrono::seconds(90)), [&] {
        return instance_role(r["c"], "c") == "live"
               && instance_node_id(r["a"], "colocated_backup_1") == c_id
               && instance_role(r["a"], "colocated_backup_1") == "backup" && r.balanced();
    }));
    auto tail = r["a"].log_text().substr(mark) + r["c"].log_text();
    MESSAGE("handed back: ", tail.find("existing=true") != std::string::npos,
            ", gave way: ", tail.find("replication_superseded") != std::string::npos);
    auto t = count(want, drain(r.stomp["c"], "/queue/big"));
    CHECK(t.lost == 0);
    CHECK(t.duplicated == 0);
    CHECK(t.unexpected == 0);
}

} // namespace actormq::test
