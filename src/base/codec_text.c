/* base64, percent coding, UTF-8 validation, hashing. */
#include "base/base.h"

#include <stdio.h>
#include <string.h>

static const char b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The alphabet as a constant expression, and every pair of characters a
 * 12-bit group encodes to (8 KiB): the encoder looks up two characters at a
 * time, which makes it about three times faster than one at a time (REST
 * NDJSON of bytes fields spent most of its CPU here; docs/performance.md,
 * "Memory at scale", item 6). */
#define B64C(x) ((char)((x) < 26 ? 'A' + (x) : (x) < 52 ? 'a' + (x) - 26 : \
                        (x) < 62 ? '0' + (x) - 52 : (x) == 62 ? '+' : '/'))
#define B64P(i) B64C((i) >> 6), B64C((i) & 63)
#define B64P4(i) B64P(i), B64P((i) + 1), B64P((i) + 2), B64P((i) + 3)
#define B64P16(i) B64P4(i), B64P4((i) + 4), B64P4((i) + 8), B64P4((i) + 12)
#define B64P64(i) B64P16(i), B64P16((i) + 16), B64P16((i) + 32), B64P16((i) + 48)
#define B64P256(i) B64P64(i), B64P64((i) + 64), B64P64((i) + 128), B64P64((i) + 192)
#define B64P1024(i) B64P256(i), B64P256((i) + 256), B64P256((i) + 512), B64P256((i) + 768)
static const char b64_pairs[8192] = {
    B64P1024(0), B64P1024(1024), B64P1024(2048), B64P1024(3072),
};

size_t gw_base64_encode(const uint8_t *in, size_t n, char *out, bool pad)
{
    char *o = out;
    size_t i = 0;
    for (; i + 6 <= n; i += 6, o += 8) {
        uint32_t a = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        uint32_t b = (uint32_t)in[i + 3] << 16 | (uint32_t)in[i + 4] << 8 | in[i + 5];
        memcpy(o, b64_pairs + 2 * (a >> 12), 2);
        memcpy(o + 2, b64_pairs + 2 * (a & 0xfff), 2);
        memcpy(o + 4, b64_pairs + 2 * (b >> 12), 2);
        memcpy(o + 6, b64_pairs + 2 * (b & 0xfff), 2);
    }
    for (; i + 3 <= n; i += 3, o += 4) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        memcpy(o, b64_pairs + 2 * (v >> 12), 2);
        memcpy(o + 2, b64_pairs + 2 * (v & 0xfff), 2);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = b64_std[v >> 18];
        *o++ = b64_std[(v >> 12) & 63];
        if (pad) {
            *o++ = '=';
            *o++ = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *o++ = b64_std[v >> 18];
        *o++ = b64_std[(v >> 12) & 63];
        *o++ = b64_std[(v >> 6) & 63];
        if (pad)
            *o++ = '=';
    }
    return (size_t)(o - out);
}

int gw_base64_encode_buf(gw_buf *b, const uint8_t *in, size_t n, bool pad)
{
    size_t need = gw_base64_encoded_len(n, pad);
    int rc = gw_buf_reserve(b, need);
    if (rc)
        return rc;
    b->len += gw_base64_encode(in, n, (char *)b->data + b->len, pad);
    b->data[b->len] = 0;
    return 0;
}

/* 0..63 for alphabet characters, 64 for '=', 255 invalid; the URL-safe
 * characters map to 62/63 too and are told apart by the caller. */
static int b64_value(unsigned char c, int *alphabet)
{
    if (c == '-' || c == '_') {
        if (*alphabet == 1) return -1;
        *alphabet = 2;
        return c == '-' ? 62 : 63;
    }
    int v = gw_base64_std_value(c);
    if (v >= 62) {
        if (*alphabet == 2) return -1;
        *alphabet = 1;
    }
    return v;
}

long gw_base64_decode(const char *in, size_t n, uint8_t *out, size_t *err_at)
{
    int alphabet = 0; /* 0 unknown, 1 standard, 2 url-safe */
    size_t end = n;
    /* Padding only at the very end: at most two '='. */
    size_t pads = 0;
    while (end > 0 && in[end - 1] == '=' && pads < 2) {
        end--;
        pads++;
    }
    if (pads && (end + pads) % 4 != 0) {
        if (err_at) *err_at = end;
        return -1;
    }
    if (end % 4 == 1) {
        if (err_at) *err_at = end - 1;
        return -1;
    }
    uint8_t *o = out;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < end; i++) {
        int v = b64_value((unsigned char)in[i], &alphabet);
        if (v < 0) {
            if (err_at) *err_at = i;
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero (canonical encoding is not required by
     * ProtoJSON parsers, so we accept non-zero ones as the major
     * implementations do). */
    return (long)(o - out);
}

int gw_base64_decode_buf(gw_buf *b, const char *in, size_t n, size_t *err_at)
{
    int rc = gw_buf_reserve(b, n / 4 * 3 + 3);
    if (rc)
        return rc;
    long got = gw_base64_decode(in, n, b->data + b->len, err_at);
    if (got < 0)
        return GW_EPARSE;
    b->len += (size_t)got;
    b->data[b->len] = 0;
    return 0;
}

static const char hex_upper[] = "0123456789ABCDEF";

int gw_grpc_message_encode(gw_buf *b, const char *s, size_t n)
{
    int rc = gw_buf_reserve(b, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c <= 0x7e && c != '%') {
            rc = gw_buf_append_byte(b, c);
        } else {
            char esc[3] = {'%', hex_upper[c >> 4], hex_upper[c & 15]};
            rc = gw_buf_append(b, esc, 3);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int gw_grpc_message_decode(gw_buf *b, const char *s, size_t n)
{
    int rc = gw_buf_reserve(b, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n) {
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                b->data[b->len++] = (uint8_t)(hi << 4 | lo);
                i += 2;
                continue;
            }
        }
        b->data[b->len++] = c;
    }
    b->data[b->len] = 0;
    return 0;
}

int gw_url_decode(gw_buf *b, const char *s, size_t n, bool keep_slash, bool plus_as_space)
{
    int rc = gw_buf_reserve(b, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return GW_EPARSE;
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return GW_EPARSE;
            uint8_t v = (uint8_t)(hi << 4 | lo);
            if (keep_slash && v == '/') {
                b->data[b->len++] = '%';
                b->data[b->len++] = (uint8_t)s[i + 1];
                b->data[b->len++] = (uint8_t)s[i + 2];
            } else {
                b->data[b->len++] = v;
            }
            i += 2;
        } else if (c == '+' && plus_as_space) {
            b->data[b->len++] = ' ';
        } else {
            b->data[b->len++] = c;
        }
    }
    b->data[b->len] = 0;
    return 0;
}

bool gw_strn_case_eq(const char *s, size_t n, const char *lit)
{
    size_t i = 0;
    for (; i < n; i++) {
        unsigned char a = (unsigned char)s[i], c = (unsigned char)lit[i];
        if (!c)
            return false;
        if (a >= 'A' && a <= 'Z') a = (unsigned char)(a + 32);
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
        if (a != c)
            return false;
    }
    return lit[i] == 0;
}

bool gw_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; min = 0x80; }
        else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; min = 0x800; }
        else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return false;
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

uint64_t gw_hash(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

bool gw_metadata_key_ok(const char *key, size_t n)
{
    if (n == 0 || (n >= 5 && gw_strn_case_eq(key, 5, "grpc-")))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

bool gw_metadata_key_reserved(const char *key, size_t n)
{
    static const char *const reserved[] = {"te", "content-type", "user-agent", "connection",
                                           "host", "transfer-encoding", "keep-alive",
                                           "upgrade", "proxy-connection", "content-length"};
    if (n >= 5 && gw_strn_case_eq(key, 5, "grpc-"))
        return true;
    for (size_t i = 0; i < GW_ARRAY_LEN(reserved); i++)
        if (strlen(reserved[i]) == n && gw_strn_case_eq(key, n, reserved[i]))
            return true;
    return false;
}

bool gw_metadata_value_ok(const char *value, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] > 0x7e)
            return false;
    return true;
}

/* ---- grpc-timeout ---------------------------------------------------------- */

#define TIMEOUT_MAX_VALUE 99999999ull

static const struct {
    char unit;
    uint64_t ns;
} timeout_units[] = {
    {'n', 1ull},
    {'u', 1000ull},
    {'m', 1000000ull},
    {'S', 1000000000ull},
    {'M', 60000000000ull},
    {'H', 3600000000000ull},
};

/*
 * The value is rounded up (a backend must not give up before we do) in the
 * finest unit where it fits in 8 digits, then moved to a coarser unit while
 * that is exact, so that common values read naturally ("250m", "5S").
 */
void gw_grpc_timeout_format(uint64_t remaining_ns, char out[static 10])
{
    size_t u = 0;
    uint64_t v = 0;
    for (u = 0; u < GW_ARRAY_LEN(timeout_units); u++) {
        uint64_t unit = timeout_units[u].ns;
        v = remaining_ns / unit + (remaining_ns % unit != 0);
        /* Always true by the hours at the latest: 2^64 ns is 5,124,095 H. */
        if (v <= TIMEOUT_MAX_VALUE)
            break;
    }
    while (u + 1 < GW_ARRAY_LEN(timeout_units) && v != 0) {
        uint64_t ratio = timeout_units[u + 1].ns / timeout_units[u].ns;
        if (v % ratio != 0)
            break;
        v /= ratio;
        u++;
    }
    snprintf(out, 10, "%llu%c", (unsigned long long)v, timeout_units[u].unit);
}

int gw_grpc_timeout_parse(const char *s, size_t n, uint64_t *ns)
{
    if (!s || n < 2 || n > 9)
        return GW_EPARSE;
    uint64_t v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return GW_EPARSE;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    for (size_t u = 0; u < GW_ARRAY_LEN(timeout_units); u++) {
        if (timeout_units[u].unit == s[n - 1]) {
            /* 8 digits of hours (3.6e20 ns) do not fit in 64 bits:
             * saturate at INT64_MAX (292 years), "no deadline worth
             * tracking" either way, and safe for signed callers. */
            uint64_t unit = timeout_units[u].ns;
            *ns = v > (uint64_t)INT64_MAX / unit ? (uint64_t)INT64_MAX : v * unit;
            return 0;
        }
    }
    return GW_EPARSE;
}
