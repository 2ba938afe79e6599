/* The allocation-failure harness of oom.h. */
#include "oom.h"

#include <stdio.h>

#include "base/base.h"

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);

static bool armed;
static long alloc_count; /* allocations since gw_oom_arm */
static long fail_at;     /* 1-based; 0: none */
static bool fail_after;  /* gw_oom_arm_from: fail_at and all after it */
static int paused;

void gw_oom_arm(long n)
{
    alloc_count = 0;
    fail_at = n;
    fail_after = false;
    paused = 0;
    armed = true;
}

void gw_oom_arm_from(long n)
{
    gw_oom_arm(n);
    fail_after = true;
}

void gw_oom_pause(void) { paused++; }
void gw_oom_resume(void) { paused--; }

long gw_oom_disarm(void)
{
    armed = false;
    return alloc_count;
}

long gw_oom_count(void) { return alloc_count; }

bool gw_oom_hit(void) { return fail_at > 0 && alloc_count >= fail_at; }

bool gw_oom_next_fails(void)
{
    if (!armed || paused)
        return false;
    ++alloc_count;
    return fail_at > 0 && (alloc_count == fail_at || (fail_after && alloc_count > fail_at));
}

void *__wrap_malloc(size_t n) { return gw_oom_next_fails() ? NULL : __real_malloc(n); }

void *__wrap_calloc(size_t k, size_t n)
{
    return gw_oom_next_fails() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
    return gw_oom_next_fails() ? NULL : __real_realloc(p, n);
}

long gw_oom_sweep(const char *name, void (*run)(void *ctx, long fail_at), void *ctx)
{
    run(ctx, 0);
    long total = alloc_count;
    printf("%s: %ld allocations, each failed in turn\n", name, total);
    fflush(stdout);
    for (long k = 1; k <= total; k++)
        run(ctx, k);
    return total;
}

typedef struct check_ctx {
    const char *name;
    int (*scenario)(void);
    bool enomem_if_hit;
    char *failure; /* NULL until a run went wrong */
} check_ctx;

static void check_run(void *arg, long k)
{
    static char msg[256];
    check_ctx *c = arg;
    gw_oom_arm(k);
    int rc = c->scenario();
    gw_oom_disarm();
    if (c->failure)
        return;
    if (k == 0 && rc != 0)
        snprintf(msg, sizeof msg, "%s: fails without injection: %d (%s)", c->name, rc,
                 gw_err_str(rc));
    else if (k > 0 && rc != 0 && rc != GW_ENOMEM)
        snprintf(msg, sizeof msg, "%s: allocation %ld failed: got %d (%s), want GW_ENOMEM",
                 c->name, k, rc, gw_err_str(rc));
    else if (k > 0 && rc == 0 && c->enomem_if_hit && gw_oom_hit())
        snprintf(msg, sizeof msg, "%s: allocation %ld failed but the call succeeded", c->name,
                 k);
    else
        return;
    c->failure = msg;
}

const char *gw_oom_check(const char *name, int (*scenario)(void), bool enomem_if_hit)
{
    static char msg[256];
    check_ctx c = {name, scenario, enomem_if_hit, NULL};
    if (gw_oom_sweep(name, check_run, &c) == 0 && !c.failure) {
        snprintf(msg, sizeof msg, "%s: no allocation to fail", name);
        return msg;
    }
    return c.failure;
}
