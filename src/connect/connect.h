/*
 * connect — the Connect protocol's wire format, as a pure module
 * (connectrpc.com/docs/protocol): which requests are Connect requests, the
 * code ↔ HTTP table, Connect-Timeout-Ms, the 5-byte envelope of streaming
 * bodies (a validating scanner; payloads are never copied by it), the JSON
 * error body and end-of-stream message, the query of unary GET requests,
 * Accept-Encoding lists and gzip with a bounded output.
 *
 * No I/O, no clocks, no allocation except into gw_buf the caller owns (and
 * zlib's own state, freed before each function returns). Errors carry the
 * byte offset in the request body or query where input went wrong.
 */
#ifndef GW_CONNECT_H
#define GW_CONNECT_H

#include "base/base.h"
#include "schema/schema.h"

/* ---- classification ---------------------------------------------------------------- */

typedef enum gw_connect_kind {
    GW_CONNECT_NONE = 0,     /* not a Connect request (gRPC-Web, REST, static) */
    GW_CONNECT_UNARY,        /* POST application/proto | application/json + header */
    GW_CONNECT_STREAM,       /* POST application/connect+proto | +json */
    GW_CONNECT_GET,          /* GET ...?connect=v1 (unary GET) */
    GW_CONNECT_BAD_CODEC,    /* application/connect+<other>: 415 */
} gw_connect_kind;

typedef struct gw_connect_format {
    gw_connect_kind kind;
    bool json;               /* JSON messages (else binary protobuf); for GET
                                set from the query by gw_connect_get_parse */
} gw_connect_format;

/*
 * Classifies a request (docs/connect.md, "Which requests are Connect"):
 *   - POST with Content-Type application/connect+proto or +json: a stream
 *     (any other application/connect+ codec: GW_CONNECT_BAD_CODEC);
 *   - POST with Content-Type application/proto: unary;
 *   - POST with Content-Type application/json and a Connect-Protocol-Version
 *     header (any value; init checks it): unary. Without the header a JSON
 *     POST stays REST (docs/rest.md), as before;
 *   - GET whose query has a connect= parameter: unary GET (a value other
 *     than v1 is refused by gw_connect_get_parse, as connect-go does).
 * Content-Type parameters after ';' and case are ignored. method,
 * content_type (may be NULL) and query (after '?', may be NULL) borrowed.
 */
gw_connect_format gw_connect_classify(const char *method, const char *content_type,
                                      bool has_protocol_version, const char *query,
                                      size_t query_len);

/* The response Content-Type for a format (static string). */
const char *gw_connect_content_type(gw_connect_format f);

/* ---- codes ---------------------------------------------------------------------------- */

/* Connect's code → HTTP status table (canceled 499, unknown 500, ...,
 * unauthenticated 401); 500 for codes outside 1..16. */
int gw_connect_code_to_http(int code);

/* ---- Connect-Timeout-Ms -------------------------------------------------------- */

/* Parses a Connect-Timeout-Ms value: 1 to 10 ASCII digits, nothing else.
 * Returns 0 and *ms, or GW_EPARSE. */
int gw_connect_timeout_parse(const char *s, size_t n, uint64_t *ms);

/* ---- compression -------------------------------------------------------------------- */

typedef enum gw_connect_encoding {
    GW_CONNECT_IDENTITY = 0,
    GW_CONNECT_GZIP = 1,
} gw_connect_encoding;

/* The names the gateway supports, for "unimplemented" messages. */
#define GW_CONNECT_ENCODINGS "gzip, identity"

/* A Content-Encoding / Connect-Content-Encoding / compression= value:
 * "identity" (or NULL, empty) and "gzip" (case-insensitive). Returns 0 and
 * *enc, or GW_ENOTFOUND for anything else. */
int gw_connect_encoding_parse(const char *s, size_t n, gw_connect_encoding *enc);

/* Whether an Accept-Encoding / Connect-Accept-Encoding list names gzip
 * (elements split at ',', spaces and ";q=..." parameters ignored, except
 * q=0 which refuses it). NULL is false. */
bool gw_connect_accepts_gzip(const char *value);

/*
 * Decompresses the gzip stream in[0..n) and appends it to out, refusing to
 * write more than max bytes (the message limit): GW_ELIMIT, before the
 * output grows past it. Trailing bytes after the gzip end, a truncated or
 * corrupt stream: GW_EPARSE. Returns 0, GW_EPARSE, GW_ELIMIT, GW_ENOMEM.
 */
int gw_connect_gunzip(const uint8_t *in, size_t n, size_t max, gw_buf *out, gw_error *e);

/* Compresses in[0..n) as one gzip stream appended to out. Returns 0,
 * GW_ELIMIT (out->max) or GW_ENOMEM. */
int gw_connect_gzip(const uint8_t *in, size_t n, gw_buf *out);

/* ---- envelopes --------------------------------------------------------------------- */

#define GW_CONNECT_FLAG_COMPRESSED 0x01u
#define GW_CONNECT_FLAG_END_STREAM 0x02u
#define GW_CONNECT_ENVELOPE_LEN 5u

/* Writes an envelope header: flags then big-endian length. */
void gw_connect_envelope_header(uint8_t out[5], uint8_t flags, uint32_t len);

/*
 * Validating scanner for request envelopes. Feed it the body bytes in
 * order; it never copies payloads and keeps only a partial header between
 * calls. A request envelope may carry the compressed flag (only when
 * allow_compressed: a Connect-Content-Encoding other than identity was
 * given) and nothing else: the end-stream flag belongs to responses.
 */
typedef struct gw_connect_scanner {
    size_t max_message;      /* largest payload accepted (0: 4 MiB) */
    bool allow_compressed;
    uint8_t header[5];
    size_t header_have;      /* bytes of the current header seen (0..4) */
    size_t payload_left;     /* payload bytes still due for the current envelope */
    uint64_t offset;         /* body bytes scanned so far */
    uint64_t envelopes;      /* complete envelopes */
} gw_connect_scanner;

void gw_connect_scanner_init(gw_connect_scanner *s, size_t max_message, bool allow_compressed);
/* Scans n more bytes. Returns 0, GW_EPARSE (end-stream or unknown flag,
 * compressed without an encoding) or GW_ELIMIT (length over max_message),
 * with the body offset in e. Not to be fed again after an error. */
int gw_connect_scanner_feed(gw_connect_scanner *s, const uint8_t *data, size_t n, gw_error *e);
/* The body ended: 0 on an envelope boundary, else GW_EPARSE. */
int gw_connect_scanner_finish(const gw_connect_scanner *s, gw_error *e);

/*
 * Reads the next whole envelope from data[0..n) (response side and tests):
 * returns the bytes it spans (5 + length) and sets *flags, *payload,
 * *payload_len; 0 when more bytes are needed. Never fails: lengths are
 * bounded by the caller's buffer.
 */
size_t gw_connect_envelope_next(const uint8_t *data, size_t n, uint8_t *flags,
                                const uint8_t **payload, size_t *payload_len);

/* ---- errors and end of stream ----------------------------------------------------- */

/* Metadata for the end-of-stream message and trailers (borrowed). */
typedef struct gw_connect_md {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} gw_connect_md;

/*
 * Appends the JSON Error object {"code": "not_found", "message": ...,
 * "details": [{"type": ..., "value": ..., "debug": {...}}]}. details_bin is
 * a serialized google.rpc.Status (grpc-status-details-bin, decoded) or NULL;
 * each of its Any details becomes one entry: "type" the message name (the
 * type URL after its last '/'), "value" unpadded standard base64, and
 * "debug" its JSON when the registry r (may be NULL) knows the type and the
 * bytes decode. An empty message is left out; details that do not parse
 * are left out. code must be 1..16 (others are written as "unknown").
 * Returns 0, GW_ELIMIT or GW_ENOMEM.
 */
int gw_connect_error_json(gw_buf *out, const gw_registry *r, int code, const char *message,
                          const uint8_t *details_bin, size_t details_len);

/*
 * Appends a whole end-of-stream envelope (flag 0x02): {"error": ...} when
 * code != 0 (as gw_connect_error_json), and "metadata": {"key": ["v", ...]}
 * with the trailers whose keys are valid metadata keys (lower-cased; values
 * of one key grouped; "grpc-" keys and values that are not printable ASCII
 * left out). Returns 0, GW_ELIMIT or GW_ENOMEM (out is then unchanged).
 */
int gw_connect_end_stream(gw_buf *out, const gw_registry *r, int code, const char *message,
                          const uint8_t *details_bin, size_t details_len,
                          const gw_connect_md *md, size_t md_count);

/* ---- unary GET ------------------------------------------------------------------------ */

typedef struct gw_connect_get {
    bool json;                    /* encoding=json (else proto) */
    gw_connect_encoding compression;
    bool base64;                  /* base64=1 */
    bool version;                 /* connect=v1 present */
} gw_connect_get;

/*
 * Parses a unary GET query (the part after '?', still percent-encoded):
 * connect=v1, encoding=json|proto (required), message= (required; may be
 * empty), base64=1 (URL-safe or standard alphabet, padding optional),
 * compression=identity|gzip. Parameters in any order; unknown ones are
 * ignored; a repeated Connect parameter is an error. The message bytes,
 * percent- and base64-decoded but still compressed, are appended to
 * message (its max bounds them). Returns 0, GW_EPARSE (bad escape, bad
 * base64, missing encoding/message, connect= other than v1), GW_EINVAL
 * (an encoding other than json/proto: 415), GW_ENOTFOUND (a compression the
 * gateway does not support: unimplemented), GW_ELIMIT, GW_ENOMEM; e says
 * which parameter.
 */
int gw_connect_get_parse(const char *query, size_t len, gw_connect_get *g, gw_buf *message,
                         gw_error *e);

#endif
