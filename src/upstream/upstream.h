/*
 * upstream — the gRPC client side: per worker, one gw_backend per backend
 * target, each a small pool of HTTP/2 connections (nghttp2, h2c or TLS with
 * ALPN h2) carrying many calls. Only this module (and src/demo) includes
 * nghttp2.h and OpenSSL headers.
 *
 * Threading: a backend belongs to one gw_loop and is used only from that
 * loop's thread.
 *
 * Call lifecycle contract (libuv-style):
 *   - gw_ucall_start returns 0 and then on_complete runs exactly once, or it
 *     returns an error and no callback ever runs.
 *   - Callbacks run from the loop only, never from inside a gw_ucall_* or
 *     gw_backend_* function the owner called (no re-entrancy).
 *   - After on_complete returns, the handle is gone.
 *   - gw_ucall_cancel abandons the call: RST_STREAM(CANCEL) is sent, no
 *     callback runs after it, and the handle is gone.
 */
#ifndef GW_UPSTREAM_H
#define GW_UPSTREAM_H

#include "base/base.h"
#include "loop/loop.h"

typedef struct gw_backend gw_backend;
typedef struct gw_ucall gw_ucall;

/* A header or metadata entry; not NUL-terminated. Names are lowercase. */
typedef struct gw_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} gw_header;

/*
 * Resolves host (a name, never a literal) for port. Runs on a resolver
 * thread, never on a loop. Fills *addrs with up to max numeric addresses
 * ("10.0.0.1", "fd00::1"), each a malloc'ed string the caller frees, and
 * *n, in the order they should be tried. Returns 0 or a negative gw_err;
 * on failure e (never NULL) may say why in the resolver's words ("Name or
 * service not known"), which then appears in the callers' messages. NULL
 * in the options: getaddrinfo (SOCK_STREAM, any family, addresses in the
 * order returned, duplicates removed). ctx is borrowed: it must outlive
 * every resolution started with it, which may end after the backend or
 * cluster that started it was deleted.
 */
typedef int (*gw_resolve_fn)(void *ctx, const char *host, const char *port, char **addrs,
                             size_t max, size_t *n, gw_error *e);

typedef struct gw_backend_options {
    size_t pool_size;              /* connections per worker; default 1 */
    uint32_t stream_window;        /* per-stream receive window; default 256 KiB */
    uint32_t connection_window;    /* default 1 MiB */
    size_t max_response_message;   /* decompressed bytes; default 4 MiB */
    size_t max_request_buffer;     /* request bytes buffered per call; default 64 KiB */
    size_t max_header_list;        /* response header bytes; default 16 KiB */
    size_t max_queued_calls;       /* waiting for a stream slot; default 1024 */
    uint32_t max_resets_per_sec;   /* our own RST_STREAMs per connection; default 100 */
    uint32_t connect_timeout_ms;   /* default 20000 */
    /* Added by upstream: a host with several addresses starts its next
     * address this long after the previous one if that has not connected
     * (or at once when it failed), keeping the earlier attempts running;
     * the first to connect wins (RFC 8305, simplified). 0 means the
     * default, 250; values below 10 become 10. */
    uint32_t attempt_delay_ms;
    uint32_t keepalive_ms;         /* 0 (default): no PINGs; else >= 300000 */
    uint32_t send_lowat;           /* TCP_NOTSENT_LOWAT of backend sockets:
                                      unsent request bytes a connection may
                                      leave in the kernel; 0: no limit.
                                      Default 128 KiB */
    /* Added by upstream: a connection with calls in flight that has read
     * nothing for ping_silent_ms is sent a PING; nothing read within
     * ping_timeout_ms closes it (its calls fail with UNAVAILABLE). At
     * most one data-less PING per 5 minutes (docs/upstream.md). Defaults
     * (gw_backend_options_init) 30000 and 20000; ping_silent_ms 0: off. */
    uint32_t ping_silent_ms;
    uint32_t ping_timeout_ms;
    bool accept_gzip;              /* advertise grpc-accept-encoding: gzip */
    const char *ca_file;           /* NULL: system CAs */
    const char *cert_file;         /* client certificate (mTLS) */
    const char *key_file;
    const char *server_name;       /* SNI / verification name override */
    const char *authority;         /* :authority override */
    /* Added for error messages to clients: the backend's configured name
     * ("default", a cluster's name) and whether clients see only it. With
     * hide_details, a call that fails in the gateway's transport (backend
     * unreachable, connection lost, stream refused or reset, shutting
     * down) tells its client "backend 'NAME' unavailable" and the like,
     * while the URL and the cause go to the log (warn, at most one line a
     * second per backend, with the count of those left out). Default: no
     * name, details shown (tools, tests). */
    const char *name;
    bool hide_details;
    /* Added by the upstream module: the random source for reconnect jitter
     * (NULL: a per-backend xorshift seeded from the clock). Tests inject a
     * fixed one. Returns a uniformly distributed 32-bit value. */
    uint32_t (*random)(void *ctx);
    void *random_ctx;
    /* The resolver for a host name in the URL (NULL: getaddrinfo), run on
     * a short-lived thread at connect time, never on the loop; see
     * gw_resolve_fn and docs/upstream.md. IP literals and unix: paths are
     * never resolved. */
    gw_resolve_fn resolve;
    void *resolve_ctx;
} gw_backend_options;

/* Fills o with the defaults above. */
void gw_backend_options_init(gw_backend_options *o);

/*
 * A backend for url: "http://host:port", "https://host:port" or
 * "unix:/path". Connects lazily on the first call; a host name is
 * resolved then, off the loop, and again before each later connection
 * attempt that follows a closed or failed connection; when such a later
 * lookup fails or gives no answer within connect_timeout_ms, the
 * addresses of the last good answer are used (with a warning) instead of
 * failing the calls. Borrows loop (must
 * outlive the backend); copies url and options. Returns 0, GW_EINVAL (bad
 * URL, unreadable certificate: message in e) or GW_ENOMEM.
 */
int gw_backend_new(gw_loop *loop, const char *url, const gw_backend_options *o,
                   gw_backend **out, gw_error *e);
/* Fails every open call with UNAVAILABLE (callbacks run before it returns,
 * as the only exception to the rule above) and frees everything. Safe from
 * any callback of the loop, an I/O callback included: inside a loop turn
 * the closed connections (they hold gw_io handles the turn's batch may
 * still name) are freed by a deferred callback later in the same turn;
 * between turns (teardown after gw_loop_run) at once. Either way nothing
 * is left for a later turn, so gw_loop_del may follow. */
void gw_backend_del(gw_backend *b);
const char *gw_backend_url(const gw_backend *b);
/* The URL of the endpoint the call is on (or was last on, when a cluster
 * moved it); valid while the handle is. */
const char *gw_ucall_endpoint(const gw_ucall *c);
/* Calls started and not completed. */
size_t gw_backend_active_calls(const gw_backend *b);
/* True while the backend is in its reconnect backoff with no live
 * connection: new calls would fail fast with UNAVAILABLE. */
bool gw_backend_is_down(const gw_backend *b);
/* Readiness (the server's /readyz). gw_backend_warm starts a connection now
 * when the backend has none and is not in its backoff after a failure
 * (connections are otherwise made by the first call). gw_backend_ready is
 * true once a connection has reached HTTP/2 (the backend's SETTINGS) and
 * no attempt has failed since, or one is up now; before any connection
 * succeeded, untried_ok says whether "no attempt failed yet" is enough.
 * Loop thread. */
void gw_backend_warm(gw_backend *b);
bool gw_backend_ready(const gw_backend *b, bool untried_ok);

/* Counters for tests, metrics and the admin page (added by upstream). */
typedef struct gw_backend_stats {
    uint64_t connects_started;     /* connection attempts (TCP/unix) */
    uint64_t connects_ok;          /* attempts that reached HTTP/2 ready */
    uint64_t connections_open;     /* live connections now */
    uint64_t calls_started;
    uint64_t calls_retried;        /* REFUSED_STREAM / GOAWAY retries */
    uint64_t resets_sent;          /* our RST_STREAMs */
    uint64_t resets_delayed;       /* RST_STREAMs held back by the rate cap */
    uint64_t goaways_received;
    uint64_t peak_streams;         /* most concurrent streams on one connection */
    uint64_t queued_calls;         /* waiting for a connection or a stream slot now */
    uint64_t dns_resolutions;      /* host name resolutions completed (ok or not) */
    uint64_t dns_failures;         /* of those, failed or without an address */
    uint64_t dns_fallbacks;        /* failed re-resolutions that reused the
                                      addresses known from before */
    uint64_t addresses_tried;      /* sockets whose connect was started */
    uint64_t ping_timeouts;        /* connections closed: PING after silence unanswered */
} gw_backend_stats;
void gw_backend_get_stats(const gw_backend *b, gw_backend_stats *out);

/* The final outcome of a call. Everything is valid during on_complete only. */
typedef struct gw_call_status {
    int code;                      /* gw_code */
    const char *message;           /* decoded grpc-message, NUL-terminated, "" if none */
    const uint8_t *details;        /* decoded grpc-status-details-bin or NULL */
    size_t details_len;
    const gw_header *trailers;     /* trailing metadata, grpc-* reserved ones excluded */
    size_t trailer_count;
    bool trailers_only;            /* no on_headers happened: the answer was
                                      Trailers-Only or the call failed locally */
    /* Added for clusters: why a local UNAVAILABLE happened. */
    bool unreachable;              /* the backend could not be reached; the
                                      call was never sent (safe to retry) */
    bool connection_lost;          /* the connection died with the call on it
                                      (the backend may have processed it) */
    /* The message with the URL and cause that hide_details kept from
     * `message` (health checks and logs use it); else `message`. */
    const char *detail;
} gw_call_status;

typedef struct gw_ucall_handlers {
    /* Response headers (not called for Trailers-Only answers). metadata
     * excludes pseudo-headers, content-type and grpc-* reserved ones. */
    void (*on_headers)(void *owner, const gw_header *metadata, size_t n);
    /* One complete response message, decompressed. `msg` is valid during
     * the callback only. The receive window is not reopened for these bytes
     * until the owner calls gw_ucall_consume(call, wire_len). An owner that
     * hands a message on only once the call completes (a unary answer)
     * must consume it at delivery: the last message may leave the backend
     * no stream credit, and nghttp2 (like other stacks) sends nothing more
     * on such a stream, not even the trailers (docs/upstream.md). */
    void (*on_message)(void *owner, const uint8_t *msg, size_t len, size_t wire_len);
    /* The request buffer has room again after gw_ucall_write accepted less
     * than it was offered. */
    void (*on_writable)(void *owner);
    void (*on_complete)(void *owner, const gw_call_status *status);
} gw_ucall_handlers;

typedef struct gw_ucall_params {
    const char *path;              /* "/pkg.Service/Method" */
    const gw_header *metadata;     /* lowercase names; -bin values base64 as received */
    size_t metadata_count;
    uint64_t deadline_ns;          /* absolute gw_now_ns() time; 0: none */
} gw_ucall_params;

/*
 * Starts a call: opens a stream (or queues the call until a connection or a
 * stream slot is available) and sends the request headers. params and its
 * arrays are copied. handlers must outlive the call; owner is passed back.
 * Returns 0 (on_complete will run, also for fail-fast UNAVAILABLE and
 * queue-full RESOURCE_EXHAUSTED outcomes), GW_EINVAL (bad path or
 * metadata: message in e) or GW_ENOMEM.
 */
int gw_ucall_start(gw_backend *b, const gw_ucall_params *params,
                   const gw_ucall_handlers *handlers, void *owner, gw_ucall **out,
                   gw_error *e);

/*
 * Queues request bytes that are already gRPC-framed (5-byte prefix +
 * message, possibly several, possibly partial). Copies what fits in the
 * call's request buffer and returns how many bytes were taken (0..len);
 * when fewer than len, on_writable follows once there is room. Returns a
 * negative gw_err (GW_ESTATE after gw_ucall_close_send) on misuse.
 */
long gw_ucall_write(gw_ucall *c, const uint8_t *data, size_t len);
/* No more request bytes: END_STREAM after the buffered ones. */
void gw_ucall_close_send(gw_ucall *c);
/* Reopens the receive window by wire_len bytes (see on_message). */
void gw_ucall_consume(gw_ucall *c, size_t wire_len);
/* Abandons the call (see the contract at the top). */
void gw_ucall_cancel(gw_ucall *c);

/* ---------------------------------------------------------------------------
 * Pure helpers, exposed for the front end and for unit tests.
 */
/* grpc-timeout coding (gw_grpc_timeout_format / _parse) is in base/base.h. */

/* ---------------------------------------------------------------------------
 * More pure helpers (added by the upstream module; used inside it and by
 * its unit tests).
 */
/* gRPC code for an RST_STREAM (or GOAWAY) HTTP/2 error code received from a
 * backend (REFERENCE.md): REFUSED_STREAM → UNAVAILABLE, CANCEL → CANCELLED,
 * ENHANCE_YOUR_CALM → RESOURCE_EXHAUSTED, INADEQUATE_SECURITY →
 * PERMISSION_DENIED, anything else → INTERNAL. */
int gw_upstream_code_from_h2(uint32_t h2_error);

/* Reconnect backoff (gRPC connection-backoff.md): the first delay is 1 s,
 * each further one 1.6 times the previous, capped at 120 s, and every delay
 * handed out is jittered uniformly by ±20 % (and still never above 120 s). */
typedef struct gw_backoff {
    uint64_t current_ms;           /* un-jittered delay for the next failure */
    uint32_t (*random)(void *ctx); /* never NULL after init */
    void *random_ctx;
    uint64_t seed;                 /* state of the default generator */
} gw_backoff;
#define GW_BACKOFF_INITIAL_MS 1000u
#define GW_BACKOFF_MAX_MS 120000u
/* random NULL: a xorshift generator seeded with `seed`. */
void gw_backoff_init(gw_backoff *b, uint32_t (*random)(void *ctx), void *ctx,
                     uint64_t seed);
/* Back to the initial delay (after a connection became ready). */
void gw_backoff_reset(gw_backoff *b);
/* The delay to wait after one more failed attempt, in ms. */
uint64_t gw_backoff_next(gw_backoff *b);

/* gRPC message deframer: feeds response DATA bytes (split anywhere) and
 * hands out whole messages, decompressing gzip ones. A message larger than
 * max_message (on the wire or decompressed) is refused before anything is
 * buffered for it. */
typedef struct gw_deframer {
    uint8_t prefix[5];
    size_t prefix_len;
    size_t body_len;               /* length from the current prefix */
    gw_buf body;                   /* partial body (only when split) */
    gw_buf inflated;               /* decompression output, reused */
    size_t max_message;
    bool gzip;                     /* grpc-encoding: gzip was announced */
    bool identity_only;            /* no grpc-encoding, or identity */
    char encoding[24];             /* announced grpc-encoding, for messages */
    uint64_t messages;             /* complete messages handed out */
} gw_deframer;
/* Called for each message: bytes valid during the call only; wire_len is
 * 5 + the length on the wire. A nonzero return stops gw_deframer_push,
 * which then returns that value. */
typedef int (*gw_deframer_cb)(void *ctx, const uint8_t *msg, size_t len,
                              size_t wire_len);
void gw_deframer_init(gw_deframer *d, size_t max_message);
/* Sets the response's grpc-encoding (NULL or "identity": none). Returns 0,
 * or GW_EINVAL for an encoding we cannot decode (message in e). */
int gw_deframer_set_encoding(gw_deframer *d, const char *enc, size_t n,
                             gw_error *e);
void gw_deframer_free(gw_deframer *d);
/* Returns 0, the callback's nonzero value, GW_ELIMIT (message too large),
 * GW_EPARSE (bad flag byte, compressed without an encoding, corrupt gzip),
 * or GW_ENOMEM; e says what and at which message. */
int gw_deframer_push(gw_deframer *d, const uint8_t *data, size_t len,
                     gw_deframer_cb cb, void *ctx, gw_error *e);
/* True when no partial message is pending (a stream may end here). */
bool gw_deframer_idle(const gw_deframer *d);

/* Bytes still missing from the message being assembled: 5 - prefix bytes
 * while its prefix is incomplete (5 between messages), else the body bytes
 * not received yet. Never 0. */
size_t gw_deframer_missing(const gw_deframer *d);

/*
 * Receive flow control of one response stream (docs/upstream.md, "Flow
 * control"): decides when to send a stream WINDOW_UPDATE and how large.
 * Pure bookkeeping in bytes of DATA payload; the caller sends what
 * gw_flow_update returns. The invariant it keeps:
 *
 *   granted + unreported = consumed + advance + dropped
 *
 * granted: bytes returned to the peer in WINDOW_UPDATEs; consumed: wire
 * bytes of whole messages the owner consumed (handed to the client);
 * advance: credit given ahead of the owner for the message being assembled
 * and not consumed yet; dropped: bytes nobody will consume (the call ended,
 * a non-gRPC body); unreported: released bytes not sent yet, kept below
 * half a window and sent at once when the owner waits for the rest of a
 * message the peer has no credit for. The peer's credit is
 * window + granted - received.
 */
typedef struct gw_flow {
    uint64_t window;               /* SETTINGS_INITIAL_WINDOW_SIZE we sent */
    uint64_t received;             /* DATA payload bytes received */
    uint64_t delivered;            /* wire bytes of whole messages handed out */
    uint64_t consumed;             /* of those, consumed by the owner */
    uint64_t advance;              /* granted ahead for the message being assembled */
    uint64_t dropped;              /* released without a consume */
    uint64_t released;             /* consumed + advance + dropped */
    uint64_t granted;              /* sent to the peer in WINDOW_UPDATEs */
    bool discard;                  /* every byte is released as it arrives */
} gw_flow;
void gw_flow_init(gw_flow *f, uint32_t window);
/* n DATA payload bytes arrived (before they are deframed). */
void gw_flow_received(gw_flow *f, size_t n);
/* A whole message of wire_len bytes (5 + length on the wire) was handed to
 * the owner. */
void gw_flow_delivered(gw_flow *f, size_t wire_len);
/* The owner consumed a message: pays back the advance first, and never
 * counts more than was delivered. */
void gw_flow_consumed(gw_flow *f, size_t wire_len);
/* Nobody will consume any more: release everything received, now and
 * later (the call ended, or the body is not gRPC). */
void gw_flow_discard(gw_flow *f);
/* What the peer may still send: window + granted - received (0 if the
 * peer overran it). */
uint64_t gw_flow_credit(const gw_flow *f);
/* The WINDOW_UPDATE increment to send now (0: none; counted as granted
 * when returned). `missing` is gw_deframer_missing of the stream. Sends the
 * released bytes once they reach half a window; and when the owner has
 * consumed everything it was handed (it waits for the next message) and
 * the peer's credit is less than `missing`, sends them at once and, if
 * still short, grants the difference in advance, so that the message can
 * always arrive whole. */
uint32_t gw_flow_update(gw_flow *f, size_t missing);

/* Clusters (several endpoints, load balancing, health checks, DNS) and the
 * server-reflection client build on the API above. */
#include "upstream/cluster.h"

#endif
