// SPDX-License-Identifier: Apache-2.0
#include "apps/shell/management.hpp"

#include "cluster/management.hpp"

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>
#include <caf/timespan.hpp>

namespace actormq::shell {

namespace {

/// cluster/cluster.hpp's cluster_errc::bad_credentials: the one code of the "cluster" error
/// category that a management login can get back (the value travels as a number).
constexpr uint8_t cluster_bad_credentials = 1;
/// cluster_errc::management_offline: the node has not handed its cluster actor its status
/// actor yet (it does so while it starts, and its ports file may already be written).
constexpr uint8_t cluster_management_offline = 4;

/// The heart-beat of the shell's links to the nodes (see the constructor).
constexpr std::chrono::milliseconds heartbeat_interval{50};

/// A sentence for an error from the node or from CAF.
std::string describe(caf::actor_system& sys, const caf::error& e, std::chrono::milliseconds t) {
    if (e.category() == caf::atom("cluster") && e.code() == cluster_bad_credentials) {
        return "refused: bad cluster credentials (the node logs management_refused)";
    }
    if (e.category() == caf::atom("cluster") && e.code() == cluster_management_offline) {
        return "not ready: the node is still starting (management_offline)";
    }
    if (e == caf::sec::unexpected_message) {
        return "the node did not understand the request (a node without management?)";
    }
    if (e == caf::sec::request_timeout) {
        return "no reply within " + std::to_string(t.count()) + " ms";
    }
    return sys.render(e);
}

} // namespace

management::management() {
    cfg_.load<caf::io::middleman>();
    // Few threads: the shell makes one blocking request at a time. Idle workers sleep on a
    // condition variable, so each blocking request is not delayed by the moderate polling
    // phase (../shared/caf-notes.md §7).
    cfg_.set("scheduler.max-threads", size_t{2});
    cfg_.set("work-stealing.moderate-poll-attempts", size_t{0});
    // Nodes drop a cluster-port connection that stays silent for their connection-timeout-ms
    // (1000 ms in the examples, 50 ms at the least), and a request on a dropped connection
    // never fails fast (caf-notes §3): without heart-beats of its own, every management request
    // after a pause longer than that (a `wait log`, a vote) would hang for its whole timeout.
    // CAF sends a heart-beat on every connection this often, so the links to the nodes stay
    // up however long the shell is quiet.
    cfg_.set("middleman.heartbeat-interval", caf::timespan{heartbeat_interval});
    cfg_.add_error_category(
        caf::atom("cluster"), [](uint8_t code, caf::atom_value, const caf::message&) {
            return code == cluster_bad_credentials      ? std::string{"cluster: bad_credentials"}
                   : code == cluster_management_offline ? std::string{"cluster: management_offline"}
                                                        : "cluster: error " + std::to_string(code);
        });
    sys_ = std::make_unique<caf::actor_system>(cfg_);
}

management::~management() = default;

outcome<caf::actor> management::open(const std::string& host,
                                     uint16_t port,
                                     const std::string& user,
                                     const std::string& password,
                                     std::chrono::milliseconds timeout) {
    outcome<caf::actor> out;
    auto cluster = sys_->middleman().remote_actor(host, port);
    if (!cluster) {
        out.error = "cannot reach " + host + ":" + std::to_string(port) + ": "
                    + sys_->render(cluster.error());
        return out;
    }
    caf::scoped_actor self{*sys_};
    self->request(*cluster, timeout, cluster::manage_atom::value, user, password)
        .receive([&](caf::actor& status) { out.value = std::move(status); },
                 [&](caf::error& e) {
                     out.error = describe(*sys_, e, timeout);
                     out.not_ready = e.category() == caf::atom("cluster")
                                     && e.code() == cluster_management_offline;
                 });
    if (out.error.empty() && !out.value) {
        out.error = "the node answered the login without a status actor";
    }
    return out;
}

outcome<std::string> management::status(const caf::actor& status_actor,
                                        std::chrono::milliseconds timeout) {
    outcome<std::string> out;
    caf::scoped_actor self{*sys_};
    self->request(status_actor, timeout, caf::get_atom::value)
        .receive([&](std::string& json) { out.value = std::move(json); },
                 [&](caf::error& e) { out.error = describe(*sys_, e, timeout); });
    return out;
}

outcome<std::string> management::events(const caf::actor& status_actor,
                                        uint64_t since,
                                        std::chrono::milliseconds timeout) {
    outcome<std::string> out;
    caf::scoped_actor self{*sys_};
    self->request(status_actor, timeout, cluster::events_atom::value, since)
        .receive([&](std::string& json) { out.value = std::move(json); },
                 [&](caf::error& e) { out.error = describe(*sys_, e, timeout); });
    return out;
}

} // namespace actormq::shell
