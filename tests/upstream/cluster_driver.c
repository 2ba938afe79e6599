/*
 * Drives clusters and the reflection client against live backends and
 * prints facts for tests/upstream/run_cluster.py to compare.
 *
 *   cluster_driver reflect URL PREFIX [SERVICE...]   registry by reflection
 *   cluster_driver into URL1 URL2 PREFIX            both into one builder
 *   cluster_driver version URL                       async API: version, counts
 *   cluster_driver desc FILE PREFIX                  registry from a descriptor set
 *       Both print the services whose name starts with PREFIX, sorted, with
 *       their methods, streaming flags, message types (and field counts)
 *       and http rules, so that the two outputs can be compared.
 *   cluster_driver lb POLICY HEALTH_MS HEALTH_SERVICE URL...
 *       Keeps 4 Echo calls in flight through a cluster and reads commands
 *       from stdin: "report" prints what happened since the last report,
 *       "quit" ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/codec.h"
#include "loop/loop.h"
#include "schema/schema.h"
#include "upstream/upstream.h"

/* ---- registry dump -------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void dump(const gw_registry *r, const char *prefix)
{
    size_t n = gw_registry_service_count(r);
    const char **names = calloc(n + 1, sizeof *names);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const gw_service_def *s = gw_registry_service_at(r, i);
        if (strncmp(s->full_name, prefix, strlen(prefix)) == 0)
            names[k++] = s->full_name;
    }
    qsort(names, k, sizeof *names, cmp_str);
    for (size_t i = 0; i < k; i++) {
        const gw_service_def *s = gw_registry_service(r, names[i]);
        printf("service %s (%s)\n", s->full_name, s->file ? s->file->name : "?");
        for (size_t m = 0; m < s->method_count; m++) {
            const gw_method_def *md = &s->methods[m];
            printf("  method %s cs=%d ss=%d in=%s/%zu out=%s/%zu\n", md->path, md->client_streaming,
                   md->server_streaming, md->input->full_name, md->input->field_count,
                   md->output->full_name, md->output->field_count);
            for (size_t h = 0; h < md->http_rule_count; h++) {
                const gw_http_rule *hr = &md->http_rules[h];
                printf("    http %s %s body=%s response_body=%s additional=%d\n", hr->verb, hr->path,
                       hr->body, hr->response_body, hr->additional);
            }
        }
    }
    printf("services=%zu\n", k);
    free(names);
}

static int cmd_reflect(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    gw_registry *r = NULL;
    gw_error e;
    gw_error_clear(&e);
    const char **svcs = calloc((size_t)argc, sizeof *svcs);
    for (int i = 4; i < argc; i++)
        svcs[i - 4] = argv[i];
    int rc = gw_reflect_fetch_registry(argv[2], argc > 4 ? svcs : NULL, 20000, &r, &e);
    free(svcs);
    if (rc != 0) {
        printf("error %s: %s\n", gw_err_str(rc), e.msg);
        return 0;
    }
    dump(r, argv[3]);
    gw_registry_del(r);
    return 0;
}

/* Two backends into one builder. */
static int cmd_into(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    gw_registry_builder *bld = gw_registry_builder_new();
    gw_registry *r = NULL;
    gw_error e;
    gw_error_clear(&e);
    int rc = gw_reflect_fetch_into(argv[2], NULL, NULL, 20000, bld, &e);
    if (rc == 0)
        rc = gw_reflect_fetch_into(argv[3], NULL, NULL, 20000, bld, &e);
    if (rc == 0)
        rc = gw_registry_builder_build(bld, &r, &e);
    gw_registry_builder_del(bld);
    if (rc != 0) {
        printf("error %s: %s\n", gw_err_str(rc), e.msg);
        return 0;
    }
    dump(r, argv[4]);
    gw_registry_del(r);
    return 0;
}

/* The asynchronous API on our own loop: which protocol version answered. */
static bool v_done;

static void on_version(void *owner, int rc, const gw_reflect_result *res, const gw_error *e)
{
    (void)owner;
    v_done = true;
    if (rc != 0) {
        printf("error %s\n", e->msg);
        return;
    }
    printf("version %s services=%zu files=%zu\n", res->version, res->service_count, res->file_count);
    gw_registry *r = NULL;
    gw_error be;
    if (gw_reflect_build_registry(res, &r, &be) != 0) {
        printf("build error %s\n", be.msg);
        return;
    }
    printf("registry services=%zu\n", gw_registry_service_count(r));
    gw_registry_del(r);
}

static int cmd_version(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    gw_loop *l = gw_loop_new();
    gw_backend *b;
    gw_reflect *rf;
    gw_error e;
    if (gw_backend_new(l, argv[2], NULL, &b, &e) != 0 ||
        gw_reflect_start(b, NULL, 20000, on_version, NULL, &rf, &e) != 0) {
        printf("error %s\n", e.msg);
        return 1;
    }
    while (!v_done)
        gw_loop_run_once(l, 100);
    gw_backend_del(b);
    gw_loop_run_once(l, 0);
    gw_loop_del(l);
    return 0;
}

static int cmd_desc(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    gw_registry *r = NULL;
    gw_error e;
    const char *paths[] = {argv[2]};
    if (gw_registry_load(&r, paths, 1, &e) != 0) {
        printf("error %s\n", e.msg);
        return 1;
    }
    dump(r, argv[3]);
    gw_registry_del(r);
    return 0;
}

/* ---- load balancing under load ----------------------------------------------------- */

#define IN_FLIGHT 4
#define ECHO_PATH "/demo.v1.EchoService/Echo"

typedef struct lcall {
    gw_ucall *call;
    bool got_reply;
    gw_timer pace;
} lcall;

static gw_loop *loop;
static gw_cluster *cluster;
static lcall calls[IN_FLIGHT];
static uint64_t n_ok, n_failed;
static char fail_msgs[8][300];
static size_t n_fail_msgs;
static uint64_t *base_started;
static size_t n_base;
static bool quitting;
static gw_io stdin_io;
static char line[256];
static size_t line_len;

static void start_call(lcall *c);

static void l_headers(void *o, const gw_header *md, size_t n)
{
    (void)o;
    (void)md;
    (void)n;
}

static void l_message(void *o, const uint8_t *msg, size_t len, size_t wire)
{
    lcall *c = o;
    (void)msg;
    (void)len;
    c->got_reply = true;
    gw_ucall_consume(c->call, wire);
}

static void l_writable(void *o) { (void)o; }

static void l_complete(void *o, const gw_call_status *st)
{
    lcall *c = o;
    c->call = NULL;
    if (st->code == GW_CODE_OK && c->got_reply) {
        n_ok++;
    } else {
        n_failed++;
        if (n_fail_msgs < GW_ARRAY_LEN(fail_msgs))
            snprintf(fail_msgs[n_fail_msgs++], sizeof fail_msgs[0], "%s %s%s", gw_code_name(st->code),
                     st->message, st->connection_lost ? " [in flight]" : "");
    }
    /* A short pause between calls keeps the load light on a shared
     * machine, and a fail-fast answer from spinning inside one loop turn. */
    if (!quitting)
        gw_loop_timer_start(loop, &c->pace, gw_loop_now(loop) + 2 * GW_MS);
}

static void on_pace(void *arg) { start_call(arg); }

static const gw_ucall_handlers lh = {l_headers, l_message, l_writable, l_complete};

static void start_call(lcall *c)
{
    /* EchoRequest{message = "lb"}, framed. */
    static const uint8_t req[] = {0, 0, 0, 0, 4, 0x0a, 0x02, 'l', 'b'};
    const char *dl = getenv("CLUSTER_DRIVER_DEADLINE_MS");
    uint64_t deadline_ms = dl ? strtoull(dl, NULL, 10) : 10000;
    gw_ucall_params p = {.path = ECHO_PATH, .deadline_ns = gw_now_ns() + deadline_ms * GW_MS};
    gw_error e;
    c->got_reply = false;
    if (gw_cluster_ucall_start(cluster, &p, &lh, c, &c->call, &e) != 0) {
        fprintf(stderr, "start: %s\n", e.msg);
        exit(1);
    }
    gw_ucall_write(c->call, req, sizeof req);
    gw_ucall_close_send(c->call);
}

static void report(void)
{
    size_t n = gw_cluster_endpoint_count(cluster);
    if (n > n_base) {
        base_started = realloc(base_started, n * sizeof *base_started);
        memset(base_started + n_base, 0, (n - n_base) * sizeof *base_started);
        n_base = n;
    }
    printf("report ok=%llu failed=%llu\n", (unsigned long long)n_ok, (unsigned long long)n_failed);
    for (size_t i = 0; i < n; i++) {
        gw_endpoint_stats s;
        gw_cluster_endpoint_stats(cluster, i, &s);
        gw_backend_stats bs;
        gw_backend_get_stats(gw_cluster_endpoint_backend(cluster, i), &bs);
        printf("endpoint %s healthy=%d calls=%llu checks_ok=%llu checks_failed=%llu connects_ok=%llu\n",
               s.url, s.healthy, (unsigned long long)(s.calls_started - base_started[i]),
               (unsigned long long)s.checks_ok, (unsigned long long)s.checks_failed,
               (unsigned long long)bs.connects_ok);
        base_started[i] = s.calls_started;
    }
    for (size_t i = 0; i < n_fail_msgs; i++)
        printf("fail %s\n", fail_msgs[i]);
    gw_cluster_stats cs;
    gw_cluster_get_stats(cluster, &cs);
    printf("cluster healthy=%zu/%zu no_endpoint=%llu redirected=%llu ejections=%llu\n",
           cs.healthy_endpoints, cs.endpoints, (unsigned long long)cs.calls_no_endpoint,
           (unsigned long long)cs.calls_redirected, (unsigned long long)cs.ejections);
    printf("end\n");
    fflush(stdout);
    n_ok = n_failed = 0;
    n_fail_msgs = 0;
}

static void on_stdin(void *o, uint32_t ev)
{
    (void)o;
    (void)ev;
    char buf[256];
    ssize_t r = read(0, buf, sizeof buf);
    if (r <= 0) {
        if (r < 0 && errno == EAGAIN)
            return;
        quitting = true;
        gw_loop_stop(loop);
        return;
    }
    for (ssize_t i = 0; i < r; i++) {
        if (buf[i] != '\n') {
            if (line_len < sizeof line - 1)
                line[line_len++] = buf[i];
            continue;
        }
        line[line_len] = 0;
        line_len = 0;
        if (strcmp(line, "report") == 0) {
            report();
        } else if (strcmp(line, "quit") == 0) {
            quitting = true;
            gw_loop_stop(loop);
        }
    }
}

static int cmd_lb(int argc, char **argv)
{
    if (argc < 6)
        return 2;
    gw_cluster_options o;
    gw_cluster_options_init(&o);
    o.policy = strcmp(argv[2], "least") == 0 ? GW_LB_LEAST_OUTSTANDING : GW_LB_ROUND_ROBIN;
    o.health.interval_ms = (uint32_t)atoi(argv[3]);
    o.health.timeout_ms = o.health.interval_ms ? GW_MIN(o.health.interval_ms, 1000u) : 1000;
    if (strcmp(argv[4], "-") != 0)
        o.health.service = argv[4];
    loop = gw_loop_new();
    gw_error e;
    if (gw_cluster_new(loop, "demo", (const char *const *)argv + 5, (size_t)(argc - 5), &o, &cluster,
                       &e) != 0) {
        printf("error %s\n", e.msg);
        return 1;
    }
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    gw_loop_io_add(loop, &stdin_io, 0, GW_IO_READ, on_stdin, NULL);
    for (size_t i = 0; i < IN_FLIGHT; i++) {
        gw_timer_init(&calls[i].pace, on_pace, &calls[i]);
        start_call(&calls[i]);
    }
    printf("started\n");
    fflush(stdout);
    gw_loop_run(loop);
    gw_loop_io_remove(loop, &stdin_io);
    for (size_t i = 0; i < IN_FLIGHT; i++) {
        gw_loop_timer_stop(loop, &calls[i].pace);
        if (calls[i].call)
            gw_ucall_cancel(calls[i].call);
    }
    gw_cluster_del(cluster);
    gw_loop_run_once(loop, 0);
    gw_loop_del(loop);
    free(base_started);
    return 0;
}

int main(int argc, char **argv)
{
    gw_log_set_level(GW_LOG_WARN);
    if (argc >= 2 && strcmp(argv[1], "reflect") == 0)
        return cmd_reflect(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "into") == 0)
        return cmd_into(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "version") == 0)
        return cmd_version(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "desc") == 0)
        return cmd_desc(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "lb") == 0)
        return cmd_lb(argc, argv);
    fprintf(stderr, "usage: cluster_driver reflect|desc|lb ...\n");
    return 2;
}
