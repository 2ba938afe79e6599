/*
 * HttpRule path templates: parsing and binding to the input message.
 */
#include <stdlib.h>
#include <string.h>

#include "route/route.h"

/* ---------------------------------------------------------------------------
 * Field lookup and paths.
 */

/* s may contain NUL bytes (a decoded "%00"): compare lengths first. */
static bool name_eq(const char *name, const char *s, size_t len)
{
    return name && strlen(name) == len && memcmp(name, s, len) == 0;
}

const gw_field_def *gw_field_find(const gw_message_def *m, const char *name, size_t len,
                                  bool json_names)
{
    for (size_t i = 0; i < m->field_count; i++)
        if (name_eq(m->fields[i].name, name, len))
            return &m->fields[i];
    if (json_names)
        for (size_t i = 0; i < m->field_count; i++)
            if (name_eq(m->fields[i].json_name, name, len))
                return &m->fields[i];
    return NULL;
}

static bool is_message(const gw_field_def *f)
{
    return (f->type == GW_TYPE_MESSAGE || f->type == GW_TYPE_GROUP) && f->message;
}

int gw_field_path_resolve(const gw_message_def *m, const char *s, size_t len,
                          bool json_names, gw_field_path *out, gw_error *e)
{
    out->depth = 0;
    size_t pos = 0;
    for (;;) {
        size_t end = pos;
        while (end < len && s[end] != '.')
            end++;
        if (end == pos)
            return gw_error_set(e, GW_EINVAL, "field path '%.*s': empty component",
                                (int)len, s);
        if (out->depth == GW_FIELD_PATH_MAX)
            return gw_error_set(e, GW_ELIMIT, "field path '%.*s': deeper than %d",
                                (int)len, s, GW_FIELD_PATH_MAX);
        if (!m)
            return gw_error_set(e, GW_EINVAL,
                                "field path '%.*s': '%.*s' is not a message field",
                                (int)len, s, (int)(pos - 1), s);
        const gw_field_def *f = gw_field_find(m, s + pos, end - pos, json_names);
        if (!f)
            return gw_error_set(e, GW_ENOTFOUND, "field path '%.*s': %s has no field '%.*s'",
                                (int)len, s, m->full_name, (int)(end - pos), s + pos);
        out->fields[out->depth++] = f;
        if (end == len)
            return 0;
        /* Descending is only meaningful into one singular message with
         * ordinary fields; a special-JSON well-known type is a leaf. */
        if (!is_message(f) || f->label == GW_LABEL_REPEATED ||
            (f->message->wkt != GW_WKT_NONE && f->message->wkt != GW_WKT_HTTP_BODY)) {
            m = NULL;
        } else {
            m = f->message;
        }
        pos = end + 1;
        if (pos == len)
            return gw_error_set(e, GW_EINVAL, "field path '%.*s': empty component",
                                (int)len, s);
    }
}

bool gw_field_is_bindable(const gw_field_def *f)
{
    if (f->label == GW_LABEL_REPEATED)
        return false;
    if (!is_message(f))
        return f->type != GW_TYPE_GROUP;
    /* Messages whose JSON form is a single string or number bind too. */
    gw_wkt k = f->message->wkt;
    return k == GW_WKT_TIMESTAMP || k == GW_WKT_DURATION || k == GW_WKT_FIELD_MASK ||
           gw_wkt_is_wrapper(k);
}

/* ---------------------------------------------------------------------------
 * Parsing. The grammar (REFERENCE.md):
 *   Template = "/" Segments [ Verb ] ;  Segments = Segment { "/" Segment } ;
 *   Segment  = "*" | "**" | LITERAL | Variable ;
 *   Variable = "{" FieldPath [ "=" Segments ] "}" ;
 *   Verb     = ":" LITERAL ;
 * LITERAL is taken as RFC 3986 pchar minus ':' (which starts the verb):
 * unreserved, sub-delims, '@' and %XX escapes.
 */

typedef struct parser {
    const char *s;
    size_t len;
    size_t pos;
    gw_error *e;
    size_t seg_count;
    gw_tmpl_seg segs[GW_ROUTE_SEGMENTS_MAX];
    size_t var_count;
    gw_tmpl_var vars[GW_ROUTE_VARS_MAX];
    bool saw_dstar;
    const char *verb;
    size_t verb_len;
} parser;

static bool is_literal_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("-._~!$&'()+,;=@", c) != NULL;
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int perr(parser *p, const char *what)
{
    return gw_error_set(p->e, GW_EPARSE, "template '%.*s': offset %zu: %s", (int)p->len,
                        p->s, p->pos, what);
}

static int parse_literal(parser *p, size_t *start, size_t *n)
{
    *start = p->pos;
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '%') {
            if (p->pos + 2 >= p->len || !is_hex((unsigned char)p->s[p->pos + 1]) ||
                !is_hex((unsigned char)p->s[p->pos + 2]))
                return perr(p, "malformed %-escape");
            p->pos += 3;
        } else if (is_literal_char(c)) {
            p->pos++;
        } else {
            break;
        }
    }
    *n = p->pos - *start;
    return 0;
}

static int add_segment(parser *p, gw_tmpl_seg_kind kind, size_t start, size_t n)
{
    if (p->saw_dstar)
        return perr(p, "'**' must be the last segment");
    if (p->seg_count == GW_ROUTE_SEGMENTS_MAX)
        return gw_error_set(p->e, GW_ELIMIT, "template '%.*s': more than %d segments",
                            (int)p->len, p->s, GW_ROUTE_SEGMENTS_MAX);
    gw_tmpl_seg *sg = &p->segs[p->seg_count++];
    sg->kind = kind;
    sg->text = p->s + start; /* rebased into the template's storage later */
    sg->len = n;
    if (kind == GW_TMPL_DSTAR)
        p->saw_dstar = true;
    return 0;
}

/* One Segment other than a Variable. */
static int parse_plain_segment(parser *p)
{
    const char *s = p->s;
    if (p->pos < p->len && s[p->pos] == '*') {
        if (p->pos + 1 < p->len && s[p->pos + 1] == '*') {
            p->pos += 2;
            if (p->pos < p->len && s[p->pos] == '*')
                return perr(p, "'***' is not a segment");
            return add_segment(p, GW_TMPL_DSTAR, p->pos - 2, 2);
        }
        p->pos++;
        return add_segment(p, GW_TMPL_STAR, p->pos - 1, 1);
    }
    size_t start, n;
    int rc = parse_literal(p, &start, &n);
    if (rc)
        return rc;
    if (n == 0) {
        if (p->pos >= p->len)
            return perr(p, "empty segment at the end");
        return p->s[p->pos] == '/' ? perr(p, "empty segment") : perr(p, "unexpected character");
    }
    return add_segment(p, GW_TMPL_LITERAL, start, n);
}

static bool is_ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(unsigned char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int parse_variable(parser *p)
{
    const char *s = p->s;
    p->pos++; /* '{' */
    if (p->var_count == GW_ROUTE_VARS_MAX)
        return gw_error_set(p->e, GW_ELIMIT, "template '%.*s': more than %d variables",
                            (int)p->len, s, GW_ROUTE_VARS_MAX);
    gw_tmpl_var *v = &p->vars[p->var_count];
    memset(v, 0, sizeof(*v));
    size_t start = p->pos;
    for (;;) {
        if (p->pos >= p->len || !is_ident_start((unsigned char)s[p->pos]))
            return perr(p, "expected a field name");
        while (p->pos < p->len && is_ident_char((unsigned char)s[p->pos]))
            p->pos++;
        if (p->pos < p->len && s[p->pos] == '.') {
            p->pos++;
            continue;
        }
        break;
    }
    v->field_path = s + start;
    v->path.depth = p->pos - start; /* length, until rebased */
    v->first = p->seg_count;
    if (p->pos < p->len && s[p->pos] == '=') {
        p->pos++;
        for (;;) {
            if (p->pos < p->len && s[p->pos] == '{')
                return perr(p, "variables do not nest");
            int rc = parse_plain_segment(p);
            if (rc)
                return rc;
            if (p->pos < p->len && s[p->pos] == '/') {
                p->pos++;
                continue;
            }
            break;
        }
        v->count = p->seg_count - v->first;
        v->multi = !(v->count == 1 && p->segs[v->first].kind == GW_TMPL_STAR);
    } else {
        int rc = add_segment(p, GW_TMPL_STAR, p->pos, 0);
        if (rc)
            return rc;
        v->count = 1;
        v->multi = false;
    }
    if (p->pos >= p->len || s[p->pos] != '}')
        return perr(p, "expected '}'");
    p->pos++;
    p->var_count++;
    return 0;
}

static int parse_all(parser *p)
{
    if (p->len == 0 || p->s[0] != '/')
        return perr(p, "a template starts with '/'");
    p->pos = 1;
    for (;;) {
        int rc;
        if (p->pos < p->len && p->s[p->pos] == '{')
            rc = parse_variable(p);
        else
            rc = parse_plain_segment(p);
        if (rc)
            return rc;
        if (p->pos == p->len)
            return 0;
        char c = p->s[p->pos];
        if (c == '/') {
            p->pos++;
            continue;
        }
        if (c == ':') {
            p->pos++;
            size_t start, n;
            rc = parse_literal(p, &start, &n);
            if (rc)
                return rc;
            if (n == 0)
                return perr(p, "empty verb");
            if (p->pos != p->len)
                return perr(p, "unexpected character after the verb");
            p->verb = p->s + start;
            p->verb_len = n;
            return 0;
        }
        return perr(p, "unexpected character");
    }
}

static char *pool_put(char **pool, const char *s, size_t n)
{
    char *out = *pool;
    memcpy(out, s, n);
    out[n] = '\0';
    *pool += n + 1;
    return out;
}

int gw_route_template_parse(const char *text, gw_route_template **out, gw_error *e)
{
    *out = NULL;
    size_t len = strlen(text);
    if (len > GW_ROUTE_TEMPLATE_MAX)
        return gw_error_set(e, GW_ELIMIT, "template longer than %d bytes",
                            GW_ROUTE_TEMPLATE_MAX);
    parser *p = calloc(1, sizeof(*p));
    if (!p)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    p->s = text;
    p->len = len;
    p->e = e;
    int rc = parse_all(p);
    if (rc)
        goto out;

    /* One allocation: header, segments, variables, then every string. */
    size_t segs_off = sizeof(gw_route_template);
    size_t vars_off = segs_off + p->seg_count * sizeof(gw_tmpl_seg);
    size_t pool_off = vars_off + p->var_count * sizeof(gw_tmpl_var);
    size_t pool_len = 2 * len + p->seg_count + p->var_count + 4;
    uint8_t *mem = calloc(1, pool_off + pool_len);
    if (!mem) {
        rc = gw_error_set(e, GW_ENOMEM, "out of memory");
        goto out;
    }
    gw_route_template *t = (gw_route_template *)mem;
    t->segs = (gw_tmpl_seg *)(mem + segs_off);
    t->vars = (gw_tmpl_var *)(mem + vars_off);
    char *pool = (char *)(mem + pool_off);
    t->text = pool_put(&pool, text, len);
    t->seg_count = p->seg_count;
    for (size_t i = 0; i < p->seg_count; i++) {
        t->segs[i] = p->segs[i];
        t->segs[i].text = pool_put(&pool, p->segs[i].text, p->segs[i].len);
    }
    t->var_count = p->var_count;
    for (size_t i = 0; i < p->var_count; i++) {
        t->vars[i] = p->vars[i];
        t->vars[i].field_path = pool_put(&pool, p->vars[i].field_path, p->vars[i].path.depth);
        t->vars[i].path.depth = 0;
    }
    t->verb = p->verb ? pool_put(&pool, p->verb, p->verb_len) : NULL;
    *out = t;
out:
    free(p);
    return rc;
}

void gw_route_template_del(gw_route_template *t)
{
    free(t);
}

static bool same_field_path(const gw_field_path *a, const gw_field_path *b)
{
    if (a->depth != b->depth)
        return false;
    for (size_t i = 0; i < a->depth; i++)
        if (a->fields[i] != b->fields[i])
            return false;
    return true;
}

int gw_route_template_bind(gw_route_template *t, const gw_message_def *input, gw_error *e)
{
    for (size_t i = 0; i < t->var_count; i++) {
        gw_tmpl_var *v = &t->vars[i];
        int rc = gw_field_path_resolve(input, v->field_path, strlen(v->field_path), true,
                                       &v->path, e);
        if (rc) {
            gw_error_prefix(e, "variable {%s}", v->field_path);
            return rc;
        }
        const gw_field_def *f = v->path.fields[v->path.depth - 1];
        if (!gw_field_is_bindable(f))
            return gw_error_set(e, GW_EINVAL,
                                "variable {%s}: field %s is %s, not a singular primitive",
                                v->field_path, f->name,
                                f->label == GW_LABEL_REPEATED ? "repeated"
                                : is_message(f)               ? f->message->full_name
                                                              : "a group");
        for (size_t j = 0; j < i; j++)
            if (same_field_path(&t->vars[j].path, &v->path))
                return gw_error_set(e, GW_EINVAL, "variable {%s} is bound twice",
                                    v->field_path);
    }
    t->bound = true;
    return 0;
}
