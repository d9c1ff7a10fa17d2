// SPDX-License-Identifier: Apache-2.0
#include "failover_machine.hpp"

#include <utility>

namespace actormq::client::detail {

// -- confirmation_window -------------------------------------------------------------------------

bool confirmation_window::has_room(size_t bytes) const {
    return !enabled() || kept_.empty() || kept_bytes_ + bytes <= size_t(size_);
}

void confirmation_window::keep(uint64_t sequence, std::string bytes) {
    if (!enabled()) {
        return;
    }
    kept_bytes_ += bytes.size();
    kept_.push_back(kept{sequence, std::move(bytes)});
}

void confirmation_window::confirmed(uint64_t last) {
    while (!kept_.empty() && kept_.front().sequence <= last) {
        kept_bytes_ -= kept_.front().bytes.size();
        kept_.pop_front();
    }
}

std::vector<std::string> confirmation_window::replay_after(uint64_t last) {
    confirmed(last);
    std::vector<std::string> out;
    for (auto& k : kept_) {
        out.push_back(k.bytes);
    }
    return out;
}

bool confirmation_window::received(uint64_t sequence, size_t bytes) {
    if (sequence <= last_received_) {
        return false; // a replay of what arrived before the reattach
    }
    last_received_ = sequence;
    unconfirmed_bytes_ += bytes;
    return true;
}

std::optional<uint64_t> confirmation_window::confirm_to_send() {
    if (!enabled() || unconfirmed_bytes_ < size_t(size_) / 2 || unconfirmed_bytes_ == 0) {
        return std::nullopt;
    }
    unconfirmed_bytes_ = 0;
    return last_received_;
}

void confirmation_window::reset() {
    kept_.clear();
    kept_bytes_ = 0;
    last_received_ = 0;
    unconfirmed_bytes_ = 0;
}

// -- recreation ----------------------------------------------------------------------------------

std::vector<native::packet_body> recreation_packets(const session_record& s) {
    std::vector<native::packet_body> out;
    native::create_session cs;
    cs.name = s.name;
    cs.transacted = s.transacted;
    cs.xa = s.xa;
    out.emplace_back(cs);
    for (auto& q : s.volatile_queues) {
        out.emplace_back(q);
    }
    for (auto& [id, p] : s.producers) {
        out.emplace_back(native::create_producer{id, p.address, p.window_bytes});
    }
    for (auto& [id, c] : s.consumers) {
        out.emplace_back(native::create_consumer{id, c.queue, c.filter, c.window_bytes,
                                                 c.browse_only, c.pre_acknowledge});
    }
    for (auto& [key, b] : s.xa_branches) {
        out.emplace_back(native::xa_start{b.id, native::xa_start_flag::none});
        if (key != s.xa_bound) {
            auto flag = b.suspended ? native::xa_end_flag::suspend
                        : b.doomed  ? native::xa_end_flag::fail
                                    : native::xa_end_flag::success;
            out.emplace_back(native::xa_end{b.id, flag});
        }
    }
    if (s.started) {
        out.emplace_back(native::start{});
    }
    return out;
}

std::string xa_key(const native::xid& x) {
    std::string out = std::to_string(x.format_id);
    out += ':' + std::to_string(x.gtrid.size()) + ':' + x.gtrid;
    out += ':' + std::to_string(x.bqual.size()) + ':' + x.bqual;
    return out;
}

// -- failover_machine ----------------------------------------------------------------------------

const char* to_string(link_state s) {
    switch (s) {
        case link_state::connecting:
            return "connecting";
        case link_state::connected:
            return "connected";
        case link_state::reattaching:
            return "reattaching";
        case link_state::failing_over:
            return "failing_over";
        case link_state::closed:
            return "closed";
    }
    return "unknown";
}

failover_machine::failover_machine(connection_options options) : options_(std::move(options)) {
    if (!options_.servers.empty()) {
        current_ = options_.servers.front();
    }
}

std::vector<action> failover_machine::start(int64_t now_ms) {
    return {act_connect{current_, now_ms}};
}

std::vector<action> failover_machine::handle(const event& e) {
    if (state_ == link_state::closed) {
        return {}; // nothing revives a closed connection
    }
    if (auto* c = std::get_if<ev_connected>(&e)) {
        return on_connected(*c);
    }
    if (auto* f = std::get_if<ev_connect_failed>(&e)) {
        return on_connect_failed(*f);
    }
    if (auto* t = std::get_if<ev_topology>(&e)) {
        if (t->version > topology_version_ || topology_version_ == 0) {
            topology_version_ = t->version;
            topology_ = t->members;
        }
        return {};
    }
    if (auto* p = std::get_if<ev_packet>(&e)) {
        last_packet_ms_ = p->now_ms;
        return {};
    }
    if (auto* t = std::get_if<ev_tick>(&e)) {
        return on_tick(t->now_ms);
    }
    if (auto* s = std::get_if<ev_socket_closed>(&e)) {
        if (state_ != link_state::connected && !awaiting_sessions_) {
            return {}; // a connect attempt in progress reports itself with ev_connect_failed
        }
        if (state_ != link_state::connected) {
            return on_connect_failed(ev_connect_failed{s->reason, s->now_ms});
        }
        return on_failure(s->reason, "", s->now_ms);
    }
    if (auto* d = std::get_if<ev_server_disconnect>(&e)) {
        if (state_ != link_state::connected) {
            return on_connect_failed(ev_connect_failed{d->reason, d->now_ms});
        }
        return on_failure(d->reason, d->redirect, d->now_ms);
    }
    if (auto* r = std::get_if<ev_reattached>(&e)) {
        if (state_ != link_state::reattaching || !awaiting_sessions_) {
            return {};
        }
        if (!r->all_found) {
            // The server lost a session (TTL, restart): it is recreated as after a failover,
            // so the calls that waited on it cannot be answered.
            std::vector<action> out;
            unblock(out);
            state_ = link_state::failing_over;
            out.emplace_back(act_recreate_sessions{});
            return out;
        }
        awaiting_sessions_ = false;
        state_ = link_state::connected;
        last_packet_ms_ = last_ping_ms_ = r->now_ms;
        return {act_notify{failure_event::failover, "reattached to " + current_.to_string()}};
    }
    if (auto* r = std::get_if<ev_recreated>(&e)) {
        if (state_ != link_state::failing_over || !awaiting_sessions_) {
            return {};
        }
        if (!r->ok) {
            return on_connect_failed(ev_connect_failed{"recreating sessions failed", r->now_ms});
        }
        awaiting_sessions_ = false;
        state_ = link_state::connected;
        last_packet_ms_ = last_ping_ms_ = r->now_ms;
        return {act_notify{failure_event::failover, "failed over to " + current_.to_string()}};
    }
    // ev_close
    state_ = link_state::closed;
    return {act_drop_socket{}};
}

std::vector<action> failover_machine::on_connected(const ev_connected& e) {
    last_packet_ms_ = last_ping_ms_ = e.now_ms;
    switch (state_) {
        case link_state::connecting:
            state_ = link_state::connected;
            ever_connected_ = true;
            node_id_ = e.node_id;
            attempts_ = 0;
            return {};
        case link_state::reattaching:
            awaiting_sessions_ = true;
            if (!node_id_.empty() && e.node_id != node_id_) {
                // Another broker answers at this address: nothing to reattach to.
                node_id_ = e.node_id;
                return handle(ev_reattached{false, e.now_ms});
            }
            return {act_reattach_sessions{}};
        case link_state::failing_over:
            awaiting_sessions_ = true;
            node_id_ = e.node_id;
            return {act_recreate_sessions{}};
        default:
            return {};
    }
}

bool failover_machine::reconnects_exhausted() const {
    return options_.reconnect_attempts != -1 && attempts_ >= uint32_t(options_.reconnect_attempts);
}

std::vector<action> failover_machine::on_connect_failed(const ev_connect_failed& e) {
    ++attempts_;
    awaiting_sessions_ = false;
    std::vector<action> out{act_drop_socket{}};
    if (state_ == link_state::connecting) {
        auto max = options_.initial_connect_attempts;
        if (max != -1 && attempts_ >= uint32_t(max < 1 ? 1 : max)) {
            return give_up(std::move(out), error_kind::connection_failed,
                           "could not connect after " + std::to_string(attempts_)
                               + " attempt(s): " + e.reason);
        }
        // The first connection only tries the URL's servers: the topology is not known yet.
        current_ = options_.servers[attempts_ % options_.servers.size()];
        out.emplace_back(act_connect{current_, e.now_ms + options_.retry_delay_ms(attempts_)});
        return out;
    }
    if (reconnects_exhausted()) {
        return give_up(std::move(out), error_kind::disconnected,
                       "gave up after " + std::to_string(attempts_)
                           + " reconnect attempt(s): " + e.reason);
    }
    if (state_ == link_state::reattaching && !(options_.ha && backup())) {
        out.emplace_back(act_connect{current_, e.now_ms + options_.retry_delay_ms(attempts_)});
        return out;
    }
    // The same server is unreachable and a backup is known: fail over to it at once (the
    // first try of a new target does not wait); later tries alternate and wait.
    bool first_failover = state_ == link_state::reattaching;
    if (first_failover) {
        candidate_ = 0;
    } else {
        ++candidate_;
    }
    return fail_over(std::move(out),
                     e.now_ms + (first_failover ? 0 : options_.retry_delay_ms(attempts_)));
}

std::vector<action> failover_machine::on_failure(const std::string& reason,
                                                 const std::string& redirect,
                                                 int64_t now_ms) {
    std::vector<action> out{act_drop_socket{}, act_notify{failure_event::failure_detected, reason}};
    attempts_ = 0;
    if (options_.reconnect_attempts == 0) {
        return give_up(std::move(out), error_kind::disconnected,
                       "connection failed and reconnectAttempts is 0: " + reason);
    }
    redirect_.reset();
    if (!redirect.empty()) {
        try {
            redirect_ = server_address::parse(redirect, "redirect");
        } catch (const url_error&) {
            // A redirect we cannot read is as if none was given.
        }
    }
    if (options_.confirmation_window_size > 0 && !redirect_) {
        state_ = link_state::reattaching;
        out.emplace_back(act_connect{current_, now_ms});
        return out;
    }
    candidate_ = 0;
    return fail_over(std::move(out), now_ms);
}

std::vector<action> failover_machine::fail_over(std::vector<action> out, int64_t at_ms) {
    if (state_ != link_state::failing_over) {
        unblock(out);
        state_ = link_state::failing_over;
    }
    auto candidates = failover_candidates();
    current_ = candidates[candidate_ % candidates.size()];
    out.emplace_back(act_connect{current_, at_ms});
    return out;
}

std::vector<server_address> failover_machine::failover_candidates() const {
    std::vector<server_address> out;
    auto add = [&out](const server_address& a) {
        for (auto& o : out) {
            if (o == a) {
                return;
            }
        }
        out.push_back(a);
    };
    if (redirect_) {
        add(*redirect_);
    }
    if (options_.ha) {
        if (auto b = backup()) {
            add(*b);
        }
    }
    add(current_);
    if (options_.ha) {
        // The live may come back; other URL servers may be reachable.
        for (auto& m : topology_) {
            if (m.node_id == node_id_ && !m.live.empty()) {
                try {
                    add(server_address::parse(m.live, "topology"));
                } catch (const url_error&) {
                }
            }
        }
        for (auto& s : options_.servers) {
            add(s);
        }
    }
    return out;
}

std::optional<server_address> failover_machine::backup() const {
    for (auto& m : topology_) {
        if (m.node_id == node_id_ && !m.backup.empty()) {
            try {
                return server_address::parse(m.backup, "topology");
            } catch (const url_error&) {
                return std::nullopt;
            }
        }
    }
    return std::nullopt;
}

std::vector<action> failover_machine::on_tick(int64_t now_ms) {
    auto period = options_.client_failure_check_period_ms;
    if (state_ != link_state::connected || period <= 0) {
        return {};
    }
    if (now_ms - last_packet_ms_ >= period) {
        return on_failure("no packet for " + std::to_string(now_ms - last_packet_ms_)
                              + " ms (clientFailureCheckPeriod " + std::to_string(period) + ")",
                          "", now_ms);
    }
    if (now_ms - last_ping_ms_ >= period / 2) {
        last_ping_ms_ = now_ms;
        return {act_send_ping{}};
    }
    return {};
}

void failover_machine::unblock(std::vector<action>& out) {
    for (auto& [channel, s] : sessions) {
        if (s.transaction_has_work) {
            s.rollback_only = true;
        }
        for (auto& [key, b] : s.xa_branches) {
            b.doomed = b.doomed || b.has_work;
        }
    }
    out.emplace_back(act_unblock{});
}

std::vector<action>
failover_machine::give_up(std::vector<action> out, error_kind kind, std::string reason) {
    bool had_sessions = state_ != link_state::connecting;
    state_ = link_state::closed;
    if (had_sessions) {
        out.emplace_back(act_notify{failure_event::disconnect, reason});
    }
    out.emplace_back(act_give_up{kind, std::move(reason)});
    return out;
}

} // namespace actormq::client::detail
