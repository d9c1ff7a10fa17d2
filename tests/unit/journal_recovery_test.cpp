// SPDX-License-Identifier: Apache-2.0
// Recovery in one pass (actors/journal/recovery.cpp, recover_journal; docs/journal.md,
// "Recovery phases"): the store hands each segment's records to a visitor in place, each record
// is decoded once for the liveness books and the replay, and the result is exactly what the
// record-by-record path (store::open, liveness::note, rebuild) gives.
#include "actors/journal/journal_liveness.hpp"
#include "actors/journal/journal_store.hpp"
#include "actors/journal/recovery.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace actormq;
using namespace actormq::journal;

namespace {

using actormq::test::temp_dir;

// Small segments, so a few dozen records span many files and acks and commits land in other
// segments than what they refer to.
store_config small_config(const temp_dir& tmp) {
    store_config cfg;
    cfg.directory = tmp.path + "/journal";
    cfg.file_size = 300;
    return cfg;
}

/// Appends records one batch each (so they spread over segments), numbering them.
struct journal_writer {
    store& st;
    uint64_t next_id = 1;

    store::placement add(record_type type, std::string payload, uint64_t tx = 0) {
        std::string bytes;
        encode(record{type, next_id++, tx, std::move(payload)}, bytes);
        return st.append(bytes);
    }

    void queue(const std::string& name, const std::string& address, uint8_t routing = 0) {
        add(record_type::add_queue, encode_payload(queue_payload{name, address, routing}));
    }

    void message(uint64_t id,
                 const std::string& address,
                 std::vector<std::string> queues,
                 uint64_t tx = 0,
                 const std::string& dup = {}) {
        message_payload p{id,
                          address,
                          "/queue/" + address,
                          {{"persistent", "true"}},
                          "body-" + std::to_string(id),
                          std::move(queues)};
        if (!dup.empty()) {
            p.headers.emplace_back(duplicate_id_header, dup);
        }
        add(record_type::add_message, encode_payload(p), tx);
    }

    void ack(const std::string& queue, uint64_t id) {
        add(record_type::ack, encode_payload(ack_payload{queue, id}));
    }

    void end(record_type type, uint64_t tx) { add(type, encode_payload(tx_payload{tx})); }
};

/// A journal with every kind of record and the cases replay must get right.
void write_mixed_journal(const store_config& cfg) {
    store st{cfg};
    REQUIRE(st.open(corrupt_policy::refuse).error.empty());
    journal_writer w{st};
    w.queue("a", "a");
    w.queue("b", "b");
    w.queue("t.sub", "t", 1);
    w.queue("gone", "gone");
    for (uint64_t i = 1; i <= 12; ++i) {
        w.message(i, "a", {"a"}, 0, "dup-a-" + std::to_string(i));
    }
    w.message(13, "t", {"t.sub", "b"});
    w.message(14, "b", {"b", "b"}); // one queue named twice holds it twice
    w.message(15, "gone", {"gone"});
    w.ack("a", 2);
    w.ack("a", 5);
    w.ack("b", 13);      // still held by t.sub
    w.ack("b", 14);      // every occurrence of b leaves: gone
    w.ack("a", 999);     // unknown message: nothing
    w.ack("nowhere", 3); // a queue the message is not in: nothing
    // A committed transaction whose records straddle segments, acked after it committed.
    w.message(20, "a", {"a"}, 7, "dup-tx-20");
    w.message(21, "a", {"a"}, 7);
    w.add(record_type::duplicate_id, encode_payload(dup_payload{"b", "dup-b-only"}), 7);
    w.end(record_type::prepare, 7);
    w.end(record_type::commit, 7);
    w.ack("a", 21);
    // A rolled back one and one never ended.
    w.message(30, "a", {"a"}, 8);
    w.end(record_type::rollback, 8);
    w.message(31, "b", {"b"}, 9);
    // The same message id written again: the later copy counts, in its later place.
    w.message(3, "a", {"a"});
    w.add(record_type::delete_queue, encode_payload(queue_payload{"gone", "gone", 0}));
    w.add(record_type::duplicate_id, encode_payload(dup_payload{"a", "dup-a-plain"}));
    st.sync();
}

std::vector<uint64_t> ids_of(const recovered_queue& q) {
    std::vector<uint64_t> ids;
    for (const auto& m : q.messages) {
        ids.push_back(m->id);
    }
    return ids;
}

const recovered_queue* find_queue(const recovered_state& rs, const std::string& name) {
    for (const auto& q : rs.queues) {
        if (q.name == name) {
            return &q;
        }
    }
    return nullptr;
}

/// What the books say about each segment, to compare two liveness objects.
std::string describe(journal::liveness& l, const std::vector<uint64_t>& segs) {
    std::set<uint64_t> present(segs.begin(), segs.end());
    std::string out;
    for (auto tx : l.open_transactions()) {
        out += "open_tx " + std::to_string(tx) + "\n";
    }
    for (auto s : segs) {
        out += "seg " + std::to_string(s) + " live=" + std::to_string(l.live_messages(s))
               + " reclaimable=" + std::to_string(l.reclaimable(s, present)) + "\n";
    }
    for (auto s : segs) {
        for (const auto& r : l.take_forwards(s)) {
            out += "forward from " + std::to_string(s) + ": " + std::to_string(int(r.type)) + " "
                   + r.payload + "\n";
        }
    }
    return out;
}

} // namespace

TEST_CASE("journal recovery: replay restores queues in journal order with acks, transactions, "
          "duplicate ids and re-written ids applied") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    write_mixed_journal(cfg);
    store st{cfg};
    journal::liveness live{100};
    open_result opened;
    auto rs =
        recover_journal(st, live, recovery_options{100, true, corrupt_policy::refuse}, opened);
    REQUIRE(rs.error.empty());
    CHECK(opened.records.empty());  // streamed, never collected
    REQUIRE(rs.queues.size() == 3); // "gone" was deleted
    REQUIRE(find_queue(rs, "a") != nullptr);
    REQUIRE(find_queue(rs, "b") != nullptr);
    REQUIRE(find_queue(rs, "t.sub") != nullptr);
    CHECK(ids_of(*find_queue(rs, "a"))
          == std::vector<uint64_t>{1, 4, 6, 7, 8, 9, 10, 11, 12, 20, 3});
    CHECK(ids_of(*find_queue(rs, "b")).empty());
    CHECK(ids_of(*find_queue(rs, "t.sub")) == std::vector<uint64_t>{13});
    CHECK(find_queue(rs, "t.sub")->routing == routing_type::multicast);
    CHECK(rs.messages == 12);
    CHECK(rs.rolled_back_transactions == 1);
    CHECK(rs.max_message_id == 21); // acks do not count; 30 rolled back, 31 never ended
    CHECK(rs.max_tx_id == 9);
    CHECK(rs.max_record_id == rs.records);
    const auto& a_ids = rs.duplicate_ids.at("a");
    CHECK(a_ids.front() == "dup-a-1");
    CHECK(a_ids.back() == "dup-a-plain");
    CHECK(std::count(a_ids.begin(), a_ids.end(), "dup-tx-20") == 1);
    CHECK(rs.duplicate_ids.at("b") == std::vector<std::string>{"dup-b-only"});
    const auto& m = *find_queue(rs, "a")->messages.front();
    CHECK(m.body == "body-1");
    CHECK(m.destination == "/queue/a");
    CHECK(m.persistent);
    CHECK(m.headers.size() == 2);
    CHECK(rs.bytes_read > 0);
}

TEST_CASE("journal recovery: one pass gives what open, liveness::note and rebuild give record "
          "by record") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    write_mixed_journal(cfg);
    recovered_state one;
    recovered_state two;
    journal::liveness live_one{100};
    journal::liveness live_two{100};
    std::vector<uint64_t> segs;
    {
        store st{cfg};
        open_result opened;
        one = recover_journal(st, live_one, recovery_options{100, true, corrupt_policy::refuse},
                              opened);
        segs = st.segments();
    }
    {
        store st{cfg};
        auto opened = st.open(corrupt_policy::refuse);
        for (const auto& lr : opened.records) {
            live_two.note(lr.rec, lr.file_seq);
        }
        two = rebuild(opened, 100, true, corrupt_policy::refuse);
    }
    REQUIRE(segs.size() > 5);
    CHECK(one.records == two.records);
    CHECK(one.messages == two.messages);
    CHECK(one.max_message_id == two.max_message_id);
    CHECK(one.max_record_id == two.max_record_id);
    CHECK(one.max_tx_id == two.max_tx_id);
    CHECK(one.rolled_back_transactions == two.rolled_back_transactions);
    CHECK(one.duplicate_ids == two.duplicate_ids);
    REQUIRE(one.queues.size() == two.queues.size());
    for (size_t i = 0; i < one.queues.size(); ++i) {
        CHECK(one.queues[i].name == two.queues[i].name);
        CHECK(ids_of(one.queues[i]) == ids_of(two.queues[i]));
    }
    CHECK(describe(live_one, segs) == describe(live_two, segs));
}

TEST_CASE("journal recovery: the store hands each segment's records to the visitor in place, "
          "in journal order") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    write_mixed_journal(cfg);
    store st{cfg};
    std::vector<uint64_t> ids;
    std::vector<uint64_t> batch_segments;
    auto opened = st.open(corrupt_policy::refuse, [&](const std::vector<record_ref>& batch) {
        batch_segments.push_back(batch.front().file_seq);
        for (const auto& r : batch) {
            CHECK(r.file_seq == batch.front().file_seq);
            ids.push_back(r.rec.id);
            // The view is the record as written: decoding it again from the file agrees.
            record again;
            REQUIRE(st.read(r.file_seq, r.offset, again));
            CHECK(again.payload == r.rec.payload);
        }
        return true;
    });
    REQUIRE(opened.error.empty());
    CHECK(opened.records.empty());
    CHECK(batch_segments.size() > 5);
    CHECK(std::is_sorted(batch_segments.begin(), batch_segments.end()));
    for (size_t i = 0; i < ids.size(); ++i) {
        CHECK(ids[i] == i + 1);
    }
    CHECK(opened.bytes_read > 0);
}

TEST_CASE("journal recovery: a visitor that stops open makes it fail like a refusal") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    write_mixed_journal(cfg);
    store st{cfg};
    int batches = 0;
    auto opened = st.open(corrupt_policy::refuse,
                          [&](const std::vector<record_ref>&) { return ++batches < 2; });
    CHECK(batches == 2);
    CHECK(opened.stopped);
    CHECK_THROWS_AS(st.append("x"), std::logic_error);
}

TEST_CASE("journal recovery: a payload that does not decode is refused with file and offset, "
          "or skipped and counted, by the one-pass recovery too") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    std::string path;
    uint64_t offset = 0;
    {
        store st{cfg};
        REQUIRE(st.open(corrupt_policy::refuse).error.empty());
        journal_writer w{st};
        w.queue("a", "a");
        w.message(1, "a", {"a"});
        auto bad = w.add(record_type::ack, "not an ack");
        path = st.path_of(bad.file_seq);
        offset = bad.offset;
        w.message(2, "a", {"a"});
        st.sync();
    }
    {
        store st{cfg};
        journal::liveness live;
        open_result opened;
        auto rs =
            recover_journal(st, live, recovery_options{100, true, corrupt_policy::refuse}, opened);
        CHECK(rs.error
              == "journal record at " + path + " offset " + std::to_string(offset)
                     + " is corrupt: the payload does not decode as a ack payload (record id 3, "
                       "CRC good)");
        CHECK(rs.queues.empty());
        CHECK(opened.stopped);
    }
    {
        store st{cfg};
        journal::liveness live;
        open_result opened;
        auto rs =
            recover_journal(st, live, recovery_options{100, true, corrupt_policy::skip}, opened);
        CHECK(rs.error.empty());
        REQUIRE(rs.corrupt.size() == 1);
        CHECK(rs.corrupt[0].file == path);
        CHECK(rs.corrupt[0].offset == offset);
        CHECK(rs.messages == 2);
        CHECK(rs.max_record_id == 4);
    }
}

TEST_CASE("journal recovery: a torn tail is cut and reported, everything before it recovered") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    std::string path;
    uint64_t torn_at = 0;
    {
        store st{cfg};
        REQUIRE(st.open(corrupt_policy::refuse).error.empty());
        journal_writer w{st};
        w.queue("a", "a");
        w.message(1, "a", {"a"});
        auto last = w.add(record_type::ack, encode_payload(ack_payload{"a", 1}));
        path = st.path_of(last.file_seq);
        torn_at = last.offset;
        st.sync();
    }
    {
        // Cut the last record in half, as a crash in the middle of its write would.
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(torn_at + 10));
        std::string zeros(40, '\0');
        f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
    }
    store st{cfg};
    journal::liveness live;
    open_result opened;
    auto rs = recover_journal(st, live, recovery_options{}, opened);
    CHECK(rs.error.empty());
    CHECK(rs.torn_tail);
    CHECK(rs.torn_file == path);
    CHECK(rs.torn_offset == torn_at);
    CHECK(rs.messages == 1); // the ack was torn away, so the message is still there
}

TEST_CASE("journal recovery: payloads decoded in place equal the owned decoding") {
    message_payload p{42, "orders", "/queue/orders", {{"k", "v"}, {"", ""}}, "b\0dy", {"q1", "q2"}};
    auto bytes = encode_payload(p);
    message_view v;
    REQUIRE(decode_payload(bytes, v));
    CHECK(v.message_id == 42);
    CHECK(v.address == "orders");
    CHECK(v.destination == "/queue/orders");
    REQUIRE(v.headers.size() == 2);
    CHECK(v.headers[0].first == "k");
    CHECK(v.headers[1].second.empty());
    CHECK(v.body == p.body);
    CHECK(v.queues == std::vector<std::string_view>{"q1", "q2"});
    // Every strict prefix and any extra byte are refused, as by the owned decoder.
    for (size_t n = 0; n < bytes.size(); ++n) {
        CHECK_FALSE(decode_payload(std::string_view(bytes).substr(0, n), v));
    }
    CHECK_FALSE(decode_payload(bytes + "x", v));
    record_view r{record_type::ack, 1, 0, ""};
    payload_view pv;
    auto ack = encode_payload(ack_payload{"q", 7});
    r.payload = ack;
    REQUIRE(decode_payload(r, pv));
    CHECK(pv.ack.queue == "q");
    CHECK(pv.ack.message_id == 7);
    r.type = record_type::duplicate_id; // the same bytes are not a duplicate-id payload
    CHECK_FALSE(decode_payload(r, pv));
}

TEST_CASE("journal recovery: a prepared transaction is kept undecided: its messages staged, "
          "what it acknowledged held, its xid listed, nothing rolled back") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    {
        store st{cfg};
        REQUIRE(st.open(corrupt_policy::refuse).error.empty());
        journal_writer w{st};
        w.queue("in", "in");
        w.queue("out", "out");
        w.message(1, "in", {"in"});
        w.message(2, "in", {"in"});
        // Prepared: a send to "out" and an ack of in/1.
        w.message(10, "out", {"out"}, 5, "dup-10");
        w.add(record_type::ack, encode_payload(ack_payload{"in", 1}), 5);
        w.add(record_type::prepare, encode_payload(tx_payload{5, "xid-5"}));
        // Prepared, then committed: applied as any commit.
        w.message(11, "out", {"out"}, 6);
        w.add(record_type::prepare, encode_payload(tx_payload{6, "xid-6"}));
        w.end(record_type::commit, 6);
        // Prepared, then rolled back: gone.
        w.message(12, "out", {"out"}, 7);
        w.add(record_type::prepare, encode_payload(tx_payload{7, "xid-7"}));
        w.end(record_type::rollback, 7);
        // Never prepared: rolled back by recovery.
        w.message(13, "out", {"out"}, 8);
        st.sync();
    }
    store st{cfg};
    journal::liveness live{100};
    open_result opened;
    auto rs =
        recover_journal(st, live, recovery_options{100, true, corrupt_policy::refuse}, opened);
    REQUIRE(rs.error.empty());
    REQUIRE(rs.prepared.size() == 1);
    CHECK(rs.prepared[0].tx_id == 5);
    CHECK(rs.prepared[0].xid == "xid-5");
    CHECK(rs.prepared[0].addresses == std::vector<std::string>{"in", "out"});
    CHECK(rs.rolled_back_transactions == 1);
    // Its staged message counts for the ids (the rolled back ones do not, as before).
    CHECK(rs.max_message_id == 11);
    const auto* in = find_queue(rs, "in");
    const auto* out = find_queue(rs, "out");
    REQUIRE(in != nullptr);
    REQUIRE(out != nullptr);
    CHECK(ids_of(*in) == std::vector<uint64_t>{2});
    REQUIRE(in->held.count(5) == 1);
    REQUIRE(in->held.at(5).size() == 1);
    CHECK(in->held.at(5)[0]->id == 1);
    CHECK(ids_of(*out) == std::vector<uint64_t>{11});
    REQUIRE(out->staged.count(5) == 1);
    REQUIRE(out->staged.at(5).size() == 1);
    CHECK(out->staged.at(5)[0]->id == 10);
    CHECK(out->staged.at(5)[0]->body == "body-10");
    // Its duplicate id counts only at its commit.
    CHECK(rs.duplicate_ids["out"].empty());
    // The books agree: the prepared one is not among those to roll back.
    CHECK(live.open_transactions() == std::vector<uint64_t>{8});
    CHECK(live.prepared_count() == 1);
}

TEST_CASE("journal recovery: a message id reused by a different message is reported with file "
          "and offset; the same message written again is not") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    std::string path;
    uint64_t offset = 0;
    {
        store st{cfg};
        REQUIRE(st.open(corrupt_policy::refuse).error.empty());
        journal_writer w{st};
        w.queue("a", "a");
        w.queue("b", "b");
        w.message(1, "a", {"a"});
        w.message(1, "a", {"a"}); // written again as it was (a reclaimed segment's message)
        w.message(2, "a", {"a"});
        auto at = w.add(record_type::add_message,
                        encode_payload(message_payload{2, "b", "/queue/b", {}, "other", {"b"}}));
        path = st.path_of(at.file_seq);
        offset = at.offset;
        st.sync();
    }
    store st{cfg};
    journal::liveness live;
    open_result opened;
    auto rs =
        recover_journal(st, live, recovery_options{100, true, corrupt_policy::refuse}, opened);
    CHECK(rs.error.empty());
    CHECK(rs.id_collisions_total == 1);
    REQUIRE(rs.id_collisions.size() == 1);
    CHECK(rs.id_collisions[0].file == path);
    CHECK(rs.id_collisions[0].offset == offset);
    CHECK(rs.id_collisions[0].reason
          == "message id 2 of address 'b' replaces a different live message of address 'a' "
             "(lost)");
}
