/* The stage of call_harness.h. */
#include "call_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "oom.h"

/* ---- the client ---------------------------------------------------------------------- */

/* Records an answer; allocations the test makes for its records are not
 * the call's and are neither counted nor failed. */
static int take_answer(th_client *c, int status, const gw_front_header *h, size_t n,
                       const void *body, size_t len, bool streaming)
{
    if (c->answers) {
        c->extra_answers++;
        return GW_ESTATE;
    }
    /* The front copies the head and the body (an MHD response). */
    void *copy = malloc(len + 64);
    if (!copy) {
        c->refused++;
        return GW_ENOMEM;
    }
    free(copy);
    gw_oom_pause();
    c->answers++;
    c->status = status;
    c->streaming = streaming;
    for (size_t i = 0; i < n; i++)
        gw_buf_printf(&c->head, "%s: %s\n", h[i].name, h[i].value);
    if (len)
        gw_buf_append(&c->body, body, len);
    gw_oom_resume();
    return 0;
}

static const char *face_header(void *ctx, const char *name)
{
    th_client *c = ctx;
    for (size_t i = 0; i < c->nhdrs; i++)
        if (strcasecmp(c->hdrs[i].name, name) == 0)
            return c->hdrs[i].value;
    return NULL;
}

static void face_headers(void *ctx, bool (*fn)(void *, const char *, const char *), void *arg)
{
    th_client *c = ctx;
    for (size_t i = 0; i < c->nhdrs; i++)
        if (!fn(arg, c->hdrs[i].name, c->hdrs[i].value))
            return;
}

static int face_respond(void *ctx, int status, const gw_front_header *h, size_t n,
                        const void *body, size_t len)
{
    return take_answer(ctx, status, h, n, body, len, false);
}

static int face_respond_stream(void *ctx, int status, const gw_front_header *h, size_t n)
{
    return take_answer(ctx, status, h, n, NULL, 0, true);
}

/* Reads happen when the test says so (th_client_read), as after a wake. */
static void face_wake(void *ctx) { (void)ctx; }

static void face_close_now(void *ctx)
{
    th_client *c = ctx;
    c->close_nows++;
}

const gw_call_face th_face = {
    .header = face_header,
    .headers = face_headers,
    .respond = face_respond,
    .respond_stream = face_respond_stream,
    .wake = face_wake,
    .close_now = face_close_now,
};

const char *th_answer_header(const th_client *c, const char *name, char *buf, size_t cap)
{
    const char *p = (const char *)c->head.data;
    size_t nl = strlen(name);
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':' && p[nl + 1] == ' ') {
            size_t vl = (size_t)(eol - (p + nl + 2));
            if (vl >= cap)
                vl = cap - 1;
            memcpy(buf, p + nl + 2, vl);
            buf[vl] = 0;
            return buf;
        }
        p = eol + 1;
    }
    return NULL;
}

void th_client_read(th_client *c)
{
    uint8_t buf[4096];
    size_t max = c->read_max ? c->read_max : 1000;
    if (max > sizeof buf)
        max = sizeof buf;
    while (c->ops && c->streaming && !c->eof && !c->aborted && !c->gone && !c->close_nows) {
        long n = c->ops->read(c->owner, buf, max);
        if (n == GW_FRONT_EOF)
            c->eof = true;
        else if (n < 0)
            c->aborted = true;
        if (n <= 0)
            return;
        gw_oom_pause();
        gw_buf_append(&c->body, buf, (size_t)n);
        gw_oom_resume();
    }
}

void th_client_send(th_client *c, const uint8_t *body, size_t len)
{
    size_t off = 0;
    /* A call that takes nothing waits for room upstream: the backend reads
     * (on_writable); a bound keeps a stuck call from looping forever. */
    for (int stuck = 0; off < len && stuck < 1000;) {
        size_t took = c->ops->on_body(c->owner, body + off, len - off);
        off += took;
        if (took == 0) {
            th_backend_writable();
            stuck++;
        }
    }
    c->ops->on_body_end(c->owner);
    for (int stuck = 0; th_backend_live() && !th_up.send_closed && stuck < 1000; stuck++)
        th_backend_writable();
}

void th_client_gone(th_client *c)
{
    c->gone = true;
    c->ops->on_client_gone(c->owner);
}

void th_client_close(th_client *c)
{
    bool completed = !c->gone && c->answers && (!c->streaming || c->eof);
    c->ops->on_close(c->owner, completed);
}

void th_client_free(th_client *c)
{
    gw_buf_free(&c->head);
    gw_buf_free(&c->body);
}

/* ---- gw_front_req_*: a th_client stands in for the request -------------------------- */

#define CLIENT(r) ((th_client *)(void *)(r))

int __wrap_gw_front_req_respond(gw_front_req *r, int status, const gw_front_header *h,
                                size_t n, const void *body, size_t len);
int __wrap_gw_front_req_respond_stream(gw_front_req *r, int status, const gw_front_header *h,
                                       size_t n);
void __wrap_gw_front_req_wake(gw_front_req *r);
void __wrap_gw_front_req_close_now(gw_front_req *r);
void __wrap_gw_front_req_attach(gw_front_req *r, const gw_front_req_ops *ops, void *owner);
gw_loop *__wrap_gw_front_req_loop(const gw_front_req *r);
const char *__wrap_gw_front_req_header(const gw_front_req *r, const char *name);
void __wrap_gw_front_req_headers(const gw_front_req *r,
                                 bool (*fn)(void *ctx, const char *name, const char *value),
                                 void *ctx);
void __wrap_gw_front_req_peer(const gw_front_req *r, char *buf, size_t cap);
const char *__wrap_gw_front_req_method(const gw_front_req *r);
const char *__wrap_gw_front_req_target(const gw_front_req *r);
const char *__wrap_gw_front_req_path(const gw_front_req *r);
long long __wrap_gw_front_req_content_length(const gw_front_req *r);

int __wrap_gw_front_req_respond(gw_front_req *r, int status, const gw_front_header *h,
                                size_t n, const void *body, size_t len)
{
    return take_answer(CLIENT(r), status, h, n, body, len, false);
}

int __wrap_gw_front_req_respond_stream(gw_front_req *r, int status, const gw_front_header *h,
                                       size_t n)
{
    return take_answer(CLIENT(r), status, h, n, NULL, 0, true);
}

void __wrap_gw_front_req_wake(gw_front_req *r) { (void)r; }
void __wrap_gw_front_req_close_now(gw_front_req *r) { CLIENT(r)->close_nows++; }

void __wrap_gw_front_req_attach(gw_front_req *r, const gw_front_req_ops *ops, void *owner)
{
    CLIENT(r)->ops = ops;
    CLIENT(r)->owner = owner;
}

gw_loop *__wrap_gw_front_req_loop(const gw_front_req *r) { return CLIENT(r)->loop; }

const char *__wrap_gw_front_req_header(const gw_front_req *r, const char *name)
{
    return face_header(CLIENT(r), name);
}

void __wrap_gw_front_req_headers(const gw_front_req *r,
                                 bool (*fn)(void *ctx, const char *name, const char *value),
                                 void *ctx)
{
    face_headers(CLIENT(r), fn, ctx);
}

void __wrap_gw_front_req_peer(const gw_front_req *r, char *buf, size_t cap)
{
    (void)r;
    snprintf(buf, cap, "127.0.0.1");
}

const char *__wrap_gw_front_req_method(const gw_front_req *r) { return CLIENT(r)->method; }
const char *__wrap_gw_front_req_target(const gw_front_req *r) { return CLIENT(r)->target; }
const char *__wrap_gw_front_req_path(const gw_front_req *r) { return CLIENT(r)->path; }

long long __wrap_gw_front_req_content_length(const gw_front_req *r)
{
    (void)r;
    return -1;
}

/* ---- the backend --------------------------------------------------------------------- */

typedef struct th_ucall {
    const gw_ucall_handlers *h;
    void *owner;
} th_ucall;

th_upstream th_up;
static th_ucall *live; /* the one upstream call, NULL when gone */

void th_upstream_reset(void)
{
    gw_buf_free(&th_up.sent);
    memset(&th_up, 0, sizeof th_up);
    gw_buf_init(&th_up.sent, 0);
    live = NULL;
}

int th_upstream_start(void *ctx, const gw_method_def *m, const gw_ucall_params *p,
                      const gw_ucall_handlers *h, void *owner, gw_ucall **out, gw_error *e)
{
    (void)ctx;
    (void)m;
    (void)p;
    th_ucall *u = malloc(sizeof *u); /* gw_ucall_start allocates its call */
    if (!u)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    u->h = h;
    u->owner = owner;
    live = u;
    th_up.starts++;
    *out = (gw_ucall *)(void *)u;
    return 0;
}

bool th_backend_live(void) { return live != NULL; }

static bool is_live(const gw_ucall *c)
{
    if (c && (const th_ucall *)(const void *)c == live)
        return true;
    th_up.misuse++;
    return false;
}

long __wrap_gw_ucall_write(gw_ucall *c, const uint8_t *data, size_t len);
void __wrap_gw_ucall_close_send(gw_ucall *c);
void __wrap_gw_ucall_consume(gw_ucall *c, size_t wire_len);
void __wrap_gw_ucall_cancel(gw_ucall *c);
const char *__wrap_gw_ucall_endpoint(const gw_ucall *c);
int __wrap_gw_ucall_start(gw_backend *b, const gw_ucall_params *params,
                          const gw_ucall_handlers *handlers, void *owner, gw_ucall **out,
                          gw_error *e);

long __wrap_gw_ucall_write(gw_ucall *c, const uint8_t *data, size_t len)
{
    if (!is_live(c) || th_up.send_closed)
        return GW_ESTATE;
    size_t take = th_up.write_cap && len > th_up.write_cap ? th_up.write_cap : len;
    gw_oom_pause();
    gw_buf_append(&th_up.sent, data, take);
    gw_oom_resume();
    return (long)take;
}

void __wrap_gw_ucall_close_send(gw_ucall *c)
{
    if (is_live(c))
        th_up.send_closed = true;
}

void __wrap_gw_ucall_consume(gw_ucall *c, size_t wire_len)
{
    if (is_live(c))
        th_up.consumed += wire_len;
}

void __wrap_gw_ucall_cancel(gw_ucall *c)
{
    if (!is_live(c))
        return;
    th_up.cancels++;
    free(live);
    live = NULL;
}

const char *__wrap_gw_ucall_endpoint(const gw_ucall *c)
{
    return is_live(c) ? "http://backend.test" : NULL;
}

/* Every call goes through th_upstream_start. */
int __wrap_gw_ucall_start(gw_backend *b, const gw_ucall_params *params,
                          const gw_ucall_handlers *handlers, void *owner, gw_ucall **out,
                          gw_error *e)
{
    (void)b;
    (void)params;
    (void)handlers;
    (void)owner;
    (void)out;
    th_up.misuse++;
    return gw_error_set(e, GW_ESTATE, "gw_ucall_start called");
}

void th_backend_headers(const gw_header *md, size_t n)
{
    if (live)
        live->h->on_headers(live->owner, md, n);
}

void th_backend_message(const uint8_t *msg, size_t len)
{
    if (!live)
        return;
    th_up.delivered += len + 5;
    live->h->on_message(live->owner, msg, len, len + 5);
}

void th_backend_writable(void)
{
    if (live)
        live->h->on_writable(live->owner);
}

void th_backend_complete(const gw_call_status *st)
{
    if (!live)
        return;
    th_ucall *u = live;
    th_up.completes++;
    u->h->on_complete(u->owner, st);
    /* After on_complete returns, the handle is gone. */
    if (live == u) {
        live = NULL;
        free(u);
    }
}
