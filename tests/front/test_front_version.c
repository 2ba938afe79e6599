/* The libmicrohttpd this binary loads at run time is the one it was built
 * against, and at least 1.0.1 (DESIGN.md decision 9). Debian 12's 0.9.75 is
 * also libmicrohttpd.so.12, so a missing rpath would silently load it: this
 * test then fails. Every test binary linking the front gets the same rpath
 * from meson; docs/front.md, "libmicrohttpd version". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "front/front.h"

/* "1.0.1" as 10001, "0.9.75" as 975 (each part below 100). */
static unsigned version_number(const char *v)
{
    unsigned a = 0, b = 0, c = 0;
    if (sscanf(v, "%u.%u.%u", &a, &b, &c) != 3)
        return 0;
    return a * 10000 + b * 100 + c;
}

static void test_loaded_is_built(void **state)
{
    (void)state;
    char built[16];
    gw_front_mhd_version_built(built, sizeof built);
    print_message("libmicrohttpd built %s, loaded %s\n", built, gw_front_mhd_version());
    assert_string_equal(gw_front_mhd_version(), built);
}

static void test_at_least_1_0_1(void **state)
{
    (void)state;
#ifdef GW_LEGACY_MHD
    skip(); /* bench/floor's comparison build against 0.9.75 */
#endif
    assert_true(version_number(gw_front_mhd_version()) >= 10001);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loaded_is_built),
        cmocka_unit_test(test_at_least_1_0_1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
