// SPDX-License-Identifier: Apache-2.0
#include "crash/traffic.hpp"

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

} // namespace

traffic::traffic(uint32_t producers, uint32_t tx_producers)
    : book_(producers, tx_producers),
      stats_(book_.streams().size()) {}

void traffic::start() {
    t0_ = test_clock::now();
    auto& streams = book_.streams();
    for (size_t i = 0; i < streams.size(); ++i) {
        auto body = streams[i].kind == stream_kind::plain ? run_plain_producer : run_tx_producer;
        threads_.emplace_back(body, std::ref(ctl_), std::cref(limits_), std::ref(streams[i]),
                              std::ref(stats_[i]));
    }
}

void traffic::stop(bool abort) {
    ctl_.stop_deadline = in(stop_grace);
    ctl_.stop = true;
    ctl_.abort = abort;
    for (auto& t : threads_) {
        t.join();
    }
    threads_.clear();
    seconds_ = seconds();
}

const char* traffic::run_phase(const traffic_phase& p) {
    if (p.early) {
        return "restart";
    }
    uint64_t target = ctl_.confirmed + p.count;
    bool by_count = test::wait_until(
        in(p.time), [&] { return ctl_.confirmed >= target; }, std::chrono::milliseconds(1));
    return by_count ? "count" : "time";
}

double traffic::seconds() const {
    return std::chrono::duration<double>(test_clock::now() - t0_).count();
}

void traffic::print() const {
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
    }
    std::printf("traffic: sent=%llu resent=%llu connects=%llu errors=%llu stalls=%llu "
                "tx-redo-refused-as-duplicate=%llu (for %.2f s)\n",
                static_cast<unsigned long long>(sent), static_cast<unsigned long long>(sum.resent),
                static_cast<unsigned long long>(sum.connects),
                static_cast<unsigned long long>(sum.errors),
                static_cast<unsigned long long>(sum.stalls),
                static_cast<unsigned long long>(sum.tx_refused_as_duplicate), seconds_);
    for (size_t i = 0; i < stats_.size(); ++i) {
        if (stats_[i].errors > 0 || stats_[i].gave_up) {
            std::printf("warning: the producer to %s%s: %s\n",
                        book_.streams()[i].destination().c_str(),
                        stats_[i].gave_up ? " gave up" : "", stats_[i].first_error.c_str());
        }
    }
}

int report(const options& o, traffic& t, run_end end) {
    auto v = t.book().judge(examples_max);
    t.print();
    if (!end.extra.empty()) {
        std::printf("%s\n", end.extra.c_str());
    }
    std::printf("%s\n%s\n", v.line(end.kills).c_str(), v.tx_line().c_str());
    if (!end.drained) {
        end.problems.push_back("the drain did not complete: 'received' is incomplete");
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
