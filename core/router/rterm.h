/*
 * rterm.h — a line per tree node that ends whole shapes: the first entry
 * of its group and the names of that entry's captures, keyed by the
 * node's key. A lookup asks for these lines together with the nodes'
 * (the keys come from the path), so a parameter path whose segments are
 * all short (rnode.h: exact keys) is answered without reading the node's
 * payload, one whole wait for memory less.
 */
#ifndef TORII_RTERM_H
#define TORII_RTERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/radix.h"
#include "router/rnode.h"
#include "router/rpay.h"

#define RT_NAMES 6 /* capture names a line holds */

typedef struct {
    uint64_t key;    /* the node's */
    uint32_t serial; /* the node's; 0: a free slot */
    uint8_t check;   /* the first entry's */
    uint8_t captures;
    uint8_t named; /* names[] holds the entry's names (else they are in the payload only) */
    uint8_t spare;
    const torii_route_conf_t *route; /* the first entry's */
    const char *pattern;
    uint32_t methods;
    uint32_t group;              /* where the group is in the node's payload */
    uint16_t names[RT_NAMES][2]; /* offset in the pattern, length */
} rtslot_t;

_Static_assert(sizeof(rtslot_t) == 64, "a terminal slot is one cache line");

typedef struct {
    rtslot_t *slots; /* line-aligned, inside `block` */
    void *block;
    uint32_t mask, n; /* capacity - 1 (0 with no table), slots used */
    size_t *bytes;
} rttab_t;

void rt_init(rttab_t *t, size_t *bytes);
void rt_free(rttab_t *t);

/* Make the node's line say: g's first entry (g a whole shape's group in
 * the node's payload pay). */
void rt_set(rttab_t *t, uint64_t key, uint32_t serial, const struct rpay_s *pay, const rgroup_t *g);
void rt_del(rttab_t *t, uint64_t key, uint32_t serial);
static inline uint32_t rt_dist(const rttab_t *t, uint32_t i)
{
    return (i - (uint32_t)t->slots[i].key) & t->mask;
}

static inline const rtslot_t *rt_find(const rttab_t *t, uint64_t key, uint32_t serial)
{
    uint32_t i, d;
    if (!t->slots)
        return NULL;
    for (i = (uint32_t)key & t->mask, d = 0;; i = (i + 1) & t->mask, d++) {
        const rtslot_t *s = &t->slots[i];
        if (!s->serial || rt_dist(t, i) < d)
            return NULL;
        if (s->serial == serial && s->key == key)
            return s;
    }
}

static inline void rt_prefetch(const rttab_t *t, uint64_t key)
{
    __builtin_prefetch(&t->slots[key & t->mask]);
    __builtin_prefetch(&t->slots[(key + 1) & t->mask]);
    __asm__ volatile(""); /* see rn_prefetch */
}

#endif
