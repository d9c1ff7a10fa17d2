// SPDX-License-Identifier: Apache-2.0
// Colocated backups on the node's side (docs/ha.md, "Colocated backups"): the actor type other
// nodes spawn here, the instance it starts, and the requester and endpoint the node runs.
#include "actors/ha/colocation.hpp"
#include "actors/ha/node_impl.hpp"
#include "actors/ha/replication_driver.hpp"
#include "actors/status/status.hpp"
#include "config/load.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_factory.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace actormq {

namespace {

using ha_done_atom = caf::atom_constant<caf::atom("hadone")>;

/// The acceptor host of the host node for an acceptor of the live: the backup runs on this
/// node, so it listens where this node's acceptor of that name (else its first) listens.
std::string local_host(const config::node_config& here, const std::string& acceptor) {
    for (const auto& a : here.acceptors) {
        if (a.name == acceptor) {
            return a.host;
        }
    }
    return here.acceptors.empty() ? std::string{"127.0.0.1"} : here.acceptors.front().host;
}

/// How a requester asks, from the [ha-policy.colocated] settings of the live it asks for;
/// the settle wait and the expected members are the caller's.
requester_settings requester_settings_of(const config::colocated_config& co,
                                         const config::node_config& here) {
    requester_settings rs;
    rs.retries = co.backup_request_retries;
    rs.retry_interval = std::chrono::milliseconds(co.backup_request_retry_interval);
    rs.timeout = std::chrono::milliseconds(std::max<uint32_t>(here.request_timeout_ms, 1000) * 2);
    return rs;
}

/// The backup a requester asks for: `live_name` with its config, the cluster credentials of
/// this node, and the ports of `inst`'s acceptors by name (the host shifts them).
cluster::colocated_spec backup_spec(const config::node_config& here,
                                    server_instance& inst,
                                    std::string live_name,
                                    std::string config_text,
                                    std::vector<std::string> config_overrides) {
    cluster::colocated_spec spec;
    spec.user = here.cluster.user;
    spec.password = here.cluster.password;
    spec.live_name = std::move(live_name);
    spec.config_text = std::move(config_text);
    spec.config_overrides = std::move(config_overrides);
    for (const auto& a : inst.cfg.acceptors) {
        spec.acceptor_names.push_back(a.name);
        spec.acceptor_ports.push_back(inst.ports[a.name]);
    }
    if (inst.cfg.ha_policy.colocated.store == config::colocated_store::shared_store) {
        // The requester names the directories (reference text "Configuring Directories"), as
        // absolute paths: the host's working directory is not this node's.
        std::error_code ec;
        auto absolute = [&ec](const std::string& p) {
            auto a = std::filesystem::absolute(p, ec);
            return ec ? p : a.lexically_normal().string();
        };
        spec.journal_directory = absolute(inst.cfg.journal.journal_directory);
        spec.paging_directory = absolute(config::paging_directory_of(inst.cfg.journal));
    }
    return spec;
}

} // namespace

std::string colocated_instance_config(const config::node_config& live,
                                      const config::node_config& here,
                                      const cluster::colocated_spec& spec,
                                      const std::string& own_cluster_address,
                                      config::node_config& out) {
    out = live;
    out.name = "colocated_backup_" + std::to_string(spec.slot);
    const auto& co = live.ha_policy.colocated;
    bool shared = co.store == config::colocated_store::shared_store;
    auto group = live.ha_policy.replication.group_name;
    out.ha_policy.kind = shared ? config::ha_kind::shared_store : config::ha_kind::replication;
    out.ha_policy.role = config::ha_role::backup;
    out.ha_policy.replication = co.backup;
    // It pairs with the live that asked for it, so it takes the live's group.
    out.ha_policy.replication.group_name = group;
    out.ha_policy.allow_failback = co.backup_allow_failback;
    out.ha_policy.restart_backup = co.backup_restart_backup;
    if (shared) {
        out.ha_policy.failover_on_shutdown = co.backup_failover_on_shutdown;
        out.ha_policy.lock_poll_interval_ms = co.backup_lock_poll_interval_ms;
        if (spec.journal_directory.empty()) {
            return "the live named no journal directory to share";
        }
    }
    for (auto& a : out.acceptors) {
        auto it = std::find(spec.acceptor_names.begin(), spec.acceptor_names.end(), a.name);
        if (it == spec.acceptor_names.end()) {
            return "the live did not say which port its acceptor " + a.name + " bound";
        }
        uint32_t port = spec.acceptor_ports[static_cast<size_t>(it - spec.acceptor_names.begin())];
        bool excluded = std::count(co.excludes.begin(), co.excludes.end(), a.name) > 0;
        if (!excluded) {
            port += co.backup_port_offset * spec.slot;
        }
        if (port == 0 || port > 65535) {
            return "acceptor " + a.name + ": port " + std::to_string(port) + " is out of range";
        }
        a.port = static_cast<uint16_t>(port);
        a.host = local_host(here, a.name);
    }
    if (shared) {
        // The live's own directories, as it named them: both servers of the pair open one
        // journal and one lock file (docs/ha.md, "Colocated backups on a shared store").
        out.journal.journal_directory = spec.journal_directory;
        out.journal.paging_directory = spec.paging_directory;
    } else {
        out.journal.journal_directory = here.journal.journal_directory + "/" + out.name;
    }
    out.cluster = here.cluster;
    out.cluster.port = 0;
    // The primary of the node id too: when this backup takes over from a stand-in, the node
    // that comes back finds it there (docs/ha.md, "Colocated backups").
    for (const auto& m :
         {own_cluster_address, spec.live_cluster_address, spec.primary_cluster_address}) {
        if (!m.empty()
            && std::find(out.cluster.members.begin(), out.cluster.members.end(), m)
                   == out.cluster.members.end()) {
            out.cluster.members.push_back(m);
        }
    }
    out.web.enabled = false;
    out.ports_file.clear();
    return {};
}

std::optional<uint32_t> node::impl::admit(const cluster::colocated_spec& spec) {
    const auto& cc = cfg.cluster;
    bool user_ok = cluster::same_secret(spec.user, cc.user);
    bool password_ok = cluster::same_secret(spec.password, cc.password);
    if (!cc.enabled || cc.password.empty() || !user_ok || !password_ok) {
        log->warn("colocation_spawn_refused live={} reason=\"bad cluster credentials\"",
                  spec.live_name);
        return std::nullopt;
    }
    if (!book || !book->redeem(spec.ticket, spec.slot)) {
        log->warn("colocation_spawn_refused live={} slot={} reason=\"no backup was granted for "
                  "this ticket\"",
                  spec.live_name, spec.slot);
        return std::nullopt;
    }
    return spec.slot;
}

namespace {

/// The configuration of the instance `here` hosts for `spec`: the live's own, loaded here from
/// the text it sent, as colocated_instance_config changes it; or why there is none.
std::string hosted_config(const cluster::colocated_spec& spec,
                          const config::node_config& here,
                          const std::string& own_address,
                          config::node_config& out) {
    auto loaded =
        config::load_string(spec.config_text, spec.live_name + ".toml", spec.config_overrides);
    if (!loaded.config) {
        return "the live's configuration does not load here: "
               + (loaded.errors.empty() ? std::string{"?"} : loaded.errors.front().to_string());
    }
    return colocated_instance_config(*loaded.config, here, spec, own_address, out);
}

/// "NAME=HOST:PORT,..." of an instance's acceptors, for its start line.
std::string acceptor_ports(const server_instance& inst) {
    std::string ports;
    for (const auto& a : inst.cfg.acceptors) {
        auto port = inst.ports.find(a.name);
        ports += (ports.empty() ? "" : ",") + a.name + "=" + a.host + ":"
                 + (port == inst.ports.end() ? std::string{"?"} : std::to_string(port->second));
    }
    return ports;
}

} // namespace

std::string node::impl::start_hosted(const cluster::colocated_spec& spec, caf::actor handle) {
    config::node_config c;
    std::string own_address;
    if (own) {
        std::lock_guard<std::mutex> guard{own->cluster_mtx};
        own_address = own->self_info.cluster_address;
    }
    if (auto err = hosted_config(spec, cfg, own_address, c); !err.empty()) {
        return err;
    }
    auto inst = std::make_unique<server_instance>(*this, std::move(c), true);
    inst->slot = spec.slot;
    inst->live_node_id = spec.live_node_id;
    inst->handle = std::move(handle);
    inst->report("starting", spec.live_node_id);
    if (status_actor) {
        // Its journal's place and counters before its first activation: a passive backup's
        // entry in /api/status names its journal directory too.
        caf::anon_send(status_actor, instance_atom::value, inst->name, server_actor{},
                       journal_actor{}, inst->status_info);
    }
    std::string err = inst->reserve_ports();
    if (err.empty()) {
        err = inst->open_locks();
    }
    if (err.empty()) {
        err = inst->start_cluster();
    }
    if (!err.empty()) {
        inst->stop();
        report_gone(inst->name);
        return err;
    }
    auto name = inst->name;
    server_instance* started = inst.get();
    {
        std::lock_guard<std::mutex> guard{instances_mtx};
        if (!stopping_hosted) {
            hosted[name] = std::move(inst);
        }
    }
    if (inst) { // not handed over: the node is stopping
        inst->stop();
        report_gone(name);
        return "the node is stopping";
    }
    log->info("colocated_instance_started instance={} live={} node_id={} journal={} acceptors={}",
              name, spec.live_name, spec.live_node_id, started->cfg.journal.journal_directory,
              acceptor_ports(*started));
    start_stand_in(*started, spec);
    started->start_ha();
    return {};
}

void node::impl::start_stand_in(server_instance& inst, const cluster::colocated_spec& hosted_spec) {
    // The live's colocated settings travel with its config: a stand-in asks as its live did.
    auto rs = requester_settings_of(inst.cfg.ha_policy.colocated, cfg);
    // No settle wait: the ring is formed, and this node id has no backup from the moment the
    // instance serves.
    rs.settle = std::chrono::milliseconds(0);
    rs.primary = hosted_spec.primary_cluster_address.empty() ? hosted_spec.live_cluster_address
                                                             : hosted_spec.primary_cluster_address;
    auto spec = backup_spec(cfg, inst, hosted_spec.live_name, hosted_spec.config_text,
                            hosted_spec.config_overrides);
    spec.primary_cluster_address = rs.primary;
    std::lock_guard<std::mutex> guard{inst.cluster_mtx};
    spec.live_cluster_address = inst.self_info.cluster_address;
    inst.requester = sys.spawn(stand_in_requester, rs, inst.cluster,
                               caf::actor_cast<caf::actor>(sys.middleman().actor_handle()),
                               std::move(spec), inst.handle);
    caf::anon_send(inst.requester, inst.last_topology);
}

void node::impl::check_hosted(const cluster::topology& t) {
    // Lock order: the own instance's cluster_mtx (held by the caller), instances_mtx, then
    // an instance's cluster_mtx; nothing takes them the other way round.
    std::lock_guard<std::mutex> guard{instances_mtx};
    for (auto& [name, inst] : hosted) {
        // The address is set before the instance is handed over here, and not changed after.
        auto by = superseding_member(t, inst->self_info.cluster_address, inst->live_node_id);
        if (by == inst->superseded_by) {
            continue;
        }
        std::lock_guard<std::mutex> inst_guard{inst->cluster_mtx};
        if (inst->repl_driver) {
            inst->superseded_by = by;
            caf::anon_send(inst->repl_driver, repl_superseded_atom::value, std::move(by));
        }
    }
}

unpaired_instance node::impl::unpaired_of(const std::string& node_id) {
    std::lock_guard<std::mutex> guard{instances_mtx};
    for (auto& [name, inst] : hosted) {
        if (node_id.empty() || inst->live_node_id != node_id || inst->stop_requested
            || !inst->handle) {
            continue;
        }
        std::lock_guard<std::mutex> inst_guard{inst->cluster_mtx};
        // Replication only (a shared-store backup pairs with nobody); no node id announced:
        // neither paired, nor holding or serving a journal of it.
        if (inst->repl_driver && inst->self_info.node_id.empty()) {
            return {inst->handle, inst->slot};
        }
    }
    return {};
}

void node::impl::report_gone(const std::string& name) {
    if (status_actor) {
        caf::anon_send(status_actor, role_atom::value, name, std::string{"gone"}, std::string{});
    }
}

namespace {

/// The actor another node spawns here: the colocated backup instance's handle, which its
/// requester monitors. It starts the instance on a detached actor (binding ports, the lock
/// file and publishing the cluster member block) and ends when the instance ends.
caf::behavior colocated_backup(caf::event_based_actor* self,
                               node::impl* host,
                               uint32_t slot,
                               cluster::colocated_spec spec) {
    auto me = caf::actor_cast<caf::actor>(self);
    auto name = "colocated_backup_" + std::to_string(slot);
    // A release (see release_atom) can come while the instance still starts on the detached
    // actor: it is stopped only once started, never beside its start.
    auto released = std::make_shared<bool>(false);
    auto started = std::make_shared<bool>(false);
    auto io = self->system().spawn<caf::detached>(
        [host, spec, me](caf::event_based_actor*) -> caf::behavior {
            return {[host, spec, me](ha_start_atom) {
                return host->start_hosted(spec, me);
            }};
        });
    // Starting takes a journal directory and a cluster member: seconds, not minutes.
    self->request(io, std::chrono::minutes(5), ha_start_atom::value)
        .then(
            [self, host, slot, io, name, released, started](std::string& error) {
                self->send_exit(io, caf::exit_reason::user_shutdown);
                if (!error.empty()) {
                    host->log->error("colocated_instance_failed slot={} reason=\"{}\"", slot,
                                     error);
                    host->book->release(slot);
                    self->quit(caf::make_error(cluster::cluster_errc::backup_failed));
                } else {
                    *started = true;
                    if (*released) {
                        host->drop_hosted(name);
                    }
                }
            },
            [self, host, slot](caf::error& e) {
                host->log->error("colocated_instance_failed slot={} reason=\"{}\"", slot,
                                 self->system().render(e));
                host->book->release(slot);
                self->quit(caf::make_error(cluster::cluster_errc::backup_failed));
            });
    return {
        [](ha_done_atom) {},
        // The live it backs up has a better backup coming (a stand-in whose primary came back,
        // docs/ha.md): the instance ends, its slot is freed; its directory stays until the next
        // backup in this slot moves it aside, as every backup that starts does.
        [host, name, released, started](cluster::release_atom) {
            host->log->info("colocated_instance_released instance={} reason=\"its requester "
                            "released it\"",
                            name);
            *released = true;
            if (*started) {
                host->drop_hosted(name);
            }
        },
    };
}

} // namespace

void add_colocation_type(caf::actor_system_config& cc, node::impl* d) {
    // add_actor_type's own factory would spawn first and check later; this one checks the
    // cluster credentials and the ticket first, so a stranger's spawn fails and nothing starts.
    cc.add_actor_factory(
        cluster::colocated_actor_type,
        [d](caf::actor_config& ac, caf::message& msg) -> caf::actor_factory_result {
            if (!msg.match_elements<cluster::colocated_spec>()) {
                return {};
            }
            auto slot = d->admit(msg.get_as<cluster::colocated_spec>(0));
            if (!slot) {
                return {};
            }
            auto make = caf::make_actor_factory(
                [d, s = *slot](caf::event_based_actor* self, cluster::colocated_spec spec) {
                    return colocated_backup(self, d, s, std::move(spec));
                });
            return make(ac, msg);
        });
}

void node::impl::start_colocation() {
    const auto& hp = cfg.ha_policy;
    if (hp.kind != config::ha_kind::colocated || !own || !own->cluster) {
        return;
    }
    endpoint = sys.spawn(colocation_endpoint, book, cfg.name,
                         [this](const std::string& node_id) { return unpaired_of(node_id); });
    caf::anon_send(own->cluster, cluster::backup_request_atom::value, endpoint);
    if (!hp.colocated.request_backup) {
        return;
    }
    auto rs = requester_settings_of(hp.colocated, cfg);
    rs.settle = std::chrono::milliseconds(hp.colocated.backup_request_settle_ms);
    rs.expected = cfg.cluster.members;
    auto spec = backup_spec(cfg, *own, cfg.name, cfg.source_text, cfg.source_overrides);
    std::lock_guard<std::mutex> guard{own->cluster_mtx};
    // The topology goes to the requester from the cluster's on_change, under this mutex.
    spec.live_cluster_address = own->self_info.cluster_address;
    spec.primary_cluster_address = spec.live_cluster_address;
    requester =
        sys.spawn(backup_requester, rs, own->cluster,
                  caf::actor_cast<caf::actor>(sys.middleman().actor_handle()), std::move(spec));
    caf::anon_send(requester, own->last_topology);
}

void node::impl::stop_colocation() {
    std::unique_lock<std::mutex> guard;
    if (own) {
        guard = std::unique_lock<std::mutex>{own->cluster_mtx};
    }
    for (auto* a : {&requester, &endpoint}) {
        if (*a) {
            caf::anon_send_exit(*a, caf::exit_reason::user_shutdown);
            *a = nullptr;
        }
    }
}

} // namespace actormq
