/*
 * Transcoder unit tests. Each table reads as a specification of one rule
 * set of the ProtoJSON mapping (REFERENCE.md): the input, the options, and
 * the exact output bytes or the exact error code (plus a fragment of the
 * message, so that the error names the right place).
 *
 * argv[1]: descriptor set of schemas/test/codec_*.proto, argv[2]: demo.pb.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"
#include "codec/codec_int.h"
#include "schema/schema.h"

static gw_registry *reg;
static gw_registry *demo;

enum { EMIT = 1, PROTO = 2, INTS = 4, IGNORE = 8, PRETTY = 16 };

static void opts_from(gw_codec_options *o, int flags)
{
    gw_codec_options_init(o);
    o->emit_defaults = flags & EMIT;
    o->proto_names = flags & PROTO;
    o->enums_as_ints = flags & INTS;
    o->ignore_unknown = flags & IGNORE;
    o->indent = flags & PRETTY ? 2 : 0;
}

static const gw_message_def *msg(const char *name)
{
    const gw_message_def *m = gw_registry_message(reg, name);
    if (!m)
        m = gw_registry_message(demo, name);
    if (!m)
        fail_msg("no message %s", name);
    return m;
}

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    while (*h) {
        if (*h == ' ') {
            h++;
            continue;
        }
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
        h += 2;
    }
    return n;
}

static void tohex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = 0;
}

/* ------------------------------------------------------------------------
 * JSON -> protobuf -> JSON: the canonical form of each accepted input.
 */
typedef struct rt_case {
    const char *type;
    int flags;
    const char *in;
    const char *out;
} rt_case;

#define A "codec.test.AllTypes"
#define P2 "codec.test2.Proto2"
#define OTHER "codec.test2.Other"
/* Extension keys of codec_proto2.proto. */
#define X(name) "\"[codec.test2." name "]\""

static const rt_case roundtrips[] = {
    /* keys: JSON name out, both names in, json_name option, odd names */
    {A, 0, "{\"f_int32\":1}", "{\"fInt32\":1}"},
    {A, PROTO, "{\"fInt32\":1}", "{\"f_int32\":1}"},
    {A, 0, "{\"custom\":1,\"field_name9\":0}", NULL}, /* duplicate: see rejects */
    {A, 0, "{\"field_name9\":2}", "{\"custom\":2}"},
    {A, 0, "{\"FieldName7\":1,\"fieldName2\":2,\"FieldName8\":3,\"FieldName3\":4}",
     "{\"fieldName2\":2,\"FieldName3\":4,\"FieldName7\":1,\"FieldName8\":3}"},
    {A, 0, "{\"field_name1\":1,\"fieldName1\":2}", NULL},
    {A, 0, " \n\t{ \"fInt32\" : 1 } \r\n", "{\"fInt32\":1}"},
    /* 32-bit integers: numbers, strings, integral exponents */
    {A, 0, "{\"fInt32\":\"42\"}", "{\"fInt32\":42}"},
    {A, 0, "{\"fInt32\":1e2}", "{\"fInt32\":100}"},
    {A, 0, "{\"fInt32\":\"1e2\"}", "{\"fInt32\":100}"},
    {A, 0, "{\"fInt32\":100.000}", "{\"fInt32\":100}"},
    {A, 0, "{\"fInt32\":1.5e1}", "{\"fInt32\":15}"},
    {A, 0, "{\"fInt32\":-0}", "{}"},
    {A, 0, "{\"fInt32\":2147483647}", "{\"fInt32\":2147483647}"},
    {A, 0, "{\"fInt32\":-2147483648}", "{\"fInt32\":-2147483648}"},
    {A, 0, "{\"fUint32\":4294967295}", "{\"fUint32\":4294967295}"},
    {A, 0, "{\"fSint32\":-5,\"fFixed32\":7,\"fSfixed32\":-8}",
     "{\"fSint32\":-5,\"fFixed32\":7,\"fSfixed32\":-8}"},
    /* 64-bit integers: strings out, numbers or strings in */
    {A, 0, "{\"fInt64\":\"9223372036854775807\"}", "{\"fInt64\":\"9223372036854775807\"}"},
    {A, 0, "{\"fInt64\":-9223372036854775808}", "{\"fInt64\":\"-9223372036854775808\"}"},
    {A, 0, "{\"fUint64\":18446744073709551615}", "{\"fUint64\":\"18446744073709551615\"}"},
    {A, 0, "{\"fUint64\":\"18446744073709551615\"}", "{\"fUint64\":\"18446744073709551615\"}"},
    {A, 0, "{\"fInt64\":1e18}", "{\"fInt64\":\"1000000000000000000\"}"},
    {A, 0, "{\"fSint64\":\"-3\",\"fFixed64\":\"7\",\"fSfixed64\":-9}",
     "{\"fSint64\":\"-3\",\"fFixed64\":\"7\",\"fSfixed64\":\"-9\"}"},
    /* floating point */
    {A, 0, "{\"fDouble\":1.5}", "{\"fDouble\":1.5}"},
    {A, 0, "{\"fDouble\":\"1.5\"}", "{\"fDouble\":1.5}"},
    {A, 0, "{\"fDouble\":0.1}", "{\"fDouble\":0.1}"},
    {A, 0, "{\"fDouble\":\"NaN\"}", "{\"fDouble\":\"NaN\"}"},
    {A, 0, "{\"fDouble\":\"Infinity\"}", "{\"fDouble\":\"Infinity\"}"},
    {A, 0, "{\"fDouble\":\"-Infinity\"}", "{\"fDouble\":\"-Infinity\"}"},
    {A, 0, "{\"fDouble\":-0.0}", "{\"fDouble\":-0}"},
    {A, 0, "{\"fDouble\":1e308}", "{\"fDouble\":1e+308}"},
    {A, 0, "{\"fDouble\":1.7976931348623157e308}", "{\"fDouble\":1.7976931348623157e+308}"},
    {A, 0, "{\"fDouble\":123456789012345}", "{\"fDouble\":123456789012345}"},
    {A, 0, "{\"fDouble\":0.30000000000000004}", "{\"fDouble\":0.30000000000000004}"},
    {A, 0, "{\"fDouble\":1e-7}", "{\"fDouble\":1e-07}"},
    {A, 0, "{\"fFloat\":1.1}", "{\"fFloat\":1.1}"},
    {A, 0, "{\"fFloat\":3.4028235e38}", "{\"fFloat\":3.4028235e+38}"},
    {A, 0, "{\"fFloat\":-3.4028235e38}", "{\"fFloat\":-3.4028235e+38}"},
    {A, 0, "{\"fFloat\":1.17549435e-38}", "{\"fFloat\":1.1754944e-38}"},
    {A, 0, "{\"fFloat\":\"-Infinity\"}", "{\"fFloat\":\"-Infinity\"}"},
    /* bool, string, bytes */
    {A, 0, "{\"fBool\":true}", "{\"fBool\":true}"},
    {A, 0, "{\"fBool\":false}", "{}"},
    {A, 0, "{\"fString\":\"\\u00e9\\ud83d\\ude00\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\"}",
     "{\"fString\":\"\xc3\xa9\xf0\x9f\x98\x80\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\"}"},
    {A, 0, "{\"fString\":\"\xe4\xb8\xad\"}", "{\"fString\":\"\xe4\xb8\xad\"}"},
    {A, 0, "{\"fBytes\":\"AQID\"}", "{\"fBytes\":\"AQID\"}"},
    {A, 0, "{\"fBytes\":\"AQ\"}", "{\"fBytes\":\"AQ==\"}"},
    {A, 0, "{\"fBytes\":\"-_8\"}", "{\"fBytes\":\"+/8=\"}"},
    {A, 0, "{\"fBytes\":\"+/8=\"}", "{\"fBytes\":\"+/8=\"}"},
    {A, 0, "{\"fBytes\":\"\"}", "{}"},
    /* enums: names or numbers in, names out; unknown numbers kept */
    {A, 0, "{\"fColor\":\"GREEN\"}", "{\"fColor\":\"GREEN\"}"},
    {A, 0, "{\"fColor\":2}", "{\"fColor\":\"GREEN\"}"},
    {A, 0, "{\"fColor\":\"BLUE\"}", "{\"fColor\":\"BLUE\"}"},
    {A, 0, "{\"fColor\":99}", "{\"fColor\":99}"},
    {A, INTS, "{\"fColor\":\"GREEN\"}", "{\"fColor\":2}"},
    {A, 0, "{\"fAliased\":\"ALIAS_BAR\"}", "{\"fAliased\":\"ALIAS_FOO\"}"},
    {A, IGNORE, "{\"fColor\":\"PURPLE\",\"fInt32\":1}", "{\"fInt32\":1}"},
    {A, IGNORE, "{\"rColor\":[\"RED\",\"PURPLE\",\"GREEN\"]}", "{\"rColor\":[\"RED\",\"GREEN\"]}"},
    {A, IGNORE, "{\"mColor\":{\"a\":\"PURPLE\",\"b\":\"RED\"}}", "{\"mColor\":{\"b\":\"RED\"}}"},
    /* null: unset, except for Value and NullValue */
    {A, 0, "{\"fInt32\":null,\"fInner\":null,\"rInt32\":null,\"mString\":null}", "{}"},
    {A, 0, "{\"fValue\":null}", "{\"fValue\":null}"},
    {A, 0, "{\"fNull\":null}", "{}"},
    {A, 0, "{\"oneofNull\":null}", "{\"oneofNull\":null}"},
    {A, 0, "{\"rValue\":[null,1]}", "{\"rValue\":[null,1]}"},
    {A, 0, "{\"oneofString\":null,\"oneofUint32\":3}", "{\"oneofUint32\":3}"},
    /* presence: oneof members and `optional` print even at their default */
    {A, 0, "{\"oneofUint32\":0}", "{\"oneofUint32\":0}"},
    {A, 0, "{\"oneofInner\":{}}", "{\"oneofInner\":{}}"},
    {A, 0, "{\"oInt32\":0,\"oString\":\"\",\"oColor\":0}",
     "{\"oInt32\":0,\"oString\":\"\",\"oColor\":\"COLOR_UNSPECIFIED\"}"},
    {A, 0, "{\"fInner\":{}}", "{\"fInner\":{}}"},
    /* repeated, packed or not */
    {A, 0, "{\"rInt32\":[1,-2,3]}", "{\"rInt32\":[1,-2,3]}"},
    {A, 0, "{\"rInt32\":[]}", "{}"},
    {A, 0, "{\"rUnpacked\":[1,2]}", "{\"rUnpacked\":[1,2]}"},
    {A, 0, "{\"rInt64\":[\"1\",2],\"rUint64\":[\"18446744073709551615\"]}",
     "{\"rInt64\":[\"1\",\"2\"],\"rUint64\":[\"18446744073709551615\"]}"},
    {A, 0, "{\"rFloat\":[1.5,\"NaN\"],\"rDouble\":[-0.5],\"rBool\":[true,false]}",
     "{\"rFloat\":[1.5,\"NaN\"],\"rDouble\":[-0.5],\"rBool\":[true,false]}"},
    {A, 0, "{\"rString\":[\"a\",\"\"],\"rBytes\":[\"\",\"AA==\"]}",
     "{\"rString\":[\"a\",\"\"],\"rBytes\":[\"\",\"AA==\"]}"},
    {A, 0, "{\"rInner\":[{},{\"a\":1}],\"rColor\":[\"RED\",5]}",
     "{\"rInner\":[{},{\"a\":1}],\"rColor\":[\"RED\",5]}"},
    {A, 0, "{\"rSint32\":[-1],\"rSint64\":[\"-1\"],\"rFixed32\":[1],\"rFixed64\":[\"1\"],"
           "\"rSfixed32\":[-1],\"rSfixed64\":[\"-1\"],\"rUint32\":[4294967295]}",
     "{\"rUint32\":[4294967295],\"rSint32\":[-1],\"rSint64\":[\"-1\"],\"rFixed32\":[1],"
     "\"rFixed64\":[\"1\"],\"rSfixed32\":[-1],\"rSfixed64\":[\"-1\"]}"},
    /* maps: every key type as a string; sorted output */
    {A, 0, "{\"mInt32\":{\"-1\":2,\"3\":0}}", "{\"mInt32\":{\"-1\":2,\"3\":0}}"},
    {A, 0, "{\"mInt64\":{\"-9223372036854775808\":\"1\"}}",
     "{\"mInt64\":{\"-9223372036854775808\":\"1\"}}"},
    {A, 0, "{\"mUint32\":{\"4294967295\":1},\"mUint64\":{\"18446744073709551615\":\"2\"}}",
     "{\"mUint32\":{\"4294967295\":1},\"mUint64\":{\"18446744073709551615\":\"2\"}}"},
    {A, 0, "{\"mSint32\":{\"-2\":-2},\"mSint64\":{\"-3\":\"-3\"},\"mFixed32\":{\"4\":4},"
           "\"mFixed64\":{\"5\":\"5\"},\"mSfixed32\":{\"-6\":-6},\"mSfixed64\":{\"-7\":\"-7\"}}",
     "{\"mSint32\":{\"-2\":-2},\"mSint64\":{\"-3\":\"-3\"},\"mFixed32\":{\"4\":4},"
     "\"mFixed64\":{\"5\":\"5\"},\"mSfixed32\":{\"-6\":-6},\"mSfixed64\":{\"-7\":\"-7\"}}"},
    {A, 0, "{\"mBool\":{\"true\":false,\"false\":true}}",
     "{\"mBool\":{\"false\":true,\"true\":false}}"},
    {A, 0, "{\"mString\":{\"b\":\"2\",\"a\":\"1\",\"\":\"\"}}",
     "{\"mString\":{\"\":\"\",\"a\":\"1\",\"b\":\"2\"}}"},
    {A, 0, "{\"mFloat\":{\"1\":\"NaN\"},\"mDouble\":{\"1\":0.25},\"mBytes\":{\"k\":\"AQ==\"}}",
     "{\"mFloat\":{\"1\":\"NaN\"},\"mDouble\":{\"1\":0.25},\"mBytes\":{\"k\":\"AQ==\"}}"},
    {A, 0, "{\"mInner\":{\"k\":{},\"j\":{\"a\":1}},\"mColor\":{\"x\":\"GREEN\",\"y\":7}}",
     "{\"mInner\":{\"j\":{\"a\":1},\"k\":{}},\"mColor\":{\"x\":\"GREEN\",\"y\":7}}"},
    {A, 0, "{\"mString\":{}}", "{}"},
    /* wrappers: the wrapped value, defaults included */
    {A, 0, "{\"wInt32\":0,\"wString\":\"\",\"wBool\":false}",
     "{\"wBool\":false,\"wInt32\":0,\"wString\":\"\"}"},
    {A, 0, "{\"wInt64\":\"5\",\"wUint64\":5,\"wUint32\":7,\"wFloat\":\"NaN\",\"wDouble\":-1.5}",
     "{\"wInt64\":\"5\",\"wUint32\":7,\"wUint64\":\"5\",\"wFloat\":\"NaN\",\"wDouble\":-1.5}"},
    {A, 0, "{\"wBytes\":\"AQ==\",\"rWInt32\":[1,0]}", "{\"wBytes\":\"AQ==\",\"rWInt32\":[1,0]}"},
    {A, 0, "{\"wInt32\":null}", "{}"},
    /* Timestamp: RFC 3339, Z out, 0/3/6/9 digits, offsets in */
    {A, 0, "{\"fTimestamp\":\"1970-01-01T00:00:00Z\"}", "{\"fTimestamp\":\"1970-01-01T00:00:00Z\"}"},
    {A, 0, "{\"fTimestamp\":\"2024-01-02T03:04:05.1Z\"}",
     "{\"fTimestamp\":\"2024-01-02T03:04:05.100Z\"}"},
    {A, 0, "{\"fTimestamp\":\"2024-01-02T03:04:05.000001Z\"}",
     "{\"fTimestamp\":\"2024-01-02T03:04:05.000001Z\"}"},
    {A, 0, "{\"fTimestamp\":\"2024-01-02T03:04:05.123456789Z\"}",
     "{\"fTimestamp\":\"2024-01-02T03:04:05.123456789Z\"}"},
    {A, 0, "{\"fTimestamp\":\"2024-01-02T03:04:05.120000Z\"}",
     "{\"fTimestamp\":\"2024-01-02T03:04:05.120Z\"}"},
    {A, 0, "{\"fTimestamp\":\"0001-01-01T00:00:00Z\"}", "{\"fTimestamp\":\"0001-01-01T00:00:00Z\"}"},
    {A, 0, "{\"fTimestamp\":\"9999-12-31T23:59:59.999999999Z\"}",
     "{\"fTimestamp\":\"9999-12-31T23:59:59.999999999Z\"}"},
    {A, 0, "{\"fTimestamp\":\"2024-01-01T00:30:00+01:00\"}",
     "{\"fTimestamp\":\"2023-12-31T23:30:00Z\"}"},
    {A, 0, "{\"fTimestamp\":\"1969-12-31T16:00:00-08:00\"}",
     "{\"fTimestamp\":\"1970-01-01T00:00:00Z\"}"},
    {A, 0, "{\"fTimestamp\":\"2000-02-29T12:00:00Z\"}", "{\"fTimestamp\":\"2000-02-29T12:00:00Z\"}"},
    {A, 0, "{\"fTimestamp\":\"1960-06-15T01:02:03.5Z\"}",
     "{\"fTimestamp\":\"1960-06-15T01:02:03.500Z\"}"},
    /* Duration */
    {A, 0, "{\"fDuration\":\"0s\"}", "{\"fDuration\":\"0s\"}"},
    {A, 0, "{\"fDuration\":\"1.5s\"}", "{\"fDuration\":\"1.500s\"}"},
    {A, 0, "{\"fDuration\":\"-0.5s\"}", "{\"fDuration\":\"-0.500s\"}"},
    {A, 0, "{\"fDuration\":\"-1.000001s\"}", "{\"fDuration\":\"-1.000001s\"}"},
    {A, 0, "{\"fDuration\":\"0.000000001s\"}", "{\"fDuration\":\"0.000000001s\"}"},
    {A, 0, "{\"fDuration\":\"315576000000.999999999s\"}",
     "{\"fDuration\":\"315576000000.999999999s\"}"},
    {A, 0, "{\"fDuration\":\"-315576000000s\"}", "{\"fDuration\":\"-315576000000s\"}"},
    /* FieldMask */
    {A, 0, "{\"fFieldMask\":\"fooBar,baz.quxQuux,a\"}",
     "{\"fFieldMask\":\"fooBar,baz.quxQuux,a\"}"},
    {A, 0, "{\"fFieldMask\":\"\"}", "{\"fFieldMask\":\"\"}"},
    /* Struct, Value, ListValue */
    {A, 0, "{\"fStruct\":{\"a\":[1,\"x\",null,true,{\"b\":{}}],\"c\":-2.5}}",
     "{\"fStruct\":{\"a\":[1,\"x\",null,true,{\"b\":{}}],\"c\":-2.5}}"},
    {A, 0, "{\"fStruct\":{}}", "{\"fStruct\":{}}"},
    {A, 0, "{\"fValue\":{\"k\":[]}}", "{\"fValue\":{\"k\":[]}}"},
    {A, 0, "{\"fValue\":\"s\"}", "{\"fValue\":\"s\"}"},
    {A, 0, "{\"fValue\":1e3}", "{\"fValue\":1000}"},
    {A, 0, "{\"fValue\":false}", "{\"fValue\":false}"},
    {A, 0, "{\"fList\":[1,[2,[]],{}]}", "{\"fList\":[1,[2,[]],{}]}"},
    {A, 0, "{\"fList\":[]}", "{\"fList\":[]}"},
    {A, 0, "{\"rStruct\":[{},{\"a\":null}]}", "{\"rStruct\":[{},{\"a\":null}]}"},
    /* Any: regular payloads inline, special-JSON payloads under "value" */
    {A, 0, "{\"fAny\":{\"@type\":\"type.googleapis.com/codec.test.Inner\",\"a\":1}}",
     "{\"fAny\":{\"@type\":\"type.googleapis.com/codec.test.Inner\",\"a\":1}}"},
    {A, 0, "{\"fAny\":{\"a\":1,\"b\":\"x\",\"@type\":\"type.googleapis.com/codec.test.Inner\"}}",
     "{\"fAny\":{\"@type\":\"type.googleapis.com/codec.test.Inner\",\"a\":1,\"b\":\"x\"}}"},
    {A, 0, "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"1s\"}}",
     "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"1s\"}}"},
    {A, 0, "{\"fAny\":{\"value\":\"2024-01-01T00:00:00Z\",\"@type\":\"type.googleapis.com/google.protobuf.Timestamp\"}}",
     "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Timestamp\",\"value\":\"2024-01-01T00:00:00Z\"}}"},
    {A, 0, "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Struct\",\"value\":{\"a\":1}}}",
     "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Struct\",\"value\":{\"a\":1}}}"},
    {A, 0, "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Value\",\"value\":[null]}}",
     "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Value\",\"value\":[null]}}"},
    {A, 0, "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Int32Value\",\"value\":0}}",
     "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Int32Value\",\"value\":0}}"},
    {A, 0, "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.FieldMask\",\"value\":\"aB\"}}",
     "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.FieldMask\",\"value\":\"aB\"}}"},
    {A, 0, "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Empty\"}}",
     "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Empty\"}}"},
    {A, 0, "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Any\",\"value\":"
           "{\"@type\":\"type.googleapis.com/codec.test.Inner\",\"c\":[1]}}}",
     "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Any\",\"value\":"
     "{\"@type\":\"type.googleapis.com/codec.test.Inner\",\"c\":[1]}}}"},
    {A, 0, "{\"fAny\":{\"@type\":\"type.googleapis.com/codec.test.AllTypes\",\"fAny\":"
           "{\"@type\":\"type.googleapis.com/google.protobuf.Int64Value\",\"value\":\"1\"}}}",
     "{\"fAny\":{\"@type\":\"type.googleapis.com/codec.test.AllTypes\",\"fAny\":"
     "{\"@type\":\"type.googleapis.com/google.protobuf.Int64Value\",\"value\":\"1\"}}}"},
    {A, 0, "{\"fAny\":{}}", "{\"fAny\":{}}"},
    {A, 0, "{\"fEmpty\":{}}", "{\"fEmpty\":{}}"},
    {A, 0, "{\"recursive\":{\"recursive\":{\"fBool\":true}}}",
     "{\"recursive\":{\"recursive\":{\"fBool\":true}}}"},
    /* emit defaults: fields without presence; not oneofs, optional, messages */
    {"codec.test.Echo", EMIT, "{}", "{\"message\":\"\",\"number\":\"0\"}"},
    {"codec.test.Inner", EMIT, "{}", "{\"a\":0,\"b\":\"\",\"c\":[]}"},
    {"codec.test.Inner", EMIT | PROTO, "{\"child\":{}}",
     "{\"a\":0,\"b\":\"\",\"c\":[],\"child\":{\"a\":0,\"b\":\"\",\"c\":[]}}"},
    {"codec.test.Record", EMIT | INTS, "{\"id\":\"1\"}",
     "{\"id\":\"1\",\"name\":\"\",\"email\":\"\",\"kind\":0,\"labels\":{},\"tags\":[],"
     "\"avatar\":\"\",\"score\":0,\"active\":false}"},
    {"codec.test.Record", EMIT, "{}",
     "{\"id\":\"0\",\"name\":\"\",\"email\":\"\",\"kind\":\"KIND_UNSPECIFIED\",\"labels\":{},"
     "\"tags\":[],\"avatar\":\"\",\"score\":0,\"active\":false}"},
    /* pretty printing */
    {"codec.test.Inner", PRETTY, "{\"a\":1,\"c\":[1,2],\"child\":{}}",
     "{\n  \"a\": 1,\n  \"c\": [\n    1,\n    2\n  ],\n  \"child\": {}\n}"},
    {"codec.test.Inner", PRETTY, "{}", "{}"},
    {A, PRETTY, "{\"mString\":{\"k\":\"v\"}}", "{\n  \"mString\": {\n    \"k\": \"v\"\n  }\n}"},
    /* unknown fields ignored on request */
    {A, IGNORE, "{\"nope\":{\"deep\":[1,{}]},\"fInt32\":1,\"n2\":null}", "{\"fInt32\":1}"},
    {A, IGNORE, "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"1s\",\"x\":1}}",
     "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"1s\"}}"},
    /* proto2: presence, groups, closed enums, required not enforced */
    {P2, 0, "{}", "{}"},
    {P2, 0, "{\"reqInt64\":\"0\",\"optString\":\"\",\"optBool\":false}",
     "{\"optString\":\"\",\"optBool\":false,\"reqInt64\":\"0\"}"},
    {P2, 0, "{\"optEnum\":\"CLOSED_TWO\",\"repEnum\":[\"CLOSED_ONE\",0]}",
     "{\"optEnum\":\"CLOSED_TWO\",\"repEnum\":[\"CLOSED_ONE\",\"CLOSED_ZERO\"]}"},
    {P2, 0, "{\"data\":{\"groupInt32\":1,\"groupUint32\":2},\"item\":[{\"name\":\"a\"},{}]}",
     "{\"data\":{\"groupInt32\":1,\"groupUint32\":2},\"item\":[{\"name\":\"a\"},{}]}"},
    {P2, 0, "{\"repPacked\":[1,2],\"repInt32\":[3],\"mapEnum\":{\"k\":\"CLOSED_ONE\"}}",
     "{\"repInt32\":[3],\"repPacked\":[1,2],\"mapEnum\":{\"k\":\"CLOSED_ONE\"}}"},
    {P2, 0, "{\"child\":{\"child\":{\"optInt32\":-1}},\"pickStr\":\"s\"}",
     "{\"child\":{\"child\":{\"optInt32\":-1}},\"pickStr\":\"s\"}"},
    {P2, EMIT, "{}", "{\"repInt32\":[],\"repPacked\":[],\"repEnum\":[],\"mapEnum\":{},\"item\":[]}"},
    /* proto2 extensions: "[full.name]" keys, values mapped as fields of
     * their type, printed among the fields by number */
    {P2, 0, "{" X("ext_int32") ":5}", "{" X("ext_int32") ":5}"},
    {P2, 0, "{" X("ext_int32") ":\"-7\"}", "{" X("ext_int32") ":-7}"},
    {P2, 0, "{" X("ext_int32") ":0}", "{" X("ext_int32") ":0}"}, /* presence */
    {P2, 0, "{" X("ext_int32") ":null}", "{}"},
    {P2, 0, "{" X("ext_uint64") ":18446744073709551615," X("ext_bytes") ":\"AQI\","
            X("ext_enum") ":1," X("ext_string") ":\"s\"}",
     "{" X("ext_string") ":\"s\"," X("ext_enum") ":\"CLOSED_ONE\"," X("ext_bytes") ":\"AQI=\","
     X("ext_uint64") ":\"18446744073709551615\"}"},
    {P2, 0, "{" X("ext_repeated") ":[1,2]," X("ext_packed") ":[\"-1\",2]," X("ext_enums")
            ":[\"CLOSED_TWO\",0]}",
     "{" X("ext_repeated") ":[1,2]," X("ext_packed") ":[\"-1\",\"2\"]," X("ext_enums")
     ":[\"CLOSED_TWO\",\"CLOSED_ZERO\"]}"},
    {P2, 0, "{" X("ext_repeated") ":[]}", "{}"},
    {P2, 0, "{" X("ext_message") ":{\"optInt32\":1," X("ext_int32") ":2}}",
     "{" X("ext_message") ":{\"optInt32\":1," X("ext_int32") ":2}}"},
    {P2, 0, "{" X("ext_message") ":{}}", "{" X("ext_message") ":{}}"},
    {P2, 0, "{" X("extgroup") ":{\"gval\":3}}", "{" X("extgroup") ":{\"gval\":3}}"},
    {P2, 0, "{" X("Extender.nested_words") ":[\"a\",\"b\"]," X("Extender.nested")
            ":{\"label\":\"x\"}}",
     "{" X("Extender.nested") ":{\"label\":\"x\"}," X("Extender.nested_words")
     ":[\"a\",\"b\"]}"},
    {P2, 0, "{" X("ext_int32") ":1,\"optInt32\":2,\"child\":{" X("ext_string") ":\"c\"}}",
     "{\"optInt32\":2,\"child\":{" X("ext_string") ":\"c\"}," X("ext_int32") ":1}"},
    {OTHER, 0, "{\"z\":1," X("other_ext") ":2,\"a\":3}",
     "{\"a\":3," X("other_ext") ":2,\"z\":1}"},
    /* the key is the same with proto names; enums as numbers apply */
    {P2, PROTO | INTS, "{" X("ext_enum") ":\"CLOSED_TWO\",\"opt_int32\":1}",
     "{\"opt_int32\":1," X("ext_enum") ":2}"},
    /* emit defaults does not invent absent extensions */
    {P2, EMIT, "{" X("ext_int32") ":0}",
     "{\"repInt32\":[],\"repPacked\":[],\"repEnum\":[],\"mapEnum\":{},\"item\":[],"
     X("ext_int32") ":0}"},
    {P2, PRETTY, "{" X("ext_repeated") ":[1]}", "{\n  " X("ext_repeated") ": [\n    1\n  ]\n}"},
    /* inside an Any */
    {A, 0, "{\"fAny\":{" X("ext_int32") ":1,\"@type\":\"type.googleapis.com/codec.test2.Proto2\"}}",
     "{\"fAny\":{\"@type\":\"type.googleapis.com/codec.test2.Proto2\"," X("ext_int32") ":1}}"},
    /* ignore unknown: other messages' extensions and unknown names skipped */
    {P2, IGNORE, "{" X("other_ext") ":1,\"[no.such.ext]\":{\"x\":[1]}," X("ext_int32") ":3,"
                 X("Extender") ":1,\"[]\":2}",
     "{" X("ext_int32") ":3}"},
};

static void test_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(roundtrips); i++) {
        const rt_case *c = &roundtrips[i];
        if (!c->out)
            continue;
        gw_codec_options o;
        opts_from(&o, c->flags);
        gw_buf wire, json;
        gw_buf_init(&wire, 0);
        gw_buf_init(&json, 0);
        gw_error e;
        const gw_message_def *m = msg(c->type);
        int rc = gw_codec_json_to_proto(reg, m, c->in, strlen(c->in), &o, &wire, &e);
        if (rc)
            fail_msg("case %zu %s: json_to_proto %d %s", i, c->in, rc, e.msg);
        rc = gw_codec_proto_to_json(reg, m, wire.data, wire.len, &o, &json, &e);
        if (rc)
            fail_msg("case %zu %s: proto_to_json %d %s", i, c->in, rc, e.msg);
        if (strcmp((const char *)json.data, c->out) != 0)
            fail_msg("case %zu %s:\n  got  %s\n  want %s", i, c->in, json.data, c->out);
        /* The canonical output parses back to the same bytes. */
        gw_buf again;
        gw_buf_init(&again, 0);
        gw_codec_options plain;
        opts_from(&plain, c->flags & (INTS | PROTO));
        rc = gw_codec_json_to_proto(reg, m, (const char *)json.data, json.len, &plain, &again, &e);
        if (rc)
            fail_msg("case %zu: reparse of %s: %s", i, json.data, e.msg);
        gw_buf json2;
        gw_buf_init(&json2, 0);
        rc = gw_codec_proto_to_json(reg, m, again.data, again.len, &o, &json2, &e);
        assert_int_equal(rc, 0);
        if (strcmp((const char *)json2.data, c->out) != 0)
            fail_msg("case %zu: second round trip %s", i, json2.data);
        gw_buf_free(&json2);
        gw_buf_free(&again);
        gw_buf_free(&wire);
        gw_buf_free(&json);
    }
}

/* ------------------------------------------------------------------------
 * JSON -> protobuf rejections: code and where.
 */
typedef struct rej_case {
    const char *type;
    int flags;
    const char *in;
    int rc;
    const char *msg; /* fragment of the error message */
} rej_case;

static const rej_case rejects[] = {
    /* not JSON */
    {A, 0, "", GW_EPARSE, "expected an object"},
    {A, 0, "{\"fInt32\":", GW_EPARSE, "end of input"},
    {A, 0, "{", GW_EPARSE, "expected a string key"},
    {A, 0, "{}x", GW_EPARSE, "trailing"},
    {A, 0, "{} {}", GW_EPARSE, "trailing"},
    {A, 0, "[]", GW_EPARSE, "expected an object"},
    {A, 0, "null", GW_EPARSE, "got null"},
    {A, 0, "{\"fInt32\":1,}", GW_EPARSE, "expected a string key"},
    {A, 0, "{\"fInt32\" 1}", GW_EPARSE, "expected ':'"},
    {A, 0, "{'fInt32':1}", GW_EPARSE, "expected a string key"},
    {A, 0, "{\"fInt32\":1 \"fBool\":true}", GW_EPARSE, "expected ',' or '}'"},
    {A, 0, "{\"fString\":\"abc}", GW_EPARSE, "unterminated string"},
    {A, 0, "{\"fString\":\"a\nb\"}", GW_EPARSE, "control character"},
    {A, 0, "{\"fString\":\"\\x\"}", GW_EPARSE, "bad escape"},
    {A, 0, "{\"fString\":\"\\u12\"}", GW_EPARSE, "bad \\u escape"},
    {A, 0, "{\"fString\":\"\\ud800\"}", GW_EPARSE, "unpaired surrogate"},
    {A, 0, "{\"fString\":\"\\udc00\\ud800\"}", GW_EPARSE, "unpaired surrogate"},
    {A, 0, "{\"fString\":\"\xff\"}", GW_EPARSE, "invalid UTF-8"},
    {A, 0, "{\"fString\":\"\xc0\xaf\"}", GW_EPARSE, "invalid UTF-8"},
    {A, 0, "{\"fString\":\"\\n\xed\xa0\x80\"}", GW_EPARSE, "invalid UTF-8"},
    {A, 0, "{\"fBool\":tru}", GW_EPARSE, "unexpected character"},
    {A, 0, "{\"fInt32\":NaN}", GW_EPARSE, "unexpected character"},
    /* keys */
    {A, 0, "{\"fInt32\":1,\"fInt32\":2}", GW_EPARSE, "duplicate field \"fInt32\""},
    {A, 0, "{\"fInt32\":1,\"f_int32\":2}", GW_EPARSE, "duplicate field"},
    {A, 0, "{\"custom\":1,\"field_name9\":0}", GW_EPARSE, "duplicate field"},
    {A, 0, "{\"field_name1\":1,\"fieldName1\":2}", GW_EPARSE, "duplicate field"},
    {A, 0, "{\"oneofUint32\":1,\"oneofString\":\"a\"}", GW_EPARSE, "oneof \"choice\""},
    {A, 0, "{\"oneofNull\":null,\"oneofString\":\"a\"}", GW_EPARSE, "oneof"},
    {A, 0, "{\"nope\":1}", GW_EPARSE, "unknown field \"nope\""},
    {A, 0, "{\"FINT32\":1}", GW_EPARSE, "unknown field"},
    /* integers */
    {A, 0, "{\"fInt32\":1.5}", GW_ERANGE, "fInt32: '1.5' is not an integer"},
    {A, 0, "{\"fInt32\":\"1.5\"}", GW_ERANGE, "not an integer"},
    {A, 0, "{\"fInt32\":1e-1}", GW_ERANGE, "not an integer"},
    {A, 0, "{\"fInt32\":2147483648}", GW_ERANGE, "out of range"},
    {A, 0, "{\"fInt32\":-2147483649}", GW_ERANGE, "out of range"},
    {A, 0, "{\"fUint32\":4294967296}", GW_ERANGE, "out of range"},
    {A, 0, "{\"fUint32\":-1}", GW_ERANGE, "out of range"},
    {A, 0, "{\"fInt64\":\"9223372036854775808\"}", GW_ERANGE, "out of range"},
    {A, 0, "{\"fInt64\":-9223372036854775809}", GW_ERANGE, "out of range"},
    {A, 0, "{\"fUint64\":18446744073709551616}", GW_ERANGE,
     "fUint64: '18446744073709551616' is out of range (at byte 11)"},
    {A, 0, "{\"fUint64\":\"-1\"}", GW_ERANGE, "out of range"},
    {A, 0, "{\"fInt32\":1e400}", GW_ERANGE, "'1e400' is out of range (at byte 10)"},
    {A, 0, "{\"fInt64\":1e-400}", GW_ERANGE, "fInt64: '1e-400' is not an integer"},
    {A, 0, "{\"fUint32\":\"4294967295.000000000000000000000000000000000000000000000000000001\"}",
     GW_ERANGE, "is not an integer"},
    {A, 0, "{\"fUint64\":18446744073709551615.5}", GW_ERANGE, "is out of range"},
    {A, 0, "{\"rInner\":[{},{\"c\":[1, 0.5]}]}", GW_ERANGE,
     "rInner[1].c[1]: '0.5' is not an integer (at byte 23)"},
    {A, 0, "{\"fInt32\":\"abc\"}", GW_EPARSE, "expected an integer"},
    {A, 0, "{\"fInt32\":\" 1\"}", GW_EPARSE, "expected an integer"},
    {A, 0, "{\"fInt32\":\"0x10\"}", GW_EPARSE, "expected an integer"},
    {A, 0, "{\"fInt32\":true}", GW_EPARSE, "expected an integer"},
    {A, 0, "{\"fInt32\":01}", GW_EPARSE, "malformed number"},
    {A, 0, "{\"fInt32\":+1}", GW_EPARSE, "unexpected character"},
    {A, 0, "{\"fInt32\":1.}", GW_EPARSE, "malformed number"},
    {A, 0, "{\"fInt32\":-}", GW_EPARSE, "malformed number"},
    {A, 0, "{\"fInt32\":[1]}", GW_EPARSE, "expected a int32 value"},
    /* floating point */
    {A, 0, "{\"fDouble\":.5}", GW_EPARSE, "unexpected character"},
    {A, 0, "{\"fDouble\":1e309}", GW_ERANGE, "out of range for double"},
    {A, 0, "{\"fDouble\":\"-1e309\"}", GW_ERANGE, "out of range for double"},
    {A, 0, "{\"fFloat\":3.5e38}", GW_ERANGE, "out of range for float"},
    {A, 0, "{\"fFloat\":-3.4028236e38}", GW_ERANGE, "out of range for float"},
    {A, 0, "{\"fDouble\":\"nan\"}", GW_EPARSE, "expected a number"},
    {A, 0, "{\"fDouble\":\"Inf\"}", GW_EPARSE, "expected a number"},
    {A, 0, "{\"fDouble\":\"1.5 \"}", GW_EPARSE, "expected a number"},
    {A, 0, "{\"fDouble\":true}", GW_EPARSE, "expected a number"},
    /* bool, string, bytes, enum */
    {A, 0, "{\"fBool\":\"true\"}", GW_EPARSE, "expected true or false"},
    {A, 0, "{\"fBool\":1}", GW_EPARSE, "expected true or false"},
    {A, 0, "{\"fString\":1}", GW_EPARSE, "expected a string"},
    {A, 0, "{\"fBytes\":\"A\"}", GW_EPARSE, "invalid base64"},
    {A, 0, "{\"fBytes\":\"!!!!\"}", GW_EPARSE, "invalid base64"},
    {A, 0, "{\"fBytes\":\"A===\"}", GW_EPARSE, "invalid base64"},
    {A, 0, "{\"fBytes\":\"-_+/\"}", GW_EPARSE, "invalid base64"},
    {A, 0, "{\"fBytes\":1}", GW_EPARSE, "expected a base64 string"},
    {A, 0, "{\"fColor\":\"PURPLE\"}", GW_EPARSE, "unknown value \"PURPLE\" for enum codec.test.Color"},
    {A, 0, "{\"fColor\":\"red\"}", GW_EPARSE, "unknown value"},
    {A, 0, "{\"fColor\":1.5}", GW_ERANGE, "not an integer"},
    {A, 0, "{\"fColor\":2147483648}", GW_ERANGE, "out of range"},
    {A, 0, "{\"fColor\":true}", GW_EPARSE, "expected an enum"},
    {P2, 0, "{\"optEnum\":7}", GW_ERANGE, "not a value of enum codec.test2.Closed"},
    /* repeated and maps */
    {A, 0, "{\"rInt32\":1}", GW_EPARSE, "rInt32: expected an array"},
    {A, 0, "{\"rInt32\":[1,null]}", GW_EPARSE, "rInt32[1]: null is not a valid element"},
    {A, 0, "{\"rInt32\":[1,2,]}", GW_EPARSE, "unexpected character"},
    {A, 0, "{\"rInner\":[{},{},{},{\"c\":[1,\"x\"]}]}", GW_EPARSE,
     "rInner[3].c[1]: expected an integer"},
    {A, 0, "{\"rInner\":[[]]}", GW_EPARSE, "rInner[0]: expected an object"},
    {A, 0, "{\"mInt32\":[]}", GW_EPARSE, "expected an object for map"},
    {A, 0, "{\"mInt32\":{\"a\":1}}", GW_EPARSE, "map key must be an integer"},
    {A, 0, "{\"mInt32\":{\"1.0\":1}}", GW_EPARSE, "map key must be an integer"},
    {A, 0, "{\"mInt32\":{\"2147483648\":1}}", GW_ERANGE, "out of range"},
    {A, 0, "{\"mUint32\":{\"-1\":1}}", GW_ERANGE, "out of range"},
    {A, 0, "{\"mBool\":{\"yes\":true}}", GW_EPARSE, "\"true\" or \"false\""},
    {A, 0, "{\"mString\":{\"a\":\"1\",\"a\":\"2\"}}", GW_EPARSE, "duplicate map key"},
    {A, 0, "{\"mString\":{\"a\":null}}", GW_EPARSE, "null is not a valid map value"},
    {A, 0, "{\"mString\":{\"a\":1}}", GW_EPARSE, "mString: expected a string"},
    /* wrappers */
    {A, 0, "{\"wInt32\":\"x\"}", GW_EPARSE, "expected an integer"},
    {A, 0, "{\"wInt32\":{\"value\":1}}", GW_EPARSE, "expected a int32 value"},
    {A, 0, "{\"rWInt32\":[null]}", GW_EPARSE, "null is not a valid"},
    /* Timestamp */
    {A, 0, "{\"fTimestamp\":\"2024-01-02T03:04:05\"}", GW_EPARSE, "invalid Timestamp"},
    {A, 0, "{\"fTimestamp\":\"2024-01-02t03:04:05Z\"}", GW_EPARSE, "invalid Timestamp"},
    {A, 0, "{\"fTimestamp\":\"2024-01-02T03:04:05z\"}", GW_EPARSE, "invalid Timestamp"},
    {A, 0, "{\"fTimestamp\":\"2024-13-01T00:00:00Z\"}", GW_EPARSE, "invalid Timestamp"},
    {A, 0, "{\"fTimestamp\":\"2023-02-29T00:00:00Z\"}", GW_EPARSE, "invalid Timestamp"},
    {A, 0, "{\"fTimestamp\":\"2024-01-01T24:00:00Z\"}", GW_EPARSE, "invalid Timestamp"},
    {A, 0, "{\"fTimestamp\":\"2024-01-01T00:00:00.Z\"}", GW_EPARSE, "invalid Timestamp"},
    {A, 0, "{\"fTimestamp\":\"2024-01-01T00:00:00.1234567890Z\"}", GW_EPARSE, "invalid"},
    {A, 0, "{\"fTimestamp\":\"2024-01-01T00:00:00+0100\"}", GW_EPARSE, "invalid Timestamp"},
    {A, 0, "{\"fTimestamp\":\"10000-01-01T00:00:00Z\"}", GW_EPARSE, "invalid Timestamp"},
    {A, 0, "{\"fTimestamp\":\"0000-12-31T23:59:59Z\"}", GW_ERANGE, "out of range"},
    {A, 0, "{\"fTimestamp\":\"0001-01-01T00:00:00+00:01\"}", GW_ERANGE, "out of range"},
    {A, 0, "{\"fTimestamp\":\"9999-12-31T23:59:59-00:01\"}", GW_ERANGE, "out of range"},
    {A, 0, "{\"fTimestamp\":1}", GW_EPARSE, "expected a string (Timestamp)"},
    /* Duration */
    {A, 0, "{\"fDuration\":\"1\"}", GW_EPARSE, "invalid Duration"},
    {A, 0, "{\"fDuration\":\"+1s\"}", GW_EPARSE, "invalid Duration"},
    {A, 0, "{\"fDuration\":\".5s\"}", GW_EPARSE, "invalid Duration"},
    {A, 0, "{\"fDuration\":\"1.s\"}", GW_EPARSE, "invalid Duration"},
    {A, 0, "{\"fDuration\":\"1.0000000001s\"}", GW_EPARSE, "invalid Duration"},
    {A, 0, "{\"fDuration\":\"1S\"}", GW_EPARSE, "invalid Duration"},
    {A, 0, "{\"fDuration\":\"315576000001s\"}", GW_ERANGE, "out of range"},
    {A, 0, "{\"fDuration\":\"-99999999999999999999999s\"}", GW_ERANGE, "out of range"},
    /* FieldMask */
    {A, 0, "{\"fFieldMask\":\"foo_bar\"}", GW_EPARSE, "not lowerCamelCase"},
    {A, 0, "{\"fFieldMask\":\"a,\"}", GW_EPARSE, "ends with ','"},
    {A, 0, "{\"fFieldMask\":\"a,,b\"}", GW_EPARSE, "empty path"},
    {A, 0, "{\"fFieldMask\":\",a\"}", GW_EPARSE, "empty path"},
    {A, 0, "{\"fFieldMask\":[\"a\"]}", GW_EPARSE, "expected a string (FieldMask)"},
    /* Struct / Value / ListValue */
    {A, 0, "{\"fStruct\":[]}", GW_EPARSE, "expected an object (Struct)"},
    {A, 0, "{\"fStruct\":{\"a\":1,\"a\":2}}", GW_EPARSE, "duplicate map key"},
    {A, 0, "{\"fList\":{}}", GW_EPARSE, "expected an array (ListValue)"},
    {A, 0, "{\"fValue\":1e999}", GW_ERANGE, "out of range for double"},
    /* Any */
    {A, 0, "{\"fAny\":{\"a\":1}}", GW_EPARSE, "Any without \"@type\""},
    {A, 0, "{\"fAny\":{\"@type\":1}}", GW_EPARSE, "expected a string (@type)"},
    {A, 0, "{\"fAny\":{\"@type\":\"type.googleapis.com/x.Nope\"}}", GW_ERANGE,
     "not in the registry"},
    {A, 0, "{\"fAny\":{\"@type\":\"type.googleapis.com/codec.test.Inner\",\"zz\":1}}",
     GW_EPARSE, "unknown field \"zz\""},
    {A, 0, "{\"fAny\":{\"@type\":\"type.googleapis.com/codec.test.Inner\",\"@type\":\"x\"}}",
     GW_EPARSE, "duplicate \"@type\""},
    {A, 0, "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"1s\",\"x\":1}}",
     GW_EPARSE, "unexpected key \"x\""},
    {A, 0, "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Duration\",\"x\":1}}",
     GW_EPARSE, "unexpected key"},
    {A, 0, "{\"fAny\":[]}", GW_EPARSE, "expected an object (Any)"},
    {A, 0, "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Empty\",\"value\":{}}}",
     GW_EPARSE, "unknown field \"value\""},
    /* proto2 */
    {P2, 0, "{\"data\":[]}", GW_EPARSE, "expected an object"},
    /* extensions: the key must name an extension of this very message */
    {P2, 0, "{" X("other_ext") ":1}", GW_EPARSE,
     "unknown field \"[codec.test2.other_ext]\" in codec.test2.Proto2"},
    {P2, 0, "{" X("nope") ":1}", GW_EPARSE, "unknown field \"[codec.test2.nope]\""},
    {P2, 0, "{" X("Extender") ":1}", GW_EPARSE, "unknown field \"[codec.test2.Extender]\""},
    {P2, 0, "{\"[.codec.test2.ext_int32]\":1}", GW_EPARSE, "unknown field"},
    {P2, 0, "{\"codec.test2.ext_int32\":1}", GW_EPARSE, "unknown field"},
    {P2, 0, "{\"[codec.test2.ext_int32\":1}", GW_EPARSE, "unknown field"},
    {P2, 0, "{\"[ext_int32]\":1}", GW_EPARSE, "unknown field"},
    {P2, 0, "{\"[]\":1}", GW_EPARSE, "unknown field \"[]\""},
    {A, 0, "{" X("ext_int32") ":1}", GW_EPARSE,
     "unknown field \"[codec.test2.ext_int32]\" in codec.test.AllTypes"},
    {P2, 0, "{" X("ext_int32") ":1," X("ext_int32") ":2}", GW_EPARSE,
     "duplicate field \"[codec.test2.ext_int32]\""},
    {P2, 0, "{" X("ext_int32") ":\"x\"}", GW_EPARSE, "[codec.test2.ext_int32]: expected an integer"},
    {P2, 0, "{" X("ext_int32") ":2147483648}", GW_ERANGE, "out of range"},
    {P2, 0, "{" X("ext_enum") ":7}", GW_ERANGE, "not a value of enum codec.test2.Closed"},
    {P2, 0, "{" X("ext_repeated") ":1}", GW_EPARSE, "expected an array"},
    {P2, 0, "{" X("ext_message") ":[]}", GW_EPARSE, "expected an object"},
    {P2, 0, "{\"child\":{" X("ext_string") ":1}}", GW_EPARSE,
     "child.[codec.test2.ext_string]: expected a string"},
    {P2, 0, "{" X("Extender.nested") ":{\"nope\":1}}", GW_EPARSE,
     "unknown field \"nope\" in codec.test2.Extender"},
    {P2, 0, "{\"Data\":{}}", GW_EPARSE, "unknown field"},
};

static void test_rejects(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(rejects); i++) {
        const rej_case *c = &rejects[i];
        gw_codec_options o;
        opts_from(&o, c->flags);
        gw_buf wire;
        gw_buf_init(&wire, 0);
        gw_error e;
        int rc = gw_codec_json_to_proto(reg, msg(c->type), c->in, strlen(c->in), &o, &wire, &e);
        if (rc != c->rc)
            fail_msg("case %zu %s: rc %d (%s), want %d", i, c->in, rc, rc ? e.msg : "", c->rc);
        if (e.code != c->rc || !strstr(e.msg, c->msg))
            fail_msg("case %zu %s: message '%s' lacks '%s'", i, c->in, e.msg, c->msg);
        gw_buf_free(&wire);
    }
}

/* ------------------------------------------------------------------------
 * protobuf -> JSON from wire bytes: merge rules, unknowns, malformed input,
 * values JSON cannot represent.
 */
typedef struct wire_case {
    const char *type;
    int flags;
    const char *hex;
    int rc;
    const char *out; /* expected JSON, or a fragment of the error */
} wire_case;

static const wire_case wires[] = {
    {A, 0, "", 0, "{}"},
    /* last scalar wins; repeated appends across packed and unpacked runs */
    {A, 0, "0801 0802", 0, "{\"fInt32\":2}"},
    {A, 0, "f80101 fa01020203 f80104", 0, "{\"rInt32\":[1,2,3,4]}"},
    {A, 0, "a00301 a20302 0203", 0, "{\"rUnpacked\":[1,2,3]}"},
    {A, 0, "fa0100", 0, "{}"},
    {A, EMIT, "fa0100", 0, NULL},
    /* messages merge */
    {A, 0, "9201020801 920103120178", 0, "{\"fInner\":{\"a\":1,\"b\":\"x\"}}"},
    {A, 0, "9201020801 9201020802", 0, "{\"fInner\":{\"a\":2}}"},
    {A, 0, "9201041a020301 9201031a0104", 0, "{\"fInner\":{\"c\":[3,1,4]}}"},
    /* unknown fields, unknown groups and wrong wire types are skipped */
    {A, 0, "c03e05 0801", 0, "{\"fInt32\":1}"},
    {A, 0, "bb3e 0801 bc3e 0802", 0, "{\"fInt32\":2}"},
    {A, 0, "0d01000000 0805", 0, "{\"fInt32\":5}"},
    {A, 0, "0a0161 0803", 0, "{\"fInt32\":3}"},
    /* oneof: the member seen last wins */
    {A, 0, "f80605 8a070161", 0, "{\"oneofString\":\"a\"}"},
    {A, 0, "8a070161 f80605", 0, "{\"oneofUint32\":5}"},
    {A, 0, "820702 0801 8a070161 8207020802", 0, "{\"oneofInner\":{\"a\":2}}"},
    /* enums: unknown numbers print as numbers in proto3 */
    {A, 0, "a80163", 0, "{\"fColor\":99}"},
    {A, 0, "a801ffffffffffffffffff01", 0, "{\"fColor\":\"BLUE\"}"},
    {A, INTS, "a80102", 0, "{\"fColor\":2}"},
    /* 32-bit varints are truncated as protobuf parsers do */
    {A, 0, "08ffffffffffffffffff01", 0, "{\"fInt32\":-1}"},
    {A, 0, "18ffffffff1f", 0, "{\"fUint32\":4294967295}"},
    /* maps: missing key or value is the default, duplicates: last wins */
    {A, 0, "c2030408051000 aa04060a0161120131 aa04060a0161120132", 0,
     "{\"mInt32\":{\"5\":0},\"mString\":{\"a\":\"2\"}}"},
    {A, 0, "c2030210 07", 0, "{\"mInt32\":{\"0\":7}}"},
    {A, 0, "ba0400", 0, "{\"mInner\":{\"\":{}}}"},
    /* proto2: closed enums drop unknown numbers; groups */
    {P2, 0, "1801 1809", 0, "{\"optEnum\":\"CLOSED_ONE\"}"},
    {P2, 0, "1809", 0, "{}"},
    {P2, 0, "4001 4009 4002", 0, "{\"repEnum\":[\"CLOSED_ONE\",\"CLOSED_TWO\"]}"},
    {P2, 0, "2800cb0cd00c01cc0c9b0da20d01619c0d9b0da20d01629c0d", 0,
     "{\"reqInt64\":\"0\",\"data\":{\"groupInt32\":1},\"item\":[{\"name\":\"a\"},{\"name\":\"b\"}]}"},
    {P2, 0, "cb0cd00c01cc0c cb0cd80c02cc0c", 0, "{\"data\":{\"groupInt32\":1,\"groupUint32\":2}}"},
    /* proto2 scalars with presence print at their default */
    {P2, 0, "0800 1200 2000", 0, "{\"optInt32\":0,\"optString\":\"\",\"optBool\":false}"},
    /* proto2 extensions: numbers of the message's extensions print under
     * "[full.name]", merged like fields; other numbers stay unknown */
    {P2, 0, "c03e05", 0, "{" X("ext_int32") ":5}"},
    {P2, 0, "c03e05 c03e06", 0, "{" X("ext_int32") ":6}"},
    {P2, 0, "c03e05 0801", 0, "{\"optInt32\":1," X("ext_int32") ":5}"},
    {P2, 0, "c23e0161", 0, "{}"},                      /* wrong wire type: skipped */
    {P2, 0, "e05d01", 0, "{}"},                        /* 1500: in range, not declared */
    {P2, 0, "ca3e0161", 0, "{" X("ext_string") ":\"a\"}"},
    {P2, 0, "d03e01 d03e09", 0, "{" X("ext_enum") ":\"CLOSED_ONE\"}"}, /* closed enum */
    {P2, INTS, "d03e02", 0, "{" X("ext_enum") ":2}"},
    {P2, 0, "e03e01 e23e020203", 0, "{" X("ext_repeated") ":[1,2,3]}"},
    {P2, 0, "ea3e020103 e83e04", 0, "{" X("ext_packed") ":[\"-1\",\"-2\",\"2\"]}"},
    {P2, 0, "da3e020801 da3e021801", 0,
     "{" X("ext_message") ":{\"optInt32\":1,\"optEnum\":\"CLOSED_ONE\"}}"},
    {P2, 0, "fb3e0801fc3e", 0, "{" X("extgroup") ":{\"gval\":1}}"},
    {P2, 0, "e244030a0178", 0, "{" X("Extender.nested") ":{\"label\":\"x\"}}"},
    {P2, PROTO, "4a03c03e07", 0, "{\"child\":{" X("ext_int32") ":7}}"},
    {OTHER, 0, "f00101 5002 0803", 0, "{\"a\":3," X("other_ext") ":2,\"z\":1}"},
    {A, 0, "5002", 0, "{}"}, /* not an extension of this message */
    /* a repeated extension with no element left is absent, also with
     * emit defaults (fuzzer find: it printed [] which reads back as unset) */
    {P2, EMIT, "9a3f023b5a ea3e00", 0,
     "{\"repInt32\":[],\"repPacked\":[],\"repEnum\":[],\"mapEnum\":{},\"item\":[]}"},
    {P2, 0, "9a3f02013b", 0, "{" X("ext_enums") ":[\"CLOSED_ONE\"]}"},
    {P2, 0, "ca3e0561", GW_EPARSE, "truncated"},
    {P2, 0, "ca3e01ff", GW_EPARSE, "[codec.test2.ext_string]: string field holds invalid UTF-8"},
    {P2, 0, "fb3e0801", GW_EPARSE, "malformed"},
    /* malformed wire input */
    {A, 0, "08", GW_EPARSE, "truncated"},
    {A, 0, "0a0561", GW_EPARSE, "truncated"},
    {A, 0, "00", GW_EPARSE, "bad tag"},
    {A, 0, "0f", GW_EPARSE, "bad tag"},
    {A, 0, "0c", GW_EPARSE, "malformed"},
    {A, 0, "bb3e0801", GW_EPARSE, "malformed"},
    {A, 0, "bb3e bc3f", GW_EPARSE, "malformed"},
    {A, 0, "08ffffffffffffffffffff01", GW_EPARSE, "truncated"},
    {A, 0, "fa0103ffffff", GW_EPARSE, "rInt32: malformed packed"}, /* varint cut short */
    {A, 0, "fa0102ffff", GW_EPARSE, "malformed packed"},
    {A, 0, "9201010a", GW_EPARSE, "fInner: malformed protobuf"},
    {A, 0, "7201ff", GW_EPARSE, "fString: string field holds invalid UTF-8"},
    {A, 0, "aa0403 0a01ff", GW_EPARSE, "invalid UTF-8"},
    /* well-formed but not representable in JSON */
    {A, 0, "f21207088083d1ffaf07", GW_ERANGE, "fTimestamp: Timestamp out of range"},
    {A, 0, "f2120b08ff91b8c398feffffff01", GW_ERANGE, "Timestamp out of range"},
    {A, 0, "f212021001", 0, "{\"fTimestamp\":\"1970-01-01T00:00:00.000000001Z\"}"},
    {A, 0, "f21206 10ffffffff0f", GW_ERANGE, "Timestamp out of range"},
    {A, 0, "ea120d080110ffffffffffffffffff01", GW_ERANGE, "Duration out of range"},
    {A, 0, "ea12070881bcaece9709", GW_ERANGE, "Duration out of range"},
    {A, 0, "fa12070a05666f6f5f33", GW_ERANGE, "fFieldMask: FieldMask path has no JSON form"},
    {A, 0, "fa12080a06666f6f426172", GW_ERANGE, "no JSON form"},
    {A, 0, "fa1202 0a00", GW_ERANGE, "no JSON form"},
    {A, 0, "fa1205 0a03612c62", GW_ERANGE, "no JSON form"},
    {A, 0, "8a13200a1a747970652e676f6f676c65617069732e636f6d2f782e4e6f706512020801", GW_ERANGE,
     "fAny: Any type 'type.googleapis.com/x.Nope' is not in the registry"},
    {A, 0, "8a1304 12020801", GW_ERANGE, "no type_url"},
    {A, 0, "92130911000000000000f07f", GW_ERANGE, "not finite"},
    {A, 0, "8213180a160a01611211320f0a0911000000000000f03f0a020800", 0,
     "{\"fStruct\":{\"a\":[1,null]}}"},
    /* Value: the kind seen last wins */
    {A, 0, "9213051a01782001", 0, "{\"fValue\":true}"},
    {A, 0, "921300", 0, "{\"fValue\":null}"},
    /* wrappers print their value, default included */
    {A, 0, "d20c00", 0, "{\"wInt32\":0}"},
    {A, 0, "d20c020805", 0, "{\"wInt32\":5}"},
    {A, 0, "ca0c00", 0, "{\"wBool\":false}"},
};

static void test_wire(void **state)
{
    (void)state;
    uint8_t buf[512];
    for (size_t i = 0; i < GW_ARRAY_LEN(wires); i++) {
        const wire_case *c = &wires[i];
        if (!c->out)
            continue;
        gw_codec_options o;
        opts_from(&o, c->flags);
        size_t n = unhex(c->hex, buf);
        uint8_t *exact = malloc(n ? n : 1);
        memcpy(exact, buf, n);
        gw_buf json;
        gw_buf_init(&json, 0);
        gw_error e;
        int rc = gw_codec_proto_to_json(reg, msg(c->type), exact, n, &o, &json, &e);
        if (rc != c->rc)
            fail_msg("case %zu %s: rc %d (%s), want %d", i, c->hex, rc, rc ? e.msg : "", c->rc);
        if (rc == 0 && strcmp((const char *)json.data, c->out) != 0)
            fail_msg("case %zu %s:\n  got  %s\n  want %s", i, c->hex, json.data, c->out);
        if (rc != 0 && !strstr(e.msg, c->out))
            fail_msg("case %zu %s: message '%s' lacks '%s'", i, c->hex, e.msg, c->out);
        free(exact);
        gw_buf_free(&json);
    }
}

/* ------------------------------------------------------------------------
 * JSON -> exact wire bytes: encodings, packing, back-filled lengths.
 */
typedef struct bytes_case {
    const char *type;
    const char *in;
    const char *hex;
} bytes_case;

static const bytes_case encodings[] = {
    {A, "{}", ""},
    {A, "{\"fInt32\":-1}", "08ffffffffffffffffff01"},
    {A, "{\"fSint32\":-1,\"fSint64\":\"1\"}", "28013002"},
    {A, "{\"fFixed32\":1,\"fSfixed64\":\"-1\"}", "3d0100000051ffffffffffffffff"},
    {A, "{\"fDouble\":1.5,\"fFloat\":-2}", "61000000000000f83f5d000000c0"},
    {A, "{\"fBool\":true,\"fString\":\"hi\",\"fBytes\":\"AQI=\"}", "6801720268697a020102"},
    {A, "{\"rInt32\":[1,2,300]}", "fa010401 02ac02"},
    {A, "{\"rUnpacked\":[1,2]}", "a00301a00302"},
    {A, "{\"rString\":[\"a\",\"b\"]}", "e2020161e2020162"},
    {A, "{\"rDouble\":[1]}", "d20208000000000000f03f"},
    {A, "{\"fInner\":{\"a\":1,\"child\":{}}}", "920104 0801 2200"},
    {A, "{\"mString\":{\"k\":\"v\"}}", "aa04060a016b120176"},
    {A, "{\"mInt32\":{\"-1\":1}}", "c2030d08ffffffffffffffffff011001"},
    {A, "{\"fTimestamp\":\"1970-01-01T00:00:01.5Z\"}", "f2120808011080cab5ee01"},
    {A, "{\"fDuration\":\"-1.5s\"}", "ea121608ffffffffffffffffff011080b6ca91feffffffff01"},
    {A, "{\"fFieldMask\":\"aB,c\"}", "fa12080a03615f620a0163"},
    {A, "{\"wInt32\":0}", "d20c020800"},
    {A, "{\"fValue\":null}", "9213020800"},
    {A, "{\"fStruct\":{\"a\":[1,null]}}", "8213180a160a01611211320f0a0911000000000000f03f0a020800"},
    {A, "{\"fAny\":{\"@type\":\"type.googleapis.com/google.protobuf.Int32Value\",\"value\":5}}",
     "8a13340a2e747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e496e74"
     "333256616c756512020805"},
    {P2, "{\"reqInt64\":0,\"data\":{\"groupInt32\":1},\"item\":[{\"name\":\"a\"},{\"name\":\"b\"}]}",
     "2800cb0cd00c01cc0c9b0da20d01619c0d9b0da20d01629c0d"},
    {P2, "{\"repPacked\":[1,2],\"repInt32\":[3,4]}", "3a0201023003 3004"},
    /* extensions: tagged with their own numbers, packed when declared so */
    {P2, "{" X("ext_int32") ":5}", "c03e05"},
    {P2, "{" X("ext_packed") ":[-1,1]}", "ea3e020102"},
    {P2, "{" X("ext_repeated") ":[1,2]}", "e03e01e03e02"},
    {P2, "{" X("extgroup") ":{\"gval\":1}}", "fb3e0801fc3e"},
    {P2, "{" X("Extender.nested") ":{\"label\":\"x\"}}", "e244030a0178"},
    {P2, "{\"optInt32\":1," X("ext_int32") ":2,\"optBool\":true}", "0801c03e02 2001"},
    /* a 150-byte string inside a message: the length grows to two bytes */
    {A, "{\"fInner\":{\"b\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}",
     "92019301129001"
     "787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878"
     "787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878"
     "787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878"},
};

static void test_encodings(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(encodings); i++) {
        const bytes_case *c = &encodings[i];
        gw_buf wire;
        gw_buf_init(&wire, 0);
        gw_error e;
        int rc = gw_codec_json_to_proto(reg, msg(c->type), c->in, strlen(c->in), NULL, &wire, &e);
        if (rc)
            fail_msg("case %zu %s: %s", i, c->in, e.msg);
        char *got = malloc(2 * wire.len + 1);
        tohex(wire.data, wire.len, got);
        char want[1024];
        size_t k = 0;
        for (const char *h = c->hex; *h; h++)
            if (*h != ' ')
                want[k++] = *h;
        want[k] = 0;
        if (strcmp(got, want) != 0)
            fail_msg("case %zu %s:\n  got  %s\n  want %s", i, c->in, got, want);
        free(got);
        gw_buf_free(&wire);
    }
}

/* ------------------------------------------------------------------------
 * Text forms used by both directions.
 */
static void test_timestamp_text(void **state)
{
    (void)state;
    static const struct {
        int64_t s;
        int32_t n;
        const char *text;
    } ok[] = {
        {0, 0, "1970-01-01T00:00:00Z"},
        {-1, 0, "1969-12-31T23:59:59Z"},
        {-62135596800LL, 0, "0001-01-01T00:00:00Z"},
        {253402300799LL, 999999999, "9999-12-31T23:59:59.999999999Z"},
        {951782400, 10000000, "2000-02-29T00:00:00.010Z"},
        {1704164645, 120000, "2024-01-02T03:04:05.000120Z"},
        {-86400, 1, "1969-12-31T00:00:00.000000001Z"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(ok); i++) {
        char buf[48];
        size_t n;
        assert_int_equal(gw_codec_fmt_timestamp(buf, &n, ok[i].s, ok[i].n), 0);
        buf[n] = 0;
        assert_string_equal(buf, ok[i].text);
        int64_t s;
        int32_t ns;
        assert_int_equal(gw_codec_parse_timestamp(ok[i].text, strlen(ok[i].text), &s, &ns), 0);
        assert_int_equal(s, ok[i].s);
        assert_int_equal(ns, ok[i].n);
    }
    char buf[48];
    size_t n;
    assert_int_equal(gw_codec_fmt_timestamp(buf, &n, 253402300800LL, 0), GW_ERANGE);
    assert_int_equal(gw_codec_fmt_timestamp(buf, &n, -62135596801LL, 0), GW_ERANGE);
    assert_int_equal(gw_codec_fmt_timestamp(buf, &n, 0, -1), GW_ERANGE);
    assert_int_equal(gw_codec_fmt_timestamp(buf, &n, 0, 1000000000), GW_ERANGE);
}

static void test_duration_text(void **state)
{
    (void)state;
    static const struct {
        int64_t s;
        int32_t n;
        const char *text;
    } ok[] = {
        {0, 0, "0s"},
        {1, 0, "1s"},
        {-1, 0, "-1s"},
        {0, -500000000, "-0.500s"},
        {1, 500000, "1.000500s"},
        {-3, -1, "-3.000000001s"},
        {315576000000LL, 999999999, "315576000000.999999999s"},
        {-315576000000LL, -999999999, "-315576000000.999999999s"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(ok); i++) {
        char buf[48];
        size_t n;
        assert_int_equal(gw_codec_fmt_duration(buf, &n, ok[i].s, ok[i].n), 0);
        buf[n] = 0;
        assert_string_equal(buf, ok[i].text);
        int64_t s;
        int32_t ns;
        assert_int_equal(gw_codec_parse_duration(ok[i].text, strlen(ok[i].text), &s, &ns), 0);
        assert_int_equal(s, ok[i].s);
        assert_int_equal(ns, ok[i].n);
    }
    char buf[48];
    size_t n;
    assert_int_equal(gw_codec_fmt_duration(buf, &n, 1, -1), GW_ERANGE);
    assert_int_equal(gw_codec_fmt_duration(buf, &n, -1, 1), GW_ERANGE);
    assert_int_equal(gw_codec_fmt_duration(buf, &n, 315576000001LL, 0), GW_ERANGE);
    assert_int_equal(gw_codec_fmt_duration(buf, &n, 0, 1000000000), GW_ERANGE);
}

static void test_number_text(void **state)
{
    (void)state;
    static const struct {
        double d;
        const char *text;
    } dbl[] = {
        {0.1, "0.1"}, {1.0 / 3, "0.3333333333333333"}, {1e21, "1e+21"}, {-2.5e-10, "-2.5e-10"},
        {123456789, "123456789"}, {1e15, "1e+15"}, {5e-324, NULL}, {-0.0, "-0"},
        {2.2250738585072014e-308, "2.2250738585072014e-308"}, {98.25, "98.25"},
        {-0.5, "-0.5"}, {0.0001, "0.0001"}, {123456.789, "123456.789"}, {1e-5, "1e-05"},
        {0.3, "0.3"}, {999999999.5, "999999999.5"}, {1.000001, "1.000001"},
        {1.0000001, "1.0000001"}, {-1234.5678e-2, "-12.345678"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(dbl); i++) {
        char buf[40];
        size_t n = gw_codec_fmt_double(buf, dbl[i].d);
        buf[n] = 0;
        assert_true(strtod(buf, NULL) == dbl[i].d);
        if (dbl[i].text)
            assert_string_equal(buf, dbl[i].text);
    }
    static const struct {
        float f;
        const char *text;
    } flt[] = {{0.1f, "0.1"}, {1.1f, "1.1"}, {16777216.0f, "16777216"}, {3.4028235e38f, "3.4028235e+38"},
               {1e-45f, "1e-45"}};
    for (size_t i = 0; i < GW_ARRAY_LEN(flt); i++) {
        char buf[40];
        size_t n = gw_codec_fmt_float(buf, flt[i].f);
        buf[n] = 0;
        assert_true(strtof(buf, NULL) == flt[i].f);
        assert_string_equal(buf, flt[i].text);
    }
    static const struct {
        const char *text;
        int rc;
        bool neg;
        uint64_t mag;
    } ints[] = {
        {"0", 0, false, 0},
        {"-0", 0, false, 0},
        {"18446744073709551615", 0, false, UINT64_MAX},
        {"18446744073709551616", GW_ERANGE, false, 0},
        {"1.8446744073709551615e19", 0, false, UINT64_MAX},
        {"-9223372036854775808", 0, true, 9223372036854775808ULL},
        {"1e0", 0, false, 1},
        {"10e-1", 0, false, 1},
        {"0.0e5", 0, false, 0},
        {"0e-99999999", 0, false, 0},
        {"1e-99999999", GW_ERANGE, false, 0},
        {"1e99999999", GW_ERANGE, false, 0},
        {"12.30", GW_ERANGE, false, 0},
        {"123.0000000000000000000000000000000000000000000000000000000000000000000001", GW_ERANGE, false, 0},
        {"1000000000000000000000000000000000000000000000000000000000000000000000e-60", 0, false,
         1000000000ULL},
        {"01", GW_EPARSE, false, 0},
        {"1.", GW_EPARSE, false, 0},
        {".1", GW_EPARSE, false, 0},
        {"1e", GW_EPARSE, false, 0},
        {"+1", GW_EPARSE, false, 0},
        {"", GW_EPARSE, false, 0},
        {"--1", GW_EPARSE, false, 0},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(ints); i++) {
        bool neg = false;
        uint64_t mag = 0;
        int rc = gw_codec_parse_integer(ints[i].text, strlen(ints[i].text), &neg, &mag);
        if (rc != ints[i].rc)
            fail_msg("%s: rc %d want %d", ints[i].text, rc, ints[i].rc);
        if (rc == 0 && (neg != ints[i].neg || mag != ints[i].mag))
            fail_msg("%s: got %d %llu", ints[i].text, neg, (unsigned long long)mag);
    }
}

/* ------------------------------------------------------------------------
 * REST helpers.
 */
typedef struct fs_case {
    const char *field;
    const char *text;
    int rc;
    const char *hex;
} fs_case;

static const fs_case field_strings[] = {
    {"f_int32", "42", 0, "082a"},
    {"f_int32", "-1", 0, "08ffffffffffffffffff01"},
    {"f_int32", "1.5", GW_ERANGE, NULL},
    {"f_int32", "x", GW_EPARSE, NULL},
    {"f_uint64", "18446744073709551615", 0, "20ffffffffffffffffff01"},
    {"f_double", "NaN", 0, "61000000000000f87f"},
    {"f_double", "1.5", 0, "61000000000000f83f"},
    {"f_bool", "true", 0, "6801"},
    {"f_bool", "0", 0, "6800"},
    {"f_bool", "yes", GW_EPARSE, NULL},
    {"f_string", "a b/c", 0, "7205612062 2f63"},
    {"f_string", "\xff", GW_EPARSE, NULL},
    {"f_bytes", "AQI", 0, "7a020102"},
    {"f_bytes", "-_8", 0, "7a02fbff"},
    {"f_color", "GREEN", 0, "a80102"},
    {"f_color", "2", 0, "a80102"},
    {"f_color", "-1", 0, "a801ffffffffffffffffff01"},
    {"f_color", "PURPLE", GW_EPARSE, NULL},
    {"r_int32", "7", 0, "f80107"},
    {"w_int64", "7", 0, "da0c020807"},
    {"w_string", "", 0, "820d020a00"},
    {"w_bool", "true", 0, "ca0c020801"},
    {"f_duration", "1.5s", 0, "ea120808011080cab5ee01"},
    {"f_duration", "1.5", GW_EPARSE, NULL},
    {"f_timestamp", "1970-01-01T00:00:01Z", 0, "f212020801"},
    {"f_timestamp", "10000-01-01T00:00:00Z", GW_EPARSE, NULL},
    {"f_field_mask", "aB,c", 0, "fa12080a03615f620a0163"},
    {"f_value", "x", 0, "921303 1a0178"},
    {"f_inner", "{}", GW_EINVAL, NULL},
    {"m_string", "x", GW_EINVAL, NULL},
};

static const gw_field_def *afield(const char *name)
{
    const gw_field_def *f = gw_message_field_by_name(msg(A), name, strlen(name));
    if (!f)
        fail_msg("no field %s", name);
    return f;
}

static void test_field_string(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(field_strings); i++) {
        const fs_case *c = &field_strings[i];
        gw_buf wire;
        gw_buf_init(&wire, 0);
        gw_error e;
        int rc = gw_codec_encode_field_string(reg, afield(c->field), c->text, strlen(c->text),
                                              &wire, &e);
        if (rc != c->rc)
            fail_msg("case %zu %s=%s: rc %d (%s) want %d", i, c->field, c->text, rc, e.msg, c->rc);
        if (rc == 0) {
            char got[256], want[256];
            tohex(wire.data, wire.len, got);
            size_t k = 0;
            for (const char *h = c->hex; *h; h++)
                if (*h != ' ')
                    want[k++] = *h;
            want[k] = 0;
            if (strcmp(got, want) != 0)
                fail_msg("case %zu %s=%s: got %s want %s", i, c->field, c->text, got, want);
        }
        gw_buf_free(&wire);
    }
}

/* Nested binding by wrapping, and the merge that REST relies on. */
static void test_wrap_merge(void **state)
{
    (void)state;
    gw_buf leaf, wire, json;
    gw_buf_init(&leaf, 0);
    gw_buf_init(&wire, 0);
    gw_buf_init(&json, 0);
    const gw_message_def *inner = msg("codec.test.Inner");
    const gw_field_def *b = gw_message_field_by_name(inner, "b", 1);
    assert_int_equal(gw_codec_encode_field_string(reg, b, "q", 1, &leaf, NULL), 0);
    /* body {"fInner":{"a":1,"b":"x"}} then fInner.child.b=q then fInner.b=y */
    const char *body = "{\"fInner\":{\"a\":1,\"b\":\"x\"}}";
    assert_int_equal(gw_codec_json_to_proto(reg, msg(A), body, strlen(body), NULL, &wire, NULL), 0);
    gw_buf child;
    gw_buf_init(&child, 0);
    assert_int_equal(gw_codec_wrap_message(4, leaf.data, leaf.len, &child), 0);
    assert_int_equal(gw_codec_wrap_message(18, child.data, child.len, &wire), 0);
    gw_buf_reset(&leaf);
    assert_int_equal(gw_codec_encode_field_string(reg, b, "y", 1, &leaf, NULL), 0);
    assert_int_equal(gw_codec_wrap_message(18, leaf.data, leaf.len, &wire), 0);
    assert_int_equal(gw_codec_proto_to_json(reg, msg(A), wire.data, wire.len, NULL, &json, NULL), 0);
    assert_string_equal((const char *)json.data,
                        "{\"fInner\":{\"a\":1,\"b\":\"y\",\"child\":{\"b\":\"q\"}}}");
    gw_buf_free(&child);
    gw_buf_free(&leaf);
    gw_buf_free(&wire);
    gw_buf_free(&json);
}

static int collect_path(void *ctx, const char *path, size_t len)
{
    gw_buf *b = ctx;
    if (b->len)
        gw_buf_append_byte(b, ',');
    return gw_buf_append(b, path, len);
}

static int stop_at_second(void *ctx, const char *path, size_t len)
{
    int *n = ctx;
    (void)path;
    (void)len;
    return ++*n == 2 ? 42 : 0;
}

static void test_field_paths(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        const char *paths;
    } cases[] = {
        {"{}", 0, ""},
        {"{\"fInt32\":1,\"fInner\":{\"a\":1,\"child\":{\"b\":\"x\"}},\"mString\":{\"a\":\"b\"},"
         "\"fTimestamp\":\"2024-01-01T00:00:00Z\",\"rInner\":[{}],\"fStruct\":{\"x\":1},\"oInt32\":null}",
         0, "f_int32,f_inner.a,f_inner.child.b,m_string,f_timestamp,r_inner,f_struct,o_int32"},
        {"{\"fInner\":{}}", 0, ""},
        {"{\"fInner\":null}", 0, "f_inner"},
        {"{\"zz\":1}", GW_EPARSE, ""},
        {"[1]", GW_EPARSE, ""},
        {"{\"fInt32\":1", GW_EPARSE, "f_int32"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        gw_buf paths;
        gw_buf_init(&paths, 0);
        gw_error e;
        int rc = gw_codec_json_field_paths(reg, msg(A), cases[i].in, strlen(cases[i].in), NULL,
                                           collect_path, &paths, &e);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d (%s)", i, rc, e.msg);
        assert_string_equal(paths.data ? (const char *)paths.data : "", cases[i].paths);
        gw_buf_free(&paths);
    }
    int n = 0;
    const char *in = "{\"fInt32\":1,\"fBool\":true,\"fString\":\"\"}";
    assert_int_equal(gw_codec_json_field_paths(reg, msg(A), in, strlen(in), NULL, stop_at_second,
                                               &n, NULL),
                     42);
}

static void test_single_field(void **state)
{
    (void)state;
    static const struct {
        const char *field;
        const char *wire_json; /* message holding the field */
        const char *out;
    } outs[] = {
        {"r_int32", "{\"rInt32\":[1,2],\"fInt32\":3}", "[1,2]"},
        {"r_int32", "{}", "[]"},
        {"f_inner", "{}", "null"},
        {"f_inner", "{\"fInner\":{\"a\":1}}", "{\"a\":1}"},
        {"f_string", "{}", "\"\""},
        {"f_color", "{}", "\"COLOR_UNSPECIFIED\""},
        {"m_string", "{\"mString\":{\"a\":\"b\"}}", "{\"a\":\"b\"}"},
        {"f_timestamp", "{\"fTimestamp\":\"2024-01-01T00:00:00Z\"}", "\"2024-01-01T00:00:00Z\""},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(outs); i++) {
        gw_buf wire, json;
        gw_buf_init(&wire, 0);
        gw_buf_init(&json, 0);
        assert_int_equal(gw_codec_json_to_proto(reg, msg(A), outs[i].wire_json,
                                                strlen(outs[i].wire_json), NULL, &wire, NULL),
                         0);
        gw_error e;
        int rc = gw_codec_field_to_json(reg, afield(outs[i].field), wire.data, wire.len, NULL,
                                        &json, &e);
        if (rc)
            fail_msg("case %zu: %s", i, e.msg);
        assert_string_equal((const char *)json.data, outs[i].out);
        gw_buf_free(&wire);
        gw_buf_free(&json);
    }
    static const struct {
        const char *field;
        const char *in;
        int rc;
        const char *hex;
    } ins[] = {
        {"f_inner", "{\"a\":1}", 0, "9201020801"},
        {"f_inner", "null", 0, ""},
        {"r_int32", "[1,2]", 0, "fa01020102"},
        {"f_string", "\"x\"", 0, "720178"},
        {"f_string", "1", GW_EPARSE, NULL},
        {"f_inner", "{\"a\":1} x", GW_EPARSE, NULL},
        {"m_string", "{\"k\":\"v\"}", 0, "aa04060a016b120176"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(ins); i++) {
        gw_buf wire;
        gw_buf_init(&wire, 0);
        gw_error e;
        int rc = gw_codec_json_to_field(reg, afield(ins[i].field), ins[i].in, strlen(ins[i].in),
                                        NULL, &wire, &e);
        if (rc != ins[i].rc)
            fail_msg("case %zu: rc %d (%s)", i, rc, e.msg);
        if (rc == 0) {
            char got[256];
            tohex(wire.data, wire.len, got);
            assert_string_equal(got, ins[i].hex);
        }
        gw_buf_free(&wire);
    }
}

/* Extensions through the single-field and REST helpers, and without a
 * registry (the message's own extension table is searched). */
static const gw_field_def *ext(const char *name)
{
    const gw_field_def *f = gw_registry_extension(reg, name, strlen(name));
    if (!f)
        fail_msg("no extension %s", name);
    return f;
}

static void test_extension_helpers(void **state)
{
    (void)state;
    static const struct {
        const char *ext, *wire_json, *out;
    } outs[] = {
        {"codec.test2.ext_packed", "{" X("ext_packed") ":[-1,-2],\"optInt32\":1}", "[\"-1\",\"-2\"]"},
        {"codec.test2.ext_packed", "{}", "[]"},
        {"codec.test2.ext_message", "{}", "null"},
        {"codec.test2.ext_message", "{" X("ext_message") ":{\"optInt32\":4}}", "{\"optInt32\":4}"},
        {"codec.test2.ext_int32", "{}", "0"},
        {"codec.test2.Extender.nested_words", "{" X("Extender.nested_words") ":[\"a\"]}", "[\"a\"]"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(outs); i++) {
        gw_buf wire, json;
        gw_buf_init(&wire, 0);
        gw_buf_init(&json, 0);
        gw_error e;
        if (gw_codec_json_to_proto(reg, msg(P2), outs[i].wire_json, strlen(outs[i].wire_json),
                                   NULL, &wire, &e))
            fail_msg("case %zu: %s", i, e.msg);
        if (gw_codec_field_to_json(reg, ext(outs[i].ext), wire.data, wire.len, NULL, &json, &e))
            fail_msg("case %zu: %s", i, e.msg);
        assert_string_equal((const char *)json.data, outs[i].out);
        gw_buf_free(&wire);
        gw_buf_free(&json);
    }
    static const struct {
        const char *ext, *in;
        bool text; /* gw_codec_encode_field_string, else gw_codec_json_to_field */
        int rc;
        const char *hex; /* or a fragment of the error */
    } ins[] = {
        {"codec.test2.ext_int32", "7", false, 0, "c03e07"},
        {"codec.test2.ext_packed", "[1]", false, 0, "ea3e0102"},
        {"codec.test2.ext_int32", "\"x\"", false, GW_EPARSE, "[codec.test2.ext_int32]: expected an integer"},
        {"codec.test2.ext_enum", "CLOSED_ONE", true, 0, "d03e01"},
        {"codec.test2.ext_string", "hi", true, 0, "ca3e026869"},
        {"codec.test2.ext_int32", "x", true, GW_EPARSE, "[codec.test2.ext_int32]"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(ins); i++) {
        gw_buf wire;
        gw_buf_init(&wire, 0);
        gw_error e;
        const gw_field_def *f = ext(ins[i].ext);
        int rc = ins[i].text
                     ? gw_codec_encode_field_string(reg, f, ins[i].in, strlen(ins[i].in), &wire, &e)
                     : gw_codec_json_to_field(reg, f, ins[i].in, strlen(ins[i].in), NULL, &wire, &e);
        if (rc != ins[i].rc)
            fail_msg("case %zu: rc %d (%s)", i, rc, rc ? e.msg : "");
        if (rc == 0) {
            char got[256];
            tohex(wire.data, wire.len, got);
            assert_string_equal(got, ins[i].hex);
        } else if (!strstr(e.msg, ins[i].hex)) {
            fail_msg("case %zu: message '%s' lacks '%s'", i, e.msg, ins[i].hex);
        }
        gw_buf_free(&wire);
    }
    /* PATCH paths: an extension is a leaf named by its key. */
    const char *body = "{\"optInt32\":1," X("ext_message") ":{\"optInt32\":2},\"child\":{"
                       X("ext_int32") ":3}}";
    gw_buf paths;
    gw_buf_init(&paths, 0);
    assert_int_equal(gw_codec_json_field_paths(reg, msg(P2), body, strlen(body), NULL,
                                               collect_path, &paths, NULL),
                     0);
    assert_string_equal((const char *)paths.data,
                        "opt_int32,[codec.test2.ext_message],child.[codec.test2.ext_int32]");
    gw_buf_free(&paths);
    /* No registry: keys resolve through the message's own extensions. */
    const char *in = "{" X("Extender.nested_words") ":[\"a\"]," X("ext_int32") ":1}";
    gw_buf wire;
    gw_buf_init(&wire, 0);
    gw_error e;
    assert_int_equal(gw_codec_json_to_proto(NULL, msg(P2), in, strlen(in), NULL, &wire, &e), 0);
    char got[64];
    tohex(wire.data, wire.len, got);
    assert_string_equal(got, "ea440161c03e01");
    gw_buf_free(&wire);
    in = "{" X("other_ext") ":1}";
    gw_buf_init(&wire, 0);
    assert_int_equal(gw_codec_json_to_proto(NULL, msg(P2), in, strlen(in), NULL, &wire, &e),
                     GW_EPARSE);
    gw_buf_free(&wire);
}

/* ------------------------------------------------------------------------
 * Limits: depth in both directions, input and output sizes.
 */
static char *nested_json(int levels)
{
    /* {"recursive":{"recursive":...{}...}} with `levels` objects */
    size_t n = (size_t)levels * 16 + 8;
    char *s = malloc(n);
    if (!s)
        abort();
    size_t k = 0;
    for (int i = 1; i < levels; i++)
        k += (size_t)sprintf(s + k, "{\"recursive\":");
    k += (size_t)sprintf(s + k, "{}");
    for (int i = 1; i < levels; i++)
        s[k++] = '}';
    s[k] = 0;
    return s;
}

static void test_limits(void **state)
{
    (void)state;
    gw_error e;
    gw_buf wire, json;
    gw_buf_init(&wire, 0);
    gw_buf_init(&json, 0);
    const gw_message_def *m = msg(A);
    /* 100 levels pass, 101 fail, both directions. */
    char *ok = nested_json(100), *deep = nested_json(101);
    assert_int_equal(gw_codec_json_to_proto(reg, m, ok, strlen(ok), NULL, &wire, &e), 0);
    assert_int_equal(gw_codec_proto_to_json(reg, m, wire.data, wire.len, NULL, &json, &e), 0);
    assert_string_equal((const char *)json.data, ok);
    gw_buf_reset(&json);
    size_t ok_len = wire.len;
    assert_int_equal(gw_codec_json_to_proto(reg, m, deep, strlen(deep), NULL, &wire, &e),
                     GW_EDEPTH);
    assert_non_null(strstr(e.msg, "nesting deeper than 100"));
    /* The same depth as wire bytes: wrap the 100-level message once more. */
    gw_buf deeper;
    gw_buf_init(&deeper, 0);
    assert_int_equal(gw_codec_wrap_message(401, wire.data, ok_len, &deeper), 0);
    assert_int_equal(gw_codec_proto_to_json(reg, m, deeper.data, deeper.len, NULL, &json, &e),
                     GW_EDEPTH);
    assert_non_null(strstr(e.msg, "nesting deeper"));
    gw_buf_free(&deeper);
    /* Deep JSON that is skipped (unknown field) or a Struct is bounded too. */
    gw_codec_options o;
    opts_from(&o, IGNORE);
    char skip[600];
    size_t k = (size_t)sprintf(skip, "{\"zz\":");
    for (int i = 0; i < 250; i++)
        skip[k++] = '[';
    for (int i = 0; i < 250; i++)
        skip[k++] = ']';
    skip[k++] = '}';
    skip[k] = 0;
    gw_buf_reset(&wire);
    assert_int_equal(gw_codec_json_to_proto(reg, m, skip, k, &o, &wire, &e), GW_EDEPTH);
    memcpy(skip, "{\"fList\":", 9);
    k = 9;
    for (int i = 0; i < 150; i++)
        skip[k++] = '[';
    for (int i = 0; i < 150; i++)
        skip[k++] = ']';
    skip[k++] = '}';
    skip[k] = 0;
    assert_int_equal(gw_codec_json_to_proto(reg, m, skip, k, NULL, &wire, &e), GW_EDEPTH);
    /* A lower configured depth. */
    opts_from(&o, 0);
    o.max_depth = 3;
    const char *three = "{\"recursive\":{\"recursive\":{}}}";
    const char *four = "{\"recursive\":{\"recursive\":{\"recursive\":{}}}}";
    gw_buf_reset(&wire);
    assert_int_equal(gw_codec_json_to_proto(reg, m, three, strlen(three), &o, &wire, &e), 0);
    assert_int_equal(gw_codec_json_to_proto(reg, m, four, strlen(four), &o, &wire, &e), GW_EDEPTH);
    /* Input and output caps. */
    opts_from(&o, 0);
    o.max_input = 10;
    const char *big = "{\"fString\":\"0123456789\"}";
    gw_buf_reset(&wire);
    assert_int_equal(gw_codec_json_to_proto(reg, m, big, strlen(big), &o, &wire, &e), GW_ELIMIT);
    opts_from(&o, 0);
    o.max_output = 8;
    assert_int_equal(gw_codec_json_to_proto(reg, m, big, strlen(big), &o, &wire, &e), GW_ELIMIT);
    assert_non_null(strstr(e.msg, "exceeds"));
    opts_from(&o, 0);
    gw_buf_reset(&wire);
    assert_int_equal(gw_codec_json_to_proto(reg, m, big, strlen(big), &o, &wire, &e), 0);
    o.max_output = 10;
    gw_buf_reset(&json);
    assert_int_equal(gw_codec_proto_to_json(reg, m, wire.data, wire.len, &o, &json, &e), GW_ELIMIT);
    gw_buf capped;
    gw_buf_init(&capped, 16); /* the buffer's own maximum applies as well */
    assert_int_equal(gw_codec_proto_to_json(reg, m, wire.data, wire.len, NULL, &capped, &e),
                     GW_ELIMIT);
    assert_true(capped.len <= 16);
    gw_buf_free(&capped);
    free(ok);
    free(deep);
    gw_buf_free(&wire);
    gw_buf_free(&json);
}

/* ------------------------------------------------------------------------
 * Depth: one rule both ways (docs/codec.md). Every message is a level (the
 * root is level 1; Struct, Value, ListValue, Any and its payload count),
 * map entries do not. Each generator below writes the JSON value of one
 * field of AllTypes such that {"field": value} is exactly n levels deep; the
 * comments count the levels. Both directions must accept n <= limit and
 * refuse n > limit, and whatever is accepted must print back.
 */
typedef struct sb {
    char *p;
    size_t n, cap;
} sb;

static void sb_put(sb *b, const char *s)
{
    size_t k = strlen(s);
    if (b->n + k + 1 > b->cap) {
        b->cap = (b->n + k + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->n, s, k + 1);
    b->n += k;
}

static void sb_rep(sb *b, const char *s, int times)
{
    for (int i = 0; i < times; i++)
        sb_put(b, s);
}

/* recursive: AllTypes objects, one level each; n >= 2. */
static void gen_nested(sb *b, int n)
{
    sb_rep(b, "{\"recursive\":", n - 2);
    sb_put(b, "{}");
    sb_rep(b, "}", n - 2);
}

/* fStruct: the Struct is 1, each object inside it a Value + Struct (2), a
 * scalar leaf a Value (1): j objects with {} inside give 1 + 1 + 2(j-1) = 2j,
 * j objects around a scalar 2j + 1; n >= 2. */
static void gen_struct(sb *b, int n)
{
    int j = n / 2;
    sb_rep(b, "{\"k\":", j - 1);
    sb_put(b, n % 2 ? "{\"k\":true}" : "{}");
    sb_rep(b, "}", j - 1);
}

/* fValue: the Value is 1, each object a Struct + Value (2) except that the
 * innermost {} is a Struct only: a scalar is 1 + 1 = 2, j objects around a
 * scalar 2j + 2, j objects ending in {} 2j + 1; n >= 2. */
static void gen_value(sb *b, int n)
{
    int j = (n - 1) / 2;
    if (n % 2) {
        sb_rep(b, "{\"k\":", j - 1);
        sb_put(b, "{}");
        sb_rep(b, "}", j - 1);
    } else {
        sb_rep(b, "{\"k\":", j);
        sb_put(b, "\"leaf\"");
        sb_rep(b, "}", j);
    }
}

/* fList: like fStruct with arrays: j arrays ending in [] give 2j, ending in
 * [null] 2j + 1; n >= 2. */
static void gen_list(sb *b, int n)
{
    int j = n / 2;
    sb_rep(b, "[", j - 1);
    sb_put(b, n % 2 ? "[null]" : "[]");
    sb_rep(b, "]", j - 1);
}

/* fAny: j Anys, each holding the next as a special-JSON type (1 each), then
 * an empty Any (1) or one holding an AllTypes (Any + payload, 2):
 * 1 + j + 1 or 1 + j + 2; n >= 2. */
static void gen_any(sb *b, int n)
{
    int j = n - 3;
    if (j < 0) {
        sb_put(b, "{}");
        return;
    }
    sb_rep(b, "{\"@type\":\"type.googleapis.com/google.protobuf.Any\",\"value\":", j);
    sb_put(b, "{\"@type\":\"type.googleapis.com/codec.test.AllTypes\"}");
    sb_rep(b, "}", j);
}

/* fAny with ordinary payloads: Any + AllTypes (2) per step through fAny,
 * then Any + AllTypes with "recursive": {} (3) or not (2); n >= 3. */
static void gen_any_chain(sb *b, int n)
{
    int j = (n - 3) / 2;
    sb_rep(b, "{\"@type\":\"type.googleapis.com/codec.test.AllTypes\",\"fAny\":", j);
    sb_put(b, (n - 1) % 2 ? "{\"@type\":\"type.googleapis.com/codec.test.AllTypes\","
                            "\"recursive\":{}}"
                          : "{\"@type\":\"type.googleapis.com/codec.test.AllTypes\"}");
    sb_rep(b, "}", j);
}

/* mInner (map<string, Inner>): the entry is no level, each Inner is 1;
 * n >= 2. */
static void gen_map(sb *b, int n)
{
    sb_put(b, "{\"key\":");
    sb_rep(b, "{\"child\":", n - 2);
    sb_put(b, "{}");
    sb_rep(b, "}", n - 2);
    sb_put(b, "}");
}

typedef struct depth_kind {
    const char *what, *field;
    void (*gen)(sb *b, int n);
    int min;
} depth_kind;

static const depth_kind depth_kinds[] = {
    {"nested messages", "recursive", gen_nested, 2},
    {"Struct", "fStruct", gen_struct, 2},
    {"Value", "fValue", gen_value, 2},
    {"ListValue", "fList", gen_list, 2},
    {"Any of Any", "fAny", gen_any, 2},
    {"Any of messages", "fAny", gen_any_chain, 3},
    {"map of messages", "mInner", gen_map, 2},
};

/* JSON -> wire at `limit`; the wire itself made with a higher limit. */
static void depth_case(const depth_kind *k, unsigned limit, int n)
{
    const gw_message_def *m = msg(A);
    const gw_field_def *f = gw_message_field_by_name(m, k->field, strlen(k->field));
    assert_non_null(f);
    sb v = {0}, whole = {0};
    k->gen(&v, n);
    sb_put(&whole, "{\"");
    sb_put(&whole, k->field);
    sb_put(&whole, "\":");
    sb_put(&whole, v.p);
    sb_put(&whole, "}");
    bool fits = n <= (int)limit;
    char want[80];
    snprintf(want, sizeof want, "nesting deeper than %u message levels", limit);
    gw_codec_options o, big;
    opts_from(&o, 0);
    o.max_depth = limit;
    opts_from(&big, 0);
    big.max_depth = (unsigned)n + 5;
    gw_error e;
    gw_buf wire, ref, json, fwire, fjson;
    gw_buf_init(&wire, 0);
    gw_buf_init(&ref, 0);
    gw_buf_init(&json, 0);
    gw_buf_init(&fwire, 0);
    gw_buf_init(&fjson, 0);

    /* The reference wire bytes and their JSON, with room to spare. */
    int rc = gw_codec_json_to_proto(reg, m, whole.p, whole.n, &big, &ref, &e);
    if (rc)
        fail_msg("%s n=%d: reference parse failed: %s", k->what, n, e.msg);
    gw_buf canon;
    gw_buf_init(&canon, 0);
    assert_int_equal(gw_codec_proto_to_json(reg, m, ref.data, ref.len, &big, &canon, &e), 0);
    /* Exactly n: fits at n, not at n - 1 (so the generator's count is right
     * by the printer's own rule). */
    opts_from(&o, 0);
    o.max_depth = (unsigned)n;
    assert_int_equal(gw_codec_proto_to_json(reg, m, ref.data, ref.len, &o, &json, &e), 0);
    gw_buf_reset(&json);
    o.max_depth = (unsigned)n - 1;
    if (gw_codec_proto_to_json(reg, m, ref.data, ref.len, &o, &json, &e) != GW_EDEPTH)
        fail_msg("%s n=%d: the printer takes it at depth %d", k->what, n, n - 1);
    gw_buf_reset(&json);
    o.max_depth = limit;

    /* JSON -> proto. */
    rc = gw_codec_json_to_proto(reg, m, whole.p, whole.n, &o, &wire, &e);
    if (rc != (fits ? 0 : GW_EDEPTH))
        fail_msg("%s n=%d limit=%u: json_to_proto gave %d (%s)", k->what, n, limit, rc,
                 rc ? e.msg : "ok");
    if (!fits && !strstr(e.msg, want))
        fail_msg("%s n=%d: message '%s' lacks '%s'", k->what, n, e.msg, want);
    /* proto -> JSON. */
    rc = gw_codec_proto_to_json(reg, m, ref.data, ref.len, &o, &json, &e);
    if (rc != (fits ? 0 : GW_EDEPTH))
        fail_msg("%s n=%d limit=%u: proto_to_json gave %d (%s)", k->what, n, limit, rc,
                 rc ? e.msg : "ok");
    if (fits) {
        /* Accepted, so it prints back, the same as with room to spare. */
        assert_int_equal(wire.len, ref.len);
        assert_memory_equal(wire.data, ref.data, ref.len);
        assert_string_equal((const char *)json.data, (const char *)canon.data);
        assert_string_equal((const char *)json.data, whole.p);
    } else if (!strstr(e.msg, want)) {
        fail_msg("%s n=%d: message '%s' lacks '%s'", k->what, n, e.msg, want);
    }
    /* The single-field helpers count the containing message as level 1. */
    rc = gw_codec_json_to_field(reg, f, v.p, v.n, &o, &fwire, &e);
    if (rc != (fits ? 0 : GW_EDEPTH))
        fail_msg("%s n=%d limit=%u: json_to_field gave %d", k->what, n, limit, rc);
    rc = gw_codec_field_to_json(reg, f, ref.data, ref.len, &o, &fjson, &e);
    if (rc != (fits ? 0 : GW_EDEPTH))
        fail_msg("%s n=%d limit=%u: field_to_json gave %d", k->what, n, limit, rc);
    if (fits) {
        assert_int_equal(fwire.len, ref.len);
        assert_memory_equal(fwire.data, ref.data, ref.len);
        assert_string_equal((const char *)fjson.data, v.p);
    }
    free(v.p);
    free(whole.p);
    gw_buf_free(&wire);
    gw_buf_free(&ref);
    gw_buf_free(&json);
    gw_buf_free(&canon);
    gw_buf_free(&fwire);
    gw_buf_free(&fjson);
}

static void test_depth_rule(void **state)
{
    (void)state;
    static const unsigned limits[] = {3, 4, 7, 10, GW_CODEC_DEFAULT_MAX_DEPTH};
    for (size_t i = 0; i < GW_ARRAY_LEN(depth_kinds); i++) {
        const depth_kind *k = &depth_kinds[i];
        for (size_t j = 0; j < GW_ARRAY_LEN(limits); j++)
            for (int d = -1; d <= 1; d++) {
                int n = (int)limits[j] + d;
                if (n >= k->min)
                    depth_case(k, limits[j], n);
            }
    }
}

/* The demo API's case (issue 12): a User whose preferences nest as deep as
 * the default limit allows is accepted and prints back; one object more is
 * refused on the way in, naming the limit. 49 objects around a scalar:
 * User (1) + Struct (1) + 48 objects as Value + Struct (96) + the scalar's
 * Value (1) = 99; 50 objects: 101. */
static void test_depth_demo_user(void **state)
{
    (void)state;
    const gw_message_def *u = msg("demo.v1.User");
    for (int objects = 48; objects <= 50; objects++) {
        sb b = {0};
        sb_put(&b, "{\"preferences\":");
        sb_rep(&b, "{\"a\":", objects);
        sb_put(&b, "1");
        sb_rep(&b, "}", objects + 1);
        int depth = 1 + 1 + 2 * (objects - 1) + 1;
        gw_error e;
        gw_buf wire, json;
        gw_buf_init(&wire, 0);
        gw_buf_init(&json, 0);
        int rc = gw_codec_json_to_proto(demo, u, b.p, b.n, NULL, &wire, &e);
        if (depth <= GW_CODEC_DEFAULT_MAX_DEPTH) {
            assert_int_equal(rc, 0);
            assert_int_equal(gw_codec_proto_to_json(demo, u, wire.data, wire.len, NULL, &json,
                                                    &e),
                             0);
            assert_string_equal((const char *)json.data, b.p);
        } else {
            assert_int_equal(rc, GW_EDEPTH);
            assert_non_null(strstr(e.msg, "preferences: nesting deeper than 100 message levels"));
        }
        free(b.p);
        gw_buf_free(&wire);
        gw_buf_free(&json);
    }
}

/* Every output cap below the full size fails cleanly with GW_ELIMIT (no
 * crash, no leak under ASan), at every point where either direction
 * writes; the full size succeeds. A cheap stand-in for failure injection:
 * each write path's error return is taken once. */
static void test_output_caps(void **state)
{
    (void)state;
    const char *json =
        "{\"fInt32\":-1,\"fString\":\"h\\u00e9llo\",\"fBytes\":\"AQID\",\"rInt32\":[1,2,300],"
        "\"rInner\":[{\"a\":1,\"c\":[1]},{\"b\":\"x\"}],\"mString\":{\"k\":\"v\",\"j\":\"w\"},"
        "\"fTimestamp\":\"2024-01-02T03:04:05.5Z\",\"fDuration\":\"-1.5s\",\"fFieldMask\":\"aB,c\","
        "\"fStruct\":{\"a\":[1,\"x\",null,true,{}]},\"fAny\":{\"@type\":"
        "\"type.googleapis.com/codec.test.Inner\",\"a\":1},\"wInt64\":\"7\",\"fDouble\":0.1,"
        "\"recursive\":{\"fInner\":{\"b\":\"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
        "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\"}}}";
    const gw_message_def *m = msg(A);
    gw_buf full, text;
    gw_buf_init(&full, 0);
    gw_buf_init(&text, 0);
    gw_error e;
    assert_int_equal(gw_codec_json_to_proto(reg, m, json, strlen(json), NULL, &full, &e), 0);
    assert_int_equal(gw_codec_proto_to_json(reg, m, full.data, full.len, NULL, &text, &e), 0);
    for (int pretty = 0; pretty < 2; pretty++) {
        gw_codec_options o;
        opts_from(&o, pretty ? PRETTY | EMIT : 0);
        gw_buf ref;
        gw_buf_init(&ref, 0);
        assert_int_equal(gw_codec_proto_to_json(reg, m, full.data, full.len, &o, &ref, &e), 0);
        for (size_t cap = 1; cap <= ref.len; cap++) {
            gw_buf out;
            gw_buf_init(&out, 0);
            o.max_output = cap;
            int rc = gw_codec_proto_to_json(reg, m, full.data, full.len, &o, &out, &e);
            if (rc != (cap < ref.len ? GW_ELIMIT : 0))
                fail_msg("proto_to_json cap %zu of %zu: rc %d", cap, ref.len, rc);
            assert_true(out.len <= cap);
            gw_buf_free(&out);
        }
        gw_buf_free(&ref);
    }
    for (size_t cap = 1; cap <= full.len; cap++) {
        gw_codec_options o;
        opts_from(&o, 0);
        o.max_output = cap;
        gw_buf out;
        gw_buf_init(&out, 0);
        int rc = gw_codec_json_to_proto(reg, m, json, strlen(json), &o, &out, &e);
        if (rc != (cap < full.len ? GW_ELIMIT : 0))
            fail_msg("json_to_proto cap %zu of %zu: rc %d (%s)", cap, full.len, rc, e.msg);
        gw_buf_free(&out);
    }
    gw_buf_free(&full);
    gw_buf_free(&text);
}

/* JSON -> proto -> JSON over the demo API. */
static void test_demo_roundtrip(void **state)
{
    (void)state;
    static const struct {
        const char *type, *json;
    } cases[] = {
        {"demo.v1.User",
         "{\"id\":\"42\",\"name\":\"Ada\",\"email\":\"ada@example.com\",\"role\":\"ROLE_ADMIN\","
         "\"active\":true,\"age\":36,\"score\":9.5,\"avatar\":\"AAEC\",\"tags\":[\"a\",\"b\"],"
         "\"labels\":{\"team\":\"core\"},\"address\":{\"street\":\"1 Main\",\"city\":\"X\","
         "\"country\":\"UK\"},\"phone\":\"+44\",\"nickname\":\"\",\"createdAt\":"
         "\"2024-01-02T03:04:05.678Z\",\"sessionTtl\":\"3600s\",\"displayName\":\"A\","
         "\"loginCount\":0,\"preferences\":{\"n\":[1,true,null],\"theme\":\"dark\"},"
         "\"previousAddresses\":[{\"city\":\"Y\"}],\"roleHistory\":{\"1\":\"ROLE_VIEWER\"},"
         "\"revision\":\"18446744073709551615\",\"karma\":-3}"},
        {"demo.v1.UpdateUserRequest", "{\"user\":{\"id\":\"1\"},\"updateMask\":\"name,address.city\"}"},
        {"demo.v1.ListUsersRequest", "{\"pageSize\":5,\"delay\":\"0.100s\",\"role\":\"ROLE_EDITOR\"}"},
        {"demo.v1.EchoRequest", "{\"message\":\"hi\",\"number\":\"5\"}"},
        {"demo.v1.SetAvatarRequest", "{\"id\":\"1\",\"avatar\":{\"contentType\":\"image/png\",\"data\":\"iVBO\"}}"},
        {"google.rpc.Status", "{\"code\":3,\"message\":\"bad\",\"details\":[{\"@type\":"
                              "\"type.googleapis.com/google.rpc.BadRequest\",\"fieldViolations\":"
                              "[{\"field\":\"email\",\"description\":\"needs @\"}]}]}"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        const gw_message_def *m = gw_registry_message(demo, cases[i].type);
        assert_non_null(m);
        gw_buf wire, json;
        gw_buf_init(&wire, 0);
        gw_buf_init(&json, 0);
        gw_error e;
        if (gw_codec_json_to_proto(demo, m, cases[i].json, strlen(cases[i].json), NULL, &wire, &e))
            fail_msg("case %zu: %s", i, e.msg);
        if (gw_codec_proto_to_json(demo, m, wire.data, wire.len, NULL, &json, &e))
            fail_msg("case %zu: %s", i, e.msg);
        assert_string_equal((const char *)json.data, cases[i].json);
        gw_buf_free(&wire);
        gw_buf_free(&json);
    }
}

/* A varint fits as long as its own encoding fits under the buffer max. */
static void test_varint_at_max(void **state)
{
    (void)state;
    static const struct {
        size_t max;    /* buffer max */
        size_t prefill; /* bytes already in the buffer */
        uint64_t v;
        int rc;
        const char *hex; /* expected tail when rc == 0 */
    } cases[] = {
        {16, 15, 1, 0, "01"},
        {16, 16, 1, GW_ELIMIT, NULL},
        {16, 14, 300, 0, "ac02"},
        {16, 15, 300, GW_ELIMIT, NULL},
        {16, 6, UINT64_MAX, 0, "ffffffffffffffffff01"},
        {16, 7, UINT64_MAX, GW_ELIMIT, NULL},
        {1, 0, 127, 0, "7f"},
        {1, 0, 128, GW_ELIMIT, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gw_buf b;
        gw_buf_init(&b, cases[i].max);
        for (size_t k = 0; k < cases[i].prefill; k++)
            assert_int_equal(gw_buf_append_byte(&b, 'x'), 0);
        int rc = gw_wire_put_varint(&b, cases[i].v);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d, want %d", i, rc, cases[i].rc);
        if (!rc) {
            size_t n = strlen(cases[i].hex) / 2;
            assert_int_equal(b.len, cases[i].prefill + n);
            char hex[32] = {0};
            for (size_t k = 0; k < n; k++)
                snprintf(hex + 2 * k, 3, "%02x", b.data[cases[i].prefill + k]);
            assert_string_equal(hex, cases[i].hex);
        } else {
            assert_int_equal(b.len, cases[i].prefill);
        }
        gw_buf_free(&b);
    }
}

/* Wire reader/writer. */
static void test_wire_api(void **state)
{
    (void)state;
    gw_buf b;
    gw_buf_init(&b, 0);
    assert_int_equal(gw_wire_put_tag(&b, GW_WIRE_MAX_FIELD, GW_WIRE_FIXED32), 0);
    assert_int_equal(gw_wire_put_varint(&b, UINT64_MAX), 0);
    assert_int_equal(gw_wire_put_fixed64(&b, 0x0102030405060708ULL), 0);
    assert_int_equal(gw_wire_put_len_field(&b, 2, "ab", 2), 0);
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, b.data, b.len);
    uint32_t f;
    gw_wire_type wt;
    uint64_t v;
    const uint8_t *p;
    size_t n;
    assert_int_equal(gw_wire_read_tag(&rd, &f, &wt), 0);
    assert_int_equal(f, GW_WIRE_MAX_FIELD);
    assert_int_equal(wt, GW_WIRE_FIXED32);
    assert_int_equal(gw_wire_read_varint(&rd, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(gw_wire_offset(&rd), 5 + 10);
    assert_int_equal(gw_wire_read_fixed64(&rd, &v), 0);
    assert_true(v == 0x0102030405060708ULL);
    assert_int_equal(gw_wire_read_tag(&rd, &f, &wt), 0);
    assert_int_equal(gw_wire_read_len(&rd, &p, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(p, "ab", 2);
    assert_true(gw_wire_eof(&rd));
    assert_int_equal(gw_wire_read_varint(&rd, &v), GW_EPARSE);
    assert_int_equal(gw_wire_varint_size(0), 1);
    assert_int_equal(gw_wire_varint_size(127), 1);
    assert_int_equal(gw_wire_varint_size(128), 2);
    assert_int_equal(gw_wire_varint_size(UINT64_MAX), 10);
    assert_int_equal(gw_zigzag_encode32(-1), 1);
    assert_int_equal(gw_zigzag_decode64(gw_zigzag_encode64(INT64_MIN)), INT64_MIN);
    /* Field number 2^29 is out of range; so is a group skip past its depth. */
    uint8_t big[] = {0x80, 0x80, 0x80, 0x80, 0x10};
    gw_wire_reader_init(&rd, big, sizeof big);
    assert_int_equal(gw_wire_read_tag(&rd, &f, &wt), GW_EPARSE);
    assert_int_equal(gw_wire_offset(&rd), 0);
    uint8_t groups[] = {0x0b, 0x0b, 0x0b, 0x0c, 0x0c, 0x0c};
    gw_wire_reader_init(&rd, groups + 1, sizeof groups - 1);
    assert_int_equal(gw_wire_skip(&rd, 1, GW_WIRE_SGROUP, 1), GW_ELIMIT);
    gw_wire_reader_init(&rd, groups + 1, sizeof groups - 1);
    assert_int_equal(gw_wire_skip(&rd, 1, GW_WIRE_SGROUP, 3), 0);
    assert_int_equal(gw_wire_offset(&rd), 5);
    gw_buf_free(&b);
}

static void test_json_string(void **state)
{
    (void)state;
    gw_buf b;
    gw_buf_init(&b, 0);
    assert_int_equal(gw_codec_json_append_string(&b, "a\"\\\x01\x7f\xc3\xa9", 7), 0);
    assert_string_equal((const char *)b.data, "\"a\\\"\\\\\\u0001\x7f\xc3\xa9\"");
    /* long runs take the word-at-a-time path; escapes anywhere in them */
    static const char *const longs[][2] = {
        {"abcdefghijklmnopqrstuvwxyz0123456789", "\"abcdefghijklmnopqrstuvwxyz0123456789\""},
        {"abcdefgh\"ijklmnop\\qrstuvw\x1fxyz", "\"abcdefgh\\\"ijklmnop\\\\qrstuvw\\u001fxyz\""},
        {"\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad\n", "\"\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad\\n\""},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(longs); i++) {
        gw_buf_reset(&b);
        assert_int_equal(gw_codec_json_append_string(&b, longs[i][0], strlen(longs[i][0])), 0);
        assert_string_equal((const char *)b.data, longs[i][1]);
    }
    gw_buf_free(&b);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_codec codec_test.pb demo.pb\n");
        return 2;
    }
    gw_error e;
    const char *p1[] = {argv[1]}, *p2[] = {argv[2]};
    if (gw_registry_load(&reg, p1, 1, &e) || gw_registry_load(&demo, p2, 1, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_wire),
        cmocka_unit_test(test_encodings),
        cmocka_unit_test(test_timestamp_text),
        cmocka_unit_test(test_duration_text),
        cmocka_unit_test(test_number_text),
        cmocka_unit_test(test_field_string),
        cmocka_unit_test(test_wrap_merge),
        cmocka_unit_test(test_field_paths),
        cmocka_unit_test(test_single_field),
        cmocka_unit_test(test_extension_helpers),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_depth_rule),
        cmocka_unit_test(test_depth_demo_user),
        cmocka_unit_test(test_output_caps),
        cmocka_unit_test(test_demo_roundtrip),
        cmocka_unit_test(test_wire_api),
        cmocka_unit_test(test_varint_at_max),
        cmocka_unit_test(test_json_string),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gw_registry_del(reg);
    gw_registry_del(demo);
    return rc;
}
