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
 */
#ifndef TORII_REXACT_H
#define TORII_REXACT_H

#include <stddef.h>
#include <stdint.h>

#include "router/rnode.h"
#include "router/rpay.h"

#define RX_INLINE 36 /* text bytes a slot holds */

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

/* The slot of the exact shape equal to p[0..n) (h = rx_hash), or NULL. */
const rxslot_t *rx_find(const rxtab_t *t, const char *p, size_t n, uint32_t h);

/* Ask for the lines where a probe starts (the table must exist). */
static inline void rx_prefetch(const rxtab_t *t, uint32_t h)
{
    __builtin_prefetch(&t->slots[h & t->mask]);
    __builtin_prefetch(&t->slots[(h + 1) & t->mask]);
}

#endif
