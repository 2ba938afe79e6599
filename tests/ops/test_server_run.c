/* gw_server_run in this process, with resolvers that record who asked for
 * which name: a cluster's host names are resolved once on the main thread
 * for every worker (at start and for a backend a reload adds), never per
 * worker; a reload that changes only the lone backend's resolver builds a
 * new backend (the next call resolves with the new one). Loopback only;
 * the names are never looked up for real. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/server.h"

/* ---- the recording resolver ---------------------------------------------------- */

typedef struct lookup {
    char host[32];
    int tag;              /* which resolver ctx asked */
    bool server_thread;   /* on the thread running gw_server_run */
} lookup;

static pthread_mutex_t lookups_mu = PTHREAD_MUTEX_INITIALIZER;
static lookup lookups[256];
static size_t lookup_count;
static pthread_t server_thread;

static int tag1 = 1, tag2 = 2;

/* Every name is 127.0.0.1 (port 1: nothing listens, calls fail fast). */
static int record_resolve(void *ctx, const char *host, const char *port, char **addrs,
                          size_t max, size_t *n, gw_error *e)
{
    (void)port;
    (void)e;
    pthread_mutex_lock(&lookups_mu);
    if (lookup_count < GW_ARRAY_LEN(lookups)) {
        lookup *l = &lookups[lookup_count++];
        snprintf(l->host, sizeof l->host, "%s", host);
        l->tag = *(int *)ctx;
        l->server_thread = pthread_equal(pthread_self(), server_thread) != 0;
    }
    pthread_mutex_unlock(&lookups_mu);
    *n = 0;
    if (max == 0)
        return 0;
    addrs[0] = strdup("127.0.0.1");
    if (!addrs[0])
        return GW_ENOMEM;
    *n = 1;
    return 0;
}

/* Lookups of host by resolver tag (0: any) and how many ran elsewhere than
 * on the server's thread. */
static size_t lookups_of(const char *host, int tag, size_t *off_thread)
{
    size_t n = 0;
    if (off_thread)
        *off_thread = 0;
    pthread_mutex_lock(&lookups_mu);
    for (size_t i = 0; i < lookup_count; i++)
        if (strcmp(lookups[i].host, host) == 0 && (tag == 0 || lookups[i].tag == tag)) {
            n++;
            if (off_thread && !lookups[i].server_thread)
                (*off_thread)++;
        }
    pthread_mutex_unlock(&lookups_mu);
    return n;
}

/* ---- the configuration ------------------------------------------------------------ */

static uint16_t port;

/* extra: a second named backend (a reload adds it); lone_tag: the lone
 * backend's resolver ctx. */
static int make_config(gw_server_config *c, bool extra, int *lone_tag, gw_error *e)
{
    char json[2048];
    /* Connections as before readiness waited for them (the first call
     * connects, and the lone backend resolves then): which resolver a
     * connection uses is what this test counts. */
    snprintf(json, sizeof json,
             "{\"listen\": \"127.0.0.1:%u\", \"workers\": 2, \"descriptors\": [\"%s\"],"
             " \"admin\": {\"ready_requires_connection\": false},"
             " \"backend\": \"http://lone.test:1\","
             " \"backends\": {\"a\": {\"endpoints\": [\"http://a.test:1\"], \"dns_refresh_ms\": 0}"
             "%s},"
             " \"routes\": [{\"match\": \"demo.v1.EchoService\", \"backend\": \"default\"},"
             "              {\"match\": \"*\", \"backend\": \"a\"}%s]}",
             port, getenv("GW_DEMO_DESC"),
             extra ? ", \"b\": {\"endpoints\": [\"http://b.test:1\"], \"dns_refresh_ms\": 0}"
                   : "",
             extra ? ", {\"match\": \"demo.v1.UserService\", \"backend\": \"b\"}" : "");
    int rc = gw_server_config_parse(c, json, strlen(json), "test", e);
    if (rc)
        return rc;
    for (size_t i = 0; i < c->backend_count; i++) {
        c->backends[i].cluster.resolve = record_resolve;
        c->backends[i].cluster.resolve_ctx = &tag1;
    }
    c->upstream.resolve = record_resolve;
    c->upstream.resolve_ctx = lone_tag;
    c->log_level = GW_LOG_WARN;
    return 0;
}

static atomic_int reloads_asked;

static int reload_config(void *ctx, gw_server_config *out, gw_error *e)
{
    (void)ctx;
    atomic_fetch_add(&reloads_asked, 1);
    return make_config(out, true, &tag2, e);
}

typedef struct run {
    gw_server_config cfg;
    int rc;
    gw_error e;
} run;

static void *server_main(void *arg)
{
    run *r = arg;
    server_thread = pthread_self();
    r->rc = gw_server_run(&r->cfg, &r->e);
    return NULL;
}

/* ---- a tiny HTTP/1.1 client -------------------------------------------------------- */

static int connect_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Sends req and returns the whole answer (the server closes: Connection:
 * close), NUL-terminated, its length in *len (may be NULL), or NULL. */
static char *http(const char *req, size_t req_len, size_t *len)
{
    int fd = connect_port();
    if (fd < 0)
        return NULL;
    size_t off = 0;
    while (off < req_len) {
        ssize_t w = write(fd, req + off, req_len - off);
        if (w <= 0) {
            close(fd);
            return NULL;
        }
        off += (size_t)w;
    }
    size_t cap = 1 << 20, n = 0;
    char *out = malloc(cap + 1);
    for (;;) {
        ssize_t got = read(fd, out + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0 || (n += (size_t)got) == cap)
            break;
    }
    out[n] = 0;
    close(fd);
    if (len)
        *len = n;
    return out;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool metrics_contain(const char *needle)
{
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    char *ans = http(req, sizeof req - 1, NULL);
    bool ok = ans && strstr(ans, needle);
    free(ans);
    return ok;
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_names_resolved_once(void **state)
{
    (void)state;
    gw_log_set_level(GW_LOG_WARN);
    port = free_port();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    /* The server's sigwait takes the signals sent to this process. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    static run r;
    gw_server_config_init(&r.cfg);
    gw_error e;
    gw_error_clear(&e);
    assert_int_equal(make_config(&r.cfg, false, &tag1, &e), 0);
    r.cfg.reload = reload_config;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, server_main, &r), 0);

    int fd = -1;
    for (int i = 0; i < 3000 && fd < 0; i++) {
        fd = connect_port();
        if (fd < 0)
            sleep_ms(10);
    }
    assert_true(fd >= 0);
    close(fd);
    /* Two workers, one lookup: on the main thread, before they start. */
    size_t off_thread;
    assert_int_equal(lookups_of("a.test", 0, &off_thread), 1);
    assert_int_equal(off_thread, 0);

    kill(getpid(), SIGHUP);
    for (int i = 0; i < 3000 && !metrics_contain("grpcgate_reloads_total{result=\"ok\"} 1"); i++)
        sleep_ms(10);
    assert_true(metrics_contain("grpcgate_reloads_total{result=\"ok\"} 1"));
    assert_int_equal(atomic_load(&reloads_asked), 1);
    /* The kept backend is not resolved again; the new one once, here. */
    assert_int_equal(lookups_of("a.test", 0, NULL), 1);
    assert_int_equal(lookups_of("b.test", 0, &off_thread), 1);
    assert_int_equal(off_thread, 0);

    /* The lone backend changed only its resolver: the call after the
     * reload goes through a new backend, which resolves with the new one
     * (on a resolver thread, at connect time). */
    static const char call[] = "POST /demo.v1.EchoService/Echo HTTP/1.1\r\nHost: t\r\n"
                               "Content-Type: application/grpc-web+proto\r\n"
                               "Content-Length: 5\r\nConnection: close\r\n\r\n";
    char req[sizeof call + 5];
    memcpy(req, call, sizeof call - 1);
    memset(req + sizeof call - 1, 0, 5);
    char *ans = http(req, sizeof call - 1 + 5, NULL);
    assert_non_null(ans);
    assert_non_null(strstr(ans, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(ans, "\r\ngrpc-status: 14\r\n"
                                "grpc-message: backend 'default' unavailable\r\n"));
    free(ans);
    assert_int_equal(lookups_of("lone.test", 1, NULL), 0);
    assert_true(lookups_of("lone.test", 2, &off_thread) >= 1);
    assert_int_equal(off_thread, lookups_of("lone.test", 2, NULL));

    kill(getpid(), SIGTERM);
    pthread_join(t, NULL);
    assert_int_equal(r.rc, 0);
    gw_server_config_free(&r.cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_resolved_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
