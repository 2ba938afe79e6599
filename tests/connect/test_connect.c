/* Unit tests for src/connect: tables of inputs and expected outputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connect/connect.h"

/* ---- classification ---------------------------------------------------------------- */

static void test_classify(void **state)
{
    (void)state;
    static const struct {
        const char *method, *ct;
        bool cpv;
        const char *query;
        gw_connect_kind kind;
        bool json;
        const char *reply;
    } table[] = {
        {"POST", "application/proto", false, NULL, GW_CONNECT_UNARY, false, "application/proto"},
        {"POST", "application/proto", true, NULL, GW_CONNECT_UNARY, false, "application/proto"},
        {"POST", "Application/Proto; charset=x", false, NULL, GW_CONNECT_UNARY, false,
         "application/proto"},
        {"POST", "application/json", true, NULL, GW_CONNECT_UNARY, true, "application/json"},
        {"POST", "application/json; charset=utf-8", true, NULL, GW_CONNECT_UNARY, true,
         "application/json"},
        /* A JSON POST without the header stays REST (docs/rest.md). */
        {"POST", "application/json", false, NULL, GW_CONNECT_NONE, false, NULL},
        {"POST", "application/connect+proto", false, NULL, GW_CONNECT_STREAM, false,
         "application/connect+proto"},
        {"POST", "application/connect+json", true, NULL, GW_CONNECT_STREAM, true,
         "application/connect+json"},
        {"POST", "APPLICATION/CONNECT+JSON;x=1", false, NULL, GW_CONNECT_STREAM, true,
         "application/connect+json"},
        {"POST", "application/connect+thrift", false, NULL, GW_CONNECT_BAD_CODEC, false, NULL},
        {"POST", "application/connect+", false, NULL, GW_CONNECT_NONE, false, NULL},
        {"POST", "application/grpc-web+proto", true, NULL, GW_CONNECT_NONE, false, NULL},
        {"POST", "application/protobuf", true, NULL, GW_CONNECT_NONE, false, NULL},
        {"POST", "text/plain", true, NULL, GW_CONNECT_NONE, false, NULL},
        {"POST", NULL, true, NULL, GW_CONNECT_NONE, false, NULL},
        {"PUT", "application/proto", true, NULL, GW_CONNECT_NONE, false, NULL},
        {"GET", NULL, false, "connect=v1&encoding=json&message=%7B%7D", GW_CONNECT_GET, false,
         NULL},
        {"GET", NULL, false, "encoding=json&message=x&connect=v1", GW_CONNECT_GET, false, NULL},
        {"GET", NULL, false, "encoding=json&message=%7B%7D", GW_CONNECT_NONE, false, NULL},
        /* Any connect= makes it Connect's: a version other than v1 is then
         * refused as invalid_argument (connect-go), not handed to REST. */
        {"GET", NULL, false, "connect=v2", GW_CONNECT_GET, false, NULL},
        {"GET", NULL, false, "a=1&connect=", GW_CONNECT_GET, false, NULL},
        {"GET", NULL, false, "connect", GW_CONNECT_NONE, false, NULL},
        {"GET", NULL, false, "connectx=v1", GW_CONNECT_NONE, false, NULL},
        {"GET", NULL, false, "xconnect=v1", GW_CONNECT_NONE, false, NULL},
        {"GET", NULL, false, NULL, GW_CONNECT_NONE, false, NULL},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        const char *q = table[i].query;
        gw_connect_format f = gw_connect_classify(table[i].method, table[i].ct, table[i].cpv, q,
                                                  q ? strlen(q) : 0);
        if (f.kind != table[i].kind || f.json != table[i].json)
            fail_msg("row %zu (%s %s): kind %d json %d", i, table[i].method,
                     table[i].ct ? table[i].ct : "-", f.kind, f.json);
        if (table[i].reply)
            assert_string_equal(gw_connect_content_type(f), table[i].reply);
    }
}

static void test_codes(void **state)
{
    (void)state;
    static const int want[] = {200, 499, 500, 400, 504, 404, 409, 403, 429,
                               400, 409, 400, 501, 500, 503, 500, 401};
    for (int c = 1; c <= 16; c++)
        assert_int_equal(gw_connect_code_to_http(c), want[c]);
    assert_int_equal(gw_connect_code_to_http(17), 500);
    assert_int_equal(gw_connect_code_to_http(-1), 500);
}

static void test_timeout(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        uint64_t ms;
    } table[] = {
        {"0", 0, 0},           {"1", 0, 1},           {"5000", 0, 5000},
        {"9999999999", 0, 9999999999ull},            {"10000000000", GW_EPARSE, 0},
        {"", GW_EPARSE, 0},    {"-1", GW_EPARSE, 0},  {"1.5", GW_EPARSE, 0},
        {" 1", GW_EPARSE, 0},  {"1s", GW_EPARSE, 0},  {"abc", GW_EPARSE, 0},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        uint64_t ms = 77;
        int rc = gw_connect_timeout_parse(table[i].s, strlen(table[i].s), &ms);
        if (rc != table[i].rc)
            fail_msg("'%s': rc %d", table[i].s, rc);
        if (rc == 0)
            assert_int_equal(ms, table[i].ms);
    }
}

static void test_encodings(void **state)
{
    (void)state;
    gw_connect_encoding enc;
    assert_int_equal(gw_connect_encoding_parse(NULL, 0, &enc), 0);
    assert_int_equal(enc, GW_CONNECT_IDENTITY);
    assert_int_equal(gw_connect_encoding_parse("identity", 8, &enc), 0);
    assert_int_equal(enc, GW_CONNECT_IDENTITY);
    assert_int_equal(gw_connect_encoding_parse("GZIP", 4, &enc), 0);
    assert_int_equal(enc, GW_CONNECT_GZIP);
    assert_int_equal(gw_connect_encoding_parse("br", 2, &enc), GW_ENOTFOUND);
    assert_int_equal(gw_connect_encoding_parse("zstd", 4, &enc), GW_ENOTFOUND);
    static const struct {
        const char *v;
        bool gzip;
    } table[] = {
        {"gzip", true},           {"gzip, br", true},     {"br,gzip", true},
        {"br, zstd", false},      {"", false},            {"identity", false},
        {"gzip;q=0", false},      {"gzip; q=0.000", false}, {"gzip;q=0.5", true},
        {"x-gzip", false},        {" gzip ", true},       {"deflate, gzip;q=1.0", true},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++)
        if (gw_connect_accepts_gzip(table[i].v) != table[i].gzip)
            fail_msg("'%s'", table[i].v);
    assert_false(gw_connect_accepts_gzip(NULL));
}

static void test_gzip_roundtrip_and_limit(void **state)
{
    (void)state;
    uint8_t plain[5000];
    for (size_t i = 0; i < sizeof plain; i++)
        plain[i] = (uint8_t)("connect"[i % 7]);
    gw_buf z, back;
    gw_buf_init(&z, 0);
    gw_buf_init(&back, 0);
    assert_int_equal(gw_connect_gzip(plain, sizeof plain, &z), 0);
    assert_true(z.len < sizeof plain);
    gw_error e;
    gw_error_clear(&e);
    assert_int_equal(gw_connect_gunzip(z.data, z.len, sizeof plain, &back, &e), 0);
    assert_int_equal(back.len, sizeof plain);
    assert_memory_equal(back.data, plain, sizeof plain);
    /* One byte under the size: refused, and the output never grew past it. */
    back.len = 0;
    assert_int_equal(gw_connect_gunzip(z.data, z.len, sizeof plain - 1, &back, &e), GW_ELIMIT);
    assert_true(back.len <= sizeof plain - 1);
    assert_non_null(strstr(e.msg, "limit"));
    /* Truncated, corrupt, trailing garbage, empty. */
    back.len = 0;
    assert_int_equal(gw_connect_gunzip(z.data, z.len - 4, sizeof plain, &back, &e), GW_EPARSE);
    back.len = 0;
    uint8_t bad[64];
    memcpy(bad, z.data, GW_MIN(z.len, sizeof bad));
    bad[12] ^= 0xff;
    bad[13] ^= 0xff;
    (void)gw_connect_gunzip(bad, GW_MIN(z.len, sizeof bad), sizeof plain, &back, &e);
    back.len = 0;
    assert_int_equal(gw_buf_append(&z, "xx", 2), 0);
    assert_int_equal(gw_connect_gunzip(z.data, z.len, sizeof plain, &back, &e), GW_EPARSE);
    back.len = 0;
    assert_int_equal(gw_connect_gunzip(z.data, 0, sizeof plain, &back, &e), GW_EPARSE);
    /* A bomb: 4 MiB of zeros in a few KiB, refused at a 1 MiB limit. */
    uint8_t *zeros = calloc(4u << 20, 1);
    assert_non_null(zeros);
    gw_buf bomb;
    gw_buf_init(&bomb, 0);
    assert_int_equal(gw_connect_gzip(zeros, 4u << 20, &bomb), 0);
    assert_true(bomb.len < 16384);
    back.len = 0;
    assert_int_equal(gw_connect_gunzip(bomb.data, bomb.len, 1u << 20, &back, &e), GW_ELIMIT);
    assert_true(back.len <= 1u << 20);
    free(zeros);
    gw_buf_free(&bomb);
    gw_buf_free(&z);
    gw_buf_free(&back);
}

/* ---- envelopes --------------------------------------------------------------------- */

static void test_scanner(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *body;
        size_t len;
        bool compressed_ok;
        int feed_rc, finish_rc;
        uint64_t envelopes;
    } table[] = {
        {"empty body", "", 0, false, 0, 0, 0},
        {"one empty envelope", "\0\0\0\0\0", 5, false, 0, 0, 1},
        {"two envelopes", "\0\0\0\0\2ab\0\0\0\0\1c", 13, false, 0, 0, 2},
        {"compressed allowed", "\1\0\0\0\1x", 6, true, 0, 0, 1},
        {"compressed refused", "\1\0\0\0\1x", 6, false, GW_EPARSE, 0, 0},
        {"end-stream flag in a request", "\2\0\0\0\2{}", 7, false, GW_EPARSE, 0, 0},
        {"unknown flag", "\x80\0\0\0\0", 5, false, GW_EPARSE, 0, 0},
        {"length over the limit", "\0\0\0\4\1", 5, false, GW_ELIMIT, 0, 0},
        {"huge length", "\0\xff\xff\xff\xff", 5, false, GW_ELIMIT, 0, 0},
        {"truncated header", "\0\0\0", 3, false, 0, GW_EPARSE, 0},
        {"truncated payload", "\0\0\0\0\5abc", 8, false, 0, GW_EPARSE, 0},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        for (size_t step = 1; step <= 8; step += 7) {
            gw_connect_scanner s;
            gw_connect_scanner_init(&s, 1024, table[i].compressed_ok);
            gw_error e;
            gw_error_clear(&e);
            int rc = 0;
            for (size_t off = 0; off < table[i].len && rc == 0; off += step)
                rc = gw_connect_scanner_feed(&s, (const uint8_t *)table[i].body + off,
                                             GW_MIN(step, table[i].len - off), &e);
            if (rc != table[i].feed_rc)
                fail_msg("%s (step %zu): feed rc %d", table[i].name, step, rc);
            if (rc)
                continue;
            rc = gw_connect_scanner_finish(&s, &e);
            if (rc != table[i].finish_rc)
                fail_msg("%s: finish rc %d", table[i].name, rc);
            if (rc == 0)
                assert_int_equal(s.envelopes, table[i].envelopes);
        }
    }
}

static void test_envelope_next(void **state)
{
    (void)state;
    uint8_t buf[16];
    gw_connect_envelope_header(buf, 2, 3);
    memcpy(buf + 5, "abc", 3);
    uint8_t flags;
    const uint8_t *p;
    size_t len;
    assert_int_equal(gw_connect_envelope_next(buf, 7, &flags, &p, &len), 0);
    assert_int_equal(gw_connect_envelope_next(buf, 8, &flags, &p, &len), 8);
    assert_int_equal(flags, 2);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "abc", 3);
}

/* ---- errors and end of stream ----------------------------------------------------- */

/* A google.rpc.Status with one Any detail (type URL, value bytes). */
static size_t status_with_detail(uint8_t *out, const char *url, const uint8_t *v, size_t vl)
{
    gw_buf any, st;
    gw_buf_init(&any, 0);
    gw_buf_init(&st, 0);
    gw_wire_put_len_field(&any, 1, url, strlen(url));
    gw_wire_put_len_field(&any, 2, v, vl);
    gw_wire_put_tag(&st, 1, GW_WIRE_VARINT);
    gw_wire_put_varint(&st, 3);
    gw_wire_put_len_field(&st, 3, any.data, any.len);
    size_t n = st.len;
    memcpy(out, st.data, n);
    gw_buf_free(&any);
    gw_buf_free(&st);
    return n;
}

static void test_error_json(void **state)
{
    (void)state;
    gw_buf b;
    gw_buf_init(&b, 0);
    assert_int_equal(gw_connect_error_json(&b, NULL, 5, "user 9 \"x\" not found", NULL, 0), 0);
    assert_string_equal((char *)b.data,
                        "{\"code\":\"not_found\",\"message\":\"user 9 \\\"x\\\" not found\"}");
    b.len = 0;
    assert_int_equal(gw_connect_error_json(&b, NULL, 1, "", NULL, 0), 0);
    assert_string_equal((char *)b.data, "{\"code\":\"canceled\"}");
    b.len = 0;
    assert_int_equal(gw_connect_error_json(&b, NULL, 99, NULL, NULL, 0), 0);
    assert_string_equal((char *)b.data, "{\"code\":\"unknown\"}");
    /* Details: type after the last '/', unpadded base64 value; no registry,
     * no debug. */
    uint8_t st[256];
    const uint8_t v[] = {0x0a, 0x02, 0x08, 0x3c};
    size_t n = status_with_detail(st, "type.googleapis.com/google.rpc.RetryInfo", v, sizeof v);
    b.len = 0;
    assert_int_equal(gw_connect_error_json(&b, NULL, 14, "overloaded", st, n), 0);
    assert_string_equal((char *)b.data,
                        "{\"code\":\"unavailable\",\"message\":\"overloaded\",\"details\":"
                        "[{\"type\":\"google.rpc.RetryInfo\",\"value\":\"CgIIPA\"}]}");
    /* Unreadable details: left out, the rest stays. */
    b.len = 0;
    const uint8_t junk[] = {0x1a, 0x05, 0x01};
    assert_int_equal(gw_connect_error_json(&b, NULL, 13, "x", junk, sizeof junk), 0);
    assert_string_equal((char *)b.data, "{\"code\":\"internal\",\"message\":\"x\"}");
    /* A bounded buffer: ELIMIT and nothing left behind. */
    gw_buf small;
    gw_buf_init(&small, 10);
    assert_int_equal(gw_connect_error_json(&small, NULL, 5, "a long message", NULL, 0),
                     GW_ELIMIT);
    assert_int_equal(small.len, 0);
    gw_buf_free(&small);
    gw_buf_free(&b);
}

static void test_end_stream(void **state)
{
    (void)state;
    gw_buf b;
    gw_buf_init(&b, 0);
    assert_int_equal(gw_connect_end_stream(&b, NULL, 0, NULL, NULL, 0, NULL, 0), 0);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data, "\x02\0\0\0\x02{}", 7);
    b.len = 0;
    const gw_connect_md md[] = {
        {"X-Cost", 6, "237", 3},
        {"grpc-status", 11, "0", 1},      /* reserved: left out */
        {"x-cost", 6, "1", 1},            /* grouped with the first */
        {"x-bad", 5, "line\nbreak", 10},  /* not printable: left out */
        {"x-data-bin", 10, "AAEC", 4},
    };
    assert_int_equal(gw_connect_end_stream(&b, NULL, 14, "down", NULL, 0, md,
                                           GW_ARRAY_LEN(md)),
                     0);
    const char *want = "{\"error\":{\"code\":\"unavailable\",\"message\":\"down\"},\"metadata\":"
                       "{\"x-cost\":[\"237\",\"1\"],\"x-data-bin\":[\"AAEC\"]}}";
    size_t wl = strlen(want);
    assert_int_equal(b.len, 5 + wl);
    assert_int_equal(b.data[0], GW_CONNECT_FLAG_END_STREAM);
    assert_int_equal((size_t)b.data[4] | (size_t)b.data[3] << 8, wl);
    assert_memory_equal(b.data + 5, want, wl);
    gw_buf_free(&b);
}

/* ---- unary GET ------------------------------------------------------------------------ */

static void test_get_query(void **state)
{
    (void)state;
    static const struct {
        const char *q;
        int rc;
        bool json, base64;
        gw_connect_encoding comp;
        const char *msg;
        size_t msg_len;
    } table[] = {
        {"connect=v1&encoding=json&message=%7B%22id%22%3A1%7D", 0, true, false, 0, "{\"id\":1}", 8},
        {"message=%7B%7D&encoding=json", 0, true, false, 0, "{}", 2},
        {"encoding=proto&message=CAE&base64=1&connect=v1", 0, false, true, 0, "\x08\x01", 2},
        {"encoding=proto&message=CAE%3D&base64=1", 0, false, true, 0, "\x08\x01", 2},
        {"encoding=proto&message=_-8&base64=1", 0, false, true, 0, "\xff\xef", 2},
        {"encoding=proto&message=&base64=1", 0, false, true, 0, "", 0},
        {"encoding=json&message=%7B%7D&compression=identity&x=1&y", 0, true, false, 0, "{}", 2},
        {"encoding=json&message=H4sI&base64=1&compression=gzip", 0, true, true, GW_CONNECT_GZIP,
         "\x1f\x8b\x08", 3},
        {"encoding=json&message=a+b", 0, true, false, 0, "a b", 3},
        {"encoding=json&message=%7B&base64=0", 0, true, false, 0, "{", 1},
        {"message=%7B%7D", GW_EPARSE, 0, 0, 0, NULL, 0},
        {"encoding=json", GW_EPARSE, 0, 0, 0, NULL, 0},
        {"encoding=json&message=%ZZ", GW_EPARSE, 0, 0, 0, NULL, 0},
        {"encoding=json&message=%FF", GW_EPARSE, 0, 0, 0, NULL, 0},
        {"encoding=proto&message=*&base64=1", GW_EPARSE, 0, 0, 0, NULL, 0},
        {"encoding=json&encoding=json&message=", GW_EPARSE, 0, 0, 0, NULL, 0},
        {"connect=v2&encoding=json&message=", GW_EPARSE, 0, 0, 0, NULL, 0},
        {"encoding=thrift&message=", GW_EINVAL, 0, 0, 0, NULL, 0},
        {"encoding=json&message=&compression=br", GW_ENOTFOUND, 0, 0, 0, NULL, 0},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        gw_buf m;
        gw_buf_init(&m, 1024);
        gw_connect_get g;
        gw_error e;
        gw_error_clear(&e);
        int rc = gw_connect_get_parse(table[i].q, strlen(table[i].q), &g, &m, &e);
        if (rc != table[i].rc)
            fail_msg("'%s': rc %d (%s)", table[i].q, rc, e.msg);
        if (rc == 0) {
            assert_int_equal(g.json, table[i].json);
            assert_int_equal(g.base64, table[i].base64);
            assert_int_equal(g.compression, table[i].comp);
            assert_int_equal(m.len, table[i].msg_len);
            if (m.len)
                assert_memory_equal(m.data, table[i].msg, m.len);
        } else {
            assert_true(e.msg[0] != 0);
        }
        gw_buf_free(&m);
    }
    /* The message buffer's maximum bounds the decoded message. */
    gw_buf m;
    gw_buf_init(&m, 4);
    gw_connect_get g;
    gw_error e;
    assert_int_equal(gw_connect_get_parse("encoding=json&message=123456", 28, &g, &m, &e),
                     GW_ELIMIT);
    gw_buf_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),     cmocka_unit_test(test_codes),
        cmocka_unit_test(test_timeout),      cmocka_unit_test(test_encodings),
        cmocka_unit_test(test_gzip_roundtrip_and_limit),
        cmocka_unit_test(test_scanner),      cmocka_unit_test(test_envelope_next),
        cmocka_unit_test(test_error_json),   cmocka_unit_test(test_end_stream),
        cmocka_unit_test(test_get_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
