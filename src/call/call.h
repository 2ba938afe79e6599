/*
 * call — one proxied RPC: joins one HTTP request (gw_front_req) to one
 * upstream call (gw_ucall) and owns everything that lives as long as it, in
 * an arena. The call is protocol-neutral; what differs between gRPC-Web and
 * REST lives in a protocol adapter (gw_call_adapter, below).
 *
 * Request side: body bytes arrive from the front, the adapter turns them
 * into gRPC-framed bytes (or validates them and lets them pass as they
 * are), and the call writes them to the upstream. When the upstream takes
 * less than offered, the rest waits in `pending` and the HTTP connection is
 * suspended until on_writable (backpressure towards the client).
 *
 * Response side: upstream headers, messages and the final status go
 * through the adapter into HTTP status, headers and body bytes. Body bytes
 * wait in a bounded output queue that the front drains with its content
 * reader; each message's wire bytes are acknowledged to the upstream
 * (gw_ucall_consume) only once the front has taken the bytes that carry it,
 * so a slow client slows its backend stream instead of growing memory.
 *
 * Lifetime: gw_call_start attaches the call to the request; the call is
 * freed when the front closes the request (on_close), never earlier, so a
 * late event never touches freed memory. A client that goes away cancels
 * the upstream call at once (RST_STREAM CANCEL).
 *
 * Errors are gRPC statuses (code + message) until the adapter turns them
 * into HTTP in exactly one place (response_status).
 */
#ifndef GW_CALL_H
#define GW_CALL_H

#include "base/base.h"
#include "front/front.h"
#include "rest/rest.h"
#include "route/route.h"
#include "schema/schema.h"
#include "upstream/upstream.h"

typedef struct gw_call gw_call;
struct gw_call_report;

/* Limits and policy a call runs with; the server fills it from its config.
 * Borrowed for the call's lifetime (it lives in the immutable config). */
typedef struct gw_call_options {
    size_t max_body;            /* request body bytes as received (text mode:
                                   base64 characters); 4 MiB */
    size_t max_message;         /* one message, either direction; 4 MiB */
    size_t max_output;          /* response bytes queued for the client; 1 MiB */
    uint64_t max_deadline_ms;   /* cap on grpc-timeout and default deadline;
                                   0: none. Default 3600000 */
    size_t max_metadata;        /* request metadata entries forwarded; 64 */
    bool forward_cookies;       /* pass Cookie as metadata; default false */
    const gw_registry *registry;/* for +json transcoding */
    /* Added by operations (metrics, access log, snapshot references): told
     * once per call when it ends, on the call's loop thread, after the call
     * is freed (the observer may free these options). NULL: nobody listens. */
    void (*observe)(void *ctx, const struct gw_call_report *rep);
    void (*observe_start)(void *ctx);   /* a call began (gw_call_start/_reject) */
    void *observe_ctx;
    /* Added by operations (routing, clusters): starts the upstream call for
     * m wherever it is routed, instead of gw_ucall_start on the backend
     * given to gw_call_start (which may then be NULL). Same contract and
     * errors as gw_ucall_start; GW_ENOTFOUND when m is routed nowhere
     * (answered UNIMPLEMENTED). NULL: gw_ucall_start. */
    int (*upstream_start)(void *ctx, const gw_method_def *m, const gw_ucall_params *p,
                          const gw_ucall_handlers *h, void *owner, gw_ucall **out,
                          gw_error *e);
    void *upstream_ctx;
} gw_call_options;

/* What a call reports when it ends (gw_call_options.observe). */
typedef struct gw_call_report {
    const char *protocol;           /* the adapter's name ("grpc-web", ...) */
    const gw_method_def *method;    /* NULL: rejected before a method was known */
    gw_front_req *req;              /* valid during the callback (peer, headers) */
    int http_status;                /* 0: nothing was answered (client gone) */
    int code;                       /* final gRPC code; -1: none (client gone) */
    size_t request_bytes;           /* body bytes as received */
    size_t response_bytes;          /* body bytes handed to the front */
    uint64_t start_ns, end_ns;      /* loop clock */
    bool completed;                 /* the response was fully sent */
    char endpoint[256];             /* URL of the backend endpoint the upstream
                                       call used (truncated); "" if none */
} gw_call_report;

void gw_call_options_init(gw_call_options *o);

/* The envelopes a request message travels in; they nest (gRPC-Web text
 * +json is BASE64 of FRAMED of JSON). */
typedef enum gw_call_envelope {
    GW_CALL_ENVELOPE_FRAMED,  /* a 5-byte gRPC frame header in front */
    GW_CALL_ENVELOPE_BASE64,  /* padded base64 (gRPC-Web text) */
    GW_CALL_ENVELOPE_JSON,    /* a message as a JSON object (REST, +json):
                                 bytes fields grow to base64, plus room for
                                 names, braces and whitespace */
} gw_call_envelope;

/* Room a JSON body gets beyond 4/3 of its message. */
#define GW_CALL_JSON_ENVELOPE_SLACK 4096u

/* Bytes of n bytes wrapped in env (for JSON: the largest body the limit
 * plans for). Saturates at SIZE_MAX. */
size_t gw_call_envelope_len(size_t n, gw_call_envelope env);

/*
 * The request body limit: o->max_body, but never less than `one` (one
 * message of o->max_message in the protocol's envelope), so a message at
 * the message limit always fits (docs/configuration.md, "Which limit
 * applies where").
 */
size_t gw_call_body_limit(const gw_call_options *o, size_t one);

/* CORS decision for one request, made by the server before the call. */
typedef struct gw_call_cors {
    const char *allow_origin;   /* NULL: no CORS headers */
    bool credentials;
    const char *expose_extra;   /* configured extra exposed headers or NULL */
} gw_call_cors;

/* An HTTP response head under construction (strings in the call arena). */
typedef struct gw_call_head {
    int status;
    gw_front_header *headers;
    size_t count, cap;
} gw_call_head;

/*
 * The protocol adapter: how HTTP bytes become gRPC and back. Each function
 * returns 0 or a negative gw_err with a message in e; the call maps the
 * error to a gRPC status (GW_ELIMIT/GW_ENOMEM → RESOURCE_EXHAUSTED,
 * GW_EPARSE/GW_EINVAL/GW_ERANGE → INVALID_ARGUMENT, GW_ENOTFOUND →
 * UNIMPLEMENTED, anything else → INTERNAL) and ends the call with it.
 * Adapter state comes from gw_call_adapter_state (arena, zeroed).
 */
typedef struct gw_call_adapter {
    const char *name;
    size_t state_size;
    /* Before the upstream call starts: read request headers, may add
     * metadata (gw_call_add_metadata). */
    int (*init)(gw_call *c, gw_front_req *r, const void *arg, gw_error *e);
    /* Request body bytes in; either sets *direct (the input is already
     * gRPC framing and was validated: the call forwards it without copying)
     * or appends gRPC-framed bytes to out. */
    int (*request_body)(gw_call *c, const uint8_t *in, size_t n, gw_buf *out,
                        bool *direct, gw_error *e);
    /* The body ended: flush or check what is left. */
    int (*request_end)(gw_call *c, gw_buf *out, gw_error *e);
    /* Response headers from the backend: fill head (status, headers). */
    int (*response_head)(gw_call *c, const gw_header *md, size_t n, gw_call_head *head,
                         gw_error *e);
    /* One response message (unframed protobuf bytes) → body bytes in out. */
    int (*response_message)(gw_call *c, const uint8_t *msg, size_t len, gw_buf *out,
                            gw_error *e);
    /* The final status. head is non-NULL when no head was sent yet (a
     * Trailers-Only answer or a failure before headers): fill it, and the
     * body bytes in out are the whole response. Otherwise append the end of
     * the body (e.g. the gRPC-Web trailer frame) to out. Never fails: an
     * adapter that cannot encode the status must degrade to something the
     * client can read. */
    void (*response_status)(gw_call *c, const gw_call_status *st, gw_call_head *head,
                            gw_buf *out);
    /* Transforms queued body bytes at the moment the client takes them
     * (text mode: padded base64 per flush). Writes at most max bytes to
     * dst, sets *used to the input consumed, returns bytes written. NULL:
     * bytes are copied as they are. */
    size_t (*response_flush)(gw_call *c, const uint8_t *in, size_t n, uint8_t *dst,
                             size_t max, size_t *used);
    /* Frees what the state holds outside the arena (may be NULL). Runs
     * once, whether or not init succeeded. */
    void (*fini)(gw_call *c);
    /* GW_CALL_OWN_METADATA: the adapter picks request metadata itself in
     * init (REST forwards only a few headers), the call forwards none.
     * GW_CALL_HOLD_STREAM_HEAD: a streaming response's head waits for the
     * first message, so a failure before it still gets a real HTTP status
     * (the head is then gw_call_held_head's, given to response_status). */
    unsigned flags;
} gw_call_adapter;
#define GW_CALL_OWN_METADATA 1u
#define GW_CALL_HOLD_STREAM_HEAD 2u

/* The gRPC-Web adapter (call/grpcweb_adapter.c). `arg` for init is a
 * const gw_grpcweb_format *. */
extern const gw_call_adapter gw_call_grpcweb;

/* Body bytes of one gRPC-Web request message at o->max_message in format
 * f (a const gw_grpcweb_format *): what gw_call_grpcweb's body limit leaves
 * room for. */
size_t gw_call_grpcweb_envelope(const gw_call_options *o, const void *f);

/*
 * Starts a call for request r to method m on backend b. On success the call
 * is attached to r and owns itself until the front closes r. On failure
 * before the upstream call started, the client has already been answered
 * (through the adapter's error form) and nothing is attached. Borrows o,
 * cors (copied), m, b, adapter. Returns 0, or the error that was answered.
 */
int gw_call_start(gw_front_req *r, const gw_call_options *o, const gw_call_cors *cors,
                  const gw_method_def *m, gw_backend *b, const gw_call_adapter *adapter,
                  const void *adapter_arg);

/*
 * Answers r with a gRPC status in the adapter's error form without any
 * upstream call (unknown method, body too large before reading it).
 */
int gw_call_reject(gw_front_req *r, const gw_call_options *o, const gw_call_cors *cors,
                   const gw_call_adapter *adapter, const void *adapter_arg, int code,
                   const char *message);

/* ---- for adapters ------------------------------------------------------------ */

void *gw_call_adapter_state(gw_call *c);
gw_arena *gw_call_arena(gw_call *c);
const gw_call_options *gw_call_opts(const gw_call *c);
const gw_method_def *gw_call_method(const gw_call *c);
/* Adds a header to a head (name and value copied into the arena). Returns
 * 0 or GW_ENOMEM. */
int gw_call_head_add(gw_call *c, gw_call_head *h, const char *name, size_t name_len,
                     const char *value, size_t value_len);
/* From init: the protocol's own timeout header gave this timeout (ns; 0 is
 * already expired). It replaces grpc-timeout and is capped by
 * max_deadline_ms like it (Connect-Timeout-Ms). */
void gw_call_set_timeout(gw_call *c, uint64_t timeout_ns);
/* Adds request metadata (copied). Returns 0, GW_ELIMIT or GW_ENOMEM. */
int gw_call_add_metadata(gw_call *c, const char *name, const char *value);

/* The head kept back by the call (unary answers, GW_CALL_HOLD_STREAM_HEAD)
 * while response_status runs with head == NULL: an adapter may change its
 * status and add headers. NULL when no head is held. */
gw_call_head *gw_call_held_head(gw_call *c);

/* From init: the body bytes of one message at o->max_message in this
 * protocol's envelope (default: a gRPC frame). The call's body limit becomes
 * gw_call_body_limit(o, one). */
void gw_call_set_envelope(gw_call *c, size_t one);

/* Turns the adapter's response_flush off for this call: body bytes go to
 * the client as they are (binary gRPC-Web), without a copy through it. */
void gw_call_flush_off(gw_call *c);

/* From response_status, once the head is sent: the body bytes already
 * queued still go out, then the connection is closed without the end of the
 * body (no terminating chunk), so the client sees an incomplete transfer.
 * For a protocol that has no way left to say "failed" (a raw REST HttpBody
 * stream whose backend fails after the first message). */
void gw_call_end_abnormally(gw_call *c);

/* From response_status, when not even the status's code could be written
 * (out of memory): an answer without its status must not read as whole.
 * head: response_status's head of a whole answer, or NULL. A head not sent
 * yet (that one or the held one) becomes the call's bare INTERNAL answer;
 * once the head is sent, the body is cut short (gw_call_end_abnormally). */
void gw_call_status_lost(gw_call *c, gw_call_head *head);

/* The Connect protocol (call/connect_adapter.c). `arg` for init is a
 * const gw_call_connect_arg *. */
extern const gw_call_adapter gw_call_connect;

typedef struct gw_call_connect_arg {
    int kind;                   /* gw_connect_kind: UNARY, STREAM or GET */
    bool json;
    const char *query;          /* GET: after '?', still percent-encoded */
    size_t query_len;
    int http_status;            /* non-zero: answer this HTTP status (a
                                   gw_call_reject before any method: 404
                                   unknown method, 405 GET on a method with
                                   side effects, 415 codec) */
} gw_call_connect_arg;

/* Body bytes of one Connect request message at o->max_message for arg (a
 * const gw_call_connect_arg *): the bare message (unary) or one envelope
 * (streams), as JSON when arg->json. What gw_call_connect's body limit
 * leaves room for. */
size_t gw_call_connect_envelope(const gw_call_options *o, const void *arg);

/* REST/JSON (call/rest_adapter.c). Start it through gw_call_rest_dispatch,
 * which routes the request first. */
extern const gw_call_adapter gw_call_rest;

/* What REST requests run with; borrowed (lives as long as the registry the
 * router was built from). */
typedef struct gw_call_rest_config {
    const gw_router *router;
    const gw_rest_options *rest;
} gw_call_rest_config;

/*
 * Routes r (raw target, still percent-encoded) and starts the REST call, or
 * answers it: 404 / 405 (+ Allow) with a JSON google.rpc.Status body, 400
 * for a malformed %-escape in a path variable, 413 for a declared body over
 * max_body (without reading it). Returns 0 or the error that was answered.
 */
int gw_call_rest_dispatch(gw_front_req *r, const gw_call_options *o, const gw_call_cors *cors,
                          const gw_call_rest_config *rc, gw_backend *b);

/* Maps a gw_err to the gRPC code the call answers with. */
int gw_call_code_for_err(int err);
/* The error to return when the codec could not print a backend's answer
 * (proto -> JSON): the answer is at fault, not the client, so every codec
 * error is INTERNAL (GW_EIO) — malformed, out of range, nested too deeply,
 * too large as JSON — as REST answers 500; only GW_ENOMEM stays
 * (RESOURCE_EXHAUSTED). */
int gw_call_answer_err(int codec_err);

/* ---- other faces (WebSocket) ------------------------------------------------------ */

/*
 * A call can also serve a client that is not a gw_front_req: a face is
 * what the call needs of its client side, the same operations it uses on
 * a front request (see front.h for their contracts). The face drives the
 * call with gw_call_face_ops (owner: the call) exactly as the front drives
 * an attached request, and calls on_close exactly once, last.
 * The adapter's init gets r == NULL; it reads request headers with
 * gw_call_header.
 */
typedef struct gw_call_face {
    const char *(*header)(void *ctx, const char *name);
    void (*headers)(void *ctx, bool (*fn)(void *arg, const char *name, const char *value),
                    void *arg);
    int (*respond)(void *ctx, int status, const gw_front_header *h, size_t n, const void *body,
                   size_t len);
    int (*respond_stream)(void *ctx, int status, const gw_front_header *h, size_t n);
    void (*wake)(void *ctx);
    void (*close_now)(void *ctx);
} gw_call_face;

extern const gw_front_req_ops gw_call_face_ops;

/*
 * gw_call_start for a face on loop l. On success *out is the call (the
 * face's owner for gw_call_face_ops). On failure the face was already
 * answered through face->respond, nothing is left, and the error returned.
 * Borrows face and face_ctx until on_close.
 */
int gw_call_start_face(const gw_call_face *face, void *face_ctx, gw_loop *l,
                       const gw_call_options *o, const gw_call_cors *cors,
                       const gw_method_def *m, const gw_call_adapter *adapter,
                       const void *adapter_arg, gw_call **out);
/* gw_call_reject for a face: answered through face->respond at once. */
void gw_call_reject_face(const gw_call_face *face, void *face_ctx, gw_loop *l,
                         const gw_call_options *o, const gw_call_adapter *adapter,
                         const void *adapter_arg, int code, const char *message);
/* Ends the call with a status from the face's side (a bad client frame,
 * an idle timeout, a drain): the upstream call is cancelled and the status
 * answered through the adapter. Nothing if the call already ended. */
void gw_call_face_fail(gw_call *c, int code, const char *message);
/* Whether the final status was handled (the answer's end is queued). */
bool gw_call_finished(const gw_call *c);

/* A request header of the call's client (front request or face). */
const char *gw_call_header(gw_call *c, const char *name);

/* grpc-websockets (call/grpcws_adapter.c): gRPC-Web binary frames over a
 * WebSocket face; init's arg is unused. */
extern const gw_call_adapter gw_call_grpcws;

/* JSON over WebSocket (call/wsjson_adapter.c): ProtoJSON text messages
 * each way, the status last in the REST error shape; init's arg is the
 * const gw_rest_options * to print with (may be NULL). */
extern const gw_call_adapter gw_call_wsjson;

#endif
