/*
 * reflect — a gRPC server-reflection client: fetches the FileDescriptorProtos
 * of a backend's services (grpc.reflection.v1, falling back to v1alpha when
 * the backend answers UNIMPLEMENTED), follows their dependencies until the
 * set is closed, and builds a gw_registry from them.
 *
 * The messages are encoded and decoded by hand (they are small); nothing
 * here needs protobuf-c.
 */
#ifndef GW_UPSTREAM_REFLECT_H
#define GW_UPSTREAM_REFLECT_H

#include "upstream/upstream.h"

typedef struct gw_registry gw_registry;
typedef struct gw_reflect gw_reflect;

/* What a reflection run collected. Valid during the done callback only. */
typedef struct gw_reflect_result {
    const char *url;                   /* the backend */
    const char *version;               /* "v1" or "v1alpha" */
    size_t service_count;              /* services asked for (after list_services) */
    const char *const *services;
    size_t file_count;                 /* serialized FileDescriptorProtos, in arrival order */
    const char *const *file_names;
    const uint8_t *const *files;
    const size_t *file_lens;
} gw_reflect_result;

/* rc is 0 (res set) or a negative gw_err (e says why, starting with
 * "reflection on URL failed: "). */
typedef void (*gw_reflect_done_cb)(void *owner, int rc, const gw_reflect_result *res,
                                   const gw_error *e);

/* Limits on what one run accepts from a backend. */
#define GW_REFLECT_MAX_FILES 4096u
#define GW_REFLECT_MAX_BYTES (64u * 1024 * 1024)

/*
 * Starts a reflection run on backend b (borrowed; must outlive the run).
 * services: NULL-terminated full names ("demo.v1.UserService"), or NULL/empty
 * for every service the backend lists except grpc.reflection.*. timeout_ms
 * bounds the whole run (both versions together; 0: 10000). done runs
 * exactly once from the loop, then the handle is gone; or the function
 * returns an error and done never runs. Returns 0, GW_EINVAL or GW_ENOMEM.
 */
int gw_reflect_start(gw_backend *b, const char *const *services, uint32_t timeout_ms,
                     gw_reflect_done_cb done, void *owner, gw_reflect **out, gw_error *e);
/* Abandons the run: done never runs, the handle is gone. */
void gw_reflect_cancel(gw_reflect *r);

/* Builds a registry from a result (the files are copied). Returns 0 or the
 * errors of gw_registry_builder_build, with e prefixed by the backend. */
int gw_reflect_build_registry(const gw_reflect_result *res, gw_registry **out, gw_error *e);

/*
 * Blocking convenience for startup and reload threads: runs a temporary
 * loop and backend (options o, NULL for defaults) for url, fetches the
 * services (as for gw_reflect_start) within timeout_ms and builds the
 * registry. Returns 0 and *out (the caller owns it), or an error with e
 * "reflection on URL failed: <reason>": GW_EINVAL (bad URL), GW_EIO (the
 * backend failed the call: unreachable, no reflection service, timeout),
 * GW_ENOTFOUND (a service or file unknown to the backend, a dependency
 * missing), GW_EPARSE (a malformed answer), GW_ELIMIT, GW_ENOMEM.
 */
int gw_reflect_fetch_registry(const char *url, const char *const *services, uint32_t timeout_ms,
                              gw_registry **out, gw_error *e);
int gw_reflect_fetch_registry_opts(const char *url, const gw_backend_options *o,
                                   const char *const *services, uint32_t timeout_ms,
                                   gw_registry **out, gw_error *e);

/* The same, adding the files to a caller's builder instead (several
 * reflecting backends into one registry). A file with the same name and
 * other bytes than one already in the builder is GW_EINVAL (two backends
 * disagree about it). into is borrowed. */
typedef struct gw_registry_builder gw_registry_builder;
int gw_reflect_fetch_into(const char *url, const gw_backend_options *o,
                          const char *const *services, uint32_t timeout_ms,
                          gw_registry_builder *into, gw_error *e);

/* Pure helpers for tests: a ServerReflectionRequest with one of the fields
 * 3 (file_by_filename), 4 (file_containing_symbol) or 7 (list_services),
 * appended to out as a gRPC frame. Returns 0, GW_ELIMIT or GW_ENOMEM. */
int gw_reflect_request_frame(gw_buf *out, uint32_t field, const char *value);

#endif
