/*
 * JSON over WebSocket (docs/websocket.md): each text message the client
 * sends is one request message in ProtoJSON; each response message and,
 * last, the status in the REST error shape ({"code","message","details"})
 * go back as text messages. The WebSocket face (src/ws) and this adapter
 * share a private framing for the call's byte streams: every JSON message
 * is preceded by its length as 4 bytes, big-endian, so that the face can
 * cut the call's output into text frames and hand request messages in
 * whole.
 */
#include <string.h>

#include "call/call.h"
#include "codec/codec.h"
#include "grpcweb/grpcweb.h"

typedef struct gw_wsjson_state {
    const gw_rest_options *ro;
} gw_wsjson_state;

static int j_init(gw_call *c, gw_front_req *r, const void *arg, gw_error *e)
{
    (void)r;
    gw_wsjson_state *s = gw_call_adapter_state(c);
    s->ro = arg;
    gw_call_flush_off(c);
    if (!gw_call_opts(c)->registry)
        return gw_error_set(e, GW_ENOTFOUND, "JSON over WebSocket needs the descriptor registry");
    return 0;
}

static void codec_opts(const gw_wsjson_state *s, const gw_call_options *o, gw_codec_options *co)
{
    gw_codec_options_init(co);
    co->max_input = o->max_message;
    co->max_output = o->max_message;
    if (s->ro) {
        co->emit_defaults = s->ro->emit_defaults;
        co->proto_names = s->ro->proto_names;
        co->enums_as_ints = s->ro->enums_as_ints;
        co->ignore_unknown = s->ro->ignore_unknown_body_fields;
        if (s->ro->max_depth)
            co->max_depth = s->ro->max_depth;
    }
}

/* One whole JSON message (the face never cuts or joins them) → one gRPC
 * frame. */
static int j_request_body(gw_call *c, const uint8_t *in, size_t n, gw_buf *out, bool *direct,
                          gw_error *e)
{
    (void)direct;
    gw_wsjson_state *s = gw_call_adapter_state(c);
    const gw_call_options *o = gw_call_opts(c);
    size_t start = out->len;
    uint8_t h[GW_GRPCWEB_HEADER_LEN] = {0};
    int rc = gw_buf_append(out, h, sizeof h);
    if (rc)
        return gw_error_set(e, rc, "request too large");
    gw_codec_options co;
    codec_opts(s, o, &co);
    rc = gw_codec_json_to_proto(o->registry, gw_call_method(c)->input, (const char *)in, n, &co,
                                out, e);
    if (rc) {
        out->len = start;
        gw_error_prefix(e, "request message");
        return rc;
    }
    gw_grpcweb_frame_header(out->data + start, 0,
                            (uint32_t)(out->len - start - GW_GRPCWEB_HEADER_LEN));
    return 0;
}

static int j_request_end(gw_call *c, gw_buf *out, gw_error *e)
{
    (void)c;
    (void)out;
    (void)e;
    return 0;
}

static int j_response_head(gw_call *c, const gw_header *md, size_t n, gw_call_head *head,
                           gw_error *e)
{
    (void)c;
    (void)md;
    (void)n;
    (void)e;
    head->status = 200;
    return 0;
}

static void put_len(uint8_t *p, size_t n)
{
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
}

static int j_response_message(gw_call *c, const uint8_t *msg, size_t len, gw_buf *out,
                              gw_error *e)
{
    gw_wsjson_state *s = gw_call_adapter_state(c);
    const gw_call_options *o = gw_call_opts(c);
    size_t start = out->len;
    uint8_t h[4] = {0};
    int rc = gw_buf_append(out, h, sizeof h);
    if (rc)
        return gw_error_set(e, rc, "response buffer full");
    gw_codec_options co;
    codec_opts(s, o, &co);
    rc = gw_codec_proto_to_json(o->registry, gw_call_method(c)->output, msg, len, &co, out, e);
    if (rc) {
        out->len = start;
        gw_error_prefix(e, "response message");
        return gw_call_answer_err(rc);
    }
    put_len(out->data + start, out->len - start - 4);
    return 0;
}

static void j_response_status(gw_call *c, const gw_call_status *st, gw_call_head *head,
                              gw_buf *out)
{
    gw_wsjson_state *s = gw_call_adapter_state(c);
    if (head)
        head->status = 200;
    size_t start = out->len;
    uint8_t h[4] = {0};
    int rc = gw_buf_append(out, h, sizeof h);
    int http = 0;
    if (rc == 0 && gw_rest_error_response(s->ro, gw_call_opts(c)->registry, st->code,
                                          st->message, st->details, st->details_len, out,
                                          &http) != 0) {
        /* Out of memory: at least the code. */
        out->len = start + 4;
        rc = gw_buf_printf(out, "{\"code\":%d}", st->code);
    }
    if (rc) {
        /* Not even the code fits: without its status message the stream
         * would look finished (the WebSocket closes with 1011 instead). */
        out->len = start;
        gw_call_status_lost(c, head);
        return;
    }
    put_len(out->data + start, out->len - start - 4);
}

const gw_call_adapter gw_call_wsjson = {
    .name = "websocket-json",
    .state_size = sizeof(gw_wsjson_state),
    .init = j_init,
    .request_body = j_request_body,
    .request_end = j_request_end,
    .response_head = j_response_head,
    .response_message = j_response_message,
    .response_status = j_response_status,
    .flags = 0,
};
