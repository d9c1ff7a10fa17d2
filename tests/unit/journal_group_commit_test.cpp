// SPDX-License-Identifier: Apache-2.0
// The journal's group commit policy (docs/journal.md, "Group commit"): when a batch waits for
// company, and when the journal's thread stays awake for the next append. Pure state methods,
// no actor and no disk.
#include "actors/journal/journal.hpp"

#include <doctest/doctest.h>
#include <spdlog/logger.h>

using namespace actormq;
using namespace std::chrono_literals;

namespace {

/// A journal state with `waiting` appends that wait for the disk in its batch, which began
/// `age` before `now`, and whose last write + fdatasync took `sync`.
struct fixture {
    journal_state st;
    std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();

    fixture() {
        st.ctx = std::make_shared<server_context>();
        st.ctx->log = std::make_shared<spdlog::logger>("journal-group-commit-test");
        st.last_sync = 200us;
    }

    void batch(size_t waiting, std::chrono::microseconds age, size_t bytes = 1100) {
        st.batch.assign(bytes, 'x');
        st.batch_started = now - age;
        st.waiting.clear();
        st.waiting.resize(waiting);
    }
};

} // namespace

TEST_CASE("journal: group commit: a batch waits while fewer wait for it than for the last "
          "batches") {
    fixture f;
    f.st.note_answered(4);
    f.st.note_answered(2);
    // The larger of the last two (4) is what may come back: 3 are here, the fourth is awaited.
    f.batch(3, 50us);
    CHECK(f.st.gather_left(f.now) == 150us);
    f.batch(4, 50us);
    CHECK(f.st.gather_left(f.now) == 0ns);
    // Both of the last two count: two batches later the 4 are forgotten.
    f.st.note_answered(2);
    f.batch(2, 50us);
    CHECK(f.st.gather_left(f.now) == 0ns);
}

TEST_CASE("journal: group commit: producers' hooked appends go without waiting for ACKs, "
          "and ACKs wait for the next producer") {
    REQUIRE(journal_state::hooked_first());
    fixture f;
    auto hooked = [&f](size_t n) {
        for (size_t i = 0; i < n; ++i) {
            f.st.waiting[i].hook = std::make_shared<confirm_hook>();
        }
    };
    // Scenario B: one producer's SEND and the consumer's ACK shared the last batches.
    f.st.note_answered(2, 1);
    f.st.note_answered(2, 1);
    // The SEND is here, the ACK is not: the SEND goes now.
    f.batch(1, 50us);
    hooked(1);
    CHECK(f.st.gather_left(f.now) == 0ns);
    // Only the ACK: it waits for the producer's next SEND.
    f.batch(1, 50us);
    CHECK(f.st.gather_left(f.now) == 150us);
    // Even after batches with the SEND alone (one waiter), the ACK waits for the next SEND.
    f.st.note_answered(1, 1);
    f.st.note_answered(1, 1);
    f.batch(1, 50us);
    CHECK(f.st.gather_left(f.now) == 150us);
    // Four producers: two of their SENDs and two ACKs do not make the batch go.
    f.st.note_answered(6, 4);
    f.batch(4, 50us);
    hooked(2);
    CHECK(f.st.gather_left(f.now) == 150us);
    f.batch(4, 50us);
    hooked(4);
    CHECK(f.st.gather_left(f.now) == 0ns);
    // No producers in the last two batches: ACKs go by the count alone.
    f.st.note_answered(1, 0);
    f.st.note_answered(1, 0);
    f.batch(1, 50us);
    CHECK(f.st.gather_left(f.now) == 0ns);
}

TEST_CASE("journal: group commit: an ACK lane's append, hooked but no producer's, waits for "
          "the next SEND as any ACK") {
    REQUIRE(journal_state::hooked_first());
    fixture f;
    auto hook = [](bool producer) {
        auto h = std::make_shared<confirm_hook>();
        h->producer = producer;
        return h;
    };
    f.st.note_answered(2, 1);
    f.st.note_answered(2, 1);
    // The ACK lane's ACK alone: it waits for the producer's next SEND.
    f.batch(1, 50us);
    f.st.waiting[0].hook = hook(false);
    CHECK(f.st.gather_left(f.now) == 150us);
    // With the SEND it goes.
    f.batch(2, 50us);
    f.st.waiting[0].hook = hook(false);
    f.st.waiting[1].hook = hook(true);
    CHECK(f.st.gather_left(f.now) == 0ns);
}

TEST_CASE("journal: group commit: a batch waits at most one fdatasync's duration, capped") {
    fixture f;
    f.st.note_answered(8);
    f.batch(1, 199us);
    CHECK(f.st.gather_left(f.now) == 1us);
    f.batch(1, 200us);
    CHECK(f.st.gather_left(f.now) == 0ns);
    // A slow disk does not make a batch wait longer than gather_max.
    f.st.last_sync = 20ms;
    f.batch(1, 0us);
    CHECK(f.st.gather_left(f.now) == journal_state::gather_max);
}

TEST_CASE("journal: group commit: appends held for the backup are not waited for") {
    fixture f;
    f.st.note_answered(4);
    f.batch(2, 0us);
    CHECK(f.st.gather_left(f.now) == 200us);
    // Two of the last batch's appenders wait for the replica's acknowledgement: they cannot
    // send their next record before it, so the two here are all that can come.
    f.st.repl_waiting.resize(2);
    CHECK(f.st.gather_left(f.now) == 0ns);
}

TEST_CASE("journal: group commit: a batch of a stream waits for no more than "
          "gather_waiters_max") {
    fixture f;
    f.st.note_answered(300);
    f.batch(journal_state::gather_waiters_max - 1, 0us);
    CHECK(f.st.gather_left(f.now) == 200us);
    f.batch(journal_state::gather_waiters_max, 0us);
    CHECK(f.st.gather_left(f.now) == 0ns);
}

TEST_CASE("journal: group commit: a lone synchronous producer never waits") {
    fixture f;
    f.st.note_answered(1);
    f.st.note_answered(1);
    f.batch(1, 0us);
    CHECK(f.st.gather_left(f.now) == 0ns);
    // Nor does the first batch of a journal.
    fixture fresh;
    fresh.batch(1, 0us);
    CHECK(fresh.st.gather_left(fresh.now) == 0ns);
}

TEST_CASE("journal: group commit: nothing waits for company that nobody waits for") {
    fixture f;
    f.st.note_answered(4);
    // Records nobody waits for (a binding, a transaction's records before its commit).
    f.batch(0, 0us);
    CHECK(f.st.gather_left(f.now) == 0ns);
    // A full batch goes at once (journal-buffer-size).
    f.batch(1, 0us, f.st.ctx->config.journal.journal_buffer_size);
    CHECK(f.st.gather_left(f.now) == 0ns);
    // A failed journal answers with its error at once.
    f.batch(1, 0us);
    f.st.failure = journal_failure{"f", "fdatasync", 5, "EIO"};
    CHECK(f.st.gather_left(f.now) == 0ns);
}

TEST_CASE("journal: group commit: the thread stays awake only while appends come often") {
    fixture f;
    CHECK(f.st.idle_spin() == 0ns);
    f.st.last_idle = 30us;
    CHECK(f.st.idle_spin() == journal_state::idle_spin_max);
    f.st.last_idle = journal_state::idle_spin_max;
    CHECK(f.st.idle_spin() == 0ns);
    f.st.last_idle = 30us;
    f.st.failure = journal_failure{"f", "write", 28, "ENOSPC"};
    CHECK(f.st.idle_spin() == 0ns);
}

TEST_CASE("journal: group commit: the thread spins through a synchronous producer's "
          "turnaround") {
    fixture f;
    auto turnaround = std::chrono::nanoseconds{journal_state::turnaround_spin_max()};
    if (turnaround.count() == 0) {
        // Off (the default): spells past idle_spin_max never make the thread spin.
        f.st.last_idle = 160us;
        f.st.prev_idle = 120us;
        CHECK(f.st.idle_spin() == 0ns);
        return;
    }
    // On (ACTORMQ_JOURNAL_TURNAROUND_US=300 in the test's environment):
    REQUIRE(turnaround > std::chrono::nanoseconds{journal_state::idle_spin_max});
    // One spell longer than idle_spin_max is not yet a pattern.
    f.st.last_idle = 160us;
    CHECK(f.st.idle_spin() == 0ns);
    // Two in a row within the turnaround bound: spin for the longer one and a quarter.
    f.st.prev_idle = 120us;
    CHECK(f.st.idle_spin() == 200us);
    // Never longer than the bound.
    f.st.last_idle = turnaround;
    CHECK(f.st.idle_spin() == turnaround);
    // A spell past the bound (a producer that thinks between sends) stops it.
    f.st.last_idle = turnaround + 1us;
    CHECK(f.st.idle_spin() == 0ns);
    f.st.last_idle = 160us;
    f.st.prev_idle = turnaround + 1us;
    CHECK(f.st.idle_spin() == 0ns);
    f.st.prev_idle = 160us;
    f.st.failure = journal_failure{"f", "write", 28, "ENOSPC"};
    CHECK(f.st.idle_spin() == 0ns);
}

TEST_CASE("journal: group commit: the idle spell is measured from the answers to the next "
          "record") {
    fixture f;
    f.st.note_answered(1);
    auto answered = f.st.last_answered;
    std::vector<journal::record> rs(1);
    rs[0].type = journal::record_type::ack;
    f.st.add(rs);
    CHECK(f.st.batch_started >= answered);
    CHECK(f.st.last_idle == f.st.batch_started - answered);
    // The spell before it moves to prev_idle.
    f.st.last_idle = 42us;
    f.st.note_answered(1);
    std::vector<journal::record> next(1);
    next[0].type = journal::record_type::ack;
    answered = f.st.last_answered;
    f.st.batch.clear();
    f.st.add(next);
    CHECK(f.st.prev_idle == 42us);
    CHECK(f.st.last_idle == f.st.batch_started - answered);
    // A record joining a batch already begun does not count as the end of an idle spell.
    auto idle = f.st.last_idle;
    std::vector<journal::record> more(1);
    more[0].type = journal::record_type::ack;
    f.st.add(more);
    CHECK(f.st.last_idle == idle);
}
