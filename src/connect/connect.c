/* The Connect protocol's wire format. See connect.h and docs/connect.md. */
#include "connect/connect.h"

#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "codec/codec.h"

/* ---- classification ---------------------------------------------------------------- */

/* s[0..n) with parameters (";...") and surrounding spaces cut off. */
static size_t media_type_len(const char *s)
{
    size_t n = strcspn(s, ";");
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n;
}

/* Whether query[0..len) has a parameter name=<any value>. */
static bool query_has(const char *q, size_t len, const char *name)
{
    size_t nl = strlen(name);
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && q[end] != '&')
            end++;
        if (end - i > nl && memcmp(q + i, name, nl) == 0 && q[i + nl] == '=')
            return true;
        i = end + 1;
    }
    return false;
}

gw_connect_format gw_connect_classify(const char *method, const char *content_type,
                                      bool has_protocol_version, const char *query,
                                      size_t query_len)
{
    gw_connect_format f = {GW_CONNECT_NONE, false};
    if (strcmp(method, "GET") == 0) {
        if (query && query_has(query, query_len, "connect"))
            f.kind = GW_CONNECT_GET;
        return f;
    }
    if (strcmp(method, "POST") != 0 || !content_type)
        return f;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    size_t n = media_type_len(content_type);
    static const char stream_prefix[] = "application/connect+";
    size_t pl = sizeof stream_prefix - 1;
    if (n > pl && strncasecmp(content_type, stream_prefix, pl) == 0) {
        const char *codec = content_type + pl;
        size_t cl = n - pl;
        if (gw_strn_case_eq(codec, cl, "proto")) {
            f.kind = GW_CONNECT_STREAM;
        } else if (gw_strn_case_eq(codec, cl, "json")) {
            f.kind = GW_CONNECT_STREAM;
            f.json = true;
        } else {
            f.kind = GW_CONNECT_BAD_CODEC;
        }
        return f;
    }
    if (gw_strn_case_eq(content_type, n, "application/proto")) {
        f.kind = GW_CONNECT_UNARY;
    } else if (has_protocol_version && gw_strn_case_eq(content_type, n, "application/json")) {
        f.kind = GW_CONNECT_UNARY;
        f.json = true;
    }
    return f;
}

const char *gw_connect_content_type(gw_connect_format f)
{
    if (f.kind == GW_CONNECT_STREAM)
        return f.json ? "application/connect+json" : "application/connect+proto";
    return f.json ? "application/json" : "application/proto";
}

/* ---- codes ---------------------------------------------------------------------------- */

int gw_connect_code_to_http(int code)
{
    static const short http[GW_CODE_MAX + 1] = {
        [GW_CODE_OK] = 200,
        [GW_CODE_CANCELLED] = 499,
        [GW_CODE_UNKNOWN] = 500,
        [GW_CODE_INVALID_ARGUMENT] = 400,
        [GW_CODE_DEADLINE_EXCEEDED] = 504,
        [GW_CODE_NOT_FOUND] = 404,
        [GW_CODE_ALREADY_EXISTS] = 409,
        [GW_CODE_PERMISSION_DENIED] = 403,
        [GW_CODE_RESOURCE_EXHAUSTED] = 429,
        [GW_CODE_FAILED_PRECONDITION] = 400,
        [GW_CODE_ABORTED] = 409,
        [GW_CODE_OUT_OF_RANGE] = 400,
        [GW_CODE_UNIMPLEMENTED] = 501,
        [GW_CODE_INTERNAL] = 500,
        [GW_CODE_UNAVAILABLE] = 503,
        [GW_CODE_DATA_LOSS] = 500,
        [GW_CODE_UNAUTHENTICATED] = 401,
    };
    if (code < 1 || code > GW_CODE_MAX)
        return 500;
    return http[code];
}

/* ---- Connect-Timeout-Ms -------------------------------------------------------- */

int gw_connect_timeout_parse(const char *s, size_t n, uint64_t *ms)
{
    if (n == 0 || n > 10)
        return GW_EPARSE;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return GW_EPARSE;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *ms = v;
    return 0;
}

/* ---- compression -------------------------------------------------------------------- */

int gw_connect_encoding_parse(const char *s, size_t n, gw_connect_encoding *enc)
{
    if (!s || n == 0 || gw_strn_case_eq(s, n, "identity")) {
        *enc = GW_CONNECT_IDENTITY;
        return 0;
    }
    if (gw_strn_case_eq(s, n, "gzip")) {
        *enc = GW_CONNECT_GZIP;
        return 0;
    }
    return GW_ENOTFOUND;
}

bool gw_connect_accepts_gzip(const char *value)
{
    if (!value)
        return false;
    const char *p = value;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *el = p;
        p += len;
        if (*p == ',')
            p++;
        while (len && (*el == ' ' || *el == '\t')) {
            el++;
            len--;
        }
        size_t name = 0;
        while (name < len && el[name] != ';' && el[name] != ' ' && el[name] != '\t')
            name++;
        if (!gw_strn_case_eq(el, name, "gzip"))
            continue;
        /* q=0 (0, 0.0, 0.00, 0.000) refuses; any other parameter is ignored. */
        const char *q = el + name;
        const char *end = el + len;
        bool refused = false;
        while (q < end) {
            while (q < end && (*q == ';' || *q == ' ' || *q == '\t'))
                q++;
            if (end - q >= 2 && (q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
                const char *v = q + 2;
                refused = v < end && *v == '0';
                for (v++; v < end && refused && *v != ';' && *v != ' '; v++)
                    if (*v != '.' && *v != '0')
                        refused = false;
            }
            while (q < end && *q != ';')
                q++;
        }
        if (!refused)
            return true;
    }
    return false;
}

int gw_connect_gunzip(const uint8_t *in, size_t n, size_t max, gw_buf *out, gw_error *e)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return gw_error_set(e, GW_ENOMEM, "out of memory starting gzip");
    int rc = 0;
    size_t produced = 0;
    z.next_in = (Bytef *)(uintptr_t)in;
    size_t in_left = n;
    for (;;) {
        if (z.avail_in == 0 && in_left) {
            z.avail_in = (uInt)GW_MIN(in_left, (size_t)1 << 30);
            in_left -= z.avail_in;
        }
        size_t room = max - produced;
        size_t chunk = GW_MIN(room + 1, (size_t)16384); /* one byte over: detects > max */
        if ((rc = gw_buf_reserve(out, chunk)) != 0) {
            rc = gw_error_set(e, rc, "decompressed message too large");
            goto out;
        }
        z.next_out = out->data + out->len;
        z.avail_out = (uInt)chunk;
        int zr = inflate(&z, Z_NO_FLUSH);
        size_t got = chunk - z.avail_out;
        out->len += got;
        produced += got;
        if (produced > max) {
            out->len -= produced - max;
            rc = gw_error_set(e, GW_ELIMIT,
                              "decompressed message exceeds the limit of %zu bytes", max);
            goto out;
        }
        if (zr == Z_STREAM_END) {
            if (z.avail_in || in_left)
                rc = gw_error_set(e, GW_EPARSE, "bytes after the end of the gzip stream");
            goto out;
        }
        if (zr == Z_MEM_ERROR) {
            rc = gw_error_set(e, GW_ENOMEM, "out of memory in gzip");
            goto out;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = gw_error_set(e, GW_EPARSE, "corrupt gzip data at byte %zu",
                              (size_t)z.total_in);
            goto out;
        }
        if (zr == Z_BUF_ERROR && z.avail_in == 0 && in_left == 0 && got == 0) {
            rc = gw_error_set(e, GW_EPARSE, "truncated gzip data");
            goto out;
        }
    }
out:
    inflateEnd(&z);
    if (out->data)
        out->data[out->len] = 0; /* gw_buf keeps its NUL after the bytes */
    return rc;
}

int gw_connect_gzip(const uint8_t *in, size_t n, gw_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* The front's settings (docs/front.md): a 4 KiB window and memLevel 5
     * keep the state near 32 KiB instead of zlib's ~256 KiB, allocated per
     * compressed message; messages of a few KiB lose little by it. */
    if (deflateInit2(&z, 6, Z_DEFLATED, 16 + 12, 5, Z_DEFAULT_STRATEGY) != Z_OK)
        return GW_ENOMEM;
    size_t start = out->len;
    int rc = 0;
    size_t bound = deflateBound(&z, (uLong)n);
    if ((rc = gw_buf_reserve(out, bound)) != 0)
        goto out;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = out->data + out->len;
    z.avail_out = (uInt)bound;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
        rc = GW_ENOMEM;
        out->len = start;
        goto out;
    }
    out->len += bound - z.avail_out;
out:
    deflateEnd(&z);
    return rc;
}

/* ---- envelopes --------------------------------------------------------------------- */

void gw_connect_envelope_header(uint8_t out[5], uint8_t flags, uint32_t len)
{
    out[0] = flags;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

void gw_connect_scanner_init(gw_connect_scanner *s, size_t max_message, bool allow_compressed)
{
    memset(s, 0, sizeof *s);
    s->max_message = max_message ? max_message : 4u << 20;
    s->allow_compressed = allow_compressed;
}

int gw_connect_scanner_feed(gw_connect_scanner *s, const uint8_t *data, size_t n, gw_error *e)
{
    size_t i = 0;
    while (i < n) {
        if (s->payload_left) {
            size_t take = GW_MIN(s->payload_left, n - i);
            s->payload_left -= take;
            i += take;
            s->offset += take;
            if (s->payload_left == 0)
                s->envelopes++;
            continue;
        }
        s->header[s->header_have++] = data[i++];
        s->offset++;
        if (s->header_have < GW_CONNECT_ENVELOPE_LEN)
            continue;
        s->header_have = 0;
        uint64_t at = s->offset - GW_CONNECT_ENVELOPE_LEN;
        uint8_t flags = s->header[0];
        if (flags & GW_CONNECT_FLAG_END_STREAM)
            return gw_error_set(e, GW_EPARSE,
                                "envelope at body offset %llu has the end-stream flag, "
                                "which only responses carry",
                                (unsigned long long)at);
        if (flags & ~GW_CONNECT_FLAG_COMPRESSED)
            return gw_error_set(e, GW_EPARSE, "envelope at body offset %llu has unknown flags 0x%02x",
                                (unsigned long long)at, flags);
        if ((flags & GW_CONNECT_FLAG_COMPRESSED) && !s->allow_compressed)
            return gw_error_set(e, GW_EPARSE,
                                "envelope at body offset %llu is compressed but no "
                                "Connect-Content-Encoding was given",
                                (unsigned long long)at);
        size_t len = (size_t)s->header[1] << 24 | (size_t)s->header[2] << 16 |
                     (size_t)s->header[3] << 8 | s->header[4];
        if (len > s->max_message)
            return gw_error_set(e, GW_ELIMIT,
                                "envelope at body offset %llu declares %zu bytes, over the "
                                "message limit of %zu",
                                (unsigned long long)at, len, s->max_message);
        s->payload_left = len;
        if (len == 0)
            s->envelopes++;
    }
    return 0;
}

int gw_connect_scanner_finish(const gw_connect_scanner *s, gw_error *e)
{
    if (s->header_have)
        return gw_error_set(e, GW_EPARSE,
                            "body ends inside an envelope header (%zu of 5 bytes, at body "
                            "offset %llu)",
                            s->header_have, (unsigned long long)s->offset);
    if (s->payload_left)
        return gw_error_set(e, GW_EPARSE,
                            "body ends %zu bytes short of the end of envelope %llu",
                            s->payload_left, (unsigned long long)s->envelopes + 1);
    return 0;
}

size_t gw_connect_envelope_next(const uint8_t *data, size_t n, uint8_t *flags,
                                const uint8_t **payload, size_t *payload_len)
{
    if (n < GW_CONNECT_ENVELOPE_LEN)
        return 0;
    size_t len = (size_t)data[1] << 24 | (size_t)data[2] << 16 | (size_t)data[3] << 8 | data[4];
    if (n - GW_CONNECT_ENVELOPE_LEN < len)
        return 0;
    *flags = data[0];
    *payload = data + GW_CONNECT_ENVELOPE_LEN;
    *payload_len = len;
    return GW_CONNECT_ENVELOPE_LEN + len;
}

/* ---- errors and end of stream ----------------------------------------------------- */

/* One google.protobuf.Any of a google.rpc.Status as a Connect detail. */
static int append_detail(gw_buf *out, const gw_registry *r, const uint8_t *any, size_t n,
                         bool first)
{
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, any, n);
    const uint8_t *url = NULL, *value = NULL;
    size_t url_len = 0, value_len = 0;
    while (!gw_wire_eof(&rd)) {
        uint32_t field;
        gw_wire_type wt;
        if (gw_wire_read_tag(&rd, &field, &wt) != 0)
            return GW_EPARSE;
        if ((field == 1 || field == 2) && wt == GW_WIRE_LEN) {
            const uint8_t *p;
            size_t l;
            if (gw_wire_read_len(&rd, &p, &l) != 0)
                return GW_EPARSE;
            if (field == 1) {
                url = p;
                url_len = l;
            } else {
                value = p;
                value_len = l;
            }
        } else if (gw_wire_skip(&rd, field, wt, GW_CODEC_DEFAULT_MAX_DEPTH) != 0) {
            return GW_EPARSE;
        }
    }
    if (!url || !gw_utf8_valid(url, url_len))
        return GW_EPARSE;
    const char *type = (const char *)url;
    size_t type_len = url_len;
    for (size_t i = url_len; i > 0; i--)
        if (url[i - 1] == '/') {
            type = (const char *)url + i;
            type_len = url_len - i;
            break;
        }
    size_t start = out->len;
    int rc = gw_buf_append_str(out, first ? "{\"type\":" : ",{\"type\":");
    if (!rc)
        rc = gw_codec_json_append_string(out, type, type_len);
    if (!rc)
        rc = gw_buf_append_str(out, ",\"value\":\"");
    if (!rc && value_len)
        rc = gw_base64_encode_buf(out, value, value_len, false);
    if (!rc)
        rc = gw_buf_append_byte(out, '"');
    if (rc) {
        out->len = start;
        return rc;
    }
    const gw_message_def *m =
        r ? gw_registry_message_by_type_url(r, (const char *)url, url_len) : NULL;
    if (m) {
        size_t before = out->len;
        gw_error e;
        gw_error_clear(&e);
        gw_codec_options co;
        gw_codec_options_init(&co);
        co.max_output = 64 * 1024;
        rc = gw_buf_append_str(out, ",\"debug\":");
        if (!rc)
            rc = gw_codec_proto_to_json(r, m, value ? value : (const uint8_t *)"", value_len,
                                        &co, out, &e);
        if (rc)
            out->len = before; /* debug is a courtesy: left out when it does not decode */
    }
    rc = gw_buf_append_byte(out, '}');
    if (rc)
        out->len = start;
    return rc;
}

int gw_connect_error_json(gw_buf *out, const gw_registry *r, int code, const char *message,
                          const uint8_t *details_bin, size_t details_len)
{
    size_t start = out->len;
    if (code < 1 || code > GW_CODE_MAX)
        code = GW_CODE_UNKNOWN;
    int rc = gw_buf_printf(out, "{\"code\":\"%s\"", gw_code_snake_name(code));
    if (!rc && message && message[0]) {
        rc = gw_buf_append_str(out, ",\"message\":");
        if (!rc)
            rc = gw_codec_json_append_string(out, message, strlen(message));
    }
    if (!rc && details_bin && details_len) {
        size_t before = out->len;
        rc = gw_buf_append_str(out, ",\"details\":[");
        gw_wire_reader rd;
        gw_wire_reader_init(&rd, details_bin, details_len);
        bool first = true, bad = false;
        while (!rc && !gw_wire_eof(&rd)) {
            uint32_t field;
            gw_wire_type wt;
            if (gw_wire_read_tag(&rd, &field, &wt) != 0) {
                bad = true;
                break;
            }
            if (field == 3 && wt == GW_WIRE_LEN) {
                const uint8_t *p;
                size_t l;
                if (gw_wire_read_len(&rd, &p, &l) != 0) {
                    bad = true;
                    break;
                }
                int d = append_detail(out, r, p, l, first);
                if (d == GW_EPARSE)
                    continue; /* this detail is unreadable: the others still go */
                rc = d;
                first = false;
            } else if (gw_wire_skip(&rd, field, wt, GW_CODEC_DEFAULT_MAX_DEPTH) != 0) {
                bad = true;
                break;
            }
        }
        if (!rc)
            rc = gw_buf_append_byte(out, ']');
        if (!rc && (bad || first))
            out->len = before; /* no readable detail: no "details" at all */
    }
    if (!rc)
        rc = gw_buf_append_byte(out, '}');
    if (rc)
        out->len = start;
    return rc;
}

static bool md_name_eq(const gw_connect_md *a, const gw_connect_md *b)
{
    if (a->name_len != b->name_len)
        return false;
    for (size_t i = 0; i < a->name_len; i++) {
        char x = a->name[i], y = b->name[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (char)(y + 32);
        if (x != y)
            return false;
    }
    return true;
}

static bool md_sendable(const gw_connect_md *m)
{
    return m->name_len > 0 && gw_metadata_key_ok(m->name, m->name_len) &&
           gw_metadata_value_ok(m->value, m->value_len);
}

int gw_connect_end_stream(gw_buf *out, const gw_registry *r, int code, const char *message,
                          const uint8_t *details_bin, size_t details_len,
                          const gw_connect_md *md, size_t md_count)
{
    size_t start = out->len;
    static const uint8_t zero[GW_CONNECT_ENVELOPE_LEN];
    int rc = gw_buf_append(out, zero, sizeof zero);
    if (!rc)
        rc = gw_buf_append_byte(out, '{');
    bool comma = false;
    if (!rc && code != GW_CODE_OK) {
        rc = gw_buf_append_str(out, "\"error\":");
        if (!rc)
            rc = gw_connect_error_json(out, r, code, message, details_bin, details_len);
        comma = true;
    }
    bool any = false;
    for (size_t i = 0; !rc && i < md_count; i++) {
        if (!md_sendable(&md[i]))
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = md_sendable(&md[j]) && md_name_eq(&md[i], &md[j]);
        if (seen)
            continue; /* grouped with its first occurrence */
        if (!any) {
            rc = gw_buf_append_str(out, comma ? ",\"metadata\":{" : "\"metadata\":{");
            any = true;
        } else {
            rc = gw_buf_append_byte(out, ',');
        }
        char key[256];
        size_t kl = GW_MIN(md[i].name_len, sizeof key);
        for (size_t k = 0; k < kl; k++) {
            char ch = md[i].name[k];
            key[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
        }
        if (!rc)
            rc = gw_codec_json_append_string(out, key, kl);
        if (!rc)
            rc = gw_buf_append_str(out, ":[");
        bool first = true;
        for (size_t j = i; !rc && j < md_count; j++) {
            if (!md_sendable(&md[j]) || !md_name_eq(&md[i], &md[j]))
                continue;
            if (!first)
                rc = gw_buf_append_byte(out, ',');
            if (!rc)
                rc = gw_codec_json_append_string(out, md[j].value, md[j].value_len);
            first = false;
        }
        if (!rc)
            rc = gw_buf_append_byte(out, ']');
    }
    if (!rc && any)
        rc = gw_buf_append_byte(out, '}');
    if (!rc)
        rc = gw_buf_append_byte(out, '}');
    if (rc) {
        out->len = start;
        return rc;
    }
    gw_connect_envelope_header(out->data + start, GW_CONNECT_FLAG_END_STREAM,
                               (uint32_t)(out->len - start - GW_CONNECT_ENVELOPE_LEN));
    return 0;
}

/* ---- unary GET ------------------------------------------------------------------------ */

int gw_connect_get_parse(const char *query, size_t len, gw_connect_get *g, gw_buf *message,
                         gw_error *e)
{
    memset(g, 0, sizeof *g);
    bool have_encoding = false, have_message = false, have_compression = false,
         have_base64 = false;
    const char *msg = NULL;
    size_t msg_len = 0;
    size_t i = 0;
    while (i <= len && len) {
        size_t end = i;
        while (end < len && query[end] != '&')
            end++;
        const char *p = query + i;
        size_t n = end - i;
        size_t eq = 0;
        while (eq < n && p[eq] != '=')
            eq++;
        const char *v = eq < n ? p + eq + 1 : p + n;
        size_t vl = eq < n ? n - eq - 1 : 0;
        bool *seen = NULL;
        if (gw_strn_case_eq(p, eq, "connect")) {
            seen = &g->version;
            if (*seen)
                goto repeated;
            if (!gw_strn_case_eq(v, vl, "v1"))
                return gw_error_set(e, GW_EPARSE,
                                    "query parameter connect=%.*s: only v1 is known",
                                    (int)GW_MIN(vl, 32), v);
            g->version = true;
        } else if (gw_strn_case_eq(p, eq, "encoding")) {
            seen = &have_encoding;
            if (*seen)
                goto repeated;
            if (gw_strn_case_eq(v, vl, "json"))
                g->json = true;
            else if (!gw_strn_case_eq(v, vl, "proto"))
                return gw_error_set(e, GW_EINVAL,
                                    "encoding=%.*s is not supported: use json or proto",
                                    (int)GW_MIN(vl, 32), v);
            have_encoding = true;
        } else if (gw_strn_case_eq(p, eq, "message")) {
            if (have_message)
                goto repeated;
            have_message = true;
            msg = v;
            msg_len = vl;
        } else if (gw_strn_case_eq(p, eq, "base64")) {
            if (have_base64)
                goto repeated;
            have_base64 = true;
            g->base64 = gw_strn_case_eq(v, vl, "1"); /* other values are ignored */
        } else if (gw_strn_case_eq(p, eq, "compression")) {
            if (have_compression)
                goto repeated;
            have_compression = true;
            if (gw_connect_encoding_parse(v, vl, &g->compression) != 0)
                return gw_error_set(e, GW_ENOTFOUND,
                                    "compression=%.*s is not supported (supported: "
                                    GW_CONNECT_ENCODINGS ")",
                                    (int)GW_MIN(vl, 32), v);
        }
        i = end + 1;
        continue;
    repeated:
        return gw_error_set(e, GW_EPARSE, "query parameter %.*s given twice", (int)eq, p);
    }
    if (!have_encoding)
        return gw_error_set(e, GW_EPARSE, "the query has no encoding= parameter");
    if (!have_message)
        return gw_error_set(e, GW_EPARSE, "the query has no message= parameter");
    /* The value is still percent-encoded ('+' is a space in a query). */
    gw_buf decoded;
    gw_buf_init(&decoded, message->max ? message->max * 4 / 3 + 8 : 0);
    int rc = gw_url_decode(&decoded, msg, msg_len, false, true);
    if (rc) {
        gw_buf_free(&decoded);
        if (rc == GW_EPARSE)
            return gw_error_set(e, rc, "message= has a malformed percent-escape");
        return gw_error_set(e, rc, "message= is too long");
    }
    if (g->base64) {
        size_t err_at = 0;
        rc = decoded.len ? gw_base64_decode_buf(message, (const char *)decoded.data,
                                                decoded.len, &err_at)
                         : 0;
        if (rc == GW_EPARSE)
            gw_error_set(e, rc, "message= is not valid base64 (at character %zu)", err_at);
        else if (rc)
            gw_error_set(e, rc, "message= is too long");
    } else {
        if (!gw_utf8_valid(decoded.data ? decoded.data : (const uint8_t *)"", decoded.len))
            rc = gw_error_set(e, GW_EPARSE,
                              "message= without base64=1 must be UTF-8 (use base64=1 for "
                              "binary data)");
        else if (decoded.len && (rc = gw_buf_append(message, decoded.data, decoded.len)) != 0)
            gw_error_set(e, rc, "message= is too long");
    }
    gw_buf_free(&decoded);
    return rc;
}
