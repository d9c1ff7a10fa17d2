// SPDX-License-Identifier: Apache-2.0
// Scale-down (actors/ha/scale_down.hpp; docs/ha.md, "Scale-down").
#include "actors/ha/scale_down.hpp"

#include "actors/journal/journal.hpp"
#include "actors/journal/recovery.hpp"
#include "protocol/journal_format.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace actormq {

namespace {

using cluster::cluster_errc;
using cluster::scale_down_ack;
using cluster::scale_down_atom;
using cluster::scale_down_batch;
using cluster::scale_down_message;

/// A batch is cut at this many bytes of bodies even when it has fewer than batch-messages: one
/// BASP message per batch, and the target holds it whole while it routes it.
constexpr uint64_t batch_max_bytes = 4 * 1024 * 1024;

// -- the target ---------------------------------------------------------------------------------

/// One batch on its way into the target's server.
struct inbound {
    scale_down_batch batch;
    caf::typed_response_promise<scale_down_ack> rp;
    std::shared_ptr<server_context> ctx;
    server_actor srv;
    std::shared_ptr<spdlog::logger> log;
    std::map<std::string, address_actor> addresses;
    /// Target transaction id per xid of the batch, and the addresses holding its messages.
    std::map<std::string, uint64_t> tx_of;
    std::map<std::string, std::vector<address_actor>> tx_addresses;
    /// Branches the target has already (the batch came again): their messages are skipped.
    std::set<std::string> present;
    size_t outstanding = 0;
    bool failed = false;
    scale_down_ack ack;
};

using inbound_ptr = std::shared_ptr<inbound>;

void fail(const inbound_ptr& in, const std::string& why) {
    if (in->failed) {
        return;
    }
    in->failed = true;
    // Staged messages of a branch whose prepare record was not written go (recovery would drop
    // them too); the source keeps the branch and sends it again.
    for (const auto& [xid, addrs] : in->tx_addresses) {
        for (const auto& a : addrs) {
            caf::anon_send(a, rollback_atom::value, in->tx_of[xid]);
        }
    }
    in->log->warn("scale_down_batch_refused from={} seq={} reason=\"{}\"", in->batch.source_name,
                  in->batch.seq, why);
    in->rp.deliver(caf::make_error(cluster_errc::scale_down_failed, why));
}

message_ptr to_message(const inbound& in, const scale_down_message& m) {
    auto out = std::make_shared<broker_message>();
    out->id = in.ctx->next_message_id++;
    out->address = m.address;
    out->destination = m.destination;
    out->body = m.body;
    out->persistent = true;
    bool has_dup = false;
    for (size_t i = 0; i < m.header_names.size() && i < m.header_values.size(); ++i) {
        has_dup = has_dup || m.header_names[i] == duplicate_id_header;
        out->headers.emplace_back(m.header_names[i], m.header_values[i]);
    }
    if (!has_dup) {
        out->headers.emplace_back(duplicate_id_header,
                                  scale_down_duplicate_id(in.batch.source_node_id, m.source_id));
    }
    return out;
}

void answer(caf::event_based_actor* self, const inbound_ptr& in) {
    auto& ctx = *in->ctx;
    std::vector<journal::record> records;
    for (const auto& xid : in->batch.prepared_xids) {
        auto t = in->tx_of.find(xid);
        if (t == in->tx_of.end()) {
            continue;
        }
        journal::record r;
        r.type = journal::record_type::prepare;
        r.payload = journal::encode_payload(journal::tx_payload{t->second, xid});
        records.push_back(std::move(r));
    }
    if (records.empty() && !ctx.config.journal.journal_sync_non_transactional) {
        // The routes were answered once queued, not synced: a record of nothing (the rollback
        // of an unused transaction id) is synced behind them.
        journal::record r;
        r.type = journal::record_type::rollback;
        r.payload = journal::encode_payload(journal::tx_payload{ctx.next_tx_id++});
        records.push_back(std::move(r));
    }
    auto done = [in] {
        if (in->failed) {
            return;
        }
        for (const auto& [xid, tx] : in->tx_of) {
            in->ctx->xa->prepared(xid, tx, in->tx_addresses[xid], {});
        }
        in->tx_addresses.clear();
        in->log->debug("scale_down_batch_stored from={} seq={} messages={}", in->batch.source_name,
                       in->batch.seq, in->batch.messages.size());
        in->rp.deliver(in->ack);
    };
    if (records.empty() || !ctx.journal) {
        return done();
    }
    // Synced whatever journal-sync-* say: the source deletes its copy on this answer.
    self->request(ctx.journal, ctx.request_timeout(), append_atom::value, std::move(records), true)
        .then([done](uint64_t) { done(); },
              [self, in](caf::error& e) {
                  fail(in, "the journal did not confirm: " + self->system().render(e));
              });
}

/// The [first, last) ranges of consecutive messages of one address, routing and branch: each
/// goes in one route request; the address keeps their order, and requests from one actor reach
/// it in the order sent.
template <class Messages>
std::vector<std::tuple<size_t, size_t>> route_groups(const Messages& msgs) {
    std::vector<std::tuple<size_t, size_t>> groups;
    for (size_t i = 0; i < msgs.size();) {
        size_t j = i + 1;
        while (j < msgs.size() && msgs[j].address == msgs[i].address
               && msgs[j].routing == msgs[i].routing && msgs[j].xid == msgs[i].xid) {
            ++j;
        }
        groups.emplace_back(i, j);
        i = j;
    }
    return groups;
}

void route_all(caf::event_based_actor* self, const inbound_ptr& in) {
    auto& msgs = in->batch.messages;
    auto& ctx = *in->ctx;
    auto groups = route_groups(msgs);
    // A prepared branch this server has already (the batch came again) is skipped; the others
    // get a transaction id here.
    for (const auto& xid : in->batch.prepared_xids) {
        if (ctx.xa->find(xid)) {
            in->present.insert(xid);
        } else {
            in->tx_of[xid] = ctx.next_tx_id++;
        }
    }
    in->outstanding = 1; // released below, after every request is out
    auto one_done = [self, in] {
        if (--in->outstanding == 0 && !in->failed) {
            answer(self, in);
        }
    };
    for (auto [first, last] : groups) {
        const auto& head = msgs[first];
        auto n = last - first;
        if (!head.xid.empty() && in->present.count(head.xid) != 0) {
            in->ack.duplicates += n;
            continue;
        }
        std::vector<message_ptr> batch;
        batch.reserve(n);
        for (size_t k = first; k < last; ++k) {
            batch.push_back(to_message(*in, msgs[k]));
        }
        auto routing = head.routing == 1 ? routing_type::multicast : routing_type::anycast;
        auto addr = in->addresses[head.address];
        auto name = head.address;
        ++in->outstanding;
        auto on_status = [in, name, n, one_done](route_status s) {
            if (s == route_status::dropped || s == route_status::full) {
                fail(in, "address " + name + " is full");
                return;
            }
            (s == route_status::duplicate ? in->ack.duplicates : in->ack.routed) += n;
            one_done();
        };
        auto on_error = [self, in, name](caf::error& e) {
            fail(in, "routing to " + name + " failed: " + self->system().render(e));
        };
        if (head.xid.empty()) {
            self->request(addr, ctx.request_timeout(), route_atom::value, routing, std::move(batch))
                .then(on_status, on_error);
        } else {
            auto tx = in->tx_of.at(head.xid);
            auto& holders = in->tx_addresses[head.xid];
            holders.push_back(addr);
            self->request(addr, ctx.request_timeout(), route_atom::value, routing, std::move(batch),
                          tx)
                .then(on_status, on_error);
        }
    }
    one_done();
}

void bind_all(caf::event_based_actor* self, const inbound_ptr& in) {
    std::set<std::pair<std::string, std::string>> subs;
    for (const auto& m : in->batch.messages) {
        if (m.routing == 1) {
            for (const auto& q : m.queues) {
                subs.emplace(m.address, q);
            }
        }
    }
    if (subs.empty()) {
        return route_all(self, in);
    }
    auto left = std::make_shared<size_t>(subs.size());
    for (const auto& [address, queue] : subs) {
        // Durable, like the subscription it held the message in on the source.
        self->request(in->addresses[address], in->ctx->request_timeout(), bind_atom::value,
                      routing_type::multicast, queue, true)
            .then(
                [self, in, left](queue_actor&) {
                    if (--*left == 0 && !in->failed) {
                        route_all(self, in);
                    }
                },
                [self, in, queue = queue](caf::error& e) {
                    fail(in, "subscription " + queue + ": " + self->system().render(e));
                });
    }
}

void look_up_all(caf::event_based_actor* self, const inbound_ptr& in) {
    std::set<std::string> names;
    for (const auto& m : in->batch.messages) {
        names.insert(m.address);
    }
    if (names.empty()) {
        return route_all(self, in); // a branch without messages still gets its prepare record
    }
    auto left = std::make_shared<size_t>(names.size());
    for (const auto& name : names) {
        self->request(in->srv, in->ctx->request_timeout(), lookup_atom::value, name, true)
            .then(
                [self, in, left, name](address_actor& a) {
                    in->addresses[name] = std::move(a);
                    if (--*left == 0 && !in->failed) {
                        bind_all(self, in);
                    }
                },
                [self, in, name](caf::error& e) {
                    fail(in, "address " + name + ": " + self->system().render(e));
                });
    }
}

// -- the source ---------------------------------------------------------------------------------

/// One message to move and the source queues it leaves.
struct unit {
    message_ptr msg;
    routing_type routing = routing_type::anycast;
    std::vector<std::string> queues;
};

scale_down_message to_wire(const unit& u, const std::string& xid) {
    scale_down_message m;
    m.source_id = u.msg->id;
    m.address = u.msg->address;
    m.destination = u.msg->destination;
    m.routing = u.routing == routing_type::multicast ? 1 : 0;
    if (u.routing == routing_type::multicast) {
        m.queues = u.queues;
    }
    for (const auto& [k, v] : u.msg->headers) {
        m.header_names.push_back(k);
        m.header_values.push_back(v);
    }
    m.body = u.msg->body;
    m.xid = xid;
    return m;
}

/// Units in queue order: each anycast queue's messages, then, per multicast address, each
/// message once with every subscription queue holding it.
std::vector<unit> units_of(const std::vector<recovered_queue>& queues,
                           std::map<uint64_t, std::vector<message_ptr>> recovered_queue::*part,
                           uint64_t tx) {
    std::vector<unit> out;
    std::unordered_map<uint64_t, size_t> multicast;
    for (const auto& q : queues) {
        const std::vector<message_ptr>* msgs = nullptr;
        if (part == nullptr) {
            msgs = &q.messages;
        } else if (auto it = (q.*part).find(tx); it != (q.*part).end()) {
            msgs = &it->second;
        }
        if (msgs == nullptr) {
            continue;
        }
        for (const auto& m : *msgs) {
            if (q.routing == routing_type::multicast) {
                auto [it, fresh] = multicast.emplace(m->id, out.size());
                if (!fresh) {
                    out[it->second].queues.push_back(q.name);
                    continue;
                }
            }
            out.push_back(unit{m, q.routing, {q.name}});
        }
    }
    return out;
}

} // namespace

std::optional<cluster::member_info> pick_scale_down_target(const cluster::topology& t,
                                                           const cluster::member_info& self,
                                                           const config::scale_down_config& c) {
    auto fits = [&](const cluster::member_info& m) {
        return m.role == "live" && !m.node_id.empty() && m.node_id != self.node_id
               && m.cluster_address != self.cluster_address
               && (c.group_name.empty() || m.group == c.group_name);
    };
    if (c.connectors.empty()) {
        for (const auto& m : t.members) {
            if (fits(m)) {
                return m;
            }
        }
        return std::nullopt;
    }
    for (const auto& address : c.connectors) {
        for (const auto& m : t.members) {
            if (m.cluster_address == address && fits(m)) {
                return m;
            }
        }
    }
    return std::nullopt;
}

std::string scale_down_duplicate_id(const std::string& source_node_id, uint64_t source_id) {
    return "scale-down:" + source_node_id + ":" + std::to_string(source_id);
}

caf::behavior scale_down_endpoint(caf::event_based_actor* self,
                                  std::shared_ptr<scale_down_inbox> inbox,
                                  std::shared_ptr<spdlog::logger> log) {
    return {
        [self, inbox, log](scale_down_atom,
                           scale_down_batch& batch) -> caf::result<scale_down_ack> {
            auto [ctx, srv] = inbox->get();
            if (!ctx || !srv) {
                return caf::make_error(cluster_errc::not_scaling_target, "not serving");
            }
            auto in = std::make_shared<inbound>();
            in->ack.seq = batch.seq;
            in->batch = std::move(batch);
            in->rp = self->make_response_promise<scale_down_ack>();
            in->ctx = std::move(ctx);
            in->srv = std::move(srv);
            in->log = log;
            if (in->batch.seq == 1) {
                log->info("scale_down_receiving from={} node_id={}", in->batch.source_name,
                          in->batch.source_node_id);
            }
            look_up_all(self, in);
            return in->rp;
        },
    };
}

scale_down_report run_scale_down(caf::actor_system& sys, const scale_down_job& job) {
    scale_down_report rep;
    auto started = std::chrono::steady_clock::now();
    auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    auto ctx = std::make_shared<server_context>();
    ctx->config = job.cfg;
    ctx->log = job.log;
    ctx->wire_log = job.log;
    ctx->node_id = job.node_id;
    auto journal = sys.spawn<caf::detached>(journal_writer, ctx);
    ctx->journal = journal;
    caf::scoped_actor self{sys};
    auto close_journal = [&] {
        self->monitor(journal);
        caf::anon_send_exit(journal, caf::exit_reason::user_shutdown);
        self->receive([](const caf::down_msg&) {},
                      caf::after(std::chrono::seconds(30)) >>
                          [&] { job.log->critical("scale_down_journal_stop_timeout seconds=30"); });
        ctx->journal = nullptr;
    };
    std::shared_ptr<recovered_state> rs;
    // A large journal takes a while to read back; the same bound as the node's own recovery.
    self->request(journal, std::chrono::seconds(3600), recover_atom::value)
        .receive([&](std::shared_ptr<recovered_state>& r) { rs = std::move(r); },
                 [&](caf::error& e) { rep.error = "journal recovery: " + sys.render(e); });
    if (rs && !rs->error.empty()) {
        rep.error = "journal recovery: " + rs->error;
    }
    if (!rep.error.empty()) {
        close_journal();
        rep.seconds = elapsed();
        return rep;
    }
    const auto& sd = job.cfg.ha_policy.scale_down;
    uint64_t seq = 0;
    // Sends one batch and, once the target confirmed it, writes `acks` (synced) here. False:
    // `rep.error` says why, and nothing of this batch was acknowledged here.
    auto send = [&](scale_down_batch b, std::vector<journal::record> acks) {
        b.seq = ++seq;
        b.source_name = job.name;
        b.source_node_id = job.node_id;
        auto n = b.messages.size();
        bool ok = false;
        // The cluster bounds the batch by batch-timeout-ms; this bound only backs that up.
        self->request(job.cluster, std::chrono::milliseconds(sd.batch_timeout_ms + 5000),
                      scale_down_atom::value, job.target.cluster_address, std::move(b),
                      sd.batch_timeout_ms)
            .receive(
                [&](scale_down_ack& a) {
                    ok = true;
                    rep.duplicates += a.duplicates;
                },
                [&](caf::error& e) {
                    rep.error = "batch " + std::to_string(seq) + " was not confirmed by "
                                + job.target.name + ": " + sys.render(e);
                });
        if (!ok) {
            return false;
        }
        self->request(journal, std::chrono::seconds(60), append_atom::value, std::move(acks), true)
            .receive([](uint64_t) {},
                     [&](caf::error& e) {
                         ok = false;
                         rep.error = "batch " + std::to_string(seq)
                                     + " is on the target but could not be acknowledged here: "
                                     + sys.render(e);
                     });
        if (ok) {
            ++rep.batches;
            rep.messages += n;
        }
        return ok;
    };
    auto ack_records = [](const unit& u, std::vector<journal::record>& out) {
        for (const auto& q : u.queues) {
            journal::record r;
            r.type = journal::record_type::ack;
            r.payload = journal::encode_payload(journal::ack_payload{q, u.msg->id});
            out.push_back(std::move(r));
        }
    };
    // The queues' messages, in batches.
    auto units = units_of(rs->queues, nullptr, 0);
    scale_down_batch batch;
    std::vector<journal::record> acks;
    uint64_t bytes = 0;
    bool ok = true;
    for (size_t i = 0; i < units.size() && ok; ++i) {
        batch.messages.push_back(to_wire(units[i], {}));
        ack_records(units[i], acks);
        bytes += units[i].msg->body.size();
        rep.bytes += units[i].msg->body.size();
        if (batch.messages.size() >= sd.batch_messages || bytes >= batch_max_bytes
            || i + 1 == units.size()) {
            ok = send(std::exchange(batch, {}), std::exchange(acks, {}));
            bytes = 0;
        }
    }
    // Each undecided prepared transaction, whole, in a batch of its own.
    for (const auto& p : rs->prepared) {
        if (!ok) {
            break;
        }
        auto held = units_of(rs->queues, &recovered_queue::held, p.tx_id);
        if (!held.empty()) {
            // Its acknowledgements hold messages of this server's queues; the target could
            // not hold them for it. It stays here, prepared, for a restart of this server.
            ++rep.prepared_kept;
            job.log->warn("scale_down_prepared_kept xid_bytes={} tx={} held={} reason=\"it "
                          "acknowledged messages; it stays in this journal\"",
                          p.xid.size(), p.tx_id, held.size());
            continue;
        }
        auto staged = units_of(rs->queues, &recovered_queue::staged, p.tx_id);
        scale_down_batch b;
        for (const auto& u : staged) {
            b.messages.push_back(to_wire(u, p.xid));
            rep.bytes += u.msg->body.size();
        }
        b.prepared_xids.push_back(p.xid);
        // Its rollback here drops what it staged here: the branch lives on the target now.
        journal::record r;
        r.type = journal::record_type::rollback;
        r.payload = journal::encode_payload(journal::tx_payload{p.tx_id});
        auto n = b.messages.size();
        ok = send(std::move(b), {r});
        if (ok) {
            ++rep.prepared_moved;
            rep.messages -= n; // counted as a transaction, not as queue messages
        }
    }
    close_journal();
    rep.ok = ok;
    rep.seconds = elapsed();
    return rep;
}

} // namespace actormq
