// SPDX-License-Identifier: Apache-2.0
#include "actors/native/listener.hpp"

#include "actors/broker/acceptor.hpp"
#include "actors/native/native_acceptor.hpp"

namespace actormq {

namespace {

/// Forwards to an acceptor class that has the listener's functions without deriving from it.
template <class Acceptor>
class listener_of final : public listener {
public:
    template <class... Ts>
    explicit listener_of(Ts&&... xs) : impl_(std::forward<Ts>(xs)...) {}

    std::string open() override { return impl_.open(); }
    uint16_t port() const override { return impl_.port(); }
    void start() override { impl_.start(); }
    void shutdown() override { impl_.shutdown(); }
    size_t connection_count() const override { return impl_.connection_count(); }

private:
    Acceptor impl_;
};

} // namespace

std::unique_ptr<listener> make_listener(boost::asio::io_context& ioc,
                                        std::shared_ptr<server_context> ctx,
                                        config::acceptor_config cfg,
                                        caf::actor_system& sys,
                                        server_actor server,
                                        std::shared_ptr<native_topology_feed> topology) {
    if (cfg.protocol == "native") {
        return std::make_unique<listener_of<native_acceptor>>(
            ioc, std::move(ctx), std::move(cfg), sys, std::move(server), std::move(topology));
    }
    return std::make_unique<listener_of<acceptor>>(ioc, std::move(ctx), std::move(cfg), sys,
                                                   std::move(server));
}

} // namespace actormq
