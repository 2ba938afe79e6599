/*
 * Fuzz target for the upstream parsers that see backend bytes: the gRPC
 * message deframer (with and without gzip) and the grpc-timeout parser.
 * Input layout: byte 0 = options (bit 0: grpc-encoding gzip; bits 1-3:
 * chunk size 1..8 << k; bits 4-7: max message 16 << n), then the bytes of
 * the response body as they would arrive in DATA frames.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/upstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct totals {
    size_t wire;
    size_t bytes;
} totals;

static int count(void *ctx, const uint8_t *msg, size_t len, size_t wire_len)
{
    totals *t = ctx;
    t->wire += wire_len;
    t->bytes += len;
    /* Touch every byte so ASan sees a bad pointer or length at once. */
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < len; i++)
        sink ^= msg[i];
    (void)sink;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint64_t ns;
    (void)gw_grpc_timeout_parse((const char *)data, GW_MIN(size, (size_t)10), &ns);

    uint8_t opt = data[0];
    size_t chunk = (size_t)1 << ((opt >> 1) & 7);
    size_t max = (size_t)16 << (opt >> 4);
    gw_deframer d;
    gw_error e;
    gw_deframer_init(&d, max);
    if (opt & 1)
        gw_deframer_set_encoding(&d, "gzip", 4, &e);
    totals t = {0, 0};
    int rc = 0;
    for (size_t off = 1; off < size && rc == 0; off += chunk)
        rc = gw_deframer_push(&d, data + off, GW_MIN(chunk, size - off), count, &t, &e);
    if (t.wire > size - 1)
        abort(); /* more bytes handed out than went in */
    gw_deframer_free(&d);
    return 0;
}
