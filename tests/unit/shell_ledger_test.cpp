// SPDX-License-Identifier: Apache-2.0
// The book behind actormq-shell's `verdict` (apps/shell/ledger.cpp, docs/shell.md "verdict"):
// a confirmed message must arrive exactly once, an unconfirmed one at most once, and nothing
// else may arrive. The scenarios in examples/scenarios/ run it against real nodes.
#include "apps/shell/ledger.hpp"

#include <doctest/doctest.h>

using actormq::shell::ledger;
using actormq::shell::verdict_line;

namespace {

/// The one line of the verdict for `destination`.
verdict_line judge(const ledger& l, const std::string& destination) {
    auto lines = l.judge(destination);
    REQUIRE(lines.size() == 1);
    return lines.front();
}

} // namespace

TEST_CASE("shell: ledger: every confirmed message received once is a clean verdict") {
    ledger l;
    for (int i = 1; i <= 3; ++i) {
        l.sent("/queue/orders", "message " + std::to_string(i), "o-" + std::to_string(i), true);
    }
    for (int i = 3; i >= 1; --i) {
        l.received("orders", "message " + std::to_string(i));
    }
    auto v = judge(l, "orders");
    CHECK(v.sent == 3);
    CHECK(v.confirmed == 3);
    CHECK(v.received == 3);
    CHECK(v.clean());
}

TEST_CASE("shell: ledger: a confirmed message that never arrives is lost") {
    ledger l;
    l.sent("orders", "message 1", "", true);
    l.sent("orders", "message 2", "", true);
    l.received("orders", "message 2");
    auto v = judge(l, "orders");
    CHECK(v.lost == 1);
    CHECK(v.lost_example == "message 1");
    CHECK(v.duplicated == 0);
    CHECK(v.unexpected == 0);
    CHECK(!v.clean());
}

TEST_CASE("shell: ledger: an unconfirmed message may be missing or arrive once, not twice") {
    ledger l;
    l.sent("orders", "message 1", "o-1", false);
    l.sent("orders", "message 2", "o-2", false);
    l.received("orders", "message 2");
    CHECK(judge(l, "orders").clean());
    l.received("orders", "message 2");
    auto v = judge(l, "orders");
    CHECK(v.duplicated == 1);
    CHECK(v.duplicated_example == "message 2");
    CHECK(v.lost == 0);
}

TEST_CASE("shell: ledger: a resend with the same duplicate id is one message") {
    ledger l;
    // Sent, receipt lost in a failover, sent again with the same id and confirmed.
    l.sent("orders", "message 1", "o-1", false);
    l.sent("orders", "message 1", "o-1", true);
    l.received("orders", "message 1");
    CHECK(judge(l, "orders").clean());
    // The broker stored it twice although the id was the same: a duplicate.
    l.received("orders", "message 1");
    CHECK(judge(l, "orders").duplicated == 1);
}

TEST_CASE("shell: ledger: equal bodies with different ids, or none, are different messages") {
    ledger l;
    l.sent("orders", "message 1", "early-1", true);
    l.sent("orders", "message 1", "late-1", true);
    l.sent("orders", "same", "", true);
    l.sent("orders", "same", "", true);
    l.received("orders", "message 1");
    l.received("orders", "same");
    l.received("orders", "same");
    auto v = judge(l, "orders");
    CHECK(v.lost == 1);
    CHECK(v.lost_example == "message 1");
    CHECK(v.duplicated == 0);
    l.received("orders", "message 1");
    CHECK(judge(l, "orders").clean());
}

TEST_CASE("shell: ledger: a body no send wrote is unexpected") {
    ledger l;
    l.sent("orders", "message 1", "", true);
    l.received("orders", "message 1");
    l.received("orders", "from elsewhere");
    l.received("orders", "from elsewhere");
    auto v = judge(l, "orders");
    CHECK(v.unexpected == 2);
    CHECK(v.unexpected_example == "from elsewhere");
    CHECK(v.duplicated == 0);
}

TEST_CASE("shell: ledger: destinations are judged apart, /queue/NAME and NAME are one") {
    ledger l;
    l.sent("/queue/a", "x", "", true);
    l.sent("/topic/b", "x", "", true);
    l.received("a", "x");
    CHECK(l.knows("a"));
    CHECK(l.knows("/queue/a"));
    CHECK(!l.knows("c"));
    CHECK(judge(l, "/queue/a").clean());
    CHECK(judge(l, "/topic/b").lost == 1);
    CHECK(l.judge("").size() == 2);
}
