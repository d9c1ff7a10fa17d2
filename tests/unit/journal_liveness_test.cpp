// SPDX-License-Identifier: Apache-2.0
#include "actors/journal/journal_liveness.hpp"

#include <doctest/doctest.h>

using namespace actormq::journal;

namespace {

record message(uint64_t id, uint64_t tx = 0, const std::string& dup = "") {
    message_payload p;
    p.message_id = id;
    p.address = "a";
    p.queues = {"a"};
    if (!dup.empty()) {
        p.headers.emplace_back("_AMQ_DUPL_ID", dup);
    }
    record r;
    r.type = record_type::add_message;
    r.tx_id = tx;
    r.payload = encode_payload(p);
    return r;
}

record ack(uint64_t id, uint64_t tx = 0) {
    record r;
    r.type = record_type::ack;
    r.tx_id = tx;
    r.payload = encode_payload(ack_payload{"a", id});
    return r;
}

record end(record_type t, uint64_t tx) {
    record r;
    r.type = t;
    r.payload = encode_payload(tx_payload{tx});
    return r;
}

record binding() {
    record r;
    r.type = record_type::add_queue;
    r.payload = encode_payload(queue_payload{"a", "a", 0});
    return r;
}

} // namespace

TEST_CASE("journal liveness: a segment with a live message is kept, then freed by its ack") {
    liveness l;
    l.note(message(1), 1);
    std::set<uint64_t> present{1, 2};
    CHECK_FALSE(l.reclaimable(1, present));
    l.note(ack(1), 1);
    CHECK(l.reclaimable(1, present));
}

TEST_CASE("journal liveness: an ack in a later segment pins it until the message's is gone") {
    liveness l;
    l.note(message(1), 1);
    l.note(message(2), 1);
    l.note(ack(1), 2);
    std::set<uint64_t> present{1, 2, 3};
    CHECK_FALSE(l.reclaimable(1, present)); // message 2 is live
    CHECK_FALSE(l.reclaimable(2, present)); // deleting it would bring message 1 back
    l.note(ack(2), 3);
    CHECK(l.reclaimable(1, present));
    present.erase(1);
    CHECK(l.reclaimable(2, present));
    CHECK(l.reclaimable(3, present));
}

TEST_CASE("journal liveness: an open transaction pins its segments; its commit depends on them") {
    liveness l;
    l.note(message(1, 7), 1);
    std::set<uint64_t> present{1, 2};
    CHECK_FALSE(l.reclaimable(1, present));
    l.note(end(record_type::commit, 7), 2);
    CHECK_FALSE(l.reclaimable(1, present)); // message 1 is now live
    l.note(ack(1), 2);
    CHECK(l.reclaimable(1, present));
    CHECK_FALSE(l.reclaimable(2, present)); // its commit and ack refer to segment 1
    present.erase(1);
    CHECK(l.reclaimable(2, present));
}

TEST_CASE("journal liveness: a rolled back transaction frees its segment") {
    liveness l;
    l.note(message(1, 9), 1);
    l.note(end(record_type::rollback, 9), 2);
    CHECK(l.reclaimable(1, {1, 2}));
    CHECK(l.live_messages(1) == 0);
}

TEST_CASE("journal liveness: bindings and recent duplicate ids are forwarded, old ids are not") {
    liveness l{2};
    l.note(binding(), 1);
    l.note(message(1, 0, "x"), 1);
    l.note(message(2, 0, "y"), 1);
    l.note(message(3, 0, "z"), 2); // "x" falls out of a cache of two
    l.note(ack(1), 2);
    l.note(ack(2), 2);
    REQUIRE(l.reclaimable(1, {1, 2}));
    auto fwd = l.take_forwards(1);
    REQUIRE(fwd.size() == 2);
    CHECK(fwd[0].type == record_type::add_queue);
    dup_payload p;
    REQUIRE(decode_payload(fwd[1].payload, p));
    CHECK(p.dup_id == "y");
    CHECK(l.take_forwards(1).empty()); // forgotten in segment 1 once taken
}

TEST_CASE("journal liveness: an unfinished transaction pins its segment until a rollback ends it") {
    liveness l;
    l.note(message(1, 7), 1);
    l.note(ack(9, 7), 1);
    std::set<uint64_t> present{1, 2};
    CHECK(l.open_transactions() == std::vector<uint64_t>{7});
    CHECK_FALSE(l.reclaimable(1, present));
    // What recovery (or a failed COMMIT) appends for it, here in a later segment.
    l.note(end(record_type::rollback, 7), 2);
    CHECK(l.open_transactions().empty());
    CHECK(l.reclaimable(1, present));
}

TEST_CASE("journal liveness: a prepared transaction pins its records and its prepare record "
          "until its outcome, and is not rolled back by recovery") {
    liveness l;
    l.note(message(1, 5), 1);
    record prepare;
    prepare.type = record_type::prepare;
    prepare.payload = encode_payload(tx_payload{5, "xid"});
    l.note(prepare, 2);
    l.note(message(2, 6), 2); // open, not prepared
    std::set<uint64_t> present{1, 2, 3};
    CHECK_FALSE(l.reclaimable(1, present));
    CHECK_FALSE(l.reclaimable(2, present));
    CHECK(l.open_transactions() == std::vector<uint64_t>{6});
    CHECK(l.prepared_count() == 1);
    l.note(end(record_type::rollback, 6), 3);
    l.note(end(record_type::rollback, 5), 3);
    CHECK(l.prepared_count() == 0);
    CHECK(l.reclaimable(1, present));
    CHECK(l.reclaimable(2, present));
    // The outcome outlives the prepare record, or the branch would come back prepared.
    CHECK_FALSE(l.reclaimable(3, present));
    present.erase(2);
    CHECK(l.reclaimable(3, present));
}
