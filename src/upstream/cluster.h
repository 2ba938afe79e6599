/*
 * cluster — one named backend made of several endpoints (each a gw_backend
 * with its own pool), for one gw_loop (one per worker, like gw_backend).
 *
 *   - Load balancing: round robin (default) or least outstanding calls,
 *     over the endpoints that are up.
 *   - Ejection: an endpoint whose connection fails (unreachable, or a
 *     connection lost under calls) is taken out at once; one that fails
 *     `unhealthy_threshold` health checks in a row too. It is put back after
 *     `healthy_threshold` good checks (with health checks off: after one
 *     successful probe, see docs/upstream.md).
 *   - A call that its endpoint could not even send (unreachable) is moved to
 *     another endpoint instead of failing: it never reached a server.
 *   - Active health checks: grpc.health.v1.Health/Check on every endpoint
 *     every interval_ms (off when 0).
 *   - DNS: an http(s) URL whose host is a name is resolved into one endpoint
 *     per address, re-resolved every dns_refresh_ms on a short-lived
 *     resolver thread; endpoints of addresses that remain keep their
 *     connections, removed ones drain (no new calls; deleted when their
 *     last call completed).
 *
 * Threading: everything runs on the cluster's loop thread except the
 * resolver function, which runs on a resolver thread (resolve.c, shared
 * with lone backends).
 *
 * Calls: gw_cluster_ucall_start hands back an ordinary gw_ucall; use the
 * gw_ucall_* functions on it, with the same callback contract as
 * gw_ucall_start.
 */
#ifndef GW_UPSTREAM_CLUSTER_H
#define GW_UPSTREAM_CLUSTER_H

#include "upstream/upstream.h"

typedef struct gw_cluster gw_cluster;
typedef struct gw_dns_seed gw_dns_seed;

typedef enum gw_lb_policy {
    GW_LB_ROUND_ROBIN = 0,
    GW_LB_LEAST_OUTSTANDING = 1,
} gw_lb_policy;

typedef struct gw_health_options {
    uint32_t interval_ms;          /* 0 (default): no active health checks */
    uint32_t timeout_ms;           /* per check; default 1000 */
    uint32_t unhealthy_threshold;  /* failed checks in a row to eject; default 2 */
    uint32_t healthy_threshold;    /* good checks in a row to put back; default 1 */
    const char *service;           /* HealthCheckRequest.service; default "" (the server) */
} gw_health_options;

typedef struct gw_cluster_options {
    gw_lb_policy policy;
    gw_backend_options backend;    /* for every endpoint (strings are copied) */
    gw_health_options health;
    uint32_t probe_interval_ms;    /* health checks off: how often an ejected
                                      endpoint is probed; default 1000 */
    uint32_t dns_refresh_ms;       /* default 30000; 0: resolve once */
    size_t max_endpoints;          /* addresses kept per name; default 64 */
    gw_resolve_fn resolve;         /* NULL: getaddrinfo (see upstream.h) */
    void *resolve_ctx;
    /* Names already resolved (gw_dns_seed_new, same URLs in the same
     * order): gw_cluster_new then does not block. Borrowed during
     * gw_cluster_new only. NULL: gw_cluster_new resolves. */
    const gw_dns_seed *seed;
} gw_cluster_options;

/* Fills o with the defaults above (and gw_backend_options_init). */
void gw_cluster_options_init(gw_cluster_options *o);

/*
 * A cluster named `name` (used in messages) with the endpoint URLs urls[0..n)
 * (the forms gw_backend_new accepts). URLs whose host is a name are
 * resolved once here, blocking — unless o->seed carries them already
 * (gw_dns_seed_new on another thread: do that for clusters made on a busy
 * loop, e.g. at reload) — then periodically without blocking. A name that does not
 * resolve gives no endpoint for now and is retried at every refresh. Borrows
 * loop; copies name, urls and options. Starts health checks at once.
 * Returns 0, GW_EINVAL (no URL, bad URL, bad options, a seed for other
 * URLs: message in e) or GW_ENOMEM. A refresh that cannot start its
 * thread is logged and retried at the next one.
 */
int gw_cluster_new(gw_loop *loop, const char *name, const char *const *urls, size_t n,
                   const gw_cluster_options *o, gw_cluster **out, gw_error *e);
/*
 * Resolves the host names among urls[0..n) now, blocking, on any thread —
 * a startup or reload thread — with o's resolver and max_endpoints (o may
 * be NULL). Pass the seed in gw_cluster_options.seed so that
 * gw_cluster_new on a loop thread does not block; one seed serves every
 * worker's cluster for the same URLs. A name that does not resolve is
 * recorded as such (the cluster retries it at each refresh). Returns 0,
 * GW_EINVAL (no URL) or GW_ENOMEM.
 */
int gw_dns_seed_new(const char *const *urls, size_t n, const gw_cluster_options *o,
                    gw_dns_seed **out, gw_error *e);
void gw_dns_seed_del(gw_dns_seed *seed);

/* Fails every open call with UNAVAILABLE (callbacks run before it returns,
 * as for gw_backend_del), stops health checks, abandons a refresh in
 * flight without waiting for it (its thread frees its own state when the
 * resolver returns; the resolver's ctx must outlive it) and frees
 * everything. Safe from any loop callback, as gw_backend_del: inside a
 * loop turn the struct (it holds the DNS watch's gw_io) goes in a deferred
 * callback of the same turn. */
void gw_cluster_del(gw_cluster *c);
const char *gw_cluster_name(const gw_cluster *c);

/*
 * Picks an endpoint that is up and starts the call there (gw_ucall_start).
 * With no endpoint up, the call still starts and completes with
 * UNAVAILABLE "no healthy endpoint in cluster NAME" (on_complete runs from
 * the loop as usual). Returns 0, GW_EINVAL (bad path or metadata) or
 * GW_ENOMEM; then no callback runs.
 */
int gw_cluster_ucall_start(gw_cluster *c, const gw_ucall_params *params,
                           const gw_ucall_handlers *handlers, void *owner, gw_ucall **out,
                           gw_error *e);

/* Starts a DNS re-resolution now (if none is running) instead of waiting
 * for the next refresh; the result is applied later on the loop. For tests
 * and reloads. Returns 0, GW_EIO (thread creation failed) or GW_ENOMEM. */
int gw_cluster_refresh_dns(gw_cluster *c);

/* ---- statistics (for metrics, /readyz and tests; loop thread only) ----- */
typedef struct gw_cluster_stats {
    size_t endpoints;              /* current, draining ones excluded */
    size_t healthy_endpoints;      /* of those, up */
    size_t active_calls;           /* on all endpoints, draining ones included */
    uint64_t calls_started;        /* by gw_cluster_ucall_start */
    uint64_t calls_no_endpoint;    /* failed with "no healthy endpoint" */
    uint64_t calls_redirected;     /* moved off an unreachable endpoint */
    uint64_t dns_resolutions;      /* completed (successful or not) */
    uint64_t dns_failures;
    uint64_t ejections;            /* up → down transitions */
} gw_cluster_stats;
void gw_cluster_get_stats(const gw_cluster *c, gw_cluster_stats *out);

typedef struct gw_endpoint_stats {
    const char *url;               /* "http://10.0.0.1:50051"; valid until the
                                      next loop turn */
    const char *name_url;          /* the configured URL it came from */
    bool healthy;                  /* up: takes new calls */
    bool draining;                 /* removed by DNS, finishing its calls */
    size_t active_calls;
    uint64_t calls_started;        /* picked by the balancer or redirected here */
    uint64_t calls_failed;         /* completed with a code other than OK */
    uint64_t transport_failures;   /* unreachable or connection lost */
    uint64_t checks_ok;            /* health checks and probes that succeeded */
    uint64_t checks_failed;
    const char *last_failure;      /* "" or why it was last ejected */
} gw_endpoint_stats;
/* Endpoints in a stable order (configuration order, then address order),
 * draining ones last. */
size_t gw_cluster_endpoint_count(const gw_cluster *c);
/* Readiness: gw_cluster_warm connects every endpoint in service that has no
 * connection (gw_backend_warm); gw_cluster_ready_endpoints counts the
 * endpoints in service whose backend is gw_backend_ready. Loop thread. */
void gw_cluster_warm(gw_cluster *c);
size_t gw_cluster_ready_endpoints(const gw_cluster *c, bool untried_ok);
/* Returns 0 or GW_ERANGE (i out of range). */
int gw_cluster_endpoint_stats(const gw_cluster *c, size_t i, gw_endpoint_stats *out);
/* The endpoint's backend, for gw_backend_get_stats (connections, retries,
 * resets). Borrowed: valid until the next loop turn. NULL when i is out of
 * range. */
const gw_backend *gw_cluster_endpoint_backend(const gw_cluster *c, size_t i);

/* ---- pure pieces, exposed for unit tests ------------------------------------ */
typedef struct gw_lb_candidate {
    bool up;
    size_t active_calls;
} gw_lb_candidate;
/*
 * The balancer: the index of the endpoint to use among cands[0..n), or -1
 * when none is up. Round robin takes the first up endpoint at or after
 * *cursor; least outstanding takes the up endpoint with the fewest active
 * calls, ties broken in round-robin order from *cursor. Either way *cursor
 * moves past the choice.
 */
long gw_lb_pick(gw_lb_policy policy, const gw_lb_candidate *cands, size_t n, size_t *cursor);

/* Health check bodies (grpc.health.v1). Encodes HealthCheckRequest{service}
 * into out; returns 0, GW_ELIMIT or GW_ENOMEM. */
int gw_health_request_encode(gw_buf *out, const char *service);
/* Decodes HealthCheckResponse.status (0 UNKNOWN, 1 SERVING, 2 NOT_SERVING,
 * 3 SERVICE_UNKNOWN). Returns 0 or GW_EPARSE. */
int gw_health_response_decode(const uint8_t *p, size_t n, int *status);

#include "upstream/reflect.h"

#endif
