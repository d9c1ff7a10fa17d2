// SPDX-License-Identifier: Apache-2.0
#include "actors/node.hpp"

#include "actors/acceptor.hpp"
#include "actors/server.hpp"
#include "actors/server_context.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
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

int node::start() {
    auto& d = *impl_;
    d.srv = d.sys.spawn(server, d.ctx);
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
    d.work.reset();
    d.ioc.stop();
    for (auto& t : d.io_threads) {
        t.join();
    }
    d.io_threads.clear();
    d.acceptors.clear();
}

} // namespace actormq
