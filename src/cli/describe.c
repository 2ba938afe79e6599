/*
 * grpcgate describe: what a registry built from the given descriptor sets
 * would expose, one line per service, method and HTTP route, in load order.
 * The format is documented in docs/schemas.md; tests compare it byte for
 * byte, so change both together.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "schema/schema.h"

static void describe_usage(FILE *f)
{
    fputs("usage: grpcgate describe --descriptor FILE [--descriptor FILE]...\n"
          "\n"
          "Loads descriptor sets (protoc --include_imports --descriptor_set_out=FILE)\n"
          "and prints every service, method (streaming kind, input -> output) and\n"
          "google.api.http route they declare, in load order.\n"
          "\n"
          "  --descriptor FILE   a FileDescriptorSet; repeat for several\n"
          "  -h, --help          this text\n"
          "\n"
          "Exit status: 0 ok, 1 a file could not be loaded, 2 usage error.\n",
          f);
}

static const char *streaming_kind(const gw_method_def *m)
{
    if (m->client_streaming && m->server_streaming)
        return "bidi-streaming";
    if (m->client_streaming)
        return "client-streaming";
    if (m->server_streaming)
        return "server-streaming";
    return "unary";
}

static void print_registry(const gw_registry *r, FILE *f)
{
    size_t methods = 0, routes = 0;
    for (size_t i = 0; i < gw_registry_service_count(r); i++) {
        const gw_service_def *s = gw_registry_service_at(r, i);
        fprintf(f, "service %s (%s)\n", s->full_name, s->file->name);
        for (size_t j = 0; j < s->method_count; j++) {
            const gw_method_def *m = &s->methods[j];
            fprintf(f, "  method %s %s %s -> %s\n", m->path, streaming_kind(m),
                    m->input->full_name, m->output->full_name);
            for (size_t k = 0; k < m->http_rule_count; k++) {
                const gw_http_rule *h = &m->http_rules[k];
                fprintf(f, "    route %s %s", h->verb, h->path);
                if (h->body[0])
                    fprintf(f, " body=%s", h->body);
                if (h->response_body[0])
                    fprintf(f, " response_body=%s", h->response_body);
                if (h->additional)
                    fputs(" (additional)", f);
                fputc('\n', f);
            }
            routes += m->http_rule_count;
        }
        methods += s->method_count;
    }
    fprintf(f, "total: %zu services, %zu methods, %zu routes\n", gw_registry_service_count(r),
            methods, routes);
}

int gw_cmd_describe(int argc, char **argv)
{
    int status = 0;
    const char **paths = calloc((size_t)argc + 1, sizeof *paths);
    size_t n = 0;
    gw_registry *r = NULL;
    if (!paths) {
        fprintf(stderr, "grpcgate describe: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            describe_usage(stdout);
            goto out;
        } else if (strcmp(a, "--descriptor") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "grpcgate describe: --descriptor needs a file\n");
                status = 2;
                goto usage;
            }
            paths[n++] = argv[++i];
        } else if (strncmp(a, "--descriptor=", 13) == 0 && a[13]) {
            paths[n++] = a + 13;
        } else {
            fprintf(stderr, "grpcgate describe: unknown argument '%s'\n", a);
            status = 2;
            goto usage;
        }
    }
    if (n == 0) {
        fprintf(stderr, "grpcgate describe: at least one --descriptor FILE is needed\n");
        status = 2;
        goto usage;
    }
    gw_error e;
    gw_error_clear(&e);
    if (gw_registry_load(&r, paths, n, &e) != 0) {
        fprintf(stderr, "grpcgate describe: %s\n", e.msg);
        status = 1;
        goto out;
    }
    print_registry(r, stdout);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "grpcgate describe: cannot write the output\n");
        status = 1;
    }
    goto out;
usage:
    fputc('\n', stderr);
    describe_usage(stderr);
out:
    gw_registry_del(r);
    free(paths);
    return status;
}
