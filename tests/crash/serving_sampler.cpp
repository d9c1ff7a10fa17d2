// SPDX-License-Identifier: Apache-2.0
#include "crash/serving_sampler.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace actormq::crash {

using std::chrono::milliseconds;
using test::in;

namespace {

/// Waits for `events` on `fd` until `deadline`; false on timeout or error.
bool wait_fd(int fd, short events, test::deadline_t deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        int r = ::poll(&p, 1, test::ms_left(deadline));
        if (r > 0) {
            return true;
        }
        if (r == 0 || errno != EINTR) {
            return false;
        }
    }
}

} // namespace

bool answers_connect(uint16_t port, milliseconds wait) {
    auto deadline = in(wait);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    struct closer {
        int fd;
        ~closer() {
            linger l{1, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            ::close(fd);
        }
    } guard{fd};
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000002);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    dst.sin_port = htons(port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
        return false;
    }
    if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 && errno != EINPROGRESS) {
        return false;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (!wait_fd(fd, POLLOUT, deadline) || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0
        || err != 0) {
        return false;
    }
    static const char frame[] = "CONNECT\naccept-version:1.2\nhost:localhost\nlogin:guest\n"
                                "passcode:guest\nheart-beat:0,0\n\n";
    // sizeof includes the terminating NUL, which ends the STOMP frame.
    if (::send(fd, frame, sizeof frame, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof frame)) {
        return false;
    }
    std::string got;
    while (got.find('\0') == std::string::npos && got.size() < 4096) {
        if (!wait_fd(fd, POLLIN, deadline)) {
            return false;
        }
        char buf[512];
        auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            return false;
        }
        got.append(buf, n > 0 ? static_cast<size_t>(n) : 0);
    }
    auto start = got.find_first_not_of("\r\n");
    return start != std::string::npos && got.compare(start, 10, "CONNECTED\n") == 0;
}

} // namespace actormq::crash
