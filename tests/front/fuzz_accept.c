/*
 * Fuzz target for what a client's headers feed the compression decision:
 * gw_front_accept_gzip_q (Accept-Encoding with q-values) and
 * gw_front_type_listed (a Content-Type against a list). Beyond "no crash":
 * q stays in 0..1000, and the first NUL-separated part of the input used as
 * a type list never matches a Content-Type with no slash.
 */
#include <stdlib.h>
#include <string.h>

#include "front/front.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    int q = gw_front_accept_gzip_q(s);
    if (q < 0 || q > 1000)
        abort();
    /* "types\0content-type": the list as given, checked against the rest. */
    const char *ct = s + strlen(s) + (strlen(s) < size ? 1 : 0);
    bool listed = gw_front_type_listed(s, ct);
    if (listed && !strchr(ct, '/'))
        abort();
    (void)gw_front_type_listed("application/json,text/*,*/*", s);
    free(s);
    return 0;
}
