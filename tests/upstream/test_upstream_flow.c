/* Response flow control of src/upstream against a real HTTP/2 peer: an
 * nghttp2 server session in this process, on a unix socket, driven by the
 * same gw_loop as the backend. Each case is a script of response message
 * sizes; the server sends them as fast as the stream window lets it, the
 * owner consumes each message (at once, a little later, or in batches from
 * a timer), and the call must end OK with every message and byte within a
 * deadline. A stall (the backend waiting for window, the gateway for the
 * rest of a message) ends the call DEADLINE_EXCEEDED and names the script.
 *
 * The scripts are the sequences of issue 12 and their neighbours: message
 * sizes around the 64 KiB stream window (-6 .. +5), around 2x and 3x the
 * window, large final messages that fit the window (remainders 47-62 KiB),
 * totals that divide evenly and totals that do not, small messages before a
 * message just under the window, and a smaller window. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "upstream/upstream.h"

#define MAX_MSGS 64
#define MAX_CALLS 64

/* ---- the server ----------------------------------------------------------- */

typedef struct script {
    size_t sizes[MAX_MSGS];         /* payload bytes of each message */
    size_t n;
} script;

typedef struct srv_stream {
    int32_t id;
    const script *s;
    size_t msg, off;                /* position: message, byte inside its wire form */
    bool done;
} srv_stream;

typedef struct server server;

typedef struct srv_conn {
    server *sv;
    gw_loop *loop;
    int fd;
    gw_io io;
    nghttp2_session *h2;
    uint8_t *out;                   /* bytes mem_send gave us that the socket did not take */
    size_t out_len, out_cap;
    bool dead;
} srv_conn;

struct server {
    gw_loop *loop;
    int lfd;
    gw_io lio;
    char path[108];
    srv_conn *conn;
    const script *queue[MAX_CALLS]; /* scripts for the next requests, in order */
    size_t q_len;
};

/* The byte at offset `off` of message `m`'s wire form (prefix + payload). */
static uint8_t wire_byte(size_t m, size_t len, size_t off)
{
    if (off == 0)
        return 0;
    if (off < 5)
        return (uint8_t)(len >> (8 * (4 - off)));
    return (uint8_t)(m * 31 + off);
}

static ssize_t srv_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t length,
                        uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ud;
    srv_stream *st = src->ptr;
    size_t n = 0;
    while (n < length && st->msg < st->s->n) {
        size_t len = st->s->sizes[st->msg];
        size_t wire = 5 + len;
        size_t take = GW_MIN(length - n, wire - st->off);
        for (size_t i = 0; i < take; i++)
            buf[n + i] = wire_byte(st->msg, len, st->off + i);
        n += take;
        st->off += take;
        if (st->off == wire) {
            st->msg++;
            st->off = 0;
        }
    }
    if (st->msg == st->s->n) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_nv trl[] = {{(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, 0}};
        if (nghttp2_submit_trailer(s, sid, trl, 1) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        st->done = true;
    }
    return (ssize_t)n;
}

static int srv_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    srv_conn *k = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    server *sv = k->sv;
    assert_true(sv->q_len > 0);
    srv_stream *st = calloc(1, sizeof *st);
    assert_non_null(st);
    *st = (srv_stream){.id = f->hd.stream_id, .s = sv->queue[0]};
    memmove(sv->queue, sv->queue + 1, (--sv->q_len) * sizeof sv->queue[0]);
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
    nghttp2_nv hd[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
    };
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = srv_read};
    return nghttp2_submit_response(s, f->hd.stream_id, hd, 2, &dp) == 0
               ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int srv_on_stream_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud)
{
    (void)code;
    (void)ud;
    free(nghttp2_session_get_stream_user_data(s, sid));
    return 0;
}

static void srv_flush(srv_conn *k)
{
    for (;;) {
        if (k->out_len) {
            ssize_t w = write(k->fd, k->out, k->out_len);
            if (w < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (w <= 0) {
                k->dead = true;
                return;
            }
            memmove(k->out, k->out + w, k->out_len - (size_t)w);
            k->out_len -= (size_t)w;
            continue;
        }
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(k->h2, &data);
        assert_true(n >= 0);
        if (n == 0)
            break;
        if (k->out_len + (size_t)n > k->out_cap) {
            k->out_cap = k->out_len + (size_t)n;
            k->out = realloc(k->out, k->out_cap);
            assert_non_null(k->out);
        }
        memcpy(k->out + k->out_len, data, (size_t)n);
        k->out_len += (size_t)n;
    }
    gw_loop_io_modify(k->loop, &k->io, GW_IO_READ | (k->out_len ? GW_IO_WRITE : 0));
}

static void srv_on_io(void *arg, uint32_t events)
{
    srv_conn *k = arg;
    if (k->dead)
        return;
    if (events & (GW_IO_READ | GW_IO_ERROR | GW_IO_RDHUP)) {
        uint8_t buf[65536];
        for (;;) {
            ssize_t r = read(k->fd, buf, sizeof buf);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (r <= 0) {
                k->dead = true;
                gw_loop_io_remove(k->loop, &k->io);
                return;
            }
            assert_int_equal(nghttp2_session_mem_recv(k->h2, buf, (size_t)r), r);
        }
    }
    srv_flush(k);
}

static void srv_on_accept(void *arg, uint32_t events)
{
    (void)events;
    server *sv = arg;
    int fd = accept4(sv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    assert_null(sv->conn);
    srv_conn *k = calloc(1, sizeof *k);
    assert_non_null(k);
    k->sv = sv;
    k->loop = sv->loop;
    k->fd = fd;
    sv->conn = k;
    nghttp2_session_callbacks *cb;
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, srv_on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, srv_on_stream_close);
    assert_int_equal(nghttp2_session_server_new(&k->h2, cb, k), 0);
    nghttp2_session_callbacks_del(cb);
    assert_int_equal(nghttp2_submit_settings(k->h2, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    assert_int_equal(gw_loop_io_add(sv->loop, &k->io, fd, GW_IO_READ, srv_on_io, k), 0);
    srv_flush(k);
}

static void server_start(server *sv, gw_loop *loop)
{
    memset(sv, 0, sizeof *sv);
    sv->loop = loop;
    snprintf(sv->path, sizeof sv->path, "/tmp/gw-flow-%d.sock", (int)getpid());
    unlink(sv->path);
    sv->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(sv->lfd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sv->path);
    assert_int_equal(bind(sv->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(sv->lfd, 8), 0);
    assert_int_equal(gw_loop_io_add(loop, &sv->lio, sv->lfd, GW_IO_READ, srv_on_accept, sv), 0);
}

static void server_stop(server *sv)
{
    if (sv->conn) {
        gw_loop_io_remove(sv->loop, &sv->conn->io);
        nghttp2_session_del(sv->conn->h2);
        close(sv->conn->fd);
        free(sv->conn->out);
        free(sv->conn);
    }
    gw_loop_io_remove(sv->loop, &sv->lio);
    close(sv->lfd);
    unlink(sv->path);
}

/* ---- the owner -------------------------------------------------------------- */

enum mode { CONSUME_AT_ONCE, CONSUME_NEXT_TURN, CONSUME_BATCHED };

typedef struct owner {
    gw_loop *loop;
    gw_ucall *call;
    const script *s;
    enum mode mode;
    size_t got;                     /* messages received */
    size_t held[MAX_MSGS];          /* wire lengths not consumed yet */
    size_t n_held;
    gw_timer timer;
    bool bad_message;
    int done;
    int code;
    char message[256];
} owner;

static void consume_held(owner *o)
{
    for (size_t i = 0; i < o->n_held; i++)
        if (o->call)
            gw_ucall_consume(o->call, o->held[i]);
    o->n_held = 0;
}

static void o_timer(void *arg) { consume_held(arg); }

static void o_message(void *arg, const uint8_t *msg, size_t len, size_t wire_len)
{
    owner *o = arg;
    if (o->got >= o->s->n || len != o->s->sizes[o->got] || wire_len != len + 5)
        o->bad_message = true;
    for (size_t i = 0; i < len && !o->bad_message; i++)
        if (msg[i] != wire_byte(o->got, len, 5 + i))
            o->bad_message = true;
    o->got++;
    if (o->mode == CONSUME_AT_ONCE) {
        gw_ucall_consume(o->call, wire_len);
        return;
    }
    assert_true(o->n_held < MAX_MSGS);
    o->held[o->n_held++] = wire_len;
    if (!gw_timer_armed(&o->timer))
        gw_loop_timer_start(o->loop, &o->timer,
                            gw_now_ns() + (o->mode == CONSUME_BATCHED ? 3 : 0) * GW_MS);
}

static void o_complete(void *arg, const gw_call_status *st)
{
    owner *o = arg;
    o->done = 1;
    o->code = st->code;
    snprintf(o->message, sizeof o->message, "%s", st->message);
    o->call = NULL;
    gw_loop_timer_stop(o->loop, &o->timer);
}

static const gw_ucall_handlers oh = {.on_message = o_message, .on_complete = o_complete};

/* ---- running scripts ---------------------------------------------------------- */

static void describe(const script *s, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (size_t i = 0; i < s->n && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%zu", i ? " " : "", s->sizes[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

/* Runs every script once per consumption mode, `batch` calls at a time on
 * one connection; returns the number of failed calls (each printed). */
static int run_scripts(const script *scripts, size_t n, uint32_t window, size_t batch)
{
    gw_loop *loop = gw_loop_new();
    assert_non_null(loop);
    server sv;
    server_start(&sv, loop);
    char url[128];
    snprintf(url, sizeof url, "unix:%s", sv.path);
    gw_backend_options bo;
    gw_backend_options_init(&bo);
    bo.stream_window = window;
    gw_backend *b = NULL;
    gw_error e = {0};
    assert_int_equal(gw_backend_new(loop, url, &bo, &b, &e), 0);

    int failures = 0;
    size_t ok = 0;
    uint64_t bytes = 0;
    owner *os = calloc(batch, sizeof *os);
    assert_non_null(os);
    size_t total = n * 3;
    for (size_t first = 0; first < total; first += batch) {
        size_t count = GW_MIN(batch, total - first);
        for (size_t i = 0; i < count; i++) {
            owner *o = &os[i];
            const script *s = &scripts[(first + i) % n];
            *o = (owner){.loop = loop, .s = s, .mode = (enum mode)((first + i) / n)};
            gw_timer_init(&o->timer, o_timer, o);
            /* Requests reach the server in the order they are started. */
            sv.queue[sv.q_len++] = s;
            gw_ucall_params p = {.path = "/t.Flow/Download",
                                 .deadline_ns = gw_now_ns() + 10 * GW_SEC};
            assert_int_equal(gw_ucall_start(b, &p, &oh, o, &o->call, &e), 0);
            gw_ucall_close_send(o->call);
        }
        uint64_t end = gw_now_ns() + 30 * GW_SEC;
        for (;;) {
            size_t done = 0;
            for (size_t i = 0; i < count; i++)
                done += (size_t)os[i].done;
            if (done == count || gw_now_ns() > end)
                break;
            gw_loop_run_once(loop, 10);
        }
        for (size_t i = 0; i < count; i++) {
            owner *o = &os[i];
            if (o->done && o->code == GW_CODE_OK && o->got == o->s->n && !o->bad_message) {
                ok++;
                for (size_t m = 0; m < o->s->n; m++)
                    bytes += o->s->sizes[m];
                continue;
            }
            char d[1024];
            describe(o->s, d, sizeof d);
            print_error("window %u, mode %d, script %s: done %d code %d (%s), %zu of %zu messages%s\n",
                        window, (int)o->mode, d, o->done, o->code, o->message, o->got, o->s->n,
                        o->bad_message ? ", wrong bytes" : "");
            failures++;
            if (!o->done && o->call)
                gw_ucall_cancel(o->call);
        }
        sv.q_len = 0;
        if (failures)
            break; /* one batch is enough to show it; the rest would wait too */
    }
    print_message("window %u: %zu of %zu calls complete, %llu payload bytes\n", window, ok,
                  total, (unsigned long long)bytes);
    free(os);
    gw_backend_del(b);
    server_stop(&sv);
    gw_loop_del(loop);
    return failures;
}

/* `total` bytes in messages of `chunk` bytes (the last one shorter), as the
 * demo service's Download sends them. */
static script split(size_t total, size_t chunk)
{
    script s = {.n = 0};
    while (total > 0 && s.n < MAX_MSGS) {
        size_t m = GW_MIN(total, chunk);
        s.sizes[s.n++] = m;
        total -= m;
    }
    return s;
}

static script list(size_t n, ...)
{
    script s = {.n = n};
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        s.sizes[i] = va_arg(ap, size_t);
    va_end(ap);
    return s;
}

#define W 65536u

/* Messages just over (and just under) the window, followed by a large
 * message that fits: the sequences of issue 12. */
static void test_over_window_then_large_remainder(void **state)
{
    (void)state;
    static script s[512];
    size_t n = 0;
    /* The case: 200000 in chunks of 70000. */
    s[n++] = split(200000, 70000);
    for (size_t over = 0; over <= 11; over++) {
        size_t chunk = W - 6 + over;                   /* W-6 .. W+5 (wire: W-1 .. W+10) */
        for (size_t rem = 47 * 1024; rem <= 62 * 1024; rem += 1024) {
            s[n++] = list(3, chunk, chunk, rem);
            s[n++] = list(2, chunk, rem + 7);
        }
        s[n++] = split(4 * chunk, chunk);              /* divides evenly */
        s[n++] = list(3, chunk, chunk, (size_t)1);     /* small remainder */
        s[n++] = list(3, chunk, chunk, (size_t)0);
    }
    assert_true(n <= sizeof s / sizeof s[0]);
    assert_int_equal(run_scripts(s, n, W, 48), 0);
}

/* Around 2x and 3x the window, and a mix of sizes where a message just
 * under the window follows smaller ones (the window's unreported credit
 * must not be what keeps it from arriving). */
static void test_twice_window_and_mixes(void **state)
{
    (void)state;
    static script s[512];
    size_t n = 0;
    static const long ks[] = {-4096, -6, -5, -1, 0, 1, 5, 4096};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        size_t two = (size_t)(2 * (long)W + ks[i]);
        size_t three = (size_t)(3 * (long)W + ks[i]);
        s[n++] = list(3, two, two, (size_t)60000);
        s[n++] = split(1000000, two);
        s[n++] = list(2, three, (size_t)50000);
        s[n++] = list(3, (size_t)1, two, (size_t)W - 5);
    }
    for (size_t small = 1000; small <= 40000; small += 3000) {
        s[n++] = list(2, small, (size_t)W - 5);
        s[n++] = list(3, small, small, (size_t)W - 1000);
        s[n++] = list(4, small, (size_t)50000, small, (size_t)60000);
    }
    for (size_t chunk = 16383; chunk <= 16390; chunk++)
        s[n++] = split(200000, chunk);
    s[n++] = split(1 << 20, 1 << 20);
    s[n++] = split(3 << 20, 1 << 20);
    assert_true(n <= sizeof s / sizeof s[0]);
    assert_int_equal(run_scripts(s, n, W, 48), 0);
}

/* A smaller window (16 KiB, one frame) makes every other size "large". */
static void test_small_window(void **state)
{
    (void)state;
    static script s[128];
    size_t n = 0;
    for (size_t chunk = 16380; chunk <= 16390; chunk++) {
        s[n++] = split(100000, chunk);
        s[n++] = list(3, chunk, (size_t)9000, (size_t)14000);
        s[n++] = list(3, (size_t)5000, (size_t)12000, chunk);
    }
    assert_int_equal(run_scripts(s, n, 16384, 48), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_over_window_then_large_remainder),
        cmocka_unit_test(test_twice_window_and_mixes),
        cmocka_unit_test(test_small_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
