/*
 * protobuf -> JSON. One pass over a message's bytes collects a record per
 * field occurrence (a slice of the input, nothing copied); the records are
 * then printed grouped by field so that each key appears once, with
 * protobuf's merge rules: the last scalar wins, repeated occurrences (packed
 * or not) append, message occurrences merge (their bytes are concatenated,
 * which is exactly what merging means on the wire), and within a oneof the
 * member seen last wins.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_int.h"

/* One-byte tags and varints inline; the general readers otherwise. */
static inline int tag_fast(gw_wire_reader *rd, uint32_t *num, gw_wire_type *wt)
{
    if (rd->p < rd->end) {
        uint8_t t = *rd->p;
        if (t < 0x80 && t >= 8 && (t & 7) <= 5) {
            *num = t >> 3;
            *wt = (gw_wire_type)(t & 7);
            rd->p++;
            return 0;
        }
    }
    return gw_wire_read_tag(rd, num, wt);
}

static inline int varint_fast(gw_wire_reader *rd, uint64_t *v)
{
    if (rd->p < rd->end && *rd->p < 0x80) {
        *v = *rd->p++;
        return 0;
    }
    return gw_wire_read_varint(rd, v);
}

typedef struct rec {
    const gw_field_def *f;
    const uint8_t *p; /* LEN / group payload */
    uint64_t v;       /* VARINT / FIXED value, or LEN length */
    uint32_t pos;     /* order of appearance */
    uint8_t wt;
} rec;

#define PATH_MAX_SHOWN 64

typedef struct pj {
    const gw_registry *reg;
    const gw_codec_options *o;
    gw_buf *out;
    gw_error *e;
    unsigned depth, max_depth, level;
    unsigned pdepth; /* entries of path in use */
    rec *recs;
    size_t nrec, caprec;
    const char *path[PATH_MAX_SHOWN];
} pj;

/* The key of field f. An extension's is "[full.name]" (its json_name)
 * whichever names are asked for. */
static const char *fname(const pj *s, const gw_field_def *f)
{
    return s->o->proto_names && !f->is_extension ? f->name : f->json_name;
}

static int fail(pj *s, int code, const char *what)
{
    if (!s->e)
        return code;
    char where[256];
    size_t k = 0;
    unsigned n = s->pdepth < PATH_MAX_SHOWN ? s->pdepth : PATH_MAX_SHOWN;
    where[0] = 0;
    for (unsigned i = 0; i < n && k < sizeof where - 1; i++) {
        if (!s->path[i])
            continue;
        int w = snprintf(where + k, sizeof where - k, "%s%s", k ? "." : "", s->path[i]);
        if (w < 0)
            break;
        k += (size_t)w;
        if (k >= sizeof where)
            k = sizeof where - 1;
    }
    if (k)
        return gw_error_set(s->e, code, "%s: %s", where, what);
    return gw_error_set(s->e, code, "%s", what);
}

/* Every message is a level, map entries aside (docs/codec.md, Depth); the
 * JSON parser counts the same way, so what it accepts prints back. */
static int too_deep(pj *s)
{
    char what[64];
    snprintf(what, sizeof what, "nesting deeper than %u message levels", s->max_depth);
    return fail(s, GW_EDEPTH, what);
}

/* --- output -------------------------------------------------------------- */

static inline int put(pj *s, const char *p, size_t n)
{
    gw_buf *b = s->out;
    if (b->len + n < b->cap && (!b->max || b->len + n <= b->max)) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
    }
    return gw_buf_append(b, p, n);
}

static inline int putc1(pj *s, char c)
{
    gw_buf *b = s->out;
    if (b->len + 1 < b->cap && (!b->max || b->len + 1 <= b->max)) {
        b->data[b->len++] = (uint8_t)c;
        return 0;
    }
    return gw_buf_append(b, &c, 1);
}

static int newline(pj *s)
{
    int rc = gw_buf_reserve(s->out, 1 + (size_t)s->level * s->o->indent);
    if (rc)
        return rc;
    gw_buf *b = s->out;
    b->data[b->len++] = '\n';
    memset(b->data + b->len, ' ', (size_t)s->level * s->o->indent);
    b->len += (size_t)s->level * s->o->indent;
    return 0;
}

static int open_c(pj *s, char c)
{
    s->level++;
    return putc1(s, c);
}

/* Before each member or element. */
static int sep(pj *s, bool *first)
{
    int rc = 0;
    if (!*first)
        rc = putc1(s, ',');
    *first = false;
    if (!rc && s->o->indent)
        rc = newline(s);
    return rc;
}

static int close_c(pj *s, char c, bool first)
{
    s->level--;
    if (s->o->indent && !first) {
        int rc = newline(s);
        if (rc)
            return rc;
    }
    return putc1(s, c);
}

/* 1 for bytes that cannot appear raw inside a JSON string. */
static const uint8_t needs_escape[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline uint64_t load8(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* Whether any of 8 bytes is a control character, '"' or '\\' (may err
 * towards yes, never towards no). */
static inline bool word_needs_escape(uint64_t w)
{
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
    return (((w - ONES * 0x20) & ~w) | ((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS;
}

int gw_codec_json_append_string(gw_buf *b, const char *str, size_t n)
{
    const uint8_t *p = (const uint8_t *)str, *end = p + n;
    /* Room for the common case (nothing to escape); escapes reserve more. */
    int rc = gw_buf_reserve(b, n + 2);
    if (rc)
        return rc;
    b->data[b->len++] = '"';
    while (p < end) {
        const uint8_t *run = p;
        while (end - p >= 8 && !word_needs_escape(load8(p)))
            p += 8;
        while (p < end && !needs_escape[*p])
            p++;
        if (p > run) {
            memcpy(b->data + b->len, run, (size_t)(p - run));
            b->len += (size_t)(p - run);
        }
        if (p == end)
            break;
        /* An escape takes up to 6 bytes where the byte took 1; the closing
         * quote and the rest of the input are already reserved. */
        if ((rc = gw_buf_reserve(b, (size_t)(end - p) + 6)))
            return rc;
        uint8_t c = *p++, *o = b->data + b->len;
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = "0123456789abcdef"[c >> 4];
            *o++ = "0123456789abcdef"[c & 15];
        }
        b->len = (size_t)(o - b->data);
    }
    b->data[b->len++] = '"';
    b->data[b->len] = 0;
    return 0;
}

static int put_key(pj *s, const char *name, bool *first)
{
    int rc = sep(s, first);
    if (!rc)
        rc = gw_codec_json_append_string(s->out, name, strlen(name));
    if (!rc)
        rc = s->o->indent ? put(s, ": ", 2) : putc1(s, ':');
    return rc;
}

/* --- field lookup and record collection ---------------------------------- */

static const gw_field_def *field_by_number(const gw_message_def *m, uint32_t num)
{
    if (num - 1 < m->field_count && m->fields[num - 1].number == num)
        return &m->fields[num - 1];
    size_t lo = 0, hi = m->field_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint32_t n = m->fields[mid].number;
        if (n == num)
            return &m->fields[mid];
        if (n < num)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int push_rec(pj *s, const rec *r)
{
    if (s->nrec == s->caprec) {
        size_t cap = s->caprec ? s->caprec * 2 : 64;
        rec *n = realloc(s->recs, cap * sizeof *n);
        if (!n)
            return GW_ENOMEM;
        s->recs = n;
        s->caprec = cap;
    }
    s->recs[s->nrec++] = *r;
    return 0;
}

/* The body of a group whose start tag was just read: up to its end tag. */
static int group_body(pj *s, gw_wire_reader *rd, uint32_t field, const uint8_t **body,
                      size_t *n)
{
    const uint8_t *start = rd->p;
    unsigned left = s->max_depth > s->depth ? s->max_depth - s->depth : 0;
    for (;;) {
        const uint8_t *at = rd->p;
        uint32_t f;
        gw_wire_type t;
        if (tag_fast(rd, &f, &t))
            return GW_EPARSE;
        if (t == GW_WIRE_EGROUP) {
            if (f != field)
                return GW_EPARSE;
            *body = start;
            *n = (size_t)(at - start);
            return 0;
        }
        int rc = gw_wire_skip(rd, f, t, left);
        if (rc)
            return rc;
    }
}

/* By field number (fields and extensions never share one), then order. */
static int rec_cmp(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    if (x->f->number != y->f->number)
        return x->f->number < y->f->number ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Appends records for data[0..len) to s->recs, sorted by field then order. */
static int collect(pj *s, const gw_message_def *m, const uint8_t *data, size_t len)
{
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, data, len);
    size_t base = s->nrec;
    uint32_t pos = 0;
    bool sorted = true;
    unsigned left = s->max_depth > s->depth ? s->max_depth - s->depth : 0;
    while (!gw_wire_eof(&rd)) {
        uint32_t num;
        gw_wire_type wt;
        uint8_t t0 = *rd.p;
        if (t0 < 0x80 && t0 >= 8 && (t0 & 7) <= 5) {
            /* one-byte tag: fields 1..15 */
            num = t0 >> 3;
            wt = (gw_wire_type)(t0 & 7);
            rd.p++;
        } else if (tag_fast(&rd, &num, &wt)) {
            return fail(s, GW_EPARSE, "malformed protobuf: bad tag");
        }
        const gw_field_def *f = field_by_number(m, num);
        if (!f && m->extension_count)
            f = gw_message_extension_by_number(m, num);
        rec r = {.f = f, .pos = pos++, .wt = (uint8_t)wt};
        int rc = 0;
        bool keep = false;
        if (f) {
            gw_wire_type want = gw_codec_wire_type_of(f->type);
            if (wt == want) {
                keep = true;
            } else if (wt == GW_WIRE_LEN && f->label == GW_LABEL_REPEATED &&
                       want != GW_WIRE_LEN && want != GW_WIRE_SGROUP) {
                keep = true; /* packed */
            }
        }
        if (!keep) {
            rc = gw_wire_skip(&rd, num, wt, left);
            if (rc == GW_ELIMIT)
                return fail(s, GW_EDEPTH, "groups nested too deeply");
            if (rc)
                return fail(s, GW_EPARSE, "malformed protobuf: truncated field");
            continue;
        }
        switch (wt) {
        case GW_WIRE_VARINT:
            if (rd.p < rd.end && *rd.p < 0x80)
                r.v = *rd.p++;
            else
                rc = varint_fast(&rd, &r.v);
            break;
        case GW_WIRE_FIXED64:
            rc = gw_wire_read_fixed64(&rd, &r.v);
            break;
        case GW_WIRE_FIXED32: {
            uint32_t v32;
            rc = gw_wire_read_fixed32(&rd, &v32);
            r.v = v32;
            break;
        }
        case GW_WIRE_LEN: {
            size_t n;
            if (rd.p < rd.end && *rd.p < 0x80 && *rd.p < rd.end - rd.p) {
                n = *rd.p++;
                r.p = rd.p;
                rd.p += n;
            } else {
                rc = gw_wire_read_len(&rd, &r.p, &n);
            }
            r.v = n;
            break;
        }
        case GW_WIRE_SGROUP: {
            size_t n;
            rc = group_body(s, &rd, num, &r.p, &n);
            if (rc == GW_ELIMIT)
                return fail(s, GW_EDEPTH, "groups nested too deeply");
            r.v = n;
            break;
        }
        default:
            rc = GW_EPARSE;
        }
        if (rc)
            return fail(s, GW_EPARSE, "malformed protobuf: truncated field");
        if (s->nrec > base && s->recs[s->nrec - 1].f->number > f->number)
            sorted = false;
        if ((rc = push_rec(s, &r)))
            return fail(s, rc, "out of memory");
    }
    if (!sorted)
        qsort(s->recs + base, s->nrec - base, sizeof(rec), rec_cmp);
    return 0;
}

/* --- scalar values -------------------------------------------------------- */

static bool is_packable(gw_field_type t)
{
    gw_wire_type w = gw_codec_wire_type_of(t);
    return w != GW_WIRE_LEN && w != GW_WIRE_SGROUP;
}

static int print_double(pj *s, double d)
{
    if (isnan(d))
        return put(s, "\"NaN\"", 5);
    if (isinf(d))
        return d > 0 ? put(s, "\"Infinity\"", 10) : put(s, "\"-Infinity\"", 11);
    char tmp[40];
    return put(s, tmp, gw_codec_fmt_double(tmp, d));
}

static int print_float(pj *s, float d)
{
    if (isnan(d))
        return put(s, "\"NaN\"", 5);
    if (isinf(d))
        return d > 0 ? put(s, "\"Infinity\"", 10) : put(s, "\"-Infinity\"", 11);
    char tmp[40];
    return put(s, tmp, gw_codec_fmt_float(tmp, d));
}

static int print_quoted_i64(pj *s, int64_t v)
{
    char tmp[24];
    tmp[0] = '"';
    size_t n = 1 + gw_codec_fmt_i64(tmp + 1, v);
    tmp[n++] = '"';
    return put(s, tmp, n);
}

static int print_quoted_u64(pj *s, uint64_t v)
{
    char tmp[24];
    tmp[0] = '"';
    size_t n = 1 + gw_codec_fmt_u64(tmp + 1, v);
    tmp[n++] = '"';
    return put(s, tmp, n);
}

static int print_i64(pj *s, int64_t v)
{
    char tmp[24];
    return put(s, tmp, gw_codec_fmt_i64(tmp, v));
}

static bool enum_known(const gw_enum_def *en, int32_t v)
{
    return gw_enum_value_by_number(en, v) != NULL;
}

static int print_enum(pj *s, const gw_enum_def *en, int32_t v)
{
    if (en && en->is_null_value)
        return put(s, "null", 4);
    if (!s->o->enums_as_ints && en) {
        const gw_enum_value_def *ev = gw_enum_value_by_number(en, v);
        if (ev)
            return gw_codec_json_append_string(s->out, ev->name, strlen(ev->name));
    }
    return print_i64(s, v);
}

static bool is_ascii(const uint8_t *p, size_t n)
{
    size_t i = 0;
    uint64_t acc = 0;
    for (; i + 8 <= n; i += 8)
        acc |= load8(p + i);
    for (; i < n; i++)
        acc |= p[i];
    return !(acc & HIGHS);
}

static int print_string(pj *s, const uint8_t *p, size_t n)
{
    if (!is_ascii(p, n) && !gw_utf8_valid(p, n))
        return fail(s, GW_EPARSE, "string field holds invalid UTF-8");
    return gw_codec_json_append_string(s->out, (const char *)p, n);
}

static int print_bytes(pj *s, const uint8_t *p, size_t n)
{
    size_t enc = gw_base64_encoded_len(n, true);
    int rc = gw_buf_reserve(s->out, enc + 2);
    if (rc)
        return rc;
    gw_buf *b = s->out;
    b->data[b->len++] = '"';
    b->len += gw_base64_encode(p, n, (char *)b->data + b->len, true);
    b->data[b->len++] = '"';
    return 0;
}

/* A scalar held in v (already decoded from its wire type). */
static int print_scalar(pj *s, const gw_field_def *f, uint64_t v)
{
    switch (f->type) {
    case GW_TYPE_DOUBLE: {
        double d;
        memcpy(&d, &v, 8);
        return print_double(s, d);
    }
    case GW_TYPE_FLOAT: {
        uint32_t u = (uint32_t)v;
        float d;
        memcpy(&d, &u, 4);
        return print_float(s, d);
    }
    case GW_TYPE_INT64:
    case GW_TYPE_SFIXED64:
        return print_quoted_i64(s, (int64_t)v);
    case GW_TYPE_SINT64:
        return print_quoted_i64(s, gw_zigzag_decode64(v));
    case GW_TYPE_UINT64:
    case GW_TYPE_FIXED64:
        return print_quoted_u64(s, v);
    case GW_TYPE_INT32:
    case GW_TYPE_SFIXED32:
        return print_i64(s, (int32_t)(uint32_t)v);
    case GW_TYPE_SINT32:
        return print_i64(s, gw_zigzag_decode32((uint32_t)v));
    case GW_TYPE_UINT32:
    case GW_TYPE_FIXED32:
        return print_i64(s, (uint32_t)v);
    case GW_TYPE_BOOL:
        return v ? put(s, "true", 4) : put(s, "false", 5);
    case GW_TYPE_ENUM:
        return print_enum(s, f->enumeration, (int32_t)(uint32_t)v);
    default:
        return GW_EINVAL;
    }
}

/* The default JSON value of a field that is absent. */
static int print_default(pj *s, const gw_field_def *f)
{
    switch (f->type) {
    case GW_TYPE_STRING:
    case GW_TYPE_BYTES:
        return put(s, "\"\"", 2);
    case GW_TYPE_MESSAGE:
    case GW_TYPE_GROUP:
        return put(s, "{}", 2);
    case GW_TYPE_ENUM: {
        const gw_enum_def *en = f->enumeration;
        if (en && en->is_null_value)
            return put(s, "null", 4);
        if (en && en->value_count && !s->o->enums_as_ints)
            return gw_codec_json_append_string(s->out, en->values[0].name,
                                               strlen(en->values[0].name));
        return print_i64(s, en && en->value_count ? en->values[0].number : 0);
    }
    default:
        return print_scalar(s, f, 0);
    }
}

/* Reads one element of a packed run. */
static int packed_next(gw_wire_reader *rd, gw_wire_type wt, uint64_t *v)
{
    if (wt == GW_WIRE_VARINT)
        return varint_fast(rd, v);
    if (wt == GW_WIRE_FIXED64)
        return gw_wire_read_fixed64(rd, v);
    uint32_t u;
    int rc = gw_wire_read_fixed32(rd, &u);
    *v = u;
    return rc;
}

static int print_message(pj *s, const gw_message_def *m, const uint8_t *data, size_t len);
static int print_fields(pj *s, const gw_message_def *m, const uint8_t *data, size_t len,
                        bool *first);

/* A message value made of one or more occurrences r[0..n): merged. */
static int print_merged(pj *s, const gw_message_def *m, const rec *r, size_t n)
{
    if (n == 1)
        return print_message(s, m, r[0].p, (size_t)r[0].v);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += (size_t)r[i].v;
    uint8_t *cat = malloc(total ? total : 1);
    if (!cat)
        return fail(s, GW_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(cat + k, r[i].p, (size_t)r[i].v);
        k += (size_t)r[i].v;
    }
    int rc = print_message(s, m, cat, total);
    free(cat);
    return rc;
}

/* --- maps ---------------------------------------------------------------- */

typedef struct map_ent {
    const uint8_t *key;  /* key text (into the input or into txt) */
    size_t key_len;
    uint32_t pos;
    const uint8_t *val;  /* entry payload: the value is re-read from it */
    size_t val_len;
    char txt[24];
} map_ent;

static int ent_cmp(const void *a, const void *b)
{
    const map_ent *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int ent_ptr_cmp(const void *a, const void *b)
{
    return ent_cmp(*(map_ent *const *)a, *(map_ent *const *)b);
}

/* Reads the key of a map entry into e. */
static int map_key(pj *s, const gw_field_def *kf, map_ent *e)
{
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, e->val, e->val_len);
    bool have = false;
    uint64_t kv = 0;
    const uint8_t *kp = NULL;
    size_t kn = 0;
    gw_wire_type want = gw_codec_wire_type_of(kf->type);
    while (!gw_wire_eof(&rd)) {
        uint32_t num;
        gw_wire_type wt;
        if (tag_fast(&rd, &num, &wt))
            return fail(s, GW_EPARSE, "malformed map entry");
        if (num == 1 && wt == want) {
            int rc = want == GW_WIRE_LEN ? gw_wire_read_len(&rd, &kp, &kn)
                                         : packed_next(&rd, want, &kv);
            if (rc)
                return fail(s, GW_EPARSE, "malformed map entry");
            have = true;
            continue;
        }
        if (gw_wire_skip(&rd, num, wt, s->max_depth))
            return fail(s, GW_EPARSE, "malformed map entry");
    }
    if (kf->type == GW_TYPE_STRING) {
        if (!have)
            kp = (const uint8_t *)"";
        if (!gw_utf8_valid(kp, kn))
            return fail(s, GW_EPARSE, "map key holds invalid UTF-8");
        e->key = kp;
        e->key_len = kn;
        return 0;
    }
    size_t n;
    switch (kf->type) {
    case GW_TYPE_INT64:
    case GW_TYPE_SFIXED64:
        n = gw_codec_fmt_i64(e->txt, (int64_t)kv);
        break;
    case GW_TYPE_SINT64:
        n = gw_codec_fmt_i64(e->txt, gw_zigzag_decode64(kv));
        break;
    case GW_TYPE_UINT64:
    case GW_TYPE_FIXED64:
        n = gw_codec_fmt_u64(e->txt, kv);
        break;
    case GW_TYPE_INT32:
    case GW_TYPE_SFIXED32:
        n = gw_codec_fmt_i64(e->txt, (int32_t)(uint32_t)kv);
        break;
    case GW_TYPE_SINT32:
        n = gw_codec_fmt_i64(e->txt, gw_zigzag_decode32((uint32_t)kv));
        break;
    case GW_TYPE_UINT32:
    case GW_TYPE_FIXED32:
        n = gw_codec_fmt_u64(e->txt, (uint32_t)kv);
        break;
    case GW_TYPE_BOOL:
        n = (size_t)snprintf(e->txt, sizeof e->txt, "%s", kv ? "true" : "false");
        break;
    default:
        return fail(s, GW_EPARSE, "unsupported map key type");
    }
    e->key = (const uint8_t *)e->txt;
    e->key_len = n;
    return 0;
}

static int print_value_of(pj *s, const gw_field_def *f, const rec *r, size_t n);

/* The value of a map entry (last occurrence wins, messages merge). */
static int print_map_value(pj *s, const gw_field_def *vf, const uint8_t *p, size_t len)
{
    size_t base = s->nrec;
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, p, len);
    gw_wire_type want = gw_codec_wire_type_of(vf->type);
    uint32_t pos = 0;
    int rc = 0;
    while (!gw_wire_eof(&rd)) {
        uint32_t num;
        gw_wire_type wt;
        if (tag_fast(&rd, &num, &wt)) {
            rc = fail(s, GW_EPARSE, "malformed map entry");
            goto out;
        }
        if (num == 2 && wt == want) {
            rec r = {.f = vf, .pos = pos++, .wt = (uint8_t)wt};
            size_t n = 0;
            if (wt == GW_WIRE_LEN)
                rc = gw_wire_read_len(&rd, &r.p, &n);
            else if (wt == GW_WIRE_SGROUP)
                rc = group_body(s, &rd, 2, &r.p, &n);
            else
                rc = packed_next(&rd, wt, &r.v);
            if (wt == GW_WIRE_LEN || wt == GW_WIRE_SGROUP)
                r.v = n;
            if (rc) {
                rc = fail(s, GW_EPARSE, "malformed map entry");
                goto out;
            }
            if (vf->type == GW_TYPE_ENUM && vf->enumeration && vf->enumeration->closed &&
                !enum_known(vf->enumeration, (int32_t)r.v))
                continue;
            if ((rc = push_rec(s, &r)))
                goto out;
            continue;
        }
        if (gw_wire_skip(&rd, num, wt, s->max_depth)) {
            rc = fail(s, GW_EPARSE, "malformed map entry");
            goto out;
        }
    }
    if (s->nrec == base && (vf->type == GW_TYPE_MESSAGE || vf->type == GW_TYPE_GROUP))
        rc = print_message(s, vf->message, (const uint8_t *)"", 0);
    else if (s->nrec == base)
        rc = print_default(s, vf);
    else
        rc = print_value_of(s, vf, s->recs + base, s->nrec - base);
out:
    s->nrec = base;
    return rc;
}

static int print_map(pj *s, const gw_field_def *f, const rec *r, size_t n)
{
    const gw_message_def *entry = f->message;
    if (!entry || entry->field_count < 2)
        return fail(s, GW_EINVAL, "map entry without key and value");
    const gw_field_def *kf = gw_map_key(entry), *vf = gw_map_value(entry);
    map_ent small[8], *small_idx[8];
    map_ent *ents = n <= 8 ? small : malloc(n * sizeof *ents);
    if (!ents)
        return fail(s, GW_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        ents[i].val = r[i].p;
        ents[i].val_len = (size_t)r[i].v;
        ents[i].pos = (uint32_t)i;
        if ((rc = map_key(s, kf, &ents[i])))
            goto out;
    }
    /* Sorting by key makes duplicates adjacent (the last one wins) and the
     * output deterministic. An index is sorted so that the entries, whose
     * keys may point into their own txt, never move. */
    map_ent **idx = n <= 8 ? small_idx : malloc(n * sizeof *idx);
    if (!idx) {
        rc = fail(s, GW_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        idx[i] = &ents[i];
    if (n > 8) {
        qsort(idx, n, sizeof *idx, ent_ptr_cmp);
    } else {
        for (size_t i = 1; i < n; i++) {
            map_ent *x = idx[i];
            size_t j = i;
            for (; j > 0 && ent_cmp(idx[j - 1], x) > 0; j--)
                idx[j] = idx[j - 1];
            idx[j] = x;
        }
    }
    bool first = true;
    if ((rc = open_c(s, '{')))
        goto out2;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && idx[i + 1]->key_len == idx[i]->key_len &&
            memcmp(idx[i + 1]->key, idx[i]->key, idx[i]->key_len) == 0)
            continue; /* a later entry with the same key wins */
        if ((rc = sep(s, &first)))
            goto out2;
        if ((rc = gw_codec_json_append_string(s->out, (const char *)idx[i]->key,
                                              idx[i]->key_len)))
            goto out2;
        if ((rc = s->o->indent ? put(s, ": ", 2) : putc1(s, ':')))
            goto out2;
        if ((rc = print_map_value(s, vf, idx[i]->val, idx[i]->val_len)))
            goto out2;
    }
    rc = close_c(s, '}', first);
out2:
    if (idx != small_idx)
        free(idx);
out:
    if (ents != small)
        free(ents);
    return rc;
}

/* --- fields ---------------------------------------------------------------- */

/* The value (after the key) of field f from its records r[0..n), n >= 1. */
static int print_value_of(pj *s, const gw_field_def *f, const rec *r, size_t n)
{
    int rc = 0;
    if (f->is_map)
        return print_map(s, f, r, n);
    if (f->label == GW_LABEL_REPEATED) {
        bool first = true;
        if ((rc = open_c(s, '[')))
            return rc;
        const gw_enum_def *closed =
            f->type == GW_TYPE_ENUM && f->enumeration && f->enumeration->closed ? f->enumeration
                                                                                : NULL;
        /* Printing an element may grow (and move) s->recs: copy each
         * record before using it. */
        size_t ri = (size_t)(r - s->recs);
        for (size_t i = 0; i < n; i++) {
            const rec cur = s->recs[ri + i], *e = &cur;
            if (e->wt == GW_WIRE_LEN && is_packable(f->type)) {
                gw_wire_reader rd;
                gw_wire_reader_init(&rd, e->p, (size_t)e->v);
                gw_wire_type wt = gw_codec_wire_type_of(f->type);
                while (!gw_wire_eof(&rd)) {
                    uint64_t v;
                    if (packed_next(&rd, wt, &v))
                        return fail(s, GW_EPARSE, "malformed packed field");
                    if (closed && !enum_known(closed, (int32_t)v))
                        continue;
                    if ((rc = sep(s, &first)) || (rc = print_scalar(s, f, v)))
                        return rc;
                }
                continue;
            }
            if (closed && !enum_known(closed, (int32_t)e->v))
                continue;
            if ((rc = sep(s, &first)))
                return rc;
            switch (f->type) {
            case GW_TYPE_STRING:
                rc = print_string(s, e->p, (size_t)e->v);
                break;
            case GW_TYPE_BYTES:
                rc = print_bytes(s, e->p, (size_t)e->v);
                break;
            case GW_TYPE_MESSAGE:
            case GW_TYPE_GROUP:
                rc = print_message(s, f->message, e->p, (size_t)e->v);
                break;
            default:
                rc = print_scalar(s, f, e->v);
            }
            if (rc)
                return rc;
        }
        return close_c(s, ']', first);
    }
    const rec *last = &r[n - 1];
    switch (f->type) {
    case GW_TYPE_STRING:
        return print_string(s, last->p, (size_t)last->v);
    case GW_TYPE_BYTES:
        return print_bytes(s, last->p, (size_t)last->v);
    case GW_TYPE_MESSAGE:
    case GW_TYPE_GROUP:
        return print_merged(s, f->message, r, n);
    default:
        return print_scalar(s, f, last->v);
    }
}

/* Whether a singular field without presence holds its default. */
static bool is_default(const gw_field_def *f, const rec *last)
{
    switch (f->type) {
    case GW_TYPE_STRING:
    case GW_TYPE_BYTES:
        return last->v == 0;
    case GW_TYPE_MESSAGE:
    case GW_TYPE_GROUP:
        return false;
    case GW_TYPE_ENUM:
        /* NullValue has one value; any number prints as null, which reads
         * back as NULL_VALUE, the default. */
        if (f->enumeration && f->enumeration->is_null_value)
            return true;
        return (uint32_t)last->v == 0;
    case GW_TYPE_FLOAT:
    case GW_TYPE_INT32:
    case GW_TYPE_UINT32:
    case GW_TYPE_SINT32:
    case GW_TYPE_FIXED32:
    case GW_TYPE_SFIXED32:
        return (uint32_t)last->v == 0;
    case GW_TYPE_BOOL:
    default:
        return last->v == 0;
    }
}

/* Whether a repeated field has an element to print: empty packed runs and
 * unknown numbers of a closed enum do not count. A malformed packed run
 * counts, so that printing reports it. */
static bool repeated_nonempty(const gw_field_def *f, const rec *r, size_t n)
{
    const gw_enum_def *closed =
        f->type == GW_TYPE_ENUM && f->enumeration && f->enumeration->closed ? f->enumeration : NULL;
    for (size_t i = 0; i < n; i++) {
        if (!(r[i].wt == GW_WIRE_LEN && is_packable(f->type))) {
            if (!closed || enum_known(closed, (int32_t)r[i].v))
                return true;
            continue;
        }
        if (!closed) {
            if (r[i].v)
                return true;
            continue;
        }
        gw_wire_reader rd;
        gw_wire_reader_init(&rd, r[i].p, (size_t)r[i].v);
        while (!gw_wire_eof(&rd)) {
            uint64_t v;
            if (varint_fast(&rd, &v) || enum_known(closed, (int32_t)v))
                return true;
        }
    }
    return false;
}

static int print_field(pj *s, const gw_field_def *f, rec *r, size_t n, bool *first)
{
    /* Closed enums: an unknown number is an unknown field, so the previous
     * valid occurrence (if any) stands. */
    if (f->label != GW_LABEL_REPEATED && f->type == GW_TYPE_ENUM && f->enumeration &&
        f->enumeration->closed) {
        while (n > 0 && !enum_known(f->enumeration, (int32_t)r[n - 1].v))
            n--;
        if (n == 0)
            return 0;
    }
    if (f->label != GW_LABEL_REPEATED && !f->has_presence && !s->o->emit_defaults &&
        is_default(f, &r[n - 1]))
        return 0;
    /* An extension with no element left (an empty packed run, unknown
     * closed-enum numbers) is absent, and absent extensions never print:
     * emit_defaults only concerns declared fields. */
    if (f->label == GW_LABEL_REPEATED && (!s->o->emit_defaults || f->is_extension) &&
        !repeated_nonempty(f, r, n))
        return 0;
    int rc = put_key(s, fname(s, f), first);
    if (rc)
        return rc;
    if (s->pdepth < PATH_MAX_SHOWN)
        s->path[s->pdepth] = fname(s, f);
    s->pdepth++;
    rc = print_value_of(s, f, r, n);
    s->pdepth--;
    return rc;
}

/* Prints the members of message m (no braces) into an open object. */
static int print_fields(pj *s, const gw_message_def *m, const uint8_t *data, size_t len,
                        bool *first)
{
    size_t base = s->nrec;
    int rc = collect(s, m, data, len);
    if (rc)
        goto out;
    size_t end = s->nrec, i = base;
    for (size_t fi = 0; fi <= m->field_count; fi++) {
        const gw_field_def *f = fi < m->field_count ? &m->fields[fi] : NULL;
        /* Extensions print among the fields in number order (records are
         * sorted by number); only those present print. */
        while (i < end && s->recs[i].f->is_extension && (!f || s->recs[i].f->number < f->number)) {
            const gw_field_def *x = s->recs[i].f;
            size_t j = i;
            while (j < end && s->recs[j].f == x)
                j++;
            if ((rc = print_field(s, x, s->recs + i, j - i, first)))
                goto out;
            i = j;
        }
        if (!f)
            break;
        size_t j = i;
        while (j < end && s->recs[j].f == f)
            j++;
        if (j > i) {
            size_t from = i;
            if (f->oneof_index >= 0) {
                /* Another member of the same oneof seen later clears this
                 * one; one seen earlier cuts off the occurrences before it. */
                uint32_t mine = s->recs[j - 1].pos, other = 0;
                bool later = false, earlier = false;
                for (size_t k = base; k < end; k++) {
                    const gw_field_def *g = s->recs[k].f;
                    if (g == f || g->oneof_index != f->oneof_index)
                        continue;
                    if (s->recs[k].pos > mine)
                        later = true;
                    else if (!earlier || s->recs[k].pos > other) {
                        earlier = true;
                        other = s->recs[k].pos;
                    }
                }
                if (later) {
                    i = j;
                    continue;
                }
                if (earlier)
                    while (from < j && s->recs[from].pos < other)
                        from++;
            }
            rc = print_field(s, f, s->recs + from, j - from, first);
            i = j;
        } else if (s->o->emit_defaults && f->oneof_index < 0 &&
                   (f->label == GW_LABEL_REPEATED || !f->has_presence)) {
            if ((rc = put_key(s, fname(s, f), first)))
                goto out;
            if (f->is_map)
                rc = put(s, "{}", 2);
            else if (f->label == GW_LABEL_REPEATED)
                rc = put(s, "[]", 2);
            else
                rc = print_default(s, f);
        }
        if (rc)
            goto out;
    }
out:
    s->nrec = base;
    return rc;
}

/* --- well-known types ------------------------------------------------------ */

/* The last occurrence of field `num` with wire type wt in data. */
static int last_of(pj *s, const uint8_t *data, size_t len, uint32_t want_num,
                   gw_wire_type want_wt, uint64_t *v, const uint8_t **p, bool *found)
{
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, data, len);
    *found = false;
    while (!gw_wire_eof(&rd)) {
        uint32_t num;
        gw_wire_type wt;
        if (tag_fast(&rd, &num, &wt))
            return fail(s, GW_EPARSE, "malformed protobuf: bad tag");
        if (num == want_num && wt == want_wt) {
            int rc;
            if (wt == GW_WIRE_LEN) {
                size_t n;
                rc = gw_wire_read_len(&rd, p, &n);
                *v = n;
            } else {
                rc = packed_next(&rd, wt, v);
            }
            if (rc)
                return fail(s, GW_EPARSE, "malformed protobuf: truncated field");
            *found = true;
            continue;
        }
        int rc = gw_wire_skip(&rd, num, wt, s->max_depth);
        if (rc)
            return fail(s, rc == GW_ELIMIT ? GW_EDEPTH : GW_EPARSE, "malformed protobuf");
    }
    return 0;
}

static int print_time(pj *s, const gw_message_def *m, const uint8_t *data, size_t len)
{
    uint64_t secs = 0, nanos = 0;
    const uint8_t *p;
    bool f1, f2;
    int rc = last_of(s, data, len, 1, GW_WIRE_VARINT, &secs, &p, &f1);
    if (!rc)
        rc = last_of(s, data, len, 2, GW_WIRE_VARINT, &nanos, &p, &f2);
    if (rc)
        return rc;
    char tmp[48];
    size_t n;
    tmp[0] = '"';
    if (m->wkt == GW_WKT_TIMESTAMP)
        rc = gw_codec_fmt_timestamp(tmp + 1, &n, (int64_t)secs, (int32_t)(uint32_t)nanos);
    else
        rc = gw_codec_fmt_duration(tmp + 1, &n, (int64_t)secs, (int32_t)(uint32_t)nanos);
    if (rc)
        return fail(s, GW_ERANGE, m->wkt == GW_WKT_TIMESTAMP
                                      ? "Timestamp out of range for JSON"
                                      : "Duration out of range for JSON");
    tmp[n + 1] = '"';
    return put(s, tmp, n + 2);
}

static int print_field_mask(pj *s, const uint8_t *data, size_t len)
{
    gw_buf joined;
    gw_buf_init(&joined, s->out->max);
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, data, len);
    int rc = 0;
    bool first = true;
    while (!gw_wire_eof(&rd)) {
        uint32_t num;
        gw_wire_type wt;
        if (tag_fast(&rd, &num, &wt)) {
            rc = fail(s, GW_EPARSE, "malformed protobuf: bad tag");
            goto out;
        }
        if (num == 1 && wt == GW_WIRE_LEN) {
            const uint8_t *p;
            size_t n;
            if (gw_wire_read_len(&rd, &p, &n)) {
                rc = fail(s, GW_EPARSE, "malformed protobuf: truncated field");
                goto out;
            }
            if (!gw_utf8_valid(p, n)) {
                rc = fail(s, GW_EPARSE, "FieldMask path holds invalid UTF-8");
                goto out;
            }
            if (n == 0 || memchr(p, ',', n)) {
                rc = fail(s, GW_ERANGE, "FieldMask path has no JSON form");
                goto out;
            }
            if (!first && (rc = gw_buf_append_byte(&joined, ',')))
                goto out;
            first = false;
            rc = gw_codec_snake_to_camel(&joined, (const char *)p, n);
            if (rc == GW_ERANGE) {
                rc = fail(s, GW_ERANGE, "FieldMask path has no JSON form");
                goto out;
            }
            if (rc)
                goto out;
            continue;
        }
        if (gw_wire_skip(&rd, num, wt, s->max_depth)) {
            rc = fail(s, GW_EPARSE, "malformed protobuf");
            goto out;
        }
    }
    rc = gw_codec_json_append_string(s->out, joined.data ? (const char *)joined.data : "",
                                     joined.len);
out:
    gw_buf_free(&joined);
    return rc;
}

static int print_single_field_wkt(pj *s, const gw_message_def *m, const uint8_t *data,
                                  size_t len, char open, char close)
{
    /* Struct and ListValue: the JSON form of their only field. */
    size_t base = s->nrec;
    int rc = collect(s, m, data, len);
    if (!rc) {
        if (s->nrec == base)
            rc = put(s, open == '{' ? "{}" : "[]", 2);
        else
            rc = print_value_of(s, &m->fields[0], s->recs + base, s->nrec - base);
    }
    s->nrec = base;
    (void)close;
    return rc;
}

static int print_value_wkt(pj *s, const gw_message_def *m, const uint8_t *data, size_t len)
{
    size_t base = s->nrec;
    int rc = collect(s, m, data, len);
    if (rc)
        goto out;
    const rec *best = NULL;
    for (size_t k = base; k < s->nrec; k++)
        if (s->recs[k].f->oneof_index >= 0 && (!best || s->recs[k].pos > best->pos))
            best = &s->recs[k];
    if (!best) {
        rc = put(s, "null", 4);
        goto out;
    }
    const gw_field_def *f = best->f;
    switch (f->number) {
    case 1:
        rc = put(s, "null", 4);
        break;
    case 2: {
        double d;
        memcpy(&d, &best->v, 8);
        if (!isfinite(d)) {
            rc = fail(s, GW_ERANGE, "Value number_value is not finite");
            goto out;
        }
        rc = print_double(s, d);
        break;
    }
    case 3:
        rc = print_string(s, best->p, (size_t)best->v);
        break;
    case 4:
        rc = best->v ? put(s, "true", 4) : put(s, "false", 5);
        break;
    default: {
        /* struct_value / list_value: merge the occurrences after the last
         * member of another kind (records are sorted by field, so the run
         * of f is contiguous). */
        uint32_t other = 0;
        bool earlier = false;
        size_t k0 = s->nrec, to = base;
        for (size_t k = base; k < s->nrec; k++) {
            if (s->recs[k].f == f) {
                if (k < k0)
                    k0 = k;
                to = k + 1;
            } else if (s->recs[k].f->oneof_index >= 0 && s->recs[k].pos < best->pos &&
                       (!earlier || s->recs[k].pos > other)) {
                earlier = true;
                other = s->recs[k].pos;
            }
        }
        while (earlier && k0 < to && s->recs[k0].pos < other)
            k0++;
        rc = print_merged(s, f->message, s->recs + k0, to - k0);
    }
    }
out:
    s->nrec = base;
    return rc;
}

/* Types whose JSON is not an object of their fields get {"@type", "value"}
 * inside an Any. Empty is an ordinary (field-less) message there. */
static bool special_json(gw_wkt w)
{
    return w != GW_WKT_NONE && w != GW_WKT_HTTP_BODY && w != GW_WKT_EMPTY;
}

static int print_any(pj *s, const gw_message_def *m, const uint8_t *data, size_t len)
{
    uint64_t un = 0, vn = 0;
    const uint8_t *url = NULL, *val = NULL;
    bool f1, f2;
    int rc = last_of(s, data, len, 1, GW_WIRE_LEN, &un, &url, &f1);
    if (!rc)
        rc = last_of(s, data, len, 2, GW_WIRE_LEN, &vn, &val, &f2);
    if (rc)
        return rc;
    if (un == 0) {
        if (vn != 0)
            return fail(s, GW_ERANGE, "Any has a value but no type_url");
        return put(s, "{}", 2);
    }
    if (!gw_utf8_valid(url, un))
        return fail(s, GW_EPARSE, "Any type_url holds invalid UTF-8");
    const gw_message_def *t =
        gw_registry_message_by_type_url(s->reg, (const char *)url, (size_t)un);
    if (!t) {
        char msg[200];
        snprintf(msg, sizeof msg, "Any type '%.*s' is not in the registry",
                 (int)(un > 120 ? 120 : un), (const char *)url);
        return fail(s, GW_ERANGE, msg);
    }
    bool first = true;
    if ((rc = open_c(s, '{')) || (rc = put_key(s, "@type", &first)) ||
        (rc = gw_codec_json_append_string(s->out, (const char *)url, (size_t)un)))
        return rc;
    if (special_json(t->wkt)) {
        if ((rc = put_key(s, "value", &first)) ||
            (rc = print_message(s, t, val ? val : (const uint8_t *)"", (size_t)vn)))
            return rc;
    } else {
        if (++s->depth > s->max_depth)
            return too_deep(s);
        rc = print_fields(s, t, val ? val : (const uint8_t *)"", (size_t)vn, &first);
        s->depth--;
        if (rc)
            return rc;
    }
    return close_c(s, '}', first);
}

/* A wrapper prints as its value alone; an absent value as its default. */
static int print_wrapper(pj *s, const gw_message_def *m, const uint8_t *data, size_t len)
{
    const gw_field_def *vf = m->field_count ? &m->fields[0] : NULL;
    if (!vf)
        return fail(s, GW_EINVAL, "wrapper without a value field");
    size_t base = s->nrec;
    int rc = collect(s, m, data, len);
    if (!rc) {
        if (s->nrec == base)
            rc = print_default(s, vf);
        else
            rc = print_value_of(s, vf, s->recs + base, s->nrec - base);
    }
    s->nrec = base;
    return rc;
}

static int print_message(pj *s, const gw_message_def *m, const uint8_t *data, size_t len)
{
    int rc;
    if (!m)
        return fail(s, GW_EINVAL, "message type not resolved");
    if (++s->depth > s->max_depth) {
        s->depth--;
        return too_deep(s);
    }
    switch (m->wkt) {
    case GW_WKT_ANY:
        rc = print_any(s, m, data, len);
        break;
    case GW_WKT_TIMESTAMP:
    case GW_WKT_DURATION:
        rc = print_time(s, m, data, len);
        break;
    case GW_WKT_FIELD_MASK:
        rc = print_field_mask(s, data, len);
        break;
    case GW_WKT_STRUCT:
        rc = print_single_field_wkt(s, m, data, len, '{', '}');
        break;
    case GW_WKT_LIST_VALUE:
        rc = print_single_field_wkt(s, m, data, len, '[', ']');
        break;
    case GW_WKT_VALUE:
        rc = print_value_wkt(s, m, data, len);
        break;
    default: {
        if (gw_wkt_is_wrapper(m->wkt)) {
            rc = print_wrapper(s, m, data, len);
            break;
        }
        bool first = true;
        rc = open_c(s, '{');
        if (!rc)
            rc = print_fields(s, m, data, len, &first);
        if (!rc)
            rc = close_c(s, '}', first);
    }
    }
    s->depth--;
    return rc;
}

/* --- public ---------------------------------------------------------------- */

void gw_codec_options_init(gw_codec_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_depth = GW_CODEC_DEFAULT_MAX_DEPTH;
}

static int run(pj *s, const gw_codec_options *opts, gw_buf *out, size_t in_len,
               int (*body)(pj *s, const void *arg), const void *arg)
{
    gw_codec_options defaults;
    if (!opts) {
        gw_codec_options_init(&defaults);
        opts = &defaults;
    }
    s->o = opts;
    s->out = out;
    s->max_depth = opts->max_depth ? opts->max_depth : GW_CODEC_DEFAULT_MAX_DEPTH;
    if (opts->max_input && in_len > opts->max_input)
        return gw_error_set(s->e, GW_ELIMIT, "input of %zu bytes exceeds the limit of %zu",
                            in_len, opts->max_input);
    size_t start = out->len, saved_max = out->max;
    if (opts->max_output && (out->max == 0 || out->max - out->len > opts->max_output))
        out->max = out->len + opts->max_output;
    int rc = body(s, arg);
    out->max = saved_max;
    free(s->recs);
    if (rc == GW_ELIMIT && (!s->e || s->e->code == 0))
        gw_error_set(s->e, GW_ELIMIT, "JSON output exceeds the limit");
    else if (rc == GW_ENOMEM && (!s->e || s->e->code == 0))
        gw_error_set(s->e, GW_ENOMEM, "out of memory");
    else if (rc && s->e && s->e->code == 0)
        gw_error_set(s->e, rc, "%s", gw_err_str(rc));
    if (out->data)
        out->data[out->len] = 0;
    (void)start;
    return rc;
}

typedef struct msg_arg {
    const gw_message_def *m;
    const gw_field_def *f;
    const uint8_t *data;
    size_t len;
} msg_arg;

static int body_message(pj *s, const void *arg)
{
    const msg_arg *a = arg;
    return print_message(s, a->m, a->data, a->len);
}

int gw_codec_proto_to_json(const gw_registry *r, const gw_message_def *m,
                           const uint8_t *data, size_t len, const gw_codec_options *opts,
                           gw_buf *out, gw_error *e)
{
    if (!m || !out || (!data && len))
        return gw_error_set(e, GW_EINVAL, "proto_to_json: missing argument");
    if (e)
        gw_error_clear(e);
    pj s;
    memset(&s, 0, sizeof s);
    s.reg = r;
    s.e = e;
    msg_arg a = {.m = m, .data = data ? data : (const uint8_t *)"", .len = len};
    return run(&s, opts, out, len, body_message, &a);
}

static int body_field(pj *s, const void *arg)
{
    const msg_arg *a = arg;
    const gw_field_def *f = a->f;
    const gw_message_def *m = f->containing;
    size_t base = s->nrec;
    int rc = collect(s, m, a->data, a->len);
    if (rc)
        return rc;
    size_t i = base;
    while (i < s->nrec && s->recs[i].f != f)
        i++;
    size_t j = i;
    while (j < s->nrec && s->recs[j].f == f)
        j++;
    s->path[0] = fname(s, f);
    s->pdepth = 1;
    s->depth = 1; /* the containing message, as in gw_codec_json_to_field */
    if (j == i) {
        if (f->is_map)
            rc = put(s, "{}", 2);
        else if (f->label == GW_LABEL_REPEATED)
            rc = put(s, "[]", 2);
        else if (f->type == GW_TYPE_MESSAGE || f->type == GW_TYPE_GROUP)
            rc = put(s, "null", 4);
        else
            rc = print_default(s, f);
    } else {
        rc = print_value_of(s, f, s->recs + i, j - i);
    }
    s->nrec = base;
    return rc;
}

int gw_codec_field_to_json(const gw_registry *r, const gw_field_def *f,
                           const uint8_t *data, size_t len, const gw_codec_options *opts,
                           gw_buf *out, gw_error *e)
{
    if (!f || !f->containing || !out || (!data && len))
        return gw_error_set(e, GW_EINVAL, "field_to_json: missing argument");
    if (e)
        gw_error_clear(e);
    pj s;
    memset(&s, 0, sizeof s);
    s.reg = r;
    s.e = e;
    msg_arg a = {.f = f, .data = data ? data : (const uint8_t *)"", .len = len};
    return run(&s, opts, out, len, body_field, &a);
}
