/*
 * Allocation-failure injection (the nghttp2 failmalloc habit): count the
 * allocations a load makes, then rerun it failing each one in turn. Every
 * run must fail with GW_ENOMEM, leave no registry and leak nothing (ASan's
 * leak check runs at exit in the sanitize build).
 *
 * malloc, calloc and realloc are wrapped at link time (-Wl,--wrap), which
 * reaches every call made by our static libraries; protobuf-c's own
 * allocations (a shared library) are not injected.
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

#include "schema/schema.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static long alloc_count; /* allocations since armed */
static long fail_at;     /* fail the allocation with this number (1-based); 0: never */
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

    gw_registry *r;
    alloc_count = 0;
    fail_at = 0;
    armed = 1;
    int rc = load_once(data, len, &r, &e);
    armed = 0;
    assert_int_equal(rc, 0);
    long total = alloc_count;
    assert_true(total > 10);
    print_message("%ld allocations, each failed in turn\n", total);
    gw_registry_del(r);

    for (long i = 1; i <= total; i++) {
        alloc_count = 0;
        fail_at = i;
        armed = 1;
        rc = load_once(data, len, &r, &e);
        armed = 0;
        if (rc != GW_ENOMEM)
            fail_msg("failing allocation %ld of %ld: got %d (%s)", i, total, rc, e.msg);
        assert_null(r);
    }
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
