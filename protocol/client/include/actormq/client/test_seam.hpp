// SPDX-License-Identifier: Apache-2.0
#pragma once

// A TEST SEAM, not an application API: lets a test stop one of the client library's threads
// at a named point, with the connection's lock released, while the test changes the world
// (cuts the TCP connection, kills the server), and then let it go on. This is how
// tests/process/client_window_race_test.cpp drives the race between a send that waited for
// confirmation-window room and a reattach or failover deterministically.
//
// Compiled in always. With no hook installed, each point costs one relaxed atomic load; with a
// hook installed, every connection of the process calls it (one hook per process). A hook runs
// on the library's own threads, must not call the library, and should not throw (an exception
// is swallowed).

#include <functional>

namespace actormq::client::test_seam {

/// Where a library thread calls the hook.
enum class point {
    /// On the sending thread: a send waited for room in its session's confirmation window
    /// (confirmationWindowSize > 0) and the room came. The send has not been numbered, kept or
    /// written yet; after the hook it checks again what happened meanwhile (a failover, another
    /// send) before it goes on.
    send_window_room,
    /// On the connection's I/O thread: the server's answer to a session's reattach request was
    /// read and is about to be handled (the session is still detached; its window's packets
    /// have not been resent yet).
    reattach_answer,
};

/// The hook: called with the point reached.
using hook = std::function<void(point)>;

/// Installs `h` for every connection of the process; an empty function removes it. Not to be
/// called while a connection may be at a point.
void set_hook(hook h);

/// How many times, so far in this process, a thread woke a connection's I/O thread to write
/// output it had queued (every connection counted; one relaxed atomic add per wake, counted
/// with or without a hook). For tests of the write batching (docs/client.md "Threads and
/// sockets").
unsigned long long io_wakes();

} // namespace actormq::client::test_seam
