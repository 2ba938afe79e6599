/*
 * JSON -> protobuf. A recursive-descent parser over the JSON text, driven by
 * the message definition, writes wire bytes as it goes. No tree is built:
 * strings without escapes are used in place, escaped ones are decoded into
 * a scratch buffer that is popped as soon as the value is written.
 *
 * Length prefixes are back-filled: a sub-message gets a one-byte placeholder
 * and, when its body turns out to be 128 bytes or more, the body is moved
 * up by the extra length bytes. Most sub-messages are short, so the move is
 * rare; when it happens it costs one memmove of the body per nesting level,
 * bounded by max_depth, and the output stays minimal (no padded varints).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_int.h"

#define PATH_SHOWN 32
#define SKIPPED 1 /* a value parsed but nothing written (ignored enum name) */

typedef struct pseg {
    const char *name;
    long idx; /* array index, or -1 */
} pseg;

typedef struct jp {
    const gw_registry *reg;
    const gw_codec_options *o;
    const char *start, *p, *end;
    gw_buf *out;
    gw_buf scratch;
    gw_error *e;
    const char *val_at; /* start of the last scalar token or key */
    unsigned depth, max_depth;
    unsigned pdepth;
    pseg path[PATH_SHOWN];
} jp;

enum { T_STRING, T_NUMBER, T_TRUE, T_FALSE, T_NULL, T_OBJECT, T_ARRAY };

typedef struct tok {
    int kind;
    const char *p; /* STRING: decoded text; NUMBER: the literal */
    size_t n;
} tok;

static int vfail(jp *s, const char *at, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* The message names the JSON path and the byte offset `at`. */
static int vfail(jp *s, const char *at, int code, const char *fmt, va_list ap)
{
    if (!s->e)
        return code;
    if (s->e->code)
        return code; /* keep the innermost message */
    char where[256];
    size_t k = 0;
    where[0] = 0;
    unsigned n = s->pdepth < PATH_SHOWN ? s->pdepth : PATH_SHOWN;
    for (unsigned i = 0; i < n && k < sizeof where - 32; i++) {
        int w = 0;
        if (s->path[i].name)
            w = snprintf(where + k, sizeof where - k, "%s%s", k ? "." : "", s->path[i].name);
        if (w > 0)
            k += (size_t)w;
        if (k < sizeof where - 24 && s->path[i].idx >= 0) {
            w = snprintf(where + k, sizeof where - k, "[%ld]", s->path[i].idx);
            if (w > 0)
                k += (size_t)w;
        }
    }
    if (k >= sizeof where)
        k = sizeof where - 1;
    char what[300];
    vsnprintf(what, sizeof what, fmt, ap);
    size_t off = (size_t)(at - s->start);
    if (k)
        return gw_error_set(s->e, code, "%s: %s (at byte %zu)", where, what, off);
    return gw_error_set(s->e, code, "%s (at byte %zu)", what, off);
}

static int fail(jp *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_value(jp *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* At the current position (syntax: where the parser stopped). */
static int fail(jp *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(s, s->p, code, fmt, ap);
    va_end(ap);
    return rc;
}

/* At the start of the value just read (a number out of range, a bad
 * Timestamp): where the offending value begins, not where it ends. */
static int fail_value(jp *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(s, s->val_at ? s->val_at : s->p, code, fmt, ap);
    va_end(ap);
    return rc;
}

static int oom(jp *s, int rc)
{
    if (rc == GW_ELIMIT)
        return fail(s, rc, "output exceeds the limit");
    return fail(s, rc, "out of memory");
}

static void push_path(jp *s, const char *name)
{
    if (s->pdepth < PATH_SHOWN) {
        s->path[s->pdepth].name = name;
        s->path[s->pdepth].idx = -1;
    }
    s->pdepth++;
}

static void set_index(jp *s, long i)
{
    if (s->pdepth > 0 && s->pdepth <= PATH_SHOWN)
        s->path[s->pdepth - 1].idx = i;
}

static void pop_path(jp *s)
{
    s->pdepth--;
}

/* --- tokenizer ------------------------------------------------------------- */

static inline void ws(jp *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* One message level more. The rule (docs/codec.md, Depth) is the printer's:
 * every message is a level, map entries aside, so Struct -> Value -> Struct
 * is two levels per JSON object. */
static int too_deep(jp *s)
{
    return fail(s, GW_EDEPTH, "nesting deeper than %u message levels", s->max_depth);
}

static int enter(jp *s)
{
    if (++s->depth > s->max_depth)
        return too_deep(s);
    return 0;
}

static int hex4(const char *p, unsigned *v)
{
    unsigned r = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        r <<= 4;
        if (c >= '0' && c <= '9')
            r |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            r |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            r |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *v = r;
    return 0;
}

static size_t utf8_put(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * Reads a string at s->p (which is '"'). Without escapes *out points into
 * the input; otherwise into s->scratch (the caller restores scratch.len).
 */
static int read_string(jp *s, const char **out, size_t *n)
{
    const char *q = s->p + 1;
    bool ascii = true;
    while (q < s->end) {
        unsigned char c = (unsigned char)*q;
        if (c == '"' || c == '\\' || c < 0x20)
            break;
        if (c >= 0x80)
            ascii = false;
        q++;
    }
    if (q >= s->end)
        return fail(s, GW_EPARSE, "unterminated string");
    if (*q == '"') {
        if (!ascii && !gw_utf8_valid((const uint8_t *)s->p + 1, (size_t)(q - s->p - 1)))
            return fail(s, GW_EPARSE, "invalid UTF-8 in string");
        *out = s->p + 1;
        *n = (size_t)(q - s->p - 1);
        s->p = q + 1;
        return 0;
    }
    /* Slow path: decode escapes into scratch. */
    size_t mark = s->scratch.len;
    const char *r = s->p + 1;
    for (;;) {
        const char *run = r;
        while (r < s->end && *r != '"' && *r != '\\' && (unsigned char)*r >= 0x20)
            r++;
        if (r > run) {
            if (!gw_utf8_valid((const uint8_t *)run, (size_t)(r - run))) {
                s->p = run;
                return fail(s, GW_EPARSE, "invalid UTF-8 in string");
            }
            int rc = gw_buf_append(&s->scratch, run, (size_t)(r - run));
            if (rc)
                return oom(s, rc);
        }
        if (r >= s->end) {
            s->p = r;
            return fail(s, GW_EPARSE, "unterminated string");
        }
        if (*r == '"')
            break;
        if (*r != '\\') {
            s->p = r;
            return fail(s, GW_EPARSE, "control character in string");
        }
        if (r + 1 >= s->end) {
            s->p = r;
            return fail(s, GW_EPARSE, "unterminated string");
        }
        char c = r[1], o[4];
        size_t on = 1;
        r += 2;
        switch (c) {
        case '"': o[0] = '"'; break;
        case '\\': o[0] = '\\'; break;
        case '/': o[0] = '/'; break;
        case 'b': o[0] = '\b'; break;
        case 'f': o[0] = '\f'; break;
        case 'n': o[0] = '\n'; break;
        case 'r': o[0] = '\r'; break;
        case 't': o[0] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (s->end - r < 4 || hex4(r, &cp)) {
                s->p = r;
                return fail(s, GW_EPARSE, "bad \\u escape");
            }
            r += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (s->end - r < 6 || r[0] != '\\' || r[1] != 'u' || hex4(r + 2, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff) {
                    s->p = r;
                    return fail(s, GW_EPARSE, "unpaired surrogate in \\u escape");
                }
                r += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                s->p = r;
                return fail(s, GW_EPARSE, "unpaired surrogate in \\u escape");
            }
            on = utf8_put(o, cp);
            break;
        }
        default:
            s->p = r - 2;
            return fail(s, GW_EPARSE, "bad escape in string");
        }
        int rc = gw_buf_append(&s->scratch, o, on);
        if (rc)
            return oom(s, rc);
    }
    s->p = r + 1;
    /* The scratch buffer may be empty-but-allocated; ensure a valid pointer. */
    if (!s->scratch.data) {
        int rc = gw_buf_reserve(&s->scratch, 1);
        if (rc)
            return oom(s, rc);
    }
    *out = (const char *)s->scratch.data + mark;
    *n = s->scratch.len - mark;
    return 0;
}

static int read_number(jp *s, const char **out, size_t *n)
{
    const char *q = s->p;
    while (q < s->end && ((*q >= '0' && *q <= '9') || *q == '-' || *q == '+' || *q == '.' ||
                          *q == 'e' || *q == 'E'))
        q++;
    if (!gw_codec_is_json_number(s->p, (size_t)(q - s->p)))
        return fail(s, GW_EPARSE, "malformed number");
    *out = s->p;
    *n = (size_t)(q - s->p);
    s->p = q;
    return 0;
}

static bool literal(jp *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) >= n && memcmp(s->p, lit, n) == 0) {
        s->p += n;
        return true;
    }
    return false;
}

/* Reads a scalar token (string, number, true, false, null); objects and
 * arrays are reported without being consumed. */
static int next_token(jp *s, tok *t)
{
    ws(s);
    s->val_at = s->p;
    if (s->p >= s->end)
        return fail(s, GW_EPARSE, "unexpected end of input");
    switch (*s->p) {
    case '"':
        t->kind = T_STRING;
        return read_string(s, &t->p, &t->n);
    case '{':
        t->kind = T_OBJECT;
        return 0;
    case '[':
        t->kind = T_ARRAY;
        return 0;
    case 't':
        t->kind = T_TRUE;
        if (literal(s, "true", 4))
            return 0;
        break;
    case 'f':
        t->kind = T_FALSE;
        if (literal(s, "false", 5))
            return 0;
        break;
    case 'n':
        t->kind = T_NULL;
        if (literal(s, "null", 4))
            return 0;
        break;
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) {
            t->kind = T_NUMBER;
            return read_number(s, &t->p, &t->n);
        }
    }
    return fail(s, GW_EPARSE, "unexpected character '%c'",
                (*s->p >= 0x20 && *s->p < 0x7f) ? *s->p : '?');
}

static int skip_value(jp *s);

/* Skipped values nest at most two JSON containers per message level (an
 * object and an array of a repeated field), hence twice the limit. */
static int skip_container(jp *s, char close)
{
    if (++s->depth > 2 * s->max_depth)
        return too_deep(s);
    int rc;
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            ws(s);
            const char *k;
            size_t kn, mark = s->scratch.len;
            if (s->p >= s->end || *s->p != '"')
                return fail(s, GW_EPARSE, "expected a string key");
            if ((rc = read_string(s, &k, &kn)))
                return rc;
            s->scratch.len = mark;
            ws(s);
            if (s->p >= s->end || *s->p != ':')
                return fail(s, GW_EPARSE, "expected ':'");
            s->p++;
        }
        if ((rc = skip_value(s)))
            return rc;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == close) {
            s->p++;
            s->depth--;
            return 0;
        }
        return fail(s, GW_EPARSE, "expected ',' or '%c'", close);
    }
}

static int skip_value(jp *s)
{
    tok t;
    size_t mark = s->scratch.len;
    int rc = next_token(s, &t);
    s->scratch.len = mark;
    if (rc)
        return rc;
    if (t.kind == T_OBJECT)
        return skip_container(s, '}');
    if (t.kind == T_ARRAY)
        return skip_container(s, ']');
    return 0;
}

/*
 * Object iteration: call with s->p at '{'. `counted`: the object is a
 * nesting level. Depth counts message levels as protobuf -> JSON does, so
 * that whatever one direction prints the other accepts: the objects of
 * maps and the arrays of repeated fields are not levels of their own.
 */
static int seq_begin(jp *s, bool *empty, bool counted, char close)
{
    if (counted) {
        int rc = enter(s);
        if (rc)
            return rc;
    }
    s->p++;
    ws(s);
    *empty = s->p < s->end && *s->p == close;
    if (*empty) {
        s->p++;
        s->depth -= counted;
    }
    return 0;
}

static int obj_begin(jp *s, bool *empty, bool counted) { return seq_begin(s, empty, counted, '}'); }

/* Reads `"key":` (key may be in scratch). */
static int obj_key(jp *s, const char **k, size_t *kn)
{
    ws(s);
    if (s->p >= s->end || *s->p != '"')
        return fail(s, GW_EPARSE, "expected a string key");
    s->val_at = s->p;
    int rc = read_string(s, k, kn);
    if (rc)
        return rc;
    ws(s);
    if (s->p >= s->end || *s->p != ':')
        return fail(s, GW_EPARSE, "expected ':' after key");
    s->p++;
    return 0;
}

/* After a member or element: *more when a ',' follows, else the closing
 * bracket `close` ('}' or ']') must. */
static int seq_next(jp *s, bool *more, bool counted, char close)
{
    ws(s);
    if (s->p < s->end && *s->p == ',') {
        s->p++;
        *more = true;
        return 0;
    }
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth -= counted;
        *more = false;
        return 0;
    }
    return fail(s, GW_EPARSE, "expected ',' or '%c'", close);
}

static int obj_next(jp *s, bool *more, bool counted) { return seq_next(s, more, counted, '}'); }

static int arr_begin(jp *s, bool *empty, bool counted) { return seq_begin(s, empty, counted, ']'); }

static int arr_next(jp *s, bool *more, bool counted) { return seq_next(s, more, counted, ']'); }

/* --- writing ------------------------------------------------------------- */

static int put_tag(jp *s, uint32_t num, gw_wire_type wt)
{
    int rc = gw_wire_put_tag(s->out, num, wt);
    return rc ? oom(s, rc) : 0;
}

static int put_varint(jp *s, uint64_t v)
{
    int rc = gw_wire_put_varint(s->out, v);
    return rc ? oom(s, rc) : 0;
}

static int len_begin(jp *s, size_t *mark)
{
    int rc = gw_buf_append_byte(s->out, 0);
    if (rc)
        return oom(s, rc);
    *mark = s->out->len;
    return 0;
}

static int len_end(jp *s, size_t mark)
{
    gw_buf *b = s->out;
    size_t body = b->len - mark;
    if (body < 0x80) {
        b->data[mark - 1] = (uint8_t)body;
        return 0;
    }
    size_t extra = gw_wire_varint_size(body) - 1;
    int rc = gw_buf_reserve(b, extra);
    if (rc)
        return oom(s, rc);
    memmove(b->data + mark + extra, b->data + mark, body);
    uint8_t *p = b->data + mark - 1;
    uint64_t v = body;
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p = (uint8_t)v;
    b->len += extra;
    b->data[b->len] = 0;
    return 0;
}

/* --- scalars ------------------------------------------------------------- */

/* An integer from a number or a numeric string, within [lo, hi] given as
 * sign + magnitude bounds. */
static int get_int(jp *s, const tok *t, bool allow_neg, uint64_t max_pos, uint64_t max_neg,
                   bool *neg, uint64_t *mag)
{
    if (t->kind != T_NUMBER && t->kind != T_STRING)
        return fail_value(s, GW_EPARSE, "expected an integer");
    int rc = gw_codec_parse_integer(t->p, t->n, neg, mag);
    if (rc == GW_EPARSE)
        return fail_value(s, GW_EPARSE, "expected an integer, got '%.*s'", (int)GW_MIN(t->n, 40),
                    t->p);
    if (rc == GW_ERANGE) {
        /* Not integral, or beyond 64 bits: say which (a magnitude below
         * 2^64 that is no integer has a fraction, 1e-400 included). */
        char buf[64], *tmp = buf;
        if (t->n >= sizeof buf && !(tmp = malloc(t->n + 1)))
            return oom(s, GW_ENOMEM);
        memcpy(tmp, t->p, t->n);
        tmp[t->n] = 0;
        double v = strtod(tmp, NULL);
        if (tmp != buf)
            free(tmp);
        if (isfinite(v) && fabs(v) < 18446744073709551616.0)
            return fail_value(s, GW_ERANGE, "'%.*s' is not an integer", (int)GW_MIN(t->n, 40),
                              t->p);
        return fail_value(s, GW_ERANGE, "'%.*s' is out of range", (int)GW_MIN(t->n, 40), t->p);
    }
    if ((*neg && (!allow_neg || *mag > max_neg)) || (!*neg && *mag > max_pos))
        return fail_value(s, GW_ERANGE, "'%.*s' is out of range", (int)GW_MIN(t->n, 40), t->p);
    return 0;
}

static int get_double(jp *s, const tok *t, bool is_float, double *d)
{
    if (t->kind == T_STRING) {
        if (t->n == 3 && memcmp(t->p, "NaN", 3) == 0) {
            *d = NAN;
            return 0;
        }
        if (t->n == 8 && memcmp(t->p, "Infinity", 8) == 0) {
            *d = INFINITY;
            return 0;
        }
        if (t->n == 9 && memcmp(t->p, "-Infinity", 9) == 0) {
            *d = -INFINITY;
            return 0;
        }
        if (!gw_codec_is_json_number(t->p, t->n))
            return fail_value(s, GW_EPARSE, "expected a number");
    } else if (t->kind != T_NUMBER) {
        return fail_value(s, GW_EPARSE, "expected a number");
    }
    char buf[64], *tmp = buf;
    if (t->n >= sizeof buf) {
        tmp = malloc(t->n + 1);
        if (!tmp)
            return oom(s, GW_ENOMEM);
    }
    memcpy(tmp, t->p, t->n);
    tmp[t->n] = 0;
    double v = strtod(tmp, NULL);
    if (tmp != buf)
        free(tmp);
    if (isinf(v))
        return fail_value(s, GW_ERANGE, "number out of range for double");
    if (is_float && fabs(v) > FLT_MAX) {
        /* Values that round to FLT_MAX are in range: the boundary is the
         * midpoint between FLT_MAX and 2^128. */
        if (fabs(v) >= 3.4028235677973366e38)
            return fail_value(s, GW_ERANGE, "number out of range for float");
        v = v > 0 ? FLT_MAX : -FLT_MAX;
    }
    *d = v;
    return 0;
}

static int enum_number(jp *s, const gw_field_def *f, const tok *t, int32_t *v)
{
    const gw_enum_def *en = f->enumeration;
    if (t->kind == T_STRING) {
        const gw_enum_value_def *ev = en ? gw_enum_value_by_name(en, t->p, t->n) : NULL;
        if (ev) {
            *v = ev->number;
            return 0;
        }
        if (s->o->ignore_unknown)
            return SKIPPED;
        return fail_value(s, GW_EPARSE, "unknown value \"%.*s\" for enum %s", (int)GW_MIN(t->n, 60),
                    t->p, en ? en->full_name : "?");
    }
    if (t->kind == T_NUMBER) {
        bool neg;
        uint64_t mag;
        int rc = get_int(s, t, true, INT32_MAX, (uint64_t)INT32_MAX + 1, &neg, &mag);
        if (rc)
            return rc;
        *v = neg ? (int32_t)(0 - mag) : (int32_t)mag;
        if (en && en->closed && !gw_enum_value_by_number(en, *v)) {
            if (s->o->ignore_unknown)
                return SKIPPED;
            return fail_value(s, GW_ERANGE, "%d is not a value of enum %s", *v, en->full_name);
        }
        return 0;
    }
    if (t->kind == T_NULL && en && en->is_null_value) {
        *v = 0;
        return 0;
    }
    return fail_value(s, GW_EPARSE, "expected an enum name or number");
}

/*
 * The payload of one scalar value of field f (no tag), from token t.
 * Returns 0, SKIPPED or an error.
 */
static int put_scalar(jp *s, const gw_field_def *f, const tok *t)
{
    bool neg;
    uint64_t mag;
    int rc;
    switch (f->type) {
    case GW_TYPE_DOUBLE:
    case GW_TYPE_FLOAT: {
        double d;
        if ((rc = get_double(s, t, f->type == GW_TYPE_FLOAT, &d)))
            return rc;
        if (f->type == GW_TYPE_FLOAT) {
            float fl = (float)d;
            uint32_t u;
            memcpy(&u, &fl, 4);
            rc = gw_wire_put_fixed32(s->out, u);
        } else {
            uint64_t u;
            memcpy(&u, &d, 8);
            rc = gw_wire_put_fixed64(s->out, u);
        }
        return rc ? oom(s, rc) : 0;
    }
    case GW_TYPE_INT64:
    case GW_TYPE_SFIXED64:
    case GW_TYPE_SINT64:
        if ((rc = get_int(s, t, true, INT64_MAX, (uint64_t)INT64_MAX + 1, &neg, &mag)))
            return rc;
        {
            int64_t v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
            if (f->type == GW_TYPE_INT64)
                return put_varint(s, (uint64_t)v);
            if (f->type == GW_TYPE_SINT64)
                return put_varint(s, gw_zigzag_encode64(v));
            rc = gw_wire_put_fixed64(s->out, (uint64_t)v);
            return rc ? oom(s, rc) : 0;
        }
    case GW_TYPE_UINT64:
    case GW_TYPE_FIXED64:
        if ((rc = get_int(s, t, true, UINT64_MAX, 0, &neg, &mag)))
            return rc;
        if (f->type == GW_TYPE_UINT64)
            return put_varint(s, mag);
        rc = gw_wire_put_fixed64(s->out, mag);
        return rc ? oom(s, rc) : 0;
    case GW_TYPE_INT32:
    case GW_TYPE_SFIXED32:
    case GW_TYPE_SINT32:
        if ((rc = get_int(s, t, true, INT32_MAX, (uint64_t)INT32_MAX + 1, &neg, &mag)))
            return rc;
        {
            int32_t v = neg ? (int32_t)(0 - mag) : (int32_t)mag;
            if (f->type == GW_TYPE_INT32)
                return put_varint(s, (uint64_t)(int64_t)v);
            if (f->type == GW_TYPE_SINT32)
                return put_varint(s, gw_zigzag_encode32(v));
            rc = gw_wire_put_fixed32(s->out, (uint32_t)v);
            return rc ? oom(s, rc) : 0;
        }
    case GW_TYPE_UINT32:
    case GW_TYPE_FIXED32:
        if ((rc = get_int(s, t, true, UINT32_MAX, 0, &neg, &mag)))
            return rc;
        if (f->type == GW_TYPE_UINT32)
            return put_varint(s, mag);
        rc = gw_wire_put_fixed32(s->out, (uint32_t)mag);
        return rc ? oom(s, rc) : 0;
    case GW_TYPE_BOOL:
        if (t->kind != T_TRUE && t->kind != T_FALSE)
            return fail_value(s, GW_EPARSE, "expected true or false");
        return put_varint(s, t->kind == T_TRUE);
    case GW_TYPE_ENUM: {
        int32_t v = 0;
        if ((rc = enum_number(s, f, t, &v)))
            return rc;
        return put_varint(s, (uint64_t)(int64_t)v);
    }
    case GW_TYPE_STRING:
        if (t->kind != T_STRING)
            return fail_value(s, GW_EPARSE, "expected a string");
        if ((rc = put_varint(s, t->n)))
            return rc;
        rc = gw_buf_append(s->out, t->p, t->n);
        return rc ? oom(s, rc) : 0;
    case GW_TYPE_BYTES: {
        if (t->kind != T_STRING)
            return fail_value(s, GW_EPARSE, "expected a base64 string");
        size_t n = t->n;
        while (n > 0 && t->p[n - 1] == '=' && t->n - n < 2)
            n--;
        size_t dec = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
        if (n % 4 == 1)
            return fail_value(s, GW_EPARSE, "invalid base64");
        if ((rc = put_varint(s, dec)) || (rc = gw_buf_reserve(s->out, dec + 3)))
            return rc < 0 && rc != GW_EPARSE ? oom(s, rc) : rc;
        size_t at;
        long got = gw_base64_decode(t->p, t->n, s->out->data + s->out->len, &at);
        if (got < 0 || (size_t)got != dec)
            return fail_value(s, GW_EPARSE, "invalid base64 at offset %zu of the string", at);
        s->out->len += dec;
        s->out->data[s->out->len] = 0;
        return 0;
    }
    default:
        return fail(s, GW_EINVAL, "not a scalar field");
    }
}

/* --- messages ---------------------------------------------------------------- */

static int parse_message(jp *s, const gw_message_def *m);
static int parse_fields(jp *s, const gw_message_def *m, bool any_body);

/* One element (tag included unless packed) of field f from the value at s->p. */
static int put_element(jp *s, const gw_field_def *f, bool packed)
{
    size_t mark = s->scratch.len, start = s->out->len;
    int rc;
    if (f->type == GW_TYPE_MESSAGE || f->type == GW_TYPE_GROUP) {
        ws(s);
        if (f->type == GW_TYPE_GROUP) {
            if ((rc = put_tag(s, f->number, GW_WIRE_SGROUP)) || (rc = parse_message(s, f->message)) ||
                (rc = put_tag(s, f->number, GW_WIRE_EGROUP)))
                return rc;
            return 0;
        }
        size_t lm = 0;
        if ((rc = put_tag(s, f->number, GW_WIRE_LEN)) || (rc = len_begin(s, &lm)) ||
            (rc = parse_message(s, f->message)))
            return rc;
        return len_end(s, lm);
    }
    tok t;
    if ((rc = next_token(s, &t)))
        return rc;
    if (t.kind == T_OBJECT || t.kind == T_ARRAY) {
        rc = fail(s, GW_EPARSE, "expected a %s value", gw_field_type_name(f->type));
        goto out;
    }
    if (t.kind == T_NULL && !(f->type == GW_TYPE_ENUM && f->enumeration &&
                              f->enumeration->is_null_value)) {
        rc = fail(s, GW_EPARSE, "null is not a valid element");
        goto out;
    }
    if (!packed && (rc = put_tag(s, f->number, gw_codec_wire_type_of(f->type))))
        goto out;
    rc = put_scalar(s, f, &t);
    if (rc == SKIPPED)
        s->out->len = start;
out:
    s->scratch.len = mark;
    return rc;
}

static bool packable(const gw_field_def *f)
{
    gw_wire_type w = gw_codec_wire_type_of(f->type);
    return w != GW_WIRE_LEN && w != GW_WIRE_SGROUP;
}

static int parse_repeated(jp *s, const gw_field_def *f)
{
    bool empty, more = true;
    int rc = arr_begin(s, &empty, false);
    if (rc || empty)
        return rc;
    bool packed = f->packed && packable(f);
    size_t lm = 0, start = s->out->len;
    if (packed && ((rc = put_tag(s, f->number, GW_WIRE_LEN)) || (rc = len_begin(s, &lm))))
        return rc;
    for (long i = 0; more; i++) {
        set_index(s, i);
        rc = put_element(s, f, packed);
        if (rc < 0)
            return rc;
        if ((rc = arr_next(s, &more, false)))
            return rc;
    }
    set_index(s, -1);
    if (packed) {
        if (s->out->len == lm) {
            s->out->len = start; /* every element was skipped */
            return 0;
        }
        return len_end(s, lm);
    }
    return 0;
}

typedef struct key_set {
    uint64_t *h;
    size_t n, cap;
} key_set;

static int hash_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Map keys must be unique: their hashes are collected and checked once the
 * object ends (a 64-bit collision would reject a valid request, which is
 * acceptable; it cannot let a duplicate through). */
static int keys_add(jp *s, key_set *ks, const char *k, size_t n)
{
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 16;
        uint64_t *h = realloc(ks->h, cap * sizeof *h);
        if (!h)
            return oom(s, GW_ENOMEM);
        ks->h = h;
        ks->cap = cap;
    }
    ks->h[ks->n++] = gw_hash(k, n);
    return 0;
}

static int keys_check(jp *s, key_set *ks)
{
    if (ks->n < 2)
        return 0;
    qsort(ks->h, ks->n, sizeof *ks->h, hash_cmp);
    for (size_t i = 1; i < ks->n; i++)
        if (ks->h[i] == ks->h[i - 1])
            return fail(s, GW_EPARSE, "duplicate map key");
    return 0;
}

/* A map key in its JSON string form, written as field 1 of the entry. */
static int put_map_key(jp *s, const gw_field_def *kf, const char *k, size_t kn)
{
    tok t = {.kind = T_STRING, .p = k, .n = kn};
    if (kf->type == GW_TYPE_BOOL) {
        if (kn == 4 && memcmp(k, "true", 4) == 0)
            t.kind = T_TRUE;
        else if (kn == 5 && memcmp(k, "false", 5) == 0)
            t.kind = T_FALSE;
        else
            return fail(s, GW_EPARSE, "map key must be \"true\" or \"false\"");
    } else if (kf->type != GW_TYPE_STRING) {
        /* Integer keys: a plain decimal integer in the string. */
        size_t i = k[0] == '-';
        if (kn == i)
            return fail(s, GW_EPARSE, "map key must be an integer");
        for (; i < kn; i++)
            if (k[i] < '0' || k[i] > '9')
                return fail(s, GW_EPARSE, "map key must be an integer");
    }
    int rc = put_tag(s, 1, gw_codec_wire_type_of(kf->type));
    if (!rc)
        rc = put_scalar(s, kf, &t);
    return rc;
}

static int parse_map(jp *s, const gw_field_def *f)
{
    const gw_message_def *entry = f->message;
    if (!entry || entry->field_count < 2)
        return fail(s, GW_EINVAL, "map entry without key and value");
    const gw_field_def *kf = gw_map_key(entry), *vf = gw_map_value(entry);
    bool empty, more = true;
    int rc = obj_begin(s, &empty, false);
    if (rc || empty)
        return rc;
    key_set ks = {0};
    while (more) {
        const char *k;
        size_t kn, mark = s->scratch.len, start = s->out->len, lm = 0;
        if ((rc = obj_key(s, &k, &kn)) || (rc = keys_add(s, &ks, k, kn)))
            goto out;
        if ((rc = put_tag(s, f->number, GW_WIRE_LEN)) || (rc = len_begin(s, &lm)) ||
            (rc = put_map_key(s, kf, k, kn)))
            goto out;
        s->scratch.len = mark;
        ws(s);
        if (s->p < s->end && *s->p == 'n' && literal(s, "null", 4)) {
            if (vf->message && vf->message->wkt == GW_WKT_VALUE) {
                /* The null Value is a message level like any other. */
                if (s->depth + 1 > s->max_depth) {
                    rc = too_deep(s);
                    goto out;
                }
                if ((rc = put_tag(s, 2, GW_WIRE_LEN)) || (rc = put_varint(s, 2)) ||
                    (rc = put_tag(s, 1, GW_WIRE_VARINT)) || (rc = put_varint(s, 0)))
                    goto out;
            } else if (vf->type == GW_TYPE_ENUM && vf->enumeration &&
                       vf->enumeration->is_null_value) {
                if ((rc = put_tag(s, 2, GW_WIRE_VARINT)) || (rc = put_varint(s, 0)))
                    goto out;
            } else {
                rc = fail(s, GW_EPARSE, "null is not a valid map value");
                goto out;
            }
        } else {
            rc = put_element(s, vf, false);
            if (rc == SKIPPED) {
                s->out->len = start;
                rc = 0;
                goto next;
            }
            if (rc)
                goto out;
        }
        if ((rc = len_end(s, lm)))
            goto out;
    next:
        if ((rc = obj_next(s, &more, false)))
            goto out;
    }
    rc = keys_check(s, &ks);
out:
    free(ks.h);
    return rc;
}

/* The value of field f at s->p: null, an array, a map object, one value. */
static int parse_field_value(jp *s, const gw_field_def *f)
{
    ws(s);
    if (s->p >= s->end)
        return fail(s, GW_EPARSE, "unexpected end of input");
    if (*s->p == 'n') {
        bool value_wkt = f->message && f->message->wkt == GW_WKT_VALUE &&
                         f->label != GW_LABEL_REPEATED;
        bool null_enum = f->type == GW_TYPE_ENUM && f->enumeration &&
                         f->enumeration->is_null_value && f->label != GW_LABEL_REPEATED;
        if (!value_wkt && !null_enum) {
            if (!literal(s, "null", 4))
                return fail(s, GW_EPARSE, "unexpected character 'n'");
            return 0; /* null: the field stays unset */
        }
    }
    if (f->is_map) {
        if (*s->p != '{')
            return fail(s, GW_EPARSE, "expected an object for map field");
        return parse_map(s, f);
    }
    if (f->label == GW_LABEL_REPEATED) {
        if (*s->p != '[')
            return fail(s, GW_EPARSE, "expected an array for repeated field");
        return parse_repeated(s, f);
    }
    int rc = put_element(s, f, false);
    return rc == SKIPPED ? 0 : rc;
}

/* A "[full.name]" key: an extension of m, or NULL. Without a registry the
 * message's own extensions are searched by name. */
static const gw_field_def *extension_by_key(jp *s, const gw_message_def *m, const char *k,
                                            size_t kn)
{
    /* Only the full name as printed: no leading dot. */
    if (kn < 3 || k[0] != '[' || k[kn - 1] != ']' || k[1] == '.' || m->extension_count == 0)
        return NULL;
    const char *name = k + 1;
    size_t n = kn - 2;
    if (s->reg) {
        const gw_field_def *f = gw_registry_extension(s->reg, name, n);
        return f && f->containing == m ? f : NULL;
    }
    for (size_t i = 0; i < m->extension_count; i++) {
        const gw_field_def *f = m->extensions[i];
        if (strlen(f->full_name) == n && memcmp(f->full_name, name, n) == 0)
            return f;
    }
    return NULL;
}

/* Reads `"key":` then checks the key against the field table (and, for
 * "[name]" keys, the message's extensions). */
static int lookup_field(jp *s, const gw_message_def *m, const char *k, size_t kn,
                        const gw_field_def **f)
{
    *f = gw_message_field_by_name(m, k, kn);
    if (!*f)
        *f = extension_by_key(s, m, k, kn);
    if (*f)
        return 0;
    if (s->o->ignore_unknown)
        return SKIPPED;
    return fail(s, GW_EPARSE, "unknown field \"%.*s\" in %s", (int)GW_MIN(kn, 60), k,
                m->full_name);
}

/*
 * The members of a JSON object (s->p at '{') as fields of m. any_body: the
 * object is an Any's, whose "@type" member is skipped here.
 */
static int parse_fields(jp *s, const gw_message_def *m, bool any_body)
{
    bool empty, more = true;
    int rc = obj_begin(s, &empty, true);
    if (rc || empty)
        return rc;
    uint64_t seen_small[4] = {0}, *seen = seen_small;
    uint64_t oneof_small[2] = {0}, *oneofs = oneof_small;
    uint64_t *ext_seen = NULL; /* allocated at the first extension key */
    if (m->field_count > 256 || m->oneof_count > 128) {
        seen = calloc((m->field_count + 63) / 64 + (m->oneof_count + 63) / 64 + 2, 8);
        if (!seen)
            return oom(s, GW_ENOMEM);
        oneofs = seen + (m->field_count + 63) / 64 + 1;
    }
    while (more) {
        const char *k;
        size_t kn, mark = s->scratch.len;
        const gw_field_def *f;
        if ((rc = obj_key(s, &k, &kn)))
            goto out;
        if (any_body && kn == 5 && memcmp(k, "@type", 5) == 0) {
            s->scratch.len = mark;
            if ((rc = skip_value(s)))
                goto out;
            goto next;
        }
        rc = lookup_field(s, m, k, kn, &f);
        s->scratch.len = mark;
        if (rc == SKIPPED) {
            if ((rc = skip_value(s)))
                goto out;
            goto next;
        }
        if (rc)
            goto out;
        uint64_t *bits = seen;
        size_t fi;
        if (f->is_extension) {
            if (!ext_seen && !(ext_seen = calloc((m->extension_count + 63) / 64, 8))) {
                rc = oom(s, GW_ENOMEM);
                goto out;
            }
            bits = ext_seen;
            fi = gw_message_extension_index(m, f->number);
        } else {
            fi = (size_t)(f - m->fields);
        }
        if (bits[fi / 64] >> (fi % 64) & 1) {
            rc = fail(s, GW_EPARSE, "duplicate field \"%s\"", f->json_name);
            goto out;
        }
        bits[fi / 64] |= 1ull << (fi % 64);
        if (f->oneof_index >= 0) {
            /* A null member does not count as setting the oneof. */
            ws(s);
            bool is_null = s->p < s->end && *s->p == 'n' &&
                           !(f->message && f->message->wkt == GW_WKT_VALUE) &&
                           !(f->type == GW_TYPE_ENUM && f->enumeration &&
                             f->enumeration->is_null_value);
            size_t oi = (size_t)f->oneof_index;
            if (!is_null) {
                if (oneofs[oi / 64] >> (oi % 64) & 1) {
                    rc = fail(s, GW_EPARSE, "more than one member of oneof \"%s\" is set",
                              m->oneofs[oi].name);
                    goto out;
                }
                oneofs[oi / 64] |= 1ull << (oi % 64);
            }
        }
        push_path(s, f->json_name);
        rc = parse_field_value(s, f);
        pop_path(s);
        if (rc)
            goto out;
    next:
        if ((rc = obj_next(s, &more, true)))
            goto out;
    }
out:
    if (seen != seen_small)
        free(seen);
    free(ext_seen);
    return rc;
}

/* --- well-known types ------------------------------------------------------ */

static int expect_string(jp *s, tok *t, const char *what)
{
    int rc = next_token(s, t);
    if (rc)
        return rc;
    if (t->kind != T_STRING)
        return fail_value(s, GW_EPARSE, "expected a string (%s)", what);
    return 0;
}

static int put_time(jp *s, int64_t secs, int32_t nanos)
{
    int rc = 0;
    if (secs && ((rc = put_tag(s, 1, GW_WIRE_VARINT)) || (rc = put_varint(s, (uint64_t)secs))))
        return rc;
    if (nanos && ((rc = put_tag(s, 2, GW_WIRE_VARINT)) ||
                  (rc = put_varint(s, (uint64_t)(int64_t)nanos))))
        return rc;
    return 0;
}

static int parse_timestamp(jp *s, bool duration)
{
    tok t;
    size_t mark = s->scratch.len;
    int rc = expect_string(s, &t, duration ? "Duration" : "Timestamp");
    if (rc)
        return rc;
    int64_t secs;
    int32_t nanos;
    rc = duration ? gw_codec_parse_duration(t.p, t.n, &secs, &nanos)
                  : gw_codec_parse_timestamp(t.p, t.n, &secs, &nanos);
    if (rc == GW_EPARSE)
        rc = fail_value(s, rc, duration ? "invalid Duration \"%.*s\"" : "invalid Timestamp \"%.*s\"",
                  (int)GW_MIN(t.n, 60), t.p);
    else if (rc)
        rc = fail_value(s, rc, duration ? "Duration \"%.*s\" out of range"
                                  : "Timestamp \"%.*s\" out of range",
                  (int)GW_MIN(t.n, 60), t.p);
    else
        rc = put_time(s, secs, nanos);
    s->scratch.len = mark;
    return rc;
}

/* "a.fooBar,b" -> paths "a.foo_bar", "b" (field 1 of FieldMask). */
static int put_field_mask(jp *s, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] != ',')
            j++;
        if (j == i)
            return fail_value(s, GW_EPARSE, "FieldMask has an empty path");
        size_t lm = 0;
        int rc = put_tag(s, 1, GW_WIRE_LEN);
        if (!rc)
            rc = len_begin(s, &lm);
        if (rc)
            return rc;
        rc = gw_codec_camel_to_snake(s->out, p + i, j - i);
        if (rc == GW_EPARSE)
            return fail_value(s, GW_EPARSE, "FieldMask path \"%.*s\" is not lowerCamelCase",
                        (int)GW_MIN(j - i, 60), p + i);
        if (rc)
            return oom(s, rc);
        if ((rc = len_end(s, lm)))
            return rc;
        i = j + 1;
        if (j + 1 == n)
            return fail_value(s, GW_EPARSE, "FieldMask ends with ','");
    }
    return 0;
}

static int parse_field_mask(jp *s)
{
    tok t;
    size_t mark = s->scratch.len;
    int rc = expect_string(s, &t, "FieldMask");
    if (!rc)
        rc = put_field_mask(s, t.p, t.n);
    s->scratch.len = mark;
    return rc;
}

static int parse_value(jp *s);

static int parse_struct(jp *s)
{
    ws(s);
    if (s->p >= s->end || *s->p != '{')
        return fail(s, GW_EPARSE, "expected an object (Struct)");
    bool empty, more = true;
    int rc = obj_begin(s, &empty, true);
    if (rc || empty)
        return rc;
    key_set ks = {0};
    while (more) {
        const char *k;
        size_t kn, mark = s->scratch.len, lm = 0, vm = 0;
        if ((rc = obj_key(s, &k, &kn)) || (rc = keys_add(s, &ks, k, kn)))
            goto out;
        if ((rc = put_tag(s, 1, GW_WIRE_LEN)) || (rc = len_begin(s, &lm)) ||
            (rc = put_tag(s, 1, GW_WIRE_LEN)) || (rc = put_varint(s, kn)))
            goto out;
        if ((rc = gw_buf_append(s->out, k, kn))) {
            rc = oom(s, rc);
            goto out;
        }
        s->scratch.len = mark;
        if ((rc = put_tag(s, 2, GW_WIRE_LEN)) || (rc = len_begin(s, &vm)) ||
            (rc = parse_value(s)) || (rc = len_end(s, vm)) || (rc = len_end(s, lm)))
            goto out;
        if ((rc = obj_next(s, &more, true)))
            goto out;
    }
    rc = keys_check(s, &ks);
out:
    free(ks.h);
    return rc;
}

static int parse_list(jp *s)
{
    ws(s);
    if (s->p >= s->end || *s->p != '[')
        return fail(s, GW_EPARSE, "expected an array (ListValue)");
    bool empty, more = true;
    int rc = arr_begin(s, &empty, true);
    if (rc || empty)
        return rc;
    for (long i = 0; more; i++) {
        size_t lm = 0;
        if ((rc = put_tag(s, 1, GW_WIRE_LEN)) || (rc = len_begin(s, &lm)) ||
            (rc = parse_value(s)) || (rc = len_end(s, lm)) || (rc = arr_next(s, &more, true)))
            return rc;
    }
    return 0;
}

static int value_body(jp *s);

/* google.protobuf.Value: any JSON value. The Value is a message level of its
 * own (as in the printer and in protobuf parsers): a JSON object inside a
 * Struct is a Value holding a Struct, two levels. */
static int parse_value(jp *s)
{
    int rc = enter(s);
    if (rc)
        return rc;
    rc = value_body(s);
    s->depth--;
    return rc;
}

static int value_body(jp *s)
{
    ws(s);
    if (s->p >= s->end)
        return fail(s, GW_EPARSE, "unexpected end of input");
    size_t lm = 0;
    int rc;
    if (*s->p == '{') {
        if ((rc = put_tag(s, 5, GW_WIRE_LEN)) || (rc = len_begin(s, &lm)) ||
            (rc = parse_struct(s)))
            return rc;
        return len_end(s, lm);
    }
    if (*s->p == '[') {
        if ((rc = put_tag(s, 6, GW_WIRE_LEN)) || (rc = len_begin(s, &lm)) ||
            (rc = parse_list(s)))
            return rc;
        return len_end(s, lm);
    }
    tok t;
    size_t mark = s->scratch.len;
    if ((rc = next_token(s, &t)))
        return rc;
    switch (t.kind) {
    case T_NULL:
        rc = put_tag(s, 1, GW_WIRE_VARINT);
        if (!rc)
            rc = put_varint(s, 0);
        break;
    case T_TRUE:
    case T_FALSE:
        rc = put_tag(s, 4, GW_WIRE_VARINT);
        if (!rc)
            rc = put_varint(s, t.kind == T_TRUE);
        break;
    case T_NUMBER: {
        double d;
        if ((rc = get_double(s, &t, false, &d)))
            break;
        uint64_t u;
        memcpy(&u, &d, 8);
        rc = put_tag(s, 2, GW_WIRE_FIXED64);
        if (!rc && (rc = gw_wire_put_fixed64(s->out, u)))
            rc = oom(s, rc);
        break;
    }
    default:
        rc = put_tag(s, 3, GW_WIRE_LEN);
        if (!rc)
            rc = put_varint(s, t.n);
        if (!rc && (rc = gw_buf_append(s->out, t.p, t.n)))
            rc = oom(s, rc);
    }
    s->scratch.len = mark;
    return rc;
}

/* Types whose JSON is not an object of their fields get {"@type", "value"}
 * inside an Any. Empty is an ordinary (field-less) message there. */
static bool special_json(gw_wkt w)
{
    return w != GW_WKT_NONE && w != GW_WKT_HTTP_BODY && w != GW_WKT_EMPTY;
}

static int parse_any(jp *s)
{
    ws(s);
    if (s->p >= s->end || *s->p != '{')
        return fail(s, GW_EPARSE, "expected an object (Any)");
    /* First pass: find "@type", which may come after the other members. */
    const char *obj = s->p;
    unsigned depth = s->depth;
    bool empty, more = true;
    int rc = obj_begin(s, &empty, true);
    if (rc || empty)
        return rc;
    const char *url_at = NULL;
    size_t members = 0;
    while (more) {
        const char *k;
        size_t kn, mark = s->scratch.len;
        if ((rc = obj_key(s, &k, &kn)))
            return rc;
        bool is_type = kn == 5 && memcmp(k, "@type", 5) == 0;
        s->scratch.len = mark;
        ws(s);
        if (is_type) {
            if (url_at)
                return fail(s, GW_EPARSE, "duplicate \"@type\"");
            url_at = s->p;
        }
        members++;
        if ((rc = skip_value(s)) || (rc = obj_next(s, &more, true)))
            return rc;
    }
    const char *after = s->p;
    if (!url_at)
        return fail(s, GW_EPARSE, "Any without \"@type\"");
    s->p = url_at;
    tok t;
    size_t mark = s->scratch.len;
    if ((rc = expect_string(s, &t, "@type")))
        return rc;
    const gw_message_def *type = gw_registry_message_by_type_url(s->reg, t.p, t.n);
    if (!type) {
        rc = fail_value(s, GW_ERANGE, "Any type \"%.*s\" is not in the registry",
                  (int)GW_MIN(t.n, 100), t.p);
        s->scratch.len = mark;
        return rc;
    }
    rc = put_tag(s, 1, GW_WIRE_LEN);
    if (!rc)
        rc = put_varint(s, t.n);
    if (!rc && (rc = gw_buf_append(s->out, t.p, t.n)))
        rc = oom(s, rc);
    s->scratch.len = mark;
    if (rc)
        return rc;
    /* Second pass: the payload. */
    s->p = obj;
    s->depth = depth;
    size_t lm = 0;
    if ((rc = put_tag(s, 2, GW_WIRE_LEN)) || (rc = len_begin(s, &lm)))
        return rc;
    if (!special_json(type->wkt)) {
        if ((rc = enter(s)))
            return rc;
        rc = parse_fields(s, type, true);
        s->depth--;
        if (rc)
            return rc;
    } else {
        if ((rc = obj_begin(s, &empty, true)))
            return rc;
        bool have_value = false;
        more = true;
        while (more) {
            const char *k;
            size_t kn, km = s->scratch.len;
            if ((rc = obj_key(s, &k, &kn)))
                return rc;
            bool is_type = kn == 5 && memcmp(k, "@type", 5) == 0;
            bool is_value = kn == 5 && memcmp(k, "value", 5) == 0;
            s->scratch.len = km;
            if (is_type) {
                if ((rc = skip_value(s)))
                    return rc;
            } else if (is_value) {
                if (have_value)
                    return fail(s, GW_EPARSE, "duplicate \"value\"");
                have_value = true;
                if ((rc = parse_message(s, type)))
                    return rc;
            } else if (s->o->ignore_unknown) {
                if ((rc = skip_value(s)))
                    return rc;
            } else {
                return fail(s, GW_EPARSE, "unexpected key \"%.*s\" in Any of type %s",
                            (int)GW_MIN(kn, 60), k, type->full_name);
            }
            if ((rc = obj_next(s, &more, true)))
                return rc;
        }
        if (!have_value && members > 1)
            return fail(s, GW_EPARSE, "Any of type %s needs \"value\"", type->full_name);
    }
    (void)after;
    return len_end(s, lm);
}

/* A wrapper: the JSON value is the wrapped scalar (field 1, always written). */
static int parse_wrapper(jp *s, const gw_message_def *m)
{
    if (m->field_count < 1)
        return fail(s, GW_EINVAL, "wrapper without a value field");
    ws(s);
    if (s->p < s->end && *s->p == 'n')
        return fail(s, GW_EPARSE, "null is not a valid %s", m->full_name);
    int rc = put_element(s, &m->fields[0], false);
    return rc == SKIPPED ? 0 : rc;
}

/* The body (fields, no tag or length) of a message of type m from the JSON
 * value at s->p. */
static int parse_message(jp *s, const gw_message_def *m)
{
    if (!m)
        return fail(s, GW_EINVAL, "message type not resolved");
    int rc;
    /* Well-known types with a scalar JSON form count as one level too, so
     * that depth is the same whichever form a message takes. */
    if (s->depth + 1 > s->max_depth)
        return too_deep(s);
    switch (m->wkt) {
    case GW_WKT_ANY:
        return parse_any(s);
    case GW_WKT_TIMESTAMP:
        return parse_timestamp(s, false);
    case GW_WKT_DURATION:
        return parse_timestamp(s, true);
    case GW_WKT_FIELD_MASK:
        return parse_field_mask(s);
    case GW_WKT_STRUCT:
        return parse_struct(s);
    case GW_WKT_LIST_VALUE:
        return parse_list(s);
    case GW_WKT_VALUE:
        return parse_value(s);
    default:
        if (gw_wkt_is_wrapper(m->wkt))
            return parse_wrapper(s, m);
        ws(s);
        if (s->p >= s->end || *s->p != '{')
            return fail(s, GW_EPARSE, "expected an object (%s)", m->full_name);
        rc = parse_fields(s, m, false);
        return rc;
    }
}

/* --- public ---------------------------------------------------------------- */

static int setup(jp *s, const gw_registry *r, const char *json, size_t len,
                 const gw_codec_options *opts, gw_codec_options *defaults, gw_buf *out,
                 gw_error *e)
{
    memset(s, 0, sizeof *s);
    if (!opts) {
        gw_codec_options_init(defaults);
        opts = defaults;
    }
    s->reg = r;
    s->o = opts;
    s->start = s->p = json ? json : "";
    s->end = s->p + len;
    s->out = out;
    s->e = e;
    s->max_depth = opts->max_depth ? opts->max_depth : GW_CODEC_DEFAULT_MAX_DEPTH;
    gw_buf_init(&s->scratch, 0);
    if (e)
        gw_error_clear(e);
    if (opts->max_input && len > opts->max_input)
        return gw_error_set(e, GW_ELIMIT, "input of %zu bytes exceeds the limit of %zu", len,
                            opts->max_input);
    return 0;
}

static int finish(jp *s, int rc, size_t saved_max)
{
    s->out->max = saved_max;
    gw_buf_free(&s->scratch);
    if (rc == 0) {
        ws(s);
        if (s->p != s->end)
            rc = fail(s, GW_EPARSE, "trailing characters after the JSON value");
    }
    if (rc > 0)
        rc = 0;
    if (rc && s->e && s->e->code == 0)
        gw_error_set(s->e, rc, "%s", gw_err_str(rc));
    if (s->out->data)
        s->out->data[s->out->len] = 0;
    return rc;
}

static size_t limit_output(gw_buf *out, const gw_codec_options *opts)
{
    size_t saved = out->max;
    if (opts && opts->max_output && (out->max == 0 || out->max - out->len > opts->max_output))
        out->max = out->len + opts->max_output;
    return saved;
}

int gw_codec_json_to_proto(const gw_registry *r, const gw_message_def *m, const char *json,
                           size_t len, const gw_codec_options *opts, gw_buf *out, gw_error *e)
{
    if (!m || !out || (!json && len))
        return gw_error_set(e, GW_EINVAL, "json_to_proto: missing argument");
    jp s;
    gw_codec_options defaults;
    int rc = setup(&s, r, json, len, opts, &defaults, out, e);
    if (rc)
        return rc;
    size_t saved = limit_output(out, s.o);
    ws(&s);
    if (s.p < s.end && *s.p == 'n' && m->wkt != GW_WKT_VALUE)
        rc = fail(&s, GW_EPARSE, "expected an object (%s), got null", m->full_name);
    else
        rc = parse_message(&s, m);
    return finish(&s, rc, saved);
}

int gw_codec_json_to_field(const gw_registry *r, const gw_field_def *f, const char *json,
                           size_t len, const gw_codec_options *opts, gw_buf *out, gw_error *e)
{
    if (!f || !out || (!json && len))
        return gw_error_set(e, GW_EINVAL, "json_to_field: missing argument");
    jp s;
    gw_codec_options defaults;
    int rc = setup(&s, r, json, len, opts, &defaults, out, e);
    if (rc)
        return rc;
    size_t saved = limit_output(out, s.o);
    push_path(&s, f->json_name);
    /* The message the field belongs to is the first level, as it is when
     * the whole message is parsed. */
    s.depth = 1;
    rc = parse_field_value(&s, f);
    return finish(&s, rc, saved);
}

/* Path/query parameter: one value of a leaf field from its text form. */
int gw_codec_encode_field_string(const gw_registry *r, const gw_field_def *f,
                                 const char *text, size_t len, gw_buf *out, gw_error *e)
{
    if (!f || !out || (!text && len))
        return gw_error_set(e, GW_EINVAL, "encode_field_string: missing argument");
    jp s;
    gw_codec_options defaults;
    int rc = setup(&s, r, text, len, NULL, &defaults, out, e);
    if (rc)
        return rc;
    push_path(&s, f->json_name);
    if (f->is_map)
        return gw_error_set(e, GW_EINVAL, "%s: a map field cannot take a single value",
                            f->json_name);
    if (!gw_utf8_valid((const uint8_t *)s.p, len)) {
        rc = fail(&s, GW_EPARSE, "invalid UTF-8");
        goto out;
    }
    const gw_field_def *leaf = f;
    const gw_message_def *m = f->type == GW_TYPE_MESSAGE ? f->message : NULL;
    size_t start = out->len, lm = 0;
    tok t = {.kind = T_STRING, .p = s.p, .n = len};
    if (m) {
        if ((rc = put_tag(&s, f->number, GW_WIRE_LEN)) || (rc = len_begin(&s, &lm)))
            goto out;
        switch (m->wkt) {
        case GW_WKT_TIMESTAMP:
        case GW_WKT_DURATION: {
            int64_t secs;
            int32_t nanos;
            rc = m->wkt == GW_WKT_DURATION ? gw_codec_parse_duration(t.p, t.n, &secs, &nanos)
                                           : gw_codec_parse_timestamp(t.p, t.n, &secs, &nanos);
            if (rc) {
                rc = fail(&s, rc, "invalid %s \"%.*s\"", m->name, (int)GW_MIN(len, 60), t.p);
                goto out;
            }
            rc = put_time(&s, secs, nanos);
            break;
        }
        case GW_WKT_FIELD_MASK:
            rc = put_field_mask(&s, t.p, t.n);
            break;
        case GW_WKT_VALUE:
            if ((rc = put_tag(&s, 3, GW_WIRE_LEN)) || (rc = put_varint(&s, len)))
                goto out;
            if ((rc = gw_buf_append(out, t.p, t.n)))
                rc = oom(&s, rc);
            break;
        default:
            if (gw_wkt_is_wrapper(m->wkt)) {
                leaf = &m->fields[0];
                goto scalar;
            }
            rc = fail(&s, GW_EINVAL, "message field %s cannot take a single value",
                      f->json_name);
        }
        if (!rc)
            rc = len_end(&s, lm);
        goto out;
    }
scalar:
    if (leaf->type == GW_TYPE_BOOL) {
        if ((len == 4 && memcmp(t.p, "true", 4) == 0) || (len == 1 && t.p[0] == '1'))
            t.kind = T_TRUE;
        else if ((len == 5 && memcmp(t.p, "false", 5) == 0) || (len == 1 && t.p[0] == '0'))
            t.kind = T_FALSE;
    } else if (leaf->type == GW_TYPE_ENUM && len > 0 &&
               (t.p[0] == '-' || (t.p[0] >= '0' && t.p[0] <= '9'))) {
        t.kind = T_NUMBER;
    }
    if ((rc = put_tag(&s, leaf->number, gw_codec_wire_type_of(leaf->type))))
        goto out;
    rc = put_scalar(&s, leaf, &t);
    if (rc == SKIPPED)
        rc = fail(&s, GW_EPARSE, "unknown enum value");
    if (!rc && leaf != f)
        rc = len_end(&s, lm);
    (void)start;
out:
    s.p = s.end;
    return finish(&s, rc, out->max);
}

/* --- field paths (PATCH without update_mask) ---------------------------------- */

typedef struct path_walk {
    gw_codec_path_fn fn;
    void *ctx;
    gw_buf prefix;
} path_walk;

static int walk_paths(jp *s, path_walk *w, const gw_message_def *m)
{
    bool empty, more = true;
    int rc = obj_begin(s, &empty, true);
    if (rc || empty)
        return rc;
    while (more) {
        const char *k;
        size_t kn, mark = s->scratch.len;
        const gw_field_def *f;
        if ((rc = obj_key(s, &k, &kn)))
            return rc;
        rc = lookup_field(s, m, k, kn, &f);
        s->scratch.len = mark;
        if (rc == SKIPPED) {
            if ((rc = skip_value(s)))
                return rc;
            goto next;
        }
        if (rc)
            return rc;
        /* An extension is a leaf named by its key, "[full.name]": FieldMask
         * has no path syntax into extensions. */
        size_t plen = w->prefix.len;
        if ((plen && (rc = gw_buf_append_byte(&w->prefix, '.'))) ||
            (rc = gw_buf_append_str(&w->prefix, f->is_extension ? f->json_name : f->name)))
            return oom(s, rc);
        ws(s);
        if (!f->is_extension && f->type == GW_TYPE_MESSAGE && !f->is_map &&
            f->label != GW_LABEL_REPEATED &&
            f->message && f->message->wkt == GW_WKT_NONE && s->p < s->end && *s->p == '{') {
            rc = walk_paths(s, w, f->message);
        } else {
            rc = w->fn(w->ctx, (const char *)w->prefix.data, w->prefix.len);
            if (!rc)
                rc = skip_value(s);
        }
        w->prefix.len = plen;
        if (rc)
            return rc;
    next:
        if ((rc = obj_next(s, &more, true)))
            return rc;
    }
    return 0;
}

int gw_codec_json_field_paths(const gw_registry *r, const gw_message_def *m, const char *json,
                              size_t len, const gw_codec_options *opts, gw_codec_path_fn fn,
                              void *ctx, gw_error *e)
{
    if (!m || !fn || (!json && len))
        return gw_error_set(e, GW_EINVAL, "json_field_paths: missing argument");
    jp s;
    gw_codec_options defaults;
    gw_buf dummy;
    gw_buf_init(&dummy, 1);
    int rc = setup(&s, r, json, len, opts, &defaults, &dummy, e);
    if (rc)
        return rc;
    path_walk w = {.fn = fn, .ctx = ctx};
    gw_buf_init(&w.prefix, 0);
    ws(&s);
    if (s.p >= s.end || *s.p != '{')
        rc = fail(&s, GW_EPARSE, "expected an object");
    else
        rc = walk_paths(&s, &w, m);
    gw_buf_free(&w.prefix);
    if (rc > 0) { /* fn's own value stops the walk and is returned as is */
        gw_buf_free(&s.scratch);
        gw_buf_free(&dummy);
        return rc;
    }
    rc = finish(&s, rc, dummy.max);
    gw_buf_free(&dummy);
    return rc;
}
