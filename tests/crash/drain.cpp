// SPDX-License-Identifier: Apache-2.0
#include "crash/drain.hpp"

#include "support/stomp_client.hpp"

#include <algorithm>
#include <vector>

namespace actormq::crash {

namespace {

using stomp::command;
using test::in;

/// The drain's connection and the destinations its subscription ids stand for.
class drainer {
public:
    drainer(ledger& book, const drain_limits& limits)
        : book_(book),
          limits_(limits),
          destinations_(book.destinations()),
          deadline_(in(limits.total)),
          cap_(in(limits.cap)) {}

    std::string run(uint16_t port) {
        if (!client_.connect_tcp(port)) {
            return "drain: cannot connect: " + client_.last_error();
        }
        auto reply = client_.connect_stomp("guest", "guest", "1.2", "0,0", deadline_);
        if (reply.cmd != command::connected) {
            return "drain: CONNECT refused: " + test::describe(reply);
        }
        for (size_t i = 0; i < destinations_.size(); ++i) {
            if (auto err = subscribe(i); !err.empty()) {
                return err;
            }
        }
        uint32_t quiet = 0;
        while (quiet < limits_.quiet_rounds) {
            if (test::test_clock::now() >= cap_) {
                return "drain: still receiving after " + std::to_string(limits_.cap.count())
                       + " ms";
            }
            uint64_t before = taken_;
            if (auto err = round(); !err.empty()) {
                return err;
            }
            quiet = taken_ == before ? quiet + 1 : 0;
        }
        return {};
    }

private:
    std::string subscribe(size_t i) {
        stomp::frame f;
        f.cmd = command::subscribe;
        f.add("destination", destinations_[i]);
        f.add("id", std::to_string(i));
        f.add("ack", "client-individual");
        if (!client_.send_with_receipt(f, deadline_)) {
            return "drain: SUBSCRIBE to " + destinations_[i] + " got no receipt ("
                   + client_.last_error() + ")";
        }
        return {};
    }

    /// Takes frames until the socket is quiet, then checks with a receipt barrier (which
    /// also proves every ACK so far was processed) and takes what arrived before it.
    std::string round() {
        while (auto f = client_.receive(in(limits_.quiet))) {
            if (auto err = take(*f); !err.empty()) {
                return err;
            }
        }
        if (client_.eof() || client_.parse_failed()) {
            return "drain: connection lost (" + client_.last_error() + ")";
        }
        if (!client_.receipt_barrier(deadline_)) {
            return "drain: no receipt for the barrier (" + client_.last_error() + ")";
        }
        // `receive` hands out buffered frames first, without touching the socket.
        while (!client_.buffered().empty()) {
            auto f = client_.receive(in(std::chrono::milliseconds(0)));
            if (auto err = take(*f); !err.empty()) {
                return err;
            }
        }
        return {};
    }

    /// Files one MESSAGE and ACKs it; an ERROR (or anything unexpected) ends the drain.
    std::string take(const stomp::frame& f) {
        if (f.cmd != command::message) {
            return "drain: unexpected frame " + test::describe(f);
        }
        auto sub = test::header_of(f, "subscription");
        size_t i = 0;
        for (; i < destinations_.size() && std::to_string(i) != sub; ++i) {
        }
        auto destination = i < destinations_.size() ? destinations_[i] : "subscription " + sub;
        book_.record_received(destination, f.body, test::header_of(f, "message-id"));
        ++taken_;
        // Progress: the drain fails only after `total` without any (within the cap). Renewed
        // here, where progress happens, so that a round that streams for longer than `total`
        // (a page-in of hundreds of thousands of messages) still leaves its barrier the time.
        deadline_ = std::min(in(limits_.total), cap_);
        auto ack = test::header_of(f, "ack");
        if (ack.empty()) {
            return "drain: MESSAGE without an ack header: " + test::describe(f);
        }
        if (!client_.send(command::ack, {{"id", ack}})) {
            return "drain: ACK failed (" + client_.last_error() + ")";
        }
        return {};
    }

    ledger& book_;
    const drain_limits& limits_;
    std::vector<std::string> destinations_;
    test::deadline_t deadline_;
    test::deadline_t cap_;
    test::stomp_client client_;
    uint64_t taken_ = 0;
};

} // namespace

std::string drain(uint16_t port, ledger& book, const drain_limits& limits) {
    return drainer{book, limits}.run(port);
}

} // namespace actormq::crash
