/*
 * Allocation-failure injection for unit tests (nghttp2's failmalloc habit,
 * STYLE.md): a test counts the allocations a scenario makes, then runs it
 * again once per allocation with that one failing.
 *
 * Linking oom_dep (tests/meson.build) wraps malloc, calloc and realloc at
 * link time (-Wl,--wrap), which reaches every call made by the gateway's
 * static libraries and by the test itself; shared libraries (protobuf-c,
 * jansson, libmicrohttpd) keep the real allocator. free is not wrapped.
 *
 * gw_oom_arm fails one allocation: the code under test must cope with that
 * one, and the allocations after it succeed again (so a fallback path that
 * allocates is exercised too); gw_oom_arm_from fails all from one on.
 */
#ifndef GW_TEST_OOM_H
#define GW_TEST_OOM_H

#include <stdbool.h>
#include <stddef.h>

/* The allocator underneath the wrap, for test code that must allocate
 * without being counted (a custom allocator handed to a shared library). */
void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);

/* Starts counting allocations from 0; the allocation numbered fail_at
 * (1-based) returns NULL. fail_at 0: none fails, only counting. */
void gw_oom_arm(long fail_at);
/* Like gw_oom_arm, but the allocation numbered fail_from and every one
 * after it fail: whether the last fallbacks hold when nothing can be
 * allocated any more. */
void gw_oom_arm_from(long fail_from);
/* Stops counting; returns the allocations seen since gw_oom_arm. */
long gw_oom_disarm(void);
/* Allocations seen since gw_oom_arm (while armed: so far). */
long gw_oom_count(void);
/* Whether the allocation chosen by gw_oom_arm was reached (and failed). */
bool gw_oom_hit(void);
/* Between pause and resume (they nest) allocations are neither counted nor
 * failed: for what the test records about a run while it is armed. */
void gw_oom_pause(void);
void gw_oom_resume(void);
/* Counts one allocation and says whether it is the one to fail: for an
 * allocator that does not go through malloc (json_set_alloc_funcs), which
 * then calls __real_malloc itself. */
bool gw_oom_next_fails(void);

/*
 * The sweep: calls run(ctx, 0) (run arms with gw_oom_arm(fail_at) around
 * what it tests and disarms after), takes the count of that run, then calls
 * run(ctx, k) for every k from 1 to that count. Prints "NAME: N
 * allocations, each failed in turn" and returns N (0: the counting run made
 * no allocation, which a test should treat as a failure).
 */
long gw_oom_sweep(const char *name, void (*run)(void *ctx, long fail_at), void *ctx);

/*
 * The sweep for a scenario that returns 0 or a negative gw_err: without
 * injection it must return 0 and allocate; with one allocation failing, 0
 * or GW_ENOMEM (with enomem_if_hit, GW_ENOMEM whenever the failing
 * allocation was reached: no fallback may hide it). Returns NULL if every
 * run did, else what went wrong first (a static string).
 */
const char *gw_oom_check(const char *name, int (*scenario)(void), bool enomem_if_hit);

#endif
