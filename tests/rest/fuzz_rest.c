/*
 * Fuzz target for src/rest's parsers, over the REST test API
 * ($GW_BUILD_ROOT/tests/rest/rest.pb).
 *
 * The first byte picks what the rest of the input is:
 *   0  "METHOD TARGET\nCONTENT-TYPE\nBODY": routed, bound into a request
 *      message, which is then shaped back as a response of the route;
 *   1  a client-streaming body, split in 7-byte chunks, each message
 *      transcoded for POST /v1/collect;
 *   2  grpc-status-details-bin bytes, printed as an error body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rest/rest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gw_registry *reg;
static gw_router *router;

static bool load(void)
{
    if (router)
        return true;
    const char *root = getenv("GW_BUILD_ROOT");
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/rest/rest.pb", root ? root : ".");
    const char *paths[] = {path};
    gw_error e;
    if (gw_registry_load(&reg, paths, 1, &e)) {
        fprintf(stderr, "fuzz_rest: %s\n", e.msg);
        abort();
    }
    router = gw_router_new(NULL);
    if (!router || gw_router_add_registry(router, reg, &e))
        abort();
    return true;
}

static void request(const gw_rest_options *o, const char *s, size_t n)
{
    const char *nl1 = memchr(s, '\n', n);
    if (!nl1)
        return;
    const char *nl2 = memchr(nl1 + 1, '\n', (size_t)(s + n - nl1 - 1));
    if (!nl2)
        return;
    char line[1024], ct[256];
    size_t ll = (size_t)(nl1 - s), cl = (size_t)(nl2 - nl1 - 1);
    if (ll >= sizeof(line) || cl >= sizeof(ct))
        return;
    memcpy(line, s, ll);
    line[ll] = 0;
    memcpy(ct, nl1 + 1, cl);
    ct[cl] = 0;
    char *sp = strchr(line, ' ');
    if (!sp)
        return;
    *sp = 0;
    const char *target = sp + 1;
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);

    gw_arena a;
    gw_arena_init(&a, 0, 1 << 20);
    gw_route_match m;
    gw_error e;
    gw_rest_status st;
    gw_buf out, resp;
    gw_buf_init(&out, 1 << 20);
    gw_buf_init(&resp, 1 << 22);
    if (gw_router_match(router, line, target, plen, &a, &m, &e) != 0)
        goto out;
    if (m.result != GW_ROUTE_MATCHED) {
        gw_rest_route_status(&m, line, target, plen, &st);
        gw_rest_status_response(o, &st, &resp);
        goto out;
    }
    if (gw_rest_check_content_type(o, m.route, cl ? ct : NULL, &st))
        goto out;
    gw_rest_request rq = {
        .registry = reg, .match = &m, .query = q ? q + 1 : NULL,
        .query_len = q ? strlen(q + 1) : 0, .content_type = cl ? ct : NULL,
        .body = (const uint8_t *)nl2 + 1, .body_len = (size_t)(s + n - nl2 - 1),
    };
    gw_rest_print print;
    if (gw_rest_build_request(o, &rq, &out, &print, &st) == 0) {
        char rct[128];
        gw_rest_unary_response(o, reg, m.route, &print, out.data, out.len, &resp, rct,
                               sizeof(rct), &st);
        gw_buf_reset(&resp);
        gw_rest_stream_message(o, reg, m.route, GW_REST_STREAM_SSE, out.data, out.len, &resp,
                               &st);
    }
out:
    gw_buf_free(&out);
    gw_buf_free(&resp);
    gw_arena_free(&a);
}

static void stream(const gw_rest_options *o, const uint8_t *d, size_t n)
{
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    gw_route_match m;
    gw_error e;
    if (gw_router_match(router, "POST", "/v1/collect", 11, &a, &m, &e) || !m.route)
        abort();
    gw_json_splitter s;
    gw_json_splitter_init(&s, 4096);
    gw_buf out;
    gw_buf_init(&out, 1 << 20);
    gw_rest_status st;
    size_t pos = 0;
    int rc = 0;
    while (pos < n && rc == 0) {
        size_t end = GW_MIN(n, pos + 7);
        while (pos < end) {
            size_t used;
            const char *msg;
            size_t mlen;
            rc = gw_json_splitter_next(&s, d + pos, end - pos, &used, &msg, &mlen, &e);
            pos += used;
            if (rc == GW_EAGAIN) {
                rc = 0;
                break;
            }
            if (rc)
                break;
            gw_buf_reset(&out);
            gw_rest_build_stream_message(o, reg, m.route, msg, mlen, &out, &st);
        }
    }
    const char *msg;
    size_t mlen;
    if (rc == 0 && gw_json_splitter_finish(&s, &msg, &mlen, &e) == 0)
        gw_rest_build_stream_message(o, reg, m.route, msg, mlen, &out, &st);
    gw_buf_free(&out);
    gw_json_splitter_free(&s);
    gw_arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16 || !load())
        return 0;
    gw_rest_options o;
    gw_rest_options_init(&o);
    o.strict_query = data[0] & 0x10;
    o.proto_names = data[0] & 0x20;
    o.grpc_gateway_v1_errors = data[0] & 0x40;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0:
        request(&o, (const char *)d, n);
        break;
    case 1:
        stream(&o, d, n);
        break;
    default: {
        gw_buf out;
        gw_buf_init(&out, 1 << 22);
        int http;
        gw_rest_error_response(&o, reg, 3, "m", d, n, &out, &http);
        gw_buf_reset(&out);
        gw_rest_stream_error(&o, reg, GW_REST_STREAM_NDJSON, 3, "m", d, n, &out);
        gw_buf_free(&out);
        break;
    }
    }
    return 0;
}
