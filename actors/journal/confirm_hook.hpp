// SPDX-License-Identifier: Apache-2.0
#pragma once

// The journal's shortcut to a client (docs/journal.md, "Confirming on the journal's thread"):
// what a session hands, through its address, to the journal with a synchronous append, so the
// journal itself posts the RECEIPT to the connection the moment the append is confirmed, one
// thread hand-off instead of two (journal -> scheduler worker -> connection).

#include <caf/allowed_unsafe_message_type.hpp>

#include <atomic>
#include <functional>
#include <memory>

namespace actormq {

/// Runs once on the journal's thread when the append it rides with is confirmed: synced, and,
/// with a replicating backup, acknowledged by the backup too. It runs before the append's answer
/// goes out, so whoever reads `fired` after that answer arrived sees `true` exactly when it ran.
/// A failed or refused append never runs it; its owner then does the work itself, or, when
/// nobody waits for the append's answer (the send lane's appends, which the Asio thread sends
/// without a reply address), `refused` runs instead.
struct confirm_hook {
    /// What to do: must be quick and thread-safe (it posts to an Asio strand).
    std::function<void()> run;
    /// What to do instead when the append fails or is refused (quick and thread-safe too);
    /// may be empty.
    std::function<void()> refused;
    /// A producer's append (a SEND whose RECEIPT this posts): group commit sends a batch at once
    /// when the producers it expects are in (journal.md, "Producers first"). False for the ACK
    /// lane's appends (ack_lane.hpp), which count as consumers' ACKs, hook or not.
    bool producer = true;
    /// Set (release) by fire(), read (acquire) by the owner once the answer is in.
    std::atomic<bool> fired{false};

    /// Runs `run` once.
    void fire() {
        if (!fired.exchange(true, std::memory_order_acq_rel) && run) {
            run();
        }
    }

    /// The append failed: runs `refused` once, unless `run` ran (`fired` stays as it is: it
    /// says whether the confirmation went out).
    void refuse() {
        if (!fired.load(std::memory_order_acquire)
            && !refused_once.exchange(true, std::memory_order_acq_rel) && refused) {
            refused();
        }
    }

    /// Set by refuse().
    std::atomic<bool> refused_once{false};

    confirm_hook() = default;
    confirm_hook(const confirm_hook&) = delete;
    confirm_hook& operator=(const confirm_hook&) = delete;

    /// A hook dropped unrun (its append never reached a journal: the journal had stopped) is
    /// refused, so whoever waits on `refused` is never left waiting.
    ~confirm_hook() { refuse(); }
};

/// Shared between the session that made it and the journal that may fire it.
using confirm_hook_ptr = std::shared_ptr<confirm_hook>;

} // namespace actormq

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actormq::confirm_hook_ptr)
