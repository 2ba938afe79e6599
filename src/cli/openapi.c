/*
 * grpcgate openapi: the OpenAPI 3 document of the REST routes that `serve`
 * would expose for the given descriptor sets, on stdout (docs/openapi.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "openapi/openapi.h"
#include "schema/schema.h"

/* A document bigger than this is refused rather than printed. */
#define OPENAPI_OUTPUT_MAX (64u * 1024u * 1024u)

static void openapi_usage(FILE *f)
{
    fputs("usage: grpcgate openapi --descriptor FILE... [--proto-names] [--no-auto-map]\n"
          "                        [--title T] [--version V] [--server URL] [--compact]\n"
          "\n"
          "Prints an OpenAPI 3.0.3 document (JSON) for every REST route the gateway\n"
          "serves from these descriptor sets: google.api.http rules, additional\n"
          "bindings and POST /pkg.Service/Method for methods without rules.\n"
          "\n"
          "  --descriptor FILE...  FileDescriptorSets (protoc --include_imports\n"
          "                        --descriptor_set_out); repeat the flag or list\n"
          "                        several files after it. With --include_source_info\n"
          "                        the proto comments become summaries and descriptions.\n"
          "  --proto-names         proto field names instead of JSON names, as a\n"
          "                        gateway configured with \"rest\": {\"proto_names\": true}\n"
          "                        prints them\n"
          "  --no-auto-map         leave out methods without a google.api.http rule, as\n"
          "                        \"rest\": {\"auto_map_unbound\": false}\n"
          "  --title T             info.title (default grpcgate)\n"
          "  --version V           info.version (default 0.0.0)\n"
          "  --server URL          servers[0].url\n"
          "  --compact             one line instead of indented JSON\n"
          "  -h, --help            this text\n"
          "\n"
          "Exit status: 0 ok, 1 a file could not be loaded, 2 usage error.\n",
          f);
}

/* The value of "--name V" or "--name=V"; NULL when a is another flag.
 * *missing is set when the flag is there but its value is not. */
static const char *flag_value(const char *name, int argc, char **argv, int *i, bool *missing)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != 0)
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

int gw_cmd_openapi(int argc, char **argv)
{
    int status = 0;
    const char **paths = calloc((size_t)argc + 1, sizeof *paths);
    size_t n = 0;
    gw_registry *r = NULL;
    gw_buf doc;
    gw_buf_init(&doc, OPENAPI_OUTPUT_MAX);
    gw_openapi_options o;
    gw_openapi_options_init(&o);
    if (!paths) {
        fprintf(stderr, "grpcgate openapi: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        bool missing = false;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            openapi_usage(stdout);
            goto out;
        } else if (strcmp(a, "--proto-names") == 0) {
            o.proto_names = true;
        } else if (strcmp(a, "--no-auto-map") == 0) {
            o.auto_map_unbound = false;
        } else if (strcmp(a, "--compact") == 0) {
            o.compact = true;
        } else if ((v = flag_value("--descriptor", argc, argv, &i, &missing))) {
            paths[n++] = v;
            /* Further files up to the next flag: --descriptor a.pb b.pb */
            while (i + 1 < argc && argv[i + 1][0] != '-')
                paths[n++] = argv[++i];
        } else if ((v = flag_value("--title", argc, argv, &i, &missing))) {
            o.title = v;
        } else if ((v = flag_value("--version", argc, argv, &i, &missing))) {
            o.version = v;
        } else if ((v = flag_value("--server", argc, argv, &i, &missing))) {
            o.server_url = v;
        } else {
            if (missing)
                fprintf(stderr, "grpcgate openapi: %s needs a value\n", a);
            else
                fprintf(stderr, "grpcgate openapi: unknown argument '%s'\n", a);
            status = 2;
            goto usage;
        }
        if (v && !*v) {
            fprintf(stderr, "grpcgate openapi: %s needs a value\n", a);
            status = 2;
            goto usage;
        }
    }
    if (n == 0) {
        fprintf(stderr, "grpcgate openapi: at least one --descriptor FILE is needed\n");
        status = 2;
        goto usage;
    }
    gw_error e;
    gw_error_clear(&e);
    if (gw_registry_load(&r, paths, n, &e) != 0 ||
        gw_openapi_generate(r, &o, &doc, &e) != 0) {
        fprintf(stderr, "grpcgate openapi: %s\n", e.msg);
        status = 1;
        goto out;
    }
    if (fwrite(doc.data, 1, doc.len, stdout) != doc.len || fflush(stdout) != 0) {
        fprintf(stderr, "grpcgate openapi: cannot write the output\n");
        status = 1;
    }
    goto out;
usage:
    fputc('\n', stderr);
    openapi_usage(stderr);
out:
    gw_buf_free(&doc);
    gw_registry_del(r);
    free(paths);
    return status;
}
