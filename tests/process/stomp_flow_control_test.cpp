// SPDX-License-Identifier: Apache-2.0
// Process tests of address limits: max-size-bytes with the FAIL, DROP and BLOCK full policies.
#include "support/process_fixture.hpp"

#include <doctest/doctest.h>

namespace actormq::test {

namespace {

constexpr int64_t max_size_bytes = 20000;
constexpr size_t body_bytes = 1024;
/// The most 1 KiB messages an address of max_size_bytes may hold: the ones below the limit
/// plus the one that crosses it.
constexpr size_t most_accepted = max_size_bytes / body_bytes + 1;

/// A node whose addresses under `small.` hold at most max_size_bytes, with `policy`.
std::string limited_config(const std::string& policy) {
    return node_config("", "[address-settings.\"small.#\"]\n"
                           "max-size-bytes = "
                               + std::to_string(max_size_bytes)
                               + "\n"
                                 "address-full-policy = \""
                               + policy
                               + "\"\n"
                                 "auto-create-queues = true\n"
                                 "auto-create-addresses = true\n");
}

/// Body i: "m<i>:" padded with '.' to body_bytes.
std::string body(size_t i) {
    auto b = "m" + std::to_string(i) + ":";
    b.resize(body_bytes, '.');
    return b;
}

/// The "m<i>" prefix of a body.
std::string label(const std::string& b) {
    return b.substr(0, b.find(':'));
}

/// Writes `n` SENDs of 1 KiB to `destination` without waiting, each asking for the receipt
/// "s<i>".
void send_pipelined(stomp_client& c, const std::string& destination, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) {
        stomp::frame f;
        f.cmd = command::send;
        f.add("destination", destination);
        f.add("receipt", "s" + std::to_string(i));
        f.add("content-length", std::to_string(body_bytes));
        f.body = body(i);
        stomp::encode(f, stomp::version::v1_2, out);
    }
    REQUIRE(c.send_raw(out));
}

/// Reads frames until `n` receipts arrived, an ERROR arrived, or `deadline` passed; returns
/// the receipts counted and stores the ERROR, if any, in `error`.
size_t
count_receipts(stomp_client& c, size_t n, deadline_t deadline, std::optional<stomp::frame>& error) {
    size_t receipts = 0;
    while (receipts < n) {
        auto f = c.receive(deadline);
        if (!f) {
            break;
        }
        if (f->cmd == command::error) {
            error = *f;
            break;
        }
        REQUIRE_MESSAGE(f->cmd == command::receipt, describe(*f));
        CHECK(header_of(*f, "receipt-id") == "s" + std::to_string(receipts));
        ++receipts;
    }
    return receipts;
}

/// Subscribes a new auto-ack consumer and returns the labels of everything that was in the
/// queue. The end is found with markers: a marker SEND is retried (on a new connection each
/// time, as FAIL closes one) until a marker arrives. A marker only fits once the queue handed
/// its backlog to the consumer, and the queue delivers in order, so what arrives before the
/// first marker is exactly what the queue held.
std::vector<std::string> drain(const node_process& node, const std::string& destination) {
    stomp_client c;
    login(c, node);
    subscribe(c, destination, "drain");
    std::vector<std::string> out;
    bool marker_seen = false;
    bool done = wait_until(
        soon(),
        [&] {
            stomp_client p;
            login(p, node);
            stomp::frame f;
            f.cmd = command::send;
            f.add("destination", destination);
            f.body = "marker";
            p.send_with_receipt(f);
            while (auto m = c.receive(in(20ms))) {
                REQUIRE_MESSAGE(m->cmd == command::message, describe(*m));
                if (m->body == "marker") {
                    marker_seen = true;
                } else {
                    CHECK_MESSAGE(!marker_seen, "a message after the first marker");
                    out.push_back(label(m->body));
                }
            }
            return marker_seen;
        },
        20ms);
    CHECK_MESSAGE(done, "no marker arrived");
    return out;
}

/// "m0" ... "m<n-1>".
std::vector<std::string> labels(size_t n) {
    return numbered(n);
}

} // namespace

TEST_CASE("stomp: flow: FAIL answers a producer that finds the address full with ERROR") {
    ACTORMQ_START_NODE(node, limited_config("FAIL"));
    stomp_client producer;
    login(producer, node);
    size_t accepted = 0;
    std::optional<stomp::frame> error;
    // One SEND at a time: each waits for its RECEIPT (or the ERROR) before the next.
    for (size_t i = 0; i < 100 && !error; ++i) {
        stomp::frame f;
        f.cmd = command::send;
        f.add("destination", "/queue/small.fail");
        f.add("content-length", std::to_string(body_bytes));
        f.body = body(i);
        if (producer.send_with_receipt(f)) {
            ++accepted;
        } else {
            error = producer.receive_cmd(command::error, soon());
            REQUIRE_MESSAGE(error.has_value(), "neither RECEIPT nor ERROR");
        }
    }
    REQUIRE_MESSAGE(error.has_value(), "100 KiB were accepted by a 20000-byte address");
    CHECK_MESSAGE(header_of(*error, "message").find("is full") != std::string::npos,
                  describe(*error));
    CHECK(producer.closed_by_peer(soon()));
    CHECK(accepted >= 10);
    CHECK(accepted <= most_accepted);
    // Exactly the accepted messages are in the queue; the refused one is not.
    CHECK(drain(node, "/queue/small.fail") == labels(accepted));
}

TEST_CASE("stomp: flow: FAIL holds a pipelining producer to max-size-bytes") {
    ACTORMQ_START_NODE(node, limited_config("FAIL"));
    stomp_client producer;
    login(producer, node);
    send_pipelined(producer, "/queue/small.fail", 100);
    std::optional<stomp::frame> error;
    auto accepted = count_receipts(producer, 100, soon(), error);
    REQUIRE_MESSAGE(error.has_value(), accepted, " of 100 SENDs accepted and no ERROR");
    CHECK_MESSAGE(header_of(*error, "message").find("is full") != std::string::npos,
                  describe(*error));
    CHECK_MESSAGE(accepted <= most_accepted, accepted, " KiB accepted by a 20000-byte address");
    CHECK(drain(node, "/queue/small.fail") == labels(accepted));
}

TEST_CASE("stomp: flow: FAIL accepts SENDs again once a consumer made room") {
    ACTORMQ_START_NODE(node, limited_config("FAIL"));
    {
        stomp_client producer;
        login(producer, node);
        std::optional<stomp::frame> error;
        for (size_t i = 0; i < 100 && !error; ++i) {
            stomp::frame f;
            f.cmd = command::send;
            f.add("destination", "/queue/small.again");
            f.body = body(i);
            if (!producer.send_with_receipt(f)) {
                error = producer.receive_cmd(command::error, soon());
            }
        }
        REQUIRE(error.has_value());
    }
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/small.again", "s");
    REQUIRE(consumer.receipt_barrier());
    // Draining is asynchronous: a producer retries (on a new connection each time it is
    // refused) until a SEND is accepted.
    bool accepted = wait_until(
        soon(),
        [&] {
            stomp_client p;
            login(p, node);
            stomp::frame f;
            f.cmd = command::send;
            f.add("destination", "/queue/small.again");
            f.body = "fits again";
            return p.send_with_receipt(f);
        },
        20ms);
    CHECK(accepted);
}

TEST_CASE("stomp: flow: DROP acknowledges every SEND but keeps only what fits") {
    ACTORMQ_START_NODE(node, limited_config("DROP"));
    stomp_client producer;
    login(producer, node);
    send_pipelined(producer, "/queue/small.drop", 100);
    std::optional<stomp::frame> error;
    auto receipts = count_receipts(producer, 100, soon(), error);
    CHECK_MESSAGE(!error, describe(error.value_or(stomp::frame{})));
    CHECK(receipts == 100);
    // The first messages fill the address; every later one is dropped.
    auto kept = drain(node, "/queue/small.drop");
    CHECK_FALSE(kept.empty());
    CHECK(kept.size() < 100);
    CHECK_MESSAGE(kept.size() <= most_accepted, kept.size(), " KiB kept by a 20000-byte address");
    CHECK(kept == labels(kept.size()));
}

TEST_CASE("stomp: flow: DROP keeps only what fits when the producer waits for each receipt") {
    ACTORMQ_START_NODE(node, limited_config("DROP"));
    stomp_client producer;
    login(producer, node);
    for (size_t i = 0; i < 100; ++i) {
        send_routed(producer, "/queue/small.drop", body(i));
    }
    auto kept = drain(node, "/queue/small.drop");
    CHECK(kept.size() >= 10);
    CHECK(kept.size() <= most_accepted);
    CHECK(kept == labels(kept.size()));
}

TEST_CASE("stomp: flow: BLOCK holds the producer's receipts until a consumer drains") {
    ACTORMQ_START_NODE(node, limited_config("BLOCK"));
    stomp_client producer;
    login(producer, node);
    send_pipelined(producer, "/queue/small.block", 100);
    // A negative check: within one second the blocked SENDs cannot all be receipted (100 KiB
    // do not fit in 20000 bytes and nobody consumes).
    std::optional<stomp::frame> error;
    auto early = count_receipts(producer, 100, in(1000ms), error);
    REQUIRE_MESSAGE(!error, describe(error.value_or(stomp::frame{})));
    CHECK_MESSAGE(early < 100, "all 100 receipts arrived while the address was full");
    CHECK_MESSAGE(early <= most_accepted, early, " KiB accepted by a full 20000-byte address");
    // A consumer drains the queue: the rest of the receipts arrive and every message is
    // delivered exactly once, in order.
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/small.block", "s");
    std::vector<std::string> got;
    size_t receipts = early;
    bool done = wait_until(soon(), [&] {
        while (auto m = consumer.receive(in(1ms))) {
            REQUIRE_MESSAGE(m->cmd == command::message, describe(*m));
            got.push_back(label(m->body));
        }
        while (auto r = producer.receive(in(1ms))) {
            REQUIRE_MESSAGE(r->cmd == command::receipt, describe(*r));
            CHECK(header_of(*r, "receipt-id") == "s" + std::to_string(receipts));
            ++receipts;
        }
        return receipts == 100 && got.size() == 100;
    });
    CHECK_MESSAGE(done, receipts, " receipts and ", got.size(), " messages");
    CHECK(got == labels(100));
    expect_no_more_messages(consumer);
}

TEST_CASE("stomp: flow: BLOCK holds a SEND that finds the address full until there is room") {
    ACTORMQ_START_NODE(node, limited_config("BLOCK"));
    stomp_client producer;
    login(producer, node);
    // One SEND at a time; the first whose RECEIPT does not come within a second is blocked.
    size_t blocked_at = 0;
    bool blocked = false;
    for (size_t i = 0; i < 100 && !blocked; ++i) {
        stomp::frame f;
        f.cmd = command::send;
        f.add("destination", "/queue/small.block");
        f.add("content-length", std::to_string(body_bytes));
        f.body = body(i);
        if (!producer.send_with_receipt(f, in(1000ms))) {
            REQUIRE_FALSE(producer.eof());
            blocked = true;
            blocked_at = i;
        }
    }
    REQUIRE_MESSAGE(blocked, "100 KiB were accepted by a 20000-byte address without blocking");
    CHECK(blocked_at >= 10);
    CHECK(blocked_at <= most_accepted);
    stomp_client consumer;
    login(consumer, node);
    subscribe(consumer, "/queue/small.block", "s");
    // The held SEND completes once the consumer made room; the rest then go through.
    auto receipt = producer.receive_cmd(command::receipt, soon());
    REQUIRE_MESSAGE(receipt.has_value(), "the blocked SEND was never receipted");
    for (size_t i = blocked_at + 1; i < 100; ++i) {
        send_routed(producer, "/queue/small.block", body(i));
    }
    std::vector<std::string> got;
    for (const auto& m : collect_messages(consumer, 100)) {
        got.push_back(label(m.body));
    }
    CHECK(got == labels(100));
    expect_no_more_messages(consumer);
}

TEST_CASE("stomp: flow: an address no setting matches is not limited to 20000 bytes") {
    ACTORMQ_START_NODE(node, limited_config("FAIL"));
    stomp_client producer;
    login(producer, node);
    send_pipelined(producer, "/queue/large.ok", 100);
    std::optional<stomp::frame> error;
    CHECK(count_receipts(producer, 100, soon(), error) == 100);
    CHECK_FALSE(error.has_value());
    CHECK(drain(node, "/queue/large.ok") == labels(100));
}

} // namespace actormq::test
