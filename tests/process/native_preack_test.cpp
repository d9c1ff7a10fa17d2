// SPDX-License-Identifier: Apache-2.0
// Pre-acknowledge consumers (docs/protocol.md §2, §6, §8; docs/client.md "Pre-acknowledge")
// against a real node: the queue counts each message acknowledged as it hands it over, the
// consumer sends no ack and still gets every message once (the queue's window comes back as
// the deliveries are written), durable messages it got are not redelivered after a restart,
// STOMP's ack:auto and a native pre-acknowledge consumer share a queue, and a version 1 client
// still consumes as before.
#include "support/client_fixture.hpp"
#include "support/native_fixture.hpp"
#include "support/web_client.hpp"

#include <actormq/client/client.hpp>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

namespace actormq::test {

namespace {

namespace ac = actormq::client;
using json = nlohmann::json;
using native::error_code;

/// More than the queue's window for one consumer (default-prefetch-count, 1000): without its
/// credit coming back, a pre-acknowledge consumer would stall after the first thousand.
constexpr int many = 2500;

/// The /api/status entry of queue `name` (null JSON while the node does not list it).
json queue_status(const node_process& node, const std::string& name) {
    auto c = http_exchange(node.port("web"), http_request("/api/status"), soon());
    if (c.status() != 200) {
        return json{};
    }
    auto s = json::parse(c.body(), nullptr, false);
    if (!s.is_object() || !s.contains("queues")) {
        return json{};
    }
    for (const auto& q : s["queues"]) {
        if (q.value("name", "") == name) {
            return q;
        }
    }
    return json{};
}

/// Waits until the node's status shows queue `name` empty, nothing in flight and `acked`
/// messages acknowledged in all (the status board is republished every 250 ms).
void require_all_acked(const node_process& node, const std::string& name, uint64_t acked) {
    json q;
    bool done = wait_until(soon(), [&] {
        q = queue_status(node, name);
        return q.is_object() && q.value("depth", uint64_t{1}) == 0
               && q.value("in_flight", uint64_t{1}) == 0
               && q.value("acked_total", uint64_t{0}) == acked;
    });
    INFO("queue ", name, ": ", q.dump());
    REQUIRE(done);
}

/// A body of about 1 KiB that starts with `tag`.
std::string body_of(const std::string& tag) {
    return tag + "|" + std::string(1000, 'x');
}

/// The tag a body_of() body starts with.
std::string tag_of(const std::string& body) {
    return body.substr(0, body.find('|'));
}

/// Sends `n` messages "<prefix><i>" to `address` over the native client library; durable
/// sends block until stored, the others are fire and forget.
void client_send(const node_process& node,
                 const std::string& address,
                 const std::string& prefix,
                 int n,
                 bool durable) {
    ac::connection_factory cf(client_url(node));
    auto conn = cf.create_connection();
    auto p = conn->create_session()->create_producer(address);
    for (int i = 0; i < n; ++i) {
        ac::message m;
        m.body = body_of(prefix + std::to_string(i));
        m.durable = durable;
        p->send(m);
    }
    conn->close();
}

/// Opens a consumer on `queue` that acknowledges as usual and checks that nothing arrives
/// (a stop barrier on the wire: a delivery would come before its ok).
void require_nothing_left(const node_process& node, const std::string& queue) {
    native_client c;
    native_login(c, node);
    require_ok(c.open_session(1, "check"), "create_session");
    require_ok(c.call(1, native::create_consumer{1, queue, "", -1, false, false}),
               "create_consumer");
    c.request(1, native::start{});
    require_ok(c.call(1, native::stop{}), "stop");
    for (const auto& p : c.buffered()) {
        FAIL_CHECK("left on ", queue, ": ", describe(p));
    }
}

} // namespace

TEST_CASE("native: pre-acknowledge: every message once, no ack sent, the queue counts them "
          "acknowledged") {
    ACTORMQ_START_NODE(node, native_node_config());
    client_send(node, "pa", "m", many, false);
    native_client c;
    native_login(c, node);
    require_ok(c.open_session(1, "consumer"), "create_session");
    require_ok(c.call(1, native::create_consumer{1, "pa", "", -1, false, true}),
               "create_consumer pre_acknowledge");
    c.request(1, native::start{});
    std::set<std::string> got;
    uint64_t last_id = 0;
    for (int i = 0; i < many; ++i) {
        auto d = expect_deliver(c);
        CHECK(d.delivery_count == 0);
        CHECK_MESSAGE(got.insert(tag_of(d.msg.body)).second, "twice: ", tag_of(d.msg.body));
        last_id = d.message_id;
    }
    CHECK(got.size() == static_cast<size_t>(many));
    // The consumer sent nothing but create_consumer and start, and its queue is done with
    // every message while it is still open.
    require_all_acked(node, "pa", many);
    // §8: an ack of a pre-acknowledged delivery is answered as done; a nack has nothing to
    // return, the message is gone.
    require_ok(c.call(1, native::ack{1, last_id, native::ack_mode::individual, true}), "ack");
    require_fail(c.call(1, native::nack{1, last_id}), error_code::unexpected_packet, "nack");
    c.close();
    // Nothing comes back when the consumer's connection is gone.
    require_nothing_left(node, "pa");
    require_all_acked(node, "pa", many);
}

TEST_CASE("native: pre-acknowledge: small queue windows get their credit back in pieces, and a "
          "trickle never stalls") {
    // The session gathers a pre-acknowledge consumer's queue credit and asks for a written
    // report only once it reaches a quarter of the queue's window (flush): for windows of 13
    // (every 3 messages), 6 (every message, 6 / 4 = 1) and 2, every message still arrives,
    // whether the queue holds many at once or they come one by one after the consumer started.
    for (uint32_t window : {13u, 6u, 2u}) {
        CAPTURE(window);
        ACTORMQ_START_NODE(
            node, native_node_config("default-prefetch-count = " + std::to_string(window) + "\n"));
        constexpr int preloaded = 400;
        client_send(node, "pw", "m", preloaded, false);
        native_client c;
        native_login(c, node);
        require_ok(c.open_session(1, "consumer"), "create_session");
        require_ok(c.call(1, native::create_consumer{1, "pw", "", -1, false, true}),
                   "create_consumer pre_acknowledge");
        c.request(1, native::start{});
        std::set<std::string> got;
        for (int i = 0; i < preloaded; ++i) {
            auto d = expect_deliver(c);
            CHECK_MESSAGE(got.insert(tag_of(d.msg.body)).second, "twice: ", tag_of(d.msg.body));
        }
        // One at a time: each send is delivered before the next is sent, so the session's
        // gathered credit stays below a quarter of the window between messages for a while.
        ac::connection_factory cf(client_url(node));
        auto conn = cf.create_connection();
        auto p = conn->create_session()->create_producer("pw");
        constexpr int trickle = 3 * 13;
        for (int i = 0; i < trickle; ++i) {
            ac::message m;
            m.body = body_of("t" + std::to_string(i));
            p->send(m);
            auto d = expect_deliver(c);
            CHECK(tag_of(d.msg.body) == "t" + std::to_string(i));
        }
        conn->close();
        CHECK(got.size() == static_cast<size_t>(preloaded));
        require_all_acked(node, "pw", preloaded + trickle);
        c.close();
    }
}

TEST_CASE("client: preAcknowledge=true: receive() and a listener, never acknowledging, leave "
          "nothing") {
    ACTORMQ_START_NODE(node, native_node_config());
    client_send(node, "cpa", "r", many, false);
    // receive(): credit goes back as the application takes messages (1 MiB window).
    ac::connection_factory cf(client_url(node, "&preAcknowledge=true"));
    auto conn = cf.create_connection();
    auto s = conn->create_session();
    auto cons = s->create_consumer("cpa");
    conn->start();
    std::set<std::string> got;
    for (int i = 0; i < many; ++i) {
        auto m = cons->receive(std::chrono::seconds(10));
        REQUIRE_MESSAGE(m.has_value(), "after ", i, " messages");
        CHECK(got.insert(tag_of(m->body)).second);
        if (i == 0) {
            cons->acknowledge(*m); // a no-op: the server acknowledged it when it sent it
        }
    }
    require_all_acked(node, "cpa", many);
    conn->close();
    require_nothing_left(node, "cpa");

    // A listener: its credit goes back once it returns, since it sends no acks.
    client_send(node, "cpa", "l", many, false);
    auto conn2 = cf.create_connection();
    auto cons2 = conn2->create_session()->create_consumer("cpa");
    std::mutex mu;
    std::condition_variable cv;
    std::set<std::string> heard;
    int twice = 0;
    cons2->set_message_listener([&](ac::message m) {
        std::lock_guard<std::mutex> g(mu);
        twice += heard.insert(tag_of(m.body)).second ? 0 : 1;
        cv.notify_all();
    });
    conn2->start();
    {
        std::unique_lock<std::mutex> g(mu);
        bool all = cv.wait_until(g, soon(), [&] { return heard.size() == size_t(many); });
        CHECK_MESSAGE(all, heard.size(), " of ", many);
        CHECK(twice == 0);
    }
    require_all_acked(node, "cpa", 2 * many);
    conn2->close();
    require_nothing_left(node, "cpa");
}

TEST_CASE("client: a pre-acknowledge consumer per call, whatever the factory says") {
    ACTORMQ_START_NODE(node, native_node_config());
    client_send(node, "per", "p", 10, false);
    ac::connection_factory cf(client_url(node));
    auto conn = cf.create_connection();
    auto cons = conn->create_session()->create_consumer("per", "", true);
    conn->start();
    for (int i = 0; i < 10; ++i) {
        REQUIRE(cons->receive(std::chrono::seconds(10)).has_value());
    }
    require_all_acked(node, "per", 10);
    conn->close();
    require_nothing_left(node, "per");
}

TEST_CASE("native: pre-acknowledge: durable messages it received are not redelivered after a "
          "restart") {
    temp_dir dir;
    {
        node_process node{node_placement{dir.path, "node-1.log"}, native_node_config()};
        INFO(node.log_tail());
        REQUIRE(node.wait_ready(soon()));
        client_send(node, "dpa", "d", 300, true);
        ac::connection_factory cf(client_url(node, "&preAcknowledge=true"));
        auto conn = cf.create_connection();
        auto cons = conn->create_session()->create_consumer("dpa");
        conn->start();
        for (int i = 0; i < 300; ++i) {
            auto m = cons->receive(std::chrono::seconds(10));
            REQUIRE(m.has_value());
            CHECK(m->durable);
        }
        require_all_acked(node, "dpa", 300);
        conn->close();
        // Three more that nobody consumes: they must be the only ones after the restart.
        client_send(node, "dpa", "left", 3, true);
        node.kill(SIGTERM);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    node_process node{node_placement{dir.path, "node-2.log"}, native_node_config()};
    INFO(node.log_tail());
    REQUIRE(node.wait_ready(soon()));
    std::vector<std::string> left;
    for (const auto& b : drain_queue(node, "/queue/dpa")) {
        left.push_back(tag_of(b));
    }
    CHECK(left == std::vector<std::string>{"left0", "left1", "left2"});
}

TEST_CASE("native: pre-acknowledge: STOMP's ack:auto and a native pre-acknowledge consumer share "
          "a queue") {
    ACTORMQ_START_NODE(node, native_node_config());
    stomp_client st;
    login(st, node);
    subscribe(st, "/queue/mix", "auto-sub", "auto");
    ac::connection_factory cf(client_url(node, "&preAcknowledge=true"));
    auto conn = cf.create_connection();
    auto cons = conn->create_session()->create_consumer("mix");
    conn->start();
    // Half the messages by STOMP, half natively; the queue hands them out in turn.
    stomp_client producer;
    login(producer, node);
    for (int i = 0; i < 300; ++i) {
        send_to(producer, "/queue/mix", body_of("s" + std::to_string(i)));
    }
    REQUIRE(producer.receipt_barrier());
    client_send(node, "mix", "n", 300, false);
    std::set<std::string> got;
    size_t by_stomp = 0;
    size_t by_native = 0;
    int twice = 0;
    bool all = wait_until(soon(), [&] {
        while (auto m = cons->receive(std::chrono::milliseconds(0))) {
            twice += got.insert(tag_of(m->body)).second ? 0 : 1;
            ++by_native;
        }
        while (auto f = st.receive(in(std::chrono::milliseconds(5)))) {
            REQUIRE_MESSAGE(f->cmd == command::message, describe(*f));
            twice += got.insert(tag_of(f->body)).second ? 0 : 1;
            ++by_stomp;
        }
        return got.size() == 600;
    });
    CHECK_MESSAGE(all, got.size(), " of 600 (stomp ", by_stomp, ", native ", by_native, ")");
    CHECK(twice == 0);
    CHECK(by_stomp > 0);
    CHECK(by_native > 0);
    require_all_acked(node, "mix", 600);
}

TEST_CASE("native: version negotiation: a version 1 client gets version 1 and consumes as before") {
    ACTORMQ_START_NODE(node, native_node_config());
    client_send(node, "old", "o", 3, false);
    native_client c;
    REQUIRE(c.connect_tcp(node.port("native")));
    REQUIRE(c.send_packet(
        native::make_packet(native::hello{native::hello_magic, 1, 1, 1024 * 1024, "version-1"})));
    REQUIRE(c.send_packet(native::make_packet(native::authenticate{"guest", "guest", "", 0})));
    auto hello_ok = c.receive_type(native::packet_type::hello_ok, soon());
    REQUIRE(hello_ok.has_value());
    CHECK(std::get<native::hello_ok>(hello_ok->body).version == 1);
    REQUIRE(c.receive_type(native::packet_type::authenticated, soon()).has_value());
    // Version 1 bytes, numbered by hand: create_session is 1, create_consumer 2, start 3.
    native::codec_limits v1;
    v1.version = 1;
    auto stream = [&](uint64_t seq, native::packet_body b) {
        std::string out;
        auto f =
            native::encode(native::packet{1, seq, std::move(b)}, native::peer::client, v1, out);
        REQUIRE_MESSAGE(f.code == native::codec_error::none, f.describe());
        REQUIRE(c.send_raw(out));
    };
    stream(1, native::create_session{"old-session", false, false, -1});
    stream(2, native::create_consumer{1, "old", "", -1, false, false});
    stream(3, native::start{});
    std::vector<uint64_t> ids;
    for (int i = 0; i < 3; ++i) {
        auto d = expect_deliver(c);
        CHECK(tag_of(d.msg.body) == "o" + std::to_string(i));
        ids.push_back(d.message_id);
    }
    // Without pre-acknowledge the messages wait for their acks.
    json q;
    CHECK(wait_until(soon(), [&] {
        q = queue_status(node, "old");
        return q.is_object() && q.value("in_flight", uint64_t{0}) == 3;
    }));
    INFO(q.dump());
    stream(4, native::ack{1, ids.back(), native::ack_mode::cumulative, false});
    require_all_acked(node, "old", 3);
    // A version 2 create_consumer (one byte longer) on this version 1 connection is malformed.
    std::string v2;
    native::encode(native::packet{1, 5, native::create_consumer{2, "old", "", -1, false, true}},
                   native::peer::client, native::codec_limits{}, v2);
    REQUIRE(c.send_raw(v2));
    auto text = expect_native_error(c, error_code::malformed_packet);
    CHECK_MESSAGE(text.find("trailing_bytes") != std::string::npos, text);
}

} // namespace actormq::test
