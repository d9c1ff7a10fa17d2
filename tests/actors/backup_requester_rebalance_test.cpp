// SPDX-License-Identifier: Apache-2.0
// The colocated backup requester's moves (docs/ha.md, "Rebalancing" and "An unpaired colocated
// backup gives way") on CAF's test coordinator, with the rig of backup_requester_test.cpp
// (tests/support/requester_rig.hpp): where a backup moves once the ring is at rest, what a
// host's unpaired instance of the asker's node id becomes, and when a live that refused a move
// is asked again.
#include "support/requester_rig.hpp"

using namespace actormq;
using namespace actormq::test::rig;

// -- rebalancing after a failback (docs/ha.md, "Rebalancing") -------------------------------------

namespace {

/// c's backup on b (spawned by c's requester, slot 2 there) beside a's backup on b, b's on c and
/// none on a: the ring after a failback of a when c's backup had moved to b meanwhile.
std::vector<cluster::member_info> after_failback(const std::string& a_role = "live",
                                                 const std::string& stand_in_role = "backup") {
    return {member("a", a_role, 101), member("b", "live", 102),
            colocated("a", "b", 103, stand_in_role, 1), colocated("c", "b", 104, "backup", 2),
            colocated("b", "c", 106, "backup", 1)};
}

/// c ("me" is named c) asks b, which grants: c's backup runs on b.
void backed_up_on_b(fixture& f) {
    f.show({member("b", "live", 102)}, "live", "c");
    REQUIRE(f.rec.asked == std::vector<std::string>{"127.0.0.1:102"});
    f.cluster_answers("grant");
    f.middleman_answers("spawn");
    REQUIRE(f.state().now == phase::backed_up);
}

} // namespace

TEST_CASE_FIXTURE(fixture,
                  "backup requester: rebalance: a backup on a host that runs two while a live "
                  "runs none moves there after a quiet retry interval; the old one is released "
                  "only once the new one is spawned") {
    backed_up_on_b(*this);
    show(after_failback(), "live", "c");
    CHECK(rec.asked.size() == 1); // not at once: the ring may still be moving
    advance(4s);
    run();
    show(after_failback(), "live", "c"); // a change re-arms the quiet interval
    advance(4s);
    run();
    CHECK(rec.asked.size() == 1);
    advance(1s);
    run();
    REQUIRE(rec.asked.size() == 2);
    CHECK(rec.asked.back() == "127.0.0.1:101");
    cluster_answers("grant");
    REQUIRE(rec.spawned.size() == 2);
    CHECK(rec.released.empty()); // still backed up by the old one while the new one starts
    middleman_answers("spawn");
    CHECK(rec.released == std::vector<size_t>{0});
    CHECK(state().backup == rec.backups.back());
    CHECK(state().backup_host == "127.0.0.1:101");
    CHECK(state().now == phase::backed_up);
    // The ring is whole: a runs c's backup, b a's, c b's. Nothing moves any more.
    show({member("a", "live", 101), member("b", "live", 102), colocated("a", "b", 103),
          colocated("c", "a", 107), colocated("b", "c", 106)},
         "live", "c");
    advance(30s);
    run();
    CHECK(rec.asked.size() == 2);
    CHECK(rec.released.size() == 1);
}

TEST_CASE_FIXTURE(fixture,
                  "backup requester: rebalance: nothing moves while a stand-in serves, or twice "
                  "to a live that refused until it rejoins") {
    backed_up_on_b(*this);
    // a's stand-in still serves on b (a has not failed back): not at rest.
    show(after_failback("backup", "live"), "live", "c");
    advance(30s);
    run();
    CHECK(rec.asked.size() == 1);
    // At rest: a (c's ring neighbour, running none) asked once; refused, the backup stays
    // where it was.
    show(after_failback(), "live", "c");
    advance(5s);
    run();
    REQUIRE(rec.asked.size() == 2);
    cluster_answers("refuse");
    CHECK(state().backup_host == "127.0.0.1:102");
    CHECK(rec.released.empty());
    show(after_failback(), "live", "c");
    advance(30s);
    run();
    CHECK(rec.asked.size() == 2);
    // a leaves and comes back: it may have room now.
    show({member("b", "live", 102), colocated("c", "b", 104, "backup", 2),
          colocated("b", "c", 106, "backup", 1)},
         "live", "c");
    show(after_failback(), "live", "c");
    advance(5s);
    run();
    CHECK(rec.asked.size() == 3);
}

TEST_CASE_FIXTURE(fixture,
                  "backup requester: a backup spawned while the old one paired again goes; the "
                  "old one is this node's backup") {
    // A failback: the stand-in that gave way restarts as this node's backup and announces the
    // node id only once it syncs; a request in between spawned a second backup, which the
    // live, replicating to one backup, never pairs.
    show({member("a", "live", 101)});
    cluster_answers("grant");
    middleman_answers("spawn");
    REQUIRE(state().now == phase::backed_up);
    REQUIRE(state().backup);
    // The spawned backup itself (on a) showing up as this node's backup changes nothing.
    show({member("a", "live", 101), colocated("me", "a", 103)});
    CHECK(rec.released.empty());
    CHECK(state().backup);
    // A member on another host backs up this node id: the spawned one is released.
    show({member("a", "live", 101), colocated("me", "c", 104)});
    CHECK(rec.released == std::vector<size_t>{0});
    CHECK_FALSE(state().backup);
    CHECK(state().adopted == "127.0.0.1:104");
    CHECK(state().now == phase::backed_up);
    // It stays this node's backup: nothing is asked for while it is there.
    show({member("a", "live", 101), colocated("me", "c", 104)});
    CHECK(rec.asked.size() == 1);
}

TEST_CASE_FIXTURE(fixture,
                  "backup requester: rebalance: a backup that went elsewhere while the ring "
                  "neighbour was down moves back to it when it is a member again, and never "
                  "away from it") {
    // b's neighbour c is down: b's backup goes to a.
    show({member("a", "live", 101)}, "live", "b");
    cluster_answers("grant");
    middleman_answers("spawn");
    REQUIRE(state().backup_host == "127.0.0.1:101");
    // c is back and failed back; a runs b's backup, b runs a's and c's: a is one above c's
    // none, which the imbalance rule alone leaves as it is.
    auto back = std::vector<cluster::member_info>{
        member("a", "live", 101), member("c", "live", 103), colocated("b", "a", 104, "backup", 2),
        colocated("a", "b", 105), colocated("c", "b", 106, "backup", 2)};
    show(back, "live", "b");
    advance(5s);
    run();
    REQUIRE(rec.asked.size() == 2);
    CHECK(rec.asked.back() == "127.0.0.1:103");
    cluster_answers("grant");
    middleman_answers("spawn");
    CHECK(rec.released == std::vector<size_t>{0});
    CHECK(state().backup_host == "127.0.0.1:103");
    // On the neighbour it stays, even where another live runs two fewer than c.
    show({member("a", "live", 101), member("c", "live", 103), colocated("b", "c", 107),
          colocated("x", "c", 108, "backup", 2), colocated("y", "c", 109, "backup", 3)},
         "live", "b");
    advance(30s);
    run();
    CHECK(rec.asked.size() == 2);
    CHECK(rec.released.size() == 1);
}

TEST_CASE_FIXTURE(fixture,
                  "backup requester: rebalance: away from the ring neighbour (which refused), "
                  "only to a live that runs at least two fewer than the backup's host") {
    // me = c; ring order d, a, b: d (the neighbour) is down at first, so c's backup goes to b.
    show({member("a", "live", 101), member("b", "live", 102), colocated("x", "a", 108),
          colocated("y", "b", 109)},
         "live", "c");
    cluster_answers("refuse"); // a (ring order among equals: a before b)
    cluster_answers("grant");  // b
    middleman_answers("spawn");
    REQUIRE(state().backup_host == "127.0.0.1:102");
    // d joins and refuses: it is not asked again until it rejoins.
    auto with_d = std::vector<cluster::member_info>{
        member("a", "live", 101), member("b", "live", 102), member("d", "live", 104),
        colocated("x", "a", 108), colocated("y", "b", 109), colocated("c", "b", 110, "backup", 2)};
    show(with_d, "live", "c");
    advance(5s);
    run();
    REQUIRE(rec.asked.size() == 3);
    CHECK(rec.asked.back() == "127.0.0.1:104");
    cluster_answers("refuse");
    // b runs two, a one and d none: d (two fewer) was asked; a (one fewer) is not.
    show(with_d, "live", "c");
    advance(30s);
    run();
    CHECK(rec.asked.size() == 3);
    CHECK(state().backup_host == "127.0.0.1:102");
}

TEST_CASE_FIXTURE(fixture,
                  "backup requester: after a failback the stand-in still announced as live with "
                  "this node id is taken as its backup: nothing is asked for while it restarts "
                  "and pairs; asked again only when it leaves") {
    // The stand-in on a gave way and restarts as a backup; it announces that only once it
    // syncs, so the topology still shows it serving this node id.
    show({member("a", "live", 101), member("b", "live", 102), colocated("me", "a", 103, "live")});
    CHECK(rec.asked.empty());
    CHECK(state().now == phase::backed_up);
    CHECK(state().adopted == "127.0.0.1:103");
    show({member("a", "live", 101), member("b", "live", 102),
          colocated("me", "a", 103, "starting")});
    show({member("a", "live", 101), member("b", "live", 102), colocated("me", "a", 103)});
    CHECK(rec.asked.empty());
    CHECK(state().now == phase::backed_up);
    // It ended (restart-backup = false): a backup is asked for.
    show({member("a", "live", 101), member("b", "live", 102)});
    CHECK(rec.asked.size() == 1);
}

// -- a host's unpaired instance of the node id (docs/ha.md, "An unpaired colocated backup gives
// way")
// --------------------------------------------------------------------------------------------

TEST_CASE_FIXTURE(fixture,
                  "backup requester: a host that runs an unpaired instance of this node id hands "
                  "it over: nothing is spawned, it is this node's backup, and when it ends "
                  "another is asked for") {
    show({member("a", "live", 101), member("b", "live", 102)}, "live", "c");
    REQUIRE(rec.asked == std::vector<std::string>{"127.0.0.1:101"});
    cluster_answers("existing");
    CHECK(rec.spawned.empty());
    CHECK(state().now == phase::backed_up);
    CHECK(state().backup == rec.backups.at(0));
    CHECK(state().backup_host == "127.0.0.1:101");
    CHECK(state().backup_slot == 1);
    caf::anon_send_exit(rec.backups.at(0), caf::exit_reason::kill);
    run();
    CHECK(rec.asked.back() == "127.0.0.1:102");
}

TEST_CASE_FIXTURE(fixture,
                  "backup requester: rebalance: the ring neighbour hands over its unpaired "
                  "instance of this node id: the backup moves to it without a spawn, the old one "
                  "is released") {
    backed_up_on_b(*this);
    // a is back; it runs an instance of no node id announced (c's, unpaired, as far as the
    // host knows: the test's cluster answers for it).
    show({member("a", "live", 101), member("b", "live", 102), colocated("", "a", 108)}, "live",
         "c");
    advance(5s);
    run();
    REQUIRE(rec.asked.size() == 2);
    CHECK(rec.asked.back() == "127.0.0.1:101");
    cluster_answers("existing");
    CHECK(rec.spawned.size() == 1); // b's, at the start: nothing for the move
    CHECK(rec.released == std::vector<size_t>{0});
    CHECK(state().backup == rec.backups.at(1));
    CHECK(state().backup_host == "127.0.0.1:101");
    CHECK_FALSE(state().moving);
}

TEST_CASE_FIXTURE(fixture,
                  "backup requester: rebalance: a backup in the neighbour's second slot moves "
                  "to its first once that is free, and not before") {
    // a (c's neighbour) runs b's backup in its first slot, b runs a's: c's goes to a's second.
    show({member("a", "live", 101), member("b", "live", 102), colocated("b", "a", 105),
          colocated("a", "b", 104)},
         "live", "c");
    REQUIRE(rec.asked == std::vector<std::string>{"127.0.0.1:101"});
    cluster_answers("grant2");
    middleman_answers("spawn");
    REQUIRE(state().backup_slot == 2);
    show({member("a", "live", 101), member("b", "live", 102), colocated("b", "a", 105),
          colocated("a", "b", 104), colocated("c", "a", 106, "backup", 2)},
         "live", "c");
    advance(30s);
    run();
    CHECK(rec.asked.size() == 1);
    // b's backup moved away from a: the first slot is free.
    show({member("a", "live", 101), member("b", "live", 102), colocated("a", "b", 104),
          colocated("c", "a", 106, "backup", 2), colocated("b", "c", 107)},
         "live", "c");
    advance(5s);
    run();
    REQUIRE(rec.asked.size() == 2);
    CHECK(rec.asked.back() == "127.0.0.1:101");
    cluster_answers("grant");
    middleman_answers("spawn");
    CHECK(rec.released == std::vector<size_t>{0});
    CHECK(state().backup == rec.backups.at(1));
    CHECK(state().backup_slot == 1);
    CHECK(state().released_on.empty()); // the same host: what runs there still counts
}

TEST_CASE_FIXTURE(fixture,
                  "backup requester: rebalance: a live that refused a move is asked again once "
                  "it runs fewer colocated backups") {
    backed_up_on_b(*this);
    // a, the neighbour, runs an instance that holds its only slot (full).
    auto with_orphan = after_failback();
    with_orphan.push_back(colocated("", "a", 108));
    show(with_orphan, "live", "c");
    advance(5s);
    run();
    REQUIRE(rec.asked.size() == 2);
    cluster_answers("refuse");
    show(with_orphan, "live", "c");
    advance(30s);
    run();
    CHECK(rec.asked.size() == 2);
    // That instance ended (superseded): a runs none now.
    show(after_failback(), "live", "c");
    advance(5s);
    run();
    CHECK(rec.asked.size() == 3);
    CHECK(rec.asked.back() == "127.0.0.1:101");
}

TEST_CASE("colocated: an instance is superseded by another colocated instance that announces "
          "itself the backup of its live's node id, unless it announces a node id itself") {
    auto t = cluster::topology{};
    t.members = {member("a", "live", 101), colocated("", "a", 103), // the instance, unpaired
                 colocated("c", "b", 104, "backup", 2)};
    const std::string me = "127.0.0.1:103";
    CHECK(superseding_member(t, me, "id-c") == "colocated_backup_2@127.0.0.1:104");
    CHECK(superseding_member(t, me, "id-x").empty()); // another node id
    CHECK(superseding_member(t, me, "").empty());
    // Paired (announces the node id), or serving it: not superseded.
    t.members[1] = colocated("c", "a", 103);
    CHECK(superseding_member(t, me, "id-c").empty());
    t.members[1] = colocated("c", "a", 103, "live");
    CHECK(superseding_member(t, me, "id-c").empty());
    // The other one only syncing or waiting (no node id announced): not superseded.
    t.members[1] = colocated("", "a", 103);
    t.members[2] = colocated("", "b", 104, "backup", 2);
    CHECK(superseding_member(t, me, "id-c").empty());
    // A live of that node id is no backup.
    t.members[2] = member("c", "live", 105);
    CHECK(superseding_member(t, me, "id-c").empty());
    // Nor is a node's own server announced as its backup: the primary syncing to fail back,
    // whose backup the instance that gave way is to become.
    t.members[2] = member("c", "backup", 105);
    t.members[2].node_id = "id-c";
    CHECK(superseding_member(t, me, "id-c").empty());
}

TEST_CASE_FIXTURE(fixture,
                  "backup requester: rebalance: a move whose request timed out (its answer lost "
                  "with a dropped link) is tried again after the next quiet retry interval; a "
                  "refusal only once a grant's lifetime has passed") {
    backed_up_on_b(*this);
    show(after_failback(), "live", "c");
    advance(5s);
    run();
    REQUIRE(rec.asked.size() == 2); // a, c's ring neighbour
    // No answer: the request times out after settings().timeout.
    rec.requests.clear();
    advance(10s);
    run();
    CHECK_FALSE(state().moving);
    CHECK(state().backup_host == "127.0.0.1:102");
    // Asked again with no topology change: the failure itself arms the quiet interval (the
    // process test's ring once sat 80 s with nothing changing after such a timeout).
    advance(5s);
    run();
    REQUIRE(rec.asked.size() == 3);
    CHECK(rec.asked.back() == "127.0.0.1:101");
    cluster_answers("refuse");
    show(after_failback(), "live", "c");
    advance(25s);
    run();
    CHECK(rec.asked.size() == 3);
    // Unless a grant's lifetime has passed: the slots the live had promised to others that
    // never redeemed them are free again, and nothing in the topology would tell.
    advance(colocation_grant_lifetime);
    run();
    advance(5s); // the quiet retry interval
    run();
    CHECK(rec.asked.size() == 4);
}
