#include "loop/loop.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define NOT_ARMED ((size_t)-1)

struct gw_loop {
    int epfd;
    int wakefd;
    gw_io wake_io;
    gw_defer_cb wake_cb;
    void *wake_owner;
    gw_timer **heap;
    size_t heap_len;
    size_t heap_cap;
    gw_defer *defer_head;
    gw_defer *defer_tail;
    gw_hook *hooks;
    uint64_t now;
    bool stopping;
    bool in_turn;          /* gw_loop_run_once is running callbacks */
};

uint64_t gw_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * GW_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t gw_loop_now(const gw_loop *l) { return l->now; }

bool gw_loop_in_turn(const gw_loop *l) { return l->in_turn; }

/* ---- I/O -------------------------------------------------------------- */

static uint32_t to_epoll(uint32_t ev)
{
    uint32_t e = 0;
    if (ev & GW_IO_READ) e |= EPOLLIN;
    if (ev & GW_IO_WRITE) e |= EPOLLOUT;
    if (ev & GW_IO_RDHUP) e |= EPOLLRDHUP;
    if (ev & GW_IO_EDGE) e |= EPOLLET;
    return e;
}

static uint32_t from_epoll(uint32_t e)
{
    uint32_t ev = 0;
    if (e & EPOLLIN) ev |= GW_IO_READ;
    if (e & EPOLLOUT) ev |= GW_IO_WRITE;
    if (e & EPOLLRDHUP) ev |= GW_IO_RDHUP;
    if (e & (EPOLLERR | EPOLLHUP)) ev |= GW_IO_ERROR;
    return ev;
}

int gw_loop_io_add(gw_loop *l, gw_io *io, int fd, uint32_t events, gw_io_cb cb, void *owner)
{
    io->fd = fd;
    io->events = events;
    io->cb = cb;
    io->owner = owner;
    struct epoll_event ee = {.events = to_epoll(events), .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ee) < 0) {
        io->active = false;
        return GW_EIO;
    }
    io->active = true;
    return 0;
}

int gw_loop_io_modify(gw_loop *l, gw_io *io, uint32_t events)
{
    if (!io->active)
        return GW_ESTATE;
    if (events == io->events)
        return 0;
    struct epoll_event ee = {.events = to_epoll(events), .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ee) < 0)
        return GW_EIO;
    io->events = events;
    return 0;
}

void gw_loop_io_remove(gw_loop *l, gw_io *io)
{
    if (!io->active)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->active = false;
}

/* ---- timers: a binary min-heap on deadline -------------------------------- */

void gw_timer_init(gw_timer *t, gw_timer_cb cb, void *owner)
{
    t->deadline_ns = 0;
    t->heap_index = NOT_ARMED;
    t->cb = cb;
    t->owner = owner;
}

static void heap_set(gw_loop *l, size_t i, gw_timer *t)
{
    l->heap[i] = t;
    t->heap_index = i;
}

static void heap_up(gw_loop *l, size_t i)
{
    gw_timer *t = l->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (l->heap[parent]->deadline_ns <= t->deadline_ns)
            break;
        heap_set(l, i, l->heap[parent]);
        i = parent;
    }
    heap_set(l, i, t);
}

static void heap_down(gw_loop *l, size_t i)
{
    gw_timer *t = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->heap_len)
            break;
        if (c + 1 < l->heap_len && l->heap[c + 1]->deadline_ns < l->heap[c]->deadline_ns)
            c++;
        if (t->deadline_ns <= l->heap[c]->deadline_ns)
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

void gw_loop_timer_stop(gw_loop *l, gw_timer *t)
{
    size_t i = t->heap_index;
    if (i == NOT_ARMED)
        return;
    t->heap_index = NOT_ARMED;
    l->heap_len--;
    if (i == l->heap_len)
        return;
    gw_timer *moved = l->heap[l->heap_len];
    heap_set(l, i, moved);
    heap_up(l, i);
    heap_down(l, moved->heap_index);
}

int gw_loop_timer_start(gw_loop *l, gw_timer *t, uint64_t deadline_ns)
{
    gw_loop_timer_stop(l, t);
    if (l->heap_len == l->heap_cap) {
        size_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
        gw_timer **h = realloc(l->heap, cap * sizeof *h);
        if (!h)
            return GW_ENOMEM;
        l->heap = h;
        l->heap_cap = cap;
    }
    t->deadline_ns = deadline_ns;
    heap_set(l, l->heap_len++, t);
    heap_up(l, t->heap_index);
    return 0;
}

/* ---- deferred callbacks and hooks ---------------------------------------- */

void gw_defer_init(gw_defer *d, gw_defer_cb cb, void *owner)
{
    d->next = NULL;
    d->cb = cb;
    d->owner = owner;
    d->pending = false;
}

void gw_loop_defer(gw_loop *l, gw_defer *d)
{
    if (d->pending)
        return;
    d->pending = true;
    d->next = NULL;
    if (l->defer_tail)
        l->defer_tail->next = d;
    else
        l->defer_head = d;
    l->defer_tail = d;
}

void gw_loop_defer_cancel(gw_loop *l, gw_defer *d)
{
    if (!d->pending)
        return;
    gw_defer **pp = &l->defer_head, *prev = NULL;
    while (*pp && *pp != d) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = d->next;
        if (l->defer_tail == d)
            l->defer_tail = prev;
    }
    d->pending = false;
    d->next = NULL;
}

static void run_deferred(gw_loop *l)
{
    while (l->defer_head) {
        gw_defer *d = l->defer_head;
        l->defer_head = d->next;
        if (!l->defer_head)
            l->defer_tail = NULL;
        d->next = NULL;
        d->pending = false;
        d->cb(d->owner);
    }
}

void gw_loop_hook_add(gw_loop *l, gw_hook *h, gw_hook_cb cb, void *owner)
{
    if (h->active)
        return;
    h->cb = cb;
    h->owner = owner;
    h->active = true;
    h->next = l->hooks;
    l->hooks = h;
}

void gw_loop_hook_remove(gw_loop *l, gw_hook *h)
{
    if (!h->active)
        return;
    for (gw_hook **pp = &l->hooks; *pp; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    }
    h->active = false;
    h->next = NULL;
}

/* ---- wake-ups ----------------------------------------------------------- */

static void on_wake(void *owner, uint32_t events)
{
    gw_loop *l = owner;
    uint64_t v;
    while (read(l->wakefd, &v, sizeof v) > 0) {
    }
    if (l->wake_cb)
        l->wake_cb(l->wake_owner);
}

void gw_loop_wakeup(gw_loop *l)
{
    uint64_t one = 1;
    ssize_t n = write(l->wakefd, &one, sizeof one);
    (void)n; /* EAGAIN means a wake-up is already pending */
}

void gw_loop_set_wakeup_cb(gw_loop *l, gw_defer_cb cb, void *owner)
{
    l->wake_cb = cb;
    l->wake_owner = owner;
}

/* ---- the loop ------------------------------------------------------------ */

gw_loop *gw_loop_new(void)
{
    gw_loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->wakefd < 0 ||
        gw_loop_io_add(l, &l->wake_io, l->wakefd, GW_IO_READ, on_wake, l) != 0) {
        int saved = errno;
        if (l->epfd >= 0) close(l->epfd);
        if (l->wakefd >= 0) close(l->wakefd);
        free(l);
        errno = saved;
        return NULL;
    }
    l->now = gw_now_ns();
    return l;
}

void gw_loop_del(gw_loop *l)
{
    if (!l)
        return;
    gw_loop_io_remove(l, &l->wake_io);
    close(l->wakefd);
    close(l->epfd);
    for (size_t i = 0; i < l->heap_len; i++)
        l->heap[i]->heap_index = NOT_ARMED;
    free(l->heap);
    free(l);
}

static int next_timeout(gw_loop *l, int timeout_ms)
{
    if (l->defer_head)
        return 0;
    for (gw_hook *h = l->hooks; h; h = h->next) {
        int t = h->cb(h->owner);
        if (t >= 0 && (timeout_ms < 0 || t < timeout_ms))
            timeout_ms = t;
    }
    if (l->heap_len) {
        uint64_t now = gw_now_ns();
        uint64_t d = l->heap[0]->deadline_ns;
        int t = d <= now ? 0 : (int)GW_MIN((d - now + GW_MS - 1) / GW_MS, (uint64_t)INT32_MAX);
        if (timeout_ms < 0 || t < timeout_ms)
            timeout_ms = t;
    }
    return timeout_ms;
}

int gw_loop_run_once(gw_loop *l, int timeout_ms)
{
    struct epoll_event events[MAX_EVENTS];
    int n = epoll_wait(l->epfd, events, MAX_EVENTS, next_timeout(l, timeout_ms));
    if (n < 0) {
        if (errno != EINTR)
            return GW_EIO;
        n = 0;
    }
    l->now = gw_now_ns();
    bool outer = l->in_turn;
    l->in_turn = true;
    /* A callback may remove a later handle of the same batch: handles mark
     * themselves inactive on removal, and the owner must not free the
     * handle's memory before the batch ends (defer the free). */
    for (int i = 0; i < n; i++) {
        gw_io *io = events[i].data.ptr;
        if (io->active)
            io->cb(io->owner, from_epoll(events[i].events));
    }
    while (l->heap_len && l->heap[0]->deadline_ns <= l->now) {
        gw_timer *t = l->heap[0];
        gw_loop_timer_stop(l, t);
        t->cb(t->owner);
    }
    run_deferred(l);
    l->in_turn = outer;
    return 0;
}

int gw_loop_run(gw_loop *l)
{
    l->stopping = false;
    while (!l->stopping) {
        int rc = gw_loop_run_once(l, -1);
        if (rc)
            return rc;
    }
    return 0;
}

void gw_loop_stop(gw_loop *l) { l->stopping = true; }
