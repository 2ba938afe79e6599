/* Unit tests for the front's compression rules: what an Accept-Encoding
 * value grants gzip (RFC 9110 12.5.3), which Content-Types are listed, and
 * which type lists the configuration takes. Tables read as the spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "front/front.h"

static void test_accept_encoding(void **state)
{
    static const struct {
        const char *value;
        int q; /* thousandths */
    } table[] = {
        /* absent or empty: identity only */
        {NULL, 0},
        {"", 0},
        {" , ,", 0},
        /* plain names, case and whitespace */
        {"gzip", 1000},
        {"GZip", 1000},
        {"x-gzip", 1000},
        {"  gzip  ", 1000},
        {"deflate, gzip, br", 1000},
        {"deflate,gzip", 1000},
        {"\tgzip\t,br", 1000},
        {"br", 0},
        {"gzipx", 0},
        {"gzi", 0},
        /* q-values */
        {"gzip;q=0", 0},
        {"gzip; q=0.5", 500},
        {"gzip ;Q=0.001", 1},
        {"gzip;q=1", 1000},
        {"gzip;q=1.000", 1000},
        {"gzip;q=0.", 0},
        {"gzip;q=0.000", 0},
        {"br;q=1.0, gzip;q=0.8, *;q=0.1", 800},
        /* identity never counts for gzip */
        {"identity", 0},
        {"identity;q=0", 0},
        {"identity;q=0, *", 1000},
        /* "*" stands for gzip unless gzip is named */
        {"*", 1000},
        {"*;q=0", 0},
        {"*;q=0.3", 300},
        {"*;q=0, gzip", 1000},
        {"gzip;q=0, *", 0},
        {"*, gzip;q=0", 0},
        /* named twice: the lowest q (a refusal is never overridden) */
        {"gzip, gzip;q=0", 0},
        {"gzip;q=0.5, gzip;q=0.7", 500},
        /* malformed elements are ignored, the others still count */
        {"gzip;q=2", 0},
        {"gzip;q=1.5", 0},
        {"gzip;q=1.001", 0},
        {"gzip;q=0.1234", 0},
        {"gzip;q=.5", 0},
        {"gzip;q=", 0},
        {"gzip;q", 0},
        {"gzip;q =0.5", 0},
        {"gzip;q= 0.5", 0},
        {"gzip;level=1", 0},
        {"gzip;q=0.5;q=0.6", 0},
        {"gzip q=0.5", 0},
        {"gzip;q=abc, *;q=0.2", 200},
        {"\"gzip\"", 0},
        {";q=1", 0},
        {"gzip;q=2, deflate", 0},
        {"bogus;;, gzip", 1000},
        {"gzip\x01", 0},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        int got = gw_front_accept_gzip_q(table[i].value);
        if (got != table[i].q)
            fail_msg("Accept-Encoding '%s': q %d, want %d",
                     table[i].value ? table[i].value : "(none)", got, table[i].q);
    }
}

static void test_type_listed(void **state)
{
    static const char defaults[] = "application/json,application/x-ndjson,text/event-stream,"
                                   "text/*,application/javascript";
    static const struct {
        const char *types;
        const char *content_type;
        bool listed;
    } table[] = {
        {defaults, "application/json", true},
        {defaults, "Application/JSON", true},
        {defaults, "application/json; charset=utf-8", true},
        {defaults, "  application/json ;charset=utf-8", true},
        {defaults, "application/x-ndjson", true},
        {defaults, "text/event-stream", true},
        {defaults, "text/plain; charset=utf-8", true},
        {defaults, "text/html", true},
        {defaults, "TEXT/CSV", true},
        {defaults, "application/javascript", true},
        {defaults, "application/grpc-web+proto", false},
        {defaults, "application/grpc-web-text", false},
        {defaults, "application/octet-stream", false},
        {defaults, "image/png", false},
        {defaults, "application/jsonx", false},
        {defaults, "application/jso", false},
        {defaults, "text", false},
        {defaults, "text/", false},
        {defaults, "", false},
        {defaults, "textual/plain", false},
        {"image/*", "image/svg+xml", true},
        {"image/*", "images/svg", false},
        {"*/*", "application/octet-stream", true},
        {" application/json , text/html ", "text/html", true},
        {"", "application/json", false},
        {NULL, "application/json", false},
        {defaults, NULL, false},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        bool got = gw_front_type_listed(table[i].types, table[i].content_type);
        if (got != table[i].listed)
            fail_msg("types '%s', Content-Type '%s': %d, want %d",
                     table[i].types ? table[i].types : "(null)",
                     table[i].content_type ? table[i].content_type : "(null)", got,
                     table[i].listed);
    }
}

static void test_set_types(void **state)
{
    static const struct {
        const char *types[4];
        size_t n;
        int rc;
        const char *want; /* c.types after, or the error message */
    } table[] = {
        {{"application/json"}, 1, 0, "application/json"},
        {{"application/json", "text/*"}, 2, 0, "application/json,text/*"},
        {{"*/*"}, 1, 0, "*/*"},
        {{0}, 0, 0, ""},
        {{"json"}, 1, GW_EINVAL, "types[0]: expected a media type"},
        {{"text/html", "/json"}, 2, GW_EINVAL, "types[1]: expected a media type"},
        {{"text/"}, 1, GW_EINVAL, "types[0]: expected a media type"},
        {{"text/html; charset=utf-8"}, 1, GW_EINVAL, "types[0]: expected a media type"},
        {{"text/html,text/css"}, 1, GW_EINVAL, "types[0]: expected a media type"},
        {{""}, 1, GW_EINVAL, "types[0]: expected a media type"},
        {{"*/json"}, 1, GW_EINVAL, "types[0]: expected a media type"},
        {{"text/x*"}, 1, GW_EINVAL, "types[0]: expected a media type"},
        {{"te*t/html"}, 1, GW_EINVAL, "types[0]: expected a media type"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        gw_front_options o;
        gw_front_options_init(&o);
        char before[GW_FRONT_GZIP_TYPES_MAX];
        memcpy(before, o.compression.types, sizeof before);
        gw_error e;
        gw_error_clear(&e);
        int rc = gw_front_compression_set_types(&o.compression, table[i].types, table[i].n, &e);
        assert_int_equal(rc, table[i].rc);
        if (rc == 0) {
            assert_string_equal(o.compression.types, table[i].want);
        } else {
            if (!strstr(e.msg, table[i].want))
                fail_msg("row %zu: message '%s', want '%s'", i, e.msg, table[i].want);
            assert_memory_equal(o.compression.types, before, sizeof before); /* unchanged */
        }
    }
}

static void test_set_types_limit(void **state)
{
    /* 40 types of 15 bytes: 639 bytes joined, over the 511 the options hold. */
    const char *many[40];
    for (size_t i = 0; i < GW_ARRAY_LEN(many); i++)
        many[i] = "application/abc";
    gw_front_compression c = {0};
    gw_error e;
    gw_error_clear(&e);
    assert_int_equal(gw_front_compression_set_types(&c, many, 32, &e), 0);
    assert_int_equal(strlen(c.types), 32 * 16 - 1);
    assert_int_equal(gw_front_compression_set_types(&c, many, 40, &e), GW_ELIMIT);
    assert_non_null(strstr(e.msg, "types: longer than 511 bytes"));
    assert_int_equal(strlen(c.types), 32 * 16 - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_encoding),
        cmocka_unit_test(test_type_listed),
        cmocka_unit_test(test_set_types),
        cmocka_unit_test(test_set_types_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
