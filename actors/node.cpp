// SPDX-License-Identifier: Apache-2.0
#include "actors/node.hpp"

#include "actors/acceptor.hpp"
#include "actors/journal.hpp"
#include "actors/recovery.hpp"
#include "actors/server.hpp"
#include "actors/server_context.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

namespace actormq {

namespace {

/// CAF settings taken from the node config (caf-notes.md §7, §9: our own main, no INI file).
caf::actor_system_config& caf_config(caf::actor_system_config& cfg,
                                     const config::node_config& nc) {
    if (nc.scheduler_max_threads > 0) {
        cfg.set("scheduler.max-threads", static_cast<size_t>(nc.scheduler_max_threads));
    }
    cfg.set("work-stealing.moderate-poll-attempts",
            static_cast<size_t>(nc.scheduler_moderate_poll_attempts));
    cfg.load<caf::io::middleman>();
    return cfg;
}

/// Writes {"NAME": PORT, ...} to `path` atomically (write a temp file, then rename).
bool write_ports_file(const std::string& path, const nlohmann::json& ports) {
    auto tmp = path + ".tmp";
    {
        std::ofstream out{tmp, std::ios::trunc};
        out << ports.dump() << '\n';
        if (!out) {
            return false;
        }
    }
    return std::rename(tmp.c_str(), path.c_str()) == 0;
}

} // namespace

struct node::impl {
    std::shared_ptr<server_context> ctx;
    // The io_context outlives the actor system: sessions hold connections bound to it.
    boost::asio::io_context ioc;
    caf::actor_system_config caf_cfg;
    caf::actor_system sys;
    server_actor srv;
    journal_actor journal;
    std::shared_ptr<recovered_state> recovered;
    std::vector<std::unique_ptr<acceptor>> acceptors;
    std::vector<std::thread> io_threads;
    std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
        work;

    explicit impl(std::shared_ptr<server_context> c)
        : ctx(std::move(c)), sys(caf_config(caf_cfg, ctx->config)) {}
};

node::node(config::node_config cfg) {
    auto ctx = std::make_shared<server_context>();
    ctx->config = std::move(cfg);
    ctx->log = spdlog::get("actors");
    ctx->wire_log = spdlog::get("protocol");
    impl_ = std::make_unique<impl>(std::move(ctx));
}

node::~node() {
    stop();
}

namespace {

/// Logs what recovery found; returns false when the node must not start.
bool report_recovery(const server_context& ctx, const recovered_state& rs) {
    for (const auto& c : rs.corrupt) {
        ctx.log->error("journal_corrupt_record file={} offset={} reason=\"{}\"", c.file, c.offset,
                       c.reason);
    }
    if (!rs.error.empty()) {
        ctx.log->error("journal_recovery_failed reason=\"{}\"", rs.error);
        return false;
    }
    if (rs.torn_tail) {
        ctx.log->info("journal_torn_tail_cut file={} offset={}", rs.torn_file, rs.torn_offset);
    }
    ctx.log->info("journal_recovered directory={} records={} messages={} queues={} "
                  "rolled_back_tx={} seconds={:.3f}",
                  ctx.config.journal.journal_directory, rs.records, rs.messages, rs.queues.size(),
                  rs.rolled_back_transactions, rs.seconds);
    return true;
}

} // namespace

/// Opens the journal and replays it into the server before any client can connect.
bool node::recover() {
    auto& d = *impl_;
    if (!d.ctx->config.journal.persistence_enabled) {
        return true;
    }
    d.journal = d.sys.spawn<caf::detached>(journal_writer, d.ctx);
    d.ctx->journal = d.journal;
    caf::scoped_actor self{d.sys};
    std::shared_ptr<recovered_state> rs;
    // Recovery reads every segment; a large journal takes a while, hence the long bound.
    self->request(d.journal, std::chrono::seconds(3600), recover_atom::value)
        .receive([&](std::shared_ptr<recovered_state>& r) { rs = std::move(r); },
                 [&](caf::error& e) { d.ctx->log->error("journal_recover_failed error={}",
                                                        caf::to_string(e)); });
    if (!rs || !report_recovery(*d.ctx, *rs)) {
        return false;
    }
    d.ctx->next_message_id = rs->max_message_id + 1;
    d.ctx->next_tx_id = rs->max_tx_id + 1;
    d.recovered = std::move(rs);
    return true;
}

int node::start() {
    auto& d = *impl_;
    if (!recover()) {
        return 1;
    }
    d.srv = d.sys.spawn(server, d.ctx);
    if (d.recovered) {
        caf::scoped_actor self{d.sys};
        self->request(d.srv, std::chrono::seconds(3600), recover_atom::value, d.recovered)
            .receive([](uint64_t) {}, [&](caf::error& e) {
                d.ctx->log->error("restore_failed error={}", caf::to_string(e));
            });
        d.recovered.reset();
    }
    nlohmann::json ports = nlohmann::json::object();
    for (const auto& a : d.ctx->config.acceptors) {
        auto acc = std::make_unique<acceptor>(d.ioc, d.ctx, a, d.sys, d.srv);
        if (auto err = acc->open(); !err.empty()) {
            d.ctx->log->error("acceptor_failed name={} reason=\"{}\"", a.name, err);
            return 1;
        }
        ports[a.name] = acc->port();
        d.acceptors.push_back(std::move(acc));
    }
    for (auto& acc : d.acceptors) {
        acc->start();
    }
    d.work = std::make_unique<decltype(d.work)::element_type>(d.ioc.get_executor());
    for (uint32_t i = 0; i < d.ctx->config.io_threads; ++i) {
        d.io_threads.emplace_back([&d] { d.ioc.run(); });
    }
    const auto& pf = d.ctx->config.ports_file;
    if (!pf.empty() && !write_ports_file(pf, ports)) {
        d.ctx->log->error("ports_file_failed path={}", pf);
        return 1;
    }
    d.ctx->log->info("node_started name={} ports={}", d.ctx->config.name, ports.dump());
    return 0;
}

void node::stop() {
    if (!impl_) {
        return;
    }
    auto& d = *impl_;
    for (auto& acc : d.acceptors) {
        acc->shutdown();
    }
    if (d.srv) {
        caf::anon_send_exit(d.srv, caf::exit_reason::user_shutdown);
        d.srv = nullptr;
    }
    if (d.journal) {
        caf::anon_send_exit(d.journal, caf::exit_reason::user_shutdown);
        d.journal = nullptr;
        d.ctx->journal = nullptr;
    }
    d.work.reset();
    d.ioc.stop();
    for (auto& t : d.io_threads) {
        t.join();
    }
    d.io_threads.clear();
    d.acceptors.clear();
}

} // namespace actormq
