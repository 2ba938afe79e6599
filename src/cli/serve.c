/* grpcgate serve: flags, then the config file, then flags again on top. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "server/server.h"

static void serve_usage(FILE *f)
{
    fputs("usage:\n" GW_CLI_SERVE_SYNOPSIS
          "  grpcgate serve   --config FILE [flags]  (backends, descriptors from the file)\n"
          "\n"
          "  --listen HOST:PORT    address to serve on (default 127.0.0.1:8080; port 0\n"
          "                        picks a free one); prints 'listening on HOST:PORT'\n"
          "  --backend URL         gRPC backend: http://host:port, https://host:port, unix:/path;\n"
          "                        repeat for one backend of several endpoints, balanced\n"
          "                        round robin with ejection (docs/operations.md)\n"
          "  --backend-ca FILE     PEM CAs that verify an https:// backend (default: the\n"
          "                        system's); backend_tls.ca_file in the file\n"
          "  --backend-cert FILE   client certificate (chain) for a backend that asks for one\n"
          "  --backend-key FILE    ... and its PEM private key\n"
          "  --descriptor FILE     FileDescriptorSet (protoc --include_imports\n"
          "                        --descriptor_set_out); repeat for several\n"
          "  --reflect             instead of --descriptor: fetch the descriptors from the\n"
          "                        backend's server reflection service\n"
          "  --workers N           worker threads (default: one per CPU)\n"
          "  --config FILE         JSON configuration (limits, CORS, ...); flags win\n"
          "  --log-level LEVEL     debug, info, warn, error or off\n"
          "  --access-log FILE     one JSON line per call to FILE ('-': stdout); off by\n"
          "                        default\n"
          "  --admin-listen H:P    separate listener for /healthz /readyz /metrics\n"
          "                        (they are also on the main port unless configured off)\n"
          "  --tls-cert FILE       serve HTTPS with this PEM certificate (chain) ...\n"
          "  --tls-key FILE        ... and this PEM private key\n"
          "  --tls-client-ca FILE  require client certificates signed by these CAs\n"
          "  --static DIR          serve the files under DIR for GET/HEAD paths that no\n"
          "                        route claims ('/' is DIR/index.html; docs/static.md)\n"
          "\n"
          "SIGTERM or SIGINT stops accepting, drains calls, then exits 0. SIGHUP reloads\n"
          "the configuration file and the descriptors (docs/operations.md).\n",
          f);
}

typedef struct serve_flags {
    const char *listen, *config, *log_level;
    const char *backends[GW_SERVER_MAX_ENDPOINTS]; /* --backend, in order */
    size_t backend_count;
    const char *access_log, *admin_listen, *tls_cert, *tls_key, *tls_client_ca;
    const char *static_dir;
    const char *backend_ca, *backend_cert, *backend_key;
    bool reflect;
    const char *descriptors[GW_SERVER_MAX_DESCRIPTORS];
    size_t descriptor_count;
    long workers;
} serve_flags;

static int parse_flags(int argc, char **argv, serve_flags *f)
{
    f->workers = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            serve_usage(stdout);
            return 1;
        }
        if (strcmp(a, "--reflect") == 0) {
            f->reflect = true;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
#define FLAG(name) (nl == strlen(name) && strncmp(a, name, nl) == 0)
        if (!(FLAG("--listen") || FLAG("--backend") || FLAG("--descriptor") ||
              FLAG("--workers") || FLAG("--config") || FLAG("--log-level") ||
              FLAG("--access-log") || FLAG("--admin-listen") || FLAG("--tls-cert") ||
              FLAG("--tls-key") || FLAG("--tls-client-ca") || FLAG("--static") ||
              FLAG("--backend-ca") || FLAG("--backend-cert") || FLAG("--backend-key"))) {
            fprintf(stderr, "grpcgate serve: unknown option '%s'\n", a);
            return 2;
        }
        if (!val) {
            fprintf(stderr, "grpcgate serve: %s needs a value\n", a);
            return 2;
        }
        if (!eq)
            i++;
        if (FLAG("--listen"))
            f->listen = val;
        else if (FLAG("--backend")) {
            if (f->backend_count == GW_SERVER_MAX_ENDPOINTS) {
                fprintf(stderr, "grpcgate serve: at most %d --backend URLs\n",
                        GW_SERVER_MAX_ENDPOINTS);
                return 2;
            }
            f->backends[f->backend_count++] = val;
        }
        else if (FLAG("--config"))
            f->config = val;
        else if (FLAG("--log-level"))
            f->log_level = val;
        else if (FLAG("--access-log"))
            f->access_log = val;
        else if (FLAG("--admin-listen"))
            f->admin_listen = val;
        else if (FLAG("--tls-cert"))
            f->tls_cert = val;
        else if (FLAG("--tls-key"))
            f->tls_key = val;
        else if (FLAG("--tls-client-ca"))
            f->tls_client_ca = val;
        else if (FLAG("--static"))
            f->static_dir = val;
        else if (FLAG("--backend-ca"))
            f->backend_ca = val;
        else if (FLAG("--backend-cert"))
            f->backend_cert = val;
        else if (FLAG("--backend-key"))
            f->backend_key = val;
        else if (FLAG("--descriptor")) {
            if (f->descriptor_count == GW_SERVER_MAX_DESCRIPTORS) {
                fprintf(stderr, "grpcgate serve: too many --descriptor files\n");
                return 2;
            }
            f->descriptors[f->descriptor_count++] = val;
        } else {
            char *end;
            long n = strtol(val, &end, 10);
            if (*end || n < 1 || n > 1024) {
                fprintf(stderr, "grpcgate serve: --workers wants 1..1024\n");
                return 2;
            }
            f->workers = n;
        }
#undef FLAG
    }
    return 0;
}

/* Several --backend flags: one backend named `default` whose endpoints are
 * the URLs, balanced and ejected like the endpoints of a named backend in
 * the file (round robin, the file's `upstream` and `backend_tls` settings),
 * in place of the one-URL `backend`. --reflect asks its first endpoint. */
static int backend_group(const serve_flags *f, gw_server_config *cfg, gw_error *e)
{
    if (cfg->backend_count == GW_SERVER_MAX_BACKENDS)
        return gw_error_set(e, GW_EINVAL, "--backend: the file already has %d backends",
                            GW_SERVER_MAX_BACKENDS);
    free(cfg->backend);
    cfg->backend = NULL;
    gw_server_backend *b = &cfg->backends[cfg->backend_count++];
    memset(b, 0, sizeof *b);
    gw_cluster_options_init(&b->cluster);
    b->cluster.backend = cfg->upstream;
    b->reflect = cfg->reflect;
    cfg->reflect = false;
    b->name = strdup("default");
    if (!b->name)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    /* The `default` backend's TLS (backend_tls, --backend-ca/-cert/-key),
     * owned by the entry as a named backend's "tls" is. */
    const char *tls[4] = {cfg->backend_ca, cfg->backend_cert, cfg->backend_key,
                          cfg->backend_server_name};
    char **own[4] = {&b->ca_file, &b->cert_file, &b->key_file, &b->server_name};
    for (size_t i = 0; i < 4; i++)
        if (tls[i] && gw_server_config_set_string(own[i], tls[i]))
            return gw_error_set(e, GW_ENOMEM, "out of memory");
    b->cluster.backend.ca_file = b->ca_file;
    b->cluster.backend.cert_file = b->cert_file;
    b->cluster.backend.key_file = b->key_file;
    b->cluster.backend.server_name = b->server_name;
    for (size_t i = 0; i < f->backend_count; i++) {
        b->endpoints[i] = strdup(f->backends[i]);
        if (!b->endpoints[i])
            return gw_error_set(e, GW_ENOMEM, "out of memory");
        b->endpoint_count++;
    }
    return 0;
}

/* Defaults, the config file, then the flags on top: at start and again on
 * every reload (SIGHUP), so a reload sees the file as it is now. */
static int build_config(const serve_flags *f, gw_server_config *cfg, gw_error *e)
{
    if (f->config && gw_server_config_load(cfg, f->config, e) != 0)
        return e->code ? e->code : GW_EINVAL;
    if ((f->listen && gw_server_config_set_string(&cfg->listen, f->listen)) ||
        (f->access_log && gw_server_config_set_string(&cfg->access_log, f->access_log)) ||
        (f->admin_listen && gw_server_config_set_string(&cfg->admin_listen, f->admin_listen)) ||
        (f->tls_cert && gw_server_config_set_string(&cfg->tls_cert, f->tls_cert)) ||
        (f->tls_key && gw_server_config_set_string(&cfg->tls_key, f->tls_key)) ||
        (f->tls_client_ca &&
         gw_server_config_set_string(&cfg->tls_client_ca, f->tls_client_ca)) ||
        (f->static_dir && gw_server_config_set_string(&cfg->static_dir, f->static_dir)) ||
        (f->backend_ca && gw_server_config_set_string(&cfg->backend_ca, f->backend_ca)) ||
        (f->backend_cert && gw_server_config_set_string(&cfg->backend_cert, f->backend_cert)) ||
        (f->backend_key && gw_server_config_set_string(&cfg->backend_key, f->backend_key)))
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    if (f->descriptor_count) {
        for (size_t i = 0; i < cfg->descriptor_count; i++)
            free(cfg->descriptors[i]);
        cfg->descriptor_count = 0;
        for (size_t i = 0; i < f->descriptor_count; i++) {
            cfg->descriptors[i] = strdup(f->descriptors[i]);
            if (!cfg->descriptors[i])
                return gw_error_set(e, GW_ENOMEM, "out of memory");
            cfg->descriptor_count++;
        }
    }
    if (f->reflect)
        cfg->reflect = true;
    if (f->backend_count == 1 &&
        gw_server_config_set_string(&cfg->backend, f->backends[0]))
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    if (f->backend_count > 1) {
        int rc = backend_group(f, cfg, e);
        if (rc)
            return rc;
    }
    if (f->workers > 0)
        cfg->workers = (unsigned)f->workers;
    if (f->log_level) {
        static const char *const names[] = {"debug", "info", "warn", "error", "off"};
        size_t i = 0;
        while (i < GW_ARRAY_LEN(names) && strcmp(names[i], f->log_level) != 0)
            i++;
        if (i == GW_ARRAY_LEN(names))
            return gw_error_set(e, GW_EINVAL, "--log-level: debug, info, warn, error or off");
        cfg->log_level = (gw_log_level)i;
    }
    return 0;
}

static int reload_config(void *ctx, gw_server_config *out, gw_error *e)
{
    return build_config(ctx, out, e);
}

int gw_cmd_serve(int argc, char **argv)
{
    serve_flags f = {0};
    int rc = parse_flags(argc, argv, &f);
    if (rc)
        return rc == 1 ? 0 : 2;
    gw_server_config cfg;
    gw_server_config_init(&cfg);
    gw_error e;
    gw_error_clear(&e);
    int status = 2;
    rc = build_config(&f, &cfg, &e);
    if (rc) {
        fprintf(stderr, "grpcgate serve: %s\n", e.msg);
        status = rc == GW_ENOMEM ? 1 : 2;
        goto out;
    }
    cfg.reload = reload_config;
    cfg.reload_ctx = &f;
    gw_log_set_level(cfg.log_level);
    if (gw_server_run(&cfg, &e) != 0) {
        fprintf(stderr, "grpcgate serve: %s\n", e.msg);
        status = e.code == GW_EINVAL ? 2 : 1;
        goto out;
    }
    status = 0;
out:
    gw_server_config_free(&cfg);
    return status;
}
