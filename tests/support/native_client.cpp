// SPDX-License-Identifier: Apache-2.0
#include "support/native_client.hpp"

#include "support/socket.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace actormq::test {

namespace {

native::codec_limits client_limits() {
    native::codec_limits l;
    l.max_packet_bytes = 64 * 1024 * 1024;
    return l;
}

} // namespace

std::string describe(const native::packet& p) {
    std::string out{native::to_string(p.type())};
    out += " ch=" + std::to_string(p.channel) + " seq=" + std::to_string(p.sequence);
    if (const auto* f = std::get_if<native::fail>(&p.body)) {
        out += " corr=" + std::to_string(f->correlation)
               + " code=" + std::string{native::to_string(f->code)} + " '" + f->message + "'";
    } else if (const auto* o = std::get_if<native::ok>(&p.body)) {
        out += " corr=" + std::to_string(o->correlation);
    } else if (const auto* e = std::get_if<native::error>(&p.body)) {
        out += " code=" + std::string{native::to_string(e->code)} + " '" + e->message + "'";
    } else if (const auto* d = std::get_if<native::disconnect>(&p.body)) {
        out += " code=" + std::string{native::to_string(d->code)} + " '" + d->message + "'";
    } else if (const auto* d = std::get_if<native::deliver>(&p.body)) {
        out += " consumer=" + std::to_string(d->consumer_id) + " id="
               + std::to_string(d->message_id) + " body='" + d->msg.body.substr(0, 100) + "'";
    } else if (const auto* c = std::get_if<native::consumer_closed>(&p.body)) {
        out += " consumer=" + std::to_string(c->consumer_id)
               + " code=" + std::string{native::to_string(c->code)};
    }
    return out;
}

native_client::native_client() : decoder_(native::peer::server, client_limits()) {}

native_client::~native_client() {
    close();
}

bool native_client::connect_tcp(uint16_t port) {
    close();
    reset_connection();
    fd_ = connect_loopback(port, last_error_);
    if (fd_ < 0) {
        return false;
    }
    return true;
}

void native_client::reset_connection() {
    decoder_ = native::decoder{native::peer::server, client_limits()};
    buffered_.clear();
    eof_ = false;
}

bool native_client::send_raw(std::string_view bytes) {
    return send_all(fd_, bytes, in(std::chrono::seconds(10)), last_error_);
}

bool native_client::send_packet(const native::packet& p) {
    std::string out;
    auto f = native::encode(p, native::peer::client, client_limits(), out);
    if (f.code != native::codec_error::none) {
        last_error_ = "encode: " + f.describe();
        return false;
    }
    return send_raw(out);
}

bool native_client::login(const std::string& user, const std::string& password, uint32_t ttl_ms) {
    native::hello h;
    h.client_name = "actormq-test";
    native::authenticate a{user, password, "", ttl_ms};
    if (!send_packet(native::make_packet(h)) || !send_packet(native::make_packet(a))) {
        return false;
    }
    auto deadline = in(std::chrono::seconds(10));
    auto ok = receive(deadline);
    if (!ok || ok->type() != native::packet_type::hello_ok) {
        last_error_ = ok ? "expected hello_ok, got " + describe(*ok) : "no hello_ok";
        return false;
    }
    hello_ok_seen = std::get<native::hello_ok>(ok->body);
    auto au = receive(deadline);
    if (!au || au->type() != native::packet_type::authenticated) {
        last_error_ = au ? "expected authenticated, got " + describe(*au) : "no authenticated";
        return false;
    }
    authenticated_seen = std::get<native::authenticated>(au->body);
    auto t = receive(deadline);
    if (!t || t->type() != native::packet_type::topology) {
        last_error_ = t ? "expected topology, got " + describe(*t) : "no topology";
        return false;
    }
    topology_seen = std::get<native::topology>(t->body);
    return true;
}

uint64_t native_client::request(uint32_t channel, native::packet_body body) {
    auto& ch = channels_[channel];
    native::packet p{channel, ++ch.out_seq, std::move(body)};
    std::string out;
    auto f = native::encode(p, native::peer::client, client_limits(), out);
    if (f.code != native::codec_error::none) {
        last_error_ = "encode: " + f.describe();
        return 0;
    }
    if (ch.window > 0) {
        ch.kept.emplace_back(p.sequence, out);
    }
    send_raw(out);
    return p.sequence;
}

std::optional<native::packet> native_client::open_session(uint32_t channel,
                                                          const std::string& name,
                                                          bool transacted,
                                                          int32_t confirmation_window) {
    auto& ch = channels_[channel];
    ch = channel_state{};
    ch.window = confirmation_window;
    return call(channel, native::create_session{name, transacted, false, confirmation_window});
}

std::optional<native::packet> native_client::call(uint32_t channel, native::packet_body body) {
    auto seq = request(channel, std::move(body));
    return response(channel, seq, in(std::chrono::seconds(10)));
}

std::optional<native::packet>
native_client::response(uint32_t channel, uint64_t correlation, deadline_t deadline) {
    auto matches = [&](const native::packet& p) {
        if (p.channel != channel) {
            return false;
        }
        if (const auto* o = std::get_if<native::ok>(&p.body)) {
            return o->correlation == correlation;
        }
        if (const auto* f = std::get_if<native::fail>(&p.body)) {
            return f->correlation == correlation;
        }
        return false;
    };
    auto it = std::find_if(buffered_.begin(), buffered_.end(), matches);
    if (it != buffered_.end()) {
        auto p = std::move(*it);
        buffered_.erase(it);
        return p;
    }
    for (;;) {
        auto p = take_one();
        if (p && matches(*p)) {
            return p;
        }
        if (p) {
            buffered_.push_back(std::move(*p));
            continue;
        }
        if (!read_some(deadline)) {
            return std::nullopt;
        }
    }
}

std::optional<native::packet> native_client::take_one() {
    native::packet p;
    if (decoder_.next(p) != native::decode_status::packet) {
        return std::nullopt;
    }
    if (p.sequence != 0) {
        auto& ch = channels_[p.channel];
        if (p.sequence <= ch.in_seq) {
            return take_one(); // A replay after a reattach (§14).
        }
        ch.in_seq = p.sequence;
        if (ch.window > 0 && auto_confirm) {
            // Whole-packet sizes are not known here; a count of packets is close enough for
            // tests (each confirms at least every few packets).
            ch.received_since_confirm += 64;
            if (ch.received_since_confirm >= static_cast<uint64_t>(ch.window) / 2) {
                confirm(p.channel);
            }
        }
    } else if (const auto* pc = std::get_if<native::packets_confirmed>(&p.body)) {
        auto& kept = channels_[p.channel].kept;
        while (!kept.empty() && kept.front().first <= pc->last) {
            kept.pop_front();
        }
        return take_one();
    }
    return p;
}

bool native_client::read_some(deadline_t deadline) {
    if (fd_ < 0 || eof_ || decoder_.failure().code != native::codec_error::none) {
        return false;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, ms_left(deadline)) <= 0) {
        last_error_ = "timed out";
        return false;
    }
    char buf[64 * 1024];
    auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return true;
    }
    if (n <= 0) {
        last_error_ = n == 0 ? "EOF" : std::strerror(errno);
        eof_ = true;
        return false;
    }
    decoder_.feed(buf, static_cast<size_t>(n));
    return true;
}

std::optional<native::packet> native_client::receive(deadline_t deadline) {
    if (!buffered_.empty()) {
        auto p = std::move(buffered_.front());
        buffered_.pop_front();
        return p;
    }
    for (;;) {
        if (auto p = take_one()) {
            return p;
        }
        if (!read_some(deadline)) {
            return std::nullopt;
        }
    }
}

std::optional<native::packet> native_client::receive_type(native::packet_type t,
                                                          deadline_t deadline) {
    auto it = std::find_if(buffered_.begin(), buffered_.end(),
                           [&](const native::packet& p) { return p.type() == t; });
    if (it != buffered_.end()) {
        auto p = std::move(*it);
        buffered_.erase(it);
        return p;
    }
    for (;;) {
        auto p = take_one();
        if (p && p->type() == t) {
            return p;
        }
        if (p) {
            buffered_.push_back(std::move(*p));
            continue;
        }
        if (!read_some(deadline)) {
            return std::nullopt;
        }
    }
}

bool native_client::closed_by_peer(deadline_t deadline) {
    for (;;) {
        while (auto p = take_one()) {
            buffered_.push_back(std::move(*p));
        }
        if (eof_) {
            return true;
        }
        if (!read_some(deadline)) {
            if (eof_) {
                return true;
            }
            if (test_clock::now() >= deadline || fd_ < 0) {
                return false;
            }
        }
    }
}

void native_client::close() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

std::optional<native::session_reattached> native_client::reattach(uint32_t channel,
                                                                  const std::string& name) {
    auto& ch = channels_[channel];
    if (!send_packet(native::make_packet(channel, 0, native::reattach_session{name, ch.in_seq}))) {
        return std::nullopt;
    }
    auto p = receive_type(native::packet_type::session_reattached, in(std::chrono::seconds(10)));
    if (!p) {
        return std::nullopt;
    }
    auto r = std::get<native::session_reattached>(p->body);
    if (r.found) {
        auto& c = channels_[channel];
        while (!c.kept.empty() && c.kept.front().first <= r.last_received) {
            c.kept.pop_front();
        }
        for (const auto& [seq, bytes] : c.kept) {
            send_raw(bytes);
        }
    }
    return r;
}

uint64_t native_client::last_received(uint32_t channel) const {
    auto it = channels_.find(channel);
    return it == channels_.end() ? 0 : it->second.in_seq;
}

bool native_client::confirm(uint32_t channel) {
    auto& ch = channels_[channel];
    ch.received_since_confirm = 0;
    if (ch.in_seq == 0) {
        return true;
    }
    return send_packet(native::make_packet(channel, 0, native::packets_confirmed{ch.in_seq}));
}

} // namespace actormq::test
