/*
 * The document: one operation per route the router serves. Routes are not
 * re-derived from the HttpRules here: for each rule (and each auto-mapped
 * method) a sample request is matched against a router built like the
 * gateway's, and the operation is written from the gw_route that answers it
 * (its parsed template, body and response_body bindings). A rule the router
 * does not answer is not in the document.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openapi/internal.h"
#include "rest/rest.h"

void gw_openapi_options_init(gw_openapi_options *o)
{
    memset(o, 0, sizeof(*o));
    o->auto_map_unbound = true;
}

/* A segment no template has as a literal, to stand for '*' and '**' in
 * sample requests ('~' is unreserved, so it needs no escaping). */
#define SAMPLE_SEGMENT "~gw~"

/* ---------------------------------------------------------------------------
 * Which route serves a rule.
 */

static int sample_path(const gw_route_template *t, gw_buf *p)
{
    int rc = 0;
    for (size_t i = 0; i < t->seg_count && !rc; i++) {
        const gw_tmpl_seg *s = &t->segs[i];
        rc = gw_buf_printf(p, "/%s", s->kind == GW_TMPL_LITERAL ? s->text : SAMPLE_SEGMENT);
    }
    if (!rc && t->verb)
        rc = gw_buf_printf(p, ":%s", t->verb);
    return rc;
}

/*
 * The router's route for (method, rule), or NULL when the router does not
 * serve it (an auto-mapped path a user template took). rule is NULL for the
 * auto-mapped route. Returns 0 or GW_ENOMEM.
 */
static int served_route(oa_gen *g, const gw_method_def *m, const gw_http_rule *rule,
                        const gw_route **out)
{
    const char *http = rule ? rule->verb : "POST";
    const char *text = rule ? rule->path : m->path;
    gw_route_template *t = NULL;
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    gw_buf p;
    gw_buf_init(&p, 0);
    gw_error e;
    gw_route_match match;
    *out = NULL;
    int rc = gw_route_template_parse(text, &t, &e);
    if (rc) {
        /* The router accepted every rule of the registry, so only an
         * auto-mapped path can fail here; it is then not served. */
        rc = rc == GW_ENOMEM ? rc : 0;
        goto out;
    }
    rc = sample_path(t, &p);
    if (rc)
        goto out;
    rc = gw_router_match(g->router, http, (const char *)p.data, p.len, &a, &match, &e);
    if (rc) {
        rc = rc == GW_ENOMEM ? rc : 0;
        goto out;
    }
    if (match.result == GW_ROUTE_MATCHED && match.route->method == m &&
        match.route->rule == rule)
        *out = match.route;
out:
    gw_route_template_del(t);
    gw_buf_free(&p);
    gw_arena_free(&a);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Parameters.
 */

static const char *const oas_methods[] = {"get",  "put",  "post",    "delete",
                                          "head", "patch", "options", "trace"};

/* OpenAPI's spelling of an HTTP method, or NULL when it has none. */
static const char *oas_method(const char *http)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(oas_methods); i++)
        if (gw_strn_case_eq(http, strlen(http), oas_methods[i]) &&
            strlen(http) == strlen(oas_methods[i]))
            return oas_methods[i];
    return NULL;
}

static int regex_literal(gw_buf *b, const char *s)
{
    for (; *s; s++) {
        int rc = strchr(".^$*+?()[]{}|\\", *s) ? gw_buf_printf(b, "\\%c", *s)
                                               : gw_buf_append_byte(b, (uint8_t)*s);
        if (rc)
            return rc;
    }
    return 0;
}

/* The regular expression a multi-segment variable's value matches. */
static int var_pattern(const gw_route_template *t, const gw_tmpl_var *v, gw_buf *b)
{
    int rc = gw_buf_append_str(b, "^");
    for (size_t j = 0; j < v->count && !rc; j++) {
        const gw_tmpl_seg *s = &t->segs[v->first + j];
        if (s->kind == GW_TMPL_DSTAR) {
            rc = gw_buf_append_str(b, j ? "(/.*)?" : ".*");
            continue;
        }
        if (j)
            rc = gw_buf_append_str(b, "/");
        if (!rc)
            rc = s->kind == GW_TMPL_LITERAL ? regex_literal(b, s->text)
                                            : gw_buf_append_str(b, "[^/]+");
    }
    return rc ? rc : gw_buf_append_str(b, "$");
}

static int var_segments(const gw_route_template *t, const gw_tmpl_var *v, gw_buf *b)
{
    int rc = 0;
    for (size_t j = 0; j < v->count && !rc; j++) {
        const gw_tmpl_seg *s = &t->segs[v->first + j];
        rc = gw_buf_printf(b, "%s%s", j ? "/" : "",
                           s->kind == GW_TMPL_LITERAL ? s->text
                           : s->kind == GW_TMPL_STAR  ? "*"
                                                      : "**");
    }
    return rc;
}

static json_t *param(oa_gen *g, const char *name, const char *in, json_t *schema)
{
    json_t *p = oa_obj(g);
    oa_set_str(g, p, "name", name);
    oa_set_str(g, p, "in", in);
    if (strcmp(in, "path") == 0)
        oa_set(g, p, "required", oa_bool(g, true));
    oa_set(g, p, "schema", schema);
    return p;
}

static void describe(oa_gen *g, json_t *obj, gw_buf *d)
{
    if (d->len)
        oa_set_str(g, obj, "description", (const char *)d->data);
}

static void path_var(oa_gen *g, const gw_route_template *t, const gw_tmpl_var *v,
                     json_t *params)
{
    const gw_field_def *f = v->path.fields[v->path.depth - 1];
    gw_buf d;
    gw_buf_init(&d, 0);
    json_t *schema;
    const char *c = oa_field_comment(g, f);
    int rc = c ? gw_buf_append_str(&d, c) : 0;
    if (v->multi) {
        gw_buf pat;
        gw_buf_init(&pat, 0);
        schema = oa_obj(g);
        oa_set_str(g, schema, "type", "string");
        rc = rc ? rc : var_pattern(t, v, &pat);
        if (!rc)
            oa_set_str(g, schema, "pattern", (const char *)pat.data);
        gw_buf_free(&pat);
        if (!rc)
            rc = gw_buf_printf(&d, "%sSeveral path segments matching ", d.len ? "\n\n" : "");
        if (!rc)
            rc = var_segments(t, v, &d);
        if (!rc)
            rc = gw_buf_append_str(&d, ": the slashes between them are sent as they are, "
                                       "not percent-encoded.");
    } else {
        schema = oa_param_schema(g, f);
    }
    if (rc)
        g->oom = true;
    json_t *p = param(g, v->field_path, "path", schema);
    describe(g, p, &d);
    gw_buf_free(&d);
    oa_push(g, params, p);
}

/* Writes the OpenAPI path ("/v1/users/{id}:undelete") and its path
 * parameters. */
static void path_key(oa_gen *g, const gw_route_template *t, gw_buf *key, json_t *params)
{
    size_t wild = 0, vi = 0;
    int rc = 0;
    for (size_t i = 0; i < t->seg_count && !rc;) {
        if (vi < t->var_count && t->vars[vi].first == i && t->vars[vi].count) {
            const gw_tmpl_var *v = &t->vars[vi++];
            rc = gw_buf_printf(key, "/{%s}", v->field_path);
            path_var(g, t, v, params);
            i += v->count;
            continue;
        }
        const gw_tmpl_seg *s = &t->segs[i++];
        if (s->kind == GW_TMPL_LITERAL) {
            rc = gw_buf_printf(key, "/%s", s->text);
            continue;
        }
        /* A '*' or '**' outside any variable matches but binds nothing;
         * OpenAPI has no unnamed segments, so it gets a name of its own. */
        char name[32];
        snprintf(name, sizeof(name), "_segment%zu", ++wild);
        rc = gw_buf_printf(key, "/{%s}", name);
        json_t *schema = oa_obj(g);
        oa_set_str(g, schema, "type", "string");
        if (s->kind == GW_TMPL_STAR)
            oa_set_str(g, schema, "pattern", "^[^/]+$");
        json_t *p = param(g, name, "path", schema);
        oa_set_str(g, p, "description",
                   s->kind == GW_TMPL_STAR
                       ? "Any one path segment; it is not bound to a field."
                       : "Any path segments, slashes sent as they are; not bound to a field.");
        oa_push(g, params, p);
    }
    if (!rc && t->verb)
        rc = gw_buf_printf(key, ":%s", t->verb);
    if (rc)
        g->oom = true;
}

/* True when a path variable binds exactly fields[0..depth). */
static bool bound_by_path(const gw_route_template *t, const gw_field_def *const *fields,
                          size_t depth)
{
    for (size_t i = 0; i < t->var_count; i++) {
        const gw_field_path *p = &t->vars[i].path;
        if (p->depth == depth &&
            memcmp(p->fields, fields, depth * sizeof(fields[0])) == 0)
            return true;
    }
    return false;
}

typedef struct query_walk {
    oa_gen *g;
    const gw_route *rt;
    json_t *params;
    size_t count;
    bool truncated;
    gw_buf name;
    const gw_field_def *fields[GW_FIELD_PATH_MAX];
} query_walk;

static void query_param(query_walk *w, const gw_field_def *f, json_t *schema, bool map)
{
    oa_gen *g = w->g;
    if (w->count == OA_QUERY_PARAMS_MAX) {
        json_decref(schema);
        w->truncated = true;
        return;
    }
    w->count++;
    json_t *p = param(g, (const char *)w->name.data, "query", schema);
    if (map) {
        /* ?labels[team]=core */
        oa_set_str(g, p, "style", "deepObject");
        oa_set(g, p, "explode", oa_bool(g, true));
    }
    const char *c = oa_field_comment(g, f);
    if (c)
        oa_set_str(g, p, "description", c);
    oa_push(g, w->params, p);
}

/* Every leaf under message m that a query parameter can set, as the REST
 * binder accepts them (src/rest: dotted paths through singular messages,
 * repetition for repeated scalars, name[key] for maps). A message already
 * on the path is not entered again: recursive messages would never end. */
static void query_walk_message(query_walk *w, const gw_message_def *m, size_t depth,
                               const gw_message_def **chain)
{
    oa_gen *g = w->g;
    const gw_route *rt = w->rt;
    for (size_t i = 0; i < m->field_count && !g->oom && !w->truncated; i++) {
        const gw_field_def *f = &m->fields[i];
        if (depth == 0 && rt->body_kind == GW_BODY_FIELD && f == rt->body_field)
            continue;
        w->fields[depth] = f;
        if (bound_by_path(rt->tmpl, w->fields, depth + 1))
            continue;
        size_t mark = w->name.len;
        if (gw_buf_printf(&w->name, "%s%s", depth ? "." : "", oa_field_name(g, f))) {
            g->oom = true;
            return;
        }
        bool msg = (f->type == GW_TYPE_MESSAGE || f->type == GW_TYPE_GROUP) && f->message;
        if (f->is_map && f->message) {
            const gw_field_def *v = gw_map_value(f->message);
            bool vmsg = (v->type == GW_TYPE_MESSAGE || v->type == GW_TYPE_GROUP);
            if (!vmsg || gw_field_is_bindable(v)) {
                json_t *s = oa_obj(g);
                oa_set_str(g, s, "type", "object");
                oa_set(g, s, "additionalProperties", oa_param_schema(g, v));
                query_param(w, f, s, true);
            }
        } else if (f->label == GW_LABEL_REPEATED) {
            if (!msg) {
                json_t *s = oa_obj(g);
                oa_set_str(g, s, "type", "array");
                oa_set(g, s, "items", oa_param_schema(g, f));
                query_param(w, f, s, false);
            }
        } else if (gw_field_is_bindable(f)) {
            query_param(w, f, oa_param_schema(g, f), false);
        } else if (msg && f->message->wkt == GW_WKT_NONE && depth + 1 < GW_FIELD_PATH_MAX) {
            bool seen = false;
            for (size_t j = 0; j <= depth; j++)
                seen = seen || chain[j] == f->message;
            if (!seen) {
                chain[depth + 1] = f->message;
                query_walk_message(w, f->message, depth + 1, chain);
            }
        }
        w->name.len = mark;
        w->name.data[mark] = 0;
    }
}

static void query_params(oa_gen *g, const gw_route *rt, json_t *params, json_t *op)
{
    const gw_method_def *m = rt->method;
    /* body "*" takes every field; client streams bind no query. */
    if (rt->body_kind == GW_BODY_ALL || m->client_streaming)
        return;
    query_walk w = {.g = g, .rt = rt, .params = params};
    gw_buf_init(&w.name, 0);
    const gw_message_def *chain[GW_FIELD_PATH_MAX];
    chain[0] = m->input;
    query_walk_message(&w, m->input, 0, chain);
    gw_buf_free(&w.name);
    if (w.truncated)
        oa_set(g, op, "x-grpcgate-query-truncated", oa_int(g, OA_QUERY_PARAMS_MAX));
}

/* ---------------------------------------------------------------------------
 * Bodies.
 */

/* As src/rest shapes responses: a singular HttpBody field is sent raw. */
static bool is_http_body(const gw_field_def *f)
{
    return f && (f->type == GW_TYPE_MESSAGE) && f->message &&
           f->message->wkt == GW_WKT_HTTP_BODY && f->label != GW_LABEL_REPEATED;
}

static json_t *content(oa_gen *g, const char *media_type, json_t *schema)
{
    json_t *c = oa_obj(g), *mt = oa_obj(g);
    oa_set(g, mt, "schema", schema);
    oa_set(g, c, media_type, mt);
    return c;
}

static json_t *binary_schema(oa_gen *g)
{
    json_t *s = oa_obj(g);
    oa_set_str(g, s, "type", "string");
    oa_set_str(g, s, "format", "binary");
    return s;
}

/* The message minus the top-level fields the path binds (body "*"). */
static json_t *body_all_schema(oa_gen *g, const gw_route *rt)
{
    const gw_route_template *t = rt->tmpl;
    const gw_field_def *skip[GW_ROUTE_VARS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < t->var_count; i++)
        if (t->vars[i].path.depth == 1)
            skip[n++] = t->vars[i].path.fields[0];
    if (n == 0)
        return oa_message_ref(g, rt->method->input);
    return oa_message_schema(g, rt->method->input, skip, n);
}

static void request_body(oa_gen *g, const gw_route *rt, json_t *op)
{
    const gw_method_def *m = rt->method;
    if (rt->body_kind == GW_BODY_NONE)
        return;
    json_t *rb = oa_obj(g);
    /* The REST layer's own test, so that the document and the gateway agree
     * on which bodies are taken raw. */
    bool raw = gw_rest_route_takes_http_body(rt);
    if (raw) {
        oa_set(g, rb, "content", content(g, "*/*", binary_schema(g)));
        oa_set_str(g, rb, "description",
                   "The raw request body; its Content-Type is passed on as "
                   "google.api.HttpBody.content_type.");
    } else if (m->client_streaming) {
        json_t *one = rt->body_kind == GW_BODY_ALL ? oa_message_ref(g, m->input)
                                                   : oa_field_schema(g, rt->body_field);
        json_t *many = oa_obj(g), *alt = oa_arr(g), *s = oa_obj(g);
        oa_set_str(g, many, "type", "array");
        oa_set(g, many, "items", json_deep_copy(one));
        oa_push(g, alt, one);
        oa_push(g, alt, many);
        oa_set(g, s, "oneOf", alt);
        oa_set(g, rb, "content", content(g, "application/json", s));
        oa_set_str(g, rb, "description",
                   "A client stream: the messages as JSON values one after the other "
                   "(newline-delimited), or one JSON array of them. Each is sent as it "
                   "arrives.");
    } else {
        json_t *s = rt->body_kind == GW_BODY_ALL ? body_all_schema(g, rt)
                                                 : oa_field_schema(g, rt->body_field);
        oa_set(g, rb, "content", content(g, "application/json", s));
        if (rt->body_kind == GW_BODY_FIELD) {
            gw_buf d;
            gw_buf_init(&d, 0);
            if (gw_buf_printf(&d, "The field %s of %s.", oa_field_name(g, rt->body_field),
                              m->input->full_name))
                g->oom = true;
            describe(g, rb, &d);
            gw_buf_free(&d);
        }
    }
    oa_set(g, op, "requestBody", rb);
}

static json_t *response(oa_gen *g, const char *description, json_t *content_obj)
{
    json_t *r = oa_obj(g);
    oa_set_str(g, r, "description", description);
    if (content_obj)
        oa_set(g, r, "content", content_obj);
    return r;
}

static void responses(oa_gen *g, const gw_route *rt, json_t *op)
{
    const gw_method_def *m = rt->method;
    json_t *rs = oa_obj(g);
    const gw_field_def *rf = rt->response_field;
    bool raw = rf ? is_http_body(rf) : m->output->wkt == GW_WKT_HTTP_BODY;
    json_t *schema = NULL;
    if (!raw || m->server_streaming)
        schema = rf ? oa_field_schema(g, rf) : oa_message_ref(g, m->output);
    if (m->server_streaming) {
        json_t *line = oa_obj(g), *props = oa_obj(g);
        oa_set_str(g, line, "type", "object");
        oa_set(g, props, "result", schema);
        oa_set(g, props, "error", oa_status_ref(g));
        oa_set(g, line, "properties", props);
        json_t *c = content(g, "application/x-ndjson", line);
        json_t *sse = oa_obj(g), *ev = oa_obj(g);
        oa_set_str(g, ev, "type", "string");
        oa_set_str(g, ev, "description",
                   "Server-sent events: \"data: <message JSON>\" per message; a failure is "
                   "\"event: error\" with a google.rpc.Status as its data.");
        oa_set(g, sse, "schema", ev);
        oa_set(g, c, "text/event-stream", sse);
        oa_set(g, rs, "200",
               response(g,
                        "A server stream, one frame per message as it arrives. By default "
                        "one JSON object per line, {\"result\": message}, with a last line "
                        "{\"error\": google.rpc.Status} for a failure after the first "
                        "message (sent with Content-Type application/json, as grpc-gateway "
                        "does); with Accept: text/event-stream, server-sent events.",
                        c));
    } else if (raw) {
        oa_set(g, rs, "200",
               response(g, "The raw HttpBody data, with its content_type as Content-Type.",
                        content(g, "*/*", binary_schema(g))));
    } else {
        oa_set(g, rs, "200", response(g, "OK", content(g, "application/json", schema)));
    }
    oa_set(g, rs, "default", response(g, "An error. The HTTP status follows the gRPC code.",
                                      content(g, "application/json", oa_status_ref(g))));
    oa_set(g, op, "responses", rs);
}

/* ---------------------------------------------------------------------------
 * Operations.
 */

static void unlisted(oa_gen *g, const gw_route *rt, const char *reason)
{
    json_t *u = oa_obj(g);
    oa_set_str(g, u, "method", rt->http_method);
    oa_set_str(g, u, "path", rt->tmpl->text);
    oa_set_str(g, u, "rpc", rt->method->full_name);
    oa_set_str(g, u, "reason", reason);
    oa_push(g, g->unlisted, u);
}

/* Service_Method, then _2, _3... for the additional bindings; a clash (two
 * packages with the same service name) gets a further suffix. */
static json_t *operation_id(oa_gen *g, const gw_method_def *m, size_t rule_index)
{
    gw_buf id;
    gw_buf_init(&id, 0);
    int rc = gw_buf_printf(&id, "%s_%s", m->service->name, m->name);
    if (!rc && rule_index)
        rc = gw_buf_printf(&id, "_%zu", rule_index + 1);
    size_t base = id.len;
    for (size_t k = 2; !rc && json_object_get(g->op_ids, (const char *)id.data); k++) {
        id.len = base;
        rc = gw_buf_printf(&id, "_%zu", k);
    }
    json_t *v = NULL;
    if (rc) {
        g->oom = true;
    } else {
        oa_set(g, g->op_ids, (const char *)id.data, oa_bool(g, true));
        v = oa_str(g, (const char *)id.data);
    }
    gw_buf_free(&id);
    return v;
}

static void tag(oa_gen *g, const gw_service_def *s, json_t *op)
{
    json_t *tags = oa_arr(g);
    oa_push(g, tags, oa_str(g, s->full_name));
    oa_set(g, op, "tags", tags);
    if (!g->tag_names || json_object_get(g->tag_names, s->full_name))
        return;
    oa_set(g, g->tag_names, s->full_name, oa_bool(g, true));
    json_t *t = oa_obj(g);
    oa_set_str(g, t, "name", s->full_name);
    const char *c = oa_comment(g, s->full_name);
    if (c)
        oa_set_str(g, t, "description", c);
    oa_push(g, g->tags, t);
}

/* summary: the comment's first paragraph on one line; description: all. */
static void comment_texts(oa_gen *g, const char *c, json_t *op)
{
    size_t n = strlen(c);
    const char *end = strstr(c, "\n\n");
    size_t first = end ? (size_t)(end - c) : n;
    char *summary = malloc(first + 1);
    if (!summary) {
        g->oom = true;
        return;
    }
    for (size_t i = 0; i < first; i++)
        summary[i] = c[i] == '\n' ? ' ' : c[i];
    summary[first] = 0;
    oa_set_str(g, op, "summary", summary);
    free(summary);
    if (first < n || strchr(c, '\n'))
        oa_set_str(g, op, "description", c);
}

static const char *streaming_kind(const gw_method_def *m)
{
    if (m->client_streaming && m->server_streaming)
        return "bidi";
    if (m->client_streaming)
        return "client";
    return m->server_streaming ? "server" : NULL;
}

/* key with the names between braces left out ("/v1/users/{}"). */
static int path_shape(const char *key, gw_buf *shape)
{
    int rc = 0;
    for (const char *p = key; *p && !rc; p++) {
        rc = gw_buf_append_byte(shape, (uint8_t)*p);
        if (*p == '{')
            while (p[1] && p[1] != '}')
                p++;
    }
    return rc ? rc : gw_buf_append_byte(shape, 0);
}

/*
 * OpenAPI 3.0 (4.8.8: "templated paths with the same hierarchy but
 * different templated names MUST NOT exist") and the validators that check
 * it (redocly's no-identical-paths) want one path for /v1/users/{id} and
 * /v1/users/{user.id}: a path of the same shape as one already written
 * takes that one's names, and each renamed parameter says which field it
 * sets (description, x-grpcgate-field). The gateway matches the request
 * path, never the names, so the URL a client builds is the same. key is
 * rewritten to the first path; params holds only path parameters, in path
 * order.
 */
static void share_path(oa_gen *g, gw_buf *key, json_t *params)
{
    gw_buf shape;
    gw_buf_init(&shape, 0);
    if (path_shape((const char *)key->data, &shape) != 0) {
        g->oom = true;
        goto out;
    }
    json_t *first = json_object_get(g->shapes, (const char *)shape.data);
    if (!first) {
        oa_set(g, g->shapes, (const char *)shape.data, oa_str(g, (const char *)key->data));
        goto out;
    }
    const char *to = json_string_value(first);
    if (strcmp(to, (const char *)key->data) == 0)
        goto out;
    const char *p = to;
    for (size_t i = 0; i < json_array_size(params); i++) {
        json_t *prm = json_array_get(params, i);
        p = strchr(p, '{');
        const char *end = p ? strchr(p, '}') : NULL;
        if (!end)
            break;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(end - p - 1), p + 1);
        p = end;
        const char *old = json_string_value(json_object_get(prm, "name"));
        if (!old || strcmp(old, name) == 0)
            continue;
        char *field = strdup(old);
        if (!field) {
            g->oom = true;
            goto out;
        }
        if (strncmp(field, "_segment", 8) != 0) {
            gw_buf d;
            gw_buf_init(&d, 0);
            const char *was = json_string_value(json_object_get(prm, "description"));
            int rc = gw_buf_printf(&d, "Sets the request field `%s` (the path is shared with "
                                   "other operations, which name this segment `%s`).%s%s",
                                   field, name, was ? "\n\n" : "", was ? was : "");
            if (rc)
                g->oom = true;
            else
                oa_set_str(g, prm, "description", (const char *)d.data);
            gw_buf_free(&d);
            oa_set_str(g, prm, "x-grpcgate-field", field);
        }
        free(field);
        oa_set_str(g, prm, "name", name);
    }
    key->len = 0;
    if (gw_buf_append_str(key, to) != 0 || gw_buf_append_byte(key, 0) != 0)
        g->oom = true;
    else
        key->len--;
out:
    gw_buf_free(&shape);
}

static void add_operation(oa_gen *g, const gw_route *rt, size_t rule_index)
{
    const gw_method_def *m = rt->method;
    const char *method = oas_method(rt->http_method);
    if (!method) {
        unlisted(g, rt, "OpenAPI 3 has no such HTTP method");
        return;
    }
    json_t *params = oa_arr(g);
    gw_buf key;
    gw_buf_init(&key, 0);
    path_key(g, rt->tmpl, &key, params);
    if (!g->oom && key.len)
        share_path(g, &key, params);
    if (g->oom || !key.len) {
        json_decref(params);
        gw_buf_free(&key);
        return;
    }
    json_t *item = json_object_get(g->paths, (const char *)key.data);
    if (item && json_object_get(item, method)) {
        /* Two templates that differ only inside a multi-segment variable
         * (name=shelves/STAR and name=rooms/STAR) give one OpenAPI path. */
        unlisted(g, rt, "another route of this HTTP method has the same OpenAPI path");
        json_decref(params);
        gw_buf_free(&key);
        return;
    }
    if (!item) {
        item = oa_obj(g);
        oa_set(g, g->paths, (const char *)key.data, item);
        if (g->oom) {
            json_decref(params);
            gw_buf_free(&key);
            return;
        }
    }
    gw_buf_free(&key);

    json_t *op = oa_obj(g);
    tag(g, m->service, op);
    const char *c = oa_comment(g, m->full_name);
    if (c)
        comment_texts(g, c, op);
    oa_set(g, op, "operationId", operation_id(g, m, rule_index));
    query_params(g, rt, params, op);
    if (json_array_size(params))
        oa_set(g, op, "parameters", params);
    else
        json_decref(params);
    request_body(g, rt, op);
    responses(g, rt, op);
    oa_set_str(g, op, "x-grpcgate-rpc", m->path);
    oa_set_str(g, op, "x-grpcgate-template", rt->tmpl->text);
    if (streaming_kind(m))
        oa_set_str(g, op, "x-grpcgate-streaming", streaming_kind(m));
    oa_set(g, item, method, op);
}

static int add_method(oa_gen *g, const gw_method_def *m)
{
    const gw_route *rt;
    for (size_t i = 0; i < m->http_rule_count; i++) {
        int rc = served_route(g, m, &m->http_rules[i], &rt);
        if (rc)
            return rc;
        if (rt)
            add_operation(g, rt, i);
    }
    if (m->http_rule_count == 0 && g->o->auto_map_unbound) {
        int rc = served_route(g, m, NULL, &rt);
        if (rc)
            return rc;
        if (rt)
            add_operation(g, rt, 0);
    }
    return g->oom ? GW_ENOMEM : 0;
}

/* ---------------------------------------------------------------------------
 * The document.
 */

typedef struct dump_ctx {
    gw_buf *out;
    int rc;
} dump_ctx;

/* The first failure sticks: jansson does not stop at every -1 (a key whose
 * write failed was seen followed by the rest of the document). */
static int dump_cb(const char *buffer, size_t size, void *data)
{
    dump_ctx *d = data;
    if (!d->rc)
        d->rc = gw_buf_append(d->out, buffer, size);
    return d->rc ? -1 : 0;
}

static void doc_skeleton(oa_gen *g)
{
    const gw_openapi_options *o = g->o;
    g->doc = oa_obj(g);
    oa_set_str(g, g->doc, "openapi", "3.0.3");
    json_t *info = oa_obj(g);
    oa_set_str(g, info, "title", o->title ? o->title : "grpcgate");
    oa_set_str(g, info, "version", o->version ? o->version : "0.0.0");
    oa_set_str(g, info, "description",
               "The REST routes of grpcgate: gRPC methods transcoded to JSON (ProtoJSON "
               "mapping: 64-bit integers as strings, enums by name, bytes in base64, "
               "well-known types in their JSON forms).");
    oa_set(g, g->doc, "info", info);
    if (o->server_url) {
        json_t *servers = oa_arr(g), *s = oa_obj(g);
        oa_set_str(g, s, "url", o->server_url);
        oa_push(g, servers, s);
        oa_set(g, g->doc, "servers", servers);
    }
    g->tags = oa_arr(g);
    g->paths = oa_obj(g);
    g->schemas = oa_obj(g);
    g->unlisted = oa_arr(g);
    /* The doc holds one reference of each; ours stay borrowed. */
    oa_set(g, g->doc, "tags", json_incref(g->tags));
    oa_set(g, g->doc, "paths", json_incref(g->paths));
    json_t *components = oa_obj(g);
    oa_set(g, components, "schemas", json_incref(g->schemas));
    oa_set(g, g->doc, "components", components);
    g->tag_names = oa_obj(g);
    g->op_ids = oa_obj(g);
    g->comments = oa_obj(g);
    g->shapes = oa_obj(g);
}

int gw_openapi_generate(const gw_registry *r, const gw_openapi_options *o, gw_buf *out,
                        gw_error *e)
{
    gw_openapi_options defaults;
    if (!o) {
        gw_openapi_options_init(&defaults);
        o = &defaults;
    }
    oa_gen g = {.r = r, .o = o};
    size_t start = out->len;
    int rc = 0;
    gw_router_options ro;
    gw_router_options_init(&ro);
    ro.auto_map_unbound = o->auto_map_unbound;
    g.router = gw_router_new(&ro);
    if (!g.router) {
        rc = GW_ENOMEM;
        goto out_oom;
    }
    rc = gw_router_add_registry(g.router, r, e);
    if (rc)
        goto out;
    doc_skeleton(&g);
    rc = g.oom ? GW_ENOMEM : oa_load_comments(&g);
    if (rc)
        goto out_oom;
    for (size_t i = 0; i < gw_registry_service_count(r) && !rc; i++) {
        const gw_service_def *s = gw_registry_service_at(r, i);
        for (size_t j = 0; j < s->method_count && !rc; j++)
            rc = add_method(&g, &s->methods[j]);
    }
    if (rc)
        goto out_oom;
    oa_flush_schemas(&g);
    if (json_array_size(g.unlisted))
        oa_set(&g, g.doc, "x-grpcgate-unlisted", json_incref(g.unlisted));
    if (g.oom) {
        rc = GW_ENOMEM;
        goto out_oom;
    }
    dump_ctx d = {out, 0};
    size_t flags = o->compact ? JSON_COMPACT : JSON_INDENT(2);
    if (json_dump_callback(g.doc, dump_cb, &d, flags) != 0 || d.rc)
        rc = d.rc ? d.rc : GW_ENOMEM;
    if (!rc)
        rc = gw_buf_append_byte(out, '\n');
    if (rc == GW_ELIMIT)
        gw_error_set(e, rc, "the document is larger than %zu bytes", out->max);
out_oom:
    if (rc == GW_ENOMEM)
        gw_error_set(e, rc, "out of memory");
out:
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = 0;
    }
    json_decref(g.doc);
    json_decref(g.tags);
    json_decref(g.paths);
    json_decref(g.schemas);
    json_decref(g.unlisted);
    json_decref(g.tag_names);
    json_decref(g.op_ids);
    json_decref(g.comments);
    json_decref(g.shapes);
    free(g.pending);
    gw_router_del(g.router);
    return rc;
}
