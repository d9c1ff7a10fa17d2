// SPDX-License-Identifier: Apache-2.0
// Page-in of an address (actors/broker/address.cpp, docs/journal.md "Paging") against a journal
// the test holds: the address runs in a real actor system with a real pager on a scratch
// directory; the journal is a stand-in that holds every append until the test sends it
// flush_atom, so the test decides exactly when a page-in batch's journal step ends. A consumer
// stand-in (auto ack, no window) records what its queue hands it.
#include "actors/broker/address.hpp"
#include "protocol/errc.hpp"
#include "support/held_journal.hpp"
#include "support/wait.hpp"

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
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace actormq;

namespace {

constexpr auto wait_bound = std::chrono::seconds(10);

/// The bodies a consumer got, in order.
struct received {
    std::mutex mtx;
    std::vector<std::string> bodies;
};

session_actor::behavior_type consumer(session_actor::pointer, std::shared_ptr<received> got) {
    return {
        [](frames_atom, std::vector<stomp::frame>&, uint64_t) {},
        [got](deliver_atom, uint64_t, std::vector<delivery>& ds) {
            std::lock_guard<std::mutex> g{got->mtx};
            for (auto& d : ds) {
                got->bodies.push_back(d.msg->body);
            }
        },
        [](written_atom, uint64_t) {},
        [](closed_atom) {},
    };
}

message_ptr persistent_message(uint64_t id, const std::string& body, const std::string& dup = {}) {
    auto m = std::make_shared<broker_message>();
    m->id = id;
    m->address = "orders";
    m->destination = "/queue/orders";
    if (!dup.empty()) {
        m->headers.emplace_back(duplicate_id_header, dup);
    }
    m->body = body;
    m->persistent = true;
    return m;
}

/// One PAGE address "orders" whose max-size-bytes one message fills, its page files in a
/// scratch directory, over the held journal.
struct fixture {
    std::string dir;
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    std::shared_ptr<test::held_journal_script> counts =
        std::make_shared<test::held_journal_script>();
    std::shared_ptr<received> got = std::make_shared<received>();
    journal_actor journal;
    address_actor addr;
    session_actor session;

    fixture() {
        char tmpl[] = "/tmp/actormq-address-paging-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        auto ctx = std::make_shared<server_context>();
        ctx->log = std::make_shared<spdlog::logger>("address-paging-test");
        ctx->wire_log = ctx->log;
        ctx->config.journal.journal_directory = dir;
        config::address_settings s;
        s.match = "orders";
        s.full_policy = config::address_full_policy::page;
        s.max_size_bytes = 1;
        ctx->config.address_settings_list.push_back(s);
        journal = sys.spawn(test::held_journal, counts);
        ctx->journal = journal;
        addr = sys.spawn(address, ctx, std::string{"orders"}, std::shared_ptr<address_seed>{});
        session = sys.spawn(consumer, got);
        caf::scoped_actor self{sys};
        std::string name = "orders";
        self->request(addr, wait_bound, bind_atom::value, routing_type::anycast, name, true)
            .receive(
                [&](queue_actor& q) {
                    self->send(q, subscribe_atom::value, session, consumer_spec{1, 0, true});
                },
                [&](caf::error& e) { FAIL("bind failed: ", caf::to_string(e)); });
    }

    ~fixture() {
        caf::anon_send_exit(addr, caf::exit_reason::user_shutdown);
        caf::anon_send_exit(journal, caf::exit_reason::user_shutdown);
        caf::anon_send_exit(session, caf::exit_reason::user_shutdown);
        sys.await_all_actors_done();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    /// Sends a route request; the answer is not waited for (a paged message's answer comes
    /// after the page-in batch ahead of it, which the journal holds).
    void route(message_ptr m) {
        caf::anon_send(addr, route_atom::value, routing_type::anycast,
                       std::vector<message_ptr>{std::move(m)});
    }

    void flush() { caf::anon_send(journal, flush_atom::value); }

    /// Waits until `pred` holds (the counters are set by other threads).
    template <class Pred>
    static bool eventually(Pred pred) {
        return test::wait_until(test::in(wait_bound), pred);
    }

    /// Waits until the consumer got `n` messages, answering the journal's appends meanwhile
    /// (each page-in batch waits for one).
    bool delivered(size_t n) {
        return test::wait_until(test::in(std::chrono::seconds(5)), [&] {
            flush();
            std::lock_guard<std::mutex> g{got->mtx};
            return got->bodies.size() >= n;
        });
    }

    std::vector<std::string> bodies() {
        std::lock_guard<std::mutex> g{got->mtx};
        return got->bodies;
    }
};

} // namespace

TEST_CASE("address: paging: a page write answered while a page-in batch that read to the end "
          "is on its way to the journal is read back, not left in the page files") {
    fixture f;
    // "one" fills the address; "two" starts paging and goes to the page files.
    f.route(persistent_message(1, "one"));
    f.route(persistent_message(2, "two"));
    REQUIRE(fixture::eventually([&] { return f.counts->messages == 1; }));
    // "one" reaches its queue and the consumer, which frees the address: the address reads
    // "two" back (to the end of what is written) and journals it, and the journal holds that.
    f.flush();
    REQUIRE(fixture::eventually([&] { return f.counts->messages == 2; }));
    CHECK(f.bodies() == std::vector<std::string>{"one"});
    // Meanwhile "three" is paged; its write is answered (the address journals its duplicate id
    // only then) before the batch of "two" has its journal answer.
    f.route(persistent_message(3, "three", "dup-3"));
    REQUIRE(fixture::eventually([&] { return f.counts->dup_ids == 1; }));
    // The batch of "two" completes now. Its read saw the end of the page files, but "three"
    // was written after that read: it must still come back.
    CHECK(f.delivered(3));
    CHECK(f.bodies() == std::vector<std::string>{"one", "two", "three"});
}
