/*
 * Failure injection for src/route and src/rest (tests/common/oom.h): each
 * scenario is run once counting allocations, then once per allocation with
 * that one failing. Every run must end in a clean error (GW_ENOMEM, or a
 * status that says so) or success, never a crash; the sanitizer build
 * checks that nothing leaks on the error paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "oom.h"

#include "rest/rest.h"

static const char *desc_path;
static gw_registry *reg;

/* Returns 0 on success, GW_ENOMEM when an allocation failed and the code
 * reported it; anything else is a bug. */
typedef int (*scenario_fn)(void);

static int sc_router(void)
{
    gw_error e;
    gw_router *r = gw_router_new(NULL);
    if (!r)
        return GW_ENOMEM;
    int rc = gw_router_add_registry(r, reg, &e);
    if (rc == 0) {
        gw_arena a;
        gw_arena_init(&a, 0, 0);
        gw_route_match m;
        const char *p = "/v1/things/a%2Fb/inner/n";
        rc = gw_router_match(r, "PATCH", p, strlen(p), &a, &m, &e);
        if (rc == 0 && m.result != GW_ROUTE_MATCHED)
            rc = GW_EINVAL;
        gw_arena_free(&a);
    }
    gw_router_del(r);
    return rc;
}

static gw_router *shared_router;

static int one_request(const char *method, const char *target, const char *body)
{
    gw_rest_options o;
    gw_rest_options_init(&o);
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    gw_route_match m;
    gw_error e;
    gw_buf out, resp;
    gw_buf_init(&out, 0);
    gw_buf_init(&resp, 0);
    gw_rest_status st;
    int rc = gw_router_match(shared_router, method, target, plen, &a, &m, &e);
    if (rc)
        goto out;
    if (m.result != GW_ROUTE_MATCHED) {
        rc = GW_EINVAL;
        goto out;
    }
    gw_rest_request rq = {.registry = reg, .match = &m, .query = q ? q + 1 : NULL,
                          .query_len = q ? strlen(q + 1) : 0,
                          .content_type = "application/json",
                          .body = (const uint8_t *)body, .body_len = body ? strlen(body) : 0};
    gw_rest_print print;
    rc = gw_rest_build_request(&o, &rq, &out, &print, &st);
    if (rc == GW_ENOMEM && strcmp(st.message, "out of memory") != 0 &&
        !strstr(st.message, "out of memory"))
        fail_msg("ENOMEM with status '%s'", st.message);
    if (rc)
        goto out;
    char ct[64];
    rc = gw_rest_unary_response(&o, reg, m.route, &print, out.data, out.len, &resp, ct,
                                sizeof(ct), &st);
    if (rc)
        goto out;
    rc = gw_rest_stream_message(&o, reg, m.route, GW_REST_STREAM_NDJSON, out.data, out.len,
                                &resp, &st);
out:
    gw_buf_free(&out);
    gw_buf_free(&resp);
    gw_arena_free(&a);
    return rc;
}

static int sc_query(void)
{
    return one_request("GET",
                       "/v1/all/x?f_int32=5&tags=a&tags=b&labels[k]=v&inner.deep.leaf=l"
                       "&ts=2024-01-02T03:04:05Z&pretty&inner.deep.depthLevel=2&inner.name=q",
                       NULL);
}

static int sc_body(void)
{
    return one_request("POST", "/v1/all/5/n", "{\"fInt64\":\"5\",\"inner\":{\"level\":2}}");
}

static int sc_patch(void)
{
    return one_request("PATCH", "/v1/things/t/inner/n", "{\"level\":3,\"deep\":{\"leaf\":\"x\"}}");
}

static int sc_errors(void)
{
    gw_rest_options o;
    gw_rest_options_init(&o);
    gw_buf det, out;
    gw_buf_init(&det, 0);
    gw_buf_init(&out, 0);
    int rc = 0, http;
    const char *url = "type.googleapis.com/google.rpc.BadRequest";
    const char *unknown = "type.googleapis.com/x.Y";
    gw_buf any;
    gw_buf_init(&any, 0);
    if ((rc = gw_wire_put_len_field(&any, 1, url, strlen(url))) ||
        (rc = gw_wire_put_len_field(&any, 2, "\x0a\x03\x0a\x01x", 5)) ||
        (rc = gw_wire_put_len_field(&det, 3, any.data, any.len)))
        goto out;
    gw_buf_reset(&any);
    if ((rc = gw_wire_put_len_field(&any, 1, unknown, strlen(unknown))) ||
        (rc = gw_wire_put_len_field(&any, 2, "\x01", 1)) ||
        (rc = gw_wire_put_len_field(&det, 3, any.data, any.len)))
        goto out;
    rc = gw_rest_error_response(&o, reg, 3, "bad", det.data, det.len, &out, &http);
    if (rc == 0)
        rc = gw_rest_stream_error(&o, reg, GW_REST_STREAM_SSE, 3, "bad", det.data, det.len, &out);
    o.grpc_gateway_v1_errors = true;
    if (rc == 0)
        rc = gw_rest_stream_error(&o, reg, GW_REST_STREAM_NDJSON, 3, "bad", det.data, det.len,
                                  &out);
out:
    gw_buf_free(&any);
    gw_buf_free(&det);
    gw_buf_free(&out);
    return rc;
}

static int sc_splitter(void)
{
    gw_json_splitter s;
    gw_json_splitter_init(&s, 1024);
    const char *body = "[{\"a\":1},{\"b\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}]";
    size_t pos = 0, len = strlen(body);
    gw_error e;
    int rc = 0;
    while (pos < len) {
        size_t used;
        const char *msg;
        size_t mlen;
        rc = gw_json_splitter_next(&s, (const uint8_t *)body + pos, len - pos, &used, &msg,
                                   &mlen, &e);
        pos += used;
        if (rc == GW_EAGAIN) {
            rc = 0;
            break;
        }
        if (rc)
            break;
    }
    gw_json_splitter_free(&s);
    return rc;
}

static void run_scenario(const char *name, scenario_fn fn)
{
    const char *failure = gw_oom_check(name, fn, false);
    if (failure)
        fail_msg("%s", failure);
}

static void test_oom(void **state)
{
    (void)state;
    run_scenario("router", sc_router);
    run_scenario("query", sc_query);
    run_scenario("body", sc_body);
    run_scenario("patch", sc_patch);
    run_scenario("errors", sc_errors);
    run_scenario("splitter", sc_splitter);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    desc_path = argv[1];
    gw_error e;
    if (gw_registry_load(&reg, &desc_path, 1, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    shared_router = gw_router_new(NULL);
    if (!shared_router || gw_router_add_registry(shared_router, reg, &e))
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_oom)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gw_router_del(shared_router);
    gw_registry_del(reg);
    return rc;
}
