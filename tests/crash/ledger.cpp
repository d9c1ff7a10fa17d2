// SPDX-License-Identifier: Apache-2.0
#include "crash/ledger.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>

namespace actormq::crash {

namespace {

/// How many unexpected messages are described; the rest are only counted.
constexpr size_t unexpected_examples_max = 10;

/// Adds `what` to `list` unless it already holds `max` entries.
void note(std::vector<std::string>& list, size_t max, std::string what) {
    if (list.size() < max) {
        list.push_back(std::move(what));
    }
}

/// Parses the decimal number at the front of `s` into `out` and drops it from `s`.
bool take_number(std::string_view& s, uint64_t& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec != std::errc{} || p == s.data()) {
        return false;
    }
    s.remove_prefix(static_cast<size_t>(p - s.data()));
    return true;
}

/// The first `n` characters of `body` with anything unprintable replaced, for reports.
std::string printable_prefix(const std::string& body, size_t n = 40) {
    std::string out = body.substr(0, n);
    for (auto& c : out) {
        c = (c < 0x20 || c > 0x7e) ? '?' : c;
    }
    return out;
}

} // namespace

// -- stream_record ------------------------------------------------------------------------------

std::string stream_record::destination() const {
    return kind == stream_kind::plain ? "/queue/crash." + std::to_string(index)
                                      : "/queue/crash.tx." + std::to_string(index);
}

std::string stream_record::id(uint64_t k) const {
    auto prefix = kind == stream_kind::plain ? std::string{} : std::string{"tx"};
    return prefix + std::to_string(index) + "-" + std::to_string(k);
}

std::string stream_record::body(uint64_t k, size_t size) const {
    std::string out = kind == stream_kind::plain ? "p=" : "t=";
    out += std::to_string(index) + " k=" + std::to_string(k);
    if (out.size() < size) {
        out.append(size - out.size(), '.');
    }
    return out;
}

void stream_record::mark_sent(uint64_t k) {
    if (sent.size() <= k) {
        sent.resize(k + 1, false);
    }
    sent[k] = true;
}

void stream_record::mark_confirmed(uint64_t k) {
    if (confirmed.size() <= k) {
        confirmed.resize(k + 1, false);
    }
    confirmed[k] = true;
}

// -- verdict ------------------------------------------------------------------------------------

std::string verdict::line(uint64_t kills) const {
    return "verdict: lost=" + std::to_string(lost) + " duplicated=" + std::to_string(duplicated)
           + " unexpected=" + std::to_string(unexpected) + " recovered=" + std::to_string(recovered)
           + " confirmed=" + std::to_string(confirmed) + " received=" + std::to_string(received)
           + " kills=" + std::to_string(kills);
}

std::string verdict::tx_line() const {
    return "tx: confirmed=" + std::to_string(tx_confirmed)
           + " complete=" + std::to_string(tx_complete) + " partial=" + std::to_string(tx_partial);
}

// -- ledger -------------------------------------------------------------------------------------

ledger::ledger(uint32_t producers, uint32_t tx_producers) {
    for (uint32_t p = 0; p < producers; ++p) {
        streams_.push_back(stream_record{stream_kind::plain, p, {}, {}, {}});
    }
    for (uint32_t t = 0; t < tx_producers; ++t) {
        streams_.push_back(stream_record{stream_kind::tx, t, {}, {}, {}});
    }
}

std::vector<std::string> ledger::destinations() const {
    std::vector<std::string> out;
    for (const auto& s : streams_) {
        out.push_back(s.destination());
    }
    return out;
}

stream_record* ledger::find(const std::string& body, uint64_t& k) {
    std::string_view s{body};
    stream_kind kind = stream_kind::plain;
    if (s.substr(0, 2) == "t=") {
        kind = stream_kind::tx;
    } else if (s.substr(0, 2) != "p=") {
        return nullptr;
    }
    s.remove_prefix(2);
    uint64_t index = 0;
    if (!take_number(s, index) || s.substr(0, 3) != " k=") {
        return nullptr;
    }
    s.remove_prefix(3);
    if (!take_number(s, k) || s.find_first_not_of('.') != std::string_view::npos) {
        return nullptr;
    }
    auto it = std::find_if(streams_.begin(), streams_.end(), [&](const stream_record& r) {
        return r.kind == kind && r.index == index;
    });
    return it != streams_.end() ? &*it : nullptr;
}

void ledger::record_received(const std::string& destination, const std::string& body) {
    ++received_;
    uint64_t k = 0;
    auto* r = find(body, k);
    if (r == nullptr || r->destination() != destination || k >= r->sent.size() || !r->sent[k]) {
        ++unexpected_;
        std::string what = r != nullptr ? r->id(k) : "'" + printable_prefix(body) + "'";
        note(unexpected_examples_, unexpected_examples_max, what + " on " + destination);
        return;
    }
    if (r->received.size() <= k) {
        r->received.resize(r->sent.size(), 0);
    }
    ++r->received[k];
}

verdict ledger::judge(size_t examples_max) const {
    verdict v;
    v.received = received_;
    v.unexpected = unexpected_;
    for (size_t i = 0; i < unexpected_examples_.size() && i < examples_max; ++i) {
        v.unexpected_ids.push_back(unexpected_examples_[i]);
    }
    for (const auto& r : streams_) {
        auto n = std::max(r.sent.size(), r.confirmed.size());
        for (uint64_t k = 0; k < n; ++k) {
            bool confirmed = k < r.confirmed.size() && r.confirmed[k];
            uint32_t got = k < r.received.size() ? r.received[k] : 0;
            v.confirmed += confirmed ? 1 : 0;
            if (confirmed && got == 0) {
                ++v.lost;
                note(v.lost_ids, examples_max, r.id(k));
            }
            if (got > 1) {
                ++v.duplicated;
                note(v.duplicated_ids, examples_max, r.id(k) + " x" + std::to_string(got));
            }
            v.recovered += !confirmed && got > 0 ? 1 : 0;
        }
        if (r.kind != stream_kind::tx) {
            continue;
        }
        for (uint64_t first = 0; first < n; first += tx_messages) {
            size_t present = 0;
            for (uint64_t k = first; k < first + tx_messages; ++k) {
                present += k < r.received.size() && r.received[k] > 0 ? 1 : 0;
            }
            v.tx_confirmed += first < r.confirmed.size() && r.confirmed[first] ? 1 : 0;
            v.tx_complete += present == tx_messages ? 1 : 0;
            if (present > 0 && present < tx_messages) {
                ++v.tx_partial;
                note(v.partial_ids, examples_max,
                     "tx" + std::to_string(r.index) + " #" + std::to_string(first / tx_messages)
                         + " (" + std::to_string(present) + "/" + std::to_string(tx_messages)
                         + ")");
            }
        }
    }
    return v;
}

} // namespace actormq::crash
