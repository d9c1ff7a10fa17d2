// SPDX-License-Identifier: Apache-2.0
#pragma once

// The server-wide table of XA transaction branches by xid (docs/protocol.md §10).
//
// Why it lives in server_context and not in an actor: a prepared branch belongs to the server
// instance whose journal holds its prepare record, not to the session that prepared it; any
// session of any connection and acceptor may commit, roll back or list it. server_context is
// exactly that scope: one per activation (a failover or restart builds a fresh one, and the
// journal's recovery fills its table from the prepare records), and every session already
// holds it. The table only claims and releases branches under a mutex, for microseconds, and
// never waits; the slow parts (journal records, addresses, queues) run in the session that
// claimed the branch, so a second actor hop per XA call would buy nothing.

#include "actors/fwd.hpp"

#include <caf/actor_addr.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace actormq {

/// Where an XA branch is (X/Open's states, as the server sees them).
enum class xa_phase : uint8_t {
    active,        ///< bound to its session; work joins it
    suspended,     ///< xa_end(suspend): unbound, may be resumed by its session
    ended,         ///< xa_end(success): complete, may be prepared or committed one-phase
    rollback_only, ///< xa_end(fail): may only be rolled back
    preparing,     ///< its session writes it to the journal
    prepared,      ///< durable and undecided: waits for commit or rollback from anyone
    finishing,     ///< a session commits or rolls it back now
};

/// One branch. Before it is prepared, its work (sends, acks) is kept by its owner session
/// (another session that prepares, commits or rolls it back takes it over first); once
/// prepared, the journal and the addresses and queues named here hold it.
struct xa_branch {
    xa_phase phase = xa_phase::active;
    /// The session that started it (and keeps its work until prepare).
    caf::actor_addr owner;
    /// The journal's transaction id, from prepare on.
    uint64_t tx_id = 0;
    /// Prepared here: the addresses holding its messages and the queues holding its acks.
    std::vector<address_actor> addresses;
    std::vector<queue_actor> queues;
    /// Restored by recovery: the addresses to look up by name (they forward to their queues).
    std::vector<std::string> address_names;
};

/// The table. Keys are encoded xids (native_session.hpp, xid_key).
class xa_registry {
public:
    /// Adds an active branch owned by `owner`; false when the xid exists (XAER_DUPID).
    bool start(const std::string& key, caf::actor_addr owner) {
        std::lock_guard<std::mutex> g{mu_};
        xa_branch b;
        b.owner = std::move(owner);
        return branches_.emplace(key, std::move(b)).second;
    }

    /// A copy of the branch, if it exists.
    std::optional<xa_branch> find(const std::string& key) const {
        std::lock_guard<std::mutex> g{mu_};
        auto it = branches_.find(key);
        return it == branches_.end() ? std::nullopt : std::optional<xa_branch>{it->second};
    }

    /// Moves the branch from `from` to `to`; false (nothing changed) when it is not in `from`.
    bool move(const std::string& key, xa_phase from, xa_phase to) {
        std::lock_guard<std::mutex> g{mu_};
        auto it = branches_.find(key);
        if (it == branches_.end() || it->second.phase != from) {
            return false;
        }
        it->second.phase = to;
        return true;
    }

    /// Moves an ended branch to preparing if fewer than `max` are preparing or prepared.
    /// Returns false and leaves it ended when the limit is reached.
    bool reserve_prepare(const std::string& key, size_t max) {
        std::lock_guard<std::mutex> g{mu_};
        size_t n = 0;
        for (const auto& [k, b] : branches_) {
            n += b.phase == xa_phase::preparing || b.phase == xa_phase::prepared
                 || (b.phase == xa_phase::finishing && b.tx_id != 0);
        }
        auto it = branches_.find(key);
        if (it == branches_.end() || it->second.phase != xa_phase::ended || n >= max) {
            return false;
        }
        it->second.phase = xa_phase::preparing;
        return true;
    }

    /// Makes `to` the owner of an ended (or rollback-only) unprepared branch still owned by
    /// `from`, for a session that prepares, commits or rolls back a branch another session
    /// worked on; false (nothing changed) when the branch is gone, in another phase or owned
    /// by someone else by now.
    bool take_over(const std::string& key, const caf::actor_addr& from, caf::actor_addr to) {
        std::lock_guard<std::mutex> g{mu_};
        auto it = branches_.find(key);
        if (it == branches_.end() || it->second.owner != from || it->second.tx_id != 0
            || (it->second.phase != xa_phase::ended
                && it->second.phase != xa_phase::rollback_only)) {
            return false;
        }
        it->second.owner = std::move(to);
        return true;
    }

    /// Records a prepared branch's outcome holders and makes it prepared.
    void prepared(const std::string& key,
                  uint64_t tx_id,
                  std::vector<address_actor> addresses,
                  std::vector<queue_actor> queues) {
        std::lock_guard<std::mutex> g{mu_};
        auto& b = branches_[key];
        b.phase = xa_phase::prepared;
        b.owner = caf::actor_addr{};
        b.tx_id = tx_id;
        b.addresses = std::move(addresses);
        b.queues = std::move(queues);
    }

    /// A branch recovery found prepared in the journal.
    void restore(const std::string& key, uint64_t tx_id, std::vector<std::string> addresses) {
        std::lock_guard<std::mutex> g{mu_};
        auto& b = branches_[key];
        b.phase = xa_phase::prepared;
        b.tx_id = tx_id;
        b.address_names = std::move(addresses);
    }

    void erase(const std::string& key) {
        std::lock_guard<std::mutex> g{mu_};
        branches_.erase(key);
    }

    /// The keys of every prepared branch (xa_recover), in key order.
    std::vector<std::string> prepared_keys() const {
        std::lock_guard<std::mutex> g{mu_};
        std::vector<std::string> out;
        for (const auto& [k, b] : branches_) {
            if (b.phase == xa_phase::prepared) {
                out.push_back(k);
            }
        }
        return out;
    }

    /// The keys of the unprepared branches `owner` started (rolled back when it ends).
    std::vector<std::string> owned_by(const caf::actor_addr& owner) const {
        std::lock_guard<std::mutex> g{mu_};
        std::vector<std::string> out;
        for (const auto& [k, b] : branches_) {
            if (b.owner == owner && b.tx_id == 0) {
                out.push_back(k);
            }
        }
        return out;
    }

private:
    mutable std::mutex mu_;
    std::map<std::string, xa_branch> branches_;
};

} // namespace actormq
