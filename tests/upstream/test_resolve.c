/* Unit tests for how a lone gw_backend resolves its host name: on a resolver
 * thread, never on the loop (a slow resolver does not stop timers or other
 * backends), failures named in the calls' messages, addresses cached until
 * a connection closes, the next address tried when one refuses, literals
 * and unix paths connected at once without a thread, and deletion while a
 * resolution is in flight. The only sockets are loopback ones this process
 * makes; the resolvers are injected (gw_backend_options.resolve), except
 * for "localhost", which goes through getaddrinfo and /etc/hosts. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "upstream/upstream.h"
#include "upstream/internal.h"
#include "eventfd_wait.h"

/* ---- helpers ------------------------------------------------------------ */

/* A listener on 127.0.0.1 only (so 127.0.0.2 on the same port refuses);
 * the kernel completes handshakes into its backlog. */
static int listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 64), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

static int closed_port(void)
{
    int port;
    int fd = listener(&port);
    close(fd);
    return port;
}

static bool readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

/* Accepts the waiting connection and sends an empty SETTINGS frame (the
 * server preface): the backend's connection becomes ready. */
static int accept_and_send_settings(int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    static const uint8_t settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    assert_int_equal(write(fd, settings, sizeof settings), (ssize_t)sizeof settings);
    return fd;
}

typedef struct rec {
    int completions;
    int code;
    char message[512];
    bool during_resolution;  /* completed while the slow resolver was busy */
} rec;

/* ---- the injected resolver ---------------------------------------------- */

/* Shared with resolver threads, which may outlive a test's backend: file
 * scope, and every test waits for gw_dns_jobs_alive() == 0 before the
 * next one resets it. */
typedef struct fake_dns {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned sleep_ms;       /* sleep this long before answering */
    bool hold;               /* or wait for fake_release (at most 10 s) */
    bool released;
    int rc;
    const char *why;
    const char *addrs[4];
    size_t n;
    /* After this many answers (-1: never) every lookup fails with
     * later_rc / later_why. */
    int answers_before_failing;
    int later_rc;
    const char *later_why;
    /* observed */
    int calls;
    int returned;
    bool in_flight;
    bool on_caller_thread;
    char host[64], port[16];
} fake_dns;

static fake_dns dns = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
static pthread_t test_thread;

static void fake_reset(int rc, const char *why, size_t n, const char *a0, const char *a1,
                       const char *a2)
{
    pthread_mutex_lock(&dns.mu);
    dns.sleep_ms = 0;
    dns.hold = false;
    dns.released = false;
    dns.rc = rc;
    dns.why = why;
    dns.n = n;
    dns.addrs[0] = a0;
    dns.addrs[1] = a1;
    dns.addrs[2] = a2;
    dns.answers_before_failing = -1;
    dns.later_rc = 0;
    dns.later_why = NULL;
    dns.calls = dns.returned = 0;
    dns.in_flight = dns.on_caller_thread = false;
    dns.host[0] = dns.port[0] = 0;
    pthread_mutex_unlock(&dns.mu);
}

static int fake_resolve(void *ctx, const char *host, const char *port, char **addrs, size_t max,
                        size_t *n, gw_error *e)
{
    fake_dns *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->calls++;
    f->in_flight = true;
    f->on_caller_thread = f->on_caller_thread || pthread_equal(pthread_self(), test_thread);
    snprintf(f->host, sizeof f->host, "%s", host);
    snprintf(f->port, sizeof f->port, "%s", port);
    if (f->sleep_ms) {
        unsigned ms = f->sleep_ms;
        pthread_mutex_unlock(&f->mu);
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        pthread_mutex_lock(&f->mu);
    }
    if (f->hold) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        while (!f->released && pthread_cond_timedwait(&f->cv, &f->mu, &until) == 0)
            ;
    }
    int rc = f->rc;
    const char *why = f->why;
    if (f->answers_before_failing >= 0 && f->returned >= f->answers_before_failing) {
        rc = f->later_rc;
        why = f->later_why;
    }
    *n = 0;
    if (rc != 0 && why)
        gw_error_set(e, rc, "%s", why);
    for (size_t i = 0; rc == 0 && i < f->n && i < max; i++) {
        addrs[i] = strdup(f->addrs[i]);
        (*n)++;
    }
    f->in_flight = false;
    f->returned++;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static void fake_release(void)
{
    pthread_mutex_lock(&dns.mu);
    dns.released = true;
    pthread_cond_broadcast(&dns.cv);
    pthread_mutex_unlock(&dns.mu);
}

static bool fake_in_flight(void)
{
    pthread_mutex_lock(&dns.mu);
    bool b = dns.in_flight;
    pthread_mutex_unlock(&dns.mu);
    return b;
}

static int fake_calls(void)
{
    pthread_mutex_lock(&dns.mu);
    int c = dns.calls;
    pthread_mutex_unlock(&dns.mu);
    return c;
}

/* Every resolver thread has finished and freed its job (bounded wait). */
static void wait_no_jobs(void)
{
    for (int i = 0; i < 2000 && gw_dns_jobs_alive() != 0; i++)
        usleep(5000);
    assert_int_equal(gw_dns_jobs_alive(), 0);
}

static void r_complete(void *owner, const gw_call_status *st)
{
    rec *r = owner;
    r->completions++;
    r->code = st->code;
    r->during_resolution = fake_in_flight();
    snprintf(r->message, sizeof r->message, "%s", st->message);
}

static const gw_ucall_handlers rh = {.on_complete = r_complete};

static gw_ucall *start(gw_backend *b, rec *r)
{
    gw_ucall_params p = {.path = "/s/m"};
    gw_ucall *c = NULL;
    gw_error e = {0};
    assert_int_equal(gw_ucall_start(b, &p, &rh, r, &c, &e), 0);
    return c;
}

static gw_backend *backend(gw_loop *l, const char *url, bool inject)
{
    gw_backend_options o;
    gw_backend_options_init(&o);
    if (inject) {
        o.resolve = fake_resolve;
        o.resolve_ctx = &dns;
    }
    gw_backend *b = NULL;
    gw_error e = {0};
    assert_int_equal(gw_backend_new(l, url, &o, &b, &e), 0);
    return b;
}

static gw_backend_stats stats(const gw_backend *b)
{
    gw_backend_stats s;
    gw_backend_get_stats(b, &s);
    return s;
}

typedef bool (*cond_fn)(void *);

static void spin_until(gw_loop *l, cond_fn done, void *arg, int max_ms)
{
    uint64_t end = gw_now_ns() + (uint64_t)max_ms * GW_MS;
    while (!done(arg) && gw_now_ns() < end)
        gw_loop_run_once(l, 10);
}

static bool one_resolution(void *b) { return stats(b).dns_resolutions >= 1; }
static bool two_resolutions(void *b) { return stats(b).dns_resolutions >= 2; }
static bool is_readable(void *fdp) { return readable(*(int *)fdp); }
static bool completed(void *r) { return ((rec *)r)->completions >= 1; }
static bool connected_once(void *b) { return stats(b).connects_ok >= 1; }
static bool connected_twice(void *b) { return stats(b).connects_ok >= 2; }
static bool resolver_entered(void *unused) { return fake_calls() >= 1; }

/* ---- a slow resolver does not stop the loop ------------------------------ */

typedef struct ticker {
    gw_loop *l;
    gw_timer t;
    gw_backend *slow;
    int ticks_during;        /* timer callbacks while the resolver was busy */
    uint64_t max_queued;     /* of the slow backend, seen meanwhile */
} ticker;

static void on_tick(void *arg)
{
    ticker *k = arg;
    if (fake_in_flight()) {
        k->ticks_during++;
        uint64_t q = stats(k->slow).queued_calls;
        if (q > k->max_queued)
            k->max_queued = q;
    }
    gw_loop_timer_start(k->l, &k->t, gw_loop_now(k->l) + 20 * GW_MS);
}

static void test_slow_resolver_keeps_loop_serving(void **state)
{
    (void)state;
    fake_reset(0, NULL, 1, "127.0.0.1", NULL, NULL);
    dns.sleep_ms = 2000;
    gw_loop *l = gw_loop_new();
    int port, lfd = listener(&port);
    char slow_url[64], other_url[64], want[160];
    snprintf(slow_url, sizeof slow_url, "http://slow.test:%d", port);
    snprintf(other_url, sizeof other_url, "http://127.0.0.1:%d", closed_port());
    gw_backend *slow = backend(l, slow_url, true);
    gw_backend *other = backend(l, other_url, false);
    ticker k = {.l = l, .slow = slow};
    gw_timer_init(&k.t, on_tick, &k);
    gw_loop_timer_start(l, &k.t, gw_now_ns() + 20 * GW_MS);

    rec a = {0}, b = {0};
    gw_ucall *ca = start(slow, &a);
    spin_until(l, resolver_entered, NULL, 5000);
    assert_int_equal(fake_calls(), 1);
    /* The other backend's whole connect attempt happens meanwhile. */
    start(other, &b);
    spin_until(l, one_resolution, slow, 20000);

    assert_int_equal(b.completions, 1);
    assert_true(b.during_resolution);
    assert_int_equal(b.code, GW_CODE_UNAVAILABLE);
    snprintf(want, sizeof want, "backend %s unreachable: connect: Connection refused", other_url);
    assert_string_equal(b.message, want);
    assert_true(k.ticks_during >= 1);
    assert_int_equal(k.max_queued, 1); /* the slow backend's call waited in its queue */
    assert_int_equal(a.completions, 0);
    assert_false(dns.on_caller_thread);
    assert_string_equal(dns.host, "slow.test");
    assert_int_equal(atoi(dns.port), port);

    /* Then it connects to what the resolver said. */
    spin_until(l, is_readable, &lfd, 10000);
    int sfd = accept_and_send_settings(lfd);
    spin_until(l, connected_once, slow, 10000);
    gw_backend_stats s = stats(slow);
    assert_int_equal(s.connects_ok, 1);
    assert_int_equal(s.dns_resolutions, 1);
    assert_int_equal(s.dns_failures, 0);
    gw_ucall_cancel(ca);
    gw_loop_timer_stop(l, &k.t);
    gw_backend_del(slow);
    gw_backend_del(other);
    gw_loop_del(l);
    close(sfd);
    close(lfd);
    wait_no_jobs();
}

/* ---- failed resolutions ------------------------------------------------------- */

static const struct {
    int rc;
    const char *why;          /* what the resolver says */
    size_t n;                 /* addresses it returns on success */
    const char *addr;
    const char *want;         /* the calls' message after "unreachable: " */
} failures[] = {
    {GW_ENOTFOUND, "Name or service not known", 0, NULL,
     "cannot resolve nowhere.test: Name or service not known"},
    {GW_EIO, NULL, 0, NULL, "cannot resolve nowhere.test: i/o error"},
    {0, NULL, 0, NULL, "cannot resolve nowhere.test: no address"},
    {0, NULL, 1, "not-an-address", "cannot resolve nowhere.test: the resolver returned no numeric address"},
};

static void test_resolver_failure(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(failures); i++) {
        fake_reset(failures[i].rc, failures[i].why, failures[i].n, failures[i].addr, NULL, NULL);
        gw_loop *l = gw_loop_new();
        gw_backend *b = backend(l, "http://nowhere.test:1", true);
        rec r[4] = {{0}};
        for (int j = 0; j < 3; j++)
            start(b, &r[j]);
        spin_until(l, completed, &r[2], 10000);
        char want[300];
        snprintf(want, sizeof want, "backend http://nowhere.test:1 unreachable: %s", failures[i].want);
        for (int j = 0; j < 3; j++) {
            assert_int_equal(r[j].completions, 1);
            assert_int_equal(r[j].code, GW_CODE_UNAVAILABLE);
            assert_string_equal(r[j].message, want);
        }
        gw_backend_stats s = stats(b);
        assert_int_equal(s.dns_resolutions, 1);
        assert_int_equal(s.dns_failures, 1);
        assert_int_equal(s.connects_ok, 0);
        /* The reconnect backoff applies: the next call fails at once with the
         * same reason, and nobody asks the resolver again. */
        assert_true(gw_backend_is_down(b));
        start(b, &r[3]);
        spin_until(l, completed, &r[3], 5000);
        assert_string_equal(r[3].message, want);
        assert_int_equal(fake_calls(), 1);
        gw_backend_del(b);
        gw_loop_del(l);
        wait_no_jobs();
    }
}

/* A resolver that does not answer is bounded by connect_timeout_ms, like
 * the rest of the attempt; its thread is abandoned and ends on its own. */
static void test_resolver_timeout(void **state)
{
    (void)state;
    fake_reset(0, NULL, 1, "127.0.0.1", NULL, NULL);
    dns.hold = true;
    gw_loop *l = gw_loop_new();
    gw_backend_options o;
    gw_backend_options_init(&o);
    o.resolve = fake_resolve;
    o.resolve_ctx = &dns;
    o.connect_timeout_ms = 200;
    gw_backend *b = NULL;
    assert_int_equal(gw_backend_new(l, "http://mute.test:1", &o, &b, NULL), 0);
    rec r = {0};
    start(b, &r);
    spin_until(l, completed, &r, 10000);
    assert_int_equal(r.code, GW_CODE_UNAVAILABLE);
    assert_string_equal(r.message,
                        "backend http://mute.test:1 unreachable: cannot resolve mute.test: "
                        "no answer within 200 ms");
    assert_true(r.during_resolution);
    gw_backend_stats s = stats(b);
    assert_int_equal(s.dns_resolutions, 0); /* abandoned, never completed */
    assert_true(gw_backend_is_down(b));
    gw_backend_del(b);
    gw_loop_del(l);
    fake_release();
    wait_no_jobs();
}

/* ---- cache, re-resolution, next address ----------------------------------------- */

static void test_cache_and_reresolve(void **state)
{
    (void)state;
    fake_reset(0, NULL, 1, "127.0.0.1", NULL, NULL);
    gw_loop *l = gw_loop_new();
    int port, lfd = listener(&port);
    char url[64];
    snprintf(url, sizeof url, "http://cache.test:%d", port);
    gw_backend *b = backend(l, url, true);
    rec r[4] = {{0}};
    start(b, &r[0]);
    spin_until(l, is_readable, &lfd, 10000);
    int sfd = accept_and_send_settings(lfd);
    spin_until(l, connected_once, b, 10000);
    /* More calls ride the same connection: no new resolution. */
    start(b, &r[1]);
    start(b, &r[2]);
    for (int i = 0; i < 5; i++)
        gw_loop_run_once(l, 10);
    gw_backend_stats s = stats(b);
    assert_int_equal(s.dns_resolutions, 1);
    assert_int_equal(s.connects_started, 1);
    assert_int_equal(fake_calls(), 1);
    /* The connection dies: the next connection asks the resolver again. */
    close(sfd);
    spin_until(l, completed, &r[2], 10000);
    assert_int_equal(r[2].code, GW_CODE_UNAVAILABLE);
    start(b, &r[3]);
    spin_until(l, two_resolutions, b, 10000);
    assert_int_equal(fake_calls(), 2);
    spin_until(l, is_readable, &lfd, 10000);
    sfd = accept_and_send_settings(lfd);
    spin_until(l, connected_twice, b, 10000);
    s = stats(b);
    assert_int_equal(s.connects_ok, 2);
    assert_int_equal(s.dns_resolutions, 2);
    assert_int_equal(r[3].completions, 0);
    gw_backend_del(b);
    assert_int_equal(r[3].completions, 1);
    gw_loop_del(l);
    close(sfd);
    close(lfd);
    wait_no_jobs();
}

static void test_next_address_after_refusal(void **state)
{
    (void)state;
    /* Something that is no address, one that refuses (nothing listens on
     * 127.0.0.2), then the live one. */
    fake_reset(0, NULL, 3, "bogus", "127.0.0.2", "127.0.0.1");
    gw_loop *l = gw_loop_new();
    int port, lfd = listener(&port);
    char url[64];
    snprintf(url, sizeof url, "http://two.test:%d", port);
    gw_backend *b = backend(l, url, true);
    rec r = {0};
    start(b, &r);
    spin_until(l, is_readable, &lfd, 10000);
    int sfd = accept_and_send_settings(lfd);
    spin_until(l, connected_once, b, 10000);
    gw_backend_stats s = stats(b);
    assert_int_equal(s.connects_started, 1); /* one attempt, moved on inside it */
    assert_int_equal(s.connects_ok, 1);
    assert_int_equal(r.completions, 0);
    gw_backend_del(b);
    gw_loop_del(l);
    close(sfd);
    close(lfd);
    wait_no_jobs();
}

/* ---- literals and unix paths: no resolver, no thread --------------------------- */

static void test_literals_connect_at_once(void **state)
{
    (void)state;
    fake_reset(0, NULL, 1, "127.0.0.1", NULL, NULL);
    int port = closed_port();
    char v4[64], v6[64];
    snprintf(v4, sizeof v4, "http://127.0.0.1:%d", port);
    snprintf(v6, sizeof v6, "http://[::1]:%d", port);
    const struct {
        const char *url;
        const char *want;    /* message prefix */
    } cases[] = {
        {v4, "unreachable: connect: Connection refused"},
        {v6, "unreachable: "},  /* refused, or no IPv6 on this machine */
        {"unix:/nonexistent/grpcgate-test.sock", "unreachable: connect: No such file or directory"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        gw_loop *l = gw_loop_new();
        gw_backend *b = backend(l, cases[i].url, true);
        rec r = {0};
        start(b, &r);
        /* One turn runs the deferred dispatch: the connect starts there. */
        gw_loop_run_once(l, 0);
        gw_backend_stats s = stats(b);
        assert_int_equal(s.connects_started, 1);
        assert_int_equal(gw_dns_jobs_alive(), 0);
        spin_until(l, completed, &r, 10000);
        char want[200];
        snprintf(want, sizeof want, "backend %s %s", cases[i].url, cases[i].want);
        assert_int_equal(r.code, GW_CODE_UNAVAILABLE);
        assert_memory_equal(r.message, want, strlen(want));
        s = stats(b);
        assert_int_equal(s.dns_resolutions, 0);
        assert_int_equal(fake_calls(), 0);
        gw_backend_del(b);
        gw_loop_del(l);
    }
}

/* ---- which hosts are IP literals ------------------------------------------------ */

/* gw_dns_is_ip_literal, the one test for "needs no resolver" that lone
 * backends and clusters share. */
static void test_ip_literal_table(void **state)
{
    (void)state;
    static const struct {
        const char *host;
        bool literal;
        size_t addr_len;     /* without the zone */
    } cases[] = {
        {"127.0.0.1", true, 9},
        {"0.0.0.0", true, 7},
        {"255.255.255.255", true, 15},
        {"::1", true, 3},
        {"::", true, 2},
        {"::ffff:192.0.2.1", true, 16},
        {"2001:db8::8:800:200c:417a", true, 25},
        {"fe80::1%lo", true, 7},
        {"fe80::1%eth0", true, 7},
        {"fe80::1%2", true, 7},
        {"fe80::1%0123456789abcde", true, 7},      /* 15 characters: IF_NAMESIZE - 1 */
        {"fe80::1%0123456789abcdef", false, 0},    /* 16 */
        {"fe80::1%", false, 0},                    /* empty zone */
        {"fe80::1%a%b", false, 0},
        {"fe80::1%a b", false, 0},
        {"fe80::1%a/64", false, 0},
        {"127.0.0.1%lo", false, 0},                /* zones are for IPv6 */
        {"%lo", false, 0},
        {"", false, 0},
        {"127.1", false, 0},                       /* inet_aton shorthands are names */
        {"0x7f.0.0.1", false, 0},
        {"256.0.0.1", false, 0},
        {"1.2.3.4.5", false, 0},
        {"1.2.3.4 ", false, 0},
        {"1::2::3", false, 0},
        {"[::1]", false, 0},                       /* the URL's brackets are gone by now */
        {"localhost", false, 0},
        {"svc.test", false, 0},
        {"0123456789abcdef0123456789abcdef0123456789abcdef::1", false, 0},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        size_t len = 999;
        bool got = gw_dns_is_ip_literal(cases[i].host, &len);
        if (got != cases[i].literal)
            fail_msg("case %zu '%s': %d, want %d", i, cases[i].host, got, cases[i].literal);
        if (got && len != cases[i].addr_len)
            fail_msg("case %zu '%s': length %zu, want %zu", i, cases[i].host, len,
                     cases[i].addr_len);
        assert_int_equal(gw_dns_is_ip_literal(cases[i].host, NULL), cases[i].literal);
    }
}

/* Lone backends and clusters follow that test: a literal never meets the
 * resolver, a name always does; a literal getaddrinfo cannot use is an
 * error at creation. */
static void test_ip_literal_backends(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        int rc;              /* gw_backend_new */
        bool asks;           /* the resolver is asked */
        const char *msg;
    } cases[] = {
        {"http://127.0.0.1:1", 0, false, NULL},
        {"http://[::1]:1", 0, false, NULL},
        {"http://[fe80::1%lo]:1", 0, false, NULL},
        {"http://127.1:1", 0, true, NULL},
        {"http://svc.test:1", 0, true, NULL},
        /* glibc takes a zone for link-local and multicast addresses only */
        {"http://[::1%lo]:1", GW_EINVAL, false,
         "backend URL http://[::1%lo]:1: cannot use address ::1%lo (its zone names no "
         "interface, or the address takes none)"},
        {"http://[fe80::1%nosuch0]:1", GW_EINVAL, false,
         "backend URL http://[fe80::1%nosuch0]:1: cannot use address fe80::1%nosuch0 (its zone "
         "names no interface, or the address takes none)"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        fake_reset(GW_ENOTFOUND, "no such name", 0, NULL, NULL, NULL);
        gw_loop *l = gw_loop_new();
        gw_backend_options o;
        gw_backend_options_init(&o);
        o.resolve = fake_resolve;
        o.resolve_ctx = &dns;
        gw_backend *b = NULL;
        gw_error e = {0};
        int rc = gw_backend_new(l, cases[i].url, &o, &b, &e);
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d, want %d (%s)", cases[i].url, rc, cases[i].rc, e.msg);
        if (rc) {
            assert_string_equal(e.msg, cases[i].msg);
        } else {
            rec r = {0};
            start(b, &r);
            gw_loop_run_once(l, 0); /* dispatch: connect or resolve */
            if (cases[i].asks)
                spin_until(l, resolver_entered, NULL, 5000);
            if (fake_calls() != (cases[i].asks ? 1 : 0))
                fail_msg("%s: the resolver was asked %d times", cases[i].url, fake_calls());
            gw_backend_del(b);
        }
        gw_loop_del(l);
        wait_no_jobs();
        /* A cluster resolves its names when it is made (blocking). It
         * leaves bracketed hosts to the backend, so only the others. */
        if (strchr(cases[i].url, '[') || cases[i].rc)
            continue;
        fake_reset(GW_ENOTFOUND, "no such name", 0, NULL, NULL, NULL);
        l = gw_loop_new();
        gw_cluster_options co;
        gw_cluster_options_init(&co);
        co.dns_refresh_ms = 0;
        co.resolve = fake_resolve;
        co.resolve_ctx = &dns;
        gw_cluster *c = NULL;
        assert_int_equal(gw_cluster_new(l, "lit", &cases[i].url, 1, &co, &c, &e), 0);
        if (fake_calls() != (cases[i].asks ? 1 : 0))
            fail_msg("cluster %s: the resolver was asked %d times", cases[i].url, fake_calls());
        gw_cluster_del(c);
        gw_loop_del(l);
    }
}

/* ---- deletion while a resolution is in flight ----------------------------------- */

static void test_del_during_resolution(void **state)
{
    (void)state;
    fake_reset(0, NULL, 1, "127.0.0.1", NULL, NULL);
    dns.hold = true;
    gw_loop *l = gw_loop_new();
    gw_backend *b = backend(l, "http://held.test:1", true);
    rec r[3] = {{0}};
    for (int i = 0; i < 3; i++)
        start(b, &r[i]);
    spin_until(l, resolver_entered, NULL, 5000);
    assert_true(fake_in_flight());
    gw_backend_del(b);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].completions, 1);
        assert_int_equal(r[i].code, GW_CODE_UNAVAILABLE);
        assert_string_equal(r[i].message, "backend http://held.test:1 is shutting down");
    }
    gw_loop_del(l);
    /* The thread still holds its job; it frees it when the resolver returns. */
    assert_int_equal(gw_dns_jobs_alive(), 1);
    fake_release();
    wait_no_jobs();
    assert_int_equal(dns.returned, 1);
}

/* The resolver has answered but the loop has not taken the answer yet. */
static void test_del_with_answer_pending(void **state)
{
    (void)state;
    fake_reset(0, NULL, 1, "127.0.0.1", NULL, NULL);
    gw_loop *l = gw_loop_new();
    gw_backend *b = backend(l, "http://done.test:1", true);
    rec r = {0};
    start(b, &r);
    gw_loop_run_once(l, 0); /* dispatch: the resolution starts */
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&dns.mu);
        int returned = dns.returned;
        pthread_mutex_unlock(&dns.mu);
        if (returned)
            break;
        usleep(5000);
    }
    assert_int_equal(dns.returned, 1);
    gw_backend_del(b);
    assert_int_equal(r.completions, 1);
    gw_loop_del(l);
    wait_no_jobs();
}

/* The backend is deleted from an I/O callback of the batch that also holds
 * the resolver's eventfd event for its connection: that gw_io lives in the
 * connection (conn->dns), which must stay allocated until the batch ends
 * (ASan: heap-use-after-free otherwise) and be freed in the same turn
 * (LeakSanitizer otherwise: no turn follows). */
typedef struct deleter {
    gw_loop *l;
    gw_io io;
    int efd;
    gw_backend *b;
    int runs;
} deleter;

static void deleter_on_io(void *arg, uint32_t events)
{
    deleter *d = arg;
    (void)events;
    uint64_t v;
    assert_int_equal(read(d->efd, &v, sizeof v), (ssize_t)sizeof v);
    gw_loop_io_remove(d->l, &d->io);
    gw_backend_del(d->b);
    d->b = NULL;
    d->runs++;
}

static void test_del_inside_batch_with_answer(void **state)
{
    (void)state;
    fake_reset(0, NULL, 1, "127.0.0.1", NULL, NULL);
    gw_loop *l = gw_loop_new();
    gw_backend *b = backend(l, "http://batch.test:1", true);
    deleter d = {.l = l, .b = b, .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
    assert_true(d.efd >= 0);
    assert_int_equal(gw_loop_io_add(l, &d.io, d.efd, GW_IO_READ, deleter_on_io, &d), 0);
    rec r = {0};
    start(b, &r);
    dns.hold = true;
    gw_loop_run_once(l, 0); /* dispatch: the resolution starts and waits */
    spin_until(l, resolver_entered, NULL, 5000);
    /* The deleter is ready first, then the resolver answers. */
    uint64_t one = 1;
    assert_int_equal(write(d.efd, &one, sizeof one), (ssize_t)sizeof one);
    fake_release();
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&dns.mu);
        int returned = dns.returned;
        pthread_mutex_unlock(&dns.mu);
        if (returned)
            break;
        usleep(5000);
    }
    /* The thread signals its eventfd just after: wait for that (not a fixed
     * sleep), so that the deleter's and the job's events share one batch. */
    assert_true(wait_signalled_eventfd(d.efd, 20000));
    assert_int_equal(gw_loop_run_once(l, 1000), 0);
    assert_int_equal(d.runs, 1);
    assert_int_equal(r.completions, 1);
    assert_int_equal(r.code, GW_CODE_UNAVAILABLE);
    assert_string_equal(r.message, "backend http://batch.test:1 is shutting down");
    close(d.efd);
    gw_loop_del(l);
    wait_no_jobs();
}

/* ---- the default resolver ----------------------------------------------------------- */

static void test_localhost_by_name(void **state)
{
    (void)state;
    gw_loop *l = gw_loop_new();
    int port, lfd = listener(&port);
    char url[64];
    snprintf(url, sizeof url, "http://localhost:%d", port);
    gw_backend *b = backend(l, url, false);
    rec r = {0};
    start(b, &r);
    /* If localhost is ::1 first, that address refuses and 127.0.0.1 follows. */
    spin_until(l, is_readable, &lfd, 10000);
    int sfd = accept_and_send_settings(lfd);
    spin_until(l, connected_once, b, 10000);
    gw_backend_stats s = stats(b);
    assert_int_equal(s.connects_ok, 1);
    assert_int_equal(s.dns_resolutions, 1);
    assert_int_equal(s.dns_failures, 0);
    gw_backend_del(b);
    gw_loop_del(l);
    close(sfd);
    close(lfd);
    wait_no_jobs();
}

/* ---- addresses that swallow SYNs: the next one starts in time -------------------- */

/* Open descriptors of this process (/proc/self/fd minus the one opendir
 * uses). */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/* A listener on 127.0.0.2:port whose accept queue this test fills and
 * never drains, so the kernel drops further SYNs to it: an address that
 * neither refuses nor connects, made locally, independent of routing.
 * fillers[] gets the sockets used to fill it (the last one is itself
 * stuck); returns the listener. */
static int black_hole(int port, int *fillers, size_t max, size_t *n)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 0), 0);
    *n = 0;
    bool stuck = false;
    while (!stuck && *n < max) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(c >= 0);
        int rc = connect(c, (struct sockaddr *)&a, sizeof a);
        assert_true(rc == 0 || errno == EINPROGRESS);
        fillers[(*n)++] = c;
        /* The first one must get in (backlog 0 still queues one); a later
         * one that does not within 300 ms found the queue full. */
        struct pollfd p = {.fd = c, .events = POLLOUT};
        stuck = rc != 0 && poll(&p, 1, *n == 1 ? 10000 : 300) == 0;
        assert_false(stuck && *n == 1);
    }
    assert_true(stuck); /* the queue is full: SYNs to it go unanswered */
    assert_true(readable(fd));
    return fd;
}

/* Reads what the gateway sent on sfd until its first HEADERS frame (the
 * call), spinning the loop meanwhile, then answers that stream with a
 * Trailers-Only OK: ":status 200", "content-type application/grpc",
 * "grpc-status 0" (HPACK literals, no Huffman). */
static void answer_ok(gw_loop *l, int sfd)
{
    uint8_t in[65536];
    size_t len = 0, off = 24; /* the client preface comes first */
    uint32_t sid = 0;
    uint64_t end = gw_now_ns() + 20000 * GW_MS;
    while (!sid && gw_now_ns() < end) {
        gw_loop_run_once(l, 10);
        if (readable(sfd) && len < sizeof in) {
            ssize_t r = read(sfd, in + len, sizeof in - len);
            assert_true(r > 0);
            len += (size_t)r;
        }
        while (!sid && off + 9 <= len) {
            size_t flen = (size_t)in[off] << 16 | (size_t)in[off + 1] << 8 | in[off + 2];
            if (off + 9 + flen > len)
                break;
            if (in[off + 3] == 1)
                sid = ((uint32_t)in[off + 5] << 24 | (uint32_t)in[off + 6] << 16 |
                       (uint32_t)in[off + 7] << 8 | in[off + 8]) & 0x7fffffffu;
            off += 9 + flen;
        }
    }
    assert_true(sid != 0);
    static const uint8_t block[] = {
        0x88,                                                 /* :status 200 */
        0x0f, 0x10, 16, 'a', 'p', 'p', 'l', 'i', 'c', 'a', 't', 'i', 'o', 'n', '/', 'g', 'r', 'p', 'c',
        0x00, 11, 'g', 'r', 'p', 'c', '-', 's', 't', 'a', 't', 'u', 's', 1, '0',
    };
    uint8_t frame[9 + sizeof block] = {0, 0, (uint8_t)sizeof block, 1, 0x05,
                                       (uint8_t)(sid >> 24), (uint8_t)(sid >> 16),
                                       (uint8_t)(sid >> 8), (uint8_t)sid};
    memcpy(frame + 9, block, sizeof block);
    assert_int_equal(write(sfd, frame, sizeof frame), (ssize_t)sizeof frame);
}

/* The resolver gives a black hole first, then the live address. With a
 * connect timeout of ten minutes the call can only succeed because the
 * second address was started while the first was still hanging; the first
 * socket is closed when the second wins. */
static void test_next_address_in_time(void **state)
{
    (void)state;
    int port, lfd = listener(&port);
    int fillers[16];
    size_t nf;
    int hole = black_hole(port, fillers, GW_ARRAY_LEN(fillers), &nf);
    fake_reset(0, NULL, 2, "127.0.0.2", "127.0.0.1", NULL);
    gw_loop *l = gw_loop_new();
    gw_backend_options o;
    gw_backend_options_init(&o);
    assert_int_equal(o.attempt_delay_ms, 250);
    o.resolve = fake_resolve;
    o.resolve_ctx = &dns;
    o.connect_timeout_ms = 600000;
    char url[64];
    snprintf(url, sizeof url, "http://race.test:%d", port);
    gw_backend *b = NULL;
    assert_int_equal(gw_backend_new(l, url, &o, &b, NULL), 0);
    int fds_before = open_fds();

    rec r = {0};
    start(b, &r);
    spin_until(l, is_readable, &lfd, 20000);
    assert_true(readable(lfd));
    int sfd = accept_and_send_settings(lfd);
    answer_ok(l, sfd);
    spin_until(l, completed, &r, 20000);
    assert_int_equal(r.completions, 1);
    assert_int_equal(r.code, GW_CODE_OK);
    gw_backend_stats s = stats(b);
    assert_int_equal(s.connects_started, 1);
    assert_int_equal(s.connects_ok, 1);
    assert_int_equal(s.addresses_tried, 2);
    assert_int_equal(s.connections_open, 1);
    /* The black hole's socket is gone: the connection's socket and the
     * test's accepted one are the only new descriptors. */
    wait_no_jobs();
    assert_int_equal(open_fds(), fds_before + 2);

    gw_backend_del(b);
    close(sfd);
    gw_loop_run_once(l, 0);
    assert_int_equal(open_fds(), fds_before);
    gw_loop_del(l);
    for (size_t i = 0; i < nf; i++)
        close(fillers[i]);
    close(hole);
    close(lfd);
}

/* Every address hangs: the race as a whole still ends at
 * connect_timeout_ms, with every socket closed. */
static void test_race_bounded_by_connect_timeout(void **state)
{
    (void)state;
    int port = closed_port();
    int fillers[16];
    size_t nf;
    int hole = black_hole(port, fillers, GW_ARRAY_LEN(fillers), &nf);
    fake_reset(0, NULL, 2, "127.0.0.2", "127.0.0.2", NULL);
    gw_loop *l = gw_loop_new();
    gw_backend_options o;
    gw_backend_options_init(&o);
    o.resolve = fake_resolve;
    o.resolve_ctx = &dns;
    o.connect_timeout_ms = 1000;
    o.attempt_delay_ms = 100;
    char url[64];
    snprintf(url, sizeof url, "http://holes.test:%d", port);
    gw_backend *b = NULL;
    assert_int_equal(gw_backend_new(l, url, &o, &b, NULL), 0);
    int fds_before = open_fds();
    rec r = {0};
    start(b, &r);
    spin_until(l, completed, &r, 30000);
    assert_int_equal(r.completions, 1);
    assert_int_equal(r.code, GW_CODE_UNAVAILABLE);
    char want[160];
    snprintf(want, sizeof want, "backend %s unreachable: connect timed out after 1000 ms", url);
    assert_string_equal(r.message, want);
    gw_backend_stats s = stats(b);
    assert_int_equal(s.addresses_tried, 2);
    assert_int_equal(s.connects_ok, 0);
    wait_no_jobs();
    assert_int_equal(open_fds(), fds_before);
    gw_backend_del(b);
    gw_loop_del(l);
    for (size_t i = 0; i < nf; i++)
        close(fillers[i]);
    close(hole);
}

/* ---- a failed re-resolution keeps the addresses known before ----------------- */

static bool no_connection(void *b) { return stats(b).connections_open == 0; }

/* Counts the lines of path that contain needle. */
static int count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

/* stderr while a test sends it to a file; the teardown puts it back also
 * when an assertion ended the test early, so its message is seen. */
static int saved_stderr = -1;

static int restore_stderr(void **state)
{
    (void)state;
    gw_log_set_level(GW_LOG_OFF);
    if (saved_stderr >= 0) {
        fflush(stderr);
        dup2(saved_stderr, 2);
        close(saved_stderr);
        saved_stderr = -1;
    }
    return 0;
}

static bool connections_zero(void *b) { return stats(b).connections_open == 0; }

/* A refused address's reason must not stick to the winning connection:
 * its later failures are reported with their own cause (review finding). */
static void test_stale_reason_after_refusal(void **state)
{
    (void)state;
    fake_reset(0, NULL, 2, "127.0.0.2", "127.0.0.1", NULL);
    gw_loop *l = gw_loop_new();
    int port, lfd = listener(&port);
    char url[64];
    snprintf(url, sizeof url, "http://stale.test:%d", port);
    gw_backend *b = backend(l, url, true);
    rec r = {0};
    start(b, &r);
    spin_until(l, is_readable, &lfd, 10000);
    int sfd = accept_and_send_settings(lfd);
    spin_until(l, connected_once, b, 10000);
    assert_int_equal(stats(b).connects_ok, 1);
    /* let the HEADERS go out, then the server goes away */
    for (int i = 0; i < 20; i++)
        gw_loop_run_once(l, 5);
    close(sfd);
    spin_until(l, completed, &r, 10000);
    /* the real cause is the server's close (EOF or RST), not 127.0.0.2's refusal */
    assert_null(strstr(r.message, "connect: Connection refused"));
    gw_backend_del(b);
    gw_loop_del(l);
    close(lfd);
    wait_no_jobs();
}

/* A re-resolution with no answer within connect_timeout_ms falls back to
 * the last good addresses like a failed one (review finding). */
static void test_slow_reresolution_falls_back(void **state)
{
    (void)state;
    fake_reset(0, NULL, 1, "127.0.0.1", NULL, NULL);
    gw_loop *l = gw_loop_new();
    int port, lfd = listener(&port);
    char url[64];
    snprintf(url, sizeof url, "http://slowdns.test:%d", port);
    gw_backend_options o;
    gw_backend_options_init(&o);
    o.resolve = fake_resolve;
    o.resolve_ctx = &dns;
    o.connect_timeout_ms = 1000;
    gw_backend *b = NULL;
    assert_int_equal(gw_backend_new(l, url, &o, &b, NULL), 0);
    rec r0 = {0};
    start(b, &r0);
    spin_until(l, is_readable, &lfd, 10000);
    int sfd = accept_and_send_settings(lfd);
    answer_ok(l, sfd);
    spin_until(l, completed, &r0, 10000);
    assert_int_equal(r0.code, GW_CODE_OK);
    close(sfd);
    spin_until(l, connections_zero, b, 10000);
    /* DNS now hangs longer than the connect timeout */
    pthread_mutex_lock(&dns.mu);
    dns.sleep_ms = 1500;
    pthread_mutex_unlock(&dns.mu);
    rec r1 = {0};
    start(b, &r1);
    spin_until(l, is_readable, &lfd, 5000);
    if (readable(lfd)) {
        sfd = accept_and_send_settings(lfd);
        answer_ok(l, sfd);
    }
    spin_until(l, completed, &r1, 10000);
    assert_int_equal(r1.code, GW_CODE_OK);
    assert_int_equal(stats(b).dns_fallbacks, 1);
    gw_backend_del(b);
    gw_loop_del(l);
    close(lfd);
    wait_no_jobs();
}

static void test_failed_reresolution_keeps_addresses(void **state)
{
    (void)state;
    fake_reset(0, NULL, 1, "127.0.0.1", NULL, NULL);
    dns.answers_before_failing = 1;
    dns.later_rc = GW_ENOTFOUND;
    dns.later_why = "Temporary failure in name resolution";
    int port, lfd = listener(&port);
    char url[64];
    snprintf(url, sizeof url, "http://keep.test:%d", port);
    /* The warnings go to stderr: catch them in a file for the test. */
    char log_path[] = "/tmp/grpcgate-test-resolve-XXXXXX";
    int log_fd = mkstemp(log_path);
    assert_true(log_fd >= 0);
    fflush(stderr);
    saved_stderr = dup(2);
    assert_true(saved_stderr >= 0);
    assert_int_equal(dup2(log_fd, 2), 2);
    gw_log_set_level(GW_LOG_WARN);

    gw_loop *l = gw_loop_new();
    gw_backend *b = backend(l, url, true);
    rec r[3] = {{0}};
    int sfd = -1;
    for (int i = 0; i < 3; i++) {
        /* Call 0 connects to what the resolver said; calls 1 and 2 each
         * follow a connection the server closed, and each lookup fails. */
        start(b, &r[i]);
        spin_until(l, is_readable, &lfd, 20000);
        assert_true(readable(lfd));
        sfd = accept_and_send_settings(lfd);
        answer_ok(l, sfd);
        spin_until(l, completed, &r[i], 20000);
        assert_int_equal(r[i].completions, 1);
        assert_int_equal(r[i].code, GW_CODE_OK);
        close(sfd);
        spin_until(l, no_connection, b, 20000);
        assert_int_equal(stats(b).connections_open, 0);
    }
    gw_backend_stats s = stats(b);
    assert_int_equal(fake_calls(), 3);
    assert_int_equal(s.dns_resolutions, 3);
    assert_int_equal(s.dns_failures, 2);
    assert_int_equal(s.dns_fallbacks, 2);
    assert_int_equal(s.connects_ok, 3);
    gw_backend_del(b);
    gw_loop_del(l);
    wait_no_jobs();

    restore_stderr(NULL);
    close(log_fd);
    char want[256];
    snprintf(want, sizeof want,
             "upstream: backend %s: cannot resolve keep.test: Temporary failure in name "
             "resolution; connecting to the 1 address it had before", url);
    int warnings = count_lines(log_path, want);
    int any_warning = count_lines(log_path, " warn ");
    unlink(log_path);
    assert_int_equal(warnings, 2);   /* one per failed lookup */
    assert_int_equal(any_warning, 2);
    close(lfd);
}

int main(void)
{
    gw_log_set_level(GW_LOG_OFF);
    test_thread = pthread_self();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_resolver_keeps_loop_serving),
        cmocka_unit_test(test_resolver_failure),
        cmocka_unit_test(test_resolver_timeout),
        cmocka_unit_test(test_cache_and_reresolve),
        cmocka_unit_test(test_next_address_after_refusal),
        cmocka_unit_test(test_literals_connect_at_once),
        cmocka_unit_test(test_ip_literal_table),
        cmocka_unit_test(test_ip_literal_backends),
        cmocka_unit_test(test_del_during_resolution),
        cmocka_unit_test(test_del_with_answer_pending),
        cmocka_unit_test(test_del_inside_batch_with_answer),
        cmocka_unit_test(test_localhost_by_name),
        cmocka_unit_test(test_next_address_in_time),
        cmocka_unit_test(test_race_bounded_by_connect_timeout),
        cmocka_unit_test_teardown(test_failed_reresolution_keeps_addresses, restore_stderr),
        cmocka_unit_test(test_stale_reason_after_refusal),
        cmocka_unit_test_teardown(test_slow_reresolution_falls_back, restore_stderr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
