// SPDX-License-Identifier: Apache-2.0
// Uses the installed headers and library: parses a URL and prints what it understood.
#include <actormq/client/options.hpp>

#include <iostream>

int main() {
    auto o = actormq::client::connection_options::from_url("tcp://localhost:61617?ha=true");
    std::cout << o.servers.at(0).to_string() << " ha=" << o.ha << "\n";
    return o.ha && o.servers.at(0).port == 61617 ? 0 : 1;
}
