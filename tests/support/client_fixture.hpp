// SPDX-License-Identifier: Apache-2.0
// Helpers of the client library's process tests (tests/process/client_*_test.cpp).
#pragma once

#include "support/process.hpp"

#include <string>

namespace actormq::test {

/// The connection URL of `node`'s native acceptor, logged in as guest, with `query` (each
/// option as "&name=value") appended.
inline std::string client_url(const node_process& node, const std::string& query = "") {
    return "tcp://127.0.0.1:" + std::to_string(node.port("native")) + "?user=guest&password=guest"
           + query;
}

} // namespace actormq::test
