/*
 * Fuzz target for the gRPC-Web request path: the first byte picks binary or
 * text mode and a read size, the rest is a request body fed through the
 * base64 decoder (text) and the frame scanner in pieces, as the front end
 * does.
 */
#include <stdlib.h>
#include <string.h>

#include "grpcweb/grpcweb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    bool text = data[0] & 1;
    size_t step = (size_t)(data[0] >> 1) + 1;
    data++;
    size--;
    gw_grpcweb_scanner s;
    gw_grpcweb_scanner_init(&s, 1 << 16, (step & 1) != 0);
    gw_grpcweb_b64 d;
    gw_grpcweb_b64_init(&d);
    gw_grpcweb_format f;
    (void)gw_grpcweb_classify((const char *)data, size, &f);
    gw_error e;
    uint8_t *out = malloc(gw_grpcweb_b64_max_out(step));
    if (!out)
        return 0;
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += step) {
        size_t n = GW_MIN(step, size - off);
        if (text) {
            size_t got = 0;
            rc = gw_grpcweb_b64_decode(&d, (const char *)data + off, n, out, &got, &e);
            if (rc == 0)
                rc = gw_grpcweb_scanner_feed(&s, out, got, &e);
        } else {
            rc = gw_grpcweb_scanner_feed(&s, data + off, n, &e);
        }
    }
    if (rc == 0 && text) {
        size_t got = 0;
        rc = gw_grpcweb_b64_finish(&d, out, &got, &e);
        if (rc == 0)
            rc = gw_grpcweb_scanner_feed(&s, out, got, &e);
    }
    if (rc == 0)
        (void)gw_grpcweb_scanner_finish(&s, &e);
    free(out);

    /* The trailer builder with the input as a metadata value. */
    gw_buf b;
    gw_buf_init(&b, 1 << 16);
    size_t start;
    if (gw_grpcweb_trailer_begin(&b, &start) == 0) {
        char *msg = malloc(size + 1);
        if (msg) {
            memcpy(msg, data, size);
            msg[size] = 0;
            (void)gw_grpcweb_trailer_add_status(&b, (int)(size % 17), msg, data, size);
            (void)gw_grpcweb_trailer_add(&b, msg, strlen(msg), msg, strlen(msg));
            free(msg);
        }
        gw_grpcweb_trailer_end(&b, start);
    }
    gw_buf_free(&b);
    return 0;
}
