/*
 * route — google.api.http templates and the REST router.
 *
 * Three layers, all pure (no I/O, no clocks):
 *
 *   1. gw_route_template_parse turns a path template as written in an
 *      HttpRule ("/v1/shelves/{shelf}/books:get") into segments, variables
 *      and an optional custom verb (grammar: REFERENCE.md "google.api.http").
 *   2. gw_route_template_bind resolves each variable's field path against a
 *      method's input message; gw_field_path_resolve does the same for any
 *      dotted path (query parameters use it too).
 *   3. gw_router is built once from a registry (or method by method) and is
 *      immutable afterwards, so all workers may share it. gw_router_match
 *      walks a trie keyed by path segments; the HTTP method and custom verb
 *      are looked up at the trie node the path ends in.
 *
 * Matching precedence (documented in docs/route.md):
 *   - a path whose last segment contains ':' is first matched as
 *     "segments + custom verb"; only if nothing (for any HTTP method) matches
 *     that way is the whole last segment matched as a plain segment. So
 *     "/v1/users:batchCreate" prefers the verb route over "/v1/{name}".
 *   - at every segment: a literal child beats '*', which beats '**';
 *     matching backtracks, so "/v1/a/x" still reaches "/v1/{p}/x" when the
 *     literal "/v1/a/..." subtree has no route for the rest.
 *   - the same (HTTP method, template shape, verb) registered twice is a
 *     load error naming both methods.
 *
 * Paths given to gw_router_match are the raw request target up to (not
 * including) '?', still percent-encoded: literals are compared byte for
 * byte, and variable values are decoded here (single-segment variables fully,
 * multi-segment ones keep "%2F" so that the backend can tell a slash inside
 * a segment from a separator).
 */
#ifndef GW_ROUTE_H
#define GW_ROUTE_H

#include "base/base.h"
#include "schema/schema.h"

/* Limits. A template or request beyond them is rejected, never truncated. */
#define GW_ROUTE_TEMPLATE_MAX 2048   /* bytes of a template */
#define GW_ROUTE_SEGMENTS_MAX 64     /* segments in a template or request path */
#define GW_ROUTE_VARS_MAX 16         /* variables in one template */
#define GW_ROUTE_ALLOW_MAX 16        /* distinct HTTP methods listed in Allow */
#define GW_FIELD_PATH_MAX 32         /* components of a dotted field path */

/* ---------------------------------------------------------------------------
 * Field paths ("a.b.c") resolved against a message.
 */
typedef struct gw_field_path {
    size_t depth;                                  /* 1..GW_FIELD_PATH_MAX */
    const gw_field_def *fields[GW_FIELD_PATH_MAX]; /* fields[0] is in the root */
} gw_field_path;

/*
 * Looks a field up by proto name, and also by JSON name when json_names is
 * set (a linear scan: messages are small and this needs no registry index).
 * Returns NULL when absent.
 */
const gw_field_def *gw_field_find(const gw_message_def *m, const char *name, size_t len,
                                  bool json_names);

/*
 * Resolves the dotted path s[0..len) from message m. Every component but the
 * last must be a singular message field (not a map, not repeated, not a
 * well-known type with a special JSON form). The last may be anything: the
 * caller checks that it suits its use. e names the component at fault.
 * Returns 0, GW_ENOTFOUND (no such field), GW_EINVAL (empty component,
 * traversal through a non-message or repeated field) or GW_ELIMIT (deeper
 * than GW_FIELD_PATH_MAX).
 */
int gw_field_path_resolve(const gw_message_def *m, const char *s, size_t len,
                          bool json_names, gw_field_path *out, gw_error *e);

/* True for the fields a path variable or query parameter may bind: a
 * non-repeated scalar, enum, or well-known type whose JSON form is a string
 * or number (Timestamp, Duration, FieldMask, the wrappers). */
bool gw_field_is_bindable(const gw_field_def *f);

/* ---------------------------------------------------------------------------
 * Templates.
 */
typedef enum gw_tmpl_seg_kind {
    GW_TMPL_LITERAL = 0,
    GW_TMPL_STAR,    /* '*': exactly one segment */
    GW_TMPL_DSTAR,   /* '**': zero or more segments; only last */
} gw_tmpl_seg_kind;

typedef struct gw_tmpl_seg {
    gw_tmpl_seg_kind kind;
    const char *text;   /* LITERAL: the bytes as written (NUL-terminated) */
    size_t len;
} gw_tmpl_seg;

typedef struct gw_tmpl_var {
    const char *field_path; /* "a.b" as written (NUL-terminated) */
    size_t first;           /* index of the first segment it covers */
    size_t count;           /* segments it covers in the template */
    bool multi;             /* anything but a single '*': keeps %2F */
    gw_field_path path;     /* valid after gw_route_template_bind */
} gw_tmpl_var;

typedef struct gw_route_template {
    const char *text;       /* the template as written */
    size_t seg_count;
    gw_tmpl_seg *segs;
    size_t var_count;
    gw_tmpl_var *vars;
    const char *verb;       /* custom verb without ':' or NULL */
    bool bound;             /* gw_route_template_bind succeeded */
} gw_route_template;

/*
 * Parses a path template. *out is a single heap allocation owned by the
 * caller (gw_route_template_del). e says what is wrong and at which byte
 * offset ("offset 7: '**' must be the last segment").
 * Returns 0, GW_EPARSE (syntax), GW_ELIMIT (over a GW_ROUTE_* limit),
 * GW_ENOMEM.
 */
int gw_route_template_parse(const char *text, gw_route_template **out, gw_error *e);
void gw_route_template_del(gw_route_template *t);

/*
 * Resolves every variable against the input message (proto names, JSON
 * names accepted too) and checks that each binds a bindable field
 * (gw_field_is_bindable) and that no field is bound twice.
 * Returns 0, GW_ENOTFOUND, GW_EINVAL, GW_ELIMIT.
 */
int gw_route_template_bind(gw_route_template *t, const gw_message_def *input, gw_error *e);

/* ---------------------------------------------------------------------------
 * Router.
 */
typedef struct gw_router gw_router;

typedef struct gw_router_options {
    /* Unbound methods (no google.api.http rule) are reachable as
     * `POST /pkg.Service/Method` with the whole request as JSON body. */
    bool auto_map_unbound;
} gw_router_options;

/* Defaults: auto_map_unbound on. */
void gw_router_options_init(gw_router_options *o);

/* One registered rule. Owned by the router; valid until gw_router_del. */
typedef struct gw_route {
    const gw_method_def *method;
    const gw_http_rule *rule;     /* NULL for an auto-mapped method */
    const char *http_method;      /* "GET", ... or the custom kind */
    const gw_route_template *tmpl;
    /* Body binding: BODY_NONE (""), BODY_ALL ("*") or BODY_FIELD. */
    enum { GW_BODY_NONE = 0, GW_BODY_ALL, GW_BODY_FIELD } body_kind;
    const gw_field_def *body_field;     /* BODY_FIELD: top-level input field */
    const gw_field_def *response_field; /* response_body field or NULL */
    bool auto_mapped;
} gw_route;

/* A path variable's value after decoding. */
typedef struct gw_route_binding {
    const gw_tmpl_var *var;   /* var->path is the field; borrowed from the router */
    const char *value;        /* decoded, NUL-terminated, in the caller's arena */
    size_t len;
} gw_route_binding;

typedef enum gw_route_result {
    GW_ROUTE_MATCHED = 0,
    GW_ROUTE_NOT_FOUND,         /* 404: no route has this path */
    GW_ROUTE_METHOD_NOT_ALLOWED /* 405: the path exists for `allow` methods */
} gw_route_result;

typedef struct gw_route_match {
    gw_route_result result;
    const gw_route *route;                        /* MATCHED */
    size_t binding_count;
    gw_route_binding bindings[GW_ROUTE_VARS_MAX]; /* template order */
    size_t allow_count;                           /* METHOD_NOT_ALLOWED */
    const char *allow[GW_ROUTE_ALLOW_MAX];        /* sorted, borrowed */
} gw_route_match;

gw_router *gw_router_new(const gw_router_options *o);   /* NULL: out of memory */
void gw_router_del(gw_router *r);

/*
 * Registers every HTTP rule of method m (primary and additional bindings),
 * or, for a method without rules and with auto_map_unbound, the route
 * `POST <m->path>` with body "*". m and its registry must outlive the router.
 * An invalid template, binding, body or response_body field, or a route that
 * duplicates one already registered, fails with a message naming the method
 * and the template; the router is then unchanged for that rule but may hold
 * the method's earlier rules, so discard it on error.
 * Returns 0, GW_EPARSE, GW_ENOTFOUND, GW_EINVAL, GW_ELIMIT, GW_ENOMEM.
 */
int gw_router_add_method(gw_router *r, const gw_method_def *m, gw_error *e);

/* Every method of every service of reg, in load order; same errors. */
int gw_router_add_registry(gw_router *r, const gw_registry *reg, gw_error *e);

/* Number of routes registered (for logs and tests). */
size_t gw_router_route_count(const gw_router *r);

/*
 * Matches an HTTP method and a raw path (percent-encoded, no query string,
 * path_len bytes). Fills *m; values of bindings are allocated from arena a.
 * HEAD matches the GET route of a path that has no route of its own for
 * HEAD (RFC 9110: HEAD wherever GET), and the Allow list of a path with a
 * GET route names HEAD too.
 * A path that is not absolute, has too many segments or an empty segment
 * simply does not match. Returns 0 (see m->result), GW_EPARSE (a variable's
 * value has a malformed %-escape: answer 400; e says which variable) or
 * GW_ENOMEM.
 */
int gw_router_match(const gw_router *r, const char *http_method, const char *path,
                    size_t path_len, gw_arena *a, gw_route_match *m, gw_error *e);

/* Writes "GET, POST" (the Allow header value) for a METHOD_NOT_ALLOWED
 * match. Returns 0, GW_ELIMIT or GW_ENOMEM. */
int gw_route_allow_header(const gw_route_match *m, gw_buf *out);

#endif
