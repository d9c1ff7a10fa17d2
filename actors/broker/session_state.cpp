// SPDX-License-Identifier: Apache-2.0
// The pure parts of a session: destination names, messages, acks and frame formatting.
#include "actors/broker/send_lane.hpp"
#include "actors/broker/session.hpp"
#include "protocol/stomp_codec.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

namespace actormq {

namespace {

bool starts_with(std::string_view s, std::string_view p) {
    return s.substr(0, p.size()) == p;
}

/// Headers the broker sets itself; a producer's copies are not passed on.
bool reserved_header(const std::string& name) {
    static const char* const names[] = {
        "destination",  "transaction", "receipt",     "content-length", "message-id",
        "subscription", "ack",         "redelivered", "delivery-count"};
    return std::any_of(std::begin(names), std::end(names),
                       [&](const char* n) { return name == n; });
}

bool parse_u64(const std::string& s, uint64_t& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size() && !s.empty();
}

/// The prefix given to temporary destinations so their names cannot collide across sessions.
std::string temp_address(uint64_t session_id, std::string_view name) {
    return "temp." + std::to_string(session_id) + "." + std::string{name};
}

} // namespace

session_limits limits_of_session(const config::acceptor_config& a) {
    session_limits l;
    l.read_window_bytes = a.read_window_bytes;
    l.max_transactions_per_session = a.max_transactions_per_session;
    l.max_messages_per_transaction = a.max_messages_per_transaction;
    l.max_bytes_per_transaction = a.max_bytes_per_transaction;
    l.max_subscriptions_per_session = a.max_subscriptions_per_session;
    l.max_prefetch_count = a.max_prefetch_count;
    return l;
}

std::string lane_address_of(const std::string& d) {
    std::string_view name = d;
    if (starts_with(d, "/queue/")) {
        name.remove_prefix(7);
    } else if (!d.empty() && d.front() == '/') {
        return {};
    }
    if (name.empty() || starts_with(name, "temp.")) {
        return {};
    }
    return std::string{name};
}

std::optional<destination_ref> session_state::resolve(const std::string& d,
                                                      std::string& error) const {
    return resolve_destination(params.id, d, error);
}

std::optional<destination_ref>
resolve_destination(uint64_t session_id, const std::string& d, std::string& error) {
    destination_ref r;
    auto take = [&](std::string_view prefix) {
        return std::string_view{d}.substr(prefix.size());
    };
    std::string_view name;
    if (starts_with(d, "/queue/")) {
        name = take("/queue/");
        r.create = !starts_with(name, "temp.");
    } else if (starts_with(d, "/topic/")) {
        name = take("/topic/");
        r.routing = routing_type::multicast;
        r.create = !starts_with(name, "temp.");
    } else if (starts_with(d, "/temp-queue/") || starts_with(d, "/temp-topic/")) {
        bool topic = starts_with(d, "/temp-topic/");
        name = take(topic ? "/temp-topic/" : "/temp-queue/");
        if (name.empty()) {
            error = "empty destination name in '" + d + "'";
            return std::nullopt;
        }
        r.routing = topic ? routing_type::multicast : routing_type::anycast;
        r.address = temp_address(session_id, name);
        r.temporary = true;
        return r;
    } else if (!d.empty() && d.front() == '/') {
        error = "unknown destination prefix in '" + d
                + "'; use /queue/, /topic/, /temp-queue/ or /temp-topic/";
        return std::nullopt;
    } else {
        name = d;
    }
    if (name.empty()) {
        error = "empty destination name in '" + d + "'";
        return std::nullopt;
    }
    r.address = std::string{name};
    return r;
}

message_ptr session_state::make_message(stomp::frame& f, const destination_ref& d) {
    return make_broker_message(*ctx, params.id, f, d);
}

message_ptr make_broker_message(server_context& ctx,
                                uint64_t session_id,
                                stomp::frame& f,
                                const destination_ref& d) {
    auto m = std::make_shared<broker_message>();
    m->id = ctx.next_message_id.fetch_add(1, std::memory_order_relaxed);
    m->address = d.address;
    m->destination = *f.find("destination");
    m->body = std::move(f.body);
    m->headers.reserve(f.headers.size());
    for (auto& h : f.headers) {
        if (reserved_header(h.first)) {
            continue;
        }
        if (h.first == "persistent") {
            m->persistent = h.second == "true";
        }
        if (h.first == "reply-to" && starts_with(h.second, "/temp-")) {
            // Other sessions reach this session's temporary queue under its unique name.
            std::string err;
            if (auto r = resolve_destination(session_id, h.second, err)) {
                bool topic = r->routing == routing_type::multicast;
                h.second = std::string{topic ? "/topic/" : "/queue/"} + r->address;
            }
        }
        m->headers.push_back(std::move(h));
    }
    return m;
}

session_state::subscription* session_state::find_sub(const std::string& id) {
    for (auto& [k, s] : subs) {
        if (s.id == id) {
            return &s;
        }
    }
    return nullptr;
}

bool session_state::find_ack(const stomp::frame& f,
                             uint64_t& key,
                             uint64_t& ack_id,
                             std::string& error) const {
    if (params.version == stomp::version::v1_2) {
        const auto* id = f.find("id");
        if (id == nullptr) {
            error = "missing required header 'id'";
            return false;
        }
        auto it = parse_u64(*id, ack_id) ? ack_index.find(ack_id) : ack_index.end();
        if (it != ack_index.end()) {
            key = it->second;
            return true;
        }
        // A delivery registered for the ACK lane (ack_lane.hpp) the lane has not taken.
        if (params.acks && parse_u64(*id, ack_id)) {
            if (auto k = params.acks->key_of(ack_id)) {
                key = *k;
                return true;
            }
        }
        error = "no unacknowledged message with ack id '" + *id + "'";
        return false;
    }
    const auto* mid = f.find("message-id");
    const auto* sub = f.find("subscription");
    if (mid == nullptr || (params.version == stomp::version::v1_1 && sub == nullptr)) {
        error = mid == nullptr ? "missing required header 'message-id'"
                               : "missing required header 'subscription'";
        return false;
    }
    uint64_t msg_id = 0;
    if (!parse_u64(*mid, msg_id)) {
        error = "no unacknowledged message with message-id '" + *mid + "'";
        return false;
    }
    for (const auto& [k, s] : subs) {
        if (sub != nullptr && s.id != *sub) {
            continue;
        }
        for (const auto& u : s.unacked) {
            if (u.msg_id == msg_id) {
                key = k;
                ack_id = u.ack_id;
                return true;
            }
        }
    }
    error = "no unacknowledged message with message-id '" + *mid + "'";
    return false;
}

std::vector<uint64_t> session_state::take_acked(subscription& s, uint64_t ack_id, bool cumulative) {
    std::vector<uint64_t> ids;
    auto it = std::find_if(s.unacked.begin(), s.unacked.end(),
                           [&](const unacked_entry& u) { return u.ack_id == ack_id; });
    if (it == s.unacked.end()) {
        // Registered for the ACK lane instead: whoever takes it out first acknowledges it.
        if (!cumulative && params.acks) {
            if (auto e = params.acks->take(ack_id); e && e->key == s.key) {
                ids.push_back(e->msg_id);
            }
        }
        return ids;
    }
    auto first = cumulative ? s.unacked.begin() : it;
    for (auto i = first; i != it + 1; ++i) {
        ids.push_back(i->msg_id);
        ack_index.erase(i->ack_id);
    }
    s.unacked.erase(first, it + 1);
    return ids;
}

void session_state::append_message(const subscription& s, const delivery& d, uint64_t ack_id) {
    auto v = params.version;
    const auto& m = *d.msg;
    stomp::append_command(out, stomp::command::message);
    stomp::append_header(out, "subscription", s.id, v);
    out += "message-id:";
    out += std::to_string(m.id);
    out += '\n';
    stomp::append_header(out, "destination", m.destination, v);
    if (s.mode != ack_mode::automatic && v == stomp::version::v1_2) {
        out += "ack:";
        out += std::to_string(ack_id);
        out += '\n';
    }
    if (d.delivery_count > 0) {
        out += "redelivered:true\ndelivery-count:";
        out += std::to_string(d.delivery_count);
        out += '\n';
    }
    out += "content-length:";
    out += std::to_string(m.body.size());
    out += '\n';
    for (const auto& [k, val] : m.headers) {
        stomp::append_header(out, k, val, v);
    }
    stomp::append_body(out, m.body);
}

void session_state::append_receipt(const std::string& receipt_id) {
    stomp::append_command(out, stomp::command::receipt);
    stomp::append_header(out, "receipt-id", receipt_id, params.version);
    stomp::append_body(out, {});
}

void session_state::append_error(const std::string& message,
                                 const std::string& detail,
                                 const std::string* receipt_id) {
    stomp::frame f;
    f.cmd = stomp::command::error;
    f.add("message", message);
    if (receipt_id != nullptr) {
        f.add("receipt-id", *receipt_id);
    }
    f.add("content-type", "text/plain");
    f.add("content-length", std::to_string(detail.size()));
    f.body = detail;
    stomp::encode(f, params.version, out);
}

uint64_t session_state::low_water() const {
    return outstanding.empty() ? std::numeric_limits<uint64_t>::max() : *outstanding.begin();
}

} // namespace actormq
