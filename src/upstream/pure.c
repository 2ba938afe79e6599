/*
 * The pure parts of the upstream client: HTTP/2 error code mapping, the
 * reconnect backoff schedule, the message deframer and the receive flow
 * control accounting.
 * No I/O and no clock here, so the unit tests drive them byte for byte.
 */
#include "upstream/upstream.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

/* ---- HTTP/2 error codes ------------------------------------------------------ */

int gw_upstream_code_from_h2(uint32_t h2_error)
{
    switch (h2_error) {
    case 0x7: return GW_CODE_UNAVAILABLE;          /* REFUSED_STREAM */
    case 0x8: return GW_CODE_CANCELLED;            /* CANCEL */
    case 0xb: return GW_CODE_RESOURCE_EXHAUSTED;   /* ENHANCE_YOUR_CALM */
    case 0xc: return GW_CODE_PERMISSION_DENIED;    /* INADEQUATE_SECURITY */
    default: return GW_CODE_INTERNAL;
    }
}

/* ---- backoff ----------------------------------------------------------------- */

static uint32_t xorshift_random(void *ctx)
{
    uint64_t *s = ctx;
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return (uint32_t)(x >> 32);
}

void gw_backoff_init(gw_backoff *b, uint32_t (*random)(void *ctx), void *ctx,
                     uint64_t seed)
{
    b->current_ms = GW_BACKOFF_INITIAL_MS;
    b->seed = seed;
    if (random) {
        b->random = random;
        b->random_ctx = ctx;
    } else {
        b->random = xorshift_random;
        b->random_ctx = &b->seed;
    }
}

void gw_backoff_reset(gw_backoff *b) { b->current_ms = GW_BACKOFF_INITIAL_MS; }

uint64_t gw_backoff_next(gw_backoff *b)
{
    uint64_t base = b->current_ms;
    /* r in [0, 2^32): the factor runs over [0.8, 1.2). */
    uint64_t r = b->random(b->random_ctx);
    uint64_t delay = base * 4 / 5 + (base * 2 / 5 * r >> 32);
    uint64_t next = base * 8 / 5;
    b->current_ms = next > GW_BACKOFF_MAX_MS ? GW_BACKOFF_MAX_MS : next;
    /* Never wait longer than the cap, even with positive jitter. */
    return delay > GW_BACKOFF_MAX_MS ? GW_BACKOFF_MAX_MS : delay;
}

/* ---- deframer ---------------------------------------------------------------- */

void gw_deframer_init(gw_deframer *d, size_t max_message)
{
    memset(d, 0, sizeof *d);
    d->max_message = max_message;
    d->identity_only = true;
    gw_buf_init(&d->body, max_message);
    gw_buf_init(&d->inflated, max_message);
}

void gw_deframer_free(gw_deframer *d)
{
    gw_buf_free(&d->body);
    gw_buf_free(&d->inflated);
}

int gw_deframer_set_encoding(gw_deframer *d, const char *enc, size_t n, gw_error *e)
{
    d->gzip = false;
    d->identity_only = true;
    d->encoding[0] = 0;
    if (!enc || gw_strn_case_eq(enc, n, "identity"))
        return 0;
    snprintf(d->encoding, sizeof d->encoding, "%.*s", (int)GW_MIN(n, 20), enc);
    if (gw_strn_case_eq(enc, n, "gzip")) {
        d->gzip = true;
        d->identity_only = false;
        return 0;
    }
    return gw_error_set(e, GW_EINVAL, "unsupported grpc-encoding \"%s\" in response",
                        d->encoding);
}

bool gw_deframer_idle(const gw_deframer *d)
{
    return d->prefix_len == 0;
}

/* Inflates one gzip member into d->inflated, refusing output beyond
 * max_message as soon as it would be produced. */
static int inflate_message(gw_deframer *d, const uint8_t *in, size_t len, gw_error *e)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return gw_error_set(e, GW_ENOMEM, "zlib: cannot initialise inflate");
    gw_buf_reset(&d->inflated);
    int rc = 0;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    for (;;) {
        if (d->inflated.len >= d->max_message) {
            /* Full: one more byte of output means the message is too big. */
            uint8_t probe;
            zs.next_out = &probe;
            zs.avail_out = 1;
            int zr = inflate(&zs, Z_NO_FLUSH);
            if (zs.avail_out == 0) {
                rc = gw_error_set(e, GW_ELIMIT,
                                  "message %llu decompresses to more than %zu bytes",
                                  (unsigned long long)d->messages + 1, d->max_message);
                goto out;
            }
            if (zr == Z_STREAM_END)
                break;
            rc = gw_error_set(e, GW_EPARSE, "message %llu: corrupt gzip data",
                              (unsigned long long)d->messages + 1);
            goto out;
        }
        size_t room = d->inflated.cap ? d->inflated.cap - d->inflated.len - 1 : 0;
        if (room == 0) {
            size_t want = GW_MIN(GW_MAX(d->inflated.len, (size_t)4096),
                                 d->max_message - d->inflated.len);
            rc = gw_buf_reserve(&d->inflated, want);
            if (rc) {
                gw_error_set(e, rc, "message %llu: cannot grow decompression buffer",
                             (unsigned long long)d->messages + 1);
                goto out;
            }
            continue;
        }
        zs.next_out = d->inflated.data + d->inflated.len;
        zs.avail_out = (uInt)GW_MIN(room, (size_t)UINT32_MAX);
        uInt before = zs.avail_out;
        int zr = inflate(&zs, Z_NO_FLUSH);
        d->inflated.len += before - zs.avail_out;
        d->inflated.data[d->inflated.len] = 0;
        if (zr == Z_STREAM_END)
            break;
        if (zr == Z_OK && zs.avail_out == 0)
            continue;
        if (zr == Z_OK || (zr == Z_BUF_ERROR && zs.avail_in == 0))
            zr = Z_DATA_ERROR; /* input ended inside the gzip member */
        rc = gw_error_set(e, zr == Z_MEM_ERROR ? GW_ENOMEM : GW_EPARSE,
                          "message %llu: corrupt gzip data",
                          (unsigned long long)d->messages + 1);
        goto out;
    }
out:
    inflateEnd(&zs);
    return rc;
}

static int deliver(gw_deframer *d, const uint8_t *body, gw_deframer_cb cb, void *ctx,
                   gw_error *e)
{
    size_t wire_len = 5 + d->body_len;
    bool compressed = d->prefix[0] & 1;
    d->prefix_len = 0;
    if (compressed) {
        int rc = inflate_message(d, body, d->body_len, e);
        if (rc)
            return rc;
        d->messages++;
        return cb(ctx, d->inflated.data ? d->inflated.data : (const uint8_t *)"",
                  d->inflated.len, wire_len);
    }
    d->messages++;
    return cb(ctx, body, d->body_len, wire_len);
}

int gw_deframer_push(gw_deframer *d, const uint8_t *data, size_t len,
                     gw_deframer_cb cb, void *ctx, gw_error *e)
{
    size_t off = 0;
    while (off < len) {
        if (d->prefix_len < 5) {
            size_t take = GW_MIN(5 - d->prefix_len, len - off);
            memcpy(d->prefix + d->prefix_len, data + off, take);
            d->prefix_len += take;
            off += take;
            if (d->prefix_len < 5)
                break;
            uint8_t flag = d->prefix[0];
            d->body_len = (size_t)d->prefix[1] << 24 | (size_t)d->prefix[2] << 16 |
                          (size_t)d->prefix[3] << 8 | d->prefix[4];
            if (flag > 1)
                return gw_error_set(e, GW_EPARSE,
                                    "message %llu: invalid frame flag 0x%02x",
                                    (unsigned long long)d->messages + 1, flag);
            if (flag == 1 && d->identity_only)
                return gw_error_set(e, GW_EPARSE,
                                    "message %llu is compressed but the response has no grpc-encoding",
                                    (unsigned long long)d->messages + 1);
            if (d->body_len > d->max_message)
                return gw_error_set(e, GW_ELIMIT,
                                    "response message %llu is %zu bytes, larger than the limit of %zu",
                                    (unsigned long long)d->messages + 1, d->body_len,
                                    d->max_message);
            gw_buf_reset(&d->body);
        }
        size_t have = d->body.len;
        size_t need = d->body_len - have;
        if (have == 0 && len - off >= need) {
            /* The whole body is in this chunk: hand it out without copying. */
            int rc = deliver(d, data + off, cb, ctx, e);
            off += need;
            if (rc)
                return rc;
            continue;
        }
        size_t take = GW_MIN(need, len - off);
        if (have == 0) {
            int rc = gw_buf_reserve(&d->body, d->body_len);
            if (rc)
                return gw_error_set(e, rc, "message %llu: cannot buffer %zu bytes",
                                    (unsigned long long)d->messages + 1, d->body_len);
        }
        int rc = gw_buf_append(&d->body, data + off, take);
        if (rc)
            return gw_error_set(e, rc, "message %llu: cannot buffer %zu bytes",
                                (unsigned long long)d->messages + 1, d->body_len);
        off += take;
        if (d->body.len == d->body_len) {
            rc = deliver(d, d->body.data, cb, ctx, e);
            gw_buf_reset(&d->body);
            if (rc)
                return rc;
        }
    }
    return 0;
}

size_t gw_deframer_missing(const gw_deframer *d)
{
    if (d->prefix_len < 5)
        return 5 - d->prefix_len;
    return d->body_len > d->body.len ? d->body_len - d->body.len : 1;
}

/* ---- receive flow control ------------------------------------------------------ */

void gw_flow_init(gw_flow *f, uint32_t window)
{
    memset(f, 0, sizeof *f);
    f->window = window;
}

static void flow_release_received(gw_flow *f)
{
    if (f->released < f->received) {
        f->dropped += f->received - f->released;
        f->released = f->received;
    }
}

void gw_flow_received(gw_flow *f, size_t n)
{
    f->received += n;
    if (f->discard)
        flow_release_received(f);
}

void gw_flow_delivered(gw_flow *f, size_t wire_len) { f->delivered += wire_len; }

void gw_flow_consumed(gw_flow *f, size_t wire_len)
{
    if (f->discard)
        return;
    uint64_t n = GW_MIN((uint64_t)wire_len, f->delivered - f->consumed);
    f->consumed += n;
    uint64_t paid = GW_MIN(n, f->advance);
    f->advance -= paid;
    f->released += n - paid;
}

void gw_flow_discard(gw_flow *f)
{
    f->discard = true;
    flow_release_received(f);
}

uint64_t gw_flow_credit(const gw_flow *f)
{
    uint64_t limit = f->window + f->granted;
    return limit > f->received ? limit - f->received : 0;
}

uint32_t gw_flow_update(gw_flow *f, size_t missing)
{
    const uint64_t max_window = 0x7fffffff;
    uint64_t credit = gw_flow_credit(f);
    bool waiting = !f->discard && f->consumed == f->delivered;
    bool starved = waiting && credit < missing;
    if (starved && credit + (f->released - f->granted) < missing) {
        /* Even every released byte would not let the message arrive:
         * give the rest ahead of the owner's consume (a message longer
         * than the window, or one a slow owner's backlog pushed back). */
        uint64_t more = missing - credit - (f->released - f->granted);
        f->advance += more;
        f->released += more;
    }
    uint64_t unreported = f->released - f->granted;
    if (unreported == 0 || (!starved && unreported < f->window / 2))
        return 0;
    /* The peer's window may never exceed 2^31-1 (RFC 9113 6.9.1). */
    uint64_t room = credit < max_window ? max_window - credit : 0;
    uint64_t n = GW_MIN(unreported, room);
    f->granted += n;
    return (uint32_t)n;
}
