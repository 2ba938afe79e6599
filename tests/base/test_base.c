/* Unit tests for src/base: tables of inputs and expected outputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/base.h"

/* ---- gRPC codes ---------------------------------------------------------- */

static void test_code_to_http(void **state)
{
    static const struct { int code; int http; } table[] = {
        {GW_CODE_OK, 200}, {GW_CODE_CANCELLED, 499}, {GW_CODE_UNKNOWN, 500},
        {GW_CODE_INVALID_ARGUMENT, 400}, {GW_CODE_DEADLINE_EXCEEDED, 504},
        {GW_CODE_NOT_FOUND, 404}, {GW_CODE_ALREADY_EXISTS, 409},
        {GW_CODE_PERMISSION_DENIED, 403}, {GW_CODE_RESOURCE_EXHAUSTED, 429},
        {GW_CODE_FAILED_PRECONDITION, 400}, {GW_CODE_ABORTED, 409},
        {GW_CODE_OUT_OF_RANGE, 400}, {GW_CODE_UNIMPLEMENTED, 501},
        {GW_CODE_INTERNAL, 500}, {GW_CODE_UNAVAILABLE, 503}, {GW_CODE_DATA_LOSS, 500},
        {GW_CODE_UNAUTHENTICATED, 401}, {17, 500}, {-1, 500},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++)
        assert_int_equal(gw_code_to_http(table[i].code), table[i].http);
}

static void test_code_from_http(void **state)
{
    static const struct { int http; int code; } table[] = {
        {400, GW_CODE_INTERNAL}, {401, GW_CODE_UNAUTHENTICATED},
        {403, GW_CODE_PERMISSION_DENIED}, {404, GW_CODE_UNIMPLEMENTED},
        {429, GW_CODE_UNAVAILABLE}, {502, GW_CODE_UNAVAILABLE},
        {503, GW_CODE_UNAVAILABLE}, {504, GW_CODE_UNAVAILABLE},
        {500, GW_CODE_UNKNOWN}, {302, GW_CODE_UNKNOWN}, {200, GW_CODE_UNKNOWN},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++)
        assert_int_equal(gw_code_from_http(table[i].http), table[i].code);
}

static void test_code_names(void **state)
{
    assert_string_equal(gw_code_name(5), "NOT_FOUND");
    assert_string_equal(gw_code_name(99), "UNKNOWN");
    assert_string_equal(gw_code_snake_name(1), "canceled");
    assert_int_equal(gw_code_parse("UNAUTHENTICATED"), 16);
    assert_int_equal(gw_code_parse("14"), 14);
    assert_int_equal(gw_code_parse("17"), -1);
    assert_int_equal(gw_code_parse("nope"), -1);
    assert_int_equal(gw_code_parse(""), -1);
}

/* ---- errors ---------------------------------------------------------------- */

static void test_error_set_prefix(void **state)
{
    gw_error e;
    gw_error_clear(&e);
    assert_int_equal(gw_error_set(&e, GW_EPARSE, "bad %s", "thing"), GW_EPARSE);
    gw_error_prefix(&e, "%s", "file.pb");
    assert_string_equal(e.msg, "file.pb: bad thing");
    assert_int_equal(e.code, GW_EPARSE);
    assert_int_equal(gw_error_set(NULL, GW_ENOMEM, "x"), GW_ENOMEM);
    assert_string_equal(gw_err_str(GW_ELIMIT), "limit exceeded");
}

/* ---- arena ------------------------------------------------------------------ */

static void test_arena(void **state)
{
    gw_arena a;
    gw_arena_init(&a, 64, 0);
    char *s = gw_arena_strdup(&a, "hello");
    assert_string_equal(s, "hello");
    for (int i = 0; i < 1000; i++) {
        uint64_t *p = gw_arena_alloc(&a, sizeof *p * (size_t)(i % 7 + 1));
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        *p = (uint64_t)i;
    }
    char *big = gw_arena_alloc(&a, 1 << 20);
    assert_non_null(big);
    memset(big, 1, 1 << 20);
    assert_string_equal(gw_arena_printf(&a, "%d-%s", 7, "x"), "7-x");
    assert_string_equal(s, "hello");
    gw_arena_free(&a);

    /* A maximum is enforced before allocating. */
    gw_arena_init(&a, 1024, 4096);
    assert_non_null(gw_arena_alloc(&a, 1000));
    assert_null(gw_arena_alloc(&a, 8192));
    gw_arena_free(&a);
}

/* ---- buffers ------------------------------------------------------------------ */

static void test_buf_limits(void **state)
{
    gw_buf b;
    gw_buf_init(&b, 10);
    assert_int_equal(gw_buf_append_str(&b, "12345"), 0);
    assert_int_equal(gw_buf_append_str(&b, "67890"), 0);
    assert_int_equal(gw_buf_append_byte(&b, 'x'), GW_ELIMIT);
    assert_int_equal(gw_buf_printf(&b, "%d", 1), GW_ELIMIT);
    assert_int_equal(b.len, 10);
    assert_string_equal((char *)b.data, "1234567890");
    gw_buf_consume(&b, 4);
    assert_string_equal((char *)b.data, "567890");
    size_t n;
    uint8_t *p = gw_buf_detach(&b, &n);
    assert_int_equal(n, 6);
    assert_null(b.data);
    free(p);
    gw_buf_free(&b);

    gw_buf_init(&b, 0);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(gw_buf_printf(&b, "%04d", i % 10000), 0);
    assert_int_equal(b.len, 40000);
    gw_buf_free(&b);
}

/* ---- base64 ------------------------------------------------------------------ */

static void test_base64_encode(void **state)
{
    static const struct { const char *in; const char *padded; const char *raw; } table[] = {
        {"", "", ""},
        {"f", "Zg==", "Zg"},
        {"fo", "Zm8=", "Zm8"},
        {"foo", "Zm9v", "Zm9v"},
        {"foob", "Zm9vYg==", "Zm9vYg"},
        {"fooba", "Zm9vYmE=", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
        {"\xfb\xff", "+/8=", "+/8"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        gw_buf b;
        gw_buf_init(&b, 0);
        size_t n = strlen(table[i].in);
        assert_int_equal(gw_base64_encode_buf(&b, (const uint8_t *)table[i].in, n, true), 0);
        assert_int_equal(gw_buf_append_byte(&b, '|'), 0);
        assert_int_equal(gw_base64_encode_buf(&b, (const uint8_t *)table[i].in, n, false), 0);
        char want[64];
        snprintf(want, sizeof want, "%s|%s", table[i].padded, table[i].raw);
        assert_string_equal((char *)b.data, want);
        gw_buf_free(&b);
    }
}

/* The pair-table encoder against the definition, every length 0..40 (the
 * 6-byte loop, the 3-byte loop and both tails) and every byte value: the
 * encoding decodes back, and each character is the 6-bit group it stands for. */
static void test_base64_encode_all(void **state)
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t in[256];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 167 + 13);
    for (size_t off = 0; off < 216; off += 7) {
        for (size_t n = 0; n <= 40; n++) {
            char out[64];
            size_t len = gw_base64_encode(in + off, n, out, false);
            assert_int_equal(len, gw_base64_encoded_len(n, false));
            for (size_t k = 0; k < len; k++) {
                size_t bit = k * 6;
                unsigned v = 0;
                for (size_t j = 0; j < 6; j++, bit++) {
                    unsigned b = bit / 8 < n ? (in[off + bit / 8] >> (7 - bit % 8)) & 1u : 0u;
                    v = v << 1 | b;
                }
                assert_int_equal(out[k], alpha[v]);
            }
        }
    }
}

static void test_base64_decode(void **state)
{
    static const struct { const char *in; const char *out; long err_at; } table[] = {
        {"Zm9vYmFy", "foobar", -1},
        {"Zm9vYg==", "foob", -1},
        {"Zm9vYg", "foob", -1},      /* unpadded */
        {"Zm9vYmE=", "fooba", -1},
        {"-_8", "\xfb\xff", -1},     /* URL-safe */
        {"+/8=", "\xfb\xff", -1},
        {"", "", -1},
        {"Zm9v!", NULL, 4},          /* bad character */
        {"Z", NULL, 0},              /* impossible length */
        {"Zg=", NULL, 2},            /* padding that does not complete a group */
        {"+_8=", NULL, 1},           /* mixed alphabets */
        {"-/8", NULL, 1},            /* mixed, URL-safe first */
        {"AZaz09+/", "\x01\x96\xb3\xd3\xdf\xbf", -1}, /* alphabet edges */
        {"Zg==Zg==", NULL, 2},       /* padding in the middle */
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        uint8_t out[64];
        size_t err_at = 999;
        long n = gw_base64_decode(table[i].in, strlen(table[i].in), out, &err_at);
        if (table[i].out) {
            assert_int_equal(n, (long)strlen(table[i].out));
            assert_memory_equal(out, table[i].out, (size_t)n);
        } else {
            assert_int_equal(n, -1);
            assert_int_equal(err_at, (size_t)table[i].err_at);
        }
    }
    /* The standard alphabet value of every byte: its index, or -1. */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int c = 0; c < 256; c++) {
        const char *at = c ? strchr(alphabet, c) : NULL;
        int want = at ? (int)(at - alphabet) : -1;
        if (gw_base64_std_value((unsigned char)c) != want)
            fail_msg("byte 0x%02x: %d, want %d", c, gw_base64_std_value((unsigned char)c), want);
    }
}

/* ---- percent coding --------------------------------------------------------------- */

static void test_grpc_message(void **state)
{
    static const struct { const char *plain; const char *encoded; } table[] = {
        {"hello world", "hello world"},
        {"100%", "100%25"},
        {"caf\xc3\xa9", "caf%C3%A9"},
        {"line\nbreak", "line%0Abreak"},
        {"tab\t~", "tab%09~"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        gw_buf b;
        gw_buf_init(&b, 0);
        assert_int_equal(gw_grpc_message_encode(&b, table[i].plain, strlen(table[i].plain)), 0);
        assert_string_equal((char *)b.data, table[i].encoded);
        gw_buf_reset(&b);
        assert_int_equal(gw_grpc_message_decode(&b, table[i].encoded, strlen(table[i].encoded)), 0);
        assert_string_equal((char *)b.data, table[i].plain);
        gw_buf_free(&b);
    }
    /* Decoding never fails: broken escapes stay literal. */
    static const struct { const char *in; const char *out; } lenient[] = {
        {"%", "%"}, {"%4", "%4"}, {"%zz1", "%zz1"}, {"a%41", "aA"}, {"%e9", "\xe9"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(lenient); i++) {
        gw_buf b;
        gw_buf_init(&b, 0);
        assert_int_equal(gw_grpc_message_decode(&b, lenient[i].in, strlen(lenient[i].in)), 0);
        assert_string_equal((char *)b.data, lenient[i].out);
        gw_buf_free(&b);
    }
}

static void test_url_decode(void **state)
{
    static const struct {
        const char *in; bool keep_slash; bool plus; int rc; const char *out;
    } table[] = {
        {"a%20b", false, false, 0, "a b"},
        {"a+b", false, false, 0, "a+b"},
        {"a+b", false, true, 0, "a b"},
        {"a%2Fb", false, false, 0, "a/b"},
        {"a%2Fb", true, false, 0, "a%2Fb"},
        {"a%2fb", true, false, 0, "a%2fb"},
        {"%41%42", true, false, 0, "AB"},
        {"%", false, false, GW_EPARSE, NULL},
        {"%4", false, false, GW_EPARSE, NULL},
        {"%G1", false, false, GW_EPARSE, NULL},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        gw_buf b;
        gw_buf_init(&b, 0);
        int rc = gw_url_decode(&b, table[i].in, strlen(table[i].in), table[i].keep_slash,
                               table[i].plus);
        assert_int_equal(rc, table[i].rc);
        if (rc == 0)
            assert_string_equal((char *)b.data, table[i].out);
        gw_buf_free(&b);
    }
}

/* ---- strings ------------------------------------------------------------------------- */

static void test_utf8(void **state)
{
    static const struct { const char *s; size_t n; bool ok; } table[] = {
        {"plain", 5, true},
        {"caf\xc3\xa9", 5, true},
        {"\xe2\x82\xac", 3, true},          /* U+20AC */
        {"\xf0\x9f\x98\x80", 4, true},      /* U+1F600 */
        {"\xc3", 1, false},                 /* truncated */
        {"\xc0\xaf", 2, false},             /* overlong */
        {"\xed\xa0\x80", 3, false},         /* surrogate */
        {"\xf4\x90\x80\x80", 4, false},     /* > U+10FFFF */
        {"\xff", 1, false},
        {"a\0b", 3, true},                  /* NUL is valid UTF-8 */
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++)
        assert_int_equal(gw_utf8_valid((const uint8_t *)table[i].s, table[i].n), table[i].ok);
}

static void test_case_eq(void **state)
{
    assert_true(gw_strn_case_eq("Content-Type", 12, "content-type"));
    assert_false(gw_strn_case_eq("Content-Typ", 11, "content-type"));
    assert_false(gw_strn_case_eq("Content-Types", 13, "content-type"));
    assert_true(gw_strn_case_eq("", 0, ""));
    assert_int_not_equal(gw_hash("a", 1), gw_hash("b", 1));
}

/* Which metadata entries every protocol forwards (gw_metadata_*_ok). */
static void test_metadata_rules(void **state)
{
    static const struct {
        const char *key;
        bool ok;
    } keys[] = {
        {"x-request-id", true}, {"X-Request-ID", true}, {"a.b_c-9", true},
        {"trace-bin", true},    {"", false},          {"x request", false},
        {"x:y", false},         {"grpc-timeout", false}, {"GRPC-Status", false},
        {"grpc", true},         {"x-\xc3\xa9", false},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(keys); i++)
        assert_int_equal(gw_metadata_key_ok(keys[i].key, strlen(keys[i].key)), keys[i].ok);
    static const struct {
        const char *value;
        bool ok;
    } values[] = {
        {"", true},          {"plain text ~!", true}, {"AAEC/w==", true},
        {"caf\xc3\xa9", false}, {"tab\there", false},  {"del\x7f", false},
        {"\x80", false},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(values); i++)
        assert_int_equal(gw_metadata_value_ok(values[i].value, strlen(values[i].value)),
                         values[i].ok);
}

static void test_read_file(void **state)
{
    uint8_t *data;
    size_t len;
    gw_error e;
    assert_int_equal(gw_read_file("/nonexistent/file", 100, &data, &len, &e), GW_EIO);
    assert_non_null(strstr(e.msg, "/nonexistent/file"));
    char path[] = "/tmp/gw-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0123456789", 10), 10);
    close(fd);
    assert_int_equal(gw_read_file(path, 10, &data, &len, &e), 0);
    assert_int_equal(len, 10);
    assert_string_equal((char *)data, "0123456789");
    free(data);
    assert_int_equal(gw_read_file(path, 9, &data, &len, &e), GW_ELIMIT);
    assert_null(data);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_code_to_http),
        cmocka_unit_test(test_code_from_http),
        cmocka_unit_test(test_code_names),
        cmocka_unit_test(test_error_set_prefix),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_buf_limits),
        cmocka_unit_test(test_base64_encode),
        cmocka_unit_test(test_base64_encode_all),
        cmocka_unit_test(test_base64_decode),
        cmocka_unit_test(test_grpc_message),
        cmocka_unit_test(test_url_decode),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_case_eq),
        cmocka_unit_test(test_metadata_rules),
        cmocka_unit_test(test_read_file),
    };
    return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
