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


/* ---- receive flow control (gw_flow) ---------------------------------------------
 *
 * A model peer sends a script of messages through gw_flow and a real
 * deframer: DATA frames of at most 16 KiB and never beyond the credit the
 * accounting gave it. The owner consumes each message at once, a few steps
 * later, or in bursts. After every step the invariant of upstream.h must
 * hold, the peer must never overrun its credit, the bytes held must stay
 * within the window (plus the advance given for a message longer than it),
 * and when nothing can move (the peer has no credit, the owner has
 * consumed everything) the stream must be over: anything else is the stall
 * of issue 12, reported with the script. */

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

typedef struct flow_sim {
    gw_flow f;
    gw_deframer d;
    const size_t *sizes;
    size_t n;
    size_t delivered_msgs;           /* messages out of the deframer */
    size_t held[64];                 /* wire lengths not consumed yet */
    size_t n_held;
    int mode;                        /* 0 at once, 1 a step later, 2 every 7th step */
    bool bad;
} flow_sim;

static int sim_on_message(void *ctx, const uint8_t *msg, size_t len, size_t wire_len)
{
    (void)msg;
    flow_sim *s = ctx;
    gw_flow_delivered(&s->f, wire_len);
    if (s->delivered_msgs >= s->n || s->sizes[s->delivered_msgs] != len)
        s->bad = true;
    s->delivered_msgs++;
    if (s->mode == 0)
        gw_flow_consumed(&s->f, wire_len);
    else if (s->n_held < 64)
        s->held[s->n_held++] = wire_len;
    else
        s->bad = true;
    return 0;
}

static void sim_describe(const size_t *sizes, size_t n, uint32_t window, int mode, char *buf,
                         size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "window %u mode %d [", window, mode);
    for (size_t i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%zu", i ? " " : "", sizes[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

/* Runs one script; returns false (and prints why) on any violation. */
static bool flow_run(const size_t *sizes, size_t n, uint32_t window, int mode)
{
    flow_sim s = {.sizes = sizes, .n = n, .mode = mode};
    gw_flow_init(&s.f, window);
    gw_deframer_init(&s.d, 8u << 20);
    uint64_t total = 0, biggest = 0;
    for (size_t i = 0; i < n; i++) {
        total += 5 + sizes[i];
        biggest = GW_MAX(biggest, 5 + (uint64_t)sizes[i]);
    }
    uint64_t sent = 0;          /* peer's position in the stream */
    uint64_t granted_seen = 0;  /* what the peer was told */
    uint8_t frame[16384];
    const char *why = NULL;
    for (unsigned step = 0; step < 1000000 && !why; step++) {
        bool moved = false;
        /* The peer sends one DATA frame if it may. */
        uint64_t credit = window + granted_seen - sent;
        uint64_t chunk = GW_MIN(GW_MIN((uint64_t)sizeof frame, credit), total - sent);
        if (chunk) {
            /* Rebuild the wire bytes of [sent, sent + chunk). */
            uint64_t pos = 0;
            size_t fill = 0;
            for (size_t m = 0; m < n && fill < chunk; m++) {
                uint64_t w = 5 + sizes[m];
                if (sent + fill < pos + w) {
                    uint64_t off = sent + fill - pos;
                    for (; off < 5 && fill < chunk; off++)
                        frame[fill++] = off == 0 ? 0 : (uint8_t)(sizes[m] >> (8 * (4 - off)));
                    size_t body = (size_t)GW_MIN(w - off, chunk - fill);
                    memset(frame + fill, 0x5a, body); /* payload bytes do not matter here */
                    fill += body;
                }
                pos += w;
            }
            sent += chunk;
            gw_flow_received(&s.f, chunk);
            gw_error e = {0};
            if (gw_deframer_push(&s.d, frame, chunk, sim_on_message, &s, &e) != 0)
                why = "deframer refused the bytes";
            moved = true;
        }
        /* The owner consumes what it holds. */
        if (s.n_held && (mode == 1 || (mode == 2 && step % 7 == 0))) {
            for (size_t i = 0; i < s.n_held; i++)
                gw_flow_consumed(&s.f, s.held[i]);
            s.n_held = 0;
            moved = true;
        }
        uint32_t inc = gw_flow_update(&s.f, gw_deframer_missing(&s.d));
        granted_seen += inc;
        if (inc)
            moved = true;
        /* The invariant, and what it bounds. */
        if (s.f.granted != granted_seen)
            why = "granted differs from what the peer was sent";
        else if (s.f.released != s.f.consumed + s.f.advance + s.f.dropped)
            why = "released != consumed + advance + dropped";
        else if (s.f.granted > s.f.released)
            why = "granted more than released";
        else if (s.f.received > window + s.f.granted)
            why = "the peer overran its credit";
        else if (s.f.received - s.f.consumed > window + s.f.advance)
            why = "holds more than a window (+ advance)";
        else if (s.f.advance > biggest)
            why = "advance larger than a message";
        else if (s.bad)
            why = "wrong message";
        if (why)
            break;
        if (sent == total && s.delivered_msgs == n && s.n_held == 0)
            break;
        /* An owner holding messages will consume them at a later step. */
        if (!moved && s.n_held == 0)
            why = "stall: the peer has no credit and the owner nothing to consume";
    }
    if (!why && !(sent == total && s.delivered_msgs == n && s.n_held == 0))
        why = "did not finish";
    if (!why && (s.f.consumed != total || s.f.advance != 0))
        why = "not every byte consumed, or advance left over";
    gw_deframer_free(&s.d);
    if (why) {
        char d[2048];
        sim_describe(sizes, n, window, mode, d, sizeof d);
        print_error("%s: %s (sent %llu of %llu, received %llu, granted %llu, consumed %llu, "
                    "advance %llu)\n", d, why, (unsigned long long)sent,
                    (unsigned long long)total, (unsigned long long)s.f.received,
                    (unsigned long long)s.f.granted, (unsigned long long)s.f.consumed,
                    (unsigned long long)s.f.advance);
        return false;
    }
    return true;
}

static int flow_run_all_modes(const size_t *sizes, size_t n, uint32_t window)
{
    int bad = 0;
    for (int mode = 0; mode < 3; mode++)
        bad += !flow_run(sizes, n, window, mode);
    return bad;
}

/* Issue 12's sequences: two messages just over the window (W-6 .. W+5
 * bytes of payload, i.e. wire sizes W-1 .. W+10) and a final message that
 * fits but is large (47-62 KiB), the 200000 / 70000 case, and totals that
 * divide evenly or leave 0 or 1 byte. */
static void test_flow_over_window_then_large_remainder(void **state)
{
    (void)state;
    const uint32_t w = 65536;
    int bad = 0;
    size_t s3[3] = {70000, 70000, 60000};
    bad += flow_run_all_modes(s3, 3, w);
    for (size_t chunk = w - 6; chunk <= w + 5; chunk++) {
        for (size_t rem = 47 * 1024; rem <= 62 * 1024; rem += 512) {
            size_t a[3] = {chunk, chunk, rem};
            bad += flow_run_all_modes(a, 3, w);
            size_t b[2] = {chunk, rem};
            bad += flow_run_all_modes(b, 2, w);
        }
        size_t even[4] = {chunk, chunk, chunk, chunk};
        bad += flow_run_all_modes(even, 4, w);
        size_t tail1[3] = {chunk, chunk, 1}, tail0[3] = {chunk, chunk, 0};
        bad += flow_run_all_modes(tail1, 3, w);
        bad += flow_run_all_modes(tail0, 3, w);
    }
    assert_int_equal(bad, 0);
}

/* 2x and 3x the window +-k, small messages before one just under the
 * window (credit not yet returned must not keep it out), 16 KiB +-1, and
 * other windows. */
static void test_flow_neighbours(void **state)
{
    (void)state;
    int bad = 0;
    const uint32_t windows[] = {65536, 65535, 16384, 1000, 1 << 20};
    static const long ks[] = {-4096, -6, -5, -1, 0, 1, 5, 4096};
    for (size_t wi = 0; wi < sizeof windows / sizeof windows[0]; wi++) {
        long w = windows[wi];
        for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
            size_t two = (size_t)GW_MAX(2 * w + ks[i], 0L);
            size_t three = (size_t)GW_MAX(3 * w + ks[i], 0L);
            size_t a[3] = {two, two, 60000}, b[2] = {three, 50000};
            size_t c[3] = {1, two, (size_t)GW_MAX(w - 5, 0L)};
            bad += flow_run_all_modes(a, 3, (uint32_t)w);
            bad += flow_run_all_modes(b, 2, (uint32_t)w);
            bad += flow_run_all_modes(c, 3, (uint32_t)w);
        }
        for (size_t small = 1000; small <= 40000; small += 3000) {
            size_t a[2] = {small, (size_t)GW_MAX(w - 5, 0L)};
            size_t b[4] = {small, 50000, small, 60000};
            bad += flow_run_all_modes(a, 2, (uint32_t)w);
            bad += flow_run_all_modes(b, 4, (uint32_t)w);
        }
        for (size_t chunk = 16383; chunk <= 16390; chunk++) {
            size_t a[13];
            for (size_t i = 0; i < 13; i++)
                a[i] = i == 12 ? 200000 - 12 * chunk : chunk;
            bad += flow_run_all_modes(a, 13, (uint32_t)w);
        }
    }
    assert_int_equal(bad, 0);
}

/* Seeded random scripts drawn around every boundary. */
static void test_flow_random(void **state)
{
    (void)state;
    uint64_t seed = 12;
    int bad = 0;
    for (int run = 0; run < 5000; run++) {
        size_t sizes[12];
        size_t n = 1 + xorshift64(&seed) % 12;
        const uint32_t windows[] = {65536, 65535, 16384, 30000};
        uint32_t w = windows[xorshift64(&seed) % 4];
        for (size_t i = 0; i < n; i++) {
            uint64_t r = xorshift64(&seed);
            long base;
            switch (r % 7) {
            case 0: base = 0; break;
            case 1: base = 16384; break;
            case 2: base = (long)w; break;
            case 3: base = 2 * (long)w; break;
            case 4: base = 47 * 1024 + (long)((r >> 8) % (16 * 1024)); break;
            case 5: base = (long)w / 2; break;
            default: base = (long)((r >> 8) % 200000); break;
            }
            long d = (long)((r >> 40) % 12) - 6;
            sizes[i] = (size_t)GW_MAX(base + d, 0L);
        }
        bad += flow_run_all_modes(sizes, n, w);
        if (bad) {
            print_error("seed 12, run %d\n", run);
            break;
        }
    }
    assert_int_equal(bad, 0);
}

/* The bookkeeping rules one by one. */
static void test_flow_rules(void **state)
{
    (void)state;
    gw_flow f;
    gw_flow_init(&f, 65536);
    /* Nothing released: nothing to send. */
    assert_int_equal(gw_flow_update(&f, 5), 0);
    /* A 1000-byte message consumed: held back (below half a window, and
     * the peer has credit for the next prefix). */
    gw_flow_received(&f, 1005);
    gw_flow_delivered(&f, 1005);
    gw_flow_consumed(&f, 1005);
    assert_int_equal(gw_flow_update(&f, 5), 0);
    /* ... until the next message needs it: 60000 bytes announced, 5 of
     * them here, credit 64526 - 5 < 59995 + ... is enough: still nothing. */
    gw_flow_received(&f, 5);
    assert_int_equal(gw_flow_update(&f, 60000), 0);
    /* A message of 65000 whose first 5 bytes arrived: credit 64526 < 65000:
     * the 1005 released bytes go out at once. */
    gw_flow_init(&f, 65536);
    gw_flow_received(&f, 1005);
    gw_flow_delivered(&f, 1005);
    gw_flow_consumed(&f, 1005);
    gw_flow_received(&f, 5);
    assert_int_equal(gw_flow_update(&f, 65000), 1005);
    assert_int_equal(gw_flow_credit(&f), 65536 - 5);
    /* A message longer than the window gets the difference in advance,
     * paid back by its consume. */
    gw_flow_init(&f, 65536);
    gw_flow_received(&f, 16384);
    assert_int_equal(gw_flow_update(&f, 70005 - 16384), 70005 - 65536);
    assert_int_equal(f.advance, 70005 - 65536);
    gw_flow_received(&f, 70005 - 16384);
    gw_flow_delivered(&f, 70005);
    assert_int_equal(gw_flow_credit(&f), 0);
    gw_flow_consumed(&f, 70005);
    assert_int_equal(f.advance, 0);
    assert_int_equal(gw_flow_update(&f, 5), 65536);
    /* An owner that has not consumed its messages gets no advance. */
    gw_flow_init(&f, 65536);
    gw_flow_received(&f, 65536);
    gw_flow_delivered(&f, 1005);
    assert_int_equal(gw_flow_update(&f, 70000), 0);
    /* Consuming more than was delivered counts only what was. */
    gw_flow_consumed(&f, 5000);
    assert_int_equal(f.consumed, 1005);
    /* Discard releases everything received, now and later. */
    gw_flow_discard(&f);
    assert_int_equal(f.released, 65536);
    assert_int_equal(gw_flow_update(&f, 5), 65536);
    gw_flow_received(&f, 100);
    assert_int_equal(f.released, 65636);
    assert_int_equal(f.released, f.consumed + f.advance + f.dropped);
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
        cmocka_unit_test(test_flow_rules),
        cmocka_unit_test(test_flow_over_window_then_large_remainder),
        cmocka_unit_test(test_flow_neighbours),
        cmocka_unit_test(test_flow_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
