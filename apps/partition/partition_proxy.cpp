// SPDX-License-Identifier: Apache-2.0
#include "apps/partition/partition_proxy.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace actormq {

namespace {

sockaddr_in loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/// Sends all of `n` bytes; false when the peer is gone.
bool send_all(int fd, const char* data, size_t n) {
    while (n > 0) {
        ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        data += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

} // namespace

struct partition_proxy::impl {
    /// One proxied connection: the accepted side and the side towards the target (-1 while
    /// blocked: a connection accepted during a partition never reaches the target).
    struct link {
        int down = -1;
        int up = -1;
        /// Opened or seen during a partition: closed at heal.
        bool tainted = false;
    };

    uint16_t target = 0;
    int listener = -1;
    uint16_t port = 0;
    int wake[2] = {-1, -1};
    std::mutex mtx;
    bool blocked = false;
    bool heal_pending = false;
    std::atomic<bool> stopping{false};
    std::atomic<uint64_t> accepted{0};
    std::vector<link> links;
    std::thread thread;

    void notify() {
        char c = 1;
        [[maybe_unused]] auto n = ::write(wake[1], &c, 1);
    }

    static void close_link(link& l) {
        if (l.down >= 0) {
            ::close(l.down);
        }
        if (l.up >= 0) {
            ::close(l.up);
        }
        l.down = l.up = -1;
    }

    void accept_one(bool is_blocked) {
        int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        ++accepted;
        link l;
        l.down = fd;
        if (is_blocked) {
            l.tainted = true;
        } else {
            l.up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            auto addr = loopback(target);
            if (l.up < 0 || ::connect(l.up, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
                close_link(l);
                return;
            }
        }
        links.push_back(l);
    }

    /// Moves what is readable on `from` to `to` (or drops it while blocked); false when
    /// either side is gone.
    static bool pump(int from, int to, bool drop) {
        char buf[65536];
        ssize_t n = ::recv(from, buf, sizeof buf, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            return true;
        }
        if (n <= 0) {
            return false;
        }
        return drop || to < 0 || send_all(to, buf, static_cast<size_t>(n));
    }

    void run() {
        while (!stopping) {
            bool is_blocked = false;
            {
                std::lock_guard<std::mutex> guard{mtx};
                is_blocked = blocked;
                if (heal_pending) {
                    heal_pending = false;
                    for (auto& l : links) {
                        if (l.tainted) {
                            close_link(l);
                        }
                    }
                }
            }
            std::vector<pollfd> fds{{listener, POLLIN, 0}, {wake[0], POLLIN, 0}};
            for (auto& l : links) {
                if (is_blocked) {
                    l.tainted = true;
                }
                fds.push_back({l.down, static_cast<short>(l.down >= 0 ? POLLIN : 0), 0});
                fds.push_back({l.up, static_cast<short>(l.up >= 0 ? POLLIN : 0), 0});
            }
            if (::poll(fds.data(), fds.size(), 100) < 0) {
                continue;
            }
            if (fds[1].revents & POLLIN) {
                char drain[64];
                [[maybe_unused]] auto n = ::read(wake[0], drain, sizeof drain);
            }
            for (size_t i = 0; i < links.size(); ++i) {
                auto& l = links[i];
                auto& d = fds[2 + 2 * i];
                auto& u = fds[3 + 2 * i];
                bool ok = true;
                if (l.down >= 0 && (d.revents & (POLLIN | POLLHUP | POLLERR))) {
                    ok = pump(l.down, l.up, is_blocked);
                }
                if (ok && l.up >= 0 && (u.revents & (POLLIN | POLLHUP | POLLERR))) {
                    ok = pump(l.up, l.down, is_blocked);
                }
                if (!ok) {
                    close_link(l);
                }
            }
            links.erase(std::remove_if(links.begin(), links.end(),
                                       [](const link& l) { return l.down < 0 && l.up < 0; }),
                        links.end());
            if (fds[0].revents & POLLIN) {
                accept_one(is_blocked);
            }
        }
        for (auto& l : links) {
            close_link(l);
        }
    }
};

partition_proxy::partition_proxy(uint16_t target) : impl_(std::make_unique<impl>()) {
    auto& d = *impl_;
    d.target = target;
    d.listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto addr = loopback(0);
    socklen_t len = sizeof addr;
    if (d.listener < 0 || ::bind(d.listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0
        || ::listen(d.listener, 64) != 0
        || ::getsockname(d.listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0
        || ::pipe2(d.wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        throw std::runtime_error("partition_proxy: cannot listen on 127.0.0.1");
    }
    d.port = ntohs(addr.sin_port);
    d.thread = std::thread([&d] { d.run(); });
}

partition_proxy::~partition_proxy() {
    auto& d = *impl_;
    d.stopping = true;
    d.notify();
    d.thread.join();
    ::close(d.listener);
    ::close(d.wake[0]);
    ::close(d.wake[1]);
}

uint16_t partition_proxy::port() const {
    return impl_->port;
}

void partition_proxy::block() {
    {
        std::lock_guard<std::mutex> guard{impl_->mtx};
        impl_->blocked = true;
    }
    impl_->notify();
}

void partition_proxy::heal() {
    {
        std::lock_guard<std::mutex> guard{impl_->mtx};
        impl_->blocked = false;
        impl_->heal_pending = true;
    }
    impl_->notify();
}

uint64_t partition_proxy::connections() const {
    return impl_->accepted;
}

bool partition_proxy::blocked() const {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    return impl_->blocked;
}

} // namespace actormq
