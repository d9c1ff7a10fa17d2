// SPDX-License-Identifier: Apache-2.0
#include "actors/ha/node.hpp"

#include "actors/broker/acceptor.hpp"
#include "actors/native/listener.hpp"
#include "actors/broker/server.hpp"
#include "actors/broker/server_context.hpp"
#include "actors/ha/node_manager.hpp"
#include "actors/journal/journal.hpp"
#include "actors/journal/recovery.hpp"
#include "actors/status/status.hpp"
#include "actors/web/web_server.hpp"
#include "cluster/cluster.hpp"
#include "cluster/management.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
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
caf::actor_system_config& caf_config(caf::actor_system_config& cfg, const config::node_config& nc) {
    if (nc.scheduler_max_threads > 0) {
        cfg.set("scheduler.max-threads", static_cast<size_t>(nc.scheduler_max_threads));
    }
    cfg.set("work-stealing.moderate-poll-attempts",
            static_cast<size_t>(nc.scheduler_moderate_poll_attempts));
    if (nc.cluster.enabled) {
        // Without both a frozen peer is never detected (caf-notes.md §3).
        cfg.set("middleman.heartbeat-interval",
                caf::timespan{std::chrono::milliseconds(nc.cluster.heartbeat_interval_ms)});
        cfg.set("middleman.connection-timeout",
                caf::timespan{std::chrono::milliseconds(nc.cluster.connection_timeout_ms)});
        cluster::add_message_types(cfg);
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
    ctx.log->info("journal_recovered directory={} records={} messages={} queues={} "
                  "rolled_back_tx={} corrupt_skipped={} seconds={:.3f}",
                  ctx.config.journal.journal_directory, rs.records, rs.messages, rs.queues.size(),
                  rs.rolled_back_transactions, rs.corrupt.size(), rs.seconds);
    return true;
}

/// One activation of the server: its journal, its actors and its listening acceptors. A
/// shared-store backup creates one each time it takes over and drops it when it gives way.
struct instance {
    std::shared_ptr<server_context> ctx;
    journal_actor journal;
    server_actor srv;
    std::vector<std::unique_ptr<listener>> acceptors;
};

} // namespace

struct node::impl {
    config::node_config cfg;
    std::shared_ptr<spdlog::logger> log;
    // The io_context outlives the actor system: sessions hold connections bound to it.
    boost::asio::io_context ioc;
    caf::actor_system_config caf_cfg;
    caf::actor_system sys;
    std::vector<std::thread> io_threads;
    std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;

    /// The port of every acceptor, fixed at the first bind so each activation listens on it.
    std::map<std::string, uint16_t> ports;
    /// While no instance serves, the acceptors' ports are held by sockets that are bound but
    /// not listening: clients get "connection refused", and no other process takes the port.
    std::vector<tcp::acceptor> reserved;

    std::unique_ptr<node_manager> locks;
    std::shared_ptr<ha_view> view = std::make_shared<ha_view>();
    std::unique_ptr<instance> current;

    /// The status actor, what it publishes, and the connection count every activation's
    /// acceptors keep; the log sink that turns warnings and errors into events.
    std::shared_ptr<status_board> board = std::make_shared<status_board>();
    std::shared_ptr<std::atomic<uint64_t>> connections = std::make_shared<std::atomic<uint64_t>>(0);
    std::shared_ptr<std::atomic<uint64_t>> sessions = std::make_shared<std::atomic<uint64_t>>(0);
    caf::actor status_actor;
    std::unique_ptr<web_server> web;
    std::shared_ptr<spdlog::sinks::sink> event_sink;
    std::shared_ptr<spdlog::sinks::dist_sink_mt> log_sink;

    /// The cluster's local handle (invalid without [cluster]), what this node last told it,
    /// and the last topology it reported; guarded by `cluster_mtx`.
    caf::actor cluster;
    std::mutex cluster_mtx;
    cluster::member_info self_info;
    cluster::topology last_topology;

    std::thread ha_thread;
    std::mutex mtx;
    std::condition_variable wake;
    bool stopping = false;
    /// Set when the journal or the lock file's state byte could not be written: this server
    /// stops, and leaves the state "live" so a shared-store backup takes over (docs/ha.md).
    std::atomic<bool> storage_failed{false};
    /// How far stop() got, for the stuck-shutdown report of main.
    /// Shared with main's watchdog, which may read it while this node is being destroyed.
    std::shared_ptr<node::stop_report> stop_report = std::make_shared<node::stop_report>();

    explicit impl(config::node_config c)
        : cfg(std::move(c)),
          log(spdlog::get("actors")),
          sys(caf_config(caf_cfg, cfg)) {}

    std::string reserve_ports();
    std::string start_cluster();
    /// Tells the cluster this node's role and node id (a no-op without a cluster).
    void announce(const std::string& role, const std::string& node_id);
    /// Recomputes the backup connectors CONNECTED names; call with `cluster_mtx` held.
    void refresh_view();
    bool activate(const std::string& node_id);
    void start_status();
    void stop_status();
    /// Tells the status actor this node's role (live, backup, backup-active, ...).
    void report(const std::string& role, const std::string& node_id);
    /// Adds an event to the status actor's log (`duration_ms` < 0: none).
    void event(const std::string& kind, const std::string& message, int64_t duration_ms = -1);
    void deactivate(bool reserve_again);
    bool recover(instance& inst);

    /// Waits one lock-poll interval or until stop(); true when the node is stopping.
    bool wait_tick();
    /// Polls the locks until this server may become live; false when stopping first.
    bool wait_for_live_lock();
    /// The HA thread: waits, activates, serves, gives way or stops (docs/ha.md).
    void ha_loop();
    /// Serves until stop() (returns false) or a failback request (returns true).
    bool serve_until_failback();
    /// The journal or the lock file failed: mark the node failed and stop it through the same
    /// SIGTERM path an operator uses (main then exits 1). Called from any thread; never blocks.
    void stop_on_storage_failure();
    /// True when a write of the lock file succeeded (`error` empty); otherwise logs the
    /// journal_failed line and stops the node.
    bool lock_written(const std::string& error);
};

void node::impl::stop_on_storage_failure() {
    stop_report->failed = true;
    if (!storage_failed.exchange(true)) {
        ::kill(::getpid(), SIGTERM);
    }
}

bool node::impl::lock_written(const std::string& error) {
    if (error.empty()) {
        return true;
    }
    log->critical("journal_failed {} action=stop reason=\"the lock file's state could not be "
                  "written\"",
                  error);
    stop_on_storage_failure();
    return false;
}

node::node(config::node_config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}

node::~node() {
    stop();
}

/// Binds (without listening) every acceptor's port, so it is known before the node serves.
std::string node::impl::reserve_ports() {
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

void node::impl::start_status() {
    auto shared_cfg = std::make_shared<const config::node_config>(cfg);
    status_actor = sys.spawn(status, shared_cfg, board, connections, sessions);
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

void node::impl::report(const std::string& role, const std::string& node_id) {
    if (status_actor) {
        caf::anon_send(status_actor, role_atom::value, role, node_id);
    }
}

void node::impl::event(const std::string& kind, const std::string& message, int64_t duration_ms) {
    if (status_actor) {
        caf::anon_send(status_actor, event_atom::value, kind, message, duration_ms);
    }
}

std::string node::impl::start_cluster() {
    const auto& first = cfg.acceptors.front();
    self_info.name = cfg.name;
    self_info.role = cfg.ha_policy.kind == config::ha_kind::shared_store ? "starting" : "live";
    self_info.node_id = locks ? locks->node_id() : std::string{};
    self_info.connector = first.host + ":" + std::to_string(ports[first.name]);
    auto on_change = [this](const cluster::topology& t) {
        std::lock_guard<std::mutex> guard{cluster_mtx};
        last_topology = t;
        refresh_view();
        if (status_actor) {
            caf::anon_send(status_actor, t);
        }
    };
    auto started =
        cluster::start(sys, cfg.cluster, self_info, std::move(on_change), spdlog::get("cluster"));
    if (!started.error.empty()) {
        return started.error;
    }
    std::lock_guard<std::mutex> guard{cluster_mtx};
    cluster = started.handle;
    // Management clients (actormq-shell) that present the cluster credentials get this.
    caf::anon_send(cluster, cluster::manage_atom::value, status_actor);
    ports["cluster"] = started.port;
    self_info.cluster_address = cfg.cluster.host + ":" + std::to_string(started.port);
    return {};
}

void node::impl::refresh_view() {
    std::string joined;
    for (const auto& c : last_topology.backups_of(self_info.node_id)) {
        joined += (joined.empty() ? "" : ",") + c;
    }
    view->set_backups(std::move(joined));
}

void node::impl::announce(const std::string& role, const std::string& node_id) {
    std::lock_guard<std::mutex> guard{cluster_mtx};
    self_info.role = role;
    self_info.node_id = node_id;
    refresh_view();
    if (cluster) {
        caf::anon_send(cluster, caf::update_atom::value, self_info);
    }
}

/// Opens the journal and replays it into the new server before any client can connect.
bool node::impl::recover(instance& inst) {
    auto& ctx = *inst.ctx;
    inst.journal = sys.spawn<caf::detached>(journal_writer, inst.ctx);
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
bool node::impl::activate(const std::string& node_id) {
    auto ctx = std::make_shared<server_context>();
    ctx->config = cfg;
    ctx->log = log;
    ctx->wire_log = spdlog::get("protocol");
    ctx->node_id = node_id;
    ctx->ha = view;
    ctx->connections = connections;
    ctx->sessions = sessions;
    // The journal already logged journal_failed; `this` outlives the journal, which
    // deactivate() waits for.
    ctx->on_journal_failure = [this] {
        stop_on_storage_failure();
    };
    current = std::make_unique<instance>();
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
    reserved.clear();
    for (auto a : cfg.acceptors) {
        a.port = ports[a.name];
        auto acc = make_listener(ioc, ctx, a, sys, in.srv);
        if (auto err = acc->open(); !err.empty()) {
            log->error("acceptor_failed name={} reason=\"{}\"", a.name, err);
            deactivate(true);
            return false;
        }
        in.acceptors.push_back(std::move(acc));
    }
    for (auto& acc : in.acceptors) {
        acc->start();
    }
    if (status_actor) {
        caf::anon_send(status_actor, instance_atom::value, in.srv, in.journal);
    }
    return true;
}

/// Closes every client connection and stops the server's actors; returns once the journal
/// is closed, so no record of this server reaches the disk afterwards.
void node::impl::deactivate(bool reserve_again) {
    if (!current) {
        return;
    }
    auto& in = *current;
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
        while (connections->load() > 0 && std::chrono::steady_clock::now() < until) {
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
    if (status_actor) {
        caf::anon_send(status_actor, instance_atom::value, server_actor{}, journal_actor{});
    }
    if (reserve_again) {
        if (auto err = reserve_ports(); !err.empty()) {
            log->warn("port_reservation_failed reason=\"{}\"", err);
        }
    }
}

bool node::impl::wait_tick() {
    std::unique_lock<std::mutex> guard{mtx};
    wake.wait_for(guard, std::chrono::milliseconds(cfg.ha_policy.lock_poll_interval_ms),
                  [this] { return stopping; });
    return stopping;
}

bool node::impl::wait_for_live_lock() {
    bool backup = cfg.ha_policy.role == config::ha_role::backup;
    if (backup) {
        bool announced = false;
        while (!locks->try_lock_backup()) {
            if (!announced) {
                log->info("ha_waiting_for_backup_lock path={}", locks->backup_path());
                announced = true;
            }
            if (wait_tick()) {
                return false;
            }
        }
        log->info("ha_waiting_for_live node_id={}", locks->node_id());
        announce("backup", locks->node_id());
        report("backup", locks->node_id());
    }
    bool paused_seen = false;
    while (true) {
        if (locks->try_lock_live()) {
            if (!backup || locks->state() != lock_state::paused) {
                return true;
            }
            // The live was stopped on purpose: stay passive until it comes back.
            locks->unlock_live();
            if (!paused_seen) {
                log->info("ha_paused node_id={}", locks->node_id());
                event("paused", "the live was stopped without failover; staying passive");
                paused_seen = true;
            }
        } else if (!backup && !locks->holds_backup()) {
            auto s = locks->state();
            // A backup serves our node id: ask it to give way (it watches the state byte).
            if ((s == lock_state::live || s == lock_state::failing_back)
                && locks->try_lock_backup()) {
                if (!lock_written(locks->set_state(lock_state::failing_back))) {
                    return false;
                }
                log->info("ha_failing_back node_id={}", locks->node_id());
                announce("backup", locks->node_id());
                report("failing-back", locks->node_id());
                event("failing_back",
                      "asked the active backup of node " + locks->node_id() + " to give way");
            }
        }
        if (wait_tick()) {
            return false;
        }
    }
}

bool node::impl::serve_until_failback() {
    const auto& hp = cfg.ha_policy;
    bool watch = hp.role == config::ha_role::backup && hp.allow_failback;
    while (!wait_tick()) {
        if (!watch || locks->state() != lock_state::failing_back) {
            continue;
        }
        // The primary that asks holds backup.lock while it waits. If that lock is free, the
        // asker died: take the state back and keep serving.
        if (!locks->try_lock_backup()) {
            return true;
        }
        if (!lock_written(locks->set_state(lock_state::live))) {
            return false;
        }
        locks->unlock_backup();
        log->info("ha_failback_abandoned reason=\"the failing-back primary is gone\"");
    }
    return false;
}

void node::impl::ha_loop() {
    const auto& hp = cfg.ha_policy;
    bool backup = hp.role == config::ha_role::backup;
    while (wait_for_live_lock()) {
        // A primary that asked a backup to give way is failing back, not starting fresh.
        bool failing_back = !backup && locks->holds_backup();
        std::string error;
        auto node_id = locks->ensure_node_id(error);
        // Say "live" at once: a paused mark left while this server loads the journal would
        // keep the backup passive if this server died meanwhile.
        if (!lock_written(error) || !lock_written(locks->set_state(lock_state::live))) {
            locks->unlock_live();
            locks->unlock_backup();
            return;
        }
        event("lock_taken", "took the live lock of node " + node_id);
        log->info("ha_activating node_id={} role={}", node_id,
                  hp.role == config::ha_role::backup ? "backup" : "primary");
        announce("starting", node_id);
        report("starting", node_id);
        auto started = std::chrono::steady_clock::now();
        if (!activate(node_id)) {
            // The journal could not be loaded; another server may do better.
            log->error("ha_activation_failed node_id={}", node_id);
            stop_report->failed = true;
            locks->unlock_live();
            locks->unlock_backup();
            ::kill(::getpid(), SIGTERM);
            return;
        }
        locks->unlock_backup();
        auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
        log->info("ha_live node_id={} activation_ms={}", node_id, took);
        announce("live", node_id);
        report(backup ? "backup-active" : "live", node_id);
        if (backup) {
            event("failover",
                  "backup took over node " + node_id + " in " + std::to_string(took) + " ms", took);
        } else if (failing_back) {
            event("failback",
                  "primary is live again for node " + node_id + " after " + std::to_string(took)
                      + " ms",
                  took);
        } else {
            event("activated", "live for node " + node_id, took);
        }
        if (!serve_until_failback()) {
            // stop(): leave the state "live" so the backup takes over, or "paused" so it
            // stays passive.
            deactivate(false);
            // A failed journal hands over: the state stays "live" whatever
            // failover-on-shutdown says, so the backup activates on the same journal.
            bool hand_over = hp.failover_on_shutdown || storage_failed;
            if (!hand_over) {
                lock_written(locks->set_state(lock_state::paused));
            }
            locks->unlock_live();
            log->info("ha_stopped node_id={} failover={}{}", node_id, hand_over,
                      storage_failed ? " reason=journal_failed" : "");
            report(hand_over ? "stopped" : "paused", node_id);
            return;
        }
        log->info("ha_giving_way node_id={}", node_id);
        event("giving_way", "the primary of node " + node_id + " is back: giving way");
        deactivate(true);
        locks->unlock_live();
        report("stopped", node_id);
        if (!hp.restart_backup) {
            log->info("ha_backup_exiting reason=\"restart-backup is false\"");
            ::kill(::getpid(), SIGTERM);
            return;
        }
        log->info("ha_backup_restarted node_id={}", node_id);
    }
    // Stopped while waiting. A failing-back primary hands the state back to the live it
    // asked to give way, so that backup keeps serving.
    if (locks->holds_backup() && cfg.ha_policy.role == config::ha_role::primary
        && locks->state() == lock_state::failing_back) {
        lock_written(locks->set_state(lock_state::live));
    }
    locks->unlock_live();
    locks->unlock_backup();
}

int node::start() {
    auto& d = *impl_;
    d.work = std::make_unique<decltype(d.work)::element_type>(d.ioc.get_executor());
    for (uint32_t i = 0; i < d.cfg.io_threads; ++i) {
        d.io_threads.emplace_back([&d] { d.ioc.run(); });
    }
    if (auto err = d.reserve_ports(); !err.empty()) {
        d.log->error("acceptor_failed reason=\"{}\"", err);
        return 1;
    }
    const auto& hp = d.cfg.ha_policy;
    bool shared_store = hp.kind == config::ha_kind::shared_store;
    if (d.cfg.journal.persistence_enabled) {
        d.locks = std::make_unique<node_manager>(d.cfg.journal.journal_directory);
        if (auto err = d.locks->open(); !err.empty()) {
            d.log->error("lock_file_failed reason=\"{}\"", err);
            return 1;
        }
        // A live-only server owns its journal directory alone.
        if (!shared_store && !d.locks->try_lock_live()) {
            d.log->error("journal_in_use directory={} reason=\"{} is locked by another server\"",
                         d.cfg.journal.journal_directory, d.locks->path());
            return 1;
        }
    }
    d.start_status();
    if (d.cfg.web.enabled) {
        d.web = std::make_unique<web_server>(d.cfg, d.board, spdlog::get("http"));
        if (auto err = d.web->open(); !err.empty()) {
            d.log->error("web_failed reason=\"{}\"", err);
            return 1;
        }
        d.ports["web"] = d.web->port();
        d.web->start();
    }
    if (d.cfg.cluster.enabled) {
        if (auto err = d.start_cluster(); !err.empty()) {
            d.log->error("cluster_failed reason=\"{}\"", err);
            return 1;
        }
    }
    nlohmann::json ports_json = nlohmann::json::object();
    if (!shared_store) {
        std::string error;
        std::string node_id = d.locks ? d.locks->ensure_node_id(error) : std::string{};
        if (!d.lock_written(error) || !d.activate(node_id)) {
            return 1;
        }
        if (d.locks && !d.lock_written(d.locks->set_state(lock_state::live))) {
            return 1;
        }
        d.announce("live", node_id);
        d.report("live", node_id);
    }
    for (const auto& [name, port] : d.ports) {
        ports_json[name] = port;
    }
    const auto& pf = d.cfg.ports_file;
    if (!pf.empty() && !write_ports_file(pf, ports_json)) {
        d.log->error("ports_file_failed path={}", pf);
        return 1;
    }
    d.log->info("node_started name={} ha_policy={} ports={}", d.cfg.name,
                !shared_store                        ? "live-only"
                : hp.role == config::ha_role::backup ? "shared-store-backup"
                                                     : "shared-store-primary",
                ports_json.dump());
    d.event("started", "node " + d.cfg.name + " started (" + ports_json.dump() + ")");
    if (shared_store) {
        d.ha_thread = std::thread([&d] { d.ha_loop(); });
    }
    return 0;
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
    d.event("stopping", "node " + d.cfg.name + " is stopping");
    d.stop_report->stage = "ha-thread";
    d.wake.notify_all();
    if (d.ha_thread.joinable()) {
        d.ha_thread.join();
    }
    d.stop_report->stage = "deactivate";
    d.deactivate(false);
    d.reserved.clear();
    d.stop_report->stage = "web";
    if (d.web) {
        d.web->stop();
    }
    d.stop_report->stage = "cluster";
    if (d.cluster) {
        // Blocks until the cluster actor is gone: it must not call on_change afterwards.
        cluster::stop(d.sys, d.cluster);
        d.cluster = nullptr;
    }
    d.stop_report->stage = "status";
    d.stop_status();
    d.stop_report->stage = "io-threads";
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
    d.stop_report->stage = "actors";
    d.sys.await_all_actors_done();
    d.stop_report->stage = "late-io";
    d.ioc.restart();
    d.ioc.poll();
    d.stop_report->stage = "actor-system";
}

} // namespace actormq
