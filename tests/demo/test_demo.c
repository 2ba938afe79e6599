/* Unit tests for the pure parts of src/demo: request framing, grpc-timeout,
 * echoed trailer names, error details, and reflection over the embedded
 * descriptor sets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "demo/demo.h"
#include "demo/internal.h"

#include "google_rpc_error_details.pb-c.h"
#include "google_rpc_status.pb-c.h"
#include "google_protobuf_descriptor.pb-c.h"
#include "grpc_reflection_v1_reflection.pb-c.h"

extern const uint8_t gw_demo_reflect_data[];
extern const size_t gw_demo_reflect_len;

/* ---- grpc-timeout -------------------------------------------------------- */

static void test_timeout_parse(void **state)
{
    static const struct {
        const char *in;
        int rc;
        uint64_t ns;
    } cases[] = {
        {"1S", 0, 1000000000ull},
        {"250m", 0, 250000000ull},
        {"7u", 0, 7000ull},
        {"99n", 0, 99ull},
        {"2M", 0, 120000000000ull},
        {"1H", 0, 3600000000000ull},
        {"0m", 0, 0},
        {"12345678S", 0, 12345678000000000ull},
        {"99999999H", 0, (uint64_t)INT64_MAX}, /* saturates */
        {"123456789S", GW_EPARSE, 0},     /* 9 digits */
        {"S", GW_EPARSE, 0},
        {"", GW_EPARSE, 0},
        {"10", GW_EPARSE, 0},             /* no unit */
        {"10s", GW_EPARSE, 0},            /* units are case-sensitive */
        {"1 S", GW_EPARSE, 0},
        {"-1S", GW_EPARSE, 0},
        {"1.5S", GW_EPARSE, 0},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        uint64_t ns = 12345;
        int rc = gw_grpc_timeout_parse(cases[i].in, strlen(cases[i].in), &ns);
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d, want %d", cases[i].in, rc, cases[i].rc);
        if (rc == 0 && ns != cases[i].ns)
            fail_msg("%s: %llu ns, want %llu", cases[i].in, (unsigned long long)ns,
                     (unsigned long long)cases[i].ns);
    }
}

static void test_duration_ns(void **state)
{
    static const struct {
        int64_t s;
        int32_t n;
        uint64_t want;
    } cases[] = {
        {0, 0, 0},
        {1, 500000000, 1500000000ull},
        {0, 1, 1},
        {-1, 0, 0},
        {0, -5, 0},
        {INT64_MAX, 999999999, UINT64_MAX},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++)
        assert_int_equal(dm_duration_ns(cases[i].s, cases[i].n), cases[i].want);
}

/* ---- trailer names ------------------------------------------------------ */

static void test_trailer_name(void **state)
{
    static const struct {
        const char *key, *want;
    } cases[] = {
        {"x-demo-a", "x-demo-a-trailer"},
        {"x-demo-a-bin", "x-demo-a-trailer-bin"},
        {"x-demo-bin", "x-demo-trailer-bin"},
        {"x-demo-binary", "x-demo-binary-trailer"},
    };
    gw_buf b;
    gw_buf_init(&b, 0);
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        assert_int_equal(dm_trailer_name(&b, cases[i].key, strlen(cases[i].key)), 0);
        assert_string_equal((char *)b.data, cases[i].want);
    }
    gw_buf_free(&b);
}

/* ---- framing ------------------------------------------------------------- */

typedef struct collected {
    gw_buf all;      /* messages joined with '|' */
    int count;
    int stop_after;  /* callback returns 7 after this many (0: never) */
} collected;

static int collect(void *owner, const uint8_t *msg, size_t len)
{
    collected *c = owner;
    gw_buf_append(&c->all, msg, len);
    gw_buf_append_byte(&c->all, '|');
    c->count++;
    return c->stop_after && c->count == c->stop_after ? 7 : 0;
}

/* Feeds `in` in pieces of `step` bytes (0: all at once). */
static int feed(const uint8_t *in, size_t n, size_t step, size_t max, collected *c,
                gw_error *e, bool *idle)
{
    dm_framer f;
    dm_framer_init(&f, max);
    int rc = 0;
    size_t pos = 0;
    while (pos < n && rc == 0) {
        size_t take = step ? GW_MIN(step, n - pos) : n - pos;
        rc = dm_framer_feed(&f, in + pos, take, collect, c, e);
        pos += take;
    }
    *idle = dm_framer_idle(&f);
    dm_framer_free(&f);
    return rc;
}

static void test_framer(void **state)
{
#define B(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})
    const struct {
        const char *name;
        const uint8_t *in;
        size_t n;
        size_t max;
        int rc;
        const char *messages;   /* joined with '|' */
        bool idle;
        const char *err;        /* substring of the error message */
    } cases[] = {
        {"one message", B(0, 0, 0, 0, 2, 'h', 'i'), 100, 0, "hi|", true, NULL},
        {"empty message", B(0, 0, 0, 0, 0), 100, 0, "|", true, NULL},
        {"two messages", B(0, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 2, 'b', 'c'), 100, 0, "a|bc|", true,
         NULL},
        {"truncated prefix", B(0, 0, 0), 100, 0, "", false, NULL},
        {"truncated body", B(0, 0, 0, 0, 3, 'a'), 100, 0, "", false, NULL},
        {"at the limit", B(0, 0, 0, 0, 3, 'x', 'y', 'z'), 3, 0, "xyz|", true, NULL},
        {"over the limit", B(0, 0, 0, 0, 4, 'x', 'y', 'z', 'w'), 3, GW_ELIMIT, "", false,
         "larger than the maximum (4 vs. 3 bytes)"},
        {"huge length", B(0, 0xff, 0xff, 0xff, 0xff), 4 << 20, GW_ELIMIT, "", false,
         "at byte 0 is larger"},
        {"second prefix too big", B(0, 0, 0, 0, 1, 'a', 0, 0x10, 0, 0, 0), 100, GW_ELIMIT,
         "a|", false, "at byte 6"},
        {"compressed", B(1, 0, 0, 0, 1, 'a'), 100, GW_EINVAL, "", false, "compressed"},
        {"bad flag", B(0x80, 0, 0, 0, 0), 100, GW_EPARSE, "", false, "invalid message flag 0x80"},
    };
#undef B
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        /* Every chunking gives the same result. */
        for (size_t step = 0; step <= 3; step++) {
            collected c = {0};
            gw_buf_init(&c.all, 0);
            gw_error e;
            gw_error_clear(&e);
            bool idle;
            int rc = feed(cases[i].in, cases[i].n, step, cases[i].max, &c, &e, &idle);
            const char *got = c.all.data ? (char *)c.all.data : "";
            if (rc != cases[i].rc || strcmp(got, cases[i].messages) != 0 ||
                (rc == 0 && idle != cases[i].idle) ||
                (cases[i].err && !strstr(e.msg, cases[i].err)))
                fail_msg("%s (step %zu): rc %d messages '%s' idle %d error '%s'",
                         cases[i].name, step, rc, got, idle, e.msg);
            gw_buf_free(&c.all);
        }
    }
}

static void test_framer_callback_stops(void **state)
{
    static const uint8_t in[] = {0, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 1, 'b', 0, 0, 0, 0, 1, 'c'};
    collected c = {.stop_after = 2};
    gw_buf_init(&c.all, 0);
    bool idle;
    assert_int_equal(feed(in, sizeof in, 0, 100, &c, NULL, &idle), 7);
    assert_string_equal((char *)c.all.data, "a|b|");
    gw_buf_free(&c.all);
}

static void test_frame_prefix(void **state)
{
    gw_buf b;
    gw_buf_init(&b, 0);
    assert_int_equal(dm_frame_prefix(&b, 0x01020304), 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, ((const uint8_t[]){0, 1, 2, 3, 4}), 5);
    gw_buf_free(&b);
}

/* ---- error details ------------------------------------------------------- */

static void test_status_details(void **state)
{
    dm_violation v[] = {{"name", "name is required"}, {"email", "email must contain '@'"}};
    gw_buf b;
    gw_buf_init(&b, 0);
    assert_int_equal(dm_status_details(&b, 3, "invalid user", v, 2), 0);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, b.len, b.data);
    assert_non_null(st);
    assert_int_equal(st->code, 3);
    assert_string_equal(st->message, "invalid user");
    assert_int_equal(st->n_details, 1);
    assert_string_equal(st->details[0]->type_url, "type.googleapis.com/google.rpc.BadRequest");
    Google__Rpc__BadRequest *bad = google__rpc__bad_request__unpack(
        NULL, st->details[0]->value.len, st->details[0]->value.data);
    assert_non_null(bad);
    assert_int_equal(bad->n_field_violations, 2);
    assert_string_equal(bad->field_violations[0]->field, "name");
    assert_string_equal(bad->field_violations[0]->description, "name is required");
    assert_string_equal(bad->field_violations[1]->field, "email");
    assert_string_equal(bad->field_violations[1]->description, "email must contain '@'");
    google__rpc__bad_request__free_unpacked(bad, NULL);
    google__rpc__status__free_unpacked(st, NULL);

    /* Without violations: code and message only. Exact bytes. */
    assert_int_equal(dm_status_details(&b, 5, "gone", NULL, 0), 0);
    static const uint8_t want[] = {0x08, 0x05, 0x12, 0x04, 'g', 'o', 'n', 'e'};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    gw_buf_free(&b);
}

/* ---- reflection ------------------------------------------------------------ */

static const char *const services[] = {"demo.v1.UserService", "demo.v1.EchoService"};

static Grpc__Reflection__V1__ServerReflectionResponse *ask(
    dm_reflect *r, Grpc__Reflection__V1__ServerReflectionRequest *req)
{
    size_t len = grpc__reflection__v1__server_reflection_request__get_packed_size(req);
    uint8_t *bytes = malloc(len + 1);
    assert_non_null(bytes);
    grpc__reflection__v1__server_reflection_request__pack(req, bytes);
    gw_buf out;
    gw_buf_init(&out, 0);
    assert_int_equal(dm_reflect_answer(r, services, 2, bytes, len, &out), 0);
    Grpc__Reflection__V1__ServerReflectionResponse *resp =
        grpc__reflection__v1__server_reflection_response__unpack(NULL, out.len, out.data);
    assert_non_null(resp);
    free(bytes);
    gw_buf_free(&out);
    return resp;
}

/* The names of the files in a FileDescriptorResponse, joined with ' '. */
static void file_names(const Grpc__Reflection__V1__ServerReflectionResponse *resp, gw_buf *b)
{
    assert_int_equal(resp->message_response_case,
                     GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    gw_buf_reset(b);
    const Grpc__Reflection__V1__FileDescriptorResponse *f = resp->file_descriptor_response;
    for (size_t i = 0; i < f->n_file_descriptor_proto; i++) {
        Google__Protobuf__FileDescriptorProto *fd = google__protobuf__file_descriptor_proto__unpack(
            NULL, f->file_descriptor_proto[i].len, f->file_descriptor_proto[i].data);
        assert_non_null(fd);
        gw_buf_printf(b, "%s%s", i ? " " : "", fd->name);
        google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
    }
}

static void test_reflection(void **state)
{
    dm_reflect *r = NULL;
    gw_error e;
    assert_int_equal(dm_reflect_new(gw_demo_reflect_data, gw_demo_reflect_len, &r, &e), 0);
    gw_buf names;
    gw_buf_init(&names, 0);

    static const struct {
        int kind;   /* the request oneof case */
        const char *arg;
        int ext_number;
        const char *files;   /* expected file list, or NULL for NOT_FOUND */
    } cases[] = {
        {4, "demo.v1.UserService",  0,
         "demo/v1/user.proto google/api/annotations.proto google/api/http.proto "
         "google/protobuf/descriptor.proto google/api/httpbody.proto google/protobuf/any.proto "
         "google/protobuf/duration.proto google/protobuf/empty.proto "
         "google/protobuf/field_mask.proto google/protobuf/struct.proto "
         "google/protobuf/timestamp.proto google/protobuf/wrappers.proto"},
        {4, "demo.v1.UserService.GetUser", 0, NULL},   /* checked by prefix below */
        {4, ".demo.v1.User", 0, NULL},
        {4, "demo.v1.User.Address", 0, NULL},
        {4, "grpc.health.v1.Health", 0, "grpc/health/v1/health.proto"},
        {4, "google.rpc.BadRequest.FieldViolation", 0,
         "google/rpc/error_details.proto google/protobuf/duration.proto"},
        {4, "demo.v1.Nope", 0, NULL},
        {3, "google/protobuf/empty.proto", 0, "google/protobuf/empty.proto"},
        {3, "nope.proto", 0, NULL},
        {5, "google.protobuf.MethodOptions", 72295728, NULL},
        {5, "google.protobuf.MethodOptions", 1, NULL},
    };
    static const char *const found_first[] = {
        [1] = "demo/v1/user.proto", [2] = "demo/v1/user.proto",
        [9] = "google/api/annotations.proto",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        Grpc__Reflection__V1__ServerReflectionRequest req =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
        Grpc__Reflection__V1__ExtensionRequest ext = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
        req.host = (char *)"localhost";
        req.message_request_case = cases[i].kind;
        if (cases[i].kind == 5) {
            ext.containing_type = (char *)cases[i].arg;
            ext.extension_number = cases[i].ext_number;
            req.file_containing_extension = &ext;
        } else {
            req.file_containing_symbol = (char *)cases[i].arg;   /* shares the union */
        }
        Grpc__Reflection__V1__ServerReflectionResponse *resp = ask(r, &req);
        assert_non_null(resp->original_request);
        assert_int_equal(resp->original_request->message_request_case, cases[i].kind);
        const char *first = i < GW_ARRAY_LEN(found_first) ? found_first[i] : NULL;
        if (cases[i].files) {
            file_names(resp, &names);
            if (strcmp((char *)names.data, cases[i].files) != 0)
                fail_msg("case %zu %s: files '%s'", i, cases[i].arg, (char *)names.data);
        } else if (first) {
            file_names(resp, &names);
            if (strncmp((char *)names.data, first, strlen(first)) != 0)
                fail_msg("case %zu %s: files '%s'", i, cases[i].arg, (char *)names.data);
        } else {
            if (resp->message_response_case !=
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE)
                fail_msg("case %zu %s: want an error response", i, cases[i].arg);
            assert_int_equal(resp->error_response->error_code, GW_CODE_NOT_FOUND);
        }
        grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
    }

    /* list_services */
    Grpc__Reflection__V1__ServerReflectionRequest req =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    req.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
    req.list_services = (char *)"";
    Grpc__Reflection__V1__ServerReflectionResponse *resp = ask(r, &req);
    assert_int_equal(resp->message_response_case,
                     GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
    assert_int_equal(resp->list_services_response->n_service, 2);
    assert_string_equal(resp->list_services_response->service[0]->name, "demo.v1.UserService");
    assert_string_equal(resp->list_services_response->service[1]->name, "demo.v1.EchoService");
    grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);

    /* all_extension_numbers_of_type */
    req.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
    req.all_extension_numbers_of_type = (char *)"google.protobuf.MethodOptions";
    resp = ask(r, &req);
    assert_int_equal(resp->message_response_case,
                     GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE);
    assert_int_equal(resp->all_extension_numbers_response->n_extension_number, 1);
    assert_int_equal(resp->all_extension_numbers_response->extension_number[0], 72295728);
    grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);

    /* A request that does not decode is an error, not a crash. */
    gw_buf out;
    gw_buf_init(&out, 0);
    static const uint8_t junk[] = {0x1a, 0x7f, 'x'};
    assert_int_equal(dm_reflect_answer(r, services, 2, junk, sizeof junk, &out), GW_EPARSE);
    gw_buf_free(&out);
    gw_buf_free(&names);
    dm_reflect_del(r);
}

static void test_reflection_bad_sets(void **state)
{
    const struct {
        const uint8_t *in;
        size_t n;
    } cases[] = {
        {(const uint8_t[]){0x0a, 0x05, 0x01}, 3},        /* length past the end */
        {(const uint8_t[]){0x08, 0x01}, 2},              /* varint where a file belongs */
        {(const uint8_t[]){0x0a, 0x02, 0xff, 0xff}, 4},  /* a file that does not decode */
        {(const uint8_t[]){0x0a, 0x00}, 2},              /* a file without a name */
        {(const uint8_t[]){0x0a}, 1},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        dm_reflect *r = NULL;
        gw_error e;
        gw_error_clear(&e);
        assert_int_equal(dm_reflect_new(cases[i].in, cases[i].n, &r, &e), GW_EPARSE);
        assert_null(r);
        assert_non_null(strstr(e.msg, "descriptor set"));
    }
}

static void test_descriptor_set_export(void **state)
{
    size_t len = 0;
    const uint8_t *set = gw_demo_descriptor_set(&len);
    assert_true(len > 1000);
    Google__Protobuf__FileDescriptorSet *fds =
        google__protobuf__file_descriptor_set__unpack(NULL, len, set);
    assert_non_null(fds);
    bool demo = false, status = false;
    for (size_t i = 0; i < fds->n_file; i++) {
        demo |= strcmp(fds->file[i]->name, "demo/v1/user.proto") == 0;
        status |= strcmp(fds->file[i]->name, "google/rpc/status.proto") == 0;
    }
    assert_true(demo && status);
    google__protobuf__file_descriptor_set__free_unpacked(fds, NULL);
}

/* ---- the C API: run on a thread, stop from another ------------------------------ */

static void *run_loop(void *arg)
{
    gw_loop_run(arg);
    return NULL;
}

static void test_service_thread(void **state)
{
    gw_loop *loop = gw_loop_new();
    assert_non_null(loop);
    gw_demo_service *s = NULL;
    gw_error e;
    gw_error_clear(&e);
    assert_int_equal(gw_demo_service_new(loop, "127.0.0.1", 0, &s, &e), 0);
    int port = gw_demo_service_port(s);
    assert_true(port > 0 && port < 65536);

    /* A second service cannot take the same port. */
    gw_loop *loop2 = gw_loop_new();
    gw_demo_service *s2 = NULL;
    assert_int_equal(gw_demo_service_new(loop2, "127.0.0.1", port, &s2, &e), GW_EIO);
    assert_null(s2);
    assert_non_null(strstr(e.msg, "cannot listen on 127.0.0.1:"));
    gw_loop_del(loop2);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_loop, loop), 0);

    /* It speaks HTTP/2: after the preface its first frame is SETTINGS. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    static const uint8_t settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    assert_int_equal(write(fd, preface, sizeof preface - 1), (ssize_t)sizeof preface - 1);
    assert_int_equal(write(fd, settings, sizeof settings), (ssize_t)sizeof settings);
    uint8_t hdr[9];
    size_t got = 0;
    while (got < sizeof hdr) {
        ssize_t n = read(fd, hdr + got, sizeof hdr - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_int_equal(hdr[3], 4);   /* SETTINGS */

    /* A ListUsers call that sleeps between messages, cancelled by the
     * client: counted (the counter may be read from this thread). */
    uint8_t req[256];
    size_t rl = 9;
    static const char *const nv[][2] = {
        {":method", "POST"}, {":scheme", "http"}, {":path", "/demo.v1.UserService/ListUsers"},
        {":authority", "t"}, {"content-type", "application/grpc"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(nv); i++) {
        req[rl++] = 0;   /* literal without indexing, new name */
        for (int k = 0; k < 2; k++) {
            size_t l = strlen(nv[i][k]);
            req[rl++] = (uint8_t)l;
            memcpy(req + rl, nv[i][k], l);
            rl += l;
        }
    }
    uint8_t h[9] = {0, 0, (uint8_t)(rl - 9), 1, 4, 0, 0, 0, 1};   /* HEADERS, END_HEADERS */
    memcpy(req, h, 9);
    static const uint8_t data[] = {
        0, 0, 11, 0, 1, 0, 0, 0, 1,                        /* DATA, END_STREAM */
        0, 0, 0, 0, 6, 0x08, 0x05, 0x12, 0x02, 0x08, 0x3c,  /* page_size 5, delay 60s */
    };
    static const uint8_t rst[] = {0, 0, 4, 3, 0, 0, 0, 0, 1, 0, 0, 0, 8};   /* CANCEL */
    assert_int_equal(write(fd, req, rl), (ssize_t)rl);
    assert_int_equal(write(fd, data, sizeof data), (ssize_t)sizeof data);
    /* Frames are handled in order: the call runs when the reset arrives. */
    assert_int_equal(write(fd, rst, sizeof rst), (ssize_t)sizeof rst);
    for (int i = 0; i < 1000 && gw_demo_service_cancelled(s) == 0; i++)
        usleep(10000);
    assert_int_equal(gw_demo_service_cancelled(s), 1);

    gw_demo_service_stop(s);       /* from this thread, not the loop's */
    assert_int_equal(pthread_join(th, NULL), 0);
    /* The stop said GOAWAY, then closed the connection. */
    uint8_t rest[4096];
    size_t have = 0;
    ssize_t n;
    while (have < sizeof rest && (n = read(fd, rest + have, sizeof rest - have)) > 0)
        have += (size_t)n;
    bool goaway = false;
    /* rest starts with the payload of the SETTINGS frame read above. */
    for (size_t at = (size_t)hdr[0] << 16 | (size_t)hdr[1] << 8 | hdr[2]; at + 9 <= have;) {
        size_t flen = (size_t)rest[at] << 16 | (size_t)rest[at + 1] << 8 | rest[at + 2];
        goaway |= rest[at + 3] == 7;
        at += 9 + flen;
    }
    assert_true(goaway);
    assert_int_equal(read(fd, rest, sizeof rest), 0);
    close(fd);
    gw_demo_service_del(s);
    gw_loop_del(loop);
}

static void test_service_bad_address(void **state)
{
    gw_loop *loop = gw_loop_new();
    gw_demo_service *s = NULL;
    gw_error e;
    gw_error_clear(&e);
    /* A numeric address that is not ours (TEST-NET-1): no DNS involved. */
    assert_int_equal(gw_demo_service_new(loop, "192.0.2.1", 0, &s, &e), GW_EIO);
    assert_null(s);
    assert_non_null(strstr(e.msg, "cannot listen on 192.0.2.1:0"));
    gw_loop_del(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_parse),
        cmocka_unit_test(test_duration_ns),
        cmocka_unit_test(test_trailer_name),
        cmocka_unit_test(test_framer),
        cmocka_unit_test(test_framer_callback_stops),
        cmocka_unit_test(test_frame_prefix),
        cmocka_unit_test(test_status_details),
        cmocka_unit_test(test_reflection),
        cmocka_unit_test(test_reflection_bad_sets),
        cmocka_unit_test(test_descriptor_set_export),
        cmocka_unit_test(test_service_thread),
        cmocka_unit_test(test_service_bad_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
