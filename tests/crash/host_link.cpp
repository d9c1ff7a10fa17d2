// SPDX-License-Identifier: Apache-2.0
#include "crash/host_link.hpp"

namespace actormq::crash {

namespace {

using stomp::command;
using test::in;
using test::test_clock;

/// How long one read waits before the loop looks at the stop and abort flags again.
constexpr auto read_slice = std::chrono::milliseconds(100);

/// How long a CONNECT may wait for CONNECTED.
constexpr auto connect_timeout = std::chrono::milliseconds(5000);

/// How often a client whose node is down looks again.
constexpr auto reconnect_poll = std::chrono::milliseconds(2);

} // namespace

std::optional<uint64_t> receipt_number(const stomp::frame& f, const std::string& prefix) {
    auto id = test::header_of(f, "receipt-id");
    if (id.compare(0, prefix.size(), prefix) != 0 || id.size() == prefix.size()) {
        return std::nullopt;
    }
    uint64_t n = 0;
    for (size_t i = prefix.size(); i < id.size(); ++i) {
        if (id[i] < '0' || id[i] > '9') {
            return std::nullopt;
        }
        n = n * 10 + static_cast<uint64_t>(id[i] - '0');
    }
    return n;
}

host_link::host_link(traffic_control& ctl,
                     stop_flags stop,
                     const link_limits& limits,
                     link_stats& stats)
    : ctl_(ctl),
      stop_(stop),
      limits_(limits),
      stats_(stats) {}

bool host_link::out_of_time() const {
    return ctl_.abort || (stop_.stop && test_clock::now() >= stop_.deadline.load());
}

bool host_link::ensure() {
    if (connected_) {
        return true;
    }
    bool ok = test::wait_until(
        in(limits_.reconnect), [&] { return out_of_time() || try_hosts(); }, reconnect_poll);
    if (!ok) {
        give_up("no node accepted a connection within " + std::to_string(limits_.reconnect.count())
                + " ms");
    }
    return connected_;
}

void host_link::drop() {
    client_.close();
    connected_ = false;
}

std::optional<stomp::frame> host_link::next() {
    auto f = client_.receive(in(read_slice));
    if (!f && (client_.eof() || client_.parse_failed())) {
        drop();
    }
    return f;
}

bool host_link::write(const std::string& bytes) {
    if (client_.send_raw(bytes)) {
        return true;
    }
    drop();
    return false;
}

bool host_link::on_error(const stomp::frame& f) {
    if (++stats_.errors == 1) {
        stats_.first_error = test::describe(f);
    }
    drop();
    if (stats_.errors >= limits_.errors_max) {
        give_up(std::to_string(stats_.errors) + " ERROR frames");
        return false;
    }
    return true;
}

void host_link::give_up(const std::string& why) {
    stats_.gave_up = true;
    if (stats_.first_error.empty()) {
        stats_.first_error = why;
    }
}

void host_link::encode(const stomp::frame& f, std::string& out) const {
    stomp::encode(f, client_.version(), out);
}

bool host_link::try_hosts() {
    uint32_t n = ctl_.host_count;
    for (uint32_t i = 0; i < n; ++i) {
        uint32_t h = (host_ + i) % n;
        if (ctl_.hosts[h].up && try_connect(h)) {
            return true;
        }
    }
    return false;
}

// A passive backup refuses the TCP connect, so this fails fast on a node that does not serve;
// a node that dies mid-CONNECT closes the socket, which ends the wait as well.
bool host_link::try_connect(uint32_t h) {
    if (!client_.connect_tcp(ctl_.hosts[h].port)) {
        return false;
    }
    auto reply = client_.connect_stomp("guest", "guest", "1.2", "0,0", in(connect_timeout));
    if (reply.cmd != command::connected) {
        client_.close();
        return false;
    }
    connected_ = true;
    host_ = h;
    ++stats_.connects;
    return true;
}

} // namespace actormq::crash
