/*
 * pool.h — an arena: many small allocations freed together, plus cleanup
 * hooks run (last registered first) when the arena is destroyed. The loaded
 * configuration lives in one; error paths then free everything at once
 * instead of unwinding allocation by allocation.
 */
#ifndef TORII_POOL_H
#define TORII_POOL_H

#include <stddef.h>

typedef struct torii_pool_s torii_pool_t;

torii_pool_t *torii_pool_create(size_t block_size);

/* Zeroed, 16-byte aligned memory; aborts on out-of-memory. */
void *torii_palloc(torii_pool_t *pool, size_t n);

/* Copy of p[0..n) with a terminating NUL. */
char *torii_pstrndup(torii_pool_t *pool, const char *p, size_t n);
char *torii_pstrdup(torii_pool_t *pool, const char *s);

/* Run fn(data) when the pool is destroyed. */
void torii_pool_cleanup(torii_pool_t *pool, void (*fn)(void *), void *data);

/* Run the cleanups and free the pool. Its first block may be kept, with
 * the pool, for the next create of the same block size. */
void torii_pool_destroy(torii_pool_t *pool);

/* Free the pools kept for reuse (at exit, so leak checkers see a clean
 * heap). */
void torii_pool_spares_drain(void);

#endif
