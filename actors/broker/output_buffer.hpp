// SPDX-License-Identifier: Apache-2.0
// The output of one client connection, whatever its protocol (STOMP's `connection`, the native
// protocol's `native_connection`): the bytes waiting to be written and the piece the socket is
// writing now. Plain bookkeeping, no I/O: each connection owns one and touches it only on its
// strand; the connection keeps the bound (max-pending-output-bytes) and the write timer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace actormq {

/// What a connection has yet to write: bytes waiting, and the piece being written.
class output_buffer {
public:
    /// Appends `bytes` to what waits; ignored once sealed.
    void append(std::string bytes) {
        if (sealed_) {
            return;
        }
        if (waiting_.empty()) {
            waiting_.swap(bytes);
        } else {
            waiting_.append(bytes);
        }
    }

    /// Appends the last bytes the connection will write (an error before it closes), past any
    /// bound; nothing is appended afterwards. False when it was sealed already.
    bool seal(const std::string& last) {
        if (sealed_) {
            return false;
        }
        sealed_ = true;
        waiting_.append(last);
        return true;
    }

    /// Whether seal() ran.
    bool sealed() const { return sealed_; }

    /// Drops what waits (whole frames or packets); the piece being written is finished.
    void drop_waiting() { waiting_.clear(); }

    /// Whether bytes wait behind the piece being written.
    bool has_waiting() const { return !waiting_.empty(); }

    /// Bytes not yet taken by the socket: what waits plus the rest of the current piece.
    uint64_t pending() const { return waiting_.size() + (writing_.size() - offset_); }

    /// The bytes to hand to the socket next: the rest of the current piece, or, once that is
    /// done, everything that waits (which becomes the current piece).
    std::string_view next() {
        if (offset_ == writing_.size()) {
            writing_.clear();
            offset_ = 0;
            writing_.swap(waiting_);
        }
        return {writing_.data() + offset_, writing_.size() - offset_};
    }

    /// The socket took `n` bytes of next(); true once the current piece is all written.
    bool advance(size_t n) {
        offset_ += n;
        if (offset_ < writing_.size()) {
            return false;
        }
        writing_.clear();
        offset_ = 0;
        return true;
    }

private:
    std::string waiting_;
    std::string writing_;
    /// Bytes of `writing_` the socket has taken.
    size_t offset_ = 0;
    bool sealed_ = false;
};

} // namespace actormq
