// SPDX-License-Identifier: Apache-2.0
#pragma once

// The inside of `node` (actors/ha/node.hpp), shared by its source files: node.cpp (start, stop,
// instances, the shared-store activation's effects) and node_replication.cpp (the replication
// activation's effects). Nothing outside actors/ha/node*.cpp includes it.

#include "actors/broker/server_context.hpp"
#include "actors/fwd.hpp"
#include "actors/ha/activation_driver.hpp"
#include "actors/ha/colocation.hpp"
#include "actors/ha/exit_tracker.hpp"
#include "actors/ha/node.hpp"
#include "actors/ha/node_manager.hpp"
#include "actors/ha/scale_down.hpp"
#include "actors/native/listener.hpp"
#include "actors/native/topology_feed.hpp"
#include "actors/status/status.hpp"
#include "actors/web/status_board.hpp"
#include "actors/web/web_server.hpp"
#include "cluster/cluster.hpp"
#include "config/node_config.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace actormq {

/// One activation of the server: its journal, its actors and its listening acceptors. A
/// shared-store backup creates one each time it takes over and drops it when it gives way.
struct node_instance {
    std::shared_ptr<server_context> ctx;
    journal_actor journal;
    server_actor srv;
    std::vector<std::unique_ptr<listener>> acceptors;
};

/// One server instance the node hosts (../shared/design.md, "Processes"): the node's own
/// server, or a colocated backup another node asked it to run (docs/ha.md, "Colocated
/// backups"). Each has its own config (name, ports, journal directory, HA role), node id, lock
/// file, acceptors, cluster member and activation driver; they share the node's actor system,
/// Asio threads and status actor.
struct server_instance {
    server_instance(node::impl& owner, config::node_config c, bool is_colocated);

    node::impl& host;
    /// The instance's name: the node's name for its own, colocated_backup_N for the others.
    std::string name;
    bool colocated = false;
    config::node_config cfg;
    std::shared_ptr<spdlog::logger> log;
    caf::actor_system& sys;
    boost::asio::io_context& ioc;

    /// The connections and sessions open on this instance (the node's counters for its own)
    /// and its journal's place, for the status actor.
    instance_info status_info;

    /// The port of every acceptor, fixed at the first bind so each activation listens on it.
    std::map<std::string, uint16_t> ports;
    /// While no instance serves, the acceptors' ports are held by sockets that are bound but
    /// not listening: clients get "connection refused", and no other process takes the port.
    std::vector<boost::asio::ip::tcp::acceptor> reserved;

    std::unique_ptr<node_manager> locks;
    std::shared_ptr<ha_view> view = std::make_shared<ha_view>();
    std::unique_ptr<node_instance> current;

    /// The cluster's local handle (invalid without [cluster]), what this instance last told
    /// it, and the last topology it reported; guarded by `cluster_mtx`.
    caf::actor cluster;
    std::mutex cluster_mtx;
    cluster::member_info self_info;
    cluster::topology last_topology;
    /// The native topology every activation's native acceptors push (docs/protocol.md §12);
    /// set from the cluster's topology, never set without [cluster].
    std::shared_ptr<native_topology_feed> native_topology =
        std::make_shared<native_topology_feed>();

    /// The shared-store activation: its driver and the io actors that do its blocking steps
    /// (docs/architecture.md, "Activation"). Invalid handles for a live-only node.
    activation_actor driver;
    io_locks_actor lock_io;
    io_instance_actor instance_io;
    /// The replication activation (docs/replication.md): its driver and the io actor that
    /// moves old data aside. Invalid unless [ha-policy.replication].
    caf::actor repl_driver;
    caf::actor repl_files;
    /// Set when the journal or the lock file's state byte could not be written: this server
    /// stops, and leaves the state "live" so a shared-store backup takes over (docs/ha.md).
    std::atomic<bool> storage_failed{false};
    /// A colocated backup's live: the node id it pairs with; "" otherwise.
    std::string live_node_id;
    /// A colocated backup's N (of colocated_backup_N); 0 for the node's own instance.
    uint32_t slot = 0;
    /// A colocated backup's actor (the handle its requester monitors); ended with it.
    caf::actor handle;
    /// A colocated backup's stand-in requester (it asks for a backup once the instance took
    /// over; actors/ha/colocation.hpp); guarded by `cluster_mtx`, fed its topology.
    caf::actor requester;
    /// The instance's stop was asked for already (a colocated one stops alone).
    std::atomic<bool> stop_requested{false};
    /// A colocated backup: what its host last told its driver supersedes it (see
    /// node::impl::check_hosted); guarded by the host's `instances_mtx`.
    std::string superseded_by;

    std::string reserve_ports();
    /// Opens the lock file and, unless shared-store, takes the live lock: "" or the reason.
    std::string open_locks();
    std::string start_cluster();
    /// Tells the cluster this instance's role and node id (a no-op without a cluster).
    /// `sequence`: the activation sequence of the journal served or held (replication only).
    void announce(const std::string& role, const std::string& node_id, uint64_t sequence = 0);
    /// Recomputes the backup connectors CONNECTED names; call with `cluster_mtx` held.
    void refresh_view();
    /// Loads the journal into a new instance, then listens (a live-only node's start).
    bool activate(const std::string& node_id);
    /// Recovers the journal into a new instance (server actor included); false: it failed and
    /// the instance is gone again.
    bool load_instance(const std::string& node_id);
    /// Listens on the reserved ports; false: an acceptor failed and the instance is gone.
    bool open_acceptors();
    /// Tells the status actor this instance's role (live, backup, backup-active, ...).
    void report(const std::string& role, const std::string& node_id);
    /// Adds an event to the status actor's log (`duration_ms` < 0: none).
    void event(const std::string& kind, const std::string& message, int64_t duration_ms = -1);
    void deactivate(bool reserve_again);
    bool recover(node_instance& inst);
    /// Starts the activation its HA policy asks for: a live-only instance loads and serves at
    /// once (false: it could not), the others spawn their driver.
    bool start_ha();

    /// Spawns the activation's io actors and its driver, and starts it.
    void start_activation();
    /// The io actors both activations use (lock file, server instance).
    void spawn_io();
    /// Spawns the replication driver and starts it.
    void start_replication();
    struct repl_effects;
    /// Stops the driver (it deactivates and releases the locks), then its io actors.
    void stop_activation();
    /// Stops everything of the instance: driver, acceptors, journal, cluster member.
    /// Blocking; never on a scheduler thread.
    void stop();
    /// The instance asks to end: the node's own instance ends the process (SIGTERM once;
    /// `failed` makes main exit 1), a colocated one stops alone.
    void request_exit(bool failed);
    struct effects;
    /// The journal or the lock file failed: mark the instance failed and stop it through the
    /// same path an operator uses. Called from any thread; never blocks.
    void stop_on_storage_failure();
    /// True when a write of the lock file succeeded (`error` empty); otherwise logs the
    /// journal_failed line and stops the instance.
    bool lock_written(const std::string& error);
    /// With scale-down, a serving instance closes its clients (telling them the target),
    /// stops, and moves its journal's content to another live (actors/ha/scale_down.hpp).
    /// Blocking: the node's stop. A failure is logged and makes the exit status 1.
    void scale_down_on_stop();
    /// A backup with scale-down that just took over stops at once, and so scales down.
    void scale_down_after_failover();
};

struct node::impl {
    config::node_config cfg;
    std::shared_ptr<spdlog::logger> log;
    // The io_context outlives the actor system: sessions hold connections bound to it.
    boost::asio::io_context ioc;
    caf::actor_system_config caf_cfg;
    caf::actor_system sys;
    exit_tracker exits;
    std::vector<std::thread> io_threads;
    std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;

    /// The node's own server instance.
    std::unique_ptr<server_instance> own;
    /// The colocated backups it hosts, by name; guarded by `instances_mtx`.
    std::mutex instances_mtx;
    std::map<std::string, std::unique_ptr<server_instance>> hosted;

    /// The status actor, what it publishes, and the connection counts of the own instance's
    /// activations (each colocated instance keeps its own); the log sink that turns warnings
    /// and errors into events.
    std::shared_ptr<status_board> board = std::make_shared<status_board>();
    std::shared_ptr<std::atomic<uint64_t>> connections = std::make_shared<std::atomic<uint64_t>>(0);
    std::shared_ptr<std::atomic<uint64_t>> sessions = std::make_shared<std::atomic<uint64_t>>(0);
    caf::actor status_actor;
    std::unique_ptr<web_server> web;
    std::shared_ptr<spdlog::sinks::sink> event_sink;
    std::shared_ptr<spdlog::sinks::dist_sink_mt> log_sink;

    std::mutex mtx;
    bool stopping = false;
    /// SIGTERM was sent to this process already (one is enough).
    std::atomic<bool> sigterm_sent{false};
    /// How far stop() got, for the stuck-shutdown report of main.
    /// Shared with main's watchdog, which may read it while this node is being destroyed.
    std::shared_ptr<node::stop_report> stop_report = std::make_shared<node::stop_report>();

    explicit impl(config::node_config c);

    void start_status();
    void stop_status();
    /// Sends SIGTERM to this process once; `failed` makes main exit 1.
    void request_exit(bool failed);
    /// Stops and forgets the colocated instance `name` (from any thread, never blocking: a
    /// detached thread does the stop and is joined when the node stops).
    void drop_hosted(const std::string& name);
    /// Stops every colocated instance; blocking (the node's stop).
    void stop_hosted();
    std::vector<std::thread> droppers;
    /// Set once the node stops its colocated instances: no new one is taken in.
    bool stopping_hosted = false;

    /// Scale-down's target side: what its endpoint routes into (the own instance's server
    /// while it serves), and the endpoint registered with the cluster.
    std::shared_ptr<scale_down_inbox> scale_inbox = std::make_shared<scale_down_inbox>();
    caf::actor scale_endpoint;

    // -- colocated backups (actors/ha/node_colocation.cpp, docs/ha.md) --------------------------

    /// The backups this node runs or promised (max-backups; 0 unless [ha-policy.colocated]).
    std::shared_ptr<colocation_book> book;
    /// Answers other lives' backup requests (registered with the cluster).
    caf::actor endpoint;
    /// Asks other lives for this node's backup (request-backup).
    caf::actor requester;
    /// Checks a remote spawn's credentials and ticket; the slot, or nullopt (logged).
    std::optional<uint32_t> admit(const cluster::colocated_spec& spec);
    /// Builds and starts the colocated instance a spawn asked for; "" or why it could not.
    /// Blocking (ports, lock file, cluster member): called on a detached actor.
    std::string start_hosted(const cluster::colocated_spec& spec, caf::actor handle);
    /// Spawns the stand-in requester of the colocated instance `inst` started for `spec`.
    void start_stand_in(server_instance& inst, const cluster::colocated_spec& spec);
    /// Tells the status actor an instance is gone.
    void report_gone(const std::string& name);
    /// The colocated backup this node runs for `node_id` that pairs with nobody, if any (for
    /// the endpoint: colocation_endpoint()). From any thread.
    unpaired_instance unpaired_of(const std::string& node_id);
    /// The own instance's topology changed: tells each colocated backup with a replication
    /// driver which member, if any, now backs up its live instead (superseding_member()).
    /// Called from the own instance's cluster callback, with its `cluster_mtx` held.
    void check_hosted(const cluster::topology& t);
    /// Spawns the endpoint and, with request-backup, the requester (after the cluster started).
    void start_colocation();
    void stop_colocation();
};

/// Registers the colocated_backup actor type (before the actor system exists); `d` outlives
/// every actor it spawns.
void add_colocation_type(caf::actor_system_config& cc, node::impl* d);

/// The config of colocated backup N (spec.slot) of the live whose config is `live`, run on the
/// node whose config is `here` (its own cluster address `own_cluster_address`): "" and `out`,
/// or why not (docs/ha.md, "Colocated backups").
std::string colocated_instance_config(const config::node_config& live,
                                      const config::node_config& here,
                                      const cluster::colocated_spec& spec,
                                      const std::string& own_cluster_address,
                                      config::node_config& out);

} // namespace actormq
