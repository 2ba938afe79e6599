/*
 * loop — one event loop per worker thread: epoll for file descriptors, a
 * binary heap of monotonic timers, an eventfd for wake-ups from other
 * threads, deferred callbacks that run after the current batch of events,
 * and prepare hooks that run before each wait.
 *
 * Nothing here is global; a loop is used by the one thread that runs it,
 * except gw_loop_wakeup, which any thread may call.
 *
 * Lifecycle contract: handles (gw_io, gw_timer, gw_defer, gw_hook) are
 * embedded in their owner's struct and stay registered until removed or
 * stopped; removing one from inside any callback is allowed, including its
 * own. A callback never runs for a handle after it was removed.
 */
#ifndef GW_LOOP_H
#define GW_LOOP_H

#include "base/base.h"

typedef struct gw_loop gw_loop;

/* Monotonic clock in nanoseconds. */
uint64_t gw_now_ns(void);
#define GW_MS (1000000ull)
#define GW_SEC (1000000000ull)

/* ---- file descriptors -------------------------------------------------- */
enum {
    GW_IO_READ = 1u << 0,
    GW_IO_WRITE = 1u << 1,
    GW_IO_RDHUP = 1u << 2,  /* peer closed its side (EPOLLRDHUP) */
    GW_IO_ERROR = 1u << 3,  /* reported, never requested: EPOLLERR/EPOLLHUP */
    GW_IO_EDGE = 1u << 4,   /* request edge-triggered mode */
};
typedef void (*gw_io_cb)(void *owner, uint32_t events);
typedef struct gw_io {
    int fd;
    uint32_t events;
    gw_io_cb cb;
    void *owner;
    bool active;
} gw_io;

/* Watches fd. Returns 0 or GW_EIO (epoll_ctl failed). */
int gw_loop_io_add(gw_loop *l, gw_io *io, int fd, uint32_t events, gw_io_cb cb,
                   void *owner);
int gw_loop_io_modify(gw_loop *l, gw_io *io, uint32_t events);
/* Stops watching; safe on an inactive handle. Does not close fd. */
void gw_loop_io_remove(gw_loop *l, gw_io *io);

/* ---- timers ------------------------------------------------------------ */
typedef void (*gw_timer_cb)(void *owner);
typedef struct gw_timer {
    uint64_t deadline_ns;  /* absolute, gw_now_ns() clock */
    size_t heap_index;     /* private; SIZE_MAX when not armed */
    gw_timer_cb cb;
    void *owner;
} gw_timer;

void gw_timer_init(gw_timer *t, gw_timer_cb cb, void *owner);
/* Arms (or re-arms) t to fire once at deadline_ns. Returns 0 or GW_ENOMEM. */
int gw_loop_timer_start(gw_loop *l, gw_timer *t, uint64_t deadline_ns);
void gw_loop_timer_stop(gw_loop *l, gw_timer *t);
static inline bool gw_timer_armed(const gw_timer *t) { return t->heap_index != (size_t)-1; }

/* ---- deferred callbacks -------------------------------------------------- */
/* Runs once, after the current batch of I/O events and timers, in the loop
 * thread. Deferring an already pending handle does nothing. Callbacks
 * deferred from a deferred callback run in the same turn. */
typedef void (*gw_defer_cb)(void *owner);
typedef struct gw_defer {
    struct gw_defer *next;
    gw_defer_cb cb;
    void *owner;
    bool pending;
} gw_defer;

void gw_defer_init(gw_defer *d, gw_defer_cb cb, void *owner);
void gw_loop_defer(gw_loop *l, gw_defer *d);
void gw_loop_defer_cancel(gw_loop *l, gw_defer *d);

/* ---- prepare hooks ------------------------------------------------------- */
/* Called before every wait; returns the longest the loop may sleep in ms
 * (-1: no limit from this hook). Used by libmicrohttpd's timeout. */
typedef int (*gw_hook_cb)(void *owner);
typedef struct gw_hook {
    struct gw_hook *next;
    gw_hook_cb cb;
    void *owner;
    bool active;
} gw_hook;

void gw_loop_hook_add(gw_loop *l, gw_hook *h, gw_hook_cb cb, void *owner);
void gw_loop_hook_remove(gw_loop *l, gw_hook *h);

/* ---- the loop -------------------------------------------------------------- */
/* Returns NULL on failure (errno set). */
gw_loop *gw_loop_new(void);
/* The loop must have no active handles left that will be touched later. */
void gw_loop_del(gw_loop *l);
/* Waits at most timeout_ms (-1: until something happens), then runs ready
 * I/O callbacks, expired timers, and deferred callbacks, in that order.
 * Returns 0 or GW_EIO. */
int gw_loop_run_once(gw_loop *l, int timeout_ms);
/* Runs until gw_loop_stop. Returns 0 or GW_EIO. */
int gw_loop_run(gw_loop *l);
/* Makes gw_loop_run return after the current turn (loop thread only). */
void gw_loop_stop(gw_loop *l);
/* Wakes the loop from another thread; cb runs in the loop thread after the
 * wake-up (set once with gw_loop_set_wakeup_cb; may be NULL). */
void gw_loop_wakeup(gw_loop *l);
void gw_loop_set_wakeup_cb(gw_loop *l, gw_defer_cb cb, void *owner);
/* The time at the start of the current turn (cheap; use for deadlines). */
uint64_t gw_loop_now(const gw_loop *l);
/* True while gw_loop_run_once runs callbacks. An owner deleting a handle's
 * memory then must defer the free (the batch may still name the handle;
 * a callback deferred now runs before this turn ends); between turns
 * nothing of the loop refers to a removed handle, so it may free at once
 * (e.g. teardown after gw_loop_run returned, before gw_loop_del). */
bool gw_loop_in_turn(const gw_loop *l);

#endif
