/* Unit tests for the call API of src/upstream that need no real gRPC server:
 * URL and argument validation, the callback contract (never inside the
 * caller, exactly once, none after cancel), fail-fast while a backend is
 * down, the wait-queue bound, the reset cap and gw_backend_del (also from
 * inside a loop callback). The only
 * sockets are loopback ones this process makes: a closed port and a
 * listener that never accepts. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "upstream/upstream.h"

/* ---- helpers ------------------------------------------------------------ */

/* A listening loopback socket; the kernel completes handshakes into its
 * backlog, nobody ever reads. Returns the fd and the port. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 64), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Accepts the connection waiting in the backlog and sends an empty HTTP/2
 * SETTINGS frame (the server preface), then never reads or writes again. */
static int accept_and_send_settings(int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    static const uint8_t settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    assert_int_equal(write(fd, settings, sizeof settings), (ssize_t)sizeof settings);
    return fd;
}

static int closed_port(void)
{
    int port;
    int fd = silent_listener(&port);
    close(fd);
    return port;
}

typedef struct rec {
    int completions;
    int code;
    char message[512];
    bool trailers_only;
    bool in_caller;     /* set while the test is inside a gw_* call */
    bool reentered;
} rec;

static void r_complete(void *owner, const gw_call_status *st)
{
    rec *r = owner;
    if (r->in_caller)
        r->reentered = true;
    r->completions++;
    r->code = st->code;
    snprintf(r->message, sizeof r->message, "%s", st->message);
    r->trailers_only = st->trailers_only;
}

static const gw_ucall_handlers rh = {.on_complete = r_complete};

static gw_ucall *start(gw_backend *b, rec *r, const char *path, uint64_t deadline_ns)
{
    gw_ucall_params p = {.path = path, .deadline_ns = deadline_ns};
    gw_ucall *c = NULL;
    gw_error e = {0};
    r->in_caller = true;
    int rc = gw_ucall_start(b, &p, &rh, r, &c, &e);
    r->in_caller = false;
    assert_int_equal(rc, 0);
    assert_non_null(c);
    return c;
}

static void spin(gw_loop *l, int ms)
{
    uint64_t end = gw_now_ns() + (uint64_t)ms * GW_MS;
    while (gw_now_ns() < end)
        gw_loop_run_once(l, 10);
}

static void spin_until(gw_loop *l, const int *counter, int want, int max_ms)
{
    uint64_t end = gw_now_ns() + (uint64_t)max_ms * GW_MS;
    while (*counter < want && gw_now_ns() < end)
        gw_loop_run_once(l, 10);
}

/* ---- URLs ---------------------------------------------------------------- */

static const struct {
    const char *url;
    int rc;
    const char *msg;   /* expected error message, or NULL */
} url_cases[] = {
    {"http://127.0.0.1:50051", 0, NULL},
    {"http://localhost:8080/", 0, NULL},
    {"http://[::1]:50051", 0, NULL},
    {"http://backend", 0, NULL},          /* port 80 */
    {"https://example.com:443", 0, NULL},
    {"unix:/run/backend.sock", 0, NULL},
    {"ftp://x:1", GW_EINVAL,
     "backend URL ftp://x:1: expected http://host:port, https://host:port or unix:/path"},
    {"http://:80", GW_EINVAL, "backend URL http://:80: empty host"},
    {"http://h:0", GW_EINVAL, "backend URL http://h:0: port out of range"},
    {"http://h:65536", GW_EINVAL, "backend URL http://h:65536: port out of range"},
    {"http://h:8x", GW_EINVAL, "backend URL http://h:8x: bad port"},
    {"http://h:", GW_EINVAL, "backend URL http://h:: bad port"},
    {"http://h:1/path", GW_EINVAL, "backend URL http://h:1/path: only scheme, host and port are allowed"},
    {"http://u@h:1", GW_EINVAL, "backend URL http://u@h:1: only scheme, host and port are allowed"},
    {"http://[::1:5", GW_EINVAL, "backend URL http://[::1:5: unterminated [IPv6] host"},
    {"unix:relative", GW_EINVAL, "backend URL unix:relative: unix: needs an absolute socket path"},
};

static void test_backend_urls(void **state)
{
    gw_loop *l = gw_loop_new();
    for (size_t i = 0; i < GW_ARRAY_LEN(url_cases); i++) {
        gw_backend *b = NULL;
        gw_error e = {0};
        int rc = gw_backend_new(l, url_cases[i].url, NULL, &b, &e);
        if (rc != url_cases[i].rc)
            fail_msg("%s: rc %d (%s), want %d", url_cases[i].url, rc, e.msg, url_cases[i].rc);
        if (url_cases[i].msg)
            assert_string_equal(e.msg, url_cases[i].msg);
        if (rc == 0) {
            assert_string_equal(gw_backend_url(b), url_cases[i].url);
            gw_backend_del(b);
        } else {
            assert_null(b);
        }
    }
    gw_backend_options o;
    gw_backend_options_init(&o);
    o.ca_file = "/nonexistent/ca.pem";
    gw_backend *b = NULL;
    gw_error e = {0};
    assert_int_equal(gw_backend_new(l, "https://h:1", &o, &b, &e), GW_EINVAL);
    assert_non_null(strstr(e.msg, "cannot load CA file /nonexistent/ca.pem"));
    gw_loop_del(l);
}

/* ---- arguments ---------------------------------------------------------------- */

static const struct {
    const char *path;
    gw_header md;
    const char *msg;
} bad_args[] = {
    {"", {"x-a", 3, "1", 1}, "invalid method path"},
    {"demo.v1.S/M", {"x-a", 3, "1", 1}, "invalid method path"},
    {"/a b", {"x-a", 3, "1", 1}, "invalid character in method path"},
    {"/s/m", {"X-Upper", 7, "1", 1}, "invalid metadata key \"X-Upper\""},
    {"/s/m", {"", 0, "1", 1}, "invalid metadata key \"\""},
    {"/s/m", {"grpc-timeout", 12, "1S", 2}, "reserved metadata key \"grpc-timeout\""},
    {"/s/m", {"te", 2, "trailers", 8}, "reserved metadata key \"te\""},
    {"/s/m", {"content-type", 12, "text/plain", 10}, "reserved metadata key \"content-type\""},
    {"/s/m", {"x-a", 3, "a\r\nb", 4}, "invalid character in metadata \"x-a\""},
};

static void test_bad_arguments_no_callback(void **state)
{
    gw_loop *l = gw_loop_new();
    gw_backend *b = NULL;
    assert_int_equal(gw_backend_new(l, "http://127.0.0.1:1", NULL, &b, NULL), 0);
    for (size_t i = 0; i < GW_ARRAY_LEN(bad_args); i++) {
        rec r = {0};
        gw_ucall_params p = {.path = bad_args[i].path, .metadata = &bad_args[i].md,
                             .metadata_count = 1};
        gw_ucall *c = (gw_ucall *)1;
        gw_error e = {0};
        assert_int_equal(gw_ucall_start(b, &p, &rh, &r, &c, &e), GW_EINVAL);
        assert_string_equal(e.msg, bad_args[i].msg);
        assert_null(c);
        spin(l, 5);
        assert_int_equal(r.completions, 0);
    }
    assert_int_equal(gw_backend_active_calls(b), 0);
    gw_backend_del(b);
    gw_loop_del(l);
}

/* ---- outcomes without a server ----------------------------------------------------- */

static void test_deadline_already_passed(void **state)
{
    gw_loop *l = gw_loop_new();
    gw_backend *b = NULL;
    assert_int_equal(gw_backend_new(l, "http://127.0.0.1:1", NULL, &b, NULL), 0);
    rec r = {0};
    start(b, &r, "/s/m", gw_now_ns() - 1);
    assert_int_equal(r.completions, 0);    /* never from inside gw_ucall_start */
    spin_until(l, &r.completions, 1, 1000);
    assert_int_equal(r.completions, 1);
    assert_int_equal(r.code, GW_CODE_DEADLINE_EXCEEDED);
    assert_string_equal(r.message, "deadline exceeded before the call started");
    assert_true(r.trailers_only);
    gw_backend_stats st;
    gw_backend_get_stats(b, &st);
    assert_int_equal(st.connects_started, 0);
    gw_backend_del(b);
    gw_loop_del(l);
}

static void test_unreachable_then_fail_fast(void **state)
{
    gw_loop *l = gw_loop_new();
    int port = closed_port();
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    gw_backend *b = NULL;
    assert_int_equal(gw_backend_new(l, url, NULL, &b, NULL), 0);
    gw_log_set_level(GW_LOG_OFF);
    rec r1 = {0}, r2 = {0};
    start(b, &r1, "/s/m", 0);
    spin_until(l, &r1.completions, 1, 5000);
    assert_int_equal(r1.code, GW_CODE_UNAVAILABLE);
    char want[200];
    snprintf(want, sizeof want, "backend %s unreachable: connect: Connection refused", url);
    assert_string_equal(r1.message, want);
    /* Inside the backoff delay: no new attempt, the same reason at once. */
    start(b, &r2, "/s/m", 0);
    assert_int_equal(r2.completions, 0);
    spin_until(l, &r2.completions, 1, 5000);
    assert_int_equal(r2.code, GW_CODE_UNAVAILABLE);
    assert_string_equal(r2.message, want);
    gw_backend_stats st;
    gw_backend_get_stats(b, &st);
    assert_int_equal(st.connects_started, 1);
    assert_int_equal(gw_backend_active_calls(b), 0);
    gw_backend_del(b);
    gw_loop_del(l);
}

static void test_queue_bound_and_cancel_queued(void **state)
{
    gw_loop *l = gw_loop_new();
    int port;
    int lfd = silent_listener(&port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    gw_backend_options o;
    gw_backend_options_init(&o);
    o.max_queued_calls = 2;
    gw_backend *b = NULL;
    assert_int_equal(gw_backend_new(l, url, &o, &b, NULL), 0);
    rec r[3] = {{0}};
    gw_ucall *c0 = start(b, &r[0], "/s/m", 0);
    start(b, &r[1], "/s/m", 0);
    start(b, &r[2], "/s/m", 0);            /* the queue holds two */
    spin_until(l, &r[2].completions, 1, 1000);
    assert_int_equal(r[2].code, GW_CODE_RESOURCE_EXHAUSTED);
    char want[200];
    snprintf(want, sizeof want,
             "backend %s: too many calls waiting for a connection (limit 2)", url);
    assert_string_equal(r[2].message, want);
    /* Cancel: no callback, ever. */
    r[0].in_caller = true;
    gw_ucall_cancel(c0);
    r[0].in_caller = false;
    spin(l, 50);
    assert_int_equal(r[0].completions, 0);
    assert_int_equal(gw_backend_active_calls(b), 1);
    /* Deleting the backend completes the rest with UNAVAILABLE. */
    gw_backend_del(b);
    assert_int_equal(r[1].completions, 1);
    assert_int_equal(r[1].code, GW_CODE_UNAVAILABLE);
    close(lfd);
    spin(l, 5);
    gw_loop_del(l);
}

static void test_reset_cap_delays_resets(void **state)
{
    gw_loop *l = gw_loop_new();
    int port;
    int lfd = silent_listener(&port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    gw_backend_options o;
    gw_backend_options_init(&o);
    o.max_resets_per_sec = 2;
    gw_backend *b = NULL;
    assert_int_equal(gw_backend_new(l, url, &o, &b, NULL), 0);
    enum { N = 5 };
    rec r[N] = {{0}};
    gw_ucall *c[N];
    for (int i = 0; i < N; i++)
        c[i] = start(b, &r[i], "/s/m", 0);
    spin(l, 50);                            /* connected: waits for SETTINGS */
    gw_backend_stats st;
    gw_backend_get_stats(b, &st);
    assert_int_equal(st.peak_streams, 0);
    int pfd = accept_and_send_settings(lfd);
    uint64_t until = gw_now_ns() + 10 * GW_SEC;
    do {                                    /* until the streams are open */
        gw_loop_run_once(l, 10);
        gw_backend_get_stats(b, &st);
    } while (st.peak_streams < N && gw_now_ns() < until);
    assert_int_equal(st.connects_ok, 1);
    assert_int_equal(st.peak_streams, N);
    uint64_t t0 = gw_now_ns();
    for (int i = 0; i < N; i++)
        gw_ucall_cancel(c[i]);
    spin(l, 50);
    gw_backend_get_stats(b, &st);
    assert_int_equal(st.resets_sent, 2);
    assert_int_equal(st.resets_delayed, 3);
    /* The rest go out two per second: never sooner than the cap allows
     * (only a lower bound on time, so a slow machine cannot fail this). */
    uint64_t end = t0 + 10 * GW_SEC;
    while (st.resets_sent < 5 && gw_now_ns() < end) {
        gw_loop_run_once(l, 10);
        gw_backend_get_stats(b, &st);
        if (gw_now_ns() - t0 < 500 * GW_MS)
            assert_int_equal(st.resets_sent, 2);
    }
    assert_int_equal(st.resets_sent, 5);
    /* Two more per second: the fifth no sooner than the third window. */
    assert_true(gw_now_ns() - t0 >= 1500 * GW_MS);
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].completions, 0);
    assert_int_equal(gw_backend_active_calls(b), 0);
    gw_backend_del(b);
    close(pfd);
    close(lfd);
    spin(l, 5);
    gw_loop_del(l);
}

static void test_deadline_against_silent_backend(void **state)
{
    gw_loop *l = gw_loop_new();
    int port;
    int lfd = silent_listener(&port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    gw_backend *b = NULL;
    assert_int_equal(gw_backend_new(l, url, NULL, &b, NULL), 0);
    /* TCP accepted, no SETTINGS ever: the call waits in the queue and the
     * deadline ends it there; no stream, so nothing to reset. */
    rec r = {0};
    start(b, &r, "/s/m", gw_now_ns() + 200 * GW_MS);
    spin_until(l, &r.completions, 1, 5000);
    assert_int_equal(r.completions, 1);
    assert_int_equal(r.code, GW_CODE_DEADLINE_EXCEEDED);
    assert_string_equal(r.message, "deadline exceeded");
    assert_false(r.reentered);
    gw_backend_stats st;
    gw_backend_get_stats(b, &st);
    assert_int_equal(st.resets_sent, 0);
    assert_int_equal(st.peak_streams, 0);
    /* With the server preface the stream opens; the backend never answers,
     * the deadline resets the stream. */
    int pfd = accept_and_send_settings(lfd);
    rec r2 = {0};
    start(b, &r2, "/s/m", gw_now_ns() + 300 * GW_MS);
    spin_until(l, &r2.completions, 1, 5000);
    assert_int_equal(r2.code, GW_CODE_DEADLINE_EXCEEDED);
    assert_string_equal(r2.message, "deadline exceeded");
    gw_backend_get_stats(b, &st);
    assert_int_equal(st.peak_streams, 1);
    assert_int_equal(st.resets_sent, 1);
    gw_backend_del(b);
    close(pfd);
    close(lfd);
    spin(l, 5);
    gw_loop_del(l);
}

/* ---- gw_backend_del from inside a loop callback -------------------------- */

/* An eventfd whose callback deletes a backend. Made readable before the
 * backend's socket, it comes first in the batch epoll hands back. */
typedef struct deleter {
    gw_loop *l;
    gw_io io;
    int efd;
    gw_backend *b;
    int runs;
} deleter;

static void deleter_on_io(void *arg, uint32_t events)
{
    deleter *d = arg;
    (void)events;
    uint64_t v;
    assert_int_equal(read(d->efd, &v, sizeof v), (ssize_t)sizeof v);
    gw_loop_io_remove(d->l, &d->io);
    gw_backend_del(d->b);
    d->b = NULL;
    d->runs++;
}

/* The batch that deletes the backend still holds an event for its
 * connection's socket (the peer closed it). The loop reads that gw_io
 * after the callback: the connection must still be allocated (ASan says
 * heap-use-after-free if it was freed at once), and its deferred free must
 * run in the same turn (LeakSanitizer says so if not: no turn follows). */
static void test_del_inside_batch(void **state)
{
    (void)state;
    gw_loop *l = gw_loop_new();
    int port;
    int lfd = silent_listener(&port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    gw_backend *b = NULL;
    assert_int_equal(gw_backend_new(l, url, NULL, &b, NULL), 0);
    rec r = {0};
    start(b, &r, "/s/m", 0);
    gw_loop_run_once(l, 0); /* dispatch: the connect starts */
    int pfd = accept_and_send_settings(lfd);
    gw_backend_stats st = {0};
    for (int i = 0; i < 1000 && st.peak_streams == 0; i++) {
        gw_loop_run_once(l, 10);
        gw_backend_get_stats(b, &st);
    }
    assert_int_equal(st.peak_streams, 1);
    spin(l, 50); /* the HEADERS are written: the socket is idle */
    deleter d = {.l = l, .b = b, .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
    assert_true(d.efd >= 0);
    assert_int_equal(gw_loop_io_add(l, &d.io, d.efd, GW_IO_READ, deleter_on_io, &d), 0);
    uint64_t one = 1;
    assert_int_equal(write(d.efd, &one, sizeof one), (ssize_t)sizeof one);
    close(pfd); /* the connection's socket becomes readable (EOF) */
    usleep(20 * 1000);
    assert_int_equal(gw_loop_run_once(l, 1000), 0);
    assert_int_equal(d.runs, 1);
    assert_int_equal(r.completions, 1);
    assert_int_equal(r.code, GW_CODE_UNAVAILABLE);
    char want[128];
    snprintf(want, sizeof want, "backend %s is shutting down", url);
    assert_string_equal(r.message, want);
    close(d.efd);
    close(lfd);
    gw_loop_del(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_urls),
        cmocka_unit_test(test_bad_arguments_no_callback),
        cmocka_unit_test(test_deadline_already_passed),
        cmocka_unit_test(test_unreachable_then_fail_fast),
        cmocka_unit_test(test_queue_bound_and_cancel_queued),
        cmocka_unit_test(test_reset_cap_delays_resets),
        cmocka_unit_test(test_deadline_against_silent_backend),
        cmocka_unit_test(test_del_inside_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
