// SPDX-License-Identifier: Apache-2.0
// The send lane's side of an address (actors/broker/send_lane.hpp, address.cpp): every
// operation draws its id from the lane's word, an operation drawn after a lane id waits for
// the lane's message, and the switch closes while the address holds duplicate ids in flight or
// a prepared transaction. The address runs in a real actor system over a journal stand-in
// that holds every append until the test flushes it (support/held_journal.hpp).
#include "actors/broker/address.hpp"
#include "actors/broker/send_lane.hpp"
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
    if (!dup_id.empty()) {
        m->headers.emplace_back(duplicate_id_header, dup_id);
    }
    m->body = body;
    m->persistent = true;
    return m;
}

/// One address named "orders" with its anycast queue, over the stand-in journal.
struct fixture {
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    std::shared_ptr<test::held_journal_script> script =
        std::make_shared<test::held_journal_script>();
    journal_actor journal;
    address_actor addr;
    std::shared_ptr<server_context> ctx;

    fixture() {
        ctx = std::make_shared<server_context>();
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

/// Routes one message without a duplicate id and waits until it is stored: the anycast queue
/// exists afterwards, so the lane may open.
void warm_up(fixture& f) {
    auto first = f.route(persistent_message("", "warm"));
    CHECK(f.depth() == 0);
    f.flush(false);
    REQUIRE(fixture::answer(*first));
}

} // namespace

TEST_CASE("address: send lane: the lane's word orders every operation; closed, enter() fails "
          "and draw() goes on past every id the lane drew") {
    address_lane lane;
    lane.usage = std::make_shared<address_usage>();
    CHECK_FALSE(lane.enter()); // closed until its address opens it
    CHECK(lane.draw() == 1);
    lane.set_open(true);
    CHECK(lane.enter() == std::optional<uint64_t>{2});
    CHECK(lane.draw() == 3);
    lane.set_open(false);
    CHECK_FALSE(lane.enter());
    CHECK(lane.draw() == 4);
    lane.retired = true;
    lane.set_open(true); // a removed address's lane never opens again
    CHECK_FALSE(lane.is_open());
}

TEST_CASE("address: send lane: a reservation never takes the address past max-size-bytes") {
    address_lane lane;
    lane.usage = std::make_shared<address_usage>();
    lane.usage->max_bytes = 1000;
    CHECK(lane.reserve(600));
    CHECK_FALSE(lane.reserve(401));
    CHECK(lane.reserve(400));
    CHECK(lane.usage->bytes == 1000);
    lane.release(600);
    CHECK(lane.usage->bytes == 400);
}

TEST_CASE("address: send lane: a route that drew its id after a lane id is answered only once "
          "the lane's message took its place") {
    fixture f;
    warm_up(f);
    auto lane = f.ctx->lanes->find("orders");
    REQUIRE(lane);
    REQUIRE(lane->is_open());
    // The lane takes a message (as a connection does) and has not handed it back yet.
    auto m = persistent_message("", "by-lane");
    REQUIRE(lane->reserve(m->memory_bytes()));
    auto id = lane->enter();
    REQUIRE(id);
    auto later = f.route(persistent_message("", "later"));
    CHECK(f.depth() == 1);
    f.flush(false);
    CHECK(f.depth() == 1); // barrier: the address has the journal's answer
    CHECK_FALSE(fixture::answered(*later));
    auto op = std::make_shared<lane_op>();
    op->id = *id;
    op->msg = m;
    op->bytes = m->memory_bytes();
    caf::anon_send(lane->owner_handle(), lane_atom::value, op);
    auto r = fixture::answer(*later);
    REQUIRE(r);
    CHECK(*r == route_status::routed);
    CHECK(f.depth() == 3);
}

TEST_CASE("address: send lane: a refused lane message gives its bytes back and lets the "
          "operations after it go") {
    fixture f;
    warm_up(f);
    auto lane = f.ctx->lanes->find("orders");
    REQUIRE(lane);
    auto before = lane->usage->bytes.load();
    auto m = persistent_message("", "lost");
    REQUIRE(lane->reserve(m->memory_bytes()));
    auto id = lane->enter();
    REQUIRE(id);
    auto later = f.route(persistent_message("", "later"));
    CHECK(f.depth() == 1); // barrier: the route's append is at the journal before the flush
    f.flush(false);
    CHECK(f.depth() == 1);
    auto op = std::make_shared<lane_op>();
    op->id = *id;
    op->bytes = m->memory_bytes();
    op->ok = false;
    caf::anon_send(lane->owner_handle(), lane_atom::value, op);
    REQUIRE(fixture::answer(*later));
    CHECK(f.depth() == 2);
    CHECK(lane->usage->bytes.load() == before + persistent_message("", "later")->memory_bytes());
}

TEST_CASE("address: send lane: closed while a duplicate id is on its way to the journal, and "
          "while a transaction is prepared") {
    fixture f;
    warm_up(f);
    auto lane = f.ctx->lanes->find("orders");
    REQUIRE(lane);
    REQUIRE(lane->is_open());
    auto dup = f.route(persistent_message("D", "dup"));
    CHECK(f.depth() == 1);
    CHECK_FALSE(lane->is_open());
    f.flush(false);
    REQUIRE(fixture::answer(*dup));
    CHECK(f.depth() == 2);
    CHECK(lane->is_open());
    REQUIRE(f.prepare(7, persistent_message("", "in-tx")));
    CHECK_FALSE(lane->is_open());
    caf::anon_send(f.addr, commit_atom::value, uint64_t{7});
    CHECK(f.depth() == 3);
    CHECK(lane->is_open());
}
