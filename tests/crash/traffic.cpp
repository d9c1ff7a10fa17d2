// SPDX-License-Identifier: Apache-2.0
#include "crash/traffic.hpp"

#include "crash/native_clients.hpp"

#include <algorithm>
#include <cstdio>

namespace actormq::crash {

namespace {

using test::in;
using test::test_clock;

/// How long producers may take to get their last receipts once told to stop.
constexpr auto stop_grace = std::chrono::milliseconds(15000);

/// How many offending ids a failed verdict lists per category.
constexpr size_t examples_max = 10;

void print_ids(const char* what, uint64_t n, const std::vector<std::string>& ids) {
    if (n == 0) {
        return;
    }
    std::string list;
    for (const auto& id : ids) {
        list += (list.empty() ? "" : ", ") + id;
    }
    std::printf("%s (%llu, first %zu): %s\n", what, static_cast<unsigned long long>(n), ids.size(),
                list.c_str());
}

/// A `warning:` line for a client (`who`: "the producer to /queue/..") that got ERRORs or
/// gave up.
void warn(const std::string& who, const link_stats& s) {
    if (s.errors > 0 || s.gave_up) {
        std::printf("warning: %s%s: %s\n", who.c_str(), s.gave_up ? " gave up" : "",
                    s.first_error.c_str());
    }
}

} // namespace

traffic::traffic(uint32_t producers, uint32_t tx_producers, bool consumers, bool native)
    : native_(native),
      book_(producers, tx_producers),
      stats_(book_.streams().size()),
      consumer_stats_(consumers ? book_.streams().size() : 0) {
    ctl_.consuming = consumers;
}

void traffic::start() {
    t0_ = test_clock::now();
    auto& streams = book_.streams();
    auto consumer_body = native_ ? run_native_consumer : run_consumer;
    for (size_t i = 0; i < consumer_stats_.size(); ++i) {
        consumer_threads_.emplace_back(consumer_body, std::ref(ctl_), std::cref(consumer_limits_),
                                       std::ref(book_), i, std::ref(consumer_stats_[i]));
    }
    for (size_t i = 0; i < streams.size(); ++i) {
        auto body = streams[i].kind == stream_kind::plain
                        ? (native_ ? run_native_plain_producer : run_plain_producer)
                        : (native_ ? run_native_tx_producer : run_tx_producer);
        threads_.emplace_back(body, std::ref(ctl_), std::cref(limits_), std::ref(streams[i]),
                              std::ref(stats_[i]));
    }
}

void traffic::stop(bool abort) {
    ctl_.abort = abort;
    ctl_.stop_deadline = in(stop_grace);
    ctl_.stop = true;
    for (auto& t : threads_) {
        t.join();
    }
    threads_.clear();
    // The consumers go on until the producers are done, so that they take what the last
    // resends brought; the drain takes whatever is left after them.
    ctl_.consumers_stop_deadline = in(stop_grace);
    ctl_.consumers_stop = true;
    for (auto& t : consumer_threads_) {
        t.join();
    }
    consumer_threads_.clear();
    seconds_ = seconds();
}

const char* traffic::run_phase(const traffic_phase& p) {
    if (p.early) {
        return "restart";
    }
    uint64_t target = ctl_.confirmed + p.count;
    bool by_count = test::wait_until(
        in(p.time),
        [&] {
            backlog_seen_max_ = std::max(backlog_seen_max_, ctl_.backlog());
            return ctl_.confirmed >= target;
        },
        std::chrono::milliseconds(1));
    return by_count ? "count" : "time";
}

uint64_t traffic::timeouts() const {
    uint64_t n = 0;
    for (const auto& s : stats_) {
        n += s.timeouts;
    }
    for (const auto& c : consumer_stats_) {
        n += c.timeouts;
    }
    return n;
}

double traffic::seconds() const {
    return std::chrono::duration<double>(test_clock::now() - t0_).count();
}

void traffic::print(const verdict& v) const {
    uint64_t sent = 0;
    producer_stats sum;
    for (const auto& r : book_.streams()) {
        for (bool s : r.sent) {
            sent += s ? 1 : 0;
        }
    }
    for (const auto& s : stats_) {
        sum.connects += s.connects;
        sum.resent += s.resent;
        sum.errors += s.errors;
        sum.stalls += s.stalls;
        sum.tx_refused_as_duplicate += s.tx_refused_as_duplicate;
        sum.backlog_waits += s.backlog_waits;
    }
    std::printf("traffic: sent=%llu resent=%llu connects=%llu errors=%llu stalls=%llu "
                "tx-redo-refused-as-duplicate=%llu (for %.2f s)\n",
                static_cast<unsigned long long>(sent), static_cast<unsigned long long>(sum.resent),
                static_cast<unsigned long long>(sum.connects),
                static_cast<unsigned long long>(sum.errors),
                static_cast<unsigned long long>(sum.stalls),
                static_cast<unsigned long long>(sum.tx_refused_as_duplicate), seconds_);
    if (consuming()) {
        print_consumers(v, sum.backlog_waits);
    }
    for (size_t i = 0; i < stats_.size(); ++i) {
        warn("the producer to " + book_.streams()[i].destination(), stats_[i]);
    }
    for (size_t i = 0; i < consumer_stats_.size(); ++i) {
        warn("the consumer of " + book_.streams()[i].destination(), consumer_stats_[i]);
        if (!consumer_stats_[i].first_duplicate.empty()) {
            std::printf("warning: the consumer of %s got a duplicate %s\n",
                        book_.streams()[i].destination().c_str(),
                        consumer_stats_[i].first_duplicate.c_str());
        }
    }
}

void traffic::print_consumers(const verdict& v, uint64_t backlog_waits) const {
    consumer_stats sum;
    for (const auto& c : consumer_stats_) {
        sum.received += c.received;
        sum.acks += c.acks;
        sum.ack_receipts += c.ack_receipts;
        sum.acks_cut += c.acks_cut;
        sum.redelivered += c.redelivered;
        sum.duplicated += c.duplicated;
        sum.connects += c.connects;
        sum.errors += c.errors;
        sum.stalls += c.stalls;
    }
    auto u = [](uint64_t n) {
        return static_cast<unsigned long long>(n);
    };
    std::printf("consumers: received=%llu drained=%llu acked=%llu ack-receipts=%llu acks-cut=%llu "
                "ack-unconfirmed=%llu redelivered=%llu duplicated=%llu connects=%llu errors=%llu "
                "stalls=%llu backlog-max=%llu backlog-waits=%llu\n",
                u(sum.received), u(v.received > sum.received ? v.received - sum.received : 0),
                u(sum.acks), u(sum.ack_receipts), u(sum.acks_cut), u(v.ack_unconfirmed),
                u(sum.redelivered), u(sum.duplicated), u(sum.connects), u(sum.errors),
                u(sum.stalls), u(backlog_seen_max_), u(backlog_waits));
}

int report(const options& o, traffic& t, run_end end) {
    auto v = t.book().judge(examples_max);
    t.print(v);
    if (!end.extra.empty()) {
        std::printf("%s\n", end.extra.c_str());
    }
    std::printf("%s\n%s\n", v.line(end.kills).c_str(), v.tx_line().c_str());
    if (!end.drained) {
        end.problems.push_back("the drain did not complete: 'received' is incomplete");
    }
    if (auto n = t.timeouts(); n > 0) {
        end.problems.push_back(std::to_string(n)
                               + " blocking calls of native clients timed out (callTimeout): "
                                 "the client did not recover from a failover in time");
    }
    for (const auto& p : end.problems) {
        std::printf("problem: %s\n", p.c_str());
    }
    if (v.ok() && end.problems.empty()) {
        return 0;
    }
    print_ids("lost", v.lost, v.lost_ids);
    print_ids("duplicated", v.duplicated, v.duplicated_ids);
    print_ids("unexpected", v.unexpected, v.unexpected_ids);
    print_ids("partial tx", v.tx_partial, v.partial_ids);
    for (const auto& log : end.logs) {
        std::printf("node log: %s\n", log.c_str());
    }
    std::printf("replay: %s\n", replay_command(o).c_str());
    return 1;
}

} // namespace actormq::crash
