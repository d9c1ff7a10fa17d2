// SPDX-License-Identifier: Apache-2.0
#pragma once

// A real network cut for process tests: the kernel destroys established TCP sockets (`ss -K`,
// which needs root and a kernel with CONFIG_INET_DIAG_DESTROY), so the client sees its
// connection aborted and the server gets a reset, while both processes keep running.

#include <cstdint>
#include <string>

namespace actormq::test {

/// What `cut_tcp_to` did.
struct cut_result {
    /// Established sockets the kernel destroyed.
    int destroyed = 0;
    /// What `ss` printed (its error when nothing was destroyed).
    std::string output;
};

/// Destroys every established TCP socket of this host whose peer is 127.0.0.1:`port`, i.e.
/// the client side of every connection to a server listening there (`ss -K state established
/// dst 127.0.0.1 dport = PORT`). The server side gets a reset.
cut_result cut_tcp_to(uint16_t port);

} // namespace actormq::test
