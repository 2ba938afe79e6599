#include "base/base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gw_buf_init(gw_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void gw_buf_free(gw_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int gw_buf_reserve(gw_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return GW_ELIMIT;
    size_t need = b->len + extra;
    if (b->max && need > b->max)
        return GW_ELIMIT;
    if (need + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need + 1) {
        if (cap > SIZE_MAX / 2) {
            cap = need + 1;
            break;
        }
        cap *= 2;
    }
    if (b->max && cap > b->max + 1)
        cap = b->max + 1;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return GW_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int gw_buf_append(gw_buf *b, const void *p, size_t n)
{
    int rc = gw_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int gw_buf_append_str(gw_buf *b, const char *s)
{
    return gw_buf_append(b, s, strlen(s));
}

int gw_buf_append_byte(gw_buf *b, uint8_t c)
{
    if (b->len + 1 < b->cap) {
        b->data[b->len++] = c;
        b->data[b->len] = 0;
        return 0;
    }
    return gw_buf_append(b, &c, 1);
}

int gw_buf_printf(gw_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return GW_EINVAL;
    int rc = gw_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void gw_buf_consume(gw_buf *b, size_t n)
{
    if (n >= b->len) {
        gw_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = 0;
}

uint8_t *gw_buf_detach(gw_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

int gw_read_file(const char *path, size_t max, uint8_t **data, size_t *len, gw_error *e)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return gw_error_set(e, GW_EIO, "%s: %s", path, strerror(errno));
    gw_buf b;
    gw_buf_init(&b, max);
    int rc = 0;
    for (;;) {
        rc = gw_buf_reserve(&b, 65536);
        if (rc == GW_ELIMIT && b.max && b.len < b.max)
            rc = gw_buf_reserve(&b, b.max - b.len);
        if (rc) {
            if (rc == GW_ELIMIT) {
                /* At the limit: only an error if more bytes follow. */
                int c = fgetc(f);
                if (c == EOF) {
                    rc = 0;
                    break;
                }
                gw_error_set(e, rc, "%s: larger than the limit of %zu bytes", path, max);
            } else {
                gw_error_set(e, rc, "%s: out of memory", path);
            }
            goto out;
        }
        size_t room = b.cap - b.len - 1;
        size_t got = fread(b.data + b.len, 1, room, f);
        b.len += got;
        b.data[b.len] = 0;
        if (got < room) {
            if (ferror(f)) {
                rc = gw_error_set(e, GW_EIO, "%s: read error: %s", path, strerror(errno));
                goto out;
            }
            break;
        }
    }
    if (!b.data && (rc = gw_buf_reserve(&b, 0)) != 0) {
        gw_error_set(e, rc, "%s: out of memory", path);
        goto out;
    }
    b.data[b.len] = 0;
    *data = gw_buf_detach(&b, len);
out:
    fclose(f);
    gw_buf_free(&b);
    return rc;
}
