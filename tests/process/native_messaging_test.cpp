// SPDX-License-Identifier: Apache-2.0
// Messages across the native protocol and STOMP on one node (docs/protocol.md §5-§8, §11): the
// same broker core, durable confirmation after the journal's fsync, credit windows, acks.
#include "support/native_fixture.hpp"

#include <csignal>

namespace actormq::test {

namespace {

using native::error_code;

/// Sends `m` from producer 1 on channel 1 with confirmation; requires ok.
void native_send(native_client& c, native::message m) {
    require_ok(c.call(1, native::send{1, true, std::move(m)}), "send");
}

/// Opens a consumer `id` on `queue` in session `channel` and starts the session.
void native_consume(native_client& c,
                    uint32_t channel,
                    uint32_t id,
                    const std::string& queue,
                    int32_t window = -1) {
    require_ok(c.call(channel, native::create_consumer{id, queue, "", window, false}),
               "create_consumer " + queue);
    c.request(channel, native::start{});
}

/// The bodies of every message a STOMP client drains from `dest` (client-individual acks),
/// using a marker sent after subscribing (a queue is FIFO).
std::vector<std::string> stomp_drain(const node_process& node, const std::string& dest) {
    stomp_client c;
    login(c, node);
    subscribe(c, dest, "d", "client-individual");
    send_routed(c, dest, "END");
    std::vector<std::string> out;
    for (;;) {
        auto m = expect_message(c);
        stomp::frame ack;
        ack.cmd = command::ack;
        ack.add("id", header_of(m, "ack"));
        REQUIRE(c.send_with_receipt(ack));
        if (m.body == "END") {
            return out;
        }
        out.push_back(m.body);
    }
}

} // namespace

TEST_CASE("native: cross-protocol: a native send reaches a STOMP consumer with its fields") {
    ACTORMQ_START_NODE(node, native_node_config());
    stomp_client s;
    login(s, node);
    subscribe(s, "/queue/orders", "o");
    native_client c;
    native_login(c, node);
    open_producer_session(c);
    auto m = native_message("orders", "from native", true);
    m.priority = 7;
    m.headers.emplace_back("color", "blue");
    native_send(c, std::move(m));
    auto f = expect_message(s);
    CHECK(f.body == "from native");
    CHECK(header_of(f, "destination") == "/queue/orders");
    CHECK(header_of(f, "persistent") == "true");
    CHECK(header_of(f, "priority") == "7");
    CHECK(header_of(f, "color") == "blue");
}

TEST_CASE("native: cross-protocol: a STOMP send reaches a native consumer, acked once") {
    ACTORMQ_START_NODE(node, native_node_config());
    stomp_client s;
    login(s, node);
    send_routed(s, "/queue/jobs", "from stomp", {{"persistent", "true"}, {"color", "red"}});
    native_client c;
    native_login(c, node);
    require_ok(c.open_session(1, "s1"), "create_session");
    native_consume(c, 1, 7, "jobs");
    auto d = expect_deliver(c);
    CHECK(d.consumer_id == 7);
    CHECK(d.delivery_count == 0);
    CHECK(d.msg.body == "from stomp");
    CHECK(d.msg.durable);
    CHECK(d.msg.address == "jobs");
    bool red = false;
    for (const auto& [k, v] : d.msg.headers) {
        red = red || (k == "color" && v == "red");
        CHECK(k != "persistent");
    }
    CHECK(red);
    require_ok(c.call(1, native::ack{7, d.message_id, native::ack_mode::individual, true}), "ack");
    CHECK(stomp_drain(node, "/queue/jobs").empty());
}

TEST_CASE("native: durable: a confirmed send and a confirmed ack survive SIGKILL") {
    temp_dir dir;
    {
        node_process node{node_placement{dir.path, "node-1.log"}, native_node_config()};
        REQUIRE(node.wait_ready(soon()));
        native_client c;
        native_login(c, node);
        open_producer_session(c);
        for (int i = 0; i < 5; ++i) {
            native_send(c, native_message("dur", "m" + std::to_string(i), true));
        }
        // A consumer takes m0 and m1 and acks them with confirmation: once ok, they are gone
        // for good.
        require_ok(c.open_session(2, "s2"), "create_session");
        native_consume(c, 2, 1, "dur", -1);
        for (int i = 0; i < 2; ++i) {
            auto d = expect_deliver(c);
            CHECK(d.msg.body == "m" + std::to_string(i));
            require_ok(c.call(2, native::ack{1, d.message_id, native::ack_mode::individual, true}),
                       "ack");
        }
        node.kill(SIGKILL);
        REQUIRE(node.wait_exit(soon()).has_value());
    }
    node_process node{node_placement{dir.path, "node-2.log"}, native_node_config()};
    REQUIRE(node.wait_ready(soon()));
    INFO(node.log_tail());
    CHECK(stomp_drain(node, "/queue/dur") == std::vector<std::string>{"m2", "m3", "m4"});
}

TEST_CASE("native: credit: a consumer with window 0 gets nothing until it gives credit") {
    ACTORMQ_START_NODE(node, native_node_config());
    native_client c;
    native_login(c, node);
    open_producer_session(c);
    for (int i = 0; i < 3; ++i) {
        native_send(c, native_message("pull", "p" + std::to_string(i)));
    }
    require_ok(c.open_session(2, "s2"), "create_session");
    native_consume(c, 2, 1, "pull", 0);
    // Nothing arrives before the stop's ok (a barrier: deliveries would come before it).
    require_ok(c.call(2, native::stop{}), "stop");
    CHECK(c.buffered().empty());
    c.request(2, native::start{});
    c.request(2, native::credit{1, 1});
    auto d = expect_deliver(c);
    CHECK(d.msg.body == "p0");
    // One byte of credit allows one deliver (it overdraws); the next waits for more.
    require_ok(c.call(2, native::stop{}), "stop");
    CHECK(c.buffered().empty());
    c.request(2, native::start{});
    c.request(2, native::credit{1, 1000000});
    CHECK(expect_deliver(c).msg.body == "p1");
    CHECK(expect_deliver(c).msg.body == "p2");
}

TEST_CASE("native: acks: cumulative ack takes every earlier delivery, nack redelivers") {
    ACTORMQ_START_NODE(node, native_node_config());
    native_client c;
    native_login(c, node);
    open_producer_session(c);
    for (int i = 0; i < 4; ++i) {
        native_send(c, native_message("acks", "a" + std::to_string(i)));
    }
    require_ok(c.open_session(2, "s2"), "create_session");
    native_consume(c, 2, 1, "acks");
    std::vector<native::deliver> ds;
    for (int i = 0; i < 4; ++i) {
        ds.push_back(expect_deliver(c));
    }
    require_ok(c.call(2, native::ack{1, ds[2].message_id, native::ack_mode::cumulative, true}),
               "cumulative ack");
    c.request(2, native::nack{1, ds[3].message_id});
    auto again = expect_deliver(c);
    CHECK(again.msg.body == "a3");
    CHECK(again.delivery_count == 1);
    // a0..a2 are gone: acking one of them again is refused.
    require_fail(c.call(2, native::ack{1, ds[0].message_id, native::ack_mode::individual, true}),
                 error_code::unexpected_packet, "second ack");
    require_ok(c.call(2, native::ack{1, again.message_id, native::ack_mode::individual, true}),
               "ack a3");
    CHECK(stomp_drain(node, "/queue/acks").empty());
}

TEST_CASE("native: acks: an unconfirmed ack to a queue that died is not answered, the session "
          "goes on") {
    // §8: an ack without confirm is one message to the queue; nothing waits for it, so a queue
    // that dies meanwhile leaves nothing behind (no request, no timeout, no fail packet).
    ACTORMQ_START_NODE(node, native_node_config());
    native_client c;
    native_login(c, node);
    open_producer_session(c);
    constexpr int count = 40;
    for (int i = 0; i < count; ++i) {
        native_send(c, native_message("doomed", "d" + std::to_string(i)));
    }
    require_ok(c.open_session(2, "s2"), "create_session");
    native_consume(c, 2, 1, "doomed");
    std::vector<native::deliver> ds;
    for (int i = 0; i < count; ++i) {
        ds.push_back(expect_deliver(c));
    }
    require_ok(c.call(1, native::delete_queue{"doomed"}), "delete_queue");
    // The queue actor ends shortly after the delete: a confirmed ack fails once it has.
    size_t next = 0;
    bool dead = wait_until(soon(), [&] {
        REQUIRE(next + 2 < ds.size());
        auto r =
            c.call(2, native::ack{1, ds[next++].message_id, native::ack_mode::individual, true});
        REQUIRE(r.has_value());
        return r->type() == native::packet_type::fail;
    });
    REQUIRE_MESSAGE(dead, "the deleted queue still answered acks");
    auto unconfirmed =
        c.request(2, native::ack{1, ds[next++].message_id, native::ack_mode::individual, false});
    // A later confirmed ack to the same dead queue is answered (fail): the session is not stuck,
    // and the unconfirmed one before it got no answer of its own.
    auto later =
        c.call(2, native::ack{1, ds[next++].message_id, native::ack_mode::individual, true});
    REQUIRE_MESSAGE(later.has_value(), "no answer to a confirmed ack after the queue died");
    CHECK_MESSAGE(later->type() == native::packet_type::fail, describe(*later));
    for (const auto& p : c.buffered()) {
        if (p.type() == native::packet_type::fail) {
            CHECK_MESSAGE(std::get<native::fail>(p.body).correlation != unconfirmed, describe(p));
        }
    }
    require_ok(c.call(2, native::close_consumer{1}), "close_consumer");
}

TEST_CASE("native: multicast: a subscription queue and a STOMP topic subscriber both get it") {
    ACTORMQ_START_NODE(node, native_node_config());
    stomp_client s;
    login(s, node);
    subscribe(s, "/topic/news", "t");
    native_client c;
    native_login(c, node);
    open_producer_session(c);
    require_ok(c.call(1, native::create_queue{"sub1", "news", native::routing::multicast, false,
                                              false, ""}),
               "create_queue");
    auto m = native_message("news", "extra");
    m.headers.emplace_back("_AMQ_ROUTING_TYPE", "multicast");
    native_send(c, std::move(m));
    CHECK(expect_message(s).body == "extra");
    require_ok(c.open_session(2, "s2"), "create_session");
    native_consume(c, 2, 1, "news::sub1");
    CHECK(expect_deliver(c).msg.body == "extra");
}

TEST_CASE("native: requests: unknown producer, consumer and anonymous sends are refused") {
    ACTORMQ_START_NODE(node, native_node_config());
    native_client c;
    native_login(c, node);
    open_producer_session(c);
    require_fail(c.call(1, native::send{9, true, native_message("q", "x")}),
                 error_code::no_such_producer, "unknown producer");
    require_fail(c.call(1, native::send{1, true, native_message("", "x")}),
                 error_code::no_such_address, "no address");
    require_fail(c.call(1, native::close_consumer{3}), error_code::no_such_consumer,
                 "unknown consumer");
    require_fail(c.call(1, native::commit{}), error_code::not_transacted, "commit");
    // XA calls that need an XA session (docs/protocol.md §10).
    auto text = require_fail(c.call(1, native::xa_start{native::xid{1, "g", ""}, {}}),
                             error_code::xa_protocol, "xa_start");
    CHECK(text.find("not an XA session") != std::string::npos);
    // A stream packet on a channel without a session.
    auto seq = c.request(5, native::start{});
    auto p = c.response(5, seq, soon());
    require_fail(p, error_code::no_such_session, "no session");
    // The session still works.
    native_send(c, native_message("q", "fine"));
}

} // namespace actormq::test
