/*
 * grpcweb — the gRPC-Web wire format, as a pure module: content-type
 * classification, a validating scanner for request frames (the bytes pass
 * through unchanged, only the 5-byte headers are read), an incremental
 * base64 decoder for text mode that accepts several padded chunks, frame
 * headers and the trailer frame for responses.
 *
 * No I/O, no clocks, no allocation except into gw_buf the caller owns.
 * Errors carry the byte offset in the request body where input went wrong.
 */
#ifndef GW_GRPCWEB_H
#define GW_GRPCWEB_H

#include "base/base.h"

/* ---- content types ------------------------------------------------------- */

typedef struct gw_grpcweb_format {
    bool text;   /* application/grpc-web-text*: base64 body */
    bool json;   /* +json: JSON messages inside the framing */
} gw_grpcweb_format;

/*
 * Classifies a Content-Type value (parameters after ';' are ignored, case is
 * not significant). Returns 0 and fills *f for application/grpc-web,
 * grpc-web+proto, grpc-web-text, grpc-web-text+proto and the +json forms;
 * GW_EINVAL for a grpc-web type with another codec ("+thrift"), which the
 * gateway cannot translate; GW_ENOTFOUND for anything else.
 */
int gw_grpcweb_classify(const char *content_type, size_t n, gw_grpcweb_format *f);

/* The response Content-Type for a request format (static string). */
const char *gw_grpcweb_content_type(gw_grpcweb_format f);

/* ---- frames ------------------------------------------------------------------ */

#define GW_GRPCWEB_FLAG_COMPRESSED 0x01u
#define GW_GRPCWEB_FLAG_TRAILERS 0x80u
#define GW_GRPCWEB_HEADER_LEN 5u

/* Writes a frame header: flag then big-endian length. */
void gw_grpcweb_frame_header(uint8_t out[5], uint8_t flag, uint32_t len);

/*
 * Validating scanner for request frames. Feed it the body bytes in order;
 * it never copies payloads and keeps only a partial header between calls.
 * The struct is plain data: copy it to validate bytes tentatively.
 */
typedef struct gw_grpcweb_scanner {
    size_t max_message;      /* largest payload accepted (0: 4 MiB) */
    bool allow_compressed;   /* a grpc-encoding was negotiated */
    uint8_t header[5];
    size_t header_have;      /* bytes of the current header seen (0..4) */
    size_t payload_left;     /* payload bytes still due for the current frame */
    uint64_t offset;         /* body bytes scanned so far */
    uint64_t frames;         /* complete frames */
} gw_grpcweb_scanner;

void gw_grpcweb_scanner_init(gw_grpcweb_scanner *s, size_t max_message,
                             bool allow_compressed);
/*
 * Scans n more body bytes. Returns 0, GW_EPARSE (a trailer flag or an
 * unknown flag bit in a request, a compressed frame without negotiated
 * encoding) or GW_ELIMIT (length prefix over max_message); e says what and
 * at which body offset. After an error the scanner must not be fed again.
 */
int gw_grpcweb_scanner_feed(gw_grpcweb_scanner *s, const uint8_t *data, size_t n,
                            gw_error *e);
/* The body ended: returns 0 if it ended on a frame boundary, else GW_EPARSE
 * naming the frame that was cut short. */
int gw_grpcweb_scanner_finish(const gw_grpcweb_scanner *s, gw_error *e);

/* ---- text mode ------------------------------------------------------------ */

/*
 * Incremental base64 decoder. Each 4-character group is decoded on its own,
 * so a body made of several separately padded chunks ("AAAABQ==AAAA...")
 * decodes as their concatenation. Standard alphabet only (what grpc-web
 * clients send); no whitespace.
 */
typedef struct gw_grpcweb_b64 {
    char group[4];
    size_t group_have;   /* 0..3 characters kept between calls */
    uint64_t offset;     /* characters consumed so far */
} gw_grpcweb_b64;

void gw_grpcweb_b64_init(gw_grpcweb_b64 *d);
/* Upper bound of the bytes gw_grpcweb_b64_decode writes for n characters. */
static inline size_t gw_grpcweb_b64_max_out(size_t n) { return (n + 3) / 4 * 3 + 3; }
/*
 * Decodes n characters into out (room for gw_grpcweb_b64_max_out(n)) and
 * sets *out_len. Returns 0 or GW_EPARSE with the offset of the bad
 * character in e (a character outside the alphabet, '=' in the first two
 * places of a group, a data character after '=').
 */
int gw_grpcweb_b64_decode(gw_grpcweb_b64 *d, const char *in, size_t n, uint8_t *out,
                          size_t *out_len, gw_error *e);
/* End of input: an unpadded final group of 2 or 3 characters is accepted
 * and written to out (room for 2 bytes); a single stray character is
 * GW_EPARSE. */
int gw_grpcweb_b64_finish(gw_grpcweb_b64 *d, uint8_t *out, size_t *out_len, gw_error *e);

/* ---- trailer frame ----------------------------------------------------------- */

/*
 * The trailer frame is built in place: begin reserves the 5-byte header,
 * add appends "name: value\r\n" with the name lowercased, end back-fills
 * the length. `start` is b->len before begin.
 *
 * add returns 0, GW_EINVAL (a name that is not a token or a value with CR,
 * LF or NUL: the entry is skipped by callers that forward metadata),
 * GW_ELIMIT or GW_ENOMEM from the buffer.
 */
int gw_grpcweb_trailer_begin(gw_buf *b, size_t *start);
int gw_grpcweb_trailer_add(gw_buf *b, const char *name, size_t name_len,
                           const char *value, size_t value_len);
void gw_grpcweb_trailer_end(gw_buf *b, size_t start);

/*
 * Appends grpc-status, grpc-message (percent-encoded; left out when empty)
 * and grpc-status-details-bin (padded base64; left out when details is NULL)
 * as trailer entries. Returns 0, GW_ELIMIT or GW_ENOMEM.
 */
int gw_grpcweb_trailer_add_status(gw_buf *b, int code, const char *message,
                                  const uint8_t *details, size_t details_len);

/* True if name[0..n) is a valid header name (RFC 9110 token). */
bool gw_grpcweb_header_name_ok(const char *name, size_t n);
/* True if value[0..n) may be sent as a header value (no CR, LF, NUL). */
bool gw_grpcweb_header_value_ok(const char *value, size_t n);

#endif
