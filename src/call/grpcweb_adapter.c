/*
 * The gRPC-Web protocol adapter: binary and text mode, protobuf or JSON
 * messages. Binary protobuf frames are validated (headers only) and pass
 * through untouched; text mode decodes base64 into gRPC frames; +json
 * reassembles each frame and transcodes it with the codec.
 */
#include <stdio.h>
#include <string.h>

#include "call/call.h"
#include "codec/codec.h"
#include "grpcweb/grpcweb.h"

typedef struct gw_web_state {
    gw_grpcweb_format fmt;
    gw_grpcweb_scanner scan;
    gw_grpcweb_b64 b64;
    gw_buf frame;   /* +json: the request frame being reassembled */
    bool frame_init;
} gw_web_state;

/* The largest frame payload: a message, or (+json) its JSON text. */
static size_t frame_max(const gw_call_options *o, const gw_grpcweb_format *f)
{
    return f->json ? gw_call_envelope_len(o->max_message, GW_CALL_ENVELOPE_JSON)
                   : o->max_message;
}

size_t gw_call_grpcweb_envelope(const gw_call_options *o, const void *arg)
{
    const gw_grpcweb_format *f = arg;
    size_t one = gw_call_envelope_len(frame_max(o, f), GW_CALL_ENVELOPE_FRAMED);
    return f->text ? gw_call_envelope_len(one, GW_CALL_ENVELOPE_BASE64) : one;
}

static int web_init(gw_call *c, gw_front_req *r, const void *arg, gw_error *e)
{
    gw_web_state *s = gw_call_adapter_state(c);
    const gw_call_options *o = gw_call_opts(c);
    s->fmt = *(const gw_grpcweb_format *)arg;
    if (!s->fmt.text)
        gw_call_flush_off(c); /* binary: the queued bytes are the body */
    gw_call_set_envelope(c, gw_call_grpcweb_envelope(o, &s->fmt));
    gw_grpcweb_scanner_init(&s->scan, frame_max(o, &s->fmt), false);
    gw_grpcweb_b64_init(&s->b64);
    const char *enc = gw_call_header(c, "grpc-encoding");
    if (enc && strcmp(enc, "identity") != 0)
        return gw_error_set(e, GW_ENOTFOUND, "grpc-encoding '%.32s' is not supported", enc);
    if (s->fmt.json && !o->registry)
        return gw_error_set(e, GW_ENOTFOUND,
                            "application/grpc-web+json needs the descriptor registry");
    return 0;
}

/* +json: whole request frames are collected, each JSON message becomes a
 * protobuf frame. */
static int json_frames(gw_call *c, gw_web_state *s, const uint8_t *in, size_t n, gw_buf *out,
                       gw_error *e)
{
    const gw_call_options *o = gw_call_opts(c);
    const gw_method_def *m = gw_call_method(c);
    if (!s->frame_init) {
        gw_buf_init(&s->frame, frame_max(o, &s->fmt) + GW_GRPCWEB_HEADER_LEN);
        s->frame_init = true;
    }
    int rc;
    /* Only up to the end of the current frame goes into `frame`, so that
     * it never holds more than one (bounded) frame, however the input is
     * cut. The scanner has already checked every frame's length. */
    while (n) {
        size_t want = GW_GRPCWEB_HEADER_LEN;
        if (s->frame.len >= GW_GRPCWEB_HEADER_LEN) {
            const uint8_t *fh = s->frame.data;
            want += (size_t)fh[1] << 24 | (size_t)fh[2] << 16 | (size_t)fh[3] << 8 | fh[4];
        }
        size_t take = GW_MIN(n, want - s->frame.len);
        rc = gw_buf_append(&s->frame, in, take);
        if (rc)
            return gw_error_set(e, rc, "request message too large");
        in += take;
        n -= take;
        if (s->frame.len < GW_GRPCWEB_HEADER_LEN)
            continue;
        const uint8_t *h = s->frame.data;
        size_t len = (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
        if (s->frame.len < GW_GRPCWEB_HEADER_LEN + len)
            continue;
        size_t start = out->len;
        uint8_t zero[5] = {0};
        rc = gw_buf_append(out, zero, sizeof zero);
        if (rc)
            return gw_error_set(e, rc, "request too large");
        gw_codec_options co;
        gw_codec_options_init(&co);
        co.max_input = frame_max(o, &s->fmt);
        co.max_output = o->max_message;
        rc = gw_codec_json_to_proto(o->registry, m->input,
                                    (const char *)s->frame.data + GW_GRPCWEB_HEADER_LEN, len,
                                    &co, out, e);
        if (rc) {
            gw_error_prefix(e, "request message");
            return rc;
        }
        size_t plen = out->len - start - GW_GRPCWEB_HEADER_LEN;
        gw_grpcweb_frame_header(out->data + start, 0, (uint32_t)plen);
        gw_buf_consume(&s->frame, GW_GRPCWEB_HEADER_LEN + len);
    }
    return 0;
}

/* A unary or server-streaming method takes exactly one request message: a
 * second one is refused with INTERNAL (as grpc-java's "Too many requests"
 * and grpc-go; docs/grpc-web.md) as soon as its first byte is scanned, so
 * that no byte of the input that carries it is forwarded. (The server
 * starts gRPC-Web calls only for methods it knows.) */
static int one_request_only(gw_call *c, const gw_grpcweb_scanner *sc, gw_error *e)
{
    const gw_method_def *m = gw_call_method(c);
    if (!m || m->client_streaming)
        return 0;
    bool second = sc->frames >= 2 ||
                  (sc->frames == 1 && (sc->header_have > 0 || sc->payload_left > 0));
    if (!second)
        return 0;
    return gw_error_set(e, GW_ESTATE,
                        "%s method %s takes one request message; the request carries more",
                        m->server_streaming ? "server-streaming" : "unary", m->path);
}

/* Decoded (binary) request bytes: validate, and for +json transcode. */
static int frames_in(gw_call *c, gw_web_state *s, const uint8_t *in, size_t n, gw_buf *out,
                     bool *direct, gw_error *e)
{
    int rc = gw_grpcweb_scanner_feed(&s->scan, in, n, e);
    if (rc == 0)
        rc = one_request_only(c, &s->scan, e);
    if (rc)
        return rc;
    if (s->fmt.json)
        return json_frames(c, s, in, n, out, e);
    if (direct) {
        *direct = true;
        return 0;
    }
    rc = gw_buf_append(out, in, n);
    return rc ? gw_error_set(e, rc, "request too large") : 0;
}

static int web_request_body(gw_call *c, const uint8_t *in, size_t n, gw_buf *out, bool *direct,
                            gw_error *e)
{
    gw_web_state *s = gw_call_adapter_state(c);
    if (!s->fmt.text)
        return frames_in(c, s, in, n, out, s->fmt.json ? NULL : direct, e);
    /* Text mode: decode into out, then check (and for +json convert) the
     * decoded bytes in place. */
    uint8_t stackbuf[4096];
    size_t cap = gw_grpcweb_b64_max_out(n);
    gw_buf tmp;
    gw_buf_init(&tmp, 0);
    uint8_t *dst = stackbuf;
    if (cap > sizeof stackbuf) {
        int rc = gw_buf_reserve(&tmp, cap);
        if (rc)
            return gw_error_set(e, rc, "out of memory");
        dst = tmp.data;
    }
    size_t got = 0;
    int rc = gw_grpcweb_b64_decode(&s->b64, (const char *)in, n, dst, &got, e);
    if (rc == 0)
        rc = frames_in(c, s, dst, got, out, NULL, e);
    gw_buf_free(&tmp);
    return rc;
}

static int web_request_end(gw_call *c, gw_buf *out, gw_error *e)
{
    gw_web_state *s = gw_call_adapter_state(c);
    if (s->fmt.text) {
        uint8_t tail[3];
        size_t got = 0;
        int rc = gw_grpcweb_b64_finish(&s->b64, tail, &got, e);
        if (rc == 0 && got)
            rc = frames_in(c, s, tail, got, out, NULL, e);
        if (rc)
            return rc;
    }
    if (s->frame_init)
        gw_buf_free(&s->frame);
    s->frame_init = false;
    return gw_grpcweb_scanner_finish(&s->scan, e);
}

static int add_metadata_headers(gw_call *c, gw_call_head *head, const gw_header *md, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!gw_grpcweb_header_name_ok(md[i].name, md[i].name_len) ||
            !gw_grpcweb_header_value_ok(md[i].value, md[i].value_len) ||
            !gw_front_header_forwardable(md[i].name, md[i].name_len, md[i].value,
                                         md[i].value_len))
            continue; /* cannot be an HTTP/1 header here (or is the front's): dropped */
        int rc = gw_call_head_add(c, head, md[i].name, md[i].name_len, md[i].value,
                                  md[i].value_len);
        if (rc)
            return rc;
    }
    return 0;
}

static int web_response_head(gw_call *c, const gw_header *md, size_t n, gw_call_head *head,
                             gw_error *e)
{
    gw_web_state *s = gw_call_adapter_state(c);
    head->status = 200;
    const char *ct = gw_grpcweb_content_type(s->fmt);
    int rc = gw_call_head_add(c, head, "Content-Type", 12, ct, strlen(ct));
    if (rc == 0)
        rc = add_metadata_headers(c, head, md, n);
    return rc ? gw_error_set(e, rc, "out of memory") : 0;
}

static int web_response_message(gw_call *c, const uint8_t *msg, size_t len, gw_buf *out,
                                gw_error *e)
{
    gw_web_state *s = gw_call_adapter_state(c);
    const gw_call_options *o = gw_call_opts(c);
    size_t start = out->len;
    uint8_t h[5];
    gw_grpcweb_frame_header(h, 0, (uint32_t)len);
    int rc = gw_buf_append(out, h, sizeof h);
    if (rc)
        return gw_error_set(e, rc, "response buffer full");
    if (!s->fmt.json) {
        rc = gw_buf_append(out, msg, len);
        return rc ? gw_error_set(e, rc, "response buffer full") : 0;
    }
    gw_codec_options co;
    gw_codec_options_init(&co);
    /* A response message at the limit, as JSON (bytes fields as base64). */
    co.max_output = gw_call_envelope_len(o->max_message, GW_CALL_ENVELOPE_JSON);
    rc = gw_codec_proto_to_json(o->registry, gw_call_method(c)->output, msg, len, &co, out, e);
    if (rc) {
        gw_error_prefix(e, "response message");
        out->len = start;
        return gw_call_answer_err(rc);
    }
    gw_grpcweb_frame_header(out->data + start, 0,
                            (uint32_t)(out->len - start - GW_GRPCWEB_HEADER_LEN));
    return 0;
}

static void web_response_status(gw_call *c, const gw_call_status *st, gw_call_head *head,
                                gw_buf *out)
{
    gw_web_state *s = gw_call_adapter_state(c);
    char num[16];
    snprintf(num, sizeof num, "%d", st->code);
    if (head) {
        /* Trailers-Only: everything in the headers, empty body. */
        head->status = 200;
        const char *ct = gw_grpcweb_content_type(s->fmt);
        if (gw_call_head_add(c, head, "Content-Type", 12, ct, strlen(ct)) != 0 ||
            gw_call_head_add(c, head, "grpc-status", 11, num, strlen(num)) != 0) {
            /* Out of memory: the call answers its minimal INTERNAL. */
            head->status = 0;
            head->count = 0;
            return;
        }
        /* Past the status, what does not fit is left out: the code stays. */
        if (st->message && st->message[0]) {
            gw_buf enc;
            gw_buf_init(&enc, 0);
            if (gw_grpc_message_encode(&enc, st->message, strlen(st->message)) == 0)
                gw_call_head_add(c, head, "grpc-message", 12, (const char *)enc.data, enc.len);
            gw_buf_free(&enc);
        }
        if (st->details) {
            gw_buf enc;
            gw_buf_init(&enc, 0);
            if (gw_base64_encode_buf(&enc, st->details, st->details_len, false) == 0)
                gw_call_head_add(c, head, "grpc-status-details-bin", 23,
                                 enc.data ? (const char *)enc.data : "", enc.len);
            gw_buf_free(&enc);
        }
        (void)add_metadata_headers(c, head, st->trailers, st->trailer_count);
        return;
    }
    size_t start = out->len;
    int rc = gw_grpcweb_trailer_begin(out, &start);
    if (rc == 0 && gw_grpcweb_trailer_add_status(out, st->code, st->message, st->details,
                                                 st->details_len) != 0) {
        /* Keep at least the status code readable. */
        out->len = start + GW_GRPCWEB_HEADER_LEN;
        rc = gw_grpcweb_trailer_add(out, "grpc-status", 11, num, strlen(num));
    }
    if (rc) {
        /* Not even the code fits (out of memory): a body without its
         * trailer would read as an answer without a status. */
        out->len = start;
        gw_call_status_lost(c, NULL);
        return;
    }
    for (size_t i = 0; i < st->trailer_count; i++)
        (void)gw_grpcweb_trailer_add(out, st->trailers[i].name, st->trailers[i].name_len,
                                     st->trailers[i].value, st->trailers[i].value_len);
    gw_grpcweb_trailer_end(out, start);
}

static void web_fini(gw_call *c)
{
    gw_web_state *s = gw_call_adapter_state(c);
    if (s->frame_init)
        gw_buf_free(&s->frame);
    s->frame_init = false;
}

/* Text mode: each flush is its own padded base64 chunk (PROTOCOL-WEB). */
static size_t web_response_flush(gw_call *c, const uint8_t *in, size_t n, uint8_t *dst,
                                 size_t max, size_t *used)
{
    size_t take = GW_MIN(n, max / 4 * 3);
    *used = take;
    if (take == 0)
        return 0;
    return gw_base64_encode(in, take, (char *)dst, true);
}

const gw_call_adapter gw_call_grpcweb = {
    .name = "grpc-web",
    .state_size = sizeof(gw_web_state),
    .init = web_init,
    .request_body = web_request_body,
    .request_end = web_request_end,
    .response_head = web_response_head,
    .response_message = web_response_message,
    .response_status = web_response_status,
    .response_flush = web_response_flush, /* text mode only (gw_call_flush_off) */
    .fini = web_fini,
};

/*
 * grpc-websockets (docs/websocket.md): after the WebSocket face has taken
 * off the control bytes and turned the header blocks into heads, the
 * request and response bytes are gRPC-Web binary frames, so the hooks are
 * these; only init differs: the format comes from the header block's
 * Content-Type (binary only: a WebSocket carries bytes, text mode has no
 * use there), default +proto.
 */
static int ws_init(gw_call *c, gw_front_req *r, const void *arg, gw_error *e)
{
    (void)arg;
    gw_grpcweb_format fmt = {false, false};
    const char *ct = gw_call_header(c, "content-type");
    if (ct && strncmp(ct, "application/grpc-web", 20) == 0) {
        int kind = gw_grpcweb_classify(ct, strlen(ct), &fmt);
        if (kind != 0 || fmt.text)
            return gw_error_set(e, GW_EINVAL,
                                "unsupported content-type '%.64s' over grpc-websockets", ct);
    }
    return web_init(c, r, &fmt, e);
}

const gw_call_adapter gw_call_grpcws = {
    .name = "grpc-websockets",
    .state_size = sizeof(gw_web_state),
    .init = ws_init,
    .request_body = web_request_body,
    .request_end = web_request_end,
    .response_head = web_response_head,
    .response_message = web_response_message,
    .response_status = web_response_status,
    .fini = web_fini,
};
