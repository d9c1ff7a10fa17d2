// SPDX-License-Identifier: Apache-2.0
#pragma once

// A minimal blocking client of the native protocol (docs/protocol.md) for process tests. It is
// built on the codec in protocol/native/ and knows only what the tests need: numbering stream
// packets per channel, waiting for a response by correlation, and keeping the packets a
// reattach must resend. It is not the client library (issue 12, part 2 of the client).

#include "protocol/native/codec.hpp"
#include "protocol/native/packet.hpp"
#include "support/wait.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace actormq::test {

/// A one-line description of a packet (type, channel, sequence, key fields).
std::string describe(const native::packet& p);

/// A blocking native client over a POSIX socket. Reads wait against a deadline (poll), so no
/// call can hang a test.
class native_client {
public:
    native_client();
    ~native_client();

    native_client(const native_client&) = delete;
    native_client& operator=(const native_client&) = delete;

    /// Opens a TCP connection to 127.0.0.1:`port`.
    bool connect_tcp(uint16_t port);

    /// Writes bytes as they are.
    bool send_raw(std::string_view bytes);

    /// Encodes and writes a packet as it is (no numbering).
    bool send_packet(const native::packet& p);

    /// Sends hello then authenticate and reads hello_ok, authenticated and topology; false (and
    /// `last_error`) if any is missing. `ttl_ms` is the TTL asked for (0: the server's).
    bool login(const std::string& user, const std::string& password, uint32_t ttl_ms = 0);

    /// Sends a stream packet on `channel` with the channel's next sequence and returns it.
    /// With a confirmation window on the channel, the encoded packet is kept for a reattach.
    uint64_t request(uint32_t channel, native::packet_body body);

    /// Opens a session on `channel`; returns the create_session's response.
    std::optional<native::packet> open_session(uint32_t channel,
                                               const std::string& name,
                                               bool transacted = false,
                                               int32_t confirmation_window = -1);

    /// Sends `body` on `channel` and waits for the ok / fail naming it.
    std::optional<native::packet> call(uint32_t channel, native::packet_body body);

    /// Waits for the ok or fail with this correlation on `channel`; packets met on the way stay
    /// buffered.
    std::optional<native::packet> response(uint32_t channel, uint64_t correlation,
                                           deadline_t deadline);

    /// The next packet (buffered ones first); nullopt on timeout, EOF or a decode error.
    /// Stream packets are counted as received on their channel; `packets_confirmed` and
    /// `pong` are answered or absorbed as the protocol says (see `auto_confirm`).
    std::optional<native::packet> receive(deadline_t deadline);

    /// The next packet of type `t` (others stay buffered).
    std::optional<native::packet> receive_type(native::packet_type t, deadline_t deadline);

    /// Waits until the server closes the connection (EOF or reset); packets read meanwhile are
    /// buffered.
    bool closed_by_peer(deadline_t deadline);

    /// Closes the socket (FIN), as a client whose network failed would look to the server.
    void close();

    /// Forgets the connection state (buffers, decoder) but keeps the channels' sequences and
    /// kept packets, for a reconnect and reattach.
    void reset_connection();

    /// Sends reattach_session for `name` on `channel` and waits for session_reattached. On
    /// found, resends the kept packets the server has not received.
    std::optional<native::session_reattached> reattach(uint32_t channel, const std::string& name);

    /// The highest server stream sequence received in order on `channel`.
    uint64_t last_received(uint32_t channel) const;

    /// Sends packets_confirmed for what was received on `channel` (with a window).
    bool confirm(uint32_t channel);

    /// Whether the client sends packets_confirmed by itself once half the window arrived.
    bool auto_confirm = true;

    /// Packets read but not returned yet.
    const std::deque<native::packet>& buffered() const { return buffered_; }

    /// Whether EOF was seen.
    bool eof() const { return eof_; }

    /// The decoder's refusal of the server's bytes, if any.
    const native::codec_failure& decode_failure() const { return decoder_.failure(); }

    const std::string& last_error() const { return last_error_; }

    /// What hello_ok, authenticated and the first topology said.
    native::hello_ok hello_ok_seen;
    native::authenticated authenticated_seen;
    native::topology topology_seen;

private:
    struct channel_state {
        uint64_t out_seq = 0;
        uint64_t in_seq = 0;
        int32_t window = -1;
        uint64_t received_since_confirm = 0;
        std::deque<std::pair<uint64_t, std::string>> kept;
    };

    bool read_some(deadline_t deadline);
    std::optional<native::packet> take_one();

    int fd_ = -1;
    native::decoder decoder_;
    std::deque<native::packet> buffered_;
    std::map<uint32_t, channel_state> channels_;
    bool eof_ = false;
    std::string last_error_;
};

} // namespace actormq::test
