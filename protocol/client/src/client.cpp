// SPDX-License-Identifier: Apache-2.0
// The public handles (client.hpp): thin forwarders to the connection's core.
#include "actormq/client/client.hpp"

#include "connection_core.hpp"

namespace actormq::client {

// -- producer ------------------------------------------------------------------------------------

producer::producer(std::shared_ptr<detail::connection_core> c, uint32_t channel, uint32_t id)
    : core_(std::move(c)),
      channel_(channel),
      id_(id) {}

void producer::send(message& m) {
    core_->send(channel_, id_, m, nullptr);
}

void producer::send_async(message& m, send_completion done) {
    core_->send(channel_, id_, m, &done);
}

void producer::set_auto_duplicate_ids(bool on) {
    core_->set_auto_duplicate_ids(channel_, id_, on);
}

void producer::close() {
    core_->close_producer(channel_, id_);
}

// -- consumer ------------------------------------------------------------------------------------

consumer::consumer(std::shared_ptr<detail::connection_core> c, uint32_t channel, uint32_t id)
    : core_(std::move(c)),
      channel_(channel),
      id_(id) {}

std::optional<message> consumer::receive(std::chrono::milliseconds timeout) {
    return core_->receive(channel_, id_, timeout);
}

void consumer::set_message_listener(std::function<void(message)> listener) {
    core_->set_listener(channel_, id_, std::move(listener));
}

void consumer::acknowledge(const message& m) {
    core_->acknowledge(channel_, m);
}

void consumer::close() {
    core_->close_consumer(channel_, id_);
}

// -- session -------------------------------------------------------------------------------------

session::session(std::shared_ptr<detail::connection_core> c, uint32_t channel)
    : core_(std::move(c)),
      channel_(channel) {}

std::shared_ptr<producer> session::create_producer(const std::string& address) {
    auto id = core_->create_producer(channel_, address);
    return std::shared_ptr<producer>(new producer(core_, channel_, id));
}

std::shared_ptr<consumer> session::create_consumer(const std::string& queue,
                                                   const std::string& filter) {
    auto id = core_->create_consumer(channel_, queue, filter, std::nullopt);
    return std::shared_ptr<consumer>(new consumer(core_, channel_, id));
}

std::shared_ptr<consumer> session::create_consumer(const std::string& queue,
                                                   const std::string& filter,
                                                   bool pre_acknowledge) {
    auto id = core_->create_consumer(channel_, queue, filter, pre_acknowledge);
    return std::shared_ptr<consumer>(new consumer(core_, channel_, id));
}

void session::create_queue(const std::string& queue,
                           const std::string& address,
                           routing_type routing,
                           bool durable,
                           bool temporary) {
    native::create_queue q;
    q.queue = queue;
    q.address = address;
    q.route =
        routing == routing_type::multicast ? native::routing::multicast : native::routing::anycast;
    q.durable = durable;
    q.temporary = temporary;
    core_->create_queue(channel_, std::move(q));
}

void session::delete_queue(const std::string& queue) {
    core_->delete_queue(channel_, queue);
}

void session::commit() {
    core_->commit(channel_);
}

void session::rollback() {
    core_->rollback(channel_);
}

bool session::transacted() const {
    return core_->transacted(channel_);
}

namespace {
native::xid to_native(const xid& x) {
    return native::xid{x.format_id, x.gtrid, x.bqual};
}
} // namespace

void session::xa_start(const xid& x, xa_start_flag flag) {
    core_->xa_start(channel_, to_native(x), static_cast<native::xa_start_flag>(flag));
}

void session::xa_end(const xid& x, xa_end_flag flag) {
    core_->xa_end(channel_, to_native(x), static_cast<native::xa_end_flag>(flag));
}

void session::xa_prepare(const xid& x) {
    core_->xa_prepare(channel_, to_native(x));
}

void session::xa_commit(const xid& x, bool one_phase) {
    core_->xa_commit(channel_, to_native(x), one_phase);
}

void session::xa_rollback(const xid& x) {
    core_->xa_rollback(channel_, to_native(x));
}

std::vector<xid> session::xa_recover() {
    std::vector<xid> out;
    for (auto& x : core_->xa_recover(channel_)) {
        out.push_back(xid{x.format_id, std::move(x.gtrid), std::move(x.bqual)});
    }
    return out;
}

bool session::xa() const {
    return core_->xa(channel_);
}

void session::close() {
    core_->close_session(channel_);
}

// -- connection ----------------------------------------------------------------------------------

connection::connection(std::shared_ptr<detail::connection_core> c) : core_(std::move(c)) {}

connection::~connection() {
    core_->close();
}

std::shared_ptr<session> connection::create_session(bool transacted) {
    auto ch = core_->create_session(transacted);
    return std::shared_ptr<session>(new session(core_, ch));
}

std::shared_ptr<session> connection::create_xa_session() {
    auto ch = core_->create_session(false, true);
    return std::shared_ptr<session>(new session(core_, ch));
}

void connection::start() {
    core_->start();
}

void connection::add_failure_listener(failure_listener l) {
    core_->add_failure_listener(std::move(l));
}

std::string connection::node_id() const {
    return core_->node_id();
}

std::string connection::current_server() const {
    return core_->current_server();
}

std::string connection::backup_server() const {
    return core_->backup_server();
}

void connection::close() {
    core_->close();
}

// -- connection_factory --------------------------------------------------------------------------

connection_factory::connection_factory(std::string_view url)
    : options_(connection_options::from_url(url)) {}

std::shared_ptr<connection> connection_factory::create_connection(const std::string& user,
                                                                  const std::string& password) {
    auto core = std::make_shared<detail::connection_core>(
        options_, user.empty() ? options_.user : user,
        user.empty() && password.empty() ? options_.password : password);
    core->open();
    return std::shared_ptr<connection>(new connection(core));
}

} // namespace actormq::client
