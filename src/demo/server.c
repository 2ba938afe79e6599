/*
 * The HTTP/2 side of the demo service: a listening socket, connections that
 * each own an nghttp2 server session fed through mem_recv/mem_send, and one
 * dm_call per request stream. Handlers (methods.c) only see the dm_call_*
 * interface from internal.h.
 *
 * Response bytes wait in the call's `out` buffer until nghttp2 asks for them
 * through the data provider, which it does only while the client's stream
 * and connection windows are open. Streaming producers (ListUsers, Download)
 * are called from that same callback when the buffer is empty, so a client
 * that reads slowly throttles the producer instead of growing the buffer.
 */
#include "demo/demo.h"
#include "demo/internal.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

extern const uint8_t gw_demo_desc_data[];
extern const size_t gw_demo_desc_len;
extern const uint8_t gw_demo_reflect_data[];
extern const size_t gw_demo_reflect_len;

#define CALL_ARENA_MAX (128u << 10)   /* header strings and metadata of one call */
#define READ_CHUNK 16384

typedef struct dm_conn dm_conn;

typedef struct dm_md {
    struct dm_md *next;
    char *key;
    char *value;
    size_t key_len, value_len;
} dm_md;

struct dm_call {
    dm_conn *conn;
    dm_call *prev, *next;
    int32_t id;
    gw_arena arena;

    /* request */
    char *path, *method_name, *content_type, *timeout, *encoding;
    dm_md *md, *md_tail;
    size_t n_md;
    int header_error;          /* a gRPC code when the headers were unacceptable */
    const char *header_error_msg;
    const dm_method *method;
    dm_framer framer;
    uint32_t n_in;
    bool half_closed;
    size_t unconsumed;         /* request bytes not yet acknowledged */

    /* response */
    int http_status;
    bool finished;             /* the status is decided */
    bool headers_submitted;
    bool response_done;        /* END_STREAM went out */
    bool deferred;             /* the data provider said NGHTTP2_ERR_DEFERRED */
    bool sleeping;
    int code;
    char *message;
    uint8_t *details;
    size_t details_len;
    gw_buf out;
    size_t out_off;
    dm_call_fn producer, sleep_fn;
    gw_timer deadline_timer, sleep_timer;
    uint64_t deadline;
    struct dm_call_state st;
};

struct dm_conn {
    gw_demo_service *svc;
    dm_conn *prev, *next;
    int fd;
    gw_io io;
    uint32_t io_events;
    nghttp2_session *h2;
    const uint8_t *pending;    /* from nghttp2_session_mem_send, not yet written */
    size_t pending_len;
    gw_defer flush;
    dm_call *calls;
    bool closing;
    bool consume_due;          /* some call may acknowledge held request bytes */
};

struct gw_demo_service {
    gw_loop *loop;
    int lfd;
    gw_io lio;
    int port;
    dm_conn *conns;
    size_t n_conns;
    dm_store *store;
    dm_reflect *reflect;
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    atomic_bool stop_requested;
    bool shut;
    atomic_uint_fast64_t cancelled;   /* read from any thread */
};

const uint8_t *gw_demo_descriptor_set(size_t *len)
{
    *len = gw_demo_desc_len;
    return gw_demo_desc_data;
}

/* ---- the handler interface ------------------------------------------------------ */

gw_demo_service *dm_call_service(dm_call *c) { return c->conn->svc; }
dm_store *dm_call_store(dm_call *c) { return c->conn->svc->store; }
const dm_reflect *dm_call_reflect(dm_call *c) { return c->conn->svc->reflect; }
struct dm_call_state *dm_call_state(dm_call *c) { return &c->st; }
uint64_t dm_call_now(dm_call *c) { return gw_loop_now(c->conn->svc->loop); }
bool dm_call_finished(const dm_call *c) { return c->finished; }
gw_buf *dm_call_out(dm_call *c) { return &c->out; }
size_t dm_call_out_pending(const dm_call *c) { return c->out.len - c->out_off; }

static void conn_kick(dm_conn *conn)
{
    if (!conn->closing)
        gw_loop_defer(conn->svc->loop, &conn->flush);
}

/* Builds a header list in nva from name/value pairs; strings must outlive
 * the nghttp2_submit_* call (nghttp2 copies them). */
typedef struct nv_list {
    nghttp2_nv *v;
    size_t n, cap;
} nv_list;

static int nv_add(nv_list *l, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        nghttp2_nv *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return GW_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, nlen, vlen,
                                NGHTTP2_NV_FLAG_NONE};
    return 0;
}

static int nv_add_str(nv_list *l, const char *name, const char *value)
{
    return nv_add(l, name, strlen(name), value, strlen(value));
}

/* Status and echoed trailers. The strings built here live in c->arena or
 * in the two gw_bufs, which the caller frees after submitting. */
static int add_trailers(dm_call *c, nv_list *l, char *status, gw_buf *msg, gw_buf *det)
{
    snprintf(status, 16, "%d", c->code);
    int rc = nv_add_str(l, "grpc-status", status);
    if (rc == 0 && c->message && c->message[0]) {
        rc = gw_grpc_message_encode(msg, c->message, strlen(c->message));
        if (rc == 0)
            rc = nv_add(l, "grpc-message", 12, (char *)msg->data, msg->len);
    }
    if (rc == 0 && c->details_len) {
        rc = gw_base64_encode_buf(det, c->details, c->details_len, false);
        if (rc == 0)
            rc = nv_add(l, "grpc-status-details-bin", 23, (char *)det->data, det->len);
    }
    gw_buf name;
    gw_buf_init(&name, 0);
    for (dm_md *m = c->md; rc == 0 && m; m = m->next) {
        rc = dm_trailer_name(&name, m->key, m->key_len);
        char *tn = rc == 0 ? gw_arena_strndup(&c->arena, (char *)name.data, name.len) : NULL;
        if (rc == 0 && !tn)
            rc = GW_ENOMEM;
        if (rc == 0)
            rc = nv_add(l, tn, name.len, m->value, m->value_len);
    }
    gw_buf_free(&name);
    return rc;
}

static int add_headers(dm_call *c, nv_list *l, char *status)
{
    snprintf(status, 8, "%d", c->http_status);
    int rc = nv_add_str(l, ":status", status);
    if (rc == 0)
        rc = nv_add_str(l, "content-type", "application/grpc");
    for (dm_md *m = c->md; rc == 0 && m; m = m->next)
        rc = nv_add(l, m->key, m->key_len, m->value, m->value_len);
    return rc;
}

static ssize_t read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                       size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                       void *user_data);

static void submit_failed(dm_call *c, int rc)
{
    GW_WARN("demo: stream %d: cannot submit a response: %s", c->id, nghttp2_strerror(rc));
    nghttp2_submit_rst_stream(c->conn->h2, NGHTTP2_FLAG_NONE, c->id, NGHTTP2_INTERNAL_ERROR);
}

/* Sends the response headers; with trailers_only they carry the status and
 * end the stream. */
static void submit_headers(dm_call *c, bool trailers_only)
{
    nv_list l = {0};
    char hs[8], ts[16];
    gw_buf msg, det;
    gw_buf_init(&msg, 0);
    gw_buf_init(&det, 0);
    int rc = add_headers(c, &l, hs);
    if (rc == 0 && trailers_only)
        rc = add_trailers(c, &l, ts, &msg, &det);
    c->headers_submitted = true;
    if (rc == 0) {
        nghttp2_data_provider prd = {.source.ptr = c, .read_callback = read_cb};
        rc = nghttp2_submit_response(c->conn->h2, c->id, l.v, l.n,
                                     trailers_only ? NULL : &prd);
        if (rc)
            submit_failed(c, rc);
    } else {
        nghttp2_submit_rst_stream(c->conn->h2, NGHTTP2_FLAG_NONE, c->id,
                                  NGHTTP2_INTERNAL_ERROR);
    }
    free(l.v);
    gw_buf_free(&msg);
    gw_buf_free(&det);
}

static int submit_trailers(dm_call *c)
{
    nv_list l = {0};
    char ts[16];
    gw_buf msg, det;
    gw_buf_init(&msg, 0);
    gw_buf_init(&det, 0);
    int rc = add_trailers(c, &l, ts, &msg, &det);
    if (rc == 0)
        rc = nghttp2_submit_trailer(c->conn->h2, c->id, l.v, l.n);
    free(l.v);
    gw_buf_free(&msg);
    gw_buf_free(&det);
    return rc;
}

static void resume(dm_call *c)
{
    if (c->deferred) {
        c->deferred = false;
        nghttp2_session_resume_data(c->conn->h2, c->id);
    }
    conn_kick(c->conn);
}

void dm_call_finish(dm_call *c, int code, const char *message, const uint8_t *details,
                    size_t details_len)
{
    if (c->finished)
        return;
    c->finished = true;
    c->code = code;
    c->producer = NULL;
    c->sleeping = false;
    gw_loop_timer_stop(c->conn->svc->loop, &c->sleep_timer);
    gw_loop_timer_stop(c->conn->svc->loop, &c->deadline_timer);
    if (message && message[0]) {
        c->message = strdup(message);
        if (!c->message)
            c->code = GW_CODE_RESOURCE_EXHAUSTED;
    }
    if (details_len && details) {
        c->details = malloc(details_len);
        if (c->details) {
            memcpy(c->details, details, details_len);
            c->details_len = details_len;
        }
    }
    if (code != GW_CODE_OK) {
        /* An error ends the stream now: drop messages not yet sent. */
        c->out_off = c->out.len;
    }
    if (c->unconsumed)
        c->conn->consume_due = true;   /* the call reads no more */
    if (!c->headers_submitted)
        submit_headers(c, dm_call_out_pending(c) == 0);
    resume(c);
}

void dm_call_finishf(dm_call *c, int code, const char *fmt, ...)
{
    char msg[GW_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dm_call_finish(c, code, msg, NULL, 0);
}

void dm_call_sent(dm_call *c)
{
    if (!c->headers_submitted)
        submit_headers(c, false);
    resume(c);
}

int dm_call_send(dm_call *c, const uint8_t *msg, size_t len)
{
    if (c->finished)
        return GW_ESTATE;
    if (len > DM_MAX_MESSAGE) {
        dm_call_finishf(c, GW_CODE_RESOURCE_EXHAUSTED,
                        "response message larger than %u bytes", DM_MAX_MESSAGE);
        return GW_ELIMIT;
    }
    if (dm_call_out_pending(c) + len + 5 > DM_MAX_OUT_BUFFERED) {
        dm_call_finishf(c, GW_CODE_RESOURCE_EXHAUSTED,
                        "client reads too slowly: more than %u response bytes buffered",
                        DM_MAX_OUT_BUFFERED);
        return GW_ELIMIT;
    }
    if (c->out_off > 0 && c->out_off == c->out.len) {
        gw_buf_reset(&c->out);
        c->out_off = 0;
    }
    if (dm_frame_prefix(&c->out, len) < 0 || gw_buf_append(&c->out, msg, len) < 0) {
        dm_call_finish(c, GW_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        return GW_ENOMEM;
    }
    dm_call_sent(c);
    return 0;
}

int dm_call_send_message(dm_call *c, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t stackbuf[512];
    uint8_t *b = len <= sizeof stackbuf ? stackbuf : malloc(len);
    if (!b) {
        dm_call_finish(c, GW_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        return GW_ENOMEM;
    }
    protobuf_c_message_pack(m, b);
    int rc = dm_call_send(c, b, len);
    if (b != stackbuf)
        free(b);
    return rc;
}

void dm_call_set_producer(dm_call *c, dm_call_fn fill)
{
    if (c->finished)
        return;
    c->producer = fill;
    if (!c->headers_submitted)
        submit_headers(c, false);
    resume(c);
}

static void sleep_done(void *owner)
{
    dm_call *c = owner;
    c->sleeping = false;
    dm_call_fn fn = c->sleep_fn;
    c->sleep_fn = NULL;
    if (fn && !c->finished)
        fn(c);
    conn_kick(c->conn);
}

void dm_call_sleep(dm_call *c, uint64_t ns, dm_call_fn fn)
{
    if (c->finished)
        return;
    uint64_t now = gw_now_ns();
    uint64_t at = ns > UINT64_MAX - now ? UINT64_MAX : now + ns;
    c->sleeping = true;
    c->sleep_fn = fn;
    /* A sleep past the deadline never wakes: the deadline timer ends the
     * call first, at the deadline. */
    if (c->deadline && at >= c->deadline)
        return;
    if (gw_loop_timer_start(c->conn->svc->loop, &c->sleep_timer, at) < 0)
        dm_call_finish(c, GW_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
}

static void deadline_fired(void *owner)
{
    dm_call *c = owner;
    dm_call_finish(c, GW_CODE_DEADLINE_EXCEEDED, "deadline exceeded", NULL, 0);
}

/* ---- calls ------------------------------------------------------------------------- */

static dm_call *call_new(dm_conn *conn, int32_t id)
{
    dm_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->conn = conn;
    c->id = id;
    c->http_status = 200;
    gw_arena_init(&c->arena, 1024, CALL_ARENA_MAX);
    dm_framer_init(&c->framer, DM_MAX_MESSAGE);
    gw_buf_init(&c->out, 0);   /* bounded by dm_call_send's check */
    gw_buf_init(&c->st.ids, 0);
    gw_buf_init(&c->st.pending, 0);
    gw_buf_init(&c->st.pending_details, 0);
    gw_timer_init(&c->deadline_timer, deadline_fired, c);
    gw_timer_init(&c->sleep_timer, sleep_done, c);
    c->next = conn->calls;
    if (conn->calls)
        conn->calls->prev = c;
    conn->calls = c;
    return c;
}

static void call_free(dm_call *c)
{
    dm_conn *conn = c->conn;
    if (!c->response_done && c->method) {
        if (conn->svc->shut) {
            GW_DEBUG("demo: call %s ended by shutdown", c->path);
        } else {
            atomic_fetch_add_explicit(&conn->svc->cancelled, 1, memory_order_relaxed);
            GW_INFO("demo: call %s cancelled by client", c->path);
        }
    }
    /* The stream's window dies with it; the connection's does not. */
    if (c->unconsumed && !conn->closing)
        nghttp2_session_consume_connection(conn->h2, c->unconsumed);
    gw_loop_timer_stop(conn->svc->loop, &c->deadline_timer);
    gw_loop_timer_stop(conn->svc->loop, &c->sleep_timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        conn->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    dm_call_state_free(&c->st);
    dm_framer_free(&c->framer);
    gw_buf_free(&c->out);
    free(c->message);
    free(c->details);
    gw_arena_free(&c->arena);
    free(c);
}

static int on_message(void *owner, const uint8_t *msg, size_t len)
{
    dm_call *c = owner;
    c->n_in++;
    if (c->method->client_streaming)
        c->method->on_message(c, msg, len);
    else if (c->n_in == 1)
        c->method->on_request(c, msg, len);
    else
        dm_call_finishf(c, GW_CODE_INTERNAL, "%s takes one request message, got more",
                        c->path);
    return c->finished ? 1 : 0;
}

static void half_close(dm_call *c)
{
    c->half_closed = true;
    if (c->finished)
        return;
    if (!dm_framer_idle(&c->framer))
        dm_call_finishf(c, GW_CODE_INTERNAL, "request ended inside a message (at byte %llu)",
                        (unsigned long long)c->framer.offset);
    else if (c->method->client_streaming)
        c->method->on_end(c);
    else if (c->n_in == 0)
        dm_call_finishf(c, GW_CODE_INTERNAL, "%s needs a request message, got none", c->path);
}

/* The request headers are complete: accept the call or answer at once. */
static void start_call(dm_call *c)
{
    if (c->header_error) {
        dm_call_finish(c, c->header_error, c->header_error_msg, NULL, 0);
        return;
    }
    const char *ct = c->content_type ? c->content_type : "";
    if (strncmp(ct, "application/grpc", 16) != 0 || (ct[16] && ct[16] != '+' && ct[16] != ';')) {
        c->http_status = 415;
        dm_call_finishf(c, GW_CODE_INTERNAL, "invalid gRPC request content-type \"%s\"", ct);
        return;
    }
    if (!c->method_name || strcmp(c->method_name, "POST") != 0) {
        c->http_status = 405;
        dm_call_finishf(c, GW_CODE_INTERNAL, "invalid gRPC request method \"%s\"",
                        c->method_name ? c->method_name : "");
        return;
    }
    if (c->encoding && strcmp(c->encoding, "identity") != 0) {
        dm_call_finishf(c, GW_CODE_UNIMPLEMENTED, "grpc-encoding \"%s\" is not supported",
                        c->encoding);
        return;
    }
    uint64_t timeout = 0;
    if (c->timeout &&
        gw_grpc_timeout_parse(c->timeout, strlen(c->timeout), &timeout) < 0) {
        dm_call_finishf(c, GW_CODE_INTERNAL, "malformed grpc-timeout \"%s\"", c->timeout);
        return;
    }
    c->method = c->path ? dm_method_find(c->path) : NULL;
    if (!c->method) {
        dm_call_finishf(c, GW_CODE_UNIMPLEMENTED, "unknown method %s", c->path ? c->path : "");
        return;
    }
    if (c->timeout) {
        uint64_t now = gw_now_ns();
        c->deadline = timeout > UINT64_MAX - now ? UINT64_MAX : now + timeout;
        if (gw_loop_timer_start(c->conn->svc->loop, &c->deadline_timer, c->deadline) < 0)
            dm_call_finish(c, GW_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
    }
}

/* ---- nghttp2 callbacks --------------------------------------------------------------- */

static dm_call *stream_call(nghttp2_session *s, int32_t id)
{
    return nghttp2_session_get_stream_user_data(s, id);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    dm_conn *conn = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    dm_call *c = call_new(conn, f->hd.stream_id);
    if (!c)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* resets the stream */
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, c);
    return 0;
}

static bool starts_with(const uint8_t *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && memcmp(s, lit, l) == 0;
}

static bool is(const uint8_t *s, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;   /* request trailers carry nothing we use */
    dm_call *c = stream_call(s, f->hd.stream_id);
    if (!c || c->header_error)
        return 0;
    char **slot = NULL;
    if (is(name, nlen, ":path"))
        slot = &c->path;
    else if (is(name, nlen, ":method"))
        slot = &c->method_name;
    else if (is(name, nlen, "content-type"))
        slot = &c->content_type;
    else if (is(name, nlen, "grpc-timeout"))
        slot = &c->timeout;
    else if (is(name, nlen, "grpc-encoding"))
        slot = &c->encoding;
    if (slot) {
        *slot = gw_arena_strndup(&c->arena, (const char *)value, vlen);
        if (!*slot) {
            c->header_error = GW_CODE_RESOURCE_EXHAUSTED;
            c->header_error_msg = "request headers too large";
        }
        return 0;
    }
    if (!starts_with(name, nlen, "x-demo-"))
        return 0;
    if (c->n_md == DM_MAX_METADATA) {
        c->header_error = GW_CODE_RESOURCE_EXHAUSTED;
        c->header_error_msg = "too many x-demo- metadata entries";
        return 0;
    }
    dm_md *m = gw_arena_calloc(&c->arena, sizeof *m);
    if (m) {
        m->key = gw_arena_strndup(&c->arena, (const char *)name, nlen);
        m->value = gw_arena_strndup(&c->arena, (const char *)value, vlen);
    }
    if (!m || !m->key || !m->value) {
        c->header_error = GW_CODE_RESOURCE_EXHAUSTED;
        c->header_error_msg = "request headers too large";
        return 0;
    }
    m->key_len = nlen;
    m->value_len = vlen;
    if (c->md_tail)
        c->md_tail->next = m;
    else
        c->md = m;
    c->md_tail = m;
    c->n_md++;
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    dm_call *c = stream_call(s, f->hd.stream_id);
    if (!c)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
        start_call(c);
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
        half_close(c);
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    dm_call *c = stream_call(s, id);
    if (!c || c->finished) {
        if (nghttp2_session_consume(s, id, len) != 0)
            nghttp2_session_consume_connection(s, len);
        return 0;
    }
    gw_error e;
    gw_error_clear(&e);
    int rc = dm_framer_feed(&c->framer, data, len, on_message, c, &e);
    if (rc < 0 && !c->finished)
        dm_call_finish(c, rc == GW_ELIMIT || rc == GW_ENOMEM ? GW_CODE_RESOURCE_EXHAUSTED
                                                              : GW_CODE_INTERNAL,
                       e.msg, NULL, 0);
    /* Backpressure: a client that sends faster than it reads its answers
     * (Chat, reflection) gets its window closed instead of our memory. */
    if (c->finished || dm_call_out_pending(c) < DM_IN_HIGH)
        nghttp2_session_consume(s, id, len);
    else
        c->unconsumed += len;
    return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    dm_call *c = stream_call(s, f->hd.stream_id);
    if (!c)
        return 0;
    c->response_done = true;
    /* The answer is complete: tell a client that is still sending to stop. */
    if (!c->half_closed)
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, c->id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud)
{
    dm_conn *conn = ud;
    dm_call *c = stream_call(s, id);
    if (!c || conn->closing)
        return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    call_free(c);
    return 0;
}

static ssize_t read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                       size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                       void *user_data)
{
    dm_call *c = source->ptr;
    if (dm_call_out_pending(c) == 0 && !c->finished && c->producer && !c->sleeping)
        c->producer(c);
    size_t avail = dm_call_out_pending(c);
    if (avail > 0) {
        size_t n = GW_MIN(avail, length);
        memcpy(buf, c->out.data + c->out_off, n);
        c->out_off += n;
        if (c->out_off == c->out.len) {
            gw_buf_reset(&c->out);
            c->out_off = 0;
        }
        if (c->unconsumed && dm_call_out_pending(c) < DM_IN_LOW)
            c->conn->consume_due = true;
        return (ssize_t)n;
    }
    if (c->finished) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (submit_trailers(c) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
    }
    c->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
}

/* ---- connections --------------------------------------------------------------------- */

static void conn_close(dm_conn *conn)
{
    gw_demo_service *svc = conn->svc;
    conn->closing = true;
    gw_loop_io_remove(svc->loop, &conn->io);
    gw_loop_defer_cancel(svc->loop, &conn->flush);
    close(conn->fd);
    nghttp2_session_del(conn->h2);
    while (conn->calls)
        call_free(conn->calls);
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        svc->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    svc->n_conns--;
    free(conn);
}

static void conn_update_io(dm_conn *conn)
{
    uint32_t ev = GW_IO_READ | (conn->pending_len ? GW_IO_WRITE : 0);
    if (ev != conn->io_events && gw_loop_io_modify(conn->svc->loop, &conn->io, ev) == 0)
        conn->io_events = ev;
}

/* Acknowledges request bytes held back from calls whose answers drained. */
static void release_windows(dm_conn *conn)
{
    conn->consume_due = false;
    for (dm_call *c = conn->calls; c; c = c->next)
        if (c->unconsumed && (c->finished || dm_call_out_pending(c) < DM_IN_LOW)) {
            nghttp2_session_consume(conn->h2, c->id, c->unconsumed);
            c->unconsumed = 0;
        }
}

/* Writes what nghttp2 has to send until the socket is full. Returns false
 * when the connection was closed (conn is freed). */
static bool conn_flush(dm_conn *conn)
{
    for (;;) {
        if (conn->consume_due)
            release_windows(conn);
        if (conn->pending_len) {
            ssize_t n = send(conn->fd, conn->pending, conn->pending_len, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                conn_close(conn);
                return false;
            }
            conn->pending += n;
            conn->pending_len -= (size_t)n;
            continue;
        }
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(conn->h2, &data);
        if (n < 0) {
            conn_close(conn);
            return false;
        }
        if (n == 0)
            break;
        conn->pending = data;
        conn->pending_len = (size_t)n;
    }
    if (conn->pending_len == 0 && !nghttp2_session_want_read(conn->h2) &&
        !nghttp2_session_want_write(conn->h2)) {
        conn_close(conn);
        return false;
    }
    conn_update_io(conn);
    return true;
}

static void conn_flush_deferred(void *owner)
{
    conn_flush(owner);
}

static void conn_io(void *owner, uint32_t events)
{
    dm_conn *conn = owner;
    if (events & (GW_IO_READ | GW_IO_ERROR | GW_IO_RDHUP)) {
        uint8_t buf[READ_CHUNK];
        for (int i = 0; i < 8; i++) {
            ssize_t n = recv(conn->fd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            if (n <= 0) {
                conn_close(conn);
                return;
            }
            ssize_t rv = nghttp2_session_mem_recv(conn->h2, buf, (size_t)n);
            if (rv < 0) {
                GW_DEBUG("demo: connection closed: %s", nghttp2_strerror((int)rv));
                /* Send what nghttp2 queued (a GOAWAY) before closing. */
                if (conn_flush(conn))
                    conn_close(conn);
                return;
            }
        }
    }
    conn_flush(conn);
}

static void accept_cb(void *owner, uint32_t events)
{
    gw_demo_service *svc = owner;
    for (;;) {
        int fd = accept4(svc->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                GW_WARN("demo: accept: %s", strerror(errno));
            return;
        }
        if (svc->n_conns >= DM_MAX_CONNECTIONS) {
            GW_WARN("demo: refusing a connection: %d open", DM_MAX_CONNECTIONS);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        dm_conn *conn = calloc(1, sizeof *conn);
        if (!conn) {
            close(fd);
            continue;
        }
        conn->svc = svc;
        conn->fd = fd;
        gw_defer_init(&conn->flush, conn_flush_deferred, conn);
        nghttp2_settings_entry iv[] = {
            {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, DM_MAX_STREAMS},
            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64 * 1024},
        };
        if (nghttp2_session_server_new2(&conn->h2, svc->cbs, conn, svc->opt) != 0) {
            close(fd);
            free(conn);
            continue;
        }
        if (nghttp2_submit_settings(conn->h2, NGHTTP2_FLAG_NONE, iv, GW_ARRAY_LEN(iv)) != 0 ||
            nghttp2_session_set_local_window_size(conn->h2, NGHTTP2_FLAG_NONE, 0,
                                                  (int32_t)DM_CONN_WINDOW) != 0 ||
            gw_loop_io_add(svc->loop, &conn->io, fd, GW_IO_READ, conn_io, conn) != 0) {
            nghttp2_session_del(conn->h2);
            close(fd);
            free(conn);
            continue;
        }
        conn->io_events = GW_IO_READ;
        conn->next = svc->conns;
        if (svc->conns)
            svc->conns->prev = conn;
        svc->conns = conn;
        svc->n_conns++;
        conn_kick(conn);
    }
}

/* ---- the service --------------------------------------------------------------------- */

static void shut_down(gw_demo_service *svc)
{
    if (svc->shut)
        return;
    svc->shut = true;
    if (svc->lfd >= 0) {
        gw_loop_io_remove(svc->loop, &svc->lio);
        close(svc->lfd);
        svc->lfd = -1;
    }
    /* Tell each client before closing (GOAWAY NO_ERROR, best effort: what
     * the socket does not take at once is dropped). */
    while (svc->conns) {
        dm_conn *conn = svc->conns;
        nghttp2_submit_goaway(conn->h2, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(conn->h2),
                              NGHTTP2_NO_ERROR, NULL, 0);
        if (conn_flush(conn))
            conn_close(conn);
    }
}

static void wakeup_cb(void *owner)
{
    gw_demo_service *svc = owner;
    if (atomic_load(&svc->stop_requested)) {
        shut_down(svc);
        gw_loop_stop(svc->loop);
    }
}

void gw_demo_service_stop(gw_demo_service *s)
{
    atomic_store(&s->stop_requested, true);
    gw_loop_wakeup(s->loop);
}

int gw_demo_service_port(const gw_demo_service *s) { return s->port; }
uint64_t gw_demo_service_cancelled(const gw_demo_service *s)
{
    return atomic_load_explicit(&s->cancelled, memory_order_relaxed);
}

void gw_demo_service_del(gw_demo_service *s)
{
    if (!s)
        return;
    shut_down(s);
    gw_loop_set_wakeup_cb(s->loop, NULL, NULL);
    dm_store_del(s->store);
    dm_reflect_del(s->reflect);
    if (s->cbs)
        nghttp2_session_callbacks_del(s->cbs);
    if (s->opt)
        nghttp2_option_del(s->opt);
    free(s);
}

static int listen_on(gw_demo_service *svc, const char *host, int port, gw_error *e)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host && host[0] ? host : NULL, portstr, &hints, &res);
    if (rc != 0)
        return gw_error_set(e, GW_EIO, "cannot resolve %s: %s", host, gai_strerror(rc));
    int err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 512) < 0) {
            err = errno;
            close(fd);
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        getsockname(fd, (struct sockaddr *)&ss, &sl);
        svc->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
        svc->lfd = fd;
        break;
    }
    freeaddrinfo(res);
    if (svc->lfd < 0)
        return gw_error_set(e, GW_EIO, "cannot listen on %s:%d: %s", host, port,
                            strerror(err ? err : EADDRNOTAVAIL));
    if (gw_loop_io_add(svc->loop, &svc->lio, svc->lfd, GW_IO_READ, accept_cb, svc) < 0)
        return gw_error_set(e, GW_EIO, "cannot watch the listening socket");
    return 0;
}

int gw_demo_service_new(gw_loop *loop, const char *host, int port, gw_demo_service **out,
                        gw_error *e)
{
    int rc;
    gw_demo_service *svc = calloc(1, sizeof *svc);
    if (!svc)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    svc->loop = loop;
    svc->lfd = -1;
    atomic_init(&svc->stop_requested, false);
    atomic_init(&svc->cancelled, 0);
    svc->store = dm_store_new();
    if (!svc->store) {
        rc = gw_error_set(e, GW_ENOMEM, "out of memory");
        goto fail;
    }
    rc = dm_reflect_new(gw_demo_reflect_data, gw_demo_reflect_len, &svc->reflect, e);
    if (rc)
        goto fail;
    if (nghttp2_session_callbacks_new(&svc->cbs) != 0 || nghttp2_option_new(&svc->opt) != 0) {
        rc = gw_error_set(e, GW_ENOMEM, "out of memory");
        goto fail;
    }
    nghttp2_option_set_no_auto_window_update(svc->opt, 1);
    nghttp2_session_callbacks_set_on_begin_headers_callback(svc->cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(svc->cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(svc->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(svc->cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(svc->cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(svc->cbs, on_stream_close);
    rc = listen_on(svc, host, port, e);
    if (rc)
        goto fail;
    gw_loop_set_wakeup_cb(loop, wakeup_cb, svc);
    *out = svc;
    return 0;
fail:
    gw_demo_service_del(svc);
    return rc;
}
