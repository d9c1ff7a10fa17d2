// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "protocol/messages.hpp"

#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

namespace actormq {

namespace detail {

inline void append_stats(std::vector<queue_stats>& acc, queue_stats& s) {
    acc.push_back(std::move(s));
}

inline void append_stats(std::vector<queue_stats>& acc, std::vector<queue_stats>& s) {
    acc.insert(acc.end(), s.begin(), s.end());
}

} // namespace detail

/// Asks every actor in `targets` for its stats (`Answer` is what one of them replies) and
/// answers with all of them together. An actor that fails or times out is left out, so one
/// slow queue cannot hide the others.
/// `delivered` runs once the answer is sent.
template <class Answer, class Self, class Handle>
caf::typed_response_promise<std::vector<queue_stats>>
gather_stats(Self* self,
             const std::vector<Handle>& targets,
             std::chrono::milliseconds timeout,
             std::function<void()> delivered = {}) {
    auto rp = self->template make_response_promise<std::vector<queue_stats>>();
    if (targets.empty()) {
        rp.deliver(std::vector<queue_stats>{});
        if (delivered) {
            delivered();
        }
        return rp;
    }
    auto acc = std::make_shared<std::vector<queue_stats>>();
    auto left = std::make_shared<size_t>(targets.size());
    auto done = [rp, acc, left, delivered]() mutable {
        if (--*left == 0) {
            rp.deliver(std::move(*acc));
            if (delivered) {
                delivered();
            }
        }
    };
    for (const auto& t : targets) {
        self->request(t, timeout, stats_atom::value)
            .then(
                [acc, done](Answer& a) mutable {
                    detail::append_stats(*acc, a);
                    done();
                },
                [done](caf::error&) mutable { done(); });
    }
    return rp;
}

} // namespace actormq
