// SPDX-License-Identifier: Apache-2.0
#pragma once

// The split-brain sampler of the replication and ring modes (docs/testing.md): two STOMP ports
// that must never both serve one node id at once (a replicating live and its backup, a ring
// node and its colocated backup on the neighbour), probed in turn on a thread of its own.

#include "support/wait.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace actormq::crash {

/// One STOMP login to 127.0.0.1:`port` from 127.0.0.2: true if CONNECTED came in `wait`.
/// The source address differs from the destination's, so a probe of a port nobody holds can
/// never connect to itself (a loopback connect from an ephemeral port to the same port can)
/// and so never keeps the port from a node about to bind it. Closed with a reset, so that
/// thousands of probes leave no TIME_WAIT sockets behind.
bool answers_connect(uint16_t port, std::chrono::milliseconds wait);

/// Probes a and b in turn, every `sample_gap`, on its own thread, and records each time both
/// served at once. A node serves in one stretch per *epoch* (the main thread starts a new
/// epoch with every signal and start it gives the node): a primary serves until it dies or
/// steps down, a backup from its activation until it dies. So when b answered CONNECTED
/// between two samples of a that both answered it in the same epoch, a served all along and
/// both served at b's sample: an overlap. A sample whose epoch changed while it ran is
/// discarded, and a node whose probes are off (frozen) gives none.
class serving_sampler {
public:
    /// The pause between two rounds (one probe of each port), and how long one probe waits
    /// for CONNECTED before it counts the port as not serving.
    static constexpr std::chrono::milliseconds sample_gap{2};
    static constexpr std::chrono::milliseconds probe_wait{500};

    struct totals {
        uint64_t samples = 0;             ///< Probes whose answer counts.
        std::array<uint64_t, 2> served{}; ///< Of those, CONNECTED from a and from b.
        uint64_t rounds = 0;              ///< Rounds (a probe of each).
        uint64_t rounds_none = 0;         ///< Rounds in which neither served (a failover).
        uint64_t rounds_both = 0;         ///< Rounds in which both answered CONNECTED.
        uint64_t discarded = 0;           ///< Probes across a signal or start of their node.
    };

    ~serving_sampler() { stop(); }

    /// Node n's STOMP port (known after its first start).
    void set_port(size_t n, uint16_t port) { nodes_[n].port = port; }

    /// Called by the main thread just before it signals or starts node n; `probe` false stops
    /// the probes of n (a frozen node answers nothing and would only hold the sampler up).
    void change(size_t n, bool probe) {
        nodes_[n].probe = probe;
        ++nodes_[n].epoch;
    }

    /// The fault under way, named in overlap reports.
    void set_fault(uint32_t i) { fault_ = i; }

    void start() {
        t0_ = test::test_clock::now();
        thread_ = std::thread([this] { run(); });
    }

    void stop() {
        {
            std::lock_guard<std::mutex> guard{mtx_};
            stop_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) {
            thread_.join();
        }
    }

    /// The counts; read after `stop`.
    const totals& counts() const { return totals_; }

    /// One `two servers:` problem line per episode of overlapping samples (those less than
    /// a second apart during one fault), with the nodes' wall-clock times, so that the lines
    /// can be found in the nodes' logs; read after `stop`.
    std::vector<std::string> overlaps() const {
        std::vector<std::string> out;
        for (const auto& e : episodes_) {
            char buf[300];
            std::snprintf(buf, sizeof buf,
                          "two servers: %s answered CONNECTED while %s served before and after "
                          "it, %llu sample(s) from %s to %s (%.3f-%.3f s into the run, fault %u)",
                          e.between == 0 ? "a" : "b", e.between == 0 ? "b" : "a",
                          static_cast<unsigned long long>(e.samples), e.first_wall.c_str(),
                          e.last_wall.c_str(), e.first_at, e.last_at, e.fault);
            out.emplace_back(buf);
        }
        return out;
    }

    /// How many samples overlapped.
    uint64_t overlap_samples() const {
        uint64_t n = 0;
        for (const auto& e : episodes_) {
            n += e.samples;
        }
        return n;
    }

private:
    struct node {
        std::atomic<uint16_t> port{0};
        std::atomic<uint64_t> epoch{0};
        std::atomic<bool> probe{true};
    };
    struct sample {
        bool valid = false;
        bool serving = false;
        uint64_t epoch = 0;
    };
    /// Node `other` served at its last sample (in `epoch`) when the other node served at `at`;
    /// decided by other's next sample.
    struct suspicion {
        bool open = false;
        size_t other = 0;
        uint64_t epoch = 0;
        double at = 0;
        uint32_t fault = 0;
        std::string wall;
    };
    /// Overlapping samples of one fault, less than a second apart.
    struct episode {
        uint32_t fault = 0;
        size_t between = 0;
        double first_at = 0;
        double last_at = 0;
        std::string first_wall;
        std::string last_wall;
        uint64_t samples = 0;
    };

    /// The local time as the nodes' log lines write it (HH:MM:SS.mmm).
    static std::string wall_clock() {
        auto now = std::chrono::system_clock::now();
        auto t = std::chrono::system_clock::to_time_t(now);
        auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count()
            % 1000;
        std::tm tm{};
        ::localtime_r(&t, &tm);
        char buf[32];
        std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03lld", tm.tm_hour, tm.tm_min, tm.tm_sec,
                      static_cast<long long>(ms));
        return buf;
    }

    void run() {
        std::unique_lock<std::mutex> lock{mtx_};
        while (!stop_) {
            lock.unlock();
            bool served[2] = {probe(0), probe(1)};
            ++totals_.rounds;
            totals_.rounds_none += !served[0] && !served[1] ? 1 : 0;
            totals_.rounds_both += served[0] && served[1] ? 1 : 0;
            lock.lock();
            // The pace of the samples, not a synchronisation: stop() wakes it at once.
            cv_.wait_for(lock, sample_gap, [this] { return stop_; });
        }
    }

    /// One probe of node n, judged against the last sample of the other; whether it served.
    bool probe(size_t n) {
        auto& nd = nodes_[n];
        uint64_t epoch = nd.epoch;
        if (!nd.probe || nd.port == 0) {
            forget(n);
            return false;
        }
        double at = std::chrono::duration<double>(test::test_clock::now() - t0_).count();
        bool serving = answers_connect(nd.port, probe_wait);
        if (nd.epoch != epoch) {
            ++totals_.discarded;
            forget(n);
            return false;
        }
        ++totals_.samples;
        totals_.served[n] += serving ? 1 : 0;
        if (open_.open && open_.other == n) {
            if (serving && epoch == open_.epoch) {
                note_overlap(1 - n);
            }
            open_.open = false;
        }
        const auto& other = last_[1 - n];
        if (serving && other.valid && other.serving) {
            open_ = suspicion{true, 1 - n, other.epoch, at, fault_.load(), wall_clock()};
        }
        last_[n] = sample{true, serving, epoch};
        return serving;
    }

    /// Node `between` answered CONNECTED between two samples of the other that both did (the
    /// open suspicion): adds it to the episode of its fault, or opens a new episode.
    void note_overlap(size_t between) {
        if (!episodes_.empty() && episodes_.back().fault == open_.fault
            && open_.at - episodes_.back().last_at < 1.0) {
            auto& e = episodes_.back();
            e.last_at = open_.at;
            e.last_wall = open_.wall;
            ++e.samples;
            return;
        }
        episodes_.push_back(
            episode{open_.fault, between, open_.at, open_.at, open_.wall, open_.wall, 1});
    }

    /// Node n gave no sample: nothing before it chains to what comes after.
    void forget(size_t n) {
        last_[n].valid = false;
        if (open_.open && open_.other == n) {
            open_.open = false;
        }
    }

    std::array<node, 2> nodes_;
    std::atomic<uint32_t> fault_{0};
    std::array<sample, 2> last_;
    suspicion open_;
    totals totals_;
    std::vector<episode> episodes_;
    test::test_clock::time_point t0_ = test::test_clock::now();
    std::mutex mtx_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_;
};

} // namespace actormq::crash
