/* libFuzzer target: protobuf -> JSON (whatever prints must parse back and
 * print the same). Input: selector byte (see fuzz_common.h), wire bytes. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    gw_codec_options o;
    const gw_message_def *m = fuzz_setup(data[0], &o);
    gw_buf json;
    gw_buf_init(&json, 0);
    gw_error e;
    if (gw_codec_proto_to_json(fuzz_registry(), m, data + 1, size - 1, &o, &json, &e) == 0)
        fuzz_check_json(m, &o, &json);
    gw_buf_free(&json);
    return 0;
}
