/*
 * Failure injection (tests/common/oom.h): generate a document once counting
 * allocations, then again failing each allocation in turn. Every run must
 * end in GW_ENOMEM with the output buffer as it was, or succeed with a
 * document identical to the reference; the sanitizer build checks that no
 * failure path leaks.
 *
 * jansson's allocations (a shared library) go through json_set_alloc_funcs
 * into the same count; protobuf-c's are not counted.
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

#include "oom.h"

#include "openapi/openapi.h"

static void *json_alloc(size_t n)
{
    return gw_oom_next_fails() ? NULL : __real_malloc(n);
}

static int argc_g;
static char **argv_g;

typedef struct gen_ctx {
    gw_registry *r;
    gw_openapi_options o;
    gw_buf ref;       /* the document of the counting run */
    size_t failures;  /* runs that ended in GW_ENOMEM */
} gen_ctx;

static void gen_run(void *arg, long k)
{
    gen_ctx *g = arg;
    gw_error e;
    gw_error_clear(&e);
    if (k == 0) {
        gw_oom_arm(0);
        int rc = gw_openapi_generate(g->r, &g->o, &g->ref, &e);
        gw_oom_disarm();
        assert_int_equal(rc, 0);
        return;
    }
    gw_buf out;
    gw_buf_init(&out, 0);
    gw_oom_arm(k);
    int rc = gw_openapi_generate(g->r, &g->o, &out, &e);
    gw_oom_disarm();
    if (rc == 0) {
        /* Only an allocation whose failure has a fallback may pass, and
         * then the document must be the same. */
        if (out.len != g->ref.len && getenv("GW_OOM_DUMP")) {
            FILE *f = fopen(getenv("GW_OOM_DUMP"), "w");
            if (f) {
                fwrite(out.data, 1, out.len, f);
                fclose(f);
            }
        }
        if (out.len != g->ref.len)
            fail_msg("allocation %ld failed, yet a different document:\n%s", k,
                     (const char *)out.data);
        assert_memory_equal(out.data, g->ref.data, g->ref.len);
    } else {
        if (rc != GW_ENOMEM)
            fail_msg("allocation %ld: rc %d (%s)", k, rc, e.msg);
        assert_int_equal(e.code, GW_ENOMEM);
        assert_int_equal(out.len, 0);
        g->failures++;
    }
    gw_buf_free(&out);
}

static void run_scenario(const char *path)
{
    gen_ctx g = {0};
    gw_error e;
    assert_int_equal(gw_registry_load(&g.r, &path, 1, &e), 0);
    gw_openapi_options_init(&g.o);
    gw_buf_init(&g.ref, 0);
    long total = gw_oom_sweep(path, gen_run, &g);
    assert_true(total > 100);
    print_message("%s: %zu failed runs ended in GW_ENOMEM\n", path, g.failures);
    assert_true(g.failures > (size_t)total / 2);
    gw_buf_free(&g.ref);
    gw_registry_del(g.r);
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
