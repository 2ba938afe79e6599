/*
 * cli — the subcommands of the grpcgate executable. Each takes the argv
 * that follows the subcommand name (argv[0] is the subcommand) and returns
 * the process exit status: 0 success, 1 failure at run time, 2 usage or
 * setup error (and, for transcode, 3: not representable in the output).
 */
#ifndef GW_CLI_H
#define GW_CLI_H

int gw_cmd_serve(int argc, char **argv);
int gw_cmd_demo(int argc, char **argv);
int gw_cmd_demo_service(int argc, char **argv);
int gw_cmd_transcode(int argc, char **argv);
int gw_cmd_describe(int argc, char **argv);
int gw_cmd_openapi(int argc, char **argv);

/* The serve synopsis: the one source of the lines `grpcgate --help` and
 * `grpcgate serve --help` print, which README.md's "Commands" block and
 * docs/configuration.md repeat verbatim (tests/cli/test_cli.py compares
 * them). --descriptor and --reflect are alternatives; both, and --backend,
 * may come from --config FILE instead. */
#define GW_CLI_SERVE_SYNOPSIS                                                          \
    "  grpcgate serve   --backend URL... (--descriptor FILE... | --reflect)\n"          \
    "                   [--listen HOST:PORT] [--config FILE] [--workers N]\n"            \
    "                   [--log-level LEVEL] [--access-log FILE|-] [--static DIR]\n"      \
    "                   [--admin-listen HOST:PORT]\n"                                    \
    "                   [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]\n"          \
    "                   [--backend-ca PEM] [--backend-cert PEM --backend-key PEM]\n"

/* The overall help text, to stdout (ok) or stderr (usage error). */
void gw_cli_usage(int to_stderr);

#endif
