/*
 * Fuzz target for src/route: the template parser and the matcher.
 *
 * Input: lines. Up to the first empty line, each line is "VERB TEMPLATE"
 * (an HttpRule registered for a method taking t.Shelf from fixture.h);
 * after it, each line is "METHOD PATH" matched against the router. The
 * whole input is also parsed as one template, to reach the parser with
 * arbitrary bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "route/route.h"
#include "fixture.h"

#define MAX_RULES 32
#define MAX_LINES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    gw_error e;
    gw_route_template *t = NULL;
    if (gw_route_template_parse(text, &t, &e) == 0) {
        gw_route_template_bind(t, &fx_shelf, &e);
        gw_route_template_del(t);
    }

    gw_http_rule rules[MAX_RULES];
    gw_method_def methods[MAX_RULES];
    size_t nrules = 0;
    gw_router *r = gw_router_new(NULL);
    gw_arena a;
    gw_arena_init(&a, 0, 1 << 20);
    char *line = text;
    bool requests = false;
    size_t lines = 0;
    while (r && line && lines++ < MAX_LINES) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (!*line) {
            requests = true;
        } else {
            char *sp = strchr(line, ' ');
            const char *verb = sp ? line : "GET";
            const char *rest = sp ? sp + 1 : line;
            if (sp)
                *sp = '\0';
            if (!requests && nrules < MAX_RULES) {
                rules[nrules] = (gw_http_rule){.verb = verb, .path = rest, .body = "",
                                               .response_body = ""};
                methods[nrules] = (gw_method_def){
                    .name = "M", .full_name = "t.S.M", .path = "/t.S/M", .input = &fx_shelf,
                    .output = &fx_shelf, .http_rule_count = 1, .http_rules = &rules[nrules]};
                gw_router_add_method(r, &methods[nrules], &e);
                nrules++;
            } else if (requests) {
                gw_route_match m;
                if (gw_router_match(r, verb, rest, strlen(rest), &a, &m, &e) == 0 &&
                    m.result == GW_ROUTE_METHOD_NOT_ALLOWED) {
                    gw_buf b;
                    gw_buf_init(&b, 4096);
                    gw_route_allow_header(&m, &b);
                    gw_buf_free(&b);
                }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    gw_arena_free(&a);
    gw_router_del(r);
    free(text);
    return 0;
}
