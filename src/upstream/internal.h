/*
 * Hooks between upstream.c and the modules built on it inside src/upstream
 * (cluster.c). Not part of the public API.
 */
#ifndef GW_UPSTREAM_INTERNAL_H
#define GW_UPSTREAM_INTERNAL_H

#include "upstream/upstream.h"

/*
 * A call observer sees how a call ended before its owner does, and may move
 * a call the backend could not even send (the backend is unreachable) to
 * another backend of the same loop: such a call never reached any server,
 * so starting it elsewhere is always safe. Used by clusters.
 */
typedef struct gw_ucall_observer {
    /* Runs just before the owner's on_complete (not after a cancel). */
    void (*on_done)(void *ctx, gw_backend *b, const gw_call_status *st);
    /* The call cannot be sent on `from`: return another backend (created
     * with the same options, on the same loop) to queue it there, or NULL
     * to let it fail with UNAVAILABLE. */
    gw_backend *(*redirect)(void *ctx, gw_backend *from);
} gw_ucall_observer;

/* Sets the observer of a call just started (obs is borrowed; both must
 * outlive the call). */
void gw_ucall_set_observer(gw_ucall *c, const gw_ucall_observer *obs, void *ctx);

/* An opaque pointer for the backend's owner (the cluster's endpoint). */
void gw_backend_set_user(gw_backend *b, void *user);
void *gw_backend_user(const gw_backend *b);
gw_loop *gw_backend_loop(const gw_backend *b);

/* Starts a call that completes at once (from the loop, as usual) with
 * UNAVAILABLE and `message`: a cluster with no endpoint up still honours
 * the gw_ucall_start contract. Validates params like gw_ucall_start and
 * returns the same errors. */
int gw_ucall_start_failed(gw_backend *b, const gw_ucall_params *p, const gw_ucall_handlers *h,
                          void *owner, const char *message, gw_ucall **out, gw_error *e);

/* Feeds one ServerReflectionResponse (msg) to a fresh reflection run on b
 * that has `due` answers outstanding and no call; returns 0 when the run
 * took it, else the error the run would end with (message in e). *files
 * gets the number of files kept. For the fuzz target and unit tests. */
int gw_reflect_feed_test(gw_backend *b, const uint8_t *msg, size_t len, size_t due,
                         size_t *files, gw_error *e);

/* ---------------------------------------------------------------------------
 * Name resolution off the loop (resolve.c), shared by lone backends and
 * clusters.
 */

/* Whether host (a URL's host, brackets removed) is an IP literal: IPv4 in
 * dotted-quad form or IPv6 text (RFC 4291), the latter optionally followed
 * by %zone (RFC 4007: an interface name or index, 1 to 15 characters, no
 * space, '%', '/' or brackets). Anything else, inet_aton shorthands such as
 * "127.1" included, is a name for the resolver. The one test lone backends
 * and clusters use to decide that a host needs no resolution; pure, asks
 * no name service. *addr_len (may be NULL) gets the length of the address
 * without its zone. */
bool gw_dns_is_ip_literal(const char *host, size_t *addr_len);

/* What a resolver said about one name. */
typedef struct gw_dns_answer {
    char **addrs;          /* malloc'ed numeric addresses ("10.0.0.1", "fd00::1") */
    size_t count;
    int rc;                /* 0 or the resolver's negative gw_err */
    char why[160];         /* rc != 0 or count == 0: the resolver's words */
} gw_dns_answer;

/* The default gw_resolve_fn: getaddrinfo (SOCK_STREAM, any family, in the
 * order returned, duplicates removed); e gets gai_strerror's text. */
int gw_dns_getaddrinfo(void *ctx, const char *host, const char *port, char **addrs, size_t max,
                       size_t *n, gw_error *e);

/* n zeroed answers (NULL when out of memory); freeing frees their
 * addresses too. */
gw_dns_answer *gw_dns_answers_new(size_t n);
void gw_dns_answers_free(gw_dns_answer *ans, size_t n);
gw_dns_answer *gw_dns_answers_copy(const gw_dns_answer *ans, size_t n);

/* Resolves hosts[i]:ports[i] into ans[i] for every i whose host is not
 * NULL, on the calling thread (it blocks). fn NULL: gw_dns_getaddrinfo;
 * max 0: 64 addresses per name. */
void gw_dns_resolve(gw_resolve_fn fn, void *ctx, const char *const *hosts,
                    const char *const *ports, size_t n, size_t max, gw_dns_answer *ans);

/*
 * The same on a short-lived detached thread, handed back on the loop. A
 * watch is embedded in its owner and used on the loop's thread only:
 * gw_dns_watch_start copies the names, starts the thread and watches its
 * eventfd; done(owner, answers, n) runs from the loop once the resolver
 * returned (answers valid during the callback only). gw_dns_watch_stop
 * abandons a resolution in flight: done never runs, and the thread frees
 * the job whenever the resolver returns, so the owner may be freed at
 * once. Only fn's ctx must outlive the thread (gw_dns_jobs_alive tells
 * when no thread is left).
 * gw_dns_watch_start returns 0, GW_ESTATE (already running), GW_EIO (no
 * eventfd or thread) or GW_ENOMEM; then done never runs.
 */
typedef void (*gw_dns_done_fn)(void *owner, const gw_dns_answer *ans, size_t n);
typedef struct gw_dns_job gw_dns_job;
typedef struct gw_dns_watch {
    gw_loop *loop;
    gw_io io;
    gw_dns_job *job;       /* non-NULL while a resolution is in flight */
    gw_dns_done_fn done;
    void *owner;
} gw_dns_watch;
void gw_dns_watch_init(gw_dns_watch *w, gw_loop *loop, gw_dns_done_fn done, void *owner);
int gw_dns_watch_start(gw_dns_watch *w, gw_resolve_fn fn, void *ctx, const char *const *hosts,
                       const char *const *ports, size_t n, size_t max);
void gw_dns_watch_stop(gw_dns_watch *w);
static inline bool gw_dns_watch_busy(const gw_dns_watch *w) { return w->job != NULL; }
/* Jobs not freed yet, in the whole process (their threads may still run):
 * tests wait for 0 before their resolver's ctx goes away. */
size_t gw_dns_jobs_alive(void);

#endif
