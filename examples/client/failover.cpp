// SPDX-License-Identifier: Apache-2.0
// Non-transactional failover (docs/client.md "Examples"): durable messages sent one by one, each
// send blocking until the server has it on disk (blockOnDurableSend, the default). Kill the live
// server while it runs: the client fails over to the backup by itself (ha=true); the one send
// that was waiting for its answer throws UNBLOCKED, because the client cannot know whether the
// live stored it, and the example sends the same message object again. Its duplicate id (set
// automatically the first time) makes the server store it once either way. At the end it reads
// the queue back and prints "lost 0, duplicated 0".
//
//   examples/demo.sh                                  # the demo pair
//   build/examples/client/failover                    # Ctrl-C stops it
//   kill -9 $(cat build/demo-data/shared-store/primary.pid)   # in another terminal
#include "example_common.hpp"

namespace ac = actormq::client;
using example::say;

int main(int argc, char** argv) {
    auto opt = example::parse(argc, argv, "example.failover");
    example::stop_on_signals();
    ac::connection_factory cf("tcp://" + opt.server
                              + "?ha=true&reconnectAttempts=-1&retryInterval=100"
                                "&user="
                              + opt.user + "&password=" + opt.password);
    auto conn = cf.create_connection();
    conn->add_failure_listener(example::print_failures());
    say("connected to " + conn->current_server() + " (node " + conn->node_id() + ")");

    auto session = conn->create_session();
    auto producer = session->create_producer(opt.queue);
    producer->set_auto_duplicate_ids(true);
    const auto run = example::make_run_id();
    std::string backup;
    long sent = 0;
    long resent = 0;
    // Sends `m` until the server confirms it.
    auto send_confirmed = [&](ac::message& m) {
        for (;;) {
            try {
                producer->send(m); // returns once the message is on disk
                return;
            } catch (const ac::client_error& e) {
                if (e.kind() != ac::error_kind::unblocked) {
                    throw;
                }
                // The connection failed over while this send waited: its outcome is unknown.
                // The same object has the same duplicate id, so sending it again is safe.
                ++resent;
                say("message " + m.body + ": UNBLOCKED, sending it again");
            }
        }
    };
    while (!example::should_stop(opt, sent)) {
        if (conn->backup_server() != backup) {
            backup = conn->backup_server();
            say("backup is now "
                + (backup.empty() ? std::string("none (nobody named one)") : backup));
        }
        auto m = example::make_message(run, "m" + std::to_string(sent), true);
        send_confirmed(m);
        ++sent;
        if (sent % 100 == 0) {
            say("sent " + std::to_string(sent) + " via " + conn->current_server());
        }
    }
    auto end = example::make_message(run, "end", true);
    send_confirmed(end);
    auto server = conn->current_server();
    conn->close();
    say("stopped after " + std::to_string(sent) + " messages, " + std::to_string(resent)
        + " sent again; reading " + opt.queue + " back from " + server);
    long older = 0;
    auto seen = example::drain(opt, server, run, older);
    if (older > 0) {
        say("(also consumed " + std::to_string(older) + " messages of earlier runs)");
    }
    return example::summary(sent, seen, "m");
}
