// SPDX-License-Identifier: Apache-2.0
#include "protocol/native/packet.hpp"

#include <array>

namespace actormq::native {

namespace {

constexpr channel_class conn = channel_class::connection;
constexpr channel_class ctrl = channel_class::session_control;
constexpr channel_class strm = channel_class::session_stream;

// The table of docs/protocol.md §1, in the order of packet_body's alternatives.
constexpr std::array<packet_type_info, packet_type_count> type_table{{
    {packet_type::hello, "hello", conn, true, false},
    {packet_type::hello_ok, "hello_ok", conn, false, true},
    {packet_type::authenticate, "authenticate", conn, true, false},
    {packet_type::authenticated, "authenticated", conn, false, true},
    {packet_type::ping, "ping", conn, true, true},
    {packet_type::pong, "pong", conn, true, true},
    {packet_type::topology, "topology", conn, false, true},
    {packet_type::error, "error", conn, true, true},
    {packet_type::disconnect, "disconnect", conn, true, true},
    {packet_type::reattach_session, "reattach_session", ctrl, true, false},
    {packet_type::session_reattached, "session_reattached", ctrl, false, true},
    {packet_type::packets_confirmed, "packets_confirmed", ctrl, true, true},
    {packet_type::create_session, "create_session", strm, true, false},
    {packet_type::close_session, "close_session", strm, true, false},
    {packet_type::create_producer, "create_producer", strm, true, false},
    {packet_type::close_producer, "close_producer", strm, true, false},
    {packet_type::send, "send", strm, true, false},
    {packet_type::create_consumer, "create_consumer", strm, true, false},
    {packet_type::close_consumer, "close_consumer", strm, true, false},
    {packet_type::credit, "credit", strm, true, false},
    {packet_type::ack, "ack", strm, true, false},
    {packet_type::nack, "nack", strm, true, false},
    {packet_type::start, "start", strm, true, false},
    {packet_type::stop, "stop", strm, true, false},
    {packet_type::commit, "commit", strm, true, false},
    {packet_type::rollback, "rollback", strm, true, false},
    {packet_type::create_queue, "create_queue", strm, true, false},
    {packet_type::delete_queue, "delete_queue", strm, true, false},
    {packet_type::xa_start, "xa_start", strm, true, false},
    {packet_type::xa_end, "xa_end", strm, true, false},
    {packet_type::xa_prepare, "xa_prepare", strm, true, false},
    {packet_type::xa_commit, "xa_commit", strm, true, false},
    {packet_type::xa_rollback, "xa_rollback", strm, true, false},
    {packet_type::xa_recover, "xa_recover", strm, true, false},
    {packet_type::ok, "ok", strm, false, true},
    {packet_type::fail, "fail", strm, false, true},
    {packet_type::deliver, "deliver", strm, false, true},
    {packet_type::producer_credit, "producer_credit", strm, false, true},
    {packet_type::consumer_closed, "consumer_closed", strm, false, true},
    {packet_type::xa_recovered, "xa_recovered", strm, false, true},
    {packet_type::scale_down, "scale_down", conn, false, true},
}};

// Built once: a code's position in type_table, or -1.
std::array<int, 256> make_index() {
    std::array<int, 256> index{};
    index.fill(-1);
    for (size_t i = 0; i < type_table.size(); ++i) {
        index[static_cast<uint8_t>(type_table[i].type)] = static_cast<int>(i);
    }
    return index;
}

const std::array<int, 256>& code_index() {
    static const std::array<int, 256> index = make_index();
    return index;
}

template <size_t I = 0>
constexpr bool table_matches_variant() {
    if constexpr (I == packet_type_count) {
        return true;
    } else {
        return std::variant_alternative_t<I, packet_body>::type == type_table[I].type
               && table_matches_variant<I + 1>();
    }
}

static_assert(table_matches_variant(), "type_table must list packet_body's alternatives in order");

constexpr std::array<const char*, 29> error_names{
    "",
    "malformed_packet",
    "unsupported_version",
    "authentication_failed",
    "not_authenticated",
    "unexpected_packet",
    "session_exists",
    "no_such_session",
    "no_such_producer",
    "no_such_consumer",
    "no_such_address",
    "no_such_queue",
    "queue_exists",
    "permission_denied",
    "address_full",
    "duplicate_id",
    "transaction_rolled_back",
    "not_transacted",
    "xa_retry",
    "xa_unknown_xid",
    "xa_protocol",
    "xa_duplicate_xid",
    "limit_reached",
    "window_exceeded",
    "server_stopping",
    "connection_ttl_expired",
    "journal_failed",
    "request_timeout",
    "internal_error",
};

static_assert(static_cast<size_t>(error_code::internal_error) + 1 == error_names.size(),
              "error_names must name every error_code");

} // namespace

const packet_type_info* info_for_code(uint8_t code) {
    int i = code_index()[code];
    return i < 0 ? nullptr : &type_table[static_cast<size_t>(i)];
}

const packet_type_info* info(packet_type t) {
    return info_for_code(static_cast<uint8_t>(t));
}

size_t body_index(const packet_type_info& i) {
    return static_cast<size_t>(&i - type_table.data());
}

std::string_view to_string(packet_type t) {
    const packet_type_info* i = info(t);
    return i == nullptr ? "unknown" : i->name;
}

packet_type packet::type() const {
    return type_table[body.index()].type;
}

bool is_valid(error_code c) {
    auto v = static_cast<uint16_t>(c);
    return v >= 1 && v < error_names.size();
}

std::string_view to_string(error_code c) {
    return is_valid(c) ? error_names[static_cast<uint16_t>(c)] : "unknown";
}

bool is_valid(routing r) {
    return r == routing::anycast || r == routing::multicast;
}

bool is_valid(ack_mode m) {
    return m == ack_mode::individual || m == ack_mode::cumulative;
}

bool is_valid(xa_start_flag f) {
    return static_cast<uint8_t>(f) <= static_cast<uint8_t>(xa_start_flag::resume);
}

bool is_valid(xa_end_flag f) {
    return static_cast<uint8_t>(f) <= static_cast<uint8_t>(xa_end_flag::suspend);
}

} // namespace actormq::native
