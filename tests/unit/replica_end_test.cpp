// SPDX-License-Identifier: Apache-2.0
// The replica and its live journal's end message (actors/replication/replica.cpp, end_atom in
// actors/replication/messages.hpp): a real replica writing to a temporary directory, a scoped
// actor in the journal's place. The rules: the end of the pairing's journal after every batch
// it sent arrived is the live gone (reported once, whatever the down message does after); an
// end naming a batch that never arrived fails the replica; an end from anyone else, or of
// another epoch, changes nothing.
#include "actors/replication/messages.hpp"
#include "actors/replication/replica.hpp"
#include "support/temp_dir.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

using namespace actormq;
using namespace std::chrono_literals;

namespace {

using scratch_dir = actormq::test::temp_dir;

/// A replica owned by `owner` (which gets its reports), and `n` empty batches of epoch 1 sent
/// to it by `journal`.
caf::actor replica_with_batches(caf::actor_system& sys,
                                const scratch_dir& dir,
                                caf::scoped_actor& owner,
                                caf::scoped_actor& journal,
                                uint64_t n) {
    replication::replica_setup rs;
    rs.directory = dir.path;
    rs.owner = owner;
    rs.log = std::make_shared<spdlog::logger>("replica-test");
    auto replica = replication::spawn_replica(sys, rs);
    for (uint64_t seq = 1; seq <= n; ++seq) {
        replication::batch b;
        b.epoch = 1;
        b.seq = seq;
        journal->send(replica, replication::data_atom::value, b);
    }
    return replica;
}

/// The next report of the replica to `owner` other than progress, or nullopt within `wait`
/// (each progress report waits `wait` again: a replica writes a few at most).
std::optional<replication::replica_report> next_report(caf::scoped_actor& owner,
                                                       caf::timespan wait = 5s) {
    for (;;) {
        std::optional<replication::replica_report> out;
        bool timed_out = false;
        owner->receive([&](replication::report_atom, replication::replica_report& r) { out = r; },
                       caf::after(wait) >> [&] { timed_out = true; });
        if (timed_out || (out && out->kind != replication::replica_report::progress)) {
            return out;
        }
    }
}

} // namespace

TEST_CASE("replica: the journal's end after its last batch is the live gone, reported once; an "
          "end from another actor or epoch changes nothing") {
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    scratch_dir dir;
    caf::scoped_actor owner{sys};
    auto journal = std::make_unique<caf::scoped_actor>(sys);
    caf::scoped_actor stranger{sys};
    auto replica = replica_with_batches(sys, dir, owner, *journal, 3);
    stranger->send(replica, replication::end_atom::value, uint64_t{1}, uint64_t{3});
    (*journal)->send(replica, replication::end_atom::value, uint64_t{2}, uint64_t{3});
    CHECK_FALSE(next_report(owner, 300ms).has_value());
    (*journal)->send(replica, replication::end_atom::value, uint64_t{1}, uint64_t{3});
    auto r = next_report(owner);
    REQUIRE(r.has_value());
    CHECK(r->kind == replication::replica_report::lost);
    // The journal's down message after it (the journal actor ends): nothing more.
    journal.reset();
    CHECK_FALSE(next_report(owner, 300ms).has_value());
    caf::anon_send_exit(replica, caf::exit_reason::user_shutdown);
}

TEST_CASE("replica: an end naming a batch that never arrived fails the replica: it does not hold "
          "the whole journal") {
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    scratch_dir dir;
    caf::scoped_actor owner{sys};
    caf::scoped_actor journal{sys};
    auto replica = replica_with_batches(sys, dir, owner, journal, 2);
    journal->send(replica, replication::end_atom::value, uint64_t{1}, uint64_t{4});
    auto r = next_report(owner);
    REQUIRE(r.has_value());
    CHECK(r->kind == replication::replica_report::failed);
    // Without the end message the same journal's down message would have said "lost".
    caf::anon_send_exit(replica, caf::exit_reason::user_shutdown);
}
