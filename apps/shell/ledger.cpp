// SPDX-License-Identifier: Apache-2.0
#include "apps/shell/ledger.hpp"

#include <algorithm>

namespace actormq::shell {

std::string ledger::key(const std::string& destination) {
    const std::string prefix = "/queue/";
    if (destination.compare(0, prefix.size(), prefix) == 0) {
        return destination.substr(prefix.size());
    }
    return destination;
}

void ledger::sent(const std::string& destination,
                  const std::string& body,
                  const std::string& dup_id,
                  bool confirmed) {
    auto& b = books_[key(destination)];
    auto& e = b.bodies[body];
    ++b.sent;
    b.confirmed += confirmed ? 1 : 0;
    if (dup_id.empty()) {
        ++e.plain_sent;
        e.plain_confirmed += confirmed ? 1 : 0;
    } else {
        e.dup_ids.insert(dup_id);
        if (confirmed) {
            e.dup_ids_confirmed.insert(dup_id);
        }
    }
}

void ledger::received(const std::string& destination, const std::string& body) {
    auto& b = books_[key(destination)];
    ++b.received;
    ++b.bodies[body].received;
}

bool ledger::knows(const std::string& destination) const {
    return destination.empty() ? !books_.empty() : books_.count(key(destination)) > 0;
}

std::vector<verdict_line> ledger::judge(const std::string& destination) const {
    std::vector<verdict_line> out;
    for (const auto& [name, b] : books_) {
        if (!destination.empty() && name != key(destination)) {
            continue;
        }
        verdict_line v;
        v.destination = name;
        v.sent = b.sent;
        v.confirmed = b.confirmed;
        v.received = b.received;
        for (const auto& [body, e] : b.bodies) {
            // How many distinct messages carry this body: at most this many may arrive, and
            // at least `must` (the confirmed ones) must.
            uint64_t may = e.plain_sent + e.dup_ids.size();
            uint64_t must = e.plain_confirmed + e.dup_ids_confirmed.size();
            if (may == 0) {
                v.unexpected += e.received;
                if (v.unexpected_example.empty()) {
                    v.unexpected_example = body;
                }
                continue;
            }
            if (e.received < must) {
                v.lost += must - e.received;
                if (v.lost_example.empty()) {
                    v.lost_example = body;
                }
            }
            if (e.received > may) {
                v.duplicated += e.received - may;
                if (v.duplicated_example.empty()) {
                    v.duplicated_example = body;
                }
            }
        }
        out.push_back(std::move(v));
    }
    return out;
}

} // namespace actormq::shell
