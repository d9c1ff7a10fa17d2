// SPDX-License-Identifier: Apache-2.0
// Reattach after a short network cut (docs/client.md "Examples"): with a confirmation window
// (confirmationWindowSize) both sides keep what they sent until the other confirms it, and the
// server keeps the sessions of a failed connection for connectionTTL. When the network fails
// for a moment, the client connects to the SAME server, reattaches its sessions and both sides
// send again only what the other had not received: nothing is lost, nothing arrives twice, no
// call fails; the failure listener hears FAILURE_DETECTED and then "FAILOVER: reattached".
//
// It sends non-durable messages without waiting for any answer (nothing but the window could
// save one that the cut caught) and receives them on a second session of the same connection.
//
//   examples/demo.sh                                  # the demo pair
//   build/examples/client/reattach                    # Ctrl-C stops it
//   sudo ss -K dst 127.0.0.1 dport = 61617            # in another terminal: cut the connection
#include "example_common.hpp"

#include <condition_variable>
#include <mutex>

namespace ac = actormq::client;
using example::say;

int main(int argc, char** argv) {
    auto opt = example::parse(argc, argv, "example.reattach");
    example::stop_on_signals();
    // No ha: a reattach goes back to the same server. reconnectAttempts=-1: keep trying.
    ac::connection_factory cf("tcp://" + opt.server
                              + "?confirmationWindowSize=65536&reconnectAttempts=-1"
                                "&retryInterval=100&user="
                              + opt.user + "&password=" + opt.password);
    auto conn = cf.create_connection();
    conn->add_failure_listener(example::print_failures());
    say("connected to " + conn->current_server() + " (node " + conn->node_id() + ")");
    const auto run = example::make_run_id();

    // The receiving side: a listener on its own session counts this run's messages.
    std::mutex mu;
    std::condition_variable cv;
    example::tally seen;
    long received = 0;
    long redelivered = 0;
    bool end_seen = false;
    auto in = conn->create_session();
    auto consumer = in->create_consumer(opt.queue);
    consumer->set_message_listener([&](ac::message m) {
        consumer->acknowledge(m);
        std::lock_guard<std::mutex> guard(mu);
        if (example::header(m, "run") != run) {
            return; // left over from an earlier run
        }
        if (m.delivery_count > 0) {
            ++redelivered;
        }
        if (m.body == "end") {
            end_seen = true;
            cv.notify_all();
            return;
        }
        ++seen[m.body];
        ++received;
    });
    conn->start();

    auto out = conn->create_session();
    auto producer = out->create_producer(opt.queue);
    long sent = 0;
    while (!example::should_stop(opt, sent)) {
        // Non-durable, so send() returns at once (blockOnNonDurableSend is false).
        producer->send(example::make_message(run, "m" + std::to_string(sent), false));
        ++sent;
        if (sent % 1000 == 0) {
            std::lock_guard<std::mutex> guard(mu);
            say("sent " + std::to_string(sent) + ", received " + std::to_string(received) + " via "
                + conn->current_server());
        }
    }
    producer->send(example::make_message(run, "end", false));
    say("stopped after " + std::to_string(sent) + " messages; waiting for the last of them");
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(30), [&] { return end_seen; })) {
        say("the end marker did not arrive within 30 s");
    }
    auto tally = seen;
    auto again = redelivered;
    lock.unlock();
    say("redelivered " + std::to_string(again) + " (a reattach redelivers nothing)");
    int status = example::summary(sent, tally, "m");
    conn->close();
    return again == 0 ? status : 1;
}
