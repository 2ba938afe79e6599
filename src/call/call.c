/* One proxied RPC. See call.h and docs/architecture-call.md. */
#include "call/call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A message queued for the client: its bytes still in `out` and the wire
 * bytes to acknowledge upstream once they are gone. */
typedef struct out_mark {
    size_t bytes_left;
    size_t wire_len;
} out_mark;

struct gw_call {
    gw_arena arena;
    const gw_call_options *o;
    gw_call_cors cors;
    const gw_method_def *method;
    const gw_call_adapter *a;
    void *astate;
    gw_front_req *r;            /* NULL for a face */
    const gw_call_face *face;   /* NULL for a front request */
    void *face_ctx;
    gw_loop *loop;
    gw_ucall *uc;               /* NULL once complete or cancelled */
    gw_header *md;
    size_t md_count, md_cap;
    gw_timer deadline;
    uint64_t deadline_ns;       /* meaningful only with has_deadline */
    bool has_deadline;
    bool adapter_timeout;       /* gw_call_set_timeout was called */
    uint64_t adapter_timeout_ns;
    size_t body_bytes;
    size_t max_body;            /* gw_call_body_limit for the envelope */
    gw_buf pending;             /* request bytes the upstream did not take yet */
    gw_buf out;                 /* response body bytes for the client */
    size_t out_off;             /* first byte of `out` not yet taken */
    out_mark *marks;            /* FIFO [mark_head, mark_count) */
    size_t mark_head, mark_count, mark_cap;
    bool body_ended;
    bool send_closed;
    bool head_sent;
    bool unary;                 /* one response message: answered whole */
    bool unary_taken;           /* unary: its message was consumed at delivery */
    gw_call_head held_head;     /* unary: the head, kept until the status */
    bool head_held;
    bool finished;              /* final status handled: body ends after `out` */
    char endpoint[256];         /* where the upstream call went (access log) */
    bool client_gone;
    bool flush_off;             /* gw_call_flush_off: ignore a->response_flush */
    bool end_abnormally;        /* gw_call_end_abnormally: no end of body */
    /* for gw_call_options.observe */
    int http_status;
    int final_code;
    size_t resp_bytes;
    uint64_t start_ns;
};

void gw_call_options_init(gw_call_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_body = 4u << 20;
    o->max_message = 4u << 20;
    o->max_output = 1u << 20;
    o->max_deadline_ms = 3600000;
    o->max_metadata = 64;
}

size_t gw_call_envelope_len(size_t n, gw_call_envelope env)
{
    switch (env) {
    case GW_CALL_ENVELOPE_FRAMED:
        return n > SIZE_MAX - 5 ? SIZE_MAX : n + 5;
    case GW_CALL_ENVELOPE_BASE64:
        return n / 3 >= SIZE_MAX / 4 - 1 ? SIZE_MAX : (n + 2) / 3 * 4;
    case GW_CALL_ENVELOPE_JSON:
        if (n / 3 >= (SIZE_MAX - GW_CALL_JSON_ENVELOPE_SLACK) / 4 - 1)
            return SIZE_MAX;
        return (n + 2) / 3 * 4 + GW_CALL_JSON_ENVELOPE_SLACK;
    }
    return n;
}

size_t gw_call_body_limit(const gw_call_options *o, size_t one)
{
    return o->max_body > one ? o->max_body : one;
}

void gw_call_set_envelope(gw_call *c, size_t one)
{
    c->max_body = gw_call_body_limit(c->o, one);
    c->pending.max = c->max_body > SIZE_MAX - 64 ? 0 : c->max_body + 64;
}

void *gw_call_adapter_state(gw_call *c) { return c->astate; }
gw_arena *gw_call_arena(gw_call *c) { return &c->arena; }
const gw_call_options *gw_call_opts(const gw_call *c) { return c->o; }
const gw_method_def *gw_call_method(const gw_call *c) { return c->method; }
gw_call_head *gw_call_held_head(gw_call *c) { return c->head_held ? &c->held_head : NULL; }
void gw_call_flush_off(gw_call *c) { c->flush_off = true; }
void gw_call_set_timeout(gw_call *c, uint64_t timeout_ns)
{
    c->adapter_timeout = true;
    c->adapter_timeout_ns = timeout_ns;
}
void gw_call_end_abnormally(gw_call *c) { c->end_abnormally = true; }
void gw_call_status_lost(gw_call *c, gw_call_head *head)
{
    gw_call_head *held = head ? head : gw_call_held_head(c);
    if (held)
        held->status = 0;
    else
        gw_call_end_abnormally(c);
}

static bool flushes(const gw_call *c) { return c->a->response_flush && !c->flush_off; }

/* ---- the client side: a front request or a face ---------------------------------- */

static int client_respond(gw_call *c, int status, const gw_front_header *h, size_t n,
                          const void *body, size_t len)
{
    return c->face ? c->face->respond(c->face_ctx, status, h, n, body, len)
                   : gw_front_req_respond(c->r, status, h, n, body, len);
}

static int client_respond_stream(gw_call *c, int status, const gw_front_header *h, size_t n)
{
    return c->face ? c->face->respond_stream(c->face_ctx, status, h, n)
                   : gw_front_req_respond_stream(c->r, status, h, n);
}

static void client_wake(gw_call *c)
{
    if (c->face)
        c->face->wake(c->face_ctx);
    else
        gw_front_req_wake(c->r);
}

static void client_close_now(gw_call *c)
{
    if (c->face)
        c->face->close_now(c->face_ctx);
    else
        gw_front_req_close_now(c->r);
}

const char *gw_call_header(gw_call *c, const char *name)
{
    return c->face ? c->face->header(c->face_ctx, name) : gw_front_req_header(c->r, name);
}

bool gw_call_finished(const gw_call *c) { return c->finished; }

int gw_call_code_for_err(int err)
{
    switch (err) {
    case GW_ELIMIT:
    case GW_ENOMEM:
        return GW_CODE_RESOURCE_EXHAUSTED;
    case GW_EPARSE:
    case GW_EINVAL:
    case GW_ERANGE:
    case GW_EDEPTH:
        return GW_CODE_INVALID_ARGUMENT;
    case GW_ENOTFOUND:
        return GW_CODE_UNIMPLEMENTED;
    default:
        return GW_CODE_INTERNAL;
    }
}

int gw_call_answer_err(int codec_err)
{
    return codec_err == GW_ENOMEM ? GW_ENOMEM : GW_EIO;
}

int gw_call_head_add(gw_call *c, gw_call_head *h, const char *name, size_t name_len,
                     const char *value, size_t value_len)
{
    if (h->count == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        gw_front_header *n = gw_arena_alloc(&c->arena, cap * sizeof *n);
        if (!n)
            return GW_ENOMEM;
        if (h->count)
            memcpy(n, h->headers, h->count * sizeof *n);
        h->headers = n;
        h->cap = cap;
    }
    char *nm = gw_arena_strndup(&c->arena, name, name_len);
    char *v = gw_arena_strndup(&c->arena, value, value_len);
    if (!nm || !v)
        return GW_ENOMEM;
    h->headers[h->count].name = nm;
    h->headers[h->count].value = v;
    h->count++;
    return 0;
}

int gw_call_add_metadata(gw_call *c, const char *name, const char *value)
{
    if (c->md_count >= c->o->max_metadata)
        return GW_ELIMIT;
    if (c->md_count == c->md_cap) {
        size_t cap = c->md_cap ? c->md_cap * 2 : 8;
        gw_header *n = gw_arena_alloc(&c->arena, cap * sizeof *n);
        if (!n)
            return GW_ENOMEM;
        if (c->md_count)
            memcpy(n, c->md, c->md_count * sizeof *n);
        c->md = n;
        c->md_cap = cap;
    }
    size_t nl = strlen(name), vl = strlen(value);
    char *nm = gw_arena_strndup(&c->arena, name, nl);
    char *v = gw_arena_strndup(&c->arena, value, vl);
    if (!nm || !v)
        return GW_ENOMEM;
    for (size_t i = 0; i < nl; i++)
        if (nm[i] >= 'A' && nm[i] <= 'Z')
            nm[i] = (char)(nm[i] + ('a' - 'A'));
    c->md[c->md_count++] = (gw_header){nm, nl, v, vl};
    return 0;
}

/* ---- CORS on every response head ----------------------------------------------- */

/* All or nothing: a head gets every CORS header with the whole list of
 * exposed headers, or none (a browser that cannot read grpc-status or a
 * configured header is worse off than one told nothing). Returns 0 or
 * GW_ENOMEM, with h as it was. */
static int add_cors(gw_call *c, gw_call_head *h)
{
    if (!c->cors.allow_origin)
        return 0;
    gw_buf expose;
    gw_buf_init(&expose, 8192);
    int rc = gw_buf_append_str(&expose, "grpc-status, grpc-message, grpc-status-details-bin");
    size_t n = h->count;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *nm = h->headers[i].name;
        if (strcasecmp(nm, "content-type") == 0 || strncasecmp(nm, "grpc-", 5) == 0 ||
            strncasecmp(nm, "access-control-", 15) == 0)
            continue;
        rc = gw_buf_printf(&expose, ", %s", nm);
        if (rc == GW_ELIMIT) {
            /* Names past 8 KiB are left unexposed, as before any answer. */
            rc = 0;
            break;
        }
    }
    if (rc == 0 && c->cors.expose_extra && *c->cors.expose_extra)
        rc = gw_buf_printf(&expose, ", %s", c->cors.expose_extra);
    const char *o = c->cors.allow_origin;
    if (rc == 0)
        rc = gw_call_head_add(c, h, "Access-Control-Allow-Origin", 27, o, strlen(o));
    if (rc == 0 && strcmp(o, "*") != 0)
        rc = gw_call_head_add(c, h, "Vary", 4, "Origin", 6);
    if (rc == 0 && c->cors.credentials)
        rc = gw_call_head_add(c, h, "Access-Control-Allow-Credentials", 32, "true", 4);
    if (rc == 0)
        rc = gw_call_head_add(c, h, "Access-Control-Expose-Headers", 29,
                              (const char *)expose.data, expose.len);
    gw_buf_free(&expose);
    if (rc) {
        h->count = n;
        return GW_ENOMEM;
    }
    return 0;
}

/* ---- the end of a call --------------------------------------------------------------- */

static void ack(gw_call *c, size_t used);

/*
 * Gives the client its answer, whatever happens: when the front refuses the
 * head (out of memory), a minimal one (status, Content-Type, grpc-status 13)
 * with no body; when even that fails, the connection is closed. A request
 * is never left suspended without an answer or a close.
 */
static void answer(gw_call *c, const gw_call_head *h, const void *body, size_t len)
{
    c->head_sent = true;
    c->http_status = h->status;
    /* status 0: the adapter could not build the head (out of memory). */
    if (h->status && client_respond(c, h->status, h->headers, h->count, body, len) == 0) {
        c->resp_bytes += len;
        return;
    }
    GW_WARN("call %s: cannot answer the client; answering INTERNAL",
            c->method ? c->method->path : "?");
    bool grpc = c->a == &gw_call_grpcweb || c->a == &gw_call_grpcws;
    const char *ct = grpc ? "application/grpc-web+proto" : "text/plain";
    for (size_t i = 0; i < h->count; i++)
        if (strcasecmp(h->headers[i].name, "Content-Type") == 0)
            ct = h->headers[i].value;
    gw_front_header mini[] = {{"Content-Type", ct}, {"grpc-status", "13"}};
    int status = grpc ? 200 : 500;
    c->http_status = status;
    c->final_code = GW_CODE_INTERNAL;
    if (client_respond(c, status, mini, GW_ARRAY_LEN(mini), NULL, 0) != 0) {
        c->http_status = 0;
        client_close_now(c);
    }
    client_wake(c);
}

/*
 * A unary answer goes out in one piece with a Content-Length: the head kept
 * from on_headers, the message and the end of the body. libmicrohttpd then
 * writes headers and body with one send instead of four chunked writes, and
 * the connection is resumed once instead of once per part.
 */
static void respond_whole(gw_call *c, const gw_call_status *st)
{
    c->out.max = 0;
    c->a->response_status(c, st, NULL, &c->out);
    gw_buf body;
    gw_buf_init(&body, 0);
    const uint8_t *data = c->out.data + c->out_off;
    size_t n = c->out.len - c->out_off;
    if (flushes(c) && n) {
        /* Text mode: the same per-flush encoding, over the whole body. */
        size_t cap = n / 3 * 4 + 8;
        if (gw_buf_reserve(&body, cap) != 0) {
            gw_buf_free(&body);
            ack(c, c->out.len - c->out_off);
            /* Out of memory: straight to the minimal answer (status 0),
             * with the held head's Content-Type. */
            gw_call_head mini = c->held_head;
            mini.status = 0;
            answer(c, &mini, NULL, 0);
            return;
        }
        size_t used = 0;
        body.len = c->a->response_flush(c, data, n, body.data, cap, &used);
        data = body.data;
        n = body.len;
    }
    ack(c, c->out.len - c->out_off);
    /* Out of memory leaves the CORS headers out: better than no answer. */
    (void)add_cors(c, &c->held_head);
    answer(c, &c->held_head, data, n);
    gw_buf_free(&body);
}

static void finish(gw_call *c, const gw_call_status *st)
{
    if (c->finished)
        return;
    c->finished = true;
    c->final_code = st->code;
    gw_loop_timer_stop(c->loop, &c->deadline);
    if (c->client_gone)
        return;
    if (c->head_held) {
        respond_whole(c, st);
        client_wake(c);
        return;
    }
    if (!c->head_sent) {
        gw_call_head head = {0};
        gw_buf body;
        gw_buf_init(&body, 0);
        c->a->response_status(c, st, &head, &body);
        /* Without the CORS headers a browser cannot read the answer, but
         * it still ends the call: better than none. */
        (void)add_cors(c, &head);
        answer(c, &head, body.data, body.len);
        gw_buf_free(&body);
        client_wake(c);
        return;
    }
    /* The trailer is bounded by the upstream's header limit: let it past
     * the output maximum rather than lose the status. */
    c->out.max = 0;
    c->a->response_status(c, st, NULL, &c->out);
    client_wake(c);
}

static void fail(gw_call *c, int code, const char *message)
{
    if (c->uc) {
        gw_ucall_cancel(c->uc);
        c->uc = NULL;
    }
    gw_call_status st = {.code = code, .message = message ? message : "",
                         .trailers_only = !c->head_sent};
    finish(c, &st);
}

static void fail_err(gw_call *c, int err, const gw_error *e)
{
    fail(c, gw_call_code_for_err(err), e->msg[0] ? e->msg : gw_err_str(err));
}

static void on_deadline(void *owner)
{
    gw_call *c = owner;
    fail(c, GW_CODE_DEADLINE_EXCEEDED, "deadline exceeded");
}

/* ---- request side ------------------------------------------------------------------- */

static void flush_pending(gw_call *c)
{
    while (c->pending.len && c->uc) {
        long took = gw_ucall_write(c->uc, c->pending.data, c->pending.len);
        if (took < 0) {
            fail(c, GW_CODE_INTERNAL, "upstream refused request bytes");
            return;
        }
        if (took == 0)
            break;
        gw_buf_consume(&c->pending, (size_t)took);
    }
    if (c->pending.len || !c->uc)
        return;
    if (c->body_ended && !c->send_closed) {
        c->send_closed = true;
        gw_ucall_close_send(c->uc);
    }
    client_wake(c);
}

static size_t on_body(void *owner, const uint8_t *data, size_t n)
{
    gw_call *c = owner;
    if (c->finished || !c->uc)
        return n;
    if (c->pending.len) {
        flush_pending(c);
        if (c->pending.len)
            return 0; /* the front suspends until on_writable */
        if (c->finished || !c->uc)
            return n;
    }
    c->body_bytes += n;
    /* A face's stream (a WebSocket) is bounded per message, not in total:
     * a bidi call may carry any number of them. */
    if (!c->face && c->body_bytes > c->max_body) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body exceeds the limit of %zu bytes",
                 c->max_body);
        fail(c, GW_CODE_RESOURCE_EXHAUSTED, msg);
        return n;
    }
    gw_error e;
    gw_error_clear(&e);
    bool direct = false;
    int rc = c->a->request_body(c, data, n, &c->pending, &direct, &e);
    if (rc) {
        fail_err(c, rc, &e);
        return n;
    }
    if (direct) {
        long took = gw_ucall_write(c->uc, data, n);
        if (took < 0) {
            fail(c, GW_CODE_INTERNAL, "upstream refused request bytes");
            return n;
        }
        /* Copy only what the upstream could not take now. */
        if ((size_t)took < n && gw_buf_append(&c->pending, data + took, n - (size_t)took)) {
            fail(c, GW_CODE_RESOURCE_EXHAUSTED, "out of memory buffering the request");
            return n;
        }
        return n;
    }
    flush_pending(c);
    return n;
}

static void on_body_end(void *owner)
{
    gw_call *c = owner;
    if (c->finished || !c->uc || c->body_ended)
        return;
    gw_error e;
    gw_error_clear(&e);
    int rc = c->a->request_end(c, &c->pending, &e);
    if (rc) {
        fail_err(c, rc, &e);
        return;
    }
    c->body_ended = true;
    flush_pending(c);
}

static void on_writable(void *owner) { flush_pending(owner); }

/* ---- response side ------------------------------------------------------------------ */

static void on_headers(void *owner, const gw_header *md, size_t n)
{
    gw_call *c = owner;
    if (c->finished)
        return;
    gw_call_head head = {0};
    gw_error e;
    gw_error_clear(&e);
    int rc = c->a->response_head(c, md, n, &head, &e);
    if (rc) {
        fail_err(c, rc, &e);
        return;
    }
    if (c->unary || (c->a->flags & GW_CALL_HOLD_STREAM_HEAD)) {
        /* CORS is added when the head goes out, so that headers the
         * adapter adds later (trailing metadata of a unary answer) are
         * exposed too. */
        c->held_head = head;
        c->head_held = true;
        return;
    }
    rc = add_cors(c, &head);
    if (rc) {
        gw_error_set(&e, rc, "out of memory");
        fail_err(c, rc, &e);
        return;
    }
    if (client_respond_stream(c, head.status, head.headers, head.count) != 0) {
        fail(c, GW_CODE_INTERNAL, "cannot start the response");
        return;
    }
    c->head_sent = true;
    c->http_status = head.status;
}

static int push_mark(gw_call *c, size_t bytes, size_t wire_len)
{
    if (c->mark_head == c->mark_count) {
        c->mark_head = c->mark_count = 0;
    } else if (c->mark_count == c->mark_cap && c->mark_head > c->mark_cap / 2) {
        memmove(c->marks, c->marks + c->mark_head,
                (c->mark_count - c->mark_head) * sizeof *c->marks);
        c->mark_count -= c->mark_head;
        c->mark_head = 0;
    }
    if (c->mark_count == c->mark_cap) {
        size_t cap = c->mark_cap ? c->mark_cap * 2 : 16;
        out_mark *m = realloc(c->marks, cap * sizeof *m);
        if (!m)
            return GW_ENOMEM;
        c->marks = m;
        c->mark_cap = cap;
    }
    c->marks[c->mark_count++] = (out_mark){bytes, wire_len};
    return 0;
}

/* Also acknowledges the messages that gave the client no bytes (an empty
 * raw HttpBody chunk) as soon as everything before them is taken: nothing
 * would ever take them, and their window would be lost to the stream. */
static void ack(gw_call *c, size_t used)
{
    while (c->mark_head < c->mark_count) {
        out_mark *m = &c->marks[c->mark_head];
        size_t t = GW_MIN(used, m->bytes_left);
        m->bytes_left -= t;
        used -= t;
        if (m->bytes_left)
            break;
        if (c->uc && m->wire_len)
            gw_ucall_consume(c->uc, m->wire_len);
        c->mark_head++;
    }
}

static void on_message(void *owner, const uint8_t *msg, size_t len, size_t wire_len)
{
    gw_call *c = owner;
    if (c->finished)
        return;
    size_t before = c->out.len;
    gw_error e;
    gw_error_clear(&e);
    /* A unary answer goes out only after the status, and the backend may
     * need stream credit to send that status (nghttp2, like other stacks,
     * calls no data source on a stream whose window is 0, so the trailers
     * after a last DATA frame that emptied the window never leave). The
     * message is ours to hold whole anyway (bounded by
     * max_response_message): its window is reopened at delivery, not when
     * the client takes it. Only the first message: a backend that sends
     * more is held by the window as on a stream.
     *
     * While the request body is still arriving, the client cannot take
     * anything: libmicrohttpd sends no answer before the end of the body
     * (docs/front.md), so an acknowledgement at hand-over would never
     * come. A backend that answers as it reads (Chat) and closes its
     * request window while its answers wait (as it should) would then
     * wait for us, and we for the rest of the body: a deadlock. So until
     * the body has ended, messages are consumed at delivery while what
     * is held stays under max_output_bytes ("response bytes queued for a
     * slow client before the backend stream is paused"); past it the
     * window holds the backend as before (a backend that buffers its
     * answers, as grpc-js does, then waits for the end of the body).
     * Only for a front request: a face (WebSocket) is full duplex, its
     * client takes answers while it still sends, and its send queue is
     * what bounds the call there (docs/websocket.md). */
    bool early = !c->face && !c->body_ended && c->out.len - c->out_off < c->o->max_output;
    bool take_now = (c->unary && !c->unary_taken) || early;
    int rc = c->a->response_message(c, msg, len, &c->out, &e);
    if (rc == 0)
        rc = push_mark(c, c->out.len - before, take_now ? 0 : wire_len);
    if (rc) {
        c->out.len = before;
        fail_err(c, rc, &e);
        return;
    }
    if (take_now && c->uc) {
        if (c->unary)
            c->unary_taken = true;
        gw_ucall_consume(c->uc, wire_len);
    }
    if (c->out.len == before && c->out_off == c->out.len)
        ack(c, 0); /* no bytes for the client and none before them */
    if (c->unary)
        return;
    if (c->head_held) {
        /* GW_CALL_HOLD_STREAM_HEAD: the first message lets the head go. */
        c->head_held = false;
        if (add_cors(c, &c->held_head) != 0 ||
            client_respond_stream(c, c->held_head.status, c->held_head.headers,
                                        c->held_head.count) != 0) {
            fail(c, GW_CODE_INTERNAL, "cannot start the response");
            return;
        }
        c->head_sent = true;
        c->http_status = c->held_head.status;
    }
    client_wake(c);
}

/* Remembers the endpoint the upstream call is on, for the report: a
 * cluster may have moved the call, so ask as late as the handle lives. */
static void note_endpoint(gw_call *c)
{
    const char *url = gw_ucall_endpoint(c->uc);
    if (url)
        snprintf(c->endpoint, sizeof c->endpoint, "%s", url);
}

static void on_complete(void *owner, const gw_call_status *st)
{
    gw_call *c = owner;
    note_endpoint(c);
    c->uc = NULL;
    finish(c, st);
}

static const gw_ucall_handlers ucall_handlers = {
    .on_headers = on_headers,
    .on_message = on_message,
    .on_writable = on_writable,
    .on_complete = on_complete,
};

/* ---- the front's view ----------------------------------------------------------------- */

static long on_read(void *owner, uint8_t *buf, size_t max)
{
    gw_call *c = owner;
    size_t avail = c->out.len - c->out_off;
    if (avail == 0)
        return !c->finished ? 0 : c->end_abnormally ? GW_FRONT_ABORT : GW_FRONT_EOF;
    size_t used, w;
    if (flushes(c)) {
        w = c->a->response_flush(c, c->out.data + c->out_off, avail, buf, max, &used);
        if (w == 0)
            return GW_FRONT_ABORT; /* no room for even one unit: cannot happen with MHD */
    } else {
        w = used = GW_MIN(avail, max);
        memcpy(buf, c->out.data + c->out_off, w);
    }
    c->out_off += used;
    c->resp_bytes += w;
    ack(c, used);
    if (c->out_off == c->out.len) {
        c->out.len = 0;
        c->out_off = 0;
    } else if (c->out_off > 65536 && c->out_off > c->out.len / 2) {
        gw_buf_consume(&c->out, c->out_off);
        c->out_off = 0;
    }
    return (long)w;
}

static void on_client_gone(void *owner)
{
    gw_call *c = owner;
    c->client_gone = true;
    gw_loop_timer_stop(c->loop, &c->deadline);
    if (c->uc) {
        gw_ucall_cancel(c->uc);
        c->uc = NULL;
    }
}

static void call_free(gw_call *c)
{
    if (c->uc)
        gw_ucall_cancel(c->uc);
    gw_loop_timer_stop(c->loop, &c->deadline);
    if (c->a->fini && c->astate)
        c->a->fini(c);
    gw_buf_free(&c->pending);
    gw_buf_free(&c->out);
    free(c->marks);
    gw_arena_free(&c->arena);
    free(c);
}

/* Frees c, then tells the observer: the observer may release what the
 * options (and the method) live in, so nothing of c is used after it. */
static void free_and_report(gw_call *c, bool completed)
{
    void (*observe)(void *, const gw_call_report *) = c->o->observe;
    void *ctx = c->o->observe_ctx;
    gw_call_report rep = {.protocol = c->a->name, .method = c->method, .req = c->r,
                          .http_status = c->http_status,
                          .code = c->finished ? c->final_code : -1,
                          .request_bytes = c->body_bytes, .response_bytes = c->resp_bytes,
                          .start_ns = c->start_ns, .end_ns = gw_loop_now(c->loop),
                          .completed = completed};
    if (c->uc)
        note_endpoint(c);
    memcpy(rep.endpoint, c->endpoint, sizeof rep.endpoint);
    call_free(c);
    if (observe)
        observe(ctx, &rep);
}

static void on_close(void *owner, bool completed)
{
    gw_call *c = owner;
    if (!completed && c->uc)
        GW_DEBUG("call %s: client closed early, cancelling", c->method->path);
    free_and_report(c, completed);
}

const gw_front_req_ops gw_call_face_ops = {
    .on_body = on_body,
    .on_body_end = on_body_end,
    .read = on_read,
    .on_client_gone = on_client_gone,
    .on_close = on_close,
};

void gw_call_face_fail(gw_call *c, int code, const char *message)
{
    if (!c->finished)
        fail(c, code, message);
}

static const gw_front_req_ops front_ops = {
    .on_body = on_body,
    .on_body_end = on_body_end,
    .read = on_read,
    .on_client_gone = on_client_gone,
    .on_close = on_close,
};

/* ---- starting ------------------------------------------------------------------------------ */

/* Request headers that are about HTTP itself, not the RPC. */
static bool http_only_header(const char *n)
{
    static const char *const skip[] = {
        "connection", "host", "content-length", "content-type", "accept-encoding",
        "transfer-encoding", "te", "keep-alive", "upgrade", "proxy-connection",
        "proxy-authorization", "x-grpc-web", "x-user-agent", "user-agent", "accept",
        "origin", "referer", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding",
        "expect", "accept-language", "cache-control", "pragma", "priority",
        "content-encoding",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(skip); i++)
        if (strcasecmp(n, skip[i]) == 0)
            return true;
    /* connect-* is reserved for the Connect protocol (its version, timeout
     * and encodings), never application metadata. */
    return strncasecmp(n, "sec-", 4) == 0 || strncasecmp(n, "access-control-", 15) == 0 ||
           strncasecmp(n, "connect-", 8) == 0;
}

typedef struct md_ctx {
    gw_call *c;
    int rc;
} md_ctx;

static bool collect_metadata(void *ctx, const char *name, const char *value)
{
    md_ctx *m = ctx;
    if (http_only_header(name) || !gw_metadata_key_ok(name, strlen(name)) ||
        !gw_metadata_value_ok(value, strlen(value)))
        return true;
    if (strcasecmp(name, "cookie") == 0 && !m->c->o->forward_cookies)
        return true;
    m->rc = gw_call_add_metadata(m->c, name, value);
    return m->rc == 0;
}

static gw_call *call_new(gw_front_req *r, gw_loop *l, const gw_call_options *o,
                         const gw_call_cors *cors, const gw_method_def *m,
                         const gw_call_adapter *a)
{
    gw_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    gw_arena_init(&c->arena, 2048, 0);
    c->o = o;
    if (cors)
        c->cors = *cors;
    c->method = m;
    c->unary = m && !m->server_streaming;
    c->a = a;
    c->r = r;
    c->loop = r ? gw_front_req_loop(r) : l;
    c->start_ns = gw_loop_now(c->loop);
    gw_timer_init(&c->deadline, on_deadline, c);
    gw_buf_init(&c->pending, 0);
    gw_call_set_envelope(c, gw_call_envelope_len(o->max_message, GW_CALL_ENVELOPE_FRAMED));
    gw_buf_init(&c->out, o->max_output + gw_call_envelope_len(o->max_message, GW_CALL_ENVELOPE_JSON) +
                             64 * 1024);
    if (c->cors.allow_origin)
        c->cors.allow_origin = gw_arena_strdup(&c->arena, c->cors.allow_origin);
    c->astate = a->state_size ? gw_arena_calloc(&c->arena, a->state_size) : NULL;
    if ((cors && cors->allow_origin && !c->cors.allow_origin) || (a->state_size && !c->astate)) {
        call_free(c);
        return NULL;
    }
    /* Last: the observer takes a reference that only free_and_report's
     * observe gives back, so no failure may come after it. */
    if (o->observe_start)
        o->observe_start(o->observe_ctx);
    return c;
}

int gw_call_reject(gw_front_req *r, const gw_call_options *o, const gw_call_cors *cors,
                   const gw_call_adapter *adapter, const void *adapter_arg, int code,
                   const char *message)
{
    gw_call *c = call_new(r, NULL, o, cors, NULL, adapter);
    if (!c)
        return gw_front_req_respond(r, 503, NULL, 0, "out of memory\n", 14);
    gw_error e;
    gw_error_clear(&e);
    if (adapter->init)
        (void)adapter->init(c, r, adapter_arg, &e);
    gw_call_status st = {.code = code, .message = message, .trailers_only = true};
    finish(c, &st);
    free_and_report(c, true);
    return 0;
}

static bool face_collect(void *ctx, const char *name, const char *value)
{
    return collect_metadata(ctx, name, value);
}

/* Both starts after call_new: init, metadata, deadline, upstream. 0 with
 * the upstream call started (the caller attaches), or the error that was
 * answered (c freed). */
static int start(gw_call *c, gw_front_req *r, const gw_call_options *o, const gw_method_def *m,
                 gw_backend *b, const gw_call_adapter *adapter, const void *adapter_arg)
{
    gw_error e;
    gw_error_clear(&e);
    int rc = adapter->init ? adapter->init(c, r, adapter_arg, &e) : 0;
    if (rc)
        goto fail;

    md_ctx mc = {c, 0};
    if (!(adapter->flags & GW_CALL_OWN_METADATA)) {
        if (c->face)
            c->face->headers(c->face_ctx, face_collect, &mc);
        else
            gw_front_req_headers(r, collect_metadata, &mc);
    }
    if (mc.rc) {
        rc = mc.rc;
        if (rc == GW_ELIMIT)
            gw_error_set(&e, rc, "more than %zu metadata entries", o->max_metadata);
        else
            gw_error_set(&e, rc, "out of memory");
        goto fail;
    }

    uint64_t now = gw_loop_now(c->loop);
    uint64_t max_ns = o->max_deadline_ms * GW_MS;
    const char *to = gw_call_header(c, "grpc-timeout");
    /* 0 is a real timeout (already expired), not "none": has_deadline says
     * whether there is one. */
    c->has_deadline = max_ns != 0;
    uint64_t timeout_ns = max_ns;
    if (c->adapter_timeout) {
        if (!max_ns || c->adapter_timeout_ns < max_ns)
            timeout_ns = c->adapter_timeout_ns;
        c->has_deadline = true;
    } else if (to) {
        uint64_t t;
        if (gw_grpc_timeout_parse(to, strlen(to), &t) != 0) {
            rc = gw_error_set(&e, GW_EPARSE, "malformed grpc-timeout '%.32s'", to);
            goto fail;
        }
        if (!max_ns || t < max_ns)
            timeout_ns = t;
        c->has_deadline = true;
    }
    if (c->has_deadline && timeout_ns == 0) {
        /* Already expired: answered without troubling the backend. */
        gw_call_status st = {.code = GW_CODE_DEADLINE_EXCEEDED, .message = "deadline exceeded",
                             .trailers_only = true};
        finish(c, &st);
        free_and_report(c, true);
        return 1;
    }
    c->deadline_ns = c->has_deadline ? now + timeout_ns : 0;

    gw_ucall_params p = {.path = m->path, .metadata = c->md, .metadata_count = c->md_count,
                         .deadline_ns = c->deadline_ns};
    rc = o->upstream_start
             ? o->upstream_start(o->upstream_ctx, m, &p, &ucall_handlers, c, &c->uc, &e)
             : gw_ucall_start(b, &p, &ucall_handlers, c, &c->uc, &e);
    if (rc)
        goto fail;
    /* Without its timer the call would outlive its deadline (a backend
     * that never answers, or an upstream_start that answers locally). */
    if (c->has_deadline && gw_loop_timer_start(c->loop, &c->deadline, c->deadline_ns) != 0) {
        gw_ucall_cancel(c->uc);
        rc = gw_error_set(&e, GW_ENOMEM, "out of memory for the deadline timer");
        goto fail;
    }
    return 0;
fail: {
    gw_call_status st = {.code = gw_call_code_for_err(rc),
                         .message = e.msg[0] ? e.msg : gw_err_str(rc), .trailers_only = true};
    c->uc = NULL;
    finish(c, &st);
    free_and_report(c, true);
    return rc;
}
}

int gw_call_start(gw_front_req *r, const gw_call_options *o, const gw_call_cors *cors,
                  const gw_method_def *m, gw_backend *b, const gw_call_adapter *adapter,
                  const void *adapter_arg)
{
    gw_call *c = call_new(r, NULL, o, cors, m, adapter);
    if (!c)
        return gw_front_req_respond(r, 503, NULL, 0, "out of memory\n", 14);
    int rc = start(c, r, o, m, b, adapter, adapter_arg);
    if (rc == 0)
        gw_front_req_attach(r, &front_ops, c);
    return rc > 0 ? 0 : rc;
}

/* The smallest answer a face can get without a call (out of memory). */
static void face_oom(const gw_call_face *face, void *face_ctx)
{
    static const gw_front_header h[] = {{"grpc-status", "8"},
                                        {"grpc-message", "out of memory"}};
    if (face->respond(face_ctx, 200, h, GW_ARRAY_LEN(h), NULL, 0) != 0)
        face->close_now(face_ctx);
}

int gw_call_start_face(const gw_call_face *face, void *face_ctx, gw_loop *l,
                       const gw_call_options *o, const gw_call_cors *cors,
                       const gw_method_def *m, const gw_call_adapter *adapter,
                       const void *adapter_arg, gw_call **out)
{
    *out = NULL;
    gw_call *c = call_new(NULL, l, o, cors, m, adapter);
    if (!c) {
        face_oom(face, face_ctx);
        return GW_ENOMEM;
    }
    c->face = face;
    c->face_ctx = face_ctx;
    int rc = start(c, NULL, o, m, NULL, adapter, adapter_arg);
    if (rc == 0)
        *out = c;
    return rc > 0 ? GW_ESTATE : rc;
}

void gw_call_reject_face(const gw_call_face *face, void *face_ctx, gw_loop *l,
                         const gw_call_options *o, const gw_call_adapter *adapter,
                         const void *adapter_arg, int code, const char *message)
{
    gw_call *c = call_new(NULL, l, o, NULL, NULL, adapter);
    if (!c) {
        face_oom(face, face_ctx);
        return;
    }
    c->face = face;
    c->face_ctx = face_ctx;
    gw_error e;
    gw_error_clear(&e);
    if (adapter->init)
        (void)adapter->init(c, NULL, adapter_arg, &e);
    gw_call_status st = {.code = code, .message = message, .trailers_only = true};
    finish(c, &st);
    free_and_report(c, true);
}
