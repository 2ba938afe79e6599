/*
 * rest — REST/JSON transcoding for google.api.http routes, as pure functions:
 * strings and bytes in, wire bytes / JSON bytes and a status out. No sockets,
 * no libmicrohttpd, no clocks. The protocol adapter in src/call drives it:
 *
 *   request:
 *     gw_router_match                      (src/route)  → route + bindings,
 *        or gw_rest_route_status            404 / 405 (+ Allow) as a status
 *     gw_rest_check_content_type           415 unless JSON (or HttpBody route)
 *     gw_rest_request_metadata             headers → gRPC metadata, deadline
 *     unary:   gw_rest_build_request       path + query + body → wire bytes
 *     client streaming:
 *              gw_json_splitter_*          body bytes → one JSON message at a
 *                                          time, as they arrive
 *              gw_rest_build_stream_message  each message → wire bytes
 *   response:
 *     unary:   gw_rest_unary_response      wire bytes → JSON (or raw HttpBody)
 *     streams: gw_rest_stream_content_type + gw_rest_stream_message per
 *              message, gw_rest_stream_error for a failure after the first;
 *              HttpBody streams: gw_rest_stream_http_body per message (raw)
 *     errors:  gw_rest_error_response      status (+ details) → HTTP status +
 *                                          google.rpc.Status JSON body
 *     headers: gw_rest_metadata_header_name  "Grpc-Metadata-k"/"Grpc-Trailer-k"
 *
 * Client-visible failures are reported in a gw_rest_status: a gRPC code, the
 * HTTP status to answer with, and a message that says which parameter or
 * field was wrong and why. Functions return 0, a negative gw_err for
 * failures that are not the client's fault (GW_ENOMEM), or GW_EINVAL /
 * GW_EPARSE / GW_ELIMIT with the status filled for client errors.
 */
#ifndef GW_REST_H
#define GW_REST_H

#include "base/base.h"
#include "codec/codec.h"
#include "route/route.h"
#include "schema/schema.h"

/* ---------------------------------------------------------------------------
 * Options (per server configuration; immutable while serving).
 */
typedef struct gw_rest_options {
    /* Request side. */
    bool strict_query;          /* unknown query parameters → 400 (default off:
                                   ignored, as grpc-gateway and Envoy do) */
    const char *const *ignored_query; /* names always ignored (API keys), even
                                         when strict; borrowed */
    size_t ignored_query_count;
    bool ignore_unknown_body_fields; /* JSON body keys that are not fields are
                                        skipped instead of a 400 (default off) */
    bool strict_content_type;   /* only application/json (default off: curl's
                                   default form type and no type are read as
                                   JSON too; see docs/rest.md) */
    bool patch_fill_mask;       /* PATCH without a mask: fill it from the body
                                   keys (default on) */
    const char *const *header_allowlist; /* extra request headers forwarded as
                                            metadata (lowercase); borrowed */
    size_t header_allowlist_count;
    size_t max_message;         /* bytes of one request message (default 4 MiB) */
    unsigned max_depth;         /* JSON nesting (default 100) */

    /* Response side. */
    bool emit_defaults;         /* print fields at their default values */
    bool proto_names;           /* print proto field names ("created_at") */
    bool enums_as_ints;         /* print enums as numbers */
    bool grpc_gateway_v1_errors; /* error bodies as grpc-gateway 1.x wrote them:
                                   {"error":msg,"message":msg,"code":n[,"details"]}
                                   and, in streams,
                                   {"error":{"grpc_code","http_code","message",
                                   "http_status"[,"details"]}} */
} gw_rest_options;

/* Defaults as described on each member. */
void gw_rest_options_init(gw_rest_options *o);

/* A client-visible outcome. */
typedef struct gw_rest_status {
    int code;          /* gw_code */
    int http_status;   /* what to answer: gw_code_to_http(code) unless the
                          failure is HTTP-level (404, 405, 413, 415) */
    char message[GW_ERROR_MSG_MAX];
} gw_rest_status;

/* Sets st to OK / 200 / "". */
void gw_rest_status_clear(gw_rest_status *st);

/* For a match that is not GW_ROUTE_MATCHED: NOT_FOUND/404 ("no route for GET
 * /x") or UNIMPLEMENTED/405 ("GET not allowed; allowed: POST"); the adapter
 * adds the Allow header (gw_route_allow_header). */
void gw_rest_route_status(const gw_route_match *m, const char *http_method,
                          const char *path, size_t path_len, gw_rest_status *st);

/* ---------------------------------------------------------------------------
 * Request side.
 */

/* True when the route's request body is a google.api.HttpBody (request type
 * with body "*", or the body field's type): the raw body is taken as is. */
bool gw_rest_route_takes_http_body(const gw_route *rt);

/*
 * Checks the request Content-Type (NULL when absent) against the route:
 * routes without a body accept anything, HttpBody routes accept anything,
 * others accept application/json with an optional charset=utf-8 parameter
 * (and, unless strict_content_type, a missing type and
 * application/x-www-form-urlencoded, which is what `curl -d` sends).
 * Returns 0, or GW_EINVAL with st = INVALID_ARGUMENT/415.
 */
int gw_rest_check_content_type(const gw_rest_options *o, const gw_route *rt,
                               const char *content_type, gw_rest_status *st);

/* A request's inputs, all borrowed. */
typedef struct gw_rest_request {
    const gw_registry *registry;
    const gw_route_match *match;   /* GW_ROUTE_MATCHED */
    const char *query;             /* raw query string after '?', or NULL */
    size_t query_len;
    const char *content_type;      /* header value or NULL (HttpBody) */
    const uint8_t *body;           /* whole body (unary); may be NULL */
    size_t body_len;
} gw_rest_request;

/* What the query string asked for beyond fields. */
typedef struct gw_rest_print {
    bool pretty;                   /* ?pretty or ?pretty=true */
} gw_rest_print;

/*
 * Builds the request message (wire bytes, appended to out) of a unary or
 * server-streaming call: the body (per the rule's `body`), then the query
 * parameters, then a filled FieldMask (PATCH), then the path variables, so
 * that by protobuf merge rules the path wins over the query and the query
 * over the body. A singular sub-message that several of them bind into is
 * then written once, already merged (readers such as protobuf-c 1.4 and
 * protobufjs do not merge repeated occurrences). A body field that is also
 * bound by the path with a different value is INVALID_ARGUMENT. out->max bounds the message (set it;
 * o->max_message applies as well). print receives ?pretty.
 * Returns 0; GW_EINVAL/GW_EPARSE/GW_ERANGE/GW_ELIMIT with st filled
 * (INVALID_ARGUMENT/400, or 413 for a message over the limit); GW_ENOMEM.
 * On error out is back at its original length.
 */
int gw_rest_build_request(const gw_rest_options *o, const gw_rest_request *rq,
                          gw_buf *out, gw_rest_print *print, gw_rest_status *st);

/*
 * One message of a client-streaming body (a JSON value from the splitter)
 * → wire bytes appended to out. The rule's body must be "*" (or a field: the
 * value is then that field's JSON). Same returns as gw_rest_build_request.
 */
int gw_rest_build_stream_message(const gw_rest_options *o, const gw_registry *r,
                                 const gw_route *rt, const char *json, size_t len,
                                 gw_buf *out, gw_rest_status *st);

/* Parses the query string only for ?pretty (streams of client messages do
 * not bind the query). */
void gw_rest_parse_print(const char *query, size_t len, gw_rest_print *print);

/* Request headers as the adapter sees them (names in any case). */
typedef struct gw_rest_header {
    const char *name;
    const char *value;
} gw_rest_header;

/* Receives one metadata entry (key lowercase). Non-zero stops and is
 * returned. */
typedef int (*gw_rest_metadata_fn)(void *ctx, const char *key, const char *value);

/*
 * Maps request headers to gRPC metadata: Authorization → authorization,
 * Grpc-Metadata-<k> → <k> (lowercased), allowlisted headers as themselves,
 * X-Forwarded-For (existing value + ", " + peer, or the peer), and
 * X-Forwarded-Host (the header, else Host). Keys that are not valid metadata
 * keys ([0-9a-z_.-], not "grpc-"...) or values that are not printable ASCII
 * are dropped. Grpc-Timeout sets *timeout_ns (-1 when absent); a malformed
 * value is INVALID_ARGUMENT/400. peer may be NULL.
 * Returns 0, fn's value, or GW_EINVAL with st filled.
 */
int gw_rest_request_metadata(const gw_rest_options *o, const gw_rest_header *h, size_t n,
                             const char *peer, gw_rest_metadata_fn fn, void *ctx,
                             int64_t *timeout_ns, gw_rest_status *st);

/* Parses a grpc-timeout value ("100m", 1..8 digits + H M S m u n) into
 * nanoseconds. Returns 0 or GW_EPARSE. */
int gw_rest_parse_timeout(const char *s, int64_t *ns);

/* ---------------------------------------------------------------------------
 * Client-streaming bodies: newline-delimited JSON values, or one JSON array
 * whose elements are the messages. The splitter scans bytes as they arrive
 * and hands out one complete top-level value at a time; it only buffers the
 * value being read (at most max_message bytes), never the whole body.
 */
typedef struct gw_json_splitter {
    gw_buf value;        /* bytes of the value being read */
    int mode;            /* private */
    int state;           /* private */
    size_t depth;        /* private */
    bool in_string, escape;
    size_t offset;       /* bytes of the body seen so far (for errors) */
    size_t count;        /* values returned so far */
    bool value_ready;    /* private */
} gw_json_splitter;

void gw_json_splitter_init(gw_json_splitter *s, size_t max_message);
void gw_json_splitter_free(gw_json_splitter *s);

/*
 * Consumes bytes from data[0..len) until one value is complete or the input
 * is used up. *consumed says how many bytes were taken; call again with the
 * rest. When a value is complete, returns 0 with *msg and *msg_len pointing to
 * it (valid until the next call). Returns GW_EAGAIN when more input is
 * needed, GW_EPARSE (not a sequence of JSON values / a malformed array; e
 * gives the byte offset), GW_ELIMIT (a value over max_message), GW_ENOMEM.
 */
int gw_json_splitter_next(gw_json_splitter *s, const uint8_t *data, size_t len,
                          size_t *consumed, const char **msg, size_t *msg_len,
                          gw_error *e);

/*
 * End of body: returns 0 with the last value if one was pending (a scalar at
 * the very end), GW_ECLOSED when the body ended cleanly with nothing more,
 * GW_EPARSE for a truncated value or an unclosed array.
 */
int gw_json_splitter_finish(gw_json_splitter *s, const char **msg, size_t *msg_len,
                            gw_error *e);

/* ---------------------------------------------------------------------------
 * Response side.
 */

/*
 * A unary response message (wire bytes of the method's output type) → the
 * HTTP body. JSON with Content-Type application/json, or the
 * `response_body` field's JSON; an HttpBody (output type or response_body
 * field) is written raw with its own content type ("application/octet-stream"
 * when empty). content_type receives a NUL-terminated value (ct_cap bytes).
 * Returns 0; GW_EPARSE/GW_ERANGE/GW_ELIMIT with st = INTERNAL/500 (the
 * backend sent bytes that do not fit the schema); GW_ENOMEM.
 */
int gw_rest_unary_response(const gw_rest_options *o, const gw_registry *r,
                           const gw_route *rt, const gw_rest_print *print,
                           const uint8_t *msg, size_t len, gw_buf *out,
                           char *content_type, size_t ct_cap, gw_rest_status *st);

typedef enum gw_rest_stream_format {
    GW_REST_STREAM_NDJSON = 0,   /* {"result": msg}\n per message */
    GW_REST_STREAM_SSE,          /* data: msg\n\n per message */
} gw_rest_stream_format;

/* SSE when the Accept header (may be NULL) lists text/event-stream. */
gw_rest_stream_format gw_rest_stream_format_from_accept(const char *accept);
/* "application/json" (what grpc-gateway sends for NDJSON streams) or
 * "text/event-stream". */
const char *gw_rest_stream_content_type(gw_rest_stream_format f);

/*
 * One server-streamed message → its frame appended to out. Always compact
 * JSON (an indented value would break line framing). A `response_body`
 * field applies to each message. Same returns as gw_rest_unary_response.
 */
int gw_rest_stream_message(const gw_rest_options *o, const gw_registry *r,
                           const gw_route *rt, gw_rest_stream_format f,
                           const uint8_t *msg, size_t len, gw_buf *out,
                           gw_rest_status *st);

/* True when the method's response (or its `response_body` field) is a
 * google.api.HttpBody, so a server stream of it is sent raw
 * (gw_rest_stream_http_body) instead of as NDJSON/SSE frames. */
bool gw_rest_route_returns_http_body(const gw_route *rt);

/*
 * One server-streamed google.api.HttpBody message (the output type or the
 * `response_body` field) → its `data` bytes appended to out as they are, no
 * envelope. content_type receives the message's content_type
 * ("application/octet-stream" when empty or not a safe header value),
 * NUL-terminated in ct_cap bytes: the caller uses the first message's.
 * Same returns as gw_rest_unary_response.
 */
int gw_rest_stream_http_body(const gw_route *rt, const uint8_t *msg, size_t len, gw_buf *out,
                             char *content_type, size_t ct_cap, gw_rest_status *st);

/*
 * An error: the JSON body of a google.rpc.Status. code and message are the
 * call's status; details_bin (may be NULL) is grpc-status-details-bin
 * already base64-decoded (a serialized google.rpc.Status), whose details are
 * printed, each decoded through the registry when its type is known, else
 * as {"@type": url, "value": base64}. A details blob that does not parse is
 * ignored (the code and message still go out). r may be NULL.
 * Appends the body to out and sets *http_status. Returns 0, GW_ELIMIT,
 * GW_ENOMEM.
 */
int gw_rest_error_response(const gw_rest_options *o, const gw_registry *r, int code,
                           const char *message, const uint8_t *details_bin,
                           size_t details_len, gw_buf *out, int *http_status);

/* The error body for a gw_rest_status the request side produced (its
 * http_status, e.g. 404/405/415, is what to answer; the body says code and
 * message). Returns 0, GW_ELIMIT, GW_ENOMEM. */
int gw_rest_status_response(const gw_rest_options *o, const gw_rest_status *st,
                            gw_buf *out);

/*
 * A failure after the first streamed message: appends the error frame
 * ({"error": status}\n, or "event: error\ndata: status\n\n"). Same
 * arguments and returns as gw_rest_error_response.
 */
int gw_rest_stream_error(const gw_rest_options *o, const gw_registry *r,
                         gw_rest_stream_format f, int code, const char *message,
                         const uint8_t *details_bin, size_t details_len, gw_buf *out);

/*
 * A failure before the first streamed message gets a real HTTP status; its
 * body is gw_rest_error_response's, or with grpc_gateway_v1_errors the
 * stream form {"error":{...}} grpc-gateway 1.x sends. Same returns.
 */
int gw_rest_stream_error_first(const gw_rest_options *o, const gw_registry *r, int code,
                               const char *message, const uint8_t *details_bin,
                               size_t details_len, gw_buf *out, int *http_status);

/*
 * Response metadata key → HTTP header name: "Grpc-Metadata-<key>" for
 * headers, "Grpc-Trailer-<key>" for trailers. Writes into out (cap bytes,
 * NUL-terminated). Returns 0 or GW_ELIMIT.
 */
int gw_rest_metadata_header_name(const char *key, bool trailer, char *out, size_t cap);

#endif
