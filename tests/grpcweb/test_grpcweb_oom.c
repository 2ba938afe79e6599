/*
 * Failure injection for src/grpcweb (tests/common/oom.h). The module
 * allocates only when it builds a trailer frame (into the caller's buffer,
 * and a scratch buffer for grpc-message and grpc-status-details-bin); the
 * scanner and the base64 decoder never allocate. Each scenario builds a
 * trailer after a data frame already in the buffer, once counting
 * allocations, then once per allocation with that one failing: the run
 * must return GW_ENOMEM with the data frame intact (the call adapter keeps
 * it and falls back to a shorter trailer), or succeed with the reference
 * bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "oom.h"

#include "grpcweb/grpcweb.h"

typedef struct trailer_case {
    const char *name;
    int code;
    const char *message;
    const uint8_t *details;
    size_t details_len;
    const char *extra_name; /* a metadata entry after the status, or NULL */
    const char *extra_value;
} trailer_case;

static const uint8_t details[] = {0x08, 0x03, 0x12, 0x03, 'b', 'a', 'd'};
static const uint8_t data_frame[] = {0x00, 0, 0, 0, 3, 'a', 'b', 'c'};

static const trailer_case cases[] = {
    {"status only", 0, NULL, NULL, 0, NULL, NULL},
    {"message and details", 3, "bad % input\n", details, sizeof details, "X-Custom", "value"},
    {"empty details", 13, "internal", details, 0, NULL, NULL},
    {"bad metadata name skipped", 5, "not found", NULL, 0, "bad name", "v"},
};

/* Builds data frame + trailer into b; returns 0 or the first error other
 * than a skipped (GW_EINVAL) metadata entry. */
static int build(const trailer_case *tc, gw_buf *b)
{
    int rc = gw_buf_append(b, data_frame, sizeof data_frame);
    if (rc)
        return rc;
    size_t start;
    if ((rc = gw_grpcweb_trailer_begin(b, &start)) != 0)
        return rc;
    if ((rc = gw_grpcweb_trailer_add_status(b, tc->code, tc->message, tc->details,
                                            tc->details_len)) != 0)
        return rc;
    if (tc->extra_name) {
        rc = gw_grpcweb_trailer_add(b, tc->extra_name, strlen(tc->extra_name), tc->extra_value,
                                    strlen(tc->extra_value));
        if (rc && rc != GW_EINVAL)
            return rc;
    }
    gw_grpcweb_trailer_end(b, start);
    return 0;
}

typedef struct run_ctx {
    const trailer_case *tc;
    gw_buf ref;
} run_ctx;

static void run(void *arg, long fail_at)
{
    run_ctx *rc_ = arg;
    gw_buf b;
    gw_buf_init(&b, 1 << 20);
    gw_oom_arm(fail_at);
    int rc = build(rc_->tc, &b);
    gw_oom_disarm();
    if (fail_at == 0) {
        assert_int_equal(rc, 0);
        assert_int_equal(gw_buf_append(&rc_->ref, b.data, b.len), 0);
    } else if (rc == 0) {
        if (gw_oom_hit())
            fail_msg("%s: allocation %ld failed but the trailer was built", rc_->tc->name,
                     fail_at);
        assert_int_equal(b.len, rc_->ref.len);
        assert_memory_equal(b.data, rc_->ref.data, b.len);
    } else {
        if (rc != GW_ENOMEM)
            fail_msg("%s: allocation %ld failed: got %d (%s), want GW_ENOMEM", rc_->tc->name,
                     fail_at, rc, gw_err_str(rc));
        /* The frame before the trailer is still whole (only the first
         * allocation, the buffer itself, may leave nothing). */
        if (b.len)
            assert_memory_equal(b.data, data_frame, sizeof data_frame);
    }
    gw_buf_free(&b);
}

static void test_trailer_oom(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        run_ctx c = {.tc = &cases[i]};
        gw_buf_init(&c.ref, 0);
        assert_true(gw_oom_sweep(cases[i].name, run, &c) > 0);
        gw_buf_free(&c.ref);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_trailer_oom)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
