/*
 * src/route: template parsing, binding, trie matching and precedence,
 * percent-decoding of variables, 404 vs 405.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "route/route.h"
#include "fixture.h"

/* A template rendered back in a compact form that the tables compare:
 * segments joined by '/', then " {path@first+count}" per variable ('m' when
 * it keeps %2F), then " :verb". */
static void render(const gw_route_template *t, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < t->seg_count; i++) {
        const gw_tmpl_seg *s = &t->segs[i];
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? "/" : "",
                              s->kind == GW_TMPL_LITERAL ? s->text
                              : s->kind == GW_TMPL_STAR  ? "*"
                                                         : "**");
    }
    for (size_t i = 0; i < t->var_count; i++)
        n += (size_t)snprintf(out + n, cap - n, " {%s@%zu+%zu%s}", t->vars[i].field_path,
                              t->vars[i].first, t->vars[i].count, t->vars[i].multi ? "m" : "");
    if (t->verb)
        snprintf(out + n, cap - n, " :%s", t->verb);
}

typedef struct parse_case {
    const char *text;
    int rc;
    const char *want;   /* render() output, or a substring of the error */
} parse_case;

static const parse_case parse_cases[] = {
    {"/v1/shelves", 0, "v1/shelves"},
    {"/v1/shelves/{name}", 0, "v1/shelves/* {name@2+1}"},
    {"/v1/{name=shelves/*}/books", 0, "v1/shelves/*/books {name@1+2m}"},
    {"/v1/{name=shelves/*/books/*}", 0, "v1/shelves/*/books/* {name@1+4m}"},
    {"/v1/{name=*}", 0, "v1/* {name@1+1}"},
    {"/v1/{name=**}", 0, "v1/** {name@1+1m}"},
    {"/v1/{name=files/**}:download", 0, "v1/files/** {name@1+2m} :download"},
    {"/v1/*/x/**", 0, "v1/*/x/**"},
    {"/v1/users:batchCreate", 0, "v1/users :batchCreate"},
    {"/v1/users/{id}:undelete", 0, "v1/users/* {id@2+1} :undelete"},
    {"/v1/{a.b.c}/{d}", 0, "v1/*/* {a.b.c@1+1} {d@2+1}"},
    {"/pkg.Service/Method", 0, "pkg.Service/Method"},
    {"/v1/a%20b/~x-y_z.w", 0, "v1/a%20b/~x-y_z.w"},
    {"/**", 0, "**"},
    /* invalid */
    {"", GW_EPARSE, "starts with '/'"},
    {"v1/shelves", GW_EPARSE, "starts with '/'"},
    {"/", GW_EPARSE, "empty segment at the end"},
    {"/v1//x", GW_EPARSE, "offset 4: empty segment"},
    {"/v1/", GW_EPARSE, "empty segment at the end"},
    {"/v1/**/x", GW_EPARSE, "'**' must be the last segment"},
    {"/v1/{a=**}/x", GW_EPARSE, "'**' must be the last segment"},
    {"/v1/***", GW_EPARSE, "'***' is not a segment"},
    {"/v1/{a={b}}", GW_EPARSE, "variables do not nest"},
    {"/v1/{}", GW_EPARSE, "expected a field name"},
    {"/v1/{1a}", GW_EPARSE, "expected a field name"},
    {"/v1/{a.}", GW_EPARSE, "expected a field name"},
    {"/v1/{a", GW_EPARSE, "expected '}'"},
    {"/v1/{a=x", GW_EPARSE, "expected '}'"},
    {"/v1/x:", GW_EPARSE, "empty verb"},
    {"/v1/x:a/b", GW_EPARSE, "unexpected character after the verb"},
    {"/v1/x?y", GW_EPARSE, "offset 5: unexpected character"},
    {"/v1/%4", GW_EPARSE, "malformed %-escape"},
    {"/v1/%zz", GW_EPARSE, "malformed %-escape"},
    {"/v1/a b", GW_EPARSE, "unexpected character"},
};

static void test_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(parse_cases); i++) {
        const parse_case *c = &parse_cases[i];
        gw_route_template *t = NULL;
        gw_error e;
        gw_error_clear(&e);
        int rc = gw_route_template_parse(c->text, &t, &e);
        char got[512];
        if (rc == 0)
            render(t, got, sizeof(got));
        else
            snprintf(got, sizeof(got), "%s", e.msg);
        if (rc != c->rc || (rc == 0 ? strcmp(got, c->want) != 0 : !strstr(got, c->want)))
            fail_msg("template '%s': rc %d, got '%s'; want rc %d, '%s'", c->text, rc, got,
                     c->rc, c->want);
        if (rc)
            assert_null(t);
        gw_route_template_del(t);
    }
}

static void test_parse_limits(void **state)
{
    (void)state;
    char buf[GW_ROUTE_TEMPLATE_MAX + 16];
    gw_route_template *t;
    gw_error e;
    /* 65 segments */
    size_t n = 0;
    for (int i = 0; i < GW_ROUTE_SEGMENTS_MAX + 1; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "/a");
    assert_int_equal(gw_route_template_parse(buf, &t, &e), GW_ELIMIT);
    /* 17 variables */
    n = 0;
    for (int i = 0; i < GW_ROUTE_VARS_MAX + 1; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "/{v%d}", i);
    assert_int_equal(gw_route_template_parse(buf, &t, &e), GW_ELIMIT);
    /* too long */
    memset(buf, 'a', sizeof(buf) - 1);
    buf[0] = '/';
    buf[sizeof(buf) - 1] = 0;
    assert_int_equal(gw_route_template_parse(buf, &t, &e), GW_ELIMIT);
}

typedef struct bind_case {
    const char *text;
    int rc;
    const char *want;   /* resolved proto path of each var ("address.street") or error */
} bind_case;

static const bind_case bind_cases[] = {
    {"/v1/{name}", 0, "name"},
    {"/v1/{shelfId}", 0, "shelf_id"},
    {"/v1/{address.street}/{address.cityName}", 0, "address.street address.city_name"},
    {"/v1/{created_at}", 0, "created_at"},
    {"/v1/{name}/{parent=p/**}", 0, "name parent"},
    {"/v1/{nope}", GW_ENOTFOUND, "t.Shelf has no field 'nope'"},
    {"/v1/{address.zip}", GW_ENOTFOUND, "t.Address has no field 'zip'"},
    {"/v1/{tags}", GW_EINVAL, "field tags is repeated"},
    {"/v1/{address}", GW_EINVAL, "field address is t.Address"},
    {"/v1/{labels}", GW_EINVAL, "field labels is repeated"},
    {"/v1/{extra}", GW_EINVAL, "field extra is google.protobuf.Struct"},
    {"/v1/{name.x}", GW_EINVAL, "'name' is not a message field"},
    {"/v1/{history.street}", GW_EINVAL, "'history' is not a message field"},
    {"/v1/{created_at.seconds}", GW_EINVAL, "'created_at' is not a message field"},
    {"/v1/{name}/{name}", GW_EINVAL, "{name} is bound twice"},
};

static void test_bind(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(bind_cases); i++) {
        const bind_case *c = &bind_cases[i];
        gw_route_template *t = NULL;
        gw_error e;
        gw_error_clear(&e);
        assert_int_equal(gw_route_template_parse(c->text, &t, &e), 0);
        int rc = gw_route_template_bind(t, &fx_shelf, &e);
        char got[512] = "";
        if (rc == 0) {
            size_t n = 0;
            for (size_t v = 0; v < t->var_count; v++) {
                const gw_field_path *p = &t->vars[v].path;
                for (size_t k = 0; k < p->depth; k++)
                    n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s",
                                          k ? "." : (v ? " " : ""), p->fields[k]->name);
            }
        } else {
            snprintf(got, sizeof(got), "%s", e.msg);
        }
        if (rc != c->rc || (rc == 0 ? strcmp(got, c->want) != 0 : !strstr(got, c->want)))
            fail_msg("bind '%s': rc %d, got '%s'; want rc %d, '%s'", c->text, rc, got, c->rc,
                     c->want);
        gw_route_template_del(t);
    }
}

/* ---------------------------------------------------------------------------
 * Router. Every method takes t.Shelf; the rule table reads like an API.
 */
#define RULE(v, p, b) { .verb = v, .path = p, .body = b, .response_body = "" }

static const gw_http_rule rules_get[] = {RULE("GET", "/v1/shelves/{name}", "")};
static const gw_http_rule rules_list[] = {
    RULE("GET", "/v1/shelves", ""),
    {.verb = "GET", .path = "/v1/{parent=stores/*}/shelves", .body = "", .response_body = "",
     .additional = true},
};
static const gw_http_rule rules_create[] = {RULE("POST", "/v1/shelves", "*")};
static const gw_http_rule rules_special[] = {RULE("GET", "/v1/shelves/special", "")};
static const gw_http_rule rules_delete[] = {RULE("DELETE", "/v1/shelves/{name}", "")};
static const gw_http_rule rules_patch[] = {RULE("PATCH", "/v1/shelves/{address.street}", "address")};
static const gw_http_rule rules_archive[] = {RULE("POST", "/v1/shelves/{name}:archive", "*")};
static const gw_http_rule rules_batch[] = {RULE("POST", "/v1/shelves:batch", "*")};
static const gw_http_rule rules_files[] = {RULE("GET", "/v1/files/{name=**}", "")};
static const gw_http_rule rules_filesv[] = {RULE("GET", "/v1/files/{name=**}:meta", "")};
static const gw_http_rule rules_book[] = {RULE("GET", "/v1/{name=shelves/*/books/*}", "")};
static const gw_http_rule rules_wild[] = {RULE("GET", "/v1/*/books/{parent}", "")};
static const gw_http_rule rules_custom[] = {RULE("HEAD", "/v1/ping", "")};

#define METHOD(n, r)                                                                    \
    { .name = n, .full_name = "t.ShelfService." n, .path = "/t.ShelfService/" n,           \
      .input = &fx_shelf, .output = &fx_shelf, .http_rule_count = GW_ARRAY_LEN(r),         \
      .http_rules = r }

static const gw_method_def methods[] = {
    METHOD("Get", rules_get),         METHOD("List", rules_list),
    METHOD("Create", rules_create),   METHOD("Special", rules_special),
    METHOD("Delete", rules_delete),   METHOD("Patch", rules_patch),
    METHOD("Archive", rules_archive), METHOD("Batch", rules_batch),
    METHOD("Files", rules_files),     METHOD("FilesMeta", rules_filesv),
    METHOD("Book", rules_book),       METHOD("Wild", rules_wild),
    METHOD("Custom", rules_custom),
    {.name = "Unbound", .full_name = "t.ShelfService.Unbound",
     .path = "/t.ShelfService/Unbound", .input = &fx_shelf, .output = &fx_shelf},
};

static gw_router *build(bool auto_map)
{
    gw_router_options o;
    gw_router_options_init(&o);
    o.auto_map_unbound = auto_map;
    gw_router *r = gw_router_new(&o);
    assert_non_null(r);
    gw_error e;
    for (size_t i = 0; i < GW_ARRAY_LEN(methods); i++)
        if (gw_router_add_method(r, &methods[i], &e))
            fail_msg("add %s: %s", methods[i].name, e.msg);
    return r;
}

typedef struct match_case {
    const char *method;
    const char *path;
    gw_route_result result;
    const char *want;   /* MATCHED: "Name field=value;..."  405: the Allow header */
} match_case;

static const match_case match_cases[] = {
    {"GET", "/v1/shelves/abc", GW_ROUTE_MATCHED, "Get name=abc"},
    {"GET", "/v1/shelves", GW_ROUTE_MATCHED, "List"},
    {"POST", "/v1/shelves", GW_ROUTE_MATCHED, "Create"},
    {"DELETE", "/v1/shelves/abc", GW_ROUTE_MATCHED, "Delete name=abc"},
    {"PATCH", "/v1/shelves/main%20st", GW_ROUTE_MATCHED, "Patch address.street=main st"},
    /* additional binding */
    {"GET", "/v1/stores/s1/shelves", GW_ROUTE_MATCHED, "List parent=stores/s1"},
    /* literal beats wildcard */
    {"GET", "/v1/shelves/special", GW_ROUTE_MATCHED, "Special"},
    {"GET", "/v1/shelves/specia", GW_ROUTE_MATCHED, "Get name=specia"},
    /* backtracking: the literal 'shelves' subtree has no /x/books/y */
    {"GET", "/v1/shelves/books/b1", GW_ROUTE_MATCHED, "Wild parent=b1"},
    {"GET", "/v1/shelves/s1/books/b2", GW_ROUTE_MATCHED, "Book name=shelves/s1/books/b2"},
    /* custom verbs beat plain segments */
    {"POST", "/v1/shelves/abc:archive", GW_ROUTE_MATCHED, "Archive name=abc"},
    {"POST", "/v1/shelves:batch", GW_ROUTE_MATCHED, "Batch"},
    {"GET", "/v1/shelves/abc:other", GW_ROUTE_MATCHED, "Get name=abc:other"},
    {"GET", "/v1/shelves/abc:archive", GW_ROUTE_METHOD_NOT_ALLOWED, "POST"},
    /* '**' */
    {"GET", "/v1/files/a/b/c.txt", GW_ROUTE_MATCHED, "Files name=a/b/c.txt"},
    {"GET", "/v1/files/x", GW_ROUTE_MATCHED, "Files name=x"},
    {"GET", "/v1/files", GW_ROUTE_MATCHED, "Files name="},
    {"GET", "/v1/files/a/b:meta", GW_ROUTE_MATCHED, "FilesMeta name=a/b"},
    /* percent-decoding: single-segment fully, multi-segment keeps %2F */
    {"GET", "/v1/shelves/a%2Fb%20c", GW_ROUTE_MATCHED, "Get name=a/b c"},
    {"GET", "/v1/shelves/caf%C3%A9", GW_ROUTE_MATCHED, "Get name=caf\xc3\xa9"},
    {"GET", "/v1/shelves/a+b", GW_ROUTE_MATCHED, "Get name=a+b"},
    {"GET", "/v1/files/a%2Fb/c%20d", GW_ROUTE_MATCHED, "Files name=a%2Fb/c d"},
    {"GET", "/v1/files/a%2fb", GW_ROUTE_MATCHED, "Files name=a%2fb"},
    {"GET", "/v1/shelves/%3Aarchive", GW_ROUTE_MATCHED, "Get name=:archive"},
    /* auto-mapped unbound method */
    {"POST", "/t.ShelfService/Unbound", GW_ROUTE_MATCHED, "Unbound"},
    {"GET", "/t.ShelfService/Unbound", GW_ROUTE_METHOD_NOT_ALLOWED, "POST"},
    {"POST", "/t.ShelfService/Get", GW_ROUTE_NOT_FOUND, NULL},
    /* custom HTTP method kind */
    {"HEAD", "/v1/ping", GW_ROUTE_MATCHED, "Custom"},
    {"GET", "/v1/ping", GW_ROUTE_METHOD_NOT_ALLOWED, "HEAD"},
    /* HEAD wherever GET (RFC 9110 9.3.2): the GET route answers it */
    {"HEAD", "/v1/shelves/abc", GW_ROUTE_MATCHED, "Get name=abc"},
    {"HEAD", "/v1/shelves", GW_ROUTE_MATCHED, "List"},
    {"HEAD", "/v1/shelves/special", GW_ROUTE_MATCHED, "Special"},
    {"HEAD", "/v1/files/a/b:meta", GW_ROUTE_MATCHED, "FilesMeta name=a/b"},
    {"HEAD", "/v1/shelves/abc:archive", GW_ROUTE_METHOD_NOT_ALLOWED, "POST"},
    {"HEAD", "/t.ShelfService/Unbound", GW_ROUTE_METHOD_NOT_ALLOWED, "POST"},
    {"head", "/v1/shelves", GW_ROUTE_METHOD_NOT_ALLOWED, "GET, HEAD, POST"},
    /* 405 with the Allow list, sorted; HEAD wherever GET is */
    {"PUT", "/v1/shelves", GW_ROUTE_METHOD_NOT_ALLOWED, "GET, HEAD, POST"},
    {"PUT", "/v1/shelves/x", GW_ROUTE_METHOD_NOT_ALLOWED, "DELETE, GET, HEAD, PATCH"},
    {"OPTIONS", "/v1/shelves/x", GW_ROUTE_METHOD_NOT_ALLOWED, "DELETE, GET, HEAD, PATCH"},
    {"get", "/v1/shelves", GW_ROUTE_METHOD_NOT_ALLOWED, "GET, HEAD, POST"},
    /* 404 */
    {"GET", "/v2/shelves", GW_ROUTE_NOT_FOUND, NULL},
    {"GET", "/v1/shelves/a/b", GW_ROUTE_NOT_FOUND, NULL},
    {"GET", "/V1/shelves", GW_ROUTE_NOT_FOUND, NULL},
    {"GET", "/v1/shelves/", GW_ROUTE_NOT_FOUND, NULL},
    {"GET", "/v1//shelves", GW_ROUTE_NOT_FOUND, NULL},
    {"GET", "/", GW_ROUTE_NOT_FOUND, NULL},
    {"GET", "", GW_ROUTE_NOT_FOUND, NULL},
    {"GET", "v1/shelves", GW_ROUTE_NOT_FOUND, NULL},
    {"POST", "/v1/shelves:nothing", GW_ROUTE_NOT_FOUND, NULL},
};

static void describe(const gw_route_match *m, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    if (m->result == GW_ROUTE_MATCHED) {
        n += (size_t)snprintf(out, cap, "%s", m->route->method->name);
        for (size_t i = 0; i < m->binding_count; i++) {
            const gw_route_binding *b = &m->bindings[i];
            n += (size_t)snprintf(out + n, cap - n, "%s", i ? ";" : " ");
            for (size_t k = 0; k < b->var->path.depth; k++)
                n += (size_t)snprintf(out + n, cap - n, "%s%s", k ? "." : "",
                                      b->var->path.fields[k]->name);
            n += (size_t)snprintf(out + n, cap - n, "=%s", b->value);
            assert_int_equal(strlen(b->value), b->len);
        }
    } else if (m->result == GW_ROUTE_METHOD_NOT_ALLOWED) {
        gw_buf b;
        gw_buf_init(&b, 256);
        assert_int_equal(gw_route_allow_header(m, &b), 0);
        snprintf(out, cap, "%s", b.len ? (char *)b.data : "");
        gw_buf_free(&b);
    }
}

static void test_match(void **state)
{
    (void)state;
    gw_router *r = build(true);
    for (size_t i = 0; i < GW_ARRAY_LEN(match_cases); i++) {
        const match_case *c = &match_cases[i];
        gw_arena a;
        gw_arena_init(&a, 0, 0);
        gw_route_match m;
        gw_error e;
        int rc = gw_router_match(r, c->method, c->path, strlen(c->path), &a, &m, &e);
        char got[512];
        describe(&m, got, sizeof(got));
        if (rc != 0 || m.result != c->result || (c->want && strcmp(got, c->want) != 0))
            fail_msg("%s %s: rc %d result %d '%s'; want result %d '%s'", c->method, c->path,
                     rc, m.result, got, c->result, c->want ? c->want : "");
        gw_arena_free(&a);
    }
    gw_router_del(r);
}

static void test_match_route_fields(void **state)
{
    (void)state;
    gw_router *r = build(true);
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    gw_route_match m;
    gw_error e;
    const char *p = "/v1/shelves/main";
    assert_int_equal(gw_router_match(r, "PATCH", p, strlen(p), &a, &m, &e), 0);
    assert_int_equal(m.route->body_kind, GW_BODY_FIELD);
    assert_string_equal(m.route->body_field->name, "address");
    assert_false(m.route->auto_mapped);
    p = "/t.ShelfService/Unbound";
    assert_int_equal(gw_router_match(r, "POST", p, strlen(p), &a, &m, &e), 0);
    assert_int_equal(m.route->body_kind, GW_BODY_ALL);
    assert_true(m.route->auto_mapped);
    assert_null(m.route->rule);
    p = "/v1/stores/s/shelves";
    assert_int_equal(gw_router_match(r, "GET", p, strlen(p), &a, &m, &e), 0);
    assert_true(m.route->rule->additional);
    /* 13 methods, List has two rules, plus the auto-mapped one */
    assert_int_equal(gw_router_route_count(r), 15);
    gw_arena_free(&a);
    gw_router_del(r);

    r = build(false);
    p = "/t.ShelfService/Unbound";
    assert_int_equal(gw_router_match(r, "POST", p, strlen(p), &a, &m, &e), 0);
    assert_int_equal(m.result, GW_ROUTE_NOT_FOUND);
    gw_router_del(r);
}

static void test_match_bad_escape(void **state)
{
    (void)state;
    gw_router *r = build(true);
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    gw_route_match m;
    gw_error e;
    const char *p = "/v1/shelves/a%zz";
    assert_int_equal(gw_router_match(r, "GET", p, strlen(p), &a, &m, &e), GW_EPARSE);
    assert_non_null(strstr(e.msg, "path variable name: malformed %-escape in 'a%zz'"));
    p = "/v1/files/a/%4";
    assert_int_equal(gw_router_match(r, "GET", p, strlen(p), &a, &m, &e), GW_EPARSE);
    gw_arena_free(&a);
    gw_router_del(r);
}

typedef struct add_error_case {
    gw_http_rule rule;
    int rc;
    const char *want;
} add_error_case;

static const add_error_case add_error_cases[] = {
    {RULE("GET", "/v1/{x", ""), GW_EPARSE, "t.ShelfService.Bad: GET /v1/{x: template '/v1/{x'"},
    {RULE("GET", "/v1/{tags}", ""), GW_EINVAL,
     "t.ShelfService.Bad: GET /v1/{tags}: variable {tags}: field tags is repeated"},
    {RULE("POST", "/v1/x", "nope"), GW_ENOTFOUND,
     "t.ShelfService.Bad: POST /v1/x: body: t.Shelf has no field 'nope'"},
    {{.verb = "GET", .path = "/v1/x", .body = "", .response_body = "nope"}, GW_ENOTFOUND,
     "response_body: t.Shelf has no field 'nope'"},
    /* same shape as Get's "/v1/shelves/{name}" */
    {RULE("GET", "/v1/shelves/{parent}", ""), GW_EINVAL,
     "t.ShelfService.Bad: GET /v1/shelves/{parent}: GET /v1/shelves/{parent} conflicts with "
     "GET /v1/shelves/{name} of t.ShelfService.Get"},
};

static void test_add_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < GW_ARRAY_LEN(add_error_cases); i++) {
        const add_error_case *c = &add_error_cases[i];
        gw_router *r = build(true);
        gw_method_def bad = {.name = "Bad", .full_name = "t.ShelfService.Bad",
                             .path = "/t.ShelfService/Bad", .input = &fx_shelf,
                             .output = &fx_shelf, .http_rule_count = 1, .http_rules = &c->rule};
        gw_error e;
        gw_error_clear(&e);
        size_t before = gw_router_route_count(r);
        int rc = gw_router_add_method(r, &bad, &e);
        if (rc != c->rc || !strstr(e.msg, c->want))
            fail_msg("rule %s %s: rc %d '%s'; want %d '%s'", c->rule.verb, c->rule.path, rc,
                     e.msg, c->rc, c->want);
        assert_int_equal(gw_router_route_count(r), before);
        gw_router_del(r);
    }
}

/* Many routes: the trie answers the same as with few (and quickly enough
 * that this does not time out even under sanitizers). */
static void test_many_routes(void **state)
{
    (void)state;
    enum { N = 2000 };
    static gw_http_rule rules[N];
    static char paths[N][48];
    static gw_method_def ms[N];
    static char names[N][48];
    gw_router *r = gw_router_new(NULL);
    gw_error e;
    for (int i = 0; i < N; i++) {
        snprintf(paths[i], sizeof(paths[i]), "/v1/res%d/{name}/sub%d", i, i % 7);
        snprintf(names[i], sizeof(names[i]), "t.S.M%d", i);
        rules[i] = (gw_http_rule){.verb = "GET", .path = paths[i], .body = "",
                                  .response_body = ""};
        ms[i] = (gw_method_def){.name = names[i], .full_name = names[i], .path = names[i],
                                .input = &fx_shelf, .output = &fx_shelf,
                                .http_rule_count = 1, .http_rules = &rules[i]};
        assert_int_equal(gw_router_add_method(r, &ms[i], &e), 0);
    }
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    for (int i = 0; i < N; i += 97) {
        char p[64];
        snprintf(p, sizeof(p), "/v1/res%d/x%d/sub%d", i, i, i % 7);
        gw_route_match m;
        assert_int_equal(gw_router_match(r, "GET", p, strlen(p), &a, &m, &e), 0);
        assert_int_equal(m.result, GW_ROUTE_MATCHED);
        assert_ptr_equal(m.route->method, &ms[i]);
        assert_int_equal(m.binding_count, 1);
        char want[32];
        snprintf(want, sizeof(want), "x%d", i);
        assert_string_equal(m.bindings[0].value, want);
    }
    gw_arena_free(&a);
    gw_router_del(r);
}

/* The demo API's rules all load, and each demo route answers. */
static void test_demo_registry(void **state)
{
    (void)state;
    const char *path = getenv("GW_DEMO_DESC");
    if (!path)
        fail_msg("GW_DEMO_DESC is not set (tests/meson.build sets it)");
    gw_registry *reg;
    gw_error e;
    if (gw_registry_load(&reg, &path, 1, &e))
        fail_msg("%s", e.msg);
    gw_router *r = gw_router_new(NULL);
    if (gw_router_add_registry(r, reg, &e))
        fail_msg("%s", e.msg);
    static const struct {
        const char *method, *path, *want;
    } cases[] = {
        {"GET", "/v1/users/1", "demo.v1.UserService.GetUser id=1"},
        {"POST", "/v1/users", "demo.v1.UserService.CreateUser"},
        {"PATCH", "/v1/users/2", "demo.v1.UserService.UpdateUser user.id=2"},
        {"DELETE", "/v1/users/3", "demo.v1.UserService.DeleteUser id=3"},
        {"POST", "/v1/users/3:undelete", "demo.v1.UserService.UndeleteUser id=3"},
        {"GET", "/v1/users", "demo.v1.UserService.ListUsers"},
        {"GET", "/v1/roles/ROLE_ADMIN/users", "demo.v1.UserService.ListUsers role=ROLE_ADMIN"},
        {"POST", "/v1/users:batchCreate", "demo.v1.UserService.CreateUsers"},
        {"POST", "/demo.v1.UserService/Chat", "demo.v1.UserService.Chat"},
        {"GET", "/v1/users/1/avatar", "demo.v1.UserService.GetAvatar id=1"},
        {"PUT", "/v1/users/1/avatar", "demo.v1.UserService.SetAvatar id=1"},
        {"POST", "/v1/echo", "demo.v1.EchoService.Echo"},
        {"POST", "/v1/fail", "demo.v1.EchoService.Fail"},
        {"GET", "/v1/download", "demo.v1.EchoService.Download"},
        {"POST", "/demo.v1.EchoService/Unbound", "demo.v1.EchoService.Unbound"},
        {"POST", "/demo.v1.EchoService/Echo", NULL},
    };
    gw_arena a;
    gw_arena_init(&a, 0, 0);
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        gw_route_match m;
        assert_int_equal(gw_router_match(r, cases[i].method, cases[i].path,
                                         strlen(cases[i].path), &a, &m, &e), 0);
        char got[256] = "";
        if (m.result == GW_ROUTE_MATCHED) {
            size_t n = (size_t)snprintf(got, sizeof(got), "%s", m.route->method->full_name);
            for (size_t k = 0; k < m.binding_count; k++)
                n += (size_t)snprintf(got + n, sizeof(got) - n, " %s=%s",
                                      m.bindings[k].var->field_path, m.bindings[k].value);
        }
        if (cases[i].want ? strcmp(got, cases[i].want) != 0 : m.result == GW_ROUTE_MATCHED)
            fail_msg("%s %s: '%s'", cases[i].method, cases[i].path, got);
    }
    gw_arena_free(&a);
    gw_router_del(r);
    gw_registry_del(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_bind),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_match_route_fields),
        cmocka_unit_test(test_match_bad_escape),
        cmocka_unit_test(test_add_errors),
        cmocka_unit_test(test_many_routes),
        cmocka_unit_test(test_demo_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
