/*
 * Allocation-failure injection (tests/common/oom.h): count the allocations
 * a load makes, then rerun it failing each one in turn. Every run must fail
 * with GW_ENOMEM, leave no registry and leak nothing (ASan's leak check runs
 * at exit in the sanitize build). protobuf-c's own allocations (a shared
 * library) are not injected.
 *
 * argv[1..]: descriptor sets, loaded as one (concatenated sets are a set;
 * the files they share exercise the duplicate check).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "oom.h"

#include "schema/schema.h"

static const char *const *set_paths;
static int set_count;

/* One load from memory; returns its result. */
static int load_once(const uint8_t *data, size_t len, gw_registry **r, gw_error *e)
{
    *r = NULL;
    gw_error_clear(e);
    gw_registry_builder *b = gw_registry_builder_new();
    if (!b)
        return GW_ENOMEM;
    int rc = gw_registry_builder_add_set(b, data, len, "oom.pb", e);
    if (rc == 0)
        rc = gw_registry_builder_build(b, r, e);
    gw_registry_builder_del(b);
    return rc;
}

typedef struct load_ctx {
    const uint8_t *data;
    size_t len;
} load_ctx;

/* The counting run must load; every run with a failing allocation must end
 * in GW_ENOMEM without a registry. */
static void load_run(void *arg, long fail_at)
{
    load_ctx *lc = arg;
    gw_registry *r;
    gw_error e;
    gw_oom_arm(fail_at);
    int rc = load_once(lc->data, lc->len, &r, &e);
    gw_oom_disarm();
    if (fail_at == 0) {
        assert_int_equal(rc, 0);
        gw_registry_del(r);
        return;
    }
    if (rc != GW_ENOMEM)
        fail_msg("failing allocation %ld: got %d (%s)", fail_at, rc, e.msg);
    assert_null(r);
}

static void test_every_allocation_fails_cleanly(void **state)
{
    (void)state;
    uint8_t *data = NULL;
    size_t len = 0;
    gw_error e;
    for (int i = 0; i < set_count; i++) {
        uint8_t *one;
        size_t n;
        assert_int_equal(gw_read_file(set_paths[i], GW_SCHEMA_MAX_FILE_BYTES, &one, &n, &e), 0);
        data = realloc(data, len + n);
        assert_non_null(data);
        memcpy(data + len, one, n);
        len += n;
        free(one);
    }

    load_ctx lc = {data, len};
    long total = gw_oom_sweep("registry load", load_run, &lc);
    assert_true(total > 10);
    free(data);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SET.pb...\n", argv[0]);
        return 2;
    }
    set_paths = (const char *const *)argv + 1;
    set_count = argc - 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
