// SPDX-License-Identifier: Apache-2.0
#include "actors/replication/messages.hpp"

namespace actormq::replication {

void add_message_types(caf::actor_system_config& cfg) {
    cfg.add_message_type<file_op>("actormq::replication::file_op");
    cfg.add_message_type<std::vector<file_op>>("std::vector<actormq::replication::file_op>");
    cfg.add_message_type<batch>("actormq::replication::batch");
    cfg.add_message_type<pair_reply>("actormq::replication::pair_reply");
}

} // namespace actormq::replication
