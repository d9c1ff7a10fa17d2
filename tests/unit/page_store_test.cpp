// SPDX-License-Identifier: Apache-2.0
#include "actors/paging/pager.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace actormq;
using namespace actormq::paging;

namespace {

using scratch = actormq::test::temp_dir;

store_options options(const scratch& s) {
    store_options o;
    o.directory = s.path + "/q";
    o.address = "q";
    o.page_size_bytes = 64 * 1024;
    return o;
}

message_ptr msg(uint64_t id, bool persistent = true) {
    auto m = std::make_shared<broker_message>();
    m->id = id;
    m->address = "q";
    m->destination = "/queue/q";
    m->body = "m" + std::to_string(id) + std::string(1000, '.');
    m->persistent = persistent;
    return m;
}

std::vector<message_ptr> msgs(uint64_t from, uint64_t to, bool persistent = true) {
    std::vector<message_ptr> out;
    for (auto i = from; i < to; ++i) {
        out.push_back(msg(i, persistent));
    }
    return out;
}

open_request durable_q() {
    open_request r;
    r.durable_queues = {"q"};
    return r;
}

/// Reads everything left, returning the ids in order.
std::vector<uint64_t> read_all(page_store& s, page_cursor* next = nullptr) {
    std::vector<uint64_t> ids;
    for (;;) {
        std::string error;
        auto b = s.read(8 * 1024, error);
        REQUIRE(error.empty());
        for (auto& m : b.msgs) {
            ids.push_back(m->id);
        }
        if (next != nullptr) {
            *next = b.next;
        }
        if (b.at_end) {
            return ids;
        }
    }
}

std::vector<uint64_t> iota(uint64_t from, uint64_t to) {
    std::vector<uint64_t> out;
    for (auto i = from; i < to; ++i) {
        out.push_back(i);
    }
    return out;
}

std::string newest_file(const scratch& s) {
    std::string best;
    for (const auto& e : std::filesystem::directory_iterator(s.path + "/q")) {
        auto name = e.path().filename().string();
        if (name.rfind("page-", 0) == 0 && e.path().string() > best) {
            best = e.path().string();
        }
    }
    return best;
}

} // namespace

TEST_CASE("page store: messages come back in order across files; moved deletes what it passed") {
    scratch d;
    page_store s{options(d)};
    REQUIRE(s.open({}) == "");
    REQUIRE(s.write(msgs(1, 201), {"q"}) == "");
    CHECK(s.files() >= 3);
    page_cursor next;
    CHECK(read_all(s, &next) == iota(1, 201));
    REQUIRE(s.moved(next) == "");
    CHECK(s.files() == 1);
    CHECK_FALSE(s.has_unread());
}

TEST_CASE("page store: a restart resumes at the cursor and skips what the journal gave back") {
    scratch d;
    page_cursor next;
    {
        page_store s{options(d)};
        REQUIRE(s.open(durable_q()) == "");
        REQUIRE(s.write(msgs(1, 101), {"q"}) == "");
        REQUIRE(s.write(msgs(101, 106, false), {"q"}) == ""); // non-persistent
        REQUIRE(s.write(msgs(106, 121), {"gone"}) == "");     // for a queue that is gone
        REQUIRE(s.write(msgs(121, 131), {"q"}) == "");
        std::string error;
        auto b = s.read(20 * 1024, error); // about 15 messages
        REQUIRE(!b.msgs.empty());
        REQUIRE(s.moved(b.next) == "");
        next = b.next;
    }
    // The journal had the next 10 already (a page-in whose cursor did not reach the disk).
    auto req = durable_q();
    uint64_t first_unread = 0;
    {
        page_store probe{options(d)};
        REQUIRE(probe.open(durable_q()) == "");
        std::string error;
        first_unread = probe.read(1, error).msgs.at(0)->id;
    }
    for (auto i = first_unread; i < first_unread + 10; ++i) {
        req.seed_ids.insert(i);
    }
    page_store s{options(d)};
    REQUIRE(s.open(req) == "");
    auto expected = iota(first_unread + 10, 101);
    auto tail = iota(121, 131);
    expected.insert(expected.end(), tail.begin(), tail.end());
    CHECK(read_all(s) == expected);
}

TEST_CASE("page store: a torn tail of the newest file is cut; the records before it stay") {
    scratch d;
    {
        page_store s{options(d)};
        REQUIRE(s.open({}) == "");
        REQUIRE(s.write(msgs(1, 11), {"q"}) == "");
    }
    std::string rec;
    page_message pm;
    pm.id = 99;
    pm.persistent = true;
    pm.queues = {"q"};
    encode(pm, rec);
    auto file = newest_file(d);
    auto size = std::filesystem::file_size(file);
    for (size_t cut = 1; cut < rec.size(); cut += 7) {
        std::filesystem::resize_file(file, size);
        {
            std::ofstream out(file, std::ios::binary | std::ios::app);
            out.write(rec.data(), static_cast<std::streamsize>(cut));
        }
        page_store s{options(d)};
        INFO("cut " << cut);
        REQUIRE(s.open(durable_q()) == "");
        CHECK(std::filesystem::file_size(file) == size);
        CHECK(read_all(s) == iota(1, 11));
    }
}

TEST_CASE("page store: a damaged record with a valid one after it refuses the open") {
    scratch d;
    {
        page_store s{options(d)};
        REQUIRE(s.open({}) == "");
        REQUIRE(s.write(msgs(1, 11), {"q"}) == "");
    }
    auto file = newest_file(d);
    {
        std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(file_header_bytes + 40));
        f.put('!');
    }
    page_store s{options(d)};
    auto e = s.open(durable_q());
    CHECK(e.find(file) != std::string::npos);
    CHECK(e.find("offset=16 ") != std::string::npos);
}

TEST_CASE("page store: list_paging_directory names the address directories and the largest "
          "paged id; nothing when the paging directory is missing; an error when it is not a "
          "directory") {
    scratch d;
    std::string error;
    auto none = list_paging_directory(d.path + "/paging", error);
    CHECK(none.names.empty());
    CHECK(none.max_message_id == 0);
    CHECK(error.empty());

    auto opts = [&](const std::string& address) {
        store_options o;
        o.directory = d.path + "/paging/" + directory_name(address);
        o.address = address;
        o.page_size_bytes = 64 * 1024; // about 60 messages a file: ids spread over files
        return o;
    };
    {
        page_store a{opts("orders")};
        REQUIRE(a.open({}) == "");
        REQUIRE(a.write(msgs(1, 300), {"orders"}) == "");
        page_store b{opts("a.b")};
        REQUIRE(b.open({}) == "");
        // Written out of id order, as two sessions' messages can be routed.
        REQUIRE(b.write({msg(500), msg(420), msg(499)}, {"a.b"}) == "");
    }
    std::ofstream{d.path + "/paging/stray-file"} << "x";
    auto listing = list_paging_directory(d.path + "/paging", error);
    CHECK(error.empty());
    std::sort(listing.names.begin(), listing.names.end());
    std::vector<std::string> want{directory_name("a.b"), directory_name("orders")};
    std::sort(want.begin(), want.end());
    CHECK(listing.names == want);
    CHECK(listing.max_message_id == 500);

    list_paging_directory(d.path + "/paging/stray-file", error);
    CHECK(error.find(d.path + "/paging/stray-file") != std::string::npos);
}
