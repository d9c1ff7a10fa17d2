// SPDX-License-Identifier: Apache-2.0
#include "crash/options.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

namespace actormq::crash {

const char* const usage =
    "usage: actormq-crash [--pair [--native] | --replication [--partitions M] | --ring]\n"
    "                     [--paging] [--sync-sends]\n"
    "                     [--kills N]\n"
    "                     [--producers P]\n"
    "                     [--tx-producers T] [--seed S] [--consumers | --no-consumers]\n"
    "                     [--dir DIR] [--keep] [--node PATH] [--set KEY=VALUE ...]\n"
    "  --pair             a shared-store primary/backup pair instead of one node: each kill\n"
    "                     hits the node that serves, and the other one takes over\n"
    "  --native           with --pair: producers and consumers are native clients (the client\n"
    "                     library, ha=true, duplicate ids) that fail over by themselves\n"
    "  --replication      a replicating live/backup pair and a voter: SIGKILL or SIGSTOP of\n"
    "                     the live (the backup takes over), SIGKILL of a syncing backup\n"
    "  --ring             a ring of three colocated nodes (a, b, c; each live, each running\n"
    "                     the backup of the next): SIGKILL of a ring node at random, clients\n"
    "                     of a follow it to its backup on b and back\n"
    "  --partitions M     with --replication: M network partitions besides the N kills\n"
    "                     (the live cut off, the backup cut off, the voter cut off)\n"
    "  --sync-sends       plain producers send one SEND at a time without duplicate ids and\n"
    "                     never again after a reconnect (the send lane's traffic): a message\n"
    "                     whose RECEIPT was lost may be stored once or not at all\n"
    "  --paging           every address pages past 64 KiB (PAGE, 64 KiB page files): most\n"
    "                     messages the kills hit sit in page files (with --replication and\n"
    "                     --ring, the colocated backups' too, replicated)\n"
    "  --consumers        one live consumer per producer's queue consumes (client-individual,\n"
    "                     ACKs with receipts) while the kills go on (default with --pair and\n"
    "                     --replication)\n"
    "  --no-consumers     only the final drain consumes (default of the single node)\n"
    "  --kills N          SIGKILLs (default 5); with --replication, faults of any kind\n"
    "  --producers P      plain producers, one connection each (default 2)\n"
    "  --tx-producers T   transaction producers (default 1)\n"
    "  --seed S           seed of the fault schedule (default: random, printed)\n"
    "  --dir DIR          run in DIR (created; must be empty) and keep it\n"
    "  --keep             keep the run's directory even when the verdict is clean\n"
    "  --node PATH        the actormq-node binary (default: $ACTORMQ_NODE)\n"
    "  --set KEY=VALUE    passed to every node start as --set KEY=VALUE (repeatable)\n"
    "exit status: 0 clean verdict, 1 a failed verdict or a broker problem, 2 usage or setup\n";

namespace {

/// Parses a decimal number; false unless all of `s` is one.
bool parse_u64(const char* s, uint64_t& out) {
    char* end = nullptr;
    errno = 0;
    auto v = std::strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || *s == '-') {
        return false;
    }
    out = v;
    return true;
}

bool parse_u32(const char* s, uint32_t& out) {
    uint64_t v = 0;
    if (!parse_u64(s, v) || v > 100000) {
        return false;
    }
    out = static_cast<uint32_t>(v);
    return true;
}

/// Parses the option `a` with its value `v` (nullptr: none left) into `o`.
bool parse_valued(const std::string& a, const char* v, options& o) {
    if (v == nullptr) {
        return false;
    }
    if (a == "--kills") {
        return parse_u32(v, o.kills);
    }
    if (a == "--partitions") {
        return parse_u32(v, o.partitions);
    }
    if (a == "--producers") {
        return parse_u32(v, o.producers);
    }
    if (a == "--tx-producers") {
        return parse_u32(v, o.tx_producers);
    }
    if (a == "--seed") {
        return o.seed_given = parse_u64(v, o.seed);
    }
    if (a == "--dir") {
        o.dir = v;
    } else if (a == "--node") {
        o.node = v;
    } else if (a == "--set") {
        o.sets.emplace_back(v);
    } else {
        return false;
    }
    return true;
}

} // namespace

bool parse_cli(int argc, char** argv, options& o) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::fputs(usage, stdout);
            std::exit(0);
        }
        if (a == "--native" || a == "--paging" || a == "--sync-sends") {
            (a == "--native" ? o.native : a == "--paging" ? o.paging : o.sync_sends) = true;
            continue;
        }
        if (a == "--keep" || a == "--pair" || a == "--replication" || a == "--ring") {
            (a == "--keep"          ? o.keep
             : a == "--pair"        ? o.pair
             : a == "--replication" ? o.replication
                                    : o.ring) = true;
            continue;
        }
        if (a == "--consumers" || a == "--no-consumers") {
            o.consumers_given = a == "--consumers";
            continue;
        }
        if (!parse_valued(a, i + 1 < argc ? argv[i + 1] : nullptr, o)) {
            std::fprintf(stderr, "actormq-crash: bad or incomplete argument '%s'\n%s", a.c_str(),
                         usage);
            return false;
        }
        ++i;
    }
    if (int(o.pair) + int(o.replication) + int(o.ring) > 1) {
        std::fprintf(stderr,
                     "actormq-crash: --pair, --replication and --ring exclude each other\n");
        return false;
    }
    if (o.paging) {
        // Small limits so that nearly everything past the first few hundred messages pages.
        for (const char* s : {"address-settings.\"#\".address-full-policy=\"PAGE\"",
                              "address-settings.\"#\".max-size-bytes=65536",
                              "address-settings.\"#\".page-size-bytes=65536"}) {
            o.sets.emplace_back(s);
        }
    }
    if (o.sync_sends && o.native) {
        std::fprintf(stderr, "actormq-crash: --sync-sends is for the STOMP producers\n");
        return false;
    }
    if (o.native && !o.pair) {
        std::fprintf(stderr, "actormq-crash: --native needs --pair\n");
        return false;
    }
    if (o.partitions > 0 && !o.replication) {
        std::fprintf(stderr, "actormq-crash: --partitions needs --replication\n");
        return false;
    }
    if (o.producers + o.tx_producers == 0) {
        std::fprintf(stderr, "actormq-crash: needs at least one producer\n");
        return false;
    }
    return true;
}

std::string replay_command(const options& o) {
    std::string out = std::string{"actormq-crash"} + (o.pair ? " --pair" : "")
                      + (o.native ? " --native" : "") + (o.replication ? " --replication" : "")
                      + (o.ring ? " --ring" : "") + (o.sync_sends ? " --sync-sends" : "")
                      + " --kills " + std::to_string(o.kills)
                      + (o.partitions > 0 ? " --partitions " + std::to_string(o.partitions) : "")
                      + " --producers " + std::to_string(o.producers) + " --tx-producers "
                      + std::to_string(o.tx_producers) + " --seed " + std::to_string(o.seed);
    if (o.consumers_given) {
        out += *o.consumers_given ? " --consumers" : " --no-consumers";
    }
    for (const auto& s : o.sets) {
        out += " --set '" + s + "'";
    }
    return out;
}

std::string make_run_dir(const std::string& wanted) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (wanted.empty()) {
        std::string pattern = "/tmp/actormq-crash-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) {
            std::fprintf(stderr, "actormq-crash: mkdtemp: %s\n", std::strerror(errno));
            return {};
        }
        return pattern;
    }
    fs::create_directories(wanted, ec);
    if (ec || !fs::is_directory(wanted) || !fs::is_empty(wanted, ec)) {
        // A journal left by an earlier run would be drained as "unexpected" messages.
        std::fprintf(stderr, "actormq-crash: --dir %s must be an empty (or new) directory\n",
                     wanted.c_str());
        return {};
    }
    return fs::absolute(wanted).string();
}

uint64_t pick_seed(const options& o) {
    if (o.seed_given) {
        return o.seed;
    }
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

} // namespace actormq::crash
