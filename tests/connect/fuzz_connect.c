/*
 * Fuzz target for the Connect parsers: the first byte picks the parser and
 * a read size, the rest is its input — a streaming request body fed to the
 * envelope scanner in pieces (and reassembled envelopes gunzipped as the
 * adapter does), a unary GET query, a Content-Type / Accept-Encoding /
 * Connect-Timeout-Ms value, and the end-of-stream / error JSON builders
 * with the input as message and metadata.
 */
#include <stdlib.h>
#include <string.h>

#include "connect/connect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void scan_body(const uint8_t *data, size_t size, size_t step, bool compressed)
{
    gw_connect_scanner s;
    gw_connect_scanner_init(&s, 1 << 16, compressed);
    gw_error e;
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += step)
        rc = gw_connect_scanner_feed(&s, data + off, GW_MIN(step, size - off), &e);
    if (rc == 0)
        (void)gw_connect_scanner_finish(&s, &e);
    /* Whole envelopes as the adapter reassembles them. */
    size_t off = 0;
    uint8_t flags;
    const uint8_t *p;
    size_t len, n;
    while ((n = gw_connect_envelope_next(data + off, size - off, &flags, &p, &len)) != 0) {
        if (flags & GW_CONNECT_FLAG_COMPRESSED) {
            gw_buf out;
            gw_buf_init(&out, 0);
            (void)gw_connect_gunzip(p, len, 1 << 16, &out, &e);
            gw_buf_free(&out);
        }
        off += n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned pick = data[0] & 7;
    size_t step = (size_t)(data[0] >> 3) + 1;
    data++;
    size--;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    gw_error e;
    switch (pick) {
    case 0:
    case 1:
        scan_body(data, size, step, pick == 1);
        break;
    case 2: {
        gw_buf m;
        gw_buf_init(&m, 1 << 16);
        gw_connect_get g;
        if (gw_connect_get_parse(text, size, &g, &m, &e) == 0 &&
            g.compression == GW_CONNECT_GZIP && m.len) {
            gw_buf out;
            gw_buf_init(&out, 0);
            (void)gw_connect_gunzip(m.data, m.len, 1 << 16, &out, &e);
            gw_buf_free(&out);
        }
        gw_buf_free(&m);
        (void)gw_connect_classify("GET", NULL, false, text, size);
        break;
    }
    case 3: {
        (void)gw_connect_classify("POST", text, step & 1, NULL, 0);
        (void)gw_connect_accepts_gzip(text);
        uint64_t ms;
        (void)gw_connect_timeout_parse(text, size, &ms);
        gw_connect_encoding enc;
        (void)gw_connect_encoding_parse(text, size, &enc);
        break;
    }
    case 4: {
        gw_buf out;
        gw_buf_init(&out, 0);
        (void)gw_connect_gunzip(data, size, 1 << 16, &out, &e);
        gw_buf_free(&out);
        break;
    }
    default: {
        /* The input as a google.rpc.Status blob, as message and as metadata. */
        gw_buf out;
        gw_buf_init(&out, 1 << 16);
        gw_connect_md md[2] = {{text, strlen(text), text, size / 2},
                               {"x-a", 3, text, strlen(text)}};
        (void)gw_connect_end_stream(&out, NULL, (int)(step % 18), text, data, size, md, 2);
        out.len = 0;
        (void)gw_connect_error_json(&out, NULL, (int)step, text, data, size);
        gw_buf_free(&out);
        break;
    }
    }
    free(text);
    return 0;
}
