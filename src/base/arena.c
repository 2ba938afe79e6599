#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_arena_block {
    gw_arena_block *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    _Alignas(max_align_t) unsigned char data[];
};

#define ALIGN (sizeof(max_align_t))
#define MAX_BLOCK (256u * 1024u)

void gw_arena_init(gw_arena *a, size_t initial_block, size_t max_bytes)
{
    a->head = NULL;
    a->used_bytes = 0;
    a->max_bytes = max_bytes;
    a->next_block = initial_block ? initial_block : 1024;
}

void gw_arena_free(gw_arena *a)
{
    gw_arena_block *b = a->head;
    while (b) {
        gw_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->used_bytes = 0;
}

void *gw_arena_alloc(gw_arena *a, size_t n)
{
    if (n == 0)
        n = 1;
    size_t rounded = (n + ALIGN - 1) & ~(ALIGN - 1);
    if (rounded < n)
        return NULL;
    gw_arena_block *b = a->head;
    if (!b || b->size - b->used < rounded) {
        size_t size = a->next_block;
        if (size < rounded)
            size = rounded;
        if (a->max_bytes && (size > a->max_bytes || a->used_bytes > a->max_bytes - size))
            return NULL;
        b = malloc(sizeof *b + size);
        if (!b)
            return NULL;
        b->size = size;
        b->used = 0;
        a->used_bytes += size;
        if (a->next_block < MAX_BLOCK)
            a->next_block *= 2;
        /* A big one-off allocation goes behind the current block so that the
         * current block's free space is still used by later small ones. */
        if (a->head && size == rounded && a->head->size - a->head->used >= ALIGN) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += rounded;
    return p;
}

void *gw_arena_calloc(gw_arena *a, size_t n)
{
    void *p = gw_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *gw_arena_memdup(gw_arena *a, const void *p, size_t n)
{
    void *q = gw_arena_alloc(a, n);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

char *gw_arena_strndup(gw_arena *a, const char *s, size_t n)
{
    char *q = gw_arena_alloc(a, n + 1);
    if (q) {
        if (n)
            memcpy(q, s, n);
        q[n] = 0;
    }
    return q;
}

char *gw_arena_strdup(gw_arena *a, const char *s)
{
    return gw_arena_strndup(a, s, strlen(s));
}

char *gw_arena_printf(gw_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *q = gw_arena_alloc(a, (size_t)n + 1);
    if (!q)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(q, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return q;
}
