/* Wire helpers of the codec's own (the reader and writer are in base). */
#include "codec/codec.h"

int gw_codec_wrap_message(uint32_t field_number, const uint8_t *bytes, size_t len,
                          gw_buf *out)
{
    return gw_wire_put_len_field(out, field_number, bytes, len);
}
