/* grpcgate demo-service: the demo gRPC service alone (src/demo). */
#include "base/base.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "demo/demo.h"
#include "loop/loop.h"

static gw_demo_service *volatile running;

static void on_signal(int sig)
{
    (void)sig;
    if (running)
        gw_demo_service_stop(running);
}

static void usage(FILE *f)
{
    fputs("usage: grpcgate demo-service [--listen HOST:PORT] [--log-level LEVEL]\n"
          "\n"
          "Serves the demo gRPC API (demo.v1.UserService, demo.v1.EchoService),\n"
          "grpc.health.v1.Health and server reflection over h2c (HTTP/2 without\n"
          "TLS, prior knowledge).\n"
          "\n"
          "  --listen HOST:PORT   address to listen on (default 127.0.0.1:50051);\n"
          "                       port 0 picks a free port. Prints\n"
          "                       'listening on HOST:PORT' once ready.\n"
          "  --log-level LEVEL    debug, info (default), warn or error\n"
          "\n"
          "SIGINT or SIGTERM stops it.\n",
          f);
}

/* Splits "host:port", "[v6]:port" or ":port" (host buffer of hostcap bytes). */
static int parse_listen(const char *s, char *host, size_t hostcap, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon)
        return -1;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= hostcap)
        return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == 0 || *end || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

int gw_cmd_demo_service(int argc, char **argv)
{
    const char *listen = "127.0.0.1:50051";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
            static const char *const names[] = {"debug", "info", "warn", "error"};
            const char *v = argv[++i];
            size_t k = 0;
            while (k < GW_ARRAY_LEN(names) && strcmp(names[k], v) != 0)
                k++;
            if (k == GW_ARRAY_LEN(names)) {
                fprintf(stderr, "grpcgate demo-service: unknown log level '%s'\n", v);
                return 2;
            }
            gw_log_set_level((gw_log_level)k);
        } else {
            fprintf(stderr, "grpcgate demo-service: unknown or incomplete option '%s'\n\n",
                    argv[i]);
            usage(stderr);
            return 2;
        }
    }
    char host[256];
    int port;
    if (parse_listen(listen, host, sizeof host, &port) < 0) {
        fprintf(stderr, "grpcgate demo-service: --listen wants HOST:PORT, got '%s'\n", listen);
        return 2;
    }

    gw_loop *loop = gw_loop_new();
    if (!loop) {
        fprintf(stderr, "grpcgate demo-service: cannot create the event loop\n");
        return 1;
    }
    gw_demo_service *svc = NULL;
    gw_error e;
    gw_error_clear(&e);
    if (gw_demo_service_new(loop, host, port, &svc, &e) < 0) {
        fprintf(stderr, "grpcgate demo-service: %s\n", e.msg);
        gw_loop_del(loop);
        return 1;
    }
    running = svc;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    bool v6 = strchr(host, ':') != NULL;
    printf("listening on %s%s%s:%d\n", v6 ? "[" : "", host, v6 ? "]" : "",
           gw_demo_service_port(svc));
    fflush(stdout);

    int rc = gw_loop_run(loop);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    running = NULL;
    gw_demo_service_del(svc);
    gw_loop_del(loop);
    if (rc < 0) {
        fprintf(stderr, "grpcgate demo-service: event loop failed\n");
        return 1;
    }
    return 0;
}
