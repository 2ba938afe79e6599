/*
 * ops — what an operator sees of `grpcgate serve` (internal to src/server):
 * per-worker metrics rendered in the Prometheus text format, the access log,
 * and the operational endpoints (/healthz, /readyz, /metrics, the OpenAPI
 * document, POST /admin/reload). See docs/operations.md.
 *
 * Threading: each gw_metrics is written by one worker thread only, with
 * relaxed atomic loads and stores (no read-modify-write, no lock on the
 * request path) and read by whichever thread renders a scrape. A series
 * (protocol, method) is published by a release store of its `used` flag
 * after its key is written; readers load the flag with acquire.
 */
#ifndef GW_SERVER_OPS_H
#define GW_SERVER_OPS_H

#include <stdatomic.h>

#include "call/call.h"
#include "front/front.h"
#include "upstream/upstream.h"

/* Latency buckets (upper bounds in seconds), fixed so that histograms of
 * different workers and replicas can be summed. */
#define GW_METRICS_BUCKETS 12
extern const double gw_metrics_bucket_bounds[GW_METRICS_BUCKETS];
#define GW_METRICS_CODES (GW_CODE_MAX + 1)
/* Distinct (protocol, method) series per worker; beyond this (3/4 of it, to
 * keep probing short) calls count under method="other". */
#define GW_METRICS_MAX_SERIES 2048
#define GW_METRICS_MAX_BACKENDS 64
#define GW_METRICS_MAX_ENDPOINTS 32   /* configured endpoints per backend */

typedef atomic_uint_least64_t gw_counter;

typedef struct gw_metrics_series {
    atomic_bool used;
    char protocol[16];             /* "grpc_web", "rest" */
    char *method;                  /* owned; "unknown" for rejected paths */
    gw_counter codes[GW_METRICS_CODES];
    gw_counter buckets[GW_METRICS_BUCKETS]; /* not cumulative: bucket i only */
    gw_counter count;
    gw_counter sum_us;
    gw_counter request_bytes;
    gw_counter response_bytes;
} gw_metrics_series;

/* An upstream backend as one worker last saw it (sampled on its loop). */
typedef struct gw_metrics_backend {
    gw_counter connections_open;
    gw_counter connects_started;
    gw_counter connects_ok;
    gw_counter queued_calls;
    gw_counter endpoints;
    gw_counter healthy_endpoints;
    gw_counter checks_ok;
    gw_counter checks_failed;
    gw_counter ready_endpoints;    /* readiness: see gw_backend_sample */
    /* per configured endpoint (addresses a name resolves to are summed) */
    gw_counter ep_calls[GW_METRICS_MAX_ENDPOINTS];
    gw_counter ep_up[GW_METRICS_MAX_ENDPOINTS];
} gw_metrics_backend;

/* One worker's counters. */
typedef struct gw_metrics {
    gw_metrics_series *series;     /* GW_METRICS_MAX_SERIES slots */
    size_t series_used;            /* worker-private */
    gw_counter calls_started;
    gw_counter calls_finished;
    gw_counter sampled;            /* backends below are valid once this is 1 */
    gw_metrics_backend backends[GW_METRICS_MAX_BACKENDS];
} gw_metrics;

/* Returns 0 or GW_ENOMEM. gw_metrics_free releases what init allocated. */
int gw_metrics_init(gw_metrics *m);
void gw_metrics_free(gw_metrics *m);

/* Worker thread: a call was handed to gw_call_start / gw_call_reject. */
void gw_metrics_call_started(gw_metrics *m);
/* Worker thread: a call ended (gw_call_options.observe). */
void gw_metrics_observe(gw_metrics *m, const gw_call_report *rep);
/* A backend's numbers as sampled by a worker (plain copy). */
typedef struct gw_backend_sample {
    uint64_t connections_open, connects_started, connects_ok, queued_calls;
    uint64_t endpoints, healthy_endpoints, checks_ok, checks_failed;
    uint64_t ready_endpoints;      /* connected (or checked) and not failing */
    uint64_t ep_calls[GW_METRICS_MAX_ENDPOINTS];  /* calls started there */
    uint64_t ep_up[GW_METRICS_MAX_ENDPOINTS];     /* 1 when up (any address) */
} gw_backend_sample;
/* Worker thread: stores backend i's numbers. */
void gw_metrics_set_backend(gw_metrics *m, size_t i, const gw_backend_sample *b);
/* Zeroes backend i's numbers (a slot given to another backend name), while
 * no thread writes them; `sampled` stays as it is. */
void gw_metrics_clear_backend(gw_metrics *m, size_t i);
/* Adds counter v to a (relaxed load + store: one writer). */
static inline void gw_counter_add(gw_counter *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}
static inline uint64_t gw_counter_get(gw_counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Process-wide numbers that are not per worker. */
typedef struct gw_metrics_global {
    const char *const *backend_names;  /* [backend_count] */
    size_t backend_count;
    /* configured endpoint URLs per backend ([backend_count]; NULL/0 for a
     * plain backend): per-endpoint series */
    const char *const *const *endpoint_names;
    const size_t *endpoint_counts;
    /* backend b's numbers are gw_metrics.backends[backend_slots[b]] (a
     * reload may add and drop backends; a name keeps its slot). NULL: b. */
    const size_t *backend_slots;
    uint64_t reloads_ok, reloads_failed;
    bool ready;
    size_t workers;
} gw_metrics_global;

/*
 * Renders the sum of ms[0..n) and g in the Prometheus text exposition
 * format (version 0.0.4) into out. Returns 0, GW_ELIMIT (over out->max) or
 * GW_ENOMEM.
 */
int gw_metrics_render(gw_metrics *const *ms, size_t n, const gw_metrics_global *g,
                      gw_buf *out);

/* ---- the operational endpoints -------------------------------------------------- */

/* A byte string shared by reference count (the OpenAPI document of one
 * snapshot): whoever answers with it holds a reference meanwhile. */
typedef struct gw_blob {
    atomic_uint refs;
    size_t len;
    char data[];
} gw_blob;
gw_blob *gw_blob_new(const void *data, size_t len);   /* refs 1; NULL: ENOMEM */
void gw_blob_ref(gw_blob *b);
void gw_blob_unref(gw_blob *b);

/* The backends of one configuration generation as scrapes and /readyz see
 * them (the arrays as in gw_metrics_global). It lives in what the server
 * builds per generation: ref/unref on owner keep it alive while read. */
typedef struct gw_ops_backends {
    const char *names[GW_METRICS_MAX_BACKENDS];
    const char *const *endpoint_names[GW_METRICS_MAX_BACKENDS];  /* NULL: plain */
    size_t endpoint_counts[GW_METRICS_MAX_BACKENDS];
    size_t slots[GW_METRICS_MAX_BACKENDS];  /* index in gw_metrics.backends */
    size_t count;
    void (*ref)(void *owner);
    void (*unref)(void *owner);
    void *owner;
} gw_ops_backends;

/* Where the endpoints live and what they serve, per configuration
 * generation (a reload applies it): strings and document borrowed from what
 * the server builds per generation, which ref/unref on owner keep alive. */
typedef struct gw_ops_site {
    const char *prefix;            /* "" (root) or "/ops" */
    bool on_main_port;
    bool metrics_enabled;
    const char *openapi_path;      /* NULL: off */
    bool reload_endpoint;          /* POST <prefix>/admin/reload */
    const gw_blob *openapi;        /* the document, or NULL */
    void (*ref)(void *owner);
    void (*unref)(void *owner);
    void *owner;
} gw_ops_site;

typedef struct gw_ops {
    gw_metrics *const *metrics;    /* [workers] */
    size_t workers;
    _Atomic(gw_ops_backends *) backends;  /* current generation's, or NULL */
    atomic_flag backends_lock;     /* taken only to ref/swap `backends` */
    atomic_bool draining;          /* readiness false from the first signal */
    atomic_bool loaded;            /* a registry is loaded */
    /* admin.ready_requires_connection (default true): every backend must
     * have an endpoint that connected (or passed its health check) and is
     * not failing; false: one not known to be down is enough. */
    atomic_bool ready_needs_connection;
    gw_counter reloads_ok, reloads_failed;
    _Atomic(gw_ops_site *) site;   /* current generation's, or NULL */
    atomic_flag site_lock;         /* taken only to ref/swap `site` */
    /* Asks for a reload (the admin endpoint); runs on a worker thread and
     * must not block. NULL: no reload. */
    void (*request_reload)(void *ctx);
    void *reload_ctx;
} gw_ops;

/* The current site with a reference (gw_ops_site_put when done), or NULL.
 * Any thread. */
gw_ops_site *gw_ops_site_get(gw_ops *o);
void gw_ops_site_put(gw_ops_site *s);
/* Replaces the site (takes the caller's reference to s; NULL: none). */
void gw_ops_site_set(gw_ops *o, gw_ops_site *s);
/* The current backends with a reference (gw_ops_backends_put when done),
 * or NULL. Any thread. */
gw_ops_backends *gw_ops_backends_get(gw_ops *o);
void gw_ops_backends_put(gw_ops_backends *b);
/* Replaces the backends (takes the caller's reference to b; NULL: none). */
void gw_ops_backends_set(gw_ops *o, gw_ops_backends *b);
/* True when /readyz would answer 200. Any thread. */
bool gw_ops_ready(gw_ops *o);
/*
 * Answers r if it is one of the operational endpoints of site (borrowed;
 * a worker passes its own generation's, the admin listener the current
 * one). On the main port: the OpenAPI document at site->openapi_path, and
 * the endpoints under site->prefix when on_main_port; r is left alone
 * otherwise. On the admin listener (admin_listener true) exactly /healthz,
 * /readyz, /metrics (when enabled) and /admin/reload (when enabled) at the
 * root, everything else 404 (docs/configuration.md). Returns true if r was
 * answered.
 */
bool gw_ops_handle(gw_ops *o, const gw_ops_site *site, gw_front_req *r, bool admin_listener);

/* The separate admin listener: one thread with its own loop and front. */
typedef struct gw_admin gw_admin;
/* listen "HOST:PORT". Prints nothing; gw_admin_port tells the port. Returns
 * 0, GW_EINVAL, GW_EIO or GW_ENOMEM. */
int gw_admin_start(gw_ops *o, const char *listen, gw_admin **out, gw_error *e);
uint16_t gw_admin_port(const gw_admin *a);
/* Stops the thread and frees everything. NULL is fine. */
void gw_admin_stop(gw_admin *a);

/* ---- access log --------------------------------------------------------------- */

typedef struct gw_accesslog gw_accesslog;

/* path "-": stdout; else a file opened O_APPEND|O_CREAT. Returns 0, GW_EIO
 * (message in e) or GW_ENOMEM. */
int gw_accesslog_open(const char *path, gw_accesslog **out, gw_error *e);
void gw_accesslog_close(gw_accesslog *l);
/*
 * Formats one JSON line for rep into line (a per-worker buffer, reset here)
 * and writes it with a single write(2), so lines of different workers never
 * interleave. backend: the endpoint or cluster the call went to, or NULL.
 * A failed write is counted, never retried, never blocks other workers.
 */
void gw_accesslog_write(gw_accesslog *l, gw_buf *line, const gw_call_report *rep,
                        const char *backend);
/* Pure formatter behind gw_accesslog_write (tests): appends the line
 * (with '\n') for rep at wall-clock time unix_ns to out. peer, http_method
 * and path may be NULL. Returns 0, GW_ELIMIT or GW_ENOMEM. */
int gw_accesslog_format(gw_buf *out, uint64_t unix_ns, const char *peer,
                        const char *http_method, const char *path,
                        const gw_call_report *rep, const char *backend);

/* Appends s as a JSON string (with quotes) to out. Returns 0 or GW_ELIMIT/ENOMEM. */
int gw_json_quote(gw_buf *out, const char *s);

#endif
