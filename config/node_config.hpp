// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace actormq::config {

/// What an address does when its queued bytes reach `max-size-bytes` (reference texts' names).
enum class address_full_policy : uint8_t {
    block, ///< stop reading from the producers' sockets until space frees
    fail,  ///< answer the producer with ERROR
    drop,  ///< drop the message silently (a requested RECEIPT is still sent)
    page,  ///< write new messages to page files and read them back as consumers catch up
};

/// Settings applied to every address whose name matches `match` (Artemis wildcard syntax:
/// words separated by '.', '*' one word, '#' zero or more words). TOML: [address-settings."MATCH"].
struct address_settings {
    std::string match = "#";
    /// Bytes of message bodies and headers an address may hold before its full policy applies.
    /// -1 means unbounded.
    int64_t max_size_bytes = 100 * 1024 * 1024;
    /// PAGE by default, as in Artemis: past max-size-bytes a slow consumer's backlog goes to
    /// page files, not to memory, and producers are neither blocked nor refused
    /// (docs/configuration.md, "Defaults that differ").
    address_full_policy full_policy = address_full_policy::page;
    /// PAGE: bytes of one page file; the next file begins once a file holds this many.
    int64_t page_size_bytes = 10 * 1024 * 1024;
    /// PAGE: page files an address keeps open at once for reading back (Artemis counts the
    /// pages it caches; ActorMQ reads pages through the kernel's page cache and caches only
    /// their descriptors).
    uint32_t page_max_cache_size = 5;
    bool auto_create_queues = true;
    bool auto_create_addresses = true;
};

/// One listening socket. TOML: [acceptors.NAME].
struct acceptor_config {
    std::string name;
    /// "stomp" or "native" (docs/protocol.md).
    std::string protocol = "stomp";
    /// Loopback unless configured otherwise (security by default).
    std::string host = "127.0.0.1";
    /// 0 asks the OS for a free port; the bound port goes to the ports file.
    uint16_t port = 61613;
    /// Largest frame accepted from a client; a larger one gets ERROR and close.
    uint64_t max_frame_bytes = 10 * 1024 * 1024;
    /// Most headers accepted in one frame.
    uint32_t max_headers = 1000;
    /// Longest header line accepted.
    uint32_t max_header_line_bytes = 64 * 1024;
    /// The smallest interval at which the server can send heart-beats (the `sx` of STOMP's
    /// negotiation). 0 = the server never sends them.
    uint32_t heart_beat_send_ms = 10000;
    /// The smallest interval at which the server wants heart-beats from clients (`sy`).
    /// 0 = the server does not ask for them.
    uint32_t heart_beat_receive_ms = 10000;
    /// A connection is closed when nothing arrived for this many negotiated receive intervals
    /// (Artemis' heartBeatToConnectionTtlModifier).
    double heart_beat_to_connection_ttl_modifier = 2.0;
    /// Messages a consumer may have in flight when SUBSCRIBE names no prefetch.
    uint32_t default_prefetch_count = 1000;
    /// Most unconfirmed frame bytes a connection hands its session before it stops reading.
    uint32_t read_window_bytes = 256 * 1024;
    /// Milliseconds a client may take to send CONNECT after the TCP connect.
    uint32_t connect_timeout_ms = 10000;
    /// Most client connections at once on this acceptor.
    uint32_t max_connections = 10000;
    /// Largest frame accepted before CONNECT completed, so a client that never logs in can
    /// make the server buffer only this much (max-frame-bytes applies after CONNECT).
    uint64_t max_frame_bytes_before_connect = 64 * 1024;
    /// Most transactions one session may have begun and not yet committed or aborted.
    uint32_t max_transactions_per_session = 16;
    /// Most SENDs one transaction may hold until COMMIT.
    uint32_t max_messages_per_transaction = 10000;
    /// Most body bytes of the SENDs one transaction may hold until COMMIT.
    uint64_t max_bytes_per_transaction = 16 * 1024 * 1024;
    /// Most subscriptions one session may have at once.
    uint32_t max_subscriptions_per_session = 1000;
    /// Largest prefetch a SUBSCRIBE may ask for; a larger one gets ERROR.
    uint32_t max_prefetch_count = 10000;
    /// Most bytes a connection may hold for a client that does not read them fast enough; at
    /// the bound its output is replaced by ERROR and the connection closes.
    uint64_t max_pending_output_bytes = 64 * 1024 * 1024;
    /// Milliseconds a write to the client may make no progress before the connection closes.
    uint32_t write_timeout_ms = 30000;

    // -- native acceptors only (docs/protocol.md §13, §14, §16) --------------------------------

    /// Largest packet the server accepts from a native client (announced in hello_ok).
    uint32_t max_packet_bytes = 10 * 1024 * 1024 + 64 * 1024;
    /// Milliseconds without a packet after which a native connection is closed, when the client
    /// asks for none (Artemis connection-ttl).
    uint32_t connection_ttl = 60000;
    /// When not -1, the TTL every native connection gets whatever the client asks (Artemis
    /// connection-ttl-override).
    int64_t connection_ttl_override = -1;
    /// Most sessions one native connection may have open (and detached ones it left).
    uint32_t max_sessions_per_connection = 100;
    /// Most producers one native session may have open.
    uint32_t max_producers_per_session = 1000;
    /// Most consumers one native session may have open.
    uint32_t max_consumers_per_session = 1000;
    /// Largest confirmation window a native session may ask for (bytes each side keeps for
    /// reattach, docs/protocol.md §14).
    uint32_t max_confirmation_window_bytes = 1024 * 1024;
};

/// One user allowed to connect. TOML: [security.users.NAME].
struct user_config {
    std::string name;
    std::string password;
    std::vector<std::string> roles;
};

/// Who may connect. TOML: top-level `security-enabled` and the [security] table.
struct security_config {
    /// When false every CONNECT is accepted whatever its login.
    bool security_enabled = true;
    /// When true a CONNECT without `login` is accepted as `anonymous_user`.
    bool allow_anonymous = false;
    std::string anonymous_user = "anonymous";
    std::vector<user_config> users;
};

/// What recovery does with a corrupt journal record that is not a torn tail.
enum class corrupt_record_policy : uint8_t {
    refuse, ///< the node does not start and names the file and offset
    skip,   ///< the node reports it and recovers every valid record around it
};

/// The journal and duplicate detection (Artemis <core> keys of the same names).
struct journal_config {
    /// When false nothing touches the disk; persistent messages are kept in memory only.
    bool persistence_enabled = true;
    /// Relative paths are taken from the node's working directory.
    std::string journal_directory = "data/journal";
    /// Where addresses with address-full-policy PAGE keep their page files, one directory per
    /// address. Empty (the default): "paging" inside journal_directory, so the pages go with
    /// their journal (a shared-store backup shares both, a replicating backup and a colocated
    /// backup instance each have their own). Read it through paging_directory_of().
    std::string paging_directory;
    /// Bytes of one journal segment file.
    uint64_t journal_file_size = 10 * 1024 * 1024;
    /// Segment files kept created and zero-filled ahead of use.
    uint32_t journal_min_files = 2;
    /// Nanoseconds a record may wait for more records to share its write and fsync while the
    /// disk is idle. 0: written at once; records arriving during an fsync share the next.
    uint64_t journal_buffer_timeout = 0;
    /// Bytes of records that make a write start without waiting any longer.
    uint64_t journal_buffer_size = 490 * 1024;
    /// Whether a COMMIT waits for its records to be on disk before it is confirmed.
    bool journal_sync_transactional = true;
    /// Whether a persistent SEND or ACK outside a transaction waits for the disk.
    bool journal_sync_non_transactional = true;
    corrupt_record_policy journal_corrupt_record_policy = corrupt_record_policy::refuse;
    /// Duplicate-detection ids remembered per address.
    uint32_t id_cache_size = 20000;
    /// Whether duplicate-detection ids are journaled (so they survive a restart).
    bool persist_id_cache = true;
};

/// The paging directory in use: paging-directory when set, else "paging" inside the journal
/// directory (docs/journal.md, "Paging").
inline std::string paging_directory_of(const journal_config& j) {
    return j.paging_directory.empty() ? j.journal_directory + "/paging" : j.paging_directory;
}

/// The HA policy (reference text "HA Policies"): which strategy, and this node's role in it.
/// TOML: [ha-policy.live-only], [ha-policy.shared-store.primary] (alias `master`) or
/// [ha-policy.shared-store.backup] (alias `slave`).
enum class ha_kind : uint8_t {
    live_only,    ///< no backup (the default)
    shared_store, ///< live and backup share one journal directory and its lock file
    replication,  ///< the live streams its journal to a backup on another node (issue 11)
    colocated,    ///< replication, with the backup started on another live node (issue 13)
};

enum class ha_role : uint8_t {
    primary, ///< starts as the live server of its node id
    backup,  ///< waits on the lock and takes over when the live is gone
};

/// Replication's keys (reference text "All Replication Configuration"; the vote keys after
/// Artemis's). TOML: [ha-policy.replication.primary] (alias `master`) and
/// [ha-policy.replication.backup] (alias `slave`); allow-failback and restart-backup are
/// ha_policy_config's.
struct replication_config {
    /// Primary only: at start, ask the cluster whether a server already serves this node id
    /// (a backup that took over) and fail back from it instead of starting live.
    bool check_for_live_server = false;
    /// The cluster whose members are asked (empty: this node's [cluster]).
    std::string cluster_name;
    /// A backup pairs only with a live of the same group; empty: any live without a backup.
    std::string group_name;
    /// Milliseconds the live waits at the end of the initial sync for the backup to confirm it
    /// has everything (journal writes wait meanwhile).
    uint32_t initial_replication_sync_timeout = 30000;
    /// Backup only: how many old journals (moved aside at each new sync) are kept.
    uint32_t max_saved_replicated_journals_size = 2;
    /// Whether a live that loses its backup asks for a vote before it keeps serving.
    bool vote_on_replication_failure = false;
    /// Votes needed; -1: more than half of the largest number of live servers seen.
    int32_t quorum_size = -1;
    /// How often a backup asks again when a vote was not won.
    uint32_t vote_retries = 12;
    /// Milliseconds between two votes.
    uint32_t vote_retry_wait = 2000;
    /// Seconds a vote waits for its answers.
    uint32_t quorum_vote_wait = 30;
    /// Milliseconds a backup waits before it tries to pair again after replication failed.
    uint32_t retry_replication_wait = 2000;
};

/// What a colocated live and its backup share (reference text "Colocated Backup Servers": a
/// live asks for a backup "either using shared store or replication"). TOML: `store` in
/// [ha-policy.colocated].
enum class colocated_store : uint8_t {
    replication,  ///< the backup has a journal of its own on its host, streamed to by the live
    shared_store, ///< the backup opens the live's own journal directory and waits on its lock
};

/// [ha-policy.colocated] (reference text "Colocated Backup Servers"): this node serves as a
/// live ([ha-policy.colocated.primary]), asks other live nodes to run its backup, and runs
/// backups for others ([ha-policy.colocated.backup], applies to the backups it asks for). Both
/// role tables take the keys of the policy `store` names: replication's or shared-store's
/// (docs/ha.md, "Colocated backups" and "Colocated backups on a shared store").
struct colocated_config {
    /// Replication (the default) or shared-store.
    colocated_store store = colocated_store::replication;
    /// Whether this node asks another live node to start a backup for it.
    bool request_backup = false;
    /// How many colocated backups this node runs for others at most.
    uint32_t max_backups = 1;
    /// How many times a request goes round the live nodes before giving up; -1: for ever.
    int32_t backup_request_retries = -1;
    /// Milliseconds between two rounds of requests.
    uint32_t backup_request_retry_interval = 5000;
    /// Milliseconds without a topology change before this node asks for its backup after it
    /// starts serving (earlier once every configured member is there; at most three times
    /// this); 0 asks at once (docs/ha.md, "Colocated backups").
    uint32_t backup_request_settle_ms = 10000;
    /// Added, times the backup's number N, to each port of a backup this node runs for others
    /// (colocated_backup_N listens on the live's port + N * offset).
    uint32_t backup_port_offset = 100;
    /// Acceptor names whose port the backup keeps unshifted.
    std::vector<std::string> excludes;
    /// The replication keys of the backups this node asks for ([ha-policy.colocated.backup]),
    /// with its allow-failback and restart-backup.
    replication_config backup;
    bool backup_allow_failback = true;
    bool backup_restart_backup = true;
    /// Shared-store only: the backups' failover-on-shutdown and lock-poll-interval-ms (their
    /// [ha-policy.colocated.backup] keys; the primary's are ha_policy_config's).
    bool backup_failover_on_shutdown = false;
    uint32_t backup_lock_poll_interval_ms = 10;
};

/// Scale-down (reference text "Scaling Down"; docs/ha.md, "Scale-down"): on a graceful stop a
/// live copies its messages and prepared transactions to another live of the cluster, and a
/// backup does so right after it failed over instead of serving. TOML:
/// [ha-policy.live-only.scale-down], or `scale-down` inside the backup table of shared-store or
/// replication.
struct scale_down_config {
    /// Whether the server scales down. A `scale-down` table turns it on unless it says
    /// `enabled = false`.
    bool enabled = false;
    /// Cluster addresses ("HOST:PORT" of a member's [cluster] port, as in [cluster] members)
    /// tried in order; empty: any live member of the cluster (the static members stand in for
    /// Artemis's discovery group).
    std::vector<std::string> connectors;
    /// Only a live announcing this group is a target (a node announces its replication
    /// group-name, or else its scale-down group-name); empty: any group.
    std::string group_name;
    /// Messages per batch sent to the target (each batch is confirmed durably before the next
    /// goes, and before the source drops it from its own journal).
    uint32_t batch_messages = 1000;
    /// Milliseconds a batch may take to be confirmed before the scale-down gives up.
    uint32_t batch_timeout_ms = 30000;
};

struct ha_policy_config {
    ha_kind kind = ha_kind::live_only;
    ha_role role = ha_role::primary;
    /// Stopping this server normally (SIGTERM) lets the backup take over; when false the lock
    /// file says "paused" and the backup stays passive.
    bool failover_on_shutdown = false;
    /// Backup only: once active, give way when the original live comes back.
    bool allow_failback = true;
    /// Backup only: after giving way, wait as a backup again (false: the process exits).
    bool restart_backup = true;
    /// Milliseconds between two attempts to take the lock file's locks, and between two looks
    /// at its state while serving (so a failback request is seen within this time).
    uint32_t lock_poll_interval_ms = 10;
    /// The replication keys when `kind` is replication (colocated with store replication: the
    /// primary's).
    replication_config replication;
    /// The colocated keys when `kind` is colocated.
    colocated_config colocated;
    /// Live-only, or a shared-store / replication backup: scale down when stopped (a backup:
    /// right after it failed over).
    scale_down_config scale_down;
};

/// The cluster: how this node finds and talks to the others (CAF middleman). TOML: [cluster],
/// plus the top-level cluster-user and cluster-password.
struct cluster_config {
    /// Whether a [cluster] table was given; without it the node joins no one.
    bool enabled = false;
    /// Loopback unless configured otherwise.
    std::string host = "127.0.0.1";
    /// 0 asks the OS for a free port; the bound port goes to the ports file as "cluster".
    uint16_t port = 0;
    /// "HOST:PORT" cluster addresses of the other members (static discovery).
    std::vector<std::string> members;
    /// Milliseconds between attempts to reach a member that is not connected.
    uint32_t reconnect_interval_ms = 200;
    /// CAF middleman heart-beat and connection timeout (caf-notes.md §3: both or neither).
    uint32_t heartbeat_interval_ms = 200;
    uint32_t connection_timeout_ms = 1000;
    /// Credentials every member must present to join (Artemis cluster-user / cluster-password).
    std::string user = "actormq-cluster";
    std::string password;
};

/// The web status page, the JSON API and /metrics (docs/web.md). TOML: [web].
struct web_config {
    /// false: no HTTP listener at all.
    bool enabled = true;
    /// Loopback unless configured otherwise.
    std::string host = "127.0.0.1";
    /// 0 asks the OS for a free port; the bound port goes to the ports file as "web".
    uint16_t port = 8161;
};

/// Everything one actormq-node reads from its TOML file.
struct node_config {
    /// The file the config came from (or "<string>"), for messages.
    std::string source;
    /// This server's name (Artemis <name>), shown in logs and CONNECTED's `server` header.
    std::string name = "actormq";
    /// trace, debug, info, warn, error, critical, off.
    std::string log_level = "info";
    /// Where the node writes a JSON object {"ACCEPTOR": PORT, ...} once its sockets are bound.
    /// Empty = not written.
    std::string ports_file;
    /// CAF scheduler worker threads; 0 = one per core.
    uint32_t scheduler_max_threads = 0;
    /// Asio threads serving client sockets.
    uint32_t io_threads = 1;
    /// CAF's work-stealing "moderate" poll attempts; 0 sends idle workers straight to sleep on
    /// a condition variable (see docs/benchmarks.md for the measured effect).
    uint32_t scheduler_moderate_poll_attempts = 0;
    /// Milliseconds a request between actors may take before it fails.
    uint32_t request_timeout_ms = 5000;
    /// Most addresses that may exist on the node (all are created on a client's first use or
    /// restored from the journal); a SEND or SUBSCRIBE that would create one more gets ERROR.
    uint32_t max_auto_created_addresses = 10000;
    /// Most queues that may exist on the node (anycast, subscription and durable subscription
    /// queues, including restored ones); a SEND or SUBSCRIBE that would create one more gets
    /// ERROR.
    uint32_t max_auto_created_queues = 100000;
    /// Most XA branches that may be prepared and undecided on the server at once (restored
    /// ones included); a native xa_prepare beyond it gets fail limit_reached.
    uint32_t max_prepared_transactions = 1000;

    journal_config journal;
    std::vector<acceptor_config> acceptors;
    security_config security;
    ha_policy_config ha_policy;
    cluster_config cluster;
    web_config web;
    /// In file order; lookups pick the most specific match (see settings_for).
    std::vector<address_settings> address_settings_list;

    // -- where the config came from (not keys) -----------------------------------------------

    /// The TOML text and the overrides it was loaded from: a colocated backup's host parses
    /// the live's configuration again from them (docs/ha.md, "Colocated backups").
    std::string source_text;
    std::vector<std::string> source_overrides;

    /// Returns the settings of the most specific `match` for `address`: an exact name beats any
    /// wildcard, then fewer wildcards, then a longer pattern. Falls back to the defaults.
    address_settings settings_for(std::string_view address) const;
};

/// Whether `address` matches the Artemis-style wildcard `pattern` ('.'-separated words,
/// '*' exactly one word, '#' zero or more words).
bool wildcard_match(std::string_view pattern, std::string_view address);

} // namespace actormq::config
