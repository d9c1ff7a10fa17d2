// SPDX-License-Identifier: Apache-2.0
// The pure parts of a native session: queue names, message mapping, and the outgoing stream
// with its confirmation window (docs/protocol.md §7, §11, §14).
#include "actors/journal/recovery.hpp"
#include "actors/native/native_session.hpp"
#include "protocol/native/header.hpp"

#include <algorithm>
#include <charconv>

namespace actormq {

namespace {

bool parse_i64(const std::string& s, int64_t& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size() && !s.empty();
}

/// Headers the broker or the native message fields own; a producer's copies are not passed on.
bool reserved_header(const std::string& name) {
    static const char* const names[] = {
        "destination",  "transaction", "receipt",     "content-length",   "message-id",
        "subscription", "ack",         "redelivered", "delivery-count",   "persistent",
        "priority",     "expires",     "timestamp",   duplicate_id_header};
    return std::any_of(std::begin(names), std::end(names),
                       [&](const char* n) { return name == n; });
}

} // namespace

native_session_limits native_limits_of(const config::acceptor_config& a) {
    native_session_limits l;
    l.read_window_bytes = a.read_window_bytes;
    l.max_producers = a.max_producers_per_session;
    l.max_consumers = a.max_consumers_per_session;
    l.max_messages_per_transaction = a.max_messages_per_transaction;
    l.max_bytes_per_transaction = a.max_bytes_per_transaction;
    l.consumer_window_messages = a.default_prefetch_count;
    l.max_confirmation_window_bytes = a.max_confirmation_window_bytes;
    return l;
}

std::optional<native_queue_ref> parse_queue_name(const std::string& name) {
    native_queue_ref r;
    auto sep = name.find("::");
    if (sep == std::string::npos) {
        if (name.empty()) {
            return std::nullopt;
        }
        r.address = name;
        r.queue = anycast_queue_name(name);
        return r;
    }
    r.address = name.substr(0, sep);
    r.queue = name.substr(sep + 2);
    r.routing = routing_type::multicast;
    if (r.address.empty() || r.queue.empty()) {
        return std::nullopt;
    }
    return r;
}

routing_type routing_of(const native::message& m) {
    for (const auto& [k, v] : m.headers) {
        if (k == native_headers::routing) {
            return v == "multicast" || v == "MULTICAST" ? routing_type::multicast
                                                        : routing_type::anycast;
        }
    }
    return routing_type::anycast;
}

message_ptr to_broker_message(native::message& m,
                              const std::string& address,
                              routing_type routing,
                              uint64_t id) {
    auto b = std::make_shared<broker_message>();
    b->id = id;
    b->address = address;
    // STOMP consumers see the destination with its prefix (docs/protocol.md §7).
    // Built in place: one allocation, not a temporary and a copy.
    const std::string_view prefix = routing == routing_type::multicast ? "/topic/" : "/queue/";
    b->destination.reserve(prefix.size() + address.size());
    b->destination.append(prefix).append(address);
    b->persistent = m.durable;
    b->body = std::move(m.body);
    // Exactly what is added below, so that a send without headers allocates no vector.
    size_t extra = (m.durable ? 1 : 0) + (m.priority != 4 ? 1 : 0) + (m.expiration_ms != 0 ? 1 : 0)
                   + (m.timestamp_ms != 0 ? 1 : 0) + (m.duplicate_id.empty() ? 0 : 1);
    if (m.headers.size() + extra > 0) {
        b->headers.reserve(m.headers.size() + extra);
    }
    for (auto& h : m.headers) {
        if (!reserved_header(h.first) && h.first != native_headers::routing) {
            b->headers.push_back(std::move(h));
        }
    }
    if (m.durable) {
        b->headers.emplace_back(native_headers::persistent, "true");
    }
    if (m.priority != 4) {
        b->headers.emplace_back(native_headers::priority, std::to_string(m.priority));
    }
    if (m.expiration_ms != 0) {
        b->headers.emplace_back(native_headers::expires, std::to_string(m.expiration_ms));
    }
    if (m.timestamp_ms != 0) {
        b->headers.emplace_back(native_headers::timestamp, std::to_string(m.timestamp_ms));
    }
    if (!m.duplicate_id.empty()) {
        b->headers.emplace_back(duplicate_id_header, std::move(m.duplicate_id));
    }
    return b;
}

native::message to_native_message(const broker_message& b, bool with_body) {
    native::message m;
    m.address = b.address;
    m.durable = b.persistent;
    if (with_body) {
        m.body = b.body;
    }
    const native::codec_limits limits;
    for (const auto& [k, v] : b.headers) {
        int64_t n = 0;
        if (k == native_headers::persistent) {
            continue;
        } else if (k == native_headers::priority && parse_i64(v, n) && n >= 0
                   && n <= native::priority_max) {
            m.priority = static_cast<uint8_t>(n);
        } else if (k == native_headers::expires && parse_i64(v, n) && n >= 0) {
            m.expiration_ms = n;
        } else if (k == native_headers::timestamp && parse_i64(v, n) && n >= 0) {
            m.timestamp_ms = n;
        } else if (k == duplicate_id_header && v.size() <= limits.max_string_bytes) {
            m.duplicate_id = v;
        } else if (k.size() <= limits.max_string_bytes && v.size() <= limits.max_string_bytes
                   && m.headers.size() < limits.max_headers) {
            // A STOMP header longer than a native string (§16) cannot be carried; it is left
            // out rather than the whole message.
            m.headers.emplace_back(k, v);
        }
    }
    return m;
}

native::codec_limits native_session_state::out_limits() const {
    native::codec_limits l;
    l.max_packet_bytes = link.client_max_packet_bytes;
    return l;
}

bool native_session_state::window_has_room(size_t bytes) const {
    return window <= 0 || kept.empty() || kept_bytes + bytes <= static_cast<uint64_t>(window);
}

native::codec_failure native_session_state::emit(native::packet_body body) {
    native::packet p{link.channel, out_seq + 1, std::move(body)};
    if (window <= 0) {
        // Nothing kept for a replay: straight into the output (encode leaves it unchanged
        // when it refuses the packet).
        native::codec_failure f;
        if (attached) {
            f = native::encode(p, native::peer::server, out_limits(), out);
        } else {
            std::string dropped;
            f = native::encode(p, native::peer::server, out_limits(), dropped);
        }
        if (f.code == native::codec_error::none) {
            ++out_seq;
        }
        return f;
    }
    std::string bytes;
    auto f = native::encode(p, native::peer::server, out_limits(), bytes);
    if (f.code != native::codec_error::none) {
        return f;
    }
    ++out_seq;
    if (window > 0) {
        kept_bytes += bytes.size();
        if (attached) {
            out += bytes;
        }
        kept.emplace_back(out_seq, std::move(bytes));
    } else if (attached) {
        out += bytes;
    }
    return f;
}

void native_session_state::emit_control(native::packet_body body) {
    if (!attached) {
        return;
    }
    native::packet p{link.channel, 0, std::move(body)};
    native::encode(p, native::peer::server, out_limits(), out);
}

void native_session_state::confirmed(uint64_t last) {
    while (!kept.empty() && kept.front().first <= last) {
        kept_bytes -= kept.front().second.size();
        kept.pop_front();
    }
}

} // namespace actormq

namespace actormq {

native_session_state::transaction* native_session_state::current_tx() {
    if (transacted) {
        return &tx;
    }
    if (xa && !xa_bound.empty()) {
        return &xa_work[xa_bound];
    }
    return nullptr;
}

std::string xid_key(const native::xid& x) {
    std::string out;
    auto f = static_cast<uint32_t>(x.format_id);
    for (int i = 0; i < 4; ++i) {
        out.push_back(static_cast<char>((f >> (8 * i)) & 0xff));
    }
    out.push_back(static_cast<char>(x.gtrid.size()));
    out += x.gtrid;
    out.push_back(static_cast<char>(x.bqual.size()));
    out += x.bqual;
    return out;
}

std::optional<native::xid> xid_of_key(std::string_view key) {
    if (key.size() < 6) {
        return std::nullopt;
    }
    native::xid x;
    uint32_t f = 0;
    for (size_t i = 0; i < 4; ++i) {
        f |= static_cast<uint32_t>(static_cast<unsigned char>(key[i])) << (8 * i);
    }
    x.format_id = static_cast<int32_t>(f);
    size_t pos = 4;
    auto part = [&](std::string& out) {
        if (pos >= key.size()) {
            return false;
        }
        size_t n = static_cast<unsigned char>(key[pos++]);
        if (n > native::xid_part_max_bytes || key.size() - pos < n) {
            return false;
        }
        out.assign(key.substr(pos, n));
        pos += n;
        return true;
    };
    if (!part(x.gtrid) || x.gtrid.empty() || !part(x.bqual) || pos != key.size()) {
        return std::nullopt;
    }
    return x;
}

std::string xid_text(const native::xid& x) {
    static const char* digits = "0123456789abcdef";
    auto hex = [](const std::string& s) {
        std::string out;
        for (unsigned char c : s) {
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 15]);
        }
        return out;
    };
    return std::to_string(x.format_id) + ":" + hex(x.gtrid) + ":" + hex(x.bqual);
}

} // namespace actormq
