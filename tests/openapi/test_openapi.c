/*
 * src/openapi: the document for chosen routes of the demo API and of
 * openapi_test.proto, checked piece by piece. Each table row names a JSON
 * pointer into the generated document and the exact JSON expected there
 * (objects compare regardless of key order), or NULL for "absent".
 *
 * argv[1] demo.pb, argv[2] demo.pb with source info, argv[3] openapi-test.pb,
 * argv[4] openapi-other.pb, argv[5] openapi-bad.pb.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "openapi/openapi.h"
#include "route/route.h"

static const char *demo_pb, *demo_src_pb, *test_pb, *other_pb, *bad_pb;

typedef struct expect {
    const char *pointer; /* RFC 6901 */
    const char *json;    /* NULL: the pointer must not resolve */
} expect;

/* RFC 6901: "~1" is '/', "~0" is '~'; array members by index. */
static json_t *at(json_t *v, const char *pointer)
{
    char token[512];
    const char *p = pointer;
    while (v && *p == '/') {
        p++;
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof(token)) {
            if (p[0] == '~' && (p[1] == '0' || p[1] == '1')) {
                token[n++] = p[1] == '1' ? '/' : '~';
                p += 2;
            } else {
                token[n++] = *p++;
            }
        }
        token[n] = 0;
        if (json_is_array(v))
            v = json_array_get(v, strtoul(token, NULL, 10));
        else
            v = json_object_get(v, token);
    }
    return v;
}

static json_t *generate(const char *const *paths, size_t n, const gw_openapi_options *o)
{
    gw_registry *r = NULL;
    gw_error e;
    gw_error_clear(&e);
    int rc = gw_registry_load(&r, paths, n, &e);
    if (rc)
        fail_msg("load: %s", e.msg);
    gw_buf out;
    gw_buf_init(&out, 0);
    rc = gw_openapi_generate(r, o, &out, &e);
    if (rc)
        fail_msg("generate: %s", e.msg);
    assert_true(out.len > 0 && out.data[out.len - 1] == '\n');
    json_error_t je;
    json_t *doc = json_loadb((const char *)out.data, out.len, 0, &je);
    if (!doc)
        fail_msg("not JSON: line %d: %s", je.line, je.text);
    gw_buf_free(&out);
    gw_registry_del(r);
    return doc;
}

static void check(json_t *doc, const expect *x, size_t n)
{
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *got = at(doc, x[i].pointer);
        if (!x[i].json) {
            if (got) {
                char *s = json_dumps(got, JSON_COMPACT);
                print_error("%s: expected nothing, got %s\n", x[i].pointer, s);
                free(s);
                failures++;
            }
            continue;
        }
        json_error_t je;
        json_t *want = json_loads(x[i].json, JSON_DECODE_ANY, &je);
        if (!want)
            fail_msg("row %zu: bad expectation: %s", i, je.text);
        if (!got || !json_equal(got, want)) {
            char *s = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            print_error("%s:\n  want %s\n  got  %s\n", x[i].pointer, x[i].json,
                        s ? s : "(absent)");
            free(s);
            failures++;
        }
        json_decref(want);
    }
    if (failures)
        fail_msg("%d of %zu rows differ", failures, n);
}

#define STATUS_REF "{\"$ref\":\"#/components/schemas/google.rpc.Status\"}"
#define DEFAULT_RESPONSE                                                     \
    "{\"description\":\"An error. The HTTP status follows the gRPC code.\"," \
    "\"content\":{\"application/json\":{\"schema\":" STATUS_REF "}}}"

/* ---------------------------------------------------------------------------
 * The demo API, default options (JSON names).
 */
static const expect demo_rows[] = {
    {"/openapi", "\"3.0.3\""},
    {"/info/title", "\"Demo\""},
    {"/info/version", "\"1.2.3\""},
    {"/servers", NULL},
    {"/x-grpcgate-unlisted", NULL},
    {"/tags", "[{\"name\":\"demo.v1.UserService\"},{\"name\":\"demo.v1.EchoService\"}]"},
    /* GET with a path variable: int64 as a string. */
    {"/paths/~1v1~1users~1{id}/get/operationId", "\"UserService_GetUser\""},
    {"/paths/~1v1~1users~1{id}/get/tags", "[\"demo.v1.UserService\"]"},
    {"/paths/~1v1~1users~1{id}/get/parameters",
     "[{\"name\":\"id\",\"in\":\"path\",\"required\":true,"
     "\"schema\":{\"type\":\"string\",\"format\":\"int64\"}}]"},
    {"/paths/~1v1~1users~1{id}/get/requestBody", NULL},
    {"/paths/~1v1~1users~1{id}/get/responses/200",
     "{\"description\":\"OK\",\"content\":{\"application/json\":{\"schema\":"
     "{\"$ref\":\"#/components/schemas/demo.v1.User\"}}}}"},
    {"/paths/~1v1~1users~1{id}/get/responses/default", DEFAULT_RESPONSE},
    {"/paths/~1v1~1users~1{id}/get/summary", NULL},
    {"/paths/~1v1~1users~1{id}/get/x-grpcgate-rpc", "\"/demo.v1.UserService/GetUser\""},
    {"/paths/~1v1~1users~1{id}/delete/operationId", "\"UserService_DeleteUser\""},
    {"/paths/~1v1~1users~1{id}/delete/responses/200/content/application~1json/schema",
     "{\"$ref\":\"#/components/schemas/google.protobuf.Empty\"}"},
    /* body "*": the whole message, no query parameters. */
    {"/paths/~1v1~1users/post/requestBody",
     "{\"content\":{\"application/json\":{\"schema\":"
     "{\"$ref\":\"#/components/schemas/demo.v1.User\"}}}}"},
    {"/paths/~1v1~1users/post/parameters", NULL},
    /* Server streaming, query parameters: Duration string, enum names. */
    {"/paths/~1v1~1users/get/operationId", "\"UserService_ListUsers\""},
    {"/paths/~1v1~1users/get/x-grpcgate-streaming", "\"server\""},
    {"/paths/~1v1~1users/get/parameters",
     "[{\"name\":\"pageSize\",\"in\":\"query\",\"schema\":{\"type\":\"integer\","
     "\"format\":\"int32\"}},"
     "{\"name\":\"delay\",\"in\":\"query\",\"schema\":{\"type\":\"string\","
     "\"pattern\":\"^-?[0-9]+(\\\\.[0-9]{1,9})?s$\","
     "\"description\":\"Seconds with up to 9 fractional digits and an 's'\","
     "\"example\":\"1.5s\"}},"
     "{\"name\":\"role\",\"in\":\"query\",\"schema\":{\"type\":\"string\",\"enum\":"
     "[\"ROLE_UNSPECIFIED\",\"ROLE_VIEWER\",\"ROLE_EDITOR\",\"ROLE_ADMIN\"]}},"
     "{\"name\":\"follow\",\"in\":\"query\",\"schema\":{\"type\":\"boolean\"}}]"},
    {"/paths/~1v1~1users/get/responses/200/content/application~1x-ndjson/schema",
     "{\"type\":\"object\",\"properties\":{\"result\":"
     "{\"$ref\":\"#/components/schemas/demo.v1.User\"},\"error\":" STATUS_REF "}}"},
    {"/paths/~1v1~1users/get/responses/200/content/text~1event-stream/schema/type",
     "\"string\""},
    /* The additional binding: its own operationId; role is in the path,
     * so not in the query. */
    {"/paths/~1v1~1roles~1{role}~1users/get/operationId", "\"UserService_ListUsers_2\""},
    {"/paths/~1v1~1roles~1{role}~1users/get/parameters/0",
     "{\"name\":\"role\",\"in\":\"path\",\"required\":true,\"schema\":{\"type\":\"string\","
     "\"enum\":[\"ROLE_UNSPECIFIED\",\"ROLE_VIEWER\",\"ROLE_EDITOR\",\"ROLE_ADMIN\"]}}"},
    {"/paths/~1v1~1roles~1{role}~1users/get/parameters/1/name", "\"pageSize\""},
    {"/paths/~1v1~1roles~1{role}~1users/get/parameters/2/name", "\"delay\""},
    {"/paths/~1v1~1roles~1{role}~1users/get/parameters/3/name", "\"follow\""},
    {"/paths/~1v1~1roles~1{role}~1users/get/parameters/4", NULL},
    /* Nested path variable, body field, FieldMask in the query. The path
     * /v1/users/{user.id} has the shape of /v1/users/{id} (GetUser, written
     * first): one OpenAPI path, the segment named as there, the field it
     * sets said in words and in x-grpcgate-field (no-identical-paths). */
    {"/paths/~1v1~1users~1{user.id}", NULL},
    {"/paths/~1v1~1users~1{id}/patch/x-grpcgate-template", "\"/v1/users/{user.id}\""},
    {"/paths/~1v1~1users~1{id}/patch/parameters",
     "[{\"name\":\"id\",\"in\":\"path\",\"required\":true,"
     "\"schema\":{\"type\":\"string\",\"format\":\"int64\"},"
     "\"description\":\"Sets the request field `user.id` (the path is shared with other "
     "operations, which name this segment `id`).\",\"x-grpcgate-field\":\"user.id\"},"
     "{\"name\":\"updateMask\",\"in\":\"query\",\"schema\":{\"type\":\"string\","
     "\"description\":\"Comma-separated field paths in lowerCamelCase\","
     "\"example\":\"name,address.city\"}}]"},
    {"/paths/~1v1~1users~1{id}/patch/requestBody",
     "{\"description\":\"The field user of demo.v1.UpdateUserRequest.\","
     "\"content\":{\"application/json\":{\"schema\":"
     "{\"$ref\":\"#/components/schemas/demo.v1.User\"}}}}"},
    /* Custom verb as literal text; body "*" minus the path field. */
    {"/paths/~1v1~1users~1{id}:undelete/post/operationId", "\"UserService_UndeleteUser\""},
    {"/paths/~1v1~1users~1{id}:undelete/post/requestBody/content/application~1json/schema",
     "{\"type\":\"object\",\"properties\":{\"reason\":{\"type\":\"string\"}}}"},
    /* Client streaming: messages one after the other or an array. */
    {"/paths/~1v1~1users:batchCreate/post/x-grpcgate-streaming", "\"client\""},
    {"/paths/~1v1~1users:batchCreate/post/requestBody/content/application~1json/schema",
     "{\"oneOf\":[{\"$ref\":\"#/components/schemas/demo.v1.User\"},{\"type\":\"array\","
     "\"items\":{\"$ref\":\"#/components/schemas/demo.v1.User\"}}]}"},
    /* HttpBody out, HttpBody field in. */
    {"/paths/~1v1~1users~1{id}~1avatar/get/responses/200/content",
     "{\"*/*\":{\"schema\":{\"type\":\"string\",\"format\":\"binary\"}}}"},
    {"/paths/~1v1~1users~1{id}~1avatar/put/requestBody/content",
     "{\"*/*\":{\"schema\":{\"type\":\"string\",\"format\":\"binary\"}}}"},
    {"/paths/~1v1~1users~1{id}~1avatar/put/parameters",
     "[{\"name\":\"id\",\"in\":\"path\",\"required\":true,"
     "\"schema\":{\"type\":\"string\",\"format\":\"int64\"}}]"},
    /* Unbound methods: POST /pkg.Service/Method, body "*". */
    {"/paths/~1demo.v1.EchoService~1Unbound/post/operationId", "\"EchoService_Unbound\""},
    {"/paths/~1demo.v1.EchoService~1Unbound/post/requestBody/content/application~1json/schema",
     "{\"$ref\":\"#/components/schemas/demo.v1.EchoRequest\"}"},
    {"/paths/~1demo.v1.UserService~1Chat/post/x-grpcgate-streaming", "\"bidi\""},
    {"/paths/~1v1~1download/get/parameters",
     "[{\"name\":\"totalBytes\",\"in\":\"query\",\"schema\":{\"type\":\"string\","
     "\"format\":\"int64\"}},{\"name\":\"chunkSize\",\"in\":\"query\",\"schema\":"
     "{\"type\":\"integer\",\"format\":\"int32\"}}]"},
    /* Schemas: the ProtoJSON mapping. */
    {"/components/schemas/demo.v1.User/type", "\"object\""},
    {"/components/schemas/demo.v1.User/properties/id", "{\"type\":\"string\",\"format\":\"int64\"}"},
    {"/components/schemas/demo.v1.User/properties/role",
     "{\"$ref\":\"#/components/schemas/demo.v1.Role\"}"},
    {"/components/schemas/demo.v1.User/properties/age",
     "{\"type\":\"integer\",\"format\":\"uint32\",\"minimum\":0,\"maximum\":4294967295}"},
    {"/components/schemas/demo.v1.User/properties/score",
     "{\"type\":\"number\",\"format\":\"double\"}"},
    {"/components/schemas/demo.v1.User/properties/avatar",
     "{\"type\":\"string\",\"format\":\"byte\"}"},
    {"/components/schemas/demo.v1.User/properties/tags",
     "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}"},
    {"/components/schemas/demo.v1.User/properties/labels",
     "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}"},
    {"/components/schemas/demo.v1.User/properties/roleHistory",
     "{\"type\":\"object\",\"additionalProperties\":"
     "{\"$ref\":\"#/components/schemas/demo.v1.Role\"},"
     "\"description\":\"Map keys are int32 values written as strings.\"}"},
    {"/components/schemas/demo.v1.User/properties/slackHandle",
     "{\"type\":\"string\",\"description\":"
     "\"Part of oneof contact: at most one of phone, slackHandle is set.\"}"},
    {"/components/schemas/demo.v1.User/properties/createdAt",
     "{\"$ref\":\"#/components/schemas/google.protobuf.Timestamp\"}"},
    {"/components/schemas/demo.v1.User/properties/revision",
     "{\"type\":\"string\",\"format\":\"uint64\"}"},
    {"/components/schemas/demo.v1.User/properties/karma",
     "{\"type\":\"integer\",\"format\":\"int32\"}"},
    {"/components/schemas/demo.v1.User/properties/created_at", NULL},
    {"/components/schemas/demo.v1.Role",
     "{\"type\":\"string\",\"enum\":[\"ROLE_UNSPECIFIED\",\"ROLE_VIEWER\",\"ROLE_EDITOR\","
     "\"ROLE_ADMIN\"]}"},
    {"/components/schemas/google.protobuf.Timestamp/format", "\"date-time\""},
    {"/components/schemas/google.protobuf.StringValue",
     "{\"type\":\"string\",\"nullable\":true}"},
    {"/components/schemas/google.protobuf.Int32Value",
     "{\"type\":\"integer\",\"format\":\"int32\",\"nullable\":true}"},
    {"/components/schemas/google.protobuf.Struct/additionalProperties", "true"},
    {"/components/schemas/google.protobuf.Empty/additionalProperties", "false"},
    /* demo.pb has google.rpc.Status: it is generated from the message. */
    {"/components/schemas/google.rpc.Status/properties/code",
     "{\"type\":\"integer\",\"format\":\"int32\"}"},
    {"/components/schemas/google.rpc.Status/properties/details",
     "{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/google.protobuf.Any\"}}"},
    {"/components/schemas/google.protobuf.Any/required", "[\"@type\"]"},
    /* Only what a route reaches. */
    {"/components/schemas/google.rpc.BadRequest", NULL},
    {"/components/schemas/demo.v1.GetUserRequest", NULL},
};

static void test_demo(void **state)
{
    (void)state;
    gw_openapi_options o;
    gw_openapi_options_init(&o);
    o.title = "Demo";
    o.version = "1.2.3";
    json_t *doc = generate(&demo_pb, 1, &o);
    check(doc, demo_rows, GW_ARRAY_LEN(demo_rows));
    json_decref(doc);
}

/* ---------------------------------------------------------------------------
 * Proto names, a server URL.
 */
static const expect proto_name_rows[] = {
    {"/info/title", "\"grpcgate\""},
    {"/info/version", "\"0.0.0\""},
    {"/servers", "[{\"url\":\"http://localhost:8080\"}]"},
    {"/paths/~1v1~1users/get/parameters/0/name", "\"page_size\""},
    {"/paths/~1v1~1download/get/parameters/0/name", "\"total_bytes\""},
    {"/paths/~1v1~1users~1{id}/patch/parameters/1/name", "\"update_mask\""},
    {"/components/schemas/demo.v1.User/properties/created_at",
     "{\"$ref\":\"#/components/schemas/google.protobuf.Timestamp\"}"},
    {"/components/schemas/demo.v1.User/properties/createdAt", NULL},
    {"/components/schemas/demo.v1.User/properties/slack_handle/description",
     "\"Part of oneof contact: at most one of phone, slack_handle is set.\""},
};

static void test_proto_names(void **state)
{
    (void)state;
    gw_openapi_options o;
    gw_openapi_options_init(&o);
    o.proto_names = true;
    o.server_url = "http://localhost:8080";
    json_t *doc = generate(&demo_pb, 1, &o);
    check(doc, proto_name_rows, GW_ARRAY_LEN(proto_name_rows));
    json_decref(doc);
}

/* Without auto-mapping, unbound methods are not routes. */
static const expect no_auto_rows[] = {
    {"/paths/~1demo.v1.EchoService~1Unbound", NULL},
    {"/paths/~1demo.v1.UserService~1Chat", NULL},
    {"/paths/~1v1~1echo/post/operationId", "\"EchoService_Echo\""},
};

static void test_no_auto_map(void **state)
{
    (void)state;
    gw_openapi_options o;
    gw_openapi_options_init(&o);
    o.auto_map_unbound = false;
    json_t *doc = generate(&demo_pb, 1, &o);
    check(doc, no_auto_rows, GW_ARRAY_LEN(no_auto_rows));
    json_decref(doc);
}

/* ---------------------------------------------------------------------------
 * Comments (descriptor set built with --include_source_info).
 */
static const expect comment_rows[] = {
    {"/tags/0",
     "{\"name\":\"demo.v1.UserService\",\"description\":\"Users of the demo directory. The "
     "store is in memory and seeded with a few\\nusers (ids 1..3) every time the service "
     "starts.\"}"},
    {"/paths/~1v1~1users/post/summary",
     "\"Creates a user. `name` is required and `email` must contain an '@'; a violation is "
     "INVALID_ARGUMENT with a google.rpc.BadRequest detail.\""},
    {"/paths/~1v1~1users/post/description",
     "\"Creates a user. `name` is required and `email` must contain an '@'; a\\nviolation is "
     "INVALID_ARGUMENT with a google.rpc.BadRequest detail.\""},
    /* One line: a summary only. */
    {"/paths/~1v1~1users~1{id}:undelete/post/summary", "\"A custom verb.\""},
    {"/paths/~1v1~1users~1{id}:undelete/post/description", NULL},
    {"/paths/~1v1~1users~1{id}/get/summary", NULL},
    /* Well-known types keep their short descriptions, not pages of
     * google/protobuf comments. */
    {"/components/schemas/google.protobuf.Duration/description",
     "\"Seconds with up to 9 fractional digits and an 's'\""},
};

static void test_comments(void **state)
{
    (void)state;
    json_t *doc = generate(&demo_src_pb, 1, NULL);
    check(doc, comment_rows, GW_ARRAY_LEN(comment_rows));
    json_decref(doc);
}

/* ---------------------------------------------------------------------------
 * openapi_test.proto: what the demo API lacks.
 */
static const expect test_rows[] = {
    {"/tags",
     "[{\"name\":\"oa.test.Library\",\"description\":\"Shelves of a library.\"},"
     "{\"name\":\"oa.other.Library\"}]"},
    /* Multi-segment variable: documented by pattern and description. */
    {"/paths/~1v1~1{name}/get/operationId", "\"Library_GetShelf\""},
    {"/paths/~1v1~1{name}/get/summary", "\"Gets a shelf.\""},
    {"/paths/~1v1~1{name}/get/description", "\"Gets a shelf.\\n\\nThe name is shelves/<id>.\""},
    {"/paths/~1v1~1{name}/get/parameters",
     "[{\"name\":\"name\",\"in\":\"path\",\"required\":true,"
     "\"schema\":{\"type\":\"string\",\"pattern\":\"^shelves/[^/]+$\"},"
     "\"description\":\"Several path segments matching shelves/*: the slashes between them "
     "are sent as they are, not percent-encoded.\"}]"},
    {"/paths/~1v1~1{name}/get/x-grpcgate-template", "\"/v1/{name=shelves/*}\""},
    /* '**' and a custom verb. */
    {"/paths/~1v2~1{name}:read/get/operationId", "\"Library_GetShelf_3\""},
    {"/paths/~1v2~1{name}:read/get/parameters/0/schema/pattern", "\"^shelves(/.*)?$\""},
    /* The same OpenAPI path and method twice, and a method OpenAPI lacks:
     * served, but listed apart with the reason. */
    {"/x-grpcgate-unlisted",
     "[{\"method\":\"GET\",\"path\":\"/v1/{name=rooms/*}\",\"rpc\":"
     "\"oa.test.Library.GetShelf\",\"reason\":\"another route of this HTTP method has the "
     "same OpenAPI path\"},"
     "{\"method\":\"LIST\",\"path\":\"/v1/shelves\",\"rpc\":\"oa.test.Library.Probe\","
     "\"reason\":\"OpenAPI 3 has no such HTTP method\"}]"},
    {"/paths/~1v1~1shelves/head/operationId", "\"Library_Peek\""},
    {"/paths/~1v1~1shelves/head/parameters",
     "[{\"name\":\"deep\",\"in\":\"query\",\"schema\":{\"type\":\"boolean\"}}]"},
    /* A bare '*' gets a parameter of its own; query parameters: repeated by
     * repetition, maps as deepObject, nested messages dotted, recursion cut
     * where a message repeats, repeated messages left out. */
    {"/paths/~1v1~1{_segment1}~1books~1{parent}/get/parameters",
     "[{\"name\":\"_segment1\",\"in\":\"path\",\"required\":true,\"schema\":"
     "{\"type\":\"string\",\"pattern\":\"^[^/]+$\"},"
     "\"description\":\"Any one path segment; it is not bound to a field.\"},"
     "{\"name\":\"parent\",\"in\":\"path\",\"required\":true,\"schema\":{\"type\":\"string\"},"
     "\"description\":\"The shelf id.\"},"
     "{\"name\":\"tags\",\"in\":\"query\",\"schema\":{\"type\":\"array\",\"items\":"
     "{\"type\":\"string\"}}},"
     "{\"name\":\"counts\",\"in\":\"query\",\"style\":\"deepObject\",\"explode\":true,"
     "\"schema\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\","
     "\"format\":\"int64\"}}},"
     "{\"name\":\"filter.author\",\"in\":\"query\",\"schema\":{\"type\":\"string\"}},"
     "{\"name\":\"filter.pair.n\",\"in\":\"query\",\"schema\":{\"type\":\"integer\","
     "\"format\":\"int32\"}},"
     "{\"name\":\"since\",\"in\":\"query\",\"schema\":{\"type\":\"string\","
     "\"format\":\"date-time\",\"description\":\"RFC 3339 in UTC (\\\"Z\\\"), with 0, 3, 6 "
     "or 9 fractional digits\",\"example\":\"2024-01-02T03:04:05Z\"}}]"},
    /* response_body applies to each streamed message. */
    {"/paths/~1v1~1{_segment1}~1books~1{parent}/get/responses/200/content/"
     "application~1x-ndjson/schema/properties/result",
     "{\"type\":\"string\"}"},
    /* Recursion: child is not entered again. */
    {"/paths/~1v1~1nodes~1{name}/get/parameters",
     "[{\"name\":\"name\",\"in\":\"path\",\"required\":true,\"schema\":{\"type\":\"string\"}},"
     "{\"name\":\"weight\",\"in\":\"query\",\"schema\":{\"type\":\"string\","
     "\"format\":\"uint64\"}}]"},
    {"/components/schemas/oa.test.Node/properties/child",
     "{\"$ref\":\"#/components/schemas/oa.test.Node\"}"},
    /* body "*" with a nested path field keeps the message whole. */
    {"/paths/~1v1~1nodes~1{name}/post/requestBody/content/application~1json/schema",
     "{\"$ref\":\"#/components/schemas/oa.test.Node\"}"},
    /* HttpBody as the request and the response type. */
    {"/paths/~1v1~1upload/post/requestBody/content",
     "{\"*/*\":{\"schema\":{\"type\":\"string\",\"format\":\"binary\"}}}"},
    {"/paths/~1v1~1upload/post/responses/200/content",
     "{\"*/*\":{\"schema\":{\"type\":\"string\",\"format\":\"binary\"}}}"},
    {"/components/schemas/google.api.HttpBody", NULL},
    /* Field comments; a $ref with a description is wrapped in allOf. */
    {"/components/schemas/oa.test.Shelf/properties/theme",
     "{\"type\":\"string\",\"description\":\"The shelf's theme.\"}"},
    {"/components/schemas/oa.test.Shelf/properties/byId",
     "{\"type\":\"object\",\"additionalProperties\":"
     "{\"$ref\":\"#/components/schemas/oa.test.Book\"}}"},
    /* Same service name in two packages: operationIds stay unique. */
    {"/paths/~1other~1{name}/get/operationId", "\"Library_GetShelf_2\""},
    /* No google.rpc.Status in this set: written by the generator, with
     * the set's google.protobuf.Any (HttpBody imports it). */
    {"/components/schemas/google.rpc.Status/properties/details/items",
     "{\"$ref\":\"#/components/schemas/google.protobuf.Any\"}"},
    {"/components/schemas/google.rpc.Status/properties/message", "{\"type\":\"string\"}"},
};

static void test_more_routes(void **state)
{
    (void)state;
    json_t *doc = generate(&test_pb, 1, NULL);
    check(doc, test_rows, GW_ARRAY_LEN(test_rows));
    json_decref(doc);
}

/* Neither google.rpc.Status nor google.protobuf.Any in the set: both are
 * written by the generator. */
static const expect bare_rows[] = {
    {"/components/schemas/google.rpc.Status",
     "{\"type\":\"object\",\"description\":\"The gRPC status: code (google.rpc.Code), "
     "message and details\",\"properties\":{\"code\":{\"type\":\"integer\",\"format\":"
     "\"int32\"},\"message\":{\"type\":\"string\"},\"details\":{\"type\":\"array\","
     "\"items\":{\"type\":\"object\",\"properties\":{\"@type\":{\"type\":\"string\"}},"
     "\"required\":[\"@type\"],\"additionalProperties\":true,\"description\":\"A message "
     "of the type named by the URL in @type, with that type's fields beside it (or "
     "\\\"value\\\" for a type with a special JSON form)\"}}}}"},
    {"/components/schemas/google.protobuf.Any", NULL},
    {"/paths/~1other~1{name}/get/operationId", "\"Library_GetShelf\""},
};

static void test_bare_status(void **state)
{
    (void)state;
    json_t *doc = generate(&other_pb, 1, NULL);
    check(doc, bare_rows, GW_ARRAY_LEN(bare_rows));
    json_decref(doc);
}

/* ---------------------------------------------------------------------------
 * Every route the router serves is an operation or listed as unlisted.
 */
static size_t count_operations(json_t *doc)
{
    size_t n = 0;
    const char *path, *method;
    json_t *item, *op;
    json_object_foreach(json_object_get(doc, "paths"), path, item) {
        json_object_foreach(item, method, op)
            n++;
    }
    return n + json_array_size(json_object_get(doc, "x-grpcgate-unlisted"));
}

static void test_every_route(void **state)
{
    (void)state;
    const char *sets[] = {demo_pb, test_pb};
    for (size_t i = 0; i < GW_ARRAY_LEN(sets); i++) {
        gw_registry *r = NULL;
        gw_error e;
        assert_int_equal(gw_registry_load(&r, &sets[i], 1, &e), 0);
        gw_router *router = gw_router_new(NULL);
        assert_non_null(router);
        assert_int_equal(gw_router_add_registry(router, r, &e), 0);
        json_t *doc = generate(&sets[i], 1, NULL);
        assert_int_equal(count_operations(doc), gw_router_route_count(router));
        json_decref(doc);
        gw_router_del(router);
        gw_registry_del(r);
    }
}

/* A document over out->max: GW_ELIMIT, the buffer as it was. */
static void test_limit(void **state)
{
    (void)state;
    gw_registry *r = NULL;
    gw_error e;
    assert_int_equal(gw_registry_load(&r, &demo_pb, 1, &e), 0);
    gw_buf out;
    gw_buf_init(&out, 1000);
    assert_int_equal(gw_buf_append_str(&out, "keep"), 0);
    assert_int_equal(gw_openapi_generate(r, NULL, &out, &e), GW_ELIMIT);
    assert_string_equal(e.msg, "the document is larger than 1000 bytes");
    assert_int_equal(out.len, 4);
    assert_string_equal((const char *)out.data, "keep");
    gw_buf_free(&out);
    gw_registry_del(r);
}

/* A rule the router rejects fails the document with the router's message,
 * as it fails `serve`. */
static void test_router_error(void **state)
{
    (void)state;
    gw_registry *r = NULL;
    gw_error e;
    assert_int_equal(gw_registry_load(&r, &bad_pb, 1, &e), 0);
    gw_buf out;
    gw_buf_init(&out, 0);
    assert_int_equal(gw_openapi_generate(r, NULL, &out, &e), GW_ENOTFOUND);
    assert_string_equal(e.msg, "oa.bad.Bad.Get: GET /v1/{missing}: variable {missing}: "
                               "field path 'missing': oa.bad.Req has no field 'missing'");
    assert_int_equal(out.len, 0);
    gw_buf_free(&out);
    gw_registry_del(r);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: test_openapi DEMO_PB DEMO_SRC_PB TEST_PB OTHER_PB BAD_PB\n");
        return 2;
    }
    demo_pb = argv[1];
    demo_src_pb = argv[2];
    test_pb = argv[3];
    other_pb = argv[4];
    bad_pb = argv[5];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo),        cmocka_unit_test(test_proto_names),
        cmocka_unit_test(test_no_auto_map), cmocka_unit_test(test_comments),
        cmocka_unit_test(test_more_routes), cmocka_unit_test(test_bare_status),
        cmocka_unit_test(test_every_route),
        cmocka_unit_test(test_limit),       cmocka_unit_test(test_router_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
