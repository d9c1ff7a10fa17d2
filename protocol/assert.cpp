// SPDX-License-Identifier: Apache-2.0
#include "protocol/assert.hpp"

#include <cstdio>
#include <cstdlib>

namespace actormq {

void assert_failed(const char* expr, const char* file, int line) noexcept {
    // stderr is unbuffered and every spdlog logger of the node writes there as well, so this
    // line lands in the node's log right after the last event before the failure.
    std::fprintf(stderr, "critical assertion_failed expr=\"%s\" file=%s line=%d action=abort\n",
                 expr, file, line);
    std::fflush(stderr);
    std::abort();
}

} // namespace actormq
