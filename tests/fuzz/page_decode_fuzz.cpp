// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the page file format (docs/journal.md, "Paging"; docs/fuzzing.md). It
// decodes records at every offset of the input, the way the page store reads a file, and checks
//   - an ok record re-encodes to exactly the bytes it was decoded from, and every strict prefix
//     of it is `truncated`,
//   - every other status consumes nothing, `end` only for no bytes, and `truncated` only when
//     the bytes really end before the record's length,
//   - check_file_header accepts exactly the header file_header() writes.
// A CRC-32 is too hard to guess, so when the high bit of byte 0 is set the rest of the input is
// checked again with the CRC of the record at offset 0 filled in; that lets the fuzzer reach
// valid records and payloads without seeds.
#include "protocol/page_format.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <zlib.h>

namespace {

using namespace actormq::paging;

void require(bool ok) {
    if (!ok) {
        std::abort();
    }
}

uint32_t length_field(const char* p) {
    return static_cast<uint32_t>(static_cast<unsigned char>(p[0]))
           | static_cast<uint32_t>(static_cast<unsigned char>(p[1])) << 8
           | static_cast<uint32_t>(static_cast<unsigned char>(p[2])) << 16
           | static_cast<uint32_t>(static_cast<unsigned char>(p[3])) << 24;
}

void check_at(const char* p, size_t size) {
    page_record r;
    size_t used = 0;
    auto status = decode(p, size, r, used);
    switch (status) {
        case decode_status::ok: {
            require(used >= record_header_bytes && used <= size);
            std::string again;
            if (r.type == record_type::message) {
                encode(r.message, again);
            } else {
                encode(r.cursor, again);
            }
            require(again.size() == used && std::memcmp(again.data(), p, used) == 0);
            for (size_t n = 1; n < used; n += 1 + n / 7) {
                page_record q;
                size_t u = 0;
                require(decode(p, n, q, u) == decode_status::truncated && u == 0);
            }
            break;
        }
        case decode_status::end:
            require(size == 0 && used == 0);
            break;
        case decode_status::truncated:
            require(used == 0);
            require(size < 4 || size < length_field(p));
            break;
        case decode_status::corrupt:
            require(used == 0 && !last_corrupt_reason().empty());
            break;
    }
}

void check_all(const std::string& bytes) {
    for (size_t at = 0; at <= bytes.size(); ++at) {
        check_at(bytes.data() + at, bytes.size() - at);
    }
    require(check_file_header(bytes.data(), bytes.size())
            == (bytes.size() >= file_header_bytes
                && std::memcmp(bytes.data(), file_header().data(), file_header_bytes) == 0));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string bytes(reinterpret_cast<const char*>(data), size);
    check_all(bytes);
    if (size > 1 && (data[0] & 0x80) != 0) {
        std::string rest = bytes.substr(1);
        if (rest.size() >= record_header_bytes) {
            size_t length = std::min<size_t>(length_field(rest.data()), rest.size());
            if (length >= record_header_bytes) {
                auto crc = ::crc32(0L, Z_NULL, 0);
                crc = ::crc32(crc, reinterpret_cast<const Bytef*>(rest.data()), 8);
                crc = ::crc32(crc, reinterpret_cast<const Bytef*>(rest.data() + 12),
                              static_cast<uInt>(length - 12));
                for (int i = 0; i < 4; ++i) {
                    rest[8 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
                }
            }
        }
        check_all(rest);
    }
    return 0;
}
