/*
 * ucall_driver — runs scenarios through the real upstream call API
 * (src/upstream) against a live backend and prints what happened, one fact
 * per line, for tests/upstream/run_integration.py to compare. Lines starting
 * with '#' are information (timings, peaks) and are not compared.
 *
 *   ucall_driver [--ca FILE] [--cert FILE --key FILE] [--server-name NAME]
 *                [--max-message N] [--pool N] [--accept-gzip]
 *                URL SCENARIO [ARG...]
 *
 * Scenarios: unary, getuser ID, errors, list N, client_stream,
 * client_stream_invalid, bidi N, deadline, cancel, concurrent N,
 * download TOTAL DELAY_MS, big_request, kill_midstream, goaway, never_answers,
 * fault NAME, fault_concurrent N NAME, too_large, retry_until_ok.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo_v1_user.pb-c.h"
#include "google_rpc_error_details.pb-c.h"
#include "google_rpc_status.pb-c.h"
#include "loop/loop.h"
#include "upstream/upstream.h"

#define ECHO_PATH "/demo.v1.EchoService/Echo"

static gw_loop *loop;
static gw_backend *backend;
static int pending_calls;
static const char *backend_url;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ucall_driver: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* ---- framing ------------------------------------------------------------------ */

static uint8_t *frame_msg(const ProtobufCMessage *m, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n + 5);
    if (!buf)
        die("out of memory");
    buf[0] = 0;
    buf[1] = (uint8_t)(n >> 24);
    buf[2] = (uint8_t)(n >> 16);
    buf[3] = (uint8_t)(n >> 8);
    buf[4] = (uint8_t)n;
    protobuf_c_message_pack(m, buf + 5);
    *len = n + 5;
    return buf;
}

/* ---- a call with everything recorded ------------------------------------------ */

typedef struct dcall dcall;
struct dcall {
    gw_ucall *uc;
    bool done;
    int code;
    char message[600];
    char details[600];
    char headers[600];
    char trailers[600];
    bool trailers_only;
    uint64_t messages;
    uint64_t bytes;
    uint64_t started_ns, ended_ns;
    void (*on_msg)(dcall *d, const uint8_t *msg, size_t len, size_t wire_len);
    void (*on_done)(dcall *d);
    bool manual_consume;
    /* request bytes still to write (client streaming through on_writable) */
    uint8_t *pending;
    size_t pending_len, pending_off;
    bool close_after_pending;
    size_t piece;          /* write size (0: 7 bytes) */
    void *user;
};

static int cmp_header(const void *a, const void *b)
{
    const gw_header *x = a, *y = b;
    size_t n = GW_MIN(x->name_len, y->name_len);
    int c = memcmp(x->name, y->name, n);
    return c ? c : (int)x->name_len - (int)y->name_len;
}

/* x-demo-* entries, sorted, as "k=v k=v". */
static void format_md(char *outbuf, size_t cap, const gw_header *h, size_t n)
{
    gw_header *copy = calloc(n ? n : 1, sizeof *copy);
    if (!copy)
        die("out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (h[i].name_len >= 7 && memcmp(h[i].name, "x-demo-", 7) == 0)
            copy[k++] = h[i];
    qsort(copy, k, sizeof *copy, cmp_header);
    size_t at = 0;
    outbuf[0] = 0;
    for (size_t i = 0; i < k && at < cap; i++)
        at += (size_t)snprintf(outbuf + at, cap - at, "%s%.*s=%.*s", i ? " " : "",
                               (int)copy[i].name_len, copy[i].name, (int)copy[i].value_len,
                               copy[i].value);
    free(copy);
}

static void format_details(char *outbuf, size_t cap, const uint8_t *p, size_t n)
{
    if (!p) {
        snprintf(outbuf, cap, "none");
        return;
    }
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, n, p);
    if (!st) {
        snprintf(outbuf, cap, "undecodable");
        return;
    }
    size_t at = (size_t)snprintf(outbuf, cap, "code=%d message=\"%s\"", st->code,
                                 st->message ? st->message : "");
    for (size_t i = 0; i < st->n_details && at < cap; i++) {
        Google__Protobuf__Any *any = st->details[i];
        at += (size_t)snprintf(outbuf + at, cap - at, " any=%s", any->type_url);
        if (strcmp(any->type_url, "type.googleapis.com/google.rpc.BadRequest") == 0) {
            Google__Rpc__BadRequest *br =
                google__rpc__bad_request__unpack(NULL, any->value.len, any->value.data);
            for (size_t j = 0; br && j < br->n_field_violations && at < cap; j++)
                at += (size_t)snprintf(outbuf + at, cap - at, " [%s: %s]",
                                       br->field_violations[j]->field,
                                       br->field_violations[j]->description);
            if (br)
                google__rpc__bad_request__free_unpacked(br, NULL);
        }
    }
    google__rpc__status__free_unpacked(st, NULL);
}

static void h_headers(void *owner, const gw_header *md, size_t n)
{
    dcall *d = owner;
    format_md(d->headers, sizeof d->headers, md, n);
}

static void h_message(void *owner, const uint8_t *msg, size_t len, size_t wire_len)
{
    dcall *d = owner;
    d->messages++;
    d->bytes += len;
    if (d->on_msg)
        d->on_msg(d, msg, len, wire_len);
    if (!d->manual_consume && !d->done && d->uc)
        gw_ucall_consume(d->uc, wire_len);
}

static void write_pending(dcall *d)
{
    while (d->pending && d->pending_off < d->pending_len) {
        /* Small pieces on purpose: message boundaries must not matter. */
        size_t piece = GW_MIN(d->piece ? d->piece : (size_t)7, d->pending_len - d->pending_off);
        long n = gw_ucall_write(d->uc, d->pending + d->pending_off, piece);
        if (n < 0)
            die("gw_ucall_write: %s", gw_err_str((int)n));
        d->pending_off += (size_t)n;
        if ((size_t)n < piece)
            return; /* on_writable will call again */
    }
    if (d->pending && d->close_after_pending) {
        d->close_after_pending = false;
        gw_ucall_close_send(d->uc);
    }
}

static int writable_calls;

static void h_writable(void *owner)
{
    writable_calls++;
    write_pending(owner);
}

static void h_complete(void *owner, const gw_call_status *st)
{
    dcall *d = owner;
    d->done = true;
    d->uc = NULL;
    d->code = st->code;
    d->ended_ns = gw_now_ns();
    snprintf(d->message, sizeof d->message, "%s", st->message);
    format_details(d->details, sizeof d->details, st->details, st->details_len);
    format_md(d->trailers, sizeof d->trailers, st->trailers, st->trailer_count);
    d->trailers_only = st->trailers_only;
    pending_calls--;
    if (d->on_done)
        d->on_done(d);
    if (pending_calls == 0)
        gw_loop_stop(loop);
}

static const gw_ucall_handlers handlers = {
    .on_headers = h_headers,
    .on_message = h_message,
    .on_writable = h_writable,
    .on_complete = h_complete,
};

static void start(dcall *d, const char *path, const gw_header *md, size_t n_md,
                  uint64_t timeout_ms, const uint8_t *req, size_t req_len, bool close)
{
    gw_ucall_params p = {
        .path = path,
        .metadata = md,
        .metadata_count = n_md,
        .deadline_ns = timeout_ms ? gw_now_ns() + timeout_ms * GW_MS : 0,
    };
    gw_error e = {0};
    d->started_ns = gw_now_ns();
    d->done = false;
    if (gw_ucall_start(backend, &p, &handlers, d, &d->uc, &e) != 0)
        die("gw_ucall_start: %s", e.msg);
    pending_calls++;
    if (req) {
        d->pending = malloc(req_len ? req_len : 1);
        if (!d->pending)
            die("out of memory");
        memcpy(d->pending, req, req_len);
        d->pending_len = req_len;
        d->pending_off = 0;
        d->close_after_pending = close;
        write_pending(d);
    } else if (close) {
        gw_ucall_close_send(d->uc);
    }
}

static void dcall_free(dcall *d)
{
    free(d->pending);
    d->pending = NULL;
}

/* Runs the loop until every started call completed, at most limit_s. */
static void run_until_done(int limit_s)
{
    uint64_t end = gw_now_ns() + (uint64_t)limit_s * GW_SEC;
    while (pending_calls > 0) {
        if (gw_now_ns() > end)
            die("timed out with %d calls pending", pending_calls);
        if (gw_loop_run_once(loop, 100) != 0)
            die("loop failed");
    }
}

static void run_for_ms(uint64_t ms)
{
    uint64_t end = gw_now_ns() + ms * GW_MS;
    while (gw_now_ns() < end)
        gw_loop_run_once(loop, 20);
}

static void print_status(const char *prefix, const dcall *d)
{
    out("%sstatus=%s message=\"%s\"", prefix, gw_code_name(d->code), d->message);
}

static void echo_call(dcall *d, const char *text, int64_t number, int64_t delay_ms,
                      const gw_header *md, size_t n_md, uint64_t timeout_ms)
{
    Demo__V1__EchoRequest req = DEMO__V1__ECHO_REQUEST__INIT;
    Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
    req.message = (char *)text;
    req.number = number;
    if (delay_ms) {
        delay.seconds = delay_ms / 1000;
        delay.nanos = (int32_t)(delay_ms % 1000) * 1000000;
        req.delay = &delay;
    }
    size_t len;
    uint8_t *buf = frame_msg(&req.base, &len);
    start(d, ECHO_PATH, md, n_md, timeout_ms, buf, len, true);
    free(buf);
}

static void on_echo_reply(dcall *d, const uint8_t *msg, size_t len, size_t wire)
{
    Demo__V1__EchoResponse *r = demo__v1__echo_response__unpack(NULL, len, msg);
    if (!r) {
        out("reply undecodable");
        return;
    }
    snprintf(d->user ? (char *)d->user : d->details, 200, "message=%s number=%lld",
             r->message, (long long)r->number);
    demo__v1__echo_response__free_unpacked(r, NULL);
}

/* ---- scenarios ---------------------------------------------------------------- */

static int sc_unary(void)
{
    static const gw_header md[] = {
        {"x-demo-a", 8, "1", 1},
        {"x-demo-b-bin", 12, "AQID", 4},
        {"x-other", 7, "not echoed", 10},
    };
    char reply[200] = "";
    dcall d = {.on_msg = on_echo_reply, .user = reply};
    echo_call(&d, "hello", 42, 0, md, GW_ARRAY_LEN(md), 10000);
    run_until_done(30);
    out("headers %s", d.headers);
    out("reply %s", reply);
    print_status("", &d);
    out("trailers %s", d.trailers);
    out("trailers_only=%s", d.trailers_only ? "true" : "false");
    dcall_free(&d);
    return 0;
}

static void on_user(dcall *d, const uint8_t *msg, size_t len, size_t wire)
{
    Demo__V1__User *u = demo__v1__user__unpack(NULL, len, msg);
    if (!u) {
        out("user undecodable");
        return;
    }
    out("user id=%lld name=%s email=%s role=%d", (long long)u->id, u->name, u->email, u->role);
    demo__v1__user__free_unpacked(u, NULL);
}

static int sc_getuser(int64_t id)
{
    Demo__V1__GetUserRequest req = DEMO__V1__GET_USER_REQUEST__INIT;
    req.id = id;
    size_t len;
    uint8_t *buf = frame_msg(&req.base, &len);
    dcall d = {.on_msg = on_user};
    start(&d, "/demo.v1.UserService/GetUser", NULL, 0, 10000, buf, len, true);
    free(buf);
    run_until_done(30);
    print_status("", &d);
    out("trailers_only=%s", d.trailers_only ? "true" : "false");
    dcall_free(&d);
    return 0;
}

static int sc_errors(void)
{
    dcall d[17];
    memset(d, 0, sizeof d);
    uint8_t *bufs[17];
    char texts[17][32];
    for (int code = 0; code <= 16; code++) {
        Demo__V1__FailRequest req = DEMO__V1__FAIL_REQUEST__INIT;
        req.code = code;
        snprintf(texts[code], sizeof texts[code], "failure %d: é%%", code);
        req.message = texts[code];
        size_t len;
        bufs[code] = frame_msg(&req.base, &len);
        start(&d[code], "/demo.v1.EchoService/Fail", NULL, 0, 10000, bufs[code], len, true);
    }
    run_until_done(30);
    for (int code = 0; code <= 16; code++) {
        out("code=%d status=%s message=\"%s\" details=%s messages=%llu", code,
            gw_code_name(d[code].code), d[code].message, d[code].details,
            (unsigned long long)d[code].messages);
        free(bufs[code]);
        dcall_free(&d[code]);
    }
    return 0;
}

typedef struct list_state {
    bool ids_ok;
    uint64_t cancel_after;
    uint64_t print_after;
} list_state;

static void on_list_user(dcall *d, const uint8_t *msg, size_t len, size_t wire)
{
    list_state *ls = d->user;
    Demo__V1__User *u = demo__v1__user__unpack(NULL, len, msg);
    if (!u || u->id != (int64_t)((d->messages - 1) % 3 + 1))
        ls->ids_ok = false;
    if (u)
        demo__v1__user__free_unpacked(u, NULL);
    if (ls->print_after && d->messages == ls->print_after)
        out("STREAMING");
    if (ls->cancel_after && d->messages == ls->cancel_after) {
        gw_ucall_cancel(d->uc);
        d->uc = NULL;
        d->done = true;
        pending_calls--;
    }
}

static void list_call(dcall *d, int32_t page_size, int64_t delay_ms, uint64_t timeout_ms)
{
    Demo__V1__ListUsersRequest req = DEMO__V1__LIST_USERS_REQUEST__INIT;
    Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
    req.page_size = page_size;
    req.follow = true;   /* page_size users, cycling through the store */
    if (delay_ms) {
        delay.seconds = delay_ms / 1000;
        delay.nanos = (int32_t)(delay_ms % 1000) * 1000000;
        req.delay = &delay;
    }
    size_t len;
    uint8_t *buf = frame_msg(&req.base, &len);
    start(d, "/demo.v1.UserService/ListUsers", NULL, 0, timeout_ms, buf, len, true);
    free(buf);
}

static int sc_list(int32_t n)
{
    list_state ls = {.ids_ok = true};
    dcall d = {.on_msg = on_list_user, .user = &ls};
    list_call(&d, n, 0, 120000);
    run_until_done(120);
    out("messages=%llu ids_ok=%s", (unsigned long long)d.messages, ls.ids_ok ? "true" : "false");
    print_status("", &d);
    dcall_free(&d);
    return 0;
}

static void on_summary(dcall *d, const uint8_t *msg, size_t len, size_t wire)
{
    Demo__V1__CreateUsersSummary *s = demo__v1__create_users_summary__unpack(NULL, len, msg);
    if (!s) {
        out("summary undecodable");
        return;
    }
    bool consecutive = s->n_ids == (size_t)s->created;
    for (size_t i = 1; i < s->n_ids; i++)
        if (s->ids[i] != s->ids[i - 1] + 1)
            consecutive = false;
    out("created=%d ids=%zu consecutive=%s", s->created, s->n_ids, consecutive ? "true" : "false");
    demo__v1__create_users_summary__free_unpacked(s, NULL);
}

static int sc_client_stream(bool invalid)
{
    gw_buf all;
    gw_buf_init(&all, 0);
    int n = 5;
    for (int i = 0; i < n; i++) {
        Demo__V1__User u = DEMO__V1__USER__INIT;
        char name[32], email[48];
        snprintf(name, sizeof name, "Streamed %d", i);
        snprintf(email, sizeof email, "streamed%d@example.com", i);
        u.name = (invalid && i == 2) ? (char *)"" : name;
        u.email = (invalid && i == 2) ? (char *)"nowhere" : email;
        size_t len;
        uint8_t *buf = frame_msg(&u.base, &len);
        gw_buf_append(&all, buf, len);
        free(buf);
    }
    dcall d = {.on_msg = on_summary};
    start(&d, "/demo.v1.UserService/CreateUsers", NULL, 0, 10000, all.data, all.len, true);
    gw_buf_free(&all);
    run_until_done(30);
    print_status("", &d);
    out("details=%s", d.details);
    dcall_free(&d);
    return 0;
}

typedef struct chat_state {
    int64_t next;
    int64_t total;
    bool in_order;
} chat_state;

static void chat_send(dcall *d, int64_t seq)
{
    Demo__V1__ChatMessage m = DEMO__V1__CHAT_MESSAGE__INIT;
    char text[32];
    snprintf(text, sizeof text, "hello %lld", (long long)seq);
    m.text = text;
    m.sequence = seq;
    size_t len;
    uint8_t *buf = frame_msg(&m.base, &len);
    long w = gw_ucall_write(d->uc, buf, len);
    if (w != (long)len)
        die("chat write took %ld of %zu", w, len);
    free(buf);
}

static void on_chat(dcall *d, const uint8_t *msg, size_t len, size_t wire)
{
    chat_state *cs = d->user;
    Demo__V1__ChatMessage *m = demo__v1__chat_message__unpack(NULL, len, msg);
    char want[32];
    snprintf(want, sizeof want, "hello %lld", (long long)cs->next);
    if (!m || m->sequence != cs->next || strcmp(m->text, want) != 0 ||
        strcmp(m->from, "server") != 0 || !m->sent_at || m->sent_at->seconds < 1700000000)
        cs->in_order = false;
    if (m)
        demo__v1__chat_message__free_unpacked(m, NULL);
    cs->next++;
    if (cs->next < cs->total)
        chat_send(d, cs->next);
    else
        gw_ucall_close_send(d->uc);
}

static int sc_bidi(int64_t n)
{
    chat_state cs = {.next = 0, .total = n, .in_order = true};
    dcall d = {.on_msg = on_chat, .user = &cs};
    start(&d, "/demo.v1.UserService/Chat", NULL, 0, 60000, NULL, 0, false);
    chat_send(&d, 0); /* ping-pong: the next message goes out when the reply came */
    run_until_done(60);
    out("replies=%llu in_order=%s", (unsigned long long)d.messages, cs.in_order ? "true" : "false");
    print_status("", &d);
    dcall_free(&d);
    return 0;
}

static int sc_deadline(void)
{
    dcall d = {0};
    echo_call(&d, "slow", 1, 10000, NULL, 0, 500);
    run_until_done(30);
    uint64_t ms = (d.ended_ns - d.started_ns) / GW_MS;
    out("status=%s", gw_code_name(d.code));
    out("ended_between_500ms_and_5s=%s", ms >= 450 && ms < 5000 ? "true" : "false");
    out("# elapsed %llu ms, message \"%s\"", (unsigned long long)ms, d.message);
    dcall_free(&d);
    return 0;
}

static int sc_never_answers(void)
{
    dcall d = {0};
    echo_call(&d, "anyone?", 1, 0, NULL, 0, 500);
    run_until_done(30);
    uint64_t ms = (d.ended_ns - d.started_ns) / GW_MS;
    print_status("", &d);
    out("ended_between_500ms_and_5s=%s", ms >= 450 && ms < 5000 ? "true" : "false");
    gw_backend_stats st;
    gw_backend_get_stats(backend, &st);
    out("resets_sent=%llu", (unsigned long long)st.resets_sent);
    dcall_free(&d);
    return 0;
}

static int sc_cancel(void)
{
    list_state ls = {.ids_ok = true, .cancel_after = 10};
    dcall d = {.on_msg = on_list_user, .user = &ls};
    list_call(&d, 100000, 2, 60000);
    run_until_done(30);
    out("cancelled_after=%llu active_calls=%zu", (unsigned long long)d.messages,
        gw_backend_active_calls(backend));
    run_for_ms(300); /* let the RST_STREAM go out and nothing else arrive */
    char reply[200] = "";
    dcall e = {.on_msg = on_echo_reply, .user = reply};
    echo_call(&e, "after cancel", 7, 0, NULL, 0, 10000);
    run_until_done(30);
    print_status("followup ", &e);
    out("followup reply %s", reply);
    gw_backend_stats st;
    gw_backend_get_stats(backend, &st);
    out("messages_after_cancel=%llu connects=%llu resets_sent=%llu",
        (unsigned long long)(d.messages - 10), (unsigned long long)st.connects_started,
        (unsigned long long)st.resets_sent);
    dcall_free(&d);
    dcall_free(&e);
    return 0;
}

static int sc_concurrent(int n)
{
    dcall *d = calloc((size_t)n, sizeof *d);
    if (!d)
        die("out of memory");
    for (int i = 0; i < n; i++)
        echo_call(&d[i], "many", i, 300, NULL, 0, 60000);
    run_until_done(120);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        if (d[i].code == GW_CODE_OK && d[i].messages == 1)
            ok++;
        else if (ok == i)
            out("# call %d: %s %s", i, gw_code_name(d[i].code), d[i].message);
        dcall_free(&d[i]);
    }
    gw_backend_stats st;
    gw_backend_get_stats(backend, &st);
    out("ok=%d connects=%llu peak_streams=%llu", ok, (unsigned long long)st.connects_started,
        (unsigned long long)st.peak_streams);
    free(d);
    return 0;
}

/* ---- slow consumer ----------------------------------------------------------------- */

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

typedef struct slow_state {
    uint64_t delay_ms;
    size_t *fifo;          /* wire lengths not yet consumed */
    size_t head, tail, cap;
    gw_timer timer;
    uint64_t expect_offset;
    bool pattern_ok;
    long rss_base, rss_max;
    dcall *d;
    uint64_t max_unconsumed;
    uint64_t unconsumed;
} slow_state;

static void slow_tick(void *arg)
{
    slow_state *s = arg;
    if (s->head != s->tail && s->d->uc) {
        gw_ucall_consume(s->d->uc, s->fifo[s->head]);
        s->unconsumed -= s->fifo[s->head];
        s->head = (s->head + 1) % s->cap;
    }
    if (!s->d->done)
        gw_loop_timer_start(loop, &s->timer, gw_now_ns() + s->delay_ms * GW_MS);
}

static void on_chunk(dcall *d, const uint8_t *msg, size_t len, size_t wire)
{
    slow_state *s = d->user;
    Demo__V1__Chunk *c = demo__v1__chunk__unpack(NULL, len, msg);
    if (!c || (uint64_t)c->offset != s->expect_offset) {
        s->pattern_ok = false;
    } else {
        for (size_t i = 0; i < c->data.len; i++) {
            if (c->data.data[i] != (uint8_t)((s->expect_offset + i) & 0xff)) {
                s->pattern_ok = false;
                break;
            }
        }
        s->expect_offset += c->data.len;
    }
    if (c)
        demo__v1__chunk__free_unpacked(c, NULL);
    size_t next = (s->tail + 1) % s->cap;
    if (next == s->head)
        die("slow consumer fifo overflow: the window is not holding");
    s->fifo[s->tail] = wire;
    s->tail = next;
    s->unconsumed += wire;
    if (s->unconsumed > s->max_unconsumed)
        s->max_unconsumed = s->unconsumed;
    if (d->messages == 50)
        s->rss_base = rss_kib();
    if (d->messages > 50 && d->messages % 16 == 0) {
        long r = rss_kib();
        if (r > s->rss_max)
            s->rss_max = r;
    }
}

static int sc_download(int64_t total, uint64_t delay_ms)
{
    Demo__V1__DownloadRequest req = DEMO__V1__DOWNLOAD_REQUEST__INIT;
    req.total_bytes = total;
    size_t len;
    uint8_t *buf = frame_msg(&req.base, &len);
    dcall d = {.on_msg = on_chunk, .manual_consume = true};
    slow_state s = {.delay_ms = delay_ms, .cap = 4096, .pattern_ok = true, .d = &d};
    s.fifo = calloc(s.cap, sizeof *s.fifo);
    if (!s.fifo)
        die("out of memory");
    d.user = &s;
    gw_timer_init(&s.timer, slow_tick, &s);
    start(&d, "/demo.v1.EchoService/Download", NULL, 0, 0, buf, len, true);
    free(buf);
    gw_loop_timer_start(loop, &s.timer, gw_now_ns() + delay_ms * GW_MS);
    run_until_done(600);
    gw_loop_timer_stop(loop, &s.timer);
    long growth = s.rss_max > s.rss_base ? s.rss_max - s.rss_base : 0;
    out("bytes=%llu pattern_ok=%s", (unsigned long long)s.expect_offset,
        s.pattern_ok && s.expect_offset == (uint64_t)total ? "true" : "false");
    print_status("", &d);
    out("rss_growth_under_2mib=%s", s.rss_base > 0 && growth < 2048 ? "true" : "false");
    /* The backend may only send what the stream window (the default one
     * here) allows ahead of us. */
    gw_backend_options dflt;
    gw_backend_options_init(&dflt);
    out("unconsumed_within_window=%s", s.max_unconsumed <= dflt.stream_window ? "true" : "false");
    out("# messages %llu, rss base %ld KiB, max %ld KiB, growth %ld KiB, max unconsumed %llu bytes, %.1f s",
        (unsigned long long)d.messages, s.rss_base, s.rss_max, growth,
        (unsigned long long)s.max_unconsumed, (double)(d.ended_ns - d.started_ns) / 1e9);
    free(s.fifo);
    dcall_free(&d);
    return 0;
}

static int sc_too_large(void)
{
    Demo__V1__DownloadRequest req = DEMO__V1__DOWNLOAD_REQUEST__INIT;
    req.total_bytes = 600000;
    req.chunk_size = 200000;
    size_t len;
    uint8_t *buf = frame_msg(&req.base, &len);
    dcall d = {0};
    start(&d, "/demo.v1.EchoService/Download", NULL, 0, 10000, buf, len, true);
    free(buf);
    run_until_done(30);
    print_status("", &d);
    out("messages=%llu", (unsigned long long)d.messages);
    run_for_ms(200);
    char reply[200] = "";
    dcall e = {.on_msg = on_echo_reply, .user = reply};
    echo_call(&e, "still fine", 1, 0, NULL, 0, 10000);
    run_until_done(30);
    print_status("followup ", &e);
    dcall_free(&d);
    dcall_free(&e);
    return 0;
}

/* ---- request backpressure --------------------------------------------------------- */

static void on_avatar_user(dcall *d, const uint8_t *msg, size_t len, size_t wire)
{
    Demo__V1__User *u = demo__v1__user__unpack(NULL, len, msg);
    if (!u) {
        out("user undecodable");
        return;
    }
    bool pattern = true;
    for (size_t i = 0; i < u->avatar.len; i++)
        if (u->avatar.data[i] != (uint8_t)(i * 7))
            pattern = false;
    out("user id=%lld avatar_bytes=%zu avatar_ok=%s", (long long)u->id, u->avatar.len,
        pattern ? "true" : "false");
    demo__v1__user__free_unpacked(u, NULL);
}

/* One 900 KiB request message through a 64 KiB request buffer: the writer
 * must be paused and resumed by on_writable many times. */
static int sc_big_request(void)
{
    size_t n = 900 * 1024;
    uint8_t *data = malloc(n);
    if (!data)
        die("out of memory");
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7);
    Google__Api__HttpBody body = GOOGLE__API__HTTP_BODY__INIT;
    body.content_type = (char *)"application/octet-stream";
    body.data.data = data;
    body.data.len = n;
    Demo__V1__SetAvatarRequest req = DEMO__V1__SET_AVATAR_REQUEST__INIT;
    req.id = 2;
    req.avatar = &body;
    size_t len;
    uint8_t *buf = frame_msg(&req.base, &len);
    free(data);
    dcall d = {.on_msg = on_avatar_user, .piece = 100000};
    start(&d, "/demo.v1.UserService/SetAvatar", NULL, 0, 30000, buf, len, true);
    free(buf);
    run_until_done(60);
    print_status("", &d);
    out("writer_paused=%s", writable_calls >= 5 ? "true" : "false");
    out("# on_writable ran %d times", writable_calls);
    dcall_free(&d);
    return 0;
}

/* ---- head-of-line blocking ----------------------------------------------------- */

/* N downloads whose reader never consumes (each holds a full stream
 * window), then 10 unary calls on the same connection: they must not be
 * stuck behind the stalled streams. */
static int sc_stalled_streams(int n)
{
    dcall *dl = calloc((size_t)n, sizeof *dl);
    if (!dl)
        die("out of memory");
    Demo__V1__DownloadRequest req = DEMO__V1__DOWNLOAD_REQUEST__INIT;
    req.total_bytes = 10 * 1024 * 1024;
    size_t len;
    uint8_t *buf = frame_msg(&req.base, &len);
    for (int i = 0; i < n; i++) {
        dl[i].manual_consume = true;
        start(&dl[i], "/demo.v1.EchoService/Download", NULL, 0, 0, buf, len, true);
    }
    free(buf);
    run_for_ms(500);
    uint64_t held = 0;
    for (int i = 0; i < n; i++)
        held += dl[i].bytes;
    int ok = 0;
    for (int i = 0; i < 10; i++) {
        dcall e = {0};
        echo_call(&e, "not blocked", i, 0, NULL, 0, 5000);
        uint64_t end = gw_now_ns() + 10 * GW_SEC;
        while (!e.done && gw_now_ns() < end)
            gw_loop_run_once(loop, 20);
        if (e.done && e.code == GW_CODE_OK)
            ok++;
        else
            out("# echo %d: %s %s", i, gw_code_name(e.code), e.message);
        dcall_free(&e);
    }
    int still_open = 0;
    for (int i = 0; i < n; i++) {
        if (!dl[i].done) {
            still_open++;
            gw_ucall_cancel(dl[i].uc);
            dl[i].uc = NULL;
            pending_calls--;
        }
        dcall_free(&dl[i]);
    }
    out("stalled=%d echo_ok=%d", still_open, ok);
    out("# %llu bytes delivered to the stalled readers (%d streams)", (unsigned long long)held, n);
    free(dl);
    return 0;
}

/* ---- faults --------------------------------------------------------------------------- */

/* Retries an Echo every 200 ms until OK or limit; prints what it saw. */
static bool retry_until_ok(int limit_s, int *attempts, char *first_failure, size_t cap)
{
    uint64_t end = gw_now_ns() + (uint64_t)limit_s * GW_SEC;
    *attempts = 0;
    first_failure[0] = 0;
    while (gw_now_ns() < end) {
        dcall d = {0};
        echo_call(&d, "ping", 1, 0, NULL, 0, 5000);
        run_until_done(30);
        (*attempts)++;
        dcall_free(&d);
        if (d.code == GW_CODE_OK)
            return true;
        if (!first_failure[0])
            snprintf(first_failure, cap, "%s %s", gw_code_name(d.code), d.message);
        run_for_ms(200);
    }
    return false;
}

static int sc_kill_midstream(void)
{
    list_state ls = {.ids_ok = true, .print_after = 20};
    dcall d = {.on_msg = on_list_user, .user = &ls};
    list_call(&d, 100000, 5, 120000);
    run_until_done(60);
    print_status("stream ", &d);
    out("messages_at_least_20=%s active_calls=%zu",
        d.messages >= 20 ? "true" : "false", gw_backend_active_calls(backend));
    dcall_free(&d);
    /* While the backend is down: a fresh call fails fast. */
    dcall f = {0};
    echo_call(&f, "down?", 1, 0, NULL, 0, 5000);
    run_until_done(30);
    out("while_down status=%s", gw_code_name(f.code));
    out("# while down: %s", f.message);
    dcall_free(&f);
    out("WAITING_RESTART");
    int attempts;
    char first[600];
    bool ok = retry_until_ok(40, &attempts, first, sizeof first);
    out("reconnected=%s", ok ? "true" : "false");
    out("# %d attempts; first failure: %s", attempts, first);
    return 0;
}

static int sc_goaway(void)
{
    list_state ls = {.ids_ok = true};
    dcall d = {.on_msg = on_list_user, .user = &ls};
    list_call(&d, 30, 50, 60000);
    run_until_done(60);
    out("stream messages=%llu ids_ok=%s", (unsigned long long)d.messages,
        ls.ids_ok ? "true" : "false");
    print_status("stream ", &d);
    dcall_free(&d);
    int ok = 0;
    for (int i = 0; i < 10; i++) {
        dcall e = {0};
        echo_call(&e, "after goaway", i, 0, NULL, 0, 10000);
        run_until_done(30);
        if (e.code == GW_CODE_OK)
            ok++;
        else
            out("# echo %d: %s %s", i, gw_code_name(e.code), e.message);
        dcall_free(&e);
        run_for_ms(100);
    }
    gw_backend_stats st;
    gw_backend_get_stats(backend, &st);
    out("echo_ok=%d goaway_seen=%s reconnected=%s", ok, st.goaways_received ? "true" : "false",
        st.connects_ok >= 2 ? "true" : "false");
    out("# goaways %llu, connects %llu", (unsigned long long)st.goaways_received,
        (unsigned long long)st.connects_ok);
    return 0;
}

static void on_text_reply(dcall *d, const uint8_t *msg, size_t len, size_t wire)
{
    snprintf(d->user, 200, "%.*s", (int)GW_MIN(len, (size_t)150), (const char *)msg);
}

static int sc_fault(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/fault.Fault/%s", name);
    char reply[200] = "";
    dcall d = {.on_msg = on_text_reply, .user = reply};
    static const uint8_t empty[5] = {0};
    start(&d, path, NULL, 0, 10000, empty, sizeof empty, true);
    run_until_done(30);
    print_status("", &d);
    out("messages=%llu reply=\"%s\"", (unsigned long long)d.messages, reply);
    gw_backend_stats st;
    gw_backend_get_stats(backend, &st);
    out("retried=%llu connects=%llu", (unsigned long long)st.calls_retried,
        (unsigned long long)st.connects_ok);
    dcall_free(&d);
    return 0;
}

/* N calls at once to a fault path; the server limits concurrent streams. */
static int sc_fault_concurrent(int n, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/fault.Fault/%s", name);
    dcall *d = calloc((size_t)n, sizeof *d);
    if (!d)
        die("out of memory");
    static const uint8_t empty[5] = {0};
    for (int i = 0; i < n; i++)
        start(&d[i], path, NULL, 0, 60000, empty, sizeof empty, true);
    run_until_done(120);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        if (d[i].code == GW_CODE_OK && d[i].messages == 1)
            ok++;
        else
            out("# call %d: %s %s", i, gw_code_name(d[i].code), d[i].message);
        dcall_free(&d[i]);
    }
    gw_backend_stats st;
    gw_backend_get_stats(backend, &st);
    out("ok=%d connects=%llu peak_streams=%llu retried=%llu", ok,
        (unsigned long long)st.connects_ok, (unsigned long long)st.peak_streams,
        (unsigned long long)st.calls_retried);
    free(d);
    return 0;
}

/* Not a test: TOTAL unary Echo calls with INFLIGHT outstanding at any time;
 * prints calls per second (for docs/upstream.md, run by hand). */
typedef struct bench_state {
    int started, total, inflight, ok;
    dcall *slots;
} bench_state;

static bench_state bench;

static void bench_next(dcall *d);

static void bench_done(dcall *d)
{
    if (d->code == GW_CODE_OK)
        bench.ok++;
    dcall_free(d);
    if (bench.started < bench.total)
        bench_next(d);
}

static void bench_next(dcall *d)
{
    memset(d, 0, sizeof *d);
    d->on_done = bench_done;
    bench.started++;
    echo_call(d, "bench", bench.started, 0, NULL, 0, 60000);
}

static int sc_bench_unary(int total, int inflight)
{
    bench.total = total;
    bench.inflight = inflight;
    bench.slots = calloc((size_t)inflight, sizeof *bench.slots);
    if (!bench.slots)
        die("out of memory");
    uint64_t t0 = gw_now_ns();
    for (int i = 0; i < inflight && bench.started < total; i++)
        bench_next(&bench.slots[i]);
    run_until_done(600);
    double s = (double)(gw_now_ns() - t0) / 1e9;
    out("ok=%d of %d in %.2f s: %.0f calls/s with %d in flight", bench.ok, total, s,
        bench.ok / s, inflight);
    free(bench.slots);
    return 0;
}

static int sc_retry_until_ok(void)
{
    int attempts;
    char first[600];
    bool ok = retry_until_ok(20, &attempts, first, sizeof first);
    out("ok=%s", ok ? "true" : "false");
    out("# %d attempts; first failure: %s", attempts, first);
    return 0;
}

int main(int argc, char **argv)
{
    gw_backend_options o;
    gw_backend_options_init(&o);
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--accept-gzip") == 0) {
            o.accept_gzip = true;
            continue;
        }
        if (i + 1 >= argc)
            die("%s needs a value", argv[i]);
        if (strcmp(argv[i], "--ca") == 0)
            o.ca_file = argv[++i];
        else if (strcmp(argv[i], "--max-message") == 0)
            o.max_response_message = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--cert") == 0)
            o.cert_file = argv[++i];
        else if (strcmp(argv[i], "--key") == 0)
            o.key_file = argv[++i];
        else if (strcmp(argv[i], "--server-name") == 0)
            o.server_name = argv[++i];
        else if (strcmp(argv[i], "--pool") == 0)
            o.pool_size = strtoull(argv[++i], NULL, 10);
        else
            die("unknown option %s", argv[i]);
    }
    if (argc - i < 2)
        die("usage: ucall_driver [--ca FILE] [--cert FILE --key FILE] [--server-name NAME] "
            "[--max-message N] [--pool N] [--accept-gzip] URL SCENARIO [ARG...]");
    backend_url = argv[i];
    const char *sc = argv[i + 1];
    char **args = argv + i + 2;
    int nargs = argc - i - 2;
    gw_log_set_level(getenv("GW_DRIVER_DEBUG") ? GW_LOG_DEBUG : GW_LOG_ERROR);
    loop = gw_loop_new();
    if (!loop)
        die("gw_loop_new: %s", strerror(errno));
    gw_error e = {0};
    if (gw_backend_new(loop, backend_url, &o, &backend, &e) != 0)
        die("gw_backend_new: %s", e.msg);
#define ARG(k) (nargs > (k) ? args[k] : (die("scenario %s needs more arguments", sc), ""))
    int rc;
    if (strcmp(sc, "unary") == 0)
        rc = sc_unary();
    else if (strcmp(sc, "getuser") == 0)
        rc = sc_getuser(strtoll(ARG(0), NULL, 10));
    else if (strcmp(sc, "errors") == 0)
        rc = sc_errors();
    else if (strcmp(sc, "list") == 0)
        rc = sc_list((int32_t)strtol(ARG(0), NULL, 10));
    else if (strcmp(sc, "client_stream") == 0)
        rc = sc_client_stream(false);
    else if (strcmp(sc, "client_stream_invalid") == 0)
        rc = sc_client_stream(true);
    else if (strcmp(sc, "bidi") == 0)
        rc = sc_bidi(strtoll(ARG(0), NULL, 10));
    else if (strcmp(sc, "deadline") == 0)
        rc = sc_deadline();
    else if (strcmp(sc, "never_answers") == 0)
        rc = sc_never_answers();
    else if (strcmp(sc, "cancel") == 0)
        rc = sc_cancel();
    else if (strcmp(sc, "concurrent") == 0)
        rc = sc_concurrent((int)strtol(ARG(0), NULL, 10));
    else if (strcmp(sc, "download") == 0)
        rc = sc_download(strtoll(ARG(0), NULL, 10), strtoull(ARG(1), NULL, 10));
    else if (strcmp(sc, "big_request") == 0)
        rc = sc_big_request();
    else if (strcmp(sc, "too_large") == 0)
        rc = sc_too_large();
    else if (strcmp(sc, "kill_midstream") == 0)
        rc = sc_kill_midstream();
    else if (strcmp(sc, "goaway") == 0)
        rc = sc_goaway();
    else if (strcmp(sc, "fault") == 0)
        rc = sc_fault(ARG(0));
    else if (strcmp(sc, "fault_concurrent") == 0)
        rc = sc_fault_concurrent((int)strtol(ARG(0), NULL, 10), ARG(1));
    else if (strcmp(sc, "stalled_streams") == 0)
        rc = sc_stalled_streams((int)strtol(ARG(0), NULL, 10));
    else if (strcmp(sc, "bench_unary") == 0)
        rc = sc_bench_unary((int)strtol(ARG(0), NULL, 10), (int)strtol(ARG(1), NULL, 10));
    else if (strcmp(sc, "retry_until_ok") == 0)
        rc = sc_retry_until_ok();
    else
        die("unknown scenario %s", sc);
    out("active_calls_at_exit=%zu", gw_backend_active_calls(backend));
    gw_backend_del(backend);
    /* Let deferred frees of closed connections run. */
    gw_loop_run_once(loop, 0);
    gw_loop_del(loop);
    return rc;
}
