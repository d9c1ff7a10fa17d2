// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the journal record format (docs/fuzzing.md). It decodes records at every
// offset of the input, the way store::open resynchronises, and checks that
//   - an ok record re-encodes to exactly the bytes it was decoded from, and every strict prefix
//     of it is `truncated` (truncated only ever means "need more bytes"),
//   - every other status consumes nothing, and `truncated` really lacks bytes,
//   - every payload decoder accepts a payload only if re-encoding gives the same bytes; they run
//     on each ok record's payload and on the raw input,
//   - crc32_update (the CRC decode checks with) equals Boost.CRC's CRC-32 of the input.
// A CRC-32 is too hard to guess, so when the high bit of byte 0 is set the rest of the input is
// checked a second time with the CRC of every plausible record filled in; that lets the fuzzer
// reach valid records and payloads without seeds.
#include "protocol/journal_format.hpp"

#include <boost/crc.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using namespace actormq::journal;

// Aborts, which libFuzzer reports as a crash with the input that caused it.
void require(bool ok) {
    if (!ok) {
        std::abort();
    }
}

template <class Payload>
void check_payload(std::string_view bytes) {
    Payload p;
    if (decode_payload(bytes, p)) {
        require(encode_payload(p) == bytes);
    }
}

void check_payloads(std::string_view bytes) {
    check_payload<queue_payload>(bytes);
    check_payload<message_payload>(bytes);
    check_payload<ack_payload>(bytes);
    check_payload<tx_payload>(bytes);
    check_payload<dup_payload>(bytes);
}

uint32_t length_field(const char* p) {
    return static_cast<uint32_t>(static_cast<unsigned char>(p[0]))
           | static_cast<uint32_t>(static_cast<unsigned char>(p[1])) << 8
           | static_cast<uint32_t>(static_cast<unsigned char>(p[2])) << 16
           | static_cast<uint32_t>(static_cast<unsigned char>(p[3])) << 24;
}

void check_ok(const char* p, size_t consumed, const record& r) {
    require(consumed >= record_header_bytes && consumed <= record_max_bytes);
    std::string again;
    encode(r, again);
    require(again == std::string_view(p, consumed));
    record scratch;
    size_t used = 0;
    for (size_t n : {size_t{0}, size_t{4}, record_header_bytes - 1, consumed - 1}) {
        require(decode(p, n, scratch, used) == decode_status::truncated && used == 0);
    }
    check_payloads(r.payload);
}

// Checks the outcome of decoding at one offset; returns how far to move on.
size_t check_at(const char* p, size_t left) {
    record r;
    size_t consumed = 12345;
    switch (decode(p, left, r, consumed)) {
        case decode_status::ok:
            require(consumed <= left);
            check_ok(p, consumed, r);
            return consumed;
        case decode_status::end:
            require(consumed == 0 && left >= 4 && length_field(p) == 0);
            return 1;
        case decode_status::truncated:
            require(consumed == 0 && (left < 4 || length_field(p) > left));
            return 1;
        case decode_status::corrupt:
            require(consumed == 0 && !last_corrupt_reason().empty());
            return 1;
    }
    std::abort();
}

void check_all(const char* bytes, size_t size) {
    for (size_t pos = 0; pos < size;) {
        pos += check_at(bytes + pos, size - pos);
    }
    check_at(bytes + size, 0);
    check_payloads(std::string_view(bytes, size));
}

// Writes the right CRC into each record whose length fits, walking from record to record.
std::string with_crcs(const char* bytes, size_t size) {
    std::string out(bytes, size);
    for (size_t pos = 0; pos + record_header_bytes <= out.size();) {
        uint32_t length = length_field(out.data() + pos);
        if (length < record_header_bytes || length > out.size() - pos) {
            ++pos;
            continue;
        }
        boost::crc_32_type crc;
        crc.process_bytes(out.data() + pos, 24);
        crc.process_bytes(out.data() + pos + record_header_bytes, length - record_header_bytes);
        for (size_t i = 0; i < 4; ++i) {
            out[pos + 24 + i] = static_cast<char>((crc.checksum() >> (8 * i)) & 0xff);
        }
        pos += length;
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto* bytes = reinterpret_cast<const char*>(data);
    // The carry-less-multiply CRC that decode checks with is zlib's CRC-32, on any bytes.
    boost::crc_32_type reference;
    reference.process_bytes(data, size);
    require(crc32_update(0, bytes, size) == reference.checksum());
    check_all(bytes, size);
    if (size > 0 && (data[0] & 0x80) != 0) {
        auto fixed = with_crcs(bytes + 1, size - 1);
        check_all(fixed.data(), fixed.size());
    }
    return 0;
}
