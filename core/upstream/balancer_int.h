/*
 * balancer_int.h — the balancer's layout, shared by balancer.c and the
 * files of each type (roundrobin.c, least_conn.c, chash.c, ewma.c). Not
 * for other callers.
 *
 * Per-node state is kept as parallel arrays rather than an array of
 * structs: a round-robin or least_conn pick walks one or two of them over
 * every node, and packed arrays keep that walk within a few cache lines.
 */
#ifndef TORII_BALANCER_INT_H
#define TORII_BALANCER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "upstream/balancer.h"

/* flags[i] bits. */
#define BF_DOWN   0x1u /* health: set through the API */
#define BF_TRIED  0x2u /* set during one pick only, from its tried list */
#define BF_OFF    0x4u /* weight 0: never chosen */
#define BF_PARKED 0x8u /* roundrobin: score set aside while down, tried or off */

struct torii_balancer_s {
    torii_balance_type_t type;
    uint32_t n;
    uint32_t nlive; /* nodes of weight > 0 */
    uint32_t nup;   /* of those, not down */
    uint64_t wsum;  /* weight of every node */
    uint32_t *weight;
    uint8_t *flags;
    uint32_t *active;
    int64_t *cur;     /* roundrobin: smooth weighted round robin scores */
    int64_t *saved;   /* roundrobin: a parked node's real score */
    uint32_t *ew;     /* roundrobin: weight, 0 while parked */
    int64_t ewsum;    /* roundrobin: sum of ew */
    uint64_t *picks;  /* least_conn: requests started, the tie-break */
    uint32_t *tree;   /* least_conn: tournament tree, 2 * tsize slots */
    uint32_t tsize;   /* least_conn: leaves, a power of two >= n */
    uint64_t *ring;   /* chash: points, sorted; see chash.c */
    uint32_t *bucket; /* chash: first point of each range of hashes */
    uint32_t npoints, bshift;
    double *cost;    /* ewma: latency estimate (µs) at stamp[i] */
    uint64_t *stamp; /* ewma: when cost[i] was last updated (µs) */
    double decay_us, penalty_us;
    uint64_t rng;
    uint64_t (*clock)(void *ud);
    void *clock_ud;
    size_t bytes;
};

/*
 * Each type's pick. `mask` holds the flag bits that exclude a node in
 * this pick; 0 means every node is eligible (the fast paths). `avail`
 * is the number of eligible nodes, at least 1.
 */
int torii_bal_rr_pick(torii_balancer_t *b, unsigned mask);
/* roundrobin: node i's flags changed; park or unpark its score. */
void torii_bal_rr_sync(torii_balancer_t *b, uint32_t i);
int torii_bal_lc_pick(torii_balancer_t *b, unsigned mask);
int torii_bal_chash_pick(torii_balancer_t *b, const void *key, size_t keylen, unsigned mask);
int torii_bal_ewma_pick(torii_balancer_t *b, unsigned mask, uint32_t avail);

/* least_conn: set up the tree; node i's load, picks or flags changed
 * (start, finish, down, tried); node i is up again. */
bool torii_bal_lc_init(torii_balancer_t *b);
void torii_bal_lc_free(torii_balancer_t *b);
void torii_bal_lc_update(torii_balancer_t *b, uint32_t i);
void torii_bal_lc_rejoin(torii_balancer_t *b, uint32_t i);

/* chash: build the ring (names are read here only). false with err set. */
bool torii_bal_chash_build(torii_balancer_t *b, const torii_bnode_t *nodes, char *err, size_t errlen);
void torii_bal_chash_free(torii_balancer_t *b);

/* ewma: one finished try. */
void torii_bal_ewma_finish(torii_balancer_t *b, uint32_t i, uint32_t latency_us, bool failed);

/* "nodes[3]" or "nodes[3] (\"10.0.0.1:80\")", for error messages. */
void torii_bal_node_label(const torii_bnode_t *nodes, uint32_t i, char *out, size_t outlen);

#endif
