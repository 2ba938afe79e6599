/*
 * ws — WebSocket calls (RFC 6455), the only module that includes wslay.h.
 * The opening handshake arrives as an ordinary request through the front
 * (gw_ws_accept checks it and answers 101 through gw_front_req_upgrade);
 * the upgraded socket is then driven from the worker's loop, with wslay for
 * the frame layer, and each WebSocket carries one call through the call
 * object as a face (call.h, gw_call_face):
 *   - `grpc-websockets` (improbable-eng's WebsocketTransport, grpcwebproxy):
 *     the pure mapping is wsproto/, the adapter gw_call_grpcws;
 *   - no subprotocol: JSON, one ProtoJSON message per text frame each way,
 *     the status last in the REST error shape (adapter gw_call_wsjson).
 * Flow control both ways: a request the backend cannot take yet stops the
 * reading of the socket (the rest waits in a bounded inbox); response bytes
 * are pulled from the call only while wslay's send queue is under
 * GW_WS_SEND_HIGH, so the backend's HTTP/2 window closes behind a client
 * that does not read. Keepalive pings, an idle timeout, a deadline for the
 * first message and one for a stalled send close what is left hanging.
 * See docs/websocket.md for the choices and the memory per call.
 *
 * Threading: a hub belongs to one loop; everything runs on its thread.
 */
#ifndef GW_WS_H
#define GW_WS_H

#include "call/call.h"

typedef struct gw_ws_hub gw_ws_hub;

/* Bytes queued towards the client beyond which the call is not asked for
 * more response bytes. */
#define GW_WS_SEND_HIGH (64u * 1024u)

typedef struct gw_ws_options {
    uint32_t ping_interval_ms;   /* a ping after this long without one; 0: none. 30000 */
    uint32_t pong_timeout_ms;    /* no pong (or any frame) this long after a ping:
                                    the client is gone. 20000 */
    uint32_t idle_timeout_ms;    /* no message either way: the call ends UNAVAILABLE.
                                    0: none. 300000 */
    uint32_t header_timeout_ms;  /* the first message (header block) must come within
                                    this; 10000 */
    uint32_t send_timeout_ms;    /* bytes queued and none taken by the socket this long:
                                    closed. 30000 */
    uint32_t close_timeout_ms;   /* wait for the client's close reply; 5000 */
    size_t max_send_queue;       /* bytes queued towards the client (pongs and close
                                    included) beyond which the client counts as not
                                    reading and is closed; 1 MiB */
    size_t max_header_block;     /* the first message; 16 KiB */
} gw_ws_options;

void gw_ws_options_init(gw_ws_options *o);

/* Returns NULL when out of memory. */
gw_ws_hub *gw_ws_hub_new(gw_loop *l);
/* After the front is deleted (it shuts the open sessions down). */
void gw_ws_hub_del(gw_ws_hub *h);
/* Sessions open (handshake answered, not yet closed). */
size_t gw_ws_hub_active(const gw_ws_hub *h);
/* Graceful stop: sessions without a call close now (1001); the others
 * close with 1001 once their call ends. */
void gw_ws_hub_drain(gw_ws_hub *h);
/* The drain timed out: every call ends UNAVAILABLE ("server shutting
 * down"), its status and a 1001 close are written as far as the socket
 * takes them, and the session closes. */
void gw_ws_hub_cancel_all(gw_ws_hub *h);

/* What the server decided about one upgrade request. */
typedef struct gw_ws_params {
    const gw_method_def *method;   /* grpc-websockets: the method of the path
                                      (/pkg.Service/Method); NULL: unknown,
                                      answered UNIMPLEMENTED */
    const gw_method_def *json_method; /* JSON (no subprotocol): the method of a
                                      REST route or auto route of the path */
    const gw_rest_options *rest;   /* JSON printing options; borrowed like call */
    const gw_call_options *call;   /* borrowed; kept alive by hold/release */
    const gw_ws_options *ws;       /* copied */
    bool origin_ok;                /* the Origin (if any) is an allowed one */
    /* Keep what method/call live in (the configuration snapshot) from the
     * handshake until the session ends; release runs once. May be NULL. */
    void (*hold)(void *ctx);
    void (*release)(void *ctx);
    void *hold_ctx;
} gw_ws_params;

/* True if r asks for a WebSocket (Upgrade: websocket). */
bool gw_ws_is_upgrade(gw_front_req *r);

/*
 * Answers the upgrade request r: 403 for a disallowed Origin, 426 with
 * Sec-WebSocket-Version: 13 for another version, 400 for a missing or bad
 * key, a missing "Connection: upgrade", a method other than GET, or no
 * subprotocol the gateway speaks; else 101 and the session starts. Returns
 * 0 (upgraded) or the error that was answered.
 */
int gw_ws_accept(gw_ws_hub *h, gw_front_req *r, const gw_ws_params *p);

#endif
