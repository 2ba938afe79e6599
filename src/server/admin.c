/*
 * The operational endpoints (/healthz, /readyz, /metrics, the OpenAPI
 * document, POST /admin/reload) and the optional separate admin listener.
 * See ops.h and docs/operations.md.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/ops.h"

/* A scrape of many methods is large but bounded. */
#define METRICS_MAX (16u << 20)

gw_blob *gw_blob_new(const void *data, size_t len)
{
    gw_blob *b = malloc(sizeof *b + len + 1);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = len;
    if (len)
        memcpy(b->data, data, len);
    b->data[len] = 0;
    return b;
}

void gw_blob_ref(gw_blob *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void gw_blob_unref(gw_blob *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}

static void spin_lock(atomic_flag *f)
{
    while (atomic_flag_test_and_set_explicit(f, memory_order_acquire))
        ;
}

gw_ops_site *gw_ops_site_get(gw_ops *o)
{
    spin_lock(&o->site_lock);
    gw_ops_site *s = atomic_load_explicit(&o->site, memory_order_relaxed);
    if (s)
        s->ref(s->owner);
    atomic_flag_clear_explicit(&o->site_lock, memory_order_release);
    return s;
}

void gw_ops_site_put(gw_ops_site *s)
{
    if (s)
        s->unref(s->owner);
}

void gw_ops_site_set(gw_ops *o, gw_ops_site *s)
{
    spin_lock(&o->site_lock);
    gw_ops_site *old = atomic_exchange_explicit(&o->site, s, memory_order_relaxed);
    atomic_flag_clear_explicit(&o->site_lock, memory_order_release);
    gw_ops_site_put(old);
}

gw_ops_backends *gw_ops_backends_get(gw_ops *o)
{
    spin_lock(&o->backends_lock);
    gw_ops_backends *b = atomic_load_explicit(&o->backends, memory_order_relaxed);
    if (b)
        b->ref(b->owner);
    atomic_flag_clear_explicit(&o->backends_lock, memory_order_release);
    return b;
}

void gw_ops_backends_put(gw_ops_backends *b)
{
    if (b)
        b->unref(b->owner);
}

void gw_ops_backends_set(gw_ops *o, gw_ops_backends *b)
{
    spin_lock(&o->backends_lock);
    gw_ops_backends *old = atomic_exchange_explicit(&o->backends, b, memory_order_relaxed);
    atomic_flag_clear_explicit(&o->backends_lock, memory_order_release);
    gw_ops_backends_put(old);
}

bool gw_ops_ready(gw_ops *o)
{
    if (atomic_load(&o->draining) || !atomic_load(&o->loaded))
        return false;
    /* Every backend needs a healthy endpoint in every worker: each worker
     * has its own connections, and one whose backend is down fails the
     * calls the kernel hands it. Before the first sample, not ready. Strict
     * (the default): healthy = has connected and is not failing; else not
     * known to be down (the behaviour before readiness waited). */
    gw_ops_backends *bs = gw_ops_backends_get(o);
    bool strict = atomic_load(&o->ready_needs_connection);
    bool ready = true;
    for (size_t w = 0; ready && w < o->workers; w++) {
        gw_metrics *m = o->metrics[w];
        if (!atomic_load_explicit(&m->sampled, memory_order_acquire))
            ready = false;
        for (size_t b = 0; ready && bs && b < bs->count; b++)
            if (gw_counter_get(strict ? &m->backends[bs->slots[b]].ready_endpoints
                                      : &m->backends[bs->slots[b]].healthy_endpoints) == 0)
                ready = false;
    }
    gw_ops_backends_put(bs);
    return ready;
}

static void answer(gw_front_req *r, int status, const char *type, const void *body, size_t n)
{
    gw_front_header h[] = {{"Content-Type", type}, {"Cache-Control", "no-store"}};
    bool head = strcmp(gw_front_req_method(r), "HEAD") == 0;
    gw_front_req_respond(r, status, h, GW_ARRAY_LEN(h), head ? "" : body, head ? 0 : n);
}

static void text(gw_front_req *r, int status, const char *msg)
{
    answer(r, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

static void metrics(gw_ops *o, gw_front_req *r)
{
    gw_buf b;
    gw_buf_init(&b, METRICS_MAX);
    gw_ops_backends *bs = gw_ops_backends_get(o);
    gw_metrics_global g = {.backend_names = bs ? bs->names : NULL,
                           .backend_count = bs ? bs->count : 0,
                           .endpoint_names = bs ? bs->endpoint_names : NULL,
                           .endpoint_counts = bs ? bs->endpoint_counts : NULL,
                           .backend_slots = bs ? bs->slots : NULL,
                           .reloads_ok = gw_counter_get(&o->reloads_ok),
                           .reloads_failed = gw_counter_get(&o->reloads_failed),
                           .ready = gw_ops_ready(o),
                           .workers = o->workers};
    int rc = gw_metrics_render(o->metrics, o->workers, &g, &b);
    gw_ops_backends_put(bs);
    if (rc)
        text(r, 500, rc == GW_ENOMEM ? "out of memory\n" : "metrics too large\n");
    else
        answer(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    gw_buf_free(&b);
}

/* path with the prefix removed, or NULL if it is not under the prefix. */
static const char *strip_prefix(const char *prefix, const char *path)
{
    size_t n = strlen(prefix);
    if (n && (strncmp(path, prefix, n) != 0 || path[n] != '/'))
        return NULL;
    return path + n;
}

/* A known endpoint asked with another method: 405 naming the right ones. */
static void wrong_method(gw_front_req *r, const char *allow)
{
    gw_front_header h[] = {{"Content-Type", "text/plain; charset=utf-8"},
                           {"Cache-Control", "no-store"},
                           {"Allow", allow}};
    static const char msg[] = "method not allowed\n";
    bool head = strcmp(gw_front_req_method(r), "HEAD") == 0;
    gw_front_req_respond(r, 405, h, GW_ARRAY_LEN(h), head ? "" : msg, head ? 0 : sizeof msg - 1);
}

bool gw_ops_handle(gw_ops *o, const gw_ops_site *site, gw_front_req *r, bool admin_listener)
{
    if (!site) {
        if (admin_listener)
            text(r, 503, "not ready\n");
        return admin_listener;
    }
    if (!admin_listener && !site->on_main_port && !site->openapi_path)
        return false;
    const char *method = gw_front_req_method(r);
    const char *path = gw_front_req_path(r);
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

    /* The document is a main-port resource: the admin listener has only
     * the operational endpoints. Another method falls through to REST
     * (its JSON 404/405), as for any path no endpoint has. */
    if (!admin_listener && site->openapi_path && strcmp(path, site->openapi_path) == 0) {
        if (!get)
            return false;
        if (site->openapi)
            answer(r, 200, "application/json", site->openapi->data, site->openapi->len);
        else
            text(r, 503, "no OpenAPI document: no schema loaded\n");
        return true;
    }
    if (!admin_listener && !site->on_main_port)
        return false;
    const char *p = strip_prefix(admin_listener ? "" : site->prefix, path);
    if (!p)
        return false;
    if (strcmp(p, "/admin/reload") == 0 && site->reload_endpoint) {
        if (strcmp(method, "POST") != 0) {
            wrong_method(r, "POST");
            return true;
        }
        if (!o->request_reload) {
            text(r, 503, "reload is not available\n");
            return true;
        }
        o->request_reload(o->reload_ctx);
        /* Asynchronous: the outcome is in the log and in grpcgate_reloads_total. */
        text(r, 202, "reload requested\n");
        return true;
    }
    bool known = strcmp(p, "/healthz") == 0 || strcmp(p, "/readyz") == 0 ||
                 (strcmp(p, "/metrics") == 0 && site->metrics_enabled);
    if (!known) {
        if (admin_listener)
            text(r, 404, "not found\n");
        return admin_listener;
    }
    if (!get) {
        /* On the main port another method goes on to REST, as before. */
        if (admin_listener)
            wrong_method(r, "GET, HEAD");
        return admin_listener;
    }
    if (strcmp(p, "/healthz") == 0)
        text(r, 200, "ok\n");
    else if (strcmp(p, "/readyz") == 0 && gw_ops_ready(o))
        text(r, 200, "ready\n");
    else if (strcmp(p, "/readyz") == 0)
        text(r, 503, atomic_load(&o->draining) ? "draining\n" : "not ready\n");
    else
        metrics(o, r);
    return true;
}

/* ---- the admin listener ------------------------------------------------------------ */

struct gw_admin {
    gw_ops *ops;
    gw_loop *loop;
    gw_front *front;
    pthread_t thread;
    bool started;
    atomic_bool stop;
};

static void admin_request(void *owner, gw_front_req *r)
{
    gw_admin *a = owner;
    gw_ops_site *site = gw_ops_site_get(a->ops);
    gw_ops_handle(a->ops, site, r, true);
    gw_ops_site_put(site);
}

static const gw_front_handler admin_handler = {.on_request = admin_request};

static void admin_wakeup(void *owner)
{
    gw_admin *a = owner;
    if (atomic_load(&a->stop))
        gw_loop_stop(a->loop);
}

static void *admin_main(void *arg)
{
    gw_admin *a = arg;
    if (gw_loop_run(a->loop) != 0)
        GW_ERROR("admin listener: event loop failed");
    return NULL;
}

static int parse_listen(const char *listen, char *host, size_t cap, uint16_t *port,
                        gw_error *e)
{
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    char *end = NULL;
    errno = 0;
    unsigned long p = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (!colon || errno || *end || colon[1] == 0 || p > 65535 || hl == 0 || hl >= cap)
        return gw_error_set(e, GW_EINVAL, "admin.listen '%s': expected HOST:PORT", listen);
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (uint16_t)p;
    return 0;
}

int gw_admin_start(gw_ops *o, const char *listen, gw_admin **out, gw_error *e)
{
    *out = NULL;
    char host[64];
    uint16_t port = 0;
    int rc = parse_listen(listen, host, sizeof host, &port, e);
    if (rc)
        return rc;
    gw_admin *a = calloc(1, sizeof *a);
    if (!a)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    a->ops = o;
    atomic_init(&a->stop, false);
    a->loop = gw_loop_new();
    if (!a->loop) {
        rc = gw_error_set(e, GW_EIO, "cannot create an event loop: %s", strerror(errno));
        goto out;
    }
    gw_loop_set_wakeup_cb(a->loop, admin_wakeup, a);
    gw_front_options fo;
    gw_front_options_init(&fo);
    fo.host = host;
    fo.port = port;
    fo.connection_limit = 64;
    rc = gw_front_new(a->loop, &fo, &admin_handler, a, &a->front, e);
    if (rc) {
        gw_error_prefix(e, "admin listener");
        goto out;
    }
    if (pthread_create(&a->thread, NULL, admin_main, a) != 0) {
        rc = gw_error_set(e, GW_EIO, "cannot start the admin thread");
        goto out;
    }
    a->started = true;
    *out = a;
    return 0;
out:
    gw_admin_stop(a);
    return rc;
}

uint16_t gw_admin_port(const gw_admin *a)
{
    return gw_front_port(a->front);
}

void gw_admin_stop(gw_admin *a)
{
    if (!a)
        return;
    if (a->started) {
        atomic_store(&a->stop, true);
        gw_loop_wakeup(a->loop);
        pthread_join(a->thread, NULL);
    }
    if (a->front)
        gw_front_del(a->front);
    if (a->loop)
        gw_loop_del(a->loop);
    free(a);
}
