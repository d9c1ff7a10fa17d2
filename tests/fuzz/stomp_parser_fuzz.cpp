// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the STOMP parser (docs/fuzzing.md). For each version it parses the input
// once in one piece and once in pseudo-random chunks, and checks that
//   - both give the same frames and both fail or neither does (chunking never matters), and
//   - every frame survives encode + parse unchanged, leaving nothing buffered.
// The first two input bytes seed the chunk sizes and pick default or tight limits.
#include "protocol/stomp_codec.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using actormq::stomp::frame;
using actormq::stomp::parse_limits;
using actormq::stomp::parser;
using actormq::stomp::version;

// Aborts, which libFuzzer reports as a crash with the input that caused it.
void require(bool ok) {
    if (!ok) {
        std::abort();
    }
}

bool same(const frame& a, const frame& b) {
    return a.cmd == b.cmd && a.headers == b.headers && a.body == b.body;
}

// What one parser produced from the whole input.
struct outcome {
    std::vector<frame> frames;
    bool failed = false;
};

// xorshift32: deterministic chunk sizes from the seed bytes, so every crash replays.
struct chunk_sizes {
    uint32_t state;

    size_t next() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        // Mostly tiny chunks, to cut inside every token; sometimes larger ones.
        return (state & 7) == 0 ? 1 + (state >> 8) % 512 : 1 + (state >> 8) % 8;
    }
};

void drain(parser& p, outcome& result) {
    frame f;
    for (;;) {
        auto st = p.next(f);
        if (st == parser::status::frame) {
            result.frames.push_back(f);
            continue;
        }
        if (st == parser::status::error) {
            require(p.error() != actormq::stomp::parse_error::none);
            require(p.next(f) == parser::status::error);
            result.failed = true;
        }
        return;
    }
}

// Parses `data` in chunks from `sizes`, or in one piece when `sizes` is null.
outcome
parse(const char* data, size_t size, version v, const parse_limits& limits, chunk_sizes* sizes) {
    parser p{limits};
    p.set_version(v);
    outcome result;
    size_t from = 0;
    while (from < size && !result.failed) {
        size_t n = sizes == nullptr ? size : sizes->next();
        n = n < size - from ? n : size - from;
        p.feed(data + from, n);
        from += n;
        drain(p, result);
        // Only an unfinished frame is held back, and it is always under the frame limit.
        require(p.buffered() <= from);
        require(p.buffered() < limits.max_frame_bytes);
    }
    return result;
}

void check_round_trip(const frame& f, version v) {
    std::string wire;
    actormq::stomp::encode(f, v, wire);
    parser p;
    p.set_version(v);
    p.feed(wire.data(), wire.size());
    frame back;
    require(p.next(back) == parser::status::frame);
    require(same(f, back));
    require(p.next(back) == parser::status::need_more);
    require(p.buffered() == 0);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) {
        return 0;
    }
    uint32_t seed = (uint32_t{data[0]} << 8 | data[1]) + 1;
    parse_limits limits;
    if ((data[0] & 0x80) != 0) {
        // Tight limits taken from the seed bytes, so short inputs reach every limit check,
        // each one first in some input.
        limits.max_frame_bytes = 32 + size_t{data[1]};
        limits.max_headers = 1 + size_t{data[0] & 0x0fu};
        limits.max_header_line_bytes = 8 + 16 * size_t{(data[0] >> 4) & 0x07u};
    }
    const char* wire = reinterpret_cast<const char*>(data + 2);
    size_t wire_size = size - 2;
    for (auto v : {version::v1_0, version::v1_1, version::v1_2}) {
        chunk_sizes sizes{seed};
        auto whole = parse(wire, wire_size, v, limits, nullptr);
        auto chunked = parse(wire, wire_size, v, limits, &sizes);
        require(whole.failed == chunked.failed);
        require(whole.frames.size() == chunked.frames.size());
        for (size_t i = 0; i < whole.frames.size(); ++i) {
            require(same(whole.frames[i], chunked.frames[i]));
            check_round_trip(whole.frames[i], v);
        }
    }
    return 0;
}
