/*
 * Fuzz target for REST request headers → gRPC metadata
 * (gw_rest_request_metadata), the grpc-timeout parser and the response
 * metadata → header name mapping. The input is the peer address on the first
 * line, then "name: value" lines (at most 64). Every key handed out must be
 * a valid metadata key and every value printable ASCII, as rest.h promises.
 * Corpus: tests/fuzz/rest-headers.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rest/rest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_entry(void *ctx, const char *key, const char *value)
{
    (void)ctx;
    if (!*key || strncmp(key, "grpc-", 5) == 0)
        __builtin_trap();
    for (const char *k = key; *k; k++)
        if (!((*k >= '0' && *k <= '9') || (*k >= 'a' && *k <= 'z') || *k == '_' || *k == '.' ||
              *k == '-'))
            __builtin_trap();
    for (const char *v = value; *v; v++)
        if (*v < 0x20 || *v > 0x7e)
            __builtin_trap();
    char name[128];
    (void)gw_rest_metadata_header_name(key, (strlen(key) & 1) != 0, name, sizeof name);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;

    gw_rest_header h[64];
    size_t n = 0;
    char *peer = text;
    char *line = strchr(text, '\n');
    if (line)
        *line++ = 0;
    while (line && n < 64) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = 0;
            char *v = colon + 1;
            while (*v == ' ')
                v++;
            h[n].name = line;
            h[n].value = v;
            n++;
        }
        line = next;
    }

    static const char *const allow[] = {"x-request-id", "x-user", "cookie"};
    gw_rest_options o;
    gw_rest_options_init(&o);
    o.header_allowlist = allow;
    o.header_allowlist_count = 3;
    int64_t timeout = 0;
    gw_rest_status st;
    memset(&st, 0, sizeof st);
    int rc = gw_rest_request_metadata(&o, h, n, *peer ? peer : NULL, check_entry, NULL, &timeout,
                                      &st);
    if (rc == GW_EINVAL && (!st.message[0] || st.http_status != 400))
        __builtin_trap();
    if (rc == 0 && timeout < -1)
        __builtin_trap();
    int64_t ns;
    (void)gw_rest_parse_timeout(peer, &ns);
    free(text);
    return 0;
}
