/* Unit tests for the serve configuration file: a table of JSON inputs and
 * the values or the error message they must give. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/server.h"

static void test_errors(void **state)
{
    static const struct {
        const char *json;
        int rc;
        const char *msg;
    } table[] = {
        {"{\"listn\": \"x\"}", GW_EINVAL, "t.json: unknown key 'listn'"},
        {"{\"limits\": {\"max_bodyy\": 1}}", GW_EINVAL, "unknown key 'limits.max_bodyy'"},
        {"{\"cors\": {\"origins\": []}}", GW_EINVAL, "unknown key 'cors.origins'"},
        {"{\"upstream\": {\"pool\": 1}}", GW_EINVAL, "unknown key 'upstream.pool'"},
        {"{\"limits\": {\"max_body_bytes\": -1}}", GW_EINVAL,
         "limits.max_body_bytes: expected an integer"},
        {"{\"limits\": {\"max_body_bytes\": \"1\"}}", GW_EINVAL,
         "limits.max_body_bytes: expected an integer"},
        {"{\"workers\": 5000}", GW_EINVAL, "workers: expected an integer from 0 to 1024"},
        {"{\"cors\": {\"allow_credentials\": 1}}", GW_EINVAL,
         "cors.allow_credentials: expected true or false"},
        {"{\"cors\": {\"allowed_headers\": [\"a\\r\\nb\"]}}", GW_EINVAL,
         "cors.allowed_headers[0]: not a header name"},
        {"{\"cors\": {\"allowed_origins\": [1]}}", GW_EINVAL,
         "cors.allowed_origins[0]: expected a string"},
        {"{\"descriptors\": \"a.pb\"}", GW_EINVAL, "descriptors: expected an array"},
        {"{\"limits\": []}", GW_EINVAL, "limits: expected an object"},
        {"{\"log_level\": \"loud\"}", GW_EINVAL, "log_level: expected debug"},
        {"[1]", GW_EPARSE, "t.json: the configuration must be a JSON object"},
        {"{\"a\": 1, \"a\": 2}", GW_EPARSE, "t.json:1:"},
        {"{", GW_EPARSE, "t.json:1:"},
        {"{\"compression\": {\"enable\": true}}", GW_EINVAL,
         "unknown key 'compression.enable'"},
        {"{\"compression\": true}", GW_EINVAL, "compression: expected an object"},
        {"{\"front\": {\"http_strictness\": 4}}", GW_EINVAL,
         "front.http_strictness: expected an integer from 0 to 3"},
        {"{\"front\": {\"http_strictness\": -1}}", GW_EINVAL,
         "front.http_strictness: expected an integer"},
        {"{\"front\": {\"strictness\": 1}}", GW_EINVAL, "unknown key 'front.strictness'"},
        {"{\"front\": 1}", GW_EINVAL, "front: expected an object"},
        {"{\"compression\": {\"enabled\": 1}}", GW_EINVAL,
         "compression.enabled: expected true or false"},
        {"{\"compression\": {\"level\": 0}}", GW_EINVAL,
         "compression.level: expected an integer from 1 to 9"},
        {"{\"compression\": {\"level\": 10}}", GW_EINVAL,
         "compression.level: expected an integer from 1 to 9"},
        {"{\"compression\": {\"min_bytes\": -5}}", GW_EINVAL,
         "compression.min_bytes: expected an integer"},
        {"{\"compression\": {\"types\": \"text/html\"}}", GW_EINVAL,
         "compression.types: expected an array of at most 64 strings"},
        {"{\"compression\": {\"types\": [\"text/html\", 3]}}", GW_EINVAL,
         "compression.types[1]: expected a string"},
        {"{\"compression\": {\"types\": [\"json\"]}}", GW_EINVAL,
         "compression.types[0]: expected a media type"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        gw_server_config c;
        gw_server_config_init(&c);
        gw_error e;
        gw_error_clear(&e);
        int rc = gw_server_config_parse(&c, table[i].json, strlen(table[i].json), "t.json", &e);
        if (rc != table[i].rc || !strstr(e.msg, table[i].msg))
            fail_msg("%s: rc %d msg '%s', want %d '%s'", table[i].json, rc, e.msg, table[i].rc,
                     table[i].msg);
        gw_server_config_free(&c);
    }
}

static void test_values(void **state)
{
    static const char json[] =
        "{\"listen\": \"127.0.0.1:0\", \"backend\": \"http://127.0.0.1:9\","
        " \"descriptors\": [\"a.pb\", \"b.pb\"], \"workers\": 3, \"log_level\": \"warn\","
        " \"drain_timeout_ms\": 2500, \"forward_cookies\": true,"
        " \"limits\": {\"max_body_bytes\": 1000, \"max_message_bytes\": 500,"
        "   \"max_header_bytes\": 4096, \"max_header_count\": 20, \"max_connections\": 7,"
        "   \"max_connections_per_ip\": 3, \"header_timeout_ms\": 111,"
        "   \"idle_timeout_ms\": 222, \"max_deadline_ms\": 333, \"max_metadata\": 17,"
        "   \"max_output_bytes\": 4321, \"inactivity_timeout_s\": 44,"
        "   \"discard_body_bytes\": 5555, \"body_timeout_ms\": 444,"
        "   \"body_min_rate\": 55},"
        " \"front\": {\"http_strictness\": 2},"
        " \"reflect_timeout_ms\": 2345,"
        /* Each value differs from its default and from every other window
         * value, so a key stored in the wrong field is seen. */
        " \"upstream\": {\"pool_size\": 2, \"stream_window\": 131072,"
        "   \"connection_window\": 3000000, \"attempt_delay_ms\": 120,"
        "   \"max_queued_calls\": 9, \"connect_timeout_ms\": 876},"
        " \"cors\": {\"allowed_origins\": [\"https://a.example\", \"*\"],"
        "   \"allowed_headers\": [\"x-a\", \"x-b\"], \"exposed_headers\": [\"x-c\"],"
        "   \"allow_credentials\": true, \"max_age_s\": 60},"
        " \"compression\": {\"enabled\": false, \"min_bytes\": 10, \"level\": 9,"
        "   \"types\": [\"application/json\", \"image/*\"]}}";
    gw_server_config c;
    gw_server_config_init(&c);
    gw_error e;
    assert_int_equal(gw_server_config_parse(&c, json, strlen(json), "t", &e), 0);
    assert_string_equal(c.listen, "127.0.0.1:0");
    assert_string_equal(c.backend, "http://127.0.0.1:9");
    assert_int_equal(c.descriptor_count, 2);
    assert_string_equal(c.descriptors[1], "b.pb");
    assert_int_equal(c.workers, 3);
    assert_int_equal(c.log_level, GW_LOG_WARN);
    assert_int_equal(c.drain_timeout_ms, 2500);
    assert_true(c.call.forward_cookies);
    assert_int_equal(c.call.max_body, 1000);
    assert_int_equal(c.call.max_message, 500);
    assert_int_equal(c.front.memory_limit, 4096);
    assert_int_equal(c.front.max_header_count, 20);
    assert_int_equal(c.front.connection_limit, 7);
    assert_int_equal(c.front.per_ip_limit, 3);
    assert_int_equal(c.front.header_timeout_ms, 111);
    assert_int_equal(c.front.idle_timeout_ms, 222);
    assert_int_equal(c.front.body_timeout_ms, 444);
    assert_int_equal(c.front.body_min_rate, 55);
    assert_int_equal(c.front.http_strictness, 2);
    assert_int_equal(c.call.max_deadline_ms, 333);
    assert_int_equal(c.upstream.pool_size, 2);
    assert_int_equal(c.upstream.attempt_delay_ms, 120);
    assert_int_equal(c.upstream.stream_window, 131072);
    assert_int_equal(c.upstream.connection_window, 3000000);
    assert_int_equal(c.upstream.max_queued_calls, 9);
    assert_int_equal(c.upstream.connect_timeout_ms, 876);
    assert_int_equal(c.call.max_metadata, 17);
    assert_int_equal(c.call.max_output, 4321);
    assert_int_equal(c.front.inactivity_timeout_s, 44);
    assert_int_equal(c.front.discard_limit, 5555);
    assert_int_equal(c.reflect_timeout_ms, 2345);
    assert_int_equal(c.origin_count, 2);
    assert_string_equal(c.origins[1], "*");
    assert_string_equal(c.cors_allow_headers, "x-a, x-b");
    assert_string_equal(c.cors_expose_headers, "x-c");
    assert_true(c.cors_credentials);
    assert_int_equal(c.cors_max_age_s, 60);
    assert_false(c.front.compression.enabled);
    assert_int_equal(c.front.compression.min_bytes, 10);
    assert_int_equal(c.front.compression.level, 9);
    assert_string_equal(c.front.compression.types, "application/json,image/*");
    gw_server_config_free(&c);
}

static void test_defaults(void **state)
{
    gw_server_config c;
    gw_server_config_init(&c);
    assert_int_equal(c.front.connection_limit, 4096);
    assert_int_equal(c.front.header_timeout_ms, 10000);
    assert_int_equal(c.front.http_strictness, 1);
    assert_int_equal(c.front.body_timeout_ms, 60000);
    assert_int_equal(c.front.body_min_rate, 500);
    assert_int_equal(c.call.max_body, 4u << 20);
    assert_int_equal(c.drain_timeout_ms, 10000);
    assert_int_equal(c.origin_count, 0);
    assert_true(c.front.compression.enabled);
    assert_int_equal(c.front.compression.min_bytes, 1024);
    assert_int_equal(c.front.compression.level, 6);
    /* The documented defaults (docs/configuration.md) the values test differs from. */
    assert_int_equal(c.upstream.stream_window, 256 * 1024);
    assert_int_equal(c.upstream.connection_window, 1024 * 1024);
    assert_int_equal(c.reflect_timeout_ms, 10000);
    assert_string_equal(c.front.compression.types,
                        "application/json,application/x-ndjson,text/event-stream,text/*,"
                        "application/javascript");
    gw_server_config_free(&c);
}

/* Issue 18's keys: parking, trimming, socket limits (defaults, then set). */
static void test_memory_keys(void **state)
{
    gw_server_config c;
    gw_server_config_init(&c);
    gw_error e;
    assert_int_equal(gw_server_config_parse(&c, "{}", 2, "t", &e), 0);
    assert_int_equal(c.front.park_idle_ms, 1000);
    assert_int_equal(c.front.trim_idle_ms, 1000);
    assert_int_equal(c.front.notsent_lowat, 128 * 1024);
    assert_int_equal(c.front.sndbuf, 0);
    assert_int_equal(c.upstream.send_lowat, 128 * 1024);
    assert_int_equal(c.upstream.stream_window, 256 * 1024);
    static const char json[] =
        "{\"limits\": {\"idle_park_ms\": 0, \"idle_trim_ms\": 5, \"send_lowat_bytes\": 7,"
        " \"send_buffer_bytes\": 9}, \"upstream\": {\"send_lowat_bytes\": 11}}";
    assert_int_equal(gw_server_config_parse(&c, json, strlen(json), "t", &e), 0);
    assert_int_equal(c.front.park_idle_ms, 0);
    assert_int_equal(c.front.trim_idle_ms, 5);
    assert_int_equal(c.front.notsent_lowat, 7);
    assert_int_equal(c.front.sndbuf, 9);
    assert_int_equal(c.upstream.send_lowat, 11);
    gw_server_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_memory_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
