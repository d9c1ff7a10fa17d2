// SPDX-License-Identifier: Apache-2.0
// Helpers of the native process tests (tests/process/native_*_test.cpp): a node config with a
// native acceptor next to STOMP's, and doctest-checked native steps.
#pragma once

#include "support/native_client.hpp"
#include "support/process_fixture.hpp"

#include <doctest/doctest.h>

#include <string>

namespace actormq::test {

/// A node config with user guest/guest, the STOMP acceptor `stomp` and the native acceptor
/// `native`, both on OS-chosen ports. `native` goes into `[acceptors.native]`.
inline std::string native_node_config(const std::string& native = "",
                                      const std::string& tail = "",
                                      const std::string& top = "") {
    return node_config("", "\n[acceptors.native]\nprotocol = \"native\"\nport = 0\n" + native
                               + "\n" + tail,
                       top);
}

/// Connects and logs in as guest; requires hello_ok, authenticated and topology.
inline void native_login(native_client& c, const node_process& node, uint32_t ttl_ms = 0) {
    REQUIRE_MESSAGE(c.connect_tcp(node.port("native")), c.last_error());
    REQUIRE_MESSAGE(c.login("guest", "guest", ttl_ms), c.last_error());
}

/// Requires `p` to be an ok.
inline void require_ok(const std::optional<native::packet>& p, const std::string& what) {
    REQUIRE_MESSAGE(p.has_value(), what, ": no response");
    REQUIRE_MESSAGE(p->type() == native::packet_type::ok, what, ": ", describe(*p));
}

/// Requires `p` to be a fail with `code`; returns its message.
inline std::string require_fail(const std::optional<native::packet>& p,
                                native::error_code code,
                                const std::string& what) {
    REQUIRE_MESSAGE(p.has_value(), what, ": no response");
    REQUIRE_MESSAGE(p->type() == native::packet_type::fail, what, ": ", describe(*p));
    const auto& f = std::get<native::fail>(p->body);
    CHECK_MESSAGE(f.code == code, what, ": ", describe(*p));
    return f.message;
}

/// Requires an error packet with `code` and then the server closing the connection; returns
/// the error's message.
inline std::string expect_native_error(native_client& c, native::error_code code) {
    auto p = c.receive_type(native::packet_type::error, soon());
    REQUIRE_MESSAGE(p.has_value(), "no error packet (", c.last_error(), ")");
    const auto& e = std::get<native::error>(p->body);
    CHECK_MESSAGE(e.code == code, describe(*p));
    CHECK_MESSAGE(c.closed_by_peer(soon()), "the server did not close the connection");
    return e.message;
}

/// Opens a session on channel 1 with a producer 1 (no address) and requires both ok.
inline void open_producer_session(native_client& c, uint32_t channel = 1) {
    require_ok(c.open_session(channel, "s" + std::to_string(channel)), "create_session");
    require_ok(c.call(channel, native::create_producer{1, "", -1}), "create_producer");
}

/// A native message to `address` with `body`.
inline native::message native_message(const std::string& address,
                                      const std::string& body,
                                      bool durable = false) {
    native::message m;
    m.address = address;
    m.body = body;
    m.durable = durable;
    return m;
}

/// Requires the next deliver packet and returns it.
inline native::deliver expect_deliver(native_client& c, deadline_t deadline = soon()) {
    auto p = c.receive_type(native::packet_type::deliver, deadline);
    REQUIRE_MESSAGE(p.has_value(), "no deliver arrived (", c.last_error(), ")");
    return std::get<native::deliver>(p->body);
}

} // namespace actormq::test
