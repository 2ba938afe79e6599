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

/* The overall help text, to stdout (ok) or stderr (usage error). */
void gw_cli_usage(int to_stderr);

#endif
