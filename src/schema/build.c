/*
 * Building a registry: FileDescriptorSet bytes → protobuf-c structures →
 * registry-owned definitions in one arena.
 *
 * The builder keeps each file's bytes and its unpacked FileDescriptorProto.
 * gw_registry_builder_build then works in passes so that every reference can
 * be resolved whatever the order of the files: (1) files and imports,
 * (2) every message, enum and service gets its definition and full name,
 * (3) fields, oneofs and indexes, resolving type names, (4) methods and
 * their HTTP rules. The protobuf-c structures are freed at the end.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google_api_http.pb-c.h"
#include "google_protobuf_descriptor.pb-c.h"
#include "schema/internal.h"

/* Nesting caps, checked on the raw bytes before protobuf-c (which recurses
 * without a limit) sees them. */
#define MAX_MESSAGE_NESTING 100
#define MAX_HTTP_NESTING 2 /* a rule and its additional_bindings */
#define HTTP_EXTENSION 72295728u

typedef struct pending_file {
    char *source;
    uint8_t *bytes;
    size_t len;
    Google__Protobuf__FileDescriptorProto *fdp;
} pending_file;

struct gw_registry_builder {
    pending_file *files;
    size_t count, cap;
    gw_htab by_name; /* file name → pending_file index + 1 (as a pointer-sized int) */
};

/* ---------------------------------------------------------------------------
 * Wire-format checks.
 */

/* What a length-delimited field holds, for the nesting check. */
enum wire_kind { WIRE_OPAQUE, WIRE_FILE, WIRE_MESSAGE, WIRE_HTTP };

static enum wire_kind child_kind(enum wire_kind kind, uint64_t field)
{
    if (kind == WIRE_FILE && field == 4)
        return WIRE_MESSAGE; /* FileDescriptorProto.message_type */
    if (kind == WIRE_MESSAGE && field == 3)
        return WIRE_MESSAGE; /* DescriptorProto.nested_type */
    if (kind == WIRE_HTTP && field == 11)
        return WIRE_HTTP; /* HttpRule.additional_bindings */
    return WIRE_OPAQUE;
}

/*
 * Checks that p[0..n) is well-formed wire format and that the recursive
 * fields of `kind` nest at most max_depth deep. On error *err_at is the
 * offset (from the outermost buffer, base = p's offset in it) and the return
 * is -1 (malformed) or -2 (too deep).
 */
static int wire_check(const uint8_t *p, size_t n, enum wire_kind kind, int depth,
                      int max_depth, size_t base, size_t *err_at)
{
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, p, n);
    while (!gw_wire_eof(&rd)) {
        size_t start = gw_wire_offset(&rd);
        uint32_t field;
        gw_wire_type wt;
        const uint8_t *sub;
        size_t len;
        uint64_t v;
        int bad;
        if (gw_wire_read_tag(&rd, &field, &wt)) {
            *err_at = base + start;
            return -1;
        }
        switch (wt) {
        case GW_WIRE_VARINT:
            bad = gw_wire_read_varint(&rd, &v);
            break;
        case GW_WIRE_FIXED64:
            bad = gw_wire_read_fixed64(&rd, &v);
            break;
        case GW_WIRE_FIXED32: {
            uint32_t v32;
            bad = gw_wire_read_fixed32(&rd, &v32);
            break;
        }
        case GW_WIRE_LEN: {
            bad = gw_wire_read_len(&rd, &sub, &len);
            enum wire_kind ck = child_kind(kind, field);
            if (bad || ck == WIRE_OPAQUE)
                break;
            if (depth + 1 > max_depth) {
                *err_at = base + start;
                return -2;
            }
            int rc = wire_check(sub, len, ck, depth + 1, max_depth, base + (size_t)(sub - p),
                                err_at);
            if (rc)
                return rc;
            break;
        }
        default: /* groups never occur in descriptors */
            bad = 1;
        }
        if (bad) {
            *err_at = base + start;
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Builder.
 */

gw_registry_builder *gw_registry_builder_new(void)
{
    /* All zero is an empty builder with an empty (malloc-backed) table. */
    return calloc(1, sizeof(gw_registry_builder));
}

static void pending_free(pending_file *pf)
{
    if (pf->fdp)
        google__protobuf__file_descriptor_proto__free_unpacked(pf->fdp, NULL);
    free(pf->bytes);
    free(pf->source);
    memset(pf, 0, sizeof *pf);
}

static void builder_clear(gw_registry_builder *b)
{
    for (size_t i = 0; i < b->count; i++)
        pending_free(&b->files[i]);
    free(b->files);
    b->files = NULL;
    b->count = b->cap = 0;
    /* An empty table (cap 0) allocates on its first put, so clearing
     * cannot fail. */
    gw_htab_free(&b->by_name);
}

void gw_registry_builder_del(gw_registry_builder *b)
{
    if (!b)
        return;
    builder_clear(b);
    gw_htab_free(&b->by_name);
    free(b);
}

/* Adds one FileDescriptorProto's bytes (copied). `what` says where in the
 * source it came from ("file #3") for errors. */
static int add_one(gw_registry_builder *b, const uint8_t *data, size_t len,
                   const char *source, const char *what, gw_error *e)
{
    size_t err_at = 0;
    int rc = wire_check(data, len, WIRE_FILE, 0, MAX_MESSAGE_NESTING, 0, &err_at);
    if (rc == -2)
        return gw_error_set(e, GW_EPARSE, "%s: %s: messages nested more than %d deep",
                            source, what, MAX_MESSAGE_NESTING);
    if (rc)
        return gw_error_set(e, GW_EPARSE,
                            "%s: %s: not a FileDescriptorProto (bad wire format at byte %zu)",
                            source, what, err_at);
    Google__Protobuf__FileDescriptorProto *fdp =
        google__protobuf__file_descriptor_proto__unpack(NULL, len, data);
    if (!fdp)
        return gw_error_set(e, GW_EPARSE, "%s: %s: not a valid FileDescriptorProto",
                            source, what);
    if (!fdp->name || !fdp->name[0]) {
        google__protobuf__file_descriptor_proto__free_unpacked(fdp, NULL);
        return gw_error_set(e, GW_EPARSE, "%s: %s: FileDescriptorProto without a name",
                            source, what);
    }
    const void *prev = gw_htab_get(&b->by_name, fdp->name, strlen(fdp->name));
    if (prev) {
        const pending_file *old = &b->files[(uintptr_t)prev - 1];
        bool same = old->len == len && memcmp(old->bytes, data, len) == 0;
        if (same) {
            google__protobuf__file_descriptor_proto__free_unpacked(fdp, NULL);
            return 0;
        }
        rc = gw_error_set(e, GW_EINVAL,
                          "%s: %s: conflicts with the file of the same name from %s "
                          "(contents differ)",
                          source, fdp->name, old->source);
        google__protobuf__file_descriptor_proto__free_unpacked(fdp, NULL);
        return rc;
    }
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        pending_file *files = realloc(b->files, cap * sizeof *files);
        if (!files)
            goto nomem;
        b->files = files;
        b->cap = cap;
    }
    pending_file *pf = &b->files[b->count];
    memset(pf, 0, sizeof *pf);
    pf->fdp = fdp;
    pf->source = strdup(source);
    pf->bytes = malloc(len ? len : 1);
    if (!pf->source || !pf->bytes) {
        pending_free(pf);
        return gw_error_set(e, GW_ENOMEM, "%s: out of memory", source);
    }
    memcpy(pf->bytes, data, len);
    pf->len = len;
    if (gw_htab_put(&b->by_name, fdp->name, strlen(fdp->name),
                    (const void *)(uintptr_t)(b->count + 1), NULL)) {
        pending_free(pf);
        return gw_error_set(e, GW_ENOMEM, "%s: out of memory", source);
    }
    b->count++;
    return 0;
nomem:
    google__protobuf__file_descriptor_proto__free_unpacked(fdp, NULL);
    return gw_error_set(e, GW_ENOMEM, "%s: out of memory", source);
}

int gw_registry_builder_add_set(gw_registry_builder *b, const uint8_t *data, size_t len,
                                const char *source, gw_error *e)
{
    if (!source)
        source = "descriptor set";
    if (!b || (!data && len))
        return gw_error_set(e, GW_EINVAL, "%s: no builder or data", source);
    if (len == 0)
        return gw_error_set(e, GW_EPARSE, "%s: empty file, not a descriptor set", source);
    size_t err_at = 0;
    if (wire_check(data, len, WIRE_OPAQUE, 0, 0, 0, &err_at))
        return gw_error_set(e, GW_EPARSE,
                            "%s: not a descriptor set (bad wire format at byte %zu; "
                            "truncated?)",
                            source, err_at);
    /* FileDescriptorSet is `repeated FileDescriptorProto file = 1`; walk it
     * here rather than unpack it so each file's exact bytes are kept. */
    size_t files = 0;
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, data, len);
    while (!gw_wire_eof(&rd)) {
        uint32_t field;
        gw_wire_type wt;
        const uint8_t *p;
        size_t n;
        gw_wire_read_tag(&rd, &field, &wt);
        if (field == 1 && wt != GW_WIRE_LEN)
            return gw_error_set(e, GW_EPARSE,
                                "%s: not a descriptor set (field 1 is not length-delimited)",
                                source);
        if (wt != GW_WIRE_LEN) {
            gw_wire_skip(&rd, field, wt, 0);
            continue;
        }
        gw_wire_read_len(&rd, &p, &n); /* wire_check let only well-formed fields through */
        if (field == 1) {
            char what[48];
            snprintf(what, sizeof what, "file #%zu", files + 1);
            int rc = add_one(b, p, n, source, what, e);
            if (rc)
                return rc;
            files++;
        }
    }
    if (files == 0)
        return gw_error_set(e, GW_EPARSE, "%s: not a descriptor set (no files in it)",
                            source);
    return 0;
}

int gw_registry_builder_add_file(gw_registry_builder *b, const uint8_t *data, size_t len,
                                 const char *source, gw_error *e)
{
    if (!source)
        source = "reflection";
    if (!b || (!data && len))
        return gw_error_set(e, GW_EINVAL, "%s: no builder or data", source);
    if (len == 0)
        return gw_error_set(e, GW_EPARSE, "%s: empty FileDescriptorProto", source);
    return add_one(b, data, len, source, "file", e);
}

/* ---------------------------------------------------------------------------
 * Building.
 */

typedef struct pending_msg {
    const Google__Protobuf__DescriptorProto *dp;
    gw_message_def *md;
    const pending_file *pf;
} pending_msg;

typedef struct pending_svc {
    const Google__Protobuf__ServiceDescriptorProto *sp;
    gw_service_def *sd;
    const pending_file *pf;
} pending_svc;

typedef struct build_ctx {
    gw_registry *r;
    gw_error *e;
    pending_msg *msgs;
    size_t msg_count, msg_cap;
    pending_svc *svcs;
    size_t svc_count, svc_cap;
    gw_field_def **exts; /* extensions in load order */
    size_t ext_count, ext_cap;
    gw_buf scratch;
} build_ctx;

static int nomem(build_ctx *c)
{
    return gw_error_set(c->e, GW_ENOMEM, "out of memory building the registry");
}

static bool valid_ident(const char *s)
{
    if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (const char *p = s + 1; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return false;
    return true;
}

static bool valid_package(const char *s)
{
    if (!s[0])
        return true;
    const char *p = s;
    for (;;) {
        if (!(isalpha((unsigned char)*p) || *p == '_'))
            return false;
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        if (*p == 0)
            return true;
        if (*p != '.')
            return false;
        p++;
    }
}

static char *join_name(build_ctx *c, const char *scope, const char *name)
{
    if (!scope[0])
        return gw_arena_strdup(&c->r->arena, name);
    return gw_arena_printf(&c->r->arena, "%s.%s", scope, name);
}

static gw_wkt wkt_of(const char *full_name)
{
    static const struct {
        const char *name;
        gw_wkt wkt;
    } table[] = {
        {"google.protobuf.Any", GW_WKT_ANY},
        {"google.protobuf.Timestamp", GW_WKT_TIMESTAMP},
        {"google.protobuf.Duration", GW_WKT_DURATION},
        {"google.protobuf.FieldMask", GW_WKT_FIELD_MASK},
        {"google.protobuf.Struct", GW_WKT_STRUCT},
        {"google.protobuf.Value", GW_WKT_VALUE},
        {"google.protobuf.ListValue", GW_WKT_LIST_VALUE},
        {"google.protobuf.Empty", GW_WKT_EMPTY},
        {"google.protobuf.DoubleValue", GW_WKT_DOUBLE_VALUE},
        {"google.protobuf.FloatValue", GW_WKT_FLOAT_VALUE},
        {"google.protobuf.Int64Value", GW_WKT_INT64_VALUE},
        {"google.protobuf.UInt64Value", GW_WKT_UINT64_VALUE},
        {"google.protobuf.Int32Value", GW_WKT_INT32_VALUE},
        {"google.protobuf.UInt32Value", GW_WKT_UINT32_VALUE},
        {"google.protobuf.BoolValue", GW_WKT_BOOL_VALUE},
        {"google.protobuf.StringValue", GW_WKT_STRING_VALUE},
        {"google.protobuf.BytesValue", GW_WKT_BYTES_VALUE},
        {"google.api.HttpBody", GW_WKT_HTTP_BODY},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(table); i++)
        if (strcmp(full_name, table[i].name) == 0)
            return table[i].wkt;
    return GW_WKT_NONE;
}

/* Registers a top-level symbol; two definitions of one name are an error
 * naming both files. */
static int add_symbol(build_ctx *c, const char *full_name, gw_sym_kind kind, const void *def,
                      const gw_file_def *file)
{
    gw_sym *s = gw_arena_alloc(&c->r->arena, sizeof *s);
    if (!s)
        return nomem(c);
    s->kind = kind;
    s->def = def;
    s->file = file;
    const void *prev;
    if (gw_htab_put(&c->r->symbols, full_name, strlen(full_name), s, &prev))
        return nomem(c);
    if (prev) {
        const gw_sym *p = prev;
        return gw_error_set(c->e, GW_EINVAL, "%s: %s: %s is already defined in %s (from %s)",
                            file->source, file->name, full_name, p->file->name,
                            p->file->source);
    }
    return 0;
}

static int cmp_enum_number(const void *a, const void *b)
{
    const gw_enum_number *x = a, *y = b;
    if (x->number != y->number)
        return x->number < y->number ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int build_enum(build_ctx *c, const Google__Protobuf__EnumDescriptorProto *ep,
                      const char *scope, const gw_file_def *file)
{
    gw_arena *a = &c->r->arena;
    if (!valid_ident(ep->name))
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: bad enum name '%s' in %s",
                            file->source, file->name, ep->name ? ep->name : "",
                            scope[0] ? scope : "the file");
    gw_enum_def *ed = gw_arena_calloc(a, sizeof *ed);
    gw_enum_index *ix = gw_arena_calloc(a, sizeof *ix);
    if (!ed || !ix)
        return nomem(c);
    ed->name = gw_arena_strdup(a, ep->name);
    ed->full_name = join_name(c, scope, ep->name);
    if (!ed->name || !ed->full_name)
        return nomem(c);
    ed->file = file;
    ed->closed = file->syntax == GW_SYNTAX_PROTO2;
    ed->allow_alias = ep->options && ep->options->has_allow_alias && ep->options->allow_alias;
    ed->is_null_value = strcmp(ed->full_name, "google.protobuf.NullValue") == 0;
    ed->index = ix;
    if (ep->n_value == 0)
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: enum %s has no values", file->source,
                            file->name, ed->full_name);
    gw_enum_value_def *values = gw_arena_calloc(a, ep->n_value * sizeof *values);
    gw_enum_number *nums = gw_arena_calloc(a, ep->n_value * sizeof *nums);
    if (!values || !nums || gw_htab_init(&ix->by_name, a, ep->n_value))
        return nomem(c);
    for (size_t i = 0; i < ep->n_value; i++) {
        const Google__Protobuf__EnumValueDescriptorProto *vp = ep->value[i];
        if (!valid_ident(vp->name))
            return gw_error_set(c->e, GW_EPARSE, "%s: %s: enum %s: bad value name '%s'",
                                file->source, file->name, ed->full_name,
                                vp->name ? vp->name : "");
        values[i].name = gw_arena_strdup(a, vp->name);
        if (!values[i].name)
            return nomem(c);
        values[i].number = vp->number;
        const void *prev;
        if (gw_htab_put(&ix->by_name, values[i].name, strlen(values[i].name), &values[i],
                        &prev))
            return nomem(c);
        if (prev)
            return gw_error_set(c->e, GW_EPARSE, "%s: %s: enum %s: value %s declared twice",
                                file->source, file->name, ed->full_name, vp->name);
    }
    /* Sorted by (number, position), then one entry per number: the first
     * declared name of an aliased number wins. */
    for (size_t i = 0; i < ep->n_value; i++) {
        nums[i].number = values[i].number;
        nums[i].pos = (uint32_t)i;
    }
    qsort(nums, ep->n_value, sizeof *nums, cmp_enum_number);
    size_t count = 0;
    for (size_t i = 0; i < ep->n_value; i++)
        if (count == 0 || nums[count - 1].number != nums[i].number)
            nums[count++] = nums[i];
    ix->number_count = count;
    ix->by_number = nums;
    ed->values = values;
    ed->value_count = ep->n_value;
    return add_symbol(c, ed->full_name, GW_SYM_ENUM, ed, file);
}

static int build_message_shell(build_ctx *c, const Google__Protobuf__DescriptorProto *dp,
                               const char *scope, const pending_file *pf,
                               const gw_file_def *file, int depth)
{
    if (depth > MAX_MESSAGE_NESTING)
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s: messages nested too deep",
                            file->source, file->name, scope);
    if (!valid_ident(dp->name))
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: bad message name '%s' in %s",
                            file->source, file->name, dp->name ? dp->name : "",
                            scope[0] ? scope : "the file");
    gw_message_def *md = gw_arena_calloc(&c->r->arena, sizeof *md);
    if (!md)
        return nomem(c);
    md->name = gw_arena_strdup(&c->r->arena, dp->name);
    md->full_name = join_name(c, scope, dp->name);
    if (!md->name || !md->full_name)
        return nomem(c);
    md->file = file;
    md->syntax = file->syntax;
    md->wkt = wkt_of(md->full_name);
    md->map_entry = dp->options && dp->options->has_map_entry && dp->options->map_entry;
    int rc = add_symbol(c, md->full_name, GW_SYM_MESSAGE, md, file);
    if (rc)
        return rc;
    if (c->msg_count == c->msg_cap) {
        size_t cap = c->msg_cap ? c->msg_cap * 2 : 64;
        pending_msg *m = realloc(c->msgs, cap * sizeof *m);
        if (!m)
            return nomem(c);
        c->msgs = m;
        c->msg_cap = cap;
    }
    c->msgs[c->msg_count++] = (pending_msg){dp, md, pf};
    for (size_t i = 0; i < dp->n_enum_type; i++)
        if ((rc = build_enum(c, dp->enum_type[i], md->full_name, file)))
            return rc;
    for (size_t i = 0; i < dp->n_nested_type; i++)
        if ((rc = build_message_shell(c, dp->nested_type[i], md->full_name, pf, file,
                                      depth + 1)))
            return rc;
    return 0;
}

/* Resolves a type name as protoc writes it (".pkg.Msg") or, for hand-made
 * descriptors, relative to scope with C++-like rules (innermost first). */
static const gw_sym *resolve(build_ctx *c, const char *scope, const char *ref)
{
    if (ref[0] == '.')
        return gw_htab_get(&c->r->symbols, ref + 1, strlen(ref + 1));
    size_t scope_len = strlen(scope);
    for (;;) {
        gw_buf_reset(&c->scratch);
        if (scope_len) {
            if (gw_buf_append(&c->scratch, scope, scope_len) ||
                gw_buf_append_byte(&c->scratch, '.'))
                return NULL;
        }
        if (gw_buf_append_str(&c->scratch, ref))
            return NULL;
        const gw_sym *s = gw_htab_get(&c->r->symbols, (const char *)c->scratch.data,
                                      c->scratch.len);
        if (s)
            return s;
        if (!scope_len)
            return NULL;
        const char *dot = memrchr(scope, '.', scope_len);
        scope_len = dot ? (size_t)(dot - scope) : 0;
    }
}

static char *json_name_of(gw_arena *a, const char *name)
{
    size_t n = strlen(name);
    char *out = gw_arena_alloc(a, n + 1);
    if (!out)
        return NULL;
    size_t j = 0;
    bool upper = false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (ch == '_') {
            upper = true;
            continue;
        }
        if (upper && ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        upper = false;
        out[j++] = ch;
    }
    out[j] = 0;
    return out;
}

/* JSON names end up as JSON keys and in error messages. */
static bool valid_json_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || !gw_utf8_valid((const uint8_t *)s, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static bool is_packable(gw_field_type t)
{
    return t != GW_TYPE_STRING && t != GW_TYPE_BYTES && t != GW_TYPE_MESSAGE &&
           t != GW_TYPE_GROUP;
}

static int cmp_field_number(const void *a, const void *b)
{
    const gw_field_def *x = a, *y = b;
    return x->number < y->number ? -1 : x->number > y->number;
}

/*
 * Number, label, type and type reference of a field or an extension, which
 * share these rules. Relative type names resolve from `scope`; errors name
 * the field as owner.name (owner is the message for a field, the package or
 * enclosing message for an extension).
 */
static int field_type(build_ctx *c, const Google__Protobuf__FieldDescriptorProto *fp,
                      gw_field_def *f, const char *scope, const char *owner,
                      const gw_file_def *file)
{
    const char *src = file->source, *fname = file->name, *dot = owner[0] ? "." : "";
    if (!fp->has_number || fp->number < 1 || (uint32_t)fp->number > GW_WIRE_MAX_FIELD)
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s%s%s: bad field number %d", src, fname,
                            owner, dot, fp->name, fp->has_number ? fp->number : 0);
    f->number = (uint32_t)fp->number;
    f->label = fp->has_label ? (gw_label)fp->label : GW_LABEL_OPTIONAL;
    if (f->label < GW_LABEL_OPTIONAL || f->label > GW_LABEL_REPEATED)
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s%s%s: bad label %d", src, fname, owner,
                            dot, fp->name, (int)fp->label);
    int type = fp->has_type ? (int)fp->type : 0;
    if (fp->has_type && (type < GW_TYPE_DOUBLE || type > GW_TYPE_SINT64))
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s%s%s: bad type %d", src, fname, owner,
                            dot, fp->name, type);
    bool needs_ref = type == 0 || type == GW_TYPE_MESSAGE || type == GW_TYPE_GROUP ||
                     type == GW_TYPE_ENUM;
    if (needs_ref) {
        if (!fp->type_name || !fp->type_name[0])
            return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s%s%s: no type", src, fname, owner,
                                dot, fp->name);
        const gw_sym *s = resolve(c, scope, fp->type_name);
        if (!s || (s->kind != GW_SYM_MESSAGE && s->kind != GW_SYM_ENUM))
            return gw_error_set(c->e, GW_ENOTFOUND, "%s: %s: %s%s%s: unknown type %s", src,
                                fname, owner, dot, fp->name, fp->type_name);
        if (type == 0)
            type = s->kind == GW_SYM_ENUM ? GW_TYPE_ENUM : GW_TYPE_MESSAGE;
        if ((type == GW_TYPE_ENUM) != (s->kind == GW_SYM_ENUM))
            return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s%s%s: %s is not %s", src, fname,
                                owner, dot, fp->name, fp->type_name,
                                type == GW_TYPE_ENUM ? "an enum" : "a message");
        if (s->kind == GW_SYM_ENUM)
            f->enumeration = s->def;
        else
            f->message = s->def;
    }
    f->type = (gw_field_type)type;
    return 0;
}

static int build_fields(build_ctx *c, const pending_msg *pm)
{
    const Google__Protobuf__DescriptorProto *dp = pm->dp;
    gw_message_def *md = pm->md;
    const gw_file_def *file = md->file;
    const char *src = file->source, *fname = file->name;
    gw_arena *a = &c->r->arena;

    size_t n = dp->n_field;
    gw_field_def *fields = gw_arena_calloc(a, (n ? n : 1) * sizeof *fields);
    gw_message_index *ix = gw_arena_calloc(a, sizeof *ix);
    /* oneof_decl index → index among real oneofs, or -1 for synthetic ones. */
    int32_t *oneof_map = gw_arena_calloc(a, (dp->n_oneof_decl ? dp->n_oneof_decl : 1) *
                                                sizeof *oneof_map);
    size_t *oneof_sizes = gw_arena_calloc(a, (dp->n_oneof_decl ? dp->n_oneof_decl : 1) *
                                                 sizeof *oneof_sizes);
    if (!fields || !ix || !oneof_map || !oneof_sizes)
        return nomem(c);
    for (size_t i = 0; i < dp->n_oneof_decl; i++) {
        if (!valid_ident(dp->oneof_decl[i]->name))
            return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s: bad oneof name '%s'", src,
                                fname, md->full_name,
                                dp->oneof_decl[i]->name ? dp->oneof_decl[i]->name : "");
        oneof_map[i] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const Google__Protobuf__FieldDescriptorProto *fp = dp->field[i];
        if (fp->has_oneof_index &&
            (fp->oneof_index < 0 || (size_t)fp->oneof_index >= dp->n_oneof_decl))
            return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s.%s: oneof index %d out of range",
                                src, fname, md->full_name, fp->name ? fp->name : "?",
                                fp->oneof_index);
        if (fp->has_oneof_index && fp->has_proto3_optional && fp->proto3_optional)
            oneof_map[fp->oneof_index] = -1;
    }
    size_t oneof_count = 0;
    for (size_t i = 0; i < dp->n_oneof_decl; i++)
        if (oneof_map[i] == 0)
            oneof_map[i] = (int32_t)oneof_count++;
        else
            oneof_map[i] = -1;

    for (size_t i = 0; i < n; i++) {
        const Google__Protobuf__FieldDescriptorProto *fp = dp->field[i];
        gw_field_def *f = &fields[i];
        if (!valid_ident(fp->name))
            return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s: bad field name '%s'", src,
                                fname, md->full_name, fp->name ? fp->name : "");
        f->name = gw_arena_strdup(a, fp->name);
        f->json_name = fp->json_name ? gw_arena_strdup(a, fp->json_name)
                                     : json_name_of(a, fp->name);
        if (!f->name || !f->json_name)
            return nomem(c);
        if (!valid_json_name(f->json_name))
            return gw_error_set(c->e, GW_EPARSE,
                                "%s: %s: %s.%s: json_name is empty, not UTF-8 or has control "
                                "characters",
                                src, fname, md->full_name, fp->name);
        int rc = field_type(c, fp, f, md->full_name, md->full_name, file);
        if (rc)
            return rc;
        int type = (int)f->type;
        bool repeated = f->label == GW_LABEL_REPEATED;
        bool proto3_optional = fp->has_proto3_optional && fp->proto3_optional;
        if (fp->has_oneof_index && !repeated) {
            f->oneof_index = oneof_map[fp->oneof_index];
            if (f->oneof_index >= 0)
                oneof_sizes[f->oneof_index]++;
        } else {
            f->oneof_index = -1;
        }
        f->has_presence = !repeated && (md->syntax == GW_SYNTAX_PROTO2 || proto3_optional ||
                                        f->oneof_index >= 0 || type == GW_TYPE_MESSAGE ||
                                        type == GW_TYPE_GROUP);
        f->is_map = repeated && f->message && f->message->map_entry;
        bool has_packed = fp->options && fp->options->has_packed;
        bool packed_opt = has_packed && fp->options->packed;
        if (repeated && is_packable(f->type))
            f->packed = md->syntax == GW_SYNTAX_PROTO3 ? (!has_packed || packed_opt)
                                                       : packed_opt;
        if (fp->default_value && !(f->default_value = gw_arena_strdup(a, fp->default_value)))
            return nomem(c);
        f->containing = md;
    }
    if (n > 1)
        qsort(fields, n, sizeof *fields, cmp_field_number);
    if (gw_htab_init(&ix->by_json, a, n) || gw_htab_init(&ix->by_proto, a, n))
        return nomem(c);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && fields[i].number == fields[i - 1].number)
            return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s: field number %u used by both %s and %s",
                                src, fname, md->full_name, fields[i].number,
                                fields[i - 1].name, fields[i].name);
        const void *prev;
        if (gw_htab_put(&ix->by_proto, fields[i].name, strlen(fields[i].name), &fields[i],
                        &prev))
            return nomem(c);
        if (prev)
            return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s: field %s declared twice", src,
                                fname, md->full_name, fields[i].name);
        /* A JSON name clash (possible in proto2) keeps the lower number. */
        if (gw_htab_put(&ix->by_json, fields[i].json_name, strlen(fields[i].json_name),
                        &fields[i], NULL))
            return nomem(c);
    }
    if (md->map_entry && (n != 2 || fields[0].number != 1 || fields[1].number != 2 ||
                          fields[0].label == GW_LABEL_REPEATED ||
                          fields[1].label == GW_LABEL_REPEATED))
        return gw_error_set(c->e, GW_EPARSE,
                            "%s: %s: %s: map entry must have exactly the fields key = 1 and "
                            "value = 2",
                            src, fname, md->full_name);

    gw_oneof_def *oneofs = gw_arena_calloc(a, (oneof_count ? oneof_count : 1) * sizeof *oneofs);
    if (!oneofs)
        return nomem(c);
    for (size_t i = 0; i < dp->n_oneof_decl; i++) {
        int32_t k = oneof_map[i];
        if (k < 0)
            continue;
        oneofs[k].name = gw_arena_strdup(a, dp->oneof_decl[i]->name);
        const gw_field_def **members =
            gw_arena_calloc(a, (oneof_sizes[k] ? oneof_sizes[k] : 1) * sizeof *members);
        if (!oneofs[k].name || !members)
            return nomem(c);
        size_t m = 0;
        for (size_t j = 0; j < n; j++)
            if (fields[j].oneof_index == k)
                members[m++] = &fields[j];
        oneofs[k].fields = members;
        oneofs[k].field_count = m;
    }
    /* Extension ranges, for checking the extensions built after every
     * message (declared anywhere, they may come from other files). */
    gw_ext_range *ranges = gw_arena_calloc(a, (dp->n_extension_range ? dp->n_extension_range
                                                                        : 1) * sizeof *ranges);
    if (!ranges)
        return nomem(c);
    for (size_t i = 0; i < dp->n_extension_range; i++) {
        const Google__Protobuf__DescriptorProto__ExtensionRange *er = dp->extension_range[i];
        ranges[i].start = er->has_start && er->start > 0 ? (uint32_t)er->start : 0;
        ranges[i].end = er->has_end && er->end > 0 ? (uint32_t)er->end : 0;
    }
    ix->ext_ranges = ranges;
    ix->ext_range_count = dp->n_extension_range;
    ix->message_set = dp->options && dp->options->has_message_set_wire_format &&
                      dp->options->message_set_wire_format;
    md->fields = fields;
    md->field_count = n;
    md->oneofs = oneofs;
    md->oneof_count = oneof_count;
    md->index = ix;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Extensions. They are built after every message's fields, since an
 * extension may extend (and have the type of) a message of any file, and
 * indexed in two places: the registry's symbol table (full name) and the
 * extended message's `extensions` (number).
 */

static bool in_ext_range(const gw_message_index *ix, uint32_t number)
{
    for (size_t i = 0; i < ix->ext_range_count; i++)
        if (number >= ix->ext_ranges[i].start && number < ix->ext_ranges[i].end)
            return true;
    return false;
}

/* One `extend` member declared in `scope` (package or message full name). */
static int build_extension(build_ctx *c, const Google__Protobuf__FieldDescriptorProto *fp,
                           const char *scope, const gw_message_def *scope_msg,
                           const gw_file_def *file)
{
    gw_arena *a = &c->r->arena;
    const char *src = file->source, *fname = file->name, *dot = scope[0] ? "." : "";
    if (!valid_ident(fp->name))
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: bad extension name '%s' in %s", src,
                            fname, fp->name ? fp->name : "", scope[0] ? scope : "the file");
    if (!fp->extendee || !fp->extendee[0])
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s%s%s: extension without an extendee",
                            src, fname, scope, dot, fp->name);
    const gw_sym *es = resolve(c, scope, fp->extendee);
    if (!es)
        return gw_error_set(c->e, GW_ENOTFOUND, "%s: %s: %s%s%s: unknown extendee %s", src,
                            fname, scope, dot, fp->name, fp->extendee);
    if (es->kind != GW_SYM_MESSAGE)
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s%s%s: extendee %s is not a message", src,
                            fname, scope, dot, fp->name, fp->extendee);
    const gw_message_def *ext_of = es->def;
    const gw_message_index *ix = ext_of->index;
    if (ix->message_set)
        return 0; /* MessageSet items are out of scope: not indexed, not an error */
    gw_field_def *f = gw_arena_calloc(a, sizeof *f);
    if (!f)
        return nomem(c);
    int rc = field_type(c, fp, f, scope, scope, file);
    if (rc)
        return rc;
    f->name = gw_arena_strdup(a, fp->name);
    f->full_name = join_name(c, scope, fp->name);
    if (!f->name || !f->full_name || !(f->json_name = gw_arena_printf(a, "[%s]", f->full_name)))
        return nomem(c);
    if (!in_ext_range(ix, f->number))
        return gw_error_set(c->e, GW_EPARSE,
                            "%s: %s: %s: number %u is not in an extension range of %s", src,
                            fname, f->full_name, f->number, ext_of->full_name);
    const gw_field_def *clash = gw_message_field_by_number(ext_of, f->number);
    if (clash)
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s: number %u is field %s of %s", src,
                            fname, f->full_name, f->number, clash->name, ext_of->full_name);
    if (fp->has_oneof_index)
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s: an extension cannot be in a oneof",
                            src, fname, f->full_name);
    bool repeated = f->label == GW_LABEL_REPEATED;
    f->oneof_index = -1;
    f->has_presence = !repeated;
    f->is_map = repeated && f->message && f->message->map_entry;
    bool has_packed = fp->options && fp->options->has_packed;
    bool packed_opt = has_packed && fp->options->packed;
    if (repeated && is_packable(f->type))
        f->packed = file->syntax == GW_SYNTAX_PROTO3 ? (!has_packed || packed_opt) : packed_opt;
    if (fp->default_value && !(f->default_value = gw_arena_strdup(a, fp->default_value)))
        return nomem(c);
    f->containing = ext_of;
    f->is_extension = true;
    f->scope = scope_msg;
    f->file = file;
    if ((rc = add_symbol(c, f->full_name, GW_SYM_EXTENSION, f, file)))
        return rc;
    if (c->ext_count == c->ext_cap) {
        size_t cap = c->ext_cap ? c->ext_cap * 2 : 16;
        gw_field_def **x = realloc(c->exts, cap * sizeof *x);
        if (!x)
            return nomem(c);
        c->exts = x;
        c->ext_cap = cap;
    }
    c->exts[c->ext_count++] = f;
    return 0;
}

typedef struct ext_key {
    const gw_field_def *f;
    size_t order; /* load order */
} ext_key;

/* Extended message, then number, then load order (so that of two
 * extensions with one number the error names the later one). */
static int cmp_ext(const void *pa, const void *pb)
{
    const ext_key *x = pa, *y = pb;
    int k = strcmp(x->f->containing->full_name, y->f->containing->full_name);
    if (k)
        return k;
    if (x->f->number != y->f->number)
        return x->f->number < y->f->number ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Every file's extensions (file scope first, then each message's in
 * declaration order), then the per-message tables sorted by number. */
static int build_extensions(build_ctx *c, gw_registry_builder *b, gw_file_def *fds)
{
    gw_arena *a = &c->r->arena;
    size_t k = 0;
    for (size_t i = 0; i < b->count; i++) {
        const Google__Protobuf__FileDescriptorProto *fdp = b->files[i].fdp;
        for (size_t j = 0; j < fdp->n_extension; j++) {
            int rc = build_extension(c, fdp->extension[j], fds[i].package, NULL, &fds[i]);
            if (rc)
                return rc;
        }
        /* Messages were registered file by file: this file's are a run. */
        for (; k < c->msg_count && c->msgs[k].pf == &b->files[i]; k++) {
            const pending_msg *pm = &c->msgs[k];
            for (size_t j = 0; j < pm->dp->n_extension; j++) {
                int rc = build_extension(c, pm->dp->extension[j], pm->md->full_name, pm->md,
                                         &fds[i]);
                if (rc)
                    return rc;
            }
        }
    }
    c->r->extension_count = c->ext_count;
    if (c->ext_count == 0)
        return 0;
    c->r->extensions = gw_arena_memdup(a, c->exts, c->ext_count * sizeof *c->exts);
    const gw_field_def **sorted = gw_arena_calloc(a, c->ext_count * sizeof *sorted);
    ext_key *keys = malloc(c->ext_count * sizeof *keys);
    if (!c->r->extensions || !sorted || !keys) {
        free(keys);
        return nomem(c);
    }
    for (size_t i = 0; i < c->ext_count; i++)
        keys[i] = (ext_key){c->exts[i], i};
    qsort(keys, c->ext_count, sizeof *keys, cmp_ext);
    for (size_t i = 0; i < c->ext_count; i++)
        sorted[i] = keys[i].f;
    free(keys);
    for (size_t i = 0; i < c->ext_count;) {
        size_t j = i + 1;
        while (j < c->ext_count && sorted[j]->containing == sorted[i]->containing) {
            if (sorted[j]->number == sorted[j - 1]->number) {
                const gw_field_def *x = sorted[j - 1], *y = sorted[j];
                return gw_error_set(c->e, GW_EINVAL,
                                    "%s: %s: %s: extension number %u of %s is also used by %s "
                                    "(%s)",
                                    y->file->source, y->file->name, y->full_name, y->number,
                                    y->containing->full_name, x->full_name, x->file->name);
            }
            j++;
        }
        /* The registry owns its definitions; this is the one place that
         * fills a message's extension table. */
        gw_message_def *md = (gw_message_def *)sorted[i]->containing;
        md->extensions = &sorted[i];
        md->extension_count = j - i;
        i = j;
    }
    return 0;
}

/* Copies one HttpRule (pattern, body, response_body) into out. */
static int copy_http_rule(build_ctx *c, const Google__Api__HttpRule *hr, gw_http_rule *out,
                          bool additional, const gw_method_def *m)
{
    gw_arena *a = &c->r->arena;
    const char *verb = NULL, *path = NULL;
    switch (hr->pattern_case) {
    case GOOGLE__API__HTTP_RULE__PATTERN_GET: verb = "GET"; path = hr->get; break;
    case GOOGLE__API__HTTP_RULE__PATTERN_PUT: verb = "PUT"; path = hr->put; break;
    case GOOGLE__API__HTTP_RULE__PATTERN_POST: verb = "POST"; path = hr->post; break;
    case GOOGLE__API__HTTP_RULE__PATTERN_DELETE: verb = "DELETE"; path = hr->delete_; break;
    case GOOGLE__API__HTTP_RULE__PATTERN_PATCH: verb = "PATCH"; path = hr->patch; break;
    case GOOGLE__API__HTTP_RULE__PATTERN_CUSTOM:
        if (hr->custom) {
            verb = hr->custom->kind;
            path = hr->custom->path;
        }
        break;
    default: break;
    }
    const gw_file_def *file = m->service->file;
    if (!verb || !verb[0] || !path || !path[0])
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s: google.api.http rule without %s",
                            file->source, file->name, m->full_name,
                            verb && verb[0] ? "a path" : "a method and path");
    out->verb = gw_arena_strdup(a, verb);
    out->path = gw_arena_strdup(a, path);
    out->body = gw_arena_strdup(a, hr->body ? hr->body : "");
    out->response_body = gw_arena_strdup(a, hr->response_body ? hr->response_body : "");
    out->additional = additional;
    if (!out->verb || !out->path || !out->body || !out->response_body)
        return nomem(c);
    return 0;
}

/* The google.api.http option is extension 72295728 of MethodOptions, which
 * protobuf-c keeps among the unknown fields. Several occurrences merge, as
 * for any message field, which concatenating their bytes achieves. */
static int build_http_rules(build_ctx *c, const Google__Protobuf__MethodOptions *opt,
                            gw_method_def *m)
{
    const gw_file_def *file = m->service->file;
    if (!opt)
        return 0;
    gw_buf_reset(&c->scratch);
    bool found = false;
    for (unsigned i = 0; i < opt->base.n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &opt->base.unknown_fields[i];
        if (u->tag != HTTP_EXTENSION)
            continue;
        if (u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
            return gw_error_set(c->e, GW_EPARSE,
                                "%s: %s: %s: google.api.http option is not a message",
                                file->source, file->name, m->full_name);
        /* protobuf-c keeps the length prefix in `data`. */
        gw_wire_reader rd;
        const uint8_t *p;
        size_t n;
        gw_wire_reader_init(&rd, u->data, u->len);
        if (gw_wire_read_len(&rd, &p, &n) || !gw_wire_eof(&rd))
            return gw_error_set(c->e, GW_EPARSE,
                                "%s: %s: %s: malformed google.api.http option", file->source,
                                file->name, m->full_name);
        if (gw_buf_append(&c->scratch, p, n))
            return nomem(c);
        found = true;
    }
    if (!found)
        return 0;
    size_t err_at = 0;
    int rc = wire_check(c->scratch.data, c->scratch.len, WIRE_HTTP, 0, MAX_HTTP_NESTING, 0,
                        &err_at);
    if (rc == -2)
        return gw_error_set(c->e, GW_EPARSE,
                            "%s: %s: %s: google.api.http additional_bindings may not nest",
                            file->source, file->name, m->full_name);
    Google__Api__HttpRule *hr =
        rc ? NULL : google__api__http_rule__unpack(NULL, c->scratch.len, c->scratch.data);
    if (!hr)
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s: malformed google.api.http option",
                            file->source, file->name, m->full_name);
    size_t count = 1 + hr->n_additional_bindings;
    gw_http_rule *rules = gw_arena_calloc(&c->r->arena, count * sizeof *rules);
    if (!rules) {
        rc = nomem(c);
        goto out;
    }
    if ((rc = copy_http_rule(c, hr, &rules[0], false, m)))
        goto out;
    for (size_t i = 0; i < hr->n_additional_bindings; i++) {
        const Google__Api__HttpRule *ab = hr->additional_bindings[i];
        if (ab->n_additional_bindings) {
            rc = gw_error_set(c->e, GW_EPARSE,
                              "%s: %s: %s: google.api.http additional_bindings may not nest",
                              file->source, file->name, m->full_name);
            goto out;
        }
        if ((rc = copy_http_rule(c, ab, &rules[1 + i], true, m)))
            goto out;
    }
    m->http_rules = rules;
    m->http_rule_count = count;
out:
    google__api__http_rule__free_unpacked(hr, NULL);
    return rc;
}

static int build_service_shell(build_ctx *c, const Google__Protobuf__ServiceDescriptorProto *sp,
                               const pending_file *pf, const gw_file_def *file)
{
    gw_arena *a = &c->r->arena;
    if (!valid_ident(sp->name))
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: bad service name '%s'", file->source,
                            file->name, sp->name ? sp->name : "");
    gw_service_def *sd = gw_arena_calloc(a, sizeof *sd);
    if (!sd)
        return nomem(c);
    sd->name = gw_arena_strdup(a, sp->name);
    sd->full_name = join_name(c, file->package, sp->name);
    if (!sd->name || !sd->full_name)
        return nomem(c);
    sd->file = file;
    int rc = add_symbol(c, sd->full_name, GW_SYM_SERVICE, sd, file);
    if (rc)
        return rc;
    if (c->svc_count == c->svc_cap) {
        size_t cap = c->svc_cap ? c->svc_cap * 2 : 16;
        pending_svc *s = realloc(c->svcs, cap * sizeof *s);
        if (!s)
            return nomem(c);
        c->svcs = s;
        c->svc_cap = cap;
    }
    c->svcs[c->svc_count++] = (pending_svc){sp, sd, pf};
    return 0;
}

static const gw_message_def *resolve_message(build_ctx *c, const gw_method_def *m,
                                             const char *ref, const char *what, int *rc)
{
    const gw_file_def *file = m->service->file;
    const gw_sym *s = ref && ref[0] ? resolve(c, m->service->full_name, ref) : NULL;
    if (s && s->kind != GW_SYM_MESSAGE) {
        *rc = gw_error_set(c->e, GW_EPARSE, "%s: %s: %s: %s type %s is not a message",
                           file->source, file->name, m->full_name, what, ref);
        return NULL;
    }
    if (!s) {
        *rc = gw_error_set(c->e, GW_ENOTFOUND, "%s: %s: %s: unknown %s type %s", file->source,
                           file->name, m->full_name, what, ref ? ref : "(none)");
        return NULL;
    }
    return s->def;
}

static int build_methods(build_ctx *c, const pending_svc *ps)
{
    const Google__Protobuf__ServiceDescriptorProto *sp = ps->sp;
    gw_service_def *sd = ps->sd;
    gw_arena *a = &c->r->arena;
    gw_method_def *methods = gw_arena_calloc(a, (sp->n_method ? sp->n_method : 1) *
                                                    sizeof *methods);
    if (!methods)
        return nomem(c);
    sd->methods = methods;
    for (size_t i = 0; i < sp->n_method; i++) {
        const Google__Protobuf__MethodDescriptorProto *mp = sp->method[i];
        gw_method_def *m = &methods[i];
        m->service = sd;
        if (!valid_ident(mp->name))
            return gw_error_set(c->e, GW_EPARSE, "%s: %s: %s: bad method name '%s'",
                                sd->file->source, sd->file->name, sd->full_name,
                                mp->name ? mp->name : "");
        m->name = gw_arena_strdup(a, mp->name);
        m->full_name = gw_arena_printf(a, "%s.%s", sd->full_name, mp->name);
        m->path = gw_arena_printf(a, "/%s/%s", sd->full_name, mp->name);
        if (!m->name || !m->full_name || !m->path)
            return nomem(c);
        int rc = 0;
        if (!(m->input = resolve_message(c, m, mp->input_type, "input", &rc)))
            return rc;
        if (!(m->output = resolve_message(c, m, mp->output_type, "output", &rc)))
            return rc;
        m->client_streaming = mp->has_client_streaming && mp->client_streaming;
        m->server_streaming = mp->has_server_streaming && mp->server_streaming;
        if (mp->options && mp->options->has_idempotency_level)
            m->idempotency_level = (int)mp->options->idempotency_level;
        if ((rc = build_http_rules(c, mp->options, m)))
            return rc;
        const void *prev;
        if (gw_htab_put(&c->r->methods_by_path, m->path, strlen(m->path), m, &prev))
            return nomem(c);
        if (prev)
            return gw_error_set(c->e, GW_EPARSE, "%s: %s: method %s declared twice",
                                sd->file->source, sd->file->name, m->full_name);
        sd->method_count = i + 1;
    }
    return 0;
}

static int build_file(build_ctx *c, const pending_file *pf, gw_file_def *fd)
{
    gw_arena *a = &c->r->arena;
    const Google__Protobuf__FileDescriptorProto *fdp = pf->fdp;
    fd->name = gw_arena_strdup(a, fdp->name);
    fd->package = gw_arena_strdup(a, fdp->package ? fdp->package : "");
    fd->source = gw_arena_strdup(a, pf->source);
    fd->serialized = gw_arena_memdup(a, pf->bytes, pf->len ? pf->len : 1);
    fd->serialized_len = pf->len;
    const char **deps = gw_arena_calloc(a, (fdp->n_dependency ? fdp->n_dependency : 1) *
                                               sizeof *deps);
    if (!fd->name || !fd->package || !fd->source || !fd->serialized || !deps)
        return nomem(c);
    if (!valid_package(fd->package))
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: bad package name '%s'", fd->source,
                            fd->name, fd->package);
    if (!fdp->syntax || !fdp->syntax[0] || strcmp(fdp->syntax, "proto2") == 0)
        fd->syntax = GW_SYNTAX_PROTO2;
    else if (strcmp(fdp->syntax, "proto3") == 0)
        fd->syntax = GW_SYNTAX_PROTO3;
    else
        return gw_error_set(c->e, GW_EPARSE, "%s: %s: unsupported syntax \"%s\"", fd->source,
                            fd->name, fdp->syntax);
    for (size_t i = 0; i < fdp->n_dependency; i++) {
        if (!(deps[i] = gw_arena_strdup(a, fdp->dependency[i] ? fdp->dependency[i] : "")))
            return nomem(c);
    }
    fd->dependencies = deps;
    fd->dependency_count = fdp->n_dependency;
    return 0;
}

static void build_ctx_free(build_ctx *c)
{
    free(c->msgs);
    free(c->svcs);
    free(c->exts);
    gw_buf_free(&c->scratch);
}

static int build(gw_registry_builder *b, gw_registry *r, gw_error *e)
{
    build_ctx ctx = {.r = r, .e = e};
    build_ctx *c = &ctx;
    gw_buf_init(&c->scratch, 0);
    gw_arena *a = &r->arena;
    int rc = 0;

    if (b->count == 0) {
        rc = gw_error_set(e, GW_EPARSE, "no descriptor files were added");
        goto out;
    }
    if (gw_htab_init(&r->files_by_name, a, b->count) || gw_htab_init(&r->symbols, a, 64) ||
        gw_htab_init(&r->methods_by_path, a, 16)) {
        rc = nomem(c);
        goto out;
    }
    gw_file_def *fds = gw_arena_calloc(a, b->count * sizeof *fds);
    r->files = gw_arena_calloc(a, b->count * sizeof *r->files);
    if (!fds || !r->files) {
        rc = nomem(c);
        goto out;
    }
    for (size_t i = 0; i < b->count; i++) {
        if ((rc = build_file(c, &b->files[i], &fds[i])))
            goto out;
        r->files[i] = &fds[i];
        if (gw_htab_put(&r->files_by_name, fds[i].name, strlen(fds[i].name), &fds[i], NULL)) {
            rc = nomem(c);
            goto out;
        }
    }
    r->file_count = b->count;
    /* Imports: every file a file imports must be in the set. */
    for (size_t i = 0; i < b->count; i++) {
        for (size_t j = 0; j < fds[i].dependency_count; j++) {
            const char *dep = fds[i].dependencies[j];
            if (!gw_htab_get(&r->files_by_name, dep, strlen(dep))) {
                rc = gw_error_set(e, GW_ENOTFOUND,
                                  "%s: %s: imports \"%s\", which is not in the descriptor "
                                  "set (protoc --include_imports adds it)",
                                  fds[i].source, fds[i].name, dep);
                goto out;
            }
        }
    }
    /* Every named type first, so references resolve in any order. */
    for (size_t i = 0; i < b->count; i++) {
        const Google__Protobuf__FileDescriptorProto *fdp = b->files[i].fdp;
        for (size_t j = 0; j < fdp->n_enum_type; j++)
            if ((rc = build_enum(c, fdp->enum_type[j], fds[i].package, &fds[i])))
                goto out;
        for (size_t j = 0; j < fdp->n_message_type; j++)
            if ((rc = build_message_shell(c, fdp->message_type[j], fds[i].package,
                                          &b->files[i], &fds[i], 1)))
                goto out;
        for (size_t j = 0; j < fdp->n_service; j++)
            if ((rc = build_service_shell(c, fdp->service[j], &b->files[i], &fds[i])))
                goto out;
    }
    for (size_t i = 0; i < c->msg_count; i++)
        if ((rc = build_fields(c, &c->msgs[i])))
            goto out;
    if ((rc = build_extensions(c, b, fds)))
        goto out;
    r->services = gw_arena_calloc(a, (c->svc_count ? c->svc_count : 1) * sizeof *r->services);
    if (!r->services) {
        rc = nomem(c);
        goto out;
    }
    for (size_t i = 0; i < c->svc_count; i++) {
        if ((rc = build_methods(c, &c->svcs[i])))
            goto out;
        r->services[i] = c->svcs[i].sd;
    }
    r->service_count = c->svc_count;
out:
    build_ctx_free(c);
    return rc;
}

int gw_registry_builder_build(gw_registry_builder *b, gw_registry **out, gw_error *e)
{
    if (out)
        *out = NULL;
    if (!b || !out)
        return gw_error_set(e, GW_EINVAL, "no builder");
    gw_registry *r = calloc(1, sizeof *r);
    int rc;
    if (!r) {
        rc = gw_error_set(e, GW_ENOMEM, "out of memory building the registry");
        goto out;
    }
    gw_arena_init(&r->arena, 64 * 1024, 0);
    rc = build(b, r, e);
    if (rc) {
        gw_registry_del(r);
        goto out;
    }
    *out = r;
out:
    builder_clear(b);
    return rc;
}

void gw_registry_del(gw_registry *r)
{
    if (!r)
        return;
    /* Every table lives in the arena. */
    gw_arena_free(&r->arena);
    free(r);
}

int gw_registry_load(gw_registry **out, const char *const *paths, size_t n, gw_error *e)
{
    if (out)
        *out = NULL;
    if (!out || (!paths && n))
        return gw_error_set(e, GW_EINVAL, "no output or paths");
    if (n == 0)
        return gw_error_set(e, GW_EINVAL, "no descriptor set files given");
    gw_registry_builder *b = gw_registry_builder_new();
    if (!b)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        rc = gw_read_file(paths[i], GW_SCHEMA_MAX_FILE_BYTES, &data, &len, e);
        if (rc) {
            if (rc == GW_ELIMIT)
                gw_error_set(e, rc, "%s: larger than %u bytes", paths[i],
                             GW_SCHEMA_MAX_FILE_BYTES);
            else if (rc == GW_EIO && e && !strstr(e->msg, paths[i]))
                gw_error_prefix(e, "%s", paths[i]);
            goto out;
        }
        rc = gw_registry_builder_add_set(b, data, len, paths[i], e);
        free(data);
        if (rc)
            goto out;
    }
    rc = gw_registry_builder_build(b, out, e);
out:
    gw_registry_builder_del(b);
    return rc;
}
