/*
 * The server-reflection client. One bidi stream carries every request; the
 * server answers them in order, so `outstanding` counts answers still due.
 * Requests are pipelined: a service list brings one file_containing_symbol
 * per service, every file received brings one file_by_filename per
 * dependency not seen or asked for yet, and the run is complete when no
 * answer is due and every dependency is known.
 */
#include "upstream/upstream.h"
#include "upstream/internal.h"
#include "codec/codec.h"
#include "schema/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_V1 "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
#define PATH_V1ALPHA "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
#define MAX_NAME 1024u
#define MAX_SERVICES 4096u

typedef struct rfile {
    char *name;
    uint8_t *data;
    size_t len;
} rfile;

struct gw_reflect {
    gw_backend *b;
    gw_loop *loop;
    gw_ucall *call;
    bool alpha;
    uint64_t deadline_ns;
    gw_reflect_done_cb done;
    void *owner;

    char **want;                 /* services asked for by the caller */
    size_t n_want;

    char **services;             /* services being fetched */
    size_t n_services, cap_services;
    rfile *files;
    size_t n_files, cap_files;
    char **asked;                /* file names asked with file_by_filename */
    size_t n_asked, cap_asked;
    size_t total_bytes;
    size_t outstanding;
    bool collected;              /* everything is in: close_send was sent */

    gw_buf pending;              /* request frames not yet taken by the call */
    gw_defer done_defer;
    bool finished;
    int rc;
    gw_error err;
};

/* ---- encoding --------------------------------------------------------------- */

int gw_reflect_request_frame(gw_buf *out, uint32_t field, const char *value)
{
    gw_buf msg;
    gw_buf_init(&msg, 5 + MAX_NAME + 16);
    int rc = gw_wire_put_len_field(&msg, field, value, strlen(value));
    if (rc == 0) {
        uint8_t prefix[5] = {0, (uint8_t)(msg.len >> 24), (uint8_t)(msg.len >> 16),
                             (uint8_t)(msg.len >> 8), (uint8_t)msg.len};
        rc = gw_buf_append(out, prefix, 5);
        if (rc == 0)
            rc = gw_buf_append(out, msg.data, msg.len);
    }
    gw_buf_free(&msg);
    return rc;
}

/* ---- helpers ------------------------------------------------------------------- */

static void fail(gw_reflect *r, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void finish(gw_reflect *r, int rc)
{
    if (r->finished)
        return;
    r->finished = true;
    r->rc = rc;
    if (r->call) {
        gw_ucall *c = r->call;
        r->call = NULL;
        gw_ucall_cancel(c);
    }
    gw_loop_defer(r->loop, &r->done_defer);
}

static void fail(gw_reflect *r, int rc, const char *fmt, ...)
{
    if (r->finished)
        return;
    char msg[GW_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gw_error_set(&r->err, rc, "reflection on %s failed: %s", gw_backend_url(r->b), msg);
    finish(r, rc);
}

static bool has_file(const gw_reflect *r, const char *name, size_t n)
{
    for (size_t i = 0; i < r->n_files; i++)
        if (strlen(r->files[i].name) == n && memcmp(r->files[i].name, name, n) == 0)
            return true;
    return false;
}

static bool was_asked(const gw_reflect *r, const char *name, size_t n)
{
    for (size_t i = 0; i < r->n_asked; i++)
        if (strlen(r->asked[i]) == n && memcmp(r->asked[i], name, n) == 0)
            return true;
    return false;
}

static void flush(gw_reflect *r)
{
    if (!r->call || r->pending.len == 0)
        return;
    long took = gw_ucall_write(r->call, r->pending.data, r->pending.len);
    if (took < 0) {
        fail(r, GW_EIO, "cannot write a request (%s)", gw_err_str((int)took));
        return;
    }
    gw_buf_consume(&r->pending, (size_t)took);
}

static int ask(gw_reflect *r, uint32_t field, const char *value, size_t n)
{
    if (n > MAX_NAME) {
        fail(r, GW_ELIMIT, "name longer than %u bytes", MAX_NAME);
        return GW_ELIMIT;
    }
    char name[MAX_NAME + 1];
    memcpy(name, value, n);
    name[n] = 0;
    int rc = gw_reflect_request_frame(&r->pending, field, name);
    if (rc != 0) {
        fail(r, rc, "too many requests pending (%s)", gw_err_str(rc));
        return rc;
    }
    r->outstanding++;
    return 0;
}

/* Appends a NUL-terminated copy of name[0..n) to a growing array of
 * strings. Returns 0 or GW_ENOMEM (the array is left as it was). */
static int push_name(char ***arr, size_t *len, size_t *cap, const char *name, size_t n)
{
    if (*len == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        char **a = realloc(*arr, c * sizeof *a);
        if (!a)
            return GW_ENOMEM;
        *arr = a;
        *cap = c;
    }
    char *d = malloc(n + 1);
    if (!d)
        return GW_ENOMEM;
    memcpy(d, name, n);
    d[n] = 0;
    (*arr)[(*len)++] = d;
    return 0;
}

static int ask_file(gw_reflect *r, const char *name, size_t n)
{
    if (has_file(r, name, n) || was_asked(r, name, n))
        return 0;
    if (push_name(&r->asked, &r->n_asked, &r->cap_asked, name, n) != 0) {
        fail(r, GW_ENOMEM, "out of memory");
        return GW_ENOMEM;
    }
    return ask(r, 3, name, n);
}

static int add_service(gw_reflect *r, const char *name, size_t n)
{
    if (r->n_services >= MAX_SERVICES) {
        fail(r, GW_ELIMIT, "more than %u services", MAX_SERVICES);
        return GW_ELIMIT;
    }
    if (push_name(&r->services, &r->n_services, &r->cap_services, name, n) != 0) {
        fail(r, GW_ENOMEM, "out of memory");
        return GW_ENOMEM;
    }
    return ask(r, 4, name, n);
}

/* A FileDescriptorProto: keeps it unless known, asks for its dependencies. */
static int add_file(gw_reflect *r, const uint8_t *p, size_t n)
{
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, p, n);
    const uint8_t *name = NULL;
    size_t name_len = 0;
    while (!gw_wire_eof(&rd)) {
        uint32_t f;
        gw_wire_type wt;
        if (gw_wire_read_tag(&rd, &f, &wt) != 0)
            goto bad;
        if (f == 1 && wt == GW_WIRE_LEN) {
            if (gw_wire_read_len(&rd, &name, &name_len) != 0)
                goto bad;
        } else if (gw_wire_skip(&rd, f, wt, 8) != 0) {
            goto bad;
        }
    }
    if (!name || name_len == 0 || name_len > MAX_NAME) {
        fail(r, GW_EPARSE, "a file descriptor without a name");
        return GW_EPARSE;
    }
    if (has_file(r, (const char *)name, name_len))
        return 0;
    if (r->n_files >= GW_REFLECT_MAX_FILES || r->total_bytes + n > GW_REFLECT_MAX_BYTES) {
        fail(r, GW_ELIMIT, "more than %u files or %u bytes of descriptors", GW_REFLECT_MAX_FILES,
             GW_REFLECT_MAX_BYTES);
        return GW_ELIMIT;
    }
    if (r->n_files == r->cap_files) {
        size_t cap = r->cap_files ? r->cap_files * 2 : 16;
        rfile *fs = realloc(r->files, cap * sizeof *fs);
        if (!fs)
            goto oom;
        r->files = fs;
        r->cap_files = cap;
    }
    rfile *rf = &r->files[r->n_files];
    rf->name = malloc(name_len + 1);
    rf->data = malloc(n ? n : 1);
    if (!rf->name || !rf->data) {
        free(rf->name);
        free(rf->data);
        goto oom;
    }
    memcpy(rf->name, name, name_len);
    rf->name[name_len] = 0;
    memcpy(rf->data, p, n);
    rf->len = n;
    r->n_files++;
    r->total_bytes += n;
    /* Second pass: dependency = 3. */
    gw_wire_reader_init(&rd, p, n);
    while (!gw_wire_eof(&rd)) {
        uint32_t f;
        gw_wire_type wt;
        gw_wire_read_tag(&rd, &f, &wt);
        if (f == 3 && wt == GW_WIRE_LEN) {
            const uint8_t *dep;
            size_t dl;
            gw_wire_read_len(&rd, &dep, &dl);
            int rc = ask_file(r, (const char *)dep, dl);
            if (rc != 0)
                return rc;
        } else {
            gw_wire_skip(&rd, f, wt, 8);
        }
    }
    return 0;
bad:
    fail(r, GW_EPARSE, "malformed file descriptor at byte %zu", gw_wire_offset(&rd));
    return GW_EPARSE;
oom:
    fail(r, GW_ENOMEM, "out of memory");
    return GW_ENOMEM;
}

/* What an original_request asked for, for error messages. */
static void describe_request(const uint8_t *p, size_t n, char *out, size_t cap)
{
    static const char *const what[] = {[3] = "file", [4] = "symbol", [7] = "list_services"};
    gw_wire_reader rd;
    snprintf(out, cap, "request");
    if (!p)
        return;
    gw_wire_reader_init(&rd, p, n);
    while (!gw_wire_eof(&rd)) {
        uint32_t f;
        gw_wire_type wt;
        if (gw_wire_read_tag(&rd, &f, &wt) != 0)
            return;
        if ((f == 3 || f == 4 || f == 7) && wt == GW_WIRE_LEN) {
            const uint8_t *v;
            size_t vl;
            if (gw_wire_read_len(&rd, &v, &vl) != 0)
                return;
            snprintf(out, cap, "%s %.*s", what[f], (int)GW_MIN(vl, (size_t)200), (const char *)v);
            return;
        }
        if (gw_wire_skip(&rd, f, wt, 8) != 0)
            return;
    }
}

static int on_list(gw_reflect *r, const uint8_t *p, size_t n)
{
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, p, n);
    while (!gw_wire_eof(&rd)) {
        uint32_t f;
        gw_wire_type wt;
        const uint8_t *sv;
        size_t sl;
        if (gw_wire_read_tag(&rd, &f, &wt) != 0)
            goto bad;
        if (f != 1 || wt != GW_WIRE_LEN) {
            if (gw_wire_skip(&rd, f, wt, 8) != 0)
                goto bad;
            continue;
        }
        if (gw_wire_read_len(&rd, &sv, &sl) != 0)
            goto bad;
        gw_wire_reader s;
        gw_wire_reader_init(&s, sv, sl);
        while (!gw_wire_eof(&s)) {
            uint32_t g;
            gw_wire_type gt;
            const uint8_t *nm;
            size_t nl;
            if (gw_wire_read_tag(&s, &g, &gt) != 0)
                goto bad;
            if (g == 1 && gt == GW_WIRE_LEN) {
                if (gw_wire_read_len(&s, &nm, &nl) != 0)
                    goto bad;
                static const char skip[] = "grpc.reflection.";
                if (nl >= sizeof skip - 1 && memcmp(nm, skip, sizeof skip - 1) == 0)
                    continue;
                int rc = add_service(r, (const char *)nm, nl);
                if (rc != 0)
                    return rc;
            } else if (gw_wire_skip(&s, g, gt, 8) != 0) {
                goto bad;
            }
        }
    }
    return 0;
bad:
    fail(r, GW_EPARSE, "malformed list_services answer");
    return GW_EPARSE;
}

static void check_closed(gw_reflect *r)
{
    if (r->finished || r->outstanding || r->collected)
        return;
    for (size_t i = 0; i < r->n_asked; i++) {
        if (!has_file(r, r->asked[i], strlen(r->asked[i]))) {
            fail(r, GW_ENOTFOUND, "file %s was asked for and not returned", r->asked[i]);
            return;
        }
    }
    r->collected = true;
    if (r->call)
        gw_ucall_close_send(r->call);
}

/* ---- call callbacks ------------------------------------------------------------- */

static void on_headers(void *owner, const gw_header *md, size_t n)
{
    (void)owner;
    (void)md;
    (void)n;
}

static void on_message(void *owner, const uint8_t *msg, size_t len, size_t wire_len)
{
    gw_reflect *r = owner;
    if (r->call)
        gw_ucall_consume(r->call, wire_len);
    if (r->finished || r->collected)
        return;
    if (r->outstanding == 0) {
        fail(r, GW_EPARSE, "an answer nobody asked for");
        return;
    }
    r->outstanding--;
    static const uint8_t empty[1];
    gw_wire_reader rd;
    gw_wire_reader_init(&rd, msg ? msg : empty, msg ? len : 0);
    const uint8_t *orig = NULL;
    size_t orig_len = 0;
    while (!gw_wire_eof(&rd) && !r->finished) {
        uint32_t f;
        gw_wire_type wt;
        const uint8_t *v;
        size_t vl;
        if (gw_wire_read_tag(&rd, &f, &wt) != 0)
            goto bad;
        if (wt != GW_WIRE_LEN || (f != 2 && f != 4 && f != 6 && f != 7)) {
            if (gw_wire_skip(&rd, f, wt, 8) != 0)
                goto bad;
            continue;
        }
        if (gw_wire_read_len(&rd, &v, &vl) != 0)
            goto bad;
        if (f == 2) {
            orig = v;
            orig_len = vl;
        } else if (f == 4) {
            gw_wire_reader fr;
            gw_wire_reader_init(&fr, v, vl);
            while (!gw_wire_eof(&fr) && !r->finished) {
                uint32_t g;
                gw_wire_type gt;
                const uint8_t *fd;
                size_t fl;
                if (gw_wire_read_tag(&fr, &g, &gt) != 0)
                    goto bad;
                if (g == 1 && gt == GW_WIRE_LEN) {
                    if (gw_wire_read_len(&fr, &fd, &fl) != 0)
                        goto bad;
                    add_file(r, fd, fl);
                } else if (gw_wire_skip(&fr, g, gt, 8) != 0) {
                    goto bad;
                }
            }
        } else if (f == 6) {
            on_list(r, v, vl);
        } else {
            gw_wire_reader er;
            gw_wire_reader_init(&er, v, vl);
            uint64_t code = 0;
            const uint8_t *em = (const uint8_t *)"";
            size_t el = 0;
            while (!gw_wire_eof(&er)) {
                uint32_t g;
                gw_wire_type gt;
                if (gw_wire_read_tag(&er, &g, &gt) != 0)
                    goto bad;
                if (g == 1 && gt == GW_WIRE_VARINT) {
                    if (gw_wire_read_varint(&er, &code) != 0)
                        goto bad;
                } else if (g == 2 && gt == GW_WIRE_LEN) {
                    if (gw_wire_read_len(&er, &em, &el) != 0)
                        goto bad;
                } else if (gw_wire_skip(&er, g, gt, 8) != 0) {
                    goto bad;
                }
            }
            char what[256];
            describe_request(orig, orig ? orig_len : 0, what, sizeof what);
            fail(r, code == GW_CODE_NOT_FOUND ? GW_ENOTFOUND : GW_EIO, "%s: %s: %.*s", what,
                 gw_code_name((int)code), (int)GW_MIN(el, (size_t)300), (const char *)em);
        }
    }
    if (r->finished)
        return;
    flush(r);
    check_closed(r);
    return;
bad:
    fail(r, GW_EPARSE, "malformed answer at byte %zu", gw_wire_offset(&rd));
}

static void on_writable(void *owner) { flush(owner); }

static int open_stream(gw_reflect *r);

static void on_complete(void *owner, const gw_call_status *st)
{
    gw_reflect *r = owner;
    r->call = NULL;
    if (r->finished)
        return;
    if (r->collected) {
        finish(r, 0);
        return;
    }
    if (st->code == GW_CODE_UNIMPLEMENTED && !r->alpha) {
        GW_INFO("reflection on %s: v1 is not implemented, trying v1alpha", gw_backend_url(r->b));
        r->alpha = true;
        int rc = open_stream(r);
        if (rc != 0)
            fail(r, rc, "cannot start the v1alpha call");
        return;
    }
    if (st->code == GW_CODE_OK)
        fail(r, GW_EIO, "the stream ended before every answer arrived");
    else if (st->code == GW_CODE_UNIMPLEMENTED)
        fail(r, GW_EIO, "the backend has no server reflection (UNIMPLEMENTED for v1 and v1alpha%s%s)",
             st->message[0] ? ": " : "", st->message);
    else
        fail(r, GW_EIO, "%s: %s", gw_code_name(st->code), st->message);
}

static const gw_ucall_handlers handlers = {on_headers, on_message, on_writable, on_complete};

/* (Re)starts the stream from scratch: what was collected on a failed
 * version is dropped. */
static int open_stream(gw_reflect *r)
{
    for (size_t i = 0; i < r->n_services; i++)
        free(r->services[i]);
    r->n_services = 0;
    for (size_t i = 0; i < r->n_files; i++) {
        free(r->files[i].name);
        free(r->files[i].data);
    }
    r->n_files = 0;
    r->total_bytes = 0;
    for (size_t i = 0; i < r->n_asked; i++)
        free(r->asked[i]);
    r->n_asked = 0;
    r->outstanding = 0;
    gw_buf_reset(&r->pending);
    gw_ucall_params p = {.path = r->alpha ? PATH_V1ALPHA : PATH_V1, .deadline_ns = r->deadline_ns};
    gw_error e;
    gw_error_clear(&e);
    int rc = gw_ucall_start(r->b, &p, &handlers, r, &r->call, &e);
    if (rc != 0)
        return rc;
    if (r->n_want == 0) {
        rc = ask(r, 7, "*", 1);
    } else {
        for (size_t i = 0; i < r->n_want && rc == 0; i++)
            rc = add_service(r, r->want[i], strlen(r->want[i]));
    }
    if (rc == 0)
        flush(r);
    return 0; /* failures above went through fail() */
}

/* ---- the run ----------------------------------------------------------------------- */

static void reflect_free(gw_reflect *r)
{
    for (size_t i = 0; i < r->n_want; i++)
        free(r->want[i]);
    free(r->want);
    for (size_t i = 0; i < r->n_services; i++)
        free(r->services[i]);
    free(r->services);
    for (size_t i = 0; i < r->n_files; i++) {
        free(r->files[i].name);
        free(r->files[i].data);
    }
    free(r->files);
    for (size_t i = 0; i < r->n_asked; i++)
        free(r->asked[i]);
    free(r->asked);
    gw_buf_free(&r->pending);
    free(r);
}

static void on_done_deferred(void *arg)
{
    gw_reflect *r = arg;
    if (r->call) {
        gw_ucall *c = r->call;
        r->call = NULL;
        gw_ucall_cancel(c);
    }
    if (r->rc) {
        r->done(r->owner, r->rc, NULL, &r->err);
        reflect_free(r);
        return;
    }
    const char **names = calloc(r->n_files + 1, sizeof *names);
    const uint8_t **files = calloc(r->n_files + 1, sizeof *files);
    size_t *lens = calloc(r->n_files + 1, sizeof *lens);
    if (!names || !files || !lens) {
        free(names);
        free(files);
        free(lens);
        gw_error_set(&r->err, GW_ENOMEM, "reflection on %s failed: out of memory", gw_backend_url(r->b));
        r->done(r->owner, GW_ENOMEM, NULL, &r->err);
        reflect_free(r);
        return;
    }
    for (size_t i = 0; i < r->n_files; i++) {
        names[i] = r->files[i].name;
        files[i] = r->files[i].data;
        lens[i] = r->files[i].len;
    }
    gw_reflect_result res = {
        .url = gw_backend_url(r->b),
        .version = r->alpha ? "v1alpha" : "v1",
        .service_count = r->n_services,
        .services = (const char *const *)r->services,
        .file_count = r->n_files,
        .file_names = names,
        .files = files,
        .file_lens = lens,
    };
    r->done(r->owner, 0, &res, NULL);
    free(names);
    free(files);
    free(lens);
    reflect_free(r);
}

int gw_reflect_start(gw_backend *b, const char *const *services, uint32_t timeout_ms,
                     gw_reflect_done_cb done, void *owner, gw_reflect **out, gw_error *e)
{
    *out = NULL;
    if (!b || !done)
        return gw_error_set(e, GW_EINVAL, "gw_reflect_start: missing backend or callback");
    gw_reflect *r = calloc(1, sizeof *r);
    if (!r)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    r->b = b;
    r->loop = gw_backend_loop(b);
    gw_defer_init(&r->done_defer, on_done_deferred, r);
    r->done = done;
    r->owner = owner;
    gw_buf_init(&r->pending, 1u << 20);
    size_t n = 0;
    while (services && services[n])
        n++;
    if (n > MAX_SERVICES) {
        reflect_free(r);
        return gw_error_set(e, GW_EINVAL, "reflection: more than %u services", MAX_SERVICES);
    }
    r->want = calloc(n ? n : 1, sizeof *r->want);
    if (!r->want)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        if (strlen(services[i]) == 0 || strlen(services[i]) > MAX_NAME) {
            reflect_free(r);
            return gw_error_set(e, GW_EINVAL, "reflection: bad service name \"%.64s\"", services[i]);
        }
        r->want[i] = strdup(services[i]);
        if (!r->want[i])
            goto oom;
        r->n_want++;
    }
    r->deadline_ns = gw_now_ns() + (uint64_t)(timeout_ms ? timeout_ms : 10000) * GW_MS;
    int rc = open_stream(r);
    if (rc != 0) {
        reflect_free(r);
        return gw_error_set(e, rc, "reflection on %s failed: cannot start the call (%s)",
                            gw_backend_url(b), gw_err_str(rc));
    }
    *out = r;
    return 0;
oom:
    reflect_free(r);
    return gw_error_set(e, GW_ENOMEM, "out of memory");
}

void gw_reflect_cancel(gw_reflect *r)
{
    if (!r)
        return;
    if (r->loop)
        gw_loop_defer_cancel(r->loop, &r->done_defer);
    if (r->call) {
        gw_ucall *c = r->call;
        r->call = NULL;
        gw_ucall_cancel(c);
    }
    reflect_free(r);
}

int gw_reflect_build_registry(const gw_reflect_result *res, gw_registry **out, gw_error *e)
{
    *out = NULL;
    gw_registry_builder *bld = gw_registry_builder_new();
    if (!bld)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < res->file_count && rc == 0; i++)
        rc = gw_registry_builder_add_file(bld, res->files[i], res->file_lens[i], "reflection", e);
    if (rc == 0)
        rc = gw_registry_builder_build(bld, out, e);
    gw_registry_builder_del(bld);
    if (rc != 0)
        gw_error_prefix(e, "reflection on %s failed", res->url);
    return rc;
}

int gw_reflect_feed_test(gw_backend *b, const uint8_t *msg, size_t len, size_t due,
                         size_t *files, gw_error *e)
{
    gw_reflect *r = calloc(1, sizeof *r);
    if (!r)
        return gw_error_set(e, GW_ENOMEM, "out of memory");
    r->b = b;
    r->loop = gw_backend_loop(b);
    gw_defer_init(&r->done_defer, on_done_deferred, r);
    gw_buf_init(&r->pending, 1u << 20);
    r->outstanding = due;
    on_message(r, msg, len, len + 5);
    int rc = r->finished ? r->rc : 0;
    if (rc != 0 && e)
        *e = r->err;
    *files = r->n_files;
    gw_loop_defer_cancel(r->loop, &r->done_defer);
    reflect_free(r);
    return rc;
}

/* ---- blocking convenience ------------------------------------------------------------ */

typedef struct fetch_state {
    bool done;
    int rc;
    gw_registry_builder *into;   /* add the files here, or */
    gw_registry *reg;            /* build a registry */
    gw_error *e;
} fetch_state;

static void fetch_done(void *owner, int rc, const gw_reflect_result *res, const gw_error *err)
{
    fetch_state *fs = owner;
    fs->done = true;
    if (rc == 0 && fs->into) {
        for (size_t i = 0; i < res->file_count && rc == 0; i++)
            rc = gw_registry_builder_add_file(fs->into, res->files[i], res->file_lens[i], "reflection",
                                              fs->e);
        if (rc != 0)
            gw_error_prefix(fs->e, "reflection on %s failed", res->url);
    } else if (rc == 0) {
        rc = gw_reflect_build_registry(res, &fs->reg, fs->e);
    } else if (fs->e) {
        *fs->e = *err;
    }
    fs->rc = rc;
}

static int fetch(const char *url, const gw_backend_options *o, const char *const *services,
                 uint32_t timeout_ms, gw_registry_builder *into, gw_registry **out, gw_error *e);

int gw_reflect_fetch_registry(const char *url, const char *const *services, uint32_t timeout_ms,
                              gw_registry **out, gw_error *e)
{
    *out = NULL;
    return fetch(url, NULL, services, timeout_ms, NULL, out, e);
}

int gw_reflect_fetch_registry_opts(const char *url, const gw_backend_options *o,
                                   const char *const *services, uint32_t timeout_ms,
                                   gw_registry **out, gw_error *e)
{
    *out = NULL;
    return fetch(url, o, services, timeout_ms, NULL, out, e);
}

int gw_reflect_fetch_into(const char *url, const gw_backend_options *o,
                          const char *const *services, uint32_t timeout_ms,
                          gw_registry_builder *into, gw_error *e)
{
    if (!into)
        return gw_error_set(e, GW_EINVAL, "reflection: no builder");
    return fetch(url, o, services, timeout_ms, into, NULL, e);
}

static int fetch(const char *url, const gw_backend_options *o, const char *const *services,
                 uint32_t timeout_ms, gw_registry_builder *into, gw_registry **out, gw_error *e)
{
    gw_backend_options defaults;
    if (!o) {
        gw_backend_options_init(&defaults);
        o = &defaults;
    }
    if (!url)
        return gw_error_set(e, GW_EINVAL, "reflection: no backend URL");
    gw_loop *loop = gw_loop_new();
    if (!loop)
        return gw_error_set(e, GW_ENOMEM, "reflection on %s failed: cannot create a loop", url);
    gw_backend *b = NULL;
    gw_reflect *r = NULL;
    fetch_state fs = {.e = e, .into = into};
    int rc = gw_backend_new(loop, url, o, &b, e);
    if (rc != 0) {
        gw_error_prefix(e, "reflection on %s failed", url);
        goto out;
    }
    uint32_t t = timeout_ms ? timeout_ms : 10000;
    rc = gw_reflect_start(b, services, t, fetch_done, &fs, &r, e);
    if (rc != 0)
        goto out;
    /* The call's deadline ends the run; the wall-clock guard is only a
     * backstop against a bug keeping the loop busy for ever. */
    uint64_t guard = gw_now_ns() + ((uint64_t)t + 5000) * GW_MS;
    while (!fs.done && gw_now_ns() < guard)
        gw_loop_run_once(loop, 100);
    if (!fs.done) {
        gw_reflect_cancel(r);
        rc = gw_error_set(e, GW_EIO, "reflection on %s failed: no answer within %u ms", url, t);
        goto out;
    }
    rc = fs.rc;
    if (rc == 0 && out)
        *out = fs.reg;
out:
    if (b)
        gw_backend_del(b);
    /* Let closed connections' deferred frees run before the loop goes. */
    gw_loop_run_once(loop, 0);
    gw_loop_del(loop);
    return rc;
}
