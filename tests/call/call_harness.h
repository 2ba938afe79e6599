/*
 * A stage for one call object (src/call) without libmicrohttpd and without
 * a backend: the test is both the client and the backend.
 *
 * The client side is a `th_client`, which serves either as a face
 * (gw_call_start_face, the WebSocket path) or as a front request: the
 * gw_front_req_* functions the call uses are wrapped at link time
 * (-Wl,--wrap, tests/call/meson.build), so gw_call_start and
 * gw_call_rest_dispatch take a th_client as their gw_front_req. Like the
 * real front, respond and respond_stream copy what they are given (one
 * allocation each, which an injected failure can refuse with GW_ENOMEM).
 *
 * The backend side replaces the upstream call: gw_call_options.upstream_start
 * is th_upstream_start (it allocates the handle, as gw_ucall_start does) and
 * the gw_ucall_* functions the call uses are wrapped. The test delivers
 * headers, messages and the status through th_backend_*; the handle is
 * gone once the call cancelled it or on_complete returned.
 */
#ifndef GW_TEST_CALL_HARNESS_H
#define GW_TEST_CALL_HARNESS_H

#include "call/call.h"

typedef struct th_client {
    gw_loop *loop;
    const char *method, *target, *path;  /* the front request's */
    const gw_front_header *hdrs;
    size_t nhdrs;
    /* Filled by the call: */
    const gw_front_req_ops *ops;  /* attached (front) or gw_call_face_ops */
    void *owner;
    int answers;         /* respond / respond_stream that succeeded */
    int refused;         /* respond / respond_stream refused (out of memory) */
    int extra_answers;   /* an answer after the first: a bug */
    bool streaming;      /* the answer is respond_stream + read */
    int status;
    gw_buf head;         /* "name: value\n", as given */
    gw_buf body;         /* the whole body, or what read returned */
    int close_nows;
    bool eof, aborted;   /* read returned GW_FRONT_EOF / GW_FRONT_ABORT */
    bool gone;           /* the test made the client go away */
    size_t read_max;     /* bytes per read (default 1000) */
} th_client;

extern const gw_call_face th_face;
static inline gw_front_req *th_req(th_client *c) { return (gw_front_req *)(void *)c; }

/* The value of a header of the answer, or NULL (in th_client.head). */
const char *th_answer_header(const th_client *c, const char *name, char *buf, size_t cap);
/* Reads the streamed body until the call has nothing more for now. */
void th_client_read(th_client *c);
/* Request body, then its end (offering the rest again while the call
 * holds it back, letting the backend take its pending bytes). */
void th_client_send(th_client *c, const uint8_t *body, size_t len);
/* The client goes away (on_client_gone), as a front or face reports it. */
void th_client_gone(th_client *c);
/* The last callback; completed as the front would say. */
void th_client_close(th_client *c);
void th_client_free(th_client *c);

/* ---- the backend ---------------------------------------------------------------- */

typedef struct th_upstream {
    int starts, cancels, completes;
    int misuse;          /* a gw_ucall_* call on a handle that is gone */
    size_t write_cap;    /* bytes gw_ucall_write takes per call; 0: all */
    gw_buf sent;         /* request bytes the backend got */
    bool send_closed;
    size_t delivered;    /* wire bytes of the messages delivered */
    size_t consumed;     /* ... and acknowledged with gw_ucall_consume */
} th_upstream;
extern th_upstream th_up;

void th_upstream_reset(void);
int th_upstream_start(void *ctx, const gw_method_def *m, const gw_ucall_params *p,
                      const gw_ucall_handlers *h, void *owner, gw_ucall **out, gw_error *e);
/* Whether an upstream call is open. */
bool th_backend_live(void);
/* Each does nothing once the handle is gone. */
void th_backend_headers(const gw_header *md, size_t n);
void th_backend_message(const uint8_t *msg, size_t len);
void th_backend_writable(void);
void th_backend_complete(const gw_call_status *st);

#endif
