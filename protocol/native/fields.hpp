// SPDX-License-Identifier: Apache-2.0
#pragma once

// Each packet body's fields, in wire order, listed once for wire::reader and wire::writer
// (docs/protocol.md §2-§15 give the same lists). A check right after a field refuses values the
// protocol does not allow, in both directions. Internal to the codec.

#include "protocol/native/packet.hpp"
#include "protocol/native/wire.hpp"

#include <cstddef>
#include <vector>

namespace actormq::native::fields {

// Smallest encoding of a list entry, so a count can be checked against the bytes left.
constexpr size_t header_min_bytes = 2 + 2;
constexpr size_t member_min_bytes = 2 + 2 + 2;
constexpr size_t xid_min_bytes = 4 + 1 + 1;

template <class F>
void entry(F& f, header& h) {
    f("header name", h.first);
    f("header value", h.second);
}

template <class F>
void entry(F& f, topology_member& m) {
    f("node_id", m.node_id);
    f("live", m.live);
    f("backup", m.backup);
}

template <class F>
void entry(F& f, xid& x) {
    f("format_id", x.format_id);
    f.xid_part("gtrid", x.gtrid);
    f.check("gtrid", !x.gtrid.empty(), codec_error::bad_value);
    f.xid_part("bqual", x.bqual);
}

/// A u16 count, then the entries.
template <class F, class T>
void list(F& f, const char* name, std::vector<T>& v, size_t limit, size_t min_entry_bytes) {
    size_t n = v.size();
    f.count(name, n, limit, min_entry_bytes);
    if (f.failed()) {
        return;
    }
    if constexpr (F::reading) {
        // count() bounded n by the bytes left, so this never allocates beyond the packet.
        v.resize(n);
    }
    for (T& e : v) {
        entry(f, e);
        if (f.failed()) {
            return;
        }
    }
}

template <class F>
void entry(F& f, message& m) {
    f("address", m.address);
    f("durable", m.durable);
    f("priority", m.priority);
    f.check("priority", m.priority <= priority_max, codec_error::bad_value);
    f("expiration_ms", m.expiration_ms);
    f.check("expiration_ms", m.expiration_ms >= 0, codec_error::bad_value);
    f("timestamp_ms", m.timestamp_ms);
    f.check("timestamp_ms", m.timestamp_ms >= 0, codec_error::bad_value);
    f("duplicate_id", m.duplicate_id);
    list(f, "headers", m.headers, f.limits().max_headers, header_min_bytes);
    f.blob("body", m.body);
}

/// A window in bytes: -1 (none) or a size.
template <class F>
void window(F& f, const char* name, int32_t& v) {
    f(name, v);
    f.check(name, v >= -1, codec_error::bad_value);
}

/// The sequence number of the request a response answers: never 0.
template <class F>
void correlation(F& f, uint64_t& v) {
    f("correlation", v);
    f.check("correlation", v >= 1, codec_error::bad_value);
}

// -- connection packets --------------------------------------------------------------------------

template <class F>
void body(F& f, hello& p) {
    f("magic", p.magic);
    f.check("magic", p.magic == hello_magic, codec_error::bad_magic);
    f("version_min", p.version_min);
    f("version_max", p.version_max);
    f.check("version_max", p.version_min <= p.version_max, codec_error::bad_value);
    f.check("version_max",
            p.version_min <= protocol_version && protocol_version_min <= p.version_max,
            codec_error::unknown_version);
    f("max_packet_bytes", p.max_packet_bytes);
    f.check("max_packet_bytes", p.max_packet_bytes >= min_max_packet_bytes, codec_error::bad_value);
    f("client_name", p.client_name);
}

template <class F>
void body(F& f, hello_ok& p) {
    f("version", p.version);
    f.check("version", protocol_version_min <= p.version && p.version <= protocol_version,
            codec_error::unknown_version);
    f("max_packet_bytes", p.max_packet_bytes);
    f.check("max_packet_bytes", p.max_packet_bytes >= min_max_packet_bytes, codec_error::bad_value);
    f("server_name", p.server_name);
    f("node_id", p.node_id);
}

template <class F>
void body(F& f, authenticate& p) {
    f("user", p.user);
    f("password", p.password);
    f("client_id", p.client_id);
    f("connection_ttl_ms", p.connection_ttl_ms);
}

template <class F>
void body(F& f, authenticated& p) {
    f("connection_id", p.connection_id);
    f("connection_ttl_ms", p.connection_ttl_ms);
}

template <class F>
void body(F& f, ping& p) {
    f("nonce", p.nonce);
}

template <class F>
void body(F& f, pong& p) {
    f("nonce", p.nonce);
}

template <class F>
void body(F& f, topology& p) {
    f("version", p.version);
    list(f, "members", p.members, f.limits().max_list_entries, member_min_bytes);
}

template <class F>
void body(F& f, error& p) {
    f("code", p.code);
    f("message", p.message);
}

template <class F>
void body(F& f, disconnect& p) {
    f("code", p.code);
    f("message", p.message);
    f("redirect", p.redirect);
}

// -- session control packets
// -----------------------------------------------------------------------

template <class F>
void body(F& f, reattach_session& p) {
    f("name", p.name);
    f.check("name", !p.name.empty(), codec_error::bad_value);
    f("last_received", p.last_received);
}

template <class F>
void body(F& f, session_reattached& p) {
    f("found", p.found);
    f("last_received", p.last_received);
}

template <class F>
void body(F& f, packets_confirmed& p) {
    f("last", p.last);
    f.check("last", p.last >= 1, codec_error::bad_value);
}

// -- session stream packets, client to server
// ------------------------------------------------------

template <class F>
void body(F& f, create_session& p) {
    f("name", p.name);
    f.check("name", !p.name.empty(), codec_error::bad_value);
    f("transacted", p.transacted);
    f("xa", p.xa);
    f("confirmation_window_bytes", p.confirmation_window_bytes);
    f.check("confirmation_window_bytes",
            p.confirmation_window_bytes == -1 || p.confirmation_window_bytes > 0,
            codec_error::bad_value);
}

template <class F>
void body(F&, close_session&) {}

template <class F>
void body(F& f, create_producer& p) {
    f("producer_id", p.producer_id);
    f("address", p.address);
    window(f, "window_bytes", p.window_bytes);
}

template <class F>
void body(F& f, close_producer& p) {
    f("producer_id", p.producer_id);
}

template <class F>
void body(F& f, send& p) {
    f("producer_id", p.producer_id);
    f("confirm", p.confirm);
    entry(f, p.msg);
}

template <class F>
void body(F& f, create_consumer& p) {
    f("consumer_id", p.consumer_id);
    f("queue", p.queue);
    f("filter", p.filter);
    window(f, "window_bytes", p.window_bytes);
    f("browse_only", p.browse_only);
    if (f.limits().version >= 2) {
        f("pre_acknowledge", p.pre_acknowledge);
    } else {
        // Version 1 has no such field (§2): a writer refuses what it cannot say, a reader
        // leaves the default.
        f.check("pre_acknowledge", !p.pre_acknowledge, codec_error::bad_value);
    }
}

template <class F>
void body(F& f, close_consumer& p) {
    f("consumer_id", p.consumer_id);
}

template <class F>
void body(F& f, credit& p) {
    f("consumer_id", p.consumer_id);
    f("bytes", p.bytes);
}

template <class F>
void body(F& f, ack& p) {
    f("consumer_id", p.consumer_id);
    f("message_id", p.message_id);
    f("mode", p.mode);
    f("confirm", p.confirm);
}

template <class F>
void body(F& f, nack& p) {
    f("consumer_id", p.consumer_id);
    f("message_id", p.message_id);
}

template <class F>
void body(F&, start&) {}

template <class F>
void body(F&, stop&) {}

template <class F>
void body(F&, commit&) {}

template <class F>
void body(F&, rollback&) {}

template <class F>
void body(F& f, create_queue& p) {
    f("queue", p.queue);
    f.check("queue", !p.queue.empty(), codec_error::bad_value);
    f("address", p.address);
    f("routing", p.route);
    f("durable", p.durable);
    f("temporary", p.temporary);
    f("filter", p.filter);
}

template <class F>
void body(F& f, delete_queue& p) {
    f("queue", p.queue);
    f.check("queue", !p.queue.empty(), codec_error::bad_value);
}

template <class F>
void body(F& f, xa_start& p) {
    entry(f, p.id);
    f("flag", p.flag);
}

template <class F>
void body(F& f, xa_end& p) {
    entry(f, p.id);
    f("flag", p.flag);
}

template <class F>
void body(F& f, xa_prepare& p) {
    entry(f, p.id);
}

template <class F>
void body(F& f, xa_commit& p) {
    entry(f, p.id);
    f("one_phase", p.one_phase);
}

template <class F>
void body(F& f, xa_rollback& p) {
    entry(f, p.id);
}

template <class F>
void body(F&, xa_recover&) {}

// -- session stream packets, server to client
// ------------------------------------------------------

template <class F>
void body(F& f, ok& p) {
    correlation(f, p.correlation);
}

template <class F>
void body(F& f, fail& p) {
    correlation(f, p.correlation);
    f("code", p.code);
    f("message", p.message);
}

template <class F>
void body(F& f, deliver& p) {
    f("consumer_id", p.consumer_id);
    f("message_id", p.message_id);
    f("delivery_count", p.delivery_count);
    entry(f, p.msg);
}

template <class F>
void body(F& f, producer_credit& p) {
    f("producer_id", p.producer_id);
    f("bytes", p.bytes);
}

template <class F>
void body(F& f, consumer_closed& p) {
    f("consumer_id", p.consumer_id);
    f("code", p.code);
    f("message", p.message);
}

template <class F>
void body(F& f, scale_down& p) {
    f("target", p.target);
    f("message", p.message);
}

template <class F>
void body(F& f, xa_recovered& p) {
    correlation(f, p.correlation);
    list(f, "xids", p.xids, f.limits().max_list_entries, xid_min_bytes);
}

} // namespace actormq::native::fields
