/*
 * base — what every other module uses: error codes and messages, gRPC status
 * codes, the per-call arena, bounded growable buffers, base64, percent
 * coding and logging. Pure: no sockets, no threads, no clocks (the logger
 * writes to a FILE the caller gives it).
 */
#ifndef GW_BASE_H
#define GW_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------
 * Errors inside the process. Functions return 0 or one of these (negative).
 */
typedef enum gw_err {
    GW_OK = 0,
    GW_ENOMEM = -1,    /* allocation failed */
    GW_EINVAL = -2,    /* invalid argument or input */
    GW_ELIMIT = -3,    /* a configured maximum would be exceeded */
    GW_EPARSE = -4,    /* malformed input (where: see gw_error.msg) */
    GW_EAGAIN = -5,    /* incomplete input or would block: call again */
    GW_EIO = -6,       /* a system call failed */
    GW_ENOTFOUND = -7, /* no such name */
    GW_ERANGE = -8,    /* well-formed but not representable in the target */
    GW_ECLOSED = -9,   /* the object was closed or cancelled */
    GW_ESTATE = -10,   /* called in the wrong state */
    GW_EDEPTH = -11,   /* input nested deeper than its limit (a shape limit,
                          not a size: the input's fault, docs/codec.md) */
} gw_err;

/* A short English name for an error code ("out of memory"). Never NULL. */
const char *gw_err_str(int err);

/*
 * An error with its message. Functions that can fail in ways a user must
 * understand take a `gw_error *` (may be NULL) and fill it; the code is the
 * same value the function returns.
 */
#define GW_ERROR_MSG_MAX 512
typedef struct gw_error {
    int code;                     /* gw_err, 0 when no error */
    char msg[GW_ERROR_MSG_MAX];   /* NUL-terminated, truncated if longer */
} gw_error;

/* Sets e (if not NULL) and returns code, so that `return gw_error_set(...)`
 * reads naturally. */
int gw_error_set(gw_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int gw_error_setv(gw_error *e, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* Prefixes the existing message with "prefix: " (e.g. a file name). */
void gw_error_prefix(gw_error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void gw_error_clear(gw_error *e);

/* ---------------------------------------------------------------------------
 * gRPC status codes (google.rpc.Code) and their HTTP mapping.
 */
typedef enum gw_code {
    GW_CODE_OK = 0,
    GW_CODE_CANCELLED = 1,
    GW_CODE_UNKNOWN = 2,
    GW_CODE_INVALID_ARGUMENT = 3,
    GW_CODE_DEADLINE_EXCEEDED = 4,
    GW_CODE_NOT_FOUND = 5,
    GW_CODE_ALREADY_EXISTS = 6,
    GW_CODE_PERMISSION_DENIED = 7,
    GW_CODE_RESOURCE_EXHAUSTED = 8,
    GW_CODE_FAILED_PRECONDITION = 9,
    GW_CODE_ABORTED = 10,
    GW_CODE_OUT_OF_RANGE = 11,
    GW_CODE_UNIMPLEMENTED = 12,
    GW_CODE_INTERNAL = 13,
    GW_CODE_UNAVAILABLE = 14,
    GW_CODE_DATA_LOSS = 15,
    GW_CODE_UNAUTHENTICATED = 16,
} gw_code;
#define GW_CODE_MAX 16

/* "NOT_FOUND"; "UNKNOWN" for values outside 0..16. */
const char *gw_code_name(int code);
/* "not_found" (the Connect protocol's spelling). */
const char *gw_code_snake_name(int code);
/* Parses "NOT_FOUND" or "5"; returns -1 if neither. */
int gw_code_parse(const char *s);
/* gRPC code → HTTP status (REFERENCE.md table; 500 for out-of-range codes). */
int gw_code_to_http(int code);
/* HTTP status of a non-gRPC backend answer → gRPC code (REFERENCE.md). */
int gw_code_from_http(int http_status);

/* ---------------------------------------------------------------------------
 * Arena: many allocations, freed together. Used per call. Blocks grow
 * geometrically up to a cap; a `max_bytes` limit (0 = unlimited) bounds the
 * total so a hostile request cannot grow a call without bound.
 */
typedef struct gw_arena_block gw_arena_block;
typedef struct gw_arena {
    gw_arena_block *head;
    size_t used_bytes;   /* sum of block sizes obtained from malloc */
    size_t max_bytes;    /* 0: unlimited */
    size_t next_block;   /* size of the next block to allocate */
} gw_arena;

/* initial_block: first block size (0 picks 1 KiB). */
void gw_arena_init(gw_arena *a, size_t initial_block, size_t max_bytes);
/* Frees every block. The arena may be reused after gw_arena_init. */
void gw_arena_free(gw_arena *a);
/* Aligned to max_align_t. NULL when out of memory or over max_bytes. */
void *gw_arena_alloc(gw_arena *a, size_t n);
void *gw_arena_calloc(gw_arena *a, size_t n);
void *gw_arena_memdup(gw_arena *a, const void *p, size_t n);
/* Copies n bytes and adds a NUL. */
char *gw_arena_strndup(gw_arena *a, const char *s, size_t n);
char *gw_arena_strdup(gw_arena *a, const char *s);
char *gw_arena_printf(gw_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------------------
 * Buffer: a growable byte string with a maximum. The bytes are malloc'ed
 * (not arena) so that a buffer can outlive the call that filled it; `max`
 * is checked before growing. Always NUL-terminated past `len` once any
 * byte was written, so text can be passed to C string functions.
 */
typedef struct gw_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max;   /* 0: unlimited */
} gw_buf;

void gw_buf_init(gw_buf *b, size_t max);
void gw_buf_free(gw_buf *b);
/* Drops the contents, keeps the allocation. */
static inline void gw_buf_reset(gw_buf *b) { b->len = 0; if (b->data) b->data[0] = 0; }
/* Ensures room for `extra` more bytes (+1 for the NUL).
 * Returns 0, GW_ELIMIT (len + extra > max) or GW_ENOMEM. */
int gw_buf_reserve(gw_buf *b, size_t extra);
int gw_buf_append(gw_buf *b, const void *p, size_t n);
int gw_buf_append_str(gw_buf *b, const char *s);
int gw_buf_append_byte(gw_buf *b, uint8_t c);
int gw_buf_printf(gw_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Removes the first n bytes (n <= len), moving the rest down. */
void gw_buf_consume(gw_buf *b, size_t n);
/* Hands the bytes to the caller (free() them); the buffer becomes empty. */
uint8_t *gw_buf_detach(gw_buf *b, size_t *len);

/* ---------------------------------------------------------------------------
 * Base64 (RFC 4648). Encoding is standard alphabet; `pad` selects '='.
 */
static inline size_t gw_base64_encoded_len(size_t n, bool pad)
{
    return pad ? (n + 2) / 3 * 4 : (n * 4 + 2) / 3;
}
/* 0..63 for a character of the standard alphabet, -1 for anything else
 * ('=' included): the one alphabet table, for decoders that keep their own
 * framing (gRPC-Web text mode decodes group by group). */
static inline int gw_base64_std_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}
/* Writes gw_base64_encoded_len(n, pad) bytes to out (no NUL). */
size_t gw_base64_encode(const uint8_t *in, size_t n, char *out, bool pad);
int gw_base64_encode_buf(gw_buf *b, const uint8_t *in, size_t n, bool pad);
/*
 * Decodes standard or URL-safe alphabet, padded or not (both alphabets may
 * not be mixed in one input). `out` needs n / 4 * 3 + 3 bytes. Returns the
 * decoded length, or -1 with *err_at set to the offending offset.
 */
long gw_base64_decode(const char *in, size_t n, uint8_t *out, size_t *err_at);
int gw_base64_decode_buf(gw_buf *b, const char *in, size_t n, size_t *err_at);

/* ---------------------------------------------------------------------------
 * Percent coding.
 */
/* grpc-message encoding: 0x20–0x7E stay except '%'; everything else %XX. */
int gw_grpc_message_encode(gw_buf *b, const char *s, size_t n);
/* grpc-message decoding: never fails; invalid %-sequences stay literal. */
int gw_grpc_message_decode(gw_buf *b, const char *s, size_t n);
/*
 * URL percent-decoding of a path segment or query component. With
 * keep_slash, "%2F"/"%2f" stay encoded (multi-segment path variables).
 * With plus_as_space, '+' decodes to ' ' (query strings). Returns 0 or
 * GW_EPARSE for a malformed escape ("%G1", "%4"), GW_ELIMIT/GW_ENOMEM.
 */
int gw_url_decode(gw_buf *b, const char *s, size_t n, bool keep_slash,
                  bool plus_as_space);

/* ---------------------------------------------------------------------------
 * Small string helpers.
 */
/* Case-insensitive ASCII comparison of s[0..n) with the NUL-terminated lit. */
bool gw_strn_case_eq(const char *s, size_t n, const char *lit);
/* True if s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool gw_utf8_valid(const uint8_t *s, size_t n);

/* grpc-timeout value for a remaining time: at most 8 digits, the finest unit
 * that fits, rounded up (never shorter than the time left), then written in
 * the coarsest unit that is still exact ("250m", "5S", "100u", "123457u").
 * Writes a NUL-terminated string into out (at least 10 bytes). */
void gw_grpc_timeout_format(uint64_t remaining_ns, char out[static 10]);
/* Parses a grpc-timeout value (1-8 digits and one of H M S m u n).
 * Returns 0 and *ns (at most INT64_MAX: 8 digits of hours saturate), or
 * GW_EPARSE. */
int gw_grpc_timeout_parse(const char *s, size_t n, uint64_t *ns);

/* gRPC metadata that may be forwarded (the rules of the gRPC over HTTP/2
 * spec, one place for every protocol): a key of 0-9 a-z _ . - (upper-case
 * letters are accepted: keys are lower-cased when sent) that does not
 * start with "grpc-" (reserved for the protocol); a value of printable
 * ASCII 0x20-0x7E ("-bin" values travel as base64 text, so the same rule
 * holds). An entry failing either is left out, not an error. */
bool gw_metadata_key_ok(const char *key, size_t n);
bool gw_metadata_value_ok(const char *value, size_t n);
/* Keys that are HTTP/2 or gRPC protocol headers rather than metadata
 * (case-insensitive): "grpc-*", te, content-type, user-agent, host,
 * content-length and the connection-specific ones. A client-supplied one is
 * left out (the upstream refuses them: they would clash with the request's
 * own headers). */
bool gw_metadata_key_reserved(const char *key, size_t n);
/* FNV-1a 64-bit, for hash tables. */
uint64_t gw_hash(const void *p, size_t n);

/* ---------------------------------------------------------------------------
 * Logging to stderr (or a configured FILE). Levels below the configured one
 * are dropped. Thread-safe: each line is written with one fwrite.
 */
typedef enum gw_log_level {
    GW_LOG_DEBUG = 0,
    GW_LOG_INFO = 1,
    GW_LOG_WARN = 2,
    GW_LOG_ERROR = 3,
    GW_LOG_OFF = 4,
} gw_log_level;

void gw_log_set_level(gw_log_level level);
gw_log_level gw_log_get_level(void);
void gw_log(gw_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define GW_DEBUG(...) gw_log(GW_LOG_DEBUG, __VA_ARGS__)
#define GW_INFO(...) gw_log(GW_LOG_INFO, __VA_ARGS__)
#define GW_WARN(...) gw_log(GW_LOG_WARN, __VA_ARGS__)
#define GW_ERROR(...) gw_log(GW_LOG_ERROR, __VA_ARGS__)

#define GW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define GW_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GW_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Reads a whole file into a malloc'ed buffer (NUL-terminated), at most max
 * bytes. Returns 0, GW_EIO (with errno text in e), GW_ELIMIT or GW_ENOMEM.
 * This is the one I/O helper in base; it is used by loaders at startup. */
int gw_read_file(const char *path, size_t max, uint8_t **data, size_t *len,
                 gw_error *e);

/* ---------------------------------------------------------------------------
 * Wire format, for any module that reads or writes protobuf bytes.
 */
typedef enum gw_wire_type {
    GW_WIRE_VARINT = 0,
    GW_WIRE_FIXED64 = 1,
    GW_WIRE_LEN = 2,
    GW_WIRE_SGROUP = 3,
    GW_WIRE_EGROUP = 4,
    GW_WIRE_FIXED32 = 5,
} gw_wire_type;

#define GW_WIRE_MAX_FIELD 536870911u /* 2^29 - 1 */

/* A cursor over wire bytes. The bytes are borrowed. */
typedef struct gw_wire_reader {
    const uint8_t *start;  /* for offsets in errors */
    const uint8_t *p;
    const uint8_t *end;
} gw_wire_reader;

static inline void gw_wire_reader_init(gw_wire_reader *rd, const uint8_t *p, size_t n)
{
    rd->start = rd->p = p;
    rd->end = p + n;
}
static inline bool gw_wire_eof(const gw_wire_reader *rd) { return rd->p >= rd->end; }
static inline size_t gw_wire_offset(const gw_wire_reader *rd)
{
    return (size_t)(rd->p - rd->start);
}

/* Each reader returns 0 or GW_EPARSE (truncated, varint over 10 bytes,
 * field number 0 or > 2^29-1, wire type 6/7, length past the end) and does
 * not move the cursor on error. */
int gw_wire_read_varint(gw_wire_reader *rd, uint64_t *v);
int gw_wire_read_tag(gw_wire_reader *rd, uint32_t *field, gw_wire_type *wt);
int gw_wire_read_fixed32(gw_wire_reader *rd, uint32_t *v);
int gw_wire_read_fixed64(gw_wire_reader *rd, uint64_t *v);
/* A length-delimited payload: *p points into the input. */
int gw_wire_read_len(gw_wire_reader *rd, const uint8_t **p, size_t *n);
/* Skips the value of a field whose tag was just read. A group is skipped up
 * to its matching end tag, nesting at most max_depth groups (GW_ELIMIT). */
int gw_wire_skip(gw_wire_reader *rd, uint32_t field, gw_wire_type wt,
                 unsigned max_depth);

static inline uint64_t gw_zigzag_encode64(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}
static inline int64_t gw_zigzag_decode64(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}
static inline uint32_t gw_zigzag_encode32(int32_t v)
{
    return ((uint32_t)v << 1) ^ (uint32_t)(v >> 31);
}
static inline int32_t gw_zigzag_decode32(uint32_t v)
{
    return (int32_t)(v >> 1) ^ -(int32_t)(v & 1);
}

/* Writers append to a gw_buf. Each returns 0, GW_ELIMIT or GW_ENOMEM. */
int gw_wire_put_varint(gw_buf *b, uint64_t v);
int gw_wire_put_tag(gw_buf *b, uint32_t field, gw_wire_type wt);
int gw_wire_put_fixed32(gw_buf *b, uint32_t v);
int gw_wire_put_fixed64(gw_buf *b, uint64_t v);
/* Tag, length, bytes: a string, bytes or embedded-message field. */
int gw_wire_put_len_field(gw_buf *b, uint32_t field, const void *p, size_t n);
/* Number of bytes the varint encoding of v takes (1..10). */
size_t gw_wire_varint_size(uint64_t v);

#endif
