/*
 * openapi — an OpenAPI 3.0.3 document for every REST route a registry gives
 * the gateway. Pure: no I/O. The routes are taken from a gw_router built
 * from the registry with the same options the gateway uses, and every
 * documented operation is checked by matching a sample request against that
 * router, so the document cannot list a route the gateway does not serve.
 *
 * Schemas follow the JSON mapping of src/codec (int64/uint64 as strings,
 * enums by name, bytes as base64, well-known types in their string forms,
 * wrappers nullable), request binding follows src/rest (path, body, query
 * parameters for every other leaf field), and errors are google.rpc.Status.
 * docs/openapi.md lists the mapping choices.
 *
 * Used by `grpcgate openapi` and meant for the server's /openapi.json: the
 * document depends only on the registry and the options, so a server
 * generates it once per registry snapshot and serves the bytes.
 */
#ifndef GW_OPENAPI_H
#define GW_OPENAPI_H

#include <stdbool.h>

#include "base/base.h"
#include "schema/schema.h"

typedef struct gw_openapi_options {
    const char *title;        /* info.title (borrowed); NULL: "grpcgate" */
    const char *version;      /* info.version (borrowed); NULL: "0.0.0" */
    const char *server_url;   /* servers[0].url (borrowed); NULL: no servers */
    bool proto_names;         /* proto field names ("created_at") in schemas
                                 and query parameters; set it when the
                                 gateway prints proto names (default off) */
    bool auto_map_unbound;    /* as gw_router_options (default on) */
    bool compact;             /* one line instead of two-space indentation */
} gw_openapi_options;

/* Defaults as described on each member. */
void gw_openapi_options_init(gw_openapi_options *o);

/*
 * Generates the document as JSON text appended to out (out->max bounds it;
 * a trailing newline is included). r is borrowed. Routes the router knows
 * but OpenAPI cannot express (an HTTP method that is not one of OpenAPI's
 * eight, a path key two routes of the same method would share) are listed
 * under the top-level "x-grpcgate-unlisted" with the reason instead.
 * e says what went wrong: for a registry the router rejects, the router's
 * message (the gateway refuses to load it the same way).
 * Returns 0, GW_EPARSE / GW_ENOTFOUND / GW_EINVAL / GW_ELIMIT (the router's
 * errors), GW_ELIMIT (document over out->max), GW_ENOMEM. On error out is
 * back at its original length.
 */
int gw_openapi_generate(const gw_registry *r, const gw_openapi_options *o, gw_buf *out,
                        gw_error *e);

#endif
