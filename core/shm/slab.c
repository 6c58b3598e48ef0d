/* slab.c — pages, size classes and free page runs inside a shared-memory zone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm/slab.h"

/*
 * Page kinds. Only the first and last page of a block (free run, large
 * chunk, slab page) are kept exact: merging looks at the page before a
 * block and the page after it, never inside one. Pages inside a free run
 * keep whatever kind they had.
 */
enum {
    KIND_FREE = 1,
    KIND_LARGE = 2, /* first page of a large chunk */
    KIND_INNER = 3, /* the other pages of a large chunk */
    KIND_SLAB = 16, /* + class */
};

typedef struct {
    uint32_t link; /* next free chunk (ref) while free */
    uint32_t tag;
} chunk_t;

static const uint16_t class_sizes[TORII_SLAB_CLASSES] = {64,  80,  96,  112, 128, 160,  192,  224,  256,  320, 384,
                                                         448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048};

static inline torii_slab_page_t *page_map(char *base, const torii_slab_t *s)
{
    return (torii_slab_page_t *)(base + s->map_off);
}

static inline uint64_t page_off(const torii_slab_t *s, uint32_t p)
{
    return s->pages_off + (uint64_t)p * TORII_SLAB_PAGE;
}

static inline uint32_t off_ref(uint64_t off)
{
    return (uint32_t)(off / TORII_SLAB_UNIT);
}

static inline uint64_t ref_off(uint32_t ref)
{
    return (uint64_t)ref * TORII_SLAB_UNIT;
}

static inline chunk_t *chunk_at(char *base, uint32_t ref)
{
    return (chunk_t *)(base + ref_off(ref));
}

static inline uint32_t page_of(const torii_slab_t *s, uint32_t ref)
{
    return (uint32_t)((ref_off(ref) - s->pages_off) / TORII_SLAB_PAGE);
}

int torii_slab_class(size_t size)
{
    if (size <= 64)
        return 0;
    if (size <= 128)
        return (int)((size - 64 + 15) / 16);
    /* Four classes per doubling above 128 bytes: a chunk wastes under 25 %. */
    int lg = 63 - __builtin_clzll((unsigned long long)(size - 1)); /* 2^lg < size <= 2^(lg+1) */
    size_t step = (size_t)1 << (lg - 2);
    return 4 + (lg - 7) * 4 + (int)((size - ((size_t)1 << lg) + step - 1) / step);
}

size_t torii_slab_class_size(int cls)
{
    return class_sizes[cls];
}

/* Doubly linked page lists (partial slab pages, free-run bins). */
static void list_push(torii_slab_page_t *m, uint32_t *head, uint32_t p)
{
    m[p].prev = TORII_SLAB_NIL;
    m[p].next = *head;
    if (*head != TORII_SLAB_NIL)
        m[*head].prev = p;
    *head = p;
}

static void list_remove(torii_slab_page_t *m, uint32_t *head, uint32_t p)
{
    if (m[p].prev != TORII_SLAB_NIL)
        m[m[p].prev].next = m[p].next;
    else
        *head = m[p].next;
    if (m[p].next != TORII_SLAB_NIL)
        m[m[p].next].prev = m[p].prev;
}

static unsigned bin_of(uint32_t run)
{
    return run < TORII_SLAB_BINS ? run - 1 : TORII_SLAB_BINS - 1;
}

/* Record [p, p+n) as one free run. */
static void run_put(char *base, torii_slab_t *s, uint32_t p, uint32_t n)
{
    torii_slab_page_t *m = page_map(base, s);
    m[p].kind = KIND_FREE;
    m[p].run = n;
    m[p + n - 1].kind = KIND_FREE;
    m[p + n - 1].run = n;
    list_push(m, &s->bins[bin_of(n)], p);
}

/* n contiguous pages, or NIL. Best fit among the short runs, first fit among the long. */
static uint32_t run_take(char *base, torii_slab_t *s, uint32_t n)
{
    torii_slab_page_t *m = page_map(base, s);
    for (unsigned b = bin_of(n); b < TORII_SLAB_BINS; b++) {
        uint32_t p = s->bins[b];
        if (b == TORII_SLAB_BINS - 1)
            while (p != TORII_SLAB_NIL && m[p].run < n)
                p = m[p].next;
        if (p == TORII_SLAB_NIL)
            continue;
        list_remove(m, &s->bins[b], p);
        uint32_t len = m[p].run;
        if (len > n)
            run_put(base, s, p + n, len - n);
        s->free_pages -= n;
        return p;
    }
    return TORII_SLAB_NIL;
}

/* Free [p, p+n), merged with free neighbours so large chunks find room again. */
static void run_release(char *base, torii_slab_t *s, uint32_t p, uint32_t n)
{
    torii_slab_page_t *m = page_map(base, s);
    s->free_pages += n;
    if (p + n < s->npages && m[p + n].kind == KIND_FREE) {
        uint32_t q = p + n;
        list_remove(m, &s->bins[bin_of(m[q].run)], q);
        n += m[q].run;
    }
    if (p > 0 && m[p - 1].kind == KIND_FREE) {
        uint32_t len = m[p - 1].run, q = p - len;
        list_remove(m, &s->bins[bin_of(len)], q);
        p = q;
        n += len;
    }
    run_put(base, s, p, n);
}

void torii_slab_init(char *base, torii_slab_t *s, uint64_t map_off, uint64_t pages_off, uint32_t npages)
{
    s->map_off = map_off;
    s->pages_off = pages_off;
    s->npages = npages;
    torii_slab_reset(base, s);
}

void torii_slab_reset(char *base, torii_slab_t *s)
{
    s->free_pages = 0;
    for (int c = 0; c < TORII_SLAB_CLASSES; c++)
        s->partial[c] = TORII_SLAB_NIL;
    for (int b = 0; b < TORII_SLAB_BINS; b++)
        s->bins[b] = TORII_SLAB_NIL;
    run_release(base, s, 0, s->npages);
}

/* A fresh slab page for class cls, its chunks chained free. */
static uint32_t slab_page_new(char *base, torii_slab_t *s, int cls)
{
    uint32_t p = run_take(base, s, 1);
    if (p == TORII_SLAB_NIL)
        return p;
    torii_slab_page_t *m = page_map(base, s);
    uint32_t size = class_sizes[cls], n = TORII_SLAB_PAGE / size;
    uint64_t start = page_off(s, p);
    for (uint32_t i = 0; i < n; i++) {
        chunk_t *c = (chunk_t *)(base + start + (uint64_t)i * size);
        c->link = i + 1 < n ? off_ref(start + (uint64_t)(i + 1) * size) : 0;
        c->tag = 0;
    }
    m[p].kind = (uint16_t)(KIND_SLAB + cls);
    m[p].run = 1;
    m[p].used = 0;
    m[p].free = off_ref(start);
    list_push(m, &s->partial[cls], p);
    return p;
}

uint32_t torii_slab_alloc(char *base, torii_slab_t *s, size_t size)
{
    torii_slab_page_t *m = page_map(base, s);
    if (size > TORII_SLAB_MAX_SMALL) {
        uint64_t pages = (size + TORII_SLAB_PAGE - 1) / TORII_SLAB_PAGE;
        if (pages > s->npages)
            return 0;
        uint32_t n = (uint32_t)pages, p = run_take(base, s, n);
        if (p == TORII_SLAB_NIL)
            return 0;
        m[p].kind = KIND_LARGE;
        m[p].run = n;
        for (uint32_t i = 1; i < n; i++)
            m[p + i].kind = KIND_INNER; /* the last page must not look free to a neighbour */
        uint32_t ref = off_ref(page_off(s, p));
        chunk_at(base, ref)->tag = TORII_SLAB_LIVE;
        return ref;
    }
    int cls = torii_slab_class(size);
    uint32_t p = s->partial[cls];
    if (p == TORII_SLAB_NIL && (p = slab_page_new(base, s, cls)) == TORII_SLAB_NIL)
        return 0;
    uint32_t ref = m[p].free;
    chunk_t *c = chunk_at(base, ref);
    m[p].free = c->link;
    m[p].used++;
    if (m[p].free == 0)
        list_remove(m, &s->partial[cls], p);
    c->tag = TORII_SLAB_LIVE;
    return ref;
}

void torii_slab_free(char *base, torii_slab_t *s, uint32_t ref)
{
    torii_slab_page_t *m = page_map(base, s);
    uint32_t p = page_of(s, ref);
    chunk_t *c = chunk_at(base, ref);
    c->tag = 0;
    if (m[p].kind == KIND_LARGE) {
        run_release(base, s, p, m[p].run);
        return;
    }
    int cls = m[p].kind - KIND_SLAB;
    int was_full = m[p].free == 0;
    c->link = m[p].free;
    m[p].free = ref;
    m[p].used--;
    if (m[p].used == 0) {
        /* An empty slab page goes back to the page pool, for any size. */
        if (!was_full)
            list_remove(m, &s->partial[cls], p);
        run_release(base, s, p, 1);
    } else if (was_full) {
        list_push(m, &s->partial[cls], p);
    }
}

size_t torii_slab_round(const torii_slab_t *s, size_t size)
{
    if (size <= TORII_SLAB_MAX_SMALL)
        return class_sizes[torii_slab_class(size)];
    uint64_t pages = (size + TORII_SLAB_PAGE - 1) / TORII_SLAB_PAGE;
    return pages > s->npages ? 0 : (size_t)pages * TORII_SLAB_PAGE;
}

size_t torii_slab_chunk_size(char *base, const torii_slab_t *s, uint32_t ref)
{
    const torii_slab_page_t *pg = &page_map(base, s)[page_of(s, ref)];
    if (pg->kind == KIND_LARGE)
        return (size_t)pg->run * TORII_SLAB_PAGE;
    return class_sizes[pg->kind - KIND_SLAB];
}

void torii_slab_page_chunks(char *base, const torii_slab_t *s, uint32_t ref, uint32_t *first, uint32_t *n,
                            uint32_t *stride)
{
    uint32_t p = page_of(s, ref);
    const torii_slab_page_t *pg = &page_map(base, s)[p];
    *first = off_ref(page_off(s, p));
    if (pg->kind == KIND_LARGE) {
        *n = 1;
        *stride = 0;
    } else {
        uint32_t size = class_sizes[pg->kind - KIND_SLAB];
        *n = TORII_SLAB_PAGE / size;
        *stride = size / TORII_SLAB_UNIT;
    }
}

/* --- Consistency check -------------------------------------------------------------------------------------------- */

/* Values of starts[p] during and after the check. */
enum {
    START_NONE = 0,
    START_LARGE = 1,
    START_SLAB = 2,
    START_FREE_UNSEEN = 3,    /* a free run not yet found in a bin */
    START_PARTIAL_UNSEEN = 4, /* a slab page with a free chunk not yet found in its partial list */
};

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        snprintf(err, errlen, __VA_ARGS__);                                                                            \
        goto fail;                                                                                                     \
    } while (0)

/* Walk a slab page: its free chain, its used count against the live tags. */
static bool check_slab_page(char *base, const torii_slab_t *s, uint32_t p, char *err, size_t errlen)
{
    const torii_slab_page_t *pg = &page_map(base, s)[p];
    uint32_t size = class_sizes[pg->kind - KIND_SLAB], cap = TORII_SLAB_PAGE / size, nfree = 0, nlive = 0;
    uint64_t start = page_off(s, p);
    for (uint32_t ref = pg->free; ref != 0; ref = chunk_at(base, ref)->link) {
        uint64_t off = ref_off(ref);
        if (off < start || off >= start + (uint64_t)cap * size || (off - start) % size != 0)
            FAIL("page %u: free chunk %u outside the page or misaligned", p, ref);
        if (chunk_at(base, ref)->tag == TORII_SLAB_LIVE)
            FAIL("page %u: chunk %u is both free and live", p, ref);
        if (++nfree > cap)
            FAIL("page %u: free chain longer than the page (cycle?)", p);
    }
    for (uint32_t i = 0; i < cap; i++)
        nlive += ((chunk_t *)(base + start + (uint64_t)i * size))->tag == TORII_SLAB_LIVE;
    if (pg->used != nlive || nlive + nfree != cap)
        FAIL("page %u: used %u, live %u, free %u, capacity %u", p, pg->used, nlive, nfree, cap);
    if (nlive == 0)
        FAIL("page %u: empty slab page not returned", p);
    return true;
fail:
    return false;
}

/* Walk one page list; each page must carry `expect` in starts[], which then becomes `seen`. */
static bool check_list(const torii_slab_page_t *m, const torii_slab_t *s, uint32_t head, uint8_t *starts,
                       uint8_t expect, uint8_t seen, int kind, uint32_t min_run, uint32_t max_run, char *err,
                       size_t errlen)
{
    uint32_t prev = TORII_SLAB_NIL, steps = 0;
    for (uint32_t p = head; p != TORII_SLAB_NIL; prev = p, p = m[p].next) {
        if (p >= s->npages || ++steps > s->npages)
            FAIL("page list: bad page %u or cycle", p);
        if (starts[p] != expect || m[p].kind != kind)
            FAIL("page list: page %u (kind %u) does not belong here", p, m[p].kind);
        if (m[p].prev != prev)
            FAIL("page list: page %u has a wrong back link", p);
        if (kind == KIND_FREE && (m[p].run < min_run || m[p].run > max_run))
            FAIL("free run at page %u: %u pages in the wrong bin", p, m[p].run);
        starts[p] = seen;
    }
    return true;
fail:
    return false;
}

bool torii_slab_check(char *base, const torii_slab_t *s, uint64_t zone_size, uint8_t **starts_out, uint64_t *live,
                      char *err, size_t errlen)
{
    uint8_t *starts = NULL;
    uint64_t nfree = 0;
    *live = 0;
    *starts_out = NULL;
    if (s->npages == 0 || s->pages_off % TORII_SLAB_PAGE != 0 ||
        s->map_off + (uint64_t)s->npages * sizeof(torii_slab_page_t) > s->pages_off ||
        s->pages_off + (uint64_t)s->npages * TORII_SLAB_PAGE > zone_size)
        FAIL("allocator geometry out of the zone");
    starts = calloc(s->npages, 1);
    if (!starts)
        FAIL("out of memory");
    const torii_slab_page_t *m = page_map(base, s);
    int prev_free = 0;
    for (uint32_t p = 0; p < s->npages;) {
        const torii_slab_page_t *pg = &m[p];
        uint32_t run = pg->run;
        if (pg->kind == KIND_FREE || pg->kind == KIND_LARGE) {
            if (run == 0 || run > s->npages - p)
                FAIL("page %u: run of %u pages", p, run);
        }
        if (pg->kind == KIND_FREE) {
            if (m[p + run - 1].kind != KIND_FREE || m[p + run - 1].run != run)
                FAIL("free run at page %u: bad end tag", p);
            if (prev_free)
                FAIL("free run at page %u follows another free run", p);
            starts[p] = START_FREE_UNSEEN;
            nfree += run;
            prev_free = 1;
        } else if (pg->kind == KIND_LARGE) {
            for (uint32_t i = 1; i < run; i++)
                if (m[p + i].kind != KIND_INNER)
                    FAIL("large chunk at page %u: page %u is not inside it", p, p + i);
            if (chunk_at(base, off_ref(page_off(s, p)))->tag != TORII_SLAB_LIVE)
                FAIL("large chunk at page %u is not tagged live", p);
            starts[p] = START_LARGE;
            ++*live;
            prev_free = 0;
        } else if (pg->kind >= KIND_SLAB && pg->kind < KIND_SLAB + TORII_SLAB_CLASSES) {
            if (!check_slab_page(base, s, p, err, errlen))
                goto fail;
            starts[p] = pg->free ? START_PARTIAL_UNSEEN : START_SLAB;
            *live += pg->used;
            run = 1;
            prev_free = 0;
        } else {
            FAIL("page %u: unknown kind %u", p, pg->kind);
        }
        p += run;
    }
    if (nfree != s->free_pages)
        FAIL("%llu free pages, the header says %u", (unsigned long long)nfree, s->free_pages);
    for (int b = 0; b < TORII_SLAB_BINS; b++) {
        uint32_t lo = (uint32_t)b + 1, hi = b == TORII_SLAB_BINS - 1 ? UINT32_MAX : lo;
        if (!check_list(m, s, s->bins[b], starts, START_FREE_UNSEEN, START_NONE, KIND_FREE, lo, hi, err, errlen))
            goto fail;
    }
    for (int c = 0; c < TORII_SLAB_CLASSES; c++)
        if (!check_list(m, s, s->partial[c], starts, START_PARTIAL_UNSEEN, START_SLAB, KIND_SLAB + c, 0, 0, err,
                        errlen))
            goto fail;
    for (uint32_t p = 0; p < s->npages; p++)
        if (starts[p] == START_FREE_UNSEEN || starts[p] == START_PARTIAL_UNSEEN)
            FAIL("page %u: missing from its %s list", p, starts[p] == START_FREE_UNSEEN ? "free-run" : "partial");
    *starts_out = starts;
    return true;
fail:
    free(starts);
    *live = 0;
    return false;
}

bool torii_slab_check_chunk(char *base, const torii_slab_t *s, const uint8_t *starts, uint32_t ref, size_t *size)
{
    uint64_t off = ref_off(ref);
    if (off < s->pages_off || off >= s->pages_off + (uint64_t)s->npages * TORII_SLAB_PAGE)
        return false;
    uint32_t p = page_of(s, ref);
    uint64_t start = page_off(s, p);
    const torii_slab_page_t *pg = &page_map(base, s)[p];
    if (starts[p] == START_LARGE) {
        *size = (size_t)pg->run * TORII_SLAB_PAGE;
        return off == start && chunk_at(base, ref)->tag == TORII_SLAB_LIVE;
    }
    if (starts[p] == START_SLAB) {
        uint32_t csize = class_sizes[pg->kind - KIND_SLAB];
        *size = csize;
        return (off - start) % csize == 0 && off - start + csize <= TORII_SLAB_PAGE &&
               chunk_at(base, ref)->tag == TORII_SLAB_LIVE;
    }
    return false;
}
