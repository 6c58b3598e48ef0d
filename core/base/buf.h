/*
 * buf.h — growable byte buffers for socket I/O.
 *
 * A buffer holds bytes in [start, end) of `data`. Buffers of the standard
 * size come from a per-process free list, so a connection that goes idle can
 * hand its memory back (an idle keep-alive connection holds no buffer) and
 * the next busy one takes it without calling malloc.
 *
 * Moving data (compaction, growth) invalidates slices into the buffer; the
 * caller says whether that is allowed (`may_move`).
 */
#ifndef TORII_BUF_H
#define TORII_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TORII_BUF_BLOCK 16384 /* the standard size, from the free list */

typedef struct {
    char *data;
    uint32_t start;
    uint32_t end;
    uint32_t cap;
} torii_buf_t;

static inline size_t torii_buf_len(const torii_buf_t *b)
{
    return b->end - b->start;
}

static inline char *torii_buf_pos(const torii_buf_t *b)
{
    return b->data + b->start;
}

static inline size_t torii_buf_free(const torii_buf_t *b)
{
    return b->cap - b->end;
}

/*
 * Make room for at least `want` bytes after `end` (fewer if the buffer may
 * not grow past `max_cap`). With may_move false, only free space already at
 * the end counts. Returns the free bytes at the end (0 if none).
 */
size_t torii_buf_space(torii_buf_t *b, size_t want, size_t max_cap, bool may_move);

/* Append bytes, growing as needed (no cap: for output queues bounded by
 * their callers' watermarks). */
void torii_buf_append(torii_buf_t *b, const void *p, size_t n);

/* printf-style append. */
void torii_buf_printf(torii_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drop n bytes from the front; an emptied buffer rewinds to offset 0. */
void torii_buf_consume(torii_buf_t *b, size_t n);

/* Give the memory back (to the free list when standard-sized). */
void torii_buf_release(torii_buf_t *b);

/* Free the process's free list (at exit, so leak checkers see a clean heap). */
void torii_buf_freelist_drain(void);

#endif
