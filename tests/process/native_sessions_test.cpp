// SPDX-License-Identifier: Apache-2.0
// Native sessions against a real node (docs/protocol.md §4, §9, §11, §14, §16): local
// transactions, temporary queues, every configured limit hit exactly, and reattach.
#include "support/native_fixture.hpp"

namespace actormq::test {

namespace {

using native::error_code;

void native_consume(native_client& c, uint32_t channel, uint32_t id, const std::string& queue) {
    require_ok(c.call(channel, native::create_consumer{id, queue, "", -1, false}),
               "create_consumer " + queue);
    c.request(channel, native::start{});
}

/// Whether a STOMP client finds `body` next on `dest` (an END marker bounds the wait).
std::vector<std::string> stomp_bodies(const node_process& node, const std::string& dest) {
    stomp_client s;
    login(s, node);
    subscribe(s, dest, "d");
    send_routed(s, dest, "END");
    std::vector<std::string> out;
    for (;;) {
        auto m = expect_message(s);
        if (m.body == "END") {
            return out;
        }
        out.push_back(m.body);
    }
}

} // namespace

TEST_CASE("native: transactions: sends wait for commit, rollback drops them, acks return") {
    ACTORMQ_START_NODE(node, native_node_config());
    native_client c;
    native_login(c, node);
    require_ok(c.open_session(1, "tx", true), "create_session transacted");
    require_ok(c.call(1, native::create_producer{1, "txq", -1}), "create_producer");
    require_ok(c.call(1, native::send{1, true, native_message("", "t1", true)}), "send t1");
    require_ok(c.call(1, native::send{1, true, native_message("", "t2", true)}), "send t2");
    // Not visible before commit.
    CHECK(stomp_bodies(node, "/queue/txq").empty());
    require_ok(c.call(1, native::commit{}), "commit");
    require_ok(c.call(1, native::send{1, true, native_message("", "t3")}), "send t3");
    require_ok(c.call(1, native::rollback{}), "rollback");
    // Acks in a transaction: rolled back, the message comes again; committed, it is gone.
    native_consume(c, 1, 1, "txq");
    auto d1 = expect_deliver(c);
    auto d2 = expect_deliver(c);
    CHECK(d1.msg.body == "t1");
    CHECK(d2.msg.body == "t2");
    require_ok(c.call(1, native::ack{1, d2.message_id, native::ack_mode::cumulative, true}), "ack");
    require_ok(c.call(1, native::rollback{}), "rollback acks");
    auto r1 = expect_deliver(c);
    auto r2 = expect_deliver(c);
    CHECK(r1.msg.body == "t1");
    CHECK(r1.delivery_count == 1);
    require_ok(c.call(1, native::ack{1, r2.message_id, native::ack_mode::cumulative, true}),
               "ack again");
    require_ok(c.call(1, native::commit{}), "commit acks");
    require_ok(c.call(1, native::close_session{}), "close_session");
    CHECK(stomp_bodies(node, "/queue/txq").empty());
}

TEST_CASE("native: transactions: a committed duplicate id fails with duplicate_id") {
    ACTORMQ_START_NODE(node, native_node_config());
    native_client c;
    native_login(c, node);
    require_ok(c.open_session(1, "tx", true), "create_session transacted");
    require_ok(c.call(1, native::create_producer{1, "dupq", -1}), "create_producer");
    auto m = native_message("", "once", true);
    m.duplicate_id = "order-1";
    require_ok(c.call(1, native::send{1, true, m}), "send");
    require_ok(c.call(1, native::commit{}), "commit");
    require_ok(c.call(1, native::send{1, true, m}), "send again");
    require_fail(c.call(1, native::commit{}), error_code::duplicate_id, "retried commit");
    CHECK(stomp_bodies(node, "/queue/dupq") == std::vector<std::string>{"once"});
}

TEST_CASE("native: temporary queues: deleted when the session's connection ends") {
    ACTORMQ_START_NODE(node, native_node_config());
    {
        native_client c;
        native_login(c, node);
        open_producer_session(c);
        require_ok(c.call(1, native::create_queue{"temp.reply", "temp.reply",
                                                  native::routing::anycast, false, true, ""}),
                   "create temporary queue");
        require_ok(c.call(1, native::send{1, true, native_message("temp.reply", "r")}), "send");
        native_consume(c, 1, 1, "temp.reply");
        CHECK(expect_deliver(c).msg.body == "r");
        c.close();
    }
    // The address went with the queue: a lookup without create finds nothing, so a consumer
    // (which may create) gets a fresh, empty queue. Watch the node's log for the removal.
    CHECK(wait_until(soon(), [&] {
        return node.log_text().find("address_removed address=temp.reply") != std::string::npos;
    }));
}

TEST_CASE("native: limits: sessions, producers, consumers and the confirmation window") {
    ACTORMQ_START_NODE(node, native_node_config("max-sessions-per-connection = 2\n"
                                                "max-producers-per-session = 2\n"
                                                "max-consumers-per-session = 1\n"
                                                "max-confirmation-window-bytes = 4096\n"
                                                "max-messages-per-transaction = 2\n"));
    native_client c;
    native_login(c, node);
    require_ok(c.open_session(1, "a"), "session 1");
    require_ok(c.open_session(2, "b", true), "session 2");
    auto text = require_fail(c.open_session(3, "c"), error_code::limit_reached, "session 3");
    CHECK(text == "limit max-sessions-per-connection (2) reached");
    require_ok(c.call(1, native::create_producer{1, "lq", -1}), "producer 1");
    require_ok(c.call(1, native::create_producer{2, "lq", -1}), "producer 2");
    text = require_fail(c.call(1, native::create_producer{3, "lq", -1}), error_code::limit_reached,
                        "producer 3");
    CHECK(text == "limit max-producers-per-session (2) reached");
    require_ok(c.call(1, native::create_consumer{1, "lq", "", -1, false}), "consumer 1");
    text = require_fail(c.call(1, native::create_consumer{2, "lq", "", -1, false}),
                        error_code::limit_reached, "consumer 2");
    CHECK(text == "limit max-consumers-per-session (1) reached");
    // Transactions hold at most 2 messages.
    require_ok(c.call(2, native::create_producer{1, "lq", -1}), "tx producer");
    require_ok(c.call(2, native::send{1, true, native_message("", "1")}), "tx send 1");
    require_ok(c.call(2, native::send{1, true, native_message("", "2")}), "tx send 2");
    text = require_fail(c.call(2, native::send{1, true, native_message("", "3")}),
                        error_code::limit_reached, "tx send 3");
    CHECK(text == "limit max-messages-per-transaction (2) reached");
    // Closing a session frees its slot; a window above the bound is refused.
    require_ok(c.call(1, native::close_session{}), "close session 1");
    text =
        require_fail(c.open_session(1, "w", false, 4097), error_code::limit_reached, "window 4097");
    CHECK(text == "limit max-confirmation-window-bytes (4096) reached");
    require_ok(c.open_session(1, "w", false, 4096), "window 4096");
}

namespace {

/// Opens session 1 named `session` with producer 1 on `address` and a `window`-byte window;
/// returns the credit the node grants first.
int64_t open_producer(native_client& c,
                      const std::string& session,
                      const std::string& address,
                      int32_t window) {
    require_ok(c.open_session(1, session), "create_session");
    require_ok(c.call(1, native::create_producer{1, address, window}), "create_producer");
    auto g = c.receive_type(native::packet_type::producer_credit, soon());
    REQUIRE(g.has_value());
    return std::get<native::producer_credit>(g->body).bytes;
}

} // namespace

TEST_CASE("native: producer credit: granted after create_producer, given back once routed") {
    ACTORMQ_START_NODE(node, native_node_config());
    native_client c;
    native_login(c, node);
    CHECK(open_producer(c, "p", "cq", 100) == 100);
    // A send may overdraw the credit (§5); its whole packet size comes back once routed.
    require_ok(c.call(1, native::send{1, true, native_message("", std::string(200, 'x'))}),
               "send 1");
    auto back = c.receive_type(native::packet_type::producer_credit, soon());
    REQUIRE(back.has_value());
    CHECK(std::get<native::producer_credit>(back->body).bytes > 200);
}

TEST_CASE("native: producer credit: a producer whose sends wait on a full BLOCK address gets no "
          "credit back until the address drains") {
    // An address full with one message: its routes are not answered, and a send's credit
    // comes back once it is routed (§5), so the producer stops after its first window.
    ACTORMQ_START_NODE(node, native_node_config("", "[address-settings.\"full\"]\n"
                                                    "max-size-bytes = 1000\n"
                                                    "address-full-policy = \"BLOCK\"\n"));
    {
        stomp_client s;
        login(s, node);
        send_routed(s, "/queue/full", std::string(1000, 'h'));
    }
    native_client c;
    native_login(c, node);
    int64_t credit = open_producer(c, "blocked", "full", 2048);
    // Each send is counted at more than its packet's size: this client never overdraws the
    // server's count, so no send fails with window_exceeded.
    const std::string body(1000, 'b');
    const int64_t counted = 1200;
    int sent = 0;
    for (;;) {
        while (credit > 0) {
            c.request(1, native::send{1, false, native_message("", body)});
            credit -= counted;
            ++sent;
        }
        REQUIRE(sent < 20); // the server must stop granting: the route is never answered
        auto more = c.receive_type(native::packet_type::producer_credit,
                                   in(std::chrono::milliseconds(1500)));
        if (!more) {
            break; // stopped: no credit while the address stays full
        }
        credit += std::get<native::producer_credit>(more->body).bytes;
    }
    // Two sends fit the first window (2048 bytes, each counted at 1200), and nothing more came.
    CHECK(sent == 2);
    CHECK_FALSE(c.receive_type(native::packet_type::fail, in(std::chrono::milliseconds(0))));
    // Draining the address lets the routes finish, and their credit comes back.
    stomp_client d;
    login(d, node);
    subscribe(d, "/queue/full", "d");
    CHECK(expect_message(d).body == std::string(1000, 'h'));
    CHECK(c.receive_type(native::packet_type::producer_credit, soon()).has_value());
}

namespace actormq::test {

TEST_CASE("native: reattach: a session with a window survives a dropped connection") {
    ACTORMQ_START_NODE(node, native_node_config());
    native_client c;
    native_login(c, node, 10000);
    c.auto_confirm = false;
    require_ok(c.open_session(1, "keep-me", false, 65536), "create_session");
    require_ok(c.call(1, native::create_producer{1, "rq", -1}), "create_producer");
    native_consume(c, 1, 1, "rq");
    require_ok(c.call(1, native::send{1, true, native_message("", "before")}), "send before");
    auto d = expect_deliver(c);
    CHECK(d.msg.body == "before");
    auto had = c.last_received(1);
    // The network fails: the server keeps the session (a window, within the TTL).
    c.close();
    // Meanwhile another client sends; the detached session's consumer must not lose it.
    stomp_client s;
    login(s, node);
    send_routed(s, "/queue/rq", "while away");
    REQUIRE(c.connect_tcp(node.port("native")));
    REQUIRE_MESSAGE(c.login("guest", "guest", 10000), c.last_error());
    auto r = c.reattach(1, "keep-me");
    REQUIRE(r.has_value());
    CHECK(r->found);
    CHECK(r->last_received >= 4); // create_session, create_producer, create_consumer, start...
    CHECK(c.last_received(1) >= had);
    // The message sent while detached arrives after the reattach; the session works on.
    auto away = expect_deliver(c);
    CHECK(away.msg.body == "while away");
    require_ok(c.call(1, native::ack{1, away.message_id, native::ack_mode::cumulative, true}),
               "ack after reattach");
    require_ok(c.call(1, native::send{1, true, native_message("", "after")}), "send after");
    CHECK(expect_deliver(c).msg.body == "after");
    // An unknown name is not found.
    auto none = c.reattach(2, "no-such-session");
    REQUIRE(none.has_value());
    CHECK_FALSE(none->found);
}

TEST_CASE("native: reattach: after the TTL the session is gone and its deliveries return") {
    ACTORMQ_START_NODE(node, native_node_config());
    native_client c;
    native_login(c, node, 300);
    require_ok(c.open_session(1, "short", false, 65536), "create_session");
    require_ok(c.call(1, native::create_producer{1, "tq", -1}), "create_producer");
    native_consume(c, 1, 1, "tq");
    require_ok(c.call(1, native::send{1, true, native_message("", "unacked")}), "send");
    CHECK(expect_deliver(c).msg.body == "unacked");
    c.close();
    // The TTL passes; the kept session closes and the unacked message goes back to the queue.
    CHECK(wait_until(soon(), [&] {
        return node.log_text().find("native_session_expired") != std::string::npos;
    }));
    REQUIRE(c.connect_tcp(node.port("native")));
    REQUIRE(c.login("guest", "guest"));
    auto r = c.reattach(1, "short");
    REQUIRE(r.has_value());
    CHECK_FALSE(r->found);
    CHECK(stomp_bodies(node, "/queue/tq") == std::vector<std::string>{"unacked"});
}

} // namespace actormq::test

namespace {

/// On a fresh connection: a session (with `window` as its confirmation window), then in one
/// write a new producer, durable and non-durable sends to two new addresses (so the first send
/// of each waits for its address's lookup and every later packet waits behind it) and, with
/// `say_disconnect`, the disconnect; then the socket closes. The server reads them together,
/// so the close reaches the session while the sends still wait for the lookup. Every send must
/// be stored all the same: the server handles what it received before the close.
void sends_then_close(const node_process& node,
                      const std::string& tag,
                      bool say_disconnect,
                      int32_t window) {
    native_client c;
    native_login(c, node);
    require_ok(c.open_session(1, "s-" + tag, false, window), "create_session");
    std::string bytes;
    uint64_t seq = 2; // create_session was 1
    auto add = [&](native::packet p) {
        REQUIRE(native::encode(p, native::peer::client, native::codec_limits{}, bytes).code
                == native::codec_error::none);
    };
    add(native::packet{1, seq++, native::create_producer{1, "", -1}});
    for (int i = 0; i < 20; ++i) {
        auto address = (i % 2 == 0 ? "even." : "odd.") + tag;
        auto m = native_message(address, tag + "-" + std::to_string(i), i % 4 < 2);
        add(native::packet{1, seq++, native::send{1, false, std::move(m)}});
    }
    if (say_disconnect) {
        add(native::make_packet(
            native::disconnect{native::error_code::internal_error, "client closed", ""}));
    }
    REQUIRE(c.send_raw(bytes));
    c.close();
}

/// The bodies a STOMP consumer of `dest` gets: `n` of them (each waited for with a deadline,
/// since the server may still be storing them after the close), then whatever came before an
/// END marker sent after them (nothing, when exactly `n` were stored).
std::vector<std::string> stomp_take(const node_process& node, const std::string& dest, size_t n) {
    stomp_client s;
    login(s, node);
    subscribe(s, dest, "d");
    std::vector<std::string> out;
    while (out.size() < n) {
        out.push_back(expect_message(s).body);
    }
    send_routed(s, dest, "END");
    for (;;) {
        auto m = expect_message(s);
        if (m.body == "END") {
            return out;
        }
        out.push_back(m.body);
    }
}

std::vector<std::string> expected_bodies(const std::string& tag, int first) {
    std::vector<std::string> out;
    for (int i = first; i < 20; i += 2) {
        out.push_back(tag + "-" + std::to_string(i));
    }
    return out;
}

} // namespace

TEST_CASE("native: close: sends of a new producer right before disconnect are all stored") {
    ACTORMQ_START_NODE(node, native_node_config());
    sends_then_close(node, "bye", true, -1);
    CHECK(stomp_take(node, "/queue/even.bye", 10) == expected_bodies("bye", 0));
    CHECK(stomp_take(node, "/queue/odd.bye", 10) == expected_bodies("bye", 1));
}

TEST_CASE("native: close: sends right before the socket closes are all stored (no window)") {
    ACTORMQ_START_NODE(node, native_node_config());
    sends_then_close(node, "fin", false, -1);
    CHECK(stomp_take(node, "/queue/even.fin", 10) == expected_bodies("fin", 0));
    CHECK(stomp_take(node, "/queue/odd.fin", 10) == expected_bodies("fin", 1));
}

TEST_CASE("native: close: a session with a confirmation window stores its last sends before "
          "disconnect") {
    ACTORMQ_START_NODE(node, native_node_config());
    sends_then_close(node, "win", true, 65536);
    CHECK(stomp_take(node, "/queue/even.win", 10) == expected_bodies("win", 0));
    CHECK(stomp_take(node, "/queue/odd.win", 10) == expected_bodies("win", 1));
}

} // namespace actormq::test

namespace actormq::test {

TEST_CASE("native: close: a session whose sends wait on a full BLOCK address ends "
          "request-timeout-ms after its connection closed, and its deliveries return") {
    // A BLOCK address that holds one message, and a 4 KiB read window: once the first 2000-byte
    // send is stored the address is full, the second waits there, the third is handled (the
    // bytes in flight are still under the window) and the fourth waits behind them.
    ACTORMQ_START_NODE(node, native_node_config("read-window-bytes = 4096\n",
                                                "[address-settings.\"full\"]\n"
                                                "max-size-bytes = 1000\n"
                                                "address-full-policy = \"BLOCK\"\n",
                                                "request-timeout-ms = 1000\n"));
    {
        stomp_client s;
        login(s, node);
        send_routed(s, "/queue/held", "held");
    }
    native_client c;
    native_login(c, node);
    require_ok(c.open_session(1, "blocked"), "create_session");
    native_consume(c, 1, 1, "held");
    CHECK(expect_deliver(c).msg.body == "held"); // not acknowledged
    require_ok(c.call(1, native::create_producer{1, "", -1}), "create_producer");
    const std::string body(2000, 'f');
    require_ok(c.call(1, native::send{1, true, native_message("full", body)}), "first send");
    for (int i = 0; i < 3; ++i) {
        c.request(1, native::send{1, false, native_message("full", body)});
    }
    c.close();
    // The session ends once request-timeout-ms passed after the close (it waited for the full
    // address for ever), saying so; its consumer goes and the unacknowledged delivery returns.
    CHECK(log_shows(node, "native_session_drain_timeout session="));
    CHECK(log_shows(node, "name=\"blocked\" routes="));
    CHECK(log_shows(node, "packets=1 waited_ms=1000"));
    stomp_client again;
    login(again, node);
    subscribe(again, "/queue/held", "h");
    auto m = expect_message(again);
    CHECK(m.body == "held");
}

} // namespace actormq::test
