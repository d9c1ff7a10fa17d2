// SPDX-License-Identifier: Apache-2.0
// The names of the replication activation machine's phases, notes, events and actions, for
// logs, the status page and the deterministic tests' transcripts (replication_activation.hpp).
#include "actors/ha/replication_activation.hpp"

#include <string>
#include <type_traits>
#include <variant>

namespace actormq::repl_activation {

const char* to_string(phase p) {
    switch (p) {
        case phase::idle:
            return "idle";
        case phase::preparing:
            return "preparing";
        case phase::waiting:
            return "waiting";
        case phase::pairing:
            return "pairing";
        case phase::syncing:
            return "syncing";
        case phase::in_sync:
            return "in-sync";
        case phase::voting:
            return "voting";
        case phase::closing:
            return "closing";
        case phase::claiming:
            return "claiming";
        case phase::loading:
            return "loading";
        case phase::opening:
            return "opening";
        case phase::live:
            return "live";
        case phase::stepping_down:
            return "stepping-down";
        case phase::checking:
            return "checking";
        case phase::failing_back:
            return "failing-back";
        case phase::giving_way:
            return "giving-way";
        case phase::stopping:
            return "stopping";
        case phase::done:
            return "done";
    }
    return "unknown";
}

const char* to_string(note_kind k) {
    switch (k) {
        case note_kind::waiting_for_live:
            return "waiting_for_live";
        case note_kind::pairing:
            return "pairing";
        case note_kind::pair_refused:
            return "pair_refused";
        case note_kind::syncing:
            return "syncing";
        case note_kind::in_sync:
            return "in_sync";
        case note_kind::live_lost:
            return "live_lost";
        case note_kind::voting:
            return "voting";
        case note_kind::vote_lost:
            return "vote_lost";
        case note_kind::activating:
            return "activating";
        case note_kind::live:
            return "live";
        case note_kind::replication_failed:
            return "replication_failed";
        case note_kind::restarting:
            return "restarting";
        case note_kind::quorum_kept:
            return "quorum_kept";
        case note_kind::stepping_down:
            return "stepping_down";
        case note_kind::activation_failed:
            return "activation_failed";
        case note_kind::stopped:
            return "stopped";
        case note_kind::storage_failed:
            return "storage_failed";
        case note_kind::checking:
            return "checking";
        case note_kind::found_served:
            return "found_served";
        case note_kind::failing_back:
            return "failing_back";
        case note_kind::failback_refused:
            return "failback_refused";
        case note_kind::failback_agreed:
            return "failback_agreed";
        case note_kind::giving_way:
            return "giving_way";
        case note_kind::backup_restarted:
            return "backup_restarted";
        case note_kind::backup_exiting:
            return "backup_exiting";
        case note_kind::held_journal:
            return "held_journal";
        case note_kind::stale_journal:
            return "stale_journal";
        case note_kind::superseded:
            return "superseded";
    }
    return "unknown";
}

std::string to_string(const action& a) {
    return std::visit(
        [](const auto& x) -> std::string {
            using t = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<t, prepare_directory>) {
                return x.discard_record ? "prepare_directory(discard)" : "prepare_directory";
            } else if constexpr (std::is_same_v<t, pair_with>) {
                return "pair_with(" + x.address + ")";
            } else if constexpr (std::is_same_v<t, close_replica>) {
                return "close_replica";
            } else if constexpr (std::is_same_v<t, ask_vote>) {
                return std::string{"ask_vote("}
                       + (x.what == question::own_quorum    ? "own"
                          : x.what == question::start_check ? "check"
                                                            : "live")
                       + ")";
            } else if constexpr (std::is_same_v<t, request_failback>) {
                return "request_failback(" + x.address + ")";
            } else if constexpr (std::is_same_v<t, answer_failback>) {
                return std::string{"answer_failback("} + (x.ok ? "yes" : "no") + ")";
            } else if constexpr (std::is_same_v<t, claim_node_id>) {
                return "claim_node_id";
            } else if constexpr (std::is_same_v<t, load_journal>) {
                return "load_journal(" + x.node_id + ")";
            } else if constexpr (std::is_same_v<t, open_acceptors>) {
                return "open_acceptors";
            } else if constexpr (std::is_same_v<t, deactivate>) {
                return "deactivate";
            } else if constexpr (std::is_same_v<t, resume_journal>) {
                return "resume_journal";
            } else if constexpr (std::is_same_v<t, schedule_tick>) {
                return "schedule_tick(" + std::to_string(x.generation) + "," + std::to_string(x.ms)
                       + "ms)";
            } else if constexpr (std::is_same_v<t, note>) {
                return std::string{"note("} + to_string(x.kind) + ")";
            } else if constexpr (std::is_same_v<t, exit_process>) {
                return "exit_process(" + std::to_string(x.status) + ")";
            } else {
                return "finish";
            }
        },
        a);
}

std::string to_string(const event& e) {
    static const char* names[] = {
        "start",           "tick",           "candidates",         "directory_ready", "paired",
        "replica_in_sync", "replica_lost",   "replica_failed",     "replica_closed",  "vote_result",
        "node_id_claimed", "journal_loaded", "acceptors_opened",   "deactivated",     "backup_lost",
        "backup_synced",   "rival_live",     "failback_requested", "failback_answer", "superseded",
        "storage_failure", "stop_request"};
    static_assert(std::size(names) == std::variant_size_v<event>);
    return names[e.index()];
}

} // namespace actormq::repl_activation
