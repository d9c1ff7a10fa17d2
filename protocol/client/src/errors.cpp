// SPDX-License-Identifier: Apache-2.0
#include "actormq/client/errors.hpp"

namespace actormq::client {

std::string_view to_string(error_kind k) {
    switch (k) {
        case error_kind::unblocked:
            return "UNBLOCKED";
        case error_kind::transaction_rolled_back:
            return "TRANSACTION_ROLLED_BACK";
        case error_kind::xa_retry:
            return "XA_RETRY";
        case error_kind::disconnected:
            return "DISCONNECTED";
        case error_kind::connection_failed:
            return "CONNECTION_FAILED";
        case error_kind::timeout:
            return "TIMEOUT";
        case error_kind::closed:
            return "CLOSED";
        case error_kind::illegal_state:
            return "ILLEGAL_STATE";
        case error_kind::server:
            return "SERVER_ERROR";
    }
    return "UNKNOWN";
}

std::string_view to_string(failure_event e) {
    switch (e) {
        case failure_event::failure_detected:
            return "FAILURE_DETECTED";
        case failure_event::failover:
            return "FAILOVER";
        case failure_event::disconnect:
            return "DISCONNECT";
    }
    return "UNKNOWN";
}

} // namespace actormq::client
