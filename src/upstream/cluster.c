/*
 * Clusters: endpoints, the balancer, ejection and recovery, health checks
 * and periodic DNS. See cluster.h for the contract and docs/upstream.md for
 * the choices.
 *
 * Endpoints live in `eps` (the ones that take calls, in configuration and
 * address order) or in `draining` (removed by DNS, deleted once their last
 * call is done). Every endpoint is a gw_backend whose user pointer is the
 * endpoint, so the call observer (internal.h) finds it.
 *
 * DNS hand-back: each refresh round is a gw_dns_watch (resolve.c, shared
 * with lone backends): a short-lived thread resolves every name and
 * signals an eventfd the cluster watches on its loop. gw_loop_wakeup is
 * not used because its callback slot is single and belongs to whoever runs
 * the loop (the server's worker).
 */
#include "upstream/upstream.h"
#include "upstream/internal.h"
#include "codec/codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define HEALTH_PATH "/grpc.health.v1.Health/Check"
#define REAP_INTERVAL_MS 1000u
#define MAX_SOURCES 256u

typedef struct endpoint endpoint;

/* One configured URL. */
typedef struct source {
    char *url;
    char *scheme;          /* "http" / "https"; NULL for unix: and literals */
    char *host;            /* a name to resolve (needs_dns only) */
    char *port;
    char *authority;       /* host[:port] as written */
    bool needs_dns;
} source;

struct endpoint {
    gw_cluster *cl;
    gw_backend *b;
    size_t src;
    char *addr;            /* numeric address (DNS endpoints), else NULL */
    bool up;
    bool draining;
    bool unimplemented_warned;
    uint32_t ok_run, fail_run;
    gw_timer check_timer;
    gw_ucall *check;       /* health check or probe in flight */
    int check_status;      /* from the response, -1 none */
    uint64_t calls_started, calls_failed, transport_failures, checks_ok, checks_failed;
    char last_failure[256];
};

struct gw_dns_seed {
    source *srcs;
    size_t n;
    gw_dns_answer *ans;    /* per source; empty for sources without a name */
};

struct gw_cluster {
    gw_loop *loop;
    char *name;
    gw_cluster_options opt;
    char *s_service, *s_ca, *s_cert, *s_key, *s_sni, *s_authority;
    source *srcs;
    size_t nsrc;
    endpoint **eps;
    size_t n_eps;
    endpoint **draining;
    size_t n_draining;
    gw_lb_candidate *cands;
    size_t cursor;
    gw_backend *void_backend;   /* carries the "no healthy endpoint" calls */
    gw_timer reap_timer;
    bool closing;

    bool any_dns;
    gw_timer dns_timer;
    gw_dns_watch dns;      /* a refresh round in flight */
    gw_defer free_defer;   /* frees the struct after a delete inside a turn */

    gw_cluster_stats stats;
};

static void ep_on_done(void *ctx, gw_backend *b, const gw_call_status *st);
static gw_backend *ep_redirect(void *ctx, gw_backend *from);
static const gw_ucall_observer observer = {ep_on_done, ep_redirect};

/* ---- options -------------------------------------------------------------- */

void gw_cluster_options_init(gw_cluster_options *o)
{
    memset(o, 0, sizeof *o);
    o->policy = GW_LB_ROUND_ROBIN;
    gw_backend_options_init(&o->backend);
    o->health.interval_ms = 0;
    o->health.timeout_ms = 1000;
    o->health.unhealthy_threshold = 2;
    o->health.healthy_threshold = 1;
    o->health.service = "";
    o->probe_interval_ms = 1000;
    o->dns_refresh_ms = 30000;
    o->max_endpoints = 64;
}

/* ---- pure pieces ----------------------------------------------------------- */

long gw_lb_pick(gw_lb_policy policy, const gw_lb_candidate *cands, size_t n, size_t *cursor)
{
    if (n == 0)
        return -1;
    size_t start = *cursor % n;
    long best = -1;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        if (!cands[i].up)
            continue;
        if (policy != GW_LB_LEAST_OUTSTANDING) {
            best = (long)i;
            break;
        }
        if (best < 0 || cands[i].active_calls < cands[best].active_calls)
            best = (long)i;
    }
    if (best >= 0)
        *cursor = (size_t)best + 1;
    return best;
}

int gw_health_request_encode(gw_buf *out, const char *service)
{
    size_t n = service ? strlen(service) : 0;
    if (n == 0)
        return 0; /* proto3: an empty string is not written */
    return gw_wire_put_len_field(out, 1, service, n);
}

int gw_health_response_decode(const uint8_t *p, size_t n, int *status)
{
    static const uint8_t empty[1];
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, p ? p : empty, p ? n : 0);
    *status = 0;
    while (!gw_wire_eof(&rd)) {
        uint32_t field;
        gw_wire_type wt;
        if (gw_wire_read_tag(&rd, &field, &wt) != 0)
            return GW_EPARSE;
        if (field == 1 && wt == GW_WIRE_VARINT) {
            uint64_t v;
            if (gw_wire_read_varint(&rd, &v) != 0)
                return GW_EPARSE;
            *status = (int)(int32_t)v;
        } else if (gw_wire_skip(&rd, field, wt, 8) != 0) {
            return GW_EPARSE;
        }
    }
    return 0;
}

/* ---- URLs ------------------------------------------------------------------ */

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* Splits an http(s) URL into scheme, host, port and authority, enough to
 * decide whether it needs DNS. Full validation is gw_backend_new's. */
static int source_parse(source *s, const char *url, gw_error *e)
{
    s->url = strdup(url);
    if (!s->url)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    const char *rest;
    const char *def_port;
    if (strncmp(url, "http://", 7) == 0) {
        rest = url + 7;
        def_port = "80";
        s->scheme = strdup("http");
    } else if (strncmp(url, "https://", 8) == 0) {
        rest = url + 8;
        def_port = "443";
        s->scheme = strdup("https");
    } else {
        return 0; /* unix: or invalid: a single endpoint, gw_backend_new judges */
    }
    if (!s->scheme)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    size_t len = strlen(rest);
    if (len && rest[len - 1] == '/')
        len--;
    if (len == 0 || rest[0] == '[')
        return 0; /* IPv6 literal (or empty: refused later) */
    const char *colon = memchr(rest, ':', len);
    size_t hlen = colon ? (size_t)(colon - rest) : len;
    s->host = dupn(rest, hlen);
    s->port = colon ? dupn(colon + 1, len - hlen - 1) : strdup(def_port);
    s->authority = dupn(rest, len);
    if (!s->host || !s->port || !s->authority)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    s->needs_dns = hlen > 0 && !gw_dns_is_ip_literal(s->host, NULL) &&
                   !memchr(rest, '/', len) && !memchr(rest, '@', len);
    return 0;
}

static void source_free(source *s)
{
    free(s->url);
    free(s->scheme);
    free(s->host);
    free(s->port);
    free(s->authority);
}

/* ---- endpoints ------------------------------------------------------------- */

static void ep_check_tick(void *arg);

static void ep_arm_check(endpoint *ep, uint32_t delay_ms)
{
    if (gw_loop_timer_start(ep->cl->loop, &ep->check_timer,
                            gw_loop_now(ep->cl->loop) + (uint64_t)delay_ms * GW_MS) != 0)
        GW_WARN("cluster %s: no memory for a health check timer", ep->cl->name);
}

static endpoint *ep_new(gw_cluster *cl, size_t src, const char *addr, gw_error *e)
{
    const source *s = &cl->srcs[src];
    endpoint *ep = calloc(1, sizeof *ep);
    char url[512];
    if (!ep) {
        gw_error_set(e, GW_ENOMEM, "out of memory");
        return NULL;
    }
    ep->cl = cl;
    ep->src = src;
    ep->up = true;
    ep->check_status = -1;
    gw_timer_init(&ep->check_timer, ep_check_tick, ep);
    gw_backend_options bo = cl->opt.backend;
    if (addr) {
        ep->addr = strdup(addr);
        if (!ep->addr) {
            free(ep);
            gw_error_set(e, GW_ENOMEM, "out of memory");
            return NULL;
        }
        bool v6 = strchr(addr, ':') != NULL;
        snprintf(url, sizeof url, "%s://%s%s%s:%s", s->scheme, v6 ? "[" : "", addr, v6 ? "]" : "",
                 s->port);
        /* The backend still sees the name it was configured with. */
        if (!bo.authority)
            bo.authority = s->authority;
        if (!bo.server_name)
            bo.server_name = s->host;
    } else {
        snprintf(url, sizeof url, "%s", s->url);
    }
    int rc = gw_backend_new(cl->loop, url, &bo, &ep->b, e);
    if (rc != 0) {
        free(ep->addr);
        free(ep);
        return NULL;
    }
    gw_backend_set_user(ep->b, ep);
    if (cl->opt.health.interval_ms)
        ep_arm_check(ep, 0);
    return ep;
}

static void ep_del(endpoint *ep)
{
    gw_loop_timer_stop(ep->cl->loop, &ep->check_timer);
    if (ep->check) {
        gw_ucall_cancel(ep->check);
        ep->check = NULL;
    }
    gw_backend_del(ep->b);
    free(ep->addr);
    free(ep);
}

static bool ep_usable(const endpoint *ep)
{
    return ep->up && !ep->draining && !gw_backend_is_down(ep->b);
}

static size_t ep_active(const endpoint *ep)
{
    size_t n = gw_backend_active_calls(ep->b);
    return ep->check && n ? n - 1 : n;
}

static void ep_set_down(endpoint *ep, const char *why)
{
    snprintf(ep->last_failure, sizeof ep->last_failure, "%s", why);
    ep->ok_run = 0;
    if (ep->up) {
        ep->up = false;
        ep->cl->stats.ejections++;
        GW_WARN("cluster %s: endpoint %s taken out: %s", ep->cl->name, gw_backend_url(ep->b), why);
    }
    /* Something must bring it back: the health checks, or a probe. */
    if (!ep->draining && !ep->cl->closing && !gw_timer_armed(&ep->check_timer) && !ep->check)
        ep_arm_check(ep, ep->cl->opt.health.interval_ms ? ep->cl->opt.health.interval_ms
                                                        : ep->cl->opt.probe_interval_ms);
}

static void ep_set_up(endpoint *ep)
{
    if (ep->up)
        return;
    ep->up = true;
    GW_INFO("cluster %s: endpoint %s back in", ep->cl->name, gw_backend_url(ep->b));
}

/* ---- health checks and probes ----------------------------------------------------- */

static void check_on_headers(void *owner, const gw_header *md, size_t n)
{
    (void)owner;
    (void)md;
    (void)n;
}

static void check_on_message(void *owner, const uint8_t *msg, size_t len, size_t wire_len)
{
    endpoint *ep = owner;
    int status;
    if (gw_health_response_decode(msg, len, &status) == 0)
        ep->check_status = status;
    if (ep->check)
        gw_ucall_consume(ep->check, wire_len);
}

static void check_on_writable(void *owner) { (void)owner; }

static void check_on_complete(void *owner, const gw_call_status *st)
{
    endpoint *ep = owner;
    gw_cluster *cl = ep->cl;
    bool active = cl->opt.health.interval_ms != 0;
    ep->check = NULL;
    bool transport = st->unreachable || st->connection_lost;
    bool ok;
    char why[300];
    if (!active) {
        /* A probe: any answer from the server shows it is reachable. */
        ok = !transport && st->code != GW_CODE_DEADLINE_EXCEEDED;
        snprintf(why, sizeof why, "probe failed: %s %s", gw_code_name(st->code), st->detail);
    } else if (st->code == GW_CODE_OK) {
        ok = ep->check_status == 1;
        snprintf(why, sizeof why, "health check answered %s",
                 ep->check_status == 2   ? "NOT_SERVING"
                 : ep->check_status == 3 ? "SERVICE_UNKNOWN"
                 : ep->check_status < 0  ? "no message"
                                         : "UNKNOWN");
    } else if (st->code == GW_CODE_UNIMPLEMENTED) {
        /* As gRPC clients do: a server without the health service is
         * treated as healthy rather than never used. */
        ok = true;
        if (!ep->unimplemented_warned)
            GW_WARN("cluster %s: %s does not implement grpc.health.v1.Health; treating it as healthy",
                    cl->name, gw_backend_url(ep->b));
        ep->unimplemented_warned = true;
    } else {
        ok = false;
        snprintf(why, sizeof why, "health check failed: %s %s", gw_code_name(st->code), st->detail);
    }
    if (ok) {
        ep->checks_ok++;
        ep->fail_run = 0;
        ep->ok_run++;
        if (!ep->up && ep->ok_run >= (active ? GW_MAX(cl->opt.health.healthy_threshold, 1u) : 1u))
            ep_set_up(ep);
    } else {
        ep->checks_failed++;
        ep->ok_run = 0;
        ep->fail_run++;
        if (transport) {
            ep->transport_failures++;
            ep_set_down(ep, st->detail);
        } else if (ep->up && ep->fail_run >= GW_MAX(cl->opt.health.unhealthy_threshold, 1u)) {
            ep_set_down(ep, why);
        } else if (!ep->up) {
            snprintf(ep->last_failure, sizeof ep->last_failure, "%s", why);
        }
    }
    if (!ep->draining && (active || !ep->up) && !gw_timer_armed(&ep->check_timer))
        ep_arm_check(ep, active ? cl->opt.health.interval_ms : cl->opt.probe_interval_ms);
}

static const gw_ucall_handlers check_handlers = {
    check_on_headers, check_on_message, check_on_writable, check_on_complete,
};

static void ep_check_tick(void *arg)
{
    endpoint *ep = arg;
    gw_cluster *cl = ep->cl;
    bool active = cl->opt.health.interval_ms != 0;
    if (ep->draining || ep->check || (!active && ep->up))
        return;
    uint8_t frame[5 + 300];
    gw_buf body;
    gw_buf_init(&body, sizeof frame - 5);
    gw_error e;
    gw_error_clear(&e);
    int rc = gw_health_request_encode(&body, cl->opt.health.service);
    if (rc == 0) {
        frame[0] = 0;
        frame[1] = (uint8_t)(body.len >> 24);
        frame[2] = (uint8_t)(body.len >> 16);
        frame[3] = (uint8_t)(body.len >> 8);
        frame[4] = (uint8_t)body.len;
        if (body.len)
            memcpy(frame + 5, body.data, body.len);
        uint32_t timeout = cl->opt.health.timeout_ms ? cl->opt.health.timeout_ms : 1000;
        gw_ucall_params p = {.path = HEALTH_PATH,
                             .deadline_ns = gw_now_ns() + (uint64_t)timeout * GW_MS};
        ep->check_status = -1;
        rc = gw_ucall_start(ep->b, &p, &check_handlers, ep, &ep->check, &e);
        if (rc == 0) {
            gw_ucall_write(ep->check, frame, 5 + body.len);
            gw_ucall_close_send(ep->check);
        }
    }
    gw_buf_free(&body);
    if (rc != 0) {
        GW_WARN("cluster %s: cannot start a health check on %s: %s", cl->name,
                gw_backend_url(ep->b), e.msg[0] ? e.msg : gw_err_str(rc));
        ep_arm_check(ep, active ? cl->opt.health.interval_ms : cl->opt.probe_interval_ms);
        return;
    }
    /* The next tick is armed when this check completes, so checks never
     * overlap and a slow one delays the next rather than piling up. */
}

/* ---- the call observer ---------------------------------------------------------- */

static void ep_on_done(void *ctx, gw_backend *b, const gw_call_status *st)
{
    gw_cluster *cl = ctx;
    endpoint *ep = gw_backend_user(b);
    if (!ep || cl->closing)
        return;
    if (st->code != GW_CODE_OK)
        ep->calls_failed++;
    if (st->unreachable || st->connection_lost) {
        ep->transport_failures++;
        ep_set_down(ep, st->detail);
    }
    if (ep->draining && !gw_timer_armed(&cl->reap_timer))
        gw_loop_timer_start(cl->loop, &cl->reap_timer, gw_loop_now(cl->loop));
}

static endpoint *pick(gw_cluster *cl, const endpoint *except)
{
    for (size_t i = 0; i < cl->n_eps; i++) {
        cl->cands[i].up = cl->eps[i] != except && ep_usable(cl->eps[i]);
        cl->cands[i].active_calls = ep_active(cl->eps[i]);
    }
    long i = gw_lb_pick(cl->opt.policy, cl->cands, cl->n_eps, &cl->cursor);
    return i < 0 ? NULL : cl->eps[i];
}

static gw_backend *ep_redirect(void *ctx, gw_backend *from)
{
    gw_cluster *cl = ctx;
    endpoint *ep = gw_backend_user(from);
    if (cl->closing)
        return NULL;
    if (ep)
        ep_set_down(ep, "unreachable");
    endpoint *to = pick(cl, ep);
    if (!to)
        return NULL; /* the call fails here and ep_on_done counts it */
    if (ep)
        ep->transport_failures++;
    to->calls_started++;
    cl->stats.calls_redirected++;
    return to->b;
}

/* ---- calls -------------------------------------------------------------------------- */

int gw_cluster_ucall_start(gw_cluster *cl, const gw_ucall_params *p, const gw_ucall_handlers *h,
                           void *owner, gw_ucall **out, gw_error *e)
{
    *out = NULL;
    endpoint *ep = cl->closing ? NULL : pick(cl, NULL);
    if (!ep) {
        char msg[300];
        snprintf(msg, sizeof msg, "no healthy endpoint in cluster %s", cl->name);
        int rc = gw_ucall_start_failed(cl->void_backend, p, h, owner, msg, out, e);
        if (rc == 0)
            cl->stats.calls_no_endpoint++;
        return rc;
    }
    int rc = gw_ucall_start(ep->b, p, h, owner, out, e);
    if (rc != 0)
        return rc;
    gw_ucall_set_observer(*out, &observer, cl);
    ep->calls_started++;
    cl->stats.calls_started++;
    return 0;
}

/* ---- DNS --------------------------------------------------------------------------- */

/* What the resolver is asked for the n sources: *hosts[i] is the name of
 * source i, or NULL when it needs no DNS (gw_dns_resolve and
 * gw_dns_watch_start skip it); *ports[i] its port. The strings are
 * borrowed from srcs; the two arrays are the caller's to free (both NULL
 * on failure). Returns 0 or GW_ENOMEM. */
static int source_names(const source *srcs, size_t n, const char ***hosts, const char ***ports)
{
    *hosts = calloc(n ? n : 1, sizeof **hosts);
    *ports = calloc(n ? n : 1, sizeof **ports);
    if (!*hosts || !*ports) {
        free(*hosts);
        free(*ports);
        *hosts = *ports = NULL;
        return GW_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        (*hosts)[i] = srcs[i].needs_dns ? srcs[i].host : NULL;
        (*ports)[i] = srcs[i].port;
    }
    return 0;
}

/* Resolves every source that needs it into ans (n = the number of
 * sources). Runs on any thread: reads only the immutable sources and
 * options. */
static int resolve_sources(const source *srcs, size_t n, const gw_cluster_options *o,
                           gw_dns_answer *ans)
{
    const char **hosts, **ports;
    if (source_names(srcs, n, &hosts, &ports) != 0)
        return GW_ENOMEM;
    gw_dns_resolve(o->resolve, o->resolve_ctx, hosts, ports, n, o->max_endpoints, ans);
    free(hosts);
    free(ports);
    return 0;
}

static endpoint *find_ep(gw_cluster *cl, size_t src, const char *addr)
{
    for (size_t i = 0; i < cl->n_eps; i++) {
        endpoint *ep = cl->eps[i];
        if (ep->src == src && ep->addr && strcmp(ep->addr, addr) == 0)
            return ep;
    }
    return NULL;
}

static int drain_push(gw_cluster *cl, endpoint *ep)
{
    endpoint **d = realloc(cl->draining, (cl->n_draining + 1) * sizeof *d);
    if (!d)
        return GW_ENOMEM;
    cl->draining = d;
    ep->draining = true;
    ep->up = false;
    gw_loop_timer_stop(cl->loop, &ep->check_timer);
    if (ep->check) {
        gw_ucall_cancel(ep->check);
        ep->check = NULL;
    }
    cl->draining[cl->n_draining++] = ep;
    GW_INFO("cluster %s: endpoint %s removed by DNS, draining %zu call(s)", cl->name,
            gw_backend_url(ep->b), gw_backend_active_calls(ep->b));
    return 0;
}

/* Replaces the endpoint list from a finished round: existing endpoints of
 * addresses that remain are kept as they are (connections, health state). */
static void round_apply(gw_cluster *cl, const gw_dns_answer *ans)
{
    size_t cap = cl->n_eps;
    for (size_t i = 0; i < cl->nsrc; i++)
        cap += ans[i].count;
    endpoint **next = calloc(cap ? cap : 1, sizeof *next);
    gw_lb_candidate *cands = calloc(cap ? cap : 1, sizeof *cands);
    if (!next || !cands) {
        free(next);
        free(cands);
        GW_WARN("cluster %s: out of memory applying DNS results", cl->name);
        return;
    }
    size_t nn = 0;
    for (size_t s = 0; s < cl->nsrc; s++) {
        bool replace = cl->srcs[s].needs_dns && ans[s].rc == 0;
        if (cl->srcs[s].needs_dns && ans[s].rc != 0) {
            cl->stats.dns_failures++;
            GW_WARN("cluster %s: cannot resolve %s: %s (keeping %s)", cl->name, cl->srcs[s].host,
                    ans[s].why, "its current endpoints");
        }
        if (!replace) {
            for (size_t i = 0; i < cl->n_eps; i++)
                if (cl->eps[i]->src == s)
                    next[nn++] = cl->eps[i];
            continue;
        }
        for (size_t j = 0; j < ans[s].count; j++) {
            const char *addr = ans[s].addrs[j];
            bool dup = false;
            for (size_t k = 0; k < nn; k++)
                dup = dup || (next[k]->src == s && strcmp(next[k]->addr, addr) == 0);
            if (dup)
                continue;
            endpoint *ep = find_ep(cl, s, addr);
            if (!ep) {
                gw_error e;
                gw_error_clear(&e);
                ep = ep_new(cl, s, addr, &e);
                if (!ep) {
                    GW_WARN("cluster %s: endpoint %s: %s", cl->name, addr, e.msg);
                    continue;
                }
                GW_INFO("cluster %s: endpoint %s added by DNS", cl->name, gw_backend_url(ep->b));
            }
            next[nn++] = ep;
        }
    }
    /* Endpoints no longer listed drain. */
    for (size_t i = 0; i < cl->n_eps; i++) {
        bool kept = false;
        for (size_t k = 0; k < nn && !kept; k++)
            kept = next[k] == cl->eps[i];
        if (!kept && drain_push(cl, cl->eps[i]) != 0)
            next[nn++] = cl->eps[i]; /* cannot track it: keep it serving */
    }
    free(cl->eps);
    free(cl->cands);
    cl->eps = next;
    cl->n_eps = nn;
    cl->cands = cands;
    cl->stats.dns_resolutions++;
    /* Not reaped here: this runs inside the eventfd's I/O callback, and a
     * drained endpoint's backend owns sockets the same batch may still
     * name. The timer runs after the batch, in this turn. */
    if (cl->n_draining && !gw_timer_armed(&cl->reap_timer))
        gw_loop_timer_start(cl->loop, &cl->reap_timer, gw_loop_now(cl->loop));
}

static void on_resolved(void *arg, const gw_dns_answer *ans, size_t n)
{
    gw_cluster *cl = arg;
    if (n == cl->nsrc)
        round_apply(cl, ans);
    if (cl->opt.dns_refresh_ms && !gw_timer_armed(&cl->dns_timer))
        gw_loop_timer_start(cl->loop, &cl->dns_timer,
                            gw_loop_now(cl->loop) + (uint64_t)cl->opt.dns_refresh_ms * GW_MS);
}

int gw_cluster_refresh_dns(gw_cluster *cl)
{
    if (!cl->any_dns || gw_dns_watch_busy(&cl->dns))
        return 0;
    gw_loop_timer_stop(cl->loop, &cl->dns_timer);
    const char **hosts, **ports;
    if (source_names(cl->srcs, cl->nsrc, &hosts, &ports) != 0)
        return GW_ENOMEM;
    int rc = gw_dns_watch_start(&cl->dns, cl->opt.resolve, cl->opt.resolve_ctx, hosts, ports,
                                cl->nsrc, cl->opt.max_endpoints);
    free(hosts);
    free(ports);
    return rc;
}

static void on_dns_timer(void *arg)
{
    gw_cluster *cl = arg;
    int rc = gw_cluster_refresh_dns(cl);
    if (rc != 0) {
        GW_WARN("cluster %s: cannot start DNS refresh: %s", cl->name, gw_err_str(rc));
        gw_loop_timer_start(cl->loop, &cl->dns_timer,
                            gw_loop_now(cl->loop) + (uint64_t)cl->opt.dns_refresh_ms * GW_MS);
    }
}

/* ---- draining ------------------------------------------------------------------------ */

static void reap(gw_cluster *cl)
{
    size_t k = 0;
    for (size_t i = 0; i < cl->n_draining; i++) {
        endpoint *ep = cl->draining[i];
        if (gw_backend_active_calls(ep->b) == 0) {
            GW_INFO("cluster %s: endpoint %s drained", cl->name, gw_backend_url(ep->b));
            ep_del(ep);
        } else {
            cl->draining[k++] = ep;
        }
    }
    cl->n_draining = k;
    if (k && !cl->closing)
        gw_loop_timer_start(cl->loop, &cl->reap_timer,
                            gw_loop_now(cl->loop) + (uint64_t)REAP_INTERVAL_MS * GW_MS);
}

static void on_reap_timer(void *arg) { reap(arg); }

/* ---- lifecycle ------------------------------------------------------------------------ */

static int dup_opt(const char *in, char **keep, const char **field)
{
    if (!in)
        return 0;
    *keep = strdup(in);
    if (!*keep)
        return GW_ENOMEM;
    *field = *keep;
    return 0;
}

int gw_cluster_new(gw_loop *loop, const char *name, const char *const *urls, size_t n,
                   const gw_cluster_options *o, gw_cluster **out, gw_error *e)
{
    *out = NULL;
    gw_cluster_options defaults;
    if (!o) {
        gw_cluster_options_init(&defaults);
        o = &defaults;
    }
    if (!name || !*name)
        return gw_error_set(e, GW_EINVAL, "cluster: a name is required");
    if (n == 0 || !urls)
        return gw_error_set(e, GW_EINVAL, "cluster %s: no endpoint URL", name);
    if (n > MAX_SOURCES)
        return gw_error_set(e, GW_EINVAL, "cluster %s: more than %u endpoint URLs", name, MAX_SOURCES);
    if (o->health.interval_ms && o->health.timeout_ms > o->health.interval_ms)
        return gw_error_set(e, GW_EINVAL, "cluster %s: health check timeout (%u ms) above the interval (%u ms)",
                            name, o->health.timeout_ms, o->health.interval_ms);
    gw_cluster *cl = calloc(1, sizeof *cl);
    int rc = GW_ENOMEM;
    gw_dns_answer *ans = NULL;
    if (!cl)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    cl->loop = loop;
    cl->opt = *o;
    cl->opt.seed = NULL; /* borrowed for this call only */
    gw_dns_watch_init(&cl->dns, loop, on_resolved, cl);
    gw_defer_init(&cl->free_defer, free, cl);
    gw_timer_init(&cl->reap_timer, on_reap_timer, cl);
    gw_timer_init(&cl->dns_timer, on_dns_timer, cl);
    cl->name = strdup(name);
    if (!cl->name)
        goto oom;
    /* What clients may see of an endpoint's failure (its URL they may not:
     * gw_backend_options.hide_details). */
    if (!cl->opt.backend.name)
        cl->opt.backend.name = cl->name;
    if (!cl->opt.probe_interval_ms)
        cl->opt.probe_interval_ms = 1000;
    cl->opt.health.service = o->health.service ? o->health.service : "";
    if (dup_opt(cl->opt.health.service, &cl->s_service, &cl->opt.health.service) ||
        dup_opt(o->backend.ca_file, &cl->s_ca, &cl->opt.backend.ca_file) ||
        dup_opt(o->backend.cert_file, &cl->s_cert, &cl->opt.backend.cert_file) ||
        dup_opt(o->backend.key_file, &cl->s_key, &cl->opt.backend.key_file) ||
        dup_opt(o->backend.server_name, &cl->s_sni, &cl->opt.backend.server_name) ||
        dup_opt(o->backend.authority, &cl->s_authority, &cl->opt.backend.authority))
        goto oom;
    cl->srcs = calloc(n, sizeof *cl->srcs);
    if (!cl->srcs)
        goto oom;
    cl->nsrc = n;
    for (size_t i = 0; i < n; i++) {
        if (!urls[i]) {
            rc = gw_error_set(e, GW_EINVAL, "cluster %s: endpoint URL %zu is missing", name, i);
            goto fail;
        }
        rc = source_parse(&cl->srcs[i], urls[i], e);
        if (rc != 0)
            goto fail;
        cl->any_dns = cl->any_dns || cl->srcs[i].needs_dns;
    }
    /* The carrier of fail-fast calls never connects anywhere. */
    rc = gw_backend_new(loop, "unix:/nonexistent/grpcgate-no-endpoint", &cl->opt.backend,
                        &cl->void_backend, e);
    if (rc != 0)
        goto fail;
    if (o->seed && cl->any_dns) {
        /* Names resolved beforehand on another thread (gw_dns_seed_new). */
        const gw_dns_seed *seed = o->seed;
        bool same = seed->n == n;
        for (size_t i = 0; same && i < n; i++)
            same = strcmp(seed->srcs[i].url, cl->srcs[i].url) == 0;
        if (!same) {
            rc = gw_error_set(e, GW_EINVAL, "cluster %s: the DNS seed was made for other URLs", name);
            goto fail;
        }
        ans = gw_dns_answers_copy(seed->ans, n);
    } else {
        ans = gw_dns_answers_new(n);
        if (ans && cl->any_dns && resolve_sources(cl->srcs, n, &cl->opt, ans) != 0)
            goto oom;
    }
    if (!ans)
        goto oom;
    size_t cap = n;
    for (size_t i = 0; i < n; i++)
        cap += ans[i].count;
    cl->eps = calloc(cap, sizeof *cl->eps);
    cl->cands = calloc(cap, sizeof *cl->cands);
    if (!cl->eps || !cl->cands)
        goto oom;
    for (size_t s = 0; s < n; s++) {
        if (!cl->srcs[s].needs_dns) {
            endpoint *ep = ep_new(cl, s, NULL, e);
            if (!ep) {
                rc = e ? e->code : GW_EINVAL;
                gw_error_prefix(e, "cluster %s", name);
                goto fail;
            }
            cl->eps[cl->n_eps++] = ep;
        }
    }
    if (cl->any_dns) {
        /* Sources in order: rebuild with the resolved ones in place. */
        endpoint **lit = cl->eps;
        size_t nlit = cl->n_eps;
        cl->eps = calloc(cap, sizeof *cl->eps);
        if (!cl->eps) {
            cl->eps = lit;
            goto oom;
        }
        cl->n_eps = 0;
        size_t li = 0;
        for (size_t s = 0; s < n; s++) {
            if (!cl->srcs[s].needs_dns) {
                cl->eps[cl->n_eps++] = lit[li++];
                continue;
            }
            if (ans[s].rc != 0) {
                cl->stats.dns_failures++;
                GW_WARN("cluster %s: cannot resolve %s: %s (will retry)", name, cl->srcs[s].host,
                        ans[s].why);
            }
            for (size_t j = 0; j < ans[s].count; j++) {
                gw_error pe;
                gw_error_clear(&pe);
                endpoint *ep = ep_new(cl, s, ans[s].addrs[j], &pe);
                if (ep)
                    cl->eps[cl->n_eps++] = ep;
                else
                    GW_WARN("cluster %s: endpoint %s: %s", name, ans[s].addrs[j], pe.msg);
            }
        }
        (void)nlit;
        free(lit);
        cl->stats.dns_resolutions++;
        if (cl->opt.dns_refresh_ms)
            gw_loop_timer_start(loop, &cl->dns_timer,
                                gw_loop_now(loop) + (uint64_t)cl->opt.dns_refresh_ms * GW_MS);
    }
    gw_dns_answers_free(ans, n);
    *out = cl;
    return 0;
oom:
    rc = gw_error_set(e, GW_ENOMEM, "out of memory");
fail:
    gw_dns_answers_free(ans, n);
    gw_cluster_del(cl);
    return rc;
}

void gw_cluster_del(gw_cluster *cl)
{
    if (!cl)
        return;
    cl->closing = true;
    gw_dns_watch_stop(&cl->dns); /* its thread finishes on its own */
    gw_loop_timer_stop(cl->loop, &cl->dns_timer);
    gw_loop_timer_stop(cl->loop, &cl->reap_timer);
    for (size_t i = 0; i < cl->n_eps; i++)
        ep_del(cl->eps[i]);
    for (size_t i = 0; i < cl->n_draining; i++)
        ep_del(cl->draining[i]);
    if (cl->void_backend)
        gw_backend_del(cl->void_backend);
    for (size_t i = 0; cl->srcs && i < cl->nsrc; i++)
        source_free(&cl->srcs[i]);
    free(cl->srcs);
    free(cl->eps);
    free(cl->draining);
    free(cl->cands);
    free(cl->s_service);
    free(cl->s_ca);
    free(cl->s_cert);
    free(cl->s_key);
    free(cl->s_sni);
    free(cl->s_authority);
    free(cl->name);
    /* The struct holds the gw_io of the DNS watch, which this loop turn's
     * batch may still name (loop.h): inside a turn it goes after it. */
    if (gw_loop_in_turn(cl->loop))
        gw_loop_defer(cl->loop, &cl->free_defer);
    else
        free(cl);
}

const char *gw_cluster_name(const gw_cluster *cl) { return cl->name; }

/* ---- statistics ------------------------------------------------------------------------ */

void gw_cluster_get_stats(const gw_cluster *cl, gw_cluster_stats *out)
{
    *out = cl->stats;
    out->endpoints = cl->n_eps;
    out->healthy_endpoints = 0;
    out->active_calls = 0;
    for (size_t i = 0; i < cl->n_eps; i++) {
        if (ep_usable(cl->eps[i]))
            out->healthy_endpoints++;
        out->active_calls += ep_active(cl->eps[i]);
    }
    for (size_t i = 0; i < cl->n_draining; i++)
        out->active_calls += ep_active(cl->draining[i]);
}

size_t gw_cluster_endpoint_count(const gw_cluster *cl) { return cl->n_eps + cl->n_draining; }

int gw_cluster_endpoint_stats(const gw_cluster *cl, size_t i, gw_endpoint_stats *out)
{
    const endpoint *ep;
    if (i < cl->n_eps)
        ep = cl->eps[i];
    else if (i - cl->n_eps < cl->n_draining)
        ep = cl->draining[i - cl->n_eps];
    else
        return GW_ERANGE;
    *out = (gw_endpoint_stats){
        .url = gw_backend_url(ep->b),
        .name_url = cl->srcs[ep->src].url,
        .healthy = ep_usable(ep),
        .draining = ep->draining,
        .active_calls = ep_active(ep),
        .calls_started = ep->calls_started,
        .calls_failed = ep->calls_failed,
        .transport_failures = ep->transport_failures,
        .checks_ok = ep->checks_ok,
        .checks_failed = ep->checks_failed,
        .last_failure = ep->last_failure,
    };
    return 0;
}

/* ---- DNS seeds ----------------------------------------------------------------------- */

void gw_dns_seed_del(gw_dns_seed *seed)
{
    if (!seed)
        return;
    for (size_t i = 0; seed->srcs && i < seed->n; i++)
        source_free(&seed->srcs[i]);
    free(seed->srcs);
    gw_dns_answers_free(seed->ans, seed->n);
    free(seed);
}

int gw_dns_seed_new(const char *const *urls, size_t n, const gw_cluster_options *o,
                    gw_dns_seed **out, gw_error *e)
{
    *out = NULL;
    gw_cluster_options defaults;
    if (!o) {
        gw_cluster_options_init(&defaults);
        o = &defaults;
    }
    if (n == 0 || n > MAX_SOURCES || !urls)
        return gw_error_set(e, GW_EINVAL, "DNS seed: 1 to %u URLs", MAX_SOURCES);
    gw_dns_seed *seed = calloc(1, sizeof *seed);
    if (!seed)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    seed->srcs = calloc(n, sizeof *seed->srcs);
    seed->ans = gw_dns_answers_new(n);
    if (!seed->srcs || !seed->ans) {
        gw_dns_seed_del(seed);
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    }
    seed->n = n;
    for (size_t i = 0; i < n; i++) {
        int rc = urls[i] ? source_parse(&seed->srcs[i], urls[i], e)
                         : gw_error_set(e, GW_EINVAL, "DNS seed: URL %zu is missing", i);
        if (rc != 0) {
            gw_dns_seed_del(seed);
            return rc;
        }
    }
    if (resolve_sources(seed->srcs, n, o, seed->ans) != 0) {
        gw_dns_seed_del(seed);
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    }
    *out = seed;
    return 0;
}

const gw_backend *gw_cluster_endpoint_backend(const gw_cluster *cl, size_t i)
{
    if (i < cl->n_eps)
        return cl->eps[i]->b;
    if (i - cl->n_eps < cl->n_draining)
        return cl->draining[i - cl->n_eps]->b;
    return NULL;
}

/* ---- readiness (docs/operations.md "Health endpoints") ------------------------- */

void gw_cluster_warm(gw_cluster *cl)
{
    /* Ejected endpoints are probed or health-checked back already. */
    for (size_t i = 0; i < cl->n_eps; i++)
        if (cl->eps[i]->up && !cl->eps[i]->draining)
            gw_backend_warm(cl->eps[i]->b);
}

size_t gw_cluster_ready_endpoints(const gw_cluster *cl, bool untried_ok)
{
    size_t n = 0;
    for (size_t i = 0; i < cl->n_eps; i++)
        if (cl->eps[i]->up && !cl->eps[i]->draining &&
            gw_backend_ready(cl->eps[i]->b, untried_ok))
            n++;
    return n;
}
