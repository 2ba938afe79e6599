/*
 * Fuzz target for what the reflection client and the health checks read
 * from a backend: one ServerReflectionResponse fed to a run that expects
 * 1..4 answers (file descriptors, their dependencies, service lists, error
 * answers), and the same bytes as a HealthCheckResponse.
 * Input layout: byte 0 = answers due (1 + byte % 4), then the message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "upstream/upstream.h"
#include "upstream/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gw_loop *loop;
static gw_backend *backend;

static void cleanup(void)
{
    gw_backend_del(backend);
    gw_loop_del(loop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (!loop) {
        loop = gw_loop_new();
        gw_error e;
        if (!loop || gw_backend_new(loop, "http://127.0.0.1:1", NULL, &backend, &e) != 0)
            abort();
        atexit(cleanup);
    }
    int status;
    (void)gw_health_response_decode(data + 1, size - 1, &status);
    size_t files = 0;
    gw_error e;
    int rc = gw_reflect_feed_test(backend, data + 1, size - 1, 1 + data[0] % 4, &files, &e);
    if (rc > 0 || (rc == 0 && files > GW_REFLECT_MAX_FILES))
        abort();
    return 0;
}
