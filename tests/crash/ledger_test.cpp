// SPDX-License-Identifier: Apache-2.0
// The crash harness's verdict is the one thing that must never say 0/0/0 wrongly, so its
// bookkeeping gets tests of its own (crash/ledger.cpp).
#include "crash/ledger.hpp"

#include <doctest/doctest.h>

using namespace actormq::crash;

namespace {

/// Marks messages [from, to) of `r` as sent, and as confirmed when `confirm`.
void produce(stream_record& r, uint64_t from, uint64_t to, bool confirm) {
    for (uint64_t k = from; k < to; ++k) {
        r.mark_sent(k);
        if (confirm) {
            r.mark_confirmed(k);
        }
    }
}

/// Drains messages [from, to) of `r` into `book`, each `times` times.
void consume(ledger& book, const stream_record& r, uint64_t from, uint64_t to, int times = 1) {
    for (int t = 0; t < times; ++t) {
        for (uint64_t k = from; k < to; ++k) {
            book.record_received(r.destination(), r.body(k, 1024));
        }
    }
}

} // namespace

TEST_CASE("crash ledger: ids, destinations and bodies name producer and k") {
    ledger book{2, 1};
    auto& s = book.streams();
    REQUIRE(s.size() == 3);
    CHECK(s[1].id(7) == "1-7");
    CHECK(s[2].id(7) == "tx0-7");
    CHECK(s[1].destination() == "/queue/crash.1");
    CHECK(s[2].destination() == "/queue/crash.tx.0");
    CHECK(s[0].body(3, 1024).size() == 1024);
    CHECK(s[0].body(3, 1024).rfind("p=0 k=3.", 0) == 0);
}

TEST_CASE("crash ledger: verdict: everything confirmed and received once is clean") {
    ledger book{1, 0};
    auto& r = book.streams()[0];
    produce(r, 0, 100, true);
    consume(book, r, 0, 100);
    auto v = book.judge();
    CHECK(v.ok());
    CHECK(v.line(3)
          == "verdict: lost=0 duplicated=0 unexpected=0 recovered=0 confirmed=100 "
             "received=100 kills=3");
}

TEST_CASE("crash ledger: verdict: counts lost, duplicated, unexpected and recovered apart") {
    ledger book{1, 0};
    auto& r = book.streams()[0];
    produce(r, 0, 10, true);                                 // 0-9 confirmed
    produce(r, 10, 12, false);                               // 10-11 sent, never confirmed
    consume(book, r, 0, 7);                                  // 7-9 lost
    consume(book, r, 2, 4);                                  // 2 and 3 twice
    consume(book, r, 11, 12);                                // 11 recovered
    book.record_received(r.destination(), r.body(50, 1024)); // never sent
    book.record_received(r.destination(), "garbage");
    book.record_received("/queue/crash.9", r.body(1, 1024)); // wrong queue
    auto v = book.judge(2);
    CHECK(v.lost == 3);
    CHECK(v.lost_ids == std::vector<std::string>{"0-7", "0-8"});
    CHECK(v.duplicated == 2);
    CHECK(v.duplicated_ids.front() == "0-2 x2");
    CHECK(v.unexpected == 3);
    CHECK(v.recovered == 1);
    CHECK(v.confirmed == 10);
    CHECK(v.received == 7 + 2 + 1 + 3);
    CHECK_FALSE(v.ok());
}

TEST_CASE("crash ledger: tx verdict: a transaction is whole or absent, never partial") {
    ledger book{0, 1};
    auto& r = book.streams()[0];
    produce(r, 0, 10, true);   // transactions 0 and 1 committed
    produce(r, 10, 15, false); // transaction 2 cut by a kill
    consume(book, r, 0, 5);    // transaction 0 whole
    consume(book, r, 5, 7);    // transaction 1 torn: 2 of 5
    auto v = book.judge();
    CHECK(v.tx_confirmed == 2);
    CHECK(v.tx_complete == 1);
    CHECK(v.tx_partial == 1);
    CHECK(v.partial_ids.front() == "tx0 #1 (2/5)");
    CHECK(v.lost == 3);
    CHECK(v.tx_line() == "tx: confirmed=2 complete=1 partial=1");
    CHECK_FALSE(v.ok());
}

TEST_CASE("crash ledger: tx verdict: an uncommitted transaction that landed whole is fine") {
    ledger book{0, 1};
    auto& r = book.streams()[0];
    produce(r, 0, 5, false);
    consume(book, r, 0, 5);
    auto v = book.judge();
    CHECK(v.ok());
    CHECK(v.recovered == 5);
    CHECK(v.tx_complete == 1);
    CHECK(v.tx_confirmed == 0);
}
