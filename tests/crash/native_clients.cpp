// SPDX-License-Identifier: Apache-2.0
#include "crash/native_clients.hpp"

#include <actormq/client/client.hpp>
#include <atomic>
#include <map>
#include <memory>
#include <vector>

namespace actormq::crash {

namespace {

namespace ac = actormq::client;
using test::in;
using test::test_clock;

/// The wire code of `fail` `duplicate_id` (docs/protocol.md §15): a transaction whose ids the
/// server already holds, i.e. whose first commit landed though its answer was lost.
constexpr uint16_t duplicate_id_code = 15;

/// Transaction attempts that end in a server error before the tx producer skips one.
constexpr uint32_t tx_errors_max = 3;

/// How long a consumer's receive waits before it looks at the stop flags again.
constexpr auto receive_slice = std::chrono::milliseconds(50);

/// How often a client looks at the backlog again while it is full, and how long it waits
/// between two tries of a first connection that failed.
constexpr auto poll_slice = std::chrono::milliseconds(1);
constexpr auto connect_pause = std::chrono::milliseconds(20);

/// The native address of a STOMP destination: the name behind /queue/.
std::string address_of(const std::string& destination) {
    const std::string prefix = "/queue/";
    return destination.rfind(prefix, 0) == 0 ? destination.substr(prefix.size()) : destination;
}

/// Whether the producers may start another message (or transaction).
bool backlog_has_room(const traffic_control& ctl, const producer_limits& limits) {
    return ctl.backlog() < limits.backlog_max;
}

/// The host (index into `ctl.hosts`) whose native port `server` ("host:port") names, or -1.
int32_t host_of(const traffic_control& ctl, const std::string& server) {
    auto colon = server.rfind(':');
    if (colon == std::string::npos) {
        return -1;
    }
    auto port = static_cast<uint16_t>(std::atoi(server.c_str() + colon + 1));
    for (uint32_t h = 0; h < ctl.host_count; ++h) {
        if (ctl.hosts[h].native_port == port) {
            return static_cast<int32_t>(h);
        }
    }
    return -1;
}

/// One client's connection, made once and kept: the library reconnects and fails over by
/// itself, so the harness makes a new one only if the library gave up (DISCONNECTED).
class native_link {
public:
    native_link(traffic_control& ctl, const link_limits& limits, link_stats& stats)
        : ctl_(ctl),
          limits_(limits),
          stats_(stats),
          failures_(std::make_shared<std::atomic<uint64_t>>(0)) {}

    ~native_link() { close(); }

    /// Connects unless connected and makes a session with `transacted`; false after a failed
    /// try (the caller loops), and gives up after `limits.reconnect` without a connection.
    bool ensure(bool transacted) {
        if (session_) {
            return true;
        }
        if (!down_since_) {
            down_since_ = test_clock::now();
        }
        try {
            ac::connection_factory cf(native_url(ctl_));
            conn_ = cf.create_connection();
            auto failures = failures_;
            conn_->add_failure_listener([failures](ac::failure_event e, const std::string&) {
                if (e == ac::failure_event::failure_detected) {
                    ++*failures;
                }
            });
            session_ = conn_->create_session(transacted);
            ++stats_.connects;
            down_since_.reset();
            return true;
        } catch (const std::exception& e) {
            note_error(e.what());
            close();
            if (test_clock::now() - *down_since_ > limits_.reconnect) {
                give_up("no connection within " + std::to_string(limits_.reconnect.count())
                        + " ms: " + e.what());
            } else {
                test::wait_until(
                    in(connect_pause), [&] { return ctl_.abort.load(); }, poll_slice);
            }
            return false;
        }
    }

    /// Forgets the connection (the library gave up on it).
    void close() {
        session_.reset();
        if (conn_) {
            conn_->close();
            conn_.reset();
        }
    }

    /// Handles an exception the library threw that is not the caller's to retry: DISCONNECTED
    /// and CLOSED drop the connection (the next `ensure` makes a new one), anything else is
    /// an error that counts towards giving up.
    void on_error(const ac::client_error& e) {
        if (e.kind() == ac::error_kind::disconnected || e.kind() == ac::error_kind::closed) {
            close();
            return;
        }
        note_error(e.what());
        if (++stats_.errors >= limits_.errors_max) {
            give_up("too many errors");
        }
    }

    void note_error(const std::string& what) {
        if (stats_.first_error.empty()) {
            stats_.first_error = what;
        }
    }

    void give_up(const std::string& why) {
        stats_.gave_up = true;
        note_error(why);
    }

    /// Starts deliveries to the connection's consumers (JMS Connection.start).
    void start() { conn_->start(); }

    /// The host of the server the connection is on now, or -1.
    int32_t host() const { return conn_ ? host_of(ctl_, conn_->current_server()) : -1; }

    /// FAILURE_DETECTED events so far: the library told its listeners it lost a connection.
    uint64_t failures() const { return *failures_; }

    ac::session& session() { return *session_; }
    bool connected() const { return session_ != nullptr; }

private:
    traffic_control& ctl_;
    const link_limits& limits_;
    link_stats& stats_;
    std::shared_ptr<ac::connection> conn_;
    std::shared_ptr<ac::session> session_;
    std::shared_ptr<std::atomic<uint64_t>> failures_;
    std::optional<test_clock::time_point> down_since_;
};

/// Notes a confirmation from the server `link` is on now, for the failover measurement.
void note_confirmed(traffic_control& ctl, const native_link& link) {
    auto h = link.host();
    if (h >= 0) {
        ctl.note_receipt(static_cast<uint32_t>(h));
    }
}

/// Whether a producer should stop: abort, gave up, or stop with nothing pending (or out of
/// time for what is).
bool producer_done(const traffic_control& ctl, const producer_stats& stats, bool pending) {
    if (ctl.abort || stats.gave_up) {
        return true;
    }
    return ctl.stop && (!pending || test_clock::now() >= ctl.stop_deadline.load());
}

/// Waits (briefly) for room in a full backlog; true if there is room now.
bool backlog_room(const traffic_control& ctl,
                  const producer_limits& limits,
                  producer_stats& stats) {
    if (backlog_has_room(ctl, limits)) {
        return true;
    }
    ++stats.backlog_waits;
    test::wait_until(
        in(std::chrono::milliseconds(100)),
        [&] { return ctl.abort || ctl.stop || backlog_has_room(ctl, limits); }, poll_slice);
    return false;
}

ac::message make_message(const stream_record& rec, uint64_t k, const producer_limits& limits) {
    ac::message m;
    m.durable = true;
    m.duplicate_id = rec.id(k);
    m.body = rec.body(k, limits.body_bytes);
    return m;
}

} // namespace

std::string native_url(const traffic_control& ctl) {
    std::string list;
    for (uint32_t h = 0; h < ctl.host_count; ++h) {
        list += (list.empty() ? "" : ",") + std::string{"tcp://127.0.0.1:"}
                + std::to_string(ctl.hosts[h].native_port.load());
    }
    // retryInterval 20 ms: the backup activates within tens of ms (docs/benchmarks.md); a
    // blocking call waits for the failover up to callTimeout, well inside the stop grace.
    return "(" + list
           + ")?ha=true&reconnectAttempts=-1&initialConnectAttempts=3&retryInterval=20"
             "&maxRetryInterval=20&callTimeout=10000&blockOnDurableSend=true"
             "&blockOnAcknowledge=true&user=guest&password=guest";
}

void run_native_plain_producer(traffic_control& ctl,
                               const producer_limits& limits,
                               stream_record& rec,
                               producer_stats& stats) {
    native_link link{ctl, limits, stats};
    std::shared_ptr<ac::producer> producer;
    auto address = address_of(rec.destination());
    uint64_t k = 0;
    bool pending = false; // message k is sent (at least tried) and not confirmed
    ac::message m;
    while (!producer_done(ctl, stats, pending)) {
        if (!pending) {
            if (!backlog_room(ctl, limits, stats)) {
                continue;
            }
            m = make_message(rec, k, limits);
            rec.mark_sent(k);
            pending = true;
        }
        if (!link.connected()) {
            producer.reset();
            if (!link.ensure(false)) {
                continue;
            }
        }
        try {
            if (!producer) {
                producer = link.session().create_producer(address);
            }
            producer->send(m);
        } catch (const ac::client_error& e) {
            if (e.kind() == ac::error_kind::unblocked || e.kind() == ac::error_kind::timeout) {
                // A failover during the call: the send may or may not have landed. The same
                // message again (same duplicate id) is stored once either way.
                ++stats.resent;
                stats.timeouts += e.kind() == ac::error_kind::timeout ? 1 : 0;
                continue;
            }
            link.on_error(e);
            continue;
        }
        rec.mark_confirmed(k);
        ++ctl.confirmed;
        note_confirmed(ctl, link);
        ++k;
        pending = false;
    }
}

void run_native_tx_producer(traffic_control& ctl,
                            const producer_limits& limits,
                            stream_record& rec,
                            producer_stats& stats) {
    native_link link{ctl, limits, stats};
    std::shared_ptr<ac::producer> producer;
    auto address = address_of(rec.destination());
    uint64_t n = 0;
    bool pending = false; // transaction n was attempted and is not committed
    uint32_t errors = 0;
    std::vector<ac::message> batch;
    auto confirm = [&] {
        for (uint64_t k = n * tx_messages; k < (n + 1) * tx_messages; ++k) {
            rec.mark_confirmed(k);
        }
        ctl.confirmed += tx_messages;
        note_confirmed(ctl, link);
    };
    auto next = [&] {
        ++n;
        pending = false;
        errors = 0;
    };
    while (!producer_done(ctl, stats, pending)) {
        if (!pending) {
            if (!backlog_room(ctl, limits, stats)) {
                continue;
            }
            batch.clear();
            for (uint64_t k = n * tx_messages; k < (n + 1) * tx_messages; ++k) {
                batch.push_back(make_message(rec, k, limits));
                rec.mark_sent(k);
            }
        } else {
            stats.resent += tx_messages;
        }
        pending = true;
        if (!link.connected()) {
            producer.reset();
            if (!link.ensure(true)) {
                continue;
            }
        }
        try {
            if (!producer) {
                producer = link.session().create_producer(address);
            }
            for (auto& m : batch) {
                producer->send(m);
            }
            link.session().commit();
        } catch (const ac::client_error& e) {
            if (e.kind() == ac::error_kind::transaction_rolled_back
                || e.kind() == ac::error_kind::unblocked || e.kind() == ac::error_kind::timeout) {
                stats.timeouts += e.kind() == ac::error_kind::timeout ? 1 : 0;
                continue; // rolled back by a failover: the same transaction again
            }
            if (e.kind() == ac::error_kind::server && e.server_code() == duplicate_id_code) {
                ++stats.tx_refused_as_duplicate; // the first commit had landed
                confirm();
                next();
                continue;
            }
            link.on_error(e);
            if (e.kind() == ac::error_kind::server && ++errors >= tx_errors_max) {
                next(); // refused too often: skip it, its messages stay unconfirmed
            }
            continue;
        }
        confirm();
        next();
    }
}

void run_native_consumer(traffic_control& ctl,
                         const consumer_limits& limits,
                         ledger& book,
                         size_t s,
                         consumer_stats& stats) {
    native_link link{ctl, limits, stats};
    std::shared_ptr<ac::consumer> consumer;
    auto queue = address_of(book.streams()[s].destination());
    // Generation (client::message::generation) -> FAILURE_DETECTED events counted before the
    // receive that first returned a message of it; and the newest generation seen.
    std::map<uint64_t, uint64_t> generation_failures;
    uint64_t newest_generation = 0;
    // The acks are synchronous (blockOnAcknowledge): none is in flight between two turns, so
    // the consumer may stop as soon as it is told to; what it has not acknowledged goes back
    // to the queue for the drain when its connection closes.
    while (!ctl.abort && !stats.gave_up && !ctl.consumers_stop) {
        if (!link.connected()) {
            consumer.reset();
            if (!link.ensure(false)) {
                continue;
            }
        }
        std::optional<ac::message> r;
        auto failures = link.failures();
        try {
            if (!consumer) {
                consumer = link.session().create_consumer(queue);
                link.start();
            }
            r = consumer->receive(receive_slice);
        } catch (const ac::client_error& e) {
            stats.timeouts += e.kind() == ac::error_kind::timeout ? 1 : 0;
            link.on_error(e);
            continue;
        }
        if (!r) {
            continue;
        }
        ++stats.received;
        if (r->generation > newest_generation) {
            newest_generation = r->generation;
            generation_failures[r->generation] = failures;
        }
        uint64_t k = 0;
        auto how = book.record_delivery(s, std::to_string(r->message_id), r->body, k);
        switch (how) {
            case delivered::first:
                ++ctl.delivered;
                break;
            case delivered::redelivered:
                ++stats.redelivered;
                break;
            case delivered::duplicated:
                if (++stats.duplicated == 1) {
                    const auto& first = book.deliveries(s).messages[k];
                    stats.first_duplicate =
                        book.streams()[s].id(k) + ": message id " + std::to_string(r->message_id)
                        + " (first delivered as " + first.message_id + "), delivery count "
                        + std::to_string(r->delivery_count) + ", from "
                        + std::to_string(link.host());
                }
                break;
            case delivered::unexpected:
                ++stats.unexpected;
                break;
        }
        if (ctl.consumers_stop) {
            break; // left unacknowledged: the node must keep it for the drain
        }
        if (how != delivered::unexpected) {
            book.record_ack_written(s, k);
        }
        ++stats.acks;
        try {
            consumer->acknowledge(*r);
        } catch (const ac::client_error& e) {
            ++stats.acks_cut; // its outcome is unknown: it stays "written"
            stats.timeouts += e.kind() == ac::error_kind::timeout ? 1 : 0;
            if (e.kind() != ac::error_kind::unblocked && e.kind() != ac::error_kind::timeout) {
                link.on_error(e);
            }
            continue;
        }
        // The library drops (silently) an ack of a delivery from before a failover: the new
        // server delivers it again. So an ack counts as stored only if the message is of the
        // newest generation and no connection was lost since that generation's first message
        // was received; any other ack stays "written" (it may or may not have landed).
        if (r->generation != newest_generation
            || link.failures() != generation_failures[r->generation]) {
            ++stats.acks_cut;
            continue;
        }
        if (how != delivered::unexpected) {
            book.record_ack_confirmed(s, k);
        }
        ++stats.ack_receipts;
    }
}

} // namespace actormq::crash
