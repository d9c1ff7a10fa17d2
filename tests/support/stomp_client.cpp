// SPDX-License-Identifier: Apache-2.0
#include "support/stomp_client.hpp"

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

stomp::parse_limits client_limits() {
    stomp::parse_limits l;
    l.max_frame_bytes = size_t{256} * 1024 * 1024;
    l.max_headers = 100000;
    l.max_header_line_bytes = size_t{16} * 1024 * 1024;
    return l;
}

bool has(const header_list& hs, std::string_view name) {
    return std::any_of(hs.begin(), hs.end(), [&](const auto& h) { return h.first == name; });
}

} // namespace

std::string header_of(const stomp::frame& f, std::string_view name) {
    const auto* v = f.find(name);
    return v != nullptr ? *v : std::string{};
}

bool has_header(const stomp::frame& f, std::string_view name) {
    return f.find(name) != nullptr;
}

std::string describe(const stomp::frame& f) {
    std::string out{stomp::to_string(f.cmd)};
    out += " {";
    for (size_t i = 0; i < f.headers.size(); ++i) {
        out += i == 0 ? "" : ", ";
        out += f.headers[i].first + ":" + f.headers[i].second;
    }
    out += "} body=" + std::to_string(f.body.size()) + " bytes";
    if (f.body.size() <= 200) {
        out += " '" + f.body + "'";
    }
    return out;
}

stomp_client::stomp_client() : parser_(client_limits()) {}

stomp_client::~stomp_client() {
    close();
}

bool stomp_client::connect_tcp(uint16_t port) {
    close();
    fd_ = connect_loopback(port, last_error_);
    if (fd_ < 0) {
        return false;
    }
    parser_ = stomp::parser{client_limits()};
    version_ = stomp::version::v1_2;
    buffered_.clear();
    eof_ = false;
    heart_beats_ = 0;
    return true;
}

bool stomp_client::send_raw(std::string_view bytes) {
    return send_all(fd_, bytes, in(write_timeout), last_error_);
}

bool stomp_client::send(const stomp::frame& f) {
    std::string out;
    stomp::encode(f, version_, out);
    return send_raw(out);
}

bool stomp_client::send(stomp::command cmd, header_list headers, std::string_view body) {
    stomp::frame f;
    f.cmd = cmd;
    f.headers = std::move(headers);
    if (!body.empty() && !has(f.headers, "content-length")) {
        f.add("content-length", std::to_string(body.size()));
    }
    f.body = std::string{body};
    return send(f);
}

std::optional<stomp::frame> stomp_client::parse_one() {
    stomp::frame f;
    if (parser_.next(f) == stomp::parser::status::frame) {
        return f;
    }
    return std::nullopt;
}

bool stomp_client::read_some(deadline_t deadline) {
    if (fd_ < 0 || eof_ || parse_failed()) {
        return false;
    }
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, ms_left(deadline));
    if (r <= 0) {
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
    // EOLs that arrive while no frame is under way are heart-beats.
    if (parser_.buffered() == 0) {
        for (ssize_t i = 0; i < n && (buf[i] == '\n' || buf[i] == '\r'); ++i) {
            heart_beats_ += buf[i] == '\n' ? 1 : 0;
        }
    }
    parser_.feed(buf, static_cast<size_t>(n));
    return true;
}

std::optional<stomp::frame> stomp_client::receive(deadline_t deadline) {
    if (!buffered_.empty()) {
        auto f = std::move(buffered_.front());
        buffered_.pop_front();
        return f;
    }
    for (;;) {
        if (auto f = parse_one()) {
            return f;
        }
        if (!read_some(deadline) && (dead() || test_clock::now() >= deadline)) {
            return std::nullopt;
        }
    }
}

std::optional<stomp::frame> stomp_client::receive_cmd(stomp::command cmd, deadline_t deadline) {
    auto it = std::find_if(buffered_.begin(), buffered_.end(),
                           [&](const stomp::frame& f) { return f.cmd == cmd; });
    if (it != buffered_.end()) {
        auto f = std::move(*it);
        buffered_.erase(it);
        return f;
    }
    for (;;) {
        auto f = parse_one();
        if (f && f->cmd == cmd) {
            return f;
        }
        if (f) {
            buffered_.push_back(std::move(*f));
            continue;
        }
        if (!read_some(deadline) && (dead() || test_clock::now() >= deadline)) {
            return std::nullopt;
        }
    }
}

bool stomp_client::closed_by_peer(deadline_t deadline) {
    for (;;) {
        while (auto f = parse_one()) {
            buffered_.push_back(std::move(*f));
        }
        if (eof_) {
            return true;
        }
        if (parse_failed() || fd_ < 0) {
            return false;
        }
        if (!read_some(deadline) && !eof_ && test_clock::now() >= deadline) {
            return false;
        }
    }
}

stomp::frame stomp_client::connect_stomp(const std::string& login,
                                         const std::string& passcode,
                                         const std::string& version,
                                         const std::string& heart_beat,
                                         deadline_t deadline) {
    stomp::frame f;
    f.cmd = stomp::command::connect;
    if (!version.empty()) {
        f.add("accept-version", version);
    }
    f.add("host", "localhost");
    if (!heart_beat.empty()) {
        f.add("heart-beat", heart_beat);
    }
    if (!login.empty()) {
        f.add("login", login);
        f.add("passcode", passcode);
    }
    send(f);
    // An ERROR in answer comes in the highest version this client offered (1.0, unescaped, when
    // it offered none it knows); CONNECTED is never escaped, so this reads both.
    auto offered = stomp::version::v1_0;
    for (auto [name, v] : {std::pair{"1.1", stomp::version::v1_1}, {"1.2", stomp::version::v1_2}}) {
        if (version.find(name) != std::string::npos) {
            offered = v;
        }
    }
    parser_.set_version(offered);
    auto reply = receive(deadline);
    if (!reply) {
        stomp::frame none;
        none.cmd = stomp::command::error;
        none.add("message", "test client: no CONNECTED or ERROR frame (" + last_error_ + ")");
        return none;
    }
    if (reply->cmd == stomp::command::connected) {
        auto v = header_of(*reply, "version");
        version_ = v == "1.0"   ? stomp::version::v1_0
                   : v == "1.1" ? stomp::version::v1_1
                                : stomp::version::v1_2;
        parser_.set_version(version_);
    }
    return *reply;
}

std::string stomp_client::next_receipt_id() {
    return "r-" + std::to_string(next_receipt_++);
}

bool stomp_client::await_receipt(const std::string& id, deadline_t deadline) {
    for (;;) {
        auto f = parse_one();
        if (!f) {
            if (!read_some(deadline) && (dead() || test_clock::now() >= deadline)) {
                return false;
            }
            continue;
        }
        if (f->cmd == stomp::command::receipt && header_of(*f, "receipt-id") == id) {
            return true;
        }
        bool error = f->cmd == stomp::command::error;
        buffered_.push_back(std::move(*f));
        if (error) {
            return false;
        }
    }
}

bool stomp_client::receipt_barrier(deadline_t deadline) {
    auto id = next_receipt_id();
    auto tx = "barrier-" + id;
    stomp::frame begin;
    begin.cmd = stomp::command::begin;
    begin.add("transaction", tx);
    stomp::frame abort;
    abort.cmd = stomp::command::abort;
    abort.add("transaction", tx);
    // The RECEIPT also waits for every queue this client consumes from (docs/stomp.md §7).
    abort.add("actormq-barrier", "queues");
    abort.add("receipt", id);
    std::string out;
    stomp::encode(begin, version_, out);
    stomp::encode(abort, version_, out);
    return send_raw(out) && await_receipt(id, deadline);
}

bool stomp_client::send_with_receipt(stomp::frame f, deadline_t deadline) {
    auto id = next_receipt_id();
    f.add("receipt", id);
    return send(f) && await_receipt(id, deadline);
}

std::vector<stomp::frame> stomp_client::take_messages() {
    std::vector<stomp::frame> out;
    std::deque<stomp::frame> rest;
    for (auto& f : buffered_) {
        if (f.cmd == stomp::command::message) {
            out.push_back(std::move(f));
        } else {
            rest.push_back(std::move(f));
        }
    }
    buffered_.swap(rest);
    return out;
}

void stomp_client::close() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

void stomp_client::close_abruptly() {
    if (fd_ >= 0) {
        linger l{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close();
    }
}

} // namespace actormq::test
