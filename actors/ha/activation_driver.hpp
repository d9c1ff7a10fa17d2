// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/ha/activation.hpp"
#include "actors/ha/node_manager.hpp"

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace actormq {

/// What the lock io actor is asked to do (one short system call or two each).
enum class lock_op : uint8_t {
    take_backup,   ///< try backup.lock; answers `taken` and the node id
    poll_live,     ///< try the live lock; answers `taken`, the state byte and the node id
    read_state,    ///< answers the state byte
    write_state,   ///< writes and syncs the given state byte; answers `error`
    claim_node_id, ///< reads or creates the node id; answers it or `error`
};

/// The lock io actor's answer; which fields count depends on the lock_op.
struct lock_reply {
    bool taken = false;
    lock_state state = lock_state::not_started;
    std::string node_id;
    std::string error;
};

} // namespace actormq

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::lock_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::lock_state)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::lock_reply)

namespace actormq {

using ha_start_atom = caf::atom_constant<caf::atom("ha_start")>;
using ha_tick_atom = caf::atom_constant<caf::atom("ha_tick")>;
using ha_stop_atom = caf::atom_constant<caf::atom("ha_stop")>;
using ha_fail_atom = caf::atom_constant<caf::atom("ha_fail")>;
using ha_lock_atom = caf::atom_constant<caf::atom("ha_lock")>;
using ha_unlock_atom = caf::atom_constant<caf::atom("ha_unlock")>;
using ha_sync_atom = caf::atom_constant<caf::atom("ha_sync")>;
using ha_load_atom = caf::atom_constant<caf::atom("ha_load")>;
using ha_open_atom = caf::atom_constant<caf::atom("ha_open")>;
using ha_close_atom = caf::atom_constant<caf::atom("ha_close")>;

/// The lock files' io actor (`io_locks`, detached): every call on node_manager goes here.
using io_locks_actor = caf::typed_actor<
    // One lock operation; `lock_state` is the byte to write for write_state.
    caf::replies_to<ha_lock_atom, lock_op, lock_state>::with<lock_reply>,
    // Release the live lock and/or backup.lock (handled in order with the requests).
    caf::reacts_to<ha_unlock_atom, bool, bool>,
    // Answers once everything sent before it is done.
    caf::replies_to<ha_sync_atom>::with<bool>>;

/// The server instance's io actor (`io_instance`, detached): journal load, acceptors, teardown.
using io_instance_actor = caf::typed_actor<
    // Recover the journal into a new server instance for this node id; false: it failed and
    // whatever it started is stopped again.
    caf::replies_to<ha_load_atom, std::string>::with<bool>,
    // Listen on the reserved ports; false: an acceptor failed and the instance is stopped.
    caf::replies_to<ha_open_atom>::with<bool>,
    // Close acceptors and connections, stop the server, wait for the journal to close; `true`
    // keeps the ports reserved for the next activation. Answers true once the journal is gone.
    caf::replies_to<ha_close_atom, bool>::with<bool>>;

/// The activation driver: runs activation::activation_state on the scheduler.
using activation_actor = caf::typed_actor<
    // Begin (once).
    caf::reacts_to<ha_start_atom>,
    // A lock-poll tick of the given generation (sent to itself).
    caf::reacts_to<ha_tick_atom, uint64_t>,
    // The journal failed: the state stays `L` when the node stops.
    caf::reacts_to<ha_fail_atom>,
    // Stop; the driver ends once every lock it held is released.
    caf::reacts_to<ha_stop_atom>>;

/// What the driver cannot do as a message: log lines, the status page, the cluster, SIGTERM.
/// Called on the driver's scheduler thread; implementations must not block.
class activation_effects {
public:
    virtual ~activation_effects() = default;
    /// Reports a note (log line, status event, role, cluster announce). `activation_ms` is the
    /// time since the journal load began (live notes), else -1.
    virtual void note(const activation::note& n, int64_t activation_ms) = 0;
    /// Ends the process through SIGTERM, as an operator would; status 1 marks it failed.
    virtual void exit_process(int status) = 0;
};

/// Every wait of the driver has a bound (style rule 12).
struct activation_timeouts {
    /// Between two lock polls, and between two looks at the state byte while serving.
    caf::timespan poll_interval = std::chrono::milliseconds(10);
    /// A lock call is a non-blocking flock, a pread or a one-byte write with fdatasync; 30 s
    /// means the disk is gone, and the node stops with status 1.
    caf::timespan lock_request = std::chrono::seconds(30);
    /// Recovery reads every segment: a large journal takes a while.
    caf::timespan load = std::chrono::hours(1);
    /// Binding and listening on already reserved ports.
    caf::timespan open = std::chrono::seconds(60);
    /// Longer than the io side's own 30 s bound on the journal's close (it exits first).
    caf::timespan close = std::chrono::seconds(90);
};

/// Everything the driver is spawned with.
struct activation_setup {
    activation::settings settings;
    activation_timeouts timeouts;
    io_locks_actor locks;
    io_instance_actor instance;
    std::shared_ptr<activation_effects> effects;
};

/// The driver's state: the machine and when the current journal load began.
struct activation_driver_state {
    static inline const char* name = "activation";
    activation::activation_state machine{activation::settings{}};
    activation_setup setup;
    std::chrono::steady_clock::time_point load_started;
    /// Messages the driver did not expect (style rule 14); tests check it stays 0.
    uint64_t unexpected = 0;
};

/// The activation driver's behaviour (docs/architecture.md, "Activation").
activation_actor::behavior_type
activation_driver(activation_actor::stateful_pointer<activation_driver_state> self,
                  activation_setup setup);

/// The lock io actor over `locks`, which must outlive it. Spawn it detached.
io_locks_actor::behavior_type io_locks(io_locks_actor::pointer self, node_manager* locks);

} // namespace actormq
