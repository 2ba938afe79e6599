/*
 * Hooks between upstream.c and the modules built on it inside src/upstream
 * (cluster.c). Not part of the public API.
 */
#ifndef GW_UPSTREAM_INTERNAL_H
#define GW_UPSTREAM_INTERNAL_H

#include "upstream/upstream.h"

/*
 * A call observer sees how a call ended before its owner does, and may move
 * a call the backend could not even send (the backend is unreachable) to
 * another backend of the same loop: such a call never reached any server,
 * so starting it elsewhere is always safe. Used by clusters.
 */
typedef struct gw_ucall_observer {
    /* Runs just before the owner's on_complete (not after a cancel). */
    void (*on_done)(void *ctx, gw_backend *b, const gw_call_status *st);
    /* The call cannot be sent on `from`: return another backend (created
     * with the same options, on the same loop) to queue it there, or NULL
     * to let it fail with UNAVAILABLE. */
    gw_backend *(*redirect)(void *ctx, gw_backend *from);
} gw_ucall_observer;

/* Sets the observer of a call just started (obs is borrowed; both must
 * outlive the call). */
void gw_ucall_set_observer(gw_ucall *c, const gw_ucall_observer *obs, void *ctx);

/* An opaque pointer for the backend's owner (the cluster's endpoint). */
void gw_backend_set_user(gw_backend *b, void *user);
void *gw_backend_user(const gw_backend *b);
gw_loop *gw_backend_loop(const gw_backend *b);

/* Starts a call that completes at once (from the loop, as usual) with
 * UNAVAILABLE and `message`: a cluster with no endpoint up still honours
 * the gw_ucall_start contract. Validates params like gw_ucall_start and
 * returns the same errors. */
int gw_ucall_start_failed(gw_backend *b, const gw_ucall_params *p, const gw_ucall_handlers *h,
                          void *owner, const char *message, gw_ucall **out, gw_error *e);

/* Feeds one ServerReflectionResponse (msg) to a fresh reflection run on b
 * that has `due` answers outstanding and no call; returns 0 when the run
 * took it, else the error the run would end with (message in e). *files
 * gets the number of files kept. For the fuzz target and unit tests. */
int gw_reflect_feed_test(gw_backend *b, const uint8_t *msg, size_t len, size_t due,
                         size_t *files, gw_error *e);

#endif
