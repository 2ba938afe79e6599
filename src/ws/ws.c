/* WebSocket sessions driven by the worker's loop. See ws.h and docs/websocket.md. */
#include "ws/ws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <wslay/wslay.h>

#include "grpcweb/grpcweb.h"
#include "wsproto/wsproto.h"

#define MAX_HEADERS 64
#define READ_CHUNK (16u * 1024u)
#define READ_PER_TURN (256u * 1024u)

typedef enum ws_phase {
    PH_HEADERS,   /* waiting for the header block */
    PH_CALL,      /* the call runs */
    PH_CLOSING,   /* our close frame is queued or sent; waiting for the reply */
    PH_DEAD,      /* torn down, waiting to be freed */
} ws_phase;

typedef struct ws_hdr {
    const char *name;   /* lower-case, NUL-terminated (in hdr_mem) */
    const char *value;
} ws_hdr;

typedef struct ws_sess ws_sess;

struct gw_ws_hub {
    gw_loop *loop;
    ws_sess *sessions;
    size_t active;
    bool draining;
};

struct ws_sess {
    gw_ws_hub *hub;
    gw_loop *loop;
    ws_sess *prev, *next;
    bool linked;
    gw_ws_options o;
    const gw_call_options *co;
    const gw_method_def *method;
    bool json;                   /* JSON text messages (no subprotocol) */
    const gw_rest_options *rest;
    gw_buf jout;                 /* JSON mode: call output not yet cut into messages */
    char path[256];
    void (*release)(void *ctx);
    void *hold_ctx;

    gw_front_upgraded *u;
    int fd;
    gw_io io;
    uint32_t io_events;
    wslay_event_context_ptr ctx;
    ws_phase phase;

    /* the header block: copies of names (lower-cased) and values */
    ws_hdr hdrs[MAX_HEADERS];
    size_t nhdrs;
    char *hdr_mem;

    gw_call *call;               /* NULL before the header block and after on_close */
    bool streaming;              /* respond_stream given: pull with read */
    bool answered;               /* the whole answer (or the end of the stream) is queued */
    bool out_held;               /* pump_response left call output behind (send queue
                                    at GW_WS_SEND_HIGH): pull again once it drains */
    gw_buf inbox;                /* request bytes the call has not taken yet */
    bool finish_pending;         /* the client finished; on_body_end after the inbox */
    bool send_done;              /* on_body_end given */
    bool paused;                 /* not reading the socket (backpressure) */
    bool stop_reading;           /* never again (oversized message) */
    uint64_t msg_bytes;          /* the incoming message so far (frame starts) */
    gw_buf msg;                  /* the data message being received (wslay does not
                                    buffer them: its UTF-8 and size errors would
                                    close without a gRPC status) */
    uint8_t msg_op;              /* its opcode */
    bool frame_fin;              /* the frame being received ends its message */
    bool in_ctrl;                /* the frame being received is a control frame
                                    (it may come between fragments) */
    uint8_t *early;              /* bytes read by the front after the request head */
    size_t early_len, early_off;
    size_t discarded;            /* read and dropped after a fault (before our close) */
    uint16_t close_code;         /* the code our close frame will carry */
    bool peer_eof;
    size_t turn_bytes;           /* read in this loop turn (fairness, floods) */
    bool draining_input;         /* shut down for writing; dropping input until EOF */
    bool close_queued;
    uint16_t close_send_code;
    char close_reason[64];

    gw_timer timer;              /* keepalive / idle / header / send / close */
    uint64_t start_ns, last_msg_ns, last_ping_ns, ping_sent_ns, last_send_ns;
    bool awaiting_pong;
    uint64_t close_by_ns;        /* PH_CLOSING: give up waiting */
    gw_defer pump_d;
    gw_defer reap_d;
    uint8_t readbuf[READ_CHUNK];
};

void gw_ws_options_init(gw_ws_options *o)
{
    memset(o, 0, sizeof *o);
    o->ping_interval_ms = 30000;
    o->pong_timeout_ms = 20000;
    o->idle_timeout_ms = 300000;
    o->header_timeout_ms = 10000;
    o->send_timeout_ms = 30000;
    o->close_timeout_ms = 5000;
    o->max_send_queue = 1u << 20;
    o->max_header_block = 16 * 1024;
}

/* ---- hub ------------------------------------------------------------------------------ */

gw_ws_hub *gw_ws_hub_new(gw_loop *l)
{
    gw_ws_hub *h = calloc(1, sizeof *h);
    if (h)
        h->loop = l;
    return h;
}

size_t gw_ws_hub_active(const gw_ws_hub *h) { return h ? h->active : 0; }

static void hub_link(gw_ws_hub *h, ws_sess *s)
{
    s->next = h->sessions;
    if (h->sessions)
        h->sessions->prev = s;
    h->sessions = s;
    s->linked = true;
    h->active++;
}

static void hub_unlink(ws_sess *s)
{
    if (!s->linked)
        return;
    gw_ws_hub *h = s->hub;
    if (s->prev)
        s->prev->next = s->next;
    else
        h->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->linked = false;
    h->active--;
}

/* ---- session teardown ------------------------------------------------------------------ */

static void sess_free(ws_sess *s)
{
    if (s->ctx)
        wslay_event_context_free(s->ctx);
    gw_buf_free(&s->inbox);
    gw_buf_free(&s->msg);
    gw_buf_free(&s->jout);
    free(s->hdr_mem);
    free(s->early);
    free(s);
}

static void on_reap(void *owner) { sess_free(owner); }

/* Ends the call's life on the face (client gone if it had not finished). */
static void call_close(ws_sess *s, bool completed)
{
    gw_call *c = s->call;
    if (!c)
        return;
    s->call = NULL;
    if (!gw_call_finished(c))
        gw_call_face_ops.on_client_gone(c);
    gw_call_face_ops.on_close(c, completed && gw_call_finished(c));
}

static void release_hold(ws_sess *s)
{
    if (s->release) {
        void (*rel)(void *) = s->release;
        s->release = NULL;
        rel(s->hold_ctx);
    }
}

/* Everything but the memory: the call, timers, watch, socket. */
static void sess_detach(ws_sess *s)
{
    s->phase = PH_DEAD;
    gw_loop_io_remove(s->loop, &s->io);
    gw_loop_timer_stop(s->loop, &s->timer);
    gw_loop_defer_cancel(s->loop, &s->pump_d);
    call_close(s, s->answered);
    release_hold(s);
    hub_unlink(s);
}

static void teardown(ws_sess *s)
{
    if (s->phase == PH_DEAD)
        return;
    sess_detach(s);
    if (s->u) {
        gw_front_upgraded *u = s->u;
        s->u = NULL;
        gw_front_upgraded_close(u);
    }
    gw_loop_defer(s->loop, &s->reap_d);
}

/* ---- socket I/O ------------------------------------------------------------------------- */

static void update_io(ws_sess *s)
{
    if (s->phase == PH_DEAD)
        return;
    uint32_t ev = GW_IO_RDHUP;
    if (s->draining_input ||
        (!s->paused && !s->stop_reading && wslay_event_want_read(s->ctx)))
        ev |= GW_IO_READ;
    if (wslay_event_want_write(s->ctx))
        ev |= GW_IO_WRITE;
    if (ev != s->io_events) {
        s->io_events = ev;
        gw_loop_io_modify(s->loop, &s->io, ev);
    }
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user)
{
    (void)flags;
    ws_sess *s = user;
    /* Stop for this turn after READ_PER_TURN bytes (the other sockets of the
     * loop get their turn; the level-triggered watch brings us back), and
     * while the client leaves pongs and data unread: wslay answers every
     * ping inside this call, so a flood read without a pause would grow
     * its send queue without bound before pump could look at it. */
    if (s->paused || s->stop_reading || s->turn_bytes >= READ_PER_TURN ||
        wslay_event_get_queued_msg_length(ctx) > s->o.max_send_queue) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (s->early_off < s->early_len) {
        size_t n = GW_MIN(len, s->early_len - s->early_off);
        memcpy(buf, s->early + s->early_off, n);
        s->early_off += n;
        return (ssize_t)n;
    }
    ssize_t r;
    do
        r = recv(s->fd, buf, len, 0);
    while (r < 0 && errno == EINTR);
    if (r > 0) {
        s->turn_bytes += (size_t)r;
        return r;
    }
    if (r == 0) {
        s->peer_eof = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    bool again = errno == EAGAIN || errno == EWOULDBLOCK;
    wslay_event_set_error(ctx, again ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    ws_sess *s = user;
    ssize_t r;
    do
        r = send(s->fd, data, len, MSG_NOSIGNAL | ((flags & WSLAY_MSG_MORE) ? MSG_MORE : 0));
    while (r < 0 && errno == EINTR);
    if (r >= 0) {
        if (r > 0)
            s->last_send_ns = gw_loop_now(s->loop);
        return r;
    }
    bool again = errno == EAGAIN || errno == EWOULDBLOCK;
    wslay_event_set_error(ctx, again ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static void arm(ws_sess *s);

static void schedule_pump(ws_sess *s)
{
    if (s->phase != PH_DEAD)
        gw_loop_defer(s->loop, &s->pump_d);
}

static int queue_bytes(ws_sess *s, uint8_t opcode, const uint8_t *p, size_t n)
{
    struct wslay_event_msg m = {.opcode = opcode, .msg = p, .msg_length = n};
    return wslay_event_queue_msg(s->ctx, &m) == 0 ? 0 : GW_ENOMEM;
}

/* Our close frame goes out once every data message before it has: wslay
 * sends control frames ahead of queued data and nothing after a close. */
static void queue_close_when_sent(ws_sess *s)
{
    if (s->close_queued || wslay_event_get_queued_msg_count(s->ctx) != 0)
        return;
    s->close_queued = true;
    if (!wslay_event_get_close_sent(s->ctx))
        wslay_event_queue_close(s->ctx, s->close_send_code, (const uint8_t *)s->close_reason,
                                strlen(s->close_reason));
}

/* Ends the session: the close frame follows what is queued; then the
 * reply is awaited (close_timeout_ms). */
static void begin_close(ws_sess *s, uint16_t code, const char *reason)
{
    if (s->phase == PH_CLOSING || s->phase == PH_DEAD)
        return;
    s->phase = PH_CLOSING;
    s->close_send_code = code;
    snprintf(s->close_reason, sizeof s->close_reason, "%s", reason ? reason : "");
    s->close_by_ns = gw_loop_now(s->loop) + (uint64_t)s->o.close_timeout_ms * GW_MS;
    gw_loop_timer_start(s->loop, &s->timer, s->close_by_ns);
    schedule_pump(s);
}

static uint16_t end_code(ws_sess *s)
{
    if (s->close_code)
        return s->close_code;
    return s->hub->draining ? WSLAY_CODE_GOING_AWAY : WSLAY_CODE_NORMAL_CLOSURE;
}

/* ---- the call's face ------------------------------------------------------------------ */

static const char *face_header(void *ctx, const char *name)
{
    ws_sess *s = ctx;
    for (size_t i = 0; i < s->nhdrs; i++)
        if (strcasecmp(s->hdrs[i].name, name) == 0)
            return s->hdrs[i].value;
    return NULL;
}

static void face_headers(void *ctx, bool (*fn)(void *, const char *, const char *), void *arg)
{
    ws_sess *s = ctx;
    for (size_t i = 0; i < s->nhdrs; i++)
        if (!fn(arg, s->hdrs[i].name, s->hdrs[i].value))
            return;
}

/* A head as a gRPC-Web header block (0x80) into b. */
static int head_frame(gw_buf *b, const gw_front_header *h, size_t n)
{
    size_t start;
    int rc = gw_grpcweb_trailer_begin(b, &start);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        rc = gw_grpcweb_trailer_add(b, h[i].name, strlen(h[i].name), h[i].value,
                                    strlen(h[i].value));
        if (rc && rc != GW_EINVAL)
            return rc;
    }
    gw_grpcweb_trailer_end(b, start);
    return 0;
}

/* JSON mode: the call's bytes are [4-byte length][JSON] messages; each
 * complete one becomes a text message. Returns the bytes used. */
static size_t json_out(ws_sess *s, const uint8_t *p, size_t n, int *rc)
{
    size_t off = 0;
    *rc = 0;
    while (n - off >= 4) {
        size_t len = (size_t)p[off] << 24 | (size_t)p[off + 1] << 16 |
                     (size_t)p[off + 2] << 8 | p[off + 3];
        if (n - off - 4 < len)
            break;
        *rc = queue_bytes(s, WSLAY_TEXT_FRAME, p + off + 4, len);
        if (*rc)
            break;
        off += 4 + len;
    }
    return off;
}

static int face_respond(void *ctx, int status, const gw_front_header *h, size_t n,
                        const void *body, size_t len)
{
    ws_sess *s = ctx;
    (void)status;
    if (s->answered || s->streaming || s->phase == PH_DEAD)
        return GW_ESTATE;
    if (s->json) {
        int rc;
        (void)json_out(s, body, len, &rc);
        if (rc)
            return rc;
        /* A headers-only answer (the call's bare INTERNAL or out-of-memory
         * fallback) has no JSON status message: a normal close would make
         * the call look finished, so it closes with 1011. */
        if (len == 0)
            s->close_code = WSLAY_CODE_INTERNAL_SERVER_ERROR;
        s->answered = true;
        schedule_pump(s);
        return 0;
    }
    gw_buf b;
    gw_buf_init(&b, 0);
    int rc = head_frame(&b, h, n);
    /* The header block is a message of its own: @improbable-eng/grpc-web's
     * parser stops at a header block and leaves what follows it in the same
     * message unread until the next one. */
    if (rc == 0)
        rc = queue_bytes(s, WSLAY_BINARY_FRAME, b.data, b.len);
    if (rc == 0 && len)
        rc = queue_bytes(s, WSLAY_BINARY_FRAME, body, len);
    gw_buf_free(&b);
    if (rc)
        return rc;
    s->answered = true;
    schedule_pump(s);
    return 0;
}

static int face_respond_stream(void *ctx, int status, const gw_front_header *h, size_t n)
{
    ws_sess *s = ctx;
    (void)status;
    if (s->answered || s->streaming || s->phase == PH_DEAD)
        return GW_ESTATE;
    if (s->json) {
        s->streaming = true;
        schedule_pump(s);
        return 0;
    }
    gw_buf b;
    gw_buf_init(&b, 0);
    int rc = head_frame(&b, h, n);
    if (rc == 0)
        rc = queue_bytes(s, WSLAY_BINARY_FRAME, b.data, b.len);
    gw_buf_free(&b);
    if (rc)
        return rc;
    s->streaming = true;
    schedule_pump(s);
    return 0;
}

static void face_wake(void *ctx) { schedule_pump(ctx); }

static void face_close_now(void *ctx)
{
    ws_sess *s = ctx;
    s->close_code = WSLAY_CODE_INTERNAL_SERVER_ERROR;
    s->answered = true;
    schedule_pump(s);
}

static const gw_call_face ws_face = {
    .header = face_header,
    .headers = face_headers,
    .respond = face_respond,
    .respond_stream = face_respond_stream,
    .wake = face_wake,
    .close_now = face_close_now,
};

/* ---- request side ------------------------------------------------------------------------ */

static void pause_reading(ws_sess *s)
{
    s->paused = true;
    update_io(s);
}

static void pump_response(ws_sess *s);
static void flush_status(ws_sess *s);

/* Ends the call with a status because of what the client sent; the close
 * frame that follows the status carries close_code. */
static void client_fault(ws_sess *s, int code, const char *msg, uint16_t close_code)
{
    s->close_code = close_code;
    s->stop_reading = true;
    /* wslay would go on with the frame's bytes it already holds and could
     * queue a close of its own (UTF-8, size), which it sends before our
     * status. */
    wslay_event_shutdown_read(s->ctx);
    if (s->call)
        gw_call_face_fail(s->call, code, msg);
    flush_status(s);
}

/*
 * Writes a status just answered at once, from inside wslay_event_recv: a
 * close that wslay queues itself for the rest of the frame (invalid UTF-8)
 * would otherwise go out first, since wslay sends control frames ahead of
 * queued data and nothing after a close. A data message already started on
 * the socket is always finished before a control frame.
 */
static void flush_status(ws_sess *s)
{
    pump_response(s);
    if (wslay_event_want_write(s->ctx))
        (void)wslay_event_send(s->ctx);
    schedule_pump(s);
}

static void feed(ws_sess *s, const uint8_t *p, size_t n)
{
    if (!s->call || s->send_done)
        return;
    if (s->json) {
        /* Whole messages: what waits is kept with its length. */
        if (s->inbox.len == 0 && gw_call_face_ops.on_body(s->call, p, n) >= n)
            return;
        uint8_t h[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
        if (gw_buf_append(&s->inbox, h, 4) != 0 || gw_buf_append(&s->inbox, p, n) != 0) {
            client_fault(s, GW_CODE_RESOURCE_EXHAUSTED, "request messages beyond the buffer limit",
                         WSLAY_CODE_POLICY_VIOLATION);
            return;
        }
        pause_reading(s);
        return;
    }
    if (s->inbox.len == 0) {
        size_t took = gw_call_face_ops.on_body(s->call, p, n);
        if (took >= n)
            return;
        p += took;
        n -= took;
    }
    if (gw_buf_append(&s->inbox, p, n) != 0) {
        client_fault(s, GW_CODE_RESOURCE_EXHAUSTED, "request bytes beyond the buffer limit",
                     WSLAY_CODE_POLICY_VIOLATION);
        return;
    }
    pause_reading(s);
}

static int copy_headers(ws_sess *s, const gw_wsproto_header *h, size_t n)
{
    size_t need = 0;
    for (size_t i = 0; i < n; i++)
        need += h[i].name_len + h[i].value_len + 2;
    s->hdr_mem = malloc(need ? need : 1);
    if (!s->hdr_mem)
        return GW_ENOMEM;
    char *p = s->hdr_mem;
    for (size_t i = 0; i < n; i++) {
        s->hdrs[i].name = p;
        for (size_t k = 0; k < h[i].name_len; k++) {
            char c = h[i].name[k];
            *p++ = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
        }
        *p++ = 0;
        s->hdrs[i].value = p;
        memcpy(p, h[i].value, h[i].value_len);
        p += h[i].value_len;
        *p++ = 0;
    }
    s->nhdrs = n;
    return 0;
}

static const gw_call_adapter *adapter_of(const ws_sess *s)
{
    return s->json ? &gw_call_wsjson : &gw_call_grpcws;
}

static const void *adapter_arg(const ws_sess *s)
{
    return s->json ? (const void *)s->rest : NULL;
}

/* The call starts: after the header block (grpc-websockets) or at once
 * (JSON, metadata from the handshake's headers). */
static void start_call(ws_sess *s)
{
    s->phase = PH_CALL;
    const void *arg = adapter_arg(s);
    if (!s->method) {
        char msg[300];
        snprintf(msg, sizeof msg, "unknown method %.256s", s->path);
        s->stop_reading = true;
        gw_call_reject_face(&ws_face, s, s->loop, s->co, adapter_of(s), arg,
                            GW_CODE_UNIMPLEMENTED, msg);
        schedule_pump(s);
        return;
    }
    gw_call *c = NULL;
    if (gw_call_start_face(&ws_face, s, s->loop, s->co, NULL, s->method, adapter_of(s), arg,
                           &c) != 0) {
        s->stop_reading = true;
        schedule_pump(s);
        return;
    }
    s->call = c;
}

/* The first message: the header block, then the call starts. */
static void on_header_block(ws_sess *s, const uint8_t *p, size_t n)
{
    gw_wsproto_header h[MAX_HEADERS];
    size_t count = 0;
    gw_error e;
    gw_error_clear(&e);
    int rc = n > s->o.max_header_block
                 ? gw_error_set(&e, GW_ELIMIT, "header block of %zu bytes exceeds %zu", n,
                                s->o.max_header_block)
                 : gw_wsproto_parse_headers(p, n, h, MAX_HEADERS, &count, &e);
    if (rc == 0)
        rc = copy_headers(s, h, count);
    s->phase = PH_CALL;
    if (rc) {
        s->stop_reading = true;
        gw_call_reject_face(&ws_face, s, s->loop, s->co, adapter_of(s), adapter_arg(s),
                            gw_call_code_for_err(rc), e.msg[0] ? e.msg : gw_err_str(rc));
        schedule_pump(s);
        return;
    }
    start_call(s);
}

static void on_data_message(ws_sess *s, uint8_t opcode, const uint8_t *p, size_t n)
{
    s->last_msg_ns = gw_loop_now(s->loop);
    if (opcode == WSLAY_TEXT_FRAME && !gw_utf8_valid(p, n)) {
        if (s->phase == PH_HEADERS) {
            s->phase = PH_CALL;
            s->close_code = WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA;
            s->stop_reading = true;
            gw_call_reject_face(&ws_face, s, s->loop, s->co, adapter_of(s), adapter_arg(s),
                                GW_CODE_INVALID_ARGUMENT, "invalid UTF-8 in a text frame");
            schedule_pump(s);
            return;
        }
        client_fault(s, GW_CODE_INVALID_ARGUMENT, "invalid UTF-8 in a text frame",
                     WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA);
        return;
    }
    if (s->phase == PH_HEADERS) {
        on_header_block(s, p, n);
        return;
    }
    if (s->phase != PH_CALL || !s->call || s->stop_reading)
        return;
    if (s->json) {
        if (s->finish_pending || s->send_done) {
            client_fault(s, GW_CODE_INVALID_ARGUMENT,
                         "a message after the client finished sending (an empty text message)",
                         WSLAY_CODE_PROTOCOL_ERROR);
            return;
        }
        if (n == 0) {
            s->finish_pending = true;
            schedule_pump(s);
            return;
        }
        feed(s, p, n);
        return;
    }
    if (opcode != WSLAY_BINARY_FRAME) {
        client_fault(s, GW_CODE_INVALID_ARGUMENT,
                     "grpc-websockets: a text message after the header block",
                     WSLAY_CODE_UNSUPPORTED_DATA);
        return;
    }
    int kind;
    const uint8_t *data;
    size_t len;
    gw_error e;
    gw_error_clear(&e);
    if (gw_wsproto_client_message(p, n, &kind, &data, &len, &e) != 0) {
        client_fault(s, GW_CODE_INVALID_ARGUMENT, e.msg, WSLAY_CODE_PROTOCOL_ERROR);
        return;
    }
    if (s->finish_pending || s->send_done) {
        client_fault(s, GW_CODE_INVALID_ARGUMENT,
                     "grpc-websockets: a message after the client finished sending",
                     WSLAY_CODE_PROTOCOL_ERROR);
        return;
    }
    if (kind == GW_WSPROTO_FINISH) {
        s->finish_pending = true;
        schedule_pump(s);
        return;
    }
    if (len)
        feed(s, data, len);
}

static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
    (void)ctx;
    ws_sess *s = user;
    s->in_ctrl = (arg->opcode & 0x8u) != 0;
    if (s->in_ctrl)
        return; /* control frames: wslay buffers and bounds them (125 bytes) */
    s->frame_fin = arg->fin;
    if (arg->opcode != WSLAY_CONTINUATION_FRAME) {
        s->msg_bytes = 0;
        s->msg_op = arg->opcode;
        gw_buf_reset(&s->msg);
    }
    s->msg_bytes += arg->payload_length;
    if (s->stop_reading)
        return;
    if (s->phase == PH_CALL && s->msg_op == (s->json ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME)) {
        /* Refused at its start, before its bytes are read. */
        client_fault(s, GW_CODE_INVALID_ARGUMENT,
                     s->json ? "a binary message on a JSON WebSocket (send text)"
                             : "grpc-websockets: a text message after the header block",
                     WSLAY_CODE_UNSUPPORTED_DATA);
        return;
    }
    /* A data message carries one control byte and gRPC frames of at most
     * max_message bytes each (5-byte headers). */
    uint64_t limit = s->phase == PH_HEADERS ? s->o.max_header_block
                                            : (uint64_t)s->co->max_message + 6;
    if (s->msg_bytes <= limit || s->stop_reading)
        return;
    char msg[128];
    snprintf(msg, sizeof msg, "WebSocket message exceeds the limit of %llu bytes",
             (unsigned long long)limit);
    if (s->phase == PH_HEADERS) {
        s->phase = PH_CALL;
        s->close_code = WSLAY_CODE_MESSAGE_TOO_BIG;
        s->stop_reading = true;
        wslay_event_shutdown_read(s->ctx);
        gw_call_reject_face(&ws_face, s, s->loop, s->co, adapter_of(s), adapter_arg(s),
                            GW_CODE_RESOURCE_EXHAUSTED, msg);
        flush_status(s);
        return;
    }
    client_fault(s, GW_CODE_RESOURCE_EXHAUSTED, msg, WSLAY_CODE_MESSAGE_TOO_BIG);
}

static void on_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
    (void)ctx;
    ws_sess *s = user;
    if (s->stop_reading || s->in_ctrl)
        return;
    /* Bounded: on_frame_start ended any message over the limit. */
    if (gw_buf_append(&s->msg, arg->data, arg->data_length) != 0)
        client_fault(s, GW_CODE_RESOURCE_EXHAUSTED, "out of memory for a message",
                     WSLAY_CODE_MESSAGE_TOO_BIG);
}

static void on_frame_end(wslay_event_context_ptr ctx, void *user)
{
    (void)ctx;
    ws_sess *s = user;
    if (s->stop_reading || s->in_ctrl || !s->frame_fin)
        return;
    s->awaiting_pong = false;
    on_data_message(s, s->msg_op, s->msg.data ? s->msg.data : (const uint8_t *)"", s->msg.len);
    gw_buf_reset(&s->msg);
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    ws_sess *s = user;
    s->awaiting_pong = false;
    switch (arg->opcode) {
    case WSLAY_CONNECTION_CLOSE:
        /* wslay queues the reply; a call still running lost its client. */
        if (s->call && !gw_call_finished(s->call)) {
            gw_call *c = s->call;
            gw_call_face_ops.on_client_gone(c);
        }
        if (s->phase != PH_CLOSING) {
            s->phase = PH_CLOSING;
            s->close_by_ns = gw_loop_now(s->loop) + (uint64_t)s->o.close_timeout_ms * GW_MS;
            gw_loop_timer_start(s->loop, &s->timer, s->close_by_ns);
        }
        schedule_pump(s);
        return;
    case WSLAY_PING:
    case WSLAY_PONG:
        /* wslay answers pings itself; a client that sends them faster than
         * it reads the pongs fills the queue and is closed in pump. */
        schedule_pump(s);
        return;
    default: /* data messages: on_frame_end */
        (void)ctx;
        return;
    }
}

/* ---- the pump: both directions, after every event ------------------------------------- */

static void pump_request(ws_sess *s)
{
    if (!s->call || s->send_done)
        return;
    while (s->json && s->inbox.len >= 4 && s->call) {
        const uint8_t *q = s->inbox.data;
        size_t len = (size_t)q[0] << 24 | (size_t)q[1] << 16 | (size_t)q[2] << 8 | q[3];
        if (gw_call_face_ops.on_body(s->call, q + 4, len) == 0)
            return;
        gw_buf_consume(&s->inbox, 4 + len);
    }
    while (!s->json && s->inbox.len && s->call) {
        size_t took = gw_call_face_ops.on_body(s->call, s->inbox.data, s->inbox.len);
        if (took == 0)
            return;
        if (took > s->inbox.len)
            took = s->inbox.len;
        gw_buf_consume(&s->inbox, took);
    }
    if (s->inbox.len)
        return;
    if (s->finish_pending && s->call) {
        s->finish_pending = false;
        s->send_done = true;
        gw_call_face_ops.on_body_end(s->call);
    }
    if (s->paused) {
        s->paused = false;
        update_io(s);
    }
}

static void pump_response(ws_sess *s)
{
    if (s->phase != PH_CALL)
        return;
    s->out_held = false;
    while (s->call && s->streaming && !s->answered) {
        if (wslay_event_get_queued_msg_length(s->ctx) >= GW_WS_SEND_HIGH) {
            /* The call may hold more than the queue takes (up to the
             * backend's stream window): nothing wakes us for it, so pump
             * comes back once the queue is under the mark again. */
            s->out_held = true;
            break;
        }
        long n = gw_call_face_ops.read(s->call, s->readbuf, sizeof s->readbuf);
        if (n > 0 && s->json) {
            s->last_msg_ns = gw_loop_now(s->loop);
            int rc = gw_buf_append(&s->jout, s->readbuf, (size_t)n);
            size_t used = rc ? 0 : json_out(s, s->jout.data, s->jout.len, &rc);
            if (rc) {
                s->close_code = WSLAY_CODE_INTERNAL_SERVER_ERROR;
                s->answered = true;
                continue;
            }
            gw_buf_consume(&s->jout, used);
            continue;
        }
        if (n > 0) {
            s->last_msg_ns = gw_loop_now(s->loop);
            if (queue_bytes(s, WSLAY_BINARY_FRAME, s->readbuf, (size_t)n) != 0) {
                s->close_code = WSLAY_CODE_INTERNAL_SERVER_ERROR;
                s->answered = true;
            }
            continue;
        }
        if (n == 0)
            break;
        if (n == GW_FRONT_ABORT)
            s->close_code = WSLAY_CODE_INTERNAL_SERVER_ERROR;
        s->answered = true;
    }
    if (s->answered || (!s->call && s->phase == PH_CALL))
        begin_close(s, end_code(s), NULL);
}

static void pump(void *owner)
{
    ws_sess *s = owner;
    if (s->phase == PH_DEAD)
        return;
    pump_request(s);
    pump_response(s);
    if (s->phase == PH_DEAD)
        return;
    if (s->phase == PH_CLOSING)
        queue_close_when_sent(s);
    if (wslay_event_get_queued_msg_length(s->ctx) > s->o.max_send_queue) {
        GW_DEBUG("ws %s: the client does not read (%zu bytes queued): closing", s->path,
                 wslay_event_get_queued_msg_length(s->ctx));
        teardown(s);
        return;
    }
    if (wslay_event_want_write(s->ctx) && wslay_event_send(s->ctx) != 0) {
        teardown(s);
        return;
    }
    if (s->phase == PH_CLOSING && !s->close_queued) {
        queue_close_when_sent(s);
        if (s->close_queued && wslay_event_want_write(s->ctx) &&
            wslay_event_send(s->ctx) != 0) {
            teardown(s);
            return;
        }
    }
    if (s->phase == PH_CLOSING && wslay_event_get_close_sent(s->ctx) &&
        !wslay_event_want_write(s->ctx)) {
        if (wslay_event_get_close_received(s->ctx) || s->peer_eof) {
            teardown(s);
            return;
        }
        if (s->stop_reading && !s->draining_input) {
            /* Our close (after a status) is out, but what the client sent
             * after the fault is unread: stop writing and drop its bytes
             * until it closes, so that closing the socket with unread
             * bytes (an RST) cannot destroy the status on its way. */
            s->draining_input = true;
            shutdown(s->fd, SHUT_WR);
        }
    }
    /* The socket took the whole queue while the call still holds output:
     * no write event will come for it, so pull again next turn (not at
     * once: the other sockets of the loop get theirs). */
    if (s->out_held && s->phase == PH_CALL &&
        wslay_event_get_queued_msg_length(s->ctx) < GW_WS_SEND_HIGH)
        schedule_pump(s);
    update_io(s);
    if (!gw_timer_armed(&s->timer))
        arm(s);
}

/* After a fault: read and drop until the client closes (bounded). */
static void drain_input(ws_sess *s)
{
    for (;;) {
        ssize_t r = recv(s->fd, s->readbuf, sizeof s->readbuf, 0);
        if (r > 0) {
            s->discarded += (size_t)r;
            if (s->discarded > (4u << 20)) {
                teardown(s);
                return;
            }
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        teardown(s);
        return;
    }
}

static void on_io(void *owner, uint32_t events)
{
    ws_sess *s = owner;
    if (s->phase == PH_DEAD)
        return;
    if (s->draining_input) {
        drain_input(s);
        return;
    }
    s->turn_bytes = 0;
    if (events & (GW_IO_READ | GW_IO_ERROR | GW_IO_RDHUP)) {
        if (!(s->io_events & GW_IO_READ) && !(events & GW_IO_READ)) {
            /* Gone while we were not reading: nothing will drain it. */
            teardown(s);
            return;
        }
        if (wslay_event_recv(s->ctx) != 0 || s->peer_eof) {
            if (s->phase == PH_CLOSING && wslay_event_get_close_received(s->ctx)) {
                pump(s);
                if (s->phase != PH_DEAD)
                    teardown(s);
                return;
            }
            teardown(s); /* the client left: its call is cancelled */
            return;
        }
        if (s->phase == PH_DEAD)
            return;
        if (!wslay_event_get_read_enabled(s->ctx) && !wslay_event_get_close_received(s->ctx) &&
            !s->stop_reading && s->phase != PH_CLOSING) {
            /* wslay found a frame breaking RFC 6455 (unmasked, reserved
             * bits, bad opcode) and queued a 1002 close: the call ends. */
            if (s->call && !gw_call_finished(s->call))
                gw_call_face_ops.on_client_gone(s->call);
            s->phase = PH_CLOSING;
            s->close_queued = true;
            s->close_by_ns = gw_loop_now(s->loop) + (uint64_t)s->o.close_timeout_ms * GW_MS;
            gw_loop_timer_start(s->loop, &s->timer, s->close_by_ns);
        }
    }
    if (events & GW_IO_WRITE) {
        if (wslay_event_send(s->ctx) != 0) {
            teardown(s);
            return;
        }
    }
    pump(s);
}

/* ---- timers ------------------------------------------------------------------------------ */

static void arm(ws_sess *s)
{
    if (s->phase == PH_DEAD || s->phase == PH_CLOSING)
        return;
    uint64_t now = gw_loop_now(s->loop), next = UINT64_MAX;
    if (s->phase == PH_HEADERS)
        next = s->start_ns + (uint64_t)s->o.header_timeout_ms * GW_MS;
    if (s->o.ping_interval_ms)
        next = GW_MIN(next, s->awaiting_pong
                                ? s->ping_sent_ns + (uint64_t)s->o.pong_timeout_ms * GW_MS
                                : s->last_ping_ns + (uint64_t)s->o.ping_interval_ms * GW_MS);
    if (s->o.idle_timeout_ms && s->phase == PH_CALL)
        next = GW_MIN(next, s->last_msg_ns + (uint64_t)s->o.idle_timeout_ms * GW_MS);
    if (s->o.send_timeout_ms && wslay_event_get_queued_msg_length(s->ctx))
        next = GW_MIN(next, s->last_send_ns + (uint64_t)s->o.send_timeout_ms * GW_MS);
    if (next == UINT64_MAX)
        return;
    if (next <= now)
        next = now + GW_MS;
    gw_loop_timer_start(s->loop, &s->timer, next);
}

static void on_timer(void *owner)
{
    ws_sess *s = owner;
    uint64_t now = gw_loop_now(s->loop);
    if (s->phase == PH_DEAD)
        return;
    if (s->phase == PH_CLOSING) {
        if (now >= s->close_by_ns)
            teardown(s);
        else
            gw_loop_timer_start(s->loop, &s->timer, s->close_by_ns);
        return;
    }
    if (s->phase == PH_HEADERS && now >= s->start_ns + (uint64_t)s->o.header_timeout_ms * GW_MS) {
        begin_close(s, WSLAY_CODE_POLICY_VIOLATION, "no header block in time");
        return;
    }
    if (s->o.send_timeout_ms && wslay_event_get_queued_msg_length(s->ctx) &&
        now >= s->last_send_ns + (uint64_t)s->o.send_timeout_ms * GW_MS) {
        GW_DEBUG("ws %s: nothing sent for %u ms: closing", s->path, s->o.send_timeout_ms);
        teardown(s);
        return;
    }
    if (s->o.ping_interval_ms && s->awaiting_pong &&
        now >= s->ping_sent_ns + (uint64_t)s->o.pong_timeout_ms * GW_MS) {
        GW_DEBUG("ws %s: no pong in %u ms: closing", s->path, s->o.pong_timeout_ms);
        teardown(s);
        return;
    }
    if (s->o.idle_timeout_ms && s->phase == PH_CALL &&
        now >= s->last_msg_ns + (uint64_t)s->o.idle_timeout_ms * GW_MS) {
        s->last_msg_ns = now;
        if (s->call) {
            char msg[96];
            snprintf(msg, sizeof msg, "WebSocket idle for %u ms", s->o.idle_timeout_ms);
            gw_call_face_fail(s->call, GW_CODE_UNAVAILABLE, msg);
        }
        schedule_pump(s);
    }
    if (s->o.ping_interval_ms && !s->awaiting_pong &&
        now >= s->last_ping_ns + (uint64_t)s->o.ping_interval_ms * GW_MS) {
        struct wslay_event_msg m = {.opcode = WSLAY_PING, .msg = NULL, .msg_length = 0};
        if (wslay_event_queue_msg(s->ctx, &m) == 0) {
            s->awaiting_pong = true;
            s->ping_sent_ns = now;
            s->last_ping_ns = now;
            schedule_pump(s);
        }
    }
    arm(s);
}

/* ---- upgrade hand-over ------------------------------------------------------------------- */

static void up_on_upgraded(void *owner, gw_front_upgraded *u, int fd, const uint8_t *extra,
                           size_t extra_len)
{
    ws_sess *s = owner;
    s->u = u;
    s->fd = fd;
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .on_frame_recv_start_callback = on_frame_start,
        .on_frame_recv_chunk_callback = on_frame_chunk,
        .on_frame_recv_end_callback = on_frame_end,
        .on_msg_recv_callback = on_msg,
    };
    uint64_t now = gw_loop_now(s->loop);
    s->start_ns = s->last_msg_ns = s->last_ping_ns = s->last_send_ns = now;
    if (wslay_event_context_server_init(&s->ctx, &cbs, s) != 0) {
        s->ctx = NULL;
        teardown(s);
        return;
    }
    wslay_event_config_set_no_buffering(s->ctx, 1);
    s->io_events = GW_IO_READ | GW_IO_RDHUP;
    if (gw_loop_io_add(s->loop, &s->io, fd, s->io_events, on_io, s) != 0) {
        teardown(s);
        return;
    }
    if (s->json) {
        start_call(s);
        schedule_pump(s);
    }
    arm(s);
    if (extra_len) {
        /* Frames the client sent right behind its request head: recv_cb
         * hands them to wslay before anything from the socket. */
        s->early = malloc(extra_len);
        if (!s->early) {
            teardown(s);
            return;
        }
        memcpy(s->early, extra, extra_len);
        s->early_len = extra_len;
        on_io(s, GW_IO_READ);
    }
}

static void up_on_failed(void *owner)
{
    ws_sess *s = owner;
    s->phase = PH_DEAD;
    release_hold(s);
    hub_unlink(s);
    sess_free(s);
}

static void up_on_shutdown(void *owner)
{
    ws_sess *s = owner;
    s->u = NULL; /* the front closes it */
    sess_detach(s);
    gw_loop_defer_cancel(s->loop, &s->reap_d);
    sess_free(s);
}

static const gw_front_upgrade_ops up_ops = {
    .on_upgraded = up_on_upgraded,
    .on_failed = up_on_failed,
    .on_shutdown = up_on_shutdown,
};

/* JSON mode: the handshake's headers are the call's (metadata, grpc-timeout;
 * the call leaves out those about HTTP and the WebSocket itself). */
typedef struct hdr_copy {
    ws_sess *s;
    gw_buf names;
    size_t n;
    int rc;
} hdr_copy;

static bool count_header(void *ctx, const char *name, const char *value)
{
    hdr_copy *h = ctx;
    if (h->n == MAX_HEADERS)
        return false;
    h->n++;
    if (gw_buf_append(&h->names, name, strlen(name) + 1) != 0 ||
        gw_buf_append(&h->names, value, strlen(value) + 1) != 0) {
        h->rc = GW_ENOMEM;
        return false;
    }
    return true;
}

static int copy_req_headers(ws_sess *s, gw_front_req *r)
{
    hdr_copy h = {.s = s};
    gw_buf_init(&h.names, 1u << 20);
    gw_front_req_headers(r, count_header, &h);
    if (h.rc) {
        gw_buf_free(&h.names);
        return h.rc;
    }
    size_t len;
    s->hdr_mem = h.names.data ? (char *)gw_buf_detach(&h.names, &len) : NULL;
    char *p = s->hdr_mem;
    for (size_t i = 0; i < h.n; i++) {
        for (char *q = p; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q + ('a' - 'A'));
        s->hdrs[i].name = p;
        p += strlen(p) + 1;
        s->hdrs[i].value = p;
        p += strlen(p) + 1;
    }
    s->nhdrs = h.n;
    return 0;
}

/* ---- handshake ----------------------------------------------------------------------------- */

bool gw_ws_is_upgrade(gw_front_req *r)
{
    return gw_wsproto_token_listed(gw_front_req_header(r, "Upgrade"), "websocket");
}

static int refuse(gw_front_req *r, int status, const char *text, int err)
{
    gw_front_header h[] = {{"Content-Type", "text/plain; charset=utf-8"},
                           {"Sec-WebSocket-Version", "13"}};
    gw_front_req_respond(r, status, h, status == 426 ? 2 : 1, text, strlen(text));
    return err;
}

int gw_ws_accept(gw_ws_hub *h, gw_front_req *r, const gw_ws_params *p)
{
    if (strcmp(gw_front_req_method(r), "GET") != 0)
        return refuse(r, 400, "a WebSocket handshake is a GET request\n", GW_EINVAL);
    if (!p->origin_ok)
        return refuse(r, 403, "WebSocket: origin not allowed\n", GW_EINVAL);
    if (!gw_wsproto_token_listed(gw_front_req_header(r, "Connection"), "upgrade"))
        return refuse(r, 400, "WebSocket: 'Connection: Upgrade' is missing\n", GW_EINVAL);
    const char *ver = gw_front_req_header(r, "Sec-WebSocket-Version");
    if (!ver || strcmp(ver, "13") != 0)
        return refuse(r, 426, "WebSocket: only version 13 is supported\n", GW_EINVAL);
    const char *key = gw_front_req_header(r, "Sec-WebSocket-Key");
    if (!gw_wsproto_key_ok(key))
        return refuse(r, 400, "WebSocket: missing or malformed Sec-WebSocket-Key\n", GW_EINVAL);
    const char *proto = gw_front_req_header(r, "Sec-WebSocket-Protocol");
    bool json = !proto;
    if (!json && !gw_wsproto_token_listed(proto, GW_WSPROTO_GRPC))
        return refuse(r, 400,
                      "WebSocket: no supported subprotocol (offer grpc-websockets, or none "
                      "for JSON)\n",
                      GW_EINVAL);
    ws_sess *s = calloc(1, sizeof *s);
    if (!s)
        return refuse(r, 503, "out of memory\n", GW_ENOMEM);
    s->hub = h;
    s->loop = h->loop;
    s->o = *p->ws;
    s->co = p->call;
    s->json = json;
    s->rest = p->rest;
    s->method = json ? p->json_method : p->method;
    snprintf(s->path, sizeof s->path, "%s", gw_front_req_path(r));
    s->fd = -1;
    s->phase = PH_HEADERS;
    gw_buf_init(&s->inbox, p->call->max_message + 64 * 1024);
    gw_buf_init(&s->msg, GW_MAX(p->call->max_message + 6, p->ws->max_header_block));
    gw_timer_init(&s->timer, on_timer, s);
    gw_defer_init(&s->pump_d, pump, s);
    gw_defer_init(&s->reap_d, on_reap, s);
    char accept[29];
    gw_wsproto_accept(key, accept);
    gw_front_header hh[] = {{"Sec-WebSocket-Accept", accept},
                            {"Sec-WebSocket-Protocol", GW_WSPROTO_GRPC}};
    gw_buf_init(&s->jout, p->call->max_output + p->call->max_message + 64 * 1024);
    int rc = json ? copy_req_headers(s, r) : 0;
    if (rc == 0)
        rc = gw_front_req_upgrade(r, "websocket", hh, json ? 1 : 2, &up_ops, s);
    if (rc) {
        sess_free(s);
        return refuse(r, 503, "out of memory\n", rc);
    }
    if (p->hold)
        p->hold(p->hold_ctx);
    s->release = p->release;
    s->hold_ctx = p->hold_ctx;
    hub_link(h, s);
    return 0;
}

/* ---- drain ---------------------------------------------------------------------------------- */

void gw_ws_hub_drain(gw_ws_hub *h)
{
    h->draining = true;
    for (ws_sess *s = h->sessions, *n; s; s = n) {
        n = s->next;
        if (s->u && s->phase == PH_HEADERS)
            begin_close(s, WSLAY_CODE_GOING_AWAY, "server shutting down");
    }
}

void gw_ws_hub_cancel_all(gw_ws_hub *h)
{
    h->draining = true;
    for (ws_sess *s = h->sessions, *n; s; s = n) {
        n = s->next;
        if (!s->u)
            continue; /* not upgraded yet: the front ends it */
        if (s->call)
            gw_call_face_fail(s->call, GW_CODE_UNAVAILABLE, "server shutting down");
        s->close_code = WSLAY_CODE_GOING_AWAY;
        pump_response(s);
        begin_close(s, WSLAY_CODE_GOING_AWAY, "server shutting down");
        if (s->phase != PH_DEAD && wslay_event_want_write(s->ctx))
            (void)wslay_event_send(s->ctx);
        if (s->phase != PH_DEAD) {
            queue_close_when_sent(s);
            if (wslay_event_want_write(s->ctx))
                (void)wslay_event_send(s->ctx);
        }
        teardown(s);
    }
}

void gw_ws_hub_del(gw_ws_hub *h)
{
    if (!h)
        return;
    /* The front's deletion shut every upgraded session down; what is left
     * never got its 101 and is freed by the front's on_failed. */
    free(h);
}
