/*
 * chash.c — consistent hashing on a ring of points.
 *
 * Each node of weight > 0 owns points on a 64-bit ring, point j being a
 * mix of the hash of its name and j; a key belongs to the first point at
 * or after the key's hash (wrapping round). Points depend on the node's
 * name and its own weight only, so removing a node hands its keys to its
 * neighbours on the ring and moves no other key; adding one takes only the
 * keys that fall just before its new points. A key whose node is down or
 * already tried goes on to the next point owned by an eligible node, so a
 * retry of the same key is deterministic too.
 *
 * Points per node: 160 per unit of weight, after dividing every weight by
 * their greatest common divisor (weights 100/100/100 are 1/1/1, not 16,000
 * points each). The ring is capped at CHASH_MAX_POINTS; past it, points
 * are scaled down in proportion, at least one per node. Either step makes
 * the ring depend on the other nodes' weights, so removing a node can then
 * move a few more keys than its own: only when it changes the divisor, or
 * on capped rings.
 *
 * A point is one 64-bit word: the top 48 bits of its hash, then the node's
 * index (nodes are at most 65535), so a lookup reads one array. An index
 * of the ring by the top bits of the hash (a few points per range) leaves
 * a short scan instead of a binary search over the whole ring. Building
 * is O(P) for P points (a radix sort).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "upstream/balancer_int.h"
#include "upstream/hash64.h"

#define CHASH_POINTS_PER_UNIT 160u
#define CHASH_MAX_POINTS      (1u << 17) /* 1 MiB of ring */
#define CHASH_NODE_BITS       16
#define CHASH_NODE_MASK       ((1ull << CHASH_NODE_BITS) - 1)

static uint32_t gcd(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static uint32_t points_for(uint64_t units, uint64_t total_units)
{
    uint64_t p;
    if (total_units * CHASH_POINTS_PER_UNIT <= CHASH_MAX_POINTS)
        return (uint32_t)(units * CHASH_POINTS_PER_UNIT);
    p = units * CHASH_MAX_POINTS / total_units;
    return p > 0 ? (uint32_t)p : 1;
}

static bool check_names(const torii_bnode_t *nodes, uint32_t n, char *err, size_t errlen)
{
    char label[128];
    for (uint32_t i = 0; i < n; i++) {
        if (!nodes[i].name || !nodes[i].name[0]) {
            torii_bal_node_label(nodes, i, label, sizeof label);
            snprintf(err, errlen, "%s: chash needs a node name (it places the node on the ring)", label);
            return false;
        }
    }
    return true;
}

/* Sort the points by their hash bits: a radix sort, a byte per pass, in
 * O(P) rather than a comparison sort's O(P log P) (a ring has 10^4 to 10^5
 * points and is built at every reload). Stable: equal hash bits keep the
 * nodes' order, which order_collisions then fixes. */
static bool sort_points(uint64_t *v, uint32_t n)
{
    uint64_t *tmp = malloc((size_t)n * sizeof *tmp), *src = v, *dst = tmp, *t;
    if (!tmp)
        return false;
    for (unsigned shift = CHASH_NODE_BITS; shift < 64; shift += 8) {
        uint32_t count[257] = {0};
        for (uint32_t i = 0; i < n; i++)
            count[((src[i] >> shift) & 255) + 1]++;
        for (unsigned d = 0; d < 256; d++)
            count[d + 1] += count[d];
        for (uint32_t i = 0; i < n; i++)
            dst[count[(src[i] >> shift) & 255]++] = src[i];
        t = src;
        src = dst;
        dst = t;
    }
    /* six passes: the result is back in v */
    free(tmp);
    return true;
}

static const char *point_name(const torii_bnode_t *nodes, uint64_t p)
{
    return nodes[p & CHASH_NODE_MASK].name;
}

/*
 * Points of different nodes with the same hash bits (a 48-bit collision,
 * vanishingly rare) are put in the order of the nodes' names, so the owner
 * of that spot does not depend on the order of the configuration. Two
 * nodes with the same name have all their points in common, so this is
 * also where a duplicate shows.
 */
static bool order_collisions(const torii_bnode_t *nodes, uint64_t *v, uint32_t n, char *err, size_t errlen)
{
    char label[128];
    for (uint32_t k = 1; k < n; k++) {
        uint32_t j = k;
        while (j > 0 && (v[j] & ~CHASH_NODE_MASK) == (v[j - 1] & ~CHASH_NODE_MASK)) {
            int c = strcmp(point_name(nodes, v[j - 1]), point_name(nodes, v[j]));
            if (c == 0) {
                uint32_t lo = (uint32_t)TORII_MIN(v[j] & CHASH_NODE_MASK, v[j - 1] & CHASH_NODE_MASK);
                uint32_t hi = (uint32_t)TORII_MAX(v[j] & CHASH_NODE_MASK, v[j - 1] & CHASH_NODE_MASK);
                torii_bal_node_label(nodes, hi, label, sizeof label);
                snprintf(err, errlen, "%s: same name as nodes[%u] (chash places nodes by name)", label, lo);
                return false;
            }
            if (c < 0)
                break;
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
            j--;
        }
    }
    return true;
}

/* bucket[r]: the first point at or after the start of range r. */
static void index_ring(torii_balancer_t *b, uint32_t bits)
{
    uint32_t k = 0;
    b->bshift = 64 - bits;
    for (uint64_t r = 0; r < (1ull << bits); r++) {
        while (k < b->npoints && b->ring[k] < r << b->bshift)
            k++;
        b->bucket[r] = k;
    }
    b->bucket[1ull << bits] = b->npoints;
}

bool torii_bal_chash_build(torii_balancer_t *b, const torii_bnode_t *nodes, char *err, size_t errlen)
{
    uint32_t g = 0, np = 0, k = 0, bits = 1;
    uint64_t total_units = 0;

    if (!check_names(nodes, b->n, err, errlen))
        return false;
    for (uint32_t i = 0; i < b->n; i++)
        if (nodes[i].weight)
            g = gcd(nodes[i].weight, g);
    for (uint32_t i = 0; i < b->n; i++)
        total_units += nodes[i].weight / g;
    for (uint32_t i = 0; i < b->n; i++)
        if (nodes[i].weight)
            np += points_for(nodes[i].weight / g, total_units);
    for (uint32_t v = np; v >= 8; v >>= 1) /* about 4 points per range */
        bits++;

    b->ring = malloc((size_t)np * sizeof *b->ring);
    b->bucket = malloc((((size_t)1 << bits) + 1) * sizeof *b->bucket);
    if (!b->ring || !b->bucket) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    for (uint32_t i = 0; i < b->n; i++) {
        uint64_t base;
        uint32_t p;
        if (!nodes[i].weight)
            continue;
        base = torii_hash64(nodes[i].name, strlen(nodes[i].name), 0);
        p = points_for(nodes[i].weight / g, total_units);
        /* Point j of a node is the same whatever else is on the ring. */
        for (uint32_t j = 0; j < p; j++)
            b->ring[k++] = (torii_h64_mix(base + (uint64_t)(j + 1) * TORII_H64_GOLDEN) & ~CHASH_NODE_MASK) | i;
    }
    if (!sort_points(b->ring, np)) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    if (!order_collisions(nodes, b->ring, np, err, errlen))
        return false;
    b->npoints = np;
    index_ring(b, bits);
    b->bytes += (size_t)np * sizeof *b->ring + (((size_t)1 << bits) + 1) * sizeof *b->bucket;
    return true;
}

void torii_bal_chash_free(torii_balancer_t *b)
{
    free(b->ring);
    free(b->bucket);
}

int torii_bal_chash_pick(torii_balancer_t *b, const void *key, size_t keylen, unsigned mask)
{
    const uint64_t *ring = b->ring;
    uint64_t h = torii_hash64(key, keylen, 0) & ~CHASH_NODE_MASK;
    uint64_t r = h >> b->bshift;
    uint32_t lo = b->bucket[r], hi = b->bucket[r + 1];

    /* The first point at or after h; the node bits cannot change the
     * order, since h has none. */
    while (lo < hi && ring[lo] < h)
        lo++;
    if (lo == b->npoints)
        lo = 0;

    /* Weight-0 nodes own no points; the other reasons to skip one remain.
     * pick() checked that an eligible node exists, so one turn of the
     * ring finds it; the bound only guards a worker against a broken
     * invariant spinning for ever. */
    mask &= ~BF_OFF;
    for (uint32_t steps = 0; mask && (b->flags[ring[lo] & CHASH_NODE_MASK] & mask); steps++) {
        if (steps == b->npoints)
            return TORII_BAL_ALL_DOWN;
        lo = lo + 1 == b->npoints ? 0 : lo + 1;
    }
    return (int)(ring[lo] & CHASH_NODE_MASK);
}
