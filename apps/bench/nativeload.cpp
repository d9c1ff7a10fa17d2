// SPDX-License-Identifier: Apache-2.0
// actormq-nativeload: the shared kit's stompload (../shared/bench/stompload.cpp) for the native
// protocol, written with the client library as an application would (docs/benchmarks.md,
// "Native protocol against STOMP"). Same options, same message layout (run id, sequence number
// and CLOCK_MONOTONIC send time in the first 51 bytes of the body), same exactly-once check by
// sequence number, and the same one JSON line on stdout, so that apps/bench/compare_native.sh
// can put the two side by side against one node in one run.
//
// Options (all --key value; the STOMP meaning in brackets where it differs):
//   --host 127.0.0.1  --port 61617  --dest /queue/nativeload   (/queue/ and /topic/ prefixes are
//                     dropped: the native address is the name behind them)
//   --login USER --passcode PASS
//   --producers 1 --consumers 1 --size 1024 --count 100000
//   --persistent 0|1  durable messages
//   --receipt 0|1     1: every send is a blocking send (the server confirms it; RECEIPT per SEND)
//   --inflight 1      with --receipt 1 and > 1: that many asynchronous sends awaiting confirmation
//   --ack auto|client-individual|client
//                     auto: the consumer is a pre-acknowledge one (preAcknowledge=true,
//                     docs/client.md): the server acknowledges each message as it delivers it
//                     and the consumer sends no ack, as STOMP's ack:auto; the other two
//                     acknowledge each message individually without confirmation
//                     (blockOnAcknowledge=false), the way a JMS client in CLIENT_ACKNOWLEDGE
//                     mode does
//   --prefetch 0      > 0: consumerWindowSize = prefetch x the delivery packet's size
//   --idle 20 --timeout 600 --label NAME --drain 0|1   as stompload
//   --url-params K=V&K=V   more connection URL parameters (docs/client.md), e.g.
//                     producerWindowSize=-1
#include <actormq/client/client.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace ac = actormq::client;

namespace {

int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

/// The command line; the defaults are stompload's.
struct options {
    std::string host = "127.0.0.1";
    int port = 61617;
    std::string dest = "/queue/nativeload";
    std::string login;
    std::string passcode;
    int producers = 1;
    int consumers = 1;
    int size = 1024;
    long long count = 100000;
    bool persistent = false;
    bool receipt = false;
    int inflight = 1;
    std::string ack = "auto";
    int prefetch = 0;
    double idle = 20;
    double timeout = 600;
    std::string label;
    bool drain = false;
    std::string url_params;
};

options opt;

/// Bytes of the body that carry the run id, the sequence number and the send time.
constexpr int stamp_len = 51;

/// A deliver packet's bytes besides the body (header, ids, message fields) for a message
/// without headers, rounded up: what --prefetch multiplies.
constexpr int deliver_overhead = 96;

std::atomic<bool> g_stop{false};
std::atomic<long long> g_unique{0};
std::atomic<long long> g_dups{0};
std::atomic<long long> g_foreign{0};
std::atomic<long long> g_bad{0};
std::atomic<int64_t> g_last_rx_ns{0};
std::atomic<int> g_errors{0};
std::atomic<int> g_pdone{0};
std::mutex g_err_mu;
std::vector<std::string> g_err_msgs;
std::vector<std::atomic<uint8_t>>* g_seen = nullptr;
uint64_t g_runid = 0;

void record_error(const std::string& m) {
    g_errors++;
    std::lock_guard<std::mutex> lk(g_err_mu);
    if (g_err_msgs.size() < 8) {
        g_err_msgs.push_back(m);
    }
    std::fprintf(stderr, "nativeload: %s\n", m.c_str());
}

void put_hex16(char* p, uint64_t v) {
    static const char* digits = "0123456789abcdef";
    for (int i = 15; i >= 0; --i) {
        p[i] = digits[v & 15];
        v >>= 4;
    }
}

bool get_hex16(const char* p, uint64_t& v) {
    v = 0;
    for (int i = 0; i < 16; ++i) {
        char c = p[i];
        unsigned x = 0;
        if (c >= '0' && c <= '9') {
            x = unsigned(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            x = unsigned(c - 'a' + 10);
        } else {
            return false;
        }
        v = (v << 4) | x;
    }
    return true;
}

/// The native address of a STOMP destination: the name behind /queue/ or /topic/.
std::string address_of(const std::string& dest) {
    for (const char* prefix : {"/queue/", "/topic/"}) {
        if (dest.rfind(prefix, 0) == 0) {
            return dest.substr(std::strlen(prefix));
        }
    }
    return dest;
}

std::string url() {
    std::string u = "tcp://" + opt.host + ":" + std::to_string(opt.port)
                    + "?callTimeout=" + std::to_string(int64_t(opt.idle * 1000));
    if (opt.prefetch > 0) {
        u += "&consumerWindowSize=" + std::to_string(opt.prefetch * (opt.size + deliver_overhead));
    }
    if (!opt.url_params.empty()) {
        u += "&" + opt.url_params;
    }
    return u;
}

std::shared_ptr<ac::connection> connect(const std::string& who) {
    try {
        ac::connection_factory cf(url());
        return cf.create_connection(opt.login, opt.passcode);
    } catch (const std::exception& e) {
        record_error(who + ": " + e.what());
        return nullptr;
    }
}

struct producer_result {
    std::vector<int64_t> send_lat; ///< confirmation round trips, ns
    int64_t t_done = 0;
    long long sent = 0;
};

/// Sends messages first .. first+n-1 (sequence numbers) on its own connection.
void run_producer(int id,
                  long long first,
                  long long n,
                  producer_result* res,
                  std::atomic<int>* ready,
                  std::atomic<bool>* go) {
    std::string who = "producer" + std::to_string(id);
    auto conn = connect(who);
    std::shared_ptr<ac::session> session;
    std::shared_ptr<ac::producer> prod;
    if (conn) {
        try {
            session = conn->create_session(false);
            prod = session->create_producer(address_of(opt.dest));
        } catch (const std::exception& e) {
            record_error(who + ": " + e.what());
        }
    }
    (*ready)++;
    while (!go->load()) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    if (!prod) {
        res->t_done = now_ns();
        g_pdone++;
        return;
    }
    ac::message m;
    m.durable = opt.persistent;
    m.body.assign(size_t(std::max(opt.size, stamp_len)), 'x');
    m.body[16] = ' ';
    m.body[33] = ' ';
    m.body[50] = ' ';
    put_hex16(&m.body[0], g_runid);
    const bool async = opt.receipt && opt.inflight > 1;
    const bool timed = opt.receipt;
    if (timed) {
        res->send_lat.reserve(size_t(n));
    }
    // Asynchronous confirmed sends: at most --inflight awaiting their answer.
    std::mutex mu;
    std::condition_variable cv;
    long long outstanding = 0;
    std::vector<int64_t> sent_at(async ? size_t(n) : 0);
    try {
        for (long long i = 0; i < n && !g_stop.load(std::memory_order_relaxed); ++i) {
            put_hex16(&m.body[17], uint64_t(first + i));
            int64_t t = now_ns();
            put_hex16(&m.body[34], uint64_t(t));
            m.timestamp_ms = 0;
            if (async) {
                {
                    std::unique_lock<std::mutex> l(mu);
                    cv.wait(l, [&] { return outstanding < opt.inflight; });
                    ++outstanding;
                }
                sent_at[size_t(i)] = t;
                prod->send_async(m, [&, i](std::exception_ptr e) {
                    int64_t done = now_ns();
                    std::lock_guard<std::mutex> l(mu);
                    if (e) {
                        try {
                            std::rethrow_exception(e);
                        } catch (const std::exception& x) {
                            record_error(who + ": " + x.what());
                        }
                        g_stop = true;
                    }
                    res->send_lat.push_back(done - sent_at[size_t(i)]);
                    --outstanding;
                    cv.notify_all();
                });
            } else {
                prod->send(m);
                if (timed) {
                    res->send_lat.push_back(now_ns() - t);
                }
            }
            res->sent = i + 1;
        }
        if (async) {
            std::unique_lock<std::mutex> l(mu);
            cv.wait(l, [&] { return outstanding == 0; });
        }
    } catch (const std::exception& e) {
        record_error(who + ": " + e.what());
        g_stop = true;
    }
    // Closing the session is a blocking call that the server answers after every send before
    // it (as JMS's close); the connection's own close only says goodbye and does not wait.
    try {
        session->close();
    } catch (const std::exception& e) {
        record_error(who + ": close: " + e.what());
    }
    conn->close();
    res->t_done = now_ns();
    g_pdone++;
}

struct consumer_result {
    std::vector<int64_t> lat; ///< end to end, ns
    long long received = 0;
};

void run_consumer(int id, consumer_result* res, std::atomic<int>* ready) {
    std::string who = "consumer" + std::to_string(id);
    auto conn = connect(who);
    std::shared_ptr<ac::consumer> cons;
    if (conn) {
        try {
            cons = conn->create_session(false)->create_consumer(address_of(opt.dest));
            conn->start();
        } catch (const std::exception& e) {
            record_error(who + ": " + e.what());
            cons.reset();
        }
    }
    (*ready)++;
    if (!cons) {
        return;
    }
    const long long total = opt.count;
    const bool pre_ack = opt.ack == "auto";
    res->lat.reserve(size_t(total / std::max(1, opt.consumers) + 1024));
    try {
        while (!g_stop.load(std::memory_order_relaxed)) {
            if (g_unique.load() >= total && !opt.drain) {
                break;
            }
            auto r = cons->receive(std::chrono::milliseconds(100));
            if (!r) {
                continue;
            }
            int64_t t = now_ns();
            res->received++;
            g_last_rx_ns.store(t, std::memory_order_relaxed);
            uint64_t run = 0;
            uint64_t seq = 0;
            uint64_t ts = 0;
            const auto& b = r->body;
            if (b.size() >= size_t(stamp_len) && get_hex16(b.data(), run)
                && get_hex16(b.data() + 17, seq) && get_hex16(b.data() + 34, ts)) {
                if (run != g_runid || opt.drain) {
                    g_foreign++;
                } else if (seq >= uint64_t(total)) {
                    g_bad++;
                } else if ((*g_seen)[seq].exchange(1, std::memory_order_relaxed) != 0) {
                    g_dups++;
                } else {
                    g_unique++;
                    res->lat.push_back(t - int64_t(ts));
                }
            } else {
                g_foreign++;
            }
            if (!pre_ack) {
                cons->acknowledge(*r); // pre-acknowledge: the server did, as STOMP's ack:auto
            }
        }
    } catch (const std::exception& e) {
        record_error(who + ": " + e.what());
        g_stop = true;
    }
    conn->close();
}

struct pct {
    double p50 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
    size_t n = 0;
};

pct percentiles(std::vector<int64_t>& v) {
    pct p;
    p.n = v.size();
    if (v.empty()) {
        return p;
    }
    std::sort(v.begin(), v.end());
    auto at = [&](double q) {
        size_t i = size_t(q * double(v.size() - 1) + 0.5);
        return double(v[std::min(i, v.size() - 1)]) / 1000.0;
    };
    p.p50 = at(0.50);
    p.p99 = at(0.99);
    p.p999 = at(0.999);
    p.max = double(v.back()) / 1000.0;
    long double s = 0;
    for (auto x : v) {
        s += x;
    }
    p.mean = double(s / v.size()) / 1000.0;
    return p;
}

std::string pct_json(const pct& p) {
    char b[256];
    std::snprintf(b, sizeof b,
                  "{\"n\":%zu,\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}",
                  p.n, p.p50, p.p99, p.p999, p.max, p.mean);
    return b;
}

std::string jstr(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += c;
        } else if ((unsigned char)c < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", c);
            o += b;
        } else {
            o += c;
        }
    }
    return o + "\"";
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "see the comment at the top of apps/bench/nativeload.cpp for options\n");
    std::exit(2);
}

void parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        if (k == "-h" || k == "--help" || i + 1 >= argc) {
            usage();
        }
        std::string v = argv[++i];
        auto flag = v == "1" || v == "true";
        if (k == "--host") {
            opt.host = v;
        } else if (k == "--port") {
            opt.port = std::atoi(v.c_str());
        } else if (k == "--dest") {
            opt.dest = v;
        } else if (k == "--login") {
            opt.login = v;
        } else if (k == "--passcode") {
            opt.passcode = v;
        } else if (k == "--producers") {
            opt.producers = std::atoi(v.c_str());
        } else if (k == "--consumers") {
            opt.consumers = std::atoi(v.c_str());
        } else if (k == "--size") {
            opt.size = std::atoi(v.c_str());
        } else if (k == "--count") {
            opt.count = std::atoll(v.c_str());
        } else if (k == "--persistent") {
            opt.persistent = flag;
        } else if (k == "--receipt") {
            opt.receipt = flag;
        } else if (k == "--inflight") {
            opt.inflight = std::atoi(v.c_str());
        } else if (k == "--ack") {
            opt.ack = v;
        } else if (k == "--prefetch") {
            opt.prefetch = std::atoi(v.c_str());
        } else if (k == "--batch") {
            // stompload's write coalescing; the client library writes each packet itself.
        } else if (k == "--idle") {
            opt.idle = std::atof(v.c_str());
        } else if (k == "--timeout") {
            opt.timeout = std::atof(v.c_str());
        } else if (k == "--label") {
            opt.label = v;
        } else if (k == "--drain") {
            opt.drain = flag;
        } else if (k == "--url-params") {
            opt.url_params = v;
        } else {
            std::fprintf(stderr, "unknown option %s\n", k.c_str());
            usage();
        }
    }
    if (opt.ack != "auto" && opt.ack != "client" && opt.ack != "client-individual") {
        usage();
    }
}

} // namespace

int main(int argc, char** argv) {
    parse(argc, argv);
    if (opt.drain) {
        opt.producers = 0;
        opt.consumers = std::max(1, opt.consumers);
    }
    // The connection URL says how each send and ack goes (docs/client.md): a send blocks
    // exactly when --receipt 1 asks for a confirmation per send.
    std::string blocking = opt.receipt && opt.inflight <= 1 ? "true" : "false";
    std::string params = "blockOnDurableSend=" + blocking + "&blockOnNonDurableSend=" + blocking;
    if (opt.ack == "auto") {
        // STOMP's ack:auto is Artemis's pre-acknowledge: the server acknowledges at delivery.
        params += "&preAcknowledge=true";
    }
    opt.url_params = opt.url_params.empty() ? params : params + "&" + opt.url_params;
    std::random_device rd;
    g_runid = (uint64_t(rd()) << 32) ^ rd() ^ uint64_t(now_ns());
    std::vector<std::atomic<uint8_t>> seen(size_t(std::max(0LL, opt.count)));
    for (auto& s : seen) {
        s.store(0, std::memory_order_relaxed);
    }
    g_seen = &seen;

    std::atomic<int> cready{0};
    std::atomic<int> pready{0};
    std::atomic<bool> go{false};
    std::vector<consumer_result> cres(size_t(opt.consumers));
    std::vector<producer_result> pres(size_t(opt.producers));
    std::vector<std::thread> th;
    for (int i = 0; i < opt.consumers; ++i) {
        th.emplace_back(run_consumer, i, &cres[size_t(i)], &cready);
    }
    while (cready.load() < opt.consumers) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    long long per = opt.producers ? opt.count / opt.producers : 0;
    long long extra = opt.producers ? opt.count % opt.producers : 0;
    long long first = 0;
    for (int i = 0; i < opt.producers; ++i) {
        long long n = per + (i < extra ? 1 : 0);
        th.emplace_back(run_producer, i, first, n, &pres[size_t(i)], &pready, &go);
        first += n;
    }
    while (pready.load() < opt.producers) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    int64_t t0 = now_ns();
    g_last_rx_ns = t0;
    go = true;
    const int64_t total = opt.count;
    for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        int64_t t = now_ns();
        if (!opt.drain && g_unique.load() >= total) {
            break;
        }
        if (opt.consumers == 0 && g_pdone.load() >= opt.producers) {
            break;
        }
        if (opt.consumers == 0) {
            g_last_rx_ns = t;
        }
        if (g_stop.load()) {
            break;
        }
        if (double(t - g_last_rx_ns.load()) / 1e9 > opt.idle) {
            if (!opt.drain) {
                record_error("idle timeout: no message for " + std::to_string(opt.idle) + "s");
            }
            g_stop = true;
            break;
        }
        if (double(t - t0) / 1e9 > opt.timeout) {
            record_error("overall timeout");
            g_stop = true;
            break;
        }
    }
    int64_t t_end = opt.drain ? g_last_rx_ns.load()
                              : (g_unique.load() >= total ? g_last_rx_ns.load() : now_ns());
    const bool prod_only = opt.consumers == 0 && !opt.drain;
    g_stop = true;
    for (auto& t : th) {
        t.join();
    }

    std::vector<int64_t> lat;
    std::vector<int64_t> slat;
    long long received = 0;
    long long sent = 0;
    int64_t t_prod = t0;
    for (auto& r : cres) {
        lat.insert(lat.end(), r.lat.begin(), r.lat.end());
        received += r.received;
    }
    for (auto& r : pres) {
        slat.insert(slat.end(), r.send_lat.begin(), r.send_lat.end());
        sent += r.sent;
        t_prod = std::max(t_prod, r.t_done);
    }
    if (prod_only) {
        t_end = t_prod;
    }
    double el = double(t_end - t0) / 1e9;
    double pel = double(t_prod - t0) / 1e9;
    long long uniq = g_unique.load();
    if (!opt.drain && !prod_only && uniq < total) {
        // Which ones: the first few missing sequence numbers, for a failed run's diagnosis.
        std::string missing;
        int listed = 0;
        for (int64_t s = 0; s < total && listed < 10; ++s) {
            if (seen[size_t(s)].load() == 0) {
                missing += (listed++ ? "," : "") + std::to_string(s);
            }
        }
        std::fprintf(stderr, "nativeload: missing sequence numbers (first 10): %s\n",
                     missing.c_str());
    }
    auto e2e = percentiles(lat);
    auto snd = percentiles(slat);
    int size = std::max(opt.size, stamp_len);
    std::string out = "{";
    out += "\"label\":" + jstr(opt.label) + ",\"protocol\":\"native\",\"host\":" + jstr(opt.host)
           + ",\"port\":" + std::to_string(opt.port);
    out += ",\"dest\":" + jstr(opt.dest) + ",\"producers\":" + std::to_string(opt.producers)
           + ",\"consumers\":" + std::to_string(opt.consumers) + ",\"size\":" + std::to_string(size)
           + ",\"count\":" + std::to_string(opt.count)
           + ",\"persistent\":" + (opt.persistent ? "true" : "false") + ",\"receipt\":"
           + (opt.receipt ? "true" : "false") + ",\"inflight\":" + std::to_string(opt.inflight)
           + ",\"ack\":" + jstr(opt.ack) + ",\"prefetch\":" + std::to_string(opt.prefetch);
    long long counted = opt.drain ? received : prod_only ? sent : uniq;
    char b[512];
    std::snprintf(b, sizeof b,
                  ",\"sent\":%lld,\"received\":%lld,\"unique\":%lld,\"duplicates\":%lld,"
                  "\"lost\":%lld,\"foreign\":%lld,\"bad_seq\":%lld,\"elapsed_s\":%.3f,"
                  "\"msgs_per_s\":%.0f,\"mb_per_s\":%.2f,\"produce_s\":%.3f,"
                  "\"produce_msgs_per_s\":%.0f",
                  sent, received, uniq, g_dups.load(),
                  (opt.drain || prod_only) ? -1LL : (long long)(total - uniq), g_foreign.load(),
                  g_bad.load(), el, el > 0 ? double(counted) / el : 0.0,
                  el > 0 ? double(counted) * size / el / 1e6 : 0.0, pel,
                  pel > 0 ? double(sent) / pel : 0.0);
    out += b;
    out += ",\"e2e_us\":" + pct_json(e2e) + ",\"receipt_rtt_us\":" + pct_json(snd);
    out += ",\"errors\":" + std::to_string(g_errors.load()) + ",\"error_msgs\":[";
    for (size_t i = 0; i < g_err_msgs.size(); ++i) {
        out += (i ? "," : "") + jstr(g_err_msgs[i]);
    }
    bool ok =
        (!opt.drain && !prod_only && uniq == total && g_dups.load() == 0 && g_errors.load() == 0)
        || ((opt.drain || (prod_only && sent == total)) && g_errors.load() == 0);
    out += std::string("],\"ok\":") + (ok ? "true" : "false") + "}";
    std::printf("%s\n", out.c_str());
    return ok ? 0 : 1;
}
