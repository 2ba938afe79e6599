/*
 * Request side: content type, query string, body and path variables → the
 * request message's wire bytes.
 *
 * The message is built by concatenation: body, query, FieldMask, path. The
 * protobuf merge rules (last scalar wins, sub-messages merge, repeated
 * fields append) then give the path priority over the query and the query
 * over the body without decoding what was already written. Only the
 * sub-messages that several parts bind into are merged afterwards, so that
 * each occurs once (see "One occurrence per sub-message").
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rest/rest.h"

void gw_rest_options_init(gw_rest_options *o)
{
    memset(o, 0, sizeof(*o));
    o->patch_fill_mask = true;
    o->max_message = 4u << 20;
    o->max_depth = GW_CODEC_DEFAULT_MAX_DEPTH;
}

void gw_rest_status_clear(gw_rest_status *st)
{
    st->code = GW_CODE_OK;
    st->http_status = 200;
    st->message[0] = '\0';
}

__attribute__((format(printf, 4, 5)))
static void st_set(gw_rest_status *st, int code, int http, const char *fmt, ...)
{
    st->code = code;
    st->http_status = http ? http : gw_code_to_http(code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->message, sizeof(st->message), fmt, ap);
    va_end(ap);
}

/* A failure of ours, not the client's. */
static int st_internal(gw_rest_status *st, int rc)
{
    st_set(st, GW_CODE_INTERNAL, 0, "%s", rc == GW_ENOMEM ? "out of memory" : gw_err_str(rc));
    return rc;
}

/* A codec or binding error: the client's input was wrong, unless memory ran
 * out. */
static int st_client(gw_rest_status *st, int rc, const char *what, const gw_error *e)
{
    if (rc == GW_ENOMEM)
        return st_internal(st, rc);
    st_set(st, GW_CODE_INVALID_ARGUMENT, 0, "%s%s%s", what, *what ? ": " : "",
           e->code ? e->msg : gw_err_str(rc));
    return rc == GW_EAGAIN || rc == GW_ECLOSED ? GW_EINVAL : rc;
}

void gw_rest_route_status(const gw_route_match *m, const char *http_method,
                          const char *path, size_t path_len, gw_rest_status *st)
{
    if (m->result == GW_ROUTE_METHOD_NOT_ALLOWED) {
        char allow[256] = "";
        size_t n = 0;
        for (size_t i = 0; i < m->allow_count && n < sizeof(allow); i++)
            n += (size_t)snprintf(allow + n, sizeof(allow) - n, "%s%s", i ? ", " : "",
                                  m->allow[i]);
        st_set(st, GW_CODE_UNIMPLEMENTED, 405, "method %s not allowed for %.*s (allowed: %s)",
               http_method, (int)GW_MIN(path_len, 256), path, allow);
    } else if (m->result == GW_ROUTE_NOT_FOUND) {
        st_set(st, GW_CODE_NOT_FOUND, 404, "no route for %s %.*s", http_method,
               (int)GW_MIN(path_len, 256), path);
    } else {
        gw_rest_status_clear(st);
    }
}

static void codec_opts(const gw_rest_options *o, gw_codec_options *co)
{
    gw_codec_options_init(co);
    co->ignore_unknown = o->ignore_unknown_body_fields;
    co->max_depth = o->max_depth;
}

static bool is_http_body(const gw_message_def *m)
{
    return m && m->wkt == GW_WKT_HTTP_BODY;
}

bool gw_rest_route_takes_http_body(const gw_route *rt)
{
    if (rt->body_kind == GW_BODY_ALL)
        return is_http_body(rt->method->input);
    if (rt->body_kind == GW_BODY_FIELD)
        return rt->body_field->type == GW_TYPE_MESSAGE &&
               rt->body_field->label != GW_LABEL_REPEATED &&
               is_http_body(rt->body_field->message);
    return false;
}

/* ---------------------------------------------------------------------------
 * Content-Type.
 */

static const char *skip_sp(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

int gw_rest_check_content_type(const gw_rest_options *o, const gw_route *rt,
                               const char *ct, gw_rest_status *st)
{
    if (rt->body_kind == GW_BODY_NONE || gw_rest_route_takes_http_body(rt))
        return 0;
    if (!ct || !*skip_sp(ct)) {
        if (!o->strict_content_type)
            return 0;
        st_set(st, GW_CODE_INVALID_ARGUMENT, 415,
               "missing Content-Type: this route takes application/json");
        return GW_EINVAL;
    }
    const char *p = skip_sp(ct);
    size_t n = 0;
    while (p[n] && p[n] != ';' && p[n] != ' ' && p[n] != '\t')
        n++;
    bool json = gw_strn_case_eq(p, n, "application/json");
    bool form = gw_strn_case_eq(p, n, "application/x-www-form-urlencoded");
    if (!json && !(form && !o->strict_content_type))
        goto bad;
    /* Parameters: only a UTF-8 charset means anything to a JSON body. */
    for (const char *q = strchr(p + n, ';'); q; q = strchr(q + 1, ';')) {
        q = skip_sp(q + 1);
        if (strncasecmp(q, "charset=", 8) != 0)
            continue;
        const char *v = q + 8;
        bool quoted = *v == '"';
        v += quoted;
        size_t vn = 0;
        while (v[vn] && v[vn] != ';' && v[vn] != '"' && v[vn] != ' ')
            vn++;
        if (!gw_strn_case_eq(v, vn, "utf-8") && !gw_strn_case_eq(v, vn, "utf8"))
            goto bad;
    }
    return 0;
bad:
    st_set(st, GW_CODE_INVALID_ARGUMENT, 415,
           "unsupported Content-Type '%.100s': this route takes application/json", ct);
    return GW_EINVAL;
}

/* ---------------------------------------------------------------------------
 * Nesting helpers.
 */

/* A buffer's bytes, never NULL (an empty gw_buf has no allocation, and
 * memcpy from NULL is undefined even for 0 bytes). */
static const uint8_t *bytes_of(const gw_buf *b)
{
    return b->data ? b->data : (const uint8_t *)"";
}

/* Appends leaf (the encoding of path->fields[depth-1], tag included) to out,
 * wrapped in one length-delimited field per enclosing message. */
static int append_at_path(const gw_field_path *path, size_t depth, const gw_buf *leaf,
                          gw_buf *out)
{
    if (depth <= 1)
        return gw_buf_append(out, leaf->data, leaf->len);
    gw_buf a, b;
    gw_buf_init(&a, out->max);
    gw_buf_init(&b, out->max);
    int rc = gw_codec_wrap_message(path->fields[depth - 2]->number, leaf->data, leaf->len, &a);
    for (size_t k = depth - 2; rc == 0 && k > 0; k--) {
        gw_buf_reset(&b);
        rc = gw_codec_wrap_message(path->fields[k - 1]->number, a.data, a.len, &b);
        gw_buf t = a;
        a = b;
        b = t;
    }
    if (rc == 0)
        rc = gw_buf_append(out, a.data, a.len);
    gw_buf_free(&a);
    gw_buf_free(&b);
    return rc;
}

static void path_text(const gw_field_path *p, size_t depth, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t k = 0; k < depth && n < cap; k++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", k ? "." : "", p->fields[k]->name);
}

/* ---------------------------------------------------------------------------
 * A minimal JSON scanner, only to find the value a body gives to a field
 * that the path binds too (the conflict check). The codec does the real
 * parsing; this one only needs to skip values and compare plain keys.
 */

static size_t ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

static bool skip_string(const char *s, size_t n, size_t *i)
{
    for (size_t j = *i + 1; j < n; j++) {
        if (s[j] == '\\')
            j++;
        else if (s[j] == '"') {
            *i = j + 1;
            return true;
        }
    }
    return false;
}

static bool skip_value(const char *s, size_t n, size_t *i)
{
    size_t j = *i;
    if (j >= n)
        return false;
    if (s[j] == '"')
        return skip_string(s, n, i);
    if (s[j] == '{' || s[j] == '[') {
        size_t depth = 0;
        while (j < n) {
            char c = s[j];
            if (c == '"') {
                if (!skip_string(s, n, &j))
                    return false;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0) {
                    *i = j + 1;
                    return true;
                }
            }
            j++;
        }
        return false;
    }
    while (j < n && !strchr(",}] \t\r\n", s[j]))
        j++;
    if (j == *i)
        return false;
    *i = j;
    return true;
}

/* Finds the member named like f (proto or JSON name) in the object at
 * s[*i]; on success [*i, *end) is its value. */
static bool find_member(const char *s, size_t n, size_t *i, size_t *end,
                        const gw_field_def *f)
{
    size_t j = ws(s, n, *i);
    if (j >= n || s[j] != '{')
        return false;
    j = ws(s, n, j + 1);
    if (j < n && s[j] == '}')
        return false;
    for (;;) {
        if (j >= n || s[j] != '"')
            return false;
        size_t k0 = j + 1;
        if (!skip_string(s, n, &j))
            return false;
        size_t klen = j - 1 - k0;
        j = ws(s, n, j);
        if (j >= n || s[j] != ':')
            return false;
        j = ws(s, n, j + 1);
        size_t v0 = j;
        if (!skip_value(s, n, &j))
            return false;
        if ((strlen(f->name) == klen && memcmp(f->name, s + k0, klen) == 0) ||
            (f->json_name && strlen(f->json_name) == klen &&
             memcmp(f->json_name, s + k0, klen) == 0)) {
            *i = v0;
            *end = j;
            return true;
        }
        j = ws(s, n, j);
        if (j >= n || s[j] != ',')
            return false;
        j = ws(s, n, j + 1);
    }
}

/* The string form of a JSON scalar for gw_codec_encode_field_string: the
 * contents of a plain string (escapes are left to the codec's judgement by
 * skipping the check), or the token of a number or boolean. */
static bool scalar_text(const char *v, size_t n, const char **t, size_t *tn)
{
    if (n >= 2 && v[0] == '"') {
        if (memchr(v, '\\', n))
            return false;
        *t = v + 1;
        *tn = n - 2;
        return true;
    }
    if (n == 4 && memcmp(v, "null", 4) == 0)
        return false;
    if (v[0] == '{' || v[0] == '[')
        return false;
    *t = v;
    *tn = n;
    return true;
}

/* Path variable vs body: the same field with a different value is an
 * error. Equal values (also "5" vs 5, or an enum's name vs its number) are
 * fine: they encode to the same bytes. */
static int check_conflict(const gw_registry *r, const gw_route *rt, const gw_route_binding *b,
                          const uint8_t *body, size_t body_len, gw_rest_status *st)
{
    const gw_field_path *p = &b->var->path;
    size_t from;
    if (rt->body_kind == GW_BODY_ALL && !is_http_body(rt->method->input))
        from = 0;
    else if (rt->body_kind == GW_BODY_FIELD && p->fields[0] == rt->body_field && p->depth > 1 &&
             !gw_rest_route_takes_http_body(rt))
        from = 1;
    else
        return 0;
    const char *s = (const char *)body;
    size_t i = 0, end = body_len;
    for (size_t k = from; k < p->depth; k++) {
        const char *sub = s + i;
        size_t subn = end - i, vi = 0, ve = 0;
        if (!find_member(sub, subn, &vi, &ve, p->fields[k]))
            return 0;
        end = i + ve;
        i += vi;
    }
    const char *t;
    size_t tn;
    if (!scalar_text(s + i, end - i, &t, &tn))
        return 0;
    const gw_field_def *leaf = p->fields[p->depth - 1];
    gw_buf a, c;
    gw_buf_init(&a, 0);
    gw_buf_init(&c, 0);
    int rc = 0;
    if (gw_codec_encode_field_string(r, leaf, t, tn, &a, NULL) == 0 &&
        gw_codec_encode_field_string(r, leaf, b->value, b->len, &c, NULL) == 0 &&
        (a.len != c.len || memcmp(a.data, c.data, a.len) != 0)) {
        char name[256];
        path_text(p, p->depth, name, sizeof(name));
        st_set(st, GW_CODE_INVALID_ARGUMENT, 0,
               "field %s is set by the path to '%.100s' and by the body to '%.*s'", name,
               b->value, (int)GW_MIN(tn, 100), t);
        rc = GW_EINVAL;
    }
    gw_buf_free(&a);
    gw_buf_free(&c);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Body.
 */

static int append_http_body(const gw_rest_request *rq, gw_buf *out)
{
    int rc = 0;
    if (rq->content_type && *rq->content_type)
        rc = gw_wire_put_len_field(out, 1, rq->content_type, strlen(rq->content_type));
    if (rc == 0 && rq->body_len)
        rc = gw_wire_put_len_field(out, 2, rq->body, rq->body_len);
    return rc;
}

static int bind_body(const gw_rest_options *o, const gw_rest_request *rq, const gw_route *rt,
                     gw_buf *out, gw_rest_status *st)
{
    gw_codec_options co;
    codec_opts(o, &co);
    gw_error e;
    gw_error_clear(&e);
    int rc = 0;
    if (rt->body_kind == GW_BODY_NONE)
        return 0;
    if (gw_rest_route_takes_http_body(rt)) {
        if (rt->body_kind == GW_BODY_ALL) {
            rc = append_http_body(rq, out);
        } else {
            gw_buf inner;
            gw_buf_init(&inner, out->max);
            rc = append_http_body(rq, &inner);
            if (rc == 0)
                rc = gw_codec_wrap_message(rt->body_field->number, bytes_of(&inner), inner.len,
                                           out);
            gw_buf_free(&inner);
        }
        if (rc == GW_ELIMIT) {
            st_set(st, GW_CODE_RESOURCE_EXHAUSTED, 413, "request body larger than %zu bytes",
                   out->max);
            return rc;
        }
        return rc ? st_internal(st, rc) : 0;
    }
    if (rq->body_len == 0)
        return 0;
    if (rt->body_kind == GW_BODY_ALL) {
        rc = gw_codec_json_to_proto(rq->registry, rt->method->input, (const char *)rq->body,
                                    rq->body_len, &co, out, &e);
    } else {
        rc = gw_codec_json_to_field(rq->registry, rt->body_field, (const char *)rq->body,
                                    rq->body_len, &co, out, &e);
    }
    if (rc) {
        char what[300];
        if (rt->body_kind == GW_BODY_FIELD)
            snprintf(what, sizeof(what), "body (field %s)", rt->body_field->name);
        else
            snprintf(what, sizeof(what), "body");
        return st_client(st, rc, what, &e);
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Query string.
 */

static bool is_ignored(const gw_rest_options *o, const char *k, size_t n)
{
    for (size_t i = 0; i < o->ignored_query_count; i++)
        if (strlen(o->ignored_query[i]) == n && memcmp(o->ignored_query[i], k, n) == 0)
            return true;
    return false;
}

static bool truthy(const char *v, size_t n)
{
    return n == 0 || gw_strn_case_eq(v, n, "true") || (n == 1 && v[0] == '1');
}

void gw_rest_parse_print(const char *q, size_t len, gw_rest_print *print)
{
    print->pretty = false;
    size_t i = 0;
    while (q && i < len) {
        size_t j = i;
        while (j < len && q[j] != '&')
            j++;
        size_t eq = i;
        while (eq < j && q[eq] != '=')
            eq++;
        if (eq - i == 6 && memcmp(q + i, "pretty", 6) == 0)
            print->pretty = eq == j ? true : truthy(q + eq + 1, j - eq - 1);
        i = j + 1;
    }
}

/* The top-level google.protobuf.FieldMask field PATCH fills: the one named
 * update_mask, else the only one. */
static const gw_field_def *mask_field(const gw_message_def *m)
{
    const gw_field_def *found = NULL;
    size_t count = 0;
    for (size_t i = 0; i < m->field_count; i++) {
        const gw_field_def *f = &m->fields[i];
        if (f->type != GW_TYPE_MESSAGE || f->label == GW_LABEL_REPEATED || !f->message ||
            f->message->wkt != GW_WKT_FIELD_MASK)
            continue;
        if (strcmp(f->name, "update_mask") == 0)
            return f;
        found = f;
        count++;
    }
    return count == 1 ? found : NULL;
}

typedef struct query_ctx {
    const gw_rest_options *o;
    const gw_rest_request *rq;
    const gw_route *rt;
    gw_buf *out;
    gw_buf key, value, leaf, entry;
    const gw_field_def *mask;
    bool mask_set;
    gw_rest_status *st;
} query_ctx;

static int unknown_param(query_ctx *c, const char *why)
{
    if (!c->o->strict_query)
        return 0;
    st_set(c->st, GW_CODE_INVALID_ARGUMENT, 0, "query parameter '%.200s': %s",
           (const char *)c->key.data, why);
    return GW_EINVAL;
}

static int bind_one(query_ctx *c)
{
    const char *k = (const char *)c->key.data;
    size_t kn = c->key.len;
    const char *v = c->value.len ? (const char *)c->value.data : "";
    const gw_route *rt = c->rt;
    const gw_registry *r = c->rq->registry;
    gw_error e;
    gw_error_clear(&e);

    const char *map_key = NULL;
    size_t map_key_len = 0;
    const char *lb = memchr(k, '[', kn);
    if (lb && k[kn - 1] == ']') {
        map_key = lb + 1;
        map_key_len = (size_t)(k + kn - 1 - map_key);
        kn = (size_t)(lb - k);
    }
    if (rt->body_kind == GW_BODY_ALL)
        return unknown_param(c, "the body binds every field of this request");
    gw_field_path p;
    int rc = gw_field_path_resolve(rt->method->input, k, kn, true, &p, &e);
    if (rc == GW_ENOTFOUND)
        return unknown_param(c, e.msg);
    if (rc) {
        st_set(c->st, GW_CODE_INVALID_ARGUMENT, 0, "query parameter '%.200s': %s",
               (const char *)c->key.data, e.msg);
        return GW_EINVAL;
    }
    if (rt->body_kind == GW_BODY_FIELD && p.fields[0] == rt->body_field)
        return unknown_param(c, "the field is bound by the body");
    const gw_field_def *f = p.fields[p.depth - 1];
    gw_buf_reset(&c->leaf);
    if (map_key) {
        if (!f->is_map) {
            st_set(c->st, GW_CODE_INVALID_ARGUMENT, 0,
                   "query parameter '%.200s': %s is not a map", k, f->name);
            return GW_EINVAL;
        }
        gw_buf_reset(&c->entry);
        rc = gw_codec_encode_field_string(r, gw_map_key(f->message), map_key, map_key_len,
                                          &c->entry, &e);
        if (rc == 0)
            rc = gw_codec_encode_field_string(r, gw_map_value(f->message), v, c->value.len,
                                              &c->entry, &e);
        if (rc == 0)
            rc = gw_codec_wrap_message(f->number, c->entry.data, c->entry.len, &c->leaf);
    } else if (f->is_map) {
        st_set(c->st, GW_CODE_INVALID_ARGUMENT, 0,
               "query parameter '%.200s': %s is a map: use %.*s[key]=value", k, f->name,
               (int)kn, k);
        return GW_EINVAL;
    } else if (f->type == GW_TYPE_MESSAGE && f->label == GW_LABEL_REPEATED) {
        st_set(c->st, GW_CODE_INVALID_ARGUMENT, 0,
               "query parameter '%.200s': repeated message fields cannot be bound", k);
        return GW_EINVAL;
    } else if (f->type == GW_TYPE_GROUP ||
               (f->type == GW_TYPE_MESSAGE && !gw_field_is_bindable(f))) {
        st_set(c->st, GW_CODE_INVALID_ARGUMENT, 0,
               "query parameter '%.200s': %s is a message; bind its fields (%s.x=...)", k,
               f->name, f->name);
        return GW_EINVAL;
    } else {
        rc = gw_codec_encode_field_string(r, f, v, c->value.len, &c->leaf, &e);
    }
    if (rc) {
        char what[300];
        snprintf(what, sizeof(what), "query parameter '%.200s'", (const char *)c->key.data);
        return st_client(c->st, rc, what, &e);
    }
    if (p.depth == 1 && f == c->mask)
        c->mask_set = true;
    rc = append_at_path(&p, p.depth, &c->leaf, c->out);
    return rc ? st_client(c->st, rc, "query", &e) : 0;
}

static int bind_query(query_ctx *c, gw_rest_print *print)
{
    const char *q = c->rq->query;
    size_t len = c->rq->query_len, i = 0;
    while (q && i < len) {
        size_t j = i;
        while (j < len && q[j] != '&')
            j++;
        size_t eq = i;
        while (eq < j && q[eq] != '=')
            eq++;
        gw_buf_reset(&c->key);
        gw_buf_reset(&c->value);
        int rc = gw_url_decode(&c->key, q + i, eq - i, false, true);
        if (rc == 0 && eq < j)
            rc = gw_url_decode(&c->value, q + eq + 1, j - eq - 1, false, true);
        if (rc == GW_EPARSE) {
            st_set(c->st, GW_CODE_INVALID_ARGUMENT, 0,
                   "query parameter '%.*s': malformed %%-escape", (int)GW_MIN(j - i, 200),
                   q + i);
            return rc;
        }
        if (rc)
            return st_internal(c->st, rc);
        i = j + 1;
        if (c->key.len == 0)
            continue;
        const char *k = (const char *)c->key.data;
        if (c->key.len == 6 && memcmp(k, "pretty", 6) == 0) {
            print->pretty = truthy(c->value.len ? (const char *)c->value.data : "",
                                   c->value.len);
            continue;
        }
        if (is_ignored(c->o, k, c->key.len))
            continue;
        rc = bind_one(c);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * FieldMask fill (PATCH).
 */

typedef struct mask_ctx {
    gw_buf *paths;
} mask_ctx;

static int add_mask_path(void *ctx, const char *path, size_t len)
{
    mask_ctx *m = ctx;
    return gw_wire_put_len_field(m->paths, 1, path, len);
}

static int fill_mask(const gw_rest_options *o, const gw_rest_request *rq, const gw_route *rt,
                     const gw_field_def *mask, gw_buf *out, gw_rest_status *st)
{
    gw_buf paths;
    gw_buf_init(&paths, out->max);
    gw_codec_options co;
    codec_opts(o, &co);
    gw_error e;
    gw_error_clear(&e);
    mask_ctx m = {&paths};
    int rc = gw_codec_json_field_paths(rq->registry, rt->body_field->message,
                                       (const char *)rq->body, rq->body_len, &co,
                                       add_mask_path, &m, &e);
    if (rc == 0)
        rc = gw_codec_wrap_message(mask->number, bytes_of(&paths), paths.len, out);
    gw_buf_free(&paths);
    return rc ? st_client(st, rc, "body", &e) : 0;
}

/* ---------------------------------------------------------------------------
 * One occurrence per sub-message.
 *
 * Concatenation gives every field its right value by protobuf's merge rules,
 * but a singular sub-message bound from two places (body "user" and the path
 * {user.id}; ?inner.name and ?inner.level) then appears twice, and not every
 * reader merges: protobuf-c 1.4 fails to unpack such a message when the
 * sub-message has a oneof or a map. So once the message is built, each
 * singular message field that occurs more than once is rewritten as one
 * occurrence holding the concatenation of the payloads, itself rewritten the
 * same way: exactly what a merging reader would have built. It takes the
 * place of the last occurrence, so a later member of the same oneof still
 * wins over it and it still wins over an earlier one, and occurrences before
 * another member of its oneof are dropped, as a reader drops them. Scalars
 * and repeated fields stay as they are (a repeated scalar is last-wins for
 * every reader, and the order of repeated elements is their meaning).
 */

typedef struct sub_occurrence {
    size_t field;             /* index into m->fields */
    size_t start, end;        /* the whole field in the input, tag included */
    const uint8_t *payload;
    size_t len;
} sub_occurrence;

typedef struct sub_field {
    size_t count;             /* occurrences */
    size_t first, last;       /* ordinals in the occurrence list: the first
                                 that counts, the last one */
} sub_field;

static bool merges(const gw_field_def *f)
{
    return f->type == GW_TYPE_MESSAGE && f->label != GW_LABEL_REPEATED && f->message;
}

static int coalesce(const gw_message_def *m, const uint8_t *in, size_t n, gw_buf *out,
                    bool *changed, unsigned depth);

/* Appends occurrence `last` of field g, merged with the earlier ones that
 * count, as one length-delimited field. */
static int put_merged(const gw_message_def *m, const sub_occurrence *occ, const sub_field *sf,
                      size_t g, gw_buf *out, unsigned depth)
{
    gw_buf joined, merged;
    gw_buf_init(&joined, out->max);
    gw_buf_init(&merged, out->max);
    int rc = 0;
    for (size_t j = sf->first; rc == 0 && j <= sf->last; j++)
        if (occ[j].field == g)
            rc = gw_buf_append(&joined, occ[j].payload, occ[j].len);
    bool changed = false;
    if (rc == 0)
        rc = coalesce(m->fields[g].message, bytes_of(&joined), joined.len, &merged, &changed,
                      depth + 1);
    const gw_buf *body = changed ? &merged : &joined;
    if (rc == 0)
        rc = gw_wire_put_len_field(out, m->fields[g].number, bytes_of(body), body->len);
    gw_buf_free(&joined);
    gw_buf_free(&merged);
    return rc;
}

/* The common case costs one scan of the top level and no allocation: true
 * when some singular sub-message may occur twice (or there are too many
 * to tell here). */
static bool may_repeat(const gw_message_def *m, const uint8_t *in, size_t n)
{
    uint32_t seen[16];
    size_t count = 0;
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, in, n);
    while (!gw_wire_eof(&rd)) {
        uint32_t num;
        gw_wire_type wt;
        if (gw_wire_read_tag(&rd, &num, &wt) ||
            gw_wire_skip(&rd, num, wt, GW_CODEC_DEFAULT_MAX_DEPTH))
            return true; /* let the full scan report it */
        const gw_field_def *f;
        if (wt != GW_WIRE_LEN || !(f = gw_message_field_by_number(m, num)) || !merges(f))
            continue;
        for (size_t i = 0; i < count; i++)
            if (seen[i] == num)
                return true;
        if (count == GW_ARRAY_LEN(seen))
            return true;
        seen[count++] = num;
    }
    return false;
}

/*
 * Rewrites in[0..n) (a message of type m) into out with every singular
 * sub-message once. When no sub-message occurs twice, *changed stays false
 * and nothing is written: the input is already in that form. Returns 0,
 * GW_EPARSE (bytes that are not a message: ours are), GW_ELIMIT, GW_ENOMEM.
 */
static int coalesce(const gw_message_def *m, const uint8_t *in, size_t n, gw_buf *out,
                    bool *changed, unsigned depth)
{
    *changed = false;
    if (!m || m->field_count == 0 || n == 0 || depth > GW_CODEC_DEFAULT_MAX_DEPTH ||
        !may_repeat(m, in, n))
        return 0;
    sub_field *sf = calloc(m->field_count, sizeof *sf);
    size_t *oneof_last = calloc(m->oneof_count + 1, sizeof *oneof_last);
    sub_occurrence *occ = NULL;
    size_t occ_count = 0, occ_cap = 0;
    bool twice = false;
    int rc = 0;
    if (!sf || !oneof_last) {
        rc = GW_ENOMEM;
        goto out;
    }
    /* oneof_last[o]: 1 + the index of the member seen last, 0 for none. */
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, in, n);
    while (!gw_wire_eof(&rd)) {
        size_t at = gw_wire_offset(&rd);
        uint32_t num;
        gw_wire_type wt;
        if ((rc = gw_wire_read_tag(&rd, &num, &wt)))
            goto out;
        const gw_field_def *f = gw_message_field_by_number(m, num);
        size_t fi = f ? (size_t)(f - m->fields) : 0;
        bool other_member = false;
        if (f && f->oneof_index >= 0 && (size_t)f->oneof_index < m->oneof_count) {
            size_t *lastm = &oneof_last[f->oneof_index];
            other_member = *lastm != 0 && *lastm != fi + 1;
            *lastm = fi + 1;
        }
        if (!f || !merges(f) || wt != GW_WIRE_LEN) {
            if ((rc = gw_wire_skip(&rd, num, wt, GW_CODEC_DEFAULT_MAX_DEPTH)))
                goto out;
            continue;
        }
        const uint8_t *p;
        size_t len;
        if ((rc = gw_wire_read_len(&rd, &p, &len)))
            goto out;
        if (occ_count == occ_cap) {
            size_t cap = occ_cap ? occ_cap * 2 : 8;
            sub_occurrence *grown = realloc(occ, cap * sizeof *occ);
            if (!grown) {
                rc = GW_ENOMEM;
                goto out;
            }
            occ = grown;
            occ_cap = cap;
        }
        occ[occ_count] = (sub_occurrence){fi, at, gw_wire_offset(&rd), p, len};
        if (sf[fi].count == 0 || other_member)
            sf[fi].first = occ_count;
        sf[fi].last = occ_count;
        twice |= ++sf[fi].count > 1;
        occ_count++;
    }
    if (!twice)
        goto out;
    *changed = true;
    size_t copied = 0; /* input before this offset is written or dropped */
    for (size_t k = 0; k < occ_count && rc == 0; k++) {
        const sub_field *g = &sf[occ[k].field];
        if (g->count == 1)
            continue; /* copied with the bytes around it */
        rc = gw_buf_append(out, in + copied, occ[k].start - copied);
        copied = occ[k].end;
        if (rc == 0 && k == g->last)
            rc = put_merged(m, occ, g, occ[k].field, out, depth);
    }
    if (rc == 0)
        rc = gw_buf_append(out, in + copied, n - copied);
out:
    free(sf);
    free(oneof_last);
    free(occ);
    return rc;
}

/* ---------------------------------------------------------------------------
 * The whole request.
 */

int gw_rest_build_request(const gw_rest_options *o, const gw_rest_request *rq, gw_buf *out,
                          gw_rest_print *print, gw_rest_status *st)
{
    const gw_route *rt = rq->match->route;
    gw_rest_status_clear(st);
    print->pretty = false;
    size_t saved_max = out->max, start = out->len;
    if (o->max_message && (out->max == 0 || out->max > out->len + o->max_message))
        out->max = out->len + o->max_message;
    query_ctx c = {.o = o, .rq = rq, .rt = rt, .out = out, .st = st};
    gw_buf_init(&c.key, 0);
    gw_buf_init(&c.value, 0);
    gw_buf_init(&c.leaf, 0);
    gw_buf_init(&c.entry, 0);
    int rc = 0;

    for (size_t i = 0; i < rq->match->binding_count; i++) {
        rc = check_conflict(rq->registry, rt, &rq->match->bindings[i], rq->body, rq->body_len,
                            st);
        if (rc)
            goto out;
    }
    rc = bind_body(o, rq, rt, out, st);
    if (rc)
        goto out;

    bool fill = o->patch_fill_mask && strcmp(rt->http_method, "PATCH") == 0 &&
                rt->body_kind == GW_BODY_FIELD && rt->body_field->type == GW_TYPE_MESSAGE &&
                rt->body_field->label != GW_LABEL_REPEATED && rt->body_field->message &&
                rt->body_field->message->wkt == GW_WKT_NONE && rq->body_len > 0;
    c.mask = fill ? mask_field(rt->method->input) : NULL;
    rc = bind_query(&c, print);
    if (rc)
        goto out;
    if (c.mask && !c.mask_set) {
        rc = fill_mask(o, rq, rt, c.mask, out, st);
        if (rc)
            goto out;
    }

    for (size_t i = 0; i < rq->match->binding_count; i++) {
        const gw_route_binding *b = &rq->match->bindings[i];
        const gw_field_path *p = &b->var->path;
        gw_error e;
        gw_error_clear(&e);
        gw_buf_reset(&c.leaf);
        rc = gw_codec_encode_field_string(rq->registry, p->fields[p->depth - 1], b->value,
                                          b->len, &c.leaf, &e);
        if (rc == 0)
            rc = append_at_path(p, p->depth, &c.leaf, out);
        if (rc) {
            char what[300];
            snprintf(what, sizeof(what), "path variable %s", b->var->field_path);
            rc = st_client(st, rc, what, &e);
            goto out;
        }
    }
    if (out->len > start) {
        gw_buf merged;
        gw_buf_init(&merged, out->max);
        bool changed = false;
        rc = coalesce(rt->method->input, out->data + start, out->len - start, &merged,
                      &changed, 0);
        /* Never longer than the input: one tag and length replace several
         * (the check only guards the copy). */
        if (rc == 0 && changed && merged.len > out->len - start)
            rc = GW_ESTATE;
        if (rc == 0 && changed) {
            memcpy(out->data + start, bytes_of(&merged), merged.len);
            out->len = start + merged.len;
        }
        gw_buf_free(&merged);
        if (rc)
            rc = st_internal(st, rc);
    }
out:
    if (rc == GW_ELIMIT && st->http_status == 400 && out->max && out->len >= out->max - 16) {
        st_set(st, GW_CODE_INVALID_ARGUMENT, 413, "request message larger than %zu bytes",
               o->max_message);
    }
    out->max = saved_max;
    if (rc)
        out->len = start;
    gw_buf_free(&c.key);
    gw_buf_free(&c.value);
    gw_buf_free(&c.leaf);
    gw_buf_free(&c.entry);
    return rc;
}

int gw_rest_build_stream_message(const gw_rest_options *o, const gw_registry *r,
                                 const gw_route *rt, const char *json, size_t len,
                                 gw_buf *out, gw_rest_status *st)
{
    gw_rest_status_clear(st);
    gw_codec_options co;
    codec_opts(o, &co);
    gw_error e;
    gw_error_clear(&e);
    size_t saved_max = out->max, start = out->len;
    if (o->max_message && (out->max == 0 || out->max > out->len + o->max_message))
        out->max = out->len + o->max_message;
    int rc;
    if (rt->body_kind == GW_BODY_FIELD)
        rc = gw_codec_json_to_field(r, rt->body_field, json, len, &co, out, &e);
    else
        rc = gw_codec_json_to_proto(r, rt->method->input, json, len, &co, out, &e);
    out->max = saved_max;
    if (rc)
        out->len = start;
    return rc ? st_client(st, rc, "stream message", &e) : 0;
}
