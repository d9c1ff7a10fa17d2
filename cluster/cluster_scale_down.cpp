// SPDX-License-Identifier: Apache-2.0
// The cluster's part in scale-down (docs/ha.md, "Scale-down"): a stopping member's batches go
// to another member's cluster actor, which takes them only from a joined member.
#include "cluster/cluster_state.hpp"

namespace actormq::cluster::detail {

caf::result<scale_down_ack> send_scale_down(cluster_ptr self,
                                            const std::string& address,
                                            scale_down_batch batch,
                                            uint32_t timeout_ms) {
    auto* m = self->state.member_at(address);
    if (m == nullptr) {
        return caf::make_error(cluster_errc::no_such_member, address);
    }
    // The batch's own bound, not the members' timeout: the target answers only once every
    // durable message is synced to its disk. A target that dies is noticed sooner: the
    // middleman's connection timeout closes the link and the request fails with it.
    auto rp = self->make_response_promise<scale_down_ack>();
    auto key = self->state.next_scale_down++;
    self->state.scale_down_waiting.emplace(key, std::make_pair(m->handle.address(), rp));
    // Whichever comes first answers: the member's answer, the timeout, or its leaving
    // (on_member_down, which also forgets the entry); a promise answers once.
    auto forget = [self, key] {
        self->state.scale_down_waiting.erase(key);
    };
    self->request(m->handle, milliseconds{timeout_ms}, scale_down_atom::value, std::move(batch),
                  timeout_ms)
        .then(
            [rp, forget](scale_down_ack& a) mutable {
                forget();
                rp.deliver(std::move(a));
            },
            [rp, forget](caf::error& e) mutable {
                forget();
                rp.deliver(std::move(e));
            });
    return rp;
}

caf::result<scale_down_ack>
accept_scale_down(cluster_ptr self, scale_down_batch batch, uint32_t timeout_ms) {
    auto& st = self->state;
    if (!st.from_member(self)) {
        st.log->warn("scale_down_refused from={} reason=\"not a member\"", batch.source_name);
        return caf::make_error(cluster_errc::not_a_member);
    }
    if (!st.scale_down_endpoint || st.self_info.role != "live") {
        return caf::make_error(cluster_errc::not_scaling_target, st.self_info.name);
    }
    auto rp = self->make_response_promise<scale_down_ack>();
    self->request(st.scale_down_endpoint, milliseconds{timeout_ms}, scale_down_atom::value,
                  std::move(batch))
        .then([rp](scale_down_ack& a) mutable { rp.deliver(std::move(a)); },
              [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
    return rp;
}

} // namespace actormq::cluster::detail
