// SPDX-License-Identifier: Apache-2.0
// The host's side of colocated backups (docs/ha.md, "Colocated backups"): the book of the slots
// it runs or promised, the endpoint that answers backup requests, and which member supersedes
// an instance it runs. The requester is in colocation.cpp.
#include "actors/ha/colocation.hpp"

#include <caf/message_view.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/sec.hpp>
#include <spdlog/spdlog.h>

#include <random>

namespace actormq {

namespace {

std::shared_ptr<spdlog::logger> log() {
    return colocation_log();
}

} // namespace

bool is_colocated_name(const std::string& name) {
    return name.rfind("colocated_backup_", 0) == 0;
}

std::string superseding_member(const cluster::topology& t,
                               const std::string& instance_address,
                               const std::string& live_node_id) {
    if (live_node_id.empty() || instance_address.empty()) {
        return {};
    }
    std::string by;
    for (const auto& m : t.members) {
        if (m.cluster_address == instance_address) {
            if (!m.node_id.empty()) {
                return {}; // it announces a node id: paired, holding or serving
            }
        } else if (by.empty() && m.role == "backup" && m.node_id == live_node_id
                   && !m.cluster_address.empty() && !m.hosted_by.empty()) {
            // Only another colocated instance: a node's own server announced as the backup of
            // that node id is its primary syncing to fail back, and the instance that gave
            // way to it is to become its backup.
            by = m.name + "@" + m.cluster_address;
        }
    }
    return by;
}

colocation_book::colocation_book(uint32_t max_backups,
                                 std::chrono::milliseconds ticket_ttl,
                                 clock_fn now)
    : max_(max_backups),
      ttl_(ticket_ttl),
      now_(std::move(now)),
      next_ticket_(std::random_device{}()) {
    // Tickets only tie a spawn to the grant before it; the credentials that come with the
    // spawn are what keeps strangers out. A random start still makes them hard to guess.
    next_ticket_ = (next_ticket_ << 32) ^ std::random_device{}();
}

void colocation_book::expire(std::chrono::steady_clock::time_point now) {
    for (auto it = promised_.begin(); it != promised_.end();) {
        it = it->second.expires < now ? promised_.erase(it) : std::next(it);
    }
}

std::optional<cluster::backup_grant> colocation_book::reserve(const std::string& host,
                                                              const std::string& node_id) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto now = now_();
    expire(now);
    for (auto it = promised_.begin(); it != promised_.end();) {
        bool withdrawn = !node_id.empty() && it->second.node_id == node_id;
        it = withdrawn ? promised_.erase(it) : std::next(it);
    }
    if (running_.size() + promised_.size() >= max_) {
        return std::nullopt;
    }
    // The lowest free N: a backup's ports and directory stay the same when it is asked for
    // again after its predecessor ended.
    std::set<uint32_t> taken = running_;
    for (const auto& [t, p] : promised_) {
        taken.insert(p.slot);
    }
    uint32_t slot = 1;
    while (taken.count(slot) > 0) {
        ++slot;
    }
    uint64_t ticket = ++next_ticket_;
    promised_[ticket] = promise{slot, now + ttl_, node_id};
    return cluster::backup_grant{host, slot, ticket};
}

bool colocation_book::redeem(uint64_t ticket, uint32_t slot) {
    std::lock_guard<std::mutex> guard{mtx_};
    expire(now_());
    auto it = promised_.find(ticket);
    if (it == promised_.end() || it->second.slot != slot) {
        return false;
    }
    promised_.erase(it);
    running_.insert(slot);
    return true;
}

void colocation_book::release(uint32_t slot) {
    std::lock_guard<std::mutex> guard{mtx_};
    running_.erase(slot);
}

size_t colocation_book::running() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return running_.size();
}

caf::behavior colocation_endpoint(caf::event_based_actor* self,
                                  std::shared_ptr<colocation_book> book,
                                  std::string host_name,
                                  unpaired_finder find) {
    self->set_default_handler([](caf::scheduled_actor*,
                                 caf::message_view& x) -> caf::result<caf::message> {
        log()->warn("unexpected_message actor=colocation message={}", caf::to_string(x.content()));
        return caf::sec::unexpected_message;
    });
    return {
        [book, host_name, find](cluster::backup_request_atom, const std::string& live,
                                const std::string& node_id) -> caf::result<cluster::backup_grant> {
            if (auto u = find ? find(node_id) : unpaired_instance{}; u.handle) {
                // Its live asks again for a backup it already has here: a second instance of
                // the node id would hold a second slot and never pair.
                log()->info("colocation_request_granted live={} node_id={} slot={} "
                            "existing=true",
                            live, node_id, u.slot);
                return cluster::backup_grant{host_name, u.slot, 0, std::move(u.handle)};
            }
            auto g = book->reserve(host_name, node_id);
            if (!g) {
                log()->info("colocation_request_refused live={} node_id={} reason=backups_full",
                            live, node_id);
                return caf::make_error(cluster::cluster_errc::backups_full);
            }
            log()->info("colocation_request_granted live={} node_id={} slot={}", live, node_id,
                        g->slot);
            return *g;
        },
    };
}

} // namespace actormq
