// SPDX-License-Identifier: Apache-2.0
// One server instance of a node (actors/ha/node_impl.hpp): its ports, cluster membership,
// recovery, acceptors, activation and HA effects, and its scale-down. The node itself (its
// actor system, status, start and stop, the colocated instances it hosts) is in node.cpp.
#include "actors/broker/acceptor.hpp"
#include "actors/broker/server.hpp"
#include "actors/broker/server_context.hpp"
#include "actors/ha/activation_driver.hpp"
#include "actors/ha/node_impl.hpp"
#include "actors/ha/node_manager.hpp"
#include "actors/ha/replication_driver.hpp"
#include "actors/journal/journal.hpp"
#include "actors/journal/recovery.hpp"
#include "actors/native/listener.hpp"
#include "actors/replication/activation_record.hpp"
#include "cluster/cluster.hpp"
#include "cluster/management.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <mutex>
#include <vector>

namespace actormq {

namespace {

using tcp = boost::asio::ip::tcp;

/// Logs what recovery found; returns false when the server must not start.
bool report_recovery(const server_context& ctx, const recovered_state& rs) {
    // Under policy skip each skipped record gets a warn line; under refuse the one that stopped
    // recovery is an error.
    for (const auto& c : rs.corrupt) {
        ctx.log->log(rs.error.empty() ? spdlog::level::warn : spdlog::level::err,
                     "journal_corrupt_record file={} offset={} action={} reason=\"{}\"", c.file,
                     c.offset, rs.error.empty() ? "skipped" : "refused", c.reason);
    }
    if (!rs.error.empty()) {
        ctx.log->error("journal_recovery_failed reason=\"{}\"", rs.error);
        return false;
    }
    if (rs.torn_tail) {
        ctx.log->info("journal_torn_tail_cut file={} offset={}", rs.torn_file, rs.torn_offset);
    }
    // Data already lost by whoever wrote the journal: said loudly, the rest is served.
    for (const auto& c : rs.id_collisions) {
        ctx.log->error("journal_message_id_collision file={} offset={} reason=\"{}\"", c.file,
                       c.offset, c.reason);
    }
    if (rs.id_collisions_total > rs.id_collisions.size()) {
        ctx.log->error("journal_message_id_collision more={}",
                       rs.id_collisions_total - rs.id_collisions.size());
    }
    ctx.log->info("journal_recovered directory={} records={} messages={} queues={} "
                  "rolled_back_tx={} corrupt_skipped={} seconds={:.3f}",
                  ctx.config.journal.journal_directory, rs.records, rs.messages, rs.queues.size(),
                  rs.rolled_back_transactions, rs.corrupt.size(), rs.seconds);
    return true;
}

} // namespace

server_instance::server_instance(node::impl& owner, config::node_config c, bool is_colocated)
    : host(owner),
      name(c.name),
      colocated(is_colocated),
      cfg(std::move(c)),
      log(owner.log),
      sys(owner.sys),
      ioc(owner.ioc) {
    if (!colocated) {
        status_info.connections = host.connections;
        status_info.sessions = host.sessions;
    }
    status_info.persistence_enabled = cfg.journal.persistence_enabled;
    status_info.journal_directory = cfg.journal.journal_directory;
}

void server_instance::stop_on_storage_failure() {
    if (!colocated) {
        host.stop_report->failed = true;
    }
    if (!storage_failed.exchange(true)) {
        // Sent before the SIGTERM, so the driver knows it before the stop that follows:
        // a failed journal leaves the state "live" (docs/architecture.md, "Failure model").
        if (driver) {
            caf::anon_send(driver, ha_fail_atom::value);
        }
        if (repl_driver) {
            caf::anon_send(repl_driver, ha_fail_atom::value);
        }
    }
    request_exit(true);
}

void server_instance::request_exit(bool failed) {
    if (!colocated) {
        host.request_exit(failed);
        return;
    }
    if (!stop_requested.exchange(true)) {
        log->warn("colocated_instance_exit instance={} failed={}", name, failed);
        host.drop_hosted(name);
    }
}

bool server_instance::lock_written(const std::string& error) {
    if (error.empty()) {
        return true;
    }
    log->critical("journal_failed {} action=stop reason=\"the lock file's state could not be "
                  "written\"",
                  error);
    stop_on_storage_failure();
    return false;
}

/// Binds (without listening) every acceptor's port, so it is known before the node serves.
std::string server_instance::reserve_ports() {
    reserved.clear();
    for (const auto& a : cfg.acceptors) {
        boost::system::error_code ec;
        auto addr = boost::asio::ip::make_address(a.host, ec);
        if (ec) {
            return "acceptor " + a.name + ": invalid host '" + a.host + "': " + ec.message();
        }
        auto known = ports.find(a.name);
        tcp::endpoint ep{addr, known != ports.end() ? known->second : a.port};
        tcp::acceptor sock{ioc};
        sock.open(ep.protocol(), ec);
        if (!ec) {
            sock.set_option(tcp::acceptor::reuse_address(true), ec);
        }
        if (!ec) {
            sock.bind(ep, ec);
        }
        if (ec) {
            return "acceptor " + a.name + ": cannot bind " + a.host + ":"
                   + std::to_string(ep.port()) + ": " + ec.message();
        }
        ports[a.name] = sock.local_endpoint().port();
        reserved.push_back(std::move(sock));
    }
    return {};
}

void server_instance::report(const std::string& role, const std::string& node_id) {
    if (host.status_actor) {
        caf::anon_send(host.status_actor, role_atom::value, name, role, node_id);
    }
}

void server_instance::event(const std::string& kind,
                            const std::string& message,
                            int64_t duration_ms) {
    if (host.status_actor) {
        // A colocated backup's events name it: the node's log holds every instance's.
        auto text = colocated ? "[" + name + "] " + message : message;
        caf::anon_send(host.status_actor, event_atom::value, kind, text, duration_ms);
    }
}

std::string server_instance::start_cluster() {
    const auto& first = cfg.acceptors.front();
    self_info.name = cfg.name;
    self_info.role = cfg.ha_policy.kind == config::ha_kind::live_only ? "live" : "starting";
    self_info.group = cfg.ha_policy.replication.group_name;
    self_info.hosted_by = colocated ? host.cfg.name : std::string{};
    if (self_info.group.empty()) {
        // A live-only node's group is its scale-down group (docs/ha.md, "Scale-down").
        self_info.group = cfg.ha_policy.scale_down.group_name;
    }
    self_info.node_id = locks ? locks->node_id() : std::string{};
    if (cfg.ha_policy.kind == config::ha_kind::replication
        || cfg.ha_policy.kind == config::ha_kind::colocated) {
        // The journal this server last served, if any, is known to the cluster from the first
        // announcement on, before any vote could ask about it (docs/replication.md, "Which
        // journal is newest"). A file of a few dozen bytes, read like the node id above.
        replication::activation_record rec;
        if (replication::read_activation(cfg.journal.journal_directory, rec).empty()
            && !rec.node_id.empty()
            && (self_info.node_id.empty() || self_info.node_id == rec.node_id)) {
            self_info.node_id = rec.node_id;
            self_info.sequence = rec.sequence;
        }
    }
    self_info.connector = first.host + ":" + std::to_string(ports[first.name]);
    for (const auto& a : cfg.acceptors) {
        if (a.protocol == "native") {
            self_info.native_connectors.push_back(a.host + ":" + std::to_string(ports[a.name]));
        }
    }
    auto on_change = [this](const cluster::topology& t) {
        std::lock_guard<std::mutex> guard{cluster_mtx};
        last_topology = t;
        refresh_view();
        if (host.status_actor && !colocated) {
            caf::anon_send(host.status_actor, t);
        }
        if (repl_driver) {
            caf::anon_send(repl_driver, t);
        }
        if (const auto& req = colocated ? requester : host.requester; req) {
            caf::anon_send(req, t);
        }
        if (!colocated) {
            host.check_hosted(t);
        }
    };
    auto started =
        cluster::start(sys, cfg.cluster, self_info, std::move(on_change), spdlog::get("cluster"));
    if (!started.error.empty()) {
        return started.error;
    }
    // Management clients (actormq-shell) that present the cluster credentials get this. Handed
    // over before start() writes the ports file, which tells a shell the node is ready: a
    // request from the same sender behind it returns only once the cluster actor has it. (Not
    // under cluster_mtx: the cluster actor takes that mutex in on_change.)
    {
        caf::scoped_actor self{sys};
        if (!colocated) {
            self->send(started.handle, cluster::manage_atom::value, host.status_actor);
        }
        self->request(started.handle, std::chrono::seconds(5), caf::get_atom::value)
            .receive([](cluster::topology&) {}, [](caf::error&) {});
    }
    std::lock_guard<std::mutex> guard{cluster_mtx};
    cluster = started.handle;
    ports["cluster"] = started.port;
    self_info.cluster_address = cfg.cluster.host + ":" + std::to_string(started.port);
    return {};
}

void server_instance::refresh_view() {
    std::string joined;
    for (const auto& c : last_topology.backups_of(self_info.node_id)) {
        joined += (joined.empty() ? "" : ",") + c;
    }
    view->set_backups(std::move(joined));
    if (!last_topology.members.empty()) { // the cluster has reported (none without one)
        std::vector<native::topology_member> groups;
        for (auto& g : last_topology.native_groups()) {
            groups.push_back(native::topology_member{g.node_id, g.live, g.backup});
        }
        native_topology->set(std::move(groups));
    }
}

void server_instance::announce(const std::string& role,
                               const std::string& node_id,
                               uint64_t sequence) {
    std::lock_guard<std::mutex> guard{cluster_mtx};
    self_info.role = role;
    self_info.node_id = node_id;
    self_info.sequence = sequence;
    refresh_view();
    if (cluster) {
        caf::anon_send(cluster, caf::update_atom::value, self_info);
    }
}

/// Opens the journal and replays it into the new server before any client can connect.
bool server_instance::recover(node_instance& inst) {
    auto& ctx = *inst.ctx;
    inst.journal = sys.spawn<caf::detached>(journal_writer, inst.ctx);
    host.exits.track(caf::actor_cast<caf::actor>(inst.journal));
    ctx.journal = inst.journal;
    caf::scoped_actor self{sys};
    std::shared_ptr<recovered_state> rs;
    // Recovery reads every segment; a large journal takes a while, hence the long bound.
    self->request(inst.journal, std::chrono::seconds(3600), recover_atom::value)
        .receive([&](std::shared_ptr<recovered_state>& r) { rs = std::move(r); },
                 [&](caf::error& e) {
                     ctx.log->error("journal_recover_failed error={}", caf::to_string(e));
                 });
    if (!rs || !report_recovery(ctx, *rs)) {
        return false;
    }
    ctx.next_message_id = rs->max_message_id + 1;
    ctx.next_tx_id = rs->max_tx_id + 1;
    inst.srv = sys.spawn(server, inst.ctx);
    bool restored = false;
    self->request(inst.srv, std::chrono::seconds(3600), recover_atom::value, rs)
        .receive([&](uint64_t) { restored = true; },
                 [&](caf::error& e) { ctx.log->error("restore_failed error={}", to_string(e)); });
    return restored;
}

/// Loads the journal, starts the server's actors and listens on the reserved ports. Returns
/// false (everything it started stopped again) when any step fails.
bool server_instance::activate(const std::string& node_id) {
    return load_instance(node_id) && open_acceptors();
}

bool server_instance::load_instance(const std::string& node_id) {
    auto ctx = std::make_shared<server_context>();
    ctx->config = cfg;
    ctx->log = log;
    ctx->wire_log = spdlog::get("protocol");
    ctx->node_id = node_id;
    ctx->ha = view;
    ctx->connections = status_info.connections;
    ctx->sessions = status_info.sessions;
    // The journal already logged journal_failed; `this` outlives the journal, which
    // deactivate() waits for.
    ctx->on_journal_failure = [this] {
        stop_on_storage_failure();
    };
    ctx->on_replication = [this](const std::string& what, const std::string& backup) {
        if (what == "backup_lost") {
            event("backup_lost", "lost the replicating backup " + backup);
            if (repl_driver) {
                caf::anon_send(repl_driver, repl_lost_atom::value);
            }
        } else if (what == "backup_in_sync") {
            event("backup_in_sync", "backup " + backup + " holds the whole journal");
            if (repl_driver) {
                caf::anon_send(repl_driver, repl_synced_atom::value);
            }
        } else {
            event("backup_attached", "backup " + backup + " started its initial sync");
        }
    };
    current = std::make_unique<node_instance>();
    auto& in = *current;
    in.ctx = ctx;
    if (cfg.journal.persistence_enabled) {
        if (!recover(in)) {
            deactivate(true);
            return false;
        }
    } else {
        in.srv = sys.spawn(server, ctx);
    }
    return true;
}

bool server_instance::open_acceptors() {
    if (!current) {
        return false;
    }
    auto& in = *current;
    // The reservations stay bound until every listener is: both sides set SO_REUSEADDR and a
    // reservation never listens, so the kernel lets the listener bind beside it. Closing them
    // first left the port free for a moment, and another process's outgoing connection could
    // take it as its local port (acceptor_failed ... Address already in use, seen in tests).
    for (auto a : cfg.acceptors) {
        a.port = ports[a.name];
        auto acc = make_listener(ioc, in.ctx, a, sys, in.srv, native_topology);
        if (auto err = acc->open(); !err.empty()) {
            log->error("acceptor_failed name={} reason=\"{}\"", a.name, err);
            deactivate(true);
            return false;
        }
        in.acceptors.push_back(std::move(acc));
    }
    reserved.clear();
    for (auto& acc : in.acceptors) {
        acc->start();
    }
    if (host.status_actor) {
        caf::anon_send(host.status_actor, instance_atom::value, name, in.srv, in.journal,
                       status_info);
    }
    if (!colocated) {
        host.scale_inbox->set(in.ctx, in.srv); // scale-down batches may come in now
    }
    if (repl_driver && cluster) {
        // Serving: backups may now ask this journal to replicate it.
        caf::anon_send(cluster, replication::endpoint_atom::value,
                       caf::actor_cast<caf::actor>(in.journal));
    }
    return true;
}

/// Closes every client connection and stops the server's actors; returns once the journal
/// is closed, so no record of this server reaches the disk afterwards.
void server_instance::deactivate(bool reserve_again) {
    if (!current) {
        return;
    }
    auto& in = *current;
    if (!colocated) {
        host.scale_inbox->clear();
    }
    if (repl_driver && cluster) {
        caf::anon_send(cluster, replication::endpoint_atom::value, caf::actor{});
    }
    if (storage_failed && in.srv) {
        // The journal answered the failed appends before it told us; a stats round through
        // the server, every address and queue lands behind those answers, so the sessions
        // hold their ERRORs before the connections close. Bounded by request-timeout-ms.
        caf::scoped_actor self{sys};
        self->request(in.srv, current->ctx->request_timeout(), stats_atom::value)
            .receive([](std::vector<queue_stats>&) {}, [](caf::error&) {});
        // The sessions still have to turn those answers into ERROR frames, and closing a
        // connection drops what it has not written yet; a client that got its ERROR closes
        // by itself. So wait for that, briefly: at most 250 ms, less when every connection
        // went away. (A connection that flushed its writes before closing would make this
        // unnecessary.)
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(250);
        while (status_info.connections->load() > 0 && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    for (auto& acc : in.acceptors) {
        acc->shutdown();
    }
    if (in.srv) {
        caf::anon_send_exit(in.srv, caf::exit_reason::user_shutdown);
    }
    if (in.journal) {
        caf::scoped_actor self{sys};
        self->monitor(in.journal);
        caf::anon_send_exit(in.journal, caf::exit_reason::user_shutdown);
        self->receive([](const caf::down_msg&) {},
                      caf::after(std::chrono::seconds(30)) >>
                          [&] {
                              // Releasing the live lock now could let another server write the
                              // journal beside this one; dying makes the kernel drop it safely.
                              log->critical("journal_stop_timeout seconds=30 action=exit");
                              spdlog::shutdown();
                              std::_Exit(1);
                          });
    }
    // ctx->journal stays set: the old instance's actors may still read it while they stop,
    // and messages to the stopped journal are simply dropped.
    current.reset();
    if (host.status_actor) {
        caf::anon_send(host.status_actor, instance_atom::value, name, server_actor{},
                       journal_actor{}, status_info);
    }
    if (reserve_again) {
        if (auto err = reserve_ports(); !err.empty()) {
            log->warn("port_reservation_failed reason=\"{}\"", err);
        }
    }
}

/// The activation's effects on the node: log lines, the status page, the cluster and SIGTERM.
/// Runs on the driver's scheduler thread: nothing here blocks (the cluster's mutex guards a
/// few assignments).
struct server_instance::effects final : activation_effects {
    server_instance& d;
    explicit effects(server_instance& owner) : d(owner) {}

    void note(const activation::note& n, int64_t activation_ms) override;
    void exit_process(int status) override { d.request_exit(status != 0); }
};

void server_instance::effects::note(const activation::note& n, int64_t ms) {
    using k = activation::note_kind;
    bool backup = d.cfg.ha_policy.role == config::ha_role::backup;
    const auto& id = n.node_id;
    switch (n.kind) {
        case k::waiting_for_backup_lock:
            d.log->info("ha_waiting_for_backup_lock path={}", d.locks->backup_path());
            break;
        case k::waiting_for_live:
            d.log->info("ha_waiting_for_live node_id={}", id);
            d.announce("backup", id);
            d.report("backup", id);
            break;
        case k::paused:
            d.log->info("ha_paused node_id={}", id);
            d.event("paused", "the live was stopped without failover; staying passive");
            break;
        case k::failing_back:
            d.log->info("ha_failing_back node_id={}", id);
            d.announce("backup", id);
            d.report("failing-back", id);
            d.event("failing_back", "asked the active backup of node " + id + " to give way");
            break;
        case k::activating:
            d.event("lock_taken", "took the live lock of node " + id);
            d.log->info("ha_activating node_id={} role={} allowed_by={} lock_state={}", id,
                        backup ? "backup" : "primary", n.allowed_by, to_string(n.found));
            d.announce("starting", id);
            d.report("starting", id);
            break;
        case k::live:
            d.log->info("ha_live node_id={} activation_ms={} allowed_by={}", id, ms, n.allowed_by);
            d.announce("live", id);
            d.report(backup ? "backup-active" : "live", id);
            if (backup) {
                d.event("failover",
                        "backup took over node " + id + " in " + std::to_string(ms) + " ms", ms);
                d.scale_down_after_failover();
            } else if (n.failing_back) {
                d.event("failback",
                        "primary is live again for node " + id + " after " + std::to_string(ms)
                            + " ms",
                        ms);
            } else {
                d.event("activated", "live for node " + id, ms);
            }
            break;
        case k::activation_failed:
            // The journal could not be loaded (or an acceptor not opened); another server
            // may do better.
            d.log->error("ha_activation_failed node_id={}", id);
            break;
        case k::giving_way:
            d.log->info("ha_giving_way node_id={}", id);
            d.event("giving_way", "the primary of node " + id + " is back: giving way");
            break;
        case k::gave_way:
            d.report("stopped", id);
            break;
        case k::backup_restarted:
            d.log->info("ha_backup_restarted node_id={}", id);
            break;
        case k::backup_exiting:
            d.log->info("ha_backup_exiting reason=\"restart-backup is false\"");
            break;
        case k::failback_abandoned:
            d.log->info("ha_failback_abandoned reason=\"the failing-back primary is gone\"");
            break;
        case k::stopped:
            d.log->info("ha_stopped node_id={} failover={}{}", id, n.hand_over,
                        n.storage_failed ? " reason=journal_failed" : "");
            d.report(n.hand_over ? "stopped" : "paused", id);
            break;
        case k::lock_write_failed:
            d.storage_failed = true;
            d.log->critical("journal_failed {} action=stop reason=\"the lock file's state could "
                            "not be written\"",
                            n.error);
            break;
        case k::lock_io_failed:
            d.storage_failed = true;
            d.log->critical("ha_lock_failed error=\"{}\" action=stop", n.error);
            break;
        case k::deactivate_failed:
            // The io side exits the process itself when the journal does not close within
            // 30 s; this is the request's own bound, reached only if that did not happen.
            d.log->critical("ha_deactivate_failed node_id={} action=exit reason=\"the instance "
                            "did not stop; the live lock stays held\"",
                            id);
            break;
    }
}

void server_instance::spawn_io() {
    lock_io = sys.spawn<caf::detached>(io_locks, locks.get());
    // The instance's blocking steps: journal recovery (scoped requests to the journal and the
    // server), binding acceptors, and the wait for the old journal's down message.
    instance_io = sys.spawn<caf::detached>(
        [this](io_instance_actor::pointer) -> io_instance_actor::behavior_type {
            return {
                [this](ha_load_atom, const std::string& node_id) { return load_instance(node_id); },
                [this](ha_open_atom) { return open_acceptors(); },
                [this](ha_close_atom, bool reserve_again) {
                    deactivate(reserve_again);
                    return true;
                },
            };
        });
}

void server_instance::start_activation() {
    const auto& hp = cfg.ha_policy;
    spawn_io();
    activation_setup setup;
    setup.settings.backup = hp.role == config::ha_role::backup;
    setup.settings.failover_on_shutdown = hp.failover_on_shutdown;
    setup.settings.allow_failback = hp.allow_failback;
    setup.settings.restart_backup = hp.restart_backup;
    setup.timeouts.poll_interval = std::chrono::milliseconds(hp.lock_poll_interval_ms);
    setup.locks = lock_io;
    setup.instance = instance_io;
    setup.effects = std::make_shared<effects>(*this);
    driver = sys.spawn(activation_driver, std::move(setup));
    caf::anon_send(driver, ha_start_atom::value);
}

void server_instance::stop_activation() {
    if (!driver && !repl_driver) {
        return;
    }
    auto driving = driver ? caf::actor_cast<caf::actor>(driver) : repl_driver;
    caf::scoped_actor self{sys};
    // The driver ends once the instance is stopped and every lock it held released. Its own
    // requests are bounded (a journal load by one hour, a close by 90 s); this bound is above
    // them, and main's stop watchdog reports a stop that still hangs.
    self->monitor(driving);
    caf::anon_send(driving, ha_stop_atom::value);
    self->receive([](const caf::down_msg&) {},
                  caf::after(std::chrono::seconds(7200)) >>
                      [&] { log->critical("ha_stop_timeout actor=activation"); });
    // Nothing is in flight to the io actors any more: end them, and wait, so that the lock
    // files and this node outlive every call on them.
    for (const auto& io : {caf::actor_cast<caf::actor>(lock_io),
                           caf::actor_cast<caf::actor>(instance_io), repl_files}) {
        if (!io) {
            continue;
        }
        self->monitor(io);
        caf::anon_send_exit(io, caf::exit_reason::user_shutdown);
        self->receive([](const caf::down_msg&) {},
                      caf::after(std::chrono::seconds(35)) >>
                          [&] { log->critical("ha_stop_timeout actor=io"); });
    }
}

std::string server_instance::open_locks() {
    if (!cfg.journal.persistence_enabled) {
        return {};
    }
    locks = std::make_unique<node_manager>(cfg.journal.journal_directory);
    if (auto err = locks->open(); !err.empty()) {
        return "lock_file_failed reason=\"" + err + "\"";
    }
    // A live-only or replicating server owns its journal directory alone.
    if (cfg.ha_policy.kind != config::ha_kind::shared_store && !locks->try_lock_live()) {
        return "journal_in_use directory=" + cfg.journal.journal_directory + " reason=\""
               + locks->path() + " is locked by another server\"";
    }
    return {};
}

bool server_instance::start_ha() {
    const auto& hp = cfg.ha_policy;
    if (hp.kind == config::ha_kind::shared_store) {
        start_activation();
        return true;
    }
    if (hp.kind == config::ha_kind::replication) {
        start_replication();
        return true;
    }
    std::string error;
    std::string node_id = locks ? locks->ensure_node_id(error) : std::string{};
    if (!lock_written(error) || !activate(node_id)) {
        return false;
    }
    if (locks && !lock_written(locks->set_state(lock_state::live))) {
        return false;
    }
    announce("live", node_id);
    report("live", node_id);
    return true;
}

void server_instance::stop() {
    stop_activation();
    deactivate(false);
    reserved.clear();
    if (cluster) {
        // Blocks until the cluster actor is gone: it must not call on_change afterwards.
        cluster::stop(sys, cluster);
        std::lock_guard<std::mutex> guard{cluster_mtx};
        cluster = nullptr;
    }
}

void server_instance::scale_down_after_failover() {
    const auto& hp = cfg.ha_policy;
    if (hp.role != config::ha_role::backup || !hp.scale_down.enabled || colocated) {
        return;
    }
    // Reference text "Scale Down and Backups": instead of serving, the backup scales down at
    // once; the stop that follows does it (scale_down_on_stop).
    log->info("scale_down_after_failover node_id={}", self_info.node_id);
    request_exit(false);
}

void server_instance::scale_down_on_stop() {
    const auto& sd = cfg.ha_policy.scale_down;
    if (!sd.enabled || !current || !cluster || colocated) {
        return;
    }
    cluster::topology t;
    cluster::member_info me;
    {
        std::lock_guard<std::mutex> guard{cluster_mtx};
        t = last_topology;
        me = self_info;
    }
    if (me.role != "live") {
        return; // not serving: nothing of this server's is anywhere else's to take over
    }
    auto target = pick_scale_down_target(t, me, sd);
    if (!target) {
        log->error("scale_down_failed reason=\"no live member{} to scale down to\" "
                   "action=stop messages_kept=true",
                   sd.group_name.empty() ? "" : " of group '" + sd.group_name + "'");
        event("scale_down_failed", "no live member to scale down to; the journal keeps every "
                                   "message");
        host.stop_report->failed = true;
        return;
    }
    auto native =
        target->native_connectors.empty() ? std::string{} : target->native_connectors.front();
    log->info("scale_down_started target={} cluster_address={} stomp={} native={}", target->name,
              target->cluster_address, target->connector, native.empty() ? "-" : native);
    event("scale_down_started", "scaling down to " + target->name);
    // Every client is told the target as its connection closes, then this server's actors and
    // its journal stop: nothing changes the journal while it is read back.
    view->set_scale_down(target->connector, native);
    deactivate(false);
    scale_down_job job;
    job.cfg = cfg;
    job.log = log;
    job.cluster = cluster;
    job.target = *target;
    job.name = name;
    job.node_id = me.node_id;
    auto rep = run_scale_down(sys, job);
    if (!rep.ok) {
        log->error("scale_down_failed target={} reason=\"{}\" moved_messages={} batches={} "
                   "action=stop messages_kept=true",
                   target->name, rep.error, rep.messages, rep.batches);
        event("scale_down_failed", rep.error);
        host.stop_report->failed = true;
        return;
    }
    auto rate = rep.seconds > 0 ? static_cast<double>(rep.messages) / rep.seconds : 0.0;
    log->info("scale_down_done target={} messages={} bytes={} batches={} duplicates={} "
              "prepared_moved={} prepared_kept={} seconds={:.3f} messages_per_second={:.0f}",
              target->name, rep.messages, rep.bytes, rep.batches, rep.duplicates,
              rep.prepared_moved, rep.prepared_kept, rep.seconds, rate);
    event("scale_down_done",
          "moved " + std::to_string(rep.messages) + " messages to " + target->name);
}

} // namespace actormq
