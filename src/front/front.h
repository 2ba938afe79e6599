/*
 * front — the HTTP/1.1 server side, the only module that includes
 * microhttpd.h. One gw_front per worker: a libmicrohttpd daemon in external
 * epoll mode whose epoll fd sits in the worker's gw_loop, listening with
 * SO_REUSEPORT so that every worker binds the same port.
 *
 * The front hides libmicrohttpd's suspend/resume rules (DESIGN.md field
 * notes) behind one request object, gw_front_req, and a small handler
 * interface:
 *   - on_request runs once the request headers are complete. The handler
 *     either answers at once (gw_front_req_respond with a fixed body) or
 *     attaches itself (gw_front_req_attach) to receive the body and to
 *     produce a streamed response later.
 *   - Body bytes are offered to on_body; taking fewer than offered suspends
 *     the connection until the handler calls gw_front_req_wake.
 *   - The response head is given with gw_front_req_respond_stream once known;
 *     body bytes are pulled through `read`, which may answer "nothing yet"
 *     (the connection is suspended until gw_front_req_wake).
 *   - While suspended, the client socket is watched; if the client goes
 *     away, on_client_gone runs at once (cancel the backend work there).
 *   - on_close runs exactly once for an attached request, from the loop,
 *     when the front is done with it: after it returns the request is gone.
 *
 * Our own timeouts, because libmicrohttpd has none for these: the time to
 * receive request headers (slowloris), the request body's pace (a budget
 * of body_timeout_ms that every body_min_rate bytes extend by a second, never
 * beyond body_timeout_ms from the last byte; paused while the handler holds
 * the body back; 408 and close when spent), idle keep-alive time, and an
 * inactivity timeout for the rest. Per-call deadlines belong to the handler.
 *
 * HTTP hygiene (docs/front.md, "Hostile clients"): libmicrohttpd parses at
 * client discipline level http_strictness (1: rejects obs-fold, whitespace
 * before the colon, NUL, missing Host); on top, for every request: two
 * Content-Length fields, two Host fields, Content-Length together with
 * Transfer-Encoding, or a Transfer-Encoding other than chunked → 400 and
 * close; too many header fields → 431 and close; a header block over
 * memory_limit → 431 from libmicrohttpd itself. An absolute-form target
 * ("http://host/path") is routed by its path. Body limits belong to the
 * handler (it answers early and calls gw_front_req_close_now).
 *
 * No byte sequence may make a worker spin: turns where libmicrohttpd asks to
 * run again at once although nothing happened (no socket event, no resume)
 * are counted, and past a few dozen in a row the front backs off (up to
 * 100 ms between runs) until an event arrives. libmicrohttpd's own messages
 * go through gw_log at info, at most 20 a second per worker.
 *
 * Threading: a front belongs to one loop and is used from its thread only.
 */
#ifndef GW_FRONT_H
#define GW_FRONT_H

#include "base/base.h"
#include "loop/loop.h"

typedef struct gw_front gw_front;
typedef struct gw_front_req gw_front_req;
typedef struct gw_front_iplimit gw_front_iplimit;

/* A response header; the strings are copied when the response is built. */
typedef struct gw_front_header {
    const char *name;
    const char *value;
} gw_front_header;

/*
 * gzip for answers a client accepts it for (docs/front.md, "Response
 * compression"). Plain data: copied with the options, no pointers, so a
 * configuration can be freed or reloaded under a running front.
 */
#define GW_FRONT_GZIP_TYPES_MAX 512
typedef struct gw_front_compression {
    bool enabled;            /* default true */
    size_t min_bytes;        /* whole answers shorter than this go out as they
                                are; default 1024. Streams always compress */
    int level;               /* zlib level 1..9; default 6 */
    /* Media types that compress, comma-separated ("application/json,
     * text/\*"); "type/\*" takes a whole top-level type. Set it with
     * gw_front_compression_set_types. */
    char types[GW_FRONT_GZIP_TYPES_MAX];
} gw_front_compression;

/* The default TLS policy of the listener, after Mozilla's "intermediate"
 * profile (server-side TLS guidelines, version 5.7): TLS 1.3 and TLS 1.2,
 * and in TLS 1.2 only ECDHE key exchange with AEAD ciphers (AES-GCM,
 * ChaCha20-Poly1305): no TLS 1.0/1.1, no static-RSA key exchange, no CBC or
 * SHA-1 MAC suites. The profile's DHE suites are left out: libmicrohttpd
 * loads no DH parameters, so GnuTLS could not negotiate them anyway. */
#define GW_FRONT_TLS_PRIORITIES                                                   \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:"        \
    "+AES-256-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:"        \
    "+ECDHE-RSA"

typedef struct gw_front_options {
    const char *host;              /* numeric address to bind; "0.0.0.0" or "::" */
    uint16_t port;                 /* 0: pick one (the first worker), see gw_front_port */
    unsigned connection_limit;     /* per worker; default 4096 */
    unsigned per_ip_limit;         /* connections per client IP; 0 none. With
                                      ip_limit set it counts across every
                                      worker sharing it, else per worker */
    gw_front_iplimit *ip_limit;    /* borrowed; shared by the workers */
    size_t memory_limit;           /* per-connection read buffer = header size
                                      limit; default 16 KiB */
    unsigned max_header_count;     /* default 100 */
    uint32_t header_timeout_ms;    /* first request headers; default 10000 */
    uint32_t idle_timeout_ms;      /* keep-alive wait for the next request; 60000 */
    uint32_t inactivity_timeout_s; /* libmicrohttpd's own; default 300 */
    size_t discard_limit;          /* body bytes read and dropped after an early
                                      answer, beyond which the connection is
                                      closed instead; 1 MiB */
    int http_strictness;           /* libmicrohttpd's client discipline level,
                                      0..3; default 1 (docs/front.md) */
    uint32_t body_timeout_ms;      /* request body pace: see above; default
                                      60000, 0 none */
    uint32_t body_min_rate;        /* bytes/s; default 500, 0: only the gap */
    uint32_t park_idle_ms;         /* a keep-alive connection idle this long
                                      leaves libmicrohttpd (its buffers are
                                      freed) and waits in a small record of
                                      ours; 0: never. Default 1000 (plain
                                      HTTP only) */
    uint32_t trim_idle_ms;         /* after this long without requests or
                                      closes, free heap memory is given back
                                      to the system (malloc_trim); 0: never.
                                      Default 1000 */
    size_t notsent_lowat;          /* TCP_NOTSENT_LOWAT of client sockets:
                                      unsent response bytes one connection
                                      can leave in the kernel; 0: no limit.
                                      Default 128 KiB */
    size_t sndbuf;                 /* SO_SNDBUF of client sockets (the whole
                                      send queue, in flight included);
                                      0: the kernel's autotuning (default) */
    /* HTTPS (libmicrohttpd with GnuTLS): PEM texts, borrowed for the call
     * to gw_front_new only. NULL cert: plain HTTP. With tls_trust_pem, a
     * request without a client certificate that verifies against it is
     * answered 403 and the connection closed. */
    const char *tls_cert_pem;
    const char *tls_key_pem;
    const char *tls_trust_pem;
    /* GnuTLS priority string of the HTTPS listener; NULL:
     * GW_FRONT_TLS_PRIORITIES. Checked by gw_front_new (GW_EINVAL naming
     * the bad part). Borrowed for the call only. */
    const char *tls_priorities;
    gw_front_compression compression;
} gw_front_options;

void gw_front_options_init(gw_front_options *o);

/*
 * The libmicrohttpd version loaded at run time ("1.0.1"), and the one whose
 * header the front was compiled against. They differ when the dynamic
 * loader picked another libmicrohttpd.so.12 (Debian 12's 0.9.75 has the
 * same soname) than the one meson found: tests assert they match.
 */
const char *gw_front_mhd_version(void);
void gw_front_mhd_version_built(char *buf, size_t cap);

/*
 * Replaces c->types with the n media types given ("application/json",
 * "text/\*"; matched case-insensitively, parameters ignored). Borrows types.
 * Returns 0, GW_EINVAL (one is not "type/subtype" or "type/\*": message in e,
 * naming its index) or GW_ELIMIT (together longer than
 * GW_FRONT_GZIP_TYPES_MAX - 1 bytes). On error c is unchanged.
 */
int gw_front_compression_set_types(gw_front_compression *c, const char *const *types, size_t n,
                                   gw_error *e);

/*
 * The q-value (0..1000, thousandths) an Accept-Encoding field value gives
 * gzip (RFC 9110 12.5.3): an element naming gzip or x-gzip wins over "*"
 * (the lowest q if named twice: a refusal is never overridden); neither
 * named is 0. Names and "q" are case-insensitive; an element that does not
 * parse (a bad qvalue, a parameter other than one q) is ignored, the rest
 * still count. NULL is 0.
 */
int gw_front_accept_gzip_q(const char *value);

/* Whether content_type (parameters ignored) is in the comma-separated list
 * types (a gw_front_compression.types). */
bool gw_front_type_listed(const char *types, const char *content_type);

/* What the front asks of whoever answers requests (the server). */
typedef struct gw_front_handler {
    /* Headers complete. Answer with gw_front_req_respond, or attach. If the
     * function does neither, the front answers 500. */
    void (*on_request)(void *server, gw_front_req *r);
} gw_front_handler;

/* What an attached request handler (a call) implements. */
typedef struct gw_front_req_ops {
    /* Body bytes; returns how many were taken (0..n). Fewer than n suspends
     * the connection; the rest is offered again after gw_front_req_wake. */
    size_t (*on_body)(void *owner, const uint8_t *data, size_t n);
    /* The whole body was received. */
    void (*on_body_end)(void *owner);
    /* Response body: copy up to max bytes into buf. Returns the count (> 0),
     * 0 for "nothing yet" (suspends until gw_front_req_wake), GW_FRONT_EOF
     * or GW_FRONT_ABORT (close the connection without finishing). */
    long (*read)(void *owner, uint8_t *buf, size_t max);
    /* The client went away while the connection was suspended. The request
     * object stays valid until on_close. */
    void (*on_client_gone)(void *owner);
    /* Last callback. `completed` is true if the response was fully sent. */
    void (*on_close)(void *owner, bool completed);
} gw_front_req_ops;
#define GW_FRONT_EOF (-1)
#define GW_FRONT_ABORT (-2)

/*
 * A per-client-IP connection counter shared by the fronts of all workers
 * (the kernel spreads one client's connections over them), so that
 * per_ip_limit holds for the process. Thread-safe; a mutex is taken only
 * when a connection opens or closes. Returns NULL when out of memory.
 */
gw_front_iplimit *gw_front_iplimit_new(void);
void gw_front_iplimit_del(gw_front_iplimit *l);

/*
 * Creates the daemon and adds it to loop. Borrows loop, handler and server
 * (must outlive the front). Returns 0, GW_EIO (bind/listen failed: message
 * in e) or GW_ENOMEM.
 */
int gw_front_new(gw_loop *loop, const gw_front_options *o, const gw_front_handler *h,
                 void *server, gw_front **out, gw_error *e);
/*
 * Hands a connected stream socket to the daemon as if it had been accepted
 * (the fuzz target feeds a socketpair this way). Takes fd over: the daemon
 * closes it, or this function on error. Returns 0 or GW_EIO.
 */
int gw_front_add_connection(gw_front *f, int fd);
/* The port actually bound (after port 0). */
uint16_t gw_front_port(const gw_front *f);
/* Stops accepting new connections (graceful stop); open ones continue. */
void gw_front_quiesce(gw_front *f);
/* Requests attached and not yet closed. */
size_t gw_front_active(const gw_front *f);
/* Closes everything: attached requests get on_client_gone (if still
 * waiting) and on_close before it returns. */
void gw_front_del(gw_front *f);

/* ---- the request, valid from on_request until on_close ------------------- */

const char *gw_front_req_method(const gw_front_req *r);
const char *gw_front_req_path(const gw_front_req *r);   /* without the query */
/* The request target exactly as the client sent it: still percent-encoded,
 * query included (REST routing must see "%2F" inside a segment as such,
 * which the decoded path above cannot show). */
const char *gw_front_req_target(const gw_front_req *r);
/* The client's address as text ("127.0.0.1", "::1") in buf; "" if unknown. */
void gw_front_req_peer(const gw_front_req *r, char *buf, size_t cap);
/* First value of a request header (case-insensitive name), or NULL. */
const char *gw_front_req_header(const gw_front_req *r, const char *name);
/* Calls fn for every request header; stops early if fn returns false. */
void gw_front_req_headers(const gw_front_req *r,
                          bool (*fn)(void *ctx, const char *name, const char *value),
                          void *ctx);
/* Declared Content-Length, or -1 (chunked or absent). */
long long gw_front_req_content_length(const gw_front_req *r);
gw_loop *gw_front_req_loop(const gw_front_req *r);

/*
 * Answers with a complete body (copied). Allowed in on_request, and for an
 * attached request until the response started; a suspended request is
 * resumed to send it (a request body still coming is read and dropped).
 * Headers libmicrohttpd refuses (see gw_front_header_forwardable) are left
 * out rather than failing the answer. A request with a body not
 * yet received gets the body read and dropped (up to discard_limit, else the
 * connection closes after the answer). The body goes out gzip-encoded
 * (Content-Encoding: gzip, Vary: Accept-Encoding, Content-Length of the
 * compressed bytes) when the options' compression allows it: the client
 * accepts gzip, the Content-Type header is listed, the body is at least
 * min_bytes and shrinks, no Content-Encoding or "Cache-Control:
 * no-transform" header is given, the method is not HEAD and the status not
 * 1xx, 204 or 304; an answer that could compress but is not (the client did
 * not ask) still gets the Vary. Returns 0, GW_ESTATE (a response is already
 * set) or GW_ENOMEM.
 */
int gw_front_req_respond(gw_front_req *r, int status, const gw_front_header *headers,
                         size_t n, const void *body, size_t body_len);
/*
 * Answers with `size` bytes of the open file fd from `offset` (sent by
 * libmicrohttpd straight from the file, with sendfile where it can), with a
 * Content-Length; a HEAD request gets the head only. Takes fd over in every
 * case: closed once the response is done, or before returning an error. Same
 * rules as gw_front_req_respond, but never compressed. Returns 0,
 * GW_ESTATE or GW_ENOMEM.
 */
int gw_front_req_respond_fd(gw_front_req *r, int status, const gw_front_header *headers,
                            size_t n, int fd, uint64_t offset, uint64_t size);
/* For an answer given in on_request: send it at once, without reading the
 * body, and close the connection (a body the gateway will not read). For an
 * attached request that could not set any response: close the connection
 * without an answer once woken (gw_front_req_wake), so that it never waits
 * forever. */
void gw_front_req_close_now(gw_front_req *r);
/* Attaches ops/owner to receive the body and produce the response. */
void gw_front_req_attach(gw_front_req *r, const gw_front_req_ops *ops, void *owner);
/*
 * Sets the head of a streamed response (chunked); the body comes from
 * ops->read. Takes effect once the request body has been received; until
 * then the body keeps going to on_body (unlike gw_front_req_respond).
 * Compressed under the rules of gw_front_req_respond whatever its length:
 * each piece `read` returns is deflated and flushed (Z_SYNC_FLUSH) before
 * the next is asked for, so every piece reaches the client when it is
 * produced; the gzip end follows GW_FRONT_EOF. The deflate state (about 32
 * KiB with its 4 KiB window, plus a 16 KiB input buffer, docs/front.md) is
 * freed when the request closes, however it ends. Returns 0, GW_ESTATE or GW_ENOMEM.
 */
int gw_front_req_respond_stream(gw_front_req *r, int status,
                                const gw_front_header *headers, size_t n);
/* Resumes a suspended connection (body room or response bytes ready). Safe
 * to call at any time before on_close. */
void gw_front_req_wake(gw_front_req *r);

/*
 * Whether a header taken from elsewhere (backend metadata) may go out in a
 * response. libmicrohttpd 0.9.75 refuses an empty name or value, CR/LF (and
 * in names space/tab), Content-Length and any Transfer-Encoding but
 * chunked, and a refused header would lose the whole answer; headers about
 * this HTTP connection (Connection, Keep-Alive, Upgrade, Proxy-Connection,
 * Transfer-Encoding, TE, Trailer) belong to the front, never to a backend.
 * So an empty-valued metadata entry is dropped: gRPC allows it, HTTP/1
 * through libmicrohttpd cannot carry it.
 */
bool gw_front_header_forwardable(const char *name, size_t name_len, const char *value,
                                 size_t value_len);

/* ---- protocol upgrade (WebSocket), docs/websocket.md ------------------------ */

typedef struct gw_front_upgraded gw_front_upgraded;

/* What the owner of an upgraded connection implements. */
typedef struct gw_front_upgrade_ops {
    /* The 101 went out: fd (non-blocking) is the owner's to read and write
     * (never to close) until it calls gw_front_upgraded_close(u). extra
     * holds bytes the client sent after its request head (treat them as
     * read from fd). Runs from MHD_run, in the loop's deferred phase. */
    void (*on_upgraded)(void *owner, gw_front_upgraded *u, int fd, const uint8_t *extra,
                        size_t extra_len);
    /* The upgrade never happened (the client left before the 101 went
     * out, or it could not be queued): the owner frees its state. */
    void (*on_failed)(void *owner);
    /* gw_front_del with u still open: stop using fd and free the state;
     * the front closes the connection after this returns. */
    void (*on_shutdown)(void *owner);
} gw_front_upgrade_ops;

/*
 * Answers r with 101 Switching Protocols ("Upgrade: <protocol>",
 * "Connection: Upgrade" and the given headers) and hands the connection
 * over to ops once it is sent. Allowed in on_request, instead of an
 * answer; exactly one of on_upgraded and on_failed follows. Borrows ops
 * and owner until then. Returns 0, GW_ESTATE (already answered) or
 * GW_ENOMEM (nothing will be called).
 */
int gw_front_req_upgrade(gw_front_req *r, const char *protocol, const gw_front_header *headers,
                         size_t n, const gw_front_upgrade_ops *ops, void *owner);
/* Closes an upgraded connection (libmicrohttpd closes the socket); u is
 * freed. Not from inside on_shutdown. */
void gw_front_upgraded_close(gw_front_upgraded *u);
/* Upgraded connections still open. */
size_t gw_front_upgraded_count(const gw_front *f);

#endif
