/*
 * Name resolution off the loop, shared by lone backends (upstream.c) and
 * clusters (cluster.c). See internal.h for the contract and
 * docs/upstream.md ("How names are resolved") for the choices.
 *
 * Ownership. A job is shared by two parties, each holding one reference:
 * the resolver thread and the watch (the loop side). The job owns copies
 * of the names and the eventfd the thread signals, so either party may
 * drop its reference first and the last one frees it: a backend deleted
 * while getaddrinfo is still waiting for a slow DNS server returns at
 * once, and the thread frees the job when the resolver comes back. The
 * gw_io that watches the eventfd is in the watch (in its owner's struct),
 * never in the job: the thread may free the job at any moment, while the
 * loop may still hold an event for that gw_io in its current batch.
 */
#include "upstream/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_MAX_ADDRS 64u

struct gw_dns_job {
    atomic_int refs;           /* the thread's and the watch's */
    atomic_bool finished;      /* answers are complete (release/acquire) */
    int efd;
    gw_resolve_fn fn;
    void *fn_ctx;
    size_t n, max;
    char **hosts;              /* copies; NULL entries are skipped */
    char **ports;
    gw_dns_answer *ans;
};

static atomic_size_t jobs_alive;

size_t gw_dns_jobs_alive(void) { return atomic_load(&jobs_alive); }

/* ---- IP literals ------------------------------------------------------------------- */

bool gw_dns_is_ip_literal(const char *host, size_t *addr_len)
{
    char text[INET6_ADDRSTRLEN];
    unsigned char bin[sizeof(struct in6_addr)];
    const char *zone = strchr(host, '%');
    size_t len = zone ? (size_t)(zone - host) : strlen(host);
    if (len == 0 || len >= sizeof text)
        return false;
    memcpy(text, host, len);
    text[len] = 0;
    if (inet_pton(AF_INET6, text, bin) != 1 && (zone || inet_pton(AF_INET, text, bin) != 1))
        return false; /* a zone belongs to IPv6 addresses only */
    if (zone) {
        size_t zl = strlen(zone + 1);
        if (zl == 0 || zl >= IF_NAMESIZE)
            return false;
        for (const char *p = zone + 1; *p; p++)
            if ((unsigned char)*p <= ' ' || *p == 0x7f || strchr("%/[]", *p))
                return false;
    }
    if (addr_len)
        *addr_len = len;
    return true;
}

/* ---- the default resolver ------------------------------------------------------ */

int gw_dns_getaddrinfo(void *ctx, const char *host, const char *port, char **addrs, size_t max,
                       size_t *n, gw_error *e)
{
    (void)ctx;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    *n = 0;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        int rc = g == EAI_MEMORY ? GW_ENOMEM : g == EAI_SYSTEM ? GW_EIO : GW_ENOTFOUND;
        return gw_error_set(e, rc, "%s", g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
    }
    int rc = 0;
    for (struct addrinfo *a = res; a && *n < max; a = a->ai_next) {
        char text[INET6_ADDRSTRLEN];
        const void *src = a->ai_family == AF_INET
                              ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
        if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
            !inet_ntop(a->ai_family, src, text, sizeof text))
            continue;
        bool dup = false;
        for (size_t i = 0; i < *n; i++)
            dup = dup || strcmp(addrs[i], text) == 0;
        if (dup)
            continue;
        addrs[*n] = strdup(text);
        if (!addrs[*n]) {
            rc = gw_error_set(e, GW_ENOMEM, "out of memory");
            break;
        }
        (*n)++;
    }
    freeaddrinfo(res);
    return rc;
}

/* ---- answers -------------------------------------------------------------------- */

gw_dns_answer *gw_dns_answers_new(size_t n)
{
    return calloc(n ? n : 1, sizeof(gw_dns_answer));
}

void gw_dns_answers_free(gw_dns_answer *ans, size_t n)
{
    if (!ans)
        return;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; ans[i].addrs && j < ans[i].count; j++)
            free(ans[i].addrs[j]);
        free(ans[i].addrs);
    }
    free(ans);
}

gw_dns_answer *gw_dns_answers_copy(const gw_dns_answer *from, size_t n)
{
    gw_dns_answer *ans = gw_dns_answers_new(n);
    if (!ans)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        ans[i].rc = from[i].rc;
        memcpy(ans[i].why, from[i].why, sizeof ans[i].why);
        if (!from[i].addrs)
            continue;
        ans[i].addrs = calloc(from[i].count + 1, sizeof(char *));
        if (!ans[i].addrs)
            goto oom;
        for (size_t j = 0; j < from[i].count; j++) {
            ans[i].addrs[j] = strdup(from[i].addrs[j]);
            if (!ans[i].addrs[j])
                goto oom;
            ans[i].count = j + 1;
        }
    }
    return ans;
oom:
    gw_dns_answers_free(ans, n);
    return NULL;
}

void gw_dns_resolve(gw_resolve_fn fn, void *ctx, const char *const *hosts,
                    const char *const *ports, size_t n, size_t max, gw_dns_answer *ans)
{
    if (!fn)
        fn = gw_dns_getaddrinfo;
    if (!max)
        max = DEFAULT_MAX_ADDRS;
    for (size_t i = 0; i < n; i++) {
        if (!hosts[i])
            continue;
        ans[i].addrs = calloc(max, sizeof(char *));
        if (!ans[i].addrs) {
            ans[i].rc = GW_ENOMEM;
            snprintf(ans[i].why, sizeof ans[i].why, "out of memory");
            continue;
        }
        gw_error e;
        gw_error_clear(&e);
        size_t got = 0;
        int rc = fn(ctx, hosts[i], ports[i], ans[i].addrs, max, &got, &e);
        ans[i].count = GW_MIN(got, max);
        ans[i].rc = rc;
        if (rc != 0)
            snprintf(ans[i].why, sizeof ans[i].why, "%s", e.msg[0] ? e.msg : gw_err_str(rc));
        else if (ans[i].count == 0)
            snprintf(ans[i].why, sizeof ans[i].why, "no address");
    }
}

/* ---- jobs ------------------------------------------------------------------------ */

static void job_free(gw_dns_job *j)
{
    for (size_t i = 0; j->hosts && i < j->n; i++) {
        free(j->hosts[i]);
        free(j->ports[i]);
    }
    free(j->hosts);
    free(j->ports);
    gw_dns_answers_free(j->ans, j->n);
    if (j->efd >= 0)
        close(j->efd);
    free(j);
    atomic_fetch_sub(&jobs_alive, 1);
}

static void job_unref(gw_dns_job *j)
{
    if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) == 1)
        job_free(j);
}

static void *job_thread(void *arg)
{
    gw_dns_job *j = arg;
    gw_dns_resolve(j->fn, j->fn_ctx, (const char *const *)j->hosts, (const char *const *)j->ports,
                   j->n, j->max, j->ans);
    atomic_store_explicit(&j->finished, true, memory_order_release);
    uint64_t one = 1;
    ssize_t w = write(j->efd, &one, sizeof one);
    (void)w; /* an eventfd counter cannot overflow from one write */
    job_unref(j);
    return NULL;
}

void gw_dns_watch_init(gw_dns_watch *w, gw_loop *loop, gw_dns_done_fn done, void *owner)
{
    memset(w, 0, sizeof *w);
    w->loop = loop;
    w->done = done;
    w->owner = owner;
}

static void watch_on_io(void *arg, uint32_t events)
{
    gw_dns_watch *w = arg;
    gw_dns_job *j = w->job;
    (void)events;
    uint64_t v;
    ssize_t r = read(j->efd, &v, sizeof v);
    (void)r;
    if (!atomic_load_explicit(&j->finished, memory_order_acquire))
        return;
    gw_loop_io_remove(w->loop, &w->io);
    w->job = NULL;
    /* The owner may stop, restart or free the watch from done (the memory
     * of its struct lives to the end of the batch, as loop.h asks): touch
     * only the job after it. */
    w->done(w->owner, j->ans, j->n);
    job_unref(j);
}

int gw_dns_watch_start(gw_dns_watch *w, gw_resolve_fn fn, void *ctx, const char *const *hosts,
                       const char *const *ports, size_t n, size_t max)
{
    if (w->job)
        return GW_ESTATE;
    gw_dns_job *j = calloc(1, sizeof *j);
    if (!j)
        return GW_ENOMEM;
    atomic_fetch_add(&jobs_alive, 1);
    atomic_init(&j->refs, 1);
    atomic_init(&j->finished, false);
    j->efd = -1;
    j->fn = fn;
    j->fn_ctx = ctx;
    j->n = n;
    j->max = max;
    j->hosts = calloc(n ? n : 1, sizeof *j->hosts);
    j->ports = calloc(n ? n : 1, sizeof *j->ports);
    j->ans = gw_dns_answers_new(n);
    if (!j->hosts || !j->ports || !j->ans)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        if (!hosts[i])
            continue;
        j->hosts[i] = strdup(hosts[i]);
        j->ports[i] = strdup(ports[i]);
        if (!j->hosts[i] || !j->ports[i])
            goto oom;
    }
    j->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (j->efd < 0 || gw_loop_io_add(w->loop, &w->io, j->efd, GW_IO_READ, watch_on_io, w) != 0) {
        job_free(j);
        return GW_EIO;
    }
    /* The thread takes every signal blocked: they belong to the threads the
     * server chose for them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_t attr;
    int prc = pthread_attr_init(&attr);
    if (prc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        atomic_store(&j->refs, 2);
        pthread_t t;
        prc = pthread_create(&t, &attr, job_thread, j);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
    }
    if (prc != 0) {
        gw_loop_io_remove(w->loop, &w->io);
        job_free(j);
        return GW_EIO;
    }
    w->job = j;
    return 0;
oom:
    job_free(j);
    return GW_ENOMEM;
}

void gw_dns_watch_stop(gw_dns_watch *w)
{
    if (!w->job)
        return;
    gw_loop_io_remove(w->loop, &w->io);
    gw_dns_job *j = w->job;
    w->job = NULL;
    job_unref(j);
}
