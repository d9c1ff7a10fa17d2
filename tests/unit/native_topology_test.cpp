// SPDX-License-Identifier: Apache-2.0
// The native topology (docs/protocol.md §12) as a node builds it: the cluster's members grouped
// by node id with their native acceptors, and the feed that versions and pushes it.
#include "actors/native/topology_feed.hpp"
#include "cluster/cluster.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <vector>

namespace actormq {

namespace {

cluster::member_info member(const std::string& name,
                            const std::string& node_id,
                            const std::string& role,
                            std::vector<std::string> native) {
    cluster::member_info m;
    m.name = name;
    m.node_id = node_id;
    m.role = role;
    m.connector = name + ":61613";
    m.native_connectors = std::move(native);
    return m;
}

native::topology_member
group(const std::string& node_id, const std::string& live, const std::string& backup) {
    return native::topology_member{node_id, live, backup};
}

} // namespace

TEST_CASE("native topology: members grouped by node id with their first native acceptor") {
    cluster::topology t;
    t.members = {
        member("b1", "id-1", "backup", {"b1:1", "b1:2"}),
        member("l1", "id-1", "live", {"l1:1"}),
        member("l2", "id-2", "live", {"l2:1"}),
        member("s", "id-3", "starting", {"s:1"}),    // not serving yet
        member("x", "", "live", {"x:1"}),            // no node id: nothing to group under
        member("stomp", "id-4", "live", {}),         // no native acceptor
        member("b1bis", "id-1", "backup", {"b9:1"}), // a second backup: the first one is named
    };
    auto groups = t.native_groups();
    REQUIRE(groups.size() == 2);
    CHECK(groups[0].node_id == "id-1"); // in member order: this node's group first
    CHECK(groups[0].live == "l1:1");
    CHECK(groups[0].backup == "b1:1");
    CHECK(groups[1].node_id == "id-2");
    CHECK(groups[1].live == "l2:1");
    CHECK(groups[1].backup.empty());
}

TEST_CASE("native topology: the feed versions each change by the clock and tells subscribers") {
    native_topology_feed feed;
    CHECK_FALSE(feed.current().has_value()); // never set: no cluster

    std::vector<native::topology> seen;
    auto id = feed.subscribe([&seen](const native::topology& t) { seen.push_back(t); });
    auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    feed.set({group("id-1", "l:1", "")});
    REQUIRE(seen.size() == 1);
    // Clock-based, so a backup's topology made later compares as newer than its live's.
    CHECK(seen[0].version >= static_cast<uint64_t>(before));

    feed.set({group("id-1", "l:1", "")}); // unchanged: no push
    CHECK(seen.size() == 1);

    feed.set({group("id-1", "l:1", "b:1")});
    REQUIRE(seen.size() == 2);
    CHECK(seen[1].version > seen[0].version);
    CHECK(seen[1].members[0].backup == "b:1");
    REQUIRE(feed.current().has_value());
    CHECK(feed.current()->version == seen[1].version);

    feed.unsubscribe(id);
    feed.set({group("id-1", "b:1", "")});
    CHECK(seen.size() == 2);
    CHECK(feed.current()->members[0].live == "b:1");
}

} // namespace actormq
