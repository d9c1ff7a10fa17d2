// SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal to the STOMP session actor (session.cpp, session_commit.cpp): the steps both use —
// errors that close the session, RECEIPTs in frame order, output to the connection, the frame
// pump — and the COMMIT's entry points (docs/stomp.md §7).

#include "actors/broker/session.hpp"

#include <caf/error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace actormq::session_ops {

using session_ptr = stomp_session_actor::stateful_pointer<session_state>;

/// Handles the frames that wait, one after another, while the session is not busy.
void pump(session_ptr self);

/// The connection closed: what the session still holds ends (an open COMMIT finishes first).
void on_closed(session_ptr self);

/// Posts what the handlers wrote and the input bytes that are done to the connection, and
/// tells the connection whether the session is idle after the batches handed so far (the send
/// lane, connection::idle_mark). With output the mark rides with the post and takes effect on
/// the connection's thread after the output is written: the client cannot answer a RECEIPT
/// before the connection knows the session is idle, and nothing posted here can follow a
/// RECEIPT the lane posts. Without output it takes effect at once.
void flush(session_ptr self);

/// Sends ERROR and closes the connection; later frames are ignored.
void fail(session_ptr self,
          const std::string& message,
          const std::string& detail,
          const stomp::frame* f = nullptr);

/// A readable name for an error another actor returned: the `errc` name for ours, CAF's
/// for its own (a request that timed out reads "request_timeout").
std::string reason_of(const caf::error& e);

/// ERROR naming the limit `key` the frame `f` reached (docs/stomp.md, "Limits"), then close.
void fail_limit(session_ptr self,
                std::string_view key,
                uint64_t value,
                const std::string& detail,
                const stomp::frame* f);

/// The receipt id a frame asks for, if any.
std::optional<std::string> receipt_of(const stomp::frame& f);

/// Queues a RECEIPT for the current frame; it goes out once everything before it is done.
void add_receipt(session_ptr self, const std::optional<std::string>& id, bool close_after = false);

/// Queues a RECEIPT for the current frame if it asked for one.
void receipt_for(session_ptr self, const stomp::frame& f, bool close_after = false);

/// The key grouping messages for one route request: an address and a routing type.
std::string batch_key(const std::string& address, routing_type routing);

/// The value of a header the frame must have; nullptr after failing the session without it.
const std::string* require(session_ptr self, const stomp::frame& f, const char* header);

// -- COMMIT, ABORT, BEGIN: session_commit.cpp ------------------------------------------------

/// COMMIT: phase 1 asks every address to prepare its messages (docs/journal.md,
/// "Transactions"). Frames after the COMMIT wait until it is done.
void commit(session_ptr self,
            const std::string& name,
            session_state::transaction tx,
            std::optional<std::string> receipt);

/// BEGIN, COMMIT or ABORT.
void on_transaction(session_ptr self, stomp::frame& f);

} // namespace actormq::session_ops
