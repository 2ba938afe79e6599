/* gRPC-Web framing, text mode and trailers. See grpcweb.h. */
#include "grpcweb/grpcweb.h"

#include <stdio.h>
#include <string.h>

#define DEFAULT_MAX_MESSAGE (4u * 1024u * 1024u)

/* ---- content types ------------------------------------------------------- */

int gw_grpcweb_classify(const char *ct, size_t n, gw_grpcweb_format *f)
{
    /* Strip parameters and trailing blanks: "application/grpc-web; charset=x". */
    size_t len = 0;
    while (len < n && ct[len] != ';')
        len++;
    while (len > 0 && (ct[len - 1] == ' ' || ct[len - 1] == '\t'))
        len--;
    static const char base[] = "application/grpc-web";
    size_t bl = sizeof base - 1;
    if (len < bl || !gw_strn_case_eq(ct, bl, base))
        return GW_ENOTFOUND;
    const char *rest = ct + bl;
    size_t rl = len - bl;
    gw_grpcweb_format out = {false, false};
    if (rl >= 5 && gw_strn_case_eq(rest, 5, "-text")) {
        out.text = true;
        rest += 5;
        rl -= 5;
    }
    if (rl == 0 || (rl == 6 && gw_strn_case_eq(rest, rl, "+proto"))) {
        *f = out;
        return 0;
    }
    if (rl == 5 && gw_strn_case_eq(rest, rl, "+json")) {
        out.json = true;
        *f = out;
        return 0;
    }
    /* "application/grpc-webx" is some other type; "+thrift" is ours but
     * untranslatable. */
    return rest[0] == '+' ? GW_EINVAL : GW_ENOTFOUND;
}

const char *gw_grpcweb_content_type(gw_grpcweb_format f)
{
    if (f.json)
        return f.text ? "application/grpc-web-text+json" : "application/grpc-web+json";
    return f.text ? "application/grpc-web-text+proto" : "application/grpc-web+proto";
}

/* ---- frames ------------------------------------------------------------------ */

void gw_grpcweb_frame_header(uint8_t out[5], uint8_t flag, uint32_t len)
{
    out[0] = flag;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

void gw_grpcweb_scanner_init(gw_grpcweb_scanner *s, size_t max_message,
                             bool allow_compressed)
{
    memset(s, 0, sizeof *s);
    s->max_message = max_message ? max_message : DEFAULT_MAX_MESSAGE;
    s->allow_compressed = allow_compressed;
}

static int check_header(gw_grpcweb_scanner *s, gw_error *e)
{
    uint8_t flag = s->header[0];
    uint64_t at = s->offset - GW_GRPCWEB_HEADER_LEN;
    uint32_t len = (uint32_t)s->header[1] << 24 | (uint32_t)s->header[2] << 16 |
                   (uint32_t)s->header[3] << 8 | s->header[4];
    if (flag & GW_GRPCWEB_FLAG_TRAILERS)
        return gw_error_set(e, GW_EPARSE,
                            "frame %llu at body offset %llu: trailer frame in a request",
                            (unsigned long long)s->frames, (unsigned long long)at);
    if (flag & ~GW_GRPCWEB_FLAG_COMPRESSED)
        return gw_error_set(e, GW_EPARSE,
                            "frame %llu at body offset %llu: unknown flag bits 0x%02x",
                            (unsigned long long)s->frames, (unsigned long long)at, flag);
    if ((flag & GW_GRPCWEB_FLAG_COMPRESSED) && !s->allow_compressed)
        return gw_error_set(e, GW_EPARSE,
                            "frame %llu at body offset %llu: compressed frame but no "
                            "grpc-encoding was negotiated",
                            (unsigned long long)s->frames, (unsigned long long)at);
    if (len > s->max_message)
        return gw_error_set(e, GW_ELIMIT,
                            "frame %llu at body offset %llu: message of %u bytes exceeds "
                            "the limit of %zu",
                            (unsigned long long)s->frames, (unsigned long long)at, len,
                            s->max_message);
    s->payload_left = len;
    s->header_have = 0;
    if (len == 0)
        s->frames++;
    return 0;
}

int gw_grpcweb_scanner_feed(gw_grpcweb_scanner *s, const uint8_t *data, size_t n,
                            gw_error *e)
{
    size_t i = 0;
    while (i < n) {
        if (s->payload_left > 0) {
            size_t take = GW_MIN(s->payload_left, n - i);
            s->payload_left -= take;
            s->offset += take;
            i += take;
            if (s->payload_left == 0)
                s->frames++;
            continue;
        }
        s->header[s->header_have++] = data[i++];
        s->offset++;
        if (s->header_have == GW_GRPCWEB_HEADER_LEN) {
            int rc = check_header(s, e);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int gw_grpcweb_scanner_finish(const gw_grpcweb_scanner *s, gw_error *e)
{
    if (s->header_have > 0)
        return gw_error_set(e, GW_EPARSE,
                            "frame %llu: body ended inside the 5-byte frame header "
                            "(%zu of 5 bytes)",
                            (unsigned long long)s->frames, s->header_have);
    if (s->payload_left > 0)
        return gw_error_set(e, GW_EPARSE,
                            "frame %llu: body ended %zu bytes before the end of the "
                            "message its length prefix announced",
                            (unsigned long long)s->frames, s->payload_left);
    return 0;
}

/* ---- text mode ------------------------------------------------------------ */

void gw_grpcweb_b64_init(gw_grpcweb_b64 *d) { memset(d, 0, sizeof *d); }

/* Decodes one complete group; returns the byte count or -1 with *bad set
 * to the index of the offending character within the group. */
static int decode_group(const char g[4], uint8_t *out, int *bad)
{
    /* Standard alphabet only (gw_base64_std_value), '=' as 64; where '=' may
     * stand is checked below, per group, since padded chunks may follow
     * each other. */
    uint8_t v[4];
    for (int k = 0; k < 4; k++) {
        unsigned char c = (unsigned char)g[k];
        int x = c == '=' ? 64 : gw_base64_std_value(c);
        if (x < 0) {
            *bad = k;
            return -1;
        }
        v[k] = (uint8_t)x;
    }
    if (v[0] == 64 || v[1] == 64) {
        *bad = v[0] == 64 ? 0 : 1;
        return -1;
    }
    if (v[2] == 64 && v[3] != 64) {
        *bad = 3;
        return -1;
    }
    out[0] = (uint8_t)(v[0] << 2 | v[1] >> 4);
    if (v[2] == 64)
        return 1;
    out[1] = (uint8_t)(v[1] << 4 | v[2] >> 2);
    if (v[3] == 64)
        return 2;
    out[2] = (uint8_t)(v[2] << 6 | v[3]);
    return 3;
}

int gw_grpcweb_b64_decode(gw_grpcweb_b64 *d, const char *in, size_t n, uint8_t *out,
                          size_t *out_len, gw_error *e)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        d->group[d->group_have++] = in[i];
        if (d->group_have < 4)
            continue;
        int bad = 0;
        int got = decode_group(d->group, out + w, &bad);
        if (got < 0) {
            *out_len = w;
            return gw_error_set(e, GW_EPARSE,
                                "invalid base64 at body offset %llu (character 0x%02x)",
                                (unsigned long long)(d->offset + (uint64_t)bad),
                                (unsigned char)d->group[bad]);
        }
        w += (size_t)got;
        d->group_have = 0;
        d->offset += 4;
    }
    *out_len = w;
    return 0;
}

int gw_grpcweb_b64_finish(gw_grpcweb_b64 *d, uint8_t *out, size_t *out_len, gw_error *e)
{
    *out_len = 0;
    if (d->group_have == 0)
        return 0;
    if (d->group_have == 1)
        return gw_error_set(e, GW_EPARSE,
                            "invalid base64 at body offset %llu: body ends with a single "
                            "character of a group",
                            (unsigned long long)d->offset);
    char g[4] = {d->group[0], d->group[1], '=', '='};
    if (d->group_have == 3)
        g[2] = d->group[2];
    uint8_t tmp[3];
    int bad = 0;
    int got = decode_group(g, tmp, &bad);
    if (got < 0)
        return gw_error_set(e, GW_EPARSE, "invalid base64 at body offset %llu",
                            (unsigned long long)(d->offset + (uint64_t)bad));
    memcpy(out, tmp, (size_t)got);
    *out_len = (size_t)got;
    d->offset += d->group_have;
    d->group_have = 0;
    return 0;
}

/* ---- trailer frame ----------------------------------------------------------- */

bool gw_grpcweb_header_name_ok(const char *name, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
        if (!ok)
            return false;
    }
    return true;
}

bool gw_grpcweb_header_value_ok(const char *value, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
            return false;
    return true;
}

int gw_grpcweb_trailer_begin(gw_buf *b, size_t *start)
{
    *start = b->len;
    static const uint8_t zero[5];
    return gw_buf_append(b, zero, sizeof zero);
}

int gw_grpcweb_trailer_add(gw_buf *b, const char *name, size_t name_len,
                           const char *value, size_t value_len)
{
    if (!gw_grpcweb_header_name_ok(name, name_len) ||
        !gw_grpcweb_header_value_ok(value, value_len))
        return GW_EINVAL;
    int rc = gw_buf_reserve(b, name_len + value_len + 4);
    if (rc)
        return rc;
    for (size_t i = 0; i < name_len; i++) {
        char c = name[i];
        b->data[b->len++] = (uint8_t)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    b->data[b->len++] = ':';
    b->data[b->len++] = ' ';
    memcpy(b->data + b->len, value, value_len);
    b->len += value_len;
    b->data[b->len++] = '\r';
    b->data[b->len++] = '\n';
    b->data[b->len] = 0;
    return 0;
}

void gw_grpcweb_trailer_end(gw_buf *b, size_t start)
{
    size_t len = b->len - start - GW_GRPCWEB_HEADER_LEN;
    gw_grpcweb_frame_header(b->data + start, GW_GRPCWEB_FLAG_TRAILERS, (uint32_t)len);
}

int gw_grpcweb_trailer_add_status(gw_buf *b, int code, const char *message,
                                  const uint8_t *details, size_t details_len)
{
    char num[16];
    int n = snprintf(num, sizeof num, "%d", code);
    int rc = gw_grpcweb_trailer_add(b, "grpc-status", 11, num, (size_t)n);
    if (rc)
        return rc;
    if (message && message[0]) {
        gw_buf enc;
        gw_buf_init(&enc, 0);
        rc = gw_grpc_message_encode(&enc, message, strlen(message));
        if (rc == 0)
            rc = gw_grpcweb_trailer_add(b, "grpc-message", 12, (const char *)enc.data,
                                        enc.len);
        gw_buf_free(&enc);
        if (rc)
            return rc;
    }
    if (details) {
        gw_buf enc;
        gw_buf_init(&enc, 0);
        rc = gw_base64_encode_buf(&enc, details, details_len, false);
        if (rc == 0)
            rc = gw_grpcweb_trailer_add(b, "grpc-status-details-bin", 23,
                                        enc.data ? (const char *)enc.data : "", enc.len);
        gw_buf_free(&enc);
        if (rc)
            return rc;
    }
    return 0;
}
