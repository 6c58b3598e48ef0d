/* buf.c — byte buffers and their free list. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

/* Workers are single-threaded, so the free list needs no lock. Its length is
 * capped so a burst of connections does not pin memory forever. */
#define FREELIST_MAX 256

static void *freelist[FREELIST_MAX];
static unsigned freelist_n;

static char *block_alloc(size_t cap)
{
    char *p;
    if (cap == TORII_BUF_BLOCK && freelist_n > 0)
        return freelist[--freelist_n];
    p = malloc(cap);
    if (!p)
        abort(); /* out of memory: nothing sensible is left to do */
    return p;
}

static void block_free(char *p, size_t cap)
{
    if (cap == TORII_BUF_BLOCK && freelist_n < FREELIST_MAX) {
        freelist[freelist_n++] = p;
        return;
    }
    free(p);
}

static void grow(torii_buf_t *b, size_t need)
{
    size_t cap = b->cap ? b->cap : TORII_BUF_BLOCK;
    char *p;
    while (cap < need)
        cap *= 2;
    if (cap == b->cap)
        return;
    p = block_alloc(cap);
    if (b->data) {
        memcpy(p, b->data + b->start, b->end - b->start);
        block_free(b->data, b->cap);
    }
    b->end -= b->start;
    b->start = 0;
    b->data = p;
    b->cap = (uint32_t)cap;
}

size_t torii_buf_space(torii_buf_t *b, size_t want, size_t max_cap, bool may_move)
{
    size_t len = b->end - b->start;
    if (b->data == NULL) { /* nothing to move yet */
        grow(b, want < max_cap ? want : max_cap);
        return b->cap - b->end;
    }
    if (b->cap - b->end >= want || !may_move)
        return b->cap - b->end;
    if (b->start > 0) { /* compact: cheaper than growing */
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = (uint32_t)len;
        if (b->cap - b->end >= want)
            return b->cap - b->end;
    }
    if (b->cap < max_cap)
        grow(b, len + want < max_cap ? len + want : max_cap);
    return b->cap - b->end;
}

void torii_buf_append(torii_buf_t *b, const void *p, size_t n)
{
    if (b->cap - b->end < n)
        torii_buf_space(b, n, SIZE_MAX, true);
    memcpy(b->data + b->end, p, n);
    b->end += (uint32_t)n;
}

void torii_buf_printf(torii_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    for (;;) {
        size_t room = torii_buf_space(b, 256, SIZE_MAX, true);
        va_start(ap, fmt);
        n = vsnprintf(b->data + b->end, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            b->end += (uint32_t)n;
            return;
        }
        torii_buf_space(b, (size_t)n + 1, SIZE_MAX, true);
    }
}

void torii_buf_consume(torii_buf_t *b, size_t n)
{
    b->start += (uint32_t)n;
    if (b->start >= b->end)
        b->start = b->end = 0;
}

void torii_buf_release(torii_buf_t *b)
{
    if (b->data)
        block_free(b->data, b->cap);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

void torii_buf_freelist_drain(void)
{
    while (freelist_n > 0)
        free(freelist[--freelist_n]);
}
