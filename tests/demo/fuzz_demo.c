/*
 * Fuzz target for the parsers of src/demo: the first byte picks one,
 *   0: request framing (the rest fed in pieces whose size the input picks),
 *   1: grpc-timeout,
 *   2: a ServerReflectionRequest answered over the embedded descriptor set.
 * The corpus in tests/demo/fuzz is replayed by the 'fuzz' suite.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "demo/internal.h"

extern const uint8_t gw_demo_reflect_data[];
extern const size_t gw_demo_reflect_len;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_message(void *owner, const uint8_t *msg, size_t len)
{
    size_t *total = owner;
    *total += len;
    /* Touch every byte so ASan checks the span the framer hands out. */
    volatile uint8_t x = 0;
    for (size_t i = 0; i < len; i++)
        x ^= msg[i];
    (void)x;
    return 0;
}

static const char *const services[] = {"demo.v1.UserService", "demo.v1.EchoService"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static dm_reflect *index;
    if (size < 2)
        return 0;
    uint8_t mode = data[0] % 3;
    uint8_t param = data[1];
    data += 2;
    size -= 2;
    switch (mode) {
    case 0: {
        dm_framer f;
        dm_framer_init(&f, 4096);
        size_t step = (size_t)(param % 16) + 1, total = 0;
        gw_error e;
        for (size_t pos = 0; pos < size; pos += step)
            if (dm_framer_feed(&f, data + pos, GW_MIN(step, size - pos), count_message, &total,
                               &e) != 0)
                break;
        dm_framer_free(&f);
        break;
    }
    case 1: {
        uint64_t ns;
        gw_grpc_timeout_parse((const char *)data, size, &ns);
        break;
    }
    case 2: {
        if (!index && dm_reflect_new(gw_demo_reflect_data, gw_demo_reflect_len, &index, NULL) != 0)
            abort();
        gw_buf out;
        gw_buf_init(&out, 1u << 24);
        dm_reflect_answer(index, services, 2, data, size, &out);
        gw_buf_free(&out);
        break;
    }
    }
    return 0;
}
