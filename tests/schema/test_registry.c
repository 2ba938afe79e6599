/*
 * Registry unit tests over the demo descriptor set (argv[1]) and the test
 * set built from schemas/test/registry_*.proto (argv[2]).
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

static const char *demo_path;

static void test_demo_loads(void **state)
{
    (void)state;
    gw_registry *r = NULL;
    gw_error e;
    gw_error_clear(&e);
    const char *paths[] = {demo_path};
    assert_int_equal(gw_registry_load(&r, paths, 1, &e), 0);
    const gw_method_def *m = gw_registry_method_by_path(r, "/demo.v1.UserService/GetUser",
                                                        strlen("/demo.v1.UserService/GetUser"));
    assert_non_null(m);
    assert_string_equal(m->input->full_name, "demo.v1.GetUserRequest");
    assert_int_equal(m->http_rule_count, 1);
    assert_string_equal(m->http_rules[0].verb, "GET");
    assert_string_equal(m->http_rules[0].path, "/v1/users/{id}");
    const gw_message_def *u = gw_registry_message(r, "demo.v1.User");
    assert_non_null(u);
    const gw_field_def *f = gw_message_field_by_name(u, "createdAt", 9);
    assert_non_null(f);
    assert_int_equal(f->number, 15);
    assert_int_equal(f->message->wkt, GW_WKT_TIMESTAMP);
    gw_registry_del(r);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DEMO_PB\n", argv[0]);
        return 2;
    }
    demo_path = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
