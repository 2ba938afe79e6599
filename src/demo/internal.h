/*
 * Private to src/demo: the pure helpers of the demo service (gRPC framing of
 * request bytes, grpc-timeout parsing, error details, metadata names), the
 * reflection index, and the interface between the HTTP/2 server core
 * (server.c) and the method handlers (methods.c). Declared here rather than
 * in demo.h so that the unit tests can reach them without making them part
 * of the module's contract.
 */
#ifndef GW_DEMO_INTERNAL_H
#define GW_DEMO_INTERNAL_H

#include "base/base.h"
#include "loop/loop.h"

#include <protobuf-c/protobuf-c.h>

/* ---- limits ---------------------------------------------------------------- */
#define DM_MAX_MESSAGE (4u << 20)        /* one request or response message */
#define DM_MAX_OUT_BUFFERED (8u << 20)   /* response bytes waiting for the window */
#define DM_FILL_BATCH (64u << 10)        /* bytes a streaming producer adds at once */
/* Request bytes are acknowledged (WINDOW_UPDATE) only while a call's
 * unsent response stays below DM_IN_HIGH; past it the client's window
 * closes, and it reopens once the response drained below DM_IN_LOW. */
#define DM_IN_HIGH (1u << 20)
#define DM_IN_LOW (256u << 10)
#define DM_CONN_WINDOW ((1u << 31) - 1)  /* per-stream windows do the limiting */
#define DM_MAX_AVATAR (1u << 20)
#define DM_MAX_PAGE_SIZE 100000
#define DM_MAX_CHUNK (1u << 20)
#define DM_DEFAULT_CHUNK 16384
#define DM_MAX_USERS 100000
#define DM_MAX_STORE_BYTES (64u << 20)
#define DM_MAX_METADATA 64               /* x-demo- entries echoed per call */
#define DM_MAX_CONNECTIONS 1024
#define DM_MAX_STREAMS 4096              /* SETTINGS_MAX_CONCURRENT_STREAMS */

/* ---- request framing --------------------------------------------------------
 * Splits a byte stream (DATA frame payloads in any chunking) into gRPC
 * length-prefixed messages. The message bytes are collected in `msg` (malloc,
 * bounded by max_message). */
typedef struct dm_framer {
    uint8_t hdr[5];
    size_t hdr_len;     /* bytes of the current prefix seen (0..5) */
    uint32_t need;      /* body length of the current message */
    bool in_body;
    size_t max_message;
    uint64_t offset;    /* bytes fed so far, for error messages */
    gw_buf msg;
} dm_framer;

/* Called for each complete message; a nonzero return stops dm_framer_feed,
 * which returns that value. msg is borrowed for the duration of the call. */
typedef int (*dm_message_cb)(void *owner, const uint8_t *msg, size_t len);

void dm_framer_init(dm_framer *f, size_t max_message);
void dm_framer_free(dm_framer *f);
/*
 * Feeds n bytes. Errors: GW_ELIMIT (a prefix announces more than
 * max_message), GW_EINVAL (compressed flag: this server supports no
 * encoding), GW_EPARSE (flag byte other than 0 or 1), GW_ENOMEM, or the
 * callback's value. e (may be NULL) gets the message, with the offset of the
 * offending prefix counted from the first byte ever fed.
 */
int dm_framer_feed(dm_framer *f, const uint8_t *p, size_t n, dm_message_cb cb,
                   void *owner, gw_error *e);
/* True if the bytes fed so far end between messages. */
static inline bool dm_framer_idle(const dm_framer *f) { return f->hdr_len == 0 && !f->in_body; }

/* Appends the 5-byte prefix for a len-byte uncompressed message. */
int dm_frame_prefix(gw_buf *b, size_t len);

/*
 * Parses a grpc-timeout value (1 to 8 digits, then H M S m u n) into
 * nanoseconds, saturating at UINT64_MAX. Returns 0 or GW_EPARSE.
 */

/* A protobuf Duration-like (seconds, nanos) in nanoseconds: negative values
 * are 0, huge ones saturate. */
uint64_t dm_duration_ns(int64_t seconds, int32_t nanos);

/*
 * The trailer name that echoes request metadata key: "x-demo-a" →
 * "x-demo-a-trailer", "x-demo-a-bin" → "x-demo-a-trailer-bin". Writes into
 * b (reset first). Returns 0, GW_ELIMIT or GW_ENOMEM.
 */
int dm_trailer_name(gw_buf *b, const char *key, size_t n);

/* One google.rpc.BadRequest.FieldViolation. */
typedef struct dm_violation {
    const char *field;
    const char *description;
} dm_violation;

/*
 * Serializes google.rpc.Status{code, message, details: [Any(BadRequest{
 * field_violations})]} into b (reset first); with n_violations 0 the
 * details list is empty. Returns 0 or GW_ENOMEM.
 */
int dm_status_details(gw_buf *b, int code, const char *message,
                      const dm_violation *v, size_t n_violations);

/* The real-time clock as google.protobuf.Timestamp fields. */
void dm_wall_clock(int64_t *seconds, int32_t *nanos);

/* ---- reflection index ---------------------------------------------------- */
typedef struct dm_reflect dm_reflect;

/* Builds the index over a serialized FileDescriptorSet (borrowed; must
 * outlive the index). Returns 0, GW_EPARSE or GW_ENOMEM. */
int dm_reflect_new(const uint8_t *set, size_t len, dm_reflect **out, gw_error *e);
void dm_reflect_del(dm_reflect *r);
/*
 * Answers one serialized ServerReflectionRequest (v1 and v1alpha have the
 * same wire format) with a serialized ServerReflectionResponse in out
 * (reset first). services[] are the names to list. Returns 0, GW_EPARSE
 * (the request does not decode) or GW_ENOMEM; lookups that fail are answered
 * with an ErrorResponse, not an error.
 */
int dm_reflect_answer(const dm_reflect *r, const char *const *services,
                      size_t n_services, const uint8_t *req, size_t len,
                      gw_buf *out);

/* ---- the server core / handler interface ---------------------------------- */
typedef struct gw_demo_service gw_demo_service;
typedef struct dm_call dm_call;
typedef struct dm_store dm_store;

typedef struct dm_method {
    const char *path;
    /* Streaming requests get on_message for each message and on_end at
     * half-close; the others get on_request once with their single message. */
    bool client_streaming;
    void (*on_request)(dm_call *c, const uint8_t *msg, size_t len);
    void (*on_message)(dm_call *c, const uint8_t *msg, size_t len);
    void (*on_end)(dm_call *c);
} dm_method;

/* The methods the service serves (methods.c), NULL if unknown. */
const dm_method *dm_method_find(const char *path);

/* Per-call state that handlers use; the server core owns the call. */
typedef void (*dm_call_fn)(dm_call *c);
struct dm_call_state {
    /* streaming producers */
    int64_t remaining;     /* messages (ListUsers) or bytes (Download) to send */
    int64_t last_id;       /* ListUsers cursor */
    int64_t offset;        /* Download */
    int32_t chunk;
    int32_t role;
    bool wrap;             /* ListUsers: follow, cycles through the store */
    bool limited;          /* ListUsers: at most `remaining` more (page_size > 0) */
    uint64_t delay_ns;
    /* client streaming */
    gw_buf ids;            /* CreateUsers: int64 ids */
    int32_t created;
    /* a delayed unary answer */
    gw_buf pending;        /* serialized response to send after the sleep */
    int pending_code;
    char *pending_message;
    gw_buf pending_details;
};

gw_demo_service *dm_call_service(dm_call *c);
dm_store *dm_call_store(dm_call *c);
const dm_reflect *dm_call_reflect(dm_call *c);
struct dm_call_state *dm_call_state(dm_call *c);
uint64_t dm_call_now(dm_call *c);
bool dm_call_finished(const dm_call *c);

/* Queues one response message (serialized protobuf). Returns 0, GW_ELIMIT
 * (too much buffered: the call is then finished RESOURCE_EXHAUSTED) or
 * GW_ENOMEM. */
int dm_call_send(dm_call *c, const uint8_t *msg, size_t len);
int dm_call_send_message(dm_call *c, const ProtobufCMessage *m);
/* The response buffer, for producers that write framed messages directly;
 * call dm_call_sent after appending. */
gw_buf *dm_call_out(dm_call *c);
size_t dm_call_out_pending(const dm_call *c);
void dm_call_sent(dm_call *c);
/* Ends the call with a status (message may be NULL; details: serialized
 * google.rpc.Status or NULL). Only the first finish counts. */
void dm_call_finish(dm_call *c, int code, const char *message,
                    const uint8_t *details, size_t details_len);
void dm_call_finishf(dm_call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets a producer that the core calls when the client's window has room
 * and nothing is buffered (flow-controlled streams). */
void dm_call_set_producer(dm_call *c, dm_call_fn fill);
/* Sleeps: fn runs after ns nanoseconds unless the call ends first (client
 * cancel, deadline: a sleep past the deadline ends with DEADLINE_EXCEEDED
 * at the deadline). */
void dm_call_sleep(dm_call *c, uint64_t ns, dm_call_fn fn);
/* Releases what handlers put in dm_call_state (called by the core). */
void dm_call_state_free(struct dm_call_state *s);

/* ---- the store ------------------------------------------------------------- */
dm_store *dm_store_new(void);
void dm_store_del(dm_store *s);

#endif
