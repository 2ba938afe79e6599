/* The serve configuration: defaults and the JSON file. See server.h. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "server/server.h"

void gw_server_config_init(gw_server_config *c)
{
    memset(c, 0, sizeof *c);
    c->drain_timeout_ms = 10000;
    c->log_level = GW_LOG_INFO;
    gw_front_options_init(&c->front);
    gw_call_options_init(&c->call);
    gw_ws_options_init(&c->websocket);
    gw_backend_options_init(&c->upstream);
    c->cors_max_age_s = 600;
    c->ops_on_main_port = true;
    c->reflect_timeout_ms = 10000;
    c->metrics_enabled = true;
    c->ready_requires_connection = true;
    c->openapi_path = strdup("/openapi.json");
    gw_rest_options_init(&c->rest);
    gw_router_options_init(&c->router);
}

void gw_server_config_free(gw_server_config *c)
{
    free(c->listen);
    free(c->backend);
    for (size_t i = 0; i < c->descriptor_count; i++)
        free(c->descriptors[i]);
    for (size_t i = 0; i < c->origin_count; i++)
        free(c->origins[i]);
    free(c->cors_allow_headers);
    free(c->cors_expose_headers);
    free(c->admin_listen);
    free(c->ops_prefix);
    free(c->access_log);
    free(c->openapi_path);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->tls_client_ca);
    free(c->tls_priorities);
    free(c->backend_ca);
    free(c->backend_cert);
    free(c->backend_key);
    free(c->backend_server_name);
    for (size_t i = 0; i < c->backend_count; i++) {
        gw_server_backend *b = &c->backends[i];
        free(b->name);
        for (size_t j = 0; j < b->endpoint_count; j++)
            free(b->endpoints[j]);
        free(b->ca_file);
        free(b->cert_file);
        free(b->key_file);
        free(b->server_name);
        free(b->health_service);
    }
    for (size_t i = 0; i < c->route_count; i++) {
        free(c->routes[i].match);
        free(c->routes[i].backend);
    }
    free(c->static_dir);
    for (size_t i = 0; i < c->rest_ignored_count; i++)
        free(c->rest_ignored[i]);
    for (size_t i = 0; i < c->rest_allow_count; i++)
        free(c->rest_allow[i]);
    memset(c, 0, sizeof *c);
}

int gw_server_config_set_string(char **slot, const char *value)
{
    char *s = strdup(value);
    if (!s)
        return GW_ENOMEM;
    free(*slot);
    *slot = s;
    return 0;
}

/* ---- typed readers ------------------------------------------------------------ */

static int want_uint(json_t *v, const char *key, uint64_t max, uint64_t *out, gw_error *e)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) > max)
        return gw_error_set(e, GW_EINVAL, "%s: expected an integer from 0 to %llu", key,
                            (unsigned long long)max);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int want_bool(json_t *v, const char *key, bool *out, gw_error *e)
{
    if (!json_is_boolean(v))
        return gw_error_set(e, GW_EINVAL, "%s: expected true or false", key);
    *out = json_is_true(v);
    return 0;
}

static int want_string(json_t *v, const char *key, char **out, gw_error *e)
{
    if (!json_is_string(v))
        return gw_error_set(e, GW_EINVAL, "%s: expected a string", key);
    return gw_server_config_set_string(out, json_string_value(v)) ? GW_ENOMEM : 0;
}

/* A list of strings joined with ", " (header names). */
static int want_joined(json_t *v, const char *key, char **out, gw_error *e)
{
    if (!json_is_array(v))
        return gw_error_set(e, GW_EINVAL, "%s: expected an array of strings", key);
    gw_buf b;
    gw_buf_init(&b, 16384);
    size_t i;
    json_t *x;
    int rc = 0;
    json_array_foreach(v, i, x) {
        if (!json_is_string(x)) {
            rc = gw_error_set(e, GW_EINVAL, "%s[%zu]: expected a string", key, i);
            goto out;
        }
        const char *s = json_string_value(x);
        for (const char *p = s; *p; p++)
            if (*p == '\r' || *p == '\n' || *p == ',') {
                rc = gw_error_set(e, GW_EINVAL, "%s[%zu]: not a header name", key, i);
                goto out;
            }
        rc = gw_buf_printf(&b, "%s%s", b.len ? ", " : "", s);
        if (rc) {
            gw_error_set(e, rc, "%s: too long", key);
            goto out;
        }
    }
    free(*out);
    *out = b.data ? (char *)gw_buf_detach(&b, &i) : NULL;
out:
    gw_buf_free(&b);
    return rc;
}

#define UINT_KEY(name, field, max)                                  \
    if (strcmp(k, name) == 0) {                                     \
        uint64_t u = 0;                                             \
        rc = want_uint(v, path, max, &u, e);                        \
        if (rc == 0)                                                \
            field = u;                                              \
        continue;                                                   \
    }

/* Sections made only of plain keys (unsigned integers, strings): one table
 * row per key (name, kind, where it is stored in the config, the largest
 * value of an integer). */
typedef enum { KEY_UINT, KEY_STRING } key_kind;

typedef struct cfg_key {
    const char *name;
    key_kind kind;
    size_t offset, size; /* of the field in gw_server_config */
    uint64_t max;
} cfg_key;

#define UKEY(name, field, max)                                                                  \
    {name, KEY_UINT, offsetof(gw_server_config, field), sizeof(((gw_server_config *)0)->field), \
     max}
#define SKEY(name, field) {name, KEY_STRING, offsetof(gw_server_config, field), sizeof(char *), 0}

static void store_uint(gw_server_config *c, const cfg_key *key, uint64_t u)
{
    char *p = (char *)c + key->offset;
    switch (key->size) {
    case sizeof(uint8_t): *(uint8_t *)p = (uint8_t)u; break;
    case sizeof(uint16_t): *(uint16_t *)p = (uint16_t)u; break;
    case sizeof(uint32_t): *(uint32_t *)p = (uint32_t)u; break;
    default: *(uint64_t *)p = u; break;
    }
}

static int parse_plain_section(gw_server_config *c, json_t *obj, const char *section,
                              const cfg_key *keys, size_t n, gw_error *e)
{
    const char *k;
    json_t *v;
    char path[160];
    json_object_foreach(obj, k, v) {
        snprintf(path, sizeof path, "%s.%s", section, k);
        size_t i = 0;
        while (i < n && strcmp(k, keys[i].name) != 0)
            i++;
        if (i == n)
            return gw_error_set(e, GW_EINVAL, "unknown key '%s'", path);
        int rc;
        if (keys[i].kind == KEY_STRING) {
            rc = want_string(v, path, (char **)((char *)c + keys[i].offset), e);
        } else {
            uint64_t u = 0;
            rc = want_uint(v, path, keys[i].max, &u, e);
            if (rc == 0)
                store_uint(c, &keys[i], u);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static const cfg_key limits_keys[] = {
    UKEY("max_body_bytes", call.max_body, 1ull << 32),
    UKEY("max_message_bytes", call.max_message, 1ull << 31),
    UKEY("max_output_bytes", call.max_output, 1ull << 31),
    UKEY("max_metadata", call.max_metadata, 10000),
    UKEY("max_deadline_ms", call.max_deadline_ms, 1ull << 40),
    UKEY("max_header_bytes", front.memory_limit, 1ull << 24),
    UKEY("max_header_count", front.max_header_count, 100000),
    UKEY("max_connections", front.connection_limit, 1000000),
    UKEY("max_connections_per_ip", front.per_ip_limit, 1000000),
    UKEY("header_timeout_ms", front.header_timeout_ms, 1ull << 31),
    UKEY("idle_timeout_ms", front.idle_timeout_ms, 1ull << 31),
    UKEY("inactivity_timeout_s", front.inactivity_timeout_s, 1ull << 31),
    UKEY("discard_body_bytes", front.discard_limit, 1ull << 32),
    UKEY("body_timeout_ms", front.body_timeout_ms, 1ull << 31),
    UKEY("body_min_rate", front.body_min_rate, 1ull << 31),
    UKEY("idle_park_ms", front.park_idle_ms, 1ull << 31),
    UKEY("idle_trim_ms", front.trim_idle_ms, 1ull << 31),
    UKEY("send_lowat_bytes", front.notsent_lowat, 1ull << 30),
    UKEY("send_buffer_bytes", front.sndbuf, 1ull << 30),
    UKEY("drain_timeout_ms", drain_timeout_ms, 1ull << 31),
};

/* front: the HTTP/1.1 parser's strictness (docs/front.md, "Hostile
 * clients"). */
static const cfg_key front_keys[] = {
    UKEY("http_strictness", front.http_strictness, 3),
};

/* websocket: keepalive and timeouts of WebSocket calls (docs/websocket.md). */
static const cfg_key websocket_keys[] = {
    UKEY("ping_interval_ms", websocket.ping_interval_ms, 1ull << 31),
    UKEY("pong_timeout_ms", websocket.pong_timeout_ms, 1ull << 31),
    UKEY("idle_timeout_ms", websocket.idle_timeout_ms, 1ull << 31),
    UKEY("header_timeout_ms", websocket.header_timeout_ms, 1ull << 31),
    UKEY("send_timeout_ms", websocket.send_timeout_ms, 1ull << 31),
    UKEY("close_timeout_ms", websocket.close_timeout_ms, 1ull << 31),
    UKEY("max_send_queue_bytes", websocket.max_send_queue, 1ull << 32),
    UKEY("max_header_block_bytes", websocket.max_header_block, 1ull << 24),
};

static const cfg_key upstream_keys[] = {
    UKEY("pool_size", upstream.pool_size, 64),
    UKEY("stream_window", upstream.stream_window, 0x7fffffff),
    UKEY("connection_window", upstream.connection_window, 0x7fffffff),
    UKEY("max_response_message", upstream.max_response_message, 1ull << 31),
    UKEY("max_queued_calls", upstream.max_queued_calls, 1000000),
    UKEY("connect_timeout_ms", upstream.connect_timeout_ms, 1ull << 31),
    UKEY("attempt_delay_ms", upstream.attempt_delay_ms, 1ull << 31),
    UKEY("send_lowat_bytes", upstream.send_lowat, 1ull << 30),
    UKEY("ping_silent_ms", upstream.ping_silent_ms, 1ull << 31),
    UKEY("ping_timeout_ms", upstream.ping_timeout_ms, 1ull << 31),
};

#define PLAIN_SECTION(c, obj, name, keys, e) \
    parse_plain_section(c, obj, name, keys, GW_ARRAY_LEN(keys), e)

static int parse_cors(gw_server_config *c, json_t *obj, gw_error *e)
{
    const char *k;
    json_t *v;
    int rc = 0;
    char path[160];
    json_object_foreach(obj, k, v) {
        if (rc)
            break;
        snprintf(path, sizeof path, "cors.%s", k);
        if (strcmp(k, "allowed_origins") == 0) {
            if (!json_is_array(v) || json_array_size(v) > GW_SERVER_MAX_ORIGINS)
                return gw_error_set(e, GW_EINVAL, "%s: expected an array of at most %d strings",
                                    path, GW_SERVER_MAX_ORIGINS);
            for (size_t i = 0; i < c->origin_count; i++)
                free(c->origins[i]);
            c->origin_count = 0;
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) {
                if (!json_is_string(x))
                    return gw_error_set(e, GW_EINVAL, "%s[%zu]: expected a string", path, i);
                c->origins[c->origin_count] = strdup(json_string_value(x));
                if (!c->origins[c->origin_count])
                    return gw_error_set(e, GW_ENOMEM, "out of memory");
                c->origin_count++;
            }
            continue;
        }
        if (strcmp(k, "allowed_headers") == 0) {
            rc = want_joined(v, path, &c->cors_allow_headers, e);
            continue;
        }
        if (strcmp(k, "exposed_headers") == 0) {
            rc = want_joined(v, path, &c->cors_expose_headers, e);
            continue;
        }
        if (strcmp(k, "allow_credentials") == 0) {
            rc = want_bool(v, path, &c->cors_credentials, e);
            continue;
        }
        UINT_KEY("max_age_s", c->cors_max_age_s, 86400 * 365)
        return gw_error_set(e, GW_EINVAL, "unknown key '%s'", path);
    }
    return rc;
}

/* compression: gzip for REST/JSON answers (docs/configuration.md). */
static int parse_compression(gw_server_config *c, json_t *obj, gw_error *e)
{
    const char *k;
    json_t *v;
    int rc = 0;
    char path[160];
    gw_front_compression *z = &c->front.compression;
    json_object_foreach(obj, k, v) {
        if (rc)
            break;
        snprintf(path, sizeof path, "compression.%s", k);
        if (strcmp(k, "enabled") == 0) {
            rc = want_bool(v, path, &z->enabled, e);
            continue;
        }
        UINT_KEY("min_bytes", z->min_bytes, 1ull << 31)
        if (strcmp(k, "level") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 9)
                return gw_error_set(e, GW_EINVAL, "%s: expected an integer from 1 to 9", path);
            z->level = (int)json_integer_value(v);
            continue;
        }
        if (strcmp(k, "types") == 0) {
            const char *types[64];
            size_t i;
            json_t *x;
            if (!json_is_array(v) || json_array_size(v) > GW_ARRAY_LEN(types))
                return gw_error_set(e, GW_EINVAL, "%s: expected an array of at most %zu strings",
                                    path, GW_ARRAY_LEN(types));
            json_array_foreach(v, i, x) {
                if (!json_is_string(x))
                    return gw_error_set(e, GW_EINVAL, "%s[%zu]: expected a string", path, i);
                types[i] = json_string_value(x);
            }
            rc = gw_front_compression_set_types(z, types, json_array_size(v), e);
            if (rc && e) {
                char m[GW_ERROR_MSG_MAX];
                snprintf(m, sizeof m, "%s", e->msg);
                gw_error_set(e, rc, "compression.%s", m);
            }
            continue;
        }
        return gw_error_set(e, GW_EINVAL, "unknown key '%s'", path);
    }
    return rc;
}

/* A list of names into slots (replacing what was there). */
static int want_names(json_t *v, const char *key, char **slots, size_t *count, bool lower,
                      gw_error *e)
{
    if (!json_is_array(v) || json_array_size(v) > GW_SERVER_MAX_REST_NAMES)
        return gw_error_set(e, GW_EINVAL, "%s: expected an array of at most %d strings", key,
                            GW_SERVER_MAX_REST_NAMES);
    for (size_t i = 0; i < *count; i++)
        free(slots[i]);
    *count = 0;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (!json_is_string(x) || !*json_string_value(x))
            return gw_error_set(e, GW_EINVAL, "%s[%zu]: expected a non-empty string", key, i);
        char *n = strdup(json_string_value(x));
        if (!n)
            return gw_error_set(e, GW_ENOMEM, "out of memory");
        for (char *p = n; lower && *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p + ('a' - 'A'));
        slots[(*count)++] = n;
    }
    return 0;
}

#define BOOL_KEY(name, field)                                       \
    if (strcmp(k, name) == 0) {                                     \
        rc = want_bool(v, path, &(field), e);                       \
        continue;                                                   \
    }

static int parse_rest(gw_server_config *c, json_t *obj, gw_error *e)
{
    const char *k;
    json_t *v;
    int rc = 0;
    char path[160];
    json_object_foreach(obj, k, v) {
        if (rc)
            break;
        snprintf(path, sizeof path, "rest.%s", k);
        BOOL_KEY("auto_map_unbound", c->router.auto_map_unbound)
        BOOL_KEY("strict_query", c->rest.strict_query)
        BOOL_KEY("ignore_unknown_body_fields", c->rest.ignore_unknown_body_fields)
        BOOL_KEY("strict_content_type", c->rest.strict_content_type)
        BOOL_KEY("patch_fill_mask", c->rest.patch_fill_mask)
        BOOL_KEY("emit_defaults", c->rest.emit_defaults)
        BOOL_KEY("proto_names", c->rest.proto_names)
        BOOL_KEY("enums_as_ints", c->rest.enums_as_ints)
        BOOL_KEY("grpc_gateway_v1_errors", c->rest.grpc_gateway_v1_errors)
        UINT_KEY("max_depth", c->rest.max_depth, 10000)
        UINT_KEY("max_message_bytes", c->rest.max_message, 1ull << 31)
        if (strcmp(k, "ignored_query") == 0) {
            rc = want_names(v, path, c->rest_ignored, &c->rest_ignored_count, false, e);
            c->rest.ignored_query = (const char *const *)c->rest_ignored;
            c->rest.ignored_query_count = c->rest_ignored_count;
            continue;
        }
        if (strcmp(k, "header_allowlist") == 0) {
            rc = want_names(v, path, c->rest_allow, &c->rest_allow_count, true, e);
            c->rest.header_allowlist = (const char *const *)c->rest_allow;
            c->rest.header_allowlist_count = c->rest_allow_count;
            continue;
        }
        return gw_error_set(e, GW_EINVAL, "unknown key '%s'", path);
    }
    return rc;
}

/* backends.NAME.health */
static int parse_health(gw_server_backend *b, json_t *obj, const char *name, gw_error *e)
{
    const char *k;
    json_t *v;
    int rc = 0;
    char path[200];
    gw_health_options *o = &b->cluster.health;
    json_object_foreach(obj, k, v) {
        if (rc)
            break;
        snprintf(path, sizeof path, "backends.%s.health.%s", name, k);
        if (strcmp(k, "service") == 0) {
            rc = want_string(v, path, &b->health_service, e);
            continue;
        }
        UINT_KEY("interval_ms", o->interval_ms, 1ull << 31)
        UINT_KEY("timeout_ms", o->timeout_ms, 1ull << 31)
        UINT_KEY("unhealthy_threshold", o->unhealthy_threshold, 1000)
        UINT_KEY("healthy_threshold", o->healthy_threshold, 1000)
        return gw_error_set(e, GW_EINVAL, "unknown key '%s'", path);
    }
    return rc;
}

/* One entry of "backends" (docs/configuration.md). */
static int parse_backend(gw_server_backend *b, json_t *obj, const char *name, gw_error *e)
{
    const char *k;
    json_t *v;
    int rc = 0;
    char path[200];
    gw_cluster_options *o = &b->cluster;
    json_object_foreach(obj, k, v) {
        if (rc)
            break;
        snprintf(path, sizeof path, "backends.%s.%s", name, k);
        if (strcmp(k, "endpoints") == 0) {
            if (!json_is_array(v) || json_array_size(v) == 0 ||
                json_array_size(v) > GW_SERVER_MAX_ENDPOINTS)
                return gw_error_set(e, GW_EINVAL, "%s: expected an array of 1 to %d URLs",
                                    path, GW_SERVER_MAX_ENDPOINTS);
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) {
                if (!json_is_string(x))
                    return gw_error_set(e, GW_EINVAL, "%s[%zu]: expected a URL", path, i);
                b->endpoints[b->endpoint_count] = strdup(json_string_value(x));
                if (!b->endpoints[b->endpoint_count])
                    return gw_error_set(e, GW_ENOMEM, "out of memory");
                b->endpoint_count++;
            }
            continue;
        }
        if (strcmp(k, "policy") == 0) {
            const char *p = json_is_string(v) ? json_string_value(v) : "";
            if (strcmp(p, "round_robin") == 0)
                o->policy = GW_LB_ROUND_ROBIN;
            else if (strcmp(p, "least_outstanding") == 0)
                o->policy = GW_LB_LEAST_OUTSTANDING;
            else
                rc = gw_error_set(e, GW_EINVAL,
                                  "%s: expected \"round_robin\" or \"least_outstanding\"", path);
            continue;
        }
        if (strcmp(k, "reflect") == 0) {
            rc = want_bool(v, path, &b->reflect, e);
            continue;
        }
        UINT_KEY("pool_size", o->backend.pool_size, 64)
        UINT_KEY("connect_timeout_ms", o->backend.connect_timeout_ms, 1ull << 31)
        UINT_KEY("max_queued_calls", o->backend.max_queued_calls, 1000000)
        UINT_KEY("max_response_message", o->backend.max_response_message, 1ull << 31)
        UINT_KEY("probe_interval_ms", o->probe_interval_ms, 1ull << 31)
        UINT_KEY("dns_refresh_ms", o->dns_refresh_ms, 1ull << 31)
        if (strcmp(k, "health") == 0 && json_is_object(v)) {
            rc = parse_health(b, v, name, e);
            continue;
        }
        if (strcmp(k, "tls") == 0 && json_is_object(v)) {
            const char *tk;
            json_t *tv;
            json_object_foreach(v, tk, tv) {
                if (rc)
                    break;
                snprintf(path, sizeof path, "backends.%s.tls.%s", name, tk);
                if (strcmp(tk, "ca_file") == 0)
                    rc = want_string(tv, path, &b->ca_file, e);
                else if (strcmp(tk, "cert_file") == 0)
                    rc = want_string(tv, path, &b->cert_file, e);
                else if (strcmp(tk, "key_file") == 0)
                    rc = want_string(tv, path, &b->key_file, e);
                else if (strcmp(tk, "server_name") == 0)
                    rc = want_string(tv, path, &b->server_name, e);
                else
                    return gw_error_set(e, GW_EINVAL, "unknown key '%s'", path);
            }
            continue;
        }
        if (strcmp(k, "health") == 0 || strcmp(k, "tls") == 0)
            return gw_error_set(e, GW_EINVAL, "%s: expected an object", path);
        return gw_error_set(e, GW_EINVAL, "unknown key '%s'", path);
    }
    if (rc == 0 && b->endpoint_count == 0)
        rc = gw_error_set(e, GW_EINVAL, "backends.%s: no endpoints", name);
    /* The cluster options borrow the strings (copied by gw_cluster_new). */
    o->backend.ca_file = b->ca_file;
    o->backend.cert_file = b->cert_file;
    o->backend.key_file = b->key_file;
    o->backend.server_name = b->server_name;
    o->health.service = b->health_service;
    return rc;
}

static int parse_backends(gw_server_config *c, json_t *obj, gw_error *e)
{
    if (!json_is_object(obj))
        return gw_error_set(e, GW_EINVAL, "backends: expected an object of named backends");
    if (json_object_size(obj) > GW_SERVER_MAX_BACKENDS)
        return gw_error_set(e, GW_EINVAL, "backends: at most %d", GW_SERVER_MAX_BACKENDS);
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (strcmp(k, "default") == 0 || !*k)
            return gw_error_set(e, GW_EINVAL, "backends: the name '%s' is reserved", k);
        if (!json_is_object(v))
            return gw_error_set(e, GW_EINVAL, "backends.%s: expected an object", k);
        gw_server_backend *b = &c->backends[c->backend_count++];
        memset(b, 0, sizeof *b);
        gw_cluster_options_init(&b->cluster);
        /* The top-level "upstream" settings are the defaults. */
        b->cluster.backend = c->upstream;
        b->name = strdup(k);
        if (!b->name)
            return gw_error_set(e, GW_ENOMEM, "out of memory");
        int rc = parse_backend(b, v, k, e);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_routes(gw_server_config *c, json_t *arr, gw_error *e)
{
    if (!json_is_array(arr) || json_array_size(arr) > GW_SERVER_MAX_ROUTES)
        return gw_error_set(e, GW_EINVAL, "routes: expected an array of at most %d objects",
                            GW_SERVER_MAX_ROUTES);
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
        json_t *m = json_object_get(x, "match"), *b = json_object_get(x, "backend");
        if (!json_is_object(x) || json_object_size(x) != 2 || !json_is_string(m) ||
            !json_is_string(b) || !*json_string_value(m))
            return gw_error_set(e, GW_EINVAL,
                                "routes[%zu]: expected {\"match\": \"...\", \"backend\": \"...\"}",
                                i);
        gw_server_route *r = &c->routes[c->route_count++];
        r->match = strdup(json_string_value(m));
        r->backend = strdup(json_string_value(b));
        if (!r->match || !r->backend)
            return gw_error_set(e, GW_ENOMEM, "out of memory");
    }
    return 0;
}

/* "admin": the operational endpoints (docs/operations.md). */
static int parse_admin(gw_server_config *c, json_t *obj, gw_error *e)
{
    const char *k;
    json_t *v;
    int rc = 0;
    char path[160];
    json_object_foreach(obj, k, v) {
        if (rc)
            break;
        snprintf(path, sizeof path, "admin.%s", k);
        if (strcmp(k, "listen") == 0) {
            rc = want_string(v, path, &c->admin_listen, e);
            continue;
        }
        if (strcmp(k, "prefix") == 0) {
            rc = want_string(v, path, &c->ops_prefix, e);
            if (rc == 0 && c->ops_prefix[0] &&
                (c->ops_prefix[0] != '/' || c->ops_prefix[strlen(c->ops_prefix) - 1] == '/'))
                rc = gw_error_set(e, GW_EINVAL, "%s: expected \"\" or a path like \"/ops\"",
                                  path);
            continue;
        }
        if (strcmp(k, "on_main_port") == 0) {
            rc = want_bool(v, path, &c->ops_on_main_port, e);
            continue;
        }
        if (strcmp(k, "metrics") == 0) {
            rc = want_bool(v, path, &c->metrics_enabled, e);
            continue;
        }
        UINT_KEY("drain_delay_ms", c->drain_delay_ms, 600000)
        if (strcmp(k, "reload_endpoint") == 0) {
            rc = want_bool(v, path, &c->reload_endpoint, e);
            continue;
        }
        if (strcmp(k, "ready_requires_connection") == 0) {
            rc = want_bool(v, path, &c->ready_requires_connection, e);
            continue;
        }
        return gw_error_set(e, GW_EINVAL, "unknown key '%s'", path);
    }
    return rc;
}

static const cfg_key tls_keys[] = {
    SKEY("cert_file", tls_cert),
    SKEY("key_file", tls_key),
    SKEY("client_ca_file", tls_client_ca),
    SKEY("priorities", tls_priorities),
};

/* "backend_tls": the `default` backend's TLS files and name. */
static const cfg_key backend_tls_keys[] = {
    SKEY("ca_file", backend_ca),
    SKEY("cert_file", backend_cert),
    SKEY("key_file", backend_key),
    SKEY("server_name", backend_server_name),
};

/* A string, or false to turn the feature off. */
static int want_string_or_off(json_t *v, const char *key, char **out, gw_error *e)
{
    if (json_is_false(v)) {
        free(*out);
        *out = NULL;
        return 0;
    }
    if (!json_is_string(v) || !*json_string_value(v))
        return gw_error_set(e, GW_EINVAL, "%s: expected a non-empty string or false", key);
    return want_string(v, key, out, e);
}

/* limits.max_message_bytes is "one message, either direction": responses
 * are bounded by upstream.max_response_message, so a file that sets only the
 * former gets it for both, and so do named backends that set neither. An
 * explicit max_response_message (top level or per backend) still wins. */
static void link_message_limits(gw_server_config *c, json_t *root)
{
    if (!json_object_get(json_object_get(root, "limits"), "max_message_bytes") ||
        json_object_get(json_object_get(root, "upstream"), "max_response_message"))
        return;
    c->upstream.max_response_message = c->call.max_message;
    json_t *backends = json_object_get(root, "backends");
    for (size_t i = 0; i < c->backend_count; i++) {
        gw_server_backend *b = &c->backends[i];
        if (!json_object_get(json_object_get(backends, b->name), "max_response_message"))
            b->cluster.backend.max_response_message = c->call.max_message;
    }
}

int gw_server_config_parse(gw_server_config *c, const char *text, size_t len,
                           const char *source, gw_error *e)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    int rc = 0;
    if (!root)
        return gw_error_set(e, GW_EPARSE, "%s:%d:%d: %s", source, je.line, je.column, je.text);
    if (!json_is_object(root)) {
        rc = gw_error_set(e, GW_EPARSE, "%s: the configuration must be a JSON object", source);
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        const char *path = k;
        if (strcmp(k, "listen") == 0)
            rc = want_string(v, k, &c->listen, e);
        else if (strcmp(k, "backend") == 0)
            rc = want_string(v, k, &c->backend, e);
        else if (strcmp(k, "descriptors") == 0) {
            if (!json_is_array(v) || json_array_size(v) > GW_SERVER_MAX_DESCRIPTORS) {
                rc = gw_error_set(e, GW_EINVAL, "descriptors: expected an array of at most %d "
                                  "file names", GW_SERVER_MAX_DESCRIPTORS);
                break;
            }
            for (size_t i = 0; i < c->descriptor_count; i++)
                free(c->descriptors[i]);
            c->descriptor_count = 0;
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) {
                if (!json_is_string(x)) {
                    rc = gw_error_set(e, GW_EINVAL, "descriptors[%zu]: expected a string", i);
                    break;
                }
                c->descriptors[c->descriptor_count] = strdup(json_string_value(x));
                if (!c->descriptors[c->descriptor_count]) {
                    rc = gw_error_set(e, GW_ENOMEM, "out of memory");
                    break;
                }
                c->descriptor_count++;
            }
        } else if (strcmp(k, "workers") == 0) {
            uint64_t u = 0;
            rc = want_uint(v, k, 1024, &u, e);
            c->workers = (unsigned)u;
        } else if (strcmp(k, "drain_timeout_ms") == 0) {
            uint64_t u = 0;
            rc = want_uint(v, k, 1ull << 31, &u, e);
            c->drain_timeout_ms = (uint32_t)u;
        } else if (strcmp(k, "forward_cookies") == 0) {
            rc = want_bool(v, k, &c->call.forward_cookies, e);
        } else if (strcmp(k, "log_level") == 0) {
            static const char *const names[] = {"debug", "info", "warn", "error", "off"};
            rc = gw_error_set(e, GW_EINVAL, "log_level: expected debug, info, warn, error or off");
            for (size_t i = 0; json_is_string(v) && i < GW_ARRAY_LEN(names); i++)
                if (strcmp(json_string_value(v), names[i]) == 0) {
                    c->log_level = (gw_log_level)i;
                    gw_error_clear(e);
                    rc = 0;
                }
        } else if (strcmp(k, "admin") == 0) {
            rc = json_is_object(v) ? parse_admin(c, v, e)
                                   : gw_error_set(e, GW_EINVAL, "admin: expected an object");
        } else if (strcmp(k, "tls") == 0) {
            rc = json_is_object(v) ? PLAIN_SECTION(c, v, "tls", tls_keys, e)
                                   : gw_error_set(e, GW_EINVAL, "tls: expected an object");
        } else if (strcmp(k, "backend_tls") == 0) {
            rc = json_is_object(v) ? PLAIN_SECTION(c, v, "backend_tls", backend_tls_keys, e)
                                   : gw_error_set(e, GW_EINVAL,
                                                  "backend_tls: expected an object");
        } else if (strcmp(k, "debug_errors") == 0) {
            rc = want_bool(v, k, &c->debug_errors, e);
        } else if (strcmp(k, "backends") == 0) {
            if (c->backend_count)
                rc = gw_error_set(e, GW_EINVAL, "backends: given twice");
            else
                rc = parse_backends(c, v, e);
        } else if (strcmp(k, "routes") == 0) {
            if (c->route_count)
                rc = gw_error_set(e, GW_EINVAL, "routes: given twice");
            else
                rc = parse_routes(c, v, e);
        } else if (strcmp(k, "reflect") == 0) {
            rc = want_bool(v, k, &c->reflect, e);
        } else if (strcmp(k, "reflect_timeout_ms") == 0) {
            uint64_t u = 0;
            rc = want_uint(v, k, 600000, &u, e);
            c->reflect_timeout_ms = (uint32_t)u;
        } else if (strcmp(k, "access_log") == 0) {
            rc = want_string_or_off(v, k, &c->access_log, e);
        } else if (strcmp(k, "openapi_path") == 0) {
            rc = want_string_or_off(v, k, &c->openapi_path, e);
            if (rc == 0 && c->openapi_path && c->openapi_path[0] != '/')
                rc = gw_error_set(e, GW_EINVAL, "openapi_path: expected a path starting with /");
        } else if (strcmp(k, "static_dir") == 0) {
            rc = want_string_or_off(v, k, &c->static_dir, e);
        } else if (strcmp(k, "limits") == 0 && json_is_object(v)) {
            rc = PLAIN_SECTION(c, v, "limits", limits_keys, e);
        } else if (strcmp(k, "cors") == 0 && json_is_object(v)) {
            rc = parse_cors(c, v, e);
        } else if (strcmp(k, "front") == 0) {
            rc = json_is_object(v) ? PLAIN_SECTION(c, v, "front", front_keys, e)
                                   : gw_error_set(e, GW_EINVAL, "front: expected an object");
        } else if (strcmp(k, "upstream") == 0 && json_is_object(v)) {
            rc = PLAIN_SECTION(c, v, "upstream", upstream_keys, e);
        } else if (strcmp(k, "compression") == 0) {
            rc = json_is_object(v) ? parse_compression(c, v, e)
                                   : gw_error_set(e, GW_EINVAL, "compression: expected an object");
        } else if (strcmp(k, "websocket") == 0) {
            rc = json_is_object(v) ? PLAIN_SECTION(c, v, "websocket", websocket_keys, e)
                                   : gw_error_set(e, GW_EINVAL, "websocket: expected an object");
        } else if (strcmp(k, "rest") == 0) {
            rc = json_is_object(v) ? parse_rest(c, v, e)
                                   : gw_error_set(e, GW_EINVAL, "rest: expected an object");
        } else if (strcmp(k, "limits") == 0 || strcmp(k, "cors") == 0 ||
                   strcmp(k, "upstream") == 0) {
            rc = gw_error_set(e, GW_EINVAL, "%s: expected an object", path);
        } else {
            rc = gw_error_set(e, GW_EINVAL, "unknown key '%s'", path);
        }
        if (rc)
            break;
    }
    if (rc == 0)
        link_message_limits(c, root);
    if (rc)
        gw_error_prefix(e, "%s", source);
out:
    json_decref(root);
    return rc;
}

int gw_server_config_load(gw_server_config *c, const char *path, gw_error *e)
{
    uint8_t *data;
    size_t len;
    int rc = gw_read_file(path, 1u << 20, &data, &len, e);
    if (rc)
        return rc;
    rc = gw_server_config_parse(c, (const char *)data, len, path, e);
    free(data);
    return rc;
}
