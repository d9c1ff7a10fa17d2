// SPDX-License-Identifier: Apache-2.0
#pragma once

// The rig of the backup requester's tests (tests/actors/backup_requester*_test.cpp): a
// requester on CAF's test coordinator between a test cluster facade and a test middleman that
// hold each backup request and each spawn until the test answers them.

#include "actors/ha/colocation.hpp"
#include "support/deterministic.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/response_promise.hpp>
#include <doctest/doctest.h>

#include <deque>
#include <set>
#include <string>
#include <vector>

namespace actormq::test::rig {

using namespace std::chrono_literals;
using phase = backup_requester_state::phase;

using answer_atom = caf::atom_constant<caf::atom("answer")>;

/// What the test actors saw, and the requests they hold.
struct record {
    std::vector<std::string> asked;   ///< cluster addresses, in the order asked
    std::vector<std::string> spawned; ///< the host names of the spawns requested
    std::deque<std::pair<std::string, caf::response_promise>> requests;
    std::deque<std::pair<std::string, caf::response_promise>> spawns;
    std::vector<caf::actor> backups;
    /// The backups told to end (release_atom), by index into `backups`.
    std::vector<size_t> released;
    size_t most_held = 0;
};

/// A running backup: does nothing until it is ended.
inline caf::behavior test_backup(caf::event_based_actor*) {
    return {[](caf::tick_atom) {
    }};
}

/// A running backup that records a release (its index in `r->backups`).
inline caf::behavior recording_backup(caf::event_based_actor* self, record* r) {
    return {[=](cluster::release_atom) {
        auto me = caf::actor_cast<caf::actor>(self);
        for (size_t i = 0; i < r->backups.size(); ++i) {
            if (r->backups[i] == me) {
                r->released.push_back(i);
            }
        }
    }};
}

/// The cluster facade: holds backup requests; (answer_atom, "grant"|"grant2"|"existing"|
/// "refuse") answers the oldest ("grant2": slot 2; "existing": the host hands over an instance
/// it runs in slot 1, a new test actor).
inline caf::behavior test_cluster(caf::event_based_actor* self, record* r) {
    return {
        [=](cluster::backup_request_atom, const std::string& address) {
            r->asked.push_back(address);
            auto rp = self->make_response_promise();
            r->requests.emplace_back(address, rp);
            r->most_held = std::max(r->most_held, r->requests.size() + r->spawns.size());
            return rp;
        },
        [=](answer_atom, const std::string& how) {
            REQUIRE(!r->requests.empty());
            auto [address, rp] = r->requests.front();
            r->requests.pop_front();
            if (how == "grant" || how == "grant2") {
                uint32_t slot = how == "grant" ? 1 : 2;
                rp.deliver(cluster::backup_grant{"host@" + address, slot, 42},
                           self->system().node());
            } else if (how == "existing") {
                // The host runs an unpaired instance of the asker's node id (slot 1): that one.
                auto b = self->spawn(recording_backup, r);
                r->backups.push_back(b);
                rp.deliver(cluster::backup_grant{"host@" + address, 1, 0, b},
                           self->system().node());
            } else {
                rp.deliver(caf::make_error(cluster::cluster_errc::backups_full));
            }
        },
    };
}

/// The middleman: holds spawn requests; (answer_atom, "spawn"|"fail") answers the oldest.
inline caf::behavior test_middleman(caf::event_based_actor* self, record* r) {
    return {
        [=](caf::spawn_atom, const caf::node_id&, const std::string& type, const caf::message&,
            const std::set<std::string>&) {
            CHECK(type == cluster::colocated_actor_type);
            auto rp = self->make_response_promise();
            r->spawns.emplace_back(r->asked.empty() ? std::string{} : r->asked.back(), rp);
            r->spawned.push_back(r->asked.back());
            r->most_held = std::max(r->most_held, r->requests.size() + r->spawns.size());
            return rp;
        },
        [=](answer_atom, const std::string& how) {
            REQUIRE(!r->spawns.empty());
            auto rp = r->spawns.front().second;
            r->spawns.pop_front();
            if (how == "spawn") {
                auto b = self->spawn(recording_backup, r);
                r->backups.push_back(b);
                rp.deliver(caf::actor_cast<caf::strong_actor_ptr>(b));
            } else {
                rp.deliver(caf::make_error(caf::sec::cannot_spawn_actor_from_arguments));
            }
        },
    };
}

inline cluster::member_info member(const std::string& name, const std::string& role, int port) {
    return cluster::member_info{name,          role == "live" ? "id-" + name : "",  role,
                                "127.0.0.1:1", "127.0.0.1:" + std::to_string(port), 1};
}

/// The test actors around a requester, and what the tests do with them.
struct requester_rig : actormq::test::deterministic {
    record rec;
    caf::actor cluster = track(sys.spawn(test_cluster, &rec));
    caf::actor middleman = track(sys.spawn(test_middleman, &rec));
    caf::actor requester;

    /// The settings every case starts from: 5 s between rounds, 10 s per request, no settle
    /// wait (it has cases of its own below).
    static requester_settings settings() {
        requester_settings s;
        s.retry_interval = 5s;
        s.timeout = 10s;
        s.settle = 0ms;
        return s;
    }

    /// The topology `me` first, then `others`.
    void show_topology(cluster::member_info me, std::vector<cluster::member_info> others) {
        cluster::topology t;
        t.members.push_back(std::move(me));
        for (auto& m : others) {
            t.members.push_back(std::move(m));
        }
        caf::anon_send(requester, t);
        run();
    }

    void cluster_answers(const std::string& how) {
        caf::anon_send(cluster, answer_atom::value, how);
        run();
    }

    void middleman_answers(const std::string& how) {
        caf::anon_send(middleman, answer_atom::value, how);
        run();
    }

    const backup_requester_state& state() { return state_of<backup_requester_state>(requester); }
};

/// A node's own requester.
struct fixture : requester_rig {
    explicit fixture(int32_t retries = -1,
                     std::chrono::milliseconds settle = 0ms,
                     std::vector<std::string> expected = {}) {
        auto s = settings();
        s.retries = retries;
        s.settle = settle;
        s.expected = std::move(expected);
        requester =
            track(sys.spawn(backup_requester, s, cluster, middleman, cluster::colocated_spec{}));
        run();
    }

    /// This node (`my_name`, live on port 100) first, then `others`.
    void show(std::vector<cluster::member_info> others,
              const std::string& my_role = "live",
              const std::string& my_name = "me") {
        show_topology(member(my_name, my_role, 100), std::move(others));
    }
};

/// The live members a requester may ask in `t`, besides itself: what next_candidate() walks.
inline const std::vector<cluster::member_info> three_lives = {
    member("a", "live", 101), member("b", "live", 102), member("colocated_backup_1", "live", 103),
    member("c", "backup", 104), member("d", "live", 105)};

/// A member that backs up `live`'s node id, run by `host` (a colocated backup), in `role`.
inline cluster::member_info colocated(const std::string& live,
                                      const std::string& host,
                                      int port,
                                      const std::string& role = "backup",
                                      int slot = 1) {
    auto m = member("colocated_backup_" + std::to_string(slot), role, port);
    m.node_id = role == "backup" && live.empty() ? "" : "id-" + live;
    m.hosted_by = host;
    return m;
}

} // namespace actormq::test::rig
