/*
 * The libmicrohttpd side of a worker. See front.h for the contract and
 * docs/front.md for the reasons behind the suspend/resume rules below; they
 * follow the 0.9.75 field notes in DESIGN.md:
 *   - MHD_run only ever runs from a deferred callback, after the batch of
 *     I/O events, because it frees request state (on_completed) that a stale
 *     event in the same batch could still name;
 *   - `suspended` is tracked so that nothing resumes twice;
 *   - a suspended connection's fd is watched for RDHUP, and the watch is
 *     removed before resuming;
 *   - a close at the connection limit makes the next MHD_run immediate.
 */
#include "front/front.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <microhttpd.h>
#include <zlib.h>
#ifdef GW_HAVE_GNUTLS
#include <gnutls/gnutls.h>
#endif
#include <pthread.h>

typedef struct front_conn front_conn;
typedef struct front_gzip front_gzip;
typedef struct front_parked front_parked;

struct gw_front {
    gw_loop *loop;
    struct MHD_Daemon *daemon;
    gw_front_options o;
    const gw_front_handler *handler;
    void *server;
    gw_io epoll_io;        /* MHD's epoll fd inside our loop */
    gw_hook hook;          /* bounds the wait by MHD_get_timeout */
    gw_timer mhd_timer;    /* fires MHD_run when MHD's timeout is due */
    gw_defer run_defer;    /* MHD_run after the current batch */
    uint16_t port;
    unsigned connections;
    size_t active;         /* requests with an attached handler */
    bool stopping;
    bool quiesced;
    gw_front_req *reqs;    /* every live request (for shutdown) */
    gw_front_upgraded *ups;   /* upgraded connections still open */
    size_t ups_count;
    /* One deflate state for whole answers, reset for each: they are
     * compressed in one go, so one per worker is enough. */
    z_stream whole_z;
    bool whole_z_ready;
    /* Spin guard: turns where MHD asked to run again at once and nothing
     * from outside (socket event, resume, timer of ours) happened since. */
    bool woke;
    unsigned idle_turns;
    uint64_t spins;           /* back-off episodes, for the log */
    /* libmicrohttpd's messages: a per-second budget. */
    uint64_t log_window_ns;
    unsigned log_count;
    unsigned log_dropped;
    /* Idle keep-alive connections outside libmicrohttpd ("parking"). */
    front_parked *parked;
    size_t parked_count;
    front_parked *readding;  /* the one MHD_add_connection is taking back */
    /* Giving free heap memory back once the worker is quiet. */
    gw_timer trim_timer;
    uint64_t trim_events;    /* requests completed + connections closed */
    uint64_t trim_seen;      /* trim_events when the timer was armed */
    bool trim_dirty;         /* something was freed since the last trim */
};

/* After this many idle immediate turns in a row the front backs off. Legit
 * runs of immediate turns (finishing a response, pipelined requests) are a
 * handful long and each follows an event. */
#define SPIN_TURNS 32
#define SPIN_BACKOFF_MAX_MS 100
#define MHD_LOG_PER_SEC 20
/* How long after a client's FIN the front looks whether MHD noticed it: the
 * timer fires in a later loop turn than the event, after MHD_run has parsed
 * what arrived (see on_conn_watch). */
#define PEER_CHECK_MS 10

struct front_conn {
    gw_front *f;
    int fd;
    gw_timer timer;        /* header / idle keep-alive timeout */
    uint8_t ip[16];        /* client address, for the shared per-IP count */
    uint8_t ip_len;        /* 0: not counted */
    /* The peer-closed watch lives as long as the connection (edge
     * triggered), so suspending a request costs no epoll_ctl of ours. */
    gw_io watch;
    gw_front_req *suspended;  /* the request suspended on it, if any */
    bool peer_closed;         /* FIN (or an error) seen */
    /* Body phase: `timer` is the body deadline for body_req. While the
     * handler holds the body back (suspended), the time left is kept in
     * body_left_ns and the timer stopped. */
    gw_front_req *body_req;
    uint64_t body_deadline_ns;
    uint64_t body_left_ns;
    bool in_request;          /* a request started and not completed */
    gw_front_req *cur;        /* that request (first access call on) */
    bool peer_check;          /* timer: the peer closed, see on_conn_watch */
    struct MHD_Connection *mc;
    uint64_t idle_since;      /* loop time the last request completed */
    bool idle;                /* between a completed request and the next */
    bool parking;             /* MHD was asked to time it out: keep the socket */
    bool upgraded;            /* handed over (gw_front_req_upgrade): no timers */
};

/* An idle keep-alive connection libmicrohttpd has let go of: only the
 * socket (a dup of MHD's, taken just before MHD closed its own), a watch
 * for the next request and the rest of the idle timeout. */
struct front_parked {
    gw_front *f;
    int fd;
    uint8_t ip[16];           /* the shared per-IP count moves along */
    uint8_t ip_len;
    gw_io watch;
    gw_timer timer;
    front_parked *prev, *next;
};

static void on_conn_watch(void *owner, uint32_t events);
static void req_finish(gw_front *f, gw_front_req *r, bool completed);
static void socket_limits(gw_front *f, int fd);
static void park_keep(front_conn *c);
static void park_cancel(front_conn *c);
static void trim_note(gw_front *f);

/* ---- shared per-IP counts ------------------------------------------------------ */

typedef struct ip_entry {
    struct ip_entry *next;
    uint8_t ip[16];
    uint8_t len;
    unsigned count;
} ip_entry;

#define IPLIMIT_BUCKETS 1024

struct gw_front_iplimit {
    pthread_mutex_t lock;
    ip_entry *buckets[IPLIMIT_BUCKETS];
};

gw_front_iplimit *gw_front_iplimit_new(void)
{
    gw_front_iplimit *l = calloc(1, sizeof *l);
    if (l && pthread_mutex_init(&l->lock, NULL) != 0) {
        free(l);
        return NULL;
    }
    return l;
}

void gw_front_iplimit_del(gw_front_iplimit *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < IPLIMIT_BUCKETS; i++)
        for (ip_entry *e = l->buckets[i], *n; e; e = n) {
            n = e->next;
            free(e);
        }
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* Counts one more connection from ip. False if that would pass max (or
 * out of memory: refusing is the safe side). */
static bool iplimit_acquire(gw_front_iplimit *l, const uint8_t *ip, uint8_t len, unsigned max)
{
    size_t b = gw_hash(ip, len) % IPLIMIT_BUCKETS;
    bool ok = false;
    pthread_mutex_lock(&l->lock);
    ip_entry *e = l->buckets[b];
    while (e && !(e->len == len && memcmp(e->ip, ip, len) == 0))
        e = e->next;
    if (!e && (e = calloc(1, sizeof *e)) != NULL) {
        memcpy(e->ip, ip, len);
        e->len = len;
        e->next = l->buckets[b];
        l->buckets[b] = e;
    }
    if (e && e->count < max) {
        e->count++;
        ok = true;
    }
    pthread_mutex_unlock(&l->lock);
    return ok;
}

static void iplimit_release(gw_front_iplimit *l, const uint8_t *ip, uint8_t len)
{
    size_t b = gw_hash(ip, len) % IPLIMIT_BUCKETS;
    pthread_mutex_lock(&l->lock);
    for (ip_entry **pp = &l->buckets[b]; *pp; pp = &(*pp)->next) {
        ip_entry *e = *pp;
        if (e->len == len && memcmp(e->ip, ip, len) == 0) {
            if (--e->count == 0) {
                *pp = e->next;
                free(e);
            }
            break;
        }
    }
    pthread_mutex_unlock(&l->lock);
}

/* The client address of mc as bytes (4 or 16), or 0. */
static uint8_t client_ip(struct MHD_Connection *mc, uint8_t out[16])
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return 0;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return 4;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return 16;
    }
    return 0;
}

struct gw_front_req {
    gw_front *f;
    struct MHD_Connection *mc;
    front_conn *conn;
    const char *method;
    const char *path;
    const gw_front_req_ops *ops;
    void *owner;
    struct MHD_Response *resp;   /* set, not yet queued */
    int status;
    size_t discarded;
    gw_io watch;                 /* client fd while suspended */
    gw_front_req *prev, *next;
    bool started;
    bool body_done;
    bool resp_queued;
    bool suspended;
    bool client_gone;
    bool close_now;
    bool resp_stream;            /* resp reads its body from ops->read */
    bool grpc_web;               /* Content-Type application/grpc-web* */
    front_gzip *gz;              /* a compressed stream's deflate state */
    /* An answer given while the body is still arriving, serialized for
     * early_send (see "early answers"); NULL when there is none. */
    char *early;
    size_t early_len;
    size_t body_seen;            /* request body bytes taken so far */
    bool lingering;              /* early answer sent: drop the rest, close */
    bool has_body;               /* Content-Length > 0 or chunked */
    bool expect_continue;        /* Expect: 100-continue */
    const gw_front_upgrade_ops *up_ops;  /* a 101 queued, not handed over yet */
    void *up_owner;
    char uri[];                  /* raw request target */
};

void gw_front_options_init(gw_front_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = "0.0.0.0";
    o->connection_limit = 4096;
    o->memory_limit = 16 * 1024;
    o->max_header_count = 100;
    o->header_timeout_ms = 10000;
    o->idle_timeout_ms = 60000;
    o->inactivity_timeout_s = 300;
    o->discard_limit = 1024 * 1024;
    o->http_strictness = 1;
    o->body_timeout_ms = 60000;
    o->body_min_rate = 500;
    o->park_idle_ms = 1000;
    o->trim_idle_ms = 1000;
    o->notsent_lowat = 128 * 1024;
    o->compression.enabled = true;
    o->compression.min_bytes = 1024;
    o->compression.level = 6;
    snprintf(o->compression.types, sizeof o->compression.types, "%s",
             "application/json,application/x-ndjson,text/event-stream,text/*,"
             "application/javascript");
}

const char *gw_front_mhd_version(void) { return MHD_get_version(); }

/* MHD_VERSION is 0xMMmmpp00 (hex digits read as decimal, "0x00097500"). */
void gw_front_mhd_version_built(char *buf, size_t cap)
{
    snprintf(buf, cap, "%x.%x.%x", (unsigned)(MHD_VERSION >> 24) & 0xff,
             (unsigned)(MHD_VERSION >> 16) & 0xff, (unsigned)(MHD_VERSION >> 8) & 0xff);
}

/* ---- running MHD ----------------------------------------------------------- */

static void run_now(void *owner)
{
    gw_front *f = owner;
    bool woke = f->woke;
    f->woke = false;
    /* After a response MHD needs a few more immediate runs (finish, reset
     * the connection for keep-alive); doing them here saves a loop turn
     * (an epoll_wait) each. Bounded so that one daemon cannot starve the
     * rest of the loop. */
    bool again = false;
    for (int i = 0; i < 4 && f->daemon && !f->stopping; i++) {
        MHD_run(f->daemon);
        MHD_UNSIGNED_LONG_LONG ms;
        again = MHD_get_timeout(f->daemon, &ms) == MHD_YES && ms == 0;
        if (!again)
            break;
    }
    /* Spin guard: MHD still wants an immediate run although this turn had
     * no cause from outside. A connection MHD cannot make progress on (a
     * chunk-size line longer than its buffer, in 0.9.75) asks for that
     * forever; the timer back-off in mhd_timeout_hook caps the cost while
     * our header/body deadlines close it. */
    if (!again || woke) {
        f->idle_turns = 0;
    } else if (++f->idle_turns == SPIN_TURNS) {
        f->spins++;
        if ((f->spins & (f->spins - 1)) == 0) /* 1st, 2nd, 4th, 8th, ... */
            GW_WARN("front: libmicrohttpd keeps asking for immediate runs without "
                    "progress (%llu times so far): backing off",
                    (unsigned long long)f->spins);
    }
}

static void schedule_run(gw_front *f) { gw_loop_defer(f->loop, &f->run_defer); }

/* A run caused by something outside MHD: resets the spin guard. */
static void wake_run(gw_front *f)
{
    f->woke = true;
    schedule_run(f);
}

static void on_epoll_ready(void *owner, uint32_t events) { wake_run(owner); }

static void on_mhd_timer(void *owner) { schedule_run(owner); }

static int mhd_timeout_hook(void *owner)
{
    gw_front *f = owner;
    MHD_UNSIGNED_LONG_LONG ms;
    if (!f->daemon || f->stopping || MHD_get_timeout(f->daemon, &ms) != MHD_YES)
        return -1;
    if (ms == 0 && f->idle_turns >= SPIN_TURNS) {
        /* 1, 2, 4, ... ms, capped: an event ends it at once. */
        unsigned k = f->idle_turns - SPIN_TURNS;
        ms = k >= 7 ? SPIN_BACKOFF_MAX_MS : GW_MIN(1u << k, SPIN_BACKOFF_MAX_MS);
    }
    if (ms > INT32_MAX)
        ms = INT32_MAX;
    gw_loop_timer_start(f->loop, &f->mhd_timer, gw_now_ns() + ms * GW_MS);
    return (int)ms;
}

/* libmicrohttpd's messages (client errors, TLS handshake failures, plain
 * HTTP on the TLS port, resource trouble) are about one client, not the
 * gateway: at info through our logger, naming the listener's port, control
 * characters flattened, at most MHD_LOG_PER_SEC a second per worker and
 * listener; the count dropped is told with the first message after. Runs on
 * the front's thread (the only logger: set first in MHD_start_daemon). */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt,
                                                           va_list ap)
{
    gw_front *f = cls;
    if (gw_log_get_level() > GW_LOG_INFO)
        return;
    uint64_t now = gw_now_ns();
    if (now - f->log_window_ns >= GW_SEC) {
        if (f->log_dropped)
            GW_INFO("libmicrohttpd: %u more messages left out (over %d a second)",
                    f->log_dropped, MHD_LOG_PER_SEC);
        f->log_window_ns = now;
        f->log_count = 0;
        f->log_dropped = 0;
    }
    if (f->log_count >= MHD_LOG_PER_SEC) {
        f->log_dropped++;
        return;
    }
    f->log_count++;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r' || msg[n - 1] == ' '))
        msg[--n] = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)msg[i] < 0x20)
            msg[i] = ' ';
    GW_INFO("libmicrohttpd: port %u: %s", f->port ? f->port : f->o.port, msg);
}

/* ---- connections: header and idle timeouts ------------------------------------ */

static void body_timeout(front_conn *c);
static bool park_begin(front_conn *c);

static void on_conn_timeout(void *owner)
{
    front_conn *c = owner;
    if (c->upgraded)
        return;
    if (c->peer_check) {
        c->peer_check = false;
        /* No request (a half head, or nothing after the last answer), or
         * a body still incomplete, from a client that sent its last byte:
         * nothing more can come. */
        if (!c->suspended && (!c->in_request || c->body_req || (c->cur && c->cur->lingering))) {
            GW_DEBUG("front: closing fd %d: the client closed mid-request", c->fd);
            if (c->body_req && !c->body_req->client_gone) {
                gw_front_req *r = c->body_req;
                r->client_gone = true;
                if (r->ops && r->ops->on_client_gone)
                    r->ops->on_client_gone(r->owner);
            }
            shutdown(c->fd, SHUT_RDWR);
            wake_run(c->f);
            return;
        }
        /* Suspended: the request's own watch reports the client gone. */
        return;
    }
    if (c->body_req) {
        body_timeout(c);
        return;
    }
    if (c->idle && c->f->o.idle_timeout_ms &&
        gw_loop_now(c->f->loop) < c->idle_since + c->f->o.idle_timeout_ms * GW_MS) {
        /* The park timer, not the idle timeout: try to park, and keep the
         * idle timeout running either way. */
        if (!c->parking)
            park_begin(c);
        gw_loop_timer_start(c->f->loop, &c->timer,
                            c->idle_since + c->f->o.idle_timeout_ms * GW_MS);
        return;
    }
    /* MHD has no call to close a connection it is not suspending; shutting
     * the socket down makes its next read see EOF and close it. */
    GW_DEBUG("front: closing fd %d: no complete request in time", c->fd);
    shutdown(c->fd, SHUT_RDWR);
    wake_run(c->f);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    gw_front *f = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        f->connections++;
        front_conn *c = calloc(1, sizeof *c);
        if (!c)
            return;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->f = f;
        c->fd = ci ? ci->connect_fd : -1;
        c->mc = mc;
        gw_timer_init(&c->timer, on_conn_timeout, c);
        *socket_context = c;
        front_parked *back = f->readding;
        f->readding = NULL;
        if (back && c->fd >= 0) {
            /* A parked connection coming back: same socket, same count. */
            memcpy(c->ip, back->ip, back->ip_len);
            c->ip_len = back->ip_len;
            back->ip_len = 0;
        }
        if (c->fd >= 0)
            socket_limits(f, c->fd);
        if (c->fd >= 0 && gw_loop_io_add(f->loop, &c->watch, c->fd, GW_IO_RDHUP | GW_IO_EDGE,
                                         on_conn_watch, c) != 0)
            GW_DEBUG("front: fd %d: no peer-closed watch, per-suspend watches instead", c->fd);
        if (f->o.ip_limit && f->o.per_ip_limit && !c->ip_len && !back) {
            uint8_t ip[16];
            uint8_t len = client_ip(mc, ip);
            if (len && !iplimit_acquire(f->o.ip_limit, ip, len, f->o.per_ip_limit)) {
                /* Over the limit: closed before it can send anything. */
                GW_DEBUG("front: closing fd %d: per-IP connection limit", c->fd);
                shutdown(c->fd, SHUT_RDWR);
                wake_run(f);
                return;
            }
            memcpy(c->ip, ip, len);
            c->ip_len = len;
        }
        if (f->o.header_timeout_ms)
            gw_loop_timer_start(f->loop, &c->timer,
                                gw_now_ns() + f->o.header_timeout_ms * GW_MS);
        return;
    }
    if (f->connections-- == f->o.connection_limit)
        wake_run(f); /* the listen socket is re-enabled on the next run */
    trim_note(f);
    front_conn *c = *socket_context;
    if (c) {
        if (c->suspended)
            c->suspended->conn = NULL; /* the request may outlive its connection */
        if (c->cur && c->cur != c->suspended && !c->cur->suspended) {
            GW_DEBUG("front: fd %d closed with a request libmicrohttpd never completed",
                     c->fd);
            req_finish(f, c->cur, false);
        }
        if (c->body_req)
            c->body_req->conn = NULL;
        gw_loop_io_remove(f->loop, &c->watch);
        gw_loop_timer_stop(f->loop, &c->timer);
        /* MHD closes its fd right after this callback: a connection it
         * timed out because we asked (parking) keeps its socket. */
        if (c->parking && !c->peer_closed && !f->stopping && !f->quiesced)
            park_keep(c);
        if (c->ip_len)
            iplimit_release(f->o.ip_limit, c->ip, c->ip_len);
        free(c);
        *socket_context = NULL;
    }
}

/* ---- socket limits, parking idle connections, giving memory back --------------
 *
 * See docs/performance.md, "Memory at scale". */

/* Bounds what one client connection can park in the kernel: unsent bytes
 * wait in the send queue only up to TCP_NOTSENT_LOWAT (a reader that stops
 * reading stops the gateway's writes, hence the call's queue, hence the
 * backend stream), while bytes in flight still get the autotuned window
 * (a healthy long-distance client keeps its throughput). sndbuf, when set,
 * caps the whole send queue as well. */
static void socket_limits(gw_front *f, int fd)
{
    if (f->o.sndbuf) {
        int v = f->o.sndbuf > INT_MAX / 2 ? INT_MAX / 2 : (int)f->o.sndbuf;
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v) != 0)
            GW_DEBUG("front: fd %d: SO_SNDBUF: %s", fd, strerror(errno));
    }
    if (f->o.notsent_lowat) {
        int v = f->o.notsent_lowat > INT_MAX ? INT_MAX : (int)f->o.notsent_lowat;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, sizeof v) != 0)
            GW_DEBUG("front: fd %d: TCP_NOTSENT_LOWAT: %s", fd, strerror(errno));
    }
}

/*
 * Parking. libmicrohttpd keeps a whole memory pool (the header limit,
 * 16 KiB by default, zeroed after each request, so resident) for every
 * keep-alive connection between requests. After park_idle_ms without a
 * request, the front asks MHD to time the connection out (a per-connection
 * timeout of 1 s, long passed) and, in the close notification that comes
 * just before MHD closes its fd, keeps a dup of the socket in a small
 * front_parked record. MHD runs with MHD_USE_TURBO, so it closes without a
 * shutdown(): the TCP connection stays up and the client sees nothing.
 * When the next request arrives the socket goes back to MHD with
 * MHD_add_connection (a fresh pool). A byte arriving while MHD is being
 * asked (the connection watch reads EPOLLIN meanwhile) cancels the request:
 * a request in progress is never cut. Not over TLS (MHD owns the session).
 */
static bool park_begin(front_conn *c)
{
    gw_front *f = c->f;
    if (!f->o.park_idle_ms || f->o.tls_cert_pem || f->stopping || f->quiesced || !c->mc ||
        c->fd < 0 || c->peer_closed || c->suspended || !c->watch.active)
        return false;
    uint8_t b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n != -1 || (errno != EAGAIN && errno != EWOULDBLOCK))
        return false; /* bytes waiting, the end, or an error: MHD handles it */
    if (gw_loop_io_modify(f->loop, &c->watch, GW_IO_READ | GW_IO_RDHUP | GW_IO_EDGE) != 0)
        return false;
    c->parking = true;
    MHD_set_connection_option(c->mc, MHD_CONNECTION_OPTION_TIMEOUT, 1u);
    wake_run(f); /* a cause from outside MHD: not a spin-guard turn */
    return true;
}

static void park_cancel(front_conn *c)
{
    if (!c->parking)
        return;
    c->parking = false;
    gw_loop_io_modify(c->f->loop, &c->watch, GW_IO_RDHUP | GW_IO_EDGE);
    if (c->mc)
        MHD_set_connection_option(c->mc, MHD_CONNECTION_OPTION_TIMEOUT,
                                  (unsigned)c->f->o.inactivity_timeout_s);
}

static void parked_free(front_parked *p, bool close_fd)
{
    gw_front *f = p->f;
    gw_loop_io_remove(f->loop, &p->watch);
    gw_loop_timer_stop(f->loop, &p->timer);
    if (close_fd)
        close(p->fd);
    if (p->ip_len)
        iplimit_release(f->o.ip_limit, p->ip, p->ip_len);
    if (p->prev)
        p->prev->next = p->next;
    else
        f->parked = p->next;
    if (p->next)
        p->next->prev = p->prev;
    f->parked_count--;
    free(p);
    trim_note(f);
}

/* The rest of the idle timeout ran out: closed as an idle MHD connection
 * would be (FIN). */
static void on_parked_timeout(void *owner) { parked_free(owner, true); }

static void on_parked_event(void *owner, uint32_t events)
{
    front_parked *p = owner;
    gw_front *f = p->f;
    uint8_t b;
    if ((events & (GW_IO_RDHUP | GW_IO_ERROR)) || f->stopping || f->quiesced ||
        recv(p->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) {
        parked_free(p, true); /* the client left (or spurious wake-up: harmless) */
        return;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = p->fd;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
        parked_free(p, true);
        return;
    }
    /* MHD takes the socket (and closes it even on failure); on_connection
     * takes the per-IP count over from f->readding. */
    gw_loop_io_remove(f->loop, &p->watch);
    f->readding = p;
    if (MHD_add_connection(f->daemon, fd, (struct sockaddr *)&ss, sl) != MHD_YES)
        GW_DEBUG("front: fd %d: libmicrohttpd refused a parked connection back", fd);
    f->readding = NULL;
    parked_free(p, false);
    wake_run(f);
}

static void park_keep(front_conn *c)
{
    gw_front *f = c->f;
    front_parked *p = calloc(1, sizeof *p);
    int fd = p ? fcntl(c->fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (fd < 0) {
        /* MHD closes the socket without a shutdown: make it a real close. */
        shutdown(c->fd, SHUT_RDWR);
        free(p);
        return;
    }
    p->f = f;
    p->fd = fd;
    memcpy(p->ip, c->ip, c->ip_len);
    p->ip_len = c->ip_len;
    c->ip_len = 0;
    gw_timer_init(&p->timer, on_parked_timeout, p);
    if (gw_loop_io_add(f->loop, &p->watch, fd, GW_IO_READ | GW_IO_RDHUP, on_parked_event, p)) {
        shutdown(fd, SHUT_RDWR);
        close(fd);
        if (p->ip_len)
            iplimit_release(f->o.ip_limit, p->ip, p->ip_len);
        free(p);
        return;
    }
    if (f->o.idle_timeout_ms)
        gw_loop_timer_start(f->loop, &p->timer, c->idle_since + f->o.idle_timeout_ms * GW_MS);
    p->next = f->parked;
    if (f->parked)
        f->parked->prev = p;
    f->parked = p;
    f->parked_count++;
}

/*
 * Giving memory back. glibc keeps freed memory in its arenas (one per
 * worker thread) and returns only the top of a heap beyond
 * M_TRIM_THRESHOLD; after a burst (10,000 connections, 4 MiB messages)
 * most of it stays resident, fragmented. Once trim_idle_ms passes without
 * a request completing or a connection closing, malloc_trim(0) gives every
 * free page of every arena back (madvise). It runs once per quiet period,
 * never under load.
 */
static void on_trim_timer(void *owner)
{
    gw_front *f = owner;
    if (f->trim_events != f->trim_seen) {
        /* Still busy: look again later. */
        f->trim_seen = f->trim_events;
        gw_loop_timer_start(f->loop, &f->trim_timer,
                            gw_loop_now(f->loop) + f->o.trim_idle_ms * GW_MS);
        return;
    }
    f->trim_dirty = false;
#ifdef __GLIBC__
    uint64_t t0 = gw_now_ns();
    malloc_trim(0);
    GW_DEBUG("front: malloc_trim after a quiet %u ms: %llu us", f->o.trim_idle_ms,
             (unsigned long long)((gw_now_ns() - t0) / 1000));
#endif
}

static void trim_note(gw_front *f)
{
    if (!f->o.trim_idle_ms || f->stopping)
        return;
    f->trim_events++;
    if (f->trim_dirty)
        return;
    f->trim_dirty = true;
    f->trim_seen = f->trim_events;
    gw_loop_timer_start(f->loop, &f->trim_timer,
                        gw_loop_now(f->loop) + f->o.trim_idle_ms * GW_MS);
}

/* ---- suspend / resume -------------------------------------------------------- */

static void on_client_watch(void *owner, uint32_t events);

static void suspend(gw_front_req *r)
{
    if (r->suspended || r->f->stopping || r->client_gone)
        return;
    MHD_suspend_connection(r->mc);
    r->suspended = true;
    if (r->conn && r->conn->body_req == r) {
        /* The handler holds the body back: not the client's time. */
        uint64_t now = gw_loop_now(r->f->loop);
        front_conn *c = r->conn;
        c->body_left_ns = c->body_deadline_ns > now ? c->body_deadline_ns - now : 0;
        gw_loop_timer_stop(r->f->loop, &c->timer);
    }
    if (!r->conn || r->conn->fd < 0)
        return;
    if (r->conn->watch.active && !r->conn->peer_closed) {
        r->conn->suspended = r;
        return;
    }
    /* Already closed by the peer (the edge has passed) or no connection
     * watch: a level-triggered watch of our own reports it next turn. */
    gw_loop_io_add(r->f->loop, &r->watch, r->conn->fd, GW_IO_RDHUP, on_client_watch, r);
}

static void resume(gw_front_req *r)
{
    if (!r->suspended)
        return;
    gw_loop_io_remove(r->f->loop, &r->watch);
    if (r->conn && r->conn->suspended == r)
        r->conn->suspended = NULL;
    r->suspended = false;
    MHD_resume_connection(r->mc);
    if (r->conn && r->conn->body_req == r) {
        front_conn *c = r->conn;
        c->body_deadline_ns = gw_loop_now(r->f->loop) + c->body_left_ns;
        gw_loop_timer_start(r->f->loop, &c->timer, c->body_deadline_ns);
    }
    wake_run(r->f);
}

static void on_conn_watch(void *owner, uint32_t events)
{
    front_conn *c = owner;
    if (c->parking)
        park_cancel(c); /* bytes (or the end) arrived: MHD keeps it */
    if (!(events & (GW_IO_RDHUP | GW_IO_ERROR)))
        return;
    bool first = !c->peer_closed;
    c->peer_closed = true;
    GW_DEBUG("front: fd %d: peer closed (events %#x)%s", c->fd, events,
             c->suspended ? ", suspended" : "");
    if (c->suspended) {
        on_client_watch(c->suspended, events);
    } else if (first && c->fd >= 0 && (!c->in_request || c->body_req)) {
        /* libmicrohttpd 1.0.1 in external epoll mode can miss the end of
         * the stream when it comes with the last bytes (one edge): a half
         * request head or body would then wait for our header or body
         * deadline although the client is gone. Look again shortly, after
         * MHD has parsed what arrived (peer_check in on_conn_timeout). */
        c->peer_check = true;
        gw_loop_timer_start(c->f->loop, &c->timer, gw_loop_now(c->f->loop) + PEER_CHECK_MS * GW_MS);
    }
}

static void on_client_watch(void *owner, uint32_t events)
{
    gw_front_req *r = owner;
    gw_loop_io_remove(r->f->loop, &r->watch);
    if (r->conn && r->conn->suspended == r)
        r->conn->suspended = NULL;
    if (r->client_gone)
        return;
    r->client_gone = true;
    if (r->ops && r->ops->on_client_gone)
        r->ops->on_client_gone(r->owner);
    /* Resumed, MHD sees the closed socket (or our MHD_NO) and completes. */
    resume(r);
}

void gw_front_req_wake(gw_front_req *r) { resume(r); }

/* ---- response compression ------------------------------------------------------ */

/* RFC 9110 tchar: the characters of a token. */
static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in
 * thousandths. Advances *pp past it; false if it is not one. */
static bool parse_qvalue(const char **pp, int *q)
{
    const char *p = *pp;
    if (*p != '0' && *p != '1')
        return false;
    int v = (*p++ - '0') * 1000;
    if (*p == '.') {
        p++;
        for (int scale = 100, i = 0; i < 3 && *p >= '0' && *p <= '9'; i++, scale /= 10)
            v += (*p++ - '0') * scale;
    }
    if (v > 1000 || (*p >= '0' && *p <= '9'))
        return false;
    *q = v;
    *pp = p;
    return true;
}

/* Folds one Accept-Encoding value into the lowest q seen for gzip (or
 * x-gzip) and for "*"; -1 stands for "not named". */
static void scan_accept(const char *p, int *gzip_q, int *star_q)
{
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *name = p;
        while (is_tchar(*p))
            p++;
        size_t name_len = (size_t)(p - name);
        int q = 1000;
        bool ok = name_len > 0;
        p = skip_ows(p);
        if (ok && *p == ';') {
            p = skip_ows(p + 1);
            ok = (*p == 'q' || *p == 'Q') && p[1] == '=';
            if (ok) {
                p += 2;
                ok = parse_qvalue(&p, &q);
            }
            p = skip_ows(p);
        }
        if (*p && *p != ',')
            ok = false;
        while (*p && *p != ',')
            p++;
        if (!ok)
            continue;
        int *slot = NULL;
        if ((name_len == 4 && strncasecmp(name, "gzip", 4) == 0) ||
            (name_len == 6 && strncasecmp(name, "x-gzip", 6) == 0))
            slot = gzip_q;
        else if (name_len == 1 && *name == '*')
            slot = star_q;
        if (slot && (*slot < 0 || q < *slot))
            *slot = q;
    }
}

static int effective_gzip_q(int gzip_q, int star_q)
{
    return gzip_q >= 0 ? gzip_q : star_q >= 0 ? star_q : 0;
}

int gw_front_accept_gzip_q(const char *value)
{
    int gzip_q = -1, star_q = -1;
    if (value)
        scan_accept(value, &gzip_q, &star_q);
    return effective_gzip_q(gzip_q, star_q);
}

/* The media type of a Content-Type value: start and length, without
 * parameters or surrounding space. */
static size_t media_type(const char *ct, const char **start)
{
    ct = skip_ows(ct);
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    *start = ct;
    return n;
}

bool gw_front_type_listed(const char *types, const char *content_type)
{
    if (!types || !content_type)
        return false;
    const char *mt;
    size_t mn = media_type(content_type, &mt);
    const char *slash = memchr(mt, '/', mn);
    if (!slash)
        return false;
    size_t top = (size_t)(slash - mt) + 1; /* "text/" */
    for (const char *p = types; *p;) {
        p = skip_ows(p);
        size_t n = strcspn(p, ",");
        size_t tn = n;
        while (tn && (p[tn - 1] == ' ' || p[tn - 1] == '\t'))
            tn--;
        if (tn == 3 && memcmp(p, "*/*", 3) == 0)
            return true;
        if (tn >= 2 && p[tn - 2] == '/' && p[tn - 1] == '*') {
            if (tn - 1 == top && strncasecmp(p, mt, top) == 0 && mn > top)
                return true;
        } else if (tn == mn && strncasecmp(p, mt, mn) == 0) {
            return true;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

/* "type/subtype" or "type/\*", tokens only. */
static bool valid_type(const char *t)
{
    const char *slash = strchr(t, '/');
    if (!slash || slash == t || !slash[1])
        return false;
    /* '*' is a tchar, but a star means something only as a whole subtype
     * (a type, a slash and a star; or star, slash, star): anywhere else it
     * would never match a response's type. */
    if (strcmp(t, "*/*") == 0)
        return true;
    for (const char *p = t; p < slash; p++)
        if (!is_tchar(*p) || *p == '*')
            return false;
    if (strcmp(slash + 1, "*") == 0)
        return true;
    for (const char *p = slash + 1; *p; p++)
        if (!is_tchar(*p) || *p == '*')
            return false;
    return true;
}

int gw_front_compression_set_types(gw_front_compression *c, const char *const *types, size_t n,
                                   gw_error *e)
{
    char joined[GW_FRONT_GZIP_TYPES_MAX];
    size_t len = 0;
    joined[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (!types[i] || !valid_type(types[i]))
            return gw_error_set(e, GW_EINVAL, "types[%zu]: expected a media type "
                                "\"type/subtype\" or \"type/*\"", i);
        size_t tl = strlen(types[i]);
        if (len + (len ? 1 : 0) + tl >= sizeof joined)
            return gw_error_set(e, GW_ELIMIT, "types: longer than %d bytes together",
                                GW_FRONT_GZIP_TYPES_MAX - 1);
        if (len)
            joined[len++] = ',';
        memcpy(joined + len, types[i], tl + 1);
        len += tl;
    }
    memcpy(c->types, joined, len + 1);
    return 0;
}

/* What an answer gets: nothing, only "Vary: Accept-Encoding" (it would be
 * compressed for a client that asked), or gzip. */
typedef enum gz_verdict { GZ_NO, GZ_VARY, GZ_YES } gz_verdict;

typedef struct gz_scan {
    const char *content_type;
    bool has_encoding;
    bool no_transform;
    bool vary_done;      /* a Vary already names Accept-Encoding (or is "*") */
} gz_scan;

/* Whether a comma-separated header value holds token (case-insensitive). */
static bool list_has(const char *v, const char *token)
{
    size_t tl = strlen(token);
    for (const char *p = v; *p;) {
        p = skip_ows(p);
        size_t n = strcspn(p, ",;");
        size_t k = n;
        while (k && (p[k - 1] == ' ' || p[k - 1] == '\t'))
            k--;
        if (k == tl && strncasecmp(p, token, tl) == 0)
            return true;
        p += n;
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    return false;
}

static enum MHD_Result accept_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    int *q = cls;
    if (value && strcasecmp(key, "accept-encoding") == 0)
        scan_accept(value, &q[0], &q[1]);
    return MHD_YES;
}

static gz_verdict gzip_verdict(gw_front_req *r, int status, const gw_front_header *h, size_t n,
                               bool stream, size_t len, gz_scan *s)
{
    const gw_front_compression *c = &r->f->o.compression;
    memset(s, 0, sizeof *s);
    if (!c->enabled || status < 200 || status == 204 || status == 304 ||
        (r->method && strcmp(r->method, "HEAD") == 0) || (!stream && (len == 0 || len < c->min_bytes)))
        return GZ_NO;
    for (size_t i = 0; i < n; i++) {
        const char *nm = h[i].name, *v = h[i].value;
        if (!nm || !v)
            continue;
        if (strcasecmp(nm, "content-type") == 0)
            s->content_type = v;
        else if (strcasecmp(nm, "content-encoding") == 0)
            s->has_encoding = true;
        else if (strcasecmp(nm, "cache-control") == 0 && list_has(v, "no-transform"))
            s->no_transform = true;
        else if (strcasecmp(nm, "vary") == 0 &&
                 (list_has(v, "accept-encoding") || list_has(v, "*")))
            s->vary_done = true;
    }
    /* gRPC-Web carries its own framing (and grpc-encoding): never, even if
     * someone lists it. */
    if (!s->content_type || s->has_encoding || s->no_transform ||
        strncasecmp(skip_ows(s->content_type), "application/grpc", 16) == 0 ||
        !gw_front_type_listed(c->types, s->content_type))
        return GZ_NO;
    int q[2] = {-1, -1};
    MHD_get_connection_values(r->mc, MHD_HEADER_KIND, accept_header, q);
    return effective_gzip_q(q[0], q[1]) > 0 ? GZ_YES : GZ_VARY;
}

/* A 4 KiB window (2^12, +16: gzip wrapping) and memLevel 5, Envoy's
 * compressor defaults: about 32 KiB per deflate state instead of zlib's
 * 256 KiB, which matters for many long-lived compressed streams; JSON
 * repeats its keys within a few KiB, so the ratio stays close
 * (docs/front.md has the measured RSS and sizes). */
#define GZ_WINDOW_BITS (12 + 16)
#define GZ_MEM_LEVEL 5

static int gz_init(z_stream *z, int level)
{
    memset(z, 0, sizeof *z);
    int rc = deflateInit2(z, level, Z_DEFLATED, GZ_WINDOW_BITS, GZ_MEM_LEVEL,
                          Z_DEFAULT_STRATEGY);
    return rc == Z_OK ? 0 : rc == Z_MEM_ERROR ? GW_ENOMEM : GW_EINVAL;
}

/*
 * body as gzip in a new malloc'd buffer (*out, *out_len) of at most len
 * bytes. Returns 0, GW_ERANGE (it would not shrink: send it as it is) or
 * GW_ENOMEM.
 */
static int gzip_whole(gw_front *f, const void *body, size_t len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    if (len > UINT_MAX)
        return GW_ERANGE;
    if (!f->whole_z_ready) {
        int rc = gz_init(&f->whole_z, f->o.compression.level);
        if (rc)
            return rc;
        f->whole_z_ready = true;
    } else if (deflateReset(&f->whole_z) != Z_OK) {
        return GW_ERANGE;
    }
    /* A buffer as long as the input: what does not fit would not shrink. */
    uint8_t *buf = malloc(len);
    if (!buf)
        return GW_ENOMEM;
    z_stream *z = &f->whole_z;
    z->next_in = (Bytef *)(uintptr_t)body;
    z->avail_in = (uInt)len;
    z->next_out = buf;
    z->avail_out = (uInt)len;
    if (deflate(z, Z_FINISH) != Z_STREAM_END) {
        free(buf);
        return GW_ERANGE;
    }
    *out = buf;
    *out_len = len - z->avail_out;
    return 0;
}

/* The state of one compressed stream. */
#define GZ_STREAM_INPUT (16 * 1024)
struct front_gzip {
    z_stream z;
    int flush;        /* 0: the last piece is out; else Z_SYNC_FLUSH or
                         Z_FINISH still to complete (output did not fit) */
    bool ended;       /* Z_STREAM_END written */
    uint8_t in[GZ_STREAM_INPUT];
};

static void gz_free(gw_front_req *r)
{
    if (!r->gz)
        return;
    deflateEnd(&r->gz->z);
    free(r->gz);
    r->gz = NULL;
}

static void suspend(gw_front_req *r);

/*
 * read_body for a compressed stream: takes one piece from ops->read,
 * deflates it with Z_SYNC_FLUSH so that it is decodable at once, and asks
 * for the next only once the flush is complete. Returns as read_body.
 */
static ssize_t read_gzip(gw_front_req *r, char *buf, size_t max)
{
    front_gzip *g = r->gz;
    if (max > UINT_MAX)
        max = UINT_MAX;
    /* Twice at most: a flush that zlib finds already complete (nothing
     * written) is followed by the next piece. */
    for (int turn = 0; turn < 2; turn++) {
        if (g->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!g->flush) {
            long n = r->ops->read(r->owner, g->in, sizeof g->in);
            if (n == 0) {
                if (r->f->stopping)
                    return MHD_CONTENT_READER_END_WITH_ERROR;
                suspend(r);
                return 0;
            }
            if (n == GW_FRONT_EOF) {
                g->z.avail_in = 0;
                g->flush = Z_FINISH;
            } else if (n > 0 && (size_t)n <= sizeof g->in) {
                g->z.next_in = g->in;
                g->z.avail_in = (uInt)n;
                g->flush = Z_SYNC_FLUSH;
            } else {
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
        }
        g->z.next_out = (Bytef *)buf;
        g->z.avail_out = (uInt)max;
        int rc = deflate(&g->z, g->flush);
        size_t produced = max - g->z.avail_out;
        if (rc == Z_STREAM_END)
            g->ended = true;
        else if (rc != Z_OK && rc != Z_BUF_ERROR)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        /* Room left means the flush is complete and the input all taken. */
        if (g->flush == Z_SYNC_FLUSH && g->z.avail_out > 0)
            g->flush = 0;
        if (produced)
            return (ssize_t)produced;
        if (g->flush == Z_FINISH && !g->ended)
            break;
    }
    /* zlib wrote nothing into free room twice: returning 0 without
     * suspending would spin, so the stream ends in error instead. */
    return g->ended ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

/* ---- responses ----------------------------------------------------------------- */

static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    gw_front_req *r = cls;
    if (r->client_gone || !r->ops || r->close_now)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (r->gz)
        return read_gzip(r, buf, max);
    long n = r->ops->read(r->owner, (uint8_t *)buf, max);
    if (n > 0)
        return n;
    if (n == 0) {
        if (r->f->stopping)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        suspend(r);
        return 0;
    }
    return n == GW_FRONT_EOF ? MHD_CONTENT_READER_END_OF_STREAM
                             : MHD_CONTENT_READER_END_WITH_ERROR;
}

/* What MHD_add_response_header of 0.9.75 accepts (its add_response_entry
 * and the Content-Length / Transfer-Encoding special cases). */
static bool mhd_accepts(const char *name, size_t nl, const char *value, size_t vl)
{
    if (nl == 0 || vl == 0 || memchr(name, 0, nl) || memchr(value, 0, vl))
        return false;
    for (size_t i = 0; i < nl; i++)
        if (name[i] == '\r' || name[i] == '\n' || name[i] == ' ' || name[i] == '\t')
            return false;
    if (memchr(value, '\r', vl) || memchr(value, '\n', vl))
        return false;
    if (nl == 14 && strncasecmp(name, "content-length", 14) == 0)
        return false;
    if (nl == 17 && strncasecmp(name, "transfer-encoding", 17) == 0)
        return vl == 7 && strncasecmp(value, "chunked", 7) == 0;
    return true;
}

bool gw_front_header_forwardable(const char *name, size_t name_len, const char *value,
                                 size_t value_len)
{
    static const char *const conn_only[] = {
        "connection", "keep-alive", "upgrade", "proxy-connection", "transfer-encoding",
        "te", "trailer", "content-length",
    };
    if (!name || !value || !mhd_accepts(name, name_len, value, value_len))
        return false;
    for (size_t i = 0; i < GW_ARRAY_LEN(conn_only); i++)
        if (strlen(conn_only[i]) == name_len && strncasecmp(name, conn_only[i], name_len) == 0)
            return false;
    return true;
}

/* gzip answers add Content-Encoding and Vary; GZ_VARY only the latter. */
static int set_response(gw_front_req *r, struct MHD_Response *resp, int status,
                        const gw_front_header *headers, size_t n, bool stream,
                        gz_verdict gz, const gz_scan *scan)
{
    if (!resp)
        return GW_ENOMEM;
    if ((gz == GZ_YES &&
         MHD_add_response_header(resp, "Content-Encoding", "gzip") != MHD_YES) ||
        (gz != GZ_NO && !scan->vary_done &&
         MHD_add_response_header(resp, "Vary", "Accept-Encoding") != MHD_YES)) {
        MHD_destroy_response(resp);
        return GW_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const char *nm = headers[i].name, *v = headers[i].value;
        if (!nm || !v || !mhd_accepts(nm, strlen(nm), v, strlen(v))) {
            /* Refused by libmicrohttpd: leave the header out, keep the answer. */
            GW_DEBUG("front: response header '%.64s' left out", nm ? nm : "");
            continue;
        }
        if (MHD_add_response_header(resp, nm, v) != MHD_YES) {
            MHD_destroy_response(resp);
            return GW_ENOMEM;
        }
    }
    r->resp = resp;
    r->status = status;
    /* A connection waiting for its answer resumes to queue it. A final
     * answer also resumes a connection paused in the middle of the request
     * body (backpressure): on_access then drops the rest of the body and
     * queues the answer at its end. A streamed head waits for the body. */
    if (r->body_done || !stream)
        resume(r);
    return 0;
}

/* ---- early answers --------------------------------------------------------------
 *
 * libmicrohttpd (0.9.75 and 1.0.1 alike: MHD_queue_response accepts only the
 * HEADERS_PROCESSED and FULL_REQ_RECEIVED states) cannot send an answer
 * while a request body is still arriving. An answer given mid-body (an
 * early backend error) is therefore queued at the end of the body, after
 * the rest was read and dropped — when that rest fits in discard_limit.
 * When it does not, the answer is written to the socket here, bypassing
 * libmicrohttpd: it is serialized when it is set (identity, Content-Length,
 * Connection: close), sent with one send() once the discard budget would be
 * exceeded, the write side is shut down (FIN after the answer), and the
 * rest of the body is read and dropped for at most EARLY_LINGER_MS (a
 * lingering close, as nginx does) so that the client reads the answer
 * before any reset. Not over TLS (the bytes would have to go through
 * libmicrohttpd's session): there the connection is closed as before.
 */

#define EARLY_LINGER_MS 5000

static void early_prepare(gw_front_req *r, int status, const gw_front_header *headers,
                          size_t n, const void *body, size_t body_len)
{
    if (r->early || r->f->o.tls_cert_pem || !r->conn || r->conn->fd < 0)
        return;
    gw_buf b;
    gw_buf_init(&b, 64 * 1024 + body_len);
    const char *reason = MHD_get_reason_phrase_for((unsigned)status);
    int rc = gw_buf_printf(&b, "HTTP/1.1 %d %s\r\n", status, reason && *reason ? reason : "");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *nm = headers[i].name, *v = headers[i].value;
        if (!nm || !v || !mhd_accepts(nm, strlen(nm), v, strlen(v)) ||
            strcasecmp(nm, "connection") == 0 || strcasecmp(nm, "transfer-encoding") == 0)
            continue;
        rc = gw_buf_printf(&b, "%s: %s\r\n", nm, v);
    }
    if (rc == 0)
        rc = gw_buf_printf(&b, "Content-Length: %zu\r\nConnection: close\r\n\r\n", body_len);
    if (rc == 0 && body_len)
        rc = gw_buf_append(&b, body, body_len);
    if (rc) {
        gw_buf_free(&b);
        return; /* no early answer: the connection is closed instead */
    }
    r->early = (char *)gw_buf_detach(&b, &r->early_len);
}

/* Sends the prepared answer now; false when there is none or it did not go
 * out whole (the caller closes). */
static void body_end(gw_front_req *r);

static bool early_send(gw_front_req *r)
{
    if (!r->early || !r->conn || r->conn->fd < 0)
        return false;
    ssize_t sent = send(r->conn->fd, r->early, r->early_len, MSG_NOSIGNAL);
    bool whole = sent == (ssize_t)r->early_len;
    free(r->early);
    r->early = NULL;
    if (!whole)
        return false;
    shutdown(r->conn->fd, SHUT_WR);
    r->lingering = true;
    /* The body deadline ends here: the linger (EARLY_LINGER_MS) bounds
     * what is left, and its 408 could not be sent any more. */
    body_end(r);
    /* The connection timer (idle / header) is not running during a body;
     * on expiry it shuts the socket down and MHD closes. */
    gw_loop_timer_start(r->f->loop, &r->conn->timer,
                        gw_loop_now(r->f->loop) + EARLY_LINGER_MS * GW_MS);
    GW_DEBUG("front: fd %d: answered %d before the end of the body, lingering",
             r->conn->fd, r->status);
    return true;
}

int gw_front_req_respond(gw_front_req *r, int status, const gw_front_header *headers,
                         size_t n, const void *body, size_t body_len)
{
    if (r->resp || r->resp_queued)
        return GW_ESTATE;
    gz_scan scan;
    gz_verdict gz = gzip_verdict(r, status, headers, n, false, body_len, &scan);
    struct MHD_Response *resp = NULL;
    if (gz == GZ_YES) {
        uint8_t *packed;
        size_t packed_len;
        int rc = gzip_whole(r->f, body, body_len, &packed, &packed_len);
        if (rc == GW_ENOMEM)
            return rc;
        if (rc == 0) {
            resp = MHD_create_response_from_buffer(packed_len, packed, MHD_RESPMEM_MUST_FREE);
            if (!resp) {
                free(packed);
                return GW_ENOMEM;
            }
        } else {
            gz = GZ_VARY; /* it would not shrink */
        }
    }
    if (!resp)
        resp = MHD_create_response_from_buffer(body_len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r->body_done && r->has_body)
        early_prepare(r, status, headers, n, body, body_len);
    return set_response(r, resp, status, headers, n, false, gz, &scan);
}

int gw_front_req_respond_fd(gw_front_req *r, int status, const gw_front_header *headers,
                            size_t n, int fd, uint64_t offset, uint64_t size)
{
    if (r->resp || r->resp_queued) {
        close(fd);
        return GW_ESTATE;
    }
    /* From here on the response owns fd and closes it when destroyed. */
    struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(size, fd, offset);
    if (!resp) {
        close(fd);
        return GW_ENOMEM;
    }
    gz_scan none = {0};
    return set_response(r, resp, status, headers, n, false, GZ_NO, &none);
}

int gw_front_req_respond_stream(gw_front_req *r, int status,
                                const gw_front_header *headers, size_t n)
{
    if (r->resp || r->resp_queued || !r->ops)
        return GW_ESTATE;
    gz_scan scan;
    gz_verdict gz = gzip_verdict(r, status, headers, n, true, 0, &scan);
    if (gz == GZ_YES) {
        r->gz = malloc(sizeof *r->gz);
        if (!r->gz)
            return GW_ENOMEM;
        int zrc = gz_init(&r->gz->z, r->f->o.compression.level);
        if (zrc) {
            free(r->gz);
            r->gz = NULL;
            return GW_ENOMEM;
        }
        r->gz->flush = 0;
        r->gz->ended = false;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, read_body, r, NULL);
#if MHD_VERSION < 0x01000000
    /* HEAD (-Dlegacy_mhd only): libmicrohttpd 0.9.75 sends the chunked
     * terminator "0\r\n\r\n" after the head, bytes a HEAD answer must not
     * have (the next answer on the connection would not parse). Without
     * chunking, the head is followed by nothing and the connection closes.
     * 1.0.1 sends the head alone (docs/rest.md). */
    if (resp && r->method && strcmp(r->method, "HEAD") == 0)
        MHD_set_response_options(resp, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT, MHD_RO_END);
#endif
    int rc = set_response(r, resp, status, headers, n, true, gz, &scan);
    if (rc == 0)
        r->resp_stream = true;
    else
        gz_free(r);
    return rc;
}

static enum MHD_Result queue(gw_front_req *r)
{
    enum MHD_Result ret = MHD_queue_response(r->mc, (unsigned)r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    r->resp_queued = true;
    return ret;
}

/* An answer given before reading the body: sent at once with Connection:
 * close (MHD does that when queueing in the first call). */
static enum MHD_Result reject(gw_front_req *r, int status, const char *text)
{
    static const gw_front_header h[] = {{"Content-Type", "text/plain; charset=utf-8"},
                                        {"Connection", "close"}};
    if (gw_front_req_respond(r, status, h, GW_ARRAY_LEN(h), text, strlen(text)) != 0)
        return MHD_NO;
    return queue(r);
}

/* With a trust store configured: the client sent a certificate and GnuTLS
 * verified it against that store (libmicrohttpd only asks for it). */
static bool client_cert_ok(struct MHD_Connection *mc)
{
#ifdef GW_HAVE_GNUTLS
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return false;
    gnutls_session_t s = (gnutls_session_t)ci->tls_session;
    unsigned n = 0;
    if (!gnutls_certificate_get_peers(s, &n) || n == 0)
        return false;
    unsigned status = 0;
    return gnutls_certificate_verify_peers2(s, &status) == GNUTLS_E_SUCCESS && status == 0;
#else
    (void)mc;
    return false;
#endif
}

/* ---- requests -------------------------------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
    gw_front *f = cls;
    size_t n = strlen(uri);
    gw_front_req *r = calloc(1, sizeof *r + n + 1);
    if (!r)
        return NULL;
    memcpy(r->uri, uri, n + 1);
    r->f = f;
    r->mc = mc;
    r->next = f->reqs;
    if (f->reqs)
        f->reqs->prev = r;
    f->reqs = r;
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    gw_front *f = cls;
    gw_front_req *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    req_finish(f, r, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
}

/* The end of a request: from on_completed, or from the connection's close
 * when libmicrohttpd never completed it (it answers 413 itself mid-body
 * after our access handler ran, and skips the completion callback when the
 * connection is then closed: tests/fuzz/front_http/leak-421-bytes). */
static void req_finish(gw_front *f, gw_front_req *r, bool completed)
{
    if (r->conn && r->conn->cur == r)
        r->conn->cur = NULL;
    gw_loop_io_remove(f->loop, &r->watch);
    if (r->conn && r->conn->suspended == r)
        r->conn->suspended = NULL;
    if (r->ops) {
        f->active--;
        r->ops->on_close(r->owner, completed);
    }
    if (r->up_ops) {
        const gw_front_upgrade_ops *uo = r->up_ops;
        r->up_ops = NULL;
        uo->on_failed(r->up_owner);
    }
    if (r->resp)
        MHD_destroy_response(r->resp);
    gz_free(r);
    free(r->early);
    if (r->prev)
        r->prev->next = r->next;
    else
        f->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    if (r->conn && r->conn->body_req == r)
        r->conn->body_req = NULL;
    /* The connection may carry another request: give it the idle time
     * (first the park timer, when parking is on and comes sooner). If the
     * client has sent its last byte, only what MHD has buffered can
     * follow; look again shortly (on_conn_watch). */
    trim_note(f);
    if (r->conn && !r->conn->upgraded && !f->stopping) {
        front_conn *c = r->conn;
        c->in_request = false;
        c->idle = true;
        c->idle_since = gw_loop_now(f->loop);
        c->peer_check = c->peer_closed;
        uint32_t ms = f->o.idle_timeout_ms;
        if (f->o.park_idle_ms && !f->o.tls_cert_pem && (!ms || f->o.park_idle_ms < ms))
            ms = f->o.park_idle_ms;
        if (c->peer_check)
            gw_loop_timer_start(f->loop, &c->timer, c->idle_since + PEER_CHECK_MS * GW_MS);
        else if (ms)
            gw_loop_timer_start(f->loop, &c->timer, c->idle_since + ms * GW_MS);
    }
    free(r);
}

typedef struct header_scan {
    unsigned count;
    const char *content_length;
    const char *transfer_encoding;
    const char *content_type;
    unsigned te_count;
    unsigned cl_count;
    unsigned host_count;
    bool expect_continue;
} header_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    header_scan *s = cls;
    s->count++;
    if (strcasecmp(key, "content-length") == 0) {
        s->content_length = value;
        s->cl_count++;
    } else if (strcasecmp(key, "transfer-encoding") == 0) {
        s->transfer_encoding = value;
        s->te_count++;
    } else if (strcasecmp(key, "host") == 0) {
        s->host_count++;
    } else if (strcasecmp(key, "content-type") == 0) {
        s->content_type = value;
    } else if (strcasecmp(key, "expect") == 0 && strcasecmp(value, "100-continue") == 0) {
        s->expect_continue = true;
    }
    return MHD_YES;
}

/* The path of an absolute-form target ("http://host:1/v1/x?q" → "/v1/x?q",
 * "http://host" → ""), or target itself (RFC 9112 3.2.2: a server must
 * accept the absolute form and then ignores Host). */
static const char *origin_form(const char *target)
{
    size_t n = 0;
    if (strncasecmp(target, "http://", 7) == 0)
        n = 7;
    else if (strncasecmp(target, "https://", 8) == 0)
        n = 8;
    else
        return target;
    return target + n + strcspn(target + n, "/?");
}

/* The request body's pace (front.h): the budget runs from the end of the
 * headers; every body_min_rate bytes add a second, never beyond
 * body_timeout_ms from now. */
static void body_begin(gw_front_req *r)
{
    gw_front *f = r->f;
    front_conn *c = r->conn;
    if (!c || !f->o.body_timeout_ms)
        return;
    c->body_req = r;
    c->body_deadline_ns = gw_loop_now(f->loop) + f->o.body_timeout_ms * GW_MS;
    c->peer_check = c->peer_closed; /* see on_conn_watch */
    gw_loop_timer_start(f->loop, &c->timer,
                        c->peer_check ? gw_loop_now(f->loop) + PEER_CHECK_MS * GW_MS
                                      : c->body_deadline_ns);
}

static void body_progress(gw_front_req *r, size_t n)
{
    gw_front *f = r->f;
    front_conn *c = r->conn;
    if (!c || c->body_req != r || n == 0)
        return;
    uint64_t cap = gw_loop_now(f->loop) + f->o.body_timeout_ms * GW_MS;
    uint64_t d = cap;
    uint64_t rate = f->o.body_min_rate;
    if (rate)
        d = c->body_deadline_ns + n / rate * GW_SEC + n % rate * GW_SEC / rate;
    c->body_deadline_ns = d < cap ? d : cap;
    if (!c->peer_check)
        gw_loop_timer_start(f->loop, &c->timer, c->body_deadline_ns);
}

static void body_end(gw_front_req *r)
{
    front_conn *c = r->conn;
    if (!c || c->body_req != r)
        return;
    c->body_req = NULL;
    gw_loop_timer_stop(r->f->loop, &c->timer);
}

/*
 * The body came too slowly. MHD cannot queue an answer in the middle of a
 * body, and has written nothing for this request yet, so on plain HTTP the
 * 408 goes out on the socket here (with TLS the connection just closes);
 * the shutdown then makes MHD see EOF and close the connection. The
 * handler's work is cancelled as if the client had gone.
 */
static void body_timeout(front_conn *c)
{
    gw_front *f = c->f;
    gw_front_req *r = c->body_req;
    c->body_req = NULL;
    if (r && r->early && early_send(r)) {
        /* Already answered (an early answer waiting for the end of the
         * body): that answer, not a 408, goes out now, then the usual
         * lingering close. */
        GW_DEBUG("front: fd %d: request body too slow after an early answer", c->fd);
        return;
    }
    bool grpc_web = r && r->grpc_web;
    GW_DEBUG("front: fd %d: request body too slow: 408, closing", c->fd);
    if (r && r->ops && !r->client_gone) {
        r->client_gone = true;
        if (r->ops->on_client_gone)
            r->ops->on_client_gone(r->owner);
    } else if (r) {
        r->client_gone = true;
    }
    if (!f->o.tls_cert_pem && c->fd >= 0) {
        static const char text[] = "request body not received in time\n";
        char head[512];
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                         "Content-Type: text/plain; charset=utf-8\r\n%s"
                         "Content-Length: %zu\r\n\r\n%s",
                         grpc_web ? "grpc-status: 4\r\ngrpc-message: request body not "
                                    "received in time\r\n" : "",
                         sizeof text - 1, text);
        if (n > 0 && (size_t)n < sizeof head &&
            send(c->fd, head, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
            GW_DEBUG("front: fd %d: 408 not sent: %s", c->fd, strerror(errno));
    }
    shutdown(c->fd, SHUT_RDWR);
    wake_run(f);
}

static enum MHD_Result first_call(gw_front *f, gw_front_req *r, struct MHD_Connection *mc,
                                  const char *url, const char *method, const char *version)
{
    r->started = true;
    r->mc = mc;
    r->method = method;
    r->path = origin_form(url);
    if (!r->path[0])
        r->path = "/"; /* "http://host" */
    const char *t = origin_form(r->uri);
    if (t != r->uri) {
        /* The raw target too, in place (t is at least 7 bytes in). */
        size_t n = strlen(t);
        if (t[0] == '/') {
            memmove(r->uri, t, n + 1);
        } else {
            memmove(r->uri + 1, t, n + 1);
            r->uri[0] = '/';
        }
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->conn = ci ? ci->socket_context : NULL;
    if (r->conn) {
        gw_loop_timer_stop(f->loop, &r->conn->timer);
        r->conn->in_request = true;
        r->conn->cur = r;
        r->conn->peer_check = false;
        r->conn->idle = false;
        park_cancel(r->conn);
    }

    header_scan s = {0};
    MHD_get_connection_values(mc, MHD_HEADER_KIND, scan_header, &s);
    r->grpc_web = s.content_type &&
                  strncasecmp(skip_ows(s.content_type), "application/grpc-web", 20) == 0;
    /* What libmicrohttpd lets through at every discipline level: it reads
     * the first of two Content-Length fields, and takes any Host. A proxy
     * in front may have read the other one (smuggling); RFC 9112 6.3 and
     * 3.2: 400. */
    if (s.cl_count > 1)
        return reject(r, 400, "more than one Content-Length field\n");
    if (s.host_count > 1)
        return reject(r, 400, "more than one Host field\n");
    if (s.host_count == 0 && strcmp(version, MHD_HTTP_VERSION_1_1) == 0)
        return reject(r, 400, "HTTP/1.1 request without Host\n");
    /* libmicrohttpd 0.9.75 lets Transfer-Encoding override Content-Length:
     * a front proxy may have read the body the other way (smuggling). */
    if (s.transfer_encoding && s.content_length)
        return reject(r, 400, "Content-Length and Transfer-Encoding together\n");
    if (s.transfer_encoding && (s.te_count > 1 || strcasecmp(s.transfer_encoding, "chunked")))
        return reject(r, 400, "unsupported Transfer-Encoding (only chunked)\n");
    if (s.count > f->o.max_header_count)
        return reject(r, 431, "too many header fields\n");
    if (f->o.tls_trust_pem && !client_cert_ok(mc))
        return reject(r, 403, "a valid client certificate is required\n");
    const char *cls = s.content_length;
    r->has_body = s.transfer_encoding || (cls && strspn(cls, "0") != strlen(cls));
    r->expect_continue = s.expect_continue;

    f->handler->on_request(f->server, r);
    if (!r->resp && !r->ops)
        return reject(r, 500, "no handler answered\n");
    long long cl = gw_front_req_content_length(r);
    bool chunked = s.transfer_encoding != NULL;
    if (r->resp && !r->ops) {
        /* A body too big to drop politely: answer now and close. */
        if (r->close_now || cl > (long long)f->o.discard_limit ||
            (chunked && f->o.discard_limit == 0)) {
            /* A client that waits for 100 Continue sends no body: MHD's
             * own answer is enough. One that is already uploading gets
             * the answer and a lingering close. */
            if (r->has_body && !r->expect_continue && early_send(r))
                return MHD_YES;
            MHD_add_response_header(r->resp, "Connection", "close");
            return queue(r);
        }
    }
    if (cl > 0 || chunked)
        body_begin(r);
    return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *mc, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_size, void **con_cls)
{
    gw_front *f = cls;
    gw_front_req *r = *con_cls;
    if (!r)
        return MHD_NO; /* out of memory in on_uri */
    if (!r->started)
        return first_call(f, r, mc, url, method, version);
    if (r->client_gone)
        return MHD_NO;
    /* The handler could not set any answer (gw_front_req_close_now). */
    if (r->close_now && r->ops && !r->resp && !r->resp_queued)
        return MHD_NO;

    if (r->lingering) {
        /* The answer went out early: drop whatever still comes until the
         * linger timer, then (or at the end of the body) close. */
        if (*upload_size == 0)
            return MHD_NO; /* the end of the body */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if ((r->resp && !r->resp_stream) || r->resp_queued || !r->ops) {
            /* Already answered: read and drop the rest, within reason. A
             * streamed answer still gets the body: it is queued at the end
             * of the body anyway, and the handler may need every byte.
             * Beyond the budget (or a declared rest beyond it), the answer
             * goes out early and the connection lingers, then closes. */
            long long cl = gw_front_req_content_length(r);
            r->discarded += *upload_size;
            body_progress(r, *upload_size);
            r->body_seen += *upload_size;
            *upload_size = 0;
            bool over = r->discarded > f->o.discard_limit;
            if (!over && cl >= 0 && (unsigned long long)cl > r->body_seen)
                over = (unsigned long long)cl - r->body_seen > f->o.discard_limit - r->discarded;
            if (!over)
                return MHD_YES;
            return early_send(r) ? MHD_YES : MHD_NO;
        }
        size_t offered = *upload_size;
        size_t took = r->ops->on_body(r->owner, (const uint8_t *)upload_data, offered);
        if (took > offered)
            took = offered;
        body_progress(r, took);
        r->body_seen += took;
        *upload_size = offered - took;
        if (*upload_size > 0 && !(r->resp && !r->resp_stream))
            suspend(r);
        return MHD_YES;
    }

    if (!r->body_done) {
        r->body_done = true;
        body_end(r);
        if (r->ops)
            r->ops->on_body_end(r->owner);
        if (r->client_gone)
            return MHD_NO;
    }
    if (r->resp)
        return queue(r);
    if (r->resp_queued)
        return MHD_YES;
    /* The answer is not known yet (waiting for the backend). */
    suspend(r);
    return MHD_YES;
}

/* ---- request accessors ---------------------------------------------------------- */

const char *gw_front_req_method(const gw_front_req *r) { return r->method; }
const char *gw_front_req_path(const gw_front_req *r) { return r->path; }
const char *gw_front_req_target(const gw_front_req *r) { return r->uri; }

void gw_front_req_peer(const gw_front_req *r, char *buf, size_t cap)
{
    uint8_t ip[16];
    uint8_t n = client_ip(r->mc, ip);
    if (cap)
        buf[0] = 0;
    if (n && !inet_ntop(n == 4 ? AF_INET : AF_INET6, ip, buf, (socklen_t)cap) && cap)
        buf[0] = 0;
}
gw_loop *gw_front_req_loop(const gw_front_req *r) { return r->f->loop; }

const char *gw_front_req_header(const gw_front_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND, name);
}

typedef struct iter_ctx {
    bool (*fn)(void *ctx, const char *name, const char *value);
    void *ctx;
} iter_ctx;

static enum MHD_Result iter_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    iter_ctx *it = cls;
    return it->fn(it->ctx, key, value ? value : "") ? MHD_YES : MHD_NO;
}

void gw_front_req_headers(const gw_front_req *r,
                          bool (*fn)(void *ctx, const char *name, const char *value),
                          void *ctx)
{
    iter_ctx it = {fn, ctx};
    MHD_get_connection_values(r->mc, MHD_HEADER_KIND, iter_header, &it);
}

long long gw_front_req_content_length(const gw_front_req *r)
{
    const char *v = gw_front_req_header(r, "Content-Length");
    if (!v || !*v)
        return -1;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n < 0)
        return -1;
    return n;
}

void gw_front_req_close_now(gw_front_req *r) { r->close_now = true; }

void gw_front_req_attach(gw_front_req *r, const gw_front_req_ops *ops, void *owner)
{
    if (r->ops)
        return;
    r->ops = ops;
    r->owner = owner;
    r->f->active++;
}

/* ---- the daemon ------------------------------------------------------------------ */

static int bind_address(const char *host, uint16_t port, struct sockaddr_storage *ss,
                        gw_error *e)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        return 0;
    }
    if (strcmp(host, "localhost") == 0) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return 0;
    }
    return gw_error_set(e, GW_EINVAL, "listen address '%s' is not a numeric IPv4/IPv6 address",
                        host);
}

/* ---- TLS policy and libmicrohttpd's messages ------------------------------ */

/* A priority string GnuTLS refuses would only make MHD_start_daemon fail
 * without saying why: check it here and name the part it stopped at. */
static int tls_priorities_check(const char *prio, gw_error *e)
{
#ifdef GW_HAVE_GNUTLS
    gnutls_priority_t pc;
    const char *bad = NULL;
    int r = gnutls_priority_init(&pc, prio, &bad);
    if (r != GNUTLS_E_SUCCESS)
        return gw_error_set(e, GW_EINVAL, "TLS priority string (tls.priorities) refused by "
                            "GnuTLS at '%.40s': %s", bad ? bad : prio, gnutls_strerror(r));
    gnutls_priority_deinit(pc);
#else
    (void)prio;
    (void)e;
#endif
    return 0;
}

int gw_front_new(gw_loop *loop, const gw_front_options *o, const gw_front_handler *h,
                 void *server, gw_front **out, gw_error *e)
{
    *out = NULL;
    gw_front *f = calloc(1, sizeof *f);
    if (!f)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    f->loop = loop;
    f->o = *o;
    f->handler = h;
    f->server = server;
    gw_timer_init(&f->mhd_timer, on_mhd_timer, f);
    gw_timer_init(&f->trim_timer, on_trim_timer, f);
    gw_defer_init(&f->run_defer, run_now, f);
    char built[16];
    gw_front_mhd_version_built(built, sizeof built);
    if (strcmp(built, gw_front_mhd_version()) != 0)
        GW_WARN("front: built against libmicrohttpd %s but running %s (another "
                "libmicrohttpd.so.12 found first?)", built, gw_front_mhd_version());

    struct sockaddr_storage ss;
    int rc = bind_address(o->host, o->port, &ss, e);
    if (rc)
        goto out;
    if (o->compression.enabled &&
        (o->compression.level < 1 || o->compression.level > 9)) {
        rc = gw_error_set(e, GW_EINVAL, "compression level %d: expected 1 to 9",
                          o->compression.level);
        goto out;
    }
    if (o->http_strictness < 0 || o->http_strictness > 3) {
        rc = gw_error_set(e, GW_EINVAL, "http_strictness %d: expected 0 to 3",
                          o->http_strictness);
        goto out;
    }
    /* MHD_USE_TURBO: among other things, MHD closes sockets without a
     * shutdown(), which parking relies on (see park_begin). */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO |
                     MHD_ALLOW_UPGRADE;
#if MHD_VERSION >= 0x00097707
    /* Each daemon is driven by its worker's thread only: no locks inside
     * libmicrohttpd, no inter-thread channel (docs/front.md). */
    flags |= MHD_USE_NO_THREAD_SAFETY;
#endif
    const char *prio = o->tls_priorities ? o->tls_priorities : GW_FRONT_TLS_PRIORITIES;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem tls[5];
    size_t nt = 0;
    if (o->tls_cert_pem) {
#ifndef GW_HAVE_GNUTLS
        if (o->tls_trust_pem) {
            rc = gw_error_set(e, GW_EINVAL, "client certificates need GnuTLS at build time");
            goto out;
        }
#endif
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES || !o->tls_key_pem) {
            rc = gw_error_set(e, GW_EINVAL, o->tls_key_pem ? "libmicrohttpd has no TLS support"
                                                           : "a TLS certificate needs its key");
            goto out;
        }
        flags |= MHD_USE_TLS;
        tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0,
                                            (void *)(uintptr_t)o->tls_cert_pem};
        tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0,
                                            (void *)(uintptr_t)o->tls_key_pem};
        if (o->tls_trust_pem)
            tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0,
                                                (void *)(uintptr_t)o->tls_trust_pem};
        rc = tls_priorities_check(prio, e);
        if (rc)
            goto out;
        tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                            (void *)(uintptr_t)prio};
    }
    tls[nt] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    struct MHD_OptionItem strict[2] = {{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}};
#if MHD_VERSION >= 0x00097701
    strict[0] = (struct MHD_OptionItem){MHD_OPTION_CLIENT_DISCIPLINE_LVL, o->http_strictness, NULL};
#endif
    f->daemon = MHD_start_daemon(
        flags, o->port, NULL, NULL, on_access, f,
        /* First, so that start-up messages come through it too. */
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, f,
        MHD_OPTION_ARRAY, strict,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)o->connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)(o->ip_limit ? 0 : o->per_ip_limit),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)o->memory_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)o->inactivity_timeout_s,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, f,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, f,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, f,
        MHD_OPTION_ARRAY, tls,
        MHD_OPTION_END);
    if (!f->daemon) {
        rc = gw_error_set(e, GW_EIO, "cannot listen on %s:%u (address in use or not local?)",
                          o->host, o->port);
        goto out;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(f->daemon, MHD_DAEMON_INFO_BIND_PORT);
    f->port = di ? di->port : o->port;
    di = MHD_get_daemon_info(f->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!di) {
        rc = gw_error_set(e, GW_EIO, "libmicrohttpd gave no epoll fd");
        goto out;
    }
    rc = gw_loop_io_add(loop, &f->epoll_io, di->epoll_fd, GW_IO_READ, on_epoll_ready, f);
    if (rc) {
        gw_error_set(e, rc, "cannot watch libmicrohttpd's epoll fd");
        goto out;
    }
    gw_loop_hook_add(loop, &f->hook, mhd_timeout_hook, f);
    schedule_run(f);
    *out = f;
    return 0;
out:
    if (f->daemon)
        MHD_stop_daemon(f->daemon);
    free(f);
    return rc;
}

int gw_front_add_connection(gw_front *f, int fd)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(1)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!f->daemon || f->stopping ||
        MHD_add_connection(f->daemon, fd, (const struct sockaddr *)&a, sizeof a) != MHD_YES) {
        /* MHD closes fd itself on failure (1.0.x); 0.9.75 may not. */
#if MHD_VERSION < 0x01000000
        close(fd);
#endif
        return GW_EIO;
    }
    wake_run(f);
    return 0;
}

uint16_t gw_front_port(const gw_front *f) { return f->port; }
size_t gw_front_upgraded_count(const gw_front *f) { return f->ups_count; }
size_t gw_front_active(const gw_front *f) { return f->active; }

void gw_front_quiesce(gw_front *f)
{
    if (f->quiesced || !f->daemon)
        return;
    f->quiesced = true;
    while (f->parked)
        parked_free(f->parked, true);
    MHD_socket fd = MHD_quiesce_daemon(f->daemon);
    /* External event loop: the socket is ours to close now. */
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

/* ---- protocol upgrade --------------------------------------------------------------- */

struct gw_front_upgraded {
    gw_front *f;
    struct MHD_UpgradeResponseHandle *urh;
    const gw_front_upgrade_ops *ops;
    void *owner;
    gw_front_upgraded *prev, *next;
};

static void upgraded_unlink(gw_front_upgraded *u)
{
    gw_front *f = u->f;
    if (u->prev)
        u->prev->next = u->next;
    else
        f->ups = u->next;
    if (u->next)
        u->next->prev = u->prev;
    f->ups_count--;
}

static void on_mhd_upgrade(void *cls, struct MHD_Connection *mc, void *con_cls, const char *extra,
                           size_t extra_len, MHD_socket sock,
                           struct MHD_UpgradeResponseHandle *urh)
{
    gw_front *f = cls;
    gw_front_req *r = con_cls;
    (void)mc;
    if (!r || !r->up_ops) {
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    const gw_front_upgrade_ops *ops = r->up_ops;
    void *owner = r->up_owner;
    r->up_ops = NULL;
    /* The socket is the owner's now: our peer-closed watch and timers
     * leave it (the owner adds the fd to the same epoll). */
    if (r->conn) {
        r->conn->upgraded = true;
        r->conn->idle = false;
        gw_loop_io_remove(f->loop, &r->conn->watch);
        gw_loop_timer_stop(f->loop, &r->conn->timer);
    }
    gw_front_upgraded *u = calloc(1, sizeof *u);
    int fl = fcntl(sock, F_GETFL);
    if (!u || fl < 0 || fcntl(sock, F_SETFL, fl | O_NONBLOCK) < 0) {
        free(u);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        ops->on_failed(owner);
        return;
    }
    u->f = f;
    u->urh = urh;
    u->ops = ops;
    u->owner = owner;
    u->next = f->ups;
    if (f->ups)
        f->ups->prev = u;
    f->ups = u;
    f->ups_count++;
    ops->on_upgraded(owner, u, sock, (const uint8_t *)extra, extra_len);
}

int gw_front_req_upgrade(gw_front_req *r, const char *protocol, const gw_front_header *headers,
                         size_t n, const gw_front_upgrade_ops *ops, void *owner)
{
    if (r->resp || r->resp_queued || r->up_ops)
        return GW_ESTATE;
    struct MHD_Response *resp = MHD_create_response_for_upgrade(on_mhd_upgrade, r->f);
    if (!resp)
        return GW_ENOMEM;
    /* libmicrohttpd adds "Connection: Upgrade" itself. */
    if (MHD_add_response_header(resp, "Upgrade", protocol) != MHD_YES) {
        MHD_destroy_response(resp);
        return GW_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const char *nm = headers[i].name, *v = headers[i].value;
        if (!nm || !v || !mhd_accepts(nm, strlen(nm), v, strlen(v)))
            continue;
        if (MHD_add_response_header(resp, nm, v) != MHD_YES) {
            MHD_destroy_response(resp);
            return GW_ENOMEM;
        }
    }
    r->resp = resp;
    r->status = 101;
    r->up_ops = ops;
    r->up_owner = owner;
    return 0;
}

void gw_front_upgraded_close(gw_front_upgraded *u)
{
    gw_front *f = u->f;
    upgraded_unlink(u);
    MHD_upgrade_action(u->urh, MHD_UPGRADE_ACTION_CLOSE);
    free(u);
    if (!f->stopping)
        schedule_run(f);
}

static void upgraded_close_all(gw_front *f)
{
    while (f->ups) {
        gw_front_upgraded *u = f->ups;
        upgraded_unlink(u);
        u->ops->on_shutdown(u->owner);
        MHD_upgrade_action(u->urh, MHD_UPGRADE_ACTION_CLOSE);
        free(u);
    }
}

void gw_front_del(gw_front *f)
{
    if (!f)
        return;
    /* Field notes: nothing may suspend again, every suspended connection is
     * resumed, and MHD_stop_daemon runs without another MHD_run. */
    f->stopping = true;
    upgraded_close_all(f);
    for (gw_front_req *r = f->reqs; r; r = r->next) {
        if (r->suspended) {
            if (!r->client_gone && r->ops && r->ops->on_client_gone) {
                r->client_gone = true;
                r->ops->on_client_gone(r->owner);
            }
            r->client_gone = true;
            gw_loop_io_remove(f->loop, &r->watch);
            if (r->conn && r->conn->suspended == r)
                r->conn->suspended = NULL;
            r->suspended = false;
            MHD_resume_connection(r->mc);
        }
    }
    gw_loop_io_remove(f->loop, &f->epoll_io);
    gw_loop_hook_remove(f->loop, &f->hook);
    gw_loop_timer_stop(f->loop, &f->trim_timer);
    while (f->parked)
        parked_free(f->parked, true);
    MHD_stop_daemon(f->daemon);
    /* Closing connections at the limit schedules a run: cancel it after. */
    gw_loop_timer_stop(f->loop, &f->mhd_timer);
    gw_loop_defer_cancel(f->loop, &f->run_defer);
    if (f->whole_z_ready)
        deflateEnd(&f->whole_z);
    free(f);
}
