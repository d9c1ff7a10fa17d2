// SPDX-License-Identifier: Apache-2.0
#include "crash/producers.hpp"

#include "support/stomp_client.hpp"

#include <optional>
#include <set>

namespace actormq::crash {

namespace {

using stomp::command;
using test::in;
using test::test_clock;

/// How long a producer waits for room in a full backlog before it looks at its socket.
constexpr auto backlog_slice = std::chrono::milliseconds(100);

/// How often a producer looks at a full backlog again.
constexpr auto backlog_poll = std::chrono::milliseconds(1);

/// ERROR frames one transaction may get before the tx producer skips it.
constexpr uint32_t tx_errors_max = 3;

/// Whether the producers may start another message (or transaction).
bool backlog_has_room(const traffic_control& ctl, const producer_limits& limits) {
    return ctl.backlog() < limits.backlog_max;
}

/// Waits (at most `backlog_slice`) for room in the backlog, or for the stop or abort flag.
void await_backlog_room(const traffic_control& ctl,
                        const producer_limits& limits,
                        producer_stats& stats) {
    ++stats.backlog_waits;
    test::wait_until(
        in(backlog_slice), [&] { return ctl.abort || ctl.stop || backlog_has_room(ctl, limits); },
        backlog_poll);
}

/// The stop flags of the producers.
stop_flags producer_stop(const traffic_control& ctl) {
    return stop_flags{ctl.stop, ctl.stop_deadline};
}

/// A plain producer: keeps up to `limits.window` SENDs in flight, each with a receipt.
class plain_producer {
public:
    plain_producer(traffic_control& ctl,
                   const producer_limits& limits,
                   stream_record& rec,
                   producer_stats& stats)
        : ctl_(ctl),
          limits_(limits),
          rec_(rec),
          stats_(stats),
          link_(ctl, producer_stop(ctl), limits, stats),
          prefix_(std::to_string(rec.index) + "-") {}

    void run() {
        while (!done()) {
            if (!link_.connected()) {
                if (!link_.ensure() || !resend_all()) {
                    continue;
                }
                last_progress_ = test_clock::now();
            }
            if (!ctl_.stop && !fill()) {
                continue;
            }
            if (in_flight_.empty() && !ctl_.stop) {
                // Nothing can arrive: the window is empty because the backlog is full.
                await_backlog_room(ctl_, limits_, stats_);
                continue;
            }
            if (auto f = link_.next()) {
                on_frame(*f);
            } else if (link_.connected() && !in_flight_.empty()
                       && test_clock::now() - last_progress_ > limits_.stall) {
                // A connected node that confirms nothing for this long is stuck; a new
                // connection (and the resends) shows whether it recovers.
                ++stats_.stalls;
                link_.drop();
            }
        }
    }

private:
    bool done() const {
        if (ctl_.abort || stats_.gave_up) {
            return true;
        }
        return ctl_.stop && (in_flight_.empty() || link_.out_of_time());
    }

    /// Writes message k; false (link dropped) if the write failed.
    bool send(uint64_t k) {
        auto id = rec_.id(k);
        stomp::frame f;
        f.cmd = command::send;
        f.add("destination", rec_.destination());
        f.add("persistent", "true");
        f.add("receipt", prefix_ + std::to_string(k));
        if (limits_.duplicate_ids) {
            f.add("_AMQ_DUPL_ID", id);
        }
        f.body = rec_.body(k, limits_.body_bytes);
        f.add("content-length", std::to_string(f.body.size()));
        std::string out;
        link_.encode(f, out);
        rec_.mark_sent(k);
        return link_.write(out);
    }

    /// After a reconnect: every unconfirmed message again, with its original duplicate id;
    /// without duplicate ids none (each may have been stored or not: sending it again could
    /// store it twice).
    bool resend_all() {
        if (!limits_.duplicate_ids) {
            in_flight_.clear();
            return true;
        }
        for (auto k : in_flight_) {
            if (!send(k)) {
                return false;
            }
            ++stats_.resent;
        }
        return true;
    }

    /// Sends new messages until the window (or the backlog) is full; false if the link
    /// dropped.
    bool fill() {
        while (in_flight_.size() < limits_.window && backlog_has_room(ctl_, limits_)) {
            auto k = next_k_++;
            in_flight_.insert(k);
            if (!send(k)) {
                return false;
            }
        }
        return true;
    }

    void on_frame(const stomp::frame& f) {
        if (f.cmd == command::error) {
            link_.on_error(f);
            return;
        }
        auto k = f.cmd == command::receipt ? receipt_number(f, prefix_) : std::nullopt;
        if (k) {
            ctl_.note_receipt(link_.host());
        }
        if (k && in_flight_.erase(*k) == 1) {
            rec_.mark_confirmed(*k);
            ++ctl_.confirmed;
            last_progress_ = test_clock::now();
        }
    }

    traffic_control& ctl_;
    const producer_limits& limits_;
    stream_record& rec_;
    producer_stats& stats_;
    host_link link_;
    std::string prefix_;
    std::set<uint64_t> in_flight_;
    uint64_t next_k_ = 0;
    test_clock::time_point last_progress_ = test_clock::now();
};

/// How one attempt at a transaction ended.
enum class tx_outcome : uint8_t { committed, error, cut };

/// A tx producer: one transaction at a time, redone with the same ids until committed.
class tx_producer {
public:
    tx_producer(traffic_control& ctl,
                const producer_limits& limits,
                stream_record& rec,
                producer_stats& stats)
        : ctl_(ctl),
          limits_(limits),
          rec_(rec),
          stats_(stats),
          link_(ctl, producer_stop(ctl), limits, stats),
          prefix_("t" + std::to_string(rec.index) + "-n") {}

    void run() {
        bool pending = false; // Transaction n_ was attempted and is not committed yet.
        uint32_t errors = 0;
        while (!ctl_.abort && !stats_.gave_up && !(ctl_.stop && !pending) && !link_.out_of_time()) {
            if (!pending && !backlog_has_room(ctl_, limits_)) {
                await_backlog_room(ctl_, limits_, stats_);
                continue;
            }
            if (!link_.ensure()) {
                continue;
            }
            stats_.resent += pending ? tx_messages : 0;
            pending = true;
            auto outcome = attempt();
            if (outcome == tx_outcome::error && ++errors < tx_errors_max) {
                continue;
            }
            if (outcome != tx_outcome::cut) {
                // Committed, or refused too often: either way the next transaction starts.
                ++n_;
                pending = false;
                errors = 0;
            }
        }
    }

private:
    /// Writes BEGIN, the SENDs and COMMIT of transaction n_ and waits for the receipt.
    tx_outcome attempt() {
        auto tx = prefix_ + std::to_string(n_);
        std::string out;
        stomp::frame begin;
        begin.cmd = command::begin;
        begin.add("transaction", tx);
        link_.encode(begin, out);
        for (uint64_t k = n_ * tx_messages; k < (n_ + 1) * tx_messages; ++k) {
            stomp::frame f;
            f.cmd = command::send;
            f.add("destination", rec_.destination());
            f.add("transaction", tx);
            f.add("persistent", "true");
            f.add("_AMQ_DUPL_ID", rec_.id(k));
            f.body = rec_.body(k, limits_.body_bytes);
            f.add("content-length", std::to_string(f.body.size()));
            link_.encode(f, out);
            rec_.mark_sent(k);
        }
        stomp::frame commit;
        commit.cmd = command::commit;
        commit.add("transaction", tx);
        commit.add("receipt", tx);
        link_.encode(commit, out);
        return link_.write(out) ? await_commit() : tx_outcome::cut;
    }

    tx_outcome await_commit() {
        auto stall = in(limits_.stall);
        while (link_.connected() && !ctl_.abort && !link_.out_of_time()) {
            auto f = link_.next();
            if (f && f->cmd == command::error && refused_as_duplicate(*f)) {
                ++stats_.tx_refused_as_duplicate;
                link_.drop(); // The node closes the connection after an ERROR.
                return confirm();
            }
            if (f && f->cmd == command::error) {
                link_.on_error(*f);
                return tx_outcome::error;
            }
            if (f && receipt_number(*f, prefix_) == n_) {
                ctl_.note_receipt(link_.host());
                return confirm();
            }
            if (!f && link_.connected() && test_clock::now() >= stall) {
                ++stats_.stalls;
                link_.drop();
            }
        }
        return tx_outcome::cut;
    }

    /// Whether `error` says the node already holds transaction n_'s messages.
    bool refused_as_duplicate(const stomp::frame& error) const {
        auto expected = "duplicate message in transaction '" + prefix_ + std::to_string(n_) + "'";
        return test::header_of(error, "message") == expected;
    }

    tx_outcome confirm() {
        for (uint64_t k = n_ * tx_messages; k < (n_ + 1) * tx_messages; ++k) {
            rec_.mark_confirmed(k);
        }
        ctl_.confirmed += tx_messages;
        return tx_outcome::committed;
    }

    traffic_control& ctl_;
    const producer_limits& limits_;
    stream_record& rec_;
    producer_stats& stats_;
    host_link link_;
    std::string prefix_;
    uint64_t n_ = 0;
};

} // namespace

void run_plain_producer(traffic_control& ctl,
                        const producer_limits& limits,
                        stream_record& rec,
                        producer_stats& stats) {
    plain_producer{ctl, limits, rec, stats}.run();
}

void run_tx_producer(traffic_control& ctl,
                     const producer_limits& limits,
                     stream_record& rec,
                     producer_stats& stats) {
    tx_producer{ctl, limits, rec, stats}.run();
}

} // namespace actormq::crash
