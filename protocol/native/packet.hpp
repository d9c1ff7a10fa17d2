// SPDX-License-Identifier: Apache-2.0
#pragma once

// The native protocol's packets (docs/protocol.md). Plain structs, one per packet type, and the
// tables that say where each type may travel. Pure code: no sockets, no actors.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace actormq::native {

/// The oldest protocol version this code speaks (docs/protocol.md §2).
constexpr uint16_t protocol_version_min = 1;

/// The newest protocol version this code speaks (§2). Version 2 adds create_consumer's
/// pre_acknowledge (§6); a connection that negotiated 1 encodes and decodes without it.
constexpr uint16_t protocol_version = 2;

/// The four bytes "AMQN" that open a hello packet's body (§2), as a little-endian u32.
constexpr uint32_t hello_magic = 0x4e514d41;

/// Bytes of the fixed header every packet starts with (§1).
constexpr size_t header_bytes = 20;

/// The smallest max_packet_bytes a peer may announce in hello or hello_ok (§16).
constexpr uint32_t min_max_packet_bytes = 1024;

/// Longest part (gtrid or bqual) of an XA transaction id, as X/Open defines it (§10).
constexpr size_t xid_part_max_bytes = 64;

/// Largest priority a message may carry (§7).
constexpr uint8_t priority_max = 9;

// -- packet types --------------------------------------------------------------------------------

/// Type codes. They are on the wire: never renumber, only add (the table in §1).
enum class packet_type : uint8_t {
    // Connection packets: channel 0, sequence 0.
    hello = 1,
    hello_ok = 2,
    authenticate = 3,
    authenticated = 4,
    ping = 5,
    pong = 6,
    topology = 7,
    error = 8,
    disconnect = 9,
    // Session control packets: channel >= 1, sequence 0 (outside the replayed stream).
    reattach_session = 20,
    session_reattached = 21,
    packets_confirmed = 22,
    // Session stream packets, client to server: channel >= 1, sequence >= 1.
    create_session = 30,
    close_session = 31,
    create_producer = 32,
    close_producer = 33,
    send = 34,
    create_consumer = 35,
    close_consumer = 36,
    credit = 37,
    ack = 38,
    nack = 39,
    start = 40,
    stop = 41,
    commit = 42,
    rollback = 43,
    create_queue = 44,
    delete_queue = 45,
    xa_start = 50,
    xa_end = 51,
    xa_prepare = 52,
    xa_commit = 53,
    xa_rollback = 54,
    xa_recover = 55,
    // Session stream packets, server to client.
    ok = 70,
    fail = 71,
    deliver = 72,
    producer_credit = 73,
    consumer_closed = 74,
    xa_recovered = 75,
    // Added after version 1's first set; a connection packet, server to client.
    scale_down = 76,
};

/// Which end of a connection wrote a packet.
enum class peer : uint8_t {
    client,
    server,
};

/// Which channels and sequence numbers a packet type travels with (§1).
enum class channel_class : uint8_t {
    connection,      ///< channel 0, sequence 0
    session_control, ///< channel >= 1, sequence 0: never replayed, never confirmed
    session_stream,  ///< channel >= 1, sequence >= 1: confirmed and replayed on reattach (§14)
};

/// Everything the codec knows about one packet type.
struct packet_type_info {
    packet_type type;
    const char* name;    ///< lower-case, as in docs/protocol.md
    channel_class klass; ///< where it travels
    bool from_client;    ///< a client may send it
    bool from_server;    ///< a server may send it
};

/// The info for `t`, or nullptr for a code that is not a packet type.
const packet_type_info* info(packet_type t);

/// The info for a raw type code from the wire, or nullptr.
const packet_type_info* info_for_code(uint8_t code);

/// The position of a type's alternative in packet_body (the table follows its order).
size_t body_index(const packet_type_info& i);

/// The name of a type ("send"), or "unknown" for a code that is not one.
std::string_view to_string(packet_type t);

// -- enumerations carried in packet bodies
// ---------------------------------------------------------

/// Codes of error, fail, disconnect and consumer_closed packets (§15). On the wire as u16.
enum class error_code : uint16_t {
    malformed_packet = 1,         ///< the decoder refused a packet; the text says why
    unsupported_version = 2,      ///< hello named no version the server speaks
    authentication_failed = 3,    ///< unknown user or wrong password
    not_authenticated = 4,        ///< a packet other than hello/authenticate/ping before auth
    unexpected_packet = 5,        ///< a valid packet at the wrong time (a second hello, ...)
    session_exists = 6,           ///< create_session on a channel already open
    no_such_session = 7,          ///< a packet on a channel with no session
    no_such_producer = 8,         ///< a producer id the session does not have
    no_such_consumer = 9,         ///< a consumer id the session does not have
    no_such_address = 10,         ///< the address does not exist and may not be created
    no_such_queue = 11,           ///< the queue does not exist and may not be created
    queue_exists = 12,            ///< create_queue of a name already taken differently
    permission_denied = 13,       ///< the user may not do this
    address_full = 14,            ///< the address is full and its policy is FAIL
    duplicate_id = 15,            ///< a duplicate id already stored (in a transaction)
    transaction_rolled_back = 16, ///< the transaction was rolled back (rollback-only, §9)
    not_transacted = 17,          ///< commit/rollback on a session that is not transacted
    xa_retry = 18,                ///< XA: retry later (XA_RETRY)
    xa_unknown_xid = 19,          ///< XA: no transaction with this xid (XAER_NOTA)
    xa_protocol = 20,             ///< XA: the call is wrong in the xid's state (XAER_PROTO)
    xa_duplicate_xid = 21,        ///< XA: xa_start of an xid that exists (XAER_DUPID)
    limit_reached = 22,           ///< a configured limit (sessions, consumers, ...) was reached
    window_exceeded = 23,         ///< the peer sent beyond its credit or confirmation window
    server_stopping = 24,         ///< the server is shutting down (disconnect, §15)
    connection_ttl_expired = 25,  ///< no packet within connection-ttl (disconnect)
    journal_failed = 26,          ///< the server's journal refused a write
    request_timeout = 27,         ///< an internal request timed out; the outcome is unknown
    internal_error = 28,          ///< anything else; the text says what
};

/// True for a code this version defines.
bool is_valid(error_code c);

/// A stable lower-case name ("transaction_rolled_back").
std::string_view to_string(error_code c);

/// How an address hands messages to its queues (§11).
enum class routing : uint8_t {
    anycast = 0,
    multicast = 1,
};
bool is_valid(routing r);

/// How an ack is read (§8).
enum class ack_mode : uint8_t {
    individual = 1, ///< exactly the named message
    cumulative = 2, ///< every message delivered to the consumer up to and including it
};
bool is_valid(ack_mode m);

/// xa_start's flags (§10), after XAResource.start.
enum class xa_start_flag : uint8_t {
    none = 0,   ///< a new transaction branch
    join = 1,   ///< join an existing branch
    resume = 2, ///< resume a suspended branch
};
bool is_valid(xa_start_flag f);

/// xa_end's flags (§10), after XAResource.end.
enum class xa_end_flag : uint8_t {
    success = 0, ///< the work is complete
    fail = 1,    ///< the branch is rollback-only
    suspend = 2, ///< the work stops for now and is resumed later
};
bool is_valid(xa_end_flag f);

// -- pieces that several packets share -----------------------------------------------------------

/// One application header of a message: name and value.
using header = std::pair<std::string, std::string>;

/// A message as a producer sends it and a consumer receives it (§7).
struct message {
    /// send: the target address if the producer is anonymous, else empty.
    /// deliver: the address the message was sent to.
    std::string address;
    bool durable = false;
    uint8_t priority = 4;      ///< 0..priority_max
    int64_t expiration_ms = 0; ///< milliseconds since the epoch; 0 never expires
    int64_t timestamp_ms = 0;  ///< milliseconds since the epoch, set by the producer
    /// Duplicate-detection id (`_AMQ_DUPL_ID`); empty: none.
    std::string duplicate_id;
    std::vector<header> headers;
    std::string body; ///< opaque bytes
};

/// An XA transaction id (§10).
struct xid {
    int32_t format_id = 0;
    std::string gtrid; ///< 1..64 bytes
    std::string bqual; ///< 0..64 bytes
};

/// One live/backup group of the topology (§12).
struct topology_member {
    std::string node_id; ///< the group's node id (docs/ha.md)
    std::string live;    ///< the live's native acceptor, HOST:PORT
    std::string backup;  ///< the backup's native acceptor, HOST:PORT; empty: none known
};

// -- connection packets (§2-§4, §12, §13, §15)
// -----------------------------------------------------

/// First packet of a connection, client to server (§2).
struct hello {
    static constexpr packet_type type = packet_type::hello;
    uint32_t magic = hello_magic;
    uint16_t version_min = protocol_version_min;
    uint16_t version_max = protocol_version;
    /// The largest packet the client accepts (at least 1024): the server sends nothing larger.
    uint32_t max_packet_bytes = 10 * 1024 * 1024 + 64 * 1024;
    std::string client_name; ///< software and version, for logs ("actormq-cpp/0.1.0")
};

/// The server's answer to hello (§2).
struct hello_ok {
    static constexpr packet_type type = packet_type::hello_ok;
    uint16_t version = protocol_version; ///< the version both sides now speak
    uint32_t max_packet_bytes = 0;       ///< the largest packet the server accepts
    std::string server_name;
    std::string node_id; ///< the group's node id (docs/ha.md): unchanged by failover
};

/// Credentials, client to server (§3).
struct authenticate {
    static constexpr packet_type type = packet_type::authenticate;
    std::string user;
    std::string password;
    std::string client_id;          ///< JMS client id (durable subscriptions); empty: none
    uint32_t connection_ttl_ms = 0; ///< the TTL the client asks for; 0: the server's default
};

/// The server accepted the credentials (§3).
struct authenticated {
    static constexpr packet_type type = packet_type::authenticated;
    uint64_t connection_id = 0;
    uint32_t connection_ttl_ms = 0; ///< the TTL the server applies (§13)
};

/// A liveness probe either side may send; the other answers pong with the same nonce (§13).
struct ping {
    static constexpr packet_type type = packet_type::ping;
    uint64_t nonce = 0;
};

/// The answer to ping (§13).
struct pong {
    static constexpr packet_type type = packet_type::pong;
    uint64_t nonce = 0;
};

/// The whole current topology, pushed after authenticated and on every change (§12).
struct topology {
    static constexpr packet_type type = packet_type::topology;
    uint64_t version = 0; ///< grows with every change; a client ignores an older one
    std::vector<topology_member> members;
};

/// A fatal connection error; the sender closes the connection after it (§15).
struct error {
    static constexpr packet_type type = packet_type::error;
    error_code code = error_code::internal_error;
    std::string message;
};

/// An orderly goodbye; the sender closes the connection after it (§15).
struct disconnect {
    static constexpr packet_type type = packet_type::disconnect;
    error_code code = error_code::server_stopping;
    std::string message;
    /// Server only: HOST:PORT the client should go to instead (the backup); empty: none.
    std::string redirect;
};

// -- session control packets (§14)
// -----------------------------------------------------------------

/// Client to server: bind the named session, kept by the server for connection-ttl, to this
/// connection and channel, and say which server packets the client already has.
struct reattach_session {
    static constexpr packet_type type = packet_type::reattach_session;
    std::string name;           ///< create_session's name
    uint64_t last_received = 0; ///< last server stream sequence the client received in order
};

/// The answer to reattach_session.
struct session_reattached {
    static constexpr packet_type type = packet_type::session_reattached;
    bool found = false;         ///< false: no such session any more; the client recreates it
    uint64_t last_received = 0; ///< last client stream sequence the server received in order
};

/// Either side: every stream packet up to and including `last` arrived (§14).
struct packets_confirmed {
    static constexpr packet_type type = packet_type::packets_confirmed;
    uint64_t last = 0;
};

// -- session stream packets, client to server (§4-§11) -------------------------------------------

/// Opens a session on the packet's channel (§4).
struct create_session {
    static constexpr packet_type type = packet_type::create_session;
    std::string name;        ///< unique per client, used by reattach_session (a UUID)
    bool transacted = false; ///< sends and acks wait for commit (§9)
    bool xa = false;         ///< the session's work is bound to xids (§10)
    /// Bytes of unconfirmed stream packets each side keeps for reattach (§14); -1: none, and
    /// then the session is not kept after its connection ends.
    int32_t confirmation_window_bytes = -1;
};

/// Closes the session on the packet's channel (§4).
struct close_session {
    static constexpr packet_type type = packet_type::close_session;
};

/// Opens a producer (§5).
struct create_producer {
    static constexpr packet_type type = packet_type::create_producer;
    uint32_t producer_id = 0;  ///< chosen by the client, unique in the session
    std::string address;       ///< empty: anonymous, each send names its address
    int32_t window_bytes = -1; ///< producer credit window (§5); -1: no flow control
};

/// Closes a producer (§5).
struct close_producer {
    static constexpr packet_type type = packet_type::close_producer;
    uint32_t producer_id = 0;
};

/// A message from a producer (§7).
struct send {
    static constexpr packet_type type = packet_type::send;
    uint32_t producer_id = 0;
    bool confirm = false; ///< the server answers ok or fail once the message is stored
    message msg;
};

/// Opens a consumer on a queue (§6).
struct create_consumer {
    static constexpr packet_type type = packet_type::create_consumer;
    uint32_t consumer_id = 0; ///< chosen by the client, unique in the session
    std::string queue;
    std::string filter;        ///< selector; empty: none
    int32_t window_bytes = -1; ///< initial credit in bytes of deliver packets; -1: unbounded
    bool browse_only = false;
    /// Version 2 (§6, §8): the server acknowledges each message as it delivers it and the
    /// consumer sends no ack (Artemis's pre-acknowledge, STOMP's ack:auto).
    bool pre_acknowledge = false;
};

/// Closes a consumer; its unacked deliveries go back to the queue (§6).
struct close_consumer {
    static constexpr packet_type type = packet_type::close_consumer;
    uint32_t consumer_id = 0;
};

/// Adds consumer credit, in bytes of deliver packets (§6).
struct credit {
    static constexpr packet_type type = packet_type::credit;
    uint32_t consumer_id = 0;
    uint32_t bytes = 0;
};

/// Acknowledges deliveries (§8).
struct ack {
    static constexpr packet_type type = packet_type::ack;
    uint32_t consumer_id = 0;
    uint64_t message_id = 0;
    ack_mode mode = ack_mode::individual;
    bool confirm = false; ///< the server answers ok once the ack is stored
};

/// Returns one delivery to its queue for redelivery (§8).
struct nack {
    static constexpr packet_type type = packet_type::nack;
    uint32_t consumer_id = 0;
    uint64_t message_id = 0;
};

/// Starts deliveries to the session's consumers (§6).
struct start {
    static constexpr packet_type type = packet_type::start;
};

/// Stops deliveries; once answered, no deliver follows until start (§6).
struct stop {
    static constexpr packet_type type = packet_type::stop;
};

/// Commits the session's local transaction (§9).
struct commit {
    static constexpr packet_type type = packet_type::commit;
};

/// Rolls back the session's local transaction (§9).
struct rollback {
    static constexpr packet_type type = packet_type::rollback;
};

/// Creates a queue, or a temporary queue owned by the session's connection (§11).
struct create_queue {
    static constexpr packet_type type = packet_type::create_queue;
    std::string queue;
    std::string address;
    routing route = routing::anycast;
    bool durable = false;
    bool temporary = false;
    std::string filter; ///< empty: none
};

/// Deletes a queue (§11).
struct delete_queue {
    static constexpr packet_type type = packet_type::delete_queue;
    std::string queue;
};

/// Binds the session's work to an xid (§10).
struct xa_start {
    static constexpr packet_type type = packet_type::xa_start;
    struct xid id;
    xa_start_flag flag = xa_start_flag::none;
};

/// Unbinds the session's work from an xid (§10).
struct xa_end {
    static constexpr packet_type type = packet_type::xa_end;
    struct xid id;
    xa_end_flag flag = xa_end_flag::success;
};

/// Prepares an xid: its work is durable and will commit or roll back as told (§10).
struct xa_prepare {
    static constexpr packet_type type = packet_type::xa_prepare;
    struct xid id;
};

/// Commits an xid, prepared or (one_phase) not (§10).
struct xa_commit {
    static constexpr packet_type type = packet_type::xa_commit;
    struct xid id;
    bool one_phase = false;
};

/// Rolls back an xid (§10).
struct xa_rollback {
    static constexpr packet_type type = packet_type::xa_rollback;
    struct xid id;
};

/// Asks for every prepared xid (§10).
struct xa_recover {
    static constexpr packet_type type = packet_type::xa_recover;
};

// -- session stream packets, server to client ----------------------------------------------------

/// A request succeeded (§4).
struct ok {
    static constexpr packet_type type = packet_type::ok;
    uint64_t correlation = 0; ///< the request's sequence number
};

/// A request failed; the session stays open (§15).
struct fail {
    static constexpr packet_type type = packet_type::fail;
    uint64_t correlation = 0; ///< the request's sequence number
    error_code code = error_code::internal_error;
    std::string message;
};

/// A message for a consumer (§6).
struct deliver {
    static constexpr packet_type type = packet_type::deliver;
    uint32_t consumer_id = 0;
    uint64_t message_id = 0;     ///< what ack and nack name
    uint32_t delivery_count = 0; ///< deliveries before this one
    message msg;
};

/// Adds producer credit, in bytes of send packets (§5).
struct producer_credit {
    static constexpr packet_type type = packet_type::producer_credit;
    uint32_t producer_id = 0;
    uint32_t bytes = 0;
};

/// The server closed a consumer (its queue was deleted, ...) (§6).
struct consumer_closed {
    static constexpr packet_type type = packet_type::consumer_closed;
    uint32_t consumer_id = 0;
    error_code code = error_code::no_such_queue;
    std::string message;
};

/// The answer to xa_recover: every prepared xid (§10).
struct xa_recovered {
    static constexpr packet_type type = packet_type::xa_recovered;
    uint64_t correlation = 0;
    std::vector<xid> xids;
};

/// The server is stopping and scaling down (docs/ha.md, "Scale-down"): its messages and
/// prepared transactions go to the live at `target`; a disconnect follows. Connection packet,
/// server to client.
struct scale_down {
    static constexpr packet_type type = packet_type::scale_down;
    /// HOST:PORT of the target's native acceptor.
    std::string target;
    std::string message;
};

// -- the packet ----------------------------------------------------------------------------------

/// Every body, one alternative per packet type.
using packet_body = std::variant<hello,
                                 hello_ok,
                                 authenticate,
                                 authenticated,
                                 ping,
                                 pong,
                                 topology,
                                 error,
                                 disconnect,
                                 reattach_session,
                                 session_reattached,
                                 packets_confirmed,
                                 create_session,
                                 close_session,
                                 create_producer,
                                 close_producer,
                                 send,
                                 create_consumer,
                                 close_consumer,
                                 credit,
                                 ack,
                                 nack,
                                 start,
                                 stop,
                                 commit,
                                 rollback,
                                 create_queue,
                                 delete_queue,
                                 xa_start,
                                 xa_end,
                                 xa_prepare,
                                 xa_commit,
                                 xa_rollback,
                                 xa_recover,
                                 ok,
                                 fail,
                                 deliver,
                                 producer_credit,
                                 consumer_closed,
                                 xa_recovered,
                                 scale_down>;

/// How many packet types this version defines.
constexpr size_t packet_type_count = std::variant_size_v<packet_body>;

/// One packet: the header's routing fields and the body (the length is implied).
struct packet {
    uint32_t channel = 0;  ///< 0 for connection packets, the session's channel otherwise
    uint64_t sequence = 0; ///< >= 1 for session stream packets, 0 otherwise (§14)
    packet_body body;

    /// The body's type.
    packet_type type() const;
};

/// Makes a connection packet (channel 0, sequence 0).
template <class Body>
packet make_packet(Body body) {
    return packet{0, 0, packet_body{std::move(body)}};
}

/// Makes a session packet; `sequence` is 0 for control packets.
template <class Body>
packet make_packet(uint32_t channel, uint64_t sequence, Body body) {
    return packet{channel, sequence, packet_body{std::move(body)}};
}

} // namespace actormq::native
