// SPDX-License-Identifier: Apache-2.0
// Transaction failover (docs/client.md "Examples"): a transacted session sends batches of five
// durable messages, one transaction each. Kill the live server while it runs: the client fails
// over to the backup by itself (ha=true), the transaction that was open or committing throws
// TRANSACTION_ROLLED_BACK, and the example sends the same five message objects again and
// commits. Their duplicate ids (set automatically by the producer the first time) make the
// server store each message once, even when the first commit had reached the disk before the
// kill. At the end it reads the queue back and prints "lost 0, duplicated 0".
//
//   examples/demo.sh                                  # the demo pair
//   build/examples/client/transaction_failover        # Ctrl-C stops it
//   kill -9 $(cat build/demo-data/shared-store/primary.pid)   # in another terminal
#include "example_common.hpp"

#include <vector>

namespace ac = actormq::client;
using example::say;

int main(int argc, char** argv) {
    auto opt = example::parse(argc, argv, "example.transactions");
    example::stop_on_signals();
    // ha=true: learn the backup from the server's topology and fail over to it;
    // reconnectAttempts=-1: never give up; retryInterval: how long to wait between tries while
    // the backup is still activating.
    ac::connection_factory cf("tcp://" + opt.server
                              + "?ha=true&reconnectAttempts=-1&retryInterval=100"
                                "&user="
                              + opt.user + "&password=" + opt.password);
    auto conn = cf.create_connection();
    conn->add_failure_listener(example::print_failures());
    say("connected to " + conn->current_server() + " (node " + conn->node_id() + ")");

    auto session = conn->create_session(/*transacted=*/true);
    auto producer = session->create_producer(opt.queue);
    producer->set_auto_duplicate_ids(true);
    const auto run = example::make_run_id();
    const int per_transaction = 5;
    long retries = 0;
    // Sends `batch` and commits, again and again until the commit succeeds.
    auto commit_with_retries = [&](std::vector<ac::message>& batch, const std::string& what) {
        for (;;) {
            try {
                for (auto& m : batch) {
                    producer->send(m);
                }
                session->commit();
                return;
            } catch (const ac::client_error& e) {
                if (e.kind() == ac::error_kind::transaction_rolled_back
                    || e.kind() == ac::error_kind::unblocked) {
                    // A failover: the transaction is rolled back. Do it again on the same
                    // session (the library recreated it on the new server).
                    ++retries;
                    say(what + ": " + std::string(ac::to_string(e.kind())) + ", sending it again");
                    continue;
                }
                if (e.kind() == ac::error_kind::server
                    && e.server_code() == 15 /* duplicate_id, docs/protocol.md §15 */) {
                    // The first commit did reach the disk before the failover; only its answer
                    // was lost. The retry is refused as a whole, so nothing is stored twice.
                    say(what + ": already committed before the failover");
                    return;
                }
                throw;
            }
        }
    };
    std::string backup;
    long committed = 0; // transactions
    while (!example::should_stop(opt, committed)) {
        if (conn->backup_server() != backup) {
            backup = conn->backup_server();
            say("backup is now "
                + (backup.empty() ? std::string("none (nobody named one)") : backup));
        }
        // One transaction's messages, kept so a retry sends the very same objects (and so the
        // same duplicate ids).
        std::vector<ac::message> batch;
        for (int j = 0; j < per_transaction; ++j) {
            batch.push_back(example::make_message(
                run, "m" + std::to_string(committed * per_transaction + j), true));
        }
        commit_with_retries(batch, "transaction " + std::to_string(committed));
        ++committed;
        if (committed % 20 == 0) {
            say("committed " + std::to_string(committed) + " transactions ("
                + std::to_string(committed * per_transaction) + " messages) via "
                + conn->current_server());
        }
    }
    // The end marker, in its own transaction, then read everything back from where the client
    // is now connected.
    std::vector<ac::message> end{example::make_message(run, "end", true)};
    commit_with_retries(end, "the end marker");
    auto server = conn->current_server();
    conn->close();
    say("stopped after " + std::to_string(committed) + " transactions, " + std::to_string(retries)
        + " retried; reading " + opt.queue + " back from " + server);
    long older = 0;
    auto seen = example::drain(opt, server, run, older);
    if (older > 0) {
        say("(also consumed " + std::to_string(older) + " messages of earlier runs)");
    }
    return example::summary(committed * per_transaction, seen, "m");
}
