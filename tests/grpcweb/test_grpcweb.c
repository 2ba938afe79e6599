/* Unit tests for src/grpcweb: tables of inputs and expected outputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "grpcweb/grpcweb.h"

/* ---- content types ---------------------------------------------------------- */

static void test_classify(void **state)
{
    static const struct {
        const char *ct;
        int rc;
        bool text, json;
        const char *reply;
    } table[] = {
        {"application/grpc-web", 0, false, false, "application/grpc-web+proto"},
        {"application/grpc-web+proto", 0, false, false, "application/grpc-web+proto"},
        {"application/grpc-web-text", 0, true, false, "application/grpc-web-text+proto"},
        {"application/grpc-web-text+proto", 0, true, false, "application/grpc-web-text+proto"},
        {"application/grpc-web+json", 0, false, true, "application/grpc-web+json"},
        {"application/grpc-web-text+json", 0, true, true, "application/grpc-web-text+json"},
        {"Application/GRPC-Web+Proto", 0, false, false, "application/grpc-web+proto"},
        {"application/grpc-web; charset=utf-8", 0, false, false, "application/grpc-web+proto"},
        {"application/grpc-web-text ;x=y", 0, true, false, "application/grpc-web-text+proto"},
        {"application/grpc-web+thrift", GW_EINVAL, false, false, NULL},
        {"application/grpc-web-text+flatbuf", GW_EINVAL, false, false, NULL},
        {"application/grpc", GW_ENOTFOUND, false, false, NULL},
        {"application/grpc+proto", GW_ENOTFOUND, false, false, NULL},
        {"application/json", GW_ENOTFOUND, false, false, NULL},
        {"application/grpc-webx", GW_ENOTFOUND, false, false, NULL},
        {"application/grpc-web-textual", GW_ENOTFOUND, false, false, NULL},
        {"", GW_ENOTFOUND, false, false, NULL},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        gw_grpcweb_format f = {true, true};
        int rc = gw_grpcweb_classify(table[i].ct, strlen(table[i].ct), &f);
        if (rc != table[i].rc)
            fail_msg("%s: rc %d, want %d", table[i].ct, rc, table[i].rc);
        if (rc == 0) {
            assert_int_equal(f.text, table[i].text);
            assert_int_equal(f.json, table[i].json);
            assert_string_equal(gw_grpcweb_content_type(f), table[i].reply);
        }
    }
}

/* ---- request frames ------------------------------------------------------------ */

static void test_scanner(void **state)
{
    /* Each body is fed in pieces of `step` bytes (0: all at once) so that
     * headers split across reads are covered. */
    static const struct {
        const char *name;
        const char *body;
        size_t len;
        size_t step;
        bool compressed_ok;
        int feed_rc;     /* first failing feed, or 0 */
        int finish_rc;   /* when feed succeeded */
        uint64_t frames;
        const char *msg; /* substring of the error message */
    } table[] = {
        {"one frame", "\0\0\0\0\3abc", 8, 0, false, 0, 0, 1, NULL},
        {"one frame bytewise", "\0\0\0\0\3abc", 8, 1, false, 0, 0, 1, NULL},
        {"empty message", "\0\0\0\0\0", 5, 0, false, 0, 0, 1, NULL},
        {"two frames split", "\0\0\0\0\1x\0\0\0\0\2yz", 13, 3, false, 0, 0, 2, NULL},
        {"empty body", "", 0, 0, false, 0, 0, 0, NULL},
        {"cut header", "\0\0\0", 3, 0, false, 0, GW_EPARSE, 0, "inside the 5-byte"},
        {"length beyond body", "\0\0\0\0\x10" "abc", 8, 0, false, 0, GW_EPARSE, 0,
         "13 bytes before the end"},
        {"trailer flag", "\x80\0\0\0\0", 5, 0, false, GW_EPARSE, 0, 0, "trailer frame"},
        {"unknown flag", "\x02\0\0\0\0", 5, 0, false, GW_EPARSE, 0, 0, "unknown flag bits 0x02"},
        {"compressed not negotiated", "\x01\0\0\0\0", 5, 0, false, GW_EPARSE, 0, 0,
         "no grpc-encoding"},
        {"compressed negotiated", "\x01\0\0\0\1z", 6, 0, true, 0, 0, 1, NULL},
        {"over limit", "\0\0\0\x04\x01", 5, 0, false, GW_ELIMIT, 0, 0,
         "1025 bytes exceeds the limit of 1024"},
        {"at limit header only", "\0\0\0\x04\0", 5, 0, false, 0, GW_EPARSE, 0, NULL},
        {"second frame bad at offset 6", "\0\0\0\0\1x\x40\0\0\0\0", 11, 0, false, GW_EPARSE,
         0, 0, "frame 1 at body offset 6"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        gw_grpcweb_scanner s;
        gw_error e;
        gw_error_clear(&e);
        gw_grpcweb_scanner_init(&s, 1024, table[i].compressed_ok);
        size_t step = table[i].step ? table[i].step : (table[i].len ? table[i].len : 1);
        int rc = 0;
        for (size_t off = 0; off < table[i].len && rc == 0; off += step)
            rc = gw_grpcweb_scanner_feed(&s, (const uint8_t *)table[i].body + off,
                                         GW_MIN(step, table[i].len - off), &e);
        if (rc != table[i].feed_rc)
            fail_msg("%s: feed rc %d, want %d (%s)", table[i].name, rc, table[i].feed_rc,
                     e.msg);
        if (rc == 0) {
            rc = gw_grpcweb_scanner_finish(&s, &e);
            if (rc != table[i].finish_rc)
                fail_msg("%s: finish rc %d, want %d", table[i].name, rc,
                         table[i].finish_rc);
            if (rc == 0)
                assert_int_equal(s.frames, table[i].frames);
        }
        if (table[i].msg && !strstr(e.msg, table[i].msg))
            fail_msg("%s: message '%s' lacks '%s'", table[i].name, e.msg, table[i].msg);
    }
}

/* ---- text mode --------------------------------------------------------------------- */

static void test_b64(void **state)
{
    static const struct {
        const char *name;
        const char *in;
        size_t step;       /* feed in pieces (0: at once) */
        int rc;            /* from decode or finish */
        const char *out;
        size_t out_len;
        const char *msg;
    } table[] = {
        {"one group", "AAAA", 0, 0, "\0\0\0", 3, NULL},
        {"padded chunk", "AAAABQ==", 0, 0, "\0\0\0\5", 4, NULL},
        {"two padded chunks", "AAAABQ==aGk=", 0, 0, "\0\0\0\5hi", 6, NULL},
        {"three chunks bytewise", "YQ==Yg==Yw==", 1, 0, "abc", 3, NULL},
        {"split across reads", "aGVsbG8gd29ybGQ=", 5, 0, "hello world", 11, NULL},
        {"unpadded tail", "aGk", 0, 0, "hi", 2, NULL},
        {"unpadded tail 2", "aGVsbA", 0, 0, "hell", 4, NULL},
        {"empty", "", 0, 0, "", 0, NULL},
        {"bad character", "AA!A", 0, GW_EPARSE, NULL, 0, "offset 2 (character 0x21)"},
        {"url alphabet refused", "AA-_", 0, GW_EPARSE, NULL, 0, "offset 2"},
        {"whitespace refused", "AAAA\r\nAAAA", 0, GW_EPARSE, NULL, 0, "offset 4"},
        {"pad first", "=AAA", 0, GW_EPARSE, NULL, 0, "offset 0"},
        {"pad second", "A===", 0, GW_EPARSE, NULL, 0, "offset 1"},
        {"data after pad", "AA=A", 0, GW_EPARSE, NULL, 0, "offset 3"},
        {"second group bad", "AAAAAA=A", 0, GW_EPARSE, NULL, 0, "offset 7"},
        {"single stray character", "AAAAB", 0, GW_EPARSE, NULL, 0, "single character"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        gw_grpcweb_b64 d;
        gw_grpcweb_b64_init(&d);
        gw_error e;
        gw_error_clear(&e);
        size_t len = strlen(table[i].in);
        uint8_t out[64];
        size_t w = 0;
        size_t step = table[i].step ? table[i].step : (len ? len : 1);
        int rc = 0;
        for (size_t off = 0; off < len && rc == 0; off += step) {
            size_t got = 0;
            size_t n = GW_MIN(step, len - off);
            assert_true(w + gw_grpcweb_b64_max_out(n) <= sizeof out);
            rc = gw_grpcweb_b64_decode(&d, table[i].in + off, n, out + w, &got, &e);
            w += got;
        }
        if (rc == 0) {
            size_t got = 0;
            rc = gw_grpcweb_b64_finish(&d, out + w, &got, &e);
            w += got;
        }
        if (rc != table[i].rc)
            fail_msg("%s: rc %d, want %d (%s)", table[i].name, rc, table[i].rc, e.msg);
        if (rc == 0) {
            assert_int_equal(w, table[i].out_len);
            assert_memory_equal(out, table[i].out, w);
        } else if (!strstr(e.msg, table[i].msg)) {
            fail_msg("%s: message '%s' lacks '%s'", table[i].name, e.msg, table[i].msg);
        }
    }
}

/* ---- response frames ------------------------------------------------------------------ */

static void test_frame_header(void **state)
{
    uint8_t h[5];
    gw_grpcweb_frame_header(h, 0, 0x01020304);
    assert_memory_equal(h, "\0\1\2\3\4", 5);
    gw_grpcweb_frame_header(h, 0x80, 7);
    assert_memory_equal(h, "\x80\0\0\0\7", 5);
}

static void test_trailers(void **state)
{
    static const struct {
        const char *name;
        int code;
        const char *message;
        const char *details;
        size_t details_len;
        const char *md_name, *md_value;
        const char *want;
        size_t want_len;
    } table[] = {
        {"ok", 0, "", NULL, 0, NULL, NULL, "\x80\0\0\0\x10grpc-status: 0\r\n", 21},
        {"message encoded", 5, "no 100%", NULL, 0, NULL, NULL,
         "\x80\0\0\0\x29grpc-status: 5\r\ngrpc-message: no 100%25\r\n", 46},
        {"details and metadata", 3, "bad", "\x08\x03", 2, "X-Demo-Trace", "t1",
         "\x80\0\0\0\x53grpc-status: 3\r\ngrpc-message: bad\r\n"
         "grpc-status-details-bin: CAM\r\nx-demo-trace: t1\r\n", 88},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        gw_buf b;
        gw_buf_init(&b, 4096);
        size_t start;
        assert_int_equal(gw_grpcweb_trailer_begin(&b, &start), 0);
        assert_int_equal(gw_grpcweb_trailer_add_status(&b, table[i].code, table[i].message,
                                                       (const uint8_t *)table[i].details,
                                                       table[i].details_len),
                         0);
        if (table[i].md_name)
            assert_int_equal(gw_grpcweb_trailer_add(&b, table[i].md_name,
                                                    strlen(table[i].md_name),
                                                    table[i].md_value,
                                                    strlen(table[i].md_value)),
                             0);
        gw_grpcweb_trailer_end(&b, start);
        if (b.len != table[i].want_len)
            fail_msg("%s: length %zu, want %zu: %.*s", table[i].name, b.len,
                     table[i].want_len, (int)b.len, (const char *)b.data);
        assert_memory_equal(b.data, table[i].want, b.len);
        gw_buf_free(&b);
    }
}

static void test_trailer_rejects(void **state)
{
    static const struct { const char *name, *value; } table[] = {
        {"x-a", "line\r\nbreak"}, {"x a", "v"}, {"", "v"}, {"x:y", "v"}, {"x-a", "nul\0"},
    };
    gw_buf b;
    gw_buf_init(&b, 4096);
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        size_t vl = strlen(table[i].value) + (strstr(table[i].value, "nul") ? 1 : 0);
        assert_int_equal(gw_grpcweb_trailer_add(&b, table[i].name, strlen(table[i].name),
                                                table[i].value, vl),
                         GW_EINVAL);
    }
    assert_int_equal(b.len, 0);
    /* The buffer's maximum is honoured. */
    gw_buf small;
    gw_buf_init(&small, 8);
    assert_int_equal(gw_grpcweb_trailer_add(&small, "grpc-status", 11, "0", 1), GW_ELIMIT);
    gw_buf_free(&small);
    gw_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),     cmocka_unit_test(test_scanner),
        cmocka_unit_test(test_b64),          cmocka_unit_test(test_frame_header),
        cmocka_unit_test(test_trailers),     cmocka_unit_test(test_trailer_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
