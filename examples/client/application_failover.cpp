// SPDX-License-Identifier: Apache-2.0
// Application-level failover (docs/client.md "Examples"): the client library does not fail over
// here (reconnectAttempts=0, the default); the application does. Its failure listener hears
// DISCONNECT when the live server dies, and the application then opens a new connection to the
// next server of its own list (the backup), a new session and producer, and goes on. The send
// that failed is sent again with the same duplicate id, which the application sets itself here
// (run id and number), so it is stored once even if the dead server had stored it.
//
//   examples/demo.sh                                  # the demo pair
//   build/examples/client/application_failover        # Ctrl-C stops it
//   kill -9 $(cat build/demo-data/shared-store/primary.pid)   # in another terminal
#include "example_common.hpp"

#include <atomic>
#include <memory>
#include <vector>

namespace ac = actormq::client;
using example::say;

int main(int argc, char** argv) {
    auto opt = example::parse(argc, argv, "example.application-failover");
    example::stop_on_signals();
    const std::vector<std::string> servers{opt.server, opt.backup};
    size_t next = 0; // the server of `servers` to connect to next

    std::shared_ptr<ac::connection> conn;
    std::shared_ptr<ac::session> session;
    std::shared_ptr<ac::producer> producer;
    // Set by the failure listener; the sending loop reconnects when it sees it.
    auto disconnected = std::make_shared<std::atomic<bool>>(false);
    auto connect = [&] {
        // Tries the servers of the list in turn (from `next`) until one answers: the backup
        // needs a moment to take over after the live died.
        std::string list = "tcp://" + servers[next % servers.size()] + ",tcp://"
                           + servers[(next + 1) % servers.size()];
        ac::connection_factory cf("(" + list
                                  + ")?initialConnectAttempts=-1&retryInterval=100"
                                    "&user="
                                  + opt.user + "&password=" + opt.password);
        auto flag = std::make_shared<std::atomic<bool>>(false);
        conn = cf.create_connection();
        conn->add_failure_listener([flag](ac::failure_event e, const std::string& why) {
            say("failure listener: " + std::string(ac::to_string(e)) + ": " + why);
            if (e == ac::failure_event::disconnect) {
                *flag = true; // the application's cue to fail over
            }
        });
        disconnected = flag;
        session = conn->create_session();
        producer = session->create_producer(opt.queue);
        say("connected to " + conn->current_server() + " (node " + conn->node_id() + ")");
    };
    auto fail_over = [&](const std::string& why) {
        say("application failover: " + why);
        conn->close();
        ++next; // the other server of the list first
        connect();
    };

    connect();
    const auto run = example::make_run_id();
    long sent = 0;
    long resent = 0;
    auto send_confirmed = [&](ac::message& m) {
        for (;;) {
            if (*disconnected) {
                fail_over("the failure listener said DISCONNECT");
            }
            try {
                producer->send(m); // durable: returns once the message is on disk
                return;
            } catch (const ac::client_error& e) {
                if (e.kind() != ac::error_kind::disconnected) {
                    throw;
                }
                // The connection died during (or before) this send; its outcome is unknown.
                // The listener has said DISCONNECT too; the next turn fails over and sends
                // the message again, with its duplicate id.
                ++resent;
                *disconnected = true;
            }
        }
    };
    while (!example::should_stop(opt, sent)) {
        auto m = example::make_message(run, "m" + std::to_string(sent), true);
        m.duplicate_id = run + ":" + std::to_string(sent); // the application's own id
        send_confirmed(m);
        ++sent;
        if (sent % 100 == 0) {
            say("sent " + std::to_string(sent) + " via " + conn->current_server());
        }
    }
    auto end = example::make_message(run, "end", true);
    end.duplicate_id = run + ":end";
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
