/*
 * Registry unit tests. argv: demo.pb, registry.pb (schemas/test/registry_*),
 * and the directory holding the error fixtures (the fixtures directory, encoded).
 *
 * Most tests load demo.pb and registry.pb together, which also checks that
 * the well-known-type files both sets carry are accepted as identical
 * duplicates. The tables below are the specification: every service,
 * method, HTTP rule, message, field and enum of both sets as declared.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "schema/schema.h"

static const char *demo_path, *registry_path, *fixture_dir;
static gw_registry *both; /* demo.pb + registry.pb */

#define OPT GW_LABEL_OPTIONAL
#define REQ GW_LABEL_REQUIRED
#define REP GW_LABEL_REPEATED

/* ---------------------------------------------------------------------------
 * Helpers.
 */

static int load_paths(gw_registry **r, const char *const *paths, size_t n, gw_error *e)
{
    gw_error_clear(e);
    return gw_registry_load(r, paths, n, e);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    uint8_t *data = NULL;
    gw_error e;
    if (gw_read_file(path, GW_SCHEMA_MAX_FILE_BYTES, &data, len, &e) != 0)
        fail_msg("%s", e.msg);
    return data;
}

static void fixture_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s.pb", fixture_dir, name);
}

static int setup_both(void **state)
{
    (void)state;
    gw_error e;
    const char *paths[] = {demo_path, registry_path};
    if (load_paths(&both, paths, 2, &e) != 0) {
        fprintf(stderr, "loading the test sets: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static int teardown_both(void **state)
{
    (void)state;
    gw_registry_del(both);
    both = NULL;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Files.
 */

static const struct file_row {
    const char *name;
    const char *package;
    gw_syntax syntax;
    const char *deps; /* space-separated, in import order */
} file_rows[] = {
    {"demo/v1/user.proto", "demo.v1", GW_SYNTAX_PROTO3,
     "google/api/annotations.proto google/api/httpbody.proto google/protobuf/duration.proto "
     "google/protobuf/empty.proto google/protobuf/field_mask.proto google/protobuf/struct.proto "
     "google/protobuf/timestamp.proto google/protobuf/wrappers.proto"},
    {"google/api/annotations.proto", "google.api", GW_SYNTAX_PROTO3,
     "google/api/http.proto google/protobuf/descriptor.proto"},
    {"google/protobuf/descriptor.proto", "google.protobuf", GW_SYNTAX_PROTO2, ""},
    {"google/protobuf/struct.proto", "google.protobuf", GW_SYNTAX_PROTO3, ""},
    {"test/registry_proto2.proto", "registry.test.p2", GW_SYNTAX_PROTO2, ""},
    {"test/registry_proto3.proto", "registry.test.p3", GW_SYNTAX_PROTO3, ""},
    {"test/registry_service.proto", "registry.test.svc", GW_SYNTAX_PROTO3,
     "google/api/annotations.proto google/protobuf/empty.proto test/registry_proto3.proto"},
    {"test/registry_nopkg.proto", "", GW_SYNTAX_PROTO3, ""},
};

static void test_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(file_rows); i++) {
        const struct file_row *row = &file_rows[i];
        const gw_file_def *f = gw_registry_file(both, row->name);
        if (!f)
            fail_msg("file %s not found", row->name);
        assert_string_equal(f->name, row->name);
        assert_string_equal(f->package, row->package);
        assert_int_equal(f->syntax, row->syntax);
        assert_non_null(f->serialized);
        assert_true(f->serialized_len > 0);
        char deps[1024] = "";
        for (size_t j = 0; j < f->dependency_count; j++) {
            if (j)
                strcat(deps, " ");
            strcat(deps, f->dependencies[j]);
        }
        assert_string_equal(deps, row->deps);
    }
    /* Load order: demo.pb's files first (its last is the demo API), then
     * registry.pb's new ones; duplicates are not repeated. */
    size_t n = gw_registry_file_count(both);
    assert_true(n >= GW_ARRAY_LEN(file_rows));
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            assert_string_not_equal(gw_registry_file_at(both, i)->name,
                                    gw_registry_file_at(both, j)->name);
    assert_string_equal(gw_registry_file_at(both, n - 1)->name, "test/registry_nopkg.proto");
    assert_string_equal(gw_registry_file_at(both, 0)->source, demo_path);
    assert_string_equal(gw_registry_file_at(both, n - 1)->source, registry_path);
    assert_null(gw_registry_file_at(both, n));
    assert_null(gw_registry_file(both, "nope.proto"));
}

/* ---------------------------------------------------------------------------
 * Services, methods and HTTP rules.
 */

typedef struct rule_row {
    const char *verb, *path, *body, *response_body;
    bool additional;
} rule_row;

static const struct method_row {
    const char *path;
    const char *input, *output;
    const char *kind; /* unary, server, client, bidi */
    rule_row rules[4];
} method_rows[] = {
    {"/demo.v1.UserService/GetUser", "demo.v1.GetUserRequest", "demo.v1.User", "unary",
     {{"GET", "/v1/users/{id}", "", "", false}}},
    {"/demo.v1.UserService/CreateUser", "demo.v1.User", "demo.v1.User", "unary",
     {{"POST", "/v1/users", "*", "", false}}},
    {"/demo.v1.UserService/UpdateUser", "demo.v1.UpdateUserRequest", "demo.v1.User", "unary",
     {{"PATCH", "/v1/users/{user.id}", "user", "", false}}},
    {"/demo.v1.UserService/DeleteUser", "demo.v1.DeleteUserRequest", "google.protobuf.Empty",
     "unary", {{"DELETE", "/v1/users/{id}", "", "", false}}},
    {"/demo.v1.UserService/UndeleteUser", "demo.v1.UndeleteUserRequest", "demo.v1.User",
     "unary", {{"POST", "/v1/users/{id}:undelete", "*", "", false}}},
    {"/demo.v1.UserService/ListUsers", "demo.v1.ListUsersRequest", "demo.v1.User", "server",
     {{"GET", "/v1/users", "", "", false}, {"GET", "/v1/roles/{role}/users", "", "", true}}},
    {"/demo.v1.UserService/CreateUsers", "demo.v1.User", "demo.v1.CreateUsersSummary",
     "client", {{"POST", "/v1/users:batchCreate", "*", "", false}}},
    {"/demo.v1.UserService/Chat", "demo.v1.ChatMessage", "demo.v1.ChatMessage", "bidi", {{0}}},
    {"/demo.v1.UserService/GetAvatar", "demo.v1.GetAvatarRequest", "google.api.HttpBody",
     "unary", {{"GET", "/v1/users/{id}/avatar", "", "", false}}},
    {"/demo.v1.UserService/SetAvatar", "demo.v1.SetAvatarRequest", "demo.v1.User", "unary",
     {{"PUT", "/v1/users/{id}/avatar", "avatar", "", false}}},
    {"/demo.v1.EchoService/Echo", "demo.v1.EchoRequest", "demo.v1.EchoResponse", "unary",
     {{"POST", "/v1/echo", "*", "", false}}},
    {"/demo.v1.EchoService/Fail", "demo.v1.FailRequest", "demo.v1.EchoResponse", "unary",
     {{"POST", "/v1/fail", "*", "", false}}},
    {"/demo.v1.EchoService/Download", "demo.v1.DownloadRequest", "demo.v1.Chunk", "server",
     {{"GET", "/v1/download", "", "", false}}},
    {"/demo.v1.EchoService/Unbound", "demo.v1.EchoRequest", "demo.v1.EchoResponse", "unary",
     {{0}}},
    {"/registry.test.svc.Streams/Unary", "registry.test.svc.Req", "registry.test.svc.Resp",
     "unary", {{0}}},
    {"/registry.test.svc.Streams/ServerStream", "registry.test.svc.Req",
     "registry.test.svc.Resp", "server", {{0}}},
    {"/registry.test.svc.Streams/ClientStream", "registry.test.svc.Req",
     "registry.test.svc.Resp", "client", {{0}}},
    {"/registry.test.svc.Streams/Bidi", "registry.test.svc.Req", "registry.test.svc.Resp",
     "bidi", {{0}}},
    {"/registry.test.svc.Rest/Get", "registry.test.svc.Req", "registry.test.svc.Resp", "unary",
     {{"GET", "/v1/things/{id}", "", "", false}}},
    {"/registry.test.svc.Rest/Put", "registry.test.svc.Req", "registry.test.svc.Resp", "unary",
     {{"PUT", "/v1/things/{id}", "thing", "", false}}},
    {"/registry.test.svc.Rest/Post", "registry.test.svc.Req", "registry.test.svc.Resp",
     "unary", {{"POST", "/v1/things", "*", "thing", false}}},
    {"/registry.test.svc.Rest/Delete", "registry.test.svc.Req", "google.protobuf.Empty",
     "unary", {{"DELETE", "/v1/things/{id}", "", "", false}}},
    {"/registry.test.svc.Rest/Patch", "registry.test.svc.Req", "registry.test.svc.Resp",
     "unary", {{"PATCH", "/v1/things/{thing.f_int64}", "thing", "", false}}},
    {"/registry.test.svc.Rest/Custom", "registry.test.svc.Req", "registry.test.svc.Resp",
     "unary", {{"HEAD", "/v1/things/{id}", "", "", false}}},
    {"/registry.test.svc.Rest/Archive", "registry.test.svc.Req", "registry.test.svc.Resp",
     "unary", {{"POST", "/v1/things/{id}:archive", "*", "", false}}},
    {"/registry.test.svc.Rest/Multi", "registry.test.svc.Req", "registry.test.svc.Resp",
     "unary",
     {{"GET", "/v1/a/{id}", "", "", false},
      {"GET", "/v1/b/{id}", "", "", true},
      {"POST", "/v1/c", "*", "thing", true},
      {"OPTIONS", "/v1/d:probe", "", "", true}}},
    {"/registry.test.svc.Rest/Wild", "registry.test.svc.Req", "registry.test.svc.Resp",
     "unary", {{"GET", "/v1/{name=shelves/*/books/**}", "", "", false}}},
    {"/registry.test.svc.Rest/Plain", "google.protobuf.Empty", "google.protobuf.Empty",
     "unary", {{0}}},
    {"/BareService/Call", "Bare", "Bare", "unary", {{0}}},
};

static const struct service_row {
    const char *full_name, *name, *file;
    size_t method_count;
} service_rows[] = {
    {"demo.v1.UserService", "UserService", "demo/v1/user.proto", 10},
    {"demo.v1.EchoService", "EchoService", "demo/v1/user.proto", 4},
    {"registry.test.svc.Streams", "Streams", "test/registry_service.proto", 4},
    {"registry.test.svc.Rest", "Rest", "test/registry_service.proto", 10},
    {"BareService", "BareService", "test/registry_nopkg.proto", 1},
};

static void test_services(void **state)
{
    (void)state;
    /* Exactly these, in load and declaration order. */
    assert_int_equal(gw_registry_service_count(both), GW_ARRAY_LEN(service_rows));
    size_t method_index = 0;
    for (size_t i = 0; i < GW_ARRAY_LEN(service_rows); i++) {
        const struct service_row *row = &service_rows[i];
        const gw_service_def *s = gw_registry_service_at(both, i);
        assert_non_null(s);
        assert_ptr_equal(s, gw_registry_service(both, row->full_name));
        assert_ptr_equal(s, gw_registry_service(both, s->full_name));
        assert_string_equal(s->full_name, row->full_name);
        assert_string_equal(s->name, row->name);
        assert_string_equal(s->file->name, row->file);
        assert_int_equal(s->method_count, row->method_count);
        for (size_t j = 0; j < s->method_count; j++)
            assert_string_equal(s->methods[j].path, method_rows[method_index++].path);
    }
    assert_int_equal(method_index, GW_ARRAY_LEN(method_rows));
    assert_null(gw_registry_service_at(both, GW_ARRAY_LEN(service_rows)));
    assert_null(gw_registry_service(both, "demo.v1.User")); /* a message */
}

static void test_methods(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(method_rows); i++) {
        const struct method_row *row = &method_rows[i];
        /* The path is looked up by (pointer, length): pass it unterminated. */
        char buf[128];
        size_t len = strlen(row->path);
        memcpy(buf, row->path, len);
        buf[len] = 'X';
        const gw_method_def *m = gw_registry_method_by_path(both, buf, len);
        if (!m)
            fail_msg("method %s not found", row->path);
        assert_string_equal(m->path, row->path);
        char full[128];
        snprintf(full, sizeof full, "%s.%s", m->service->full_name, m->name);
        assert_string_equal(m->full_name, full);
        assert_string_equal(strrchr(row->path, '/') + 1, m->name);
        assert_string_equal(m->input->full_name, row->input);
        assert_string_equal(m->output->full_name, row->output);
        assert_ptr_equal(m->input, gw_registry_message(both, row->input));
        bool cs = strcmp(row->kind, "client") == 0 || strcmp(row->kind, "bidi") == 0;
        bool ss = strcmp(row->kind, "server") == 0 || strcmp(row->kind, "bidi") == 0;
        assert_int_equal(m->client_streaming, cs);
        assert_int_equal(m->server_streaming, ss);
        size_t nrules = 0;
        while (nrules < 4 && row->rules[nrules].verb)
            nrules++;
        if (m->http_rule_count != nrules)
            fail_msg("%s: %zu http rules, expected %zu", row->path, m->http_rule_count, nrules);
        for (size_t k = 0; k < nrules; k++) {
            const gw_http_rule *h = &m->http_rules[k];
            const rule_row *want = &row->rules[k];
            assert_string_equal(h->verb, want->verb);
            assert_string_equal(h->path, want->path);
            assert_string_equal(h->body, want->body);
            assert_string_equal(h->response_body, want->response_body);
            assert_int_equal(h->additional, want->additional);
        }
    }
    /* Near misses. */
    static const char *const absent[] = {
        "", "/", "/demo.v1.UserService/getUser", "demo.v1.UserService/GetUser",
        "/demo.v1.UserService/GetUser/", "/demo.v1.UserService.GetUser", "/UserService/GetUser",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(absent); i++)
        assert_null(gw_registry_method_by_path(both, absent[i], strlen(absent[i])));
    /* A prefix of a real path is not a match. */
    assert_null(gw_registry_method_by_path(both, "/demo.v1.UserService/GetUser", 20));
    /* MethodOptions.idempotency_level (Connect's GET needs NO_SIDE_EFFECTS). */
    static const struct {
        const char *path;
        int level;
    } idem[] = {
        {"/registry.test.svc.Streams/Unary", GW_IDEMPOTENCY_NO_SIDE_EFFECTS},
        {"/registry.test.svc.Streams/ServerStream", GW_IDEMPOTENCY_IDEMPOTENT},
        {"/registry.test.svc.Streams/Bidi", 0},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(idem); i++) {
        const gw_method_def *m = gw_registry_method_by_path(both, idem[i].path, strlen(idem[i].path));
        assert_non_null(m);
        if (m->idempotency_level != idem[i].level)
            fail_msg("%s: idempotency_level %d", idem[i].path, m->idempotency_level);
    }
}

/* ---------------------------------------------------------------------------
 * Messages and fields.
 */

typedef struct field_row {
    const char *msg;
    uint32_t number;
    const char *name, *json;
    gw_field_type type;
    gw_label label;
    const char *flags; /* p: has_presence, k: packed, m: is_map */
    const char *ref;   /* message or enum type, or NULL */
    const char *oneof; /* the real oneof it belongs to, or NULL */
} field_row;

#define F(msg, num, name, json, type, label, flags, ref, oneof) \
    {msg, num, name, json, GW_TYPE_##type, label, flags, ref, oneof}

static const field_row field_rows[] = {
    /* demo/v1/user.proto */
    F("demo.v1.Address", 1, "street", "street", STRING, OPT, "", NULL, NULL),
    F("demo.v1.Address", 2, "city", "city", STRING, OPT, "", NULL, NULL),
    F("demo.v1.Address", 3, "country", "country", STRING, OPT, "", NULL, NULL),
    F("demo.v1.User", 1, "id", "id", INT64, OPT, "", NULL, NULL),
    F("demo.v1.User", 2, "name", "name", STRING, OPT, "", NULL, NULL),
    F("demo.v1.User", 3, "email", "email", STRING, OPT, "", NULL, NULL),
    F("demo.v1.User", 4, "role", "role", ENUM, OPT, "", "demo.v1.Role", NULL),
    F("demo.v1.User", 5, "active", "active", BOOL, OPT, "", NULL, NULL),
    F("demo.v1.User", 6, "age", "age", UINT32, OPT, "", NULL, NULL),
    F("demo.v1.User", 7, "score", "score", DOUBLE, OPT, "", NULL, NULL),
    F("demo.v1.User", 8, "avatar", "avatar", BYTES, OPT, "", NULL, NULL),
    F("demo.v1.User", 9, "tags", "tags", STRING, REP, "", NULL, NULL),
    F("demo.v1.User", 10, "labels", "labels", MESSAGE, REP, "m", "demo.v1.User.LabelsEntry",
      NULL),
    F("demo.v1.User", 11, "address", "address", MESSAGE, OPT, "p", "demo.v1.Address", NULL),
    F("demo.v1.User", 12, "phone", "phone", STRING, OPT, "p", NULL, "contact"),
    F("demo.v1.User", 13, "slack_handle", "slackHandle", STRING, OPT, "p", NULL, "contact"),
    F("demo.v1.User", 14, "nickname", "nickname", STRING, OPT, "p", NULL, NULL),
    F("demo.v1.User", 15, "created_at", "createdAt", MESSAGE, OPT, "p",
      "google.protobuf.Timestamp", NULL),
    F("demo.v1.User", 16, "session_ttl", "sessionTtl", MESSAGE, OPT, "p",
      "google.protobuf.Duration", NULL),
    F("demo.v1.User", 17, "display_name", "displayName", MESSAGE, OPT, "p",
      "google.protobuf.StringValue", NULL),
    F("demo.v1.User", 18, "login_count", "loginCount", MESSAGE, OPT, "p",
      "google.protobuf.Int32Value", NULL),
    F("demo.v1.User", 19, "preferences", "preferences", MESSAGE, OPT, "p",
      "google.protobuf.Struct", NULL),
    F("demo.v1.User", 20, "previous_addresses", "previousAddresses", MESSAGE, REP, "",
      "demo.v1.Address", NULL),
    F("demo.v1.User", 21, "role_history", "roleHistory", MESSAGE, REP, "m",
      "demo.v1.User.RoleHistoryEntry", NULL),
    F("demo.v1.User", 22, "revision", "revision", FIXED64, OPT, "", NULL, NULL),
    F("demo.v1.User", 23, "karma", "karma", SINT32, OPT, "", NULL, NULL),
    F("demo.v1.User.LabelsEntry", 1, "key", "key", STRING, OPT, "", NULL, NULL),
    F("demo.v1.User.LabelsEntry", 2, "value", "value", STRING, OPT, "", NULL, NULL),
    F("demo.v1.User.RoleHistoryEntry", 1, "key", "key", INT32, OPT, "", NULL, NULL),
    F("demo.v1.User.RoleHistoryEntry", 2, "value", "value", ENUM, OPT, "", "demo.v1.Role",
      NULL),
    F("demo.v1.GetUserRequest", 1, "id", "id", INT64, OPT, "", NULL, NULL),
    F("demo.v1.UpdateUserRequest", 1, "user", "user", MESSAGE, OPT, "p", "demo.v1.User", NULL),
    F("demo.v1.UpdateUserRequest", 2, "update_mask", "updateMask", MESSAGE, OPT, "p",
      "google.protobuf.FieldMask", NULL),
    F("demo.v1.DeleteUserRequest", 1, "id", "id", INT64, OPT, "", NULL, NULL),
    F("demo.v1.UndeleteUserRequest", 1, "id", "id", INT64, OPT, "", NULL, NULL),
    F("demo.v1.UndeleteUserRequest", 2, "reason", "reason", STRING, OPT, "", NULL, NULL),
    F("demo.v1.ListUsersRequest", 1, "page_size", "pageSize", INT32, OPT, "", NULL, NULL),
    F("demo.v1.ListUsersRequest", 2, "delay", "delay", MESSAGE, OPT, "p",
      "google.protobuf.Duration", NULL),
    F("demo.v1.ListUsersRequest", 3, "role", "role", ENUM, OPT, "", "demo.v1.Role", NULL),
    F("demo.v1.ListUsersRequest", 4, "follow", "follow", BOOL, OPT, "", NULL, NULL),
    F("demo.v1.CreateUsersSummary", 1, "created", "created", INT32, OPT, "", NULL, NULL),
    F("demo.v1.CreateUsersSummary", 2, "ids", "ids", INT64, REP, "k", NULL, NULL),
    F("demo.v1.ChatMessage", 1, "text", "text", STRING, OPT, "", NULL, NULL),
    F("demo.v1.ChatMessage", 2, "from", "from", STRING, OPT, "", NULL, NULL),
    F("demo.v1.ChatMessage", 3, "sent_at", "sentAt", MESSAGE, OPT, "p",
      "google.protobuf.Timestamp", NULL),
    F("demo.v1.ChatMessage", 4, "sequence", "sequence", INT64, OPT, "", NULL, NULL),
    F("demo.v1.GetAvatarRequest", 1, "id", "id", INT64, OPT, "", NULL, NULL),
    F("demo.v1.SetAvatarRequest", 1, "id", "id", INT64, OPT, "", NULL, NULL),
    F("demo.v1.SetAvatarRequest", 2, "avatar", "avatar", MESSAGE, OPT, "p",
      "google.api.HttpBody", NULL),
    F("demo.v1.EchoRequest", 1, "message", "message", STRING, OPT, "", NULL, NULL),
    F("demo.v1.EchoRequest", 2, "number", "number", INT64, OPT, "", NULL, NULL),
    F("demo.v1.EchoRequest", 3, "delay", "delay", MESSAGE, OPT, "p", "google.protobuf.Duration",
      NULL),
    F("demo.v1.EchoResponse", 1, "message", "message", STRING, OPT, "", NULL, NULL),
    F("demo.v1.EchoResponse", 2, "number", "number", INT64, OPT, "", NULL, NULL),
    F("demo.v1.FailRequest", 1, "code", "code", INT32, OPT, "", NULL, NULL),
    F("demo.v1.FailRequest", 2, "message", "message", STRING, OPT, "", NULL, NULL),
    F("demo.v1.FailRequest", 3, "delay", "delay", MESSAGE, OPT, "p", "google.protobuf.Duration",
      NULL),
    F("demo.v1.DownloadRequest", 1, "total_bytes", "totalBytes", INT64, OPT, "", NULL, NULL),
    F("demo.v1.DownloadRequest", 2, "chunk_size", "chunkSize", INT32, OPT, "", NULL, NULL),
    F("demo.v1.Chunk", 1, "offset", "offset", INT64, OPT, "", NULL, NULL),
    F("demo.v1.Chunk", 2, "data", "data", BYTES, OPT, "", NULL, NULL),

    /* test/registry_proto3.proto */
#define S "registry.test.p3.Scalars"
    F(S, 1, "f_double", "fDouble", DOUBLE, OPT, "", NULL, NULL),
    F(S, 2, "f_float", "fFloat", FLOAT, OPT, "", NULL, NULL),
    F(S, 3, "f_int64", "fInt64", INT64, OPT, "", NULL, NULL),
    F(S, 4, "f_uint64", "fUint64", UINT64, OPT, "", NULL, NULL),
    F(S, 5, "f_int32", "fInt32", INT32, OPT, "", NULL, NULL),
    F(S, 6, "f_fixed64", "fFixed64", FIXED64, OPT, "", NULL, NULL),
    F(S, 7, "f_fixed32", "fFixed32", FIXED32, OPT, "", NULL, NULL),
    F(S, 8, "f_bool", "fBool", BOOL, OPT, "", NULL, NULL),
    F(S, 9, "f_string", "fString", STRING, OPT, "", NULL, NULL),
    F(S, 11, "f_message", "fMessage", MESSAGE, OPT, "p", S, NULL),
    F(S, 12, "f_bytes", "fBytes", BYTES, OPT, "", NULL, NULL),
    F(S, 13, "f_uint32", "fUint32", UINT32, OPT, "", NULL, NULL),
    F(S, 14, "f_enum", "fEnum", ENUM, OPT, "", "registry.test.p3.Kind", NULL),
    F(S, 15, "f_sfixed32", "fSfixed32", SFIXED32, OPT, "", NULL, NULL),
    F(S, 16, "f_sfixed64", "fSfixed64", SFIXED64, OPT, "", NULL, NULL),
    F(S, 17, "f_sint32", "fSint32", SINT32, OPT, "", NULL, NULL),
    F(S, 18, "f_sint64", "fSint64", SINT64, OPT, "", NULL, NULL),
    F(S, 19, "early", "early", INT32, OPT, "", NULL, NULL),
    F(S, 20, "r_packed", "rPacked", INT32, REP, "k", NULL, NULL),
    F(S, 21, "r_unpacked", "rUnpacked", INT32, REP, "", NULL, NULL),
    F(S, 22, "r_string", "rString", STRING, REP, "", NULL, NULL),
    F(S, 23, "r_enum", "rEnum", ENUM, REP, "k", "registry.test.p3.Kind", NULL),
    F(S, 24, "r_double", "rDouble", DOUBLE, REP, "k", NULL, NULL),
    F(S, 25, "r_message", "rMessage", MESSAGE, REP, "", S, NULL),
    F(S, 30, "maybe", "maybe", INT32, OPT, "p", NULL, NULL),
    F(S, 31, "maybe_msg", "maybeMsg", MESSAGE, OPT, "p", S, NULL),
    F(S, 40, "c_text", "cText", STRING, OPT, "p", NULL, "choice"),
    F(S, 41, "c_number", "cNumber", INT64, OPT, "p", NULL, "choice"),
    F(S, 42, "c_outer", "cOuter", MESSAGE, OPT, "p", "registry.test.p3.Outer", "choice"),
    F(S, 43, "o_flag", "oFlag", BOOL, OPT, "p", NULL, "other"),
    F(S, 50, "renamed", "customName", INT32, OPT, "", NULL, NULL),
    F(S, 51, "snake_case_name_2x", "snakeCaseName2x", STRING, OPT, "", NULL, NULL),
    F(S, 536870911, "late", "late", INT32, OPT, "", NULL, NULL),
#undef S
#define M "registry.test.p3.Maps"
    F(M, 1, "m_int32", "mInt32", MESSAGE, REP, "m", M ".MInt32Entry", NULL),
    F(M, 2, "m_int64", "mInt64", MESSAGE, REP, "m", M ".MInt64Entry", NULL),
    F(M, 3, "m_uint32", "mUint32", MESSAGE, REP, "m", M ".MUint32Entry", NULL),
    F(M, 4, "m_uint64", "mUint64", MESSAGE, REP, "m", M ".MUint64Entry", NULL),
    F(M, 5, "m_sint32", "mSint32", MESSAGE, REP, "m", M ".MSint32Entry", NULL),
    F(M, 6, "m_sint64", "mSint64", MESSAGE, REP, "m", M ".MSint64Entry", NULL),
    F(M, 7, "m_fixed32", "mFixed32", MESSAGE, REP, "m", M ".MFixed32Entry", NULL),
    F(M, 8, "m_fixed64", "mFixed64", MESSAGE, REP, "m", M ".MFixed64Entry", NULL),
    F(M, 9, "m_sfixed32", "mSfixed32", MESSAGE, REP, "m", M ".MSfixed32Entry", NULL),
    F(M, 10, "m_sfixed64", "mSfixed64", MESSAGE, REP, "m", M ".MSfixed64Entry", NULL),
    F(M, 11, "m_bool", "mBool", MESSAGE, REP, "m", M ".MBoolEntry", NULL),
    F(M, 12, "m_string", "mString", MESSAGE, REP, "m", M ".MStringEntry", NULL),
    F(M, 13, "m_message", "mMessage", MESSAGE, REP, "m", M ".MMessageEntry", NULL),
    F(M, 14, "m_enum", "mEnum", MESSAGE, REP, "m", M ".MEnumEntry", NULL),
#undef M
    F("registry.test.p3.Outer", 1, "middle", "middle", MESSAGE, OPT, "p",
      "registry.test.p3.Outer.Middle", NULL),
    F("registry.test.p3.Outer", 2, "inners", "inners", MESSAGE, REP, "",
      "registry.test.p3.Outer.Middle.Inner", NULL),
    F("registry.test.p3.Outer.Middle", 1, "inner", "inner", MESSAGE, OPT, "p",
      "registry.test.p3.Outer.Middle.Inner", NULL),
    F("registry.test.p3.Outer.Middle", 2, "level", "level", ENUM, OPT, "",
      "registry.test.p3.Outer.Middle.Level", NULL),
    F("registry.test.p3.Outer.Middle.Inner", 1, "depth", "depth", INT32, OPT, "", NULL, NULL),
    F("registry.test.p3.Outer.Middle.Inner", 2, "back", "back", MESSAGE, OPT, "p",
      "registry.test.p3.Outer", NULL),
    F("registry.test.p3.Tree", 1, "children", "children", MESSAGE, REP, "",
      "registry.test.p3.Tree", NULL),
    F("registry.test.p3.Tree", 2, "forest", "forest", MESSAGE, OPT, "p",
      "registry.test.p3.Forest", NULL),
    F("registry.test.p3.Forest", 1, "trees", "trees", MESSAGE, REP, "",
      "registry.test.p3.Tree", NULL),

    /* test/registry_proto2.proto */
#define L "registry.test.p2.Legacy"
    F(L, 1, "id", "id", INT32, REQ, "p", NULL, NULL),
    F(L, 2, "name", "name", STRING, OPT, "p", NULL, NULL),
    F(L, 3, "color", "color", ENUM, OPT, "p", "registry.test.p2.Color", NULL),
    F(L, 4, "plain", "plain", INT32, REP, "", NULL, NULL),
    F(L, 5, "dense", "dense", INT32, REP, "k", NULL, NULL),
    F(L, 6, "item", "item", GROUP, OPT, "p", L ".Item", NULL),
    F(L, 8, "ratio", "ratio", DOUBLE, OPT, "p", NULL, NULL),
    F(L, 9, "blob", "blob", BYTES, OPT, "p", NULL, NULL),
    F(L, 10, "next", "next", MESSAGE, OPT, "p", L, NULL),
    F(L, 11, "words", "words", STRING, REP, "", NULL, NULL),
    F(L ".Item", 7, "quantity", "quantity", INT32, OPT, "p", NULL, NULL),
#undef L

    /* test/registry_service.proto, test/registry_nopkg.proto */
    F("registry.test.svc.Req", 1, "id", "id", INT64, OPT, "", NULL, NULL),
    F("registry.test.svc.Req", 2, "thing", "thing", MESSAGE, OPT, "p",
      "registry.test.p3.Scalars", NULL),
    F("registry.test.svc.Req", 3, "name", "name", STRING, OPT, "", NULL, NULL),
    F("registry.test.svc.Resp", 1, "thing", "thing", MESSAGE, OPT, "p",
      "registry.test.p3.Scalars", NULL),
    F("Bare", 1, "x", "x", INT32, OPT, "", NULL, NULL),
    F("Bare", 2, "e", "e", ENUM, OPT, "", "BareEnum", NULL),
};

static void check_field(const field_row *row)
{
    const gw_message_def *m = gw_registry_message(both, row->msg);
    if (!m)
        fail_msg("message %s not found", row->msg);
    const gw_field_def *f = gw_message_field_by_number(m, row->number);
    if (!f)
        fail_msg("%s: field %u not found", row->msg, row->number);
    assert_string_equal(f->name, row->name);
    assert_string_equal(f->json_name, row->json);
    assert_int_equal(f->type, row->type);
    assert_int_equal(f->label, row->label);
    if (f->has_presence != (strchr(row->flags, 'p') != NULL))
        fail_msg("%s.%s: has_presence %d", row->msg, row->name, f->has_presence);
    if (f->packed != (strchr(row->flags, 'k') != NULL))
        fail_msg("%s.%s: packed %d", row->msg, row->name, f->packed);
    if (f->is_map != (strchr(row->flags, 'm') != NULL))
        fail_msg("%s.%s: is_map %d", row->msg, row->name, f->is_map);
    assert_ptr_equal(f->containing, m);
    if (row->type == GW_TYPE_ENUM) {
        assert_null(f->message);
        assert_non_null(f->enumeration);
        assert_string_equal(f->enumeration->full_name, row->ref);
        assert_ptr_equal(f->enumeration, gw_registry_enum(both, row->ref));
    } else if (row->type == GW_TYPE_MESSAGE || row->type == GW_TYPE_GROUP) {
        assert_null(f->enumeration);
        assert_non_null(f->message);
        assert_string_equal(f->message->full_name, row->ref);
        assert_ptr_equal(f->message, gw_registry_message(both, row->ref));
    } else {
        assert_null(f->message);
        assert_null(f->enumeration);
    }
    /* Every way of finding it finds the same definition. */
    assert_ptr_equal(gw_message_field_by_json_name(m, row->json, strlen(row->json)), f);
    assert_ptr_equal(gw_message_field_by_proto_name(m, row->name, strlen(row->name)), f);
    assert_ptr_equal(gw_message_field_by_name(m, row->json, strlen(row->json)), f);
    assert_ptr_equal(gw_message_field_by_name(m, row->name, strlen(row->name)), f);
    if (strcmp(row->name, row->json) != 0) {
        assert_null(gw_message_field_by_json_name(m, row->name, strlen(row->name)));
        assert_null(gw_message_field_by_proto_name(m, row->json, strlen(row->json)));
    }
    if (row->oneof) {
        assert_true(f->oneof_index >= 0 && (size_t)f->oneof_index < m->oneof_count);
        const gw_oneof_def *o = &m->oneofs[f->oneof_index];
        assert_string_equal(o->name, row->oneof);
        bool member = false;
        for (size_t i = 0; i < o->field_count; i++)
            member |= o->fields[i] == f;
        assert_true(member);
    } else {
        assert_int_equal(f->oneof_index, -1);
    }
}

static void test_fields(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(field_rows); i++)
        check_field(&field_rows[i]);
    /* No message has a field the table does not list, and fields come
     * sorted by number. */
    for (size_t i = 0; i < GW_ARRAY_LEN(field_rows);) {
        size_t j = i;
        while (j < GW_ARRAY_LEN(field_rows) && strcmp(field_rows[j].msg, field_rows[i].msg) == 0)
            j++;
        const gw_message_def *m = gw_registry_message(both, field_rows[i].msg);
        if (m->field_count != j - i)
            fail_msg("%s: %zu fields, table lists %zu", m->full_name, m->field_count, j - i);
        for (size_t k = 1; k < m->field_count; k++)
            assert_true(m->fields[k - 1].number < m->fields[k].number);
        i = j;
    }
}

static const struct message_row {
    const char *full_name, *name, *file;
    gw_syntax syntax;
    bool map_entry;
    const char *oneofs; /* real oneofs, "name:count ..." */
} message_rows[] = {
    {"demo.v1.User", "User", "demo/v1/user.proto", GW_SYNTAX_PROTO3, false, "contact:2"},
    {"demo.v1.User.LabelsEntry", "LabelsEntry", "demo/v1/user.proto", GW_SYNTAX_PROTO3, true,
     ""},
    {"registry.test.p3.Scalars", "Scalars", "test/registry_proto3.proto", GW_SYNTAX_PROTO3,
     false, "choice:3 other:1"},
    {"registry.test.p3.Maps.MInt32Entry", "MInt32Entry", "test/registry_proto3.proto",
     GW_SYNTAX_PROTO3, true, ""},
    {"registry.test.p3.Outer.Middle.Inner", "Inner", "test/registry_proto3.proto",
     GW_SYNTAX_PROTO3, false, ""},
    {"registry.test.p2.Legacy", "Legacy", "test/registry_proto2.proto", GW_SYNTAX_PROTO2,
     false, ""},
    {"registry.test.p2.Legacy.Item", "Item", "test/registry_proto2.proto", GW_SYNTAX_PROTO2,
     false, ""},
    {"Bare", "Bare", "test/registry_nopkg.proto", GW_SYNTAX_PROTO3, false, ""},
    {"google.protobuf.FileDescriptorProto", "FileDescriptorProto",
     "google/protobuf/descriptor.proto", GW_SYNTAX_PROTO2, false, ""},
};

static void test_messages(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(message_rows); i++) {
        const struct message_row *row = &message_rows[i];
        const gw_message_def *m = gw_registry_message(both, row->full_name);
        if (!m)
            fail_msg("message %s not found", row->full_name);
        assert_string_equal(m->full_name, row->full_name);
        assert_string_equal(m->name, row->name);
        assert_string_equal(m->file->name, row->file);
        assert_int_equal(m->syntax, row->syntax);
        assert_int_equal(m->map_entry, row->map_entry);
        char oneofs[256] = "";
        for (size_t j = 0; j < m->oneof_count; j++) {
            char one[64];
            snprintf(one, sizeof one, "%s%s:%zu", j ? " " : "", m->oneofs[j].name,
                     m->oneofs[j].field_count);
            strcat(oneofs, one);
        }
        assert_string_equal(oneofs, row->oneofs);
        /* A leading dot is tolerated; enums and services are not messages. */
        char dotted[256];
        snprintf(dotted, sizeof dotted, ".%s", row->full_name);
        assert_ptr_equal(gw_registry_message(both, dotted), m);
        assert_null(gw_registry_enum(both, row->full_name));
        assert_ptr_equal(gw_registry_file_containing(both, row->full_name), m->file);
    }
    static const char *const absent[] = {"", ".", "User", "demo.v1", "demo.v1.user",
                                         "demo.v1.User.", "demo.v1.Role", "..demo.v1.User"};
    for (size_t i = 0; i < GW_ARRAY_LEN(absent); i++)
        assert_null(gw_registry_message(both, absent[i]));
}

/* Map entries: key and value types, for every key kind. */
static const struct map_row {
    const char *entry;
    gw_field_type key, value;
    const char *value_ref;
} map_rows[] = {
#define E "registry.test.p3.Maps."
    {E "MInt32Entry", GW_TYPE_INT32, GW_TYPE_STRING, NULL},
    {E "MInt64Entry", GW_TYPE_INT64, GW_TYPE_STRING, NULL},
    {E "MUint32Entry", GW_TYPE_UINT32, GW_TYPE_STRING, NULL},
    {E "MUint64Entry", GW_TYPE_UINT64, GW_TYPE_STRING, NULL},
    {E "MSint32Entry", GW_TYPE_SINT32, GW_TYPE_STRING, NULL},
    {E "MSint64Entry", GW_TYPE_SINT64, GW_TYPE_STRING, NULL},
    {E "MFixed32Entry", GW_TYPE_FIXED32, GW_TYPE_STRING, NULL},
    {E "MFixed64Entry", GW_TYPE_FIXED64, GW_TYPE_STRING, NULL},
    {E "MSfixed32Entry", GW_TYPE_SFIXED32, GW_TYPE_STRING, NULL},
    {E "MSfixed64Entry", GW_TYPE_SFIXED64, GW_TYPE_STRING, NULL},
    {E "MBoolEntry", GW_TYPE_BOOL, GW_TYPE_STRING, NULL},
    {E "MStringEntry", GW_TYPE_STRING, GW_TYPE_STRING, NULL},
    {E "MMessageEntry", GW_TYPE_STRING, GW_TYPE_MESSAGE, "registry.test.p3.Maps"},
    {E "MEnumEntry", GW_TYPE_STRING, GW_TYPE_ENUM, "registry.test.p3.Kind"},
#undef E
    {"demo.v1.User.LabelsEntry", GW_TYPE_STRING, GW_TYPE_STRING, NULL},
    {"demo.v1.User.RoleHistoryEntry", GW_TYPE_INT32, GW_TYPE_ENUM, "demo.v1.Role"},
};

static void test_map_entries(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(map_rows); i++) {
        const struct map_row *row = &map_rows[i];
        const gw_message_def *m = gw_registry_message(both, row->entry);
        if (!m)
            fail_msg("map entry %s not found", row->entry);
        assert_true(m->map_entry);
        assert_int_equal(m->field_count, 2);
        const gw_field_def *k = gw_map_key(m), *v = gw_map_value(m);
        assert_int_equal(k->number, 1);
        assert_string_equal(k->name, "key");
        assert_int_equal(k->type, row->key);
        assert_int_equal(v->number, 2);
        assert_string_equal(v->name, "value");
        assert_int_equal(v->type, row->value);
        if (row->value == GW_TYPE_MESSAGE)
            assert_string_equal(v->message->full_name, row->value_ref);
        else if (row->value == GW_TYPE_ENUM)
            assert_string_equal(v->enumeration->full_name, row->value_ref);
    }
}

/* proto2 [default = ...] texts, as protoc writes them. */
static void test_defaults(void **state)
{
    (void)state;
    static const struct {
        const char *msg, *field, *def;
    } rows[] = {
        {"registry.test.p2.Legacy", "name", "anon"},
        {"registry.test.p2.Legacy", "color", "GREEN"},
        {"registry.test.p2.Legacy", "ratio", "1.5"},
        {"registry.test.p2.Legacy", "blob", "a\\001"},
        {"registry.test.p2.Legacy", "id", NULL},
        {"registry.test.p3.Scalars", "f_int32", NULL},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(rows); i++) {
        const gw_message_def *m = gw_registry_message(both, rows[i].msg);
        const gw_field_def *f =
            gw_message_field_by_proto_name(m, rows[i].field, strlen(rows[i].field));
        assert_non_null(f);
        if (rows[i].def)
            assert_string_equal(f->default_value, rows[i].def);
        else
            assert_null(f->default_value);
    }
}

/* ---------------------------------------------------------------------------
 * Enums.
 */

static const struct enum_row {
    const char *full_name, *name, *file;
    bool closed, allow_alias, is_null_value;
    const char *values; /* "NAME=number ..." in declaration order */
} enum_rows[] = {
    {"demo.v1.Role", "Role", "demo/v1/user.proto", false, false, false,
     "ROLE_UNSPECIFIED=0 ROLE_VIEWER=1 ROLE_EDITOR=2 ROLE_ADMIN=3"},
    {"registry.test.p3.Kind", "Kind", "test/registry_proto3.proto", false, true, false,
     "KIND_UNSPECIFIED=0 KIND_A=1 KIND_ALIAS_A=1 KIND_B=2 KIND_NEGATIVE=-3"},
    {"registry.test.p3.Outer.Middle.Level", "Level", "test/registry_proto3.proto", false, false,
     false, "LEVEL_UNSPECIFIED=0 LEVEL_DEEP=1"},
    {"registry.test.p2.Color", "Color", "test/registry_proto2.proto", true, false, false,
     "RED=1 GREEN=2 BLUE=3"},
    {"BareEnum", "BareEnum", "test/registry_nopkg.proto", false, false, false, "BARE_ZERO=0"},
    {"google.protobuf.NullValue", "NullValue", "google/protobuf/struct.proto", false, false,
     true, "NULL_VALUE=0"},
};

static void test_enums(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(enum_rows); i++) {
        const struct enum_row *row = &enum_rows[i];
        const gw_enum_def *e = gw_registry_enum(both, row->full_name);
        if (!e)
            fail_msg("enum %s not found", row->full_name);
        assert_string_equal(e->full_name, row->full_name);
        assert_string_equal(e->name, row->name);
        assert_string_equal(e->file->name, row->file);
        assert_int_equal(e->closed, row->closed);
        assert_int_equal(e->allow_alias, row->allow_alias);
        assert_int_equal(e->is_null_value, row->is_null_value);
        assert_null(gw_registry_message(both, row->full_name));
        char values[256] = "";
        for (size_t j = 0; j < e->value_count; j++) {
            char one[64];
            snprintf(one, sizeof one, "%s%s=%d", j ? " " : "", e->values[j].name,
                     e->values[j].number);
            strcat(values, one);
            const gw_enum_value_def *v =
                gw_enum_value_by_name(e, e->values[j].name, strlen(e->values[j].name));
            assert_ptr_equal(v, &e->values[j]);
            /* By number: the first declared name of that number. */
            const gw_enum_value_def *first = gw_enum_value_by_number(e, e->values[j].number);
            assert_non_null(first);
            assert_true(first <= &e->values[j]);
            assert_int_equal(first->number, e->values[j].number);
            for (const gw_enum_value_def *p = e->values; p < first; p++)
                assert_int_not_equal(p->number, first->number);
        }
        assert_string_equal(values, row->values);
        assert_null(gw_enum_value_by_number(e, 12345));
        assert_null(gw_enum_value_by_name(e, "NOPE", 4));
        /* Names are looked up by (pointer, length). */
        assert_null(gw_enum_value_by_name(e, e->values[0].name, strlen(e->values[0].name) - 1));
    }
    const gw_enum_def *kind = gw_registry_enum(both, "registry.test.p3.Kind");
    assert_string_equal(gw_enum_value_by_number(kind, 1)->name, "KIND_A");
    assert_string_equal(gw_enum_value_by_number(kind, -3)->name, "KIND_NEGATIVE");
    assert_string_equal(gw_enum_value_by_name(kind, "KIND_ALIAS_A", 12)->name, "KIND_ALIAS_A");
}

/* ---------------------------------------------------------------------------
 * Well-known types and other lookups.
 */

static void test_wkt(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        gw_wkt wkt;
        bool wrapper; /* gw_wkt_is_wrapper */
    } rows[] = {
        {"google.protobuf.Any", GW_WKT_ANY, false},
        {"google.protobuf.Timestamp", GW_WKT_TIMESTAMP, false},
        {"google.protobuf.Duration", GW_WKT_DURATION, false},
        {"google.protobuf.FieldMask", GW_WKT_FIELD_MASK, false},
        {"google.protobuf.Struct", GW_WKT_STRUCT, false},
        {"google.protobuf.Value", GW_WKT_VALUE, false},
        {"google.protobuf.ListValue", GW_WKT_LIST_VALUE, false},
        {"google.protobuf.Empty", GW_WKT_EMPTY, false},
        {"google.protobuf.DoubleValue", GW_WKT_DOUBLE_VALUE, true},
        {"google.protobuf.FloatValue", GW_WKT_FLOAT_VALUE, true},
        {"google.protobuf.Int64Value", GW_WKT_INT64_VALUE, true},
        {"google.protobuf.UInt64Value", GW_WKT_UINT64_VALUE, true},
        {"google.protobuf.Int32Value", GW_WKT_INT32_VALUE, true},
        {"google.protobuf.UInt32Value", GW_WKT_UINT32_VALUE, true},
        {"google.protobuf.BoolValue", GW_WKT_BOOL_VALUE, true},
        {"google.protobuf.StringValue", GW_WKT_STRING_VALUE, true},
        {"google.protobuf.BytesValue", GW_WKT_BYTES_VALUE, true},
        {"google.api.HttpBody", GW_WKT_HTTP_BODY, false},
        {"demo.v1.User", GW_WKT_NONE, false},
        {"google.protobuf.FileDescriptorProto", GW_WKT_NONE, false},
        {"google.rpc.Status", GW_WKT_NONE, false},
        {"google.api.HttpRule", GW_WKT_NONE, false},
    };
    /* google/protobuf/any.proto is in demo.pb only through google.rpc.Status. */
    for (size_t i = 0; i < GW_ARRAY_LEN(rows); i++) {
        const gw_message_def *m = gw_registry_message(both, rows[i].name);
        if (!m)
            fail_msg("%s not found", rows[i].name);
        assert_int_equal(m->wkt, rows[i].wkt);
        if (gw_wkt_is_wrapper(m->wkt) != rows[i].wrapper)
            fail_msg("%s: gw_wkt_is_wrapper says %d", rows[i].name, !rows[i].wrapper);
    }
}

static void test_type_url_and_containing(void **state)
{
    (void)state;
    const gw_message_def *user = gw_registry_message(both, "demo.v1.User");
    static const struct {
        const char *url;
        bool found;
    } urls[] = {
        {"type.googleapis.com/demo.v1.User", true},
        {"example.com/a/b/demo.v1.User", true},
        {"/demo.v1.User", true},
        {"demo.v1.User", true},
        {"type.googleapis.com/demo.v1.Role", false},
        {"type.googleapis.com/", false},
        {"type.googleapis.com/demo.v1.User/", false},
        {"type.googleapis.com/demo.v1.Use", false},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(urls); i++) {
        const gw_message_def *m =
            gw_registry_message_by_type_url(both, urls[i].url, strlen(urls[i].url));
        if (urls[i].found)
            assert_ptr_equal(m, user);
        else
            assert_null(m);
    }
    /* (pointer, length): a longer buffer is cut where the caller says. */
    const char *longer = "type.googleapis.com/demo.v1.UserXYZ";
    assert_ptr_equal(gw_registry_message_by_type_url(both, longer, strlen(longer) - 3), user);

    static const struct {
        const char *symbol, *file;
    } syms[] = {
        {"demo.v1.User", "demo/v1/user.proto"},
        {".demo.v1.User", "demo/v1/user.proto"},
        {"demo.v1.User.created_at", "demo/v1/user.proto"},
        {"demo.v1.User.LabelsEntry", "demo/v1/user.proto"},
        {"demo.v1.UserService", "demo/v1/user.proto"},
        {"demo.v1.UserService.GetUser", "demo/v1/user.proto"},
        {"demo.v1.Role", "demo/v1/user.proto"},
        {"demo.v1.Role.ROLE_ADMIN", "demo/v1/user.proto"},
        {"google.protobuf.Timestamp", "google/protobuf/timestamp.proto"},
        {"registry.test.p3.Outer.Middle.Level", "test/registry_proto3.proto"},
        {"BareService.Call", "test/registry_nopkg.proto"},
        {"demo.v1.User.createdAt", NULL}, /* JSON names are not symbols */
        {"demo.v1.UserService.getUser", NULL},
        {"demo.v1.Nope", NULL},
        {"demo.v1", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(syms); i++) {
        const gw_file_def *f = gw_registry_file_containing(both, syms[i].symbol);
        if (syms[i].file) {
            if (!f)
                fail_msg("%s: no file", syms[i].symbol);
            assert_string_equal(f->name, syms[i].file);
        } else if (f) {
            fail_msg("%s: found in %s", syms[i].symbol, f->name);
        }
    }
}

static void test_field_type_names(void **state)
{
    (void)state;
    static const struct {
        gw_field_type t;
        const char *name;
    } rows[] = {
        {GW_TYPE_DOUBLE, "double"},     {GW_TYPE_FLOAT, "float"},     {GW_TYPE_INT64, "int64"},
        {GW_TYPE_UINT64, "uint64"},     {GW_TYPE_INT32, "int32"},     {GW_TYPE_FIXED64, "fixed64"},
        {GW_TYPE_FIXED32, "fixed32"},   {GW_TYPE_BOOL, "bool"},       {GW_TYPE_STRING, "string"},
        {GW_TYPE_GROUP, "group"},       {GW_TYPE_MESSAGE, "message"}, {GW_TYPE_BYTES, "bytes"},
        {GW_TYPE_UINT32, "uint32"},     {GW_TYPE_ENUM, "enum"},       {GW_TYPE_SFIXED32, "sfixed32"},
        {GW_TYPE_SFIXED64, "sfixed64"}, {GW_TYPE_SINT32, "sint32"},   {GW_TYPE_SINT64, "sint64"},
        {(gw_field_type)0, "unknown"},  {(gw_field_type)19, "unknown"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(rows); i++)
        assert_string_equal(gw_field_type_name(rows[i].t), rows[i].name);
}

/* NULL registries and definitions are absent, not crashes. */
static void test_null_args(void **state)
{
    (void)state;
    assert_null(gw_registry_message(NULL, "demo.v1.User"));
    assert_null(gw_registry_message(both, NULL));
    assert_null(gw_registry_enum(NULL, "x"));
    assert_null(gw_registry_service(NULL, "x"));
    assert_null(gw_registry_method_by_path(NULL, "/a/b", 4));
    assert_null(gw_registry_message_by_type_url(NULL, "a/b", 3));
    assert_null(gw_registry_file(NULL, "a"));
    assert_null(gw_registry_file_containing(NULL, "a"));
    assert_int_equal(gw_registry_file_count(NULL), 0);
    assert_int_equal(gw_registry_service_count(NULL), 0);
    assert_null(gw_message_field_by_number(NULL, 1));
    assert_null(gw_message_field_by_name(NULL, "a", 1));
    assert_null(gw_enum_value_by_name(NULL, "a", 1));
    assert_null(gw_enum_value_by_number(NULL, 0));
    assert_null(gw_registry_extension(NULL, "a", 1));
    assert_null(gw_registry_extension(both, NULL, 0));
    assert_int_equal(gw_registry_extension_count(NULL), 0);
    assert_null(gw_registry_extension_at(NULL, 0));
    assert_null(gw_message_extension_by_number(NULL, 1));
    gw_registry_del(NULL);
    gw_registry_builder_del(NULL);
}

/* ---------------------------------------------------------------------------
 * Extensions: indexed by full name (registry) and by number (the extended
 * message), from file scope and from inside messages.
 */

static const struct ext_row {
    const char *full_name, *name, *json_name;
    const char *extendee;
    uint32_t number;
    gw_field_type type;
    gw_label label;
    const char *flags; /* p: has_presence, k: packed */
    const char *ref;   /* message or enum type, or NULL */
    const char *scope; /* enclosing message, or NULL at file scope */
    const char *file;
} ext_rows[] = {
    {"google.api.http", "http", "[google.api.http]", "google.protobuf.MethodOptions",
     72295728, GW_TYPE_MESSAGE, OPT, "p", "google.api.HttpRule", NULL,
     "google/api/annotations.proto"},
    {"registry.test.p2.note", "note", "[registry.test.p2.note]", "registry.test.p2.Legacy", 100,
     GW_TYPE_STRING, OPT, "p", NULL, NULL, "test/registry_proto2.proto"},
    {"registry.test.p2.Holder.held", "held", "[registry.test.p2.Holder.held]",
     "registry.test.p2.Legacy", 101, GW_TYPE_INT32, REP, "k", NULL, "registry.test.p2.Holder",
     "test/registry_proto2.proto"},
    {"registry.test.p2.Holder.holder", "holder", "[registry.test.p2.Holder.holder]",
     "registry.test.p2.Legacy", 102, GW_TYPE_MESSAGE, OPT, "p", "registry.test.p2.Holder",
     "registry.test.p2.Holder", "test/registry_proto2.proto"},
};

static void check_ext(const gw_registry *r, const struct ext_row *row)
{
    const gw_field_def *f = gw_registry_extension(r, row->full_name, strlen(row->full_name));
    if (!f)
        fail_msg("extension %s not found", row->full_name);
    assert_true(f->is_extension);
    assert_string_equal(f->full_name, row->full_name);
    assert_string_equal(f->name, row->name);
    assert_string_equal(f->json_name, row->json_name);
    assert_string_equal(f->containing->full_name, row->extendee);
    assert_int_equal(f->number, row->number);
    assert_int_equal(f->type, row->type);
    assert_int_equal(f->label, row->label);
    assert_int_equal(f->has_presence, strchr(row->flags, 'p') != NULL);
    assert_int_equal(f->packed, strchr(row->flags, 'k') != NULL);
    assert_false(f->is_map);
    assert_int_equal(f->oneof_index, -1);
    const char *ref = f->message ? f->message->full_name
                                 : f->enumeration ? f->enumeration->full_name : NULL;
    if (row->ref)
        assert_string_equal(ref, row->ref);
    else
        assert_null(ref);
    if (row->scope)
        assert_string_equal(f->scope->full_name, row->scope);
    else
        assert_null(f->scope);
    assert_string_equal(f->file->name, row->file);
    /* The other ways in: by number on the extendee, a leading dot, the
     * file containing the symbol. Extensions are not fields. */
    assert_ptr_equal(gw_message_extension_by_number(f->containing, f->number), f);
    assert_null(gw_message_field_by_number(f->containing, f->number));
    assert_null(gw_message_field_by_name(f->containing, f->json_name, strlen(f->json_name)));
    char dotted[256];
    snprintf(dotted, sizeof dotted, ".%s", row->full_name);
    assert_ptr_equal(gw_registry_extension(r, dotted, strlen(dotted)), f);
    assert_ptr_equal(gw_registry_file_containing(r, row->full_name), f->file);
    assert_null(gw_registry_message(r, row->full_name));
}

static void test_extensions(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(ext_rows); i++)
        check_ext(both, &ext_rows[i]);
    /* Load order: demo.pb's files, then registry.pb's; file scope first. */
    assert_int_equal(gw_registry_extension_count(both), GW_ARRAY_LEN(ext_rows));
    for (size_t i = 0; i < GW_ARRAY_LEN(ext_rows); i++)
        assert_string_equal(gw_registry_extension_at(both, i)->full_name, ext_rows[i].full_name);
    assert_null(gw_registry_extension_at(both, GW_ARRAY_LEN(ext_rows)));
    /* The extended message's table: sorted by number, nothing else. */
    const gw_message_def *legacy = gw_registry_message(both, "registry.test.p2.Legacy");
    assert_int_equal(legacy->extension_count, 3);
    for (size_t i = 0; i < legacy->extension_count; i++)
        assert_int_equal(legacy->extensions[i]->number, 100 + i);
    assert_null(gw_message_extension_by_number(legacy, 99));
    assert_null(gw_message_extension_by_number(legacy, 103));
    assert_null(gw_message_extension_by_number(legacy, 1));
    assert_int_equal(gw_registry_message(both, "demo.v1.User")->extension_count, 0);
    assert_null(gw_message_extension_by_number(gw_registry_message(both, "demo.v1.User"), 1));
    /* Names that are not extensions (or not whole names). */
    static const char *const absent[] = {"note", "registry.test.p2.Legacy.note",
                                         "registry.test.p2.Holder", "registry.test.p2.not",
                                         "[registry.test.p2.note]", ""};
    for (size_t i = 0; i < GW_ARRAY_LEN(absent); i++)
        assert_null(gw_registry_extension(both, absent[i], strlen(absent[i])));
    /* (pointer, length): a longer buffer is cut where the caller says. */
    const char *longer = "registry.test.p2.notes";
    assert_ptr_equal(gw_registry_extension(both, longer, strlen(longer) - 1),
                     gw_registry_extension(both, "registry.test.p2.note", 21));
}

/* A hand-made set: relative extendee and type names, a range up to the
 * maximum number, a MessageSet's extension (skipped). */
static void test_extensions_valid_fixture(void **state)
{
    (void)state;
    char path[512];
    fixture_path(path, sizeof path, "ext_valid");
    const char *paths[] = {path};
    gw_registry *r;
    gw_error e;
    if (load_paths(&r, paths, 1, &e))
        fail_msg("ext_valid: %s", e.msg);
    const struct ext_row rows[] = {
        {"fx.v1.tags", "tags", "[fx.v1.tags]", "fx.v1.Base", 100, GW_TYPE_INT32, REP, "", NULL,
         NULL, "ext.proto"},
        {"fx.v1.Holder.inner", "inner", "[fx.v1.Holder.inner]", "fx.v1.Base", 536870911,
         GW_TYPE_MESSAGE, OPT, "p", "fx.v1.Holder.Inner", "fx.v1.Holder", "ext.proto"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(rows); i++)
        check_ext(r, &rows[i]);
    assert_int_equal(gw_registry_extension_count(r), 2);
    assert_null(gw_registry_extension(r, "fx.v1.Holder.item", 17));
    assert_int_equal(gw_registry_message(r, "fx.v1.Set")->extension_count, 0);
    gw_registry_del(r);
}

/* ---------------------------------------------------------------------------
 * Loading: several sets, duplicates, reflection-style files.
 */

static void test_each_set_alone(void **state)
{
    (void)state;
    gw_registry *r;
    gw_error e;
    const char *demo[] = {demo_path};
    assert_int_equal(load_paths(&r, demo, 1, &e), 0);
    assert_int_equal(gw_registry_service_count(r), 2);
    assert_null(gw_registry_message(r, "registry.test.p3.Scalars"));
    gw_registry_del(r);
    const char *reg[] = {registry_path};
    assert_int_equal(load_paths(&r, reg, 1, &e), 0);
    assert_int_equal(gw_registry_service_count(r), 3);
    assert_null(gw_registry_message(r, "demo.v1.User"));
    gw_registry_del(r);
}

/* The same set twice is the same registry: identical files are merged. */
static void test_identical_duplicates(void **state)
{
    (void)state;
    gw_registry *once, *twice;
    gw_error e;
    const char *one[] = {demo_path};
    const char *two[] = {demo_path, demo_path, demo_path};
    assert_int_equal(load_paths(&once, one, 1, &e), 0);
    assert_int_equal(load_paths(&twice, two, 3, &e), 0);
    assert_int_equal(gw_registry_file_count(twice), gw_registry_file_count(once));
    assert_int_equal(gw_registry_service_count(twice), gw_registry_service_count(once));
    gw_registry_del(once);
    gw_registry_del(twice);
}

/* gw_file_def.serialized holds each file's exact bytes: rebuilding a
 * registry from them, file by file as reflection does, gives the same one. */
static void test_serialized_round_trip(void **state)
{
    (void)state;
    gw_registry_builder *b = gw_registry_builder_new();
    assert_non_null(b);
    gw_error e;
    gw_error_clear(&e);
    /* In reverse order: dependencies may come after their users. */
    for (size_t i = gw_registry_file_count(both); i-- > 0;) {
        const gw_file_def *f = gw_registry_file_at(both, i);
        assert_int_equal(
            gw_registry_builder_add_file(b, f->serialized, f->serialized_len, "reflection", &e),
            0);
    }
    gw_registry *r = NULL;
    assert_int_equal(gw_registry_builder_build(b, &r, &e), 0);
    assert_int_equal(gw_registry_file_count(r), gw_registry_file_count(both));
    for (size_t i = 0; i < gw_registry_file_count(both); i++) {
        const gw_file_def *a = gw_registry_file_at(both, i);
        const gw_file_def *c = gw_registry_file(r, a->name);
        assert_non_null(c);
        assert_string_equal(c->source, "reflection");
        assert_int_equal(c->serialized_len, a->serialized_len);
        assert_memory_equal(c->serialized, a->serialized, a->serialized_len);
    }
    const gw_method_def *m = gw_registry_method_by_path(r, "/registry.test.svc.Rest/Multi", 29);
    assert_non_null(m);
    assert_int_equal(m->http_rule_count, 4);
    /* Reflection-loaded files index extensions by the same code path. */
    for (size_t i = 0; i < GW_ARRAY_LEN(ext_rows); i++)
        check_ext(r, &ext_rows[i]);
    assert_int_equal(gw_registry_extension_count(r), GW_ARRAY_LEN(ext_rows));
    gw_registry_del(r);
    /* The builder is left empty and may be used again. */
    assert_int_equal(gw_registry_builder_build(b, &r, &e), GW_EPARSE);
    assert_null(r);
    gw_registry_builder_del(b);
}

/* ---------------------------------------------------------------------------
 * Errors: each names the file (the descriptor set and the .proto inside)
 * and the symbol at fault.
 */

static const struct error_row {
    const char *fixtures; /* space-separated fixture names, loaded together */
    int code;
    const char *want[4];  /* substrings of the message */
} error_rows[] = {
    {"missing_dep", GW_ENOTFOUND, {"missing_dep.pb: ", "a.proto", "\"missing/b.proto\""}},
    {"bad_type_ref", GW_ENOTFOUND,
     {"bad_type_ref.pb: ", "user.proto", "fx.v1.User.address", ".fx.v1.Adress"}},
    {"bad_enum_ref", GW_ENOTFOUND, {"bad_enum_ref.pb: ", "color.proto", "fx.Paint.color",
                                    ".fx.Colour"}},
    {"bad_method_input", GW_ENOTFOUND,
     {"bad_method_input.pb: ", "svc.proto", "fx.Svc.Call", "input type .fx.In"}},
    {"bad_method_output", GW_EPARSE,
     {"bad_method_output.pb: ", "svc.proto", "fx.Svc.Call", "output type .fx.Out is not a message"}},
    {"dup_symbol", GW_EINVAL, {"dup_symbol.pb: ", "two.proto", "fx.Thing", "one.proto"}},
    {"dup_symbol_kinds", GW_EINVAL, {"dup_symbol_kinds.pb: ", "one.proto", "fx.Thing"}},
    {"conflict_a conflict_b", GW_EINVAL,
     {"conflict_b.pb: ", "shared.proto", "conflict_a.pb", "contents differ"}},
    {"dup_field_number", GW_EPARSE,
     {"dup_field_number.pb: ", "num.proto", "fx.Twice", "field number 3"}},
    {"bad_field_number", GW_EPARSE, {"bad_field_number.pb: ", "num.proto", "fx.Zero.z",
                                     "bad field number 0"}},
    {"bad_map_entry", GW_EPARSE, {"bad_map_entry.pb: ", "map.proto", "fx.Holder.MEntry",
                                  "map entry"}},
    {"nested_bindings", GW_EPARSE,
     {"nested_bindings.pb: ", "http.proto", "fx.Svc.Call", "may not nest"}},
    {"http_no_pattern", GW_EPARSE,
     {"http_no_pattern.pb: ", "http.proto", "fx.Svc.Call", "without a method and path"}},
    {"empty_enum", GW_EPARSE, {"empty_enum.pb: ", "enum.proto", "fx.Nothing", "no values"}},
    {"bad_syntax", GW_EPARSE, {"bad_syntax.pb: ", "ed.proto", "\"editions\""}},
    {"no_name", GW_EPARSE, {"no_name.pb: ", "file #1", "without a name"}},
    {"bad_oneof_index", GW_EPARSE, {"bad_oneof_index.pb: ", "oneof.proto", "fx.M.a",
                                    "oneof index 2"}},
    {"bad_ident", GW_EPARSE, {"bad_ident.pb: ", "ident.proto", "'Not.A.Name'"}},
    {"bad_json_name", GW_EPARSE, {"bad_json_name.pb: ", "json.proto", "fx.M.a", "json_name"}},
    {"relative_ref", 0, {NULL}},
    /* extensions: extendee, range, type, number and name conflicts */
    {"ext_unknown_extendee", GW_ENOTFOUND,
     {"ext_unknown_extendee.pb: ", "ext.proto", "fx.tag", "unknown extendee .fx.Bsae"}},
    {"ext_not_message", GW_EPARSE,
     {"ext_not_message.pb: ", "ext.proto", "fx.tag", "extendee .fx.Kind is not a message"}},
    {"ext_out_of_range", GW_EPARSE,
     {"ext_out_of_range.pb: ", "ext.proto", "fx.Holder.tag",
      "number 200 is not in an extension range of fx.Base"}},
    {"ext_no_ranges", GW_EPARSE,
     {"ext_no_ranges.pb: ", "ext.proto", "fx.tag",
      "number 2 is not in an extension range of fx.Closed"}},
    {"ext_bad_type", GW_ENOTFOUND,
     {"ext_bad_type.pb: ", "ext.proto", "fx.payload", "unknown type .fx.Payl0ad"}},
    {"ext_field_clash", GW_EPARSE,
     {"ext_field_clash.pb: ", "ext.proto", "fx.tag", "number 5 is field a of fx.Base"}},
    {"ext_dup_a ext_dup_b", GW_EINVAL,
     {"ext_dup_b.pb: ", "b.proto", "fx.b.label: extension number 150 of fx.Base",
      "also used by fx.a.tag (a.proto)"}},
    {"ext_dup_name", GW_EINVAL,
     {"ext_dup_name.pb: ", "ext.proto", "fx.Tag is already defined"}},
    {"ext_valid", 0, {NULL}},
    {"ext_dup_a", 0, {NULL}},
    /* Identical duplicates are fine, also across sets. */
    {"conflict_a conflict_a", 0, {NULL}},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(error_rows); i++) {
        const struct error_row *row = &error_rows[i];
        char names[128], paths_buf[4][512];
        const char *paths[4];
        size_t n = 0;
        snprintf(names, sizeof names, "%s", row->fixtures);
        for (char *save = NULL, *tok = strtok_r(names, " ", &save); tok && n < 4;
             tok = strtok_r(NULL, " ", &save), n++) {
            fixture_path(paths_buf[n], sizeof paths_buf[n], tok);
            paths[n] = paths_buf[n];
        }
        gw_registry *r = (gw_registry *)1;
        gw_error e;
        int rc = load_paths(&r, paths, n, &e);
        if (rc != row->code)
            fail_msg("%s: got %d (%s), want %d", row->fixtures, rc, e.msg, row->code);
        if (rc == 0) {
            assert_non_null(r);
            gw_registry_del(r);
            continue;
        }
        assert_null(r);
        assert_int_equal(e.code, rc);
        for (size_t k = 0; k < 4 && row->want[k]; k++)
            if (!strstr(e.msg, row->want[k]))
                fail_msg("%s: message \"%s\" lacks \"%s\"", row->fixtures, e.msg, row->want[k]);
    }
}

/* Hand-made descriptors may use relative names; they resolve like C++. */
static void test_relative_refs(void **state)
{
    (void)state;
    char path[512];
    fixture_path(path, sizeof path, "relative_ref");
    const char *paths[] = {path};
    gw_registry *r;
    gw_error e;
    assert_int_equal(load_paths(&r, paths, 1, &e), 0);
    const gw_message_def *m = gw_registry_message(r, "fx.v1.Outer");
    assert_non_null(m);
    assert_string_equal(gw_message_field_by_number(m, 1)->message->full_name, "fx.v1.Outer.Inner");
    assert_int_equal(gw_message_field_by_number(m, 1)->type, GW_TYPE_MESSAGE);
    assert_string_equal(gw_message_field_by_number(m, 2)->message->full_name, "fx.v1.Other");
    assert_string_equal(gw_message_field_by_number(m, 3)->enumeration->full_name, "fx.v1.Kind");
    assert_int_equal(gw_message_field_by_number(m, 3)->type, GW_TYPE_ENUM);
    /* No json_name in the descriptor: computed. */
    assert_string_equal(gw_message_field_by_number(m, 1)->json_name, "inner");
    gw_registry_del(r);
}

/* Byte-level failures: each names the source. */
static void test_bad_bytes(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *bytes;
        size_t len;
        const char *want;
    } rows[] = {
        {"empty", "", 0, "empty.pb: empty file"},
        {"text", "hello, world\n", 13, "text.pb: not a descriptor set"},
        {"json", "{\"file\": []}", 12, "json.pb: not a descriptor set"},
        {"varint-overflow", "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12,
         "varint-overflow.pb: not a descriptor set (bad wire format at byte 0"},
        {"length-past-end", "\x0a\x05\x0a\x01", 4,
         "length-past-end.pb: not a descriptor set (bad wire format at byte 0"},
        {"field-zero", "\x02\x00", 2, "field-zero.pb: not a descriptor set"},
        {"file-as-varint", "\x08\x01", 2, "file-as-varint.pb: not a descriptor set (field 1"},
        {"no-files", "\x10\x01", 2, "no-files.pb: not a descriptor set (no files in it)"},
        {"group", "\x0b\x0c", 2, "group.pb: not a descriptor set"},
        {"file-garbage", "\x0a\x02\xff\xff", 4, "file-garbage.pb: file #1: not a FileDescriptorProto"},
        {"file-bad-name", "\x0a\x03\x0a\x05x", 5, "file-bad-name.pb: file #1"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(rows); i++) {
        gw_registry_builder *b = gw_registry_builder_new();
        char source[64];
        snprintf(source, sizeof source, "%s.pb", rows[i].name);
        gw_error e;
        gw_error_clear(&e);
        int rc = gw_registry_builder_add_set(b, (const uint8_t *)rows[i].bytes, rows[i].len,
                                             source, &e);
        if (rc != GW_EPARSE)
            fail_msg("%s: got %d (%s)", rows[i].name, rc, e.msg);
        if (!strstr(e.msg, rows[i].want))
            fail_msg("%s: message \"%s\" lacks \"%s\"", rows[i].name, e.msg, rows[i].want);
        gw_registry_builder_del(b);
    }
}

/* Every truncation of demo.pb fails cleanly (or, cut exactly between files,
 * loads the files before the cut if they stand alone). */
static void test_truncated(void **state)
{
    (void)state;
    size_t len;
    uint8_t *data = read_all(demo_path, &len);
    size_t step = len / 400 + 1;
    size_t failures = 0;
    for (size_t cut = 0; cut < len; cut += cut < 64 ? 1 : step) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, data, cut);
        gw_registry_builder *b = gw_registry_builder_new();
        gw_error e;
        gw_error_clear(&e);
        gw_registry *r = NULL;
        int rc = gw_registry_builder_add_set(b, copy, cut, "cut.pb", &e);
        if (rc == 0)
            rc = gw_registry_builder_build(b, &r, &e);
        if (rc) {
            failures++;
            assert_null(r);
            assert_true(rc == GW_EPARSE || rc == GW_ENOTFOUND);
            assert_non_null(strstr(e.msg, "cut.pb"));
        }
        gw_registry_del(r);
        gw_registry_builder_del(b);
        free(copy);
    }
    assert_true(failures > 64);
    free(data);
}

static void test_load_errors(void **state)
{
    (void)state;
    gw_registry *r = (gw_registry *)1;
    gw_error e;
    const char *missing[] = {"/nonexistent/grpcgate/x.pb"};
    assert_int_equal(load_paths(&r, missing, 1, &e), GW_EIO);
    assert_null(r);
    assert_non_null(strstr(e.msg, "/nonexistent/grpcgate/x.pb"));
    r = (gw_registry *)1;
    assert_int_equal(load_paths(&r, NULL, 0, &e), GW_EINVAL);
    assert_null(r);
    /* A good file then a bad one: nothing is kept. */
    const char *mixed[] = {demo_path, "/nonexistent/grpcgate/y.pb"};
    assert_int_equal(load_paths(&r, mixed, 2, &e), GW_EIO);
    assert_non_null(strstr(e.msg, "y.pb"));
    /* A directory is not a descriptor set. */
    const char *dir[] = {fixture_dir};
    assert_int_not_equal(load_paths(&r, dir, 1, &e), 0);
    assert_null(r);
    assert_non_null(strstr(e.msg, fixture_dir));
}

/* Nesting deeper than the cap is refused before protobuf-c recurses. */
static void test_deep_nesting(void **state)
{
    (void)state;
    /* FileDescriptorProto { name: "d.proto" message_type { name: "M" nested_type {
     * name: "M" nested_type { ... } } } }, built inside out. */
    enum { DEPTH = 5000 };
    size_t cap = DEPTH * 16 + 64, len = 0;
    uint8_t *msg = malloc(cap), *tmp = malloc(cap);
    memcpy(msg, "\x0a\x01M", 3);
    len = 3;
    for (int i = 1; i < DEPTH; i++) {
        /* name "M", then nested_type (field 3) = previous. */
        size_t n = 0;
        tmp[n++] = 0x0a;
        tmp[n++] = 0x01;
        tmp[n++] = 'M';
        tmp[n++] = 0x1a;
        for (size_t v = len;; v >>= 7) {
            tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            if (v <= 0x7f)
                break;
        }
        memcpy(tmp + n, msg, len);
        n += len;
        memcpy(msg, tmp, n);
        len = n;
    }
    /* The file: name, message_type (field 4). Then the set: file (field 1). */
    size_t n = 0;
    memcpy(tmp, "\x0a\x07" "d.proto\x22", 10);
    n = 10;
    for (size_t v = len;; v >>= 7) {
        tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f)
            break;
    }
    memcpy(tmp + n, msg, len);
    n += len;
    gw_registry_builder *b = gw_registry_builder_new();
    gw_error e;
    gw_error_clear(&e);
    assert_int_equal(gw_registry_builder_add_file(b, tmp, n, "deep", &e), GW_EPARSE);
    assert_non_null(strstr(e.msg, "deep: file: messages nested more than 100 deep"));
    gw_registry_builder_del(b);
    free(msg);
    free(tmp);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s DEMO_PB REGISTRY_PB FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    demo_path = argv[1];
    registry_path = argv[2];
    fixture_dir = argv[3];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_services),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_map_entries),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_wkt),
        cmocka_unit_test(test_type_url_and_containing),
        cmocka_unit_test(test_field_type_names),
        cmocka_unit_test(test_null_args),
        cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_extensions_valid_fixture),
        cmocka_unit_test(test_each_set_alone),
        cmocka_unit_test(test_identical_duplicates),
        cmocka_unit_test(test_serialized_round_trip),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_relative_refs),
        cmocka_unit_test(test_bad_bytes),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_deep_nesting),
    };
    return cmocka_run_group_tests(tests, setup_both, teardown_both);
}
