// SPDX-License-Identifier: Apache-2.0
#include "actors/ha/exit_tracker.hpp"

#include <caf/abstract_actor.hpp>
#include <caf/actor_cast.hpp>

namespace actormq {

void exit_tracker::track(const caf::actor& a) {
    {
        std::lock_guard<std::mutex> guard(st_->mtx);
        ++st_->open;
    }
    caf::actor_cast<caf::abstract_actor*>(a)->attach_functor([st = st_] {
        std::lock_guard<std::mutex> guard(st->mtx);
        --st->open;
        st->cv.notify_all();
    });
}

bool exit_tracker::await(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> guard(st_->mtx);
    return st_->cv.wait_for(guard, limit, [this] { return st_->open == 0; });
}

} // namespace actormq
