/*
 * Unit tests for clusters and the reflection client's pure pieces: the
 * balancer as a table, health and reflection message bytes, option errors,
 * fail-fast without endpoints, moving a call off an unreachable endpoint,
 * least-outstanding on real (silent) endpoints, DNS re-resolution with
 * an injected resolver, and deletions inside a loop turn whose batch still
 * names the deleted sockets and eventfds (under ASan).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
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

/* A listening loopback socket nobody reads: calls to it stay pending. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
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
    int fd = silent_listener(&port);
    close(fd);
    return port;
}

typedef struct rec {
    int completions;
    int code;
    char message[512];
    bool unreachable;
    bool in_caller;
    bool reentered;
} rec;

static void r_complete(void *owner, const gw_call_status *st)
{
    rec *r = owner;
    if (r->in_caller)
        r->reentered = true;
    r->completions++;
    r->code = st->code;
    r->unreachable = st->unreachable;
    snprintf(r->message, sizeof r->message, "%s", st->message);
}

static const gw_ucall_handlers rh = {.on_complete = r_complete};

static gw_ucall *start(gw_cluster *c, rec *r)
{
    gw_ucall_params p = {.path = "/demo.v1.EchoService/Echo"};
    gw_ucall *call = NULL;
    gw_error e = {0};
    r->in_caller = true;
    int rc = gw_cluster_ucall_start(c, &p, &rh, r, &call, &e);
    r->in_caller = false;
    assert_int_equal(rc, 0);
    assert_non_null(call);
    return call;
}

static void spin_until(gw_loop *l, bool (*done)(void *), void *arg, int max_ms)
{
    uint64_t end = gw_now_ns() + (uint64_t)max_ms * GW_MS;
    while (!done(arg) && gw_now_ns() < end)
        gw_loop_run_once(l, 10);
}

static void spin(gw_loop *l, int ms)
{
    uint64_t end = gw_now_ns() + (uint64_t)ms * GW_MS;
    while (gw_now_ns() < end)
        gw_loop_run_once(l, 10);
}

static bool rec_done(void *arg) { return ((rec *)arg)->completions > 0; }

static gw_endpoint_stats ep(const gw_cluster *c, size_t i)
{
    gw_endpoint_stats s;
    assert_int_equal(gw_cluster_endpoint_stats(c, i, &s), 0);
    return s;
}

/* ---- the balancer -------------------------------------------------------- */

static void test_lb_pick(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        gw_lb_policy policy;
        size_t n;
        bool up[4];
        size_t active[4];
        size_t cursor_in;
        long want;
        size_t cursor_out;
    } cases[] = {
        {"rr first", GW_LB_ROUND_ROBIN, 3, {1, 1, 1}, {0, 0, 0}, 0, 0, 1},
        {"rr next", GW_LB_ROUND_ROBIN, 3, {1, 1, 1}, {0, 0, 0}, 1, 1, 2},
        {"rr wraps", GW_LB_ROUND_ROBIN, 3, {1, 1, 1}, {0, 0, 0}, 3, 0, 1},
        {"rr skips down", GW_LB_ROUND_ROBIN, 3, {1, 0, 1}, {0, 0, 0}, 1, 2, 3},
        {"rr ignores load", GW_LB_ROUND_ROBIN, 2, {1, 1}, {9, 0}, 0, 0, 1},
        {"rr none up", GW_LB_ROUND_ROBIN, 2, {0, 0}, {0, 0}, 1, -1, 1},
        {"rr empty", GW_LB_ROUND_ROBIN, 0, {0}, {0}, 5, -1, 5},
        {"least fewest", GW_LB_LEAST_OUTSTANDING, 3, {1, 1, 1}, {3, 1, 2}, 0, 1, 2},
        {"least skips down", GW_LB_LEAST_OUTSTANDING, 3, {1, 0, 1}, {3, 0, 2}, 0, 2, 3},
        {"least tie from cursor", GW_LB_LEAST_OUTSTANDING, 4, {1, 1, 1, 1}, {1, 1, 1, 1}, 2, 2, 3},
        {"least tie wraps", GW_LB_LEAST_OUTSTANDING, 3, {1, 1, 1}, {0, 5, 0}, 2, 2, 3},
        {"least later smaller", GW_LB_LEAST_OUTSTANDING, 3, {1, 1, 1}, {2, 2, 1}, 0, 2, 3},
        {"least none up", GW_LB_LEAST_OUTSTANDING, 2, {0, 0}, {0, 0}, 0, -1, 0},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        gw_lb_candidate c[4];
        for (size_t j = 0; j < 4; j++)
            c[j] = (gw_lb_candidate){cases[i].up[j], cases[i].active[j]};
        size_t cursor = cases[i].cursor_in;
        long got = gw_lb_pick(cases[i].policy, c, cases[i].n, &cursor);
        if (got != cases[i].want || cursor != cases[i].cursor_out)
            fail_msg("%s: got %ld cursor %zu, want %ld cursor %zu", cases[i].what, got, cursor,
                     cases[i].want, cases[i].cursor_out);
    }
}

/* ---- message bytes ------------------------------------------------------------ */

static void test_health_messages(void **state)
{
    (void)state;
    gw_buf b;
    gw_buf_init(&b, 64);
    assert_int_equal(gw_health_request_encode(&b, ""), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(gw_health_request_encode(&b, "demo.v1.UserService"), 0);
    static const uint8_t want[] = "\x0a\x13" "demo.v1.UserService";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, sizeof want - 1);
    gw_buf_free(&b);

    static const struct {
        const char *bytes;
        size_t len;
        int rc;
        int status;
    } cases[] = {
        {"", 0, 0, 0},                       /* UNKNOWN (default) */
        {"\x08\x01", 2, 0, 1},               /* SERVING */
        {"\x08\x02", 2, 0, 2},               /* NOT_SERVING */
        {"\x08\x03", 2, 0, 3},               /* SERVICE_UNKNOWN */
        {"\x10\x05\x08\x01", 4, 0, 1},       /* an unknown field first */
        {"\x08", 1, GW_EPARSE, 0},           /* truncated */
        {"\x0a\x05zz", 4, GW_EPARSE, 0},     /* length past the end */
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        int st = -1;
        int rc = gw_health_response_decode((const uint8_t *)cases[i].bytes, cases[i].len, &st);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0)
            assert_int_equal(st, cases[i].status);
    }
}

static void test_reflect_frames(void **state)
{
    (void)state;
    static const struct {
        uint32_t field;
        const char *value;
        const char *want;
        size_t want_len;
    } cases[] = {
        {7, "*", "\0\0\0\0\x03\x3a\x01*", 8},
        {4, "a.B", "\0\0\0\0\x05\x22\x03" "a.B", 10},
        {3, "x.proto", "\0\0\0\0\x09\x1a\x07" "x.proto", 14},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        gw_buf b;
        gw_buf_init(&b, 0);
        assert_int_equal(gw_reflect_request_frame(&b, cases[i].field, cases[i].value), 0);
        assert_int_equal(b.len, cases[i].want_len);
        assert_memory_equal(b.data, cases[i].want, cases[i].want_len);
        gw_buf_free(&b);
    }
}

/* One reflection answer at a time, through the run's own handling. */
static void test_reflect_answers(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        const char *bytes;
        size_t len;
        size_t due;
        int rc;
        size_t files;
        const char *msg;
    } cases[] = {
        {"service list", "\x32\x17\x0a\x15\x0a\x13" "demo.v1.EchoService", 25, 1, 0, 0, NULL},
        {"a file asking for its dependency", "\x22\x14\x0a\x12\x0a\x07" "a.proto" "\x1a\x07" "b.proto",
         22, 1, 0, 1, NULL},
        {"a closed set of two files", "\x22\x1c\x0a\x09\x0a\x07" "b.proto" "\x0a\x0f\x0a\x04" "c.pr"
         "\x1a\x07" "b.proto", 30, 1, 0, 2, NULL},
        {"error answer", "\x12\x05\x22\x03x.Y\x3a\x0c\x08\x05\x12\x08" "no x.Y!!", 21, 1, GW_ENOTFOUND, 0,
         "reflection on http://127.0.0.1:1 failed: symbol x.Y: NOT_FOUND: no x.Y!!"},
        {"file without a name", "\x22\x07\x0a\x05\x12\x03pkg", 9, 1, GW_EPARSE, 0,
         "reflection on http://127.0.0.1:1 failed: a file descriptor without a name"},
        {"not protobuf", "\xff", 1, 1, GW_EPARSE, 0,
         "reflection on http://127.0.0.1:1 failed: malformed answer at byte 0"},
        {"an answer nobody asked for", "", 0, 0, GW_EPARSE, 0,
         "reflection on http://127.0.0.1:1 failed: an answer nobody asked for"},
    };
    gw_loop *l = gw_loop_new();
    gw_backend *b;
    gw_error e;
    assert_int_equal(gw_backend_new(l, "http://127.0.0.1:1", NULL, &b, &e), 0);
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        size_t files = 99;
        gw_error_clear(&e);
        int rc = gw_reflect_feed_test(b, (const uint8_t *)cases[i].bytes, cases[i].len, cases[i].due,
                                      &files, &e);
        if (rc != cases[i].rc || files != cases[i].files ||
            (cases[i].msg && strcmp(e.msg, cases[i].msg) != 0))
            fail_msg("%s: rc %d files %zu msg \"%s\"", cases[i].what, rc, files, e.msg);
    }
    gw_backend_del(b);
    gw_loop_del(l);
}

/* ---- options -------------------------------------------------------------------- */

static void test_options(void **state)
{
    (void)state;
    gw_loop *l = gw_loop_new();
    gw_cluster *c = NULL;
    gw_error e;
    gw_cluster_options o;
    gw_cluster_options_init(&o);
    assert_int_equal(o.policy, GW_LB_ROUND_ROBIN);
    assert_int_equal(o.health.interval_ms, 0);
    assert_int_equal(o.health.timeout_ms, 1000);
    assert_int_equal(o.health.unhealthy_threshold, 2);
    assert_int_equal(o.health.healthy_threshold, 1);
    assert_int_equal(o.dns_refresh_ms, 30000);
    assert_int_equal(o.probe_interval_ms, 1000);

    static const char *const none[] = {NULL};
    assert_int_equal(gw_cluster_new(l, "c", none, 0, &o, &c, &e), GW_EINVAL);
    assert_string_equal(e.msg, "cluster c: no endpoint URL");
    static const char *const bad[] = {"ftp://x:1"};
    assert_int_equal(gw_cluster_new(l, "c", bad, 1, &o, &c, &e), GW_EINVAL);
    assert_non_null(strstr(e.msg, "cluster c: backend URL ftp://x:1: expected"));
    assert_null(c);
    static const char *const good[] = {"http://127.0.0.1:1"};
    o.health.interval_ms = 500;
    o.health.timeout_ms = 900;
    assert_int_equal(gw_cluster_new(l, "c", good, 1, &o, &c, &e), GW_EINVAL);
    assert_string_equal(e.msg, "cluster c: health check timeout (900 ms) above the interval (500 ms)");
    assert_int_equal(gw_cluster_new(l, "", good, 1, NULL, &c, &e), GW_EINVAL);
    gw_loop_del(l);
}

/* ---- calls -------------------------------------------------------------------------- */

static void test_no_healthy_endpoint(void **state)
{
    (void)state;
    gw_loop *l = gw_loop_new();
    char url[64];
    int port = closed_port();
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    const char *urls[] = {url};
    gw_cluster *c;
    gw_error e;
    assert_int_equal(gw_cluster_new(l, "users", urls, 1, NULL, &c, &e), 0);
    assert_string_equal(gw_cluster_name(c), "users");

    rec r1 = {0};
    start(c, &r1);
    spin_until(l, rec_done, &r1, 5000);
    assert_int_equal(r1.completions, 1);
    assert_false(r1.reentered);
    assert_int_equal(r1.code, GW_CODE_UNAVAILABLE);
    assert_true(r1.unreachable);
    char want[160];
    snprintf(want, sizeof want, "backend %s unreachable: connect: Connection refused", url);
    assert_string_equal(r1.message, want);
    assert_false(ep(c, 0).healthy);
    assert_int_equal(ep(c, 0).transport_failures, 1);

    rec r2 = {0};
    start(c, &r2);
    assert_int_equal(r2.completions, 0); /* never from inside the start */
    spin_until(l, rec_done, &r2, 5000);
    assert_int_equal(r2.code, GW_CODE_UNAVAILABLE);
    assert_string_equal(r2.message, "no healthy endpoint in cluster users");
    gw_cluster_stats s;
    gw_cluster_get_stats(c, &s);
    assert_int_equal(s.endpoints, 1);
    assert_int_equal(s.healthy_endpoints, 0);
    assert_int_equal(s.calls_started, 1);
    assert_int_equal(s.calls_no_endpoint, 1);
    assert_int_equal(s.ejections, 1);

    /* Bad params are refused without a callback, even without endpoints. */
    gw_ucall_params bad = {.path = "no-slash"};
    gw_ucall *call = NULL;
    assert_int_equal(gw_cluster_ucall_start(c, &bad, &rh, &r2, &call, &e), GW_EINVAL);
    assert_null(call);
    gw_cluster_del(c);
    gw_loop_run_once(l, 0);
    gw_loop_del(l);
}

/* The first endpoint refuses connections: the call moves to the second,
 * which holds it (a silent listener), instead of failing. */
static void test_redirect_unreachable(void **state)
{
    (void)state;
    gw_loop *l = gw_loop_new();
    int port_b;
    int lfd = silent_listener(&port_b);
    char url_a[64], url_b[64];
    snprintf(url_a, sizeof url_a, "http://127.0.0.1:%d", closed_port());
    snprintf(url_b, sizeof url_b, "http://127.0.0.1:%d", port_b);
    const char *urls[] = {url_a, url_b};
    gw_cluster *c;
    gw_error e;
    assert_int_equal(gw_cluster_new(l, "pair", urls, 2, NULL, &c, &e), 0);
    assert_int_equal(gw_cluster_endpoint_count(c), 2);
    assert_string_equal(ep(c, 0).url, url_a);
    assert_string_equal(ep(c, 1).url, url_b);

    rec r = {0};
    gw_ucall *call = start(c, &r);
    spin(l, 300);
    assert_int_equal(r.completions, 0);
    gw_cluster_stats s;
    gw_cluster_get_stats(c, &s);
    assert_int_equal(s.calls_redirected, 1);
    assert_int_equal(s.healthy_endpoints, 1);
    assert_false(ep(c, 0).healthy);
    assert_int_equal(ep(c, 0).active_calls, 0);
    assert_int_equal(ep(c, 1).active_calls, 1);
    assert_int_equal(ep(c, 1).calls_started, 1);
    gw_ucall_cancel(call);
    gw_cluster_del(c);
    gw_loop_run_once(l, 0);
    gw_loop_del(l);
    close(lfd);
}

static void test_least_outstanding(void **state)
{
    (void)state;
    gw_loop *l = gw_loop_new();
    int pa, pb;
    int fa = silent_listener(&pa), fb = silent_listener(&pb);
    char ua[64], ub[64];
    snprintf(ua, sizeof ua, "http://127.0.0.1:%d", pa);
    snprintf(ub, sizeof ub, "http://127.0.0.1:%d", pb);
    const char *urls[] = {ua, ub};
    gw_cluster_options o;
    gw_cluster_options_init(&o);
    o.policy = GW_LB_LEAST_OUTSTANDING;
    gw_cluster *c;
    gw_error e;
    assert_int_equal(gw_cluster_new(l, "lo", urls, 2, &o, &c, &e), 0);
    rec r[5] = {{0}};
    gw_ucall *calls[5];
    calls[0] = start(c, &r[0]); /* 0/0: a */
    calls[1] = start(c, &r[1]); /* 1/0: b */
    calls[2] = start(c, &r[2]); /* 1/1: tie, a (after b) */
    assert_int_equal(ep(c, 0).active_calls, 2);
    assert_int_equal(ep(c, 1).active_calls, 1);
    calls[3] = start(c, &r[3]); /* 2/1: b */
    gw_ucall_cancel(calls[0]);
    gw_ucall_cancel(calls[2]);
    calls[4] = start(c, &r[4]); /* 0/2: a */
    assert_int_equal(ep(c, 0).calls_started, 3);
    assert_int_equal(ep(c, 1).calls_started, 2);
    gw_ucall_cancel(calls[1]);
    gw_ucall_cancel(calls[3]);
    gw_ucall_cancel(calls[4]);
    gw_cluster_del(c);
    gw_loop_run_once(l, 0);
    gw_loop_del(l);
    close(fa);
    close(fb);
}

/* ---- DNS ---------------------------------------------------------------------------- */

typedef struct fake_dns {
    pthread_mutex_t mu;
    const char *addrs[4];
    size_t n;
    int rc;
    int calls;
    char host[64], port[16];
} fake_dns;

static int fake_resolve(void *ctx, const char *host, const char *port, char **addrs, size_t max,
                        size_t *n, gw_error *e)
{
    (void)e;
    fake_dns *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->calls++;
    snprintf(f->host, sizeof f->host, "%s", host);
    snprintf(f->port, sizeof f->port, "%s", port);
    int rc = f->rc;
    *n = 0;
    for (size_t i = 0; rc == 0 && i < f->n && i < max; i++) {
        addrs[i] = strdup(f->addrs[i]);
        (*n)++;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static void fake_set(fake_dns *f, int rc, size_t n, const char *a0, const char *a1)
{
    pthread_mutex_lock(&f->mu);
    f->rc = rc;
    f->n = n;
    f->addrs[0] = a0;
    f->addrs[1] = a1;
    pthread_mutex_unlock(&f->mu);
}

typedef struct resolved_wait {
    gw_cluster *c;
    uint64_t want;
} resolved_wait;

static bool resolved(void *arg)
{
    resolved_wait *w = arg;
    gw_cluster_stats s;
    gw_cluster_get_stats(w->c, &s);
    return s.dns_resolutions >= w->want;
}

static bool one_endpoint(void *arg) { return gw_cluster_endpoint_count(arg) == 1; }

static void test_dns(void **state)
{
    (void)state;
    gw_loop *l = gw_loop_new();
    int port;
    int lfd = silent_listener(&port); /* bound to every loopback address */
    char url[64], u1[64], u3[64];
    snprintf(url, sizeof url, "http://svc.test:%d", port);
    snprintf(u1, sizeof u1, "http://127.0.0.1:%d", port);
    snprintf(u3, sizeof u3, "http://127.0.0.3:%d", port);
    fake_dns f = {.mu = PTHREAD_MUTEX_INITIALIZER};
    fake_set(&f, 0, 1, "127.0.0.1", NULL);
    gw_cluster_options o;
    gw_cluster_options_init(&o);
    o.dns_refresh_ms = 0; /* refreshed by hand below */
    o.resolve = fake_resolve;
    o.resolve_ctx = &f;
    const char *urls[] = {url};
    gw_cluster *c;
    gw_error e;
    assert_int_equal(gw_cluster_new(l, "dns", urls, 1, &o, &c, &e), 0);
    assert_string_equal(f.host, "svc.test");
    assert_int_equal(atoi(f.port), port);
    assert_int_equal(gw_cluster_endpoint_count(c), 1);
    assert_string_equal(ep(c, 0).url, u1);
    assert_string_equal(ep(c, 0).name_url, url);

    /* A call held by the listener on 127.0.0.1. */
    rec r = {0};
    gw_ucall *call = start(c, &r);

    /* An address added: the old endpoint is kept as it is. */
    fake_set(&f, 0, 2, "127.0.0.1", "127.0.0.3");
    assert_int_equal(gw_cluster_refresh_dns(c), 0);
    resolved_wait w = {c, 2};
    spin_until(l, resolved, &w, 5000);
    assert_int_equal(gw_cluster_endpoint_count(c), 2);
    assert_string_equal(ep(c, 0).url, u1);
    assert_int_equal(ep(c, 0).active_calls, 1);
    assert_int_equal(ep(c, 0).calls_started, 1);
    assert_string_equal(ep(c, 1).url, u3);
    assert_false(ep(c, 1).draining);

    /* A failed resolution keeps the endpoints. */
    fake_set(&f, GW_ENOTFOUND, 0, NULL, NULL);
    assert_int_equal(gw_cluster_refresh_dns(c), 0);
    w.want = 3;
    spin_until(l, resolved, &w, 5000);
    gw_cluster_stats s;
    gw_cluster_get_stats(c, &s);
    assert_int_equal(s.dns_failures, 1);
    assert_int_equal(s.endpoints, 2);

    /* An address removed: its endpoint drains, then goes. */
    fake_set(&f, 0, 1, "127.0.0.3", NULL);
    assert_int_equal(gw_cluster_refresh_dns(c), 0);
    w.want = 4;
    spin_until(l, resolved, &w, 5000);
    assert_int_equal(gw_cluster_endpoint_count(c), 2);
    assert_string_equal(ep(c, 0).url, u3);
    assert_false(ep(c, 0).draining);
    assert_string_equal(ep(c, 1).url, u1);
    assert_true(ep(c, 1).draining);
    assert_false(ep(c, 1).healthy);
    assert_int_equal(ep(c, 1).active_calls, 1);
    gw_cluster_get_stats(c, &s);
    assert_int_equal(s.endpoints, 1);
    assert_int_equal(s.active_calls, 1);
    /* New calls go to the remaining address only. */
    rec r2 = {0};
    gw_ucall *call2 = start(c, &r2);
    assert_int_equal(ep(c, 0).calls_started, 1);
    gw_ucall_cancel(call2);
    gw_ucall_cancel(call);
    spin_until(l, one_endpoint, c, 5000);
    assert_int_equal(gw_cluster_endpoint_count(c), 1);
    assert_string_equal(ep(c, 0).url, u3);
    assert_int_equal(r.completions, 0);
    gw_cluster_del(c);
    gw_loop_run_once(l, 0);
    gw_loop_del(l);
    close(lfd);
}

/* A seed resolved beforehand: gw_cluster_new does not resolve again. */
static void test_dns_seed(void **state)
{
    (void)state;
    gw_loop *l = gw_loop_new();
    fake_dns f = {.mu = PTHREAD_MUTEX_INITIALIZER};
    fake_set(&f, 0, 2, "127.0.0.5", "fd00::5");
    gw_cluster_options o;
    gw_cluster_options_init(&o);
    o.resolve = fake_resolve;
    o.resolve_ctx = &f;
    const char *urls[] = {"http://127.0.0.1:2", "https://svc.test:443"};
    gw_dns_seed *seed;
    gw_error e;
    assert_int_equal(gw_dns_seed_new(urls, 2, &o, &seed, &e), 0);
    assert_int_equal(f.calls, 1);
    o.seed = seed;
    gw_cluster *c[2];
    for (int i = 0; i < 2; i++) /* one seed, two workers' clusters */
        assert_int_equal(gw_cluster_new(l, "seeded", urls, 2, &o, &c[i], &e), 0);
    gw_dns_seed_del(seed);
    assert_int_equal(f.calls, 1);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(gw_cluster_endpoint_count(c[i]), 3);
        assert_string_equal(ep(c[i], 0).url, "http://127.0.0.1:2");
        assert_string_equal(ep(c[i], 1).url, "https://127.0.0.5:443");
        assert_string_equal(ep(c[i], 2).url, "https://[fd00::5]:443");
        assert_string_equal(ep(c[i], 2).name_url, "https://svc.test:443");
        gw_cluster_del(c[i]);
    }
    const char *other[] = {"http://127.0.0.1:2", "https://other.test:443"};
    assert_int_equal(gw_dns_seed_new(urls, 2, &o, &seed, &e), 0);
    o.seed = seed;
    assert_int_equal(gw_cluster_new(l, "seeded", other, 2, &o, &c[0], &e), GW_EINVAL);
    assert_string_equal(e.msg, "cluster seeded: the DNS seed was made for other URLs");
    gw_dns_seed_del(seed);
    gw_loop_run_once(l, 0);
    gw_loop_del(l);
}

static bool three_calls(void *arg)
{
    fake_dns *f = arg;
    pthread_mutex_lock(&f->mu);
    bool done = f->calls >= 3;
    pthread_mutex_unlock(&f->mu);
    return done;
}

/* A resolver the test holds inside until it lets go. File scope: its
 * thread outlives the cluster that started it. */
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t held_cv = PTHREAD_COND_INITIALIZER;
static int held_calls;
static bool held_hold, held_released;

static int held_resolve(void *ctx, const char *host, const char *port, char **addrs, size_t max,
                        size_t *n, gw_error *e)
{
    (void)ctx, (void)host, (void)port, (void)max, (void)e;
    pthread_mutex_lock(&held_mu);
    held_calls++;
    pthread_cond_broadcast(&held_cv);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (held_hold && !held_released &&
           pthread_cond_timedwait(&held_cv, &held_mu, &until) == 0)
        ;
    pthread_mutex_unlock(&held_mu);
    addrs[0] = strdup("127.0.0.1");
    *n = addrs[0] ? 1 : 0;
    return 0;
}

/* gw_cluster_del while a refresh is inside the resolver returns at once;
 * the thread finishes later and frees what it holds (ASan checks it
 * touches nothing else). */
static void test_dns_del_during_refresh(void **state)
{
    (void)state;
    gw_loop *l = gw_loop_new();
    gw_cluster_options o;
    gw_cluster_options_init(&o);
    o.dns_refresh_ms = 0;
    o.resolve = held_resolve;
    const char *urls[] = {"http://svc.test:1"};
    gw_cluster *c;
    gw_error e;
    held_calls = 0;
    held_hold = false;
    held_released = false;
    assert_int_equal(gw_cluster_new(l, "held", urls, 1, &o, &c, &e), 0); /* first: blocking */
    pthread_mutex_lock(&held_mu);
    held_hold = true;
    pthread_mutex_unlock(&held_mu);
    assert_int_equal(gw_cluster_refresh_dns(c), 0);
    pthread_mutex_lock(&held_mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (held_calls < 2 && pthread_cond_timedwait(&held_cv, &held_mu, &until) == 0)
        ;
    assert_int_equal(held_calls, 2);
    pthread_mutex_unlock(&held_mu);
    gw_cluster_del(c);
    gw_loop_run_once(l, 0);
    gw_loop_del(l);
    assert_int_equal(gw_dns_jobs_alive(), 1);
    pthread_mutex_lock(&held_mu);
    held_released = true;
    pthread_cond_broadcast(&held_cv);
    pthread_mutex_unlock(&held_mu);
    for (int i = 0; i < 2000 && gw_dns_jobs_alive() != 0; i++)
        usleep(5000);
    assert_int_equal(gw_dns_jobs_alive(), 0);
}

static void test_dns_periodic(void **state)
{
    (void)state;
    gw_loop *l = gw_loop_new();
    fake_dns f = {.mu = PTHREAD_MUTEX_INITIALIZER};
    fake_set(&f, 0, 1, "127.0.0.1", NULL);
    gw_cluster_options o;
    gw_cluster_options_init(&o);
    o.dns_refresh_ms = 50;
    o.resolve = fake_resolve;
    o.resolve_ctx = &f;
    const char *urls[] = {"http://svc.test:1", "http://127.0.0.1:2"};
    gw_cluster *c;
    gw_error e;
    assert_int_equal(gw_cluster_new(l, "periodic", urls, 2, &o, &c, &e), 0);
    /* The name is resolved once at creation, then again and again. */
    spin_until(l, three_calls, &f, 10000);
    assert_true(three_calls(&f));
    /* Literal URLs are never resolved and keep their place. */
    assert_int_equal(gw_cluster_endpoint_count(c), 2);
    assert_string_equal(ep(c, 0).url, "http://127.0.0.1:1");
    assert_string_equal(ep(c, 1).url, "http://127.0.0.1:2");
    gw_cluster_del(c);
    gw_loop_run_once(l, 0);
    gw_loop_del(l);
    /* A refresh may still be running (gw_cluster_del does not wait for it)
     * and uses f: wait until its thread is gone. */
    for (int i = 0; i < 2000 && gw_dns_jobs_alive() != 0; i++)
        usleep(5000);
    assert_int_equal(gw_dns_jobs_alive(), 0);
}


/* Waits until the fake resolver has been asked `calls` times, then until
 * its thread has signalled the job's eventfd (polled, generous deadline;
 * `except` is the test's own eventfd or -1). Fails if either never happens:
 * the batch the test needs was not set up. */
static void resolver_answered(fake_dns *f, int calls, int except)
{
    int n = 0;
    for (int i = 0; i < 4000; i++) {
        pthread_mutex_lock(&f->mu);
        n = f->calls;
        pthread_mutex_unlock(&f->mu);
        if (n >= calls)
            break;
        usleep(5000);
    }
    assert_true(n >= calls);
    assert_true(wait_signalled_eventfd(except, 20000));
}

/* A cluster on a name whose endpoint has an open, idle connection to a
 * listener that accepted it (returned in *afd). */
static gw_cluster *cluster_with_idle_conn(gw_loop *l, fake_dns *f, int lfd, int port, int *afd)
{
    char url[64];
    snprintf(url, sizeof url, "http://svc.test:%d", port);
    fake_set(f, 0, 1, "127.0.0.1", NULL);
    gw_cluster_options o;
    gw_cluster_options_init(&o);
    o.dns_refresh_ms = 0;
    o.resolve = fake_resolve;
    o.resolve_ctx = f;
    const char *urls[] = {url};
    gw_cluster *c;
    gw_error e;
    assert_int_equal(gw_cluster_new(l, "batch", urls, 1, &o, &c, &e), 0);
    rec r = {0};
    gw_ucall *call = start(c, &r);
    gw_loop_run_once(l, 0); /* dispatch: the connect starts */
    *afd = accept(lfd, NULL, NULL);
    assert_true(*afd >= 0);
    spin(l, 50);            /* connected, preface written: the socket is idle */
    gw_ucall_cancel(call);
    spin(l, 20);
    assert_int_equal(ep(c, 0).active_calls, 0);
    return c;
}

/* A DNS refresh drops the endpoint of an idle connection while the same
 * epoll batch holds an event for that connection's socket (the peer
 * closed it), after the eventfd's. The endpoint used to be deleted inside
 * the eventfd callback, and the loop then read the freed connection (ASan:
 * heap-use-after-free, freed by gw_backend_del <- ep_del <- reap <-
 * round_apply). It is reaped after the batch, in the same turn. */
static void test_dns_drop_inside_batch(void **state)
{
    (void)state;
    gw_loop *l = gw_loop_new();
    int port, afd;
    int lfd = silent_listener(&port);
    fake_dns f = {.mu = PTHREAD_MUTEX_INITIALIZER};
    gw_cluster *c = cluster_with_idle_conn(l, &f, lfd, port, &afd);
    fake_set(&f, 0, 1, "127.0.0.3", NULL);
    assert_int_equal(gw_cluster_refresh_dns(c), 0);
    resolver_answered(&f, 2, -1);
    close(afd); /* the socket becomes readable after the eventfd (loopback: at once) */
    assert_int_equal(gw_loop_run_once(l, 1000), 0);
    /* Drained and deleted in that turn. */
    char u3[64];
    snprintf(u3, sizeof u3, "http://127.0.0.3:%d", port);
    assert_int_equal(gw_cluster_endpoint_count(c), 1);
    assert_string_equal(ep(c, 0).url, u3);
    gw_cluster_del(c);
    gw_loop_del(l);
    close(lfd);
}

/* gw_cluster_del from an I/O callback of a batch that still holds the
 * cluster's DNS eventfd event and an event for an endpoint connection's
 * socket: both gw_io structs (in the cluster, in the connection) must
 * outlive the batch (ASan) and be freed in the same turn (LeakSanitizer:
 * no turn follows). */
typedef struct cl_deleter {
    gw_loop *l;
    gw_io io;
    int efd;
    gw_cluster *c;
    int runs;
} cl_deleter;

static void cl_deleter_on_io(void *arg, uint32_t events)
{
    cl_deleter *d = arg;
    (void)events;
    uint64_t v;
    assert_int_equal(read(d->efd, &v, sizeof v), (ssize_t)sizeof v);
    gw_loop_io_remove(d->l, &d->io);
    gw_cluster_del(d->c);
    d->c = NULL;
    d->runs++;
}

static void test_del_inside_batch(void **state)
{
    (void)state;
    gw_loop *l = gw_loop_new();
    int port, afd;
    int lfd = silent_listener(&port);
    fake_dns f = {.mu = PTHREAD_MUTEX_INITIALIZER};
    gw_cluster *c = cluster_with_idle_conn(l, &f, lfd, port, &afd);
    cl_deleter d = {.l = l, .c = c, .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
    assert_true(d.efd >= 0);
    assert_int_equal(gw_loop_io_add(l, &d.io, d.efd, GW_IO_READ, cl_deleter_on_io, &d), 0);
    uint64_t one = 1;
    assert_int_equal(write(d.efd, &one, sizeof one), (ssize_t)sizeof one);
    assert_int_equal(gw_cluster_refresh_dns(c), 0);
    resolver_answered(&f, 2, d.efd);
    close(afd); /* loopback: the peer's socket is readable when close returns */
    assert_int_equal(gw_loop_run_once(l, 1000), 0); /* [deleter, DNS eventfd, socket] */
    assert_int_equal(d.runs, 1);
    close(d.efd);
    gw_loop_del(l);
    close(lfd);
    for (int i = 0; i < 2000 && gw_dns_jobs_alive() != 0; i++)
        usleep(5000);
    assert_int_equal(gw_dns_jobs_alive(), 0);
}

int main(void)
{
    gw_log_set_level(GW_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lb_pick),
        cmocka_unit_test(test_health_messages),
        cmocka_unit_test(test_reflect_frames),
        cmocka_unit_test(test_reflect_answers),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_no_healthy_endpoint),
        cmocka_unit_test(test_redirect_unreachable),
        cmocka_unit_test(test_least_outstanding),
        cmocka_unit_test(test_dns),
        cmocka_unit_test(test_dns_periodic),
        cmocka_unit_test(test_dns_seed),
        cmocka_unit_test(test_dns_del_during_refresh),
        cmocka_unit_test(test_dns_drop_inside_batch),
        cmocka_unit_test(test_del_inside_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
