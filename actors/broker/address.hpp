// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/broker/send_lane.hpp"
#include "actors/broker/server_context.hpp"
#include "actors/fwd.hpp"
#include "actors/journal/recovery.hpp"
#include "actors/paging/pager.hpp"

#include <caf/typed_response_promise.hpp>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace actormq {

/// The duplicate-detection ids an address remembers (id-cache-size of them, oldest evicted).
class duplicate_cache {
public:
    explicit duplicate_cache(size_t capacity = 20000) : capacity_(capacity) {}

    /// Whether `id` was accepted before.
    bool contains(const std::string& id) const { return ids_.count(id) != 0; }

    /// Remembers `id`, forgetting the oldest id when full.
    void insert(const std::string& id);

    /// Forgets `id` (its transaction was rolled back).
    void erase(const std::string& id);

    size_t size() const { return order_.size(); }

private:
    size_t capacity_;
    std::unordered_set<std::string> ids_;
    std::deque<std::string> order_;
};

/// Everything an address actor owns: its queues, its duplicate-id cache, the batches on their
/// way to the journal and the producers it holds back while full.
struct address_state {
    static inline const char* name = "address";

    /// A route request waiting for space (address-full-policy BLOCK).
    struct blocked_route {
        caf::typed_response_promise<route_status> promise;
        routing_type routing;
        std::vector<message_ptr> msgs;
        /// Operations whose duplicates the parts of this request already routed carried
        /// (see pending_op::depends_on); the last part inherits them.
        std::vector<uint64_t> depends_on;
        /// Set when one of those failed: the request is answered with this error.
        std::optional<caf::error> failure;
    };

    /// Accepted messages on their way to their queues: they go once the journal has them,
    /// strictly in the order they were accepted.
    struct pending_op {
        uint64_t id = 0;
        std::vector<queue_actor> targets;
        std::vector<message_ptr> msgs;
        std::optional<caf::typed_response_promise<route_status>> promise;
        route_status status = route_status::routed;
        bool ready = false;
        /// The duplicate ids its messages carry; held in `in_flight` until it completes, then
        /// in the duplicate cache (success) or forgotten (failure).
        std::vector<std::string> dup_ids;
        /// Earlier operations still on their way to the journal whose duplicate ids messages of
        /// this one repeated (dropped as duplicates). Ops complete in order, so this one is
        /// answered after them; when one of them fails, this one's producer gets that error,
        /// since its duplicate was never stored.
        std::vector<uint64_t> depends_on;
        /// The error the producer gets: the journal failed this op or one it depends on.
        std::optional<caf::error> failure;
        /// PAGE: its messages went to the page files, not to queues; it is ready once the
        /// page write and the journal record of its duplicate ids are synced (`waits` left).
        bool paged = false;
        int waits = 0;
    };

    /// Who holds a duplicate id that is not on disk yet.
    struct id_owner {
        bool tx = false; ///< a prepared transaction (id = tx id), else a pending_op (op id)
        uint64_t id = 0;
    };

    std::shared_ptr<server_context> ctx;
    std::string address;
    config::address_settings settings;
    std::shared_ptr<address_usage> usage;
    /// Whether its anycast queue is durable (persistence on and not a temporary address).
    bool durable = false;
    /// The anycast queue, named like the address, created on first anycast use.
    std::optional<queue_actor> anycast;
    /// Multicast subscription queues by name.
    std::map<std::string, queue_actor> subscriptions;
    /// The names of the durable ones among them.
    std::set<std::string> durable_subscriptions;
    std::deque<blocked_route> blocked;
    /// In id order. An id the send lane drew that has not come back from the journal yet has
    /// an entry (not ready, nothing in it) as soon as the address draws a larger id, so what
    /// comes after it waits for it (send_lane.hpp).
    std::deque<pending_op> ops;
    /// Where every operation draws its id, and the lane's switch (send_lane.hpp).
    std::shared_ptr<address_lane> lane;
    /// The largest id that has its entry in `ops` (or was completed).
    uint64_t known_through = 0;
    /// Prepared transactions: messages held until commit or rollback.
    std::map<uint64_t, pending_op> held;
    /// Ids whose messages are on disk (or were delivered, for non-durable ones): a message
    /// carrying one is a duplicate.
    duplicate_cache duplicates;
    /// Ids of messages accepted but not on disk yet, and what holds them. An id moves to
    /// `duplicates` only once its message is stored, and leaves on every failure path, so a
    /// retry after a failure is stored, never confirmed as a duplicate of nothing.
    std::unordered_map<std::string, id_owner> in_flight;
    uint64_t duplicates_dropped = 0;

    // -- paging (address-full-policy PAGE, docs/journal.md "Paging") --------------------------
    /// The detached actor that owns this address's page files; spawned at start when the
    /// journal gave the address back, or when it first pages.
    std::optional<paging::pager_actor> pager;
    /// New messages go to the page files (set when the address was full; cleared once
    /// everything paged was read back and no page write is on its way).
    bool paging = false;
    /// The pager is opening after a restart: routes wait in `blocked`, and the messages the
    /// journal gave back wait in `seed_held`, until it has skipped what they repeat.
    bool opening = false;
    std::vector<std::pair<queue_actor, std::vector<message_ptr>>> seed_held;
    /// A read from the page files (and its journal and cursor steps) is on its way.
    bool paging_in = false;
    /// Page writes asked for and not answered yet.
    uint64_t page_writes = 0;
    /// Page writes asked for since the start. A read's `at_end` says nothing of the writes
    /// asked for after that read (the pager takes requests in order): the address stops
    /// paging only when none was (on_page_batch).
    uint64_t page_writes_asked = 0;
    uint64_t paged_out = 0;
    uint64_t paged_in = 0;

    /// The names of the queues a message with this routing type goes to.
    std::vector<std::string> target_names(routing_type routing) const;

    /// The queues a message with this routing type goes to.
    std::vector<queue_actor> targets(routing_type routing) const;

    /// Draws the id of a new operation the caller appends to `ops` next (after entries for
    /// any smaller ids the send lane holds).
    uint64_t next_op_id();

    /// The entry of operation `id` in `ops`, made (with entries for the ids before it) if the
    /// address has not drawn that far; null if it completed already (it never should).
    pending_op* op_slot(uint64_t id);

    /// Whether the send lane may take messages for this address now: a durable anycast queue
    /// exists, synchronous appends are on, and the address is not opening a pager, paging,
    /// holding producers back, holding duplicate ids that are not on disk yet, or holding a
    /// prepared transaction.
    bool lane_may_open() const;

    /// Opens or closes the send lane as lane_may_open() says.
    void publish_lane() {
        if (lane) {
            lane->set_open(lane_may_open());
        }
    }

    /// The duplicate-detection id of a message, or nullptr.
    static const std::string* duplicate_id(const broker_message& m);

    /// Journal records for the accepted messages that must be durable (empty: none).
    std::vector<journal::record> records_for(const std::vector<message_ptr>& msgs,
                                             routing_type routing,
                                             uint64_t tx_id = 0) const;
};

/// What an address starts with after recovery: its durable queues (the anycast one and
/// durable subscriptions) with their messages, and its duplicate ids.
struct address_seed {
    std::vector<recovered_queue> queues;
    std::vector<std::string> duplicate_ids;
    /// PAGE: the address has a page directory (it paged before the restart), so a pager opens
    /// at start. The server lists the paging directory once for all addresses, off the
    /// scheduler's workers (paging::lister), before it spawns them.
    bool page_directory = false;
};

/// The behaviour of an address actor (with the send lane's answer, send_lane.hpp).
address_lane_actor::behavior_type address(address_lane_actor::stateful_pointer<address_state> self,
                                          std::shared_ptr<server_context> ctx,
                                          std::string name,
                                          std::shared_ptr<address_seed> seed);

} // namespace actormq
