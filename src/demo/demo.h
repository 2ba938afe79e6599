/*
 * demo — the embedded demo gRPC service: every method of schemas/demo
 * (demo.v1.UserService, demo.v1.EchoService) over an in-memory store,
 * grpc.health.v1.Health/Check and server reflection (v1 and v1alpha), as a
 * real HTTP/2 server (h2c, prior knowledge) built on nghttp2 and driven by a
 * gw_loop. `grpcgate demo-service` runs it alone; `grpcgate demo` runs it
 * in-process on its own thread. Behaviour and limits: docs/demo-service.md.
 *
 * Threading: a service belongs to the thread that runs its loop. The one
 * exception is gw_demo_service_stop, which any thread (or a signal handler)
 * may call.
 *
 * Log lines (stderr, through gw_log): a call that the client cancels while
 * it runs (RST_STREAM, or the connection going away) is logged at info level
 * as `demo: call /demo.v1.EchoService/Download cancelled by client`; tests
 * grep for that line.
 */
#ifndef GW_DEMO_H
#define GW_DEMO_H

#include "base/base.h"
#include "loop/loop.h"

typedef struct gw_demo_service gw_demo_service;

/*
 * Listens on host:port (port 0 picks a free port; host is a numeric address
 * or a name, resolved with getaddrinfo, first address that binds wins) and
 * serves on loop. The service takes the loop's wake-up callback
 * (gw_loop_set_wakeup_cb) for gw_demo_service_stop: a loop that runs a demo
 * service must not use it for anything else.
 *
 * loop is borrowed and must outlive the service. host is copied.
 * Errors: GW_EIO (resolve, socket, bind or listen failed; e says which),
 * GW_EPARSE (the embedded descriptor set does not decode: a build bug),
 * GW_ENOMEM.
 */
int gw_demo_service_new(gw_loop *loop, const char *host, int port,
                        gw_demo_service **out, gw_error *e);

/* The port it listens on (the chosen one when 0 was asked). */
int gw_demo_service_port(const gw_demo_service *s);

/*
 * Asks the service to stop, from any thread or a signal handler
 * (async-signal-safe: an atomic store and a write to an eventfd). In the loop
 * thread, soon after, the service closes its listener and every connection
 * (running calls count as cancelled) and calls gw_loop_stop, so that
 * gw_loop_run returns; then call gw_demo_service_del there.
 */
void gw_demo_service_stop(gw_demo_service *s);

/* Closes everything (if not done yet) and frees the service. Loop thread
 * only. NULL is allowed. */
void gw_demo_service_del(gw_demo_service *s);

/* Calls the clients cancelled (RST_STREAM or connection loss while the call
 * ran) since the service started. Any thread. */
uint64_t gw_demo_service_cancelled(const gw_demo_service *s);

/*
 * The demo API's FileDescriptorSet (build/schemas/demo.pb: schemas/demo and
 * every import, plus google/rpc/status.proto and error_details.proto),
 * embedded at build time; static storage, never freed. This is what
 * `grpcgate demo` gives the gateway.
 */
const uint8_t *gw_demo_descriptor_set(size_t *len);

#endif
