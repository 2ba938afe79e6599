/* Unit tests for the pure parts of src/upstream: grpc-timeout formatting and
 * parsing, HTTP/2 error and HTTP status mapping, the reconnect backoff
 * schedule with a fixed random source, and the message deframer (split
 * anywhere, limits, gzip). Each table reads as the specification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "upstream/upstream.h"

/* ---- grpc-timeout ------------------------------------------------------ */

static const struct {
    uint64_t ns;
    const char *text;
} timeout_format_cases[] = {
    {0, "0n"},
    {1, "1n"},
    {999, "999n"},
    {1000, "1u"},
    {1001, "1001n"},
    {100000, "100u"},
    {99999999, "99999999n"},
    {100000000, "100m"},            /* 100 ms: 9 digits in ns, exact in ms */
    {250000000, "250m"},
    {123456789, "123457u"},         /* rounded up, never down */
    {5000000000ull, "5S"},
    {90000000000ull, "90S"},
    {60000000000ull, "1M"},
    {3600000000000ull, "1H"},
    {7200000000001ull, "7200001m"},  /* 2 h + 1 ns: ms, rounded up */
    {UINT64_MAX, "5124096H"},
};

static void test_timeout_format(void **state)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(timeout_format_cases); i++) {
        char out[10];
        gw_grpc_timeout_format(timeout_format_cases[i].ns, out);
        if (strcmp(out, timeout_format_cases[i].text) != 0)
            fail_msg("case %zu: %llu ns formatted as %s, want %s", i,
                     (unsigned long long)timeout_format_cases[i].ns, out,
                     timeout_format_cases[i].text);
        assert_true(strlen(out) <= 9);
    }
}

static const struct {
    const char *text;
    int rc;
    uint64_t ns;
} timeout_parse_cases[] = {
    {"1n", 0, 1},
    {"250m", 0, 250000000},
    {"5S", 0, 5000000000ull},
    {"2M", 0, 120000000000ull},
    {"1H", 0, 3600000000000ull},
    {"100u", 0, 100000},
    {"00000001H", 0, 3600000000000ull},
    {"99999999H", 0, (uint64_t)INT64_MAX},   /* 3.6e20 ns: saturated */
    {"0S", 0, 0},
    {"", GW_EPARSE, 0},
    {"S", GW_EPARSE, 0},            /* no digits */
    {"5", GW_EPARSE, 0},            /* no unit */
    {"5s", GW_EPARSE, 0},           /* units are case-sensitive */
    {"5x", GW_EPARSE, 0},
    {"-5S", GW_EPARSE, 0},
    {"1 S", GW_EPARSE, 0},
    {"123456789S", GW_EPARSE, 0},   /* 9 digits */
};

static void test_timeout_parse(void **state)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(timeout_parse_cases); i++) {
        uint64_t ns = 12345;
        const char *t = timeout_parse_cases[i].text;
        int rc = gw_grpc_timeout_parse(t, strlen(t), &ns);
        if (rc != timeout_parse_cases[i].rc)
            fail_msg("case %zu \"%s\": rc %d, want %d", i, t, rc, timeout_parse_cases[i].rc);
        if (rc == 0 && ns != timeout_parse_cases[i].ns)
            fail_msg("case %zu \"%s\": %llu ns, want %llu", i, t, (unsigned long long)ns,
                     (unsigned long long)timeout_parse_cases[i].ns);
    }
}

static void test_timeout_roundtrip_never_shorter(void **state)
{
    uint64_t samples[] = {1, 7, 999999, 1000001, 123456789, 987654321987ull, 4000000000000000ull};
    for (size_t i = 0; i < GW_ARRAY_LEN(samples); i++) {
        char out[10];
        uint64_t back = 0;
        gw_grpc_timeout_format(samples[i], out);
        assert_int_equal(gw_grpc_timeout_parse(out, strlen(out), &back), 0);
        assert_true(back >= samples[i]);
    }
}

/* ---- status mapping -------------------------------------------------------- */

static const struct {
    uint32_t h2;
    int code;
} h2_cases[] = {
    {0x0, GW_CODE_INTERNAL},            /* NO_ERROR without grpc-status */
    {0x1, GW_CODE_INTERNAL},            /* PROTOCOL_ERROR */
    {0x2, GW_CODE_INTERNAL},            /* INTERNAL_ERROR */
    {0x3, GW_CODE_INTERNAL},            /* FLOW_CONTROL_ERROR */
    {0x7, GW_CODE_UNAVAILABLE},         /* REFUSED_STREAM */
    {0x8, GW_CODE_CANCELLED},           /* CANCEL */
    {0xb, GW_CODE_RESOURCE_EXHAUSTED},  /* ENHANCE_YOUR_CALM */
    {0xc, GW_CODE_PERMISSION_DENIED},   /* INADEQUATE_SECURITY */
    {0xd, GW_CODE_INTERNAL},            /* HTTP_1_1_REQUIRED */
    {0xff, GW_CODE_INTERNAL},
};

static void test_h2_error_mapping(void **state)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(h2_cases); i++)
        assert_int_equal(gw_upstream_code_from_h2(h2_cases[i].h2), h2_cases[i].code);
}

static const struct {
    int http;
    int code;
} http_cases[] = {
    {400, GW_CODE_INTERNAL},       {401, GW_CODE_UNAUTHENTICATED},
    {403, GW_CODE_PERMISSION_DENIED}, {404, GW_CODE_UNIMPLEMENTED},
    {429, GW_CODE_UNAVAILABLE},    {502, GW_CODE_UNAVAILABLE},
    {503, GW_CODE_UNAVAILABLE},    {504, GW_CODE_UNAVAILABLE},
    {500, GW_CODE_UNKNOWN},        {200, GW_CODE_UNKNOWN},
    {302, GW_CODE_UNKNOWN},
};

static void test_http_status_mapping(void **state)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(http_cases); i++)
        assert_int_equal(gw_code_from_http(http_cases[i].http), http_cases[i].code);
}

/* ---- backoff ------------------------------------------------------------------ */

static uint32_t fixed_random(void *ctx) { return *(uint32_t *)ctx; }

/* Delays in ms for random = 0 (factor 0.8), 2^31 (1.0) and 2^32-1 (≈1.2). */
static const uint64_t backoff_expect[][3] = {
    {800, 1000, 1199},
    {1280, 1600, 1919},
    {2048, 2560, 3071},
    {3276, 4095, 4913},
    {5242, 6552, 7862},
    {8387, 10483, 12579},
    {13419, 16773, 20127},
    {21470, 26837, 32204},
    {34352, 42940, 51527},
    {54963, 68703, 82443},
    {87940, 109925, 120000},        /* jitter may not pass the 120 s cap */
    {96000, 120000, 120000},
    {96000, 120000, 120000},
};

static void test_backoff_schedule(void **state)
{
    uint32_t randoms[3] = {0, 0x80000000u, 0xffffffffu};
    for (size_t r = 0; r < 3; r++) {
        gw_backoff b;
        gw_backoff_init(&b, fixed_random, &randoms[r], 0);
        for (size_t i = 0; i < GW_ARRAY_LEN(backoff_expect); i++) {
            uint64_t d = gw_backoff_next(&b);
            if (d != backoff_expect[i][r])
                fail_msg("random %zu, attempt %zu: %llu ms, want %llu", r, i,
                         (unsigned long long)d, (unsigned long long)backoff_expect[i][r]);
        }
        gw_backoff_reset(&b);
        assert_int_equal(gw_backoff_next(&b), backoff_expect[0][r]);
    }
}

static void test_backoff_default_random_within_jitter(void **state)
{
    gw_backoff b;
    gw_backoff_init(&b, NULL, NULL, 12345);
    uint64_t base = 1000;
    for (int i = 0; i < 20; i++) {
        uint64_t d = gw_backoff_next(&b);
        assert_true(d >= base * 4 / 5);
        assert_true(d <= GW_MIN(base * 6 / 5, (uint64_t)GW_BACKOFF_MAX_MS));
        base = GW_MIN(base * 8 / 5, (uint64_t)GW_BACKOFF_MAX_MS);
    }
}

/* ---- deframer --------------------------------------------------------------- */

typedef struct collected {
    char text[4096];    /* messages joined by '|' */
    size_t wire_total;
    int count;
    int stop_after;     /* return nonzero after this many (0: never) */
} collected;

static int collect(void *ctx, const uint8_t *msg, size_t len, size_t wire_len)
{
    collected *c = ctx;
    size_t at = strlen(c->text);
    snprintf(c->text + at, sizeof c->text - at, "%s%.*s", c->count ? "|" : "", (int)len,
             (const char *)msg);
    c->wire_total += wire_len;
    c->count++;
    return c->stop_after && c->count >= c->stop_after ? 7 : 0;
}

static size_t frame(uint8_t *out, uint8_t flag, const void *body, size_t n)
{
    out[0] = flag;
    out[1] = (uint8_t)(n >> 24);
    out[2] = (uint8_t)(n >> 16);
    out[3] = (uint8_t)(n >> 8);
    out[4] = (uint8_t)n;
    memcpy(out + 5, body, n);
    return n + 5;
}

static size_t gzip_bytes(const void *in, size_t n, uint8_t *out, size_t cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t len = cap - zs.avail_out;
    deflateEnd(&zs);
    return len;
}

enum input_kind { PLAIN, GZIP_OK, GZIP_BOMB, GZIP_CORRUPT };

static const struct {
    const char *name;
    enum input_kind kind;
    const uint8_t *raw;        /* PLAIN: the exact bytes */
    size_t raw_len;
    const char *encoding;      /* response grpc-encoding or NULL */
    size_t max;
    int rc;                    /* expected from push */
    const char *messages;      /* joined by '|' */
    bool idle;                 /* no partial message afterwards */
} deframer_cases[] = {
    {"one message", PLAIN, (const uint8_t *)"\0\0\0\0\5hello", 10, NULL, 100, 0, "hello", true},
    {"two messages", PLAIN, (const uint8_t *)"\0\0\0\0\2hi\0\0\0\0\3you", 15, NULL, 100, 0, "hi|you", true},
    {"empty message", PLAIN, (const uint8_t *)"\0\0\0\0\0", 5, NULL, 100, 0, "", true},
    {"truncated body", PLAIN, (const uint8_t *)"\0\0\0\0\5hel", 8, NULL, 100, 0, "", false},
    {"truncated prefix", PLAIN, (const uint8_t *)"\0\0\0", 3, NULL, 100, 0, "", false},
    {"exactly the limit", PLAIN, (const uint8_t *)"\0\0\0\0\4abcd", 9, NULL, 4, 0, "abcd", true},
    {"over the limit", PLAIN, (const uint8_t *)"\0\0\0\0\5abcde", 10, NULL, 4, GW_ELIMIT, "", false},
    {"4 GiB length", PLAIN, (const uint8_t *)"\0\xff\xff\xff\xff", 5, NULL, 1 << 20, GW_ELIMIT, "", false},
    {"bad flag", PLAIN, (const uint8_t *)"\2\0\0\0\1x", 6, NULL, 100, GW_EPARSE, "", false},
    {"trailer flag", PLAIN, (const uint8_t *)"\x80\0\0\0\1x", 6, NULL, 100, GW_EPARSE, "", false},
    {"compressed, no encoding", PLAIN, (const uint8_t *)"\1\0\0\0\1x", 6, NULL, 100, GW_EPARSE, "", false},
    {"compressed, identity", PLAIN, (const uint8_t *)"\1\0\0\0\1x", 6, "identity", 100, GW_EPARSE, "", false},
    {"uncompressed under gzip", PLAIN, (const uint8_t *)"\0\0\0\0\2ok", 7, "gzip", 100, 0, "ok", true},
    {"gzip message", GZIP_OK, NULL, 0, "gzip", 100, 0, "compressed hello", true},
    {"gzip bomb", GZIP_BOMB, NULL, 0, "gzip", 1000, GW_ELIMIT, "", true},
    {"corrupt gzip", GZIP_CORRUPT, NULL, 0, "gzip", 100, GW_EPARSE, "", true},
};

static size_t build_input(size_t i, uint8_t *buf, size_t cap)
{
    uint8_t tmp[4096];
    switch (deframer_cases[i].kind) {
    case PLAIN:
        memcpy(buf, deframer_cases[i].raw, deframer_cases[i].raw_len);
        return deframer_cases[i].raw_len;
    case GZIP_OK: {
        size_t n = gzip_bytes("compressed hello", 16, tmp, sizeof tmp);
        return frame(buf, 1, tmp, n);
    }
    case GZIP_BOMB: {
        static uint8_t zeros[100000];
        size_t n = gzip_bytes(zeros, sizeof zeros, tmp, sizeof tmp);
        return frame(buf, 1, tmp, n);
    }
    case GZIP_CORRUPT: {
        size_t n = gzip_bytes("compressed hello", 16, tmp, sizeof tmp);
        tmp[n / 2] ^= 0x55;
        tmp[n / 2 + 1] ^= 0x55;
        return frame(buf, 1, tmp, n);
    }
    }
    (void)cap;
    return 0;
}

static void test_deframer_table(void **state)
{
    static const size_t splits[] = {1, 2, 3, 5, 7, 4096};
    uint8_t in[8192];
    for (size_t i = 0; i < GW_ARRAY_LEN(deframer_cases); i++) {
        size_t n = build_input(i, in, sizeof in);
        for (size_t s = 0; s < GW_ARRAY_LEN(splits); s++) {
            gw_deframer d;
            gw_error e = {0};
            collected got = {0};
            gw_deframer_init(&d, deframer_cases[i].max);
            const char *enc = deframer_cases[i].encoding;
            assert_int_equal(gw_deframer_set_encoding(&d, enc, enc ? strlen(enc) : 0, &e), 0);
            int rc = 0;
            for (size_t off = 0; off < n && rc == 0; off += splits[s])
                rc = gw_deframer_push(&d, in + off, GW_MIN(splits[s], n - off), collect, &got, &e);
            if (rc != deframer_cases[i].rc)
                fail_msg("%s (chunks of %zu): rc %d (%s), want %d", deframer_cases[i].name,
                         splits[s], rc, e.msg, deframer_cases[i].rc);
            if (strcmp(got.text, deframer_cases[i].messages) != 0)
                fail_msg("%s (chunks of %zu): messages \"%s\", want \"%s\"",
                         deframer_cases[i].name, splits[s], got.text, deframer_cases[i].messages);
            if (rc == 0) {
                assert_int_equal(gw_deframer_idle(&d), deframer_cases[i].idle);
                if (deframer_cases[i].idle)
                    assert_int_equal(got.wire_total, n);
            } else {
                assert_true(strlen(e.msg) > 0);
            }
            gw_deframer_free(&d);
        }
    }
}

static void test_deframer_error_messages(void **state)
{
    gw_deframer d;
    gw_error e = {0};
    collected got = {0};
    gw_deframer_init(&d, 4);
    assert_int_equal(gw_deframer_push(&d, (const uint8_t *)"\0\0\0\0\2ok\0\0\0\0\5abcde", 17,
                                      collect, &got, &e), GW_ELIMIT);
    assert_string_equal(e.msg, "response message 2 is 5 bytes, larger than the limit of 4");
    gw_deframer_free(&d);

    gw_deframer_init(&d, 100);
    assert_int_equal(gw_deframer_set_encoding(&d, "br", 2, &e), GW_EINVAL);
    assert_string_equal(e.msg, "unsupported grpc-encoding \"br\" in response");
    gw_deframer_free(&d);
}

static void test_deframer_callback_stops(void **state)
{
    gw_deframer d;
    gw_error e = {0};
    collected got = {.stop_after = 1};
    gw_deframer_init(&d, 100);
    assert_int_equal(gw_deframer_push(&d, (const uint8_t *)"\0\0\0\0\1a\0\0\0\0\1b", 12,
                                      collect, &got, &e), 7);
    assert_int_equal(got.count, 1);
    gw_deframer_free(&d);
}

static void test_deframer_large_split_message(void **state)
{
    /* 200 KiB in 16 KiB DATA-sized pieces: buffered once, delivered once. */
    size_t n = 200 * 1024;
    uint8_t *in = malloc(n + 5);
    assert_non_null(in);
    in[0] = 0;
    in[1] = (uint8_t)(n >> 24);
    in[2] = (uint8_t)(n >> 16);
    in[3] = (uint8_t)(n >> 8);
    in[4] = (uint8_t)n;
    for (size_t i = 0; i < n; i++)
        in[5 + i] = (uint8_t)('a' + i % 26);
    gw_deframer d;
    gw_error e = {0};
    gw_deframer_init(&d, n);
    collected got = {0};
    for (size_t off = 0; off < n + 5; off += 16384)
        assert_int_equal(gw_deframer_push(&d, in + off, GW_MIN((size_t)16384, n + 5 - off),
                                          collect, &got, &e), 0);
    assert_int_equal(got.count, 1);
    assert_int_equal(got.wire_total, n + 5);
    assert_true(d.body.cap <= n + 1);
    gw_deframer_free(&d);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_format),
        cmocka_unit_test(test_timeout_parse),
        cmocka_unit_test(test_timeout_roundtrip_never_shorter),
        cmocka_unit_test(test_h2_error_mapping),
        cmocka_unit_test(test_http_status_mapping),
        cmocka_unit_test(test_backoff_schedule),
        cmocka_unit_test(test_backoff_default_random_within_jitter),
        cmocka_unit_test(test_deframer_table),
        cmocka_unit_test(test_deframer_error_messages),
        cmocka_unit_test(test_deframer_callback_stops),
        cmocka_unit_test(test_deframer_large_split_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
