// SPDX-License-Identifier: Apache-2.0
// The journal's failure paths in pure code: the fault seam of the store
// (ACTORMQ_TEST_JOURNAL_FAULT, docs/testing.md) and recovery of a record whose CRC is good but
// whose payload does not decode (docs/journal.md, "Recovery").
#include "actors/journal/journal_store.hpp"
#include "actors/journal/recovery.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>

using namespace actormq;
using namespace actormq::journal;

namespace {

using actormq::test::temp_dir;

/// Sets the seam's variable for one scope.
struct fault_env_guard {
    explicit fault_env_guard(const char* spec) { ::setenv(fault_env, spec, 1); }
    ~fault_env_guard() { ::unsetenv(fault_env); }
};

store_config config_in(const temp_dir& tmp) {
    store_config cfg;
    cfg.directory = tmp.path + "/journal";
    cfg.file_size = 64 * 1024;
    return cfg;
}

std::string encoded(record_type type, uint64_t id, std::string payload) {
    std::string out;
    encode(record{type, id, 0, std::move(payload)}, out);
    return out;
}

std::string queue_record(uint64_t id) {
    return encoded(record_type::add_queue, id, encode_payload(queue_payload{"q", "q", 0}));
}

std::string message_record(uint64_t id, uint64_t message_id) {
    message_payload p{message_id, "q", "/queue/q", {}, "body", {"q"}};
    return encoded(record_type::add_message, id, encode_payload(p));
}

} // namespace

TEST_CASE("journal faults: seam: parses write:N:ERRNO and sync:N:ERRNO, refuses anything else") {
    std::string why;
    auto w = parse_fault("write:3:EIO", why);
    REQUIRE(w);
    CHECK(w->what == injected_fault::target::write);
    CHECK(w->nth == 3);
    CHECK(w->err == EIO);
    auto s = parse_fault("sync:1:ENOSPC", why);
    REQUIRE(s);
    CHECK(s->what == injected_fault::target::sync);
    CHECK(s->err == ENOSPC);
    for (const char* bad : {"", "write", "write:3", "write:0:EIO", "write:x:EIO", "read:1:EIO",
                            "write:1:EWHATEVER", "write:-1:EIO"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_fault(bad, why));
        CHECK(why.find(fault_env) != std::string::npos);
    }
}

TEST_CASE("journal faults: seam: the Nth write after open fails with the errno, naming call and "
          "file, and nothing of it reaches the segment") {
    temp_dir tmp;
    fault_env_guard env{"write:2:EIO"};
    store st{config_in(tmp)};
    auto opened = st.open(corrupt_policy::refuse);
    REQUIRE(opened.error.empty());
    REQUIRE(opened.fault);
    st.append(queue_record(1));
    st.sync();
    try {
        st.append(message_record(2, 1));
        FAIL("the second write should have failed");
    } catch (const io_error& e) {
        CHECK(e.op() == "pwrite");
        CHECK(e.path() == st.path_of(st.current_segment()));
        CHECK(e.code().value() == EIO);
        CHECK(errno_name(e.code().value()) == "EIO");
    }
    // Only the first record is in the journal.
    ::unsetenv(fault_env);
    store again{config_in(tmp)};
    auto back = again.open(corrupt_policy::refuse);
    REQUIRE(back.error.empty());
    CHECK(back.records.size() == 1);
    CHECK_FALSE(back.fault);
}

TEST_CASE("journal faults: seam: the Nth sync fails as fdatasync with the errno") {
    temp_dir tmp;
    fault_env_guard env{"sync:1:ENOSPC"};
    store st{config_in(tmp)};
    REQUIRE(st.open(corrupt_policy::refuse).error.empty());
    st.append(queue_record(1));
    try {
        st.sync();
        FAIL("the first sync should have failed");
    } catch (const io_error& e) {
        CHECK(e.op() == "fdatasync");
        CHECK(e.code().value() == ENOSPC);
    }
}

TEST_CASE("journal faults: seam: a malformed variable makes open fail with a clear error") {
    temp_dir tmp;
    fault_env_guard env{"write:often:EIO"};
    store st{config_in(tmp)};
    auto opened = st.open(corrupt_policy::refuse);
    CHECK(opened.error.find("ACTORMQ_TEST_JOURNAL_FAULT='write:often:EIO'") == 0);
}

TEST_CASE("journal faults: recovery: a record with a good CRC and an undecodable payload is "
          "refused with its file and offset, or skipped and reported, never dropped silently") {
    temp_dir tmp;
    auto cfg = config_in(tmp);
    std::string path;
    uint64_t bad_offset = 0;
    {
        store st{cfg};
        REQUIRE(st.open(corrupt_policy::refuse).error.empty());
        st.append(queue_record(1));
        st.append(message_record(2, 1));
        // An add_message record whose payload is not a message payload: its CRC is right.
        auto bad = st.append(encoded(record_type::add_message, 3, "not a message payload"));
        bad_offset = bad.offset;
        path = st.path_of(bad.file_seq);
        st.append(message_record(4, 2));
        st.sync();
    }
    {
        store st{cfg};
        auto opened = st.open(corrupt_policy::refuse);
        REQUIRE(opened.error.empty()); // the framing is fine; only the payload is not
        REQUIRE(opened.records.size() == 4);
        auto rs = rebuild(opened, 100, true, corrupt_policy::refuse);
        CHECK(rs.error
              == "journal record at " + path + " offset " + std::to_string(bad_offset)
                     + " is corrupt: the payload does not decode as a message "
                       "payload (record id 3, CRC good)");
        CHECK(rs.queues.empty());
    }
    {
        store st{cfg};
        auto opened = st.open(corrupt_policy::skip);
        auto rs = rebuild(opened, 100, true, corrupt_policy::skip);
        CHECK(rs.error.empty());
        REQUIRE(rs.corrupt.size() == 1);
        CHECK(rs.corrupt[0].file == path);
        CHECK(rs.corrupt[0].offset == bad_offset);
        CHECK(rs.messages == 2);
        CHECK(rs.max_record_id == 4);
    }
}

TEST_CASE("journal faults: recovery: an undecodable record inside a committed transaction is "
          "reported too") {
    temp_dir tmp;
    auto cfg = config_in(tmp);
    {
        store st{cfg};
        REQUIRE(st.open(corrupt_policy::refuse).error.empty());
        st.append(queue_record(1));
        std::string tx_rec;
        encode(record{record_type::add_message, 2, 5, "garbage"}, tx_rec);
        st.append(tx_rec);
        st.append(encoded(record_type::commit, 3, encode_payload(tx_payload{5})));
        st.sync();
    }
    store st{cfg};
    auto opened = st.open(corrupt_policy::refuse);
    auto rs = rebuild(opened, 100, true, corrupt_policy::refuse);
    CHECK(rs.error.find("is corrupt: the payload does not decode as a message payload")
          != std::string::npos);
}
