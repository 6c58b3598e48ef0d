/* pool.c — arena allocator with cleanup hooks. */
#include <stdlib.h>
#include <string.h>

#include "base/asan.h"
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
    torii_pool_t *next_spare;
};

/* A request's pool comes and goes with the request: instead of two mallocs
 * and two frees each time (a 4 KB block is past malloc's fast per-size
 * caches), a destroyed pool keeps its first block and waits here for the
 * next create of its block size. A process runs its event loop on one
 * thread, and pools are not shared between threads. A spare block's bytes
 * stay poisoned for AddressSanitizer until the pool is handed out again. */
#define SPARE_MAX       64
#define SPARE_BLOCK_MAX (64u << 10)
static torii_pool_t *spares;
static size_t nspares;

static torii_pool_t *take_spare(size_t block_size)
{
    for (torii_pool_t **pp = &spares; *pp; pp = &(*pp)->next_spare) {
        torii_pool_t *pool = *pp;
        if (pool->block_size == block_size) {
            *pp = pool->next_spare;
            nspares--;
            pool->next_spare = NULL;
            TORII_UNPOISON(pool->head->data, pool->head->size);
            return pool;
        }
    }
    return NULL;
}

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
    torii_pool_t *pool;
    block_size = block_size < 256 ? 256 : block_size;
    if ((pool = take_spare(block_size)) != NULL)
        return pool;
    pool = calloc(1, sizeof *pool);
    if (!pool)
        abort();
    pool->block_size = block_size;
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
    block_t *b, *next, *keep = NULL;
    if (!pool)
        return;
    for (cleanup_t *c = pool->cleanups; c; c = c->next)
        c->fn(c->data);
    for (b = pool->head; b; b = next) {
        next = b->next;
        if (!keep && b->size == pool->block_size)
            keep = b;
        else
            free(b);
    }
    if (keep && nspares < SPARE_MAX && pool->block_size <= SPARE_BLOCK_MAX) {
        keep->next = NULL;
        keep->used = 0;
        TORII_POISON(keep->data, keep->size);
        pool->head = keep;
        pool->cleanups = NULL;
        pool->next_spare = spares;
        spares = pool;
        nspares++;
        return;
    }
    free(keep);
    free(pool);
}

void torii_pool_spares_drain(void)
{
    while (spares) {
        torii_pool_t *pool = spares;
        spares = pool->next_spare;
        TORII_UNPOISON(pool->head->data, pool->head->size);
        free(pool->head);
        free(pool);
    }
    nspares = 0;
}
