// SPDX-License-Identifier: Apache-2.0
// The ring of three colocated nodes with real processes (examples/colocated/, docs/ha.md
// "Walk-through: a ring of three"): a, b and c back each other up, survive a SIGKILL of each in
// turn with failback, a node frozen past connection-timeout-ms does not let the backup it runs
// take over a live neighbour, and a colocated backup that took over (a stand-in) gets a backup
// of its own, survives a second failure and gives way when its node comes back.
#include "support/colocated_ring.hpp"

#include <csignal>

namespace actormq::test {

TEST_CASE("colocated: ring: three nodes started one after another form the ring a->b->c->a "
          "(each waits for the cluster to settle before it asks)") {
    ring r;
    for (const auto& n : r.names) {
        r.start(n);
    }
    INFO(r.tails());
    for (const auto& n : r.names) {
        REQUIRE(log_shows(r[r.next(n)],
                          "colocated_instance_started instance=colocated_backup_1 live=" + n));
    }
    REQUIRE(wait_until(in(std::chrono::seconds(30)), [&] { return r.whole(); }));
}

TEST_CASE("colocated: ring: a node that starts after the other two backed each other up gets a "
          "backup (max-backups 1): its ring predecessor moves its backup to it, which frees a "
          "slot on the first") {
    ring r;
    r.start("a");
    r.start("b");
    INFO(r.tails());
    // Without c the settle wait ends on its quiet time and a and b back each other up.
    REQUIRE(wait_until(in(std::chrono::seconds(30)), [&] {
        return r["a"].log_text().find("colocated_instance_started instance=colocated_backup_1 "
                                      "live=b")
                   != std::string::npos
               && r["b"].log_text().find("colocated_instance_started instance=colocated_backup_1 "
                                         "live=a")
                      != std::string::npos;
    }));
    r.start("c");
    INFO(r.tails());
    // c is refused by both (max-backups 1); b, whose ring neighbour c now is, moves its backup
    // there; a's slot is free and c's next request gets it.
    REQUIRE(log_shows(r["b"], "colocated_backup_moved"));
    REQUIRE(wait_until(in(std::chrono::seconds(30)), [&] { return r.balanced(); }));
    for (const auto& n : r.names) {
        CHECK(r[r.next(n)].log_text().find(
                  "colocated_instance_started instance=colocated_backup_1 live=" + n)
              != std::string::npos);
    }
}

TEST_CASE("colocated: ring: SIGKILL of each node in turn: its neighbour's colocated backup takes "
          "over, the node fails back when it returns, and the ring is whole again; every "
          "confirmed message exactly once") {
    ring r;
    INFO(r.tails());
    r.start_whole();
    // One producer per node, with the node's port and its backup's (offset) port as host list;
    // duplicate ids make every resend after a failover safe.
    std::map<std::string, std::unique_ptr<producer>> producers;
    for (const auto& n : r.names) {
        producers[n] = std::make_unique<producer>(
            "/queue/ring-" + n,
            std::vector<uint16_t>{r.stomp[n], static_cast<uint16_t>(r.stomp[n] + ring::offset)},
            n + "-");
        REQUIRE(producers[n]->wait_more(50));
    }
    for (const auto& victim : r.names) {
        CAPTURE(victim);
        auto host = r.next(victim);
        r[victim].kill(SIGKILL);
        REQUIRE(r[victim].wait_exit(soon()).has_value());
        // The neighbour's colocated backup takes over and the victim's producer carries on
        // there; the other producers do not stop.
        REQUIRE(wait_until(in(std::chrono::seconds(20)), [&] {
            return instance_role(r[host], "colocated_backup_1") == "backup-active";
        }));
        for (const auto& n : r.names) {
            REQUIRE(producers[n]->wait_more(20, in(std::chrono::seconds(20))));
        }
        // Back on its journal and ports: it syncs from the colocated backup that serves its
        // node id, takes it back, and that backup waits as its backup again.
        r.start(victim);
        REQUIRE(log_shows(r[victim], "replication_found_served"));
        REQUIRE(wait_until(in(std::chrono::seconds(30)), [&] { return r.whole(); }));
        CHECK(r[victim].log_text().find("detail=\"failback\"") != std::string::npos);
        for (const auto& n : r.names) {
            REQUIRE(producers[n]->wait_more(20, in(std::chrono::seconds(20))));
        }
    }
    for (const auto& n : r.names) {
        producers[n]->stop();
    }
    size_t confirmed = 0;
    for (const auto& n : r.names) {
        auto want = producers[n]->confirmed();
        auto seen = drain(r.stomp[n], "/queue/ring-" + n);
        confirmed += want.size();
        auto t = count(want, seen);
        CAPTURE(n);
        CHECK(t.lost == 0);
        CHECK(t.duplicated == 0);
        CHECK(t.unexpected == 0);
    }
    MESSAGE("ring: ", confirmed, " confirmed messages over three kills");
}

TEST_CASE("colocated: ring: a node frozen past connection-timeout-ms loses its links to both "
          "others at once; when it thaws, the backup it runs for a live neighbour does not take "
          "that neighbour's node id on its host's vote alone") {
    ring r;
    INFO(r.tails());
    r.start_whole();
    // a runs c's backup (a -> b -> c -> a: each node's backup on the next).
    auto c_id = instance_node_id(r["c"], "c");
    REQUIRE(!c_id.empty());
    REQUIRE(instance_node_id(r["a"], "colocated_backup_1") == c_id);
    auto b_left = [&] {
        return r["b"].log_text().find("cluster_member_left name=a ");
    };
    auto c_left = [&] {
        return r["c"].log_text().find("cluster_member_left name=a ");
    };
    r["a"].kill(SIGSTOP);
    // b and c drop a after connection-timeout-ms without a heart-beat, and b's backup for a
    // takes a's node id over, by b's and c's votes.
    bool dropped = wait_until(in(std::chrono::seconds(20)), [&] {
        return b_left() != std::string::npos && c_left() != std::string::npos
               && instance_role(r["b"], "colocated_backup_1") == "backup-active";
    });
    r["a"].kill(SIGCONT);
    REQUIRE(dropped);
    // Thawed, a finds its links to b and c closed; its backup for c loses its live and votes.
    // Its host a agrees c is gone (it lost c too), but b's process, lost at the same moment
    // and serving another node id, could still answer: the vote is lost, never won (its
    // counts show lives_in_process=1, unless a's own live learned first that b took its node
    // id over and answered as a live no more).
    auto marker = "node_id=" + c_id + " detail=";
    REQUIRE(wait_until(in(std::chrono::seconds(20)), [&] {
        auto text = r["a"].log_text();
        return text.find("replication_vote_lost " + marker) != std::string::npos
               || text.find("replication_activating " + marker) != std::string::npos;
    }));
    CHECK(r["a"].log_text().find("replication_activating " + marker) == std::string::npos);
    // a's own live finds b's backup serving its node id with a newer activation sequence and
    // stops (docs/replication.md); restarted, a fails back and the ring is whole again. c
    // served throughout and never had to step down.
    REQUIRE(r["a"].wait_exit(in(std::chrono::seconds(20))).has_value());
    auto first_life = r["a"].log_text();
    CHECK(first_life.find("replication_stepping_down") != std::string::npos);
    CHECK(first_life.find("replication_activating " + marker) == std::string::npos);
    CHECK(first_life.find("replication_live " + marker) == std::string::npos);
    r.start("a");
    REQUIRE(wait_until(in(std::chrono::seconds(60)), [&] { return r.whole(); }));
    CHECK(r["c"].log_text().find("replication_stepping_down") == std::string::npos);
    CHECK(instance_node_id(r["c"], "c") == c_id);
}

// -- a colocated backup that took over asks for a backup of its own (docs/ha.md, "Stand-ins") ----

namespace {

/// A ring with max-backups 2 under one producer per node id, whose host list names every
/// place that node id can be served: the node, its colocated backup on the next node (P +
/// offset) and the stand-in's backup on the node after (P + 3 x offset). Kills a and waits
/// until b's colocated_backup_1 serves a's node id and has its own backup, colocated_backup_2
/// on c, in sync.
struct stand_in_ring {
    ring r;
    std::map<std::string, std::unique_ptr<producer>> producers;

    explicit stand_in_ring(const std::string& store = "replication") : r(2, store) {
        r.start_whole();
        for (const auto& n : r.names) {
            auto p = r.stomp[n];
            producers[n] = std::make_unique<producer>(
                "/queue/ring-" + n,
                std::vector<uint16_t>{p, static_cast<uint16_t>(p + ring::offset),
                                      static_cast<uint16_t>(p + 3 * ring::offset)},
                n + "-");
            REQUIRE(producers[n]->wait_more(30));
        }
        r["a"].kill(SIGKILL);
        REQUIRE(r["a"].wait_exit(soon()).has_value());
        REQUIRE(wait_until(in(std::chrono::seconds(20)), [&] {
            return instance_role(r["b"], "colocated_backup_1") == "backup-active";
        }));
        // The stand-in asks c (never b, its host): c runs it as its colocated_backup_2, on
        // the stand-in's port shifted again, and b's log shows the stand-in's journal in sync.
        // (b's own requester logged the first such line when the ring formed.)
        REQUIRE(log_shows(
            r["b"], "colocated_backup_started host=127.0.0.1:" + std::to_string(r.cluster["c"]),
            2));
        REQUIRE(log_shows(r["c"], "colocated_instance_started instance=colocated_backup_2 live=a"));
        CHECK(r["c"].log_text().find("stomp=127.0.0.1:"
                                     + std::to_string(r.stomp["a"] + 3 * ring::offset))
              != std::string::npos);
        if (store_is_shared()) {
            // On a shared store the stand-in's backup waits on a's directory, whose live lock
            // the stand-in holds.
            REQUIRE(log_shows(r["c"], "journal=" + r.dirs["a"]->path + "/journal "));
            REQUIRE(wait_until(
                soon(), [&] { return instance_role(r["c"], "colocated_backup_2") == "backup"; }));
        } else {
            REQUIRE(log_shows(r["b"], "replication_in_sync backup=colocated_backup_2"));
        }
        for (const auto& n : r.names) {
            REQUIRE(producers[n]->wait_more(20, in(std::chrono::seconds(20))));
        }
    }

    bool store_is_shared() const { return r.store == "shared-store"; }

    /// Stops the producers and drains each node id's queue from `ports` (by node): every
    /// confirmed message exactly once.
    void verdict(const std::map<std::string, uint16_t>& ports) {
        for (const auto& n : r.names) {
            producers[n]->stop();
        }
        size_t confirmed = 0;
        for (const auto& n : r.names) {
            auto want = producers[n]->confirmed();
            confirmed += want.size();
            auto t = count(want, drain(ports.at(n), "/queue/ring-" + n));
            CAPTURE(n);
            CHECK(t.lost == 0);
            CHECK(t.duplicated == 0);
            CHECK(t.unexpected == 0);
        }
        MESSAGE("stand-in ring: ", confirmed, " confirmed messages");
    }
};

} // namespace

namespace {

/// A stand-in on b serves a's node id; then b is SIGKILLed too.
void second_failure(const std::string& store) {
    stand_in_ring s{store};
    auto& r = s.r;
    INFO(r.tails());
    // b dies too: b's node id fails over to its colocated backup on c, a's to the stand-in's
    // backup on c.
    r["b"].kill(SIGKILL);
    REQUIRE(r["b"].wait_exit(soon()).has_value());
    REQUIRE(wait_until(in(std::chrono::seconds(20)), [&] {
        return instance_role(r["c"], "colocated_backup_1") == "backup-active"
               && instance_role(r["c"], "colocated_backup_2") == "backup-active";
    }));
    for (const auto& n : r.names) {
        REQUIRE(s.producers[n]->wait_more(20, in(std::chrono::seconds(20))));
    }
    s.verdict({{"a", static_cast<uint16_t>(r.stomp["a"] + 3 * ring::offset)},
               {"b", static_cast<uint16_t>(r.stomp["b"] + ring::offset)},
               {"c", r.stomp["c"]}});
}

} // namespace

TEST_CASE("colocated: stand-in: a colocated backup that took over gets a backup of its own on "
          "another node; a second SIGKILL (its host) leaves every node id served, every "
          "confirmed message exactly once") {
    second_failure("replication");
}

TEST_CASE("colocated: shared store: stand-in: the stand-in's backup waits on the node's own "
          "directory on the third node; a second SIGKILL (the stand-in's host) leaves every node "
          "id served, every confirmed message exactly once") {
    second_failure("shared-store");
}

TEST_CASE("colocated: stand-in: when the node comes back the stand-in releases its backup (it "
          "ends on its host), the node fails back, the stand-in is its backup again, and the "
          "ring rebalances: each live has exactly one backup, on another node") {
    stand_in_ring s;
    auto& r = s.r;
    INFO(r.tails());
    r.start("a");
    // a joins: the stand-in ends its extra backup, so that a can pair with it (a live
    // replicates to one backup at a time); the instance on c stops and frees its slot.
    REQUIRE(log_shows(r["b"], "colocated_backup_released"));
    REQUIRE(log_shows(r["c"], "colocated_instance_released instance=colocated_backup_2"));
    REQUIRE(log_shows(r["c"], "colocated_instance_stopped instance=colocated_backup_2"));
    REQUIRE(log_shows(r["a"], "detail=\"failback\""));
    REQUIRE(log_shows(r["a"], "replication_in_sync backup=colocated_backup_1"));
    REQUIRE(wait_until(in(std::chrono::seconds(20)), [&] {
        return instance_role(r["a"], "a") == "live"
               && instance_role(r["b"], "colocated_backup_1") == "backup";
    }));
    // Nothing serves a's node id but a: not the stand-in's old backup (ended), not the
    // stand-in (a backup again).
    auto role = instance_role(r["c"], "colocated_backup_2");
    CHECK((role.empty() || role == "gone"));
    CHECK(!stomp_serves(static_cast<uint16_t>(r.stomp["a"] + 3 * ring::offset)));
    CHECK(!stomp_serves(static_cast<uint16_t>(r.stomp["a"] + ring::offset)));
    // While a was down c's backup (it ran in a's process) went to b's second slot. The ring
    // rebalances: b runs two and a none, so c moves its backup to a and b's second one ends
    // (docs/ha.md, "Rebalancing"). Then each live has one backup, on another node.
    REQUIRE(
        log_shows(r["c"], "colocation_rebalance from=127.0.0.1:" + std::to_string(r.cluster["b"])
                              + " to=127.0.0.1:" + std::to_string(r.cluster["a"])));
    REQUIRE(log_shows(r["c"], "colocated_backup_moved"));
    REQUIRE(log_shows(r["b"], "colocated_instance_stopped instance=colocated_backup_2"));
    REQUIRE(log_shows(r["a"], "colocated_instance_started instance=colocated_backup_1 live=c"));
    REQUIRE(log_shows(r["c"], "replication_in_sync backup=colocated_backup_1", 2));
    CHECK(wait_until(in(std::chrono::seconds(30)), [&] { return r.whole() && r.balanced(); }));
    for (const auto& n : r.names) {
        REQUIRE(s.producers[n]->wait_more(20, in(std::chrono::seconds(20))));
    }
    s.verdict({{"a", r.stomp["a"]}, {"b", r.stomp["b"]}, {"c", r.stomp["c"]}});
}

} // namespace actormq::test
