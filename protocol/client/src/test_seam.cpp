// SPDX-License-Identifier: Apache-2.0
#include "test_seam_impl.hpp"

#include <memory>
#include <mutex>

namespace actormq::client::test_seam {

namespace {

std::mutex hook_mu;
std::shared_ptr<hook> current_hook; // guarded by hook_mu

} // namespace

namespace detail {

std::atomic<bool> installed{false};
std::atomic<unsigned long long> wakes{0};

void call(point p) {
    std::shared_ptr<hook> h;
    {
        std::lock_guard<std::mutex> g(hook_mu);
        h = current_hook;
    }
    if (h && *h) {
        try {
            (*h)(p);
        } catch (...) {
            // A test's hook must not take a library thread down.
        }
    }
}

} // namespace detail

unsigned long long io_wakes() {
    return detail::wakes.load(std::memory_order_relaxed);
}

void set_hook(hook h) {
    std::lock_guard<std::mutex> g(hook_mu);
    bool on = static_cast<bool>(h);
    current_hook = on ? std::make_shared<hook>(std::move(h)) : nullptr;
    detail::installed.store(on, std::memory_order_release);
}

} // namespace actormq::client::test_seam
