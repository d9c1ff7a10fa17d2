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

/// What a live consumer of stream `s` does with message k: it arrives (with message-id `mid`),
/// and is filed; returns how it was judged.
delivered deliver(ledger& book, size_t s, uint64_t k, const std::string& mid) {
    uint64_t got = 0;
    auto how = book.record_delivery(s, mid, book.streams()[s].body(k, 1024), got);
    CHECK(got == k);
    return how;
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
          == "verdict: lost=0 duplicated=0 unexpected=0 recovered=0 redelivered=0 "
             "confirmed=100 received=100 kills=3");
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

TEST_CASE("crash ledger: consumers: again before the ACK's receipt is a redelivery, after it a "
          "duplicate") {
    ledger book{1, 0};
    auto& r = book.streams()[0];
    produce(r, 0, 3, true);
    CHECK(deliver(book, 0, 0, "7") == delivered::first);
    book.record_ack_written(0, 0);
    // The node died before the ACK's RECEIPT: the new live delivers it again, same message.
    CHECK(deliver(book, 0, 0, "7") == delivered::redelivered);
    book.record_ack_written(0, 0);
    book.record_ack_confirmed(0, 0);
    CHECK(deliver(book, 0, 0, "7") == delivered::duplicated);
    CHECK(deliver(book, 0, 1, "8") == delivered::first);
    book.record_ack_written(0, 1);
    book.record_ack_confirmed(0, 1);
    CHECK(deliver(book, 0, 2, "9") == delivered::first);
    book.record_ack_written(0, 2);
    book.record_ack_confirmed(0, 2);
    auto v = book.judge();
    CHECK(v.duplicated == 1);
    CHECK(v.duplicated_ids == std::vector<std::string>{"0-0 x3"});
    CHECK(v.redelivered == 1);
    CHECK(v.received == 5);
    CHECK(v.lost == 0);
    CHECK_FALSE(v.ok());
}

TEST_CASE("crash ledger: consumers: another copy of an id (a new message-id) is a duplicate even "
          "before its ACK is confirmed") {
    ledger book{1, 0};
    produce(book.streams()[0], 0, 1, true);
    CHECK(deliver(book, 0, 0, "7") == delivered::first);
    book.record_ack_written(0, 0);
    CHECK(deliver(book, 0, 0, "12") == delivered::duplicated);
    auto v = book.judge();
    CHECK(v.duplicated == 1);
    CHECK(v.redelivered == 0);
}

TEST_CASE("crash ledger: consumers: a message redelivered to the drain is consumed once") {
    ledger book{1, 0};
    auto& r = book.streams()[0];
    produce(r, 0, 2, true);
    CHECK(deliver(book, 0, 0, "1") == delivered::first);
    book.record_ack_written(0, 0); // Cut by a kill before its receipt.
    CHECK(deliver(book, 0, 1, "2") == delivered::first);
    // Never acked (the consumer stopped): the broker must keep it for the drain.
    CHECK(book.record_received(r.destination(), r.body(0, 1024), "1") == delivered::redelivered);
    CHECK(book.record_received(r.destination(), r.body(1, 1024), "2") == delivered::redelivered);
    auto v = book.judge();
    CHECK(v.ok());
    CHECK(v.redelivered == 2);
    CHECK(v.received == 4);
    CHECK(v.ack_unconfirmed == 0);
}

TEST_CASE("crash ledger: consumers: confirmed and delivered but never acked nor drained is lost; "
          "an ACK that went out unconfirmed is not") {
    ledger book{1, 0};
    produce(book.streams()[0], 0, 3, true);
    deliver(book, 0, 0, "1"); // Never acked, never seen again: the broker dropped it.
    deliver(book, 0, 1, "2");
    book.record_ack_written(0, 1); // Its ACK may have landed before the kill.
    auto v = book.judge();
    CHECK(v.lost == 2);
    CHECK(v.lost_ids == std::vector<std::string>{"0-0", "0-2"});
    CHECK(v.ack_unconfirmed == 1);
}

TEST_CASE("crash ledger: consumers: another stream's message, a never-sent one and garbage on a "
          "destination are unexpected") {
    ledger book{2, 0};
    produce(book.streams()[0], 0, 2, true);
    produce(book.streams()[1], 0, 2, true);
    uint64_t k = 0;
    CHECK(book.record_delivery(0, "1", book.streams()[1].body(0, 1024), k)
          == delivered::unexpected);
    CHECK(book.record_delivery(0, "2", "garbage", k) == delivered::unexpected);
    CHECK(book.record_delivery(0, "3", book.streams()[0].body(stream_messages_max, 8), k)
          == delivered::unexpected);
    CHECK(deliver(book, 0, 5, "4") == delivered::first); // Judged when the producer is done.
    auto v = book.judge(10);
    CHECK(v.unexpected == 4);
    CHECK(v.unexpected_ids.front() == "1-0 on /queue/crash.0");
    CHECK(v.lost == 4);
    CHECK(v.received == 4);
}

TEST_CASE("crash ledger: consumers: a tx delivered live in part and drained in part is whole") {
    ledger book{0, 1};
    auto& r = book.streams()[0];
    produce(r, 0, 5, true);
    for (uint64_t k = 0; k < 3; ++k) {
        deliver(book, 0, k, std::to_string(k));
        book.record_ack_written(0, k);
        book.record_ack_confirmed(0, k);
    }
    consume(book, r, 3, 5);
    auto v = book.judge();
    CHECK(v.ok());
    CHECK(v.tx_complete == 1);
    CHECK(v.tx_partial == 0);
}
