/*
 * The answers grpc-gateway 1.6.4 gives (bench/peers/README.md, "What
 * grpc-gateway 1.6.4 answers"), reproduced at the level of src/rest with
 * bench.proto: the same request binding, and with proto_names and
 * grpc_gateway_v1_errors the same response bytes and HTTP statuses. The
 * end-to-end comparison against the running peer is a separate test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rest/rest.h"

static const char *desc_path;
static gw_registry *reg;
static gw_router *router;
static gw_rest_options opts;

#define ITEM7                                                                              \
    "{\"id\":\"7\",\"name\":\"item-7\",\"note\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"tags\":[\"alpha\",\"beta\"," \
    "\"gamma\"],\"status\":\"STATUS_ACTIVE\",\"dimensions\":{\"width\":1.5,\"height\":2.25,"    \
    "\"depth\":0.125},\"labels\":{\"color\":\"blue\",\"size\":\"m\"},\"created_at\":"          \
    "\"2024-01-02T03:04:05.678Z\",\"revision\":\"1007\",\"in_stock\":true,\"scores\":[1,2,3,5," \
    "8],\"checksum\":\"2eDn7vX8AwoRGB8mLTQ7Qg==\"}"

#define ITEM1                                                                              \
    "{\"id\":\"1\",\"name\":\"item-1\",\"note\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
    "xxxxxxxxxxxxxxxxxxxx\",\"tags\":[\"alpha\",\"beta\",\"gamma\"],\"status\":"               \
    "\"STATUS_ACTIVE\",\"dimensions\":{\"width\":1.5,\"height\":2.25,\"depth\":0.125},"        \
    "\"labels\":{\"color\":\"blue\",\"size\":\"m\"},\"created_at\":"                           \
    "\"2024-01-02T03:04:05.678Z\",\"revision\":\"1001\",\"in_stock\":true,\"scores\":[1,2,3,5," \
    "8],\"checksum\":\"HyYtNDtCSVBXXmVsc3qBiA==\"}"

/* Routes the request, builds the message and returns it as proto-name JSON;
 * the route goes to *rt. */
static void request(const char *method, const char *target, const char *ct, const char *body,
                    gw_arena *a, const gw_route **rt, char *json, size_t cap, gw_buf *wire)
{
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    gw_route_match *m = gw_arena_calloc(a, sizeof(*m));
    gw_error e;
    assert_int_equal(gw_router_match(router, method, target, plen, a, m, &e), 0);
    assert_int_equal(m->result, GW_ROUTE_MATCHED);
    *rt = m->route;
    gw_rest_status st;
    assert_int_equal(gw_rest_check_content_type(&opts, m->route, ct, &st), 0);
    gw_rest_request rq = {.registry = reg, .match = m, .query = q ? q + 1 : NULL,
                          .query_len = q ? strlen(q + 1) : 0, .content_type = ct,
                          .body = (const uint8_t *)body, .body_len = body ? strlen(body) : 0};
    gw_rest_print print;
    if (gw_rest_build_request(&opts, &rq, wire, &print, &st))
        fail_msg("%s %s: %s", method, target, st.message);
    gw_codec_options co;
    gw_codec_options_init(&co);
    co.proto_names = true;
    gw_buf js;
    gw_buf_init(&js, cap - 1);
    assert_int_equal(gw_codec_proto_to_json(reg, m->route->method->input, wire->data, wire->len,
                                            &co, &js, &e), 0);
    snprintf(json, cap, "%s", js.len ? (char *)js.data : "");
    gw_buf_free(&js);
}

static void encode(const char *type, const char *json, gw_buf *out)
{
    gw_error e;
    if (gw_codec_json_to_proto(reg, gw_registry_message(reg, type), json, strlen(json), NULL, out,
                               &e))
        fail_msg("%s: %s", type, e.msg);
}

static void test_echo(void **state)
{
    (void)state;
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    const gw_route *rt;
    char json[512];
    gw_buf wire, out;
    gw_buf_init(&wire, 0);
    gw_buf_init(&out, 0);
    /* curl -d sends application/x-www-form-urlencoded */
    request("POST", "/v1/echo", "application/x-www-form-urlencoded",
            "{\"message\":\"hi\",\"number\":\"5\"}", &a, &rt, json, sizeof(json), &wire);
    assert_string_equal(json, "{\"message\":\"hi\",\"number\":\"5\"}");
    /* the backend echoes the same fields: EchoResponse has the same numbers */
    char ct[64];
    gw_rest_status st;
    assert_int_equal(gw_rest_unary_response(&opts, reg, rt, NULL, wire.data, wire.len, &out, ct,
                                            sizeof(ct), &st), 0);
    assert_string_equal((char *)out.data, "{\"message\":\"hi\",\"number\":\"5\"}");
    assert_string_equal(ct, "application/json");
    /* {} echoes back as {} */
    gw_buf_reset(&wire);
    gw_buf_reset(&out);
    request("POST", "/v1/echo", NULL, "{}", &a, &rt, json, sizeof(json), &wire);
    assert_int_equal(gw_rest_unary_response(&opts, reg, rt, NULL, wire.data, wire.len, &out, ct,
                                            sizeof(ct), &st), 0);
    assert_string_equal((char *)out.data, "{}");
    gw_buf_free(&wire);
    gw_buf_free(&out);
    gw_arena_free(&a);
}

static void test_get_item(void **state)
{
    (void)state;
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    const gw_route *rt;
    char json[512];
    gw_buf wire, out, msg;
    gw_buf_init(&wire, 0);
    gw_buf_init(&out, 0);
    gw_buf_init(&msg, 0);
    request("GET", "/v1/items/7?noteSize=100", NULL, NULL, &a, &rt, json, sizeof(json), &wire);
    assert_string_equal(json, "{\"id\":\"7\",\"note_size\":100}");
    gw_buf_reset(&wire);
    request("GET", "/v1/items/7?note_size=100", NULL, NULL, &a, &rt, json, sizeof(json), &wire);
    assert_string_equal(json, "{\"id\":\"7\",\"note_size\":100}");
    encode("benchpb.v1.Item", ITEM7, &msg);
    char ct[64];
    gw_rest_status st;
    assert_int_equal(gw_rest_unary_response(&opts, reg, rt, NULL, msg.data, msg.len, &out, ct,
                                            sizeof(ct), &st), 0);
    assert_string_equal((char *)out.data, ITEM7);
    gw_buf_free(&wire);
    gw_buf_free(&out);
    gw_buf_free(&msg);
    gw_arena_free(&a);
}

static void test_list_items(void **state)
{
    (void)state;
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    const gw_route *rt;
    char json[512];
    gw_buf wire, out, msg;
    gw_buf_init(&wire, 0);
    gw_buf_init(&out, 0);
    gw_buf_init(&msg, 0);
    request("GET", "/v1/items?count=3", NULL, NULL, &a, &rt, json, sizeof(json), &wire);
    assert_string_equal(json, "{\"count\":3}");
    assert_int_equal(gw_rest_stream_format_from_accept("*/*"), GW_REST_STREAM_NDJSON);
    assert_string_equal(gw_rest_stream_content_type(GW_REST_STREAM_NDJSON), "application/json");
    encode("benchpb.v1.Item", ITEM1, &msg);
    gw_rest_status st;
    assert_int_equal(gw_rest_stream_message(&opts, reg, rt, GW_REST_STREAM_NDJSON, msg.data,
                                            msg.len, &out, &st), 0);
    assert_string_equal((char *)out.data, "{\"result\":" ITEM1 "}\n");
    gw_buf_free(&wire);
    gw_buf_free(&out);
    gw_buf_free(&msg);
    gw_arena_free(&a);
}

static void test_errors(void **state)
{
    (void)state;
    gw_buf out;
    gw_buf_init(&out, 0);
    int http;
    const char *m = "note_size must be in [0, 1048576]";
    assert_int_equal(gw_rest_error_response(&opts, reg, GW_CODE_INVALID_ARGUMENT, m, NULL, 0,
                                            &out, &http), 0);
    assert_int_equal(http, 400);
    assert_string_equal((char *)out.data,
                        "{\"error\":\"note_size must be in [0, 1048576]\",\"message\":"
                        "\"note_size must be in [0, 1048576]\",\"code\":3}");
    gw_buf_reset(&out);
    assert_int_equal(gw_rest_stream_error_first(&opts, reg, GW_CODE_INVALID_ARGUMENT, m, NULL, 0,
                                                &out, &http), 0);
    assert_int_equal(http, 400);
    assert_string_equal((char *)out.data,
                        "{\"error\":{\"grpc_code\":3,\"http_code\":400,\"message\":"
                        "\"note_size must be in [0, 1048576]\",\"http_status\":\"Bad Request\"}}");
    gw_buf_free(&out);
}

static int setup(void **state)
{
    (void)state;
    gw_error e;
    if (gw_registry_load(&reg, &desc_path, 1, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    router = gw_router_new(NULL);
    if (!router || gw_router_add_registry(router, reg, &e))
        return -1;
    gw_rest_options_init(&opts);
    opts.proto_names = true;
    opts.grpc_gateway_v1_errors = true;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gw_router_del(router);
    gw_registry_del(reg);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    desc_path = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo),
        cmocka_unit_test(test_get_item),
        cmocka_unit_test(test_list_items),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
