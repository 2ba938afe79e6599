/*
 * server — `grpcgate serve`: configuration (flags + JSON file), the worker
 * threads (one gw_loop + one front + one backend or cluster per configured
 * backend each, shared-nothing; a reload may add and retire backends), the request classifier (operational
 * endpoints, CORS preflight, gRPC-Web, REST, static files), routing of
 * methods to backends, reload on SIGHUP and graceful stop on SIGTERM/SIGINT.
 *
 * What requests read (configuration, schema registry, REST router, routes,
 * OpenAPI document) lives in an immutable, reference-counted snapshot built
 * on the main thread at start and on each reload; workers and calls hold
 * references, so they share it without locks (docs/operations.md).
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include "base/base.h"
#include "call/call.h"
#include "front/front.h"
#include "upstream/cluster.h"
#include "upstream/upstream.h"
#include "ws/ws.h"

#define GW_SERVER_MAX_DESCRIPTORS 64
#define GW_SERVER_MAX_ORIGINS 64
#define GW_SERVER_MAX_REST_NAMES 64

#define GW_SERVER_MAX_BACKENDS 32
#define GW_SERVER_MAX_ENDPOINTS 32
#define GW_SERVER_MAX_ROUTES 256

/* A named backend ("backends" in the file): a cluster of endpoints. */
typedef struct gw_server_backend {
    char *name;
    char *endpoints[GW_SERVER_MAX_ENDPOINTS];
    size_t endpoint_count;
    gw_cluster_options cluster;    /* its strings point into the fields below */
    char *ca_file, *cert_file, *key_file, *server_name, *health_service;
    bool reflect;                  /* descriptors from this backend's reflection */
} gw_server_backend;

/* "routes": which backend serves a method. match is a service full name
 * ("demo.v1.UserService"), a package prefix ending in '.' ("demo.v1."), a
 * gRPC path prefix starting with '/' ("/demo.v1.EchoService/Echo") or "*";
 * the longest match wins. */
typedef struct gw_server_route {
    char *match;
    char *backend;                 /* a name in backends, or "default" (--backend) */
} gw_server_route;

typedef struct gw_server_config {
    char *listen;                  /* "HOST:PORT" (port 0: pick one) */
    /* The caller holds `listen` already (a bound, non-listening
     * SO_REUSEPORT socket: grpcgate demo with port 0) or has just run
     * gw_server_check_listen on it (grpcgate demo, which words its own
     * message), so the check is skipped. Not in the file. */
    bool listen_reserved;
    char *backend;                 /* backend URL */
    char *descriptors[GW_SERVER_MAX_DESCRIPTORS];
    size_t descriptor_count;
    unsigned workers;              /* 0: one per online CPU */
    uint32_t drain_timeout_ms;     /* graceful stop; default 10000 */
    gw_log_level log_level;
    gw_front_options front;        /* front.host/port come from `listen` */
    gw_call_options call;
    gw_ws_options websocket;       /* WebSocket calls (docs/websocket.md) */
    gw_backend_options upstream;
    /* CORS: none when origin_count is 0. */
    char *origins[GW_SERVER_MAX_ORIGINS];  /* exact origins, or "*" */
    size_t origin_count;
    char *cors_allow_headers;      /* extra allowed request headers, ", "-joined */
    char *cors_expose_headers;     /* extra exposed response headers */
    bool cors_credentials;
    unsigned cors_max_age_s;       /* default 600 */
    /* Operations (docs/operations.md, docs/configuration.md). */
    char *admin_listen;            /* separate admin listener; NULL: none */
    char *ops_prefix;              /* path prefix on the main port; NULL: root */
    bool ops_on_main_port;         /* /healthz etc. on the main port; true */
    bool metrics_enabled;          /* /metrics; true */
    bool reload_endpoint;          /* POST /admin/reload; false */
    uint32_t drain_delay_ms;       /* readiness false this long before the
                                      listeners close on SIGTERM; 0 */
    bool ready_requires_connection; /* /readyz waits until every backend has
                                      connected (or passed a health check)
                                      and is not failing; true */
    char *access_log;              /* "-" stdout, a file, NULL: off */
    char *openapi_path;            /* "/openapi.json"; NULL: not served */
    char *tls_cert;                /* PEM files for HTTPS on the listener */
    char *tls_key;
    char *tls_client_ca;           /* verify client certificates against it */
    char *tls_priorities;          /* GnuTLS priority string; NULL: the default
                                      (gw_front_options.tls_priorities) */
    char *static_dir;              /* files served last (static.h); NULL: none */
    gw_server_backend backends[GW_SERVER_MAX_BACKENDS];
    size_t backend_count;
    gw_server_route routes[GW_SERVER_MAX_ROUTES];
    size_t route_count;            /* 0: every method to the only backend */
    bool reflect;                  /* descriptors from the backend's reflection
                                      service instead of files */
    uint32_t reflect_timeout_ms;   /* default 10000 */
    /* "backend_tls" / --backend-ca ...: CA bundle, client certificate and
     * key, verification name of the `default` backend (https://). */
    char *backend_ca, *backend_cert, *backend_key, *backend_server_name;
    bool debug_errors;             /* clients see backend URLs and transport
                                      causes in error messages; false */
    /* Reload (SIGHUP): builds the configuration again into out (freshly
     * initialised), e.g. flags + file. NULL: reload re-reads the same
     * descriptors with the same configuration. Not part of the file. */
    int (*reload)(void *ctx, struct gw_server_config *out, gw_error *e);
    void *reload_ctx;
    /* REST/JSON ("rest" in the file). The lists below are what
     * rest.ignored_query / rest.header_allowlist point to. */
    gw_rest_options rest;
    gw_router_options router;
    char *rest_ignored[GW_SERVER_MAX_REST_NAMES];
    size_t rest_ignored_count;
    char *rest_allow[GW_SERVER_MAX_REST_NAMES];  /* lowercased */
    size_t rest_allow_count;
} gw_server_config;

/* Defaults for everything. */
void gw_server_config_init(gw_server_config *c);
void gw_server_config_free(gw_server_config *c);

/*
 * Reads a JSON config file into c (on top of what is there). Unknown keys
 * are errors naming the key path ("limits.max_bodyy"); so are values of the
 * wrong type or range. Returns 0, GW_EIO, GW_EPARSE, GW_EINVAL, GW_ENOMEM.
 */
int gw_server_config_load(gw_server_config *c, const char *path, gw_error *e);
/* Same, from a string (tests). `source` names it in errors. */
int gw_server_config_parse(gw_server_config *c, const char *json, size_t len,
                           const char *source, gw_error *e);
/* Sets `listen` from "HOST:PORT" / "[v6]:PORT". Returns 0 or GW_EINVAL. */
int gw_server_config_set_string(char **slot, const char *value);

/*
 * Runs the gateway until SIGTERM or SIGINT: loads the descriptors (files or
 * reflection), starts the workers, prints "listening on HOST:PORT" on
 * stdout. SIGHUP reloads (c->reload builds the new configuration; failures
 * keep the old one and are logged): routes, descriptors and backends
 * follow it (new backends are built in each worker, removed ones are
 * retired after the calls that started with them end); a changed `listen`
 * is refused. On SIGTERM/SIGINT readiness turns false,
 * after drain_delay_ms the listeners stop accepting, calls drain up to
 * drain_timeout_ms, what is left is cancelled, and it returns 0. The
 * calling thread takes the signals (sigwait); every thread it starts blocks
 * them. Returns GW_EINVAL/GW_EIO/... with e set if it cannot start; a
 * listen address (or admin.listen) that another socket already listens on
 * is GW_EIO "listen address HOST:PORT is already in use", found before any
 * worker binds: the workers' SO_REUSEPORT would otherwise share the port
 * with that other process.
 */
int gw_server_run(const gw_server_config *c, gw_error *e);

/*
 * The check gw_server_run makes before any worker binds: whether someone
 * already listens on host:port (a plain bind probe, closed at once). host
 * is an IPv4 or IPv6 literal (no brackets) or "localhost"; a host name is
 * left to the listener, and port 0 needs no check. Returns 0 or GW_EIO
 * "listen address HOST:PORT is already in use" with e set.
 */
int gw_server_check_listen(const char *host, uint16_t port, gw_error *e);

#endif
