/*
 * Allocation-failure injection for the call object (src/call/call.c and its
 * adapters), staged by call_harness.h: the test is the client (a face, or a
 * front request through the wrapped gw_front_req_*) and the backend (a fake
 * upstream call). Each scenario runs once counting allocations, then once
 * per allocation N with that one failing, then once per N with N and every
 * allocation after it failing (the last fallbacks: nothing can be
 * allocated any more). Every run must show:
 *
 *   - no crash, and nothing left allocated (build-asan: detect_leaks);
 *   - exactly one answer (respond, or respond_stream whose body ends), or a
 *     clean close (close_now), and no answer after it;
 *   - the upstream call cancelled or finished once the client has its
 *     answer (or at once when the client goes away), and no use of it after;
 *   - the observer told of the call exactly once (on_close ran, once);
 *   - CORS all or nothing: with Access-Control-Allow-Origin, every header of
 *     the answer (and gRPC's own) exposed;
 *   - a success only with the reference's data, every response message
 *     acknowledged upstream, and the whole request at the backend (a
 *     backend never sees a cut request end as if whole); otherwise a clean
 *     error: RESOURCE_EXHAUSTED or INTERNAL with a message (the message may
 *     be missing only when every allocation fails) or the scenario's own
 *     error, the bare INTERNAL of the last-resort answer, a stream cut
 *     short, or the face's / front's out-of-memory answer when not even
 *     the call could be allocated. A success that lost some of the
 *     backend's metadata is counted (best effort by design), not failed.
 *
 * Which of call.c's fallback paths a scenario must reach at least once is
 * in its `must` list (see the table below).
 *
 *   test_call_oom DEMO_PB
 *   GW_CALL_OOM_TRACE=1: one line per run (what the client saw)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "call_harness.h"
#include "codec/codec.h"
#include "connect/connect.h"
#include "grpcweb/grpcweb.h"
#include "oom.h"

static gw_registry *reg;
static gw_router *router;
static gw_rest_options rest_opts;

typedef enum protocol {
    P_GRPCWEB, P_GRPCWEB_TEXT, P_REST, P_CONNECT, P_CONNECT_STREAM, P_WSJSON
} protocol;
typedef enum entry {
    E_FACE,          /* gw_call_start_face */
    E_FACE_REJECT,   /* gw_call_reject_face (no upstream call) */
    E_FRONT,         /* gw_call_start on a front request */
    E_REST,          /* gw_call_rest_dispatch on a front request */
} entry;
typedef enum body_form { B_FRAMED_PROTO, B_FRAMED_JSON, B_TEXT, B_JSON, B_ENVELOPED_JSON } body_form;

/* What a run can end in, for the `must` lists. */
#define MUST_MINIMAL "<minimal>"  /* answer(): the bare grpc-status 13 answer */
#define MUST_CLOSED "<closed>"    /* answer(): close_now, not even that answer */
#define MUST_NO_CALL "<no-call>"  /* face_oom / the front's 503: call_new failed */

/* A second message larger than the first, so that the output buffer grows
 * (an allocation) after the head has gone out. */
#define BIG_DATA "ZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVm" \
                 "ZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVmZGVm"

static const gw_front_header web_hdrs[] = {
    {"Content-Type", "application/grpc-web+proto"}, {"X-User", "alice"}, {"X-Grpc-Web", "1"}};
static const gw_front_header deadline_hdrs[] = {
    {"Content-Type", "application/grpc-web+proto"}, {"grpc-timeout", "2m"}};
static const gw_front_header connect_stream_hdrs[] = {
    {"Content-Type", "application/connect+json"}, {"Connect-Protocol-Version", "1"}};
static const gw_front_header json_hdrs[] = {
    {"Content-Type", "application/json"}, {"X-User", "alice"}, {"Connect-Protocol-Version", "1"}};

typedef struct scenario {
    const char *name;
    entry how;
    protocol p;
    const char *method;
    const char *http_method, *target; /* front requests */
    const gw_front_header *hdrs;
    size_t nhdrs;
    body_form form;
    const char *request;              /* the request message as JSON */
    const char *responses[4];         /* response messages as JSON */
    bool trailers_only;               /* the backend answers with its status only */
    int code;                         /* the backend's status */
    const char *message;
    bool details;                     /* a google.rpc.BadRequest detail */
    size_t write_cap;                 /* the backend takes this many request bytes at once */
    int gone_after;                   /* the client goes away after this many messages */
    int reject_code;                  /* E_FACE_REJECT */
    const char *must[6];              /* messages (or MUST_*) some failing run must show */
    bool silent;                      /* the backend never answers (a deadline ends it) */
} scenario;

/*
 * Where call.c's fallbacks are reached (the `must` lists are checked):
 *   face_oom                          grpcweb-unary, reject: N = 1 (call_new's calloc)
 *   gw_call_start's 503               connect-json, rest-unary: call_new fails
 *   fail_err with GW_ENOMEM           every scenario ("out of memory": metadata,
 *                                     adapter state, CORS on a streamed head)
 *   "out of memory buffering the
 *    request"                         grpcweb-unary (the backend takes 7 bytes at a time)
 *   "cannot start the response"       grpcweb-stream, wsjson-stream (on_headers),
 *                                     rest-stream (the held head, on_message)
 *   answer(): bare INTERNAL           every answered scenario (respond refused once)
 *   answer(): close_now               the "from N on" sweep (both answers refused):
 *                                     every scenario with MUST_CLOSED
 *   respond_whole's text-mode reserve grpcweb-text (bare INTERNAL, text Content-Type)
 *   the deadline timer                grpcweb-deadline (the backend never answers: the
 *                                     call's own timer must end it)
 */
static const scenario scenarios[] = {
    {"grpcweb-unary", E_FACE, P_GRPCWEB, "/demo.v1.EchoService/Echo", NULL, NULL, web_hdrs,
     3, B_FRAMED_PROTO, "{\"message\":\"hello\",\"number\":\"7\"}",
     {"{\"message\":\"hello\",\"number\":\"7\"}"}, false, 0, NULL, false, 7, 0, 0,
     {MUST_NO_CALL, MUST_MINIMAL, MUST_CLOSED, "out of memory",
      "out of memory buffering the request"}, false},
    {"grpcweb-stream", E_FACE, P_GRPCWEB, "/demo.v1.EchoService/Download", NULL, NULL,
     web_hdrs, 3, B_FRAMED_PROTO, "{\"totalBytes\":\"9\",\"chunkSize\":3}",
     {"{\"offset\":\"0\",\"data\":\"YWJj\"}", "{\"offset\":\"3\",\"data\":\"" BIG_DATA "\"}",
      "{\"offset\":\"6\",\"data\":\"Z2hp\"}"},
     false, 0, NULL, false, 0, 0, 0,
     {MUST_NO_CALL, "cannot start the response", "out of memory"}, false},
    {"grpcweb-json", E_FACE, P_GRPCWEB, "/demo.v1.EchoService/Echo", NULL, NULL, web_hdrs, 3,
     B_FRAMED_JSON, "{\"message\":\"hello\",\"number\":\"7\"}",
     {"{\"message\":\"h\\u00e9llo\",\"number\":\"-7\"}"}, false, 0, NULL, false, 0, 0, 0,
     {MUST_NO_CALL, MUST_MINIMAL, MUST_CLOSED, "out of memory"}, false},
    {"grpcweb-text", E_FACE, P_GRPCWEB_TEXT, "/demo.v1.EchoService/Echo", NULL, NULL, web_hdrs,
     3, B_TEXT, "{\"message\":\"hello\",\"number\":\"7\"}",
     {"{\"message\":\"hello\",\"number\":\"7\"}"}, false, 0, NULL, false, 0, 0, 0,
     {MUST_NO_CALL, MUST_MINIMAL, MUST_CLOSED, "out of memory"}, false},
    {"grpcweb-error", E_FACE, P_GRPCWEB, "/demo.v1.EchoService/Fail", NULL, NULL, web_hdrs, 3,
     B_FRAMED_PROTO, "{\"code\":3,\"message\":\"bad\"}", {NULL}, false, 3, "bad input", true,
     0, 0, 0, {MUST_NO_CALL, MUST_MINIMAL, "out of memory"}, false},
    {"grpcweb-client-gone", E_FACE, P_GRPCWEB, "/demo.v1.EchoService/Download", NULL, NULL,
     web_hdrs, 3, B_FRAMED_PROTO, "{\"totalBytes\":\"9\",\"chunkSize\":3}",
     {"{\"offset\":\"0\",\"data\":\"YWJj\"}", "{\"offset\":\"3\",\"data\":\"" BIG_DATA "\"}",
      "{\"offset\":\"6\",\"data\":\"Z2hp\"}"},
     false, 0, NULL, false, 0, 1, 0, {MUST_NO_CALL, "cannot start the response"}, false},
    {"grpcweb-deadline", E_FACE, P_GRPCWEB, "/demo.v1.EchoService/Echo", NULL, NULL,
     deadline_hdrs, 2, B_FRAMED_PROTO, "{\"message\":\"hello\"}", {NULL}, false,
     GW_CODE_DEADLINE_EXCEEDED, "deadline exceeded", false, 0, 0, 0,
     {MUST_NO_CALL, MUST_MINIMAL, "out of memory"}, true},
    {"grpcweb-reject", E_FACE_REJECT, P_GRPCWEB, NULL, NULL, NULL, web_hdrs, 3,
     B_FRAMED_PROTO, NULL, {NULL}, false, 0, NULL, false, 0, 0, GW_CODE_UNIMPLEMENTED,
     {MUST_NO_CALL, MUST_MINIMAL}, false},
    {"wsjson-stream", E_FACE, P_WSJSON, "/demo.v1.EchoService/Download", NULL, NULL, web_hdrs,
     3, B_JSON, "{\"totalBytes\":\"9\",\"chunkSize\":3}",
     {"{\"offset\":\"0\",\"data\":\"YWJj\"}", "{\"offset\":\"3\",\"data\":\"" BIG_DATA "\"}"}, false, 0,
     NULL, false, 0, 0, 0, {MUST_NO_CALL, "cannot start the response", "out of memory"}, false},
    {"rest-unary", E_REST, P_REST, NULL, "POST", "/v1/echo?pretty=false", json_hdrs, 2,
     B_JSON, "{\"message\":\"hello\",\"number\":\"7\"}",
     {"{\"message\":\"hello\",\"number\":\"7\"}"}, false, 0, NULL, false, 0, 0, 0,
     {MUST_NO_CALL, MUST_MINIMAL, MUST_CLOSED, "out of memory"}, false},
    {"rest-error", E_REST, P_REST, NULL, "POST", "/v1/fail", json_hdrs, 2, B_JSON,
     "{\"code\":3}", {NULL}, true, 3, "bad input", true, 0, 0, 0,
     {MUST_NO_CALL, MUST_MINIMAL, MUST_CLOSED, "out of memory"}, false},
    {"rest-stream", E_REST, P_REST, NULL, "GET", "/v1/download?totalBytes=6&chunkSize=3",
     json_hdrs, 2, B_JSON, NULL,
     {"{\"offset\":\"0\",\"data\":\"YWJj\"}", "{\"offset\":\"3\",\"data\":\"" BIG_DATA "\"}"}, false, 0,
     NULL, false, 0, 0, 0, {MUST_NO_CALL, "cannot start the response", "out of memory"}, false},
    {"rest-stream-error", E_REST, P_REST, NULL, "GET", "/v1/download?totalBytes=6", json_hdrs,
     2, B_JSON, NULL, {"{\"offset\":\"0\",\"data\":\"YWJj\"}"}, false,
     GW_CODE_FAILED_PRECONDITION, "the download stopped: " BIG_DATA, false, 0, 0, 0,
     {MUST_NO_CALL, "cannot start the response", "out of memory"}, false},
    {"connect-json", E_FRONT, P_CONNECT, "/demo.v1.EchoService/Echo", "POST",
     "/demo.v1.EchoService/Echo", json_hdrs, 3, B_JSON, "{\"message\":\"hello\",\"number\":\"7\"}",
     {"{\"message\":\"hello\",\"number\":\"7\"}"}, false, 0, NULL, false, 0, 0, 0,
     {MUST_NO_CALL, MUST_MINIMAL, MUST_CLOSED, "out of memory"}, false},
    {"connect-stream", E_FRONT, P_CONNECT_STREAM, "/demo.v1.EchoService/Download", "POST",
     "/demo.v1.EchoService/Download", connect_stream_hdrs, 2, B_ENVELOPED_JSON,
     "{\"totalBytes\":\"6\",\"chunkSize\":3}",
     {"{\"offset\":\"0\",\"data\":\"YWJj\"}", "{\"offset\":\"3\",\"data\":\"" BIG_DATA "\"}"},
     false, 0, NULL, false, 0, 0, 0, {MUST_NO_CALL, "cannot start the response",
                                      "out of memory"}, false},
};

/* The messages of each JSON answer without injection, as the client must
 * see them (binary gRPC-Web answers are checked against the backend's
 * messages themselves). */
static const struct {
    const char *scenario, *want;
} json_answers[] = {
    {"grpcweb-json", "{\"message\":\"h\xc3\xa9llo\",\"number\":\"-7\"}"},
    {"wsjson-stream", "{\"data\":\"YWJj\"}{\"offset\":\"3\",\"data\":\"" BIG_DATA "\"}"},
    {"rest-unary", "{\"message\":\"hello\",\"number\":\"7\"}"},
    {"rest-stream", "{\"result\":{\"data\":\"YWJj\"}}\n"
                    "{\"result\":{\"offset\":\"3\",\"data\":\"" BIG_DATA "\"}}\n"},
    {"connect-json", "{\"message\":\"hello\",\"number\":\"7\"}"},
    {"rest-stream-error", "{\"result\":{\"data\":\"YWJj\"}}\n"},
    {"connect-stream", "{\"data\":\"YWJj\"}{\"offset\":\"3\",\"data\":\"" BIG_DATA "\"}"},
};

/* ---- what the client saw ------------------------------------------------------------ */

typedef enum outcome { OUT_OK, OUT_ERROR, OUT_MINIMAL, OUT_NO_CALL, OUT_CLOSED, OUT_GONE } outcome;

typedef struct view {
    outcome out;
    int code;            /* gRPC code; -1 none */
    char message[256];
    gw_buf data;         /* the response messages as the protocol carries them */
    bool meta_h, meta_t; /* the backend's header x-demo-h and trailer x-demo-t arrived */
    char bad[256];       /* non-empty: the answer is malformed */
} view;

static void set_bad(view *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_bad(view *v, const char *fmt, ...)
{
    if (v->bad[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->bad, sizeof v->bad, fmt, ap);
    va_end(ap);
}

/* The value after "key": in a flat JSON object (a number or a string). */
static bool json_field(const char *json, size_t len, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *end = json + len;
    const char *p = memmem(json, len, pat, strlen(pat));
    if (!p)
        return false;
    p += strlen(pat);
    while (p < end && (*p == ' ' || *p == ':'))
        p++;
    bool quoted = p < end && *p == '"';
    p += quoted;
    size_t n = 0;
    while (p < end && n + 1 < cap &&
           (quoted ? *p != '"' : (*p == '-' || (*p >= '0' && *p <= '9')))) {
        if (quoted && *p == '\\' && p + 1 < end)
            out[n++] = *p++;
        out[n++] = *p++;
    }
    out[n] = 0;
    return true;
}

static void parse_grpcweb(const uint8_t *b, size_t len, view *v)
{
    size_t off = 0;
    bool trailer = false;
    while (off + 5 <= len) {
        uint8_t flag = b[off];
        size_t n = (size_t)b[off + 1] << 24 | (size_t)b[off + 2] << 16 |
                   (size_t)b[off + 3] << 8 | b[off + 4];
        if (off + 5 + n > len)
            break;
        if (trailer)
            set_bad(v, "a frame after the trailer");
        if (flag & GW_GRPCWEB_FLAG_TRAILERS) {
            trailer = true;
            const char *t = (const char *)b + off + 5, *te = t + n;
            while (t < te) {
                const char *eol = memmem(t, (size_t)(te - t), "\r\n", 2);
                if (!eol)
                    break;
                if (strncmp(t, "x-demo-t: ", 10) == 0)
                    v->meta_t = true;
                if (strncmp(t, "grpc-status: ", 13) == 0)
                    v->code = atoi(t + 13);
                else if (strncmp(t, "grpc-message: ", 14) == 0)
                    snprintf(v->message, sizeof v->message, "%.*s", (int)(eol - t - 14), t + 14);
                t = eol + 2;
            }
        } else {
            gw_buf_append(&v->data, b + off + 5, n);
        }
        off += 5 + n;
    }
    if (off != len)
        set_bad(v, "a frame cut short at byte %zu of %zu", off, len);
    if (!trailer)
        set_bad(v, "no trailer frame");
}

static void parse_wsjson(const uint8_t *b, size_t len, view *v)
{
    size_t off = 0, last = 0, last_len = 0;
    while (off + 4 <= len) {
        size_t n = (size_t)b[off] << 24 | (size_t)b[off + 1] << 16 | (size_t)b[off + 2] << 8 |
                   b[off + 3];
        if (off + 4 + n > len)
            break;
        if (last_len)
            gw_buf_append(&v->data, b + last, last_len);
        last = off + 4;
        last_len = n;
        off += 4 + n;
    }
    char num[16];
    if (off != len || !last_len || !json_field((const char *)b + last, last_len, "code", num,
                                                sizeof num)) {
        set_bad(v, "no status message at the end");
        return;
    }
    v->code = atoi(num);
    json_field((const char *)b + last, last_len, "message", v->message, sizeof v->message);
}

static int connect_code(const char *name)
{
    for (int c = 0; c <= GW_CODE_MAX; c++)
        if (strcmp(gw_code_snake_name(c), name) == 0)
            return c;
    return -1;
}

/* Connect stream: envelopes, the last one the end-of-stream message. */
static void parse_connect_stream(const uint8_t *b, size_t len, view *v)
{
    size_t off = 0;
    bool end = false;
    while (off + 5 <= len) {
        size_t n = (size_t)b[off + 1] << 24 | (size_t)b[off + 2] << 16 |
                   (size_t)b[off + 3] << 8 | b[off + 4];
        if (off + 5 + n > len)
            break;
        const char *p = (const char *)b + off + 5;
        if (end)
            set_bad(v, "an envelope after the end of the stream");
        if (b[off] & GW_CONNECT_FLAG_END_STREAM) {
            end = true;
            char code[32];
            const char *err = memmem(p, n, "\"error\"", 7);
            v->code = GW_CODE_OK;
            if (err && json_field(err, n - (size_t)(err - p), "code", code, sizeof code)) {
                v->code = connect_code(code);
                json_field(err, n - (size_t)(err - p), "message", v->message,
                           sizeof v->message);
            }
        } else {
            gw_buf_append(&v->data, p, n);
        }
        off += 5 + n;
    }
    if (off != len)
        set_bad(v, "an envelope cut short at byte %zu of %zu", off, len);
    if (!end)
        set_bad(v, "no end-of-stream message");
}

static void parse(const scenario *sc, const th_client *cl, bool call_made, view *v)
{
    v->code = -1;
    if (cl->gone) {
        v->out = OUT_GONE;
        return;
    }
    if (!cl->answers) {
        v->out = OUT_CLOSED;
        /* A front request the call neither answered nor attached is the
         * front's to end (500, or a closed connection: front.c's
         * on_request); a face or an attached request must be closed. */
        bool front_ends_it = sc->how != E_FACE && sc->how != E_FACE_REJECT && !cl->ops;
        if (!cl->close_nows && !front_ends_it)
            set_bad(v, "neither answered nor closed");
        return;
    }
    if (cl->streaming && !cl->eof && !cl->aborted)
        set_bad(v, "the streamed answer neither ended nor was aborted");
    if (cl->aborted) {
        /* Cut short (gw_call_end_abnormally): the client sees an
         * incomplete transfer, a failure it cannot take for an answer. */
        v->out = OUT_CLOSED;
        return;
    }
    const uint8_t *b = cl->body.data;
    size_t len = cl->body.len;
    char hv[256];
    if (!call_made) {
        /* face_oom, or the front's 503 before any call. */
        v->out = OUT_NO_CALL;
        if (th_answer_header(cl, "grpc-status", hv, sizeof hv)) {
            v->code = atoi(hv);
            th_answer_header(cl, "grpc-message", v->message, sizeof v->message);
        } else if (cl->status == 503) {
            v->code = GW_CODE_UNAVAILABLE;
            snprintf(v->message, sizeof v->message, "%.*s", (int)len, (const char *)b);
        }
        return;
    }
    if (th_answer_header(cl, "grpc-status", hv, sizeof hv) && len == 0) {
        /* Trailers-Only, or answer()'s last resort. */
        v->code = atoi(hv);
        th_answer_header(cl, "grpc-message", v->message, sizeof v->message);
        v->out = v->code == GW_CODE_OK ? OUT_OK : OUT_ERROR;
        if (v->code == GW_CODE_INTERNAL && !v->message[0])
            v->out = OUT_MINIMAL;
        return;
    }
    gw_buf decoded;
    gw_buf_init(&decoded, 0);
    char ct[128];
    switch (sc->p) {
    case P_GRPCWEB_TEXT: {
        gw_grpcweb_b64 d;
        gw_grpcweb_b64_init(&d);
        gw_error e;
        size_t got = 0;
        gw_buf_reserve(&decoded, gw_grpcweb_b64_max_out(len));
        if (len && gw_grpcweb_b64_decode(&d, (const char *)b, len, decoded.data, &got, &e))
            set_bad(v, "bad base64: %s", e.msg);
        decoded.len = got;
        parse_grpcweb(decoded.data, decoded.len, v);
        break;
    }
    case P_GRPCWEB:
        parse_grpcweb(b, len, v);
        break;
    case P_WSJSON:
        parse_wsjson(b, len, v);
        break;
    case P_CONNECT_STREAM:
        parse_connect_stream(b, len, v);
        break;
    case P_REST:
    case P_CONNECT:
        if (cl->status == 200) {
            v->code = GW_CODE_OK;
            /* A stream's failure is its last object, {"error": status}. */
            const char *err = sc->p == P_REST ? memmem(b, len, "{\"error\"", 8) : NULL;
            gw_buf_append(&v->data, b, err ? (size_t)(err - (const char *)b) : len);
            if (err) {
                size_t rest = len - (size_t)(err - (const char *)b);
                if (!json_field(err, rest, "code", hv, sizeof hv))
                    set_bad(v, "an error object without a code");
                v->code = atoi(hv);
                json_field(err, rest, "message", v->message, sizeof v->message);
            }
            break;
        }
        if (!json_field((const char *)b, len, "code", hv, sizeof hv)) {
            set_bad(v, "HTTP %d without an error body: %.*s", cl->status, (int)len,
                    (const char *)b);
            break;
        }
        v->code = sc->p == P_REST ? atoi(hv) : connect_code(hv);
        json_field((const char *)b, len, "message", v->message, sizeof v->message);
        if (th_answer_header(cl, "Content-Type", ct, sizeof ct) &&
            strcmp(ct, "application/json") != 0)
            set_bad(v, "error body with Content-Type %s", ct);
        break;
    }
    gw_buf_free(&decoded);
    v->out = v->code == GW_CODE_OK ? OUT_OK : OUT_ERROR;
}

/* ---- one run ------------------------------------------------------------------------- */

typedef struct observed {
    int starts, reports;
    int code;
} observed;

static void observe_start(void *ctx) { ((observed *)ctx)->starts++; }

static void observe(void *ctx, const gw_call_report *rep)
{
    observed *o = ctx;
    o->reports++;
    o->code = rep->code;
}

typedef struct run_state {
    const scenario *sc;
    const gw_method_def *m;
    gw_buf body;             /* the request body */
    gw_buf resp[4];          /* response messages (protobuf) */
    size_t nresp;
    gw_buf details;          /* google.rpc.Status with a BadRequest */
    bool from_mode;          /* gw_oom_arm_from */
    view ref;                /* the counting run's view */
    gw_buf ref_sent;         /* what the backend got in the counting run */
    bool open_after_answer;  /* this run: the upstream call outlived the answer */
    int metadata_dropped;    /* successes without the backend's metadata */
    bool must_seen[6];
    int outcomes[OUT_GONE + 1];
    long runs;
} run_state;

/* Starts the call; true if it is attached (the client drives it). */
static bool start(run_state *rs, th_client *cl, gw_call_options *o, const gw_call_cors *cors)
{
    const scenario *sc = rs->sc;
    gw_grpcweb_format web = {sc->p == P_GRPCWEB_TEXT, sc->form == B_FRAMED_JSON};
    gw_call_connect_arg ca = {
        .kind = sc->p == P_CONNECT_STREAM ? GW_CONNECT_STREAM : GW_CONNECT_UNARY, .json = true};
    const gw_call_adapter *a = sc->p == P_WSJSON ? &gw_call_wsjson : &gw_call_grpcweb;
    const void *arg = sc->p == P_WSJSON ? (const void *)&rest_opts : (const void *)&web;
    gw_call_rest_config rc = {router, &rest_opts};
    gw_call *call = NULL;
    switch (sc->how) {
    case E_FACE:
        if (gw_call_start_face(&th_face, cl, cl->loop, o, cors, rs->m, a, arg, &call) == 0) {
            cl->ops = &gw_call_face_ops;
            cl->owner = call;
        }
        break;
    case E_FACE_REJECT:
        gw_call_reject_face(&th_face, cl, cl->loop, o, a, arg, sc->reject_code,
                            "no such method");
        break;
    case E_FRONT:
        (void)gw_call_start(th_req(cl), o, cors, rs->m, NULL, &gw_call_connect, &ca);
        break;
    case E_REST:
        (void)gw_call_rest_dispatch(th_req(cl), o, cors, &rc, NULL);
        break;
    }
    return cl->ops != NULL;
}

/* The client has its whole answer (or the connection closed): the upstream
 * call must be cancelled or finished by then. */
static void note_answer(run_state *rs, const th_client *cl)
{
    bool done = (cl->answers && !cl->streaming) || cl->eof || cl->aborted || cl->close_nows;
    if (done && th_backend_live())
        rs->open_after_answer = true;
}

/* The backend's part: headers, messages (the client reading after each),
 * the status. */
static void play_backend(run_state *rs, th_client *cl, bool *live_when_gone)
{
    const scenario *sc = rs->sc;
    gw_header trailer = {"x-demo-t", 8, "t", 1};
    gw_call_status st = {.code = sc->code, .message = sc->message ? sc->message : "",
                         .details = sc->details ? rs->details.data : NULL,
                         .details_len = sc->details ? rs->details.len : 0,
                         .trailers = &trailer, .trailer_count = 1,
                         .trailers_only = sc->trailers_only};
    if (!sc->trailers_only) {
        gw_header md[] = {{"x-demo-h", 8, "h", 1}, {"x-bin", 5, "a\r\nb", 4}};
        th_backend_headers(md, GW_ARRAY_LEN(md));
        th_client_read(cl);
        note_answer(rs, cl);
        for (size_t i = 0; i < rs->nresp; i++) {
            th_backend_message(rs->resp[i].data, rs->resp[i].len);
            th_client_read(cl);
            note_answer(rs, cl);
            if (sc->gone_after == (int)i + 1 && cl->streaming && !cl->eof && !cl->aborted &&
                !cl->close_nows) {
                th_client_gone(cl);
                *live_when_gone = th_backend_live();
                return;
            }
        }
    }
    th_backend_complete(&st);
    th_client_read(cl);
}

/* CORS is all or nothing: with Access-Control-Allow-Origin, the exposed
 * headers name gRPC's own, the configured extra one and every other header
 * of the answer, or a browser cannot read them. */
static void check_cors(const th_client *cl, view *v)
{
    char origin[128], expose[1024];
    bool has_origin = th_answer_header(cl, "Access-Control-Allow-Origin", origin, sizeof origin);
    bool has_expose = th_answer_header(cl, "Access-Control-Expose-Headers", expose,
                                       sizeof expose);
    if (!has_origin) {
        if (has_expose || (th_answer_header(cl, "Vary", origin, sizeof origin) &&
                           strstr(origin, "Origin")))
            set_bad(v, "CORS headers without Access-Control-Allow-Origin");
        return;
    }
    if (!has_expose || strncmp(expose, "grpc-status, grpc-message, grpc-status-details-bin",
                               50) != 0 || !strstr(expose, "x-extra"))
        set_bad(v, "Access-Control-Expose-Headers incomplete: '%s'", has_expose ? expose : "");
    const char *p = (const char *)cl->head.data;
    while (p && *p) {
        const char *colon = strchr(p, ':');
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(colon - p), p);
        if (strcasecmp(name, "content-type") != 0 && strncasecmp(name, "grpc-", 5) != 0 &&
            strncasecmp(name, "access-control-", 15) != 0 && strcasecmp(name, "vary") != 0 &&
            !strstr(expose, name))
            set_bad(v, "header %s not exposed: '%s'", name, expose);
        p = strchr(p, '\n') + 1;
    }
}

static bool acceptable_error(const run_state *rs, const view *v)
{
    /* With every allocation failing, the message may not fit where the
     * code still does (the grpc-status-only trailer). */
    if (v->code == GW_CODE_RESOURCE_EXHAUSTED || v->code == GW_CODE_INTERNAL)
        return v->message[0] != 0 || rs->from_mode;
    /* The scenario's own error (its message may have been left out). */
    return v->code == rs->ref.code && rs->ref.out == OUT_ERROR;
}

static void check_run(run_state *rs, long k, const th_client *cl, const view *v,
                      const observed *obs, bool call_made, bool live_before_close,
                      bool live_when_gone)
{
    const scenario *sc = rs->sc;
    char what[96];
    snprintf(what, sizeof what, "%s: allocation %ld%s", sc->name, k,
             rs->from_mode ? " and all after it" : "");
    if (v->bad[0])
        fail_msg("%s: %s", what, v->bad);
    if (cl->extra_answers)
        fail_msg("%s: answered %d more time(s) after its answer", what, cl->extra_answers);
    if (th_up.misuse)
        fail_msg("%s: the upstream call was used after it was gone", what);
    if (th_up.starts > 1)
        fail_msg("%s: %d upstream calls", what, th_up.starts);
    if (th_backend_live())
        fail_msg("%s: the upstream call is still open after on_close", what);
    if (!cl->gone && (live_before_close || rs->open_after_answer))
        fail_msg("%s: the client has its answer, the upstream call is still open", what);
    if (cl->gone && live_when_gone)
        fail_msg("%s: the client went away, the upstream call was not cancelled", what);
    if (obs->starts != obs->reports || obs->starts > 1 || (call_made && obs->reports != 1))
        fail_msg("%s: observer told of %d start(s) and %d end(s)", what, obs->starts,
                 obs->reports);
    if ((v->out == OUT_OK || v->out == OUT_ERROR || v->out == OUT_MINIMAL) &&
        obs->code != v->code)
        fail_msg("%s: the client saw code %d, the report says %d", what, v->code, obs->code);
    if (th_up.send_closed &&
        (th_up.sent.len != rs->ref_sent.len ||
         memcmp(th_up.sent.data, rs->ref_sent.data, th_up.sent.len) != 0))
        fail_msg("%s: the backend got %zu request bytes as a whole request, not the %zu sent",
                 what, th_up.sent.len, rs->ref_sent.len);
    switch (v->out) {
    case OUT_OK:
        if (rs->ref.out != OUT_OK || v->data.len != rs->ref.data.len ||
            memcmp(v->data.data, rs->ref.data.data, v->data.len) != 0)
            fail_msg("%s: a success answer with other data (%zu bytes, want %zu)", what,
                     v->data.len, rs->ref.data.len);
        /* Metadata past the status is best effort by design ("what does
         * not fit is left out: the code stays", grpcweb_adapter.c): counted,
         * not failed. */
        if (v->meta_h != rs->ref.meta_h || v->meta_t != rs->ref.meta_t)
            rs->metadata_dropped++;
        if (th_up.consumed != th_up.delivered)
            fail_msg("%s: %zu of %zu response bytes acknowledged upstream", what,
                     th_up.consumed, th_up.delivered);
        break;
    case OUT_ERROR:
        if (!acceptable_error(rs, v))
            fail_msg("%s: answered code %d '%s'", what, v->code, v->message);
        break;
    case OUT_NO_CALL:
        if (v->code != GW_CODE_RESOURCE_EXHAUSTED && v->code != GW_CODE_UNAVAILABLE)
            fail_msg("%s: the out-of-memory answer has code %d", what, v->code);
        if (th_up.starts)
            fail_msg("%s: no call, yet an upstream call", what);
        break;
    case OUT_MINIMAL:
    case OUT_CLOSED:
    case OUT_GONE:
        break;
    }
}

static void tally(run_state *rs, const view *v)
{
    rs->outcomes[v->out]++;
    for (size_t i = 0; i < GW_ARRAY_LEN(rs->sc->must) && rs->sc->must[i]; i++) {
        const char *m = rs->sc->must[i];
        if ((strcmp(m, MUST_MINIMAL) == 0 && v->out == OUT_MINIMAL) ||
            (strcmp(m, MUST_CLOSED) == 0 && v->out == OUT_CLOSED) ||
            (strcmp(m, MUST_NO_CALL) == 0 && v->out == OUT_NO_CALL) ||
            (m[0] != '<' && strstr(v->message, m)))
            rs->must_seen[i] = true;
    }
}

/* The answer without injection is the right one. */
static void check_reference(const run_state *rs, const view *v)
{
    const scenario *sc = rs->sc;
    gw_buf want;
    gw_buf_init(&want, 0);
    if (sc->form == B_FRAMED_PROTO || sc->form == B_TEXT) {
        for (size_t i = 0; i < rs->nresp && !sc->gone_after; i++)
            gw_buf_append(&want, rs->resp[i].data, rs->resp[i].len);
    } else {
        for (size_t i = 0; i < GW_ARRAY_LEN(json_answers); i++)
            if (strcmp(json_answers[i].scenario, sc->name) == 0)
                gw_buf_append_str(&want, json_answers[i].want);
    }
    if (v->data.len != want.len || (want.len && memcmp(v->data.data, want.data, want.len)))
        fail_msg("%s: without injection the messages are\n%.*s\nnot\n%.*s", sc->name,
                 (int)v->data.len, v->data.data ? (const char *)v->data.data : "",
                 (int)want.len, want.data ? (const char *)want.data : "");
    gw_buf_free(&want);
}

static void run_once(void *arg, long k)
{
    run_state *rs = arg;
    const scenario *sc = rs->sc;
    th_upstream_reset();
    th_up.write_cap = sc->write_cap;
    th_client cl = {.hdrs = sc->hdrs, .nhdrs = sc->nhdrs, .method = sc->http_method,
                    .target = sc->target};
    gw_buf_init(&cl.head, 0);
    gw_buf_init(&cl.body, 0);
    char path[256];
    if (sc->target) {
        snprintf(path, sizeof path, "%s", sc->target);
        path[strcspn(path, "?")] = 0;
        cl.path = path;
    }
    cl.loop = gw_loop_new();
    assert_non_null(cl.loop);
    observed obs = {0};
    gw_call_options o;
    gw_call_options_init(&o);
    o.registry = reg;
    o.upstream_start = th_upstream_start;
    o.observe = observe;
    o.observe_start = observe_start;
    o.observe_ctx = &obs;
    gw_call_cors cors = {.allow_origin = "https://app.test", .expose_extra = "x-extra"};
    bool live_before_close = false, live_when_gone = false;

    if (rs->from_mode)
        gw_oom_arm_from(k);
    else
        gw_oom_arm(k);
    rs->open_after_answer = false;
    bool attached = start(rs, &cl, &o, &cors);
    bool call_made = obs.starts > 0;
    if (attached) {
        th_client_send(&cl, rs->body.data, rs->body.len);
        note_answer(rs, &cl);
        (void)gw_loop_run_once(cl.loop, 0);
        if (sc->silent) {
            /* Only the deadline can end it; a call whose timer is not
             * armed would wait forever: give up after 20 s (a generous bound
             * on a loaded machine; a working call ends in 2 ms). */
            uint64_t give_up = gw_now_ns() + 20 * GW_SEC;
            while (!cl.answers && !cl.close_nows && gw_now_ns() < give_up)
                (void)gw_loop_run_once(cl.loop, 10);
        } else if (th_backend_live()) {
            play_backend(rs, &cl, &live_when_gone);
        }
        th_client_read(&cl);
        live_before_close = th_backend_live();
        th_client_close(&cl);
    }
    gw_oom_disarm();

    view v = {0};
    gw_buf_init(&v.data, 0);
    parse(sc, &cl, call_made, &v);
    if (call_made)
        check_cors(&cl, &v);
    if (cl.head.data) {
        /* REST and Connect name them with a prefix, in any case. */
        v.meta_h = strcasestr((const char *)cl.head.data, "x-demo-h: h") != NULL;
        v.meta_t = v.meta_t || strcasestr((const char *)cl.head.data, "x-demo-t: t") != NULL;
    }
    if (k == 0) {
        if (v.bad[0])
            fail_msg("%s: without injection: %s", sc->name, v.bad);
        check_reference(rs, &v);
        if (sc->gone_after        ? v.out != OUT_GONE
            : sc->code        ? v.code != sc->code
            : sc->reject_code ? v.code != sc->reject_code
                              : v.out != OUT_OK)
            fail_msg("%s: without injection: code %d '%s'", sc->name, v.code, v.message);
        gw_buf saved = rs->ref.data;
        rs->ref = v;
        rs->ref.data = saved;
        gw_buf_reset(&rs->ref.data);
        gw_buf_append(&rs->ref.data, v.data.data, v.data.len);
        gw_buf_reset(&rs->ref_sent);
        gw_buf_append(&rs->ref_sent, th_up.sent.data, th_up.sent.len);
        if (sc->how != E_FACE_REJECT && !th_up.send_closed)
            fail_msg("%s: without injection the request did not end", sc->name);
    }
    if (getenv("GW_CALL_OOM_TRACE")) {
        for (size_t i = 0; i < cl.head.len; i++)
            if (cl.head.data[i] == '\n')
                cl.head.data[i] = '|';
        fprintf(stderr, "%s %s%ld: HTTP %d %s%s%s, code %d '%s', %zu data bytes; head %s\n",
                sc->name, rs->from_mode ? "from " : "", k, cl.status,
                cl.streaming ? "stream" : "whole", cl.eof ? " eof" : "",
                cl.aborted ? " aborted" : "", v.code, v.message, v.data.len,
                cl.head.data ? (const char *)cl.head.data : "");
    }
    check_run(rs, k, &cl, &v, &obs, call_made, live_before_close, live_when_gone);
    if (k > 0)
        tally(rs, &v);
    rs->runs++;
    gw_buf_free(&v.data);
    th_client_free(&cl);
    gw_loop_del(cl.loop);
}

/* ---- setup ----------------------------------------------------------------------------- */

static void encode(const gw_message_def *m, const char *json, gw_buf *out)
{
    gw_codec_options co;
    gw_codec_options_init(&co);
    gw_error e;
    if (gw_codec_json_to_proto(reg, m, json, strlen(json), &co, out, &e) != 0)
        fail_msg("cannot encode %s: %s", json, e.msg);
}

static void frame(gw_buf *b, const void *p, size_t n)
{
    uint8_t h[5];
    gw_grpcweb_frame_header(h, 0, (uint32_t)n);
    gw_buf_append(b, h, sizeof h);
    gw_buf_append(b, p, n);
}

static void prepare(run_state *rs, const scenario *sc)
{
    memset(rs, 0, sizeof *rs);
    rs->sc = sc;
    gw_buf_init(&rs->body, 0);
    gw_buf_init(&rs->details, 0);
    gw_buf_init(&rs->ref.data, 0);
    gw_buf_init(&rs->ref_sent, 0);
    const char *path = sc->method;
    if (!path && sc->target)
        path = strstr(sc->target, "echo")       ? "/demo.v1.EchoService/Echo"
               : strstr(sc->target, "fail")     ? "/demo.v1.EchoService/Fail"
                                                : "/demo.v1.EchoService/Download";
    if (path) {
        rs->m = gw_registry_method_by_path(reg, path, strlen(path));
        assert_non_null(rs->m);
    }
    if (sc->request) {
        gw_buf pb;
        gw_buf_init(&pb, 0);
        encode(rs->m->input, sc->request, &pb);
        switch (sc->form) {
        case B_FRAMED_PROTO:
            frame(&rs->body, pb.data, pb.len);
            break;
        case B_FRAMED_JSON:
            frame(&rs->body, sc->request, strlen(sc->request));
            break;
        case B_TEXT: {
            gw_buf f;
            gw_buf_init(&f, 0);
            frame(&f, pb.data, pb.len);
            gw_base64_encode_buf(&rs->body, f.data, f.len, true);
            gw_buf_free(&f);
            break;
        }
        case B_JSON:
            gw_buf_append_str(&rs->body, sc->request);
            break;
        case B_ENVELOPED_JSON: /* the same 5-byte layout as a gRPC frame */
            frame(&rs->body, sc->request, strlen(sc->request));
            break;
        }
        gw_buf_free(&pb);
    }
    for (size_t i = 0; i < GW_ARRAY_LEN(sc->responses) && sc->responses[i]; i++) {
        gw_buf_init(&rs->resp[i], 0);
        encode(rs->m->output, sc->responses[i], &rs->resp[i]);
        rs->nresp++;
    }
    if (sc->details)
        encode(gw_registry_message(reg, "google.rpc.Status"),
               "{\"code\":3,\"message\":\"bad input\",\"details\":[{\"@type\":"
               "\"type.googleapis.com/google.rpc.BadRequest\",\"fieldViolations\":"
               "[{\"field\":\"message\",\"description\":\"empty\"}]}]}",
               &rs->details);
}

static void release(run_state *rs)
{
    gw_buf_free(&rs->body);
    gw_buf_free(&rs->details);
    gw_buf_free(&rs->ref.data);
    gw_buf_free(&rs->ref_sent);
    for (size_t i = 0; i < rs->nresp; i++)
        gw_buf_free(&rs->resp[i]);
}

static void test_scenario(void **state)
{
    const scenario *sc = *state;
    run_state rs;
    prepare(&rs, sc);
    long total = gw_oom_sweep(sc->name, run_once, &rs);
    assert_true(total > 0);
    rs.from_mode = true;
    for (long k = 1; k <= total; k++)
        run_once(&rs, k);
    print_message("%s: %ld runs: %d ok (%d without some metadata), %d error, %d bare "
                  "INTERNAL, %d no call, %d closed, %d gone\n",
                  sc->name, rs.runs, rs.outcomes[OUT_OK], rs.metadata_dropped,
                  rs.outcomes[OUT_ERROR],
                  rs.outcomes[OUT_MINIMAL], rs.outcomes[OUT_NO_CALL], rs.outcomes[OUT_CLOSED],
                  rs.outcomes[OUT_GONE]);
    for (size_t i = 0; i < GW_ARRAY_LEN(sc->must) && sc->must[i]; i++)
        if (!rs.must_seen[i])
            fail_msg("%s: no failing allocation reached '%s'", sc->name, sc->must[i]);
    release(&rs);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_call_oom DEMO_PB\n");
        return 2;
    }
    gw_log_set_level(GW_LOG_OFF);
    const char *path = argv[1];
    gw_error e;
    if (gw_registry_load(&reg, &path, 1, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    router = gw_router_new(NULL);
    if (!router || gw_router_add_registry(router, reg, &e) != 0) {
        fprintf(stderr, "router: %s\n", e.msg);
        return 1;
    }
    gw_rest_options_init(&rest_opts);
    struct CMUnitTest tests[GW_ARRAY_LEN(scenarios)];
    for (size_t i = 0; i < GW_ARRAY_LEN(scenarios); i++)
        tests[i] = (struct CMUnitTest){scenarios[i].name, test_scenario, NULL, NULL,
                                       (void *)&scenarios[i]};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gw_router_del(router);
    gw_registry_del(reg);
    return rc;
}
