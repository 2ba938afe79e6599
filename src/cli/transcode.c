#include <stdio.h>

#include "cli/cli.h"

int gw_cmd_transcode(int argc, char **argv)
{
    fprintf(stderr, "grpcgate %s: not implemented yet\n", argv[0]);
    return 2;
}
