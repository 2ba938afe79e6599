/*
 * Failure injection for src/codec (tests/common/oom.h): each scenario runs
 * once counting allocations, then once per allocation with that one
 * failing. Every run must end in success or GW_ENOMEM (reported by the
 * code, not a crash or another error), and GW_ENOMEM whenever the failing
 * allocation was reached; the sanitizer build checks that the error paths
 * free what they took.
 *
 *   test_codec_oom CODEC_TEST_PB
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "oom.h"

#include "codec/codec.h"

static gw_registry *reg;
static const gw_message_def *all_types;

/* Every kind of field: scalars, repeated, maps, nested and well-known types. */
static const char json_in[] =
    "{\"fInt32\": -5, \"fInt64\": \"123456789012\", \"fUint64\": \"18446744073709551615\","
    " \"fFloat\": 1.5, \"fDouble\": \"NaN\", \"fBool\": true, \"fString\": \"h\\u00e9llo\","
    " \"fBytes\": \"AAECAw==\", \"oString\": \"x\", \"rInt32\": [1, 2, 3],"
    " \"rString\": [\"a\", \"b\"], \"rInner\": [{\"a\": 1, \"b\": \"z\", \"c\": [4, 5]}],"
    " \"mInt32\": {\"1\": 2}, \"mString\": {\"k\": \"v\", \"l\": \"w\"},"
    " \"mInner\": {\"i\": {\"a\": 7}}, \"mBool\": {\"true\": false},"
    " \"wInt64\": \"9\", \"wBool\": false}";

/* Returns 0 on success, GW_ENOMEM when an allocation failed and the code
 * said so; anything else is a bug. */
typedef int (*scenario_fn)(void);

static int sc_json_to_proto_to_json(void)
{
    gw_codec_options o;
    gw_codec_options_init(&o);
    gw_buf wire, json;
    gw_buf_init(&wire, 1 << 20);
    gw_buf_init(&json, 1 << 20);
    gw_error e;
    int rc = gw_codec_json_to_proto(reg, all_types, json_in, strlen(json_in), &o, &wire, &e);
    if (rc == 0) {
        o.emit_defaults = true;
        rc = gw_codec_proto_to_json(reg, all_types, wire.data, wire.len, &o, &json, &e);
    }
    gw_buf_free(&wire);
    gw_buf_free(&json);
    return rc;
}

static int path_count(void *ctx, const char *path, size_t len)
{
    (void)path;
    (void)len;
    (*(int *)ctx)++;
    return 0;
}

static int sc_field_paths(void)
{
    gw_codec_options o;
    gw_codec_options_init(&o);
    gw_error e;
    int n = 0;
    return gw_codec_json_field_paths(reg, all_types, json_in, strlen(json_in), &o, path_count,
                                     &n, &e);
}

static int sc_field_string(void)
{
    const gw_field_def *f = gw_message_field_by_proto_name(all_types, "f_int64", 7);
    gw_buf out, wrapped;
    gw_buf_init(&out, 1 << 20);
    gw_buf_init(&wrapped, 1 << 20);
    gw_error e;
    int rc = f ? gw_codec_encode_field_string(reg, f, "-42", 3, &out, &e) : GW_EINVAL;
    if (rc == 0)
        rc = gw_codec_wrap_message(3, out.data, out.len, &wrapped);
    gw_buf_free(&out);
    gw_buf_free(&wrapped);
    return rc;
}

static void run_scenario(const char *name, scenario_fn fn)
{
    const char *failure = gw_oom_check(name, fn, true);
    if (failure)
        fail_msg("%s", failure);
}

static void test_oom(void **state)
{
    (void)state;
    run_scenario("json->proto->json", sc_json_to_proto_to_json);
    run_scenario("json field paths", sc_field_paths);
    run_scenario("field string + wrap", sc_field_string);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_codec_oom CODEC_TEST_PB\n");
        return 2;
    }
    const char *path = argv[1];
    gw_error e;
    if (gw_registry_load(&reg, &path, 1, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    all_types = gw_registry_message(reg, "codec.test.AllTypes");
    if (!all_types) {
        fprintf(stderr, "codec.test.AllTypes not in %s\n", path);
        return 1;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_oom)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gw_registry_del(reg);
    return rc;
}
