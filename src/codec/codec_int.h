/* Private to src/codec: text forms shared by both directions. */
#ifndef GW_CODEC_INT_H
#define GW_CODEC_INT_H

#include "codec/codec.h"

/* Seconds from 0001-01-01T00:00:00Z and to 9999-12-31T23:59:59Z. */
#define GW_TS_MIN_SECONDS (-62135596800LL)
#define GW_TS_MAX_SECONDS 253402300799LL
#define GW_DUR_MAX_SECONDS 315576000000LL

/* Writers into a char array; each returns the number of chars written. */
size_t gw_codec_fmt_u64(char *out, uint64_t v);           /* needs 20 */
size_t gw_codec_fmt_i64(char *out, int64_t v);            /* needs 21 */
/* Shortest text that reads back to the same value; finite values only. */
size_t gw_codec_fmt_double(char *out, double v);          /* needs 32 */
size_t gw_codec_fmt_float(char *out, float v);            /* needs 32 */

/* Timestamp and Duration: GW_ERANGE when outside the ProtoJSON range.
 * out needs 40 chars; *n gets the length. */
int gw_codec_fmt_timestamp(char *out, size_t *n, int64_t seconds, int32_t nanos);
int gw_codec_fmt_duration(char *out, size_t *n, int64_t seconds, int32_t nanos);
/* GW_EPARSE for bad syntax, GW_ERANGE for a value out of range. */
int gw_codec_parse_timestamp(const char *s, size_t n, int64_t *seconds, int32_t *nanos);
int gw_codec_parse_duration(const char *s, size_t n, int64_t *seconds, int32_t *nanos);

/*
 * A JSON number (strict grammar) as an integer. GW_EPARSE when s is not a
 * JSON number, GW_ERANGE when it is not integral or |v| >= 2^64.
 * *neg is set for negative non-zero values; *mag the magnitude.
 */
int gw_codec_parse_integer(const char *s, size_t n, bool *neg, uint64_t *mag);
/* Strict JSON number grammar check. */
bool gw_codec_is_json_number(const char *s, size_t n);

/* FieldMask path conversions, appending to out. GW_ERANGE when the path
 * has no counterpart (snake->camel) / GW_EPARSE (camel->snake). */
int gw_codec_snake_to_camel(gw_buf *out, const char *s, size_t n);
int gw_codec_camel_to_snake(gw_buf *out, const char *s, size_t n);

/* The wire type a field of type t is written with (packed repeated fields
 * aside, which are GW_WIRE_LEN). */
static inline gw_wire_type gw_codec_wire_type_of(gw_field_type t)
{
    switch (t) {
    case GW_TYPE_DOUBLE:
    case GW_TYPE_FIXED64:
    case GW_TYPE_SFIXED64:
        return GW_WIRE_FIXED64;
    case GW_TYPE_FLOAT:
    case GW_TYPE_FIXED32:
    case GW_TYPE_SFIXED32:
        return GW_WIRE_FIXED32;
    case GW_TYPE_STRING:
    case GW_TYPE_BYTES:
    case GW_TYPE_MESSAGE:
        return GW_WIRE_LEN;
    case GW_TYPE_GROUP:
        return GW_WIRE_SGROUP;
    default:
        return GW_WIRE_VARINT;
    }
}

#endif
