// SPDX-License-Identifier: Apache-2.0
// The duplicate-id cache of an address (actors/broker/address.cpp) against a journal that fails:
// an id stands for a stored message only once that message is on disk, a retry while the first
// copy is on its way follows the first copy's outcome, and transactions hold their ids until
// they end. The address runs in a real actor system; the journal is a stand-in that holds every
// append until the test sends it flush_atom, then answers them all with success or an error.
#include "actors/broker/address.hpp"
#include "protocol/errc.hpp"
#include "support/held_journal.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <doctest/doctest.h>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

using namespace actormq;

namespace {

constexpr auto wait_bound = std::chrono::seconds(10);

message_ptr persistent_message(const std::string& dup_id, const std::string& body) {
    auto m = std::make_shared<broker_message>();
    m->address = "orders";
    m->destination = "/queue/orders";
    m->headers.emplace_back(duplicate_id_header, dup_id);
    m->body = body;
    m->persistent = true;
    return m;
}

bool is(const caf::error& e, errc code) {
    return e.category() == caf::atom("actormq") && e.code() == static_cast<uint8_t>(code);
}

/// One address named "orders" with its anycast queue, over the stand-in journal.
struct fixture {
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    std::shared_ptr<test::held_journal_script> script =
        std::make_shared<test::held_journal_script>();
    journal_actor journal;
    address_actor addr;

    fixture() {
        auto ctx = std::make_shared<server_context>();
        ctx->log = std::make_shared<spdlog::logger>("address-test");
        ctx->wire_log = ctx->log;
        journal = sys.spawn(test::held_journal, script);
        ctx->journal = journal;
        addr = sys.spawn(address, ctx, std::string{"orders"}, std::shared_ptr<address_seed>{});
    }

    ~fixture() {
        caf::anon_send_exit(addr, caf::exit_reason::user_shutdown);
        caf::anon_send_exit(journal, caf::exit_reason::user_shutdown);
    }

    /// A plain (non-transactional) route request and, once it came, its answer.
    struct pending {
        std::mutex mtx;
        std::condition_variable cv;
        bool sent = false;
        std::optional<caf::expected<route_status>> result;

        void set_sent() {
            std::lock_guard<std::mutex> g{mtx};
            sent = true;
            cv.notify_all();
        }
        void set(caf::expected<route_status> r) {
            std::lock_guard<std::mutex> g{mtx};
            result = std::move(r);
            cv.notify_all();
        }
    };

    /// Sends a route request from a helper actor; returns once it is in the address's mailbox,
    /// so requests keep the order of the calls.
    std::shared_ptr<pending> route(message_ptr m) {
        auto p = std::make_shared<pending>();
        auto a = addr;
        sys.spawn([a, m, p](caf::event_based_actor* self) {
            self->request(a, wait_bound, route_atom::value, routing_type::anycast,
                          std::vector<message_ptr>{m})
                .then([p](route_status s) { p->set(s); },
                      [p](caf::error& e) { p->set(caf::expected<route_status>{std::move(e)}); });
            p->set_sent();
        });
        std::unique_lock<std::mutex> g{p->mtx};
        REQUIRE(p->cv.wait_for(g, wait_bound, [&] { return p->sent; }));
        return p;
    }

    /// Waits for the answer of a route request: the status, or the error.
    static caf::expected<route_status> answer(pending& p) {
        std::unique_lock<std::mutex> g{p.mtx};
        REQUIRE(p.cv.wait_for(g, wait_bound, [&] { return p.result.has_value(); }));
        return *p.result;
    }

    /// Whether the request was answered already (without waiting).
    static bool answered(pending& p) {
        std::lock_guard<std::mutex> g{p.mtx};
        return p.result.has_value();
    }

    /// Prepares transaction `tx` with one message; the status or the error.
    caf::expected<route_status> prepare(uint64_t tx, message_ptr m) {
        caf::scoped_actor self{sys};
        caf::expected<route_status> out{route_status::routed};
        self->request(addr, wait_bound, route_atom::value, routing_type::anycast,
                      std::vector<message_ptr>{std::move(m)}, tx)
            .receive([&](route_status s) { out = s; }, [&](caf::error& e) { out = std::move(e); });
        return out;
    }

    /// Messages waiting in the queue; also a barrier: every message the address got before
    /// this request is handled when it answers.
    uint64_t depth() {
        caf::scoped_actor self{sys};
        uint64_t total = 0;
        self->request(addr, wait_bound, stats_atom::value)
            .receive(
                [&](std::vector<queue_stats>& qs) {
                    for (const auto& q : qs) {
                        total += q.depth;
                    }
                },
                [&](caf::error& e) { FAIL("stats failed: ", caf::to_string(e)); });
        return total;
    }

    void flush(bool fail) {
        script->fail = fail;
        caf::anon_send(journal, flush_atom::value);
    }
};

} // namespace

TEST_CASE("address: duplicates: a failed append forgets its ids, so the retry is stored, not "
          "confirmed as a duplicate") {
    fixture f;
    auto first = f.route(persistent_message("A", "one"));
    CHECK(f.depth() == 0);
    f.flush(true);
    auto r1 = fixture::answer(*first);
    REQUIRE_FALSE(r1);
    CHECK(is(r1.error(), errc::journal_failed));

    auto retry = f.route(persistent_message("A", "one"));
    CHECK(f.depth() == 0);
    f.flush(false);
    auto r2 = fixture::answer(*retry);
    REQUIRE(r2);
    CHECK(*r2 == route_status::routed);
    // The retry went to the journal: it is not taken for a copy of the lost message.
    CHECK(f.script->appends == 2);
    CHECK(f.depth() == 1);

    // Now it is stored: a third copy is a duplicate.
    auto again = f.route(persistent_message("A", "one"));
    auto r3 = fixture::answer(*again);
    REQUIRE(r3);
    CHECK(f.depth() == 1);
    CHECK(f.script->appends == 2);
}

TEST_CASE("address: duplicates: a retry of a message still on its way to the journal is "
          "answered only after it, and fails when it fails") {
    fixture f;
    auto first = f.route(persistent_message("B", "two"));
    auto retry = f.route(persistent_message("B", "two"));
    CHECK(f.depth() == 0);                  // barrier: both route requests are handled
    CHECK_FALSE(fixture::answered(*retry)); // no confirmation before the first is on disk
    f.flush(true);
    auto r1 = fixture::answer(*first);
    auto r2 = fixture::answer(*retry);
    CHECK(f.script->appends == 1);
    REQUIRE_FALSE(r1);
    REQUIRE_FALSE(r2);
    CHECK(is(r2.error(), errc::journal_failed));
    CHECK(f.depth() == 0);
}

TEST_CASE("address: duplicates: a retry of a message on its way is confirmed once the first is "
          "stored, and stored once") {
    fixture f;
    auto first = f.route(persistent_message("C", "three"));
    auto retry = f.route(persistent_message("C", "three"));
    CHECK(f.depth() == 0);
    CHECK_FALSE(fixture::answered(*retry));
    f.flush(false);
    auto r1 = fixture::answer(*first);
    auto r2 = fixture::answer(*retry);
    REQUIRE(r1);
    REQUIRE(r2);
    CHECK(*r2 == route_status::routed);
    CHECK(f.depth() == 1);
    CHECK(f.script->appends == 1);
}

TEST_CASE("address: duplicates: an id held by an open transaction is in flight for others; "
          "rollback frees it, commit makes it a duplicate") {
    fixture f;
    REQUIRE(f.prepare(7, persistent_message("T", "tx")) == route_status::routed);
    auto other_tx = f.prepare(8, persistent_message("T", "tx"));
    REQUIRE_FALSE(other_tx);
    CHECK(is(other_tx.error(), errc::duplicate_in_flight));
    auto plain = f.route(persistent_message("T", "tx"));
    auto rp = fixture::answer(*plain);
    REQUIRE_FALSE(rp);
    CHECK(is(rp.error(), errc::duplicate_in_flight));

    // Rolled back (or a failed commit, which the session answers with rollback): free again.
    caf::anon_send(f.addr, rollback_atom::value, uint64_t{7});
    REQUIRE(f.prepare(9, persistent_message("T", "tx")) == route_status::routed);
    caf::anon_send(f.addr, commit_atom::value, uint64_t{9});
    CHECK(f.depth() == 1);
    CHECK(f.prepare(10, persistent_message("T", "tx")) == route_status::duplicate);
    auto dup = f.route(persistent_message("T", "tx"));
    CHECK(fixture::answer(*dup) == route_status::routed);
    CHECK(f.depth() == 1);
}

TEST_CASE("address: duplicates: a transaction repeating an id still on its way to the journal "
          "gets duplicate_in_flight, not duplicate") {
    fixture f;
    auto first = f.route(persistent_message("D", "four"));
    auto tx = f.prepare(11, persistent_message("D", "four"));
    REQUIRE_FALSE(tx);
    CHECK(is(tx.error(), errc::duplicate_in_flight));
    f.flush(true);
    CHECK_FALSE(fixture::answer(*first));
    // The failed append left nothing behind: the transaction may take the id now.
    CHECK(f.prepare(12, persistent_message("D", "four")) == route_status::routed);
}
