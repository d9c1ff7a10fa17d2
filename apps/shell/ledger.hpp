// SPDX-License-Identifier: Apache-2.0
#pragma once

// The book the `verdict` command judges (docs/shell.md, "verdict"): every message `send`
// wrote, whether its RECEIPT came, and every message `receive` got, per destination. It is the
// crash harness's rule (docs/testing.md) in the shell: a confirmed message must arrive exactly
// once; an unconfirmed one at most once; nothing else may arrive.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace actormq::shell {

/// What the verdict found for one destination.
struct verdict_line {
    std::string destination;
    uint64_t sent = 0;      ///< messages written by send
    uint64_t confirmed = 0; ///< of them, confirmed by a RECEIPT
    uint64_t received = 0;  ///< messages receive got (and acknowledged)
    /// Confirmed messages that never arrived.
    uint64_t lost = 0;
    /// Arrivals beyond what was sent: a message sent once that came twice counts 1. A message
    /// sent with a duplicate id counts as sent once however often it was sent with that id.
    uint64_t duplicated = 0;
    /// Arrivals of a body that no send of this shell wrote.
    uint64_t unexpected = 0;
    /// One body of each kind, for the report ("" when none).
    std::string lost_example;
    std::string duplicated_example;
    std::string unexpected_example;

    bool clean() const { return lost == 0 && duplicated == 0 && unexpected == 0; }
};

/// Sends and receipts and receives, per destination, keyed by body.
class ledger {
public:
    /// Notes a message send wrote to `destination`.
    void sent(const std::string& destination,
              const std::string& body,
              const std::string& dup_id,
              bool confirmed);

    /// Notes a message receive got from `destination`.
    void received(const std::string& destination, const std::string& body);

    /// Whether anything was noted for `destination` ("" : for any).
    bool knows(const std::string& destination) const;

    /// The verdict for `destination`, or for every destination noted when it is "".
    std::vector<verdict_line> judge(const std::string& destination) const;

    /// The key of a destination: `/queue/NAME` and `NAME` are the same queue (docs/stomp.md §3).
    static std::string key(const std::string& destination);

private:
    /// Everything noted about one body on one destination.
    struct entry {
        /// Sends without a duplicate id: each is a message of its own.
        uint64_t plain_sent = 0;
        uint64_t plain_confirmed = 0;
        /// Duplicate ids this body was sent with; the broker stores each id once.
        std::set<std::string> dup_ids;
        std::set<std::string> dup_ids_confirmed;
        uint64_t received = 0;
    };

    struct book {
        uint64_t sent = 0;
        uint64_t confirmed = 0;
        uint64_t received = 0;
        std::map<std::string, entry> bodies;
    };

    std::map<std::string, book> books_;
};

} // namespace actormq::shell
