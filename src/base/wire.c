/* Protobuf wire format reader and writer (see base.h). */
#include <string.h>

#include "base/base.h"

int gw_wire_read_varint(gw_wire_reader *rd, uint64_t *v)
{
    const uint8_t *p = rd->p;
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (p >= rd->end)
            return GW_EPARSE;
        uint8_t c = *p++;
        /* The tenth byte may only carry the top bit of a 64-bit value, but
         * protobuf parsers accept and truncate the rest: so do we. */
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            rd->p = p;
            *v = r;
            return 0;
        }
        if (shift == 63)
            return GW_EPARSE;
    }
    return GW_EPARSE;
}

int gw_wire_read_tag(gw_wire_reader *rd, uint32_t *field, gw_wire_type *wt)
{
    const uint8_t *save = rd->p;
    uint64_t v;
    if (gw_wire_read_varint(rd, &v))
        return GW_EPARSE;
    uint64_t num = v >> 3;
    unsigned t = (unsigned)(v & 7);
    if (num == 0 || num > GW_WIRE_MAX_FIELD || t > 5) {
        rd->p = save;
        return GW_EPARSE;
    }
    *field = (uint32_t)num;
    *wt = (gw_wire_type)t;
    return 0;
}

int gw_wire_read_fixed32(gw_wire_reader *rd, uint32_t *v)
{
    if (rd->end - rd->p < 4)
        return GW_EPARSE;
    const uint8_t *p = rd->p;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    rd->p += 4;
    return 0;
}

int gw_wire_read_fixed64(gw_wire_reader *rd, uint64_t *v)
{
    if (rd->end - rd->p < 8)
        return GW_EPARSE;
    const uint8_t *p = rd->p;
    uint64_t r = 0;
    for (int i = 7; i >= 0; i--)
        r = r << 8 | p[i];
    *v = r;
    rd->p += 8;
    return 0;
}

int gw_wire_read_len(gw_wire_reader *rd, const uint8_t **p, size_t *n)
{
    const uint8_t *save = rd->p;
    uint64_t len;
    if (gw_wire_read_varint(rd, &len))
        return GW_EPARSE;
    if (len > (uint64_t)(rd->end - rd->p)) {
        rd->p = save;
        return GW_EPARSE;
    }
    *p = rd->p;
    *n = (size_t)len;
    rd->p += len;
    return 0;
}

int gw_wire_skip(gw_wire_reader *rd, uint32_t field, gw_wire_type wt, unsigned max_depth)
{
    const uint8_t *save = rd->p;
    uint64_t v;
    uint32_t f;
    const uint8_t *p;
    size_t n;
    switch (wt) {
    case GW_WIRE_VARINT:
        return gw_wire_read_varint(rd, &v);
    case GW_WIRE_FIXED64:
        return gw_wire_read_fixed64(rd, &v);
    case GW_WIRE_FIXED32:
        if (rd->end - rd->p < 4)
            return GW_EPARSE;
        rd->p += 4;
        return 0;
    case GW_WIRE_LEN:
        return gw_wire_read_len(rd, &p, &n);
    case GW_WIRE_EGROUP:
        return GW_EPARSE; /* an end tag with no start */
    case GW_WIRE_SGROUP:
        if (max_depth == 0)
            return GW_ELIMIT;
        for (;;) {
            gw_wire_type t;
            int rc = gw_wire_read_tag(rd, &f, &t);
            if (rc == 0 && t == GW_WIRE_EGROUP) {
                if (f == field)
                    return 0;
                rc = GW_EPARSE;
            }
            if (rc == 0)
                rc = gw_wire_skip(rd, f, t, max_depth - 1);
            if (rc) {
                rd->p = save;
                return rc;
            }
        }
    }
    return GW_EPARSE;
}

size_t gw_wire_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

int gw_wire_put_varint(gw_buf *b, uint64_t v)
{
    /* Exactly what the encoding needs: reserving the 10-byte worst case
     * failed small varints near the buffer's max. */
    int rc = gw_buf_reserve(b, gw_wire_varint_size(v));
    if (rc)
        return rc;
    uint8_t *p = b->data + b->len;
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    b->len = (size_t)(p - b->data);
    b->data[b->len] = 0;
    return 0;
}

int gw_wire_put_tag(gw_buf *b, uint32_t field, gw_wire_type wt)
{
    return gw_wire_put_varint(b, (uint64_t)field << 3 | (uint64_t)wt);
}

int gw_wire_put_fixed32(gw_buf *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return gw_buf_append(b, t, 4);
}

int gw_wire_put_fixed64(gw_buf *b, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    return gw_buf_append(b, t, 8);
}

int gw_wire_put_len_field(gw_buf *b, uint32_t field, const void *p, size_t n)
{
    int rc = gw_wire_put_tag(b, field, GW_WIRE_LEN);
    if (!rc)
        rc = gw_wire_put_varint(b, n);
    if (!rc)
        rc = gw_buf_append(b, p, n);
    return rc;
}
