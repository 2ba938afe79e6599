/* libFuzzer target: JSON -> protobuf (then protobuf -> JSON -> protobuf
 * must be stable). Input: selector byte (see fuzz_common.h), JSON text. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    gw_codec_options o;
    const gw_message_def *m = fuzz_setup(data[0], &o);
    gw_buf wire, json;
    gw_buf_init(&wire, 0);
    gw_buf_init(&json, 0);
    gw_error e;
    if (gw_codec_json_to_proto(fuzz_registry(), m, (const char *)data + 1, size - 1, &o, &wire,
                               &e) == 0) {
        int rc = gw_codec_proto_to_json(fuzz_registry(), m, wire.data, wire.len, &o, &json, &e);
        /* One depth rule both ways (docs/codec.md): whatever parses prints,
         * only the output cap may stop it. */
        if (rc != 0 && !(rc == GW_ELIMIT && strstr(e.msg, "output exceeds"))) {
            fprintf(stderr, "fuzz: parsed JSON does not print: %s\n", e.msg);
            abort();
        }
        if (rc == 0)
            fuzz_check_json(m, &o, &json);
    }
    gw_buf_free(&wire);
    gw_buf_free(&json);
    return 0;
}
