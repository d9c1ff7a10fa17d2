// SPDX-License-Identifier: Apache-2.0
#pragma once

// A journal stand-in for tests of an address in a real actor system: it holds every append
// until the test sends it flush_atom, then answers them all with success or (when told to)
// errc::journal_failed, so the test decides exactly when a journal step ends. Replication and
// recovery are not part of such tests.

#include "actors/fwd.hpp"
#include "actors/journal/confirm_hook.hpp"
#include "actors/journal/journal.hpp"
#include "protocol/errc.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace actormq::test {

/// What the test tells the held journal and reads back from it.
struct held_journal_script {
    /// Whether the next flush answers with errc::journal_failed.
    std::atomic<bool> fail{false};
    /// Appends whose first record is a message (queue bindings are not counted).
    std::atomic<int> appends{0};
    /// add_message records appended (routes and page-ins of persistent messages).
    std::atomic<int> messages{0};
    /// duplicate_id records appended (paged messages' ids, once their page write is synced).
    std::atomic<int> dup_ids{0};
};

struct held_journal_state {
    static inline const char* name = "held_journal";
    std::vector<caf::typed_response_promise<uint64_t>> held;
    uint64_t next = 1;
};

inline journal_actor::behavior_type
held_journal(journal_actor::stateful_pointer<held_journal_state> self,
             std::shared_ptr<held_journal_script> script) {
    auto append = [self, script](std::vector<journal::record>& records) {
        if (!records.empty() && records.front().type == journal::record_type::add_message) {
            ++script->appends;
        }
        for (const auto& r : records) {
            if (r.type == journal::record_type::add_message) {
                ++script->messages;
            } else if (r.type == journal::record_type::duplicate_id) {
                ++script->dup_ids;
            }
        }
        self->state.next += records.size();
        auto p = self->make_response_promise<uint64_t>();
        self->state.held.push_back(p);
        return p;
    };
    return {
        [append](append_atom, std::vector<journal::record>& records,
                 bool) -> caf::result<uint64_t> { return append(records); },
        // Addresses send every durable append with a (maybe null) receipt hook; not run here.
        [append](append_atom, std::vector<journal::record>& records, bool,
                 confirm_hook_ptr&) -> caf::result<uint64_t> { return append(records); },
        [self, script](flush_atom) {
            for (auto& p : self->state.held) {
                if (script->fail) {
                    p.deliver(caf::make_error(errc::journal_failed,
                                              std::string{"file=x op=fdatasync errno=EIO"}));
                } else {
                    p.deliver(self->state.next);
                }
            }
            self->state.held.clear();
        },
        [](recover_atom) -> caf::result<std::shared_ptr<recovered_state>> {
            return caf::make_error(errc::journal_failed, std::string{"not in this test"});
        },
        [](stats_atom) { return journal_stats{}; },
        [](replication::pair_atom, const std::string&, const std::string&,
           caf::actor&) -> caf::result<replication::pair_reply> {
            return caf::make_error(errc::bad_request, std::string{"not in this test"});
        },
        [](replication::ack_atom, uint64_t, uint64_t) {},
        [](caf::tick_atom) {},
        [](replication::resume_atom) {},
        [](replication::page_ops_atom, std::vector<replication::file_op>&) { return uint64_t{0}; },
    };
}

} // namespace actormq::test
