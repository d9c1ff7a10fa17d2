// SPDX-License-Identifier: Apache-2.0
// actormq-recovery-bench: fills a journal directory with durable messages written straight
// through the journal code, then times recovering it phase by phase (docs/benchmarks.md,
// "Recovery"). A benchmark, not a test: run it by hand, three times, and quote the median.
//
//   actormq-recovery-bench fill --dir D [--messages 1000000] [--queues 1] [--body-bytes 1024]
//                               [--file-size 10485760] [--dup-ids 0|1] [--acked-percent 0]
//                               [--tx-percent 0]
//   actormq-recovery-bench recover --dir D [--restore 1]
//
// `fill` writes what a STOMP producer's persistent SENDs leave in the journal (address and
// queue "qN", destination "/queue/qN", the header persistent:true, a body of --body-bytes),
// round-robin over --queues queues; --dup-ids gives every message an _AMQ_DUPL_ID header,
// --acked-percent acks that share of them, --tx-percent sends that share in committed
// transactions of ten. `recover` prints one JSON line: the seconds of each phase, the records
// and messages found, and the peak RSS (getrusage) after the journal phases and after the
// server restore.
#include "actors/broker/server.hpp"
#include "actors/journal/journal.hpp"
#include "actors/journal/journal_store.hpp"
#include "actors/journal/recovery.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/logger.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <sys/resource.h>
#include <vector>

using namespace actormq;

namespace {

using clock_type = std::chrono::steady_clock;

/// --key value pairs after the mode; every value is a string until a mode reads it.
using options = std::map<std::string, std::string>;

uint64_t number(const options& o, const std::string& key, uint64_t fallback) {
    auto it = o.find(key);
    return it == o.end() ? fallback : std::strtoull(it->second.c_str(), nullptr, 10);
}

double since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
}

/// Peak resident set of this process so far, in MiB.
double peak_rss_mib() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

journal::store_config store_config_for(const options& o) {
    journal::store_config sc;
    sc.directory = o.at("--dir");
    sc.file_size = number(o, "--file-size", 10 * 1024 * 1024);
    return sc;
}

std::string queue_name(uint64_t i) {
    return "q" + std::to_string(i);
}

/// Encodes records into a batch and writes it once it is large enough.
struct writer {
    journal::store& st;
    std::string batch;
    uint64_t next_id = 1;
    uint64_t next_tx = 1;

    void add(journal::record_type type, std::string payload, uint64_t tx_id = 0) {
        journal::encode(journal::record{type, next_id++, tx_id, std::move(payload)}, batch);
        if (batch.size() >= 256 * 1024) {
            flush();
        }
    }

    void add_all(journal::record_type type, std::vector<std::string>& payloads) {
        for (auto& p : payloads) {
            add(type, std::move(p));
        }
        payloads.clear();
    }

    void flush() {
        if (!batch.empty()) {
            st.append(batch);
            batch.clear();
        }
    }
};

int fill(const options& o) {
    auto messages = number(o, "--messages", 1000000);
    auto queues = std::max<uint64_t>(1, number(o, "--queues", 1));
    auto body_bytes = number(o, "--body-bytes", 1024);
    bool dup_ids = number(o, "--dup-ids", 0) != 0;
    auto acked_percent = number(o, "--acked-percent", 0);
    auto tx_percent = number(o, "--tx-percent", 0);
    auto start = clock_type::now();
    journal::store st(store_config_for(o));
    auto opened = st.open(journal::corrupt_policy::refuse);
    if (!opened.error.empty() || !opened.records.empty()) {
        std::cerr << "fill: the directory must be a new, empty journal: " << opened.error << "\n";
        return 1;
    }
    writer w{st, {}, 1, 1};
    for (uint64_t q = 0; q < queues; ++q) {
        w.add(journal::record_type::add_queue,
              journal::encode_payload(journal::queue_payload{queue_name(q), queue_name(q), 0}));
    }
    std::string body(body_bytes, 'x');
    uint64_t tx = 0;
    std::vector<std::string> acks;
    for (uint64_t i = 0; i < messages; ++i) {
        auto q = queue_name(i % queues);
        journal::message_payload p{i + 1, q, "/queue/" + q, {{"persistent", "true"}}, body, {q}};
        if (dup_ids) {
            p.headers.emplace_back(duplicate_id_header, "dup-" + std::to_string(i + 1));
        }
        // Every tenth message starts a transaction of ten when its share says so.
        if (tx == 0 && i % 10 == 0 && (i / 10) % 100 < tx_percent) {
            tx = w.next_tx++;
        }
        w.add(journal::record_type::add_message, journal::encode_payload(p), tx);
        if (i % 100 < acked_percent) {
            // A consumer can only ack a transaction's message once the transaction committed.
            acks.push_back(journal::encode_payload(journal::ack_payload{q, i + 1}));
        }
        if (tx != 0 && i % 10 == 9) {
            w.add(journal::record_type::commit, journal::encode_payload(journal::tx_payload{tx}));
            tx = 0;
        }
        if (tx == 0) {
            w.add_all(journal::record_type::ack, acks);
        }
    }
    if (tx != 0) {
        w.add(journal::record_type::commit, journal::encode_payload(journal::tx_payload{tx}));
    }
    w.add_all(journal::record_type::ack, acks);
    w.flush();
    st.sync();
    std::printf("{\"mode\":\"fill\",\"messages\":%llu,\"queues\":%llu,\"records\":%llu,"
                "\"segments\":%zu,\"seconds\":%.3f}\n",
                static_cast<unsigned long long>(messages), static_cast<unsigned long long>(queues),
                static_cast<unsigned long long>(w.next_id - 1), st.segments().size(), since(start));
    return 0;
}

/// Hands the recovered state to a real server actor (as the node does after recovery) and
/// waits until every address and queue holds its messages: the stats request goes through
/// the server to every address and queue, so it is answered after their start.
bool restore(std::shared_ptr<recovered_state> rs, uint64_t& queued) {
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    auto ctx = std::make_shared<server_context>();
    ctx->log = std::make_shared<spdlog::logger>("recovery-bench");
    ctx->wire_log = ctx->log;
    auto srv = sys.spawn(server, ctx);
    caf::scoped_actor self{sys};
    bool ok = false;
    // A bench run waits for a restore of any size; the bound only stops a hung run.
    self->request(srv, std::chrono::minutes(10), recover_atom::value, std::move(rs))
        .receive([&](uint64_t) { ok = true; }, [&](caf::error&) {});
    if (ok) {
        self->request(srv, std::chrono::minutes(10), stats_atom::value)
            .receive(
                [&](std::vector<queue_stats>& qs) {
                    for (const auto& q : qs) {
                        queued += q.depth;
                    }
                },
                [&](caf::error&) { ok = false; });
    }
    caf::anon_send_exit(srv, caf::exit_reason::user_shutdown);
    return ok;
}

int recover(const options& o) {
    bool with_restore = number(o, "--restore", 1) != 0;
    auto start = clock_type::now();
    journal::store st(store_config_for(o));
    // What the journal actor does at recovery (journal.cpp, recover()).
    journal::liveness live{20000};
    journal::open_result opened;
    std::shared_ptr<recovered_state> rs;
    auto run = [&] {
        rs = std::make_shared<recovered_state>(
            recover_journal(st, live, recovery_options{}, opened));
    };
    if (number(o, "--thread", 0) != 0) {
        // As in a node: the journal actor is detached, so recovery runs on a thread of its own
        // (and mallocs from a thread arena, not the main heap).
        std::thread t{run};
        t.join();
    } else {
        run();
    }
    double journal_s = since(start);
    double journal_rss = peak_rss_mib();
    if (!rs->error.empty()) {
        std::cerr << "recover: " << rs->error << "\n";
        return 1;
    }
    auto records = rs->records;
    auto messages = rs->messages;
    auto ph = rs->phases;
    auto t = clock_type::now();
    uint64_t queued = 0;
    if (with_restore && !restore(std::move(rs), queued)) {
        std::cerr << "recover: the server did not restore the state\n";
        return 1;
    }
    double restore_s = with_restore ? since(t) : 0.0;
    std::printf("{\"mode\":\"recover\",\"records\":%llu,\"messages\":%llu,\"queued\":%llu,"
                "\"read_s\":%.3f,\"check_s\":%.3f,\"replay_s\":%.3f,\"finish_s\":%.3f,"
                "\"journal_total_s\":%.3f,\"restore_s\":%.3f,\"total_s\":%.3f,"
                "\"peak_rss_journal_mib\":%.0f,\"peak_rss_mib\":%.0f}\n",
                static_cast<unsigned long long>(records), static_cast<unsigned long long>(messages),
                static_cast<unsigned long long>(queued), ph.read, ph.check, ph.replay, ph.finish,
                journal_s, restore_s, since(start), journal_rss, peak_rss_mib());
    return 0;
}

int usage() {
    std::cerr << "usage: actormq-recovery-bench fill --dir D [--messages N] [--queues M]\n"
                 "         [--body-bytes B] [--file-size F] [--dup-ids 0|1] [--acked-percent P]\n"
                 "         [--tx-percent P]\n"
                 "       actormq-recovery-bench recover --dir D [--restore 0|1]\n";
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argc % 2 != 0) {
        return usage();
    }
    std::string mode = argv[1];
    options o;
    for (int i = 2; i + 1 < argc; i += 2) {
        o[argv[i]] = argv[i + 1];
    }
    if (o.count("--dir") == 0) {
        return usage();
    }
    try {
        if (mode == "fill") {
            return fill(o);
        }
        if (mode == "recover") {
            return recover(o);
        }
    } catch (const std::exception& e) {
        std::cerr << mode << ": " << e.what() << "\n";
        return 1;
    }
    return usage();
}
