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

/// Counts the transactions of tx stream `r` (messages [0, n)) as confirmed, complete or
/// partial: a transaction is all there or not at all.
void judge_transactions(const stream_record& r,
                        const delivery_record& rec,
                        uint64_t n,
                        size_t examples_max,
                        verdict& v) {
    for (uint64_t first = 0; first < n; first += tx_messages) {
        size_t present = 0;
        for (uint64_t k = first; k < first + tx_messages; ++k) {
            present += k < rec.messages.size() && rec.messages[k].count > 0 ? 1 : 0;
        }
        v.tx_confirmed += first < r.confirmed.size() && r.confirmed[first] ? 1 : 0;
        v.tx_complete += present == tx_messages ? 1 : 0;
        if (present > 0 && present < tx_messages) {
            ++v.tx_partial;
            note(v.partial_ids, examples_max,
                 "tx" + std::to_string(r.index) + " #" + std::to_string(first / tx_messages) + " ("
                     + std::to_string(present) + "/" + std::to_string(tx_messages) + ")");
        }
    }
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
           + " redelivered=" + std::to_string(redelivered)
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
        streams_.push_back(stream_record{stream_kind::plain, p, {}, {}});
    }
    for (uint32_t t = 0; t < tx_producers; ++t) {
        streams_.push_back(stream_record{stream_kind::tx, t, {}, {}});
    }
    deliveries_.resize(streams_.size());
}

std::vector<std::string> ledger::destinations() const {
    std::vector<std::string> out;
    for (const auto& s : streams_) {
        out.push_back(s.destination());
    }
    return out;
}

std::optional<size_t> ledger::stream_of(const std::string& destination) const {
    for (size_t i = 0; i < streams_.size(); ++i) {
        if (streams_[i].destination() == destination) {
            return i;
        }
    }
    return std::nullopt;
}

std::optional<size_t> ledger::find(const std::string& body, uint64_t& k) const {
    std::string_view s{body};
    stream_kind kind = stream_kind::plain;
    if (s.substr(0, 2) == "t=") {
        kind = stream_kind::tx;
    } else if (s.substr(0, 2) != "p=") {
        return std::nullopt;
    }
    s.remove_prefix(2);
    uint64_t index = 0;
    if (!take_number(s, index) || s.substr(0, 3) != " k=") {
        return std::nullopt;
    }
    s.remove_prefix(3);
    if (!take_number(s, k) || s.find_first_not_of('.') != std::string_view::npos) {
        return std::nullopt;
    }
    for (size_t i = 0; i < streams_.size(); ++i) {
        if (streams_[i].kind == kind && streams_[i].index == index) {
            return i;
        }
    }
    return std::nullopt;
}

delivered ledger::record_delivery(size_t s,
                                  const std::string& message_id,
                                  const std::string& body,
                                  uint64_t& k) {
    auto& rec = deliveries_[s];
    ++rec.received;
    auto named = find(body, k);
    if (named != s || k >= stream_messages_max) {
        ++rec.unexpected;
        std::string what = named ? streams_[*named].id(k) : "'" + printable_prefix(body) + "'";
        note(rec.unexpected_ids, unexpected_examples_max,
             what + " on " + streams_[s].destination());
        return delivered::unexpected;
    }
    if (rec.messages.size() <= k) {
        rec.messages.resize(k + 1);
    }
    auto& d = rec.messages[k];
    auto first = d.count++ == 0;
    if (first) {
        d.message_id = message_id;
        return delivered::first;
    }
    // Once its ACK is confirmed the broker owes nobody this message again; and a copy with
    // another message-id is a second message with the same duplicate id, whatever its ACK.
    bool other_copy = !message_id.empty() && !d.message_id.empty() && message_id != d.message_id;
    if (d.ack == ack_state::confirmed || other_copy) {
        ++d.after_ack;
        return delivered::duplicated;
    }
    ++rec.redelivered;
    return delivered::redelivered;
}

void ledger::record_ack_written(size_t s, uint64_t k) {
    auto& d = deliveries_[s].messages.at(k);
    d.ack = std::max(d.ack, ack_state::written);
}

void ledger::record_ack_confirmed(size_t s, uint64_t k) {
    deliveries_[s].messages.at(k).ack = ack_state::confirmed;
}

delivered ledger::record_received(const std::string& destination,
                                  const std::string& body,
                                  const std::string& message_id) {
    auto s = stream_of(destination);
    if (!s) {
        ++stray_;
        note(stray_examples_, unexpected_examples_max,
             "'" + printable_prefix(body) + "' on " + destination);
        return delivered::unexpected;
    }
    uint64_t k = 0;
    auto how = record_delivery(*s, message_id, body, k);
    if (how != delivered::unexpected) {
        record_ack_confirmed(*s, k);
    }
    return how;
}

void ledger::judge_stream(size_t s, size_t examples_max, verdict& v) const {
    const auto& r = streams_[s];
    const auto& rec = deliveries_[s];
    v.received += rec.received;
    v.redelivered += rec.redelivered;
    v.unexpected += rec.unexpected;
    for (const auto& u : rec.unexpected_ids) {
        note(v.unexpected_ids, examples_max, u);
    }
    auto n = std::max({r.sent.size(), r.confirmed.size(), rec.messages.size()});
    for (uint64_t k = 0; k < n; ++k) {
        bool sent = k < r.sent.size() && r.sent[k];
        bool confirmed = k < r.confirmed.size() && r.confirmed[k];
        auto d = k < rec.messages.size() ? rec.messages[k] : delivery{};
        if (!sent && d.count > 0) {
            v.unexpected += d.count;
            note(v.unexpected_ids, examples_max, r.id(k) + " on " + r.destination());
            continue;
        }
        v.confirmed += confirmed ? 1 : 0;
        // An ACK that went out and never came back may have landed: the message is gone
        // from the broker then, and nothing tells a lost message from a consumed one.
        if (confirmed && d.ack == ack_state::none) {
            ++v.lost;
            note(v.lost_ids, examples_max, r.id(k));
        }
        v.ack_unconfirmed += d.ack == ack_state::written ? 1 : 0;
        if (d.after_ack > 0) {
            ++v.duplicated;
            note(v.duplicated_ids, examples_max, r.id(k) + " x" + std::to_string(d.count));
        }
        v.recovered += !confirmed && d.count > 0 ? 1 : 0;
    }
    if (r.kind == stream_kind::tx) {
        judge_transactions(r, rec, n, examples_max, v);
    }
}

verdict ledger::judge(size_t examples_max) const {
    verdict v;
    v.received = stray_;
    v.unexpected = stray_;
    for (size_t i = 0; i < stray_examples_.size() && i < examples_max; ++i) {
        v.unexpected_ids.push_back(stray_examples_[i]);
    }
    for (size_t s = 0; s < streams_.size(); ++s) {
        judge_stream(s, examples_max, v);
    }
    return v;
}

} // namespace actormq::crash
