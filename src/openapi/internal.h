/*
 * openapi internals shared by generate.c, schemas.c and comments.c.
 *
 * Out of memory: jansson returns NULL (or -1) from every constructor. The
 * helpers below accept NULL containers and values and only record the
 * failure in g->oom, so the builders read straight through and the caller
 * checks g->oom once; every value reaches its container or is released.
 */
#ifndef GW_OPENAPI_INTERNAL_H
#define GW_OPENAPI_INTERNAL_H

#include <jansson.h>

#include "openapi/openapi.h"
#include "route/route.h"

/* Query parameters documented per operation at most: schemas that nest
 * many messages many times would otherwise give huge documents. */
#define OA_QUERY_PARAMS_MAX 1000

typedef struct oa_pending {
    const gw_message_def *message;   /* or */
    const gw_enum_def *enumeration;
} oa_pending;

typedef struct oa_gen {
    const gw_registry *r;
    const gw_openapi_options *o;
    gw_router *router;
    json_t *doc;
    json_t *paths;
    json_t *schemas;     /* components.schemas */
    json_t *tags;        /* the root tags array */
    json_t *tag_names;   /* service name -> true, for tags already listed */
    json_t *op_ids;      /* operationIds used -> true */
    json_t *unlisted;    /* x-grpcgate-unlisted */
    json_t *comments;    /* full name -> comment text */
    json_t *shapes;      /* path with every {name} as {} -> the first path
                            written of that shape */
    oa_pending *pending; /* schemas referenced but not yet written */
    size_t pending_count, pending_cap;
    bool oom;
} oa_gen;

/* jansson helpers that record allocation failures in g->oom. */
json_t *oa_obj(oa_gen *g);
json_t *oa_arr(oa_gen *g);
json_t *oa_str(oa_gen *g, const char *s);   /* invalid UTF-8 becomes "?" */
json_t *oa_int(oa_gen *g, json_int_t v);
json_t *oa_bool(oa_gen *g, bool v);
/* Sets obj[key] = v (v is consumed). */
void oa_set(oa_gen *g, json_t *obj, const char *key, json_t *v);
void oa_set_str(oa_gen *g, json_t *obj, const char *key, const char *s);
/* Appends v (consumed) to arr. */
void oa_push(oa_gen *g, json_t *arr, json_t *v);

/* schemas.c */
/* {"$ref": "#/components/schemas/<name>"}, queueing the definition. */
json_t *oa_message_ref(oa_gen *g, const gw_message_def *m);
json_t *oa_enum_ref(oa_gen *g, const gw_enum_def *e);
/* A field's JSON schema in a message or body: arrays, maps, $refs. */
json_t *oa_field_schema(oa_gen *g, const gw_field_def *f);
/* {"$ref": ".../google.rpc.Status"}: the registry's message when it has one,
 * else an equivalent definition written here. */
json_t *oa_status_ref(oa_gen *g);
/* One value of a field as a path or query parameter gives it (no $refs:
 * enums and well-known types inline in their string forms). */
json_t *oa_param_schema(oa_gen *g, const gw_field_def *f);
/* A message's object schema; fields in `skip` (skip_count of them, may be
 * 0) are left out. */
json_t *oa_message_schema(oa_gen *g, const gw_message_def *m, const gw_field_def *const *skip,
                          size_t skip_count);
/* Writes every queued definition (and those they reference). */
void oa_flush_schemas(oa_gen *g);
/* The property name of a field under the options. */
const char *oa_field_name(const oa_gen *g, const gw_field_def *f);

/* comments.c */
/* Reads SourceCodeInfo of every file into g->comments. Returns 0 or
 * GW_ENOMEM. */
int oa_load_comments(oa_gen *g);
/* NULL when there is none. */
const char *oa_comment(const oa_gen *g, const char *full_name);
const char *oa_field_comment(const oa_gen *g, const gw_field_def *f);

#endif
