/*
 * Registry lookups and the hash table behind them. Everything here reads a
 * built, immutable registry, so it is safe from any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "schema/internal.h"

/* ---------------------------------------------------------------------------
 * Hash table.
 */

static int htab_alloc(gw_htab *t, size_t cap)
{
    if (cap > SIZE_MAX / sizeof(gw_htab_slot))
        return GW_ENOMEM;
    gw_htab_slot *slots = t->arena ? gw_arena_calloc(t->arena, cap * sizeof *slots)
                                   : calloc(cap, sizeof *slots);
    if (!slots)
        return GW_ENOMEM;
    gw_htab_slot *old = t->slots;
    size_t old_cap = t->cap;
    t->slots = slots;
    t->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].key)
            continue;
        size_t j = (size_t)gw_hash(old[i].key, old[i].len) & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = old[i];
    }
    if (!t->arena)
        free(old);
    return 0;
}

int gw_htab_init(gw_htab *t, gw_arena *arena, size_t expected)
{
    t->slots = NULL;
    t->cap = 0;
    t->count = 0;
    t->arena = arena;
    size_t cap = 8;
    /* Keep the load at most one half so probes stay short. */
    while (cap / 2 < expected) {
        if (cap > SIZE_MAX / 4)
            return GW_ENOMEM;
        cap *= 2;
    }
    return htab_alloc(t, cap);
}

void gw_htab_free(gw_htab *t)
{
    if (!t->arena)
        free(t->slots);
    t->slots = NULL;
    t->cap = 0;
    t->count = 0;
}

const void *gw_htab_get(const gw_htab *t, const char *key, size_t len)
{
    if (!t->cap)
        return NULL;
    size_t j = (size_t)gw_hash(key, len) & (t->cap - 1);
    while (t->slots[j].key) {
        if (t->slots[j].len == len && memcmp(t->slots[j].key, key, len) == 0)
            return t->slots[j].val;
        j = (j + 1) & (t->cap - 1);
    }
    return NULL;
}

int gw_htab_put(gw_htab *t, const char *key, size_t len, const void *val,
                const void **prev)
{
    if (prev)
        *prev = NULL;
    if ((t->count + 1) * 2 > t->cap) {
        int rc = htab_alloc(t, t->cap ? t->cap * 2 : 8);
        if (rc)
            return rc;
    }
    size_t j = (size_t)gw_hash(key, len) & (t->cap - 1);
    while (t->slots[j].key) {
        if (t->slots[j].len == len && memcmp(t->slots[j].key, key, len) == 0) {
            if (prev)
                *prev = t->slots[j].val;
            return 0;
        }
        j = (j + 1) & (t->cap - 1);
    }
    t->slots[j].key = key;
    t->slots[j].len = len;
    t->slots[j].val = val;
    t->count++;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Registry lookups.
 */

static const gw_sym *find_sym(const gw_registry *r, const char *name, size_t len)
{
    if (!r || !name)
        return NULL;
    if (len && name[0] == '.') {
        name++;
        len--;
    }
    return gw_htab_get(&r->symbols, name, len);
}

static const void *find_kind(const gw_registry *r, const char *name, gw_sym_kind kind)
{
    const gw_sym *s = name ? find_sym(r, name, strlen(name)) : NULL;
    return s && s->kind == kind ? s->def : NULL;
}

const gw_message_def *gw_registry_message(const gw_registry *r, const char *full_name)
{
    return find_kind(r, full_name, GW_SYM_MESSAGE);
}

const gw_enum_def *gw_registry_enum(const gw_registry *r, const char *full_name)
{
    return find_kind(r, full_name, GW_SYM_ENUM);
}

const gw_service_def *gw_registry_service(const gw_registry *r, const char *full_name)
{
    return find_kind(r, full_name, GW_SYM_SERVICE);
}

const gw_method_def *gw_registry_method_by_path(const gw_registry *r, const char *path,
                                                size_t len)
{
    if (!r || !path)
        return NULL;
    return gw_htab_get(&r->methods_by_path, path, len);
}

const gw_message_def *gw_registry_message_by_type_url(const gw_registry *r,
                                                      const char *url, size_t len)
{
    if (!r || !url)
        return NULL;
    const char *slash = memrchr(url, '/', len);
    const char *name = slash ? slash + 1 : url;
    size_t n = len - (size_t)(name - url);
    const gw_sym *s = find_sym(r, name, n);
    return s && s->kind == GW_SYM_MESSAGE ? s->def : NULL;
}

const gw_file_def *gw_registry_file(const gw_registry *r, const char *name)
{
    if (!r || !name)
        return NULL;
    return gw_htab_get(&r->files_by_name, name, strlen(name));
}

const gw_file_def *gw_registry_file_containing(const gw_registry *r, const char *symbol)
{
    if (!r || !symbol)
        return NULL;
    size_t len = strlen(symbol);
    const gw_sym *s = find_sym(r, symbol, len);
    if (s)
        return s->file;
    /* Not a type or service: maybe a member (field, method, enum value) of one. */
    const char *dot = memrchr(symbol, '.', len);
    if (!dot)
        return NULL;
    const char *member = dot + 1;
    size_t member_len = len - (size_t)(member - symbol);
    s = find_sym(r, symbol, (size_t)(dot - symbol));
    if (!s)
        return NULL;
    switch (s->kind) {
    case GW_SYM_MESSAGE:
        return gw_message_field_by_proto_name(s->def, member, member_len) ? s->file : NULL;
    case GW_SYM_SERVICE: {
        const gw_service_def *sv = s->def;
        for (size_t i = 0; i < sv->method_count; i++)
            if (strlen(sv->methods[i].name) == member_len &&
                memcmp(sv->methods[i].name, member, member_len) == 0)
                return s->file;
        return NULL;
    }
    case GW_SYM_ENUM:
        return gw_enum_value_by_name(s->def, member, member_len) ? s->file : NULL;
    case GW_SYM_EXTENSION:
        return NULL; /* an extension has no members */
    }
    return NULL;
}

const gw_field_def *gw_registry_extension(const gw_registry *r, const char *full_name,
                                          size_t len)
{
    const gw_sym *s = find_sym(r, full_name, len);
    return s && s->kind == GW_SYM_EXTENSION ? s->def : NULL;
}

size_t gw_registry_extension_count(const gw_registry *r)
{
    return r ? r->extension_count : 0;
}

const gw_field_def *gw_registry_extension_at(const gw_registry *r, size_t i)
{
    return r && i < r->extension_count ? r->extensions[i] : NULL;
}

size_t gw_registry_file_count(const gw_registry *r)
{
    return r ? r->file_count : 0;
}

const gw_file_def *gw_registry_file_at(const gw_registry *r, size_t i)
{
    return r && i < r->file_count ? r->files[i] : NULL;
}

size_t gw_registry_service_count(const gw_registry *r)
{
    return r ? r->service_count : 0;
}

const gw_service_def *gw_registry_service_at(const gw_registry *r, size_t i)
{
    return r && i < r->service_count ? r->services[i] : NULL;
}

/* ---------------------------------------------------------------------------
 * Message and enum lookups.
 */

const gw_field_def *gw_message_field_by_number(const gw_message_def *m, uint32_t number)
{
    if (!m)
        return NULL;
    size_t lo = 0, hi = m->field_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t n = m->fields[mid].number;
        if (n == number)
            return &m->fields[mid];
        if (n < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t gw_message_extension_index(const gw_message_def *m, uint32_t number)
{
    size_t lo = 0, hi = m ? m->extension_count : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->extensions[mid]->number < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const gw_field_def *gw_message_extension_by_number(const gw_message_def *m,
                                                   uint32_t number)
{
    size_t i = gw_message_extension_index(m, number);
    return m && i < m->extension_count && m->extensions[i]->number == number
               ? m->extensions[i]
               : NULL;
}

const gw_field_def *gw_message_field_by_json_name(const gw_message_def *m,
                                                  const char *name, size_t len)
{
    if (!m || !m->index || !name)
        return NULL;
    const gw_message_index *ix = m->index;
    return gw_htab_get(&ix->by_json, name, len);
}

const gw_field_def *gw_message_field_by_proto_name(const gw_message_def *m,
                                                   const char *name, size_t len)
{
    if (!m || !m->index || !name)
        return NULL;
    const gw_message_index *ix = m->index;
    return gw_htab_get(&ix->by_proto, name, len);
}

const gw_field_def *gw_message_field_by_name(const gw_message_def *m, const char *name,
                                             size_t len)
{
    const gw_field_def *f = gw_message_field_by_json_name(m, name, len);
    return f ? f : gw_message_field_by_proto_name(m, name, len);
}

const gw_enum_value_def *gw_enum_value_by_name(const gw_enum_def *e, const char *name,
                                               size_t len)
{
    if (!e || !e->index || !name)
        return NULL;
    const gw_enum_index *ix = e->index;
    return gw_htab_get(&ix->by_name, name, len);
}

const gw_enum_value_def *gw_enum_value_by_number(const gw_enum_def *e, int32_t number)
{
    if (!e || !e->index)
        return NULL;
    const gw_enum_index *ix = e->index;
    size_t lo = 0, hi = ix->number_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int32_t n = ix->by_number[mid].number;
        if (n == number)
            return &e->values[ix->by_number[mid].pos];
        if (n < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *gw_field_type_name(gw_field_type t)
{
    static const char *const names[] = {
        [GW_TYPE_DOUBLE] = "double",     [GW_TYPE_FLOAT] = "float",
        [GW_TYPE_INT64] = "int64",       [GW_TYPE_UINT64] = "uint64",
        [GW_TYPE_INT32] = "int32",       [GW_TYPE_FIXED64] = "fixed64",
        [GW_TYPE_FIXED32] = "fixed32",   [GW_TYPE_BOOL] = "bool",
        [GW_TYPE_STRING] = "string",     [GW_TYPE_GROUP] = "group",
        [GW_TYPE_MESSAGE] = "message",   [GW_TYPE_BYTES] = "bytes",
        [GW_TYPE_UINT32] = "uint32",     [GW_TYPE_ENUM] = "enum",
        [GW_TYPE_SFIXED32] = "sfixed32", [GW_TYPE_SFIXED64] = "sfixed64",
        [GW_TYPE_SINT32] = "sint32",     [GW_TYPE_SINT64] = "sint64",
    };
    if ((int)t < 1 || (size_t)t >= GW_ARRAY_LEN(names))
        return "unknown";
    return names[t];
}
