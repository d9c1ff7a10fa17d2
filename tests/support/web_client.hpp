// SPDX-License-Identifier: Apache-2.0
// Clients of the web server (docs/web.md) for tests: raw HTTP over a socket (so a test can send
// anything at all) and a WebSocket client whose reads have deadlines. Header-only; used by
// tests/unit/web_server_test.cpp and tests/process/web_test.cpp.
#pragma once

#include "wait.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <arpa/inet.h>
#include <cstdint>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>

namespace actormq::test {

/// "Basic " + base64("guest:guest"), the user every test config has.
inline const char* guest_auth = "Basic Z3Vlc3Q6Z3Vlc3Q=";

/// A plain TCP client of 127.0.0.1 on raw sockets.
class raw_client {
public:
    explicit raw_client(uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    ~raw_client() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    raw_client(raw_client&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)),
          connected_(other.connected_),
          text_(std::move(other.text_)) {}
    raw_client(const raw_client&) = delete;
    raw_client& operator=(const raw_client&) = delete;
    raw_client& operator=(raw_client&&) = delete;

    bool connected() const { return connected_; }

    /// Sends all of `bytes`; false if the connection failed.
    bool send(const std::string& bytes) {
        size_t off = 0;
        while (off < bytes.size()) {
            auto n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
            if (n <= 0) {
                return false;
            }
            off += static_cast<size_t>(n);
        }
        return true;
    }

    /// Reads until the server closes the connection (true) or `deadline` passes (false).
    bool read_to_close(deadline_t deadline) {
        char buf[4096];
        for (;;) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, ms_left(deadline)) <= 0) {
                return false;
            }
            auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                return true;
            }
            text_.append(buf, static_cast<size_t>(n));
        }
    }

    /// Everything read so far.
    const std::string& text() const { return text_; }

    /// The status code of the first response read so far (0 if none).
    int status() const {
        if (text_.compare(0, 9, "HTTP/1.1 ") != 0 || text_.size() < 12) {
            return 0;
        }
        return std::stoi(text_.substr(9, 3));
    }

    /// The body of the first response (all after the header block).
    std::string body() const {
        auto pos = text_.find("\r\n\r\n");
        return pos == std::string::npos ? std::string{} : text_.substr(pos + 4);
    }

    /// Whether the header block holds the line "NAME: VALUE" exactly.
    bool has_header(const std::string& line) const {
        auto end = text_.find("\r\n\r\n");
        if (end == std::string::npos) {
            return false;
        }
        return text_.substr(0, end + 2).find("\r\n" + line + "\r\n") != std::string::npos;
    }

private:
    int fd_ = -1;
    bool connected_ = false;
    std::string text_;
};

/// A request for `target` with `Connection: close`, so the answer ends with the connection.
inline std::string http_request(const std::string& target,
                                const char* auth = guest_auth,
                                const std::string& method = "GET") {
    std::string r = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    if (auth != nullptr) {
        r += std::string{"Authorization: "} + auth + "\r\n";
    }
    return r + "\r\n";
}

/// Sends `request` on a new connection and reads the answer until the server closes it or
/// `deadline` passes (then `text()` holds what came so far).
inline raw_client http_exchange(uint16_t port, const std::string& request, deadline_t deadline) {
    raw_client c{port};
    if (c.connected() && c.send(request)) {
        c.read_to_close(deadline);
    }
    return c;
}

/// A WebSocket client of 127.0.0.1 (Beast, on a private io_context run until each deadline).
class ws_client {
public:
    /// Connects and performs the handshake for `target`; false with `handshake_error` set if
    /// either failed.
    bool connect(uint16_t port, const std::string& target, const char* auth = guest_auth) {
        namespace beast = boost::beast;
        beast::error_code ec;
        auto& tcp = beast::get_lowest_layer(ws_);
        tcp.expires_after(std::chrono::seconds(10));
        tcp.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
        if (ec) {
            handshake_error = ec;
            return false;
        }
        if (auth != nullptr) {
            std::string a = auth;
            ws_.set_option(
                beast::websocket::stream_base::decorator([a](beast::websocket::request_type& req) {
                    req.set(beast::http::field::authorization, a);
                }));
        }
        ws_.handshake("127.0.0.1", target, ec);
        tcp.expires_never();
        handshake_error = ec;
        return !ec;
    }

    /// The next text message, or nullopt after `deadline` or when the connection ended
    /// (then `ended` is true). A read that times out stays pending for the next call, so no
    /// message is lost (cancelling would break the WebSocket stream).
    std::optional<std::string> read(deadline_t deadline) {
        if (ended) {
            return std::nullopt;
        }
        if (!pending_) {
            pending_ = true;
            done_ = false;
            buf_.clear();
            ws_.async_read(buf_, [this](boost::beast::error_code ec, size_t) {
                result_ = ec;
                done_ = true;
            });
        }
        ioc_.restart();
        while (!done_ && ms_left(deadline) > 0) {
            ioc_.run_one_for(std::chrono::milliseconds(ms_left(deadline)));
        }
        if (!done_) {
            return std::nullopt;
        }
        pending_ = false;
        if (result_) {
            ended = true;
            return std::nullopt;
        }
        return boost::beast::buffers_to_string(buf_.data());
    }

    boost::beast::error_code handshake_error;
    bool ended = false;

private:
    boost::asio::io_context ioc_;
    boost::beast::websocket::stream<boost::beast::tcp_stream> ws_{ioc_};
    boost::beast::flat_buffer buf_;
    boost::beast::error_code result_;
    bool pending_ = false;
    bool done_ = false;
};

} // namespace actormq::test
