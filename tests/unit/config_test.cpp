// SPDX-License-Identifier: Apache-2.0
#include "support/config_text.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace actormq::config;
using namespace actormq::test::config_text;

namespace {

/// A file that sets every key to a value other than its default.
constexpr const char* full_file = R"(name = "demo"
log-level = "debug"
ports-file = "/tmp/x/ports.json"
scheduler-max-threads = 4
io-threads = 2
scheduler-moderate-poll-attempts = 3
request-timeout-ms = 2500
max-auto-created-addresses = 40
max-auto-created-queues = 50
security-enabled = true
persistence-enabled = false
journal-directory = "/var/lib/actormq/journal"
journal-file-size = 1048576
journal-min-files = 3
journal-buffer-timeout = 1000
journal-buffer-size = 65536
journal-sync-transactional = false
journal-sync-non-transactional = false
journal-corrupt-record-policy = "skip"
id-cache-size = 500
persist-id-cache = false
paging-directory = "/var/lib/actormq/paging"

[acceptors.zeta]
protocol = "stomp"
host = "0.0.0.0"
port = 61614
max-frame-bytes = 65536
max-headers = 50
max-header-line-bytes = 4096
heart-beat-send-ms = 0
heart-beat-receive-ms = 3000
heart-beat-to-connection-ttl-modifier = 1.5
default-prefetch-count = 10
read-window-bytes = 1024
connect-timeout-ms = 500
max-connections = 7
max-frame-bytes-before-connect = 2048
max-transactions-per-session = 3
max-messages-per-transaction = 4
max-bytes-per-transaction = 5000
max-subscriptions-per-session = 6
max-prefetch-count = 11
max-pending-output-bytes = 8192
write-timeout-ms = 900

[acceptors.alpha]
port = 0

[security]
allow-anonymous = true
anonymous-user = "visitor"
[security.users.guest]
password = "guest"
roles = ["amq"]
[security.users.admin]
password = "secret"
roles = ["admin", "amq"]

[address-settings."#"]
max-size-bytes = -1
address-full-policy = "drop"
auto-create-queues = false
auto-create-addresses = false

[address-settings."orders.*"]
max-size-bytes = 1000
address-full-policy = "Fail"

[address-settings."logs.#"]
address-full-policy = "page"
page-size-bytes = 131072
page-max-cache-size = 3
)";

} // namespace

// -- defaults and a full file ---------------------------------------------------------------------

TEST_CASE("config: load: a file with only a user gets every default") {
    auto config = load_ok("");
    const node_config defaults;
    CHECK(config.source == "cfg.toml");
    CHECK(config.name == defaults.name);
    CHECK(config.log_level == "info");
    CHECK(config.ports_file.empty());
    CHECK(config.scheduler_max_threads == 0);
    CHECK(config.io_threads == 1);
    CHECK(config.scheduler_moderate_poll_attempts == 0);
    CHECK(config.request_timeout_ms == 5000);
    CHECK(config.security.security_enabled);
    CHECK_FALSE(config.security.allow_anonymous);
    CHECK(config.security.anonymous_user == "anonymous");
    CHECK(config.address_settings_list.empty());
    REQUIRE(config.acceptors.size() == 1);
    const auto& stomp = config.acceptors[0];
    const acceptor_config acceptor_defaults;
    CHECK(stomp.name == "stomp");
    CHECK(stomp.protocol == "stomp");
    CHECK(stomp.host == "127.0.0.1");
    CHECK(stomp.port == 61613);
    CHECK(stomp.max_frame_bytes == acceptor_defaults.max_frame_bytes);
    CHECK(stomp.max_headers == acceptor_defaults.max_headers);
    CHECK(stomp.heart_beat_to_connection_ttl_modifier == 2.0);
    CHECK(stomp.connect_timeout_ms == acceptor_defaults.connect_timeout_ms);
    REQUIRE(config.security.users.size() == 1);
    CHECK(config.security.users[0].name == "guest");
    CHECK(config.security.users[0].password == "guest");
    CHECK(config.security.users[0].roles.empty());
}

TEST_CASE("config: load: an empty file is rejected because no client could connect") {
    CHECK(errors_of("")
          == std::vector<std::string>{
              "cfg.toml:0:0: security-enabled: security is enabled but no users "
              "are defined and allow-anonymous is false: no client could connect",
          });
}

TEST_CASE("config: load: a full file loads with every value") {
    auto result = load_string(full_file, "full.toml");
    INFO("errors: " << messages(result));
    REQUIRE(result.errors.empty());
    const auto& config = *result.config;
    CHECK(config.source == "full.toml");
    CHECK(config.name == "demo");
    CHECK(config.log_level == "debug");
    CHECK(config.ports_file == "/tmp/x/ports.json");
    CHECK(config.scheduler_max_threads == 4);
    CHECK(config.io_threads == 2);
    CHECK(config.scheduler_moderate_poll_attempts == 3);
    CHECK(config.request_timeout_ms == 2500);
    CHECK(config.max_auto_created_addresses == 40);
    CHECK(config.max_auto_created_queues == 50);
    const auto& j = config.journal;
    CHECK_FALSE(j.persistence_enabled);
    CHECK(j.journal_directory == "/var/lib/actormq/journal");
    CHECK(j.journal_file_size == 1048576);
    CHECK(j.journal_min_files == 3);
    CHECK(j.journal_buffer_timeout == 1000);
    CHECK(j.journal_buffer_size == 65536);
    CHECK_FALSE(j.journal_sync_transactional);
    CHECK_FALSE(j.journal_sync_non_transactional);
    CHECK(j.journal_corrupt_record_policy == corrupt_record_policy::skip);
    CHECK(j.id_cache_size == 500);
    CHECK_FALSE(j.persist_id_cache);

    // Acceptors keep file order, not toml++'s alphabetical order.
    REQUIRE(config.acceptors.size() == 2);
    const auto& zeta = config.acceptors[0];
    CHECK(zeta.name == "zeta");
    CHECK(zeta.protocol == "stomp");
    CHECK(zeta.host == "0.0.0.0");
    CHECK(zeta.port == 61614);
    CHECK(zeta.max_frame_bytes == 65536);
    CHECK(zeta.max_headers == 50);
    CHECK(zeta.max_header_line_bytes == 4096);
    CHECK(zeta.heart_beat_send_ms == 0);
    CHECK(zeta.heart_beat_receive_ms == 3000);
    CHECK(zeta.heart_beat_to_connection_ttl_modifier == 1.5);
    CHECK(zeta.default_prefetch_count == 10);
    CHECK(zeta.read_window_bytes == 1024);
    CHECK(zeta.connect_timeout_ms == 500);
    CHECK(zeta.max_connections == 7);
    CHECK(zeta.max_frame_bytes_before_connect == 2048);
    CHECK(zeta.max_transactions_per_session == 3);
    CHECK(zeta.max_messages_per_transaction == 4);
    CHECK(zeta.max_bytes_per_transaction == 5000);
    CHECK(zeta.max_subscriptions_per_session == 6);
    CHECK(zeta.max_prefetch_count == 11);
    CHECK(zeta.max_pending_output_bytes == 8192);
    CHECK(zeta.write_timeout_ms == 900);
    CHECK(config.acceptors[1].name == "alpha");
    CHECK(config.acceptors[1].port == 0);
    CHECK(config.acceptors[1].host == "127.0.0.1");

    CHECK(config.security.security_enabled);
    CHECK(config.security.allow_anonymous);
    CHECK(config.security.anonymous_user == "visitor");
    REQUIRE(config.security.users.size() == 2);
    CHECK(config.security.users[0].name == "guest");
    CHECK(config.security.users[0].roles == std::vector<std::string>{"amq"});
    CHECK(config.security.users[1].name == "admin");
    CHECK(config.security.users[1].password == "secret");
    CHECK(config.security.users[1].roles == std::vector<std::string>{"admin", "amq"});

    REQUIRE(config.address_settings_list.size() == 3);
    const auto& all = config.address_settings_list[0];
    CHECK(all.match == "#");
    CHECK(all.max_size_bytes == -1);
    CHECK(all.full_policy == address_full_policy::drop);
    CHECK_FALSE(all.auto_create_queues);
    CHECK_FALSE(all.auto_create_addresses);
    const auto& orders = config.address_settings_list[1];
    CHECK(orders.match == "orders.*");
    CHECK(orders.max_size_bytes == 1000);
    CHECK(orders.full_policy == address_full_policy::fail);
    CHECK(orders.auto_create_queues);
    CHECK(config.journal.paging_directory == "/var/lib/actormq/paging");
    auto logs = config.settings_for("logs.app");
    CHECK(logs.full_policy == address_full_policy::page);
    CHECK(logs.page_size_bytes == 131072);
    CHECK(logs.page_max_cache_size == 3);
    CHECK(config.settings_for("orders.eu").page_size_bytes == 10 * 1024 * 1024);
    CHECK(config.settings_for("orders.eu").page_max_cache_size == 5);
}

TEST_CASE("config: load: an integer is accepted for the ttl modifier") {
    auto config = load_ok("[acceptors.stomp]\nheart-beat-to-connection-ttl-modifier = 3\n");
    CHECK(config.acceptors[0].heart_beat_to_connection_ttl_modifier == 3.0);
}

TEST_CASE("config: load: the shipped single-node example loads without errors") {
    auto result = load_file(ACTORMQ_SOURCE_DIR "/examples/single-node.toml");
    INFO("errors: " << messages(result));
    REQUIRE(result.errors.empty());
    const auto& config = *result.config;
    REQUIRE(config.acceptors.size() == 1);
    CHECK(config.acceptors[0].host == "127.0.0.1");
    CHECK(config.acceptors[0].port == 61613);
    CHECK_FALSE(config.security.allow_anonymous);
    REQUIRE(config.security.users.size() == 2);
    CHECK(config.security.users[0].name == "guest");
    CHECK(config.security.users[1].roles == std::vector<std::string>{"admin"});
    CHECK(config.settings_for("orders.eu").full_policy == address_full_policy::fail);
    CHECK(config.settings_for("news").full_policy == address_full_policy::block);
}

TEST_CASE("config: load: a bad journal policy and a tiny journal file are reported") {
    auto result = load_string("journal-corrupt-record-policy = \"maybe\"\njournal-file-size = 10\n"
                              "[security.users.guest]\npassword = \"guest\"\n",
                              "j.toml");
    REQUIRE(result.errors.size() == 2);
    CHECK(result.errors[0].to_string().rfind("j.toml:1:", 0) == 0);
    CHECK(result.errors[0].key == "journal-corrupt-record-policy");
    CHECK(result.errors[1].key == "journal-file-size");
}

TEST_CASE("config: docs: every key of the full file has a row in docs/configuration.md") {
    std::ifstream in(ACTORMQ_SOURCE_DIR "/docs/configuration.md");
    REQUIRE(in.good());
    std::stringstream docs;
    docs << in.rdbuf();
    std::istringstream lines{std::string{full_file} + ha_file};
    std::set<std::string> keys;
    for (std::string line; std::getline(lines, line);) {
        auto equals = line.find(" = ");
        if (line.empty() || line[0] == '[' || equals == std::string::npos) {
            continue;
        }
        keys.insert(line.substr(0, equals));
        INFO("key: " << line.substr(0, equals));
        CHECK(docs.str().find("| `" + line.substr(0, equals) + "` |") != std::string::npos);
    }
    // Every key the loader knows: 24 top-level, 21 per acceptor, 2 security, 2 per user, 6 per
    // address-settings table, 4 of the backup role (the primary's are a subset, and the alias
    // failover-on-server-shutdown is documented with them), 6 cluster of which host and port
    // share their names with acceptor keys, 3 web of which only `enabled` is a new name.
    CHECK(keys.size() == 64);
}

// -- errors ---------------------------------------------------------------------------------------

TEST_CASE("config: error: to_string is FILE:LINE:COLUMN: KEY: REASON") {
    config_error error{"cfg.toml", 3, 8, "acceptors.stomp.port", "must be between 0 and 65535"};
    CHECK(error.to_string() == "cfg.toml:3:8: acceptors.stomp.port: must be between 0 and 65535");
    config_error syntax{"cfg.toml", 2, 5, "", "could not determine value type"};
    CHECK(syntax.to_string() == "cfg.toml:2:5: could not determine value type");
}

TEST_CASE("config: load: an unknown key names file, line and key") {
    CHECK(errors_of(std::string{"colour = 1\n"} + one_user)
          == std::vector<std::string>{"cfg.toml:1:1: colour: unknown key"});
}

TEST_CASE("config: load: an unknown key close to a known one suggests it") {
    auto errors =
        errors_of(std::string{"[acceptors.stomp]\nprot = 1\nmax_frame_bytes = 100\n"}
                  + "[address-settings.\"a.#\"]\naddress-ful-policy = \"FAIL\"\n" + one_user);
    CHECK(errors
          == std::vector<std::string>{
              "cfg.toml:2:1: acceptors.stomp.prot: unknown key; did you mean 'port'?",
              "cfg.toml:3:1: acceptors.stomp.max_frame_bytes: unknown key; did you "
              "mean 'max-frame-bytes'?",
              "cfg.toml:5:1: address-settings.\"a.#\".address-ful-policy: unknown key; "
              "did you mean 'address-full-policy'?",
          });
}

TEST_CASE("config: load: a key written in the wrong table suggests where it belongs") {
    auto errors = errors_of(std::string{"allow-anonymous = true\n[security]\n"}
                            + "security-enabled = false\n" + one_user);
    CHECK(errors
          == std::vector<std::string>{
              "cfg.toml:1:1: allow-anonymous: unknown key; did you mean "
              "'security.allow-anonymous'?",
              "cfg.toml:3:1: security.security-enabled: unknown key; did you mean the "
              "top-level 'security-enabled'?",
          });
}

TEST_CASE("config: load: a wrong type names file, line, key and both types") {
    auto errors = errors_of(std::string{"io-threads = \"two\"\n[acceptors.stomp]\nhost = 1\n"}
                            + "[security.users.u]\npassword = \"p\"\nroles = [\"a\", 2]\n");
    CHECK(errors
          == std::vector<std::string>{
              "cfg.toml:1:14: io-threads: expected an integer, found a string",
              "cfg.toml:3:8: acceptors.stomp.host: expected a string, found an integer",
              "cfg.toml:6:15: security.users.u.roles[1]: expected a string, found an "
              "integer",
          });
}

TEST_CASE("config: load: a table given as a value is a type error") {
    auto errors = errors_of(std::string{"acceptors = 5\n"} + one_user);
    CHECK(errors
          == std::vector<std::string>{"cfg.toml:1:13: acceptors: expected a table, found an "
                                      "integer"});
}

TEST_CASE("config: load: an out-of-range port names file, line and key") {
    auto errors =
        errors_of(std::string{"[acceptors.stomp]\nhost = \"::1\"\nport = 70000\n"} + one_user);
    CHECK(errors
          == std::vector<std::string>{
              "cfg.toml:3:8: acceptors.stomp.port: must be between 0 and 65535, found "
              "70000",
          });
}

TEST_CASE("config: load: client limits below their bounds name file:line:col and key") {
    auto errors = errors_of(std::string{R"(max-auto-created-addresses = 0
max-auto-created-queues = 0
[acceptors.stomp]
max-frame-bytes-before-connect = 63
max-transactions-per-session = 0
max-messages-per-transaction = 0
max-bytes-per-transaction = 0
max-subscriptions-per-session = 0
max-prefetch-count = 0
max-pending-output-bytes = 1023
write-timeout-ms = 0
)"} + one_user);
    CHECK(errors
          == std::vector<std::string>{
              "cfg.toml:1:30: max-auto-created-addresses: must be at least 1, found 0",
              "cfg.toml:2:27: max-auto-created-queues: must be at least 1, found 0",
              "cfg.toml:4:34: acceptors.stomp.max-frame-bytes-before-connect: must be at least "
              "64, found 63",
              "cfg.toml:5:32: acceptors.stomp.max-transactions-per-session: must be at least 1, "
              "found 0",
              "cfg.toml:6:32: acceptors.stomp.max-messages-per-transaction: must be at least 1, "
              "found 0",
              "cfg.toml:7:29: acceptors.stomp.max-bytes-per-transaction: must be at least 1, "
              "found 0",
              "cfg.toml:8:33: acceptors.stomp.max-subscriptions-per-session: must be at least 1, "
              "found 0",
              "cfg.toml:9:22: acceptors.stomp.max-prefetch-count: must be at least 1, found 0",
              "cfg.toml:10:28: acceptors.stomp.max-pending-output-bytes: must be at least 1024, "
              "found 1023",
              "cfg.toml:11:20: acceptors.stomp.write-timeout-ms: must be at least 1, found 0",
          });
}

TEST_CASE("config: load: a default-prefetch-count above max-prefetch-count is rejected") {
    CHECK(errors_of(std::string{"[acceptors.stomp]\ndefault-prefetch-count = 50\n"
                                "max-prefetch-count = 20\n"}
                    + one_user)
          == std::vector<std::string>{
              "cfg.toml:3:22: acceptors.stomp.max-prefetch-count: default-prefetch-count (50) "
              "must not exceed max-prefetch-count (20)"});
    CHECK(errors_of(std::string{"[acceptors.stomp]\ndefault-prefetch-count = 20000\n"} + one_user)
          == std::vector<std::string>{
              "cfg.toml:2:26: acceptors.stomp.default-prefetch-count: default-prefetch-count "
              "(20000) must not exceed max-prefetch-count (10000)"});
}

TEST_CASE("config: load: values out of range are rejected with their bounds") {
    auto errors = errors_of(std::string{R"(log-level = "verbose"
io-threads = 65
request-timeout-ms = 0
[acceptors.stomp]
max-frame-bytes = 63
max-connections = 0
heart-beat-to-connection-ttl-modifier = 0.5
read-window-bytes = 4294967296
[address-settings."#"]
max-size-bytes = 0
)"} + one_user);
    CHECK(errors
          == std::vector<std::string>{
              "cfg.toml:1:13: log-level: unknown log level 'verbose'; expected one of trace, "
              "debug, info, warn, error, critical, off",
              "cfg.toml:2:14: io-threads: must be between 1 and 64, found 65",
              "cfg.toml:3:22: request-timeout-ms: must be at least 1, found 0",
              "cfg.toml:5:19: acceptors.stomp.max-frame-bytes: must be at least 64, found 63",
              "cfg.toml:6:19: acceptors.stomp.max-connections: must be at least 1, found 0",
              "cfg.toml:7:41: acceptors.stomp.heart-beat-to-connection-ttl-modifier: must be a "
              "finite number of at least 1.0, found 0.5",
              "cfg.toml:8:21: acceptors.stomp.read-window-bytes: must be at most 4294967295, "
              "found 4294967296",
              "cfg.toml:10:18: address-settings.\"#\".max-size-bytes: must be -1 (unbounded) or "
              "greater than 0, found 0",
          });
}

TEST_CASE("config: load: several errors in one file are all reported in file order") {
    auto errors = errors_of(R"(name = ""
[acceptors.stomp]
protocol = "amqp"
port = -1
[security]
allow-anonymous = "yes"
[address-settings."#"]
address-full-policy = "SPILL"
)");
    CHECK(errors
          == std::vector<std::string>{
              "cfg.toml:1:8: name: must not be empty",
              "cfg.toml:3:12: acceptors.stomp.protocol: unsupported protocol 'amqp'; "
              "expected \"stomp\" or \"native\"",
              "cfg.toml:4:8: acceptors.stomp.port: must be between 0 and 65535, found -1",
              "cfg.toml:6:19: security.allow-anonymous: expected a boolean, found a "
              "string",
              "cfg.toml:8:23: address-settings.\"#\".address-full-policy: "
              "unknown policy 'SPILL'; expected BLOCK, FAIL, DROP or PAGE",
          });
}

TEST_CASE("config: load: address-full-policy PAGE is read; page sizes out of range are named") {
    auto errors = errors_of(std::string{"[address-settings.\"orders.#\"]\n"}
                            + "address-full-policy = \"page\"\npage-size-bytes = 100\n"
                            + "page-max-cache-size = 0\n" + one_user);
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].rfind("cfg.toml:3:19: address-settings.\"orders.#\".page-size-bytes: ", 0)
          == 0);
    CHECK(errors[1].rfind("cfg.toml:4:23: address-settings.\"orders.#\".page-max-cache-size: ", 0)
          == 0);
    auto other = errors_of(std::string{"[address-settings.\"#\"]\n"}
                           + "address-full-policy = \"SPILL\"\n" + one_user);
    CHECK(other
          == std::vector<std::string>{
              "cfg.toml:2:23: address-settings.\"#\".address-full-policy: unknown policy "
              "'SPILL'; expected BLOCK, FAIL, DROP or PAGE",
          });
}

TEST_CASE("config: load: two acceptors on the same host and port are rejected") {
    auto errors = errors_of(std::string{R"([acceptors.a]
port = 7000
[acceptors.b]
port = 7000
[acceptors.c]
host = "0.0.0.0"
port = 7001
[acceptors.d]
host = "10.0.0.1"
port = 7001
[acceptors.e]
port = 0
[acceptors.f]
port = 0
)"} + one_user);
    CHECK(errors
          == std::vector<std::string>{
              "cfg.toml:4:8: acceptors.b.port: acceptor 'a' already listens on "
              "127.0.0.1:7000",
              "cfg.toml:10:8: acceptors.d.port: acceptor 'c' already listens on "
              "0.0.0.0:7001",
          });
}

TEST_CASE("config: load: two acceptors with default ports clash at the second table") {
    auto errors = errors_of(std::string{"[acceptors.one]\n[acceptors.two]\n"} + one_user);
    CHECK(errors
          == std::vector<std::string>{
              "cfg.toml:2:1: acceptors.two.port: acceptor 'one' already listens on "
              "127.0.0.1:61613",
          });
}

TEST_CASE("config: load: an empty acceptors table is rejected") {
    auto errors = errors_of(std::string{"acceptors = {}\n"} + one_user);
    CHECK(errors
          == std::vector<std::string>{
              "cfg.toml:1:13: acceptors: no acceptor is defined, so no client could "
              "connect",
          });
}

TEST_CASE("config: load: allow-anonymous without an anonymous user is rejected") {
    auto errors = errors_of("[security]\nallow-anonymous = true\nanonymous-user = \"\"\n");
    CHECK(errors
          == std::vector<std::string>{
              "cfg.toml:3:18: security.anonymous-user: must not be empty when "
              "allow-anonymous is true",
          });
}

TEST_CASE("config: load: security without users or anonymous access is rejected") {
    auto errors = errors_of("security-enabled = true\n[security]\nallow-anonymous = false\n");
    CHECK(errors
          == std::vector<std::string>{
              "cfg.toml:1:20: security-enabled: security is enabled but no users are "
              "defined and allow-anonymous is false: no client could connect",
          });
    CHECK(errors_of("security-enabled = false\n").empty());
    CHECK(errors_of("[security]\nallow-anonymous = true\n").empty());
}

TEST_CASE("config: load: a user without a password is rejected") {
    auto errors = errors_of("[security.users.bob]\nroles = [\"amq\"]\n");
    CHECK(errors
          == std::vector<std::string>{"cfg.toml:1:17: security.users.bob: missing key 'password'"});
}

TEST_CASE("config: load: a TOML syntax error reports its line and column") {
    auto result = load_string("name = \"a\"\nport = = 2\n", "bad.toml");
    CHECK_FALSE(result.config.has_value());
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].file == "bad.toml");
    CHECK(result.errors[0].line == 2);
    CHECK(result.errors[0].column > 0);
    CHECK(result.errors[0].key.empty());
    CHECK_FALSE(result.errors[0].reason.empty());
}

TEST_CASE("config: load: a missing file is an error naming the file") {
    auto result = load_file("/nonexistent/actormq.toml");
    CHECK_FALSE(result.config.has_value());
    CHECK(messages(result)
          == std::vector<std::string>{
              "/nonexistent/actormq.toml:0:0: cannot open the file: No such file or directory"});
}

// -- overrides ------------------------------------------------------------------------------------

TEST_CASE("config: set: overrides integers, booleans and strings") {
    auto config = load_ok("[acceptors.stomp]\nport = 61613\n",
                          {"acceptors.stomp.port=0", "security.allow-anonymous=true",
                           "acceptors.stomp.host=\"0.0.0.0\"", "name = spaced out "});
    CHECK(config.acceptors[0].port == 0);
    CHECK(config.security.allow_anonymous);
    CHECK(config.acceptors[0].host == "0.0.0.0");
    CHECK(config.name == "spaced out");
}

TEST_CASE("config: set: a value that is not TOML is taken as a bare string") {
    auto config = load_ok(
        "", {"ports-file=/tmp/p.json", "acceptors.stomp.host=127.0.0.2", "log-level=debug"});
    CHECK(config.ports_file == "/tmp/p.json");
    CHECK(config.acceptors[0].host == "127.0.0.2");
    CHECK(config.log_level == "debug");
}

TEST_CASE("config: set: an array value replaces the file's") {
    auto result = load_string("[security.users.guest]\npassword = \"g\"\nroles = [\"x\"]\n",
                              "cfg.toml", {"security.users.guest.roles=[\"a\", \"b\"]"});
    REQUIRE(result.errors.empty());
    CHECK(result.config->security.users[0].roles == std::vector<std::string>{"a", "b"});
}

TEST_CASE("config: set: quoted and plain segments reach the same address settings") {
    auto config = load_ok("[address-settings.\"#\"]\nmax-size-bytes = 100\n",
                          {"address-settings.\"#\".max-size-bytes=5",
                           "address-settings.#.address-full-policy=FAIL",
                           "address-settings.\"orders.#\".address-full-policy=drop"});
    REQUIRE(config.address_settings_list.size() == 2);
    CHECK(config.address_settings_list[0].match == "#");
    CHECK(config.address_settings_list[0].max_size_bytes == 5);
    CHECK(config.address_settings_list[0].full_policy == address_full_policy::fail);
    CHECK(config.address_settings_list[1].match == "orders.#");
    CHECK(config.address_settings_list[1].full_policy == address_full_policy::drop);
}

TEST_CASE("config: set: a new acceptor table is created after the file's acceptors") {
    auto config = load_ok("[acceptors.main]\n", {"acceptors.extra.port=0"});
    REQUIRE(config.acceptors.size() == 2);
    CHECK(config.acceptors[0].name == "main");
    CHECK(config.acceptors[1].name == "extra");
    CHECK(config.acceptors[1].port == 0);
    CHECK(config.acceptors[1].host == "127.0.0.1");
}

TEST_CASE("config: set: a bad value names the override's position and the full key") {
    auto errors = errors_of(one_user, {"name=x", "acceptors.stomp.port=99999", "colour=red"});
    CHECK(errors
          == std::vector<std::string>{
              "--set:2:22: acceptors.stomp.port: must be between 0 and 65535, found "
              "99999",
              "--set:3:1: colour: unknown key",
          });
}

TEST_CASE("config: set: a malformed override is an error from --set") {
    auto errors = errors_of(one_user, {"acceptors.stomp.port", "a..b=1", "\"open.x=1",
                                       "security.users.guest.password.x=1", "=5"});
    CHECK(errors
          == std::vector<std::string>{
              "--set:1:1: acceptors.stomp.port: expected KEY=VALUE, e.g. "
              "acceptors.stomp.port=61613",
              "--set:2:3: a..b: a key segment is empty",
              "--set:3:10: \"open.x: the quoted key segment has no closing quote",
              "--set:4:22: security.users.guest.password: is not a table, so 'x' "
              "cannot be set in it",
              "--set:5:1: a key segment is empty",
          });
}

TEST_CASE("config: set: overrides are checked even when the file does not parse") {
    auto result = load_string("x = = 1\n", "cfg.toml", {"oops"});
    REQUIRE(result.errors.size() == 2);
    CHECK(result.errors[0].file == "cfg.toml");
    CHECK(result.errors[0].line == 1);
    CHECK(result.errors[1].to_string()
          == "--set:1:1: oops: expected KEY=VALUE, e.g. acceptors.stomp.port=61613");
}

// -- address matching -----------------------------------------------------------------------------

TEST_CASE("config: wildcard_match: '#' matches zero or more words, '*' exactly one") {
    CHECK(wildcard_match("#", "a"));
    CHECK(wildcard_match("#", "a.b.c"));
    CHECK(wildcard_match("a.#", "a"));
    CHECK(wildcard_match("a.#", "a.b"));
    CHECK(wildcard_match("a.#", "a.b.c"));
    CHECK_FALSE(wildcard_match("a.#", "b"));
    CHECK_FALSE(wildcard_match("a.#", "ab"));
    CHECK(wildcard_match("a.*", "a.b"));
    CHECK_FALSE(wildcard_match("a.*", "a"));
    CHECK_FALSE(wildcard_match("a.*", "a.b.c"));
    CHECK(wildcard_match("*.b.#", "a.b"));
    CHECK(wildcard_match("a.#.z", "a.z"));
    CHECK(wildcard_match("a.#.z", "a.b.c.z"));
    CHECK_FALSE(wildcard_match("a.#.z", "a.b.c"));
    CHECK(wildcard_match("orders", "orders"));
    CHECK_FALSE(wildcard_match("orders", "orders.eu"));
    CHECK(wildcard_match("#.#.#", "x"));
}

TEST_CASE("config: settings_for: the most specific match wins") {
    node_config config;
    auto add = [&config](const std::string& match, int64_t size) {
        address_settings settings;
        settings.match = match;
        settings.max_size_bytes = size;
        config.address_settings_list.push_back(settings);
    };
    add("#", 1);
    add("orders.#", 2);
    add("orders.*", 3);
    add("orders.eu", 4);
    add("*.eu", 5);
    add("orders.eu.#", 6);
    CHECK(config.settings_for("news").max_size_bytes == 1);
    CHECK(config.settings_for("orders").max_size_bytes == 2);      // only "#" and "orders.#"
    CHECK(config.settings_for("orders.us").max_size_bytes == 3);   // '*' beats '#' at equal length
    CHECK(config.settings_for("orders.eu").max_size_bytes == 4);   // exact beats any wildcard
    CHECK(config.settings_for("orders.eu.x").max_size_bytes == 6); // fewer wildcards, longer
    CHECK(config.settings_for("news.eu").max_size_bytes == 5);
}

TEST_CASE("config: settings_for: a longer pattern wins among equally many wildcards") {
    node_config config;
    address_settings short_one;
    short_one.match = "a.#";
    short_one.max_size_bytes = 1;
    address_settings long_one;
    long_one.match = "a.b.#";
    long_one.max_size_bytes = 2;
    config.address_settings_list = {short_one, long_one};
    CHECK(config.settings_for("a.b.c").max_size_bytes == 2);
    CHECK(config.settings_for("a.c").max_size_bytes == 1);
}

TEST_CASE("config: settings_for: no match gives the defaults under '#'") {
    node_config config;
    address_settings orders;
    orders.match = "orders.#";
    orders.max_size_bytes = 7;
    orders.full_policy = address_full_policy::fail;
    config.address_settings_list.push_back(orders);
    auto settings = config.settings_for("news");
    CHECK(settings.match == "#");
    CHECK(settings.max_size_bytes == address_settings{}.max_size_bytes);
    // Paging is the default (issue 14): one slow consumer cannot fill the memory.
    CHECK(settings.full_policy == address_full_policy::page);
}

TEST_CASE("config: acceptors: a native acceptor reads its keys; a bad one names file:line:key") {
    auto cfg = load_ok("[acceptors.n]\nprotocol = \"native\"\nport = 0\nmax-packet-bytes = 4096\n"
                       "connection-ttl = 5000\nconnection-ttl-override = 9000\n"
                       "max-sessions-per-connection = 3\nmax-producers-per-session = 4\n"
                       "max-consumers-per-session = 5\nmax-confirmation-window-bytes = 6\n");
    REQUIRE(cfg.acceptors.size() == 1);
    const auto& a = cfg.acceptors[0];
    CHECK(a.protocol == "native");
    CHECK(a.max_packet_bytes == 4096);
    CHECK(a.connection_ttl == 5000);
    CHECK(a.connection_ttl_override == 9000);
    CHECK(a.max_sessions_per_connection == 3);
    CHECK(a.max_producers_per_session == 4);
    CHECK(a.max_consumers_per_session == 5);
    CHECK(a.max_confirmation_window_bytes == 6);
    CHECK(errors_of("[acceptors.n]\nprotocol = \"native\"\nconnection-ttl-override = 0\n"
                    "max-packet-bytes = 100\n"
                    + std::string{one_user})
          == std::vector<std::string>{
              "cfg.toml:3:27: acceptors.n.connection-ttl-override: must be -1 (the client's TTL) "
              "or at least 1, found 0",
              "cfg.toml:4:20: acceptors.n.max-packet-bytes: must be at least 1024, found 100"});
}
