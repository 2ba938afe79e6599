/*
 * Workers, request classification and graceful stop. See server.h and
 * docs/front.md.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "connect/connect.h"
#include "grpcweb/grpcweb.h"
#include "schema/schema.h"
#include "openapi/openapi.h"
#include "server/ops.h"
#include "server/server.h"
#include "server/static.h"
#include "upstream/reflect.h"

/* The request headers every gRPC-Web and Connect client sends, always
 * allowed. */
#define CORS_BASE_HEADERS \
    "content-type, x-grpc-web, x-user-agent, grpc-timeout, authorization, " \
    "connect-protocol-version, connect-timeout-ms, connect-content-encoding, " \
    "connect-accept-encoding, content-encoding"

typedef struct worker worker;
typedef struct server server;

#define MAX_TARGETS (1 + GW_SERVER_MAX_BACKENDS)

/* A cluster's host names resolved on the main thread, shared by reference
 * count: by every worker's instance, and by the later generations that
 * keep the target (same id), so that a worker building the instance late
 * (it skipped a generation, or failed to build it before) never resolves
 * on its own loop. Freed by whichever thread drops the last snapshot. */
typedef struct sseed {
    atomic_uint refs;
    gw_dns_seed *seed;
} sseed;

/* Where a generation sends calls: the `default` backend (--backend) first
 * when given, then the named backends. Each worker runs its own instance
 * of every target; generations whose target has the same id share it. */
typedef struct starget {
    const char *name;             /* "default" or the backend's name (routes) */
    const char *label;            /* metrics, access log: the URL for default */
    const char *url;              /* default: its URL; NULL: a cluster */
    const gw_backend_options *upstream;  /* default: its options */
    const gw_server_backend *def; /* a cluster: its definition (in cfg) */
    bool hide_details;            /* !cfg->debug_errors */
    unsigned id;                  /* equal ids: equal definitions */
    sseed *seed;                  /* a cluster's names (a reference); NULL: none */
    size_t slot;                  /* metrics slot of `label` */
    unsigned slot_use;            /* server.slot_use[slot] when it was given */
    char *new_label;              /* the label copy the slot takes on commit */
} starget;

/*
 * What one configuration generation serves with: built off the workers'
 * threads (at start, on SIGHUP), immutable afterwards, shared by reference
 * count. A worker holds the current one and picks up a new one when woken;
 * every call holds the one it started with (observe_start / observe), so a
 * reload never changes anything under a call in flight.
 */
typedef struct snapshot {
    atomic_uint refs;
    server *s;
    gw_server_config *own_cfg;    /* a reloaded configuration; NULL: the startup one */
    const gw_server_config *cfg;
    gw_registry *registry;
    gw_router *router;            /* REST routes of `registry` */
    gw_call_options call;         /* cfg->call + the registry + observers */
    gw_call_rest_config rest;
    char *allow_headers;          /* CORS_BASE_HEADERS + configured ones */
    gw_blob *openapi;             /* the document, or NULL when not served */
    unsigned generation;
    starget targets[MAX_TARGETS];
    size_t target_count;
    gw_ops_backends ops_backends; /* the targets as scrapes see them */
    gw_ops_site ops_site;         /* the endpoints' paths and the document */
    gw_backend_options default_upstream;  /* the default target's (default_options) */
    bool slots_held;              /* counted in server.slot_snaps */
    /* routing: empty means every method goes to target 0 */
    struct sroute {
        const char *match;        /* in cfg */
        size_t len;               /* 0 for "*" */
        int target;
    } *routes;
    size_t route_count;
} snapshot;

struct server {
    const gw_server_config *cfg;  /* the startup configuration */
    snapshot *current;            /* written by the main thread under snap_lock */
    atomic_flag snap_lock;        /* held only to load+ref or swap `current` */
    char host[64];
    uint16_t port;
    size_t worker_count;
    worker *workers;
    gw_front_iplimit *ip_limit;  /* shared per-IP counts, if limited */
    /* operations (ops.h) */
    gw_ops ops;
    gw_metrics **metrics;        /* [worker_count], each in its worker */
    gw_accesslog *alog;          /* NULL: no access log */
    gw_admin *admin;             /* NULL: no separate admin listener */
    /* Target ids (main thread). The metrics slots: a label keeps its slot
     * while any live snapshot uses it; slot_snaps counts those snapshots
     * (raised on the main thread when a snapshot is committed, lowered by
     * whichever thread frees one), and a slot at 0 may be given to another
     * label, its counters zeroed first. slot_use counts the labels a slot
     * has had, so that a worker notices the change (slot_carry). */
    unsigned next_target_id;
    char *slot_labels[GW_METRICS_MAX_BACKENDS];
    atomic_uint slot_snaps[GW_METRICS_MAX_BACKENDS];
    unsigned slot_use[GW_METRICS_MAX_BACKENDS];
    char *tls_cert, *tls_key, *tls_ca;   /* PEM texts, NULL: plain HTTP */
    gw_static *statics;          /* NULL: no static directory */
};

/* A worker's instance of a target: a backend or a cluster on its loop. */
typedef struct winst {
    struct winst *next;
    unsigned id;                  /* starget.id */
    unsigned refs;                /* views using it */
    gw_backend *backend;          /* the default backend, or */
    gw_cluster *cluster;
} winst;

/* A generation as one worker runs it: its targets' instances, and how many
 * of this worker's calls started with it. The current view takes new
 * calls; older ones live until their last call ends, then their
 * instances that no newer view shares are deleted (connections closed). */
typedef struct wview {
    struct wview *next;
    snapshot *sn;                 /* a reference */
    size_t calls;
    winst *targets[MAX_TARGETS];  /* NULL: could not be created (logged) */
} wview;

/* What a worker last sampled into one metrics slot. When the instance
 * behind a label is replaced (same name, changed definition), the new one
 * counts from zero: base keeps what the instances before it reached, so
 * the slot's counters never go backwards (Prometheus would see a reset). */
typedef struct slot_carry {
    unsigned use;                 /* server.slot_use of the label sampled */
    unsigned id;                  /* the instance (target id) sampled; 0: none */
    gw_backend_sample last;       /* its own totals at the last sample */
    gw_backend_sample base;       /* totals of the instances before it */
} slot_carry;

struct worker {
    server *s;
    unsigned index;
    pthread_t thread;
    bool started;
    gw_loop *loop;
    gw_front *front;
    gw_ws_hub *ws;          /* WebSocket sessions of this worker */
    atomic_bool stop_requested;
    bool draining;
    uint64_t drain_deadline_ns;
    gw_timer drain_check;
    gw_metrics metrics;     /* written by this worker only */
    gw_buf logline;         /* access-log line being formatted */
    gw_timer sample;        /* copies backend state into metrics */
    snapshot *snap;         /* the generation new requests use (view->sn) */
    wview *view;            /* current */
    wview *old_views;       /* with calls in flight */
    winst *insts;           /* every instance of every view */
    gw_defer gc;            /* deletes finished views off the call's stack */
    atomic_uint generation_seen;  /* the newest generation this worker serves */
    atomic_uint generation_failed;  /* the newest one it could not switch to */
    slot_carry carry[GW_METRICS_MAX_BACKENDS];
};

/* ---- CORS ------------------------------------------------------------------------ */

/* The Access-Control-Allow-Origin value for origin, or NULL if not allowed. */
static const char *cors_origin(const gw_server_config *c, const char *origin)
{
    if (!origin)
        return NULL;
    for (size_t i = 0; i < c->origin_count; i++) {
        if (strcmp(c->origins[i], "*") == 0)
            /* "*" cannot be combined with credentials: echo the origin. */
            return c->cors_credentials ? origin : "*";
        if (strcmp(c->origins[i], origin) == 0)
            return origin;
    }
    return NULL;
}

/* The methods a preflight for r's path may ask for: a REST path's routed
 * methods plus OPTIONS; a gRPC-Web method path or an unknown one: POST,
 * OPTIONS. Written into buf (cap bytes). */
static const char *preflight_methods(const snapshot *s, gw_front_req *r, char *buf, size_t cap)
{
    static const char grpc[] = "POST, OPTIONS";
    static const char get_too[] = "GET, POST, OPTIONS";
    const char *path = gw_front_req_path(r);
    const gw_method_def *gm = gw_registry_method_by_path(s->registry, path, strlen(path));
    if (gm) /* Connect GET for methods without side effects */
        return gm->idempotency_level == GW_IDEMPOTENCY_NO_SIDE_EFFECTS ? get_too : grpc;
    if (!s->router)
        return grpc;
    const char *target = gw_front_req_target(r);
    const char *q = strchr(target, '?');
    size_t len = q ? (size_t)(q - target) : strlen(target);
    /* OPTIONS is never routed: the 405 answer lists what the path has. */
    gw_arena a;
    gw_arena_init(&a, 1024, 64 * 1024);
    gw_route_match m;
    gw_error e;
    gw_error_clear(&e);
    const char *out = grpc;
    if (gw_router_match(s->router, "OPTIONS", target, len, &a, &m, &e) == 0 &&
        m.result == GW_ROUTE_METHOD_NOT_ALLOWED && m.allow_count) {
        size_t n = 0;
        buf[0] = 0;
        /* HEAD, implied by GET, is a CORS-safelisted method: a preflight
         * never asks for it, so the list stays the routes' own. */
        for (size_t i = 0; i < m.allow_count && n < cap; i++)
            if (strcmp(m.allow[i], "HEAD") != 0)
                n += (size_t)snprintf(buf + n, cap - n, "%s, ", m.allow[i]);
        if (n < cap)
            n += (size_t)snprintf(buf + n, cap - n, "OPTIONS");
        if (n < cap)
            out = buf;
    }
    gw_arena_free(&a);
    return out;
}

static void preflight(worker *w, gw_front_req *r, const char *origin)
{
    const snapshot *s = w->snap;
    const char *allow = cors_origin(s->cfg, origin);
    if (!allow) {
        static const gw_front_header h[] = {{"Content-Type", "text/plain; charset=utf-8"}};
        static const char msg[] = "CORS: origin not allowed\n";
        gw_front_req_respond(r, 403, h, GW_ARRAY_LEN(h), msg, sizeof msg - 1);
        return;
    }
    char max_age[24];
    snprintf(max_age, sizeof max_age, "%u", s->cfg->cors_max_age_s);
    gw_front_header h[8];
    size_t n = 0;
    h[n++] = (gw_front_header){"Access-Control-Allow-Origin", allow};
    if (strcmp(allow, "*") != 0)
        h[n++] = (gw_front_header){"Vary", "Origin"};
    char methods[GW_ROUTE_ALLOW_MAX * 16 + 16];
    h[n++] = (gw_front_header){"Access-Control-Allow-Methods",
                               preflight_methods(s, r, methods, sizeof methods)};
    h[n++] = (gw_front_header){"Access-Control-Allow-Headers", s->allow_headers};
    h[n++] = (gw_front_header){"Access-Control-Max-Age", max_age};
    if (s->cfg->cors_credentials)
        h[n++] = (gw_front_header){"Access-Control-Allow-Credentials", "true"};
    gw_front_req_respond(r, 204, h, n, "", 0);
}

/*
 * A plain (non-CORS) OPTIONS (RFC 9110 9.3.7): 204 with the path's methods
 * in Allow — an RPC method path: POST, OPTIONS (GET too for a method without
 * side effects, which Connect may GET); a REST path: its routes'
 * methods (HEAD wherever GET) and OPTIONS; a static file: GET, HEAD,
 * OPTIONS; "OPTIONS *": every method the gateway answers. Returns false,
 * without answering, for a path nothing serves (the REST dispatch then
 * answers its JSON 404) and for a path with a route declared for OPTIONS
 * itself (the call goes to the backend).
 */
static int route_of(const snapshot *sn, const gw_method_def *m);

static bool plain_options(server *s, const snapshot *sn, gw_front_req *r, const char *origin)
{
    const char *path = gw_front_req_path(r);
    const char *target = gw_front_req_target(r);
    char allow[GW_ROUTE_ALLOW_MAX * 16 + 16];
    const char *value = NULL;
    const gw_method_def *m = gw_registry_method_by_path(sn->registry, path, strlen(path));
    if (strcmp(target, "*") == 0) {
        value = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT";
    } else if (m && route_of(sn, m) >= 0) {
        /* Connect may GET a method without side effects (as preflights say). */
        value = m->idempotency_level == GW_IDEMPOTENCY_NO_SIDE_EFFECTS ? "GET, POST, OPTIONS"
                                                                      : "POST, OPTIONS";
    } else if (sn->router) {
        gw_arena a;
        gw_arena_init(&a, 1024, 64 * 1024);
        gw_route_match rm;
        int rc = gw_router_match(sn->router, "OPTIONS", target, strcspn(target, "?"), &a, &rm,
                                 NULL);
        if (rc == 0 && rm.result == GW_ROUTE_METHOD_NOT_ALLOWED && rm.allow_count) {
            size_t n = 0;
            for (size_t i = 0; i < rm.allow_count && n < sizeof allow; i++)
                n += (size_t)snprintf(allow + n, sizeof allow - n, "%s, ", rm.allow[i]);
            if (n < sizeof allow)
                n += (size_t)snprintf(allow + n, sizeof allow - n, "OPTIONS");
            if (n < sizeof allow)
                value = allow;
        }
        gw_arena_free(&a);
        if (rc == 0 && rm.result == GW_ROUTE_MATCHED)
            return false;
    }
    if (!value && s->statics && gw_static_exists(s->statics, target))
        value = "GET, HEAD, OPTIONS";
    if (!value)
        return false;
    gw_front_header h[2];
    size_t n = 0;
    h[n++] = (gw_front_header){"Allow", value};
    const char *allow_origin = cors_origin(sn->cfg, origin);
    if (allow_origin)
        h[n++] = (gw_front_header){"Access-Control-Allow-Origin", allow_origin};
    gw_front_req_respond(r, 204, h, n, "", 0);
    return true;
}

/* ---- classification --------------------------------------------------------------- */

static void plain(gw_front_req *r, int status, const char *allow_origin, const char *text)
{
    gw_front_header h[3];
    size_t n = 0;
    h[n++] = (gw_front_header){"Content-Type", "text/plain; charset=utf-8"};
    if (allow_origin)
        h[n++] = (gw_front_header){"Access-Control-Allow-Origin", allow_origin};
    if (status == 405)
        h[n++] = (gw_front_header){"Allow", "POST, OPTIONS"};
    gw_front_req_respond(r, status, h, n, text, strlen(text));
}

/* ---- routing -------------------------------------------------------------------------- */

static bool route_matches(const struct sroute *r, const gw_method_def *m)
{
    if (r->len == 0)
        return true;
    if (r->match[0] == '/')
        return strncmp(m->path, r->match, r->len) == 0;
    const char *svc = m->service ? m->service->full_name : "";
    if (r->match[r->len - 1] == '.')
        return strncmp(svc, r->match, r->len) == 0;
    return strcmp(svc, r->match) == 0;
}

/* The target serving m in sn, or -1 when m is routed nowhere (not exposed). */
static int route_of(const snapshot *sn, const gw_method_def *m)
{
    if (sn->route_count == 0)
        return 0;
    int best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < sn->route_count; i++) {
        const struct sroute *r = &sn->routes[i];
        if ((best < 0 || r->len > best_len) && route_matches(r, m)) {
            best = r->target;
            best_len = r->len;
        }
    }
    return best;
}

static _Thread_local struct worker *current_worker;

/* The worker's view of sn: the current one, or an older one that still has
 * calls. NULL if there is none (not expected). */
static wview *view_of(worker *w, const snapshot *sn)
{
    if (w->view && w->view->sn == sn)
        return w->view;
    for (wview *v = w->old_views; v; v = v->next)
        if (v->sn == sn)
            return v;
    return NULL;
}

/* gw_call_options.upstream_start: the call goes where its method is routed,
 * on the instance of the generation the call started with. */
static int upstream_start(void *ctx, const gw_method_def *m, const gw_ucall_params *p,
                          const gw_ucall_handlers *h, void *owner, gw_ucall **out, gw_error *e)
{
    const snapshot *sn = ctx;
    worker *w = current_worker;
    int t = m && w ? route_of(sn, m) : -1;
    if (t < 0)
        return gw_error_set(e, GW_ENOTFOUND, "method %s is not routed to any backend",
                            m ? m->path : "?");
    wview *v = view_of(w, sn);
    winst *in = v ? v->targets[t] : NULL;
    if (!in)
        return gw_error_set(e, GW_EIO, "backend %s is not available (see the gateway's log)",
                            sn->targets[t].name);
    if (in->backend)
        return gw_ucall_start(in->backend, p, h, owner, out, e);
    return gw_cluster_ucall_start(in->cluster, p, h, owner, out, e);
}

/* ---- operations glue (metrics, access log; see ops.h) ------------------------------ */

/* Calls end on their worker's thread: this finds the worker's counters
 * without a lookup. NULL outside worker threads (teardown after a failed
 * start), where nothing is counted. */

#define SAMPLE_INTERVAL_NS (250 * GW_MS)

static void snapshot_unref(snapshot *sn);

static void snapshot_ref(snapshot *sn)
{
    atomic_fetch_add_explicit(&sn->refs, 1, memory_order_relaxed);
}

/* ctx is the call's snapshot: the reference taken at start is dropped here,
 * and the last call of an older view lets its instances go. */
static void ops_observe(void *ctx, const gw_call_report *rep)
{
    snapshot *sn = ctx;
    worker *w = current_worker;
    if (w) {
        gw_metrics_observe(&w->metrics, rep);
        if (sn->s->alog)
        {
            int t = rep->method ? route_of(sn, rep->method) : -1;
            gw_accesslog_write(sn->s->alog, &w->logline, rep,
                               t < 0 ? NULL : sn->targets[t].label);
        }
        wview *v = view_of(w, sn);
        if (v && v->calls && --v->calls == 0 && v != w->view)
            gw_loop_defer(w->loop, &w->gc);
    }
    snapshot_unref(sn);
}

static void ops_observe_start(void *ctx)
{
    snapshot_ref(ctx);
    worker *w = current_worker;
    if (w) {
        gw_metrics_call_started(&w->metrics);
        wview *v = view_of(w, ctx);
        if (v)
            v->calls++;
    }
}

/* An instance's own numbers (no carry). */
static void sample_target(const starget *st, const winst *in, bool untried_ok,
                          gw_backend_sample *bs)
{
    memset(bs, 0, sizeof *bs);
    if (in && in->backend) {
        gw_backend_stats stats;
        gw_backend_get_stats(in->backend, &stats);
        bs->connections_open = stats.connections_open;
        bs->connects_started = stats.connects_started;
        bs->connects_ok = stats.connects_ok;
        bs->queued_calls = stats.queued_calls;
        bs->endpoints = 1;
        bs->healthy_endpoints = gw_backend_is_down(in->backend) ? 0 : 1;
        bs->ready_endpoints = gw_backend_ready(in->backend, untried_ok) ? 1 : 0;
    }
    if (!in || !in->cluster)
        return;
    gw_cluster *c = in->cluster;
    const gw_server_backend *def = st->def;
    gw_cluster_stats cs;
    gw_cluster_get_stats(c, &cs);
    bs->endpoints = cs.endpoints;
    bs->healthy_endpoints = cs.healthy_endpoints;
    bs->ready_endpoints = gw_cluster_ready_endpoints(c, untried_ok);
    size_t n = gw_cluster_endpoint_count(c);
    for (size_t j = 0; j < n; j++) {
        gw_endpoint_stats es;
        if (gw_cluster_endpoint_stats(c, j, &es) != 0)
            continue;
        bs->checks_ok += es.checks_ok;
        bs->checks_failed += es.checks_failed;
        /* by the configured URL the address came from */
        for (size_t k = 0; k < def->endpoint_count && k < GW_METRICS_MAX_ENDPOINTS; k++)
            if (es.name_url && strcmp(es.name_url, def->endpoints[k]) == 0) {
                bs->ep_calls[k] += es.calls_started;
                if (es.healthy && !es.draining)
                    bs->ep_up[k] = 1;
                break;
            }
    }
}

/* Copies the instances' state of view v into this worker's metrics, at
 * each target's slot, the counters on top of the slot's carry. */
static void sample_view(worker *w, const wview *v)
{
    const snapshot *sn = v->sn;
    for (size_t i = 0; i < sn->target_count; i++) {
        const starget *st = &sn->targets[i];
        slot_carry *c = &w->carry[st->slot];
        if (c->use != st->slot_use) {
            memset(c, 0, sizeof *c); /* the slot has another label now */
            c->use = st->slot_use;
        }
        if (c->id != st->id) {
            /* An instance carry_over did not see (its view never was
             * current here): nothing to carry. */
            memset(&c->last, 0, sizeof c->last);
            c->id = st->id;
        }
        /* At start readiness waits for each backend's first connection; a
         * backend a reload adds counts until its first attempt fails, so a
         * reload does not take a serving gateway out of rotation. */
        sample_target(st, v->targets[i], sn->own_cfg != NULL, &c->last);
        gw_backend_sample out = c->last;
        out.connects_started += c->base.connects_started;
        out.connects_ok += c->base.connects_ok;
        out.checks_ok += c->base.checks_ok;
        out.checks_failed += c->base.checks_failed;
        for (size_t k = 0; k < GW_METRICS_MAX_ENDPOINTS; k++)
            out.ep_calls[k] += c->base.ep_calls[k];
        gw_metrics_set_backend(&w->metrics, st->slot, &out);
    }
}

/*
 * The view changes from `from` to `to`: a target of `to` that replaces
 * from's instance in the same slot (same label, changed definition) adds
 * the totals the old instance reached to the slot's base; a configured
 * endpoint's calls follow its URL. Calls the old instance starts after
 * this (none, but for retries of its calls in flight) are not counted.
 */
static void carry_over(worker *w, const wview *from, const wview *to)
{
    sample_view(w, from); /* the old instances' latest totals */
    const snapshot *a = from->sn, *b = to->sn;
    for (size_t i = 0; i < b->target_count; i++) {
        const starget *nt = &b->targets[i];
        slot_carry *c = &w->carry[nt->slot];
        if (c->use != nt->slot_use || c->id == 0 || c->id == nt->id)
            continue;
        const starget *ot = NULL;
        for (size_t j = 0; j < a->target_count && !ot; j++)
            if (a->targets[j].slot == nt->slot && a->targets[j].id == c->id)
                ot = &a->targets[j];
        if (!ot)
            continue;
        c->base.connects_started += c->last.connects_started;
        c->base.connects_ok += c->last.connects_ok;
        c->base.checks_ok += c->last.checks_ok;
        c->base.checks_failed += c->last.checks_failed;
        uint64_t ep_base[GW_METRICS_MAX_ENDPOINTS] = {0};
        for (size_t k = 0; nt->def && k < nt->def->endpoint_count && k < GW_METRICS_MAX_ENDPOINTS;
             k++)
            for (size_t j = 0; ot->def && j < ot->def->endpoint_count &&
                               j < GW_METRICS_MAX_ENDPOINTS; j++)
                if (strcmp(nt->def->endpoints[k], ot->def->endpoints[j]) == 0) {
                    ep_base[k] = c->base.ep_calls[j] + c->last.ep_calls[j];
                    break;
                }
        memcpy(c->base.ep_calls, ep_base, sizeof ep_base);
        memset(&c->last, 0, sizeof c->last);
        c->id = nt->id;
    }
}

/* Readiness that waits for the backends (admin.ready_requires_connection):
 * every instance of the current view connects now rather than at its first
 * call, and again after a failure once its backoff allows, so /readyz can
 * say "can serve" before traffic arrives. */
static void warm_view(worker *w)
{
    const wview *v = w->view;
    if (!v || !v->sn->cfg->ready_requires_connection)
        return;
    for (size_t i = 0; i < v->sn->target_count; i++) {
        winst *in = v->targets[i];
        if (in && in->backend)
            gw_backend_warm(in->backend);
        else if (in && in->cluster)
            gw_cluster_warm(in->cluster);
    }
}

static void sample_tick(void *owner)
{
    worker *w = owner;
    warm_view(w);
    sample_view(w, w->view);
    gw_loop_timer_start(w->loop, &w->sample, gw_loop_now(w->loop) + SAMPLE_INTERVAL_NS);
}

/* The admin endpoint: the main thread does the work when the signal
 * arrives, exactly as for `kill -HUP`. */
static void request_reload(void *ctx)
{
    (void)ctx;
    kill(getpid(), SIGHUP);
}

static int ops_setup(server *s, gw_error *e)
{
    const gw_server_config *cfg = s->cfg;
    gw_ops *o = &s->ops;
    s->metrics = calloc(s->worker_count, sizeof *s->metrics);
    if (!s->metrics)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->worker_count; i++)
        s->metrics[i] = &s->workers[i].metrics;
    o->metrics = s->metrics;
    o->workers = s->worker_count;
    snapshot_ref(s->current);
    gw_ops_backends_set(o, &s->current->ops_backends);
    snapshot_ref(s->current);
    gw_ops_site_set(o, &s->current->ops_site);
    atomic_store(&o->ready_needs_connection, cfg->ready_requires_connection);
    o->request_reload = request_reload;
    o->reload_ctx = s;
    if (cfg->access_log) {
        int rc = gw_accesslog_open(cfg->access_log, &s->alog, e);
        if (rc)
            return rc;
    }
    atomic_store(&o->loaded, true);
    if (cfg->admin_listen) {
        int rc = gw_admin_start(o, cfg->admin_listen, &s->admin, e);
        if (rc)
            return rc;
        GW_INFO("grpcgate serve: admin listener on port %u", gw_admin_port(s->admin));
    }
    return 0;
}

/* Reads the listener's certificate, key and client CA (PEM) once; every
 * worker's front gets the same texts. */
static int tls_load(server *s, gw_error *e)
{
    const gw_server_config *cfg = s->cfg;
    if (!cfg->tls_cert && !cfg->tls_key && !cfg->tls_client_ca)
        return 0;
    if (!cfg->tls_cert || !cfg->tls_key)
        return gw_error_set(e, GW_EINVAL, "TLS needs both --tls-cert and --tls-key");
    const char *paths[3] = {cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca};
    char **slots[3] = {&s->tls_cert, &s->tls_key, &s->tls_ca};
    for (size_t i = 0; i < 3; i++) {
        if (!paths[i])
            continue;
        uint8_t *data;
        size_t len;
        int rc = gw_read_file(paths[i], 1u << 20, &data, &len, e);
        if (rc)
            return rc;
        char *text = malloc(len + 1);
        if (!text) {
            free(data);
            return gw_error_set(e, GW_ENOMEM, "out of memory");
        }
        memcpy(text, data, len);
        text[len] = 0;
        free(data);
        *slots[i] = text;
    }
    return 0;
}

static void ops_teardown(server *s)
{
    gw_admin_stop(s->admin);
    s->admin = NULL;
    gw_accesslog_close(s->alog);
    s->alog = NULL;
    gw_ops_site_set(&s->ops, NULL);
    gw_ops_backends_set(&s->ops, NULL);
    free(s->metrics);
    s->metrics = NULL;
    free(s->tls_cert);
    free(s->tls_key);
    free(s->tls_ca);
}

/* Static files come last: only a GET or HEAD whose path no REST route has
 * (for any method) reaches the directory. Returns true once answered. When
 * there is no such file, a browser navigation (Accept names text/html) gets
 * a plain-text 404; everyone else, curl and API clients, REST's JSON 404 as
 * without static files (by returning false; docs/static.md). */
static bool try_static(server *s, const gw_router *router, gw_front_req *r, const char *method,
                       const char *allow_origin)
{
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return false;
    const char *target = gw_front_req_target(r);
    gw_arena a;
    gw_arena_init(&a, 512, 64 * 1024);
    gw_route_match m;
    int rc = gw_router_match(router, method, target, strcspn(target, "?"), &a, &m, NULL);
    gw_arena_free(&a);
    if (rc != 0 || m.result != GW_ROUTE_NOT_FOUND)
        return false;
    if (gw_static_serve(s->statics, r) != GW_ENOTFOUND)
        return true;
    const char *accept = gw_front_req_header(r, "Accept");
    if (!accept || !strstr(accept, "text/html"))
        return false;
    plain(r, 404, allow_origin, "404 not found\n");
    return true;
}

/* Whether a REST route has this path for this method (any answer but 404). */
static bool rest_has(const gw_router *router, gw_front_req *r, const char *method)
{
    if (!router)
        return false;
    const char *target = gw_front_req_target(r);
    gw_arena a;
    gw_arena_init(&a, 512, 64 * 1024);
    gw_route_match m;
    int rc = gw_router_match(router, method, target, strcspn(target, "?"), &a, &m, NULL);
    gw_arena_free(&a);
    return rc == 0 && m.result != GW_ROUTE_NOT_FOUND;
}

/*
 * A Connect request (gw_connect_classify; docs/connect.md). Returns false
 * when it is not Connect's after all and classification goes on: a GET or a
 * JSON POST for a path that is no RPC method (static files, REST routes).
 */
static bool serve_connect(const snapshot *sn, gw_front_req *r,
                          const gw_call_cors *cors, gw_connect_format f)
{
    const char *method = gw_front_req_method(r);
    const char *path = gw_front_req_path(r);
    const char *target = gw_front_req_target(r);
    const char *q = strchr(target, '?');
    gw_call_connect_arg arg = {.kind = f.kind, .json = f.json, .query = q ? q + 1 : NULL,
                               .query_len = q ? strlen(q + 1) : 0};
    const gw_method_def *m = gw_registry_method_by_path(sn->registry, path, strlen(path));
    if (m && route_of(sn, m) < 0)
        m = NULL; /* routed nowhere: not exposed */
    if (!m && (f.kind == GW_CONNECT_GET || rest_has(sn->router, r, method)))
        return false;
    if (f.kind == GW_CONNECT_BAD_CODEC) {
        arg.http_status = 415;
        gw_call_reject(r, &sn->call, cors, &gw_call_connect, &arg, GW_CODE_UNIMPLEMENTED,
                       "unsupported Connect message codec: use application/connect+proto or "
                       "application/connect+json");
        return true;
    }
    if (!m) {
        char msg[300];
        snprintf(msg, sizeof msg, "unknown method %.256s", path);
        arg.http_status = 404;
        gw_call_reject(r, &sn->call, cors, &gw_call_connect, &arg, GW_CODE_UNIMPLEMENTED, msg);
        return true;
    }
    long long cl = gw_front_req_content_length(r);
    size_t max_body = gw_call_body_limit(&sn->call, gw_call_connect_envelope(&sn->call, &arg));
    if (cl >= 0 && (unsigned long long)cl > max_body) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body of %lld bytes exceeds the limit of %zu", cl,
                 max_body);
        gw_call_reject(r, &sn->call, cors, &gw_call_connect, &arg,
                       GW_CODE_RESOURCE_EXHAUSTED, msg);
        gw_front_req_close_now(r);
        return true;
    }
    gw_call_start(r, &sn->call, cors, m, NULL, &gw_call_connect, &arg);
    return true;
}

/* A WebSocket session keeps its snapshot (and the worker's view of it)
 * from the handshake to its end, like a call. */
static void ws_hold(void *ctx)
{
    snapshot_ref(ctx);
    worker *w = current_worker;
    wview *v = w ? view_of(w, ctx) : NULL;
    if (v)
        v->calls++;
}

static void ws_release(void *ctx)
{
    snapshot *sn = ctx;
    worker *w = current_worker;
    wview *v = w ? view_of(w, sn) : NULL;
    if (v && v->calls && --v->calls == 0 && v != w->view)
        gw_loop_defer(w->loop, &w->gc);
    snapshot_unref(sn);
}

/* Whether origin names the host the request was sent to (a page of the
 * gateway's own origin, e.g. the web demo): "scheme://" + Host. */
static bool same_origin(const char *origin, const char *host)
{
    if (!host)
        return false;
    const char *p = strstr(origin, "://");
    if (!p || (strncasecmp(origin, "http", 4) != 0))
        return false;
    return strcasecmp(p + 3, host) == 0;
}

/* An upgrade to WebSocket (docs/websocket.md): the method comes from the
 * path as for gRPC-Web; the Origin, when a browser sends one, must be an
 * allowed CORS origin (a WebSocket is not subject to CORS, so without this
 * any page could drive calls with the user's cookies). */
static void websocket(worker *w, gw_front_req *r, const char *path, const char *origin)
{
    snapshot *sn = w->snap;
    const gw_method_def *m = gw_registry_method_by_path(sn->registry, path, strlen(path));
    if (m && route_of(sn, m) < 0)
        m = NULL;
    /* JSON mode: a REST route of the path (any of its HTTP methods: the
     * handshake is a GET) or the auto route. */
    const gw_method_def *jm = m;
    if (!jm && sn->router) {
        const char *target = gw_front_req_target(r);
        size_t tl = strcspn(target, "?");
        gw_arena a;
        gw_arena_init(&a, 512, 64 * 1024);
        gw_route_match rm;
        if (gw_router_match(sn->router, "GET", target, tl, &a, &rm, NULL) == 0) {
            if (rm.result == GW_ROUTE_MATCHED)
                jm = rm.route->method;
            else if (rm.result == GW_ROUTE_METHOD_NOT_ALLOWED && rm.allow_count) {
                const char *verb = rm.allow[0];
                if (gw_router_match(sn->router, verb, target, tl, &a, &rm, NULL) == 0 &&
                    rm.result == GW_ROUTE_MATCHED)
                    jm = rm.route->method;
            }
        }
        gw_arena_free(&a);
        if (jm && route_of(sn, jm) < 0)
            jm = NULL;
    }
    gw_ws_params p = {.method = m, .json_method = jm, .rest = sn->rest.rest,
                      .call = &sn->call, .ws = &sn->cfg->websocket,
                      .origin_ok = !origin || cors_origin(sn->cfg, origin) != NULL ||
                                   same_origin(origin, gw_front_req_header(r, "Host")),
                      .hold = ws_hold, .release = ws_release, .hold_ctx = sn};
    gw_ws_accept(w->ws, r, &p);
}

static void on_request(void *owner, gw_front_req *r)
{
    worker *w = owner;
    server *s = w->s;
    const char *method = gw_front_req_method(r);
    const char *path = gw_front_req_path(r);
    const char *origin = gw_front_req_header(r, "Origin");
    if (gw_ops_handle(&s->ops, &w->snap->ops_site, r, false))
        return;
    if (gw_ws_is_upgrade(r)) {
        websocket(w, r, path, origin);
        return;
    }

    const snapshot *sn = w->snap;
    if (strcmp(method, "OPTIONS") == 0) {
        if (origin && gw_front_req_header(r, "Access-Control-Request-Method")) {
            preflight(w, r, origin);
            return;
        }
        if (plain_options(s, sn, r, origin))
            return;
        /* Unknown path (404) or a route for OPTIONS: the REST dispatch. */
    }

    gw_call_cors cors = {.allow_origin = cors_origin(sn->cfg, origin),
                         .credentials = sn->cfg->cors_credentials,
                         .expose_extra = sn->cfg->cors_expose_headers};
    const char *ct = gw_front_req_header(r, "Content-Type");
    {
        const char *target = gw_front_req_target(r);
        const char *q = strchr(target, '?');
        gw_connect_format cf = gw_connect_classify(
            method, ct, gw_front_req_header(r, "Connect-Protocol-Version") != NULL,
            q ? q + 1 : NULL, q ? strlen(q + 1) : 0);
        if (cf.kind != GW_CONNECT_NONE && serve_connect(sn, r, &cors, cf))
            return;
    }
    gw_grpcweb_format fmt = {false, false};
    int kind = ct ? gw_grpcweb_classify(ct, strlen(ct), &fmt) : GW_ENOTFOUND;
    const gw_method_def *m = gw_registry_method_by_path(sn->registry, path, strlen(path));

    if (kind == GW_ENOTFOUND) {
        if (s->statics && try_static(s, sn->router, r, method, cors.allow_origin))
            return;
        /* Not gRPC-Web: REST/JSON (404/405/415 answered there, as JSON). */
        gw_call_rest_dispatch(r, &sn->call, &cors, &sn->rest, NULL);
        return;
    }
    if (kind == GW_EINVAL) {
        plain(r, 415, cors.allow_origin,
              "unsupported gRPC-Web message codec: use +proto or +json\n");
        return;
    }
    if (strcmp(method, "POST") != 0) {
        plain(r, 405, cors.allow_origin, "gRPC-Web calls use POST\n");
        return;
    }
    if (m && route_of(sn, m) < 0)
        m = NULL; /* routed nowhere: not exposed */
    if (!m) {
        char msg[300];
        snprintf(msg, sizeof msg, "unknown method %.256s", path);
        gw_call_reject(r, &sn->call, &cors, &gw_call_grpcweb, &fmt, GW_CODE_UNIMPLEMENTED, msg);
        return;
    }
    long long cl = gw_front_req_content_length(r);
    size_t max_body = gw_call_body_limit(&sn->call, gw_call_grpcweb_envelope(&sn->call, &fmt));
    if (cl >= 0 && (unsigned long long)cl > max_body) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body of %lld bytes exceeds the limit of %zu", cl,
                 max_body);
        gw_call_reject(r, &sn->call, &cors, &gw_call_grpcweb, &fmt,
                       GW_CODE_RESOURCE_EXHAUSTED, msg);
        gw_front_req_close_now(r);
        return;
    }
    gw_call_start(r, &sn->call, &cors, m, NULL, &gw_call_grpcweb, &fmt);
}

static const gw_front_handler front_handler = {.on_request = on_request};

/* ---- workers ---------------------------------------------------------------------------- */

static void drain_check(void *owner)
{
    worker *w = owner;
    uint64_t now = gw_loop_now(w->loop);
    size_t open = gw_front_active(w->front) + gw_ws_hub_active(w->ws);
    if (open == 0 || now >= w->drain_deadline_ns) {
        if (open)
            GW_WARN("worker %u: drain timeout, cancelling %zu calls", w->index, open);
        gw_ws_hub_cancel_all(w->ws);
        gw_loop_stop(w->loop);
        return;
    }
    gw_loop_timer_start(w->loop, &w->drain_check, now + 20 * GW_MS);
}

/* The current snapshot with a reference. */
static snapshot *current_snapshot(server *s)
{
    while (atomic_flag_test_and_set_explicit(&s->snap_lock, memory_order_acquire))
        ;
    snapshot *sn = s->current;
    snapshot_ref(sn);
    atomic_flag_clear_explicit(&s->snap_lock, memory_order_release);
    return sn;
}

/* ---- per-worker instances of the targets ----------------------------------------- */

/* Builds target st on loop l: a backend (*b) or a cluster (*c), with the
 * cluster's names from its seed (never resolving on l). The one place
 * targets are made: in the workers, and once on the main thread to check
 * a reload. Returns 0, GW_EINVAL, GW_EIO or GW_ENOMEM with e set. */
static int target_build(gw_loop *l, const starget *st, gw_backend **b, gw_cluster **c,
                        gw_error *e)
{
    int rc;
    if (st->url) {
        rc = gw_backend_new(l, st->url, st->upstream, b, e);
    } else {
        gw_cluster_options co = st->def->cluster;
        co.seed = st->seed ? st->seed->seed : NULL;
        co.backend.hide_details = st->hide_details;
        rc = gw_cluster_new(l, st->def->name, (const char *const *)st->def->endpoints,
                            st->def->endpoint_count, &co, c, e);
    }
    if (rc)
        gw_error_prefix(e, "backend %s", st->name);
    return rc;
}

/* Creates this worker's instance of target t of sn. Returns 0, GW_EINVAL,
 * GW_EIO or GW_ENOMEM with e set. */
static int inst_new(worker *w, const snapshot *sn, size_t t, winst **out, gw_error *e)
{
    const starget *st = &sn->targets[t];
    winst *in = calloc(1, sizeof *in);
    if (!in)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    in->id = st->id;
    int rc = target_build(w->loop, st, &in->backend, &in->cluster, e);
    if (rc) {
        free(in);
        return rc;
    }
    in->next = w->insts;
    w->insts = in;
    *out = in;
    return 0;
}

/* Drops a view's hold on in; the last one deletes it. A cluster's or
 * backend's delete fails what is still open on it, so this runs only when
 * no call of any view using in is left. */
static void inst_put(worker *w, winst *in)
{
    if (!in || --in->refs)
        return;
    for (winst **pp = &w->insts; *pp; pp = &(*pp)->next)
        if (*pp == in) {
            *pp = in->next;
            break;
        }
    gw_backend_del(in->backend);
    gw_cluster_del(in->cluster);
    free(in);
}

/*
 * The view of sn for w (takes the caller's reference to sn): targets whose
 * id an existing instance has share it, the others get a new instance.
 * strict (at start): any failure fails; else (a reload, on the worker) a
 * target that cannot be created is logged and its calls fail UNAVAILABLE
 * (the main thread built each new target once already, so only memory or
 * descriptors can be short here). Returns 0 or the error with e set.
 */
static int view_new(worker *w, snapshot *sn, bool strict, wview **out, gw_error *e)
{
    wview *v = calloc(1, sizeof *v);
    if (!v) {
        snapshot_unref(sn);
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    }
    v->sn = sn;
    for (size_t t = 0; t < sn->target_count; t++) {
        winst *in = w->insts;
        while (in && in->id != sn->targets[t].id)
            in = in->next;
        if (!in) {
            gw_error err;
            gw_error_clear(&err);
            int rc = inst_new(w, sn, t, &in, &err);
            if (rc && strict) {
                *e = err;
                for (size_t j = 0; j < t; j++)
                    inst_put(w, v->targets[j]);
                snapshot_unref(sn);
                free(v);
                return rc;
            }
            if (rc)
                GW_ERROR("worker %u: reload: %s", w->index, err.msg);
        }
        if (in)
            in->refs++;
        v->targets[t] = in;
    }
    *out = v;
    return 0;
}

static void view_free(worker *w, wview *v)
{
    for (size_t t = 0; t < v->sn->target_count; t++)
        inst_put(w, v->targets[t]);
    snapshot_unref(v->sn);
    free(v);
}

/* Deferred: older views whose last call has ended go, and with them the
 * instances (and connections) no other view uses. Runs from the loop, so
 * never inside a callback of the instance it deletes. */
static void views_gc(void *owner)
{
    worker *w = owner;
    wview **pp = &w->old_views;
    while (*pp) {
        wview *v = *pp;
        if (v->calls) {
            pp = &v->next;
            continue;
        }
        *pp = v->next;
        view_free(w, v);
    }
}

static void views_free_all(worker *w)
{
    while (w->old_views) {
        wview *v = w->old_views;
        w->old_views = v->next;
        view_free(w, v);
    }
    if (w->view)
        view_free(w, w->view);
    w->view = NULL;
    w->snap = NULL;
}

static void on_wakeup(void *owner)
{
    worker *w = owner;
    snapshot *cur = current_snapshot(w->s);
    unsigned generation = cur->generation;
    if (cur != w->snap) {
        gw_error e;
        gw_error_clear(&e);
        wview *v;
        if (view_new(w, cur, false, &v, &e) == 0) {
            carry_over(w, w->view, v);
            w->view->next = w->old_views;
            w->old_views = w->view;
            w->view = v;
            w->snap = cur;
            /* Scrapes and /readyz read the new slots as soon as the main
             * thread publishes this generation: fill them now, not at the
             * next tick. */
            gw_loop_timer_stop(w->loop, &w->sample);
            sample_tick(w);
            gw_loop_defer(w->loop, &w->gc);
            atomic_store_explicit(&w->generation_seen, generation, memory_order_release);
        } else {
            GW_ERROR("worker %u: reload: %s; this worker keeps the previous configuration",
                     w->index, e.msg);
            atomic_store_explicit(&w->generation_failed, generation, memory_order_release);
        }
    } else {
        snapshot_unref(cur);
        atomic_store_explicit(&w->generation_seen, generation, memory_order_release);
    }
    if (!atomic_load(&w->stop_requested) || w->draining)
        return;
    w->draining = true;
    gw_front_quiesce(w->front);
    gw_ws_hub_drain(w->ws);
    w->drain_deadline_ns = gw_loop_now(w->loop) + w->snap->cfg->drain_timeout_ms * GW_MS;
    drain_check(w);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    current_worker = w;
    sample_tick(w);
    if (gw_loop_run(w->loop) != 0)
        GW_ERROR("worker %u: event loop failed", w->index);
    /* The front first: closing its requests cancels their upstream calls
     * while the backend still exists. */
    gw_front_del(w->front);
    w->front = NULL;
    gw_ws_hub_del(w->ws);
    w->ws = NULL;
    views_free_all(w);
    return NULL;
}

static int worker_init(server *s, worker *w, unsigned index, gw_error *e)
{
    w->s = s;
    w->index = index;
    atomic_init(&w->stop_requested, false);
    atomic_init(&w->generation_seen, 0);
    atomic_init(&w->generation_failed, 0);
    gw_timer_init(&w->drain_check, drain_check, w);
    gw_timer_init(&w->sample, sample_tick, w);
    gw_buf_init(&w->logline, 256 * 1024);
    if (gw_metrics_init(&w->metrics) != 0)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    w->loop = gw_loop_new();
    if (!w->loop)
        return gw_error_set(e, GW_EIO, "cannot create an event loop: %s", strerror(errno));
    gw_loop_set_wakeup_cb(w->loop, on_wakeup, w);
    w->ws = gw_ws_hub_new(w->loop);
    if (!w->ws)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    gw_defer_init(&w->gc, views_gc, w);
    int rc = view_new(w, current_snapshot(s), true, &w->view, e);
    if (rc)
        return rc;
    w->snap = w->view->sn;
    gw_front_options fo = s->cfg->front;
    fo.host = s->host;
    fo.port = s->port;
    fo.ip_limit = s->ip_limit;
    fo.tls_cert_pem = s->tls_cert;
    fo.tls_key_pem = s->tls_key;
    fo.tls_trust_pem = s->tls_ca;
    fo.tls_priorities = s->cfg->tls_priorities;
    rc = gw_front_new(w->loop, &fo, &front_handler, w, &w->front, e);
    if (rc)
        return rc;
    /* Port 0: the first worker picked the port, the others share it. */
    s->port = gw_front_port(w->front);
    return 0;
}

static void worker_free(worker *w)
{
    if (w->front)
        gw_front_del(w->front);
    gw_ws_hub_del(w->ws);
    w->ws = NULL;
    /* After the front: its calls used the instances and held references. */
    views_free_all(w);
    if (w->loop) {
        gw_loop_timer_stop(w->loop, &w->drain_check);
        gw_loop_timer_stop(w->loop, &w->sample);
        gw_loop_defer_cancel(w->loop, &w->gc);
        gw_loop_del(w->loop);
    }
    gw_metrics_free(&w->metrics);
    gw_buf_free(&w->logline);
}

static int split_listen(const char *listen, char *host, size_t host_cap, uint16_t *port,
                        gw_error *e)
{
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return gw_error_set(e, GW_EINVAL, "--listen '%s': expected HOST:PORT", listen);
    const char *h = listen;
    size_t hl = (size_t)(colon - listen);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (errno || *end || colon[1] == 0 || p > 65535 || hl == 0 || hl >= host_cap)
        return gw_error_set(e, GW_EINVAL, "--listen '%s': expected HOST:PORT", listen);
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (uint16_t)p;
    return 0;
}

/*
 * The workers' listeners use SO_REUSEPORT (one socket per worker on the
 * same port), which would also let them join a port that another gateway
 * already serves: the kernel would then split that gateway's connections
 * between two processes. A plain bind without SO_REUSEPORT (SO_REUSEADDR,
 * so connections in TIME_WAIT do not count) fails with EADDRINUSE while
 * anyone listens on the address, whatever options the listener has; the
 * probe socket is closed before the workers bind. Other bind errors are
 * left to the listener itself to report.
 */
int gw_server_check_listen(const char *host, uint16_t port, gw_error *e)
{
    if (port == 0)
        return 0;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    socklen_t len = sizeof *a4;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        len = sizeof *a6;
    } else if (strcmp(host, "localhost") == 0) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        return 0; /* not an address: the listener says so */
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int one = 1;
    int rc = 0;
    if (ss.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
        bind(fd, (struct sockaddr *)&ss, len) < 0 && errno == EADDRINUSE) {
        bool v6 = ss.ss_family == AF_INET6;
        rc = gw_error_set(e, GW_EIO, "listen address %s%s%s:%u is already in use",
                          v6 ? "[" : "", host, v6 ? "]" : "", port);
    }
    close(fd);
    return rc;
}

/* ---- snapshots and reload ----------------------------------------------------------- */

static void sseed_unref(sseed *sd)
{
    if (sd && atomic_fetch_sub_explicit(&sd->refs, 1, memory_order_acq_rel) == 1) {
        gw_dns_seed_del(sd->seed);
        free(sd);
    }
}

static void snapshot_unref(snapshot *sn)
{
    if (atomic_fetch_sub_explicit(&sn->refs, 1, memory_order_acq_rel) != 1)
        return;
    gw_blob_unref(sn->openapi);
    gw_router_del(sn->router);
    gw_registry_del(sn->registry);
    free(sn->routes);
    free(sn->allow_headers);
    for (size_t i = 0; i < sn->target_count; i++) {
        sseed_unref(sn->targets[i].seed);
        free(sn->targets[i].new_label);
        if (sn->slots_held)
            atomic_fetch_sub_explicit(&sn->s->slot_snaps[sn->targets[i].slot], 1,
                                      memory_order_release);
    }
    if (sn->own_cfg) {
        gw_server_config_free(sn->own_cfg);
        free(sn->own_cfg);
    }
    free(sn);
}

/* The `default` backend's options: "upstream" with "backend_tls" (or the
 * --backend-ca/-cert/-key flags); strings borrowed from cfg. */
static void default_options(const gw_server_config *cfg, gw_backend_options *o)
{
    *o = cfg->upstream;
    o->ca_file = cfg->backend_ca;
    o->cert_file = cfg->backend_cert;
    o->key_file = cfg->backend_key;
    o->server_name = cfg->backend_server_name;
    o->name = "default";
    o->hide_details = !cfg->debug_errors;
}

/* The registry from the descriptor files, or from the backend's reflection
 * service (a clear error naming the backend when that fails). */
static int load_registry(const gw_server_config *cfg, gw_registry **out, gw_error *e)
{
    /* One source: the files, or the reflection service of one backend
     * (--reflect: the default one; else the one with "reflect": true). */
    const char *url = cfg->reflect ? cfg->backend : NULL;
    gw_backend_options def;
    default_options(cfg, &def);
    def.hide_details = false; /* the operator reads this error, not a client */
    const gw_backend_options *bo = &def;
    const char *name = "default";
    size_t sources = (cfg->descriptor_count ? 1 : 0) + (cfg->reflect ? 1 : 0);
    for (size_t i = 0; i < cfg->backend_count; i++)
        if (cfg->backends[i].reflect) {
            sources++;
            url = cfg->backends[i].endpoints[0];
            bo = &cfg->backends[i].cluster.backend;
            name = cfg->backends[i].name;
        }
    if (sources > 1)
        return gw_error_set(e, GW_EINVAL, "descriptors come from one source: descriptor "
                            "files or the reflection of one backend");
    if (cfg->descriptor_count)
        return gw_registry_load(out, (const char *const *)cfg->descriptors,
                                cfg->descriptor_count, e);
    if (!url)
        return gw_error_set(e, GW_EINVAL, "no descriptors: give --descriptor FILE or --reflect");
    int rc = gw_reflect_fetch_registry_opts(url, bo, NULL, cfg->reflect_timeout_ms, out, e);
    if (rc)
        gw_error_prefix(e, "backend %s", name);
    else
        GW_INFO("reflection: descriptors of backend %s (%s) loaded", name, url);
    return rc;
}

static bool str_same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Field by field: an instance is reused only when every setting it was
 * built with is the same (a certificate file is compared by path, not
 * content). */
static bool upstream_same(const gw_backend_options *a, const gw_backend_options *b)
{
    return a->pool_size == b->pool_size && a->stream_window == b->stream_window &&
           a->connection_window == b->connection_window &&
           a->max_response_message == b->max_response_message &&
           a->max_request_buffer == b->max_request_buffer &&
           a->max_header_list == b->max_header_list &&
           a->max_queued_calls == b->max_queued_calls &&
           a->max_resets_per_sec == b->max_resets_per_sec &&
           a->connect_timeout_ms == b->connect_timeout_ms &&
           a->attempt_delay_ms == b->attempt_delay_ms && a->keepalive_ms == b->keepalive_ms &&
           a->ping_silent_ms == b->ping_silent_ms && a->ping_timeout_ms == b->ping_timeout_ms &&
           a->accept_gzip == b->accept_gzip && str_same(a->ca_file, b->ca_file) &&
           str_same(a->cert_file, b->cert_file) && str_same(a->key_file, b->key_file) &&
           str_same(a->server_name, b->server_name) && str_same(a->authority, b->authority) &&
           str_same(a->name, b->name) && a->hide_details == b->hide_details &&
           a->random == b->random && a->random_ctx == b->random_ctx &&
           a->resolve == b->resolve && a->resolve_ctx == b->resolve_ctx;
}

static bool target_same(const starget *a, const starget *b)
{
    if (strcmp(a->name, b->name) != 0 || !a->url != !b->url ||
        a->hide_details != b->hide_details)
        return false;
    if (a->url)
        return strcmp(a->url, b->url) == 0 && upstream_same(a->upstream, b->upstream);
    const gw_server_backend *x = a->def, *y = b->def;
    if (x->endpoint_count != y->endpoint_count)
        return false;
    for (size_t i = 0; i < x->endpoint_count; i++)
        if (strcmp(x->endpoints[i], y->endpoints[i]) != 0)
            return false;
    const gw_cluster_options *p = &x->cluster, *q = &y->cluster;
    return p->policy == q->policy && upstream_same(&p->backend, &q->backend) &&
           p->health.interval_ms == q->health.interval_ms &&
           p->health.timeout_ms == q->health.timeout_ms &&
           p->health.unhealthy_threshold == q->health.unhealthy_threshold &&
           p->health.healthy_threshold == q->health.healthy_threshold &&
           str_same(p->health.service, q->health.service) &&
           p->probe_interval_ms == q->probe_interval_ms &&
           p->dns_refresh_ms == q->dns_refresh_ms && p->max_endpoints == q->max_endpoints &&
           p->resolve == q->resolve && p->resolve_ctx == q->resolve_ctx;
}

/*
 * Picks the metrics slot of every target of sn, without taking any: a
 * label that a live snapshot uses keeps its slot; any other gets a slot
 * that no live snapshot uses, and starts from zero (a failed reload
 * therefore costs nothing, and a label that no generation in service or
 * finishing calls uses any more is forgotten). slots_commit takes them
 * once the snapshot is built. Main thread. Returns 0, GW_ELIMIT or
 * GW_ENOMEM with e set.
 */
static int slots_pick(server *s, snapshot *sn, gw_error *e)
{
    bool taken[GW_METRICS_MAX_BACKENDS] = {false};
    for (size_t t = 0; t < sn->target_count; t++) {
        starget *st = &sn->targets[t];
        size_t i = GW_METRICS_MAX_BACKENDS;
        for (size_t u = 0; u < t && i == GW_METRICS_MAX_BACKENDS; u++)
            if (strcmp(sn->targets[u].label, st->label) == 0)
                i = sn->targets[u].slot;   /* the same label twice in this one */
        for (size_t j = 0; j < GW_METRICS_MAX_BACKENDS && i == GW_METRICS_MAX_BACKENDS; j++)
            if (s->slot_labels[j] && strcmp(s->slot_labels[j], st->label) == 0 &&
                atomic_load_explicit(&s->slot_snaps[j], memory_order_acquire) != 0)
                i = j;
        if (i == GW_METRICS_MAX_BACKENDS) {
            /* Free: no live snapshot and not picked above. The acquire
             * pairs with the release in snapshot_unref: the workers' last
             * writes to the slot happened before. */
            i = 0;
            while (i < GW_METRICS_MAX_BACKENDS &&
                   (taken[i] || atomic_load_explicit(&s->slot_snaps[i],
                                                     memory_order_acquire) != 0))
                i++;
            if (i == GW_METRICS_MAX_BACKENDS)
                return gw_error_set(e, GW_ELIMIT, "more than %d backend names in use (this "
                                    "configuration's and those of older ones still finishing "
                                    "calls; the metrics keep one slot per name): cannot add "
                                    "'%s' now", GW_METRICS_MAX_BACKENDS, st->label);
            st->new_label = strdup(st->label);
            if (!st->new_label)
                return gw_error_set(e, GW_ENOMEM, "out of memory");
        }
        taken[i] = true;
        st->slot = i;
        sn->ops_backends.slots[t] = i;
    }
    return 0;
}

/* Takes the slots slots_pick chose (sn is built and about to be served). A
 * slot that gets another label starts from zero in every worker. Main
 * thread, and no live snapshot uses a relabelled slot, so no worker writes
 * it meanwhile. */
static void slots_commit(server *s, snapshot *sn)
{
    for (size_t t = 0; t < sn->target_count; t++) {
        starget *st = &sn->targets[t];
        if (st->new_label) {
            free(s->slot_labels[st->slot]);
            s->slot_labels[st->slot] = st->new_label;
            st->new_label = NULL;
            s->slot_use[st->slot]++;
            for (size_t w = 0; s->workers && w < s->worker_count; w++)
                gw_metrics_clear_backend(&s->workers[w].metrics, st->slot);
        }
        st->slot_use = s->slot_use[st->slot];
        atomic_fetch_add_explicit(&s->slot_snaps[st->slot], 1, memory_order_relaxed);
    }
    sn->slots_held = true;
}

/* Builds a new target once on a scratch loop that never runs, so that a bad
 * URL or an unreadable certificate fails the reload here, on the main
 * thread, instead of in every worker. Returns 0 or the error with e set. */
static int target_check(const starget *st, gw_error *e)
{
    gw_loop *l = gw_loop_new();
    if (!l)
        return gw_error_set(e, GW_EIO, "cannot create an event loop: %s", strerror(errno));
    gw_backend *b = NULL;
    gw_cluster *c = NULL;
    int rc = target_build(l, st, &b, &c, e);
    gw_backend_del(b);
    gw_cluster_del(c);
    gw_loop_del(l);
    return rc;
}

static void ops_backends_ref(void *owner)
{
    snapshot_ref(owner);
}

static void ops_backends_unref(void *owner)
{
    snapshot_unref(owner);
}

/*
 * The targets of cfg: the `default` backend, then the named ones. A target
 * equal to one of the generation being replaced keeps its id and its seed
 * (the workers keep its instance, connections and health state); a new or
 * changed one gets a new id, a cluster's host names resolved here once for
 * every worker (gw_dns_seed_new: a name that does not resolve is retried by
 * the cluster, not an error), and on a reload its settings tried once
 * (target_check). Main thread.
 */
static int snapshot_targets(snapshot *sn, const gw_server_config *cfg, gw_error *e)
{
    server *s = sn->s;
    const snapshot *prev = s->current;
    default_options(cfg, &sn->default_upstream);
    if (cfg->backend)
        sn->targets[sn->target_count++] = (starget){.name = "default", .label = cfg->backend,
                                                    .url = cfg->backend,
                                                    .upstream = &sn->default_upstream,
                                                    .hide_details = !cfg->debug_errors};
    for (size_t i = 0; i < cfg->backend_count; i++)
        sn->targets[sn->target_count++] = (starget){.name = cfg->backends[i].name,
                                                    .label = cfg->backends[i].name,
                                                    .def = &cfg->backends[i],
                                                    .hide_details = !cfg->debug_errors};
    gw_ops_backends *ob = &sn->ops_backends;
    ob->ref = ops_backends_ref;
    ob->unref = ops_backends_unref;
    ob->owner = sn;
    int rc = slots_pick(s, sn, e);
    if (rc)
        return rc;
    for (size_t t = 0; t < sn->target_count; t++) {
        starget *st = &sn->targets[t];
        ob->names[t] = st->label;
        if (st->def) {
            ob->endpoint_names[t] = (const char *const *)st->def->endpoints;
            ob->endpoint_counts[t] = st->def->endpoint_count;
        }
        ob->count = t + 1;
        for (size_t j = 0; prev && j < prev->target_count && !st->id; j++)
            if (target_same(&prev->targets[j], st)) {
                st->id = prev->targets[j].id;
                st->seed = prev->targets[j].seed;
                if (st->seed)
                    atomic_fetch_add_explicit(&st->seed->refs, 1, memory_order_relaxed);
            }
        if (st->id)
            continue;
        st->id = ++s->next_target_id;
        if (st->def) {
            st->seed = calloc(1, sizeof *st->seed);
            if (!st->seed)
                return gw_error_set(e, GW_ENOMEM, "out of memory");
            atomic_init(&st->seed->refs, 1);
            rc = gw_dns_seed_new((const char *const *)st->def->endpoints,
                                 st->def->endpoint_count, &st->def->cluster, &st->seed->seed, e);
            if (rc) {
                gw_error_prefix(e, "backend %s", st->name);
                return rc;
            }
        }
        if (!prev)
            continue; /* at start the workers build it, and fail the start */
        rc = target_check(st, e);
        if (rc)
            return rc;
    }
    return 0;
}

/* Resolves the routes of cfg against the server's targets and builds the
 * REST router with the routed methods only. */
static int snapshot_routes(snapshot *sn, const gw_server_config *cfg, gw_error *e)
{
    if (cfg->route_count) {
        sn->routes = calloc(cfg->route_count, sizeof *sn->routes);
        if (!sn->routes)
            return gw_error_set(e, GW_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < cfg->route_count; i++) {
        const gw_server_route *r = &cfg->routes[i];
        int t = -1;
        for (size_t j = 0; j < sn->target_count && t < 0; j++)
            if (strcmp(sn->targets[j].name, r->backend) == 0)
                t = (int)j;
        if (t < 0)
            return gw_error_set(e, GW_EINVAL, "routes[%zu]: no backend '%s'", i, r->backend);
        sn->routes[i] = (struct sroute){.match = r->match,
                                        .len = strcmp(r->match, "*") ? strlen(r->match) : 0,
                                        .target = t};
        sn->route_count++;
    }
    if (sn->route_count == 0 && sn->target_count > 1)
        return gw_error_set(e, GW_EINVAL, "several backends: give \"routes\"");
    sn->router = gw_router_new(&cfg->router);
    if (!sn->router)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    if (sn->route_count == 0)
        return gw_router_add_registry(sn->router, sn->registry, e);
    for (size_t i = 0; i < gw_registry_service_count(sn->registry); i++) {
        const gw_service_def *svc = gw_registry_service_at(sn->registry, i);
        for (size_t j = 0; j < svc->method_count; j++) {
            if (route_of(sn, &svc->methods[j]) < 0)
                continue;
            int rc = gw_router_add_method(sn->router, &svc->methods[j], e);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* The gRPC method an OpenAPI operation stands for: its tag is the service
 * full name, its operationId "<Service>_<Method>" or "<Service>_<Method>_<n>"
 * for further bindings (docs/openapi.md). NULL if it cannot be told. */
static const gw_method_def *openapi_op_method(const gw_registry *reg, json_t *op)
{
    json_t *tags = json_object_get(op, "tags");
    const char *id = json_string_value(json_object_get(op, "operationId"));
    const char *svc = json_string_value(json_array_get(tags, 0));
    const gw_service_def *sd = svc ? gw_registry_service(reg, svc) : NULL;
    if (!id || !sd)
        return NULL;
    size_t sl = strlen(sd->name);
    if (strncmp(id, sd->name, sl) != 0 || id[sl] != '_')
        return NULL;
    const char *mname = id + sl + 1;
    for (int pass = 0; pass < 2; pass++) {
        size_t ml = strlen(mname);
        if (pass == 1) { /* drop a "_<n>" suffix */
            const char *us = strrchr(mname, '_');
            if (!us || !us[1] || strspn(us + 1, "0123456789") != strlen(us + 1))
                return NULL;
            ml = (size_t)(us - mname);
        }
        for (size_t i = 0; i < sd->method_count; i++)
            if (strlen(sd->methods[i].name) == ml &&
                strncmp(sd->methods[i].name, mname, ml) == 0)
                return &sd->methods[i];
    }
    return NULL;
}

/* Adds to names every schema v refers to ("#/components/schemas/NAME"). */
static int openapi_refs(json_t *v, json_t *names)
{
    static const char prefix[] = "#/components/schemas/";
    const char *k;
    json_t *x;
    size_t i;
    int rc = 0;
    if (json_is_object(v)) {
        json_object_foreach(v, k, x) {
            const char *ref = json_string_value(x);
            if (strcmp(k, "$ref") == 0 && ref && strncmp(ref, prefix, sizeof prefix - 1) == 0)
                rc = json_object_set_new(names, ref + sizeof prefix - 1, json_true());
            else
                rc = openapi_refs(x, names);
            if (rc)
                return GW_ENOMEM;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x)
            if (openapi_refs(x, names))
                return GW_ENOMEM;
    }
    return 0;
}

/* After operations were removed: root tags of services that have none
 * left, and schemas no remaining operation reaches (directly or through
 * other schemas), go too. */
static int openapi_prune(json_t *root)
{
    json_t *paths = json_object_get(root, "paths");
    json_t *schemas = json_object_get(json_object_get(root, "components"), "schemas");
    json_t *used_tags = json_object(), *reached = json_object();
    int rc = used_tags && reached ? 0 : GW_ENOMEM;
    const char *path, *verb;
    json_t *item, *op;
    json_object_foreach(paths, path, item) {
        json_object_foreach(item, verb, op) {
            const char *t = json_string_value(json_array_get(json_object_get(op, "tags"), 0));
            if (!rc && t && json_object_set_new(used_tags, t, json_true()))
                rc = GW_ENOMEM;
        }
        if (!rc)
            rc = openapi_refs(item, reached);
    }
    /* Schemas reached through schemas: until nothing new is added. */
    for (size_t before = 0; !rc && json_object_size(reached) != before;) {
        before = json_object_size(reached);
        json_t *seen = json_copy(reached); /* not iterated while it grows */
        const char *name;
        json_t *mark;
        if (!seen)
            rc = GW_ENOMEM;
        json_object_foreach(seen, name, mark)
            if (!rc)
                rc = openapi_refs(json_object_get(schemas, name), reached);
        json_decref(seen);
    }
    if (!rc) {
        const char *name;
        json_t *def, *tmp;
        json_object_foreach_safe(schemas, tmp, name, def)
            if (!json_object_get(reached, name))
                json_object_del(schemas, name);
        json_t *tags = json_object_get(root, "tags");
        for (size_t i = json_array_size(tags); i-- > 0;) {
            const char *t = json_string_value(json_object_get(json_array_get(tags, i), "name"));
            if (!t || !json_object_get(used_tags, t))
                json_array_remove(tags, i);
        }
    }
    json_decref(used_tags);
    json_decref(reached);
    return rc;
}

/* x-grpcgate-unlisted entries name their method by full name. */
static bool openapi_rpc_routed(const snapshot *sn, const char *full_name)
{
    const char *dot = full_name ? strrchr(full_name, '.') : NULL;
    char path[512];
    if (!dot || snprintf(path, sizeof path, "/%.*s/%s", (int)(dot - full_name), full_name,
                         dot + 1) >= (int)sizeof path)
        return true;
    const gw_method_def *m = gw_registry_method_by_path(sn->registry, path, strlen(path));
    return !m || route_of(sn, m) >= 0;
}

/* With routes, the document lists only what the gateway serves: operations
 * of methods routed nowhere are removed (paths left empty too), and so are
 * the tags, schemas and x-grpcgate-unlisted entries only they had. */
static int openapi_filter(const snapshot *sn, gw_buf *doc, gw_error *e)
{
    json_error_t je;
    json_t *root = json_loadb((const char *)doc->data, doc->len, 0, &je);
    if (!root)
        return gw_error_set(e, GW_EPARSE, "OpenAPI document: %s", je.text);
    int rc = 0;
    json_t *paths = json_object_get(root, "paths");
    const char *path;
    json_t *item, *tmp;
    json_object_foreach_safe(paths, tmp, path, item) {
        const char *verb;
        json_t *op, *tmp2;
        json_object_foreach_safe(item, tmp2, verb, op) {
            if (!json_is_object(op) || !json_object_get(op, "operationId"))
                continue;
            const gw_method_def *m = openapi_op_method(sn->registry, op);
            if (m && route_of(sn, m) < 0)
                json_object_del(item, verb);
        }
        bool any = false;
        json_object_foreach(item, verb, op)
            any = any || (json_is_object(op) && json_object_get(op, "operationId"));
        if (!any)
            json_object_del(paths, path);
    }
    json_t *unlisted = json_object_get(root, "x-grpcgate-unlisted");
    for (size_t i = json_array_size(unlisted); i-- > 0;)
        if (!openapi_rpc_routed(sn, json_string_value(
                                        json_object_get(json_array_get(unlisted, i), "rpc"))))
            json_array_remove(unlisted, i);
    if (unlisted && json_array_size(unlisted) == 0)
        json_object_del(root, "x-grpcgate-unlisted");
    rc = openapi_prune(root);
    if (rc) {
        json_decref(root);
        return gw_error_set(e, rc, "out of memory");
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    doc->len = 0;
    rc = gw_buf_printf(doc, "%s\n", text);
    free(text);
    if (rc)
        gw_error_set(e, rc, "OpenAPI document too large");
    return rc;
}

/*
 * Builds a generation from cfg (owned when `own` is cfg, borrowed when
 * NULL): registry, REST router, CORS header list, OpenAPI document. Runs
 * on the main thread. On failure nothing is kept (own is freed too).
 */
static int snapshot_new(server *s, const gw_server_config *cfg, gw_server_config *own,
                        snapshot **out, gw_error *e)
{
    static atomic_uint generations;
    *out = NULL;
    int rc = 0;
    snapshot *sn = calloc(1, sizeof *sn);
    if (!sn) {
        if (own) {
            gw_server_config_free(own);
            free(own);
        }
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    }
    atomic_init(&sn->refs, 1);
    sn->s = s;
    sn->own_cfg = own;
    sn->cfg = cfg;
    sn->generation = atomic_fetch_add(&generations, 1) + 1;
    if (!cfg->backend && cfg->backend_count == 0) {
        rc = gw_error_set(e, GW_EINVAL, "no backend: give --backend URL or \"backends\"");
        goto out;
    }
    rc = load_registry(cfg, &sn->registry, e);
    if (rc)
        goto out;
    sn->call = cfg->call;
    sn->call.registry = sn->registry;
    sn->call.observe = ops_observe;
    sn->call.observe_start = ops_observe_start;
    sn->call.observe_ctx = sn;
    sn->call.upstream_start = upstream_start;
    sn->call.upstream_ctx = sn;
    rc = snapshot_targets(sn, cfg, e);
    if (rc)
        goto out;
    rc = snapshot_routes(sn, cfg, e);
    if (rc)
        goto out;
    sn->rest = (gw_call_rest_config){.router = sn->router, .rest = &cfg->rest};
    if (cfg->cors_allow_headers && *cfg->cors_allow_headers) {
        size_t n = strlen(CORS_BASE_HEADERS) + strlen(cfg->cors_allow_headers) + 3;
        sn->allow_headers = malloc(n);
        if (sn->allow_headers)
            snprintf(sn->allow_headers, n, "%s, %s", CORS_BASE_HEADERS,
                     cfg->cors_allow_headers);
    } else {
        sn->allow_headers = strdup(CORS_BASE_HEADERS);
    }
    if (!sn->allow_headers) {
        rc = gw_error_set(e, GW_ENOMEM, "out of memory");
        goto out;
    }
    if (cfg->openapi_path) {
        gw_openapi_options oo;
        gw_openapi_options_init(&oo);
        oo.proto_names = cfg->rest.proto_names;
        oo.auto_map_unbound = cfg->router.auto_map_unbound;
        gw_buf doc;
        gw_buf_init(&doc, 64u << 20);
        rc = gw_openapi_generate(sn->registry, &oo, &doc, e);
        if (rc == 0 && sn->route_count)
            rc = openapi_filter(sn, &doc, e);
        if (rc == 0) {
            sn->openapi = gw_blob_new(doc.data, doc.len);
            if (!sn->openapi)
                rc = gw_error_set(e, GW_ENOMEM, "out of memory");
        }
        gw_buf_free(&doc);
        if (rc)
            goto out;
    }
    sn->ops_site = (gw_ops_site){.prefix = cfg->ops_prefix ? cfg->ops_prefix : "",
                                 .on_main_port = cfg->ops_on_main_port,
                                 .metrics_enabled = cfg->metrics_enabled,
                                 .openapi_path = cfg->openapi_path,
                                 .reload_endpoint = cfg->reload_endpoint,
                                 .openapi = sn->openapi,
                                 .ref = ops_backends_ref,
                                 .unref = ops_backends_unref,
                                 .owner = sn};
    slots_commit(s, sn);
    *out = sn;
    return 0;
out:
    snapshot_unref(sn);
    return rc;
}

/* Settings a reload cannot change: the threads, the listeners (what
 * libmicrohttpd was started with: TLS, limits, compression), the access
 * log and the static directory stay as they are. Each changed one is
 * logged by its key, then ignored. The table of every key and its reload
 * behaviour is in docs/configuration.md (tests/ops/test_reload_keys.py
 * checks it). */
enum { RO_STRING, RO_SCALAR, RO_TEXT };
#define RO(kind, key, field) {kind, key, offsetof(gw_server_config, field), \
                              sizeof(((gw_server_config *)0)->field)}
static const struct restart_only {
    int kind;
    const char *key;
    size_t off, size;
} restart_only[] = {
    RO(RO_SCALAR, "workers", workers),
    RO(RO_STRING, "admin.listen", admin_listen),
    RO(RO_STRING, "access_log", access_log),
    RO(RO_STRING, "static_dir", static_dir),
    RO(RO_STRING, "tls.cert_file", tls_cert),
    RO(RO_STRING, "tls.key_file", tls_key),
    RO(RO_STRING, "tls.client_ca_file", tls_client_ca),
    RO(RO_STRING, "tls.priorities", tls_priorities),
    RO(RO_SCALAR, "limits.max_header_bytes", front.memory_limit),
    RO(RO_SCALAR, "limits.max_header_count", front.max_header_count),
    RO(RO_SCALAR, "limits.max_connections", front.connection_limit),
    RO(RO_SCALAR, "limits.max_connections_per_ip", front.per_ip_limit),
    RO(RO_SCALAR, "limits.header_timeout_ms", front.header_timeout_ms),
    RO(RO_SCALAR, "limits.idle_timeout_ms", front.idle_timeout_ms),
    RO(RO_SCALAR, "limits.inactivity_timeout_s", front.inactivity_timeout_s),
    RO(RO_SCALAR, "limits.discard_body_bytes", front.discard_limit),
    RO(RO_SCALAR, "limits.idle_park_ms", front.park_idle_ms),
    RO(RO_SCALAR, "limits.idle_trim_ms", front.trim_idle_ms),
    RO(RO_SCALAR, "limits.send_lowat_bytes", front.notsent_lowat),
    RO(RO_SCALAR, "limits.send_buffer_bytes", front.sndbuf),
    RO(RO_SCALAR, "limits.body_timeout_ms", front.body_timeout_ms),
    RO(RO_SCALAR, "limits.body_min_rate", front.body_min_rate),
    RO(RO_SCALAR, "front.http_strictness", front.http_strictness),
    RO(RO_SCALAR, "compression.enabled", front.compression.enabled),
    RO(RO_SCALAR, "compression.min_bytes", front.compression.min_bytes),
    RO(RO_SCALAR, "compression.level", front.compression.level),
    RO(RO_TEXT, "compression.types", front.compression.types),
};

static void warn_restart_only(const gw_server_config *old, const gw_server_config *nc)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(restart_only); i++) {
        const struct restart_only *k = &restart_only[i];
        const char *a = (const char *)old + k->off, *b = (const char *)nc + k->off;
        bool changed;
        if (k->kind == RO_STRING) {
            const char *x = *(char *const *)(const void *)a;
            const char *y = *(char *const *)(const void *)b;
            changed = (x == NULL) != (y == NULL) || (x && strcmp(x, y) != 0);
        } else if (k->kind == RO_TEXT) {
            changed = strncmp(a, b, k->size) != 0;
        } else {
            changed = memcmp(a, b, k->size) != 0;
        }
        if (changed)
            GW_WARN("reload: '%s' changed; it takes effect only after a restart", k->key);
    }
}

/* The main listener cannot move without dropping connections: a reload
 * that changes it is refused as a whole, so what is served never
 * disagrees with the file about where. Returns 0 or GW_EINVAL. */
static int check_same_listen(const gw_server_config *old, const gw_server_config *nc,
                             gw_error *e)
{
    const char *a = old->listen ? old->listen : "127.0.0.1:8080";
    const char *b = nc->listen ? nc->listen : "127.0.0.1:8080";
    if (strcmp(a, b) == 0)
        return 0;
    return gw_error_set(e, GW_EINVAL, "'listen' changed from %s to %s: a new listen address "
                        "needs a restart", a, b);
}

/*
 * SIGHUP (or POST /admin/reload): reads the configuration again, builds a
 * new snapshot here on the main thread, and swaps it in; the workers pick
 * it up when woken. Any error keeps the old snapshot and says why.
 */
static void reload(server *s)
{
    gw_error e;
    gw_error_clear(&e);
    int rc = 0;
    gw_server_config *nc = NULL;
    const gw_server_config *use = s->cfg;
    if (s->cfg->reload) {
        nc = malloc(sizeof *nc);
        if (!nc) {
            rc = gw_error_set(&e, GW_ENOMEM, "out of memory");
            goto out;
        }
        gw_server_config_init(nc);
        rc = s->cfg->reload(s->cfg->reload_ctx, nc, &e);
        if (rc) {
            gw_server_config_free(nc);
            free(nc);
            goto out;
        }
        use = nc;
        rc = check_same_listen(s->cfg, nc, &e);
        if (rc) {
            gw_server_config_free(nc);
            free(nc);
            goto out;
        }
        warn_restart_only(s->cfg, nc);
    }
    snapshot *sn;
    rc = snapshot_new(s, use, nc, &sn, &e);
    if (rc)
        goto out;
    while (atomic_flag_test_and_set_explicit(&s->snap_lock, memory_order_acquire))
        ;
    snapshot *old = s->current;
    s->current = sn;
    atomic_flag_clear_explicit(&s->snap_lock, memory_order_release);
    snapshot_ref(sn);
    gw_ops_site_set(&s->ops, &sn->ops_site);
    if (nc)
        gw_log_set_level(nc->log_level);
    for (size_t i = 0; i < s->worker_count; i++)
        gw_loop_wakeup(s->workers[i].loop);
    /* "In service" below means every worker starts new calls with it (an
     * operator, or a test, may act on that line): wait a little for them
     * to pick it up; a worker that is slower than that only delays the
     * line. */
    uint64_t deadline = gw_now_ns() + 5000 * GW_MS;
    size_t took = 0;
    for (size_t i = 0; i < s->worker_count; i++) {
        worker *w = &s->workers[i];
        while (atomic_load_explicit(&w->generation_seen, memory_order_acquire) <
                   sn->generation &&
               atomic_load_explicit(&w->generation_failed, memory_order_acquire) <
                   sn->generation &&
               gw_now_ns() < deadline) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};
            nanosleep(&ts, NULL);
        }
        if (atomic_load_explicit(&w->generation_seen, memory_order_acquire) >= sn->generation)
            took++;
    }
    /* Only now do /metrics and /readyz read the new backends: the workers
     * that switched have sampled them while switching. */
    snapshot_ref(sn);
    atomic_store(&s->ops.ready_needs_connection, sn->cfg->ready_requires_connection);
    gw_ops_backends_set(&s->ops, &sn->ops_backends);
    snapshot_unref(old);
    gw_counter_add(&s->ops.reloads_ok, 1);
    if (took == s->worker_count)
        GW_INFO("reload: generation %u in service (%zu REST routes)", sn->generation,
                gw_router_route_count(sn->router));
    else
        GW_WARN("reload: generation %u taken by %zu of %zu workers (%zu REST routes); the "
                "others still serve an older one (see above)", sn->generation, took,
                s->worker_count, gw_router_route_count(sn->router));
    return;
out:
    gw_counter_add(&s->ops.reloads_failed, 1);
    GW_ERROR("reload failed, still serving the previous configuration: %s", e.msg);
}

int gw_server_run(const gw_server_config *cfg, gw_error *e)
{
    server s = {0};
    s.cfg = cfg;
    int rc = 0;
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGHUP);
    /* Every thread started from here on (workers, the admin listener, DNS
     * resolvers) inherits a mask that blocks these: only this thread takes
     * them, with sigwait. */
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    /* A zeroed atomic_flag is not necessarily clear (C11 7.17.8). */
    atomic_flag_clear(&s.snap_lock);
    atomic_flag_clear(&s.ops.backends_lock);
    atomic_flag_clear(&s.ops.site_lock);
    for (size_t i = 0; i < GW_METRICS_MAX_BACKENDS; i++)
        atomic_init(&s.slot_snaps[i], 0);

    rc = split_listen(cfg->listen ? cfg->listen : "127.0.0.1:8080", s.host, sizeof s.host,
                      &s.port, e);
    if (rc)
        goto out;
    if (!cfg->listen_reserved) {
        rc = gw_server_check_listen(s.host, s.port, e);
        if (rc)
            goto out;
    }
    if (cfg->admin_listen) {
        char ahost[64];
        uint16_t aport;
        /* A malformed admin.listen is reported by the admin listener. */
        if (split_listen(cfg->admin_listen, ahost, sizeof ahost, &aport, NULL) == 0) {
            rc = gw_server_check_listen(ahost, aport, e);
            if (rc)
                goto out;
        }
    }
    if (cfg->static_dir) {
        rc = gw_static_new(cfg->static_dir, &s.statics, e);
        if (rc)
            goto out;
    }
    rc = snapshot_new(&s, cfg, NULL, &s.current, e);
    if (rc)
        goto out;

    if (cfg->front.per_ip_limit) {
        s.ip_limit = gw_front_iplimit_new();
        if (!s.ip_limit) {
            rc = gw_error_set(e, GW_ENOMEM, "out of memory");
            goto out;
        }
    }

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    s.worker_count = cfg->workers ? cfg->workers : (size_t)(cpus > 0 ? cpus : 1);
    s.workers = calloc(s.worker_count, sizeof *s.workers);
    if (!s.workers) {
        rc = gw_error_set(e, GW_ENOMEM, "out of memory");
        goto out;
    }
    rc = tls_load(&s, e);
    if (rc)
        goto out;
    for (size_t i = 0; i < s.worker_count; i++) {
        rc = worker_init(&s, &s.workers[i], (unsigned)i, e);
        if (rc)
            goto out;
    }

    rc = ops_setup(&s, e);
    if (rc)
        goto out;

    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < s.worker_count; i++) {
        if (pthread_create(&s.workers[i].thread, NULL, worker_main, &s.workers[i]) != 0) {
            rc = gw_error_set(e, GW_EIO, "cannot start worker threads");
            for (size_t j = 0; j < i; j++) {
                atomic_store(&s.workers[j].stop_requested, true);
                gw_loop_wakeup(s.workers[j].loop);
            }
            break;
        }
        s.workers[i].started = true;
    }
    if (rc == 0) {
        bool v6 = strchr(s.host, ':') != NULL;
        printf("listening on %s%s%s:%u\n", v6 ? "[" : "", s.host, v6 ? "]" : "", s.port);
        fflush(stdout);
        GW_INFO("grpcgate serve: %zu workers, %zu backends", s.worker_count,
                s.current->target_count);
        int sig = 0;
        while (sigwait(&stop_set, &sig) == 0 && sig == SIGHUP)
            reload(&s);
        /* The drain settings of the generation in service (a reload
         * applies them); only this thread replaces s.current. */
        const gw_server_config *now = s.current->cfg;
        GW_INFO("grpcgate serve: signal %d, draining (up to %u ms)", sig,
                now->drain_timeout_ms);
        /* Readiness goes false before the listeners close, so that a load
         * balancer polling /readyz stops sending first. */
        atomic_store(&s.ops.draining, true);
        if (now->drain_delay_ms) {
            struct timespec ts = {.tv_sec = now->drain_delay_ms / 1000,
                                  .tv_nsec = (long)(now->drain_delay_ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
        }
        for (size_t i = 0; i < s.worker_count; i++) {
            atomic_store(&s.workers[i].stop_requested, true);
            gw_loop_wakeup(s.workers[i].loop);
        }
    }
    for (size_t i = 0; i < s.worker_count; i++)
        if (s.workers[i].started)
            pthread_join(s.workers[i].thread, NULL);
    if (rc == 0)
        GW_INFO("grpcgate serve: stopped");
out:
    /* The admin listener reads the workers' counters: it goes first. */
    gw_admin_stop(s.admin);
    s.admin = NULL;
    for (size_t i = 0; s.workers && i < s.worker_count; i++)
        worker_free(&s.workers[i]);
    ops_teardown(&s);
    free(s.workers);
    gw_front_iplimit_del(s.ip_limit);
    if (s.current)
        snapshot_unref(s.current);
    gw_static_del(s.statics);
    for (size_t i = 0; i < GW_METRICS_MAX_BACKENDS; i++)
        free(s.slot_labels[i]);
    return rc;
}
