// SPDX-License-Identifier: Apache-2.0
// The client's connection URL (protocol/client/include/actormq/client/options.hpp): Artemis's
// names and defaults, server lists, and errors that name the parameter at fault.
#include "actormq/client/options.hpp"

#include <doctest/doctest.h>

#include <string>

using actormq::client::connection_options;
using actormq::client::url_error;

namespace {

/// The text of the url_error `url` raises ("" if it parses).
std::string error_of(const std::string& url) {
    try {
        connection_options::from_url(url);
    } catch (const url_error& e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST_CASE("a plain URL gets Artemis's defaults") {
    auto o = connection_options::from_url("tcp://localhost:61616");
    REQUIRE(o.servers.size() == 1);
    CHECK(o.servers[0].host == "localhost");
    CHECK(o.servers[0].port == 61616);
    CHECK(o.ha == false);
    CHECK(o.reconnect_attempts == 0);
    CHECK(o.initial_connect_attempts == 1);
    CHECK(o.retry_interval_ms == 2000);
    CHECK(o.retry_interval_multiplier == 1.0);
    CHECK(o.max_retry_interval_ms == 2000);
    CHECK(o.client_failure_check_period_ms == 30000);
    CHECK(o.connection_ttl_ms == 60000);
    CHECK(o.confirmation_window_size == -1);
    CHECK(o.call_timeout_ms == 30000);
    CHECK(o.block_on_durable_send == true);
    CHECK(o.block_on_non_durable_send == false);
    CHECK(o.block_on_acknowledge == false);
    CHECK(o.pre_acknowledge == false);
    CHECK(o.producer_window_size == 64 * 1024);
    CHECK(o.consumer_window_size == 1024 * 1024);
}

TEST_CASE("every parameter is read by its Artemis name") {
    auto o = connection_options::from_url(
        "tcp://10.0.0.1:5445?ha=true&reconnectAttempts=-1&initialConnectAttempts=3"
        "&retryInterval=100&retryIntervalMultiplier=2.5&maxRetryInterval=1000"
        "&clientFailureCheckPeriod=500&connectionTTL=1500&confirmationWindowSize=1048576"
        "&callTimeout=700&blockOnDurableSend=false&blockOnNonDurableSend=true"
        "&blockOnAcknowledge=true&preAcknowledge=true&producerWindowSize=-1&consumerWindowSize=0"
        "&user=alice&password=p%26ss&clientID=app-1");
    CHECK(o.ha);
    CHECK(o.reconnect_attempts == -1);
    CHECK(o.initial_connect_attempts == 3);
    CHECK(o.retry_interval_ms == 100);
    CHECK(o.retry_interval_multiplier == 2.5);
    CHECK(o.max_retry_interval_ms == 1000);
    CHECK(o.client_failure_check_period_ms == 500);
    CHECK(o.connection_ttl_ms == 1500);
    CHECK(o.confirmation_window_size == 1048576);
    CHECK(o.call_timeout_ms == 700);
    CHECK_FALSE(o.block_on_durable_send);
    CHECK(o.block_on_non_durable_send);
    CHECK(o.block_on_acknowledge);
    CHECK(o.pre_acknowledge);
    CHECK(o.producer_window_size == -1);
    CHECK(o.consumer_window_size == 0);
    CHECK(o.user == "alice");
    CHECK(o.password == "p&ss");
    CHECK(o.client_id == "app-1");
}

TEST_CASE("a list of servers in parentheses shares one query") {
    auto o = connection_options::from_url("(tcp://a:1,tcp://b.example:2,tcp://[::1]:3)?ha=true");
    REQUIRE(o.servers.size() == 3);
    CHECK(o.servers[0].to_string() == "a:1");
    CHECK(o.servers[1].to_string() == "b.example:2");
    CHECK(o.servers[2].host == "::1");
    CHECK(o.servers[2].to_string() == "[::1]:3");
    CHECK(o.ha);
    CHECK(connection_options::from_url("(tcp://a:1)").servers.size() == 1);
}

TEST_CASE("retry waits grow by the multiplier up to maxRetryInterval") {
    auto o = connection_options::from_url(
        "tcp://h:1?retryInterval=100&retryIntervalMultiplier=2&maxRetryInterval=500");
    CHECK(o.retry_delay_ms(0) == 0);
    CHECK(o.retry_delay_ms(1) == 100);
    CHECK(o.retry_delay_ms(2) == 200);
    CHECK(o.retry_delay_ms(3) == 400);
    CHECK(o.retry_delay_ms(4) == 500);
    CHECK(o.retry_delay_ms(40) == 500);
}

TEST_CASE("bad URLs are refused with the parameter named") {
    CHECK(error_of("") == "connection URL: empty");
    CHECK(error_of("udp://h:1") == "connection URL: server 'udp://h:1': only tcp:// is supported");
    CHECK(error_of("tcp://h") == "connection URL: server 'tcp://h': no port (expected host:port)");
    CHECK(error_of("tcp://h:0")
          == "connection URL: server 'tcp://h:0': port '0' is not a number in [1, 65535]");
    CHECK(error_of("tcp://h:99999")
          == "connection URL: server 'tcp://h:99999': port '99999' is not a number in [1, 65535]");
    CHECK(error_of("tcp://:5") == "connection URL: server 'tcp://:5': empty host");
    CHECK(error_of("tcp://::1:5")
          == "connection URL: server 'tcp://::1:5': an IPv6 address needs brackets, [addr]:port");
    CHECK(error_of("tcp://h:1?hA=true") == "connection URL: unknown parameter 'hA'");
    CHECK(error_of("tcp://h:1?ha")
          == "connection URL: parameter 'ha' has no value (expected "
             "name=value)");
    CHECK(error_of("tcp://h:1?ha=yes")
          == "connection URL: parameter ha: 'yes' is not true or false");
    CHECK(error_of("tcp://h:1?ha=true&ha=false") == "connection URL: parameter ha given twice");
    CHECK(error_of("tcp://h:1?preAcknowledge=1")
          == "connection URL: parameter preAcknowledge: '1' is not true or false");
    CHECK(error_of("tcp://h:1?preacknowledge=true")
          == "connection URL: unknown parameter 'preacknowledge'");
    CHECK(connection_options::from_url("tcp://h:1?preAcknowledge=false").pre_acknowledge == false);
    CHECK(error_of("tcp://h:1?reconnectAttempts=x")
          == "connection URL: parameter reconnectAttempts: 'x' is not an integer");
    CHECK(error_of("tcp://h:1?reconnectAttempts=-2")
          == "connection URL: parameter reconnectAttempts: '-2' is out of range [-1, 2147483647]");
    CHECK(error_of("tcp://h:1?retryInterval=0")
          == "connection URL: parameter retryInterval: '0' is out of range [1, 1099511627776]");
    CHECK(error_of("tcp://h:1?confirmationWindowSize=0")
          == "connection URL: parameter confirmationWindowSize: '0' must be -1 or at least 1");
    CHECK(error_of("tcp://h:1?retryIntervalMultiplier=0.5")
          == "connection URL: parameter retryIntervalMultiplier: '0.5' must be at least 1.0");
    CHECK(error_of("tcp://h:1?retryIntervalMultiplier=abc")
          == "connection URL: parameter retryIntervalMultiplier: 'abc' is not a number");
    CHECK(error_of("tcp://h:1?callTimeout=")
          == "connection URL: parameter callTimeout: empty "
             "value, expected an integer");
    CHECK(error_of("tcp://h:1?password=%zz")
          == "connection URL: parameter password: bad %-escape at '%zz'");
    CHECK(error_of("tcp://h:1?retryInterval=3000")
          == "connection URL: parameter maxRetryInterval: 2000 is below retryInterval 3000");
    CHECK(error_of("(tcp://a:1,,tcp://b:2)") == "connection URL: empty entry in the server list");
    CHECK(error_of("(tcp://a:1") == "connection URL: no ')' closes the server list");
    CHECK(error_of("(tcp://a:1?ha=true)")
          == "connection URL: server 'tcp://a:1?ha=true': parameters go after the whole list, "
             "e.g. (tcp://a:1,tcp://b:2)?ha=true");
    CHECK(error_of("(tcp://a:1)x") == "connection URL: unexpected 'x' after the server list");
}
