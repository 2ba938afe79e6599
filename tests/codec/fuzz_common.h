/*
 * Shared by the two codec fuzz targets: the registry (the test schemas,
 * loaded once) and the first input byte, which picks the message type and
 * the options so that every option combination gets fuzzed.
 */
#ifndef GW_CODEC_FUZZ_COMMON_H
#define GW_CODEC_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "schema/schema.h"

#ifndef CODEC_FUZZ_DESC
#error "CODEC_FUZZ_DESC must name the descriptor set"
#endif

static const char *const fuzz_types[4] = {
    "codec.test.AllTypes", "codec.test2.Proto2", "codec.test.Record", "codec.test.RecordList"};

static gw_registry *fuzz_registry(void)
{
    static gw_registry *reg;
    if (!reg) {
        const char *path = getenv("GW_CODEC_FUZZ_DESC");
        const char *paths[] = {path ? path : CODEC_FUZZ_DESC};
        gw_error e;
        if (gw_registry_load(&reg, paths, 1, &e)) {
            fprintf(stderr, "fuzz: %s\n", e.msg);
            abort();
        }
    }
    return reg;
}

/* Selector byte: bits 0-1 type, then emit, proto names, enums as ints,
 * ignore unknown, pretty. */
static const gw_message_def *fuzz_setup(uint8_t sel, gw_codec_options *o)
{
    gw_codec_options_init(o);
    o->emit_defaults = sel & 4;
    o->proto_names = sel & 8;
    o->enums_as_ints = sel & 16;
    o->ignore_unknown = sel & 32;
    o->indent = sel & 64 ? 2 : 0;
    o->max_output = 16u << 20;
    return gw_registry_message(fuzz_registry(), fuzz_types[sel & 3]);
}

/*
 * JSON printed by the codec must parse back and print identically: any
 * difference is a bug in one of the two directions.
 */
static void fuzz_check_json(const gw_message_def *m, const gw_codec_options *o,
                            const gw_buf *json)
{
    gw_buf wire, again;
    gw_buf_init(&wire, 0);
    gw_buf_init(&again, 0);
    gw_error e;
    gw_codec_options plain = *o;
    plain.ignore_unknown = false;
    if (gw_codec_json_to_proto(fuzz_registry(), m, (const char *)json->data, json->len, &plain,
                               &wire, &e)) {
        fprintf(stderr, "fuzz: printed JSON does not parse back: %s\n%s\n", e.msg, json->data);
        abort();
    }
    if (gw_codec_proto_to_json(fuzz_registry(), m, wire.data, wire.len, &plain, &again, &e)) {
        fprintf(stderr, "fuzz: reparsed message does not print: %s\n", e.msg);
        abort();
    }
    if (again.len != json->len || memcmp(again.data, json->data, json->len) != 0) {
        fprintf(stderr, "fuzz: JSON not stable:\n%s\n%s\n", json->data, again.data);
        abort();
    }
    gw_buf_free(&wire);
    gw_buf_free(&again);
}

#endif
