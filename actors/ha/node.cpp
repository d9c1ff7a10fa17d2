// SPDX-License-Identifier: Apache-2.0
#include "actors/ha/node.hpp"

#include "actors/broker/server.hpp"
#include "actors/broker/server_context.hpp"
#include "actors/ha/node_impl.hpp"
#include "actors/ha/node_manager.hpp"
#include "actors/ha/replication_driver.hpp"
#include "actors/journal/journal.hpp"
#include "actors/status/status.hpp"
#include "actors/web/web_server.hpp"
#include "cluster/cluster.hpp"
#include "cluster/management.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/basp_broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unistd.h>
#include <vector>

namespace actormq {

namespace {

using tcp = boost::asio::ip::tcp;

/// CAF settings taken from the node config (caf-notes.md §3, §7, §9: our own main, no INI file).
caf::actor_system_config&
caf_config(caf::actor_system_config& cfg, const config::node_config& nc, node::impl* d) {
    // 0: one worker per core, as the key is documented. CAF's own default is at least four,
    // and on a two-core machine a hand-off into CAF then tends to wake a sleeping worker where
    // two would more often find one awake (docs/benchmarks.md, "The RECEIPT from the
    // journal's thread": B 1.09x, D 1.47x in the same runs).
    auto workers = nc.scheduler_max_threads > 0 ? nc.scheduler_max_threads
                                                : std::max(1u, std::thread::hardware_concurrency());
    cfg.set("scheduler.max-threads", static_cast<size_t>(workers));
    cfg.set("work-stealing.moderate-poll-attempts",
            static_cast<size_t>(nc.scheduler_moderate_poll_attempts));
    if (nc.cluster.enabled) {
        // Without both a frozen peer is never detected (caf-notes.md §3).
        cfg.set("middleman.heartbeat-interval",
                caf::timespan{std::chrono::milliseconds(nc.cluster.heartbeat_interval_ms)});
        cfg.set("middleman.connection-timeout",
                caf::timespan{std::chrono::milliseconds(nc.cluster.connection_timeout_ms)});
        // Incoming messages are deserialized on the middleman's own thread and go straight to
        // their actor. CAF's default on two cores is one helper that takes each message to a
        // scheduler worker first: one more thread wake-up per message, which cost a replicated
        // confirmation 60-80 us of its round trip to the backup (docs/benchmarks.md,
        // "Replication"). ACTORMQ_MM_WORKERS overrides it for such measurements.
        size_t workers = 0;
        if (const char* w = std::getenv("ACTORMQ_MM_WORKERS")) {
            workers = static_cast<size_t>(std::strtoul(w, nullptr, 10));
        }
        cfg.set("middleman.workers", workers);
        cluster::add_message_types(cfg);
        add_colocation_type(cfg, d);
    }
    cfg.load<caf::io::middleman>();
    return cfg;
}

/// Writes {"NAME": PORT, ...} to `path` atomically (write a temp file, then rename).
bool write_ports_file(const std::string& path, const nlohmann::json& ports) {
    auto tmp = path + ".tmp";
    {
        std::ofstream out{tmp, std::ios::trunc};
        out << ports.dump() << '\n';
        if (!out) {
            return false;
        }
    }
    return std::rename(tmp.c_str(), path.c_str()) == 0;
}

/// The config of the node's own server instance: the node's; under [ha-policy.colocated] it
/// is a primary of the pair's store, replication or shared-store (the keys of
/// [ha-policy.colocated.primary]).
config::node_config own_instance_config(const config::node_config& nc) {
    auto out = nc;
    if (out.ha_policy.kind == config::ha_kind::colocated) {
        bool shared = out.ha_policy.colocated.store == config::colocated_store::shared_store;
        out.ha_policy.kind = shared ? config::ha_kind::shared_store : config::ha_kind::replication;
        out.ha_policy.role = config::ha_role::primary;
    }
    return out;
}

} // namespace

node::impl::impl(config::node_config c)
    : cfg(std::move(c)),
      log(spdlog::get("actors")),
      sys(caf_config(caf_cfg, cfg, this)),
      // A colocated backup's spawn must be redeemed within this time after its grant.
      book(std::make_shared<colocation_book>(cfg.ha_policy.kind == config::ha_kind::colocated
                                                 ? cfg.ha_policy.colocated.max_backups
                                                 : 0,
                                             colocation_grant_lifetime)) {}

void node::impl::request_exit(bool failed) {
    if (failed) {
        stop_report->failed = true;
    }
    if (!sigterm_sent.exchange(true)) {
        ::kill(::getpid(), SIGTERM);
    }
}

node::node(config::node_config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}

node::~node() {
    stop();
}

void node::impl::start_status() {
    auto shared_cfg = std::make_shared<const config::node_config>(cfg);
    instance_info own_info{connections, sessions, cfg.journal.persistence_enabled,
                           cfg.journal.journal_directory};
    status_actor = sys.spawn(status, shared_cfg, board, std::move(own_info));
    event_sink = make_event_sink(status_actor);
    // main's loggers write through one distributing sink; without it (embedded use) no
    // log line becomes an event.
    if (auto l = spdlog::get("node"); l && !l->sinks().empty()) {
        log_sink = std::dynamic_pointer_cast<spdlog::sinks::dist_sink_mt>(l->sinks().front());
        if (log_sink) {
            log_sink->add_sink(event_sink);
        }
    }
}

void node::impl::stop_status() {
    if (log_sink) {
        log_sink->remove_sink(event_sink);
        log_sink = nullptr;
    }
    event_sink = nullptr;
    if (status_actor) {
        caf::anon_send_exit(status_actor, caf::exit_reason::user_shutdown);
        status_actor = nullptr;
    }
}

int node::start() {
    auto& d = *impl_;
    d.work = std::make_unique<decltype(d.work)::element_type>(d.ioc.get_executor());
    for (uint32_t i = 0; i < d.cfg.io_threads; ++i) {
        d.io_threads.emplace_back([&d] { d.ioc.run(); });
    }
    d.own = std::make_unique<server_instance>(d, own_instance_config(d.cfg), false);
    auto& own = *d.own;
    if (auto err = own.reserve_ports(); !err.empty()) {
        d.log->error("acceptor_failed reason=\"{}\"", err);
        return 1;
    }
    if (auto err = own.open_locks(); !err.empty()) {
        d.log->error("{}", err);
        return 1;
    }
    d.start_status();
    auto open_web = [&d, &own] {
        d.web = std::make_unique<web_server>(d.cfg, d.board, spdlog::get("http"));
        if (auto err = d.web->open(); !err.empty()) {
            d.log->error("web_failed reason=\"{}\"", err);
            return false;
        }
        own.ports["web"] = d.web->port();
        d.web->start();
        return true;
    };
    // A port the OS chooses is bound after the configured ones: a node restarted with the
    // cluster port it had before (which the OS chose then, so it lies in the ephemeral range)
    // could otherwise see that port handed to its web listener a moment earlier.
    bool web_first = d.cfg.web.port != 0;
    if (d.cfg.web.enabled && web_first && !open_web()) {
        return 1;
    }
    if (d.cfg.cluster.enabled) {
        if (auto err = own.start_cluster(); !err.empty()) {
            d.log->error("cluster_failed reason=\"{}\"", err);
            return 1;
        }
        // Any live of the cluster may be the target of another's scale-down.
        d.scale_endpoint = d.sys.spawn(scale_down_endpoint, d.scale_inbox, d.log);
        caf::anon_send(own.cluster, cluster::scale_down_atom::value, d.scale_endpoint);
    }
    if (d.cfg.web.enabled && !web_first && !open_web()) {
        return 1;
    }
    const auto& hp = own.cfg.ha_policy;
    bool shared_store = hp.kind == config::ha_kind::shared_store;
    bool replication = hp.kind == config::ha_kind::replication;
    if (!shared_store && !replication && !own.start_ha()) {
        return 1;
    }
    nlohmann::json ports_json = nlohmann::json::object();
    for (const auto& [name, port] : own.ports) {
        ports_json[name] = port;
    }
    const auto& pf = d.cfg.ports_file;
    if (!pf.empty() && !write_ports_file(pf, ports_json)) {
        d.log->error("ports_file_failed path={}", pf);
        return 1;
    }
    bool backup = hp.role == config::ha_role::backup;
    d.log->info("node_started name={} ha_policy={} ports={}", d.cfg.name,
                d.cfg.ha_policy.kind == config::ha_kind::colocated ? "colocated"
                : shared_store ? (backup ? "shared-store-backup" : "shared-store-primary")
                : replication  ? (backup ? "replication-backup" : "replication-primary")
                               : "live-only",
                ports_json.dump());
    own.event("started", "node " + d.cfg.name + " started (" + ports_json.dump() + ")");
    if (shared_store || replication) {
        own.start_ha();
    }
    d.start_colocation();
    return 0;
}

void node::impl::drop_hosted(const std::string& name) {
    std::unique_ptr<server_instance> gone;
    {
        std::lock_guard<std::mutex> guard{instances_mtx};
        auto it = hosted.find(name);
        if (it == hosted.end()) {
            return;
        }
        gone = std::move(it->second);
        hosted.erase(it);
    }
    // Stopping blocks (the driver, the journal, the cluster member): on a thread of its own,
    // joined when the node stops.
    std::lock_guard<std::mutex> guard{instances_mtx};
    droppers.emplace_back([this, inst = std::shared_ptr<server_instance>(std::move(gone))] {
        inst->stop();
        book->release(inst->slot);
        if (inst->handle) {
            caf::anon_send_exit(inst->handle, caf::exit_reason::user_shutdown);
        }
        report_gone(inst->name);
        log->info("colocated_instance_stopped instance={}", inst->name);
    });
}

void node::impl::stop_hosted() {
    std::map<std::string, std::unique_ptr<server_instance>> all;
    std::vector<std::thread> threads;
    {
        std::lock_guard<std::mutex> guard{instances_mtx};
        stopping_hosted = true;
        all.swap(hosted);
    }
    for (auto& [name, inst] : all) {
        inst->stop();
        book->release(inst->slot);
        if (inst->handle) {
            caf::anon_send_exit(inst->handle, caf::exit_reason::user_shutdown);
        }
        report_gone(name);
        log->info("colocated_instance_stopped instance={}", name);
    }
    {
        std::lock_guard<std::mutex> guard{instances_mtx};
        threads.swap(droppers);
    }
    for (auto& t : threads) {
        t.join();
    }
}

std::shared_ptr<const node::stop_report> node::report() const {
    return impl_->stop_report;
}

bool node::failed() const {
    return impl_ && impl_->stop_report->failed;
}

void node::stop() {
    if (!impl_) {
        return;
    }
    auto& d = *impl_;
    {
        std::lock_guard<std::mutex> guard{d.mtx};
        if (d.stopping) {
            return;
        }
        d.stopping = true;
    }
    if (d.own) {
        d.own->event("stopping", "node " + d.cfg.name + " is stopping");
    }
    // Each stage that takes longer than half a second is logged, so that a slow or stuck stop
    // says where its time went (the harness's exit deadline, the watchdog in apps/node).
    auto stage_began = std::chrono::steady_clock::now();
    auto stage = [&d, &stage_began](const char* next) {
        auto now = std::chrono::steady_clock::now();
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - stage_began).count();
        if (ms > 500) {
            d.log->warn("node_stop_slow stage={} ms={}", d.stop_report->stage.load(), ms);
        }
        stage_began = now;
        d.stop_report->stage = next;
    };
    stage("colocated");
    d.stop_colocation();
    d.stop_hosted();
    if (d.own) {
        stage("scale-down");
        d.own->scale_down_on_stop();
    }
    stage("activation");
    if (d.own) {
        d.own->stop_activation();
        stage("deactivate");
        d.own->deactivate(false);
        d.own->reserved.clear();
    }
    stage("web");
    if (d.web) {
        d.web->stop();
    }
    stage("cluster");
    if (d.scale_endpoint) {
        caf::anon_send_exit(d.scale_endpoint, caf::exit_reason::user_shutdown);
        d.scale_endpoint = nullptr;
    }
    if (d.own && d.own->cluster) {
        // Blocks until the cluster actor is gone: it must not call on_change afterwards.
        cluster::stop(d.sys, d.own->cluster);
        d.own->cluster = nullptr;
    }
    stage("status");
    d.stop_status();
    stage("io-threads");
    // Let the io threads run out of work rather than stop them: every socket is closed by now,
    // so each pending operation completes (operation_aborted) and drops what its handler holds
    // (a connection, an acceptor's state, and through them the server context with its journal
    // handle). io_context::stop() left such handlers queued until the io_context's destructor,
    // which runs after ~actor_system; the journal, a detached actor, then stayed referenced and
    // ~actor_system waited for its thread for ever (issue 10, item 6; node_stop_stuck
    // stage=actor-system). Bounded: past 5 s the rest is stopped and logged.
    d.work.reset();
    auto io_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!d.ioc.stopped() && std::chrono::steady_clock::now() < io_deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!d.ioc.stopped()) {
        d.log->warn("io_threads_busy seconds=5 action=stop");
        d.ioc.stop();
    }
    for (auto& t : d.io_threads) {
        t.join();
    }
    d.io_threads.clear();
    // Sessions still ending may post to their connections after the io threads are gone (a
    // last write, the close that follows their server's down message). Such a handler holds
    // its connection, and through it the server context and its journal handle; left queued
    // until the io_context's destructor (after ~actor_system), it kept the journal, a detached
    // actor, alive, and ~actor_system waited for its thread for ever (issue 10, item 6:
    // node_stop_stuck stage=actor-system). So: wait for every actor to end, then run what they
    // posted, on this thread, before the actor system goes.
    stage("actors");
    d.sys.await_all_actors_done();
    // Every actor has ended, but an ending journal's or replica's thread may not have sent
    // its down messages yet (exit_tracker): wait for those before the broker's mailbox is
    // drained. Bounded: past 5 s the stop goes on (and may hang as before, which the stop
    // watchdog reports).
    stage("exits");
    if (!d.exits.await(std::chrono::seconds(5))) {
        d.log->warn("exit_notices_pending seconds=5");
    }
    // CAF 0.17.6: an actor that a remote node monitors (the replica, watched by its live's
    // journal; a journal, watched by its replica) sends its down message to the BASP broker,
    // with itself as the sender. One still in the broker's mailbox when ~actor_system stops
    // the middleman is never handled, and the reference it holds keeps the ended actor from
    // being destroyed, so ~actor_system waited for that detached actor's thread for ever
    // (tests/crash/REPLICATION-FINDINGS.md, finding 5; found in a core dump). Every such
    // message is in the broker's mailbox by now (every actor has ended): ask the broker
    // something and wait for its answer, which comes after them. Bounded: past 5 s the stop
    // goes on (and would hang as before, which the stop watchdog reports).
    stage("middleman");
    {
        auto basp = d.sys.middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
        caf::scoped_actor self{d.sys};
        self->request(basp, std::chrono::seconds(5), caf::get_atom::value, caf::node_id{})
            .receive([](const caf::node_id&, const std::string&, uint16_t) {},
                     [&](const caf::error& e) {
                         d.log->warn("middleman_drain_failed error={}", d.sys.render(e));
                     });
    }
    stage("late-io");
    d.ioc.restart();
    d.ioc.poll();
    stage("actor-system");
}

} // namespace actormq
