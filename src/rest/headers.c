/*
 * HTTP headers ⇄ gRPC metadata, and grpc-timeout.
 */
#include <stdio.h>
#include <string.h>

#include "rest/rest.h"

#define KEY_MAX 256

/* Lowercases name[0..n) into out; false when it is not a metadata key we
 * may forward (gw_metadata_key_ok, or too long). */
static bool make_key(const char *name, size_t n, char out[KEY_MAX])
{
    if (n >= KEY_MAX || !gw_metadata_key_ok(name, n))
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = name[i] >= 'A' && name[i] <= 'Z' ? (char)(name[i] + 32) : name[i];
    out[n] = '\0';
    return true;
}

/* Forwards one entry, or leaves it out with a debug line: a reserved key
 * (grpc-*, te, content-type, user-agent, ...: docs/rest.md), an invalid key
 * or value never fails the call. */
static int emit(gw_rest_metadata_fn fn, void *ctx, const char *name, size_t n, const char *v)
{
    char key[KEY_MAX];
    const char *why = NULL;
    if (gw_metadata_key_reserved(name, n))
        why = "reserved key";
    else if (!make_key(name, n, key))
        why = "not a valid metadata key";
    else if (!gw_metadata_value_ok(v, strlen(v)))
        why = "value not printable ASCII";
    if (why) {
        GW_DEBUG("rest: metadata '%.*s' dropped: %s", (int)GW_MIN(n, (size_t)64), name, why);
        return 0;
    }
    return fn(ctx, key, v);
}

int gw_rest_parse_timeout(const char *s, int64_t *ns)
{
    uint64_t v;
    int rc = gw_grpc_timeout_parse(s, strlen(s), &v);
    if (rc == 0)
        *ns = (int64_t)v; /* saturated at INT64_MAX */
    return rc;
}

int gw_rest_request_metadata(const gw_rest_options *o, const gw_rest_header *h, size_t n,
                             const char *peer, gw_rest_metadata_fn fn, void *ctx,
                             int64_t *timeout_ns, gw_rest_status *st)
{
    static const char prefix[] = "grpc-metadata-";
    const size_t plen = sizeof(prefix) - 1;
    const char *xff = NULL, *xfh = NULL, *host = NULL;
    *timeout_ns = -1;
    gw_rest_status_clear(st);
    for (size_t i = 0; i < n; i++) {
        const char *name = h[i].name, *v = h[i].value ? h[i].value : "";
        size_t nl = strlen(name);
        int rc = 0;
        if (gw_strn_case_eq(name, nl, "authorization")) {
            rc = emit(fn, ctx, "authorization", 13, v);
        } else if (nl > plen && gw_strn_case_eq(name, plen, prefix)) {
            rc = emit(fn, ctx, name + plen, nl - plen, v);
        } else if (gw_strn_case_eq(name, nl, "grpc-timeout")) {
            if (gw_rest_parse_timeout(v, timeout_ns)) {
                st->code = GW_CODE_INVALID_ARGUMENT;
                st->http_status = 400;
                snprintf(st->message, sizeof(st->message),
                         "Grpc-Timeout '%.40s': expected 1 to 8 digits and a unit "
                         "(H, M, S, m, u or n)", v);
                return GW_EINVAL;
            }
        } else if (gw_strn_case_eq(name, nl, "x-forwarded-for")) {
            xff = v;
        } else if (gw_strn_case_eq(name, nl, "x-forwarded-host")) {
            xfh = v;
        } else if (gw_strn_case_eq(name, nl, "host")) {
            host = v;
        } else {
            for (size_t k = 0; k < o->header_allowlist_count; k++)
                if (gw_strn_case_eq(name, nl, o->header_allowlist[k]) &&
                    strlen(o->header_allowlist[k]) == nl) {
                    rc = emit(fn, ctx, name, nl, v);
                    break;
                }
        }
        if (rc)
            return rc;
    }
    int rc = 0;
    if (peer && *peer) {
        if (xff && *xff) {
            char buf[1024];
            int w = snprintf(buf, sizeof(buf), "%s, %s", xff, peer);
            if (w > 0 && (size_t)w < sizeof(buf))
                rc = emit(fn, ctx, "x-forwarded-for", 15, buf);
        } else {
            rc = emit(fn, ctx, "x-forwarded-for", 15, peer);
        }
    } else if (xff && *xff) {
        rc = emit(fn, ctx, "x-forwarded-for", 15, xff);
    }
    if (rc == 0 && ((xfh && *xfh) || (host && *host)))
        rc = emit(fn, ctx, "x-forwarded-host", 16, xfh && *xfh ? xfh : host);
    return rc;
}

int gw_rest_metadata_header_name(const char *key, bool trailer, char *out, size_t cap)
{
    int w = snprintf(out, cap, "%s%s", trailer ? "Grpc-Trailer-" : "Grpc-Metadata-", key);
    return w < 0 || (size_t)w >= cap ? GW_ELIMIT : 0;
}
