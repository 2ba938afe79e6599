/*
 * Fuzz target for the grpc-websockets mapping and the handshake helpers:
 * the first byte picks what the rest is (a header block, a client
 * message, a Sec-WebSocket-Key, a token list), as the WebSocket module
 * feeds them.
 */
#include <stdlib.h>
#include <string.h>

#include "wsproto/wsproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    gw_error e;
    gw_error_clear(&e);
    switch (mode % 4) {
    case 0: {
        gw_wsproto_header h[16];
        size_t count = 0;
        if (gw_wsproto_parse_headers(data, size, h, 16, &count, &e) == 0) {
            for (size_t i = 0; i < count; i++) {
                /* Entries point inside the input. */
                if ((const uint8_t *)h[i].name < data ||
                    (const uint8_t *)h[i].value + h[i].value_len > data + size)
                    abort();
            }
        }
        break;
    }
    case 1: {
        int kind;
        const uint8_t *d;
        size_t len;
        if (gw_wsproto_client_message(data, size, &kind, &d, &len, &e) == 0 &&
            kind == GW_WSPROTO_DATA && (d != data + 1 || len != size - 1))
            abort();
        break;
    }
    default: {
        char *s = malloc(size + 1);
        if (!s)
            return 0;
        memcpy(s, data, size);
        s[size] = 0;
        if (mode % 4 == 2) {
            if (gw_wsproto_key_ok(s)) {
                char out[29];
                gw_wsproto_accept(s, out);
                if (strlen(out) != 28)
                    abort();
            }
        } else {
            (void)gw_wsproto_token_listed(s, "upgrade");
            (void)gw_wsproto_token_listed(s, GW_WSPROTO_GRPC);
        }
        free(s);
        break;
    }
    }
    return 0;
}
