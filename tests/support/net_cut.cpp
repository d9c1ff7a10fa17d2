// SPDX-License-Identifier: Apache-2.0
#include "support/net_cut.hpp"

#include <array>
#include <cstdio>
#include <sstream>

namespace actormq::test {

cut_result cut_tcp_to(uint16_t port) {
    cut_result r;
    // -H: no header line, so every line of the output is one destroyed socket.
    auto cmd =
        "ss -K -t -n -H state established dst 127.0.0.1 dport = " + std::to_string(port) + " 2>&1";
    FILE* f = ::popen(cmd.c_str(), "r");
    if (f == nullptr) {
        r.output = "cannot run ss";
        return r;
    }
    std::array<char, 512> buf{};
    while (std::fgets(buf.data(), int(buf.size()), f) != nullptr) {
        r.output += buf.data();
    }
    int status = ::pclose(f);
    std::istringstream lines(r.output);
    std::string line;
    while (std::getline(lines, line)) {
        // A socket line names the peer; ss's complaints (RTNETLINK answers: ...) do not.
        if (line.find("127.0.0.1:" + std::to_string(port)) != std::string::npos) {
            ++r.destroyed;
        }
    }
    if (status != 0) {
        r.output += "(ss exited with status " + std::to_string(status) + ")";
    }
    return r;
}

} // namespace actormq::test
