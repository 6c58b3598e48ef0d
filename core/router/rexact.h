/*
 * rexact.h — a tree's exact shapes (no parameter, no '*'), outside the
 * tree: they always rank first, so one probe settles them before any
 * walk. Open addressing by the hash of the whole path, Robin Hood order.
 *
 * A slot is one cache line: besides the shape's payload (rpay.h: its
 * text, all its entries), it holds the text when short and what the
 * first entry's filter needs, so that the usual exact match reads one
 * line of the table and nothing else. A shape with one entry and a short
 * text has no payload at all: the slot is all of it (its priority and
 * order are the route's own).
 *
 * Beside the slots of a big table (RX_FILTER_MIN slots and more, past
 * what caches hold), a filter (a Bloom filter of one 64-bit word per
 * probe, two bits per shape, eight bits per slot) says whether a path may
 * be an exact shape: a lookup asks memory for the slot only when it may,
 * and for the tree's levels only when it is not or was not. A removed
 * shape leaves its bits set (a path then probes for nothing) until the
 * table next grows and the filter is made anew. A small table has no
 * filter: its slot is asked for with the levels, as reading a filter first
 * would cost more than it saves.
 */
#ifndef TORII_REXACT_H
#define TORII_REXACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "router/rnode.h"
#include "router/rpay.h"

#define RX_INLINE     36    /* text bytes a slot holds */
#define RX_FILTER_MIN 4096u /* slots (256 KB) from which a table has a filter */

typedef struct {
    uint32_t hash; /* 0: a free slot */
    uint8_t len;   /* the text's length when it fits in text[], else 0 */
    uint8_t check; /* the first entry's */
    uint16_t spare;
    struct rpay_s *pay;              /* NULL: the slot holds the one entry */
    const torii_route_conf_t *route; /* the first entry's */
    uint32_t methods;                /* the first entry's */
    char text[RX_INLINE];
} rxslot_t;

_Static_assert(sizeof(rxslot_t) == 64, "an exact slot is one cache line");

typedef struct {
    rxslot_t *slots; /* line-aligned, inside `block` */
    void *block;
    uint32_t mask, n; /* capacity - 1 (0 with no table), shapes */
    uint64_t *filter; /* (mask + 1) / 8 words; NULL in a small table */
    uint32_t fshift;  /* 32 - log2(words): a hash's top bits pick its word */
    size_t *bytes;
} rxtab_t;

static inline uint32_t rx_hash(const char *p, size_t n)
{
    uint32_t h = (uint32_t)(torii_hash(p, n) & torii_rnode_key_mask); /* narrowed only by tests */
    return h ? h : 1;
}

void rx_init(rxtab_t *t, size_t *bytes);
void rx_free(rxtab_t *t); /* with the payloads */

void rx_add(rxtab_t *t, const rshape_t *s, const torii_rentry_t *e);
void rx_remove(rxtab_t *t, const rshape_t *s, const torii_route_conf_t *route);

static inline uint32_t rx_dist(const rxtab_t *t, uint32_t i)
{
    return (i - t->slots[i].hash) & t->mask;
}

static inline bool rx_slot_is(const rxslot_t *s, const char *p, size_t n)
{
    const rgroup_t *g;
    if (s->len)
        return s->len == n && memcmp(s->text, p, n) == 0;
    g = rpay_first(s->pay); /* a long text: only in the payload */
    return g->len == n && memcmp(rg_text(g), p, n) == 0;
}

/* The slot of the exact shape equal to p[0..n) (h = rx_hash), or NULL.
 * Inline: every lookup makes one. */
static inline const rxslot_t *rx_find(const rxtab_t *t, const char *p, size_t n, uint32_t h)
{
    uint32_t i, d;
    if (!t->slots)
        return NULL;
    for (i = h & t->mask, d = 0;; i = (i + 1) & t->mask, d++) {
        const rxslot_t *s = &t->slots[i];
        if (!s->hash || rx_dist(t, i) < d)
            return NULL;
        if (s->hash == h && rx_slot_is(s, p, n))
            return s;
    }
}

/* The filter's word and bits for a hash (h = rx_hash). */
static inline uint64_t rx_filter_bits(uint32_t h)
{
    uint32_t x = h * 0x85ebca6bu;
    x ^= x >> 13;
    return (1ull << (x & 63)) | (1ull << ((x >> 6) & 63));
}

static inline uint32_t rx_filter_word(const rxtab_t *t, uint32_t h)
{
    return (h * 0x9e3779b1u) >> t->fshift;
}

/* Says the filter of a big table that the path (hash h) may be an exact
 * shape? False also for a table with no filter. */
static inline bool rx_filter_says_maybe(const rxtab_t *t, uint32_t h)
{
    uint64_t bits = rx_filter_bits(h);
    return t->filter && (t->filter[rx_filter_word(t, h)] & bits) == bits;
}

/* Is a probe for the path (hash h) worth making? */
static inline bool rx_worth_probing(const rxtab_t *t, uint32_t h)
{
    return t->n > 0 && (!t->filter || rx_filter_says_maybe(t, h));
}

/* Ask for the lines where a probe starts (the table must exist). */
static inline void rx_prefetch(const rxtab_t *t, uint32_t h)
{
    __builtin_prefetch(&t->slots[h & t->mask]);
    __builtin_prefetch(&t->slots[(h + 1) & t->mask]);
}

#endif
