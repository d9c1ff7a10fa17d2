// SPDX-License-Identifier: Apache-2.0
#include "protocol/stomp_frame.hpp"

namespace actormq::stomp {

std::string_view to_string(version v) {
    switch (v) {
        case version::v1_0:
            return "1.0";
        case version::v1_1:
            return "1.1";
        case version::v1_2:
            return "1.2";
    }
    return "unknown";
}

std::string_view to_string(command c) {
    switch (c) {
        case command::connect:
            return "CONNECT";
        case command::stomp:
            return "STOMP";
        case command::connected:
            return "CONNECTED";
        case command::send:
            return "SEND";
        case command::subscribe:
            return "SUBSCRIBE";
        case command::unsubscribe:
            return "UNSUBSCRIBE";
        case command::ack:
            return "ACK";
        case command::nack:
            return "NACK";
        case command::begin:
            return "BEGIN";
        case command::commit:
            return "COMMIT";
        case command::abort:
            return "ABORT";
        case command::disconnect:
            return "DISCONNECT";
        case command::message:
            return "MESSAGE";
        case command::receipt:
            return "RECEIPT";
        case command::error:
            return "ERROR";
    }
    return "UNKNOWN";
}

const std::string* frame::find(std::string_view name) const {
    for (const auto& header : headers) {
        if (header.first == name) {
            return &header.second;
        }
    }
    return nullptr;
}

} // namespace actormq::stomp
