/*
 * The upstream client: backends, their pools of HTTP/2 connections
 * (nghttp2 client sessions over non-blocking sockets, optionally TLS), and
 * the calls multiplexed on them. See docs/upstream.md for the why.
 *
 * Lifetimes. A gw_ucall struct lives until (1) its owner is done with it
 * (on_complete ran, or it cancelled), (2) it is detached from its HTTP/2
 * stream (closed by nghttp2 or by the death of the connection) and (3) it
 * is out of the wait queue. A connection is freed from a deferred callback
 * because the loop may still hold an event for its gw_io (socket, or
 * resolver eventfd) in the current batch; gw_backend_del inside a loop turn
 * leaves its closed connections to that deferred free (they outlive the
 * backend until the turn ends), between turns it frees them at once.
 * nghttp2 sessions are only ever deleted outside nghttp2 calls:
 * callbacks record what went wrong and the caller of mem_recv/send acts.
 *
 * Re-entrancy. Owner callbacks (on_headers, on_message, on_writable,
 * on_complete) run only from loop callbacks: on_headers and on_message
 * straight from the data path (socket read → nghttp2 → here), on_writable
 * and on_complete from gw_defer handles. Functions the owner calls never
 * read or write sockets; they schedule a flush.
 */
#include "upstream/upstream.h"
#include "upstream/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define HTTP_BODY_KEEP 512       /* bytes of a non-gRPC body kept for the message */
#define READ_CHUNK 16384
#define USER_AGENT "grpcgate/0.1"
#define PING_ACK_TIMEOUT_MS 20000u   /* gRPC's default keepalive timeout */
#define MAX_ADDRS 32u                /* addresses kept per host name */

typedef struct conn conn;

enum scheme { SCHEME_HTTP, SCHEME_HTTPS, SCHEME_UNIX };
enum conn_state { CONN_RESOLVING, CONN_CONNECTING, CONN_TLS, CONN_READY, CONN_DEAD };

/* One address to connect to (IPv4, IPv6 or unix). */
typedef struct peer_addr {
    struct sockaddr_storage sa;
    socklen_t len;
} peer_addr;

/* One socket of a connection's race through its addresses (RFC 8305,
 * simplified): several may be connecting at once; the first to connect
 * becomes the connection's socket and the others are closed. */
typedef struct attempt {
    conn *k;
    int fd;                          /* -1: not started, failed or closed */
    gw_io io;
} attempt;

struct gw_ucall {
    gw_backend *b;
    gw_ucall *all_next, *all_prev;   /* every live call of the backend */
    gw_ucall *q_next, *q_prev;       /* wait queue */
    gw_ucall *s_next, *s_prev;       /* calls on conn */
    conn *conn;                      /* while attached to a stream */
    int32_t stream_id;
    bool in_queue;

    const gw_ucall_handlers *h;
    void *owner;
    gw_arena arena;
    char *path;
    gw_header *md;
    size_t md_count;
    uint64_t deadline_ns;

    /* request side */
    gw_buf req;                      /* bytes not yet handed to nghttp2 */
    gw_buf replay;                   /* bytes handed over, kept for one retry */
    bool replay_lost;
    bool send_closed;
    bool data_deferred;
    bool want_writable;
    bool retried;
    bool not_sent;                   /* HEADERS never left: safe to retry */

    /* response side */
    int http_status;
    bool grpc_content_type;
    bool got_headers;                /* response HEADERS without END_STREAM */
    bool headers_delivered;          /* on_headers ran */
    bool non_grpc;                   /* collecting an HTTP error body */
    bool remote_ended;
    bool in_trailers;
    size_t header_bytes;
    gw_header *resp_md;
    size_t resp_md_n, resp_md_cap;
    gw_header *trl;
    size_t trl_n, trl_cap;
    bool have_status;
    int grpc_status;
    char *grpc_message;
    uint8_t *details;
    size_t details_len;
    char content_type[64];
    gw_buf http_body;
    gw_deframer df;
    gw_error df_err;

    /* receive flow control of the stream (pure.c, docs/upstream.md) */
    gw_flow flow;

    /* completion */
    bool finished;
    bool owner_gone;
    int final_code;
    char *final_msg;
    char *final_detail;              /* hide_details: what final_msg hides */
    gw_defer complete_defer;
    gw_defer writable_defer;
    gw_timer deadline_timer;

    /* cluster hooks (internal.h) */
    const gw_ucall_observer *obs;
    void *obs_ctx;
    unsigned redirects;
    bool unreachable;                /* failed before it was sent */
    bool conn_lost;                  /* its connection died under it */
};

struct conn {
    gw_backend *b;
    conn *next;
    enum conn_state state;
    int fd;
    gw_io io;
    uint32_t io_events;
    gw_dns_watch dns;                /* CONN_RESOLVING: the name in flight */
    peer_addr *addrs;                /* this attempt's copy of the backend's */
    size_t n_addrs, next_addr;
    /* One slot per address (n_addrs). Freed with the struct, never in
     * conn_close: the loop's batch may still name their gw_io. */
    attempt *attempts;
    size_t attempts_live;            /* sockets still connecting */
    gw_timer attempt_timer;          /* starts the next address */
    gw_timer connect_timer;
    gw_timer reset_timer;
    gw_timer keepalive_timer;
    gw_timer ping_ack_timer;         /* a keepalive PING awaits its ACK */
    struct {                         /* PINGs after silence (silence_*) */
        gw_timer tick;               /* next look at the connection */
        gw_timer ack;                /* the PING's answer is due */
        uint64_t last_ns;            /* last bytes read, or a stream opened */
        uint64_t ping_ns;            /* the last PING sent; 0: none */
        bool data_since_ping;        /* HEADERS/DATA read since that PING */
        bool awaiting;               /* nothing read since that PING */
    } silence;
    SSL *ssl;
    int tls_alert;                   /* fatal alert from the backend + 1; 0: none */
    bool tls_cert_asked;             /* it asked for a client certificate we lack */
    nghttp2_session *h2;
    bool draining;
    bool peer_settings;              /* the backend's first SETTINGS arrived */
    bool write_blocked;
    bool counted_open;
    size_t streams;
    gw_ucall *calls;
    uint64_t reset_window_start;
    uint32_t resets_in_window;
    int32_t *pending_resets;
    uint32_t *pending_reset_codes;
    size_t n_pending_resets, cap_pending_resets;
    gw_defer flush_defer;
    gw_defer free_defer;
    char reason[256];
    /* Frames nghttp2 serialized, written with one send per loop turn (or
     * per OUT_FLUSH bytes) instead of one per frame. */
    gw_buf out;
    size_t out_off;                  /* first byte not yet written */
};

struct gw_backend {
    gw_loop *loop;
    char *url;
    enum scheme scheme;
    char *host;
    char *port;
    char *unix_path;
    char *authority;
    /* Where to connect: the literal address or unix path (fixed), or what
     * the host name resolved to (host_is_name), which stays fresh until a
     * connection closes or an attempt fails; the next attempt then asks
     * the resolver again. */
    bool host_is_name;
    peer_addr *addrs;
    size_t n_addrs;
    bool addrs_fresh;
    char *server_name;
    char *ca_file, *cert_file, *key_file, *opt_server_name, *opt_authority;
    gw_backend_options opt;
    SSL_CTX *ssl_ctx;
    BIO_METHOD *bio_method;
    conn *conns;
    conn *dead;                      /* closed, waiting for their deferred free */
    gw_ucall *all_calls;
    gw_ucall *q_head, *q_tail;
    size_t q_len;
    size_t active_calls;
    gw_defer dispatch_defer;
    gw_backoff backoff;
    bool down;
    uint64_t retry_at_ns;
    char down_reason[256];
    char public_name[64];            /* opt.name points here */
    uint64_t detail_logged_ns;       /* hide_details: the last detail line */
    unsigned long details_unlogged;  /* ... and those left out since */
    gw_backend_stats stats;
    void *user;
};

static void conn_flush_later(conn *k);
static void conn_close(conn *k, const char *why);
static void silence_init(conn *k);
static void silence_stop(conn *k);
static void silence_on_read(conn *k);
static void silence_on_frame(conn *k, uint8_t type);
static void silence_watch(conn *k);
static void dispatch_later(gw_backend *b);
static void call_finish(gw_ucall *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void call_maybe_free(gw_ucall *c);
static void call_detach(gw_ucall *c);
static void conn_reset_stream(conn *k, int32_t stream_id, uint32_t code);
static void dispatch(void *arg);
static bool backend_has_live_conn(gw_backend *b);

/* ---- options and URL ---------------------------------------------------- */

void gw_backend_options_init(gw_backend_options *o)
{
    memset(o, 0, sizeof *o);
    o->pool_size = 1;
    o->stream_window = 256 * 1024;
    o->connection_window = 1024 * 1024;
    o->max_response_message = 4 * 1024 * 1024;
    o->max_request_buffer = 64 * 1024;
    o->max_header_list = 16 * 1024;
    o->max_queued_calls = 1024;
    o->max_resets_per_sec = 100;
    o->connect_timeout_ms = 20000;
    o->attempt_delay_ms = 250;
    o->send_lowat = 128 * 1024;
    o->ping_silent_ms = 30000;
    o->ping_timeout_ms = 20000;
}

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *p = strdup(s);
    if (!p)
        *oom = true;
    return p;
}

static int parse_url(gw_backend *b, const char *url, gw_error *e)
{
    const char *rest;
    if (strncmp(url, "unix:", 5) == 0) {
        b->scheme = SCHEME_UNIX;
        rest = url + 5;
        if (rest[0] != '/' || strlen(rest) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return gw_error_set(e, GW_EINVAL, "backend URL %s: unix: needs an absolute socket path", url);
        b->unix_path = strdup(rest);
        b->authority = strdup("localhost");
        return b->unix_path && b->authority ? 0 : GW_ENOMEM;
    }
    const char *def_port;
    if (strncmp(url, "http://", 7) == 0) {
        b->scheme = SCHEME_HTTP;
        rest = url + 7;
        def_port = "80";
    } else if (strncmp(url, "https://", 8) == 0) {
        b->scheme = SCHEME_HTTPS;
        rest = url + 8;
        def_port = "443";
    } else {
        return gw_error_set(e, GW_EINVAL,
                            "backend URL %s: expected http://host:port, https://host:port or unix:/path", url);
    }
    size_t len = strlen(rest);
    if (len && rest[len - 1] == '/')
        len--;
    if (memchr(rest, '/', len) || memchr(rest, '@', len) || memchr(rest, '?', len))
        return gw_error_set(e, GW_EINVAL, "backend URL %s: only scheme, host and port are allowed", url);
    const char *host = rest, *hend, *port = NULL;
    size_t port_len = 0;
    if (len && rest[0] == '[') {
        hend = memchr(rest, ']', len);
        if (!hend)
            return gw_error_set(e, GW_EINVAL, "backend URL %s: unterminated [IPv6] host", url);
        host = rest + 1;
        if ((size_t)(hend + 1 - rest) < len) {
            if (hend[1] != ':')
                return gw_error_set(e, GW_EINVAL, "backend URL %s: junk after ]", url);
            port = hend + 2;
            port_len = len - (size_t)(port - rest);
        }
    } else {
        const char *colon = memchr(rest, ':', len);
        hend = colon ? colon : rest + len;
        if (colon) {
            port = colon + 1;
            port_len = len - (size_t)(port - rest);
        }
    }
    if (hend == host)
        return gw_error_set(e, GW_EINVAL, "backend URL %s: empty host", url);
    if (port) {
        if (port_len == 0 || port_len > 5)
            return gw_error_set(e, GW_EINVAL, "backend URL %s: bad port", url);
        unsigned long pv = 0;
        for (size_t i = 0; i < port_len; i++) {
            if (port[i] < '0' || port[i] > '9')
                return gw_error_set(e, GW_EINVAL, "backend URL %s: bad port", url);
            pv = pv * 10 + (unsigned long)(port[i] - '0');
        }
        if (pv == 0 || pv > 65535)
            return gw_error_set(e, GW_EINVAL, "backend URL %s: port out of range", url);
    }
    b->host = dupn(host, (size_t)(hend - host));
    b->port = port ? dupn(port, port_len) : strdup(def_port);
    b->authority = dupn(rest, len);
    if (!b->host || !b->port || !b->authority)
        return GW_ENOMEM;
    return 0;
}

static int ssl_error_text(char *out, size_t n)
{
    unsigned long err = ERR_get_error();
    if (!err) {
        snprintf(out, n, "unknown TLS error");
        return 0;
    }
    ERR_error_string_n(err, out, n);
    ERR_clear_error();
    return 0;
}

/* ---- TLS failures in words --------------------------------------------------
 * OpenSSL reports a backend's refusal as an alert code (or, when the
 * backend closed first, as a bare write error). The alert is recorded as
 * it is read (info callback), a request for a client certificate when we
 * have none too, and tls_failure_text turns them into a sentence. */

static void tls_info(const SSL *ssl, int where, int ret)
{
    conn *k = SSL_get_app_data(ssl);
    if (k && (where & SSL_CB_READ_ALERT) && (ret >> 8) == SSL3_AL_FATAL)
        k->tls_alert = (ret & 0xff) + 1;
}

/* Only installed when no client certificate is configured: notes that the
 * backend asked for one, and sends none. */
static int tls_client_cert(SSL *ssl, X509 **x509, EVP_PKEY **pkey)
{
    (void)x509;
    (void)pkey;
    conn *k = SSL_get_app_data(ssl);
    if (k)
        k->tls_cert_asked = true;
    return 0;
}

/* A sentence for alert (TLS alert description) from the backend. */
static void tls_alert_text(const conn *k, int alert, char *out, size_t n)
{
    const char *name = SSL_alert_desc_string_long(alert);
    bool have_cert = k->b->opt.cert_file != NULL;
    switch (alert) {
    case 116: /* certificate_required (TLS 1.3) */
        snprintf(out, n, "the backend requires a client certificate%s",
                 have_cert ? "" : " and none is configured (--backend-cert and --backend-key, "
                                  "or cert_file and key_file in backend_tls or "
                                  "backends.NAME.tls)");
        return;
    case 40: /* handshake_failure: TLS 1.2's answer to a missing certificate too */
        if (k->tls_cert_asked) {
            snprintf(out, n, "the backend requires a client certificate and none is configured "
                     "(--backend-cert and --backend-key, or cert_file and key_file in "
                     "backend_tls or backends.NAME.tls)");
            return;
        }
        snprintf(out, n, "the backend refused the handshake (no TLS 1.2/1.3 cipher suite or "
                 "group in common)");
        return;
    case 42: case 43: case 44: case 45: case 46: case 48: case 49:
        snprintf(out, n, "the backend rejected the gateway's client certificate (alert: %s)",
                 name);
        return;
    case 70: /* protocol_version */
        snprintf(out, n, "no TLS version in common with the backend (the gateway speaks TLS "
                 "1.2 and 1.3)");
        return;
    case 112: /* unrecognized_name */
        snprintf(out, n, "the backend does not know the server name the gateway sent (SNI; "
                 "set tls.server_name)");
        return;
    case 120: /* no_application_protocol */
        snprintf(out, n, "the backend does not offer HTTP/2 over TLS (ALPN h2)");
        return;
    default:
        snprintf(out, n, "the backend sent the TLS alert '%s'", name);
    }
}

/* Why a TLS handshake, read or write on k failed (ssl_err: SSL_get_error's
 * answer). A write error with no OpenSSL reason usually means the backend
 * sent an alert and closed: one read picks that alert up. */
static void tls_failure_text(conn *k, int ssl_err, int sys_errno, char *out, size_t n)
{
    bool queued = ERR_peek_error() != 0;
    if (!k->tls_alert && !queued && ssl_err == SSL_ERROR_SYSCALL) {
        uint8_t scratch[256];
        ERR_clear_error();
        (void)SSL_read(k->ssl, scratch, sizeof scratch);
        queued = ERR_peek_error() != 0;
    }
    if (k->tls_alert) {
        tls_alert_text(k, k->tls_alert - 1, out, n);
        ERR_clear_error();
        return;
    }
    if (k->tls_cert_asked && !queued) {
        snprintf(out, n, "the backend asked for a client certificate, none is configured, and "
                 "it closed the connection");
        return;
    }
    if (queued) {
        unsigned long err = ERR_get_error();
        const char *reason = ERR_reason_error_string(err);
        if (reason)
            snprintf(out, n, "%s", reason);
        else
            ERR_error_string_n(err, out, n);
        ERR_clear_error();
        return;
    }
    if (ssl_err == SSL_ERROR_SYSCALL && sys_errno)
        snprintf(out, n, "%s", strerror(sys_errno));
    else if (ssl_err == SSL_ERROR_SYSCALL || ssl_err == SSL_ERROR_ZERO_RETURN)
        snprintf(out, n, "the backend closed the connection");
    else
        snprintf(out, n, "TLS error %d", ssl_err);
}

/*
 * A socket BIO that sends with MSG_NOSIGNAL: OpenSSL's own socket BIO uses
 * write(), and a backend that closes while we write would kill the whole
 * gateway with SIGPIPE. A library must not depend on the process ignoring
 * the signal.
 */
static int nosig_write(BIO *bio, const char *data, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    ssize_t n = send(fd, data, (size_t)len, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_write(bio);
    return (int)n;
}

static int nosig_read(BIO *bio, char *buf, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    ssize_t n = recv(fd, buf, (size_t)len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_read(bio);
    return (int)n;
}

static long nosig_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int nosig_create(BIO *bio)
{
    BIO_set_init(bio, 1);
    return 1;
}

static int make_ssl_ctx(gw_backend *b, gw_error *e)
{
    b->bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gw-socket");
    if (!b->bio_method || BIO_meth_set_write(b->bio_method, nosig_write) != 1 ||
        BIO_meth_set_read(b->bio_method, nosig_read) != 1 ||
        BIO_meth_set_ctrl(b->bio_method, nosig_ctrl) != 1 ||
        BIO_meth_set_create(b->bio_method, nosig_create) != 1)
        return gw_error_set(e, GW_ENOMEM, "cannot create the TLS socket BIO");
    char msg[256];
    b->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!b->ssl_ctx)
        return gw_error_set(e, GW_ENOMEM, "cannot create TLS context");
    SSL_CTX_set_min_proto_version(b->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(b->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(b->ssl_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_info_callback(b->ssl_ctx, tls_info);
    if (!b->opt.cert_file)
        SSL_CTX_set_client_cert_cb(b->ssl_ctx, tls_client_cert);
    static const unsigned char alpn[] = {2, 'h', '2'};
    if (SSL_CTX_set_alpn_protos(b->ssl_ctx, alpn, sizeof alpn) != 0)
        return gw_error_set(e, GW_ENOMEM, "cannot set ALPN");
    if (b->opt.ca_file) {
        if (SSL_CTX_load_verify_locations(b->ssl_ctx, b->opt.ca_file, NULL) != 1) {
            ssl_error_text(msg, sizeof msg);
            return gw_error_set(e, GW_EINVAL, "backend %s: cannot load CA file %s: %s",
                                b->url, b->opt.ca_file, msg);
        }
    } else if (SSL_CTX_set_default_verify_paths(b->ssl_ctx) != 1) {
        ssl_error_text(msg, sizeof msg);
        return gw_error_set(e, GW_EINVAL, "backend %s: cannot load system CAs: %s", b->url, msg);
    }
    if (b->opt.cert_file || b->opt.key_file) {
        if (!b->opt.cert_file || !b->opt.key_file)
            return gw_error_set(e, GW_EINVAL, "backend %s: a client certificate needs both cert_file and key_file", b->url);
        if (SSL_CTX_use_certificate_chain_file(b->ssl_ctx, b->opt.cert_file) != 1 ||
            SSL_CTX_use_PrivateKey_file(b->ssl_ctx, b->opt.key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(b->ssl_ctx) != 1) {
            ssl_error_text(msg, sizeof msg);
            return gw_error_set(e, GW_EINVAL, "backend %s: cannot use client certificate %s / key %s: %s",
                                b->url, b->opt.cert_file, b->opt.key_file, msg);
        }
    }
    return 0;
}

/* Turns numeric addresses (IP literals, as in the URL or from a resolver)
 * into socket addresses for port, skipping any that are not numeric.
 * AI_NUMERICHOST keeps getaddrinfo from asking any name service, so this
 * never blocks. *out is malloc'ed. Returns 0, GW_ENOTFOUND (none usable)
 * or GW_ENOMEM. */
static int numeric_addrs(const char *const *hosts, size_t nh, const char *port, peer_addr **out,
                         size_t *n)
{
    *out = NULL;
    *n = 0;
    peer_addr *a = calloc(nh ? nh : 1, sizeof *a);
    if (!a)
        return GW_ENOMEM;
    for (size_t i = 0; i < nh; i++) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        int g = getaddrinfo(hosts[i], port, &hints, &res);
        if (g == EAI_MEMORY) {
            free(a);
            *n = 0;
            return GW_ENOMEM;
        }
        if (g != 0)
            continue;
        if (res->ai_addrlen <= sizeof a[*n].sa) {
            memcpy(&a[*n].sa, res->ai_addr, res->ai_addrlen);
            a[*n].len = res->ai_addrlen;
            (*n)++;
        }
        freeaddrinfo(res);
    }
    if (*n == 0) {
        free(a);
        return GW_ENOTFOUND;
    }
    *out = a;
    return 0;
}

/* Fixes where a backend connects: a unix path or an IP literal now, a host
 * name at connect time (host_is_name). Returns 0, GW_EINVAL (a literal
 * getaddrinfo cannot use, such as a zone naming no interface: message in
 * e) or GW_ENOMEM. */
static int backend_addrs_init(gw_backend *b, gw_error *e)
{
    if (b->scheme == SCHEME_UNIX) {
        b->addrs = calloc(1, sizeof *b->addrs);
        if (!b->addrs)
            return GW_ENOMEM;
        struct sockaddr_un *sun = (struct sockaddr_un *)&b->addrs[0].sa;
        sun->sun_family = AF_UNIX;
        snprintf(sun->sun_path, sizeof sun->sun_path, "%s", b->unix_path);
        b->addrs[0].len = sizeof *sun;
        b->n_addrs = 1;
        return 0;
    }
    if (!gw_dns_is_ip_literal(b->host, NULL)) {
        b->host_is_name = true;
        return 0;
    }
    const char *host = b->host;
    int rc = numeric_addrs(&host, 1, b->port, &b->addrs, &b->n_addrs);
    if (rc == GW_ENOMEM)
        return gw_error_set(e, rc, "out of memory");
    if (rc != 0)
        return gw_error_set(e, GW_EINVAL, "backend URL %s: cannot use address %s%s", b->url,
                            b->host,
                            strchr(b->host, '%') ? " (its zone names no interface, or the "
                                                   "address takes none)"
                                                 : "");
    return 0;
}

int gw_backend_new(gw_loop *loop, const char *url, const gw_backend_options *o,
                   gw_backend **out, gw_error *e)
{
    int rc = 0;
    *out = NULL;
    if (!loop || !url)
        return gw_error_set(e, GW_EINVAL, "backend: no loop or URL");
    gw_backend *b = calloc(1, sizeof *b);
    if (!b)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    b->loop = loop;
    gw_backend_options_init(&b->opt);
    if (o)
        b->opt = *o;
    if (b->opt.pool_size == 0)
        b->opt.pool_size = 1;
    if (b->opt.stream_window == 0)
        b->opt.stream_window = 256 * 1024;
    if (b->opt.stream_window > 0x7fffffff)
        b->opt.stream_window = 0x7fffffff;
    if (b->opt.connection_window < 65535)
        b->opt.connection_window = 65535;
    if (b->opt.connection_window > 0x7fffffff)
        b->opt.connection_window = 0x7fffffff;
    if (b->opt.max_response_message == 0)
        b->opt.max_response_message = 4 * 1024 * 1024;
    if (b->opt.max_response_message > 0x7fffffff)
        b->opt.max_response_message = 0x7fffffff;
    if (b->opt.max_request_buffer == 0)
        b->opt.max_request_buffer = 64 * 1024;
    if (b->opt.max_header_list == 0)
        b->opt.max_header_list = 16 * 1024;
    if (b->opt.max_resets_per_sec == 0)
        b->opt.max_resets_per_sec = 100;
    if (b->opt.connect_timeout_ms == 0)
        b->opt.connect_timeout_ms = 20000;
    if (b->opt.attempt_delay_ms == 0)
        b->opt.attempt_delay_ms = 250;
    if (b->opt.attempt_delay_ms < 10)
        b->opt.attempt_delay_ms = 10;
    if (b->opt.keepalive_ms && b->opt.keepalive_ms < 300000)
        b->opt.keepalive_ms = 300000;
    if (b->opt.ping_silent_ms && !b->opt.ping_timeout_ms)
        b->opt.ping_timeout_ms = 20000;
    bool oom = false;
    b->url = dup_or_null(url, &oom);
    b->ca_file = dup_or_null(b->opt.ca_file, &oom);
    b->cert_file = dup_or_null(b->opt.cert_file, &oom);
    b->key_file = dup_or_null(b->opt.key_file, &oom);
    b->opt_server_name = dup_or_null(b->opt.server_name, &oom);
    b->opt_authority = dup_or_null(b->opt.authority, &oom);
    b->opt.ca_file = b->ca_file;
    b->opt.cert_file = b->cert_file;
    b->opt.key_file = b->key_file;
    b->opt.server_name = b->opt_server_name;
    b->opt.authority = b->opt_authority;
    if (b->opt.name) {
        snprintf(b->public_name, sizeof b->public_name, "%s", b->opt.name);
        b->opt.name = b->public_name;
    }
    if (oom) {
        rc = gw_error_set(e, GW_ENOMEM, "out of memory");
        goto out;
    }
    rc = parse_url(b, url, e);
    if (rc) {
        if (rc == GW_ENOMEM)
            gw_error_set(e, rc, "out of memory");
        goto out;
    }
    rc = backend_addrs_init(b, e);
    if (rc)
        goto out;
    if (b->opt.authority) {
        free(b->authority);
        b->authority = strdup(b->opt.authority);
        if (!b->authority) {
            rc = gw_error_set(e, GW_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (b->scheme == SCHEME_HTTPS) {
        rc = make_ssl_ctx(b, e);
        if (rc)
            goto out;
    }
    gw_backoff_init(&b->backoff, b->opt.random, b->opt.random_ctx,
                    gw_now_ns() ^ (uint64_t)(uintptr_t)b);
    gw_defer_init(&b->dispatch_defer, dispatch, b);
    *out = b;
    return 0;
out:
    gw_backend_del(b);
    return rc;
}

const char *gw_backend_url(const gw_backend *b) { return b->url; }

const char *gw_ucall_endpoint(const gw_ucall *c) { return c && c->b ? c->b->url : NULL; }
void gw_backend_set_user(gw_backend *b, void *user) { b->user = user; }
void *gw_backend_user(const gw_backend *b) { return b->user; }
gw_loop *gw_backend_loop(const gw_backend *b) { return b->loop; }

bool gw_backend_is_down(const gw_backend *b)
{
    return b->down && gw_loop_now(b->loop) < b->retry_at_ns && !backend_has_live_conn((gw_backend *)b);
}

void gw_ucall_set_observer(gw_ucall *c, const gw_ucall_observer *obs, void *ctx)
{
    c->obs = obs;
    c->obs_ctx = ctx;
}
size_t gw_backend_active_calls(const gw_backend *b) { return b->active_calls; }

void gw_backend_get_stats(const gw_backend *b, gw_backend_stats *out)
{
    *out = b->stats;
    out->queued_calls = b->q_len;
}

/* ---- the wait queue -------------------------------------------------------- */

static void queue_push(gw_backend *b, gw_ucall *c, bool front)
{
    c->in_queue = true;
    if (front) {
        c->q_prev = NULL;
        c->q_next = b->q_head;
        if (b->q_head)
            b->q_head->q_prev = c;
        else
            b->q_tail = c;
        b->q_head = c;
    } else {
        c->q_next = NULL;
        c->q_prev = b->q_tail;
        if (b->q_tail)
            b->q_tail->q_next = c;
        else
            b->q_head = c;
        b->q_tail = c;
    }
    b->q_len++;
}

static void queue_remove(gw_backend *b, gw_ucall *c)
{
    if (!c->in_queue)
        return;
    if (c->q_prev)
        c->q_prev->q_next = c->q_next;
    else
        b->q_head = c->q_next;
    if (c->q_next)
        c->q_next->q_prev = c->q_prev;
    else
        b->q_tail = c->q_prev;
    c->q_next = c->q_prev = NULL;
    c->in_queue = false;
    b->q_len--;
}

/* ---- calls: completion ------------------------------------------------------ */

__attribute__((format(printf, 3, 0)))
static void call_finishv(gw_ucall *c, int code, const char *fmt, va_list ap)
{
    if (c->finished)
        return;
    c->finished = true;
    c->final_code = code;
    char msg[GW_ERROR_MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    c->final_msg = gw_arena_strdup(&c->arena, msg);
    gw_loop_timer_stop(c->b->loop, &c->deadline_timer);
    gw_loop_defer_cancel(c->b->loop, &c->writable_defer);
    if (c->in_queue)
        queue_remove(c->b, c);
    if (!c->owner_gone)
        gw_loop_defer(c->b->loop, &c->complete_defer);
}

static void call_finish(gw_ucall *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    call_finishv(c, code, fmt, ap);
    va_end(ap);
}

/*
 * A call that fails in the gateway's transport, not by the backend's own
 * status: detail names the backend's URL and the cause. With hide_details
 * the client gets "backend 'NAME' <what>" and the detail goes to the log
 * (rate-limited: a dead backend fails every call); else the detail.
 */
static void call_fail(gw_ucall *c, int code, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void call_fail(gw_ucall *c, int code, const char *what, const char *fmt, ...)
{
    gw_backend *b = c->b;
    char detail[GW_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (!b->opt.hide_details || c->finished) {
        call_finish(c, code, "%s", detail);
        return;
    }
    uint64_t now = gw_now_ns();
    if (!b->detail_logged_ns || now - b->detail_logged_ns >= 1000 * GW_MS) {
        if (b->details_unlogged)
            GW_WARN("upstream: call %s failed: %s (and %lu more call failures on this backend "
                    "since the last such line)", c->path ? c->path : "?", detail,
                    b->details_unlogged);
        else
            GW_WARN("upstream: call %s failed: %s", c->path ? c->path : "?", detail);
        b->detail_logged_ns = now;
        b->details_unlogged = 0;
    } else {
        b->details_unlogged++;
    }
    c->final_detail = gw_arena_strdup(&c->arena, detail); /* NULL: message only */
    if (b->opt.name)
        call_finish(c, code, "backend '%s' %s", b->opt.name, what);
    else
        call_finish(c, code, "backend %s", what);
}

static void call_free(gw_ucall *c)
{
    gw_backend *b = c->b;
    gw_loop_timer_stop(b->loop, &c->deadline_timer);
    gw_loop_defer_cancel(b->loop, &c->complete_defer);
    gw_loop_defer_cancel(b->loop, &c->writable_defer);
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        b->all_calls = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    gw_deframer_free(&c->df);
    gw_buf_free(&c->req);
    gw_buf_free(&c->replay);
    gw_buf_free(&c->http_body);
    gw_arena_free(&c->arena);
    free(c);
}

static void call_maybe_free(gw_ucall *c)
{
    if (c->owner_gone && !c->conn && !c->in_queue)
        call_free(c);
}

static void call_owner_done(gw_ucall *c)
{
    if (c->owner_gone)
        return;
    c->owner_gone = true;
    c->b->active_calls--;
}

static void on_complete_deferred(void *arg)
{
    gw_ucall *c = arg;
    if (c->owner_gone)
        return;
    gw_call_status st = {
        .code = c->final_code,
        .message = c->final_msg ? c->final_msg : "",
        .details = c->details,
        .details_len = c->details_len,
        .trailers = c->trl,
        .trailer_count = c->trl_n,
        .trailers_only = !c->headers_delivered,
        .unreachable = c->unreachable,
        .connection_lost = c->conn_lost,
        .detail = c->final_detail ? c->final_detail : (c->final_msg ? c->final_msg : ""),
    };
    call_owner_done(c);
    /* The owner's last look; discard pending request bytes so the stream can
     * end cleanly if the backend answered before the request was complete. */
    if (c->conn && !c->send_closed) {
        c->send_closed = true;
        gw_buf_reset(&c->req);
        if (c->data_deferred) {
            c->data_deferred = false;
            nghttp2_session_resume_data(c->conn->h2, c->stream_id);
            conn_flush_later(c->conn);
        }
    }
    if (c->obs && c->obs->on_done)
        c->obs->on_done(c->obs_ctx, c->b, &st);
    c->h->on_complete(c->owner, &st);
    call_maybe_free(c);
}

static void on_writable_deferred(void *arg)
{
    gw_ucall *c = arg;
    if (c->owner_gone || c->finished || !c->want_writable)
        return;
    if (c->req.len >= c->b->opt.max_request_buffer)
        return;
    c->want_writable = false;
    if (c->h->on_writable)
        c->h->on_writable(c->owner);
}

static void on_deadline(void *arg)
{
    gw_ucall *c = arg;
    if (c->finished)
        return;
    call_finish(c, GW_CODE_DEADLINE_EXCEEDED, "deadline exceeded");
    if (c->conn)
        conn_reset_stream(c->conn, c->stream_id, NGHTTP2_CANCEL);
    call_maybe_free(c);
}

/* ---- flow control -------------------------------------------------------------- */

/* Sends the stream WINDOW_UPDATE the accounting asks for, if any. The
 * increment goes out as is: nghttp2's own consume batching (nothing below
 * half a window) is not used, because credit it held back is credit the
 * accounting could not see (issue 12). */
static void call_flow_update(gw_ucall *c)
{
    if (!c->conn || c->stream_id <= 0)
        return;
    uint32_t n = gw_flow_update(&c->flow, gw_deframer_missing(&c->df));
    if (!n)
        return;
    if (nghttp2_submit_window_update(c->conn->h2, NGHTTP2_FLAG_NONE, c->stream_id,
                                     (int32_t)n) != 0)
        return; /* the stream is gone or the session dying: nothing to reopen */
    conn_flush_later(c->conn);
}

/* Nobody will consume this stream's messages any more (the call ended or
 * its owner left): let the rest of the stream in so that it ends cleanly. */
static void call_flow_discard(gw_ucall *c)
{
    gw_flow_discard(&c->flow);
    call_flow_update(c);
}

void gw_ucall_consume(gw_ucall *c, size_t wire_len)
{
    if (!c || c->owner_gone)
        return;
    /* gw_flow never counts more than was delivered: a confused owner
     * cannot open the window beyond what the backend was allowed. */
    gw_flow_consumed(&c->flow, wire_len);
    call_flow_update(c);
}

/* ---- connections: I/O ------------------------------------------------------------ */

static void conn_set_reason(conn *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_set_reason(conn *k, const char *fmt, ...)
{
    if (k->reason[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->reason, sizeof k->reason, fmt, ap);
    va_end(ap);
}

static void conn_update_io(conn *k)
{
    if (!k->io.active)
        return;
    uint32_t ev = GW_IO_READ | (k->write_blocked ? GW_IO_WRITE : 0);
    gw_loop_io_modify(k->b->loop, &k->io, ev);
}

/* One write to the socket (or TLS). Returns the bytes taken, 0 when the
 * socket cannot take any now (write_blocked is set if a writable event will
 * say when), or -1 with k->reason set. */
static ssize_t conn_write(conn *k, const uint8_t *data, size_t len)
{
    if (k->ssl) {
        ERR_clear_error();
        errno = 0;
        int n = SSL_write(k->ssl, data, (int)GW_MIN(len, (size_t)INT32_MAX));
        if (n > 0)
            return n;
        int sys_errno = errno;
        int err = SSL_get_error(k->ssl, n);
        if (err == SSL_ERROR_WANT_WRITE) {
            k->write_blocked = true;
            return 0;
        }
        if (err == SSL_ERROR_WANT_READ)
            return 0;
        char msg[200];
        tls_failure_text(k, err, sys_errno, msg, sizeof msg);
        conn_set_reason(k, "TLS write failed: %s", msg);
        return -1;
    }
    ssize_t n = send(k->fd, data, len, MSG_NOSIGNAL);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        k->write_blocked = true;
        return 0;
    }
    if (errno == EINTR)
        return 0;
    conn_set_reason(k, "write: %s", strerror(errno));
    return -1;
}

/* Writes what k->out holds. Returns 0 (all written, or the rest waits for
 * the socket) or -1. The bytes stay where they are until written, as a
 * TLS write that must be retried needs the same buffer. */
static int conn_out_drain(conn *k)
{
    while (k->out_off < k->out.len) {
        ssize_t n = conn_write(k, k->out.data + k->out_off, k->out.len - k->out_off);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        k->out_off += (size_t)n;
    }
    k->out.len = k->out_off = 0;
    return 0;
}

#define OUT_FLUSH (32u * 1024)   /* write once this much is collected */

static void conn_flush(conn *k)
{
    if (k->state != CONN_READY)
        return;
    /* Leftover bytes go first; nothing new is serialized until they are out,
     * so a backend that does not read stops the frames here. */
    int rv = conn_out_drain(k);
    while (rv == 0 && k->out.len == 0) {
        for (;;) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(k->h2, &data);
            if (n < 0) {
                conn_set_reason(k, "HTTP/2: %s", nghttp2_strerror((int)n));
                conn_close(k, k->reason);
                return;
            }
            if (n == 0)
                break;
            if (gw_buf_append(&k->out, data, (size_t)n) != 0) {
                conn_close(k, "out of memory buffering frames");
                return;
            }
            if (k->out.len >= OUT_FLUSH)
                break;
        }
        if (k->out.len == 0)
            break;
        rv = conn_out_drain(k);
    }
    if (rv != 0) {
        conn_close(k, k->reason);
        return;
    }
    conn_update_io(k);
    if (k->out.len)
        return; /* the rest when the socket is writable */
    if (!nghttp2_session_want_read(k->h2) && !nghttp2_session_want_write(k->h2)) {
        conn_close(k, "connection closed by the backend (GOAWAY)");
        return;
    }
    if (k->draining && k->streams == 0 && !nghttp2_session_want_write(k->h2))
        conn_close(k, "connection drained after GOAWAY");
}

static void on_flush_deferred(void *arg) { conn_flush(arg); }

static void conn_flush_later(conn *k)
{
    if (k->state == CONN_READY)
        gw_loop_defer(k->b->loop, &k->flush_defer);
}

static void conn_read(conn *k)
{
    uint8_t buf[READ_CHUNK];
    for (;;) {
        ssize_t n;
        if (k->ssl) {
            ERR_clear_error();
            errno = 0;
            int r = SSL_read(k->ssl, buf, sizeof buf);
            if (r <= 0) {
                int sys_errno = errno;
                int err = SSL_get_error(k->ssl, r);
                if (err == SSL_ERROR_WANT_READ)
                    return;
                if (err == SSL_ERROR_WANT_WRITE) {
                    k->write_blocked = true;
                    return;
                }
                if (!k->tls_alert && (err == SSL_ERROR_ZERO_RETURN ||
                                      (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))) {
                    conn_set_reason(k, "backend closed the connection");
                } else {
                    char msg[200];
                    tls_failure_text(k, err, sys_errno, msg, sizeof msg);
                    conn_set_reason(k, "TLS read failed: %s", msg);
                }
                conn_close(k, k->reason);
                return;
            }
            n = r;
        } else {
            n = recv(k->fd, buf, sizeof buf, 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return;
                if (errno == EINTR)
                    continue;
                conn_set_reason(k, "read: %s", strerror(errno));
                conn_close(k, k->reason);
                return;
            }
            if (n == 0) {
                conn_set_reason(k, "backend closed the connection");
                conn_close(k, k->reason);
                return;
            }
        }
        silence_on_read(k);
        ssize_t rv = nghttp2_session_mem_recv(k->h2, buf, (size_t)n);
        if (rv < 0) {
            conn_set_reason(k, "HTTP/2 protocol error: %s", nghttp2_strerror((int)rv));
            conn_close(k, k->reason);
            return;
        }
        if (k->state != CONN_READY)
            return;
    }
}

/* ---- nghttp2 callbacks -------------------------------------------------------- */

static gw_ucall *stream_call(nghttp2_session *s, int32_t sid)
{
    return nghttp2_session_get_stream_user_data(s, sid);
}

static bool header_is(const uint8_t *name, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(name, lit, n) == 0;
}

static int md_append(gw_ucall *c, gw_header **arr, size_t *n, size_t *cap,
                     const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        gw_header *na = gw_arena_alloc(&c->arena, ncap * sizeof *na);
        if (!na)
            return GW_ENOMEM;
        if (*n)
            memcpy(na, *arr, *n * sizeof *na);
        *arr = na;
        *cap = ncap;
    }
    char *nm = gw_arena_strndup(&c->arena, (const char *)name, nlen);
    char *vl = gw_arena_strndup(&c->arena, (const char *)value, vlen);
    if (!nm || !vl)
        return GW_ENOMEM;
    (*arr)[(*n)++] = (gw_header){nm, nlen, vl, vlen};
    return 0;
}

static void call_fail_local(gw_ucall *c, int code, const char *msg)
{
    call_finish(c, code, "%s", msg);
    if (c->conn && !c->remote_ended)
        conn_reset_stream(c->conn, c->stream_id, NGHTTP2_CANCEL);
}

static int h2_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                        size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags,
                        void *ud)
{
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    gw_ucall *c = stream_call(s, f->hd.stream_id);
    if (!c || c->finished)
        return 0;
    c->header_bytes += nlen + vlen + 32;
    if (c->header_bytes > c->b->opt.max_header_list) {
        char msg[128];
        snprintf(msg, sizeof msg, "response header list larger than %zu bytes",
                 c->b->opt.max_header_list);
        call_fail_local(c, GW_CODE_RESOURCE_EXHAUSTED, msg);
        return 0;
    }
    bool trailers = f->headers.cat != NGHTTP2_HCAT_RESPONSE;
    if (nlen && name[0] == ':') {
        if (!trailers && header_is(name, nlen, ":status")) {
            int st = 0;
            for (size_t i = 0; i < vlen && i < 3; i++)
                st = st * 10 + (value[i] - '0');
            c->http_status = st;
        }
        return 0;
    }
    if (header_is(name, nlen, "content-type")) {
        snprintf(c->content_type, sizeof c->content_type, "%.*s", (int)GW_MIN(vlen, (size_t)60), value);
        c->grpc_content_type = vlen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
                               (vlen == 16 || value[16] == '+' || value[16] == ';');
        return 0;
    }
    if (header_is(name, nlen, "grpc-status")) {
        int st = 0;
        bool ok = vlen > 0 && vlen <= 3;
        for (size_t i = 0; ok && i < vlen; i++) {
            if (value[i] < '0' || value[i] > '9')
                ok = false;
            else
                st = st * 10 + (value[i] - '0');
        }
        c->have_status = true;
        c->grpc_status = ok ? st : GW_CODE_UNKNOWN;
        return 0;
    }
    if (header_is(name, nlen, "grpc-message")) {
        gw_buf m;
        gw_buf_init(&m, 0);
        if (gw_grpc_message_decode(&m, (const char *)value, vlen) == 0)
            c->grpc_message = gw_arena_strndup(&c->arena, m.data ? (char *)m.data : "", m.len);
        gw_buf_free(&m);
        return 0;
    }
    if (header_is(name, nlen, "grpc-status-details-bin")) {
        uint8_t *out = gw_arena_alloc(&c->arena, vlen / 4 * 3 + 3);
        size_t err_at;
        long n = out ? gw_base64_decode((const char *)value, vlen, out, &err_at) : -1;
        if (n >= 0) {
            c->details = out;
            c->details_len = (size_t)n;
        }
        return 0;
    }
    if (header_is(name, nlen, "grpc-encoding")) {
        gw_error e;
        if (gw_deframer_set_encoding(&c->df, (const char *)value, vlen, &e) != 0)
            call_fail_local(c, GW_CODE_INTERNAL, e.msg);
        return 0;
    }
    if (nlen >= 5 && memcmp(name, "grpc-", 5) == 0)
        return 0;
    int rc = trailers ? md_append(c, &c->trl, &c->trl_n, &c->trl_cap, name, nlen, value, vlen)
                      : md_append(c, &c->resp_md, &c->resp_md_n, &c->resp_md_cap, name, nlen,
                                  value, vlen);
    if (rc)
        call_fail_local(c, GW_CODE_RESOURCE_EXHAUSTED, "out of memory for response metadata");
    return 0;
}

static void body_snippet(gw_ucall *c, char *out, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < c->http_body.len && j + 1 < n; i++) {
        uint8_t ch = c->http_body.data[i];
        out[j++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
    }
    out[j] = 0;
}

/* The stream ended from the backend's side: decide the status. */
static void call_finish_from_response(gw_ucall *c)
{
    if (c->finished)
        return;
    if (c->http_status != 200 || !c->grpc_content_type) {
        char body[HTTP_BODY_KEEP + 1];
        body_snippet(c, body, sizeof body);
        int code = c->http_status == 200 ? GW_CODE_UNKNOWN : gw_code_from_http(c->http_status);
        /* The body may be an internal proxy's error page: with
         * hide_details only the status reaches the client. */
        char what[64];
        snprintf(what, sizeof what, "answered HTTP %d instead of gRPC", c->http_status);
        call_fail(c, code, what, "backend answered HTTP %d (%s) instead of gRPC%s%s",
                  c->http_status,
                  c->content_type[0] ? c->content_type : "no content-type",
                  body[0] ? ": " : "", body);
        return;
    }
    if (!gw_deframer_idle(&c->df)) {
        call_finish(c, GW_CODE_INTERNAL, "response ended inside a message");
        return;
    }
    if (!c->have_status) {
        call_finish(c, GW_CODE_INTERNAL, "backend response has no grpc-status");
        return;
    }
    int code = c->grpc_status <= GW_CODE_MAX ? c->grpc_status : GW_CODE_UNKNOWN;
    call_finish(c, code, "%s", c->grpc_message ? c->grpc_message : "");
}

static int h2_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    conn *k = ud;
    silence_on_frame(k, f->hd.type);
    switch (f->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK) && !k->peer_settings) {
            /* Only now do we know the backend's stream limit: streams sent
             * earlier could be refused. This ends the connect attempt. */
            k->peer_settings = true;
            gw_loop_timer_stop(k->b->loop, &k->connect_timer);
            k->b->down = false;
            gw_backoff_reset(&k->b->backoff);
            k->b->stats.connects_ok++;
        }
        dispatch_later(k->b);
        return 0;
    case NGHTTP2_GOAWAY:
        k->draining = true;
        k->b->stats.goaways_received++;
        dispatch_later(k->b);
        return 0;
    case NGHTTP2_PING:
        if (f->hd.flags & NGHTTP2_FLAG_ACK)
            gw_loop_timer_stop(k->b->loop, &k->ping_ack_timer);
        return 0;
    case NGHTTP2_HEADERS:
        break;
    case NGHTTP2_DATA:
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            gw_ucall *c = stream_call(s, f->hd.stream_id);
            if (c) {
                c->remote_ended = true;
                call_finish_from_response(c);
            }
        }
        return 0;
    default:
        return 0;
    }
    gw_ucall *c = stream_call(s, f->hd.stream_id);
    if (!c)
        return 0;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
        if (c->http_status >= 100 && c->http_status < 200 && !end) {
            /* Informational: the real response headers follow. */
            c->http_status = 0;
            c->resp_md_n = 0;
            return 0;
        }
        if (end) {
            /* Trailers-Only: the one block carries status and metadata. */
            c->trl = c->resp_md;
            c->trl_n = c->resp_md_n;
            c->trl_cap = c->resp_md_cap;
            c->resp_md = NULL;
            c->resp_md_n = c->resp_md_cap = 0;
        } else {
            c->got_headers = true;
            /* The backend has the request: a retry is no longer possible. */
            gw_buf_free(&c->replay);
            c->replay_lost = true;
            if (c->http_status != 200 || !c->grpc_content_type) {
                c->non_grpc = true;
            } else if (!c->finished && !c->owner_gone) {
                c->headers_delivered = true;
                if (c->h->on_headers)
                    c->h->on_headers(c->owner, c->resp_md, c->resp_md_n);
            }
        }
    }
    if (end) {
        c->remote_ended = true;
        call_finish_from_response(c);
    }
    return 0;
}

static int on_deframed(void *ctx, const uint8_t *msg, size_t len, size_t wire_len)
{
    gw_ucall *c = ctx;
    gw_flow_delivered(&c->flow, wire_len);
    if (c->finished || c->owner_gone)
        return 1;
    if (c->h->on_message)
        c->h->on_message(c->owner, msg, len, wire_len);
    return (c->finished || c->owner_gone) ? 1 : 0;
}

static int h2_on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
                            size_t len, void *ud)
{
    /* The connection window is reopened as bytes arrive: memory is bounded
     * per stream (stream_window each), and holding connection credit for a
     * slow reader would stall every other call on the connection. */
    nghttp2_session_consume_connection(s, len);
    gw_ucall *c = stream_call(s, sid);
    if (!c)
        return 0; /* a stream we reset: its window no longer matters */
    gw_flow_received(&c->flow, len);
    if (c->finished || c->owner_gone) {
        call_flow_discard(c);
        return 0;
    }
    if (c->non_grpc || !c->got_headers) {
        size_t keep = GW_MIN(len, HTTP_BODY_KEEP - GW_MIN(c->http_body.len, (size_t)HTTP_BODY_KEEP));
        if (keep)
            gw_buf_append(&c->http_body, data, keep);
        call_flow_discard(c);
        return 0;
    }
    int rc = gw_deframer_push(&c->df, data, len, on_deframed, c, &c->df_err);
    if (rc < 0) {
        call_fail_local(c, rc == GW_ELIMIT ? GW_CODE_RESOURCE_EXHAUSTED : GW_CODE_INTERNAL,
                        c->df_err.msg);
    }
    if (c->finished || c->owner_gone) {
        call_flow_discard(c);
        return 0;
    }
    /* Releases what reached half a window, and makes sure the message
     * being assembled can arrive whole once the owner waits for it (a
     * message longer than the window gets credit ahead of its consume). */
    call_flow_update(c);
    return 0;
}

static bool call_can_retry(const gw_ucall *c)
{
    return !c->retried && !c->got_headers && !c->replay_lost && !c->finished && !c->owner_gone;
}

static void call_requeue(gw_ucall *c)
{
    gw_backend *b = c->b;
    /* Put the bytes already handed to nghttp2 back in front of the rest. */
    if (c->replay.len) {
        gw_buf joined;
        gw_buf_init(&joined, 0);
        if (gw_buf_append(&joined, c->replay.data, c->replay.len) != 0 ||
            gw_buf_append(&joined, c->req.data ? c->req.data : (const uint8_t *)"", c->req.len) != 0) {
            gw_buf_free(&joined);
            call_fail(c, GW_CODE_UNAVAILABLE, "unavailable",
                      "backend %s refused the stream (retry: out of memory)", b->url);
            return;
        }
        size_t max = c->req.max;
        gw_buf_free(&c->req);
        c->req = joined;
        c->req.max = GW_MAX(max, joined.len);
        gw_buf_reset(&c->replay);
    }
    c->retried = true;
    c->not_sent = false;
    c->data_deferred = false;
    c->http_status = 0;
    c->header_bytes = 0;
    c->resp_md_n = 0;
    gw_flow_init(&c->flow, b->opt.stream_window);
    b->stats.calls_retried++;
    queue_push(b, c, true);
    dispatch_later(b);
}

static int h2_on_stream_close(nghttp2_session *s, int32_t sid, uint32_t error_code, void *ud)
{
    gw_ucall *c = stream_call(s, sid);
    if (!c)
        return 0;
    bool refused = error_code == NGHTTP2_REFUSED_STREAM || c->not_sent;
    if (!c->finished && !c->remote_ended && refused && call_can_retry(c)) {
        call_detach(c);
        call_requeue(c);
        return 0;
    }
    if (!c->finished) {
        if (c->remote_ended) {
            call_finish_from_response(c);
        } else if (error_code == NGHTTP2_NO_ERROR) {
            call_fail(c, GW_CODE_INTERNAL, "closed the stream without a status",
                      "stream closed by backend %s without grpc-status", c->b->url);
        } else {
            const char *name = nghttp2_http2_strerror(error_code);
            call_fail(c, gw_upstream_code_from_h2(error_code), "reset the stream",
                      "stream reset by backend %s (HTTP/2 %s)", c->b->url, name);
        }
    }
    call_detach(c);
    call_maybe_free(c);
    return 0;
}

static int h2_on_frame_not_send(nghttp2_session *s, const nghttp2_frame *f, int lib_error,
                                void *ud)
{
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    gw_ucall *c = stream_call(s, f->hd.stream_id);
    if (c)
        c->not_sent = true;
    return 0;
}

/* ---- streams and resets ----------------------------------------------------------- */

static void call_detach(gw_ucall *c)
{
    conn *k = c->conn;
    if (!k)
        return;
    if (k->h2)
        nghttp2_session_set_stream_user_data(k->h2, c->stream_id, NULL);
    if (c->s_prev)
        c->s_prev->s_next = c->s_next;
    else
        k->calls = c->s_next;
    if (c->s_next)
        c->s_next->s_prev = c->s_prev;
    c->s_next = c->s_prev = NULL;
    k->streams--;
    c->conn = NULL;
    c->stream_id = 0;
    conn_flush_later(k);
    dispatch_later(c->b);
}

static void send_reset(conn *k, int32_t sid, uint32_t code)
{
    if (nghttp2_submit_rst_stream(k->h2, NGHTTP2_FLAG_NONE, sid, code) == 0)
        k->b->stats.resets_sent++;
    k->resets_in_window++;
    conn_flush_later(k);
}

static void on_reset_timer(void *arg)
{
    conn *k = arg;
    if (k->state != CONN_READY)
        return;
    k->reset_window_start = gw_loop_now(k->b->loop);
    k->resets_in_window = 0;
    size_t i = 0;
    while (i < k->n_pending_resets && k->resets_in_window < k->b->opt.max_resets_per_sec) {
        send_reset(k, k->pending_resets[i], k->pending_reset_codes[i]);
        i++;
    }
    memmove(k->pending_resets, k->pending_resets + i, (k->n_pending_resets - i) * sizeof(int32_t));
    memmove(k->pending_reset_codes, k->pending_reset_codes + i,
            (k->n_pending_resets - i) * sizeof(uint32_t));
    k->n_pending_resets -= i;
    if (k->n_pending_resets)
        gw_loop_timer_start(k->b->loop, &k->reset_timer, k->reset_window_start + GW_SEC);
}

/*
 * Resets a stream, at most max_resets_per_sec per connection and second.
 * Above that the reset waits for the next second (the stream's data keeps
 * being acknowledged and dropped meanwhile): backends count client resets
 * as an attack (CVE-2023-44487) and would close the whole connection.
 */
static void conn_reset_stream(conn *k, int32_t sid, uint32_t code)
{
    if (k->state != CONN_READY || sid <= 0)
        return;
    uint64_t now = gw_loop_now(k->b->loop);
    if (now - k->reset_window_start >= GW_SEC) {
        k->reset_window_start = now;
        k->resets_in_window = 0;
    }
    if (k->resets_in_window < k->b->opt.max_resets_per_sec && k->n_pending_resets == 0) {
        send_reset(k, sid, code);
        return;
    }
    if (k->n_pending_resets == k->cap_pending_resets) {
        size_t cap = k->cap_pending_resets ? k->cap_pending_resets * 2 : 16;
        int32_t *ids = realloc(k->pending_resets, cap * sizeof *ids);
        if (ids)
            k->pending_resets = ids;
        uint32_t *codes = ids ? realloc(k->pending_reset_codes, cap * sizeof *codes) : NULL;
        if (codes)
            k->pending_reset_codes = codes;
        if (!ids || !codes) {
            send_reset(k, sid, code); /* no memory to wait: reset now */
            return;
        }
        k->cap_pending_resets = cap;
    }
    k->pending_resets[k->n_pending_resets] = sid;
    k->pending_reset_codes[k->n_pending_resets] = code;
    k->n_pending_resets++;
    k->b->stats.resets_delayed++;
    if (!gw_timer_armed(&k->reset_timer))
        gw_loop_timer_start(k->b->loop, &k->reset_timer, k->reset_window_start + GW_SEC);
}

static ssize_t req_read_cb(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t length,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    gw_ucall *c = src->ptr;
    size_t n = GW_MIN(length, c->req.len);
    if (n) {
        memcpy(buf, c->req.data, n);
        if (!c->replay_lost) {
            if (c->replay.len + n > c->b->opt.max_request_buffer ||
                gw_buf_append(&c->replay, c->req.data, n) != 0) {
                gw_buf_free(&c->replay);
                c->replay_lost = true;
            }
        }
        gw_buf_consume(&c->req, n);
        if (c->want_writable)
            gw_loop_defer(c->b->loop, &c->writable_defer);
    }
    if (c->req.len == 0) {
        if (c->send_closed) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        } else if (n == 0) {
            c->data_deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

static int call_open_stream(gw_ucall *c, conn *k)
{
    gw_backend *b = c->b;
    nghttp2_nv nva[16 + 64];
    size_t n = 0;
    char *timeout = gw_arena_alloc(&c->arena, 10);
    if (!timeout)
        return GW_ENOMEM;
#define NV(nm, vl, vlen)                                                                  \
    nva[n++] = (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(vl), strlen(nm), (vlen),        \
                            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE}
    NV(":method", "POST", 4);
    NV(":scheme", b->scheme == SCHEME_HTTPS ? "https" : "http", b->scheme == SCHEME_HTTPS ? 5u : 4u);
    NV(":path", c->path, strlen(c->path));
    NV(":authority", b->authority, strlen(b->authority));
    NV("te", "trailers", 8);
    NV("content-type", "application/grpc", 16);
    NV("user-agent", USER_AGENT, strlen(USER_AGENT));
    if (c->deadline_ns) {
        uint64_t now = gw_now_ns();
        gw_grpc_timeout_format(c->deadline_ns > now ? c->deadline_ns - now : 0, timeout);
        NV("grpc-timeout", timeout, strlen(timeout));
    }
    if (b->opt.accept_gzip)
        NV("grpc-accept-encoding", "gzip", 4);
#undef NV
    nghttp2_nv *all = nva;
    size_t total = n + c->md_count;
    if (total > GW_ARRAY_LEN(nva)) {
        all = gw_arena_alloc(&c->arena, total * sizeof *all);
        if (!all)
            return GW_ENOMEM;
        memcpy(all, nva, n * sizeof *all);
    }
    for (size_t i = 0; i < c->md_count; i++) {
        all[n++] = (nghttp2_nv){(uint8_t *)c->md[i].name, (uint8_t *)c->md[i].value,
                                c->md[i].name_len, c->md[i].value_len,
                                NGHTTP2_NV_FLAG_NONE};
    }
    nghttp2_data_provider prd = {.source.ptr = c, .read_callback = req_read_cb};
    int32_t sid = nghttp2_submit_request(k->h2, NULL, all, n, &prd, c);
    if (sid < 0)
        return sid == NGHTTP2_ERR_NOMEM ? GW_ENOMEM : GW_ESTATE;
    c->stream_id = sid;
    c->conn = k;
    c->s_prev = NULL;
    c->s_next = k->calls;
    if (k->calls)
        k->calls->s_prev = c;
    k->calls = c;
    k->streams++;
    if (k->streams > b->stats.peak_streams)
        b->stats.peak_streams = k->streams;
    silence_watch(k);
    conn_flush_later(k);
    return 0;
}

/* ---- connections: lifecycle ------------------------------------------------------ */

/* Frees a closed connection. Its struct holds the gw_io of its socket and
 * the one of its resolver's eventfd (k->dns): the loop's current batch may
 * still name either, so inside a loop turn this runs deferred (loop.h);
 * only gw_backend_del between turns calls it directly. A connection whose
 * backend was deleted first has b == NULL and is on no list. */
static void on_conn_free_deferred(void *arg)
{
    conn *k = arg;
    for (conn **pp = k->b ? &k->b->dead : NULL; pp && *pp; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    }
    free(k->pending_resets);
    gw_buf_free(&k->out);
    free(k->pending_reset_codes);
    free(k->attempts);
    free(k);
}

static void backend_mark_down(gw_backend *b, const char *why)
{
    uint64_t delay_ms = gw_backoff_next(&b->backoff);
    b->down = true;
    b->retry_at_ns = gw_loop_now(b->loop) + delay_ms * GW_MS;
    snprintf(b->down_reason, sizeof b->down_reason, "%s", why);
    GW_WARN("upstream: backend %s unreachable: %s (next attempt in %llu ms)", b->url, why,
            (unsigned long long)delay_ms);
}

static bool backend_has_live_conn(gw_backend *b)
{
    for (conn *k = b->conns; k; k = k->next)
        if (k->state != CONN_DEAD && !k->draining)
            return true;
    return false;
}

/* A call that never left: hand it to another backend when its observer
 * has one (at most 8 times, so a cluster of dead endpoints cannot bounce it
 * for ever), else fail it. Returns true when it moved. */
static bool call_redirect(gw_ucall *c)
{
    if (!c->obs || !c->obs->redirect || c->redirects >= 8 || c->owner_gone || c->finished)
        return false;
    gw_backend *from = c->b;
    gw_backend *to = c->obs->redirect(c->obs_ctx, from);
    if (!to || to == from || to->loop != from->loop)
        return false;
    c->redirects++;
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        from->all_calls = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    from->active_calls--;
    c->b = to;
    c->all_prev = NULL;
    c->all_next = to->all_calls;
    if (to->all_calls)
        to->all_calls->all_prev = c;
    to->all_calls = c;
    to->active_calls++;
    to->stats.calls_started++;
    queue_push(to, c, false);
    gw_loop_defer(to->loop, &to->dispatch_defer);
    return true;
}

static void fail_queue(gw_backend *b)
{
    while (b->q_head) {
        gw_ucall *c = b->q_head;
        queue_remove(b, c);
        if (call_redirect(c))
            continue;
        c->unreachable = true;
        call_fail(c, GW_CODE_UNAVAILABLE, "unavailable", "backend %s unreachable: %s", b->url,
                  b->down_reason);
        call_maybe_free(c);
    }
}

/* Stops and closes every socket of the connection's address race except
 * keep (may be NULL). */
static void attempts_close(conn *k, const attempt *keep)
{
    for (size_t i = 0; k->attempts && i < k->n_addrs; i++) {
        attempt *a = &k->attempts[i];
        if (a == keep || a->fd < 0)
            continue;
        gw_loop_io_remove(k->b->loop, &a->io);
        close(a->fd);
        a->fd = -1;
    }
    k->attempts_live = keep ? 1 : 0;
}

/* conn_close's reason when the owner deletes the backend (a normal stop,
 * a reload that retires it, the end of a reflection run): routine, so it is
 * logged at debug level and does not mark the backend unreachable. */
static const char CONN_RETIRED[] = "the gateway no longer uses this backend "
                                   "(stop, reload or reflection done)";

static void conn_close(conn *k, const char *why)
{
    gw_backend *b = k->b;
    if (k->state == CONN_DEAD)
        return;
    bool was_ready = k->state == CONN_READY && k->peer_settings;
    k->state = CONN_DEAD;
    char reason[256];
    snprintf(reason, sizeof reason, "%s", why);
    while (k->calls) {
        gw_ucall *c = k->calls;
        c->conn_lost = true;
        call_fail(c, GW_CODE_UNAVAILABLE, "unavailable (connection lost)",
                  "connection to backend %s lost: %s", b->url, reason);
        call_detach(c);
        call_maybe_free(c);
    }
    gw_loop_timer_stop(b->loop, &k->connect_timer);
    gw_loop_timer_stop(b->loop, &k->attempt_timer);
    attempts_close(k, NULL);
    gw_loop_timer_stop(b->loop, &k->reset_timer);
    gw_loop_timer_stop(b->loop, &k->keepalive_timer);
    gw_loop_timer_stop(b->loop, &k->ping_ack_timer);
    silence_stop(k);
    gw_loop_defer_cancel(b->loop, &k->flush_defer);
    gw_loop_io_remove(b->loop, &k->io);
    gw_dns_watch_stop(&k->dns);
    if (b->host_is_name)
        b->addrs_fresh = false; /* the next attempt asks the resolver again */
    if (k->h2)
        nghttp2_session_del(k->h2);
    k->h2 = NULL;
    if (k->ssl)
        SSL_free(k->ssl);
    k->ssl = NULL;
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    free(k->addrs);
    k->addrs = NULL;
    k->n_addrs = 0;
    for (conn **pp = &b->conns; *pp; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    }
    k->next = b->dead;
    b->dead = k;
    if (k->counted_open)
        b->stats.connections_open--;
    if (why == CONN_RETIRED) {
        GW_DEBUG("upstream: connection to %s closed: %s", b->url, reason);
    } else if (!was_ready) {
        backend_mark_down(b, reason);
        if (!backend_has_live_conn(b))
            fail_queue(b);
    } else {
        GW_INFO("upstream: connection to %s closed: %s", b->url, reason);
    }
    gw_loop_defer(b->loop, &k->free_defer);
    dispatch_later(b);
}

static void on_ping_ack_timeout(void *arg)
{
    conn *k = arg;
    char why[96];
    snprintf(why, sizeof why, "keepalive PING not answered within %u ms", PING_ACK_TIMEOUT_MS);
    conn_close(k, why);
}

static void on_keepalive(void *arg)
{
    conn *k = arg;
    if (k->state != CONN_READY)
        return;
    if (k->streams && nghttp2_submit_ping(k->h2, NGHTTP2_FLAG_NONE, NULL) == 0 &&
        !gw_timer_armed(&k->ping_ack_timer))
        gw_loop_timer_start(k->b->loop, &k->ping_ack_timer,
                            gw_loop_now(k->b->loop) + PING_ACK_TIMEOUT_MS * GW_MS);
    conn_flush_later(k);
    gw_loop_timer_start(k->b->loop, &k->keepalive_timer,
                        gw_loop_now(k->b->loop) + k->b->opt.keepalive_ms * GW_MS);
}

static int conn_start_h2(conn *k)
{
    gw_backend *b = k->b;
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return GW_ENOMEM;
    /* No send callback: frames are only taken with nghttp2_session_mem_send
     * (conn_flush), which nghttp2 documents as not needing one. */
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_on_stream_close);
    nghttp2_session_callbacks_set_on_header_callback(cbs, h2_on_header);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, h2_on_frame_not_send);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return GW_ENOMEM;
    }
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_reserved_remote_streams(opt, 0);
    int rv = nghttp2_session_client_new2(&k->h2, cbs, k, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rv != 0)
        return GW_ENOMEM;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, b->opt.stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)GW_MIN(b->opt.max_header_list, (size_t)UINT32_MAX)},
    };
    if (nghttp2_submit_settings(k->h2, NGHTTP2_FLAG_NONE, iv, GW_ARRAY_LEN(iv)) != 0)
        return GW_ENOMEM;
    if (nghttp2_session_set_local_window_size(k->h2, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)b->opt.connection_window) != 0)
        return GW_ENOMEM;
    return 0;
}

static void conn_ready(conn *k)
{
    gw_backend *b = k->b;
    if (conn_start_h2(k) != 0) {
        conn_close(k, "out of memory starting HTTP/2");
        return;
    }
    /* The connect timer keeps running until the backend's SETTINGS. */
    k->state = CONN_READY;
    if (b->opt.keepalive_ms)
        gw_loop_timer_start(b->loop, &k->keepalive_timer,
                            gw_loop_now(b->loop) + b->opt.keepalive_ms * GW_MS);
    gw_loop_io_modify(b->loop, &k->io, GW_IO_READ);
    dispatch_later(b);
    conn_flush_later(k);
}

static void conn_tls_step(conn *k)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(k->ssl);
    if (r == 1) {
        const unsigned char *proto = NULL;
        unsigned int plen = 0;
        SSL_get0_alpn_selected(k->ssl, &proto, &plen);
        if (plen != 2 || memcmp(proto, "h2", 2) != 0) {
            conn_close(k, "TLS: the backend did not select HTTP/2 (ALPN h2)");
            return;
        }
        conn_ready(k);
        return;
    }
    int sys_errno = errno;
    int err = SSL_get_error(k->ssl, r);
    if (err == SSL_ERROR_WANT_READ) {
        gw_loop_io_modify(k->b->loop, &k->io, GW_IO_READ);
        return;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
        gw_loop_io_modify(k->b->loop, &k->io, GW_IO_READ | GW_IO_WRITE);
        return;
    }
    char msg[256];
    long vr = SSL_get_verify_result(k->ssl);
    if (vr != X509_V_OK)
        snprintf(msg, sizeof msg, "TLS handshake failed: certificate verify failed: %s%s",
                 X509_verify_cert_error_string(vr),
                 k->b->opt.ca_file ? "" : " (checked against the system CAs; name the "
                                          "backend's CA with --backend-ca FILE, or ca_file "
                                          "in backend_tls or backends.NAME.tls)");
    else {
        char detail[200];
        tls_failure_text(k, err, sys_errno, detail, sizeof detail);
        snprintf(msg, sizeof msg, "TLS handshake failed: %s", detail);
    }
    conn_close(k, msg);
}

static int conn_start_tls(conn *k)
{
    gw_backend *b = k->b;
    k->ssl = SSL_new(b->ssl_ctx);
    if (!k->ssl)
        return GW_ENOMEM;
    BIO *bio = BIO_new(b->bio_method);
    if (!bio)
        return GW_ENOMEM;
    BIO_set_data(bio, (void *)(intptr_t)k->fd);
    SSL_set_bio(k->ssl, bio, bio);
    SSL_set_app_data(k->ssl, k);
    SSL_set_connect_state(k->ssl);
    const char *name = b->opt.server_name ? b->opt.server_name : b->host;
    size_t ip_len;
    X509_VERIFY_PARAM *vp = SSL_get0_param(k->ssl);
    if (gw_dns_is_ip_literal(name, &ip_len)) {
        /* No SNI for an address (RFC 6066); a certificate names it without
         * the zone. */
        char ip[INET6_ADDRSTRLEN];
        snprintf(ip, sizeof ip, "%.*s", (int)ip_len, name);
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, ip) != 1)
            return GW_EINVAL;
    } else {
        SSL_set_tlsext_host_name(k->ssl, name);
        if (X509_VERIFY_PARAM_set1_host(vp, name, 0) != 1)
            return GW_EINVAL;
    }
    k->state = CONN_TLS;
    conn_tls_step(k);
    return 0;
}

static void conn_try_next(conn *k);

static void conn_connected(conn *k)
{
    if (k->fd >= 0 && k->b->scheme != SCHEME_UNIX) {
        int one = 1;
        setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int lowat = k->b->opt.send_lowat > INT_MAX ? INT_MAX : (int)k->b->opt.send_lowat;
        if (lowat)
            setsockopt(k->fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
    }
    if (k->b->scheme == SCHEME_HTTPS) {
        if (conn_start_tls(k) != 0)
            conn_close(k, "TLS setup failed");
        return;
    }
    conn_ready(k);
}

static void conn_on_io(void *arg, uint32_t events)
{
    conn *k = arg;
    switch (k->state) {
    case CONN_TLS:
        conn_tls_step(k);
        return;
    case CONN_READY:
        if (events & GW_IO_WRITE)
            k->write_blocked = false;
        /* A TLS read may have been waiting for the socket to take a write
         * (SSL_ERROR_WANT_WRITE), so with TLS a writable socket reads too. */
        if (events & (GW_IO_READ | GW_IO_ERROR | GW_IO_RDHUP) || (k->ssl && (events & GW_IO_WRITE)))
            conn_read(k);
        if (k->state == CONN_READY)
            conn_flush(k);
        return;
    case CONN_RESOLVING: /* k->io watches the socket from conn_win ... */
    case CONN_CONNECTING:
    case CONN_DEAD:      /* ... to conn_close: never called in these */
        return;
    }
}

/* The first socket of the race that connected becomes the connection's:
 * the others are closed at once (their gw_io slots stay until the struct
 * is freed, so an event still in this batch finds them inactive). */
static void conn_win(conn *k, attempt *a)
{
    gw_backend *b = k->b;
    gw_loop_timer_stop(b->loop, &k->attempt_timer);
    attempts_close(k, a);
    gw_loop_io_remove(b->loop, &a->io);
    k->fd = a->fd;
    a->fd = -1;
    k->attempts_live = 0;
    k->reason[0] = 0; /* a loser's refusal is not this connection's story */
    if (gw_loop_io_add(b->loop, &k->io, k->fd, GW_IO_WRITE, conn_on_io, k) != 0) {
        char why[160];
        snprintf(why, sizeof why, "epoll: %s", strerror(errno));
        conn_close(k, why);
        return;
    }
    conn_connected(k);
}

static void attempt_on_io(void *arg, uint32_t events)
{
    (void)events;
    attempt *a = arg;
    conn *k = a->k;
    if (k->state != CONN_CONNECTING || a->fd < 0)
        return;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (!err) {
        conn_win(k, a);
        return;
    }
    snprintf(k->reason, sizeof k->reason, "connect: %s", strerror(err));
    gw_loop_io_remove(k->b->loop, &a->io);
    close(a->fd);
    a->fd = -1;
    k->attempts_live--;
    /* A refusal is an answer: the next address need not wait its turn. */
    gw_loop_timer_stop(k->b->loop, &k->attempt_timer);
    conn_try_next(k);
}

/* Starts the next address that gets as far as a pending connect (skipping
 * those that fail at once), then arms the timer that starts the one after
 * it. With nothing left to start and nothing still connecting, the attempt
 * has failed with the last reason seen. */
static void conn_try_next(conn *k)
{
    gw_backend *b = k->b;
    while (k->next_addr < k->n_addrs) {
        size_t i = k->next_addr++;
        const peer_addr *pa = &k->addrs[i];
        attempt *a = &k->attempts[i];
        int fd = socket(pa->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(k->reason, sizeof k->reason, "socket: %s", strerror(errno));
            continue;
        }
        b->stats.addresses_tried++;
        int rc = connect(fd, (const struct sockaddr *)&pa->sa, pa->len);
        if (rc < 0 && errno != EINPROGRESS) {
            snprintf(k->reason, sizeof k->reason, "connect: %s", strerror(errno));
            close(fd);
            continue;
        }
        a->fd = fd;
        k->attempts_live++;
        if (rc == 0) {
            conn_win(k, a);
            return;
        }
        if (gw_loop_io_add(b->loop, &a->io, fd, GW_IO_WRITE, attempt_on_io, a) != 0) {
            snprintf(k->reason, sizeof k->reason, "epoll: %s", strerror(errno));
            close(fd);
            a->fd = -1;
            k->attempts_live--;
            continue;
        }
        if (k->next_addr < k->n_addrs)
            gw_loop_timer_start(b->loop, &k->attempt_timer,
                                gw_loop_now(b->loop) + (uint64_t)b->opt.attempt_delay_ms * GW_MS);
        return;
    }
    if (k->attempts_live > 0)
        return;
    char why[256];
    snprintf(why, sizeof why, "%s", k->reason[0] ? k->reason : "no address to connect to");
    k->reason[0] = 0;
    conn_close(k, why);
}

static void on_attempt_timer(void *arg)
{
    conn *k = arg;
    if (k->state == CONN_CONNECTING)
        conn_try_next(k);
}

static void conn_fail_resolution(conn *k, const char *why);

static void on_connect_timeout(void *arg)
{
    conn *k = arg;
    char why[96];
    if (k->state == CONN_RESOLVING && k->b->n_addrs > 0) {
        snprintf(why, sizeof why, "cannot resolve %.64s: no answer within %u ms", k->b->host,
                 k->b->opt.connect_timeout_ms);
        gw_dns_watch_stop(&k->dns);
        k->b->stats.dns_failures++;
        gw_loop_timer_start(k->b->loop, &k->connect_timer,
                            gw_loop_now(k->b->loop) + (uint64_t)k->b->opt.connect_timeout_ms * GW_MS);
        conn_fail_resolution(k, why);
        return;
    }
    if (k->state == CONN_READY)
        snprintf(why, sizeof why, "no HTTP/2 SETTINGS from the backend within %u ms",
                 k->b->opt.connect_timeout_ms);
    else if (k->state == CONN_RESOLVING)
        snprintf(why, sizeof why, "cannot resolve %.64s: no answer within %u ms", k->b->host,
                 k->b->opt.connect_timeout_ms);
    else
        snprintf(why, sizeof why, "connect timed out after %u ms", k->b->opt.connect_timeout_ms);
    conn_close(k, why);
}

/* Tries the backend's addresses in order, from a copy: a later
 * resolution may replace the backend's list while this attempt runs. */
static void conn_connect(conn *k)
{
    gw_backend *b = k->b;
    k->state = CONN_CONNECTING;
    k->addrs = malloc(b->n_addrs * sizeof *k->addrs);
    k->attempts = calloc(b->n_addrs, sizeof *k->attempts);
    if (!k->addrs || !k->attempts) {
        conn_close(k, "out of memory");
        return;
    }
    memcpy(k->addrs, b->addrs, b->n_addrs * sizeof *k->addrs);
    k->n_addrs = b->n_addrs;
    k->next_addr = 0;
    for (size_t i = 0; i < k->n_addrs; i++) {
        k->attempts[i].k = k;
        k->attempts[i].fd = -1;
    }
    conn_try_next(k);
}

/* A lookup failed (why names the host and the resolver's words). When an
 * earlier lookup gave addresses, a DNS hiccup must not take the backend
 * away: connect to those, still marked stale so the next attempt asks
 * again. Only a name that never resolved fails the attempt. */
static void conn_fail_resolution(conn *k, const char *why)
{
    gw_backend *b = k->b;
    if (b->n_addrs == 0) {
        conn_close(k, why);
        return;
    }
    b->stats.dns_fallbacks++;
    GW_WARN("upstream: backend %s: %s; connecting to the %zu address%s it had before", b->url,
            why, b->n_addrs, b->n_addrs == 1 ? "" : "es");
    conn_connect(k);
}

static void conn_on_resolved(void *arg, const gw_dns_answer *ans, size_t n)
{
    conn *k = arg;
    gw_backend *b = k->b;
    char why[256];
    b->stats.dns_resolutions++;
    if (n != 1 || ans[0].rc != 0 || ans[0].count == 0) {
        b->stats.dns_failures++;
        snprintf(why, sizeof why, "cannot resolve %.64s: %s", b->host,
                 n == 1 ? ans[0].why : "no answer");
        conn_fail_resolution(k, why);
        return;
    }
    peer_addr *addrs;
    size_t count;
    int rc = numeric_addrs((const char *const *)ans[0].addrs, ans[0].count, b->port, &addrs, &count);
    if (rc != 0) {
        b->stats.dns_failures++;
        snprintf(why, sizeof why, "cannot resolve %.64s: %s", b->host,
                 rc == GW_ENOMEM ? "out of memory" : "the resolver returned no numeric address");
        conn_fail_resolution(k, why);
        return;
    }
    free(b->addrs);
    b->addrs = addrs;
    b->n_addrs = count;
    b->addrs_fresh = true;
    conn_connect(k);
}

/* Starts one connection. A host name that has no fresh addresses is
 * resolved first, on a resolver thread (resolve.c): the connection waits
 * in CONN_RESOLVING, counted as connecting, so calls queue as they do
 * during a connect, and the connect timer bounds the resolution too.
 * Literal addresses and unix paths connect at once. Failures close the
 * connection, which marks the backend down and fails the queue. */
static void conn_open(gw_backend *b)
{
    conn *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(b->down_reason, sizeof b->down_reason, "out of memory");
        fail_queue(b);
        return;
    }
    k->b = b;
    k->fd = -1;
    k->state = CONN_RESOLVING;
    gw_dns_watch_init(&k->dns, b->loop, conn_on_resolved, k);
    gw_timer_init(&k->connect_timer, on_connect_timeout, k);
    gw_timer_init(&k->attempt_timer, on_attempt_timer, k);
    gw_timer_init(&k->reset_timer, on_reset_timer, k);
    gw_timer_init(&k->keepalive_timer, on_keepalive, k);
    gw_timer_init(&k->ping_ack_timer, on_ping_ack_timeout, k);
    silence_init(k);
    gw_defer_init(&k->flush_defer, on_flush_deferred, k);
    gw_defer_init(&k->free_defer, on_conn_free_deferred, k);
    gw_buf_init(&k->out, 4u << 20); /* OUT_FLUSH + one frame in practice */
    k->next = b->conns;
    b->conns = k;
    b->stats.connects_started++;
    b->stats.connections_open++;
    k->counted_open = true;
    gw_loop_timer_start(b->loop, &k->connect_timer,
                        gw_loop_now(b->loop) + (uint64_t)b->opt.connect_timeout_ms * GW_MS);
    if (!b->host_is_name || b->addrs_fresh) {
        conn_connect(k);
        return;
    }
    const char *host = b->host, *port = b->port;
    int rc = gw_dns_watch_start(&k->dns, b->opt.resolve, b->opt.resolve_ctx, &host, &port, 1,
                                MAX_ADDRS);
    if (rc != 0) {
        char why[256];
        b->stats.dns_failures++;
        snprintf(why, sizeof why, "cannot resolve %.64s: %s", b->host,
                 rc == GW_EIO ? "cannot start a resolver thread" : gw_err_str(rc));
        conn_fail_resolution(k, why);
    }
}

/* ---- dispatch ------------------------------------------------------------------ */

static conn *pick_conn(gw_backend *b)
{
    conn *best = NULL;
    for (conn *k = b->conns; k; k = k->next) {
        if (k->state != CONN_READY || !k->peer_settings || k->draining)
            continue;
        if (nghttp2_session_get_next_stream_id(k->h2) > 0x7fffff00u) {
            k->draining = true;
            continue;
        }
        uint32_t max = nghttp2_session_get_remote_settings(k->h2,
                                                           NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        if (k->streams >= max)
            continue;
        if (!best || k->streams < best->streams)
            best = k;
    }
    return best;
}

static void dispatch(void *arg)
{
    gw_backend *b = arg;
    while (b->q_head) {
        gw_ucall *c = b->q_head;
        conn *k = pick_conn(b);
        if (k) {
            queue_remove(b, c);
            int rc = call_open_stream(c, k);
            if (rc != 0) {
                call_fail(c, GW_CODE_UNAVAILABLE, "unavailable",
                          "backend %s: cannot open a stream (%s)", b->url, gw_err_str(rc));
                call_maybe_free(c);
            }
            continue;
        }
        size_t open = 0;
        bool connecting = false;
        for (conn *j = b->conns; j; j = j->next) {
            if (j->state == CONN_DEAD || j->draining)
                continue;
            open++;
            if (j->state != CONN_READY || !j->peer_settings)
                connecting = true;
        }
        if (connecting)
            return;
        if (open >= b->opt.pool_size)
            return;
        if (b->down && gw_loop_now(b->loop) < b->retry_at_ns) {
            fail_queue(b);
            return;
        }
        conn_open(b);
        /* conn_open may fail at once (and fail the queue) or be pending. */
        if (!backend_has_live_conn(b))
            return;
    }
}

static void dispatch_later(gw_backend *b)
{
    if (b->q_head)
        gw_loop_defer(b->loop, &b->dispatch_defer);
}

/* ---- the call API ---------------------------------------------------------------- */

static bool valid_md_name(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
              ch == '.'))
            return false;
    }
    return true;
}

static bool reserved_md_name(const char *s, size_t n)
{
    static const char *const reserved[] = {"te", "content-type", "user-agent", "connection",
                                           "host", "transfer-encoding", "keep-alive",
                                           "upgrade", "proxy-connection", "content-length"};
    if (n >= 5 && memcmp(s, "grpc-", 5) == 0)
        return true;
    for (size_t i = 0; i < GW_ARRAY_LEN(reserved); i++)
        if (strlen(reserved[i]) == n && memcmp(reserved[i], s, n) == 0)
            return true;
    return false;
}

static bool valid_md_value(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 && ch != '\t')
            return false;
        if (ch == 0x7f)
            return false;
    }
    return true;
}

static int ucall_start(gw_backend *b, const gw_ucall_params *p, const gw_ucall_handlers *h,
                       void *owner, gw_ucall **out, gw_error *e, const char *fail_msg);

int gw_ucall_start(gw_backend *b, const gw_ucall_params *p, const gw_ucall_handlers *h,
                   void *owner, gw_ucall **out, gw_error *e)
{
    return ucall_start(b, p, h, owner, out, e, NULL);
}

int gw_ucall_start_failed(gw_backend *b, const gw_ucall_params *p, const gw_ucall_handlers *h,
                          void *owner, const char *message, gw_ucall **out, gw_error *e)
{
    return ucall_start(b, p, h, owner, out, e, message);
}

static int ucall_start(gw_backend *b, const gw_ucall_params *p, const gw_ucall_handlers *h,
                       void *owner, gw_ucall **out, gw_error *e, const char *fail_msg)
{
    *out = NULL;
    if (!b || !p || !h || !h->on_complete)
        return gw_error_set(e, GW_EINVAL, "gw_ucall_start: missing backend, params or on_complete");
    if (!p->path || p->path[0] != '/' || strlen(p->path) > 1024)
        return gw_error_set(e, GW_EINVAL, "invalid method path");
    for (const char *q = p->path; *q; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7f)
            return gw_error_set(e, GW_EINVAL, "invalid character in method path");
    for (size_t i = 0; i < p->metadata_count; i++) {
        const gw_header *m = &p->metadata[i];
        if (!valid_md_name(m->name, m->name_len))
            return gw_error_set(e, GW_EINVAL, "invalid metadata key \"%.*s\"",
                                (int)GW_MIN(m->name_len, (size_t)64), m->name);
        if (reserved_md_name(m->name, m->name_len))
            return gw_error_set(e, GW_EINVAL, "reserved metadata key \"%.*s\"",
                                (int)GW_MIN(m->name_len, (size_t)64), m->name);
        if (!valid_md_value(m->value, m->value_len))
            return gw_error_set(e, GW_EINVAL, "invalid character in metadata \"%.*s\"",
                                (int)GW_MIN(m->name_len, (size_t)64), m->name);
    }
    gw_ucall *c = calloc(1, sizeof *c);
    if (!c)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    c->b = b;
    c->h = h;
    c->owner = owner;
    gw_arena_init(&c->arena, 1024, 0);
    gw_buf_init(&c->req, b->opt.max_request_buffer);
    gw_buf_init(&c->replay, 0);
    gw_buf_init(&c->http_body, HTTP_BODY_KEEP);
    gw_deframer_init(&c->df, b->opt.max_response_message);
    gw_flow_init(&c->flow, b->opt.stream_window);
    gw_defer_init(&c->complete_defer, on_complete_deferred, c);
    gw_defer_init(&c->writable_defer, on_writable_deferred, c);
    gw_timer_init(&c->deadline_timer, on_deadline, c);
    c->all_next = b->all_calls;
    if (b->all_calls)
        b->all_calls->all_prev = c;
    b->all_calls = c;
    c->deadline_ns = p->deadline_ns;
    c->path = gw_arena_strdup(&c->arena, p->path);
    c->md = p->metadata_count ? gw_arena_alloc(&c->arena, p->metadata_count * sizeof *c->md) : NULL;
    if (!c->path || (p->metadata_count && !c->md))
        goto oom;
    for (size_t i = 0; i < p->metadata_count; i++) {
        const gw_header *m = &p->metadata[i];
        char *nm = gw_arena_strndup(&c->arena, m->name, m->name_len);
        char *vl = gw_arena_strndup(&c->arena, m->value, m->value_len);
        if (!nm || !vl)
            goto oom;
        c->md[i] = (gw_header){nm, m->name_len, vl, m->value_len};
    }
    c->md_count = p->metadata_count;
    b->active_calls++;
    b->stats.calls_started++;
    *out = c;

    if (fail_msg) {
        call_finish(c, GW_CODE_UNAVAILABLE, "%s", fail_msg);
        return 0;
    }
    uint64_t now = gw_now_ns();
    if (c->deadline_ns && c->deadline_ns <= now) {
        call_finish(c, GW_CODE_DEADLINE_EXCEEDED, "deadline exceeded before the call started");
        return 0;
    }
    if (c->deadline_ns && gw_loop_timer_start(b->loop, &c->deadline_timer, c->deadline_ns) != 0) {
        call_finish(c, GW_CODE_RESOURCE_EXHAUSTED, "out of memory for the deadline timer");
        return 0;
    }
    if (b->down && gw_loop_now(b->loop) < b->retry_at_ns && !backend_has_live_conn(b)) {
        c->unreachable = true;
        call_fail(c, GW_CODE_UNAVAILABLE, "unavailable", "backend %s unreachable: %s", b->url,
                  b->down_reason);
        return 0;
    }
    if (b->q_len >= b->opt.max_queued_calls) {
        call_fail(c, GW_CODE_RESOURCE_EXHAUSTED, "has too many calls waiting",
                  "backend %s: too many calls waiting for a connection (limit %zu)", b->url,
                  b->opt.max_queued_calls);
        return 0;
    }
    queue_push(b, c, false);
    gw_loop_defer(b->loop, &b->dispatch_defer);
    return 0;
oom:
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        b->all_calls = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    gw_deframer_free(&c->df);
    gw_arena_free(&c->arena);
    free(c);
    return gw_error_set(e, GW_ENOMEM, "out of memory");
}

long gw_ucall_write(gw_ucall *c, const uint8_t *data, size_t len)
{
    if (!c || c->owner_gone)
        return GW_ESTATE;
    if (c->send_closed)
        return GW_ESTATE;
    if (c->finished)
        return (long)len; /* the outcome is decided: drop quietly */
    size_t max = c->b->opt.max_request_buffer;
    size_t room = c->req.len < max ? max - c->req.len : 0;
    size_t take = GW_MIN(room, len);
    if (take && gw_buf_append(&c->req, data, take) != 0)
        take = 0;
    if (take < len)
        c->want_writable = true;
    if (take && c->conn && c->data_deferred) {
        c->data_deferred = false;
        nghttp2_session_resume_data(c->conn->h2, c->stream_id);
        conn_flush_later(c->conn);
    }
    return (long)take;
}

void gw_ucall_close_send(gw_ucall *c)
{
    if (!c || c->owner_gone || c->send_closed)
        return;
    c->send_closed = true;
    if (c->conn && c->data_deferred) {
        c->data_deferred = false;
        nghttp2_session_resume_data(c->conn->h2, c->stream_id);
        conn_flush_later(c->conn);
    }
}

void gw_ucall_cancel(gw_ucall *c)
{
    if (!c || c->owner_gone)
        return;
    call_finish(c, GW_CODE_CANCELLED, "cancelled");
    call_owner_done(c);
    gw_loop_defer_cancel(c->b->loop, &c->complete_defer);
    if (c->in_queue)
        queue_remove(c->b, c);
    if (c->conn && !(c->remote_ended && c->send_closed))
        conn_reset_stream(c->conn, c->stream_id, NGHTTP2_CANCEL);
    call_maybe_free(c);
}

/* ---- teardown ---------------------------------------------------------------------- */

void gw_backend_del(gw_backend *b)
{
    if (!b)
        return;
    snprintf(b->down_reason, sizeof b->down_reason, "backend is shutting down");
    while (b->q_head) {
        gw_ucall *c = b->q_head;
        queue_remove(b, c);
        call_fail(c, GW_CODE_UNAVAILABLE, "is shutting down", "backend %s is shutting down",
                  b->url);
    }
    for (gw_ucall *c = b->all_calls; c; c = c->all_next)
        call_fail(c, GW_CODE_UNAVAILABLE, "is shutting down", "backend %s is shutting down",
                  b->url);
    /* The one place where callbacks run inside a call from the owner; the
     * list changes under each callback, so start over every time. */
    for (;;) {
        gw_ucall *c = b->all_calls;
        while (c && c->owner_gone)
            c = c->all_next;
        if (!c)
            break;
        gw_loop_defer_cancel(b->loop, &c->complete_defer);
        on_complete_deferred(c);
    }
    while (b->conns) {
        conn *k = b->conns;
        k->calls = NULL; /* detached below, without nghttp2 */
        for (gw_ucall *c = b->all_calls; c; c = c->all_next) {
            if (c->conn == k) {
                c->conn = NULL;
                c->stream_id = 0;
            }
        }
        k->streams = 0;
        conn_close(k, CONN_RETIRED);
    }
    /* Closed connections whose deferred free has not run yet. Inside a
     * loop turn (an I/O callback of this batch may be the caller) they
     * outlive the backend until their free_defer runs, later in this turn;
     * between turns nothing of the loop names them any more. */
    bool in_turn = gw_loop_in_turn(b->loop);
    while (b->dead) {
        conn *k = b->dead;
        b->dead = k->next;
        k->next = NULL;
        k->b = NULL;
        if (in_turn) {
            gw_loop_defer(b->loop, &k->free_defer);
        } else {
            gw_loop_defer_cancel(b->loop, &k->free_defer);
            on_conn_free_deferred(k);
        }
    }
    while (b->all_calls) {
        gw_ucall *c = b->all_calls;
        c->conn = NULL;
        c->in_queue = false;
        call_free(c);
    }
    gw_loop_defer_cancel(b->loop, &b->dispatch_defer);
    if (b->ssl_ctx)
        SSL_CTX_free(b->ssl_ctx);
    if (b->bio_method)
        BIO_meth_free(b->bio_method);
    free(b->url);
    free(b->host);
    free(b->port);
    free(b->unix_path);
    free(b->authority);
    free(b->addrs);
    free(b->ca_file);
    free(b->cert_file);
    free(b->key_file);
    free(b->opt_server_name);
    free(b->opt_authority);
    free(b);
}

/* ---- readiness (docs/operations.md "Health endpoints") ------------------------- */

static bool backend_has_ready_conn(const gw_backend *b)
{
    for (const conn *k = b->conns; k; k = k->next)
        if (k->state == CONN_READY && k->peer_settings && !k->draining)
            return true;
    return false;
}

void gw_backend_warm(gw_backend *b)
{
    if (backend_has_live_conn(b) || b->q_head)
        return; /* connected, connecting, or the queue will connect */
    if (b->down && gw_loop_now(b->loop) < b->retry_at_ns)
        return; /* the backoff after a failure runs first */
    conn_open(b);
}

bool gw_backend_ready(const gw_backend *b, bool untried_ok)
{
    if (!b->stats.connects_ok)
        return untried_ok && !b->down;
    return !b->down || backend_has_ready_conn(b);
}

/* ---- PINGs after silence (docs/upstream.md "A frozen backend") ---------------------
 *
 * A connection with calls in flight that has read nothing for ping_silent_ms
 * gets one PING; if nothing at all arrives within ping_timeout_ms the
 * backend is taken as frozen (a stopped process, a dead host or path): the
 * connection closes, its calls fail with UNAVAILABLE, and the next call or
 * the readiness check connects again. An idle connection is never pinged,
 * and after an answered PING the next one waits until the backend has sent
 * HEADERS or DATA (a gRPC server forgets its ping strikes then) or 5
 * minutes have passed (its default minimum PING interval): a gRPC server
 * never sees more than one data-less PING per 5 minutes from us, so it has
 * no reason to answer GOAWAY too_many_pings. */

#define SILENCE_MIN_PING_INTERVAL_NS (300000ull * GW_MS)

static void silence_tick(void *arg);
static void silence_ack_timeout(void *arg);

static void silence_init(conn *k)
{
    gw_timer_init(&k->silence.tick, silence_tick, k);
    gw_timer_init(&k->silence.ack, silence_ack_timeout, k);
}

static void silence_stop(conn *k)
{
    gw_loop_timer_stop(k->b->loop, &k->silence.tick);
    gw_loop_timer_stop(k->b->loop, &k->silence.ack);
}

static void silence_on_read(conn *k)
{
    k->silence.last_ns = gw_loop_now(k->b->loop);
    if (k->silence.awaiting) { /* anything at all proves the backend alive */
        k->silence.awaiting = false;
        gw_loop_timer_stop(k->b->loop, &k->silence.ack);
    }
}

static void silence_on_frame(conn *k, uint8_t type)
{
    if (type == NGHTTP2_HEADERS || type == NGHTTP2_DATA)
        k->silence.data_since_ping = true;
}

/* A stream opened: silence counts from now, and someone must look. */
static void silence_watch(conn *k)
{
    gw_backend *b = k->b;
    if (!b->opt.ping_silent_ms)
        return;
    uint64_t now = gw_loop_now(b->loop);
    if (k->silence.last_ns < now)
        k->silence.last_ns = now;
    if (!gw_timer_armed(&k->silence.tick))
        gw_loop_timer_start(b->loop, &k->silence.tick,
                            now + (uint64_t)b->opt.ping_silent_ms * GW_MS);
}

static void silence_tick(void *arg)
{
    conn *k = arg;
    gw_backend *b = k->b;
    if (k->state != CONN_READY || !k->streams)
        return; /* the next stream re-arms it */
    uint64_t now = gw_loop_now(b->loop), silent = (uint64_t)b->opt.ping_silent_ms * GW_MS;
    if (k->silence.awaiting) { /* the ACK timer decides; look again later */
        gw_loop_timer_start(b->loop, &k->silence.tick, now + silent);
        return;
    }
    uint64_t due = k->silence.last_ns + silent;
    if (k->silence.ping_ns && !k->silence.data_since_ping &&
        k->silence.ping_ns + SILENCE_MIN_PING_INTERVAL_NS > due)
        due = k->silence.ping_ns + SILENCE_MIN_PING_INTERVAL_NS;
    if (now < due) {
        gw_loop_timer_start(b->loop, &k->silence.tick, due);
        return;
    }
    if (nghttp2_submit_ping(k->h2, NGHTTP2_FLAG_NONE, NULL) != 0) {
        gw_loop_timer_start(b->loop, &k->silence.tick, now + silent);
        return;
    }
    GW_DEBUG("upstream: %s silent for %llu ms with %zu calls in flight: PING", b->url,
             (unsigned long long)((now - k->silence.last_ns) / GW_MS), k->streams);
    k->silence.ping_ns = now;
    k->silence.data_since_ping = false;
    k->silence.awaiting = true;
    gw_loop_timer_start(b->loop, &k->silence.ack,
                        now + (uint64_t)b->opt.ping_timeout_ms * GW_MS);
    conn_flush_later(k);
}

static void silence_ack_timeout(void *arg)
{
    conn *k = arg;
    gw_backend *b = k->b;
    char why[200];
    snprintf(why, sizeof why,
             "no answer to a PING within %u ms after %llu ms of silence with calls in "
             "flight (backend frozen or unreachable)",
             b->opt.ping_timeout_ms,
             (unsigned long long)((k->silence.ping_ns - k->silence.last_ns) / GW_MS));
    GW_WARN("upstream: connection to %s: %s; closing it", b->url, why);
    b->stats.ping_timeouts++;
    conn_close(k, why);
}
