// SPDX-License-Identifier: Apache-2.0
// Paging under concurrent producers and consumers (docs/journal.md, "Paging"): with a
// max-size-bytes of a few messages the address pages as soon as the producers outrun the
// consumers, and the consumers catch up with the page files while the last producers still
// page, so page writes arrive while page-in batches are on their way to the journal. Every
// message must arrive, once: none may stay behind in a page file (the stall of
// docs/benchmarks.md, "Paging: the page-in stall, ids after a restart, the ring"; its
// deterministic form is in tests/unit/address_paging_test.cpp).
#include "support/process_fixture.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace actormq;
using namespace actormq::test;

TEST_CASE("paging: four producers and four consumers on a tiny address: every message arrives "
          "once, none stays in the page files") {
    temp_dir d;
    ACTORMQ_START_NODE(node, node_placement{d.path, "node.log"},
                       node_config("", "\n[address-settings.\"#\"]\n"
                                       "max-size-bytes = 8192\n"
                                       "address-full-policy = \"PAGE\"\n"),
                       std::vector<std::string>{"paging-directory=" + d.path + "/paging"});
    constexpr size_t producers = 4;
    constexpr size_t consumers = 4;
    // Producers that end one after another leave a tail in which the consumers catch up with
    // the page files while the last producers still page: where a page write can arrive while
    // the page-in batch that read to the end is on its way.
    auto count_of = [](size_t i) {
        return 500 * (i + 1);
    };
    size_t total = 0;
    for (size_t i = 0; i < producers; ++i) {
        total += count_of(i);
    }
    const std::string dest = "/queue/race";
    const std::string pad(1000, 'p');

    std::vector<std::unique_ptr<stomp_client>> pubs(producers);
    std::vector<std::unique_ptr<stomp_client>> subs(consumers);
    for (auto& c : subs) {
        c = std::make_unique<stomp_client>();
        login(*c, node);
        subscribe(*c, dest, "s", "client-individual", {{"prefetch-count", "1000"}});
    }
    for (auto& c : pubs) {
        c = std::make_unique<stomp_client>();
        login(*c, node);
    }

    // Threads only talk to their client and record; the checks are made here afterwards.
    std::atomic<size_t> received{0};
    std::atomic<size_t> producing{producers};
    std::atomic<std::chrono::steady_clock::time_point> last_arrival{
        std::chrono::steady_clock::now()};
    std::vector<std::vector<std::string>> got(consumers);
    std::vector<size_t> confirmed(producers, 0);
    std::vector<std::thread> threads;
    auto deadline = in(std::chrono::seconds(120));
    for (size_t i = 0; i < consumers; ++i) {
        threads.emplace_back([&, i] {
            auto& c = *subs[i];
            // Until everything arrived, or nothing did for 10 s after the producers ended (a
            // message left in the page files never comes).
            while (received.load() < total && std::chrono::steady_clock::now() < deadline
                   && !(producing.load() == 0
                        && std::chrono::steady_clock::now() - last_arrival.load()
                               > std::chrono::seconds(10))) {
                auto m = c.receive(in(std::chrono::milliseconds(200)));
                if (!m || m->cmd != command::message) {
                    continue;
                }
                last_arrival = std::chrono::steady_clock::now();
                got[i].push_back(m->body);
                ++received;
                c.send(command::ack, {{"id", header_of(*m, "ack")}});
            }
        });
    }
    for (size_t i = 0; i < producers; ++i) {
        threads.emplace_back([&, i] {
            auto& c = *pubs[i];
            struct done_guard {
                std::atomic<size_t>& n;
                ~done_guard() { --n; }
            } done{producing};
            for (size_t n = 0; n < count_of(i); ++n) {
                stomp::frame f;
                f.cmd = command::send;
                f.add("destination", dest);
                f.add("persistent", "true");
                f.add("pad", pad);
                f.body = "p" + std::to_string(i) + "-" + std::to_string(n);
                if (!c.send_with_receipt(f)) {
                    return;
                }
                ++confirmed[i];
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    INFO(node.log_tail());
    for (size_t i = 0; i < producers; ++i) {
        REQUIRE_MESSAGE(confirmed[i] == count_of(i), "producer ", i, " had ", confirmed[i],
                        " confirmed");
    }
    // It paged (and, with these figures, started and stopped paging many times).
    CHECK(log_shows(node, "address_paging_done address=race"));
    std::multiset<std::string> all;
    for (const auto& g : got) {
        all.insert(g.begin(), g.end());
    }
    CHECK_MESSAGE(received.load() == total, received.load(), " of ", total, " arrived");
    std::set<std::string> unique(all.begin(), all.end());
    CHECK(unique.size() == all.size());
    for (size_t i = 0; i < producers; ++i) {
        for (size_t n = 0; n < count_of(i); ++n) {
            auto b = "p" + std::to_string(i) + "-" + std::to_string(n);
            if (unique.count(b) == 0) {
                FAIL_CHECK(b, " never arrived");
                break;
            }
        }
    }
}
