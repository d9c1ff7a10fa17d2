// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/broker/output_buffer.hpp"
#include "actors/broker/server_context.hpp"
#include "actors/fwd.hpp"
#include "actors/native/native_session.hpp"
#include "actors/native/topology_feed.hpp"
#include "protocol/native/codec.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace caf {
class actor_system;
}

namespace actormq {

/// One native client connection on an Asio strand (not an actor, as STOMP's `connection`):
/// the incremental decoder, hello and authenticate (docs/protocol.md §2, §3), ping, the
/// connection TTL (§13), reattach (§14), the output bound and write timeout, and back-pressure
/// (it stops reading while its sessions have not confirmed `read-window-bytes`). Packets of a
/// channel go to that channel's session actor. The `post_*` functions are the only entry
/// points for other threads.
class native_connection : public std::enable_shared_from_this<native_connection> {
public:
    using tcp = boost::asio::ip::tcp;

    /// Called on the strand once the connection has closed.
    using close_hook = std::function<void(uint64_t id)>;

    native_connection(tcp::socket socket,
                      uint64_t id,
                      std::shared_ptr<server_context> ctx,
                      std::shared_ptr<const config::acceptor_config> acceptor,
                      caf::actor_system& sys,
                      server_actor server,
                      std::shared_ptr<native_registry> registry,
                      close_hook on_close,
                      std::shared_ptr<native_topology_feed> topology = nullptr);

    /// Starts reading and the authentication timer.
    void start();

    /// Appends encoded packets to the output (thread-safe).
    void post_write(std::string bytes);

    /// post_write of `bytes` (if any), and the session on `channel` is done with `confirmed`
    /// more input bytes (if any): one hand-off to the connection's thread (thread-safe). With
    /// a `mark` (not 0), `who` gets written_atom with it once every byte queued so far is
    /// written to the socket (a pre-acknowledge consumer's queue credit, docs/protocol.md §6);
    /// a connection that closes first never reports it.
    void post_output(std::string bytes,
                     uint32_t channel,
                     uint64_t confirmed,
                     native_session_actor who = {},
                     uint64_t mark = 0);

    /// The session of `link` handled `bytes` more of the input handed to it (thread-safe).
    /// Only when the connection stopped reading for its read window does this hand anything
    /// to the connection's thread (to read again).
    void confirm(const native_link& link, uint64_t bytes);

    /// The session `who` no longer uses `channel` (thread-safe).
    void post_session_ended(uint32_t channel, caf::actor_addr who);

    /// Sends `error` with `code` and `message`, then closes; sessions close (thread-safe).
    void post_error(native::error_code code, std::string message);

    /// Sends `t` (§12) if the connection is authenticated and open (thread-safe).
    void post_topology(native::topology t);

    /// For server shutdown (thread-safe): sends `disconnect` `server_stopping`, naming the
    /// backup that takes over when there is one (docs/protocol.md §15), then closes; its
    /// sessions close. Before authentication it just closes.
    void post_shutdown();

    /// Closes at once as if the socket failed (thread-safe): sessions with a confirmation
    /// window are kept for reattach. For a session reattached elsewhere (§14).
    void post_drop();

    uint64_t id() const { return id_; }

private:
    enum class phase : uint8_t { hello, authenticate, ready };

    /// What the sessions are told when the connection ends (§14).
    enum class ending : uint8_t { detach, close };

    struct channel_entry {
        native_session_actor session;
        /// Input bytes handed to it and not yet confirmed (shared with its session's link).
        std::shared_ptr<std::atomic<int64_t>> unconfirmed;
    };

    void do_read();
    void on_read(const boost::system::error_code& ec, const char* data, size_t n);
    bool take_packets();
    bool on_connection_packet(native::packet& p);
    bool on_hello(native::hello& h);
    bool on_authenticate(native::authenticate& a);
    bool on_session_packet(native::packet& p,
                           uint32_t bytes,
                           std::map<uint32_t, std::vector<native_inbound>>& batches);
    bool on_create_session(native::packet& p,
                           uint32_t bytes,
                           std::map<uint32_t, std::vector<native_inbound>>& batches);
    void on_reattach(uint32_t channel, native::reattach_session& r);
    /// The `redirect` of the `disconnect` sent on shutdown: the backup of this node id in the
    /// topology when this primary's stop hands over to it, else "".
    std::string failover_target() const;
    /// Sends `disconnect` `server_stopping` and closes once it is written (post_shutdown).
    void say_goodbye();
    native_link link_for(uint32_t channel);
    void send_packet(const native::packet& p);
    /// Sends `t` (none: this server alone), with this server added when it is not in it.
    void send_topology(std::optional<native::topology> t);
    uint64_t unconfirmed_total() const;
    void maybe_resume_reading();
    void write(std::string bytes);
    void seal(std::string last);
    void do_write();
    void on_write(const boost::system::error_code& ec, size_t n);
    /// Reports every written mark that written_total_ has reached, the newest per session.
    void report_written();
    void arm_write_timer();
    uint64_t pending_output() const;
    void fail(native::error_code code, const std::string& message);
    void close_after_write(ending how);
    void close(ending how);
    void arm_ttl_check();
    void on_ttl_check();

    tcp::socket socket_;
    uint64_t id_;
    std::shared_ptr<server_context> ctx_;
    std::shared_ptr<const config::acceptor_config> acceptor_;
    caf::actor_system& sys_;
    server_actor server_;
    std::shared_ptr<native_registry> registry_;
    close_hook on_close_;
    std::shared_ptr<native_topology_feed> topology_;
    native::decoder decoder_;
    phase phase_ = phase::hello;
    std::string user_;
    uint32_t client_max_packet_bytes_ = native::min_max_packet_bytes;
    uint32_t ttl_ms_ = 0;
    std::map<uint32_t, channel_entry> channels_;
    /// What waits to be written and the piece being written; sealed once the last packet (an
    /// error) is queued.
    output_buffer out_;
    uint64_t write_generation_ = 0;
    /// Bytes handed to out_ and bytes written to the socket, since the connection began.
    uint64_t appended_total_ = 0;
    uint64_t written_total_ = 0;
    /// A session's written mark: reported once written_total_ reaches `end`.
    struct written_mark {
        uint64_t end = 0;
        native_session_actor who;
        uint64_t mark = 0;
    };
    std::deque<written_mark> written_marks_;
    bool writing_ = false;
    /// A write of what waits is posted and has not run yet (write).
    bool write_posted_ = false;
    bool reading_ = false;
    /// Reading stopped because the sessions have read-window-bytes unconfirmed: a session's
    /// confirm then asks the connection's thread to look again (maybe_resume_reading).
    std::atomic<bool> window_paused_{false};
    bool closing_ = false;
    bool closed_ = false;
    bool lingering_ = false;
    ending ending_ = ending::detach;
    std::chrono::steady_clock::time_point last_read_;
    boost::asio::steady_timer auth_timer_;
    boost::asio::steady_timer ttl_timer_;
    boost::asio::steady_timer write_timer_;
};

} // namespace actormq
