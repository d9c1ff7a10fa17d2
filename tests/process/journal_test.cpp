// SPDX-License-Identifier: Apache-2.0
// The journal seen from outside: what survives SIGKILL, duplicate ids, transactions, and how a
// damaged journal is reported (docs/journal.md).
#include "protocol/journal_format.hpp"
#include "support/process_fixture.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <thread>

using namespace actormq;
using namespace actormq::test;

namespace {

/// A directory that outlives several nodes (the journal must survive restarts).
struct kept_dir {
    std::string path;

    kept_dir() {
        char tmpl[] = "/tmp/actormq-journal-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }

    ~kept_dir() {
        if (std::getenv("ACTORMQ_KEEP_TMP") == nullptr) {
            std::error_code ignored;
            std::filesystem::remove_all(path, ignored);
        }
    }

    std::string journal() const { return path + "/journal"; }
};

std::string journal_config(const std::string& top = "") {
    return node_config("", "", top);
}

/// Sends `n` messages with receipts; `persistent` adds persistent:true.
void send_many(stomp_client& c,
               const std::string& dest,
               const std::string& prefix,
               size_t n,
               bool persistent,
               header_list extra = {}) {
    for (size_t i = 0; i < n; ++i) {
        header_list hs = extra;
        if (persistent) {
            hs.push_back({"persistent", "true"});
        }
        send_routed(c, dest, prefix + std::to_string(i), hs);
    }
}

/// The first segment file of a journal directory.
std::string first_segment(const std::string& dir) {
    std::set<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        files.insert(e.path().string());
    }
    REQUIRE(!files.empty());
    return *files.begin();
}

/// Byte offsets of the records in a segment (header: 64 bytes).
std::vector<size_t> record_offsets(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<size_t> out;
    size_t pos = 64;
    journal::record r;
    size_t used = 0;
    while (journal::decode(bytes.data() + pos, bytes.size() - pos, r, used)
           == journal::decode_status::ok) {
        out.push_back(pos);
        pos += used;
    }
    out.push_back(pos); // the end of the last record
    return out;
}

void patch(const std::string& file, size_t offset, const std::string& bytes) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void stop(node_process& node) {
    node.kill(SIGTERM);
    REQUIRE(node.wait_exit(soon()).has_value());
}

/// Runs a first node in `dir` that stores `n` persistent messages on `dest`, then stops it.
void prefill(const kept_dir& dir, const std::string& dest, size_t n) {
    node_process node{node_placement{dir.path, "node-1.log"}, journal_config()};
    REQUIRE(node.wait_ready(soon()));
    stomp_client c;
    login(c, node);
    send_many(c, dest, "m", n, true);
    stop(node);
}

} // namespace

TEST_CASE("journal: persistent queue messages survive SIGKILL, non-persistent ones do not") {
    kept_dir d;
    {
        node_process node{node_placement{d.path, "node-1.log"}, journal_config()};
        REQUIRE(node.wait_ready(soon()));
        stomp_client c;
        login(c, node);
        send_many(c, "/queue/dur", "p", 20, true);
        send_many(c, "/queue/dur", "n", 5, false);
        node.kill(SIGKILL);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    node_process node{node_placement{d.path, "node-2.log"}, journal_config()};
    REQUIRE(node.wait_ready(soon()));
    INFO(node.log_tail());
    CHECK(drain_queue(node, "/queue/dur") == numbered(20, "p"));
}

TEST_CASE("journal: acknowledged messages do not come back after SIGKILL") {
    kept_dir d;
    {
        node_process node{node_placement{d.path, "node-1.log"}, journal_config()};
        REQUIRE(node.wait_ready(soon()));
        stomp_client c;
        login(c, node);
        send_many(c, "/queue/acked", "m", 10, true);
        subscribe(c, "/queue/acked", "s", "client-individual", {{"prefetch-count", "4"}});
        auto msgs = collect_messages(c, 4);
        for (auto& m : msgs) {
            stomp::frame ack;
            ack.cmd = command::ack;
            ack.add("id", *m.find("ack"));
            REQUIRE(c.send_with_receipt(ack)); // a RECEIPT after an ACK: the ack is durable
        }
        node.kill(SIGKILL);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    node_process node{node_placement{d.path, "node-2.log"}, journal_config()};
    REQUIRE(node.wait_ready(soon()));
    auto rest = drain_queue(node, "/queue/acked");
    auto expected = numbered(10, "m");
    expected.erase(expected.begin(), expected.begin() + 4);
    CHECK_MESSAGE(rest == expected, join(rest));
}

TEST_CASE("journal: a duplicate id is stored once, also after a restart") {
    kept_dir d;
    header_list dup{{"_AMQ_DUPL_ID", "order-1"}};
    {
        node_process node{node_placement{d.path, "node-1.log"}, journal_config()};
        REQUIRE(node.wait_ready(soon()));
        stomp_client c;
        login(c, node);
        send_many(c, "/queue/dup", "first", 1, true, dup);
        send_many(c, "/queue/dup", "second", 1, true, dup); // acknowledged, dropped
        node.kill(SIGKILL);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    node_process node{node_placement{d.path, "node-2.log"}, journal_config()};
    REQUIRE(node.wait_ready(soon()));
    stomp_client c;
    login(c, node);
    send_many(c, "/queue/dup", "third", 1, true, dup); // still a duplicate after recovery
    CHECK(drain_queue(node, "/queue/dup") == std::vector<std::string>{"first0"});
}

TEST_CASE("journal: a committed transaction survives SIGKILL whole, an open one is absent") {
    kept_dir d;
    {
        node_process node{node_placement{d.path, "node-1.log"}, journal_config()};
        REQUIRE(node.wait_ready(soon()));
        stomp_client c;
        login(c, node);
        c.send(command::begin, {{"transaction", "t1"}});
        send_many(c, "/queue/tx", "c", 5, true, {{"transaction", "t1"}});
        stomp::frame commit;
        commit.cmd = command::commit;
        commit.add("transaction", "t1");
        REQUIRE(c.send_with_receipt(commit));
        c.send(command::begin, {{"transaction", "t2"}});
        send_many(c, "/queue/tx", "open", 5, true, {{"transaction", "t2"}});
        node.kill(SIGKILL);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    node_process node{node_placement{d.path, "node-2.log"}, journal_config()};
    REQUIRE(node.wait_ready(soon()));
    auto got = drain_queue(node, "/queue/tx");
    CHECK_MESSAGE(got == numbered(5, "c"), join(got), "\n", node.log_tail());
}

TEST_CASE("journal: a duplicate inside a transaction fails its COMMIT and rolls it back") {
    ACTORMQ_START_NODE(node, journal_config());
    stomp_client c;
    login(c, node);
    send_many(c, "/queue/txdup", "seen", 1, true, {{"_AMQ_DUPL_ID", "x"}});
    c.send(command::begin, {{"transaction", "t"}});
    send_to(c, "/queue/txdup", "fresh", {{"transaction", "t"}, {"persistent", "true"}});
    send_to(c, "/queue/txdup", "again",
            {{"transaction", "t"}, {"persistent", "true"}, {"_AMQ_DUPL_ID", "x"}});
    c.send(command::commit, {{"transaction", "t"}, {"receipt", "c1"}});
    auto err = expect_error_and_close(c, "duplicate message in transaction 't'");
    CHECK(drain_queue(node, "/queue/txdup") == std::vector<std::string>{"seen0"});
}

TEST_CASE("journal: a corrupt record in the middle stops the node with file and offset") {
    kept_dir d;
    prefill(d, "/queue/bad", 10);
    auto seg = first_segment(d.journal());
    auto offsets = record_offsets(seg);
    REQUIRE(offsets.size() >= 6);
    patch(seg, offsets[3] + 40, "\x5a\x5a"); // inside the third message's record
    std::string expected =
        "journal record at " + seg + " offset " + std::to_string(offsets[3]) + " is corrupt";
    {
        node_process node{node_placement{d.path, "node-2.log"}, journal_config()};
        auto status = node.wait_exit(soon());
        REQUIRE(status.has_value());
        CHECK(WIFEXITED(*status));
        CHECK(WEXITSTATUS(*status) == 1);
        CHECK_MESSAGE(node.log_text().find(expected) != std::string::npos, node.log_text());
    }
    node_process node{node_placement{d.path, "node-3.log"},
                      journal_config("journal-corrupt-record-policy = \"skip\"\n")};
    REQUIRE(node.wait_ready(soon()));
    auto bodies = drain_queue(node, "/queue/bad");
    auto want = numbered(10, "m");
    want.erase(want.begin() + 2); // offsets[0] is the queue binding, [3] the third message
    CHECK(bodies == want);
    CHECK(node.log_text().find("journal_corrupt_record") != std::string::npos);
}

TEST_CASE("journal: a torn last record is cut off silently") {
    kept_dir d;
    prefill(d, "/queue/torn", 5);
    auto seg = first_segment(d.journal());
    auto offsets = record_offsets(seg);
    REQUIRE(offsets.size() == 7); // binding, five messages, end
    // Zero the second half of the last record, as a write cut short by a crash would leave it.
    auto last = offsets[5];
    auto end = offsets[6];
    patch(seg, last + (end - last) / 2, std::string(end - last - (end - last) / 2, '\0'));
    node_process node{node_placement{d.path, "node-2.log"}, journal_config()};
    REQUIRE(node.wait_ready(soon()));
    CHECK(drain_queue(node, "/queue/torn") == numbered(4, "m"));
    CHECK(node.log_text().find("journal_torn_tail_cut") != std::string::npos);
}

TEST_CASE("journal: with persistence-enabled = false nothing is written") {
    kept_dir d;
    node_process node{node_placement{d.path, "node-1.log"},
                      journal_config("persistence-enabled = false\n")};
    REQUIRE(node.wait_ready(soon()));
    stomp_client c;
    login(c, node);
    send_many(c, "/queue/mem", "m", 3, true);
    CHECK(drain_queue(node, "/queue/mem") == numbered(3, "m"));
    CHECK_FALSE(std::filesystem::exists(d.journal()));
}

TEST_CASE("journal: consumed segments are deleted; what is left, and old duplicate ids, recover") {
    kept_dir d;
    auto cfg = journal_config("journal-file-size = 65536\n");
    const size_t total = 600;
    const size_t kept = 10;
    auto dup_of = [](size_t i) {
        return header_list{{"_AMQ_DUPL_ID", "id-" + std::to_string(i)}};
    };
    {
        node_process node{node_placement{d.path, "node-1.log"}, cfg};
        REQUIRE(node.wait_ready(soon()));
        stomp_client producer;
        login(producer, node);
        stomp_client consumer;
        login(consumer, node);
        subscribe(consumer, "/queue/reclaim", "s", "client-individual");
        for (size_t i = 0; i < total; ++i) {
            auto hs = dup_of(i);
            hs.push_back({"persistent", "true"});
            send_routed(producer, "/queue/reclaim",
                        "m" + std::to_string(i) + std::string(1000, '.'), hs);
            if (i < total - kept) {
                auto m = expect_message(consumer);
                stomp::frame ack;
                ack.cmd = command::ack;
                ack.add("id", *m.find("ack"));
                REQUIRE(consumer.send_with_receipt(ack));
            }
        }
        // 600 KiB went through 64 KiB segments; only the current, the ready ones and the few
        // holding the last messages may remain.
        size_t files = 0;
        for (const auto& e : std::filesystem::directory_iterator(d.journal())) {
            files += e.path().extension() == ".amq" ? 1 : 0;
        }
        CHECK_MESSAGE(files <= 5, files, " segment files left");
        node.kill(SIGKILL);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    node_process node{node_placement{d.path, "node-2.log"}, cfg};
    REQUIRE(node.wait_ready(soon()));
    {
        stomp_client c;
        login(c, node);
        // The first message's segment is long gone; its duplicate id must still be known.
        auto hs = dup_of(0);
        hs.push_back({"persistent", "true"});
        send_routed(c, "/queue/reclaim", "resent", hs);
    }
    auto rest = drain_queue(node, "/queue/reclaim");
    REQUIRE(rest.size() == kept);
    for (size_t i = 0; i < kept; ++i) {
        CHECK(rest[i].substr(0, rest[i].find('.')) == "m" + std::to_string(total - kept + i));
    }
}

namespace {

/// Logs in with a client-id (which names durable subscriptions).
void login_as(stomp_client& c, const node_process& node, const std::string& client_id) {
    REQUIRE(c.connect_tcp(node.port()));
    c.send(command::connect, {{"accept-version", "1.2"},
                              {"host", "/"},
                              {"login", "guest"},
                              {"passcode", "guest"},
                              {"client-id", client_id}});
    auto f = c.receive(soon());
    REQUIRE(f.has_value());
    REQUIRE_MESSAGE(f->cmd == command::connected, describe(*f));
}

void subscribe_durably(stomp_client& c, const std::string& name) {
    subscribe(c, "/topic/news", "d", "client-individual", {{"durable-subscription-name", name}});
}

/// Receives until the body `last` arrives, acking each; returns the bodies before it.
std::vector<std::string> until(stomp_client& c, const std::string& last) {
    std::vector<std::string> out;
    for (;;) {
        auto m = expect_message(c);
        c.send(command::ack, {{"id", *m.find("ack")}});
        if (m.body == last) {
            return out;
        }
        out.push_back(m.body);
    }
}

} // namespace

TEST_CASE("journal: a durable topic subscription keeps messages while away and across SIGKILL") {
    kept_dir d;
    {
        node_process node{node_placement{d.path, "node-1.log"}, journal_config()};
        REQUIRE(node.wait_ready(soon()));
        {
            stomp_client sub;
            login_as(sub, node, "c1");
            subscribe_durably(sub, "s1");
            stomp::frame bye;
            bye.cmd = command::disconnect;
            REQUIRE(sub.send_with_receipt(bye));
        }
        stomp_client p;
        login(p, node);
        send_many(p, "/topic/news", "p", 5, true);
        send_many(p, "/topic/news", "n", 2, false); // kept in memory only
        node.kill(SIGKILL);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    node_process node{node_placement{d.path, "node-2.log"}, journal_config()};
    REQUIRE(node.wait_ready(soon()));
    stomp_client sub;
    login_as(sub, node, "c1");
    subscribe_durably(sub, "s1");
    stomp_client p;
    login(p, node);
    send_routed(p, "/topic/news", "end");
    CHECK(until(sub, "end") == numbered(5, "p"));
    // UNSUBSCRIBE naming it deletes the subscription: what is sent next is not kept for it.
    stomp::frame unsub;
    unsub.cmd = command::unsubscribe;
    unsub.add("id", "d");
    unsub.add("durable-subscription-name", "s1");
    bool unsubscribed = sub.send_with_receipt(unsub);
    REQUIRE_MESSAGE(unsubscribed,
                    (sub.buffered().empty() ? sub.last_error() : describe(sub.buffered().back())));
    send_routed(p, "/topic/news", "lost", {{"persistent", "true"}});
    subscribe_durably(sub, "s1");
    send_routed(p, "/topic/news", "end2");
    CHECK(until(sub, "end2").empty());
}

TEST_CASE("journal: a durable subscription without a client-id is refused") {
    ACTORMQ_START_NODE(node, journal_config());
    stomp_client c;
    login(c, node);
    stomp::frame f;
    f.cmd = command::subscribe;
    f.add("destination", "/topic/news");
    f.add("id", "1");
    f.add("durable-subscription-name", "s");
    c.send(f);
    expect_error_and_close(c, "durable subscription needs a client-id");
}

TEST_CASE("journal: a client lost right after COMMIT can redo it and finds each message once") {
    ACTORMQ_START_NODE(node, journal_config());
    auto tx_send = [](stomp_client& c, size_t i) {
        send_to(c, "/queue/redo", "m" + std::to_string(i),
                {{"transaction", "t"},
                 {"persistent", "true"},
                 {"_AMQ_DUPL_ID", "redo-" + std::to_string(i)}});
    };
    {
        stomp_client c;
        login(c, node);
        c.send(command::begin, {{"transaction", "t"}});
        for (size_t i = 0; i < 5; ++i) {
            tx_send(c, i);
        }
        c.send(command::commit, {{"transaction", "t"}});
        c.close_abruptly(); // the COMMIT may or may not have been read: both must be safe
    }
    // RECEIPT: the first COMMIT never happened. ERROR "duplicate message": it did, and this
    // redo was a duplicate. ERROR duplicate_in_flight: the first transaction still held the ids
    // (its COMMIT or its rollback not finished yet); nothing of the redo is stored, so the
    // client redoes it again, as any client that got an ERROR for a COMMIT would. The first
    // transaction ends within one fdatasync, which a loaded machine can stretch past a hundred
    // quick redos: the redos go on until a deadline, not for a number of attempts.
    bool ok = false;
    std::string last;
    for (auto until = soon(); !ok && test_clock::now() < until;) {
        stomp_client c;
        login(c, node);
        c.send(command::begin, {{"transaction", "t"}});
        for (size_t i = 0; i < 5; ++i) {
            tx_send(c, i);
        }
        c.send(command::commit, {{"transaction", "t"}, {"receipt", "redo"}});
        auto answer = c.receive(soon());
        REQUIRE(answer.has_value());
        last = describe(*answer);
        if (answer->cmd == command::error
            && answer->body.find("duplicate_in_flight") != std::string::npos) {
            continue;
        }
        ok = answer->cmd == command::receipt
             || (answer->cmd == command::error
                 && header_of(*answer, "message").find("duplicate message") != std::string::npos);
        CHECK_MESSAGE(ok, last);
        break;
    }
    CHECK_MESSAGE(ok, last);
    CHECK(drain_queue(node, "/queue/redo") == numbered(5, "m"));
}

TEST_CASE("journal: four synchronous producers that share fdatasyncs lose and repeat nothing "
          "across SIGKILL") {
    // Group commit holds a batch for the appenders of the last batches (docs/journal.md,
    // "Group commit"): every RECEIPT must still mean "on disk", in each producer's order.
    kept_dir d;
    constexpr size_t producers = 4;
    constexpr size_t each = 150;
    {
        node_process node{node_placement{d.path, "node-1.log"}, journal_config()};
        REQUIRE(node.wait_ready(soon()));
        // Logged in here: doctest's REQUIREs belong on this thread. The threads only send.
        std::vector<std::unique_ptr<stomp_client>> clients;
        for (size_t p = 0; p < producers; ++p) {
            clients.push_back(std::make_unique<stomp_client>());
            login(*clients.back(), node);
        }
        std::atomic<size_t> confirmed{0};
        std::vector<std::thread> threads;
        for (size_t p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                for (size_t i = 0; i < each; ++i) {
                    stomp::frame f;
                    f.cmd = command::send;
                    f.add("destination", "/queue/shared");
                    f.add("persistent", "true");
                    f.body = "p" + std::to_string(p) + "-" + std::to_string(i);
                    if (!clients[p]->send_with_receipt(f)) {
                        return;
                    }
                    ++confirmed;
                }
            });
        }
        for (auto& t : threads) {
            t.join();
        }
        REQUIRE(confirmed == producers * each);
        node.kill(SIGKILL);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    node_process node{node_placement{d.path, "node-2.log"}, journal_config()};
    REQUIRE(node.wait_ready(soon()));
    INFO(node.log_tail());
    auto got = drain_queue(node, "/queue/shared");
    REQUIRE(got.size() == producers * each);
    // Each producer's messages, in its order, once each.
    for (size_t p = 0; p < producers; ++p) {
        auto prefix = "p" + std::to_string(p) + "-";
        std::vector<std::string> mine;
        for (const auto& m : got) {
            if (m.rfind(prefix, 0) == 0) {
                mine.push_back(m);
            }
        }
        CHECK_MESSAGE(mine == numbered(each, prefix), join(mine));
    }
}

namespace {

/// The figure `key=N` of the first `session_closed` line in the node's log (sessions log their
/// RECEIPT counts when they close), or nullopt if no session closed yet.
std::optional<uint64_t> closed_session_figure(const node_process& node, const std::string& key) {
    auto log = node.log_text();
    auto line = log.find("session_closed");
    if (line == std::string::npos) {
        return std::nullopt;
    }
    auto at = log.find(key + "=", line);
    if (at == std::string::npos || at > log.find('\n', line)) {
        return std::nullopt;
    }
    return std::stoull(log.substr(at + key.size() + 1));
}

} // namespace

TEST_CASE("journal: a synchronous producer's RECEIPTs come from the journal's thread, each after "
          "its message is on disk") {
    // docs/journal.md, "Confirming on the journal's thread": the RECEIPT of a lone durable SEND
    // is posted by the journal once the fdatasync is done, not by the session afterwards. A
    // non-persistent SEND has no journal append, so its RECEIPT still comes from the session;
    // mixed, they come back one per SEND, in order, and every confirmed persistent message
    // survives SIGKILL.
    kept_dir d;
    constexpr size_t rounds = 30;
    {
        node_process node{node_placement{d.path, "node-1.log"}, journal_config()};
        REQUIRE(node.wait_ready(soon()));
        INFO(node.log_tail());
        stomp_client c;
        login(c, node);
        for (size_t i = 0; i < rounds; ++i) {
            send_routed(c, "/queue/hook", "p" + std::to_string(i), {{"persistent", "true"}});
            send_routed(c, "/queue/hook", "n" + std::to_string(i));
        }
        c.close();
        REQUIRE(log_shows(node, "session_closed"));
        auto by_journal = closed_session_figure(node, "receipts_by_journal");
        auto unused = closed_session_figure(node, "receipts_hook_unused");
        REQUIRE(by_journal.has_value());
        REQUIRE(unused.has_value());
        // The persistent SENDs' RECEIPTs (a few may find the previous route's answer not yet
        // handled, and take the session's way); the non-persistent ones never.
        CHECK(*by_journal >= 1);
        CHECK(*by_journal <= rounds);
        CHECK(*unused >= 1);
        node.kill(SIGKILL);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    node_process node{node_placement{d.path, "node-2.log"}, journal_config()};
    REQUIRE(node.wait_ready(soon()));
    INFO(node.log_tail());
    CHECK(drain_queue(node, "/queue/hook") == numbered(rounds, "p"));
}

TEST_CASE("journal: pipelined SENDs get their RECEIPTs in order whoever posts them") {
    // Ten SENDs with receipts in one write: the first may be confirmed by the journal's thread,
    // the rest by the session; the client must still see receipt 1, 2, ... 10.
    node_process node{journal_config()};
    REQUIRE(node.wait_ready(soon()));
    INFO(node.log_tail());
    stomp_client c;
    login(c, node);
    for (int round = 0; round < 5; ++round) {
        std::string wire;
        std::vector<std::string> ids;
        for (int i = 0; i < 10; ++i) {
            stomp::frame f;
            f.cmd = command::send;
            f.add("destination", "/queue/piped");
            f.add("persistent", i % 3 == 2 ? "false" : "true");
            ids.push_back("r" + std::to_string(round) + "-" + std::to_string(i));
            f.add("receipt", ids.back());
            f.body = ids.back();
            stomp::encode(f, c.version(), wire);
        }
        REQUIRE(c.send_raw(wire));
        for (const auto& id : ids) {
            auto r = c.receive_cmd(command::receipt, soon());
            REQUIRE(r.has_value());
            CHECK(*r->find("receipt-id") == id);
        }
    }
}
