// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/broker/ack_lane.hpp"
#include "actors/broker/xa_registry.hpp"
#include "actors/fwd.hpp"
#include "config/node_config.hpp"

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace actormq {

/// What the cluster knows about this server's backups, read by every CONNECT (the
/// `backup-connector` header). Written by the cluster's topology callback; shared by every
/// activation of the node.
class ha_view {
public:
    void set_backups(std::string connectors) {
        std::lock_guard<std::mutex> guard{mtx_};
        backups_ = std::move(connectors);
    }

    /// "HOST:PORT[,HOST:PORT...]" of the backups of this node id, or "" if none is known.
    std::string backups() const {
        std::lock_guard<std::mutex> guard{mtx_};
        return backups_;
    }

    /// Scale-down (docs/ha.md): the target's STOMP and native "HOST:PORT", set by the node
    /// just before it closes its clients; connections closed then name it.
    void set_scale_down(std::string stomp, std::string native) {
        std::lock_guard<std::mutex> guard{mtx_};
        scale_down_stomp_ = std::move(stomp);
        scale_down_native_ = std::move(native);
    }
    std::string scale_down_stomp() const {
        std::lock_guard<std::mutex> guard{mtx_};
        return scale_down_stomp_;
    }
    std::string scale_down_native() const {
        std::lock_guard<std::mutex> guard{mtx_};
        return scale_down_native_;
    }

private:
    mutable std::mutex mtx_;
    std::string backups_;
    std::string scale_down_stomp_;
    std::string scale_down_native_;
};

struct address_lane;

/// The send lanes of this server instance's addresses by address name (send_lane.hpp): each
/// address adds its own when it starts and removes it when it is deleted; connections look
/// them up on their Asio threads.
class lane_registry {
public:
    void add(const std::string& address, std::shared_ptr<address_lane> lane) {
        std::lock_guard<std::mutex> guard{mtx_};
        lanes_[address] = std::move(lane);
    }

    /// Removes the lane of `address` if it is still `lane` (a new address of the same name
    /// may have added its own meanwhile).
    void remove(const std::string& address, const address_lane* lane) {
        std::lock_guard<std::mutex> guard{mtx_};
        if (auto i = lanes_.find(address); i != lanes_.end() && i->second.get() == lane) {
            lanes_.erase(i);
        }
    }

    /// The lane of `address`, or null.
    std::shared_ptr<address_lane> find(const std::string& address) const {
        std::lock_guard<std::mutex> guard{mtx_};
        auto i = lanes_.find(address);
        return i == lanes_.end() ? nullptr : i->second;
    }

private:
    mutable std::mutex mtx_;
    std::unordered_map<std::string, std::shared_ptr<address_lane>> lanes_;
};

/// What every actor of one server instance shares: its config, its loggers and the id
/// counters. Created once at start; only the atomics change afterwards.
struct server_context {
    config::node_config config;
    /// Logger of actors/ ("actors").
    std::shared_ptr<spdlog::logger> log;
    /// Logger of the wire side ("protocol").
    std::shared_ptr<spdlog::logger> wire_log;
    /// The journal; a null handle when persistence-enabled is false.
    journal_actor journal;
    /// Called once, on the journal's thread, when a write, sync or other call on a journal
    /// file failed: the node stops this server instance and exits non-zero (docs/architecture.md,
    /// "Failure model"). Must not block. Empty: nobody is told (the journal still refuses
    /// every later append).
    std::function<void()> on_journal_failure;
    /// Called on the journal's thread when its replicating backup attaches, is in sync or is
    /// lost: (event, backup name) with event "backup_attached", "backup_in_sync" or
    /// "backup_lost". Must not block. Empty: nobody is told.
    std::function<void(const std::string&, const std::string&)> on_replication;
    /// The node id this server serves (shared-store: taken from the lock file); "" for a
    /// live-only node.
    std::string node_id;
    /// The cluster's view of this node id's backups; null without HA.
    std::shared_ptr<ha_view> ha;
    /// Client connections open on this node (every activation's acceptors), for status.
    std::shared_ptr<std::atomic<uint64_t>> connections = std::make_shared<std::atomic<uint64_t>>(0);
    /// Of those, the ones that completed CONNECT and have a session.
    std::shared_ptr<std::atomic<uint64_t>> sessions = std::make_shared<std::atomic<uint64_t>>(0);
    /// False while this live has lost its replicating backup and holds every confirmation
    /// for a quorum vote (vote-on-replication-failure, docs/replication.md): new clients are
    /// refused, so they go to whichever server the vote leaves serving. Set by the journal.
    std::atomic<bool> accepting{true};
    /// While a replicating backup is attached, the journal's last look at it (steady clock,
    /// ns since its epoch; 0: none attached). Older than the cluster's connection timeout
    /// means this process stood still (a SIGSTOP) and its backup may have taken over, so a
    /// new client is refused until the journal has looked again.
    std::atomic<int64_t> replica_checked_ns{0};

    /// The journal looked at its replica at `t` (see `replica_checked_ns`).
    void replica_checked(std::chrono::steady_clock::time_point t) {
        replica_checked_ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    }

    /// Whether a new client may be let in now (see `accepting`, `replica_checked_ns`).
    bool lets_clients_in() const {
        if (!accepting.load()) {
            return false;
        }
        auto checked = replica_checked_ns.load();
        if (checked == 0) {
            return true;
        }
        auto now = std::chrono::steady_clock::now().time_since_epoch();
        auto limit = std::chrono::milliseconds(config.cluster.connection_timeout_ms);
        return now - std::chrono::nanoseconds(checked) <= limit;
    }
    /// The send lanes of the addresses (send_lane.hpp).
    std::shared_ptr<lane_registry> lanes = std::make_shared<lane_registry>();
    /// The ACK lanes of the durable anycast queues, by queue actor id (ack_lane.hpp).
    std::shared_ptr<ack_lane_registry> ack_lanes = std::make_shared<ack_lane_registry>();
    /// The XA branches of this server instance by xid (xa_registry.hpp says why here).
    std::shared_ptr<xa_registry> xa = std::make_shared<xa_registry>();
    std::atomic<uint64_t> next_message_id{1};
    std::atomic<uint64_t> next_tx_id{1};
    std::atomic<uint64_t> next_session_id{1};
    /// Queue actors alive on this server (max-auto-created-queues); each queue adds itself
    /// when it starts and subtracts when it ends.
    std::atomic<uint64_t> queue_count{0};

    /// The request timeout every actor uses (config `request-timeout-ms`).
    std::chrono::milliseconds request_timeout() const {
        return std::chrono::milliseconds(config.request_timeout_ms);
    }
};

/// The `message` of the ERROR a client gets when it reaches the limit `key` (docs/stomp.md,
/// "Limits"): "limit KEY (VALUE) reached".
inline std::string limit_message(std::string_view key, uint64_t value) {
    return "limit " + std::string{key} + " (" + std::to_string(value) + ") reached";
}

/// The bytes an address holds in its queues, shared by the address (which adds on routing)
/// and its queues (which subtract when a message leaves). Atomic so no actor reads another's
/// state; only the owning address decides on the full policy.
struct address_usage {
    std::atomic<int64_t> bytes{0};
    /// max-size-bytes; negative = unbounded.
    int64_t max_bytes = -1;
};

} // namespace actormq
