#include "base/base.h"

#include <stdio.h>
#include <string.h>

const char *gw_err_str(int err)
{
    switch (err) {
    case GW_OK: return "success";
    case GW_ENOMEM: return "out of memory";
    case GW_EINVAL: return "invalid argument";
    case GW_ELIMIT: return "limit exceeded";
    case GW_EPARSE: return "malformed input";
    case GW_EAGAIN: return "incomplete";
    case GW_EIO: return "i/o error";
    case GW_ENOTFOUND: return "not found";
    case GW_ERANGE: return "out of range";
    case GW_ECLOSED: return "closed";
    case GW_ESTATE: return "wrong state";
    case GW_EDEPTH: return "nested too deeply";
    default: return "unknown error";
    }
}

int gw_error_setv(gw_error *e, int code, const char *fmt, va_list ap)
{
    if (e) {
        e->code = code;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    }
    return code;
}

int gw_error_set(gw_error *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gw_error_setv(e, code, fmt, ap);
    va_end(ap);
    return code;
}

void gw_error_prefix(gw_error *e, const char *fmt, ...)
{
    if (!e)
        return;
    char prefix[GW_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[GW_ERROR_MSG_MAX];
    memcpy(old, e->msg, sizeof old);
    snprintf(e->msg, sizeof e->msg, "%s: %s", prefix, old);
}

void gw_error_clear(gw_error *e)
{
    if (e) {
        e->code = 0;
        e->msg[0] = 0;
    }
}

static const char *const code_names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
};

static const char *const code_snake_names[] = {
    "ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded",
    "not_found", "already_exists", "permission_denied", "resource_exhausted",
    "failed_precondition", "aborted", "out_of_range", "unimplemented",
    "internal", "unavailable", "data_loss", "unauthenticated",
};

static const int code_http[] = {
    200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401,
};

const char *gw_code_name(int code)
{
    return code >= 0 && code <= GW_CODE_MAX ? code_names[code] : "UNKNOWN";
}

const char *gw_code_snake_name(int code)
{
    return code >= 0 && code <= GW_CODE_MAX ? code_snake_names[code] : "unknown";
}

int gw_code_parse(const char *s)
{
    if (!s || !*s)
        return -1;
    if (s[0] >= '0' && s[0] <= '9') {
        int v = 0;
        for (const char *p = s; *p; p++) {
            if (*p < '0' || *p > '9' || v > 1000)
                return -1;
            v = v * 10 + (*p - '0');
        }
        return v <= GW_CODE_MAX ? v : -1;
    }
    for (int i = 0; i <= GW_CODE_MAX; i++)
        if (strcmp(s, code_names[i]) == 0)
            return i;
    return -1;
}

int gw_code_to_http(int code)
{
    return code >= 0 && code <= GW_CODE_MAX ? code_http[code] : 500;
}

int gw_code_from_http(int http_status)
{
    switch (http_status) {
    case 400: return GW_CODE_INTERNAL;
    case 401: return GW_CODE_UNAUTHENTICATED;
    case 403: return GW_CODE_PERMISSION_DENIED;
    case 404: return GW_CODE_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504: return GW_CODE_UNAVAILABLE;
    default: return GW_CODE_UNKNOWN;
    }
}
