/*
 * lalloc.h — where a Lua VM's memory comes from.
 *
 * Small blocks (most of a VM: strings, tables, closures, upvalues) come by
 * size class from 2 MB chunks the VM owns; bigger ones (large tables'
 * parts, stacks, long strings) from malloc. Two reasons:
 *
 * - Locality. A request's phase runs after the kernel and the proxy have
 *   been through the caches. With the VM's objects spread among the
 *   worker's buffers on the C heap, it met them in many lines and pages;
 *   packed in chunks of their own (asked for as huge pages), in far
 *   fewer. A freed block is the next one handed out of its class, so a
 *   request's garbage is reused while it is still in cache.
 * - Reloads. A retired VM's chunks wait in a per-process cache for the
 *   next VM, already faulted in: a reload does not pay for fresh pages.
 *
 * A freed small block waits on its class's list until the VM ends; a VM
 * whose objects move from one size to another over its life keeps that
 * memory. Under AddressSanitizer, free blocks and the gap after each
 * block are poisoned.
 *
 * The VM's own thread only; the chunk cache is the process's (one event
 * loop thread per process).
 */
#ifndef TORII_LALLOC_H
#define TORII_LALLOC_H

#include <stddef.h>

typedef struct torii_lalloc_s torii_lalloc_t;

torii_lalloc_t *torii_lalloc_new(void);

/* Free everything the allocator gave out; its chunks go to the cache. */
void torii_lalloc_free(torii_lalloc_t *a);

/* A lua_Alloc (ud: the allocator): ptr NULL allocates nsize bytes, nsize 0
 * frees ptr (osize bytes), else resizes from osize to nsize. NULL when
 * out of memory (and then a resize leaves ptr as it was). */
void *torii_lalloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* Bytes held: chunks and big blocks. */
size_t torii_lalloc_held(const torii_lalloc_t *a);

/* Free the chunk cache (at exit, so leak checkers see a clean heap). */
void torii_lalloc_cache_drain(void);

#endif
