/* grpcgate: the command line. Dispatches to the subcommands in src/cli. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#ifndef GW_VERSION
#define GW_VERSION "unknown"
#endif

/* Each line indented by two spaces; README.md's "Commands" block has them
 * without the indent (tests/cli/test_cli.py). */
#define GW_CLI_USAGE_LINES                                                             \
    GW_CLI_SERVE_SYNOPSIS                                                              \
    "  grpcgate demo    [--listen HOST:PORT]                 demo service + gateway + web page\n" \
    "  grpcgate demo-service --listen HOST:PORT              the demo gRPC service alone\n" \
    "  grpcgate transcode --descriptor FILE --type pkg.Msg --from json|proto --to json|proto\n" \
    "  grpcgate describe --descriptor FILE...                services, methods and HTTP routes\n" \
    "  grpcgate openapi --descriptor FILE...                 OpenAPI 3 document on stdout\n"

void gw_cli_usage(int to_stderr)
{
    fputs("grpcgate " GW_VERSION " - gRPC-Web and REST/JSON gateway for gRPC services\n"
          "\n"
          "usage:\n"
          GW_CLI_USAGE_LINES
          "  grpcgate version\n"
          "\n"
          "Run 'grpcgate COMMAND --help' for the options of a command.\n",
          to_stderr ? stderr : stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2) { /* a usage error, like an unknown command */
        gw_cli_usage(1);
        return 2;
    }
    const char *cmd = argv[1];
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"serve", gw_cmd_serve},
        {"demo", gw_cmd_demo},
        {"demo-service", gw_cmd_demo_service},
        {"transcode", gw_cmd_transcode},
        {"describe", gw_cmd_describe},
        {"openapi", gw_cmd_openapi},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmd, cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("grpcgate %s\n", GW_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        gw_cli_usage(0);
        return 0;
    }
    fprintf(stderr, "grpcgate: unknown command '%s'\n\n", cmd);
    gw_cli_usage(1);
    return 2;
}
