/* The pure WebSocket pieces. See wsproto.h and docs/websocket.md. */
#include "wsproto/wsproto.h"

#include <string.h>

/* ---- SHA-1 ----------------------------------------------------------------------- */

static uint32_t rol32(uint32_t x, unsigned n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], x = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999u;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1u;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDCu;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6u;
        }
        uint32_t t = rol32(a, 5) + f + x + k + w[i];
        x = d;
        d = c;
        c = rol32(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += x;
}

void gw_wsproto_sha1(const uint8_t *in, size_t n, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
    size_t off = 0;
    for (; n - off >= 64; off += 64)
        sha1_block(h, in + off);
    uint8_t last[128];
    size_t rest = n - off;
    memcpy(last, in + off, rest);
    last[rest] = 0x80;
    size_t total = rest + 1 + 8 <= 64 ? 64 : 128;
    memset(last + rest + 1, 0, total - rest - 1);
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++)
        last[total - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, last);
    if (total == 128)
        sha1_block(h, last + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

/* ---- handshake ------------------------------------------------------------------- */

bool gw_wsproto_key_ok(const char *key)
{
    if (!key || strlen(key) != 24)
        return false;
    uint8_t out[18];
    size_t err_at;
    long n = gw_base64_decode(key, 24, out, &err_at);
    return n == 16;
}

void gw_wsproto_accept(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t in[128];
    size_t kl = strlen(key);
    if (kl > sizeof in - (sizeof guid - 1))
        kl = sizeof in - (sizeof guid - 1);
    memcpy(in, key, kl);
    memcpy(in + kl, guid, sizeof guid - 1);
    uint8_t digest[20];
    gw_wsproto_sha1(in, kl + sizeof guid - 1, digest);
    size_t w = gw_base64_encode(digest, sizeof digest, out, true);
    out[w] = 0;
}

static bool ows(char c) { return c == ' ' || c == '\t'; }

bool gw_wsproto_token_listed(const char *list, const char *token)
{
    if (!list)
        return false;
    size_t tl = strlen(token);
    const char *p = list;
    while (*p) {
        while (ows(*p) || *p == ',')
            p++;
        const char *s = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > s && ows(end[-1]))
            end--;
        if ((size_t)(end - s) == tl && gw_strn_case_eq(s, tl, token))
            return true;
    }
    return false;
}

/* ---- grpc-websockets --------------------------------------------------------------- */

static bool tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int gw_wsproto_parse_headers(const uint8_t *p, size_t n, gw_wsproto_header *out, size_t max,
                             size_t *count, gw_error *e)
{
    size_t k = 0, line = 0, off = 0;
    *count = 0;
    while (off < n) {
        line++;
        size_t s = off;
        while (off < n && p[off] != '\n')
            off++;
        size_t end = off;
        if (off < n)
            off++; /* the LF */
        if (end > s && p[end - 1] == '\r')
            end--;
        if (end == s)
            continue; /* an empty line */
        size_t colon = s;
        while (colon < end && p[colon] != ':')
            colon++;
        if (colon == end)
            return gw_error_set(e, GW_EPARSE, "header block line %zu has no ':'", line);
        if (colon == s)
            return gw_error_set(e, GW_EPARSE, "header block line %zu has an empty name", line);
        for (size_t i = s; i < colon; i++)
            if (!tchar(p[i]))
                return gw_error_set(e, GW_EPARSE,
                                    "header block line %zu: the name is not a token", line);
        size_t vs = colon + 1, ve = end;
        while (vs < ve && ows((char)p[vs]))
            vs++;
        while (ve > vs && ows((char)p[ve - 1]))
            ve--;
        for (size_t i = vs; i < ve; i++)
            if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
                return gw_error_set(e, GW_EPARSE,
                                    "header block line %zu: control character in the value",
                                    line);
        if (k == max)
            return gw_error_set(e, GW_ELIMIT, "more than %zu header block entries", max);
        out[k++] = (gw_wsproto_header){(const char *)p + s, colon - s, (const char *)p + vs,
                                       ve - vs};
    }
    *count = k;
    return 0;
}

int gw_wsproto_client_message(const uint8_t *p, size_t n, int *kind, const uint8_t **data,
                              size_t *len, gw_error *e)
{
    if (n == 0)
        return gw_error_set(e, GW_EPARSE, "empty grpc-websockets message (no control byte)");
    if (p[0] == 0) {
        *kind = GW_WSPROTO_DATA;
        *data = p + 1;
        *len = n - 1;
        return 0;
    }
    if (p[0] == 1) {
        if (n != 1)
            return gw_error_set(e, GW_EPARSE, "finish-send control byte followed by %zu bytes",
                                n - 1);
        *kind = GW_WSPROTO_FINISH;
        *data = NULL;
        *len = 0;
        return 0;
    }
    return gw_error_set(e, GW_EPARSE, "unknown grpc-websockets control byte %u", p[0]);
}
