// SPDX-License-Identifier: Apache-2.0
// The address actor's paging (docs/journal.md, "Paging"): the pager's start, page-outs of what
// does not fit, page-ins as the queues drain, each step in the address's order of operations.
#include "actors/broker/address_ops.hpp"
#include "actors/broker/queue.hpp"
#include "protocol/assert.hpp"
#include "protocol/errc.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include <algorithm>

namespace actormq::address_ops {

/// Most message bytes one page-in read asks for.
constexpr int64_t page_in_chunk_bytes = 2 * 1024 * 1024;

/// Marks paged operation `id` one step nearer to done (its page write or its journal record).
void paged_step_done(address_ptr self, uint64_t id) {
    for (auto& o : self->state.ops) {
        if (o.id == id && o.paged && --o.waits <= 0) {
            o.ready = true;
        }
    }
    complete_ready(self);
}

void start_pager(address_ptr self, std::shared_ptr<paging::open_request> req) {
    auto& st = self->state;
    paging::store_options opts;
    opts.directory = config::paging_directory_of(st.ctx->config.journal) + "/"
                     + paging::directory_name(st.address);
    opts.address = st.address;
    opts.page_size_bytes = static_cast<uint64_t>(st.settings.page_size_bytes);
    opts.max_open_files = st.settings.page_max_cache_size;
    // Without a journal nothing survives a restart, and neither does anything paged.
    opts.keep = static_cast<bool>(st.ctx->journal);
    if (st.ctx->config.ha_policy.kind == config::ha_kind::replication
        || st.ctx->config.ha_policy.kind == config::ha_kind::colocated) {
        opts.replicate_to = st.ctx->journal; // docs/replication.md, "Paging"
    }
    st.pager =
        self->spawn<caf::detached + caf::linked>(paging::pager, std::move(opts), st.ctx->log);
    // No timeout, as for the journal: the pager answers every request (with an error once a
    // file call failed), and it is linked to this address, so neither outlives the other.
    self->request(*st.pager, caf::infinite, paging::open_atom::value, std::move(req))
        .then(
            [self](paging::open_result& r) {
                auto& st = self->state;
                for (auto& id : r.dup_ids) {
                    st.duplicates.insert(id);
                }
                if (r.has_unread) {
                    st.paging = true;
                    st.publish_lane();
                    st.ctx->log->info("address_paging address={} resumed=true", st.address);
                }
                for (auto& [q, msgs] : st.seed_held) {
                    self->send(q, enqueue_atom::value, std::move(msgs));
                }
                st.seed_held.clear();
                st.opening = false;
                // What arrived while the pager opened goes on in its order.
                auto waiting = std::move(st.blocked);
                st.blocked.clear();
                for (auto& b : waiting) {
                    route_paged(self, b.routing, b.msgs, b.promise,
                                op_origin{b.depends_on, b.failure});
                }
                maybe_page_in(self);
            },
            [self](caf::error& e) {
                auto& st = self->state;
                st.ctx->log->error("address_paging_failed address={} error=\"{}\"", st.address,
                                   caf::to_string(e));
                for (auto& b : st.blocked) {
                    b.promise.deliver(e);
                }
                st.blocked.clear();
                // The journal's messages are still good; they are served without the pages.
                for (auto& [q, msgs] : st.seed_held) {
                    self->send(q, enqueue_atom::value, std::move(msgs));
                }
                st.seed_held.clear();
                st.opening = false;
            });
}

/// Writes messages to the page files instead of the queues. Duplicates are dropped as in
/// take_while_room; the producer is answered once the page files (and the journal record of
/// the messages' duplicate ids) are synced.
void page_some(address_ptr self,
               routing_type routing,
               std::vector<message_ptr>& msgs,
               caf::typed_response_promise<route_status> p,
               op_origin origin) {
    auto& st = self->state;
    auto names = st.target_names(routing);
    if (names.empty()) {
        msgs.clear();
        start_op(self, routing, {}, {}, std::move(p), route_status::routed, std::move(origin));
        return;
    }
    auto what = take_while_room(self, msgs, names.size(), false);
    msgs.clear();
    address_state::pending_op op;
    op.id = st.next_op_id();
    op.paged = true;
    op.promise = std::move(p);
    op.dup_ids = std::move(what.dup_ids);
    for (const auto& d : op.dup_ids) {
        st.in_flight[d] = address_state::id_owner{false, op.id};
    }
    st.publish_lane();
    op.depends_on = std::move(origin.depends_on);
    op.depends_on.insert(op.depends_on.end(), what.depends_on.begin(), what.depends_on.end());
    op.failure = std::move(origin.failure);
    if (what.accepted.empty()) {
        op.ready = true;
        st.ops.push_back(std::move(op));
        complete_ready(self);
        return;
    }
    // The ids of persistent messages are journaled (duplicate_id records) once the page
    // write is synced, so a restart remembers them; before that they are in the page file,
    // whose newest two files the pager reads them back from at open.
    std::vector<journal::record> dup_records;
    if (st.ctx->journal && st.durable && st.ctx->config.journal.persist_id_cache) {
        for (const auto& m : what.accepted) {
            if (const auto* dup = address_state::duplicate_id(*m); dup && m->persistent) {
                journal::record r;
                r.type = journal::record_type::duplicate_id;
                r.payload = journal::encode_payload(journal::dup_payload{st.address, *dup});
                dup_records.push_back(std::move(r));
            }
        }
    }
    op.waits = dup_records.empty() ? 1 : 2;
    auto id = op.id;
    st.paged_out += what.accepted.size();
    st.ops.push_back(std::move(op));
    ++st.page_writes;
    ++st.page_writes_asked;
    // No timeout: see start_pager (the pager answers every request).
    self->request(*st.pager, caf::infinite, paging::write_atom::value, std::move(what.accepted),
                  std::move(names))
        .then(
            [self, id, dup_records = std::move(dup_records)](bool) mutable {
                --self->state.page_writes;
                if (!dup_records.empty()) {
                    bool sync = self->state.ctx->config.journal.journal_sync_non_transactional;
                    // No timeout: see start_op (address.cpp).
                    self->request(self->state.ctx->journal, caf::infinite, append_atom::value,
                                  std::move(dup_records), sync)
                        .then([self, id](uint64_t) { paged_step_done(self, id); },
                              [self, id](caf::error& e) {
                                  op_failed(self, id, e);
                                  complete_ready(self);
                              });
                }
                paged_step_done(self, id);
                maybe_page_in(self);
            },
            [self, id](caf::error& e) {
                --self->state.page_writes;
                self->state.ctx->log->error("page_write_failed address={} error=\"{}\"",
                                            self->state.address, caf::to_string(e));
                op_failed(self, id, e);
                complete_ready(self);
            });
}

void route_paged(address_ptr self,
                 routing_type routing,
                 std::vector<message_ptr>& msgs,
                 caf::typed_response_promise<route_status> p,
                 op_origin origin,
                 confirm_hook_ptr hook) {
    auto& st = self->state;
    if (!st.paging) {
        // Not paging: a batch that fits entirely is answered by its journal append alone, so
        // the RECEIPT hook may ride with it (route_some passes it on only then).
        auto rest =
            route_some(self, routing, msgs, p, route_status::routed, origin, std::move(hook));
        if (rest.empty()) {
            return;
        }
        msgs = std::move(rest);
        st.paging = true;
        // Closed before the first paged message draws its id: every message the lane took
        // before comes ahead of it (send_lane.hpp).
        st.publish_lane();
        st.ctx->log->info("address_paging address={} bytes={} max={}", st.address,
                          st.usage->bytes.load(), st.usage->max_bytes);
        if (!st.pager) {
            start_pager(self, std::make_shared<paging::open_request>());
        }
    } else if (const auto* id = held_by_transaction(st, msgs)) {
        p.deliver(caf::make_error(errc::duplicate_in_flight, *id));
        return;
    }
    if (routing == routing_type::anycast) {
        ensure_anycast(self);
    }
    page_some(self, routing, msgs, std::move(p), std::move(origin));
}

/// The queue actors and durable names for the queues a paged message was routed to.
void page_targets(const address_state& st,
                  const std::vector<std::string>& names,
                  std::vector<queue_actor>& targets,
                  std::vector<std::string>& durable) {
    for (const auto& n : names) {
        if (st.anycast && n == anycast_queue_name(st.address)) {
            targets.push_back(*st.anycast);
            if (st.durable) {
                durable.push_back(n);
            }
        } else if (auto it = st.subscriptions.find(n); it != st.subscriptions.end()) {
            targets.push_back(it->second);
            if (st.durable && st.durable_subscriptions.count(n) != 0) {
                durable.push_back(n);
            }
        }
    }
}

/// A batch read back from the page files: journal the persistent messages (from now on the
/// journal holds them, like any message in memory), record the cursor past them, then hand
/// them to their queues in page order. `writes_before` is page_writes_asked when the read was
/// asked for: the batch's `at_end` covers those writes only.
void on_page_batch(address_ptr self, paging::page_batch& b, uint64_t writes_before) {
    auto& st = self->state;
    std::vector<journal::record> records;
    std::vector<address_state::pending_op> batch_ops;
    for (size_t i = 0; i < b.msgs.size(); ++i) {
        std::vector<queue_actor> targets;
        std::vector<std::string> durable;
        page_targets(st, b.queues[i], targets, durable);
        if (targets.empty()) {
            continue; // Its queues are gone: nothing to deliver it to.
        }
        const auto& m = b.msgs[i];
        st.usage->bytes += m->memory_bytes() * static_cast<int64_t>(targets.size());
        if (m->persistent && !durable.empty() && st.ctx->journal) {
            journal::message_payload p{m->id,      m->address, m->destination,
                                       m->headers, m->body,    std::move(durable)};
            journal::record r;
            r.type = journal::record_type::add_message;
            r.payload = journal::encode_payload(p);
            records.push_back(std::move(r));
        }
        if (batch_ops.empty() || batch_ops.back().targets != targets) {
            batch_ops.emplace_back();
            batch_ops.back().targets = std::move(targets);
        }
        batch_ops.back().msgs.push_back(m);
    }
    st.paged_in += b.msgs.size();
    std::vector<uint64_t> ids;
    for (auto& op : batch_ops) {
        op.id = st.next_op_id();
        ids.push_back(op.id);
        st.ops.push_back(std::move(op));
    }
    auto next = b.next;
    bool at_end = b.at_end;
    auto release = [self, ids, at_end, writes_before] {
        auto& st = self->state;
        for (auto& o : st.ops) {
            if (std::find(ids.begin(), ids.end(), o.id) != ids.end()) {
                o.ready = true;
            }
        }
        complete_ready(self);
        st.paging_in = false;
        // A write asked for after the read (while this batch went to the journal and the
        // cursor) is in the page files behind what was read, even if it is answered already:
        // stopping now would leave it there, unread, with no read ever to come.
        if (at_end && st.page_writes == 0 && st.page_writes_asked == writes_before) {
            st.paging = false;
            st.ctx->log->info("address_paging_done address={} paged_in={}", st.address,
                              st.paged_in);
        }
        maybe_page_in(self);
    };
    auto fail = [self, ids](caf::error& e) {
        auto& st = self->state;
        // Nothing of the batch reaches a queue; it stays in the page files (the cursor did not
        // move past it) and comes back after a restart.
        st.ctx->log->error("page_in_failed address={} error=\"{}\"", st.address, caf::to_string(e));
        for (auto& o : st.ops) {
            if (std::find(ids.begin(), ids.end(), o.id) != ids.end()) {
                for (const auto& m : o.msgs) {
                    st.usage->bytes -= m->memory_bytes() * static_cast<int64_t>(o.targets.size());
                }
                o.msgs.clear();
                o.ready = true;
            }
        }
        complete_ready(self);
    };
    auto move_cursor = [self, next, release, fail] {
        // The cursor is synced before any of the batch reaches a consumer: a message a
        // consumer acked can never come back from the page files.
        // No timeout: see start_pager (the pager answers every request).
        self->request(*self->state.pager, caf::infinite, paging::moved_atom::value, next)
            .then([release](bool) { release(); }, fail);
    };
    if (records.empty()) {
        move_cursor();
        return;
    }
    // No timeout: see start_op (address.cpp).
    self->request(st.ctx->journal, caf::infinite, append_atom::value, std::move(records), true)
        .then([move_cursor](uint64_t) { move_cursor(); }, fail);
}

void maybe_page_in(address_ptr self) {
    auto& st = self->state;
    if (!st.pager || !st.paging || st.paging_in || st.opening) {
        return;
    }
    int64_t used = st.usage->bytes.load(std::memory_order_relaxed);
    if (st.usage->max_bytes >= 0 && used >= st.usage->max_bytes) {
        return;
    }
    // At most page_in_chunk_bytes per read: a batch is held twice on its way in (the messages
    // and their journal records), so smaller reads keep the node's memory near max-size-bytes
    // while consumers catch up.
    int64_t budget = st.usage->max_bytes < 0 ? page_in_chunk_bytes : st.usage->max_bytes - used;
    budget = std::min(budget, page_in_chunk_bytes);
    st.paging_in = true;
    auto writes_before = st.page_writes_asked;
    // No timeout: see start_pager (the pager answers every request).
    self->request(*st.pager, caf::infinite, paging::read_atom::value, budget)
        .then(
            [self, writes_before](paging::page_batch& b) { on_page_batch(self, b, writes_before); },
            [self](caf::error& e) {
                // The pager latched a failure: the paged messages stay on disk.
                self->state.ctx->log->error("page_in_failed address={} error=\"{}\"",
                                            self->state.address, caf::to_string(e));
            });
}

} // namespace actormq::address_ops
