// SPDX-License-Identifier: Apache-2.0
// A native client connection (docs/protocol.md §1-§3, §12-§15). The write path, the output
// bound, the write timeout and the linger after an error follow STOMP's connection
// (actors/broker/connection.cpp), copied because that file is STOMP's own.
#include "actors/native/native_connection.hpp"

#include "actors/broker/read_when_readable.hpp"
#include "protocol/assert.hpp"

#include <boost/asio/post.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include <algorithm>

namespace actormq {

namespace asio = boost::asio;
using native::error_code;

namespace {

/// How long a closing connection keeps reading (and discarding) after its last packet, so
/// unread client bytes do not turn the close into a reset that would swallow that packet.
constexpr auto linger_after_error = std::chrono::seconds(2);

native::codec_limits input_limits(const config::acceptor_config& a) {
    native::codec_limits l;
    l.max_packet_bytes = a.max_packet_bytes;
    return l;
}

/// Checks a user and password against [security] (as STOMP's CONNECT does); "" when accepted,
/// else the reason.
std::string check_login(const native::authenticate& a, const config::security_config& sec) {
    if (!sec.security_enabled) {
        return {};
    }
    if (a.user.empty()) {
        return sec.allow_anonymous ? std::string{} : "authentication failed: a user is required";
    }
    auto it = std::find_if(sec.users.begin(), sec.users.end(),
                           [&](const config::user_config& u) { return u.name == a.user; });
    if (it == sec.users.end() || it->password != a.password) {
        return "authentication failed: unknown user or wrong password";
    }
    return {};
}

} // namespace

native_connection::native_connection(tcp::socket socket,
                                     uint64_t id,
                                     std::shared_ptr<server_context> ctx,
                                     std::shared_ptr<const config::acceptor_config> acceptor,
                                     caf::actor_system& sys,
                                     server_actor server,
                                     std::shared_ptr<native_registry> registry,
                                     close_hook on_close,
                                     std::shared_ptr<native_topology_feed> topology)
    : socket_(std::move(socket)),
      id_(id),
      ctx_(std::move(ctx)),
      acceptor_(std::move(acceptor)),
      sys_(sys),
      server_(std::move(server)),
      registry_(std::move(registry)),
      on_close_(std::move(on_close)),
      topology_(std::move(topology)),
      decoder_(native::peer::client, input_limits(*acceptor_)),
      auth_timer_(socket_.get_executor()),
      ttl_timer_(socket_.get_executor()),
      write_timer_(socket_.get_executor()) {}

void native_connection::start() {
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    // Reads happen only once the socket is readable, and then without blocking (do_read).
    socket_.non_blocking(true, ignored);
    last_read_ = std::chrono::steady_clock::now();
    auth_timer_.expires_after(std::chrono::milliseconds(acceptor_->connect_timeout_ms));
    auth_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec && self->phase_ != phase::ready && !self->closing_ && !self->closed_) {
            self->fail(error_code::not_authenticated,
                       "no hello and authenticate within connect-timeout-ms ("
                           + std::to_string(self->acceptor_->connect_timeout_ms) + " ms)");
        }
    });
    do_read();
}

void native_connection::post_write(std::string bytes) {
    asio::post(socket_.get_executor(), [self = shared_from_this(), b = std::move(bytes)]() mutable {
        self->write(std::move(b));
    });
}

void native_connection::post_output(std::string bytes,
                                    uint32_t channel,
                                    uint64_t confirmed,
                                    native_session_actor who,
                                    uint64_t mark) {
    asio::post(socket_.get_executor(), [self = shared_from_this(), b = std::move(bytes), channel,
                                        confirmed, who = std::move(who), mark]() mutable {
        if (!b.empty()) {
            self->write(std::move(b));
        }
        if (mark != 0 && !self->closed_ && !self->out_.sealed()) {
            // Reported from on_write once these bytes are on the socket; at once
            // if they already are (nothing was added).
            self->written_marks_.push_back({self->appended_total_, std::move(who), mark});
            self->report_written();
        }
        if (confirmed > 0) {
            auto it = self->channels_.find(channel);
            if (it != self->channels_.end()) {
                it->second.unconfirmed->fetch_sub(static_cast<int64_t>(confirmed));
            }
            self->maybe_resume_reading();
        }
    });
}

void native_connection::confirm(const native_link& link, uint64_t bytes) {
    if (bytes == 0 || !link.unconfirmed) {
        return;
    }
    link.unconfirmed->fetch_sub(static_cast<int64_t>(bytes));
    // Sequentially consistent with maybe_resume_reading: either it sees the bytes gone, or
    // this sees it paused and posts.
    if (window_paused_.load()) {
        asio::post(socket_.get_executor(),
                   [self = shared_from_this()] { self->maybe_resume_reading(); });
    }
}

void native_connection::post_session_ended(uint32_t channel, caf::actor_addr who) {
    asio::post(socket_.get_executor(), [self = shared_from_this(), channel, who] {
        auto it = self->channels_.find(channel);
        if (it != self->channels_.end() && it->second.session.address() == who) {
            self->channels_.erase(it);
        }
        self->maybe_resume_reading();
    });
}

void native_connection::post_error(error_code code, std::string message) {
    asio::post(socket_.get_executor(),
               [self = shared_from_this(), code, m = std::move(message)] { self->fail(code, m); });
}

void native_connection::post_topology(native::topology t) {
    asio::post(socket_.get_executor(), [self = shared_from_this(), t = std::move(t)]() mutable {
        // Before authenticated the connection sends the feed's value then, which is this one
        // or newer.
        if (self->phase_ == phase::ready && !self->closing_ && !self->closed_) {
            self->send_topology(std::move(t));
        }
    });
}

void native_connection::send_topology(std::optional<native::topology> t) {
    if (!t) {
        t.emplace();
        t->version = 1;
    }
    bool has_self = std::any_of(t->members.begin(), t->members.end(),
                                [this](const auto& m) { return m.node_id == ctx_->node_id; });
    if (!has_self || ctx_->node_id.empty()) {
        // Without a cluster (or before it knows this node id) the client still learns where
        // this server is.
        boost::system::error_code ec;
        auto local = socket_.local_endpoint(ec);
        std::string here =
            ec ? std::string{} : local.address().to_string() + ":" + std::to_string(local.port());
        t->members.insert(t->members.begin(), native::topology_member{ctx_->node_id, here, ""});
    }
    send_packet(native::make_packet(std::move(*t)));
}

void native_connection::post_shutdown() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->say_goodbye(); });
}

std::string native_connection::failover_target() const {
    const auto& ha = ctx_->config.ha_policy;
    // Only a primary whose stop hands over (failover-on-shutdown) has a backup that will serve
    // next; a backup that gives way on failback, or a primary that leaves the lock "paused",
    // has nobody to name (§15).
    if (ha.kind == config::ha_kind::live_only || ha.role != config::ha_role::primary
        || !ha.failover_on_shutdown || !topology_ || ctx_->node_id.empty()) {
        return {};
    }
    auto t = topology_->current();
    if (!t) {
        return {};
    }
    for (const auto& m : t->members) {
        if (m.node_id == ctx_->node_id) {
            return m.backup;
        }
    }
    return {};
}

void native_connection::say_goodbye() {
    if (closed_ || closing_ || out_.sealed() || phase_ != phase::ready) {
        close(ending::close);
        return;
    }
    // §15: an orderly stop says so, and names the backup that takes over, so the client goes
    // there at once instead of finding out from a closed socket and the topology.
    auto redirect = failover_target();
    native::codec_limits limits;
    limits.max_packet_bytes = client_max_packet_bytes_;
    std::string out;
    // Scale-down (docs/ha.md): the notice first, and the target is where the client goes.
    if (auto to = ctx_->ha ? ctx_->ha->scale_down_native() : std::string{}; !to.empty()) {
        native::encode(native::make_packet(native::scale_down{to, "the server is scaling down"}),
                       native::peer::server, limits, out);
        redirect = to;
    }
    ctx_->wire_log->debug("native_disconnect conn={} code=server_stopping redirect=\"{}\"", id_,
                          redirect);
    native::encode(native::make_packet(native::disconnect{error_code::server_stopping,
                                                          "the server is stopping", redirect}),
                   native::peer::server, limits, out);
    seal(std::move(out));
    // The sessions close at once, as after the client's own disconnect: this server no longer
    // serves them, so none is kept for a reattach.
    close_after_write(ending::close);
}

void native_connection::post_drop() {
    asio::post(socket_.get_executor(),
               [self = shared_from_this()] { self->close(ending::detach); });
}

// -- reading --------------------------------------------------------------------------------

void native_connection::do_read() {
    if (reading_ || closed_) {
        return;
    }
    reading_ = true;
    read_when_readable(
        socket_, [self = shared_from_this()](const boost::system::error_code& ec, const char* data,
                                             size_t n) { self->on_read(ec, data, n); });
}

void native_connection::on_read(const boost::system::error_code& ec, const char* data, size_t n) {
    reading_ = false;
    if (closed_) {
        return;
    }
    if (ec) {
        // The socket failed or the client closed it without disconnect: sessions with a
        // confirmation window are kept for reattach (§14).
        close(closing_ ? ending_ : ending::detach);
        return;
    }
    last_read_ = std::chrono::steady_clock::now();
    if (closing_) {
        do_read(); // Discard what a client sends after our last packet until it closes.
        return;
    }
    decoder_.feed(data, n);
    if (!take_packets()) {
        return;
    }
    maybe_resume_reading();
}

uint64_t native_connection::unconfirmed_total() const {
    int64_t total = 0;
    for (const auto& [ch, e] : channels_) {
        total += std::max<int64_t>(0, e.unconfirmed->load());
    }
    return static_cast<uint64_t>(total);
}

void native_connection::maybe_resume_reading() {
    if (reading_ || closing_ || closed_) {
        return;
    }
    if (unconfirmed_total() < acceptor_->read_window_bytes) {
        window_paused_.store(false);
        do_read();
        return;
    }
    // Paused for the window: from now on a session's confirm posts here. Looked at once more
    // after saying so, for a confirm that came just before.
    window_paused_.store(true);
    if (unconfirmed_total() < acceptor_->read_window_bytes) {
        window_paused_.store(false);
        do_read();
    }
}

/// Decodes every complete packet; returns false when the connection is ending.
bool native_connection::take_packets() {
    std::map<uint32_t, std::vector<native_inbound>> batches;
    bool ok = true;
    bool leaving = false;
    for (;;) {
        size_t before = decoder_.buffered();
        native::packet p;
        auto st = decoder_.next(p);
        if (st == native::decode_status::need_more) {
            break;
        }
        if (st == native::decode_status::error) {
            const auto& f = decoder_.failure();
            ctx_->wire_log->info("packet_rejected conn={} reason=\"{}\"", id_, f.describe());
            // §15: every refusal is malformed_packet, except a hello without our version.
            fail(f.code == native::codec_error::unknown_version ? error_code::unsupported_version
                                                                : error_code::malformed_packet,
                 f.describe());
            return false;
        }
        auto bytes = static_cast<uint32_t>(before - decoder_.buffered());
        if (ctx_->wire_log->should_log(spdlog::level::trace)) {
            // Checked here: the call with its arguments cost 1.5 % of the node in scenario A
            // even with the level above trace.
            ctx_->wire_log->trace("packet conn={} type={} channel={} sequence={} bytes={}", id_,
                                  native::to_string(p.type()), p.channel, p.sequence, bytes);
        }
        if (p.channel == 0
            && (p.type() == native::packet_type::disconnect
                || p.type() == native::packet_type::error)) {
            // The client is leaving; the session packets it sent before (in this read, too)
            // go to their sessions first, so that its last sends and acks are not lost.
            leaving = true;
            break;
        }
        ok = p.channel == 0 ? on_connection_packet(p) : on_session_packet(p, bytes, batches);
        if (!ok || closing_ || closed_) {
            break;
        }
    }
    if (closed_) {
        return false;
    }
    for (auto& [ch, batch] : batches) {
        auto it = channels_.find(ch);
        if (it == channels_.end()) {
            continue;
        }
        int64_t handed = 0;
        for (const auto& in : batch) {
            handed += in.bytes;
        }
        it->second.unconfirmed->fetch_add(handed);
        caf::anon_send(it->second.session, npackets_atom::value, id_, std::move(batch));
    }
    if (leaving) {
        // Its sessions close at once, none is kept (§14, §15); `closed` reaches each session
        // after the batch above (one sender, one mailbox, in order).
        close(ending::close);
        return false;
    }
    return ok && !closing_;
}

bool native_connection::on_connection_packet(native::packet& p) {
    using native::packet_type;
    auto t = p.type();
    if (phase_ == phase::hello && t != packet_type::hello) {
        fail(error_code::unexpected_packet,
             "the first packet must be hello, not " + std::string{native::to_string(t)});
        return false;
    }
    switch (t) {
        case packet_type::hello:
            if (phase_ != phase::hello) {
                fail(error_code::unexpected_packet, "a second hello");
                return false;
            }
            return on_hello(std::get<native::hello>(p.body));
        case packet_type::authenticate:
            if (phase_ != phase::authenticate) {
                fail(error_code::unexpected_packet, "a second authenticate");
                return false;
            }
            return on_authenticate(std::get<native::authenticate>(p.body));
        case packet_type::ping:
            send_packet(native::make_packet(native::pong{std::get<native::ping>(p.body).nonce}));
            return true;
        case packet_type::pong:
            return true;
        case packet_type::error:
        case packet_type::disconnect:
            // The client is leaving: its sessions close at once, none is kept (§14, §15).
            close(ending::close);
            return false;
        default:
            fail(error_code::unexpected_packet,
                 std::string{native::to_string(t)} + " on channel 0");
            return false;
    }
}

bool native_connection::on_hello(native::hello& h) {
    // The decoder refused a reversed range, a wrong magic and a range without a version this
    // server speaks.
    client_max_packet_bytes_ = h.max_packet_bytes;
    phase_ = phase::authenticate;
    native::hello_ok ok;
    // §2: the highest version both speak; the client's next packets have its bodies (a
    // version 1 client's create_consumer has no pre_acknowledge).
    const uint16_t version = std::min(h.version_max, native::protocol_version);
    ok.version = version;
    decoder_.set_version(version);
    ok.max_packet_bytes = acceptor_->max_packet_bytes;
    ok.server_name = ctx_->config.name;
    ok.node_id = ctx_->node_id;
    send_packet(native::make_packet(std::move(ok)));
    ctx_->wire_log->debug("native_hello conn={} client=\"{}\" version={} max_packet_bytes={}", id_,
                          h.client_name, version, h.max_packet_bytes);
    return true;
}

bool native_connection::on_authenticate(native::authenticate& a) {
    if (auto why = check_login(a, ctx_->config.security); !why.empty()) {
        ctx_->wire_log->info("connect_refused conn={} user={} reason=\"{}\"", id_, a.user, why);
        fail(error_code::authentication_failed, why);
        return false;
    }
    if (!ctx_->lets_clients_in()) {
        ctx_->wire_log->info("connect_refused conn={} reason=\"quorum check\"", id_);
        fail(error_code::server_stopping,
             "this server lost its backup and is checking its quorum; try its backup");
        return false;
    }
    user_ = a.user.empty() ? ctx_->config.security.anonymous_user : a.user;
    if (acceptor_->connection_ttl_override > 0) {
        ttl_ms_ = static_cast<uint32_t>(acceptor_->connection_ttl_override);
    } else {
        ttl_ms_ = a.connection_ttl_ms != 0 ? a.connection_ttl_ms : acceptor_->connection_ttl;
    }
    phase_ = phase::ready;
    auth_timer_.cancel();
    ctx_->sessions->fetch_add(1, std::memory_order_relaxed);
    send_packet(native::make_packet(native::authenticated{id_, ttl_ms_}));
    // §12: the topology right after authenticated; the acceptor pushes every later change.
    send_topology(topology_ ? topology_->current() : std::nullopt);
    arm_ttl_check();
    ctx_->wire_log->debug("native_authenticated conn={} user={} ttl_ms={}", id_, user_, ttl_ms_);
    return true;
}

native_link native_connection::link_for(uint32_t channel) {
    auto it = channels_.find(channel);
    return native_link{shared_from_this(), id_, channel, client_max_packet_bytes_,
                       it != channels_.end() ? it->second.unconfirmed : nullptr};
}

bool native_connection::on_session_packet(
    native::packet& p, uint32_t bytes, std::map<uint32_t, std::vector<native_inbound>>& batches) {
    using native::packet_type;
    if (phase_ != phase::ready) {
        fail(error_code::not_authenticated,
             std::string{native::to_string(p.type())} + " before authenticated");
        return false;
    }
    if (p.type() == packet_type::reattach_session) {
        on_reattach(p.channel, std::get<native::reattach_session>(p.body));
        return !closing_;
    }
    if (channels_.count(p.channel) != 0) {
        auto& batch = batches[p.channel];
        if (batch.empty()) {
            // Sized by what the read still holds (a large read carries tens of sends): fewer
            // regrowths, each of which moves every packet so far.
            batch.reserve(std::min<size_t>(32, 1 + decoder_.buffered() / 256));
        }
        batch.push_back(native_inbound{std::move(p), bytes});
        return true;
    }
    if (p.type() == packet_type::create_session) {
        return on_create_session(p, bytes, batches);
    }
    if (p.sequence == 0) {
        return true; // A late packets_confirmed for a session that ended.
    }
    // §4: a stream packet on a channel without a session. The channel has no stream of ours
    // yet, so the answer is its first packet.
    send_packet(
        native::make_packet(p.channel, 1,
                            native::fail{p.sequence, error_code::no_such_session,
                                         "no session on channel " + std::to_string(p.channel)}));
    return true;
}

bool native_connection::on_create_session(
    native::packet& p, uint32_t bytes, std::map<uint32_t, std::vector<native_inbound>>& batches) {
    const auto max = acceptor_->max_sessions_per_connection;
    if (channels_.size() >= max) {
        ctx_->wire_log->info("session_limit conn={} key=max-sessions-per-connection value={}", id_,
                             max);
        send_packet(
            native::make_packet(p.channel, 1,
                                native::fail{p.sequence, error_code::limit_reached,
                                             limit_message("max-sessions-per-connection", max)}));
        return true;
    }
    native_session_params params;
    params.id = ctx_->next_session_id.fetch_add(1, std::memory_order_relaxed);
    params.user = user_;
    params.ttl_ms = ttl_ms_;
    params.limits = native_limits_of(*acceptor_);
    auto unconfirmed = std::make_shared<std::atomic<int64_t>>(0);
    channels_.emplace(p.channel, channel_entry{native_session_actor{}, unconfirmed});
    auto s = sys_.spawn(native_session, ctx_, server_, registry_, link_for(p.channel),
                        std::move(params));
    channels_[p.channel].session = s;
    batches[p.channel].push_back(native_inbound{std::move(p), bytes});
    return true;
}

void native_connection::on_reattach(uint32_t channel, native::reattach_session& r) {
    if (channels_.count(channel) != 0) {
        fail(error_code::unexpected_packet,
             "reattach_session on channel " + std::to_string(channel) + ", which is in use");
        return;
    }
    auto found = registry_->find(r.name);
    if (!found || channels_.size() >= acceptor_->max_sessions_per_connection) {
        ctx_->wire_log->debug("reattach_not_found conn={} session=\"{}\"", id_, r.name);
        send_packet(native::make_packet(channel, 0, native::session_reattached{false, 0}));
        return;
    }
    channels_.emplace(channel,
                      channel_entry{found->session, std::make_shared<std::atomic<int64_t>>(0)});
    caf::anon_send(found->session, attach_atom::value, link_for(channel), user_, r.last_received);
}

// -- writing --------------------------------------------------------------------------------

void native_connection::send_packet(const native::packet& p) {
    native::codec_limits limits;
    limits.max_packet_bytes = client_max_packet_bytes_;
    std::string out;
    auto f = native::encode(p, native::peer::server, limits, out);
    if (f.code != native::codec_error::none) {
        // Only texts the server wrote itself can be too long; the client gets less, not
        // nothing.
        ctx_->wire_log->warn("encode_failed conn={} reason=\"{}\"", id_, f.describe());
        return;
    }
    write(std::move(out));
}

void native_connection::write(std::string bytes) {
    if (closed_ || out_.sealed() || bytes.empty()) {
        return;
    }
    const uint64_t max = acceptor_->max_pending_output_bytes;
    if (pending_output() + bytes.size() > max) {
        // The client does not take its packets (style rule 15): drop the queued ones and end
        // with error.
        ctx_->wire_log->info("output_limit conn={} pending={} adding={} max={}", id_,
                             pending_output(), bytes.size(), max);
        out_.drop_waiting();
        fail(error_code::limit_reached, limit_message("max-pending-output-bytes", max));
        return;
    }
    appended_total_ += bytes.size();
    out_.append(std::move(bytes));
    if (!writing_ && !write_posted_) {
        // Written once the handlers already queued on this thread have run: the outputs that
        // sessions posted meanwhile (deliveries, credit, answers) go out in one send, not one
        // each. A post from this thread wakes nobody.
        write_posted_ = true;
        asio::post(socket_.get_executor(), [self = shared_from_this()] {
            self->write_posted_ = false;
            if (!self->writing_ && !self->closed_ && self->out_.has_waiting()) {
                self->do_write();
            }
        });
    }
}

void native_connection::seal(std::string last) {
    if (closed_ || !out_.seal(last)) {
        return;
    }
    if (!writing_ && out_.has_waiting()) {
        do_write();
    }
}

uint64_t native_connection::pending_output() const {
    return out_.pending();
}

void native_connection::do_write() {
    writing_ = true;
    auto piece = out_.next();
    arm_write_timer();
    socket_.async_write_some(asio::buffer(piece.data(), piece.size()),
                             [self = shared_from_this()](const boost::system::error_code& ec,
                                                         size_t n) { self->on_write(ec, n); });
}

void native_connection::on_write(const boost::system::error_code& ec, size_t n) {
    writing_ = false;
    if (ec || closed_) {
        close(closing_ ? ending_ : ending::detach);
        return;
    }
    written_total_ += n;
    if (!written_marks_.empty()) {
        report_written();
    }
    if (!out_.advance(n)) {
        do_write();
        return;
    }
    if (out_.has_waiting()) {
        do_write();
        return;
    }
    ++write_generation_;
    write_timer_.cancel();
    if (closing_) {
        close_after_write(ending_);
    }
}

void native_connection::report_written() {
    while (!written_marks_.empty() && written_marks_.front().end <= written_total_) {
        auto m = std::move(written_marks_.front());
        written_marks_.pop_front();
        // A later mark of the same session stands for this one: one message, not one per mark.
        bool later = !written_marks_.empty() && written_marks_.front().end <= written_total_
                     && written_marks_.front().who == m.who;
        if (!later) {
            caf::anon_send(m.who, written_atom::value, m.mark);
        }
    }
}

void native_connection::arm_write_timer() {
    auto generation = ++write_generation_;
    write_timer_.expires_after(std::chrono::milliseconds(acceptor_->write_timeout_ms));
    write_timer_.async_wait(
        [self = shared_from_this(), generation](const boost::system::error_code& ec) {
            if (ec || generation != self->write_generation_ || !self->writing_ || self->closed_) {
                return;
            }
            self->ctx_->wire_log->info("write_timeout conn={} pending={} timeout_ms={}", self->id_,
                                       self->pending_output(), self->acceptor_->write_timeout_ms);
            self->close(ending::detach);
        });
}

// -- ending ---------------------------------------------------------------------------------

void native_connection::fail(error_code code, const std::string& message) {
    if (closed_ || out_.sealed()) {
        return;
    }
    ctx_->wire_log->info("native_error conn={} code={} message=\"{}\"", id_,
                         native::to_string(code), message);
    native::codec_limits limits;
    limits.max_packet_bytes = client_max_packet_bytes_;
    std::string out;
    native::error e{code, message.substr(0, limits.max_string_bytes)};
    native::encode(native::make_packet(std::move(e)), native::peer::server, limits, out);
    seal(std::move(out));
    // §15: error is fatal; the sessions close, none is kept for reattach.
    close_after_write(ending::close);
}

void native_connection::close_after_write(ending how) {
    if (closed_ || lingering_) {
        return;
    }
    if (!closing_) {
        ending_ = how;
        // Stop the sessions now: nothing they write after this reaches the client.
        for (auto& [ch, e] : channels_) {
            if (how == ending::detach) {
                caf::anon_send(e.session, detach_atom::value, id_);
            } else {
                caf::anon_send(e.session, closed_atom::value, id_);
            }
        }
        channels_.clear();
    }
    closing_ = true;
    if (writing_ || out_.has_waiting()) {
        return; // on_write calls back here when the output is empty.
    }
    lingering_ = true;
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    auth_timer_.expires_after(linger_after_error);
    auth_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) {
            self->close(self->ending_);
        }
    });
    do_read();
}

void native_connection::close(ending how) {
    if (closed_) {
        return;
    }
    closed_ = true;
    boost::system::error_code ignored;
    auth_timer_.cancel();
    ttl_timer_.cancel();
    write_timer_.cancel();
    socket_.close(ignored);
    for (auto& [ch, e] : channels_) {
        if (how == ending::detach) {
            caf::anon_send(e.session, detach_atom::value, id_);
        } else {
            caf::anon_send(e.session, closed_atom::value, id_);
        }
    }
    channels_.clear();
    if (phase_ == phase::ready) {
        ctx_->sessions->fetch_sub(1, std::memory_order_relaxed);
    }
    ctx_->wire_log->debug("native_closed conn={} how={}", id_,
                          how == ending::detach ? "detach" : "close");
    if (on_close_) {
        on_close_(id_);
    }
}

void native_connection::arm_ttl_check() {
    auto due = last_read_ + std::chrono::milliseconds(ttl_ms_);
    ttl_timer_.expires_at(due);
    ttl_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) {
            self->on_ttl_check();
        }
    });
}

void native_connection::on_ttl_check() {
    if (closed_ || closing_) {
        return;
    }
    auto now = std::chrono::steady_clock::now();
    // A connection that stopped reading for back-pressure did not listen; that is not the
    // client's silence.
    if (!reading_) {
        last_read_ = now;
    }
    if (now - last_read_ < std::chrono::milliseconds(ttl_ms_)) {
        arm_ttl_check();
        return;
    }
    ctx_->wire_log->info("connection_ttl_expired conn={} ttl_ms={}", id_, ttl_ms_);
    native::codec_limits limits;
    limits.max_packet_bytes = client_max_packet_bytes_;
    std::string out;
    native::encode(native::make_packet(native::disconnect{
                       error_code::connection_ttl_expired,
                       "no packet within " + std::to_string(ttl_ms_) + " ms", ""}),
                   native::peer::server, limits, out);
    seal(std::move(out));
    close_after_write(ending::detach);
}

} // namespace actormq
