/*
 * Fuzz target for the request-side parsers of static serving: the target
 * cleaner, the HTTP date parser, the conditional-GET check, Range and
 * If-Range, and the hashed-name rule. Beyond "no
 * crash", every accepted target must come out as a path that cannot leave
 * the directory: absolute, no empty, "." or ".." segment, no control byte,
 * within the limits. Every range served must lie inside the file and be
 * non-empty.
 */
#include <stdlib.h>
#include <string.h>

#include "server/static.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_clean(const char *path)
{
    size_t len = strlen(path);
    if (path[0] != '/' || len > GW_STATIC_PATH_MAX)
        abort();
    const char *seg = path + 1;
    for (;;) {
        const char *slash = strchr(seg, '/');
        size_t sl = slash ? (size_t)(slash - seg) : strlen(seg);
        if (sl == 0 || (sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
            abort();
        for (size_t i = 0; i < sl; i++)
            if ((unsigned char)seg[i] < 0x20 || seg[i] == 0x7f || seg[i] == '\\')
                abort();
        if (!slash)
            break;
        seg = slash + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[GW_STATIC_PATH_MAX + 1];
    gw_error e;
    if (gw_static_clean_path((const char *)data, size, out, sizeof out, &e) == 0)
        check_clean(out);
    /* The header parsers take NUL-terminated values, as the front gives them. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    int64_t t;
    if (gw_static_parse_http_date(text, &t) == 0) {
        char again[30];
        gw_static_format_http_date(t, again);
        int64_t t2;
        if (gw_static_parse_http_date(again, &t2) != 0 || t2 != t)
            abort();
    }
    (void)gw_static_not_modified(text, text, "\"1a-2b-3c\"", 784111777);
    (void)gw_static_not_modified(NULL, text, "\"1a-2b-3c\"", 784111777);
    (void)gw_static_content_type(text);
    (void)gw_static_is_hashed_name(text);
    (void)gw_static_if_range(text, "\"1a-2b-3c\"", 784111777, 784111778);
    static const uint64_t sizes[] = {0, 1, 100, UINT64_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t first = 0, len = 0;
        if (gw_static_parse_range(text, sizes[i], &first, &len) == GW_STATIC_RANGE_PART &&
            (len == 0 || first >= sizes[i] || len > sizes[i] - first))
            abort();
    }
    free(text);
    return 0;
}
