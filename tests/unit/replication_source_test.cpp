// SPDX-License-Identifier: Apache-2.0
// The live's side of replication as data (actors/replication/source.cpp): sync chunks within
// the window, numbered batches, cumulative acknowledgements and the phase that decides whether
// a confirmation waits for the backup (docs/replication.md, "Confirmation").
#include "actors/replication/source.hpp"

#include <doctest/doctest.h>

using namespace actormq::replication;

namespace {

source::clock::time_point t0{};

source small() {
    source::settings s;
    s.chunk_bytes = 100;
    s.window_bytes = 250;
    return source{s};
}

} // namespace

TEST_CASE("replication source: the snapshot goes out in chunks within the window, and the "
          "sync completes when the backup has the batch with the last chunk") {
    auto src = small();
    src.attach(7, {{1, 230, {}}, {2, 64, {}}, {3, 0, {}}}, t0);
    CHECK(src.phase() == sync_phase::copying);
    CHECK(src.sync_total() == 294);
    CHECK_FALSE(src.confirm_needs_backup());
    std::vector<batch> sent;
    while (auto c = src.next_chunk()) {
        sent.push_back(src.chunk_batch(*c, std::string(c->length, 'x'), t0));
    }
    // 100 + 100 + 30 bytes of segment 1 fill the window (250 not yet reached after 230,
    // then 294 > 250 after segment 2's 64): the fourth chunk went, nothing more is left.
    REQUIRE(sent.size() == 4);
    CHECK(sent[0].seq == 1);
    CHECK(sent[0].epoch == 7);
    CHECK(sent[0].ops[0].file_seq == 1);
    CHECK(sent[0].ops[0].offset == 0);
    CHECK(sent[2].ops[0].offset == 200);
    CHECK(sent[2].ops[0].bytes.size() == 30);
    CHECK(sent[3].ops[0].file_seq == 2);
    CHECK(sent[3].sync_complete);
    CHECK(src.phase() == sync_phase::finishing);
    CHECK(src.confirm_needs_backup());
    CHECK(src.lag_batches() == 4);
    CHECK_FALSE(src.on_ack(3));
    CHECK(src.phase() == sync_phase::finishing);
    CHECK(src.on_ack(4));
    CHECK(src.phase() == sync_phase::in_sync);
    CHECK(src.lag_bytes() == 0);
}

TEST_CASE("replication source: the window holds chunks back until acknowledgements free it") {
    auto src = small();
    src.attach(1, {{1, 1000, {}}}, t0);
    int chunks = 0;
    while (auto c = src.next_chunk()) {
        src.chunk_batch(*c, std::string(c->length, 'x'), t0);
        ++chunks;
    }
    CHECK(chunks == 3); // 300 bytes >= 250
    src.on_ack(2);
    CHECK(src.next_chunk().has_value());
}

TEST_CASE("replication source: writes and removals noted during a sync are numbered batches "
          "between the chunks, and a removed segment is no longer copied") {
    auto src = small();
    src.attach(1, {{1, 150, {}}, {2, 80, {}}}, t0);
    auto c = src.next_chunk();
    REQUIRE(c);
    auto b1 = src.chunk_batch(*c, std::string(100, 'a'), t0);
    src.note_write(3, 64, "new");
    src.note_remove(1);
    auto b2 = src.take_batch(t0);
    REQUIRE(b2);
    CHECK(b2->seq == b1.seq + 1);
    REQUIRE(b2->ops.size() == 2);
    CHECK(b2->ops[0].kind == file_op::write);
    CHECK(b2->ops[1].kind == file_op::remove);
    // The rest of segment 1 is gone; segment 2 comes next.
    c = src.next_chunk();
    REQUIRE(c);
    CHECK(c->file_seq == 2);
    CHECK(src.sync_total() == 180);
    CHECK_FALSE(src.take_batch(t0).has_value()); // nothing noted
}

TEST_CASE("replication source: an empty journal is in sync after one empty batch") {
    auto src = small();
    src.attach(1, {}, t0);
    CHECK_FALSE(src.next_chunk().has_value());
    auto b = src.take_batch(t0);
    REQUIRE(b);
    CHECK(b->ops.empty());
    CHECK(b->sync_complete);
    CHECK(src.on_ack(b->seq));
    CHECK(src.phase() == sync_phase::in_sync);
}

TEST_CASE("replication source: stale, repeated and future acknowledgements are ignored") {
    auto src = small();
    src.attach(1, {}, t0);
    auto b = src.take_batch(t0);
    CHECK_FALSE(src.on_ack(5)); // never sent
    CHECK(src.acked() == 0);
    CHECK(src.on_ack(1));
    CHECK_FALSE(src.on_ack(1));
    src.detach();
    CHECK(src.phase() == sync_phase::none);
    CHECK_FALSE(src.on_ack(1));
    src.note_write(1, 64, "x");
    CHECK_FALSE(src.take_batch(t0).has_value());
}

TEST_CASE("replication source: every acknowledged batch's round trip is measured") {
    auto src = small();
    src.attach(1, {}, t0);
    auto first = src.take_batch(t0); // sent at t0
    REQUIRE(first);
    src.note_write(1, 64, "x");
    auto second = src.take_batch(t0 + std::chrono::microseconds(100));
    REQUIRE(second);
    // One acknowledgement covers both: 500 µs and 400 µs after they went out.
    CHECK(src.on_ack(second->seq, t0 + std::chrono::microseconds(500)));
    CHECK(src.acks_measured() == 2);
    CHECK(src.ack_us_sum() == 900);
}

TEST_CASE("replication source: page files are chunks of the sync with their path, a pager's "
          "operations go out in order, and a page file removed or replaced is not copied") {
    auto src = small();
    src.attach(1, {{1, 50, {}}, {0, 120, "q/page-0000000001.amqpage"}, {0, 40, "q/cursor.amqpage"}},
               t0);
    CHECK(src.sync_total() == 210);
    auto c = src.next_chunk();
    REQUIRE(c);
    CHECK(c->path.empty());
    auto b1 = src.chunk_batch(*c, std::string(50, 'j'), t0);
    CHECK(b1.ops[0].kind == file_op::write);
    c = src.next_chunk();
    REQUIRE(c);
    CHECK(c->path == "q/page-0000000001.amqpage");
    CHECK(c->length == 100);
    auto b2 = src.chunk_batch(*c, std::string(100, 'p'), t0);
    REQUIRE(b2.ops.size() == 1);
    CHECK(b2.ops[0].kind == file_op::page_write);
    CHECK(b2.ops[0].path == "q/page-0000000001.amqpage");
    CHECK(b2.ops[0].offset == 0);
    // The pager appends to the page file, rewrites the cursor and deletes the page file:
    // the operations keep their order, and neither file is copied any more.
    src.note_page_ops({{file_op::page_write, 0, 120, "rec", "q/page-0000000001.amqpage"},
                       {file_op::page_replace, 0, 0, "cursor", "q/cursor.amqpage"},
                       {file_op::page_remove, 0, 0, {}, "q/page-0000000001.amqpage"}});
    auto b3 = src.take_batch(t0);
    REQUIRE(b3);
    REQUIRE(b3->ops.size() == 3);
    CHECK(b3->ops[0].kind == file_op::page_write);
    CHECK(b3->ops[1].kind == file_op::page_replace);
    CHECK(b3->ops[2].kind == file_op::page_remove);
    CHECK_FALSE(src.next_chunk().has_value());
    CHECK(src.sync_total() == 150);
    // Nothing was left to copy once the operations were noted: their batch completes the sync.
    CHECK(b3->sync_complete);
    CHECK(src.phase() == sync_phase::finishing);
}

TEST_CASE("replication source: a pager's operations without a backup are dropped") {
    auto src = small();
    src.note_page_ops({{file_op::page_write, 0, 0, "x", "q/page-0000000001.amqpage"}});
    CHECK_FALSE(src.take_batch(t0).has_value());
}

TEST_CASE("replication source: chunks of small files are gathered into one batch of up to "
          "chunk_bytes, the window counting what is gathered") {
    auto src = small();
    // Eight page files of 40 bytes: batches of 100 bytes at most, 250 in flight.
    std::vector<extent> files;
    for (int i = 1; i <= 8; ++i) {
        files.push_back({0, 40, "a/page-" + std::to_string(i)});
    }
    src.attach(3, files, t0);
    std::vector<batch> sent;
    for (;;) {
        while (auto c = src.next_chunk()) {
            src.add_chunk(*c, std::string(c->length, 'p'));
        }
        auto b = src.take_chunks(t0);
        if (!b) {
            break;
        }
        sent.push_back(std::move(*b));
    }
    // 40 + 40 + 20 (page-3's first part), then 20 + 40 + 40; then page-6 and page-7 reach the
    // window (200 + 80 >= 250) before the batch is full, and page-8 waits.
    REQUIRE(sent.size() == 3);
    REQUIRE(sent[0].ops.size() == 3);
    CHECK(sent[0].ops[0].kind == file_op::page_write);
    CHECK(sent[0].ops[0].path == "a/page-1");
    CHECK(sent[0].ops[2].path == "a/page-3");
    CHECK(sent[0].ops[2].bytes.size() == 20);
    REQUIRE(sent[1].ops.size() == 3);
    CHECK(sent[1].ops[0].path == "a/page-3");
    CHECK(sent[1].ops[0].offset == 20);
    CHECK(sent[1].ops[2].path == "a/page-5");
    REQUIRE(sent[2].ops.size() == 2);
    CHECK(sent[2].ops[1].path == "a/page-7");
    CHECK_FALSE(sent[2].sync_complete);
    CHECK(src.sync_sent() == 280);
    CHECK(src.lag_bytes() == 280);
    CHECK_FALSE(src.next_chunk().has_value());
    // The acknowledgement of the first batch frees 100 bytes: page-8 goes, and with it the
    // sync's last chunk.
    src.on_ack(sent[0].seq);
    auto c = src.next_chunk();
    REQUIRE(c);
    CHECK(c->path == "a/page-8");
    src.add_chunk(*c, std::string(40, 'p'));
    auto last = src.take_chunks(t0);
    REQUIRE(last);
    CHECK(last->sync_complete);
    CHECK(src.phase() == sync_phase::finishing);
}

TEST_CASE("replication source: a file gone when its chunk is read is skipped, and nothing "
          "gathered makes no batch") {
    auto src = small();
    src.attach(1, {{0, 40, "a/page-1"}, {0, 40, "a/page-2"}}, t0);
    auto c = src.next_chunk();
    REQUIRE(c);
    src.add_chunk(*c, {}); // page-1 was deleted meanwhile
    CHECK(src.sync_total() == 40);
    c = src.next_chunk();
    REQUIRE(c);
    CHECK(c->path == "a/page-2");
    src.add_chunk(*c, {});
    CHECK_FALSE(src.take_chunks(t0).has_value());
    auto b = src.take_batch(t0);
    REQUIRE(b);
    CHECK(b->sync_complete);
}
