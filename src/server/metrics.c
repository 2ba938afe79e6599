/*
 * Per-worker counters and the Prometheus text rendering. See ops.h for the
 * threading rules and docs/operations.md for every metric.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/ops.h"

const double gw_metrics_bucket_bounds[GW_METRICS_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
};

int gw_metrics_init(gw_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->series = calloc(GW_METRICS_MAX_SERIES, sizeof *m->series);
    return m->series ? 0 : GW_ENOMEM;
}

void gw_metrics_free(gw_metrics *m)
{
    for (size_t i = 0; m->series && i < GW_METRICS_MAX_SERIES; i++)
        free(m->series[i].method);
    free(m->series);
    memset(m, 0, sizeof *m);
}

void gw_metrics_call_started(gw_metrics *m)
{
    gw_counter_add(&m->calls_started, 1);
}

static uint64_t hash_key(const char *protocol, const char *method)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = protocol; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h = (h ^ '|') * 1099511628211ull;
    for (const char *p = method; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return h;
}

/* Protocol label: the adapter name with '-' as '_' ("grpc-web" → "grpc_web"). */
static void protocol_label(const char *name, char out[16])
{
    size_t i = 0;
    for (; name && name[i] && i < 15; i++)
        out[i] = name[i] == '-' ? '_' : name[i];
    out[i] = 0;
}

/* The series for (protocol, method), created on first use; the overflow
 * series "other" once the table is 3/4 full. NULL only when out of memory. */
static gw_metrics_series *series_for(gw_metrics *m, const char *protocol, const char *method)
{
    bool full = m->series_used >= GW_METRICS_MAX_SERIES * 3 / 4;
    for (int pass = 0; pass < 2; pass++) {
        const char *key = full || pass ? "other" : method;
        size_t i = (size_t)(hash_key(protocol, key) % GW_METRICS_MAX_SERIES);
        for (;;) {
            gw_metrics_series *s = &m->series[i];
            if (!atomic_load_explicit(&s->used, memory_order_relaxed)) {
                if (full && pass == 0 && strcmp(key, "other") != 0)
                    break;
                s->method = strdup(key);
                if (!s->method)
                    return NULL;
                memcpy(s->protocol, protocol, sizeof s->protocol);
                atomic_store_explicit(&s->used, true, memory_order_release);
                m->series_used++;
                return s;
            }
            if (strcmp(s->protocol, protocol) == 0 && strcmp(s->method, key) == 0)
                return s;
            i = (i + 1) % GW_METRICS_MAX_SERIES;
        }
        full = true;
    }
    return NULL;
}

void gw_metrics_observe(gw_metrics *m, const gw_call_report *rep)
{
    gw_counter_add(&m->calls_finished, 1);
    char proto[16];
    protocol_label(rep->protocol, proto);
    gw_metrics_series *s = series_for(m, proto, rep->method ? rep->method->path : "unknown");
    if (!s)
        return;
    /* No final status: the client went away, which gRPC calls CANCELLED. */
    int code = rep->code >= 0 && rep->code < GW_METRICS_CODES ? rep->code : GW_CODE_CANCELLED;
    gw_counter_add(&s->codes[code], 1);
    uint64_t ns = rep->end_ns > rep->start_ns ? rep->end_ns - rep->start_ns : 0;
    double secs = (double)ns / 1e9;
    for (size_t i = 0; i < GW_METRICS_BUCKETS; i++)
        if (secs <= gw_metrics_bucket_bounds[i]) {
            gw_counter_add(&s->buckets[i], 1);
            break;
        }
    gw_counter_add(&s->count, 1);
    gw_counter_add(&s->sum_us, ns / 1000);
    gw_counter_add(&s->request_bytes, rep->request_bytes);
    gw_counter_add(&s->response_bytes, rep->response_bytes);
}

void gw_metrics_set_backend(gw_metrics *m, size_t i, const gw_backend_sample *b)
{
    if (i >= GW_METRICS_MAX_BACKENDS)
        return;
    gw_metrics_backend *d = &m->backends[i];
    atomic_store_explicit(&d->connections_open, b->connections_open, memory_order_relaxed);
    atomic_store_explicit(&d->connects_started, b->connects_started, memory_order_relaxed);
    atomic_store_explicit(&d->connects_ok, b->connects_ok, memory_order_relaxed);
    atomic_store_explicit(&d->queued_calls, b->queued_calls, memory_order_relaxed);
    atomic_store_explicit(&d->endpoints, b->endpoints, memory_order_relaxed);
    atomic_store_explicit(&d->healthy_endpoints, b->healthy_endpoints, memory_order_relaxed);
    atomic_store_explicit(&d->checks_ok, b->checks_ok, memory_order_relaxed);
    atomic_store_explicit(&d->checks_failed, b->checks_failed, memory_order_relaxed);
    atomic_store_explicit(&d->ready_endpoints, b->ready_endpoints, memory_order_relaxed);
    for (size_t k = 0; k < GW_METRICS_MAX_ENDPOINTS; k++) {
        atomic_store_explicit(&d->ep_calls[k], b->ep_calls[k], memory_order_relaxed);
        atomic_store_explicit(&d->ep_up[k], b->ep_up[k], memory_order_relaxed);
    }
    atomic_store_explicit(&m->sampled, 1, memory_order_release);
}

void gw_metrics_clear_backend(gw_metrics *m, size_t i)
{
    if (i >= GW_METRICS_MAX_BACKENDS)
        return;
    gw_metrics_backend *d = &m->backends[i];
    gw_counter *fields[] = {&d->connections_open, &d->connects_started, &d->connects_ok,
                            &d->queued_calls, &d->endpoints, &d->healthy_endpoints,
                            &d->checks_ok, &d->checks_failed, &d->ready_endpoints};
    for (size_t k = 0; k < GW_ARRAY_LEN(fields); k++)
        atomic_store_explicit(fields[k], 0, memory_order_relaxed);
    for (size_t k = 0; k < GW_METRICS_MAX_ENDPOINTS; k++) {
        atomic_store_explicit(&d->ep_calls[k], 0, memory_order_relaxed);
        atomic_store_explicit(&d->ep_up[k], 0, memory_order_relaxed);
    }
}

/* ---- rendering --------------------------------------------------------------------- */

/* A series summed over the workers (scrape side only). */
typedef struct merged {
    const char *protocol, *method;  /* borrowed from a worker's series */
    uint64_t codes[GW_METRICS_CODES];
    uint64_t buckets[GW_METRICS_BUCKETS];
    uint64_t count, sum_us, request_bytes, response_bytes;
} merged;

static int cmp_merged(const void *a, const void *b)
{
    const merged *x = a, *y = b;
    int c = strcmp(x->protocol, y->protocol);
    return c ? c : strcmp(x->method, y->method);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static int label(gw_buf *out, const char *v)
{
    int rc = 0;
    for (const char *p = v; *p && rc == 0; p++) {
        if (*p == '\\')
            rc = gw_buf_append_str(out, "\\\\");
        else if (*p == '"')
            rc = gw_buf_append_str(out, "\\\"");
        else if (*p == '\n')
            rc = gw_buf_append_str(out, "\\n");
        else
            rc = gw_buf_append_byte(out, (uint8_t)*p);
    }
    return rc;
}

/* name{protocol="..",method=".."<extra>} value */
static int series_line(gw_buf *out, const char *name, const merged *s, const char *extra_name,
                       const char *extra_value, uint64_t v)
{
    int rc = gw_buf_printf(out, "%s{protocol=\"", name);
    if (!rc)
        rc = label(out, s->protocol);
    if (!rc)
        rc = gw_buf_append_str(out, "\",method=\"");
    if (!rc)
        rc = label(out, s->method);
    if (!rc && extra_name)
        rc = gw_buf_printf(out, "\",%s=\"%s", extra_name, extra_value);
    if (!rc)
        rc = gw_buf_printf(out, "\"} %llu\n", (unsigned long long)v);
    return rc;
}

static int backend_line(gw_buf *out, const char *name, const char *backend, const char *extra,
                        uint64_t v)
{
    int rc = gw_buf_printf(out, "%s{backend=\"", name);
    if (!rc)
        rc = label(out, backend);
    if (!rc)
        rc = gw_buf_printf(out, "\"%s} %llu\n", extra ? extra : "", (unsigned long long)v);
    return rc;
}

#define CHECK(x)            \
    do {                    \
        rc = (x);           \
        if (rc)             \
            goto out;       \
    } while (0)

static size_t slot_of(const gw_metrics_global *g, size_t b)
{
    size_t s = g->backend_slots ? g->backend_slots[b] : b;
    return s < GW_METRICS_MAX_BACKENDS ? s : 0;
}

int gw_metrics_render(gw_metrics *const *ms, size_t n, const gw_metrics_global *g,
                      gw_buf *out)
{
    int rc = 0;
    size_t cap = 0, count = 0;
    for (size_t w = 0; w < n; w++)
        cap += GW_METRICS_MAX_SERIES;
    merged *all = cap ? calloc(cap, sizeof *all) : NULL;
    if (cap && !all)
        return GW_ENOMEM;
    uint64_t started = 0, finished = 0;
    for (size_t w = 0; w < n; w++) {
        gw_metrics *m = ms[w];
        started += gw_counter_get(&m->calls_started);
        finished += gw_counter_get(&m->calls_finished);
        for (size_t i = 0; i < GW_METRICS_MAX_SERIES; i++) {
            gw_metrics_series *s = &m->series[i];
            if (!atomic_load_explicit(&s->used, memory_order_acquire))
                continue;
            merged *d = NULL;
            for (size_t j = 0; j < count && !d; j++)
                if (strcmp(all[j].protocol, s->protocol) == 0 &&
                    strcmp(all[j].method, s->method) == 0)
                    d = &all[j];
            if (!d) {
                d = &all[count++];
                d->protocol = s->protocol;
                d->method = s->method;
            }
            for (size_t c = 0; c < GW_METRICS_CODES; c++)
                d->codes[c] += gw_counter_get(&s->codes[c]);
            for (size_t b = 0; b < GW_METRICS_BUCKETS; b++)
                d->buckets[b] += gw_counter_get(&s->buckets[b]);
            d->count += gw_counter_get(&s->count);
            d->sum_us += gw_counter_get(&s->sum_us);
            d->request_bytes += gw_counter_get(&s->request_bytes);
            d->response_bytes += gw_counter_get(&s->response_bytes);
        }
    }
    if (count > 1)
        qsort(all, count, sizeof *all, cmp_merged);

    CHECK(gw_buf_append_str(out, "# HELP grpcgate_requests_total Calls finished, by protocol, "
                                 "method and gRPC status code.\n"
                                 "# TYPE grpcgate_requests_total counter\n"));
    for (size_t i = 0; i < count; i++)
        for (size_t c = 0; c < GW_METRICS_CODES; c++)
            if (all[i].codes[c])
                CHECK(series_line(out, "grpcgate_requests_total", &all[i], "code",
                                  gw_code_name((int)c), all[i].codes[c]));

    CHECK(gw_buf_append_str(out, "# HELP grpcgate_request_duration_seconds Time from the "
                                 "request head to the end of the call.\n"
                                 "# TYPE grpcgate_request_duration_seconds histogram\n"));
    for (size_t i = 0; i < count; i++) {
        uint64_t cum = 0;
        for (size_t b = 0; b < GW_METRICS_BUCKETS; b++) {
            char le[32];
            snprintf(le, sizeof le, "%g", gw_metrics_bucket_bounds[b]);
            cum += all[i].buckets[b];
            CHECK(series_line(out, "grpcgate_request_duration_seconds_bucket", &all[i], "le",
                              le, cum));
        }
        CHECK(series_line(out, "grpcgate_request_duration_seconds_bucket", &all[i], "le",
                          "+Inf", all[i].count));
        CHECK(gw_buf_append_str(out, "grpcgate_request_duration_seconds_sum{protocol=\""));
        CHECK(label(out, all[i].protocol));
        CHECK(gw_buf_append_str(out, "\",method=\""));
        CHECK(label(out, all[i].method));
        CHECK(gw_buf_printf(out, "\"} %llu.%06llu\n",
                            (unsigned long long)(all[i].sum_us / 1000000),
                            (unsigned long long)(all[i].sum_us % 1000000)));
        CHECK(series_line(out, "grpcgate_request_duration_seconds_count", &all[i], NULL, NULL,
                          all[i].count));
    }

    CHECK(gw_buf_append_str(out, "# HELP grpcgate_request_bytes_total Request body bytes "
                                 "received from clients.\n"
                                 "# TYPE grpcgate_request_bytes_total counter\n"));
    for (size_t i = 0; i < count; i++)
        CHECK(series_line(out, "grpcgate_request_bytes_total", &all[i], NULL, NULL,
                          all[i].request_bytes));
    CHECK(gw_buf_append_str(out, "# HELP grpcgate_response_bytes_total Response body bytes "
                                 "sent to clients.\n"
                                 "# TYPE grpcgate_response_bytes_total counter\n"));
    for (size_t i = 0; i < count; i++)
        CHECK(series_line(out, "grpcgate_response_bytes_total", &all[i], NULL, NULL,
                          all[i].response_bytes));

    CHECK(gw_buf_printf(out, "# HELP grpcgate_active_calls Calls in progress.\n"
                             "# TYPE grpcgate_active_calls gauge\n"
                             "grpcgate_active_calls %llu\n",
                        (unsigned long long)(started > finished ? started - finished : 0)));

    if (g->backend_count) {
        static const struct {
            const char *name, *help, *type, *extra;
            size_t off;
        } bm[] = {
            {"grpcgate_upstream_connections", "Upstream HTTP/2 connections by state.", "gauge",
             ",state=\"open\"", offsetof(gw_metrics_backend, connections_open)},
            {"grpcgate_upstream_connects_total", "Upstream connection attempts by result.",
             "counter", ",result=\"started\"", offsetof(gw_metrics_backend, connects_started)},
            {"grpcgate_upstream_connects_total", NULL, NULL, ",result=\"ok\"",
             offsetof(gw_metrics_backend, connects_ok)},
            {"grpcgate_upstream_queued_calls", "Calls waiting for an upstream stream slot.",
             "gauge", NULL, offsetof(gw_metrics_backend, queued_calls)},
            {"grpcgate_upstream_endpoints", "Endpoints per backend (per worker, summed) by "
             "health.", "gauge", ",state=\"total\"", offsetof(gw_metrics_backend, endpoints)},
            {"grpcgate_upstream_endpoints", NULL, NULL, ",state=\"healthy\"",
             offsetof(gw_metrics_backend, healthy_endpoints)},
            {"grpcgate_health_checks_total", "Active health checks and probes by result.",
             "counter", ",result=\"ok\"", offsetof(gw_metrics_backend, checks_ok)},
            {"grpcgate_health_checks_total", NULL, NULL, ",result=\"failed\"",
             offsetof(gw_metrics_backend, checks_failed)},
        };
        for (size_t k = 0; k < GW_ARRAY_LEN(bm); k++) {
            if (bm[k].help)
                CHECK(gw_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", bm[k].name, bm[k].help,
                                    bm[k].name, bm[k].type));
            for (size_t b = 0; b < g->backend_count && b < GW_METRICS_MAX_BACKENDS; b++) {
                uint64_t v = 0;
                for (size_t w = 0; w < n; w++) {
                    gw_counter *c = (gw_counter *)(void *)((char *)&ms[w]->backends[slot_of(
                                                               g, b)] + bm[k].off);
                    v += gw_counter_get(c);
                }
                CHECK(backend_line(out, bm[k].name, g->backend_names[b], bm[k].extra, v));
            }
        }
    }

    if (g->endpoint_names) {
        static const struct {
            const char *name, *help, *type;
            size_t off;
        } em[] = {
            {"grpcgate_upstream_endpoint_calls_total",
             "Calls started on a configured endpoint (all its addresses).", "counter",
             offsetof(gw_metrics_backend, ep_calls)},
            {"grpcgate_upstream_endpoint_up",
             "Workers in which the endpoint is up (takes calls).", "gauge",
             offsetof(gw_metrics_backend, ep_up)},
        };
        for (size_t k = 0; k < GW_ARRAY_LEN(em); k++) {
            CHECK(gw_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", em[k].name, em[k].help,
                                em[k].name, em[k].type));
            for (size_t b = 0; b < g->backend_count && b < GW_METRICS_MAX_BACKENDS; b++) {
                for (size_t j = 0; g->endpoint_names[b] && j < g->endpoint_counts[b] &&
                                   j < GW_METRICS_MAX_ENDPOINTS;
                     j++) {
                    uint64_t v = 0;
                    for (size_t w = 0; w < n; w++) {
                        gw_counter *c =
                            (gw_counter *)(void *)((char *)&ms[w]->backends[slot_of(g, b)] +
                                                   em[k].off) + j;
                        v += gw_counter_get(c);
                    }
                    CHECK(gw_buf_printf(out, "%s{backend=\"", em[k].name));
                    CHECK(label(out, g->backend_names[b]));
                    CHECK(gw_buf_append_str(out, "\",endpoint=\""));
                    CHECK(label(out, g->endpoint_names[b][j]));
                    CHECK(gw_buf_printf(out, "\"} %llu\n", (unsigned long long)v));
                }
            }
        }
    }

    CHECK(gw_buf_printf(out, "# HELP grpcgate_reloads_total Configuration reloads by result.\n"
                             "# TYPE grpcgate_reloads_total counter\n"
                             "grpcgate_reloads_total{result=\"ok\"} %llu\n"
                             "grpcgate_reloads_total{result=\"error\"} %llu\n"
                             "# HELP grpcgate_ready 1 when /readyz answers 200.\n"
                             "# TYPE grpcgate_ready gauge\n"
                             "grpcgate_ready %d\n"
                             "# HELP grpcgate_workers Worker threads.\n"
                             "# TYPE grpcgate_workers gauge\n"
                             "grpcgate_workers %zu\n",
                        (unsigned long long)g->reloads_ok, (unsigned long long)g->reloads_failed,
                        g->ready ? 1 : 0, g->workers));
out:
    free(all);
    return rc;
}
