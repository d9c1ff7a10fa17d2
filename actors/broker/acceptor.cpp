// SPDX-License-Identifier: Apache-2.0
#include "actors/broker/acceptor.hpp"

#include "actors/broker/connection.hpp"

namespace actormq {

acceptor::acceptor(boost::asio::io_context& ioc,
                   std::shared_ptr<server_context> ctx,
                   config::acceptor_config cfg,
                   caf::actor_system& sys,
                   server_actor server) {
    auto shared_cfg = std::make_shared<const config::acceptor_config>(std::move(cfg));
    // The actor system outlives every connection: the node runs the io threads dry and what
    // was posted late before it ends the actor system (docs/architecture.md).
    auto make = [ctx, shared_cfg, sys = &sys, server = std::move(server)](
                    boost::asio::ip::tcp::socket sock, uint64_t id,
                    accept_loop<connection>::close_hook on_close) {
        return std::make_shared<connection>(std::move(sock), id, ctx, shared_cfg, *sys, server,
                                            std::move(on_close));
    };
    loop_ = std::make_shared<accept_loop<connection>>(ioc, std::move(ctx), shared_cfg,
                                                      std::move(make));
}

std::string acceptor::open() {
    return loop_->open();
}

uint16_t acceptor::port() const {
    return loop_->port();
}

const config::acceptor_config& acceptor::config() const {
    return *loop_->config();
}

void acceptor::start() {
    loop_->start();
}

void acceptor::shutdown() {
    loop_->shutdown();
}

size_t acceptor::connection_count() const {
    return loop_->connection_count();
}

} // namespace actormq
