/*
 * Response side: messages → JSON bodies and stream frames; statuses →
 * google.rpc.Status JSON.
 */
#include <stdio.h>
#include <string.h>

#include "rest/rest.h"

static void print_opts(const gw_rest_options *o, const gw_rest_print *print,
                       gw_codec_options *co)
{
    gw_codec_options_init(co);
    co->emit_defaults = o->emit_defaults;
    co->proto_names = o->proto_names;
    co->enums_as_ints = o->enums_as_ints;
    co->max_depth = o->max_depth;
    co->indent = print && print->pretty ? 2 : 0;
}

static int backend_error(gw_rest_status *st, int rc, const gw_error *e)
{
    st->code = GW_CODE_INTERNAL;
    st->http_status = 500;
    if (rc == GW_ENOMEM)
        snprintf(st->message, sizeof(st->message), "out of memory");
    else
        snprintf(st->message, sizeof(st->message), "response does not match the schema: %s",
                 e->code ? e->msg : gw_err_str(rc));
    return rc;
}

/* Concatenates every occurrence of length-delimited field `number` (merge
 * semantics for a sub-message). */
static int sub_message(const uint8_t *msg, size_t len, uint32_t number, gw_buf *out)
{
    if (!len)
        return 0;
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, msg, len);
    while (!gw_wire_eof(&rd)) {
        uint32_t f;
        gw_wire_type wt;
        int rc = gw_wire_read_tag(&rd, &f, &wt);
        if (rc)
            return rc;
        if (f == number && wt == GW_WIRE_LEN) {
            const uint8_t *p;
            size_t n;
            if ((rc = gw_wire_read_len(&rd, &p, &n)) || (rc = gw_buf_append(out, p, n)))
                return rc;
        } else if ((rc = gw_wire_skip(&rd, f, wt, GW_CODEC_DEFAULT_MAX_DEPTH))) {
            return rc;
        }
    }
    return 0;
}

/* A header value we can send as is: visible ASCII and spaces, no CR/LF. */
static bool header_safe(const uint8_t *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            return false;
    return true;
}

/* google.api.HttpBody: content_type = 1, data = 2. */
static int http_body(const uint8_t *msg, size_t len, gw_buf *out, char *ct, size_t ct_cap)
{
    const uint8_t *type = NULL;
    size_t type_len = 0;
    size_t start = out->len;
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, len ? msg : (const uint8_t *)"", len);
    while (!gw_wire_eof(&rd)) {
        uint32_t f;
        gw_wire_type wt;
        int rc = gw_wire_read_tag(&rd, &f, &wt);
        if (rc)
            return rc;
        if ((f == 1 || f == 2) && wt == GW_WIRE_LEN) {
            const uint8_t *p;
            size_t n;
            if ((rc = gw_wire_read_len(&rd, &p, &n)))
                return rc;
            if (f == 1) {
                type = p;
                type_len = n;
            } else {
                /* bytes: the last occurrence wins */
                out->len = start;
                if ((rc = gw_buf_append(out, p, n)))
                    return rc;
            }
        } else if ((rc = gw_wire_skip(&rd, f, wt, GW_CODEC_DEFAULT_MAX_DEPTH))) {
            return rc;
        }
    }
    if (type && header_safe(type, type_len) && type_len < ct_cap)
        snprintf(ct, ct_cap, "%.*s", (int)type_len, (const char *)type);
    else
        snprintf(ct, ct_cap, "application/octet-stream");
    return 0;
}

static bool field_is_http_body(const gw_field_def *f)
{
    return f->type == GW_TYPE_MESSAGE && f->label != GW_LABEL_REPEATED && f->message &&
           f->message->wkt == GW_WKT_HTTP_BODY;
}

/* The JSON of a message, or of its response_body field. */
static int message_json(const gw_rest_options *o, const gw_registry *r, const gw_route *rt,
                        const gw_codec_options *co, const uint8_t *msg, size_t len,
                        gw_buf *out, gw_error *e)
{
    if (rt->response_field)
        return gw_codec_field_to_json(r, rt->response_field, msg, len, co, out, e);
    return gw_codec_proto_to_json(r, rt->method->output, msg, len, co, out, e);
}

bool gw_rest_route_returns_http_body(const gw_route *rt)
{
    if (rt->response_field)
        return field_is_http_body(rt->response_field);
    return rt->method->output && rt->method->output->wkt == GW_WKT_HTTP_BODY;
}

/* The raw body of an HttpBody response (whole message or response_body). */
static int raw_body(const gw_route *rt, const uint8_t *msg, size_t len, gw_buf *out, char *ct,
                    size_t ct_cap)
{
    if (!rt->response_field)
        return http_body(msg, len, out, ct, ct_cap);
    gw_buf sub;
    gw_buf_init(&sub, 0);
    int rc = sub_message(msg, len, rt->response_field->number, &sub);
    if (rc == 0)
        rc = http_body(sub.data, sub.len, out, ct, ct_cap);
    gw_buf_free(&sub);
    return rc;
}

int gw_rest_stream_http_body(const gw_route *rt, const uint8_t *msg, size_t len, gw_buf *out,
                             char *content_type, size_t ct_cap, gw_rest_status *st)
{
    gw_rest_status_clear(st);
    size_t start = out->len;
    int rc = raw_body(rt, msg, len, out, content_type, ct_cap);
    if (rc) {
        out->len = start;
        gw_error e;
        gw_error_clear(&e);
        return backend_error(st, rc, &e);
    }
    return 0;
}

int gw_rest_unary_response(const gw_rest_options *o, const gw_registry *r,
                           const gw_route *rt, const gw_rest_print *print,
                           const uint8_t *msg, size_t len, gw_buf *out,
                           char *content_type, size_t ct_cap, gw_rest_status *st)
{
    gw_rest_status_clear(st);
    gw_error e;
    gw_error_clear(&e);
    size_t start = out->len;
    int rc;
    if (gw_rest_route_returns_http_body(rt)) {
        rc = raw_body(rt, msg, len, out, content_type, ct_cap);
    } else {
        gw_codec_options co;
        print_opts(o, print, &co);
        rc = message_json(o, r, rt, &co, len ? msg : (const uint8_t *)"", len, out, &e);
        snprintf(content_type, ct_cap, "application/json");
    }
    if (rc) {
        out->len = start;
        return backend_error(st, rc, &e);
    }
    return 0;
}

gw_rest_stream_format gw_rest_stream_format_from_accept(const char *accept)
{
    if (!accept)
        return GW_REST_STREAM_NDJSON;
    for (const char *p = accept; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = 0;
        while (p[n] && p[n] != ',' && p[n] != ';' && p[n] != ' ')
            n++;
        if (gw_strn_case_eq(p, n, "text/event-stream"))
            return GW_REST_STREAM_SSE;
        p += n;
        while (*p && *p != ',')
            p++;
    }
    return GW_REST_STREAM_NDJSON;
}

const char *gw_rest_stream_content_type(gw_rest_stream_format f)
{
    return f == GW_REST_STREAM_SSE ? "text/event-stream" : "application/json";
}

int gw_rest_stream_message(const gw_rest_options *o, const gw_registry *r,
                           const gw_route *rt, gw_rest_stream_format f,
                           const uint8_t *msg, size_t len, gw_buf *out,
                           gw_rest_status *st)
{
    gw_rest_status_clear(st);
    gw_codec_options co;
    print_opts(o, NULL, &co);
    gw_error e;
    gw_error_clear(&e);
    size_t start = out->len;
    int rc = gw_buf_append_str(out, f == GW_REST_STREAM_SSE ? "data: " : "{\"result\":");
    if (rc == 0)
        rc = message_json(o, r, rt, &co, len ? msg : (const uint8_t *)"", len, out, &e);
    if (rc == 0)
        rc = gw_buf_append_str(out, f == GW_REST_STREAM_SSE ? "\n\n" : "}\n");
    if (rc) {
        out->len = start;
        return backend_error(st, rc, &e);
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Errors.
 */

static const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 499: return "Client Closed Request";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Internal Server Error";
    }
}

/* One google.protobuf.Any detail. */
static int detail_json(const gw_rest_options *o, const gw_registry *r, const char *url,
                       size_t url_len, const uint8_t *value, size_t value_len, gw_buf *out)
{
    size_t start = out->len;
    int rc = gw_buf_append_str(out, "{\"@type\":");
    if (rc == 0)
        rc = gw_codec_json_append_string(out, url, url_len);
    if (rc)
        return rc;
    const gw_message_def *m = r ? gw_registry_message_by_type_url(r, url, url_len) : NULL;
    if (m) {
        gw_codec_options co;
        print_opts(o, NULL, &co);
        gw_buf tmp;
        gw_buf_init(&tmp, 0);
        rc = gw_codec_proto_to_json(r, m, value, value_len, &co, &tmp, NULL);
        if (rc == 0) {
            bool special = m->wkt != GW_WKT_NONE && m->wkt != GW_WKT_HTTP_BODY;
            if (special) {
                rc = gw_buf_append_str(out, ",\"value\":");
                if (rc == 0)
                    rc = gw_buf_append(out, tmp.data, tmp.len);
                if (rc == 0)
                    rc = gw_buf_append_byte(out, '}');
            } else if (tmp.len > 2) {
                /* Splice the message's members after "@type". */
                rc = gw_buf_append_byte(out, ',');
                if (rc == 0)
                    rc = gw_buf_append(out, tmp.data + 1, tmp.len - 1);
            } else {
                rc = gw_buf_append_byte(out, '}');
            }
            gw_buf_free(&tmp);
            return rc;
        }
        gw_buf_free(&tmp);
        if (rc == GW_ENOMEM)
            return rc;
        /* Bytes that do not decode as the named type: fall back to base64. */
        out->len = start;
        if ((rc = gw_buf_append_str(out, "{\"@type\":")) ||
            (rc = gw_codec_json_append_string(out, url, url_len)))
            return rc;
    }
    rc = gw_buf_append_str(out, ",\"value\":\"");
    if (rc == 0)
        rc = gw_base64_encode_buf(out, value, value_len, true);
    if (rc == 0)
        rc = gw_buf_append_str(out, "\"}");
    return rc;
}

/* Appends "[...]" with the details of a serialized google.rpc.Status
 * (details = 3, each an Any: type_url = 1, value = 2). *count gets their
 * number; unparseable input gives "[]". */
static int details_json(const gw_rest_options *o, const gw_registry *r, const uint8_t *bin,
                        size_t len, gw_buf *out, size_t *count)
{
    size_t start = out->len;
    *count = 0;
    if (!bin || !len)
        return gw_buf_append_str(out, "[]");
    int rc = gw_buf_append_byte(out, '[');
    if (rc)
        return rc;
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, bin, len);
    while (!gw_wire_eof(&rd)) {
        uint32_t f;
        gw_wire_type wt;
        if (gw_wire_read_tag(&rd, &f, &wt))
            goto bad;
        if (f != 3 || wt != GW_WIRE_LEN) {
            if (gw_wire_skip(&rd, f, wt, GW_CODEC_DEFAULT_MAX_DEPTH))
                goto bad;
            continue;
        }
        const uint8_t *any;
        size_t any_len;
        if (gw_wire_read_len(&rd, &any, &any_len))
            goto bad;
        const uint8_t *url = NULL, *value = NULL;
        size_t url_len = 0, value_len = 0;
        gw_wire_reader ar;
        gw_wire_reader_init(&ar, any, any_len);
        while (!gw_wire_eof(&ar)) {
            uint32_t af;
            gw_wire_type awt;
            if (gw_wire_read_tag(&ar, &af, &awt))
                goto bad;
            if ((af == 1 || af == 2) && awt == GW_WIRE_LEN) {
                const uint8_t *p;
                size_t n;
                if (gw_wire_read_len(&ar, &p, &n))
                    goto bad;
                if (af == 1) {
                    url = p;
                    url_len = n;
                } else {
                    value = p;
                    value_len = n;
                }
            } else if (gw_wire_skip(&ar, af, awt, GW_CODEC_DEFAULT_MAX_DEPTH)) {
                goto bad;
            }
        }
        if (*count && (rc = gw_buf_append_byte(out, ',')))
            return rc;
        rc = detail_json(o, r, url ? (const char *)url : "", url_len, value ? value : bin,
                         value_len, out);
        if (rc)
            return rc;
        (*count)++;
    }
    return gw_buf_append_byte(out, ']');
bad:
    out->len = start;
    *count = 0;
    return gw_buf_append_str(out, "[]");
}

/* The Status object without the v1 wrapping:
 * {"code":n,"message":"...","details":[...]} */
static int status_json(const gw_rest_options *o, const gw_registry *r, int code,
                       const char *message, const uint8_t *bin, size_t bin_len, gw_buf *out)
{
    size_t count;
    int rc = gw_buf_printf(out, "{\"code\":%d,\"message\":", code);
    if (rc == 0)
        rc = gw_codec_json_append_string(out, message ? message : "",
                                         message ? strlen(message) : 0);
    if (rc == 0)
        rc = gw_buf_append_str(out, ",\"details\":");
    if (rc == 0)
        rc = details_json(o, r, bin, bin_len, out, &count);
    if (rc == 0)
        rc = gw_buf_append_byte(out, '}');
    return rc;
}

/* grpc-gateway 1.x's details: present only when non-empty. */
static int v1_details(const gw_rest_options *o, const gw_registry *r, const uint8_t *bin,
                      size_t bin_len, gw_buf *out)
{
    size_t start = out->len, count;
    int rc = gw_buf_append_str(out, ",\"details\":");
    if (rc == 0)
        rc = details_json(o, r, bin, bin_len, out, &count);
    if (rc == 0 && count == 0)
        out->len = start;
    return rc;
}

int gw_rest_error_response(const gw_rest_options *o, const gw_registry *r, int code,
                           const char *message, const uint8_t *details_bin,
                           size_t details_len, gw_buf *out, int *http_status)
{
    *http_status = gw_code_to_http(code);
    if (!o->grpc_gateway_v1_errors)
        return status_json(o, r, code, message, details_bin, details_len, out);
    const char *m = message ? message : "";
    int rc = gw_buf_append_str(out, "{\"error\":");
    if (rc == 0)
        rc = gw_codec_json_append_string(out, m, strlen(m));
    if (rc == 0)
        rc = gw_buf_append_str(out, ",\"message\":");
    if (rc == 0)
        rc = gw_codec_json_append_string(out, m, strlen(m));
    if (rc == 0)
        rc = gw_buf_printf(out, ",\"code\":%d", code);
    if (rc == 0)
        rc = v1_details(o, r, details_bin, details_len, out);
    if (rc == 0)
        rc = gw_buf_append_byte(out, '}');
    return rc;
}

/* grpc-gateway 1.x's stream error object. */
static int v1_stream_error(const gw_rest_options *o, const gw_registry *r, int code,
                           const char *message, const uint8_t *bin, size_t bin_len,
                           gw_buf *out)
{
    int http = gw_code_to_http(code);
    const char *m = message ? message : "";
    int rc = gw_buf_printf(out, "{\"error\":{\"grpc_code\":%d,\"http_code\":%d,\"message\":",
                           code, http);
    if (rc == 0)
        rc = gw_codec_json_append_string(out, m, strlen(m));
    if (rc == 0)
        rc = gw_buf_printf(out, ",\"http_status\":\"%s\"", http_reason(http));
    if (rc == 0)
        rc = v1_details(o, r, bin, bin_len, out);
    if (rc == 0)
        rc = gw_buf_append_str(out, "}}");
    return rc;
}

int gw_rest_stream_error(const gw_rest_options *o, const gw_registry *r,
                         gw_rest_stream_format f, int code, const char *message,
                         const uint8_t *details_bin, size_t details_len, gw_buf *out)
{
    int rc;
    if (f == GW_REST_STREAM_SSE) {
        rc = gw_buf_append_str(out, "event: error\ndata: ");
        if (rc == 0)
            rc = status_json(o, r, code, message, details_bin, details_len, out);
        return rc ? rc : gw_buf_append_str(out, "\n\n");
    }
    if (o->grpc_gateway_v1_errors) {
        rc = v1_stream_error(o, r, code, message, details_bin, details_len, out);
    } else {
        rc = gw_buf_append_str(out, "{\"error\":");
        if (rc == 0)
            rc = status_json(o, r, code, message, details_bin, details_len, out);
        if (rc == 0)
            rc = gw_buf_append_byte(out, '}');
    }
    return rc ? rc : gw_buf_append_byte(out, '\n');
}

int gw_rest_stream_error_first(const gw_rest_options *o, const gw_registry *r, int code,
                               const char *message, const uint8_t *details_bin,
                               size_t details_len, gw_buf *out, int *http_status)
{
    *http_status = gw_code_to_http(code);
    if (o->grpc_gateway_v1_errors)
        return v1_stream_error(o, r, code, message, details_bin, details_len, out);
    return status_json(o, r, code, message, details_bin, details_len, out);
}

int gw_rest_status_response(const gw_rest_options *o, const gw_rest_status *st, gw_buf *out)
{
    int http;
    return gw_rest_error_response(o, NULL, st->code, st->message, NULL, 0, out, &http);
}
