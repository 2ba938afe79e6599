/*
 * src/rest against schemas/test/rest_test.proto: how every part of a REST
 * request binds (path, query, body), conflicts, PATCH masks, HttpBody,
 * content types, headers → metadata, grpc-timeout, the client-stream
 * splitter, and the response side (JSON, HttpBody, stream frames, errors,
 * status mapping).
 *
 * Request cases are checked by decoding the built wire bytes back to JSON
 * with proto field names, so that a table row reads like the message the
 * backend receives; a few rows also pin the exact bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rest/rest.h"

static const char *desc_path;
static gw_registry *reg;
static gw_router *router;

static int setup(void **state)
{
    (void)state;
    gw_error e;
    if (gw_registry_load(&reg, &desc_path, 1, &e)) {
        fprintf(stderr, "load %s: %s\n", desc_path, e.msg);
        return -1;
    }
    router = gw_router_new(NULL);
    if (!router || gw_router_add_registry(router, reg, &e)) {
        fprintf(stderr, "router: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gw_router_del(router);
    gw_registry_del(reg);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Request side, end to end through the router.
 */

typedef struct outcome {
    int rc;
    gw_rest_status st;
    bool pretty;
    char json[2048];   /* the request message as proto-name JSON */
    char hex[512];     /* the request message bytes */
} outcome;

static void to_hex(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && k + 3 < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%02x", i ? " " : "", p[i]);
}

static void run(const gw_rest_options *o, const char *method, const char *target,
                const char *ct, const char *body, outcome *res)
{
    memset(res, 0, sizeof(*res));
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    gw_route_match m;
    gw_error e;
    gw_error_clear(&e);
    res->rc = gw_router_match(router, method, target, plen, &a, &m, &e);
    if (res->rc) {
        res->st.code = GW_CODE_INVALID_ARGUMENT;
        res->st.http_status = 400;
        snprintf(res->st.message, sizeof(res->st.message), "%s", e.msg);
        goto out;
    }
    if (m.result != GW_ROUTE_MATCHED) {
        gw_rest_route_status(&m, method, target, plen, &res->st);
        res->rc = GW_ENOTFOUND;
        goto out;
    }
    res->rc = gw_rest_check_content_type(o, m.route, ct, &res->st);
    if (res->rc)
        goto out;
    gw_rest_request rq = {
        .registry = reg, .match = &m,
        .query = q ? q + 1 : NULL, .query_len = q ? strlen(q + 1) : 0,
        .content_type = ct,
        .body = (const uint8_t *)body, .body_len = body ? strlen(body) : 0,
    };
    gw_buf out;
    gw_buf_init(&out, 1 << 20);
    gw_rest_print print;
    res->rc = gw_rest_build_request(o, &rq, &out, &print, &res->st);
    res->pretty = print.pretty;
    if (res->rc == 0) {
        to_hex(out.data, out.len, res->hex, sizeof(res->hex));
        gw_codec_options co;
        gw_codec_options_init(&co);
        co.proto_names = true;
        gw_buf js;
        gw_buf_init(&js, sizeof(res->json) - 1);
        int rc = gw_codec_proto_to_json(reg, m.route->method->input, out.data, out.len, &co,
                                        &js, &e);
        if (rc)
            snprintf(res->json, sizeof(res->json), "<undecodable: %s>", e.msg);
        else
            snprintf(res->json, sizeof(res->json), "%s", (const char *)js.data);
        gw_buf_free(&js);
    }
    gw_buf_free(&out);
out:
    gw_arena_free(&a);
}

typedef struct req_case {
    const char *method;
    const char *target;
    const char *ct;
    const char *body;
    int http;           /* 200: built; else the status answered */
    const char *want;   /* 200: the request as JSON; else a substring of the message */
} req_case;

#define JSON_CT "application/json"

static const req_case req_cases[] = {
    /* path variables */
    {"GET", "/v1/all/hello", NULL, NULL, 200, "{\"f_string\":\"hello\"}"},
    {"GET", "/v1/all/a%2Fb%20c+d", NULL, NULL, 200, "{\"f_string\":\"a/b c+d\"}"},
    {"GET", "/v1/nested/lf", NULL, NULL, 200, "{\"inner\":{\"deep\":{\"leaf\":\"lf\"}}}"},
    {"GET", "/v1/all:search?f_int32=1", NULL, NULL, 200, "{\"f_int32\":1}"},
    {"POST", "/v1/inner/n:archive", JSON_CT, "{}", 200, "{\"name\":\"n\"}"},
    {"PATCH", "/v1/things/t%2F1/inner/n", JSON_CT, "", 200,
     "{\"inner\":{\"name\":\"n\"},\"parent\":\"things/t%2F1\"}"},
    /* query: every scalar type, proto names */
    {"GET",
     "/v1/all/x?f_double=1.5&f_float=-2.25&f_int64=-9007199254740993"
     "&f_uint64=18446744073709551615&f_int32=-5&f_fixed64=7&f_fixed32=8&f_bool=true"
     "&f_bytes=AQID&f_uint32=4294967295&f_enum=GREEN&f_sfixed32=-3&f_sfixed64=-4"
     "&f_sint32=-6&f_sint64=-7",
     NULL, NULL, 200,
     "{\"f_double\":1.5,\"f_float\":-2.25,\"f_int64\":\"-9007199254740993\","
     "\"f_uint64\":\"18446744073709551615\",\"f_int32\":-5,\"f_fixed64\":\"7\","
     "\"f_fixed32\":8,\"f_bool\":true,\"f_string\":\"x\",\"f_bytes\":\"AQID\","
     "\"f_uint32\":4294967295,\"f_enum\":\"GREEN\",\"f_sfixed32\":-3,\"f_sfixed64\":\"-4\","
     "\"f_sint32\":-6,\"f_sint64\":\"-7\"}"},
    /* JSON names, enum by number, bytes url-safe */
    {"GET", "/v1/all/x?fInt32=5&fEnum=1&fBytes=-_8", NULL, NULL, 200,
     "{\"f_int32\":5,\"f_string\":\"x\",\"f_bytes\":\"+/8=\",\"f_enum\":\"RED\"}"},
    /* nested messages */
    {"GET", "/v1/all/x?inner.name=n&inner.deep.leaf=l&inner.color=RED&inner.deep.depthLevel=2",
     NULL, NULL, 200,
     "{\"f_string\":\"x\",\"inner\":{\"name\":\"n\",\"color\":\"RED\","
     "\"deep\":{\"leaf\":\"l\",\"depth_level\":2}}}"},
    /* repeated by repetition, '+' and %-escapes */
    {"GET", "/v1/all/x?tags=a+b&tags=c%26d&nums=1&nums=-2&colors=RED&colors=2", NULL, NULL, 200,
     "{\"f_string\":\"x\",\"tags\":[\"a b\",\"c&d\"],\"nums\":[1,-2],"
     "\"colors\":[\"RED\",\"GREEN\"]}"},
    /* maps */
    {"GET", "/v1/all/x?labels[k1]=v1&labels%5Bk%202%5D=v2&by_id[7]=GREEN&byId[-1]=1", NULL,
     NULL, 200,
     "{\"f_string\":\"x\",\"labels\":{\"k 2\":\"v2\",\"k1\":\"v1\"},"
     "\"by_id\":{\"-1\":\"RED\",\"7\":\"GREEN\"}}"},
    /* well-known types from their JSON string forms */
    {"GET",
     "/v1/all/x?ts=2024-01-02T03:04:05.678Z&dur=1.5s&mask=inner.name,fInt32&w_int64=7"
     "&w_string=hi&w_bool=true",
     NULL, NULL, 200,
     "{\"f_string\":\"x\",\"ts\":\"2024-01-02T03:04:05.678Z\",\"dur\":\"1.500s\","
     "\"mask\":\"inner.name,fInt32\",\"w_int64\":\"7\",\"w_string\":\"hi\",\"w_bool\":true}"},
    /* proto3 optional */
    {"GET", "/v1/all/x?opt=0", NULL, NULL, 200, "{\"f_string\":\"x\",\"opt\":0}"},
    /* the path wins over the query; the last singular value wins */
    {"GET", "/v1/all/p?f_string=q&f_int32=1&f_int32=2", NULL, NULL, 200,
     "{\"f_int32\":2,\"f_string\":\"p\"}"},
    /* a NUL inside a name is just an unknown name */
    {"GET", "/v1/all/x?f_int32%00x=1&f%00=2", NULL, NULL, 200, "{\"f_string\":\"x\"}"},
    /* unknown parameters are ignored by default */
    {"GET", "/v1/all/x?nope=1&inner.nope=2&=3&&pretty", NULL, NULL, 200,
     "{\"f_string\":\"x\"}"},
    /* query errors */
    {"GET", "/v1/all/x?f_int32=abc", NULL, NULL, 400, "query parameter 'f_int32'"},
    {"GET", "/v1/all/x?f_int32=99999999999", NULL, NULL, 400, "query parameter 'f_int32'"},
    {"GET", "/v1/all/x?f_enum=BLUE", NULL, NULL, 400, "query parameter 'f_enum'"},
    {"GET", "/v1/all/x?f_bool=maybe", NULL, NULL, 400, "query parameter 'f_bool'"},
    {"GET", "/v1/all/x?ts=yesterday", NULL, NULL, 400, "query parameter 'ts'"},
    {"GET", "/v1/all/x?inner=1", NULL, NULL, 400,
     "query parameter 'inner': inner is a message; bind its fields"},
    {"GET", "/v1/all/x?st=1", NULL, NULL, 400, "query parameter 'st': st is a message"},
    {"GET", "/v1/all/x?inners=1", NULL, NULL, 400,
     "query parameter 'inners': repeated message fields cannot be bound"},
    {"GET", "/v1/all/x?inners.name=1", NULL, NULL, 400,
     "query parameter 'inners.name': field path 'inners.name': 'inners' is not a message"},
    {"GET", "/v1/all/x?labels=1", NULL, NULL, 400,
     "query parameter 'labels': labels is a map: use labels[key]=value"},
    {"GET", "/v1/all/x?f_int32[k]=1", NULL, NULL, 400,
     "query parameter 'f_int32[k]': f_int32 is not a map"},
    {"GET", "/v1/all/x?by_id[x]=RED", NULL, NULL, 400, "query parameter 'by_id[x]'"},
    {"GET", "/v1/all/x?f_string=%zz", NULL, NULL, 400,
     "query parameter 'f_string=%zz': malformed %-escape"},
    {"GET", "/v1/all/%zz", NULL, NULL, 400, "path variable f_string: malformed %-escape"},
    {"GET", "/v1/all:search?f_int32=1.5", NULL, NULL, 400, "query parameter 'f_int32'"},
    /* body "*" */
    {"POST", "/v1/all", JSON_CT, "{\"fString\":\"s\",\"f_int32\":3,\"inner\":{\"level\":1}}",
     200, "{\"f_int32\":3,\"f_string\":\"s\",\"inner\":{\"level\":1}}"},
    {"POST", "/v1/all", JSON_CT, "", 200, "{}"},
    {"POST", "/v1/all?f_int32=9", JSON_CT, "{}", 200, "{}"},
    {"POST", "/v1/all", JSON_CT, "{bad", 400, "body: "},
    {"POST", "/v1/all", JSON_CT, "{\"nope\":1}", 400, "body: "},
    {"POST", "/v1/all", JSON_CT, "{\"fInt32\":\"x\"}", 400, "body: "},
    {"POST", "/v1/all", JSON_CT, "[]", 400, "body: "},
    /* path and body: equal values are fine, different ones conflict */
    {"POST", "/v1/all/5/n", JSON_CT, "{\"fInt64\":\"5\",\"fInt32\":1}", 200,
     "{\"f_int64\":\"5\",\"f_int32\":1,\"inner\":{\"name\":\"n\"}}"},
    {"POST", "/v1/all/5/n", JSON_CT, "{\"f_int64\":5,\"inner\":{\"name\":\"n\",\"level\":2}}",
     200, "{\"f_int64\":\"5\",\"inner\":{\"name\":\"n\",\"level\":2}}"},
    {"POST", "/v1/all/5/n", JSON_CT, "{\"f_int64\":\"6\"}", 400,
     "field f_int64 is set by the path to '5' and by the body to '6'"},
    {"POST", "/v1/all/5/n", JSON_CT, "{\"inner\":{\"level\":2,\"name\":\"m\"}}", 400,
     "field inner.name is set by the path to 'n' and by the body to 'm'"},
    {"PATCH", "/v1/things/t/inner/n1", JSON_CT, "{\"name\":\"n2\"}", 400,
     "field inner.name is set by the path to 'n1' and by the body to 'n2'"},
    /* PATCH fills update_mask from the body's keys when the client sent none */
    {"PATCH", "/v1/things/t/inner/n1", JSON_CT, "{\"level\":3,\"deep\":{\"leaf\":\"x\"}}", 200,
     "{\"inner\":{\"name\":\"n1\",\"level\":3,\"deep\":{\"leaf\":\"x\"}},"
     "\"update_mask\":\"level,deep.leaf\",\"parent\":\"things/t\"}"},
    {"PATCH", "/v1/things/t/inner/n1?update_mask=level", JSON_CT,
     "{\"level\":3,\"color\":\"RED\"}", 200,
     "{\"inner\":{\"name\":\"n1\",\"level\":3,\"color\":\"RED\"},\"update_mask\":\"level\","
     "\"parent\":\"things/t\"}"},
    {"PATCH", "/v1/things/t/inner/n1", JSON_CT, "{\"name\":\"n1\"}", 200,
     "{\"inner\":{\"name\":\"n1\"},\"update_mask\":\"name\",\"parent\":\"things/t\"}"},
    {"PATCH", "/v1/things/t/inner/n1", JSON_CT, "{}", 200,
     "{\"inner\":{\"name\":\"n1\"},\"update_mask\":\"\",\"parent\":\"things/t\"}"},
    {"PUT", "/v1/inner/n1", JSON_CT, "{\"level\":3}", 200,
     "{\"inner\":{\"name\":\"n1\",\"level\":3}}"},
    /* body field: other fields come from the query, not the body field's */
    {"PUT", "/v1/inner/n1?parent=p&inner.level=4", JSON_CT, "{}", 200,
     "{\"inner\":{\"name\":\"n1\"},\"parent\":\"p\"}"},
    /* HttpBody as a body field and as the request type */
    {"POST", "/v1/files/f1", "image/png", "\x89PNG", 200,
     "{\"id\":\"f1\",\"file\":{\"content_type\":\"image/png\",\"data\":\"iVBORw==\"}}"},
    {"POST", "/v1/raw", "text/plain; charset=latin1", "hello", 200,
     "{\"content_type\":\"text/plain; charset=latin1\",\"data\":\"aGVsbG8=\"}"},
    {"POST", "/v1/raw", NULL, "", 200, "{}"},
    /* content types */
    {"POST", "/v1/all", "text/plain", "{}", 415, "unsupported Content-Type 'text/plain'"},
    {"POST", "/v1/all", "application/xml", "{}", 415, "unsupported Content-Type"},
    {"POST", "/v1/all", "application/json; charset=latin1", "{}", 415,
     "unsupported Content-Type"},
    {"POST", "/v1/all", "Application/JSON; Charset=\"UTF-8\"", "{}", 200, "{}"},
    {"POST", "/v1/all", "application/json;charset=utf-8", "{}", 200, "{}"},
    {"POST", "/v1/all", "application/x-www-form-urlencoded", "{\"fInt32\":2}", 200,
     "{\"f_int32\":2}"},
    {"POST", "/v1/all", NULL, "{\"fInt32\":2}", 200, "{\"f_int32\":2}"},
    {"GET", "/v1/all/x", "text/plain", NULL, 200, "{\"f_string\":\"x\"}"},
    /* routing failures */
    {"GET", "/nope", NULL, NULL, 404, "no route for GET /nope"},
    {"DELETE", "/v1/all", NULL, NULL, 405, "method DELETE not allowed for /v1/all (allowed: POST)"},
    /* auto-mapped unbound method */
    {"POST", "/rest.test.v1.RestTest/Unbound", JSON_CT, "{\"name\":\"u\"}", 200,
     "{\"name\":\"u\"}"},
};

/* Returns 1 on a mismatch (printed), so that one run lists every failing
 * row instead of stopping at the first. */
static int check_case(const gw_rest_options *o, const req_case *c)
{
    outcome res;
    run(o, c->method, c->target, c->ct, c->body, &res);
    int http = res.rc ? res.st.http_status : 200;
    bool ok = http == c->http &&
              (c->http == 200 ? strcmp(res.json, c->want) == 0
                              : strstr(res.st.message, c->want) != NULL);
    int want_code = c->http == 200   ? GW_CODE_OK
                    : c->http == 404 ? GW_CODE_NOT_FOUND
                    : c->http == 405 ? GW_CODE_UNIMPLEMENTED
                                     : GW_CODE_INVALID_ARGUMENT;
    if (ok && res.rc && res.st.code != want_code)
        ok = false;
    if (!ok)
        print_error("%s %s: got %d code %d '%s'; want %d '%s'\n", c->method, c->target, http,
                    res.st.code, res.rc ? res.st.message : res.json, c->http, c->want);
    return ok ? 0 : 1;
}

static void test_request_binding(void **state)
{
    (void)state;
    gw_rest_options o;
    gw_rest_options_init(&o);
    int failed = 0;
    for (size_t i = 0; i < GW_ARRAY_LEN(req_cases); i++)
        failed += check_case(&o, &req_cases[i]);
    assert_int_equal(failed, 0);
}

/*
 * Input errors are input errors (issue 12): a value out of range or of the
 * wrong numeric kind, anywhere a REST request carries one (body "*", a body
 * field, the query, a path variable, a client-stream message), and a body
 * nested deeper than the limit, are 400 INVALID_ARGUMENT naming the place.
 * check_case fails a row answered with any other status or code.
 */
static const req_case input_error_cases[] = {
    /* body "*": integers out of range */
    {"POST", "/v1/all", JSON_CT, "{\"fInt32\":2147483648}", 400,
     "body: fInt32: '2147483648' is out of range (at byte 10)"},
    {"POST", "/v1/all", JSON_CT, "{\"fInt32\":-2147483649}", 400, "body: fInt32: "},
    {"POST", "/v1/all", JSON_CT, "{\"fSint32\":\"2147483648\"}", 400, "body: fSint32: "},
    {"POST", "/v1/all", JSON_CT, "{\"fSfixed32\":-2147483649}", 400, "body: fSfixed32: "},
    {"POST", "/v1/all", JSON_CT, "{\"fUint32\":4294967296}", 400, "body: fUint32: "},
    {"POST", "/v1/all", JSON_CT, "{\"fUint32\":-1}", 400, "body: fUint32: '-1' is out of range"},
    {"POST", "/v1/all", JSON_CT, "{\"fFixed32\":\"-1\"}", 400, "body: fFixed32: "},
    {"POST", "/v1/all", JSON_CT, "{\"fInt64\":\"9223372036854775808\"}", 400,
     "body: fInt64: '9223372036854775808' is out of range"},
    {"POST", "/v1/all", JSON_CT, "{\"fSint64\":-9223372036854775809}", 400, "body: fSint64: "},
    {"POST", "/v1/all", JSON_CT, "{\"fUint64\":18446744073709551616}", 400,
     "body: fUint64: '18446744073709551616' is out of range"},
    {"POST", "/v1/all", JSON_CT, "{\"fFixed64\":-1}", 400, "body: fFixed64: "},
    {"POST", "/v1/all", JSON_CT, "{\"fInt32\":1e400}", 400, "body: fInt32: "},
    /* body "*": the wrong numeric kind */
    {"POST", "/v1/all", JSON_CT, "{\"fInt32\":0.5}", 400,
     "body: fInt32: '0.5' is not an integer (at byte 10)"},
    {"POST", "/v1/all", JSON_CT, "{\"fInt64\":\"1.5\"}", 400, "body: fInt64: '1.5' is not"},
    {"POST", "/v1/all", JSON_CT, "{\"fUint64\":2.5e0}", 400, "body: fUint64: "},
    {"POST", "/v1/all", JSON_CT, "{\"nums\":[1,0.5]}", 400, "body: nums[1]: '0.5' is not"},
    {"POST", "/v1/all", JSON_CT, "{\"fEnum\":1.5}", 400, "body: fEnum: "},
    {"POST", "/v1/all", JSON_CT, "{\"fEnum\":2147483648}", 400, "body: fEnum: "},
    /* floating point overflow */
    {"POST", "/v1/all", JSON_CT, "{\"fFloat\":3.5e38}", 400,
     "body: fFloat: number out of range for float"},
    {"POST", "/v1/all", JSON_CT, "{\"fFloat\":\"-1e39\"}", 400, "body: fFloat: "},
    {"POST", "/v1/all", JSON_CT, "{\"fDouble\":1e309}", 400,
     "body: fDouble: number out of range for double"},
    {"POST", "/v1/all", JSON_CT, "{\"st\":{\"k\":-1e309}}", 400, "body: st: "},
    /* well-known types out of range */
    {"POST", "/v1/all", JSON_CT, "{\"dur\":\"315576000001s\"}", 400,
     "body: dur: Duration \"315576000001s\" out of range"},
    {"POST", "/v1/all", JSON_CT, "{\"dur\":\"-315576000001s\"}", 400, "body: dur: "},
    {"POST", "/v1/all", JSON_CT, "{\"ts\":\"0000-12-31T23:59:59Z\"}", 400,
     "body: ts: Timestamp \"0000-12-31T23:59:59Z\" out of range"},
    {"POST", "/v1/all", JSON_CT, "{\"ts\":\"9999-12-31T23:59:59-00:01\"}", 400, "body: ts: "},
    {"POST", "/v1/all", JSON_CT, "{\"wInt64\":\"9223372036854775808\"}", 400, "body: wInt64: "},
    {"POST", "/v1/all", JSON_CT, "{\"byId\":{\"2147483648\":\"RED\"}}", 400, "body: byId: "},
    /* a body field */
    {"PUT", "/v1/inner/n1", JSON_CT, "{\"level\":2147483648}", 400,
     "body (field inner): inner.level: '2147483648' is out of range"},
    {"PUT", "/v1/inner/n1", JSON_CT, "{\"deep\":{\"depthLevel\":0.5}}", 400,
     "body (field inner): inner.deep.depthLevel: '0.5' is not an integer"},
    /* the query */
    {"GET", "/v1/all/x?f_int32=2147483648", NULL, NULL, 400, "query parameter 'f_int32'"},
    {"GET", "/v1/all/x?f_uint32=-1", NULL, NULL, 400, "query parameter 'f_uint32'"},
    {"GET", "/v1/all/x?f_int64=9223372036854775808", NULL, NULL, 400,
     "query parameter 'f_int64'"},
    {"GET", "/v1/all/x?f_uint64=18446744073709551616", NULL, NULL, 400,
     "query parameter 'f_uint64'"},
    {"GET", "/v1/all/x?f_int32=0.5", NULL, NULL, 400, "query parameter 'f_int32'"},
    {"GET", "/v1/all/x?nums=1&nums=0.5", NULL, NULL, 400, "query parameter 'nums'"},
    {"GET", "/v1/all/x?f_float=3.5e38", NULL, NULL, 400, "query parameter 'f_float'"},
    {"GET", "/v1/all/x?f_double=1e309", NULL, NULL, 400, "query parameter 'f_double'"},
    {"GET", "/v1/all/x?dur=315576000001s", NULL, NULL, 400, "query parameter 'dur'"},
    {"GET", "/v1/all/x?ts=0000-01-01T00:00:00Z", NULL, NULL, 400, "query parameter 'ts'"},
    {"GET", "/v1/all/x?w_int64=9223372036854775808", NULL, NULL, 400,
     "query parameter 'w_int64'"},
    {"GET", "/v1/all/x?by_id[2147483648]=RED", NULL, NULL, 400, "query parameter 'by_id"},
    /* a path variable */
    {"POST", "/v1/all/9223372036854775808/n", JSON_CT, "{}", 400, "f_int64"},
    {"POST", "/v1/all/0.5/n", JSON_CT, "{}", 400, "f_int64"},
};

static void test_input_errors(void **state)
{
    (void)state;
    gw_rest_options o;
    gw_rest_options_init(&o);
    int failed = 0;
    for (size_t i = 0; i < GW_ARRAY_LEN(input_error_cases); i++)
        failed += check_case(&o, &input_error_cases[i]);
    /* Depth (docs/codec.md): AllTypes 1 + Struct 1 + 2 per nested object +
     * the scalar's Value 1. 49 objects are 99 levels and pass; 50 are 101. */
    for (int objects = 49; objects <= 50; objects++) {
        char body[1024];
        size_t k = (size_t)snprintf(body, sizeof body, "{\"st\":");
        for (int i = 0; i < objects; i++)
            k += (size_t)snprintf(body + k, sizeof body - k, "{\"a\":");
        k += (size_t)snprintf(body + k, sizeof body - k, "1");
        for (int i = 0; i <= objects; i++)
            body[k++] = '}';
        body[k] = 0;
        req_case c = {"POST", "/v1/all", JSON_CT, body, objects == 49 ? 200 : 400,
                      objects == 49 ? NULL : "body: st: nesting deeper than 100 message levels"};
        if (objects == 49) {
            outcome res;
            run(&o, c.method, c.target, c.ct, c.body, &res);
            if (res.rc) {
                print_error("depth 99: got %d '%s'\n", res.st.http_status, res.st.message);
                failed++;
            }
        } else {
            failed += check_case(&o, &c);
        }
    }
    /* A client-stream message (NDJSON CreateUsers-like route). */
    static const char *const stream_rows[][2] = {
        {"{\"level\":2147483648}", "level: '2147483648' is out of range"},
        {"{\"level\":-0.5}", "level: '-0.5' is not an integer"},
        {"{\"deep\":{\"depthLevel\":1e10}}", "deep.depthLevel: '1e10' is out of range"},
    };
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    gw_route_match m;
    gw_error e;
    const char *p = "/v1/collect";
    assert_int_equal(gw_router_match(router, "POST", p, strlen(p), &a, &m, &e), 0);
    gw_buf out;
    gw_buf_init(&out, 0);
    for (size_t i = 0; i < GW_ARRAY_LEN(stream_rows); i++) {
        gw_rest_status st;
        gw_rest_status_clear(&st);
        gw_buf_reset(&out);
        int rc = gw_rest_build_stream_message(&o, reg, m.route, stream_rows[i][0],
                                              strlen(stream_rows[i][0]), &out, &st);
        if (rc == 0 || st.http_status != 400 || st.code != GW_CODE_INVALID_ARGUMENT ||
            !strstr(st.message, stream_rows[i][1])) {
            print_error("stream %s: got %d code %d '%s'\n", stream_rows[i][0], st.http_status,
                        st.code, st.message);
            failed++;
        }
    }
    gw_buf_free(&out);
    gw_arena_free(&a);
    assert_int_equal(failed, 0);
}

/* Exact bytes: body first, then query, then path (the path wins by merge). */
static void test_request_bytes(void **state)
{
    (void)state;
    gw_rest_options o;
    gw_rest_options_init(&o);
    outcome res;
    run(&o, "GET", "/v1/all/x?f_int32=5&f_string=y", NULL, NULL, &res);
    assert_int_equal(res.rc, 0);
    /* 28 05: f_int32=5; 4a 01 79: f_string="y"; 4a 01 78: f_string="x" */
    assert_string_equal(res.hex, "28 05 4a 01 79 4a 01 78");
    run(&o, "POST", "/v1/all/5/n", JSON_CT, "{\"fInt32\":1}", &res);
    assert_int_equal(res.rc, 0);
    /* body 28 01, then path: f_int64 18 05, inner{name "n"} a2 01 03 0a 01 6e */
    assert_string_equal(res.hex, "28 01 18 05 a2 01 03 0a 01 6e");
}

/*
 * Each singular sub-message occurs once in the built request, however many
 * of body, query and path bind inside it: the bytes a merging reader would
 * have built, which readers that do not merge (protobuf-c 1.4) can read.
 * Field numbers: AllTypes f_int64 3 (18), f_string 9 (4a), inner 20 (a2 01),
 * w_int64 29 (ea 01); Inner name 1 (0a), level 2 (10), deep 4 (22); Deep
 * leaf 1 (0a), depth_level 2 (10); UpdateRequest inner 1 (0a), update_mask 2
 * (12), parent 3 (1a); Wrapper inner 1 (0a); Choice pick 1 (0a), label 2 (12).
 */
static const struct {
    const char *method, *target, *body;
    const char *hex;     /* the exact request bytes */
    const char *json;    /* the same, as the backend reads it */
} one_sub_cases[] = {
    /* nested path variable + body "*": body inner{level 2}, then the path's
     * f_int64 and inner{name} → one inner, where the last one was */
    {"POST", "/v1/all/5/n", "{\"inner\":{\"level\":2}}", "18 05 a2 01 05 10 02 0a 01 6e",
     "{\"f_int64\":\"5\",\"inner\":{\"name\":\"n\",\"level\":2}}"},
    /* the same value from body and path: allowed, both inside one inner */
    {"POST", "/v1/all/5/n", "{\"inner\":{\"name\":\"n\",\"level\":2}}",
     "18 05 a2 01 08 0a 01 6e 10 02 0a 01 6e",
     "{\"f_int64\":\"5\",\"inner\":{\"name\":\"n\",\"level\":2}}"},
    /* nested path variable + body "inner" */
    {"PUT", "/v1/inner/n1", "{\"level\":3}", "0a 06 10 03 0a 02 6e 31",
     "{\"inner\":{\"name\":\"n1\",\"level\":3}}"},
    /* + a filled update_mask and a multi-segment variable */
    {"PATCH", "/v1/things/t/inner/n1", "{\"level\":3}",
     "12 07 0a 05 6c 65 76 65 6c 1a 08 74 68 69 6e 67 73 2f 74 0a 06 10 03 0a 02 6e 31",
     "{\"inner\":{\"name\":\"n1\",\"level\":3},\"update_mask\":\"level\","
     "\"parent\":\"things/t\"}"},
    /* two levels: query inner{deep{depth_level}}, inner{name}, path
     * inner{deep{leaf}} → inner{name, deep{depth_level, leaf}} */
    {"GET", "/v1/nested/lf?inner.deep.depthLevel=2&inner.name=q", NULL,
     "0a 0b 0a 01 71 22 06 10 02 0a 02 6c 66",
     "{\"inner\":{\"name\":\"q\",\"deep\":{\"leaf\":\"lf\",\"depth_level\":2}}}"},
    /* query parameters alone */
    {"GET", "/v1/all/x?inner.name=a&inner.level=2", NULL, "a2 01 05 0a 01 61 10 02 4a 01 78",
     "{\"f_string\":\"x\",\"inner\":{\"name\":\"a\",\"level\":2}}"},
    /* a wrapper given twice: one message, its last value wins inside */
    {"GET", "/v1/all/x?w_int64=1&w_int64=2", NULL, "ea 01 04 08 01 08 02 4a 01 78",
     "{\"f_string\":\"x\",\"w_int64\":\"2\"}"},
    /* one occurrence needs no rewrite; scalars stay as they were */
    {"GET", "/v1/all/x?inner.name=a&f_string=y", NULL, "a2 01 03 0a 01 61 4a 01 79 4a 01 78",
     "{\"f_string\":\"x\",\"inner\":{\"name\":\"a\"}}"},
    /* oneof: the member set last wins, and what came before another
     * member does not merge into it */
    {"GET", "/v1/choose?pick.name=a&pick.level=2", NULL, "0a 05 0a 01 61 10 02",
     "{\"pick\":{\"name\":\"a\",\"level\":2}}"},
    {"GET", "/v1/choose?pick.name=a&label=b&pick.level=2", NULL, "12 01 62 0a 02 10 02",
     "{\"pick\":{\"level\":2}}"},
    {"GET", "/v1/choose?pick.name=a&pick.level=2&label=b", NULL,
     "0a 05 0a 01 61 10 02 12 01 62", "{\"label\":\"b\"}"},
};

static void test_request_one_submessage(void **state)
{
    (void)state;
    gw_rest_options o;
    gw_rest_options_init(&o);
    int failed = 0;
    for (size_t i = 0; i < GW_ARRAY_LEN(one_sub_cases); i++) {
        outcome res;
        run(&o, one_sub_cases[i].method, one_sub_cases[i].target,
            one_sub_cases[i].body ? JSON_CT : NULL, one_sub_cases[i].body, &res);
        if (res.rc || strcmp(res.hex, one_sub_cases[i].hex) != 0 ||
            strcmp(res.json, one_sub_cases[i].json) != 0) {
            print_error("%s %s: rc %d '%s'\n  bytes %s\n  want  %s\n  json  %s\n  want  %s\n",
                        one_sub_cases[i].method, one_sub_cases[i].target, res.rc,
                        res.st.message, res.hex, one_sub_cases[i].hex, res.json,
                        one_sub_cases[i].json);
            failed++;
        }
    }
    /* conflicts keep their 400, with nested paths too */
    static const req_case conflicts[] = {
        {"POST", "/v1/all/5/n", JSON_CT, "{\"inner\":{\"name\":\"m\",\"level\":2}}", 400,
         "field inner.name is set by the path to 'n' and by the body to 'm'"},
        {"PUT", "/v1/inner/n1", JSON_CT, "{\"name\":\"n2\",\"level\":3}", 400,
         "field inner.name is set by the path to 'n1' and by the body to 'n2'"},
        {"PATCH", "/v1/things/t/inner/n1", JSON_CT, "{\"level\":3,\"name\":\"x\"}", 400,
         "field inner.name is set by the path to 'n1' and by the body to 'x'"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(conflicts); i++)
        failed += check_case(&o, &conflicts[i]);
    assert_int_equal(failed, 0);
}

static void test_request_options(void **state)
{
    (void)state;
    static const char *const ignored[] = {"key", "access_token"};
    gw_rest_options o;
    gw_rest_options_init(&o);
    o.strict_query = true;
    o.ignored_query = ignored;
    o.ignored_query_count = GW_ARRAY_LEN(ignored);
    static const req_case strict[] = {
        {"GET", "/v1/all/x?key=abc&access_token=t&pretty=false", NULL, NULL, 200,
         "{\"f_string\":\"x\"}"},
        {"GET", "/v1/all/x?nope=1", NULL, NULL, 400,
         "query parameter 'nope': field path 'nope': rest.test.v1.AllTypes has no field 'nope'"},
        {"GET", "/v1/all/x?inner.nope=1", NULL, NULL, 400,
         "rest.test.v1.Inner has no field 'nope'"},
        {"POST", "/v1/all?f_int32=1", JSON_CT, "{}", 400,
         "query parameter 'f_int32': the body binds every field of this request"},
        {"PUT", "/v1/inner/n?inner.level=1", JSON_CT, "{}", 400,
         "query parameter 'inner.level': the field is bound by the body"},
    };
    int failed = 0;
    for (size_t i = 0; i < GW_ARRAY_LEN(strict); i++)
        failed += check_case(&o, &strict[i]);

    gw_rest_options_init(&o);
    o.strict_content_type = true;
    o.ignore_unknown_body_fields = true;
    o.patch_fill_mask = false;
    static const req_case other[] = {
        {"POST", "/v1/all", "application/x-www-form-urlencoded", "{}", 415,
         "unsupported Content-Type"},
        {"POST", "/v1/all", NULL, "{}", 415, "missing Content-Type"},
        {"POST", "/v1/files/f", NULL, "raw", 200,
         "{\"id\":\"f\",\"file\":{\"data\":\"cmF3\"}}"},
        {"POST", "/v1/all", JSON_CT, "{\"nope\":1,\"fInt32\":2}", 200, "{\"f_int32\":2}"},
        {"PATCH", "/v1/things/t/inner/n1", JSON_CT, "{\"level\":3}", 200,
         "{\"inner\":{\"name\":\"n1\",\"level\":3},\"parent\":\"things/t\"}"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(other); i++)
        failed += check_case(&o, &other[i]);
    assert_int_equal(failed, 0);

    /* a message over max_message */
    gw_rest_options_init(&o);
    o.max_message = 16;
    outcome res;
    run(&o, "POST", "/v1/all", JSON_CT, "{\"fString\":\"0123456789abcdefghij\"}", &res);
    assert_int_equal(res.rc, GW_ELIMIT);
    assert_int_equal(res.st.http_status, 413);
    run(&o, "POST", "/v1/all", JSON_CT, "{\"fString\":\"0123\"}", &res);
    assert_int_equal(res.rc, 0);
}

static void test_pretty(void **state)
{
    (void)state;
    static const struct {
        const char *q;
        bool pretty;
    } cases[] = {
        {"pretty", true}, {"pretty=true", true}, {"pretty=1", true}, {"pretty=", true},
        {"pretty=false", false}, {"a=1&pretty", true}, {"prettyx", false}, {"", false},
    };
    gw_rest_options o;
    gw_rest_options_init(&o);
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        gw_rest_print p;
        gw_rest_parse_print(cases[i].q, strlen(cases[i].q), &p);
        assert_int_equal(p.pretty, cases[i].pretty);
        char target[64];
        snprintf(target, sizeof(target), "/v1/all/x?%s", cases[i].q);
        outcome res;
        run(&o, "GET", target, NULL, NULL, &res);
        assert_int_equal(res.rc, 0);
        assert_int_equal(res.pretty, cases[i].pretty);
    }
}

/* ---------------------------------------------------------------------------
 * Headers → metadata, grpc-timeout.
 */

typedef struct md_sink {
    char text[1024];
    size_t n;
} md_sink;

static int md_collect(void *ctx, const char *key, const char *value)
{
    md_sink *s = ctx;
    s->n += (size_t)snprintf(s->text + s->n, sizeof(s->text) - s->n, "%s%s=%s",
                             s->n ? "|" : "", key, value);
    return 0;
}

static void test_metadata(void **state)
{
    (void)state;
    static const char *const allow[] = {"x-request-id", "user-agent"};
    gw_rest_options o;
    gw_rest_options_init(&o);
    o.header_allowlist = allow;
    o.header_allowlist_count = 2;
    const gw_rest_header h[] = {
        {"Authorization", "Bearer t"},
        {"Grpc-Metadata-User-Tier", "gold"},
        {"grpc-metadata-trace-bin", "AAEC"},
        {"Grpc-Metadata-grpc-status", "0"},      /* reserved: dropped */
        {"Grpc-Metadata-bad key", "x"},          /* invalid key: dropped */
        {"Grpc-Metadata-evil", "a\r\nb"},        /* not printable: dropped */
        /* protocol headers, never metadata (issue 13): dropped, not 400 */
        {"Grpc-Metadata-Te", "trailers"},
        {"Grpc-Metadata-Content-Type", "text/plain"},
        {"Grpc-Metadata-User-Agent", "x/1"},
        {"Grpc-Metadata-Host", "h"},
        {"Grpc-Metadata-Connection", "close"},
        {"Grpc-Metadata-Keep-Alive", "1"},
        {"Grpc-Metadata-Transfer-Encoding", "chunked"},
        {"Grpc-Metadata-Upgrade", "h2c"},
        {"Grpc-Metadata-Proxy-Connection", "x"},
        {"Grpc-Metadata-CONTENT-LENGTH", "5"},
        {"User-Agent", "curl/8"},                /* allowlisted, still reserved */
        {"X-Request-Id", "r1"},
        {"X-Other", "no"},                       /* not allowlisted */
        {"Content-Type", "application/json"},
        {"X-Forwarded-For", "10.0.0.1"},
        {"Host", "api.example"},
        {"Grpc-Timeout", "250m"},
    };
    md_sink s = {0};
    int64_t timeout;
    gw_rest_status st;
    assert_int_equal(gw_rest_request_metadata(&o, h, GW_ARRAY_LEN(h), "192.0.2.7", md_collect,
                                              &s, &timeout, &st),
                     0);
    assert_string_equal(s.text, "authorization=Bearer t|user-tier=gold|trace-bin=AAEC|"
                                "x-request-id=r1|x-forwarded-for=10.0.0.1, 192.0.2.7|"
                                "x-forwarded-host=api.example");
    assert_int_equal(timeout, 250000000LL);

    const gw_rest_header h2[] = {{"X-Forwarded-Host", "front.example"}, {"Host", "inner"}};
    memset(&s, 0, sizeof(s));
    assert_int_equal(gw_rest_request_metadata(&o, h2, 2, "::1", md_collect, &s, &timeout, &st),
                     0);
    assert_string_equal(s.text, "x-forwarded-for=::1|x-forwarded-host=front.example");
    assert_int_equal(timeout, -1);

    const gw_rest_header h3[] = {{"grpc-timeout", "1x"}};
    assert_int_equal(gw_rest_request_metadata(&o, h3, 1, NULL, md_collect, &s, &timeout, &st),
                     GW_EINVAL);
    assert_int_equal(st.http_status, 400);
    assert_int_equal(st.code, GW_CODE_INVALID_ARGUMENT);
    assert_non_null(strstr(st.message, "Grpc-Timeout '1x'"));
}

static void test_timeout(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        int64_t ns;
    } cases[] = {
        {"1H", 0, 3600000000000LL}, {"2M", 0, 120000000000LL}, {"3S", 0, 3000000000LL},
        {"100m", 0, 100000000LL},   {"5u", 0, 5000LL},         {"7n", 0, 7LL},
        {"0m", 0, 0},               {"99999999S", 0, 99999999000000000LL},
        {"99999999H", 0, INT64_MAX},
        {"", GW_EPARSE, 0},         {"m", GW_EPARSE, 0},       {"100", GW_EPARSE, 0},
        {"123456789S", GW_EPARSE, 0}, {"1s", GW_EPARSE, 0},    {"-1S", GW_EPARSE, 0},
        {"1 S", GW_EPARSE, 0},      {"1.5S", GW_EPARSE, 0},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        int64_t ns = -2;
        int rc = gw_rest_parse_timeout(cases[i].s, &ns);
        if (rc != cases[i].rc || (rc == 0 && ns != cases[i].ns))
            fail_msg("timeout '%s': rc %d ns %lld", cases[i].s, rc, (long long)ns);
    }
}

/* ---------------------------------------------------------------------------
 * Client-stream splitter. Each body is fed in every possible pair of chunks
 * (and byte by byte): the messages must come out the same.
 */

typedef struct split_case {
    const char *body;
    int rc;              /* 0, or the error of the run */
    const char *want;    /* messages joined with '|', or an error substring */
} split_case;

static const split_case split_cases[] = {
    {"{\"a\":1}\n{\"a\":2}\n", 0, "{\"a\":1}|{\"a\":2}"},
    {"{\"a\":1}\r\n{\"a\":2}", 0, "{\"a\":1}|{\"a\":2}"},
    {"{\"a\":1}{\"b\":[1,{\"c\":\"}\"}]}", 0, "{\"a\":1}|{\"b\":[1,{\"c\":\"}\"}]}"},
    {"{\"s\":\"a\\\"}b\\\\\"}\n", 0, "{\"s\":\"a\\\"}b\\\\\"}"},
    {"[{\"a\":1}, {\"a\":2} ,{}]", 0, "{\"a\":1}|{\"a\":2}|{}"},
    {"  [ ]  ", 0, ""},
    {"", 0, ""},
    {"\n\n", 0, ""},
    {"[\"x\",1,true]", 0, "\"x\"|1|true"},
    {"1 2\n-3", 0, "1|2|-3"},
    {"[[1],[2]]", 0, "[1]|[2]"},
    {"{\"a\":1", GW_EPARSE, "the body ends inside a value"},
    {"[{}", GW_EPARSE, "the body ends before the array's ']'"},
    {"[{},]", GW_EPARSE, "']' after ','"},
    {"[{} {}]", GW_EPARSE, "expected ',' or ']' after an array element"},
    {"[{}] {}", GW_EPARSE, "data after the closing ']'"},
    {"{}\n}", GW_EPARSE, "offset 3: expected a JSON value"},
    {"{\"big\":\"0123456789012345678901234567890123456789\"}", GW_ELIMIT, "larger than 32 bytes"},
};

static int split_all(const char *body, const size_t *cuts, size_t ncuts, char *out, size_t cap,
                     gw_error *e)
{
    gw_json_splitter s;
    gw_json_splitter_init(&s, 32);
    size_t len = strlen(body), pos = 0, n = 0;
    out[0] = 0;
    int rc = 0;
    for (size_t c = 0; c <= ncuts && rc == 0; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        while (pos < end) {
            size_t used;
            const char *msg;
            size_t mlen;
            rc = gw_json_splitter_next(&s, (const uint8_t *)body + pos, end - pos, &used, &msg,
                                       &mlen, e);
            pos += used;
            if (rc == GW_EAGAIN) {
                rc = 0;
                break;
            }
            if (rc)
                goto out;
            n += (size_t)snprintf(out + n, cap - n, "%s%.*s", s.count > 1 ? "|" : "",
                                  (int)mlen, msg);
        }
    }
    for (;;) {
        const char *msg;
        size_t mlen;
        rc = gw_json_splitter_finish(&s, &msg, &mlen, e);
        if (rc)
            break;
        n += (size_t)snprintf(out + n, cap - n, "%s%.*s", s.count > 1 ? "|" : "", (int)mlen,
                              msg);
    }
    if (rc == GW_ECLOSED)
        rc = 0;
out:
    gw_json_splitter_free(&s);
    return rc;
}

static void test_splitter(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(split_cases); i++) {
        const split_case *c = &split_cases[i];
        size_t len = strlen(c->body);
        /* one chunk, then two chunks at every cut point */
        for (size_t cut = 0; cut <= len; cut++) {
            char got[512];
            gw_error e;
            gw_error_clear(&e);
            size_t cuts[1] = {cut};
            int rc = split_all(c->body, cuts, cut == len ? 0 : 1, got, sizeof(got), &e);
            const char *cmp = rc ? e.msg : got;
            if (rc != c->rc || (rc == 0 ? strcmp(cmp, c->want) != 0 : !strstr(cmp, c->want)))
                fail_msg("split '%s' cut %zu: rc %d '%s'; want %d '%s'", c->body, cut, rc, cmp,
                         c->rc, c->want);
        }
        /* byte by byte */
        size_t cuts[128];
        size_t nc = 0;
        for (size_t k = 1; k < len && nc < 128; k++)
            cuts[nc++] = k;
        char got[512];
        gw_error e;
        gw_error_clear(&e);
        int rc = split_all(c->body, cuts, nc, got, sizeof(got), &e);
        if (rc != c->rc || (rc == 0 && strcmp(got, c->want) != 0))
            fail_msg("split '%s' byte by byte: rc %d '%s'", c->body, rc, rc ? e.msg : got);
    }
}

static void test_stream_messages(void **state)
{
    (void)state;
    gw_rest_options o;
    gw_rest_options_init(&o);
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    gw_route_match m;
    gw_error e;
    const char *p = "/v1/collect";
    assert_int_equal(gw_router_match(router, "POST", p, strlen(p), &a, &m, &e), 0);
    assert_int_equal(m.result, GW_ROUTE_MATCHED);
    gw_buf out;
    gw_buf_init(&out, 0);
    gw_rest_status st;
    const char *msg = "{\"name\":\"a\",\"level\":2}";
    assert_int_equal(gw_rest_build_stream_message(&o, reg, m.route, msg, strlen(msg), &out, &st),
                     0);
    char hex[64];
    to_hex(out.data, out.len, hex, sizeof(hex));
    assert_string_equal(hex, "0a 01 61 10 02");
    gw_buf_reset(&out);
    msg = "{\"level\":\"x\"}";
    assert_int_equal(gw_rest_build_stream_message(&o, reg, m.route, msg, strlen(msg), &out, &st),
                     GW_EPARSE);
    assert_int_equal(st.http_status, 400);
    assert_non_null(strstr(st.message, "stream message: "));
    gw_buf_free(&out);
    gw_arena_free(&a);
}

/* ---------------------------------------------------------------------------
 * Response side.
 */

static const gw_route *route_for(const char *method, const char *path, gw_arena *a)
{
    gw_route_match m;
    gw_error e;
    assert_int_equal(gw_router_match(router, method, path, strlen(path), a, &m, &e), 0);
    assert_int_equal(m.result, GW_ROUTE_MATCHED);
    return m.route;
}

static void encode(const char *type, const char *json, gw_buf *out)
{
    gw_error e;
    const gw_message_def *m = gw_registry_message(reg, type);
    assert_non_null(m);
    if (gw_codec_json_to_proto(reg, m, json, strlen(json), NULL, out, &e))
        fail_msg("encode %s: %s", json, e.msg);
}

typedef struct resp_case {
    const char *method, *path;
    const char *type;        /* output type */
    const char *msg;         /* its JSON, encoded for the test */
    bool proto_names, emit_defaults, enums_as_ints, pretty;
    const char *want_ct;
    const char *want;
} resp_case;

static const resp_case resp_cases[] = {
    {"GET", "/v1/all/x", "rest.test.v1.AllTypes",
     "{\"fInt64\":\"5\",\"fEnum\":\"RED\",\"inner\":{\"name\":\"n\"},\"ts\":\"2024-01-02T03:04:05Z\"}",
     false, false, false, false, "application/json",
     "{\"fInt64\":\"5\",\"fEnum\":\"RED\",\"inner\":{\"name\":\"n\"},"
     "\"ts\":\"2024-01-02T03:04:05Z\"}"},
    {"GET", "/v1/all/x", "rest.test.v1.AllTypes", "{\"fInt64\":\"5\",\"fEnum\":\"RED\"}", true,
     false, true, false, "application/json", "{\"f_int64\":\"5\",\"f_enum\":1}"},
    {"GET", "/v1/all/x", "rest.test.v1.AllTypes", "{\"fInt32\":1}", false, false, false, true,
     "application/json", "{\n  \"fInt32\": 1\n}"},
    {"POST", "/v1/inner/n:archive", "rest.test.v1.Inner", "{}", false, true, false, false,
     "application/json",
     "{\"name\":\"\",\"level\":0,\"color\":\"COLOR_UNSPECIFIED\"}"},
    /* response_body */
    {"GET", "/v1/nested/x", "rest.test.v1.Wrapper",
     "{\"inner\":{\"name\":\"n\",\"level\":1},\"note\":\"dropped\"}", false, false, false, false,
     "application/json", "{\"name\":\"n\",\"level\":1}"},
    /* HttpBody: raw bytes with their own type */
    {"GET", "/v1/download/x", "google.api.HttpBody",
     "{\"contentType\":\"image/png\",\"data\":\"iVBORw==\"}", false, false, false, false,
     "image/png", "\x89PNG"},
    {"GET", "/v1/download/x", "google.api.HttpBody", "{\"data\":\"aGk=\"}", false, false, false,
     false, "application/octet-stream", "hi"},
    {"GET", "/v1/download/x", "google.api.HttpBody",
     "{\"contentType\":\"text/plain\\r\\nX-Evil: 1\",\"data\":\"aGk=\"}", false, false, false,
     false, "application/octet-stream", "hi"},
};

static void test_unary_response(void **state)
{
    (void)state;
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    for (size_t i = 0; i < GW_ARRAY_LEN(resp_cases); i++) {
        const resp_case *c = &resp_cases[i];
        gw_rest_options o;
        gw_rest_options_init(&o);
        o.proto_names = c->proto_names;
        o.emit_defaults = c->emit_defaults;
        o.enums_as_ints = c->enums_as_ints;
        gw_rest_print print = {.pretty = c->pretty};
        gw_buf msg, out;
        gw_buf_init(&msg, 0);
        gw_buf_init(&out, 0);
        encode(c->type, c->msg, &msg);
        char ct[128];
        gw_rest_status st;
        int rc = gw_rest_unary_response(&o, reg, route_for(c->method, c->path, &a), &print,
                                        msg.data, msg.len, &out, ct, sizeof(ct), &st);
        const char *got = out.len ? (const char *)out.data : "";
        if (rc || strcmp(ct, c->want_ct) != 0 || strcmp(got, c->want) != 0)
            fail_msg("response %zu: rc %d ct '%s' body '%s' (%s)", i, rc, ct, got, st.message);
        gw_buf_free(&msg);
        gw_buf_free(&out);
    }
    /* an empty message may arrive as NULL */
    {
        gw_rest_options o;
        gw_rest_options_init(&o);
        gw_buf out;
        gw_buf_init(&out, 0);
        char ct[64];
        gw_rest_status st;
        assert_int_equal(gw_rest_unary_response(&o, reg, route_for("GET", "/v1/all/x", &a), NULL,
                                                NULL, 0, &out, ct, sizeof(ct), &st), 0);
        assert_string_equal((char *)out.data, "{}");
        gw_buf_reset(&out);
        assert_int_equal(gw_rest_unary_response(&o, reg, route_for("GET", "/v1/download/x", &a),
                                                NULL, NULL, 0, &out, ct, sizeof(ct), &st), 0);
        assert_int_equal(out.len, 0);
        assert_string_equal(ct, "application/octet-stream");
        gw_buf_free(&out);
    }
    /* bytes that are not the output type: 500 */
    gw_rest_options o;
    gw_rest_options_init(&o);
    gw_buf out;
    gw_buf_init(&out, 0);
    char ct[64];
    gw_rest_status st;
    const uint8_t junk[] = {0x0a, 0x05, 'a'};
    assert_int_equal(gw_rest_unary_response(&o, reg, route_for("GET", "/v1/all/x", &a), NULL,
                                            junk, sizeof(junk), &out, ct, sizeof(ct), &st),
                     GW_EPARSE);
    assert_int_equal(st.http_status, 500);
    assert_int_equal(st.code, GW_CODE_INTERNAL);
    assert_int_equal(out.len, 0);
    gw_buf_free(&out);
    gw_arena_free(&a);
}

/* Server-streamed HttpBody: each message's data raw, its own content type. */
static void test_stream_http_body(void **state)
{
    (void)state;
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    static const struct {
        const char *method, *path;
        bool raw;
    } routes[] = {
        {"GET", "/v1/chunks/x", true},      /* stream of HttpBody */
        {"GET", "/v1/download/x", true},    /* unary HttpBody */
        {"GET", "/v1/stream", false},       /* stream of Inner */
        {"GET", "/v1/nested/x", false},     /* response_body: a plain message */
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(routes); i++)
        if (gw_rest_route_returns_http_body(route_for(routes[i].method, routes[i].path, &a)) !=
            routes[i].raw)
            fail_msg("%s %s: raw should be %d", routes[i].method, routes[i].path, routes[i].raw);

    const gw_route *rt = route_for("GET", "/v1/chunks/x", &a);
    static const struct {
        const char *json;    /* the HttpBody message */
        const char *ct;      /* what it gives as Content-Type */
        const char *hex;     /* the bytes appended (after earlier rows) */
    } msgs[] = {
        /* 00 ff fe 80: no envelope, no base64, not UTF-8 */
        {"{\"contentType\":\"application/x-test\",\"data\":\"AP/+gA==\"}",
         "application/x-test", "00 ff fe 80"},
        {"{\"data\":\"aGk=\"}", "application/octet-stream", "00 ff fe 80 68 69"},
        {"{\"contentType\":\"text/plain\"}", "text/plain", "00 ff fe 80 68 69"},
        {"{\"contentType\":\"a\\nb\",\"data\":\"Cg==\"}", "application/octet-stream",
         "00 ff fe 80 68 69 0a"},
    };
    gw_buf out;
    gw_buf_init(&out, 0);
    for (size_t i = 0; i < GW_ARRAY_LEN(msgs); i++) {
        gw_buf msg;
        gw_buf_init(&msg, 0);
        encode("google.api.HttpBody", msgs[i].json, &msg);
        char ct[64], hex[128];
        gw_rest_status st;
        int rc = gw_rest_stream_http_body(rt, msg.data, msg.len, &out, ct, sizeof(ct), &st);
        to_hex(out.data, out.len, hex, sizeof(hex));
        if (rc || strcmp(ct, msgs[i].ct) != 0 || strcmp(hex, msgs[i].hex) != 0)
            fail_msg("chunk %zu: rc %d ct '%s' bytes '%s'", i, rc, ct, hex);
        gw_buf_free(&msg);
    }
    /* an empty message adds nothing */
    char ct[64];
    gw_rest_status st;
    size_t before = out.len;
    assert_int_equal(gw_rest_stream_http_body(rt, NULL, 0, &out, ct, sizeof(ct), &st), 0);
    assert_int_equal(out.len, before);
    assert_string_equal(ct, "application/octet-stream");
    /* bytes that are not an HttpBody: INTERNAL/500, nothing appended */
    const uint8_t junk[] = {0x12, 0x05, 'a'};
    assert_int_equal(gw_rest_stream_http_body(rt, junk, sizeof(junk), &out, ct, sizeof(ct), &st),
                     GW_EPARSE);
    assert_int_equal(st.http_status, 500);
    assert_int_equal(st.code, GW_CODE_INTERNAL);
    assert_int_equal(out.len, before);
    gw_buf_free(&out);
    gw_arena_free(&a);
}

static void test_stream_response(void **state)
{
    (void)state;
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    const gw_route *rt = route_for("GET", "/v1/stream", &a);
    gw_rest_options o;
    gw_rest_options_init(&o);
    gw_buf msg, out;
    gw_buf_init(&msg, 0);
    gw_buf_init(&out, 0);
    encode("rest.test.v1.Inner", "{\"name\":\"a\",\"level\":1}", &msg);
    gw_rest_status st;
    assert_int_equal(gw_rest_stream_message(&o, reg, rt, GW_REST_STREAM_NDJSON, msg.data,
                                            msg.len, &out, &st), 0);
    assert_int_equal(gw_rest_stream_message(&o, reg, rt, GW_REST_STREAM_NDJSON, msg.data,
                                            msg.len, &out, &st), 0);
    assert_string_equal((char *)out.data, "{\"result\":{\"name\":\"a\",\"level\":1}}\n"
                                          "{\"result\":{\"name\":\"a\",\"level\":1}}\n");
    gw_buf_reset(&out);
    assert_int_equal(gw_rest_stream_message(&o, reg, rt, GW_REST_STREAM_SSE, msg.data, msg.len,
                                            &out, &st), 0);
    assert_string_equal((char *)out.data, "data: {\"name\":\"a\",\"level\":1}\n\n");

    static const struct {
        const char *accept;
        gw_rest_stream_format f;
    } acc[] = {
        {NULL, GW_REST_STREAM_NDJSON},
        {"application/json", GW_REST_STREAM_NDJSON},
        {"*/*", GW_REST_STREAM_NDJSON},
        {"text/event-stream", GW_REST_STREAM_SSE},
        {"application/json, Text/Event-Stream;q=0.9", GW_REST_STREAM_SSE},
        {"text/event-streams", GW_REST_STREAM_NDJSON},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(acc); i++)
        assert_int_equal(gw_rest_stream_format_from_accept(acc[i].accept), acc[i].f);
    assert_string_equal(gw_rest_stream_content_type(GW_REST_STREAM_SSE), "text/event-stream");
    assert_string_equal(gw_rest_stream_content_type(GW_REST_STREAM_NDJSON), "application/json");
    gw_buf_free(&msg);
    gw_buf_free(&out);
    gw_arena_free(&a);
}

/* A google.rpc.Status with a BadRequest detail and one of an unknown type. */
static void status_details(gw_buf *out, bool unknown)
{
    gw_buf fv, br, any;
    gw_buf_init(&fv, 0);
    gw_buf_init(&br, 0);
    gw_buf_init(&any, 0);
    assert_int_equal(gw_wire_put_len_field(&fv, 1, "name", 4), 0);
    assert_int_equal(gw_wire_put_len_field(&fv, 2, "is required", 11), 0);
    assert_int_equal(gw_wire_put_len_field(&br, 1, fv.data, fv.len), 0);
    const char *url = "type.googleapis.com/google.rpc.BadRequest";
    assert_int_equal(gw_wire_put_len_field(&any, 1, url, strlen(url)), 0);
    assert_int_equal(gw_wire_put_len_field(&any, 2, br.data, br.len), 0);
    assert_int_equal(gw_wire_put_tag(out, 1, GW_WIRE_VARINT), 0);
    assert_int_equal(gw_wire_put_varint(out, 3), 0);
    assert_int_equal(gw_wire_put_len_field(out, 3, any.data, any.len), 0);
    if (unknown) {
        gw_buf_reset(&any);
        url = "type.googleapis.com/x.Unknown";
        assert_int_equal(gw_wire_put_len_field(&any, 1, url, strlen(url)), 0);
        assert_int_equal(gw_wire_put_len_field(&any, 2, "\x01\x02\x03", 3), 0);
        assert_int_equal(gw_wire_put_len_field(out, 3, any.data, any.len), 0);
    }
    gw_buf_free(&fv);
    gw_buf_free(&br);
    gw_buf_free(&any);
}

static void test_errors(void **state)
{
    (void)state;
    gw_rest_options o;
    gw_rest_options_init(&o);
    gw_buf out, det;
    gw_buf_init(&out, 0);
    gw_buf_init(&det, 0);
    int http;
    assert_int_equal(gw_rest_error_response(&o, reg, GW_CODE_NOT_FOUND, "no \"user\" 7", NULL, 0,
                                            &out, &http), 0);
    assert_int_equal(http, 404);
    assert_string_equal((char *)out.data,
                        "{\"code\":5,\"message\":\"no \\\"user\\\" 7\",\"details\":[]}");

    status_details(&det, true);
    gw_buf_reset(&out);
    assert_int_equal(gw_rest_error_response(&o, reg, GW_CODE_INVALID_ARGUMENT, "bad", det.data,
                                            det.len, &out, &http), 0);
    assert_int_equal(http, 400);
    assert_string_equal((char *)out.data,
                        "{\"code\":3,\"message\":\"bad\",\"details\":["
                        "{\"@type\":\"type.googleapis.com/google.rpc.BadRequest\","
                        "\"fieldViolations\":[{\"field\":\"name\",\"description\":\"is required\"}]},"
                        "{\"@type\":\"type.googleapis.com/x.Unknown\",\"value\":\"AQID\"}]}");

    /* without a registry every detail is base64 */
    gw_buf_reset(&out);
    assert_int_equal(gw_rest_error_response(&o, NULL, GW_CODE_INVALID_ARGUMENT, "bad", det.data,
                                            det.len, &out, &http), 0);
    assert_non_null(strstr((char *)out.data,
                           "{\"@type\":\"type.googleapis.com/google.rpc.BadRequest\",\"value\":\""));

    /* a details blob that does not parse is ignored */
    gw_buf_reset(&out);
    assert_int_equal(gw_rest_error_response(&o, reg, GW_CODE_INTERNAL, "x",
                                            (const uint8_t *)"\xff\xff", 2, &out, &http), 0);
    assert_string_equal((char *)out.data, "{\"code\":13,\"message\":\"x\",\"details\":[]}");
    assert_int_equal(http, 500);

    /* proto names apply inside details */
    o.proto_names = true;
    gw_buf_reset(&det);
    status_details(&det, false);
    gw_buf_reset(&out);
    assert_int_equal(gw_rest_error_response(&o, reg, 3, "bad", det.data, det.len, &out, &http), 0);
    assert_non_null(strstr((char *)out.data, "\"field_violations\":"));

    /* streams */
    o.proto_names = false;
    gw_buf_reset(&out);
    assert_int_equal(gw_rest_stream_error(&o, reg, GW_REST_STREAM_NDJSON, 14, "gone", NULL, 0,
                                          &out), 0);
    assert_string_equal((char *)out.data,
                        "{\"error\":{\"code\":14,\"message\":\"gone\",\"details\":[]}}\n");
    gw_buf_reset(&out);
    assert_int_equal(gw_rest_stream_error(&o, reg, GW_REST_STREAM_SSE, 14, "gone", NULL, 0, &out),
                     0);
    assert_string_equal((char *)out.data,
                        "event: error\ndata: {\"code\":14,\"message\":\"gone\",\"details\":[]}\n\n");
    gw_buf_reset(&out);
    assert_int_equal(gw_rest_stream_error_first(&o, reg, 3, "m", NULL, 0, &out, &http), 0);
    assert_int_equal(http, 400);
    assert_string_equal((char *)out.data, "{\"code\":3,\"message\":\"m\",\"details\":[]}");

    /* grpc-gateway 1.x shapes */
    o.grpc_gateway_v1_errors = true;
    gw_buf_reset(&out);
    assert_int_equal(gw_rest_error_response(&o, reg, 3, "note_size must be in [0, 1048576]",
                                            NULL, 0, &out, &http), 0);
    assert_string_equal((char *)out.data,
                        "{\"error\":\"note_size must be in [0, 1048576]\","
                        "\"message\":\"note_size must be in [0, 1048576]\",\"code\":3}");
    gw_buf_reset(&out);
    assert_int_equal(gw_rest_stream_error_first(&o, reg, 3, "m", NULL, 0, &out, &http), 0);
    assert_int_equal(http, 400);
    assert_string_equal((char *)out.data,
                        "{\"error\":{\"grpc_code\":3,\"http_code\":400,\"message\":\"m\","
                        "\"http_status\":\"Bad Request\"}}");
    gw_buf_reset(&out);
    assert_int_equal(gw_rest_stream_error(&o, reg, GW_REST_STREAM_NDJSON, 4, "late", det.data,
                                          det.len, &out), 0);
    assert_string_equal((char *)out.data,
                        "{\"error\":{\"grpc_code\":4,\"http_code\":504,\"message\":\"late\","
                        "\"http_status\":\"Gateway Timeout\",\"details\":["
                        "{\"@type\":\"type.googleapis.com/google.rpc.BadRequest\","
                        "\"fieldViolations\":[{\"field\":\"name\",\"description\":\"is required\"}]}"
                        "]}}\n");

    /* a request-side status keeps its HTTP status */
    gw_rest_status st = {.code = GW_CODE_INVALID_ARGUMENT, .http_status = 415};
    snprintf(st.message, sizeof(st.message), "unsupported");
    o.grpc_gateway_v1_errors = false;
    gw_buf_reset(&out);
    assert_int_equal(gw_rest_status_response(&o, &st, &out), 0);
    assert_string_equal((char *)out.data, "{\"code\":3,\"message\":\"unsupported\",\"details\":[]}");
    gw_buf_free(&out);
    gw_buf_free(&det);
}

/* REFERENCE.md's table, through the error path the adapter uses. */
static void test_status_mapping(void **state)
{
    (void)state;
    static const int want[GW_CODE_MAX + 1] = {200, 499, 500, 400, 504, 404, 409, 403, 429,
                                              400, 409, 400, 501, 500, 503, 500, 401};
    gw_rest_options o;
    gw_rest_options_init(&o);
    for (int code = 0; code <= GW_CODE_MAX; code++) {
        gw_buf out;
        gw_buf_init(&out, 0);
        int http = 0;
        assert_int_equal(gw_rest_error_response(&o, NULL, code, "m", NULL, 0, &out, &http), 0);
        if (http != want[code])
            fail_msg("code %d (%s): HTTP %d, want %d", code, gw_code_name(code), http,
                     want[code]);
        gw_buf_free(&out);
    }
    gw_buf out;
    gw_buf_init(&out, 0);
    int http;
    assert_int_equal(gw_rest_error_response(&o, NULL, 99, "m", NULL, 0, &out, &http), 0);
    assert_int_equal(http, 500);
    gw_buf_free(&out);
}

static void test_header_names(void **state)
{
    (void)state;
    char name[32];
    assert_int_equal(gw_rest_metadata_header_name("x-demo", false, name, sizeof(name)), 0);
    assert_string_equal(name, "Grpc-Metadata-x-demo");
    assert_int_equal(gw_rest_metadata_header_name("x-demo", true, name, sizeof(name)), 0);
    assert_string_equal(name, "Grpc-Trailer-x-demo");
    assert_int_equal(gw_rest_metadata_header_name("a-very-long-key-name-here", true, name,
                                                  sizeof(name)), GW_ELIMIT);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s rest.pb\n", argv[0]);
        return 2;
    }
    desc_path = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_binding),
        cmocka_unit_test(test_input_errors),
        cmocka_unit_test(test_request_bytes),
        cmocka_unit_test(test_request_one_submessage),
        cmocka_unit_test(test_request_options),
        cmocka_unit_test(test_pretty),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_splitter),
        cmocka_unit_test(test_stream_messages),
        cmocka_unit_test(test_unary_response),
        cmocka_unit_test(test_stream_http_body),
        cmocka_unit_test(test_stream_response),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_header_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
