// SPDX-License-Identifier: Apache-2.0
#pragma once

// One address actor named "orders" with its anycast queue in a real actor system, over the
// journal stand-in of held_journal.hpp (every append held until the test flushes it), and the
// requests the address tests send it (unit/address_duplicates_test.cpp, address_lane_test.cpp).

#include "actors/broker/address.hpp"
#include "support/held_journal.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <doctest/doctest.h>
#include <spdlog/logger.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace actormq::test {

/// Bound of every wait of the address tests.
inline constexpr auto wait_bound = std::chrono::seconds(10);

/// A persistent message to /queue/orders with duplicate id `dup_id` ("" for none).
inline message_ptr persistent_message(const std::string& dup_id, const std::string& body) {
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
struct address_fixture {
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    std::shared_ptr<test::held_journal_script> script = std::make_shared<held_journal_script>();
    journal_actor journal;
    address_actor addr;
    std::shared_ptr<server_context> ctx;

    address_fixture() {
        ctx = std::make_shared<server_context>();
        ctx->log = std::make_shared<spdlog::logger>("address-test");
        ctx->wire_log = ctx->log;
        journal = sys.spawn(held_journal, script);
        ctx->journal = journal;
        addr = sys.spawn(address, ctx, std::string{"orders"}, std::shared_ptr<address_seed>{});
    }

    ~address_fixture() {
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

} // namespace actormq::test
