/* Unit tests for the operations pieces of serve: the Prometheus rendering
 * of per-worker counters (exact text after a known sequence of calls), the
 * access-log line, and the configuration keys they read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "server/ops.h"
#include "server/server.h"

static const gw_method_def echo = {.name = "Echo", .path = "/demo.v1.EchoService/Echo"};
static const gw_method_def dl = {.name = "Download", .path = "/demo.v1.EchoService/Download",
                                 .server_streaming = true};

static gw_call_report rep(const char *proto, const gw_method_def *m, int code, uint64_t us,
                          size_t in, size_t out)
{
    return (gw_call_report){.protocol = proto, .method = m, .http_status = 200, .code = code,
                            .request_bytes = in, .response_bytes = out, .start_ns = 1000000,
                            .end_ns = 1000000 + us * 1000, .completed = true};
}

/* The lines of text that start with prefix, joined. */
static char *grep(const char *text, const char *prefix)
{
    size_t cap = strlen(text) + 1, n = 0;
    char *out = calloc(1, cap);
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    return out;
}

static void test_metrics_render(void **state)
{
    (void)state;
    gw_metrics w[2];
    assert_int_equal(gw_metrics_init(&w[0]), 0);
    assert_int_equal(gw_metrics_init(&w[1]), 0);
    /* The sequence: worker 0 two OK echoes (0.5 ms, 30 ms), one NOT_FOUND;
     * worker 1 one OK echo (2 s), a stream and a client that went away
     * (code -1: counted as CANCELLED), a rejected unknown method, one REST
     * echo; and a call still running on worker 1. */
    static const struct {
        int worker;
        const char *proto;
        const gw_method_def *m;
        int code;
        uint64_t us;
        size_t in, out;
    } calls[] = {
        {0, "grpc-web", &echo, 0, 500, 10, 31},
        {0, "grpc-web", &echo, 0, 30000, 12, 33},
        {0, "grpc-web", &echo, 5, 100, 5, 0},
        {1, "grpc-web", &echo, 0, 2000000, 10, 31},
        {1, "grpc-web", &dl, 0, 1000, 7, 4000},
        {1, "grpc-web", &dl, -1, 1000, 7, 100},
        {1, "grpc-web", NULL, 12, 0, 0, 0},
        {1, "rest", &echo, 0, 700, 16, 16},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(calls); i++) {
        gw_call_report r = rep(calls[i].proto, calls[i].m, calls[i].code, calls[i].us,
                               calls[i].in, calls[i].out);
        gw_metrics_call_started(&w[calls[i].worker]);
        gw_metrics_observe(&w[calls[i].worker], &r);
    }
    gw_metrics_call_started(&w[1]);
    gw_backend_sample b0 = {.connections_open = 1, .connects_started = 2, .connects_ok = 1,
                            .endpoints = 1, .healthy_endpoints = 1};
    gw_backend_sample b1 = {.connections_open = 1, .connects_started = 1, .connects_ok = 1,
                            .queued_calls = 3, .endpoints = 1, .healthy_endpoints = 0};
    gw_metrics_set_backend(&w[0], 0, &b0);
    gw_metrics_set_backend(&w[1], 0, &b1);

    gw_metrics *ms[] = {&w[0], &w[1]};
    const char *names[] = {"http://127.0.0.1:5000"};
    gw_metrics_global g = {.backend_names = names, .backend_count = 1, .reloads_ok = 2,
                           .reloads_failed = 1, .ready = true, .workers = 2};
    gw_buf out;
    gw_buf_init(&out, 1 << 20);
    assert_int_equal(gw_metrics_render(ms, 2, &g, &out), 0);
    assert_int_equal(gw_buf_append_byte(&out, 0), 0);
    const char *text = (const char *)out.data;

    static const struct {
        const char *prefix, *want;
    } expect[] = {
        {"grpcgate_requests_total",
         "grpcgate_requests_total{protocol=\"grpc_web\",method=\"/demo.v1.EchoService/Download\","
         "code=\"OK\"} 1\n"
         "grpcgate_requests_total{protocol=\"grpc_web\",method=\"/demo.v1.EchoService/Download\","
         "code=\"CANCELLED\"} 1\n"
         "grpcgate_requests_total{protocol=\"grpc_web\",method=\"/demo.v1.EchoService/Echo\","
         "code=\"OK\"} 3\n"
         "grpcgate_requests_total{protocol=\"grpc_web\",method=\"/demo.v1.EchoService/Echo\","
         "code=\"NOT_FOUND\"} 1\n"
         "grpcgate_requests_total{protocol=\"grpc_web\",method=\"unknown\","
         "code=\"UNIMPLEMENTED\"} 1\n"
         "grpcgate_requests_total{protocol=\"rest\",method=\"/demo.v1.EchoService/Echo\","
         "code=\"OK\"} 1\n"},
        {"grpcgate_request_duration_seconds_bucket{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\"",
         "grpcgate_request_duration_seconds_bucket{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\",le=\"0.001\"} 2\n"
         "grpcgate_request_duration_seconds_bucket{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\",le=\"0.0025\"} 2\n"
         "grpcgate_request_duration_seconds_bucket{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\",le=\"0.005\"} 2\n"
         "grpcgate_request_duration_seconds_bucket{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\",le=\"0.01\"} 2\n"
         "grpcgate_request_duration_seconds_bucket{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\",le=\"0.025\"} 2\n"
         "grpcgate_request_duration_seconds_bucket{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\",le=\"0.05\"} 3\n"
         "grpcgate_request_duration_seconds_bucket{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\",le=\"0.1\"} 3\n"
         "grpcgate_request_duration_seconds_bucket{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\",le=\"0.25\"} 3\n"
         "grpcgate_request_duration_seconds_bucket{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\",le=\"0.5\"} 3\n"
         "grpcgate_request_duration_seconds_bucket{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\",le=\"1\"} 3\n"
         "grpcgate_request_duration_seconds_bucket{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\",le=\"2.5\"} 4\n"
         "grpcgate_request_duration_seconds_bucket{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\",le=\"10\"} 4\n"
         "grpcgate_request_duration_seconds_bucket{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\",le=\"+Inf\"} 4\n"},
        {"grpcgate_request_duration_seconds_sum{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\"",
         "grpcgate_request_duration_seconds_sum{protocol=\"grpc_web\",method=\"/demo.v1."
         "EchoService/Echo\"} 2.030600\n"},
        {"grpcgate_request_bytes_total",
         "grpcgate_request_bytes_total{protocol=\"grpc_web\",method=\"/demo.v1.EchoService/"
         "Download\"} 14\n"
         "grpcgate_request_bytes_total{protocol=\"grpc_web\",method=\"/demo.v1.EchoService/"
         "Echo\"} 37\n"
         "grpcgate_request_bytes_total{protocol=\"grpc_web\",method=\"unknown\"} 0\n"
         "grpcgate_request_bytes_total{protocol=\"rest\",method=\"/demo.v1.EchoService/"
         "Echo\"} 16\n"},
        {"grpcgate_response_bytes_total{protocol=\"grpc_web\",method=\"/demo.v1.EchoService/"
         "Download\"",
         "grpcgate_response_bytes_total{protocol=\"grpc_web\",method=\"/demo.v1.EchoService/"
         "Download\"} 4100\n"},
        {"grpcgate_active_calls", "grpcgate_active_calls 1\n"},
        {"grpcgate_upstream_connections{",
         "grpcgate_upstream_connections{backend=\"http://127.0.0.1:5000\",state=\"open\"} 2\n"},
        {"grpcgate_upstream_connects_total{",
         "grpcgate_upstream_connects_total{backend=\"http://127.0.0.1:5000\","
         "result=\"started\"} 3\n"
         "grpcgate_upstream_connects_total{backend=\"http://127.0.0.1:5000\",result=\"ok\"} 2\n"},
        {"grpcgate_upstream_queued_calls{",
         "grpcgate_upstream_queued_calls{backend=\"http://127.0.0.1:5000\"} 3\n"},
        {"grpcgate_upstream_endpoints{",
         "grpcgate_upstream_endpoints{backend=\"http://127.0.0.1:5000\",state=\"total\"} 2\n"
         "grpcgate_upstream_endpoints{backend=\"http://127.0.0.1:5000\",state=\"healthy\"} 1\n"},
        {"grpcgate_reloads_total{",
         "grpcgate_reloads_total{result=\"ok\"} 2\ngrpcgate_reloads_total{result=\"error\"} 1\n"},
        {"grpcgate_ready ", "grpcgate_ready 1\n"},
        {"grpcgate_workers ", "grpcgate_workers 2\n"},
        {"# TYPE", "# TYPE grpcgate_requests_total counter\n"
                   "# TYPE grpcgate_request_duration_seconds histogram\n"
                   "# TYPE grpcgate_request_bytes_total counter\n"
                   "# TYPE grpcgate_response_bytes_total counter\n"
                   "# TYPE grpcgate_active_calls gauge\n"
                   "# TYPE grpcgate_upstream_connections gauge\n"
                   "# TYPE grpcgate_upstream_connects_total counter\n"
                   "# TYPE grpcgate_upstream_queued_calls gauge\n"
                   "# TYPE grpcgate_upstream_endpoints gauge\n"
                   "# TYPE grpcgate_health_checks_total counter\n"
                   "# TYPE grpcgate_reloads_total counter\n"
                   "# TYPE grpcgate_ready gauge\n"
                   "# TYPE grpcgate_workers gauge\n"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(expect); i++) {
        char *got = grep(text, expect[i].prefix);
        if (strcmp(got, expect[i].want) != 0)
            fail_msg("%s:\n got: %s\nwant: %s", expect[i].prefix, got, expect[i].want);
        free(got);
    }
    gw_buf_free(&out);

    /* A label value with a quote, a backslash and a newline is escaped. */
    static const gw_method_def odd = {.name = "x", .path = "/a\"b\\c\nd"};
    gw_call_report r = rep("grpc-web", &odd, 0, 1, 0, 0);
    gw_metrics_observe(&w[0], &r);
    gw_buf_init(&out, 1 << 20);
    assert_int_equal(gw_metrics_render(ms, 2, &g, &out), 0);
    gw_buf_append_byte(&out, 0);
    assert_non_null(strstr((const char *)out.data,
                           "method=\"/a\\\"b\\\\c\\nd\",code=\"OK\"} 1\n"));
    gw_buf_free(&out);
    /* Over the output limit: GW_ELIMIT, not a truncated scrape. */
    gw_buf_init(&out, 100);
    assert_int_equal(gw_metrics_render(ms, 2, &g, &out), GW_ELIMIT);
    gw_buf_free(&out);
    gw_metrics_free(&w[0]);
    gw_metrics_free(&w[1]);
}

/* More distinct methods than the table holds end up under "other". */
/* After reloads the backends of the current generation sit at whatever
 * metrics slots their names got: the scrape shows exactly those, by name,
 * and a retired backend's slot (still holding its last sample) is not
 * shown; /readyz asks only the current backends. */
static void noop_owner(void *owner)
{
    (*(int *)owner)++;
}

static void test_metrics_backend_slots(void **state)
{
    (void)state;
    gw_metrics w[2];
    assert_int_equal(gw_metrics_init(&w[0]), 0);
    assert_int_equal(gw_metrics_init(&w[1]), 0);
    /* slot 0: "users" (current), slot 1: "old" (retired), slot 2: "echo" */
    static const struct {
        size_t worker, slot;
        gw_backend_sample b;
    } samples[] = {
        {0, 0, {.endpoints = 2, .healthy_endpoints = 2}},
        {1, 0, {.endpoints = 2, .healthy_endpoints = 1}},
        {0, 1, {.endpoints = 5, .healthy_endpoints = 0}},
        {1, 1, {.endpoints = 5, .healthy_endpoints = 0}},
        {0, 2, {.endpoints = 1, .healthy_endpoints = 1}},
        {1, 2, {.endpoints = 1, .healthy_endpoints = 1}},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(samples); i++)
        gw_metrics_set_backend(&w[samples[i].worker], samples[i].slot, &samples[i].b);

    int holds = 0;
    gw_ops_backends bs = {.names = {"echo", "users"}, .slots = {2, 0}, .count = 2,
                          .ref = noop_owner, .unref = noop_owner, .owner = &holds};
    gw_metrics *ms[] = {&w[0], &w[1]};
    gw_metrics_global g = {.backend_names = bs.names, .backend_count = bs.count,
                           .backend_slots = bs.slots, .workers = 2};
    gw_buf out;
    gw_buf_init(&out, 1 << 20);
    assert_int_equal(gw_metrics_render(ms, 2, &g, &out), 0);
    assert_int_equal(gw_buf_append_byte(&out, 0), 0);
    char *got = grep((const char *)out.data, "grpcgate_upstream_endpoints{");
    assert_string_equal(got,
                        "grpcgate_upstream_endpoints{backend=\"echo\",state=\"total\"} 2\n"
                        "grpcgate_upstream_endpoints{backend=\"users\",state=\"total\"} 4\n"
                        "grpcgate_upstream_endpoints{backend=\"echo\",state=\"healthy\"} 2\n"
                        "grpcgate_upstream_endpoints{backend=\"users\",state=\"healthy\"} 3\n");
    free(got);
    gw_buf_free(&out);

    /* Readiness: every current backend healthy in every worker. */
    static const struct {
        size_t slots[2], count;
        bool ready;
    } ready[] = {
        {{2, 0}, 2, true},   /* echo, users */
        {{2, 1}, 2, false},  /* echo, old: old has no healthy endpoint */
        {{1, 0}, 1, false},  /* old alone */
        {{0, 0}, 0, true},   /* no backends listed */
    };
    gw_metrics *mp[] = {&w[0], &w[1]};
    for (size_t i = 0; i < GW_ARRAY_LEN(ready); i++) {
        gw_ops o;
        memset(&o, 0, sizeof o);
        atomic_flag_clear(&o.backends_lock);
        atomic_flag_clear(&o.site_lock);
        o.metrics = mp;
        o.workers = 2;
        atomic_store(&o.loaded, true);
        gw_ops_backends cur = {.count = ready[i].count, .ref = noop_owner,
                               .unref = noop_owner, .owner = &holds};
        memcpy(cur.slots, ready[i].slots, sizeof ready[i].slots);
        holds = 0;
        gw_ops_backends_set(&o, &cur);
        if (gw_ops_ready(&o) != ready[i].ready)
            fail_msg("row %zu: ready %d", i, !ready[i].ready);
        gw_ops_backends_set(&o, NULL);
        assert_int_equal(holds, 3); /* get + put in gw_ops_ready, then the release */
    }
    gw_metrics_free(&w[0]);
    gw_metrics_free(&w[1]);
}

static void test_metrics_overflow(void **state)
{
    (void)state;
    gw_metrics m;
    assert_int_equal(gw_metrics_init(&m), 0);
    size_t n = GW_METRICS_MAX_SERIES;
    char(*paths)[32] = calloc(n, sizeof *paths);
    gw_method_def *defs = calloc(n, sizeof *defs);
    for (size_t i = 0; i < n; i++) {
        snprintf(paths[i], sizeof paths[i], "/s.S/M%zu", i);
        defs[i].path = paths[i];
        gw_call_report r = rep("grpc-web", &defs[i], 0, 1, 0, 0);
        gw_metrics_observe(&m, &r);
    }
    gw_metrics *ms[] = {&m};
    gw_metrics_global g = {.workers = 1};
    gw_buf out;
    gw_buf_init(&out, 16 << 20);
    assert_int_equal(gw_metrics_render(ms, 1, &g, &out), 0);
    gw_buf_append_byte(&out, 0);
    size_t kept = GW_METRICS_MAX_SERIES * 3 / 4;
    char want[128];
    snprintf(want, sizeof want, "method=\"other\",code=\"OK\"} %zu\n", n - kept);
    assert_non_null(strstr((const char *)out.data, want));
    gw_buf_free(&out);
    gw_metrics_free(&m);
    free(paths);
    free(defs);
}

/* limits.max_message_bytes bounds responses too unless max_response_message
 * is given (top level or per backend); the order of keys does not matter. */
static void test_message_limit_link(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        size_t upstream, backend; /* backend: the first named one, 0 if none */
    } rows[] = {
        {"{}", 4194304, 0},
        {"{\"limits\": {\"max_message_bytes\": 1000}}", 1000, 0},
        {"{\"limits\": {\"max_output_bytes\": 1000}}", 4194304, 0},
        {"{\"limits\": {\"max_message_bytes\": 1000},"
         " \"upstream\": {\"max_response_message\": 2000}}", 2000, 0},
        {"{\"backends\": {\"a\": {\"endpoints\": [\"http://a:1\"]}},"
         " \"limits\": {\"max_message_bytes\": 1000}}", 1000, 1000},
        {"{\"limits\": {\"max_message_bytes\": 1000},"
         " \"backends\": {\"a\": {\"endpoints\": [\"http://a:1\"],"
         " \"max_response_message\": 3000}}}", 1000, 3000},
        {"{\"upstream\": {\"max_response_message\": 2000},"
         " \"backends\": {\"a\": {\"endpoints\": [\"http://a:1\"]}},"
         " \"limits\": {\"max_message_bytes\": 1000}}", 2000, 2000},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(rows); i++) {
        gw_server_config c;
        gw_server_config_init(&c);
        gw_error e;
        gw_error_clear(&e);
        if (gw_server_config_parse(&c, rows[i].json, strlen(rows[i].json), "t.json", &e))
            fail_msg("row %zu: %s", i, e.msg);
        if (c.upstream.max_response_message != rows[i].upstream)
            fail_msg("row %zu: upstream %zu, want %zu", i, c.upstream.max_response_message,
                     rows[i].upstream);
        if (rows[i].backend) {
            assert_int_equal(c.backend_count, 1);
            if (c.backends[0].cluster.backend.max_response_message != rows[i].backend)
                fail_msg("row %zu: backend %zu, want %zu", i,
                         c.backends[0].cluster.backend.max_response_message, rows[i].backend);
        }
        gw_server_config_free(&c);
    }
}

static void test_accesslog_format(void **state)
{
    (void)state;
    static const gw_method_def weird = {.name = "x", .path = "/a\"b"};
    static const struct {
        const char *peer, *hm, *path, *proto;
        const gw_method_def *m;
        int http, code;
        uint64_t us;
        size_t in, out;
        bool completed;
        const char *backend, *want;
    } table[] = {
        {"127.0.0.1", "POST", "/demo.v1.EchoService/Echo", "grpc-web", &echo, 200, 0, 1234, 10,
         31, true, "http://127.0.0.1:5000",
         "{\"time\":\"2026-11-21T11:22:40.123Z\",\"peer\":\"127.0.0.1\",\"protocol\":"
         "\"grpc-web\",\"method\":\"/demo.v1.EchoService/Echo\",\"http_method\":\"POST\","
         "\"route\":\"/demo.v1.EchoService/Echo\",\"http_status\":200,\"grpc_status\":0,"
         "\"grpc_code\":\"OK\",\"request_bytes\":10,\"response_bytes\":31,"
         "\"duration_ms\":1.234,\"completed\":true,\"backend\":\"http://127.0.0.1:5000\",\"endpoint\":\"http://127.0.0.1:5001\"}\n"},
        /* unknown method, no backend, client gone (no status: CANCELLED) */
        {"::1", "GET", "/v1/x\n\"y", "rest", NULL, 0, -1, 0, 0, 0, false, NULL,
         "{\"time\":\"2026-11-21T11:22:40.123Z\",\"peer\":\"::1\",\"protocol\":\"rest\","
         "\"method\":null,\"http_method\":\"GET\",\"route\":\"/v1/x\\n\\\"y\","
         "\"http_status\":0,\"grpc_status\":1,\"grpc_code\":\"CANCELLED\",\"request_bytes\":0,"
         "\"response_bytes\":0,\"duration_ms\":0.000,\"completed\":false,\"backend\":null,\"endpoint\":null}\n"},
        {NULL, NULL, NULL, "grpc-web", &weird, 404, 5, 2000000, 1, 2, true, "b",
         "{\"time\":\"2026-11-21T11:22:40.123Z\",\"peer\":\"\",\"protocol\":\"grpc-web\","
         "\"method\":\"/a\\\"b\",\"http_method\":\"\",\"route\":\"\",\"http_status\":404,"
         "\"grpc_status\":5,\"grpc_code\":\"NOT_FOUND\",\"request_bytes\":1,"
         "\"response_bytes\":2,\"duration_ms\":2000.000,\"completed\":true,\"backend\":\"b\",\"endpoint\":null}\n"},
        /* Invalid UTF-8 in the route (a lone continuation byte, a truncated
         * sequence, an overlong '/', a surrogate): each bad byte becomes
         * U+FFFD so the line stays valid JSON; valid UTF-8 passes through. */
        {"p", "GET", "/v1/\x80" "a\xc3/\xc0\xaf\xed\xa0\x80\xc3\xa9\xf0\x9f\x98\x80", "rest", NULL,
         404, 5, 0, 0, 0, true, NULL,
         "{\"time\":\"2026-11-21T11:22:40.123Z\",\"peer\":\"p\",\"protocol\":\"rest\","
         "\"method\":null,\"http_method\":\"GET\",\"route\":\"/v1/\xef\xbf\xbd" "a\xef\xbf\xbd/"
         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9\xf0\x9f\x98\x80\","
         "\"http_status\":404,\"grpc_status\":5,\"grpc_code\":\"NOT_FOUND\",\"request_bytes\":0,"
         "\"response_bytes\":0,\"duration_ms\":0.000,\"completed\":true,\"backend\":null,\"endpoint\":null}\n"},
    };
    const uint64_t when = 1795260160123000000ull; /* 2026-11-21T11:22:40.123Z */
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++) {
        gw_call_report r = rep(table[i].proto, table[i].m, table[i].code, table[i].us,
                               table[i].in, table[i].out);
        r.http_status = table[i].http;
        r.completed = table[i].completed;
        if (i == 0)
            snprintf(r.endpoint, sizeof r.endpoint, "%s", "http://127.0.0.1:5001");
        gw_buf b;
        gw_buf_init(&b, 4096);
        assert_int_equal(gw_accesslog_format(&b, when, table[i].peer, table[i].hm,
                                             table[i].path, &r, table[i].backend),
                         0);
        gw_buf_append_byte(&b, 0);
        assert_string_equal((const char *)b.data, table[i].want);
        /* Every line is one JSON object a strict parser accepts. */
        json_error_t je;
        json_t *j = json_loads((const char *)b.data, 0, &je);
        if (!j)
            fail_msg("row %zu: not JSON: %s", i, je.text);
        json_decref(j);
        gw_buf_free(&b);
    }
    /* Too long for the line buffer: an error and nothing half-written. */
    gw_call_report r = rep("grpc-web", &echo, 0, 1, 0, 0);
    gw_buf b;
    gw_buf_init(&b, 64);
    assert_int_equal(gw_accesslog_format(&b, when, "p", "POST", "/x", &r, NULL), GW_ELIMIT);
    assert_int_equal(b.len, 0);
    gw_buf_free(&b);
}

static void test_config(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int rc;
        const char *msg;
    } errors[] = {
        {"{\"admin\": {\"listn\": \"x\"}}", GW_EINVAL, "unknown key 'admin.listn'"},
        {"{\"admin\": 1}", GW_EINVAL, "admin: expected an object"},
        {"{\"admin\": {\"prefix\": \"ops\"}}", GW_EINVAL, "admin.prefix: expected \"\" or"},
        {"{\"admin\": {\"prefix\": \"/ops/\"}}", GW_EINVAL, "admin.prefix: expected \"\" or"},
        {"{\"admin\": {\"metrics\": 1}}", GW_EINVAL, "admin.metrics: expected true or false"},
        {"{\"admin\": {\"drain_delay_ms\": -1}}", GW_EINVAL, "admin.drain_delay_ms: expected"},
        {"{\"tls\": {\"cert\": \"a\"}}", GW_EINVAL, "unknown key 'tls.cert'"},
        {"{\"access_log\": true}", GW_EINVAL, "access_log: expected a non-empty string or false"},
        {"{\"access_log\": \"\"}", GW_EINVAL, "access_log: expected a non-empty string"},
        {"{\"openapi_path\": \"openapi.json\"}", GW_EINVAL,
         "openapi_path: expected a path starting with /"},
        {"{\"backends\": []}", GW_EINVAL, "backends: expected an object of named backends"},
        {"{\"backends\": {\"a\": {}}}", GW_EINVAL, "backends.a: no endpoints"},
        {"{\"backends\": {\"a\": {\"endpoints\": [1]}}}", GW_EINVAL,
         "backends.a.endpoints[0]: expected a URL"},
        {"{\"backends\": {\"a\": {\"endpoints\": [\"http://h:1\"], \"pool\": 1}}}", GW_EINVAL,
         "unknown key 'backends.a.pool'"},
        {"{\"backends\": {\"a\": {\"endpoints\": [\"http://h:1\"], \"tls\": {\"ca\": \"x\"}}}}",
         GW_EINVAL, "unknown key 'backends.a.tls.ca'"},
        {"{\"backends\": {\"a\": {\"endpoints\": [\"http://h:1\"], \"health\": 1}}}",
         GW_EINVAL, "backends.a.health: expected an object"},
        {"{\"backends\": {\"default\": {\"endpoints\": [\"http://h:1\"]}}}", GW_EINVAL,
         "backends: the name 'default' is reserved"},
        {"{\"routes\": {}}", GW_EINVAL, "routes: expected an array"},
        {"{\"routes\": [{\"match\": \"a\"}]}", GW_EINVAL,
         "routes[0]: expected {\"match\": \"...\", \"backend\": \"...\"}"},
        {"{\"routes\": [{\"match\": \"\", \"backend\": \"b\"}]}", GW_EINVAL, "routes[0]: expected"},
        {"{\"reflect\": 1}", GW_EINVAL, "reflect: expected true or false"},
        {"{\"tls\": {\"priorities\": 1}}", GW_EINVAL, "tls.priorities: expected a string"},
        {"{\"backend_tls\": {\"ca\": \"x\"}}", GW_EINVAL, "unknown key 'backend_tls.ca'"},
        {"{\"backend_tls\": \"x\"}", GW_EINVAL, "backend_tls: expected an object"},
        {"{\"backend_tls\": {\"ca_file\": 1}}", GW_EINVAL,
         "backend_tls.ca_file: expected a string"},
        {"{\"debug_errors\": \"yes\"}", GW_EINVAL, "debug_errors: expected true or false"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(errors); i++) {
        gw_server_config c;
        gw_server_config_init(&c);
        gw_error e;
        gw_error_clear(&e);
        int rc = gw_server_config_parse(&c, errors[i].json, strlen(errors[i].json), "t.json", &e);
        if (rc != errors[i].rc || !strstr(e.msg, errors[i].msg))
            fail_msg("%s: rc %d '%s', want %d '%s'", errors[i].json, rc, e.msg, errors[i].rc,
                     errors[i].msg);
        gw_server_config_free(&c);
    }

    /* Defaults, then every key. */
    gw_server_config c;
    gw_server_config_init(&c);
    assert_null(c.admin_listen);
    assert_null(c.ops_prefix);
    assert_true(c.ops_on_main_port);
    assert_true(c.metrics_enabled);
    assert_false(c.reload_endpoint);
    assert_int_equal(c.drain_delay_ms, 0);
    assert_null(c.access_log);
    assert_string_equal(c.openapi_path, "/openapi.json");
    assert_null(c.tls_priorities);
    assert_null(c.backend_ca);
    assert_false(c.debug_errors);
    static const char all[] =
        "{\"admin\": {\"listen\": \"127.0.0.1:0\", \"prefix\": \"/ops\", \"on_main_port\": false,"
        " \"metrics\": false, \"reload_endpoint\": true, \"drain_delay_ms\": 1500},"
        " \"access_log\": \"-\", \"openapi_path\": false,"
        " \"tls\": {\"cert_file\": \"c.pem\", \"key_file\": \"k.pem\","
        " \"client_ca_file\": \"ca.pem\", \"priorities\": \"NORMAL\"},"
        " \"backend_tls\": {\"ca_file\": \"bca.pem\", \"cert_file\": \"bc.pem\","
        " \"key_file\": \"bk.pem\", \"server_name\": \"b.internal\"},"
        " \"debug_errors\": true}";
    gw_error e;
    gw_error_clear(&e);
    assert_int_equal(gw_server_config_parse(&c, all, strlen(all), "t.json", &e), 0);
    assert_string_equal(c.admin_listen, "127.0.0.1:0");
    assert_string_equal(c.ops_prefix, "/ops");
    assert_false(c.ops_on_main_port);
    assert_false(c.metrics_enabled);
    assert_true(c.reload_endpoint);
    assert_int_equal(c.drain_delay_ms, 1500);
    assert_string_equal(c.access_log, "-");
    assert_null(c.openapi_path);
    assert_string_equal(c.tls_cert, "c.pem");
    assert_string_equal(c.tls_key, "k.pem");
    assert_string_equal(c.tls_client_ca, "ca.pem");
    assert_string_equal(c.tls_priorities, "NORMAL");
    assert_string_equal(c.backend_ca, "bca.pem");
    assert_string_equal(c.backend_cert, "bc.pem");
    assert_string_equal(c.backend_key, "bk.pem");
    assert_string_equal(c.backend_server_name, "b.internal");
    assert_true(c.debug_errors);
    gw_server_config_free(&c);

    /* Backends and routes: every key, defaults from "upstream". */
    gw_server_config_init(&c);
    static const char be[] =
        "{\"upstream\": {\"pool_size\": 3, \"connect_timeout_ms\": 777},"
        " \"reflect\": true, \"reflect_timeout_ms\": 2500,"
        " \"backends\": {"
        "  \"users\": {\"endpoints\": [\"http://a:1\", \"http://b:2\"],"
        "   \"policy\": \"least_outstanding\", \"pool_size\": 2, \"max_queued_calls\": 9,"
        "   \"max_response_message\": 1000, \"probe_interval_ms\": 300, \"dns_refresh_ms\": 0,"
        "   \"health\": {\"interval_ms\": 500, \"timeout_ms\": 400, \"unhealthy_threshold\": 3,"
        "    \"healthy_threshold\": 2, \"service\": \"users\"},"
        "   \"tls\": {\"ca_file\": \"ca\", \"cert_file\": \"c\", \"key_file\": \"k\","
        "    \"server_name\": \"sn\"}, \"reflect\": true},"
        "  \"echo\": {\"endpoints\": [\"unix:/tmp/s\"]}},"
        " \"routes\": [{\"match\": \"demo.v1.UserService\", \"backend\": \"users\"},"
        "  {\"match\": \"*\", \"backend\": \"echo\"}]}";
    gw_error_clear(&e);
    assert_int_equal(gw_server_config_parse(&c, be, strlen(be), "t.json", &e), 0);
    assert_true(c.reflect);
    assert_int_equal(c.reflect_timeout_ms, 2500);
    assert_int_equal(c.backend_count, 2);
    const gw_server_backend *u = &c.backends[0];
    assert_string_equal(u->name, "users");
    assert_int_equal(u->endpoint_count, 2);
    assert_string_equal(u->endpoints[1], "http://b:2");
    assert_int_equal(u->cluster.policy, GW_LB_LEAST_OUTSTANDING);
    assert_int_equal(u->cluster.backend.pool_size, 2);
    assert_int_equal(u->cluster.backend.connect_timeout_ms, 777);
    assert_int_equal(u->cluster.backend.max_queued_calls, 9);
    assert_int_equal(u->cluster.backend.max_response_message, 1000);
    assert_int_equal(u->cluster.probe_interval_ms, 300);
    assert_int_equal(u->cluster.dns_refresh_ms, 0);
    assert_int_equal(u->cluster.health.interval_ms, 500);
    assert_int_equal(u->cluster.health.timeout_ms, 400);
    assert_int_equal(u->cluster.health.unhealthy_threshold, 3);
    assert_int_equal(u->cluster.health.healthy_threshold, 2);
    assert_string_equal(u->cluster.health.service, "users");
    assert_string_equal(u->cluster.backend.ca_file, "ca");
    assert_string_equal(u->cluster.backend.cert_file, "c");
    assert_string_equal(u->cluster.backend.key_file, "k");
    assert_string_equal(u->cluster.backend.server_name, "sn");
    assert_true(u->reflect);
    const gw_server_backend *x = &c.backends[1];
    assert_int_equal(x->cluster.policy, GW_LB_ROUND_ROBIN);
    assert_int_equal(x->cluster.backend.pool_size, 3);   /* from "upstream" */
    assert_int_equal(x->cluster.health.interval_ms, 0);  /* health checks off */
    assert_int_equal(x->cluster.dns_refresh_ms, 30000);
    assert_int_equal(c.route_count, 2);
    assert_string_equal(c.routes[0].match, "demo.v1.UserService");
    assert_string_equal(c.routes[0].backend, "users");
    assert_string_equal(c.routes[1].match, "*");
    gw_server_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_metrics_backend_slots),
        cmocka_unit_test(test_metrics_overflow),
        cmocka_unit_test(test_accesslog_format),
        cmocka_unit_test(test_message_limit_link),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
