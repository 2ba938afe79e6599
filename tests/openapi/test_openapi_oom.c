/*
 * Failure injection (nghttp2's failmalloc habit): generate a document once
 * counting allocations, then again failing each allocation in turn. Every
 * run must end in GW_ENOMEM with the output buffer as it was, or succeed
 * with a document identical to the reference; the sanitizer build checks
 * that no failure path leaks.
 *
 * malloc/calloc/realloc of the statically linked gateway code are wrapped
 * at link time (-Wl,--wrap); jansson's allocations go through
 * json_set_alloc_funcs. protobuf-c's (a shared library) are not counted.
 *
 * argv: descriptor sets, one scenario each.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "openapi/openapi.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static size_t alloc_count; /* allocations seen while armed */
static size_t fail_at;     /* 1-based allocation to fail; 0: none */
static int armed;

static int should_fail(void)
{
    if (!armed)
        return 0;
    alloc_count++;
    return fail_at && alloc_count == fail_at;
}

void *__wrap_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    return should_fail() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : __real_realloc(p, n);
}

static void *json_alloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

static int argc_g;
static char **argv_g;

static void run_scenario(const char *path)
{
    gw_registry *r = NULL;
    gw_error e;
    assert_int_equal(gw_registry_load(&r, &path, 1, &e), 0);
    gw_openapi_options o;
    gw_openapi_options_init(&o);

    gw_buf ref;
    gw_buf_init(&ref, 0);
    armed = 1;
    alloc_count = 0;
    fail_at = 0;
    int rc = gw_openapi_generate(r, &o, &ref, &e);
    armed = 0;
    assert_int_equal(rc, 0);
    size_t total = alloc_count;
    assert_true(total > 100);

    size_t failures = 0;
    for (size_t k = 1; k <= total; k++) {
        gw_buf out;
        gw_buf_init(&out, 0);
        gw_error_clear(&e);
        armed = 1;
        alloc_count = 0;
        fail_at = k;
        rc = gw_openapi_generate(r, &o, &out, &e);
        armed = 0;
        if (rc == 0) {
            /* Only an allocation whose failure has a fallback may pass, and
             * then the document must be the same. */
            if (out.len != ref.len && getenv("GW_OOM_DUMP")) {
                FILE *f = fopen(getenv("GW_OOM_DUMP"), "w");
                if (f) {
                    fwrite(out.data, 1, out.len, f);
                    fclose(f);
                }
            }
            if (out.len != ref.len)
                fail_msg("allocation %zu of %zu failed, yet a different document:\n%s", k,
                         total, (const char *)out.data);
            assert_memory_equal(out.data, ref.data, ref.len);
        } else {
            if (rc != GW_ENOMEM)
                fail_msg("allocation %zu of %zu: rc %d (%s)", k, total, rc, e.msg);
            assert_int_equal(e.code, GW_ENOMEM);
            assert_int_equal(out.len, 0);
            failures++;
        }
        gw_buf_free(&out);
    }
    print_message("%s: %zu allocations, %zu failed runs ended in GW_ENOMEM\n", path, total,
                  failures);
    assert_true(failures > total / 2);
    gw_buf_free(&ref);
    gw_registry_del(r);
}

static void test_oom(void **state)
{
    (void)state;
    for (int i = 1; i < argc_g; i++)
        run_scenario(argv_g[i]);
}

int main(int argc, char **argv)
{
    argc_g = argc;
    argv_g = argv;
    json_set_alloc_funcs(json_alloc, free);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_oom)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
