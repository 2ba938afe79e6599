/*
 * wsproto — the pure parts of WebSocket (RFC 6455) for the gateway: the
 * opening handshake's checks and Sec-WebSocket-Accept, and the
 * `grpc-websockets` mapping spoken by improbable-eng's grpcwebproxy and
 * its WebsocketTransport (docs/websocket.md):
 *   - the client's first message is the request header block as text
 *     lines "Name: value\r\n";
 *   - every later client message is binary and starts with a control
 *     byte: 0 = data (the rest is gRPC-framed request bytes, a byte stream
 *     that may cut frames anywhere), 1 alone = the client finished sending;
 *   - the server answers with gRPC-Web frames: a header block flagged 0x80
 *     (the response headers), messages, and the trailers as a final 0x80
 *     block (gw_grpcweb_trailer_* builds both).
 * No I/O, no allocation except into caller buffers; fuzzed
 * (tests/wsproto/fuzz_wsproto.c).
 */
#ifndef GW_WSPROTO_H
#define GW_WSPROTO_H

#include "base/base.h"

/* The subprotocol name grpcwebproxy answers with. */
#define GW_WSPROTO_GRPC "grpc-websockets"

/* ---- handshake --------------------------------------------------------------- */

/* True if key (NUL-terminated Sec-WebSocket-Key) is base64 of exactly 16
 * bytes (24 characters, padded), as RFC 6455 4.2.1 requires. */
bool gw_wsproto_key_ok(const char *key);

/* Sec-WebSocket-Accept for key: base64(SHA-1(key + GUID)), 28 characters
 * and a NUL into out. */
void gw_wsproto_accept(const char *key, char out[29]);

/* True if the comma-separated header value list contains token
 * (case-insensitive, optional whitespace around elements). NULL is false. */
bool gw_wsproto_token_listed(const char *list, const char *token);

/* SHA-1 (FIPS 180-4) of in[0..n) into out; for the handshake only. */
void gw_wsproto_sha1(const uint8_t *in, size_t n, uint8_t out[20]);

/* ---- grpc-websockets ---------------------------------------------------------- */

typedef struct gw_wsproto_header {
    const char *name;    /* points into the parsed block; not NUL-terminated */
    size_t name_len;
    const char *value;   /* surrounding whitespace trimmed */
    size_t value_len;
} gw_wsproto_header;

/*
 * Parses the client's header block ("Name: value" lines ended by CRLF or
 * LF; the last line may lack its end; empty lines are skipped). Entries
 * point into p. Returns 0 and *count, GW_EPARSE (a line without ':', a name
 * that is not a token, a value with a control character other than tab;
 * message in e naming the line) or GW_ELIMIT (more than max entries).
 */
int gw_wsproto_parse_headers(const uint8_t *p, size_t n, gw_wsproto_header *out, size_t max,
                             size_t *count, gw_error *e);

enum { GW_WSPROTO_DATA = 0, GW_WSPROTO_FINISH = 1 };

/*
 * Classifies a binary client message after the header block: *kind
 * GW_WSPROTO_DATA with the request bytes in *data and *len (may be empty), or
 * GW_WSPROTO_FINISH. Returns 0 or GW_EPARSE (an empty message, a control
 * byte other than 0 and 1, or 1 followed by more bytes).
 */
int gw_wsproto_client_message(const uint8_t *p, size_t n, int *kind, const uint8_t **data,
                              size_t *len, gw_error *e);

#endif
