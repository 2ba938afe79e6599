/*
 * Fuzz target for the configuration parser (gw_server_config_parse): the
 * input is the JSON text of a config file. Whatever parses is freed; an
 * error must come with a message. Corpus: tests/fuzz/config.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "server/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_server_config c;
    gw_server_config_init(&c);
    gw_error e;
    memset(&e, 0, sizeof e);
    int rc = gw_server_config_parse(&c, (const char *)data, size, "fuzz", &e);
    if (rc && !e.msg[0])
        __builtin_trap(); /* every refusal says why */
    gw_server_config_free(&c);
    return 0;
}
