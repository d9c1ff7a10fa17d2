// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the native protocol's decoder (docs/fuzzing.md, docs/protocol.md §1).
// Byte 0 picks the sending peer (bit 0), the protocol version (bit 6: version 1, else 2) and,
// with bit 7 set, tight limits from byte 1; byte 1 also seeds the chunk sizes. The rest is a byte
// stream from that peer. The target checks that
//   - decode on the raw input (libFuzzer's exact-size buffer, so ASan sees any read past it)
//     and the incremental decoder fed in pseudo-random chunks give the same packets and the
//     same final outcome, with the same error, field and offset: splits never matter;
//   - every packet re-encodes, with the same limits, to exactly the bytes it came from: the
//     decoder accepts only canonical, encodable packets, and drops no field;
//   - an error consumes nothing and points inside the refused packet; need_more leaves less
//     than one packet's worth of bytes; the decoder stays in its error.
#include "protocol/native/codec.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace actormq::native;

void require(bool ok) {
    if (!ok) {
        std::abort();
    }
}

struct run {
    std::vector<std::string> packets; // each packet's re-encoded bytes
    decode_status last = decode_status::need_more;
    codec_failure failure;
};

bool same_failure(const codec_failure& a, const codec_failure& b) {
    return a.code == b.code && a.type_code == b.type_code && std::strcmp(a.field, b.field) == 0
           && a.offset == b.offset && a.declared == b.declared && a.allowed == b.allowed;
}

std::string reencode(const packet& p, peer from, const codec_limits& limits) {
    std::string out;
    codec_failure f = encode(p, from, limits, out);
    require(f.code == codec_error::none);
    return out;
}

run whole(const char* data, size_t size, peer from, const codec_limits& limits) {
    run r;
    size_t at = 0;
    for (;;) {
        packet p;
        size_t consumed = 0;
        r.last = decode(data + at, size - at, from, limits, p, consumed, r.failure);
        if (r.last != decode_status::packet) {
            require(consumed == 0);
            break;
        }
        require(consumed >= header_bytes && consumed <= limits.max_packet_bytes);
        std::string again = reencode(p, from, limits);
        require(again.size() == consumed && std::memcmp(again.data(), data + at, consumed) == 0);
        r.packets.push_back(std::move(again));
        at += consumed;
    }
    if (r.last == decode_status::need_more) {
        require(size - at < limits.max_packet_bytes);
    } else {
        require(r.failure.code != codec_error::none);
        require(r.failure.offset <= limits.max_packet_bytes && r.failure.offset <= size - at);
    }
    return r;
}

run chunked(const char* data, size_t size, peer from, const codec_limits& limits, uint32_t seed) {
    run r;
    decoder d(from, limits);
    size_t at = 0;
    while (r.last != decode_status::error) {
        if (at == size) {
            break;
        }
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % 8 == 0 ? (seed >> 8) % 512 + 1 : (seed >> 16) % 8 + 1;
        n = n > size - at ? size - at : n;
        d.feed(data + at, n);
        at += n;
        packet p;
        while ((r.last = d.next(p)) == decode_status::packet) {
            r.packets.push_back(reencode(p, from, limits));
        }
    }
    r.failure = d.failure();
    if (r.last == decode_status::error) {
        packet p;
        d.feed(data, size);
        require(d.next(p) == decode_status::error);
        require(same_failure(d.failure(), r.failure));
    }
    return r;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
    if (size < 2) {
        return 0;
    }
    peer from = (bytes[0] & 1) != 0 ? peer::server : peer::client;
    codec_limits limits;
    // The connection's version decides the bodies (docs/protocol.md §2): both are fuzzed.
    limits.version = (bytes[0] & 0x40) != 0 ? 1 : 2;
    if ((bytes[0] & 0x80) != 0) {
        // Tight limits, so short inputs reach every limit check.
        limits.max_packet_bytes = header_bytes + (bytes[1] & 0x3f) * 16;
        limits.max_string_bytes = (bytes[1] >> 6) * 8;
        limits.max_headers = (bytes[0] >> 1) & 3;
        limits.max_list_entries = (bytes[0] >> 3) & 3;
    }
    const char* data = reinterpret_cast<const char*>(bytes) + 2;
    size -= 2;
    run a = whole(data, size, from, limits);
    run b = chunked(data, size, from, limits, bytes[1] * 2654435761u);
    require(a.packets == b.packets);
    require(a.last == b.last);
    if (a.last == decode_status::error) {
        require(same_failure(a.failure, b.failure));
    }
    return 0;
}
