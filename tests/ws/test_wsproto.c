/* Unit tests for src/wsproto: tables of inputs and expected outputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wsproto/wsproto.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* FIPS 180 examples and the block-boundary lengths around 55/56/64. */
static void test_sha1(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t repeat;
        const char *digest;
    } table[] = {
        {"", 1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"abc", 1, "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
         "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
        {"a", 55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"},
        {"a", 56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"},
        {"a", 64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"},
        {"a", 1000, "291e9a6c66994949b57ba5e650361e98fc36b1ba"},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        size_t l = strlen(table[i].in), n = l * table[i].repeat;
        uint8_t *buf = malloc(n + 1);
        for (size_t k = 0; k < table[i].repeat; k++)
            memcpy(buf + k * l, table[i].in, l);
        uint8_t d[20];
        char got[41];
        gw_wsproto_sha1(buf, n, d);
        hex(d, 20, got);
        assert_string_equal(got, table[i].digest);
        free(buf);
    }
}

static void test_handshake(void **state)
{
    (void)state;
    char out[29];
    /* RFC 6455 section 1.3's example. */
    gw_wsproto_accept("dGhlIHNhbXBsZSBub25jZQ==", out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    static const struct {
        const char *key;
        bool ok;
    } keys[] = {
        {"dGhlIHNhbXBsZSBub25jZQ==", true},
        {"AAAAAAAAAAAAAAAAAAAAAA==", true},
        {"dGhlIHNhbXBsZSBub25jZQ", false},      /* unpadded */
        {"dGhlIHNhbXBsZSBub25jZQ=", false},     /* 23 */
        {"dGhlIHNhbXBsZSBub25jZQ===", false},   /* 25 */
        {"dGhlIHNhbXBsZSBub25jZXh4", false},    /* 18 bytes */
        {"dGhlIHNhbXBsZSBub25j!Q==", false},
        {"", false},
        {NULL, false},
    };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        assert_int_equal(gw_wsproto_key_ok(keys[i].key), keys[i].ok);
    static const struct {
        const char *list, *token;
        bool listed;
    } lists[] = {
        {"Upgrade", "upgrade", true},
        {"keep-alive, Upgrade", "upgrade", true},
        {"keep-alive,upgrade ", "upgrade", true},
        {"upgrades", "upgrade", false},
        {"x-upgrade", "upgrade", false},
        {"", "upgrade", false},
        {NULL, "upgrade", false},
        {"grpc-websockets", GW_WSPROTO_GRPC, true},
        {"chat, grpc-websockets", GW_WSPROTO_GRPC, true},
        {"grpc-websocket", GW_WSPROTO_GRPC, false},
        {"websocket", "websocket", true},
        {"WebSocket", "websocket", true},
    };
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++)
        assert_int_equal(gw_wsproto_token_listed(lists[i].list, lists[i].token),
                         lists[i].listed);
}

static void test_headers(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        size_t count;
        const char *first_name, *first_value;
    } table[] = {
        {"content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n", 0, 2,
         "content-type", "application/grpc-web+proto"},
        {"a: b", 0, 1, "a", "b"},                      /* no final CRLF */
        {"a:b\nc: d\n", 0, 2, "a", "b"},               /* bare LF */
        {"\r\n\r\nA:  spaced  \r\n", 0, 1, "A", "spaced"},
        {"grpc-timeout: 300m\r\n", 0, 1, "grpc-timeout", "300m"},
        {"empty:\r\n", 0, 1, "empty", ""},
        {"v: tab\there\r\n", 0, 1, "v", "tab\there"},
        {"", 0, 0, NULL, NULL},
        {"no colon\r\n", GW_EPARSE, 0, NULL, NULL},
        {": no name\r\n", GW_EPARSE, 0, NULL, NULL},
        {"bad name: x\r\n", GW_EPARSE, 0, NULL, NULL},
        {"n: bell\x07\r\n", GW_EPARSE, 0, NULL, NULL},
        {"n: cr\rin value\r\n", GW_EPARSE, 0, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        gw_wsproto_header h[8];
        size_t count = 99;
        gw_error e;
        gw_error_clear(&e);
        int rc = gw_wsproto_parse_headers((const uint8_t *)table[i].in, strlen(table[i].in), h,
                                          8, &count, &e);
        assert_int_equal(rc, table[i].rc);
        if (rc) {
            assert_true(e.msg[0] != 0);
            continue;
        }
        assert_int_equal(count, table[i].count);
        if (table[i].first_name) {
            assert_int_equal(h[0].name_len, strlen(table[i].first_name));
            assert_memory_equal(h[0].name, table[i].first_name, h[0].name_len);
            assert_int_equal(h[0].value_len, strlen(table[i].first_value));
            assert_memory_equal(h[0].value, table[i].first_value, h[0].value_len);
        }
    }
    /* The entry limit, exactly at and one past it. */
    char many[8 * 8 + 1] = "";
    for (int i = 0; i < 8; i++)
        strcat(many, "k: v\r\n");
    gw_wsproto_header h[8];
    size_t count;
    gw_error e;
    assert_int_equal(gw_wsproto_parse_headers((const uint8_t *)many, strlen(many), h, 8, &count,
                                              &e), 0);
    assert_int_equal(count, 8);
    assert_int_equal(gw_wsproto_parse_headers((const uint8_t *)many, strlen(many), h, 7, &count,
                                              &e), GW_ELIMIT);
}

static void test_client_message(void **state)
{
    (void)state;
    static const struct {
        const uint8_t in[8];
        size_t n;
        int rc, kind;
        size_t len;
    } table[] = {
        {{0, 0, 0, 0, 0, 2, 8, 1}, 8, 0, GW_WSPROTO_DATA, 7},
        {{0}, 1, 0, GW_WSPROTO_DATA, 0},
        {{1}, 1, 0, GW_WSPROTO_FINISH, 0},
        {{1, 0}, 2, GW_EPARSE, 0, 0},
        {{2}, 1, GW_EPARSE, 0, 0},
        {{0xff, 1}, 2, GW_EPARSE, 0, 0},
        {{0}, 0, GW_EPARSE, 0, 0},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        int kind = -1;
        const uint8_t *data = NULL;
        size_t len = 99;
        gw_error e;
        gw_error_clear(&e);
        int rc = gw_wsproto_client_message(table[i].in, table[i].n, &kind, &data, &len, &e);
        assert_int_equal(rc, table[i].rc);
        if (rc)
            continue;
        assert_int_equal(kind, table[i].kind);
        assert_int_equal(len, table[i].len);
        if (kind == GW_WSPROTO_DATA)
            assert_ptr_equal(data, table[i].in + 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha1),
        cmocka_unit_test(test_handshake),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_client_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
