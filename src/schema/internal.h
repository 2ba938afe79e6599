/*
 * schema internals shared by build.c and lookup.c. Not a public header.
 */
#ifndef GW_SCHEMA_INTERNAL_H
#define GW_SCHEMA_INTERNAL_H

#include "schema/schema.h"

/*
 * An open-addressing hash table from (key, len) to a pointer. Keys are
 * borrowed: they must outlive the table (registry arena strings). Slots come
 * from the arena when one is given (registry tables, freed with it) or from
 * malloc otherwise (the builder's table, freed with htab_free).
 */
typedef struct gw_htab_slot {
    const char *key;
    size_t len;
    const void *val;
} gw_htab_slot;

typedef struct gw_htab {
    gw_htab_slot *slots;
    size_t cap;   /* a power of two, or 0 */
    size_t count;
    gw_arena *arena;
} gw_htab;

/* Sizes the table for `expected` keys. Returns 0 or GW_ENOMEM. */
int gw_htab_init(gw_htab *t, gw_arena *arena, size_t expected);
void gw_htab_free(gw_htab *t);
const void *gw_htab_get(const gw_htab *t, const char *key, size_t len);
/* Adds key unless present; then *prev (if not NULL) gets the value already
 * there and the table is unchanged. Returns 0 or GW_ENOMEM. */
int gw_htab_put(gw_htab *t, const char *key, size_t len, const void *val,
                const void **prev);

/* What a top-level symbol (message, enum, service, extension) names. */
typedef enum gw_sym_kind {
    GW_SYM_MESSAGE = 1,
    GW_SYM_ENUM,
    GW_SYM_SERVICE,
    GW_SYM_EXTENSION, /* def is the gw_field_def */
} gw_sym_kind;

typedef struct gw_sym {
    gw_sym_kind kind;
    const void *def;
    const gw_file_def *file;
} gw_sym;

/* The message index behind gw_message_def.index. */
/* DescriptorProto.ExtensionRange: [start, end). */
typedef struct gw_ext_range {
    uint32_t start, end;
} gw_ext_range;

typedef struct gw_message_index {
    gw_htab by_json;
    gw_htab by_proto;
    size_t ext_range_count;
    const gw_ext_range *ext_ranges; /* as declared, checked while building */
    bool message_set;               /* message_set_wire_format: extensions skipped */
} gw_message_index;

/* The enum index behind gw_enum_def.index. */
typedef struct gw_enum_number {
    int32_t number;
    uint32_t pos; /* index into values */
} gw_enum_number;

typedef struct gw_enum_index {
    gw_htab by_name;
    size_t number_count;             /* distinct numbers */
    const gw_enum_number *by_number; /* sorted by number, first declared */
} gw_enum_index;

struct gw_registry {
    gw_arena arena;
    size_t file_count;
    const gw_file_def **files;
    size_t service_count;
    const gw_service_def **services;
    gw_htab files_by_name;
    gw_htab symbols;          /* full name → gw_sym */
    gw_htab methods_by_path;  /* "/pkg.Service/Method" → gw_method_def */
    size_t extension_count;
    const gw_field_def **extensions; /* load order */
};

#endif
