/*
 * rnode.h — the nodes of one path tree (radix.h), all in one
 * open-addressing table instead of child arrays inside each node.
 *
 * A node stands for a run of whole segments from the root, each one
 * either literal or ":" (a parameter). It is found from its parent by a
 * key mixed from the parent's key and the next segment, so a lookup
 * computes the keys of every level of a path from the path alone and can
 * ask for all their cache lines at once, instead of one node after the
 * other.
 *
 * A node keeps no segment text. A segment of up to 8 bytes enters the key
 * as its bytes, and the mix is one-to-one, so such a step finds the very
 * node of that text. A longer segment enters as a hash: siblings whose
 * long segments hash alike share a node (marked RN_LONG), and below it the
 * text is checked against the whole shape where entries are (rpay.h).
 *
 * Robin Hood probing keeps probe runs short, for misses too, at three
 * quarters full. Inserting and deleting move other nodes: a pointer into
 * the table is valid until the next change.
 */
#ifndef TORII_RNODE_H
#define TORII_RNODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/hash.h"

#define RN_PARAM    UINT32_MAX /* seglen of a parameter node */
#define RN_ROOT_KEY 0x2545f4914f6cdd1dull
#define RN_ROOT     1u /* the root's serial (the root lives outside the table) */

/* kids: flags, then the number of static children */
#define RN_HAS_PARAM  1u /* a parameter child */
#define RN_HAS_FULL   2u /* shapes ending here */
#define RN_HAS_PREFIX 4u /* shapes ending here, then '*' */
#define RN_LONG       8u /* reached through a hashed (long) segment */
#define RN_STATIC_ONE 16u
#define RN_SHORT      8u /* segments up to this long are keyed by their bytes */

typedef struct rpay_s rpay_t;

typedef struct {
    uint64_t key;    /* from the parent's key and the segment */
    rpay_t *pay;     /* entries of the shapes ending here, or NULL */
    uint32_t serial; /* unique among the tree's live nodes; 0: a free slot */
    uint32_t parent; /* the parent's serial */
    uint32_t seglen; /* length of the segment that leads here, RN_PARAM for ":" */
    uint32_t kids;   /* RN_HAS_* flags + RN_STATIC_ONE per static child */
} rnode_t;           /* 32 bytes: two to a cache line */

typedef struct {
    rnode_t *slots; /* line-aligned, inside `block` */
    void *block;
    uint32_t mask;   /* capacity - 1; 0 with no table */
    uint32_t n;      /* nodes */
    uint32_t next;   /* the next serial never given out */
    uint32_t *spare; /* serials given back, to use again */
    uint32_t nspare, capspare;
    size_t *bytes; /* the router's byte count */
} rntab_t;

/* Tests narrow this to force key collisions; all bits otherwise. Keys
 * are one-to-one only with all bits (rn_exact_keys). */
extern uint64_t torii_rnode_key_mask;

static inline bool rn_exact_keys(void)
{
    return torii_rnode_key_mask == UINT64_MAX;
}

/* The key of the child reached through a segment worth h (rn_seg). */
static inline uint64_t rn_child_key(uint64_t parent, uint64_t h)
{
    /* One-to-one in h for a given parent (xor, then odd multiplies and
     * xorshifts): two segments of one parent share a key only when their h
     * do. Two rounds: with one, siblings that differ only in a few high
     * bytes (svc1 .. svc99999) cluster in the table's index bits. */
    uint64_t x = (parent ^ h) * 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return x & torii_rnode_key_mask;
}

static inline uint64_t rn_param_key(uint64_t parent)
{
    return rn_child_key(parent, 0x3c6ef372fe94f82bull); /* told apart by seglen RN_PARAM */
}

/* What a segment p[0..n) puts in its child's key: its bytes when short
 * (with its length, in the node's seglen, that is the text itself) as a
 * little-endian word, else a hash. `avail` bytes from p on may be read. */
static inline uint64_t rn_seg(const char *p, size_t n, size_t avail)
{
    uint64_t w = 0;
    if (n > RN_SHORT)
        return torii_hash(p, n);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (avail >= 8 && n > 0) {
        /* One load and a mask: a copy of n bytes read back as a word
         * stalls on the bytes just stored. */
        memcpy(&w, p, 8);
        return n == 8 ? w : w & (UINT64_MAX >> (64 - 8 * n));
    }
#endif
    (void)avail;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)(uint8_t)p[i] << (8 * i);
    return w;
}

/* Zeroed, 64-byte aligned memory for a table of n bytes, counted into
 * *bytes; *block is what to free. calloc, unlike aligned_alloc + memset,
 * gets big blocks as untouched zero pages: a table grows at no cost for
 * slots never used. */
void *rn_table_alloc(size_t n, void **block, size_t *bytes);
void rn_table_free(void *block, size_t n, size_t *bytes);

void rn_init(rntab_t *t, size_t *bytes);
void rn_free(rntab_t *t); /* the table only, not the payloads */

/* Room for `more` nodes, so that the inserts that follow never grow the
 * table. Returns whether it grew (which moves every node). */
bool rn_reserve(rntab_t *t, uint32_t more);

/* How far a slot's node sits from where its probe starts. */
static inline uint32_t rn_dist(const rntab_t *t, uint32_t i)
{
    return (i - (uint32_t)t->slots[i].key) & t->mask;
}

/* The node with this key, parent and segment length (unique), or NULL.
 * Inline: a lookup makes one per level. */
static inline rnode_t *rn_find(const rntab_t *t, uint64_t key, uint32_t parent, uint32_t seglen)
{
    uint32_t i, d;
    if (!t->slots)
        return NULL;
    for (i = (uint32_t)key & t->mask, d = 0;; i = (i + 1) & t->mask, d++) {
        rnode_t *s = &t->slots[i];
        /* Robin Hood order: past a node nearer to its start than we are
         * to ours, the key cannot come. */
        if (!s->serial || rn_dist(t, i) < d)
            return NULL;
        if (s->key == key && s->parent == parent && s->seglen == seglen)
            return s;
    }
}

/* Add a node (key, parent, seglen; the rest zero) after rn_reserve; it
 * gets a fresh serial. Returns where it landed. */
rnode_t *rn_insert(rntab_t *t, uint64_t key, uint32_t parent, uint32_t seglen);

/* Remove a node, giving its serial back (its payload is the caller's). */
void rn_delete(rntab_t *t, rnode_t *nd);

/* Ask for the lines where a key's probe starts: the node is often a slot
 * or two past its start, and on the next line. */
static inline void rn_prefetch(const rntab_t *t, uint64_t key)
{
    __builtin_prefetch(&t->slots[key & t->mask]);
    __builtin_prefetch(&t->slots[(key + 2) & t->mask]);
    /* GCC deletes a loop whose only effect is prefetching; an empty
     * volatile asm is an effect it keeps. */
    __asm__ volatile("");
}

#endif
