// SPDX-License-Identifier: Apache-2.0
#include "actors/broker/output_buffer.hpp"

#include <doctest/doctest.h>

using actormq::output_buffer;

TEST_CASE("output buffer: what waits becomes the next piece; a partial write keeps the rest") {
    output_buffer out;
    out.append("abc");
    out.append("de");
    CHECK(out.pending() == 5);
    CHECK(out.next() == "abcde");
    out.append("fg"); // Waits behind the piece being written.
    CHECK(out.pending() == 7);
    CHECK_FALSE(out.advance(2));
    CHECK(out.pending() == 5);
    CHECK(out.next() == "cde"); // The rest of the current piece first.
    CHECK(out.advance(3));
    CHECK(out.has_waiting());
    CHECK(out.next() == "fg");
    CHECK(out.advance(2));
    CHECK(out.pending() == 0);
    CHECK_FALSE(out.has_waiting());
}

TEST_CASE("output buffer: seal appends the last bytes once; later appends are dropped") {
    output_buffer out;
    out.append("frame");
    out.drop_waiting();
    CHECK(out.pending() == 0);
    CHECK(out.seal("ERROR"));
    CHECK_FALSE(out.seal("again"));
    out.append("late");
    CHECK(out.sealed());
    CHECK(out.next() == "ERROR");
}
