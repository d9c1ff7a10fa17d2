// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <cstddef>
#include <utility>

namespace actormq {

/// The calling io thread's read buffer. Connections read into it only once their socket is
/// readable, so an idle connection holds no read buffer (docs/benchmarks.md, "Scale on one
/// node": 64 KiB per idle connection before); their decoders keep what a partial frame or
/// packet needs.
inline std::array<char, 64 * 1024>& io_thread_read_buffer() {
    thread_local std::array<char, 64 * 1024> buffer;
    return buffer;
}

/// Arms one read of `socket` (set non-blocking): waits until it is readable, reads what is
/// there into the io thread's buffer and calls `done(ec, data, n)`, on the socket's executor.
/// A wake-up without data arms the wait again. `done` must keep the socket's owner alive.
template <class Socket, class Done>
void read_when_readable(Socket& socket, Done done) {
    socket.async_wait(Socket::wait_read, [&socket, done = std::move(done)](
                                             const boost::system::error_code& ec) mutable {
        auto& buffer = io_thread_read_buffer();
        if (ec) {
            done(ec, buffer.data(), size_t{0});
            return;
        }
        boost::system::error_code rec;
        size_t n = socket.read_some(boost::asio::buffer(buffer), rec);
        if (rec == boost::asio::error::would_block || rec == boost::asio::error::try_again) {
            read_when_readable(socket, std::move(done));
            return;
        }
        done(rec, buffer.data(), n);
    });
}

} // namespace actormq
