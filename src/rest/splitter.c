/*
 * Client-streaming bodies: a sequence of JSON values (NDJSON, or any
 * whitespace between values) or one JSON array of values. The splitter only
 * tracks strings and bracket depth to find where each top-level value ends;
 * the codec validates the value itself. Only the current value is buffered.
 */
#include <string.h>

#include "rest/rest.h"

enum { MODE_UNKNOWN = 0, MODE_LINES, MODE_ARRAY };
enum { ST_BETWEEN = 0, ST_CONTAINER, ST_STRING, ST_SCALAR, ST_AFTER, ST_DONE };

/* Set in `state` alongside ST_BETWEEN right after '[' (an empty array is
 * fine there, a ']' after ',' is not). */
#define ST_ARRAY_FIRST 0x100

void gw_json_splitter_init(gw_json_splitter *s, size_t max_message)
{
    memset(s, 0, sizeof(*s));
    gw_buf_init(&s->value, max_message);
}

void gw_json_splitter_free(gw_json_splitter *s)
{
    gw_buf_free(&s->value);
}

static bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int fail(gw_json_splitter *s, gw_error *e, const char *what)
{
    return gw_error_set(e, GW_EPARSE, "stream body: offset %zu: %s", s->offset, what);
}

static int push(gw_json_splitter *s, uint8_t c, gw_error *e)
{
    int rc = gw_buf_append_byte(&s->value, c);
    if (rc == GW_ELIMIT)
        return gw_error_set(e, rc, "stream body: message %zu larger than %zu bytes",
                            s->count + 1, s->value.max);
    if (rc)
        return gw_error_set(e, rc, "out of memory");
    return 0;
}

static int ready(gw_json_splitter *s, const char **msg, size_t *msg_len)
{
    s->state = s->mode == MODE_ARRAY ? ST_AFTER : ST_BETWEEN;
    s->value_ready = true;
    s->count++;
    *msg = (const char *)s->value.data;
    *msg_len = s->value.len;
    return 0;
}

int gw_json_splitter_next(gw_json_splitter *s, const uint8_t *data, size_t len,
                          size_t *consumed, const char **msg, size_t *msg_len, gw_error *e)
{
    if (s->value_ready) {
        gw_buf_reset(&s->value);
        s->value_ready = false;
    }
    size_t i = 0;
    int rc = 0;
    for (; i < len; i++, s->offset++) {
        uint8_t c = data[i];
        int st = s->state & 0xff;
        switch (st) {
        case ST_BETWEEN:
            if (is_ws(c))
                continue;
            if (s->mode == MODE_UNKNOWN) {
                if (c == '[') {
                    s->mode = MODE_ARRAY;
                    s->state = ST_BETWEEN | ST_ARRAY_FIRST;
                    continue;
                }
                s->mode = MODE_LINES;
            }
            if (s->mode == MODE_ARRAY && c == ']') {
                if (!(s->state & ST_ARRAY_FIRST)) {
                    rc = fail(s, e, "']' after ','");
                    goto out;
                }
                s->state = ST_DONE;
                continue;
            }
            if (c == '{' || c == '[') {
                s->state = ST_CONTAINER;
                s->depth = 1;
                s->in_string = s->escape = false;
            } else if (c == '"') {
                s->state = ST_STRING;
                s->escape = false;
            } else if (c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')) {
                s->state = ST_SCALAR;
            } else {
                rc = fail(s, e, "expected a JSON value");
                goto out;
            }
            if ((rc = push(s, c, e)))
                goto out;
            continue;
        case ST_CONTAINER:
            if ((rc = push(s, c, e)))
                goto out;
            if (s->in_string) {
                if (s->escape)
                    s->escape = false;
                else if (c == '\\')
                    s->escape = true;
                else if (c == '"')
                    s->in_string = false;
            } else if (c == '"') {
                s->in_string = true;
            } else if (c == '{' || c == '[') {
                s->depth++;
            } else if (c == '}' || c == ']') {
                if (--s->depth == 0) {
                    i++;
                    s->offset++;
                    rc = ready(s, msg, msg_len);
                    goto out;
                }
            }
            continue;
        case ST_STRING:
            if ((rc = push(s, c, e)))
                goto out;
            if (s->escape) {
                s->escape = false;
            } else if (c == '\\') {
                s->escape = true;
            } else if (c == '"') {
                i++;
                s->offset++;
                rc = ready(s, msg, msg_len);
                goto out;
            }
            continue;
        case ST_SCALAR:
            if (is_ws(c) || c == ',' || c == ']' || c == '{' || c == '[' || c == '"') {
                /* The delimiter belongs to what follows: not consumed. */
                rc = ready(s, msg, msg_len);
                goto out;
            }
            if ((rc = push(s, c, e)))
                goto out;
            continue;
        case ST_AFTER:
            if (is_ws(c))
                continue;
            if (c == ',') {
                s->state = ST_BETWEEN;
                continue;
            }
            if (c == ']') {
                s->state = ST_DONE;
                continue;
            }
            rc = fail(s, e, "expected ',' or ']' after an array element");
            goto out;
        default: /* ST_DONE */
            if (is_ws(c))
                continue;
            rc = fail(s, e, "data after the closing ']'");
            goto out;
        }
    }
    rc = GW_EAGAIN;
out:
    *consumed = i;
    return rc;
}

int gw_json_splitter_finish(gw_json_splitter *s, const char **msg, size_t *msg_len,
                            gw_error *e)
{
    if (s->value_ready) {
        gw_buf_reset(&s->value);
        s->value_ready = false;
    }
    int st = s->state & 0xff;
    if (st == ST_SCALAR)
        return ready(s, msg, msg_len);
    if (st == ST_CONTAINER || st == ST_STRING)
        return fail(s, e, "the body ends inside a value");
    if (s->mode == MODE_ARRAY && st != ST_DONE)
        return fail(s, e, "the body ends before the array's ']'");
    return GW_ECLOSED;
}
