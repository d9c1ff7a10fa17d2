// SPDX-License-Identifier: Apache-2.0
#include "actors/journal/journal_store.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

using namespace actormq::journal;
namespace fs = std::filesystem;

namespace {

using actormq::test::temp_dir;

constexpr uint64_t header_bytes = 64;

// The journal lives two levels below the temp dir, so open() has to create parents.
store_config small_config(const temp_dir& tmp, uint32_t min_files = 2) {
    store_config cfg;
    cfg.directory = tmp.path + "/data/journal";
    cfg.file_size = 4096;
    cfg.min_files = min_files;
    return cfg;
}

record make_record(uint64_t id, size_t payload_bytes) {
    std::string payload(payload_bytes, '\0');
    for (size_t i = 0; i < payload_bytes; ++i) {
        payload[i] = static_cast<char>('a' + (id + i) % 26);
    }
    return record{record_type::add_message, id, id % 3 == 0 ? id : 0, payload};
}

std::string encoded(const record& r) {
    std::string out;
    encode(r, out);
    return out;
}

// What the test appended, and where it went.
struct written {
    record rec;
    uint64_t file_seq = 0;
    uint64_t offset = 0;
};

// Appends `count` single-record batches of `payload_bytes`, with ids from `first_id`, syncs.
std::vector<written>
append_records(store& s, uint64_t first_id, size_t count, size_t payload_bytes) {
    std::vector<written> out;
    for (size_t i = 0; i < count; ++i) {
        auto rec = make_record(first_id + i, payload_bytes);
        auto where = s.append(encoded(rec));
        out.push_back({rec, where.file_seq, where.offset});
    }
    s.sync();
    return out;
}

void check_same(const std::vector<located_record>& got, const std::vector<written>& want) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        CHECK(got[i].rec.type == want[i].rec.type);
        CHECK(got[i].rec.id == want[i].rec.id);
        CHECK(got[i].rec.tx_id == want[i].rec.tx_id);
        CHECK(got[i].rec.payload == want[i].rec.payload);
        CHECK(got[i].file_seq == want[i].file_seq);
        CHECK(got[i].offset == want[i].offset);
    }
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_at(const std::string& path, uint64_t offset, const std::string& bytes) {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    REQUIRE(f.good());
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(f.good());
}

void flip_byte(const std::string& path, uint64_t offset) {
    auto bytes = read_file(path);
    REQUIRE(offset < bytes.size());
    write_at(path, offset, std::string(1, static_cast<char>(bytes[offset] ^ 0x5a)));
}

open_result reopen(const store_config& cfg, corrupt_policy policy = corrupt_policy::refuse) {
    store s(cfg);
    return s.open(policy);
}

std::vector<written> without(std::vector<written> all, size_t index) {
    all.erase(all.begin() + static_cast<std::ptrdiff_t>(index));
    return all;
}

} // namespace

TEST_CASE("journal store: open: creates the directory and min_files zero-filled segments") {
    temp_dir tmp;
    auto cfg = small_config(tmp, 3);
    store s(cfg);
    auto res = s.open(corrupt_policy::refuse);
    CHECK(res.error.empty());
    CHECK(res.records.empty());
    CHECK_FALSE(res.torn_tail);
    CHECK(s.segments() == std::vector<uint64_t>{1, 2, 3});
    CHECK(s.current_segment() == 1);
    CHECK(s.bytes_used() == 0);
    CHECK(s.path_of(2) == cfg.directory + "/actormq-data-0000000002.amq");
    for (uint64_t seq : {1, 2, 3}) {
        auto bytes = read_file(s.path_of(seq));
        REQUIRE(bytes.size() == cfg.file_size);
        CHECK(bytes.substr(0, 8) == "ACTORMQJ");
        CHECK(bytes.substr(8, 4) == std::string("\x01\0\0\0", 4));
        CHECK(bytes[12] == static_cast<char>(seq));
        CHECK(bytes.find_first_not_of('\0', 13) == std::string::npos);
    }
}

TEST_CASE("journal store: append, sync and reopen return the same records at their positions") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    std::vector<written> want;
    {
        store s(cfg);
        REQUIRE(s.open(corrupt_policy::refuse).error.empty());
        want = append_records(s, 1, 3, 100);
        CHECK(want[0].offset == header_bytes);
        CHECK(want[1].offset == header_bytes + record_header_bytes + 100);
        // A batch of two records is placed as one.
        auto batch = encoded(make_record(4, 10)) + encoded(make_record(5, 20));
        auto where = s.append(batch);
        s.sync();
        want.push_back({make_record(4, 10), where.file_seq, where.offset});
        want.push_back(
            {make_record(5, 20), where.file_seq, where.offset + record_header_bytes + 10});
        CHECK(s.bytes_used() == header_bytes + 3 * 128 + 38 + 48);
    }
    store s(cfg);
    auto res = s.open(corrupt_policy::refuse);
    CHECK(res.error.empty());
    CHECK(res.corrupt.empty());
    CHECK_FALSE(res.torn_tail);
    check_same(res.records, want);
    CHECK(s.bytes_used() == header_bytes + 3 * 128 + 38 + 48);
    // Appends continue right after the last record.
    auto next = s.append(encoded(make_record(6, 1)));
    CHECK(next.file_seq == 1);
    CHECK(next.offset == header_bytes + 3 * 128 + 38 + 48);
}

TEST_CASE("journal store: append: rolls into the next segment and keeps min_files ready") {
    temp_dir tmp;
    auto cfg = small_config(tmp, 3);
    std::vector<written> want;
    {
        store s(cfg);
        REQUIRE(s.open(corrupt_policy::refuse).error.empty());
        // 1000-byte records: four fit in a 4096-byte segment after its header.
        for (uint64_t id = 1; id <= 10; ++id) {
            auto batch = append_records(s, id, 1, 1000 - record_header_bytes);
            want.push_back(batch[0]);
            CHECK(batch[0].file_seq == (id - 1) / 4 + 1);
            CHECK(batch[0].offset == header_bytes + (id - 1) % 4 * 1000);
            auto segs = s.segments();
            CHECK(segs.back() - s.current_segment() == 2);
        }
        CHECK(s.current_segment() == 3);
        CHECK(s.segments() == std::vector<uint64_t>{1, 2, 3, 4, 5});
        CHECK(s.bytes_used() == 3 * header_bytes + 10 * 1000);
    }
    store s(cfg);
    auto res = s.open(corrupt_policy::refuse);
    CHECK(res.error.empty());
    check_same(res.records, want);
    CHECK(s.current_segment() == 3);
    CHECK(s.segments() == std::vector<uint64_t>{1, 2, 3, 4, 5});
}

TEST_CASE("journal store: append: a batch larger than a segment gets a segment of its own") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    std::vector<written> want;
    {
        store s(cfg);
        REQUIRE(s.open(corrupt_policy::refuse).error.empty());
        want = append_records(s, 1, 1, 10);
        auto big = append_records(s, 2, 1, 10000);
        CHECK(big[0].file_seq == 2);
        CHECK(big[0].offset == header_bytes);
        CHECK(fs::file_size(s.path_of(2)) == header_bytes + record_header_bytes + 10000);
        auto after = append_records(s, 3, 1, 10);
        CHECK(after[0].file_seq == 3);
        CHECK(after[0].offset == header_bytes);
        want.push_back(big[0]);
        want.push_back(after[0]);
    }
    auto res = reopen(cfg);
    CHECK(res.error.empty());
    check_same(res.records, want);
}

TEST_CASE("journal store: append: a first batch larger than a segment grows the empty one") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    store s(cfg);
    REQUIRE(s.open(corrupt_policy::refuse).error.empty());
    auto big = append_records(s, 1, 1, 5000);
    CHECK(big[0].file_seq == 1);
    CHECK(big[0].offset == header_bytes);
    check_same(reopen(cfg).records, big);
}

TEST_CASE("journal store: open: a torn tail in the newest segment is cut silently") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    std::vector<written> want;
    std::string path;
    {
        store s(cfg);
        REQUIRE(s.open(corrupt_policy::refuse).error.empty());
        want = append_records(s, 1, 4, 200);
        path = s.path_of(1);
    }
    auto last = want.back();
    auto record_bytes = record_header_bytes + 200;
    SUBCASE("the record's tail never reached the disk") {
        write_at(path, last.offset + 100, std::string(record_bytes - 100, '\0'));
    }
    SUBCASE("only the first bytes of the header reached the disk") {
        write_at(path, last.offset + 6, std::string(record_bytes - 6, '\0'));
    }
    SUBCASE("the record's head never reached the disk but its tail did") {
        write_at(path, last.offset, std::string(100, '\0'));
    }
    bool shortened = false;
    SUBCASE("the file was cut inside the record") {
        fs::resize_file(path, last.offset + 50);
        shortened = true;
    }
    want.pop_back();
    {
        store s(cfg);
        auto res = s.open(corrupt_policy::refuse);
        CHECK(res.error.empty());
        CHECK(res.corrupt.empty());
        CHECK(res.torn_tail);
        CHECK(res.torn_file == path);
        CHECK(res.torn_offset == last.offset);
        check_same(res.records, want);
        // The cut is zeroed, and appends start there.
        auto bytes = read_file(path);
        CHECK(bytes.find_first_not_of('\0', last.offset) == std::string::npos);
        auto more = append_records(s, 5, 1, 30);
        // A shortened file has no room left after the cut, so the append moves on.
        CHECK(more[0].file_seq == (shortened ? 2 : 1));
        CHECK(more[0].offset == (shortened ? header_bytes : last.offset));
        want.push_back(more[0]);
    }
    auto res = reopen(cfg);
    CHECK(res.error.empty());
    CHECK_FALSE(res.torn_tail);
    check_same(res.records, want);
}

TEST_CASE("journal store: open: a torn first record of a new segment is cut silently") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    std::vector<written> want;
    uint64_t torn_seq = 0;
    {
        store s(cfg);
        REQUIRE(s.open(corrupt_policy::refuse).error.empty());
        want = append_records(s, 1, 5, 1000 - record_header_bytes);
        torn_seq = want.back().file_seq;
        REQUIRE(torn_seq == 2);
        REQUIRE(want.back().offset == header_bytes);
        write_at(s.path_of(torn_seq), header_bytes + 500, std::string(500, '\0'));
    }
    want.pop_back();
    store s(cfg);
    auto res = s.open(corrupt_policy::refuse);
    CHECK(res.error.empty());
    CHECK(res.torn_tail);
    CHECK(res.torn_offset == header_bytes);
    check_same(res.records, want);
    CHECK(s.current_segment() == torn_seq);
    CHECK(s.append(encoded(make_record(5, 1))).offset == header_bytes);
}

TEST_CASE("journal store: open: a corrupt record followed by valid ones is refused exactly") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    std::vector<written> want;
    std::string path;
    {
        store s(cfg);
        REQUIRE(s.open(corrupt_policy::refuse).error.empty());
        want = append_records(s, 1, 5, 100);
        path = s.path_of(1);
    }
    auto bad = want[1];
    flip_byte(path, bad.offset + record_header_bytes + 7);
    auto before = read_file(path);
    auto res = reopen(cfg, corrupt_policy::refuse);
    CHECK(res.error
          == "journal record at " + path + " offset " + std::to_string(bad.offset)
                 + " is corrupt: CRC mismatch");
    REQUIRE(res.corrupt.size() == 1);
    CHECK(res.corrupt[0].file == path);
    CHECK(res.corrupt[0].offset == bad.offset);
    CHECK(res.corrupt[0].reason == "CRC mismatch");
    CHECK_FALSE(res.torn_tail);
    // Refusing leaves the evidence on disk untouched.
    CHECK(read_file(path) == before);
}

TEST_CASE("journal store: open: policy skip reports a corrupt record and keeps every other") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    std::vector<written> want;
    std::string path;
    {
        store s(cfg);
        REQUIRE(s.open(corrupt_policy::refuse).error.empty());
        want = append_records(s, 1, 8, 400);
        path = s.path_of(1);
    }
    auto bad = want[2];
    REQUIRE(bad.file_seq == 1);
    flip_byte(path, bad.offset + 4); // the type byte
    store s(cfg);
    auto res = s.open(corrupt_policy::skip);
    CHECK(res.error.empty());
    REQUIRE(res.corrupt.size() == 1);
    CHECK(res.corrupt[0].file == path);
    CHECK(res.corrupt[0].offset == bad.offset);
    CHECK(res.corrupt[0].reason.rfind("unknown record type", 0) == 0);
    CHECK_FALSE(res.torn_tail);
    check_same(res.records, without(want, 2));
    CHECK(s.append(encoded(make_record(9, 1))).file_seq == want.back().file_seq);
}

TEST_CASE("journal store: open: damage at the end of an older segment is corrupt, not torn") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    std::vector<written> want;
    std::string path;
    {
        store s(cfg);
        REQUIRE(s.open(corrupt_policy::refuse).error.empty());
        want = append_records(s, 1, 6, 1000 - record_header_bytes);
        path = s.path_of(1);
    }
    auto bad = want[3];
    REQUIRE(bad.file_seq == 1);
    REQUIRE(want[4].file_seq == 2);
    write_at(path, bad.offset + 500, std::string(500, '\0'));
    auto refused = reopen(cfg, corrupt_policy::refuse);
    CHECK(refused.error
          == "journal record at " + path + " offset " + std::to_string(bad.offset)
                 + " is corrupt: CRC mismatch");
    auto skipped = reopen(cfg, corrupt_policy::skip);
    CHECK(skipped.error.empty());
    CHECK_FALSE(skipped.torn_tail);
    REQUIRE(skipped.corrupt.size() == 1);
    check_same(skipped.records, without(want, 3));
}

TEST_CASE("journal store: open: a zeroed length that hides later records is corrupt") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    std::vector<written> want;
    std::string path;
    {
        store s(cfg);
        REQUIRE(s.open(corrupt_policy::refuse).error.empty());
        want = append_records(s, 1, 4, 100);
        path = s.path_of(1);
    }
    write_at(path, want[1].offset, std::string(4, '\0'));
    auto res = reopen(cfg, corrupt_policy::refuse);
    CHECK(res.error
          == "journal record at " + path + " offset " + std::to_string(want[1].offset)
                 + " is corrupt: a zero length is followed by non-zero bytes at offset "
                 + std::to_string(want[1].offset + 4));
    auto skipped = reopen(cfg, corrupt_policy::skip);
    check_same(skipped.records, without(want, 1));
}

TEST_CASE("journal store: open: a segment with a bad header is refused naming the file") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    std::string path;
    {
        store s(cfg);
        REQUIRE(s.open(corrupt_policy::refuse).error.empty());
        append_records(s, 1, 2, 10);
        path = s.path_of(2);
    }
    std::string problem;
    SUBCASE("magic") {
        write_at(path, 0, "ACTORMQX");
        problem = "the magic is not ACTORMQJ";
    }
    SUBCASE("version") {
        write_at(path, 8, std::string("\x02", 1));
        problem = "unsupported format version 2";
    }
    SUBCASE("sequence number") {
        write_at(path, 12, std::string("\x07", 1));
        problem = "the header names segment 7";
    }
    SUBCASE("shorter than a header") {
        fs::resize_file(path, 10);
        problem = "the file is 10 bytes, shorter than the 64-byte header";
    }
    for (auto policy : {corrupt_policy::refuse, corrupt_policy::skip}) {
        auto res = reopen(cfg, policy);
        CHECK(res.error == "journal segment " + path + " has a bad header: " + problem);
        CHECK(res.records.empty());
    }
}

TEST_CASE("journal store: open: an interrupted segment creation is cleaned up") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    std::string leftover;
    {
        store s(cfg);
        REQUIRE(s.open(corrupt_policy::refuse).error.empty());
        leftover = s.path_of(3) + ".tmp";
        std::ofstream(leftover) << "half";
    }
    store s(cfg);
    CHECK(s.open(corrupt_policy::refuse).error.empty());
    CHECK_FALSE(fs::exists(leftover));
    CHECK(s.segments() == std::vector<uint64_t>{1, 2});
}

TEST_CASE("journal store: open: other files in the directory are ignored") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    fs::create_directories(cfg.directory);
    std::ofstream(cfg.directory + "/README") << "x";
    std::ofstream(cfg.directory + "/actormq-data-12.amq") << "x";
    std::ofstream(cfg.directory + "/actormq-data-00000000001.amq") << "x";
    store s(cfg);
    CHECK(s.open(corrupt_policy::refuse).error.empty());
    CHECK(s.segments() == std::vector<uint64_t>{1, 2});
}

TEST_CASE("journal store: remove: deletes a segment but never the current one") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    std::vector<written> want;
    {
        store s(cfg);
        REQUIRE(s.open(corrupt_policy::refuse).error.empty());
        want = append_records(s, 1, 9, 1000 - record_header_bytes);
        REQUIRE(s.current_segment() == 3);
        auto first = s.path_of(1);
        s.remove(1);
        CHECK_FALSE(fs::exists(first));
        CHECK(s.segments() == std::vector<uint64_t>{2, 3, 4});
        CHECK_THROWS_AS(s.remove(3), std::invalid_argument);
        CHECK_THROWS_AS(s.remove(1), std::invalid_argument);
        CHECK(s.bytes_used() == 2 * header_bytes + 5 * 1000);
    }
    want.erase(want.begin(), want.begin() + 4);
    auto res = reopen(cfg);
    CHECK(res.error.empty());
    check_same(res.records, want);
}

TEST_CASE("journal store: read: reads back a record at its position") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    store s(cfg);
    REQUIRE(s.open(corrupt_policy::refuse).error.empty());
    auto want = append_records(s, 1, 6, 1000 - record_header_bytes);
    for (const auto& w : want) {
        record got;
        REQUIRE(s.read(w.file_seq, w.offset, got));
        CHECK(got.id == w.rec.id);
        CHECK(got.payload == w.rec.payload);
    }
    record got;
    CHECK_FALSE(s.read(1, want[0].offset + 1, got));
    CHECK_FALSE(s.read(1, 0, got));
    CHECK_FALSE(s.read(1, cfg.file_size - 4, got));
    CHECK_FALSE(s.read(99, header_bytes, got));
    // Unwritten space is not a record.
    CHECK_FALSE(s.read(2, header_bytes + 2000, got));
}

TEST_CASE("journal store: open: a refused journal cannot be appended to") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    {
        store s(cfg);
        REQUIRE(s.open(corrupt_policy::refuse).error.empty());
        append_records(s, 1, 3, 10);
        flip_byte(s.path_of(1), header_bytes + 30);
    }
    store s(cfg);
    CHECK_FALSE(s.open(corrupt_policy::refuse).error.empty());
    CHECK_THROWS_AS(s.append("x"), std::logic_error);
}

TEST_CASE("journal store: errors from the system name the operation and the path") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    fs::create_directories(tmp.path + "/data");
    std::ofstream(cfg.directory) << "a file where the directory should be";
    store s(cfg);
    try {
        s.open(corrupt_policy::refuse);
        FAIL("open() should have thrown");
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()).find(cfg.directory) != std::string::npos);
    }
}

TEST_CASE("journal store: a mirror fed chunks of the live's segments and its new appends opens "
          "as the same journal") {
    temp_dir live_dir;
    temp_dir mirror_dir;
    auto live_cfg = small_config(live_dir, 3);
    auto mirror_cfg = small_config(mirror_dir, 3);
    store live(live_cfg);
    REQUIRE(live.open(corrupt_policy::refuse).error.empty());
    // Six 1000-byte records: segments 1 and 2 (four fit in one).
    append_records(live, 1, 6, 1000 - record_header_bytes);
    // The snapshot a sync starts from: every segment with records, up to where its bytes end
    // now (segments created ahead of use hold a header only, and the mirror makes its own).
    std::vector<std::pair<uint64_t, uint64_t>> snapshot;
    for (auto seq : live.segments()) {
        if (live.end_of(seq) > header_bytes) {
            snapshot.emplace_back(seq, live.end_of(seq));
        }
    }
    CHECK(snapshot.size() == 2);
    CHECK(live.end_of(1) == header_bytes + 4 * 1000);
    CHECK(live.end_of(2) == header_bytes + 2 * 1000);
    store mirror(mirror_cfg);
    mirror.open_mirror();
    // New appends reach the mirror while the copy is still under way: positions keep them
    // apart from the copied bytes.
    for (uint64_t id = 7; id <= 9; ++id) {
        auto bytes = encoded(make_record(id, 1000 - record_header_bytes));
        auto where = live.append(bytes);
        mirror.write_at(where.file_seq, where.offset, bytes);
    }
    live.sync();
    for (auto [seq, end] : snapshot) {
        for (uint64_t off = 0; off < end; off += 300) {
            auto chunk = live.read_bytes(seq, off, std::min<uint64_t>(300, end - off));
            REQUIRE(chunk.size() == std::min<uint64_t>(300, end - off));
            mirror.write_at(seq, off, chunk);
        }
    }
    CHECK(live.read_bytes(1, live.end_of(1), 100).empty());
    mirror.sync();
    CHECK(mirror.end_of(3) == live.end_of(3));
    CHECK(mirror.current_segment() == 3);
    // A segment the live reclaims goes on the mirror too.
    live.remove(1);
    mirror.remove(1);
    mirror.sync();
    auto want = reopen(live_cfg);
    auto got = reopen(mirror_cfg);
    REQUIRE(want.error.empty());
    REQUIRE(got.error.empty());
    CHECK_FALSE(got.torn_tail);
    CHECK(got.records.size() == 5);
    REQUIRE(got.records.size() == want.records.size());
    for (size_t i = 0; i < got.records.size(); ++i) {
        CHECK(got.records[i].rec.id == want.records[i].rec.id);
        CHECK(got.records[i].rec.payload == want.records[i].rec.payload);
        CHECK(got.records[i].file_seq == want.records[i].file_seq);
        CHECK(got.records[i].offset == want.records[i].offset);
    }
}

TEST_CASE("journal store: a mirror refuses a directory that holds segments") {
    temp_dir tmp;
    auto cfg = small_config(tmp);
    {
        store s(cfg);
        REQUIRE(s.open(corrupt_policy::refuse).error.empty());
    }
    store mirror(cfg);
    CHECK_THROWS_AS(mirror.open_mirror(), std::invalid_argument);
}
