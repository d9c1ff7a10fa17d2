// SPDX-License-Identifier: Apache-2.0
// The client's failure/failover state machine (protocol/client/src/failover_machine.hpp,
// docs/protocol.md §14, §17): events in, actions out, no sockets and no clock.
#include "failover_machine.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace actormq::client;
using namespace actormq::client::detail;

namespace {

connection_options url(const std::string& u) {
    return connection_options::from_url(u);
}

/// The actions as short words, so a test reads like the sequence it expects.
std::vector<std::string> words(const std::vector<action>& actions) {
    std::vector<std::string> out;
    for (auto& a : actions) {
        if (auto* c = std::get_if<act_connect>(&a)) {
            out.push_back("connect " + c->target.to_string() + " @" + std::to_string(c->at_ms));
        } else if (std::holds_alternative<act_drop_socket>(a)) {
            out.push_back("drop");
        } else if (std::holds_alternative<act_send_ping>(a)) {
            out.push_back("ping");
        } else if (std::holds_alternative<act_reattach_sessions>(a)) {
            out.push_back("reattach");
        } else if (std::holds_alternative<act_recreate_sessions>(a)) {
            out.push_back("recreate");
        } else if (std::holds_alternative<act_unblock>(a)) {
            out.push_back("unblock");
        } else if (auto* n = std::get_if<act_notify>(&a)) {
            out.push_back("notify " + std::string(to_string(n->event)));
        } else if (auto* g = std::get_if<act_give_up>(&a)) {
            out.push_back("give up " + std::string(to_string(g->kind)));
        }
    }
    return out;
}

using w = std::vector<std::string>;

/// A transacted session named `name`.
session_record session(const std::string& name) {
    session_record s;
    s.name = name;
    s.transacted = true;
    return s;
}

/// A machine connected to live:1 in group "g1", whose backup is backup:2.
failover_machine connected_pair(const std::string& query) {
    failover_machine m(url("tcp://live:1?" + query));
    m.start(0);
    m.handle(ev_connected{"g1", 0});
    m.handle(ev_topology{1, {{"g1", "live:1", "backup:2"}}});
    return m;
}

} // namespace

TEST_CASE("the first connection retries the URL's servers initialConnectAttempts times") {
    failover_machine m(url("(tcp://a:1,tcp://b:2)?initialConnectAttempts=3&retryInterval=100"
                           "&maxRetryInterval=100"));
    CHECK(words(m.start(0)) == w{"connect a:1 @0"});
    CHECK(words(m.handle(ev_connect_failed{"refused", 5})) == w{"drop", "connect b:2 @105"});
    CHECK(words(m.handle(ev_connect_failed{"refused", 110})) == w{"drop", "connect a:1 @210"});
    CHECK(words(m.handle(ev_connect_failed{"refused", 215}))
          == w{"drop", "give up CONNECTION_FAILED"});
    CHECK(m.state() == link_state::closed);
    CHECK_FALSE(m.ever_connected());
}

TEST_CASE("with the default initialConnectAttempts one refusal ends it, even with ha") {
    failover_machine m(url("tcp://a:1?ha=true&reconnectAttempts=-1"));
    m.start(0);
    CHECK(words(m.handle(ev_connect_failed{"refused", 1}))
          == w{"drop", "give up CONNECTION_FAILED"});
}

TEST_CASE("reconnectAttempts=0: a failure closes the connection and says DISCONNECT") {
    auto m = connected_pair("ha=true");
    CHECK(words(m.handle(ev_socket_closed{"eof", 10}))
          == w{"drop", "notify FAILURE_DETECTED", "notify DISCONNECT", "give up DISCONNECTED"});
    CHECK(m.state() == link_state::closed);
    CHECK(m.handle(ev_tick{100000}).empty());
}

TEST_CASE("ha: a socket close fails over to the topology's backup and recreates sessions") {
    auto m = connected_pair("ha=true&reconnectAttempts=-1&retryInterval=50&maxRetryInterval=50");
    CHECK(m.backup() == server_address{"backup", 2});
    m.sessions[1] = session("s1");
    m.sessions[1].transaction_has_work = true;
    m.sessions[2] = session("s2");
    CHECK(words(m.handle(ev_socket_closed{"eof", 10}))
          == w{"drop", "notify FAILURE_DETECTED", "unblock", "connect backup:2 @10"});
    CHECK(m.state() == link_state::failing_over);
    // A transaction that had work is rollback-only; an empty one is not.
    CHECK(m.sessions[1].rollback_only);
    CHECK_FALSE(m.sessions[2].rollback_only);
    // The backup is not live yet: the tries alternate backup / live and wait retryInterval.
    CHECK(words(m.handle(ev_connect_failed{"refused", 12})) == w{"drop", "connect live:1 @62"});
    CHECK(words(m.handle(ev_connect_failed{"refused", 63})) == w{"drop", "connect backup:2 @113"});
    CHECK(words(m.handle(ev_connected{"g1", 120})) == w{"recreate"});
    CHECK(words(m.handle(ev_recreated{true, 130})) == w{"notify FAILOVER"});
    CHECK(m.state() == link_state::connected);
    CHECK(m.current() == server_address{"backup", 2});
}

TEST_CASE("reconnect attempts run out: DISCONNECT, and calls fail DISCONNECTED") {
    auto m = connected_pair("ha=true&reconnectAttempts=2&retryInterval=10&maxRetryInterval=10");
    m.handle(ev_socket_closed{"eof", 0});
    CHECK(words(m.handle(ev_connect_failed{"refused", 1})) == w{"drop", "connect live:1 @11"});
    CHECK(words(m.handle(ev_connect_failed{"refused", 12}))
          == w{"drop", "notify DISCONNECT", "give up DISCONNECTED"});
}

TEST_CASE("without ha the client reconnects to the same server and recreates sessions") {
    auto m = connected_pair("reconnectAttempts=3&retryInterval=10&maxRetryInterval=10");
    CHECK(words(m.handle(ev_socket_closed{"eof", 0}))
          == w{"drop", "notify FAILURE_DETECTED", "unblock", "connect live:1 @0"});
    CHECK(words(m.handle(ev_connect_failed{"refused", 1})) == w{"drop", "connect live:1 @11"});
}

TEST_CASE("a confirmation window reattaches to the same server without unblocking anything") {
    auto m = connected_pair("ha=true&reconnectAttempts=-1&confirmationWindowSize=1024");
    m.sessions[1] = session("s1");
    m.sessions[1].transaction_has_work = true;
    CHECK(words(m.handle(ev_socket_closed{"cut", 10}))
          == w{"drop", "notify FAILURE_DETECTED", "connect live:1 @10"});
    CHECK(m.state() == link_state::reattaching);
    CHECK(words(m.handle(ev_connected{"g1", 20})) == w{"reattach"});
    CHECK(words(m.handle(ev_reattached{true, 25})) == w{"notify FAILOVER"});
    CHECK(m.state() == link_state::connected);
    CHECK_FALSE(m.sessions[1].rollback_only);
}

TEST_CASE("a reattach that finds no session falls back to recreating it, unblocking calls") {
    auto m = connected_pair("ha=true&reconnectAttempts=-1&confirmationWindowSize=1024");
    m.handle(ev_socket_closed{"cut", 10});
    m.handle(ev_connected{"g1", 20});
    CHECK(words(m.handle(ev_reattached{false, 25})) == w{"unblock", "recreate"});
    CHECK(words(m.handle(ev_recreated{true, 30})) == w{"notify FAILOVER"});
}

TEST_CASE("reattach to a server that cannot be reached goes to the backup at once") {
    auto m = connected_pair("ha=true&reconnectAttempts=-1&confirmationWindowSize=1024"
                            "&retryInterval=500&maxRetryInterval=500");
    m.handle(ev_socket_closed{"eof", 10});
    CHECK(words(m.handle(ev_connect_failed{"refused", 11}))
          == w{"drop", "unblock", "connect backup:2 @11"});
    CHECK(m.state() == link_state::failing_over);
}

TEST_CASE("reattach to a different broker at the same address recreates instead") {
    auto m = connected_pair("reconnectAttempts=-1&confirmationWindowSize=1024");
    m.handle(ev_socket_closed{"eof", 10});
    CHECK(words(m.handle(ev_connected{"other-group", 11})) == w{"unblock", "recreate"});
}

TEST_CASE("no packet within clientFailureCheckPeriod is a failure; pings go every half") {
    auto m = connected_pair("ha=true&reconnectAttempts=-1&clientFailureCheckPeriod=1000");
    CHECK(m.handle(ev_tick{400}).empty());
    CHECK(words(m.handle(ev_tick{500})) == w{"ping"});
    CHECK(m.handle(ev_tick{600}).empty());
    m.handle(ev_packet{900});
    CHECK(words(m.handle(ev_tick{1000})) == w{"ping"});
    CHECK(m.handle(ev_tick{1499}).empty());
    CHECK(words(m.handle(ev_tick{1899})) == w{"ping"}); // the ping went unanswered
    auto out = words(m.handle(ev_tick{1900}));
    REQUIRE(out.size() == 4);
    CHECK(out[0] == "drop");
    CHECK(out[1] == "notify FAILURE_DETECTED");
    CHECK(out[3] == "connect backup:2 @1900");
}

TEST_CASE("clientFailureCheckPeriod=-1 turns the check and the pings off") {
    auto m = connected_pair("clientFailureCheckPeriod=-1");
    CHECK(m.handle(ev_tick{10000000}).empty());
}

TEST_CASE("a server disconnect with a redirect goes there first") {
    auto m = connected_pair("ha=true&reconnectAttempts=-1&confirmationWindowSize=1024");
    CHECK(words(m.handle(ev_server_disconnect{"server_stopping", "other:7", 5}))
          == w{"drop", "notify FAILURE_DETECTED", "unblock", "connect other:7 @5"});
}

TEST_CASE("the newest topology wins; an older one is ignored") {
    auto m = connected_pair("ha=true");
    m.handle(ev_topology{5, {{"g1", "live:1", "b5:5"}}});
    m.handle(ev_topology{3, {{"g1", "live:1", "b3:3"}}});
    CHECK(m.topology_version() == 5);
    CHECK(m.backup() == server_address{"b5", 5});
}

TEST_CASE("recreation packets: session, volatile queues, producers, consumers, start") {
    auto s = session("s1");
    s.started = true;
    actormq::native::create_queue q;
    q.queue = "tmp.1";
    q.address = "tmp.1";
    q.temporary = true;
    s.volatile_queues.push_back(q);
    s.producers[7] = producer_record{"orders", 1000};
    s.consumers[3] = consumer_record{"tmp.1", "color='red'", 2048, false};
    auto p = recreation_packets(s);
    REQUIRE(p.size() == 5);
    auto& cs = std::get<actormq::native::create_session>(p[0]);
    CHECK(cs.name == "s1");
    CHECK(cs.transacted);
    CHECK(std::get<actormq::native::create_queue>(p[1]).queue == "tmp.1");
    CHECK(std::get<actormq::native::create_producer>(p[2]).producer_id == 7);
    CHECK(std::get<actormq::native::create_consumer>(p[3]).filter == "color='red'");
    CHECK(std::holds_alternative<actormq::native::start>(p[4]));
}

TEST_CASE("recreation packets: a pre-acknowledge consumer is recreated as one") {
    auto s = session("s1");
    s.consumers[3] = consumer_record{"q", "", 2048, false, true};
    s.consumers[4] = consumer_record{"q", "", 2048, false, false};
    auto p = recreation_packets(s);
    REQUIRE(p.size() == 3);
    auto& pre = std::get<actormq::native::create_consumer>(p[1]);
    CHECK(pre.consumer_id == 3);
    CHECK(pre.pre_acknowledge);
    CHECK_FALSE(std::get<actormq::native::create_consumer>(p[2]).pre_acknowledge);
}

TEST_CASE("confirmation window: keep, confirm, replay, and the half-window confirmation") {
    confirmation_window off;
    CHECK(off.has_room(1u << 30));
    off.keep(1, "x");
    CHECK(off.kept_count() == 0);

    confirmation_window w(100);
    CHECK(w.has_room(500)); // larger than the window: goes alone
    w.keep(1, std::string(40, 'a'));
    w.keep(2, std::string(40, 'b'));
    CHECK(w.kept_bytes() == 80);
    CHECK_FALSE(w.has_room(30));
    CHECK(w.has_room(20));
    w.confirmed(1);
    CHECK(w.kept_bytes() == 40);
    w.keep(3, std::string(10, 'c'));
    auto replay = w.replay_after(2);
    REQUIRE(replay.size() == 1);
    CHECK(replay[0] == std::string(10, 'c'));

    CHECK(w.received(1, 30));
    CHECK_FALSE(w.confirm_to_send());
    CHECK(w.received(2, 30));
    CHECK(w.confirm_to_send() == 2u);
    CHECK_FALSE(w.confirm_to_send());
    CHECK_FALSE(w.received(2, 30)); // a replayed packet is dropped
    CHECK(w.last_received() == 2);
}

TEST_CASE("xa: a failover dooms branches with work and recreates every unprepared branch, "
          "ended ones with fail when doomed") {
    auto m = connected_pair("ha=true&reconnectAttempts=-1&retryInterval=50&maxRetryInterval=50");
    auto s = session("x1");
    s.transacted = false;
    s.xa = true;
    actormq::native::xid bound{1, "bound", ""};
    actormq::native::xid worked{1, "worked", "q"};
    actormq::native::xid idle{1, "idle", ""};
    s.xa_branches[xa_key(bound)] = xa_branch_record{bound, true, false};
    s.xa_branches[xa_key(worked)] = xa_branch_record{worked, true, false};
    s.xa_branches[xa_key(idle)] = xa_branch_record{idle, false, false};
    s.xa_bound = xa_key(bound);
    m.sessions[1] = s;
    CHECK(words(m.handle(ev_socket_closed{"eof", 10}))
          == w{"drop", "notify FAILURE_DETECTED", "unblock", "connect backup:2 @10"});
    auto& r = m.sessions[1];
    CHECK(r.xa_branches[xa_key(bound)].doomed);
    CHECK(r.xa_branches[xa_key(worked)].doomed);
    CHECK_FALSE(r.xa_branches[xa_key(idle)].doomed);
    auto p = recreation_packets(r);
    REQUIRE(p.size() == 6);
    CHECK(std::get<actormq::native::create_session>(p[0]).xa);
    // In key order: idle (start, end success), bound (start only), worked (start, end fail).
    std::vector<std::string> got;
    for (size_t i = 1; i < p.size(); ++i) {
        if (auto* st = std::get_if<actormq::native::xa_start>(&p[i])) {
            got.push_back("start " + st->id.gtrid);
        } else if (auto* en = std::get_if<actormq::native::xa_end>(&p[i])) {
            got.push_back("end " + en->id.gtrid
                          + (en->flag == actormq::native::xa_end_flag::fail ? " fail" : " ok"));
        }
    }
    CHECK(got
          == std::vector<std::string>{"start idle", "end idle ok", "start bound", "start worked",
                                      "end worked fail"});
    CHECK(xa_key(bound) != xa_key(actormq::native::xid{1, "boun", "d"}));
}
