/*
 * The router: a trie of path segments. Each node has a hash table of literal
 * children, one '*' child and one '**' child; the routes that end at a node
 * are listed there with their HTTP method and custom verb. A lookup visits
 * at most one node per request segment along each branch it tries, so its
 * cost depends on the path and on how templates overlap, never on how many
 * routes are registered.
 */
#include <stdlib.h>
#include <string.h>

#include "route/route.h"

typedef struct node node;

typedef struct end_entry {
    const char *http_method;
    const char *verb;   /* NULL: none */
    gw_route *route;
} end_entry;

struct node {
    char *text;        /* literal children: the segment */
    size_t len;
    uint64_t hash;
    node **lits;       /* open addressing, lit_cap a power of two */
    size_t lit_count;
    size_t lit_cap;
    node *star;
    node *dstar;
    end_entry *ends;
    size_t end_count;
};

struct gw_router {
    gw_router_options opt;
    node root;
    gw_route **routes;
    size_t route_count;
    size_t route_cap;
};

void gw_router_options_init(gw_router_options *o)
{
    memset(o, 0, sizeof(*o));
    o->auto_map_unbound = true;
}

gw_router *gw_router_new(const gw_router_options *o)
{
    gw_router *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (o)
        r->opt = *o;
    else
        gw_router_options_init(&r->opt);
    return r;
}

static void node_free(node *n)
{
    for (size_t i = 0; i < n->lit_cap; i++)
        if (n->lits[i]) {
            node_free(n->lits[i]);
            free(n->lits[i]);
        }
    free(n->lits);
    if (n->star) {
        node_free(n->star);
        free(n->star);
    }
    if (n->dstar) {
        node_free(n->dstar);
        free(n->dstar);
    }
    free(n->ends);
    free(n->text);
}

void gw_router_del(gw_router *r)
{
    if (!r)
        return;
    node_free(&r->root);
    for (size_t i = 0; i < r->route_count; i++) {
        gw_route_template_del((gw_route_template *)r->routes[i]->tmpl);
        free(r->routes[i]);
    }
    free(r->routes);
    free(r);
}

size_t gw_router_route_count(const gw_router *r)
{
    return r->route_count;
}

/* ---------------------------------------------------------------------------
 * Literal children.
 */

static node *lit_find(const node *n, const char *s, size_t len, uint64_t h)
{
    if (!n->lit_cap)
        return NULL;
    size_t mask = n->lit_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        node *c = n->lits[i];
        if (!c)
            return NULL;
        if (c->hash == h && c->len == len && memcmp(c->text, s, len) == 0)
            return c;
    }
}

static int lit_grow(node *n)
{
    size_t cap = n->lit_cap ? n->lit_cap * 2 : 4;
    node **t = calloc(cap, sizeof(*t));
    if (!t)
        return GW_ENOMEM;
    for (size_t i = 0; i < n->lit_cap; i++) {
        node *c = n->lits[i];
        if (!c)
            continue;
        size_t j = (size_t)c->hash & (cap - 1);
        while (t[j])
            j = (j + 1) & (cap - 1);
        t[j] = c;
    }
    free(n->lits);
    n->lits = t;
    n->lit_cap = cap;
    return 0;
}

static int lit_child(node *n, const char *s, size_t len, node **out)
{
    uint64_t h = gw_hash(s, len);
    node *c = lit_find(n, s, len, h);
    if (c) {
        *out = c;
        return 0;
    }
    /* Keep the load at or below one half so that probes stay short. */
    if ((n->lit_count + 1) * 2 > n->lit_cap && lit_grow(n))
        return GW_ENOMEM;
    c = calloc(1, sizeof(*c));
    if (!c || !(c->text = malloc(len + 1))) {
        free(c);
        return GW_ENOMEM;
    }
    memcpy(c->text, s, len);
    c->text[len] = '\0';
    c->len = len;
    c->hash = h;
    size_t j = (size_t)h & (n->lit_cap - 1);
    while (n->lits[j])
        j = (j + 1) & (n->lit_cap - 1);
    n->lits[j] = c;
    n->lit_count++;
    *out = c;
    return 0;
}

static int wild_child(node **slot, node **out)
{
    if (!*slot && !(*slot = calloc(1, sizeof(node))))
        return GW_ENOMEM;
    *out = *slot;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Registration.
 */

static bool verb_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool verb_eqn(const char *a, const char *b, size_t blen)
{
    if (!a || !b)
        return a == b;
    return strlen(a) == blen && memcmp(a, b, blen) == 0;
}

static int insert_route(gw_router *r, gw_route *rt, gw_error *e)
{
    const gw_route_template *t = rt->tmpl;
    node *n = &r->root;
    for (size_t i = 0; i < t->seg_count; i++) {
        const gw_tmpl_seg *sg = &t->segs[i];
        int rc = sg->kind == GW_TMPL_LITERAL ? lit_child(n, sg->text, sg->len, &n)
                 : sg->kind == GW_TMPL_STAR  ? wild_child(&n->star, &n)
                                             : wild_child(&n->dstar, &n);
        if (rc)
            return gw_error_set(e, rc, "out of memory");
    }
    for (size_t i = 0; i < n->end_count; i++) {
        const end_entry *x = &n->ends[i];
        if (strcmp(x->http_method, rt->http_method) == 0 && verb_eq(x->verb, t->verb))
            return gw_error_set(e, GW_EINVAL, "%s %s conflicts with %s %s of %s",
                                rt->http_method, t->text, x->http_method, x->route->tmpl->text,
                                x->route->method->full_name);
    }
    end_entry *ends = realloc(n->ends, (n->end_count + 1) * sizeof(*ends));
    if (!ends)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    n->ends = ends;
    ends[n->end_count++] = (end_entry){rt->http_method, t->verb, rt};
    return 0;
}

static int keep_route(gw_router *r, gw_route *rt)
{
    if (r->route_count == r->route_cap) {
        size_t cap = r->route_cap ? r->route_cap * 2 : 16;
        gw_route **v = realloc(r->routes, cap * sizeof(*v));
        if (!v)
            return GW_ENOMEM;
        r->routes = v;
        r->route_cap = cap;
    }
    r->routes[r->route_count++] = rt;
    return 0;
}

static int add_rule(gw_router *r, const gw_method_def *m, const gw_http_rule *rule,
                    const char *http_method, const char *path, const char *body,
                    const char *response_body, gw_error *e)
{
    gw_route_template *t = NULL;
    gw_route *rt = NULL;
    int rc = gw_route_template_parse(path, &t, e);
    if (rc)
        goto out;
    rc = gw_route_template_bind(t, m->input, e);
    if (rc)
        goto out;
    rt = calloc(1, sizeof(*rt));
    if (!rt) {
        rc = gw_error_set(e, GW_ENOMEM, "out of memory");
        goto out;
    }
    rt->method = m;
    rt->rule = rule;
    rt->http_method = http_method;
    rt->tmpl = t;
    rt->auto_mapped = rule == NULL;
    if (!body || !*body) {
        rt->body_kind = GW_BODY_NONE;
    } else if (strcmp(body, "*") == 0) {
        rt->body_kind = GW_BODY_ALL;
    } else {
        rt->body_kind = GW_BODY_FIELD;
        rt->body_field = gw_field_find(m->input, body, strlen(body), false);
        if (!rt->body_field) {
            rc = gw_error_set(e, GW_ENOTFOUND, "body: %s has no field '%s'",
                              m->input->full_name, body);
            goto out;
        }
    }
    if (response_body && *response_body) {
        rt->response_field =
            gw_field_find(m->output, response_body, strlen(response_body), false);
        if (!rt->response_field) {
            rc = gw_error_set(e, GW_ENOTFOUND, "response_body: %s has no field '%s'",
                              m->output->full_name, response_body);
            goto out;
        }
    }
    rc = keep_route(r, rt);
    if (rc) {
        rc = gw_error_set(e, rc, "out of memory");
        goto out;
    }
    rc = insert_route(r, rt, e);
    if (rc) {
        r->route_count--;
        goto out;
    }
    return 0;
out:
    if (rc && e)
        gw_error_prefix(e, "%s: %s %s", m->full_name, http_method, path);
    free(rt);
    gw_route_template_del(t);
    return rc;
}

int gw_router_add_method(gw_router *r, const gw_method_def *m, gw_error *e)
{
    for (size_t i = 0; i < m->http_rule_count; i++) {
        const gw_http_rule *rule = &m->http_rules[i];
        int rc = add_rule(r, m, rule, rule->verb, rule->path, rule->body,
                          rule->response_body, e);
        if (rc)
            return rc;
    }
    if (m->http_rule_count == 0 && r->opt.auto_map_unbound) {
        gw_error ignored;
        int rc = add_rule(r, m, NULL, "POST", m->path, "*", "", &ignored);
        if (rc == GW_ENOMEM)
            return gw_error_set(e, rc, "out of memory");
        /* A service path that a user template already claims, or that is
         * not a valid template, stays the user's: skip the automatic one. */
        if (rc)
            GW_WARN("route: not auto-mapping %s: %s", m->full_name, ignored.msg);
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Matching.
 */

typedef struct walk {
    const char *method;
    const char *verb;   /* NULL: none */
    size_t verb_len;
    size_t nseg;
    const char *seg[GW_ROUTE_SEGMENTS_MAX];
    size_t seg_len[GW_ROUTE_SEGMENTS_MAX];
    uint64_t seg_hash[GW_ROUTE_SEGMENTS_MAX];
    bool hashed[GW_ROUTE_SEGMENTS_MAX];
    size_t allow_count;
    const char *allow[GW_ROUTE_ALLOW_MAX];
    bool path_matched;
} walk;

static void allow_one(walk *w, const char *method)
{
    for (size_t i = 0; i < w->allow_count; i++)
        if (strcmp(w->allow[i], method) == 0)
            return;
    if (w->allow_count < GW_ROUTE_ALLOW_MAX)
        w->allow[w->allow_count++] = method;
}

/* A path with a GET route also serves HEAD (RFC 9110 9.3.2). */
static void allow_add(walk *w, const char *method)
{
    w->path_matched = true;
    allow_one(w, method);
    if (strcmp(method, "GET") == 0)
        allow_one(w, "HEAD");
}

/* The route for w->method among n's ends; HEAD takes a GET route when no
 * route was declared for HEAD itself. */
static gw_route *ends_match(const node *n, walk *w)
{
    gw_route *get = NULL;
    bool head = strcmp(w->method, "HEAD") == 0;
    for (size_t i = 0; i < n->end_count; i++) {
        const end_entry *x = &n->ends[i];
        if (!verb_eqn(x->verb, w->verb, w->verb_len))
            continue;
        if (strcmp(x->http_method, w->method) == 0)
            return x->route;
        if (head && !get && strcmp(x->http_method, "GET") == 0)
            get = x->route;
        allow_add(w, x->http_method);
    }
    return get;
}

static gw_route *descend(const node *n, walk *w, size_t i)
{
    gw_route *rt;
    if (i == w->nseg) {
        if ((rt = ends_match(n, w)))
            return rt;
        return n->dstar ? ends_match(n->dstar, w) : NULL;
    }
    if (n->lit_cap) {
        if (!w->hashed[i]) {
            w->seg_hash[i] = gw_hash(w->seg[i], w->seg_len[i]);
            w->hashed[i] = true;
        }
        const node *c = lit_find(n, w->seg[i], w->seg_len[i], w->seg_hash[i]);
        if (c && (rt = descend(c, w, i + 1)))
            return rt;
    }
    if (n->star && (rt = descend(n->star, w, i + 1)))
        return rt;
    if (n->dstar && (rt = ends_match(n->dstar, w)))
        return rt;
    return NULL;
}

/* Splits the path into segments; false when it cannot match any route. */
static bool split_path(walk *w, const char *path, size_t len)
{
    if (len < 2 || path[0] != '/')
        return false;
    size_t pos = 1;
    w->nseg = 0;
    for (;;) {
        size_t end = pos;
        while (end < len && path[end] != '/')
            end++;
        if (end == pos || w->nseg == GW_ROUTE_SEGMENTS_MAX)
            return false;
        w->seg[w->nseg] = path + pos;
        w->seg_len[w->nseg] = end - pos;
        w->hashed[w->nseg] = false;
        w->nseg++;
        if (end == len)
            return true;
        pos = end + 1;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int bind_vars(const gw_route *rt, const walk *w, gw_arena *a, gw_route_match *m,
                     gw_error *e)
{
    const gw_route_template *t = rt->tmpl;
    gw_buf tmp;
    gw_buf_init(&tmp, 0);
    int rc = 0;
    m->binding_count = 0;
    for (size_t i = 0; i < t->var_count; i++) {
        const gw_tmpl_var *v = &t->vars[i];
        size_t first = v->first;
        size_t last = v->first + v->count; /* exclusive, in request segments */
        if (v->count && t->segs[v->first + v->count - 1].kind == GW_TMPL_DSTAR)
            last = w->nseg;
        const char *start;
        size_t n;
        if (first >= last) {
            start = "";
            n = 0;
        } else {
            start = w->seg[first];
            n = (size_t)(w->seg[last - 1] + w->seg_len[last - 1] - start);
        }
        gw_buf_reset(&tmp);
        rc = gw_url_decode(&tmp, start, n, v->multi, false);
        if (rc == GW_EPARSE) {
            rc = gw_error_set(e, GW_EPARSE, "path variable %s: malformed %%-escape in '%.*s'",
                              v->field_path, (int)n, start);
            goto out;
        }
        if (rc) {
            rc = gw_error_set(e, rc, "out of memory");
            goto out;
        }
        char *val = gw_arena_strndup(a, tmp.len ? (const char *)tmp.data : "", tmp.len);
        if (!val) {
            rc = gw_error_set(e, GW_ENOMEM, "out of memory");
            goto out;
        }
        m->bindings[m->binding_count++] = (gw_route_binding){v, val, tmp.len};
    }
out:
    gw_buf_free(&tmp);
    return rc;
}

int gw_router_match(const gw_router *r, const char *http_method, const char *path,
                    size_t path_len, gw_arena *a, gw_route_match *m, gw_error *e)
{
    m->result = GW_ROUTE_NOT_FOUND;
    m->route = NULL;
    m->binding_count = 0;
    m->allow_count = 0;
    walk w;
    w.method = http_method;
    w.allow_count = 0;
    w.path_matched = false;
    if (!split_path(&w, path, path_len))
        return 0;

    gw_route *rt = NULL;
    /* A custom verb first: the last ':' of the last segment splits it. */
    const char *last = w.seg[w.nseg - 1];
    size_t last_len = w.seg_len[w.nseg - 1];
    const char *colon = memrchr(last, ':', last_len);
    if (colon && colon > last && colon + 1 < last + last_len) {
        w.verb = colon + 1;
        w.verb_len = (size_t)(last + last_len - w.verb);
        w.seg_len[w.nseg - 1] = (size_t)(colon - last);
        rt = descend(&r->root, &w, 0);
        if (!rt && !w.path_matched) {
            w.seg_len[w.nseg - 1] = last_len;
            w.hashed[w.nseg - 1] = false;
        }
    }
    if (!rt && !w.path_matched) {
        w.verb = NULL;
        w.verb_len = 0;
        rt = descend(&r->root, &w, 0);
    }
    if (rt) {
        m->result = GW_ROUTE_MATCHED;
        m->route = rt;
        return bind_vars(rt, &w, a, m, e);
    }
    if (w.path_matched) {
        m->result = GW_ROUTE_METHOD_NOT_ALLOWED;
        m->allow_count = w.allow_count;
        memcpy(m->allow, w.allow, w.allow_count * sizeof(w.allow[0]));
        qsort(m->allow, m->allow_count, sizeof(m->allow[0]), cmp_str);
    }
    return 0;
}

int gw_route_allow_header(const gw_route_match *m, gw_buf *out)
{
    for (size_t i = 0; i < m->allow_count; i++) {
        int rc = gw_buf_printf(out, "%s%s", i ? ", " : "", m->allow[i]);
        if (rc)
            return rc;
    }
    return 0;
}
