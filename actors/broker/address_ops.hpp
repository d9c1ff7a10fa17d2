// SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal to the address actor (address.cpp, address_paging.cpp): the steps of its operations
// that both files use — routing what fits, the journal step and its completion in order, and
// paging's entry points (docs/journal.md, "Paging").

#include "actors/broker/address.hpp"
#include "actors/journal/confirm_hook.hpp"

#include <caf/error.hpp>
#include <caf/typed_response_promise.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace actormq::address_ops {

using address_ptr = address_lane_actor::stateful_pointer<address_state>;

/// What take_while_room accepted, and what the messages it dropped as duplicates wait for.
struct taken {
    std::vector<message_ptr> accepted;
    /// The duplicate ids of the accepted messages.
    std::vector<std::string> dup_ids;
    /// Pending operations holding ids that dropped messages carried.
    std::vector<uint64_t> depends_on;
};

/// What the request a new operation answers inherits: the operations its duplicates wait for
/// and an error one of them already ended with.
struct op_origin {
    std::vector<uint64_t> depends_on;
    std::optional<caf::error> failure;
};

/// Creates the anycast queue on first use, journaling its binding when it is durable.
void ensure_anycast(address_ptr self);

/// Takes messages from the front of `msgs` while the address has room. A message whose
/// duplicate-detection id is stored already, or is held by an operation on its way to the
/// journal, or repeats one of this batch, is dropped (in the second case the new operation
/// depends on the holder, see pending_op::depends_on). The room check is per message, so a
/// batch cannot carry the address past max-size-bytes by more than one.
taken take_while_room(address_ptr self,
                      std::vector<message_ptr>& msgs,
                      size_t copies,
                      bool limited = true);

/// Hands every finished operation at the front to its queues and answers its producer.
void complete_ready(address_ptr self);

/// The journal failed operation `id`: nothing of it is stored, so its messages are dropped,
/// its ids forgotten, and every request that was dropped as a duplicate of it fails too.
void op_failed(address_ptr self, uint64_t id, const caf::error& e);

/// Starts the journal step for accepted messages (if any must be durable) and queues the
/// operation behind earlier ones. `hook` rides with the journal append only when the producer's
/// answer depends on that append alone (confirm_hook.hpp); otherwise it is not run.
void start_op(address_ptr self,
              routing_type routing,
              std::vector<queue_actor> targets,
              taken what,
              std::optional<caf::typed_response_promise<route_status>> promise,
              route_status status,
              op_origin origin = {},
              confirm_hook_ptr hook = nullptr);

/// A transaction holding the duplicate id of one of `msgs`, if any.
const std::string* held_by_transaction(const address_state& st,
                                       const std::vector<message_ptr>& msgs);

/// Routes what fits now; returns the messages left over (the address is full). `origin`
/// collects what the parts routed so far wait for; the last part takes it along.
std::vector<message_ptr> route_some(address_ptr self,
                                    routing_type routing,
                                    std::vector<message_ptr>& msgs,
                                    caf::typed_response_promise<route_status> p,
                                    route_status status,
                                    op_origin& origin,
                                    confirm_hook_ptr hook = nullptr);

/// Whether the whole batch fits under max-size-bytes.
bool fits(const address_state& st, routing_type routing, const std::vector<message_ptr>& msgs);

// -- paging: address_paging.cpp --------------------------------------------------------------

/// Spawns the pager and asks it to open the page files; `req` says what recovery put in
/// memory. Answers come in order, so writes and reads asked later find the store open.
void start_pager(address_ptr self, std::shared_ptr<paging::open_request> req);

/// PAGE: routes what fits to the queues while the address is not paging, and pages the rest
/// and everything after it, so paged messages always come after the ones in memory.
void route_paged(address_ptr self,
                 routing_type routing,
                 std::vector<message_ptr>& msgs,
                 caf::typed_response_promise<route_status> p,
                 op_origin origin,
                 confirm_hook_ptr hook = nullptr);

/// Reads back from the page files while the address has room (below max-size-bytes).
void maybe_page_in(address_ptr self);

} // namespace actormq::address_ops
