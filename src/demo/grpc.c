/* Pure helpers of the demo service: framing, grpc-timeout, error details. */
#include "demo/internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "google_protobuf_any.pb-c.h"
#include "google_rpc_error_details.pb-c.h"
#include "google_rpc_status.pb-c.h"

void dm_framer_init(dm_framer *f, size_t max_message)
{
    memset(f, 0, sizeof *f);
    f->max_message = max_message;
    gw_buf_init(&f->msg, max_message);
}

void dm_framer_free(dm_framer *f)
{
    gw_buf_free(&f->msg);
}

int dm_framer_feed(dm_framer *f, const uint8_t *p, size_t n, dm_message_cb cb,
                   void *owner, gw_error *e)
{
    while (n > 0) {
        if (!f->in_body) {
            size_t take = GW_MIN(n, 5 - f->hdr_len);
            memcpy(f->hdr + f->hdr_len, p, take);
            f->hdr_len += take;
            p += take;
            n -= take;
            f->offset += take;
            if (f->hdr_len < 5)
                break;
            uint64_t at = f->offset - 5;
            uint8_t flag = f->hdr[0];
            uint32_t len = (uint32_t)f->hdr[1] << 24 | (uint32_t)f->hdr[2] << 16 |
                           (uint32_t)f->hdr[3] << 8 | f->hdr[4];
            if (flag == 1)
                return gw_error_set(e, GW_EINVAL,
                                    "compressed message at byte %llu, but no "
                                    "grpc-encoding is supported",
                                    (unsigned long long)at);
            if (flag != 0)
                return gw_error_set(e, GW_EPARSE, "invalid message flag 0x%02x at byte %llu",
                                    flag, (unsigned long long)at);
            if (len > f->max_message)
                return gw_error_set(e, GW_ELIMIT,
                                    "message at byte %llu is larger than the maximum "
                                    "(%u vs. %zu bytes)",
                                    (unsigned long long)at, len, f->max_message);
            f->need = len;
            f->in_body = true;
            gw_buf_reset(&f->msg);
        }
        size_t take = GW_MIN(n, (size_t)f->need - f->msg.len);
        if (take > 0) {
            if (f->msg.len == 0 && take == f->need) {
                /* The whole message is in this chunk: no copy. */
                f->in_body = false;
                f->hdr_len = 0;
                f->offset += take;
                int rc = cb(owner, p, take);
                if (rc)
                    return rc;
                p += take;
                n -= take;
                continue;
            }
            if (gw_buf_append(&f->msg, p, take) < 0)
                return gw_error_set(e, GW_ENOMEM, "out of memory");
            p += take;
            n -= take;
            f->offset += take;
        }
        if (f->msg.len == f->need) {
            f->in_body = false;
            f->hdr_len = 0;
            int rc = cb(owner, f->msg.data ? f->msg.data : (const uint8_t *)"", f->msg.len);
            gw_buf_reset(&f->msg);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int dm_frame_prefix(gw_buf *b, size_t len)
{
    uint8_t h[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                    (uint8_t)len};
    return gw_buf_append(b, h, sizeof h);
}

static uint64_t mul_sat(uint64_t a, uint64_t b)
{
    if (a != 0 && b > UINT64_MAX / a)
        return UINT64_MAX;
    return a * b;
}

uint64_t dm_duration_ns(int64_t seconds, int32_t nanos)
{
    if (seconds < 0 || (seconds == 0 && nanos <= 0))
        return 0;
    uint64_t s = mul_sat((uint64_t)seconds, GW_SEC);
    uint64_t extra = nanos > 0 ? (uint64_t)nanos : 0;
    return s > UINT64_MAX - extra ? UINT64_MAX : s + extra;
}

int dm_trailer_name(gw_buf *b, const char *key, size_t n)
{
    gw_buf_reset(b);
    bool bin = n >= 4 && memcmp(key + n - 4, "-bin", 4) == 0;
    size_t stem = bin ? n - 4 : n;
    int rc = gw_buf_append(b, key, stem);
    if (rc == 0)
        rc = gw_buf_append_str(b, bin ? "-trailer-bin" : "-trailer");
    return rc;
}

int dm_status_details(gw_buf *b, int code, const char *message,
                      const dm_violation *v, size_t n_violations)
{
    int rc = GW_ENOMEM;
    uint8_t *bad_bytes = NULL;
    Google__Rpc__BadRequest__FieldViolation *fv = NULL;
    Google__Rpc__BadRequest__FieldViolation **fvp = NULL;

    gw_buf_reset(b);
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = code;
    st.message = (char *)(message ? message : "");
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    Google__Protobuf__Any *anyp = &any;
    if (n_violations > 0) {
        fv = calloc(n_violations, sizeof *fv);
        fvp = calloc(n_violations, sizeof *fvp);
        if (!fv || !fvp)
            goto out;
        for (size_t i = 0; i < n_violations; i++) {
            google__rpc__bad_request__field_violation__init(&fv[i]);
            fv[i].field = (char *)v[i].field;
            fv[i].description = (char *)v[i].description;
            fvp[i] = &fv[i];
        }
        Google__Rpc__BadRequest bad = GOOGLE__RPC__BAD_REQUEST__INIT;
        bad.n_field_violations = n_violations;
        bad.field_violations = fvp;
        size_t blen = google__rpc__bad_request__get_packed_size(&bad);
        bad_bytes = malloc(blen ? blen : 1);
        if (!bad_bytes)
            goto out;
        google__rpc__bad_request__pack(&bad, bad_bytes);
        any.type_url = (char *)"type.googleapis.com/google.rpc.BadRequest";
        any.value.data = bad_bytes;
        any.value.len = blen;
        st.n_details = 1;
        st.details = &anyp;
    }
    size_t len = google__rpc__status__get_packed_size(&st);
    if (gw_buf_reserve(b, len) < 0)
        goto out;
    google__rpc__status__pack(&st, b->data);
    b->len = len;
    b->data[len] = 0;
    rc = 0;
out:
    free(bad_bytes);
    free(fv);
    free(fvp);
    return rc;
}

void dm_wall_clock(int64_t *seconds, int32_t *nanos)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *seconds = ts.tv_sec;
    *nanos = (int32_t)ts.tv_nsec;
}
