/* pool.c — arena allocator with cleanup hooks. */
#include <stdlib.h>
#include <string.h>

#include "base/pool.h"

typedef struct block_s {
    struct block_s *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} block_t;

typedef struct cleanup_s {
    struct cleanup_s *next;
    void (*fn)(void *);
    void *data;
} cleanup_t;

struct torii_pool_s {
    block_t *head;
    cleanup_t *cleanups;
    size_t block_size;
};

static block_t *block_new(size_t size)
{
    block_t *b = malloc(sizeof *b + size);
    if (!b)
        abort();
    b->next = NULL;
    b->used = 0;
    b->size = size;
    return b;
}

torii_pool_t *torii_pool_create(size_t block_size)
{
    torii_pool_t *pool = calloc(1, sizeof *pool);
    if (!pool)
        abort();
    pool->block_size = block_size < 256 ? 256 : block_size;
    pool->head = block_new(pool->block_size);
    return pool;
}

void *torii_palloc(torii_pool_t *pool, size_t n)
{
    block_t *b = pool->head;
    size_t need = (n + 15) & ~(size_t)15;
    void *p;
    if (b->size - b->used < need) {
        /* Big requests get their own block, so they never waste a fresh
         * standard block; the current block stays the allocation head. */
        block_t *nb = block_new(need > pool->block_size ? need : pool->block_size);
        if (need > pool->block_size) {
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            pool->head = nb;
        }
        b = nb;
    }
    p = b->data + b->used;
    b->used += need;
    memset(p, 0, n);
    return p;
}

char *torii_pstrndup(torii_pool_t *pool, const char *p, size_t n)
{
    char *s = torii_palloc(pool, n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

char *torii_pstrdup(torii_pool_t *pool, const char *s)
{
    return torii_pstrndup(pool, s, strlen(s));
}

void torii_pool_cleanup(torii_pool_t *pool, void (*fn)(void *), void *data)
{
    cleanup_t *c = torii_palloc(pool, sizeof *c);
    c->fn = fn;
    c->data = data;
    c->next = pool->cleanups;
    pool->cleanups = c;
}

void torii_pool_destroy(torii_pool_t *pool)
{
    block_t *b, *next;
    if (!pool)
        return;
    for (cleanup_t *c = pool->cleanups; c; c = c->next)
        c->fn(c->data);
    for (b = pool->head; b; b = next) {
        next = b->next;
        free(b);
    }
    free(pool);
}
