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
    }
    return "unknown";
}

} // namespace actormq
