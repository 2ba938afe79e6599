/* grpcgate: the command line. Dispatches to the subcommands in src/cli. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#ifndef GW_VERSION
#define GW_VERSION "unknown"
#endif

void gw_cli_usage(int to_stderr)
{
    fputs("grpcgate " GW_VERSION " - gRPC-Web and REST/JSON gateway for gRPC services\n"
          "\n"
          "usage:\n"
          "  grpcgate serve   [--listen HOST:PORT] [--backend URL]... [--descriptor FILE]...\n"
          "                   [--reflect] [--config FILE] [--workers N] [--static DIR]\n"
          "  grpcgate demo    [--listen HOST:PORT]    demo service + web page, no setup\n"
          "  grpcgate demo-service --listen HOST:PORT the demo gRPC service alone\n"
          "  grpcgate transcode --descriptor FILE --type pkg.Msg --from json|proto --to json|proto\n"
          "  grpcgate describe --descriptor FILE...    services, methods and routes\n"
          "  grpcgate openapi --descriptor FILE...     OpenAPI document on stdout\n"
          "  grpcgate version\n"
          "\n"
          "Run 'grpcgate COMMAND --help' for the options of a command.\n",
          to_stderr ? stderr : stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        gw_cli_usage(0);
        return 0;
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
