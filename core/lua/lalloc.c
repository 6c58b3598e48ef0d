/* lalloc.c — a Lua VM's size classes and chunks (see lalloc.h). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/asan.h"
#include "lua/lalloc.h"

#ifdef TORII_ASAN
#define REDZONE GRAIN /* a poisoned grain after every small block */
#else
#define REDZONE 0u
#endif

#define GRAIN     16u
#define SMALL     1024u      /* larger blocks come from malloc */
#define CHUNK     (2u << 20) /* a huge page */
#define CACHE_MAX 32u        /* chunks kept for the next VM (64 MB) */
#define NCLASSES  ((SMALL + REDZONE + GRAIN - 1) / GRAIN + 1)

typedef struct chunk_s {
    struct chunk_s *next;
    char pad[64 - sizeof(struct chunk_s *)]; /* blocks start line-aligned */
} chunk_t;

struct torii_lalloc_s {
    void *free[NCLASSES]; /* free blocks by class (a class is size / GRAIN) */
    char *cur;            /* the current chunk's unused rest */
    size_t left;
    chunk_t *chunks;
    size_t held;
};

static chunk_t *cache; /* chunks of VMs that ended */
static size_t ncache;

torii_lalloc_t *torii_lalloc_new(void)
{
    return calloc(1, sizeof(torii_lalloc_t));
}

static void chunk_release(chunk_t *c)
{
    if (ncache < CACHE_MAX) {
        c->next = cache;
        cache = c;
        ncache++;
        return;
    }
    TORII_UNPOISON(c, CHUNK);
    free(c);
}

void torii_lalloc_free(torii_lalloc_t *a)
{
    chunk_t *c, *next;
    if (!a)
        return;
    for (c = a->chunks; c; c = next) {
        next = c->next;
        TORII_POISON(c + 1, CHUNK - sizeof *c);
        chunk_release(c);
    }
    free(a);
}

void torii_lalloc_cache_drain(void)
{
    while (cache) {
        chunk_t *c = cache;
        cache = c->next;
        TORII_UNPOISON(c, CHUNK);
        free(c);
    }
    ncache = 0;
}

size_t torii_lalloc_held(const torii_lalloc_t *a)
{
    return a->held;
}

static size_t class_of(size_t n)
{
    return (n + REDZONE + GRAIN - 1) / GRAIN;
}

static void push_free(torii_lalloc_t *a, void *p, size_t cls)
{
    TORII_UNPOISON(p, sizeof(void *));
    *(void **)p = a->free[cls];
    TORII_POISON(p, cls * GRAIN);
    a->free[cls] = p;
}

static bool new_chunk(torii_lalloc_t *a)
{
    chunk_t *c = cache;
    if (c) {
        cache = c->next;
        ncache--;
    } else {
        c = aligned_alloc(CHUNK, CHUNK);
        if (!c)
            return false;
#ifdef MADV_HUGEPAGE
        madvise(c, CHUNK, MADV_HUGEPAGE); /* a hint; the kernel may not */
#endif
        TORII_POISON(c + 1, CHUNK - sizeof *c);
    }
    /* The old chunk's rest serves its own class from now on. */
    if (a->left >= GRAIN)
        push_free(a, a->cur, a->left / GRAIN);
    c->next = a->chunks;
    a->chunks = c;
    a->held += CHUNK;
    a->cur = (char *)(c + 1);
    a->left = CHUNK - sizeof *c;
    return true;
}

static void *small_alloc(torii_lalloc_t *a, size_t n)
{
    size_t cls = class_of(n), size = cls * GRAIN;
    char *p = a->free[cls];
    if (p) {
        TORII_UNPOISON(p, sizeof(void *));
        a->free[cls] = *(void **)p;
    } else {
        if (a->left < size && !new_chunk(a))
            return NULL;
        p = a->cur;
        a->cur += size;
        a->left -= size;
    }
    TORII_UNPOISON(p, n);
    return p;
}

static void *big_alloc(torii_lalloc_t *a, size_t n)
{
    void *p = malloc(n);
    if (p)
        a->held += n;
    return p;
}

static void big_free(torii_lalloc_t *a, void *p, size_t n)
{
    a->held -= n;
    free(p);
}

void *torii_lalloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    torii_lalloc_t *a = ud;
    void *p;
    if (!ptr)
        osize = 0; /* Lua may pass a type tag there */
    if (nsize == 0) {
        if (ptr) {
            if (osize > SMALL)
                big_free(a, ptr, osize);
            else
                push_free(a, ptr, class_of(osize));
        }
        return NULL;
    }
    if (ptr && osize > SMALL && nsize > SMALL) {
        p = realloc(ptr, nsize);
        if (p)
            a->held += nsize - osize;
        return p;
    }
    if (ptr && osize <= SMALL && nsize <= SMALL && class_of(osize) == class_of(nsize)) {
        TORII_UNPOISON(ptr, nsize);
        if (nsize < osize)
            TORII_POISON((char *)ptr + nsize, osize - nsize);
        return ptr; /* the block has room */
    }
    p = nsize > SMALL ? big_alloc(a, nsize) : small_alloc(a, nsize);
    if (!p || !ptr)
        return p;
    memcpy(p, ptr, osize < nsize ? osize : nsize);
    if (osize > SMALL)
        big_free(a, ptr, osize);
    else
        push_free(a, ptr, class_of(osize));
    return p;
}
