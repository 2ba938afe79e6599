/* Unit tests for src/loop: timer ordering, cancellation, deferred calls,
 * I/O readiness, removal from inside callbacks, cross-thread wake-ups. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop/loop.h"

typedef struct fired_log {
    int order[64];
    int n;
} fired_log;

typedef struct tctx {
    fired_log *log;
    int id;
    gw_loop *loop;
    gw_timer *other; /* stopped from inside this one's callback */
} tctx;

static void on_timer(void *owner)
{
    tctx *c = owner;
    c->log->order[c->log->n++] = c->id;
    if (c->other)
        gw_loop_timer_stop(c->loop, c->other);
}

static void test_timers_fire_in_deadline_order(void **state)
{
    gw_loop *l = gw_loop_new();
    assert_non_null(l);
    fired_log log = {0};
    /* Deadlines in a scrambled order; ids are the expected firing rank. */
    static const int rank_of_slot[] = {5, 2, 9, 0, 7, 3, 8, 1, 6, 4};
    gw_timer t[10];
    tctx c[10];
    uint64_t base = gw_now_ns();
    for (int i = 0; i < 10; i++) {
        c[i] = (tctx){.log = &log, .id = rank_of_slot[i], .loop = l};
        gw_timer_init(&t[i], on_timer, &c[i]);
        assert_int_equal(gw_loop_timer_start(l, &t[i], base + (uint64_t)rank_of_slot[i] * GW_MS), 0);
    }
    while (log.n < 10)
        assert_int_equal(gw_loop_run_once(l, 100), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(log.order[i], i);
    gw_loop_del(l);
}

static void test_timer_stop_and_restart(void **state)
{
    gw_loop *l = gw_loop_new();
    fired_log log = {0};
    gw_timer a, b, c;
    tctx ca = {.log = &log, .id = 1, .loop = l}, cb = {.log = &log, .id = 2, .loop = l},
         cc = {.log = &log, .id = 3, .loop = l};
    gw_timer_init(&a, on_timer, &ca);
    gw_timer_init(&b, on_timer, &cb);
    gw_timer_init(&c, on_timer, &cc);
    uint64_t now = gw_now_ns();
    gw_loop_timer_start(l, &a, now + 1 * GW_MS);
    gw_loop_timer_start(l, &b, now + 2 * GW_MS);
    gw_loop_timer_start(l, &c, now + 3 * GW_MS);
    assert_true(gw_timer_armed(&b));
    gw_loop_timer_stop(l, &b);
    assert_false(gw_timer_armed(&b));
    gw_loop_timer_stop(l, &b); /* stopping twice is harmless */
    /* a stops c from inside its callback: c must never fire. */
    ca.other = &c;
    /* re-arming moves a timer instead of adding it twice */
    gw_loop_timer_start(l, &a, now + 2 * GW_MS);
    uint64_t end = gw_now_ns() + 50 * GW_MS;
    while (gw_now_ns() < end)
        gw_loop_run_once(l, 5);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.order[0], 1);
    gw_loop_del(l);
}

static void test_many_timers_random_cancel(void **state)
{
    gw_loop *l = gw_loop_new();
    enum { N = 2000 };
    gw_timer *t = calloc(N, sizeof *t);
    tctx *c = calloc(N, sizeof *c);
    fired_log *logs = calloc(N, sizeof *logs);
    uint64_t now = gw_now_ns();
    unsigned seed = 12345;
    for (int i = 0; i < N; i++) {
        c[i] = (tctx){.log = &logs[i], .id = i, .loop = l};
        gw_timer_init(&t[i], on_timer, &c[i]);
        seed = seed * 1103515245u + 12345u;
        gw_loop_timer_start(l, &t[i], now + (seed >> 16) % 20 * GW_MS);
    }
    for (int i = 0; i < N; i += 3)
        gw_loop_timer_stop(l, &t[i]);
    uint64_t end = gw_now_ns() + 200 * GW_MS;
    int remaining = 1;
    while (remaining && gw_now_ns() < end) {
        gw_loop_run_once(l, 5);
        remaining = 0;
        for (int i = 0; i < N; i++)
            remaining += gw_timer_armed(&t[i]);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(logs[i].n, i % 3 == 0 ? 0 : 1);
    gw_loop_del(l);
    free(t);
    free(c);
    free(logs);
}

typedef struct dctx {
    gw_loop *loop;
    gw_defer *again;
    int count;
} dctx;

static void on_defer(void *owner)
{
    dctx *d = owner;
    d->count++;
    if (d->again) {
        gw_defer *again = d->again;
        d->again = NULL;
        gw_loop_defer(d->loop, again);
    }
}

static void test_defer(void **state)
{
    gw_loop *l = gw_loop_new();
    dctx a = {.loop = l}, b = {.loop = l};
    gw_defer da, db;
    gw_defer_init(&da, on_defer, &a);
    gw_defer_init(&db, on_defer, &b);
    gw_loop_defer(l, &da);
    gw_loop_defer(l, &da); /* already pending: once */
    a.again = &db;         /* deferred from a deferred callback: same turn */
    gw_loop_run_once(l, 0);
    assert_int_equal(a.count, 1);
    assert_int_equal(b.count, 1);
    gw_loop_defer(l, &da);
    gw_loop_defer_cancel(l, &da);
    gw_loop_run_once(l, 0);
    assert_int_equal(a.count, 1);
    gw_loop_del(l);
}

typedef struct ioctx {
    gw_loop *loop;
    gw_io io;
    gw_io *victim;
    int reads;
    uint32_t last;
} ioctx;

static void on_io(void *owner, uint32_t ev)
{
    ioctx *c = owner;
    c->reads++;
    c->last = ev;
    char buf[16];
    if (read(c->io.fd, buf, sizeof buf) <= 0)
        gw_loop_io_remove(c->loop, &c->io);
    if (c->victim)
        gw_loop_io_remove(c->loop, c->victim);
}

static void test_io_and_removal_in_batch(void **state)
{
    gw_loop *l = gw_loop_new();
    int p1[2], p2[2];
    assert_int_equal(pipe(p1), 0);
    assert_int_equal(pipe(p2), 0);
    ioctx a = {.loop = l}, b = {.loop = l};
    assert_int_equal(gw_loop_io_add(l, &a.io, p1[0], GW_IO_READ, on_io, &a), 0);
    assert_int_equal(gw_loop_io_add(l, &b.io, p2[0], GW_IO_READ, on_io, &b), 0);
    /* Both ready in one batch; whichever runs first removes the other. */
    a.victim = &b.io;
    b.victim = &a.io;
    assert_int_equal(write(p1[1], "x", 1), 1);
    assert_int_equal(write(p2[1], "y", 1), 1);
    gw_loop_run_once(l, 100);
    assert_int_equal(a.reads + b.reads, 1);
    assert_true((a.last | b.last) & GW_IO_READ);
    gw_loop_io_remove(l, &a.io);
    gw_loop_io_remove(l, &b.io);
    close(p1[0]);
    close(p1[1]);
    close(p2[0]);
    close(p2[1]);
    gw_loop_del(l);
}

typedef struct wctx {
    gw_loop *loop;
    int woken;
} wctx;

static void on_wakeup(void *owner)
{
    wctx *w = owner;
    w->woken++;
    gw_loop_stop(w->loop);
}

static void *waker(void *arg)
{
    usleep(10000);
    gw_loop_wakeup(arg);
    return NULL;
}

static void test_wakeup_from_thread(void **state)
{
    gw_loop *l = gw_loop_new();
    wctx w = {.loop = l};
    gw_loop_set_wakeup_cb(l, on_wakeup, &w);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, waker, l), 0);
    assert_int_equal(gw_loop_run(l), 0);
    pthread_join(th, NULL);
    assert_int_equal(w.woken, 1);
    gw_loop_del(l);
}

static int hook_cb(void *owner)
{
    (*(int *)owner)++;
    return 0;
}

static void test_hooks(void **state)
{
    gw_loop *l = gw_loop_new();
    int calls = 0;
    gw_hook h = {0};
    gw_loop_hook_add(l, &h, hook_cb, &calls);
    /* The hook caps the wait at 0 ms: run_once with an unbounded wait
     * still returns at once. */
    assert_int_equal(gw_loop_run_once(l, -1), 0);
    assert_int_equal(calls, 1);
    gw_loop_hook_remove(l, &h);
    assert_int_equal(gw_loop_run_once(l, 0), 0);
    assert_int_equal(calls, 1);
    gw_loop_del(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_fire_in_deadline_order),
        cmocka_unit_test(test_timer_stop_and_restart),
        cmocka_unit_test(test_many_timers_random_cancel),
        cmocka_unit_test(test_defer),
        cmocka_unit_test(test_io_and_removal_in_batch),
        cmocka_unit_test(test_wakeup_from_thread),
        cmocka_unit_test(test_hooks),
    };
    return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
