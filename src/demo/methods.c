/*
 * The demo API's behaviour (see docs/demo-service.md): the in-memory user
 * store and every method of demo.v1.UserService, demo.v1.EchoService,
 * grpc.health.v1.Health/Check and server reflection.
 *
 * Users are stored serialized, sorted by id. Reading a user is then a copy
 * of bytes, and a change decodes the stored message, builds the new one as
 * a shallow struct that borrows from the old one and the request, and
 * serializes it; nothing in the store is a tree of protobuf-c allocations.
 */
#include "demo/internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo_v1_user.pb-c.h"
#include "google_protobuf_empty.pb-c.h"
#include "grpc_health_v1_health.pb-c.h"

/* ---- the store -------------------------------------------------------------- */

typedef struct dm_user {
    int64_t id;
    int32_t role;
    uint8_t *bytes;
    size_t len;
} dm_user;

typedef struct dm_list {
    dm_user *v;
    size_t n, cap;
} dm_list;

struct dm_store {
    dm_list live;
    dm_list deleted;   /* what UndeleteUser can bring back */
    int64_t next_id;
    size_t bytes;
};

static long list_find(const dm_list *l, int64_t id)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->v[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < l->n && l->v[lo].id == id ? (long)lo : -(long)lo - 1;
}

/* Inserts or replaces; takes u.bytes. Returns 0 or GW_ENOMEM (u.bytes is
 * then still the caller's). */
static int list_put(dm_list *l, dm_user u)
{
    long at = list_find(l, u.id);
    if (at >= 0) {
        free(l->v[at].bytes);
        l->v[at] = u;
        return 0;
    }
    size_t pos = (size_t)(-at - 1);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        dm_user *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return GW_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    memmove(l->v + pos + 1, l->v + pos, (l->n - pos) * sizeof *l->v);
    l->v[pos] = u;
    l->n++;
    return 0;
}

static dm_user list_take(dm_list *l, size_t at)
{
    dm_user u = l->v[at];
    memmove(l->v + at, l->v + at + 1, (l->n - at - 1) * sizeof *l->v);
    l->n--;
    return u;
}

static void list_free(dm_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].bytes);
    free(l->v);
}

/* Serializes u and stores it (replacing any user with its id). Returns 0,
 * GW_ELIMIT (store full) or GW_ENOMEM. */
static int store_save(dm_store *s, const Demo__V1__User *u)
{
    size_t len = demo__v1__user__get_packed_size(u);
    long at = list_find(&s->live, u->id);
    size_t old = at >= 0 ? s->live.v[at].len : 0;
    if ((at < 0 && s->live.n + s->deleted.n >= DM_MAX_USERS) ||
        s->bytes - old + len > DM_MAX_STORE_BYTES)
        return GW_ELIMIT;
    uint8_t *b = malloc(len ? len : 1);
    if (!b)
        return GW_ENOMEM;
    demo__v1__user__pack(u, b);
    dm_user du = {u->id, (int32_t)u->role, b, len};
    if (list_put(&s->live, du) < 0) {
        free(b);
        return GW_ENOMEM;
    }
    s->bytes = s->bytes - old + len;
    return 0;
}

static const dm_user *store_get(const dm_store *s, int64_t id)
{
    long at = list_find(&s->live, id);
    return at >= 0 ? &s->live.v[at] : NULL;
}

static Demo__V1__User *store_decode(const dm_store *s, int64_t id)
{
    const dm_user *u = store_get(s, id);
    return u ? demo__v1__user__unpack(NULL, u->len, u->bytes) : NULL;
}

void dm_store_del(dm_store *s)
{
    if (!s)
        return;
    list_free(&s->live);
    list_free(&s->deleted);
    free(s);
}

dm_store *dm_store_new(void)
{
    dm_store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->next_id = 4;

    Demo__V1__Address addr = DEMO__V1__ADDRESS__INIT;
    addr.street = (char *)"12 St James's Square";
    addr.city = (char *)"London";
    addr.country = (char *)"UK";
    Demo__V1__User__LabelsEntry team = DEMO__V1__USER__LABELS_ENTRY__INIT;
    team.key = (char *)"team";
    team.value = (char *)"engine";
    Demo__V1__User__LabelsEntry *labels[] = {&team};
    char *tags[] = {(char *)"math", (char *)"poetry"};
    Google__Protobuf__Timestamp t1 = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    t1.seconds = 1704164645; /* 2024-01-02T03:04:05.678Z */
    t1.nanos = 678000000;
    Google__Protobuf__Timestamp t2 = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    t2.seconds = 1706933106; /* 2024-02-03T04:05:06Z */
    Google__Protobuf__Timestamp t3 = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    t3.seconds = 1709528767; /* 2024-03-04T05:06:07Z */

    Demo__V1__User ada = DEMO__V1__USER__INIT;
    ada.id = 1;
    ada.name = (char *)"Ada Lovelace";
    ada.email = (char *)"ada@example.com";
    ada.role = DEMO__V1__ROLE__ROLE_ADMIN;
    ada.active = 1;
    ada.age = 36;
    ada.score = 99.5;
    ada.n_tags = 2;
    ada.tags = tags;
    ada.n_labels = 1;
    ada.labels = labels;
    ada.address = &addr;
    ada.contact_case = DEMO__V1__USER__CONTACT_PHONE;
    ada.phone = (char *)"+44 20 0000 0001";
    ada.nickname = (char *)"Ada";
    ada.created_at = &t1;
    ada.karma = 42;

    Demo__V1__User alan = DEMO__V1__USER__INIT;
    alan.id = 2;
    alan.name = (char *)"Alan Turing";
    alan.email = (char *)"alan@example.com";
    alan.role = DEMO__V1__ROLE__ROLE_EDITOR;
    alan.active = 1;
    alan.age = 41;
    alan.created_at = &t2;
    alan.contact_case = DEMO__V1__USER__CONTACT_SLACK_HANDLE;
    alan.slack_handle = (char *)"@alan";

    Demo__V1__User grace = DEMO__V1__USER__INIT;
    grace.id = 3;
    grace.name = (char *)"Grace Hopper";
    grace.email = (char *)"grace@example.com";
    grace.role = DEMO__V1__ROLE__ROLE_VIEWER;
    grace.active = 0;
    grace.age = 85;
    grace.created_at = &t3;

    if (store_save(s, &ada) || store_save(s, &alan) || store_save(s, &grace)) {
        dm_store_del(s);
        return NULL;
    }
    return s;
}

/* ---- helpers ------------------------------------------------------------------ */

static void *decode(dm_call *c, const ProtobufCMessageDescriptor *d, const uint8_t *m,
                    size_t len)
{
    void *r = protobuf_c_message_unpack(d, NULL, len, m);
    if (!r)
        dm_call_finishf(c, GW_CODE_INTERNAL, "request does not decode as %s", d->name);
    return r;
}

static void release(void *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

static void finish_oom(dm_call *c)
{
    dm_call_finish(c, GW_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
}

static void finish_store_error(dm_call *c, int rc)
{
    if (rc == GW_ELIMIT)
        dm_call_finish(c, GW_CODE_RESOURCE_EXHAUSTED, "user store is full", NULL, 0);
    else
        finish_oom(c);
}

static void finish_not_found(dm_call *c, int64_t id)
{
    dm_call_finishf(c, GW_CODE_NOT_FOUND, "user %lld not found", (long long)id);
}

/* Sends one message and ends the call OK. */
static void reply(dm_call *c, const ProtobufCMessage *m)
{
    if (dm_call_send_message(c, m) == 0)
        dm_call_finish(c, GW_CODE_OK, NULL, NULL, 0);
}

static void reply_bytes(dm_call *c, const uint8_t *b, size_t len)
{
    if (dm_call_send(c, b, len) == 0)
        dm_call_finish(c, GW_CODE_OK, NULL, NULL, 0);
}

/* Answers with the stored user id. */
static void reply_user(dm_call *c, int64_t id)
{
    const dm_user *u = store_get(dm_call_store(c), id);
    if (u)
        reply_bytes(c, u->bytes, u->len);
    else
        finish_not_found(c, id);
}

static void finish_bad_request(dm_call *c, const char *message, const dm_violation *v,
                               size_t n)
{
    gw_buf details;
    gw_buf_init(&details, 0);
    if (dm_status_details(&details, GW_CODE_INVALID_ARGUMENT, message, v, n) < 0)
        finish_oom(c);
    else
        dm_call_finish(c, GW_CODE_INVALID_ARGUMENT, message, details.data, details.len);
    gw_buf_free(&details);
}

static uint64_t duration_ns(const Google__Protobuf__Duration *d)
{
    return d ? dm_duration_ns(d->seconds, d->nanos) : 0;
}

/* Validates, assigns the next id and created_at, stores. Returns the new id,
 * or 0 after finishing the call with the error. */
static int64_t create_user(dm_call *c, Demo__V1__User *u)
{
    dm_store *s = dm_call_store(c);
    dm_violation v[2];
    size_t n = 0;
    if (!u->name || !u->name[0])
        v[n++] = (dm_violation){"name", "name is required"};
    if (!u->email || !strchr(u->email, '@'))
        v[n++] = (dm_violation){"email", "email must contain '@'"};
    if (n > 0) {
        finish_bad_request(c, "invalid user", v, n);
        return 0;
    }
    Google__Protobuf__Timestamp now = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Google__Protobuf__Timestamp *given = u->created_at;
    if (!given) {
        dm_wall_clock(&now.seconds, &now.nanos);
        u->created_at = &now;
    }
    u->id = s->next_id;
    int rc = store_save(s, u);
    u->created_at = given;   /* `now` is ours, not protobuf-c's to free */
    if (rc) {
        finish_store_error(c, rc);
        return 0;
    }
    return s->next_id++;
}

/* ---- UserService ---------------------------------------------------------------- */

static void get_user(dm_call *c, const uint8_t *m, size_t len)
{
    Demo__V1__GetUserRequest *req = decode(c, &demo__v1__get_user_request__descriptor, m, len);
    if (!req)
        return;
    const dm_user *u = store_get(dm_call_store(c), req->id);
    if (u)
        reply_bytes(c, u->bytes, u->len);
    else
        finish_not_found(c, req->id);
    release(req);
}

static void create_one(dm_call *c, const uint8_t *m, size_t len)
{
    Demo__V1__User *u = decode(c, &demo__v1__user__descriptor, m, len);
    if (!u)
        return;
    int64_t id = create_user(c, u);
    if (id) {
        reply_user(c, id);
    }
    release(u);
}

/* Applies one update_mask path from nu to the merged user m. Returns false
 * for a path that names no field. */
static bool apply_path(Demo__V1__User *m, Demo__V1__Address *addr, const Demo__V1__User *nu,
                       const char *p)
{
#define FIELD(name) if (strcmp(p, #name) == 0) { m->name = nu->name; return true; }
#define REPEATED(name) \
    if (strcmp(p, #name) == 0) { m->n_##name = nu->n_##name; m->name = nu->name; return true; }
    FIELD(name) FIELD(email) FIELD(role) FIELD(active) FIELD(age) FIELD(score)
    FIELD(avatar) FIELD(nickname) FIELD(created_at) FIELD(session_ttl) FIELD(display_name)
    FIELD(login_count) FIELD(preferences) FIELD(revision) FIELD(karma) FIELD(address)
    REPEATED(tags) REPEATED(labels) REPEATED(previous_addresses) REPEATED(role_history)
#undef FIELD
#undef REPEATED
    if (strcmp(p, "id") == 0)
        return true;   /* the id names the user; it is never changed */
    if (strcmp(p, "phone") == 0 || strcmp(p, "slack_handle") == 0) {
        Demo__V1__User__ContactCase want = p[0] == 'p' ? DEMO__V1__USER__CONTACT_PHONE
                                                       : DEMO__V1__USER__CONTACT_SLACK_HANDLE;
        if (nu->contact_case == want) {
            m->contact_case = want;
            m->phone = nu->phone;   /* the oneof members share storage */
        } else if (m->contact_case == want) {
            m->contact_case = DEMO__V1__USER__CONTACT__NOT_SET;
            m->phone = NULL;
        }
        return true;
    }
    if (strncmp(p, "address.", 8) == 0) {
        const char *sub = p + 8;
        const Demo__V1__Address *na = nu->address;
        if (m->address != addr) {
            if (m->address)
                *addr = *m->address;
            m->address = addr;
        }
        if (strcmp(sub, "street") == 0)
            addr->street = na ? na->street : (char *)"";
        else if (strcmp(sub, "city") == 0)
            addr->city = na ? na->city : (char *)"";
        else if (strcmp(sub, "country") == 0)
            addr->country = na ? na->country : (char *)"";
        else
            return false;
        return true;
    }
    return false;
}

static void update_user(dm_call *c, const uint8_t *msg, size_t len)
{
    dm_store *s = dm_call_store(c);
    Demo__V1__User *old = NULL;
    Demo__V1__UpdateUserRequest *req =
        decode(c, &demo__v1__update_user_request__descriptor, msg, len);
    if (!req)
        return;
    static Demo__V1__User empty = DEMO__V1__USER__INIT;
    const Demo__V1__User *nu = req->user ? req->user : &empty;
    if (!store_get(s, nu->id)) {
        finish_not_found(c, nu->id);
        goto out;
    }
    old = store_decode(s, nu->id);
    if (!old) {
        finish_oom(c);
        goto out;
    }
    Demo__V1__User m;
    Demo__V1__Address addr = DEMO__V1__ADDRESS__INIT;
    if (!req->update_mask || req->update_mask->n_paths == 0) {
        m = *nu;
        m.id = old->id;
        m.created_at = old->created_at;
    } else {
        m = *old;
        for (size_t i = 0; i < req->update_mask->n_paths; i++) {
            const char *p = req->update_mask->paths[i];
            if (!apply_path(&m, &addr, nu, p)) {
                dm_call_finishf(c, GW_CODE_INVALID_ARGUMENT,
                                "unknown field in update_mask: %s", p);
                goto out;
            }
        }
    }
    int rc = store_save(s, &m);
    if (rc) {
        finish_store_error(c, rc);
        goto out;
    }
    reply_user(c, m.id);
out:
    release(old);
    release(req);
}

static void delete_user(dm_call *c, const uint8_t *msg, size_t len)
{
    dm_store *s = dm_call_store(c);
    Demo__V1__DeleteUserRequest *req =
        decode(c, &demo__v1__delete_user_request__descriptor, msg, len);
    if (!req)
        return;
    long at = list_find(&s->live, req->id);
    if (at < 0) {
        finish_not_found(c, req->id);
    } else {
        dm_user u = list_take(&s->live, (size_t)at);
        if (list_put(&s->deleted, u) < 0) {
            list_put(&s->live, u);   /* cannot fail: the slot was just freed */
            finish_oom(c);
        } else {
            Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
            reply(c, &e.base);
        }
    }
    release(req);
}

static void undelete_user(dm_call *c, const uint8_t *msg, size_t len)
{
    dm_store *s = dm_call_store(c);
    Demo__V1__UndeleteUserRequest *req =
        decode(c, &demo__v1__undelete_user_request__descriptor, msg, len);
    if (!req)
        return;
    long at = list_find(&s->deleted, req->id);
    if (at < 0) {
        finish_not_found(c, req->id);
    } else {
        dm_user u = list_take(&s->deleted, (size_t)at);
        if (list_put(&s->live, u) < 0) {
            list_put(&s->deleted, u);
            finish_oom(c);
        } else {
            reply_user(c, req->id);
        }
    }
    release(req);
}

/* The index of the user ListUsers sends next, or -1 when it is done. The
 * cursor is an id, not an index, so that users created or deleted while a
 * stream runs do not derail it. */
static long list_next(dm_call *c)
{
    struct dm_call_state *st = dm_call_state(c);
    const dm_list *l = &dm_call_store(c)->live;
    if (st->limited && st->remaining == 0)
        return -1;
    long at = list_find(l, st->last_id);
    size_t i = at >= 0 ? (size_t)at + 1 : (size_t)(-at - 1);
    for (int pass = 0; pass < 2; pass++) {
        while (i < l->n && st->role != 0 && l->v[i].role != st->role)
            i++;
        if (i < l->n)
            return (long)i;
        if (!st->wrap)
            return -1;
        i = 0;
    }
    return -1;
}

/* ListUsers: the producer sends users while the client's window has room;
 * with a delay it sends one and sleeps. */
static void list_fill(dm_call *c)
{
    struct dm_call_state *st = dm_call_state(c);
    const dm_list *l = &dm_call_store(c)->live;
    long i;
    while (dm_call_out_pending(c) < DM_FILL_BATCH && (i = list_next(c)) >= 0) {
        st->last_id = l->v[i].id;
        if (st->limited)
            st->remaining--;
        if (dm_call_send(c, l->v[i].bytes, l->v[i].len) < 0)
            return;
        if (st->delay_ns > 0) {
            if (list_next(c) >= 0)
                dm_call_sleep(c, st->delay_ns, list_fill);
            else
                dm_call_finish(c, GW_CODE_OK, NULL, NULL, 0);
            return;
        }
    }
    if (list_next(c) < 0)
        dm_call_finish(c, GW_CODE_OK, NULL, NULL, 0);
}

static void list_users(dm_call *c, const uint8_t *msg, size_t len)
{
    Demo__V1__ListUsersRequest *req =
        decode(c, &demo__v1__list_users_request__descriptor, msg, len);
    if (!req)
        return;
    struct dm_call_state *st = dm_call_state(c);
    if (req->page_size < 0 || req->page_size > DM_MAX_PAGE_SIZE) {
        dm_call_finishf(c, GW_CODE_INVALID_ARGUMENT,
                        "page_size must be between 0 and %d", DM_MAX_PAGE_SIZE);
    } else {
        /* A page ends at the last user; follow starts over from the first
         * (the web page's live feed) until page_size were sent. */
        st->remaining = req->page_size;
        st->limited = req->page_size > 0;
        st->wrap = req->follow && req->page_size > 0;
        st->role = (int32_t)req->role;
        st->delay_ns = duration_ns(req->delay);
        st->last_id = INT64_MIN;
        dm_call_set_producer(c, list_fill);
    }
    release(req);
}

static void create_users_message(dm_call *c, const uint8_t *m, size_t len)
{
    Demo__V1__User *u = decode(c, &demo__v1__user__descriptor, m, len);
    if (!u)
        return;
    struct dm_call_state *st = dm_call_state(c);
    int64_t id = create_user(c, u);
    if (id) {
        if (gw_buf_append(&st->ids, &id, sizeof id) < 0)
            finish_oom(c);
        else
            st->created++;
    }
    release(u);
}

static void create_users_end(dm_call *c)
{
    struct dm_call_state *st = dm_call_state(c);
    Demo__V1__CreateUsersSummary sum = DEMO__V1__CREATE_USERS_SUMMARY__INIT;
    sum.created = st->created;
    sum.n_ids = st->ids.len / sizeof(int64_t);
    sum.ids = (int64_t *)(void *)st->ids.data;   /* gw_buf data is malloc-aligned */
    reply(c, &sum.base);
}

static void chat_message(dm_call *c, const uint8_t *m, size_t len)
{
    Demo__V1__ChatMessage *in = decode(c, &demo__v1__chat_message__descriptor, m, len);
    if (!in)
        return;
    if (in->text && strcmp(in->text, "!abort") == 0) {
        /* A status in the middle of the stream, for clients' tests. */
        release(in);
        dm_call_finish(c, GW_CODE_ABORTED, "chat aborted on request", NULL, 0);
        return;
    }
    Google__Protobuf__Timestamp now = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    dm_wall_clock(&now.seconds, &now.nanos);
    Demo__V1__ChatMessage out = DEMO__V1__CHAT_MESSAGE__INIT;
    out.text = in->text;
    out.from = (char *)"server";
    out.sent_at = &now;
    out.sequence = in->sequence;
    dm_call_send_message(c, &out.base);
    release(in);
}

static void end_ok(dm_call *c)
{
    dm_call_finish(c, GW_CODE_OK, NULL, NULL, 0);
}

/* Appends the UTF-8 sequence starting at s (one character) if it is a letter
 * or digit (ASCII) or any non-ASCII character. */
static void add_initial(gw_buf *b, const char *s)
{
    unsigned char ch = (unsigned char)s[0];
    if (ch < 0x80) {
        if (isalnum(ch))
            gw_buf_append_byte(b, (uint8_t)toupper(ch));
        return;
    }
    size_t n = 1;
    while (n < 4 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n++;
    if (gw_utf8_valid((const uint8_t *)s, n))
        gw_buf_append(b, s, n);
}

static void get_avatar(dm_call *c, const uint8_t *msg, size_t len)
{
    Demo__V1__User *u = NULL;
    gw_buf svg, initials;
    gw_buf_init(&svg, 4096);
    gw_buf_init(&initials, 64);
    Demo__V1__GetAvatarRequest *req =
        decode(c, &demo__v1__get_avatar_request__descriptor, msg, len);
    if (!req)
        goto out;
    if (!store_get(dm_call_store(c), req->id)) {
        finish_not_found(c, req->id);
        goto out;
    }
    u = store_decode(dm_call_store(c), req->id);
    if (!u) {
        finish_oom(c);
        goto out;
    }
    /* First letter of the first and of the last word. */
    const char *name = u->name ? u->name : "";
    const char *first = NULL, *last = NULL;
    for (const char *p = name; *p; p++)
        if (*p != ' ' && (p == name || p[-1] == ' ')) {
            if (!first)
                first = p;
            else
                last = p;
        }
    if (first)
        add_initial(&initials, first);
    if (last)
        add_initial(&initials, last);
    if (gw_buf_printf(&svg,
                      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" height=\"64\" "
                      "viewBox=\"0 0 64 64\"><circle cx=\"32\" cy=\"32\" r=\"32\" "
                      "fill=\"#3b6ea5\"/><text x=\"32\" y=\"41\" font-family=\"sans-serif\" "
                      "font-size=\"24\" fill=\"#ffffff\" text-anchor=\"middle\">%s</text></svg>",
                      initials.data ? (const char *)initials.data : "") < 0) {
        finish_oom(c);
        goto out;
    }
    Google__Api__HttpBody body = GOOGLE__API__HTTP_BODY__INIT;
    body.content_type = (char *)"image/svg+xml";
    body.data.data = svg.data;
    body.data.len = svg.len;
    reply(c, &body.base);
out:
    gw_buf_free(&svg);
    gw_buf_free(&initials);
    release(u);
    release(req);
}

static void set_avatar(dm_call *c, const uint8_t *msg, size_t len)
{
    dm_store *s = dm_call_store(c);
    Demo__V1__User *u = NULL;
    Demo__V1__SetAvatarRequest *req =
        decode(c, &demo__v1__set_avatar_request__descriptor, msg, len);
    if (!req)
        return;
    if (!store_get(s, req->id)) {
        finish_not_found(c, req->id);
        goto out;
    }
    if (req->avatar && req->avatar->data.len > DM_MAX_AVATAR) {
        dm_call_finishf(c, GW_CODE_INVALID_ARGUMENT, "avatar is larger than %u bytes (%zu)",
                        DM_MAX_AVATAR, req->avatar->data.len);
        goto out;
    }
    u = store_decode(s, req->id);
    if (!u) {
        finish_oom(c);
        goto out;
    }
    ProtobufCBinaryData keep = u->avatar;
    u->avatar.data = req->avatar ? req->avatar->data.data : NULL;
    u->avatar.len = req->avatar ? req->avatar->data.len : 0;
    int rc = store_save(s, u);
    u->avatar = keep;
    if (rc) {
        finish_store_error(c, rc);
        goto out;
    }
    reply_user(c, req->id);
out:
    release(u);
    release(req);
}

/* ---- EchoService -------------------------------------------------------------------- */

static void finish_pending(dm_call *c)
{
    struct dm_call_state *st = dm_call_state(c);
    if (st->pending_code == GW_CODE_OK)
        reply_bytes(c, st->pending.data ? st->pending.data : (const uint8_t *)"",
                    st->pending.len);
    else
        dm_call_finish(c, st->pending_code, st->pending_message, st->pending_details.data,
                       st->pending_details.len);
}

/* Prepares an OK EchoResponse and sends it after the delay. */
static void answer_later(dm_call *c, const char *message, int64_t number, uint64_t delay)
{
    struct dm_call_state *st = dm_call_state(c);
    Demo__V1__EchoResponse r = DEMO__V1__ECHO_RESPONSE__INIT;
    r.message = (char *)message;
    r.number = number;
    size_t len = demo__v1__echo_response__get_packed_size(&r);
    if (gw_buf_reserve(&st->pending, len) < 0) {
        finish_oom(c);
        return;
    }
    demo__v1__echo_response__pack(&r, st->pending.data);
    st->pending.len = len;
    st->pending_code = GW_CODE_OK;
    if (delay)
        dm_call_sleep(c, delay, finish_pending);
    else
        finish_pending(c);
}

static void echo(dm_call *c, const uint8_t *msg, size_t len)
{
    Demo__V1__EchoRequest *req = decode(c, &demo__v1__echo_request__descriptor, msg, len);
    if (!req)
        return;
    answer_later(c, req->message, req->number, duration_ns(req->delay));
    release(req);
}

static void fail(dm_call *c, const uint8_t *msg, size_t len)
{
    Demo__V1__FailRequest *req = decode(c, &demo__v1__fail_request__descriptor, msg, len);
    if (!req)
        return;
    struct dm_call_state *st = dm_call_state(c);
    uint64_t delay = duration_ns(req->delay);
    if (req->code == 0) {
        answer_later(c, req->message, 0, delay);
        goto out;
    }
    /* Codes outside google.rpc.Code cannot be represented by clients. */
    int code = req->code > 0 && req->code <= GW_CODE_MAX ? req->code : GW_CODE_UNKNOWN;
    st->pending_code = code;
    st->pending_message = strdup(req->message ? req->message : "");
    if (!st->pending_message) {
        finish_oom(c);
        goto out;
    }
    if (code == GW_CODE_INVALID_ARGUMENT) {
        dm_violation v = {"code", "requested failure"};
        if (dm_status_details(&st->pending_details, code, req->message, &v, 1) < 0) {
            finish_oom(c);
            goto out;
        }
    }
    if (delay)
        dm_call_sleep(c, delay, finish_pending);
    else
        finish_pending(c);
out:
    release(req);
}

static void download_fill(dm_call *c)
{
    struct dm_call_state *st = dm_call_state(c);
    gw_buf *out = dm_call_out(c);
    while (st->remaining > 0 && dm_call_out_pending(c) < DM_FILL_BATCH) {
        size_t n = (size_t)GW_MIN((int64_t)st->chunk, st->remaining);
        uint8_t head[32];
        size_t h = 0;
        if (st->offset != 0) {
            head[h++] = 0x08;
            for (uint64_t v = (uint64_t)st->offset; ; v >>= 7) {
                head[h++] = (uint8_t)(v >= 0x80 ? (v & 0x7f) | 0x80 : v);
                if (v < 0x80)
                    break;
            }
        }
        head[h++] = 0x12;
        for (uint64_t v = n; ; v >>= 7) {
            head[h++] = (uint8_t)(v >= 0x80 ? (v & 0x7f) | 0x80 : v);
            if (v < 0x80)
                break;
        }
        if (dm_frame_prefix(out, h + n) < 0 || gw_buf_append(out, head, h) < 0 ||
            gw_buf_reserve(out, n) < 0) {
            finish_oom(c);
            return;
        }
        uint8_t *d = out->data + out->len;
        for (size_t i = 0; i < n; i++)
            d[i] = (uint8_t)((uint64_t)st->offset + i);
        out->len += n;
        out->data[out->len] = 0;
        st->offset += (int64_t)n;
        st->remaining -= (int64_t)n;
        dm_call_sent(c);
    }
    if (st->remaining == 0)
        dm_call_finish(c, GW_CODE_OK, NULL, NULL, 0);
}

static void download(dm_call *c, const uint8_t *msg, size_t len)
{
    Demo__V1__DownloadRequest *req = decode(c, &demo__v1__download_request__descriptor, msg, len);
    if (!req)
        return;
    struct dm_call_state *st = dm_call_state(c);
    if (req->total_bytes < 0) {
        dm_call_finish(c, GW_CODE_INVALID_ARGUMENT, "total_bytes must not be negative", NULL, 0);
    } else if (req->chunk_size < 0 || req->chunk_size > (int32_t)DM_MAX_CHUNK) {
        dm_call_finishf(c, GW_CODE_INVALID_ARGUMENT, "chunk_size must be between 0 and %u",
                        DM_MAX_CHUNK);
    } else {
        st->remaining = req->total_bytes;
        st->chunk = req->chunk_size ? req->chunk_size : DM_DEFAULT_CHUNK;
        st->offset = 0;
        dm_call_set_producer(c, download_fill);
    }
    release(req);
}

/* ---- health and reflection ------------------------------------------------------------ */

static const char *const served_services[] = {
    "demo.v1.UserService",
    "demo.v1.EchoService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
};

static void health_check(dm_call *c, const uint8_t *msg, size_t len)
{
    Grpc__Health__V1__HealthCheckRequest *req =
        decode(c, &grpc__health__v1__health_check_request__descriptor, msg, len);
    if (!req)
        return;
    const char *name = req->service ? req->service : "";
    if (name[0] && strcmp(name, "demo.v1.UserService") != 0 &&
        strcmp(name, "demo.v1.EchoService") != 0) {
        dm_call_finishf(c, GW_CODE_NOT_FOUND, "unknown service %s", name);
    } else {
        Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        r.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
        reply(c, &r.base);
    }
    release(req);
}

/* Watch sends the current status once and then keeps the stream open, as
 * the status never changes; the client ends it. Unknown services get
 * SERVICE_UNKNOWN rather than an error (health.proto says so). */
static void health_watch(dm_call *c, const uint8_t *msg, size_t len)
{
    Grpc__Health__V1__HealthCheckRequest *req =
        decode(c, &grpc__health__v1__health_check_request__descriptor, msg, len);
    if (!req)
        return;
    const char *name = req->service ? req->service : "";
    Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = name[0] && strcmp(name, "demo.v1.UserService") != 0 &&
                       strcmp(name, "demo.v1.EchoService") != 0
                   ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN
                   : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    dm_call_send_message(c, &r.base);
    release(req);
}

static void reflect_message(dm_call *c, const uint8_t *msg, size_t len)
{
    gw_buf out;
    gw_buf_init(&out, DM_MAX_MESSAGE);
    int rc = dm_reflect_answer(dm_call_reflect(c), served_services,
                               GW_ARRAY_LEN(served_services), msg, len, &out);
    if (rc == GW_EPARSE)
        dm_call_finish(c, GW_CODE_INTERNAL,
                       "request does not decode as grpc.reflection.v1.ServerReflectionRequest",
                       NULL, 0);
    else if (rc < 0)
        finish_oom(c);
    else
        dm_call_send(c, out.data, out.len);
    gw_buf_free(&out);
}

/* ---- the method table ------------------------------------------------------------------- */

static const dm_method methods[] = {
    {"/demo.v1.UserService/GetUser", false, get_user, NULL, NULL},
    {"/demo.v1.UserService/CreateUser", false, create_one, NULL, NULL},
    {"/demo.v1.UserService/UpdateUser", false, update_user, NULL, NULL},
    {"/demo.v1.UserService/DeleteUser", false, delete_user, NULL, NULL},
    {"/demo.v1.UserService/UndeleteUser", false, undelete_user, NULL, NULL},
    {"/demo.v1.UserService/ListUsers", false, list_users, NULL, NULL},
    {"/demo.v1.UserService/CreateUsers", true, NULL, create_users_message, create_users_end},
    {"/demo.v1.UserService/Chat", true, NULL, chat_message, end_ok},
    {"/demo.v1.UserService/GetAvatar", false, get_avatar, NULL, NULL},
    {"/demo.v1.UserService/SetAvatar", false, set_avatar, NULL, NULL},
    {"/demo.v1.EchoService/Echo", false, echo, NULL, NULL},
    {"/demo.v1.EchoService/Fail", false, fail, NULL, NULL},
    {"/demo.v1.EchoService/Download", false, download, NULL, NULL},
    {"/demo.v1.EchoService/Unbound", false, echo, NULL, NULL},
    {"/grpc.health.v1.Health/Check", false, health_check, NULL, NULL},
    {"/grpc.health.v1.Health/Watch", false, health_watch, NULL, NULL},
    {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", true, NULL, reflect_message,
     end_ok},
    {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", true, NULL,
     reflect_message, end_ok},
};

const dm_method *dm_method_find(const char *path)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(methods); i++)
        if (strcmp(methods[i].path, path) == 0)
            return &methods[i];
    return NULL;
}

void dm_call_state_free(struct dm_call_state *s)
{
    gw_buf_free(&s->ids);
    gw_buf_free(&s->pending);
    gw_buf_free(&s->pending_details);
    free(s->pending_message);
}
