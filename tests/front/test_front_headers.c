/* Unit test for gw_front_header_forwardable: which backend headers may go
 * out through libmicrohttpd 0.9.75. A header it would refuse used to lose
 * the whole answer, so the table covers every refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "front/front.h"

static void test_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *value;
        bool ok;
    } table[] = {
        {"x-demo-a", "1", true},
        {"Grpc-Metadata-x-demo-a", "v w", true},
        {"x-demo-a", "", false},             /* MHD refuses an empty value */
        {"", "v", false},                    /* and an empty name */
        {"x demo", "v", false},              /* space or tab in a name */
        {"x\tdemo", "v", false},
        {"x-demo", "a\r\nInjected: 1", false},
        {"content-length", "5", false},      /* MHD computes it */
        {"Content-Length", "5", false},
        {"transfer-encoding", "gzip", false},
        {"transfer-encoding", "chunked", false}, /* the front's business */
        {"connection", "upgrade", false},
        {"Keep-Alive", "timeout=5", false},
        {"upgrade", "h2c", false},
        {"proxy-connection", "keep-alive", false},
        {"te", "trailers", false},
        {"trailer", "grpc-status", false},
        {"content-lengthy", "5", true},      /* whole names only */
        {"x-connection", "close", true},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        bool got = gw_front_header_forwardable(table[i].name, strlen(table[i].name),
                                               table[i].value, strlen(table[i].value));
        if (got != table[i].ok)
            fail_msg("'%s: %s': got %d, want %d", table[i].name, table[i].value, got,
                     table[i].ok);
    }
    /* An embedded NUL would cut the header short in MHD's C strings. */
    assert_false(gw_front_header_forwardable("x-a", 3, "a\0b", 3));
    assert_false(gw_front_header_forwardable("x\0a", 3, "ab", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
