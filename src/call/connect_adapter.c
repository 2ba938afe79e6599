/*
 * The Connect protocol adapter (docs/connect.md): unary POST and GET with
 * bare messages, streams with 5-byte envelopes and the end-of-stream
 * message, protobuf or JSON, gzip both ways. The wire format itself lives
 * in src/connect (pure); this file drives it from the call's events.
 *
 * Unary requests buffer the one message (bounded: max_body as received,
 * max_message once decompressed) and frame it at the end of the body.
 * Stream requests are scanned envelope by envelope; binary envelopes
 * without compression pass to the backend as they are (the envelope and
 * the gRPC frame have the same layout, and the scanner has refused every
 * flag but "compressed"), others are reassembled one at a time,
 * decompressed and/or transcoded, and framed as soon as they are whole.
 *
 * Unary answers are held by the call (one message) so that a failure still
 * gets its HTTP status and JSON error body; streams always answer 200 and
 * end with the end-of-stream envelope.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "call/call.h"
#include "codec/codec.h"
#include "connect/connect.h"
#include "grpcweb/grpcweb.h"

/* Unary answers and stream messages shorter than this go out uncompressed
 * (gzip would grow them, and it costs CPU for nothing). */
#define CONNECT_COMPRESS_MIN 1024

typedef struct connect_state {
    gw_connect_format fmt;
    int http_status;              /* a status of its own (404, 405, 415), or 0 */
    int code;                     /* with it: the code of the error body (0: the
                                     call's) */
    gw_connect_encoding req_enc;  /* request body / envelopes */
    bool gzip_out;                /* the client accepts gzip answers */
    bool direct;                  /* binary stream without compression: pass-through */
    gw_connect_scanner scan;
    gw_buf body;                  /* unary: the message; stream: the envelope being
                                     reassembled */
    bool have_message;            /* unary: a response message is in out */
} connect_state;

static bool is_stream(const connect_state *s) { return s->fmt.kind == GW_CONNECT_STREAM; }

/* ---- request side ------------------------------------------------------------------- */

/* Refuses the request with an HTTP status of its own and the Connect code
 * its error body carries. */
static int refuse(connect_state *s, int http, int code, gw_error *e, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int refuse(connect_state *s, int http, int code, gw_error *e, const char *fmt, ...)
{
    s->http_status = http;
    s->code = code;
    va_list ap;
    va_start(ap, fmt);
    gw_error_setv(e, GW_EINVAL, fmt, ap);
    va_end(ap);
    return GW_EINVAL;
}

/* The largest message as it travels: protobuf bytes, or its JSON text. */
static size_t message_max(const gw_call_options *o, bool json)
{
    return json ? gw_call_envelope_len(o->max_message, GW_CALL_ENVELOPE_JSON) : o->max_message;
}

size_t gw_call_connect_envelope(const gw_call_options *o, const void *arg)
{
    const gw_call_connect_arg *a = arg;
    size_t one = message_max(o, a->json);
    return a->kind == GW_CONNECT_STREAM ? gw_call_envelope_len(one, GW_CALL_ENVELOPE_FRAMED)
                                        : one;
}

static int connect_init(gw_call *c, gw_front_req *r, const void *arg, gw_error *e)
{
    connect_state *s = gw_call_adapter_state(c);
    const gw_call_connect_arg *a = arg;
    const gw_call_options *o = gw_call_opts(c);
    const gw_method_def *m = gw_call_method(c);
    s->fmt.kind = (gw_connect_kind)a->kind;
    s->fmt.json = a->json;
    s->http_status = a->http_status;
    gw_call_flush_off(c);
    gw_call_set_envelope(c, gw_call_connect_envelope(o, a));
    gw_buf_init(&s->body, gw_call_body_limit(o, gw_call_connect_envelope(o, a)) +
                              GW_CONNECT_ENVELOPE_LEN);
    if (!m || s->http_status)
        return 0; /* gw_call_reject: only the answer's form is needed */

    bool streaming = m->client_streaming || m->server_streaming;
    if (streaming && s->fmt.kind == GW_CONNECT_GET)
        return refuse(s, 405, GW_CODE_UNIMPLEMENTED, e,
                      "%s is a streaming method: GET is only for unary methods; use POST",
                      m->path);
    if (streaming && !is_stream(s))
        return refuse(s, 415, GW_CODE_UNIMPLEMENTED, e,
                      "%s is a streaming method: use application/connect+proto or "
                      "application/connect+json",
                      m->path);
    if (!streaming && is_stream(s))
        return refuse(s, 415, GW_CODE_UNIMPLEMENTED, e,
                      "%s is a unary method: use application/proto or application/json",
                      m->path);
    const char *v = gw_front_req_header(r, "Connect-Protocol-Version");
    if (v && strcmp(v, "1") != 0) {
        if (is_stream(s)) /* a stream says it in its end-of-stream message, at 200 */
            return gw_error_set(e, GW_EINVAL, "Connect-Protocol-Version must be 1, not '%.32s'",
                                v);
        return refuse(s, 400, GW_CODE_INVALID_ARGUMENT, e,
                      "Connect-Protocol-Version must be 1, not '%.32s'", v);
    }

    const char *enc = NULL, *accept = NULL;
    if (s->fmt.kind == GW_CONNECT_GET) {
        if (m->idempotency_level != GW_IDEMPOTENCY_NO_SIDE_EFFECTS)
            return refuse(s, 405, GW_CODE_UNIMPLEMENTED, e,
                          "%s has side effects: GET is only for methods marked "
                          "idempotency_level = NO_SIDE_EFFECTS; use POST",
                          m->path);
        gw_connect_get g;
        int rc = gw_connect_get_parse(a->query, a->query_len, &g, &s->body, e);
        if (rc == GW_EINVAL) {
            s->http_status = 415;
            s->code = GW_CODE_UNIMPLEMENTED;
        }
        if (rc)
            return rc;
        s->fmt.json = g.json;
        s->req_enc = g.compression;
        accept = gw_front_req_header(r, "Accept-Encoding");
        s->gzip_out = accept ? gw_connect_accepts_gzip(accept)
                             : s->req_enc == GW_CONNECT_GZIP;
    } else {
        enc = gw_front_req_header(r, is_stream(s) ? "Connect-Content-Encoding"
                                                  : "Content-Encoding");
        accept = gw_front_req_header(r, is_stream(s) ? "Connect-Accept-Encoding"
                                                     : "Accept-Encoding");
        if (gw_connect_encoding_parse(enc, enc ? strlen(enc) : 0, &s->req_enc) != 0)
            return gw_error_set(e, GW_ENOTFOUND,
                                "content encoding '%.32s' is not supported (supported: "
                                GW_CONNECT_ENCODINGS ")",
                                enc);
        s->gzip_out = accept ? gw_connect_accepts_gzip(accept)
                             : s->req_enc == GW_CONNECT_GZIP;
    }

    const char *to = gw_front_req_header(r, "Connect-Timeout-Ms");
    if (to) {
        uint64_t ms;
        if (gw_connect_timeout_parse(to, strlen(to), &ms) != 0)
            return gw_error_set(e, GW_EPARSE,
                                "malformed Connect-Timeout-Ms '%.32s': 1 to 10 digits", to);
        gw_call_set_timeout(c, ms * GW_MS);
    }
    if (s->fmt.json && !o->registry)
        return gw_error_set(e, GW_ENOTFOUND, "JSON messages need the descriptor registry");
    if (is_stream(s)) {
        gw_connect_scanner_init(&s->scan, message_max(o, s->fmt.json),
                                s->req_enc != GW_CONNECT_IDENTITY);
        s->direct = !s->fmt.json && s->req_enc == GW_CONNECT_IDENTITY;
        s->body.max = message_max(o, s->fmt.json) + GW_CONNECT_ENVELOPE_LEN;
    }
    return 0;
}

/* Appends one gRPC frame for a message given in the request's codec and
 * encoding (compressed: gunzip first, bounded by max_message). */
static int frame_message(gw_call *c, connect_state *s, const uint8_t *msg, size_t len,
                         bool compressed, gw_buf *out, gw_error *e)
{
    const gw_call_options *o = gw_call_opts(c);
    gw_buf plain;
    gw_buf_init(&plain, 0);
    int rc = 0;
    if (compressed && len) {
        rc = gw_connect_gunzip(msg, len, message_max(o, s->fmt.json), &plain, e);
        if (rc) {
            gw_error_prefix(e, "request message");
            goto out;
        }
        msg = plain.data;
        len = plain.len;
    } else if (len > message_max(o, s->fmt.json)) {
        rc = gw_error_set(e, GW_ELIMIT, "request message of %zu bytes exceeds the limit of %zu",
                          len, message_max(o, s->fmt.json));
        goto out;
    }
    size_t start = out->len;
    static const uint8_t zero[GW_CONNECT_ENVELOPE_LEN];
    if ((rc = gw_buf_append(out, zero, sizeof zero)) != 0) {
        rc = gw_error_set(e, rc, "request too large");
        goto out;
    }
    if (s->fmt.json) {
        gw_codec_options co;
        gw_codec_options_init(&co);
        co.max_input = message_max(o, true);
        co.max_output = o->max_message;
        /* Zero bytes are no JSON value (connect-go and connect-es refuse them
         * too); the empty message is {}. In binary they are the empty message. */
        rc = len ? gw_codec_json_to_proto(o->registry, gw_call_method(c)->input,
                                          (const char *)msg, len, &co, out, e)
                 : gw_error_set(e, GW_EPARSE,
                                "zero-length JSON is not a message (send {} for the empty one)");
        if (rc) {
            gw_error_prefix(e, "request message");
            out->len = start;
            goto out;
        }
    } else if (len && (rc = gw_buf_append(out, msg, len)) != 0) {
        rc = gw_error_set(e, rc, "request too large");
        goto out;
    }
    /* The gRPC frame: flag 0 (the gateway never compresses towards the
     * backend), then the length. */
    gw_connect_envelope_header(out->data + start, 0,
                               (uint32_t)(out->len - start - GW_CONNECT_ENVELOPE_LEN));
out:
    gw_buf_free(&plain);
    return rc;
}

/* Stream: whole envelopes are collected one at a time, each becomes a frame. */
static int envelopes_in(gw_call *c, connect_state *s, const uint8_t *in, size_t n, gw_buf *out,
                        gw_error *e)
{
    while (n) {
        size_t want = GW_CONNECT_ENVELOPE_LEN;
        if (s->body.len >= GW_CONNECT_ENVELOPE_LEN) {
            const uint8_t *h = s->body.data;
            want += (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
        }
        size_t take = GW_MIN(n, want - s->body.len);
        int rc = gw_buf_append(&s->body, in, take);
        if (rc)
            return gw_error_set(e, rc, "request message too large");
        in += take;
        n -= take;
        uint8_t flags;
        const uint8_t *payload;
        size_t len;
        if (!gw_connect_envelope_next(s->body.data, s->body.len, &flags, &payload, &len))
            continue;
        rc = frame_message(c, s, payload, len, flags & GW_CONNECT_FLAG_COMPRESSED, out, e);
        if (rc)
            return rc;
        s->body.len = 0;
    }
    return 0;
}

/* A server-streaming method takes one request message: the first byte of a
 * second envelope fails the call with INTERNAL before any of the input
 * carrying it is forwarded (as the gRPC-Web adapter does; docs/grpc-web.md
 * says why INTERNAL). Unary requests are one bare message anyway. */
static int one_request_only(gw_call *c, const gw_connect_scanner *sc, gw_error *e)
{
    const gw_method_def *m = gw_call_method(c);
    if (!m || m->client_streaming)
        return 0;
    bool second = sc->envelopes >= 2 ||
                  (sc->envelopes == 1 && (sc->header_have > 0 || sc->payload_left > 0));
    if (!second)
        return 0;
    return gw_error_set(e, GW_ESTATE,
                        "server-streaming method %s takes one request message; the request "
                        "carries more",
                        m->path);
}

static int connect_request_body(gw_call *c, const uint8_t *in, size_t n, gw_buf *out,
                                bool *direct, gw_error *e)
{
    connect_state *s = gw_call_adapter_state(c);
    if (s->fmt.kind == GW_CONNECT_GET)
        return 0; /* a GET body means nothing: the message is in the query */
    if (!is_stream(s)) {
        int rc = gw_buf_append(&s->body, in, n);
        return rc ? gw_error_set(e, rc, "request body too large") : 0;
    }
    int rc = gw_connect_scanner_feed(&s->scan, in, n, e);
    if (rc == GW_EPARSE)
        return GW_EIO; /* a flag the request may not carry: a protocol error, "internal"
                          as connect-go and gRPC's compression rules have it */
    if (rc == 0)
        rc = one_request_only(c, &s->scan, e);
    if (rc)
        return rc;
    if (s->direct) {
        *direct = true;
        return 0;
    }
    return envelopes_in(c, s, in, n, out, e);
}

static int connect_request_end(gw_call *c, gw_buf *out, gw_error *e)
{
    connect_state *s = gw_call_adapter_state(c);
    if (is_stream(s))
        return gw_connect_scanner_finish(&s->scan, e);
    int rc = frame_message(c, s, s->body.data, s->body.len, s->req_enc == GW_CONNECT_GZIP, out,
                           e);
    gw_buf_free(&s->body);
    return rc;
}

/* ---- response side ------------------------------------------------------------------ */

static bool header_passes(const char *name, size_t name_len, const char *value,
                          size_t value_len)
{
    if (name_len >= 5 && strncasecmp(name, "grpc-", 5) == 0)
        return false; /* gRPC's own, never Connect metadata */
    if (name_len >= 8 && strncasecmp(name, "connect-", 8) == 0)
        return false; /* reserved for the protocol */
    if (gw_strn_case_eq(name, name_len, "content-type") ||
        gw_strn_case_eq(name, name_len, "content-encoding"))
        return false;
    return gw_grpcweb_header_name_ok(name, name_len) &&
           gw_grpcweb_header_value_ok(value, value_len) &&
           gw_front_header_forwardable(name, name_len, value, value_len);
}

/* Response metadata as headers; trailing metadata with the "trailer-" prefix. */
static void add_metadata_headers(gw_call *c, gw_call_head *head, const gw_header *md, size_t n,
                                 bool trailer)
{
    for (size_t i = 0; i < n; i++) {
        if (!header_passes(md[i].name, md[i].name_len, md[i].value, md[i].value_len))
            continue; /* cannot be an HTTP/1 header here (or is the front's): dropped */
        if (!trailer) {
            (void)gw_call_head_add(c, head, md[i].name, md[i].name_len, md[i].value,
                                   md[i].value_len);
            continue;
        }
        char name[300];
        int k = snprintf(name, sizeof name, "trailer-%.*s", (int)md[i].name_len, md[i].name);
        if (k > 0 && (size_t)k < sizeof name)
            (void)gw_call_head_add(c, head, name, (size_t)k, md[i].value, md[i].value_len);
    }
}

static void set_header(gw_call *c, gw_call_head *head, const char *name, const char *value)
{
    for (size_t i = 0; i < head->count; i++)
        if (strcasecmp(head->headers[i].name, name) == 0) {
            char *v = gw_arena_strdup(gw_call_arena(c), value);
            if (v)
                head->headers[i].value = v;
            return;
        }
    (void)gw_call_head_add(c, head, name, strlen(name), value, strlen(value));
}

/* The encodings the gateway accepts, advertised on every answer as the
 * spec's response headers have it (connect-go does the same): unary answers
 * in Accept-Encoding, streams in Connect-Accept-Encoding. identity is
 * implied. */
#define CONNECT_ACCEPT "gzip"

static const char *accept_header(const connect_state *s)
{
    return is_stream(s) ? "Connect-Accept-Encoding" : "Accept-Encoding";
}

static int connect_response_head(gw_call *c, const gw_header *md, size_t n, gw_call_head *head,
                                 gw_error *e)
{
    connect_state *s = gw_call_adapter_state(c);
    head->status = 200;
    const char *ct = gw_connect_content_type(s->fmt);
    int rc = gw_call_head_add(c, head, "Content-Type", 12, ct, strlen(ct));
    if (rc == 0 && is_stream(s) && s->gzip_out)
        rc = gw_call_head_add(c, head, "Connect-Content-Encoding", 24, "gzip", 4);
    if (rc == 0)
        rc = gw_call_head_add(c, head, accept_header(s), strlen(accept_header(s)),
                              CONNECT_ACCEPT, strlen(CONNECT_ACCEPT));
    if (rc)
        return gw_error_set(e, rc, "out of memory");
    add_metadata_headers(c, head, md, n, false);
    return 0;
}

/* The response message in the request's codec, appended to out. */
static int encode_message(gw_call *c, connect_state *s, const uint8_t *msg, size_t len,
                          gw_buf *out, gw_error *e)
{
    const gw_call_options *o = gw_call_opts(c);
    if (!s->fmt.json) {
        int rc = gw_buf_append(out, msg, len);
        return rc ? gw_error_set(e, rc, "response buffer full") : 0;
    }
    size_t start = out->len;
    gw_codec_options co;
    gw_codec_options_init(&co);
    /* A response message at the limit, as JSON (bytes fields as base64). */
    co.max_output = gw_call_envelope_len(o->max_message, GW_CALL_ENVELOPE_JSON);
    int rc = gw_codec_proto_to_json(o->registry, gw_call_method(c)->output, msg, len, &co, out,
                                    e);
    if (rc) {
        gw_error_prefix(e, "response message");
        out->len = start;
        return gw_call_answer_err(rc);
    }
    return 0;
}

static int connect_response_message(gw_call *c, const uint8_t *msg, size_t len, gw_buf *out,
                                    gw_error *e)
{
    connect_state *s = gw_call_adapter_state(c);
    if (!is_stream(s)) {
        if (s->have_message)
            return gw_error_set(e, GW_EIO, "backend sent more than one message for a unary call");
        int rc = encode_message(c, s, msg, len, out, e);
        s->have_message = rc == 0;
        return rc;
    }
    size_t start = out->len;
    static const uint8_t zero[GW_CONNECT_ENVELOPE_LEN];
    int rc = gw_buf_append(out, zero, sizeof zero);
    if (rc)
        return gw_error_set(e, rc, "response buffer full");
    if ((rc = encode_message(c, s, msg, len, out, e)) != 0) {
        out->len = start;
        return rc;
    }
    uint8_t flags = 0;
    size_t plen = out->len - start - GW_CONNECT_ENVELOPE_LEN;
    if (s->gzip_out && plen >= CONNECT_COMPRESS_MIN) {
        gw_buf z;
        gw_buf_init(&z, 0); /* bounded by deflateBound of one bounded message */
        /* Kept only if it shrinks. */
        if (gw_connect_gzip(out->data + start + GW_CONNECT_ENVELOPE_LEN, plen, &z) == 0 &&
            z.len < plen) {
            out->len = start + GW_CONNECT_ENVELOPE_LEN;
            (void)gw_buf_append(out, z.data, z.len); /* fits: it is shorter */
            flags = GW_CONNECT_FLAG_COMPRESSED;
            plen = z.len;
        }
        gw_buf_free(&z);
    }
    gw_connect_envelope_header(out->data + start, flags, (uint32_t)plen);
    return 0;
}

/* Trailers as end-of-stream metadata entries (borrowed). head: the head of
 * a whole answer (response_status's), or NULL. */
static void end_stream(gw_call *c, const gw_call_status *st, gw_call_head *head, gw_buf *out)
{
    const gw_call_options *o = gw_call_opts(c);
    gw_connect_md md[64];
    size_t n = 0;
    for (size_t i = 0; i < st->trailer_count && n < GW_ARRAY_LEN(md); i++) {
        const gw_header *t = &st->trailers[i];
        if (t->name_len >= 8 && strncasecmp(t->name, "connect-", 8) == 0)
            continue;
        md[n++] = (gw_connect_md){t->name, t->name_len, t->value, t->value_len};
    }
    if (gw_connect_end_stream(out, o->registry, st->code, st->message, st->details,
                              st->details_len, md, n) == 0)
        return;
    /* Out of memory: the code alone still ends the stream readably. */
    if (gw_connect_end_stream(out, NULL, st->code, NULL, NULL, 0, NULL, 0) == 0)
        return;
    /* Not even that: a stream without its end-of-stream message must not
     * end as if whole. */
    gw_call_status_lost(c, head);
}

static void compress_unary(gw_call *c, gw_call_head *h, gw_buf *out)
{
    if (out->len < CONNECT_COMPRESS_MIN)
        return;
    gw_buf z;
    gw_buf_init(&z, 0); /* bounded by deflateBound of one bounded message */
    if (gw_connect_gzip(out->data, out->len, &z) == 0 && z.len < out->len) {
        out->len = 0;
        if (gw_buf_append(out, z.data, z.len) == 0)
            set_header(c, h, "Content-Encoding", "gzip");
    }
    gw_buf_free(&z);
}

static void connect_response_status(gw_call *c, const gw_call_status *st, gw_call_head *head,
                                    gw_buf *out)
{
    connect_state *s = gw_call_adapter_state(c);
    const gw_call_options *o = gw_call_opts(c);
    gw_call_head *h = head ? head : gw_call_held_head(c);
    if (is_stream(s) && !s->http_status) {
        if (h) {
            /* Nothing sent yet (client streaming, or a failure before the
             * backend's headers): a whole 200 answer ending the stream. */
            h->status = 200;
            set_header(c, h, "Content-Type", gw_connect_content_type(s->fmt));
            set_header(c, h, accept_header(s), CONNECT_ACCEPT);
            if (head && s->gzip_out)
                set_header(c, h, "Connect-Content-Encoding", "gzip");
        }
        end_stream(c, st, head, out);
        return;
    }
    if (!h)
        return; /* a unary answer's head is always held or given */
    set_header(c, h, accept_header(s), CONNECT_ACCEPT);
    bool ok = st->code == GW_CODE_OK && !s->http_status;
    if (ok) {
        h->status = 200;
        if (!s->have_message && s->fmt.json)
            (void)gw_buf_append_str(out, "{}"); /* the empty message */
        set_header(c, h, "Content-Type", gw_connect_content_type(s->fmt));
        /* The body's encoding follows Accept-Encoding: caches must key on it
         * (a GET answer is cacheable), compressed this time or not. */
        (void)gw_call_head_add(c, h, "Vary", 4, "Accept-Encoding", 15);
        if (s->gzip_out)
            compress_unary(c, h, out);
    } else {
        out->len = 0; /* a message before the failure is not sent */
        int code = s->code ? s->code : st->code == GW_CODE_OK ? GW_CODE_UNKNOWN : st->code;
        h->status = s->http_status ? s->http_status : gw_connect_code_to_http(code);
        if (gw_connect_error_json(out, o->registry, code, st->message, st->details,
                                  st->details_len) != 0) {
            out->len = 0;
            (void)gw_connect_error_json(out, NULL, code, NULL, NULL, 0);
        }
        set_header(c, h, "Content-Type", "application/json");
        if (h->status == 405)
            set_header(c, h, "Allow", "POST");
    }
    add_metadata_headers(c, h, st->trailers, st->trailer_count, true);
}

static void connect_fini(gw_call *c)
{
    connect_state *s = gw_call_adapter_state(c);
    gw_buf_free(&s->body);
}

const gw_call_adapter gw_call_connect = {
    .name = "connect",
    .state_size = sizeof(connect_state),
    .init = connect_init,
    .request_body = connect_request_body,
    .request_end = connect_request_end,
    .response_head = connect_response_head,
    .response_message = connect_response_message,
    .response_status = connect_response_status,
    .fini = connect_fini,
};
