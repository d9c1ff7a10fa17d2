// SPDX-License-Identifier: Apache-2.0
#include "crash/consumers.hpp"

#include <map>
#include <optional>

namespace actormq::crash {

namespace {

using stomp::command;
using test::test_clock;

/// One live consumer of one stream: its connection, its subscription and its ACKs in flight.
class consumer {
public:
    consumer(traffic_control& ctl,
             const consumer_limits& limits,
             ledger& book,
             size_t s,
             consumer_stats& stats)
        : ctl_(ctl),
          limits_(limits),
          book_(book),
          s_(s),
          stats_(stats),
          link_(ctl, stop_flags{ctl.consumers_stop, ctl.consumers_stop_deadline}, limits, stats),
          prefix_("a" + std::to_string(s) + "-") {}

    void run() {
        while (!done()) {
            if (!link_.connected()) {
                cut_acks();
                if (!link_.ensure() || !subscribe()) {
                    continue;
                }
                last_progress_ = test_clock::now();
            }
            if (auto f = link_.next()) {
                on_frame(*f);
            } else if (link_.connected() && !acks_.empty()
                       && test_clock::now() - last_progress_ > limits_.stall) {
                // A node that confirms no ACK for this long is stuck; a new connection
                // (and the redeliveries) shows whether it recovers.
                ++stats_.stalls;
                link_.drop();
            }
        }
        cut_acks();
        link_.drop();
    }

private:
    bool done() const {
        if (ctl_.abort || stats_.gave_up) {
            return true;
        }
        return ctl_.consumers_stop && (acks_.empty() || link_.out_of_time());
    }

    /// The ACKs in flight on a lost connection: their RECEIPTs will never come, and their
    /// ack ids mean nothing to the next connection.
    void cut_acks() {
        stats_.acks_cut += acks_.size();
        acks_.clear();
    }

    bool subscribe() {
        stomp::frame f;
        f.cmd = command::subscribe;
        f.add("destination", book_.streams()[s_].destination());
        f.add("id", "0");
        f.add("ack", "client-individual");
        f.add("activemq.prefetchSize", std::to_string(limits_.prefetch));
        std::string out;
        link_.encode(f, out);
        return link_.write(out);
    }

    void on_frame(const stomp::frame& f) {
        if (f.cmd == command::message) {
            on_message(f);
            return;
        }
        if (f.cmd == command::error) {
            link_.on_error(f);
            return;
        }
        auto n = f.cmd == command::receipt ? receipt_number(f, prefix_) : std::nullopt;
        auto it = n ? acks_.find(*n) : acks_.end();
        if (it == acks_.end()) {
            return;
        }
        if (it->second) {
            book_.record_ack_confirmed(s_, *it->second);
        }
        acks_.erase(it);
        ++stats_.ack_receipts;
        last_progress_ = test_clock::now();
    }

    /// Files the MESSAGE and, unless stopping, ACKs it with a receipt.
    void on_message(const stomp::frame& f) {
        ++stats_.received;
        uint64_t k = 0;
        auto mid = test::header_of(f, "message-id");
        auto how = book_.record_delivery(s_, mid, f.body, k);
        count(how, f);
        if (ctl_.consumers_stop) {
            return; // Left unacknowledged: the node must keep it for the drain.
        }
        auto ack = test::header_of(f, "ack");
        if (ack.empty()) {
            link_.give_up("MESSAGE without an ack header: " + test::describe(f));
            return;
        }
        auto n = next_receipt_++;
        stomp::frame a;
        a.cmd = command::ack;
        a.add("id", ack);
        a.add("receipt", prefix_ + std::to_string(n));
        std::string out;
        link_.encode(a, out);
        if (!link_.write(out)) {
            return;
        }
        ++stats_.acks;
        if (acks_.empty()) {
            last_progress_ = test_clock::now(); // The stall clock starts with the first ACK.
        }
        std::optional<uint64_t> acked;
        if (how != delivered::unexpected) {
            book_.record_ack_written(s_, k);
            acked = k;
        }
        acks_.emplace(n, acked);
    }

    void count(delivered how, const stomp::frame& f) {
        switch (how) {
            case delivered::first:
                ++ctl_.delivered;
                break;
            case delivered::redelivered:
                ++stats_.redelivered;
                break;
            case delivered::duplicated:
                if (++stats_.duplicated == 1) {
                    stats_.first_duplicate =
                        "from host " + std::to_string(link_.host()) + ": " + test::describe(f);
                }
                break;
            case delivered::unexpected:
                ++stats_.unexpected;
                break;
        }
    }

    traffic_control& ctl_;
    const consumer_limits& limits_;
    ledger& book_;
    size_t s_;
    consumer_stats& stats_;
    host_link link_;
    std::string prefix_;
    /// ACKs in flight by receipt number: the k they acknowledge (none for an unexpected
    /// MESSAGE, which is acknowledged only so that the node moves on).
    std::map<uint64_t, std::optional<uint64_t>> acks_;
    uint64_t next_receipt_ = 0;
    test_clock::time_point last_progress_ = test_clock::now();
};

} // namespace

void run_consumer(traffic_control& ctl,
                  const consumer_limits& limits,
                  ledger& book,
                  size_t s,
                  consumer_stats& stats) {
    consumer{ctl, limits, book, s, stats}.run();
}

} // namespace actormq::crash
