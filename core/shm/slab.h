/*
 * slab.h — the allocator inside a shared-memory zone (used by shdict.c).
 *
 * The zone's pages (4 KiB) are each either free, split into equal chunks of
 * one size class (a slab page; chunks up to 2 KiB, four classes per power
 * of two), or part of a run of whole pages holding one large chunk. Free
 * pages form runs that merge with free neighbours, so once a slab page
 * empties, its page can later hold a chunk of any size. Chunks are not
 * coalesced inside a slab page.
 *
 * All state (this struct, the page map, the free lists) lives in the zone
 * and is addressed by offsets from its base, so it is valid wherever the
 * zone is mapped. A chunk is named by a "ref": its byte offset / 16 as a
 * uint32 (0 = none), which caps a zone at 64 GiB.
 *
 * The first 8 bytes of a chunk are two words: a link the allocator uses
 * while the chunk is free (the owner may use it while allocated), then a
 * tag the allocator owns at all times (TORII_SLAB_LIVE while allocated).
 * Nothing is thread-safe: the caller holds the zone's lock.
 */
#ifndef TORII_SLAB_H
#define TORII_SLAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TORII_SLAB_PAGE      4096u
#define TORII_SLAB_UNIT      16u /* refs count in these; every chunk is aligned to it */
#define TORII_SLAB_CLASSES   21
#define TORII_SLAB_MIN_CHUNK 64u
#define TORII_SLAB_MAX_SMALL 2048u /* bigger requests take whole pages */
#define TORII_SLAB_PER_PAGE  (TORII_SLAB_PAGE / TORII_SLAB_MIN_CHUNK)
#define TORII_SLAB_BINS      16 /* free runs of 1..15 pages, then all longer ones */
#define TORII_SLAB_NIL       UINT32_MAX
#define TORII_SLAB_LIVE      0xa110c8edu

/* One per page, in the page map. */
typedef struct {
    uint32_t next, prev; /* page links: a class's partial list, or a free-run bin */
    uint32_t run;        /* pages in the block (first and last page of a free run; first of a large one) */
    uint32_t free;       /* slab page: ref of the first free chunk, 0 = full */
    uint16_t kind;       /* see slab.c */
    uint16_t used;       /* slab page: chunks allocated */
} torii_slab_page_t;

typedef struct {
    uint64_t map_off;   /* byte offset of the page map (npages entries) */
    uint64_t pages_off; /* byte offset of page 0, a multiple of TORII_SLAB_PAGE */
    uint32_t npages;
    uint32_t free_pages;
    uint32_t partial[TORII_SLAB_CLASSES]; /* slab pages with a free chunk, per class */
    uint32_t bins[TORII_SLAB_BINS];       /* free runs by length */
} torii_slab_t;

/* Start with every page free. The page map need not be zeroed. */
void torii_slab_init(char *base, torii_slab_t *s, uint64_t map_off, uint64_t pages_off, uint32_t npages);

/*
 * Free every page again. The geometry (offsets, npages) is left alone: it
 * never changes after init, so callers may read it without the lock.
 */
void torii_slab_reset(char *base, torii_slab_t *s);

/* A chunk of at least `size` bytes, tagged live; 0 when nothing fits. */
uint32_t torii_slab_alloc(char *base, torii_slab_t *s, size_t size);

void torii_slab_free(char *base, torii_slab_t *s, uint32_t ref);

/* The chunk size a request for `size` bytes gets; 0 if no zone state could hold it. */
size_t torii_slab_round(const torii_slab_t *s, size_t size);

/* The size of the allocated chunk at ref. */
size_t torii_slab_chunk_size(char *base, const torii_slab_t *s, uint32_t ref);

static inline bool torii_slab_is_live(char *base, uint32_t ref)
{
    const uint32_t *words = (const uint32_t *)(base + (size_t)ref * TORII_SLAB_UNIT);
    return words[1] == TORII_SLAB_LIVE;
}

/* The chunks of ref's page (one for a large chunk): refs first + i * stride, i < *n. */
void torii_slab_page_chunks(char *base, const torii_slab_t *s, uint32_t ref, uint32_t *first, uint32_t *n,
                            uint32_t *stride);

/* Size class of a request of at most TORII_SLAB_MAX_SMALL bytes, and a class's chunk size. */
int torii_slab_class(size_t size);
size_t torii_slab_class_size(int cls);

/*
 * Verify the allocator against a zone of zone_size bytes that may hold
 * garbage (every offset is range-checked, every walk bounded). On success
 * *live is the number of allocated chunks and *starts (malloc'ed, npages
 * bytes, the caller frees it) feeds torii_slab_check_chunk().
 */
bool torii_slab_check(char *base, const torii_slab_t *s, uint64_t zone_size, uint8_t **starts, uint64_t *live,
                      char *err, size_t errlen);

/* After a successful check: is ref an allocated chunk? Sets *size. */
bool torii_slab_check_chunk(char *base, const torii_slab_t *s, const uint8_t *starts, uint32_t ref, size_t *size);

#endif
