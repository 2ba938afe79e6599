/*
 * Fuzz target for the whole front end: the input is what one to four
 * clients send (split at each "\x00\xff"), each on its own socketpair handed
 * to a worker's libmicrohttpd daemon with gw_front_add_connection, the way
 * h2o fuzzes its HTTP/1 server. The handler is a stub upstream that drives
 * every path of the front's request API by the first letter of the path:
 *   /a  answered at once             /g  a 3 KB JSON answer (gzip path)
 *   /c  413 + close_now              /s  attached: body taken in halves with
 *   /w  attached: whole answer            wakes, then a streamed answer with
 *       after the body, deferred           "nothing yet" turns in between
 *   anything else: 404
 * The clients write everything, half-close, and read until the server
 * closes. A connection still open after 10 s of loop time is a hang:
 * abort() (libFuzzer's -timeout catches a loop that never returns).
 * Spin check: the loop (woken by the clients' sockets, the daemon and its
 * timers) may not take more than 20000 turns for one input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "front/front.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CONNS 4
#define HANG_NS (10 * GW_SEC)
#define MAX_TURNS 20000

typedef struct stub_call {
    gw_front_req *r;
    gw_defer wake;
    int kind;           /* 's' or 'w' */
    unsigned body_seen;
    unsigned reads;
    bool ended;
    bool closed;
} stub_call;

static gw_loop *loop;
static gw_front *front;

static void stub_wake(void *owner)
{
    stub_call *c = owner;
    if (!c->closed)
        gw_front_req_wake(c->r);
}

static size_t stub_on_body(void *owner, const uint8_t *d, size_t n)
{
    stub_call *c = owner;
    c->body_seen += (unsigned)n;
    if (n > 1 && (c->body_seen & 1)) {
        gw_loop_defer(loop, &c->wake); /* backpressure: take half, wake later */
        return n / 2;
    }
    return n;
}

static void stub_on_body_end(void *owner)
{
    stub_call *c = owner;
    c->ended = true;
    static const gw_front_header h[] = {{"Content-Type", "application/json"},
                                        {"X-Stub", "1"}};
    if (c->kind == 's') {
        gw_front_req_respond_stream(c->r, 200, h, 2);
    } else {
        char body[64];
        int n = snprintf(body, sizeof body, "{\"bytes\":%u}", c->body_seen);
        gw_front_req_respond(c->r, 200, h, 2, body, (size_t)n);
    }
}

static long stub_read(void *owner, uint8_t *buf, size_t max)
{
    stub_call *c = owner;
    c->reads++;
    if (c->reads > 6)
        return GW_FRONT_EOF;
    if (c->reads & 1) {
        gw_loop_defer(loop, &c->wake); /* nothing yet: suspended, woken next turn */
        return 0;
    }
    size_t n = max < 40 ? max : 40;
    memset(buf, '[', n);
    return (long)n;
}

static void stub_on_client_gone(void *owner) { (void)owner; }

static void stub_on_close(void *owner, bool completed)
{
    stub_call *c = owner;
    (void)completed;
    c->closed = true;
    gw_loop_defer_cancel(loop, &c->wake);
    free(c);
}

static const gw_front_req_ops stub_ops = {
    .on_body = stub_on_body,
    .on_body_end = stub_on_body_end,
    .read = stub_read,
    .on_client_gone = stub_on_client_gone,
    .on_close = stub_on_close,
};

static bool count_header(void *ctx, const char *name, const char *value)
{
    (*(size_t *)ctx) += strlen(name) + strlen(value);
    return true;
}

static void stub_on_request(void *server, gw_front_req *r)
{
    (void)server;
    const char *path = gw_front_req_path(r);
    size_t n = 0;
    gw_front_req_headers(r, count_header, &n);
    char peer[64];
    gw_front_req_peer(r, peer, sizeof peer);
    (void)gw_front_req_content_length(r);
    (void)gw_front_req_header(r, "Accept-Encoding");
    (void)gw_front_req_target(r);
    static const gw_front_header text[] = {{"Content-Type", "text/plain"}};
    char kind = path && path[0] == '/' ? path[1] : 0;
    if (kind == 'a') {
        gw_front_req_respond(r, 200, text, 1, "ok\n", 3);
    } else if (kind == 'g') {
        static char big[3000];
        memset(big, 'x', sizeof big);
        static const gw_front_header json[] = {{"Content-Type", "application/json"}};
        gw_front_req_respond(r, 200, json, 1, big, sizeof big);
    } else if (kind == 'c') {
        gw_front_req_respond(r, 413, text, 1, "too big\n", 8);
        gw_front_req_close_now(r);
    } else if (kind == 's' || kind == 'w') {
        stub_call *c = calloc(1, sizeof *c);
        if (!c) {
            gw_front_req_respond(r, 503, text, 1, "oom\n", 4);
            return;
        }
        c->r = r;
        c->kind = kind;
        gw_defer_init(&c->wake, stub_wake, c);
        gw_front_req_attach(r, &stub_ops, c);
    } else {
        gw_front_req_respond(r, 404, text, 1, "no\n", 3);
    }
}

static const gw_front_handler stub_handler = {stub_on_request};

static void teardown(void)
{
    gw_front_del(front);
    gw_loop_del(loop);
}

static void setup(void)
{
    gw_log_set_level(getenv("GW_FUZZ_LOG") ? GW_LOG_DEBUG : GW_LOG_OFF);
    loop = gw_loop_new();
    gw_front_options o;
    gw_front_options_init(&o);
    o.host = "127.0.0.1";
    o.port = 0;
    o.header_timeout_ms = 2000;
    o.idle_timeout_ms = 2000;
    o.body_timeout_ms = 1000;
    o.memory_limit = 4096; /* small: reach the buffer-full paths */
    o.max_header_count = 20;
    o.discard_limit = 2048;
    gw_error e = {0};
    if (!loop || gw_front_new(loop, &o, &stub_handler, NULL, &front, &e) != 0) {
        fprintf(stderr, "fuzz_front_http: setup failed: %s\n", e.msg);
        abort();
    }
    atexit(teardown);
}

typedef struct client {
    gw_io io;           /* readable: the loop turn ends at once */
    int fd;
    const uint8_t *p;
    size_t left;
    bool shut;
    bool closed;
} client;

static void on_client_io(void *owner, uint32_t events) { (void)owner; (void)events; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!loop)
        setup();
    client cl[MAX_CONNS];
    size_t n = 0;
    const uint8_t *p = data, *end = data + size;
    while (n < MAX_CONNS) {
        const uint8_t *cut = NULL;
        for (const uint8_t *q = p; q + 1 < end && n + 1 < MAX_CONNS; q++)
            if (q[0] == 0 && q[1] == 0xff) {
                cut = q;
                break;
            }
        const uint8_t *stop = cut ? cut : end;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
            abort();
        cl[n] = (client){.fd = sv[1], .p = p, .left = (size_t)(stop - p)};
        if (gw_front_add_connection(front, sv[0]) != 0) {
            close(sv[1]);
            break;
        }
        gw_loop_io_add(loop, &cl[n].io, sv[1], GW_IO_READ, on_client_io, &cl[n]);
        n++;
        if (!cut)
            break;
        p = cut + 2;
    }
    uint64_t start = gw_now_ns();
    size_t open = n;
    for (unsigned turn = 0; open; turn++) {
        if (turn > MAX_TURNS) {
            fprintf(stderr, "fuzz_front_http: over %d loop turns for one input (spin)\n",
                    MAX_TURNS);
            abort();
        }
        if (gw_now_ns() - start > HANG_NS) {
            fprintf(stderr, "fuzz_front_http: a connection still open after 10 s (hang)\n");
            abort();
        }
        for (size_t i = 0; i < n; i++) {
            client *c = &cl[i];
            if (c->closed)
                continue;
            while (c->left) {
                ssize_t w = send(c->fd, c->p, c->left, MSG_NOSIGNAL);
                if (w <= 0)
                    break;
                c->p += w;
                c->left -= (size_t)w;
            }
            if (!c->left && !c->shut) {
                shutdown(c->fd, SHUT_WR);
                c->shut = true;
            }
            uint8_t buf[16384];
            for (;;) {
                ssize_t r = recv(c->fd, buf, sizeof buf, 0);
                if (r > 0)
                    continue;
                if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    c->closed = true;
                    gw_loop_io_remove(loop, &c->io);
                    close(c->fd);
                    open--;
                }
                break;
            }
        }
        if (open)
            gw_loop_run_once(loop, 100);
    }
    /* Let the daemon finish closing (on_close of attached requests). */
    for (int i = 0; i < 4 && gw_front_active(front); i++)
        gw_loop_run_once(loop, 1);
    return 0;
}
