// SPDX-License-Identifier: Apache-2.0
#include "protocol/errc.hpp"

namespace actormq {

std::string to_string(errc e) {
    switch (e) {
        case errc::none:
            return "none";
        case errc::no_such_address:
            return "no_such_address";
        case errc::auto_create_disabled:
            return "auto_create_disabled";
        case errc::journal_failed:
            return "journal_failed";
        case errc::duplicate_in_flight:
            return "duplicate_in_flight";
        case errc::limit_reached:
            return "limit_reached";
        case errc::request_timeout:
            return "request_timeout";
        case errc::already_paired:
            return "already_paired";
        case errc::bad_request:
            return "bad_request";
    }
    return "unknown";
}

} // namespace actormq
