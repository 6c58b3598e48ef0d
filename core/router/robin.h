/*
 * robin.h — Robin Hood placement shared by the router's hash tables (the
 * node table, the exact-shape table and the terminal table). Each table
 * keeps its own lookup, inline on the match path and specialised to its
 * slot; inserting, rehashing and deleting are the same for all of them and
 * live here, written once over slots of a given size.
 *
 * A slot's distance is how far it sits past its home index (its hash or
 * key, masked). Placing: a slot further from home takes the place of one
 * nearer to its own, which moves on. Deleting: the rest of the run shifts
 * back by one, up to a free slot or one already at home.
 */
#ifndef TORII_ROBIN_H
#define TORII_ROBIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ROBIN_MAX_SLOT 64 /* the largest slot (one cache line) */

typedef struct {
    size_t size;                        /* bytes per slot, at most ROBIN_MAX_SLOT */
    bool (*used)(const void *slot);     /* false for a free (all-zero) slot */
    uint32_t (*home)(const void *slot); /* its start index before masking */
} robin_kind_t;

/* Written inline: each table passes a constant kind, so the compiler
 * turns the calls through it into direct code for that table's slot. */

static inline unsigned char *robin_at(const robin_kind_t *k, void *slots, uint32_t i)
{
    return (unsigned char *)slots + (size_t)i * k->size;
}

static inline uint32_t robin_dist(const robin_kind_t *k, const void *slot, uint32_t i, uint32_t mask)
{
    return (i - k->home(slot)) & mask;
}

/* Place a copy of v in slots (mask + 1 of them, at least one free);
 * returns the slot v went to. */
static inline void *robin_place(const robin_kind_t *k, void *slots, uint32_t mask, const void *v)
{
    _Alignas(16) unsigned char cur[ROBIN_MAX_SLOT], out[ROBIN_MAX_SLOT];
    unsigned char *mine = NULL;
    uint32_t i, d = 0;
    memcpy(cur, v, k->size);
    for (i = k->home(cur) & mask;; i = (i + 1) & mask, d++) {
        unsigned char *s = robin_at(k, slots, i);
        uint32_t sd;
        if (!k->used(s)) {
            memcpy(s, cur, k->size);
            return mine ? mine : s;
        }
        sd = robin_dist(k, s, i, mask);
        if (sd < d) {
            memcpy(out, s, k->size);
            memcpy(s, cur, k->size);
            memcpy(cur, out, k->size);
            if (!mine)
                mine = s;
            d = sd;
        }
    }
}

/* Place every used slot of old (oldcap slots) in slots. */
static inline void robin_rehash(const robin_kind_t *k, void *slots, uint32_t mask, const void *old, uint32_t oldcap)
{
    for (uint32_t i = 0; i < oldcap; i++) {
        const unsigned char *s = (const unsigned char *)old + (size_t)i * k->size;
        if (k->used(s))
            robin_place(k, slots, mask, s);
    }
}

/* Take slot i out, shifting the rest of its run back over it. */
static inline void robin_erase(const robin_kind_t *k, void *slots, uint32_t mask, uint32_t i)
{
    uint32_t j;
    for (j = (i + 1) & mask; k->used(robin_at(k, slots, j)) && robin_dist(k, robin_at(k, slots, j), j, mask) > 0;
         j = (j + 1) & mask) {
        memcpy(robin_at(k, slots, i), robin_at(k, slots, j), k->size);
        i = j;
    }
    memset(robin_at(k, slots, i), 0, k->size);
}

#endif
