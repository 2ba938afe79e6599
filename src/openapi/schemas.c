/*
 * JSON schemas of messages, enums and fields, following the ProtoJSON
 * mapping of src/codec. Every message and enum a document reaches becomes a
 * component named by its full name; fields refer to them with $ref, which
 * is also how recursive messages stay finite.
 */
#include <stdlib.h>
#include <string.h>

#include "openapi/internal.h"

#define REF_PREFIX "#/components/schemas/"

/* ---------------------------------------------------------------------------
 * jansson helpers.
 */

json_t *oa_obj(oa_gen *g)
{
    json_t *v = json_object();
    if (!v)
        g->oom = true;
    return v;
}

json_t *oa_arr(oa_gen *g)
{
    json_t *v = json_array();
    if (!v)
        g->oom = true;
    return v;
}

json_t *oa_str(oa_gen *g, const char *s)
{
    if (!gw_utf8_valid((const uint8_t *)s, strlen(s)))
        s = "?";
    json_t *v = json_string(s);
    if (!v)
        g->oom = true;
    return v;
}

json_t *oa_int(oa_gen *g, json_int_t n)
{
    json_t *v = json_integer(n);
    if (!v)
        g->oom = true;
    return v;
}

json_t *oa_bool(oa_gen *g, bool b)
{
    return (void)g, json_boolean(b); /* singletons: never NULL */
}

void oa_set(oa_gen *g, json_t *obj, const char *key, json_t *v)
{
    if (!obj || !v) {
        json_decref(v);
        g->oom = true;
        return;
    }
    if (json_object_set_new(obj, key, v))
        g->oom = true;
}

void oa_set_str(oa_gen *g, json_t *obj, const char *key, const char *s)
{
    oa_set(g, obj, key, oa_str(g, s));
}

void oa_push(oa_gen *g, json_t *arr, json_t *v)
{
    if (!arr || !v) {
        json_decref(v);
        g->oom = true;
        return;
    }
    if (json_array_append_new(arr, v))
        g->oom = true;
}

static json_t *typed(oa_gen *g, const char *type, const char *format)
{
    json_t *s = oa_obj(g);
    oa_set_str(g, s, "type", type);
    if (format)
        oa_set_str(g, s, "format", format);
    return s;
}

/* ---------------------------------------------------------------------------
 * References and the queue of definitions to write.
 */

static json_t *ref_to(oa_gen *g, const char *name)
{
    json_t *s = oa_obj(g);
    size_t n = strlen(REF_PREFIX) + strlen(name) + 1;
    char *ref = malloc(n);
    if (!ref) {
        g->oom = true;
        json_decref(s);
        return NULL;
    }
    snprintf(ref, n, "%s%s", REF_PREFIX, name);
    oa_set_str(g, s, "$ref", ref);
    free(ref);
    return s;
}

static void queue(oa_gen *g, const char *name, const gw_message_def *m, const gw_enum_def *e)
{
    if (!g->schemas || json_object_get(g->schemas, name))
        return;
    if (g->pending_count == g->pending_cap) {
        size_t cap = g->pending_cap ? g->pending_cap * 2 : 32;
        oa_pending *p = realloc(g->pending, cap * sizeof(*p));
        if (!p) {
            g->oom = true;
            return;
        }
        g->pending = p;
        g->pending_cap = cap;
    }
    /* A placeholder keeps the key's place (documents list components in the
     * order they were first referenced) and marks it as queued. */
    oa_set(g, g->schemas, name, json_null());
    if (!g->oom)
        g->pending[g->pending_count++] = (oa_pending){m, e};
}

json_t *oa_message_ref(oa_gen *g, const gw_message_def *m)
{
    queue(g, m->full_name, m, NULL);
    return ref_to(g, m->full_name);
}

json_t *oa_enum_ref(oa_gen *g, const gw_enum_def *e)
{
    queue(g, e->full_name, NULL, e);
    return ref_to(g, e->full_name);
}

/* ---------------------------------------------------------------------------
 * Scalars, enums and well-known types.
 */

static json_t *scalar_schema(oa_gen *g, gw_field_type t)
{
    switch (t) {
    case GW_TYPE_DOUBLE:
        return typed(g, "number", "double");
    case GW_TYPE_FLOAT:
        return typed(g, "number", "float");
    case GW_TYPE_INT32:
    case GW_TYPE_SINT32:
    case GW_TYPE_SFIXED32:
        return typed(g, "integer", "int32");
    case GW_TYPE_UINT32:
    case GW_TYPE_FIXED32: {
        json_t *s = typed(g, "integer", "uint32");
        oa_set(g, s, "minimum", oa_int(g, 0));
        oa_set(g, s, "maximum", oa_int(g, 4294967295));
        return s;
    }
    /* 64-bit integers are JSON strings: doubles cannot hold them. */
    case GW_TYPE_INT64:
    case GW_TYPE_SINT64:
    case GW_TYPE_SFIXED64:
        return typed(g, "string", "int64");
    case GW_TYPE_UINT64:
    case GW_TYPE_FIXED64:
        return typed(g, "string", "uint64");
    case GW_TYPE_BOOL:
        return typed(g, "boolean", NULL);
    case GW_TYPE_BYTES:
        return typed(g, "string", "byte");
    case GW_TYPE_STRING:
    default:
        return typed(g, "string", NULL);
    }
}

static json_t *enum_schema(oa_gen *g, const gw_enum_def *e)
{
    json_t *s = oa_obj(g);
    json_t *names = oa_arr(g);
    if (e->is_null_value) {
        /* google.protobuf.NullValue is written as JSON null. */
        oa_set(g, s, "nullable", oa_bool(g, true));
        oa_push(g, names, json_null());
        oa_set(g, s, "enum", names);
        oa_set_str(g, s, "description", "JSON null");
        return s;
    }
    oa_set_str(g, s, "type", "string");
    for (size_t i = 0; i < e->value_count; i++)
        oa_push(g, names, oa_str(g, e->values[i].name));
    oa_set(g, s, "enum", names);
    const char *c = oa_comment(g, e->full_name);
    if (c)
        oa_set_str(g, s, "description", c);
    return s;
}

/* Well-known types with a special JSON form; NULL for the others. */
static json_t *wkt_schema(oa_gen *g, gw_wkt wkt, bool nullable_wrappers)
{
    json_t *s = NULL;
    switch (wkt) {
    case GW_WKT_TIMESTAMP:
        s = typed(g, "string", "date-time");
        oa_set_str(g, s, "description",
                   "RFC 3339 in UTC (\"Z\"), with 0, 3, 6 or 9 fractional digits");
        oa_set_str(g, s, "example", "2024-01-02T03:04:05Z");
        return s;
    case GW_WKT_DURATION:
        s = typed(g, "string", NULL);
        oa_set_str(g, s, "pattern", "^-?[0-9]+(\\.[0-9]{1,9})?s$");
        oa_set_str(g, s, "description", "Seconds with up to 9 fractional digits and an 's'");
        oa_set_str(g, s, "example", "1.5s");
        return s;
    case GW_WKT_FIELD_MASK:
        s = typed(g, "string", NULL);
        oa_set_str(g, s, "description", "Comma-separated field paths in lowerCamelCase");
        oa_set_str(g, s, "example", "name,address.city");
        return s;
    case GW_WKT_STRUCT:
        s = typed(g, "object", NULL);
        oa_set(g, s, "additionalProperties", oa_bool(g, true));
        oa_set_str(g, s, "description", "Any JSON object");
        return s;
    case GW_WKT_VALUE:
        s = oa_obj(g);
        oa_set(g, s, "nullable", oa_bool(g, true));
        oa_set_str(g, s, "description", "Any JSON value");
        return s;
    case GW_WKT_LIST_VALUE:
        s = typed(g, "array", NULL);
        oa_set(g, s, "items", oa_obj(g));
        oa_set_str(g, s, "description", "Any JSON array");
        return s;
    case GW_WKT_EMPTY:
        s = typed(g, "object", NULL);
        oa_set(g, s, "additionalProperties", oa_bool(g, false));
        oa_set_str(g, s, "description", "Always {}");
        return s;
    case GW_WKT_ANY: {
        s = typed(g, "object", NULL);
        json_t *props = oa_obj(g);
        oa_set(g, props, "@type", typed(g, "string", NULL));
        oa_set(g, s, "properties", props);
        json_t *req = oa_arr(g);
        oa_push(g, req, oa_str(g, "@type"));
        oa_set(g, s, "required", req);
        oa_set(g, s, "additionalProperties", oa_bool(g, true));
        oa_set_str(g, s, "description",
                   "A message of the type named by the URL in @type, with that type's "
                   "fields beside it (or \"value\" for a type with a special JSON form)");
        return s;
    }
    case GW_WKT_DOUBLE_VALUE:
        s = scalar_schema(g, GW_TYPE_DOUBLE);
        break;
    case GW_WKT_FLOAT_VALUE:
        s = scalar_schema(g, GW_TYPE_FLOAT);
        break;
    case GW_WKT_INT64_VALUE:
        s = scalar_schema(g, GW_TYPE_INT64);
        break;
    case GW_WKT_UINT64_VALUE:
        s = scalar_schema(g, GW_TYPE_UINT64);
        break;
    case GW_WKT_INT32_VALUE:
        s = scalar_schema(g, GW_TYPE_INT32);
        break;
    case GW_WKT_UINT32_VALUE:
        s = scalar_schema(g, GW_TYPE_UINT32);
        break;
    case GW_WKT_BOOL_VALUE:
        s = scalar_schema(g, GW_TYPE_BOOL);
        break;
    case GW_WKT_STRING_VALUE:
        s = scalar_schema(g, GW_TYPE_STRING);
        break;
    case GW_WKT_BYTES_VALUE:
        s = scalar_schema(g, GW_TYPE_BYTES);
        break;
    default:
        return NULL;
    }
    /* Wrappers: the inner value, or null for an absent one. */
    if (nullable_wrappers)
        oa_set(g, s, "nullable", oa_bool(g, true));
    return s;
}

json_t *oa_status_ref(oa_gen *g)
{
    static const char name[] = "google.rpc.Status";
    const gw_message_def *m = gw_registry_message(g->r, name);
    if (m)
        return oa_message_ref(g, m);
    if (g->schemas && !json_object_get(g->schemas, name)) {
        const gw_message_def *any = gw_registry_message(g->r, "google.protobuf.Any");
        json_t *s = typed(g, "object", NULL), *props = oa_obj(g);
        json_t *details = typed(g, "array", NULL);
        oa_set(g, props, "code", typed(g, "integer", "int32"));
        oa_set(g, props, "message", typed(g, "string", NULL));
        oa_set(g, details, "items",
               any ? oa_message_ref(g, any) : wkt_schema(g, GW_WKT_ANY, false));
        oa_set(g, props, "details", details);
        oa_set(g, s, "properties", props);
        oa_set_str(g, s, "description",
                   "The gRPC status: code (google.rpc.Code), message and details");
        oa_set(g, g->schemas, name, s);
    }
    return ref_to(g, name);
}

/* ---------------------------------------------------------------------------
 * Fields and messages.
 */

const char *oa_field_name(const oa_gen *g, const gw_field_def *f)
{
    return g->o->proto_names ? f->name : f->json_name;
}

static bool is_message(const gw_field_def *f)
{
    return (f->type == GW_TYPE_MESSAGE || f->type == GW_TYPE_GROUP) && f->message;
}

/* One value of the field (an element of a repeated field). */
static json_t *value_schema(oa_gen *g, const gw_field_def *f)
{
    if (f->type == GW_TYPE_ENUM && f->enumeration)
        return oa_enum_ref(g, f->enumeration);
    if (is_message(f))
        return oa_message_ref(g, f->message);
    return scalar_schema(g, f->type);
}

json_t *oa_param_schema(oa_gen *g, const gw_field_def *f)
{
    if (f->type == GW_TYPE_ENUM && f->enumeration)
        return enum_schema(g, f->enumeration);
    if (is_message(f)) {
        json_t *s = wkt_schema(g, f->message->wkt, false);
        return s ? s : typed(g, "string", NULL);
    }
    return scalar_schema(g, f->type);
}

json_t *oa_field_schema(oa_gen *g, const gw_field_def *f)
{
    json_t *s;
    if (f->is_map && f->message) {
        /* JSON object keys are strings whatever the key type. */
        s = typed(g, "object", NULL);
        oa_set(g, s, "additionalProperties", value_schema(g, gw_map_value(f->message)));
    } else if (f->label == GW_LABEL_REPEATED) {
        s = typed(g, "array", NULL);
        oa_set(g, s, "items", value_schema(g, f));
    } else {
        s = value_schema(g, f);
    }
    return s;
}

static bool skipped(const gw_field_def *f, const gw_field_def *const *skip, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (skip[i] == f)
            return true;
    return false;
}

/* What a reader needs beyond the type: the comment, the oneof, map keys. */
static void field_description(oa_gen *g, const gw_field_def *f, gw_buf *d)
{
    const char *c = oa_field_comment(g, f);
    if (c && gw_buf_append_str(d, c))
        g->oom = true;
    if (f->is_map && f->message) {
        const gw_field_def *k = gw_map_key(f->message);
        if (k->type != GW_TYPE_STRING &&
            gw_buf_printf(d, "%sMap keys are %s values written as strings.", d->len ? "\n\n" : "",
                          gw_field_type_name(k->type)))
            g->oom = true;
    }
    if (f->oneof_index >= 0 && (size_t)f->oneof_index < f->containing->oneof_count) {
        const gw_oneof_def *o = &f->containing->oneofs[f->oneof_index];
        if (gw_buf_printf(d, "%sPart of oneof %s: at most one of ", d->len ? "\n\n" : "",
                          o->name))
            g->oom = true;
        for (size_t i = 0; i < o->field_count; i++)
            if (gw_buf_printf(d, "%s%s", i ? ", " : "", oa_field_name(g, o->fields[i])))
                g->oom = true;
        if (gw_buf_append_str(d, " is set."))
            g->oom = true;
    }
}

json_t *oa_message_schema(oa_gen *g, const gw_message_def *m, const gw_field_def *const *skip,
                          size_t skip_count)
{
    json_t *s = typed(g, "object", NULL);
    const char *c = oa_comment(g, m->full_name);
    if (c)
        oa_set_str(g, s, "description", c);
    json_t *props = oa_obj(g);
    gw_buf d;
    gw_buf_init(&d, 0);
    for (size_t i = 0; i < m->field_count; i++) {
        const gw_field_def *f = &m->fields[i];
        if (skipped(f, skip, skip_count))
            continue;
        json_t *fs = oa_field_schema(g, f);
        gw_buf_reset(&d);
        field_description(g, f, &d);
        if (d.len && fs) {
            if (json_object_get(fs, "$ref")) {
                /* OpenAPI 3.0 ignores siblings of $ref: wrap it. */
                json_t *w = oa_obj(g), *all = oa_arr(g);
                oa_push(g, all, fs);
                oa_set(g, w, "allOf", all);
                fs = w;
            }
            oa_set_str(g, fs, "description", (const char *)d.data);
        }
        oa_set(g, props, oa_field_name(g, f), fs);
    }
    gw_buf_free(&d);
    oa_set(g, s, "properties", props);
    return s;
}

static json_t *definition(oa_gen *g, const oa_pending *p)
{
    if (p->enumeration)
        return enum_schema(g, p->enumeration);
    const gw_message_def *m = p->message;
    json_t *s = wkt_schema(g, m->wkt, true);
    /* Our own short descriptions: the comments of the well-known types
     * (present with --include_source_info) run to pages. */
    if (s)
        return s;
    return oa_message_schema(g, m, NULL, 0);
}

void oa_flush_schemas(oa_gen *g)
{
    /* Writing a definition may queue more: a worklist, not recursion, so
     * deep or recursive schemas cost no stack. */
    for (size_t i = 0; i < g->pending_count && !g->oom; i++) {
        oa_pending p = g->pending[i];
        const char *name = p.enumeration ? p.enumeration->full_name : p.message->full_name;
        oa_set(g, g->schemas, name, definition(g, &p));
    }
    g->pending_count = 0;
}
