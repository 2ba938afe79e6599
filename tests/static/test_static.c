/* The pure parts of static file serving: which targets name which file,
 * content types, dates and conditional GET. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/static.h"

typedef struct path_case {
    const char *target;
    int rc;
    const char *path; /* when rc == 0 */
} path_case;

static const path_case path_cases[] = {
    {"/", 0, "/index.html"},
    {"/index.html", 0, "/index.html"},
    {"/app.js?v=3", 0, "/app.js"},
    {"/sub/", 0, "/sub/index.html"},
    {"/sub/x.css", 0, "/sub/x.css"},
    {"/a%20b.txt", 0, "/a b.txt"},
    {"/%41.txt", 0, "/A.txt"},
    {"/caf%C3%A9.txt", 0, "/caf\xc3\xa9.txt"},
    {"/.well-known/x", 0, "/.well-known/x"}, /* refused later, when opening */
    {"/..x", 0, "/..x"},
    {"/x..", 0, "/x.."},
    {"/%252e%252e/x", 0, "/%2e%2e/x"},       /* decoded once only */
    /* refused forms */
    {"", GW_EPARSE, NULL},
    {"index.html", GW_EPARSE, NULL},
    {"/%", GW_EPARSE, NULL},
    {"/%2", GW_EPARSE, NULL},
    {"/%zz", GW_EPARSE, NULL},
    {"/..", GW_EINVAL, NULL},
    {"/../etc/passwd", GW_EINVAL, NULL},
    {"/a/../../etc/passwd", GW_EINVAL, NULL},
    {"/sub/../index.html", GW_EINVAL, NULL},
    {"/./index.html", GW_EINVAL, NULL},
    {"/sub/.", GW_EINVAL, NULL},
    {"/%2e%2e/etc/passwd", GW_EINVAL, NULL},
    {"/%2E%2E/etc/passwd", GW_EINVAL, NULL},
    {"/.%2e/etc/passwd", GW_EINVAL, NULL},
    {"/..%2fetc/passwd", GW_EINVAL, NULL},
    {"/..%2Fetc/passwd", GW_EINVAL, NULL},
    {"/%2fetc/passwd", GW_EINVAL, NULL},
    {"/..%5c..%5cetc/passwd", GW_EINVAL, NULL},
    {"/..\\..\\etc/passwd", GW_EINVAL, NULL},
    {"/index.html%00.png", GW_EINVAL, NULL},
    {"/a%0ab", GW_EINVAL, NULL},
    {"/a%7f", GW_EINVAL, NULL},
    {"//etc/passwd", GW_EINVAL, NULL},
    {"/sub//x", GW_EINVAL, NULL},
};

static void test_clean_path(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(path_cases); i++) {
        const path_case *c = &path_cases[i];
        char out[GW_STATIC_PATH_MAX + 1];
        gw_error e;
        gw_error_clear(&e);
        int rc = gw_static_clean_path(c->target, strlen(c->target), out, sizeof out, &e);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d (%s)", c->target, rc, c->rc, e.msg);
        if (rc == 0)
            assert_string_equal(out, c->path);
        else
            assert_true(e.msg[0] != 0);
    }
}

static void test_clean_path_limits(void **state)
{
    (void)state;
    char target[4096], out[GW_STATIC_PATH_MAX + 1];
    /* GW_STATIC_SEGMENTS_MAX segments pass, one more does not. */
    size_t n = 0;
    for (int i = 0; i < GW_STATIC_SEGMENTS_MAX; i++)
        n += (size_t)snprintf(target + n, sizeof target - n, "/s");
    assert_int_equal(gw_static_clean_path(target, n, out, sizeof out, NULL), 0);
    n += (size_t)snprintf(target + n, sizeof target - n, "/s");
    assert_int_equal(gw_static_clean_path(target, n, out, sizeof out, NULL), GW_ELIMIT);
    /* GW_STATIC_PATH_MAX decoded bytes pass, one more does not. */
    target[0] = '/';
    memset(target + 1, 'a', GW_STATIC_PATH_MAX - 1);
    assert_int_equal(gw_static_clean_path(target, GW_STATIC_PATH_MAX, out, sizeof out, NULL), 0);
    assert_int_equal(strlen(out), GW_STATIC_PATH_MAX);
    target[GW_STATIC_PATH_MAX] = 'a';
    assert_int_equal(gw_static_clean_path(target, GW_STATIC_PATH_MAX + 1, out, sizeof out, NULL),
                     GW_ELIMIT);
    /* A small output buffer is a limit too, never an overflow. */
    char small[8];
    assert_int_equal(gw_static_clean_path("/abcdefgh", 9, small, sizeof small, NULL), GW_ELIMIT);
    assert_int_equal(gw_static_clean_path("/", 1, small, sizeof small, NULL), GW_ELIMIT);
    assert_int_equal(gw_static_clean_path("/abcdef", 7, small, sizeof small, NULL), 0);
    assert_string_equal(small, "/abcdef");
}

typedef struct type_case {
    const char *name;
    const char *type;
} type_case;

static const type_case type_cases[] = {
    {"/index.html", "text/html; charset=utf-8"},
    {"/app.js", "text/javascript; charset=utf-8"},
    {"/mod.mjs", "text/javascript; charset=utf-8"},
    {"/style.css", "text/css; charset=utf-8"},
    {"/favicon.svg", "image/svg+xml"},
    {"/a.png", "image/png"},
    {"/A.PNG", "image/png"},
    {"/a.jpg", "image/jpeg"},
    {"/a.jpeg", "image/jpeg"},
    {"/a.gif", "image/gif"},
    {"/a.webp", "image/webp"},
    {"/favicon.ico", "image/x-icon"},
    {"/data.json", "application/json"},
    {"/app.js.map", "application/json"},
    {"/robots.txt", "text/plain; charset=utf-8"},
    {"/m.wasm", "application/wasm"},
    {"/f.woff2", "font/woff2"},
    {"/f.woff", "application/octet-stream"},
    {"/README", "application/octet-stream"},
    {"/x.tar.gz", "application/octet-stream"},
    {"/.html", "application/octet-stream"},
    {"/dir.html/file", "application/octet-stream"},
};

static void test_content_type(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(type_cases); i++)
        if (strcmp(gw_static_content_type(type_cases[i].name), type_cases[i].type) != 0)
            fail_msg("%s: %s, want %s", type_cases[i].name,
                     gw_static_content_type(type_cases[i].name), type_cases[i].type);
}

static void test_http_date(void **state)
{
    (void)state;
    char buf[30];
    gw_static_format_http_date(784111777, buf);
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    gw_static_format_http_date(0, buf);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    int64_t t = 0;
    assert_int_equal(gw_static_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    assert_int_equal(t, 784111777);
    static const char *const bad[] = {
        "", "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994 08:49:37 GMT x",
        "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
        "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT", "yesterday", "Fri, 31 Dec 9999 23:59:60 GMT",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++)
        if (gw_static_parse_http_date(bad[i], &t) != GW_EPARSE)
            fail_msg("'%s' parsed", bad[i]);
}

typedef struct cond_case {
    const char *if_none_match;
    const char *if_modified_since;
    bool not_modified;
} cond_case;

#define ETAG "\"1a-2b-3c\""
#define MTIME 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */

static const cond_case cond_cases[] = {
    {NULL, NULL, false},
    {ETAG, NULL, true},
    {"W/" ETAG, NULL, true},
    {"*", NULL, true},
    {"\"other\", " ETAG, NULL, true},
    {"\"other\"," ETAG, NULL, true},
    {"\"other\"", NULL, false},
    {"\"1a-2b-3\"", NULL, false},
    {"1a-2b-3c", NULL, false},           /* unquoted: malformed, no match */
    {"\"1a-2b-3c", NULL, false},
    {"", NULL, false},
    /* If-None-Match decides when present, whatever the date says. */
    {"\"other\"", "Sun, 06 Nov 1994 08:49:37 GMT", false},
    {ETAG, "Thu, 01 Jan 1970 00:00:00 GMT", true},
    {NULL, "Sun, 06 Nov 1994 08:49:37 GMT", true},
    {NULL, "Sun, 06 Nov 1994 08:49:38 GMT", true},
    {NULL, "Sun, 06 Nov 1994 08:49:36 GMT", false},
    {NULL, "Thu, 01 Jan 1970 00:00:00 GMT", false},
    {NULL, "garbage", false},
};

static void test_not_modified(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(cond_cases); i++) {
        const cond_case *c = &cond_cases[i];
        bool got = gw_static_not_modified(c->if_none_match, c->if_modified_since, ETAG, MTIME);
        if (got != c->not_modified)
            fail_msg("case %zu (INM %s, IMS %s): %d", i, c->if_none_match ? c->if_none_match : "-",
                     c->if_modified_since ? c->if_modified_since : "-", got);
    }
}

typedef struct range_case {
    const char *value;
    uint64_t size;
    gw_static_range want;
    uint64_t first, len; /* for GW_STATIC_RANGE_PART */
} range_case;

#define WHOLE GW_STATIC_RANGE_WHOLE
#define PART GW_STATIC_RANGE_PART
#define UNSAT GW_STATIC_RANGE_UNSATISFIABLE

static const range_case range_cases[] = {
    {NULL, 100, WHOLE, 0, 0},
    /* a-b */
    {"bytes=0-0", 100, PART, 0, 1},
    {"bytes=0-99", 100, PART, 0, 100},
    {"bytes=10-19", 100, PART, 10, 10},
    {"bytes=99-99", 100, PART, 99, 1},
    {"bytes=90-150", 100, PART, 90, 10},             /* last past the end: to the end */
    {"bytes=0-18446744073709551615", 100, PART, 0, 100},
    {"bytes=0-99999999999999999999999", 100, PART, 0, 100}, /* overflow saturates */
    {"bytes=100-100", 100, UNSAT, 0, 0},
    {"bytes=100-200", 100, UNSAT, 0, 0},
    {"bytes=99999999999999999999999-99999999999999999999999", 100, UNSAT, 0, 0},
    {"bytes=20-10", 100, WHOLE, 0, 0},               /* last < first: invalid */
    {"bytes=007-008", 100, PART, 7, 2},
    /* a- */
    {"bytes=0-", 100, PART, 0, 100},
    {"bytes=50-", 100, PART, 50, 50},
    {"bytes=99-", 100, PART, 99, 1},
    {"bytes=100-", 100, UNSAT, 0, 0},
    {"bytes=18446744073709551616-", 100, UNSAT, 0, 0},
    /* -n */
    {"bytes=-1", 100, PART, 99, 1},
    {"bytes=-10", 100, PART, 90, 10},
    {"bytes=-100", 100, PART, 0, 100},
    {"bytes=-500", 100, PART, 0, 100},               /* suffix larger than the file */
    {"bytes=-99999999999999999999999", 100, PART, 0, 100},
    {"bytes=-0", 100, UNSAT, 0, 0},
    /* an empty file */
    {"bytes=0-", 0, UNSAT, 0, 0},
    {"bytes=0-0", 0, UNSAT, 0, 0},
    {"bytes=-5", 0, WHOLE, 0, 0},                    /* no a-b/0 to write */
    {"bytes=-0", 0, UNSAT, 0, 0},
    {"bytes=1-", 1, UNSAT, 0, 0},
    {"bytes=0-", 1, PART, 0, 1},
    /* whitespace, case, list syntax */
    {"  bytes=1-2  ", 100, PART, 1, 2},
    {"\tbytes=1-2\t", 100, PART, 1, 2},
    {"bytes= 1-2", 100, PART, 1, 2},
    {"bytes=1-2,", 100, PART, 1, 2},                 /* empty list elements */
    {"bytes=,1-2, ,", 100, PART, 1, 2},
    {"Bytes=1-2", 100, PART, 1, 2},
    {"BYTES=-3", 100, PART, 97, 3},
    {"bytes=1 -2", 100, WHOLE, 0, 0},
    {"bytes=1- 2", 100, WHOLE, 0, 0},
    {"bytes=- 2", 100, WHOLE, 0, 0},
    {"bytes =1-2", 100, WHOLE, 0, 0},
    {"bytes= ", 100, WHOLE, 0, 0},
    {"bytes=,", 100, WHOLE, 0, 0},
    /* not "bytes=", or not a byte range */
    {"", 100, WHOLE, 0, 0},
    {"1-2", 100, WHOLE, 0, 0},
    {"=1-2", 100, WHOLE, 0, 0},
    {"bytes", 100, WHOLE, 0, 0},
    {"bytes=", 100, WHOLE, 0, 0},
    {"bytes:1-2", 100, WHOLE, 0, 0},
    {"items=1-2", 100, WHOLE, 0, 0},
    {"bytesx=1-2", 100, WHOLE, 0, 0},
    {"bytes=-", 100, WHOLE, 0, 0},
    {"bytes=a-b", 100, WHOLE, 0, 0},
    {"bytes=1", 100, WHOLE, 0, 0},
    {"bytes=1-2x", 100, WHOLE, 0, 0},
    {"bytes=+1-2", 100, WHOLE, 0, 0},
    {"bytes=1--2", 100, WHOLE, 0, 0},
    {"bytes=0x10-0x20", 100, WHOLE, 0, 0},
    {"bytes=1-2;x", 100, WHOLE, 0, 0},
    /* several ranges: ignored, even when each alone is fine or unsatisfiable */
    {"bytes=0-1,3-4", 100, WHOLE, 0, 0},
    {"bytes=0-1, -1", 100, WHOLE, 0, 0},
    {"bytes=200-300,400-", 100, WHOLE, 0, 0},
    {"bytes=0-1,x", 100, WHOLE, 0, 0},
};

static void test_parse_range(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(range_cases); i++) {
        const range_case *c = &range_cases[i];
        uint64_t first = 12345, len = 12345;
        gw_static_range got = gw_static_parse_range(c->value, c->size, &first, &len);
        if (got != c->want)
            fail_msg("'%s' (size %llu): %d, want %d", c->value ? c->value : "(null)",
                     (unsigned long long)c->size, (int)got, (int)c->want);
        if (got == PART && (first != c->first || len != c->len))
            fail_msg("'%s' (size %llu): first %llu len %llu, want %llu %llu", c->value,
                     (unsigned long long)c->size, (unsigned long long)first,
                     (unsigned long long)len, (unsigned long long)c->first,
                     (unsigned long long)c->len);
        if (got != PART && (first != 12345 || len != 12345))
            fail_msg("'%s': outputs written without a range", c->value ? c->value : "(null)");
    }
}

typedef struct if_range_case {
    const char *if_range;
    int64_t now;
    bool honoured;
} if_range_case;

static const if_range_case if_range_cases[] = {
    {NULL, MTIME + 10, true},
    {ETAG, MTIME + 10, true},
    {" " ETAG "\t", MTIME + 10, true},
    {ETAG, MTIME, true},                     /* a tag does not depend on the clock */
    {"W/" ETAG, MTIME + 10, false},          /* weak: never for ranges */
    {"\"1a-2b-3\"", MTIME + 10, false},
    {"\"1a-2b-3c\"x", MTIME + 10, false},
    {ETAG ", \"other\"", MTIME + 10, false},  /* one validator, not a list */
    {"\"", MTIME + 10, false},
    {"Sun, 06 Nov 1994 08:49:37 GMT", MTIME + 10, true},
    {"Sun, 06 Nov 1994 08:49:37 GMT", MTIME + 1, true},
    {"Sun, 06 Nov 1994 08:49:37 GMT", MTIME, false}, /* same second: weak */
    {"Sun, 06 Nov 1994 08:49:38 GMT", MTIME + 10, false}, /* exact match only */
    {"Sun, 06 Nov 1994 08:49:36 GMT", MTIME + 10, false},
    {"Sunday, 06-Nov-94 08:49:37 GMT", MTIME + 10, false},
    {"", MTIME + 10, false},
    {"garbage", MTIME + 10, false},
    {"Sun, 06 Nov 1994 08:49:37 GMT and a lot more text after the date", MTIME + 10, false},
};

static void test_if_range(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(if_range_cases); i++) {
        const if_range_case *c = &if_range_cases[i];
        bool got = gw_static_if_range(c->if_range, ETAG, MTIME, c->now);
        if (got != c->honoured)
            fail_msg("case %zu (If-Range %s, now %lld): %d", i,
                     c->if_range ? c->if_range : "-", (long long)c->now, got);
    }
}

typedef struct hashed_case {
    const char *name;
    bool hashed;
} hashed_case;

static const hashed_case hashed_cases[] = {
    {"/assets/app-7KQ2MZ4D.js", true},
    {"/assets/style-ABCDEFGH.css", true},
    {"app-A2345672.js", true},
    {"/x/chunk-ABCD1234.min.js", true},
    {"/app-ABCD1234.js.map", true},
    {"/a-b-ABCD1234.js", true},
    {"/-ABCD1234.js", true},
    {"/app-1234567A.js", true},
    {"/app.js", false},
    {"/index.html", false},
    {"/log-20241121.txt", false},                /* all digits: a date */
    {"/app-abcd1234.js", false},                 /* lower case */
    {"/app-ABCD123.js", false},                  /* 7 */
    {"/app-ABCD12345.js", false},                /* 9 */
    {"/app-ABCD1234", false},                    /* no '.' after it */
    {"/app-ABCD1234-x.js", false},
    {"/app_ABCD1234.js", false},
    {"/app.ABCD1234.js", false},
    {"/app-ABCD-234.js", false},
    {"/app-ABCD1234.js/", false},                /* only the last component counts */
    {"/assets-ABCD1234.d/app.js", false},
    {"-", false},
    {"", false},
};

static void test_hashed_name(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(hashed_cases); i++)
        if (gw_static_is_hashed_name(hashed_cases[i].name) != hashed_cases[i].hashed)
            fail_msg("%s: %d", hashed_cases[i].name, !hashed_cases[i].hashed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_path),
        cmocka_unit_test(test_clean_path_limits),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_http_date),
        cmocka_unit_test(test_not_modified),
        cmocka_unit_test(test_parse_range),
        cmocka_unit_test(test_if_range),
        cmocka_unit_test(test_hashed_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
