/* rnode.c — the node table: Robin Hood probing, serials. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "router/rnode.h"
#include "router/robin.h"

uint64_t torii_rnode_key_mask = UINT64_MAX;

#define MIN_CAP    16
#define HUGE_PAGE  (2u << 20)
#define HUGE_TABLE (2u << 20) /* from this size on, a table asks for huge pages */

void *rn_table_alloc(size_t n, void **block, size_t *bytes)
{
    char *b = calloc(1, n + 64);
    if (!b)
        abort();
    *block = b;
    *bytes += n + 64;
#ifdef MADV_HUGEPAGE
    if (n >= HUGE_TABLE) {
        /* A big table is probed at random: with 4 KB pages nearly every
         * probe also misses the TLB. Ask for huge pages where they fit
         * (a hint; the kernel may not). */
        uintptr_t from = ((uintptr_t)b + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
        uintptr_t to = ((uintptr_t)b + n + 64) & ~(uintptr_t)(HUGE_PAGE - 1);
        if (to > from)
            madvise((void *)from, to - from, MADV_HUGEPAGE);
    }
#endif
    return b + (64 - (uintptr_t)b % 64); /* a slot never straddles two lines */
}

void rn_table_free(void *block, size_t n, size_t *bytes)
{
    if (block) {
        *bytes -= n + 64;
        free(block);
    }
}

static void slots_free(rntab_t *t)
{
    if (t->slots)
        rn_table_free(t->block, ((size_t)t->mask + 1) * sizeof *t->slots, t->bytes);
    t->slots = NULL;
    t->block = NULL;
    t->mask = 0;
}

void rn_init(rntab_t *t, size_t *bytes)
{
    memset(t, 0, sizeof *t);
    t->bytes = bytes;
    t->next = RN_ROOT + 1;
}

void rn_free(rntab_t *t)
{
    slots_free(t);
    if (t->spare)
        *t->bytes -= t->capspare * sizeof *t->spare;
    free(t->spare);
    rn_init(t, t->bytes);
}

static bool node_used(const void *slot)
{
    return ((const rnode_t *)slot)->serial != 0;
}

static uint32_t node_home(const void *slot)
{
    return (uint32_t)((const rnode_t *)slot)->key;
}

static const robin_kind_t node_kind = {sizeof(rnode_t), node_used, node_home};

static void grow(rntab_t *t)
{
    rnode_t *old = t->slots;
    void *oldblock = t->block;
    uint32_t oldcap = old ? t->mask + 1 : 0, cap = oldcap ? oldcap * 2 : MIN_CAP;
    if (cap == 0)
        abort(); /* 2^32 slots: beyond any route table */
    t->slots = rn_table_alloc((size_t)cap * sizeof *t->slots, &t->block, t->bytes);
    t->mask = cap - 1;
    robin_rehash(&node_kind, t->slots, t->mask, old, oldcap);
    rn_table_free(oldblock, (size_t)oldcap * sizeof *old, t->bytes);
}

bool rn_reserve(rntab_t *t, uint32_t more)
{
    bool grew = false;
    /* At most three quarters full: probes stay one or two lines long. */
    while (!t->slots || ((uint64_t)t->n + more) * 4 > ((uint64_t)t->mask + 1) * 3) {
        grow(t);
        grew = true;
    }
    return grew;
}

static uint32_t serial_new(rntab_t *t)
{
    if (t->nspare) {
        uint32_t s = t->spare[--t->nspare];
        if (t->nspare == 0) { /* none left: give the array back */
            *t->bytes -= t->capspare * sizeof *t->spare;
            free(t->spare);
            t->spare = NULL;
            t->capspare = 0;
        }
        return s;
    }
    if (t->next == UINT32_MAX)
        abort(); /* 4G live nodes: out of memory long before */
    return t->next++;
}

/* A serial is given back only when its node has no children left, so no
 * node still names it as a parent when it is used again. */
static void serial_free(rntab_t *t, uint32_t s)
{
    if (t->nspare == t->capspare) {
        uint32_t cap = t->capspare ? t->capspare * 2 : 16;
        uint32_t *more = realloc(t->spare, cap * sizeof *more);
        if (!more)
            abort();
        *t->bytes += (cap - t->capspare) * sizeof *more;
        t->spare = more;
        t->capspare = cap;
    }
    t->spare[t->nspare++] = s;
}

rnode_t *rn_insert(rntab_t *t, uint64_t key, uint32_t parent, uint32_t seglen)
{
    rnode_t v = {key, NULL, serial_new(t), parent, seglen, 0};
    t->n++;
    return robin_place(&node_kind, t->slots, t->mask, &v);
}

void rn_delete(rntab_t *t, rnode_t *nd)
{
    serial_free(t, nd->serial);
    robin_erase(&node_kind, t->slots, t->mask, (uint32_t)(nd - t->slots));
    if (--t->n == 0)
        rn_free(t); /* the last one: give everything back */
}
