/*
 * The access log: one JSON object per line per call. Each worker formats
 * into its own buffer and writes the line with one write(2) on a descriptor
 * opened with O_APPEND, so lines never interleave and workers never wait
 * for each other's formatting. See docs/operations.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec/codec.h"
#include "server/ops.h"

struct gw_accesslog {
    int fd;
    bool own_fd;
    atomic_uint_least64_t failed_writes;
};

int gw_accesslog_open(const char *path, gw_accesslog **out, gw_error *e)
{
    *out = NULL;
    gw_accesslog *l = calloc(1, sizeof *l);
    if (!l)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    if (strcmp(path, "-") == 0) {
        l->fd = STDOUT_FILENO;
    } else {
        l->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (l->fd < 0) {
            int err = errno;
            free(l);
            return gw_error_set(e, GW_EIO, "access log %s: %s", path, strerror(err));
        }
        l->own_fd = true;
    }
    *out = l;
    return 0;
}

void gw_accesslog_close(gw_accesslog *l)
{
    if (!l)
        return;
    uint64_t failed = atomic_load(&l->failed_writes);
    if (failed)
        GW_WARN("access log: %llu lines could not be written", (unsigned long long)failed);
    if (l->own_fd)
        close(l->fd);
    free(l);
}

/* Length of the UTF-8 sequence a lead byte announces (1 for anything that
 * cannot start one, so it is replaced on its own). */
static size_t utf8_seq_len(uint8_t c)
{
    if ((c & 0xe0) == 0xc0)
        return 2;
    if ((c & 0xf0) == 0xe0)
        return 3;
    if ((c & 0xf8) == 0xf0)
        return 4;
    return 1;
}

/* Quoting is the codec's JSON string writer; it passes UTF-8 through as is,
 * so bytes that are not valid UTF-8 (a client's raw path, say) are first
 * replaced by U+FFFD, one per byte: a log line must stay valid JSON. */
int gw_json_quote(gw_buf *out, const char *s)
{
    size_t n = strlen(s);
    if (gw_utf8_valid((const uint8_t *)s, n))
        return gw_codec_json_append_string(out, s, n);
    gw_buf clean;
    gw_buf_init(&clean, n > (SIZE_MAX - 1) / 3 ? SIZE_MAX - 1 : n * 3);
    const uint8_t *p = (const uint8_t *)s;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        size_t len = utf8_seq_len(p[i]);
        if (p[i] < 0x80 || (len > 1 && n - i >= len && gw_utf8_valid(p + i, len))) {
            rc = gw_buf_append(&clean, p + i, len);
            i += len;
        } else {
            rc = gw_buf_append(&clean, "\xef\xbf\xbd", 3);
            i++;
        }
    }
    if (rc == 0)
        rc = gw_codec_json_append_string(out, (const char *)clean.data, clean.len);
    gw_buf_free(&clean);
    return rc;
}

int gw_accesslog_format(gw_buf *out, uint64_t unix_ns, const char *peer,
                        const char *http_method, const char *path,
                        const gw_call_report *rep, const char *backend)
{
    size_t start = out->len;
    time_t secs = (time_t)(unix_ns / 1000000000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char when[40];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)(unix_ns / 1000000u % 1000u));
    uint64_t dur_us = rep->end_ns > rep->start_ns ? (rep->end_ns - rep->start_ns) / 1000 : 0;
    int rc = gw_buf_printf(out, "{\"time\":\"%s\",\"peer\":", when);
    if (!rc)
        rc = gw_json_quote(out, peer ? peer : "");
    if (!rc)
        rc = gw_buf_append_str(out, ",\"protocol\":");
    if (!rc)
        rc = gw_json_quote(out, rep->protocol ? rep->protocol : "");
    if (!rc)
        rc = gw_buf_append_str(out, ",\"method\":");
    if (!rc)
        rc = rep->method ? gw_json_quote(out, rep->method->path) : gw_buf_append_str(out, "null");
    if (!rc)
        rc = gw_buf_append_str(out, ",\"http_method\":");
    if (!rc)
        rc = gw_json_quote(out, http_method ? http_method : "");
    if (!rc)
        rc = gw_buf_append_str(out, ",\"route\":");
    if (!rc)
        rc = gw_json_quote(out, path ? path : "");
    if (!rc) {
        int code = rep->code >= 0 ? rep->code : GW_CODE_CANCELLED;
        rc = gw_buf_printf(out,
                           ",\"http_status\":%d,\"grpc_status\":%d,\"grpc_code\":\"%s\","
                           "\"request_bytes\":%zu,\"response_bytes\":%zu,"
                           "\"duration_ms\":%llu.%03llu,\"completed\":%s,\"backend\":",
                           rep->http_status, code, gw_code_name(code), rep->request_bytes,
                           rep->response_bytes, (unsigned long long)(dur_us / 1000),
                           (unsigned long long)(dur_us % 1000),
                           rep->completed ? "true" : "false");
    }
    if (!rc)
        rc = backend ? gw_json_quote(out, backend) : gw_buf_append_str(out, "null");
    if (!rc)
        rc = gw_buf_append_str(out, ",\"endpoint\":");
    if (!rc)
        rc = rep->endpoint[0] ? gw_json_quote(out, rep->endpoint) : gw_buf_append_str(out, "null");
    if (!rc)
        rc = gw_buf_append_str(out, "}\n");
    if (rc)
        out->len = start;
    return rc;
}

void gw_accesslog_write(gw_accesslog *l, gw_buf *line, const gw_call_report *rep,
                        const char *backend)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    char peer[64] = "";
    const char *method = NULL, *path = NULL;
    if (rep->req) {
        gw_front_req_peer(rep->req, peer, sizeof peer);
        method = gw_front_req_method(rep->req);
        path = gw_front_req_path(rep->req);
    }
    line->len = 0;
    if (gw_accesslog_format(line, now, peer, method, path, rep, backend) != 0) {
        atomic_fetch_add_explicit(&l->failed_writes, 1, memory_order_relaxed);
        return;
    }
    ssize_t w;
    do
        w = write(l->fd, line->data, line->len);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)line->len)
        atomic_fetch_add_explicit(&l->failed_writes, 1, memory_order_relaxed);
}
