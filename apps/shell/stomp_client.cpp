// SPDX-License-Identifier: Apache-2.0
#include "apps/shell/stomp_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

namespace actormq::shell {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

/// The client reads what the broker may send: frames up to the broker's own largest.
stomp::parse_limits client_limits() {
    stomp::parse_limits l;
    l.max_frame_bytes = size_t{256} * 1024 * 1024;
    return l;
}

} // namespace

std::string error_text(const stomp::frame& f) {
    const auto* m = f.find("message");
    std::string out = m != nullptr ? *m : std::string{"ERROR"};
    if (!f.body.empty()) {
        out += " (" + f.body.substr(0, 200) + ")";
    }
    return out;
}

stomp_client::stomp_client() : sock_(ioc_), parser_(client_limits()) {}

bool stomp_client::run_until(time_point deadline) {
    ioc_.restart();
    ioc_.run_until(deadline);
    if (ioc_.stopped()) {
        return true;
    }
    boost::system::error_code ignored;
    sock_.close(ignored);
    ioc_.restart();
    ioc_.run();
    return false;
}

std::string stomp_client::connect(const std::string& host,
                                  uint16_t port,
                                  const std::string& login,
                                  const std::string& passcode,
                                  time_point deadline) {
    boost::system::error_code ec = asio::error::would_block;
    boost::system::error_code addr_ec;
    auto addr = asio::ip::make_address(host, addr_ec);
    if (addr_ec) {
        return "bad host '" + host + "': " + addr_ec.message();
    }
    sock_.async_connect(tcp::endpoint{addr, port}, [&](boost::system::error_code e) { ec = e; });
    if (!run_until(deadline)) {
        return "connect to " + host + ":" + std::to_string(port) + " timed out";
    }
    if (ec) {
        return "cannot connect to " + host + ":" + std::to_string(port) + ": " + ec.message();
    }
    sock_.set_option(tcp::no_delay(true), ec);
    stomp::frame f;
    f.cmd = stomp::command::connect;
    f.add("accept-version", "1.2");
    f.add("host", "localhost");
    f.add("heart-beat", "0,0");
    if (!login.empty()) {
        f.add("login", login);
        f.add("passcode", passcode);
    }
    queue(f);
    if (auto err = flush(deadline); !err.empty()) {
        return err;
    }
    std::string error;
    auto reply = read(deadline, error);
    if (!reply) {
        return "no CONNECTED: " + error;
    }
    if (reply->cmd != stomp::command::connected) {
        return "login refused: " + error_text(*reply);
    }
    parser_.set_version(version_);
    return "";
}

void stomp_client::queue(const stomp::frame& f) {
    stomp::encode(f, version_, out_);
}

std::string stomp_client::flush(time_point deadline) {
    if (out_.empty()) {
        return "";
    }
    boost::system::error_code ec = asio::error::would_block;
    asio::async_write(sock_, asio::buffer(out_),
                      [&](boost::system::error_code e, size_t) { ec = e; });
    if (!run_until(deadline)) {
        return "write timed out";
    }
    out_.clear();
    return ec ? "write failed: " + ec.message() : "";
}

std::optional<stomp::frame> stomp_client::read(time_point deadline, std::string& error) {
    for (;;) {
        stomp::frame f;
        auto st = parser_.next(f);
        if (st == stomp::parser::status::frame) {
            return f;
        }
        if (st == stomp::parser::status::error) {
            error = "bad frame from the server: " + std::string{stomp::to_string(parser_.error())};
            return std::nullopt;
        }
        boost::system::error_code ec = asio::error::would_block;
        size_t n = 0;
        sock_.async_read_some(asio::buffer(in_), [&](boost::system::error_code e, size_t got) {
            ec = e;
            n = got;
        });
        if (!run_until(deadline)) {
            error = "timed out";
            return std::nullopt;
        }
        if (ec) {
            error = ec == asio::error::eof ? "the server closed the connection" : ec.message();
            return std::nullopt;
        }
        parser_.feed(in_.data(), n);
    }
}

std::string stomp_client::disconnect(time_point deadline) {
    auto id = next_receipt();
    stomp::frame f;
    f.cmd = stomp::command::disconnect;
    f.add("receipt", id);
    queue(f);
    if (auto err = flush(deadline); !err.empty()) {
        return err;
    }
    for (;;) {
        std::string error;
        auto reply = read(deadline, error);
        if (!reply) {
            return "no receipt for DISCONNECT: " + error;
        }
        if (reply->cmd == stomp::command::error) {
            return error_text(*reply);
        }
        const auto* rid = reply->find("receipt-id");
        if (reply->cmd == stomp::command::receipt && rid != nullptr && *rid == id) {
            return "";
        }
    }
}

} // namespace actormq::shell
