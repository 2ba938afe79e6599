/*
 * The REST/JSON protocol adapter: drives src/route and src/rest (pure) from
 * the call's events. The call order is the one in docs/rest.md ("For the
 * protocol adapter").
 *
 * Unary and server-streaming requests buffer the body (bounded by
 * max_body) and build the request message at the end of the body: path,
 * query and body all feed one message. Client-streaming bodies go through
 * the NDJSON splitter and each message is framed as soon as it is complete.
 *
 * The response head is held back (unary always, streams until the first
 * message: GW_CALL_HOLD_STREAM_HEAD) because the HTTP status depends on the
 * gRPC status and, for HttpBody, the Content-Type on the message.
 *
 * Failures the request side finds carry an HTTP status of their own (405,
 * 413, 415 cannot be derived from a gRPC code): they are kept in the state
 * and answered as they are.
 */
#include <stdio.h>
#include <string.h>

#include "call/call.h"
#include "codec/codec.h"
#include "grpcweb/grpcweb.h"

#define REST_MAX_HEADERS 128

typedef struct rest_arg {
    const gw_call_rest_config *cfg;
    const gw_route_match *match;
    const char *query;   /* after '?', or NULL; borrowed from the request */
    size_t query_len;
} rest_arg;

typedef struct rest_state {
    const gw_rest_options *ro;
    gw_route_match match;        /* binding values copied into the call arena */
    const char *query;
    size_t query_len;
    const char *content_type;    /* request header, borrowed from the front */
    gw_rest_print print;
    gw_rest_stream_format fmt;
    bool client_stream;
    bool server_stream;
    bool raw_stream;             /* server stream of google.api.HttpBody: raw
                                    chunks, no NDJSON/SSE envelope */
    gw_buf body;                 /* unary / server streaming: the whole body */
    gw_json_splitter split;      /* client streaming */
    bool split_init;
    bool have_message;           /* unary: a response message is in out */
    char ct[128];                /* unary: the response's Content-Type */
    gw_rest_status rst;          /* a failure found by this adapter */
    bool rst_set;
} rest_state;

/* ---- request side ------------------------------------------------------------------- */

typedef struct hdr_ctx {
    gw_rest_header *h;
    size_t n;
    bool overflow;  /* more than REST_MAX_HEADERS: refused, never cut short */
} hdr_ctx;

static bool collect_header(void *ctx, const char *name, const char *value)
{
    hdr_ctx *hc = ctx;
    if (hc->n == REST_MAX_HEADERS) {
        hc->overflow = true;
        return false;
    }
    hc->h[hc->n++] = (gw_rest_header){name, value};
    return true;
}

static int add_md(void *ctx, const char *key, const char *value)
{
    return gw_call_add_metadata(ctx, key, value);
}

/* Keeps a request-side status and turns it into the call's error. */
static int rest_fail(rest_state *s, int rc, const gw_rest_status *st, gw_error *e)
{
    s->rst = *st;
    s->rst_set = true;
    return gw_error_set(e, rc, "%s", st->message);
}

/* The JSON text of one request message at the message limit (the smaller
 * of limits.max_message_bytes and rest.max_message_bytes). */
static size_t json_one(const gw_call_options *o, const gw_rest_options *ro)
{
    return gw_call_envelope_len(GW_MIN(o->max_message, ro->max_message),
                                GW_CALL_ENVELOPE_JSON);
}

static int rest_init(gw_call *c, gw_front_req *r, const void *arg, gw_error *e)
{
    rest_state *s = gw_call_adapter_state(c);
    const rest_arg *a = arg;
    const gw_call_options *o = gw_call_opts(c);
    gw_arena *ar = gw_call_arena(c);
    s->ro = a->cfg->rest;
    gw_call_set_envelope(c, json_one(o, s->ro));
    gw_buf_init(&s->body, gw_call_body_limit(o, json_one(o, s->ro)));
    if (!a->match) /* gw_call_reject: only the error form is needed */
        return 0;
    s->match = *a->match;
    for (size_t i = 0; i < s->match.binding_count; i++) {
        gw_route_binding *b = &s->match.bindings[i];
        char *v = gw_arena_strndup(ar, b->value, b->len);
        if (!v)
            return gw_error_set(e, GW_ENOMEM, "out of memory");
        b->value = v;
    }
    s->query = a->query;
    s->query_len = a->query_len;
    const gw_method_def *m = gw_call_method(c);
    s->client_stream = m->client_streaming;
    s->server_stream = m->server_streaming;
    s->raw_stream = s->server_stream && gw_rest_route_returns_http_body(s->match.route);
    s->fmt = gw_rest_stream_format_from_accept(gw_front_req_header(r, "Accept"));
    s->content_type = gw_front_req_header(r, "Content-Type");

    gw_rest_status st;
    gw_rest_status_clear(&st);
    int rc = gw_rest_check_content_type(s->ro, s->match.route, s->content_type, &st);
    if (rc)
        return rest_fail(s, rc, &st, e);

    /* On the stack: the names and values stay the front's, and an arena
     * block of this size would be a malloc per request. */
    gw_rest_header hs[REST_MAX_HEADERS];
    hdr_ctx hc = {hs, 0, false};
    gw_front_req_headers(r, collect_header, &hc);
    if (hc.overflow) {
        /* Only reachable when the front's max_header_count is raised past
         * it; dropping headers silently could drop the one that matters. */
        st.code = GW_CODE_RESOURCE_EXHAUSTED;
        st.http_status = 431;
        snprintf(st.message, sizeof st.message, "more than %d request header fields",
                 REST_MAX_HEADERS);
        return rest_fail(s, GW_ELIMIT, &st, e);
    }
    char peer[64];
    gw_front_req_peer(r, peer, sizeof peer);
    /* The rest module checks Grpc-Timeout (a REST-form 400 when malformed);
     * the deadline itself comes from the call's own parse in gw_call_start,
     * the same for every protocol, so this value is not used. */
    int64_t timeout_ns = -1;
    rc = gw_rest_request_metadata(s->ro, hs, hc.n, peer[0] ? peer : NULL, add_md, c,
                                  &timeout_ns, &st);
    if (rc == GW_ELIMIT)
        return gw_error_set(e, rc, "more than %zu metadata entries", o->max_metadata);
    if (rc == GW_ENOMEM)
        return gw_error_set(e, rc, "out of memory");
    if (rc)
        return rest_fail(s, rc, &st, e);
    if (s->client_stream) {
        gw_json_splitter_init(&s->split, json_one(o, s->ro));
        s->split_init = true;
        /* The query binds no field of a stream of messages, but ?pretty
         * still shapes the one answer (gw_rest_build_request reads it for
         * the other kinds of call). */
        gw_rest_parse_print(s->query, s->query_len, &s->print);
    }
    return 0;
}

/* Appends a gRPC frame around what build() writes. */
static int frame_begin(gw_buf *out, size_t *start, gw_error *e)
{
    static const uint8_t zero[GW_GRPCWEB_HEADER_LEN];
    *start = out->len;
    int rc = gw_buf_append(out, zero, sizeof zero);
    return rc ? gw_error_set(e, rc, "request too large") : 0;
}

static void frame_end(gw_buf *out, size_t start)
{
    gw_grpcweb_frame_header(out->data + start, 0,
                            (uint32_t)(out->len - start - GW_GRPCWEB_HEADER_LEN));
}

static int stream_message(gw_call *c, rest_state *s, const char *json, size_t len, gw_buf *out,
                          gw_error *e)
{
    size_t start;
    int rc = frame_begin(out, &start, e);
    if (rc)
        return rc;
    gw_rest_status st;
    gw_rest_status_clear(&st);
    rc = gw_rest_build_stream_message(s->ro, gw_call_opts(c)->registry, s->match.route, json,
                                      len, out, &st);
    if (rc) {
        out->len = start;
        if (rc == GW_ENOMEM)
            return gw_error_set(e, rc, "out of memory");
        char msg[sizeof st.message];
        snprintf(msg, sizeof msg, "message %zu: %s", s->split.count, st.message);
        memcpy(st.message, msg, sizeof msg);
        return rest_fail(s, rc, &st, e);
    }
    frame_end(out, start);
    return 0;
}

static int split_error(rest_state *s, int rc, gw_error *e)
{
    if (rc == GW_ENOMEM)
        return rc;
    gw_rest_status st;
    st.code = rc == GW_ELIMIT ? GW_CODE_RESOURCE_EXHAUSTED : GW_CODE_INVALID_ARGUMENT;
    st.http_status = rc == GW_ELIMIT ? 413 : 400;
    snprintf(st.message, sizeof st.message, "request body: %s", e->msg);
    return rest_fail(s, rc, &st, e);
}

static int rest_request_body(gw_call *c, const uint8_t *in, size_t n, gw_buf *out,
                             bool *direct, gw_error *e)
{
    (void)direct;
    rest_state *s = gw_call_adapter_state(c);
    if (!s->client_stream) {
        int rc = gw_buf_append(&s->body, in, n);
        if (rc) {
            gw_rest_status st = {.code = GW_CODE_RESOURCE_EXHAUSTED, .http_status = 413};
            snprintf(st.message, sizeof st.message,
                     "request body exceeds the limit of %zu bytes", s->body.max);
            return rc == GW_ENOMEM ? gw_error_set(e, rc, "out of memory")
                                   : rest_fail(s, rc, &st, e);
        }
        return 0;
    }
    while (n) {
        size_t used = 0;
        const char *msg;
        size_t len;
        int rc = gw_json_splitter_next(&s->split, in, n, &used, &msg, &len, e);
        in += used;
        n -= used;
        if (rc == GW_EAGAIN)
            break;
        if (rc)
            return split_error(s, rc, e);
        rc = stream_message(c, s, msg, len, out, e);
        if (rc)
            return rc;
    }
    return 0;
}

static int rest_request_end(gw_call *c, gw_buf *out, gw_error *e)
{
    rest_state *s = gw_call_adapter_state(c);
    if (s->client_stream) {
        const char *msg;
        size_t len;
        int rc = gw_json_splitter_finish(&s->split, &msg, &len, e);
        if (rc == GW_ECLOSED)
            return 0;
        if (rc)
            return split_error(s, rc, e);
        return stream_message(c, s, msg, len, out, e);
    }
    size_t start;
    int rc = frame_begin(out, &start, e);
    if (rc)
        return rc;
    gw_rest_request rq = {
        .registry = gw_call_opts(c)->registry,
        .match = &s->match,
        .query = s->query,
        .query_len = s->query_len,
        .content_type = s->content_type,
        .body = s->body.data,
        .body_len = s->body.len,
    };
    gw_rest_status st;
    gw_rest_status_clear(&st);
    rc = gw_rest_build_request(s->ro, &rq, out, &s->print, &st);
    gw_buf_free(&s->body);
    if (rc) {
        out->len = start;
        return rc == GW_ENOMEM ? gw_error_set(e, rc, "out of memory") : rest_fail(s, rc, &st, e);
    }
    frame_end(out, start);
    return 0;
}

/* ---- response side ------------------------------------------------------------------ */

static void add_metadata_headers(gw_call *c, gw_call_head *head, const gw_header *md, size_t n,
                                 bool trailer)
{
    for (size_t i = 0; i < n; i++) {
        char key[128], name[160];
        if (md[i].name_len >= sizeof key)
            continue;
        memcpy(key, md[i].name, md[i].name_len);
        key[md[i].name_len] = 0;
        if (strcmp(key, "content-type") == 0 || strncmp(key, "grpc-", 5) == 0 ||
            !gw_grpcweb_header_value_ok(md[i].value, md[i].value_len) ||
            gw_rest_metadata_header_name(key, trailer, name, sizeof name) != 0 ||
            !gw_grpcweb_header_name_ok(name, strlen(name)) ||
            !gw_front_header_forwardable(name, strlen(name), md[i].value, md[i].value_len))
            continue; /* cannot be an HTTP/1 header here (or is the front's): dropped */
        (void)gw_call_head_add(c, head, name, strlen(name), md[i].value, md[i].value_len);
    }
}

static void set_content_type(gw_call *c, gw_call_head *head, const char *ct)
{
    for (size_t i = 0; i < head->count; i++)
        if (strcasecmp(head->headers[i].name, "Content-Type") == 0) {
            char *v = gw_arena_strdup(gw_call_arena(c), ct);
            if (v)
                head->headers[i].value = v;
            return;
        }
    (void)gw_call_head_add(c, head, "Content-Type", 12, ct, strlen(ct));
}

static int rest_response_head(gw_call *c, const gw_header *md, size_t n, gw_call_head *head,
                              gw_error *e)
{
    (void)e;
    rest_state *s = gw_call_adapter_state(c);
    head->status = 200;
    if (s->raw_stream) {
        /* The first message sets the real type (rest_response_message). */
        set_content_type(c, head, "application/octet-stream");
    } else if (s->server_stream) {
        set_content_type(c, head, gw_rest_stream_content_type(s->fmt));
        if (s->fmt == GW_REST_STREAM_SSE)
            (void)gw_call_head_add(c, head, "Cache-Control", 13, "no-cache", 8);
    }
    add_metadata_headers(c, head, md, n, false);
    return 0;
}

static int rest_response_message(gw_call *c, const uint8_t *msg, size_t len, gw_buf *out,
                                 gw_error *e)
{
    rest_state *s = gw_call_adapter_state(c);
    const gw_call_options *o = gw_call_opts(c);
    gw_rest_status st;
    gw_rest_status_clear(&st);
    int rc;
    if (s->raw_stream) {
        char ct[sizeof s->ct];
        rc = gw_rest_stream_http_body(s->match.route, msg, len, out, ct, sizeof ct, &st);
        /* Only the first message's type counts: the head is still held
         * then (GW_CALL_HOLD_STREAM_HEAD) and goes out right after. */
        gw_call_head *held = gw_call_held_head(c);
        if (rc == 0 && held)
            set_content_type(c, held, ct);
    } else if (s->server_stream) {
        rc = gw_rest_stream_message(s->ro, o->registry, s->match.route, s->fmt, msg, len, out,
                                    &st);
    } else {
        if (s->have_message)
            return gw_error_set(e, GW_EIO, "backend sent more than one message for a unary call");
        rc = gw_rest_unary_response(s->ro, o->registry, s->match.route, &s->print, msg, len,
                                    out, s->ct, sizeof s->ct, &st);
        s->have_message = rc == 0;
    }
    if (rc == GW_ENOMEM)
        return gw_error_set(e, rc, "out of memory");
    if (rc == GW_ELIMIT && st.code == GW_CODE_OK)
        return gw_error_set(e, rc, "response buffer full");
    if (rc) {
        rest_fail(s, GW_EIO, &st, e);
        return GW_EIO; /* a backend answer that does not fit the schema: INTERNAL */
    }
    return 0;
}

/* The whole error answer: status, JSON body, Content-Type. */
static void error_answer(gw_call *c, rest_state *s, const gw_call_status *st,
                         gw_call_head *head, gw_buf *out)
{
    const gw_call_options *o = gw_call_opts(c);
    int http = 500;
    int rc;
    if (s->rst_set) {
        rc = gw_rest_status_response(s->ro, &s->rst, out);
        http = s->rst.http_status;
    } else if (s->server_stream && !s->raw_stream) {
        rc = gw_rest_stream_error_first(s->ro, o->registry, st->code, st->message,
                                        st->details, st->details_len, out, &http);
    } else {
        rc = gw_rest_error_response(s->ro, o->registry, st->code, st->message, st->details,
                                    st->details_len, out, &http);
    }
    if (rc) {
        /* Degrade to a body without details rather than to no body. */
        out->len = 0;
        gw_buf_printf(out, "{\"code\":%d,\"message\":\"internal error\",\"details\":[]}",
                      st->code);
        http = gw_code_to_http(st->code);
    }
    head->status = http;
    set_content_type(c, head, "application/json");
}

static void rest_response_status(gw_call *c, const gw_call_status *st, gw_call_head *head,
                                 gw_buf *out)
{
    rest_state *s = gw_call_adapter_state(c);
    const gw_call_options *o = gw_call_opts(c);
    bool ok = st->code == GW_CODE_OK && !s->rst_set;
    gw_call_head *h = head ? head : gw_call_held_head(c);
    if (!h) {
        if (ok)
            return;
        if (s->raw_stream) {
            /* Raw bytes have no place for an error and the status line is
             * out: the response ends without its last chunk, so the client
             * sees an incomplete transfer instead of a truncated file that
             * looks whole. */
            GW_WARN("REST %s: HttpBody stream failed after its first message (%s: %.200s); "
                    "closing the response unfinished",
                    gw_call_method(c)->path, gw_code_name(st->code), st->message);
            gw_call_end_abnormally(c);
            return;
        }
        /* Streaming, head and messages already sent: an error frame. */
        size_t start = out->len;
        if (gw_rest_stream_error(s->ro, o->registry, s->fmt, st->code, st->message,
                                 st->details, st->details_len, out) != 0) {
            /* Not even the error line fits (out of memory): no half line,
             * and a stream cut short rather than one that looks whole. */
            out->len = start;
            GW_WARN("REST %s: no room for the stream's error line (%s: %.200s); closing the "
                    "response unfinished",
                    gw_call_method(c)->path, gw_code_name(st->code), st->message);
            gw_call_end_abnormally(c);
        }
        return;
    }
    if (!ok) {
        out->len = 0; /* a unary message before the failure is not sent */
        error_answer(c, s, st, h, out);
    } else if (s->server_stream) {
        /* A stream that ended without any message. */
        h->status = 200;
        set_content_type(c, h, s->raw_stream ? "application/octet-stream"
                                             : gw_rest_stream_content_type(s->fmt));
    } else {
        if (!s->have_message) {
            gw_rest_status rs;
            gw_rest_status_clear(&rs);
            /* No message with OK: answer the empty message, as the
             * default instance is what a gRPC client would see too. */
            if (!s->match.route ||
                gw_rest_unary_response(s->ro, o->registry, s->match.route, &s->print, NULL, 0,
                                       out, s->ct, sizeof s->ct, &rs) != 0) {
                out->len = 0;
                gw_buf_append_str(out, "{}");
                snprintf(s->ct, sizeof s->ct, "application/json");
            }
        }
        h->status = 200;
        set_content_type(c, h, s->ct[0] ? s->ct : "application/json");
    }
    add_metadata_headers(c, h, st->trailers, st->trailer_count, true);
}

static void rest_fini(gw_call *c)
{
    rest_state *s = gw_call_adapter_state(c);
    gw_buf_free(&s->body);
    if (s->split_init)
        gw_json_splitter_free(&s->split);
    s->split_init = false;
}

const gw_call_adapter gw_call_rest = {
    .name = "rest",
    .state_size = sizeof(rest_state),
    .init = rest_init,
    .request_body = rest_request_body,
    .request_end = rest_request_end,
    .response_head = rest_response_head,
    .response_message = rest_response_message,
    .response_status = rest_response_status,
    .fini = rest_fini,
    .flags = GW_CALL_OWN_METADATA | GW_CALL_HOLD_STREAM_HEAD,
};

/* ---- routing ------------------------------------------------------------------------ */

/* Answers a status found before any call exists (no route, bad path). */
static int answer_status(gw_front_req *r, const gw_call_cors *cors, const gw_rest_options *ro,
                         const gw_rest_status *st, const char *allow)
{
    gw_buf body;
    gw_buf_init(&body, 0);
    if (gw_rest_status_response(ro, st, &body) != 0) {
        gw_buf_free(&body);
        return gw_front_req_respond(r, 503, NULL, 0, "out of memory\n", 14);
    }
    gw_front_header h[4];
    size_t n = 0;
    h[n++] = (gw_front_header){"Content-Type", "application/json"};
    if (allow)
        h[n++] = (gw_front_header){"Allow", allow};
    if (cors && cors->allow_origin)
        h[n++] = (gw_front_header){"Access-Control-Allow-Origin", cors->allow_origin};
    int rc = gw_front_req_respond(r, st->http_status, h, n, body.data, body.len);
    gw_buf_free(&body);
    return rc;
}

int gw_call_rest_dispatch(gw_front_req *r, const gw_call_options *o, const gw_call_cors *cors,
                          const gw_call_rest_config *rc, gw_backend *b)
{
    const char *target = gw_front_req_target(r);
    const char *method = gw_front_req_method(r);
    const char *q = strchr(target, '?');
    size_t path_len = q ? (size_t)(q - target) : strlen(target);
    gw_arena a;
    gw_arena_init(&a, 1024, 64 * 1024);
    gw_route_match m;
    gw_error e;
    gw_error_clear(&e);
    gw_rest_status st;
    gw_rest_status_clear(&st);
    int ret = gw_router_match(rc->router, method, target, path_len, &a, &m, &e);
    if (ret == GW_EPARSE) {
        st.code = GW_CODE_INVALID_ARGUMENT;
        st.http_status = 400;
        snprintf(st.message, sizeof st.message, "%s", e.msg);
        answer_status(r, cors, rc->rest, &st, NULL);
        goto out;
    }
    if (ret) {
        gw_front_req_respond(r, 503, NULL, 0, "out of memory\n", 14);
        goto out;
    }
    const char *path = gw_front_req_path(r);
    if (m.result == GW_ROUTE_NOT_FOUND && strcmp(method, "POST") == 0 && o->registry &&
        gw_registry_method_by_path(o->registry, path, strlen(path))) {
        /* A gRPC method's own path, but the method has HTTP rules (so no
         * auto-mapping): the client most likely meant gRPC-Web. */
        st.code = GW_CODE_INVALID_ARGUMENT;
        st.http_status = 415;
        snprintf(st.message, sizeof st.message,
                 "unsupported content type for %.200s: use application/grpc-web, "
                 "application/grpc-web-text or their +proto/+json forms, or the method's "
                 "REST route", path);
        answer_status(r, cors, rc->rest, &st, NULL);
        ret = GW_EINVAL;
        goto out;
    }
    if (m.result != GW_ROUTE_MATCHED) {
        gw_rest_route_status(&m, method, target, path_len, &st);
        gw_buf allow;
        gw_buf_init(&allow, 1024);
        bool have_allow = m.result == GW_ROUTE_METHOD_NOT_ALLOWED &&
                          gw_route_allow_header(&m, &allow) == 0 && allow.data;
        answer_status(r, cors, rc->rest, &st, have_allow ? (const char *)allow.data : NULL);
        gw_buf_free(&allow);
        ret = st.http_status == 404 ? GW_ENOTFOUND : GW_EINVAL;
        goto out;
    }
    long long cl = gw_front_req_content_length(r);
    size_t max_body = gw_call_body_limit(o, json_one(o, rc->rest));
    if (cl >= 0 && (unsigned long long)cl > max_body) {
        st.code = GW_CODE_RESOURCE_EXHAUSTED;
        st.http_status = 413;
        snprintf(st.message, sizeof st.message,
                 "request body of %lld bytes exceeds the limit of %zu", cl, max_body);
        answer_status(r, cors, rc->rest, &st, NULL);
        gw_front_req_close_now(r);
        ret = GW_ELIMIT;
        goto out;
    }
    rest_arg arg = {.cfg = rc, .match = &m, .query = q ? q + 1 : NULL,
                    .query_len = q ? strlen(q + 1) : 0};
    ret = gw_call_start(r, o, cors, m.route->method, b, &gw_call_rest, &arg);
out:
    gw_arena_free(&a);
    return ret;
}
