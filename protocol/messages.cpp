// SPDX-License-Identifier: Apache-2.0
#include "protocol/messages.hpp"

namespace actormq {

int64_t broker_message::memory_bytes() const {
    // A fixed overhead stands for the object, its control block and the queue entry.
    int64_t n = 128 + static_cast<int64_t>(body.size() + address.size() + destination.size());
    for (const auto& [k, v] : headers) {
        n += static_cast<int64_t>(k.size() + v.size() + 32);
    }
    return n;
}

} // namespace actormq
